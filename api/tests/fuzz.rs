//! Property-based fuzzing of the request path (issue 10 item 7, with proptest as the stable
//! toolchain has no `cargo fuzz`): any method, id, query, `If-Match`, content type and body,
//! well-formed or not, gets an answer below 500 with the JSON error body on every 4xx.
//! `cargo xtask test` runs 200 cases; `TANDEM_FUZZ_CASES=100000 cargo test -p tandem-api --test
//! fuzz` runs a long one.

use axum::body::Body;
use http::Request;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tandem_api::store::embedded::EmbeddedStore;
use tower::ServiceExt as _;

fn cases() -> u32 {
    std::env::var("TANDEM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Text that is sometimes JSON, sometimes nearly JSON, sometimes bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(r#"{"data":{}}"#.to_owned()),
        "[0-9]{1,40}".prop_map(|n| format!(r#"{{"data":{{"n":{n}}}}}"#)),
        "-?[0-9]{1,30}(\\.[0-9]{1,5})?(e[+-]?[0-9]{1,4})?"
            .prop_map(|n| format!(r#"{{"data":{{"n":{n}}}}}"#)),
        (1usize..200).prop_map(|d| format!(
            r#"{{"data":{}{}}}"#,
            "{\"a\":".repeat(d) + "{}",
            "}".repeat(d)
        )),
        "[ -~]{0,200}".prop_map(|s| format!(r#"{{"id":"{s}","data":{{"s":"{s}"}}}}"#)),
        "[ -~]{0,200}",
    ];
    prop_oneof![
        json.prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn request() -> impl Strategy<Value = Option<Request<Body>>> {
    (
        prop::sample::select(vec![
            "GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH",
        ]),
        prop::sample::select(vec![
            "/api/items/",
            "/api/items",
            "/api/read",
            "/api/write",
            "/api/health",
            "/api/admin/fault",
            "/api/nope/",
        ]),
        "[A-Za-z0-9_.:%~!$&'()*+,;=@-]{0,300}",
        "(limit=[-+0-9a-z]{0,6})?(&cursor=[A-Za-z0-9_=%-]{0,40})?(&id=[ -~]{0,20})?",
        prop::option::of("[ -~]{0,40}"),
        prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
        ]),
        body(),
    )
        .prop_map(|(method, base, id, query, if_match, content_type, body)| {
            let uri = if base.ends_with('/') {
                format!("{base}{id}?{query}")
            } else {
                format!("{base}?{query}")
            };
            let mut req = Request::builder().method(method).uri(uri);
            if let Some(tag) = if_match {
                req = req.header("if-match", tag);
            }
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            req.body(Body::from(body)).ok()
        })
}

#[test]
fn no_request_is_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
    let app = tandem_api::router(
        store,
        tandem_api::Config {
            region: "us-east-1".into(),
            admin_token: Some("fuzz-token".into()),
            ..Default::default()
        },
    );
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request(), |req| {
            let Some(req) = req else {
                return Ok(()); // not a request `http` can even build
            };
            let what = format!("{} {}", req.method(), req.uri());
            let (status, bytes) = rt.block_on(async {
                let resp = app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, bytes)
            });
            prop_assert!(status.as_u16() < 500, "{what}: {status}");
            if status.is_client_error() && !bytes.is_empty() {
                let body: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| TestCaseError::fail(format!("{what}: {status}: {e}")))?;
                prop_assert!(body["error"]["code"].is_string(), "{what}: {body}");
            }
            Ok(())
        })
        .unwrap();
}
