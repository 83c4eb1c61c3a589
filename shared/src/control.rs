//! The local control plane (`/_tandem/*` on the edge) and the outage vocabulary: one type per
//! concept, used by `tandem up`, `tandem fault`, `tandem drill`, `tandem chaos`, the bench and
//! the console alike.

use crate::consistency::Consistency;
use crate::fault::{FAULT_STATUSES, Fault, MAX_LATENCY_MS};
use crate::replication::{PairStatus, ReplicationConfig};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where the control routes live on the local edge.
pub const PREFIX: &str = "/_tandem";

/// The control routes, relative to [`PREFIX`] (the edge nests them there): the one list of them
/// that the control API, its client, the edge and the console all use.
pub mod route {
    /// `GET`: every region's status.
    pub const REGIONS: &str = "/regions";
    /// `PUT` `{"state"}`: one region's process state.
    pub const REGION: &str = "/regions/{region}";
    /// `GET`: the figures; `PUT` `{"paused", "lag_ms"}`: the settings.
    pub const REPLICATION: &str = "/replication";
    /// `GET`: do the regions hold the same items?
    pub const VERIFY: &str = "/verify";
    /// `GET`/`PUT`/`DELETE`: the active region.
    pub const ACTIVE_REGION: &str = "/active-region";
    /// `GET`: the consensus log's state (strong mode, contract §10).
    pub const CONSENSUS: &str = "/consensus";
}

/// A control route's full path on the edge.
pub fn path(route: &str) -> String {
    format!("{PREFIX}{route}")
}

/// The full path of one region's state.
pub fn region_path(region: &str) -> String {
    format!("{PREFIX}/regions/{region}")
}
/// Every server of a stack (the edge, each region) cuts a request whose header has not arrived
/// within this many seconds, idle keep-alive connections included; clients drop their idle
/// connections before it.
pub const HEADER_READ_TIMEOUT_S: u64 = 10;
/// Longest replication lag the control API accepts (ten minutes).
pub const MAX_LAG_MS: u64 = 600_000;

/// Defaults are the values `infra/aws/cloudformation/edge.yaml` deploys: a primary that cannot be
/// reached costs at most 2 × 1 s, one that hangs 4 s, before the edge tries the secondary.
pub const DEFAULT_CONNECTION_ATTEMPTS: u8 = 2;
pub const DEFAULT_CONNECTION_TIMEOUT_S: u8 = 1;
pub const DEFAULT_ORIGIN_READ_TIMEOUT_S: u8 = 4;
/// The regional function's timeout on AWS (the Lambda `Timeout` deploy sets): the origin
/// read timeout, so that no instance is still working on a request CloudFront gave up on.
pub const FUNCTION_TIMEOUT_S: u8 = DEFAULT_ORIGIN_READ_TIMEOUT_S;
/// Each DynamoDB call, its retries included, gives up after this long. A write is at least two
/// calls (a read, then a conditional put), bounded as a whole by [`STORE_WRITE_BUDGET_MS`], so
/// the region answers its own 503 with a JSON body instead of being cut off.
pub const STORE_CALL_TIMEOUT_MS: u64 = 1_500;
/// A whole write on DynamoDB (reads and conditional puts, retried while other writers get in
/// between) gives up after this long: below the function's timeout, so the region answers its
/// own 503 even when a write is contended.
pub const STORE_WRITE_BUDGET_MS: u64 = 3_000;
/// One attempt of a DynamoDB call gives up after this long (the SDK then retries, within
/// [`STORE_CALL_TIMEOUT_MS`]). A healthy call takes milliseconds.
pub const STORE_ATTEMPT_TIMEOUT_MS: u64 = 1_000;
// The order the timeouts must keep: an attempt within a call, a call within a write, a write
// within the function's (the edge's) timeout.
const _: () = assert!(
    STORE_ATTEMPT_TIMEOUT_MS < STORE_CALL_TIMEOUT_MS
        && STORE_CALL_TIMEOUT_MS < STORE_WRITE_BUDGET_MS
        && STORE_WRITE_BUDGET_MS < FUNCTION_TIMEOUT_S as u64 * 1000
);

