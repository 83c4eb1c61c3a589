//! The flags of `tandem drill`.

use std::path::PathBuf;
use tandem_ops::client::Target;
use tandem_shared::control::Outage;
use tandem_shared::drill::{ClientMode, SwitchMode};

/// Flags of `tandem drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// The public endpoint (the local edge or the CloudFront distribution) and the admin token.
    #[command(flatten)]
    pub target: Target,
    /// Seconds of steady traffic, outage included.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    pub rps: u32,
    /// Share of requests that are writes (0..=1).
    #[arg(long, default_value_t = 0.3)]
    pub write_ratio: f64,
    /// The region to fail [default: the primary].
    #[arg(long)]
    pub region: Option<String>,
    /// The outage to inject: error:<500|502|503|504> or slow:<ms> (any edge); stopped, crashed,
    /// blackhole, partition or disk-lost (the local stack; disk-lost deletes the region's
    /// directory under --data-dir while it is stopped).
    #[arg(long, default_value = "error:503")]
    pub fault: Outage,
    /// The local stack's data directory (`tandem up --data-dir`), where `--fault disk-lost`
    /// deletes the region's directory (a region, or the witness in the strong mode).
    #[arg(long, default_value = ".tandem")]
    pub data_dir: PathBuf,
    /// Seconds the fault lasts.
    #[arg(long, default_value_t = 10)]
    pub outage: u64,
    /// Where to write the JSON report (the HTML report goes beside it, `.html`); a name ending
    /// in `.html` names the HTML report instead, with the JSON beside it.
    #[arg(long, default_value = "drill-report.json")]
    pub report: PathBuf,
    /// Seconds to wait for convergence after the traffic stops.
    #[arg(long, default_value_t = 60)]
    pub converge_timeout: u64,
    /// What the client does with a write that gets a 5xx or no answer through /api.
    #[arg(long, value_enum, default_value_t = ClientMode::Failover)]
    pub client: ClientMode,
    /// Who moves the active region (docs/contract.md §6.3) during the outage; manual and auto
    /// need the local stack's control API, auto a stack started with `tandem up --auto-failover`.
    #[arg(long, value_enum, default_value_t = SwitchMode::None)]
    pub switch: SwitchMode,
}
