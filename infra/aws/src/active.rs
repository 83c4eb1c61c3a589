//! The active region on AWS (contract §6.3): key `active_region` of the CloudFront
//! KeyValueStore that the edge stack creates (`ActiveRegionStore` in `edge.yaml`), which the
//! `/api/*` router function reads on every request. `tandem failover --to <region>` puts the
//! key, `tandem failback` deletes it (absent = the primary).
//!
//! Writes go through the KeyValueStore data-plane API (`cloudfront-keyvaluestore`, signed with
//! SigV4a): DescribeKeyValueStore for the store's ETag, then PutKey or DeleteKey with that ETag
//! in `If-Match`. When another writer got in between (a ConflictException), the ETag is read
//! again and the write is retried once. CloudFront's edge locations see a new value within
//! seconds, not at once.
//!
//! The store is found the way `tandem deploy` names things ([`crate::names`]): the output `KeyValueStoreArn` of
//! stack `<prefix>-edge` in the primary region (`--prefix`, `--edge-region`), after checking
//! that the endpoint is that stack's distribution (its `*.cloudfront.net` name or its custom
//! domain, the stack's `DomainName`); or it is given with `--kvs-arn`.

use crate::names::{
    DEFAULT_PREFIX, DISTRIBUTION_DOMAIN, DOMAIN_PARAMETER, KVS_ARN_OUTPUT, edge_stack_name,
};
use crate::sdk::{Aws, sdk_error};
use crate::stack;
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudfrontkeyvaluestore::Client;
use aws_sdk_cloudfrontkeyvaluestore::error::{ProvideErrorMetadata, SdkError};
use tandem_ops::watcher::Written;
use tandem_shared::region::PRIMARY;
use tandem_shared::routing::ACTIVE_REGION_KEY;

/// The IAM actions `tandem failover`/`failback` need, for the hint on AccessDenied.
const IAM_ACTIONS: &str = "cloudfront-keyvaluestore:DescribeKeyValueStore, GetKey, PutKey and \
                           DeleteKey on the store, and cloudformation:DescribeStacks";
/// The other cause of an AccessDenied (CloudFront Developer Guide, *Restrictions on
/// CloudFront Functions*, "Using temporary credentials with the CloudFront KeyValueStore
/// API"): the API is signed with SigV4a, which takes only version 2 session tokens, and those
/// come only from a regional STS endpoint; the global one (sts.amazonaws.com) issues version 1.
const SESSION_TOKENS: &str = "temporary credentials must be version 2 session tokens, from a \
                              regional STS endpoint (AWS_STS_REGIONAL_ENDPOINTS=regional, or \
                              sts_regional_endpoints = regional in the profile): the global \
                              endpoint sts.amazonaws.com issues version 1 tokens, which SigV4a \
                              (the KeyValueStore API's signing) refuses";

/// Where the active region lives on AWS: `tandem failover`/`failback` flags, named as `tandem
/// deploy` names the stacks.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "On AWS (an https:// endpoint)")]
pub struct EdgeArgs {
    /// The prefix the stacks were deployed with (`tandem deploy --prefix`): the store is an
    /// output of stack <prefix>-edge.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// The region of the edge stack: the primary region `tandem deploy --regions` deployed it in.
    #[arg(long, default_value = PRIMARY)]
    pub edge_region: String,
    /// The store's ARN (the edge stack's KeyValueStoreArn output). Skips reading the stack, and
    /// so the checks of the endpoint and of the region against it.
    #[arg(long)]
    pub kvs_arn: Option<String>,
}

impl EdgeArgs {
    /// Whether the active region is AWS's: an https:// endpoint (CloudFront) or a store ARN.
    /// Otherwise it is the local stack's, through its control API.
    pub fn on_aws(&self, endpoint: &str) -> bool {
        self.kvs_arn.is_some() || endpoint.trim_start().starts_with("https://")
    }
}

/// The store, and what the edge stack says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub arn: String,
    /// The edge stack, as `<name> (<region>)`; `None` with `--kvs-arn`.
    pub stack: Option<String>,
    /// The regions behind the edge, primary first (the stack's parameters); `None` with
    /// `--kvs-arn`.
    pub regions: Option<[String; 2]>,
    /// Why the active region would have no effect, when the stack says so.
    pub warning: Option<String>,
}

