//! `tandem chaos`: a randomized fault run in the manner of Jepsen, on a stack it starts itself.
//!
//! Writers PUT and DELETE a small set of ids, through the edge and straight to each region,
//! and record every operation with its outcome. A nemesis meanwhile crashes, stops and
//! blackholes regions, pauses replication, changes its lag, and once wipes a region's disk.
//! Then everything is healed, replication is given time to converge, and a checker verifies:
//! every region holds the same items, every acknowledged PUT is either what an id holds or was
//! superseded under last-writer-wins (or was acknowledged by the region whose disk was wiped,
//! before the wipe: contract §5.1 allows losing those), and every value held was actually written.

pub mod linearizable;

use crate::bench::{self, Stack};
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_api::store::now_ms;
use tandem_ops::client::ControlClient;
use tandem_ops::items::ItemClient;
use tandem_shared::Item;
use tandem_shared::control::{EdgeSettings, Outage, RegionState, ReplicationPatch};
use tandem_shared::item::{Data, parse_timestamp};
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::rng::Rng;
use tandem_shared::sync::lock;

/// Flags of `tandem chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Minutes of faults.
    #[arg(long, default_value_t = 5)]
    pub minutes: u64,
    /// Seconds of faults instead of minutes (short runs).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Seed of the random choices [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent writers.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Distinct ids written (few, so writes conflict).
    #[arg(long, default_value_t = 24)]
    pub keys: usize,
    /// Write the history (every operation and fault) as JSON here.
    #[arg(long)]
    pub history: Option<PathBuf>,
}

/// A nemesis turn that injected nothing (logged, so the history shows the calm too).
const NO_FAULT: &str = "no fault";

/// What became of an operation.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged; for a PUT, the write it made.
    Ok {
        updated_at_ms: Option<u64>,
        updated_in: Option<String>,
    },
    /// Refused with this status: not applied.
    Failed { status: u16 },
    /// No answer: it may or may not have been applied.
    Unknown { error: String },
}

/// One client operation.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    pub writer: usize,
    pub id: String,
    /// `put` or `delete`.
    pub kind: &'static str,
    /// `edge` or a region name.
    pub via: String,
    /// The value written (`{"w", "n"}`), unique per operation.
    pub nonce: Option<u64>,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One fault the nemesis injected.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub what: String,
}

/// The checker's verdict.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    pub ops: usize,
    pub acknowledged_puts: usize,
    pub acknowledged_deletes: usize,
    pub failed: usize,
    pub unknown: usize,
    pub faults: usize,
    /// Seconds from the heal until every region held the same items.
    pub convergence_s: f64,
    pub regions_identical: bool,
    /// Acknowledged PUTs neither held nor superseded.
    pub lost: Vec<String>,
    /// Acknowledged by the region whose disk was wiped, before the wipe, and gone: allowed.
    pub lost_with_the_disk: usize,
    /// Values held that no operation wrote.
    pub phantoms: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.regions_identical && self.lost.is_empty() && self.phantoms.is_empty()
    }
}

#[derive(Serialize)]
struct History<'a> {
    seed: u64,
    ops: &'a [Op],
    events: &'a [Event],
    verdict: &'a Verdict,
}

/// Runs `tandem chaos`.
pub async fn run(args: ChaosArgs) -> anyhow::Result<Verdict> {
    let seed = args.seed.unwrap_or_else(now_ms);
    let fault_time = Duration::from_secs(args.seconds.unwrap_or(args.minutes * 60));
    println!(
        "tandem chaos: seed {seed}, {} s of faults, {} writers over {} ids",
        fault_time.as_secs(),
        args.writers,
        args.keys
    );
    // Short edge timeouts keep a blackholed primary from stalling writers for long; tombstones
    // are collected during the run, so collection is under test too.
    let edge = EdgeSettings {
        connection_attempts: 1,
        connection_timeout: 1,
        origin_read_timeout: 2,
    };
    let stack = bench::start(&edge, &["--tombstone-grace-ms", "2000"]).await?;
    let items = stack.items(tandem_ops::client::http_client(Duration::from_secs(5))?);
    let ops = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let (items, ops, stop) = (items.clone(), ops.clone(), stop.clone());
        let (keys, seed) = (args.keys, seed ^ (w as u64 + 1).wrapping_mul(0x9E37));
        writers.push(tokio::spawn(async move {
            write_loop(w, Rng::new(seed), keys, &items, &ops, &stop).await
        }));
    }
    let events = nemesis(&stack, Rng::new(seed), fault_time).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await?;
    }
    let healed = Instant::now();
    heal(&bench::control(&stack)).await?;
    let converged = bench::control(&stack)
        .until_agreed(Duration::from_secs(60))
        .await;
    let convergence_s = healed.elapsed().as_secs_f64();
    let ops = std::mem::take(&mut *lock(&ops));
    let finals = read_all(&items, args.keys).await?;
    let mut verdict = check(&ops, &events, &finals);
    verdict.convergence_s = convergence_s;
    verdict.regions_identical &= converged;
    print(&verdict);
    if let Some(path) = &args.history {
        let history = History {
            seed,
            ops: &ops,
            events: &events,
            verdict: &verdict,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&history)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("history: {}", path.display());
    }
    if !verdict.ok() {
        bail!("chaos run failed (seed {seed})");
    }
    Ok(verdict)
}

