//! `tandem up`: the local two-region stack. The [`Supervisor`] starts one OS process per region
//! and restarts those that exit on their own; `up` serves the edge and the control API beside
//! it, and on Ctrl-C or SIGTERM stops the edge and every region at once.

use crate::active::Active;
use crate::consensus::LinkDelay;
use crate::control;
use crate::edge::{self, Edge, Origin};
use crate::replication::ReplicationConfig;
use crate::supervisor::Strong;
use crate::watcher;
use anyhow::{Context as _, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tandem_ops::watcher::WatchArgs;
use tandem_shared::Consistency;
use tandem_shared::control::EdgeSettings;

/// Flags of `tandem up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Edge port; region N (from 1) listens on port + N.
    #[arg(long, default_value_t = tandem_ops::ports::DEFAULT_EDGE_PORT)]
    pub port: u16,
    /// Where the regions keep their data (one directory per region).
    #[arg(long, default_value = ".tandem")]
    pub data_dir: PathBuf,
    /// Regions, primary first.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,us-west-2")]
    pub regions: Vec<String>,
    /// The built console [default: frontend/dist when it exists]. A directory given here
    /// that has no index.html yet gets a "console is building" page until it has one.
    #[arg(long)]
    pub console_dir: Option<PathBuf>,
    /// A text file the "console is building" page shows (`cargo xtask dev` writes its build
    /// steps there).
    #[arg(long, requires = "console_dir")]
    pub console_progress: Option<PathBuf>,
    /// Admin token for the admin and control routes [default: generated].
    #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Secret the edge adds as `x-origin-verify` [default: generated].
    #[arg(long, env = "TANDEM_ORIGIN_SECRET", hide_env_values = true)]
    pub origin_secret: Option<String>,
    /// Hold each replicated write back until it is this old.
    #[arg(long, default_value_t = 0)]
    pub replication_lag_ms: u64,
    /// Key the regions sign replication with [default: generated; never sent over the wire].
    #[arg(long, env = "TANDEM_REPLICATION_KEY", hide_env_values = true)]
    pub replication_key: Option<String>,
    /// The most memory each region's database keeps as its page cache, in MiB (redb's own
    /// default is 1 GiB per database).
    #[arg(long, default_value_t = tandem_api::store::embedded::DEFAULT_CACHE_MIB)]
    pub cache_mib: usize,
    /// How long a tombstone is kept once every peer has it, in milliseconds.
    #[arg(long, default_value_t = crate::replication::DEFAULT_TOMBSTONE_GRACE_MS)]
    pub tombstone_grace_ms: u64,
    #[command(flatten)]
    pub edge: EdgeSettings,
    /// Run the health watcher in the stack: switch the active region away from a region that
    /// fails its health probes (the watcher's flags below).
    #[arg(long)]
    pub auto_failover: bool,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// eventual: global tables (contract §5). strong: a write is acknowledged once a majority
    /// of three members (the two regions and a witness) holds it, reads are linearizable in
    /// either region, and a region cut off from the majority answers 503 (contract §10).
    #[arg(long, value_enum, default_value_t = Consistency::Eventual)]
    pub consistency: Consistency,
    /// Strong mode: the witness's region; it listens after the regions (port + 3).
    #[arg(long, default_value = "us-east-2")]
    pub witness: String,
    /// Strong mode: delay the consensus messages between two members, both ways, e.g.
    /// `us-east-1/us-west-2=65,us-east-1/us-east-2=12` (benchmarks).
    #[arg(long = "link-delay-ms", value_delimiter = ',')]
    pub link_delays: Vec<LinkDelay>,
    /// Strong mode: snapshot the consensus log every this many entries.
    #[arg(long, default_value_t = crate::consensus::DEFAULT_SNAPSHOT_EVERY, hide = true)]
    pub snapshot_every: u64,
}

impl UpArgs {
    /// The strong mode's part of the stack, when it is asked for.
    fn strong(&self) -> Option<Strong> {
        (self.consistency == Consistency::Strong).then(|| Strong {
            witness: self.witness.clone(),
            delays: self.link_delays.clone(),
            snapshot_every: self.snapshot_every,
        })
    }

    /// Processes the stack runs: the regions, and the witness in the strong mode.
    fn processes(&self) -> usize {
        self.regions.len() + usize::from(self.consistency == Consistency::Strong)
    }
}

pub use crate::supervisor::{StackSecrets, Supervisor, random_token};

