//! The embedded store's replication log: outbox and state pages for peers, applying their
//! writes under last-writer-wins with the applied position in the same transaction, digests
//! for anti-entropy, and housekeeping (outbox compaction, tombstone collection).

use super::*;
use tandem_shared::sync::lock;

/// A page of a region's outbox as a peer pulls it, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxPage {
    pub incarnation: u64,
    /// The latest sequence number.
    pub head: u64,
    /// Entries up to here were compacted: a peer that has applied less must copy the state.
    pub floor: u64,
    /// The last sequence number this page covers, skipped (superseded) entries included.
    pub through: u64,
    /// Sequence number and stored record (JSON), for the ids whose record still exists.
    pub records: Vec<(u64, Vec<u8>)>,
}

/// A page of a region's whole state (tombstones included), in id order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemsPage {
    pub incarnation: u64,
    /// The outbox head when this page was read.
    pub head: u64,
    pub records: Vec<Vec<u8>>,
    /// Where the next page starts (exclusive), or `None` at the end.
    pub next: Option<String>,
}

/// How far this region has applied a peer's outbox, and for which incarnation of the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerPosition {
    pub incarnation: Option<u64>,
    pub applied: u64,
}

fn applied_key(peer: &str) -> String {
    format!("applied:{peer}")
}

fn incarnation_key(peer: &str) -> String {
    format!("incarnation:{peer}")
}

/// The id an outbox entry names (older databases stored the whole record).
fn outbox_id(bytes: &[u8]) -> anyhow::Result<String> {
    if bytes.first() == Some(&b'{') {
        return Ok(decode(bytes)?.id);
    }
    Ok(std::str::from_utf8(bytes)
        .context("corrupt outbox entry")?
        .to_owned())
}

/// Writes `records` that win under last-writer-wins, inside `txn`; returns how many won.
fn apply_in(txn: &WriteTransaction, records: &[Record]) -> anyhow::Result<usize> {
    let mut items = txn.open_table(ITEMS)?;
    let mut digests = txn.open_table(DIGESTS)?;
    let mut applied = 0;
    for record in records {
        let current = items
            .get(record.id.as_str())?
            .map(|v| decode(v.value()))
            .transpose()?;
        if record.wins_over(current.as_ref()) {
            items.insert(record.id.as_str(), encode(record)?.as_slice())?;
            update_digest(&mut digests, current.as_ref(), Some(record))?;
            applied += 1;
        }
    }
    Ok(applied)
}

