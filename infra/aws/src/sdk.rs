//! AWS clients for `tandem deploy` and `tandem destroy`, and the S3, CloudFront and DynamoDB
//! chores that the templates cannot do themselves (code buckets, emptying buckets, invalidating
//! the console's cached copies, dropping the global table), and the Lambda limits deploy reads
//! before the health watcher's stack.
//!
//! Every client shares one SDK configuration: credentials, profile and endpoint come from the
//! usual chain (`AWS_PROFILE`, SSO, `AWS_ENDPOINT_URL`, ...), and HTTPS is the ring-based client
//! the Lambda uses ([`tandem_api::store::dynamo::sdk_config`]), so the CLI builds no second TLS
//! stack.

use anyhow::{Context as _, anyhow, bail};
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration,
};
use std::time::Duration;

/// S3 accepts at most this many keys per DeleteObjects call.
const DELETE_BATCH: usize = 1000;

/// An account's Lambda concurrency in one region (GetAccountSettings' `AccountLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaLimits {
    /// `ConcurrentExecutions`: the account's quota in the region.
    pub concurrent: i64,
    /// `UnreservedConcurrentExecutions`: what no function has reserved.
    pub unreserved: i64,
}

/// One SDK configuration, and clients for any region from it.
#[derive(Clone)]
pub struct Aws {
    base: SdkConfig,
    /// S3 emulators on `127.0.0.1:port` cannot serve `bucket.127.0.0.1`: use path-style
    /// addressing whenever the endpoint is not AWS's own.
    path_style: bool,
}

impl Aws {
    /// Loads the configuration from the environment, the way the AWS CLI would.
    pub async fn load() -> Aws {
        let base =
            tandem_api::store::dynamo::sdk_config(None, tandem_api::store::dynamo::Roots::System)
                .await;
        let path_style = base.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        Aws { base, path_style }
    }

    /// Clients from `base` (tests: an emulator's endpoint and credentials).
    pub fn from_config(base: SdkConfig) -> Aws {
        let path_style = base.endpoint_url().is_some();
        Aws { base, path_style }
    }

    fn regional(&self, region: &str) -> SdkConfig {
        self.base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    pub fn cloudformation(&self, region: &str) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.regional(region))
    }

    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.regional(region))
            .force_path_style(self.path_style)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// CloudFront is global; its API lives in us-east-1.
    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.regional("us-east-1"))
    }

    /// The CloudFront KeyValueStore data plane (the active region). It is global: its endpoint
    /// comes from the store's ARN and requests are signed with SigV4a for every region, so the
    /// client's region only picks the partition.
    pub fn keyvaluestore(&self) -> aws_sdk_cloudfrontkeyvaluestore::Client {
        aws_sdk_cloudfrontkeyvaluestore::Client::new(&self.regional("us-east-1"))
    }

    pub fn secrets(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.regional(region))
    }

    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.regional(region))
    }

    /// The account the credentials belong to (it names the code buckets). This is the first
    /// call `deploy` and `destroy` make, so a missing login fails here with a hint.
    pub async fn account_id(&self, region: &str) -> anyhow::Result<String> {
        let out = aws_sdk_sts::Client::new(&self.regional(region))
            .get_caller_identity()
            .send()
            .await
            .map_err(sdk_error)
            .context(
                "reading the AWS account (sts:GetCallerIdentity): are credentials configured? \
                 (`aws configure`, `aws sso login`, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            )?;
        out.account
            .ok_or_else(|| anyhow!("sts:GetCallerIdentity returned no account"))
    }

    /// The account's Lambda concurrency in `region` (GetAccountSettings, `lambda:GetAccountSettings`):
    /// what `tandem deploy --auto-failover` checks before the watcher's stack may reserve any.
    pub async fn lambda_limits(&self, region: &str) -> anyhow::Result<LambdaLimits> {
        let out = aws_sdk_lambda::Client::new(&self.regional(region))
            .get_account_settings()
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("lambda:GetAccountSettings in {region}"))?;
        let limit = out.account_limit().ok_or_else(|| {
            anyhow!("lambda:GetAccountSettings in {region} returned no AccountLimit")
        })?;
        Ok(LambdaLimits {
            concurrent: i64::from(limit.concurrent_executions()),
            unreserved: limit
                .unreserved_concurrent_executions()
                .map(i64::from)
                .ok_or_else(|| {
                    anyhow!(
                        "lambda:GetAccountSettings in {region} returned no \
                         UnreservedConcurrentExecutions"
                    )
                })?,
        })
    }

    /// The runtime secret's `admin_token` (for the console URL). The value is returned, never
    /// printed here.
    pub async fn admin_token(&self, region: &str, secret_id: &str) -> anyhow::Result<String> {
        let client = self.secrets(region);
        let secret = tandem_api::secret::RuntimeSecret::fetch(&client, secret_id).await?;
        Ok(secret.admin_token)
    }
}

