//! `tandem bench` memory figure (issue 27): what a region holds once it has more data than its
//! page cache. `mb` MB of 100 KB items are written into us-east-1 (and replicated to
//! us-west-2), then every item is read twice from each region; each region's resident memory
//! is read then, and its peak over the whole run. Run twice, on fresh stacks: with the page
//! cache bounded as `tandem up` bounds it by default, and with redb's own default (1 GiB per
//! database, what regions had before the bound), the reference of the same run.

use super::stack;
use anyhow::bail;
use std::time::Duration;
use tandem_api::store::embedded::DEFAULT_CACHE_MIB;
use tandem_ops::items::ItemClient;
use tandem_ops::memory::rss;
use tandem_shared::bench::{Goal, Row};
use tandem_shared::control::EdgeSettings;
use tandem_shared::item::Data;
use tandem_shared::region::{DEFAULT_REGIONS, PRIMARY};

/// The most a region process may hold after the run (issue 27), in MB (10^6 bytes).
pub const BOUND_MB: f64 = 320.0;
/// redb's own default page cache, in MiB: the unbounded reference.
const REDB_DEFAULT_CACHE_MIB: usize = 1024;
/// One item's data, in bytes.
const ITEM_BYTES: usize = 100_000;

/// One run's figures: each region's resident memory after the reads and its peak, in MiB.
struct Run {
    cache_mib: usize,
    regions: Vec<(String, f64, f64)>,
}

impl Run {
    /// The largest peak of any region, in MB.
    fn largest_peak_mb(&self) -> f64 {
        let mib = self
            .regions
            .iter()
            .map(|(_, _, peak)| *peak)
            .fold(f64::NAN, f64::max);
        mib * 1.048_576
    }
}

/// Both runs, a table and the summary row.
pub async fn after_writes_and_reads(edge: &EdgeSettings, mb: u64) -> anyhow::Result<()> {
    let count = mb * 1_000_000 / ITEM_BYTES as u64;
    println!(
        "\n## Memory: {count} items of 100 KB ({mb} MB) written into {PRIMARY}, then each read \
         twice from each region"
    );
    let bounded = one_run(edge, count, DEFAULT_CACHE_MIB).await?;
    let unbounded = one_run(edge, count, REDB_DEFAULT_CACHE_MIB).await?;
    println!("| page cache | region | RSS after, MiB | peak, MiB |");
    println!("|---:|---|---:|---:|");
    for run in [&bounded, &unbounded] {
        for (region, now, peak) in &run.regions {
            println!(
                "| {} MiB | {region} | {now:.0} | {peak:.0} |",
                run.cache_mib
            );
        }
    }
    let (tandem, reference) = (bounded.largest_peak_mb(), unbounded.largest_peak_mb());
    println!(
        "largest region peak: {tandem:.0} MB with the bound ({}), {reference:.0} MB with redb's \
         default",
        if tandem <= BOUND_MB {
            format!("within {BOUND_MB:.0} MB")
        } else {
            format!("OVER {BOUND_MB:.0} MB")
        }
    );
    Row::new(
        format!(
            "Largest region peak RSS after {mb} MB written and read twice (bound {BOUND_MB:.0} MB)"
        ),
        format!("{tandem:.0} MB (cache {DEFAULT_CACHE_MIB} MiB)"),
        format!("{reference:.0} MB (redb's default cache)"),
        Some(tandem / BOUND_MB),
        Goal::AtMost(1.0),
    )
    .record();
    Ok(())
}

/// One fresh stack with `cache_mib` of page cache per region: write, agree, read, measure.
async fn one_run(edge: &EdgeSettings, count: u64, cache_mib: usize) -> anyhow::Result<Run> {
    let s = stack::start(edge, &["--cache-mib", &cache_mib.to_string()]).await?;
    let http = reqwest::Client::new();
    let data = Data::from_iter([("blob".to_owned(), "m".repeat(ITEM_BYTES - 1_000).into())]);
    let primary = s.items_in(http.clone(), PRIMARY)?;
    for i in 0..count {
        let r = primary.put(&id(i), &data, None).await?;
        if !r.is_success() {
            bail!("PUT {} into {PRIMARY}: {}", id(i), r.status);
        }
    }
    if !stack::control(&s)
        .until_agreed(Duration::from_secs(600))
        .await
    {
        bail!("the regions did not agree within 600 s");
    }
    for region in DEFAULT_REGIONS {
        read_each_twice(&s.items_in(http.clone(), region)?, count).await?;
    }
    let regions = s
        .region_pids()
        .await?
        .into_iter()
        .map(|(region, pid)| {
            let m = rss(pid);
            (region, m.now, m.peak)
        })
        .collect();
    Ok(Run { cache_mib, regions })
}

/// GETs every item twice from one region, 8 at a time; any answer but a 200 is an error.
async fn read_each_twice(items: &ItemClient, count: u64) -> anyhow::Result<()> {
    for _round in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            if tasks.len() >= 8 {
                tasks.join_next().await.transpose()?.transpose()?;
            }
            let items = items.clone();
            tasks.spawn(async move {
                let r = items.get(&id(i)).await?;
                if r.status != reqwest::StatusCode::OK {
                    bail!("GET {} from {}: {}", id(i), items.base(), r.status);
                }
                Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
    }
    Ok(())
}

fn id(i: u64) -> String {
    format!("mem-{i:05}")
}
