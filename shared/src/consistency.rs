//! The consistency mode of a stack (contract §10): one switch, read by `tandem up`, the region
//! and witness processes, health and the control API.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a write is acknowledged and what a read may miss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Global tables (contract §5): a write is acknowledged once durable in the region that
    /// took it, and reaches the other region asynchronously; last writer wins.
    #[default]
    Eventual,
    /// Multi-Region strong consistency (contract §10): a write is acknowledged once a majority
    /// of three members (two regions and a witness) hold it; reads are linearizable in either
    /// region; a region cut off from the majority answers 503.
    Strong,
}

impl Consistency {
    /// The name on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Strong => "strong",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_snake_case_on_the_wire_and_eventual_by_default() {
        for c in [Consistency::Eventual, Consistency::Strong] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Consistency>(&json).unwrap(), c);
        }
        assert_eq!(Consistency::default(), Consistency::Eventual);
    }
}
