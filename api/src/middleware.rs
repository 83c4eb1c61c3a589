//! What wraps every response: request ids and spans, region and timing headers (and the edge's
//! active region, echoed), error bodies (axum's own 404/405 included), origin cloaking, CORS,
//! and injected faults.

use crate::error::{ApiError, ErrorInfo};
use crate::state::{AppState, Config};
use crate::store::Store;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http::header::{CONTENT_TYPE, ORIGIN, VARY};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tandem_shared::headers::{
    ACTIVE_REGION, ORIGIN_VERIFY, REQUEST_ID, SERVED_REGION, SERVER_TIMING,
};
use tandem_shared::{ErrorBody, ErrorCode, Fault};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Wraps `router` in every layer, outermost last. Each `from_fn` layer costs a clone of the
/// service stack and a boxed future on every request, so Tandem's own work is one layer
/// ([`finish`]).
pub fn wrap(router: Router, config: Arc<Config>) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let finishing = Finishing {
        region: HeaderValue::from_str(&config.region).ok(),
        config,
    };
    router
        // A panic in a handler becomes a logged 500 with the usual error body (rendered by
        // `finish`), never a dropped connection.
        .layer(CatchPanicLayer::custom(|panic: Box<dyn std::any::Any + Send>| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            ApiError::Internal(anyhow::anyhow!("handler panicked: {what}")).into_response()
        }))
        .layer(from_fn_with_state(finishing, finish))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // Failures are logged where they happen (`ApiError::Internal`); a 5xx the admin asked
        // for is not an error worth a log line per request.
        .layer(TraceLayer::new_for_http().on_failure(()).make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// [`finish`]'s state: the config, and its region as a header value made once.
#[derive(Clone)]
struct Finishing {
    config: Arc<Config>,
    region: Option<HeaderValue>,
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        404 => ErrorCode::NotFound,
        408 => ErrorCode::RequestTimeout,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        s if s >= 500 => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// Origin cloaking and CORS on the way in; on the way out, error bodies with the region, and
/// `x-served-region` and `server-timing` on every response (a refusal included), with the
/// edge's `x-tandem-active-region` echoed when the request carried one: the health watcher
/// learns the active region from its probe of `/api/health` that way, with no call to the
/// store that holds it (contract §6.3).
async fn finish(State(finishing): State<Finishing>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let config = &finishing.config;
    let active = req.headers().get(ACTIVE_REGION).cloned();
    let mut response = match check_origin(config, req.headers()).await {
        Some(refused) => refused,
        None => cors(config, req, next).await,
    };
    response = error_body(response, Some(&config.region));
    let headers = response.headers_mut();
    if let Some(region) = &finishing.region {
        headers.insert(SERVED_REGION, region.clone());
    }
    if let Some(active) = active {
        headers.insert(ACTIVE_REGION, active);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(timing) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        headers.insert(SERVER_TIMING, timing);
    }
    response
}

/// Gives an error response contract §4's body: from the [`ErrorInfo`] a handler's [`ApiError`]
/// left, or, for axum's own bodiless 4xx/5xx, from the status. `region` is null where no region
/// answers (the control API).
pub fn error_body(mut response: Response, region: Option<&str>) -> Response {
    let status = response.status();
    let info = response.extensions_mut().remove::<ErrorInfo>();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if info.is_none() && (!(status.is_client_error() || status.is_server_error()) || is_json) {
        return response;
    }
    let (code, message) = match info {
        Some(ErrorInfo { code, message }) => (code, message),
        None => {
            let code = code_for_status(status);
            let message = match code {
                ErrorCode::MethodNotAllowed => {
                    "method not allowed here; see the Allow header".to_owned()
                }
                _ => status.canonical_reason().unwrap_or("error").to_owned(),
            };
            (code, message)
        }
    };
    let body = ErrorBody::new(code, message, region);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let fresh = Json(body).into_response();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, fresh.into_body())
}

/// [`error_body`] as a layer, for the routers outside the regional API (the control API, with
/// no region; replication, with its region): `from_fn_with_state(region, error_bodies)`.
pub async fn error_bodies(
    State(region): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    error_body(next.run(req).await, region.as_deref())
}

/// Origin cloaking: with a secret configured, requests without `x-origin-verify: <secret>` are
/// refused (before CORS: the refusal carries no CORS headers), so the regional endpoints cannot
/// be called around the edge. On AWS the values come from the runtime secret and follow its
/// rotation ([`crate::origin`]).
async fn check_origin(config: &Config, headers: &http::HeaderMap) -> Option<Response> {
    let given = headers
        .get(ORIGIN_VERIFY)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    let through_the_edge = match (&config.origin_secrets, config.origin_secret.as_deref()) {
        (Some(secrets), _) => secrets.accepts(given).await,
        (None, Some(secret)) => bool::from(given.ct_eq(secret.as_bytes())),
        (None, None) => true,
    };
    (!through_the_edge).then(|| {
        ApiError::Client(
            ErrorCode::Forbidden,
            "requests must come through the edge".into(),
        )
        .into_response()
    })
}

const CORS_METHODS: &str = "GET, HEAD, PUT, POST, DELETE, OPTIONS";
const CORS_HEADERS: &str = "authorization, content-type, if-match, x-request-id";
const CORS_EXPOSE: &str = "x-served-region, server-timing, x-request-id, etag";

/// CORS for configured origins: preflights get 204 with the `access-control-*` headers, other
/// requests get `access-control-allow-origin`; any other origin gets no CORS headers at all.
async fn cors(config: &Config, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(ORIGIN)
        .filter(|o| {
            config
                .cors_origins
                .iter()
                .any(|a| a.as_bytes() == o.as_bytes())
        })
        .cloned();
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method");
    let mut response = if preflight {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static(CORS_METHODS),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(CORS_HEADERS),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", origin);
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static(CORS_EXPOSE),
    );
    h.append(VARY, HeaderValue::from_static("origin"));
    response
}

/// Injected faults on data routes: an error status, or added latency.
pub async fn inject_fault<S: Store>(
    State(state): State<AppState<S>>,
    req: Request,
    next: Next,
) -> Response {
    match state.fault().await {
        Fault::Error { status, .. } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            ApiError::Faulted(status).into_response()
        }
        Fault::Slow { latency_ms, .. } => {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
            next.run(req).await
        }
        Fault::None { .. } => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn boom() -> &'static str {
        std::panic::panic_any("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_error_body() {
        let config = Arc::new(Config {
            region: "us-east-1".into(),
            admin_token: None,
            origin_secret: None,
            cors_origins: vec![],
            ..Config::default()
        });
        let app = wrap(
            Router::new().route("/api/boom", axum::routing::get(boom)),
            config,
        );
        let req = Request::get("/api/boom").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[SERVED_REGION], "us-east-1");
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::Internal);
        assert!(
            !body.error.message.contains("boom"),
            "details stay in the logs"
        );
    }
}
