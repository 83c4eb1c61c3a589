//! Writes decided by a consensus log (the strong mode, contract §10): applied in log order, in
//! one durable transaction per batch, together with the log position they bring the store to.
//!
//! Every member of the log applies the same commands in the same order, so each must come out
//! with the very same records: the stamp and the region are decided once (by the leader, carried
//! in the command) and `If-Match` is compared here, at apply time, against the state the log
//! has built so far. Nothing in here reads the clock, the outbox or any other per-member state.
//! Tombstones are never collected in this mode: a later write's version counts on them, and
//! every member must count the same.
//!
//! The log's own bookkeeping (which entry was applied last, the membership) is opaque bytes to
//! the store, kept in [`CONSENSUS`] and written in the same transaction as the writes, so a
//! crash can never leave the items ahead of, or behind, the position they claim.

use super::*;
use tandem_shared::validate::MAX_ITEM_BYTES;

/// key → bytes the consensus log keeps with the state it describes (see the module's doc).
const CONSENSUS: TableDefinition<&str, &[u8]> = TableDefinition::new("consensus");

/// One write as the log decided it; the strong mode's log carries it as it is (serialized).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decided {
    pub id: String,
    /// `None`: a delete.
    pub data: Option<Data>,
    pub if_match: Option<IfMatch>,
    /// The region the client wrote to: the write's `updated_in`, and the region a plain
    /// `"<version>"` tag is compared against (contract §3).
    pub region: String,
    /// The leader's stamp: the write's time is this, or one past the item's current write.
    pub stamp_ms: u64,
}

/// What a decided write did: the new record and whether a live item was replaced, `None` when
/// a delete found nothing, or the client's error (412, 413), which changed nothing.
pub type DecidedOutcome = Result<Option<(Record, bool)>, StoreError>;

/// Applies `w` inside an open transaction's tables. Only a failure of the store is an `Err`.
fn decide_in(
    items: &mut Table<&str, &[u8]>,
    digests: &mut Table<u64, &[u8]>,
    w: Decided,
) -> anyhow::Result<DecidedOutcome> {
    let current = items
        .get(w.id.as_str())?
        .map(|v| decode(v.value()))
        .transpose()?;
    if let Err(e) = check_precondition(w.if_match.as_ref(), current.as_ref(), &w.region) {
        return Ok(Err(e));
    }
    let was_live = current.as_ref().is_some_and(|r| !r.is_tombstone());
    if w.data.is_none() && !was_live {
        return Ok(Ok(None));
    }
    let record = Record::next(&w.id, current.as_ref(), w.data, &w.region, w.stamp_ms);
    let encoded = encode(&record)?;
    if encoded.len() > MAX_ITEM_BYTES {
        return Ok(Err(StoreError::TooLarge(encoded.len())));
    }
    items.insert(w.id.as_str(), encoded.as_slice())?;
    update_digest(digests, current.as_ref(), Some(&record))?;
    Ok(Ok(Some((record, was_live))))
}

impl EmbeddedStore {
    /// Applies `writes` in order and stores `meta` (the log's position), in one transaction
    /// committed with an fsync. An `Err` means nothing was committed.
    pub fn apply_decided(
        &self,
        writes: Vec<Decided>,
        meta: &[(&str, &[u8])],
    ) -> anyhow::Result<Vec<DecidedOutcome>> {
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        let mut outcomes = Vec::with_capacity(writes.len());
        {
            let mut items = txn.open_table(ITEMS)?;
            let mut digests = txn.open_table(DIGESTS)?;
            for w in writes {
                outcomes.push(decide_in(&mut items, &mut digests, w)?);
            }
            put_meta(&txn, meta)?;
        }
        txn.commit()?;
        Ok(outcomes)
    }

