//! Where the edge sends `/api/*` (contract §6), as a pure rule: the local edge follows it,
//! and the CloudFront Function in `infra/aws/cloudformation/edge.yaml` implements the same
//! rule in JavaScript. Both are checked against one table of cases, `shared/tests/api_routing.json`.

/// The methods CloudFront fails over in an origin group (the others are never retried).
pub const FAILOVER_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// The key of the active region in the CloudFront KeyValueStore (and its name locally).
pub const ACTIVE_REGION_KEY: &str = "active_region";

/// Where one `/api/*` request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    /// Origins in the order they are tried: one, or an origin group of two.
    pub origins: Vec<&'a str>,
}

impl Route<'_> {
    /// Whether the edge may try the second origin (an origin group).
    pub fn fails_over(&self) -> bool {
        self.origins.len() > 1
    }
}

/// The route of a `method` request to `/api/*` with `regions` behind the edge (primary first)
/// and `active` as the active region's value. An absent or unknown value means the primary.
/// Writes go to one region only; reads get an origin group, the active region first.
pub fn api_route<'a>(method: &str, active: Option<&str>, regions: &[&'a str]) -> Route<'a> {
    let Some(&primary) = regions.first() else {
        return Route {
            origins: Vec::new(),
        };
    };
    let first = active
        .and_then(|a| regions.iter().copied().find(|r| *r == a))
        .unwrap_or(primary);
    if !FAILOVER_METHODS.contains(&method) {
        return Route {
            origins: vec![first],
        };
    }
    let mut origins = vec![first];
    origins.extend(regions.iter().copied().filter(|r| *r != first).take(1));
    Route { origins }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

    #[test]
    fn writes_go_to_one_region_and_reads_to_a_group() {
        assert_eq!(api_route("PUT", None, &REGIONS).origins, ["us-east-1"]);
        assert_eq!(
            api_route("GET", None, &REGIONS).origins,
            ["us-east-1", "us-west-2"]
        );
        assert_eq!(
            api_route("DELETE", Some("us-west-2"), &REGIONS).origins,
            ["us-west-2"]
        );
        assert_eq!(
            api_route("HEAD", Some("us-west-2"), &REGIONS).origins,
            ["us-west-2", "us-east-1"]
        );
        assert_eq!(
            api_route("GET", Some("eu-west-1"), &REGIONS).origins,
            ["us-east-1", "us-west-2"]
        );
    }
}
