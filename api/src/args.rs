//! A region process's flags (each also an environment variable), the router configuration
//! they describe, and how the process logs.

use crate::secret::RuntimeSecret;
use crate::state::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which store a region uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// redb under `--data-dir` (local regions).
    #[cfg(feature = "embedded")]
    Embedded,
    /// A DynamoDB table (`--table-name`, credentials and endpoint from the environment).
    #[cfg(feature = "aws")]
    Dynamodb,
}

/// Flags of one region process.
#[derive(Debug, Clone, clap::Args)]
pub struct RegionArgs {
    /// Region name served in `x-served-region` [default: $AWS_REGION, else us-east-1].
    #[arg(long, env = "TANDEM_REGION")]
    pub region: Option<String>,
    /// Address to listen on (ignored on Lambda).
    #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Store to use (Lambda always uses DynamoDB).
    #[cfg_attr(
        feature = "embedded",
        arg(long, env = "TANDEM_STORE", value_enum, default_value = "embedded")
    )]
    #[cfg_attr(
        not(feature = "embedded"),
        arg(long, env = "TANDEM_STORE", value_enum, default_value = "dynamodb")
    )]
    pub store: StoreKind,
    /// Data directory of the embedded store [default: .tandem/<region>].
    #[arg(long, env = "TANDEM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// DynamoDB table name.
    #[arg(long, env = "TABLE_NAME", default_value = "tandem-items")]
    pub table_name: String,
    /// Bearer token for the admin routes; without it they answer 404.
    #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Secret the edge sends in `x-origin-verify`; without it the check is off.
    #[arg(long, env = "TANDEM_ORIGIN_SECRET", hide_env_values = true)]
    pub origin_secret: Option<String>,
    /// Origins allowed to call the API from browsers (comma-separated).
    #[arg(long, env = "TANDEM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// The consistency mode the data was created in (contract §10): `strong` on an MRSC global
    /// table, or a local stack started with `--consistency strong`.
    #[arg(long, env = "TANDEM_CONSISTENCY", default_value = "eventual")]
    pub consistency: tandem_shared::Consistency,
    /// On Lambda: Secrets Manager secret (name or ARN) whose JSON holds `admin_token` and
    /// `origin_secret`, read at init. `--admin-token`/`--origin-secret` win when set.
    #[arg(long, env = "TANDEM_SECRET_ID")]
    pub secret_id: Option<String>,
}

impl RegionArgs {
    /// The region name: the flag, else `AWS_REGION`, else the default primary.
    pub fn region_name(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| tandem_shared::region::PRIMARY.to_owned())
    }

    /// The router configuration these flags describe.
    pub fn config(&self) -> Config {
        self.config_with(None)
    }

    /// The router configuration, with the admin token and origin secret taken from `secret`
    /// where no flag or environment variable set them.
    pub fn config_with(&self, secret: Option<&RuntimeSecret>) -> Config {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Config {
            region: self.region_name(),
            admin_token: non_empty(&self.admin_token)
                .or_else(|| secret.map(|s| s.admin_token.clone())),
            origin_secret: non_empty(&self.origin_secret)
                .or_else(|| secret.map(|s| s.origin_secret.clone())),
            cors_origins: self
                .cors_origins
                .iter()
                .filter(|o| !o.is_empty())
                .cloned()
                .collect(),
            consistency: self.consistency,
            ..Config::default()
        }
    }

    /// The embedded store's directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".tandem").join(self.region_name()))
    }
}

/// Logs as text locally and as JSON on Lambda (CloudWatch parses it, and filters by its
/// `level`). `RUST_LOG` filters; else, on Lambda, the function's log level
/// (`AWS_LAMBDA_LOG_LEVEL`, set from region.yaml's `LogLevel`); else `info`.
pub fn init_tracing(json: bool) {
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The strong mode's consensus library narrates every election at info: its warnings
        // are enough unless RUST_LOG asks for more.
        let level = log_filter(lambda_level.as_deref());
        match level {
            "info" => tracing_subscriber::EnvFilter::new("info,openraft=warn"),
            _ => tracing_subscriber::EnvFilter::new(level),
        }
    });
    // Colours only for a person at a terminal: a log file or CloudWatch gets plain text.
    let ansi = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// The tracing filter for a Lambda log level (`TRACE` … `FATAL`; tracing has no `fatal`).
pub fn log_filter(lambda_level: Option<&str>) -> &'static str {
    match lambda_level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}
