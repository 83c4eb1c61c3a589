//! What the region benches share: serving a router on 127.0.0.1, a closed-loop load of
//! concurrent clients, and this process's memory.

// Compiled into each bench, which uses a part of it.
#![allow(dead_code)]

use axum::Router;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Figures {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// Builds request number `i` of client `worker` against `base`.
pub type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, &str, usize, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// The multi-threaded runtime every bench runs in, as the region binary does.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// `concurrency` clients, each sending its next request as soon as the last one answered, for
/// `secs`: requests/s of 2xx answers, their latency, and how many were not 2xx.
pub async fn load(base: &str, secs: u64, concurrency: usize, make: MakeRequest) -> Figures {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, base, make) = (client.clone(), base.to_owned(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let started = Instant::now();
                match make(&client, &base, worker, i).send().await {
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
        tandem_shared::stats::percentile(&all, p)
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

/// `rounds` runs of [`load`] one after the other, and the one with the median throughput: one
/// run moves by ±20 % with this machine's load.
pub async fn median_load(
    rounds: usize,
    base: &str,
    secs: u64,
    concurrency: usize,
    make: MakeRequest,
) -> Figures {
    let mut runs = Vec::new();
    for _ in 0..rounds.max(1) {
        runs.push(load(base, secs, concurrency, make.clone()).await);
    }
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs.swap_remove(runs.len() / 2)
}

/// A `VmRSS`/`VmHWM`-style field of this process, in MiB (0 where /proc has none).
pub fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `BENCH_<name>` from the environment, or `default`.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(format!("BENCH_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
