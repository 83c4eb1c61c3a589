//! A stand-in for the CloudFront KeyValueStore data-plane API (`cloudfront-keyvaluestore`),
//! which moto does not have (moto 5.2.5: its CloudFront API can create a store, but nothing
//! serves the data plane, and its CloudFormation cannot create `AWS::CloudFront::KeyValueStore`).
//! Shared by the AWS crate's tests and `infra/cli/tests/deploy.rs` (`#[path]`), with the SDK
//! client pointed at it ([`FakeKvs::client`]).
//!
//! It serves one store and the four operations `tandem failover`/`failback` use, shaped as the
//! SDK's model says (restJson1): DescribeKeyValueStore (`GET /key-value-stores/{arn}`, the
//! ETag in the body and the `ETag` header), GetKey (`GET .../keys/{key}`), PutKey (`PUT
//! .../keys/{key}`, body `{"Value"}`) and DeleteKey (`DELETE .../keys/{key}`), the last two
//! refused with a ConflictException unless `If-Match` names the current ETag. Every write makes
//! a new ETag. Errors carry `x-amzn-errortype`. What it cannot show is that AWS answers the
//! same way: it follows the model and the documentation, nothing more.
//!
//! [`FakeKvs::changes`] hands every write to the test as it is made, so that a test can play
//! CloudFront's part: carry the value to an edge that routes by it (`infra/cli/tests/deploy.rs`
//! carries it to a local stack's edge, through its control API).
//!
//! Reaching it without DNS: the SDK's endpoint rules put the ARN's account id in front of the
//! endpoint's host (`https://<account>.cloudfront-kvs.global.api.aws`, or `<account>.<host>`
//! for an endpoint override). The store's account is therefore `127` and the endpoint to give
//! the SDK is `http://0.0.1:<port>`: together they make `http://127.0.0.1:<port>`, where this
//! listens.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The fake store's account: see the module doc.
pub const ACCOUNT: &str = "127";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// `describe`, or the key of a key operation.
    pub target: String,
    pub if_match: Option<String>,
    pub authorization: String,
    pub region_set: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Data {
    arn: String,
    etag: u64,
    items: BTreeMap<String, String>,
    /// Writes still to be beaten by "another writer" (the ETag changes just before them).
    conflicts: usize,
    deny: bool,
    requests: Vec<Recorded>,
    /// Where each write goes as it is made: the key, and its value (`None`: deleted).
    changes: Option<tokio::sync::mpsc::UnboundedSender<(String, Option<String>)>>,
}

impl Data {
    fn etag(&self) -> String {
        format!("KVFAKE{:04}", self.etag)
    }

    fn size(&self) -> usize {
        self.items.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// The fake, serving until dropped.
pub struct FakeKvs {
    /// The endpoint override to give the SDK (see the module doc).
    pub endpoint: String,
    pub arn: String,
    data: Arc<Mutex<Data>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKvs {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeKvs {
    /// An empty store on a free port of 127.0.0.1.
    pub async fn start() -> FakeKvs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let arn = format!(
            "arn:aws:cloudfront::{ACCOUNT}:key-value-store/5e1a0c2b-6f3d-4e8a-9b7c-0a1b2c3d4e5f"
        );
        let data = Arc::new(Mutex::new(Data {
            arn: arn.clone(),
            etag: 1,
            ..Data::default()
        }));
        let app = axum::Router::new().fallback(serve).with_state(data.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKvs {
            endpoint: format!("http://0.0.1:{port}"),
            arn,
            data,
            server,
        }
    }

    pub fn value(&self, key: &str) -> Option<String> {
        self.data.lock().unwrap().items.get(key).cloned()
    }

    /// The store's current ETag.
    pub fn etag(&self) -> String {
        self.data.lock().unwrap().etag()
    }

    /// The next `n` writes find that another writer changed the store since their ETag was read.
    pub fn conflict_next(&self, n: usize) {
        self.data.lock().unwrap().conflicts = n;
    }

    /// Refuse every request with AccessDeniedException.
    pub fn deny(&self, deny: bool) {
        self.data.lock().unwrap().deny = deny;
    }

    /// Every write from now on, as it is made: the key and its new value (`None`: deleted).
    pub fn changes(&self) -> tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.data.lock().unwrap().changes = Some(tx);
        rx
    }

    /// The requests so far, and forget them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.data.lock().unwrap().requests)
    }

    /// The SDK client `tandem` uses (same HTTPS stack and configuration chain), pointed at the
    /// fake with test credentials.
    pub async fn client(&self) -> aws_sdk_cloudfrontkeyvaluestore::Client {
        use aws_sdk_cloudfrontkeyvaluestore::config::{Builder, Credentials};
        let base = tandem_api::store::dynamo::sdk_config(
            Some(tandem_shared::region::PRIMARY),
            tandem_api::store::dynamo::Roots::System,
        )
        .await;
        let conf = Builder::from(&base)
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "AKIDTANDEMTEST",
                "tandem-test-secret",
                None,
                None,
                "tandem-test",
            ))
            .build();
        aws_sdk_cloudfrontkeyvaluestore::Client::from_conf(conf)
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", code.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        serde_json::json!({ "Message": message }).to_string(),
    )
        .into_response()
}

