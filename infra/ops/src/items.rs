//! One typed client of the item routes (contract §1–§4): `PUT`, `GET` and `DELETE`
//! `/api/items/{id}` and `GET /api/items`, through an edge (the local one, a CloudFront domain)
//! or straight to a region, and through the edge to one region only (`/region/<r>/api/…`).
//!
//! Every tool that reads or writes items (`tandem drill`, `chaos`, the bench, the deploy's
//! smoke checks, the tests' kit) goes through it: paths come from [`tandem_shared::wire::path`]
//! and bodies are the shared types, so no tool builds an item URL or reads an answer as a
//! tree of its own. An [`Answer`] is whatever the server said, error statuses included; only a
//! transport failure (no answer at all) is an error, [`NoAnswer`]. The client takes a
//! `reqwest::Client` its caller built, so timeouts, pools and TLS stay the caller's.

use crate::client::header_text;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MATCH};
use serde::Serialize;
use std::time::{Duration, Instant};
use tandem_shared::ErrorBody;
use tandem_shared::headers::{
    EDGE_ACTIVE, EDGE_FAILOVER, EDGE_ORIGIN, ORIGIN_VERIFY, SERVED_REGION,
};
use tandem_shared::item::Data;
use tandem_shared::wire::{ItemResponse, ListResponse, path};

/// A client of the item routes behind one base URL.
#[derive(Debug, Clone)]
pub struct ItemClient {
    http: reqwest::Client,
    base: String,
    /// Sent as `x-origin-verify`: a region refuses requests without it (contract §9), and only
    /// a caller that goes around the edge needs to send it.
    origin_secret: Option<String>,
    /// Every path goes to this region only, through the edge's `/region/<r>` prefix.
    region: Option<String>,
}

