//! `tandem deploy` and `tandem destroy`: Tandem on AWS with one command each.
//!
//! deploy: build the Lambda zip, then (with the caller's AWS credentials) upload it to a code
//! bucket in each region, create or update the stacks in order — data in the primary region,
//! the region stack in both regions at once, the edge — upload the console with its content
//! types and cache policy, invalidate `/index.html` (and any other name builds reuse, such as
//! `boot.js`), and print the console URL with the admin token read from the runtime secret.
//! `--dry-run` prints that plan and calls no AWS API.
//!
//! destroy: the reverse. The data stack (global table and secret) is kept unless
//! `--delete-data`, because the table is the product's state; with it, deletion protection is
//! lifted replica by replica and the table is deleted after the stack (which retains it).

use crate::active::KVS_ARN_OUTPUT;
use crate::sdk::{self, Aws};
use crate::smoke;
use crate::stack::{self, Deployed, Progress, StackSpec};
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudformation::types::Capability;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::{Display, Write as _};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;
use tandem_shared::control::FUNCTION_TIMEOUT_S;
use tandem_shared::region::{DEFAULT_REGIONS, is_valid_region};

/// The templates, built into the binary so that `tandem` deploys from anywhere.
const BUILT_IN: [(&str, &str); 4] = [
    ("data.yaml", include_str!("../cloudformation/data.yaml")),
    ("region.yaml", include_str!("../cloudformation/region.yaml")),
    ("edge.yaml", include_str!("../cloudformation/edge.yaml")),
    (
        "watcher.yaml",
        include_str!("../cloudformation/watcher.yaml"),
    ),
];

/// A Lambda function deploy builds and uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// The regional API (`tandem-api`), in both regions.
    Api,
    /// The health watcher (`tandem-watcher`, with `--auto-failover`), in the secondary region.
    Watcher,
}

impl Function {
    /// The package and binary cargo lambda builds; also the folder of its zip's key.
    fn package_and_bin(self) -> (&'static str, &'static str) {
        match self {
            Function::Api => ("tandem-api", "tandem-api"),
            Function::Watcher => ("tandem-aws", "tandem-watcher"),
        }
    }

    fn bin(self) -> &'static str {
        self.package_and_bin().1
    }

    /// The regions (indexes, 0 = primary) whose code bucket gets this function's zip.
    fn regions(self) -> &'static [usize] {
        match self {
            Function::Api => &[0, 1],
            Function::Watcher => &[1],
        }
    }

    /// What cargo lambda is asked to build (the templates run arm64 on provided.al2023).
    /// `--package` keeps the features that only `tandem` needs (the SDK's SSO login, for one)
    /// out of the API function: with `--bin` alone, cargo resolves features for every default
    /// member.
    fn build_args(self) -> [&'static str; 11] {
        let (package, bin) = self.package_and_bin();
        [
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
            "--package",
            package,
            "--bin",
            bin,
            "--lambda-dir",
        ]
    }

    /// Where `cargo lambda build --lambda-dir target/lambda` puts the zip.
    fn zip_in_workspace(self) -> String {
        format!("target/lambda/{}/bootstrap.zip", self.bin())
    }
}

/// The longest probe interval the watcher's stack takes (its `ProbeIntervalMs` MaxValue):
/// an invocation of at most 55 s must hold at least two rounds.
pub const WATCHER_MAX_PROBE_INTERVAL_MS: u64 = 20_000;
const LAMBDA_TARGET: &str = "aarch64-unknown-linux-gnu";
/// The executable the provided.al2023 runtime starts: it must sit at the zip's root.
const BOOTSTRAP: &str = "bootstrap";

/// `Cache-Control` of files whose name every build reuses (`index.html`, the console's
/// `boot.js`, a favicon): browsers revalidate each time (a cheap 304 when unchanged), so a
/// deploy shows at once. CloudFront may still hold its copy (CachingOptimized caches at least
/// its 1 s minimum TTL whatever the origin says, and a copy fetched before the deploy for up
/// to its one-day default): the invalidation clears those.
pub const NO_CACHE: &str = "no-cache";
/// `Cache-Control` of files with a content hash in their name (trunk's `name-<hash>.js`,
/// `name-<hash>_bg.wasm`): a new build gets new names, so a copy never goes stale.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Every console route is served from this file (the SPA fallback function).
pub const INDEX: &str = "/index.html";
/// Beyond this many reused names, one `/*` wildcard is invalidated instead (CloudFront bills a
/// wildcard as one path; the first 1,000 paths a month are free).
const MAX_INVALIDATION_PATHS: usize = 15;

/// The names deploy gives by default (the table, secret and function are named after
/// `--prefix`; these are the names for the default prefix). The templates declare the same
/// defaults, so that a stack created by hand (infra/aws/cloudformation/README.md) matches one
/// `tandem deploy` made.
pub const DEFAULT_PREFIX: &str = "tandem";
pub const DEFAULT_TABLE_NAME: &str = "tandem-items";
pub const DEFAULT_SECRET_NAME: &str = "tandem/secrets";
/// `--regions`' default in the flag's own syntax, from the regions the local stack runs too.
static DEFAULT_REGIONS_ARG: LazyLock<String> = LazyLock::new(|| DEFAULT_REGIONS.join(","));

/// The edge stack's outputs that deploy reads: where the console goes, what to invalidate, and
/// the domain of the URL it prints. Also the active region's store (SPEC §6,
/// [`KVS_ARN_OUTPUT`]), which deploy only reports: `tandem failover`/`failback` write it.
const CONSOLE_BUCKET: &str = "ConsoleBucketName";
pub(crate) const DISTRIBUTION_ID: &str = "DistributionId";
pub(crate) const DISTRIBUTION_DOMAIN: &str = "DistributionDomainName";

/// The edge stack's name for `--prefix` (`tandem failover` looks the store up there too).
pub fn edge_stack_name(prefix: &str) -> String {
    format!("{prefix}-edge")
}

/// Names and regions shared by deploy and destroy.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The two regions, primary first.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_REGIONS_ARG.as_str())]
    pub regions: Vec<String>,
    /// Stacks are <prefix>-data, <prefix>-region, <prefix>-edge, <prefix>-watcher; code
    /// buckets <prefix>-code-<account>-<region>; the function <prefix>-api. 1-30 characters.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Name of the DynamoDB global table [default: <prefix>-items].
    #[arg(long)]
    pub table_name: Option<String>,
    /// Name of the Secrets Manager secret holding admin_token and origin_secret
    /// [default: <prefix>/secrets].
    #[arg(long)]
    pub secret_name: Option<String>,
}

/// Longest `--prefix`: the code bucket `<prefix>-code-<12-digit account>-<region>` must fit
/// S3's 63 characters with the longest region names (14).
pub const MAX_PREFIX_LEN: usize = 30;

/// `--prefix` names S3 buckets, functions and CloudFront resources: lowercase letters, digits
/// and '-', starting with a letter, at most [`MAX_PREFIX_LEN`].
fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase())
        || !prefix.chars().all(allowed)
        || prefix.ends_with('-')
        || prefix.len() > MAX_PREFIX_LEN
    {
        bail!(
            "--prefix {prefix:?}: 1-{MAX_PREFIX_LEN} lowercase letters, digits and '-', starting \
             with a letter and not ending with '-' (it names S3 buckets and functions)"
        );
    }
    Ok(())
}

impl StackArgs {
    pub fn check(&self) -> anyhow::Result<(String, String)> {
        let [primary, secondary] = self.regions.as_slice() else {
            bail!(
                "--regions needs exactly two regions, primary first (got {})",
                self.regions.join(",")
            );
        };
        if primary == secondary {
            bail!("--regions: the primary and secondary regions must differ");
        }
        for r in [primary, secondary] {
            if !is_valid_region(r) {
                bail!("--regions: {r:?} is not an AWS region name (like us-east-1)");
            }
        }
        check_prefix(&self.prefix)?;
        Ok((primary.clone(), secondary.clone()))
    }

    /// The global table: `--table-name`, or named after the prefix.
    pub fn table(&self) -> String {
        self.table_name
            .clone()
            .unwrap_or_else(|| format!("{}-items", self.prefix))
    }

    /// The runtime secret: `--secret-name`, or named after the prefix.
    pub fn secret(&self) -> String {
        self.secret_name
            .clone()
            .unwrap_or_else(|| format!("{}/secrets", self.prefix))
    }

    /// The API function in each region (its log groups and alarms are named after it).
    pub fn function(&self) -> String {
        format!("{}-api", self.prefix)
    }

    pub fn stack(&self, role: Role) -> String {
        match role {
            Role::Data => format!("{}-data", self.prefix),
            Role::Region(_) => format!("{}-region", self.prefix),
            Role::Edge => edge_stack_name(&self.prefix),
            Role::Watcher => format!("{}-watcher", self.prefix),
        }
    }

    fn code_bucket(&self, account: &str, region: &str) -> String {
        format!("{}-code-{account}-{region}", self.prefix)
    }
}