/// The statuses an origin group fails over on (Tandem uses only the 5xx CloudFront offers).
pub const FAILOVER_STATUSES: [u16; 4] = FAULT_STATUSES;

/// How the edge talks to origins, as CloudFront's origin settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EdgeSettings {
    /// Connection attempts per origin (CloudFront: 1-3).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_CONNECTION_ATTEMPTS, value_parser = clap::value_parser!(u8).range(1..=3)))]
    pub connection_attempts: u8,
    /// Seconds per connection attempt (CloudFront: 1-10).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_CONNECTION_TIMEOUT_S, value_parser = clap::value_parser!(u8).range(1..=10)))]
    pub connection_timeout: u8,
    /// Seconds to wait for an origin's response (CloudFront: 1-120).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_ORIGIN_READ_TIMEOUT_S, value_parser = clap::value_parser!(u8).range(1..=120)))]
    pub origin_read_timeout: u8,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            connection_attempts: DEFAULT_CONNECTION_ATTEMPTS,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT_S,
            origin_read_timeout: DEFAULT_ORIGIN_READ_TIMEOUT_S,
        }
    }
}

impl EdgeSettings {
    pub fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.connection_timeout.into())
    }

    pub fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.origin_read_timeout.into())
    }
}

/// What a local region process is doing, as the supervisor makes it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionState {
    /// Running and answering.
    Up,
    /// Exited cleanly: its port refuses connections.
    Stopped,
    /// Killed (SIGKILL), or it failed to start.
    Crashed,
    /// Frozen (SIGSTOP): the kernel accepts connections, nobody answers.
    Blackhole,
    /// Exiting on its own again and again (three times in a minute): restarted with a growing
    /// back-off, and so until it has run a minute without exiting. Reported, never asked for.
    Crashing,
}

impl RegionState {
    pub const ALL: [RegionState; 5] = [
        RegionState::Up,
        RegionState::Stopped,
        RegionState::Crashed,
        RegionState::Blackhole,
        RegionState::Crashing,
    ];

    /// The states the operator may ask for (`crashing` only happens).
    pub const ASKABLE: [RegionState; 4] = [
        RegionState::Up,
        RegionState::Stopped,
        RegionState::Crashed,
        RegionState::Blackhole,
    ];

    /// The name on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionState::Up => "up",
            RegionState::Stopped => "stopped",
            RegionState::Crashed => "crashed",
            RegionState::Blackhole => "blackhole",
            RegionState::Crashing => "crashing",
        }
    }
}

impl fmt::Display for RegionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionState::ASKABLE
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}: use up, stopped, crashed or blackhole"))
    }
}

/// What `GET /_tandem/regions` says of one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionStatus {
    pub region: String,
    pub state: RegionState,
    pub primary: bool,
    pub url: String,
    pub pid: Option<u32>,
    /// Why the region's last start failed (its own log says more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Restarts after exits nobody asked for (the OOM killer, an abort, a kill from outside).
    #[serde(default)]
    pub restarts: u64,
    /// How the last such exit ended (`killed by SIGKILL`, `exited with status 1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// A witness (strong mode): it votes and keeps the consensus log, serves no item API and
    /// is no origin of the edge. Its process states are set like any region's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub witness: bool,
}

/// Answer to `GET /_tandem/regions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionsBody {
    pub regions: Vec<RegionStatus>,
    pub edge: EdgeSettings,
    /// The stack's consistency mode; absent in older answers: eventual.
    #[serde(default)]
    pub consistency: Consistency,
}