/// The ports of `regions` regions after the edge's `port` (port + 1, port + 2, …), if they fit.
pub fn region_ports(port: u16, regions: usize) -> anyhow::Result<Vec<u16>> {
    (1..=regions)
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| port.checked_add(i))
                .with_context(|| {
                    format!("--port {port}: region {i} would listen on port {}, past 65535; pick a lower --port", port as usize + i)
                })
        })
        .collect()
}

/// Runs the stack until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    tandem_api::args::init_tracing(false);
    tandem_api::server::raise_open_file_limit();
    check(&args)?;
    let secrets = secrets(&args);
    let admin_token = secrets.admin_token.clone();
    let origin_secret = secrets.origin_secret.clone();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let exe = std::env::current_exe().context("finding the tandem binary")?;
    let replication = ReplicationConfig {
        paused: false,
        lag_ms: args.replication_lag_ms,
    };
    let mut supervisor = Supervisor::new(
        exe,
        args.data_dir.clone(),
        &args.regions,
        args.port,
        secrets,
        replication,
        args.strong(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding the edge to 127.0.0.1:{}", args.port))?;
    let failed = match supervisor.start_all().await {
        Ok(failed) => failed,
        Err(err) => {
            supervisor.shutdown().await;
            return Err(err);
        }
    };
    let key = supervisor.key().clone();
    let active = Arc::new(Active::load(&args.data_dir, &args.regions)?);
    let origins = supervisor
        .addresses()
        .into_iter()
        .map(|(name, addr)| Origin::new(&name, addr))
        .collect();
    let edge = Arc::new(
        Edge::new(origins, args.edge, Some(origin_secret), active.clone()).proving(key.clone()),
    );
    let console_dir = args.console_dir.clone().or_else(|| {
        let dist = PathBuf::from("frontend/dist");
        dist.join("index.html").is_file().then_some(dist)
    });
    let addresses = supervisor.addresses();
    let supervisor = Arc::new(tokio::sync::Mutex::new(supervisor));
    let control = control::router(
        supervisor.clone(),
        admin_token.clone(),
        args.edge,
        active.clone(),
        key,
    );
    let console = console_dir.clone().map(|dir| edge::ConsoleFiles {
        dir,
        progress: args.console_progress.clone(),
    });
    let app = edge::router(edge, control, console);
    let watcher = args.auto_failover.then(|| {
        let edge = format!("http://127.0.0.1:{}", args.port);
        let run = watcher::run(edge, args.regions.clone(), active.clone(), args.watch);
        tokio::spawn(run)
    });
    let restarts = tokio::spawn(crate::supervisor::watch(supervisor.clone()));
    print_banner(
        &args,
        &admin_token,
        &addresses,
        &failed,
        console_dir.as_deref(),
    );

    // One signal stops the edge and the regions together: each drains at most its own
    // drain time, all at once, not one after another.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tandem_api::server::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let edge_limits = tandem_api::server::Limits {
        reserved: edge::RESERVED,
        ..Default::default()
    };
    let regions_stopped = {
        let (supervisor, stopping) = (supervisor.clone(), stopping.clone());
        async move {
            stopped(stopping).await;
            restarts.abort();
            if let Some(watcher) = watcher {
                watcher.abort();
            }
            supervisor.lock().await.shutdown().await;
        }
    };
    let (served, ()) = tokio::join!(
        tandem_api::server::serve_with(listener, app, stopped(stopping), edge_limits),
        regions_stopped
    );
    println!("Tandem stopped.");
    served.map_err(Into::into)
}

/// Refuses flags that cannot make a stack: fewer than two regions, a bad name, no ports left.
fn check(args: &UpArgs) -> anyhow::Result<()> {
    if args.regions.len() < 2 {
        bail!("--regions needs at least two regions (primary first)");
    }
    for r in &args.regions {
        if !tandem_shared::region::is_valid_region(r) {
            bail!("{r:?} is not a region name like us-east-1");
        }
    }
    if args.watch.auto_failback && !args.auto_failover {
        bail!("--auto-failback needs --auto-failover");
    }
    check_mode(args)?;
    region_ports(args.port, args.processes()).map(drop)
}