/// `tandem deploy` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Print the plan (stacks, regions, parameters, files to upload) and stop: nothing is
    /// built and no AWS API is called.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy this zip (an executable named bootstrap at its root) instead of building one
    /// with `cargo lambda build`.
    #[arg(long)]
    pub lambda_zip: Option<PathBuf>,
    /// The built console to upload (must hold index.html).
    #[arg(long, default_value = "frontend/dist")]
    pub console_dir: PathBuf,
    /// Read data.yaml, region.yaml and edge.yaml from this directory instead of the copies
    /// built into tandem.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Origins allowed to call the API from other web apps (the region stacks' CorsOrigins).
    #[arg(long, value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// The bad day: update only this region's stack and code (one of --regions), calling no
    /// AWS API in any other region (no STS, no data or edge stack, no console upload); the
    /// table and secret are found by their names. Run a full deploy once the other region is
    /// back.
    #[arg(long, conflicts_with = "auto_failover")]
    pub only_region: Option<String>,
    #[command(flatten)]
    pub ops: OpsArgs,
    #[command(flatten)]
    pub smoke: SmokeArgs,
    #[command(flatten)]
    pub watcher: WatcherDeployArgs,
}

/// Alarms, logs, throttling, a custom domain and WAF: template parameters, set on every deploy
/// (deploy is declarative: a flag left out gets the template's default).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Operations")]
pub struct OpsArgs {
    /// SNS topics the alarms notify, one per region (CloudWatch notifies a topic in the
    /// alarm's own region): each stack gets the one in its region; without one, its alarms
    /// exist with no action.
    #[arg(long, value_delimiter = ',')]
    pub alarm_topic_arn: Vec<String>,
    /// The function's log level (Lambda's ApplicationLogLevel; logs are JSON).
    #[arg(long, value_parser = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])]
    pub log_level: Option<String>,
    /// API Gateway stage throttle, requests per second per region. Its 429 is not failed over
    /// by CloudFront, and it applies before origin cloaking (see the README).
    #[arg(long)]
    pub throttle_rate: Option<u32>,
    /// API Gateway stage burst, requests per region.
    #[arg(long)]
    pub throttle_burst: Option<u32>,
    /// A custom domain for the distribution (you add its DNS record), with --certificate-arn.
    #[arg(long, requires = "certificate_arn")]
    pub domain_name: Option<String>,
    /// An ACM certificate in us-east-1 covering --domain-name.
    #[arg(long, requires = "domain_name")]
    pub certificate_arn: Option<String>,
    /// Create an AWS WAF web ACL on the distribution with a rate rule for /api/admin/*
    /// (the edge stack must be in us-east-1).
    #[arg(long)]
    pub waf: bool,
    /// Requests per 5 minutes per IP to /api/admin/* before WAF blocks (with --waf).
    #[arg(long, requires = "waf")]
    pub admin_rate_limit: Option<u32>,
    /// CloudFront's additional metrics (origin latency; billed per distribution) and their
    /// alarm.
    #[arg(long)]
    pub cloudfront_additional_metrics: bool,
}

impl OpsArgs {
    /// The topic of `--alarm-topic-arn` in `region`, if one is.
    fn topic_for(&self, region: &str) -> Option<String> {
        self.alarm_topic_arn
            .iter()
            .find(|arn| sns_region(arn) == Some(region))
            .cloned()
    }

    /// Every topic is an SNS topic in one of the deployment's regions.
    fn check(&self, regions: [&str; 2]) -> anyhow::Result<()> {
        for arn in &self.alarm_topic_arn {
            match sns_region(arn) {
                Some(region) if regions.contains(&region) => {}
                _ => bail!(
                    "--alarm-topic-arn {arn}: not an SNS topic ARN in {} or {}",
                    regions[0],
                    regions[1]
                ),
            }
        }
        Ok(())
    }
}

/// The region of an SNS topic ARN (`arn:<partition>:sns:<region>:<account>:<name>`).
fn sns_region(arn: &str) -> Option<&str> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "sns", region, account, name]
            if !region.is_empty() && account.len() == 12 && !name.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// The checks deploy runs through the distribution at the end (`tandem status` runs them too).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Smoke checks")]
pub struct SmokeArgs {
    /// Check through this URL instead of https://<distribution domain> (a custom domain).
    #[arg(long)]
    pub smoke_endpoint: Option<String>,
    /// Seconds to keep retrying failed checks (a new distribution takes minutes everywhere).
    #[arg(long, default_value_t = 300)]
    pub smoke_wait: u64,
    /// Who carries /api/* (edge.yaml ApiFailoverMode) [default: unchanged; function when
    /// created].
    #[arg(long, value_enum)]
    pub api_failover_mode: Option<crate::smoke::Mode>,
    /// If /api/* fails the checks while both regions pass, switch it to the static origin
    /// group (ApiFailoverMode=origin-group) and check again.
    #[arg(long)]
    pub fallback_origin_group: bool,
}

/// `tandem deploy --auto-failover`: the health watcher as a Lambda function in the secondary
/// region (stack <prefix>-watcher, watcher.yaml), switching the active region on its own.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Automatic failover (SPEC §6)")]
pub struct WatcherDeployArgs {
    /// Deploy (or update) the health watcher, run every minute in the secondary region.
    #[arg(long)]
    pub auto_failover: bool,
    /// The watcher's zip (the tandem-watcher binary named bootstrap at its root) instead of
    /// building it; required with --auto-failover and --lambda-zip.
    #[arg(long, requires = "auto_failover")]
    pub watcher_zip: Option<PathBuf>,
    #[command(flatten)]
    pub rule: tandem_local::watcher::WatchArgs,
}

/// `tandem destroy` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Also delete the data stack and the global table with every item in it (deletion
    /// protection is turned off first), and the secret.
    #[arg(long)]
    pub delete_data: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print what would be deleted and stop: no AWS API is called.
    #[arg(long)]
    pub dry_run: bool,
}

/// A stack's place in the deploy order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Data,
    /// Index into the regions (0 = primary).
    Region(usize),
    Edge,
    /// The health watcher, in the secondary region (with `--auto-failover`).
    Watcher,
}

/// A template, its source, and what deploy needs to know about it.
#[derive(Debug, Clone)]
pub struct Template {
    pub file: &'static str,
    pub source: String,
    pub body: String,
    pub parameters: BTreeSet<String>,
    /// Each parameter's `Default`, as text (what a kept parameter starts from).
    pub defaults: BTreeMap<String, String>,
    pub outputs: BTreeSet<String>,
    pub resources: u64,
    /// Creates IAM resources, so CloudFormation wants CAPABILITY_IAM.
    pub iam: bool,
}

impl Template {
    fn parse(file: &'static str, source: String, body: String) -> anyhow::Result<Template> {
        let yaml: serde_norway::Value = serde_norway::from_str(&body)
            .with_context(|| format!("{source} is not a YAML template"))?;
        let keys = |section: &str| -> BTreeSet<String> {
            yaml.get(section)
                .and_then(|v| v.as_mapping())
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let resources = yaml
            .get("Resources")
            .and_then(|v| v.as_mapping())
            .ok_or_else(|| anyhow!("{source} has no Resources"))?;
        let defaults = yaml
            .get("Parameters")
            .and_then(|v| v.as_mapping())
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let default = match v.get("Default")? {
                    serde_norway::Value::String(s) => s.clone(),
                    serde_norway::Value::Number(n) => n.to_string(),
                    serde_norway::Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.as_str()?.to_owned(), default))
            })
            .collect();
        let iam = resources.values().any(|r| {
            r.get("Type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("AWS::IAM::"))
        });
        Ok(Template {
            file,
            parameters: keys("Parameters"),
            defaults,
            outputs: keys("Outputs"),
            resources: resources.len() as u64,
            iam,
            source,
            body,
        })
    }

    fn load(file: &'static str, dir: Option<&Path>) -> anyhow::Result<Template> {
        match dir {
            Some(dir) => {
                let path = dir.join(file);
                let body = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Template::parse(file, path.display().to_string(), body)
            }
            None => {
                let body = BUILT_IN
                    .iter()
                    .find(|(name, _)| *name == file)
                    .map(|(_, body)| (*body).to_owned())
                    .ok_or_else(|| anyhow!("no built-in template {file}"))?;
                Template::parse(
                    file,
                    format!("infra/aws/cloudformation/{file} (built into tandem)"),
                    body,
                )
            }
        }
    }
}

