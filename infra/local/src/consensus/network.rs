//! Raft's messages between members: each a signed POST to the target's `/_consensus/*` route,
//! answered with a signed JSON body, over the same signing client and replay window as
//! replication (contract §9.3): a process that took a member's port can neither forge nor
//! replay a vote or an append.
//!
//! A member may be given a delay per target (`--link-delay-ms REGION=MS`): each message it
//! sends there waits that long first, so a call's round trip costs at least the delay. It is
//! how the benchmarks put 65 ms between us-east-1 and us-west-2 on one machine.

use super::path;
use super::{Addressed, Member, Settings, TypeConfig};
use crate::replication::client::{SignedClient, Target};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

type NodeId = u64;

/// Makes a [`Link`] to each member openraft talks to.
pub struct Network {
    pub client: Arc<SignedClient>,
    pub settings: Arc<Settings>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Link;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Link {
        let url = self.settings.member(target).and_then(|p| p.url.clone());
        Link {
            client: self.client.clone(),
            target,
            region: node.region.clone(),
            url,
            delay: self
                .settings
                .delays
                .get(&node.region)
                .copied()
                .unwrap_or_default(),
        }
    }
}

/// The way to one member.
pub struct Link {
    client: Arc<SignedClient>,
    target: NodeId,
    region: String,
    url: Option<String>,
    delay: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

impl Link {
    /// POSTs `req` to `path` and reads the target's `Result`, within openraft's deadline.
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(url) = self.url.as_deref() else {
            let why = Failed(format!("no address for {}", self.region));
            return Err(RPCError::Unreachable(Unreachable::new(&why)));
        };
        let target = Target {
            region: &self.region,
            url,
        };
        let addressed = Addressed {
            to: self.target,
            message: req,
        };
        let sent = async {
            tokio::time::sleep(self.delay).await;
            let method = reqwest::Method::POST;
            self.client
                .json::<Result<Resp, RaftError<NodeId, E>>>(target, method, path, Some(&addressed))
                .await
        };
        match tokio::time::timeout(option.hard_ttl(), sent).await {
            Err(_) => {
                let why = Failed(format!(
                    "{} did not answer within {:?}",
                    self.region,
                    option.hard_ttl()
                ));
                Err(RPCError::Network(NetworkError::new(&why)))
            }
            // Refused connections and errors: openraft backs off before it tries again.
            Ok(Err(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Ok(Ok(Err(remote))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
            }
            Ok(Ok(Ok(answer))) => Ok(answer),
        }
    }
}

impl RaftNetwork<TypeConfig> for Link {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call(path::APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(path::SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call(path::VOTE, &rpc, &option).await
    }
}
