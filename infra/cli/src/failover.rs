//! `tandem failover --to <region>` and `tandem failback`: set or clear the active region
//! (contract §6.3), the region `/api/*` goes to first for every method. On the local stack through
//! its control API (`PUT/DELETE /_tandem/active-region`); on AWS (an https:// endpoint, or
//! `--kvs-arn`) in the edge's CloudFront KeyValueStore, through [`tandem_aws::active`].

use anyhow::bail;
use std::time::Duration;
use tandem_aws::active::EdgeArgs;
use tandem_ops::client::Target;
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
    #[command(flatten)]
    pub aws: EdgeArgs,
}

/// `tandem failback` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FailbackArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub aws: EdgeArgs,
}

/// One line saying where `/api/*` goes now.
pub fn describe(active: &ActiveRegion) -> String {
    match &active.region {
        Some(r) => format!("active region: {r} (every /api/* request goes there first)"),
        None => "active region: the primary (no value set)".to_owned(),
    }
}

/// Sets (`Some`) or clears (`None`) the active region where `target` points.
async fn set(target: &Target, aws: &EdgeArgs, region: Option<&str>) -> anyhow::Result<()> {
    if aws.on_aws(&target.endpoint) {
        let (store, change) =
            tandem_aws::active::set_active_region(aws, &target.endpoint, region).await?;
        if let Some(warning) = &store.warning {
            eprintln!("warning: {warning}");
        }
        println!("{}", describe(&ActiveRegion::new(change.after.clone())));
        println!("{}", change.summary(&store));
        return Ok(());
    }
    let control = target.client(Duration::from_secs(30))?;
    let active = control.set_active_region(region).await?;
    println!("{}", describe(&active));
    Ok(())
}

/// `tandem failover`.
pub async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    if !is_valid_region(&args.to) {
        bail!("{:?} is not a region name (like us-west-2)", args.to);
    }
    set(&args.target, &args.aws, Some(&args.to)).await
}

/// `tandem failback`.
pub async fn failback(args: FailbackArgs) -> anyhow::Result<()> {
    set(&args.target, &args.aws, None).await
}
