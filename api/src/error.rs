//! `ApiError`: the one error type of the HTTP boundary. Each variant's doc names its status.
//!
//! Handlers return it; [`crate::middleware::finish`] renders it as contract §4's error body,
//! because only there is the answering region known for every response, axum's own ones
//! included. Internal errors are logged with the request's span and never returned.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tandem_shared::validate::Rejection;
use tandem_shared::{ErrorBody, ErrorCode};

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 4xx: the client's mistake, with the code and message it gets.
    #[error("{1}")]
    Client(ErrorCode, String),
    /// 500/502/503/504: an admin fault asks this region to fail its data routes.
    #[error("region is faulted (injected {0})")]
    Faulted(StatusCode),
    /// 503: the storage underneath failed. Logged, answered as `region_unavailable` with
    /// `Retry-After`, so the edge fails over.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// 503: this region cannot vouch for a read (it is copying a peer's state after a lost
    /// disk or at first contact, and the item may exist there); `region_unavailable` with
    /// `Retry-After`, so the edge fails the read over.
    #[error("resyncing: {0}")]
    Resyncing(String),
    /// 409: another region wrote the same item at the same moment (strong consistency);
    /// answered `write_conflict` with `Retry-After`: nothing was written, a retry is safe.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// 503: this region cannot reach a majority of the consensus members (strong mode,
    /// contract §10); `region_unavailable` with `Retry-After`, so the edge fails a read over.
    #[error("no majority: {0}")]
    NoQuorum(String),
    /// 503: this region is at a limit of its own; answered `overloaded` with `Retry-After`.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// 500: anything else. Logged, answered as `internal` with no details.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::Client(ErrorCode::NotFound, what.into())
    }

    pub fn bad_request(what: impl Into<String>) -> Self {
        ApiError::Client(ErrorCode::BadRequest, what.into())
    }
}

impl From<Rejection> for ApiError {
    fn from((code, message): Rejection) -> Self {
        ApiError::Client(code, message)
    }
}

/// What [`crate::middleware::finish`] needs to render an error body, carried as a response
/// extension.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

/// An error the client should simply retry (a 503, or a write conflict's 409), with its code's
/// own status: `(status, code, message, Retry-After)`, as `into_response` below renders an error.
fn retry_shortly(code: ErrorCode, message: String) -> (StatusCode, ErrorCode, String, bool) {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, code, message, true)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The 503s a client should simply retry (the edge has failed a read over already), and a
        // write conflict, say when: `Retry-After`.
        let (status, code, message, retry) = match self {
            ApiError::Client(code, message) => (
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                code,
                message,
                false,
            ),
            ApiError::Faulted(status) => (
                status,
                ErrorCode::RegionUnavailable,
                format!(
                    "this region is unavailable (injected fault, status {})",
                    status.as_u16()
                ),
                false,
            ),
            ApiError::Unavailable(err) => {
                tracing::error!(error = ?err, "storage unavailable");
                let message = "this region's storage is unavailable; see its logs".to_owned();
                retry_shortly(ErrorCode::RegionUnavailable, message)
            }
            ApiError::Resyncing(why) => {
                let message = format!("this region cannot vouch for this read yet: {why}");
                retry_shortly(ErrorCode::RegionUnavailable, message)
            }
            ApiError::Conflict(why) => {
                tracing::info!(%why, "replicated write conflict");
                let message = format!(
                    "another region was writing this item at the same moment ({why}); nothing \
                     was written: read it again and retry"
                );
                retry_shortly(ErrorCode::WriteConflict, message)
            }
            ApiError::NoQuorum(why) => {
                tracing::warn!(%why, "no majority");
                let message =
                    format!("this region cannot reach a majority of the consensus members: {why}");
                retry_shortly(ErrorCode::RegionUnavailable, message)
            }
            ApiError::Overloaded(why) => {
                tracing::warn!(%why, "overloaded");
                let message = format!("this region is at a limit ({why}); retry shortly");
                retry_shortly(ErrorCode::Overloaded, message)
            }
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error; see the region's logs".to_owned(),
                    false,
                )
            }
        };
        let mut response = status.into_response();
        if retry {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
            .extensions_mut()
            .insert(ErrorInfo { code, message });
        response
    }
}

/// An error response with contract §4's body, for the boundaries that have no region middleware
/// (the edge, the control API, replication). `region` is null when no region answered.
/// `status` defaults to the code's own status.
pub fn respond(
    code: ErrorCode,
    status: Option<StatusCode>,
    message: impl Into<String>,
    region: Option<&str>,
) -> Response {
    let status = status
        .or_else(|| StatusCode::from_u16(code.status()).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody::new(code, message, region);
    (status, axum::Json(body)).into_response()
}