impl Store {
    /// Refuses a region the edge does not have: its router would treat it as absent.
    pub fn check_region(&self, region: &str) -> anyhow::Result<()> {
        match &self.regions {
            Some(regions) if !regions.iter().any(|r| r == region) => bail!(
                "no region {region:?} behind the edge of {}: it has {} (primary) and {}",
                self.stack.as_deref().unwrap_or("this stack"),
                regions[0],
                regions[1]
            ),
            _ => Ok(()),
        }
    }
}

/// What a write did to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub before: Option<String>,
    pub after: Option<String>,
    /// False when the store already held `after`.
    pub written: bool,
    /// Whether the first write met another writer's change and was retried.
    pub retried: bool,
}

impl Change {
    /// One line about the store, for after the line saying where `/api/*` goes.
    pub fn summary(&self, store: &Store) -> String {
        let place = match &store.stack {
            Some(stack) => format!("{} (stack {stack})", store.arn),
            None => store.arn.clone(),
        };
        let before = self.before.as_deref().unwrap_or("none");
        if !self.written {
            return format!("key {ACTIVE_REGION_KEY} of {place} already was {before}: no write");
        }
        let retried = if self.retried {
            "; another writer changed the store first, so the write was retried with its new ETag"
        } else {
            ""
        };
        format!(
            "key {ACTIVE_REGION_KEY} of {place}: {before} -> {}{retried}. CloudFront's edge \
             locations pick it up within seconds.",
            self.after.as_deref().unwrap_or("none (deleted)")
        )
    }
}

/// The host of an endpoint URL (no scheme, port, path or `#token=` fragment).
pub fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '#', '?', ':']).unwrap_or(rest.len());
    &rest[..end]
}

/// Whether `arn` looks like a KeyValueStore's: `arn:<partition>:cloudfront::<account>:key-value-store/<id>`.
pub fn is_kvs_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "cloudfront", "", account, resource]
            if partition.starts_with("aws")
                && !account.is_empty()
                && resource
                    .strip_prefix("key-value-store/")
                    .is_some_and(|id| !id.is_empty())
    )
}

/// The store for `endpoint`: `--kvs-arn`, or the edge stack's output.
pub async fn find_store(aws: &Aws, args: &EdgeArgs, endpoint: &str) -> anyhow::Result<Store> {
    if let Some(arn) = &args.kvs_arn {
        if !is_kvs_arn(arn) {
            bail!(
                "--kvs-arn {arn:?} is not a KeyValueStore ARN \
                 (arn:aws:cloudfront::<account>:key-value-store/<id>)"
            );
        }
        return Ok(Store {
            arn: arn.clone(),
            stack: None,
            regions: None,
            warning: None,
        });
    }
    let name = edge_stack_name(&args.prefix);
    let region = &args.edge_region;
    let found = stack::describe(&aws.cloudformation(region), &name)
        .await
        .with_context(|| {
            format!("reading stack {name} in {region} (cloudformation:DescribeStacks)")
        })?
        .ok_or_else(|| {
            anyhow!(
                "no stack {name} in {region}: pass the --prefix and --edge-region (the primary \
                 region) that `tandem deploy` used, or --kvs-arn"
            )
        })?;
    let parameters: std::collections::BTreeMap<&str, &str> = found
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?, p.parameter_value()?)))
        .collect();
    store_of(
        &format!("{name} ({region})"),
        &stack::outputs(&found),
        &parameters,
        endpoint,
    )
}

/// Refuses an https:// `endpoint` that is not the distribution of the edge stack `stack`:
/// neither its domain nor its alias (a custom domain, `DomainName`). Switching or comparing
/// through another distribution would be about another deployment.
pub fn check_endpoint(
    stack: &str,
    outputs: &std::collections::BTreeMap<String, String>,
    parameters: &std::collections::BTreeMap<&str, &str>,
    endpoint: &str,
) -> anyhow::Result<()> {
    if endpoint.trim_start().starts_with("https://")
        && let Some(domain) = outputs.get(DISTRIBUTION_DOMAIN)
    {
        // edge.yaml makes `DomainName` the distribution's one alias (`Aliases`), so the
        // parameter is the list, with no CloudFront call (nor its permission).
        let alias = parameters
            .get(DOMAIN_PARAMETER)
            .copied()
            .filter(|a| !a.is_empty());
        let host = endpoint_host(endpoint);
        let mut known = std::iter::once(domain.as_str()).chain(alias);
        if !known.any(|name| host.eq_ignore_ascii_case(name)) {
            let names = match alias {
                Some(alias) => format!("{domain}, or its alias {alias}"),
                None => format!("{domain}; it has no alias (--domain-name)"),
            };
            bail!("--endpoint {host} is not the distribution of stack {stack} ({names})");
        }
    }
    Ok(())
}

