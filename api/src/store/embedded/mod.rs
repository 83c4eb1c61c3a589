//! The embedded store: redb on local disk, one database file per region.
//!
//! Every write commits with `Durability::Immediate` (fsync) before it is acknowledged;
//! concurrent local writes share one transaction and one fsync ([`group`]). Local
//! writes also append the written id to an outbox under a sequence number, in the same
//! transaction, so replication can ship them later without ever missing one. A peer pulling
//! the outbox gets each id's *current* record: a later write or a delete supersedes what the
//! outbox entry first named, so deleted data is never shipped and a backlog of rewrites of one
//! id ships once. Replicated writes go through [`EmbeddedStore::apply_batch`], which keeps
//! last-writer-wins and records, again in the same transaction, how far this region has applied
//! each peer's outbox and which incarnation of the peer that position belongs to.
//! Last writer wins here is contract §5's, on `(updated_at, updated_in)`; on AWS the global table
//! resolves conflicts with DynamoDB's own timestamps instead (see `super::dynamo`). Listing
//! is in id order.
//!
//! Housekeeping: outbox entries every peer has applied are compacted away
//! ([`EmbeddedStore::compact_outbox`]), tombstones are collected after a grace period
//! ([`EmbeddedStore::collect_tombstones`]), and per-bucket digests of the live items are kept
//! up to date in every write transaction for anti-entropy ([`super::digest`]).
//!
//! [`log`] holds the replication half: what peers pull (outbox pages, state pages, digests),
//! how their writes are applied, and housekeeping. The other half, which pulls and serves it
//! between regions, is `tandem_local::replication`. The two meet only through this log, and
//! stay apart because a local write and its outbox entry must commit in one redb transaction,
//! inside the store.

mod decided;
mod group;
mod log;

use super::digest::{self, BUCKETS, BucketDigest};
use super::{
    Page, PageBudget, Store, StoreError, StoredFault, Written, check_precondition, check_size,
    now_ms,
};
use anyhow::Context as _;
pub use decided::{Decided, DecidedOutcome};
pub use group::CommitStats;
pub use log::{ItemsPage, OutboxPage, PeerPosition};
use redb::{
    Database, Durability, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tandem_shared::item::{Data, Item, Record};
use tandem_shared::replication::{MAX_STAMPS_AHEAD_MS, RegionReplication};
use tandem_shared::sync::lock;
use tandem_shared::validate::{IfMatch, page_cost};

/// id → JSON of the latest [`Record`] (tombstones included).
const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// sequence number → the id written in this region (databases made before ids were stored
/// here hold the record's JSON instead; both are read).
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Counters and positions: see the `*_KEY` constants and [`applied_key`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// bucket → XOR of the digests of its live records.
const DIGESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("digests");

const NEXT_SEQ: &str = "next_seq";
/// This database's identity, made when it is created: a region that lost its disk comes back
/// with another one, which tells its peers to copy its state afresh.
const INCARNATION: &str = "incarnation";
/// The hybrid logical clock: the latest `updated_at` this region stamped.
const HLC: &str = "hlc";
/// Outbox entries up to this sequence number were compacted away.
const OUTBOX_FLOOR: &str = "outbox_floor";
/// Set once the digests table holds every live record (older databases build it on open).
const DIGESTS_BUILT: &str = "digests_built";
/// Set when this database was created together with the whole stack ([`EmbeddedStore::born_with_the_stack`]).
const BORN_WITH_STACK: &str = "born_with_stack";

/// The database file inside a region's data directory.
pub const DB_FILE: &str = "tandem.redb";

/// A durable local store for one region. Cloning shares the same database.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    region: String,
    incarnation: u64,
    /// Whether this open created the database (a new incarnation).
    created: bool,
    /// Wall-clock milliseconds ([`now_ms`]; tests make it jump).
    clock: fn() -> u64,
    // A region process is the only instance of its region, so its fault lives in memory and
    // clears when the process restarts, as a fresh Lambda instance's would not: that is fine,
    // a crash is already a bigger fault than the one that was set.
    fault: Mutex<Option<StoredFault>>,
    /// What the region's replicator last reported, for `GET /api/health`.
    replication: Mutex<Option<RegionReplication>>,
    /// Set when the storage failed a write. redb refuses every later write until the database
    /// is opened again, so this stays set: the region answers 503 until it is restarted.
    failed: Mutex<Option<String>>,
    /// Local writes waiting for a commit, and the commit lock ([`group`]).
    group: group::Group,
    /// Turns to make a list page ([`LIST_CONCURRENCY`]).
    list_permits: Arc<tokio::sync::Semaphore>,
    /// Peers whose state this region has not copied yet ([`EmbeddedStore::require_peers`]).
    not_copied: Mutex<Vec<String>>,
    /// Times the stamps were let go back to the clock (see [`MAX_STAMPS_AHEAD_MS`]).
    clock_resets: std::sync::atomic::AtomicU64,
}

/// List pages made at once by one region: with the page budget, the most memory listing takes
/// (a page costs about twice its answer while it is made: the items, then the answer).
pub const LIST_CONCURRENCY: usize = 8;

/// Whether an error came from the storage engine (as opposed to, say, a corrupt record).
fn is_storage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<redb::StorageError>()
            || e.is::<redb::CommitError>()
            || e.is::<redb::TransactionError>()
            || e.is::<redb::TableError>()
    })
}