/// A parameter's value: known now, or known once an earlier step has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// An output of an earlier stack.
    Output(Role, &'static str),
    /// `https://` and an output of an earlier stack.
    Https(Role, &'static str),
    /// The code bucket of region `n` (named after the account).
    CodeBucket(usize),
    /// A function zip's key (named after its hash).
    CodeKey(Function),
    /// What the stack has now (set by another command: `tandem rotate-secret`, or
    /// `--fallback-origin-group`); the template's default when the stack is created.
    Keep,
}

impl Value {
    fn text(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

/// One stack of the plan.
#[derive(Debug, Clone)]
pub struct StackPlan {
    pub role: Role,
    pub name: String,
    pub region: String,
    pub parameters: Vec<(String, Value)>,
}

/// One console file to upload.
#[derive(Debug, Clone)]
pub struct ConsoleFile {
    pub path: PathBuf,
    pub key: String,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub size: u64,
}

/// Where a Lambda zip comes from.
#[derive(Debug, Clone)]
pub enum Zip {
    /// Built by cargo lambda in this workspace.
    Build { workspace: PathBuf },
    /// Given with `--lambda-zip`; its key is known already.
    Given { path: PathBuf, key: String },
}

impl Zip {
    /// The given zip, read and checked now (so that `--dry-run` catches a bad one), or the
    /// build in the checkout around the current directory.
    fn locate(function: Function, given: Option<&Path>) -> anyhow::Result<Zip> {
        match given {
            Some(path) => Ok(Zip::Given {
                path: path.to_owned(),
                key: code_key(function, &read_zip(path)?),
            }),
            None => Ok(Zip::Build {
                workspace: current_workspace(function)?,
            }),
        }
    }

    /// The zip's key, when it is known before anything is built.
    fn known_key(&self) -> Option<&str> {
        match self {
            Zip::Given { key, .. } => Some(key),
            Zip::Build { .. } => None,
        }
    }

    /// The zip itself: read again when given (it is uploaded as it is now), built otherwise.
    async fn bytes(&self, function: Function, progress: &Progress) -> anyhow::Result<Vec<u8>> {
        let path = match self {
            Zip::Given { path, .. } => path.clone(),
            Zip::Build { workspace } => build_zip(function, workspace, progress).await?,
        };
        read_zip(&path)
    }
}

/// Everything deploy will do, computed without AWS.
#[derive(Debug, Clone)]
pub struct Plan {
    pub args: StackArgs,
    pub regions: [String; 2],
    pub templates: BTreeMap<&'static str, Template>,
    pub stacks: Vec<StackPlan>,
    /// The functions' zips: the API's, and the watcher's with `--auto-failover`.
    pub code: BTreeMap<Function, Zip>,
    /// The health watcher's rule, with `--auto-failover`.
    pub watcher: Option<tandem_local::watcher::WatchArgs>,
    pub console_dir: PathBuf,
    pub console: Vec<ConsoleFile>,
    pub smoke: SmokeArgs,
    /// `--only-region`: the index of the one region deployed.
    pub only: Option<usize>,
}

/// The S3 key of a function's zip: its content hash, so that a new build is a new key (which is what makes
/// CloudFormation update the function) and an unchanged build uploads and changes nothing.
pub fn code_key(function: Function, zip: &[u8]) -> String {
    let digest = sha2::Sha256::digest(zip);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{hex}.zip", function.bin())
}

/// Refuses anything that is not a zip with a `bootstrap` entry at its root: Lambda would only
/// fail later, at the first request, with `Runtime.InvalidEntrypoint`.
pub fn check_zip(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Only the central directory is read, so any compression method will do: nothing is
    // inflated.
    let Ok(archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        bail!("{} is not a zip file", path.display());
    };
    if archive.index_for_name(BOOTSTRAP).is_none() {
        bail!(
            "{} has no entry named {BOOTSTRAP} (the provided.al2023 runtime runs ./{BOOTSTRAP})",
            path.display()
        );
    }
    Ok(())
}

/// Reads a function zip and checks it ([`check_zip`]).
fn read_zip(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_zip(path, &bytes)?;
    Ok(bytes)
}

/// The `Content-Type` S3 will serve a console file with (CloudFront passes it on; wasm must be
/// `application/wasm` for `WebAssembly.instantiateStreaming`).
pub fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash the way trunk writes it: `<name>-<hex>` before
/// the extension, optionally followed by `_bg` (the wasm-bindgen module).
pub fn is_hashed(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() >= 8 && hash.len() <= 64 && hash.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// The `Cache-Control` of a console file.
pub fn cache_control(key: &str) -> &'static str {
    if is_hashed(key) && !content_type(key).starts_with("text/html") {
        IMMUTABLE
    } else {
        NO_CACHE
    }
}

/// The paths to invalidate after an upload: every file whose name builds reuse, `/index.html`
/// first (it is always there: [`console_files`] insists).
pub fn invalidation_paths(files: &[ConsoleFile]) -> Vec<String> {
    let mut paths: Vec<String> = files
        .iter()
        .filter(|f| f.cache_control == NO_CACHE)
        .map(|f| format!("/{}", f.key))
        .collect();
    paths.sort_by_key(|p| (p != INDEX, p.clone()));
    if paths.len() > MAX_INVALIDATION_PATHS {
        return vec!["/*".to_owned()];
    }
    paths
}

/// Every file under `dir`, sorted by key. Fails unless there is an `index.html`.
/// The `.br`/`.gz` copies `cargo xtask` writes for the local edge: CloudFront compresses on
/// its own, so they are not uploaded.
fn is_precompressed(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "br" || x == "gz")
}

pub fn console_files(dir: &Path) -> anyhow::Result<Vec<ConsoleFile>> {
    if !dir.join("index.html").is_file() {
        bail!(
            "{} has no index.html: build the console first (`cargo xtask dev` builds it; or \
             `trunk build --release=true frontend/index.html --dist frontend/dist`), or pass \
             --console-dir",
            dir.display()
        );
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && !is_precompressed(&path) {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(ConsoleFile {
                    content_type: content_type(&key),
                    cache_control: cache_control(&key),
                    size: entry.metadata()?.len(),
                    path,
                    key,
                });
            }
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

/// The Tandem checkout containing `start`: the directory holding `Cargo.toml` and `api/`.
fn workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("api/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The checkout around the current directory: cargo lambda builds the function there.
fn current_workspace(function: Function) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    let flag = match function {
        Function::Api => "--lambda-zip",
        Function::Watcher => "--watcher-zip",
    };
    workspace_root(&cwd).ok_or_else(|| {
        anyhow!(
            "{} is not inside the Tandem checkout, so there is nothing to build: \
             run tandem deploy from the checkout, or pass {flag}",
            cwd.display()
        )
    })
}

/// The zips to deploy, each given (`--lambda-zip`, `--watcher-zip`) or built in the checkout.
fn locate_code(args: &DeployArgs) -> anyhow::Result<BTreeMap<Function, Zip>> {
    let api = Zip::locate(Function::Api, args.lambda_zip.as_deref())?;
    let mut code = BTreeMap::from([(Function::Api, api)]);
    let watcher = &args.watcher;
    if watcher.auto_failover {
        let interval = watcher.rule.probe_interval_ms;
        if interval > WATCHER_MAX_PROBE_INTERVAL_MS {
            bail!(
                "--probe-interval-ms {interval}: the watcher on AWS takes at most \
                 {WATCHER_MAX_PROBE_INTERVAL_MS} (each run lasts under a minute)"
            );
        }
        let zip = Zip::locate(Function::Watcher, watcher.watcher_zip.as_deref())?;
        code.insert(Function::Watcher, zip);
    }
    Ok(code)
}

/// `--only-region` as an index into the regions.
fn only_region(args: &DeployArgs, regions: [&String; 2]) -> anyhow::Result<Option<usize>> {
    let Some(only) = &args.only_region else {
        return Ok(None);
    };
    match regions.iter().position(|r| *r == only) {
        Some(i) => Ok(Some(i)),
        None => bail!(
            "--only-region {only} is not one of --regions {}",
            args.stacks.regions.join(",")
        ),
    }
}

/// The templates the plan uses (watcher.yaml only with `--auto-failover`): from `dir`, or the
/// copies built into tandem.
fn load_templates(
    dir: Option<&Path>,
    watcher: bool,
) -> anyhow::Result<BTreeMap<&'static str, Template>> {
    BUILT_IN
        .iter()
        .filter(|(file, _)| watcher || *file != "watcher.yaml")
        .map(|(file, _)| Ok((*file, Template::load(file, dir)?)))
        .collect()
}

/// The number of resources in a built-in template: the length of its progress bar.
pub(crate) fn built_in_resources(file: &'static str) -> anyhow::Result<u64> {
    Ok(Template::load(file, None)?.resources)
}

/// The stacks in deploy order, with their parameters. Some parameters are outputs of an
/// earlier stack: named here, resolved once that stack has run.
fn stack_plans(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<StackPlan> {
    let names = &args.stacks;
    let stack = |role: Role, region: &str, parameters| StackPlan {
        role,
        name: names.stack(role),
        region: region.to_owned(),
        parameters,
    };
    let mut stacks = vec![
        stack(
            Role::Data,
            primary,
            data_parameters(names, primary, secondary),
        ),
        stack(
            Role::Region(0),
            primary,
            region_parameters(args, 0, secondary),
        ),
        stack(
            Role::Region(1),
            secondary,
            region_parameters(args, 1, primary),
        ),
        // The edge reads the secret's origin_secret through a dynamic reference, which
        // resolves in the stack's own region: the primary, where the secret lives.
        stack(
            Role::Edge,
            primary,
            edge_parameters(args, primary, secondary),
        ),
    ];
    // The watcher needs the edge's store and domain, so it comes last; it runs where it is
    // needed when the primary is down.
    if args.watcher.auto_failover {
        let parameters = watcher_parameters(args, primary, secondary);
        stacks.push(stack(Role::Watcher, secondary, parameters));
    }
    stacks
}

/// Parameters set only when their flag is; left out, the template's default applies.
fn given<const N: usize>(
    pairs: [(&str, Option<String>); N],
) -> impl Iterator<Item = (String, Value)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), Value::Text(v?))))
}

