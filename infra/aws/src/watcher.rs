//! The health watcher on AWS (contract §6.3, automatic switching): a Lambda function in the
//! secondary region (`watcher.yaml`, stack `<prefix>-watcher`, made by `tandem deploy
//! --auto-failover`) that an EventBridge rule runs every minute. Each invocation probes
//! `/region/<r>/api/health` through the distribution every probe interval until its time is
//! nearly up, with the same loop and rule as `tandem up --auto-failover`
//! ([`tandem_ops::watcher::Probes`]), and switches key `active_region` of the edge's
//! KeyValueStore.
//!
//! The active region comes from the distribution's answer to `/api/health`, which the router
//! function marks with the value it read (`x-tandem-active-region`): no KeyValueStore API call
//! in a round that switches nothing. A switch reads the store's ETag and value
//! (DescribeKeyValueStore, GetKey) and writes with `If-Match` (PutKey or DeleteKey): three
//! calls. Two invocations that overlap (the stack reserves no concurrency unless asked to) are
//! kept apart by that ETag: the second writer's `If-Match` fails, and it writes nothing.
//!
//! A switch is confirmed on the next rounds the same way: the distribution's answer to
//! `/api/health` shows the written value. One that does not show within
//! [`tandem_ops::watcher::PROPAGATION`] is logged, and fails the invocation.
//!
//! The rule's memory (consecutive failures) lives in the execution environment, so it carries
//! across warm invocations; a cold start counts from zero again. An invocation that could not
//! read or write the store, or saw its switch unconfirmed, fails, which Lambda's `Errors`
//! metric (and the stack's alarm on it) shows.

use crate::active;
use crate::sdk::Aws;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tandem_ops::watcher::{ActiveStore, Probes, Round, Stored, Switch, WatchArgs, Written};
use tandem_shared::control::SwitchState;
use tokio::sync::Mutex;

/// What the function is told, by environment variables (the stack sets them).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "tandem-watcher",
    version,
    about = "Tandem's health watcher, as a Lambda function"
)]
pub struct WatcherConfig {
    /// The distribution, `https://<domain>`: probes go through it, as users' requests do.
    #[arg(long, env = "TANDEM_ENDPOINT")]
    pub endpoint: String,
    /// The edge's KeyValueStore, which holds the active region.
    #[arg(long, env = "TANDEM_KVS_ARN")]
    pub kvs_arn: String,
    /// The regions behind the edge, primary first.
    #[arg(long, env = "TANDEM_REGIONS", value_delimiter = ',', num_args = 2)]
    pub regions: Vec<String>,
    #[command(flatten)]
    pub rule: WatchArgs,
}

/// Time kept free at the end of an invocation, to answer the runtime before its deadline.
const MARGIN: Duration = Duration::from_secs(2);

/// The active region in the edge's CloudFront KeyValueStore.
pub struct KeyValueStore {
    pub client: aws_sdk_cloudfrontkeyvaluestore::Client,
    pub arn: String,
}

impl ActiveStore for KeyValueStore {
    /// GetKey: one call.
    async fn get(&self) -> anyhow::Result<Option<String>> {
        active::get(&self.client, &self.arn).await
    }

    /// DescribeKeyValueStore, then GetKey: the ETag first, so that a change made after the
    /// value was read fails the write that names it.
    async fn read(&self) -> anyhow::Result<Stored> {
        let etag = active::etag(&self.client, &self.arn).await?;
        let value = active::get(&self.client, &self.arn).await?;
        Ok(Stored {
            value,
            version: Some(etag),
        })
    }

    /// PutKey or DeleteKey with `If-Match`: one call.
    async fn write(&self, region: Option<&str>, seen: &Stored) -> anyhow::Result<Written> {
        let etag = seen
            .version
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no ETag read: the write would be blind"))?;
        active::write_if(&self.client, &self.arn, region, etag).await
    }
}

/// What one invocation saw and did: its answer, and its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Invocation {
    pub rounds: u32,
    /// Failed probes per region, primary first.
    pub failed_probes: Vec<u32>,
    /// The active region at the last round that could read it (`None`: the primary).
    pub active: Option<String>,
    /// Switches made, in order (`null`: back to the primary).
    pub switched: Vec<Option<String>>,
    /// Switches the rule asked for that were not written, and why (the store already held the
    /// target, or another writer changed it first).
    pub not_written: Vec<String>,
    /// Switches the distribution was seen routing `/api/*` by, with how long that took.
    pub confirmed: Vec<String>,
    /// Switches it did not route by within the bound: the store holds a value `/api/*` does
    /// not follow. Any fails the invocation.
    pub unconfirmed: Vec<String>,
}

