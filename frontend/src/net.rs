//! The browser's side of HTTP: `fetch` on this origin only, timers and clocks.
//!
//! Every path here is relative, so no request (and no admin token) can leave the origin; the
//! CSP's `connect-src 'self'` would stop one anyway.

use tandem_shared::headers::{EDGE_ACTIVE, EDGE_FAILOVER, EDGE_ORIGIN, SERVED_REGION};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

/// One HTTP exchange's outcome.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// `None`: the browser got no HTTP answer.
    pub status: Option<u16>,
    pub region: Option<String>,
    pub edge_origin: Option<String>,
    pub edge_failover: Option<String>,
    /// `x-edge-active`: the active region the local edge routed `/api/*` by, when one is set.
    pub edge_active: Option<String>,
    /// The answer says `application/json`: how the console tells the local control API from
    /// CloudFront's console fallback, which answers `/_tandem/*` with index.html.
    pub json: bool,
    pub body: String,
    pub latency_ms: f64,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.body).ok()
    }

    /// `503`, or `network error`.
    pub fn status_text(&self) -> String {
        self.status
            .map_or_else(|| "network error".to_owned(), |s| s.to_string())
    }
}

/// The methods the console uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// A request to this origin, as the console makes it: `Call::get(path)`,
/// `Call::put(path, body).admin()`, … Only calls marked [`Call::admin`] carry the token.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    /// A JSON body.
    pub body: Option<&'a str>,
    /// Sent with the admin token (admin and control routes only).
    pub admin: bool,
    /// A version the write must find (`If-Match`).
    pub if_match: Option<u64>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a str, body: Option<&'a str>) -> Self {
        Call {
            method,
            path,
            body,
            admin: false,
            if_match: None,
        }
    }

    pub fn get(path: &'a str) -> Self {
        Call::new(Method::Get, path, None)
    }

    pub fn put(path: &'a str, body: &'a str) -> Self {
        Call::new(Method::Put, path, Some(body))
    }

    pub fn delete(path: &'a str) -> Self {
        Call::new(Method::Delete, path, None)
    }

    /// `method` with `body`, when a caller chooses the method.
    pub fn with(method: Method, path: &'a str, body: Option<&'a str>) -> Self {
        Call::new(method, path, body)
    }

    /// The same call with the admin token.
    pub fn admin(self) -> Self {
        Call {
            admin: true,
            ..self
        }
    }

    /// The same call, conditional on `version` when there is one.
    pub fn if_match(self, version: Option<u64>) -> Self {
        Call {
            if_match: version,
            ..self
        }
    }

    /// The same call to another path (a write resent to another region).
    pub fn to(self, path: &'a str) -> Self {
        Call { path, ..self }
    }
}

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// Milliseconds since the epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn monotonic_ms() -> f64 {
    window()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(promise).await;
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    js_sys::encode_uri_component(text).into()
}

/// Sends one request (with `token` when the call is an admin one) and reads the whole answer.
pub async fn fetch(call: Call<'_>, token: Option<&str>) -> Reply {
    let started = monotonic_ms();
    let mut reply = send(&call, token.filter(|_| call.admin))
        .await
        .unwrap_or_default();
    reply.latency_ms = monotonic_ms() - started;
    reply
}

async fn send(call: &Call<'_>, token: Option<&str>) -> Result<Reply, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method(call.method.as_str());
    init.set_cache(web_sys::RequestCache::NoStore);
    let headers = web_sys::Headers::new()?;
    if let Some(body) = call.body {
        headers.set("content-type", "application/json")?;
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(token) = token {
        headers.set("authorization", &format!("Bearer {token}"))?;
    }
    if let Some(version) = call.if_match {
        headers.set("if-match", &format!("\"{version}\""))?;
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(call.path, &init)?;
    let response: web_sys::Response = JsFuture::from(window().fetch_with_request(&request))
        .await?
        .dyn_into()?;
    let h = response.headers();
    let header = |name: &str| h.get(name).ok().flatten().filter(|v| !v.is_empty());
    let json = header("content-type").is_some_and(|v| v.contains("json"));
    let region = header(SERVED_REGION);
    let edge_origin = header(EDGE_ORIGIN);
    let edge_failover = header(EDGE_FAILOVER);
    let edge_active = header(EDGE_ACTIVE);
    let body = JsFuture::from(response.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    Ok(Reply {
        status: Some(response.status()),
        region,
        edge_origin,
        edge_failover,
        edge_active,
        json,
        body,
        latency_ms: 0.0,
    })
}

/// The page's URL fragment, and a way to clear it without a reload or a history entry.
pub fn take_fragment() -> String {
    let w = window();
    let hash = w.location().hash().unwrap_or_default();
    if !hash.is_empty()
        && let Ok(history) = w.history()
    {
        let location = w.location();
        let url = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
    }
    hash
}

fn session() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

pub fn session_get(key: &str) -> Option<String> {
    session()?.get_item(key).ok().flatten()
}

pub fn session_set(key: &str, value: Option<&str>) {
    if let Some(s) = session() {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}
