//! Helpers for running commands with visible progress.

use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;
use tandem_shared::sync::lock;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_owned()
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}

/// Where steps are also written while `cargo xtask dev` builds the console behind a running
/// stack (its "console is building" page shows the file).
static PROGRESS: Mutex<Option<PathBuf>> = Mutex::new(None);

pub fn report_progress_to(file: &Path) {
    *lock(&PROGRESS) = Some(file.to_owned());
}

pub fn stop_reporting_progress() {
    *lock(&PROGRESS) = None;
}

/// Prints a line, and appends it to the progress file when there is one.
pub fn note(line: &str) {
    println!("{line}");
    if let Some(file) = lock(&PROGRESS).as_ref() {
        // The page is a convenience: a line it misses is still on the terminal.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| writeln!(f, "{}", line.trim_start()));
    }
}

/// Prints a step header; returns a timer for [`done`].
pub fn step(name: &str) -> (String, Instant) {
    note(&format!("\n==> {name}"));
    (name.to_owned(), Instant::now())
}

/// Prints how long a step took.
pub fn done((name, started): (String, Instant)) {
    note(&format!(
        "<== {name}: ok in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
}

/// Runs a command in the workspace root, streaming its output; fails if it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    run_in(&root(), cmd)
}

/// A step that is one cargo command: `args` as typed after `cargo` (split at spaces, so none
/// may hold one).
pub fn cargo_step(title: &str, args: &str) -> anyhow::Result<()> {
    let t = step(title);
    run(cargo().args(args.split_whitespace()))?;
    done(t);
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    cmd.current_dir(root());
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo that runs us, with the environment a shell would give it. `cargo run` sets
/// xtask's own package variables (`CARGO_PKG_NAME=xtask`…), and build scripts that watch them
/// (ring's does) would otherwise rebuild after every plain `cargo build`, and the other way round.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let set_by_cargo_run = name.to_str().is_some_and(|n| {
            n.starts_with("CARGO_PKG_")
                || n.starts_with("CARGO_MANIFEST_")
                || matches!(
                    n,
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                )
        });
        if set_by_cargo_run {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `n` consecutive free ports on 127.0.0.1 below the ephemeral range (`tandem up` puts region N
/// on base + N): [`tandem_ops::ports::free_block`], the rule the local stack and its tests follow, so
/// that a region restarted by a scenario gets its port back.
pub fn free_ports(n: u16) -> anyhow::Result<u16> {
    tandem_ops::ports::free_block(n).with_context(|| format!("found no {n} consecutive free ports"))
}

/// Waits until something listens on `port`.
/// The body of `GET path` on 127.0.0.1:`port` (HTTP/1.1, the connection closed after it).
pub fn http_get(port: u16, path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an HTTP answer")?;
    anyhow::ensure!(
        answer.starts_with(b"HTTP/1.1 200"),
        "GET {path} did not answer 200"
    );
    Ok(answer.split_off(split + 4))
}

pub fn wait_for_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// Runs a command in `dir`, streaming its output; fails if it fails.
pub fn run_in(dir: &Path, cmd: &mut Command) -> anyhow::Result<()> {
    cmd.current_dir(dir);
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// A program on PATH (or in cargo's bin directory, where `cargo install` puts it).
pub fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    } else if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether we run as root (then apt-get can install what is missing).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}