/// An SDK error (of any service: they share one type) as an `anyhow` error whose message
/// includes the service's code and message, which `SdkError`'s own `Display` leaves out.
pub fn sdk_error<E>(err: aws_sdk_s3::error::SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(err))
}

/// Creates `bucket` in `region` when it does not exist yet: private (every public access
/// blocked; new buckets already have ACLs disabled and SSE-S3 encryption).
pub async fn ensure_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    region: &str,
) -> anyhow::Result<bool> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(false),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(err) => {
            return Err(sdk_error(err)).with_context(|| {
                format!("checking bucket {bucket} (a 403 means another account owns that name)")
            });
        }
    }
    let mut create = s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("creating bucket {bucket} in {region}"))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("blocking public access to {bucket}"))?;
    Ok(true)
}

/// Invalidates `paths` on CloudFront `distribution`; returns the invalidation's id.
pub async fn invalidate(
    cloudfront: &aws_sdk_cloudfront::Client,
    distribution: &str,
    paths: &[String],
) -> anyhow::Result<String> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(paths.len() as i32)
                .set_items(Some(paths.to_vec()))
                .build()?,
        )
        // A new reference each time: CloudFront takes a repeated one for a retry of the same
        // request, and would not invalidate again.
        .caller_reference(format!("tandem-deploy-{}", uuid::Uuid::new_v4()))
        .build()?;
    let out = cloudfront
        .create_invalidation()
        .distribution_id(distribution)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("invalidating {} on {distribution}", paths.join(" ")))?;
    Ok(out
        .invalidation()
        .map(|i| i.id().to_owned())
        .unwrap_or_default())
}

/// How often CloudFront is asked whether a change has reached its edge locations.
const CLOUDFRONT_POLL: Duration = Duration::from_secs(5);
/// CloudFront propagates in minutes; past this, something is wrong and waiting more would hide it.
const CLOUDFRONT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Asks `check` every [`CLOUDFRONT_POLL`] until it answers true; an error after
/// [`CLOUDFRONT_LIMIT`], naming `what`.
async fn poll_cloudfront<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = std::time::Instant::now();
    while !check().await? {
        if start.elapsed() > CLOUDFRONT_LIMIT {
            bail!(
                "{what} has not completed after {CLOUDFRONT_LIMIT:?}; check it in the CloudFront console"
            );
        }
        tokio::time::sleep(CLOUDFRONT_POLL).await;
    }
    Ok(())
}

/// Waits until invalidation `id` of `distribution` is complete: from then on no edge location
/// serves a copy from before it.
pub async fn wait_invalidation(
    cloudfront: &aws_sdk_cloudfront::Client,
    distribution: &str,
    id: &str,
) -> anyhow::Result<()> {
    poll_cloudfront(&format!("invalidation {id}"), || async {
        let out = cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(id)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("reading invalidation {id} of {distribution}"))?;
        let status = out.invalidation().map(|i| i.status()).unwrap_or_default();
        Ok(status.eq_ignore_ascii_case("Completed"))
    })
    .await
}

/// Waits until `distribution` is `Deployed`: every edge location has its latest configuration.
pub async fn wait_deployed(
    cloudfront: &aws_sdk_cloudfront::Client,
    distribution: &str,
) -> anyhow::Result<()> {
    poll_cloudfront(&format!("distribution {distribution}"), || async {
        let out = cloudfront
            .get_distribution()
            .id(distribution)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("reading distribution {distribution}"))?;
        let status = out.distribution().map(|d| d.status()).unwrap_or_default();
        Ok(status == "Deployed")
    })
    .await
}

/// Whether `bucket` exists (and is ours to see).
pub async fn bucket_exists(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<bool> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(err) => Err(sdk_error(err)).with_context(|| format!("checking bucket {bucket}")),
    }
}

/// Uploads `body` to `bucket/key` unless an object is already there. Code keys are content
/// hashes, so an existing key already holds these bytes.
pub async fn upload_once(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> anyhow::Result<bool> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => return Ok(false),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(err) => {
            return Err(sdk_error(err)).with_context(|| format!("checking s3://{bucket}/{key}"));
        }
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
    Ok(true)
}

/// Puts one console file with its content type and cache policy.
pub async fn put_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
    cache_control: &str,
) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .cache_control(cache_control)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
    Ok(())
}

/// Every current key in `bucket`.
pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("listing s3://{bucket}"))?;
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match out.next_continuation_token {
            Some(next) if out.is_truncated == Some(true) => token = Some(next),
            _ => return Ok(keys),
        }
    }
}

/// Deletes `objects` (key, optional version) in batches.
async fn delete_batch(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: Vec<(String, Option<String>)>,
) -> anyhow::Result<()> {
    for chunk in objects.chunks(DELETE_BATCH) {
        let ids = chunk
            .iter()
            .map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("deleting objects in s3://{bucket}"))?;
        if let Some(first) = out.errors().first() {
            bail!(
                "S3 refused to delete {} objects in {bucket}, e.g. {}: {}",
                out.errors().len(),
                first.key().unwrap_or("?"),
                first.message().unwrap_or("no message")
            );
        }
    }
    Ok(())
}

