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
    #[command(flatten)]
    Local(tandem_local::commands::LocalCommand),
    /// Run an outage drill and report what clients lived through.
    Drill(tandem_cli::drill::DrillArgs),
    /// Measure the local stack: replication lag, failover latency, edge throughput.
    Bench(tandem_cli::bench::BenchArgs),
    /// Deploy to AWS: build, create or update the stacks, upload the console.
    Deploy(Box<tandem_aws::deploy::DeployArgs>),
    /// Remove what `tandem deploy` created (the data only with --delete-data).
    Destroy(tandem_aws::deploy::DestroyArgs),
    /// Smoke-check a deployment through its distribution: health, an item, the console, the
    /// active region as stored and as /api/* is routed; with --prove, the failover drill.
    Status(tandem_aws::status::StatusArgs),
    /// Replace the origin secret (CloudFront's x-origin-verify) without refusing a request.
    RotateSecret(tandem_aws::rotate::RotateArgs),
    /// Inject a fault into one region, through the edge (local or CloudFront).
    Fault(tandem_cli::fault::FaultArgs),
    /// Clear a region's fault, through the edge (local or CloudFront).
    Heal(tandem_cli::fault::HealArgs),
    /// Make a region the active one: /api/* goes there first, writes included
    /// (docs/contract.md §6.3).
    Failover(tandem_cli::failover::FailoverArgs),
    /// Clear the active region: /api/* goes to the primary first again.
    Failback(tandem_cli::failover::SwitchArgs),
    /// Watch the regions' health and switch the active region when it fails
    /// (docs/contract.md §6.3).
    Watch(tandem_cli::watch::WatchCommandArgs),
    /// Randomized faults on a stack of its own, then a check that nothing acknowledged was lost.
    Chaos(tandem_cli::chaos::ChaosArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Local(command) => command.run().await,
        Command::Bench(args) => tandem_cli::bench::run(args).await,
        Command::Deploy(args) => tandem_aws::deploy::run(*args).await,
        Command::Destroy(args) => tandem_aws::deploy::destroy(args).await,
        Command::Status(args) => tandem_aws::status::status(args).await,
        Command::RotateSecret(args) => tandem_aws::rotate::run(args).await,
        Command::Fault(args) => tandem_cli::fault::fault(args).await,
        Command::Heal(args) => tandem_cli::fault::heal(args).await,
        Command::Failover(args) => tandem_cli::failover::failover(args).await,
        Command::Failback(args) => tandem_cli::failover::failback(args).await,
        Command::Watch(args) => tandem_cli::watch::run(args).await,
        Command::Chaos(args) => tandem_cli::chaos::run(args).await.map(drop),
        Command::Drill(args) => {
            let report = tandem_cli::drill::run(args).await?;
            if !report.lost_writes.is_empty() {
                anyhow::bail!("{} acknowledged writes were lost", report.lost_writes.len());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's arguments (a name used twice, say) only when it parses them: a
    /// duplicate in a subcommand nobody's test parses would panic in the first user's hands.
    #[test]
    fn every_subcommand_s_arguments_are_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
