//! `tandem bench` recovery figures, each on a fresh stack: how long a backlog of large items
//! takes to drain and how much memory that costs, how long a partition's backlog of small
//! writes takes, and how long a region that lost its disk
//! takes to match its peer again. Figures only: nothing here asserts on time.

use super::stack::{self, Stack};
use anyhow::{Context as _, bail};
use std::time::{Duration, Instant};
use tandem_ops::items::ItemClient;
use tandem_ops::memory::rss;
use tandem_shared::control::{EdgeSettings, RegionState, ReplicationPatch};
use tandem_shared::item::Data;
use tandem_shared::region::{PRIMARY, SECONDARY};

/// PUTs `data` as `id`; an answer other than a 2xx is an error.
async fn put_ok(items: &ItemClient, id: &str, data: &Data) -> anyhow::Result<()> {
    let r = items.put(id, data, None).await?;
    if !r.is_success() {
        bail!("PUT {id} into {}: {}", items.base(), r.status);
    }
    Ok(())
}

/// [`tandem_ops::client::ControlClient::until_agreed`], as an error when the regions do not agree in time.
async fn until_agreed(s: &Stack, limit: Duration) -> anyhow::Result<()> {
    if !stack::control(s).until_agreed(limit).await {
        bail!("the regions did not agree within {limit:?}");
    }
    Ok(())
}

/// Releases a backlog: resumes replication and waits until the regions agree (at most 10
/// minutes). The seconds that took.
async fn resume_until_agreed(s: &Stack) -> anyhow::Result<f64> {
    let started = Instant::now();
    stack::control(s)
        .set_replication(ReplicationPatch::paused(false))
        .await?;
    until_agreed(s, Duration::from_secs(600)).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Replication paused for `secs` while us-east-1 takes `rate` new items per second, then
/// released: how long until both regions agree, and the rate the backlog drained at.
pub async fn partition(edge: &EdgeSettings, secs: u64, rate: u64) -> anyhow::Result<()> {
    let s = stack::start(edge, &[]).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    println!("\n## Catch-up after a {secs} s partition at {rate} writes/s into {PRIMARY}");
    stack::control(&s)
        .set_replication(ReplicationPatch::paused(true))
        .await?;
    let primary = s.items_in(http, PRIMARY)?;
    let id = |i: u64| format!("part-{i}");
    let ok = stack::steady_writes(&primary, rate, rate * secs, id).await;
    let took = resume_until_agreed(&s).await?;
    println!(
        "{ok} writes acknowledged during the partition; {SECONDARY} matched {PRIMARY} {took:.2} s after the heal ({:.0} writes/s)",
        ok as f64 / took
    );
    Ok(())
}

/// A backlog of `mb` MB of 400 KB items written while replication is paused, then released.
pub async fn catch_up(edge: &EdgeSettings, mb: u64) -> anyhow::Result<()> {
    let s = stack::start(edge, &[]).await?;
    let primary = s.items_in(reqwest::Client::new(), PRIMARY)?;
    let items = mb * 1_000_000 / 400_000;
    println!(
        "\n## Catch-up: {items} items of 400 KB ({mb} MB) written while replication is paused"
    );
    stack::control(&s)
        .set_replication(ReplicationPatch::paused(true))
        .await?;
    let data = Data::from_iter([("blob".to_owned(), "x".repeat(399_000).into())]);
    for i in 0..items {
        put_ok(&primary, &format!("big-{i}"), &data).await?;
    }
    let took = resume_until_agreed(&s).await?;
    let pids = s.region_pids().await?;
    println!(
        "drained in {took:.2} s ({:.0} MB/s); peak RSS {}",
        mb as f64 / took,
        pids.iter()
            .map(|(r, pid)| format!("{r} {:.0} MiB", rss(*pid).peak))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// `east` items written in us-east-1 and `west` in us-west-2; then us-west-2 loses its disk.
pub async fn disk_loss(edge: &EdgeSettings, east: u64, west: u64) -> anyhow::Result<()> {
    let s = stack::start(edge, &[]).await?;
    let http = reqwest::Client::new();
    let (east_items, west_items) = (
        s.items_in(http.clone(), PRIMARY)?,
        s.items_in(http, SECONDARY)?,
    );
    println!(
        "\n## A lost disk: {east} items written in us-east-1, {west} in us-west-2, then us-west-2's data directory is wiped"
    );
    let data = Data::from_iter([("pad".to_owned(), "y".repeat(1000).into())]);
    for i in 0..east {
        put_ok(&east_items, &format!("e-{i}"), &data).await?;
    }
    for i in 0..west {
        put_ok(&west_items, &format!("w-{i}"), &data).await?;
    }
    until_agreed(&s, Duration::from_secs(120)).await?;
    stack::control(&s)
        .set_region(SECONDARY, RegionState::Stopped)
        .await?;
    let dir = s.data_dir().join(SECONDARY);
    std::fs::remove_dir_all(&dir).with_context(|| format!("wiping {}", dir.display()))?;
    let started = Instant::now();
    stack::control(&s)
        .set_region(SECONDARY, RegionState::Up)
        .await?;
    let restarted = started.elapsed().as_secs_f64();
    until_agreed(&s, Duration::from_secs(300)).await?;
    println!(
        "us-west-2 restarted in {restarted:.2} s and matched us-east-1 {:.2} s after its restart \
         (its own {west} writes came back from us-east-1)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
