//! The replication routes a region serves to its peers (signed frames) and to the control API.

use super::wire::{self, Frame, Key};
use super::{BATCH, MAX_PULL_BYTES, RegionReplication, ReplicationConfig, Replicator};
use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;
use subtle::ConstantTimeEq as _;
use tandem_api::admin::{Admin, AdminToken};
use tandem_shared::ErrorCode;
use tandem_shared::headers::ORIGIN_VERIFY;

impl Replicator {
    /// The internal routes: `GET /_replication/{changes,items,digests}` for peers (signed),
    /// `GET /_replication/status` and `PUT /_replication/config` for the control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/_replication/changes", get(changes))
            .route("/_replication/items", get(items))
            .route("/_replication/digests", get(digests))
            .route("/_replication/status", get(status))
            .route("/_replication/config", put(set_config))
            .layer(axum::middleware::from_fn_with_state(
                Some(std::sync::Arc::from(self.store.region())),
                tandem_api::middleware::error_bodies,
            ))
            .with_state(self.clone())
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>) -> Response {
        tandem_api::error::respond(code, None, message, Some(self.store.region()))
    }

    /// Whether the origin secret the control API sends is right (constant-time comparison).
    fn secret_ok(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = &self.settings.origin_secret else {
            return true;
        };
        let given = headers
            .get(ORIGIN_VERIFY)
            .map(|v| v.as_bytes())
            .unwrap_or(b"");
        bool::from(given.ct_eq(secret.as_bytes()))
    }

    fn wrong_secret(&self) -> Response {
        self.error(ErrorCode::Forbidden, "missing or wrong origin secret")
    }
}

/// A request signed by a configured peer; the answer is signed over its nonce.
pub struct SignedPeer {
    pub name: String,
    nonce: String,
    key: Key,
}

impl FromRef<Replicator> for AdminToken {
    fn from_ref(r: &Replicator) -> AdminToken {
        AdminToken::new(r.settings.admin_token.as_deref())
    }
}

impl FromRequestParts<Replicator> for SignedPeer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, r: &Replicator) -> Result<Self, Response> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (name, nonce, signature) = (
            header(wire::PEER_HEADER),
            header(wire::NONCE_HEADER),
            header(wire::SIGNATURE_HEADER),
        );
        let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let known = r.settings.peers.iter().any(|p| p.name == name);
        let key = r.settings.key.clone();
        if !known || nonce.len() < 16 || !key.verify_request(&name, &nonce, path, &signature) {
            tracing::warn!(peer = %name, "refused an unsigned or forged replication request");
            return Err(r.error(
                ErrorCode::Unauthorized,
                "replication requests must be signed by a configured peer",
            ));
        }
        Ok(SignedPeer { name, nonce, key })
    }
}

impl SignedPeer {
    fn answer(&self, frame: Frame) -> Response {
        let body = frame.encode();
        let signature = self.key.sign_response(&self.nonce, &body);
        (
            [
                (http::header::CONTENT_TYPE, wire::CONTENT_TYPE.to_owned()),
                (
                    http::HeaderName::from_static(wire::SIGNATURE_HEADER),
                    signature,
                ),
            ],
            body,
        )
            .into_response()
    }
}

/// Runs a store read off the async workers; a failure is a 503 (the peer retries).
async fn read<T: Send + 'static>(
    r: &Replicator,
    f: impl FnOnce(&tandem_api::store::embedded::EmbeddedStore) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let store = r.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(err)) => {
            tracing::error!(error = %format!("{err:#}"), "reading for a peer failed");
            Err(r.error(ErrorCode::RegionUnavailable, "the store could not be read"))
        }
        Err(err) => {
            tracing::error!(%err, "reading for a peer failed");
            Err(r.error(ErrorCode::RegionUnavailable, "the store could not be read"))
        }
    }
}

fn max_bytes(asked: Option<usize>) -> usize {
    asked.unwrap_or(MAX_PULL_BYTES).clamp(1, MAX_PULL_BYTES)
}

