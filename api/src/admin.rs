//! Admin routes: read, set and clear this region's fault, behind a bearer token.
//!
//! They are not fault-injected themselves, so a faulted region can always be healed.

use crate::auth::Admin;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Store, StoredFault, now_ms};
use axum::Json;
use axum::extract::State;
use tandem_shared::item::format_timestamp;
use tandem_shared::{Fault, FaultState};

/// A `slow` fault longer than this deployment allows (on Lambda, the function's timeout) is a
/// client's mistake, answered 400 with the limit.
fn check_latency_cap(fault: &Fault, cap: Option<u64>) -> Result<(), ApiError> {
    match (fault, cap) {
        (Fault::Slow { latency_ms, .. }, Some(cap)) if *latency_ms > cap => {
            Err(ApiError::bad_request(format!(
                "latency_ms must be at most {cap} here (got {latency_ms}): the function's \
                 timeout stops a longer request anyway, which the edge fails over just the same"
            )))
        }
        _ => Ok(()),
    }
}

async fn state_body<S: Store>(state: &AppState<S>) -> FaultState {
    let stored = state.stored_fault().await;
    let now = now_ms();
    let fault = stored.map(|f| f.current(now)).unwrap_or(Fault::NONE);
    let expires_at = stored
        .filter(|_| !fault.is_none())
        .and_then(|f| f.expires_at_ms)
        .map(format_timestamp);
    FaultState {
        fault,
        expires_at,
        region: state.config.region.clone(),
    }
}

/// `GET /api/admin/fault`
#[utoipa::path(get, path = "/api/admin/fault", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current fault", body = FaultState),
        crate::responses::AdminErrors,
    ))]
pub async fn get_fault<S: Store>(
    State(state): State<AppState<S>>,
    _: Admin,
) -> Result<Json<FaultState>, ApiError> {
    Ok(Json(state_body(&state).await))
}

/// `PUT /api/admin/fault`
#[utoipa::path(put, path = "/api/admin/fault", tag = "admin", security(("bearer" = [])),
    request_body(content = Fault, content_type = "application/json"),
    responses(
        (status = 200, description = "The fault now set", body = FaultState),
        crate::responses::AdminWriteErrors,
    ))]
pub async fn put_fault<S: Store>(
    State(state): State<AppState<S>>,
    _: Admin,
    body: Result<JsonBody<Fault>, ApiError>,
) -> Result<Json<FaultState>, ApiError> {
    let JsonBody(fault) = body?;
    fault.validate().map_err(ApiError::bad_request)?;
    check_latency_cap(&fault, state.config.max_fault_latency_ms)?;
    let expires_at_ms = fault.duration_s().map(|d| now_ms() + d * 1000);
    state
        .set_fault(StoredFault {
            fault,
            expires_at_ms,
        })
        .await?;
    tracing::warn!(?fault, "admin fault set");
    Ok(Json(state_body(&state).await))
}

/// `DELETE /api/admin/fault`
#[utoipa::path(delete, path = "/api/admin/fault", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Cleared; the body shows no fault", body = FaultState),
        crate::responses::AdminErrors,
    ))]
pub async fn clear_fault<S: Store>(
    State(state): State<AppState<S>>,
    _: Admin,
) -> Result<Json<FaultState>, ApiError> {
    state
        .set_fault(StoredFault {
            fault: Fault::NONE,
            expires_at_ms: None,
        })
        .await?;
    tracing::warn!("admin fault cleared");
    Ok(Json(state_body(&state).await))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_shared::ErrorCode;

    #[test]
    fn a_slow_fault_longer_than_the_cap_is_a_400_with_the_limit() {
        let slow = |latency_ms| Fault::Slow {
            latency_ms,
            duration_s: None,
        };
        assert!(
            check_latency_cap(&slow(60_000), None).is_ok(),
            "no cap off AWS"
        );
        assert!(check_latency_cap(&slow(4_000), Some(4_000)).is_ok());
        let Err(ApiError::Client(ErrorCode::BadRequest, message)) =
            check_latency_cap(&slow(4_001), Some(4_000))
        else {
            panic!("a 400 above the cap");
        };
        assert!(message.contains("at most 4000"), "{message}");
        let error = Fault::Error {
            status: 503,
            duration_s: None,
        };
        assert!(check_latency_cap(&error, Some(1)).is_ok());
    }
}
