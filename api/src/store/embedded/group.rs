//! Group commit: concurrent local writes share one redb write transaction and one fsync.
//!
//! Writers queue their writes on a channel and wait for their answer. One committer thread per
//! store takes every write queued so far, applies them in queue order in one transaction with
//! `Durability::Immediate`, commits, and only then answers each of them: nothing is
//! acknowledged before the fsync of the commit that holds it (with its outbox entry). Writes
//! that arrive while a commit is under way make the next batch. One writer alone still pays one
//! fsync per write; N writers share them.
//!
//! The writes of a batch see each other (one transaction, in order), so `If-Match`, versions
//! and the clock come out exactly as if they had committed one by one. A write refused for a
//! reason of its own (412, 413, a delete of nothing) changes nothing and leaves the others be;
//! a failure of the store fails the whole batch, and none of it is acknowledged.
//!
//! The committer holds the store weakly: when the last handle goes, the channel closes and the
//! thread ends, so the database file is closed as before.

use super::{EmbeddedStore, Inner, is_storage_error};
use crate::store::StoreError;
use redb::Durability;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::{Duration, Instant};
use tandem_shared::item::{Data, Record};
use tandem_shared::sync::lock;
use tandem_shared::validate::IfMatch;
use tokio::sync::oneshot;

/// The most writes one transaction takes (the rest make the next one): it bounds a
/// transaction's size (a write is at most 400 KB) and how long the first write in it waits.
const MAX_BATCH: usize = 256;

/// How long a batch may sit in its commit before health calls the store stalled: below the
/// edge's default origin read timeout (4 s), so that health says why before writes time out
/// there. A healthy commit takes milliseconds; a full batch on a slow disk well under a second.
pub const STALLED_AFTER: Duration = Duration::from_secs(2);

/// A local write's outcome: the new record and whether a live item was replaced, or `None`
/// when a delete found nothing to delete.
pub(super) type Outcome = Result<Option<(Record, bool)>, StoreError>;

/// A queued local write, and where its outcome goes.
struct Write {
    id: String,
    data: Option<Data>,
    if_match: Option<IfMatch>,
    reply: oneshot::Sender<Outcome>,
}

/// The writers' end of the queue, and what went through it.
pub(super) struct Group {
    queue: mpsc::Sender<Write>,
    counts: Arc<Counts>,
    /// Bumped after each commit of local writes: peers waiting for new outbox entries wake on
    /// it ([`EmbeddedStore::commits`]).
    committed: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Counts {
    /// Writes sent and not yet taken into a batch.
    queued: AtomicUsize,
    commits: AtomicU64,
    writes: AtomicU64,
    /// When the batch being committed was taken (`None` between batches): a disk that hangs in
    /// a write or an fsync keeps it set, and health reports it ([`EmbeddedStore::stalled`]).
    committing_since: Mutex<Option<Instant>>,
    /// [`STALLED_AFTER`] unless a test or an operator set another threshold.
    stalled_after: Mutex<Option<Duration>>,
    /// Tests hold it to keep the committer from starting a batch.
    #[cfg(test)]
    paused: Mutex<()>,
}

/// Transactions committed for local writes, and the writes they held: `writes / commits` is
/// how many writes shared each fsync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub commits: u64,
    pub writes: u64,
}

/// The committer's end of the queue, before its thread starts.
pub(super) struct Committer {
    writes: mpsc::Receiver<Write>,
    counts: Arc<Counts>,
}

impl Group {
    /// The queue: the writers' end, and the committer's.
    pub(super) fn new() -> (Group, Committer) {
        let (queue, writes) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let group = Group {
            queue,
            counts: counts.clone(),
            committed: tokio::sync::watch::Sender::new(0),
        };
        (group, Committer { writes, counts })
    }
}

impl Committer {
    /// Starts the committer thread of the store `inner`.
    pub(super) fn start(self, inner: Weak<Inner>, region: &str) -> anyhow::Result<()> {
        std::thread::Builder::new()
            .name(format!("commit-{region}"))
            .spawn(move || committer(inner, self.writes, self.counts))?;
        Ok(())
    }
}

