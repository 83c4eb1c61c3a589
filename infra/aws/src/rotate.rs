//! `tandem rotate-secret`: a new origin secret (the `x-origin-verify` value CloudFront sends
//! and the regions check) without a single 403 on the way.
//!
//! The order is what makes it safe:
//! 1. **Stage**: the secret gets a new `origin_secret`, the old value kept as
//!    `previous_origin_secret`. The regions accept both (`tandem_api::origin`); the edge still
//!    sends the old one.
//! 2. **Replica**: wait until the secondary region's replica of the secret has the new value,
//!    so that region accepts it as soon as the edge sends it.
//! 3. **Edge**: the edge stack's `OriginSecretVersionId` is set to the new version, so that
//!    CloudFormation resolves the header again; then wait until the distribution is deployed
//!    everywhere, and move the staging label [`EDGE_LABEL`] to the new version.
//! 4. **Retire**: the secret loses `previous_origin_secret`. Regions drop the old value when
//!    they next read the secret (within `tandem_api::origin::MAX_AGE`).
//!
//! The version the edge pins keeps a staging label of its own, [`EDGE_LABEL`], until the edge
//! has moved off it. Without it the pinned version would be left with none: step 4 makes it
//! `AWSPREVIOUS`, and the next rotation's step 1 takes that away. Secrets Manager treats a
//! version without a label as deprecated and may delete it, after which every update of the
//! edge stack (a `tandem deploy`, or this rotation's own step 3 rolling back) would fail to
//! resolve the header's reference. Step 1 labels the pinned version first (an edge deployed
//! before the label existed included).
//!
//! A rotation stopped half way resumes: a secret that still holds a previous value is a
//! rotation under way, and the next run carries on from step 2 with it.

use crate::deploy::built_in_resources;
use crate::names::{DISTRIBUTION_ID, StackArgs, edge_stack_name};
use crate::sdk::{self, Aws, sdk_error};
use crate::stack::{self, Progress};
use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};
use std::time::Duration;

// The edge stack's parameter this rotation sets, at the path the rotation's tests name.
pub use crate::names::VERSION_PARAMETER;

/// The staging label on the secret version the edge stack pins (its `OriginSecretVersionId`):
/// a version with a label is never deprecated, so the edge's reference always resolves.
pub const EDGE_LABEL: &str = "TANDEM_EDGE";

/// The secret's keys (`tandem_api::secret::RuntimeSecret`).
const CURRENT: &str = "origin_secret";
const PREVIOUS: &str = "previous_origin_secret";
/// The new value's length and alphabet: as data.yaml generates the first one.
const LENGTH: i64 = 48;
/// How long the secondary region's replica may take to catch up.
const REPLICA_LIMIT: Duration = Duration::from_secs(300);
const REPLICA_POLL: Duration = Duration::from_secs(2);

/// `tandem rotate-secret` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Print the steps and stop: no AWS API is called.
    #[arg(long)]
    pub dry_run: bool,
}

/// A rotation's state: the secret, and the version whose `origin_secret` is the new value.
#[derive(Debug, Clone)]
pub struct Staged {
    pub version_id: String,
    /// The new value (never printed).
    value: String,
    /// The whole secret as staged, `previous_origin_secret` included.
    secret: Map<String, Value>,
}

/// Where the secret and the edge live, and the clients to reach them.
pub struct Rotation {
    aws: Aws,
    secret: String,
    primary: String,
    secondary: String,
    edge_stack: String,
    progress: Progress,
}

/// `tandem rotate-secret`.
pub async fn run(args: RotateArgs) -> anyhow::Result<()> {
    let (primary, secondary) = args.stacks.check()?;
    let rotation = Rotation {
        aws: Aws::load().await,
        secret: args.stacks.secret(),
        primary,
        secondary,
        edge_stack: edge_stack_name(&args.stacks.prefix),
        progress: Progress::default(),
    };
    if args.dry_run {
        print!("{}", rotation.plan());
        return Ok(());
    }
    rotation.preflight().await?;
    let staged = rotation.stage().await?;
    rotation.wait_for_replica(&staged).await?;
    rotation.switch_edge(&staged).await?;
    rotation.retire(&staged).await?;
    println!(
        "Rotated the origin secret of {}: the edge sends version {}; regions stop accepting the old value within {:?}.",
        rotation.secret,
        staged.version_id,
        tandem_api::origin::MAX_AGE
    );
    Ok(())
}

impl Rotation {
    /// For tests: a rotation of `secret`, whose replica is in `secondary`, for `edge_stack`.
    pub fn new(aws: Aws, secret: &str, regions: [&str; 2], edge_stack: &str) -> Rotation {
        Rotation {
            aws,
            secret: secret.to_owned(),
            primary: regions[0].to_owned(),
            secondary: regions[1].to_owned(),
            edge_stack: edge_stack.to_owned(),
            progress: Progress::default(),
        }
    }

