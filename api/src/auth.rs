//! The admin token, as an extractor: a handler that takes [`Admin`] runs only for requests that
//! carry `Authorization: Bearer <admin token>` (compared in constant time). The admin fault
//! routes, the local control API and the replication settings are guarded by it.

use crate::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tandem_shared::ErrorCode;

/// Checks `Authorization: Bearer <token>`: 404 when no token is configured (the routes do not
/// exist then), 401 when it is missing or wrong.
pub fn authorize(expected: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::not_found(
            "admin routes are off: no admin token is configured",
        ));
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are `Bearer`.
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) && !given.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Client(
            ErrorCode::Unauthorized,
            "missing or wrong admin token (Authorization: Bearer <token>)".into(),
        ))
    }
}

/// The admin token a router checks; `None` turns the admin routes off (they answer 404).
#[derive(Debug, Clone, Default)]
pub struct AdminToken(pub Option<Arc<str>>);

impl AdminToken {
    pub fn new(token: Option<&str>) -> AdminToken {
        AdminToken(token.filter(|t| !t.is_empty()).map(Arc::from))
    }
}

/// Passes only requests that carry `Authorization: Bearer <admin token>` (see [`authorize`]):
/// the one guard of the admin, control and replication-config routes.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin
where
    AdminToken: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admin, ApiError> {
        let AdminToken(token) = AdminToken::from_ref(state);
        authorize(token.as_deref(), &parts.headers).map(|()| Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        for ok in ["Bearer t0k", "bearer t0k", "BEARER t0k"] {
            assert!(authorize(Some("t0k"), &with(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "Bearer T0K",
            "Basic t0k",
            "Bearer",
            "Bearer ",
            "t0k",
            "Bearer t0kx",
        ] {
            assert!(authorize(Some("t0k"), &with(bad)).is_err(), "{bad}");
        }
        assert!(authorize(Some("t0k"), &HeaderMap::new()).is_err());
        assert!(matches!(
            authorize(None, &with("Bearer t0k")),
            Err(ApiError::Client(ErrorCode::NotFound, _))
        ));
    }
}
