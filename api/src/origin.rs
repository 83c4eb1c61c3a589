//! The origin secrets a region accepts on AWS, kept fresh so that rotating the secret never
//! answers 403: the current value and, during a rotation, the previous one.
//!
//! `tandem rotate-secret` writes the new value with the old one as `previous_origin_secret`,
//! then moves the edge to the new value, then drops the old one. An instance learns of each
//! step by reading the secret again: when a request brings a value it does not know (at most
//! once per [`REFETCH_AFTER`], so that wrong guesses cannot make it call Secrets Manager in a
//! loop), and when what it holds is older than [`MAX_AGE`] (so that a retired value stops
//! working within minutes).

use crate::secret::RuntimeSecret;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq as _;
use tokio::sync::Mutex;

/// An unknown value makes the instance read the secret again, at most this often.
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Values older than this are read again before the next check.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// Reads the runtime secret (Secrets Manager on Lambda; anything in tests).
pub type Fetch = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<RuntimeSecret>> + Send>> + Send + Sync,
>;

/// The accepted values and where they come from. Cloning shares them.
#[derive(Clone)]
pub struct OriginSecrets {
    fetch: Fetch,
    held: Arc<Mutex<Held>>,
    refetch_after: Duration,
}

/// What an instance holds: the accepted values, and when it last tried to read them.
struct Held {
    accepted: Vec<String>,
    tried_at: Instant,
}

impl std::fmt::Debug for OriginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginSecrets(<redacted>)")
    }
}

/// The values a secret makes acceptable: `origin_secret`, and `previous_origin_secret` while
/// a rotation is under way.
fn accepted(secret: &RuntimeSecret) -> Vec<String> {
    std::iter::once(&secret.origin_secret)
        .chain(secret.previous_origin_secret.as_ref())
        .filter(|v| !v.is_empty())
        .cloned()
        .collect()
}

/// Compares `given` with every value, in constant time for each.
fn any_matches(values: &[String], given: &[u8]) -> bool {
    values.iter().fold(false, |found, v| {
        found | bool::from(v.as_bytes().ct_eq(given))
    })
}

impl OriginSecrets {
    /// Starts from `secret` (read at init) and reads it again with `fetch`.
    pub fn new(secret: &RuntimeSecret, fetch: Fetch) -> Self {
        OriginSecrets {
            fetch,
            held: Arc::new(Mutex::new(Held {
                accepted: accepted(secret),
                tried_at: Instant::now(),
            })),
            refetch_after: REFETCH_AFTER,
        }
    }

    /// Reads again on an unknown value after `interval` instead of [`REFETCH_AFTER`] (tests
    /// that drive a rotation step by step).
    pub fn refetching_after(mut self, interval: Duration) -> Self {
        self.refetch_after = interval;
        self
    }

    /// Whether `given` is an accepted value, reading the secret again first when what is held
    /// is old, or when `given` is unknown and the last read is not recent. One request reads;
    /// the others meanwhile decide on the values held (no lock is held across the read).
    pub async fn accepts(&self, given: &[u8]) -> bool {
        if self.claim(MAX_AGE).await {
            self.refresh().await;
        }
        if any_matches(&self.held.lock().await.accepted, given) {
            return true;
        }
        if !self.claim(self.refetch_after).await {
            return false;
        }
        self.refresh().await;
        any_matches(&self.held.lock().await.accepted, given)
    }

    /// Takes the next read for this caller when the last one is at least `after` old.
    async fn claim(&self, after: Duration) -> bool {
        let mut held = self.held.lock().await;
        if held.tried_at.elapsed() < after {
            return false;
        }
        held.tried_at = Instant::now();
        true
    }

    /// Makes what is held look `by` older, as if that time had passed (tests).
    #[cfg(test)]
    async fn age(&self, by: Duration) {
        let mut held = self.held.lock().await;
        held.tried_at = held
            .tried_at
            .checked_sub(by)
            .expect("the clock goes back that far");
    }

