//! The replication routes a region serves to its peers and to its supervisor (signed requests,
//! signed answers), and the proof that it is the region it claims to be.

use super::routes::{self, ChangesQuery, ItemsQuery};
use super::wire::{self, Frame, Key, SignedRequest};
use super::{BATCH, MAX_PULL_BYTES, ReplicationConfig, Replicator};
use axum::Router;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use std::time::Duration;
use tandem_shared::ErrorCode;
use tandem_shared::sync::{lock, write};

impl Replicator {
    /// The internal routes: `GET /_replication/{changes,items,digests}` for peers,
    /// `GET /_replication/status` and `PUT /_replication/config` for the supervisor (all
    /// signed), and `GET /_replication/proof` for anyone about to send this region a secret.
    pub fn router(&self) -> Router {
        Router::new()
            .route(routes::CHANGES, get(changes))
            .route(routes::ITEMS, get(items))
            .route(routes::DIGESTS, get(digests))
            .route(routes::STATUS, get(status))
            .route(routes::CONFIG, put(set_config))
            .route(routes::PROOF, get(prove))
            .layer(axum::middleware::from_fn_with_state(
                Some(std::sync::Arc::from(self.store.region())),
                tandem_api::middleware::error_bodies,
            ))
            .with_state(self.clone())
    }

    pub fn error(&self, code: ErrorCode, message: impl Into<String>) -> Response {
        tandem_api::error::respond(code, None, message, Some(self.store.region()))
    }
}

/// Largest body a signed request may carry (a replication config).
const MAX_SIGNED_BODY: usize = 64 * 1024;

/// A request signed by a configured peer or the supervisor, in this process's session and not
/// seen before ([`wire::Window`]); the answer is signed over its nonce. Its body is read up to
/// `MAX` bytes (a replication config by default; the consensus routes take more).
pub struct Signed<const MAX: usize = MAX_SIGNED_BODY> {
    pub identity: String,
    nonce: String,
    key: Key,
    body: bytes::Bytes,
}

impl<const MAX: usize> FromRequest<Replicator> for Signed<MAX> {
    type Rejection = Response;

    async fn from_request(req: Request, r: &Replicator) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let number = |name: &str| u64::from_str_radix(&header(name), 16).unwrap_or(0);
        let (identity, nonce, signature) = (
            header(wire::PEER_HEADER),
            header(wire::NONCE_HEADER),
            header(wire::SIGNATURE_HEADER),
        );
        let (boot, seq) = (number(wire::BOOT_HEADER), number(wire::SEQ_HEADER));
        let body = axum::body::to_bytes(body, MAX)
            .await
            .map_err(|_| r.error(ErrorCode::PayloadTooLarge, "signed bodies are small"))?;
        let known = identity == wire::CONTROL_IDENTITY
            || r.settings.peers.iter().any(|p| p.name == identity);
        let request = SignedRequest {
            identity: &identity,
            target: r.store.region(),
            boot,
            seq,
            nonce: &nonce,
            method: parts.method.as_str(),
            path_and_query: parts.uri.path_and_query().map_or("", |p| p.as_str()),
            body: &body,
        };
        let key = r.settings.key.clone();
        if !known || nonce.len() < 16 || !key.verify_request(&request, &signature) {
            tracing::warn!(peer = %identity, "refused an unsigned or forged replication request");
            return Err(r.refuse(&identity, "replication requests must be signed by a peer"));
        }
        if boot != r.boot {
            return Err(r.refuse(&identity, "signed for another run of this region"));
        }
        if !r.window_accepts(&identity, seq) {
            tracing::warn!(peer = %identity, seq, "refused a replayed replication request");
            return Err(r.refuse(&identity, "replayed, or too old a sequence number"));
        }
        Ok(Signed {
            identity,
            nonce,
            key,
            body,
        })
    }
}

impl Replicator {
    /// Takes `seq` from `identity` if this process has not seen it (see [`wire::Window`]).
    fn window_accepts(&self, identity: &str, seq: u64) -> bool {
        let mut windows = lock(&self.windows);
        windows.entry(identity.to_owned()).or_default().accept(seq)
    }

    /// 401, with what a requester needs to sign its next request for this process: the boot
    /// id, and the highest sequence number taken from it. Neither is secret: without the key
    /// they sign nothing.
    fn refuse(&self, identity: &str, why: &str) -> Response {
        let highest = lock(&self.windows).get(identity).map_or(0, |w| w.highest());
        let mut response = self.error(ErrorCode::Unauthorized, why);
        let headers = response.headers_mut();
        for (name, value) in [(wire::BOOT_HEADER, self.boot), (wire::SEQ_HEADER, highest)] {
            if let Ok(v) = http::HeaderValue::from_str(&format!("{value:x}")) {
                headers.insert(name, v);
            }
        }
        response
    }
}

impl<const MAX: usize> Signed<MAX> {
    fn signed(&self, content_type: &'static str, body: Vec<u8>) -> Response {
        let signature = self.key.sign_response(&self.nonce, &body);
        (
            [
                (http::header::CONTENT_TYPE, content_type.to_owned()),
                (
                    http::HeaderName::from_static(wire::SIGNATURE_HEADER),
                    signature,
                ),
            ],
            body,
        )
            .into_response()
    }

    fn answer(&self, frame: Frame) -> Response {
        self.signed(wire::CONTENT_TYPE, frame.encode())
    }

