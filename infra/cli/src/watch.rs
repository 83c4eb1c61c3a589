//! `tandem watch`: the health watcher of contract §6.3 as a command of its own, for where the stack
//! does not run it: against a local stack's control API, or on AWS against the edge's
//! CloudFront KeyValueStore. It probes `/region/<r>/api/health` through the endpoint and
//! switches the active region by [`tandem_shared::watch`]'s rule, until stopped; it learns the
//! active region from the endpoint's answer to `/api/health`, so the store is read only to
//! confirm a switch ([`tandem_ops::watcher`]).
//!
//! On AWS run it outside the primary region (an instance or a container in the secondary):
//! it needs CloudFront and the KeyValueStore's data plane, both global, and nothing in the
//! primary region once started with `--kvs-arn` (without it, it reads the edge stack's outputs
//! in the primary region once, at start).

use std::time::Duration;
use tandem_aws::active::EdgeArgs;
use tandem_aws::sdk::Aws;
use tandem_ops::client::{ControlClient, Target};
use tandem_ops::watcher::{self, ActiveStore, Stored, WatchArgs, Written};
use tandem_shared::region::DEFAULT_REGIONS;

/// `tandem watch` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchCommandArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub rule: WatchArgs,
    #[command(flatten)]
    pub aws: EdgeArgs,
    /// The regions behind the edge, primary first, when the stack cannot tell (`--kvs-arn`).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_REGIONS.map(String::from))]
    pub regions: Vec<String>,
}

/// The active region behind a local stack's control API. It has no version: a write reads the
/// value again and writes only if it is still the one the switch was decided on.
struct Control(ControlClient);

impl ActiveStore for Control {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        Ok(self.0.active_region().await?.region)
    }

    async fn write(&self, region: Option<&str>, seen: &Stored) -> anyhow::Result<Written> {
        let now = self.get().await?;
        if now != seen.value {
            return Ok(Written::Conflict(format!(
                "the active region became {now:?} after it was read as {:?}",
                seen.value
            )));
        }
        self.0.set_active_region(region).await?;
        Ok(Written::Done)
    }
}

/// `tandem watch`.
pub async fn run(args: WatchCommandArgs) -> anyhow::Result<()> {
    tandem_api::args::init_tracing(false);
    let window = args.rule.window();
    if args.aws.on_aws(&args.target.endpoint) {
        let aws = Aws::load().await;
        let endpoint = args.target.endpoint.trim_end_matches('/').to_owned();
        let store = tandem_aws::active::find_store(&aws, &args.aws, &endpoint).await?;
        let regions = store.regions.clone().map_or(args.regions, Vec::from);
        println!(
            "watching {regions:?} through {endpoint}; switching {} after ~{window:?}",
            store.arn
        );
        let kvs = tandem_aws::watcher::KeyValueStore {
            client: aws.keyvaluestore(),
            arn: store.arn,
        };
        watcher::watch(endpoint, regions, kvs, args.rule).await;
        return Ok(());
    }
    let control = args.target.client(Duration::from_secs(10))?;
    let regions = control.regions().await?.regions;
    let regions: Vec<String> = regions.into_iter().map(|r| r.region).collect();
    let edge = control.base().to_owned();
    println!("watching {regions:?} through {edge}; switching after ~{window:?}");
    watcher::watch(edge, regions, Control(control), args.rule).await;
    Ok(())
}
