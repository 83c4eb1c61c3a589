//! The error answers of the OpenAPI document: one shared response per status ([`ERRORS`]),
//! and the named sets of them each route's `utoipa::path` lists ([`ReadErrors`],
//! [`WriteErrors`], …) instead of repeating rows. [`crate::openapi`] puts the shared responses in
//! the document's components.

use std::collections::BTreeMap;
use utoipa::IntoResponses;
use utoipa::openapi::{Ref, RefOr, Response};

/// The error answers every route shares, by status: what each means, whatever the route.
pub const ERRORS: [(&str, &str); 10] = [
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
        "409",
        "Strong consistency only: another region was writing the same item at the same moment (write_conflict); nothing was written, retry after Retry-After",
    ),
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
pub fn error_response(status: &str) -> String {
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
    WriteErrors: "400", "403", "408", "409", "412", "413", "415", "503"
);
error_set!(
    /// A delete.
    DeleteErrors: "400", "403", "409", "412", "503"
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
