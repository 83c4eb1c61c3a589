//! `tandem bench` consistency figure (issue 28): what strong consistency costs against eventual,
//! with the distances of AWS's regions injected between the members. Each mode runs on a fresh
//! stack; in strong mode the consensus messages between members wait as long as a round trip
//! between the regions they stand for (us-east-1 ↔ us-west-2 65 ms, us-east-1 ↔ us-east-2
//! 12 ms, us-west-2 ↔ us-east-2 55 ms; contract §10.3). Eventual mode sends nothing to another
//! region before it answers, so the same delays would change none of its answers (only its
//! replication lag): the eventual runs are the reference of the same run.
//!
//! Per mode: one client writes then reads `samples` items in each region, one at a time
//! (latency p50/p99); then `clients` clients write, then read, in us-east-1 for `secs` seconds
//! each, as fast as they are answered (throughput). Requests go to each region's process
//! directly, past the edge, so the figures are the regions' own.

use super::stack::{self, pct};
use anyhow::bail;
use std::time::{Duration, Instant};
use tandem_ops::items::ItemClient;
use tandem_shared::Consistency;
use tandem_shared::bench::{Goal, Row};
use tandem_shared::control::EdgeSettings;
use tandem_shared::item::Data;
use tandem_shared::region::{DEFAULT_REGIONS, PRIMARY};

/// The injected round trips between members (`tandem up --link-delay-ms`).
pub const LINK_DELAYS: &str =
    "us-east-1/us-west-2=65,us-east-1/us-east-2=12,us-west-2/us-east-2=55";

/// What the figure measures, from `tandem bench`'s flags.
pub struct Plan {
    /// Sequential writes, then reads, per region.
    pub samples: usize,
    /// Concurrent clients of the throughput runs.
    pub clients: usize,
    /// Seconds of each throughput run.
    pub secs: u64,
}

