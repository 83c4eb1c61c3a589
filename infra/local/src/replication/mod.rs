//! Global-table replication between local region processes (contract §5), region side.
//!
//! Each region *pulls* every peer's outbox ([`puller`]): it asks for the changes after the last
//! sequence number it applied from that peer, applies them last-writer-wins, and records the
//! new position with the peer's incarnation in the same durable transaction
//! ([`EmbeddedStore::apply_batch`]). A region that was down, cut off or crashed picks up exactly
//! where it stopped, in both directions. When a peer's data identity changed (it lost its disk),
//! its log has a gap (compacted past what this region applied) or its head is behind what was
//! applied, the puller copies the peer's whole state instead (a resync). Anti-entropy compares
//! per-bucket digests on a schedule and repairs the buckets that differ, so any divergence heals.
//!
//! The routes ([`serve`]) answer in the binary [`wire`] format, signed: peers prove who they
//! are with an HMAC over a nonce, and an answer that is unsigned, forged or impossible (a
//! sequence past the head, going backwards) is refused, logged and counted, never applied.
//! Housekeeping compacts the outbox once every peer has applied it and collects tombstones after
//! a grace period. An artificial lag holds each change back for `lag_ms` after it arrived; a
//! pause stops pulling (as FIS's `aws:dynamodb:global-table-pause-replication` does).
//!
//! The storage half (the outbox, pages for peers, LWW apply, digests, compaction) is the
//! embedded store's replication log, `tandem_api::store::embedded::log`: a local write and its
//! outbox entry commit in one redb transaction, so that half lives inside the store.

pub mod client;
mod puller;
pub use puller::{PullError, check_record};
pub mod routes;
mod serve;
pub use serve::Signed;
pub mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_api::store::now_ms;
pub use tandem_shared::replication::{
    Difference, DigestState, LinkState, PairStatus, RegionReplication, ReplicationConfig, Verdict,
    WriteKey,
};

/// Most changes shipped in one pull.
pub const BATCH: usize = 500;
/// Most record bytes in one answer (at least one record is always sent, up to 400 KB).
pub const MAX_PULL_BYTES: usize = 4 << 20;
/// Most record bytes fetched and held back by the artificial lag, per peer.
const MAX_HELD_BYTES: usize = 64 << 20;
/// How often an idle puller asks again.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait between retries after errors: short, so a peer that comes back is caught up
/// within a fraction of a second (a refused connection costs almost nothing to retry).
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// How often digests are compared with each peer.
const ANTI_ENTROPY_EVERY: Duration = Duration::from_secs(5);
/// How often the outbox is compacted and tombstones collected.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Lag samples kept per peer for the percentiles.
const SAMPLES: usize = 4096;
/// Default time a tombstone is kept after every peer has it (DynamoDB keeps deleted items'
/// tombstones for replication for about a day; so does Tandem by default).
pub const DEFAULT_TOMBSTONE_GRACE_MS: u64 = 24 * 3600 * 1000;

/// A peer region: its name and base URL.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub url: String,
}

