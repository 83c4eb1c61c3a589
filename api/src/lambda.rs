//! The region on AWS Lambda: the runtime secret from Secrets Manager, the DynamoDB store
//! warmed at init, and `lambda_http` serving API Gateway events (feature `aws`).

use crate::AppState;
use crate::args::RegionArgs;
use crate::origin::OriginSecrets;
use crate::secret::RuntimeSecret;
use crate::store::Store as _;
use crate::store::dynamo::{DynamoStore, Roots, sdk_config};
use anyhow::{Context as _, anyhow, bail};
use std::time::{Duration, Instant};
use tandem_shared::control::FUNCTION_TIMEOUT_S;

/// How long re-reading the runtime secret may take on a warm instance.
const REFETCH_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves API Gateway events forever (tracing is already set up, as JSON).
pub async fn run(args: RegionArgs) -> anyhow::Result<()> {
    let region = args.region_name();
    let aws = sdk_config(Some(&region), Roots::Aws).await;
    let store = DynamoStore::from_sdk_config(&aws, &args.table_name, &region)
        .with_consistency(args.consistency);
    // Two independent round trips, at once: the secret, and a first DynamoDB call that pays
    // the TLS handshake during init rather than on the first request. That call reads the
    // region's fault, which every request needs, so the first one finds it cached.
    let read_at = Instant::now();
    let (secret, fault) = tokio::join!(
        fetch_secret(&aws, args.secret_id.as_deref()),
        store.load_fault()
    );
    let secret = secret?;
    let mut config = args.config_with(secret.as_ref());
    config.max_fault_latency_ms = Some(u64::from(FUNCTION_TIMEOUT_S) * 1000);
    // The origin secret from Secrets Manager follows its rotation, unless a flag set it.
    if let (Some(secret), Some(id)) = (&secret, &args.secret_id)
        && args.origin_secret.as_deref().is_none_or(str::is_empty)
    {
        config.origin_secrets = Some(OriginSecrets::new(secret, refetch(&aws, id)));
    }
    tracing::info!(
        region = %config.region,
        secret_id = args.secret_id.as_deref().unwrap_or(""),
        admin_routes = config.admin_token.is_some(),
        origin_cloaking = config.origin_secret.is_some(),
        "Lambda init"
    );
    let state = AppState::new(store, config);
    match fault {
        Ok(fault) => state.remember_fault(read_at, fault),
        Err(err) => tracing::warn!(error = %err, "warming the DynamoDB connection failed"),
    }
    lambda_http::run(crate::router_for(state))
        .await
        .map_err(|e| anyhow!("Lambda runtime: {e}"))
}

/// Reads secret `id` again, for [`OriginSecrets`]: within a second, so that a slow Secrets
/// Manager costs one request a second at most, never the function's timeout.
fn refetch(aws: &aws_config::SdkConfig, id: &str) -> crate::origin::Fetch {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(REFETCH_TIMEOUT)
        .build();
    let config = aws_sdk_secretsmanager::config::Builder::from(aws)
        .timeout_config(timeouts)
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let id = id.to_owned();
    std::sync::Arc::new(move || {
        let (client, id) = (client.clone(), id.clone());
        Box::pin(async move { RuntimeSecret::fetch(&client, &id).await })
    })
}

/// The runtime secret, when a secret id is set. Fail the init rather than serve without it: no
/// origin secret would mean no origin cloaking, and API Gateway turns a failed init into a 5xx,
/// which the edge fails over.
async fn fetch_secret(
    aws: &aws_config::SdkConfig,
    id: Option<&str>,
) -> anyhow::Result<Option<RuntimeSecret>> {
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let client = aws_sdk_secretsmanager::Client::new(aws);
    RuntimeSecret::fetch(&client, id)
        .await
        .map(Some)
        .context("Lambda init: fetching the runtime secret")
}

impl RuntimeSecret {
    /// Reads secret `id` and checks its shape. Errors name the secret, never its content
    /// (serde's messages can quote the offending value, so only their position is kept).
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        id: &str,
    ) -> anyhow::Result<RuntimeSecret> {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
            .with_context(|| format!("reading secret {id}"))?;
        let text = out
            .secret_string()
            .ok_or_else(|| anyhow!("secret {id} has no SecretString"))?;
        let secret: RuntimeSecret = serde_json::from_str(text).map_err(|e| {
            anyhow!(
                "secret {id} is not a JSON object with string keys admin_token and \
                 origin_secret (and optionally previous_origin_secret) ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        if secret.admin_token.is_empty() || secret.origin_secret.is_empty() {
            bail!("secret {id} has an empty admin_token or origin_secret");
        }
        Ok(secret)
    }
}
