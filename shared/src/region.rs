//! Region names used by default: the primary first.

/// The primary region of a default deployment.
pub const PRIMARY: &str = "us-east-1";
/// The secondary region of a default deployment.
pub const SECONDARY: &str = "us-west-2";
/// Both, primary first.
pub const DEFAULT_REGIONS: [&str; 2] = [PRIMARY, SECONDARY];
/// The third member in strong consistency mode (contract §10): the witness that votes and
/// keeps the log but serves no API, as DynamoDB's MRSC witness in the US Region set.
pub const WITNESS: &str = "us-east-2";

/// The Region sets a multi-Region strongly consistent (MRSC) global table must stay within
/// (DynamoDB developer guide): its two replicas and its witness all in one of them.
pub const MRSC_REGION_SETS: [&[&str]; 3] = [
    &["us-east-1", "us-east-2", "us-west-2"],
    &["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"],
    &["ap-northeast-1", "ap-northeast-2", "ap-northeast-3"],
];

/// Whether `regions` (two replicas and a witness) can form an MRSC table: three distinct
/// Regions of one set.
pub fn mrsc_members_ok(regions: [&str; 3]) -> bool {
    let [a, b, c] = regions;
    a != b
        && b != c
        && a != c
        && MRSC_REGION_SETS
            .iter()
            .any(|set| regions.iter().all(|r| set.contains(r)))
}

/// Whether `name` looks like an AWS region name (`us-east-1`, `eu-central-2`, ...).
/// Region names end up in paths and headers, so only this shape is accepted.
pub fn is_valid_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        assert!(is_valid_region("us-east-1"));
        assert!(is_valid_region("us-gov-west-1"));
        assert!(!is_valid_region("us-east"));
        assert!(!is_valid_region("US-east-1"));
        assert!(!is_valid_region("us--1"));
        assert!(!is_valid_region("us-east-x"));
    }

    #[test]
    fn mrsc_needs_three_distinct_regions_of_one_set() {
        assert!(mrsc_members_ok([PRIMARY, SECONDARY, WITNESS]));
        assert!(mrsc_members_ok(["eu-west-1", "eu-central-1", "eu-west-3"]));
        assert!(!mrsc_members_ok([PRIMARY, SECONDARY, SECONDARY]));
        assert!(!mrsc_members_ok([PRIMARY, "eu-west-1", WITNESS]));
        assert!(!mrsc_members_ok([PRIMARY, SECONDARY, "us-west-1"]));
    }
}