/// The store an edge stack's outputs and parameters describe, after checking that `endpoint`
/// is that stack's distribution: its domain, or its alias (a custom domain, `DomainName`).
pub fn store_of(
    stack: &str,
    outputs: &std::collections::BTreeMap<String, String>,
    parameters: &std::collections::BTreeMap<&str, &str>,
    endpoint: &str,
) -> anyhow::Result<Store> {
    let arn = outputs.get(KVS_ARN_OUTPUT).ok_or_else(|| {
        anyhow!(
            "stack {stack} has no output {KVS_ARN_OUTPUT}: it was deployed before the active \
             region moved to a KeyValueStore; run `tandem deploy` to update it"
        )
    })?;
    check_endpoint(stack, outputs, parameters, endpoint).map_err(|e| {
        anyhow!("{e}: pass the --prefix and --edge-region it was deployed with, or --kvs-arn")
    })?;
    let regions = match (
        parameters.get("PrimaryRegion"),
        parameters.get("SecondaryRegion"),
    ) {
        (Some(p), Some(s)) => Some([(*p).to_owned(), (*s).to_owned()]),
        _ => None,
    };
    let warning = (parameters.get("ApiFailoverMode") == Some(&"origin-group")).then(|| {
        format!(
            "stack {stack} runs with ApiFailoverMode=origin-group: /api/* does not run the router \
             function, so the active region has no effect until it is deployed with \
             ApiFailoverMode=function"
        )
    });
    Ok(Store {
        arn: arn.clone(),
        stack: Some(stack.to_owned()),
        regions,
        warning,
    })
}

/// The active region's value in the store; `None` when the key is absent.
pub async fn get(client: &Client, arn: &str) -> anyhow::Result<Option<String>> {
    match client
        .get_key()
        .kvs_arn(arn)
        .key(ACTIVE_REGION_KEY)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.value().to_owned())),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(failed(err, "GetKey", arn)),
    }
}

/// The store's current ETag, which a write must name in `If-Match`.
pub async fn etag(client: &Client, arn: &str) -> anyhow::Result<String> {
    let out = client
        .describe_key_value_store()
        .kvs_arn(arn)
        .send()
        .await
        .map_err(|e| failed(e, "DescribeKeyValueStore", arn))?;
    if out.e_tag().is_empty() {
        bail!("DescribeKeyValueStore of {arn} returned no ETag");
    }
    Ok(out.e_tag().to_owned())
}

/// One write's outcome: done, beaten by another writer, or failed.
enum Write {
    Done,
    Conflict(String),
    Failed(anyhow::Error),
}

/// Puts `value` under the key (or deletes the key), naming `etag` in `If-Match`.
async fn write_once(client: &Client, arn: &str, value: Option<&str>, etag: &str) -> Write {
    match value {
        Some(value) => classify(
            client
                .put_key()
                .kvs_arn(arn)
                .key(ACTIVE_REGION_KEY)
                .value(value)
                .if_match(etag)
                .send()
                .await
                .map(drop),
            "PutKey",
            arn,
            false,
        ),
        None => classify(
            client
                .delete_key()
                .kvs_arn(arn)
                .key(ACTIVE_REGION_KEY)
                .if_match(etag)
                .send()
                .await
                .map(drop),
            "DeleteKey",
            arn,
            true,
        ),
    }
}

/// A write's result: a ConflictException (the ETag changed under us) is retried by the caller;
/// a key already gone is what a delete wanted.
fn classify<E>(result: Result<(), SdkError<E>>, operation: &str, arn: &str, deleting: bool) -> Write
where
    E: std::error::Error + ProvideErrorMetadata,
    E: Send + Sync + 'static,
{
    let Err(err) = result else {
        return Write::Done;
    };
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ConflictException") => Write::Conflict(
            err.as_service_error()
                .and_then(|e| e.message())
                .unwrap_or("the ETag no longer matches")
                .to_owned(),
        ),
        Some("ResourceNotFoundException") if deleting => Write::Done,
        _ => Write::Failed(failed(err, operation, arn)),
    }
}

