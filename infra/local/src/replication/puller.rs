//! One replication link: pulling a peer's writes into this region, and keeping the two in step.
//!
//! Each step applies what the artificial lag has released, fetches the next outbox page, checks
//! it (signature, sequence numbers, records), and holds it for the lag. A peer whose identity
//! changed, whose head went backwards or whose log has a gap is copied whole (resync); when the
//! link is idle, digests are compared and differing buckets repaired (anti-entropy).

use super::routes::{self, ChangesQuery, ItemsQuery};
use super::wire::Frame;
use super::{
    ANTI_ENTROPY_EVERY, BATCH, DigestState, LinkState, MAX_BACKOFF, MAX_HELD_BYTES, MAX_PULL_BYTES,
    POLL, Peer, Replicator, SAMPLES,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often a paused link reads the peer's head, so its backlog figure stays true.
const HEAD_EVERY: Duration = Duration::from_secs(1);
use tandem_api::store::digest::{self, BUCKETS, BucketDigest};
use tandem_api::store::embedded::PeerPosition;
use tandem_api::store::now_ms;
use tandem_shared::Record;
use tandem_shared::sync::lock;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("peer unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("peer answered {0}")]
    Status(reqwest::StatusCode),
    /// The peer answered something this region must not apply: counted and logged.
    #[error("refused the peer's answer: {0}")]
    Refused(String),
    #[error("local store: {0:#}")]
    Store(#[from] anyhow::Error),
}

fn refused(why: impl Into<String>) -> PullError {
    PullError::Refused(why.into())
}

/// A fetched outbox page waiting for the artificial lag.
struct Held {
    received: Instant,
    incarnation: u64,
    through: u64,
    records: Vec<Record>,
    bytes: usize,
}

pub struct Link {
    r: Replicator,
    peer: Peer,
    held: VecDeque<Held>,
    held_bytes: usize,
    last_anti_entropy: Option<Instant>,
}

impl Link {
    pub fn new(r: Replicator, peer: Peer) -> Link {
        Link {
            r,
            peer,
            held: VecDeque::new(),
            held_bytes: 0,
            last_anti_entropy: None,
        }
    }

    pub async fn run(mut self) {
        let mut backoff = POLL;
        let mut head_read: Option<Instant> = None;
        loop {
            if self.r.config().paused {
                // Paused: nothing is applied, but the backlog figure stays true (read from the
                // peer's current head, once a second).
                if head_read.is_none_or(|t| t.elapsed() >= HEAD_EVERY) {
                    head_read = Some(Instant::now());
                    if let Err(err) = self.read_head().await {
                        self.failed(&err);
                    }
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            match self.step().await {
                Ok(more) => {
                    backoff = POLL;
                    self.r.with_stats(&self.peer.name, |s| {
                        if s.status.state != LinkState::Resyncing {
                            s.status.state = LinkState::Ok;
                        }
                        s.status.last_pull_ms = Some(now_ms());
                        s.status.last_error = None;
                    });
                    // Caught up: the next pull waits at the peer for a write (a long poll),
                    // unless pages are held back for the artificial lag, which must be
                    // applied on time.
                    if !more && !self.long_polls() {
                        tokio::time::sleep(POLL).await;
                    }
                }
                Err(err) => {
                    self.failed(&err);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Reads the peer's outbox head (a page of no records) into the link's figures.
    async fn read_head(&self) -> Result<(), PullError> {
        let pos = self.position().await?;
        let query = ChangesQuery {
            after: pos.applied,
            applied: Some(pos.applied),
            incarnation: pos.incarnation.unwrap_or(0),
            limit: Some(0),
            ..ChangesQuery::default()
        };
        let frame = self.fetch(&query.path()).await?;
        self.r.with_stats(&self.peer.name, |s| {
            s.status.source_head = frame.head;
            s.status.last_error = None;
        });
        Ok(())
    }

    /// Whether the next pull asks the peer to wait for new writes ([`super::serve::MAX_WAIT`]).
    fn long_polls(&self) -> bool {
        self.held.is_empty() && self.r.config().lag_ms == 0
    }

    fn failed(&self, err: &PullError) {
        let refused = matches!(err, PullError::Refused(_));
        if refused {
            tracing::warn!(peer = %self.peer.name, error = %err, "replication answer refused");
        } else {
            tracing::debug!(peer = %self.peer.name, error = %err, "replication pull failed");
        }
        self.r.with_stats(&self.peer.name, |s| {
            s.status.state = LinkState::Failing;
            s.status.last_error = Some(err.to_string());
            s.status.refused += u64::from(refused);
        });
    }

    /// One round; true when the peer has more waiting.
    async fn step(&mut self) -> Result<bool, PullError> {
        self.apply_due().await?;
        let pos = self.position().await?;
        let mut more = false;
        if self.held_bytes < MAX_HELD_BYTES {
            let cursor = self.held.back().map_or(pos.applied, |h| h.through);
            let wait = match self.long_polls() {
                true => super::serve::MAX_WAIT,
                false => Duration::ZERO,
            };
            let query = ChangesQuery {
                after: cursor,
                applied: Some(pos.applied),
                incarnation: pos.incarnation.unwrap_or(0),
                limit: Some(BATCH),
                max_bytes: Some(MAX_PULL_BYTES),
                wait_ms: Some(wait.as_millis() as u64),
            };
            let frame = self.fetch(&query.path()).await?;
            // Paused while the pull waited at the peer: what it brought is not applied (the
            // next pull after the pause asks for it again).
            if self.r.config().paused {
                return Ok(false);
            }
            if let Some(reason) = needs_resync(&pos, cursor, &frame) {
                self.resync(frame.incarnation, &reason).await?;
                return Ok(true);
            }
            let records = check_changes(cursor, &frame)?;
            more = frame.through < frame.head;
            self.r.with_stats(&self.peer.name, |s| {
                s.status.source_head = frame.head;
            });
            let bytes = frame.entries.iter().map(|(_, b)| b.len()).sum();
            self.held_bytes += bytes;
            self.held.push_back(Held {
                received: Instant::now(),
                incarnation: frame.incarnation,
                through: frame.through,
                records,
                bytes,
            });
            self.apply_due().await?;
        }
        // Digests can only agree when neither side has writes in flight to the other.
        let idle = !more && self.held.is_empty() && self.peer_caught_up().await;
        let due = self
            .last_anti_entropy
            .is_none_or(|t| t.elapsed() >= ANTI_ENTROPY_EVERY);
        if idle && due {
            self.anti_entropy(pos).await?;
        }
        Ok(more)
    }

    /// Whether the peer has applied everything in this region's outbox.
    async fn peer_caught_up(&self) -> bool {
        let acked = lock(&self.r.acked).get(&self.peer.name).copied();
        let store = self.r.store.clone();
        let head = tokio::task::spawn_blocking(move || store.outbox_head()).await;
        matches!((acked, head), (Some(a), Ok(Ok(h))) if a >= h)
    }

    async fn position(&self) -> Result<PeerPosition, PullError> {
        let (store, name) = (self.r.store.clone(), self.peer.name.clone());
        Ok(
            tokio::task::spawn_blocking(move || store.peer_position(&name))
                .await
                .map_err(anyhow::Error::from)??,
        )
    }

    /// Applies the held pages whose lag has passed, oldest first, each with its position.
    async fn apply_due(&mut self) -> Result<(), PullError> {
        let lag = Duration::from_millis(self.r.config().lag_ms);
        while self
            .held
            .front()
            .is_some_and(|h| h.received.elapsed() >= lag)
        {
            let Some(held) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= held.bytes;
            let (store, name) = (self.r.store.clone(), self.peer.name.clone());
            let records = held.records;
            let (incarnation, through) = (held.incarnation, held.through);
            let records = tokio::task::spawn_blocking(move || {
                store
                    .apply_batch(&name, incarnation, &records, through)
                    .map(|_| records)
            })
            .await
            .map_err(anyhow::Error::from)??;
            let done = now_ms();
            self.r.with_stats(&self.peer.name, |s| {
                s.status.applied = through;
                for record in &records {
                    if s.lags.len() == SAMPLES {
                        s.lags.pop_front();
                    }
                    s.lags.push_back(done.saturating_sub(record.updated_at_ms));
                }
            });
        }
        Ok(())
    }

    async fn fetch(&self, path: &str) -> Result<Frame, PullError> {
        let target = super::client::Target {
            region: &self.peer.name,
            url: &self.peer.url,
        };
        self.r.client.frame(target, path).await
    }

    /// Copies the peer's whole state, then takes up its log at the head seen before the copy.
    async fn resync(&mut self, incarnation: u64, reason: &str) -> Result<(), PullError> {
        if reason == FIRST_CONTACT {
            tracing::info!(peer = %self.peer.name, reason, "replication resync: copying the peer's state");
        } else {
            tracing::warn!(peer = %self.peer.name, reason, "replication resync: copying the peer's state");
        }
        self.r.with_stats(&self.peer.name, |s| {
            s.status.state = LinkState::Resyncing;
            s.status.resyncs += 1;
        });
        self.held.clear();
        self.held_bytes = 0;
        let (head, _) = self.copy_items(incarnation, None).await?;
        let (store, name) = (self.r.store.clone(), self.peer.name.clone());
        tokio::task::spawn_blocking(move || store.apply_batch(&name, incarnation, &[], head))
            .await
            .map_err(anyhow::Error::from)??;
        self.r.with_stats(&self.peer.name, |s| {
            s.status.state = LinkState::Ok;
            s.status.applied = head;
            s.status.source_head = s.status.source_head.max(head);
        });
        // Compare digests at the next idle moment.
        self.last_anti_entropy = None;
        Ok(())
    }

    /// Applies every record of the peer (or of the digest buckets in a mask), page by page,
    /// last writer wins; returns the peer's outbox head as of the first page and how many won.
    async fn copy_items(
        &self,
        incarnation: u64,
        buckets: Option<u64>,
    ) -> Result<(u64, usize), PullError> {
        let (mut after, mut head, mut won) = (None::<String>, None, 0);
        loop {
            let query = ItemsQuery {
                after: after.clone(),
                buckets,
                max_bytes: Some(MAX_PULL_BYTES),
            };
            let frame = self.fetch(&query.path()).await?;
            if frame.incarnation != incarnation {
                return Err(refused("the peer changed identity during a copy"));
            }
            head.get_or_insert(frame.head);
            let records = frame
                .entries
                .iter()
                .map(|(_, bytes)| check_record(bytes))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(mask) = buckets
                && let Some(bad) = records.iter().find(|r| mask & digest::bit_of(&r.id) == 0)
            {
                return Err(refused(format!(
                    "{} is not in the buckets asked for",
                    bad.id
                )));
            }
            let store = self.r.store.clone();
            won += tokio::task::spawn_blocking(move || store.apply_records(&records))
                .await
                .map_err(anyhow::Error::from)??;
            match frame.next {
                // Ids only grow, so a copy always ends.
                Some(next)
                    if tandem_shared::validate::validate_id(&next).is_ok()
                        && after.as_deref().is_none_or(|a| next.as_str() > a) =>
                {
                    after = Some(next)
                }
                Some(next) => return Err(refused(format!("page continues at {next:?}"))),
                None => break,
            }
        }
        Ok((head.unwrap_or(0), won))
    }

    /// Compares digests with the peer and repairs the buckets that differ.
    /// Digests are compared only while neither side has writes in flight to the other: the
    /// peer's head (read with its digests) must be what this region applied, and the peer must
    /// still have applied this region's whole outbox once this region's digests are read.
    /// Otherwise a write that the logs are about to deliver would look like a divergence.
    async fn anti_entropy(&mut self, pos: PeerPosition) -> Result<(), PullError> {
        let Some(incarnation) = pos.incarnation else {
            return Ok(());
        };
        let frame = self.fetch(routes::DIGESTS).await?;
        if frame.incarnation != incarnation {
            return Ok(()); // the next pull resyncs
        }
        if frame.head != pos.applied {
            return Ok(()); // the peer wrote since: compare at a quieter moment
        }
        let theirs = check_digests(&frame)?;
        let store = self.r.store.clone();
        let ours = tokio::task::spawn_blocking(move || store.digests())
            .await
            .map_err(anyhow::Error::from)??;
        if !self.peer_caught_up().await {
            return Ok(()); // this region wrote since
        }
        let differ = digest::differing(&ours, &theirs);
        let mut repaired = 0;
        if !differ.is_empty() {
            // One walk of the peer's items for all the buckets that differ.
            repaired = self
                .copy_items(incarnation, Some(digest::mask_of(&differ)))
                .await?
                .1;
        }
        if !differ.is_empty() {
            tracing::warn!(peer = %self.peer.name, buckets = differ.len(), repaired, "anti-entropy: digests differed; buckets compared and repaired");
        }
        self.r.with_stats(&self.peer.name, |s| {
            s.status.repaired += repaired as u64;
            s.status.digest = if differ.is_empty() {
                DigestState::Agree
            } else {
                DigestState::Differ
            };
        });
        self.last_anti_entropy = Some(Instant::now());
        Ok(())
    }
}

const FIRST_CONTACT: &str = "first contact with this peer";

/// Why this region must copy the peer's state rather than follow its log, if it must.
fn needs_resync(pos: &PeerPosition, cursor: u64, frame: &Frame) -> Option<String> {
    match pos.incarnation {
        None => Some(FIRST_CONTACT.into()),
        Some(i) if i != frame.incarnation => {
            Some("the peer's data has a new identity (it lost its disk?)".into())
        }
        _ if frame.head < cursor => Some(format!(
            "the peer's head {} is behind what was applied ({cursor})",
            frame.head
        )),
        _ if cursor < frame.floor => Some(format!(
            "the peer compacted its log past {cursor} (to {})",
            frame.floor
        )),
        _ => None,
    }
}

/// The records of an outbox page, if the page is possible: sequence numbers strictly rising,
/// after `cursor`, within `through`, and `through` within the head.
fn check_changes(cursor: u64, frame: &Frame) -> Result<Vec<Record>, PullError> {
    if frame.through < cursor || frame.through > frame.head {
        return Err(refused(format!(
            "impossible page: through {} with cursor {cursor} and head {}",
            frame.through, frame.head
        )));
    }
    let mut last = cursor;
    let mut records = Vec::with_capacity(frame.entries.len());
    for (seq, bytes) in &frame.entries {
        if *seq <= last || *seq > frame.through {
            return Err(refused(format!(
                "impossible sequence {seq} after {last} (page through {})",
                frame.through
            )));
        }
        last = *seq;
        records.push(check_record(bytes)?);
    }
    Ok(records)
}

/// A record as a peer sent it, if it is one this region could have accepted itself.
pub fn check_record(bytes: &[u8]) -> Result<Record, PullError> {
    let record: Record =
        serde_json::from_slice(bytes).map_err(|e| refused(format!("bad record: {e}")))?;
    if tandem_shared::validate::validate_id(&record.id).is_err()
        || !tandem_shared::region::is_valid_region(&record.updated_in)
        || record.version == 0
    {
        return Err(refused(format!("impossible record for id {:?}", record.id)));
    }
    Ok(record)
}

fn check_digests(frame: &Frame) -> Result<Vec<BucketDigest>, PullError> {
    if frame.entries.len() != BUCKETS {
        return Err(refused("wrong number of digest buckets"));
    }
    frame
        .entries
        .iter()
        .enumerate()
        .map(|(i, (n, bytes))| {
            let d: BucketDigest = bytes
                .as_slice()
                .try_into()
                .map_err(|_| refused("digest of the wrong size"))?;
            if *n != i as u64 {
                return Err(refused("digest buckets out of order"));
            }
            Ok(d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(head: u64, through: u64, seqs: &[u64]) -> Frame {
        let rec = br#"{"id":"a","data":{},"version":1,"updated_at_ms":1,"updated_in":"us-east-1"}"#;
        Frame {
            incarnation: 9,
            head,
            through,
            entries: seqs.iter().map(|s| (*s, rec.to_vec())).collect(),
            ..Frame::default()
        }
    }

    #[test]
    fn impossible_pages_are_refused() {
        assert_eq!(check_changes(2, &frame(5, 4, &[3, 4])).unwrap().len(), 2);
        // The 2^64-1 sequence of a lying peer, a sequence past the page, going backwards,
        // not after the cursor, a page past the head.
        for bad in [
            frame(u64::MAX, u64::MAX, &[u64::MAX]).with_head(5),
            frame(5, 4, &[3, 5]),
            frame(5, 4, &[4, 3]),
            frame(5, 4, &[2]),
            frame(3, 4, &[3]),
        ] {
            assert!(
                matches!(check_changes(2, &bad), Err(PullError::Refused(_))),
                "{bad:?}"
            );
        }
        let mut bad_record = frame(5, 3, &[3]);
        bad_record.entries[0].1 = br#"{"id":"no spaces","data":{},"version":1,"updated_at_ms":1,"updated_in":"us-east-1"}"#.to_vec();
        assert!(check_changes(2, &bad_record).is_err());
    }

    impl Frame {
        fn with_head(mut self, head: u64) -> Frame {
            self.head = head;
            self
        }
    }

    #[test]
    fn identity_changes_heads_behind_and_gaps_resync() {
        let pos = PeerPosition {
            incarnation: Some(9),
            applied: 10,
        };
        assert_eq!(needs_resync(&pos, 10, &frame(12, 12, &[])), None);
        let mut other = frame(12, 12, &[]);
        other.incarnation = 8;
        assert!(needs_resync(&pos, 10, &other).is_some());
        assert!(needs_resync(&pos, 10, &frame(3, 3, &[])).is_some());
        let mut gap = frame(20, 20, &[]);
        gap.floor = 15;
        assert!(needs_resync(&pos, 10, &gap).is_some());
        assert!(needs_resync(&PeerPosition::default(), 0, &frame(0, 0, &[])).is_some());
    }
}
