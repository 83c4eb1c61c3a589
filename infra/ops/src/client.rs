//! One typed client for an edge's control surface: the local control API (`/_tandem/*`) and the
//! admin fault routes of each region (`/region/<r>/api/admin/fault`, which work through
//! CloudFront too). Every tool (`tandem fault`, `drill`, `chaos`, `verify`, the bench, the
//! tests) talks to a stack through it, with the types of [`tandem_shared::control`].

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};
use tandem_shared::control::{
    ActiveRegion, ConsensusStatus, HEADER_READ_TIMEOUT_S, Outage, RegionState, RegionStatus,
    RegionsBody, ReplicationBody, ReplicationPatch, ReplicationUpdate, SetRegionState, path,
    region_path, route,
};
use tandem_shared::replication::Verdict;
use tandem_shared::{ErrorBody, Fault, FaultState};

/// `--endpoint` and `--token`: where to send control requests, and the token to send.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The edge: the local one, or https://<distribution>.cloudfront.net. A console URL with
    /// `#token=…` also works (the token is taken from it when --token is not given).
    #[arg(long, env = "TANDEM_ENDPOINT", default_value = "http://127.0.0.1:8080")]
    pub endpoint: String,
    /// The admin token (printed by `tandem up` and `tandem deploy`).
    #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Target {
    /// The base URL and the token: `--token`, else the `#token=` of a pasted console URL.
    pub fn split(&self) -> anyhow::Result<(String, String)> {
        let (base, fragment) = match self.endpoint.split_once('#') {
            Some((base, fragment)) => (base, Some(fragment)),
            None => (self.endpoint.as_str(), None),
        };
        let from_url = fragment.and_then(|f| {
            f.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_owned)
        });
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or(from_url)
            .ok_or_else(|| anyhow!("no admin token: pass --token or set TANDEM_ADMIN_TOKEN"))?;
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--endpoint {base:?} must start with http:// or https://");
        }
        Ok((base.to_owned(), token))
    }

    /// A client for this target, whose requests give up after `timeout`.
    pub fn client(&self, timeout: Duration) -> anyhow::Result<ControlClient> {
        let (base, token) = self.split()?;
        ControlClient::new(&base, &token, timeout)
    }
}

/// How long a client keeps an idle connection: well under the servers' header read timeout
/// ([`HEADER_READ_TIMEOUT_S`]), after which they close idle keep-alive connections. A client
/// that keeps one longer can send its next request just as the server closes it and get a
/// reset: a drill's fault injection failed that way exactly 10 s after its previous control call.
pub fn idle_timeout() -> Duration {
    Duration::from_secs(HEADER_READ_TIMEOUT_S) / 2
}

/// An HTTP client for Tandem's own servers (edge, control API, regions): `timeout` per request,
/// idle connections dropped after [`idle_timeout`].
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_idle_timeout(idle_timeout())
        .build()
}

/// Header `name` of an answer as text; `None` when it is absent or not visible ASCII (which
/// no header Tandem reads is).
pub fn header_text(answer: &reqwest::Response, name: &str) -> Option<String> {
    let value = answer.headers().get(name)?;
    value.to_str().ok().map(str::to_owned)
}

