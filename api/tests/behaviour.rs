//! contract §1 behaviour, one suite run against every store and every adapter: the embedded store
//! in a temp dir and the DynamoDB store on moto's server, each over real HTTP and through
//! `lambda_http` as API Gateway HTTP API events.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tandem_api::Config;
use tandem_api::store::embedded::EmbeddedStore;
use tandem_shared::headers::ACTIVE_REGION;

const REGION: &str = "us-east-1";
const TOKEN: &str = "test-admin-token";

/// This process's clock (`tandem_api::store::now_ms`) is moved forward, never back, to expire
/// faults without waiting for them. One suite moves it at a time: the others may be between
/// setting a self-clearing fault and checking that it holds.
static CLOCK: tokio::sync::Mutex<i64> = tokio::sync::Mutex::const_new(0);

#[derive(Clone, Copy)]
enum Adapter {
    Http,
    Lambda,
}

async fn connect(adapter: Adapter, app: axum::Router) -> Box<dyn Client> {
    match adapter {
        Adapter::Http => Box::new(Http::start(app).await),
        Adapter::Lambda => Box::new(Lambda::new(app)),
    }
}

/// Every response carries the region header, server-timing, and a body naming the region
/// (except the OpenAPI document, whose schema allows no `region` field at its root).
fn assert_contract(method: &str, path: &str, r: &Resp) {
    assert_eq!(r.header("x-served-region"), Some(REGION), "{r:?}");
    let timing = r.header("server-timing").unwrap_or("");
    assert!(timing.starts_with("app;dur="), "server-timing {timing:?}");
    assert!(
        r.header("x-request-id").is_some_and(|v| !v.is_empty()),
        "x-request-id missing: {r:?}"
    );
    if r.status != 204 && method != "HEAD" && path != "/api/openapi.json" {
        assert_eq!(r.body["region"], REGION, "body without region: {}", r.raw);
    }
}

async fn send(c: &dyn Client, req: Req) -> Resp {
    let (method, path) = (req.method.clone(), req.path.clone());
    let r = c.send(req).await;
    assert_contract(&method, &path, &r);
    r
}

