//! The runtime secret (`TANDEM_SECRET_ID`) against moto's Secrets Manager: parsing and
//! precedence in process, and the real `tandem-api` binary initialising as a Lambda function
//! (behind a fake Lambda Runtime API) with its admin token and origin secret from the secret.

mod common;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Parser;
use common::{Lambda, Moto, MotoExt as _, Req};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_api::args::RegionArgs;
use tandem_api::secret::RuntimeSecret;
use tokio::sync::Notify;

const SECRET_ID: &str = "tandem/secrets";
const ADMIN: &str = "admin-from-secrets-manager-81f3";
const ORIGIN: &str = "origin-from-secrets-manager-77ac";

async fn secrets_client(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto.sdk_config("us-east-1").await)
}

async fn put_secret(client: &aws_sdk_secretsmanager::Client, id: &str, value: &str) {
    client
        .create_secret()
        .name(id)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    region: RegionArgs,
}

fn flags(args: &[&str]) -> RegionArgs {
    Flags::try_parse_from(std::iter::once("tandem-api").chain(args.iter().copied()))
        .unwrap()
        .region
}

#[tokio::test]
async fn the_runtime_secret_is_read_checked_and_overridable() {
    let moto = Moto::start().await;
    let client = secrets_client(&moto).await;
    put_secret(
        &client,
        SECRET_ID,
        &json!({"admin_token": ADMIN, "origin_secret": ORIGIN}).to_string(),
    )
    .await;

    let secret = RuntimeSecret::fetch(&client, SECRET_ID).await.unwrap();
    assert_eq!(secret.admin_token, ADMIN);
    assert_eq!(secret.origin_secret, ORIGIN);
    let shown = format!("{secret:?}");
    assert!(!shown.contains(ADMIN) && !shown.contains(ORIGIN), "{shown}");

    // The secret fills what flags and environment left unset; they win when set.
    let config = flags(&[]).config_with(Some(&secret));
    assert_eq!(config.admin_token.as_deref(), Some(ADMIN));
    assert_eq!(config.origin_secret.as_deref(), Some(ORIGIN));
    let config = flags(&["--admin-token", "from-flag"]).config_with(Some(&secret));
    assert_eq!(config.admin_token.as_deref(), Some("from-flag"));
    assert_eq!(config.origin_secret.as_deref(), Some(ORIGIN));
    let config = flags(&["--origin-secret", "cloak"]).config_with(None);
    assert_eq!(config.admin_token, None);
    assert_eq!(config.origin_secret.as_deref(), Some("cloak"));

    // Malformed secrets are refused, and the error never quotes them.
    for (id, value) in [
        (
            "bad/missing-key",
            json!({"admin_token": "leaky-1"}).to_string(),
        ),
        (
            "bad/wrong-type",
            json!({"admin_token": "leaky-2", "origin_secret": 7}).to_string(),
        ),
        (
            "bad/empty",
            json!({"admin_token": "", "origin_secret": "leaky-3"}).to_string(),
        ),
        ("bad/not-json", "leaky-4 is plain text".to_owned()),
    ] {
        put_secret(&client, id, &value).await;
        let err = format!("{:#}", RuntimeSecret::fetch(&client, id).await.unwrap_err());
        assert!(err.contains(id), "{err}");
        assert!(!err.contains("leaky"), "the error shows the secret: {err}");
    }
    let err = format!(
        "{:#}",
        RuntimeSecret::fetch(&client, "tandem/absent")
            .await
            .unwrap_err()
    );
    assert!(err.contains("reading secret tandem/absent"), "{err}");
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

// ------------------------------------------------- a fake Lambda Runtime API --

/// Just enough of the Lambda Runtime API (`/2018-06-01/runtime/...`) to run the function:
/// invocations are queued by the test and answered through `/response`.
#[derive(Default)]
struct Runtime {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    answers: Mutex<HashMap<String, Value>>,
    answered: Notify,
    polls: Mutex<u32>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    *rt.polls.lock().unwrap() += 1;
    loop {
        let notified = rt.queued.notified();
        if let Some((id, event)) = rt.queue.lock().unwrap().pop_front() {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:tandem-api".to_owned(),
                    ),
                    ("content-type", "application/json".to_owned()),
                ],
                event.to_string(),
            );
        }
        notified.await;
    }
}

async fn respond(
    State(rt): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    rt.answers.lock().unwrap().insert(id, value);
    rt.answered.notify_waiters();
    "{}"
}

async fn invocation_error(
    State(rt): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    rt.answers
        .lock()
        .unwrap()
        .insert(id, json!({"invocation_error": body}));
    rt.answered.notify_waiters();
    "{}"
}

impl Runtime {
    async fn start() -> (Arc<Runtime>, String) {
        let rt = Arc::new(Runtime::default());
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .with_state(rt.clone());
        (rt, common::serve(app).await)
    }

    /// Sends `req` as an API Gateway HTTP API event; returns (status, body).
    async fn invoke(&self, id: &str, req: Req) -> (u16, Value) {
        self.queue
            .lock()
            .unwrap()
            .push_back((id.to_owned(), Lambda::event(&req)));
        self.queued.notify_waiters();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = self.answered.notified();
            if let Some(answer) = self.answers.lock().unwrap().remove(id) {
                let status = answer["statusCode"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("not an API Gateway response: {answer}"))
                    as u16;
                let body = answer["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                return (status, body);
            }
            assert!(Instant::now() < deadline, "no answer to {id}");
            let _ = tokio::time::timeout(Duration::from_millis(200), answered).await;
        }
    }
}

