//! `tandem bench`: figures for the local stack, measured on a stack it starts itself.
//!
//! 1. Replication lag (p50/p99/max) at a steady 1,000 writes/s into the primary.
//! 2. Failover added latency per fault mode: GET through the edge with the primary faulted,
//!    minus GET through the edge while healthy, with the edge's deployed defaults.
//! 3. Convergence after a region comes back from a stop.
//! 4. Edge throughput (GET, closed loop) healthy and with the primary stopped.
//! 5. Recovery ([`crate::bench_recovery`]): a 200 MB backlog's catch-up time and peak memory,
//!    catch-up after a 60 s partition at 1,000 writes/s, and the time a region that lost its disk takes to match its peer again.
//!
//! Not a test: it prints figures and asserts nothing about time. Rows with a goal (issue 13)
//! also go to `cargo xtask bench`'s summary ([`tandem_shared::bench`]).

use anyhow::{Context as _, anyhow};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tandem_local::client::ControlClient;
use tandem_local::launch::Launch;
use tandem_shared::bench::{Goal, Row, thousands};
use tandem_shared::control::EdgeSettings;
use tandem_shared::control::{Outage, RegionState};
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_testkit::Moto;

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
    /// Also compare: the edge with nginx (needs nginx and wrk), Lambda init with a hello world
    /// (needs `moto_server` and the release binaries), and the console's size (needs brotli).
    #[arg(long)]
    pub compare: bool,
    /// moto's server, for the Lambda init stand-in.
    #[arg(long, env = "TANDEM_MOTO_SERVER", default_value = "moto_server")]
    pub moto_server: PathBuf,
    /// The built console, for its size.
    #[arg(long, default_value = "frontend/dist")]
    pub console_dir: PathBuf,
    /// MB of 400 KB items for the replication catch-up figure (0: skip it).
    #[arg(long, default_value_t = 200)]
    pub backlog_mb: u64,
    /// Seconds of a replication partition at `--writes-per-sec` for the catch-up figure
    /// (0: skip it).
    #[arg(long, default_value_t = 60)]
    pub partition_secs: u64,
    /// Items in us-east-1 for the lost-disk figure (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    pub disk_loss_items: u64,
    /// Only the attack figures ([`crate::bench_attacks`]), at the sizes below.
    #[arg(long)]
    pub attacks: bool,
    #[command(flatten)]
    pub attack: crate::bench_attacks::AttackArgs,
}

pub use tandem_local::launch::Stack;

/// Starts `tandem up` (this binary) on free ports with the given edge settings and more flags.
pub async fn start(edge: &EdgeSettings, extra: &[&str]) -> anyhow::Result<Stack> {
    let mut launch = Launch::new(std::env::current_exe()?);
    launch.edge = *edge;
    launch.extra = extra.iter().map(|s| (*s).to_owned()).collect();
    launch.start().await
}

/// A control client for `s` with the bench's patience.
pub fn control(s: &Stack) -> ControlClient {
    s.control(Duration::from_secs(30))
}