fn parameters<const N: usize>(pairs: [(&str, Value); N]) -> Vec<(String, Value)> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// data.yaml: the global table's two regions, and the names of the table and the secret.
fn data_parameters(names: &StackArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    parameters([
        ("PrimaryRegion", Value::text(primary)),
        ("SecondaryRegion", Value::text(secondary)),
        ("TableName", Value::Text(names.table())),
        ("SecretName", Value::Text(names.secret())),
    ])
}

/// region.yaml: the table and the secret as the data stack named them, the code in this
/// region's bucket (Lambda reads code only from its own region), the function's name after
/// the prefix, and its timeout from the edge's origin read timeout.
fn region_parameters(args: &DeployArgs, index: usize, peer: &str) -> Vec<(String, Value)> {
    let mut parameters = parameters([
        ("TableName", Value::Output(Role::Data, "TableName")),
        ("SecretName", Value::Output(Role::Data, "SecretName")),
        ("CodeBucket", Value::CodeBucket(index)),
        ("CodeKey", Value::CodeKey(Function::Api)),
        ("FunctionName", Value::Text(args.stacks.function())),
        (
            "TimeoutSeconds",
            Value::Text(FUNCTION_TIMEOUT_S.to_string()),
        ),
        ("PeerRegion", Value::Text(peer.to_owned())),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(&args.stacks.regions[index])),
        ("LogLevel", ops.log_level.clone()),
        (
            "ThrottlingRateLimit",
            ops.throttle_rate.map(|n| n.to_string()),
        ),
        (
            "ThrottlingBurstLimit",
            ops.throttle_burst.map(|n| n.to_string()),
        ),
    ];
    parameters.extend(given(optional));
    let cors_origins = &args.cors_origins;
    // Without the flag, the template's default (no other web app may call the API) applies.
    if !cors_origins.is_empty() {
        parameters.push((
            "CorsOrigins".to_owned(),
            Value::text(&cors_origins.join(",")),
        ));
    }
    parameters
}

/// edge.yaml: both regions' API domains, primary first, and the secret holding
/// origin_secret; the functions and the table for the dashboard; the operations flags. The
/// secret version and the `/api/*` mode stay as other commands set them.
fn edge_parameters(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    let mut parameters = parameters([
        ("PrimaryRegion", Value::text(primary)),
        ("SecondaryRegion", Value::text(secondary)),
        (
            "PrimaryApiDomain",
            Value::Output(Role::Region(0), "ApiDomainName"),
        ),
        (
            "SecondaryApiDomain",
            Value::Output(Role::Region(1), "ApiDomainName"),
        ),
        ("SecretName", Value::Output(Role::Data, "SecretName")),
        (
            "PrimaryFunctionName",
            Value::Output(Role::Region(0), "FunctionName"),
        ),
        (
            "SecondaryFunctionName",
            Value::Output(Role::Region(1), "FunctionName"),
        ),
        ("TableName", Value::Output(Role::Data, "TableName")),
        (crate::rotate::VERSION_PARAMETER, Value::Keep),
        (
            crate::smoke::MODE_PARAMETER,
            args.smoke
                .api_failover_mode
                .map_or(Value::Keep, |m| Value::text(m.as_str())),
        ),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(primary)),
        ("DomainName", ops.domain_name.clone()),
        ("CertificateArn", ops.certificate_arn.clone()),
        ("WebAcl", ops.waf.then(|| "create".to_owned())),
        (
            "AdminRateLimit",
            ops.admin_rate_limit.map(|n| n.to_string()),
        ),
        (
            "AdditionalMetrics",
            ops.cloudfront_additional_metrics.then(|| "true".to_owned()),
        ),
    ];
    parameters.extend(given(optional));
    parameters
}

/// watcher.yaml: what to probe, the store to switch, the rule, the code in the secondary
/// region's bucket, and its alarms' topic and log level.
fn watcher_parameters(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    let names = &args.stacks;
    let rule = &args.watcher.rule;
    let mut parameters = parameters([
        ("FunctionName", Value::Text(names.stack(Role::Watcher))),
        ("CodeBucket", Value::CodeBucket(1)),
        ("CodeKey", Value::CodeKey(Function::Watcher)),
        ("Endpoint", Value::Https(Role::Edge, DISTRIBUTION_DOMAIN)),
        (
            "KeyValueStoreArn",
            Value::Output(Role::Edge, KVS_ARN_OUTPUT),
        ),
        ("Regions", Value::Text(format!("{primary},{secondary}"))),
        (
            "FailoverAfter",
            Value::Text(rule.failover_after.to_string()),
        ),
        (
            "ProbeIntervalMs",
            Value::Text(rule.probe_interval_ms.to_string()),
        ),
        ("AutoFailback", Value::Text(rule.auto_failback.to_string())),
        (
            "FailbackAfter",
            Value::Text(rule.failback_after.to_string()),
        ),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(secondary)),
        ("LogLevel", ops.log_level.clone()),
    ];
    parameters.extend(given(optional));
    parameters
}

impl Plan {
    /// The plan for `args`: reads the templates, lists the console files and hashes a given
    /// zip. Everything that can be checked without AWS is checked here, for `--dry-run` too.
    pub fn new(args: &DeployArgs) -> anyhow::Result<Plan> {
        let (primary, secondary) = args.stacks.check()?;
        args.ops.check([&primary, &secondary])?;
        let templates = load_templates(args.templates.as_deref(), args.watcher.auto_failover)?;
        let code = locate_code(args)?;
        let only = only_region(args, [&primary, &secondary])?;
        let mut stacks = stack_plans(args, &primary, &secondary);
        // One region alone reads nothing from the data stack: its names are known.
        let console = match only {
            None => console_files(&args.console_dir)?,
            Some(i) => {
                stacks.retain(|s| s.role == Role::Region(i));
                for (key, value) in &mut stacks[0].parameters {
                    match key.as_str() {
                        "TableName" => *value = Value::Text(args.stacks.table()),
                        "SecretName" => *value = Value::Text(args.stacks.secret()),
                        _ => {}
                    }
                }
                Vec::new()
            }
        };
        let plan = Plan {
            args: args.stacks.clone(),
            regions: [primary, secondary],
            templates,
            stacks,
            code,
            watcher: args.watcher.auto_failover.then_some(args.watcher.rule),
            console_dir: args.console_dir.clone(),
            console,
            smoke: args.smoke.clone(),
            only,
        };
        plan.check_templates()?;
        Ok(plan)
    }

    fn template(&self, role: Role) -> &Template {
        let file = match role {
            Role::Data => "data.yaml",
            Role::Region(_) => "region.yaml",
            Role::Edge => "edge.yaml",
            Role::Watcher => "watcher.yaml",
        };
        &self.templates[file]
    }

    /// Every parameter deploy passes must be declared, and every output it reads must exist:
    /// caught here rather than halfway through a deploy.
    fn check_templates(&self) -> anyhow::Result<()> {
        let mut read: Vec<(Role, &str)> = [
            CONSOLE_BUCKET,
            DISTRIBUTION_ID,
            DISTRIBUTION_DOMAIN,
            KVS_ARN_OUTPUT,
        ]
        .map(|output| (Role::Edge, output))
        .to_vec();
        for stack in &self.stacks {
            let template = self.template(stack.role);
            for (key, value) in &stack.parameters {
                if !template.parameters.contains(key) {
                    bail!(
                        "{} declares no parameter {key}, which deploy sets",
                        template.source
                    );
                }
                if let Value::Output(role, output) | Value::Https(role, output) = value {
                    read.push((*role, output));
                }
            }
        }
        for (role, output) in read {
            let template = self.template(role);
            if !template.outputs.contains(output) {
                bail!(
                    "{} has no output {output}, which deploy reads",
                    template.source
                );
            }
        }
        Ok(())
    }

    /// The regions (indexes) whose code bucket gets `function`'s zip: with `--only-region`,
    /// that region alone.
    fn code_regions(&self, function: Function) -> Vec<usize> {
        function
            .regions()
            .iter()
            .copied()
            .filter(|i| self.only.is_none_or(|only| only == *i))
            .collect()
    }

    fn stack(&self, role: Role) -> &StackPlan {
        self.stacks
            .iter()
            .find(|s| s.role == role)
            .expect("every role has a stack")
    }

    fn primary(&self) -> &str {
        &self.regions[0]
    }

    /// A value as the dry run shows it, or as deploy passes it once `account` and the zips'
    /// `keys` are known.
    fn describe_value(
        &self,
        value: &Value,
        account: Option<&str>,
        keys: &BTreeMap<Function, String>,
    ) -> String {
        match value {
            Value::Text(t) => t.clone(),
            Value::Output(role, output) => {
                let stack = self.stack(*role);
                format!("<output {output} of {} in {}>", stack.name, stack.region)
            }
            Value::Https(role, output) => {
                format!(
                    "https://{}",
                    self.describe_value(&Value::Output(*role, output), account, keys)
                )
            }
            Value::CodeBucket(i) => self
                .args
                .code_bucket(account.unwrap_or("<account-id>"), &self.regions[*i]),
            Value::CodeKey(function) => keys
                .get(function)
                .cloned()
                .unwrap_or_else(|| format!("{}/<sha256 of the built zip>.zip", function.bin())),
            Value::Keep => "<unchanged (the template's default on create)>".to_owned(),
        }
    }

