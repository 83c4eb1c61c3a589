//! The Lambda functions deploy ships: which ones, where each zip comes from (built with cargo
//! lambda in the checkout, or given with `--lambda-zip`/`--watcher-zip`), the checks a zip must
//! pass, and the S3 key it is uploaded under.

use super::args::DeployArgs;
use crate::stack::Progress;
use anyhow::{Context as _, anyhow, bail};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A Lambda function deploy builds and uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// The regional API (`tandem-api`), in both regions.
    Api,
    /// The health watcher (`tandem-watcher`, with `--auto-failover`), in the secondary region.
    Watcher,
}

impl Function {
    /// The package and binary cargo lambda builds; also the folder of its zip's key.
    fn package_and_bin(self) -> (&'static str, &'static str) {
        match self {
            Function::Api => ("tandem-api", "tandem-api"),
            Function::Watcher => ("tandem-aws", "tandem-watcher"),
        }
    }

    pub(super) fn bin(self) -> &'static str {
        self.package_and_bin().1
    }

    /// The regions (indexes, 0 = primary) whose code bucket gets this function's zip.
    pub(super) fn regions(self) -> &'static [usize] {
        match self {
            Function::Api => &[0, 1],
            Function::Watcher => &[1],
        }
    }

    /// What cargo lambda is asked to build (the templates run arm64 on provided.al2023).
    /// `--package` keeps the features that only `tandem` needs (the SDK's SSO login, for one)
    /// out of the API function: with `--bin` alone, cargo resolves features for every default
    /// member. The API function is built with `aws` only: its store is DynamoDB, so the
    /// embedded store (redb) stays out of it.
    pub(super) fn build_args(self) -> Vec<&'static str> {
        let (package, bin) = self.package_and_bin();
        let mut args = vec![
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
            "--package",
            package,
            "--bin",
            bin,
        ];
        if self == Function::Api {
            args.extend(["--no-default-features", "--features", "aws"]);
        }
        args.push("--lambda-dir");
        args
    }

    /// Where `cargo lambda build --lambda-dir target/lambda` puts the zip.
    pub(super) fn zip_in_workspace(self) -> String {
        format!("target/lambda/{}/bootstrap.zip", self.bin())
    }
}

/// The longest probe interval the watcher's stack takes (its `ProbeIntervalMs` MaxValue):
/// an invocation of at most 55 s must hold at least two rounds.
pub const WATCHER_MAX_PROBE_INTERVAL_MS: u64 = 20_000;
pub(super) const LAMBDA_TARGET: &str = "aarch64-unknown-linux-gnu";
/// The executable the provided.al2023 runtime starts: it must sit at the zip's root.
const BOOTSTRAP: &str = "bootstrap";

/// The zips to deploy, each given (`--lambda-zip`, `--watcher-zip`) or built in the checkout.
pub(super) fn locate_code(args: &DeployArgs) -> anyhow::Result<BTreeMap<Function, Zip>> {
    let api = Zip::locate(Function::Api, args.lambda_zip.as_deref())?;
    let mut code = BTreeMap::from([(Function::Api, api)]);
    let watcher = &args.watcher;
    if watcher.auto_failover {
        let interval = watcher.rule.probe_interval_ms;
        if interval > WATCHER_MAX_PROBE_INTERVAL_MS {
            bail!(
                "--probe-interval-ms {interval}: the watcher on AWS takes at most \
                 {WATCHER_MAX_PROBE_INTERVAL_MS} (each run lasts under a minute)"
            );
        }
        let zip = Zip::locate(Function::Watcher, watcher.watcher_zip.as_deref())?;
        code.insert(Function::Watcher, zip);
    }
    Ok(code)
}

/// Where a Lambda zip comes from.
#[derive(Debug, Clone)]
pub enum Zip {
    /// Built by cargo lambda in this workspace.
    Build { workspace: PathBuf },
    /// Given with `--lambda-zip`; its key is known already.
    Given { path: PathBuf, key: String },
}

impl Zip {
    /// The given zip, read and checked now (so that `--dry-run` catches a bad one), or the
    /// build in the checkout around the current directory.
    fn locate(function: Function, given: Option<&Path>) -> anyhow::Result<Zip> {
        match given {
            Some(path) => Ok(Zip::Given {
                path: path.to_owned(),
                key: code_key(function, &read_zip(path)?),
            }),
            None => Ok(Zip::Build {
                workspace: current_workspace(function)?,
            }),
        }
    }

    /// The zip's key, when it is known before anything is built.
    pub(super) fn known_key(&self) -> Option<&str> {
        match self {
            Zip::Given { key, .. } => Some(key),
            Zip::Build { .. } => None,
        }
    }

    /// The zip itself: read again when given (it is uploaded as it is now), built otherwise.
    pub(super) async fn bytes(
        &self,
        function: Function,
        progress: &Progress,
    ) -> anyhow::Result<Vec<u8>> {
        let path = match self {
            Zip::Given { path, .. } => path.clone(),
            Zip::Build { workspace } => build_zip(function, workspace, progress).await?,
        };
        read_zip(&path)
    }
}

