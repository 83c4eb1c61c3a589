//! Outage drills: what one request of a drill recorded, the rules that judge it, and the
//! figures a drill reports.
//!
//! Shared by `tandem drill` and the console's drill button so that both measure the same
//! things the same way: failed requests by kind and phase, time to the first success from the
//! other region, stale reads, latency percentiles per phase and per region, lost writes and
//! convergence. No IO here: the callers read, these functions judge.
//!
//! The rules, all in last-writer-wins order (contract §5, [`Stamp`]):
//! - a write is *acknowledged* when a region answered 2xx with the item it stored;
//! - it is *lost* when, after convergence, some region holds nothing for its id or a write older
//!   than the last acknowledged write to that id ([`lost_writes`]); a later write is a
//!   legitimate overwrite, not a loss (a write the client gave up on, e.g. one a blackholed
//!   region applies when it wakes up, may land after the acknowledged one);
//! - the regions have *converged* when they hold the same final state for every id
//!   ([`diverging`]);
//! - a read is *stale* when it finds an acknowledged write missing or older ([`is_stale_read`]).
//!
//! With a switch of the active region (contract §6.3), [`SwitchFigures`] splits the outage at the
//! switch and counts the writes a plain client ([`ClientMode::Plain`]) saw fail. [`Rpo`] says what
//! was lost against what the stack's consistency mode promises (contract §10).
//!
//! The console runs this code in WebAssembly, so maps and sets are filled with `extend` rather
//! than `collect`: `collect` into a B-tree sorts first, and each map type then brings its own
//! copy of the stable sort (6 KB of the console after brotli, for these few types).

use crate::consistency::Consistency;
use crate::item::{Item, parse_timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The phase of a drill a request started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    Outage,
    After,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Read,
    Write,
}

/// One request of a drill, as the client lived it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds from the start of the drill to the start of the request.
    pub t_ms: f64,
    pub kind: Kind,
    pub phase: Phase,
    /// Final HTTP status; 0 when no response came at all.
    pub status: u16,
    /// Milliseconds until the final answer (client failover included).
    pub latency_ms: f64,
    /// `x-served-region` of the final answer.
    pub region: Option<String>,
    /// `x-edge-failover`, when the local edge reports one.
    pub edge_failover: Option<String>,
    /// The write was resent to the other region after a 5xx or a network error.
    pub client_failover: bool,
    /// A read of an acknowledged write that found it missing or older ([`is_stale_read`]): the
    /// answering region has not got it yet.
    pub stale: bool,
}

impl Sample {
    /// Whether the client got what it asked for (a stale read still counts as answered).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) || self.stale
    }
}

/// Latency percentiles of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Latency {
    /// The count, p50 and p99 ([`percentile`]) of `values`, in any order.
    pub fn of(mut values: Vec<f64>) -> Latency {
        // Values equal under `total_cmp` are identical, so an unstable sort orders them the same.
        values.sort_unstable_by(f64::total_cmp);
        Latency {
            count: values.len(),
            p50_ms: percentile(&values, 0.50),
            p99_ms: percentile(&values, 0.99),
        }
    }
}

pub use crate::stats::percentile;

/// Requests that failed, by kind and phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failures {
    pub reads: BTreeMap<String, usize>,
    pub writes: BTreeMap<String, usize>,
    pub total_reads: usize,
    pub total_writes: usize,
}

/// The figures of a drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: usize,
    pub failures: Failures,
    /// Milliseconds from the fault to the first success answered by another region: the
    /// recovery time a client saw. `None` when no request was answered elsewhere.
    pub rto_ms: Option<f64>,
    pub stale_reads: usize,
    pub client_failovers: usize,
    /// Latency per phase, and per answering region.
    pub latency_by_phase: BTreeMap<String, Latency>,
    pub latency_by_region: BTreeMap<String, Latency>,
}