fn id_of(n: u64) -> String {
    format!("chaos-{n}")
}

async fn write_loop(
    w: usize,
    mut rng: Rng,
    keys: usize,
    edge: &ItemClient,
    ops: &Mutex<Vec<Op>>,
    stop: &AtomicBool,
) {
    let (east, west) = (edge.in_region(PRIMARY), edge.in_region(SECONDARY));
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let id = id_of(rng.below(keys as u64));
        let (via, items) = match rng.below(5) {
            0 => (PRIMARY, &east),
            1 => (SECONDARY, &west),
            _ => ("edge", edge),
        };
        let put = rng.percent(80);
        let nonce = (w as u64) << 32 | n;
        let start_ms = now_ms();
        let sent = if put {
            let data = Data::from_iter([
                ("w".to_owned(), w.into()),
                ("n".to_owned(), n.into()),
                ("nonce".to_owned(), nonce.into()),
            ]);
            let answer = items.put(&id, &data, None).await;
            answer.map(|a| (a.status, a.into_ok().map(|r| r.item)))
        } else {
            let answer = items.delete(&id, None).await;
            answer.map(|a| (a.status, None))
        };
        let outcome = match sent {
            Ok((status, item)) if status.is_success() => Outcome::Ok {
                updated_at_ms: item.as_ref().and_then(|i| parse_timestamp(&i.updated_at)),
                updated_in: item.map(|i| i.updated_in),
            },
            // A 5xx from the edge may come after the origin applied the write (a read timeout).
            Ok((status, _)) if status.is_server_error() => Outcome::Unknown {
                error: format!("status {}", status.as_u16()),
            },
            Ok((status, _)) => Outcome::Failed {
                status: status.as_u16(),
            },
            Err(e) => Outcome::Unknown {
                error: e.error.to_string(),
            },
        };
        let op = Op {
            writer: w,
            id,
            kind: if put { "put" } else { "delete" },
            via: via.to_owned(),
            nonce: put.then_some(nonce),
            start_ms,
            end_ms: now_ms(),
            outcome,
        };
        lock(ops).push(op);
    }
}

/// Injects random faults until `duration` has passed; wipes one region's disk half-way.
async fn nemesis(stack: &Stack, mut rng: Rng, duration: Duration) -> Vec<Event> {
    let control = bench::control(stack);
    let started = Instant::now();
    let mut events = Vec::new();
    let mut wiped = false;
    let mut log = |what: String| {
        println!("  {:>6.1} s  {what}", started.elapsed().as_secs_f64());
        events.push(Event {
            at_ms: now_ms(),
            what,
        });
    };
    while started.elapsed() < duration {
        // Calm between faults, so some writes replicate and some do not.
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        let region = if rng.percent(50) { PRIMARY } else { SECONDARY };
        let hold = Duration::from_millis(300 + rng.below(2500));
        let result = if !wiped && started.elapsed() >= duration / 2 {
            wiped = true;
            // Logged once the region has stopped: what it acknowledged until then is what the
            // checker may excuse as lost with the disk.
            match control.set_region(region, RegionState::Stopped).await {
                Ok(_) => {
                    log(format!(
                        "{region}: disk lost (stopped, data directory wiped, started)"
                    ));
                    wipe(stack, &control, region).await
                }
                Err(e) => Err(e),
            }
        } else {
            match rng.below(5) {
                0 | 1 => {
                    let outage = [Outage::Crashed, Outage::Stopped, Outage::Blackhole]
                        [rng.below(3) as usize];
                    log(format!("{region}: {outage} for {} ms", hold.as_millis()));
                    hold_outage(&control, region, outage, hold).await
                }
                2 => {
                    log(format!("replication paused for {} ms", hold.as_millis()));
                    hold_outage(&control, region, Outage::Partition, hold).await
                }
                3 => {
                    let lag = rng.below(400);
                    log(format!("replication lag {lag} ms"));
                    let lag = ReplicationPatch {
                        paused: None,
                        lag_ms: Some(lag),
                    };
                    control.set_replication(lag).await.map(drop)
                }
                _ => {
                    log(NO_FAULT.into());
                    Ok(())
                }
            }
        };
        if let Err(err) = result {
            log(format!("nemesis step failed: {err:#}"));
        }
    }
    events
}

