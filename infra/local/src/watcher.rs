//! The health watcher of SPEC §6: every interval it probes each region's health through the
//! edge (`/region/<r>/api/health`, through CloudFront on AWS) and applies
//! [`tandem_shared::watch`]'s rule to the active region, wherever that is kept
//! ([`ActiveStore`]): inside `tandem up --auto-failover` it is the local edge's value; `tandem
//! watch` runs the same loop against a stack's control API or CloudFront's KeyValueStore.

use crate::active::Active;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tandem_shared::watch::{Decision, WatchRule, Watcher};

/// Flags of the watcher (`tandem up --auto-failover`, `tandem watch`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WatchArgs {
    /// Consecutive failed probes of the active region before switching.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub failover_after: u32,
    /// Also switch back to the primary once it has answered --failback-after probes in a row.
    #[arg(long)]
    pub auto_failback: bool,
    /// Consecutive healthy probes of the primary before failing back (with --auto-failback).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub failback_after: u32,
    /// Milliseconds between probe rounds; a probe not answered within it counts as failed.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
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
}

/// The local edge's own value, in the same process.
impl ActiveStore for Arc<Active> {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        Ok(Active::get(self))
    }

    async fn set(&self, region: Option<&str>) -> anyhow::Result<()> {
        Active::set(self, region).map(drop).map_err(Into::into)
    }
}

/// `tandem up --auto-failover`: [`watch`] over the local edge's value.
pub async fn run(edge: String, regions: Vec<String>, active: Arc<Active>, args: WatchArgs) {
    watch(edge, regions, active, args).await
}

/// Probes `regions` through the edge at `edge` forever, switching the active region in `store`
/// by the rule. A store that cannot be read or written is logged and tried again next round:
/// the watcher never stops on its own.
pub async fn watch(edge: String, regions: Vec<String>, store: impl ActiveStore, args: WatchArgs) {
    let interval = Duration::from_millis(args.probe_interval_ms);
    // Probes may be a minute apart: a pooled connection the edge closed meanwhile must not
    // count as a failed probe.
    let Ok(http) = crate::client::http_client(interval) else {
        tracing::error!("the health watcher could not build an HTTP client");
        return;
    };
    let names: Vec<&str> = regions.iter().map(String::as_str).collect();
    let mut watcher = Watcher::new(args.rule());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probes = names.iter().map(|r| probe(&http, &edge, r));
        let healthy = futures::future::join_all(probes).await;
        let current = match store.get().await {
            Ok(current) => current,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "the health watcher could not read the active region");
                continue;
            }
        };
        let Some(decision) = watcher.observe(&names, &healthy, current.as_deref()) else {
            continue;
        };
        let target = match &decision {
            Decision::SwitchTo(r) => Some(r.as_str()),
            Decision::FailBack => None,
        };
        tracing::warn!(from = ?current, to = ?target, ?healthy, "health watcher switching the active region");
        if let Err(err) = store.set(target).await {
            tracing::error!(error = %format!("{err:#}"), "the health watcher could not switch the active region");
        }
    }
}

/// Whether `region` answers its health check with a 2xx through the edge within the interval.
async fn probe(http: &reqwest::Client, edge: &str, region: &str) -> bool {
    let url = format!("{edge}/region/{region}/api/health");
    http.get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
