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
