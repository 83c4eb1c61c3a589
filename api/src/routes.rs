//! Item routes and health: thin handlers over a [`Store`].

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Store, StoreError, Written};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ETAG, IF_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use tandem_shared::ErrorCode;
use tandem_shared::item::{Data, Record};
use tandem_shared::validate::{self, IfMatch};
use tandem_shared::wire::{
    HealthResponse, HealthStatus, ItemResponse, ListResponse, PutBody, WriteBody,
};

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::PreconditionFailed => {
                ApiError::Client(ErrorCode::PreconditionFailed, err.to_string())
            }
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::TooLarge(_) => {
                ApiError::Client(ErrorCode::PayloadTooLarge, err.to_string())
            }
            StoreError::Busy(why) => ApiError::Overloaded(why),
            StoreError::Resyncing(why) => ApiError::Resyncing(why),
            StoreError::NoQuorum(why) => ApiError::NoQuorum(why),
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The id from the path, validated. A path that does not decode is an invalid id too.
fn item_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::Client(ErrorCode::InvalidId, e.body_text()))?;
    validate::validate_id(&id)?;
    Ok(id)
}

/// A stored record as contract §1's item body, with its write's ETag (made from the stored stamp,
/// not parsed back out of the item's text).
fn record_response(status: StatusCode, record: Record, region: &str) -> Result<Response, ApiError> {
    let etag = HeaderValue::from_str(&record.etag()).ok();
    let item = record
        .into_item()
        .ok_or_else(|| anyhow::anyhow!("a store answered a tombstone as a live item"))?;
    let mut response = (
        status,
        Json(ItemResponse {
            item,
            region: region.to_owned(),
        }),
    )
        .into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(ETAG, etag);
    }
    Ok(response)
}

/// The request's `If-Match`, its repeated header lines joined (a value that is not text can
/// name no write: it matches nothing).
fn if_match(headers: &HeaderMap) -> Option<IfMatch> {
    let values = headers.get_all(IF_MATCH);
    values.iter().next()?;
    Some(IfMatch::parse(
        values.iter().map(|v| v.to_str().unwrap_or("")),
    ))
}

async fn get_by_id<S: Store>(state: &AppState<S>, id: &str) -> Result<Response, ApiError> {
    match state.store.get(id).await? {
        Some(record) => record_response(StatusCode::OK, record, &state.config.region),
        None => {
            // Absent here; absent everywhere only once this region holds its peers' state.
            state.store.vouch()?;
            Err(ApiError::not_found(format!("no item with id {id:?}")))
        }
    }
}

async fn put_data<S: Store>(
    state: &AppState<S>,
    id: &str,
    data: Data,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Written { record, created } = state.store.put(id, data, if_match(headers)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    record_response(status, record, &state.config.region)
}

/// What `If-Match` means on every write route (RFC 9110 13.1.1).
const IF_MATCH_DOC: &str = "Write only if the item holds one of these writes: `*` (any current item), or a comma-separated list of ETags, e.g. \"3.us-east-1.1764201234567\", of which any may match. A plain \"3\" matches only a version written in the answering region. Comparison is strong: a weak tag (W/\"...\") never matches. An absent item matches nothing (412).";

/// `GET /api/items/{id}`
#[utoipa::path(get, path = "/api/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id: 1..=256 of [A-Za-z0-9_.:-]", pattern = "^[A-Za-z0-9_.:-]{1,256}$")),
    responses(
        (status = 200, description = "The item", body = ItemResponse),
        crate::responses::ReadErrors,
    ))]
pub async fn get_item<S: Store>(
    State(state): State<AppState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = item_id(path)?;
    get_by_id(&state, &id).await
}

/// `PUT /api/items/{id}`
#[utoipa::path(put, path = "/api/items/{id}", tag = "items",
    params(
        ("id" = String, Path, description = "Item id: 1..=256 of [A-Za-z0-9_.:-]", pattern = "^[A-Za-z0-9_.:-]{1,256}$"),
        ("If-Match" = Option<String>, Header, description = IF_MATCH_DOC),
    ),
    request_body(content = tandem_shared::wire::PutBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = ItemResponse),
        (status = 201, description = "Created", body = ItemResponse),
        crate::responses::WriteErrors,
    ))]
pub async fn put_item<S: Store>(
    State(state): State<AppState<S>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<JsonBody<PutBody>, ApiError>,
) -> Result<Response, ApiError> {
    let id = item_id(path)?;
    let JsonBody(PutBody { data }) = body?;
    put_data(&state, &id, data, &headers).await
}

/// `DELETE /api/items/{id}`
#[utoipa::path(delete, path = "/api/items/{id}", tag = "items",
    params(
        ("id" = String, Path, description = "Item id: 1..=256 of [A-Za-z0-9_.:-]", pattern = "^[A-Za-z0-9_.:-]{1,256}$"),
        ("If-Match" = Option<String>, Header, description = IF_MATCH_DOC),
    ),
    responses(
        (status = 204, description = "Deleted, or was already absent (without If-Match)"),
        crate::responses::DeleteErrors,
    ))]
