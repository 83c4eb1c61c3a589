//! Region throughput on the embedded store next to a bare axum handler on the same machine.
//!
//! `cargo bench -p tandem-api --bench throughput` prints requests/s and latency percentiles for
//! GET and PUT, each against Tandem's full router (every middleware, redb, fsync on PUT) and
//! against a bare axum handler that answers the same shape from memory, and the ratio. Both
//! run in this process on 127.0.0.1 with the same client, concurrency and duration
//! (`BENCH_SECS`, default 5; `BENCH_CONCURRENCY`, default 32), seven rounds in turns
//! (`BENCH_ROUNDS`), and the median of the per-round ratios. Then PUT alone at 1, 8, 32 and
//! 128 clients: how throughput grows with concurrent writers when every 2xx waits for an fsync
//! (group commit: writers share one), against the 1-client rate of the same run; once on this
//! machine's disk, and once on a disk whose fsync takes 2 ms longer (the file backend, with a
//! sleep after each sync), closer to a cloud volume's than a local NVMe's.

mod common;

use axum::routing::get;
use axum::{Json, Router};
use common::{MakeRequest, load, serve, setting};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_shared::bench::{Goal, Row, thousands};

/// Rounds of Tandem-then-bare per operation (`BENCH_ROUNDS`).
const ROUNDS: usize = 7;

/// GET of the one item every bench run writes first.
fn get_one() -> MakeRequest {
    Arc::new(|client, base, _, _| client.get(format!("{base}/api/items/bench-read")))
}

/// PUT over 100 ids of each client's own.
fn put_own() -> MakeRequest {
    Arc::new(|client, base, worker, i| {
        client
            .put(format!("{base}/api/items/bench-{worker}-{}", i % 100))
            .json(&json!({"data": {"worker": worker, "i": i}}))
    })
}

fn bare() -> Router {
    let item = json!({"item": {"id": "bench-read", "data": {"x": 1}, "version": 1,
        "updated_at": "2026-11-27T00:00:00.000Z", "updated_in": "us-east-1"}, "region": "us-east-1"});
    let put_item = item.clone();
    Router::new().route(
        "/api/items/{id}",
        get(move || async move { Json(item.clone()) })
            .put(move || async move { (axum::http::StatusCode::CREATED, Json(put_item.clone())) }),
    )
}

fn main() {
    let secs: u64 = setting("SECS", 5);
    let concurrency: usize = setting("CONCURRENCY", 32);
    let round_count: usize = setting("ROUNDS", ROUNDS);
    common::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let config = tandem_api::Config {
            region: "us-east-1".into(),
            ..Default::default()
        };
        let tandem = serve(tandem_api::router(store.clone(), config)).await;
        let bare = serve(bare()).await;
        reqwest::Client::new()
            .put(format!("{tandem}/api/items/bench-read"))
            .json(&json!({"data": {"x": 1}}))
            .send()
            .await
            .unwrap();

        println!(
            "concurrency {concurrency}, {secs} s per run, {} cores",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
        println!(
            "{:<6} {:<22} {:>10} {:>9} {:>9} {:>7}",
            "op", "server", "req/s", "p50 ms", "p99 ms", "errors"
        );
        for (op, make) in [("GET", get_one()), ("PUT", put_own())] {
            // In turns, and the median of the per-round ratios: one run of either moves by
            // ±20 % with this machine's load, and single rounds' ratios ranged 0.6-1.05 on 2
            // cores (2026-11-28), so seven rounds, and their range printed beside the median.
            let mut rounds = Vec::new();
            for _ in 0..round_count {
                let t = load(&tandem, secs, concurrency, make.clone()).await;
                let b = load(&bare, secs, concurrency, make.clone()).await;
                for (name, f) in [("tandem (redb)", &t), ("bare axum handler", &b)] {
                    println!(
                        "{op:<6} {name:<22} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                        f.rps, f.p50_ms, f.p99_ms, f.errors
                    );
                }
                rounds.push((t.rps, b.rps));
            }
            rounds.sort_by(|x, y| (x.0 / x.1).total_cmp(&(y.0 / y.1)));
            let (t, b) = rounds[rounds.len() / 2];
            let ratio = |r: &(f64, f64)| r.0 / r.1;
            println!(
                "{op:<6} {:<22} {:>10.2}  (median of {round_count} rounds; {:.2}-{:.2})",
                "ratio tandem/bare",
                t / b,
                rounds.first().map_or(f64::NAN, ratio),
                rounds.last().map_or(f64::NAN, ratio),
            );
            if op == "GET" {
                Row::new(
                    format!("Region GET, full router on redb vs a bare axum handler ({concurrency} clients)"),
                    format!("{} req/s", thousands(t)),
                    format!("{} req/s", thousands(b)),
                    Some(t / b),
                    Goal::AtLeast(0.8),
                ).record();
            }
        }
        put_scaling("this machine's disk", &tandem, &store, secs).await;

        let slow_dir = tempfile::tempdir().unwrap();
        let slow =
            EmbeddedStore::open_with_backend(SlowSync::open(slow_dir.path()), "us-east-1").unwrap();
        let config = tandem_api::Config {
            region: "us-east-1".into(),
            ..Default::default()
        };
        let slow_url = serve(tandem_api::router(slow.clone(), config)).await;
        put_scaling("fsync + 2 ms", &slow_url, &slow, secs).await;
    });
}

/// redb's file backend with [`SlowSync::EXTRA`] added to every sync: a slower disk.
#[derive(Debug)]
struct SlowSync(redb::backends::FileBackend);

impl SlowSync {
    const EXTRA: Duration = Duration::from_millis(2);

    fn open(dir: &std::path::Path) -> SlowSync {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("slow.redb"))
            .unwrap();
        SlowSync(redb::backends::FileBackend::new(file).unwrap())
    }
}

impl redb::StorageBackend for SlowSync {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.0.read(offset, len)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
        self.0.sync_data(eventual)?;
        std::thread::sleep(Self::EXTRA);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
}

/// PUT at 1, 8, 32 and 128 clients, each writing ids of its own: requests/s, latency, the
/// ratio to the 1-client rate, and how many writes shared each commit (one fsync each).
async fn put_scaling(disk: &str, tandem: &str, store: &EmbeddedStore, secs: u64) {
    const SUMMARY_CLIENTS: usize = 32;
    println!("\nPUT by concurrent clients, {disk} (fsync before every 2xx), {secs} s per run");
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>7} {:>12} {:>13}",
        "clients", "req/s", "p50 ms", "p99 ms", "errors", "x 1 client", "writes/fsync"
    );
    let mut one_client = None;
    for clients in [1, 8, SUMMARY_CLIENTS, 128] {
        let before = store.commit_stats();
        let f = load(tandem, secs, clients, put_own()).await;
        let after = store.commit_stats();
        let commits = (after.commits - before.commits).max(1);
        let per_fsync = (after.writes - before.writes) as f64 / commits as f64;
        let base = *one_client.get_or_insert(f.rps);
        println!(
            "{clients:<8} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>12.2} {per_fsync:>13.1}",
            f.rps,
            f.p50_ms,
            f.p99_ms,
            f.errors,
            f.rps / base
        );
        if clients == SUMMARY_CLIENTS {
            Row::new(
                format!("Region PUT (fsync before the 2xx), {clients} clients vs 1 client, {disk}"),
                format!("{} req/s", thousands(f.rps)),
                format!("{} req/s", thousands(base)),
                Some(f.rps / base),
                Goal::AtLeast(8.0),
            )
            .record();
        }
    }
}
