//! The local stack as tests use it: a [`Launch`] with short edge timeouts and known secrets,
//! and the HTTP calls the tests make to it: literal requests ([`TestStack::edge`],
//! [`TestStack::direct`]) for the tests that look at the wire, and the item client
//! ([`TestStack::items_in`]) for reading items back. Each crate's tests name the binary they start
//! (`tandem-local`, `tandem`) with a [`Binary`]: only they can see its `CARGO_BIN_EXE_*`.

use crate::{Launch, Stack, until};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Duration;
use tandem_ops::client::ControlClient;
use tandem_ops::items::ItemClient;
use tandem_shared::control::{EdgeSettings, RegionState, ReplicationPatch};
use tandem_shared::{Fault, Item};

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

/// The binary a test crate starts: `const EXE: &str = env!("CARGO_BIN_EXE_<name>")`.
pub trait Binary {
    const EXE: &'static str;
}

/// What a test crate's stack module declares for the binary it starts, which only that crate
/// can name (`env!("CARGO_BIN_EXE_<name>")` is read where the macro is called): the [`Binary`]
/// `$name`, the binary's path `EXE`, and `Stack`, a [`TestStack`] of it.
#[macro_export]
macro_rules! binary_under_test {
    ($name:ident, $exe:expr) => {
        /// The binary under test.
        pub struct $name;

        impl $crate::stack::Binary for $name {
            const EXE: &'static str = $exe;
        }

        /// The binary's path, for tests that run its other commands.
        pub const EXE: &str = $exe;

        /// A stack of the binary under test, with the test kit's helpers.
        pub type Stack = $crate::stack::TestStack<$name>;
    };
}

/// A running stack of `B` ([`Stack`], which it derefs to) with an HTTP client and a control
/// client. Each test crate names it once, with [`binary_under_test!`](crate::binary_under_test).
pub struct TestStack<B: Binary> {
    stack: Stack,
    /// For the requests the helpers do not make.
    pub http: Client,
    control: ControlClient,
    binary: PhantomData<B>,
}

impl<B: Binary> Deref for TestStack<B> {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl<B: Binary> DerefMut for TestStack<B> {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }
}

impl<B: Binary> TestStack<B> {
    /// How the tests start `B up`: [`EDGE`], [`TOKEN`], [`SECRET`], warnings on our stderr.
    pub fn launch() -> Launch {
        let mut launch = Launch::new(B::EXE);
        launch.edge = EDGE;
        launch.token = TOKEN.to_owned();
        launch.secret = SECRET.to_owned();
        launch.log = "warn".to_owned();
        launch.show_stderr = true;
        launch
    }

    /// `B up` on a fresh data directory.
    pub async fn start() -> Self {
        let data = tempfile::tempdir().expect("a temporary directory");
        Self::start_in(data).await
    }

    /// `B up` with more flags, on a fresh data directory.
    pub async fn start_with(extra: &[&str]) -> Self {
        let mut launch = Self::launch();
        launch.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        let data = tempfile::tempdir().expect("a temporary directory");
        Self::start_launch(launch, data).await
    }

    /// `B up` on a data directory the test prepared.
    pub async fn start_in(data: tempfile::TempDir) -> Self {
        Self::start_launch(Self::launch(), data).await
    }

    async fn start_launch(launch: Launch, data: tempfile::TempDir) -> Self {
        let stack = launch
            .start_in(data)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let control = stack.control(REQUEST_TIMEOUT);
        let http = tandem_ops::client::http_client(REQUEST_TIMEOUT).expect("an HTTP client");
        TestStack {
            stack,
            http,
            control,
            binary: PhantomData,
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

    /// PUTs `body` at `path` through the edge, and asserts that it created the item (201): the
    /// answer, for the tests that look further.
    pub async fn create(&self, path: &str, body: Value) -> Response {
        let r = self.edge(Method::PUT, path, Some(body)).await;
        assert_eq!(r.status(), StatusCode::CREATED, "PUT {path}");
        r
    }

    /// A GET straight to a region, past the edge (with the origin secret, as the edge sends it).
    pub async fn direct(&self, region: &str, path: &str) -> Response {
        self.try_direct(region, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} from {region}: {e}"))
    }

    /// The item client straight to `region`, past the edge (with the origin secret).
    pub fn items_in(&self, region: &str) -> ItemClient {
        let items = self.stack.items_in(self.http.clone(), region);
        items.unwrap_or_else(|e| panic!("{e:#}"))
    }

    async fn try_direct(&self, region: &str, path: &str) -> reqwest::Result<Response> {
        self.http
            .get(format!("{}{path}", self.stack.regions[region]))
            .header("x-origin-verify", SECRET)
            .send()
            .await
    }

    /// A connection to the edge and to each region with half a request sent on it: each server
    /// holds it open (until its header deadline or its drain), and it never finishes.
    pub fn half_sent_requests(&self) -> Vec<std::net::TcpStream> {
        use std::io::Write as _;
        let servers = std::iter::once(&self.stack.edge).chain(self.stack.regions.values());
        servers
            .map(|url| {
                let mut c = std::net::TcpStream::connect(url.trim_start_matches("http://"))
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
                c.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .unwrap_or_else(|e| panic!("half a request to {url}: {e}"));
                c
            })
            .collect()
    }

    /// Moves `region`'s process to `state`.
    pub async fn set_region(&self, region: &str, state: RegionState) {
        let now = self.control.set_region(region, state).await;
        let now = now.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(now.state, state, "{region}");
    }

    /// Pauses (`true`) or resumes (`false`) replication between the regions.
    pub async fn set_paused(&self, paused: bool) {
        let patch = ReplicationPatch::paused(paused);
        let now = self.control.set_replication(patch).await;
        let now = now.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(now.config.paused, paused);
    }

    /// Sets `region`'s admin fault (through the edge).
    pub async fn fault(&self, region: &str, fault: Fault) {
        let now = self.control.set_fault(region, fault).await;
        let now = now.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(now.fault, fault, "{region}");
    }

    /// Waits until `id` reads the same in every region, straight from each (at most 15 s):
    /// the status and the item (`None` when absent).
    pub async fn converged(&self, id: &str) -> (StatusCode, Option<Item>) {
        let last = Mutex::new(String::from("no answer"));
        let (s, last_seen) = (self, &last);
        let agreed = until(Duration::from_secs(15), move || async move {
            let mut seen = Vec::new();
            for region in s.stack.regions.keys() {
                let read = s.items_in(region).get(id).await;
                let answer = match read {
                    Ok(answer) => answer,
                    Err(e) => {
                        *last_seen.lock().unwrap() = format!("{region}: {e}");
                        return None;
                    }
                };
                let status = answer.status;
                seen.push((region, status, answer.into_ok().map(|r| r.item)));
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
