//! Who the members are: the cluster formed at the stack's first start, and a member that lost
//! its disk coming back.
//!
//! Raft's safety rests on a voter remembering its votes and its log. A member whose disk is gone
//! remembers neither, so it must not vote under its old node id: it asks the leader for a new
//! one (its generation plus one), is added as a learner under it, catches up (from the log, or
//! from a snapshot when the log behind it was purged), and only then does the leader swap it
//! into the voter set in place of its old id (a joint-consensus membership change). Until the
//! swap the old id still counts as a voter that never answers: the two others are the majority.

use super::log::LogStore;
use super::node::{Handle, Node};
use super::state::StateMachine;
use super::{Member, Settings, generation_of, index_of, node_id, path};
use crate::replication::client::SignedClient;
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tandem_api::store::embedded::{DB_FILE, EmbeddedStore};

/// How often a member without an id asks for one, and how often the leader looks for
/// learners to promote.
const JOIN_EVERY: Duration = Duration::from_millis(200);
const PROMOTE_EVERY: Duration = Duration::from_millis(300);
/// A learner this close to the leader's last entry is caught up.
const CAUGHT_UP: u64 = 16;

/// Opens the member's log. A member with no node id on a stack that is not new lost its disk:
/// whatever store file is left is dropped too, since the leader sends the whole state again
/// and an entry applied twice would count its versions twice.
pub fn open_log(dir: &Path, settings: &Settings) -> anyhow::Result<LogStore> {
    let log = LogStore::open(dir)?;
    if log.node_id()?.is_none() && !settings.new_cluster {
        let db = dir.join(DB_FILE);
        if db.exists() {
            tracing::warn!(path = %db.display(), "no consensus log here: dropping the store, the leader sends the state again");
            std::fs::remove_file(&db)?;
        }
    }
    Ok(log)
}

/// Starts the member: its node id (kept, the first generation at the stack's first start, or a
/// new one from the leader), its Raft, the cluster at first start, and the promotions.
pub async fn start(
    settings: Arc<Settings>,
    log: LogStore,
    store: EmbeddedStore,
    client: Arc<SignedClient>,
    handle: Handle,
) -> anyhow::Result<()> {
    let id = match log.node_id()? {
        Some(id) => id,
        None => {
            let id = match settings.new_cluster {
                true => node_id(settings.me, 0),
                false => ask_for_id(&settings, &client).await,
            };
            log.set_node_id(id).await?;
            id
        }
    };
    let network = super::network::Network {
        client: client.clone(),
        settings: settings.clone(),
    };
    let config = Arc::new(settings.raft_config()?);
    let sm = StateMachine::open(store)?;
    let raft = openraft::Raft::new(id, config, network, log.clone(), sm).await?;
    if settings.new_cluster {
        tokio::spawn(form(raft.clone(), settings.clone()));
    }
    let node = Arc::new(Node::new(raft, id, settings.clone(), client, log));
    handle.set(node.clone());
    tracing::info!(
        region = settings.region(),
        id,
        generation = generation_of(id),
        "member of the consensus log"
    );
    tokio::spawn(promote(node));
    Ok(())
}

/// At the stack's first start: the first member forms the cluster of every member's first
/// generation at once. Any other does the same only if, a few elections later, nothing has
/// reached it (the first member did not start): forming the same cluster twice is safe, and
/// waiting spares the start a duel of candidates.
async fn form(raft: super::Raft, settings: Arc<Settings>) {
    if settings.me != 0 {
        tokio::time::sleep(Duration::from_millis(4 * super::ELECTION_TIMEOUT_MS.1)).await;
        if raft.metrics().borrow().last_log_index.is_some() {
            return;
        }
    }
    let all: BTreeMap<u64, Member> = settings
        .members
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                node_id(i, 0),
                Member {
                    region: p.region.clone(),
                    witness: p.witness,
                },
            )
        })
        .collect();
    if let Err(e) = raft.initialize(all).await {
        tracing::debug!(%e, "the cluster was already formed");
    }
}

