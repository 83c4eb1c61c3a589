//! `tandem bench --attacks`: what the attacks that once took regions down cost now, at full
//! size, each on a fresh stack (the tests in `infra/local/tests/attacks.rs` run smaller
//! versions in CI). Figures only: nothing here asserts.
//!
//! 1. 16 list pages at once of 400 KB tiny-value items: each region's RSS growth, and the
//!    answers' statuses.
//! 2. 4,200 connections that send a PUT's headers and one byte of its body: how long until the
//!    edge answers health beside them, and what became of them.
//! 3. A region killed from outside (SIGKILL): how long until it answers again.
//! 4. A region that lost its disk copying 20,000 items back: its reads meanwhile (404s: none).
//! 5. `tandem verify` with 100,000 differing items: the `tandem up` process's memory.

use super::stack::{self, Stack};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::io::Write as _;
use std::time::{Duration, Instant};
use tandem_ops::memory::{reset_peak, rss};
use tandem_shared::control::{EdgeSettings, RegionState, ReplicationPatch};
use tandem_shared::item::Data;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::wire::path;

/// Sizes of the attack figures.
#[derive(Debug, Clone, clap::Args)]
pub struct AttackArgs {
    /// Connections holding a stalled body.
    #[arg(long, default_value_t = 4200)]
    pub stalled_bodies: usize,
    /// Items a region that lost its disk copies back while it is read.
    #[arg(long, default_value_t = 20_000)]
    pub resync_items: u64,
    /// Items that differ between the regions when `tandem verify` runs.
    #[arg(long, default_value_t = 100_000)]
    pub verify_items: u64,
}

