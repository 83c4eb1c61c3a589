//! The health watcher of contract §6.3: every interval it probes each region's health through the
//! edge (`/region/<r>/api/health`, through CloudFront on AWS) and applies
//! [`tandem_shared::watch`]'s rule to the active region, wherever that is kept
//! ([`ActiveStore`]): inside `tandem up --auto-failover` it is the local edge's value (in
//! tandem-local); `tandem watch` runs the same loop against a stack's control API, and the AWS
//! watcher's Lambda against CloudFront's KeyValueStore.
//!
//! What it costs to know the active region: nothing per round. Each round also probes
//! `/api/health`, the route that reads the active region (on AWS the router function, from the
//! store's edge copy), and the region that answers echoes it in `x-tandem-active-region`
//! ([`tandem_shared::routing::Routed`]). The store itself is read only when the edge says
//! nothing and the watcher knows nothing yet (one read, then the value is remembered), and to
//! confirm a switch. A switch is a compare-and-swap: the store read with its version (the
//! KeyValueStore's ETag), then written naming that version; a store that changed in between
//! refuses the write, and the round says so ([`Switch::LostRace`]) instead of writing over the
//! other writer. That is what keeps two watchers (two overlapping Lambda invocations, or a
//! `tandem watch` beside the stack's own) from undoing each other.
//!
//! A switch is confirmed the same way, on the next rounds: the edge's answer to `/api/health`
//! shows the written value (the watcher goes by its own write meanwhile), and the round that
//! sees it says so ([`Round::seen`], logged, and in the status the control API and the console
//! show). A value the edge does not route by within [`PROPAGATION`] is reported as unconfirmed:
//! the store holds it, `/api/*` does not follow it.

use anyhow::Context as _;
use std::future::Future;
use std::time::{Duration, Instant};
use tandem_shared::control::{SwitchSeen, SwitchState, WatcherStatus};
use tandem_shared::headers::ACTIVE_REGION;
use tandem_shared::routing::Routed;
use tandem_shared::watch::{Decision, WatchRule, Watcher};

/// How long the watcher goes by its own write when the edge still routes by the old value
/// ([`crate::confirm::PROPAGATION`], the bound the commands wait for too). Past it the switch is
/// reported unconfirmed, the edge's word counts again, and a switch the rule asks for anew is
/// confirmed against the store (which then already holds it: two reads, no write).
pub use crate::confirm::PROPAGATION;

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

/// The active region as read from its store, with the version a write must name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The value (`None`: the primary).
    pub value: Option<String>,
    /// The store's version when read (the KeyValueStore's ETag); `None` for a store without
    /// one, whose write compares the value instead.
    pub version: Option<String>,
}

/// What a write naming a [`Stored`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The store changed since it was read: nothing was written. The message says how.
    Conflict(String),
}

/// Where the active region is kept, as the watcher reads and switches it.
pub trait ActiveStore: Send + Sync {
    /// The current value (`None`: the primary), for a watcher that has nothing else to go by.
    fn get(&self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// The value and its version, before a switch. Without a version: the value alone.
    fn read(&self) -> impl Future<Output = anyhow::Result<Stored>> + Send {
        async {
            Ok(Stored {
                value: self.get().await?,
                version: None,
            })
        }
    }
    /// Sets (`Some`) or clears (`None`) the value, unless the store changed since `seen`.
    fn write(
        &self,
        region: Option<&str>,
        seen: &Stored,
    ) -> impl Future<Output = anyhow::Result<Written>> + Send;
    /// Shown where the store is (the local stack's control API); the default keeps it nowhere.
    fn report(&self, _status: &WatcherStatus) {}
}

/// A store shared behind an `Arc` is the store.
impl<T: ActiveStore> ActiveStore for std::sync::Arc<T> {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        T::get(self).await
    }

    async fn read(&self) -> anyhow::Result<Stored> {
        T::read(self).await
    }

