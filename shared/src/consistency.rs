//! The two consistency modes of a Tandem deployment (contract §10): one switch, chosen when the
//! data is created (`tandem up --consistency`, `tandem deploy --consistency`), shown in health,
//! the console and every report.

use serde::{Deserialize, Serialize};

/// How the regions agree on an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Multi-Region eventual consistency (a DynamoDB global table's default, MREC): a region
    /// acknowledges a write before the others have it, concurrent writes are settled by
    /// last-writer-wins, and a region's loss loses what it had not yet replicated (RPO > 0).
    #[default]
    Eventual,
    /// Multi-Region strong consistency (MRSC): a write is acknowledged once it is durable in a
    /// majority of three members (two regions and a witness), reads return the latest
    /// acknowledged write from either region, and a region cut off from the majority refuses
    /// to answer (RPO 0).
    Strong,
}

impl Consistency {
    /// The mode as it appears on the wire, in flags and in CloudFormation parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Strong => "strong",
        }
    }

    /// DynamoDB's name of the mode (`MultiRegionConsistency` of a global table).
    pub fn dynamodb_name(self) -> &'static str {
        match self {
            Consistency::Eventual => "EVENTUAL",
            Consistency::Strong => "STRONG",
        }
    }
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eventual" => Ok(Consistency::Eventual),
            "strong" => Ok(Consistency::Strong),
            other => Err(format!(
                "{other:?} is not a consistency mode (eventual, strong)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_name_parses_back_and_matches_serde() {
        for mode in [Consistency::Eventual, Consistency::Strong] {
            assert_eq!(mode.as_str().parse::<Consistency>(), Ok(mode));
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
        assert!("STRONG".parse::<Consistency>().is_err());
    }
}
