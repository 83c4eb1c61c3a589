//! Header names of the contract, lower-case as HTTP/2 and hyper want them.

/// The region whose API produced the response; on AWS the only trace of failover.
pub const SERVED_REGION: &str = "x-served-region";
/// Per-request id, taken from the request when present, otherwise generated.
pub const REQUEST_ID: &str = "x-request-id";
/// Origin cloaking secret that CloudFront and the local edge add to origin requests.
pub const ORIGIN_VERIFY: &str = "x-origin-verify";
/// Time spent in the application, as `app;dur=<ms>`.
pub const SERVER_TIMING: &str = "server-timing";
/// Local edge only: the region whose origin answered.
pub const EDGE_ORIGIN: &str = "x-edge-origin";
/// Local edge only: why the edge failed over (`status-503`, `connect`, `timeout`, ...).
pub const EDGE_FAILOVER: &str = "x-edge-failover";
/// Local edge only: the active region (contract §6.3), when one is set.
pub const EDGE_ACTIVE: &str = "x-edge-active";
/// The active region as the edge's `/api/*` route read it (contract §6.3), in the form
/// [`crate::routing::Routed`] reads and writes. Both edges set it on every `/api/*` origin
/// request, over any value a viewer sent (on AWS the router function, from the KeyValueStore),
/// and every region echoes it in its answer: the health watcher learns the active region from
/// a probe of `/api/health` instead of an API call per round. Not `x-edge-…`: CloudFront
/// Functions may not set headers with that prefix.
pub const ACTIVE_REGION: &str = "x-tandem-active-region";

/// The console's Content-Security-Policy, as CloudFront's response-headers policy (edge.yaml)
/// and the local edge send it: it lets the console's wasm run and nothing inline.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
/// HSTS max-age, in seconds (a year), as both edges send it.
pub const HSTS_MAX_AGE_S: u64 = 31_536_000;

/// The response headers CloudFront's response-headers policy adds, in the local edge's form.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONSOLE_CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-frame-options", "DENY"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_header_carries_the_max_age() {
        let hsts = SECURITY_HEADERS
            .iter()
            .find(|(name, _)| *name == "strict-transport-security")
            .map(|(_, value)| *value);
        assert_eq!(
            hsts,
            Some(format!("max-age={HSTS_MAX_AGE_S}; includeSubDomains").as_str())
        );
    }
}
