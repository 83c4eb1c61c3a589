//! One running member of the log: how a write reaches the leader and is committed, how a read
//! is made linearizable, and what the member says of itself.
//!
//! Every strong request has one deadline ([`super::REQUEST_TIMEOUT`]) for everything it waits
//! on: a leader to appear, the commit, the forward to the leader, the read barrier. Past it the
//! answer is 503 ([`StoreError::NoQuorum`]), never a 2xx: a write that timed out was not
//! acknowledged (it may still be applied later, if it reached the log and a majority comes
//! back before another leader replaces the entry; a refused write that a leader without a
//! majority never appended is certainly not).

use super::log::LogStore;
use super::path;
use super::{Applied, Command, QUORUM_STALE, Raft, Settings, generation_of, index_of};
use crate::replication::client::{SignedClient, Target};
use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tandem_api::store::StoreError;
use tandem_shared::control::{MemberRole, MemberStatus};
use tandem_shared::sync::lock;
use tokio::time::Instant;

/// A member, once it has its node id and its Raft runs.
pub struct Node {
    pub raft: Raft,
    pub id: u64,
    pub settings: Arc<Settings>,
    client: Arc<SignedClient>,
    log: LogStore,
    /// The last stamp this member gave a write as leader: stamps never go back while it leads.
    last_stamp: Mutex<u64>,
}

/// The member as the routes and the store see it: set once its Raft runs (a member that lost
/// its disk waits for a node id from the leader first, and answers 503 meanwhile).
#[derive(Clone, Default)]
pub struct Handle(Arc<OnceLock<Arc<Node>>>);

impl Handle {
    pub fn get(&self) -> Result<&Arc<Node>, StoreError> {
        self.0
            .get()
            .ok_or_else(|| StoreError::NoQuorum("this member is still joining the log".into()))
    }

    pub fn set(&self, node: Arc<Node>) {
        let _ = self.0.set(node);
    }

    pub fn is_set(&self) -> bool {
        self.0.get().is_some()
    }
}

/// Why a proposal did not end in an answer.
pub enum Proposal {
    /// This member is not the leader (any more): the write goes to this one, if known.
    NotLeader(Option<u64>),
    Failed(StoreError),
}

fn no_quorum(why: impl Into<String>) -> StoreError {
    StoreError::NoQuorum(why.into())
}

impl Node {
    pub fn new(
        raft: Raft,
        id: u64,
        settings: Arc<Settings>,
        client: Arc<SignedClient>,
        log: LogStore,
    ) -> Node {
        Node {
            raft,
            id,
            settings,
            client,
            log,
            last_stamp: Mutex::new(0),
        }
    }

    /// The leader this member knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this member can take requests now: it knows a leader, and as the leader it has
    /// heard from a majority lately.
    pub fn serving(&self) -> Result<(), StoreError> {
        let m = self.raft.metrics().borrow().clone();
        match m.current_leader {
            None => Err(no_quorum("no leader is known (no majority reached)")),
            Some(l) if l == self.id => match m.millis_since_quorum_ack {
                Some(ms) if ms > QUORUM_STALE.as_millis() as u64 => Err(no_quorum(format!(
                    "the leader has not heard from a majority for {ms} ms"
                ))),
                _ => Ok(()),
            },
            Some(_) => Ok(()),
        }
    }

    /// Waits until a leader is known, until `deadline`.
    async fn wait_leader(&self, deadline: Instant) -> Option<u64> {
        if let Some(l) = self.leader() {
            return Some(l);
        }
        let wait = self
            .raft
            .wait(Some(deadline.saturating_duration_since(Instant::now())));
        let got = wait
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await;
        got.ok().and_then(|m| m.current_leader)
    }

    fn stamp(&self) -> u64 {
        let mut last = lock(&self.last_stamp);
        *last = tandem_api::store::now_ms().max(*last);
        *last
    }

