//! The strong mode (`tandem up --consistency strong`, contract §10): three members, the two
//! regions and a witness, agree on one log of writes through Raft (openraft 0.9).
//!
//! - [`log`]: each member's log and vote, in redb, fsynced before they count.
//! - [`state`]: the state machine: the member's own [`EmbeddedStore`], which applies each
//!   committed write in log order (the `If-Match` check happens there) and is the snapshot.
//! - [`network`]: Raft's messages between members, signed like replication requests
//!   ([`crate::replication::client`]), with an optional injected delay per link.
//! - [`routes`]: the member's `/_consensus/*` routes: Raft's messages, writes forwarded to the
//!   leader, read indexes, joins, and the member's status.
//! - [`node`]: one running member: writes (proposed, or forwarded to the leader), linearizable
//!   read barriers, the status.
//! - [`members`]: how the cluster forms at the stack's first start, and how a member that lost
//!   its disk rejoins under a new node id and replaces its old one.
//! - [`report`]: `tandem consensus`, the control API's status as text.
//! - [`store`]: the [`tandem_api::store::Store`] the region's router runs on in this mode.
//!
//! Node ids are `generation << 8 | index`: `index` is the member's place in the stack
//! (us-east-1 0, us-west-2 1, the witness 2), `generation` counts the times it lost its disk.

pub mod log;
pub mod members;
pub mod network;
pub mod node;
pub mod report;
pub mod routes;
pub mod state;
pub mod store;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;
use tandem_shared::item::Record;

pub use node::{Handle, Node};

openraft::declare_raft_types!(
    /// The types of Tandem's consensus log.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = Member,
);

/// The `/_consensus/*` routes ([`routes`] serves them; [`network`], [`node`] and [`members`]
/// call them).
pub mod path {
    /// Raft's append (and heartbeat), vote and snapshot chunk: members only.
    pub const APPEND: &str = "/_consensus/append";
    pub const VOTE: &str = "/_consensus/vote";
    pub const SNAPSHOT: &str = "/_consensus/snapshot";
    /// A write forwarded to the leader: `Result<Applied, String>`.
    pub const WRITE: &str = "/_consensus/write";
    /// The leader's read index: `Result<Option<u64>, String>`.
    pub const READ_INDEX: &str = "/_consensus/read-index";
    /// A member that lost its disk asks the leader for a new node id: `Result<u64, String>`.
    pub const JOIN: &str = "/_consensus/join";
    /// The member's `MemberStatus` (the supervisor's call).
    pub const STATUS: &str = "/_consensus/status";
}

/// A member's running Raft.
pub type Raft = openraft::Raft<TypeConfig>;

/// One of Raft's messages (append, vote, snapshot chunk) with the node id it is for. A member
/// that lost its disk comes back at the same address under a new node id: the leader still
/// sends to its old id until the membership change replaces it, and were the new member to
/// answer those as its own, the old voter's log would seem to go back, which openraft refuses
/// by panicking in the leader (its core then stops, and the stack with it). So a member answers
/// only messages for its own id; the rest get 503, which the sender takes as unreachable.
#[derive(Debug, Serialize, Deserialize)]
pub struct Addressed<T> {
    pub to: u64,
    pub message: T,
}

/// How long a strong request may wait for the majority (a write's commit, a read's barrier, a
/// leader to appear) before it is answered 503: below the edge's origin read timeout (4 s), so
/// the region answers its own 503 and the edge fails a read over.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A leader that has not heard from a majority for this long refuses writes at once, without
/// appending them: they would wait [`REQUEST_TIMEOUT`] and fail.
pub const QUORUM_STALE: Duration = Duration::from_millis(1_000);
/// Raft's heartbeat, and its election timeout range: a dead leader is replaced within about
/// the election timeout plus one election round. openraft gives each append (heartbeats
/// included) one heartbeat interval to be answered, so the interval must hold a round trip on
/// the slowest link (65 ms injected between the regions), the follower's fsync and a loaded
/// laptop's scheduling: 250 ms.
pub const HEARTBEAT_MS: u64 = 250;
pub const ELECTION_TIMEOUT_MS: (u64, u64) = (1_000, 2_000);
/// Most entries in one append: with items of up to 400 KB, an append carries at most ~13 MB.
pub const MAX_PAYLOAD_ENTRIES: u64 = 32;
/// Largest body of a consensus request (an append at [`MAX_PAYLOAD_ENTRIES`], a snapshot chunk).
pub const MAX_BODY: usize = 16 << 20;
/// A snapshot is sent in chunks of this size.
pub const SNAPSHOT_CHUNK: u64 = 1 << 20;
/// By default a snapshot is taken every this many entries, and that many are kept behind it
/// for members that fall a little behind.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

/// One write, as the log carries it: the store's decided write. The leader decides `stamp_ms`
/// (0 until then) when it proposes the write; every member applies the same command to the same
/// state and gets the same record.
pub use tandem_api::store::embedded::Decided as Command;

/// What applying a [`Command`] did, as the leader answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    /// A put, or a delete (the tombstone); `replaced` when a live item was there.
    Written { record: Record, replaced: bool },
    /// A delete that found nothing, or an entry that is no write (a membership change).
    Nothing,
    /// `If-Match` did not hold when the write came to be applied: nothing changed.
    PreconditionFailed,
    /// The record would have been this many bytes, over the item limit: nothing changed.
    TooLarge(usize),
}

