//! `tandem fault` and `tandem heal`, run as the real binary against the local edge in front of
//! two real region routers (in this process), and over HTTPS as far as a test can go offline.

use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;
use tandem_api::Config;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_local::active::Active;
use tandem_local::edge::{Edge, Origin};
use tandem_ops::client::ControlClient;
use tandem_shared::control::EdgeSettings;
use tandem_shared::{Fault, FaultState};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const TOKEN: &str = "fault-test-token";
const SECRET: &str = "fault-test-origin-secret";
const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tandem_api::server::serve(
        listener,
        app,
        std::future::pending(),
    ));
    addr
}

/// Two regions (the Lambda's router on the embedded store) behind the local edge.
async fn stack(dir: &std::path::Path) -> String {
    let mut origins = Vec::new();
    for region in [EAST, WEST] {
        let store = EmbeddedStore::open(&dir.join(region), region).unwrap();
        let config = Config {
            region: region.into(),
            admin_token: Some(TOKEN.into()),
            origin_secret: Some(SECRET.into()),
            ..Default::default()
        };
        let addr = serve(tandem_api::router(store, config)).await;
        origins.push(Origin::new(region, addr));
    }
    let regions = [EAST.to_owned(), WEST.to_owned()];
    let edge = Arc::new(Edge::new(
        origins,
        EdgeSettings::default(),
        Some(SECRET.into()),
        Arc::new(Active::load(dir, &regions).unwrap()),
    ));
    let addr = serve(tandem_local::edge::router(edge, Router::new(), None)).await;
    format!("http://{addr}")
}

/// Runs `tandem` off the test's runtime threads (it is a blocking child process).
async fn tandem(args: Vec<String>, token_env: Option<&str>) -> (bool, String, String) {
    let token_env = token_env.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(TANDEM);
        cmd.args(&args).env_remove("TANDEM_ENDPOINT");
        match token_env {
            Some(t) => cmd.env("TANDEM_ADMIN_TOKEN", t),
            None => cmd.env_remove("TANDEM_ADMIN_TOKEN"),
        };
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().unwrap();
        (
            status.success(),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn get(url: String) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_state(edge: &str, region: &str) -> FaultState {
    let control = ControlClient::new(edge, TOKEN, Duration::from_secs(30)).unwrap();
    control.fault(region).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_and_heal_through_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let edge = stack(dir.path()).await;

    let (ok, out, err) = tandem(
        args(&[
            "fault",
            WEST,
            "error:503",
            "--duration",
            "30",
            "--endpoint",
            &edge,
            "--token",
            TOKEN,
        ]),
        None,
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.starts_with("us-west-2: data routes answer 503 until "),
        "{out}"
    );
    let state = admin_state(&edge, WEST).await;
    let error = Fault::Error {
        status: 503,
        duration_s: Some(30),
    };
    assert_eq!(state.fault, error);
    assert!(state.expires_at.is_some(), "{state:?}");
    // Only the region named is faulted.
    let (status, body) = get(format!("{edge}/region/{WEST}/api/items/x")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["region"], WEST);
    let (status, _) = get(format!("{edge}/region/{EAST}/api/items/x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The token from the environment, and a slow fault on the primary.
    let (ok, out, err) = tandem(
        args(&["fault", EAST, "slow:1500", "--endpoint", &edge]),
        Some(TOKEN),
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim(), "us-east-1: data routes answer 1500 ms late");
    let slow = Fault::Slow {
        latency_ms: 1500,
        duration_s: None,
    };
    assert_eq!(admin_state(&edge, EAST).await.fault, slow);

    // Heal, with the token taken from a pasted console URL.
    let (ok, out, err) = tandem(
        args(&[
            "heal",
            WEST,
            "--endpoint",
            &format!("{edge}/#token={TOKEN}"),
        ]),
        None,
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim(), "us-west-2: no fault");
    let (status, _) = get(format!("{edge}/region/{WEST}/api/items/x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (ok, out, _) = tandem(
        args(&["heal", EAST, "--endpoint", &edge, "--token", TOKEN]),
        None,
    )
    .await;
    assert!(ok);
    assert_eq!(out.trim(), "us-east-1: no fault");

    // Mistakes: a wrong token, no token, a mode the API would refuse anyway.
    for (command, token, refusal) in [
        (
            &["fault", EAST, "error:503"][..],
            Some("nope"),
            "401 Unauthorized (wrong or missing admin token)",
        ),
        (&["heal", EAST], None, "no admin token"),
        (
            &["fault", EAST, "error:418"],
            Some(TOKEN),
            "the status must be one of [500, 502, 503, 504]",
        ),
        (
            &["fault", EAST, "melt:1"],
            Some(TOKEN),
            "error:<status> or slow:<ms>",
        ),
    ] {
        let mut list = args(command);
        list.extend(args(&["--endpoint", &edge]));
        if let Some(token) = token {
            list.extend(args(&["--token", token]));
        }
        let (ok, _, err) = tandem(list, None).await;
        assert!(!ok, "{command:?}");
        assert!(err.contains(refusal), "{command:?}: {err}");
    }
    assert!(admin_state(&edge, EAST).await.fault.is_none());
}

/// CloudFront is HTTPS only: the command must speak TLS to an https:// endpoint. Offline, the
/// test can only check that it opens with a TLS ClientHello (and fails cleanly when the peer
/// is no TLS server).
#[tokio::test(flavor = "multi_thread")]
async fn https_endpoints_get_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("https://{}", listener.local_addr().unwrap());
    let run = tokio::spawn(tandem(
        args(&[
            "fault",
            EAST,
            "error:503",
            "--endpoint",
            &endpoint,
            "--token",
            TOKEN,
        ]),
        None,
    ));
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = [0u8; 3];
    socket.read_exact(&mut head).await.unwrap();
    // TLS record: handshake (22), protocol version 3.x.
    assert_eq!(head[0], 0x16, "not a TLS handshake: {head:?}");
    assert_eq!(head[1], 0x03);
    drop(socket);
    let (ok, _, err) = run.await.unwrap();
    assert!(!ok);
    assert!(
        err.contains(&format!("PUT {endpoint}/region/us-east-1/api/admin/fault")),
        "{err}"
    );
}
