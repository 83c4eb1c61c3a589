//! What the bench's figures share: a stack of their own (`tandem up` on free ports), its
//! control client, steady writes, and the failover rows that both the local figures and the
//! nginx comparison measure.
//!
//! Items are written and read through the item client ([`ItemClient`]), except in the
//! throughput loops ([`get_ms`], and `wrk` in the nginx comparison), which send plain GETs to a
//! URL built once from the path builder ([`tandem_shared::wire::path`]): a closed loop on the
//! machine that also runs the stack must spend nothing per request that a plain client would
//! not, and the client's decoded answer is such a cost.

use super::BenchArgs;
use std::time::{Duration, Instant};
use tandem_ops::client::ControlClient;
use tandem_ops::items::ItemClient;
use tandem_ops::launch::Launch;
use tandem_shared::control::{EdgeSettings, Outage};
use tandem_shared::item::Data;
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

/// A percentile of sorted figures, NaN when there are none (printed as such).
pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    tandem_shared::stats::percentile(sorted, p).unwrap_or(f64::NAN)
}

/// A GET's milliseconds and its status (0: no answer), for the throughput loop: a plain GET
/// of a URL built once, its body read to its end, as a plain client would (see the module's
/// doc for why not the item client).
pub(super) async fn get_ms(http: &reqwest::Client, url: &str) -> (f64, u16) {
    let started = Instant::now();
    match http.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            (started.elapsed().as_secs_f64() * 1000.0, status)
        }
        Err(_) => (started.elapsed().as_secs_f64() * 1000.0, 0),
    }
}

/// `total` PUTs of `{"i": i}` into the ids `id(i)` at a steady `rate` per second (open loop: a
/// slow answer does not slow the next write); how many were acknowledged.
pub async fn steady_writes(
    items: &ItemClient,
    rate: u64,
    total: u64,
    id: impl Fn(u64) -> String,
) -> u64 {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (items, id) = (items.clone(), id(i));
        tasks.spawn(async move {
            let data = Data::from_iter([("i".to_owned(), i.into())]);
            let answer = items.put(&id, &data, None).await;
            answer.is_ok_and(|a| a.is_success())
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
    let items = ItemClient::new(http.clone(), base);
    let control = control(s);
    let put = s.items(http.clone()).put("fo", &Data::new(), None).await?;
    anyhow::ensure!(put.is_success(), "PUT fo: {}", put.status);
    converged(&control, "the healthy row").await?;
    let mut healthy = Vec::new();
    for _ in 0..50 {
        healthy.push(get_fo(&items).await.0);
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
            let (ms, ok) = get_fo(&items).await;
            samples.push(ms);
            answered += usize::from(ok);
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

/// A failover row's sample: the milliseconds of `GET fo` until its body was in (no answer
/// included), and whether it was answered 200.
async fn get_fo(items: &ItemClient) -> (f64, bool) {
    match items.get("fo").await {
        Ok(answer) => (ms_of(answer.latency), answer.status == 200),
        Err(failed) => (ms_of(failed.latency), false),
    }
}

fn ms_of(latency: Duration) -> f64 {
    latency.as_secs_f64() * 1000.0
}
