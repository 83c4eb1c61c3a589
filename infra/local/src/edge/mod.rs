//! The local edge: a reverse proxy that follows CloudFront's rules (contract §6).
//!
//! Behaviors, first match wins: `/region/{region}/api/*` goes to that region only (prefix
//! stripped); `/api/*` goes to the origin group (primary, then secondary); `/_tandem/*` is the
//! local control API; everything else is the console, with `/index.html` for unknown paths.
//!
//! Origin-group rules, as CloudFront applies them: only GET, HEAD and OPTIONS fail over; they do
//! when the primary answers 500/502/503/504, when no connection is made after
//! `connection_attempts` tries of `connection_timeout` each, or when no response comes within
//! `origin_read_timeout`. Every request starts at the primary. Other methods get the primary's
//! answer, or the edge's own 502 (no connection) or 504 (no response).
//!
//! The edge dials origins itself (a `TcpStream` per attempt under the connect timeout) and
//! speaks HTTP/1.1 over hyper's connection API, keeping idle connections in a pool per origin.
//! A higher-level client would hide the boundary between connecting and waiting for the
//! response, and CloudFront times the two differently.

//!
//! Layout: [`origin`] (an origin: dialling, proving, the pool, one exchange), [`budget`] (the
//! bytes the edge buffers, across all requests), [`console`] (the console's files and the page
//! shown while they build); here, the behaviors and the guard around them.

mod budget;
mod console;
mod origin;

pub use budget::{BUFFER_BUDGET, Budget};
pub use console::{BUILDING_RELOAD_SECS, ConsoleFiles};
pub use origin::{Failure, Origin};

use crate::active::Active;
use crate::replication::wire::Key;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::any;
use budget::Refused;
use http::header::{self, HeaderValue};
use http::{StatusCode, Uri};
use origin::{Conn, Outgoing};
use std::sync::{Arc, Mutex};
use tandem_api::error::respond;
use tandem_shared::ErrorCode;
use tandem_shared::control::{EdgeSettings, FAILOVER_STATUSES, PREFIX};
use tandem_shared::headers::{ACTIVE_REGION, EDGE_ACTIVE, EDGE_FAILOVER};
use tandem_shared::routing::{Route, Routed, api_route};
use tandem_shared::sync::lock;
use tandem_shared::validate::MAX_BODY_BYTES;

/// The response headers CloudFront's response-headers policy adds (same values as the
/// template, which infra/aws/tests/templates.rs checks against the same constant).
pub use tandem_shared::headers::SECURITY_HEADERS;

/// What the edge keeps serving when its connections are all taken: health and the control API
/// (on connections of the server's reserve, see [`tandem_api::server::Limits`]).
pub const RESERVED: &[&str] = &["/_tandem/", "/api/health"];

/// The edge: origins in order (primary first), and how it talks to them.
pub struct Edge {
    pub origins: Vec<Origin>,
    conn: Conn,
    /// Which region `/api/*` goes to first (contract §6.3), read on every request.
    pub active: Arc<Active>,
    failovers: FailoverLog,
}

/// Failovers are logged at most once a second, each line with how many happened since the
/// last one: with the primary down every request fails over, and a line per request would cost
/// more than the failover itself (and flood the terminal).
#[derive(Default)]
struct FailoverLog {
    /// When the last line was written, and failovers counted since.
    state: Mutex<(Option<std::time::Instant>, u64)>,
}

impl FailoverLog {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// Counts a failover at `now`; `Some(count)` when a line is due, with the failovers it
    /// stands for (this one included).
    fn due(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = lock(&self.state);
        state.1 += 1;
        if state
            .0
            .is_some_and(|last| now.duration_since(last) < Self::EVERY)
        {
            return None;
        }
        let count = std::mem::take(&mut state.1);
        state.0 = Some(now);
        Some(count)
    }
}

fn edge_error(status: StatusCode, message: String) -> Response {
    respond(ErrorCode::RegionUnavailable, Some(status), message, None)
}

fn overloaded() -> Response {
    tandem_api::server::overloaded("the edge holds as many bytes as it may; retry shortly")
}

impl Edge {
    pub fn new(
        origins: Vec<Origin>,
        settings: EdgeSettings,
        origin_secret: Option<String>,
        active: Arc<Active>,
    ) -> Edge {
        Edge {
            origins,
            conn: Conn {
                settings,
                origin_secret,
                proof: None,
                budget: Budget::new(BUFFER_BUDGET),
            },
            active,
            failovers: FailoverLog::default(),
        }
    }