    /// The keys of the zips that were given (built ones are known only after the build).
    fn known_keys(&self) -> BTreeMap<Function, String> {
        self.code
            .iter()
            .filter_map(|(f, zip)| Some((*f, zip.known_key()?.to_owned())))
            .collect()
    }

    /// The plan as text: what `--dry-run` prints.
    pub fn render(&self) -> String {
        let mut script = Script::default();
        self.render_intro(&mut script);
        self.render_code(&mut script);
        for stack in &self.stacks {
            self.render_stack(&mut script, stack);
        }
        if let Some(i) = self.only {
            self.render_only_region(&mut script, i);
            return script.text;
        }
        self.render_console(&mut script);
        self.render_invalidation_and_url(&mut script);
        script.text
    }

    /// What `--only-region` leaves out, and what it checks.
    fn render_only_region(&self, script: &mut Script, i: usize) {
        let region = &self.regions[i];
        let other = &self.regions[1 - i];
        script.line(format_args!(
            "\nOnly {region}: no AWS API is called in {other} (no STS, no data or edge stack, no console upload, no invalidation); the table and secret are found by their names."
        ));
        match &self.smoke.smoke_endpoint {
            Some(base) => script.step(format_args!(
                "Smoke check: GET {base}/region/{region}/api/health -> [200], from {region}."
            )),
            None => script.step(format_args!(
                "No smoke check (the distribution's domain is an output of the edge stack in {other}): pass --smoke-endpoint https://<distribution domain> to check /region/{region}/api/health."
            )),
        }
    }

    fn render_intro(&self, script: &mut Script) {
        let [primary, secondary] = &self.regions;
        script.line(
            "tandem deploy --dry-run: the plan. Nothing is built, uploaded or changed, and no AWS API is called.\n",
        );
        script.line(format_args!(
            "Regions: {primary} (primary), {secondary} (secondary). Account: the one your AWS credentials belong to.\n"
        ));
    }

    /// Where the function zip comes from, and where it goes.
    fn render_code(&self, script: &mut Script) {
        for (function, zip) in &self.code {
            self.render_function(script, *function, zip);
        }
    }

    /// Where one function's zip comes from, and where it goes.
    fn render_function(&self, script: &mut Script, function: Function, zip: &Zip) {
        let what = match function {
            Function::Api => "the function",
            Function::Watcher => "the health watcher's function",
        };
        match zip {
            Zip::Build { workspace } => {
                script.step(format_args!("Build {what} in {}:", workspace.display()));
                script.detail(format_args!(
                    "rustup target add {LAMBDA_TARGET}   (when missing)"
                ));
                let args = function.build_args().join(" ");
                script.detail(format_args!("cargo {args} target/lambda"));
                script.detail(format_args!("-> {}", function.zip_in_workspace()));
            }
            Zip::Given { path, key } => script.step(format_args!(
                "Use {what} zip {} (key {key}), no build.",
                path.display()
            )),
        }
        script.step(match function {
            Function::Api if self.only.is_some() => {
                "Upload it to that region's code bucket (created, private, when missing):"
            }
            Function::Api => "Upload it once per region (Lambda reads code from its own region; buckets are created, private, when missing):",
            Function::Watcher => "Upload it to the secondary region's bucket (the watcher runs there):",
        });
        let keys = self.known_keys();
        for i in self.code_regions(function) {
            script.detail(format_args!(
                "s3://{}/{}",
                self.describe_value(&Value::CodeBucket(i), None, &keys),
                self.describe_value(&Value::CodeKey(function), None, &keys)
            ));
        }
    }

    fn render_stack(&self, script: &mut Script, stack: &StackPlan) {
        let template = self.template(stack.role);
        let when = match stack.role {
            Role::Region(1) if self.only.is_none() => " (at the same time as the previous step)",
            _ => "",
        };
        script.step(format_args!(
            "Create or update stack {} in {}{when}:",
            stack.name, stack.region
        ));
        script.detail(format_args!(
            "template {}, {} resources{}",
            template.source,
            template.resources,
            if template.iam { ", CAPABILITY_IAM" } else { "" }
        ));
        let width = stack
            .parameters
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        for (key, value) in &stack.parameters {
            script.detail(format_args!(
                "{key:<width$} = {}",
                self.describe_value(value, None, &self.known_keys())
            ));
        }
        if stack.role == Role::Edge {
            script.detail(format_args!(
                "the active region (SPEC §6): CloudFront KeyValueStore {}, read by the /api/* router function; created empty (= the primary); deploy never changes its keys",
                self.describe_value(&Value::Output(Role::Edge, KVS_ARN_OUTPUT), None, &BTreeMap::new())
            ));
            script.detail(
                "`tandem failover --to <region>` / `tandem failback` write its key active_region",
            );
        }
        if stack.role == Role::Watcher {
            self.render_watcher(script);
        }
    }

    /// What the health watcher will do once deployed.
    fn render_watcher(&self, script: &mut Script) {
        let Some(watcher) = self.watcher else {
            return;
        };
        let [primary, secondary] = &self.regions;
        script.detail(format_args!(
            "the health watcher: runs every minute in {secondary}; every {} ms it probes /region/<r>/api/health through the distribution and switches active_region away from a region that failed {} probes in a row (~{:?})",
            watcher.probe_interval_ms,
            watcher.failover_after,
            watcher.window()
        ));
        match watcher.auto_failback {
            true => script.detail(format_args!(
                "back to {primary} after {} healthy probes in a row (--auto-failback)",
                watcher.failback_after
            )),
            false => script.detail(format_args!(
                "back to {primary} only when asked (`tandem failback`)"
            )),
        }
        script.detail(
            "alarms: the watcher failed to read or switch the store; the watcher has not run for 5 minutes",
        );
    }

    /// Every console file, with the headers it will be served with.
    fn render_console(&self, script: &mut Script) {
        script.step(format_args!(
            "Upload the console from {} to s3://{}:",
            self.console_dir.display(),
            self.describe_value(
                &Value::Output(Role::Edge, CONSOLE_BUCKET),
                None,
                &BTreeMap::new()
            )
        ));
        let width = self.console.iter().map(|f| f.key.len()).max().unwrap_or(0);
        let ct_width = self
            .console
            .iter()
            .map(|f| f.content_type.len())
            .max()
            .unwrap_or(0);
        for file in &self.console {
            script.detail(format_args!(
                "{:<width$}  {:<ct_width$}  {:<36}  {}",
                file.key,
                file.content_type,
                file.cache_control,
                human_size(file.size)
            ));
        }
    }

    fn render_invalidation_and_url(&self, script: &mut Script) {
        let edge_output =
            |key| self.describe_value(&Value::Output(Role::Edge, key), None, &BTreeMap::new());
        script.step(format_args!(
            "Invalidate {} on CloudFront distribution {}, and wait until it completes.",
            invalidation_paths(&self.console).join(" "),
            edge_output(DISTRIBUTION_ID)
        ));
        script.step(
            "Delete the console files the previous deploy left that this one does not have (only now: until the invalidation completed, a browser could be given the old index.html, which names them).",
        );
        self.render_smoke(
            script,
            &format!("https://{}", edge_output(DISTRIBUTION_DOMAIN)),
        );
        script.step(format_args!(
            "Print the console URL: https://{}/#token=<admin_token of secret {} in {}>",
            edge_output(DISTRIBUTION_DOMAIN),
            self.args.secret(),
            self.primary()
        ));
    }

    /// The smoke checks, as they will run (`tandem status` runs the same).
    fn render_smoke(&self, script: &mut Script, domain: &str) {
        let smoke = &self.smoke;
        let base = smoke.smoke_endpoint.as_deref().unwrap_or(domain);
        script.step(format_args!(
            "Smoke checks through {base}, retried for up to {} s until all pass (a new distribution takes minutes):",
            smoke.smoke_wait
        ));
        let mode = smoke.api_failover_mode.unwrap_or(smoke::Mode::Function);
        for check in smoke::checks(&self.regions, mode, "tandem-smoke-<random>") {
            let region = check
                .region
                .as_deref()
                .map(|r| format!(", from {r}"))
                .unwrap_or_default();
            script.detail(format_args!(
                "{:<24} {} {} -> {:?}{region}",
                check.name, check.method, check.path, check.expect
            ));
        }
        script.detail(match smoke.fallback_origin_group {
            true => "if /api/* fails while both regions pass: set ApiFailoverMode=origin-group on the edge stack, wait until deployed, check again (--fallback-origin-group)",
            false => "if /api/* fails while both regions pass: say so, and how to switch to the static origin group (--fallback-origin-group)",
        });
        script.detail("any check still failing: deploy exits with an error after its summary");
    }
}

/// The dry-run text being written: numbered steps, each with its details indented below it.
#[derive(Default)]
struct Script {
    text: String,
    steps: usize,
}

impl Script {
    fn line(&mut self, line: impl Display) {
        let _ = writeln!(self.text, "{line}");
    }

