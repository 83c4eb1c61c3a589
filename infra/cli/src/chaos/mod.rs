//! `tandem chaos`: a randomized fault run in the manner of Jepsen, on a stack it starts itself.
//!
//! Writers PUT and DELETE a small set of ids (and in a strong run GET them), through the edge
//! and straight to each region, and record every operation with its outcome ([`writer`]). A
//! nemesis meanwhile crashes, stops and blackholes members, pauses and slows replication (an
//! eventual run), and once wipes a member's disk ([`nemesis`]). Then everything is healed, the
//! regions are given time to converge, and the checker judges the history ([`history`]): in an
//! eventual run, that nothing acknowledged was lost but what last-writer-wins superseded or a
//! lost disk took; in a strong run (`--consistency strong`), that nothing acknowledged was lost
//! at all and that each id's history is linearizable ([`strong`], [`linearizable`]).

pub mod history;
pub mod linearizable;
pub mod nemesis;
pub mod strong;
pub mod writer;

use crate::bench;
use anyhow::{Context as _, bail};
use history::{Event, Finals, Op, Verdict};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_api::store::now_ms;
use tandem_ops::items::ItemClient;
use tandem_shared::Consistency;
use tandem_shared::control::EdgeSettings;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::rng::Rng;
use tandem_shared::sync::lock;
use writer::{Writer, id_of};

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
    /// Distinct ids written [default: 24 (few, so writes conflict); 256 with `--consistency
    /// strong`, whose linearizability check searches each id's history: a five-minute run over
    /// 24 ids leaves histories too long to decide].
    #[arg(long)]
    pub keys: Option<usize>,
    /// Write the history (every operation and fault) as JSON here.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// The stack's consistency mode: `strong` adds a witness, reads, and the linearizability
    /// check (contract §10).
    #[arg(long, value_enum, default_value_t = Consistency::Eventual)]
    pub consistency: Consistency,
}

#[derive(Serialize)]
struct History<'a> {
    seed: u64,
    ops: &'a [Op],
    events: &'a [Event],
    verdict: &'a Verdict,
}

impl ChaosArgs {
    /// The ids written: `--keys`, or the mode's default (see [`ChaosArgs::keys`]).
    pub fn key_count(&self) -> usize {
        self.keys.unwrap_or(match self.consistency {
            Consistency::Eventual => 24,
            Consistency::Strong => 256,
        })
    }
}

/// Runs `tandem chaos`.
pub async fn run(args: ChaosArgs) -> anyhow::Result<Verdict> {
    let seed = args.seed.unwrap_or_else(now_ms);
    let keys = args.key_count();
    let fault_time = Duration::from_secs(args.seconds.unwrap_or(args.minutes * 60));
    let consistency = args.consistency;
    println!(
        "tandem chaos: seed {seed}, {} s of faults, {} writers over {} ids, {consistency} consistency",
        fault_time.as_secs(),
        args.writers,
        keys
    );
    // Short edge timeouts keep a blackholed primary from stalling writers for long; tombstones
    // are collected during the run, so collection is under test too.
    let edge = EdgeSettings {
        connection_attempts: 1,
        connection_timeout: 1,
        origin_read_timeout: 2,
    };
    let mut flags = vec!["--tombstone-grace-ms", "2000"];
    if consistency == Consistency::Strong {
        flags.extend(["--consistency", consistency.as_str()]);
    }
    let stack = bench::start(&edge, &flags).await?;
    let items = stack.items(tandem_ops::client::http_client(Duration::from_secs(5))?);
    let ops = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clock = Instant::now();
    let writers: Vec<_> = (0..args.writers)
        .map(|w| {
            let writer = Writer {
                w,
                rng: Rng::new(seed ^ (w as u64 + 1).wrapping_mul(0x9E37)),
                keys,
                reads: consistency == Consistency::Strong,
                edge: items.clone(),
                clock,
                ops: ops.clone(),
            };
            tokio::spawn(writer.run(stop.clone()))
        })
        .collect();
    let events = nemesis::run(&stack, consistency, Rng::new(seed), fault_time).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await?;
    }
    let healed = Instant::now();
    nemesis::heal(&bench::control(&stack), consistency).await?;
    let converged = bench::control(&stack)
        .until_agreed(Duration::from_secs(60))
        .await;
    let convergence_s = healed.elapsed().as_secs_f64();
    let ops = std::mem::take(&mut *lock(&ops));
    let finals_at_us = clock.elapsed().as_micros() as u64;
    let finals = read_all(&items, keys).await?;
    let mut verdict = history::check(consistency, &ops, &events, &finals);
    verdict.convergence_s = convergence_s;
    verdict.regions_identical &= converged;
    if consistency == Consistency::Strong {
        (verdict.linearizable_ids, verdict.anomalies) =
            strong::linearizability(&ops, &finals, finals_at_us);
    }
    history::print(&verdict);
    if let Some(path) = &args.history {
        write_history(path, seed, &ops, &events, &verdict)?;
    }
    if !verdict.ok() {
        bail!("chaos run failed (seed {seed})");
    }
    Ok(verdict)
}

fn write_history(
    path: &std::path::Path,
    seed: u64,
    ops: &[Op],
    events: &[Event],
    verdict: &Verdict,
) -> anyhow::Result<()> {
    let history = History {
        seed,
        ops,
        events,
        verdict,
    };
    std::fs::write(path, serde_json::to_vec_pretty(&history)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("history: {}", path.display());
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        chaos: ChaosArgs,
    }

    fn keys(argv: &[&str]) -> usize {
        let argv = std::iter::once("chaos").chain(argv.iter().copied());
        Cli::parse_from(argv).chaos.key_count()
    }

    /// `tandem chaos --consistency strong` as the README gives it must be decidable: 24 ids over
    /// five minutes left histories the linearizability check gave up on.
    #[test]
    fn a_strong_run_spreads_its_writes_unless_told_otherwise() {
        assert_eq!(keys(&[]), 24);
        assert_eq!(keys(&["--consistency", "strong"]), 256);
        assert_eq!(keys(&["--consistency", "strong", "--keys", "96"]), 96);
        assert_eq!(keys(&["--keys", "8"]), 8);
    }
}
