//! The state machine: the member's [`EmbeddedStore`], which applies each committed entry in
//! log order, and its snapshots.
//!
//! A batch of entries is applied in one durable transaction together with the position it
//! brings the store to (the last applied log id and the membership), so the store never claims
//! a position it does not hold. The store is durable, so a snapshot needs no file of its own:
//! building one only records where the state is (openraft then purges the log behind it), and
//! the state itself is read, in one read transaction with its position, when a member that fell
//! behind the purged log needs it. That read is the whole state, every record's stored JSON on
//! a line: a snapshot costs the state's size in memory on the leader while it is sent, and on
//! the receiver while it arrives and is installed (about twice there: the bytes, then the
//! records). The receiver replaces its whole store with it in one transaction.

use super::{Applied, Member, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tandem_api::store::StoreError;
use tandem_api::store::embedded::{Decided, DecidedOutcome, EmbeddedStore};

type NodeId = u64;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// Where the state is, kept by the store with the records ([`EmbeddedStore::apply_decided`]).
const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";

fn sm_error(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        AnyError::error(format!("{e:#}")),
    )
    .into()
}

/// The state machine of one member.
pub struct StateMachine {
    store: EmbeddedStore,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Member>,
    /// Whether openraft has asked for the current snapshot yet: it does once at start, for its
    /// position only, and the whole state is not read for that.
    asked: bool,
    /// Makes snapshot ids unique within this process.
    builds: Arc<AtomicU64>,
}

impl StateMachine {
    /// The state machine over `store`, at the position the store holds.
    pub fn open(store: EmbeddedStore) -> anyhow::Result<StateMachine> {
        let read = |key| -> anyhow::Result<Option<Vec<u8>>> { store.consensus_meta(key) };
        let applied = match read(APPLIED)? {
            Some(b) => serde_json::from_slice(&b)?,
            None => None,
        };
        let membership = match read(MEMBERSHIP)? {
            Some(b) => serde_json::from_slice(&b)?,
            None => StoredMembership::default(),
        };
        Ok(StateMachine {
            store,
            applied,
            membership,
            asked: false,
            builds: Arc::default(),
        })
    }

    fn meta(
        applied: &Option<LogId<NodeId>>,
        membership: &StoredMembership<NodeId, Member>,
    ) -> anyhow::Result<[(&'static str, Vec<u8>); 2]> {
        Ok([
            (APPLIED, serde_json::to_vec(applied)?),
            (MEMBERSHIP, serde_json::to_vec(membership)?),
        ])
    }

    fn snapshot_meta(&self) -> SnapshotMeta<NodeId, Member> {
        let n = self.builds.fetch_add(1, Ordering::Relaxed);
        let at = self.applied.map_or("none".to_owned(), |l| {
            format!("{}-{}", l.leader_id, l.index)
        });
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{at}-{}-{n}", std::process::id()),
        }
    }
}

/// What applying one entry asks of the store: a write, or nothing.
fn decided(payload: &EntryPayload<TypeConfig>) -> Option<Decided> {
    match payload {
        EntryPayload::Normal(cmd) => Some(cmd.clone()),
        _ => None,
    }
}

/// The answer for a write's outcome.
pub fn answer(outcome: DecidedOutcome) -> Applied {
    match outcome {
        Ok(Some((record, replaced))) => Applied::Written { record, replaced },
        Ok(None) => Applied::Nothing,
        Err(StoreError::PreconditionFailed) => Applied::PreconditionFailed,
        Err(StoreError::TooLarge(n)) => Applied::TooLarge(n),
        // apply_decided answers only those; anything else failed the whole batch.
        Err(_) => Applied::Nothing,
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let (mut applied, mut membership) = (self.applied, self.membership.clone());
        let mut writes = Vec::new();
        // Which entries are writes: their outcomes come back in the same order.
        let mut is_write = Vec::new();
        for entry in entries {
            applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = &entry.payload {
                membership = StoredMembership::new(Some(entry.log_id), m.clone());
            }
            let write = decided(&entry.payload);
            is_write.push(write.is_some());
            writes.extend(write);
        }
        let meta = Self::meta(&applied, &membership).map_err(|e| sm_error(ErrorVerb::Write, e))?;
        let store = self.store.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            let meta: Vec<(&str, &[u8])> = meta.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            store.apply_decided(writes, &meta)
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
        .map_err(|e| sm_error(ErrorVerb::Write, e))?;
        (self.applied, self.membership) = (applied, membership);
        let mut outcomes = outcomes.into_iter();
        Ok(is_write
            .into_iter()
            .map(|w| match w {
                true => outcomes.next().map_or(Applied::Nothing, answer),
                false => Applied::Nothing,
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            meta: self.snapshot_meta(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let lines = snapshot.into_inner();
        let kv = Self::meta(&meta.last_log_id, &meta.last_membership)
            .map_err(|e| sm_error(ErrorVerb::Write, e))?;
        let store = self.store.clone();
        let installed = tokio::task::spawn_blocking(move || {
            let kv: Vec<(&str, &[u8])> = kv.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            store.import(&lines, &kv)
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
        .map_err(|e| sm_error(ErrorVerb::Write, e))?;
        tracing::info!(records = installed, snapshot = %meta.snapshot_id, "installed a snapshot from the leader");
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        // openraft asks once at start, for the position only (`get_initial_state`): the whole
        // state is not read for that. Every later ask is a member to be sent the state.
        let at_start = !std::mem::replace(&mut self.asked, true);
        if self.applied.is_none() {
            return Ok(None);
        }
        let meta = self.snapshot_meta();
        if at_start {
            return Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(Vec::new())),
            }));
        }
        // Apply runs on this same task, so nothing moves the state while it is read.
        let store = self.store.clone();
        let lines = tokio::task::spawn_blocking(move || store.export())
            .await
            .map_err(|e| sm_error(ErrorVerb::Read, e))?
            .map_err(|e| sm_error(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(lines)),
        }))
    }
}