    /// Has every origin prove it holds `key` (is the region it should be) before a connection
    /// to it carries anything: see [`Origin`].
    pub fn proving(mut self, key: Key) -> Edge {
        self.conn.proof = Some(key);
        self
    }

    /// The request as the edge keeps it: its body read whole (within the body deadline the
    /// server set), at most [`MAX_BODY_BYTES`], and taken from the buffer budget first.
    async fn outgoing(&self, req: Request, path_and_query: String) -> Result<Outgoing, Response> {
        // What cannot be forwarded as it came is refused, never silently changed.
        let uri: Uri = path_and_query.parse().map_err(|_| {
            let message = "this path cannot be forwarded as sent";
            respond(ErrorCode::BadRequest, None, message, None)
        })?;
        let (parts, body) = req.into_parts();
        let (body, held) = self
            .conn
            .budget
            .collect(body, MAX_BODY_BYTES)
            .await
            .map_err(|refused| match refused {
                Refused::TooLarge => respond(
                    ErrorCode::PayloadTooLarge,
                    None,
                    format!("the body must be at most {MAX_BODY_BYTES} bytes"),
                    None,
                ),
                Refused::Overloaded => {
                    tandem_api::server::overloaded("the edge holds as many bytes as it may")
                }
                Refused::TimedOut => respond(
                    ErrorCode::RequestTimeout,
                    None,
                    "the request body did not arrive in time",
                    None,
                ),
                Refused::Broken => respond(
                    ErrorCode::BadRequest,
                    None,
                    "the request body could not be read",
                    None,
                ),
            })?;
        Ok(Outgoing {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
            _held: held,
        })
    }

    /// `/api/*`: the route of contract §6 (one region for writes, an origin group for
    /// reads, the active region first), marked with the active region when one is set. The
    /// origin request carries the value routed by in `x-tandem-active-region`, over any a
    /// viewer sent, as CloudFront's router function sets it: the regions echo it, and the
    /// health watcher reads it from its probe of `/api/health` on both stacks alike.
    async fn api(&self, mut out: Outgoing) -> Response {
        let active = self.active.get();
        let regions: Vec<&str> = self.origins.iter().map(|o| o.region.as_str()).collect();
        let route = api_route(out.method.as_str(), active.as_deref(), &regions);
        let routed = Routed {
            // What the route used: a value naming no region here is the primary, `none`.
            active: active.clone().filter(|a| regions.contains(&a.as_str())),
            failover_off: false,
        };
        // `insert` replaces every value a viewer sent under that name.
        if let Ok(v) = HeaderValue::from_str(&routed.header_value()) {
            out.headers.insert(ACTIVE_REGION, v);
        }
        let mut response = self.follow(&route, out).await;
        if let Some(v) = active.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(EDGE_ACTIVE, v);
        }
        response
    }

    fn origin(&self, region: &str) -> &Origin {
        self.origins
            .iter()
            .find(|o| o.region == region)
            .unwrap_or(&self.origins[0])
    }

    /// Tries the route's first origin and, in an origin group, the second on a failover status
    /// or when the first cannot be reached in time.
    async fn follow(&self, route: &Route<'_>, out: Outgoing) -> Response {
        let first = self.origin(route.origins[0]);
        let reason = match first.send(&out, &self.conn).await {
            Ok(answer)
                if route.fails_over() && FAILOVER_STATUSES.contains(&answer.status.as_u16()) =>
            {
                format!("status-{}", answer.status.as_u16())
            }
            Ok(answer) => return answer.into_response(first, None),
            // Out of buffer: the other origin's answer would not fit either.
            Err(Failure::Overloaded) => return overloaded(),
            Err(failure) if route.fails_over() => failure.reason().to_owned(),
            Err(failure) => {
                let message = format!(
                    "the edge could not reach {} ({})",
                    first.region,
                    failure.reason()
                );
                return edge_error(failure.status(), message);
            }
        };
        let second = self.origin(route.origins[1]);
        if let Some(count) = self.failovers.due(std::time::Instant::now()) {
            tracing::info!(method = %out.method, path = %out.uri, %reason, count, "failing over to {} ({count} since the last such line)", second.region);
        }
        match second.send(&out, &self.conn).await {
            Ok(answer) => answer.into_response(second, Some(&reason)),
            Err(Failure::Overloaded) => overloaded(),
            Err(failure) => {
                let message = format!(
                    "neither origin answered ({}: {reason}, {}: {})",
                    first.region,
                    second.region,
                    failure.reason()
                );
                let mut response = edge_error(failure.status(), message);
                if let Ok(v) = HeaderValue::from_str(&reason) {
                    response.headers_mut().insert(EDGE_FAILOVER, v);
                }
                response
            }
        }
    }

    /// One region only, no failover.
    async fn single(&self, region: &str, out: Outgoing) -> Response {
        let Some(origin) = self.origins.iter().find(|o| o.region == region) else {
            return edge_error(
                StatusCode::NOT_FOUND,
                format!("no region {region:?} behind this edge"),
            );
        };
        match origin.send(&out, &self.conn).await {
            Ok(answer) => answer.into_response(origin, None),
            Err(Failure::Overloaded) => overloaded(),
            Err(failure) => edge_error(
                failure.status(),
                format!("the edge could not reach {region} ({})", failure.reason()),
            ),
        }
    }
}

