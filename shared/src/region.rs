//! Region names used by default: the primary first.

/// The primary region of a default deployment.
pub const PRIMARY: &str = "us-east-1";
/// The secondary region of a default deployment.
pub const SECONDARY: &str = "us-west-2";
/// Both, primary first.
pub const DEFAULT_REGIONS: [&str; 2] = [PRIMARY, SECONDARY];

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
}
