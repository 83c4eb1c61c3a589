//! The replication routes' paths and queries, one type each, used by the region that serves
//! them and by everyone who asks (peers' pullers, the control API, `tandem verify`).

use serde::{Deserialize, Serialize};

/// A peer's outbox after a position: `GET /_replication/changes`.
pub const CHANGES: &str = "/_replication/changes";
/// A region's whole state (or some digest buckets of it), a page at a time.
pub const ITEMS: &str = "/_replication/items";
/// A region's per-bucket digests and outbox head.
pub const DIGESTS: &str = "/_replication/digests";
/// A region's replication figures (the supervisor's call).
pub const STATUS: &str = "/_replication/status";
/// A region's replication settings (the supervisor's call).
pub const CONFIG: &str = "/_replication/config";
/// A region's proof that it holds the replication key (anyone's call).
pub const PROOF: &str = "/_replication/proof";

/// The query of [`CHANGES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesQuery {
    /// The last sequence number the asker holds (applied or held back for the lag).
    pub after: u64,
    /// How far the asker has durably applied (at most `after`): what may be compacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// The incarnation of the asked region that `after` refers to (0: none yet).
    #[serde(default)]
    pub incarnation: u64,
    /// At most this many changes; 0 asks for the head only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// When nothing is new, wait this long for a local write before answering (a long poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// The query of [`ITEMS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsQuery {
    /// Where the page starts (exclusive), as the previous page said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// A mask of digest buckets (bit b: bucket b); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
}

/// `path?query`, as it is sent and signed.
fn with_query(path: &str, query: &impl Serialize) -> String {
    match serde_urlencoded::to_string(query) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

impl ChangesQuery {
    pub fn path(&self) -> String {
        with_query(CHANGES, self)
    }
}

impl ItemsQuery {
    pub fn path(&self) -> String {
        with_query(ITEMS, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_through_their_paths() {
        let changes = ChangesQuery {
            after: 7,
            applied: Some(5),
            incarnation: 9,
            limit: Some(0),
            max_bytes: None,
            wait_ms: Some(1000),
        };
        let path = changes.path();
        assert_eq!(
            path,
            "/_replication/changes?after=7&applied=5&incarnation=9&limit=0&wait_ms=1000"
        );
        let query = path.split_once('?').unwrap().1;
        assert_eq!(
            serde_urlencoded::from_str::<ChangesQuery>(query).unwrap(),
            changes
        );
        let items = ItemsQuery {
            after: Some("a:b.c".into()),
            buckets: Some(3),
            max_bytes: None,
        };
        let query = items.path().split_once('?').unwrap().1.to_owned();
        assert_eq!(
            serde_urlencoded::from_str::<ItemsQuery>(&query).unwrap(),
            items
        );
        assert_eq!(ItemsQuery::default().path(), ITEMS);
    }
}
