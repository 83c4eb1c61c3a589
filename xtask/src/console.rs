//! The console's release build (trunk) and its size budget.

use crate::setup;
use crate::util::{self, done, run_in, step};
use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// wasm + js shipped to a browser, after brotli, in bytes (1 KB = 1000 bytes). Raised from
/// 150 KB when the console moved to Leptos's own primitives (`LocalResource` +9.3 KB, `Action`
/// +5.2 KB, `<For>` +5.0 KB, measured one at a time) and to the shared typed control bodies
/// (+13 KB, most of it serde's tagged-enum decoding of `Fault`), then to the shared drill rules
/// and typed error bodies (+14 KB); docs/benchmarks.md has the steps. Issue 13 cut it back to
/// 190 KB (B-tree collects, `Fault`'s flat decoding, `erase_components` off): the budget keeps
/// that with a little room.
pub const BUDGET_BYTES: usize = 195_000;

pub fn dist() -> PathBuf {
    util::root().join("frontend/dist")
}

/// `trunk build` in release mode: the `wasm-release` cargo profile and wasm-opt (index.html
/// asks for both), offline (Trunk.toml), into `frontend/dist`.
pub fn build() -> anyhow::Result<()> {
    let t =
        step("console: trunk build --release (wasm-release profile, wasm-opt -Oz) → frontend/dist");
    run_in(
        &util::root().join("frontend"),
        Command::new(util::which("trunk").context("trunk is not installed")?)
            .args(["build", "--release=true"])
            .env("TRUNK_SKIP_VERSION_CHECK", "true")
            .env("TRUNK_OFFLINE", "true")
            .env("PATH", setup::tool_path()),
    )?;
    anyhow::ensure!(
        dist().join("index.html").is_file(),
        "trunk left no frontend/dist/index.html"
    );
    precompress()?;
    std::fs::create_dir_all(util::target_dir().join("xtask"))?;
    std::fs::write(stamp(), "")?;
    done(t);
    Ok(())
}

/// What the console is built from: its crate, the contract crate, the workspace's manifest and
/// lockfile (`frontend/dist` itself is skipped).
const SOURCES: [&str; 4] = ["frontend", "shared", "Cargo.toml", "Cargo.lock"];

/// Written when a build has finished, precompressed copies included.
fn stamp() -> PathBuf {
    util::target_dir().join("xtask/console-built")
}

/// Whether `frontend/dist` holds a finished build made after every file it is built from last
/// changed.
pub fn up_to_date() -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(&stamp()).filter(|_| dist().join("index.html").is_file()) else {
        return false;
    };
    let root = util::root();
    let mut stack: Vec<PathBuf> = SOURCES.iter().map(|s| root.join(s)).collect();
    while let Some(path) = stack.pop() {
        if path == dist() || path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        match std::fs::read_dir(&path) {
            Ok(entries) => stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path()))),
            Err(_) if modified(&path).is_some_and(|m| m <= built) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Quality 11 and a 4 MB window: what `brotli -q 11` ships.
fn brotli(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut w = brotli::CompressorWriter::new(Vec::new(), 64 * 1024, 11, 22);
    w.write_all(bytes)?;
    Ok(w.into_inner())
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(bytes)?;
    Ok(w.finish()?)
}

/// The files the edge serves precompressed (`<name>.br`, `<name>.gz` beside each).
const PRECOMPRESSED: [&str; 4] = ["wasm", "js", "css", "html"];

/// Writes `<file>.br` and `<file>.gz` beside each console file the edge serves precompressed,
/// so that a browser gets the budget's bytes rather than an on-the-fly compression at a
/// lower quality.
fn precompress() -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dist())? {
        let path = entry?.path();
        if !path
            .extension()
            .is_some_and(|x| PRECOMPRESSED.iter().any(|p| x == *p))
        {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        std::fs::write(path.with_file_name(format!("{name}.br")), brotli(&bytes)?)?;
        std::fs::write(path.with_file_name(format!("{name}.gz")), gzip(&bytes)?)?;
    }
    Ok(())
}

/// Prints the wasm and js the browser downloads, raw and as served (the `.br` beside each,
/// [`precompress`]), and fails over budget.
pub fn size_budget() -> anyhow::Result<()> {
    let t = step(&format!(
        "console size budget: wasm + js after brotli <= {} KB",
        BUDGET_BYTES / 1000
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dist())
        .context("reading frontend/dist (build the console first)")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm" || x == "js"))
        .collect();
    files.sort();
    anyhow::ensure!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "wasm")),
        "no .wasm in frontend/dist"
    );
    let (mut wasm, mut js) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let served = path.with_file_name(format!("{name}.br"));
        let br = std::fs::read(&served)
            .with_context(|| format!("reading {} (the console build writes it)", served.display()))?
            .len();
        println!(
            "{:>9} B raw {:>8} B brotli  {}",
            bytes.len(),
            br,
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        if path.extension().is_some_and(|x| x == "wasm") {
            wasm += br;
        } else {
            js += br;
        }
    }
    let total = wasm + js;
    println!(
        "console size: wasm {wasm} B + js {js} B = {total} B after brotli ({}.{} KB of the {} KB budget)",
        total / 1000,
        total % 1000 / 100,
        BUDGET_BYTES / 1000
    );
    anyhow::ensure!(
        total <= BUDGET_BYTES,
        "the console is over its size budget: {total} B > {BUDGET_BYTES} B after brotli"
    );
    done(t);
    Ok(())
}
