//! The embedded store: redb on local disk, one database file per region.
//!
//! Every write commits with `Durability::Immediate` (fsync) before it is acknowledged. Local
//! writes also append to an outbox under a sequence number, in the same transaction, so
//! replication can ship them later without ever missing one. Replicated writes go through
//! [`EmbeddedStore::apply_batch`], which keeps last-writer-wins and records, again in the same
//! transaction, how far this region has applied each peer's outbox.

use super::{
    Page, Store, StoreError, StoredFault, Written, check_precondition, check_size, now_ms,
};
use anyhow::Context as _;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tandem_shared::item::{Data, Item, Record};
use tandem_shared::validate::IfMatch;

/// id → JSON of the latest [`Record`] (tombstones included).
const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// sequence number → JSON of a [`Record`] written in this region.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// `next_seq`, and `applied:<peer>` = the last outbox sequence of that peer applied here.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const NEXT_SEQ: &str = "next_seq";

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
    // A region process is the only instance of its region, so its fault lives in memory and
    // clears when the process restarts, as a fresh Lambda instance's would not: that is fine,
    // a crash is already a bigger fault than the one that was set.
    fault: Mutex<Option<StoredFault>>,
}

fn decode(bytes: &[u8]) -> anyhow::Result<Record> {
    serde_json::from_slice(bytes).context("corrupt record in the embedded store")
}

fn encode(record: &Record) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(record)?)
}

fn applied_key(peer: &str) -> String {
    format!("applied:{peer}")
}