/// The strong mode needs two regions and a witness apart from them, and a data directory made
/// in the mode it is started in: a log formed over stores that diverged under last writer wins
/// would keep them apart, and a strong stack's stores would miss their log in eventual mode.
fn check_mode(args: &UpArgs) -> anyhow::Result<()> {
    let logs = args.regions.iter().chain([&args.witness]).any(|r| {
        let dir = args.data_dir.join(r);
        dir.join(crate::consensus::log::LOG_FILE).is_file()
    });
    let stores = args.regions.iter().any(|r| {
        args.data_dir
            .join(r)
            .join(tandem_api::store::embedded::DB_FILE)
            .is_file()
    });
    match args.consistency {
        Consistency::Eventual if logs => bail!(
            "{} was made by a strong stack (it holds consensus logs): start it with --consistency strong",
            args.data_dir.display()
        ),
        Consistency::Eventual => return Ok(()),
        Consistency::Strong if stores && !logs => bail!(
            "{} was made by an eventual stack: the strong mode needs a new --data-dir",
            args.data_dir.display()
        ),
        Consistency::Strong => {}
    }
    if args.regions.len() != 2 {
        bail!("--consistency strong runs two regions and a witness: give two --regions");
    }
    if !tandem_shared::region::is_valid_region(&args.witness)
        || args.regions.contains(&args.witness)
    {
        bail!(
            "--witness {:?} must be a region name other than the stack's regions",
            args.witness
        );
    }
    if !args.link_delays.iter().all(|d| {
        d.between
            .iter()
            .all(|r| *r == args.witness || args.regions.contains(r))
    }) {
        bail!("--link-delay-ms names a region that is not a member of the stack");
    }
    Ok(())
}

/// The stack's secrets: the flags, or fresh random ones.
fn secrets(args: &UpArgs) -> StackSecrets {
    let given_or_new = |v: &Option<String>| {
        v.clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(random_token)
    };
    StackSecrets {
        admin_token: given_or_new(&args.admin_token),
        origin_secret: given_or_new(&args.origin_secret),
        replication_key: given_or_new(&args.replication_key),
        tombstone_grace_ms: args.tombstone_grace_ms,
        cache_mib: args.cache_mib,
    }
}

/// What a user needs to start: the console URL (with the token), the regions, the files.
fn print_banner(
    args: &UpArgs,
    admin_token: &str,
    addresses: &[(String, SocketAddr)],
    failed: &[String],
    console_dir: Option<&std::path::Path>,
) {
    println!("Tandem is up.");
    println!(
        "  console:  http://127.0.0.1:{}/#token={admin_token}",
        args.port
    );
    for (i, (name, addr)) in addresses.iter().enumerate() {
        let primary = if i == 0 { " (primary)" } else { "" };
        println!("  {name}: http://{addr}{primary}");
    }
    for err in failed {
        println!(
            "  NOT STARTED: {err} (the other regions run; PUT /_tandem/regions/<r> {{\"state\":\"up\"}} retries)"
        );
    }
    println!("  data:     {}", args.data_dir.display());
    match console_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            println!("  console files: {}", dir.display())
        }
        Some(dir) => println!(
            "  console files: {} (not built yet: a page that reloads itself until they are)",
            dir.display()
        ),
        None => println!("  console files: not built (cargo xtask dev builds them)"),
    }
    println!(
        "  edge: {} connection attempt(s) x {} s, read timeout {} s. Ctrl-C stops everything.",
        args.edge.connection_attempts, args.edge.connection_timeout, args.edge.origin_read_timeout
    );
    if args.consistency == Consistency::Strong {
        println!(
            "  consistency: strong (a majority of {}, {} and the witness {} on :{} holds each write)",
            args.regions[0],
            args.regions[1],
            args.witness,
            u32::from(args.port) + 1 + args.regions.len() as u32
        );
    }
    if args.auto_failover {
        println!(
            "  auto-failover: after {} failed health probes, {} ms apart (~{:?}); failback {}",
            args.watch.failover_after,
            args.watch.probe_interval_ms,
            args.watch.window(),
            if args.watch.auto_failback {
                format!("after {} healthy probes", args.watch.failback_after)
            } else {
                "when asked (tandem failback)".to_owned()
            }
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn region_ports_follow_the_edge_and_never_overflow() {
        assert_eq!(super::region_ports(8080, 2).unwrap(), vec![8081, 8082]);
        assert_eq!(super::region_ports(65533, 2).unwrap(), vec![65534, 65535]);
        let err = super::region_ports(65535, 2).unwrap_err().to_string();
        assert!(err.contains("past 65535"), "{err}");
    }
}
