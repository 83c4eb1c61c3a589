//! `tandem up`: the local two-region stack. A supervisor starts one OS process per region,
//! serves the edge and the control API, and stops everything on Ctrl-C or SIGTERM.
//!
//! Region states are real process states: `crashed` is SIGKILL, `stopped` is a clean exit (the
//! port then refuses connections), and `blackhole` is SIGSTOP: the kernel still completes TCP
//! handshakes on the listening socket, but nothing ever answers. `up` restarts or resumes.

use crate::active::Active;
use crate::control;
use crate::edge::{self, Edge, Origin};
use crate::replication::ReplicationConfig;
use crate::watcher::{self, WatchArgs};
use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tandem_shared::control::{EdgeSettings, RegionState, RegionStatus};
use tokio::process::{Child, Command};

/// Flags of `tandem up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Edge port; region N (from 1) listens on port + N.
    #[arg(long, default_value_t = crate::ports::DEFAULT_EDGE_PORT)]
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
}

struct RegionProc {
    name: String,
    port: u16,
    state: RegionState,
    child: Option<Child>,
    /// Why the region's last start failed, until it starts.
    error: Option<String>,
}

/// The region processes and what is needed to start them again.
pub struct Supervisor {
    exe: PathBuf,
    data_dir: PathBuf,
    admin_token: String,
    origin_secret: String,
    replication_key: String,
    tombstone_grace_ms: u64,
    pub replication: ReplicationConfig,
    regions: Vec<RegionProc>,
}

/// The secrets and settings every region process of a stack gets.
pub struct StackSecrets {
    pub admin_token: String,
    pub origin_secret: String,
    pub replication_key: String,
    pub tombstone_grace_ms: u64,
}

/// A random token of 256 bits, hex.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn signal(child: &Child, sig: Signal) {
    // Our own child, not reaped yet (`id()` is None once it is): the pid is still its own.
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

impl Supervisor {
    pub fn new(
        exe: PathBuf,
        data_dir: PathBuf,
        regions: &[String],
        base_port: u16,
        secrets: StackSecrets,
        replication: ReplicationConfig,
    ) -> Self {
        let regions = regions
            .iter()
            .enumerate()
            .map(|(i, name)| RegionProc {
                name: name.clone(),
                // `run` has checked with `region_ports` that these fit.
                port: base_port.saturating_add(1 + i as u16),
                state: RegionState::Stopped,
                child: None,
                error: None,
            })
            .collect();
        Supervisor {
            exe,
            data_dir,
            admin_token: secrets.admin_token,
            origin_secret: secrets.origin_secret,
            replication_key: secrets.replication_key,
            tombstone_grace_ms: secrets.tombstone_grace_ms,
            replication,
            regions,
        }
    }

