//! The error body every route answers with, and its codes.

use serde::{Deserialize, Serialize};

/// Error codes of contract §4. Each variant's doc names the status it is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the id is empty, too long or has a character outside `[A-Za-z0-9_.:-]`.
    InvalidId,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the request is well-formed but its content is wrong.
    BadRequest,
    /// 401: the admin token is missing or wrong.
    Unauthorized,
    /// 403: the origin secret is missing or wrong.
    Forbidden,
    /// 404: no such item, or no such route.
    NotFound,
    /// 405: the route exists, the method does not (the response carries `Allow`).
    MethodNotAllowed,
    /// 412: `If-Match` does not match the item's version.
    PreconditionFailed,
    /// 409: in strong consistency mode, another region was writing the same item at the same
    /// moment (DynamoDB's `ReplicatedWriteConflictException`). Sent with `Retry-After`: nothing
    /// was written; read the item again and retry (contract §10).
    WriteConflict,
    /// 413: the body or the stored item is too large.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 408: the request's body did not arrive in time.
    RequestTimeout,
    /// 503: the server answering (a region, the edge) is at one of its limits: connections,
    /// buffered bytes, pages produced at once. Sent with `Retry-After`; nothing is wrong with
    /// the request.
    Overloaded,
    /// 500: something broke inside; details are logged, never returned.
    Internal,
    /// 500/502/503/504: the region is faulted (on purpose, by the admin fault route) or down.
    RegionUnavailable,
}

impl ErrorCode {
    /// The HTTP status this code is normally sent with. `RegionUnavailable` may also be sent with
    /// the status an injected fault asks for.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidId | ErrorCode::InvalidJson | ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::WriteConflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Overloaded => 503,
            ErrorCode::Internal => 500,
            ErrorCode::RegionUnavailable => 503,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::WriteConflict => "write_conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::RegionUnavailable => "region_unavailable",
        }
    }
}

/// `{"code", "message"}` inside an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// `{"error": {"code", "message"}, "region"}`: the body of every error response, from a region,
/// the edge, the control API and replication alike. `region` is the region that answered, and
/// null when no region did (the edge's own 502/504, the control API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub region: Option<String>,
}

impl ErrorBody {
    /// A body with `code`'s message, answered by `region` (`None`: no region answered).
    pub fn new(code: ErrorCode, message: impl Into<String>, region: Option<&str>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
            region: region.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidId,
            ErrorCode::InvalidJson,
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::PreconditionFailed,
            ErrorCode::WriteConflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::RequestTimeout,
            ErrorCode::Overloaded,
            ErrorCode::Internal,
            ErrorCode::RegionUnavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            // Only the server's own states may be 5xx: a client's mistake never is.
            let server_side = matches!(
                code,
                ErrorCode::Internal | ErrorCode::RegionUnavailable | ErrorCode::Overloaded
            );
            assert_eq!(code.status() >= 500, server_side, "{code:?}");
        }
    }
}