/// The function process, as Lambda starts it; killed (and its stderr kept) when dropped.
struct Function {
    child: Child,
}

impl Function {
    fn start(
        runtime: &str,
        moto: &Moto,
        table: &str,
        secret_id: &str,
        env: &[(&str, &str)],
    ) -> Function {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem-api"));
        for var in [
            "TANDEM_ADMIN_TOKEN",
            "TANDEM_ORIGIN_SECRET",
            "TANDEM_REGION",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", runtime)
            .env("AWS_LAMBDA_FUNCTION_NAME", "tandem-api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tandem-api")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", "/nonexistent/tandem-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/tandem-test-credentials",
            )
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("TANDEM_STORE", "dynamodb")
            .env("TABLE_NAME", table)
            .env("TANDEM_SECRET_ID", secret_id)
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Function {
            child: cmd.spawn().unwrap(),
        }
    }

    /// Stops the process and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut log);
        }
        log
    }

    /// Waits for the process to exit on its own.
    fn exit_within(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = err.read_to_string(&mut log);
                }
                return (status, log);
            }
            assert!(Instant::now() < deadline, "the function did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn health() -> Req {
    Req::new("GET", "/api/health")
}

fn admin(token: &str) -> Req {
    Req::new("GET", "/api/admin/fault")
        .header("authorization", &format!("Bearer {token}"))
        .header("x-origin-verify", ORIGIN)
}

/// moto with the function's table and its runtime secret ([`ADMIN`], [`ORIGIN`]).
async fn moto_with_table_and_secret() -> Moto {
    let moto = Moto::start().await;
    moto.store("tandem-items", "us-east-1").await;
    put_secret(
        &secrets_client(&moto).await,
        SECRET_ID,
        &json!({"admin_token": ADMIN, "origin_secret": ORIGIN}).to_string(),
    )
    .await;
    moto
}

#[tokio::test(flavor = "multi_thread")]
async fn lambda_init_takes_the_admin_token_and_origin_secret_from_the_secret() {
    let moto = moto_with_table_and_secret().await;

    // From the secret alone.
    let (rt, addr) = Runtime::start().await;
    let function = Function::start(&addr, &moto, "tandem-items", SECRET_ID, &[]);
    let (status, body) = rt
        .invoke("1", health().header("x-origin-verify", ORIGIN))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["region"], "us-east-1");
    let (status, body) = rt.invoke("2", health()).await;
    assert_eq!(status, 403, "origin cloaking is on: {body}");
    let (status, body) = rt
        .invoke("3", health().header("x-origin-verify", "guess"))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = rt.invoke("4", admin(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fault"]["mode"], "none");
    let (status, _) = rt.invoke("5", admin("guess")).await;
    assert_eq!(status, 401);
    let log = function.stop();
    assert!(log.contains("Lambda init"), "{log}");
    assert!(
        !log.contains(ADMIN) && !log.contains(ORIGIN),
        "the function logged a secret value:\n{log}"
    );

    // An environment variable still wins over the secret.
    let (rt, addr) = Runtime::start().await;
    let function = Function::start(
        &addr,
        &moto,
        "tandem-items",
        SECRET_ID,
        &[("TANDEM_ADMIN_TOKEN", "from-the-environment")],
    );
    let (status, body) = rt.invoke("1", admin("from-the-environment")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = rt.invoke("2", admin(ADMIN)).await;
    assert_eq!(status, 401);
    function.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn lambda_init_fails_without_its_secret() {
    let moto = Moto::start().await;
    moto.store("tandem-items", "us-east-1").await;
    let (rt, addr) = Runtime::start().await;
    let function = Function::start(&addr, &moto, "tandem-items", "tandem/absent", &[]);
    let (status, log) = function.exit_within(Duration::from_secs(30));
    assert!(!status.success(), "served without its secret");
    assert!(
        log.contains("fetching the runtime secret") && log.contains("tandem/absent"),
        "{log}"
    );
    assert_eq!(*rt.polls.lock().unwrap(), 0, "it asked for an invocation");
}

/// Init reads the region's fault to warm its DynamoDB connection; the first request uses that
/// read instead of making its own: one DynamoDB call in all, not two.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_request_uses_the_fault_read_at_init() {
    let moto = moto_with_table_and_secret().await;
    moto.start_recording().await;
    let started = Instant::now();
    let (rt, addr) = Runtime::start().await;
    let function = Function::start(&addr, &moto, "tandem-items", SECRET_ID, &[]);
    let (status, body) = rt
        .invoke("1", health().header("x-origin-verify", ORIGIN))
        .await;
    let took = started.elapsed();
    function.stop();
    assert_eq!(status, 200, "{body}");
    let calls = moto
        .recorded()
        .await
        .into_iter()
        .filter(|r| r.service == "dynamodb")
        .count();
    // Past the cache's lifetime the first request rightly reads again; nothing to tell then.
    if took < tandem_api::state::FAULT_TTL {
        assert_eq!(
            calls, 1,
            "init's read of the fault, and no other DynamoDB call"
        );
    } else {
        eprintln!("start to first answer took {took:?}, longer than the fault cache keeps a read");
    }
}
