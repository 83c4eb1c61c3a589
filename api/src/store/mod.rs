//! The storage boundary: one trait, two stores.
//!
//! - [`embedded::EmbeddedStore`]: redb on local disk, fsynced before a write is acknowledged,
//!   with a replication outbox and last-writer-wins apply (the local regions).
//! - [`dynamo::DynamoStore`]: a DynamoDB (global) table (AWS, or moto's server in tests).
//!
//! - [`digest`]: per-bucket digests of live items, for anti-entropy between local regions.
//!
//! Both keep the same [`Record`] metadata, but last writer wins means the same thing only
//! locally: the embedded store applies contract §5's rule, the later `(updated_at, updated_in)`
//! ([`Record::lww_cmp`]); a DynamoDB global table resolves concurrent writes in two regions
//! with its own timestamps, whatever `updated_at` says. Listing differs too: the embedded store
//! lists in id order, DynamoDB scans in no id order.

pub mod digest;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "embedded")]
pub mod embedded;

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};
use tandem_shared::item::{Data, Item, Record};
use tandem_shared::replication::RegionReplication;
use tandem_shared::validate::{IfMatch, LIST_PAGE_MAX_BYTES, MAX_ITEM_BYTES};
use tandem_shared::{Consistency, Fault};

/// How long a store spends on one list page before it answers what it has (with a cursor):
/// well inside the smallest origin read timeout CloudFront allows (1 s), so a page that is
/// slow to produce (large items, many tombstones, a loaded disk) is a short page, never a 504.
pub const LIST_TIME_BUDGET: Duration = Duration::from_millis(500);

/// Why a store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `If-Match` precondition does not hold.
    #[error("precondition failed: the item is at another version")]
    PreconditionFailed,
    /// Another region was writing the same item at the same moment (a strongly consistent
    /// global table's `ReplicatedWriteConflictException`): nothing was written. 409
    /// `write_conflict` with `Retry-After`; a client's retry is safe.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// The stored item would exceed DynamoDB's 400 KB limit.
    #[error("item would be {0} bytes, over the 400 KB limit")]
    TooLarge(usize),
    /// The region cannot vouch that what it does not hold does not exist: it has not copied a
    /// peer's state yet. 503 with `Retry-After`, and the edge fails a read over.
    #[error("resyncing: {0}")]
    Resyncing(String),
    /// The store is at a limit of its own (pages produced at once): 503 `overloaded` with
    /// `Retry-After`, and the edge fails a read over.
    #[error("busy: {0}")]
    Busy(String),
    /// The region cannot reach a majority of the consensus members in time (strong mode,
    /// contract §10): nothing was acknowledged. 503 `region_unavailable` with `Retry-After`, so
    /// the edge fails a read over.
    #[error("no majority: {0}")]
    NoQuorum(String),
    /// The storage underneath failed (I/O error, full or missing disk): an outage, answered
    /// 503 so the edge fails over.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The store itself failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The result of a put.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The record the put wrote (never a tombstone).
    pub record: Record,
    /// True when the id had no live item before (201), false when one was replaced (200).
    pub created: bool,
}

/// One page of a listing: items (in id order in the embedded store, in scan order on DynamoDB)
/// and the id to continue after, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub last: Option<String>,
}

/// The bounds of one list page ([`Store::list`]): items are offered in order, each with its
/// [`tandem_shared::validate::page_cost`], and taken while they fit.
pub struct PageBudget {
    deadline: std::time::Instant,
    limit: usize,
    items: usize,
    bytes: usize,
}

impl PageBudget {
    /// The budget of a page of at most `limit` items, whose time starts now.
    pub fn new(limit: usize) -> PageBudget {
        PageBudget {
            deadline: std::time::Instant::now() + LIST_TIME_BUDGET,
            limit,
            items: 0,
            bytes: 0,
        }
    }

    /// Whether the page's time is up: it ends where it is (with a cursor), even empty.
    pub fn out_of_time(&self) -> bool {
        std::time::Instant::now() >= self.deadline
    }