impl EmbeddedStore {
    /// Opens (or creates) the store of `region` under `dir`.
    pub fn open(dir: &Path, region: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(ITEMS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(META)?;
        }
        txn.commit()?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                region: region.to_owned(),
                fault: Mutex::new(None),
            }),
        })
    }

    /// The region this store belongs to.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The latest record for `id`, tombstone or not.
    pub fn record(&self, id: &str) -> anyhow::Result<Option<Record>> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(ITEMS)?;
        table.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Writes (or, with `data: None`, deletes) `id` as a local write of this region, and
    /// queues it in the outbox. Returns the new record and whether a live item was replaced,
    /// or `None` when a delete found nothing to delete.
    fn write_local(
        &self,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Result<Option<(Record, bool)>, StoreError> {
        let mut txn = self.inner.db.begin_write().map_err(anyhow::Error::from)?;
        txn.set_durability(Durability::Immediate);
        let result = {
            let mut items = txn.open_table(ITEMS).map_err(anyhow::Error::from)?;
            let current = items
                .get(id)
                .map_err(anyhow::Error::from)?
                .map(|v| decode(v.value()))
                .transpose()?;
            check_precondition(if_match, current.as_ref())?;
            let was_live = current.as_ref().is_some_and(|r| !r.is_tombstone());
            if data.is_none() && !was_live {
                return Ok(None);
            }
            let record = Record::next(id, current.as_ref(), data, &self.inner.region, now_ms());
            check_size(&record)?;
            let bytes = encode(&record)?;
            items
                .insert(id, bytes.as_slice())
                .map_err(anyhow::Error::from)?;
            let mut meta = txn.open_table(META).map_err(anyhow::Error::from)?;
            let seq = meta
                .get(NEXT_SEQ)
                .map_err(anyhow::Error::from)?
                .map(|v| v.value())
                .unwrap_or(1);
            meta.insert(NEXT_SEQ, seq + 1)
                .map_err(anyhow::Error::from)?;
            let mut outbox = txn.open_table(OUTBOX).map_err(anyhow::Error::from)?;
            outbox
                .insert(seq, bytes.as_slice())
                .map_err(anyhow::Error::from)?;
            (record, was_live)
        };
        txn.commit().map_err(anyhow::Error::from)?;
        Ok(Some(result))
    }

    /// Applies writes replicated from `peer`, last-writer-wins, and records `last_seq` as the
    /// last of that peer's outbox applied here, all in one durable transaction. Returns how many
    /// records won and were written.
    pub fn apply_batch(
        &self,
        peer: &str,
        records: &[Record],
        last_seq: u64,
    ) -> anyhow::Result<usize> {
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let mut applied = 0;
        {
            let mut items = txn.open_table(ITEMS)?;
            for record in records {
                let current = items
                    .get(record.id.as_str())?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                if record.wins_over(current.as_ref()) {
                    items.insert(record.id.as_str(), encode(record)?.as_slice())?;
                    applied += 1;
                }
            }
            let mut meta = txn.open_table(META)?;
            let key = applied_key(peer);
            let before = meta.get(key.as_str())?.map(|v| v.value()).unwrap_or(0);
            meta.insert(key.as_str(), before.max(last_seq))?;
        }
        txn.commit()?;
        Ok(applied)
    }

    /// Up to `limit` outbox entries with sequence numbers after `after`, oldest first.
    pub fn changes_since(&self, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, Record)>> {
        let txn = self.inner.db.begin_read()?;
        let outbox = txn.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in outbox.range(after.saturating_add(1)..)?.take(limit) {
            let (seq, bytes) = entry?;
            out.push((seq.value(), decode(bytes.value())?));
        }
        Ok(out)
    }

    /// The sequence number of the latest local write (0 when none).
    pub fn outbox_head(&self) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1) - 1)
    }

    /// The last sequence number of `peer`'s outbox applied here (0 when none).
    pub fn applied_from(&self, peer: &str) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(applied_key(peer).as_str())?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Every record, tombstones included, in id order: the replica's whole state.
    pub fn dump(&self) -> anyhow::Result<Vec<Record>> {
        let txn = self.inner.db.begin_read()?;
        let items = txn.open_table(ITEMS)?;
        let mut out = Vec::with_capacity(items.len()? as usize);
        for entry in items.iter()? {
            out.push(decode(entry?.1.value())?);
        }
        Ok(out)
    }

    fn list_sync(&self, limit: usize, after: Option<&str>) -> anyhow::Result<Page> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(ITEMS)?;
        let range = match after {
            Some(a) => {
                table.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => table.range::<&str>(..)?,
        };
        let mut items = Vec::new();
        let mut more = false;
        for entry in range {
            let record = decode(entry?.1.value())?;
            let Some(item) = record.to_item() else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(item);
        }
        let last = if more {
            items.last().map(|i: &Item| i.id.clone())
        } else {
            None
        };
        Ok(Page { items, last })
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
    async fn get(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |s| Ok(s.record(&id)?.and_then(|r| r.to_item())))
            .await
    }

    async fn put(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> Result<Written, StoreError> {
        let id = id.to_owned();
        self.blocking(move |s| {
            let (record, replaced) = s
                .write_local(&id, Some(data), if_match)?
                .ok_or_else(|| anyhow::anyhow!("a put always writes"))?;
            let item = record
                .to_item()
                .ok_or_else(|| anyhow::anyhow!("a put is never a tombstone"))?;
            Ok(Written {
                item,
                created: !replaced,
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.blocking(move |s| s.write_local(&id, None, None).map(|_| ()))
            .await
    }

    async fn list(&self, limit: usize, after: Option<String>) -> Result<Page, StoreError> {
        self.blocking(move |s| Ok(s.list_sync(limit, after.as_deref())?))
            .await
    }

    async fn load_fault(&self) -> Result<Option<StoredFault>, StoreError> {
        Ok(*self.inner.fault.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn save_fault(&self, fault: StoredFault) -> Result<(), StoreError> {
        *self.inner.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(fault);
        Ok(())
    }

    async fn replication(&self) -> serde_json::Value {
        let store = self.clone();
        let head = tokio::task::spawn_blocking(move || store.outbox_head().ok())
            .await
            .ok()
            .flatten();
        serde_json::json!({ "store": "embedded", "outbox_seq": head })
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
            data: data.map(|d| d.as_object().unwrap().clone()),
            version: ts,
            updated_at_ms: ts,
            updated_in: region.into(),
        }
    }

    #[tokio::test]
    async fn local_writes_fill_the_outbox_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let a = json!({"n": 1}).as_object().unwrap().clone();
        s.put("a", a.clone(), None).await.unwrap();
        s.put("b", a.clone(), None).await.unwrap();
        s.delete("a").await.unwrap();
        s.delete("never-there").await.unwrap();
        let changes = s.changes_since(0, 10).unwrap();
        let seqs: Vec<u64> = changes.iter().map(|c| c.0).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(changes[2].1.is_tombstone());
        assert_eq!(s.changes_since(2, 10).unwrap().len(), 1);
        assert_eq!(s.outbox_head().unwrap(), 3);
    }

    #[tokio::test]
    async fn apply_batch_is_last_writer_wins_and_records_progress() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-west-2").unwrap();
        let newer = record("x", Some(json!({"v": "new"})), 20, "us-east-1");
        let older = record("x", Some(json!({"v": "old"})), 10, "us-east-1");
        assert_eq!(
            s.apply_batch("us-east-1", std::slice::from_ref(&newer), 5)
                .unwrap(),
            1
        );
        assert_eq!(s.apply_batch("us-east-1", &[older], 6).unwrap(), 0);
        assert_eq!(s.record("x").unwrap(), Some(newer));
        assert_eq!(s.applied_from("us-east-1").unwrap(), 6);
        assert_eq!(s.applied_from("eu-west-1").unwrap(), 0);
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
                data: v.map(|v| json!({"v": v}).as_object().unwrap().clone()),
                version,
                updated_at_ms: ts,
                updated_in: region.into(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// SPEC §2: applying the same writes in any order, one at a time or in batches, ends in
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
                r1.apply_batch("peer", std::slice::from_ref(w), 0).unwrap();
            }
            // Another order, in batches.
            let mut other = writes.clone();
            let mut s = seed;
            for i in (1..other.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                other.swap(i, (s >> 33) as usize % (i + 1));
            }
            for chunk in other.chunks(3) {
                r2.apply_batch("peer", chunk, 0).unwrap();
            }
            let state = r1.dump().unwrap();
            prop_assert_eq!(&state, &r2.dump().unwrap());
            // And that state is the maximum write per id.
            for rec in &state {
                let best = writes.iter().filter(|w| w.id == rec.id).max_by(|a, b| a.lww_cmp(b)).unwrap();
                prop_assert_eq!(rec, best);
            }
        }
    }
}
