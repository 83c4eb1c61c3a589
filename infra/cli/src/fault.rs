//! `tandem fault <region> <mode>` and `tandem heal <region>`: set or clear a region's injected
//! fault through any edge — the local one (`tandem up`) or the CloudFront distribution — with
//! `PUT`/`DELETE {endpoint}/region/{region}/api/admin/fault` and the admin bearer token.
//!
//! The `/region/<r>` path pins the request to that region: through `/api/...` a PUT would reach
//! the primary whatever region was named.

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tandem_shared::fault::{FAULT_STATUSES, MAX_DURATION_S, MAX_LATENCY_MS};

/// Where to send the request, and the token to send.
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

/// A fault as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `error:<status>`: data routes answer that status.
    Error(u16),
    /// `slow:<ms>`: data routes answer that much later.
    Slow(u64),
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        let (kind, arg) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected error:<status> or slow:<ms>"))?;
        match kind {
            "error" => {
                let status: u16 = arg
                    .parse()
                    .map_err(|_| format!("{arg:?} is not an HTTP status"))?;
                if !FAULT_STATUSES.contains(&status) {
                    return Err(format!(
                        "error:{status}: the status must be one of {FAULT_STATUSES:?} (the ones the edge fails over on)"
                    ));
                }
                Ok(Mode::Error(status))
            }
            "slow" => {
                let ms: u64 = arg
                    .parse()
                    .map_err(|_| format!("{arg:?} is not a number of milliseconds"))?;
                if ms == 0 || ms > MAX_LATENCY_MS {
                    return Err(format!(
                        "slow:{ms}: the latency must be 1..={MAX_LATENCY_MS} ms"
                    ));
                }
                Ok(Mode::Slow(ms))
            }
            other => Err(format!(
                "{other:?}: the mode is error:<status> or slow:<ms>"
            )),
        }
    }
}

/// `tandem fault` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    /// The region to fault, e.g. us-east-1.
    pub region: String,
    /// error:<500|502|503|504> or slow:<milliseconds>.
    pub mode: Mode,
    /// Seconds after which the region heals itself.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_S))]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub target: Target,
}

/// `tandem heal` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HealArgs {
    /// The region to heal.
    pub region: String,
    #[command(flatten)]
    pub target: Target,
}

/// The JSON body of `PUT /api/admin/fault` for a mode.
pub fn body(mode: Mode, duration: Option<u64>) -> Value {
    let mut body = match mode {
        Mode::Error(status) => json!({"mode": "error", "status": status}),
        Mode::Slow(ms) => json!({"mode": "slow", "latency_ms": ms}),
    };
    if let Some(d) = duration {
        body["duration_s"] = json!(d);
    }
    body
}

/// The base URL and the token: `--token`, else the `#token=` of a pasted console URL.
pub fn split_target(target: &Target) -> anyhow::Result<(String, String)> {
    let (base, fragment) = match target.endpoint.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (target.endpoint.as_str(), None),
    };
    let from_url = fragment.and_then(|f| {
        f.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_owned)
    });
    let token = target
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

fn check_region(region: &str) -> anyhow::Result<()> {
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("{region:?} is not a region name (like us-east-1)");
    }
    Ok(())
}

async fn send(
    method: Method,
    region: &str,
    target: &Target,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    check_region(region)?;
    let (base, token) = split_target(target)?;
    let url = format!("{base}/region/{region}/api/admin/fault");
    // A hung region must not hang the operator's shell; the fault API itself is never slowed.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut request = client.request(method.clone(), &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = json["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| text.chars().take(300).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (wrong or missing admin token)",
            StatusCode::NOT_FOUND => " (no admin token configured there, or no such region)",
            StatusCode::FORBIDDEN => " (the origin refused the request: call it through the edge)",
            _ => "",
        };
        bail!("{method} {url}: {status}{hint}: {message}");
    }
    Ok(json)
}

/// One line describing a `FaultState` answer.
pub fn describe(state: &Value) -> String {
    let region = state["region"].as_str().unwrap_or("?");
    let fault = &state["fault"];
    let what = match fault["mode"].as_str() {
        Some("error") => format!("data routes answer {}", fault["status"]),
        Some("slow") => format!("data routes answer {} ms late", fault["latency_ms"]),
        Some("none") => "no fault".to_owned(),
        _ => format!("fault {fault}"),
    };
    match state["expires_at"].as_str() {
        Some(at) => format!("{region}: {what} until {at}"),
        None => format!("{region}: {what}"),
    }
}

/// `tandem fault`.
pub async fn fault(args: FaultArgs) -> anyhow::Result<()> {
    let state = send(
        Method::PUT,
        &args.region,
        &args.target,
        Some(body(args.mode, args.duration)),
    )
    .await?;
    println!("{}", describe(&state));
    Ok(())
}

/// `tandem heal`.
pub async fn heal(args: HealArgs) -> anyhow::Result<()> {
    let state = send(Method::DELETE, &args.region, &args.target, None).await?;
    println!("{}", describe(&state));
    Ok(())
}