/// The S3 key of a function's zip: its content hash, so that a new build is a new key (which
/// is what makes CloudFormation update the function) and an unchanged build uploads and
/// changes nothing.
pub fn code_key(function: Function, zip: &[u8]) -> String {
    let digest = sha2::Sha256::digest(zip);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{hex}.zip", function.bin())
}

/// Refuses anything that is not a zip with a `bootstrap` entry at its root: Lambda would only
/// fail later, at the first request, with `Runtime.InvalidEntrypoint`.
pub fn check_zip(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Only the central directory is read, so any compression method will do: nothing is
    // inflated.
    let Ok(archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        bail!("{} is not a zip file", path.display());
    };
    if archive.index_for_name(BOOTSTRAP).is_none() {
        bail!(
            "{} has no entry named {BOOTSTRAP} (the provided.al2023 runtime runs ./{BOOTSTRAP})",
            path.display()
        );
    }
    Ok(())
}

/// Reads a function zip and checks it ([`check_zip`]).
fn read_zip(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_zip(path, &bytes)?;
    Ok(bytes)
}

/// The checkout around the current directory: cargo lambda builds the function there.
fn current_workspace(function: Function) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    let flag = match function {
        Function::Api => "--lambda-zip",
        Function::Watcher => "--watcher-zip",
    };
    workspace_root(&cwd).ok_or_else(|| {
        anyhow!(
            "{} is not inside the Tandem checkout, so there is nothing to build: \
             run tandem deploy from the checkout, or pass {flag}",
            cwd.display()
        )
    })
}

/// The Tandem checkout containing `start`: the directory holding `Cargo.toml` and `api/`.
fn workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("api/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// Adds the Lambda target and finds cargo-lambda, then builds the zip. Returns its path.
async fn build_zip(
    function: Function,
    workspace: &Path,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    add_lambda_target(progress).await?;
    let path = path_with_cargo_lambda(workspace)?;
    let lambda_dir = workspace.join("target/lambda");
    let args = function.build_args();
    progress.line(format!("cargo {} {}", args.join(" "), lambda_dir.display()));
    let status = tokio::process::Command::new("cargo")
        .args(args)
        .arg(&lambda_dir)
        .env("PATH", path)
        .current_dir(workspace)
        .status()
        .await
        .context("running cargo lambda build")?;
    if !status.success() {
        bail!("cargo lambda build failed ({status})");
    }
    Ok(workspace.join(function.zip_in_workspace()))
}

/// Adds the Lambda target to rustup when it is missing.
async fn add_lambda_target(progress: &Progress) -> anyhow::Result<()> {
    let installed = tokio::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .await;
    // No rustup (a distribution's Rust): cargo lambda will say what is missing.
    let Ok(installed) = installed else {
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == LAMBDA_TARGET)
    {
        return Ok(());
    }
    progress.line(format!("rustup target add {LAMBDA_TARGET}"));
    let status = tokio::process::Command::new("rustup")
        .args(["target", "add", LAMBDA_TARGET])
        .status()
        .await?;
    if !status.success() {
        bail!("rustup target add {LAMBDA_TARGET} failed");
    }
    Ok(())
}

/// `PATH` for cargo lambda: as it is when cargo-lambda is on it, or with the checkout's
/// `target/venv/bin` in front when cargo-lambda was pip-installed there (`cargo xtask test`
/// does not install it; `pip install cargo-lambda` into that venv does).
fn path_with_cargo_lambda(workspace: &Path) -> anyhow::Result<OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join("cargo-lambda").is_file()) {
        return Ok(path);
    }
    let venv = workspace.join("target/venv/bin");
    if !venv.join("cargo-lambda").is_file() {
        bail!("cargo-lambda is not installed: `pip install cargo-lambda` (it bundles zig)");
    }
    let dirs = std::iter::once(venv).chain(std::env::split_paths(&path));
    Ok(std::env::join_paths(dirs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_function_zip_needs_bootstrap_at_its_root() {
        let path = Path::new("fn.zip");
        let refused = |bytes: &[u8]| check_zip(path, bytes).unwrap_err().to_string();

        check_zip(path, &zip_of(&[(BOOTSTRAP, b"#!/bin/sh\n")])).unwrap();
        check_zip(path, &zip_of(&[("README", b""), (BOOTSTRAP, b"")])).unwrap();

        let missing = "fn.zip has no entry named bootstrap";
        assert!(refused(&zip_of(&[("dir/bootstrap", b"")])).contains(missing));
        // The name in a file's content, or in an entry's, is not an entry of that name.
        assert!(refused(&zip_of(&[("main", b"bootstrap")])).contains(missing));
        assert!(refused(&zip_of(&[("bootstrap.sh", b"")])).contains(missing));

        assert_eq!(refused(b"#!/bin/sh\n"), "fn.zip is not a zip file");
        assert_eq!(refused(b"PK\x03\x04bootstrap"), "fn.zip is not a zip file");
    }
}