/// Records where the state is: the store is durable, so the snapshot is the store itself and
/// its data is read only when a member needs it ([`RaftStateMachine::get_current_snapshot`]).
pub struct Builder {
    meta: SnapshotMeta<NodeId, Member>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Command;
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::{BTreeMap, BTreeSet};
    use tandem_shared::item::Data;
    use tandem_shared::validate::IfMatch;

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload,
        }
    }

    fn put(id: &str, if_match: Option<IfMatch>, region: &str) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(Command {
            id: id.into(),
            data: Some(Data::try_from(serde_json::json!({"from": region})).unwrap()),
            if_match,
            region: region.into(),
            stamp_ms: 1_000,
        })
    }

    fn membership() -> EntryPayload<TypeConfig> {
        let nodes: BTreeMap<u64, Member> = (0..3).map(|i| (i, Member::default())).collect();
        let voters = BTreeSet::from([0, 1, 2]);
        EntryPayload::Membership(Membership::new(vec![voters], nodes))
    }

    #[tokio::test]
    async fn apply_answers_each_entry_in_order_and_the_position_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let mut sm = StateMachine::open(store.clone()).unwrap();
        let out = sm
            .apply(vec![
                entry(1, membership()),
                entry(2, EntryPayload::Blank),
                entry(3, put("k", None, "us-east-1")),
            ])
            .await
            .unwrap();
        let Applied::Written { record, replaced } = &out[2] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (&out[0], &out[1], replaced),
            (&Applied::Nothing, &Applied::Nothing, &false)
        );
        // Two writes on the same ETag, in one batch: the second finds the first's write.
        let tag = Some(IfMatch::parse([record.etag().as_str()]));
        let racing = vec![
            entry(4, put("k", tag.clone(), "us-west-2")),
            entry(5, put("k", tag, "us-east-1")),
        ];
        let out = sm.apply(racing).await.unwrap();
        assert!(
            matches!(&out[0], Applied::Written { replaced: true, .. }),
            "{out:?}"
        );
        assert_eq!(out[1], Applied::PreconditionFailed);
        drop(sm);

        let mut sm = StateMachine::open(store).unwrap();
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(5));
        assert_eq!(membership.log_id().map(|l| l.index), Some(1));
        assert_eq!(membership.membership().voter_ids().count(), 3);
    }

    #[tokio::test]
    async fn a_snapshot_carries_the_state_and_its_position_to_another_member() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = EmbeddedStore::open(d1.path(), "us-east-1").unwrap();
        let behind = EmbeddedStore::open(d2.path(), "us-west-2").unwrap();
        let mut sm = StateMachine::open(leader.clone()).unwrap();
        // The first ask, at start, is for the position only: nothing applied yet, none.
        assert!(sm.get_current_snapshot().await.unwrap().is_none());
        let log = vec![
            entry(1, membership()),
            entry(2, put("a", None, "us-east-1")),
        ];
        sm.apply(log).await.unwrap();
        // Restarted there, the first ask gives the position without the state.
        let mut restarted = StateMachine::open(leader.clone()).unwrap();
        let first = restarted.get_current_snapshot().await.unwrap().unwrap();
        assert!(first.snapshot.get_ref().is_empty());
        assert_eq!(first.meta.last_log_id.map(|l| l.index), Some(2));
        let snap = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(2));
        let mut other = StateMachine::open(behind.clone()).unwrap();
        other
            .install_snapshot(&snap.meta, snap.snapshot)
            .await
            .unwrap();
        assert_eq!(behind.dump().unwrap(), leader.dump().unwrap());
        assert_eq!(
            other.applied_state().await.unwrap().0.map(|l| l.index),
            Some(2)
        );
    }
}
