//! Whether `/api/*` reaches the region the active region names (contract §6.3), seen from
//! outside: a GET of `/api/health` through the edge, whose answer carries the value the edge
//! routed by (`x-tandem-active-region`, which every region echoes) and the region that answered
//! (`x-served-region`).
//!
//! A value written to the store is not a switch until the edge routes by it: on AWS the router
//! function reads the KeyValueStore's copy at each edge location, which follows a write after a
//! while, or never if the function does not read the store (a broken association, a function
//! error). So `tandem failover`/`failback` look through the edge after their write
//! ([`until_routed`]), `tandem status` compares what it sees with the stored value, and the
//! deploy's failover drill times its switch by it. The health watcher reads the same header on
//! its own probes ([`crate::watcher`]).

use crate::client::header_text;
use std::time::{Duration, Instant};
use tandem_shared::headers::{ACTIVE_REGION, SERVED_REGION};
use tandem_shared::routing::Routed;

/// How long a change of the active region may take to show at the edge before it counts as not
/// made. AWS documents that CloudFront's edge locations get a KeyValueStore change within
/// seconds and gives no bound (reports put it at seconds to low tens of seconds); 60 s is a
/// generous multiple of that, short enough for a person waiting on `tandem failover`. The local
/// edge shows a change at once. `--confirm-within` overrides it for the commands.
pub const PROPAGATION: Duration = Duration::from_secs(60);

/// Between two looks while waiting: often enough to time a switch to about half a second, and
/// 120 requests at most in [`PROPAGATION`].
const POLL: Duration = Duration::from_millis(500);

/// What one GET of `/api/health` through the edge showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Look {
    /// The answer's status; `None` when no answer came ([`Look::error`] says why).
    pub status: Option<u16>,
    /// `x-served-region`: the region whose API answered.
    pub served: Option<String>,
    /// `x-tandem-active-region` as the region echoed it.
    pub echoed: Option<String>,
    /// Why no answer came.
    pub error: Option<String>,
}

impl Look {
    /// The value the edge routed by, read from the echo.
    pub fn routed(&self) -> Option<Routed> {
        self.echoed.as_deref().and_then(Routed::parse)
    }

    /// Whether the router fell back to one origin (`; failover=off`): reads through `/api/*` do
    /// not fail over per request while it does.
    pub fn failover_off(&self) -> bool {
        self.routed().is_some_and(|r| r.failover_off)
    }

    /// Whether `/api/*` is routed by `target` (`None`: the primary) and answered by the region
    /// it names: `target`, or `primary` for `None` when it is known (any region otherwise).
    pub fn shows(&self, target: Option<&str>, primary: Option<&str>) -> bool {
        let Some(routed) = self.routed() else {
            return false;
        };
        if routed.active.as_deref() != target {
            return false;
        }
        match target.or(primary) {
            Some(region) => self.served.as_deref() == Some(region),
            None => self.served.is_some(),
        }
    }

    /// One line: `routed by us-west-2 (x-tandem-active-region: us-west-2), served by us-west-2
    /// (200)`, or what was missing.
    pub fn describe(&self) -> String {
        let Some(status) = self.status else {
            let why = self.error.as_deref().unwrap_or("no answer");
            return format!("no answer to /api/health ({why})");
        };
        let routed = match (&self.echoed, self.routed()) {
            (Some(raw), Some(r)) => format!(
                "routed by {} (x-tandem-active-region: {raw})",
                r.active.as_deref().unwrap_or("none, the primary")
            ),
            (Some(raw), None) => format!("an unreadable x-tandem-active-region {raw:?}"),
            (None, _) => "no x-tandem-active-region (no router marked it, or an API too old to \
                          echo it)"
                .to_owned(),
        };
        let served = self
            .served
            .as_deref()
            .unwrap_or("no region (no x-served-region)");
        format!("{routed}, served by {served} ({status})")
    }
}