    pub fn answer_json(&self, value: &impl serde::Serialize) -> Response {
        self.signed(
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }

    pub fn is_control(&self) -> bool {
        self.identity == wire::CONTROL_IDENTITY
    }

    /// The request's body, as signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// `GET /_replication/proof` with a nonce: this region's name and the nonce, signed with the
/// key. No secret goes into it or comes out of it.
async fn prove(State(r): State<Replicator>, headers: HeaderMap) -> Response {
    let nonce = headers
        .get(wire::NONCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|n| (16..=128).contains(&n.len()));
    let Some(nonce) = nonce else {
        return r.error(
            ErrorCode::BadRequest,
            "a proof needs a nonce of 16 to 128 characters",
        );
    };
    let proof = r.settings.key.prove(r.store.region(), nonce);
    let mut response = http::StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = http::HeaderValue::from_str(&proof) {
        response.headers_mut().insert(wire::PROOF_HEADER, v);
    }
    response
}

/// Runs a store read off the async workers; a failure is a 503 (the peer retries).
async fn read<T: Send + 'static>(
    r: &Replicator,
    f: impl FnOnce(&tandem_api::store::embedded::EmbeddedStore) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let store = r.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(err)) => {
            tracing::error!(error = %format!("{err:#}"), "reading for a peer failed");
            Err(r.error(ErrorCode::RegionUnavailable, "the store could not be read"))
        }
        Err(err) => {
            tracing::error!(%err, "reading for a peer failed");
            Err(r.error(ErrorCode::RegionUnavailable, "the store could not be read"))
        }
    }
}

fn max_bytes(asked: Option<usize>) -> usize {
    asked.unwrap_or(MAX_PULL_BYTES).clamp(1, MAX_PULL_BYTES)
}

/// Longest long poll: well under the pulling client's timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

async fn changes(
    State(r): State<Replicator>,
    Query(q): Query<ChangesQuery>,
    peer: Signed,
) -> Response {
    // What the peer applied of this incarnation's outbox can be compacted here.
    if q.incarnation == r.store.incarnation() && !peer.is_control() {
        lock(&r.acked).insert(peer.identity.clone(), q.applied.unwrap_or(0).min(q.after));
    }
    // A limit of 0 asks only for the head (a paused link keeps its backlog figure true).
    let (limit, bytes) = (q.limit.unwrap_or(BATCH).min(BATCH), max_bytes(q.max_bytes));
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let mut commits = r.store.commits();
    commits.borrow_and_update();
    let mut page = read(&r, move |s| s.changes_since(q.after, limit, bytes)).await;
    let nothing_new = matches!(&page, Ok(p) if p.records.is_empty() && p.head <= q.after);
    if nothing_new && !wait.is_zero() && tokio::time::timeout(wait, commits.changed()).await.is_ok()
    {
        page = read(&r, move |s| s.changes_since(q.after, limit, bytes)).await;
    }
    match page {
        Ok(page) => peer.answer(Frame {
            incarnation: page.incarnation,
            head: page.head,
            floor: page.floor,
            through: page.through,
            next: None,
            entries: page.records,
        }),
        Err(resp) => resp,
    }
}

async fn items(State(r): State<Replicator>, Query(q): Query<ItemsQuery>, peer: Signed) -> Response {
    let bytes = max_bytes(q.max_bytes);
    let (buckets, after) = (q.buckets, q.after);
    match read(&r, move |s| s.items_page(after.as_deref(), buckets, bytes)).await {
        Ok(page) => peer.answer(Frame {
            incarnation: page.incarnation,
            head: page.head,
            next: page.next,
            entries: page.records.into_iter().map(|r| (0, r)).collect(),
            ..Frame::default()
        }),
        Err(resp) => resp,
    }
}

async fn digests(State(r): State<Replicator>, peer: Signed) -> Response {
    // Digests first, then the head: a write landing in between shows in the head, which the
    // peer then takes for a write in flight and compares later.
    match read(&r, |s| {
        let digests = s.digests()?;
        Ok((digests, s.outbox_head()?))
    })
    .await
    {
        Ok((digests, head)) => peer.answer(Frame {
            incarnation: r.store.incarnation(),
            head,
            entries: digests
                .into_iter()
                .enumerate()
                .map(|(i, d)| (i as u64, d.to_vec()))
                .collect(),
            ..Frame::default()
        }),
        Err(resp) => resp,
    }
}

/// `GET /_replication/status` (the supervisor, signed).
async fn status(State(r): State<Replicator>, caller: Signed) -> Response {
    match read(&r, {
        let r = r.clone();
        move |_| Ok(r.status(true))
    })
    .await
    {
        Ok(status) => caller.answer_json(&status),
        Err(resp) => resp,
    }
}

/// `PUT /_replication/config` (the supervisor only, signed).
async fn set_config(State(r): State<Replicator>, caller: Signed) -> Response {
    if !caller.is_control() {
        return r.error(ErrorCode::Forbidden, "only the supervisor sets replication");
    }
    let Ok(config) = serde_json::from_slice::<ReplicationConfig>(&caller.body) else {
        return r.error(
            ErrorCode::BadRequest,
            "body must be {\"paused\": bool, \"lag_ms\": n}",
        );
    };
    *write(&r.config) = config;
    tracing::info!(?config, "replication settings changed");
    caller.answer_json(&config)
}
