//! Tandem's regional API: one axum router that runs unchanged on AWS Lambda (behind an API
//! Gateway HTTP API) and as a local region process.
//!
//! Layout:
//! - [`router`]: builds the router for every route of contract §1 from a store and a [`Config`]
//!   ([`router_for`]: from an [`AppState`]).
//! - [`routes`]: item handlers (CRUD, list, the seed's `/api/read` and `/api/write`, health).
//! - [`admin`]: the admin fault routes.
//! - [`auth`]: the admin token, as the [`auth::Admin`] extractor.
//! - [`middleware`]: what wraps every response: region and timing headers, error bodies,
//!   origin cloaking, CORS, injected faults.
//! - [`origin`]: on AWS, the origin secrets accepted during and after a rotation.
//! - [`body`]: the JSON body extractor, which turns every client mistake into a 4xx.
//! - [`error`]: `ApiError`, the boundary's one error type.
//! - [`state`]: shared state, and the fault cache every instance polls.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers and shared types;
//!   [`responses`]: the error answers it shares between routes.
//! - [`store`]: the `Store` trait, the embedded (redb) store and the DynamoDB store.
//! - [`server`]: serving a router on a `TcpListener` until a shutdown future resolves.
//! - [`args`]: the region process's flags and the configuration they describe.
//! - [`cli`]: the region process's entry point (Lambda or TCP).
//! - [`secret`]: the runtime secret Secrets Manager holds for a region on AWS.
//! - [`lambda`]: the region on AWS Lambda (runtime secret, warmed DynamoDB client); with
//!   [`store::dynamo`], behind the `aws` feature (default), so the local stack builds without
//!   the AWS SDK.

pub mod admin;
pub mod args;
pub mod auth;
pub mod body;
pub mod cli;
pub mod error;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod middleware;
pub mod openapi;
pub mod origin;
pub mod responses;
pub mod routes;
pub mod secret;
pub mod server;
pub mod state;
pub mod store;

pub use error::ApiError;
pub use state::{AppState, Config};

use axum::Router;
use axum::routing::get;
use store::Store;

/// The router of contract §1 over `store`.
pub fn router<S: Store + Clone>(store: S, config: Config) -> Router {
    router_for(AppState::new(store, config))
}

/// [`router`] over state the caller already holds: Lambda's init has read the fault.
pub fn router_for<S: Store + Clone>(state: AppState<S>) -> Router {
    // Routes an admin fault can fail or slow down.
    let data = Router::new()
        .route("/api/items", get(routes::list_items::<S>))
        // An empty id still deserves `invalid_id`, not a bare 404.
        .route(
            "/api/items/",
            get(routes::empty_id)
                .put(routes::empty_id)
                .delete(routes::empty_id),
        )
        .route(
            "/api/items/{*id}",
            get(routes::get_item::<S>)
                .put(routes::put_item::<S>)
                .delete(routes::delete_item::<S>),
        )
        .route("/api/read", get(routes::read::<S>))
        .route("/api/write", axum::routing::post(routes::write::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::inject_fault::<S>,
        ));

    let router = Router::new()
        .merge(data)
        .route("/api/health", get(routes::health::<S>))
        .route("/api/openapi.json", get(openapi::serve))
        .route(
            "/api/admin/fault",
            get(admin::get_fault::<S>)
                .put(admin::put_fault::<S>)
                .delete(admin::clear_fault::<S>),
        )
        .fallback(routes::no_route)
        .with_state(state.clone());
    middleware::wrap(router, state.config.clone())
}
