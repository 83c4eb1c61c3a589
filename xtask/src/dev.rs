//! `cargo xtask dev`: the local stack answers as soon as it is built; the console tools and the
//! console are built behind it, while the edge serves a "console is building" page (which
//! shows the steps below and reloads itself) in the console's place.
//!
//! It builds `tandem-local`, the local stack's commands alone (`up`, `verify`), not the whole
//! `tandem` command: the AWS SDK crates are most of `tandem`'s build and the local stack needs
//! none of them. `tandem up` and `tandem-local up` are the same code.

use crate::one_build::LOCAL_BUILD;
use crate::util;
use crate::{console, setup};
use std::io::{Read as _, Write as _};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tandem_ops::ports::DEFAULT_EDGE_PORT as DEFAULT_PORT;

/// Builds `tandem-local`, starts `tandem-local up`, reports when the API first answers,
/// builds the console behind it, and then waits for the stack to stop (Ctrl-C reaches it
/// directly).
pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let started = Instant::now();
    setup::rust()?;
    // The same features as `cargo build --release --bin tandem` for every crate both use
    // (one_build.rs): a user's tandem build and this one reuse each other's artifacts.
    util::cargo_step(&format!("cargo {LOCAL_BUILD}"), LOCAL_BUILD)?;

    let progress = util::target_dir().join("xtask/console-progress.txt");
    std::fs::create_dir_all(progress.parent().expect("a file in a directory"))?;
    std::fs::write(&progress, "")?;
    util::report_progress_to(&progress);
    stay_for_ctrl_c()?;
    let tandem = util::target_dir().join("release/tandem-local");
    println!(
        "\n==> {} up --console-dir frontend/dist {}",
        tandem.display(),
        args.join(" ")
    );
    let mut up = Command::new(&tandem)
        .arg("up")
        .args(["--console-dir", "frontend/dist", "--console-progress"])
        .arg(&progress)
        .args(&args)
        .current_dir(util::root())
        .spawn()?;

    let port = edge_port(&args);
    match first_answer(port, &mut up, Duration::from_secs(60))? {
        true => println!(
            "\n==> the API answered {:.1} s after `cargo xtask dev` started (http://127.0.0.1:{port}/api/health); the console builds behind it",
            started.elapsed().as_secs_f64()
        ),
        false => println!("\n==> no answer from http://127.0.0.1:{port}/api/health within 60 s"),
    }
    let built = if console::up_to_date() {
        util::note("the console in frontend/dist is newer than its sources: not rebuilt");
        Ok(())
    } else {
        setup::console_tools().and_then(|()| console::build())
    };
    match built {
        Ok(()) => println!(
            "\n==> the console is ready, {:.1} s after `cargo xtask dev` started: reload http://127.0.0.1:{port}/ (Ctrl-C stops everything)",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => util::note(&format!(
            "\n==> the console build failed: {e:#}\n(the API and the regions keep running; Ctrl-C stops them)"
        )),
    }
    util::stop_reporting_progress();
    let status = up.wait()?;
    anyhow::ensure!(status.success(), "tandem up exited with {status}");
    Ok(())
}

/// Ctrl-C goes to the whole foreground process group: `tandem up` stops its regions itself, and
/// a build in progress stops. This process only notes it and waits for `tandem up`, so that the
/// prompt comes back after "Tandem stopped.". A handler (not SIG_IGN) is reset by `exec`, so the
/// builds and `tandem up` keep the default.
fn stay_for_ctrl_c() -> anyhow::Result<()> {
    extern "C" fn note(_: nix::libc::c_int) {}
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(note),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGINT, &action) }?;
    Ok(())
}

/// The edge port `tandem up` will use: `--port N`, `--port=N`, or its default.
fn edge_port(args: &[String]) -> u16 {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = match arg.strip_prefix("--port") {
            Some("") => it.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(port) = value.and_then(|v| v.parse().ok()) {
            return port;
        }
    }
    DEFAULT_PORT
}

/// Whether `GET /api/health` through the edge answered 200 within `limit` (polled every 50 ms);
/// an error when `tandem up` exits first (a port in use, say: it has said why).
fn first_answer(port: u16, up: &mut Child, limit: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if health_is_ok(port) {
            return Ok(true);
        }
        if let Some(status) = up.try_wait()? {
            anyhow::bail!("tandem up exited with {status} before it answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

fn health_is_ok(port: u16) -> bool {
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_port_comes_from_the_flags_or_the_default() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(edge_port(&args(&[])), DEFAULT_PORT);
        assert_eq!(edge_port(&args(&["--port", "9000"])), 9000);
        assert_eq!(edge_port(&args(&["--auto-failover", "--port=9100"])), 9100);
        assert_eq!(edge_port(&args(&["--port-x", "1"])), DEFAULT_PORT);
    }
}
