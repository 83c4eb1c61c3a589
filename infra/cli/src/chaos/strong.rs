//! The linearizability check of a strong run (contract §10): each id's operations, as its
//! clients saw them, must be explainable by one register taking each operation at one instant
//! inside its interval ([`super::linearizable`]). The final reads of every region, taken after
//! the heal, close each history, so a write acknowledged and then lost shows up as a read that
//! cannot be explained.

use super::history::{Finals, Kind, Op, Outcome};
use super::linearizable::{Anomaly, Observed, Operation, check};
use std::collections::BTreeMap;

/// How many ids were checked, and a line for each that failed (or was undecided).
pub fn linearizability(ops: &[Op], finals: &Finals, finals_at_us: u64) -> (usize, Vec<String>) {
    let mut by_id: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in ops {
        if let Some(operation) = operation(op) {
            by_id.entry(op.id.as_str()).or_default().push(operation);
        }
    }
    // The final reads, after everything else: each region's value, one after the other.
    for (id, by_region) in finals {
        for (i, item) in by_region.values().enumerate() {
            let found = item.as_ref().and_then(|item| nonce_of(&item.data));
            let at = finals_at_us + 2 * i as u64;
            by_id.entry(id.as_str()).or_default().push(Operation {
                start: at,
                end: at + 1,
                observed: Observed::Read(found),
            });
        }
    }
    let mut anomalies = Vec::new();
    for (id, history) in &by_id {
        match check(history) {
            Ok(()) => {}
            Err(Anomaly::NotLinearizable { stuck_at }) => anomalies.push(format!(
                "{id}: not linearizable ({} operations); no order explains {:?} sent at {} µs, \
                 answered at {} µs",
                history.len(),
                stuck_at.observed,
                stuck_at.start,
                stuck_at.end
            )),
            Err(Anomaly::Undecided { states }) => anomalies.push(format!(
                "{id}: undecided after {states} states ({} operations)",
                history.len()
            )),
        }
    }
    (by_id.len(), anomalies)
}

/// What one operation observed, if anything: a refused write did nothing, and a read without
/// an answer saw nothing.
fn operation(op: &Op) -> Option<Operation> {
    let written = match op.kind {
        Kind::Put => op.nonce,
        Kind::Delete | Kind::Get => None,
    };
    let observed = match (&op.outcome, op.kind) {
        (Outcome::Ok { .. }, Kind::Get) => Observed::Read(op.found),
        (Outcome::Ok { .. }, _) => Observed::Wrote(written),
        (Outcome::Unknown { .. }, Kind::Put | Kind::Delete) => Observed::MaybeWrote(written),
        (Outcome::Failed { .. }, _) | (Outcome::Unknown { .. }, Kind::Get) => return None,
    };
    Some(Operation {
        start: op.start_us,
        end: op.end_us,
        observed,
    })
}

/// The nonce a chaos writer put in an item's data.
pub fn nonce_of(data: &tandem_shared::item::Data) -> Option<u64> {
    data.to_map().get("nonce")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_shared::Item;
    use tandem_shared::item::Data;
    use tandem_shared::region::{PRIMARY, SECONDARY};

    fn op(
        kind: Kind,
        nonce: Option<u64>,
        found: Option<u64>,
        span: (u64, u64),
        outcome: Outcome,
    ) -> Op {
        Op {
            writer: 0,
            id: "a".into(),
            kind,
            via: "edge".into(),
            nonce,
            found,
            start_ms: 0,
            end_ms: 0,
            start_us: span.0,
            end_us: span.1,
            outcome,
        }
    }

    fn ok() -> Outcome {
        Outcome::Ok {
            updated_at_ms: None,
            updated_in: None,
        }
    }

    fn finals(nonce: Option<u64>) -> Finals {
        let item = nonce.map(|n| Item {
            id: "a".into(),
            data: Data::from_iter([("nonce".to_owned(), n.into())]),
            version: 1,
            updated_at: tandem_shared::item::format_timestamp(1),
            updated_in: PRIMARY.into(),
        });
        BTreeMap::from([(
            "a".to_owned(),
            BTreeMap::from([
                (PRIMARY.to_owned(), item.clone()),
                (SECONDARY.to_owned(), item),
            ]),
        )])
    }

    #[test]
    fn an_acknowledged_write_the_regions_lost_is_an_anomaly() {
        let ops = [op(Kind::Put, Some(7), None, (0, 10), ok())];
        assert_eq!(linearizability(&ops, &finals(Some(7)), 100), (1, vec![]));
        let (checked, anomalies) = linearizability(&ops, &finals(None), 100);
        assert_eq!((checked, anomalies.len()), (1, 1), "{anomalies:?}");
    }

    #[test]
    fn refused_writes_did_nothing_and_unanswered_ones_may_have() {
        let refused = op(
            Kind::Put,
            Some(8),
            None,
            (20, 30),
            Outcome::Failed { status: 409 },
        );
        let ops = [op(Kind::Put, Some(7), None, (0, 10), ok()), refused];
        assert_eq!(
            linearizability(&ops, &finals(Some(7)), 100).1,
            Vec::<String>::new()
        );
        assert_eq!(linearizability(&ops, &finals(Some(8)), 100).1.len(), 1);
        let unknown = Outcome::Unknown {
            error: "timeout".into(),
        };
        let ops = [
            op(Kind::Put, Some(7), None, (0, 10), ok()),
            op(Kind::Delete, None, None, (20, 30), unknown),
        ];
        for after in [Some(7), None] {
            assert!(
                linearizability(&ops, &finals(after), 100).1.is_empty(),
                "{after:?}"
            );
        }
    }

    #[test]
    fn a_stale_read_in_the_middle_of_a_run_is_found() {
        let ops = [
            op(Kind::Put, Some(1), None, (0, 10), ok()),
            op(Kind::Put, Some(2), None, (20, 30), ok()),
            op(Kind::Get, None, Some(1), (40, 50), ok()),
        ];
        let (_, anomalies) = linearizability(&ops, &finals(Some(2)), 100);
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    }
}