    /// The steps, as `--dry-run` prints them.
    pub fn plan(&self) -> String {
        let Rotation {
            secret,
            primary,
            secondary,
            edge_stack,
            ..
        } = self;
        format!(
            "tandem rotate-secret --dry-run: nothing is changed, no AWS API is called.\n\
             1. Secret {secret} ({primary}): a new {CURRENT} ({LENGTH} letters and digits), the old one kept as {PREVIOUS}; regions accept both.\n\
             2. Wait until the replica in {secondary} has the new value.\n\
             3. Stack {edge_stack} ({primary}): {VERSION_PARAMETER} = the new version, then wait until the distribution is Deployed (CloudFront sends the new value); staging label {EDGE_LABEL} moves to the new version (it stays on the version the edge pins until then, so that one is never deprecated).\n\
             4. Secret {secret}: {PREVIOUS} removed; regions stop accepting the old value when they next read the secret (within {:?}).\n",
            tandem_api::origin::MAX_AGE
        )
    }

    /// Everything the rotation will need, checked before the secret changes: an edge stack,
    /// settled, that can pin a version (deployed by this tandem), with its distribution; and
    /// the secret readable in both regions. A rotation that cannot finish never starts.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.primary);
        let label = format!("{} ({})", self.edge_stack, self.primary);
        let edge = stack::describe(&cfn, &self.edge_stack)
            .await?
            .ok_or_else(|| anyhow!("{label} does not exist: run `tandem deploy` first"))?;
        let status = edge.stack_status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
        if stack::next_step(status) != stack::NextStep::Update {
            bail!("{label} is in {status}: run `tandem deploy` to settle it first");
        }
        if !edge
            .parameters()
            .iter()
            .any(|p| p.parameter_key() == Some(VERSION_PARAMETER))
        {
            bail!(
                "{label} has no parameter {VERSION_PARAMETER}: deploy it with this version of tandem first"
            );
        }
        if !stack::outputs(&edge).contains_key(DISTRIBUTION_ID) {
            bail!("{label} has no output {DISTRIBUTION_ID}");
        }
        for region in [&self.primary, &self.secondary] {
            self.read(region).await?;
        }
        Ok(())
    }

    async fn read(&self, region: &str) -> anyhow::Result<(String, Map<String, Value>)> {
        let out = self
            .aws
            .secrets(region)
            .get_secret_value()
            .secret_id(&self.secret)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("reading secret {} in {region}", self.secret))?;
        let version = out.version_id().unwrap_or_default().to_owned();
        let text = out
            .secret_string()
            .ok_or_else(|| anyhow!("secret {} has no SecretString", self.secret))?;
        let map: Map<String, Value> = serde_json::from_str(text)
            .map_err(|_| anyhow!("secret {} is not a JSON object", self.secret))?;
        Ok((version, map))
    }

    async fn write(&self, secret: &Map<String, Value>) -> anyhow::Result<String> {
        let out = self
            .aws
            .secrets(&self.primary)
            .put_secret_value()
            .secret_id(&self.secret)
            .secret_string(Value::Object(secret.clone()).to_string())
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("writing secret {}", self.secret))?;
        out.version_id()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("secret {}: PutSecretValue returned no version", self.secret))
    }

    async fn new_value(&self) -> anyhow::Result<String> {
        let out = self
            .aws
            .secrets(&self.primary)
            .get_random_password()
            .password_length(LENGTH)
            .exclude_punctuation(true)
            .send()
            .await
            .map_err(sdk_error)
            .context("generating a new origin secret (secretsmanager:GetRandomPassword)")?;
        out.random_password()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("GetRandomPassword returned no password"))
    }

    /// The version the edge stack pins now (`None`: AWSCURRENT when it was last updated).
    async fn pinned(&self) -> anyhow::Result<Option<String>> {
        let cfn = self.aws.cloudformation(&self.primary);
        let edge = stack::describe(&cfn, &self.edge_stack)
            .await?
            .ok_or_else(|| anyhow!("stack {} vanished", self.edge_stack))?;
        Ok(edge
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(VERSION_PARAMETER))
            .and_then(|p| p.parameter_value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned))
    }

    /// Puts [`EDGE_LABEL`] on `version`, taking it off whichever version had it.
    async fn label(&self, version: &str) -> anyhow::Result<()> {
        let client = self.aws.secrets(&self.primary);
        let described = client
            .describe_secret()
            .secret_id(&self.secret)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("describing secret {}", self.secret))?;
        let holder = described.version_ids_to_stages().and_then(|versions| {
            versions
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == EDGE_LABEL))
                .map(|(v, _)| v.clone())
        });
        if holder.as_deref() == Some(version) {
            return Ok(());
        }
        client
            .update_secret_version_stage()
            .secret_id(&self.secret)
            .version_stage(EDGE_LABEL)
            .move_to_version_id(version)
            .set_remove_from_version_id(holder)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| {
                format!(
                    "labelling version {version} of secret {} {EDGE_LABEL} \
                     (secretsmanager:UpdateSecretVersionStage)",
                    self.secret
                )
            })?;
        self.progress.line(format!(
            "secret {}: version {version} labelled {EDGE_LABEL} (the edge pins it)",
            self.secret
        ));
        Ok(())
    }

    /// Step 1: the new value beside the old one, or the rotation already under way. The
    /// version the edge pins is labelled first, so that the new version's write cannot leave
    /// it without a label.
    pub async fn stage(&self) -> anyhow::Result<Staged> {
        if let Some(pinned) = self.pinned().await? {
            self.label(&pinned).await?;
        }
        let (version, mut secret) = self.read(&self.primary).await?;
        let current = text(&secret, CURRENT)
            .ok_or_else(|| anyhow!("secret {} has no {CURRENT}", self.secret))?;
        if text(&secret, PREVIOUS).is_some() {
            self.progress.line(format!(
                "secret {}: a rotation is under way (version {version}); carrying it on",
                self.secret
            ));
            return Ok(Staged {
                version_id: version,
                value: current,
                secret,
            });
        }
        let value = self.new_value().await?;
        secret.insert(PREVIOUS.into(), Value::String(current));
        secret.insert(CURRENT.into(), Value::String(value.clone()));
        let version_id = self.write(&secret).await?;
        self.progress.line(format!(
            "secret {}: new {CURRENT} staged as version {version_id}; the old value stays accepted",
            self.secret
        ));
        Ok(Staged {
            version_id,
            value,
            secret,
        })
    }

    /// Step 2: the secondary region's replica has the new value.
    pub async fn wait_for_replica(&self, staged: &Staged) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        loop {
            let (_, replica) = self.read(&self.secondary).await?;
            if text(&replica, CURRENT).as_deref() == Some(staged.value.as_str()) {
                self.progress.line(format!(
                    "secret {}: the replica in {} has the new value",
                    self.secret, self.secondary
                ));
                return Ok(());
            }
            if start.elapsed() > REPLICA_LIMIT {
                bail!(
                    "the replica of secret {} in {} still lacks the new value after {REPLICA_LIMIT:?} \
                     (its replication status is in the Secrets Manager console); run \
                     `tandem rotate-secret` again to carry on",
                    self.secret,
                    self.secondary
                );
            }
            tokio::time::sleep(REPLICA_POLL).await;
        }
    }

    /// Step 3: the edge sends the new value everywhere.
    pub async fn switch_edge(&self, staged: &Staged) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.primary);
        let resources = built_in_resources("edge.yaml")?;
        stack::update_parameters(
            &cfn,
            &self.edge_stack,
            &self.primary,
            resources,
            &[(VERSION_PARAMETER, &staged.version_id)],
            &self.progress,
        )
        .await?;
        let edge = stack::describe(&cfn, &self.edge_stack)
            .await?
            .ok_or_else(|| anyhow!("stack {} vanished", self.edge_stack))?;
        let distribution = stack::outputs(&edge)
            .remove(DISTRIBUTION_ID)
            .ok_or_else(|| anyhow!("stack {} has no output {DISTRIBUTION_ID}", self.edge_stack))?;
        self.progress.line(format!(
            "waiting until distribution {distribution} is deployed everywhere"
        ));
        sdk::wait_deployed(&self.aws.cloudfront(), &distribution).await?;
        self.progress.line(format!(
            "distribution {distribution}: Deployed; the edge sends the new value"
        ));
        // Only now is the old version no longer needed: the update is complete and cannot
        // roll back to it.
        self.label(&staged.version_id).await
    }

    /// Step 4: only the new value is left. The write moves AWSCURRENT off the version the edge
    /// pins; its own label is checked again after it. AWS documents only AWSCURRENT and
    /// AWSPREVIOUS moving, but moto (the offline tests' Secrets Manager) replaces that
    /// version's labels with AWSPREVIOUS: one DescribeSecret holds the label either way.
    pub async fn retire(&self, staged: &Staged) -> anyhow::Result<()> {
        let mut secret = staged.secret.clone();
        secret.remove(PREVIOUS);
        let version = self.write(&secret).await?;
        self.progress.line(format!(
            "secret {}: the old value retired (version {version})",
            self.secret
        ));
        self.label(&staged.version_id).await
    }
}

/// A non-empty string under `key`.
fn text(secret: &Map<String, Value>, key: &str) -> Option<String> {
    secret
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