/// The health watcher's compare-and-swap: writes `value` (or deletes the key) naming `etag`,
/// the ETag read before the value the switch was decided on. Another writer's change in
/// between is [`Written::Conflict`], and nothing is retried: the watcher goes by what the other
/// writer did, never over it.
pub async fn write_if(
    client: &Client,
    arn: &str,
    value: Option<&str>,
    etag: &str,
) -> anyhow::Result<Written> {
    match write_once(client, arn, value, etag).await {
        Write::Done => Ok(Written::Done),
        Write::Conflict(message) => Ok(Written::Conflict(format!(
            "key {ACTIVE_REGION_KEY} of {arn}: another writer changed the store after ETag \
             {etag} was read ({message})"
        ))),
        Write::Failed(err) => Err(err),
    }
}

/// Sets the active region to `value`, or clears it with `None`. DescribeKeyValueStore comes
/// first: it gives the ETag, and it tells a store that does not exist from a key that does not
/// (GetKey answers both with ResourceNotFoundException). Then the key is read (no write when it
/// already holds `value`), and written with that ETag; once more with a fresh ETag if another
/// writer changed the store in between.
pub async fn set(client: &Client, arn: &str, value: Option<&str>) -> anyhow::Result<Change> {
    let mut current = etag(client, arn).await?;
    let before = get(client, arn).await?;
    let after = value.map(str::to_owned);
    if before == after {
        return Ok(Change {
            before,
            after,
            written: false,
            retried: false,
        });
    }
    let mut conflict = String::new();
    for attempt in 0..2 {
        if attempt > 0 {
            current = etag(client, arn).await?;
        }
        match write_once(client, arn, value, &current).await {
            Write::Done => {
                return Ok(Change {
                    before,
                    after,
                    written: true,
                    retried: attempt > 0,
                });
            }
            Write::Conflict(message) => conflict = message,
            Write::Failed(err) => return Err(err),
        }
    }
    bail!(
        "key {ACTIVE_REGION_KEY} of {arn}: another writer changed the store twice while this \
         one tried to write ({conflict}); nothing was written, run the command again"
    )
}

/// `tandem failover --to <region>` (`Some`) or `tandem failback` (`None`) on AWS: finds the
/// store, checks the region against the edge, and writes.
pub async fn set_active_region(
    args: &EdgeArgs,
    endpoint: &str,
    region: Option<&str>,
) -> anyhow::Result<(Store, Change)> {
    let aws = Aws::load().await;
    let store = find_store(&aws, args, endpoint).await?;
    if let Some(region) = region {
        store.check_region(region)?;
    }
    let change = set(&aws.keyvaluestore(), &store.arn, region).await?;
    Ok((store, change))
}

/// An SDK error of `operation` on the store, with its code and message, and a hint when it is
/// a missing permission.
fn failed<E>(err: SdkError<E>, operation: &str, arn: &str) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata,
    E: Send + Sync + 'static,
{
    let hint = hint(err.as_service_error().and_then(|e| e.code()));
    sdk_error(err).context(format!(
        "cloudfront-keyvaluestore:{operation} on {arn}{hint}"
    ))
}

