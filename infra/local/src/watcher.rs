//! `tandem up --auto-failover`: the health watcher ([`tandem_ops::watcher`]) over the local
//! edge's own value of the active region.

use crate::active::Active;
use std::sync::Arc;
use tandem_ops::watcher::{ActiveStore, WatchArgs, watch};
use tandem_shared::control::WatcherStatus;

/// The local edge's own value, in the same process.
impl ActiveStore for Active {
    async fn get(&self) -> anyhow::Result<Option<String>> {
        Ok(Active::get(self))
    }

    async fn set(&self, region: Option<&str>) -> anyhow::Result<()> {
        Active::set(self, region).map(drop).map_err(Into::into)
    }

    fn report(&self, status: &WatcherStatus) {
        Active::report(self, status)
    }
}

/// `tandem up --auto-failover`: [`watch`] over the local edge's value.
pub async fn run(edge: String, regions: Vec<String>, active: Arc<Active>, args: WatchArgs) {
    watch(edge, regions, active, args).await
}