impl ItemClient {
    /// A client of `base` (`http://127.0.0.1:8080`, `https://<domain>`, a region's own URL) on
    /// `http`, whose settings (timeouts, pool, TLS) every request keeps.
    pub fn new(http: reqwest::Client, base: &str) -> ItemClient {
        ItemClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            origin_secret: None,
            region: None,
        }
    }

    /// The same client, sending `secret` as `x-origin-verify`, as the edge does: for a base that
    /// is a region itself.
    pub fn with_origin_secret(mut self, secret: &str) -> ItemClient {
        self.origin_secret = Some(secret.to_owned());
        self
    }

    /// The same client, its requests sent through the edge to `region` only
    /// (`/region/<region>/api/…`, contract §6.1: no failover).
    pub fn in_region(&self, region: &str) -> ItemClient {
        ItemClient {
            region: Some(region.to_owned()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The region every request goes to through the edge, when one was set ([`Self::in_region`]).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// `PUT /api/items/{id}` with `{"data": data}`, on condition of `if_match` when given
    /// (contract §3): 201 created, 200 replaced, with the stored item.
    pub async fn put(
        &self,
        id: &str,
        data: &Data,
        if_match: Option<&str>,
    ) -> Result<Answer<ItemResponse>, NoAnswer> {
        // `PutBody`'s wire form, borrowing the data: the same bytes without a copy of them.
        #[derive(Serialize)]
        struct Put<'a> {
            data: &'a Data,
        }
        let request = self.http.put(self.url(&path::item(id))).json(&Put { data });
        self.send(if_matching(request, if_match), decode).await
    }

    /// `GET /api/items/{id}`: 200 with the item, 404 when absent.
    pub async fn get(&self, id: &str) -> Result<Answer<ItemResponse>, NoAnswer> {
        let request = self.http.get(self.url(&path::item(id)));
        self.send(request, decode).await
    }

    /// `DELETE /api/items/{id}`, on condition of `if_match` when given: 204, also when absent
    /// unless `if_match` is sent (then 412).
    pub async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<Answer<()>, NoAnswer> {
        let request = self.http.delete(self.url(&path::item(id)));
        self.send(if_matching(request, if_match), |_| Ok(())).await
    }

    /// `GET /api/items?limit=&cursor=`: one page (the API's default size without `limit`).
    pub async fn list(
        &self,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Answer<ListResponse>, NoAnswer> {
        let request = self.http.get(self.url(&path::list(limit, cursor)));
        self.send(request, decode).await
    }

    fn url(&self, path: &str) -> String {
        match &self.region {
            Some(region) => format!("{}{}", self.base, path::in_region(region, path)),
            None => format!("{}{path}", self.base),
        }
    }

    /// Sends `request` and reads the answer to its end; `ok` decodes a 2xx body. The latency
    /// stops when the body is in, before it is decoded: what a timed caller measured before.
    async fn send<T>(
        &self,
        mut request: reqwest::RequestBuilder,
        ok: fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<Answer<T>, NoAnswer> {
        if let Some(secret) = &self.origin_secret {
            request = request.header(ORIGIN_VERIFY, secret);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|error| NoAnswer {
            error,
            latency: started.elapsed(),
        })?;
        let status = response.status();
        let header = |name| header_text(&response, name);
        let served_region = header(SERVED_REGION);
        let etag = header(ETAG.as_str());
        let edge = Edge {
            origin: header(EDGE_ORIGIN),
            failover: header(EDGE_FAILOVER),
            active: header(EDGE_ACTIVE),
        };
        // A body cut off half-way still leaves the status, as every tool counted it before.
        let bytes = response.bytes().await.unwrap_or_default();
        let latency = started.elapsed();
        let decoded = if status.is_success() {
            ok(&bytes).map(Body::Ok)
        } else {
            serde_json::from_slice(&bytes).map(Body::Error)
        };
        let body = decoded.unwrap_or_else(|_| Body::Other(String::from_utf8_lossy(&bytes).into()));
        Ok(Answer {
            status,
            served_region,
            etag,
            edge,
            latency,
            body,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(bytes)
}

fn if_matching(
    request: reqwest::RequestBuilder,
    if_match: Option<&str>,
) -> reqwest::RequestBuilder {
    match if_match {
        Some(tags) => request.header(IF_MATCH, tags),
        None => request,
    }
}

/// What a server answered to one request.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub status: StatusCode,
    /// `x-served-region`: the region whose API answered (none from the edge's own errors).
    pub served_region: Option<String>,
    /// The item's ETag (PUT and GET answers, contract §3).
    pub etag: Option<String>,
    /// What the local edge says it did (CloudFront says nothing: all `None` there).
    pub edge: Edge,
    /// From sending the request to the end of the answer's body.
    pub latency: Duration,
    pub body: Body<T>,
}

impl<T> Answer<T> {
    /// A 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body of a 2xx answer, as the route documents it.
    pub fn ok(&self) -> Option<&T> {
        match &self.body {
            Body::Ok(body) => Some(body),
            _ => None,
        }
    }

    /// [`Self::ok`], taken.
    pub fn into_ok(self) -> Option<T> {
        match self.body {
            Body::Ok(body) => Some(body),
            _ => None,
        }
    }

    /// The error body of an error answer (contract §4).
    pub fn error(&self) -> Option<&ErrorBody> {
        match &self.body {
            Body::Error(body) => Some(body),
            _ => None,
        }
    }
}

/// The local edge's own headers (contract §6.2); clients must not depend on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edge {
    /// `x-edge-origin`: the region whose origin answered.
    pub origin: Option<String>,
    /// `x-edge-failover`: why the edge failed over (`status-503`, `connect`, `timeout`, …).
    pub failover: Option<String>,
    /// `x-edge-active`: the active region when the edge routed the request (contract §6.3).
    pub active: Option<String>,
}

/// An answer's body, decoded as the status says it should be.
#[derive(Debug, Clone)]
pub enum Body<T> {
    /// A 2xx answer's body, as the route documents it (`()` for a delete).
    Ok(T),
    /// An error answer's body (contract §4).
    Error(ErrorBody),
    /// Anything else, as text: a body that is not what the status promises (a proxy's page, a
    /// stand-in's partial item), or none at all.
    Other(String),
}

/// No answer: the request was not sent, or no answer's head came back (refused, reset, timed
/// out). The write it carried may or may not have been applied.
#[derive(Debug)]
pub struct NoAnswer {
    pub error: reqwest::Error,
    /// From sending until the failure was known.
    pub latency: Duration,
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer after {:?}: {}", self.latency, self.error)
    }
}

impl std::error::Error for NoAnswer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_path_builder() {
        let http = reqwest::Client::new();
        let edge = ItemClient::new(http, "http://127.0.0.1:8080/");
        assert_eq!(
            edge.url(&path::item("a")),
            "http://127.0.0.1:8080/api/items/a"
        );
        let west = edge.in_region("us-west-2");
        assert_eq!(
            west.url(&path::list(Some(3), None)),
            "http://127.0.0.1:8080/region/us-west-2/api/items?limit=3"
        );
        assert_eq!(west.region(), Some("us-west-2"));
        assert_eq!(edge.region(), None, "in_region makes a new client");
    }

    const ITEM: &str = r#"{"item":{"id":"a","data":{"v":1},"version":2,"updated_at":"2026-01-01T00:00:00.000Z","updated_in":"us-east-1"},"region":"us-east-1"}"#;
    const ERROR: &str =
        r#"{"error":{"code":"not_found","message":"no item b"},"region":"us-west-2"}"#;

    /// A server that answers each request from its first line, and hands the request heads it
    /// read to the test.
    async fn canned() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = conn.read(&mut buf).await.unwrap();
                    head.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8(head).unwrap();
                let line = head.lines().next().unwrap().to_owned();
                let (status, extra, body) = match line.as_str() {
                    "GET /api/items/a HTTP/1.1" => (
                        "200 OK",
                        "x-served-region: us-east-1\r\netag: \"2.us-east-1.1\"\r\nx-edge-origin: us-east-1\r\nx-edge-failover: status-503\r\n",
                        ITEM,
                    ),
                    "GET /region/us-west-2/api/items/b HTTP/1.1" => {
                        ("404 Not Found", "x-served-region: us-west-2\r\n", ERROR)
                    }
                    "PUT /api/items/a HTTP/1.1" => ("201 Created", "", ITEM),
                    "DELETE /api/items/a HTTP/1.1" => ("204 No Content", "", ""),
                    _ => ("200 OK", "", "<html>a proxy's page</html>"),
                };
                heads.send(head).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (base, seen)
    }

    #[tokio::test]
    async fn answers_are_decoded_as_their_status_says() {
        let (base, mut seen) = canned().await;
        let items = ItemClient::new(reqwest::Client::new(), &base).with_origin_secret("s3cret");

        let got = items.get("a").await.unwrap();
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.ok().map(|r| r.item.version), Some(2));
        assert_eq!(got.served_region.as_deref(), Some("us-east-1"));
        assert_eq!(got.etag.as_deref(), Some("\"2.us-east-1.1\""));
        assert_eq!(got.edge.origin.as_deref(), Some("us-east-1"));
        assert_eq!(got.edge.failover.as_deref(), Some("status-503"));
        assert_eq!(got.edge.active, None);
        assert!(
            seen.recv()
                .await
                .unwrap()
                .contains("x-origin-verify: s3cret")
        );

        let missing = items.in_region("us-west-2").get("b").await.unwrap();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing.error().map(|e| e.error.message.as_str()),
            Some("no item b")
        );
        seen.recv().await.unwrap();

        let data = Data::from_iter([("v".to_owned(), 1.into())]);
        let put = items.put("a", &data, Some("*")).await.unwrap();
        assert_eq!(put.status, StatusCode::CREATED);
        assert!(put.ok().is_some());
        let head = seen.recv().await.unwrap();
        assert!(head.contains("if-match: *"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");

        let deleted = items.delete("a", None).await.unwrap();
        assert!(deleted.is_success() && deleted.ok().is_some());
        assert!(!seen.recv().await.unwrap().contains("if-match"));

        let page = items.list(Some(2), None).await.unwrap();
        assert!(
            page.is_success() && page.ok().is_none(),
            "a page that is not a list"
        );
        assert!(matches!(&page.body, Body::Other(text) if text.contains("proxy")));
        assert!(
            seen.recv()
                .await
                .unwrap()
                .starts_with("GET /api/items?limit=2 ")
        );
    }

    #[tokio::test]
    async fn no_answer_is_not_a_status() {
        // A port just freed: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let items = ItemClient::new(reqwest::Client::new(), &base);
        let failed = items.get("a").await.unwrap_err();
        assert!(failed.error.is_connect(), "{failed}");
    }
}