impl Invocation {
    fn add(&mut self, round: Round) {
        self.rounds += 1;
        self.failed_probes.resize(round.healthy.len(), 0);
        for (failed, healthy) in self.failed_probes.iter_mut().zip(&round.healthy) {
            *failed += u32::from(!healthy);
        }
        match &round.switch {
            Some(Switch::Already(to)) => self
                .not_written
                .push(format!("the store already held {to:?}")),
            Some(Switch::Moved { found }) => self
                .not_written
                .push(format!("the store held {found:?}, set by another writer")),
            Some(Switch::LostRace { why, .. }) => self.not_written.push(why.clone()),
            Some(Switch::Done(_)) | None => {}
        }
        if let Some(seen) = &round.seen {
            let line = format!(
                "{} after {} ms",
                seen.to.as_deref().unwrap_or("none"),
                seen.after_ms
            );
            match seen.state {
                SwitchState::Confirmed => self.confirmed.push(line),
                SwitchState::Unconfirmed => self.unconfirmed.push(line),
                SwitchState::Pending => {}
            }
        }
        self.active = match round.switched {
            Some(to) => {
                self.switched.push(to.clone());
                to
            }
            None => round.active,
        };
    }
}

/// Probe rounds, one per interval, while a whole round still fits before `deadline`. Fails
/// when any round could not read or write the store (the rounds that could still count), or
/// saw a switch unconfirmed.
pub async fn invoke(
    probes: &mut Probes,
    store: &impl ActiveStore,
    deadline: SystemTime,
) -> anyhow::Result<Invocation> {
    let interval = probes.interval();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut done = Invocation::default();
    let mut errors = Vec::new();
    loop {
        tick.tick().await;
        if SystemTime::now() + interval + MARGIN > deadline {
            break;
        }
        match probes.round(store).await {
            Ok(round) => done.add(round),
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    tracing::info!(?done, errors = errors.len(), "health watcher invocation");
    outcome(done, &errors)
}

/// An invocation's answer: an error when a round could not use the store, or when a switch did
/// not show at the edge within the bound (either way the watcher did not do its job, and the
/// stack's alarm on the function's errors should say so).
fn outcome(done: Invocation, errors: &[String]) -> anyhow::Result<Invocation> {
    if let Some(last) = errors.last() {
        return Err(anyhow::anyhow!(
            "{} of {} rounds could not use the active region's store (last: {last}); {done:?}",
            errors.len(),
            errors.len() as u32 + done.rounds
        ));
    }
    if !done.unconfirmed.is_empty() {
        return Err(anyhow::anyhow!(
            "switch not confirmed: the KeyValueStore holds {}, but /api/* through the \
             distribution was not routed by it within the bound (does the router function read \
             the store?); {done:?}",
            done.unconfirmed.join(", ")
        ));
    }
    Ok(done)
}

/// The function's main: serves scheduled events until the runtime stops it.
pub async fn run(config: WatcherConfig) -> anyhow::Result<()> {
    tandem_api::args::init_tracing(true);
    let aws = Aws::load().await;
    let store = Arc::new(KeyValueStore {
        client: aws.keyvaluestore(),
        arn: config.kvs_arn.clone(),
    });
    let probes = Probes::new(config.endpoint.clone(), config.regions.clone(), config.rule)?;
    tracing::info!(endpoint = %config.endpoint, kvs = %config.kvs_arn, regions = ?config.regions, window = ?config.rule.window(), "health watcher init");
    let probes = Arc::new(Mutex::new(probes));
    let handler = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let (probes, store) = (probes.clone(), store.clone());
            // Boxed: unboxed, the runtime's futures around it nest deeper than rustc's layout
            // queries allow ("queries overflow the depth limit" in test builds).
            Box::pin(async move {
                let mut probes = probes.lock().await;
                invoke(&mut probes, store.as_ref(), event.context.deadline())
                    .await
                    .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
            })
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_ops::watcher::Source;
    use tandem_shared::control::SwitchSeen;

    fn round(seen: Option<SwitchSeen>) -> Round {
        Round {
            healthy: vec![true, true],
            active: Some("us-west-2".into()),
            source: Source::Edge,
            switched: None,
            switch: None,
            seen,
        }
    }

    #[test]
    fn a_switch_the_edge_did_not_show_fails_the_invocation() {
        let seen = |state| SwitchSeen {
            to: Some("us-west-2".into()),
            state,
            after_ms: 1_500,
        };
        let mut done = Invocation::default();
        done.add(round(Some(seen(SwitchState::Confirmed))));
        done.add(round(None));
        assert_eq!(done.confirmed, ["us-west-2 after 1500 ms"]);
        let done = outcome(done, &[]).unwrap();

        let mut stuck = done.clone();
        stuck.add(round(Some(seen(SwitchState::Unconfirmed))));
        let err = outcome(stuck, &[]).unwrap_err().to_string();
        assert!(err.contains("switch not confirmed"), "{err}");
        assert!(err.contains("holds us-west-2 after 1500 ms"), "{err}");
    }
}