/// `outage` in `region` for `hold`, then cleared.
async fn hold_outage(
    control: &ControlClient,
    region: &str,
    outage: Outage,
    hold: Duration,
) -> anyhow::Result<()> {
    control.inject(region, outage, None).await?;
    tokio::time::sleep(hold).await;
    control.clear(region, outage).await
}

/// Deletes a stopped region's data directory and starts it again.
async fn wipe(stack: &Stack, control: &ControlClient, region: &str) -> anyhow::Result<()> {
    let dir = stack.data_dir().join(region);
    std::fs::remove_dir_all(&dir).with_context(|| format!("wiping {}", dir.display()))?;
    control.set_region(region, RegionState::Up).await.map(drop)
}

async fn heal(control: &ControlClient) -> anyhow::Result<()> {
    for region in [PRIMARY, SECONDARY] {
        control.set_region(region, RegionState::Up).await?;
    }
    let calm = ReplicationPatch {
        paused: Some(false),
        lag_ms: Some(0),
    };
    control.set_replication(calm).await.map(drop)
}

/// What each region holds for each id: the item, or `None`.
type Finals = BTreeMap<String, BTreeMap<String, Option<Item>>>;

/// Reads every id from each region through the edge (`edge` is the item client of the edge).
async fn read_all(edge: &ItemClient, keys: usize) -> anyhow::Result<Finals> {
    let mut finals = Finals::new();
    for n in 0..keys as u64 {
        let id = id_of(n);
        for region in [PRIMARY, SECONDARY] {
            let answer = edge.in_region(region).get(&id).await?;
            let item = match answer.status.as_u16() {
                200 => {
                    let read = answer.into_ok();
                    Some(
                        read.with_context(|| format!("reading {id} from {region}: not an item"))?
                            .item,
                    )
                }
                404 => None,
                s => bail!("reading {id} from {region}: {s}"),
            };
            finals
                .entry(id.clone())
                .or_default()
                .insert(region.to_owned(), item);
        }
    }
    Ok(finals)
}

/// The checker (no IO): see the module's doc for the rules.
pub fn check(ops: &[Op], events: &[Event], finals: &Finals) -> Verdict {
    let mut v = Verdict {
        ops: ops.len(),
        faults: events.iter().filter(|e| e.what != NO_FAULT).count(),
        regions_identical: true,
        ..Verdict::default()
    };
    // When, and in which region, a disk was lost.
    let wipes: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e.what.contains("disk lost"))
        .filter_map(|e| Some((e.at_ms, e.what.split(':').next()?)))
        .collect();
    for op in ops {
        match (&op.outcome, op.kind) {
            (Outcome::Ok { .. }, "put") => v.acknowledged_puts += 1,
            (Outcome::Ok { .. }, _) => v.acknowledged_deletes += 1,
            (Outcome::Failed { .. }, _) => v.failed += 1,
            (Outcome::Unknown { .. }, _) => v.unknown += 1,
        }
    }
    for (id, by_region) in finals {
        let mut values = by_region.values();
        let first = values.next().cloned().flatten();
        if values.any(|x| *x != first) {
            v.regions_identical = false;
        }
        let held = first.as_ref().and_then(|item| {
            Some((
                parse_timestamp(&item.updated_at)?,
                item.updated_in.clone(),
                item.data.to_map().get("nonce")?.as_u64()?,
            ))
        });
        if let Some((_, _, nonce)) = &held
            && !ops
                .iter()
                .any(|o| o.nonce == Some(*nonce) && !matches!(o.outcome, Outcome::Failed { .. }))
        {
            v.phantoms.push(format!(
                "{id}: holds nonce {nonce}, which no operation wrote"
            ));
        }
        let deleted = ops.iter().any(|o| {
            o.id == *id && o.kind == "delete" && !matches!(o.outcome, Outcome::Failed { .. })
        });
        for op in ops.iter().filter(|o| o.id == *id && o.kind == "put") {
            let Outcome::Ok {
                updated_at_ms: Some(at),
                updated_in: Some(region),
            } = &op.outcome
            else {
                continue;
            };
            let survives = match &held {
                Some((held_at, held_in, _)) => (held_at, held_in) >= (at, region),
                None => deleted,
            };
            if survives {
                continue;
            }
            let with_disk = wipes
                .iter()
                .any(|(wiped_at, wiped)| wiped == region && *wiped_at >= op.end_ms);
            if with_disk {
                v.lost_with_the_disk += 1;
            } else {
                v.lost.push(format!(
                    "{id}: PUT by writer {} acknowledged by {region} at {at} is gone (held: {:?})",
                    op.writer, held
                ));
            }
        }
    }
    v
}