/// A figure in milliseconds, or "-" when there is none.
fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A percentile of sorted figures, NaN when there are none (printed as such).
fn pct(sorted: &[f64], p: f64) -> f64 {
    tandem_shared::stats::percentile(sorted, p).unwrap_or(f64::NAN)
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
    let started = Instant::now();
    let url = |i: u64| format!("{}/api/items/lag-{}", s.regions[PRIMARY], i % 5000);
    let ok = steady_writes(s, http, args.writes_per_sec, total, url).await;
    let elapsed = started.elapsed().as_secs_f64();
    // Wait for the secondary to catch up, then read the pair's figures.
    let deadline = Instant::now() + Duration::from_secs(30);
    let control = control(s);
    let pair = loop {
        let pairs = control.replication().await?.pairs;
        let pair = pairs
            .into_iter()
            .find(|p| p.from == PRIMARY)
            .unwrap_or_default();
        if pair.pending == 0 && pair.applied >= ok || Instant::now() > deadline {
            break pair;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "writes acknowledged: {ok} of {total} in {elapsed:.1} s ({:.0}/s)",
        ok as f64 / elapsed
    );
    println!(
        "{PRIMARY} -> {SECONDARY} lag: p50 {} ms, p99 {} ms, max {} ms (last {} writes; AWS: \"typically within a second\")",
        ms(pair.lag_p50_ms),
        ms(pair.lag_p99_ms),
        ms(pair.lag_max_ms),
        pair.samples
    );
    Row::new(
        format!(
            "Replication lag p99 at {} writes/s",
            thousands(args.writes_per_sec as f64)
        ),
        format!("{} ms", ms(pair.lag_p99_ms)),
        format!("{LAG_GOAL_MS} ms"),
        pair.lag_p99_ms.map(|p99| p99 as f64 / LAG_GOAL_MS),
        Goal::AtMost(1.0),
    )
    .record();
    Ok(())
}

/// `total` PUTs into the URLs `url(i)` at a steady `rate` per second (open loop: a slow answer
/// does not slow the next write); how many were acknowledged.
pub async fn steady_writes(
    s: &Stack,
    http: &reqwest::Client,
    rate: u64,
    total: u64,
    url: impl Fn(u64) -> String,
) -> u64 {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (http, url, secret) = (http.clone(), url(i), s.secret.clone());
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
    ok
}

/// Issue 13's goals for figures that have no second program to compare with.
const LAG_GOAL_MS: f64 = 10.0;
const CONVERGENCE_GOAL_MS: f64 = 250.0;

/// Time from a stopped region answering again to both regions agreeing (issue 13, item 4).
/// us-west-2 is stopped for `outage` while us-east-1 takes writes (its puller towards us-west-2
/// fails meanwhile and backs off); as soon as us-west-2 accepts connections again it takes one
/// write of its own, and the figure runs until each region holds the other's writes.
async fn peer_restart(s: &Stack, http: &reqwest::Client, outage: Duration) -> anyhow::Result<()> {
    println!(
        "\n## Convergence after {SECONDARY} comes back from a {} s stop",
        outage.as_secs()
    );
    let control = control(s);
    converged(&control, "the restart").await?;
    control.set_region(SECONDARY, RegionState::Stopped).await?;
    let put = |region: &str, id: String| {
        http.put(format!("{}/api/items/{id}", s.regions[region]))
            .header("x-origin-verify", s.secret.clone())
            .json(&json!({"data": {}}))
            .send()
    };
    for i in 0..100 {
        let r = put(PRIMARY, format!("restart-{i}")).await?;
        anyhow::ensure!(
            r.status().is_success(),
            "PUT into {PRIMARY}: {}",
            r.status()
        );
    }
    // The outage itself: long enough for the primary's puller to reach its longest back-off.
    tokio::time::sleep(outage).await;
    control.set_region(SECONDARY, RegionState::Up).await?;
    let answering = Instant::now();
    let r = put(SECONDARY, "restart-back".to_owned()).await?;
    anyhow::ensure!(
        r.status().is_success(),
        "PUT into {SECONDARY}: {}",
        r.status()
    );
    let agreed = control.until_agreed(Duration::from_secs(30)).await;
    let took = answering.elapsed().as_secs_f64() * 1000.0;
    let cell = if agreed {
        format!("{took:.0} ms")
    } else {
        "no agreement within 30 s".to_owned()
    };
    println!("from {SECONDARY} accepting connections to agreement: {cell} (polled every 20 ms)");
    Row::new(
        format!(
            "Convergence after a region comes back from a {} s stop",
            outage.as_secs()
        ),
        cell,
        format!("{CONVERGENCE_GOAL_MS:.0} ms"),
        agreed.then_some(took / CONVERGENCE_GOAL_MS),
        Goal::AtMost(1.0),
    )
    .record();
    Ok(())
}

/// One failover row: the added milliseconds, or why the row has no figure (some of its GETs
/// were not answered 200, so their latency is not a failover's).
pub type Added = Result<f64, String>;

/// The figure as a table cell: `12.34`, or `n/a (why)`.
pub fn added_cell(added: &Added) -> String {
    match added {
        Ok(ms) => format!("{ms:.2}"),
        Err(why) => format!("n/a ({why})"),
    }
}

/// Waits until both regions hold the same items: a row must not time a secondary that has not
/// received the item yet (it would answer 404, fast).
async fn converged(control: &ControlClient, before: &str) -> anyhow::Result<()> {
    if !control.until_agreed(Duration::from_secs(30)).await {
        anyhow::bail!("the regions did not converge within 30 s before {before}");
    }
    Ok(())
}

/// GET p50 through `base` per primary fault mode, minus the healthy p50: (mode, added ms). Each
/// row starts from converged regions, and a row whose GETs were not all answered 200 has no
/// figure.
pub async fn failover_rows(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
    base: &str,
) -> anyhow::Result<Vec<(String, Added)>> {
    let url = format!("{base}/api/items/fo");
    let control = control(s);
    let put = http
        .put(format!("{}/api/items/fo", s.edge))
        .json(&json!({"data": {}}))
        .send()
        .await?;
    anyhow::ensure!(put.status().is_success(), "PUT fo: {}", put.status());
    converged(&control, "the healthy row").await?;
    let mut healthy = Vec::new();
    for _ in 0..50 {
        healthy.push(get_ms(http, &url).await.0);
    }
    healthy.sort_by(f64::total_cmp);
    let healthy_p50 = pct(&healthy, 0.5);
    let slow = u64::from(args.edge.origin_read_timeout) * 1000 + 2000;
    let outages = [
        ("error 500", Outage::Error { status: 500 }),
        ("error 502", Outage::Error { status: 502 }),
        ("error 503", Outage::Error { status: 503 }),
        ("error 504", Outage::Error { status: 504 }),
        ("slow > read timeout", Outage::Slow { latency_ms: slow }),
        ("stopped", Outage::Stopped),
        ("crashed", Outage::Crashed),
        ("blackhole", Outage::Blackhole),
    ];
    let mut rows = vec![("none (healthy)".to_owned(), Ok(0.0))];
    for (name, outage) in outages {
        converged(&control, name).await?;
        control.inject(PRIMARY, outage, None).await?;
        let mut samples = Vec::new();
        let mut answered = 0;
        for _ in 0..args.failover_samples {
            let (ms, status, _) = get_ms(http, &url).await;
            samples.push(ms);
            answered += usize::from(status == 200);
        }
        samples.sort_by(f64::total_cmp);
        let added = match samples.len() - answered {
            0 => Ok(pct(&samples, 0.5) - healthy_p50),
            failed => Err(format!("{failed} of {} GETs not 200", samples.len())),
        };
        rows.push((name.to_owned(), added));
        control.clear(PRIMARY, outage).await?;
    }
    println!("  (healthy p50 through {base}: {healthy_p50:.2} ms)");
    Ok(rows)
}

async fn failover_latency(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    println!(
        "\n## Failover added latency (GET through the edge; {} attempt(s) x {} s connect, {} s read timeout; p50 of {} requests)",
        args.edge.connection_attempts,
        args.edge.connection_timeout,
        args.edge.origin_read_timeout,
        args.failover_samples
    );
    println!("{:<22} {:>12}", "primary fault", "added ms");
    for (name, added) in failover_rows(s, http, args, &s.edge.clone()).await? {
        println!("{name:<22} {:>12}", added_cell(&added));
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
    control(s).set_region(PRIMARY, RegionState::Stopped).await?;
    let (rps, p50, p99, e) = throughput(&url, args.throughput_secs, args.concurrency).await;
    println!("{:<18} {rps:>10.0} {p50:>9.2} {p99:>9.2} {e:>7}", "stopped");
    Ok(())
}

/// Runs every figure on a fresh local stack (or only the attack figures).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.attacks {
        return crate::bench_attacks::run(&args.edge, &args.attack).await;
    }
    let stack = start(&args.edge, &[]).await?;
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
    peer_restart(&stack, &http, Duration::from_secs(3)).await?;
    edge_throughput(&stack, &http, &args).await?;
    drop(stack);
    if args.backlog_mb > 0 {
        crate::bench_recovery::catch_up(&args.edge, args.backlog_mb).await?;
    }
    if args.partition_secs > 0 {
        crate::bench_recovery::partition(&args.edge, args.partition_secs, args.writes_per_sec)
            .await?;
    }
    if args.disk_loss_items > 0 {
        crate::bench_recovery::disk_loss(
            &args.edge,
            args.disk_loss_items,
            args.disk_loss_items / 10,
        )
        .await?;
    }
    if args.compare {
        crate::bench_compare::edge_vs_nginx(&args).await?;
        let moto = Moto::start_with(&args.moto_server).await.map_err(|e| {
            anyhow!(
                "starting {} ({e}); cargo xtask test installs moto",
                args.moto_server.display()
            )
        })?;
        let bins = std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .context("binary directory")?;
        crate::bench_compare::lambda_init(&bins, &moto.endpoint, 5).await?;
        crate::bench_compare::console_size(&args.console_dir)?;
    }
    Ok(())
}
