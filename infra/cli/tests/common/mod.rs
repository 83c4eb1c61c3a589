//! The stack these tests run: `tandem` up through the test kit.

#![allow(dead_code, unused_imports)]

pub use tandem_testkit::stack::{Binary, EAST, READ_TIMEOUT, SECRET, TOKEN, WEST, header};

tandem_testkit::binary_under_test!(Tandem, env!("CARGO_BIN_EXE_tandem"));

/// The first page of items (up to 100) through the stack's edge, as JSON.
pub async fn first_page(stack: &Stack) -> serde_json::Value {
    let page = stack
        .edge(reqwest::Method::GET, "/api/items?limit=100", None)
        .await;
    page.json().await.expect("a page of items")
}

/// The failover drill's steps (`tandem status --prove`, the end of `tandem deploy`), in the order
/// it runs them, on a stack whose primary is [`EAST`].
pub fn drill_steps() -> [String; 13] {
    [
        "write through /api/*".to_owned(),
        format!("replicated to {WEST}"),
        format!("origin cloaking {EAST}"),
        format!("origin cloaking {WEST}"),
        format!("fault {EAST}"),
        "write before the switch".to_owned(),
        format!("switch to {WEST}"),
        "write after the switch".to_owned(),
        "reads during the fault".to_owned(),
        format!("heal {EAST}"),
        "fail back".to_owned(),
        format!("replicated to {EAST}"),
        "clean up".to_owned(),
    ]
}

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
