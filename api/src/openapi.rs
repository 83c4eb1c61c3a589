//! The OpenAPI 3.1 document of every route, generated from the handlers and shared types, then
//! finished for its consumers ([`ForConsumers`]): the server it is served from, `security: []`
//! on every public operation (only the admin routes need the token), and the error answers as
//! reusable responses, one per status ([`ERRORS`]), which each route names by set
//! ([`ReadErrors`], [`WriteErrors`], …) instead of repeating rows.

use axum::Json;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi};

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

/// The error answers every route shares, by status: what each means, whatever the route.
const ERRORS: [(&str, &str); 9] = [
    (
        "400",
        "The request is wrong: invalid_id, invalid_json or bad_request (the message says what)",
    ),
    ("401", "The admin token is missing or wrong"),
    (
        "403",
        "The origin secret is missing or wrong: the regional endpoints answer only through the edge",
    ),
    (
        "404",
        "No such item (absent or deleted), or no admin token is configured for the admin routes",
    ),
    ("408", "The request body did not arrive in time"),
    (
        "412",
        "If-Match does not hold (or the item is absent); nothing was written or deleted",
    ),
    (
        "413",
        "The body (1 MiB) or the stored item (400 KB) is too large",
    ),
    ("415", "The body is not application/json"),
    (
        "503",
        "The region cannot answer: an injected fault, failed storage, a read it cannot vouch for while it resyncs (region_unavailable), or a limit of its own (overloaded); Retry-After when a retry will do",
    ),
];

/// The name of the shared response of an error status.
fn error_response(status: &str) -> String {
    format!("Error{status}")
}

/// References to the shared responses of `statuses`.
fn errors(statuses: &[&str]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|s| {
            let reference = Ref::from_response_name(error_response(s));
            ((*s).to_owned(), RefOr::Ref(reference))
        })
        .collect()
}

/// A named set of error answers a route can give, for `responses(...)` of `utoipa::path`.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                errors(&[$($status),+])
            }
        }
    };
}

error_set!(
    /// A read of one item.
    ReadErrors: "400", "403", "404", "503"
);
error_set!(
    /// A write with a body (`PUT`, `POST /api/write`).
    WriteErrors: "400", "403", "408", "412", "413", "415", "503"
);
error_set!(
    /// A delete.
    DeleteErrors: "400", "403", "412", "503"
);
error_set!(
    /// A page of the list.
    ListErrors: "400", "403", "503"
);
error_set!(
    /// Health and this document: only the origin secret can be wrong.
    CloakedErrors: "403"
);
error_set!(
    /// An admin read or clear.
    AdminErrors: "401", "403", "404"
);
error_set!(
    /// An admin write with a body.
    AdminWriteErrors: "400", "401", "403", "404", "408", "413", "415"
);

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
