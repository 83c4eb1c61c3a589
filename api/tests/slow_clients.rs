//! Slow and hostile clients against the server every region and the edge run on: a request
//! whose header never finishes, an idle keep-alive connection, more connections than the cap,
//! and a shutdown while a half-sent request is open.

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
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = tokio::spawn(async move {
        serve_with(listener, app, async { drop(stopped.await) }, limits)
            .await
            .unwrap();
    });
    (addr, stop, server)
}

/// Reads until the server closes the connection; the bytes it sent first. Gives up (and fails
/// the test) after 20 s: a connection the server never closes is the bug these tests catch.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    all
}

const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";

#[tokio::test]
async fn a_header_that_never_finishes_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(PARTIAL).await.unwrap();
    until_closed(&mut slow).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_the_others_still_served() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(PARTIAL).await.unwrap();
        held.push(c);
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
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn shutdown_is_not_held_open_by_a_half_sent_request() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(3600),
        drain: Duration::from_millis(500),
        ..Limits::default()
    };
    let (addr, stop, server) = start(limits).await;
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(PARTIAL).await.unwrap();
    // Let the server take the connection in before asking it to stop.
    let mut probe = TcpStream::connect(&addr).await.unwrap();
    probe
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    until_closed(&mut probe).await;
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await;
    assert!(
        finished.is_ok(),
        "serve did not return while a half-sent request was open"
    );
    until_closed(&mut slow).await;
}