    async fn write(&self, region: Option<&str>, seen: &Stored) -> anyhow::Result<Written> {
        T::write(self, region, seen).await
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

/// The watcher between rounds: what it probes, the rule's memory, and what it knows of the
/// active region. The AWS watcher (a scheduled Lambda) keeps one across the invocations an
/// execution environment serves.
pub struct Probes {
    http: reqwest::Client,
    edge: String,
    regions: Vec<String>,
    interval: Duration,
    watcher: Watcher,
    status: WatcherStatus,
    /// The active region as last learnt (from the edge, the store or its own write); `None`
    /// while it knows nothing.
    known: Option<Option<String>>,
    /// The value this watcher last wrote (or found already written), and when: the edge may
    /// route by the old one for a while ([`PROPAGATION`]).
    written: Option<(Option<String>, Instant)>,
    /// How long a written value may take to show at the edge ([`PROPAGATION`]).
    confirm_within: Duration,
    /// What this round learnt of the last switch: for [`Round::seen`].
    seen: Option<SwitchSeen>,
    /// Whether the edge last said its router fell back (logged when that changes).
    fell_back: bool,
}

/// Where a round's active region came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The edge's answer to the probe of `/api/health`: no store call.
    Edge,
    /// This watcher's own write, which the edge has not picked up yet.
    Written,
    /// What it learnt before: the edge said nothing this round.
    Remembered,
    /// The store, read because the edge said nothing and nothing was known.
    Store,
}

/// What became of a switch the rule asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// Written: the store now holds the target (`None`: cleared, the primary).
    Done(Option<String>),
    /// The store already held the target: nothing written.
    Already(Option<String>),
    /// The store held another value than the one the watcher went by (someone else switched
    /// it): nothing written; the next rounds go by what is there.
    Moved { found: Option<String> },
    /// Another writer changed the store between this watcher's read and its write (its
    /// version no longer matched): nothing written, nothing retried.
    LostRace { target: Option<String>, why: String },
}

