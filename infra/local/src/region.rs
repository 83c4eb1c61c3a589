//! `tandem region`: one local region process. It serves the very router the Lambda runs, on
//! the embedded store, plus the internal replication routes, and pulls its peers' writes.
//! In the strong mode (contract §10) it is a member of the consensus log instead: its router
//! runs on [`ConsensusStore`], and nothing is pulled; the witness is such a member without the
//! item API (`--witness` names it).

use crate::consensus::store::ConsensusStore;
use crate::consensus::{self, Handle};
use crate::replication::{self, Peer, ReplicationConfig, Replicator};
use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tandem_api::args::RegionArgs;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_shared::Consistency;

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
    /// Strong mode: every member of the consensus log, in the stack's order (regions, then the
    /// witness); each needs a `--peer` but this process.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
    /// Strong mode: the member that is the witness (this process is, when it is named here:
    /// it then serves no item API).
    #[arg(long)]
    pub witness: Option<String>,
    /// Strong mode: delay this member's consensus messages to REGION by MS (benchmarks).
    #[arg(long = "link-delay-ms")]
    pub link_delays: Vec<TargetDelay>,
    /// Strong mode: snapshot the log every this many entries.
    #[arg(long, default_value_t = consensus::DEFAULT_SNAPSHOT_EVERY, hide = true)]
    pub snapshot_every: u64,
}

/// `REGION=MS`: the delay of this member's messages to one other member.
#[derive(Debug, Clone)]
pub struct TargetDelay {
    pub region: String,
    pub delay: Duration,
}

impl std::str::FromStr for TargetDelay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (region, ms) = s.split_once('=').ok_or("expected REGION=MS")?;
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("{ms:?} is not milliseconds"))?;
        Ok(TargetDelay {
            region: region.to_owned(),
            delay: Duration::from_millis(ms),
        })
    }
}

pub async fn run(args: RegionProcessArgs) -> anyhow::Result<()> {
    tandem_api::args::init_tracing(false);
    tandem_api::store::set_clock_offset_ms(args.clock_offset_ms);
    // The mode is the API's flag (`--consistency`, contract §10): a member of the log in strong.
    match args.api.consistency {
        Consistency::Eventual => run_eventual(args).await,
        Consistency::Strong => run_member(args).await,
    }
}

/// Contract §5: the region serves its own store and pulls its peers' writes.
async fn run_eventual(args: RegionProcessArgs) -> anyhow::Result<()> {
    let config = args.api.config();
    let dir = args.api.data_dir();
    let store = open_store(&args, &dir, &config.region)?;
    let peers: Vec<String> = args.peers.iter().map(|p| p.name.clone()).collect();
    store.require_peers(&peers)?;
    let pulls = ReplicationConfig {
        paused: args.replication_paused,
        lag_ms: args.replication_lag_ms,
    };
    let replicator = replicator(&args, &store, pulls);
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

/// The region's database in `--data-dir`; created with the stack (`--new-stack`), it vouches
/// for its reads from the start.
fn open_store(args: &RegionProcessArgs, dir: &Path, region: &str) -> anyhow::Result<EmbeddedStore> {
    let store = EmbeddedStore::open_with(dir, region, args.cache_mib, tandem_api::store::now_ms)?;
    if args.new_stack {
        store.born_with_the_stack()?;
    }
    Ok(store)
}

/// The replication routes on `store`, signed with the stack's key; `config` says whether (and
/// with what lag) its pullers pull.
fn replicator(
    args: &RegionProcessArgs,
    store: &EmbeddedStore,
    config: ReplicationConfig,
) -> Replicator {
    let settings = replication::Settings {
        peers: args.peers.clone(),
        config,
        key: replication::wire::Key::new(&args.replication_key),
        tombstone_grace_ms: args.tombstone_grace_ms,
    };
    Replicator::new(store.clone(), settings)
}

/// What this process knows of the consensus log's members, from its flags.
fn member_settings(args: &RegionProcessArgs) -> anyhow::Result<consensus::Settings> {
    let region = &args.api.config().region;
    let me = args
        .members
        .iter()
        .position(|m| m == region)
        .with_context(|| format!("--members must name this region ({region})"))?;
    let mut members = Vec::new();
    for name in &args.members {
        let url = match args.peers.iter().find(|p| p.name == *name) {
            Some(p) => Some(p.url.clone()),
            None if name == region => None,
            None => bail!("--members names {name}, but no --peer gives its address"),
        };
        let witness = args.witness.as_deref() == Some(name.as_str());
        members.push(consensus::Peer {
            region: name.clone(),
            url,
            witness,
        });
    }
    let delays: BTreeMap<String, Duration> = args
        .link_delays
        .iter()
        .map(|d| (d.region.clone(), d.delay))
        .collect();
    Ok(consensus::Settings {
        members,
        me,
        delays,
        new_cluster: args.new_stack,
        snapshot_every: args.snapshot_every.max(1),
    })
}

/// Contract §10: a member of the consensus log. A region serves the API on [`ConsensusStore`];
/// the witness serves only the consensus and replication routes. The member joins the log
/// behind the listener, so the supervisor sees it prove itself at once, and requests answer
/// 503 until it has a node id.
async fn run_member(args: RegionProcessArgs) -> anyhow::Result<()> {
    let config = args.api.config();
    let dir = args.api.data_dir();
    let settings = Arc::new(member_settings(&args)?);
    let witness = settings.members[settings.me].witness;
    let log = consensus::members::open_log(&dir, &settings)?;
    let store = open_store(&args, &dir, &config.region)?;
    // Its routes only (proofs, state pages for `tandem verify`, status): nothing is pulled.
    let never_pulls = ReplicationConfig {
        paused: true,
        lag_ms: 0,
    };
    let replicator = replicator(&args, &store, never_pulls);
    let handle = Handle::default();
    let mut app = replicator.router().merge(consensus::routes::router(
        &replicator,
        handle.clone(),
        settings.clone(),
    ));
    if !witness {
        let items = ConsensusStore::new(store.clone(), handle.clone());
        app = app.merge(tandem_api::router(items, config.clone()));
    }
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .with_context(|| format!("binding {}", args.api.listen))?;
    let client = replicator.client();
    tokio::spawn(async move {
        if let Err(err) = consensus::members::start(settings, log, store, client, handle).await {
            // Exits, so the supervisor restarts it and reports how it ended.
            tracing::error!(error = %format!("{err:#}"), "the member could not start its consensus log");
            std::process::exit(1);
        }
    });
    tracing::info!(region = %config.region, witness, addr = %args.api.listen, dir = %dir.display(), "member up (strong mode)");
    tandem_api::server::serve(listener, app, tandem_api::server::shutdown_signal()).await?;
    tracing::info!(region = %config.region, "member stopped");
    Ok(())
}