fn path_and_query(path: &str, uri: &Uri) -> String {
    match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

async fn api_group(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let pq = path_and_query(req.uri().path(), req.uri());
    match edge.outgoing(req, pq).await {
        Ok(out) => edge.api(out).await,
        Err(response) => response,
    }
}

async fn api_single(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    // Routed on the raw path: the region segment may be percent-encoded (`us%2Deast-1`), and
    // the rest goes to the origin exactly as sent, so an encoded `?` or `/` in an id stays one.
    let raw = req.uri().path();
    let Some((segment, rest)) = raw.strip_prefix("/region/").and_then(|r| r.split_once('/')) else {
        return edge_error(StatusCode::NOT_FOUND, "no such region route".into());
    };
    let region = percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned();
    let pq = path_and_query(&format!("/{rest}"), req.uri());
    match edge.outgoing(req, pq).await {
        Ok(out) => edge.single(&region, out).await,
        Err(response) => response,
    }
}

/// Whether `host` (a `Host` header: name and optional port) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name.eq_ignore_ascii_case("localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Against DNS rebinding: the control API and the admin routes answer only requests addressed
/// to this machine by a loopback name and, from a browser, only pages this edge served. A page
/// on another site whose name was rebound to 127.0.0.1 sends its own name as `Host`.
fn refused_as_not_local(req: &Request) -> Option<Response> {
    let path = req.uri().path();
    let guarded = path.starts_with(PREFIX)
        || path.starts_with("/api/admin")
        || (path.starts_with("/region/") && path.contains("/api/admin"));
    if !guarded {
        return None;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_origin = req.headers().get(header::ORIGIN).is_none_or(|o| {
        o.to_str()
            .is_ok_and(|o| o.strip_prefix("http://") == Some(host))
    });
    (!is_loopback_host(host) || !same_origin).then(|| {
        let message = "the control and admin routes answer only requests to a loopback \
                       address from this edge's own pages";
        respond(ErrorCode::Forbidden, None, message, None)
    })
}

/// The edge's one layer around everything: the loopback guard on the way in, and the security
/// headers of CloudFront's response-headers policy on every response (a refusal included). One
/// `from_fn` layer, not two: each costs a clone of the service beneath and a boxed future on
/// every request.
async fn guard(req: Request, next: Next) -> Response {
    let mut response = match refused_as_not_local(&req) {
        Some(refused) => refused,
        None => next.run(req).await,
    };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The edge's router: the behaviors of contract §6 in order, with `control` under `/_tandem`.
pub fn router(edge: Arc<Edge>, control: Router, console: Option<ConsoleFiles>) -> Router {
    Router::new()
        .route("/region/{region}/api/{*rest}", any(api_single))
        .route("/api/{*rest}", any(api_group))
        .with_state(edge)
        .nest(PREFIX, control)
        .merge(console::router(console))
        .layer(axum::middleware::from_fn(guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_keeps_the_control_api_and_health() {
        assert_eq!(RESERVED[0], format!("{PREFIX}/"));
        assert!(RESERVED.contains(&"/api/health"));
    }

    #[test]
    fn failovers_are_logged_once_a_second_with_their_count() {
        let log = FailoverLog::default();
        let t0 = std::time::Instant::now();
        assert_eq!(log.due(t0), Some(1), "the first one is logged at once");
        for ms in 1..=999 {
            assert_eq!(log.due(t0 + std::time::Duration::from_millis(ms)), None);
        }
        assert_eq!(log.due(t0 + FailoverLog::EVERY), Some(1000));
        assert_eq!(log.due(t0 + FailoverLog::EVERY * 2), Some(1));
    }

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.8.9.1",
        ] {
            assert!(super::is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "10.0.0.1:8080",
            "",
            "[::2]:80",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
        ] {
            assert!(!super::is_loopback_host(bad), "{bad}");
        }
    }
}
