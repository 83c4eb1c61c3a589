//! `tandem failover --to <region>` and `tandem failback`: set or clear the active region
//! (SPEC §6), the region `/api/*` goes to first for every method. On the local stack through
//! its control API (`PUT/DELETE /_tandem/active-region`).

use anyhow::bail;
use std::time::Duration;
use tandem_local::client::Target;
use tandem_shared::control::ActiveRegion;
use tandem_shared::region::is_valid_region;

/// `tandem failover` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    /// The region to make active.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub target: Target,
}

/// `tandem failback` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FailbackArgs {
    #[command(flatten)]
    pub target: Target,
}

/// One line saying where `/api/*` goes now.
pub fn describe(active: &ActiveRegion) -> String {
    match &active.region {
        Some(r) => format!("active region: {r} (every /api/* request goes there first)"),
        None => "active region: the primary (no value set)".to_owned(),
    }
}

/// `tandem failover`.
pub async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    if !is_valid_region(&args.to) {
        bail!("{:?} is not a region name (like us-west-2)", args.to);
    }
    let control = args.target.client(Duration::from_secs(30))?;
    let active = control.set_active_region(Some(&args.to)).await?;
    println!("{}", describe(&active));
    Ok(())
}

/// `tandem failback`.
pub async fn failback(args: FailbackArgs) -> anyhow::Result<()> {
    let control = args.target.client(Duration::from_secs(30))?;
    let active = control.set_active_region(None).await?;
    println!("{}", describe(&active));
    Ok(())
}
