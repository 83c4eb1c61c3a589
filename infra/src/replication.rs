//! Global-table replication between local region processes (SPEC §2), region side.
//!
//! Each region *pulls* every peer's outbox: it asks for the changes after the last sequence
//! number it applied from that peer, applies them last-writer-wins, and records the new
//! position in the same durable transaction ([`EmbeddedStore::apply_batch`]). So the outbox
//! (kept by the writer) and the applied position (kept by the reader) are both durable, and a
//! region that was down, cut off or crashed picks up exactly where it stopped, in both
//! directions. Pulls retry with exponential backoff. An artificial lag holds each change back
//! until it is `lag_ms` old; a pause stops pulling altogether (as FIS's
//! `aws:dynamodb:global-table-pause-replication` does).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_api::store::now_ms;
use tandem_shared::Record;
use tandem_shared::headers::ORIGIN_VERIFY;

/// Most changes shipped in one pull.
pub const BATCH: usize = 500;
/// How often an idle puller asks again.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait between retries after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Lag samples kept per peer for the percentiles.
const SAMPLES: usize = 4096;

/// Replication settings that can change at run time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    pub paused: bool,
    pub lag_ms: u64,
}

/// A change in a region's outbox, as shipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub record: Record,
}

/// Answer to `GET /_replication/changes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changes {
    /// The sender's latest sequence number.
    pub head: u64,
    pub changes: Vec<Change>,
}

/// How replication from one peer into this region is doing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairStatus {
    pub from: String,
    pub to: String,
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
    pub last_error: Option<String>,
}

/// Answer to `GET /_replication/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub region: String,
    pub config: ReplicationConfig,
    pub outbox_head: u64,
    pub pairs: Vec<PairStatus>,
}

