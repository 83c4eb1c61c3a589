//! `tandem verify`: do all regions hold the same items? The control API compares the regions'
//! per-bucket digests and, for buckets that differ, lists the ids and the write each region
//! holds; the command prints that and exits non-zero on any difference.

use crate::client::Target;
use crate::replication::{self, Difference, RegionReplication, Verdict, WriteKey, wire::Key};
use anyhow::{Context as _, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tandem_shared::headers::ORIGIN_VERIFY;
use tandem_shared::item::format_timestamp;

/// `tandem verify` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: Target,
    /// Keep comparing for up to this many seconds while writes are still replicating.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

/// Compares `regions` (name, base URL), the answering ones of `all`. The supervisor holds the
/// replication key, so it reads each region's state as one of its peers would.
pub async fn compare(
    http: &reqwest::Client,
    origin_secret: &str,
    key: &Key,
    regions: &[(String, String)],
    all: &[String],
) -> Verdict {
    let mut digests = BTreeMap::new();
    for (name, url) in regions {
        let status = http
            .get(format!("{url}/_replication/status"))
            .header(ORIGIN_VERIFY, origin_secret)
            .send()
            .await;
        if let Ok(resp) = status
            && let Ok(status) = resp.json::<RegionReplication>().await
        {
            digests.insert(name.clone(), status.digests);
        }
    }
    let mut verdict = Verdict {
        regions: digests.keys().cloned().collect(),
        unavailable: all
            .iter()
            .filter(|r| !digests.contains_key(*r))
            .cloned()
            .collect(),
        ..Verdict::default()
    };
    let mut columns = digests.values();
    if let Some(first) = columns.next() {
        let others: Vec<_> = columns.collect();
        verdict.differing_buckets = (0..first.len().max(1))
            .filter(|&b| others.iter().any(|o| o.get(b) != first.get(b)))
            .collect();
    }
    if !verdict.differing_buckets.is_empty() {
        let mask = tandem_api::store::digest::mask_of(&verdict.differing_buckets);
        verdict.differences = differences(http, key, regions, all, mask).await;
    }
    verdict.agree = verdict.unavailable.is_empty()
        && verdict.regions.len() >= 2
        && verdict.differing_buckets.is_empty();
    verdict
}

/// The ids in the buckets of `mask` whose regions hold different writes.
async fn differences(
    http: &reqwest::Client,
    key: &Key,
    regions: &[(String, String)],
    all: &[String],
    mask: u64,
) -> Vec<Difference> {
    let mut held: BTreeMap<String, BTreeMap<String, Option<WriteKey>>> = BTreeMap::new();
    for (name, url) in regions {
        // Ask as another region of the stack: the routes answer configured peers only.
        let Some(as_peer) = all.iter().find(|r| *r != name) else {
            continue;
        };
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/_replication/items?buckets={mask}");
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let Ok(frame) = replication::fetch(http, key, as_peer, url, &path).await else {
                break;
            };
            for (_, bytes) in &frame.entries {
                if let Ok(r) = replication::check_record(bytes) {
                    let write = (!r.is_tombstone()).then(|| WriteKey {
                        updated_at: format_timestamp(r.updated_at_ms),
                        updated_in: r.updated_in.clone(),
                        version: r.version,
                    });
                    held.entry(r.id).or_default().insert(name.clone(), write);
                }
            }
            match frame.next {
                Some(next) if after.as_deref().is_none_or(|a| next.as_str() > a) => {
                    after = Some(next)
                }
                _ => break,
            }
        }
    }
    let names: BTreeSet<&String> = regions.iter().map(|(n, _)| n).collect();
    held.into_iter()
        .filter_map(|(id, mut by_region)| {
            for n in &names {
                by_region.entry((*n).clone()).or_insert(None);
            }
            let first = by_region.values().next().cloned();
            let same = by_region.values().all(|w| Some(w) == first.as_ref());
            (!same).then_some(Difference {
                id,
                held: by_region,
            })
        })
        .collect()
}

/// Runs `tandem verify`.
pub async fn run(args: VerifyArgs) -> anyhow::Result<Verdict> {
    let control = args.target.client(Duration::from_secs(60))?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let verdict = control
            .verify()
            .await
            .context("is this a local stack, and the token right?")?;
        if verdict.agree || Instant::now() >= deadline {
            print(&verdict);
            if !verdict.agree {
                bail!("the regions do not agree");
            }
            return Ok(verdict);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print(v: &Verdict) {
    if v.agree {
        println!(
            "{} regions agree: {}",
            v.regions.len(),
            v.regions.join(", ")
        );
        return;
    }
    if !v.unavailable.is_empty() {
        println!("not compared (unavailable): {}", v.unavailable.join(", "));
    }
    println!(
        "{} of the digest buckets differ; {} ids differ:",
        v.differing_buckets.len(),
        v.differences.len()
    );
    for d in &v.differences {
        let held: Vec<String> = d
            .held
            .iter()
            .map(|(region, w)| match w {
                Some(w) => format!(
                    "{region}: v{} {} in {}",
                    w.version, w.updated_at, w.updated_in
                ),
                None => format!("{region}: absent"),
            })
            .collect();
        println!("  {}  {}", d.id, held.join(" | "));
    }
}
