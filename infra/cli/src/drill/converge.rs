//! Reading acknowledged writes back from every region: during the traffic, how long after the
//! heal the outage's backlog took to reach every region; after it, until every region holds the
//! same final state and nothing acknowledged is lost, or the wait ends.

use super::run::{Answer, Drill};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_shared::drill::{self as rules, Held, LostWrite, Stamp};
use tandem_shared::sync::lock;
use tokio::task::JoinSet;

/// Reads in flight at once while waiting for convergence.
const PARALLEL_READS: usize = 16;
/// The pause between two rounds of reads while waiting for convergence.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

impl Drill {
    /// From the heal, while the traffic goes on: reads back the writes acknowledged before the
    /// heal until every region holds them ([`rules::unsettled`]); the milliseconds that took,
    /// or `None` when the traffic ended first.
    pub(super) fn spawn_recovery_watch(
        self: &Arc<Self>,
        regions: Vec<String>,
        duration_s: u64,
    ) -> tokio::task::JoinHandle<Option<f64>> {
        let drill = Arc::clone(self);
        tokio::spawn(async move {
            drill.sleep_until(drill.heal_ms).await;
            let backlog = lock(&drill.acked).clone();
            let mut held: Held = regions.into_iter().map(|r| (r, BTreeMap::new())).collect();
            let mut waiting: BTreeSet<String> = backlog.iter().map(|a| a.id.clone()).collect();
            while drill.now_ms() < duration_s as f64 * 1000.0 {
                drill.read_back(&waiting, &mut held).await;
                waiting = rules::unsettled(&backlog, &held);
                if waiting.is_empty() {
                    return Some(drill.now_ms() - drill.heal_ms);
                }
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            None
        })
    }

    /// Reads every acknowledged id back from every region, in rounds, until the regions hold the
    /// same final state and nothing acknowledged is lost ([`rules::unsettled`]), or `timeout`
    /// passes. Each round rereads only the ids the last one left unsettled.
    pub(super) async fn converge(
        self: &Arc<Self>,
        regions: &[String],
        timeout: Duration,
    ) -> Convergence {
        let acked = lock(&self.acked).clone();
        let mut held: Held = regions
            .iter()
            .map(|r| (r.clone(), BTreeMap::new()))
            .collect();
        let mut waiting: BTreeSet<String> = acked.iter().map(|a| a.id.clone()).collect();
        let deadline = Instant::now() + timeout;
        loop {
            self.read_back(&waiting, &mut held).await;
            waiting = rules::unsettled(&acked, &held);
            if waiting.is_empty() {
                return Convergence {
                    ms: Some(self.now_ms() - self.heal_ms),
                    lost: Vec::new(),
                    diverging: Vec::new(),
                };
            }
            if Instant::now() > deadline {
                return Convergence {
                    ms: None,
                    lost: rules::lost_writes(&acked, &held),
                    diverging: rules::diverging(&held),
                };
            }
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }

    /// Reads `ids` from every region of `held`, [`PARALLEL_READS`] at a time, and notes what
    /// each region holds; a failed read removes the entry (not shown to be held).
    async fn read_back(self: &Arc<Self>, ids: &BTreeSet<String>, held: &mut Held) {
        let copies: Vec<(String, String)> = held
            .keys()
            .flat_map(|r| ids.iter().map(move |id| (r.clone(), id.clone())))
            .collect();
        let mut reads = JoinSet::new();
        for (region, id) in copies {
            if reads.len() >= PARALLEL_READS
                && let Some(Ok(read)) = reads.join_next().await
            {
                note(held, read);
            }
            let drill = Arc::clone(self);
            reads.spawn(async move {
                let found = drill.held_by(&region, &id).await;
                (region, id, found)
            });
        }
        while let Some(done) = reads.join_next().await {
            if let Ok(read) = done {
                note(held, read);
            }
        }
    }

    /// What `region` holds of `id`: `Some(None)` for a 404, `None` when the read failed.
    async fn held_by(&self, region: &str, id: &str) -> Option<Option<Stamp>> {
        let answer = Answer(self.items.in_region(region).get(id).await);
        match answer.status() {
            200 => answer.stamp().map(Some),
            404 => Some(None),
            _ => None,
        }
    }
}

/// How the wait for convergence ended.
pub(super) struct Convergence {
    /// From the heal until settled; `None` when time ran out first.
    pub(super) ms: Option<f64>,
    pub(super) lost: Vec<LostWrite>,
    pub(super) diverging: Vec<String>,
}

/// Notes one read of [`Drill::read_back`] in `held`.
fn note(held: &mut Held, (region, id, found): (String, String, Option<Option<Stamp>>)) {
    let ids = held.entry(region).or_default();
    match found {
        Some(state) => ids.insert(id, state),
        None => ids.remove(&id),
    };
}
