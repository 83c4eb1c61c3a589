//! The Lambda path with literal API Gateway HTTP API (payload 2.0) events, as API Gateway sends
//! them (cookies, forwarded headers, a `{proxy+}` route), through `lambda_http` into the router.

mod common;

use common::*;
use serde_json::Value;
use tandem_api::store::embedded::EmbeddedStore;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn body(out: &Value) -> Value {
    serde_json::from_str(out["body"].as_str().expect("body is a string")).unwrap()
}

#[tokio::test]
async fn fixtures_round_trip_through_the_lambda_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
    let mut cfg = config("us-east-1", Some("t"));
    cfg.origin_secret = Some("fixture-secret".into());
    let lambda = Lambda::new(tandem_api::router(store, cfg));

    let out = lambda.invoke(fixture("apigw-v2-put.json")).await;
    assert_eq!(out["statusCode"], 201, "{out}");
    assert_eq!(out["headers"]["x-served-region"], "us-east-1");
    assert_eq!(out["headers"]["content-type"], "application/json");
    assert_eq!(
        out["headers"]["x-request-id"], "fixture-put-1",
        "the caller's request id is kept"
    );
    assert!(
        out["headers"]["server-timing"]
            .as_str()
            .unwrap()
            .starts_with("app;dur=")
    );
    let b = body(&out);
    assert_eq!(b["item"]["id"], "order-42");
    assert_eq!(b["item"]["data"]["qty"], 3);
    // The ETag names the write the body shows.
    let item: tandem_shared::Item = serde_json::from_value(b["item"].clone()).unwrap();
    assert_eq!(out["headers"]["etag"].as_str(), item.etag().as_deref());
    assert!(item.etag().unwrap().starts_with("\"1.us-east-1."));
    assert_eq!(b["region"], "us-east-1");

    let out = lambda.invoke(fixture("apigw-v2-get-base64.json")).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let b = body(&out);
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    assert_eq!(b["items"][0]["id"], "order-42");
    assert_eq!(b["next_cursor"], Value::Null);

    // Without the origin secret API Gateway's caller gets 403, not 5xx.
    let mut event = fixture("apigw-v2-put.json");
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-origin-verify");
    let out = lambda.invoke(event).await;
    assert_eq!(out["statusCode"], 403);
    assert_eq!(body(&out)["error"]["code"], "forbidden");
}
