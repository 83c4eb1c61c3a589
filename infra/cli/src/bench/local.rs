//! The figures measured on one local stack: replication lag at a steady write rate, failover
//! added latency per fault mode, convergence after a region's stop, and edge throughput.

use super::BenchArgs;
use super::stack::{
    Stack, added_cell, control, converged, failover_rows, get_ms, pct, steady_writes,
};
use std::time::{Duration, Instant};
use tandem_shared::bench::{Goal, Row, thousands};
use tandem_shared::control::RegionState;
use tandem_shared::item::Data;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::wire::path;

/// A figure in milliseconds, or "-" when there is none.
fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Issue 13's goals for figures that have no second program to compare with.
const LAG_GOAL_MS: f64 = 10.0;
const CONVERGENCE_GOAL_MS: f64 = 250.0;

/// Lag from us-east-1 to us-west-2 under `--writes-per-sec` for `--lag-secs`, as the
/// replication figures of the control API report it once the secondary has caught up.
pub(super) async fn replication_lag(
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
    let primary = s.items_in(http.clone(), PRIMARY)?;
    let id = |i: u64| format!("lag-{}", i % 5000);
    let ok = steady_writes(&primary, args.writes_per_sec, total, id).await;
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

/// Time from a stopped region answering again to both regions agreeing (issue 13, item 4).
/// us-west-2 is stopped for `outage` while us-east-1 takes writes (its puller towards us-west-2
/// fails meanwhile and backs off); as soon as us-west-2 accepts connections again it takes one
/// write of its own, and the figure runs until each region holds the other's writes.
pub(super) async fn peer_restart(
    s: &Stack,
    http: &reqwest::Client,
    outage: Duration,
) -> anyhow::Result<()> {
    println!(
        "\n## Convergence after {SECONDARY} comes back from a {} s stop",
        outage.as_secs()
    );
    let control = control(s);
    converged(&control, "the restart").await?;
    control.set_region(SECONDARY, RegionState::Stopped).await?;
    let (east, west) = (
        s.items_in(http.clone(), PRIMARY)?,
        s.items_in(http.clone(), SECONDARY)?,
    );
    let data = Data::new();
    for i in 0..100 {
        let r = east.put(&format!("restart-{i}"), &data, None).await?;
        anyhow::ensure!(r.is_success(), "PUT into {PRIMARY}: {}", r.status);
    }
    // The outage itself: long enough for the primary's puller to reach its longest back-off.
    tokio::time::sleep(outage).await;
    control.set_region(SECONDARY, RegionState::Up).await?;
    let answering = Instant::now();
    let r = west.put("restart-back", &data, None).await?;
    anyhow::ensure!(r.is_success(), "PUT into {SECONDARY}: {}", r.status);
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

/// The failover rows ([`failover_rows`]) through the edge, as a table.
pub(super) async fn failover_latency(
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

/// `concurrency` clients GETting `url` back to back for `secs`: (req/s, p50 ms, p99 ms,
/// requests not answered 200).
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
                let (ms, status) = get_ms(&http, &url).await;
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

/// GET throughput through the edge, healthy and then with the primary stopped (it stays
/// stopped: this is the last figure on its stack).
pub(super) async fn edge_throughput(
    s: &Stack,
    http: &reqwest::Client,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    println!(
        "\n## Edge throughput, GET, {} clients, {} s per run",
        args.concurrency, args.throughput_secs
    );
    let data = Data::from_iter([("x".to_owned(), 1.into())]);
    s.items(http.clone()).put("tp", &data, None).await?;
    // The throughput loop GETs a URL built once (see `stack`'s doc: not the item client).
    let url = format!("{}{}", s.edge, path::item("tp"));
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
