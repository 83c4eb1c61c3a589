//! The JSON body extractor: every way a body can be wrong becomes a 4xx with its own code.

use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use serde_json::error::Category;
use tandem_shared::validate::{self, MAX_BODY_BYTES, Rejection, is_json_content_type};
use tandem_shared::wire::{PutBody, WriteBody};
use tandem_shared::{ErrorCode, Fault};

/// A request body that is `application/json`, at most [`MAX_BODY_BYTES`], and a valid `T`.
/// Handlers take `Result<JsonBody<T>, ApiError>` so they can check the id before the body.
pub struct JsonBody<T>(pub T);

/// A body type the API accepts, with the rules it is checked by.
pub trait FromJson: Sized {
    fn from_json(body: &[u8]) -> Result<Self, Rejection>;
}

impl FromJson for PutBody {
    fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        validate::parse_put_body(body)
    }
}

impl FromJson for WriteBody {
    fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        validate::parse_write_body(body)
    }
}

impl FromJson for Fault {
    fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        serde_json::from_slice(body).map_err(|e| match e.classify() {
            Category::Data => (ErrorCode::BadRequest, format!("invalid fault: {e}")),
            _ => (
                ErrorCode::InvalidJson,
                format!("body is not valid JSON: {e}"),
            ),
        })
    }
}

impl<S: Send + Sync, T: FromJson> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json_content_type(content_type) {
            return Err(ApiError::Client(
                ErrorCode::UnsupportedMediaType,
                "the body must be sent with Content-Type: application/json".into(),
            ));
        }
        // Streamed with a limit: a longer body (or a Content-Length that says so) is refused
        // before more than the limit is read.
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(crate::server::body_error)?;
        Ok(JsonBody(T::from_json(&bytes)?))
    }
}
