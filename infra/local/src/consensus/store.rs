//! The store a region's router runs on in the strong mode: the region's [`EmbeddedStore`],
//! written only through the consensus log and read only behind a linearizable barrier. The
//! API router does not know the difference (contract §1 is unchanged); a region cut off from
//! the majority answers every data request 503 within [`super::REQUEST_TIMEOUT`].

use super::node::Handle;
use super::{Applied, Command};
use tandem_api::store::embedded::EmbeddedStore;
use tandem_api::store::{Page, Store, StoreError, StoredFault, Written};
use tandem_shared::Consistency;
use tandem_shared::item::{Data, Record};
use tandem_shared::replication::RegionReplication;
use tandem_shared::validate::{IfMatch, MAX_ITEM_BYTES};

/// [`Store`] over the consensus log.
#[derive(Clone)]
pub struct ConsensusStore {
    local: EmbeddedStore,
    handle: Handle,
}

impl ConsensusStore {
    pub fn new(local: EmbeddedStore, handle: Handle) -> ConsensusStore {
        ConsensusStore { local, handle }
    }

    async fn write(
        &self,
        id: &str,
        data: Option<Data>,
        if_match: Option<IfMatch>,
    ) -> Result<Applied, StoreError> {
        // Data over the item limit can never be stored: refused before it takes a log entry.
        if let Some(d) = data.as_ref().filter(|d| d.len() > MAX_ITEM_BYTES) {
            return Err(StoreError::TooLarge(d.len()));
        }
        let node = self.handle.get()?;
        let cmd = Command {
            id: id.to_owned(),
            data,
            if_match,
            region: self.local.region().to_owned(),
            stamp_ms: 0,
        };
        match node.write(cmd).await? {
            Applied::PreconditionFailed => Err(StoreError::PreconditionFailed),
            Applied::TooLarge(n) => Err(StoreError::TooLarge(n)),
            applied => Ok(applied),
        }
    }

    async fn barrier(&self) -> Result<(), StoreError> {
        self.handle.get()?.read_barrier().await
    }
}

impl Store for ConsensusStore {
    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.barrier().await?;
        self.local.get(id).await
    }

    async fn put(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> Result<Written, StoreError> {
        match self.write(id, Some(data), if_match).await? {
            Applied::Written { record, replaced } => Ok(Written {
                record,
                created: !replaced,
            }),
            other => Err(StoreError::Internal(anyhow::anyhow!(
                "a put was applied as {other:?}"
            ))),
        }
    }

    async fn delete(&self, id: &str, if_match: Option<IfMatch>) -> Result<(), StoreError> {
        self.write(id, None, if_match).await.map(drop)
    }

    async fn list(&self, limit: usize, after: Option<String>) -> Result<Page, StoreError> {
        self.barrier().await?;
        self.local.list(limit, after).await
    }

    async fn load_fault(&self) -> Result<Option<StoredFault>, StoreError> {
        self.local.load_fault().await
    }

    async fn save_fault(&self, fault: StoredFault) -> Result<(), StoreError> {
        self.local.save_fault(fault).await
    }

    /// The log makes every read linearizable: nothing is missing that a read could not vouch for.
    fn vouch(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The disk first, then the majority: a region cut off from it says so on health (503), so
    /// the health watcher moves the active region away from it.
    async fn check(&self) -> Result<(), StoreError> {
        self.local.check().await?;
        self.handle.get()?.serving()
    }

    async fn replication(&self) -> RegionReplication {
        self.local.replication().await
    }

    fn consistency(&self) -> Consistency {
        Consistency::Strong
    }
}
