//! The JSON body extractor: every way a body can be wrong becomes a 4xx with its own code.

use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use serde_json::Value;
use tandem_shared::ErrorCode;
use tandem_shared::validate::{MAX_BODY_BYTES, is_json_content_type, parse_json};

/// A request body that is `application/json`, at most [`MAX_BODY_BYTES`], and valid JSON.
/// Handlers take `Result<JsonBody, ApiError>` so they can check the id before the body.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
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
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::Client(
                    ErrorCode::PayloadTooLarge,
                    format!("the body must be at most {MAX_BODY_BYTES} bytes"),
                )
            })?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}
