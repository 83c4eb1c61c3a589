//! Test harness: a real `tandem up` on free 127.0.0.1 ports, and ways to poke it.

#![allow(dead_code)]

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "stack-test-token";
pub const SECRET: &str = "stack-test-secret";
pub const EAST: &str = "us-east-1";
pub const WEST: &str = "us-west-2";
/// Short edge timeouts keep the tests quick: 1 attempt × 1 s to connect, 1 s to answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Stack {
    pub child: Child,
    pub edge: String,
    pub regions: BTreeMap<&'static str, String>,
    pub http: Client,
    pub _data: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(id) = i32::try_from(self.child.id()) {
            // SAFETY: signalling our own child.
            unsafe { libc_kill(id, 15) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    pub fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Three consecutive free ports (edge, primary, secondary), below the ephemeral range so a
/// restarted region gets its port back.
pub fn free_ports() -> u16 {
    tandem_infra::ports::free_block(3).expect("three consecutive free ports")
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_in(tempfile::tempdir().unwrap()).await
    }

    /// A stack on a data directory the test prepared.
    pub async fn start_in(data: tempfile::TempDir) -> Stack {
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        for _ in 0..5 {
            let base = free_ports();
            let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
                .args([
                    "up",
                    "--port",
                    &base.to_string(),
                    "--admin-token",
                    TOKEN,
                    "--origin-secret",
                    SECRET,
                ])
                .args([
                    "--connection-attempts",
                    "1",
                    "--connection-timeout",
                    "1",
                    "--origin-read-timeout",
                    "1",
                ])
                .arg("--data-dir")
                .arg(data.path())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let mut stack = Stack {
                child,
                edge: format!("http://127.0.0.1:{base}"),
                regions: BTreeMap::from([
                    (EAST, format!("http://127.0.0.1:{}", base + 1)),
                    (WEST, format!("http://127.0.0.1:{}", base + 2)),
                ]),
                http: http.clone(),
                _data: tempfile::tempdir().unwrap(),
            };
            for _ in 0..400 {
                if let Ok(Some(_)) = stack.child.try_wait() {
                    break; // lost a port race: try other ports
                }
                if stack
                    .http
                    .get(format!("{}/api/health", stack.edge))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    stack._data = data;
                    return stack;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("tandem up did not start");
    }

    pub async fn send(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// Through the edge.
    pub async fn edge(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        self.send(method, format!("{}{path}", self.edge), body)
            .await
    }

    /// Straight to a region, past the edge (with the origin secret, as the edge sends it).
    pub async fn direct(&self, region: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.regions[region]))
            .header("x-origin-verify", SECRET)
            .send()
            .await
            .unwrap()
    }

    pub async fn control(&self, method: Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}/_tandem{path}", self.edge))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "control {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn set_region(&self, region: &str, state: &str) {
        let v = self
            .control(
                Method::PUT,
                &format!("/regions/{region}"),
                json!({"state": state}),
            )
            .await;
        assert_eq!(v["state"], state);
    }

    pub async fn fault(&self, region: &str, fault: Value) {
        let r = self
            .http
            .put(format!("{}/region/{region}/api/admin/fault", self.edge))
            .bearer_auth(TOKEN)
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "setting fault {fault}");
    }

    /// Waits until `id` reads the same in both regions, straight from each.
    pub async fn converged(&self, id: &str) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let e = self.direct(EAST, &format!("/api/items/{id}")).await;
            let w = self.direct(WEST, &format!("/api/items/{id}")).await;
            let (es, ws) = (e.status(), w.status());
            let (ev, wv): (Value, Value) = (e.json().await.unwrap(), w.json().await.unwrap());
            if es == ws && ev["item"] == wv["item"] {
                return (es, ev["item"].clone());
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not converge: {EAST} {es} {ev}, {WEST} {ws} {wv}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
