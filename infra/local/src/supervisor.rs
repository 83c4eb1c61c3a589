//! The supervisor of `tandem up`: one OS process per region, each started, proven, watched,
//! restarted and stopped from here.
//!
//! Region states are real process states: `crashed` is SIGKILL, `stopped` is a clean exit (the
//! port then refuses connections), and `blackhole` is SIGSTOP: the kernel still completes TCP
//! handshakes on the listening socket, but nothing ever answers. Those are what the operator
//! asks for, and they hold until the operator asks for another.
//!
//! A region that exits when nobody asked (the OOM killer, an abort, a kill from outside) is
//! restarted, after a back-off that doubles with each exit in the last minute; three such exits
//! in a minute make its state `crashing` until it has run a minute without one. Restarts and the
//! last exit's cause are in its status, so a crash loop is never hidden.
//!
//! A region is `up` only once the process on its port has proven it holds the stack's
//! replication key ([`crate::replication::client::prove`]): a process that took the port while
//! the region was down is never called up, and is told nothing.

use crate::replication::ReplicationConfig;
use crate::replication::wire::Key;
use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_ops::launch::region_args;
pub use tandem_ops::random_token;
use tandem_shared::control::{RegionState, RegionStatus};
use tokio::process::{Child, Command};

/// Exits within this window count towards a crash loop, and towards the back-off.
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// This many exits nobody asked for within [`CRASH_WINDOW`] make a region `crashing`.
pub const CRASH_LOOP_EXITS: usize = 3;
/// The first restart's wait; each further exit in the window doubles it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a starting region may take to prove itself on its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping takes at most: every region at once gets SIGTERM and this long to drain
/// (its own drain is [`tandem_api::server::Limits::drain`]), then SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_millis(3_500);

struct RegionProc {
    name: String,
    port: u16,
    /// The strong mode's witness: a member of the consensus log, no origin of the edge.
    witness: bool,
    /// The state the operator asked for (the stack starts every region `up`).
    wanted: RegionState,
    child: Option<Child>,
    /// Why the last start failed, until a start succeeds.
    error: Option<String>,
    /// Restarts after exits nobody asked for.
    restarts: u64,
    /// How the last such exit ended.
    last_exit: Option<String>,
    /// When those exits happened, within [`CRASH_WINDOW`].
    exits: VecDeque<Instant>,
    /// When the next restart is due.
    restart_at: Option<Instant>,
}

impl RegionProc {
    fn new(name: &str, port: u16) -> RegionProc {
        RegionProc {
            name: name.to_owned(),
            port,
            witness: false,
            wanted: RegionState::Up,
            child: None,
            error: None,
            restarts: 0,
            last_exit: None,
            exits: VecDeque::new(),
            restart_at: None,
        }
    }

    fn runs_when_wanted(&self) -> bool {
        matches!(self.wanted, RegionState::Up | RegionState::Blackhole)
    }

    /// Exits in the window as of `now` (older ones forgotten).
    fn recent_exits(&mut self, now: Instant) -> usize {
        while self
            .exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.exits.pop_front();
        }
        self.exits.len()
    }

    /// Counts an exit nobody asked for at `now`, and schedules the restart.
    fn exited(&mut self, now: Instant, how: String) {
        tracing::error!(region = %self.name, exit = %how, "region exited on its own; restarting it");
        self.last_exit = Some(how);
        self.exits.push_back(now);
        let n = self.recent_exits(now).max(1) as u32;
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_BACKOFF);
        self.restart_at = Some(now + backoff);
    }
}

/// How a process ended, in words.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => status.to_string(),
    }
}

/// The region processes and what is needed to start them again.
pub struct Supervisor {
    exe: PathBuf,
    data_dir: PathBuf,
    admin_token: String,
    origin_secret: String,
    replication_key: String,
    key: Key,
    tombstone_grace_ms: u64,
    cache_mib: usize,
    pub replication: ReplicationConfig,
    regions: Vec<RegionProc>,
    /// For proofs: nothing secret is ever sent with it.
    http: reqwest::Client,
    /// Set once the stack is stopping: exits then are expected.
    stopping: bool,
    /// Whether no region had a database when the stack started: the first start of each region then
    /// says so (`--new-stack`), and it vouches for its reads at once (contract §5.4).
    new_stack: bool,
    /// The strong mode's members and settings (`None`: eventual, as before).
    strong: Option<Strong>,
}

/// What the strong mode adds to a stack (contract §10): a witness, injected link delays, and
/// how often the log is snapshotted.
#[derive(Debug, Clone)]
pub struct Strong {
    pub witness: String,
    pub delays: Vec<crate::consensus::LinkDelay>,
    pub snapshot_every: u64,
}