/// Answer to `GET /_tandem/consensus`: the consensus log as its members report it (strong
/// mode; in eventual mode `members` is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusStatus {
    pub mode: Consistency,
    /// The leader's region, as the member with the highest term that knows one says.
    pub leader: Option<String>,
    /// The highest term any member reported.
    pub term: u64,
    /// Each member that answered, regions first, then the witness.
    pub members: Vec<MemberStatus>,
    /// Members that could not be asked (stopped, crashed, blackholed).
    pub unavailable: Vec<String>,
}

/// One member's view of the consensus log (`GET /_consensus/status` on that member).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub region: String,
    /// Its node id: `generation << 8 | index` (a member that lost its disk rejoins under the
    /// next generation, contract §10).
    pub node_id: u64,
    pub generation: u64,
    pub witness: bool,
    pub role: MemberRole,
    /// Whether it is a voter in the membership it knows (a rejoining member is a learner first).
    pub voter: bool,
    pub term: u64,
    /// The leader it follows (its region), if it knows one.
    pub leader: Option<String>,
    /// The last entry in its log (index), the last it knows committed, the last it applied.
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    /// Its log is purged up to here (a snapshot covers it).
    pub purged: Option<u64>,
    /// The voters of the membership it knows, as `region#generation`.
    pub voters: Vec<String>,
    /// As leader: milliseconds since a majority last acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_ack_ms: Option<u64>,
    /// Why it cannot serve, when it cannot (no leader, no majority, still joining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A member's role in the consensus log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Leader,
    Follower,
    Candidate,
    /// Not a voter: a member that lost its disk, catching up before it replaces its old id.
    Learner,
    /// Waiting for an id from the leader (a member that lost its disk), or shut down.
    #[default]
    Joining,
}

impl MemberRole {
    /// The name on the wire, as the console and `tandem consensus` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Follower => "follower",
            MemberRole::Candidate => "candidate",
            MemberRole::Learner => "learner",
            MemberRole::Joining => "joining",
        }
    }
}

/// Body of `PUT /_tandem/regions/<region>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRegionState {
    pub state: RegionState,
}

/// Answer to `GET /_tandem/replication`: the config, and every region pair's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationBody {
    pub config: ReplicationConfig,
    pub pairs: Vec<PairStatus>,
    /// Regions that could not be asked (down, crashed, blackholed).
    pub unavailable: Vec<String>,
}

/// Body of `PUT /_tandem/replication`: what to change (absent fields stay as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

impl ReplicationPatch {
    /// Pauses (`true`) or resumes (`false`) replication; the lag stays as it is.
    pub fn paused(paused: bool) -> Self {
        ReplicationPatch {
            paused: Some(paused),
            lag_ms: None,
        }
    }

    /// Checks the values a client sent; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.lag_ms {
            Some(l) if l > MAX_LAG_MS => Err(format!("lag_ms must be at most {MAX_LAG_MS}")),
            _ => Ok(()),
        }
    }

    /// `config` with this patch applied.
    pub fn apply(&self, mut config: ReplicationConfig) -> ReplicationConfig {
        if let Some(p) = self.paused {
            config.paused = p;
        }
        if let Some(l) = self.lag_ms {
            config.lag_ms = l;
        }
        config
    }
}

/// Answer to `PUT /_tandem/replication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationUpdate {
    pub config: ReplicationConfig,
    /// Regions the new config could not be pushed to (they get it when they come back up).
    pub not_reached: Vec<String>,
}

/// Body of `PUT /_tandem/active-region`, and the answer of `GET`/`PUT`/`DELETE` there: the
/// region `/api/*` goes to first (contract §6.3); `None` when unset (the primary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveRegion {
    pub region: Option<String>,
    /// The stack's health watcher (`tandem up --auto-failover`), in `GET`'s answer only; absent
    /// when the stack runs none. A switch request leaves it out (it is ignored there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watcher: Option<WatcherStatus>,
}

impl ActiveRegion {
    pub fn new(region: Option<String>) -> ActiveRegion {
        ActiveRegion {
            region,
            watcher: None,
        }
    }
}

