//! Is one item's history linearizable? The check `tandem chaos --consistency strong` runs on
//! every id it wrote (contract §10): the item is a register whose value is the nonce of the
//! last write (`None` when absent: never written, or deleted), and each operation must appear
//! to take effect at one instant between the moment it was sent and the moment its answer came.
//!
//! The search is Wing and Gong's, with Lowe's memoisation, as Porcupine and Knossos run it: take
//! the earliest pending call, linearize it if the register allows, and backtrack when an answer
//! arrives for an operation that could not be placed; a (set of linearized operations, register
//! value) pair seen before is not searched again. Items are checked one by one (a history is
//! linearizable if and only if each object's is, Herlihy and Wing's locality), which keeps each
//! search small. No Rust crate we know keeps this algorithm maintained with memoisation
//! (stateright's tester enumerates interleavings without it), so it is here, in one file,
//! tested against hand-made anomalies and against histories of a register that is correct by
//! construction.
//!
//! A write that got no answer (a timeout, a 5xx) may have taken effect at any instant after it
//! was sent, or never: its answer is placed after everything else, where taking effect changes
//! nothing anybody observed. One whose value no read found is left out ([`observed_only`]). A
//! read without an answer observed nothing and is left out.

use std::collections::HashSet;

/// What one operation did to the register, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// An acknowledged write of this value (`None`: an acknowledged delete).
    Wrote(Option<u64>),
    /// A write of this value that got no answer: it may or may not have taken effect.
    MaybeWrote(Option<u64>),
    /// A read that found this value (`None`: 404).
    Read(Option<u64>),
}

/// One operation on the register, with its real-time interval (any unit, one clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// When it was sent.
    pub start: u64,
    /// When its answer arrived (ignored for [`Observed::MaybeWrote`]).
    pub end: u64,
    pub observed: Observed,
}

/// Why a history was not found linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// No order of the operations explains what was observed; `stuck_at` is the operation the
    /// longest partial explanation could not place (where to start reading the history).
    NotLinearizable { stuck_at: Operation },
    /// The search gave up after this many states without a verdict.
    Undecided { states: usize },
}

/// Most (linearized set, value) states searched for one item before the verdict is
/// [`Anomaly::Undecided`]: a bound on the checker's memory and time whatever the history.
pub const MAX_STATES: usize = 2_000_000;

/// One end of an operation's interval, in time order (the list the search walks).
#[derive(Debug, Clone, Copy)]
struct Entry {
    op: usize,
    call: bool,
    /// For a call: the index of its return entry.
    partner: usize,
}

/// Checks one item's history, starting from an absent item.
pub fn check(ops: &[Operation]) -> Result<(), Anomaly> {
    let ops = &observed_only(ops)[..];
    let entries = entries(ops);
    // A circular doubly linked list over `entries` with a head sentinel at index `n`: lifting
    // an operation unlinks its two entries, and undoing it relinks them where they were.
    let n = entries.len();
    let head = n;
    let mut next: Vec<usize> = (1..=n).chain([0]).collect();
    let mut prev: Vec<usize> = std::iter::once(n).chain(0..n).collect();

    let mut value: Option<u64> = None;
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut deepest = (0, None);
    let mut at = next[head];
    while next[head] != head {
        let entry = entries[at];
        if entry.call {
            let op = &ops[entry.op];
            if let Some(after) = step(value, op.observed) {
                set(&mut linearized, entry.op, true);
                if seen.insert((linearized.clone(), after)) {
                    if seen.len() > MAX_STATES {
                        return Err(Anomaly::Undecided { states: seen.len() });
                    }
                    stack.push((at, value));
                    value = after;
                    unlink(&mut next, &mut prev, at);
                    unlink(&mut next, &mut prev, entry.partner);
                    at = next[head];
                    continue;
                }
                set(&mut linearized, entry.op, false);
            }
            at = next[at];
        } else {
            // This operation answered before it could be placed: undo the last choice.
            if deepest.1.is_none() || stack.len() > deepest.0 {
                deepest = (stack.len(), Some(ops[entry.op]));
            }
            let Some((call, before)) = stack.pop() else {
                return Err(Anomaly::NotLinearizable {
                    stuck_at: deepest.1.unwrap_or(ops[entry.op]),
                });
            };
            let undone = entries[call];
            relink(&mut next, &mut prev, undone.partner);
            relink(&mut next, &mut prev, call);
            set(&mut linearized, undone.op, false);
            value = before;
            at = next[call];
        }
    }
    Ok(())
}

