//! `tandem up --auto-failover`: the health watcher ([`tandem_ops::watcher`]) over the local
//! edge's own value of the active region.

use crate::active::Active;
use std::sync::Arc;
use tandem_ops::watcher::{ActiveStore, Stored, WatchArgs, Written, watch};
use tandem_shared::control::WatcherStatus;

/// The local edge's own value, in the same process. It has no version: a write compares the
/// value the switch was decided on with the value now held, as the KeyValueStore's ETag would.
impl ActiveStore for Active {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        Ok(Active::get(self))
    }

    async fn write(&self, region: Option<&str>, seen: &Stored) -> anyhow::Result<Written> {
        let now = Active::get(self);
        if now != seen.value {
            return Ok(Written::Conflict(format!(
                "the active region became {now:?} after it was read as {:?}",
                seen.value
            )));
        }
        Active::set(self, region).map_err(anyhow::Error::from)?;
        Ok(Written::Done)
    }

    fn report(&self, status: &WatcherStatus) {
        Active::report(self, status)
    }
}

/// `tandem up --auto-failover`: [`watch`] over the local edge's value.
pub async fn run(edge: String, regions: Vec<String>, active: Arc<Active>, args: WatchArgs) {
    watch(edge, regions, active, args).await
}