    /// What the log stored under `key` with the state ([`Self::apply_decided`]).
    pub fn consensus_meta(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let txn = self.inner.db.begin_read()?;
        let table = match txn.open_table(CONSENSUS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    /// The whole state, read in one snapshot: every record (tombstones included, in id order)
    /// as its stored JSON, one per line. Compact JSON has no raw newline, so the lines split
    /// back unambiguously. It costs the state's size.
    pub fn export(&self) -> anyhow::Result<Vec<u8>> {
        let txn = self.inner.db.begin_read()?;
        let mut lines = Vec::new();
        for entry in txn.open_table(ITEMS)?.iter()? {
            lines.extend_from_slice(entry?.1.value());
            lines.push(b'\n');
        }
        Ok(lines)
    }

    /// Replaces the whole state with `lines` (as [`Self::export`] made them) and stores `meta`,
    /// in one transaction committed with an fsync: a snapshot installed from the leader. Every
    /// line is checked to be a record before anything is replaced.
    pub fn import(&self, lines: &[u8], meta: &[(&str, &[u8])]) -> anyhow::Result<usize> {
        let records = lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(decode)
            .collect::<anyhow::Result<Vec<Record>>>()?;
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
            let mut items = txn.open_table(ITEMS)?;
            items.retain(|_, _| false)?;
            let mut digests = txn.open_table(DIGESTS)?;
            digests.retain(|_, _| false)?;
            for record in &records {
                items.insert(record.id.as_str(), encode(record)?.as_slice())?;
                update_digest(&mut digests, None, Some(record))?;
            }
            put_meta(&txn, meta)?;
        }
        txn.commit()?;
        Ok(records.len())
    }
}

fn put_meta(txn: &WriteTransaction, meta: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let mut table = txn.open_table(CONSENSUS)?;
    for (key, value) in meta {
        table.insert(*key, *value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(id: &str, v: u64, if_match: Option<IfMatch>, region: &str, at: u64) -> Decided {
        Decided {
            id: id.into(),
            data: Some(Data::try_from(json!({ "v": v })).unwrap()),
            if_match,
            region: region.into(),
            stamp_ms: at,
        }
    }

    fn tag(r: &Record) -> Option<IfMatch> {
        Some(IfMatch::parse([r.etag().as_str()]))
    }

    #[test]
    fn members_applying_the_same_log_hold_the_same_records() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = EmbeddedStore::open(d1.path(), "us-east-1").unwrap();
        let b = EmbeddedStore::open(d2.path(), "us-west-2").unwrap();
        let log = [
            put("x", 1, None, "us-east-1", 100),
            put("x", 2, None, "us-west-2", 50),
        ];
        let one = a.apply_decided(log.to_vec(), &[("applied", b"7")]).unwrap();
        for w in log {
            b.apply_decided(vec![w], &[("applied", b"7")]).unwrap();
        }
        assert_eq!(a.dump().unwrap(), b.dump().unwrap());
        assert_eq!(a.digests().unwrap(), b.digests().unwrap());
        // The second write's time is one past the first's, whatever the leader's clock said.
        let (second, replaced) = one[1].as_ref().unwrap().clone().unwrap();
        assert_eq!(
            (second.version, second.updated_at_ms, replaced),
            (2, 101, true)
        );
        assert_eq!(second.updated_in, "us-west-2");
        assert_eq!(b.consensus_meta("applied").unwrap(), Some(b"7".to_vec()));
        assert_eq!(a.outbox_head().unwrap(), 0, "nothing goes to the outbox");
    }

    #[test]
    fn two_writes_on_one_etag_in_log_order_only_the_first_holds() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path(), "us-east-1").unwrap();
        let first = s
            .apply_decided(vec![put("k", 0, None, "us-east-1", 1)], &[])
            .unwrap();
        let base = first[0].as_ref().unwrap().clone().unwrap().0;
        let racing = vec![
            put("k", 1, tag(&base), "us-east-1", 2),
            put("k", 2, tag(&base), "us-west-2", 2),
        ];
        let out = s.apply_decided(racing, &[]).unwrap();
        assert!(matches!(out[0], Ok(Some(_))));
        assert!(matches!(out[1], Err(StoreError::PreconditionFailed)));
        // A delete of nothing is no write; an If-Match on an absent item is a 412.
        let gone = Decided {
            data: None,
            ..put("none", 0, None, "us-east-1", 3)
        };
        assert!(matches!(
            s.apply_decided(vec![gone.clone()], &[]).unwrap()[0],
            Ok(None)
        ));
        let guarded = Decided {
            if_match: Some(IfMatch::Any),
            ..gone
        };
        assert!(matches!(
            s.apply_decided(vec![guarded], &[]).unwrap()[0],
            Err(StoreError::PreconditionFailed)
        ));
    }

    #[test]
    fn an_export_imports_into_another_store_whole() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = EmbeddedStore::open(d1.path(), "us-east-1").unwrap();
        let b = EmbeddedStore::open(d2.path(), "us-west-2").unwrap();
        let log = vec![
            put("a", 1, None, "us-east-1", 10),
            put("b", 2, None, "us-east-1", 11),
            Decided {
                data: None,
                ..put("a", 0, None, "us-east-1", 12)
            },
        ];
        a.apply_decided(log, &[("applied", b"3")]).unwrap();
        b.apply_decided(vec![put("stale", 9, None, "us-west-2", 1)], &[])
            .unwrap();
        let lines = a.export().unwrap();
        assert_eq!(b.import(&lines, &[("applied", b"3")]).unwrap(), 2);
        assert_eq!(
            a.dump().unwrap(),
            b.dump().unwrap(),
            "the tombstone came too"
        );
        assert_eq!(a.digests().unwrap(), b.digests().unwrap());
        assert!(b.import(b"{not a record}\n", &[]).is_err());
        assert_eq!(
            a.dump().unwrap(),
            b.dump().unwrap(),
            "a bad import changes nothing"
        );
    }
}