/// Asks each other member in turn until the leader gives this member a node id.
async fn ask_for_id(settings: &Settings, client: &Arc<SignedClient>) -> u64 {
    let region = settings.region().to_owned();
    loop {
        for peer in settings.members.iter().filter(|p| p.region != region) {
            let Some(url) = peer.url.as_deref() else {
                continue;
            };
            let target = crate::replication::client::Target {
                region: &peer.region,
                url,
            };
            let asked = client
                .json::<Result<u64, String>>(
                    target,
                    reqwest::Method::POST,
                    path::JOIN,
                    Some(&region),
                )
                .await;
            match asked {
                Ok(Ok(id)) => {
                    tracing::warn!(%region, id, generation = generation_of(id), "lost disk: rejoining the consensus log under a new node id");
                    return id;
                }
                Ok(Err(why)) => {
                    tracing::debug!(peer = %peer.region, %why, "no node id from this member")
                }
                Err(e) => tracing::debug!(peer = %peer.region, %e, "no node id from this member"),
            }
        }
        tokio::time::sleep(JOIN_EVERY).await;
    }
}

/// As the leader: gives the member of `region` a node id of the next generation and adds it as
/// a learner. Asked twice (the member crashed before keeping its id), it gives yet another; the
/// stale learner is removed by [`promote`].
pub async fn admit(node: &Node, region: &str) -> Result<u64, String> {
    if node.leader() != Some(node.id) {
        return Err(format!("{} is not the leader", node.settings.region()));
    }
    let index = node
        .settings
        .members
        .iter()
        .position(|p| p.region == region)
        .ok_or_else(|| format!("{region} is no member of this stack"))?;
    let membership = node.raft.metrics().borrow().membership_config.clone();
    let newest = membership
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| index_of(*id) == index)
        .map(generation_of)
        .max()
        .unwrap_or(0);
    let id = node_id(index, newest + 1);
    let member = Member {
        region: region.to_owned(),
        witness: node.settings.members[index].witness,
    };
    let added = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        node.raft.add_learner(id, member, false),
    )
    .await;
    match added {
        Ok(Ok(_)) => Ok(id),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the learner was not added in time".into()),
    }
}

/// As the leader, forever: swaps each caught-up learner into the voter set in place of the
/// older ids of its member, and removes learners a newer generation replaced.
async fn promote(node: Arc<Node>) {
    loop {
        tokio::time::sleep(PROMOTE_EVERY).await;
        let Some(change) = next_change(&node) else {
            continue;
        };
        let done = tokio::time::timeout(
            super::REQUEST_TIMEOUT,
            node.raft.change_membership(change.clone(), false),
        )
        .await;
        match done {
            Ok(Ok(_)) => tracing::warn!(?change, "membership changed"),
            Ok(Err(e)) => tracing::debug!(%e, "membership not changed"),
            Err(_) => tracing::debug!("membership change not committed in time"),
        }
    }
}

/// The membership change the leader should make now, if any.
fn next_change(node: &Node) -> Option<ChangeMembers<u64, Member>> {
    let m = node.raft.metrics().borrow().clone();
    if m.current_leader != Some(node.id) {
        return None;
    }
    let membership = m.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return None; // a change is under way
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let ids: Vec<u64> = membership.nodes().map(|(id, _)| *id).collect();
    let newest = |index: usize| {
        ids.iter()
            .copied()
            .filter(|id| index_of(*id) == index)
            .max_by_key(|id| generation_of(*id))
    };
    let last = m.last_log_index.unwrap_or(0);
    for learner in membership.learner_ids() {
        if newest(index_of(learner)) != Some(learner) {
            return Some(ChangeMembers::RemoveNodes(BTreeSet::from([learner])));
        }
        let matched = m
            .replication
            .as_ref()
            .and_then(|r| r.get(&learner).cloned().flatten());
        if matched.is_some_and(|l| l.index + CAUGHT_UP >= last) {
            let mut new: BTreeSet<u64> = voters
                .iter()
                .copied()
                .filter(|v| index_of(*v) != index_of(learner))
                .collect();
            new.insert(learner);
            return Some(ChangeMembers::ReplaceAllVoters(new));
        }
    }
    None
}