fn phase_name(p: Phase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Summary {
    /// Figures of `samples` for a drill that faulted `region` at `fault_ms`.
    pub fn of(samples: &[Sample], region: &str, fault_ms: f64) -> Summary {
        let mut s = Summary {
            requests: samples.len(),
            ..Default::default()
        };
        let mut by_phase: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut by_region: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for x in samples {
            let phase = phase_name(x.phase);
            if !x.ok() {
                let (map, total) = match x.kind {
                    Kind::Read => (&mut s.failures.reads, &mut s.failures.total_reads),
                    Kind::Write => (&mut s.failures.writes, &mut s.failures.total_writes),
                };
                *map.entry(phase.clone()).or_default() += 1;
                *total += 1;
            }
            s.stale_reads += usize::from(x.stale);
            s.client_failovers += usize::from(x.client_failover);
            if x.ok() {
                by_phase.entry(phase).or_default().push(x.latency_ms);
                if let Some(r) = &x.region {
                    by_region.entry(r.clone()).or_default().push(x.latency_ms);
                }
            }
        }
        s.rto_ms = samples
            .iter()
            .filter(|x| {
                x.t_ms >= fault_ms && x.ok() && x.region.as_deref().is_some_and(|r| r != region)
            })
            .map(|x| x.t_ms + x.latency_ms - fault_ms)
            .min_by(f64::total_cmp);
        let latency = |(k, v): (String, Vec<f64>)| (k, Latency::of(v));
        s.latency_by_phase.extend(by_phase.into_iter().map(latency));
        s.latency_by_region
            .extend(by_region.into_iter().map(latency));
        s
    }
}

/// How a drill's client treats a write that got a 5xx or no answer through `/api`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ClientMode {
    /// As curl: no resend, the failed write is just failed.
    Plain,
    /// As the console (contract §6): resent to `/region/<other>/api/…`.
    #[default]
    Failover,
}

/// Who moves the active region (contract §6.3) during a drill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// Nobody: `/api/*` keeps going to the primary first.
    #[default]
    None,
    /// The drill: to the other region right after the fault, back after the heal.
    Manual,
    /// The stack's health watcher (`tandem up --auto-failover`); the drill only watches, and
    /// fails back after the heal.
    Auto,
}

/// Some requests of a drill: how the reads that got an answer fared, and the writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Latency of the reads that got an answer ([`Sample::ok`]).
    pub reads: Latency,
    /// Writes that got a 2xx, and those that did not.
    pub writes_ok: usize,
    pub writes_failed: usize,
    /// Writes that got a 2xx, by the region that answered.
    pub writes_by_region: BTreeMap<String, usize>,
}

impl Window {
    /// The figures of `samples`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Window {
        let mut w = Window::default();
        let mut reads = Vec::new();
        for x in samples {
            match x.kind {
                Kind::Read if x.ok() => reads.push(x.latency_ms),
                Kind::Read => {}
                Kind::Write if x.ok() => {
                    w.writes_ok += 1;
                    if let Some(r) = &x.region {
                        *w.writes_by_region.entry(r.clone()).or_default() += 1;
                    }
                }
                Kind::Write => w.writes_failed += 1,
            }
        }
        w.reads = Latency::of(reads);
        w
    }
}

/// The figures of a drill that depend on a switch of the active region (contract §6.3), and on the
/// client's way with failed writes ([`ClientMode`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwitchFigures {
    /// Milliseconds from the fault to the switch of the active region; `None` when no switch
    /// happened.
    pub switch_after_ms: Option<f64>,
    /// Writes sent once, with no resend to the other region, that got no 2xx, by phase: with
    /// a plain client every failed write (the failed write is just failed); with a failover
    /// client only those not worth a resend (a 4xx).
    pub plain_failed_writes: BTreeMap<String, usize>,
    pub total_plain_failed_writes: usize,
    /// The requests of the outage phase that started before the switch: all of them when there
    /// was none.
    pub outage_before_switch: Window,
    /// The requests of the outage phase that started at the switch or later.
    pub outage_after_switch: Window,
}

