//! How replication between local regions is doing, as health, the control API, `tandem verify`
//! and the console all show it: one type per concept, serialised the same way everywhere.

use serde::{Deserialize, Serialize};

/// Replication settings that can change at run time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicationConfig {
    pub paused: bool,
    pub lag_ms: u64,
}

/// The state of one replication link (a peer's writes flowing into a region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Not pulled yet since this region started.
    #[default]
    Starting,
    /// The last pull worked.
    Ok,
    /// Replication is paused by the operator.
    Paused,
    /// The peer's data changed identity or its log has a gap: copying its whole state.
    Resyncing,
    /// The last pull failed (peer down, refused, or it answered something impossible).
    Failing,
    /// Pulls have failed for longer than [`STALLED_AFTER_MS`].
    Stalled,
}

impl LinkState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Starting => "starting",
            LinkState::Ok => "ok",
            LinkState::Paused => "paused",
            LinkState::Resyncing => "resyncing",
            LinkState::Failing => "failing",
            LinkState::Stalled => "stalled",
        }
    }
}

/// A link whose last successful pull is older than this is reported as stalled.
pub const STALLED_AFTER_MS: u64 = 10_000;

/// Whether two regions' state digests match (anti-entropy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DigestState {
    /// Not compared yet, or compared while writes were still in flight.
    #[default]
    Unknown,
    /// Every bucket matched at the last comparison.
    Agree,
    /// Some buckets differed while this region was caught up; they were repaired.
    Differ,
}

impl DigestState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestState::Unknown => "unknown",
            DigestState::Agree => "agree",
            DigestState::Differ => "differ",
        }
    }
}

/// One replication link: writes of `from` applied in `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PairStatus {
    pub from: String,
    pub to: String,
    pub state: LinkState,
    /// Last sequence number of `from`'s outbox applied in `to`.
    pub applied: u64,
    /// `from`'s latest sequence number, as of the last successful pull.
    pub source_head: u64,
    /// Writes accepted in `from` and not yet applied in `to` (as of the last pull).
    pub pending: u64,
    /// Time from a write's acceptance in `from` to its application in `to`.
    pub lag_p50_ms: Option<u64>,
    pub lag_p99_ms: Option<u64>,
    pub lag_max_ms: Option<u64>,
    pub samples: usize,
    /// Milliseconds since the epoch of the last successful pull.
    pub last_pull_ms: Option<u64>,
    /// Why the last pull failed, while it does.
    pub last_error: Option<String>,
    pub digest: DigestState,
    /// Full copies of the peer's state made (identity change, log gap).
    pub resyncs: u64,
    /// Records taken from the peer by anti-entropy repair.
    pub repaired: u64,
    /// Answers refused because they were unsigned, forged or impossible.
    pub refused: u64,
}

impl PairStatus {
    /// The state to report at `now_ms`: a failing link whose last success is old is stalled.
    pub fn state_at(&self, now_ms: u64, started_ms: u64) -> LinkState {
        let since = self.last_pull_ms.unwrap_or(started_ms);
        match self.state {
            LinkState::Failing | LinkState::Starting
                if now_ms.saturating_sub(since) > STALLED_AFTER_MS =>
            {
                LinkState::Stalled
            }
            s => s,
        }
    }
}

/// Answer to a region's `GET /_replication/status`, and its health's `replication` field: a
/// local region's links and figures, or, on AWS, only which table replicates itself
/// (`store: "dynamodb"`, `table`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegionReplication {
    pub region: String,
    /// `embedded` (a local region, which replicates itself) or `dynamodb` (the global table
    /// replicates, and the fields below stay empty).
    pub store: String,
    /// The DynamoDB table, on AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// This region's data identity: a new one after its disk was lost.
    pub incarnation: String,
    pub config: ReplicationConfig,
    pub outbox_head: u64,
    /// Outbox entries up to here were applied by every peer and compacted away.
    pub outbox_floor: u64,
    pub pairs: Vec<PairStatus>,
    /// Hex digest of each bucket of this region's live items.
    pub digests: Vec<String>,
    /// How far the region's last write stamp is ahead of its clock: after a clock that ran
    /// ahead is corrected, new stamps stay frozen at the last one for this long (at most
    /// `max_stamps_ahead_ms`, past which they follow the clock again).
    #[serde(default)]
    pub stamps_ahead_ms: u64,
    #[serde(default)]
    pub max_stamps_ahead_ms: u64,
    /// Times stamps were let go back to the clock because it was further behind than that.
    #[serde(default)]
    pub clock_resets: u64,
}

/// The longest a region's write stamps stay frozen when its clock steps back (see
/// [`RegionReplication::stamps_ahead_ms`]): within it, stamps never go backwards; past it (a
/// clock that ran far ahead and was corrected) they follow the clock again, so stamps are never
/// frozen for longer than this. Each id's writes still only move forward.
pub const MAX_STAMPS_AHEAD_MS: u64 = 10_000;

impl RegionReplication {
    /// True when every link is healthy (or paused on purpose).
    pub fn healthy(&self) -> bool {
        self.pairs
            .iter()
            .all(|p| matches!(p.state, LinkState::Ok | LinkState::Paused))
    }
}

/// Which write a region holds for an id, as `tandem verify` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteKey {
    /// RFC 3339 with milliseconds.
    pub updated_at: String,
    pub updated_in: String,
    pub version: u64,
}

/// An id whose regions hold different writes (`None`: absent or deleted there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub id: String,
    pub held: std::collections::BTreeMap<String, Option<WriteKey>>,
}

/// Answer to `GET /_tandem/verify`: do all regions hold the same live items?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Verdict {
    /// True when every region answered and every digest matched.
    pub agree: bool,
    /// Regions compared.
    pub regions: Vec<String>,
    /// Regions that could not be asked (down, crashed, blackholed).
    pub unavailable: Vec<String>,
    /// Digest buckets that differed.
    pub differing_buckets: Vec<usize>,
    /// The first ids (at most [`DIFFERENCES_SHOWN`], in id order) behind those buckets, with
    /// what each region holds.
    pub differences: Vec<Difference>,
    /// How many ids differ in all (the comparison walks every one, keeping only the first).
    #[serde(default)]
    pub differing_ids: u64,
}

/// The most differences a [`Verdict`] lists: the comparison's memory does not grow with them.
pub const DIFFERENCES_SHOWN: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire() {
        for s in [
            LinkState::Starting,
            LinkState::Ok,
            LinkState::Paused,
            LinkState::Resyncing,
            LinkState::Failing,
            LinkState::Stalled,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for d in [
            DigestState::Unknown,
            DigestState::Agree,
            DigestState::Differ,
        ] {
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
    }

    #[test]
    fn a_failing_link_turns_stalled_after_a_while() {
        let p = PairStatus {
            state: LinkState::Failing,
            last_pull_ms: Some(1_000),
            ..PairStatus::default()
        };
        assert_eq!(p.state_at(1_000 + STALLED_AFTER_MS, 0), LinkState::Failing);
        assert_eq!(p.state_at(1_001 + STALLED_AFTER_MS, 0), LinkState::Stalled);
        let ok = PairStatus {
            state: LinkState::Ok,
            ..p
        };
        assert_eq!(ok.state_at(u64::MAX, 0), LinkState::Ok);
    }
}