/// The secrets and settings every region process of a stack gets.
pub struct StackSecrets {
    pub admin_token: String,
    pub origin_secret: String,
    pub replication_key: String,
    pub tombstone_grace_ms: u64,
    /// Each region's page cache, in MiB.
    pub cache_mib: usize,
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
        strong: Option<Strong>,
    ) -> Self {
        let db = tandem_api::store::embedded::DB_FILE;
        let mut regions: Vec<RegionProc> = regions
            .iter()
            .enumerate()
            // `run` has checked with `region_ports` that these ports fit.
            .map(|(i, name)| RegionProc::new(name, base_port.saturating_add(1 + i as u16)))
            .collect();
        // The witness listens after the regions, and is supervised like them.
        if let Some(strong) = &strong {
            let port = base_port.saturating_add(1 + regions.len() as u16);
            let mut witness = RegionProc::new(&strong.witness, port);
            witness.witness = true;
            regions.push(witness);
        }
        let new_stack = regions
            .iter()
            .all(|r| !data_dir.join(&r.name).join(db).is_file());
        Supervisor {
            exe,
            data_dir,
            admin_token: secrets.admin_token,
            origin_secret: secrets.origin_secret,
            key: Key::new(&secrets.replication_key),
            replication_key: secrets.replication_key,
            tombstone_grace_ms: secrets.tombstone_grace_ms,
            cache_mib: secrets.cache_mib,
            replication,
            regions,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .expect("reqwest client"),
            stopping: false,
            new_stack,
            strong,
        }
    }

    /// The stack's consistency mode.
    pub fn consistency(&self) -> tandem_shared::Consistency {
        match self.strong {
            Some(_) => tandem_shared::Consistency::Strong,
            None => tandem_shared::Consistency::Eventual,
        }
    }

    /// Region names and addresses, primary first: the edge's origins (never the witness).
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        self.regions
            .iter()
            .filter(|r| !r.witness)
            .map(|r| (r.name.clone(), SocketAddr::from(([127, 0, 0, 1], r.port))))
            .collect()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name == name)
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.regions[i].port)
    }

    /// Starts region `i` and waits until it has proven itself; a failure is recorded and
    /// returned.
    async fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let started = self.start_process(i).await;
        let r = &mut self.regions[i];
        r.error = started.as_ref().err().map(|e| format!("{e:#}"));
        started
    }

    fn command(&self, i: usize) -> Command {
        let r = &self.regions[i];
        let mut cmd = Command::new(&self.exe);
        cmd.arg("region")
            .args(region_args(&r.name, r.port, &self.data_dir.join(&r.name)))
            .args(["--replication-lag-ms", &self.replication.lag_ms.to_string()])
            .args(["--tombstone-grace-ms", &self.tombstone_grace_ms.to_string()])
            .args(["--cache-mib", &self.cache_mib.to_string()])
            .env("TANDEM_ADMIN_TOKEN", &self.admin_token)
            .env("TANDEM_ORIGIN_SECRET", &self.origin_secret)
            .env("TANDEM_REPLICATION_KEY", &self.replication_key)
            .kill_on_drop(true);
        for peer in self.regions.iter().filter(|p| p.name != r.name) {
            cmd.args([
                "--peer",
                &format!("{}=http://127.0.0.1:{}", peer.name, peer.port),
            ]);
        }
        if self.replication.paused {
            cmd.arg("--replication-paused");
        }
        if self.new_stack {
            cmd.arg("--new-stack");
        }
        if let Some(strong) = &self.strong {
            self.strong_args(&mut cmd, r, strong);
        }
        // SAFETY: prctl in the child between fork and exec, async-signal-safe. If the
        // supervisor dies (even by SIGKILL), its regions die with it: no orphans.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        cmd
    }

    /// The strong mode's flags of one member: every member in order (the witness last), and the
    /// delays of its links.
    fn strong_args(&self, cmd: &mut Command, r: &RegionProc, strong: &Strong) {
        let members: Vec<&str> = self.regions.iter().map(|p| p.name.as_str()).collect();
        cmd.args(["--consistency", "strong"])
            .args(["--members", &members.join(",")])
            .args(["--witness", &strong.witness])
            .args(["--snapshot-every", &strong.snapshot_every.to_string()]);
        for d in &strong.delays {
            if let Some(other) = d.from(&r.name) {
                cmd.args(["--link-delay-ms", &format!("{other}={}", d.ms)]);
            }
        }
    }

    async fn start_process(&mut self, i: usize) -> anyhow::Result<()> {
        let name = self.regions[i].name.clone();
        let child = self
            .command(i)
            .spawn()
            .with_context(|| format!("starting region {name}"))?;
        self.regions[i].child = Some(child);
        let url = self.url(i);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if crate::replication::client::prove(&self.http, &self.key, &name, &url).await {
                return Ok(());
            }
            if let Some(status) = self.regions[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.regions[i].child = None;
                bail!(
                    "region {name} exited during start ({}){}",
                    describe_exit(status),
                    self.squatter_note(i).await
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if let Some(mut child) = self.regions[i].child.take() {
            let _ = child.kill().await;
        }
        bail!(
            "region {name} did not prove itself on port {} within {START_TIMEOUT:?}{}",
            self.regions[i].port,
            self.squatter_note(i).await
        )
    }

    /// When another process holds region `i`'s port, says so.
    async fn squatter_note(&self, i: usize) -> String {
        let port = self.regions[i].port;
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => format!(
                "; another process holds port {port} and cannot prove it is {} (it has no \
                 replication key): nothing was sent to it",
                self.regions[i].name
            ),
            Err(_) => String::new(),
        }
    }

    /// Starts every region. One that fails is reported and left down while the others run
    /// (the control API shows why); only when none starts is it an error.
    pub async fn start_all(&mut self) -> anyhow::Result<Vec<String>> {
        let mut failed = Vec::new();
        for i in 0..self.regions.len() {
            if let Err(err) = self.spawn(i).await {
                let why = format!("{err:#}");
                tracing::error!(region = %self.regions[i].name, error = %why, "region did not start");
                // Tried again with the usual back-off: a port freed or a disk mounted later
                // brings it up without anyone asking.
                self.regions[i].exited(Instant::now(), why.clone());
                failed.push(why);
            }
        }
        // Later starts (restarts, a region brought back up) find the others' data.
        self.new_stack = false;
        if failed.len() == self.regions.len() {
            bail!("no region started: {}", failed.join("; "));
        }
        Ok(failed)
    }

    /// Notices regions that exited on their own and schedules their restarts.
    fn reap(&mut self) {
        let now = Instant::now();
        for r in &mut self.regions {
            let Some(status) = r.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) else {
                continue;
            };
            r.child = None;
            if r.runs_when_wanted() && !self.stopping {
                r.exited(now, describe_exit(status));
            }
        }
    }

    /// Restarts the regions whose back-off is over.
    async fn restart_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.regions.len() {
            let r = &mut self.regions[i];
            let due = r.restart_at.is_some_and(|t| t <= now);
            if !due || r.child.is_some() || !r.runs_when_wanted() || self.stopping {
                continue;
            }
            r.restart_at = None;
            r.restarts += 1;
            match self.spawn(i).await {
                Ok(()) => self.apply_wanted(i),
                Err(err) => self.regions[i].exited(Instant::now(), format!("{err:#}")),
            }
        }
    }

    /// SIGSTOPs a restarted region that the operator had blackholed.
    fn apply_wanted(&self, i: usize) {
        let r = &self.regions[i];
        if r.wanted == RegionState::Blackhole
            && let Some(child) = &r.child
        {
            signal(child, Signal::SIGSTOP);
        }
    }

    /// When the next restart is due, if one is.
    fn next_restart(&self) -> Option<Instant> {
        self.regions.iter().filter_map(|r| r.restart_at).min()
    }

    async fn stop_child(child: &mut Child, graceful: bool) {
        signal(child, Signal::SIGCONT);
        if graceful {
            signal(child, Signal::SIGTERM);
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }

    /// Moves a region to `state`, which holds until the operator asks for another; returns its
    /// new status.
    pub async fn set_state(
        &mut self,
        name: &str,
        state: RegionState,
    ) -> anyhow::Result<RegionStatus> {
        let i = self
            .index(name)
            .with_context(|| format!("no region {name:?}"))?;
        self.reap();
        self.regions[i].wanted = state;
        self.regions[i].restart_at = None;
        match state {
            RegionState::Up | RegionState::Blackhole => {
                match self.regions[i].child.as_ref() {
                    Some(child) => signal(child, Signal::SIGCONT),
                    None => {
                        if let Err(err) = self.spawn(i).await {
                            // Wanted up: tried again with the usual back-off.
                            self.regions[i].exited(Instant::now(), format!("{err:#}"));
                            return Err(err);
                        }
                    }
                }
                self.apply_wanted(i);
            }
            RegionState::Stopped | RegionState::Crashed => {
                if let Some(mut child) = self.regions[i].child.take() {
                    Self::stop_child(&mut child, state == RegionState::Stopped).await;
                }
            }
            RegionState::Crashing => {
                bail!("crashing is a state a region falls into, not one to ask for")
            }
        }
        tracing::warn!(region = name, ?state, "region state changed");
        Ok(self.status_of(i))
    }

    fn status_of(&mut self, i: usize) -> RegionStatus {
        let now = Instant::now();
        let url = self.url(i);
        let r = &mut self.regions[i];
        let looping = r.recent_exits(now) >= CRASH_LOOP_EXITS;
        let state = match (&r.child, r.wanted) {
            _ if looping && r.runs_when_wanted() => RegionState::Crashing,
            (Some(_), wanted) => wanted,
            (None, RegionState::Up | RegionState::Blackhole) => RegionState::Crashed,
            (None, wanted) => wanted,
        };
        RegionStatus {
            region: r.name.clone(),
            state,
            primary: i == 0,
            url,
            pid: r.child.as_ref().and_then(|c| c.id()),
            error: r.error.clone(),
            restarts: r.restarts,
            last_exit: r.last_exit.clone(),
            witness: r.witness,
        }
    }

    /// Every region's status, with exits noticed as of now.
    pub fn status(&mut self) -> Vec<RegionStatus> {
        self.reap();
        (0..self.regions.len()).map(|i| self.status_of(i)).collect()
    }

    /// Base URLs of the regions (and the witness) whose processes run and answer (not
    /// blackholed).
    pub fn answering(&self) -> Vec<(String, String)> {
        self.regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.child.is_some() && r.wanted == RegionState::Up)
            .map(|(i, r)| (r.name.clone(), self.url(i)))
            .collect()
    }

    pub fn origin_secret(&self) -> &str {
        &self.origin_secret
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The stack's replication key, which the edge and the control API prove regions with.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Stops every region at once: SIGTERM to all, [`STOP_TIMEOUT`] for all of them together,
    /// then SIGKILL for any left.
    pub async fn shutdown(&mut self) {
        self.stopping = true;
        let mut children: Vec<Child> = self
            .regions
            .iter_mut()
            .filter_map(|r| r.child.take())
            .collect();
        for child in &children {
            signal(child, Signal::SIGCONT);
            signal(child, Signal::SIGTERM);
        }
        let all = futures::future::join_all(children.iter_mut().map(|c| c.wait()));
        if tokio::time::timeout(STOP_TIMEOUT, all).await.is_err() {
            for child in &mut children {
                let _ = child.kill().await;
            }
        }
    }
}

