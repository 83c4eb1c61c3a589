//! What the bench's figures share: a stack of their own (`tandem up` on free ports), its
//! control client, steady writes, and the failover rows that both the local figures and the
//! nginx comparison measure.

use super::BenchArgs;
use serde_json::json;
use std::time::{Duration, Instant};
use tandem_ops::client::ControlClient;
use tandem_ops::launch::Launch;
use tandem_shared::control::{EdgeSettings, Outage, ReplicationPatch};
use tandem_shared::region::PRIMARY;

pub use tandem_ops::launch::Stack;

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

/// Replication paused or resumed, the rest of the stack's replication settings left as they are.
pub fn paused(paused: bool) -> ReplicationPatch {
    ReplicationPatch {
        paused: Some(paused),
        lag_ms: None,
    }
}

/// A percentile of sorted figures, NaN when there are none (printed as such).
pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    tandem_shared::stats::percentile(sorted, p).unwrap_or(f64::NAN)
}

/// A GET's milliseconds, its status (0: no answer) and why the edge failed it over, if it
/// did; the body is read to its end, as a client would.
pub(super) async fn get_ms(http: &reqwest::Client, url: &str) -> (f64, u16, Option<String>) {
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
pub(super) async fn converged(control: &ControlClient, before: &str) -> anyhow::Result<()> {
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
