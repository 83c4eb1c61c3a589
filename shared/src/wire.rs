//! Request and response bodies of the regional API (contract §1), and the paths of its item
//! routes ([`path`]), built one way for every client.

use crate::consistency::Consistency;
use crate::fault::Fault;
use crate::item::{Data, Item};
use crate::replication::RegionReplication;
use serde::{Deserialize, Serialize};

/// Body of `PUT /api/items/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutBody {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Data,
}

/// Body of `POST /api/write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WriteBody {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9_.:-]{1,256}$")
    )]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Data,
}

/// `{"item", "region"}`: one item and the region that served it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemResponse {
    pub item: Item,
    pub region: String,
}

/// `{"items", "next_cursor", "region"}`: one page of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListResponse {
    pub items: Vec<Item>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub region: String,
}

/// What `GET /api/health` says of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Serving (200).
    Ok,
    /// An admin fault is set (503).
    Faulted,
    /// The store failed: an I/O error, a full or missing disk, a stalled commit (503).
    Unavailable,
    /// The region is copying a peer's state (a new disk, or first contact) and cannot yet
    /// vouch that an item it does not hold is absent (503; such reads answer 503 too).
    Resyncing,
}

impl HealthStatus {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Faulted => "faulted",
            HealthStatus::Unavailable => "unavailable",
            HealthStatus::Resyncing => "resyncing",
        }
    }
}

/// Body of `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    pub region: String,
    pub status: HealthStatus,
    /// The consistency mode of the data the region serves (contract §10). Absent from answers
    /// of regions older than the field: those are eventual.
    #[serde(default)]
    pub consistency: Consistency,
    pub fault: Fault,
    /// What the store knows of replication.
    pub replication: RegionReplication,
    /// Why the region cannot serve (or vouch for reads), when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Paths of the item routes (contract §1, §6.1), built here and nowhere else: the item client
/// (`tandem_ops::items`) and every tool that times raw requests take their paths from these.
///
/// Ids are not encoded: a valid id (contract §2, `[A-Za-z0-9_.:-]`) needs no encoding, and an
/// invalid one is the API's to refuse (400 `invalid_id`), not the path's to hide.
pub mod path {
    use std::fmt::Write as _;

    /// `GET` a page, under it one item's `GET`, `PUT`, `DELETE`.
    pub const ITEMS: &str = "/api/items";
    /// The original service's read route: `GET /api/read?id=`.
    pub const READ: &str = "/api/read";
    /// The original service's write route: `POST /api/write` with `{"id", "data"}`.
    pub const WRITE: &str = "/api/write";
    /// The edge's prefix of the paths that reach one region only (contract §6.1).
    pub const REGION_PREFIX: &str = "/region";

    /// `/api/items/{id}`.
    pub fn item(id: &str) -> String {
        format!("{ITEMS}/{id}")
    }

    /// `/api/items`, with `?limit=` and `&cursor=` when given (the API's default limit
    /// otherwise). The cursor is escaped: the API's own are URL-safe already, but a cursor is
    /// opaque to clients and must not break the query whatever it holds.
    pub fn list(limit: Option<usize>, cursor: Option<&str>) -> String {
        let mut path = ITEMS.to_owned();
        let mut sep = '?';
        if let Some(limit) = limit {
            let _ = write!(path, "{sep}limit={limit}");
            sep = '&';
        }
        if let Some(cursor) = cursor {
            let _ = write!(path, "{sep}cursor=");
            escape_into(&mut path, cursor);
        }
        path
    }

    /// `/api/read?id={id}`.
    pub fn read(id: &str) -> String {
        format!("{READ}?id={id}")
    }

    /// `path` (one starting with `/api/`) sent through the edge to `region` only, with no
    /// failover: `/region/{region}{path}`.
    pub fn in_region(region: &str, path: &str) -> String {
        format!("{REGION_PREFIX}/{region}{path}")
    }

    /// Percent-encodes every byte outside RFC 3986's unreserved characters.
    fn escape_into(out: &mut String, value: &str) {
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn item_paths() {
            assert_eq!(item("a-1.b:c_d"), "/api/items/a-1.b:c_d");
            assert_eq!(read("x"), "/api/read?id=x");
            assert_eq!(WRITE, "/api/write");
        }

        #[test]
        fn list_paths_carry_what_is_given() {
            assert_eq!(list(None, None), "/api/items");
            assert_eq!(list(Some(100), None), "/api/items?limit=100");
            assert_eq!(list(None, Some("YQ")), "/api/items?cursor=YQ");
            assert_eq!(
                list(Some(5), Some("a-b_c")),
                "/api/items?limit=5&cursor=a-b_c"
            );
            // Not one of the API's cursors, and still one query parameter.
            assert_eq!(
                list(Some(1), Some("a+b/c=&d")),
                "/api/items?limit=1&cursor=a%2Bb%2Fc%3D%26d"
            );
        }

        #[test]
        fn region_paths_go_through_the_edge_s_prefix() {
            assert_eq!(
                in_region("us-west-2", &item("x")),
                "/region/us-west-2/api/items/x"
            );
            assert_eq!(
                in_region("us-east-1", &list(Some(10), None)),
                "/region/us-east-1/api/items?limit=10"
            );
        }
    }
}