/// What to check for an error code: on AccessDenied, the permissions and the session token.
fn hint(code: Option<&str>) -> String {
    match code {
        Some("AccessDeniedException") => {
            format!(" (the credentials need {IAM_ACTIONS}; and {SESSION_TOKENS})")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const ARN: &str = "arn:aws:cloudfront::123456789012:key-value-store/0f1e2d3c-aaaa-bbbb";
    const DOMAIN: &str = "d111111abcdef8.cloudfront.net";

    fn outputs() -> BTreeMap<String, String> {
        BTreeMap::from([
            (KVS_ARN_OUTPUT.to_owned(), ARN.to_owned()),
            (DISTRIBUTION_DOMAIN.to_owned(), DOMAIN.to_owned()),
        ])
    }

    #[test]
    fn the_endpoint_decides_between_aws_and_the_local_stack() {
        let args = |kvs_arn: Option<&str>| EdgeArgs {
            prefix: "tandem".into(),
            edge_region: PRIMARY.into(),
            kvs_arn: kvs_arn.map(str::to_owned),
        };
        assert!(args(None).on_aws("https://d1.cloudfront.net/#token=x"));
        assert!(!args(None).on_aws("http://127.0.0.1:8080"));
        assert!(args(Some(ARN)).on_aws("http://127.0.0.1:8080"));
        assert_eq!(
            endpoint_host("https://D1.cloudfront.net/#token=x"),
            "D1.cloudfront.net"
        );
        assert_eq!(endpoint_host("https://d1.example:443/api"), "d1.example");
        assert_eq!(endpoint_host("d1.example"), "d1.example");
    }

    #[test]
    fn a_kvs_arn_has_the_shape_cloudfront_gives_it() {
        assert!(is_kvs_arn(ARN));
        assert!(is_kvs_arn("arn:aws-cn:cloudfront::1:key-value-store/x"));
        assert!(!is_kvs_arn("arn:aws:cloudfront::1:distribution/E123"));
        assert!(!is_kvs_arn(
            "arn:aws:cloudfront:us-east-1:1:key-value-store/x"
        ));
        assert!(!is_kvs_arn("arn:aws:cloudfront::1:key-value-store/"));
        assert!(!is_kvs_arn("tandem-edge-active-region"));
    }

    #[test]
    fn the_edge_stack_names_the_store_its_regions_and_its_distribution() {
        let parameters = BTreeMap::from([
            ("PrimaryRegion", "us-east-1"),
            ("SecondaryRegion", "us-west-2"),
            ("ApiFailoverMode", "function"),
        ]);
        let stack = "tandem-edge (us-east-1)";
        let endpoint = format!("https://{DOMAIN}/#token=abc");
        let store = store_of(stack, &outputs(), &parameters, &endpoint).unwrap();
        assert_eq!(store.arn, ARN);
        assert_eq!(
            store.regions,
            Some(["us-east-1".to_owned(), "us-west-2".to_owned()])
        );
        assert_eq!(store.warning, None);
        store.check_region("us-west-2").unwrap();
        let refused = store.check_region("eu-west-1").unwrap_err().to_string();
        assert!(refused.contains("no region \"eu-west-1\""), "{refused}");

        // Another distribution: the wrong stack would be switched.
        let other = store_of(stack, &outputs(), &parameters, "https://d2.cloudfront.net")
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("is not the distribution of stack"),
            "{other}"
        );
        assert!(other.contains("it has no alias"), "{other}");
        // A custom domain: refused unless it is the distribution's alias.
        let custom = "https://Tandem.Example.com/#token=abc";
        let refused = store_of(stack, &outputs(), &parameters, custom)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--endpoint Tandem.Example.com is not"),
            "{refused}"
        );
        let mut aliased = parameters.clone();
        aliased.insert(DOMAIN_PARAMETER, "tandem.example.com");
        assert_eq!(
            store_of(stack, &outputs(), &aliased, custom).unwrap().arn,
            ARN
        );
        let wrong = store_of(stack, &outputs(), &aliased, "https://other.example.com")
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("or its alias tandem.example.com"), "{wrong}");
        // An empty DomainName (the template's default) is no alias.
        aliased.insert(DOMAIN_PARAMETER, "");
        assert!(store_of(stack, &outputs(), &aliased, "https://").is_err());

        // An edge deployed before the store existed.
        let mut old = outputs();
        old.remove(KVS_ARN_OUTPUT);
        let err = store_of(stack, &old, &parameters, &endpoint)
            .unwrap_err()
            .to_string();
        assert!(err.contains("run `tandem deploy`"), "{err}");

        // The static origin group does not run the function: said, not refused.
        let group = BTreeMap::from([("ApiFailoverMode", "origin-group")]);
        let store = store_of(stack, &outputs(), &group, &endpoint).unwrap();
        assert!(store.warning.as_deref().unwrap().contains("no effect"));
        store.check_region("eu-west-1").unwrap();
    }

    #[test]
    fn access_denied_names_the_permissions_and_the_session_token() {
        let hint = hint(Some("AccessDeniedException"));
        for needle in [
            "PutKey",
            "version 2 session tokens",
            "regional STS endpoint",
            "SigV4a",
        ] {
            assert!(hint.contains(needle), "{needle}: {hint}");
        }
        assert_eq!(super::hint(Some("ConflictException")), "");
        assert_eq!(super::hint(None), "");
    }

    #[test]
    fn the_summary_says_what_changed() {
        let store = Store {
            arn: ARN.into(),
            stack: Some("tandem-edge (us-east-1)".into()),
            regions: None,
            warning: None,
        };
        let change = Change {
            before: None,
            after: Some("us-west-2".into()),
            written: true,
            retried: true,
        };
        let line = change.summary(&store);
        assert!(line.contains("none -> us-west-2"), "{line}");
        assert!(line.contains("retried"), "{line}");
        let same = Change {
            before: Some("us-west-2".into()),
            after: Some("us-west-2".into()),
            written: false,
            retried: false,
        };
        assert!(
            same.summary(&store)
                .contains("already was us-west-2: no write")
        );
    }
}