/// Deletes the current version of each key.
pub async fn delete_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
) -> anyhow::Result<()> {
    delete_batch(s3, bucket, keys.iter().map(|k| (k.clone(), None)).collect()).await
}

/// Deletes every object version and delete marker, so that the bucket itself can be deleted
/// (CloudFormation cannot delete a bucket that holds anything, old versions included).
/// Returns how many were deleted.
pub async fn empty_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<usize> {
    let mut deleted = 0;
    loop {
        // Always list from the start: what was listed before is gone by now.
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("listing versions in s3://{bucket}"))?;
        let mut objects: Vec<(String, Option<String>)> = out
            .versions()
            .iter()
            .filter_map(|v| Some((v.key()?.to_owned(), v.version_id().map(str::to_owned))))
            .collect();
        objects.extend(
            out.delete_markers()
                .iter()
                .filter_map(|m| Some((m.key()?.to_owned(), m.version_id().map(str::to_owned)))),
        );
        if objects.is_empty() {
            return Ok(deleted);
        }
        deleted += objects.len();
        delete_batch(s3, bucket, objects).await?;
    }
}

/// Empties and deletes `bucket`; false when it did not exist.
pub async fn delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<bool> {
    if !bucket_exists(s3, bucket).await? {
        return Ok(false);
    }
    empty_bucket(s3, bucket).await?;
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("deleting bucket {bucket}"))?;
    Ok(true)
}

/// What [`delete_table`] did in one region.
#[derive(Debug, Default)]
pub struct TableDeletion {
    pub protection_turned_off: bool,
    pub replicas_removed: Vec<String>,
    pub deleted: bool,
}

/// Describes `table` in `region`; `None` when it does not exist there.
async fn describe_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> anyhow::Result<Option<aws_sdk_dynamodb::types::TableDescription>> {
    match ddb.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(sdk_error(err)).with_context(|| format!("describing table {table}")),
    }
}

/// Turns deletion protection off on `table` in `region`; false when there was nothing to do.
/// data.yaml turns it on for every replica, and DynamoDB refuses to delete a protected
/// replica, so `destroy --delete-data` must lift it first (replica by replica, in its region).
pub async fn unprotect_table(aws: &Aws, region: &str, table: &str) -> anyhow::Result<bool> {
    let ddb = aws.dynamodb(region);
    let Some(desc) = describe_table(&ddb, table).await? else {
        return Ok(false);
    };
    if desc.deletion_protection_enabled != Some(true) {
        return Ok(false);
    }
    ddb.update_table()
        .table_name(table)
        .deletion_protection_enabled(false)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("turning off deletion protection of {table} in {region}"))?;
    wait_table_active(&ddb, table, |_| true).await?;
    Ok(true)
}

/// Polls until `table` is ACTIVE and `done` holds (or it is gone).
async fn wait_table_active(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    done: impl Fn(&aws_sdk_dynamodb::types::TableDescription) -> bool,
) -> anyhow::Result<()> {
    // Removing a replica takes minutes on AWS; an hour means something is stuck.
    for _ in 0..720 {
        match describe_table(ddb, table).await? {
            None => return Ok(()),
            Some(desc)
                if desc.table_status == Some(aws_sdk_dynamodb::types::TableStatus::Active)
                    && done(&desc) =>
            {
                return Ok(());
            }
            Some(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
    bail!("table {table} did not settle within an hour")
}

/// Deletes the global table: first every other replica (from the primary, which is how
/// global tables version 2019.11.21 remove replicas), then the primary's own table.
/// Deletion protection must already be off.
pub async fn delete_table(aws: &Aws, primary: &str, table: &str) -> anyhow::Result<TableDeletion> {
    let ddb = aws.dynamodb(primary);
    let mut result = TableDeletion::default();
    let Some(desc) = describe_table(&ddb, table).await? else {
        return Ok(result);
    };
    let others: Vec<String> = desc
        .replicas()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_owned))
        .filter(|r| r != primary)
        .collect();
    for region in others {
        use aws_sdk_dynamodb::types::{DeleteReplicationGroupMemberAction, ReplicationGroupUpdate};
        ddb.update_table()
            .table_name(table)
            .replica_updates(
                ReplicationGroupUpdate::builder()
                    .delete(
                        DeleteReplicationGroupMemberAction::builder()
                            .region_name(&region)
                            .build()?,
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("removing the {region} replica of {table}"))?;
        wait_table_active(&ddb, table, |d| {
            !d.replicas()
                .iter()
                .any(|r| r.region_name() == Some(region.as_str()))
        })
        .await?;
        result.replicas_removed.push(region);
    }
    ddb.delete_table()
        .table_name(table)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("deleting table {table} in {primary}"))?;
    result.deleted = true;
    Ok(result)
}