impl std::str::FromStr for Peer {
    type Err = String;
    /// `us-west-2=http://127.0.0.1:8082`
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, url) = s.split_once('=').ok_or("expected REGION=URL")?;
        if !tandem_shared::region::is_valid_region(name) {
            return Err(format!("{name:?} is not a region name"));
        }
        Ok(Peer {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// What a region process needs to replicate.
#[derive(Debug, Clone)]
pub struct Settings {
    pub peers: Vec<Peer>,
    pub config: ReplicationConfig,
    /// The HMAC key every region of the stack, and its supervisor, holds.
    pub key: wire::Key,
    pub tombstone_grace_ms: u64,
}

/// What one link (a peer's writes into this region) has done, for its status.
#[derive(Default)]
struct LinkStats {
    status: PairStatus,
    lags: VecDeque<u64>,
}

/// One region's replication: its pullers, its routes, and their shared figures.
#[derive(Clone)]
pub struct Replicator {
    store: EmbeddedStore,
    settings: Arc<Settings>,
    config: Arc<RwLock<ReplicationConfig>>,
    stats: Arc<Mutex<BTreeMap<String, LinkStats>>>,
    /// What each peer last said it applied of this region's outbox (this incarnation's).
    acked: Arc<Mutex<HashMap<String, u64>>>,
    started_ms: u64,
    /// This process's boot id: requests signed for another run of the region are refused.
    boot: u64,
    /// The sequence numbers each requester has used with this process ([`wire::Window`]).
    windows: Arc<Mutex<HashMap<String, wire::Window>>>,
    /// This region's pulls from its peers, signed as this region.
    client: Arc<client::SignedClient>,
}

use tandem_shared::stats::percentile;

impl Replicator {
    pub fn new(store: EmbeddedStore, settings: Settings) -> Self {
        let region = store.region().to_owned();
        let stats = settings
            .peers
            .iter()
            .map(|p| {
                let mut s = LinkStats::default();
                s.status.from = p.name.clone();
                s.status.to = region.clone();
                (p.name.clone(), s)
            })
            .collect();
        // Answers are bounded by MAX_PULL_BYTES (plus one record), so a fixed timeout fits.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        let client = client::SignedClient::new(http, settings.key.clone(), &region);
        Replicator {
            store,
            config: Arc::new(RwLock::new(settings.config)),
            settings: Arc::new(settings),
            stats: Arc::new(Mutex::new(stats)),
            acked: Arc::default(),
            started_ms: now_ms(),
            // Never 0: a requester that knows no boot id yet signs for 0, and is told this one.
            boot: uuid::Uuid::new_v4().as_u64_pair().0 | 1,
            windows: Arc::default(),
            client: Arc::new(client),
        }
    }

    /// The client this region signs its requests to peers with (one per process: a requester's
    /// sequence numbers with a peer come from one counter).
    pub fn client(&self) -> Arc<client::SignedClient> {
        self.client.clone()
    }

    /// Starts one puller per peer, and the housekeeping, on the current runtime.
    pub fn spawn(&self) {
        for peer in self.settings.peers.iter().cloned() {
            tokio::spawn(puller::Link::new(self.clone(), peer).run());
        }
        let me = self.clone();
        tokio::spawn(async move { me.housekeeping().await });
    }

    fn config(&self) -> ReplicationConfig {
        *read(&self.config)
    }

    fn with_stats<T>(&self, peer: &str, f: impl FnOnce(&mut LinkStats) -> T) -> T {
        let mut stats = lock(&self.stats);
        f(stats.entry(peer.to_owned()).or_default())
    }

    /// Compacts what every peer has applied and collects old tombstones, forever.
    async fn housekeeping(self) {
        let mut last_gc = 0u64;
        loop {
            self.publish();
            tokio::time::sleep(HOUSEKEEPING_EVERY).await;
            let acked = lock(&self.acked).clone();
            // A peer that never pulled holds everything back.
            let upto = self
                .settings
                .peers
                .iter()
                .map(|p| acked.get(&p.name).copied().unwrap_or(0))
                .min()
                .unwrap_or(0);
            let now = now_ms();
            let grace = self.settings.tombstone_grace_ms;
            // A scan of every item: every 10 s, or sooner when the grace itself is shorter.
            let collect = now.saturating_sub(last_gc) >= grace.clamp(1_000, 10_000);
            let store = self.store.clone();
            let done = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, u64)> {
                let compacted = store.compact_outbox(upto)?;
                let collected = if collect {
                    store.collect_tombstones(now.saturating_sub(grace))?
                } else {
                    0
                };
                Ok((compacted, collected))
            })
            .await;
            match done {
                Ok(Ok((compacted, collected))) => {
                    if collect {
                        last_gc = now;
                    }
                    if compacted + collected > 0 {
                        tracing::debug!(compacted, collected, "replication housekeeping");
                    }
                }
                other => tracing::warn!(?other, "replication housekeeping failed"),
            }
        }
    }

    /// This region's replication figures, one pair per peer (peer → this region).
    pub fn status(&self, with_digests: bool) -> RegionReplication {
        let now = now_ms();
        let pairs = {
            let stats = lock(&self.stats);
            stats
                .values()
                .map(|s| {
                    let mut lags: Vec<u64> = s.lags.iter().copied().collect();
                    lags.sort_unstable();
                    let mut p = s.status.clone();
                    p.state = if self.config().paused {
                        LinkState::Paused
                    } else {
                        p.state_at(now, self.started_ms)
                    };
                    p.pending = p.source_head.saturating_sub(p.applied);
                    p.lag_p50_ms = percentile(&lags, 0.50);
                    p.lag_p99_ms = percentile(&lags, 0.99);
                    p.lag_max_ms = lags.last().copied();
                    p.samples = lags.len();
                    p
                })
                .collect()
        };
        let digests = if with_digests {
            self.store
                .digests()
                .map(|d| d.iter().map(|b| URL_SAFE_NO_PAD.encode(b)).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        RegionReplication {
            region: self.store.region().to_owned(),
            store: "embedded".into(),
            table: None,
            incarnation: format!("{:016x}", self.store.incarnation()),
            config: self.config(),
            outbox_head: self.store.outbox_head().unwrap_or(0),
            outbox_floor: self.store.outbox_floor().unwrap_or(0),
            pairs,
            digests,
            stamps_ahead_ms: self.store.last_stamp().unwrap_or(0).saturating_sub(now),
            max_stamps_ahead_ms: tandem_shared::replication::MAX_STAMPS_AHEAD_MS,
            clock_resets: self.store.clock_resets(),
        }
    }

    /// Hands the current figures to the store, which `/api/health` reads.
    fn publish(&self) {
        let me = self.clone();
        // Reading the outbox head is a redb read: off the async workers.
        tokio::task::spawn_blocking(move || me.store.set_replication_status(me.status(false)));
    }
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tandem_shared::sync::{lock, read};