pub async fn delete_item<S: Store>(
    State(state): State<AppState<S>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = item_id(path)?;
    state.store.delete(&id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/api/items/` with nothing after the slash.
pub async fn empty_id() -> ApiError {
    ApiError::Client(ErrorCode::InvalidId, "id must not be empty".into())
}

/// A route's query string as `T` (none at all reads as empty); one that does not parse is a 400.
fn parse_query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("cursor is not one this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    validate::validate_id(&id).map_err(|_| bad())?;
    Ok(id)
}

/// `GET /api/items?limit=&cursor=`: at most `limit` items, cut short by the store at
/// [`validate::LIST_PAGE_MAX_BYTES`] of answer and at [`crate::store::LIST_TIME_BUDGET`] (a
/// page cut short has a `next_cursor` like any other, and may even be empty).
#[utoipa::path(get, path = "/api/items", tag = "items",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1..=100 (default 25)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of items: at most `limit`, at most 5 MiB of answer (always at least one item when one is reached in time) and what the region could read within half a second; continue with `next_cursor` while it is not null (a page may be short, or empty, with more to come)", body = ListResponse),
        crate::responses::ListErrors,
    ))]
pub async fn list_items<S: Store>(
    State(state): State<AppState<S>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListQuery = parse_query(query.as_deref())?;
    let limit = validate::parse_limit(q.limit.as_deref())?;
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    state.store.vouch()?;
    let page = state.store.list(limit, after).await?;
    let page = ListResponse {
        items: page.items,
        next_cursor: page.last.map(|id| URL_SAFE_NO_PAD.encode(id)),
        region: state.config.region.clone(),
    };
    Ok(json_response(&page))
}

/// A page as JSON, written into a buffer sized for it up front: a buffer grown by doubling
/// would hold up to twice the page, and a copy of it while it grows.
fn json_response(page: &ListResponse) -> Response {
    let size: usize = page
        .items
        .iter()
        .map(|i| i.id.len() + i.data.len() + i.updated_in.len() + 128)
        .sum();
    let mut body = Vec::with_capacity(size + 256);
    match serde_json::to_writer(&mut body, page) {
        Ok(()) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(err) => ApiError::Internal(err.into()).into_response(),
    }
}

#[derive(Deserialize)]
struct ReadQuery {
    id: Option<String>,
}

/// `GET /api/read?id=`: the seed's read route.
#[utoipa::path(get, path = "/api/read", tag = "seed",
    params(("id" = String, Query, description = "Item id", pattern = "^[A-Za-z0-9_.:-]{1,256}$")),
    responses(
        (status = 200, description = "The item", body = ItemResponse),
        crate::responses::ReadErrors,
    ))]
pub async fn read<S: Store>(
    State(state): State<AppState<S>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q: ReadQuery = parse_query(query.as_deref())?;
    let id = q.id.unwrap_or_default();
    validate::validate_id(&id)?;
    get_by_id(&state, &id).await
}

/// `POST /api/write`: the seed's write route, `{"id", "data"}`.
#[utoipa::path(post, path = "/api/write", tag = "seed",
    params(("If-Match" = Option<String>, Header, description = IF_MATCH_DOC)),
    request_body(content = tandem_shared::wire::WriteBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = ItemResponse),
        (status = 201, description = "Created", body = ItemResponse),
        crate::responses::WriteErrors,
    ))]
pub async fn write<S: Store>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: Result<JsonBody<WriteBody>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(WriteBody { id, data }) = body?;
    put_data(&state, &id, data, &headers).await
}

/// `GET /api/health`: 200 while healthy, 503 with the same body while a fault is set.
#[utoipa::path(get, path = "/api/health", tag = "ops",
    responses(
        (status = 200, description = "Healthy", body = HealthResponse),
        (status = 503, description = "An admin fault is set, the store failed, or the region is copying a peer's state (resyncing)", body = HealthResponse),
        crate::responses::CloakedErrors,
    ))]
pub async fn health<S: Store>(State(state): State<AppState<S>>) -> Response {
    let fault = state.fault().await;
    let store = state.store.check().await.err();
    let vouch = state.store.vouch().err();
    let (word, error) = match (store, vouch, fault.is_none()) {
        (Some(e), _, _) => (HealthStatus::Unavailable, Some(e.to_string())),
        (None, _, false) => (HealthStatus::Faulted, None),
        (None, Some(e), true) => (HealthStatus::Resyncing, Some(e.to_string())),
        (None, None, true) => (HealthStatus::Ok, None),
    };
    let status = match word {
        HealthStatus::Ok => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = HealthResponse {
        region: state.config.region.clone(),
        status: word,
        fault,
        replication: state.store.replication().await,
        error,
        consistency: state.store.consistency(),
    };
    (status, Json(body)).into_response()
}

/// Any path that is no route.
pub async fn no_route(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
