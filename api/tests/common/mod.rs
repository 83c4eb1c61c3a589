//! Test harness: the same requests sent through every adapter (HTTP on a real port, or an
//! API Gateway HTTP API event through `lambda_http`), and DynamoDB on moto's server (started by
//! the test kit).

#![allow(dead_code)]

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use tandem_api::store::dynamo::DynamoStore;
use tandem_api::{Config, router};
pub use tandem_testkit::Moto;
use tower::ServiceExt as _;

/// A response as every adapter reports it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    pub raw: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The error code of an error body, checking its shape on the way.
    pub fn error_code(&self) -> &str {
        assert!(
            self.body["region"].is_string(),
            "error body without region: {}",
            self.raw
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "error body without message: {}",
            self.raw
        );
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.raw))
    }
}

/// A request: method, path with query, headers, body.
#[derive(Debug, Clone, Default)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Req {
            method: method.into(),
            path: path.into(),
            ..Default::default()
        }
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Some(serde_json::to_vec(body).unwrap());
        self
    }
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        if !content_type.is_empty() {
            self.headers
                .push(("content-type".into(), content_type.into()));
        }
        self.body = Some(body.into());
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One way of reaching a router.
pub trait Client: Send + Sync {
    fn send(&self, req: Req) -> BoxFut<'_, Resp>;
}

/// Builds a router for a config: the suite makes routers with and without tokens and secrets.
pub type Factory = Box<dyn Fn(Config) -> axum::Router + Send + Sync>;

fn parse_body(raw: &str) -> Value {
    if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(raw).unwrap_or(Value::Null)
    }
}

/// Over HTTP on 127.0.0.1, with a real server on a free port.
pub struct Http {
    base: String,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Http {
    pub async fn start(app: axum::Router) -> Http {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(tandem_api::server::serve(listener, app, async move {
            let _ = rx.await;
        }));
        Http {
            base,
            client: reqwest::Client::new(),
            _shutdown: tx,
        }
    }
}

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test; its `host:port`.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(tandem_api::server::serve(
        listener,
        app,
        std::future::pending(),
    ));
    addr
}

impl Client for Http {
    fn send(&self, req: Req) -> BoxFut<'_, Resp> {
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
            let mut builder = self
                .client
                .request(method, format!("{}{}", self.base, req.path));
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            if let Some(body) = req.body {
                builder = builder.body(body);
            }
            let resp = builder.send().await.expect("request failed");
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let raw = resp.text().await.unwrap();
            Resp {
                status,
                headers,
                body: parse_body(&raw),
                raw,
            }
        })
    }
}

/// Lambda's limit on a synchronous invocation's response payload (6 MB).
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Through `lambda_http`'s adapter, as API Gateway HTTP API (payload 2.0) events.
pub struct Lambda {
    app: axum::Router,
}

impl Lambda {
    pub fn new(app: axum::Router) -> Lambda {
        Lambda { app }
    }

    /// The payload 2.0 event API Gateway would send for `req`.
    pub fn event(req: &Req) -> Value {
        let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        let headers: serde_json::Map<String, Value> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_lowercase(), Value::String(v.clone())))
            .collect();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": req.method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "tandem-tests"},
                "requestId": "req-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "27/Nov/2026:01:02:03 +0000",
                "timeEpoch": 1795741323000u64
            },
            "isBase64Encoded": false
        });
        if let Some(body) = &req.body {
            event["body"] =
                Value::String(String::from_utf8(body.clone()).expect("test bodies are UTF-8"));
        }
        event
    }

    /// Sends a raw event and returns API Gateway's view of the response (its JSON).
    pub async fn invoke(&self, event: Value) -> Value {
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        let adapter = lambda_http::Adapter::from(self.app.clone());
        let response = adapter
            .oneshot(lambda_http::LambdaEvent::new(
                request,
                lambda_http::Context::default(),
            ))
            .await
            .unwrap();
        // What the runtime posts back: Lambda refuses a response over 6 MB of it.
        let posted = serde_json::to_vec(&response).unwrap();
        assert!(
            posted.len() <= LAMBDA_RESPONSE_LIMIT,
            "a Lambda response of {} bytes",
            posted.len()
        );
        serde_json::to_value(&response).unwrap()
    }
}

impl Client for Lambda {
    fn send(&self, req: Req) -> BoxFut<'_, Resp> {
        Box::pin(async move {
            let out = self.invoke(Lambda::event(&req)).await;
            let status = out["statusCode"].as_u64().unwrap() as u16;
            let headers = out["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let raw = match out.get("body") {
                Some(Value::String(b)) if out["isBase64Encoded"] == json!(true) => {
                    use base64::Engine as _;
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap())
                        .unwrap()
                }
                Some(Value::String(b)) => b.clone(),
                _ => String::new(),
            };
            Resp {
                status,
                headers,
                body: parse_body(&raw),
                raw,
            }
        })
    }
}

/// A config with the given region and admin token.
pub fn config(region: &str, token: Option<&str>) -> Config {
    Config {
        region: region.into(),
        admin_token: token.map(Into::into),
        ..Default::default()
    }
}

/// DynamoDB on a [`Moto`] server.
pub trait MotoExt {
    /// A DynamoDB client for this server, with test credentials.
    fn client(&self) -> impl Future<Output = aws_sdk_dynamodb::Client>;

    /// Creates a table shaped like the one the templates deploy, and a store on it.
    fn store(&self, table: &str, region: &str) -> impl Future<Output = DynamoStore>;
}

impl MotoExt for Moto {
    async fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config("us-east-1").await)
    }

    async fn store(&self, table: &str, region: &str) -> DynamoStore {
        let client = self.client().await;
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        DynamoStore::new(client, table, region)
    }
}

/// A factory of routers over one store.
pub fn factory<S: tandem_api::store::Store + Clone>(store: S) -> Factory {
    Box::new(move |config| router(store.clone(), config))
}

/// Sends one request through a router directly, for tests that need no network.
pub async fn oneshot(
    app: axum::Router,
    req: http::Request<axum::body::Body>,
) -> http::Response<axum::body::Body> {
    app.oneshot(req).await.unwrap()
}