/// The register's value after `observed` took effect on `value`, if it could.
/// The history without the unanswered writes that no read can have seen: no read found their
/// value (a delete's: 404) and answered after they were sent. Leaving such a write out of a
/// linearization is always allowed: between the instant it would take effect (after it was
/// sent) and the next write, no read that saw its value can fall, so no read falls there, and
/// without it every read still sees what it saw. Each one left in multiplies the orders the
/// search may try (it may take effect after any operation, or never), and a strong run's
/// faults leave hundreds (a 503 may still be applied, contract §10.3): with them, histories of
/// 30 operations went undecided after [`MAX_STATES`] states.
fn observed_only(ops: &[Operation]) -> Vec<Operation> {
    // For each value read, the last instant a read that found it answered.
    let mut last_read: std::collections::HashMap<Option<u64>, u64> = Default::default();
    for o in ops {
        if let Observed::Read(v) = o.observed {
            let end = last_read.entry(v).or_insert(o.end);
            *end = (*end).max(o.end);
        }
    }
    ops.iter()
        .filter(|o| match o.observed {
            Observed::MaybeWrote(v) => last_read.get(&v).is_some_and(|end| *end >= o.start),
            _ => true,
        })
        .copied()
        .collect()
}

fn step(value: Option<u64>, observed: Observed) -> Option<Option<u64>> {
    match observed {
        Observed::Wrote(v) | Observed::MaybeWrote(v) => Some(v),
        Observed::Read(v) => (v == value).then_some(value),
    }
}

/// Calls and returns in time order. At equal times calls come first: two operations that
/// touch at one instant count as concurrent, the lenient reading of a coarse clock.
fn entries(ops: &[Operation]) -> Vec<Entry> {
    let mut ends: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        let end = match op.observed {
            Observed::MaybeWrote(_) => u64::MAX,
            _ => op.end.max(op.start),
        };
        ends.push((op.start, true, i));
        ends.push((end, false, i));
    }
    // `!call` sorts calls (false) before returns (true) at one time.
    ends.sort_by_key(|&(t, call, i)| (t, !call, i));
    let mut return_at = vec![0; ops.len()];
    for (at, &(_, call, i)) in ends.iter().enumerate() {
        if !call {
            return_at[i] = at;
        }
    }
    ends.iter()
        .map(|&(_, call, op)| Entry {
            op,
            call,
            partner: if call { return_at[op] } else { 0 },
        })
        .collect()
}

fn unlink(next: &mut [usize], prev: &mut [usize], at: usize) {
    let (p, n) = (prev[at], next[at]);
    next[p] = n;
    prev[n] = p;
}

fn relink(next: &mut [usize], prev: &mut [usize], at: usize) {
    let (p, n) = (prev[at], next[at]);
    next[p] = at;
    prev[n] = at;
}

fn set(bits: &mut [u64], i: usize, on: bool) {
    let (word, bit) = (i / 64, 1u64 << (i % 64));
    if on {
        bits[word] |= bit;
    } else {
        bits[word] &= !bit;
    }
}

#[cfg(test)]
mod tests {
    use super::Observed::{MaybeWrote, Read, Wrote};
    use super::*;
    use tandem_shared::rng::Rng;

    fn op(start: u64, end: u64, observed: Observed) -> Operation {
        Operation {
            start,
            end,
            observed,
        }
    }

    #[test]
    fn an_empty_history_and_a_sequential_one_are_linearizable() {
        assert_eq!(check(&[]), Ok(()));
        let ops = [
            op(0, 1, Read(None)),
            op(2, 3, Wrote(Some(1))),
            op(4, 5, Read(Some(1))),
            op(6, 7, Wrote(None)),
            op(8, 9, Read(None)),
        ];
        assert_eq!(check(&ops), Ok(()));
    }

    #[test]
    fn a_read_after_an_acknowledged_write_that_misses_it_is_an_anomaly() {
        let stale = op(4, 5, Read(None));
        let ops = [op(0, 1, Wrote(Some(1))), stale];
        assert_eq!(
            check(&ops),
            Err(Anomaly::NotLinearizable { stuck_at: stale })
        );
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [None, Some(1)] {
            let ops = [op(0, 10, Wrote(Some(1))), op(2, 3, Read(seen))];
            assert_eq!(check(&ops), Ok(()), "read {seen:?}");
        }
    }

    #[test]
    fn reads_may_not_go_back_in_time() {
        // Both writes done before either read: once 2 is read, 1 cannot be read later.
        let ops = [
            op(0, 5, Wrote(Some(1))),
            op(1, 6, Wrote(Some(2))),
            op(7, 8, Read(Some(2))),
            op(9, 10, Read(Some(1))),
        ];
        assert!(matches!(check(&ops), Err(Anomaly::NotLinearizable { .. })));
        // The same values read in the other order are fine: 2 then 1 were written in that order.
        let ops = [
            op(0, 5, Wrote(Some(1))),
            op(1, 6, Wrote(Some(2))),
            op(7, 8, Read(Some(1))),
            op(9, 10, Read(Some(1))),
        ];
        assert_eq!(check(&ops), Ok(()));
    }