    /// Takes an item costing `cost` if it fits: the first always does, then each while the
    /// page is under `limit` items and [`LIST_PAGE_MAX_BYTES`].
    pub fn take(&mut self, cost: usize) -> bool {
        let fits = self.items == 0
            || (self.items < self.limit && self.bytes.saturating_add(cost) <= LIST_PAGE_MAX_BYTES);
        if fits {
            self.items += 1;
            self.bytes = self.bytes.saturating_add(cost);
        }
        fits
    }
}

/// A region's admin fault as stored, with when it clears itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredFault {
    pub fault: Fault,
    pub expires_at_ms: Option<u64>,
}

impl StoredFault {
    /// The fault in force at `now_ms`: an expired one is no fault.
    pub fn current(&self, now_ms: u64) -> Fault {
        match self.expires_at_ms {
            Some(t) if t <= now_ms => Fault::NONE,
            _ => self.fault,
        }
    }
}

/// What the router needs from a store. Futures are `Send` so axum can run them on any worker.
pub trait Store: Send + Sync + 'static {
    /// The live record with this id, if any (tombstones read as absent). A record, not an
    /// [`Item`]: its ETag is made from the stored stamp, not parsed back from the item's text.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Writes `data` under `id` if `if_match` (when given) holds.
    fn put(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// Deletes `id` if `if_match` (when given) holds; deleting what is absent without one is
    /// not an error.
    fn delete(
        &self,
        id: &str,
        if_match: Option<IfMatch>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` live items after `after` (a page's `last`): the ids that follow it in the
    /// embedded store, the items the Scan reaches after it on DynamoDB. Bounded whatever the
    /// items hold: a page stops before [`LIST_PAGE_MAX_BYTES`] of answer (by
    /// [`tandem_shared::validate::page_cost`], counted before anything is decoded; at least one item) and once
    /// [`LIST_TIME_BUDGET`] has passed, and then has a `last` to continue after.
    fn list(
        &self,
        limit: usize,
        after: Option<String>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// This region's stored fault.
    fn load_fault(&self) -> impl Future<Output = Result<Option<StoredFault>, StoreError>> + Send;

    /// Stores this region's fault, where every instance of the region will see it.
    fn save_fault(&self, fault: StoredFault)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the store can vouch for reads: that an item it does not hold is absent, and that
    /// a page of it lists everything. Only a local region copying a peer's state cannot
    /// ([`StoreError::Resyncing`]); DynamoDB builds a new replica before it serves it.
    fn vouch(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the store can serve: an error when its storage failed (health answers 503).
    fn check(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// What the store can say about replication, for `GET /api/health`.
    fn replication(&self) -> impl Future<Output = RegionReplication> + Send;

    /// The consistency mode this store serves (contract §10), for `GET /api/health`.
    fn consistency(&self) -> Consistency {
        Consistency::Eventual
    }
}

/// Added to the machine's clock by [`now_ms`]: lets a local region run with a skewed clock, as
/// a real host's may be (`tandem region --clock-offset-ms`, used by tests and `tandem chaos`).
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Skews this process's clock (see [`CLOCK_OFFSET_MS`]).
pub fn set_clock_offset_ms(offset: i64) {
    CLOCK_OFFSET_MS.store(offset, Ordering::Relaxed);
}

/// Wall-clock milliseconds since the Unix epoch (plus this process's clock offset).
pub fn now_ms() -> u64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    real.saturating_add_signed(CLOCK_OFFSET_MS.load(Ordering::Relaxed))
}

/// Refuses records over DynamoDB's item size limit, in either store: `size` is the record's
/// stored form ([`Record::stored_size`], or the length of the bytes a store already encoded).
pub fn check_size(size: usize) -> Result<(), StoreError> {
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(size));
    }
    Ok(())
}

/// Checks an `If-Match` against the current record (tombstones count as absent).
pub fn check_precondition(
    if_match: Option<&IfMatch>,
    current: Option<&Record>,
    region: &str,
) -> Result<(), StoreError> {
    match if_match {
        Some(cond) if !cond.matches(current, region) => Err(StoreError::PreconditionFailed),
        _ => Ok(()),
    }
}