#[derive(Deserialize)]
struct ChangesQuery {
    after: u64,
    /// How far the peer has durably applied (≤ `after`, which counts pages it holds back).
    applied: Option<u64>,
    /// The incarnation of this region that `after` refers to (0: none yet).
    #[serde(default)]
    incarnation: u64,
    limit: Option<usize>,
    max_bytes: Option<usize>,
    /// When nothing is new after `after`, wait this long (at most [`MAX_WAIT`]) for a local
    /// write before answering: a long poll, so a peer hears of a write when it commits.
    wait_ms: Option<u64>,
}

/// Longest long poll: well under the pulling client's timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

async fn changes(
    State(r): State<Replicator>,
    peer: SignedPeer,
    Query(q): Query<ChangesQuery>,
) -> Response {
    // What the peer applied of this incarnation's outbox can be compacted here.
    if q.incarnation == r.store.incarnation() {
        r.acked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.name.clone(), q.applied.unwrap_or(0).min(q.after));
    }
    let (limit, bytes) = (
        q.limit.unwrap_or(BATCH).clamp(1, BATCH),
        max_bytes(q.max_bytes),
    );
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let mut commits = r.store.commits();
    commits.borrow_and_update();
    let mut page = read(&r, move |s| s.changes_since(q.after, limit, bytes)).await;
    let nothing_new = matches!(&page, Ok(p) if p.records.is_empty() && p.head <= q.after);
    if nothing_new && !wait.is_zero() && tokio::time::timeout(wait, commits.changed()).await.is_ok()
    {
        page = read(&r, move |s| s.changes_since(q.after, limit, bytes)).await;
    }
    match page {
        Ok(page) => peer.answer(Frame {
            incarnation: page.incarnation,
            head: page.head,
            floor: page.floor,
            through: page.through,
            next: None,
            entries: page.records,
        }),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
struct ItemsQuery {
    after: Option<String>,
    /// A mask of digest buckets (bit b: bucket b); all when absent.
    buckets: Option<u64>,
    max_bytes: Option<usize>,
}

async fn items(
    State(r): State<Replicator>,
    peer: SignedPeer,
    Query(q): Query<ItemsQuery>,
) -> Response {
    let bytes = max_bytes(q.max_bytes);
    let (buckets, after) = (q.buckets, q.after);
    match read(&r, move |s| s.items_page(after.as_deref(), buckets, bytes)).await {
        Ok(page) => peer.answer(Frame {
            incarnation: page.incarnation,
            head: page.head,
            next: page.next,
            entries: page.records.into_iter().map(|r| (0, r)).collect(),
            ..Frame::default()
        }),
        Err(resp) => resp,
    }
}

async fn digests(State(r): State<Replicator>, peer: SignedPeer) -> Response {
    // Digests first, then the head: a write landing in between shows in the head, which the
    // peer then takes for a write in flight and compares later.
    match read(&r, |s| {
        let digests = s.digests()?;
        Ok((digests, s.outbox_head()?))
    })
    .await
    {
        Ok((digests, head)) => peer.answer(Frame {
            incarnation: r.store.incarnation(),
            head,
            entries: digests
                .into_iter()
                .enumerate()
                .map(|(i, d)| (i as u64, d.to_vec()))
                .collect(),
            ..Frame::default()
        }),
        Err(resp) => resp,
    }
}

async fn status(State(r): State<Replicator>, headers: HeaderMap) -> Response {
    if !r.secret_ok(&headers) {
        return r.wrong_secret();
    }
    match read(&r, {
        let r = r.clone();
        move |_| Ok(r.status(true))
    })
    .await
    {
        Ok(status) => Json::<RegionReplication>(status).into_response(),
        Err(resp) => resp,
    }
}

async fn set_config(
    State(r): State<Replicator>,
    headers: HeaderMap,
    _: Admin,
    body: Result<Json<ReplicationConfig>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !r.secret_ok(&headers) {
        return r.wrong_secret();
    }
    let Ok(Json(config)) = body else {
        return r.error(
            ErrorCode::BadRequest,
            "body must be {\"paused\": bool, \"lag_ms\": n}",
        );
    };
    *r.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    tracing::info!(?config, "replication settings changed");
    Json(config).into_response()
}