fn ok(body: serde_json::Value, etag: Option<String>) -> Response {
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(etag) = etag {
        response
            .headers_mut()
            .insert("etag", etag.parse().expect("an ETag header value"));
    }
    response
}

/// `%XX` sequences decoded (the SDK encodes the ARN's `:` and `/` in the path).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(
    State(data): State<Arc<Mutex<Data>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(rest) = uri.path().strip_prefix("/key-value-stores/") else {
        return error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            uri.path(),
        );
    };
    let (arn, key) = match rest.split_once("/keys/") {
        Some((arn, key)) => (decode(arn), Some(decode(key))),
        None => (decode(rest), None),
    };
    let mut data = data.lock().unwrap();
    data.requests.push(Recorded {
        method: method.to_string(),
        target: key.clone().unwrap_or_else(|| "describe".to_owned()),
        if_match: header("if-match"),
        authorization: header("authorization").unwrap_or_default(),
        region_set: header("x-amz-region-set"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if data.deny {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Access denied",
        );
    }
    if arn != data.arn {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no key value store {arn}"),
        );
    }
    let Some(key) = key else {
        if method != Method::GET {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "ValidationException",
                "method",
            );
        }
        let etag = data.etag();
        return ok(
            serde_json::json!({
                "ItemCount": data.items.len(),
                "TotalSizeInBytes": data.size(),
                "KvsARN": data.arn,
                "Created": 1_767_225_600,
                "LastModified": 1_767_225_600,
                "ETag": etag,
                "Status": "READY",
            }),
            Some(etag),
        );
    };
    if method == Method::GET {
        return match data.items.get(&key) {
            Some(value) => ok(
                serde_json::json!({
                    "Key": key,
                    "Value": value,
                    "ItemCount": data.items.len(),
                    "TotalSizeInBytes": data.size(),
                }),
                None,
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Key {key} not found"),
            ),
        };
    }
    let Some(if_match) = header("if-match") else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "If-Match is required",
        );
    };
    if data.conflicts > 0 {
        data.conflicts -= 1;
        data.etag += 1;
    }
    if if_match != data.etag() {
        return error(
            StatusCode::CONFLICT,
            "ConflictException",
            "Pre-condition failed: the ETag does not match",
        );
    }
    if method == Method::PUT {
        let value = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["Value"].as_str().map(str::to_owned));
        let Some(value) = value else {
            return error(StatusCode::BAD_REQUEST, "ValidationException", "no Value");
        };
        data.items.insert(key.clone(), value.clone());
        if let Some(changes) = &data.changes {
            let _ = changes.send((key, Some(value)));
        }
    } else if method == Method::DELETE {
        if data.items.remove(&key).is_none() {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Key {key} not found"),
            );
        }
        if let Some(changes) = &data.changes {
            let _ = changes.send((key, None));
        }
    } else {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationException",
            "method",
        );
    }
    data.etag += 1;
    let etag = data.etag();
    ok(
        serde_json::json!({
            "ItemCount": data.items.len(),
            "TotalSizeInBytes": data.size(),
        }),
        Some(etag),
    )
}
