//! Signed requests to regions' replication routes, as one identity: a peer region's puller, or
//! the supervisor's control API. Each target region has a session here (its boot id, and the
//! next sequence number to use with it); a refusal that names another boot id or a higher
//! number (the region restarted, or this requester did) brings the session up to date and the
//! request is signed afresh once. Answers are checked against the key before anything is used.

use super::PullError;
use super::wire::{self, Frame, Key, SignedRequest};
use reqwest::Method;
use std::collections::HashMap;
use std::sync::Mutex;
use tandem_shared::sync::lock;

/// Most bytes of an answer read: one outbox page, plus one record past it, plus framing.
pub const MAX_ANSWER_BYTES: usize =
    super::MAX_PULL_BYTES + 2 * tandem_shared::validate::MAX_ITEM_BYTES + 64 * 1024;

/// A region to ask: its name (signed into every request) and base URL.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub region: &'a str,
    pub url: &'a str,
}

/// One region's session as this requester knows it.
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    boot: u64,
    next: u64,
}

/// A signing client for one identity.
pub struct SignedClient {
    http: reqwest::Client,
    key: Key,
    identity: String,
    sessions: Mutex<HashMap<String, Session>>,
}

/// A checked answer: its body, as signed.
pub struct Answer {
    pub body: Vec<u8>,
}

impl SignedClient {
    pub fn new(http: reqwest::Client, key: Key, identity: &str) -> SignedClient {
        SignedClient {
            http,
            key,
            identity: identity.to_owned(),
            sessions: Mutex::default(),
        }
    }

    /// GETs `path` from `target` and decodes the frame it answers.
    pub async fn frame(&self, target: Target<'_>, path: &str) -> Result<Frame, PullError> {
        let answer = self.send(target, Method::GET, path, Vec::new()).await?;
        Frame::decode(&answer.body).map_err(|e| PullError::Refused(e.to_string()))
    }

    /// Sends a request with a JSON body (or none) and decodes the JSON answer.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        target: Target<'_>,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T, PullError> {
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| PullError::Store(e.into()))?,
            None => Vec::new(),
        };
        let answer = self.send(target, method, path, body).await?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| PullError::Refused(format!("not the answer expected: {e}")))
    }

    /// The next sequence number for `url`, with the boot id it goes with.
    fn next(&self, url: &str) -> Session {
        let mut sessions = lock(&self.sessions);
        let session = sessions.entry(url.to_owned()).or_default();
        session.next = session.next.max(1);
        let taken = *session;
        session.next += 1;
        taken
    }

    /// Takes what a refusal says of the server's session: its boot id and the highest number it
    /// took from us. False when it says nothing new (then the refusal stands).
    fn catch_up(&self, url: &str, headers: &reqwest::header::HeaderMap) -> bool {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| u64::from_str_radix(v, 16).ok())
        };
        let (Some(boot), Some(highest)) = (number(wire::BOOT_HEADER), number(wire::SEQ_HEADER))
        else {
            return false;
        };
        let mut sessions = lock(&self.sessions);
        let session = sessions.entry(url.to_owned()).or_default();
        if session.boot == boot && session.next > highest {
            return false;
        }
        if session.boot != boot {
            session.boot = boot;
            session.next = highest + 1;
        } else {
            session.next = session.next.max(highest + 1);
        }
        true
    }

    async fn send(
        &self,
        target: Target<'_>,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Answer, PullError> {
        let mut refreshed = false;
        loop {
            let session = self.next(target.url);
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let signed = SignedRequest {
                identity: &self.identity,
                target: target.region,
                boot: session.boot,
                seq: session.next,
                nonce: &nonce,
                method: method.as_str(),
                path_and_query: path,
                body: &body,
            };
            let mut resp = self
                .http
                .request(method.clone(), format!("{}{path}", target.url))
                .header(wire::PEER_HEADER, &self.identity)
                .header(wire::NONCE_HEADER, &nonce)
                .header(wire::BOOT_HEADER, format!("{:x}", session.boot))
                .header(wire::SEQ_HEADER, format!("{:x}", session.next))
                .header(wire::SIGNATURE_HEADER, self.key.sign_request(&signed))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED
                && !refreshed
                && self.catch_up(target.url, resp.headers())
            {
                refreshed = true;
                continue;
            }
            if !resp.status().is_success() {
                return Err(PullError::Status(resp.status()));
            }
            let signature = resp
                .headers()
                .get(wire::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // A server cannot make this requester buffer more than one page's worth.
            let mut answer = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(PullError::Refused(format!(
                        "answer larger than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                answer.extend_from_slice(&chunk);
            }
            if !self.key.verify_response(&nonce, &answer, &signature) {
                return Err(PullError::Refused(
                    "answer not signed with the replication key".into(),
                ));
            }
            return Ok(Answer { body: answer });
        }
    }
}

/// Asks the process on `url` to prove it is region `region` (it holds the key): true only then.
/// Nothing secret is sent; the supervisor calls a region up only once this holds.
pub async fn prove(http: &reqwest::Client, key: &Key, region: &str, url: &str) -> bool {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let Ok(resp) = http
        .get(format!("{url}{}", super::routes::PROOF))
        .header(wire::NONCE_HEADER, &nonce)
        .send()
        .await
    else {
        return false;
    };
    resp.headers()
        .get(wire::PROOF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proof| key.verify_proof(region, &nonce, proof))
}
