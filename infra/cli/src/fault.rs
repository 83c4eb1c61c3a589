//! `tandem fault <region> <outage>` and `tandem heal <region>`, through any edge — the local one
//! (`tandem up`) or the CloudFront distribution.
//!
//! `error:<status>` and `slow:<ms>` are the region's own admin fault (`PUT/DELETE
//! {endpoint}/region/{region}/api/admin/fault` with the admin bearer token), so they work on AWS.
//! The `/region/<r>` path pins the request to that region: through `/api/...` a PUT would reach
//! the primary whatever region was named. `stopped`, `crashed`, `blackhole` and `partition` are
//! process states and replication settings only the local stack's control API can set.

use anyhow::bail;
use std::time::Duration;
use tandem_ops::client::ControlClient;
pub use tandem_ops::client::Target;
use tandem_shared::control::{Outage, RegionState, ReplicationPatch};
use tandem_shared::fault::MAX_DURATION_S;
use tandem_shared::region::is_valid_region;
use tandem_shared::{Fault, FaultState};

/// `tandem fault` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    /// The region to fault, e.g. us-east-1.
    pub region: String,
    /// error:<500|502|503|504> or slow:<milliseconds> (any edge); stopped, crashed, blackhole
    /// or partition (the local stack).
    pub outage: Outage,
    /// Seconds after which the region heals itself (error and slow only).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_S))]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub target: Target,
}

/// `tandem heal` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HealArgs {
    /// The region to heal.
    pub region: String,
    #[command(flatten)]
    pub target: Target,
}

/// A client for `target`, once the region name is known to be one.
fn client(region: &str, target: &Target) -> anyhow::Result<ControlClient> {
    if !is_valid_region(region) {
        bail!("{region:?} is not a region name (like us-east-1)");
    }
    // A hung region must not hang the operator's shell; the fault API itself is never slowed.
    target.client(Duration::from_secs(30))
}

/// One line describing a region's fault.
pub fn describe(state: &FaultState) -> String {
    let what = match state.fault {
        Fault::Error { status, .. } => format!("data routes answer {status}"),
        Fault::Slow { latency_ms, .. } => format!("data routes answer {latency_ms} ms late"),
        Fault::None { .. } => "no fault".to_owned(),
    };
    match &state.expires_at {
        Some(at) => format!("{}: {what} until {at}", state.region),
        None => format!("{}: {what}", state.region),
    }
}

/// `tandem fault`.
pub async fn fault(args: FaultArgs) -> anyhow::Result<()> {
    let control = client(&args.region, &args.target)?;
    if let Some(fault) = args.outage.fault(args.duration) {
        println!(
            "{}",
            describe(&control.set_fault(&args.region, fault).await?)
        );
        return Ok(());
    }
    if args.duration.is_some() {
        bail!("--duration applies to error and slow faults only");
    }
    // Deleting a data directory needs the stack's machine and directory, which a fault sent
    // through an endpoint has neither of.
    if args.outage.loses_disk() {
        bail!(
            "disk-lost deletes the region's data directory: run it as a drill \
             (`tandem drill --fault disk-lost --data-dir <tandem up's --data-dir>`)"
        );
    }
    control.inject(&args.region, args.outage, None).await?;
    println!("{}: {}", args.region, args.outage);
    Ok(())
}

/// `tandem heal`: clears the region's admin fault and, on the local stack, brings its process
/// up and resumes replication.
pub async fn heal(args: HealArgs) -> anyhow::Result<()> {
    let control = client(&args.region, &args.target)?;
    let local = control.regions().await.ok();
    if let Some(regions) = local {
        let down = regions
            .regions
            .iter()
            .any(|r| r.region == args.region && r.state != RegionState::Up);
        if down {
            control.set_region(&args.region, RegionState::Up).await?;
        }
        if control.replication().await?.config.paused {
            control
                .set_replication(ReplicationPatch::paused(false))
                .await?;
        }
    }
    println!("{}", describe(&control.heal(&args.region).await?));
    Ok(())
}
