//! A member's `/_consensus/*` routes, signed like the replication routes (contract §9.3): Raft's
//! own messages from the other members, writes and read-index requests forwarded to the
//! leader, joins of a member that lost its disk, and the member's status (for the supervisor).

use super::node::{Handle, Proposal};
use super::path::{APPEND, JOIN, READ_INDEX, SNAPSHOT, STATUS, VOTE, WRITE};
use super::{Command, MAX_BODY, Settings, TypeConfig, members};
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

/// The running member, for a request from another member.
fn member(r: &Replicator, s: &Shared, peer: &Peer) -> Result<Arc<super::Node>, Response> {
    if peer.is_control() {
        return Err(r.error(ErrorCode::Forbidden, "only members send consensus messages"));
    }
    s.handle
        .get()
        .cloned()
        .map_err(|e| r.error(ErrorCode::RegionUnavailable, e.to_string()))
}

fn parse<T: DeserializeOwned>(r: &Replicator, peer: &Peer) -> Result<T, Response> {
    serde_json::from_slice(peer.body()).map_err(|e| {
        r.error(
            ErrorCode::BadRequest,
            format!("not a consensus message: {e}"),
        )
    })
}

async fn append(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match (
        member(&r, &s, &peer),
        parse::<AppendEntriesRequest<TypeConfig>>(&r, &peer),
    ) {
        (Ok(n), Ok(req)) => (n, req),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    peer.answer_json(&node.raft.append_entries(req).await)
}

async fn vote(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match (member(&r, &s, &peer), parse::<VoteRequest<u64>>(&r, &peer)) {
        (Ok(n), Ok(req)) => (n, req),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    peer.answer_json(&node.raft.vote(req).await)
}

async fn snapshot(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, req) = match (
        member(&r, &s, &peer),
        parse::<InstallSnapshotRequest<TypeConfig>>(&r, &peer),
    ) {
        (Ok(n), Ok(req)) => (n, req),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    peer.answer_json(&node.raft.install_snapshot(req).await)
}

/// A write a member forwards to this one, the leader. It is written in that member's name only.
async fn write(
    State(r): State<Replicator>,
    Extension(s): Extension<Shared>,
    peer: Peer,
) -> Response {
    let (node, cmd) = match (member(&r, &s, &peer), parse::<Command>(&r, &peer)) {
        (Ok(n), Ok(cmd)) => (n, cmd),
        (Err(e), _) | (_, Err(e)) => return e,
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
        Err(e) => return e,
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
    let (node, region) = match (member(&r, &s, &peer), parse::<String>(&r, &peer)) {
        (Ok(n), Ok(region)) => (n, region),
        (Err(e), _) | (_, Err(e)) => return e,
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