impl SwitchFigures {
    /// Figures of `samples` for a drill that injected its fault at `fault_ms` and switched the
    /// active region at `switch_ms` (both from the drill's start; `None`: no switch).
    pub fn of(samples: &[Sample], fault_ms: f64, switch_ms: Option<f64>) -> SwitchFigures {
        let mut f = SwitchFigures {
            switch_after_ms: switch_ms.map(|s| s - fault_ms),
            ..Default::default()
        };
        for x in samples {
            if x.kind == Kind::Write && !x.client_failover && !x.ok() {
                *f.plain_failed_writes
                    .entry(phase_name(x.phase))
                    .or_default() += 1;
                f.total_plain_failed_writes += 1;
            }
        }
        let outage = || samples.iter().filter(|x| x.phase == Phase::Outage);
        let switched = |x: &&Sample| switch_ms.is_some_and(|s| x.t_ms >= s);
        f.outage_before_switch = Window::of(outage().filter(|x| !switched(x)));
        f.outage_after_switch = Window::of(outage().filter(switched));
        f
    }
}

/// A write's place in last-writer-wins order (contract §5): when it was accepted and by which
/// region, ordered as `Record::lww_cmp` orders records. Equal stamps are the same write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// When the write was accepted: milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// The region that accepted it.
    pub updated_in: String,
}

impl Stamp {
    /// The stamp of the write `item` shows; `None` when its `updated_at` is not a timestamp.
    pub fn of(item: &Item) -> Option<Stamp> {
        Some(Stamp {
            updated_at_ms: parse_timestamp(&item.updated_at)?,
            updated_in: item.updated_in.clone(),
        })
    }
}

/// A write a region acknowledged: a 2xx answer carrying the item it stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedWrite {
    pub id: String,
    pub stamp: Stamp,
}

/// What the regions held when a drill read the acknowledged ids back: region → id → the stamp
/// of the item found there, `None` when the region had no item (404). An id missing from a
/// region's map (its read failed) counts as not held there.
pub type Held = BTreeMap<String, BTreeMap<String, Option<Stamp>>>;

/// An acknowledged write that a region did not hold after convergence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrite {
    pub id: String,
    pub region: String,
    /// The last write to the id that a region acknowledged.
    pub acknowledged: Stamp,
    /// What the region held instead: an older write, or nothing.
    pub found: Option<Stamp>,
}

/// The recovery point a drill measured, in the consistency mode of the stack it ran on
/// (contract §10): the strong mode promises that no acknowledged write is lost whatever one
/// member suffers, a lost disk included (RPO 0); the eventual mode may lose what a region had
/// acknowledged and not yet replicated when that region's data is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rpo {
    pub consistency: Consistency,
    /// Ids whose last acknowledged write some region did not hold after convergence.
    pub lost_ids: usize,
}

impl Rpo {
    /// Whether the mode's promise held: nothing lost in the strong mode (the eventual mode
    /// promises nothing of a lost region's unreplicated writes).
    pub fn kept(self) -> bool {
        self.consistency == Consistency::Eventual || self.lost_ids == 0
    }

    /// One line for reports.
    pub fn describe(self) -> String {
        match (self.consistency, self.lost_ids) {
            (mode, 0) => format!("RPO 0: no acknowledged write lost ({mode} consistency)"),
            (Consistency::Strong, n) => format!(
                "RPO broken: {n} id(s) lost an acknowledged write, which strong consistency \
                 promises never happens"
            ),
            (Consistency::Eventual, n) => format!(
                "{n} id(s) lost an acknowledged write (eventual consistency: a region's loss \
                 takes what it had not yet replicated)"
            ),
        }
    }
}

/// The last acknowledged write to each id, in last-writer-wins order (not in the order the
/// acknowledgements arrived: concurrent writes may be acknowledged out of order).
pub fn last_acknowledged(acked: &[AckedWrite]) -> BTreeMap<&str, &Stamp> {
    let mut last: BTreeMap<&str, &Stamp> = BTreeMap::new();
    for a in acked {
        let entry = last.entry(a.id.as_str()).or_insert(&a.stamp);
        if a.stamp > **entry {
            *entry = &a.stamp;
        }
    }
    last
}

/// The acknowledged writes that some region of `held` lost: for an id, the region holds nothing
/// or a write older than the last acknowledged one ([`last_acknowledged`]). Holding a later
/// write is an overwrite, not a loss. One entry per id and region, sorted by id then region.
pub fn lost_writes(acked: &[AckedWrite], held: &Held) -> Vec<LostWrite> {
    let mut lost = Vec::new();
    for (id, acknowledged) in last_acknowledged(acked) {
        for (region, ids) in held {
            let found = ids.get(id).cloned().flatten();
            if found.as_ref().is_none_or(|f| f < acknowledged) {
                lost.push(LostWrite {
                    id: id.to_owned(),
                    region: region.clone(),
                    acknowledged: acknowledged.clone(),
                    found,
                });
            }
        }
    }
    lost
}

