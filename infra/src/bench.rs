//! `tandem bench`: figures for the local stack, measured on a stack it starts itself.
//!
//! 1. Replication lag (p50/p99/max) at a steady 1,000 writes/s into the primary.
//! 2. Failover added latency per fault mode: GET through the edge with the primary faulted,
//!    minus GET through the edge while healthy, with the edge's deployed defaults.
//! 3. Edge throughput (GET, closed loop) healthy and with the primary stopped.
//!
//! Not a test: it prints figures and asserts nothing about time.

use crate::settings::EdgeSettings;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags of `tandem bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds of steady writes for the replication-lag figure.
    #[arg(long, default_value_t = 10)]
    pub lag_secs: u64,
    /// Writes per second for the replication-lag figure.
    #[arg(long, default_value_t = 1000)]
    pub writes_per_sec: u64,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 5)]
    pub throughput_secs: u64,
    /// Concurrent clients per throughput run.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// GETs per fault mode for the failover figure (timeouts cost the read timeout each).
    #[arg(long, default_value_t = 5)]
    pub failover_samples: usize,
    #[command(flatten)]
    pub edge: EdgeSettings,
}

struct Stack {
    child: Child,
    edge: String,
    east: String,
    token: String,
    secret: String,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(pid) = self.child.id().try_into() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
    }
}

fn free_base() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if base < 60000
            && (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return Ok(base);
        }
    }
    bail!("no three consecutive free ports")
}

async fn start(edge: &EdgeSettings) -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let base = free_base()?;
    let (token, secret) = (crate::up::random_token(), crate::up::random_token());
    let child = Command::new(std::env::current_exe()?)
        .args([
            "up",
            "--port",
            &base.to_string(),
            "--admin-token",
            &token,
            "--origin-secret",
            &secret,
        ])
        .args([
            "--connection-attempts",
            &edge.connection_attempts.to_string(),
        ])
        .args(["--connection-timeout", &edge.connection_timeout.to_string()])
        .args([
            "--origin-read-timeout",
            &edge.origin_read_timeout.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .context("starting tandem up")?;
    let stack = Stack {
        child,
        edge: format!("http://127.0.0.1:{base}"),
        east: format!("http://127.0.0.1:{}", base + 1),
        token,
        secret,
        _dir: dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http
            .get(format!("{}/api/health", stack.edge))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(stack);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("tandem up did not start")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn get_ms(http: &reqwest::Client, url: &str) -> (f64, u16, Option<String>) {
    let started = Instant::now();
    match http.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let reason = r
                .headers()
                .get("x-edge-failover")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = r.bytes().await;
            (started.elapsed().as_secs_f64() * 1000.0, status, reason)
        }
        Err(_) => (started.elapsed().as_secs_f64() * 1000.0, 0, None),
    }
}

async fn replication_lag(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    println!(
        "\n## Replication lag, {} writes/s into us-east-1 for {} s",
        args.writes_per_sec, args.lag_secs
    );
    let total = args.writes_per_sec * args.lag_secs;
    let mut tick = tokio::time::interval(Duration::from_micros(
        1_000_000 / args.writes_per_sec.max(1),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (http, url, secret) = (
            http.clone(),
            format!("{}/api/items/lag-{}", s.east, i % 5000),
            s.secret.clone(),
        );
        tasks.spawn(async move {
            http.put(url)
                .header("x-origin-verify", secret)
                .json(&json!({"data": {"i": i}}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
    }
    let mut ok = 0u64;
    while let Some(r) = tasks.join_next().await {
        ok += u64::from(r.unwrap_or(false));
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Wait for the secondary to catch up, then read the pair's figures.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pair = loop {
        let v: Value = http
            .get(format!("{}/_tandem/replication", s.edge))
            .bearer_auth(&s.token)
            .send()
            .await?
            .json()
            .await?;
        let pair = v["pairs"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["from"] == "us-east-1").cloned())
            .unwrap_or_default();
        if pair["pending"] == 0 && pair["applied"].as_u64() >= Some(ok) || Instant::now() > deadline
        {
            break pair;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "writes acknowledged: {ok} of {total} in {elapsed:.1} s ({:.0}/s)",
        ok as f64 / elapsed
    );
    println!(
        "us-east-1 -> us-west-2 lag: p50 {} ms, p99 {} ms, max {} ms (last {} writes; AWS: \"typically within a second\")",
        pair["lag_p50_ms"], pair["lag_p99_ms"], pair["lag_max_ms"], pair["samples"]
    );
    Ok(())
}

async fn failover_latency(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    println!(
        "\n## Failover added latency (GET through the edge; {} attempt(s) x {} s connect, {} s read timeout)",
        args.edge.connection_attempts, args.edge.connection_timeout, args.edge.origin_read_timeout
    );
    let url = format!("{}/api/items/fo", s.edge);
    http.put(&url).json(&json!({"data": {}})).send().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut healthy = Vec::new();
    for _ in 0..50 {
        healthy.push(get_ms(http, &url).await.0);
    }
    healthy.sort_by(f64::total_cmp);
    let base = pct(&healthy, 0.5);
    println!(
        "{:<22} {:>10} {:>12} {:>10}  reason",
        "primary fault", "p50 ms", "added ms", "status"
    );
    println!(
        "{:<22} {:>10.2} {:>12} {:>10}",
        "none (healthy)", base, "-", 200
    );
    let admin = format!("{}/region/us-east-1/api/admin/fault", s.edge);
    let modes: [(&str, Value); 8] = [
        ("error 500", json!({"mode": "error", "status": 500})),
        ("error 502", json!({"mode": "error", "status": 502})),
        ("error 503", json!({"mode": "error", "status": 503})),
        ("error 504", json!({"mode": "error", "status": 504})),
        (
            "slow > read timeout",
            json!({"mode": "slow", "latency_ms": u64::from(args.edge.origin_read_timeout) * 1000 + 2000}),
        ),
        ("stopped", json!("stopped")),
        ("crashed", json!("crashed")),
        ("blackhole", json!("blackhole")),
    ];
    for (name, fault) in modes {
        let region_state = fault.as_str().map(str::to_owned);
        match &region_state {
            Some(state) => {
                http.put(format!("{}/_tandem/regions/us-east-1", s.edge))
                    .bearer_auth(&s.token)
                    .json(&json!({"state": state}))
                    .send()
                    .await?;
            }
            None => {
                http.put(&admin)
                    .bearer_auth(&s.token)
                    .json(&fault)
                    .send()
                    .await?;
            }
        }
        let mut samples = Vec::new();
        let mut last = (0, None);
        for _ in 0..args.failover_samples {
            let (ms, status, reason) = get_ms(http, &url).await;
            samples.push(ms);
            last = (status, reason);
        }
        samples.sort_by(f64::total_cmp);
        let p50 = pct(&samples, 0.5);
        println!(
            "{name:<22} {p50:>10.2} {:>12.2} {:>10}  {}",
            p50 - base,
            last.0,
            last.1.unwrap_or_default()
        );
        match region_state {
            Some(_) => {
                http.put(format!("{}/_tandem/regions/us-east-1", s.edge))
                    .bearer_auth(&s.token)
                    .json(&json!({"state": "up"}))
                    .send()
                    .await?;
            }
            None => {
                http.put(&admin)
                    .bearer_auth(&s.token)
                    .json(&json!({"mode": "none"}))
                    .send()
                    .await?;
            }
        }
    }
    Ok(())
}

async fn throughput(url: &str, secs: u64, concurrency: usize) -> (f64, f64, f64, usize) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let (ms, status, _) = get_ms(&http, &url).await;
                if status == 200 {
                    lat.push(ms)
                } else {
                    errors += 1
                }
            }
            (lat, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(Ok((lat, e))) = tasks.join_next().await {
        all.extend(lat);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    (
        all.len() as f64 / secs as f64,
        pct(&all, 0.5),
        pct(&all, 0.99),
        errors,
    )
}

async fn edge_throughput(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    println!(
        "\n## Edge throughput, GET, {} clients, {} s per run",
        args.concurrency, args.throughput_secs
    );
    let url = format!("{}/api/items/tp", s.edge);
    http.put(&url)
        .json(&json!({"data": {"x": 1}}))
        .send()
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "{:<18} {:>10} {:>9} {:>9} {:>7}",
        "primary", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let (rps, p50, p99, e) = throughput(&url, args.throughput_secs, args.concurrency).await;
    println!("{:<18} {rps:>10.0} {p50:>9.2} {p99:>9.2} {e:>7}", "healthy");
    http.put(format!("{}/_tandem/regions/us-east-1", s.edge))
        .bearer_auth(&s.token)
        .json(&json!({"state": "stopped"}))
        .send()
        .await?;
    let (rps, p50, p99, e) = throughput(&url, args.throughput_secs, args.concurrency).await;
    println!("{:<18} {rps:>10.0} {p50:>9.2} {p99:>9.2} {e:>7}", "stopped");
    Ok(())
}

/// Runs every figure on a fresh local stack.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let stack = start(&args.edge).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    println!(
        "# tandem bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    replication_lag(&stack, &http, &args).await?;
    failover_latency(&stack, &http, &args).await?;
    edge_throughput(&stack, &http, &args).await?;
    Ok(())
}
