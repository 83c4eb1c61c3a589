//! Prerequisites that `cargo xtask test` installs when missing: rustup targets and components,
//! a Python venv with pinned tools (moto, schemathesis), and the console's build tools.

use crate::util::{self, done, output, run, step};
use anyhow::Context as _;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
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
    make_venv(&venv(), [OsStr::new("-r"), requirements.as_os_str()])?;
    std::fs::write(&stamp, wanted)?;
    done(t);
    Ok(())
}

/// Creates a venv in `dir` with `$PYTHON` (python3 by default) and pip-installs `packages` into
/// it: pip's own arguments, pinned names or `-r <file>`.
pub fn make_venv(
    dir: &Path,
    packages: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).arg("-m").arg("venv").arg(dir))
        .context("creating the venv (on Debian: apt-get install python3-venv)")?;
    run(Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
        ])
        .args(packages))
}

/// The trunk release the console is built with (0.22 needs a newer rustc than the workspace's).
pub const TRUNK_VERSION: &str = "0.21.14";

/// The version a tool prints for `--version` (`trunk 0.21.14` → `0.21.14`).
fn tool_version(name: &str) -> Option<String> {
    let path = util::which(name)?;
    let out = output(Command::new(path).arg("--version")).ok()?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

/// The version of `package` that Cargo.lock pins (the first one, if several).
pub fn locked_version(package: &str) -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(util::root().join("Cargo.lock"))?;
    let marker = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&marker)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + marker.len();
    let end = lock[start..].find('"').context("malformed Cargo.lock")? + start;
    Ok(lock[start..end].to_owned())
}

/// binaryen from npm, for wasm-opt. Not Debian's: bookworm ships binaryen 108, and binaryen up
/// to 108 writes the wrong table index for wasm-bindgen's exported externref table, so the
/// console dies at start (`WebAssembly.Table.set(): Argument 1 is invalid`); 110 fixed it.
pub const BINARYEN_VERSION: &str = "132.0.0";

/// Where the npm binaryen lives (under the target directory, so CI reuses it).
fn binaryen_dir() -> PathBuf {
    util::target_dir().join("tools/binaryen")
}

/// The directory holding binaryen's `wasm-opt`.
pub fn binaryen_bin() -> PathBuf {
    binaryen_dir().join("node_modules/.bin")
}

/// The version of npm package `package` installed under `prefix`, if any.
fn npm_version(prefix: &Path, package: &str) -> Option<String> {
    let manifest = prefix
        .join("node_modules")
        .join(package)
        .join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_owned)
}

/// `npm install <spec>` into `prefix` (created if missing).
fn npm_install(prefix: &Path, spec: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(prefix)?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(prefix)
        .arg(spec))
}

/// The release profile the console tools are built with, over their own (trunk asks for fat LTO
/// and one codegen unit). A tool is built once per machine and then works on a console of a few
/// hundred kilobytes, where its speed is lost in the noise: unoptimised, trunk and wasm-bindgen
/// built in 254 s instead of 660 s here, and the console's build took 8.7 s instead of 7.6-8.0 s,
/// with byte-identical output (docs/benchmarks.md, "Console tools").
pub const TOOLS_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
];

/// `cargo install` with [`TOOLS_PROFILE`].
fn install_tool() -> Command {
    let mut cmd = util::cargo();
    cmd.arg("install").envs(TOOLS_PROFILE.iter().copied());
    cmd
}

/// Installs what the console build needs when missing: trunk (pinned), wasm-bindgen-cli at
/// the version of the `wasm-bindgen` crate in Cargo.lock (the two must match exactly), and
/// wasm-opt (binaryen from npm, pinned). Trunk runs offline, so it downloads none of them.
pub fn console_tools() -> anyhow::Result<()> {
    let t = step("console tools: trunk, wasm-bindgen-cli, wasm-opt (binaryen)");
    if tool_version("trunk").as_deref() == Some(TRUNK_VERSION) {
        println!("trunk {TRUNK_VERSION}: installed");
    } else {
        util::note(&format!(
            "installing trunk {TRUNK_VERSION} (about 3 minutes on 2 cores)…"
        ));
        run(install_tool().args(["trunk", "--locked", "--version", TRUNK_VERSION]))?;
    }
    let bindgen = locked_version("wasm-bindgen")?;
    if tool_version("wasm-bindgen").as_deref() == Some(bindgen.as_str()) {
        println!("wasm-bindgen-cli {bindgen}: installed");
    } else {
        // Without --locked: wasm-bindgen-cli's own lockfile pins a crate version that the
        // registry no longer serves.
        util::note(&format!(
            "installing wasm-bindgen-cli {bindgen} (about 1 minute)…"
        ));
        run(install_tool().args(["wasm-bindgen-cli", "--force", "--version", &bindgen]))?;
    }
    if npm_version(&binaryen_dir(), "binaryen").as_deref() == Some(BINARYEN_VERSION) {
        println!("binaryen {BINARYEN_VERSION} (npm): installed");
    } else {
        if util::which("npm").is_none() {
            anyhow::ensure!(
                util::is_root(),
                "npm is missing: install Node.js and npm (apt-get install nodejs npm)"
            );
            println!("installing Node.js and npm (Debian)…");
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            run(Command::new("apt-get").args(["install", "-y", "-qq", "nodejs", "npm"]))?;
        }
        util::note(&format!("installing binaryen {BINARYEN_VERSION} from npm…"));
        npm_install(&binaryen_dir(), &format!("binaryen@{BINARYEN_VERSION}"))?;
    }
    done(t);
    Ok(())
}

/// Redocly's CLI, pinned: lints the OpenAPI document with its recommended rules.
pub const REDOCLY_VERSION: &str = "2.77.0";

/// Where the npm Redocly CLI lives (under the target directory, so CI reuses it).
fn redocly_dir() -> PathBuf {
    util::target_dir().join("tools/redocly")
}

/// The `redocly` command.
pub fn redocly() -> PathBuf {
    redocly_dir().join("node_modules/.bin/redocly")
}

/// Installs the OpenAPI linter when missing (Redocly's CLI from npm, pinned); the client
/// generator comes with the Python venv ([`python`]).
pub fn openapi_tools() -> anyhow::Result<()> {
    let t = step("OpenAPI tools: Redocly CLI (npm)");
    if npm_version(&redocly_dir(), "@redocly/cli").as_deref() == Some(REDOCLY_VERSION) {
        println!("@redocly/cli {REDOCLY_VERSION} (npm): installed");
    } else {
        npm_install(&redocly_dir(), &format!("@redocly/cli@{REDOCLY_VERSION}"))?;
    }
    done(t);
    Ok(())
}

/// PATH for trunk: binaryen's wasm-opt first (ahead of any older system one), then the
/// directory of the wasm-bindgen we installed, then the inherited PATH.
pub fn tool_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec![binaryen_bin()];
    if let Some(bindgen) = util::which("wasm-bindgen").and_then(|p| p.parent().map(PathBuf::from)) {
        dirs.push(bindgen);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}
