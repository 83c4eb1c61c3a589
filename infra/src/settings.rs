//! The edge's origin settings, with CloudFront's ranges and the values the AWS templates deploy.

use std::time::Duration;

/// Defaults are the values `infra/cloudformation/edge.yaml` deploys: a primary that cannot be
/// reached costs at most 2 × 1 s, one that hangs 4 s, before the edge tries the secondary.
pub const DEFAULT_CONNECTION_ATTEMPTS: u8 = 2;
pub const DEFAULT_CONNECTION_TIMEOUT_S: u8 = 1;
pub const DEFAULT_ORIGIN_READ_TIMEOUT_S: u8 = 4;

/// The statuses an origin group fails over on (Tandem uses only the 5xx CloudFront offers).
pub const FAILOVER_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// How the edge talks to origins, as CloudFront's origin settings.
#[derive(Debug, Clone, Copy, clap::Args, serde::Serialize)]
pub struct EdgeSettings {
    /// Connection attempts per origin (CloudFront: 1-3).
    #[arg(long, default_value_t = DEFAULT_CONNECTION_ATTEMPTS, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub connection_attempts: u8,
    /// Seconds per connection attempt (CloudFront: 1-10).
    #[arg(long, default_value_t = DEFAULT_CONNECTION_TIMEOUT_S, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub connection_timeout: u8,
    /// Seconds to wait for an origin's response (CloudFront: 1-120).
    #[arg(long, default_value_t = DEFAULT_ORIGIN_READ_TIMEOUT_S, value_parser = clap::value_parser!(u8).range(1..=120))]
    pub origin_read_timeout: u8,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            connection_attempts: DEFAULT_CONNECTION_ATTEMPTS,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT_S,
            origin_read_timeout: DEFAULT_ORIGIN_READ_TIMEOUT_S,
        }
    }
}

impl EdgeSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connection_timeout.into())
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.origin_read_timeout.into())
    }
}