/// What one round saw and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Whether each region (primary first) answered its probe with a 2xx.
    pub healthy: Vec<bool>,
    /// The active region before the round (`None`: the primary).
    pub active: Option<String>,
    /// Where `active` came from.
    pub source: Source,
    /// The switch made, if any: `Some(None)` is a fail-back to the primary.
    pub switched: Option<Option<String>>,
    /// What became of the switch the rule asked for, if it asked for one.
    pub switch: Option<Switch>,
    /// A switch written in an earlier round that this round saw confirmed by the edge, or gave
    /// up waiting for (`unconfirmed`).
    pub seen: Option<SwitchSeen>,
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
            known: None,
            written: None,
            confirm_within: PROPAGATION,
            seen: None,
            fell_back: false,
        })
    }

    /// The same watcher, waiting `within` (instead of [`PROPAGATION`]) for the edge to show a
    /// value it wrote: for tests, which cannot wait a minute.
    pub fn confirm_within(mut self, within: Duration) -> Probes {
        self.confirm_within = within;
        self
    }

    /// Time between rounds; a probe not answered within it counts as failed.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Probes every region and the edge's route, learns the active region, switches it when
    /// the rule says so, then reports the round to the store. An error means the store could
    /// not be read or written: nothing was switched.
    pub async fn round(&mut self, store: &impl ActiveStore) -> anyhow::Result<Round> {
        let probes = self.regions.iter().map(|r| self.probe(r));
        let (healthy, routed) =
            futures::future::join(futures::future::join_all(probes), self.routed()).await;
        let status = &mut self.status;
        status.rounds += 1;
        status.failing = (self.regions.iter().zip(&healthy))
            .filter(|(_, ok)| !**ok)
            .map(|(r, _)| r.clone())
            .collect();
        let round = self.decide(store, healthy, routed).await;
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
        routed: Option<Routed>,
    ) -> anyhow::Result<Round> {
        let (active, source) = self.active(store, routed).await?;
        let names: Vec<&str> = self.regions.iter().map(String::as_str).collect();
        let mut round = Round {
            healthy,
            active,
            source,
            switched: None,
            switch: None,
            seen: self.seen.take(),
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
        let switch = self
            .switch(store, round.active.as_deref(), target.clone())
            .await
            .with_context(|| format!("switching the active region to {target:?}"))?;
        match &switch {
            Switch::Done(to) => round.switched = Some(to.clone()),
            Switch::Already(to) => {
                tracing::warn!(active = ?to, "the store already holds that active region: nothing written (the edge had not picked it up)")
            }
            Switch::Moved { found } => {
                tracing::warn!(found = ?found, went_by = ?round.active, "the store holds another active region than this watcher went by: nothing written")
            }
            Switch::LostRace { why, .. } => {
                tracing::warn!(%why, "another writer changed the store first: nothing written, not retried")
            }
        }
        round.switch = Some(switch);
        Ok(round)
    }

    /// The active region for this round, and where it came from: the edge's word, unless this
    /// watcher's own write is newer than what the edge routes by; else what it learnt before;
    /// else the store, once.
    async fn active(
        &mut self,
        store: &impl ActiveStore,
        routed: Option<Routed>,
    ) -> anyhow::Result<(Option<String>, Source)> {
        let Some(routed) = routed else {
            // No answer that says: a switch cannot be seen, and is not seen once the bound passed.
            if let Some((value, at)) = self.written.clone()
                && at.elapsed() >= self.confirm_within
            {
                self.judge(value, at, SwitchState::Unconfirmed);
            }
            if let Some(known) = &self.known {
                return Ok((known.clone(), Source::Remembered));
            }
            let value = store.get().await.context("reading the active region")?;
            self.known = Some(value.clone());
            return Ok((value, Source::Store));
        };
        if routed.failover_off != self.fell_back {
            self.fell_back = routed.failover_off;
            match routed.failover_off {
                true => tracing::warn!(
                    "the edge's /api/* router fell back: it sends requests to the active region without per-request failover"
                ),
                false => tracing::info!("the edge's /api/* router fails reads over again"),
            }
        }
        if let Some((value, at)) = self.written.clone() {
            let agree = self.serving(routed.active.as_deref()) == self.serving(value.as_deref());
            if !agree && at.elapsed() < self.confirm_within {
                if let Some(pending) = &mut self.status.last_switch {
                    pending.after_ms = millis(at.elapsed());
                }
                return Ok((value, Source::Written));
            }
            let state = match agree {
                true => SwitchState::Confirmed,
                false => SwitchState::Unconfirmed,
            };
            self.judge(value, at, state);
        }
        self.known = Some(routed.active.clone());
        Ok((routed.active, Source::Edge))
    }

    /// Confirms a switch against the store and makes it: the store's value and version read,
    /// then the target written naming that version.
    async fn switch(
        &mut self,
        store: &impl ActiveStore,
        went_by: Option<&str>,
        target: Option<String>,
    ) -> anyhow::Result<Switch> {
        let seen = store
            .read()
            .await
            .context("reading the active region to confirm the switch")?;
        let now = self.serving(seen.value.as_deref()).to_owned();
        if now == self.serving(target.as_deref()) {
            self.learnt(seen.value.clone(), true);
            return Ok(Switch::Already(seen.value));
        }
        if now != self.serving(went_by) {
            self.learnt(seen.value.clone(), false);
            return Ok(Switch::Moved { found: seen.value });
        }
        match store.write(target.as_deref(), &seen).await? {
            Written::Done => {
                self.learnt(target.clone(), true);
                Ok(Switch::Done(target))
            }
            Written::Conflict(why) => {
                // Whatever the other writer did, the edge will say it: learn it again.
                self.known = None;
                self.written = None;
                Ok(Switch::LostRace { target, why })
            }
        }
    }

    /// Goes by `value` from now on; `fresh`: it was just written (or found written), so the
    /// edge may still route by the old one for a while, and the next rounds look for it there.
    fn learnt(&mut self, value: Option<String>, fresh: bool) {
        self.written = fresh.then(|| (value.clone(), Instant::now()));
        if fresh {
            self.status.last_switch = Some(SwitchSeen {
                to: value.clone(),
                state: SwitchState::Pending,
                after_ms: 0,
            });
        }
        self.known = Some(value);
    }

    /// The edge showed the value written at `at` (`Confirmed`), or did not within the bound
    /// (`Unconfirmed`): said in the log, the status and the round; the write is waited for no
    /// more.
    fn judge(&mut self, value: Option<String>, at: Instant, state: SwitchState) {
        let after = at.elapsed();
        let to = value.as_deref().unwrap_or("none (the primary)");
        match state {
            SwitchState::Unconfirmed => tracing::error!(
                to,
                after = ?after,
                "switch not confirmed: the store holds it, but /api/* through the edge is not routed by it (a router that does not read the store, or propagation stuck)"
            ),
            _ => {
                tracing::info!(to, after = ?after, "switch confirmed: /api/* through the edge is routed by it")
            }
        }
        let seen = SwitchSeen {
            to: value,
            state,
            after_ms: millis(after),
        };
        self.status.last_switch = Some(seen.clone());
        self.seen = Some(seen);
        self.written = None;
    }

    /// The region a value sends `/api/*` to first: itself when it is one of the regions, else
    /// the primary (`tandem_shared::routing::api_route`'s rule).
    fn serving<'a>(&'a self, value: Option<&'a str>) -> &'a str {
        let primary = self.regions.first().map_or("", String::as_str);
        value
            .filter(|v| self.regions.iter().any(|r| r == v))
            .unwrap_or(primary)
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

    /// What the edge's `/api/*` route says it routed by, as the region that answered echoes it;
    /// `None` when nothing answered in time or the answer does not say (an edge or a region
    /// too old to, or `ApiFailoverMode=origin-group`, which runs no router).
    async fn routed(&self) -> Option<Routed> {
        let url = format!("{}/api/health", self.edge);
        let answer = self.http.get(url).send().await.ok()?;
        let value = answer.headers().get(ACTIVE_REGION)?.to_str().ok()?;
        Routed::parse(value)
    }
}

/// Milliseconds, for the status.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tandem_shared::headers::SERVED_REGION;

    const EAST: &str = "us-east-1";
    const WEST: &str = "us-west-2";

    /// The active region in memory, and the watcher's last report.
    #[derive(Default)]
    struct Memory {
        value: Mutex<Option<String>>,
        reported: Mutex<Option<WatcherStatus>>,
    }

    impl ActiveStore for Memory {
        async fn get(&self) -> anyhow::Result<Option<String>> {
            Ok(self.value.lock().unwrap().clone())
        }

        async fn write(&self, region: Option<&str>, _: &Stored) -> anyhow::Result<Written> {
            *self.value.lock().unwrap() = region.map(str::to_owned);
            Ok(Written::Done)
        }

        fn report(&self, status: &WatcherStatus) {
            *self.reported.lock().unwrap() = Some(status.clone());
        }
    }

    /// An edge whose primary answers 503 and whose `/api/health` is routed by `routes` (`None`:
    /// the primary), answered by that region: the store's value reaches it only when the test
    /// copies it there.
    async fn edge(routes: Arc<Mutex<Option<String>>>) -> String {
        crate::testing::serve(move |line| {
            if line.starts_with(&format!("GET /region/{EAST}/")) {
                return (503, Vec::new());
            }
            if line.starts_with("GET /region/") {
                return (200, Vec::new());
            }
            let routed = Routed {
                active: routes.lock().unwrap().clone(),
                failover_off: false,
            };
            let served = routed.active.clone().unwrap_or_else(|| EAST.to_owned());
            (
                200,
                vec![
                    (ACTIVE_REGION, routed.header_value()),
                    (SERVED_REGION, served),
                ],
            )
        })
        .await
    }

    async fn probes(routes: Arc<Mutex<Option<String>>>, within: Duration) -> Probes {
        let args = WatchArgs {
            failover_after: 1,
            auto_failback: false,
            failback_after: 10,
            probe_interval_ms: 1000,
        };
        let regions = vec![EAST.to_owned(), WEST.to_owned()];
        Probes::new(edge(routes).await, regions, args)
            .unwrap()
            .confirm_within(within)
    }

    fn last_switch(store: &Memory) -> SwitchSeen {
        let status = store.reported.lock().unwrap().clone().unwrap();
        status.last_switch.expect("a switch was reported")
    }

    #[tokio::test]
    async fn a_switch_the_edge_shows_is_confirmed_on_a_later_round() {
        let routes = Arc::new(Mutex::new(None));
        let mut probes = probes(routes.clone(), PROPAGATION).await;
        let store = Memory::default();
        let round = probes.round(&store).await.unwrap();
        assert_eq!(round.switched, Some(Some(WEST.to_owned())));
        assert_eq!(last_switch(&store).state, SwitchState::Pending);

        // The edge has not picked it up: the watcher goes by its own write, and waits.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let round = probes.round(&store).await.unwrap();
        assert_eq!((round.source, round.seen), (Source::Written, None));
        let pending = last_switch(&store);
        assert_eq!(pending.state, SwitchState::Pending);
        assert!(pending.after_ms >= 20, "{pending:?}");

        // It has: the round says so, and so does the status.
        *routes.lock().unwrap() = Some(WEST.to_owned());
        let round = probes.round(&store).await.unwrap();
        assert_eq!(round.source, Source::Edge);
        let seen = round.seen.expect("confirmed this round");
        assert_eq!(
            (seen.to.as_deref(), seen.state),
            (Some(WEST), SwitchState::Confirmed)
        );
        assert_eq!(last_switch(&store), seen);
        // Said once.
        assert_eq!(probes.round(&store).await.unwrap().seen, None);
    }

    #[tokio::test]
    async fn a_switch_the_edge_never_shows_is_reported_unconfirmed() {
        let routes = Arc::new(Mutex::new(None));
        let within = Duration::from_millis(300);
        let mut probes = probes(routes, within).await;
        let store = Memory::default();
        probes.round(&store).await.unwrap();
        assert_eq!(store.value.lock().unwrap().as_deref(), Some(WEST));

        tokio::time::sleep(within).await;
        let round = probes.round(&store).await.unwrap();
        let seen = round.seen.expect("given up this round");
        assert_eq!(
            (seen.to.as_deref(), seen.state),
            (Some(WEST), SwitchState::Unconfirmed)
        );
        assert!(seen.after_ms >= 300, "{seen:?}");
        // The edge's word counts again: the primary, still failing, so the rule asks again;
        // the store already holds the target, and the wait starts over.
        assert_eq!(round.active, None);
        assert_eq!(round.switch, Some(Switch::Already(Some(WEST.to_owned()))));
        assert_eq!(last_switch(&store).state, SwitchState::Pending);
    }
}