/// A member as the membership names it: its region, and whether it is the witness. Its
/// address is not in the log (a stack may be restarted on other ports): each member knows its
/// peers' addresses from its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub region: String,
    pub witness: bool,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.region)
    }
}

/// The node id of the member at `index` in its `generation`.
pub fn node_id(index: usize, generation: u64) -> u64 {
    (generation << 8) | (index as u64 & 0xff)
}

/// The member index a node id belongs to.
pub fn index_of(id: u64) -> usize {
    (id & 0xff) as usize
}

/// The generation of a node id.
pub fn generation_of(id: u64) -> u64 {
    id >> 8
}

/// An injected delay on the link between two members, both ways (`tandem up --link-delay-ms
/// us-east-1/us-west-2=65`): each sends its consensus messages to the other that much later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDelay {
    pub between: [String; 2],
    pub ms: u64,
}

impl std::str::FromStr for LinkDelay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || format!("{s:?}: expected REGION/REGION=MS, e.g. us-east-1/us-west-2=65");
        let (pair, ms) = s.split_once('=').ok_or_else(usage)?;
        let (a, b) = pair.split_once('/').ok_or_else(usage)?;
        let ms = ms.parse().map_err(|_| usage())?;
        let valid = tandem_shared::region::is_valid_region;
        if !valid(a) || !valid(b) || a == b {
            return Err(usage());
        }
        Ok(LinkDelay {
            between: [a.to_owned(), b.to_owned()],
            ms,
        })
    }
}

impl LinkDelay {
    /// The other end of this link, seen from `region`, if it is one end.
    pub fn from(&self, region: &str) -> Option<&str> {
        match &self.between {
            [a, b] if a == region => Some(b),
            [a, b] if b == region => Some(a),
            _ => None,
        }
    }
}

/// A member of the stack, as this process knows it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub region: String,
    /// Base URL; `None` for this process itself.
    pub url: Option<String>,
    pub witness: bool,
}

/// What a member process needs to run its part of the log.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every member, in the stack's order (its index is the low byte of its node ids).
    pub members: Vec<Peer>,
    /// This process's index in `members`.
    pub me: usize,
    /// Delay added to each consensus message this member sends, per target region.
    pub delays: BTreeMap<String, Duration>,
    /// The stack's first start: every member's log is new and the cluster is formed now.
    pub new_cluster: bool,
    pub snapshot_every: u64,
}

impl Settings {
    pub fn region(&self) -> &str {
        &self.members[self.me].region
    }

    /// The member of a node id, if the stack has one at that index.
    pub fn member(&self, id: u64) -> Option<&Peer> {
        self.members.get(index_of(id))
    }

    /// A member's name with its generation, as the status shows voters: `us-east-1#1`.
    pub fn label(&self, id: u64) -> String {
        match self.member(id) {
            Some(p) => format!("{}#{}", p.region, generation_of(id)),
            None => format!("node {id}"),
        }
    }

    /// openraft's settings for this stack.
    pub fn raft_config(&self) -> anyhow::Result<openraft::Config> {
        let keep = (self.snapshot_every / 10).max(1);
        let config = openraft::Config {
            cluster_name: "tandem".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_TIMEOUT_MS.0,
            election_timeout_max: ELECTION_TIMEOUT_MS.1,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: keep,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_shared::item::Data;
    use tandem_shared::validate::IfMatch;

    #[test]
    fn node_ids_carry_the_member_and_its_generation() {
        for (index, generation) in [(0, 0), (1, 0), (2, 7), (0, 1 << 40)] {
            let id = node_id(index, generation);
            assert_eq!((index_of(id), generation_of(id)), (index, generation));
        }
        assert_eq!(node_id(1, 0), 1);
        assert_eq!(node_id(0, 1), 256);
    }

    #[test]
    fn link_delays_name_both_ends() {
        let d: LinkDelay = "us-east-1/us-west-2=65".parse().unwrap();
        assert_eq!(
            (d.from("us-west-2"), d.from("us-east-1"), d.ms),
            (Some("us-east-1"), Some("us-west-2"), 65)
        );
        assert_eq!(d.from("us-east-2"), None);
        for bad in [
            "us-east-1=5",
            "us-east-1/us-east-1=5",
            "a/b=1",
            "us-east-1/us-west-2=x",
        ] {
            assert!(bad.parse::<LinkDelay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_keep_item_data_as_its_text_through_the_log() {
        let data = Data::try_from(serde_json::json!({"a": [1, {"b": "c"}]})).unwrap();
        let cmd = Command {
            id: "k".into(),
            data: Some(data),
            if_match: Some(IfMatch::parse(["\"1.us-east-1.5\""])),
            region: "us-west-2".into(),
            stamp_ms: 9,
        };
        let entry = openraft::Entry::<TypeConfig> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 0), 3),
            payload: openraft::EntryPayload::Normal(cmd.clone()),
        };
        let json = serde_json::to_vec(&entry).unwrap();
        let back: openraft::Entry<TypeConfig> = serde_json::from_slice(&json).unwrap();
        assert!(matches!(back.payload, openraft::EntryPayload::Normal(c) if c == cmd));
    }
}