    fn step(&mut self, step: impl Display) {
        self.steps += 1;
        let _ = writeln!(self.text, "{}. {step}", self.steps);
    }

    fn detail(&mut self, detail: impl Display) {
        let _ = writeln!(self.text, "     {detail}");
    }
}

/// Adds the Lambda target and finds cargo-lambda, then builds the zip. Returns its path.
async fn build_zip(
    function: Function,
    workspace: &Path,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    add_lambda_target(progress).await?;
    let path = path_with_cargo_lambda(workspace)?;
    let lambda_dir = workspace.join("target/lambda");
    let args = function.build_args();
    progress.line(format!("cargo {} {}", args.join(" "), lambda_dir.display()));
    let status = tokio::process::Command::new("cargo")
        .args(args)
        .arg(&lambda_dir)
        .env("PATH", path)
        .current_dir(workspace)
        .status()
        .await
        .context("running cargo lambda build")?;
    if !status.success() {
        bail!("cargo lambda build failed ({status})");
    }
    Ok(workspace.join(function.zip_in_workspace()))
}

/// Adds the Lambda target to rustup when it is missing.
async fn add_lambda_target(progress: &Progress) -> anyhow::Result<()> {
    let installed = tokio::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .await;
    // No rustup (a distribution's Rust): cargo lambda will say what is missing.
    let Ok(installed) = installed else {
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == LAMBDA_TARGET)
    {
        return Ok(());
    }
    progress.line(format!("rustup target add {LAMBDA_TARGET}"));
    let status = tokio::process::Command::new("rustup")
        .args(["target", "add", LAMBDA_TARGET])
        .status()
        .await?;
    if !status.success() {
        bail!("rustup target add {LAMBDA_TARGET} failed");
    }
    Ok(())
}

/// `PATH` for cargo lambda: as it is when cargo-lambda is on it, or with the checkout's
/// `target/venv/bin` in front when cargo-lambda was pip-installed there (`cargo xtask test`
/// does not install it; `pip install cargo-lambda` into that venv does).
fn path_with_cargo_lambda(workspace: &Path) -> anyhow::Result<OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join("cargo-lambda").is_file()) {
        return Ok(path);
    }
    let venv = workspace.join("target/venv/bin");
    if !venv.join("cargo-lambda").is_file() {
        bail!("cargo-lambda is not installed: `pip install cargo-lambda` (it bundles zig)");
    }
    let dirs = std::iter::once(venv).chain(std::env::split_paths(&path));
    Ok(std::env::join_paths(dirs)?)
}

/// What the steps so far produced, for the parameters of the later ones.
struct Context {
    account: String,
    /// Each function's zip key.
    code_keys: BTreeMap<Function, String>,
    outputs: BTreeMap<Role, BTreeMap<String, String>>,
    /// What deploy did to each stack, in deploy order: the summary lists them.
    deployed: Vec<(Role, stack::Outcome)>,
}

impl Context {
    fn record(&mut self, role: Role, deployed: Deployed) {
        self.deployed.push((role, deployed.outcome));
        self.outputs.insert(role, deployed.outputs);
    }
}

