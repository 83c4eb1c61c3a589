//! One region's API as an origin: dialling it under CloudFront's connection rules, proving it
//! is that region before anything secret is sent to it, a pool of idle connections, and one
//! request-response exchange under the read timeout.

use super::budget::{self, Budget, Held};
use crate::replication::wire::{self, Key};
use axum::response::Response;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use tandem_shared::control::EdgeSettings;
use tandem_shared::headers::{EDGE_FAILOVER, EDGE_ORIGIN, ORIGIN_VERIFY};
use tandem_shared::sync::lock;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One region's API as an origin.
pub struct Origin {
    pub region: String,
    pub addr: SocketAddr,
    /// The `Host` every request to it carries, made once.
    host: Option<HeaderValue>,
    /// Its region as the `x-edge-origin` value, made once.
    marker: Option<HeaderValue>,
    /// Connections proven and idle.
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    /// When a process on the port last failed to prove it is this region (logged once a second).
    unproven: Mutex<Option<std::time::Instant>>,
}

/// How the edge talks to every origin: CloudFront's settings, the secret it adds, the key a
/// region proves itself with, and the budget answers are kept in.
pub struct Conn {
    pub settings: EdgeSettings,
    pub origin_secret: Option<String>,
    /// `None` only in tests without regions: then nothing is proven, and no secret is set.
    pub proof: Option<Key>,
    pub budget: Budget,
}

/// Most bytes of one answer the edge keeps (a list page is at most 5 MiB of answer).
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// Why an origin gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection after every attempt (refused, or each attempt timed out).
    Connect,
    /// Connected, but no complete response within the read timeout.
    Timeout,
    /// The connection broke before a complete response.
    Reset,
    /// The edge's buffer budget is spent: no other origin would do better.
    Overloaded,
}

impl Failure {
    /// The `x-edge-failover` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::Overloaded => "overloaded",
        }
    }

    pub(super) fn status(&self) -> StatusCode {
        match self {
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Connect | Failure::Reset => StatusCode::BAD_GATEWAY,
            Failure::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A request as the edge keeps it: replayable on another origin.
pub(super) struct Outgoing {
    pub method: Method,
    /// Path and query, exactly as the viewer sent them (percent-encoding untouched).
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body's bytes in the budget, until the request is done.
    pub _held: Held,
}

/// A complete origin response.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub held: Held,
}

impl Answer {
    /// The answer as the viewer gets it: the origin's headers less its connection's, marked
    /// with the origin that answered and the failover, if there was one.
    pub(super) fn into_response(self, origin: &Origin, failover: Option<&str>) -> Response {
        let mut response = Response::new(budget::body(self.body, self.held));
        *response.status_mut() = self.status;
        let mut headers = self.headers;
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
            unproven: Mutex::new(None),
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
        let mut idle = lock(&self.idle);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        if !sender.is_closed() {
            lock(&self.idle).push(sender);
        }
    }

    /// Dials with CloudFront's rule: `attempts` tries, each bounded by the connect timeout,
    /// and then has the process on the port prove it is this region before the connection
    /// carries anything secret. One that answers without the proof is a failed connection; one
    /// that never answers (a blackholed region, whose kernel still accepts connections) times
    /// out after the read timeout, as the request itself would have.
    async fn dial(&self, conn: &Conn) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let settings = &conn.settings;
        for _ in 0..settings.connection_attempts {
            let Ok(Ok(stream)) = timeout(settings.connect_timeout(), connect_once(self.addr)).await
            else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|_| Failure::Connect)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let Some(key) = &conn.proof else {
                return Ok(sender);
            };
            return match timeout(settings.read_timeout(), self.prove(&mut sender, key)).await {
                Ok(true) => Ok(sender),
                Ok(false) => {
                    self.warn_unproven();
                    Err(Failure::Connect)
                }
                Err(_) => Err(Failure::Timeout),
            };
        }
        Err(Failure::Connect)
    }

    /// Asks the process on this connection to prove it is this region ([`Key::prove`]).
    async fn prove(&self, sender: &mut SendRequest<Full<Bytes>>, key: &Key) -> bool {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = Uri::from_static(crate::replication::routes::PROOF);
        if let (Some(host), Ok(nonce)) = (&self.host, HeaderValue::from_str(&nonce)) {
            req.headers_mut().insert(header::HOST, host.clone());
            req.headers_mut().insert(wire::NONCE_HEADER, nonce);
        }
        let Ok(resp) = sender.send_request(req).await else {
            return false;
        };
        let proven = resp
            .headers()
            .get(wire::PROOF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proof| key.verify_proof(&self.region, &nonce, proof));
        // The (empty) body is read so the connection can carry the next request.
        proven && resp.into_body().collect().await.is_ok()
    }

    fn warn_unproven(&self) {
        let now = std::time::Instant::now();
        let mut last = lock(&self.unproven);
        if last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            *last = Some(now);
            tracing::warn!(region = %self.region, addr = %self.addr, "the process on this region's port could not prove it is the region: nothing is sent to it");
        }
    }

    /// Sends one request and reads the whole response within the read timeout, into the budget.
    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: http::Request<Full<Bytes>>,
        conn: &Conn,
    ) -> Result<Answer, (Failure, bool)> {
        let read = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| (Failure::Reset, e.is_canceled() || e.is_incomplete_message()))?;
            let (parts, body) = resp.into_parts();
            let (body, held) = conn.budget.collect(body, MAX_ANSWER_BYTES).await.map_err(
                |refused| match refused {
                    budget::Refused::Overloaded => (Failure::Overloaded, false),
                    _ => (Failure::Reset, false),
                },
            )?;
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
                held,
            })
        };
        match timeout(conn.settings.read_timeout(), read).await {
            Ok(result) => result,
            Err(_) => Err((Failure::Timeout, false)),
        }
    }

    /// One request to this origin, on a pooled (proven) connection when one is idle.
    pub(super) async fn send(&self, out: &Outgoing, conn: &Conn) -> Result<Answer, Failure> {
        let secret = conn.origin_secret.as_deref();
        if let Some(mut sender) = self.take_idle() {
            match self
                .exchange(&mut sender, self.request(out, secret), conn)
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
        let mut sender = self.dial(conn).await?;
        match self
            .exchange(&mut sender, self.request(out, secret), conn)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
            _held: Held::default(),
        };
        let conn = Conn {
            settings: EdgeSettings::default(),
            origin_secret: None,
            proof: None,
            budget: Budget::new(1 << 20),
        };
        let answer = origin.send(&request, &conn).await.unwrap();
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
}
