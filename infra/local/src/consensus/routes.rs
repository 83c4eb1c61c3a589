//! A member's `/_consensus/*` routes, signed like the replication routes (contract §9.3): Raft's
//! own messages from the other members, writes and read-index requests forwarded to the
//! leader, joins of a member that lost its disk, and the member's status (for the supervisor).

use super::node::{Handle, Proposal};
use super::path::{APPEND, JOIN, READ_INDEX, SNAPSHOT, STATUS, VOTE, WRITE};
use super::{Addressed, Command, MAX_BODY, Settings, TypeConfig, members};
use crate::replication::{Replicator, Signed};
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, RequestExt, Router};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tandem_shared::ErrorCode;
use tandem_shared::control::MemberStatus;
use tokio::time::Instant;

type Peer = Signed<MAX_BODY>;

/// What the routes share: the member (once it runs) and the stack's members.
#[derive(Clone)]
struct Shared {
    handle: Handle,
    settings: Arc<Settings>,
}

/// The consensus routes, signed with the replicator's key and replay windows.
pub fn router(replicator: &Replicator, handle: Handle, settings: Arc<Settings>) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .route(WRITE, post(write))
        .route(READ_INDEX, get(read_index))
        .route(JOIN, post(join))
        .route(STATUS, get(status))
        .layer(Extension(Shared { handle, settings }))
        .with_state(replicator.clone())
}

/// The running member, for a request from another member (an error answer otherwise).
fn member(r: &Replicator, s: &Shared, peer: &Peer) -> Result<Arc<super::Node>, Box<Response>> {
    if peer.is_control() {
        let refused = r.error(ErrorCode::Forbidden, "only members send consensus messages");
        return Err(Box::new(refused));
    }
    s.handle
        .get()
        .cloned()
        .map_err(|e| Box::new(r.error(ErrorCode::RegionUnavailable, e.to_string())))
}

/// A message a member sent this one, signed: the running member it is for, and the message.
/// A request that is not one is answered with the error instead.
struct Message<T> {
    node: Arc<super::Node>,
    body: T,
    peer: Peer,
}

impl<T: DeserializeOwned> FromRequest<Replicator> for Message<T> {
    type Rejection = Response;

    async fn from_request(mut req: Request, r: &Replicator) -> Result<Self, Response> {
        let Extension(s) = req
            .extract_parts::<Extension<Shared>>()
            .await
            .map_err(IntoResponse::into_response)?;
        let peer = Peer::from_request(req, r).await?;
        let node = member(r, &s, &peer).map_err(|e| *e)?;
        let body = serde_json::from_slice(peer.body()).map_err(|e| {
            r.error(
                ErrorCode::BadRequest,
                format!("not a consensus message: {e}"),
            )
        })?;
        Ok(Message { node, body, peer })
    }
}

impl<T> Message<Addressed<T>> {
    /// One of Raft's messages, with the member it is for: refused (503) when it was sent to
    /// another node id, the one this member had before it lost its disk ([`Addressed`]).
    fn for_this_node(self, r: &Replicator) -> Result<(Arc<super::Node>, T, Peer), Box<Response>> {
        if self.body.to != self.node.id {
            return Err(Box::new(r.error(
                ErrorCode::RegionUnavailable,
                format!(
                    "this member is node {}, not node {}: it lost its disk and rejoined",
                    self.node.id, self.body.to
                ),
            )));
        }
        Ok((self.node, self.body.message, self.peer))
    }
}

async fn append(
    State(r): State<Replicator>,
    m: Message<Addressed<AppendEntriesRequest<TypeConfig>>>,
) -> Response {
    match m.for_this_node(&r) {
        Ok((node, req, peer)) => peer.answer_json(&node.raft.append_entries(req).await),
        Err(refused) => *refused,
    }
}

async fn vote(State(r): State<Replicator>, m: Message<Addressed<VoteRequest<u64>>>) -> Response {
    match m.for_this_node(&r) {
        Ok((node, req, peer)) => peer.answer_json(&node.raft.vote(req).await),
        Err(refused) => *refused,
    }
}

async fn snapshot(
    State(r): State<Replicator>,
    m: Message<Addressed<InstallSnapshotRequest<TypeConfig>>>,
) -> Response {
    match m.for_this_node(&r) {
        Ok((node, req, peer)) => peer.answer_json(&node.raft.install_snapshot(req).await),
        Err(refused) => *refused,
    }
}

/// A write a member forwards to this one, the leader. It is written in that member's name only.
async fn write(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    Message { node, body, peer }: Message<Command>,
) -> Response {
    if body.region != peer.identity {
        return r.error(ErrorCode::Forbidden, "a member writes in its own name only");
    }
    let deadline = Instant::now() + super::REQUEST_TIMEOUT;
    let answer: Result<super::Applied, String> = match node.propose(body, deadline).await {
        Ok(applied) => Ok(applied),
        Err(Proposal::NotLeader(_)) => Err(format!("{} is not the leader", s.settings.region())),
        Err(Proposal::Failed(e)) => Err(e.to_string()),
    };
    peer.answer_json(&answer)
}

async fn read_index(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let node = match member(&r, &s, &peer) {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let answer = match node.leader() == Some(node.id) {
        true => node.read_index().await,
        false => Err(format!("{} is not the leader", s.settings.region())),
    };
    peer.answer_json(&answer)
}

/// `{"region"}` from the member itself: its new node id, as a learner (see [`members::admit`]).
async fn join(
    State(r): State<Replicator>,
    Message { node, body, peer }: Message<String>,
) -> Response {
    if body != peer.identity {
        return r.error(ErrorCode::Forbidden, "a member joins in its own name only");
    }
    peer.answer_json(&members::admit(&node, &body).await)
}

async fn status(Extension(s): Extension<Shared>, peer: Peer) -> Response {
    let status = match s.handle.get() {
        Ok(node) => node.status(),
        Err(e) => {
            let me = &s.settings.members[s.settings.me];
            MemberStatus {
                region: me.region.clone(),
                witness: me.witness,
                error: Some(e.to_string()),
                ..MemberStatus::default()
            }
        }
    };
    peer.answer_json(&status)
}
