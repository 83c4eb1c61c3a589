//! The OpenAPI 3.1 document of every route, generated from the handlers and shared types, then
//! finished for its consumers ([`ForConsumers`]): the server it is served from, `security: []`
//! on every public operation (only the admin routes need the token), and the error answers as
//! reusable responses, one per status, which each route names by set ([`crate::responses`]).

use crate::responses::{CloakedErrors, ERRORS, error_response};
use axum::Json;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tandem regional API", description = "One region of Tandem's item API (docs/contract.md). Every response carries x-served-region and server-timing.", license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")),
    servers((url = "/", description = "The edge this document was fetched from (CloudFront on AWS, 127.0.0.1:8080 locally); the regional endpoints answer only through it")),
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
    modifiers(&BearerAuth, &ForConsumers),
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

/// Finishes the generated document for the tools that read it (see the module's doc).
struct ForConsumers;

impl Modify for ForConsumers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.head,
                &mut item.options,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                // No requirement at all: the operation is public (OpenAPI: an empty list).
                op.security.get_or_insert_with(Vec::new);
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, description) in ERRORS {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build();
            components
                .responses
                .insert(error_response(status), RefOr::T(response));
        }
    }
}

static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or_default());

/// `GET /api/openapi.json`
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses(
        (status = 200, description = "This document", content_type = "application/json"),
        CloakedErrors,
    ))]
async fn openapi_json() -> impl IntoResponse {
    Json(DOCUMENT.clone())
}

/// The handler, public under a plain name for the router.
pub async fn serve() -> impl IntoResponse {
    openapi_json().await
}