/// A duration for a person: milliseconds below a second (a local switch takes a few), tenths of
/// a second above.
pub fn took(d: Duration) -> String {
    match d < Duration::from_secs(1) {
        true => format!("{} ms", d.as_millis()),
        false => format!("{:.1} s", d.as_secs_f64()),
    }
}

/// The base URL of an endpoint as the commands take it: no `#token=…`, no trailing `/`.
pub fn base_url(endpoint: &str) -> String {
    let base = endpoint.split('#').next().unwrap_or(endpoint).trim();
    base.trim_end_matches('/').to_owned()
}

/// One GET of `{base}/api/health`.
pub async fn look(http: &reqwest::Client, base: &str) -> Look {
    let answer = match http.get(format!("{base}/api/health")).send().await {
        Ok(answer) => answer,
        Err(err) => {
            return Look {
                error: Some(err.to_string()),
                ..Look::default()
            };
        }
    };
    let header = |name| header_text(&answer, name);
    Look {
        status: Some(answer.status().as_u16()),
        served: header(SERVED_REGION),
        echoed: header(ACTIVE_REGION),
        error: None,
    }
}

/// What waiting for the edge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// Whether the edge showed the target within the bound.
    pub confirmed: bool,
    /// From the start of the wait until the look that showed it, or until the bound passed.
    pub waited: Duration,
    /// GETs made.
    pub looks: u32,
    /// The last look: the one that showed it, or what the edge still showed.
    pub last: Look,
    /// Whether the last look was routed by the target, whoever answered it: not confirmed with
    /// this set, the switch reached the edge but the region it names did not answer.
    pub routed: bool,
}

impl Confirmation {
    /// The sentence for a person: `confirmed through <base> after 1.2 s: routed by …` or `not
    /// confirmed through <base> within 60 s: …`.
    pub fn describe(&self, base: &str, within: Duration) -> String {
        let gets = match self.looks {
            1 => "1 GET".to_owned(),
            n => format!("{n} GETs"),
        };
        match self.confirmed {
            true => format!(
                "confirmed through {base} after {} ({gets} of /api/health): {}",
                took(self.waited),
                self.last.describe()
            ),
            false => format!(
                "not confirmed through {base} within {} s ({gets} of /api/health): the last \
                 showed {}{}",
                within.as_secs(),
                self.last.describe(),
                match self.routed {
                    true =>
                        "; the edge routes by the new value, but the region it names did \
                             not answer (its reads failed over): is that region healthy?",
                    false => "",
                }
            ),
        }
    }
}

