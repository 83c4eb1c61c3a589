//! The `tandem` command.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: a two-region API that survives the loss of a region"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local stack: two regions, the edge, replication, the console.
    Up(tandem_infra::up::UpArgs),
    /// Run an outage drill and report what clients lived through.
    Drill(tandem_infra::drill::DrillArgs),
    /// Measure the local stack: replication lag, failover latency, edge throughput.
    Bench(tandem_infra::bench::BenchArgs),
    /// Deploy to AWS: build, create or update the stacks, upload the console.
    Deploy(tandem_infra::deploy::DeployArgs),
    /// Remove what `tandem deploy` created (the data only with --delete-data).
    Destroy(tandem_infra::deploy::DestroyArgs),
    /// Inject a fault into one region, through the edge (local or CloudFront).
    Fault(tandem_infra::fault::FaultArgs),
    /// Clear a region's fault, through the edge (local or CloudFront).
    Heal(tandem_infra::fault::HealArgs),
    /// Randomized faults on a stack of its own, then a check that nothing acknowledged was lost.
    Chaos(tandem_infra::chaos::ChaosArgs),
    /// Compare every region's items (local stack) and print any difference.
    Verify(tandem_infra::verify::VerifyArgs),
    /// One local region process (started by `tandem up`).
    #[command(hide = true)]
    Region(tandem_infra::region::RegionProcessArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up(args) => tandem_infra::up::run(args).await,
        Command::Region(args) => tandem_infra::region::run(args).await,
        Command::Bench(args) => tandem_infra::bench::run(args).await,
        Command::Deploy(args) => tandem_infra::deploy::run(args).await,
        Command::Destroy(args) => tandem_infra::deploy::destroy(args).await,
        Command::Fault(args) => tandem_infra::fault::fault(args).await,
        Command::Heal(args) => tandem_infra::fault::heal(args).await,
        Command::Chaos(args) => tandem_infra::chaos::run(args).await.map(drop),
        Command::Verify(args) => tandem_infra::verify::run(args).await.map(drop),
        Command::Drill(args) => {
            let report = tandem_infra::drill::run(args).await?;
            if !report.lost_writes.is_empty() {
                anyhow::bail!("{} acknowledged writes were lost", report.lost_writes.len());
            }
            Ok(())
        }
    }
}
