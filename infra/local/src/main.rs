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
