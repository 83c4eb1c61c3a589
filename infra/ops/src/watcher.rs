//! The health watcher of contract §6.3: every interval it probes each region's health through the
//! edge (`/region/<r>/api/health`, through CloudFront on AWS) and applies
//! [`tandem_shared::watch`]'s rule to the active region, wherever that is kept
//! ([`ActiveStore`]): inside `tandem up --auto-failover` it is the local edge's value (in
//! tandem-local); `tandem watch` runs the same loop against a stack's control API, and the AWS
//! watcher's Lambda against CloudFront's KeyValueStore.

use anyhow::Context as _;
use std::future::Future;
use std::time::Duration;
use tandem_shared::control::WatcherStatus;
use tandem_shared::watch::{Decision, WatchRule, Watcher};

/// Flags of the watcher (`tandem up --auto-failover`, `tandem watch`, `tandem deploy
/// --auto-failover`), also read from the environment: the AWS watcher's Lambda gets them there.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WatchArgs {
    /// Consecutive failed probes of the active region before switching.
    #[arg(long, env = "TANDEM_FAILOVER_AFTER", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub failover_after: u32,
    /// Also switch back to the primary once it has answered --failback-after probes in a row.
    #[arg(long, env = "TANDEM_AUTO_FAILBACK")]
    pub auto_failback: bool,
    /// Consecutive healthy probes of the primary before failing back (with --auto-failback).
    #[arg(long, env = "TANDEM_FAILBACK_AFTER", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub failback_after: u32,
    /// Milliseconds between probe rounds; a probe not answered within it counts as failed.
    #[arg(long, env = "TANDEM_PROBE_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub probe_interval_ms: u64,
}

impl WatchArgs {
    pub fn rule(&self) -> WatchRule {
        WatchRule {
            failures: self.failover_after,
            failback_after: self.auto_failback.then_some(self.failback_after),
        }
    }

    /// The detection window a user can expect: N rounds of the probe interval.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms * u64::from(self.failover_after))
    }
}

/// Where the active region is kept, as the watcher reads and switches it.
pub trait ActiveStore: Send + Sync {
    /// The current value (`None`: the primary).
    fn get(&self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// Sets (`Some`) or clears (`None`) the value.
    fn set(&self, region: Option<&str>) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Shown where the store is (the local stack's control API); the default keeps it nowhere.
    fn report(&self, _status: &WatcherStatus) {}
}

/// A store shared behind an `Arc` is the store.
impl<T: ActiveStore> ActiveStore for std::sync::Arc<T> {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        T::get(self).await
    }

    async fn set(&self, region: Option<&str>) -> anyhow::Result<()> {
        T::set(self, region).await
    }

    fn report(&self, status: &WatcherStatus) {
        T::report(self, status)
    }
}

/// Probes `regions` through the edge at `edge` forever, switching the active region in `store`
/// by the rule. A store that cannot be read or written is logged and tried again next round:
/// the watcher never stops on its own.
pub async fn watch(edge: String, regions: Vec<String>, store: impl ActiveStore, args: WatchArgs) {
    let mut probes = match Probes::new(edge, regions, args) {
        Ok(probes) => probes,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "the health watcher could not start");
            return;
        }
    };
    let mut tick = tokio::time::interval(probes.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = probes.round(&store).await {
            tracing::error!(error = %format!("{err:#}"), "health watcher round");
        }
    }
}

/// The watcher between rounds: what it probes, and the rule's memory. The AWS watcher (a
/// scheduled Lambda) keeps one across the invocations an execution environment serves.
pub struct Probes {
    http: reqwest::Client,
    edge: String,
    regions: Vec<String>,
    interval: Duration,
    watcher: Watcher,
    status: WatcherStatus,
}

/// What one round saw and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Whether each region (primary first) answered its probe with a 2xx.
    pub healthy: Vec<bool>,
    /// The active region before the round (`None`: the primary).
    pub active: Option<String>,
    /// The switch made, if any: `Some(None)` is a fail-back to the primary.
    pub switched: Option<Option<String>>,
}

impl Probes {
    pub fn new(edge: String, regions: Vec<String>, args: WatchArgs) -> anyhow::Result<Probes> {
        let interval = Duration::from_millis(args.probe_interval_ms);
        Ok(Probes {
            // Probes may be a minute apart: a pooled connection the edge closed meanwhile
            // must not count as a failed probe.
            http: crate::client::http_client(interval)?,
            edge: edge.trim_end_matches('/').to_owned(),
            regions,
            interval,
            watcher: Watcher::new(args.rule()),
            status: WatcherStatus {
                probe_interval_ms: args.probe_interval_ms,
                failover_after: args.failover_after,
                ..WatcherStatus::default()
            },
        })
    }

    /// Time between rounds; a probe not answered within it counts as failed.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Probes every region, reads the active region and switches it when the rule says so,
    /// then reports the round to the store. An error means the store could not be read or
    /// written: nothing was switched.
    pub async fn round(&mut self, store: &impl ActiveStore) -> anyhow::Result<Round> {
        let probes = self.regions.iter().map(|r| self.probe(r));
        let healthy = futures::future::join_all(probes).await;
        let status = &mut self.status;
        status.rounds += 1;
        status.failing = (self.regions.iter().zip(&healthy))
            .filter(|(_, ok)| !**ok)
            .map(|(r, _)| r.clone())
            .collect();
        let round = self.decide(store, healthy).await;
        self.status.error = round.as_ref().err().map(|e| format!("{e:#}"));
        if round.as_ref().is_ok_and(|r| r.switched.is_some()) {
            self.status.switches += 1;
        }
        store.report(&self.status);
        round
    }

    /// The rule's decision on a round's probes, carried out.
    async fn decide(
        &mut self,
        store: &impl ActiveStore,
        healthy: Vec<bool>,
    ) -> anyhow::Result<Round> {
        let active = store.get().await.context("reading the active region")?;
        let names: Vec<&str> = self.regions.iter().map(String::as_str).collect();
        let mut round = Round {
            healthy,
            active,
            switched: None,
        };
        let Some(decision) = self
            .watcher
            .observe(&names, &round.healthy, round.active.as_deref())
        else {
            return Ok(round);
        };
        let target = match &decision {
            Decision::SwitchTo(r) => Some(r.clone()),
            Decision::FailBack => None,
        };
        tracing::warn!(from = ?round.active, to = ?target, healthy = ?round.healthy, "health watcher switching the active region");
        store
            .set(target.as_deref())
            .await
            .with_context(|| format!("switching the active region to {target:?}"))?;
        round.switched = Some(target);
        Ok(round)
    }

    /// Whether `region` answers its health check with a 2xx through the edge within the
    /// interval.
    async fn probe(&self, region: &str) -> bool {
        let url = format!("{}/region/{region}/api/health", self.edge);
        self.http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}
