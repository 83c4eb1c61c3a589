//! Shared state of the router, and the fault cache.

use crate::store::{Store, StoredFault, now_ms};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_shared::Fault;

/// How long an instance trusts the fault it last read: SPEC §1 wants every instance of a
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
}

/// State shared by all handlers: the store, the config, and the fault cache.
pub struct AppState<S> {
    pub store: S,
    pub config: Arc<Config>,
    /// `config.admin_token`, shared, for the [`crate::admin::Admin`] guard.
    pub admin_token: crate::admin::AdminToken,
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
            admin_token: crate::admin::AdminToken::new(config.admin_token.as_deref()),
            config: Arc::new(config),
            fault: Arc::new(Mutex::new(None)),
        }
    }

    /// The stored fault, from the cache when it is fresh enough.
    pub async fn stored_fault(&self) -> Option<StoredFault> {
        if let Some((at, fault)) = *self.fault.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < FAULT_TTL
        {
            return fault;
        }
        match self.store.load_fault().await {
            Ok(fault) => {
                *self.fault.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), fault));
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
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), Some(fault)));
        Ok(())
    }
}
