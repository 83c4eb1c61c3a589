//! The stack these tests run: `tandem` up through the test kit.

#![allow(dead_code, unused_imports)]

pub use tandem_testkit::stack::{Binary, EAST, READ_TIMEOUT, SECRET, TOKEN, WEST, header};

/// The binary under test.
pub struct Tandem;

impl Binary for Tandem {
    const EXE: &'static str = env!("CARGO_BIN_EXE_tandem");
}

/// The binary's path, for tests that run its other commands.
pub const EXE: &str = Tandem::EXE;

/// A stack of `tandem`, with the test kit's helpers.
pub type Stack = tandem_testkit::stack::TestStack<Tandem>;

/// An edge in front of the stack's edge at `edge` that passes every request on, but marks
/// every `/api/*` answer's `x-tandem-active-region` with `mark`: `none` is an edge whose router
/// does not read the active region (a broken KeyValueStore association on AWS) while the store,
/// behind the control API, holds one; `none; failover=off` a router that fell back. Its base
/// URL.
pub async fn marking_edge(edge: &str, mark: &'static str) -> String {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    async fn pass(
        State((edge, mark)): State<(String, &'static str)>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = reqwest::Client::new().request(method, format!("{edge}{uri}"));
        for (name, value) in &headers {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let answer = request.body(body).send().await.unwrap();
        let status = answer.status();
        let mut headers = answer.headers().clone();
        headers.remove("transfer-encoding");
        headers.remove("content-length");
        if uri.path().starts_with("/api/") {
            let mark = mark.parse().unwrap();
            headers.insert(tandem_shared::headers::ACTIVE_REGION, mark);
        }
        (status, headers, answer.bytes().await.unwrap())
    }
    let app = axum::Router::new()
        .fallback(pass)
        .with_state((edge.to_owned(), mark));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}
