//! `tandem failover --to <region>` and `tandem failback`: set or clear the active region
//! (contract §6.3), the region `/api/*` goes to first for every method, then confirm through
//! the edge that `/api/*` follows it. On the local stack through its control API
//! (`PUT/DELETE /_tandem/active-region`); on AWS (an https:// endpoint: the distribution's domain
//! or its custom domain, or `--kvs-arn`) in the edge's CloudFront KeyValueStore. Both through
//! [`tandem_aws::switch`].

use anyhow::bail;
use tandem_aws::active::EdgeArgs;
use tandem_aws::switch::{ConfirmArgs, switch};
use tandem_ops::client::Target;
use tandem_shared::region::is_valid_region;

/// `tandem failover` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    /// The region to make active.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

/// `tandem failback` flags, and the rest of `tandem failover`'s: where the active region is
/// kept, and how the switch is confirmed.
#[derive(Debug, Clone, clap::Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub aws: EdgeArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

impl SwitchArgs {
    /// Sets the active region to `to` (`None`: clears it), and confirms it through the edge.
    async fn switch(&self, to: Option<&str>) -> anyhow::Result<()> {
        switch(&self.target, &self.aws, &self.confirm, to).await
    }
}

/// `tandem failover`.
pub async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    if !is_valid_region(&args.to) {
        bail!("{:?} is not a region name (like us-west-2)", args.to);
    }
    args.switch.switch(Some(&args.to)).await
}

/// `tandem failback`.
pub async fn failback(args: SwitchArgs) -> anyhow::Result<()> {
    args.switch(None).await
}
