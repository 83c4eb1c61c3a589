//! How cost grows with data (issue 13, item 8): the embedded store holding 10 k, 100 k and
//! 1 M items.
//!
//! `cargo bench -p tandem-api --bench scale` runs each size in a process of its own (so its
//! memory is its own): it loads the items into a fresh store in pages of 5,000 replicated
//! records (as a resync applies them, one durable transaction each), then drives the full
//! router for `BENCH_SECS` (default 5) with `BENCH_CONCURRENCY` clients (default 32), three
//! times each, keeping the median run: GET of random ids, and list pages of 100 starting at
//! random ids. It prints requests/s, latency,
//! the process's peak memory and the file's size, each against the smallest size.
//! `BENCH_SCALE_MAX` caps the sizes (default 1,000,000).
//!
//! Each size runs twice: with the region's page cache bounded as `tandem region` bounds it
//! ([`DEFAULT_CACHE_MIB`]) and with redb's own default (1 GiB, what regions used before the
//! bound), so the summary says what the bound costs GET and list at the largest size.

mod common;

use base64::Engine as _;
use common::{Figures, MakeRequest, median_load, serve, setting};
use std::sync::Arc;
use std::time::Instant;
use tandem_api::store::embedded::{DEFAULT_CACHE_MIB, EmbeddedStore};
use tandem_shared::Record;
use tandem_shared::bench::{Goal, Row, thousands};

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];
const PAGE: u64 = 5_000;
/// Runs per size and operation, of which the median counts: single runs of the same size moved
/// by ±20 %, enough to flip a 0.8 goal (2026-11-28).
const ROUNDS: usize = 3;
/// Set in the child process: the one size it measures.
const ONE: &str = "BENCH_SCALE_ONE";
/// Set in the child process: its store's page cache, in MiB.
const CACHE: &str = "BENCH_SCALE_CACHE_MIB";
/// redb's default page cache (1 GiB per database), the unbounded reference.
const REDB_DEFAULT_CACHE_MIB: usize = 1024;

/// What one size measured, one line of the child's output (after [`MARK`]).
const MARK: &str = "scale-figures ";

fn main() {
    let cache = std::env::var(CACHE).ok().and_then(|v| v.parse().ok());
    match std::env::var(ONE).ok().and_then(|v| v.parse().ok()) {
        Some(n) => measure(n, cache.unwrap_or(DEFAULT_CACHE_MIB)),
        None => parent(),
    }
}

/// Runs each size and cache in a child and prints the table; then the summary rows.
fn parent() {
    let max: u64 = setting("SCALE_MAX", 1_000_000);
    println!(
        "{:>9} {:>9} {:>8} {:>11} {:>8} {:>8} {:>11} {:>8} {:>9} {:>9} {:>8}",
        "items",
        "cache MiB",
        "load s",
        "GET req/s",
        "p50 ms",
        "p99 ms",
        "list req/s",
        "p99 ms",
        "peak MiB",
        "file MiB",
        "errors"
    );
    let sizes: Vec<u64> = SIZES.into_iter().filter(|n| *n <= max).collect();
    let mut bounded = Vec::new();
    let mut unbounded = Vec::new();
    for &n in &sizes {
        bounded.push(child(n, DEFAULT_CACHE_MIB));
        unbounded.push(child(n, REDB_DEFAULT_CACHE_MIB));
    }
    let (Some(big), Some(small)) = (bounded.last(), bounded.first()) else {
        return;
    };
    let n = sizes[sizes.len() - 1];
    if n > SIZES[0] {
        for (what, i) in OPERATIONS {
            row(
                format!(
                    "Region {what}, {} items vs {}",
                    thousands(n as f64),
                    thousands(SIZES[0] as f64)
                ),
                big[i],
                small[i],
            );
        }
    }
    if let Some(reference) = unbounded.last() {
        for (what, i) in OPERATIONS {
            row(
                format!(
                    "Region {what}, {} items, cache {DEFAULT_CACHE_MIB} MiB vs redb's 1 GiB",
                    thousands(n as f64)
                ),
                big[i],
                reference[i],
            );
        }
    }
}