/// The committer: a batch at a time until the store is gone.
fn committer(inner: Weak<Inner>, writes: mpsc::Receiver<Write>, counts: Arc<Counts>) {
    while let Ok(first) = writes.recv() {
        #[cfg(test)]
        let _paused = lock(&counts.paused);
        let mut batch = vec![first];
        batch.extend(writes.try_iter().take(MAX_BATCH - 1));
        counts.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let store = EmbeddedStore { inner };
        *lock(&counts.committing_since) = Some(Instant::now());
        let answers = store.commit_batch(batch);
        *lock(&counts.committing_since) = None;
        // Let go of the store before answering: a caller that drops its last handle once
        // answered closes the database then, not when this thread gets round to it.
        drop(store);
        for (reply, outcome) in answers {
            let _ = reply.send(outcome);
        }
    }
}

impl EmbeddedStore {
    /// Writes (or, with `data: None`, deletes) `id` as a local write of this region, queued in
    /// the outbox, and returns once a commit holds it (or refused it). The writer waits on its
    /// own task: no thread is held while the commit runs, and the committer's answer wakes the
    /// task directly.
    pub(super) async fn write_local(
        &self,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Outcome {
        let outcome = self.queue_local(id, data, if_match)?;
        // No answer means the committer dropped the write (it cannot, short of a panic).
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(anyhow::anyhow!(
                "a queued write was dropped unanswered"
            )))
        })
    }

    /// Queues a local write for the committer; its outcome comes on the receiver.
    fn queue_local(
        &self,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Result<oneshot::Receiver<Outcome>, StoreError> {
        // Data over the item limit can never be stored: refused before it waits in the queue.
        if let Some(data) = &data
            && data.len() > tandem_shared::validate::MAX_ITEM_BYTES
        {
            return Err(StoreError::TooLarge(data.len()));
        }
        let group = &self.inner.group;
        let (reply, outcome) = oneshot::channel();
        let write = Write {
            id: id.to_owned(),
            data,
            if_match,
            reply,
        };
        group.counts.queued.fetch_add(1, Ordering::SeqCst);
        if group.queue.send(write).is_err() {
            group.counts.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Internal(anyhow::anyhow!(
                "the store's committer has stopped"
            )));
        }
        Ok(outcome)
    }

    /// Commits `batch`; the answer for each write in it.
    fn commit_batch(&self, batch: Vec<Write>) -> Vec<(oneshot::Sender<Outcome>, Outcome)> {
        let (writes, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|w| ((w.id, w.data, w.if_match), w.reply))
            .unzip();
        match self.apply_all(writes) {
            Ok(outcomes) => replies.into_iter().zip(outcomes).collect(),
            Err(err) => {
                let storage = is_storage_error(&err);
                let message = format!("{err:#}");
                if storage {
                    *lock(&self.inner.failed) = Some(message.clone());
                }
                let failed = |reply| {
                    let err = anyhow::anyhow!("{message}");
                    let outcome = match storage {
                        true => Err(StoreError::Unavailable(err)),
                        false => Err(StoreError::Internal(err)),
                    };
                    (reply, outcome)
                };
                replies.into_iter().map(failed).collect()
            }
        }
    }

    /// `writes` in order in one transaction, committed with an fsync when any of them changed
    /// something. An error means nothing was committed.
    fn apply_all(
        &self,
        writes: Vec<(String, Option<Data>, Option<IfMatch>)>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let count = writes.len() as u64;
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let mut outcomes = Vec::with_capacity(writes.len());
        for (id, data, if_match) in writes {
            match self.write_in(&txn, &id, data, if_match) {
                // The store itself failed, maybe halfway through this write: the transaction
                // is dropped uncommitted, and every write in it fails.
                Err(StoreError::Internal(err) | StoreError::Unavailable(err)) => return Err(err),
                outcome => outcomes.push(outcome),
            }
        }
        if !outcomes.iter().any(|o| matches!(o, Ok(Some(_)))) {
            txn.abort()?;
            return Ok(outcomes);
        }
        txn.commit()?;
        let group = &self.inner.group;
        group.counts.commits.fetch_add(1, Ordering::Relaxed);
        group.counts.writes.fetch_add(count, Ordering::Relaxed);
        group.committed.send_modify(|n| *n += 1);
        Ok(outcomes)
    }

    /// Changes after each commit of local writes (new outbox entries). Mark it seen, then read
    /// the outbox: a commit after that wakes `changed()`, so none is missed between the two.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.group.committed.subscribe()
    }

    /// How long the batch being committed has waited, when that is longer than the stall
    /// threshold: writes are queued and none is acknowledged until the disk answers.
    pub fn stalled(&self) -> Option<Duration> {
        let counts = &self.inner.group.counts;
        let after = lock(&counts.stalled_after).unwrap_or(STALLED_AFTER);
        let since = (*lock(&counts.committing_since))?;
        Some(since.elapsed()).filter(|waited| *waited >= after)
    }

    /// Another threshold for [`Self::stalled`] (tests use zero: any commit under way counts).
    pub fn set_stalled_after(&self, after: Duration) {
        *lock(&self.inner.group.counts.stalled_after) = Some(after);
    }

    /// How many transactions local writes took, and how many writes they held.
    pub fn commit_stats(&self) -> CommitStats {
        let counts = &self.inner.group.counts;
        CommitStats {
            commits: counts.commits.load(Ordering::Relaxed),
            writes: counts.writes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        (dir, store)
    }

    /// A local write from a thread of its own (the tests hold the committer from there).
    fn write_blocking(
        store: &EmbeddedStore,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Outcome {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.write_local(id, data, if_match))
    }

    fn data(n: usize) -> Data {
        Data::try_from(json!({ "n": n })).unwrap()
    }

    /// Runs `writes` on threads of their own while the committer is paused, so that all of
    /// them are queued before any is committed; then lets it go.
    fn queued_together(
        store: &EmbeddedStore,
        writes: Vec<(String, Option<Data>, Option<IfMatch>)>,
    ) -> Vec<Outcome> {
        let counts = &store.inner.group.counts;
        let held = lock(&counts.paused);
        let n = writes.len();
        let threads: Vec<_> = writes
            .into_iter()
            .map(|(id, data, if_match)| {
                let store = store.clone();
                std::thread::spawn(move || write_blocking(&store, &id, data, if_match))
            })
            .collect();
        // Counted, not timed: every write is in the queue.
        let deadline = Instant::now() + Duration::from_secs(30);
        while counts.queued.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the writes never queued");
            std::thread::yield_now();
        }
        drop(held);
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn writes_queued_during_a_commit_share_the_next_one() {
        let (_dir, store) = store();
        let writes = (0..32)
            .map(|i| (format!("id-{i}"), Some(data(i)), None))
            .collect();
        let outcomes = queued_together(&store, writes);
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Some(_)))));
        let stats = store.commit_stats();
        assert_eq!(
            stats,
            CommitStats {
                commits: 1,
                writes: 32
            }
        );
        // Every one of them is committed, each with its own outbox entry.
        for i in 0..32 {
            assert!(store.record(&format!("id-{i}")).unwrap().is_some());
        }
        assert_eq!(store.outbox_head().unwrap(), 32);
    }

    #[test]
    fn if_match_and_versions_stay_exact_within_a_batch() {
        let (_dir, store) = store();
        write_blocking(&store, "counter", Some(data(0)), None).unwrap();
        // 16 writers that all read version 1: exactly one wins, as one by one.
        let racing = (1..=16)
            .map(|i| {
                (
                    "counter".to_owned(),
                    Some(data(i)),
                    Some(IfMatch::Tags(vec![tandem_shared::validate::Tag::Version(
                        1,
                    )])),
                )
            })
            .collect();
        let outcomes = queued_together(&store, racing);
        let won = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::PreconditionFailed)))
            .count();
        assert_eq!((won, refused), (1, 15));
        assert_eq!(store.record("counter").unwrap().unwrap().version, 2);

        // 16 unconditional writes of one id in one batch: versions 1..=16, each once.
        let plain = (0..16)
            .map(|i| ("plain".to_owned(), Some(data(i)), None))
            .collect();
        let mut versions: Vec<u64> = queued_together(&store, plain)
            .into_iter()
            .map(|o| o.unwrap().unwrap().0.version)
            .collect();
        versions.sort();
        assert_eq!(versions, (1..=16).collect::<Vec<u64>>());
        assert_eq!(store.record("plain").unwrap().unwrap().version, 16);
    }

    #[test]
    fn a_batch_of_refused_writes_commits_nothing() {
        let (_dir, store) = store();
        let writes = (0..4)
            .map(|i| (format!("absent-{i}"), Some(data(i)), Some(IfMatch::Any)))
            .chain([("absent".to_owned(), None, None)])
            .collect();
        let outcomes = queued_together(&store, writes);
        assert!(
            outcomes
                .iter()
                .take(4)
                .all(|o| matches!(o, Err(StoreError::PreconditionFailed)))
        );
        assert!(matches!(outcomes[4], Ok(None)));
        assert_eq!(store.commit_stats(), CommitStats::default());
        assert_eq!(store.outbox_head().unwrap(), 0);
    }
}
