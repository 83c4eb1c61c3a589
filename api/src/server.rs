//! Serving a router on a `TcpListener` until a shutdown future resolves (tests bind port 0),
//! with the limits a server facing slow or hostile clients needs, so that no client holds a
//! connection, a task or memory for longer than a figure stated here:
//! - a request's header must arrive within [`Limits::header_read_timeout`] (idle keep-alive
//!   connections are closed by the same timer), and its body within [`Limits::body_timeout`]
//!   after that ([`DeadlineBody`]: a whole-body deadline, not a timer between chunks, so a
//!   byte every few seconds does not keep it alive);
//! - an answer the client does not read is dropped once writing it has made no progress for
//!   [`Limits::write_timeout`] ([`StallGuard`]);
//! - at most [`Limits::max_connections`] connections are served; [`Limits::reserve`] more are
//!   let in only for the paths of [`Limits::reserved`] (health, the control and replication
//!   routes), so the operator's view stays reachable while the public side is saturated;
//! - on shutdown, open requests get [`Limits::drain`] to finish.

use axum::Router;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Request};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tandem_shared::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt as _;

/// The limits [`serve_with`] applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's whole header within this (idle connections too).
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this once its header has (else 408).
    pub body_timeout: Duration,
    /// A connection whose answer makes no progress for this long is closed (a client that
    /// never reads).
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections let in past `max_connections` for the `reserved` paths only; others are
    /// answered 503 `overloaded` and closed. Past both, connections are closed at once.
    pub reserve: usize,
    /// The path prefixes a reserved connection may ask for.
    pub reserved: &'static [&'static str],
    /// How long open requests may finish after shutdown starts; then the rest are dropped.
    pub drain: Duration,
}

/// What a region keeps reachable when saturated: its health and the routes of its peers and
/// of the supervisor (replication, and the strong mode's consensus log: a region full of
/// clients must still vote, append and answer its leader).
pub const REGION_RESERVED: &[&str] = &["/api/health", "/_replication/", "/_consensus/"];

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(tandem_shared::control::HEADER_READ_TIMEOUT_S),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 4096,
            reserve: 256,
            reserved: REGION_RESERVED,
            drain: Duration::from_secs(3),
        }
    }
}

/// Serves `router` on `listener` with the default [`Limits`] until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most
/// `limits.drain`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    // Every connection's task, so those still open after the drain can be dropped.
    let mut connections = tokio::task::JoinSet::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait a little rather than spin.
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (permit, reserved) = match permits.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(permit) => (permit, true),
                Err(_) => {
                    tracing::warn!(
                        max = limits.max_connections + limits.reserve,
                        "connection refused: too many open"
                    );
                    continue; // dropping the stream closes it
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let router = router.clone();
            async move {
                Ok::<_, std::convert::Infallible>(handle(router, req, reserved, &limits).await)
            }
        });
        let io = TokioIo::new(StallGuard::new(stream, limits.write_timeout));
        let connection = graceful.watch(http.serve_connection(io, service));
        connections.spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain) => {
            tracing::warn!(drain = ?limits.drain, open = connections.len(), "connections still open after the drain time: dropped");
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// One request: refused when it came on a reserved connection for a path that is not reserved,
/// else given to the router with its body under the deadline.
async fn handle(
    router: Router,
    req: Request<Incoming>,
    reserved: bool,
    limits: &Limits,
) -> Response {
    let path = req.uri().path();
    if reserved && !limits.reserved.iter().any(|p| path.starts_with(p)) {
        let mut response = overloaded("the server is at its connection limit; retry shortly");
        let close = HeaderValue::from_static("close");
        response
            .headers_mut()
            .insert(http::header::CONNECTION, close);
        return response;
    }
    let req = req.map(|body| axum::body::Body::new(DeadlineBody::new(body, limits.body_timeout)));
    match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A request body that fails once `deadline` has passed before its end: a client sending a
/// byte at a time, or nothing after its header, cannot hold the request beyond it.
pub struct DeadlineBody<B> {
    inner: B,
    within: Duration,
    deadline: Pin<Box<Sleep>>,
}

/// The error a [`DeadlineBody`] ends with: answered 408 (see [`body_error`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, within: Duration) -> Self {
        DeadlineBody {
            inner,
            within,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(self.within)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The client's mistake a body that could not be read was: too long (413), too slow (408), or
/// broken off (400).
pub fn body_error(err: axum::Error) -> crate::ApiError {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = source {
        if e.is::<BodyTimeout>() {
            return crate::ApiError::Client(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time".into(),
            );
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return crate::ApiError::Client(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body must be at most {} bytes",
                    tandem_shared::validate::MAX_BODY_BYTES
                ),
            );
        }
        source = e.source();
    }
    crate::ApiError::Client(
        ErrorCode::BadRequest,
        format!("the body could not be read: {err}"),
    )
}

/// An IO stream whose writes fail once one has been pending, with no progress, for `timeout`:
/// a client that stops reading its answer fills the socket's buffers, and then the connection
/// (its task, its buffers, its slot) is given up instead of waiting forever.
pub struct StallGuard<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        StallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Passes a write's outcome on; a pending one arms the stall timer, which fails it once it
    /// fires. Any progress disarms it.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client has not read its answer",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Raises this process's open-file limit to its hard limit: each connection is a descriptor,
/// and the connection limits above, not the default soft limit (often 1,024), should decide.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%err, soft, hard, "could not raise the open-file limit");
    }
}

/// 503 `overloaded` with `Retry-After`: this server (not the region behind it) is at a limit.
pub fn overloaded(message: &str) -> Response {
    let mut response = crate::error::respond(ErrorCode::Overloaded, None, message, None);
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