/// What the health watcher is doing, so that a watcher that cannot probe or cannot switch is
/// seen (control API, console), not only logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherStatus {
    pub probe_interval_ms: u64,
    /// Failed probes of the active region in a row before it switches.
    pub failover_after: u32,
    /// Probe rounds so far.
    pub rounds: u64,
    /// Regions whose last probe failed, primary first.
    pub failing: Vec<String>,
    /// Switches it made.
    pub switches: u64,
    /// Why the last round could not read or switch the active region; `None` once one could.
    pub error: Option<String>,
    /// The last switch this watcher made (or found already made), as the edge showed it: a
    /// written value that `/api/*` does not route by is no switch yet (contract §6.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_switch: Option<SwitchSeen>,
}

/// Whether the edge routes `/api/*` by a value the health watcher wrote: its next probes of
/// `/api/health` read the value the edge routed by (`x-tandem-active-region`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchSeen {
    /// The value written (`None`: cleared, the primary).
    pub to: Option<String>,
    pub state: SwitchState,
    /// From the write until the edge showed it (`confirmed`), until the watcher stopped waiting
    /// (`unconfirmed`), or so far (`pending`).
    pub after_ms: u64,
}

/// Where a [`SwitchSeen`] stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchState {
    /// Written; the edge has not shown it yet, and the bound has not passed.
    #[default]
    Pending,
    /// The edge routes `/api/*` by it.
    Confirmed,
    /// The edge did not show it within the bound: the store holds a value the edge does not
    /// route by (a function that does not read the store, or propagation stuck).
    Unconfirmed,
}

/// An outage to inject into one region, as `tandem fault`, `tandem drill`, `tandem chaos`, the
/// bench and the console name it: `error:503`, `slow:<ms>`, and on the local stack `stopped`,
/// `crashed`, `blackhole`, `partition` (replication paused both ways) and, for `tandem drill`,
/// `disk-lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Outage {
    Error {
        status: u16,
    },
    Slow {
        latency_ms: u64,
    },
    Stopped,
    Crashed,
    Blackhole,
    Partition,
    /// The region (or the witness) stopped, its data directory deleted, and started again at
    /// the heal with nothing: a lost disk. Only a tool on the stack's machine, that knows the
    /// data directory, can inject it (`tandem drill --data-dir`).
    DiskLost,
}

impl Outage {
    /// The admin fault that injects this outage, for the outages a region does to itself
    /// (these work on AWS too).
    pub fn fault(self, duration_s: Option<u64>) -> Option<Fault> {
        match self {
            Outage::Error { status } => Some(Fault::Error { status, duration_s }),
            Outage::Slow { latency_ms } => Some(Fault::Slow {
                latency_ms,
                duration_s,
            }),
            _ => None,
        }
    }

    /// The process state that injects this outage on the local stack.
    pub fn region_state(self) -> Option<RegionState> {
        match self {
            Outage::Stopped => Some(RegionState::Stopped),
            Outage::Crashed => Some(RegionState::Crashed),
            Outage::Blackhole => Some(RegionState::Blackhole),
            // The process part of a lost disk; the caller deletes the directory meanwhile.
            Outage::DiskLost => Some(RegionState::Stopped),
            _ => None,
        }
    }

    /// Whether the region's data directory is deleted while it is stopped ([`Outage::DiskLost`]).
    pub fn loses_disk(self) -> bool {
        self == Outage::DiskLost
    }

    /// Whether only the local stack's control API can inject it.
    pub fn local_only(self) -> bool {
        self.fault(None).is_none()
    }
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outage::Error { status } => write!(f, "error:{status}"),
            Outage::Slow { latency_ms } => write!(f, "slow:{latency_ms}"),
            Outage::Stopped => f.write_str("stopped"),
            Outage::Crashed => f.write_str("crashed"),
            Outage::Blackhole => f.write_str("blackhole"),
            Outage::Partition => f.write_str("partition"),
            Outage::DiskLost => f.write_str("disk-lost"),
        }
    }
}

