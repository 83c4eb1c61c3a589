//! Shared state of the router, and the fault cache.

use crate::auth::AdminToken;
use crate::store::{Store, StoredFault, now_ms};
use axum::extract::FromRef;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_shared::Fault;
use tandem_shared::sync::lock;

/// How long an instance trusts the fault it last read: contract §1 wants every instance of a
/// region to see a new fault "within about a second".
pub const FAULT_TTL: Duration = Duration::from_secs(1);

/// What the router is told about its deployment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The region name answered in `x-served-region` and in every body.
    pub region: String,
    /// Bearer token for the admin routes; `None` turns them off (404).
    pub admin_token: Option<String>,
    /// When set, every request must carry `x-origin-verify: <secret>`.
    pub origin_secret: Option<String>,
    /// Origins allowed to call the API from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// On AWS: the origin secrets read from Secrets Manager and kept fresh, which then decide
    /// instead of `origin_secret` (so that a rotation never refuses the edge).
    pub origin_secrets: Option<crate::origin::OriginSecrets>,
    /// The longest `slow` fault accepted; `None`: [`tandem_shared::fault::MAX_LATENCY_MS`].
    /// On Lambda, the function's timeout: a longer sleep would only hold the instance until
    /// Lambda stops it.
    pub max_fault_latency_ms: Option<u64>,
    /// The consistency mode of the data this region serves (contract §10): the store is built for it, and health reports the store's.
    pub consistency: tandem_shared::Consistency,
}

/// State shared by all handlers: the store, the config, and the fault cache.
pub struct AppState<S> {
    pub store: S,
    pub config: Arc<Config>,
    /// `config.admin_token`, shared, for the [`crate::auth::Admin`] guard.
    pub admin_token: AdminToken,
    fault: Arc<Mutex<Option<CachedFault>>>,
}

/// A fault as last read from the store, and when.
type CachedFault = (Instant, Option<StoredFault>);

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            store: self.store.clone(),
            config: self.config.clone(),
            admin_token: self.admin_token.clone(),
            fault: self.fault.clone(),
        }
    }
}

impl<S: Store> AppState<S> {
    pub fn new(store: S, config: Config) -> Self {
        AppState {
            store,
            admin_token: AdminToken::new(config.admin_token.as_deref()),
            config: Arc::new(config),
            fault: Arc::new(Mutex::new(None)),
        }
    }

    /// Caches `fault`, read from the store by a call that started at `read_at`, as if the
    /// cache had read it: Lambda's init reads the fault to warm its connection, and the first
    /// request then needs no read of its own.
    pub fn remember_fault(&self, read_at: Instant, fault: Option<StoredFault>) {
        *lock(&self.fault) = Some((read_at, fault));
    }

    /// The stored fault, from the cache when it is fresh enough.
    pub async fn stored_fault(&self) -> Option<StoredFault> {
        if let Some((at, fault)) = *lock(&self.fault)
            && at.elapsed() < FAULT_TTL
        {
            return fault;
        }
        match self.store.load_fault().await {
            Ok(fault) => {
                *lock(&self.fault) = Some((Instant::now(), fault));
                fault
            }
            Err(err) => {
                // A store that cannot say whether a fault is set is not a reason to invent one:
                // the data routes will meet the same store error and answer for themselves.
                tracing::warn!(error = %err, "could not read the region's fault");
                None
            }
        }
    }

    /// The fault in force now.
    pub async fn fault(&self) -> Fault {
        self.stored_fault()
            .await
            .map(|f| f.current(now_ms()))
            .unwrap_or(Fault::NONE)
    }

    /// Stores a new fault and makes this instance see it at once.
    pub async fn set_fault(&self, fault: StoredFault) -> Result<(), crate::store::StoreError> {
        self.store.save_fault(fault).await?;
        *lock(&self.fault) = Some((Instant::now(), Some(fault)));
        Ok(())
    }
}

impl<S> FromRef<AppState<S>> for AdminToken {
    fn from_ref(state: &AppState<S>) -> AdminToken {
        state.admin_token.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Page, StoreError, Written};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tandem_shared::item::{Data, Record};
    use tandem_shared::validate::IfMatch;

    /// A store that only holds a fault and counts its reads.
    struct Faults {
        stored: Option<StoredFault>,
        reads: AtomicUsize,
    }

    fn unused<T>() -> Result<T, StoreError> {
        Err(StoreError::Internal(anyhow::anyhow!(
            "not used by these tests"
        )))
    }

    impl Store for Faults {
        async fn get(&self, _: &str) -> Result<Option<Record>, StoreError> {
            unused()
        }
        async fn put(&self, _: &str, _: Data, _: Option<IfMatch>) -> Result<Written, StoreError> {
            unused()
        }
        async fn delete(&self, _: &str, _: Option<IfMatch>) -> Result<(), StoreError> {
            unused()
        }
        async fn list(&self, _: usize, _: Option<String>) -> Result<Page, StoreError> {
            unused()
        }
        async fn load_fault(&self) -> Result<Option<StoredFault>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.stored)
        }
        async fn save_fault(&self, _: StoredFault) -> Result<(), StoreError> {
            unused()
        }
        async fn replication(&self) -> tandem_shared::replication::RegionReplication {
            Default::default()
        }
    }

    fn state() -> AppState<Faults> {
        let stored = StoredFault {
            fault: Fault::Error {
                status: 503,
                duration_s: None,
            },
            expires_at_ms: None,
        };
        let store = Faults {
            stored: Some(stored),
            reads: AtomicUsize::new(0),
        };
        AppState::new(store, Config::default())
    }

    #[tokio::test]
    async fn a_fault_read_at_init_serves_the_first_request_without_a_read() {
        let state = state();
        state.remember_fault(Instant::now(), None);
        assert_eq!(state.fault().await, Fault::NONE);
        assert_eq!(state.store.reads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_fault_read_at_init_expires_like_any_read() {
        let state = state();
        // Provisioned concurrency: the first request can come long after init.
        let long_ago = Instant::now()
            .checked_sub(FAULT_TTL)
            .expect("an uptime over a second");
        state.remember_fault(long_ago, None);
        assert!(
            !state.fault().await.is_none(),
            "the stored fault, read again"
        );
        assert_eq!(state.store.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_an_init_read_the_first_request_reads_the_fault() {
        let state = state();
        assert!(!state.fault().await.is_none());
        assert_eq!(state.store.reads.load(Ordering::SeqCst), 1);
    }
}