    /// Reads the secret; on failure keeps the values held (the next read waits its turn too).
    /// The fetch is bounded by its client's timeout (`crate::lambda`: one second).
    async fn refresh(&self) {
        match (self.fetch)().await {
            Ok(secret) => {
                let values = accepted(&secret);
                if values.is_empty() {
                    tracing::error!(
                        "the runtime secret has no origin_secret; keeping the values held"
                    );
                    return;
                }
                let mut held = self.held.lock().await;
                if values != held.accepted {
                    tracing::info!(values = values.len(), "origin secrets changed");
                }
                held.accepted = values;
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "re-reading the runtime secret failed; keeping the values held"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A secret store the test rotates by hand, counting reads.
    #[derive(Clone, Default)]
    struct Store {
        value: Arc<std::sync::Mutex<(String, Option<String>)>>,
        reads: Arc<AtomicUsize>,
    }

    impl Store {
        fn set(&self, current: &str, previous: Option<&str>) {
            *self.value.lock().unwrap() = (current.into(), previous.map(str::to_owned));
        }

        fn secret(&self) -> RuntimeSecret {
            let (current, previous) = self.value.lock().unwrap().clone();
            RuntimeSecret {
                admin_token: "admin".into(),
                origin_secret: current,
                previous_origin_secret: previous,
            }
        }

        fn fetch(&self) -> Fetch {
            let store = self.clone();
            Arc::new(move || {
                store.reads.fetch_add(1, Ordering::SeqCst);
                let secret = store.secret();
                Box::pin(async move { Ok(secret) })
            })
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    /// The rotation as `tandem rotate-secret` runs it, seen by one instance: the edge's value
    /// is accepted at every step, the old one stops being accepted once retired, and wrong
    /// values cost at most one read per REFETCH_AFTER.
    #[tokio::test]
    async fn a_rotation_is_followed_without_refusing_the_edge() {
        let store = Store::default();
        store.set("old", None);
        let secrets = OriginSecrets::new(&store.secret(), store.fetch());
        assert!(secrets.accepts(b"old").await);
        assert!(!secrets.accepts(b"guess").await, "a wrong value");
        assert_eq!(
            store.reads(),
            0,
            "nothing read within REFETCH_AFTER of init"
        );

        // Step 1: the new value, with the old one as previous. The edge still sends the old.
        store.set("new", Some("old"));
        assert!(secrets.accepts(b"old").await);
        // Step 2: the edge sends the new value: unknown, so the instance reads the secret.
        secrets.age(REFETCH_AFTER).await;
        assert!(secrets.accepts(b"new").await);
        assert_eq!(store.reads(), 1);
        assert!(
            secrets.accepts(b"old").await,
            "edges still moving send the old value"
        );

        // Step 3: the old value is retired; the instance drops it within MAX_AGE.
        store.set("new", None);
        secrets.age(MAX_AGE).await;
        assert!(secrets.accepts(b"new").await);
        assert!(!secrets.accepts(b"old").await);
        assert_eq!(store.reads(), 2);

        // Guesses in a burst: one read at most per REFETCH_AFTER.
        secrets.age(REFETCH_AFTER).await;
        for _ in 0..100 {
            assert!(!secrets.accepts(b"guess").await);
        }
        assert_eq!(store.reads(), 3);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_values_held() {
        let secret = RuntimeSecret {
            admin_token: "admin".into(),
            origin_secret: "current".into(),
            previous_origin_secret: None,
        };
        let fetch: Fetch = Arc::new(|| Box::pin(async { Err(anyhow::anyhow!("no network")) }));
        let secrets = OriginSecrets::new(&secret, fetch);
        secrets.age(MAX_AGE).await;
        assert!(secrets.accepts(b"current").await);
        assert!(!secrets.accepts(b"other").await);
    }
}
