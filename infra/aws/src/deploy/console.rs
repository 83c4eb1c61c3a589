//! The console's upload: the files of the built console, the `Content-Type` and
//! `Cache-Control` each is served with (hashed names are immutable, reused names are
//! revalidated), the order they go up in, and the paths to invalidate afterwards.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// `Cache-Control` of files whose name every build reuses (`index.html`, the console's
/// `boot.js`, a favicon): browsers revalidate each time (a cheap 304 when unchanged), so a
/// deploy shows at once. CloudFront may still hold its copy (CachingOptimized caches at least
/// its 1 s minimum TTL whatever the origin says, and a copy fetched before the deploy for up
/// to its one-day default): the invalidation clears those.
pub const NO_CACHE: &str = "no-cache";
/// `Cache-Control` of files with a content hash in their name (trunk's `name-<hash>.js`,
/// `name-<hash>_bg.wasm`): a new build gets new names, so a copy never goes stale.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Every console route is served from this file (the SPA fallback function).
pub const INDEX: &str = "/index.html";
/// Beyond this many reused names, one `/*` wildcard is invalidated instead (CloudFront bills a
/// wildcard as one path; the first 1,000 paths a month are free).
const MAX_INVALIDATION_PATHS: usize = 15;

/// One console file to upload.
#[derive(Debug, Clone)]
pub struct ConsoleFile {
    pub path: PathBuf,
    pub key: String,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub size: u64,
}

/// Every file under `dir`, sorted by key. Fails unless there is an `index.html`.
pub fn console_files(dir: &Path) -> anyhow::Result<Vec<ConsoleFile>> {
    if !dir.join("index.html").is_file() {
        bail!(
            "{} has no index.html: build the console first (`cargo xtask dev` builds it; or \
             `trunk build --release=true frontend/index.html --dist frontend/dist`), or pass \
             --console-dir",
            dir.display()
        );
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && !is_precompressed(&path) {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(ConsoleFile {
                    content_type: content_type(&key),
                    cache_control: cache_control(&key),
                    size: entry.metadata()?.len(),
                    path,
                    key,
                });
            }
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

/// The `.br`/`.gz` copies `cargo xtask` writes for the local edge: CloudFront compresses on
/// its own, so they are not uploaded.
fn is_precompressed(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "br" || x == "gz")
}

/// The `Content-Type` S3 will serve a console file with (CloudFront passes it on; wasm must be
/// `application/wasm` for `WebAssembly.instantiateStreaming`).
pub fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash the way trunk writes it: `<name>-<hex>` before
/// the extension, optionally followed by `_bg` (the wasm-bindgen module).
pub fn is_hashed(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() >= 8 && hash.len() <= 64 && hash.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// The `Cache-Control` of a console file.
pub fn cache_control(key: &str) -> &'static str {
    if is_hashed(key) && !content_type(key).starts_with("text/html") {
        IMMUTABLE
    } else {
        NO_CACHE
    }
}

/// Hashed assets first and index.html last, so that no browser gets an index.html that names
/// files not uploaded yet.
pub(super) fn upload_order(files: &[ConsoleFile]) -> Vec<&ConsoleFile> {
    let mut files: Vec<&ConsoleFile> = files.iter().collect();
    files.sort_by_key(|f| {
        (
            f.cache_control == NO_CACHE,
            format!("/{}", f.key) == INDEX,
            f.key.clone(),
        )
    });
    files
}

/// The paths to invalidate after an upload: every file whose name builds reuse, `/index.html`
/// first (it is always there: [`console_files`] insists).
pub fn invalidation_paths(files: &[ConsoleFile]) -> Vec<String> {
    let mut paths: Vec<String> = files
        .iter()
        .filter(|f| f.cache_control == NO_CACHE)
        .map(|f| format!("/{}", f.key))
        .collect();
    paths.sort_by_key(|p| (p != INDEX, p.clone()));
    if paths.len() > MAX_INVALIDATION_PATHS {
        return vec!["/*".to_owned()];
    }
    paths
}