impl Plan {
    fn resolve(&self, value: &Value, ctx: &Context) -> anyhow::Result<String> {
        Ok(match value {
            Value::Output(role, key) => {
                let stack = self.stack(*role);
                ctx.outputs
                    .get(role)
                    .and_then(|o| o.get(*key))
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!(
                            "stack {} in {} has no output {key}",
                            stack.name,
                            stack.region
                        )
                    })?
            }
            Value::Https(role, key) => {
                format!("https://{}", self.resolve(&Value::Output(*role, key), ctx)?)
            }
            other => self.describe_value(other, Some(&ctx.account), &ctx.code_keys),
        })
    }

    fn spec(&self, role: Role, ctx: &Context) -> anyhow::Result<StackSpec> {
        let stack = self.stack(role);
        let template = self.template(role);
        Ok(StackSpec {
            name: stack.name.clone(),
            region: stack.region.clone(),
            template: template.body.clone(),
            resources: template.resources,
            parameters: stack
                .parameters
                .iter()
                .filter(|(_, v)| *v != Value::Keep)
                .map(|(k, v)| Ok((k.clone(), self.resolve(v, ctx)?)))
                .collect::<anyhow::Result<_>>()?,
            keep: stack
                .parameters
                .iter()
                .filter(|(_, v)| *v == Value::Keep)
                .map(|(k, _)| {
                    (
                        k.clone(),
                        template.defaults.get(k).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
            capabilities: if template.iam {
                vec![Capability::CapabilityIam]
            } else {
                Vec::new()
            },
        })
    }
}

/// `tandem deploy`.
pub async fn run(args: DeployArgs) -> anyhow::Result<()> {
    let plan = Plan::new(&args)?;
    if args.dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    let progress = Progress::default();
    // The slow local part first: a failing build must not leave half-updated stacks.
    let mut zips = BTreeMap::new();
    for (function, zip) in &plan.code {
        zips.insert(*function, zip.bytes(*function, &progress).await?);
    }
    let mut deployment = Deployment::start(&plan, &zips, progress).await?;
    deployment.upload_code(&zips).await?;
    if let Some(i) = plan.only {
        return deployment.only_region(i).await;
    }
    deployment.deploy_stacks().await?;
    let edge = deployment.edge_outputs()?;
    deployment.upload_console(&edge.bucket).await?;
    // A browser may hold an old index.html until the invalidation completes, and that page
    // names the previous build's files: they go only after it.
    deployment.invalidate(&edge.distribution).await?;
    let stale = deployment.delete_stale(&edge.bucket).await?;
    let smoke = deployment.smoke(&edge, &args.smoke).await?;
    let token = deployment.admin_token().await?;
    deployment.print_summary(&edge, stale, &token);
    match smoke {
        None => Ok(()),
        Some(advice) => bail!("deployed, but the smoke checks failed. {advice}"),
    }
}

/// A deploy under way: the plan, the AWS clients, and what the steps so far produced.
struct Deployment<'p> {
    plan: &'p Plan,
    aws: Aws,
    progress: Progress,
    ctx: Context,
}

/// The edge stack's outputs that the last steps use.
struct EdgeOutputs {
    bucket: String,
    distribution: String,
    domain: String,
    kvs_arn: String,
}

impl<'p> Deployment<'p> {
    /// Loads the AWS configuration and finds the account, which names the code buckets.
    async fn start(
        plan: &'p Plan,
        zips: &BTreeMap<Function, Vec<u8>>,
        progress: Progress,
    ) -> anyhow::Result<Deployment<'p>> {
        let aws = Aws::load().await;
        let [primary, secondary] = &plan.regions;
        // STS in the region being deployed: with --only-region, the other may be down.
        let account = aws
            .account_id(&plan.regions[plan.only.unwrap_or(0)])
            .await?;
        progress.line(format!(
            "account {account}; regions {primary} (primary) and {secondary}"
        ));
        Ok(Deployment {
            plan,
            aws,
            progress,
            ctx: Context {
                account,
                code_keys: zips
                    .iter()
                    .map(|(f, zip)| (*f, code_key(*f, zip)))
                    .collect(),
                outputs: BTreeMap::new(),
                deployed: Vec::new(),
            },
        })
    }

    /// Uploads each zip to the code bucket of each region that runs it, creating the bucket
    /// the first time.
    async fn upload_code(&self, zips: &BTreeMap<Function, Vec<u8>>) -> anyhow::Result<()> {
        for (function, zip) in zips {
            for i in self.plan.code_regions(*function) {
                self.upload_zip(i, &self.ctx.code_keys[function], zip)
                    .await?;
            }
        }
        Ok(())
    }

    async fn upload_zip(&self, index: usize, key: &str, zip: &[u8]) -> anyhow::Result<()> {
        let region = &self.plan.regions[index];
        let s3 = self.aws.s3(region);
        let bucket = self.plan.describe_value(
            &Value::CodeBucket(index),
            Some(&self.ctx.account),
            &self.ctx.code_keys,
        );
        if sdk::ensure_bucket(&s3, &bucket, region).await? {
            self.progress
                .line(format!("created code bucket {bucket} in {region}"));
        }
        let uploaded = sdk::upload_once(&s3, &bucket, key, zip.to_vec()).await?;
        let what = if uploaded {
            "uploaded"
        } else {
            "already there"
        };
        self.progress.line(format!("s3://{bucket}/{key}: {what}"));
        Ok(())
    }

    /// The stacks in order, each one's outputs recorded for the parameters of the next.
    async fn deploy_stacks(&mut self) -> anyhow::Result<()> {
        let data = self.plan.spec(Role::Data, &self.ctx)?;
        let data = self.deploy_stack(&data).await?;
        self.ctx.record(Role::Data, data);

        // The two regions do not depend on each other: deploy them at once.
        let primary = self.plan.spec(Role::Region(0), &self.ctx)?;
        let secondary = self.plan.spec(Role::Region(1), &self.ctx)?;
        let (primary, secondary) =
            tokio::try_join!(self.deploy_stack(&primary), self.deploy_stack(&secondary))?;
        self.ctx.record(Role::Region(0), primary);
        self.ctx.record(Role::Region(1), secondary);

        let edge = self.plan.spec(Role::Edge, &self.ctx)?;
        let edge = self.deploy_stack(&edge).await?;
        self.ctx.record(Role::Edge, edge);

        if self.plan.watcher.is_some() {
            let watcher = self.plan.spec(Role::Watcher, &self.ctx)?;
            let watcher = self.deploy_stack(&watcher).await?;
            self.ctx.record(Role::Watcher, watcher);
        }
        Ok(())
    }

    /// `--only-region`: the one region stack, and its health through `--smoke-endpoint`.
    async fn only_region(&mut self, i: usize) -> anyhow::Result<()> {
        let role = Role::Region(i);
        let spec = self.plan.spec(role, &self.ctx)?;
        let deployed = self.deploy_stack(&spec).await?;
        let outcome = deployed.outcome;
        self.ctx.record(role, deployed);
        let region = &self.plan.regions[i];
        println!(
            "\nDeployed only {} ({region}): {}. Nothing in {} was called; run a full `tandem deploy` once it is back.",
            spec.name,
            outcome.as_str(),
            self.plan.regions[1 - i]
        );
        let Some(base) = &self.plan.smoke.smoke_endpoint else {
            return Ok(());
        };
        let checks = smoke::checks(&self.plan.regions, smoke::Mode::Function, "unused")
            .into_iter()
            .filter(|c| c.route == smoke::Route::Region(i))
            .collect();
        let report = smoke::run(base.trim_end_matches('/'), checks).await;
        print!("\n{}", report.table());
        match report.verdict() {
            smoke::Verdict::Passed => Ok(()),
            _ => bail!("{region} does not answer its health check through {base}"),
        }
    }

    async fn deploy_stack(&self, spec: &StackSpec) -> anyhow::Result<Deployed> {
        let cfn = self.aws.cloudformation(&spec.region);
        stack::deploy(&cfn, spec, &self.progress).await
    }

    fn edge_outputs(&self) -> anyhow::Result<EdgeOutputs> {
        let output = |key| {
            self.plan
                .resolve(&Value::Output(Role::Edge, key), &self.ctx)
        };
        Ok(EdgeOutputs {
            bucket: output(CONSOLE_BUCKET)?,
            distribution: output(DISTRIBUTION_ID)?,
            domain: output(DISTRIBUTION_DOMAIN)?,
            kvs_arn: output(KVS_ARN_OUTPUT)?,
        })
    }

    /// Uploads the console.
    async fn upload_console(&self, bucket: &str) -> anyhow::Result<()> {
        let s3 = self.aws.s3(self.plan.primary());
        for file in upload_order(&self.plan.console) {
            let body = std::fs::read(&file.path)
                .with_context(|| format!("reading {}", file.path.display()))?;
            sdk::put_file(
                &s3,
                bucket,
                &file.key,
                body,
                file.content_type,
                file.cache_control,
            )
            .await?;
            self.progress.line(format!(
                "s3://{bucket}/{}  {}  {}",
                file.key, file.content_type, file.cache_control
            ));
        }
        Ok(())
    }

    /// Deletes what the new console no longer has; returns how many files went.
    async fn delete_stale(&self, bucket: &str) -> anyhow::Result<usize> {
        let s3 = &self.aws.s3(self.plan.primary());
        let keep: BTreeSet<&str> = self.plan.console.iter().map(|f| f.key.as_str()).collect();
        let stale: Vec<String> = sdk::list_keys(s3, bucket)
            .await?
            .into_iter()
            .filter(|k| !keep.contains(k.as_str()))
            .collect();
        if !stale.is_empty() {
            sdk::delete_keys(s3, bucket, &stale).await?;
            self.progress.line(format!(
                "deleted {} files the new console no longer has",
                stale.len()
            ));
        }
        Ok(stale.len())
    }

    /// Invalidates the names builds reuse, which CloudFront may still hold old copies of, and
    /// waits until the invalidation has completed.
    async fn invalidate(&self, distribution: &str) -> anyhow::Result<()> {
        let paths = invalidation_paths(&self.plan.console);
        let cloudfront = self.aws.cloudfront();
        let id = sdk::invalidate(&cloudfront, distribution, &paths).await?;
        self.progress.line(format!(
            "invalidation {id} of {} on distribution {distribution}: waiting until it completes",
            paths.join(" ")
        ));
        sdk::wait_invalidation(&cloudfront, distribution, &id).await?;
        self.progress.line(format!("invalidation {id}: completed"));
        Ok(())
    }

    /// The smoke checks through the distribution, with the switch to the origin group when
    /// asked and only the function route fails. `Some(advice)` when they failed in the end.
    async fn smoke(&self, edge: &EdgeOutputs, args: &SmokeArgs) -> anyhow::Result<Option<String>> {
        let base = args
            .smoke_endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{}", edge.domain));
        let mode = self.api_mode().await?;
        let wait = Duration::from_secs(args.smoke_wait);
        let regions = &self.plan.regions;
        let report = smoke::until_passed(&base, regions, mode, wait, &self.progress).await;
        print!("\n{}", report.table());
        if mode == smoke::Mode::OriginGroup {
            println!("\n{}", smoke::ORIGIN_GROUP_WARNING);
        }
        let verdict = report.verdict();
        if verdict != smoke::Verdict::ApiRouteBroken
            || mode != smoke::Mode::Function
            || !args.fallback_origin_group
        {
            return Ok(smoke::advice(verdict, mode));
        }
        self.progress.line(
            "/api/* fails while both regions answer: switching it to the static origin group (--fallback-origin-group)",
        );
        let cfn = self.aws.cloudformation(self.plan.primary());
        let group = smoke::Mode::OriginGroup;
        let edge_stack = self.plan.stack(Role::Edge);
        stack::update_parameters(
            &cfn,
            &edge_stack.name,
            &edge_stack.region,
            self.plan.template(Role::Edge).resources,
            &[(smoke::MODE_PARAMETER, group.as_str())],
            &self.progress,
        )
        .await?;
        sdk::wait_deployed(&self.aws.cloudfront(), &edge.distribution).await?;
        let report = smoke::until_passed(&base, regions, group, wait, &self.progress).await;
        print!("\n{}", report.table());
        println!("\n{}", smoke::ORIGIN_GROUP_WARNING);
        Ok(smoke::advice(report.verdict(), group))
    }

    /// Who carries `/api/*` now: the edge stack's parameter as deployed.
    async fn api_mode(&self) -> anyhow::Result<smoke::Mode> {
        let edge = self.plan.stack(Role::Edge);
        let stack = stack::describe(&self.aws.cloudformation(&edge.region), &edge.name).await?;
        Ok(stack
            .as_ref()
            .and_then(|s| {
                s.parameters()
                    .iter()
                    .find(|p| p.parameter_key() == Some(smoke::MODE_PARAMETER))
            })
            .and_then(|p| smoke::Mode::parse(p.parameter_value()?))
            .unwrap_or(smoke::Mode::Function))
    }

    /// The admin token, read from the runtime secret the data stack made.
    async fn admin_token(&self) -> anyhow::Result<String> {
        let secret = self
            .plan
            .resolve(&Value::Output(Role::Data, "SecretName"), &self.ctx)?;
        let primary = self.plan.primary();
        self.aws
            .admin_token(primary, &secret)
            .await
            .with_context(|| format!("reading the admin token from secret {secret} in {primary}"))
    }

    fn print_summary(&self, edge: &EdgeOutputs, stale: usize, token: &str) {
        println!("\nDeployed:");
        for (role, outcome) in &self.ctx.deployed {
            let stack = self.plan.stack(*role);
            println!(
                "  {:<28} {}",
                format!("{} ({})", stack.name, stack.region),
                outcome.as_str()
            );
        }
        let EdgeOutputs {
            bucket,
            domain,
            kvs_arn,
            ..
        } = edge;
        println!(
            "  console: {} files in s3://{bucket}, {stale} stale removed",
            self.plan.console.len(),
        );
        println!("  API: https://{domain}/api/health");
        println!(
            "  active region: key active_region of {kvs_arn} (`tandem failover --to <region>`, `tandem failback`)"
        );
        if let Some(rule) = &self.plan.watcher {
            let watcher = self.plan.stack(Role::Watcher);
            println!(
                "  health watcher: {} in {}, switching after ~{:?} of failed probes (logs: /aws/lambda/{})",
                watcher.name,
                watcher.region,
                rule.window(),
                watcher.name
            );
        }
        println!("\nConsole (the token after # never leaves your browser):");
        println!("https://{domain}/#token={token}");
    }
}

/// Hashed assets first and index.html last, so that no browser gets an index.html that names
/// files not uploaded yet.
fn upload_order(files: &[ConsoleFile]) -> Vec<&ConsoleFile> {
    let mut files: Vec<&ConsoleFile> = files.iter().collect();
    files.sort_by_key(|f| {
        (
            f.cache_control == NO_CACHE,
            format!("/{}", f.key) == INDEX,
            f.key.clone(),
        )
    });
    files
}