    #[test]
    fn a_value_nobody_wrote_is_an_anomaly() {
        let ops = [op(0, 1, Wrote(Some(1))), op(2, 3, Read(Some(7)))];
        assert!(check(&ops).is_err());
    }

    #[test]
    fn an_unanswered_write_may_have_taken_effect_or_not() {
        for later in [Some(1), Some(2)] {
            let ops = [
                op(0, 1, Wrote(Some(1))),
                op(2, 0, MaybeWrote(Some(2))),
                op(5, 6, Read(later)),
            ];
            assert_eq!(check(&ops), Ok(()), "read {later:?}");
        }
        // But not both: once its value was read, the older value cannot come back.
        let ops = [
            op(0, 1, Wrote(Some(1))),
            op(2, 0, MaybeWrote(Some(2))),
            op(5, 6, Read(Some(2))),
            op(7, 8, Read(Some(1))),
        ];
        assert!(check(&ops).is_err());
    }

    #[test]
    fn unanswered_writes_nobody_read_do_not_blow_up_the_search() {
        // Three writers; all through the run, writes that got no answer (values 1000 and up,
        // never read) overlap each other and everything else.
        let mut ops = Vec::new();
        for i in 0..40u64 {
            ops.push(op(i * 10, 0, MaybeWrote(Some(1000 + i))));
            ops.push(op(i * 10, i * 10 + 4, Wrote(Some(i))));
            ops.push(op(i * 10 + 5, i * 10 + 6, Read(Some(i))));
        }
        assert_eq!(check(&ops), Ok(()));
        // Deletes that got no answer after the last 404 are left out too.
        for i in 0..40u64 {
            ops.push(op(500 + i, 0, MaybeWrote(None)));
        }
        ops.push(op(0, 1, Read(None)));
        assert_eq!(check(&ops), Ok(()));
        // Left out only when unread: a read of one still has to be explained.
        ops.push(op(1000, 1001, Read(Some(1039))));
        ops.push(op(1002, 1003, Read(Some(39))));
        assert!(matches!(check(&ops), Err(Anomaly::NotLinearizable { .. })));
    }

    #[test]
    fn operations_that_touch_at_one_instant_are_concurrent() {
        // The write answered at 5 and the read was sent at 5: either order is possible.
        let ops = [op(0, 5, Wrote(Some(1))), op(5, 6, Read(None))];
        assert_eq!(check(&ops), Ok(()));
    }

    /// Histories of a register that is linearizable by construction: each operation takes
    /// effect at a random instant inside its interval, some writes lose their answer.
    #[test]
    fn histories_of_a_correct_register_always_pass() {
        let mut rng = Rng::new(27);
        for round in 0..200 {
            let clients = 1 + rng.below(5) as usize;
            let mut effects: Vec<(u64, usize)> = Vec::new();
            let mut ops = Vec::new();
            let mut clock = vec![0u64; clients];
            for i in 0..40 {
                let c = rng.below(clients as u64) as usize;
                let start = clock[c] + rng.below(5);
                let at = start + rng.below(10);
                let end = at + rng.below(10);
                clock[c] = end + 1;
                let kind = rng.below(10);
                let observed = match kind {
                    0..=3 => Read(None), // filled in below, once the order is known
                    4 => Wrote(None),
                    5 | 6 => MaybeWrote(Some(i)),
                    _ => Wrote(Some(i)),
                };
                // Kind 6 is a write whose answer was lost before it took effect: it never did.
                if kind != 6 {
                    effects.push((at, ops.len()));
                }
                ops.push(op(start, end, observed));
            }
            // Apply in effect order (ties by index: a total order), reading the value then.
            effects.sort();
            let mut value = None;
            for (_, i) in effects {
                match &mut ops[i].observed {
                    Read(seen) => *seen = value,
                    Wrote(v) | MaybeWrote(v) => value = *v,
                }
            }
            assert_eq!(check(&ops), Ok(()), "round {round}: {ops:?}");
        }
    }

    #[test]
    fn a_single_corrupted_read_in_a_long_history_is_found() {
        let mut ops = Vec::new();
        for i in 0..300u64 {
            ops.push(op(i * 10, i * 10 + 3, Wrote(Some(i))));
            ops.push(op(i * 10 + 4, i * 10 + 6, Read(Some(i))));
        }
        assert_eq!(check(&ops), Ok(()));
        ops[401].observed = Read(Some(150));
        assert!(matches!(check(&ops), Err(Anomaly::NotLinearizable { .. })));
    }
}
