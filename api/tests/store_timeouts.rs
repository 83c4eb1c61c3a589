//! The DynamoDB store when DynamoDB does not answer: every call gives up within the store's
//! timeout (below the function's, which is the edge's origin read timeout) and the region
//! answers 503 with its JSON body; and a write whose answer was lost may still have landed,
//! so the safe resend is a conditional one (`If-Match`), which then answers 412 instead of
//! writing twice.
//!
//! DynamoDB is moto behind a TCP proxy the test switches between forwarding, dropping the
//! answers to `PutItem` (the write still reaches DynamoDB) and swallowing requests.

mod common;

use common::{Client as _, Http, Moto, MotoExt as _, Req};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tandem_api::store::dynamo::DynamoStore;
use tandem_shared::control::FUNCTION_TIMEOUT_S;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const FORWARD: u8 = 0;
/// Requests reach DynamoDB; the answers to writes are dropped (a write lands, its 200 is lost).
const DROP_PUT_ANSWERS: u8 = 1;
/// Requests go nowhere.
const SWALLOW: u8 = 2;
/// The answer to the next write is dropped (on that connection); then everything is forwarded.
const DROP_FIRST_PUT_ANSWER: u8 = 3;

/// A proxy whose behaviour is read for every chunk, so pooled connections follow a switch.
struct Proxy {
    addr: String,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(&upstream).await.unwrap();
                let (client_rx, client_tx) = client.into_split();
                let (up_rx, up_tx) = upstream.into_split();
                // One request at a time on a connection (the SDK does not pipeline): whether
                // the answer now coming back is to a dropped write.
                let put = Arc::new(AtomicBool::new(false));
                let requests = requests(shared.clone(), put.clone());
                tokio::spawn(relay(client_rx, up_tx, requests));
                tokio::spawn(relay(up_rx, client_tx, answers(shared.clone(), put)));
            }
        });
        Proxy { addr, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` a chunk at a time, passing on the chunks `pass` lets through.
async fn relay(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut pass: impl FnMut(&[u8]) -> bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if pass(&buf[..n]) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Client to DynamoDB: swallowed in SWALLOW; each request noted as a write or not.
fn requests(mode: Arc<AtomicU8>, put: Arc<AtomicBool>) -> impl FnMut(&[u8]) -> bool {
    move |chunk| {
        if chunk.starts_with(b"POST ") {
            let is_put = chunk.windows(8).any(|w| w == b".PutItem");
            put.store(is_put, Ordering::SeqCst);
        }
        mode.load(Ordering::SeqCst) != SWALLOW
    }
}

/// DynamoDB to client: forwarded in FORWARD, and in the DROP modes unless it answers a write.
fn answers(mode: Arc<AtomicU8>, put: Arc<AtomicBool>) -> impl FnMut(&[u8]) -> bool {
    // This connection carries a dropped answer: the rest of it is dropped too.
    let mut dropping = false;
    move |_| {
        let is_put = put.load(Ordering::SeqCst);
        !dropping
            && match mode.load(Ordering::SeqCst) {
                FORWARD => true,
                DROP_PUT_ANSWERS => !is_put,
                DROP_FIRST_PUT_ANSWER if is_put => {
                    dropping = true;
                    mode.store(FORWARD, Ordering::SeqCst);
                    false
                }
                DROP_FIRST_PUT_ANSWER => true,
                _ => false,
            }
    }
}

/// A store on moto's table, reached through `proxy`.
async fn store_through(moto: &Moto, proxy: &Proxy) -> DynamoStore {
    moto.store("items", "us-east-1").await;
    let sdk = moto.sdk_config("us-east-1").await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(&proxy.addr)
        .build();
    DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        "items",
        "us-east-1",
    )
}

/// A region (its router over HTTP) on moto's DynamoDB behind a [`Proxy`].
async fn region_behind_a_proxy() -> (Moto, Proxy, Http) {
    let moto = Moto::start().await;
    let upstream = moto.endpoint.trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(upstream).await;
    let store = store_through(&moto, &proxy).await;
    let api = Http::start(tandem_api::router(store, common::config("us-east-1", None))).await;
    (moto, proxy, api)
}

/// A bound on the whole test's waits, so that a hang fails instead of stalling CI; the store's
/// own timeouts are seconds below it.
const HANG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_unanswered_call_is_a_503_and_a_lost_answer_is_not_written_twice() {
    let (_moto, proxy, api) = region_behind_a_proxy().await;
    let send = |req: Req| async { tokio::time::timeout(HANG, api.send(req)).await.unwrap() };
    // An outage is answered before the function's timeout would cut the region off: the
    // contract's bound, not a speed measure.
    let within_the_function_timeout = |since: Instant| {
        let limit = Duration::from_secs(u64::from(FUNCTION_TIMEOUT_S));
        assert!(
            since.elapsed() < limit,
            "answered after {:?}",
            since.elapsed()
        );
    };

    let created = send(Req::new("PUT", "/api/items/a").json(&json!({"data": {"n": 1}}))).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let etag = created.header("etag").unwrap().to_owned();

    // DynamoDB swallows the read: the region gives up and says so, as an outage.
    proxy.set(SWALLOW);
    let start = Instant::now();
    let read = send(Req::new("GET", "/api/items/a")).await;
    assert_eq!(read.status, 503, "{}", read.raw);
    within_the_function_timeout(start);
    assert_eq!(read.error_code(), "region_unavailable");

    // The replace reaches DynamoDB but its answer is lost: the client sees a 503...
    proxy.set(DROP_PUT_ANSWERS);
    let replace = Req::new("PUT", "/api/items/a")
        .header("if-match", &etag)
        .json(&json!({"data": {"n": 2}}));
    let start = Instant::now();
    let lost = send(replace.clone()).await;
    assert_eq!(lost.status, 503, "{}", lost.raw);
    within_the_function_timeout(start);

    // ...although the write landed.
    proxy.set(FORWARD);
    let after = send(Req::new("GET", "/api/items/a")).await;
    assert_eq!(after.status, 200, "{}", after.raw);
    assert_eq!(after.body["item"]["data"], json!({"n": 2}), "{}", after.raw);
    assert_eq!(after.body["item"]["version"], 2);

    // Resending it as it was, conditioned on the version it was based on, cannot apply it
    // twice: 412, and the client reads what is there.
    let resent = send(replace).await;
    assert_eq!(resent.status, 412, "{}", resent.raw);
    let last = send(Req::new("GET", "/api/items/a")).await;
    assert_eq!(last.body["item"]["version"], 2, "{}", last.raw);
}

/// The SDK retries an attempt whose answer was lost; when that attempt had landed, the retry's
/// condition fails on the store's own write, which is then acknowledged once (not refused as a
/// conflict, nor written twice).
#[tokio::test]
async fn a_retried_write_that_had_landed_is_acknowledged_once() {
    let (_moto, proxy, api) = region_behind_a_proxy().await;
    let send = |req: Req| async { tokio::time::timeout(HANG, api.send(req)).await.unwrap() };

    let created = send(Req::new("PUT", "/api/items/b").json(&json!({"data": {"n": 1}}))).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let etag = created.header("etag").unwrap().to_owned();

    proxy.set(DROP_FIRST_PUT_ANSWER);
    let replaced = send(
        Req::new("PUT", "/api/items/b")
            .header("if-match", &etag)
            .json(&json!({"data": {"n": 2}})),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.raw);
    assert_eq!(replaced.body["item"]["version"], 2, "{}", replaced.raw);
    let now = send(Req::new("GET", "/api/items/b")).await;
    assert_eq!(now.body["item"]["version"], 2, "written once: {}", now.raw);
    assert_eq!(now.body["item"]["data"], json!({"n": 2}));
}
