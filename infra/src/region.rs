//! `tandem region`: one local region process. It serves the very router the Lambda runs, on
//! the embedded store, plus the internal replication routes, and pulls its peers' writes.

use crate::replication::{Peer, ReplicationConfig, Replicator};
use anyhow::Context as _;
use tandem_api::cli::RegionArgs;
use tandem_api::store::embedded::EmbeddedStore;

/// Flags of `tandem region` (started by `tandem up`, one process per region).
#[derive(Debug, Clone, clap::Args)]
pub struct RegionProcessArgs {
    #[command(flatten)]
    pub api: RegionArgs,
    /// Another region to replicate from, as REGION=URL (repeat for each peer).
    #[arg(long = "peer")]
    pub peers: Vec<Peer>,
    /// Hold each replicated write back until it is this old.
    #[arg(long, default_value_t = 0)]
    pub replication_lag_ms: u64,
    /// Start with replication paused.
    #[arg(long)]
    pub replication_paused: bool,
}

pub async fn run(args: RegionProcessArgs) -> anyhow::Result<()> {
    tandem_api::cli::init_tracing(false);
    let config = args.api.config();
    let dir = args.api.data_dir();
    let store = EmbeddedStore::open(&dir, &config.region)?;
    let replicator = Replicator::new(
        store.clone(),
        args.peers.clone(),
        ReplicationConfig {
            paused: args.replication_paused,
            lag_ms: args.replication_lag_ms,
        },
        config.origin_secret.clone(),
        config.admin_token.clone(),
    );
    let app = replicator
        .router()
        .merge(tandem_api::router(store, config.clone()));
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .with_context(|| format!("binding {}", args.api.listen))?;
    replicator.spawn();
    tracing::info!(region = %config.region, addr = %args.api.listen, dir = %dir.display(), peers = args.peers.len(), "region up");
    tandem_api::server::serve(listener, app, tandem_api::server::shutdown_signal()).await?;
    tracing::info!(region = %config.region, "region stopped");
    Ok(())
}
