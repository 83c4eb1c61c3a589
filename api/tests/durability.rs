//! Durability of the embedded store: every write acknowledged by a region process survives
//! that process being killed with SIGKILL, no shutdown, mid-stream, with enough concurrent
//! writers that their writes share commits (group commit: one fsync for several writes, none
//! acknowledged before it).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tandem_testkit::{KillOnDrop, Signal, free_block, region_args, signal, until};

/// Acknowledged writes before the kill.
const ACKED_BEFORE_KILL: usize = 200;
/// Concurrent writers.
const WRITERS: usize = 16;

struct Region {
    child: KillOnDrop,
    base: String,
}

async fn start(dir: &std::path::Path) -> Region {
    let port = free_block(1).expect("a free port");
    let child = Command::new(env!("CARGO_BIN_EXE_tandem-api"))
        .args(region_args("us-east-1", port, dir))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let region = Region {
        child: KillOnDrop(child),
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let health = format!("{}/api/health", region.base);
    let up = until(Duration::from_secs(10), || async {
        client.get(&health).send().await.ok().map(drop)
    });
    assert!(up.await.is_some(), "region did not start");
    region
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = start(dir.path()).await;
    let client = reqwest::Client::new();
    let acks = Arc::new(AtomicUsize::new(0));

    // The writers run flat out; the region is killed while they are mid-request.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, base, acks) = (client.clone(), region.base.clone(), acks.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let id = format!("w{w}-{i}");
                let sent = client
                    .put(format!("{base}/api/items/{id}"))
                    .json(&serde_json::json!({"data": {"w": w, "i": i}}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        acked.push((id, v["item"].clone()));
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    // Kill without warning once enough writes were acknowledged (counted, not timed).
    let enough = until(Duration::from_secs(60), || async {
        (acks.load(Ordering::SeqCst) >= ACKED_BEFORE_KILL).then_some(())
    });
    assert!(
        enough.await.is_some(),
        "only {} writes acknowledged",
        acks.load(Ordering::SeqCst)
    );
    assert!(signal(region.child.id(), Signal::SIGKILL));
    region.child.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let region = start(dir.path()).await;
    for (id, item) in &acked {
        let r = client
            .get(format!("{}/api/items/{id}", region.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged write {id} was lost");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(&v["item"], item, "acknowledged write {id} changed");
    }
}
