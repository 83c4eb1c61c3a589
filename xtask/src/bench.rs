//! `cargo xtask bench`: every figure of `docs/benchmarks.md`, on a fresh machine. It installs
//! what is missing (nginx, wrk and brotli from Debian, moto in the venv, the console tools),
//! builds in release, and prints the tables.

use crate::util::{self, cargo, done, run, step};
use crate::{console, setup};
use std::process::Command;

/// Debian packages the comparisons need, by the program that must be on PATH.
const APT: [(&str, &str); 3] = [("nginx", "nginx"), ("wrk", "wrk"), ("brotli", "brotli")];

fn apt_install_missing() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT
        .iter()
        .filter(|(bin, _)| {
            util::which(bin).is_none() && !std::path::Path::new("/usr/sbin").join(bin).exists()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let t = step(&format!("apt-get install {}", missing.join(" ")));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    done(t);
    Ok(())
}

pub fn run_all() -> anyhow::Result<()> {
    setup::rust()?;
    setup::python()?;
    apt_install_missing()?;
    if !console::dist().join("index.html").is_file() {
        setup::console_tools()?;
        console::build()?;
    }

    let t = step("region throughput: tandem (redb) vs a bare axum handler");
    run(cargo().args(["bench", "-p", "tandem-api", "--bench", "throughput"]))?;
    done(t);

    let t = step("release build: tandem, tandem-api, the hello-world lambda_http example");
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "tandem-cli",
        "-p",
        "tandem-api",
        "--bin",
        "tandem",
        "--bin",
        "tandem-api",
        "--example",
        "hello_lambda",
    ]))?;
    done(t);

    let t = step(
        "tandem bench --compare: replication lag, failover cost, edge vs nginx, memory, Lambda init, console size",
    );
    let mut sbin = std::env::var_os("PATH").unwrap_or_default();
    sbin.push(":/usr/sbin");
    run(Command::new(util::target_dir().join("release/tandem"))
        .args(["bench", "--compare"])
        .arg("--moto-server")
        .arg(setup::venv_bin("moto_server"))
        .arg("--console-dir")
        .arg(console::dist())
        .env("PATH", sbin))?;
    done(t);
    Ok(())
}
