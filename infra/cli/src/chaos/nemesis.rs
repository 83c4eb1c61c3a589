//! The nemesis of a chaos run: random faults on the members (crashes, stops, blackholes), and
//! in an eventual run replication pauses and lag; once, half-way, a member loses its disk. In a
//! strong run the witness is a member like the regions (contract §10).

use super::history::{Event, NO_FAULT};
use crate::bench::{self, Stack};
use anyhow::Context as _;
use std::time::{Duration, Instant};
use tandem_api::store::now_ms;
use tandem_ops::client::ControlClient;
use tandem_shared::Consistency;
use tandem_shared::control::{Outage, RegionState, ReplicationPatch};
use tandem_shared::region::{PRIMARY, SECONDARY, WITNESS};
use tandem_shared::rng::Rng;

/// The members faults are injected into.
pub fn members(consistency: Consistency) -> &'static [&'static str] {
    match consistency {
        Consistency::Eventual => &[PRIMARY, SECONDARY],
        Consistency::Strong => &[PRIMARY, SECONDARY, WITNESS],
    }
}

/// Injects random faults until `duration` has passed; wipes one member's disk half-way.
pub async fn run(
    stack: &Stack,
    consistency: Consistency,
    mut rng: Rng,
    duration: Duration,
) -> Vec<Event> {
    let control = bench::control(stack);
    let members = members(consistency);
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
        let member = members[rng.below(members.len() as u64) as usize];
        let hold = Duration::from_millis(300 + rng.below(2500));
        let result = if !wiped && started.elapsed() >= duration / 2 {
            wiped = true;
            // Logged once the member has stopped: in an eventual run what it acknowledged
            // until then is what the checker may excuse as lost with the disk.
            match control.set_region(member, RegionState::Stopped).await {
                Ok(_) => {
                    log(format!(
                        "{member}: disk lost (stopped, data directory wiped, started)"
                    ));
                    wipe(stack, &control, member).await
                }
                Err(e) => Err(e),
            }
        } else {
            let fault = rng.below(5);
            match fault {
                0 | 1 => {
                    let outage = [Outage::Crashed, Outage::Stopped, Outage::Blackhole]
                        [rng.below(3) as usize];
                    log(format!("{member}: {outage} for {} ms", hold.as_millis()));
                    hold_outage(&control, member, outage, hold).await
                }
                // A strong run has no asynchronous replication to pause or slow.
                2 if consistency == Consistency::Eventual => {
                    log(format!("replication paused for {} ms", hold.as_millis()));
                    hold_outage(&control, member, Outage::Partition, hold).await
                }
                3 if consistency == Consistency::Eventual => {
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

/// `outage` in `member` for `hold`, then cleared.
async fn hold_outage(
    control: &ControlClient,
    member: &str,
    outage: Outage,
    hold: Duration,
) -> anyhow::Result<()> {
    control.inject(member, outage, None).await?;
    tokio::time::sleep(hold).await;
    control.clear(member, outage).await
}

/// Deletes a stopped member's data directory and starts it again.
async fn wipe(stack: &Stack, control: &ControlClient, member: &str) -> anyhow::Result<()> {
    let dir = stack.data_dir().join(member);
    std::fs::remove_dir_all(&dir).with_context(|| format!("wiping {}", dir.display()))?;
    control.set_region(member, RegionState::Up).await.map(drop)
}

/// Every member up, and (eventual) replication running with no lag.
pub async fn heal(control: &ControlClient, consistency: Consistency) -> anyhow::Result<()> {
    for member in members(consistency) {
        control.set_region(member, RegionState::Up).await?;
    }
    if consistency == Consistency::Strong {
        return Ok(());
    }
    let calm = ReplicationPatch {
        paused: Some(false),
        lag_ms: Some(0),
    };
    control.set_replication(calm).await.map(drop)
}
