//! The most memory one request may take, measured by counting every allocation of this process
//! (a global allocator that keeps the high-water mark), for each adapter and store, with the
//! shape that costs most per stored byte when decoded into a tree: items of tiny values
//! (`{"a":[0,0,…]}`, 400 KB each). Before items were kept as text, one page of them cost a
//! region ~600 MiB; the bounds below are what `docs/contract.md` states.
//!
//! The counter is the whole process's, so the tests here take turns ([`ONE_AT_A_TIME`]).

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tandem_api::store::Store as _;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_shared::item::Data;
use tandem_shared::validate::{MAX_BODY_BYTES, MAX_ITEM_BYTES};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let now = CURRENT.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1024 * 1024;

/// Held for a whole test: nothing else allocates while one measures.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The most one list page may take while it is made (the page budget is 5 MiB of answer: the
/// items, then the answer itself) in a region serving HTTP, and on Lambda, where `lambda_http`
/// copies the body into the runtime's response and escapes it into JSON once more.
const PAGE_HTTP: usize = 12 * MIB;
const PAGE_LAMBDA: usize = 24 * MIB;
/// A write of the largest body the API reads (1 MiB), or a read of the largest item.
const ONE_ITEM: usize = 4 * MIB;

/// Runs `request` and returns the most memory the process held above what it held before.
async fn peak_of<F: std::future::Future>(request: F) -> usize {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    request.await;
    PEAK.load(Ordering::SeqCst).saturating_sub(before)
}

/// Data of tiny values: `{"a":[0,0,…]}` with `zeros` zeros.
fn tiny_values(zeros: usize) -> Data {
    let mut text = String::with_capacity(2 * zeros + 8);
    text.push_str(r#"{"a":["#);
    for i in 0..zeros {
        text.push_str(if i == 0 { "0" } else { ",0" });
    }
    text.push_str("]}");
    let body = format!(r#"{{"data":{text}}}"#);
    tandem_shared::validate::parse_put_body(body.as_bytes())
        .unwrap()
        .data
}

/// The largest item of tiny values the store takes (its record just under 400 KB).
fn poison() -> Data {
    tiny_values((MAX_ITEM_BYTES - 200) / 2)
}

/// Sends a raw HTTP/1.1 request and reads the answer into a small buffer it reuses, so the
/// client's own memory does not count: returns the status line and the bytes read.
async fn raw_request(addr: &str, request: &[u8]) -> (String, usize) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut first, mut total) = (None, 0);
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| String::from_utf8_lossy(&buf[..n.min(12)]).into_owned());
        total += n;
    }
    (first.unwrap_or_default(), total)
}

fn check(what: &str, peak: usize, bound: usize) {
    println!(
        "{what}: {:.1} MiB (bound {} MiB)",
        peak as f64 / MIB as f64,
        bound / MIB
    );
    assert!(peak <= bound, "{what} took {peak} bytes, over {bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_takes_at_most_its_stated_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
    for i in 0..101 {
        store
            .put(&format!("poison-{i:03}"), poison(), None)
            .await
            .unwrap();
    }
    let app = tandem_api::router(store.clone(), config("us-east-1", None));

    // HTTP: a page of poison, the largest item, the largest body.
    let addr = serve(app.clone()).await;
    let page = b"GET /api/items?limit=100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, read) = raw_request(&addr, page).await; // warms redb's page cache
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(read > 4 * MIB, "a full page: {read} bytes");
    let peak = peak_of(async {
        let (status, _) = raw_request(&addr, page).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    })
    .await;
    check(
        "HTTP, embedded store: a page of 400 KB tiny-value items",
        peak,
        PAGE_HTTP,
    );
    let get = b"GET /api/items/poison-000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let peak = peak_of(async {
        assert!(raw_request(&addr, get).await.0.starts_with("HTTP/1.1 200"));
    })
    .await;
    check("HTTP, embedded store: the largest item", peak, ONE_ITEM);
    let body = format!(
        r#"{{"data":{{"a":[{}]}}}}"#,
        vec!["0"; (MAX_BODY_BYTES - 64) / 2].join(",")
    );
    let put = format!(
        "PUT /api/items/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let peak = peak_of(async {
        let (status, _) = raw_request(&addr, put.as_bytes()).await;
        assert!(
            status.starts_with("HTTP/1.1 413"),
            "over the item limit: {status}"
        );
    })
    .await;
    check("HTTP: a 1 MiB body of tiny values", peak, ONE_ITEM);

    // Lambda: the same page through lambda_http, as API Gateway sends it.
    let lambda = Lambda::new(app);
    let event = Lambda::event(&Req::new("GET", "/api/items?limit=100"));
    let peak = peak_of(async {
        let out = lambda.invoke(event.clone()).await;
        assert_eq!(out["statusCode"], 200);
    })
    .await;
    check("Lambda, embedded store: the same page", peak, PAGE_LAMBDA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_a_page_takes_at_most_its_stated_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let moto = Moto::start().await;
    let store = moto.store("memory", "us-east-1").await;
    // 390 KB: moto counts an item's size with more overhead than DynamoDB documents.
    let item = tiny_values(195_000);
    for i in 0..24 {
        store
            .put(&format!("poison-{i:03}"), item.clone(), None)
            .await
            .unwrap();
    }
    let lambda = Lambda::new(tandem_api::router(store, config("us-east-1", None)));
    let event = Lambda::event(&Req::new("GET", "/api/items?limit=100"));
    lambda.invoke(event.clone()).await; // the SDK's connection and buffers
    let peak = peak_of(async {
        let out = lambda.invoke(event.clone()).await;
        assert_eq!(out["statusCode"], 200);
    })
    .await;
    check(
        "Lambda, DynamoDB store: a page of 400 KB tiny-value items",
        peak,
        PAGE_LAMBDA,
    );
}
