//! The local stack's commands, flattened into `tandem` and served alone by `tandem-local`.

/// `up`, `region` and `verify`.
#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Run the local stack: two regions, the edge, replication, the console.
    Up(crate::up::UpArgs),
    /// Compare every region's items (local stack) and print any difference.
    Verify(crate::verify::VerifyArgs),
    /// Show the consensus log of a strong stack: leader, term, each member's role and positions.
    Consensus(tandem_ops::client::Target),
    /// One local region process (started by `tandem up`).
    #[command(hide = true)]
    Region(crate::region::RegionProcessArgs),
}

impl LocalCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            LocalCommand::Up(args) => crate::up::run(args).await,
            LocalCommand::Region(args) => crate::region::run(args).await,
            LocalCommand::Verify(args) => crate::verify::run(args).await.map(drop),
            LocalCommand::Consensus(target) => crate::consensus::report::run(target).await,
        }
    }
}
