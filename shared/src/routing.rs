//! Where the edge sends `/api/*` (contract §6), as a pure rule: the local edge follows it,
//! and the CloudFront Function in `infra/aws/cloudformation/edge.yaml` implements the same
//! rule in JavaScript. Both are checked against one table of cases, `shared/tests/api_routing.json`.

/// The methods CloudFront fails over in an origin group (the others are never retried).
pub const FAILOVER_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// The key of the active region in the CloudFront KeyValueStore (and its name locally).
pub const ACTIVE_REGION_KEY: &str = "active_region";

/// The value of [`crate::headers::ACTIVE_REGION`] for no active region: the key is absent,
/// names no region of the edge, or could not be read (the primary, by [`api_route`]'s rule).
pub const NO_ACTIVE_REGION: &str = "none";
/// Added to [`crate::headers::ACTIVE_REGION`] (`; failover=off`) when the router function fell
/// back: an origin helper threw, so the request went to the active region alone, without
/// per-request failover (or to the behavior's target, the primary, when even selecting the
/// active region threw).
pub const FAILOVER_OFF: &str = "failover=off";

/// What the edge says it routed an `/api/*` request by: the header
/// [`crate::headers::ACTIVE_REGION`], which the regions echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The active region the edge read; `None` is [`NO_ACTIVE_REGION`] (the primary).
    pub active: Option<String>,
    /// Whether the route fell back to one origin ([`FAILOVER_OFF`]).
    pub failover_off: bool,
}

impl Routed {
    /// The header's value for an edge that routed by `active` (a region it has, or `None`).
    pub fn header_value(&self) -> String {
        let active = self.active.as_deref().unwrap_or(NO_ACTIVE_REGION);
        match self.failover_off {
            true => format!("{active}; {FAILOVER_OFF}"),
            false => active.to_owned(),
        }
    }

    /// The header's value read back; `None` when it is not one the edges write (empty).
    pub fn parse(value: &str) -> Option<Routed> {
        let mut parts = value.split(';').map(str::trim);
        let active = parts.next().filter(|a| !a.is_empty())?;
        let failover_off = parts.any(|p| p == FAILOVER_OFF);
        Some(Routed {
            active: (active != NO_ACTIVE_REGION).then(|| active.to_owned()),
            failover_off,
        })
    }
}

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
    fn the_routed_header_reads_back_what_the_edges_write() {
        for routed in [
            Routed {
                active: None,
                failover_off: false,
            },
            Routed {
                active: Some("us-west-2".into()),
                failover_off: false,
            },
            Routed {
                active: Some("us-west-2".into()),
                failover_off: true,
            },
        ] {
            assert_eq!(Routed::parse(&routed.header_value()), Some(routed));
        }
        // The router function's form, byte for byte (infra/aws/cloudformation/edge.yaml).
        assert_eq!(
            Routed::parse("none; failover=off"),
            Some(Routed {
                active: None,
                failover_off: true
            })
        );
        assert_eq!(Routed::parse(""), None);
        assert_eq!(Routed::parse(" ; failover=off"), None);
    }

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