fn print(v: &Verdict) {
    println!(
        "\n{} operations: {} PUTs and {} DELETEs acknowledged, {} refused, {} unknown; {} faults",
        v.ops, v.acknowledged_puts, v.acknowledged_deletes, v.failed, v.unknown, v.faults
    );
    println!(
        "converged {:.1} s after the heal; regions identical: {}",
        v.convergence_s, v.regions_identical
    );
    println!(
        "acknowledged writes lost: {} (plus {} acknowledged by the wiped region before its disk was lost, which docs/contract.md §5.1 allows)",
        v.lost.len(),
        v.lost_with_the_disk
    );
    for l in v.lost.iter().chain(&v.phantoms) {
        println!("  {l}");
    }
    println!("verdict: {}", if v.ok() { "ok" } else { "FAILED" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str, at: u64, region: &str, end_ms: u64, nonce: u64) -> Op {
        Op {
            writer: 0,
            id: id.into(),
            kind: "put",
            via: "edge".into(),
            nonce: Some(nonce),
            start_ms: end_ms - 1,
            end_ms,
            outcome: Outcome::Ok {
                updated_at_ms: Some(at),
                updated_in: Some(region.into()),
            },
        }
    }

    fn item(at: u64, region: &str, nonce: u64) -> Option<Item> {
        Some(Item {
            id: "a".into(),
            data: Data::from_iter([("nonce".to_owned(), nonce.into())]),
            version: 1,
            updated_at: tandem_shared::item::format_timestamp(at),
            updated_in: region.into(),
        })
    }

    fn finals(id: &str, east: Option<Item>, west: Option<Item>) -> Finals {
        BTreeMap::from([(
            id.to_owned(),
            BTreeMap::from([(PRIMARY.to_owned(), east), (SECONDARY.to_owned(), west)]),
        )])
    }

    #[test]
    fn the_checker_tells_superseded_from_lost_and_spots_divergence_and_phantoms() {
        let ops = vec![put("a", 10, PRIMARY, 11, 1), put("a", 20, SECONDARY, 21, 2)];
        // The later write is held everywhere: the earlier one was superseded.
        let v = check(
            &ops,
            &[],
            &finals("a", item(20, SECONDARY, 2), item(20, SECONDARY, 2)),
        );
        assert!(v.ok(), "{v:?}");
        // The earlier one is held: the later acknowledged write was lost.
        let v = check(
            &ops,
            &[],
            &finals("a", item(10, PRIMARY, 1), item(10, PRIMARY, 1)),
        );
        assert_eq!(v.lost.len(), 1);
        // ... unless the region that acknowledged it lost its disk afterwards.
        let wipe = Event {
            at_ms: 30,
            what: format!("{SECONDARY}: disk lost"),
        };
        let v = check(
            &ops,
            &[wipe],
            &finals("a", item(10, PRIMARY, 1), item(10, PRIMARY, 1)),
        );
        assert!(v.ok() && v.lost_with_the_disk == 1, "{v:?}");
        // Regions that differ, and a value nobody wrote.
        let v = check(&ops, &[], &finals("a", item(20, SECONDARY, 2), None));
        assert!(!v.regions_identical);
        let v = check(
            &ops,
            &[],
            &finals("a", item(30, PRIMARY, 99), item(30, PRIMARY, 99)),
        );
        assert_eq!(v.phantoms.len(), 1);
        // Absent is fine only if a delete was sent.
        let v = check(&ops, &[], &finals("a", None, None));
        assert_eq!(v.lost.len(), 2);
    }
}
