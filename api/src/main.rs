//! The region binary: on Lambda it serves API Gateway events, elsewhere a TCP port.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "tandem-api",
    version,
    about = "One Tandem region: the API on Lambda or on a local port"
)]
struct Cli {
    #[command(flatten)]
    region: tandem_api::args::RegionArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tandem_api::cli::run(Cli::parse().region).await
}