/// A client for one edge, with the admin token.
#[derive(Debug, Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ControlClient {
    pub fn new(base: &str, token: &str, timeout: Duration) -> anyhow::Result<ControlClient> {
        Ok(ControlClient {
            http: http_client(timeout)?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// The edge's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /_tandem/regions`.
    pub async fn regions(&self) -> anyhow::Result<RegionsBody> {
        self.call(Method::GET, &path(route::REGIONS), None::<&()>)
            .await
    }

    /// `PUT /_tandem/regions/<region>`: move a local region to `state`.
    pub async fn set_region(
        &self,
        region: &str,
        state: RegionState,
    ) -> anyhow::Result<RegionStatus> {
        let body = SetRegionState { state };
        self.call(Method::PUT, &region_path(region), Some(&body))
            .await
            .with_context(|| format!("setting {region} {state}"))
    }

    /// `GET /_tandem/consensus`: the strong mode's log, as each member reports it.
    pub async fn consensus(&self) -> anyhow::Result<ConsensusStatus> {
        self.call(Method::GET, &path(route::CONSENSUS), None::<&()>)
            .await
    }

    /// `GET /_tandem/replication`.
    pub async fn replication(&self) -> anyhow::Result<ReplicationBody> {
        self.call(Method::GET, &path(route::REPLICATION), None::<&()>)
            .await
    }

    /// `PUT /_tandem/replication`.
    pub async fn set_replication(
        &self,
        patch: ReplicationPatch,
    ) -> anyhow::Result<ReplicationUpdate> {
        self.call(Method::PUT, &path(route::REPLICATION), Some(&patch))
            .await
    }

    /// `GET /_tandem/verify`: do the regions hold the same items?
    pub async fn verify(&self) -> anyhow::Result<Verdict> {
        self.call(Method::GET, &path(route::VERIFY), None::<&()>)
            .await
    }

    /// Asks verify until the regions agree; false when they still differ after `limit`.
    pub async fn until_agreed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.verify().await.is_ok_and(|v| v.agree) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /_tandem/active-region` (contract §6.3).
    pub async fn active_region(&self) -> anyhow::Result<ActiveRegion> {
        self.call(Method::GET, &path(route::ACTIVE_REGION), None::<&()>)
            .await
    }

    /// `PUT /_tandem/active-region` (`Some`) or `DELETE` (`None`: back to the primary).
    pub async fn set_active_region(&self, region: Option<&str>) -> anyhow::Result<ActiveRegion> {
        let path = path(route::ACTIVE_REGION);
        match region {
            Some(r) => {
                let body = ActiveRegion::new(Some(r.to_owned()));
                self.call(Method::PUT, &path, Some(&body)).await
            }
            None => self.call(Method::DELETE, &path, None::<&()>).await,
        }
    }

    /// `GET /region/<region>/api/admin/fault`.
    pub async fn fault(&self, region: &str) -> anyhow::Result<FaultState> {
        self.call(Method::GET, &fault_path(region), None::<&()>)
            .await
    }

    /// `PUT /region/<region>/api/admin/fault`.
    pub async fn set_fault(&self, region: &str, fault: Fault) -> anyhow::Result<FaultState> {
        self.call(Method::PUT, &fault_path(region), Some(&fault))
            .await
            .with_context(|| format!("faulting {region}"))
    }

    /// `DELETE /region/<region>/api/admin/fault`.
    pub async fn heal(&self, region: &str) -> anyhow::Result<FaultState> {
        self.call(Method::DELETE, &fault_path(region), None::<&()>)
            .await
            .with_context(|| format!("healing {region}"))
    }

    /// Injects `outage` into `region`: an admin fault (with `duration_s`), a process state, or,
    /// for a partition, replication paused both ways.
    pub async fn inject(
        &self,
        region: &str,
        outage: Outage,
        duration_s: Option<u64>,
    ) -> anyhow::Result<()> {
        if let Some(fault) = outage.fault(duration_s) {
            self.set_fault(region, fault).await?;
        } else if let Some(state) = outage.region_state() {
            self.set_region(region, state).await?;
        } else {
            self.set_replication(ReplicationPatch::paused(true)).await?;
        }
        Ok(())
    }

    /// Ends what [`ControlClient::inject`] started.
    pub async fn clear(&self, region: &str, outage: Outage) -> anyhow::Result<()> {
        if outage.fault(None).is_some() {
            self.heal(region).await?;
        } else if outage.region_state().is_some() {
            self.set_region(region, RegionState::Up).await?;
        } else {
            self.set_replication(ReplicationPatch::paused(false))
                .await?;
        }
        Ok(())
    }

    /// Sends one request; a non-2xx answer is an error that quotes the error body's message.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {}{path}: {}", self.base, explain(status, &text));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: unexpected answer {text:?}"))
    }
}

fn fault_path(region: &str) -> String {
    format!("/region/{region}/api/admin/fault")
}

/// What went wrong, from an error answer: the status, a hint for the usual mistakes, and the
/// JSON error body's message when there is one.
pub fn explain(status: StatusCode, text: &str) -> String {
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (wrong or missing admin token)",
        StatusCode::NOT_FOUND => " (no admin token configured there, or no such region or route)",
        StatusCode::FORBIDDEN => " (the origin refused the request: call it through the edge)",
        _ => "",
    };
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => format!("{status}{hint}: {}", body.error.message),
        Err(_) if text.is_empty() => format!("{status}{hint}"),
        Err(_) => format!(
            "{status}{hint}: {}",
            text.chars().take(200).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_are_dropped_before_the_server_drops_them() {
        let server = Duration::from_secs(HEADER_READ_TIMEOUT_S);
        assert!(
            idle_timeout() < server,
            "{:?} vs {server:?}",
            idle_timeout()
        );
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_console_url() {
        let t = |endpoint: &str, token: Option<&str>| Target {
            endpoint: endpoint.to_owned(),
            token: token.map(str::to_owned),
        };
        assert_eq!(
            t("http://e/#token=abc", None).split().unwrap(),
            ("http://e".to_owned(), "abc".to_owned())
        );
        assert_eq!(t("http://e/#token=abc", Some("x")).split().unwrap().1, "x");
        assert!(t("http://e", None).split().is_err());
        assert!(t("e.example", Some("x")).split().is_err());
    }
}