/// Looks at `{base}/api/health` until it shows `/api/*` routed by `target` and answered by that
/// region ([`Look::shows`]), or `within` has passed. A look routed by `target` but answered by
/// another region ends the wait too, unconfirmed: the edge follows the value, and the region
/// it names does not answer.
pub async fn until_routed(
    http: &reqwest::Client,
    base: &str,
    target: Option<&str>,
    primary: Option<&str>,
    within: Duration,
) -> Confirmation {
    let start = Instant::now();
    let mut looks = 0;
    loop {
        let last = look(http, base).await;
        looks += 1;
        let confirmed = last.shows(target, primary);
        // Routed by the target but answered by another region: the edge has the value, and
        // waiting longer would not make the target answer (a region down is not propagation).
        let routed = last.routed().is_some_and(|r| r.active.as_deref() == target);
        if confirmed || routed || start.elapsed() >= within {
            return Confirmation {
                confirmed,
                waited: start.elapsed(),
                looks,
                last,
                routed,
            };
        }
        tokio::time::sleep(POLL.min(within.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An edge whose `/api/health` answers as `routed` (the echo, the region) is when asked.
    async fn edge(routed: Arc<Mutex<(&'static str, &'static str)>>) -> String {
        crate::testing::serve(move |_| {
            let (echo, served) = *routed.lock().unwrap();
            let headers = vec![
                (ACTIVE_REGION, echo.to_owned()),
                (SERVED_REGION, served.to_owned()),
            ];
            (200, headers)
        })
        .await
    }

    const EAST: &str = "us-east-1";
    const WEST: &str = "us-west-2";

    fn seen(echoed: Option<&str>, served: Option<&str>) -> Look {
        Look {
            status: Some(200),
            served: served.map(str::to_owned),
            echoed: echoed.map(str::to_owned),
            error: None,
        }
    }

    #[test]
    fn a_look_shows_the_target_when_routed_by_it_and_answered_there() {
        assert!(seen(Some(WEST), Some(WEST)).shows(Some(WEST), Some(EAST)));
        assert!(seen(Some("none"), Some(EAST)).shows(None, Some(EAST)));
        assert!(seen(Some("none"), Some(EAST)).shows(None, None));
        // The edge has not picked the value up.
        assert!(!seen(Some("none"), Some(EAST)).shows(Some(WEST), Some(EAST)));
        // Routed by it, but the target did not answer: its read failed over.
        assert!(!seen(Some(WEST), Some(EAST)).shows(Some(WEST), Some(EAST)));
        // No router marked it (or an old API): nothing to confirm by.
        assert!(!seen(None, Some(WEST)).shows(Some(WEST), None));
        // A fallback still routes by the value it read; it is said, not refused.
        let fell_back = seen(Some("us-west-2; failover=off"), Some(WEST));
        assert!(fell_back.shows(Some(WEST), Some(EAST)) && fell_back.failover_off());
        assert!(
            Look::default()
                .describe()
                .starts_with("no answer to /api/health")
        );
        assert_eq!(
            seen(Some("none"), Some(EAST)).describe(),
            "routed by none, the primary (x-tandem-active-region: none), served by us-east-1 (200)"
        );
        assert_eq!(
            base_url("https://d1.example/#token=x"),
            "https://d1.example"
        );
        assert_eq!(took(Duration::from_millis(7)), "7 ms");
        assert_eq!(took(Duration::from_millis(2340)), "2.3 s");
    }

    #[tokio::test]
    async fn waiting_ends_when_the_edge_shows_the_target_or_after_the_bound() {
        let routed = Arc::new(Mutex::new(("none", EAST)));
        let base = edge(routed.clone()).await;
        let http = reqwest::Client::new();

        // The edge keeps routing by the old value: not confirmed, after the bound.
        let within = Duration::from_millis(1200);
        let stale = until_routed(&http, &base, Some(WEST), Some(EAST), within).await;
        assert!(!stale.confirmed);
        assert!(stale.waited >= within, "{:?}", stale.waited);
        assert!(stale.looks >= 2, "{}", stale.looks);
        let line = stale.describe(&base, within);
        assert!(
            line.contains("not confirmed") && line.contains("routed by none"),
            "{line}"
        );
        assert!(!line.contains("is that region healthy"), "{line}");

        // Routed by the target, but answered by the other region: the target is down.
        *routed.lock().unwrap() = (WEST, EAST);
        let down = until_routed(&http, &base, Some(WEST), Some(EAST), PROPAGATION).await;
        assert!(!down.confirmed && down.routed, "{down:?}");
        assert_eq!(down.looks, 1, "no waiting for a region that is down");
        let line = down.describe(&base, PROPAGATION);
        assert!(line.contains("is that region healthy?"), "{line}");

        // It picks the value up a moment later: confirmed on the look after.
        *routed.lock().unwrap() = ("none", EAST);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            *routed.lock().unwrap() = (WEST, WEST);
        });
        let done = until_routed(&http, &base, Some(WEST), Some(EAST), PROPAGATION).await;
        assert!(done.confirmed, "{done:?}");
        assert!(
            done.looks >= 2 && done.waited < Duration::from_secs(5),
            "{done:?}"
        );
    }
}
