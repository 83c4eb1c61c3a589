//! Whether the health watcher's function may reserve concurrency on this account, decided from
//! the account's Lambda limits before anything on AWS changes.
//!
//! Lambda keeps part of an account's concurrency unreserved: the Lambda Developer Guide
//! (*Configuring reserved concurrency*) lets a function reserve "up to the Unreserved account
//! concurrency value that is shown, minus 100". A new account's quota is often 10 in all, and
//! there Lambda refuses any reservation ("decreases account's UnreservedConcurrentExecution
//! below its minimum value of [10]"): the floor is taken to be the whole quota below 100, which
//! is what that refusal names, not a documented rule. A watcher stack that reserved
//! unconditionally failed there, on the last stack of `tandem deploy --auto-failover`. So
//! watcher.yaml reserves nothing unless asked (`--reserve-watcher-concurrency`), and two
//! overlapping invocations are kept apart by the KeyValueStore's ETag instead: a switch writes
//! with `If-Match` on the ETag it read, and the loser writes nothing.

use crate::sdk::LambdaLimits;

/// The unreserved executions Lambda keeps by default (Lambda Developer Guide, *Configuring
/// reserved concurrency*).
pub const UNRESERVED_FLOOR: i64 = 100;
/// What the watcher reserves when asked: one invocation at a time.
pub const WATCHER_RESERVATION: i64 = 1;

/// What deploy does about the watcher's concurrency, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Deploy stops here, before any change, when false.
    pub proceed: bool,
    /// What it found and decided, a line each.
    pub lines: Vec<String>,
}

/// The floor of unreserved executions an account with `concurrent` in all must keep.
pub fn floor(concurrent: i64) -> i64 {
    UNRESERVED_FLOOR.min(concurrent)
}

/// The decision for `reserve` (`--reserve-watcher-concurrency`) given what was read in
/// `region` (or why it could not be).
pub fn decide(region: &str, limits: Result<LambdaLimits, String>, reserve: bool) -> Verdict {
    let guard = "overlapping invocations are kept apart by the KeyValueStore's ETag: a switch \
                 writes with If-Match on the ETag it read, and the loser writes nothing";
    let limits = match limits {
        Ok(limits) => limits,
        Err(why) => {
            let what = match reserve {
                true => "reserving 1 for the watcher as asked; CloudFormation refuses the \
                         watcher's stack if the account cannot spare it"
                    .to_owned(),
                false => format!("the watcher reserves no concurrency; {guard}"),
            };
            return Verdict {
                proceed: true,
                lines: vec![
                    format!("Lambda in {region}: could not read the account's limits ({why})"),
                    what,
                ],
            };
        }
    };
    let LambdaLimits {
        concurrent,
        unreserved,
    } = limits;
    let found = format!(
        "Lambda in {region}: ConcurrentExecutions {concurrent}, UnreservedConcurrentExecutions \
         {unreserved}"
    );
    let floor = floor(concurrent);
    let left = unreserved - WATCHER_RESERVATION;
    if !reserve {
        let could = match left >= floor {
            true => "--reserve-watcher-concurrency would fit".to_owned(),
            false => format!(
                "this account could not reserve any (Lambda keeps at least {floor} unreserved)"
            ),
        };
        return Verdict {
            proceed: true,
            lines: vec![
                found,
                format!("the watcher reserves no concurrency ({could}); {guard}"),
            ],
        };
    }
    if left >= floor {
        return Verdict {
            proceed: true,
            lines: vec![
                found,
                format!(
                    "the watcher reserves {WATCHER_RESERVATION} (--reserve-watcher-concurrency), \
                     leaving {left} unreserved (Lambda keeps at least {floor})"
                ),
            ],
        };
    }
    Verdict {
        proceed: false,
        lines: vec![
            found,
            format!(
                "--reserve-watcher-concurrency: reserving {WATCHER_RESERVATION} would leave {left} \
                 unreserved, below the {floor} Lambda keeps, so the watcher's stack would fail. \
                 Deploy without it ({guard}), or raise the quota (Service Quotas, AWS Lambda, \
                 Concurrent executions)"
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEST: &str = "us-west-2";

    fn limits(concurrent: i64, unreserved: i64) -> Result<LambdaLimits, String> {
        Ok(LambdaLimits {
            concurrent,
            unreserved,
        })
    }

    #[test]
    fn a_new_account_deploys_without_a_reservation_and_is_told_why() {
        let verdict = decide(WEST, limits(10, 10), false);
        assert!(verdict.proceed);
        assert_eq!(
            verdict.lines[0],
            "Lambda in us-west-2: ConcurrentExecutions 10, UnreservedConcurrentExecutions 10"
        );
        assert!(
            verdict.lines[1].contains("reserves no concurrency"),
            "{verdict:?}"
        );
        assert!(
            verdict.lines[1].contains("could not reserve any"),
            "{verdict:?}"
        );
        assert!(verdict.lines[1].contains("ETag"), "{verdict:?}");
    }

    #[test]
    fn a_reservation_the_account_cannot_spare_stops_the_deploy_before_any_change() {
        for (concurrent, unreserved) in [(10, 10), (1000, 100), (50, 50)] {
            let verdict = decide(WEST, limits(concurrent, unreserved), true);
            assert!(!verdict.proceed, "{concurrent}/{unreserved}: {verdict:?}");
            assert!(verdict.lines[1].contains("Service Quotas"), "{verdict:?}");
        }
    }

    #[test]
    fn a_reservation_that_fits_is_made() {
        let verdict = decide(WEST, limits(1000, 1000), true);
        assert!(verdict.proceed);
        assert!(
            verdict.lines[1].contains("leaving 999 unreserved"),
            "{verdict:?}"
        );
        assert!(verdict.lines[1].contains("at least 100"), "{verdict:?}");
        // Exactly at the floor after the reservation still fits.
        assert!(decide(WEST, limits(1000, 101), true).proceed);
        let roomy = decide(WEST, limits(1000, 1000), false);
        assert!(roomy.lines[1].contains("would fit"), "{roomy:?}");
    }

    #[test]
    fn limits_that_cannot_be_read_do_not_stop_the_deploy() {
        let why = || Err("UnknownOperationException".to_owned());
        for reserve in [false, true] {
            let verdict = decide(WEST, why(), reserve);
            assert!(verdict.proceed);
            assert!(
                verdict.lines[0].contains("could not read the account's limits"),
                "{verdict:?}"
            );
        }
    }

    #[test]
    fn the_floor_is_100_or_the_whole_quota_below_it() {
        assert_eq!(floor(1000), 100);
        assert_eq!(floor(10), 10);
    }
}
