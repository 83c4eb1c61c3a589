//! Prerequisites that `cargo xtask test` installs when missing: rustup targets and components,
//! and a Python venv with pinned tools (moto, schemathesis).

use crate::util::{self, done, output, run, step};
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::Command;

/// The venv under the target directory.
pub fn venv() -> PathBuf {
    util::target_dir().join("venv")
}

/// A program inside the venv.
pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// Adds the rustup targets and components the checks need.
pub fn rust() -> anyhow::Result<()> {
    let t = step("rustup: wasm32-unknown-unknown target, rustfmt, clippy");
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup is needed")?;
    if !installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let components = output(Command::new("rustup").args(["component", "list", "--installed"]))?;
    for c in ["rustfmt", "clippy"] {
        if !components.lines().any(|l| l.starts_with(c)) {
            run(Command::new("rustup").args(["component", "add", c]))?;
        }
    }
    done(t);
    Ok(())
}

/// Creates the venv and installs the pinned Python tools, when the pins changed.
pub fn python() -> anyhow::Result<()> {
    let t = step("python venv: moto, schemathesis (pinned in xtask/python-requirements.txt)");
    let requirements = util::root().join("xtask/python-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)?;
    let stamp = venv().join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && venv_bin("python").exists()
    {
        println!("up to date: {}", venv().display());
        done(t);
        return Ok(());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).arg("-m").arg("venv").arg(venv()))
        .context("creating the venv (on Debian: apt-get install python3-venv)")?;
    run(Command::new(venv_bin("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted)?;
    done(t);
    Ok(())
}