impl FromStr for Outage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("error", n)) => match n.parse() {
                Ok(status) if FAULT_STATUSES.contains(&status) => Ok(Outage::Error { status }),
                _ => Err(format!(
                    "{s}: the status must be one of {FAULT_STATUSES:?} (the ones the edge fails \
                     over on)"
                )),
            },
            Some(("slow", n)) => match n.parse() {
                Ok(latency_ms) if (1..=MAX_LATENCY_MS).contains(&latency_ms) => {
                    Ok(Outage::Slow { latency_ms })
                }
                _ => Err(format!("{s}: the latency must be 1..={MAX_LATENCY_MS} ms")),
            },
            None => match s {
                "stopped" => Ok(Outage::Stopped),
                "crashed" => Ok(Outage::Crashed),
                "blackhole" => Ok(Outage::Blackhole),
                "partition" => Ok(Outage::Partition),
                "disk-lost" => Ok(Outage::DiskLost),
                _ => Err(unknown_outage(s)),
            },
            _ => Err(unknown_outage(s)),
        }
    }
}

fn unknown_outage(s: &str) -> String {
    format!(
        "{s:?}: the outage is error:<status> or slow:<ms> (any edge), or stopped, crashed, \
         blackhole, partition or disk-lost (the local stack)"
    )
}

impl From<Outage> for String {
    fn from(o: Outage) -> String {
        o.to_string()
    }
}

impl TryFrom<String> for Outage {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_round_trip_through_their_names() {
        for o in [
            Outage::Error { status: 503 },
            Outage::Slow { latency_ms: 250 },
            Outage::Stopped,
            Outage::Crashed,
            Outage::Blackhole,
            Outage::Partition,
            Outage::DiskLost,
        ] {
            assert_eq!(o.to_string().parse::<Outage>(), Ok(o));
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
            assert_eq!(serde_json::from_str::<Outage>(&json).unwrap(), o);
        }
        for bad in [
            "error:429",
            "error:",
            "slow:x",
            "slow:0",
            "slow:600001",
            "melt",
            "stopped:1",
            "",
        ] {
            assert!(bad.parse::<Outage>().is_err(), "{bad}");
        }
    }

    #[test]
    fn outages_map_to_faults_or_process_states() {
        assert_eq!(
            Outage::Error { status: 502 }.fault(Some(3)),
            Some(Fault::Error {
                status: 502,
                duration_s: Some(3)
            })
        );
        assert_eq!(
            Outage::Blackhole.region_state(),
            Some(RegionState::Blackhole)
        );
        assert!(Outage::Partition.local_only());
        // A lost disk stops the process; the directory is the caller's to delete.
        assert_eq!(Outage::DiskLost.region_state(), Some(RegionState::Stopped));
        assert!(Outage::DiskLost.local_only() && Outage::DiskLost.loses_disk());
        assert!(!Outage::Stopped.loses_disk());
        assert!(Outage::Partition.region_state().is_none());
        assert!(!Outage::Slow { latency_ms: 1 }.local_only());
    }

    #[test]
    fn region_states_match_the_wire() {
        for s in RegionState::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            let parsed = s.as_str().parse::<RegionState>();
            // `crashing` is reported, never asked for.
            assert_eq!(parsed.is_ok(), RegionState::ASKABLE.contains(&s), "{s}");
        }
    }

    #[test]
    fn patches_apply_and_validate() {
        let p = ReplicationPatch::paused(true);
        let c = p.apply(ReplicationConfig {
            paused: false,
            lag_ms: 7,
        });
        assert_eq!((c.paused, c.lag_ms), (true, 7));
        assert!(
            ReplicationPatch {
                lag_ms: Some(MAX_LAG_MS + 1),
                ..p
            }
            .validate()
            .is_err()
        );
        assert!(serde_json::from_str::<ReplicationPatch>(r#"{"paused":1}"#).is_err());
    }
}