pub fn decode(bytes: &[u8]) -> anyhow::Result<Record> {
    serde_json::from_slice(bytes).context("corrupt record in the embedded store")
}

fn encode(record: &Record) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(record)?)
}

fn meta_get(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> anyhow::Result<u64> {
    Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
}

/// Takes `old` out of its bucket's digest and puts `new` in (either may be absent or a
/// tombstone, which contributes nothing).
fn update_digest(
    digests: &mut Table<u64, &[u8]>,
    old: Option<&Record>,
    new: Option<&Record>,
) -> anyhow::Result<()> {
    let Some(id) = old.or(new).map(|r| r.id.as_str()) else {
        return Ok(());
    };
    let parts: Vec<BucketDigest> = [old, new]
        .into_iter()
        .flatten()
        .filter_map(digest::contribution)
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    let bucket = digest::bucket_of(id) as u64;
    let mut acc: BucketDigest = [0; 16];
    if let Some(v) = digests.get(bucket)? {
        acc.copy_from_slice(v.value());
    }
    for p in &parts {
        digest::xor_into(&mut acc, p);
    }
    digests.insert(bucket, acc.as_slice())?;
    Ok(())
}

/// The most memory a region's database keeps as its page cache unless told otherwise (redb's
/// own default is 1 GiB, per database): enough for a laptop's working set, and the bound of a
/// region's memory that grows with its data.
pub const DEFAULT_CACHE_MIB: usize = 64;

impl EmbeddedStore {
    /// Opens (or creates) the store of `region` under `dir`, with the default cache.
    pub fn open(dir: &Path, region: &str) -> anyhow::Result<Self> {
        Self::open_with(dir, region, DEFAULT_CACHE_MIB, now_ms)
    }

    /// [`Self::open`] with another wall clock.
    pub fn open_with_clock(dir: &Path, region: &str, clock: fn() -> u64) -> anyhow::Result<Self> {
        Self::open_with(dir, region, DEFAULT_CACHE_MIB, clock)
    }

    /// [`Self::open`] with a page cache of `cache_mib` MiB and a wall clock.
    pub fn open_with(
        dir: &Path,
        region: &str,
        cache_mib: usize,
        clock: fn() -> u64,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(cache_mib.saturating_mul(1 << 20))
            .create(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Self::init(db, region, clock)
    }

    /// A store on any redb storage backend (tests use one whose disk fails on demand).
    pub fn open_with_backend(
        backend: impl redb::StorageBackend,
        region: &str,
    ) -> anyhow::Result<Self> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::init(db, region, now_ms)
    }

    fn init(db: Database, region: &str, clock: fn() -> u64) -> anyhow::Result<Self> {
        let txn = db.begin_write()?;
        let (incarnation, created);
        {
            let items = txn.open_table(ITEMS)?;
            txn.open_table(OUTBOX)?;
            let mut meta = txn.open_table(META)?;
            let mut digests = txn.open_table(DIGESTS)?;
            let existing = meta.get(INCARNATION)?.map(|v| v.value());
            created = existing.is_none();
            incarnation = match existing {
                Some(i) => i,
                None => {
                    // Never 0, so "no incarnation" and a real one cannot be confused.
                    let i = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
                    meta.insert(INCARNATION, i)?;
                    i
                }
            };
            let built = meta.get(DIGESTS_BUILT)?.is_some();
            if !built {
                for entry in items.iter()? {
                    let record = decode(entry?.1.value())?;
                    update_digest(&mut digests, None, Some(&record))?;
                }
                meta.insert(DIGESTS_BUILT, 1)?;
            }
        }
        txn.commit()?;
        let (group, committer) = group::Group::new();
        let inner = Arc::new(Inner {
            db,
            region: region.to_owned(),
            incarnation,
            created,
            clock,
            fault: Mutex::new(None),
            replication: Mutex::new(None),
            failed: Mutex::new(None),
            group,
            list_permits: Arc::new(tokio::sync::Semaphore::new(LIST_CONCURRENCY)),
            not_copied: Mutex::new(Vec::new()),
            clock_resets: Default::default(),
        });
        committer.start(Arc::downgrade(&inner), region)?;
        Ok(EmbeddedStore { inner })
    }

    /// Times stamps were let go back to the clock (see [`MAX_STAMPS_AHEAD_MS`]).
    pub fn clock_resets(&self) -> u64 {
        self.inner
            .clock_resets
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The region this store belongs to.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// This database's identity (see [`INCARNATION`]).
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// The latest record for `id`, tombstone or not.
    pub fn record(&self, id: &str) -> anyhow::Result<Option<Record>> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(ITEMS)?;
        table.get(id)?.map(|v| decode(v.value())).transpose()
    }

    fn write_in(
        &self,
        txn: &WriteTransaction,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Result<Option<(Record, bool)>, StoreError> {
        let mut items = txn.open_table(ITEMS).map_err(anyhow::Error::from)?;
        let current = items
            .get(id)
            .map_err(anyhow::Error::from)?
            .map(|v| decode(v.value()))
            .transpose()?;
        check_precondition(if_match.as_ref(), current.as_ref(), self.region())?;
        let was_live = current.as_ref().is_some_and(|r| !r.is_tombstone());
        if data.is_none() && !was_live {
            return Ok(None);
        }
        let mut meta = txn.open_table(META).map_err(anyhow::Error::from)?;
        // Hybrid logical clock: never behind the last stamp, so a wall clock that steps back
        // holds stamps still instead of sending them backwards, and `Record::next` adds one
        // past the id's current write, so two writes to one id never share `(updated_at,
        // updated_in)` (which identifies a write). No `+ 1` here: under load that would run the
        // stamps ahead of the wall clock, and every write after them would look older than it is.
        // Held still for at most MAX_STAMPS_AHEAD_MS: a clock that ran far ahead and was
        // corrected would otherwise freeze every stamp until real time caught up (an hour for an
        // hour). Past the bound the stamps follow the clock again; each id's own writes still
        // only go forward (`Record::next`), which is all last-writer-wins needs.
        let last = meta_get(&meta, HLC)?;
        let now = (self.inner.clock)();
        let stamp = if last.saturating_sub(now) > MAX_STAMPS_AHEAD_MS {
            self.inner
                .clock_resets
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                ahead_ms = last - now,
                "the clock is far behind the last stamp (it ran ahead and was corrected): stamps follow the clock again"
            );
            now
        } else {
            now.max(last)
        };
        let record = Record::next(id, current.as_ref(), data, &self.inner.region, stamp);
        // Encoded once: these bytes are the stored form the size limit counts.
        let encoded = encode(&record)?;
        check_size(encoded.len())?;
        items
            .insert(id, encoded.as_slice())
            .map_err(anyhow::Error::from)?;
        let mut digests = txn.open_table(DIGESTS).map_err(anyhow::Error::from)?;
        update_digest(&mut digests, current.as_ref(), Some(&record))?;
        let seq = meta_get(&meta, NEXT_SEQ)?.max(1);
        meta.insert(NEXT_SEQ, seq + 1)
            .map_err(anyhow::Error::from)?;
        // The region's own clock only: a peer whose clock runs ahead makes rewrites of the
        // ids it wrote later than its write (above), but never drags every local stamp along.
        meta.insert(HLC, stamp).map_err(anyhow::Error::from)?;
        let mut outbox = txn.open_table(OUTBOX).map_err(anyhow::Error::from)?;
        outbox
            .insert(seq, id.as_bytes())
            .map_err(anyhow::Error::from)?;
        Ok(Some((record, was_live)))
    }

    /// A page of live items after `after`, in id order, within a [`PageBudget`]: each record's
    /// cost is read from its stored bytes before it is decoded, and decoding keeps its data as
    /// text, so a page costs about the answer it makes, whatever the items hold.
    fn list_sync(&self, budget: &mut PageBudget, after: Option<&str>) -> anyhow::Result<Page> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(ITEMS)?;
        let range = match after {
            Some(a) => {
                table.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => table.range::<&str>(..)?,
        };
        let mut items: Vec<Item> = Vec::new();
        // The id the next page starts after, once this one ends early.
        let mut last: Option<String> = None;
        let mut more = false;
        for entry in range {
            let (key, value) = entry?;
            if budget.out_of_time() && last.is_some() {
                more = true;
                break;
            }
            let bytes = value.value();
            let record = decode(bytes)?;
            if !record.is_tombstone() {
                if !budget.take(page_cost(bytes)) {
                    more = true;
                    break;
                }
                items.extend(record.into_item());
            }
            last = Some(key.value().to_owned());
        }
        Ok(Page {
            last: if more { last } else { None },
            items,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| StoreError::Internal(anyhow::anyhow!("store task failed: {e}")))?
    }
}

impl Store for EmbeddedStore {
    /// Read on the request's own task rather than handed to the blocking pool: one B-tree
    /// lookup, nearly always in redb's page cache, costs less than the two thread wake-ups of a
    /// hand-off (the GET profile in docs/benchmarks.md; 0.43 -> 0.72 of a bare handler). A read
    /// never waits for a commit's fsync (redb drops its header lock while it syncs; the
    /// `reads_do_not_wait_for_a_commit_stuck_in_fsync` test holds a sync and reads). What it
    /// gives up: a disk that hangs on a *read* holds an async worker instead of a pool thread,
    /// and then the region stops answering at all, which the edge and the watcher see as the
    /// outage it is. Lists, digests and replication pages, which read many pages, still go to
    /// the blocking pool.
    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.record(id)?.filter(|r| !r.is_tombstone()))
    }

    async fn put(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> Result<Written, StoreError> {
        let (record, replaced) = self
            .write_local(id, Some(data), if_match)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a put always writes"))?;
        Ok(Written {
            record,
            created: !replaced,
        })
    }

    async fn delete(&self, id: &str, if_match: Option<IfMatch>) -> Result<(), StoreError> {
        self.write_local(id, None, if_match).await.map(|_| ())
    }

    /// At most [`LIST_CONCURRENCY`] pages are made at once, so the pages of many clients cost
    /// that many pages of memory; a page that waits past its time budget for its turn is
    /// answered 503 `overloaded` (the edge fails the read over).
    async fn list(&self, limit: usize, after: Option<String>) -> Result<Page, StoreError> {
        let permit = tokio::time::timeout(
            super::LIST_TIME_BUDGET,
            self.inner.list_permits.clone().acquire_owned(),
        )
        .await;
        let Ok(Ok(permit)) = permit else {
            return Err(StoreError::Busy(format!(
                "{LIST_CONCURRENCY} list pages are being made"
            )));
        };
        self.blocking(move |s| {
            // The page's own time starts with its turn.
            let mut budget = PageBudget::new(limit);
            let page = s.list_sync(&mut budget, after.as_deref())?;
            drop(permit);
            Ok(page)
        })
        .await
    }

    fn vouch(&self) -> Result<(), StoreError> {
        let missing = self.not_copied();
        if missing.is_empty() {
            return Ok(());
        }
        Err(StoreError::Resyncing(format!(
            "it has not yet copied the state of {} (a new disk, or first contact)",
            missing.join(", ")
        )))
    }

    async fn check(&self) -> Result<(), StoreError> {
        if let Some(err) = &*lock(&self.inner.failed) {
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "a write failed ({err}); restart the region to open its database again"
            )));
        }
        match self.stalled() {
            Some(waited) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "a commit has waited {:.1} s on the disk (a write or an fsync is stalled); no write is acknowledged until it returns",
                waited.as_secs_f64()
            ))),
            None => Ok(()),
        }
    }

    async fn load_fault(&self) -> Result<Option<StoredFault>, StoreError> {
        Ok(*lock(&self.inner.fault))
    }

    async fn save_fault(&self, fault: StoredFault) -> Result<(), StoreError> {
        *lock(&self.inner.fault) = Some(fault);
        Ok(())
    }

    async fn replication(&self) -> RegionReplication {
        let store = self.clone();
        let positions = tokio::task::spawn_blocking(move || {
            Ok::<_, anyhow::Error>((
                store.outbox_head()?,
                store.outbox_floor()?,
                store.last_stamp()?,
            ))
        })
        .await;
        let mut report =
            lock(&self.inner.replication)
                .clone()
                .unwrap_or_else(|| RegionReplication {
                    region: self.inner.region.clone(),
                    store: "embedded".into(),
                    incarnation: format!("{:016x}", self.inner.incarnation),
                    ..Default::default()
                });
        if let Ok(Ok((head, floor, stamp))) = positions {
            (report.outbox_head, report.outbox_floor) = (head, floor);
            report.stamps_ahead_ms = stamp.saturating_sub((self.inner.clock)());
        }
        report.max_stamps_ahead_ms = MAX_STAMPS_AHEAD_MS;
        report.clock_resets = self.clock_resets();
        // Digests are for peers and `tandem verify`, not for a health check.
        report.digests.clear();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn record(id: &str, data: Option<serde_json::Value>, ts: u64, region: &str) -> Record {
        Record {
            id: id.into(),
            data: data.map(|d| Data::try_from(d).unwrap()),
            version: ts,
            updated_at_ms: ts,
            updated_in: region.into(),
        }
    }

    fn data(v: serde_json::Value) -> Data {
        Data::try_from(v).unwrap()
    }

    fn ids(page: &OutboxPage) -> Vec<(u64, String)> {
        page.records
            .iter()
            .map(|(seq, bytes)| (*seq, decode(bytes).unwrap().id))
            .collect()
    }

    #[tokio::test]
    async fn the_outbox_ships_each_ids_current_record_once_and_never_deleted_data() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        s.put("a", data(json!({"secret": 1})), None).await.unwrap();
        s.put("b", data(json!({"n": 1})), None).await.unwrap();
        s.put("b", data(json!({"n": 2})), None).await.unwrap();
        s.delete("a", None).await.unwrap();
        s.delete("never-there", None).await.unwrap();
        assert_eq!(s.outbox_head().unwrap(), 4);
        let page = s.changes_since(0, 10, usize::MAX).unwrap();
        assert_eq!(ids(&page), vec![(1, "a".into()), (2, "b".into())]);
        assert_eq!((page.head, page.floor, page.through), (4, 0, 4));
        // "a" ships as its tombstone, with no data; "b" as its latest write.
        let shipped: Vec<Record> = page.records.iter().map(|r| decode(&r.1).unwrap()).collect();
        assert!(shipped[0].is_tombstone() && shipped[0].data.is_none());
        assert_eq!(shipped[1].data, Some(data(json!({"n": 2}))));
        assert_eq!(s.changes_since(3, 10, usize::MAX).unwrap().records.len(), 1);
        assert_eq!(s.changes_since(4, 10, usize::MAX).unwrap().through, 4);
    }

    #[tokio::test]
    async fn pulls_are_bounded_by_bytes_but_always_make_progress() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let big = "x".repeat(10_000);
        for i in 0..5 {
            s.put(&format!("k{i}"), data(json!({"big": big})), None)
                .await
                .unwrap();
        }
        // Smaller than one record: still one record per page.
        let page = s.changes_since(0, 100, 10).unwrap();
        assert_eq!((page.records.len(), page.through), (1, 1));
        // Room for two.
        let page = s.changes_since(1, 100, 25_000).unwrap();
        assert_eq!(ids(&page), vec![(2, "k1".into()), (3, "k2".into())]);
        assert_eq!(page.through, 3);
        // The count bound too.
        assert_eq!(s.changes_since(0, 2, usize::MAX).unwrap().records.len(), 2);
        // The whole state, page by page.
        let (mut after, mut all) = (None, Vec::new());
        loop {
            let page = s.items_page(after.as_deref(), None, 15_000).unwrap();
            all.extend(page.records.iter().map(|r| decode(r).unwrap().id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(all, vec!["k0", "k1", "k2", "k3", "k4"]);
    }

    #[tokio::test]
    async fn compaction_moves_the_floor_and_tombstones_are_collected_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        s.put("a", data(json!({})), None).await.unwrap();
        s.put("b", data(json!({})), None).await.unwrap();
        s.delete("a", None).await.unwrap();
        let digests = s.digests().unwrap();
        // The tombstone still waits in the outbox: not collected whatever its age.
        assert_eq!(s.collect_tombstones(u64::MAX).unwrap(), 0);
        assert_eq!(s.compact_outbox(2).unwrap(), 2);
        assert_eq!(s.outbox_floor().unwrap(), 2);
        assert_eq!(s.compact_outbox(1).unwrap(), 0, "the floor never goes back");
        let page = s.changes_since(0, 10, usize::MAX).unwrap();
        assert_eq!((page.floor, ids(&page)), (2, vec![(3, "a".into())]));
        assert_eq!(s.compact_outbox(u64::MAX).unwrap(), 1);
        assert_eq!(s.outbox_floor().unwrap(), 3, "never past the head");
        // Younger than the grace: kept.
        let written = s.record("a").unwrap().unwrap().updated_at_ms;
        assert_eq!(s.collect_tombstones(written).unwrap(), 0);
        assert_eq!(s.collect_tombstones(written + 1).unwrap(), 1);
        assert_eq!(s.record("a").unwrap(), None);
        assert!(s.record("b").unwrap().is_some());
        assert_eq!(
            s.digests().unwrap(),
            digests,
            "tombstones are not in digests"
        );
        // A reopened store keeps its identity and its floor.
        let incarnation = s.incarnation();
        drop(s);
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        assert_eq!(s.incarnation(), incarnation);
        assert_eq!(s.outbox_floor().unwrap(), 3);
        let other = tempfile::tempdir().unwrap();
        let fresh = EmbeddedStore::open(other.path(), "us-east-1").unwrap();
        assert_ne!(
            fresh.incarnation(),
            incarnation,
            "a lost disk is a new identity"
        );
    }

    #[test]
    fn outboxes_written_before_ids_were_stored_there_still_ship() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        // As the first release wrote it: the whole record in the outbox entry.
        let old = record("legacy", Some(json!({"n": 1})), 5, "us-east-1");
        let txn = s.inner.db.begin_write().unwrap();
        {
            let bytes = encode(&old).unwrap();
            txn.open_table(ITEMS)
                .unwrap()
                .insert("legacy", bytes.as_slice())
                .unwrap();
            txn.open_table(OUTBOX)
                .unwrap()
                .insert(1, bytes.as_slice())
                .unwrap();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(NEXT_SEQ, 2).unwrap();
            // Nor had it digests.
            meta.remove(DIGESTS_BUILT).unwrap();
        }
        txn.commit().unwrap();
        let page = s.changes_since(0, 10, usize::MAX).unwrap();
        assert_eq!(ids(&page), vec![(1, "legacy".into())]);
        assert_eq!(s.collect_tombstones(u64::MAX).unwrap(), 0);
        assert!(s.digests().unwrap().iter().all(|d| *d == [0; 16]));
        drop(s);
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let bucket = digest::bucket_of("legacy");
        assert_eq!(
            s.digests().unwrap()[bucket],
            digest::contribution(&old).unwrap()
        );
    }

    static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);

    fn test_clock() -> u64 {
        CLOCK.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_clock_that_steps_back_holds_stamps_still_for_a_bounded_time() {
        use std::sync::atomic::Ordering::SeqCst;
        CLOCK.store(10_000_000_000, SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open_with_clock(dir.path(), "us-east-1", test_clock).unwrap();
        let first = s.put("a", data(json!({})), None).await.unwrap().record;
        let t0 = first.updated_at_ms;
        // A step back within the bound: another id is stamped at the last stamp, not before it.
        CLOCK.store(t0 - MAX_STAMPS_AHEAD_MS, SeqCst);
        let second = s.put("b", data(json!({})), None).await.unwrap().record;
        let stamp = |r: &Record| r.updated_at_ms;
        assert_eq!(stamp(&second), t0, "{second:?} vs {first:?}");
        let report = s.replication().await;
        assert_eq!(
            report.stamps_ahead_ms, MAX_STAMPS_AHEAD_MS,
            "health says how long"
        );
        // The same id again: strictly later, so the rewrite wins everywhere.
        let again = s
            .put("a", data(json!({"v": 2})), None)
            .await
            .unwrap()
            .record;
        assert!(stamp(&again) > stamp(&first));
        // And it survives a restart.
        drop(s);
        let s = EmbeddedStore::open_with_clock(dir.path(), "us-east-1", test_clock).unwrap();
        let third = s.put("c", data(json!({})), None).await.unwrap().record;
        assert!(
            stamp(&third) >= stamp(&second),
            "never behind the last stamp"
        );
        // A clock that ran an hour ahead and was corrected: stamps are not frozen for an hour,
        // they follow the clock again; each id's own writes still move forward.
        let corrected = t0 - 3_600_000;
        CLOCK.store(corrected, SeqCst);
        let fresh = s.put("d", data(json!({})), None).await.unwrap().record;
        assert_eq!(stamp(&fresh), corrected);
        let rewrite = s
            .put("a", data(json!({"v": 3})), None)
            .await
            .unwrap()
            .record;
        assert!(stamp(&rewrite) > stamp(&again), "a rewrite still wins");
        let report = s.replication().await;
        assert_eq!(report.clock_resets, 1);
        assert!(report.stamps_ahead_ms <= MAX_STAMPS_AHEAD_MS);
    }

    #[tokio::test]
    async fn apply_batch_is_last_writer_wins_and_records_progress() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-west-2").unwrap();
        let newer = record("x", Some(json!({"v": "new"})), 20, "us-east-1");
        let older = record("x", Some(json!({"v": "old"})), 10, "us-east-1");
        assert_eq!(
            s.apply_batch("us-east-1", 7, std::slice::from_ref(&newer), 5)
                .unwrap(),
            1
        );
        assert_eq!(s.apply_batch("us-east-1", 7, &[older], 6).unwrap(), 0);
        assert_eq!(s.record("x").unwrap(), Some(newer));
        assert_eq!(
            s.peer_position("us-east-1").unwrap(),
            PeerPosition {
                incarnation: Some(7),
                applied: 6
            }
        );
        assert_eq!(
            s.peer_position("eu-west-1").unwrap(),
            PeerPosition::default()
        );
        // Replicated writes are not re-queued: only local writes go out.
        assert_eq!(s.outbox_head().unwrap(), 0);
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            prop::sample::select(vec!["a", "b", "c"]),
            prop::option::of(0u8..4),
            0u64..6,
            prop::sample::select(vec!["us-east-1", "us-west-2", "eu-west-1"]),
            1u64..4,
        )
            .prop_map(|(id, v, ts, region, version)| Record {
                id: id.into(),
                data: v.map(|v| Data::try_from(json!({"v": v})).unwrap()),
                version,
                updated_at_ms: ts,
                updated_in: region.into(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// contract §5: applying the same writes in any order, one at a time or in batches, ends in
        /// the same state in every replica.
        #[test]
        fn replicas_converge_whatever_the_order(
            writes in prop::collection::vec(arb_record(), 1..24)
                // A region never makes two different writes with the same (time, region):
                // keep one write per key, as `Record::next` guarantees.
                .prop_map(|mut v| { v.sort_by(|a, b| (a.id.as_str(), a.updated_at_ms, a.updated_in.as_str()).cmp(&(b.id.as_str(), b.updated_at_ms, b.updated_in.as_str()))); v.dedup_by(|a, b| a.id == b.id && a.updated_at_ms == b.updated_at_ms && a.updated_in == b.updated_in); v })
                .prop_shuffle(),
            seed in any::<u64>(),
        ) {
            let d1 = tempfile::tempdir().unwrap();
            let d2 = tempfile::tempdir().unwrap();
            let r1 = EmbeddedStore::open(d1.path(), "r1-east-1").unwrap();
            let r2 = EmbeddedStore::open(d2.path(), "r2-west-2").unwrap();
            for w in &writes {
                r1.apply_records(std::slice::from_ref(w)).unwrap();
            }
            // Another order, in batches.
            let mut other = writes.clone();
            let mut rng = tandem_shared::rng::Rng::new(seed);
            for i in (1..other.len()).rev() {
                other.swap(i, rng.below(i as u64 + 1) as usize);
            }
            for chunk in other.chunks(3) {
                r2.apply_records(chunk).unwrap();
            }
            let state = r1.dump().unwrap();
            prop_assert_eq!(&state, &r2.dump().unwrap());
            prop_assert_eq!(r1.digests().unwrap(), r2.digests().unwrap());
            // And that state is the maximum write per id.
            for rec in &state {
                let best = writes.iter().filter(|w| w.id == rec.id).max_by(|a, b| a.lww_cmp(b)).unwrap();
                prop_assert_eq!(rec, best);
            }
        }
    }
}
