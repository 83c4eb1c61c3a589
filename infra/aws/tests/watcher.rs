//! The health watcher's Lambda function (`tandem-watcher`) run as the real binary, the way
//! Lambda runs it: against a stand-in of the Lambda Runtime API (next invocation, response,
//! error), probing a stand-in edge whose primary can hang (a blackhole), and switching the
//! active region in the KeyValueStore stand-in (`support/fake_kvs.rs`) through the real SDK.
//!
//! What this shows: the function starts from the environment its stack sets, probes through
//! the endpoint, learns the active region from the edge's answer (no KeyValueStore call while
//! nothing switches), switches after N failed rounds of the active region and not before with
//! three calls, keeps the count across warm invocations, answers before the invocation's
//! deadline, and fails the invocation (Lambda's Errors metric) when the store refuses it. What it cannot show: AWS's
//! Runtime API, EventBridge and the KeyValueStore answering as the stand-ins do.

#[path = "support/fake_kvs.rs"]
mod fake_kvs;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use fake_kvs::FakeKvs;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tandem_shared::headers::ACTIVE_REGION;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::routing::{ACTIVE_REGION_KEY, Routed};
use tokio::sync::{Mutex, mpsc};

const WATCHER: &str = env!("CARGO_BIN_EXE_tandem-watcher");
/// Probe rounds in the test: short, so that an invocation holds several.
const INTERVAL_MS: u64 = 200;

/// What the function answered to one invocation.
#[derive(Debug)]
struct Answer {
    ok: bool,
    body: serde_json::Value,
}

