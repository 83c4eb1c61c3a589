//! A member's `/_consensus/*` routes, signed like the replication routes (contract §9.3): Raft's
//! own messages from the other members, writes and read-index requests forwarded to the
//! leader, joins of a member that lost its disk, and the member's status (for the supervisor).

use super::node::{Handle, Proposal};
use super::path::{APPEND, JOIN, READ_INDEX, SNAPSHOT, STATUS, VOTE, WRITE};
use super::{Addressed, Command, MAX_BODY, Settings, TypeConfig, members};
use crate::replication::{Replicator, Signed};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
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

/// The running member and the message a member sent it.
fn incoming<T: DeserializeOwned>(
    r: &Replicator,
    s: &Shared,
    peer: &Peer,
) -> Result<(Arc<super::Node>, T), Box<Response>> {
    let node = member(r, s, peer)?;
    let message = serde_json::from_slice(peer.body()).map_err(|e| {
        Box::new(r.error(
            ErrorCode::BadRequest,
            format!("not a consensus message: {e}"),
        ))
    })?;
    Ok((node, message))
}

/// The running member and one of Raft's messages for it: refused (503) when it was sent to
/// another node id, the one this member had before it lost its disk ([`Addressed`]).
fn raft_message<T: DeserializeOwned>(
    r: &Replicator,
    s: &Shared,
    peer: &Peer,
) -> Result<(Arc<super::Node>, T), Box<Response>> {
    let (node, addressed) = incoming::<Addressed<T>>(r, s, peer)?;
    if addressed.to != node.id {
        return Err(Box::new(r.error(
            ErrorCode::RegionUnavailable,
            format!(
                "this member is node {}, not node {}: it lost its disk and rejoined",
                node.id, addressed.to
            ),
        )));
    }
    Ok((node, addressed.message))
}

async fn append(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match raft_message::<AppendEntriesRequest<TypeConfig>>(&r, &s, &peer) {
        Ok(got) => got,
        Err(e) => return *e,
    };
    peer.answer_json(&node.raft.append_entries(req).await)
}

async fn vote(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match raft_message::<VoteRequest<u64>>(&r, &s, &peer) {
        Ok(got) => got,
        Err(e) => return *e,
    };
    peer.answer_json(&node.raft.vote(req).await)
}

async fn snapshot(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match raft_message::<InstallSnapshotRequest<TypeConfig>>(&r, &s, &peer) {
        Ok(got) => got,
        Err(e) => return *e,
    };
    peer.answer_json(&node.raft.install_snapshot(req).await)
}

/// A write a member forwards to this one, the leader. It is written in that member's name only.
async fn write(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, cmd) = match incoming::<Command>(&r, &s, &peer) {
        Ok(got) => got,
        Err(e) => return *e,
    };
    if cmd.region != peer.identity {
        return r.error(ErrorCode::Forbidden, "a member writes in its own name only");
    }
    let deadline = Instant::now() + super::REQUEST_TIMEOUT;
    let answer: Result<super::Applied, String> = match node.propose(cmd, deadline).await {
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
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, region) = match incoming::<String>(&r, &s, &peer) {
        Ok(got) => got,
        Err(e) => return *e,
    };
    if region != peer.identity {
        return r.error(ErrorCode::Forbidden, "a member joins in its own name only");
    }
    peer.answer_json(&members::admit(&node, &region).await)
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
