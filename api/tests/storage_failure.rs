//! A region whose disk fails: writes answer 503 (an outage, so the edge fails over), never a
//! bare 500, and `/api/health` says so until the region is restarted. A disk whose fsync stalls:
//! reads still answer and health says writes are stalled.

use axum::body::Body;
use http::{Request, StatusCode};
use redb::StorageBackend;
use redb::backends::InMemoryBackend;
use serde_json::Value;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tandem_api::store::embedded::EmbeddedStore;
use tower::ServiceExt as _;

/// An in-memory disk the test can break (from then on every write and sync fails) or stall
/// (a sync waits while the test holds `gate`; the syncs that began are counted).
#[derive(Debug, Clone, Default)]
struct TestDisk {
    inner: Arc<InMemoryBackend>,
    broken: Arc<AtomicBool>,
    gate: Arc<RwLock<()>>,
    syncs_started: Arc<AtomicUsize>,
}

impl TestDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected: the disk is gone"));
        }
        Ok(())
    }
}

impl StorageBackend for TestDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
        self.check()?;
        self.syncs_started.fetch_add(1, Ordering::SeqCst);
        let _open = self.gate.read().unwrap_or_else(|e| e.into_inner());
        self.inner.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

fn app_on(store: EmbeddedStore) -> axum::Router {
    tandem_api::router(
        store,
        tandem_api::Config {
            region: "us-east-1".into(),
            admin_token: None,
            ..Default::default()
        },
    )
}

/// GETs run on the async workers (not the blocking pool), so they must not wait for a commit:
/// with the committer stuck in fsync, an item acknowledged before still reads, health says the
/// store is stalled, and the stuck write completes (and health recovers) once the disk does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_wait_for_a_commit_stuck_in_fsync() {
    let disk = TestDisk::default();
    let store = EmbeddedStore::open_with_backend(disk.clone(), "us-east-1").unwrap();
    let app = app_on(store.clone());
    assert_eq!(
        call(&app, "PUT", "/api/items/a", r#"{"data":{"n":1}}"#)
            .await
            .0,
        201
    );

    // The gate is held by a thread of its own, so no lock is held across this test's awaits.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = std::sync::mpsc::channel();
    let gate = disk.gate.clone();
    let holder = std::thread::spawn(move || {
        let _closed = gate.write().unwrap();
        held.send(()).unwrap();
        let _ = released.recv();
    });
    is_held.recv().unwrap();
    let before = disk.syncs_started.load(Ordering::SeqCst);
    let put_app = app.clone();
    let put = tokio::spawn(async move {
        call(&put_app, "PUT", "/api/items/b", r#"{"data":{}}"#)
            .await
            .0
    });
    // Counted, not timed: the committer is inside sync_data, held by the gate.
    while disk.syncs_started.load(Ordering::SeqCst) == before {
        tokio::task::yield_now().await;
    }
    // On a worker, so that a read that blocked would fail this test's timeout, not hang it.
    let get_app = app.clone();
    let get = tokio::spawn(async move { call(&get_app, "GET", "/api/items/a", "").await });
    let (status, body, _) = tokio::time::timeout(std::time::Duration::from_secs(10), get)
        .await
        .expect("a GET waited for the stalled commit")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["item"]["data"]["n"], 1);
    assert!(
        !put.is_finished(),
        "the write is acknowledged only after its fsync"
    );
    // Not silent: health says the store is stalled (threshold zero here: any commit under way).
    store.set_stalled_after(std::time::Duration::ZERO);
    let (status, health, _) = call(&app, "GET", "/api/health", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert!(
        health["error"].as_str().unwrap().contains("stalled"),
        "{health}"
    );

    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(put.await.unwrap(), 201);
    let (status, health, _) = call(&app, "GET", "/api/health", "").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "healthy again once the disk answers: {health}"
    );
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, Value, Option<String>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry,
    )
}

#[tokio::test]
async fn a_failing_disk_is_an_outage_and_health_says_so() {
    let disk = TestDisk::default();
    let app = app_on(EmbeddedStore::open_with_backend(disk.clone(), "us-east-1").unwrap());
    let (status, _, _) = call(&app, "PUT", "/api/items/a", r#"{"data":{}}"#).await;
    assert_eq!(status, 201);
    assert_eq!(call(&app, "GET", "/api/health", "").await.0, 200);

    disk.broken.store(true, Ordering::SeqCst);
    let (status, body, retry) = call(&app, "PUT", "/api/items/b", r#"{"data":{}}"#).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "region_unavailable");
    assert_eq!(retry.as_deref(), Some("1"));
    let (status, body, _) = call(&app, "DELETE", "/api/items/a", "").await;
    assert_eq!(status, 503, "{body}");
    let (status, health, _) = call(&app, "GET", "/api/health", "").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable");
    assert!(
        health["error"].as_str().unwrap().contains("restart"),
        "{health}"
    );
    // What was acknowledged before the failure still reads.
    assert_eq!(call(&app, "GET", "/api/items/a", "").await.0, 200);
}