/// One mode's figures: latencies (ms, sorted) per region and operation, and throughput.
struct Figures {
    mode: Consistency,
    leader: Option<String>,
    /// `(region, "PUT" | "GET", sorted ms)`.
    latency: Vec<(String, &'static str, Vec<f64>)>,
    /// `("PUT" | "GET", answers per second, sorted ms, failures)`.
    throughput: Vec<(&'static str, f64, Vec<f64>, u64)>,
}

/// Both modes, a table each, and the summary rows.
pub async fn strong_vs_eventual(edge: &EdgeSettings, plan: &Plan) -> anyhow::Result<()> {
    println!(
        "\n## Consistency: strong vs eventual, consensus round trips {LINK_DELAYS} (ms); \
         {} sequential writes then reads per region, then {} clients for {} s",
        plan.samples, plan.clients, plan.secs
    );
    let eventual = one_mode(edge, plan, Consistency::Eventual).await?;
    let strong = one_mode(edge, plan, Consistency::Strong).await?;
    println!("| mode | leader | region | op | p50 ms | p99 ms |");
    println!("|---|---|---|---|---:|---:|");
    for f in [&eventual, &strong] {
        let leader = f.leader.as_deref().unwrap_or("-");
        for (region, op, ms) in &f.latency {
            let (p50, p99) = (pct(ms, 0.50), pct(ms, 0.99));
            println!(
                "| {} | {leader} | {region} | {op} | {p50:.1} | {p99:.1} |",
                f.mode
            );
        }
    }
    println!(
        "\n| mode | op ({} clients, {PRIMARY}) | per s | p50 ms | p99 ms | failed |",
        plan.clients
    );
    println!("|---|---|---:|---:|---:|---:|");
    for f in [&eventual, &strong] {
        for (op, rate, ms, failed) in &f.throughput {
            let (p50, p99) = (pct(ms, 0.50), pct(ms, 0.99));
            println!(
                "| {} | {op} | {rate:.0} | {p50:.1} | {p99:.1} | {failed} |",
                f.mode
            );
        }
    }
    for (i, (op, _, _, _)) in strong.throughput.iter().enumerate() {
        let (s, e) = (strong.throughput[i].1, eventual.throughput[i].1);
        Row::new(
            format!(
                "{op}s per second at {} clients, strong vs eventual",
                plan.clients
            ),
            format!("{s:.0}/s strong"),
            format!("{e:.0}/s eventual"),
            Some(s / e),
            // No goal of speed: strong mode pays round trips by design. The row's goal is
            // that it serves at all under load.
            Goal::AtLeast(0.01),
        )
        .record();
    }
    Ok(())
}

/// A fresh stack in `mode`: latencies per region, then throughput in the primary.
async fn one_mode(edge: &EdgeSettings, plan: &Plan, mode: Consistency) -> anyhow::Result<Figures> {
    let mut flags = vec!["--consistency", mode.as_str()];
    if mode == Consistency::Strong {
        flags.extend(["--link-delay-ms", LINK_DELAYS]);
    }
    let s = stack::start(edge, &flags).await?;
    let leader = match mode {
        Consistency::Strong => Some(leader(&s).await?),
        Consistency::Eventual => None,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut latency = Vec::new();
    for region in DEFAULT_REGIONS {
        let items = s.items_in(http.clone(), region)?;
        let ids: Vec<String> = (0..plan.samples)
            .map(|i| format!("lat-{region}-{i}"))
            .collect();
        latency.push((
            region.to_owned(),
            "PUT",
            sequential(&items, &ids, Op::Put).await?,
        ));
        latency.push((
            region.to_owned(),
            "GET",
            sequential(&items, &ids, Op::Get).await?,
        ));
    }
    let primary = s.items_in(http.clone(), PRIMARY)?;
    let secs = Duration::from_secs(plan.secs);
    let mut throughput = Vec::new();
    for (name, op) in [("PUT", Op::Put), ("GET", Op::Get)] {
        let (rate, ms, failed) = closed_loop(&primary, plan.clients, secs, op).await;
        throughput.push((name, rate, ms, failed));
    }
    Ok(Figures {
        mode,
        leader,
        latency,
        throughput,
    })
}

/// The leader's region, once the log has one (at most 30 s after the stack answered).
async fn leader(s: &stack::Stack) -> anyhow::Result<String> {
    let control = stack::control(s);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(leader)) = control.consensus().await.map(|c| c.leader) {
            return Ok(leader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the consensus log had no leader 30 s after the stack answered")
}

#[derive(Clone, Copy)]
enum Op {
    Put,
    Get,
}

/// One request's milliseconds and whether it succeeded (a PUT of `{"i": n}`, or a GET that
/// finds the item or answers 404: the throughput run reads ids it may not have written).
async fn timed(items: &ItemClient, id: &str, op: Op) -> (f64, bool) {
    let started = Instant::now();
    let ok = match op {
        Op::Put => {
            let data = Data::from_iter([("n".to_owned(), id.len().into())]);
            items
                .put(id, &data, None)
                .await
                .is_ok_and(|a| a.is_success())
        }
        Op::Get => items
            .get(id)
            .await
            .is_ok_and(|a| a.is_success() || a.status == reqwest::StatusCode::NOT_FOUND),
    };
    (started.elapsed().as_secs_f64() * 1000.0, ok)
}

/// `op` on each id in turn; every request must succeed. Sorted milliseconds.
async fn sequential(items: &ItemClient, ids: &[String], op: Op) -> anyhow::Result<Vec<f64>> {
    let mut ms = Vec::with_capacity(ids.len());
    for id in ids {
        let (took, ok) = timed(items, id, op).await;
        if !ok {
            bail!("a sequential request for {id} failed at {}", items.base());
        }
        ms.push(took);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

/// `clients` clients doing `op` back to back for `secs` on ids of their own: answers per
/// second that succeeded, sorted milliseconds of those, and how many failed.
async fn closed_loop(
    items: &ItemClient,
    clients: usize,
    secs: Duration,
    op: Op,
) -> (f64, Vec<f64>, u64) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let items = items.clone();
        tasks.spawn(async move {
            let (mut ms, mut failed) = (Vec::new(), 0u64);
            let mut n = 0u64;
            while started.elapsed() < secs {
                // Reads go over the ids the write run made (64 per client), writes make them.
                let id = format!("tp-{c}-{}", n % 64);
                let (took, ok) = timed(&items, &id, op).await;
                if ok {
                    ms.push(took);
                } else {
                    failed += 1;
                }
                n += 1;
            }
            (ms, failed)
        });
    }
    let (mut all, mut failed) = (Vec::new(), 0u64);
    while let Some(Ok((ms, f))) = tasks.join_next().await {
        all.extend(ms);
        failed += f;
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (rate, all, failed)
}