    /// Region names and addresses, primary first.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        self.regions
            .iter()
            .map(|r| (r.name.clone(), SocketAddr::from(([127, 0, 0, 1], r.port))))
            .collect()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name == name)
    }

    /// Starts region `i`; a failure is recorded (state crashed, with the reason) and returned.
    async fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let started = self.start_process(i).await;
        let r = &mut self.regions[i];
        match &started {
            Ok(()) => r.error = None,
            Err(err) => {
                r.state = RegionState::Crashed;
                r.error = Some(format!("{err:#}"));
            }
        }
        started
    }

    async fn start_process(&mut self, i: usize) -> anyhow::Result<()> {
        let peers: Vec<String> = self
            .regions
            .iter()
            .filter(|p| p.name != self.regions[i].name)
            .map(|p| format!("{}=http://127.0.0.1:{}", p.name, p.port))
            .collect();
        let r = &self.regions[i];
        let mut cmd = Command::new(&self.exe);
        cmd.arg("region")
            .args([
                "--region",
                &r.name,
                "--listen",
                &format!("127.0.0.1:{}", r.port),
            ])
            .arg("--data-dir")
            .arg(self.data_dir.join(&r.name))
            .args(["--replication-lag-ms", &self.replication.lag_ms.to_string()])
            .args(["--tombstone-grace-ms", &self.tombstone_grace_ms.to_string()])
            .env("TANDEM_ADMIN_TOKEN", &self.admin_token)
            .env("TANDEM_ORIGIN_SECRET", &self.origin_secret)
            .env("TANDEM_REPLICATION_KEY", &self.replication_key)
            .kill_on_drop(true);
        for peer in peers {
            cmd.args(["--peer", &peer]);
        }
        if self.replication.paused {
            cmd.arg("--replication-paused");
        }
        // SAFETY: prctl in the child between fork and exec, async-signal-safe. If the
        // supervisor dies (even by SIGKILL), its regions die with it: no orphans.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting region {}", r.name))?;
        let port = r.port;
        self.regions[i].child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                self.regions[i].state = RegionState::Up;
                return Ok(());
            }
            if let Some(status) = self.regions[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.regions[i].child = None;
                bail!(
                    "region {} exited during start ({status})",
                    self.regions[i].name
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "region {} did not listen on {port} within 10 s",
            self.regions[i].name
        )
    }

    /// Starts every region. One that fails is reported and left down while the others run
    /// (the control API shows why); only when none starts is it an error.
    pub async fn start_all(&mut self) -> anyhow::Result<Vec<String>> {
        let mut failed = Vec::new();
        for i in 0..self.regions.len() {
            if let Err(err) = self.spawn(i).await {
                tracing::error!(region = %self.regions[i].name, error = %format!("{err:#}"), "region did not start");
                failed.push(format!("{err:#}"));
            }
        }
        if failed.len() == self.regions.len() {
            bail!("no region started: {}", failed.join("; "));
        }
        Ok(failed)
    }

    async fn stop_child(child: &mut Child, graceful: bool) {
        signal(child, Signal::SIGCONT);
        if graceful {
            signal(child, Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }

    /// Moves a region to `state`; returns its new status.
    pub async fn set_state(
        &mut self,
        name: &str,
        state: RegionState,
    ) -> anyhow::Result<RegionStatus> {
        let i = self
            .index(name)
            .with_context(|| format!("no region {name:?}"))?;
        let exited = self.regions[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited {
            self.regions[i].child = None;
        }
        match state {
            RegionState::Up | RegionState::Blackhole => {
                match self.regions[i].child.as_ref() {
                    Some(child) => signal(child, Signal::SIGCONT),
                    None => self.spawn(i).await?,
                }
                if state == RegionState::Blackhole
                    && let Some(child) = self.regions[i].child.as_ref()
                {
                    signal(child, Signal::SIGSTOP);
                }
            }
            RegionState::Stopped | RegionState::Crashed => {
                if let Some(mut child) = self.regions[i].child.take() {
                    Self::stop_child(&mut child, state == RegionState::Stopped).await;
                }
            }
        }
        self.regions[i].state = state;
        tracing::warn!(region = name, ?state, "region state changed");
        Ok(self.status_of(i))
    }

    fn status_of(&self, i: usize) -> RegionStatus {
        let r = &self.regions[i];
        RegionStatus {
            region: r.name.clone(),
            state: r.state,
            primary: i == 0,
            url: format!("http://127.0.0.1:{}", r.port),
            pid: r.child.as_ref().and_then(|c| c.id()),
            error: r.error.clone(),
        }
    }

    /// Every region's status; a process that died on its own shows as crashed.
    pub fn status(&mut self) -> Vec<RegionStatus> {
        for r in &mut self.regions {
            if r.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                r.child = None;
                r.state = RegionState::Crashed;
            }
        }
        (0..self.regions.len()).map(|i| self.status_of(i)).collect()
    }

    /// Base URLs of the regions whose processes run and answer (not blackholed).
    pub fn answering(&self) -> Vec<(String, String)> {
        self.regions
            .iter()
            .filter(|r| r.child.is_some() && r.state == RegionState::Up)
            .map(|r| (r.name.clone(), format!("http://127.0.0.1:{}", r.port)))
            .collect()
    }

    pub fn origin_secret(&self) -> &str {
        &self.origin_secret
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn replication_key(&self) -> &str {
        &self.replication_key
    }

    /// Stops every region cleanly (SIGTERM, then SIGKILL after 5 s).
    pub async fn shutdown(&mut self) {
        for r in &mut self.regions {
            if let Some(mut child) = r.child.take() {
                Self::stop_child(&mut child, true).await;
            }
        }
    }
}

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
    tandem_api::cli::init_tracing(false);
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
    let active = Arc::new(Active::load(&args.data_dir, &args.regions)?);
    let origins = supervisor
        .addresses()
        .into_iter()
        .map(|(name, addr)| Origin::new(&name, addr))
        .collect();
    let edge = Arc::new(Edge::new(
        origins,
        args.edge,
        Some(origin_secret),
        active.clone(),
    ));
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
    print_banner(
        &args,
        &admin_token,
        &addresses,
        &failed,
        console_dir.as_deref(),
    );

    let served =
        tandem_api::server::serve(listener, app, tandem_api::server::shutdown_signal()).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    supervisor.lock().await.shutdown().await;
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
    region_ports(args.port, args.regions.len()).map(drop)
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
