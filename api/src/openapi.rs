//! The OpenAPI 3.1 document of every route, generated from the handlers and shared types.

use axum::Json;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tandem regional API", description = "One region of Tandem's item API. Every response carries x-served-region and server-timing."),
    paths(
        crate::routes::get_item,
        crate::routes::put_item,
        crate::routes::delete_item,
        crate::routes::list_items,
        crate::routes::read,
        crate::routes::write,
        crate::routes::health,
        crate::admin::get_fault,
        crate::admin::put_fault,
        crate::admin::clear_fault,
        openapi_json,
    ),
    components(schemas(
        tandem_shared::Item,
        tandem_shared::ErrorBody,
        tandem_shared::ErrorDetail,
        tandem_shared::ErrorCode,
        tandem_shared::Fault,
        tandem_shared::FaultState,
        tandem_shared::wire::PutBody,
        tandem_shared::wire::WriteBody,
        tandem_shared::wire::ItemResponse,
        tandem_shared::wire::ListResponse,
        tandem_shared::wire::HealthResponse,
        tandem_shared::wire::HealthStatus,
        tandem_shared::replication::RegionReplication,
        tandem_shared::replication::PairStatus,
        tandem_shared::replication::ReplicationConfig,
        tandem_shared::replication::LinkState,
        tandem_shared::replication::DigestState,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or_default());

/// `GET /api/openapi.json`
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    Json(DOCUMENT.clone())
}

/// The handler, public under a plain name for the router.
pub async fn serve() -> impl IntoResponse {
    openapi_json().await
}