/// `tandem destroy`.
pub async fn destroy(args: DestroyArgs) -> anyhow::Result<()> {
    let (primary, secondary) = args.stacks.check()?;
    println!("tandem destroy will:");
    for (i, step) in destroy_steps(&args, &primary, &secondary)
        .iter()
        .enumerate()
    {
        println!("{}. {step}", i + 1);
    }
    if args.dry_run {
        println!("(dry run: nothing was deleted, no AWS API was called)");
        return Ok(());
    }
    if !args.yes {
        confirm()?;
    }
    let teardown = Teardown::start(&args.stacks, primary, secondary).await?;
    teardown.delete_watcher().await?;
    teardown.delete_edge().await?;
    teardown.delete_regions().await?;
    teardown.delete_code_buckets().await?;
    if args.delete_data {
        teardown.delete_data().await?;
        println!("\nDestroyed everything, data included.");
    } else {
        let s = &args.stacks;
        println!(
            "\nDestroyed everything but the data: {} keeps table {} and secret {}. \
             `tandem destroy --delete-data` deletes them too.",
            s.stack(Role::Data),
            s.table(),
            s.secret()
        );
    }
    Ok(())
}

/// What destroy will do, in order: the list it prints before asking.
fn destroy_steps(args: &DestroyArgs, primary: &str, secondary: &str) -> Vec<String> {
    let s = &args.stacks;
    let data = if args.delete_data {
        format!(
            "turn off deletion protection of table {} in {primary} and {secondary}, delete {} ({primary}; its secret {} goes with it), then delete the table and every item in it",
            s.table(),
            s.stack(Role::Data),
            s.secret()
        )
    } else {
        format!(
            "keep {} ({primary}): table {} with its items, secret {} (pass --delete-data to delete them)",
            s.stack(Role::Data),
            s.table(),
            s.secret()
        )
    };
    vec![
        format!(
            "delete {} in {secondary}, if there is one (the health watcher of `tandem deploy --auto-failover`)",
            s.stack(Role::Watcher)
        ),
        format!(
            "empty the console bucket of {} ({primary}), then delete that stack (CloudFront distribution, bucket, functions, the active region's key value store)",
            s.stack(Role::Edge)
        ),
        format!(
            "delete {} in {primary} and in {secondary} (functions, HTTP APIs, roles, log groups)",
            s.stack(Role::Region(0))
        ),
        format!(
            "empty and delete the code buckets {} and {}",
            s.code_bucket("<account-id>", primary),
            s.code_bucket("<account-id>", secondary)
        ),
        data,
    ]
}

/// Asks on the terminal. Without one, no one can answer: refuse rather than assume a yes.
fn confirm() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not a terminal, so no one can confirm: pass --yes");
    }
    print!("Proceed? [y/N] ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("cancelled");
    }
    Ok(())
}

/// A destroy under way: the names, the regions, the account and the AWS clients.
struct Teardown<'a> {
    names: &'a StackArgs,
    primary: String,
    secondary: String,
    account: String,
    aws: Aws,
    progress: Progress,
}

impl<'a> Teardown<'a> {
    /// Loads the AWS configuration and finds the account, which names the code buckets.
    async fn start(
        names: &'a StackArgs,
        primary: String,
        secondary: String,
    ) -> anyhow::Result<Teardown<'a>> {
        let aws = Aws::load().await;
        let account = aws.account_id(&primary).await?;
        Ok(Teardown {
            names,
            primary,
            secondary,
            account,
            aws,
            progress: Progress::default(),
        })
    }

    /// The edge, its console bucket emptied first: CloudFormation cannot delete a bucket that
    /// holds anything, old versions included.
    async fn delete_edge(&self) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.primary);
        let name = self.names.stack(Role::Edge);
        let bucket = stack::describe(&cfn, &name)
            .await?
            .and_then(|stack| stack::outputs(&stack).remove(CONSOLE_BUCKET));
        if let Some(bucket) = bucket {
            let s3 = self.aws.s3(&self.primary);
            if sdk::bucket_exists(&s3, &bucket).await? {
                let n = sdk::empty_bucket(&s3, &bucket).await?;
                self.progress
                    .line(format!("emptied s3://{bucket} ({n} object versions)"));
            }
        }
        let resources = built_in_resources("edge.yaml")?;
        stack::delete(&cfn, &name, &self.primary, resources, &self.progress).await?;
        Ok(())
    }

    /// The health watcher first: it must not switch the active region while the rest goes.
    async fn delete_watcher(&self) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.secondary);
        let name = self.names.stack(Role::Watcher);
        let resources = built_in_resources("watcher.yaml")?;
        stack::delete(&cfn, &name, &self.secondary, resources, &self.progress).await?;
        Ok(())
    }

    /// Both region stacks at once: neither depends on the other.
    async fn delete_regions(&self) -> anyhow::Result<()> {
        let name = self.names.stack(Role::Region(0));
        let resources = built_in_resources("region.yaml")?;
        let primary = self.aws.cloudformation(&self.primary);
        let secondary = self.aws.cloudformation(&self.secondary);
        let progress = &self.progress;
        tokio::try_join!(
            stack::delete(&primary, &name, &self.primary, resources, progress),
            stack::delete(&secondary, &name, &self.secondary, resources, progress),
        )?;
        Ok(())
    }

    async fn delete_code_buckets(&self) -> anyhow::Result<()> {
        for region in [&self.primary, &self.secondary] {
            let bucket = self.names.code_bucket(&self.account, region);
            if sdk::delete_bucket(&self.aws.s3(region), &bucket).await? {
                self.progress.line(format!("deleted code bucket {bucket}"));
            }
        }
        Ok(())
    }

    /// The data stack and the global table, which the stack retains. DynamoDB refuses to delete
    /// a protected replica, so the protection goes first, in each region.
    async fn delete_data(&self) -> anyhow::Result<()> {
        let table = &self.names.table();
        for region in [&self.primary, &self.secondary] {
            if sdk::unprotect_table(&self.aws, region, table).await? {
                self.progress.line(format!(
                    "turned off deletion protection of {table} in {region}"
                ));
            }
        }
        let cfn = self.aws.cloudformation(&self.primary);
        let name = self.names.stack(Role::Data);
        let resources = built_in_resources("data.yaml")?;
        stack::delete(&cfn, &name, &self.primary, resources, &self.progress).await?;
        let deleted = sdk::delete_table(&self.aws, &self.primary, table).await?;
        for region in &deleted.replicas_removed {
            self.progress
                .line(format!("removed the {region} replica of {table}"));
        }
        if deleted.deleted {
            self.progress
                .line(format!("deleted table {table} in {}", self.primary));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_prefix_fits_every_name_it_makes() {
        for good in ["tandem", "a", "blue-2", &"a".repeat(MAX_PREFIX_LEN)] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "x-",
            "Tandem",
            "t_a",
            "9lives",
            &"a".repeat(MAX_PREFIX_LEN + 1),
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        // The longest code bucket name still fits S3's 63 characters.
        let args = StackArgs {
            regions: vec!["ap-southeast-3".into(), "us-east-1".into()],
            prefix: "a".repeat(MAX_PREFIX_LEN),
            table_name: None,
            secret_name: None,
        };
        assert!(args.code_bucket("123456789012", "ap-southeast-3").len() <= 63);
    }

    #[test]
    fn each_region_gets_the_alarm_topic_in_that_region() {
        let ops = OpsArgs {
            alarm_topic_arn: vec![
                "arn:aws:sns:us-east-1:123456789012:ops".into(),
                "arn:aws:sns:us-west-2:123456789012:ops-west".into(),
            ],
            ..OpsArgs::default()
        };
        assert!(ops.check(["us-east-1", "us-west-2"]).is_ok());
        assert_eq!(
            ops.topic_for("us-west-2").unwrap(),
            "arn:aws:sns:us-west-2:123456789012:ops-west"
        );
        assert_eq!(ops.topic_for("eu-west-1"), None);
        assert!(
            ops.check(["us-east-1", "eu-west-1"]).is_err(),
            "a topic in no deployed region"
        );
        let wrong = OpsArgs {
            alarm_topic_arn: vec!["arn:aws:sqs:us-east-1:123456789012:q".into()],
            ..OpsArgs::default()
        };
        assert!(wrong.check(["us-east-1", "us-west-2"]).is_err(), "not SNS");
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_function_zip_needs_bootstrap_at_its_root() {
        let path = Path::new("fn.zip");
        let refused = |bytes: &[u8]| check_zip(path, bytes).unwrap_err().to_string();

        check_zip(path, &zip_of(&[(BOOTSTRAP, b"#!/bin/sh\n")])).unwrap();
        check_zip(path, &zip_of(&[("README", b""), (BOOTSTRAP, b"")])).unwrap();

        let missing = "fn.zip has no entry named bootstrap";
        assert!(refused(&zip_of(&[("dir/bootstrap", b"")])).contains(missing));
        // The name in a file's content, or in an entry's, is not an entry of that name.
        assert!(refused(&zip_of(&[("main", b"bootstrap")])).contains(missing));
        assert!(refused(&zip_of(&[("bootstrap.sh", b"")])).contains(missing));

        assert_eq!(refused(b"#!/bin/sh\n"), "fn.zip is not a zip file");
        assert_eq!(refused(b"PK\x03\x04bootstrap"), "fn.zip is not a zip file");
    }
}
