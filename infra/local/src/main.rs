//! `tandem-local`: the local stack's commands alone (`up`, `region`, `verify`), built without
//! the AWS SDK. `tandem` has the same commands and more.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "tandem-local",
    version,
    about = "Tandem's local two-region stack (the `tandem` command without its AWS parts)"
)]
struct Cli {
    #[command(subcommand)]
    command: tandem_local::commands::LocalCommand,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse().command.run().await
}
