//! Slow and hostile clients against the server every region and the edge run on: a request
//! whose header never finishes, a body that never arrives, an answer nobody reads, an idle
//! keep-alive connection, more connections than the cap (and the reserve kept for health and
//! the control routes), and a shutdown while a half-sent request is open.

use axum::Router;
use axum::routing::get;
use std::time::Duration;
use tandem_api::server::{Limits, serve_with};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

async fn start(limits: Limits) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/api/health", get(|| async { "healthy" }))
        .route("/body", axum::routing::put(read_body))
        // 64 MiB: far more than the socket buffers of both ends hold.
        .route("/big", get(|| async { vec![b'x'; 64 << 20] }));
    let server = tokio::spawn(async move {
        serve_with(listener, app, async { drop(stopped.await) }, limits)
            .await
            .unwrap();
    });
    (addr, stop, server)
}

/// Reads the whole body, as the API's extractors do; a body that fails says why.
async fn read_body(req: axum::extract::Request) -> Result<&'static str, tandem_api::ApiError> {
    axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(tandem_api::server::body_error)?;
    Ok("read")
}

/// Reads until the server closes the connection; what it sent first (HTTP's text). Gives up
/// (and fails the test) after 20 s: a connection the server never closes is the bug these
/// tests catch.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8(all).expect("an answer in text")
}

/// A new connection to the server with `bytes` already written on it.
async fn send(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
/// A whole request, on a connection kept alive after it.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// A whole request, on a connection the server closes after answering.
const GET_AND_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn a_header_that_never_finishes_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut slow = send(&addr, PARTIAL).await;
    until_closed(&mut slow).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut idle = send(&addr, GET).await;
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_the_others_still_served() {
    let limits = Limits {
        max_connections: 2,
        reserve: 0,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(send(&addr, PARTIAL).await);
    }
    // Accepted in order, so by the time the third is closed the first two hold the permits.
    let mut third = TcpStream::connect(&addr).await.unwrap();
    assert!(until_closed(&mut third).await.is_empty());
    // Finishing a held request is still answered.
    held[0]
        .write_all(b"1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut held[0]).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_is_not_held_open_by_a_half_sent_request() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(3600),
        drain: Duration::from_millis(500),
        ..Limits::default()
    };
    let (addr, stop, server) = start(limits).await;
    let mut slow = send(&addr, PARTIAL).await;
    // Let the server take the connection in before asking it to stop.
    let mut probe = send(&addr, GET_AND_CLOSE).await;
    until_closed(&mut probe).await;
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await;
    assert!(
        finished.is_ok(),
        "serve did not return while a half-sent request was open"
    );
    until_closed(&mut slow).await;
}

#[tokio::test]
async fn past_the_cap_the_reserve_serves_only_health_and_control_paths() {
    let limits = Limits {
        max_connections: 1,
        reserve: 2,
        reserved: &["/api/health"],
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let _held = send(&addr, PARTIAL).await;
    // Let the server take the first connection in (it holds the one ordinary permit).
    let mut health = send(
        &addr,
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let answer = until_closed(&mut health).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut public = send(&addr, GET).await;
    let answer = until_closed(&mut public).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains(r#""code":"overloaded""#), "{answer}");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408_and_closed() {
    let limits = Limits {
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut stalled = send(
        &addr,
        b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{",
    )
    .await;
    let answer = until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A byte at a time does not keep it alive either: the deadline is for the whole body.
    let mut trickle = send(
        &addr,
        b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
    )
    .await;
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    loop {
        if trickle.write_all(b"x").await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), trickle.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the trickle kept the request"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_client_that_never_reads_its_answer_gives_its_connection_up() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        max_connections: 1,
        reserve: 0,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let deaf = send(&addr, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The one permit is the deaf client's until its stalled answer is given up; then another
    // client is served. Counted by answers, not timed.
    let served = tandem_testkit::until(Duration::from_secs(20), || async {
        let mut c = TcpStream::connect(&addr).await.ok()?;
        c.write_all(GET_AND_CLOSE).await.ok()?;
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    })
    .await;
    assert!(served.is_some(), "the deaf client held the only connection");
    drop(deaf);
}
