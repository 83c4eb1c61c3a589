//! `tandem verify`: do all regions hold the same items? The control API compares the regions'
//! per-bucket digests and, for buckets that differ, walks the regions' items in those buckets
//! side by side, in id order, a page at a time: it counts every id whose regions hold different
//! writes and keeps the first [`DIFFERENCES_SHOWN`], so its memory is a page per region however
//! many differ. The command prints that and exits non-zero on any difference.

use crate::replication::client::{SignedClient, Target};
use crate::replication::routes::{self, ItemsQuery};
use crate::replication::{self, Difference, RegionReplication, Verdict, WriteKey};
use anyhow::{Context as _, bail};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tandem_ops::client::Target as Endpoint;
use tandem_shared::item::format_timestamp;
use tandem_shared::replication::DIFFERENCES_SHOWN;

/// `tandem verify` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: Endpoint,
    /// Keep comparing for up to this many seconds while writes are still replicating.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

/// Compares `regions` (name, base URL), the answering ones of `all`. The supervisor holds the
/// replication key and signs as itself.
pub async fn compare(
    client: &SignedClient,
    regions: &[(String, String)],
    all: &[String],
) -> Verdict {
    let mut digests = BTreeMap::new();
    for (name, url) in regions {
        let target = Target { region: name, url };
        let status = client
            .json::<RegionReplication>(target, reqwest::Method::GET, routes::STATUS, None::<&()>)
            .await;
        if let Ok(status) = status {
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
        let compared: Vec<(String, String)> = regions
            .iter()
            .filter(|(name, _)| digests.contains_key(name))
            .cloned()
            .collect();
        (verdict.differences, verdict.differing_ids) = differences(client, &compared, mask).await;
    }
    verdict.agree = verdict.unavailable.is_empty()
        && verdict.regions.len() >= 2
        && verdict.differing_buckets.is_empty();
    verdict
}

/// One region's items in the buckets of a mask, a page at a time, in id order.
struct Walk<'a> {
    client: &'a SignedClient,
    region: &'a str,
    url: &'a str,
    mask: u64,
    page: VecDeque<(String, Option<WriteKey>)>,
    after: Option<String>,
    done: bool,
}

impl Walk<'_> {
    /// The next id and the write held for it (`None`: a tombstone), reading a page when needed.
    async fn peek(&mut self) -> Option<&(String, Option<WriteKey>)> {
        while self.page.is_empty() && !self.done {
            let path = ItemsQuery {
                after: self.after.clone(),
                buckets: Some(self.mask),
                max_bytes: None,
            }
            .path();
            let target = Target {
                region: self.region,
                url: self.url,
            };
            let Ok(frame) = self.client.frame(target, &path).await else {
                self.done = true;
                break;
            };
            for (_, bytes) in &frame.entries {
                if let Ok(r) = replication::check_record(bytes) {
                    let write = (!r.is_tombstone()).then(|| WriteKey {
                        updated_at: format_timestamp(r.updated_at_ms),
                        updated_in: r.updated_in.clone(),
                        version: r.version,
                    });
                    self.page.push_back((r.id, write));
                }
            }
            match frame.next {
                // Ids only grow, so a walk always ends.
                Some(next) if self.after.as_deref().is_none_or(|a| next.as_str() > a) => {
                    self.after = Some(next)
                }
                _ => self.done = true,
            }
        }
        self.page.front()
    }
}

/// The ids in the buckets of `mask` whose regions hold different writes: the first
/// [`DIFFERENCES_SHOWN`] of them, and how many in all.
async fn differences(
    client: &SignedClient,
    regions: &[(String, String)],
    mask: u64,
) -> (Vec<Difference>, u64) {
    let mut walks: Vec<Walk> = regions
        .iter()
        .map(|(region, url)| Walk {
            client,
            region,
            url,
            mask,
            page: VecDeque::new(),
            after: None,
            done: false,
        })
        .collect();
    let (mut shown, mut count) = (Vec::new(), 0u64);
    loop {
        let mut lowest: Option<String> = None;
        for walk in &mut walks {
            if let Some((id, _)) = walk.peek().await
                && lowest.as_ref().is_none_or(|l| id < l)
            {
                lowest = Some(id.clone());
            }
        }
        let Some(id) = lowest else { break };
        // What each region holds for this id; a region without it holds nothing.
        let mut held = BTreeMap::new();
        for walk in &mut walks {
            let here = walk.page.front().filter(|(i, _)| *i == id).is_some();
            let write = if here {
                walk.page.pop_front().and_then(|(_, w)| w)
            } else {
                None
            };
            held.insert(walk.region.to_owned(), write);
        }
        let first = held.values().next().cloned();
        if !held.values().all(|w| Some(w) == first.as_ref()) {
            count += 1;
            if shown.len() < DIFFERENCES_SHOWN {
                shown.push(Difference { id, held });
            }
        }
    }
    (shown, count)
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
        "{} of the digest buckets differ; {} ids differ{}:",
        v.differing_buckets.len(),
        v.differing_ids,
        if v.differing_ids > v.differences.len() as u64 {
            format!(" (the first {} below)", v.differences.len())
        } else {
            String::new()
        }
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
