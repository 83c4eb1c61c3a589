//! The local stack as tests use it: a [`Launch`] with short edge timeouts and known secrets,
//! and the HTTP calls the tests make to it. Each crate's tests wrap [`TestStack`] with the
//! binary they start (`tandem-local`, `tandem`).

use crate::{Launch, Stack, until};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tandem_local::client::ControlClient;
use tandem_shared::Fault;
use tandem_shared::control::{EdgeSettings, RegionState};

pub const TOKEN: &str = "stack-test-token";
pub const SECRET: &str = "stack-test-secret";
pub const EAST: &str = "us-east-1";
pub const WEST: &str = "us-west-2";
/// Short edge timeouts keep the tests quick: 1 attempt × 1 s to connect, 1 s to answer.
pub const EDGE: EdgeSettings = EdgeSettings {
    connection_attempts: 1,
    connection_timeout: 1,
    origin_read_timeout: 1,
};
/// The edge's read timeout ([`EDGE`]): what a failover from a hung primary costs at least.
pub const READ_TIMEOUT: Duration = Duration::from_secs(EDGE.origin_read_timeout as u64);
/// How long one of the tests' requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running stack ([`Stack`], which it derefs to) with an HTTP client and a control client.
pub struct TestStack {
    stack: Stack,
    /// For the requests the helpers do not make.
    pub http: Client,
    control: ControlClient,
}

impl Deref for TestStack {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl DerefMut for TestStack {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }
}

impl TestStack {
    /// How the tests start `exe up`: [`EDGE`], [`TOKEN`], [`SECRET`], warnings on our stderr.
    pub fn launch(exe: impl AsRef<Path>) -> Launch {
        let mut launch = Launch::new(exe.as_ref());
        launch.edge = EDGE;
        launch.token = TOKEN.to_owned();
        launch.secret = SECRET.to_owned();
        launch.log = "warn".to_owned();
        launch.show_stderr = true;
        launch
    }

    /// `exe up` on a fresh data directory.
    pub async fn start(exe: impl AsRef<Path>) -> TestStack {
        let data = tempfile::tempdir().expect("a temporary directory");
        TestStack::start_in(exe, data).await
    }

    /// `exe up` with more flags, on a fresh data directory.
    pub async fn start_with(exe: impl AsRef<Path>, extra: &[&str]) -> TestStack {
        let mut launch = TestStack::launch(exe);
        launch.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        let data = tempfile::tempdir().expect("a temporary directory");
        TestStack::start_launch(launch, data).await
    }

    /// `exe up` on a data directory the test prepared.
    pub async fn start_in(exe: impl AsRef<Path>, data: tempfile::TempDir) -> TestStack {
        TestStack::start_launch(TestStack::launch(exe), data).await
    }

    async fn start_launch(launch: Launch, data: tempfile::TempDir) -> TestStack {
        let stack = launch
            .start_in(data)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let control = stack.control(REQUEST_TIMEOUT);
        let http = tandem_local::client::http_client(REQUEST_TIMEOUT).expect("an HTTP client");
        TestStack {
            stack,
            http,
            control,
        }
    }

    /// The typed client of the control API and the admin fault routes.
    pub fn control(&self) -> &ControlClient {
        &self.control
    }

    pub async fn send(&self, method: Method, url: String, body: Option<Value>) -> Response {
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// Through the edge.
    pub async fn edge(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.send(method, format!("{}{path}", self.stack.edge), body)
            .await
    }

    /// A GET straight to a region, past the edge (with the origin secret, as the edge sends it).
    pub async fn direct(&self, region: &str, path: &str) -> Response {
        self.try_direct(region, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} from {region}: {e}"))
    }

    async fn try_direct(&self, region: &str, path: &str) -> reqwest::Result<Response> {
        self.http
            .get(format!("{}{path}", self.stack.regions[region]))
            .header("x-origin-verify", SECRET)
            .send()
            .await
    }

    /// Moves `region`'s process to `state`.
    pub async fn set_region(&self, region: &str, state: RegionState) {
        let now = self.control.set_region(region, state).await;
        let now = now.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(now.state, state, "{region}");
    }

    /// Sets `region`'s admin fault (through the edge).
    pub async fn fault(&self, region: &str, fault: Fault) {
        let now = self.control.set_fault(region, fault).await;
        let now = now.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(now.fault, fault, "{region}");
    }

    /// Waits until `id` reads the same in every region, straight from each (at most 15 s):
    /// the status and the item (null when absent).
    pub async fn converged(&self, id: &str) -> (StatusCode, Value) {
        let last = Mutex::new(String::from("no answer"));
        let (s, last_seen) = (self, &last);
        let agreed = until(Duration::from_secs(15), move || async move {
            let mut seen = Vec::new();
            for region in s.stack.regions.keys() {
                let read = s.try_direct(region, &format!("/api/items/{id}")).await;
                let Ok(r) = read else {
                    *last_seen.lock().unwrap() = format!("{region}: {read:?}");
                    return None;
                };
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                seen.push((region, status, body["item"].clone()));
            }
            let (_, status, item) = seen.first()?.clone();
            if seen.iter().all(|(_, s, i)| (*s, i) == (status, &item)) {
                return Some((status, item));
            }
            *last_seen.lock().unwrap() = format!("{seen:?}");
            None
        })
        .await;
        agreed.unwrap_or_else(|| panic!("{id} did not converge: {}", last.lock().unwrap()))
    }
}

/// A response header as text.
pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("a text header").to_owned())
}