#[derive(Default)]
struct PeerStats {
    source_head: u64,
    applied: u64,
    lags: VecDeque<u64>,
    last_pull_ms: Option<u64>,
    last_error: Option<String>,
}

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
        Ok(Peer {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// One region's replication: its pullers, its internal routes, and their shared figures.
#[derive(Clone)]
pub struct Replicator {
    store: EmbeddedStore,
    peers: Arc<Vec<Peer>>,
    config: Arc<RwLock<ReplicationConfig>>,
    stats: Arc<Mutex<BTreeMap<String, PeerStats>>>,
    origin_secret: Option<String>,
    admin_token: Option<String>,
    http: reqwest::Client,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[idx])
}

impl Replicator {
    pub fn new(
        store: EmbeddedStore,
        peers: Vec<Peer>,
        config: ReplicationConfig,
        origin_secret: Option<String>,
        admin_token: Option<String>,
    ) -> Self {
        let stats = peers
            .iter()
            .map(|p| (p.name.clone(), PeerStats::default()))
            .collect();
        Replicator {
            store,
            peers: Arc::new(peers),
            config: Arc::new(RwLock::new(config)),
            stats: Arc::new(Mutex::new(stats)),
            origin_secret,
            admin_token,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(5))
                .build()
                .expect("reqwest client"),
        }
    }

    /// Starts one puller per peer on the current runtime.
    pub fn spawn(&self) {
        for peer in self.peers.iter().cloned() {
            let me = self.clone();
            tokio::spawn(async move { me.pull_forever(peer).await });
        }
    }

    fn config(&self) -> ReplicationConfig {
        *self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn pull_forever(self, peer: Peer) {
        let mut backoff = POLL;
        loop {
            if self.config().paused {
                tokio::time::sleep(POLL).await;
                continue;
            }
            match self.pull_once(&peer).await {
                Ok(more) => {
                    backoff = POLL;
                    if !more {
                        tokio::time::sleep(POLL).await;
                    }
                }
                Err(err) => {
                    tracing::debug!(peer = %peer.name, error = %err, "replication pull failed");
                    self.with_stats(&peer.name, |s| s.last_error = Some(err.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn with_stats(&self, peer: &str, f: impl FnOnce(&mut PeerStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(stats.entry(peer.to_owned()).or_default());
    }

    /// Pulls and applies one batch; true when more is waiting.
    async fn pull_once(&self, peer: &Peer) -> anyhow::Result<bool> {
        let store = self.store.clone();
        let name = peer.name.clone();
        let after = tokio::task::spawn_blocking(move || store.applied_from(&name)).await??;
        let mut req = self
            .http
            .get(format!("{}/_replication/changes", peer.url))
            .query(&[("after", after.to_string()), ("limit", BATCH.to_string())]);
        if let Some(secret) = &self.origin_secret {
            req = req.header(ORIGIN_VERIFY, secret);
        }
        let resp = req.send().await?.error_for_status()?;
        let batch: Changes = resp.json().await?;
        let fetched = batch.changes.len();
        // The artificial lag holds back every change younger than lag_ms, and with it every
        // later one, so changes still apply in their order.
        let lag_ms = self.config().lag_ms;
        let now = now_ms();
        let ready: Vec<Change> = batch
            .changes
            .into_iter()
            .take_while(|c| c.record.updated_at_ms.saturating_add(lag_ms) <= now)
            .collect();
        let mut applied = after;
        if let Some(last) = ready.last().map(|c| c.seq) {
            let records: Vec<Record> = ready.iter().map(|c| c.record.clone()).collect();
            let store = self.store.clone();
            let name = peer.name.clone();
            tokio::task::spawn_blocking(move || store.apply_batch(&name, &records, last)).await??;
            applied = last;
            let done = now_ms();
            self.with_stats(&peer.name, |s| {
                for c in &ready {
                    if s.lags.len() == SAMPLES {
                        s.lags.pop_front();
                    }
                    s.lags
                        .push_back(done.saturating_sub(c.record.updated_at_ms));
                }
            });
        }
        self.with_stats(&peer.name, |s| {
            s.source_head = batch.head;
            s.applied = applied;
            s.last_pull_ms = Some(now);
            s.last_error = None;
        });
        Ok(fetched == BATCH && ready.len() == fetched)
    }

    /// This region's replication figures, one pair per peer (peer → this region).
    pub fn status(&self) -> Status {
        let region = self.store.region().to_owned();
        let outbox_head = self.store.outbox_head().unwrap_or(0);
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let pairs = stats
            .iter()
            .map(|(peer, s)| {
                let mut lags: Vec<u64> = s.lags.iter().copied().collect();
                lags.sort_unstable();
                PairStatus {
                    from: peer.clone(),
                    to: region.clone(),
                    applied: s.applied,
                    source_head: s.source_head,
                    pending: s.source_head.saturating_sub(s.applied),
                    lag_p50_ms: percentile(&lags, 0.50),
                    lag_p99_ms: percentile(&lags, 0.99),
                    lag_max_ms: lags.last().copied(),
                    samples: lags.len(),
                    last_pull_ms: s.last_pull_ms,
                    last_error: s.last_error.clone(),
                }
            })
            .collect();
        Status {
            region,
            config: self.config(),
            outbox_head,
            pairs,
        }
    }

    /// The internal routes: `GET /_replication/changes`, `GET /_replication/status`,
    /// `PUT /_replication/config`. Only the edge's control API and the peers call them.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/_replication/changes", get(changes))
            .route("/_replication/status", get(status))
            .route("/_replication/config", axum::routing::put(set_config))
            .with_state(self.clone())
    }

    fn check_secret(&self, headers: &HeaderMap) -> Result<(), StatusCode> {
        match &self.origin_secret {
            Some(secret)
                if headers.get(ORIGIN_VERIFY).map(|v| v.as_bytes()) != Some(secret.as_bytes()) =>
            {
                Err(StatusCode::FORBIDDEN)
            }
            _ => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct ChangesQuery {
    after: u64,
    limit: Option<usize>,
}

async fn changes(
    State(r): State<Replicator>,
    headers: HeaderMap,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<Changes>, StatusCode> {
    r.check_secret(&headers)?;
    let limit = q.limit.unwrap_or(BATCH).clamp(1, BATCH);
    let store = r.store.clone();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<Changes> {
        let head = store.outbox_head()?;
        let changes = store
            .changes_since(q.after, limit)?
            .into_iter()
            .map(|(seq, record)| Change { seq, record })
            .collect();
        Ok(Changes { head, changes })
    })
    .await;
    match result {
        Ok(Ok(c)) => Ok(Json(c)),
        other => {
            tracing::error!(?other, "reading the outbox failed");
            Err(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

async fn status(
    State(r): State<Replicator>,
    headers: HeaderMap,
) -> Result<Json<Status>, StatusCode> {
    r.check_secret(&headers)?;
    Ok(Json(
        tokio::task::spawn_blocking(move || r.status())
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?,
    ))
}

async fn set_config(
    State(r): State<Replicator>,
    headers: HeaderMap,
    Json(config): Json<ReplicationConfig>,
) -> Result<Json<ReplicationConfig>, StatusCode> {
    r.check_secret(&headers)?;
    tandem_api::admin::authorize(r.admin_token.as_deref(), &headers)
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    *r.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    tracing::info!(?config, "replication settings changed");
    Ok(Json(config))
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