/// The ids whose final state is not the same in every region of `held` (an id a region has no
/// entry for counts as not held there), sorted. Empty when the regions have converged.
pub fn diverging(held: &Held) -> Vec<String> {
    let mut ids = BTreeSet::new();
    ids.extend(held.values().flat_map(BTreeMap::keys));
    let state = |ids: &BTreeMap<String, Option<Stamp>>, id: &String| ids.get(id).cloned().flatten();
    ids.into_iter()
        .filter(|id| {
            let mut states = held.values().map(|ids| state(ids, id));
            let first = states.next();
            states.any(|s| Some(s) != first)
        })
        .cloned()
        .collect()
}

/// The ids a drill still waits for after a round of reads: those with a lost write
/// ([`lost_writes`]) or whose regions differ ([`diverging`]), sorted. Empty once the regions
/// have converged and nothing acknowledged is missing.
pub fn unsettled(acked: &[AckedWrite], held: &Held) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    ids.extend(lost_writes(acked, held).into_iter().map(|l| l.id));
    ids.extend(diverging(held));
    ids
}

/// Whether a read of an acknowledged write (`acked`) that found `found` (`None`: a 404) is
/// stale: it found nothing, or a write older than the acknowledged one.
pub fn is_stale_read(acked: &Stamp, found: Option<&Stamp>) -> bool {
    found.is_none_or(|f| f < acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, kind: Kind, phase: Phase, status: u16, region: &str) -> Sample {
        Sample {
            t_ms: t,
            kind,
            phase,
            status,
            latency_ms: 10.0,
            region: (!region.is_empty()).then(|| region.to_owned()),
            edge_failover: None,
            client_failover: false,
            stale: false,
        }
    }

    #[test]
    fn summary_counts_failures_rto_and_latency() {
        let samples = vec![
            sample(0.0, Kind::Read, Phase::Before, 200, "us-east-1"),
            sample(1000.0, Kind::Write, Phase::Outage, 502, ""),
            sample(1100.0, Kind::Read, Phase::Outage, 200, "us-west-2"),
            sample(1200.0, Kind::Read, Phase::Outage, 0, ""),
            sample(2000.0, Kind::Read, Phase::After, 200, "us-east-1"),
        ];
        let s = Summary::of(&samples, "us-east-1", 1000.0);
        assert_eq!(s.requests, 5);
        assert_eq!(s.failures.total_writes, 1);
        assert_eq!(s.failures.total_reads, 1);
        assert_eq!(s.failures.reads.get("outage"), Some(&1));
        assert_eq!(s.rto_ms, Some(110.0));
        assert_eq!(s.latency_by_region["us-east-1"].count, 2);
        assert_eq!(s.latency_by_phase["before"].p50_ms, Some(10.0));
    }

    #[test]
    fn stale_reads_are_answered_not_failed() {
        let mut x = sample(0.0, Kind::Read, Phase::Outage, 404, "us-west-2");
        x.stale = true;
        let s = Summary::of(&[x], "us-east-1", 0.0);
        assert_eq!((s.stale_reads, s.failures.total_reads), (1, 0));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect());
        assert_eq!((l.p50_ms, l.p99_ms), (Some(50.0), Some(99.0)));
        assert_eq!(Latency::of(vec![]).p50_ms, None);
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile(&[1.0, 2.0], 0.5), Some(1.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.99), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn the_outage_splits_at_the_switch() {
        let mut slow = sample(1000.0, Kind::Read, Phase::Outage, 200, "us-west-2");
        slow.latency_ms = 1000.0;
        let mut resent = sample(1100.0, Kind::Write, Phase::Outage, 200, "us-west-2");
        resent.client_failover = true;
        let samples = vec![
            sample(0.0, Kind::Write, Phase::Before, 200, "us-east-1"),
            slow,
            resent,
            sample(1200.0, Kind::Write, Phase::Outage, 504, ""),
            sample(1300.0, Kind::Read, Phase::Outage, 0, ""),
            // The switch at 1500: from then on the secondary answers at once.
            sample(1500.0, Kind::Read, Phase::Outage, 200, "us-west-2"),
            sample(1600.0, Kind::Write, Phase::Outage, 201, "us-west-2"),
            sample(1700.0, Kind::Write, Phase::Outage, 201, "us-west-2"),
            sample(3000.0, Kind::Write, Phase::After, 502, ""),
            sample(3100.0, Kind::Read, Phase::After, 200, "us-east-1"),
        ];
        let f = SwitchFigures::of(&samples, 1000.0, Some(1500.0));
        assert_eq!(f.switch_after_ms, Some(500.0));
        // The resent write is not a plain failure, the failed ones are, by phase.
        assert_eq!(f.total_plain_failed_writes, 2);
        assert_eq!(
            f.plain_failed_writes,
            BTreeMap::from([("outage".to_owned(), 1), ("after".to_owned(), 1)])
        );
        let before = &f.outage_before_switch;
        assert_eq!((before.reads.count, before.reads.p99_ms), (1, Some(1000.0)));
        assert_eq!((before.writes_ok, before.writes_failed), (1, 1));
        let after = &f.outage_after_switch;
        assert_eq!((after.reads.count, after.reads.p99_ms), (1, Some(10.0)));
        assert_eq!((after.writes_ok, after.writes_failed), (2, 0));
        assert_eq!(
            after.writes_by_region,
            BTreeMap::from([(WEST.to_owned(), 2)])
        );

        // No switch: the whole outage is "before", the fault-to-switch time is unknown.
        let f = SwitchFigures::of(&samples, 1000.0, None);
        assert_eq!(f.switch_after_ms, None);
        assert_eq!(f.outage_before_switch.reads.count, 2);
        assert_eq!(f.outage_before_switch.writes_ok, 3);
        assert_eq!(f.outage_after_switch, Window::default());
    }

    #[test]
    fn modes_are_named_as_the_flags_name_them() {
        assert_eq!(serde_json::to_value(ClientMode::Plain).unwrap(), "plain");
        assert_eq!(serde_json::to_value(SwitchMode::None).unwrap(), "none");
        let auto: SwitchMode = serde_json::from_value("auto".into()).unwrap();
        assert_eq!(auto, SwitchMode::Auto);
        assert_eq!(
            (ClientMode::default(), SwitchMode::default()),
            (ClientMode::Failover, SwitchMode::None)
        );
    }

    const EAST: &str = "us-east-1";
    const WEST: &str = "us-west-2";

    fn stamp(at: u64, region: &str) -> Stamp {
        Stamp {
            updated_at_ms: at,
            updated_in: region.to_owned(),
        }
    }

    fn acked(id: &str, at: u64, region: &str) -> AckedWrite {
        AckedWrite {
            id: id.to_owned(),
            stamp: stamp(at, region),
        }
    }

    /// `id` held as `east` in us-east-1 and `west` in us-west-2.
    fn held(id: &str, east: Option<Stamp>, west: Option<Stamp>) -> Held {
        [(EAST, east), (WEST, west)]
            .into_iter()
            .map(|(r, s)| (r.to_owned(), BTreeMap::from([(id.to_owned(), s)])))
            .collect()
    }

    #[test]
    fn stamps_order_by_time_then_region_and_come_from_items() {
        assert!(stamp(10, WEST) > stamp(10, EAST));
        assert!(stamp(11, EAST) > stamp(10, WEST));
        let item = Item {
            id: "a".into(),
            data: Default::default(),
            version: 1,
            updated_at: crate::item::format_timestamp(1_764_000_000_123),
            updated_in: WEST.into(),
        };
        assert_eq!(Stamp::of(&item), Some(stamp(1_764_000_000_123, WEST)));
        assert_eq!(
            Stamp::of(&Item {
                updated_at: "yesterday".into(),
                ..item
            }),
            None
        );
    }

    #[test]
    fn an_overwritten_acknowledged_write_is_not_lost() {
        // Two acknowledged writes to one id; both regions end with the later one. The old CLI
        // rule (each acknowledged write's data must be what every region holds) counted the
        // first one lost in both regions.
        let writes = [acked("a", 10, EAST), acked("a", 20, WEST)];
        let h = held("a", Some(stamp(20, WEST)), Some(stamp(20, WEST)));
        assert_eq!(lost_writes(&writes, &h), vec![]);
        // A later write nobody acknowledged (a blackholed region applying a request the client
        // gave up on) also overwrites, it does not lose.
        let h = held("a", Some(stamp(30, EAST)), Some(stamp(30, EAST)));
        assert_eq!(lost_writes(&writes, &h), vec![]);
    }

    #[test]
    fn an_older_write_or_nothing_is_a_loss_of_the_last_acknowledged_one() {
        // Acknowledged out of order: the last in last-writer-wins order is (20, west), so a
        // region still holding (10, east) lost it, even though (10, east) arrived last, and
        // even if its data happened to equal the later write's (the old rule compared data).
        let writes = [acked("a", 20, WEST), acked("a", 10, EAST)];
        let h = held("a", Some(stamp(10, EAST)), None);
        let lost = lost_writes(&writes, &h);
        assert_eq!(
            lost,
            vec![
                LostWrite {
                    id: "a".into(),
                    region: EAST.into(),
                    acknowledged: stamp(20, WEST),
                    found: Some(stamp(10, EAST)),
                },
                LostWrite {
                    id: "a".into(),
                    region: WEST.into(),
                    acknowledged: stamp(20, WEST),
                    found: None,
                },
            ]
        );
        // A region whose read failed (no entry) has not shown it holds the write.
        let mut h = held("a", Some(stamp(20, WEST)), Some(stamp(20, WEST)));
        h.get_mut(WEST).unwrap().clear();
        assert_eq!(lost_writes(&writes, &h).len(), 1);
    }

    #[test]
    fn convergence_means_the_same_final_state_everywhere() {
        // Both regions hold the acknowledged write or a later one, so the console's rule
        // ("each region holds it or a later write") called this converged: they still differ.
        let writes = [acked("a", 20, WEST)];
        let h = held("a", Some(stamp(30, EAST)), Some(stamp(20, WEST)));
        assert_eq!(lost_writes(&writes, &h), vec![]);
        assert_eq!(diverging(&h), vec!["a".to_owned()]);
        assert_eq!(unsettled(&writes, &h), BTreeSet::from(["a".to_owned()]));
        let h = held("a", Some(stamp(30, EAST)), Some(stamp(30, EAST)));
        assert!(diverging(&h).is_empty() && unsettled(&writes, &h).is_empty());
        // Absent everywhere agrees, but the acknowledged write is lost: still unsettled.
        let h = held("a", None, None);
        assert!(diverging(&h).is_empty());
        assert_eq!(unsettled(&writes, &h).len(), 1);
    }

    #[test]
    fn a_stale_read_finds_the_write_missing_or_older() {
        let a = stamp(20, WEST);
        assert!(is_stale_read(&a, None));
        // A 200 with an older write: the old rule (404 only) called this fresh.
        assert!(is_stale_read(&a, Some(&stamp(10, EAST))));
        assert!(!is_stale_read(&a, Some(&a)));
        assert!(!is_stale_read(&a, Some(&stamp(30, EAST))));
    }

    #[test]
    fn the_rpo_holds_the_strong_mode_to_zero() {
        let strong = Rpo {
            consistency: Consistency::Strong,
            lost_ids: 0,
        };
        assert!(strong.kept());
        assert_eq!(
            strong.describe(),
            "RPO 0: no acknowledged write lost (strong consistency)"
        );
        let broken = Rpo {
            lost_ids: 2,
            ..strong
        };
        assert!(!broken.kept() && broken.describe().starts_with("RPO broken: 2 id(s)"));
        let eventual = Rpo {
            consistency: Consistency::Eventual,
            lost_ids: 2,
        };
        assert!(eventual.kept() && eventual.describe().contains("eventual consistency"));
        let json = serde_json::to_value(strong).unwrap();
        assert_eq!(json["consistency"], "strong");
    }
}
