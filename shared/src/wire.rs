//! Request and response bodies of the regional API (contract §1).

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
    pub fault: Fault,
    /// What the store knows of replication.
    pub replication: RegionReplication,
    /// Why the region cannot serve (or vouch for reads), when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