/// PUTs `count` small items named `prefix-<i>` into `region`, 64 at a time.
async fn fill(s: &Stack, region: &str, prefix: &str, count: u64) -> anyhow::Result<()> {
    let items = s.items_in(reqwest::Client::new(), region)?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        if tasks.len() >= 64 {
            tasks.join_next().await.context("a writer")???;
        }
        let (items, id) = (items.clone(), format!("{prefix}-{i:06}"));
        tasks.spawn(async move {
            let data = Data::from_iter([("i".to_owned(), i.into())]);
            let r = items.put(&id, &data, None).await?;
            if !r.is_success() {
                bail!("PUT {id} into {}: {}", items.base(), r.status);
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a writer")??;
    }
    Ok(())
}

/// Runs every attack figure.
pub async fn run(edge: &EdgeSettings, args: &AttackArgs) -> anyhow::Result<()> {
    tandem_api::server::raise_open_file_limit();
    println!("\n# Attacks (issue 24): what they cost now");
    poison_pages(edge).await?;
    stalled_bodies(edge, args.stalled_bodies).await?;
    killed_from_outside(edge).await?;
    reads_during_resync(edge, args.resync_items).await?;
    verify_memory(edge, args.verify_items).await?;
    Ok(())
}

async fn poison_pages(edge: &EdgeSettings) -> anyhow::Result<()> {
    println!("\n## 16 list pages at once of 101 items of 400 KB tiny values (`{{\"a\":[0,0,…]}}`)");
    let s = stack::start(edge, &[]).await?;
    let http = reqwest::Client::new();
    let items = s.items(http.clone());
    let data = Data::from_iter([("a".to_owned(), Value::from(vec![0; 200_000]))]);
    for i in 0..101 {
        let r = items.put(&format!("poison-{i:03}"), &data, None).await?;
        if !r.is_success() {
            bail!("PUT poison-{i:03}: {}", r.status);
        }
    }
    stack::control(&s)
        .until_agreed(Duration::from_secs(60))
        .await;
    let pids = s.region_pids().await?;
    let before: Vec<f64> = pids.iter().map(|(_, pid)| rss(*pid).now).collect();
    for (_, pid) in &pids {
        reset_peak(*pid);
    }
    let started = Instant::now();
    // Plain GETs, not the item client: the figure is the pages' bytes as sent and the time of
    // 16 at once, which decoding each 5 MiB page on this side would add to.
    let url = format!("{}{}", s.edge, path::list(Some(100), None));
    let pages = (0..16).map(|_| async {
        let r = http.get(&url).send().await?;
        let status = r.status().as_u16();
        let failover = r.headers().contains_key("x-edge-failover");
        let bytes = r.bytes().await?.len();
        Ok::<_, reqwest::Error>((status, failover, bytes))
    });
    let answers = futures::future::join_all(pages).await;
    let took = started.elapsed();
    let ok = answers
        .iter()
        .filter(|a| matches!(a, Ok((200, _, _))))
        .count();
    let failed_over = answers
        .iter()
        .filter(|a| matches!(a, Ok((_, true, _))))
        .count();
    let bytes: usize = answers.iter().flatten().map(|a| a.2).sum();
    println!(
        "{ok} of 16 answered 200 in {took:.2?} ({failed_over} by the other region after a 503 \
         overloaded), {:.1} MiB of pages",
        bytes as f64 / 1048576.0
    );
    let after = s.region_pids().await?;
    for (((region, pid), base), (_, pid_after)) in pids.iter().zip(before).zip(&after) {
        let peak = rss(*pid).peak;
        let same = if pid == pid_after {
            "same process"
        } else {
            "RESTARTED"
        };
        println!(
            "{region}: RSS {base:.0} MiB before, peak {peak:.0} MiB during (+{:.0} MiB), {same}",
            peak - base
        );
    }
    Ok(())
}

async fn stalled_bodies(edge: &EdgeSettings, count: usize) -> anyhow::Result<()> {
    println!("\n## {count} connections sending a PUT's headers and one byte of its body");
    for promised in [100_000usize, 1_000] {
        let s = stack::start(edge, &[]).await?;
        let addr = s.edge.trim_start_matches("http://").to_owned();
        let mut held = Vec::with_capacity(count);
        let opened = Instant::now();
        for _ in 0..count {
            let mut c = std::net::TcpStream::connect(&addr)?;
            let head = format!(
                "PUT {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {promised}\r\n\r\n{{",
                path::item("stall")
            );
            c.write_all(head.as_bytes())?;
            held.push(c);
        }
        let asked = Instant::now();
        let health = reqwest::Client::new()
            .get(format!("{}/api/health", s.edge))
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let answered = asked.elapsed();
        let status = health.map(|r| r.status().as_u16()).unwrap_or(0);
        let control = stack::control(&s).regions().await.is_ok();
        // What became of the stalled ones: answered at once (503 overloaded), or still held.
        let mut refused = 0;
        for c in &mut held {
            c.set_nonblocking(true)?;
            let mut buf = [0u8; 12];
            if matches!(std::io::Read::read(c, &mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 503"))
            {
                refused += 1;
            }
        }
        let edge_rss = rss(s.pid()).now;
        println!(
            "{promised} bytes promised each (opened in {:.1?}): health answered {status} after \
             {answered:.1?}; control API answered: {control}; {refused} answered 503 overloaded \
             at once, {} held until the body deadline; edge RSS {edge_rss:.0} MiB",
            opened.elapsed(),
            held.len() - refused
        );
        drop(held);
    }
    Ok(())
}

async fn killed_from_outside(edge: &EdgeSettings) -> anyhow::Result<()> {
    println!("\n## {SECONDARY} killed from outside (SIGKILL), five times a minute apart at most");
    let s = stack::start(edge, &[]).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("{}/region/{SECONDARY}/api/health", s.edge);
    let mut times = Vec::new();
    for _ in 0..5 {
        let pid = s
            .region_pids()
            .await?
            .into_iter()
            .find(|(r, _)| r == SECONDARY)
            .context("a running us-west-2")?
            .1;
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        loop {
            let up = http.get(&url).send().await.is_ok_and(|r| r.status() == 200);
            if up {
                break;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("{SECONDARY} did not come back within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        times.push(killed.elapsed().as_secs_f64() * 1000.0);
    }
    let regions = stack::control(&s).regions().await?;
    let west = regions.regions.iter().find(|r| r.region == SECONDARY);
    println!(
        "answered again after (ms): {} — the back-off doubles with each exit in a minute; state \
         now {}, {} restarts, last exit: {}",
        times
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        west.map_or("?", |w| w.state.as_str()),
        west.map_or(0, |w| w.restarts),
        west.and_then(|w| w.last_exit.clone()).unwrap_or_default()
    );
    Ok(())
}

async fn reads_during_resync(edge: &EdgeSettings, items: u64) -> anyhow::Result<()> {
    println!("\n## Reads of {SECONDARY} while it copies {items} items back after losing its disk");
    let s = stack::start(edge, &[]).await?;
    fill(&s, PRIMARY, "held", items).await?;
    stack::control(&s)
        .until_agreed(Duration::from_secs(300))
        .await;
    stack::control(&s)
        .set_region(SECONDARY, RegionState::Stopped)
        .await?;
    std::fs::remove_dir_all(s.data_dir().join(SECONDARY))?;
    stack::control(&s)
        .set_region(SECONDARY, RegionState::Up)
        .await?;
    let started = Instant::now();
    let (mut ok, mut unavailable, mut not_found, mut other) = (0u64, 0u64, 0u64, 0u64);
    let http = reqwest::Client::new();
    let west = s.items_in(http.clone(), SECONDARY)?;
    let mut i = 0u64;
    // Until it vouches again and reads the last item written.
    loop {
        let id = format!("held-{:06}", (i * 7919) % items);
        i += 1;
        let r = west.get(&id).await?;
        match r.status.as_u16() {
            200 => ok += 1,
            503 => unavailable += 1,
            404 => not_found += 1,
            _ => other += 1,
        }
        let health = http
            .get(format!("{}/api/health", s.regions[SECONDARY]))
            .header("x-origin-verify", &s.secret)
            .send()
            .await?;
        if health.status() == 200 && ok > 0 && i > 100 {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("{SECONDARY} did not vouch again within 300 s");
        }
    }
    println!(
        "{i} reads in {:.2?} while it resynced: {ok} answered 200, {unavailable} 503 (cannot \
         vouch yet; the edge fails those over), {not_found} 404, {other} other",
        started.elapsed()
    );
    Ok(())
}

async fn verify_memory(edge: &EdgeSettings, items: u64) -> anyhow::Result<()> {
    println!("\n## tandem verify with {items} items that differ (replication paused)");
    let s = stack::start(edge, &[]).await?;
    stack::control(&s)
        .set_replication(ReplicationPatch::paused(true))
        .await?;
    fill(&s, PRIMARY, "only-east", items).await?;
    let before = rss(s.pid()).now;
    reset_peak(s.pid());
    let started = Instant::now();
    let verdict = s.control(Duration::from_secs(600)).verify().await?;
    let took = started.elapsed();
    let peak = rss(s.pid()).peak;
    println!(
        "{} ids differ, {} listed, in {took:.2?}; tandem up (edge and control API): RSS {before:.0} \
         MiB before, peak {peak:.0} MiB during",
        verdict.differing_ids,
        verdict.differences.len()
    );
    Ok(())
}