async fn run_suite(factory: Factory, adapter: Adapter) {
    let c = connect(adapter, factory(config(REGION, Some(TOKEN)))).await;
    let c = c.as_ref();
    items(c).await;
    listing(c).await;
    seed_routes(c).await;
    health_and_openapi(c).await;
    bad_inputs(c).await;
    faults(c).await;
    large_pages(c).await;
    conditional_requests(c).await;

    // Configurations the main router does not have.
    let no_token = connect(adapter, factory(config(REGION, None))).await;
    let r = send(
        no_token.as_ref(),
        Req::new("GET", "/api/admin/fault").header("authorization", "Bearer x"),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    let mut cloaked = config(REGION, Some(TOKEN));
    cloaked.origin_secret = Some("s3cret".into());
    let cloaked = connect(adapter, factory(cloaked)).await;
    for req in [
        Req::new("GET", "/api/health"),
        Req::new("GET", "/api/items/a").header("x-origin-verify", "wrong"),
        Req::new("GET", "/api/admin/fault").header("authorization", &format!("Bearer {TOKEN}")),
    ] {
        let r = send(cloaked.as_ref(), req).await;
        assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    }
    let r = send(
        cloaked.as_ref(),
        Req::new("GET", "/api/health").header("x-origin-verify", "s3cret"),
    )
    .await;
    assert_eq!(r.status, 200);

    cors(adapter, &factory).await;
}

async fn items(c: &dyn Client) {
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a").json(&json!({"data": {"n": 1}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let item = &r.body["item"];
    assert_eq!(item["id"], "suite-a");
    assert_eq!(item["data"], json!({"n": 1}));
    assert_eq!(item["version"], 1);
    assert_eq!(item["updated_in"], REGION);
    let at = item["updated_at"].as_str().unwrap();
    assert_eq!(at.len(), 24, "RFC 3339 with ms: {at}");
    assert!(at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
    // The ETag names the write (version, region, time), as the item's own etag() does.
    let etag = format!(
        "\"1.{REGION}.{}\"",
        tandem_shared::item::parse_timestamp(at).unwrap()
    );
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let first: tandem_shared::Item = serde_json::from_value(item.clone()).unwrap();
    assert_eq!(first.etag(), Some(etag.clone()));

    let got = send(c, Req::new("GET", "/api/items/suite-a")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["item"], r.body["item"]);

    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a").json(&json!({"data": {"n": 2}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["item"]["version"].clone()),
        (200, json!(2))
    );
    assert!(r.body["item"]["updated_at"].as_str().unwrap() >= at);

    let second_etag = r.header("etag").unwrap().to_owned();

    // If-Match: an older write's ETag, an older plain version, the current write, an absent item.
    for stale in [etag.as_str(), "\"1\""] {
        let r = send(
            c,
            Req::new("PUT", "/api/items/suite-a")
                .header("if-match", stale)
                .json(&json!({"data": {}})),
        )
        .await;
        assert_eq!(
            (r.status, r.error_code()),
            (412, "precondition_failed"),
            "{stale}"
        );
    }
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a")
            .header("if-match", &second_etag)
            .json(&json!({"data": {"n": 2.5}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["item"]["version"].clone()),
        (200, json!(3))
    );
    // The same version written in another region is another write: its ETag never matches.
    let elsewhere = format!("\"3.eu-west-1.{}\"", u64::MAX / 2);
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a")
            .header("if-match", &elsewhere)
            .json(&json!({"data": {}})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (412, "precondition_failed"));
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a")
            .header("if-match", "\"3\"")
            .json(&json!({"data": {"n": 3}})),
    )
    .await;
    // The plain form still works for a version written in the answering region.
    assert_eq!(
        (r.status, r.body["item"]["version"].clone()),
        (200, json!(4))
    );
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-none")
            .header("if-match", "\"1\"")
            .json(&json!({"data": {}})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (412, "precondition_failed"));
    let r = send(c, Req::new("GET", "/api/items/suite-none")).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    // HEAD answers like GET without a body.
    let r = send(c, Req::new("HEAD", "/api/items/suite-a")).await;
    assert_eq!(r.status, 200);

    // Delete is idempotent; a deleted item is gone; it can be created again.
    let r = send(c, Req::new("DELETE", "/api/items/suite-a")).await;
    assert_eq!(r.status, 204);
    assert!(r.raw.is_empty());
    let r = send(c, Req::new("GET", "/api/items/suite-a")).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let r = send(c, Req::new("DELETE", "/api/items/suite-a")).await;
    assert_eq!(r.status, 204);
    let r = send(
        c,
        Req::new("PUT", "/api/items/suite-a").json(&json!({"data": {"again": true}})),
    )
    .await;
    assert_eq!(r.status, 201);
    send(c, Req::new("DELETE", "/api/items/suite-a")).await;

    // Every allowed id character round-trips.
    let id = "Az09_.:-x";
    let r = send(
        c,
        Req::new("PUT", &format!("/api/items/{id}"))
            .json(&json!({"data": {"k": [1, "two", null]}})),
    )
    .await;
    assert_eq!((r.status, r.body["item"]["id"].clone()), (201, json!(id)));
    let r = send(c, Req::new("GET", &format!("/api/items/{id}"))).await;
    assert_eq!(r.body["item"]["data"]["k"], json!([1, "two", null]));
    send(c, Req::new("DELETE", &format!("/api/items/{id}"))).await;
}

async fn listing(c: &dyn Client) {
    let ids: BTreeSet<String> = (0..7).map(|i| format!("list-{i}")).collect();
    for id in &ids {
        let r = send(
            c,
            Req::new("PUT", &format!("/api/items/{id}")).json(&json!({"data": {"id": id}})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    send(
        c,
        Req::new("PUT", "/api/items/list-gone").json(&json!({"data": {}})),
    )
    .await;
    send(c, Req::new("DELETE", "/api/items/list-gone")).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "pagination does not end");
        let path = match &cursor {
            Some(cur) => format!("/api/items?limit=3&cursor={cur}"),
            None => "/api/items?limit=3".to_owned(),
        };
        let r = send(c, Req::new("GET", &path)).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match &r.body["next_cursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor is {other}"),
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an item was listed twice: {seen:?}"
    );
    assert_eq!(
        unique, ids,
        "listing must return every live item and no deleted one"
    );

    let r = send(c, Req::new("GET", "/api/items")).await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        7,
        "default limit is 25"
    );
    assert_eq!(r.body["next_cursor"], Value::Null);
    for id in &ids {
        send(c, Req::new("DELETE", &format!("/api/items/{id}"))).await;
    }
}

/// Pages of large items stay under Lambda's 6 MB response limit, counted as Lambda carries
/// them (the body escaped again inside the runtime's JSON: the Lambda adapter checks every
/// answer against the limit): cut short by size, with a cursor to the rest. Half the items are
/// quotes, which that escaping doubles twice over.
async fn large_pages(c: &dyn Client) {
    let blob = "x".repeat(390_000);
    let quotes = "\"".repeat(190_000);
    // 16 × 390 KB: over 6 MB in one page.
    let big: BTreeSet<String> = (0..16).map(|i| format!("page-big-{i:02}")).collect();
    for (i, id) in big.iter().enumerate() {
        let blob = if i % 2 == 0 { &blob } else { &quotes };
        let r = send(
            c,
            Req::new("PUT", &format!("/api/items/{id}")).json(&json!({"data": {"blob": blob}})),
        )
        .await;
        assert_eq!(r.status, 201, "{id}");
    }
    let (mut seen, mut cursor, mut cut_short) = (BTreeSet::new(), None::<String>, false);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/items?cursor={c}"),
            None => "/api/items".to_owned(),
        };
        let r = send(c, Req::new("GET", &path)).await;
        assert_eq!(r.status, 200);
        assert!(
            r.raw.len() < tandem_shared::validate::LIST_PAGE_MAX_BYTES + 500_000,
            "a page of {} bytes",
            r.raw.len()
        );
        let items = r.body["items"].as_array().unwrap();
        for item in items {
            seen.insert(item["id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(next) => {
                cut_short |= items.len() < tandem_shared::validate::LIST_LIMIT_DEFAULT;
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert!(big.is_subset(&seen), "every large item is listed");
    assert!(cut_short, "a page was cut short by size");
    for id in &big {
        send(c, Req::new("DELETE", &format!("/api/items/{id}"))).await;
    }
}

/// RFC 9110's `If-Match` on every write route: `*`, lists of which any tag may match, strong
/// comparison (a weak tag never matches), and an absent item matching nothing.
async fn conditional_requests(c: &dyn Client) {
    let put = |if_match: &str, n: u64| {
        Req::new("PUT", "/api/items/cond")
            .header("if-match", if_match)
            .json(&json!({"data": {"n": n}}))
    };
    let delete =
        |if_match: &str| Req::new("DELETE", "/api/items/cond").header("if-match", if_match);
    // Absent: nothing matches, not even `*`, for a put or a delete.
    for tag in ["*", "\"1\""] {
        let r = send(c, put(tag, 0)).await;
        assert_eq!(
            (r.status, r.error_code()),
            (412, "precondition_failed"),
            "{tag}"
        );
        let r = send(c, delete(tag)).await;
        assert_eq!(
            (r.status, r.error_code()),
            (412, "precondition_failed"),
            "{tag}"
        );
    }
    let r = send(
        c,
        Req::new("PUT", "/api/items/cond").json(&json!({"data": {"n": 1}})),
    )
    .await;
    let first = r.header("etag").unwrap().to_owned();
    let r = send(c, put("*", 2)).await;
    assert_eq!(r.status, 200, "* matches a current item: {}", r.raw);
    let second = r.header("etag").unwrap().to_owned();
    // A list matches when any tag does; a weak tag never does.
    let r = send(c, put(&format!("\"999\", {second}"), 3)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let third = r.header("etag").unwrap().to_owned();
    let r = send(c, put(&format!("W/{third}"), 4)).await;
    assert_eq!((r.status, r.error_code()), (412, "precondition_failed"));
    // A delete with an overwritten write's ETag deletes nothing.
    let r = send(c, delete(&first)).await;
    assert_eq!((r.status, r.error_code()), (412, "precondition_failed"));
    let r = send(c, Req::new("GET", "/api/items/cond")).await;
    assert_eq!(
        (r.status, r.body["item"]["data"]["n"].clone()),
        (200, json!(3))
    );
    let r = send(c, delete(&format!("W/{third}"))).await;
    assert_eq!(r.status, 412, "a weak tag deletes nothing");
    let r = send(c, delete(&format!("{first}, {third}"))).await;
    assert_eq!(r.status, 204, "{}", r.raw);
    let r = send(c, Req::new("GET", "/api/items/cond")).await;
    assert_eq!(r.status, 404);
}

async fn seed_routes(c: &dyn Client) {
    let r = send(
        c,
        Req::new("POST", "/api/write").json(&json!({"id": "seed-1", "data": {"from": "seed"}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["item"]["version"].clone()),
        (201, json!(1))
    );
    let r = send(
        c,
        Req::new("POST", "/api/write").json(&json!({"id": "seed-1", "data": {"from": "seed2"}})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(c, Req::new("GET", "/api/read?id=seed-1")).await;
    assert_eq!(
        (r.status, r.body["item"]["data"]["from"].clone()),
        (200, json!("seed2"))
    );
    let r = send(c, Req::new("GET", "/api/read?id=seed-missing")).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let r = send(c, Req::new("GET", "/api/read")).await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_id"));
    send(c, Req::new("DELETE", "/api/items/seed-1")).await;
}

async fn health_and_openapi(c: &dyn Client) {
    let r = send(c, Req::new("GET", "/api/health")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["fault"], json!({"mode": "none"}));
    assert!(r.body["replication"].is_object());
    assert_eq!(r.header(ACTIVE_REGION), None, "echoed only when sent");

    // The edge's active region comes back as the edge sent it, on an error as on a success:
    // the health watcher's probe of /api/health learns it so (contract §6.3).
    for (path, status) in [("/api/health", 200), ("/api/items/never-written", 404)] {
        let sent = "us-west-2; failover=off";
        let r = send(c, Req::new("GET", path).header(ACTIVE_REGION, sent)).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.header(ACTIVE_REGION), Some(sent), "{path}");
    }

    let r = send(c, Req::new("GET", "/api/openapi.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/items",
        "/api/items/{id}",
        "/api/read",
        "/api/write",
        "/api/health",
        "/api/admin/fault",
        "/api/openapi.json",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
}

/// The bad-input table: each a client mistake, each a 4xx with its code, never a 5xx.
async fn bad_inputs(c: &dyn Client) {
    let big = "x".repeat(410 * 1024);
    let huge = "x".repeat(1100 * 1024);
    let auth = format!("Bearer {TOKEN}");
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "malformed JSON",
            Req::new("PUT", "/api/items/bad").raw("application/json", "{\"data\": "),
            400,
            "invalid_json",
        ),
        (
            "data not an object",
            Req::new("PUT", "/api/items/bad").json(&json!({"data": [1, 2]})),
            400,
            "bad_request",
        ),
        (
            "data missing",
            Req::new("PUT", "/api/items/bad").json(&json!({"date": {}})),
            400,
            "bad_request",
        ),
        (
            "body not an object",
            Req::new("PUT", "/api/items/bad").json(&json!("text")),
            400,
            "bad_request",
        ),
        (
            "integer beyond 64 bits (would be stored rounded)",
            Req::new("PUT", "/api/items/bad").raw(
                "application/json",
                r#"{"data": {"n": 18446744073709551616}}"#,
            ),
            400,
            "bad_request",
        ),
        (
            "integer beyond 64 bits on the seed's write route",
            Req::new("POST", "/api/write").raw(
                "application/json",
                r#"{"id": "bad", "data": {"n": -99999999999999999999}}"#,
            ),
            400,
            "bad_request",
        ),
        (
            "item over 400 KB",
            Req::new("PUT", "/api/items/bad").json(&json!({"data": {"big": big}})),
            413,
            "payload_too_large",
        ),
        (
            "body over 1 MiB",
            Req::new("PUT", "/api/items/bad").json(&json!({"data": {"big": huge}})),
            413,
            "payload_too_large",
        ),
        (
            "empty id",
            Req::new("GET", "/api/items/"),
            400,
            "invalid_id",
        ),
        (
            "empty id on PUT",
            Req::new("PUT", "/api/items/").json(&json!({"data": {}})),
            400,
            "invalid_id",
        ),
        (
            "257-character id",
            Req::new("GET", &format!("/api/items/{}", "a".repeat(257))),
            400,
            "invalid_id",
        ),
        (
            "id with /",
            Req::new("GET", "/api/items/a/b"),
            400,
            "invalid_id",
        ),
        (
            "id with encoded /",
            Req::new("PUT", "/api/items/a%2Fb").json(&json!({"data": {}})),
            400,
            "invalid_id",
        ),
        (
            "non-ASCII id",
            Req::new("GET", "/api/items/%C3%A9t%C3%A9"),
            400,
            "invalid_id",
        ),
        (
            "id with space",
            Req::new("DELETE", "/api/items/a%20b"),
            400,
            "invalid_id",
        ),
        (
            "write without id",
            Req::new("POST", "/api/write").json(&json!({"data": {}})),
            400,
            "invalid_id",
        ),
        (
            "write with bad id",
            Req::new("POST", "/api/write").json(&json!({"id": "a/b", "data": {}})),
            400,
            "invalid_id",
        ),
        (
            "read with bad id",
            Req::new("GET", "/api/read?id=%2F"),
            400,
            "invalid_id",
        ),
        (
            "wrong content type",
            Req::new("PUT", "/api/items/bad").raw("text/plain", "{\"data\": {}}"),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            Req::new("POST", "/api/write").raw("", "{\"id\": \"x\", \"data\": {}}"),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown route",
            Req::new("GET", "/api/nope"),
            404,
            "not_found",
        ),
        (
            "unknown route outside /api",
            Req::new("GET", "/nope"),
            404,
            "not_found",
        ),
        (
            "wrong method on an item",
            Req::new("POST", "/api/items/x"),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on write",
            Req::new("GET", "/api/write"),
            405,
            "method_not_allowed",
        ),
        (
            "limit 0",
            Req::new("GET", "/api/items?limit=0"),
            400,
            "bad_request",
        ),
        (
            "limit 101",
            Req::new("GET", "/api/items?limit=101"),
            400,
            "bad_request",
        ),
        (
            "limit not a number",
            Req::new("GET", "/api/items?limit=ten"),
            400,
            "bad_request",
        ),
        (
            "forged cursor",
            Req::new("GET", "/api/items?cursor=%21%21"),
            400,
            "bad_request",
        ),
        (
            "missing admin token",
            Req::new("GET", "/api/admin/fault"),
            401,
            "unauthorized",
        ),
        (
            "wrong admin token",
            Req::new("PUT", "/api/admin/fault")
                .header("authorization", "Bearer nope")
                .json(&json!({"mode": "none"})),
            401,
            "unauthorized",
        ),
        (
            "token without Bearer",
            Req::new("DELETE", "/api/admin/fault").header("authorization", TOKEN),
            401,
            "unauthorized",
        ),
        (
            "unknown fault mode",
            Req::new("PUT", "/api/admin/fault")
                .header("authorization", &auth)
                .json(&json!({"mode": "melt"})),
            400,
            "bad_request",
        ),
        (
            "fault status not 5xx",
            Req::new("PUT", "/api/admin/fault")
                .header("authorization", &auth)
                .json(&json!({"mode": "error", "status": 429})),
            400,
            "bad_request",
        ),
        (
            "fault JSON malformed",
            Req::new("PUT", "/api/admin/fault")
                .header("authorization", &auth)
                .raw("application/json", "{"),
            400,
            "invalid_json",
        ),
    ];
    for (what, req, status, code) in cases {
        let r = send(c, req).await;
        assert!(
            r.status < 500,
            "{what}: a client mistake answered {}",
            r.status
        );
        assert_eq!(
            (r.status, r.error_code()),
            (status, code),
            "{what}: {}",
            r.raw
        );
        if status == 405 {
            let allow = r
                .header("allow")
                .unwrap_or_else(|| panic!("{what}: 405 without Allow"));
            assert!(
                allow.contains("GET") || allow.contains("POST"),
                "{what}: Allow {allow}"
            );
        }
    }
    // Nothing above was written.
    let r = send(c, Req::new("GET", "/api/items/bad")).await;
    assert_eq!(r.status, 404);
}

async fn faults(c: &dyn Client) {
    let auth = format!("Bearer {TOKEN}");
    let admin = |method: &str| Req::new(method, "/api/admin/fault").header("authorization", &auth);
    send(
        c,
        Req::new("PUT", "/api/items/f1").json(&json!({"data": {}})),
    )
    .await;

    for status in [500u16, 502, 503, 504] {
        let r = send(
            c,
            admin("PUT").json(&json!({"mode": "error", "status": status})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.body["fault"], json!({"mode": "error", "status": status}));
        let r = send(c, Req::new("GET", "/api/items/f1")).await;
        assert_eq!((r.status, r.error_code()), (status, "region_unavailable"));
        let r = send(
            c,
            Req::new("PUT", "/api/items/f1").json(&json!({"data": {}})),
        )
        .await;
        assert_eq!(r.status, status);
        let r = send(c, Req::new("GET", "/api/health")).await;
        assert_eq!(
            (r.status, r.body["status"].clone()),
            (503, json!("faulted"))
        );
        assert_eq!(r.body["fault"]["status"], status);
        // Admin keeps working while faulted.
        let r = send(c, admin("GET")).await;
        assert_eq!(
            (r.status, r.body["fault"]["mode"].clone()),
            (200, json!("error"))
        );
    }
    let r = send(c, admin("DELETE")).await;
    assert_eq!(
        (r.status, r.body["fault"].clone()),
        (200, json!({"mode": "none"}))
    );
    let r = send(c, Req::new("GET", "/api/items/f1")).await;
    assert_eq!(r.status, 200);

    // Slow: the app's own timing shows the injected latency.
    send(
        c,
        admin("PUT").json(&json!({"mode": "slow", "latency_ms": 300})),
    )
    .await;
    let r = send(c, Req::new("GET", "/api/items/f1")).await;
    assert_eq!(r.status, 200);
    let dur: f64 = r
        .header("server-timing")
        .unwrap()
        .trim_start_matches("app;dur=")
        .parse()
        .unwrap();
    assert!(dur >= 300.0, "slow fault of 300 ms, app took {dur} ms");

    // A fault with a duration clears itself: a minute later (on the clock, not waited for).
    let mut offset = CLOCK.lock().await;
    let r = send(
        c,
        admin("PUT").json(&json!({"mode": "error", "status": 503, "duration_s": 60})),
    )
    .await;
    assert!(r.body["expires_at"].is_string(), "{}", r.raw);
    assert_eq!(send(c, Req::new("GET", "/api/items/f1")).await.status, 503);
    *offset += 60_001;
    tandem_api::store::set_clock_offset_ms(*offset);
    assert_eq!(send(c, Req::new("GET", "/api/items/f1")).await.status, 200);
    let r = send(c, admin("GET")).await;
    drop(offset);
    assert_eq!(
        (r.body["fault"].clone(), r.body["expires_at"].clone()),
        (json!({"mode": "none"}), Value::Null)
    );
    send(c, Req::new("DELETE", "/api/items/f1")).await;
}

async fn cors(adapter: Adapter, factory: &Factory) {
    let mut cfg: Config = config(REGION, None);
    cfg.cors_origins = vec!["https://app.example".into()];
    let c = connect(adapter, factory(cfg)).await;
    let preflight = |origin: &str| {
        Req::new("OPTIONS", "/api/items/x")
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
    };
    let r = send(c.as_ref(), preflight("https://app.example")).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PUT")
    );
    let r = c.send(preflight("https://evil.example")).await;
    assert!(r.header("access-control-allow-origin").is_none());
    assert_eq!(
        r.status, 405,
        "an unknown origin's preflight is an ordinary OPTIONS"
    );
    let r = send(
        c.as_ref(),
        Req::new("GET", "/api/health").header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("x-served-region")
    );
}

#[tokio::test]
async fn embedded_store_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), REGION).unwrap();
    run_suite(factory(store), Adapter::Http).await;
}

#[tokio::test]
async fn embedded_store_through_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), REGION).unwrap();
    run_suite(factory(store), Adapter::Lambda).await;
}

#[tokio::test]
async fn dynamodb_store_over_http() {
    let moto = Moto::start().await;
    let store = moto.store("tandem-http", REGION).await;
    run_suite(factory(store), Adapter::Http).await;
}

#[tokio::test]
async fn dynamodb_store_through_lambda() {
    let moto = Moto::start().await;
    let store = moto.store("tandem-lambda", REGION).await;
    run_suite(factory(store), Adapter::Lambda).await;
}
