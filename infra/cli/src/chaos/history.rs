//! What a chaos run recorded (every operation with its outcome, every fault) and the checker
//! of an eventual run: every region holds the same items, every acknowledged PUT is either what
//! an id holds or was superseded under last-writer-wins (or was acknowledged by the region whose
//! disk was wiped, before the wipe: contract §5.1 allows losing those), and every value held was
//! actually written. A strong run adds the linearizability check ([`super::strong`]).

use serde::Serialize;
use std::collections::BTreeMap;
use tandem_shared::Consistency;
use tandem_shared::item::{Item, parse_timestamp};

/// A nemesis turn that injected nothing (logged, so the history shows the calm too).
pub const NO_FAULT: &str = "no fault";

/// What an operation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Put,
    Delete,
    /// A read (strong runs): what it found is the op's `found`.
    Get,
}

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
    pub kind: Kind,
    /// `edge` or a region name.
    pub via: String,
    /// The value written (`{"w", "n"}`), unique per operation.
    pub nonce: Option<u64>,
    /// A GET's answer: the nonce of the value found (`None`: 404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<u64>,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Sent and answered, in microseconds of the run's monotonic clock: what the
    /// linearizability check orders operations by (wall-clock milliseconds tie too often).
    pub start_us: u64,
    pub end_us: u64,
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
    pub consistency: Consistency,
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
    /// Strong runs: ids whose history was checked for linearizability, and those that failed
    /// it (or that the check could not decide), each with where its history breaks.
    pub linearizable_ids: usize,
    pub anomalies: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.regions_identical
            && self.lost.is_empty()
            && self.phantoms.is_empty()
            && self.anomalies.is_empty()
    }
}

/// What each region holds for each id: the item, or `None`.
pub type Finals = BTreeMap<String, BTreeMap<String, Option<Item>>>;

/// The checker (no IO): see the module's doc for the rules. In strong mode a lost disk excuses
/// nothing: a write was acknowledged only once a majority held it.
pub fn check(consistency: Consistency, ops: &[Op], events: &[Event], finals: &Finals) -> Verdict {
    let mut v = Verdict {
        consistency,
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
    for op in ops.iter().filter(|o| o.kind != Kind::Get) {
        match (&op.outcome, op.kind) {
            (Outcome::Ok { .. }, Kind::Put) => v.acknowledged_puts += 1,
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
            o.id == *id && o.kind == Kind::Delete && !matches!(o.outcome, Outcome::Failed { .. })
        });
        for op in ops.iter().filter(|o| o.id == *id && o.kind == Kind::Put) {
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
            if with_disk && consistency == Consistency::Eventual {
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

pub fn print(v: &Verdict) {
    println!("\nconsistency: {}", v.consistency);
    println!(
        "{} operations: {} PUTs and {} DELETEs acknowledged, {} refused, {} unknown; {} faults",
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
    if v.consistency == Consistency::Strong {
        println!(
            "linearizability: {} ids checked, {} anomalies",
            v.linearizable_ids,
            v.anomalies.len()
        );
        for a in &v.anomalies {
            println!("  {a}");
        }
    }
    println!("verdict: {}", if v.ok() { "ok" } else { "FAILED" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_shared::item::Data;
    use tandem_shared::region::{PRIMARY, SECONDARY};

    fn put(id: &str, at: u64, region: &str, end_ms: u64, nonce: u64) -> Op {
        Op {
            writer: 0,
            id: id.into(),
            kind: Kind::Put,
            via: "edge".into(),
            nonce: Some(nonce),
            found: None,
            start_ms: end_ms - 1,
            end_ms,
            start_us: (end_ms - 1) * 1000,
            end_us: end_ms * 1000,
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

    /// The verdict on an eventual run in which no fault was injected.
    fn eventual(ops: &[Op], finals: &Finals) -> Verdict {
        check(Consistency::Eventual, ops, &[], finals)
    }

    #[test]
    fn the_checker_tells_superseded_from_lost_and_spots_divergence_and_phantoms() {
        let ops = vec![put("a", 10, PRIMARY, 11, 1), put("a", 20, SECONDARY, 21, 2)];
        // The later write is held everywhere: the earlier one was superseded.
        let v = eventual(
            &ops,
            &finals("a", item(20, SECONDARY, 2), item(20, SECONDARY, 2)),
        );
        assert!(v.ok(), "{v:?}");
        // The earlier one is held: the later acknowledged write was lost.
        let v = eventual(
            &ops,
            &finals("a", item(10, PRIMARY, 1), item(10, PRIMARY, 1)),
        );
        assert_eq!(v.lost.len(), 1);
        // ... unless the region that acknowledged it lost its disk afterwards.
        let wipe = Event {
            at_ms: 30,
            what: format!("{SECONDARY}: disk lost"),
        };
        let v = check(
            Consistency::Eventual,
            &ops,
            std::slice::from_ref(&wipe),
            &finals("a", item(10, PRIMARY, 1), item(10, PRIMARY, 1)),
        );
        assert!(v.ok() && v.lost_with_the_disk == 1, "{v:?}");
        // In strong mode a write was acknowledged only once a majority held it: a lost disk
        // excuses nothing.
        let v = check(
            Consistency::Strong,
            &ops,
            &[wipe],
            &finals("a", item(10, PRIMARY, 1), item(10, PRIMARY, 1)),
        );
        assert_eq!((v.lost.len(), v.lost_with_the_disk), (1, 0), "{v:?}");
        // Regions that differ, and a value nobody wrote.
        let v = eventual(&ops, &finals("a", item(20, SECONDARY, 2), None));
        assert!(!v.regions_identical);
        let v = eventual(
            &ops,
            &finals("a", item(30, PRIMARY, 99), item(30, PRIMARY, 99)),
        );
        assert_eq!(v.phantoms.len(), 1);
        // Absent is fine only if a delete was sent.
        let v = eventual(&ops, &finals("a", None, None));
        assert_eq!(v.lost.len(), 2);
    }
}
