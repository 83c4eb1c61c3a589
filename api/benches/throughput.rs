//! Region throughput on the embedded store next to a bare axum handler on the same machine.
//!
//! `cargo bench -p tandem-api --bench throughput` prints requests/s and latency percentiles for
//! GET and PUT, each against Tandem's full router (every middleware, redb, fsync on PUT) and
//! against a bare axum handler that answers the same shape from memory, and the ratio. Both
//! run in this process on 127.0.0.1 with the same client, concurrency and duration
//! (`BENCH_SECS`, default 5; `BENCH_CONCURRENCY`, default 32). Then PUT alone at 1, 8, 32 and
//! 128 clients: how throughput grows with concurrent writers when every 2xx waits for an fsync
//! (group commit: writers share one), against the 1-client rate of the same run; once on this
//! machine's disk, and once on a disk whose fsync takes 2 ms longer (the file backend, with a
//! sleep after each sync), closer to a cloud volume's than a local NVMe's.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::{Duration, Instant};
use tandem_api::store::embedded::EmbeddedStore;

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn load(base: &str, put: bool, secs: u64, concurrency: usize) -> Figures {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, base) = (client.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                let r = if put {
                    i += 1;
                    client
                        .put(format!("{base}/api/items/bench-{worker}-{}", i % 100))
                        .json(&json!({"data": {"worker": worker, "i": i}}))
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{base}/api/items/bench-read"))
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(started.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    Figures {
        rps: all.len() as f64 / secs as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
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
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
        for (op, put) in [("GET", false), ("PUT", true)] {
            let t = load(&tandem, put, secs, concurrency).await;
            let b = load(&bare, put, secs, concurrency).await;
            for (name, f) in [("tandem (redb)", &t), ("bare axum handler", &b)] {
                println!(
                    "{op:<6} {name:<22} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                    f.rps, f.p50_ms, f.p99_ms, f.errors
                );
            }
            println!(
                "{op:<6} {:<22} {:>10.2}",
                "ratio tandem/bare",
                t.rps / b.rps
            );
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
    println!("\nPUT by concurrent clients, {disk} (fsync before every 2xx), {secs} s per run");
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>7} {:>12} {:>13}",
        "clients", "req/s", "p50 ms", "p99 ms", "errors", "x 1 client", "writes/fsync"
    );
    let mut one_client = None;
    for clients in [1, 8, 32, 128] {
        let before = store.commit_stats();
        let f = load(tandem, true, secs, clients).await;
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
    }
}
