//! Switching the active region (contract §6.3) where a stack keeps it, and confirming the switch
//! through the edge: `tandem failover`/`failback`, `tandem status` and the deploy's failover
//! drill. A local stack keeps the value behind its control API; on AWS it is key
//! `active_region` of the edge's KeyValueStore ([`crate::active`]).
//!
//! A write is not a switch until `/api/*` is routed by it: after writing, the commands look at
//! `/api/health` through the edge until its answer echoes the new value and comes from the
//! region it names ([`tandem_ops::confirm`]), and say how long that took, or fail after a bound.

use crate::active::{self, EdgeArgs, Store};
use crate::sdk::Aws;
use std::time::Duration;
use tandem_ops::client::{ControlClient, Target};
use tandem_ops::confirm::{self, Confirmation, PROPAGATION};
use tandem_shared::control::ActiveRegion;

/// `--confirm-within` and `--no-confirm` of `tandem failover`/`failback`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Confirming the switch")]
pub struct ConfirmArgs {
    /// Seconds to wait, after the write, for /api/* through --endpoint to be routed by the new
    /// value and answered by that region. AWS says CloudFront's edge locations get a
    /// KeyValueStore change within seconds, with no bound; the local edge at once.
    #[arg(long, value_name = "SECONDS", default_value_t = PROPAGATION.as_secs())]
    pub confirm_within: u64,
    /// Write the value and stop, without looking through the edge (for an --endpoint that does
    /// not reach the distribution).
    #[arg(long)]
    pub no_confirm: bool,
}

impl ConfirmArgs {
    pub fn within(&self) -> Duration {
        Duration::from_secs(self.confirm_within)
    }
}

/// What a confirmation that failed says besides what the edge showed: where to look.
pub const NOT_CONFIRMED_HINT: &str = "The value is written, but /api/* does not follow it: \
    CloudFront may still be propagating it (`tandem status` compares the two again), or the \
    /api/* router function does not read the store (its KeyValueStore association, or a function \
    error: see the function's metrics). --confirm-within sets how long to wait.";

/// Where the active region is kept, open for reading and writing.
#[derive(Clone)]
pub enum Keeper {
    /// A local stack's control API (`/_tandem/active-region`), with the admin token.
    Local(ControlClient),
    /// The edge's KeyValueStore on AWS.
    Aws {
        client: aws_sdk_cloudfrontkeyvaluestore::Client,
        store: Store,
    },
}

impl Keeper {
    /// The keeper of the stack `target` points at: on AWS (an https:// endpoint, or
    /// `--kvs-arn`) the store the edge stack names, after checking the endpoint against the
    /// distribution and its alias; otherwise the local stack's control API (admin token needed).
    pub async fn open(target: &Target, edge: &EdgeArgs) -> anyhow::Result<Keeper> {
        if edge.on_aws(&target.endpoint) {
            let aws = Aws::load().await;
            let store = active::find_store(&aws, edge, &target.endpoint).await?;
            return Ok(Keeper::Aws {
                client: aws.keyvaluestore(),
                store,
            });
        }
        Ok(Keeper::Local(target.client(Duration::from_secs(30))?))
    }

    /// The value kept now (`None`: the primary).
    pub async fn get(&self) -> anyhow::Result<Option<String>> {
        match self {
            Keeper::Local(control) => Ok(control.active_region().await?.region),
            Keeper::Aws { client, store } => active::get(client, &store.arn).await,
        }
    }

    /// Sets (`Some`) or clears (`None`) the value; the lines saying what was done.
    pub async fn set(&self, region: Option<&str>) -> anyhow::Result<Vec<String>> {
        match self {
            Keeper::Local(control) => {
                let now = control.set_active_region(region).await?;
                Ok(vec![describe(&now)])
            }
            Keeper::Aws { client, store } => {
                if let Some(region) = region {
                    store.check_region(region)?;
                }
                let change = active::set(client, &store.arn, region).await?;
                Ok(vec![
                    describe(&ActiveRegion::new(change.after.clone())),
                    change.summary(store),
                ])
            }
        }
    }

    /// The stack's primary region, which answers `/api/*` after a failback: the local stack's
    /// control API says it, the edge stack's parameters do on AWS (not with `--kvs-arn`).
    pub async fn primary(&self) -> Option<String> {
        match self {
            Keeper::Local(control) => control
                .regions()
                .await
                .ok()?
                .regions
                .into_iter()
                .find(|r| r.primary)
                .map(|r| r.region),
            Keeper::Aws { store, .. } => store.regions.as_ref().map(|r| r[0].clone()),
        }
    }

    /// Why the edge cannot show the value (the edge stack's `ApiFailoverMode=origin-group` runs
    /// no router), when the stack says so.
    pub fn warning(&self) -> Option<&str> {
        match self {
            Keeper::Local(_) => None,
            Keeper::Aws { store, .. } => store.warning.as_deref(),
        }
    }
}

/// One line saying where `/api/*` goes now.
pub fn describe(active: &ActiveRegion) -> String {
    match &active.region {
        Some(r) => format!("active region: {r} (every /api/* request goes there first)"),
        None => "active region: the primary (no value set)".to_owned(),
    }
}

/// Looks at `/api/health` through `base` until `/api/*` is routed by `target` (`None`: the
/// primary) and answered by that region, or `within` has passed.
pub async fn confirm(
    base: &str,
    target: Option<&str>,
    primary: Option<&str>,
    within: Duration,
) -> anyhow::Result<Confirmation> {
    // One look may wait for CloudFront's origin timeouts (2 × 1 s to connect, 4 s to read).
    let http = tandem_ops::client::http_client(Duration::from_secs(10))?;
    Ok(confirm::until_routed(&http, base, target, primary, within).await)
}

/// Sets the value where `target` points, then (unless `--no-confirm`) waits until `/api/*`
/// through it follows: `tandem failover` (`Some`) and `tandem failback` (`None`). Fails when
/// the edge does not show the value within the bound.
pub async fn switch(
    target: &Target,
    edge: &EdgeArgs,
    confirm_args: &ConfirmArgs,
    region: Option<&str>,
) -> anyhow::Result<()> {
    let keeper = Keeper::open(target, edge).await?;
    if let Some(warning) = keeper.warning() {
        eprintln!("warning: {warning}");
    }
    for line in keeper.set(region).await? {
        println!("{line}");
    }
    let base = confirm::base_url(&target.endpoint);
    if confirm_args.no_confirm {
        println!("not confirmed through the edge (--no-confirm): `tandem status` compares the two");
        return Ok(());
    }
    if keeper.warning().is_some() {
        println!("not confirmed through {base}: /api/* runs no router there (see the warning)");
        return Ok(());
    }
    let within = confirm_args.within();
    let primary = keeper.primary().await;
    let seen = confirm(&base, region, primary.as_deref(), within).await?;
    let line = seen.describe(&base, within);
    match seen.confirmed {
        true => {
            println!("{line}");
            Ok(())
        }
        false => anyhow::bail!("{line}. {NOT_CONFIRMED_HINT}"),
    }
}
