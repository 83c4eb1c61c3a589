//! `tandem region`: one local region process. It serves the very router the Lambda runs, on
//! the embedded store, plus the internal replication routes, and pulls its peers' writes.

use crate::replication::{self, Peer, ReplicationConfig, Replicator};
use anyhow::Context as _;
use tandem_api::args::RegionArgs;
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
    /// The HMAC key peers sign replication requests and answers with (never sent).
    #[arg(long, env = "TANDEM_REPLICATION_KEY", hide_env_values = true)]
    pub replication_key: String,
    /// How long a tombstone is kept once every peer has it, in milliseconds.
    #[arg(long, default_value_t = replication::DEFAULT_TOMBSTONE_GRACE_MS)]
    pub tombstone_grace_ms: u64,
    /// This region's data is created with the whole stack's (`tandem up` on a data directory
    /// that holds no region yet): it vouches for its reads from the start (contract §5.4).
    #[arg(long, hide = true)]
    pub new_stack: bool,
    /// The most memory the region's database keeps as its page cache, in MiB: the bound of
    /// what grows with the data.
    #[arg(long, default_value_t = tandem_api::store::embedded::DEFAULT_CACHE_MIB)]
    pub cache_mib: usize,
    /// Run this region with its clock skewed by this many milliseconds (tests, chaos).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, hide = true)]
    pub clock_offset_ms: i64,
}

pub async fn run(args: RegionProcessArgs) -> anyhow::Result<()> {
    tandem_api::args::init_tracing(false);
    tandem_api::store::set_clock_offset_ms(args.clock_offset_ms);
    let config = args.api.config();
    let dir = args.api.data_dir();
    let store = EmbeddedStore::open_with(
        &dir,
        &config.region,
        args.cache_mib,
        tandem_api::store::now_ms,
    )?;
    if args.new_stack {
        store.born_with_the_stack()?;
    }
    let peers: Vec<String> = args.peers.iter().map(|p| p.name.clone()).collect();
    store.require_peers(&peers)?;
    let replicator = Replicator::new(
        store.clone(),
        replication::Settings {
            peers: args.peers.clone(),
            config: ReplicationConfig {
                paused: args.replication_paused,
                lag_ms: args.replication_lag_ms,
            },
            key: replication::wire::Key::new(&args.replication_key),
            tombstone_grace_ms: args.tombstone_grace_ms,
        },
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
