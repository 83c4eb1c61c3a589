//! Replication you can trust (issue 9), each finding reproduced with real processes: a write
//! at the deepest accepted nesting, a backlog of large items, a region that lost its disk, a
//! process that takes a peer's port, a peer whose clock runs ahead, and compaction.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_local::replication::PullError;
use tandem_local::replication::client::{SignedClient, Target};
use tandem_local::replication::wire::{self, CONTROL_IDENTITY, Frame, Key};
use tandem_shared::control::RegionState;
use tandem_shared::replication::LinkState;
use tandem_shared::validate::MAX_DATA_DEPTH;
use tandem_testkit::{KillOnDrop, free_block, region_args, until};

const KEY: &str = "replication-test-key";

/// Polls `check` until it gives `Some`, or panics with `what` after `secs`.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let found = until(Duration::from_secs(secs), check).await;
    found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Two consecutive free ports (outside the ephemeral range) for two `tandem-local region`s.
fn free_ports() -> u16 {
    free_block(2).expect("two consecutive free ports")
}

/// A `tandem-local region` process started by the test itself, for what `up` does not expose;
/// killed when dropped.
struct Region {
    _child: KillOnDrop,
    name: String,
    url: String,
}

impl Region {
    async fn start(
        name: &str,
        port: u16,
        dir: &std::path::Path,
        peers: &[(&str, u16)],
        extra: &[&str],
    ) -> Region {
        let mut cmd = Command::new(EXE);
        cmd.arg("region")
            .args(region_args(name, port, dir))
            .args(["--admin-token", TOKEN, "--origin-secret", SECRET])
            .env("TANDEM_REPLICATION_KEY", KEY)
            .env("RUST_LOG", "warn")
            .args(extra)
            .stdout(Stdio::null());
        for (peer, port) in peers {
            cmd.args(["--peer", &format!("{peer}=http://127.0.0.1:{port}")]);
        }
        let region = Region {
            _child: KillOnDrop(cmd.spawn().unwrap()),
            name: name.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let url = region.url.clone();
        wait_for(10, "the region to listen", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(format!("{url}/api/health"))
                    .send()
                    .await
                    .ok()
                    .map(drop)
            }
        })
        .await;
        region
    }

    /// A request straight to the region, with the origin secret as the edge sends it.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .header("x-origin-verify", SECRET)
    }

    async fn put(&self, id: &str, data: Value) -> Value {
        let r = self
            .request(Method::PUT, &format!("/api/items/{id}"))
            .json(&json!({ "data": data }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {id}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> reqwest::StatusCode {
        self.request(Method::GET, &format!("/api/items/{id}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Its replication status, asked as the supervisor asks (signed).
    async fn status(&self) -> Value {
        let client = SignedClient::new(reqwest::Client::new(), Key::new(KEY), CONTROL_IDENTITY);
        client
            .json(
                self.target(),
                Method::GET,
                "/_replication/status",
                None::<&()>,
            )
            .await
            .unwrap()
    }

    fn target(&self) -> Target<'_> {
        Target {
            region: &self.name,
            url: &self.url,
        }
    }

    /// A signed GET of `path` as `identity` with `key`, as a peer's puller sends it.
    async fn signed(&self, path: &str, key: &str, identity: &str) -> Result<Frame, PullError> {
        SignedClient::new(reqwest::Client::new(), Key::new(key), identity)
            .frame(self.target(), path)
            .await
    }
}

/// `tandem-local verify` of the stack with `flags`: whether it passed, its stdout and its stderr.
fn verify(s: &Stack, flags: &[&str]) -> (bool, String, String) {
    let out = Command::new(EXE)
        .args(["verify", "--endpoint", &s.edge, "--token", TOKEN])
        .args(flags)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `{"a":{"a":…{}…}}` with `depth` objects.
fn nested(depth: usize) -> String {
    format!(
        "{}{}",
        "{\"a\":".repeat(depth - 1) + "{}",
        "}".repeat(depth - 1)
    )
}

#[tokio::test]
async fn a_write_at_the_deepest_accepted_nesting_replicates_and_later_writes_follow() {
    let s = Stack::start().await;
    // The deepest `data` the API accepts, and one level more.
    let put = |depth: usize| {
        s.http
            .put(format!("{}/api/items/deep", s.edge))
            .header("content-type", "application/json")
            .body(format!("{{\"data\":{}}}", nested(depth)))
            .send()
    };
    let too_deep = put(MAX_DATA_DEPTH + 1).await.unwrap();
    assert_eq!(too_deep.status(), 400);
    assert_eq!(put(MAX_DATA_DEPTH).await.unwrap().status(), 201);
    // What the API accepts, its readers read: the item and a page holding it parse with
    // serde_json's default depth, as the console and the CLI parse them.
    for path in ["/api/items/deep", "/api/items"] {
        let r = s.edge(Method::GET, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    s.create("/api/items/after-deep", json!({"data": {}})).await;
    s.converged("after-deep").await;
    // The deep item itself, compared by ETag and size (a JSON parser would refuse its depth).
    let etag = |r: &reqwest::Response| header(r, "etag");
    let e = s.direct(EAST, "/api/items/deep").await;
    let w = s.direct(WEST, "/api/items/deep").await;
    assert_eq!(
        (e.status(), w.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    assert_eq!(etag(&e), etag(&w));
    assert_eq!(
        e.bytes().await.unwrap().len(),
        w.bytes().await.unwrap().len()
    );
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_backlog_of_large_items_drains_with_bounded_memory() {
    let s = Stack::start().await;
    s.set_paused(true).await;
    // 500 items just under the 400 KB limit: a 200 MB backlog.
    let blob = "x".repeat(400_000);
    let writes = 500;
    for i in 0..writes {
        s.create(
            &format!("/api/items/big-{i}"),
            json!({"data": {"blob": blob}}),
        )
        .await;
    }
    s.set_paused(false).await;
    wait_for(120, "the backlog to drain", || async {
        let v = s.control().replication().await.ok()?;
        let pair = v.pairs.into_iter().find(|p| p.from == EAST)?;
        (pair.applied == writes && pair.pending == 0).then_some(())
    })
    .await;
    assert_eq!(
        s.direct(WEST, &format!("/api/items/big-{}", writes - 1))
            .await
            .status(),
        200
    );
    for (region, pid) in s.region_pids().await.unwrap() {
        let peak = peak_rss_kib(pid);
        // Pulls carry at most 4 MiB (plus one item), so the backlog's size does not matter.
        assert!(peak < 512 * 1024, "{region} peaked at {peak} KiB");
    }
}

#[tokio::test]
async fn a_region_that_lost_its_disk_gets_its_state_back_and_its_new_writes_flow_out() {
    let s = Stack::start().await;
    for i in 0..5 {
        s.create(&format!("/api/items/east-{i}"), json!({"data": {"i": i}}))
            .await;
    }
    for i in 0..3 {
        s.create(
            &format!("/region/{WEST}/api/items/west-{i}"),
            json!({"data": {"i": i}}),
        )
        .await;
    }
    for id in ["east-4", "west-2"] {
        s.converged(id).await;
    }
    s.set_region(WEST, RegionState::Stopped).await;
    std::fs::remove_dir_all(s.data_dir().join(WEST)).unwrap();
    s.set_region(WEST, RegionState::Up).await;
    // Everything comes back, what us-west-2 wrote itself included.
    for id in ["east-0", "east-4", "west-0", "west-2"] {
        let (status, _) = s.converged(id).await;
        assert_eq!(status, 200, "{id}");
    }
    // And what it writes now reaches us-east-1.
    s.create(
        &format!("/region/{WEST}/api/items/after-loss"),
        json!({"data": {}}),
    )
    .await;
    let (status, item) = s.converged("after-loss").await;
    assert_eq!(
        (status.as_u16(), item.map(|i| i.updated_in).as_deref()),
        (200, Some(WEST))
    );
    // `verify` agrees, and says so.
    let (agreed, stdout, stderr) = verify(&s, &["--wait", "20"]);
    assert!(agreed, "{stdout}{stderr}");
    assert!(stdout.contains("2 regions agree"), "{stdout}");
    let v = s.control().replication().await.unwrap();
    let resyncs: u64 = v.pairs.iter().map(|p| p.resyncs).sum();
    assert!(resyncs >= 2, "both sides copied the other's state: {v:?}");
}

#[tokio::test]
async fn tandem_verify_names_the_ids_that_differ() {
    let s = Stack::start().await;
    s.set_paused(true).await;
    s.create("/api/items/only-east", json!({"data": {}})).await;
    let (agreed, stdout, _) = verify(&s, &[]);
    assert!(!agreed, "{stdout}");
    assert!(
        stdout.contains("only-east") && stdout.contains(&format!("{WEST}: absent")),
        "{stdout}"
    );
    s.set_paused(false).await;
    s.converged("only-east").await;
}

/// What a process that took a peer's port saw, and what it answers: a forged page with the
/// 2^64-1 sequence number and an item of its own.
#[derive(Default)]
struct Rogue {
    headers: Mutex<Vec<String>>,
    requests: Mutex<u64>,
}

async fn rogue_peer(rogue: Arc<Rogue>) -> u16 {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let rogue = rogue.clone();
        async move {
            let seen: Vec<String> = req
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                .collect();
            rogue.headers.lock().unwrap().extend(seen);
            *rogue.requests.lock().unwrap() += 1;
            let record = br#"{"id":"injected","data":{"evil":true},"version":1,"updated_at_ms":1,"updated_in":"us-west-2"}"#;
            let frame = Frame {
                incarnation: 42,
                head: u64::MAX,
                through: u64::MAX,
                entries: vec![(u64::MAX, record.to_vec())],
                ..Frame::default()
            };
            // Signed with a key it guessed, as the old JSON shape would not even parse.
            let sig = Key::new("guessed").sign_response("x", &frame.encode());
            ([(wire::SIGNATURE_HEADER, sig)], frame.encode()).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn peers_prove_who_they_are_and_a_lying_peer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rogue = Arc::new(Rogue::default());
    let rogue_port = rogue_peer(rogue.clone()).await;
    let port = free_ports();
    // A new region of a new stack: it vouches for its reads without having met its peer.
    let new = ["--new-stack"];
    let east = Region::start(EAST, port, dir.path(), &[(WEST, rogue_port)], &new).await;
    east.put("mine", json!({"v": 1})).await;
    let status = wait_for(15, "a refused answer", || async {
        let v = east.status().await;
        (v["pairs"][0]["refused"].as_u64()? >= 2).then_some(v)
    })
    .await;
    // Refused, reported, not applied.
    assert_eq!(status["pairs"][0]["applied"], 0, "{status}");
    assert!(
        status["pairs"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not signed"),
        "{status}"
    );
    assert_eq!(east.get("injected").await, 404);
    // Health tells the truth about the link (it is refreshed every second).
    let health = wait_for(10, "health to report the failing link", || async {
        let health: Value = east
            .request(Method::GET, "/api/health")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let link = &health["replication"]["pairs"][0];
        (matches!(link["state"].as_str(), Some("failing" | "stalled"))
            && link["refused"].as_u64()? >= 1)
            .then_some(health)
    })
    .await;
    assert_eq!(
        health["status"], "ok",
        "the region itself still serves: {health}"
    );
    // The rogue learned no secret: neither the replication key nor the origin secret was sent.
    let seen = rogue.headers.lock().unwrap().join("\n");
    assert!(*rogue.requests.lock().unwrap() >= 2);
    assert!(!seen.contains(KEY) && !seen.contains(SECRET), "{seen}");
    assert!(seen.contains(wire::SIGNATURE_HEADER), "{seen}");

    // The region's own routes: the origin secret alone, an unknown peer or the wrong key: 401.
    let path = "/_replication/changes?after=0";
    let r = east.request(Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let unauthorized = |r: Result<Frame, PullError>| matches!(r, Err(PullError::Status(s)) if s == reqwest::StatusCode::UNAUTHORIZED);
    assert!(unauthorized(east.signed(path, "wrong", WEST).await));
    assert!(unauthorized(east.signed(path, KEY, "eu-west-1").await));
    let frame = east.signed(path, KEY, WEST).await.unwrap();
    assert_eq!((frame.head, frame.entries.len()), (1, 1));
}

#[tokio::test]
async fn a_peer_clock_far_ahead_does_not_hold_back_later_changes() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_ports();
    // us-east-1's clock is an hour ahead; us-west-2 holds changes back 300 ms.
    let east = Region::start(
        EAST,
        port,
        d1.path(),
        &[(WEST, port + 1)],
        &["--clock-offset-ms", "3600000"],
    )
    .await;
    let west = Region::start(
        WEST,
        port + 1,
        d2.path(),
        &[(EAST, port)],
        &["--replication-lag-ms", "300"],
    )
    .await;
    let future = east.put("from-the-future", json!({})).await;
    assert!(
        future["item"]["updated_at"].as_str().unwrap()
            > tandem_shared::item::format_timestamp(tandem_api::store::now_ms() + 1_800_000)
                .as_str()
    );
    east.put("later", json!({})).await;
    for id in ["from-the-future", "later"] {
        wait_for(15, id, || async {
            (west.get(id).await == 200).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn the_outbox_is_compacted_and_deleted_data_is_neither_kept_nor_shipped() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_ports();
    let grace = ["--tombstone-grace-ms", "500"];
    let east = Region::start(EAST, port, d1.path(), &[(WEST, port + 1)], &grace).await;
    let west = Region::start(WEST, port + 1, d2.path(), &[(EAST, port)], &grace).await;
    east.put("gone", json!({"secret": "s3cr3t-data"})).await;
    east.put("kept", json!({})).await;
    let r = east
        .request(Method::DELETE, "/api/items/gone")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The deleted data is not shipped, from the start of the outbox. (Asked as the supervisor:
    // us-west-2's own puller is using its identity's sequence numbers meanwhile.)
    let frame = east
        .signed("/_replication/changes?after=0", KEY, CONTROL_IDENTITY)
        .await
        .unwrap();
    assert!(!contains(&frame.encode(), "s3cr3t-data"));
    wait_for(15, "the delete to replicate", || async {
        (west.get("gone").await == 404 && west.get("kept").await == 200).then_some(())
    })
    .await;
    // Once us-west-2 has applied everything, the outbox is compacted.
    wait_for(15, "the outbox to be compacted", || async {
        let v = east.status().await;
        (v["outbox_floor"] == 3 && v["outbox_head"] == 3).then_some(())
    })
    .await;
    let frame = east
        .signed("/_replication/changes?after=0", KEY, CONTROL_IDENTITY)
        .await
        .unwrap();
    assert_eq!((frame.floor, frame.entries.len()), (3, 0));
    // And the tombstone goes after the grace, in both regions; the live item stays.
    for region in [&east, &west] {
        wait_for(20, "the tombstone to be collected", || async {
            let frame = region
                .signed("/_replication/items", KEY, CONTROL_IDENTITY)
                .await
                .ok()?;
            let ids: Vec<String> = frame
                .entries
                .iter()
                .map(|(_, b)| {
                    serde_json::from_slice::<Value>(b).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            (ids == ["kept"]).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn anti_entropy_repairs_a_divergence_no_log_records() {
    let s = Stack::start().await;
    s.create("/api/items/base", json!({"data": {}})).await;
    s.converged("base").await;
    // Both links have made first contact (and copied each other's state).
    wait_for(15, "both links to be up", || async {
        let pairs = s.control().replication().await.ok()?.pairs;
        (pairs.len() == 2
            && pairs
                .iter()
                .all(|p| p.state == LinkState::Ok && p.resyncs == 1))
        .then_some(())
    })
    .await;
    // Behind replication's back: a record appears in us-west-2's store with no outbox entry
    // (as a bug, a restored backup or a bit flip might leave it).
    s.set_region(WEST, RegionState::Stopped).await;
    {
        let store =
            tandem_api::store::embedded::EmbeddedStore::open(&s.data_dir().join(WEST), WEST)
                .unwrap();
        let sneaky = tandem_shared::Record {
            id: "sneaky".into(),
            data: Some(tandem_shared::item::Data::new()),
            version: 1,
            updated_at_ms: tandem_api::store::now_ms(),
            updated_in: WEST.into(),
        };
        assert_eq!(store.apply_records(&[sneaky]).unwrap(), 1);
    }
    s.set_region(WEST, RegionState::Up).await;
    // Digests differ, the bucket is compared, and us-east-1 takes the record.
    let (status, _) = s.converged("sneaky").await;
    assert_eq!(status, 200);
    let v = s.control().replication().await.unwrap();
    let into_east = v.pairs.iter().find(|p| p.to == EAST).unwrap();
    assert!(into_east.repaired >= 1, "{v:?}");
}

/// Sends the signed request `headers` describe (as captured on the wire) to `url`.
async fn send_captured(url: &str, path: &str, headers: &[(&'static str, String)]) -> u16 {
    let mut req = reqwest::Client::new().get(format!("{url}{path}"));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_captured_replication_request_cannot_be_replayed_to_any_region() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_block(3).unwrap();
    // us-west-2 is played by the test (nothing listens on its port), so no puller of its own
    // uses its sequence numbers meanwhile.
    let peer = [(WEST, port + 2)];
    let east = Region::start(EAST, port, d1.path(), &peer, &[]).await;
    let other = Region::start("eu-west-1", port + 1, d2.path(), &peer, &[]).await;
    east.put("before", json!({})).await;
    // A refusal tells anyone the region's boot id (it is no secret).
    let path = "/_replication/changes?after=0&incarnation=0";
    let refusal = reqwest::get(format!("{}{path}", east.url)).await.unwrap();
    assert_eq!(refusal.status(), 401);
    let boot_hex = header(&refusal, wire::BOOT_HEADER).unwrap();
    let nonce = "0123456789abcdef0123";
    let signed = wire::SignedRequest {
        identity: WEST,
        target: EAST,
        boot: u64::from_str_radix(&boot_hex, 16).unwrap(),
        seq: 1,
        nonce,
        method: "GET",
        path_and_query: path,
        body: b"",
    };
    let captured = [
        (wire::PEER_HEADER, WEST.to_owned()),
        (wire::NONCE_HEADER, nonce.to_owned()),
        (wire::BOOT_HEADER, boot_hex),
        (wire::SEQ_HEADER, "1".to_owned()),
        (wire::SIGNATURE_HEADER, Key::new(KEY).sign_request(&signed)),
    ];
    assert_eq!(
        send_captured(&east.url, path, &captured).await,
        200,
        "the original"
    );
    east.put("after", json!({"written": "after the capture"}))
        .await;
    assert_eq!(
        send_captured(&east.url, path, &captured).await,
        401,
        "to the same region"
    );
    assert_eq!(
        send_captured(&other.url, path, &captured).await,
        401,
        "to another region"
    );
    // To the same region once it has restarted on the same disk.
    drop(east);
    let east = Region::start(EAST, port, d1.path(), &peer, &[]).await;
    assert_eq!(
        send_captured(&east.url, path, &captured).await,
        401,
        "to a restarted region"
    );
    // The real puller's session still works: it catches up with the new boot id.
    assert!(east.signed(path, KEY, WEST).await.is_ok());
}