/// Watches the regions for as long as the stack runs: a child's exit (SIGCHLD) or a due restart
/// wakes it; it restarts what exited on its own ([`Supervisor`]'s policy).
pub async fn watch(supervisor: Arc<tokio::sync::Mutex<Supervisor>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut exits = match signal(SignalKind::child()) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(%err, "no SIGCHLD stream: region exits are checked every second");
            None
        }
    };
    loop {
        let next = {
            let mut s = supervisor.lock().await;
            s.reap();
            s.restart_due().await;
            s.next_restart()
        };
        // Also once a second: crash loops age out of the window.
        let wake = next.map_or(Duration::from_secs(1), |t| {
            t.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
        });
        match &mut exits {
            Some(exits) => {
                tokio::select! {
                    _ = exits.recv() => {}
                    () = tokio::time::sleep(wake) => {}
                }
            }
            None => tokio::time::sleep(wake).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_told_in_words() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "killed by SIGKILL");
        assert_eq!(describe_exit(ExitStatus::from_raw(6)), "killed by SIGABRT");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
    }

    #[test]
    fn the_back_off_doubles_within_the_window_and_a_loop_is_called_one() {
        let mut r = RegionProc::new("us-east-1", 1);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..8)
            .map(|n| {
                let at = t0 + Duration::from_millis(n);
                r.exited(at, "killed by SIGKILL".into());
                r.restart_at.unwrap() - at
            })
            .collect();
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert_eq!(waits[7], MAX_BACKOFF);
        assert_eq!(r.recent_exits(t0), 8);
        // A minute without an exit: no loop any more, and the next exit waits the least again.
        let later = t0 + CRASH_WINDOW + Duration::from_secs(1);
        assert_eq!(r.recent_exits(later), 0);
        r.exited(later, "exited with status 1".into());
        assert_eq!(r.restart_at.unwrap() - later, FIRST_BACKOFF);
    }
}
