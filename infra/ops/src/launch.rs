//! A `tandem up` child process on a free port block, ready when its edge answers health: what
//! `tandem bench`, `tandem chaos` and the tests (through `tandem-testkit`) measure and poke;
//! and the flags that place one region process, for whoever starts one on its own.

use crate::client::ControlClient;
use crate::items::ItemClient;
use crate::ports;
use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_shared::control::EdgeSettings;
use tandem_shared::region::DEFAULT_REGIONS;

/// The flags that place one region process (`tandem-api`, or `tandem region`): its name, its
/// port on 127.0.0.1 and its data directory.
pub fn region_args(region: &str, port: u16, data_dir: &Path) -> Vec<OsString> {
    vec![
        "--region".into(),
        region.into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
        "--data-dir".into(),
        data_dir.into(),
    ]
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct Launch {
    /// A binary with the `up` command: `tandem` or `tandem-local`.
    pub exe: PathBuf,
    pub edge: EdgeSettings,
    pub token: String,
    pub secret: String,
    /// More `tandem up` flags.
    pub extra: Vec<String>,
    /// `RUST_LOG` of the stack.
    pub log: String,
    /// Whether the stack's stderr goes to ours (tests) or nowhere (benchmarks).
    pub show_stderr: bool,
}

impl Launch {
    /// A stack from `exe` with fresh secrets and the deployed edge settings.
    pub fn new(exe: impl Into<PathBuf>) -> Launch {
        Launch {
            exe: exe.into(),
            edge: EdgeSettings::default(),
            token: crate::random_token(),
            secret: crate::random_token(),
            extra: Vec::new(),
            log: "error".to_owned(),
            show_stderr: false,
        }
    }

    /// Starts the stack on a fresh temporary data directory.
    pub async fn start(&self) -> anyhow::Result<Stack> {
        self.start_in(tempfile::tempdir()?).await
    }

    /// Starts the stack on a data directory prepared by the caller. Retries on other ports when
    /// another process takes one of ours between the check and the bind.
    pub async fn start_in(&self, data: tempfile::TempDir) -> anyhow::Result<Stack> {
        let mut data = Some(data);
        for _ in 0..5 {
            // The edge, the regions, and a witness's port in case the stack runs one.
            let base = ports::free_block(2 + DEFAULT_REGIONS.len() as u16)
                .context("no free block of ports for a stack")?;
            let mut stack = self.spawn(base, data.take().expect("data dir"))?;
            match stack.until_ready().await {
                Ok(()) => return Ok(stack),
                Err(_) if stack.exited() => data = Some(stack.into_data()),
                Err(err) => return Err(err),
            }
        }
        // Five exits in a row are rarely five lost port races: say so, and where the reason is.
        bail!(
            "tandem up exited before answering health on each of 5 port blocks: a port race, or \
             a failure at start (set Launch::show_stderr to see its error)"
        )
    }

    fn spawn(&self, base: u16, data: tempfile::TempDir) -> anyhow::Result<Stack> {
        let e = &self.edge;
        let child = Command::new(&self.exe)
            .args(["up", "--port", &base.to_string()])
            .args([
                "--admin-token",
                &self.token,
                "--origin-secret",
                &self.secret,
            ])
            .args(["--connection-attempts", &e.connection_attempts.to_string()])
            .args(["--connection-timeout", &e.connection_timeout.to_string()])
            .args(["--origin-read-timeout", &e.origin_read_timeout.to_string()])
            .arg("--data-dir")
            .arg(data.path())
            .args(&self.extra)
            .env("RUST_LOG", &self.log)
            .stdout(Stdio::null())
            .stderr(if self.show_stderr {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .with_context(|| format!("starting {} up", self.exe.display()))?;
        let regions = DEFAULT_REGIONS
            .iter()
            .zip(1..)
            .map(|(r, i)| ((*r).to_owned(), format!("http://127.0.0.1:{}", base + i)))
            .collect();
        Ok(Stack {
            child: Some(child),
            edge: format!("http://127.0.0.1:{base}"),
            regions,
            token: self.token.clone(),
            secret: self.secret.clone(),
            data: Some(data),
        })
    }
}

/// A running `tandem up`; dropping it stops the stack (SIGTERM, then SIGKILL after 10 s).
pub struct Stack {
    child: Option<Child>,
    /// The edge's base URL.
    pub edge: String,
    /// Each region's base URL (straight to the region process, past the edge).
    pub regions: BTreeMap<String, String>,
    pub token: String,
    pub secret: String,
    data: Option<tempfile::TempDir>,
}

impl Stack {
    /// Where the regions keep their data (one directory per region).
    pub fn data_dir(&self) -> &Path {
        self.data.as_ref().expect("data dir").path()
    }

    /// The `tandem up` process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A control client for this stack, whose requests give up after `timeout`.
    pub fn control(&self, timeout: Duration) -> ControlClient {
        ControlClient::new(&self.edge, &self.token, timeout).expect("an HTTP client")
    }

    /// The item client through the edge, on `http`.
    pub fn items(&self, http: reqwest::Client) -> ItemClient {
        ItemClient::new(http, &self.edge)
    }

    /// The item client straight to `region`'s process, past the edge, with the origin secret
    /// as the edge sends it.
    pub fn items_in(&self, http: reqwest::Client, region: &str) -> anyhow::Result<ItemClient> {
        let base = self
            .regions
            .get(region)
            .with_context(|| format!("the stack has no region {region}"))?;
        Ok(ItemClient::new(http, base).with_origin_secret(&self.secret))
    }

    /// Region names and process ids.
    pub async fn region_pids(&self) -> anyhow::Result<Vec<(String, u32)>> {
        let regions = self.control(Duration::from_secs(10)).regions().await?;
        Ok(regions
            .regions
            .into_iter()
            .filter_map(|r| Some((r.region, r.pid?)))
            .collect())
    }

    /// Whether `tandem up` has exited (for example after losing a port race).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()))
    }

    /// Waits until the edge answers health with 200 (at most 10 s, or until it exits).
    async fn until_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.exited() {
            let health = http.get(format!("{}/api/health", self.edge)).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("tandem up did not answer health on {}", self.edge)
    }

    /// Stops the stack and hands its data directory back (to start another stack on it).
    pub fn into_data(mut self) -> tempfile::TempDir {
        self.stop();
        self.data.take().expect("data dir")
    }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // Our own child, not reaped yet: the pid cannot belong to another process.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}
