//! The local edge: a reverse proxy that follows CloudFront's rules (SPEC §3).
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

use crate::active::Active;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tandem_api::error::respond;
use tandem_shared::ErrorCode;
use tandem_shared::control::{EdgeSettings, FAILOVER_STATUSES};
use tandem_shared::headers::{EDGE_ACTIVE, EDGE_FAILOVER, EDGE_ORIGIN, ORIGIN_VERIFY};
use tandem_shared::routing::{Route, api_route};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Largest request body the edge buffers (it must keep a body to resend it on failover).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The response headers CloudFront's response-headers policy adds (same values as the
/// template, which infra/aws/tests/templates.rs checks against the same constant).
pub use tandem_shared::headers::SECURITY_HEADERS;

/// One region's API as an origin.
pub struct Origin {
    pub region: String,
    pub addr: SocketAddr,
    /// The `Host` every request to it carries, made once.
    host: Option<HeaderValue>,
    /// Its region as the `x-edge-origin` value, made once.
    marker: Option<HeaderValue>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// Why an origin gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection after every attempt (refused, or each attempt timed out).
    Connect,
    /// Connected, but no complete response within the read timeout.
    Timeout,
    /// The connection broke before a complete response.
    Reset,
}

impl Failure {
    /// The `x-edge-failover` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Connect | Failure::Reset => StatusCode::BAD_GATEWAY,
        }
    }
}

/// A request as the edge keeps it: replayable on another origin.
struct Outgoing {
    method: Method,
    /// Path and query, exactly as the viewer sent them (percent-encoding untouched).
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// A complete origin response.
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

impl Origin {
    pub fn new(region: &str, addr: SocketAddr) -> Self {
        Origin {
            region: region.to_owned(),
            addr,
            host: HeaderValue::from_str(&addr.to_string()).ok(),
            marker: HeaderValue::from_str(region).ok(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn request(&self, out: &Outgoing, secret: Option<&str>) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(out.body.clone()));
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = out.uri.clone();
        let headers = req.headers_mut();
        for (name, value) in &out.headers {
            if !is_hop_by_hop(name) && name.as_str() != ORIGIN_VERIFY {
                headers.append(name, value.clone());
            }
        }
        if let Some(host) = &self.host {
            headers.insert(header::HOST, host.clone());
        }
        // CloudFront overwrites a viewer's header of the same name with the custom origin header.
        if let Some(secret) = secret.and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(ORIGIN_VERIFY, secret);
        }
        req
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        if !sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sender);
        }
    }

    /// Dials with CloudFront's rule: `attempts` tries, each bounded by the connect timeout.
    async fn dial(&self, settings: &EdgeSettings) -> Result<SendRequest<Full<Bytes>>, Failure> {
        for _ in 0..settings.connection_attempts {
            if let Ok(Ok(stream)) =
                timeout(settings.connect_timeout(), connect_once(self.addr)).await
            {
                let _ = stream.set_nodelay(true);
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|_| Failure::Connect)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok(sender);
            }
        }
        Err(Failure::Connect)
    }

    /// Sends one request and reads the whole response within the read timeout.
    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: http::Request<Full<Bytes>>,
        settings: &EdgeSettings,
    ) -> Result<Answer, (Failure, bool)> {
        let read = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| (Failure::Reset, e.is_canceled() || e.is_incomplete_message()))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|_| (Failure::Reset, false))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match timeout(settings.read_timeout(), read).await {
            Ok(result) => result,
            Err(_) => Err((Failure::Timeout, false)),
        }
    }

    /// One request to this origin, on a pooled connection when one is idle.
    async fn send(
        &self,
        out: &Outgoing,
        settings: &EdgeSettings,
        secret: Option<&str>,
    ) -> Result<Answer, Failure> {
        if let Some(mut sender) = self.take_idle() {
            match self
                .exchange(&mut sender, self.request(out, secret), settings)
                .await
            {
                Ok(answer) => {
                    self.put_idle(sender);
                    return Ok(answer);
                }
                // The origin closed an idle connection before we used it: not the origin's
                // failure, try a fresh connection as any proxy would.
                Err((_, true)) => {}
                Err((failure, false)) => return Err(failure),
            }
        }
        let mut sender = self.dial(settings).await?;
        match self
            .exchange(&mut sender, self.request(out, secret), settings)
            .await
        {
            Ok(answer) => {
                self.put_idle(sender);
                Ok(answer)
            }
            Err((failure, _)) => Err(failure),
        }
    }
}