/// The Lambda Runtime API as the function sees it: invocations queued by the test, answers
/// sent back to it.
#[derive(Clone)]
struct Runtime {
    next: Arc<Mutex<mpsc::Receiver<(String, u64)>>>,
    answers: mpsc::Sender<Answer>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let (id, deadline) = rt.next.lock().await.recv().await.expect("test ended");
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", deadline.into());
    let arn = "arn:aws:lambda:us-west-2:123456789012:function:tandem-watcher";
    headers.insert("lambda-runtime-invoked-function-arn", arn.parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    // What an EventBridge rule sends (the function reads none of it).
    (
        headers,
        r#"{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#.into(),
    )
}

async fn answer(
    State(rt): State<Runtime>,
    Path((_, kind)): Path<(String, String)>,
    body: String,
) -> StatusCode {
    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    let _ = rt
        .answers
        .send(Answer {
            ok: kind == "response",
            body,
        })
        .await;
    StatusCode::ACCEPTED
}

/// An edge whose primary either answers its health check or never answers at all, and whose
/// `/api/health` answers as the router function and a region make it: marked with the store's
/// active region (`x-tandem-active-region`), which the function reads from its edge copy, not
/// through the API (so the stand-in reads the fake directly, unrecorded).
async fn edge(primary_down: Arc<AtomicBool>, kvs: Arc<FakeKvs>) -> String {
    let down = primary_down.clone();
    let health = move |Path(region): Path<String>| {
        let down = down.clone();
        async move {
            if region == PRIMARY && down.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            (StatusCode::OK, r#"{"status":"ok"}"#)
        }
    };
    let routed = move || {
        let kvs = kvs.clone();
        async move {
            let routed = Routed {
                active: kvs.value(ACTIVE_REGION_KEY),
                failover_off: false,
            };
            (
                [(ACTIVE_REGION, routed.header_value())],
                r#"{"status":"ok"}"#,
            )
        }
    };
    serve(
        Router::new()
            .route("/region/{region}/api/health", get(health))
            .route("/api/health", get(routed)),
    )
    .await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

/// The function, started as Lambda would with the environment `watcher.yaml` sets.
struct Function {
    child: Child,
    invocations: mpsc::Sender<(String, u64)>,
    answers: mpsc::Receiver<Answer>,
    count: u32,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    async fn start(edge: &str, kvs: &FakeKvs) -> Function {
        let (invocations, queue) = mpsc::channel(4);
        let (answers_tx, answers) = mpsc::channel(4);
        let runtime = Runtime {
            next: Arc::new(Mutex::new(queue)),
            answers: answers_tx,
        };
        let api = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .with_state(runtime);
        let api = serve(api).await;
        let child = Command::new(WATCHER)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "tandem-watcher")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", SECONDARY)
            .env("AWS_ACCESS_KEY_ID", "AKIDTANDEMTEST")
            .env("AWS_SECRET_ACCESS_KEY", "tandem-test-secret")
            .env("AWS_CONFIG_FILE", "/nonexistent/tandem-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/tandem-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE", &kvs.endpoint)
            .env("TANDEM_ENDPOINT", format!("http://{edge}"))
            .env("TANDEM_KVS_ARN", &kvs.arn)
            .env("TANDEM_REGIONS", format!("{PRIMARY},{SECONDARY}"))
            .env("TANDEM_FAILOVER_AFTER", "3")
            .env("TANDEM_PROBE_INTERVAL_MS", INTERVAL_MS.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Function {
            child,
            invocations,
            answers,
            count: 0,
        }
    }

    /// One invocation with time for `rounds` probe rounds (and half an interval to spare, and
    /// the 2 s the function keeps free at the end); its answer.
    async fn invoke(&mut self, rounds: u64) -> Answer {
        self.count += 1;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let deadline = now.as_millis() as u64 + 2_000 + rounds * INTERVAL_MS + INTERVAL_MS / 2;
        let id = format!("invocation-{}", self.count);
        self.invocations.send((id, deadline)).await.unwrap();
        let limit =
            Duration::from_millis(deadline - now.as_millis() as u64) + Duration::from_secs(30);
        tokio::time::timeout(limit, self.answers.recv())
            .await
            .expect("the function answers before its deadline")
            .expect("the runtime API is serving")
    }
}

/// The function watching a stand-in edge whose primary is down (hanging) or not, and switching
/// in a fake store: the store, the switch that takes the primary down, and the function.
async fn watching(primary_down: bool) -> (Arc<FakeKvs>, Arc<AtomicBool>, Function) {
    let kvs = Arc::new(FakeKvs::start().await);
    let primary_down = Arc::new(AtomicBool::new(primary_down));
    let edge = edge(primary_down.clone(), kvs.clone()).await;
    let function = Function::start(&edge, &kvs).await;
    (kvs, primary_down, function)
}

fn rounds(answer: &Answer) -> u64 {
    answer.body["rounds"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn switches_after_n_failed_rounds_counted_across_warm_invocations() {
    let (kvs, primary_down, mut function) = watching(false).await;

    // Healthy: rounds run, nothing is written, and the store is not even called: the edge's
    // answer says which region is active.
    let healthy = function.invoke(4).await;
    assert!(healthy.ok, "{healthy:?}");
    assert!(rounds(&healthy) >= 1, "{healthy:?}");
    assert_eq!(healthy.body["failed_probes"], serde_json::json!([0, 0]));
    assert_eq!(healthy.body["switched"], serde_json::json!([]));
    assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);
    assert_eq!(kvs.take_requests().len(), 0, "no KeyValueStore call");

    // The primary hangs. Invocations of one round each: the count must carry from one to the
    // next, and the switch comes with the third failed round, not before.
    primary_down.store(true, Ordering::SeqCst);
    let mut failed = 0;
    for _ in 0..10 {
        if failed == 2 {
            break;
        }
        let answer = function.invoke(1).await;
        assert!(answer.ok, "{answer:?}");
        failed += answer.body["failed_probes"][0].as_u64().unwrap_or(0);
        assert_eq!(
            answer.body["switched"],
            serde_json::json!([]),
            "after {failed} failed rounds: {answer:?}"
        );
        assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);
    }
    assert_eq!(
        failed, 2,
        "two one-round invocations each saw the primary fail"
    );
    // The third failed round, in an invocation of its own, switches: a watcher that forgot the
    // first two would not.
    let mut answer = function.invoke(1).await;
    for _ in 0..10 {
        if rounds(&answer) > 0 {
            break;
        }
        answer = function.invoke(1).await;
    }
    assert!(answer.ok, "{answer:?}");
    assert_eq!(rounds(&answer), 1, "{answer:?}");
    assert_eq!(
        answer.body["switched"],
        serde_json::json!([SECONDARY]),
        "{answer:?}"
    );
    assert_eq!(answer.body["active"], serde_json::json!(SECONDARY));
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    // The switch's calls, and only those: the ETag, the value, the write naming the ETag.
    let calls: Vec<String> = kvs
        .take_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        calls,
        [
            "GET describe".to_owned(),
            format!("GET {ACTIVE_REGION_KEY}"),
            format!("PUT {ACTIVE_REGION_KEY}"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_fails_when_the_store_refuses_it() {
    let (kvs, primary_down, mut function) = watching(true).await;
    // The primary hangs: the third round asks for a switch, which the store refuses.
    kvs.deny(true);
    let answer = function.invoke(6).await;
    assert!(!answer.ok, "{answer:?}");
    let message = answer.body.to_string();
    assert!(
        message.contains("could not use the active region's store"),
        "{message}"
    );
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains("session tokens"), "{message}");
    // The same environment serves the next invocation once the store answers again.
    kvs.deny(false);
    primary_down.store(false, Ordering::SeqCst);
    let answer = function.invoke(2).await;
    assert!(answer.ok, "{answer:?}");
}
