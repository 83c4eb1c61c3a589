//! `tandem bench`: figures for the local stack, measured on a stack it starts itself.
//!
//! 1. Replication lag (p50/p99/max) at a steady 1,000 writes/s into the primary.
//! 2. Failover added latency per fault mode: GET through the edge with the primary faulted,
//!    minus GET through the edge while healthy, with the edge's deployed defaults.
//! 3. Convergence after a region comes back from a stop.
//! 4. Edge throughput (GET, closed loop) healthy and with the primary stopped.
//! 5. Recovery ([`recovery`]): a 200 MB backlog's catch-up time and peak memory, catch-up
//!    after a 60 s partition at 1,000 writes/s, and the time a region that lost its disk takes
//!    to match its peer again.
//! 6. Memory ([`memory`]): each region's resident memory after 240 MB written and read twice,
//!    with its page cache bounded and with redb's default.
//! 7. Consistency ([`consistency`]): write and read latency and throughput in strong mode
//!    against eventual, with AWS's inter-region round trips injected between the members.
//!
//! Not a test: it prints figures and asserts nothing about time. Rows with a goal (issue 13)
//! also go to `cargo xtask bench`'s summary ([`tandem_shared::bench`]).
//!
//! Layout: this file holds the flags and [`run`], which calls the figures in order; `local`
//! has figures 1 to 4, [`recovery`] figure 5, [`memory`] figure 6, [`consistency`] figure 7, [`compare`] what `--compare` adds (nginx,
//! Lambda init, the console's size) and [`attacks`] the `--attacks` figures. What they share
//! (starting a stack, steady writes, the failover rows) is in [`stack`].

pub mod attacks;
pub mod compare;
pub mod consistency;
mod local;
pub mod memory;
pub mod recovery;
pub mod stack;

// `tandem chaos` starts its stack the way the figures do.
pub use stack::{Stack, control, start};

use anyhow::{Context as _, anyhow};
use std::path::PathBuf;
use std::time::Duration;
use tandem_shared::control::EdgeSettings;
use tandem_testkit::Moto;

/// Flags of `tandem bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds of steady writes for the replication-lag figure.
    #[arg(long, default_value_t = 10)]
    pub lag_secs: u64,
    /// Writes per second for the replication-lag figure.
    #[arg(long, default_value_t = 1000)]
    pub writes_per_sec: u64,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 5)]
    pub throughput_secs: u64,
    /// Concurrent clients per throughput run.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// GETs per fault mode for the failover figure (timeouts cost the read timeout each).
    #[arg(long, default_value_t = 5)]
    pub failover_samples: usize,
    #[command(flatten)]
    pub edge: EdgeSettings,
    /// Also compare: the edge with nginx (needs nginx and wrk), Lambda init with a hello world
    /// (needs `moto_server` and the release binaries), and the console's size (needs brotli).
    #[arg(long)]
    pub compare: bool,
    /// moto's server, for the Lambda init stand-in.
    #[arg(long, env = "TANDEM_MOTO_SERVER", default_value = "moto_server")]
    pub moto_server: PathBuf,
    /// The built console, for its size.
    #[arg(long, default_value = "frontend/dist")]
    pub console_dir: PathBuf,
    /// MB of 400 KB items for the replication catch-up figure (0: skip it).
    #[arg(long, default_value_t = 200)]
    pub backlog_mb: u64,
    /// Seconds of a replication partition at `--writes-per-sec` for the catch-up figure
    /// (0: skip it).
    #[arg(long, default_value_t = 60)]
    pub partition_secs: u64,
    /// Items in us-east-1 for the lost-disk figure (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    pub disk_loss_items: u64,
    /// MB of 100 KB items for the memory figure, written and read twice (0: skip it).
    #[arg(long, default_value_t = 240)]
    pub memory_mb: u64,
    /// Sequential writes and reads per region for the consistency figure (0: skip it); its
    /// throughput runs use `--concurrency` and `--throughput-secs`.
    #[arg(long, default_value_t = 200)]
    pub consistency_samples: usize,
    /// Only these figures (repeat the flag): `consistency`, `memory`.
    #[arg(long, value_enum)]
    pub only: Vec<Figure>,
    /// Only the attack figures (issue 24's attacks at full size), at the sizes below.
    #[arg(long)]
    pub attacks: bool,
    #[command(flatten)]
    pub attack: attacks::AttackArgs,
}

/// Figures that can run alone (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Figure {
    Consistency,
    Memory,
}

/// Runs every figure on a fresh local stack (or only the attack figures, or `--only` ones).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.attacks {
        return attacks::run(&args.edge, &args.attack).await;
    }
    if !args.only.is_empty() {
        return only(&args).await;
    }
    let stack = start(&args.edge, &[]).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    println!(
        "# tandem bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    local::replication_lag(&stack, &http, &args).await?;
    local::failover_latency(&stack, &http, &args).await?;
    local::peer_restart(&stack, &http, Duration::from_secs(3)).await?;
    local::edge_throughput(&stack, &http, &args).await?;
    drop(stack);
    if args.backlog_mb > 0 {
        recovery::catch_up(&args.edge, args.backlog_mb).await?;
    }
    if args.partition_secs > 0 {
        recovery::partition(&args.edge, args.partition_secs, args.writes_per_sec).await?;
    }
    if args.disk_loss_items > 0 {
        recovery::disk_loss(&args.edge, args.disk_loss_items, args.disk_loss_items / 10).await?;
    }
    if args.memory_mb > 0 {
        memory::after_writes_and_reads(&args.edge, args.memory_mb).await?;
    }
    if args.consistency_samples > 0 {
        consistency::strong_vs_eventual(&args.edge, &consistency_plan(&args)).await?;
    }
    if args.compare {
        compare::edge_vs_nginx(&args).await?;
        let moto = Moto::start_with(&args.moto_server).await.map_err(|e| {
            anyhow!(
                "starting {} ({e}); cargo xtask test installs moto",
                args.moto_server.display()
            )
        })?;
        let bins = std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .context("binary directory")?;
        compare::lambda_init(&bins, &moto, 5).await?;
        compare::console_size(&args.console_dir)?;
    }
    Ok(())
}

/// The figures asked for with `--only`, in the order of the full run.
async fn only(args: &BenchArgs) -> anyhow::Result<()> {
    if args.only.contains(&Figure::Memory) {
        memory::after_writes_and_reads(&args.edge, args.memory_mb).await?;
    }
    if args.only.contains(&Figure::Consistency) {
        consistency::strong_vs_eventual(&args.edge, &consistency_plan(args)).await?;
    }
    Ok(())
}

fn consistency_plan(args: &BenchArgs) -> consistency::Plan {
    consistency::Plan {
        samples: args.consistency_samples.max(1),
        clients: args.concurrency,
        secs: args.throughput_secs,
    }
}