impl EmbeddedStore {
    /// Applies writes replicated from `peer`, last-writer-wins, and records `last_seq` of the
    /// peer's `incarnation` as the last of its outbox applied here, all in one durable
    /// transaction. Returns how many records won and were written.
    pub fn apply_batch(
        &self,
        peer: &str,
        incarnation: u64,
        records: &[Record],
        last_seq: u64,
    ) -> anyhow::Result<usize> {
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let applied = apply_in(&txn, records)?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(applied_key(peer).as_str(), last_seq)?;
            meta.insert(incarnation_key(peer).as_str(), incarnation)?;
        }
        txn.commit()?;
        self.recheck_vouch(peer);
        Ok(applied)
    }

    /// Names the peers whose state this region must have copied (in this incarnation) before it
    /// vouches for a read: until then an absent item may be absent only here, and reads that
    /// find nothing answer 503 instead of 404 ([`Store::vouch`]). The position recorded with a
    /// peer's first copy is durable, so a region restarted on its own disk vouches at once;
    /// one that lost its disk copies again first.
    pub fn require_peers(&self, peers: &[String]) -> anyhow::Result<()> {
        let born_with_stack = {
            let txn = self.inner.db.begin_read()?;
            meta_get(&txn.open_table(META)?, BORN_WITH_STACK)? == 1
        };
        let mut missing = Vec::new();
        for peer in peers.iter().filter(|_| !born_with_stack) {
            if self.peer_position(peer)?.incarnation.is_none() {
                missing.push(peer.clone());
            }
        }
        *lock(&self.inner.not_copied) = missing;
        Ok(())
    }

    /// Records that this database was created with the whole stack (every region's disk new):
    /// no peer can then hold a write this region lacks other than by its log, which replication
    /// brings as usual, so the region vouches for its reads from the start, and after any
    /// restart on this disk. Ignored for a database that already existed; a region that loses
    /// its disk later is not started with it, and copies its peers first.
    pub fn born_with_the_stack(&self) -> anyhow::Result<()> {
        if !self.inner.created {
            return Ok(());
        }
        let txn = self.inner.db.begin_write()?;
        txn.open_table(META)?.insert(BORN_WITH_STACK, 1)?;
        txn.commit()?;
        Ok(())
    }

    /// `peer`'s state is copied (its position is recorded): one peer fewer to wait for.
    fn recheck_vouch(&self, peer: &str) {
        let mut missing = lock(&self.inner.not_copied);
        if missing.iter().any(|p| p == peer) {
            missing.retain(|p| p != peer);
            tracing::info!(
                peer,
                "copied the peer's state: this region vouches for its reads"
            );
        }
    }

    /// The peers whose state is not copied yet (empty: this region vouches for its reads).
    pub fn not_copied(&self) -> Vec<String> {
        lock(&self.inner.not_copied).clone()
    }

    /// Applies records under last-writer-wins without moving any peer's position (a resync
    /// page, an anti-entropy repair). Returns how many won.
    pub fn apply_records(&self, records: &[Record]) -> anyhow::Result<usize> {
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let applied = apply_in(&txn, records)?;
        txn.commit()?;
        Ok(applied)
    }

    /// How far `peer`'s outbox has been applied here, and for which of its incarnations.
    pub fn peer_position(&self, peer: &str) -> anyhow::Result<PeerPosition> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(PeerPosition {
            incarnation: meta.get(incarnation_key(peer).as_str())?.map(|v| v.value()),
            applied: meta_get(&meta, &applied_key(peer))?,
        })
    }

    /// The outbox after `after`: at most `limit` entries, and at most `max_bytes` of records
    /// (but always at least one record when there is one and `limit` is not 0), each id's
    /// current record once. A `limit` of 0 reads the head and the floor only.
    pub fn changes_since(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> anyhow::Result<OutboxPage> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let outbox = txn.open_table(OUTBOX)?;
        let items = txn.open_table(ITEMS)?;
        let mut page = OutboxPage {
            incarnation: self.inner.incarnation,
            head: meta_get(&meta, NEXT_SEQ)?.saturating_sub(1),
            floor: meta_get(&meta, OUTBOX_FLOOR)?,
            through: after,
            records: Vec::new(),
        };
        if limit == 0 {
            return Ok(page); // only the head and the floor
        }
        let (mut bytes, mut seen) = (0usize, HashSet::new());
        for entry in outbox.range(after.saturating_add(1)..)? {
            let (seq, id) = entry?;
            let id = outbox_id(id.value())?;
            if seen.contains(&id) {
                page.through = seq.value();
                continue;
            }
            if let Some(record) = items.get(id.as_str())? {
                let record = record.value();
                let full = !page.records.is_empty()
                    && (page.records.len() >= limit || bytes + record.len() > max_bytes);
                if full {
                    break;
                }
                bytes += record.len();
                page.records.push((seq.value(), record.to_vec()));
            }
            seen.insert(id);
            page.through = seq.value();
        }
        Ok(page)
    }

    /// A page of every record (tombstones included) in id order after `after`, at most
    /// `max_bytes` (at least one record), optionally only those of the digest buckets whose
    /// bits are set in `buckets`.
    pub fn items_page(
        &self,
        after: Option<&str>,
        buckets: Option<u64>,
        max_bytes: usize,
    ) -> anyhow::Result<ItemsPage> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let items = txn.open_table(ITEMS)?;
        let range = match after {
            Some(a) => {
                items.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => items.range::<&str>(..)?,
        };
        let mut page = ItemsPage {
            incarnation: self.inner.incarnation,
            head: meta_get(&meta, NEXT_SEQ)?.saturating_sub(1),
            records: Vec::new(),
            next: None,
        };
        let (mut bytes, mut last) = (0usize, None);
        for entry in range {
            let (id, record) = entry?;
            if buckets.is_some_and(|mask| mask & digest::bit_of(id.value()) == 0) {
                continue;
            }
            let record = record.value();
            if !page.records.is_empty() && bytes + record.len() > max_bytes {
                // More to come: the next page starts after the last record sent.
                page.next = last;
                break;
            }
            bytes += record.len();
            page.records.push(record.to_vec());
            last = Some(id.value().to_owned());
        }
        Ok(page)
    }

    /// The digest of each bucket of live items.
    pub fn digests(&self) -> anyhow::Result<Vec<BucketDigest>> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(DIGESTS)?;
        let mut out = vec![[0u8; 16]; BUCKETS];
        for (i, slot) in out.iter_mut().enumerate() {
            if let Some(v) = table.get(i as u64)? {
                slot.copy_from_slice(v.value());
            }
        }
        Ok(out)
    }

    /// Drops outbox entries up to `upto` (every peer has applied them); returns how many.
    pub fn compact_outbox(&self, upto: u64) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_write()?;
        let removed;
        {
            let mut meta = txn.open_table(META)?;
            let floor = meta_get(&meta, OUTBOX_FLOOR)?;
            let upto = upto.min(meta_get(&meta, NEXT_SEQ)?.saturating_sub(1));
            if upto <= floor {
                return Ok(0);
            }
            let mut outbox = txn.open_table(OUTBOX)?;
            let before = outbox.len()?;
            outbox.retain_in(..=upto, |_, _| false)?;
            removed = before - outbox.len()?;
            meta.insert(OUTBOX_FLOOR, upto)?;
        }
        txn.commit()?;
        Ok(removed)
    }

    /// Removes tombstones written before `before_ms` whose ids no longer wait in the outbox
    /// (every peer has them); returns how many. Digests do not change: tombstones count as
    /// absent there. The scan runs in a read transaction, so writers are held up only by the
    /// short write that removes what it found (each one checked again there).
    pub fn collect_tombstones(&self, before_ms: u64) -> anyhow::Result<u64> {
        let doomed = {
            let txn = self.inner.db.begin_read()?;
            let waiting: HashSet<String> = txn
                .open_table(OUTBOX)?
                .iter()?
                .map(|e| outbox_id(e?.1.value()))
                .collect::<anyhow::Result<_>>()?;
            let mut doomed = Vec::new();
            for entry in txn.open_table(ITEMS)?.iter()? {
                let (id, bytes) = entry?;
                let bytes = bytes.value();
                // Tombstones are small; skip decoding live records of any size.
                if bytes.len() > 1024 || waiting.contains(id.value()) {
                    continue;
                }
                let record = decode(bytes)?;
                if record.is_tombstone() && record.updated_at_ms < before_ms {
                    doomed.push(record);
                }
            }
            doomed
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let txn = self.inner.db.begin_write()?;
        let mut removed = 0;
        {
            let mut items = txn.open_table(ITEMS)?;
            for record in &doomed {
                // Only the very tombstone that was scanned: a write since then changed it.
                let same = items
                    .get(record.id.as_str())?
                    .map(|v| decode(v.value()))
                    .transpose()?
                    .is_some_and(|now| now == *record);
                if same {
                    items.remove(record.id.as_str())?;
                    removed += 1;
                }
            }
        }
        txn.commit()?;
        Ok(removed)
    }

    /// The outbox floor (see [`OUTBOX_FLOOR`]).
    pub fn outbox_floor(&self) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_read()?;
        meta_get(&txn.open_table(META)?, OUTBOX_FLOOR)
    }

    /// The latest stamp this region gave a write (its hybrid clock).
    pub fn last_stamp(&self) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_read()?;
        meta_get(&txn.open_table(META)?, HLC)
    }

    /// The sequence number of the latest local write (0 when none).
    pub fn outbox_head(&self) -> anyhow::Result<u64> {
        let txn = self.inner.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta_get(&meta, NEXT_SEQ)?.saturating_sub(1))
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

    /// Records what the replicator says, for health.
    pub fn set_replication_status(&self, status: RegionReplication) {
        *lock(&self.inner.replication) = Some(status);
    }
}