/// One connection attempt. A loopback origin that is down refuses inside the `connect()` call
/// itself (the kernel answers the SYN with a reset before the call returns), so the socket's
/// error is read at once and a refused attempt costs four system calls, without a trip through
/// the reactor and a wake-up; any other attempt waits until the socket is writable, as tokio's
/// own `TcpStream::connect` does.
async fn connect_once(addr: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {
            if let Some(refused) = socket.take_error()? {
                return Err(refused);
            }
        }
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// The edge: origins in order (primary first), settings, and the origin secret it adds.
pub struct Edge {
    pub origins: Vec<Origin>,
    pub settings: EdgeSettings,
    pub origin_secret: Option<String>,
    /// Which region `/api/*` goes to first (SPEC §6), read on every request.
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
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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

fn to_response(answer: Answer, origin: &Origin, failover: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    // The origin's own header map, less what belongs to its connection.
    let mut headers = answer.headers;
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for name in hop {
        headers.remove(name);
    }
    *response.headers_mut() = headers;
    let headers = response.headers_mut();
    if let Some(v) = &origin.marker {
        headers.insert(EDGE_ORIGIN, v.clone());
    }
    if let Some(v) = failover.and_then(|f| HeaderValue::from_str(f).ok()) {
        headers.insert(EDGE_FAILOVER, v);
    }
    response
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
            settings,
            origin_secret,
            active,
            failovers: FailoverLog::default(),
        }
    }

    async fn outgoing(req: Request, path_and_query: String) -> Result<Outgoing, Response> {
        // What cannot be forwarded as it came is refused, never silently changed.
        let uri: Uri = path_and_query.parse().map_err(|_| {
            let message = "this path cannot be forwarded as sent";
            respond(ErrorCode::BadRequest, None, message, None)
        })?;
        let (parts, body) = req.into_parts();
        let body = http_body_util::Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                edge_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large for the edge".into(),
                )
            })?
            .to_bytes();
        Ok(Outgoing {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
        })
    }

    /// `/api/*`: the route of SPEC §3 and §6 (one region for writes, an origin group for
    /// reads, the active region first), marked with the active region when one is set.
    async fn api(&self, out: Outgoing) -> Response {
        let active = self.active.get();
        let regions: Vec<&str> = self.origins.iter().map(|o| o.region.as_str()).collect();
        let route = api_route(out.method.as_str(), active.as_deref(), &regions);
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
        let secret = self.origin_secret.as_deref();
        let first = self.origin(route.origins[0]);
        let reason = match first.send(&out, &self.settings, secret).await {
            Ok(answer)
                if route.fails_over() && FAILOVER_STATUSES.contains(&answer.status.as_u16()) =>
            {
                format!("status-{}", answer.status.as_u16())
            }
            Ok(answer) => return to_response(answer, first, None),
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
        match second.send(&out, &self.settings, secret).await {
            Ok(answer) => to_response(answer, second, Some(&reason)),
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
        match origin
            .send(&out, &self.settings, self.origin_secret.as_deref())
            .await
        {
            Ok(answer) => to_response(answer, origin, None),
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
    match Edge::outgoing(req, pq).await {
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
    match Edge::outgoing(req, pq).await {
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
    let guarded = path.starts_with("/_tandem")
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

/// Where the console comes from: its directory, and a progress file for while it is built.
#[derive(Debug, Clone)]
pub struct ConsoleFiles {
    pub dir: PathBuf,
    /// Shown on the "console is building" page while `dir` has no `index.html` yet
    /// (`cargo xtask dev` writes its build steps there).
    pub progress: Option<PathBuf>,
}

/// Serves only files that really are inside the console directory: a symlink in it that
/// points elsewhere (say, to a file with secrets) answers 404 instead of that file. The
/// directory is resolved per request, since a build may create or replace it while we run.
async fn inside_console(
    State(console): State<Arc<ConsoleFiles>>,
    req: Request,
    next: Next,
) -> Response {
    if !console.dir.join("index.html").is_file() {
        return building_page(console.progress.as_deref());
    }
    let Ok(root) = std::fs::canonicalize(&console.dir) else {
        return building_page(console.progress.as_deref());
    };
    let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
    let candidate = root.join(path.trim_start_matches('/'));
    // The precompressed copies are served in the file's place, so they are checked too.
    let outside = ["", ".br", ".gz"].into_iter().any(|ext| {
        let mut file = candidate.clone().into_os_string();
        file.push(ext);
        std::fs::canonicalize(&file).is_ok_and(|real| !real.starts_with(&root))
    });
    if outside {
        tracing::warn!(path = %candidate.display(), "refused a console path that leads outside the console directory");
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(req).await
}

/// How often the "console is building" page reloads itself, in seconds.
pub const BUILDING_RELOAD_SECS: u32 = 3;

/// 503 (the console is not there yet) with a page that reloads itself every
/// [`BUILDING_RELOAD_SECS`] and shows the build's progress; the API answers meanwhile.
fn building_page(progress: Option<&std::path::Path>) -> Response {
    let steps = progress
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(BUILDING_RELOAD_SECS);
                title { "Tandem: console is building" }
            }
            body {
                h1 { "The console is building" }
                p {
                    "This page reloads itself every " (BUILDING_RELOAD_SECS) " s and becomes the \
                     console when the build is done. The API already answers under "
                    a href="/api/health" { "/api" } "."
                }
                pre { (steps) }
            }
        }
    }
    .into_string();
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, axum::response::Html(page)).into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(BUILDING_RELOAD_SECS),
    );
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

const NO_CONSOLE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tandem</title></head><body><h1>Tandem</h1><p>The console is not built. Run <code>cargo xtask dev</code>, or use the API under <a href=\"/api/health\">/api</a>.</p></body></html>";

/// The edge's router: the behaviors of SPEC §3 in order, with `control` under `/_tandem`.
pub fn router(edge: Arc<Edge>, control: Router, console: Option<ConsoleFiles>) -> Router {
    let console: Router = match console {
        Some(console) => {
            // `cargo xtask` writes each file's brotli (quality 11) and gzip next to it: served
            // as they are to a browser that takes them, so what is measured is what is served.
            // Anything else is compressed on the fly below.
            let index = tower_http::services::ServeFile::new(console.dir.join("index.html"))
                .precompressed_br()
                .precompressed_gzip();
            let files = tower_http::services::ServeDir::new(&console.dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(index);
            Router::new()
                .fallback_service(files)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(console),
                    inside_console,
                ))
                .layer(
                    tower_http::compression::CompressionLayer::new()
                        .br(true)
                        .gzip(true),
                )
        }
        None => Router::new().fallback(|| async { axum::response::Html(NO_CONSOLE) }),
    };
    Router::new()
        .route("/region/{region}/api/{*rest}", any(api_single))
        .route("/api/{*rest}", any(api_group))
        .with_state(edge)
        .nest("/_tandem", control)
        .merge(console)
        .layer(axum::middleware::from_fn(guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// An origin on a plain socket that counts the connections it accepts and, after
    /// `answers` answers on one, closes it without saying so (no `connection: close`), as an
    /// origin's idle timeout does; `closed` counts those closes.
    async fn counting_origin(
        answers: usize,
    ) -> (
        SocketAddr,
        Arc<std::sync::atomic::AtomicUsize>,
        tokio::sync::watch::Receiver<usize>,
    ) {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (closed_tx, closed) = tokio::sync::watch::channel(0);
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    let mut stream = tokio::io::BufReader::new(stream);
                    for _ in 0..answers {
                        let mut line = String::new();
                        while stream.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
                            line.clear();
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.get_mut().write_all(ok).await.is_err() {
                            return;
                        }
                    }
                    drop(stream);
                    closed_tx.send_modify(|n| *n += 1);
                });
            }
        });
        (addr, accepted, closed)
    }

    /// A GET through `origin`, which must answer 200 "ok".
    async fn get_ok(origin: &Origin) {
        let request = Outgoing {
            method: Method::GET,
            uri: Uri::from_static("/api/items/a"),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        let answer = origin
            .send(&request, &EdgeSettings::default(), None)
            .await
            .unwrap();
        assert_eq!(
            (answer.status, &answer.body[..]),
            (StatusCode::OK, &b"ok"[..])
        );
    }

    #[tokio::test]
    async fn requests_in_turn_share_one_origin_connection() {
        let (addr, accepted, _) = counting_origin(usize::MAX).await;
        let origin = Origin::new("us-east-1", addr);
        for _ in 0..5 {
            get_ok(&origin).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_origin_closed_while_idle_is_not_the_origins_failure() {
        let (addr, accepted, mut closed) = counting_origin(1).await;
        let origin = Origin::new("us-east-1", addr);
        for n in 1..=3 {
            get_ok(&origin).await;
            // The origin has closed the connection before the next request is sent.
            closed.wait_for(|c| *c >= n).await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// The edge with no regions, serving the console in `dir`.
    fn console_app(dir: &std::path::Path) -> Router {
        let edge = Arc::new(Edge::new(
            vec![],
            EdgeSettings::default(),
            None,
            Arc::new(Active::load(dir, &[]).unwrap()),
        ));
        let console = ConsoleFiles {
            dir: dir.to_path_buf(),
            progress: Some(dir.with_extension("progress")),
        };
        router(edge, Router::new(), Some(console))
    }

    async fn get(app: &Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_console_still_building_gets_a_page_that_reloads_itself() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("dist");
        let app = console_app(&dir);
        let (status, headers, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no directory yet");
        assert_eq!(headers[http::header::RETRY_AFTER], "3");
        assert!(
            body.contains(r#"<meta http-equiv="refresh" content="3">"#),
            "{body}"
        );

        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.with_extension("progress"), "step 2/4: trunk <0.21>\n").unwrap();
        let (status, _, body) = get(&app, "/some/route").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no index.html yet");
        assert!(body.contains("step 2/4: trunk &lt;0.21&gt;"), "{body}");

        std::fs::write(dir.join("index.html"), "<html>console</html>").unwrap();
        let (status, _, body) = get(&app, "/").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "<html>console</html>")
        );
    }

    #[tokio::test]
    async fn console_files_never_lead_outside_the_console_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s3cr3t").unwrap();
        let console = tempfile::tempdir().unwrap();
        std::fs::write(console.path().join("index.html"), "<html>console</html>").unwrap();
        std::fs::write(console.path().join("app.js"), "js").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            console.path().join("leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), console.path().join("out")).unwrap();
        std::fs::write(console.path().join("style.css"), "css").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            console.path().join("style.css.br"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            console.path().join("app.js"),
            console.path().join("alias.js"),
        )
        .unwrap();
        let app = console_app(console.path());
        let get = |path: &'static str| {
            let app = app.clone();
            async move {
                let resp = app
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = resp.status();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        for path in ["/leak.txt", "/out/secret.txt", "/%6Ceak.txt", "/style.css"] {
            let (status, body) = get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(!body.contains("s3cr3t"), "{path}");
        }
        assert_eq!(get("/app.js").await, (StatusCode::OK, "js".to_owned()));
        assert_eq!(get("/alias.js").await, (StatusCode::OK, "js".to_owned()));
        assert_eq!(
            get("/some/route").await.0,
            StatusCode::OK,
            "the SPA fallback still works"
        );
    }

    #[tokio::test]
    async fn precompressed_console_files_are_served_as_they_are() {
        let console = tempfile::tempdir().unwrap();
        std::fs::write(console.path().join("index.html"), "<html>console</html>").unwrap();
        std::fs::write(console.path().join("app.wasm"), "raw wasm").unwrap();
        std::fs::write(console.path().join("app.wasm.br"), "brotli bytes").unwrap();
        std::fs::write(console.path().join("app.wasm.gz"), "gzip bytes").unwrap();
        let app = console_app(console.path());
        let get = |accept: &'static str| {
            let app = app.clone();
            async move {
                let req = Request::get("/app.wasm")
                    .header(http::header::ACCEPT_ENCODING, accept)
                    .body(Body::empty())
                    .unwrap();
                let resp = app.oneshot(req).await.unwrap();
                let encoding = resp
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (encoding, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(get("br").await, (Some("br".into()), "brotli bytes".into()));
        assert_eq!(get("gzip, deflate, br").await.0.as_deref(), Some("br"));
        assert_eq!(
            get("gzip").await,
            (Some("gzip".into()), "gzip bytes".into())
        );
        assert_eq!(get("identity").await, (None, "raw wasm".into()));
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
