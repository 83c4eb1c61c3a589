//! The health watcher's Lambda function (`tandem_aws::watcher`): deployed by `tandem deploy
//! --auto-failover`, configured by the environment its stack sets.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tandem_aws::watcher::run(tandem_aws::watcher::WatcherConfig::parse()).await
}
