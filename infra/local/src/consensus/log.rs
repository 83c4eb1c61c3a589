//! The consensus log and vote of one member, in a redb file of their own (`raft.redb` in the
//! member's data directory), each write committed with an fsync before openraft is told it is
//! durable: a vote given or an entry acknowledged is never forgotten by a crash.
//!
//! Entries are stored as their JSON (item data inside stays the compact text the API made).
//! The member's node id lives here too: it is what this file's log and vote belong to, so a
//! member whose file is gone has lost the right to vote under that id (contract §10).

use super::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tandem_shared::sync::lock;

/// index → the entry's JSON.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// [`VOTE`], [`PURGED`], [`NODE_ID`] → JSON.
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const VOTE: &str = "vote";
const PURGED: &str = "purged";
const NODE_ID: &str = "node_id";

/// The log file inside a member's data directory.
pub const LOG_FILE: &str = "raft.redb";

type NodeId = u64;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// A member's log store. Clones share the database (openraft's log readers are clones).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The last entry openraft said is committed (kept in memory, for the status only: the
    /// state machine's applied position is durable, and openraft needs no more).
    committed: Arc<Mutex<Option<LogId<NodeId>>>>,
}

fn io(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::error(format!("{e:#}"))).into()
}

fn logs(verb: ErrorVerb) -> impl Fn(anyhow::Error) -> StorageError<NodeId> {
    move |e| io(ErrorSubject::Logs, verb, e)
}

impl LogStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join(LOG_FILE))?;
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(STATE)?;
        txn.commit()?;
        Ok(LogStore {
            db: Arc::new(db),
            committed: Arc::default(),
        })
    }

    fn get_state<T: serde::de::DeserializeOwned>(&self, key: &str) -> anyhow::Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        let value = table.get(key)?;
        Ok(value
            .map(|v| serde_json::from_slice(v.value()))
            .transpose()?)
    }

    /// Writes `key` and runs `change` on the log, in one transaction with an fsync, off the
    /// async workers.
    async fn write(
        &self,
        state: Option<(&'static str, Vec<u8>)>,
        change: impl FnOnce(&mut redb::Table<u64, &[u8]>) -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate);
            {
                if let Some((key, value)) = state {
                    txn.open_table(STATE)?.insert(key, value.as_slice())?;
                }
                change(&mut txn.open_table(LOG)?)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await?
    }

    /// The node id this log belongs to, once one was given.
    pub fn node_id(&self) -> anyhow::Result<Option<u64>> {
        self.get_state(NODE_ID)
    }

    /// Records the node id this log belongs to (durably, before the member uses it).
    pub async fn set_node_id(&self, id: u64) -> anyhow::Result<()> {
        self.write(Some((NODE_ID, serde_json::to_vec(&id)?)), |_| Ok(()))
            .await
    }

    /// The last entry known committed, as openraft last said.
    pub fn committed(&self) -> Option<LogId<NodeId>> {
        *lock(&self.committed)
    }

    fn read_range(&self, start: u64, end: Bound<u64>) -> anyhow::Result<Vec<Entry<TypeConfig>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let mut out = Vec::new();
        for entry in table.range::<u64>((Bound::Included(start), end))? {
            out.push(serde_json::from_slice(entry?.1.value())?);
        }
        Ok(out)
    }

    fn last_entry(&self) -> anyhow::Result<Option<Entry<TypeConfig>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let last = table.last()?;
        Ok(last
            .map(|(_, v)| serde_json::from_slice(v.value()))
            .transpose()?)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = range.end_bound().cloned();
        self.read_range(start, end).map_err(logs(ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last = self.last_entry().map_err(logs(ErrorVerb::Read))?;
        let purged: Option<LogId<NodeId>> =
            self.get_state(PURGED).map_err(logs(ErrorVerb::Read))?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.map(|e| e.log_id).or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let bytes =
            serde_json::to_vec(vote).map_err(|e| io(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.write(Some((VOTE, bytes)), |_| Ok(()))
            .await
            .map_err(|e| io(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.get_state(VOTE)
            .map_err(|e| io(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        *lock(&self.committed) = committed;
        Ok(())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, serde_json::to_vec(&e)?)))
            .collect::<anyhow::Result<Vec<(u64, Vec<u8>)>>>()
            .map_err(logs(ErrorVerb::Write))?;
        // Durable before openraft counts it: the callback comes after the fsync.
        let written = self
            .write(None, move |log| {
                for (index, bytes) in &encoded {
                    log.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let message = format!("{e:#}");
                callback.log_io_completed(Err(std::io::Error::other(message.clone())));
                Err(io(ErrorSubject::Logs, ErrorVerb::Write, message))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.write(None, move |log| {
            log.retain_in(log_id.index.., |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(logs(ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let bytes = serde_json::to_vec(&log_id)
            .map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.write(Some((PURGED, bytes)), move |log| {
            log.retain_in(..=log_id.index, |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(logs(ErrorVerb::Delete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 0), index),
            payload: EntryPayload::Blank,
        }
    }

    async fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
        // The callback needs openraft's internals; the entries are durable once `write` returns,
        // which is what `append` waits for before calling it.
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|e| (e.log_id.index, serde_json::to_vec(e).unwrap()))
            .collect();
        store
            .write(None, move |log| {
                for (i, b) in &encoded {
                    log.insert(*i, b.as_slice())?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn entries_votes_and_the_node_id_survive_a_reopen_and_truncate_and_purge_leave_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.node_id().unwrap(), None);
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
        append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
        let vote = Vote::new(2, 257);
        store.save_vote(&vote).await.unwrap();
        store.set_node_id(257).await.unwrap();
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        assert_eq!(store.node_id().unwrap(), Some(257));
        let got = store.try_get_log_entries(2..4).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(store.try_get_log_entries(4..).await.unwrap().len(), 2);

        // A new leader's entries replace the tail from 4 on.
        store.truncate(entry(1, 4).log_id).await.unwrap();
        append(&mut store, vec![entry(2, 4)]).await;
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(entry(2, 4).log_id));

        // Purged up to 4: no entry is left, and the state remembers where the log was.
        store.purge(entry(2, 4).log_id).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(2, 4).log_id));
        assert_eq!(state.last_log_id, Some(entry(2, 4).log_id));
        assert!(store.try_get_log_entries(0..).await.unwrap().is_empty());
    }
}