    /// As the leader: stamps `cmd`, appends it and waits until a majority holds it and this
    /// member applied it, or `deadline`.
    pub async fn propose(&self, mut cmd: Command, deadline: Instant) -> Result<Applied, Proposal> {
        if self.leader() != Some(self.id) {
            return Err(Proposal::NotLeader(self.leader()));
        }
        // A leader cut off from the majority refuses at once instead of appending an entry
        // that cannot commit (and would wait out the deadline).
        self.serving().map_err(Proposal::Failed)?;
        cmd.stamp_ms = self.stamp();
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, self.raft.client_write(cmd)).await {
            Err(_) => Err(Proposal::Failed(no_quorum(format!(
                "the write was not committed by a majority within {:?}",
                super::REQUEST_TIMEOUT
            )))),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Proposal::NotLeader(f.leader_id))
            }
            Ok(Err(e)) => Err(Proposal::Failed(no_quorum(e.to_string()))),
        }
    }

    /// Commits `cmd` through the leader: this member, or the leader it forwards to over the
    /// peer link. Retries when the leader changes, until the deadline.
    pub async fn write(&self, cmd: Command) -> Result<Applied, StoreError> {
        let deadline = Instant::now() + super::REQUEST_TIMEOUT;
        let mut why = String::from("no leader is known");
        while Instant::now() < deadline {
            let Some(leader) = self.wait_leader(deadline).await else {
                break;
            };
            if leader == self.id {
                match self.propose(cmd.clone(), deadline).await {
                    Ok(applied) => return Ok(applied),
                    Err(Proposal::Failed(e)) => return Err(e),
                    Err(Proposal::NotLeader(_)) => continue,
                }
            }
            match self
                .ask::<Result<Applied, String>>(leader, path::WRITE, Some(&cmd), deadline)
                .await
            {
                Ok(Ok(applied)) => return Ok(applied),
                // The leader's own refusal (no majority there either, or it stepped down).
                Ok(Err(e)) | Err(e) => why = e,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(no_quorum(format!(
            "the write was not committed within {:?}: {why}",
            super::REQUEST_TIMEOUT
        )))
    }

    /// As the leader: the index a linearizable read must see applied (leadership confirmed by
    /// a majority's heartbeat answers first).
    pub async fn read_index(&self) -> Result<Option<u64>, String> {
        let asked = tokio::time::timeout(super::REQUEST_TIMEOUT, self.raft.get_read_log_id()).await;
        match asked {
            Ok(Ok((read, _applied))) => Ok(read.map(|l| l.index)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("leadership not confirmed by a majority in time".into()),
        }
    }

    /// Returns once a read of the local store is linearizable: everything committed before the
    /// read began is applied here. The leader confirms it still leads and names the index; a
    /// leader that changes meanwhile is asked again, until the deadline.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + super::REQUEST_TIMEOUT;
        let mut why = String::from("no leader is known");
        let index = loop {
            if Instant::now() >= deadline {
                return Err(no_quorum(format!(
                    "no read index within {:?}: {why}",
                    super::REQUEST_TIMEOUT
                )));
            }
            let Some(leader) = self.wait_leader(deadline).await else {
                continue;
            };
            let asked = match leader == self.id {
                true => self.serving().map_err(|e| e.to_string()),
                false => Ok(()),
            };
            let asked = match (asked, leader == self.id) {
                (Err(e), _) => Err(e),
                (Ok(()), true) => self.read_index().await,
                (Ok(()), false) => self
                    .ask::<Result<Option<u64>, String>>(
                        leader,
                        path::READ_INDEX,
                        None::<&()>,
                        deadline,
                    )
                    .await
                    .and_then(|r| r),
            };
            match asked {
                Ok(index) => break index,
                Err(e) => why = e,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let wait = self
            .raft
            .wait(Some(deadline.saturating_duration_since(Instant::now())));
        wait.applied_index_at_least(index, "a linearizable read")
            .await
            .map(drop)
            .map_err(|e| {
                no_quorum(format!(
                    "this member did not apply up to the read index in time: {e}"
                ))
            })
    }

    /// Sends a signed request to member `id` (after this link's delay), until `deadline`.
    pub async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        id: u64,
        path: &str,
        body: Option<&impl serde::Serialize>,
        deadline: Instant,
    ) -> Result<T, String> {
        let peer = self.settings.member(id).ok_or("no such member")?;
        let url = peer.url.as_deref().ok_or("no address for that member")?;
        let target = Target {
            region: &peer.region,
            url,
        };
        let delay = self
            .settings
            .delays
            .get(&peer.region)
            .copied()
            .unwrap_or_default();
        let method = match body {
            Some(_) => reqwest::Method::POST,
            None => reqwest::Method::GET,
        };
        let call = async {
            tokio::time::sleep(delay).await;
            self.client.json::<T>(target, method, path, body).await
        };
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(format!("{} did not answer: {e}", peer.region)),
            Err(_) => Err(format!("{} did not answer in time", peer.region)),
        }
    }

    /// What this member says of itself (`GET /_consensus/status`).
    pub fn status(&self) -> MemberStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voter = membership.voter_ids().any(|v| v == self.id);
        let me = &self.settings.members[self.settings.me];
        let role = match m.state {
            ServerState::Leader => MemberRole::Leader,
            ServerState::Candidate => MemberRole::Candidate,
            ServerState::Follower if voter => MemberRole::Follower,
            ServerState::Follower | ServerState::Learner => MemberRole::Learner,
            ServerState::Shutdown => MemberRole::Joining,
        };
        MemberStatus {
            region: me.region.clone(),
            node_id: self.id,
            generation: generation_of(self.id),
            witness: me.witness,
            role,
            voter,
            term: m.current_term,
            leader: m
                .current_leader
                .and_then(|l| self.settings.member(l))
                .map(|p| p.region.clone()),
            last_log_index: m.last_log_index,
            committed: self.log.committed().map(|l| l.index),
            applied: m.last_applied.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters: membership
                .voter_ids()
                .map(|v| self.settings.label(v))
                .collect(),
            quorum_ack_ms: m.millis_since_quorum_ack,
            error: self.serving().err().map(|e| e.to_string()),
        }
    }

    /// The index of this member in the stack.
    pub fn index(&self) -> usize {
        index_of(self.id)
    }
}
