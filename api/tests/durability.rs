//! Durability of the embedded store: every write acknowledged by a region process survives
//! that process being killed with SIGKILL, no shutdown, mid-stream.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Region {
    child: Child,
    base: String,
}

impl Drop for Region {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path) -> Region {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tandem-api"))
        .args([
            "--region",
            "us-east-1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let region = Region {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{}/api/health", region.base))
            .send()
            .await
            .is_ok()
        {
            return region;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("region did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = start(dir.path()).await;
    let client = reqwest::Client::new();

    // Four writers run flat out; the region is killed while they are mid-request.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base) = (client.clone(), region.base.clone());
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
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    // Let some writes through, then kill without warning.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = client
            .get(format!("{}/api/items?limit=100", region.base))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        if v["items"].as_array().unwrap().len() >= 60 {
            break;
        }
    }
    region.child.kill().unwrap(); // SIGKILL
    region.child.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() >= 60,
        "only {} writes were acknowledged",
        acked.len()
    );

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