/// The summary's operations, with their column in a child's figures.
const OPERATIONS: [(&str, usize); 2] = [("GET of random ids", 1), ("list pages of 100", 4)];

/// One size with one cache, in a child process (its memory is its own): its figures, printed
/// as a line of the table.
fn child(n: u64, cache_mib: usize) -> Vec<f64> {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(ONE, n.to_string())
        .env(CACHE, cache_mib.to_string())
        .output()
        .expect("running the scale bench's child");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix(MARK)) else {
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        panic!("the {n}-item run printed no figures");
    };
    let f: Vec<f64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
    println!(
        "{:>9} {:>9} {:>8.1} {:>11.0} {:>8.2} {:>8.2} {:>11.0} {:>8.2} {:>9.1} {:>9.1} {:>8.0}",
        thousands(n as f64),
        cache_mib,
        f[0],
        f[1],
        f[2],
        f[3],
        f[4],
        f[5],
        f[6],
        f[7],
        f[8]
    );
    f
}

/// A summary row: requests/s against the reference's, goal at least 0.8 of it.
fn row(measure: String, rps: f64, reference: f64) {
    Row::new(
        measure,
        format!("{} req/s", thousands(rps)),
        format!("{} req/s", thousands(reference)),
        Some(rps / reference),
        Goal::AtLeast(0.8),
    )
    .record();
}

/// One size, in this (child) process: load, serve, measure, print one [`MARK`] line.
fn measure(n: u64, cache_mib: usize) {
    let secs: u64 = setting("SECS", 5);
    let concurrency: usize = setting("CONCURRENCY", 32);
    common::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(
            dir.path(),
            "us-east-1",
            cache_mib,
            tandem_api::store::now_ms,
        )
        .unwrap();
        let started = Instant::now();
        for first in (0..n).step_by(PAGE as usize) {
            let page: Vec<Record> = (first..(first + PAGE).min(n)).map(record).collect();
            store.apply_records(&page).unwrap();
        }
        let load_s = started.elapsed().as_secs_f64();
        let config = tandem_api::Config {
            region: "us-east-1".into(),
            ..Default::default()
        };
        let base = serve(tandem_api::router(store.clone(), config)).await;
        let get = median_load(ROUNDS, &base, secs, concurrency, random_get(n)).await;
        let list = median_load(ROUNDS, &base, secs, concurrency, random_list(n)).await;
        let file_mib = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>() as f64
            / (1024.0 * 1024.0);
        let Figures { errors: e1, .. } = get;
        let Figures { errors: e2, .. } = list;
        println!(
            "{MARK}{load_s} {} {} {} {} {} {} {file_mib} {}",
            get.rps,
            get.p50_ms,
            get.p99_ms,
            list.rps,
            list.p99_ms,
            common::memory_mib("VmHWM:"),
            e1 + e2
        );
    });
}

fn id(i: u64) -> String {
    format!("item-{i:07}")
}

/// Item `i`: about 100 bytes of data, replicated from us-west-2.
fn record(i: u64) -> Record {
    let data =
        serde_json::json!({"i": i, "name": format!("item number {i}"), "tags": ["scale", "bench"]});
    Record {
        id: id(i),
        data: tandem_shared::item::Data::try_from(data).ok(),
        version: 1,
        updated_at_ms: 1_780_000_000_000 + i,
        updated_in: "us-west-2".into(),
    }
}

/// A well-spread id in `0..n` for request `i` of `worker`.
fn spread(worker: usize, i: u64, n: u64) -> u64 {
    tandem_shared::rng::nth((worker as u64) << 40, i) % n
}

fn random_get(n: u64) -> MakeRequest {
    Arc::new(move |client, base, worker, i| {
        client.get(format!("{base}/api/items/{}", id(spread(worker, i, n))))
    })
}

/// A page of 100 after a random id (the cursor the API would have returned there).
fn random_list(n: u64) -> MakeRequest {
    Arc::new(move |client, base, worker, i| {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id(spread(worker, i, n)));
        client.get(format!("{base}/api/items?limit=100&cursor={cursor}"))
    })
}
