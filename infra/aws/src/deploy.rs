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

use crate::sdk::{self, Aws};
use crate::stack::{self, Deployed, Outcome, Progress, StackSpec};
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudformation::types::Capability;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

/// The templates, built into the binary so that `tandem` deploys from anywhere.
const BUILT_IN: [(&str, &str); 3] = [
    ("data.yaml", include_str!("../cloudformation/data.yaml")),
    ("region.yaml", include_str!("../cloudformation/region.yaml")),
    ("edge.yaml", include_str!("../cloudformation/edge.yaml")),
];

/// The Lambda's binary and where `cargo lambda build --lambda-dir target/lambda` puts its zip.
const FUNCTION_BIN: &str = "tandem-api";
const ZIP_IN_WORKSPACE: &str = "target/lambda/tandem-api/bootstrap.zip";
/// What cargo lambda is asked to build (the region template runs arm64 on provided.al2023).
/// `--package` keeps the features that only `tandem` needs (the SDK's SSO login, for one) out
/// of the function: with `--bin` alone, cargo resolves features for every default member.
const BUILD_ARGS: [&str; 11] = [
    "lambda",
    "build",
    "--release",
    "--arm64",
    "--output-format",
    "zip",
    "--package",
    FUNCTION_BIN,
    "--bin",
    FUNCTION_BIN,
    "--lambda-dir",
];
const LAMBDA_TARGET: &str = "aarch64-unknown-linux-gnu";

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

/// Names and regions shared by deploy and destroy.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The two regions, primary first.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,us-west-2")]
    pub regions: Vec<String>,
    /// Stacks are <prefix>-data, <prefix>-region, <prefix>-edge; code buckets
    /// <prefix>-code-<account>-<region>.
    #[arg(long, default_value = "tandem")]
    pub prefix: String,
    /// Name of the DynamoDB global table.
    #[arg(long, default_value = "tandem-items")]
    pub table_name: String,
    /// Name of the Secrets Manager secret holding admin_token and origin_secret.
    #[arg(long, default_value = "tandem/secrets")]
    pub secret_name: String,
}

impl StackArgs {
    fn check(&self) -> anyhow::Result<(String, String)> {
        let [primary, secondary] = self.regions.as_slice() else {
            bail!(
                "--regions needs exactly two regions, primary first (got {})",
                self.regions.join(",")
            );
        };
        if primary == secondary {
            bail!("--regions: the primary and secondary regions must differ");
        }
        let valid = |r: &str| {
            !r.is_empty()
                && r.split('-').count() >= 3
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        for r in [primary, secondary] {
            if !valid(r) {
                bail!("--regions: {r:?} is not an AWS region name (like us-east-1)");
            }
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            bail!("--prefix must be lowercase letters, digits and '-' (it names S3 buckets)");
        }
        Ok((primary.clone(), secondary.clone()))
    }

    fn stack(&self, role: Role) -> String {
        match role {
            Role::Data => format!("{}-data", self.prefix),
            Role::Region(_) => format!("{}-region", self.prefix),
            Role::Edge => format!("{}-edge", self.prefix),
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
}

/// A template, its source, and what deploy needs to know about it.
#[derive(Debug, Clone)]
pub struct Template {
    pub file: &'static str,
    pub source: String,
    pub body: String,
    pub parameters: BTreeSet<String>,
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
        let iam = resources.values().any(|r| {
            r.get("Type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("AWS::IAM::"))
        });
        Ok(Template {
            file,
            parameters: keys("Parameters"),
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
    /// The code bucket of region `n` (named after the account).
    CodeBucket(usize),
    /// The zip's key (named after its hash).
    CodeKey,
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

/// Where the Lambda zip comes from.
#[derive(Debug, Clone)]
pub enum Zip {
    /// Built by cargo lambda in this workspace.
    Build { workspace: PathBuf },
    /// Given with `--lambda-zip`; its key is known already.
    Given { path: PathBuf, key: String },
}

/// Everything deploy will do, computed without AWS.
#[derive(Debug, Clone)]
pub struct Plan {
    pub args: StackArgs,
    pub regions: [String; 2],
    pub templates: BTreeMap<&'static str, Template>,
    pub stacks: Vec<StackPlan>,
    pub zip: Zip,
    pub console_dir: PathBuf,
    pub console: Vec<ConsoleFile>,
}

/// The S3 key of a zip: its content hash, so that a new build is a new key (which is what makes
/// CloudFormation update the function) and an unchanged build uploads and changes nothing.
pub fn code_key(zip: &[u8]) -> String {
    let digest = sha2::Sha256::digest(zip);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{FUNCTION_BIN}/{hex}.zip")
}

/// Refuses anything that is not a zip with a `bootstrap` entry: Lambda would only fail later,
/// at the first request, with `Runtime.InvalidEntrypoint`.
pub fn check_zip(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if !bytes.starts_with(b"PK\x03\x04") {
        bail!("{} is not a zip file", path.display());
    }
    if !bytes.windows(b"bootstrap".len()).any(|w| w == b"bootstrap") {
        bail!(
            "{} has no entry named bootstrap (the provided.al2023 runtime runs ./bootstrap)",
            path.display()
        );
    }
    Ok(())
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
            } else if kind.is_file() {
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

impl Plan {
    /// The plan for `args`: reads the templates, lists the console files and hashes a given
    /// zip. Everything that can be checked without AWS is checked here, for `--dry-run` too.
    pub fn new(args: &DeployArgs) -> anyhow::Result<Plan> {
        let (primary, secondary) = args.stacks.check()?;
        let mut templates = BTreeMap::new();
        for (file, _) in BUILT_IN {
            templates.insert(file, Template::load(file, args.templates.as_deref())?);
        }
        let zip = match &args.lambda_zip {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                check_zip(path, &bytes)?;
                Zip::Given {
                    path: path.clone(),
                    key: code_key(&bytes),
                }
            }
            None => {
                let cwd = std::env::current_dir()?;
                let workspace = workspace_root(&cwd).ok_or_else(|| {
                    anyhow!(
                        "{} is not inside the Tandem checkout, so there is nothing to build: \
                         run tandem deploy from the checkout, or pass --lambda-zip",
                        cwd.display()
                    )
                })?;
                Zip::Build { workspace }
            }
        };
        let console = console_files(&args.console_dir)?;

        let text = |s: &str| Value::Text(s.to_owned());
        let region_params = |index: usize| {
            let mut p = vec![
                (
                    "TableName".to_owned(),
                    Value::Output(Role::Data, "TableName"),
                ),
                (
                    "SecretName".to_owned(),
                    Value::Output(Role::Data, "SecretName"),
                ),
                ("CodeBucket".to_owned(), Value::CodeBucket(index)),
                ("CodeKey".to_owned(), Value::CodeKey),
            ];
            if !args.cors_origins.is_empty() {
                p.push(("CorsOrigins".to_owned(), text(&args.cors_origins.join(","))));
            }
            p
        };
        let stacks = vec![
            StackPlan {
                role: Role::Data,
                name: args.stacks.stack(Role::Data),
                region: primary.clone(),
                parameters: vec![
                    ("PrimaryRegion".to_owned(), text(&primary)),
                    ("SecondaryRegion".to_owned(), text(&secondary)),
                    ("TableName".to_owned(), text(&args.stacks.table_name)),
                    ("SecretName".to_owned(), text(&args.stacks.secret_name)),
                ],
            },
            StackPlan {
                role: Role::Region(0),
                name: args.stacks.stack(Role::Region(0)),
                region: primary.clone(),
                parameters: region_params(0),
            },
            StackPlan {
                role: Role::Region(1),
                name: args.stacks.stack(Role::Region(1)),
                region: secondary.clone(),
                parameters: region_params(1),
            },
            // The edge reads the secret's origin_secret through a dynamic reference, which
            // resolves in the stack's own region: the primary, where the secret lives.
            StackPlan {
                role: Role::Edge,
                name: args.stacks.stack(Role::Edge),
                region: primary.clone(),
                parameters: vec![
                    ("PrimaryRegion".to_owned(), text(&primary)),
                    ("SecondaryRegion".to_owned(), text(&secondary)),
                    (
                        "PrimaryApiDomain".to_owned(),
                        Value::Output(Role::Region(0), "ApiDomainName"),
                    ),
                    (
                        "SecondaryApiDomain".to_owned(),
                        Value::Output(Role::Region(1), "ApiDomainName"),
                    ),
                    (
                        "SecretName".to_owned(),
                        Value::Output(Role::Data, "SecretName"),
                    ),
                ],
            },
        ];
        let plan = Plan {
            args: args.stacks.clone(),
            regions: [primary, secondary],
            templates,
            stacks,
            zip,
            console_dir: args.console_dir.clone(),
            console,
        };
        plan.check_templates()?;
        Ok(plan)
    }

    fn template(&self, role: Role) -> &Template {
        let file = match role {
            Role::Data => "data.yaml",
            Role::Region(_) => "region.yaml",
            Role::Edge => "edge.yaml",
        };
        &self.templates[file]
    }

    /// Every parameter deploy passes must be declared, and every output it reads must exist:
    /// caught here rather than halfway through a deploy.
    fn check_templates(&self) -> anyhow::Result<()> {
        let mut needed: Vec<(Role, &str)> = vec![
            (Role::Edge, "ConsoleBucketName"),
            (Role::Edge, "DistributionId"),
            (Role::Edge, "DistributionDomainName"),
        ];
        for stack in &self.stacks {
            let template = self.template(stack.role);
            for (key, value) in &stack.parameters {
                if !template.parameters.contains(key) {
                    bail!(
                        "{} declares no parameter {key}, which deploy sets",
                        template.source
                    );
                }
                if let Value::Output(role, output) = value {
                    needed.push((*role, output));
                }
            }
        }
        for (role, output) in needed {
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

    fn stack(&self, role: Role) -> &StackPlan {
        self.stacks
            .iter()
            .find(|s| s.role == role)
            .expect("every role has a stack")
    }

    fn describe_value(&self, value: &Value, account: Option<&str>, key: Option<&str>) -> String {
        match value {
            Value::Text(t) => t.clone(),
            Value::Output(role, output) => {
                let stack = self.stack(*role);
                format!("<output {output} of {} in {}>", stack.name, stack.region)
            }
            Value::CodeBucket(i) => self
                .args
                .code_bucket(account.unwrap_or("<account-id>"), &self.regions[*i]),
            Value::CodeKey => key
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{FUNCTION_BIN}/<sha256 of the built zip>.zip")),
        }
    }

    /// The plan as text: what `--dry-run` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let [primary, secondary] = &self.regions;
        let code_key = match &self.zip {
            Zip::Given { key, .. } => Some(key.as_str()),
            Zip::Build { .. } => None,
        };
        let _ = writeln!(
            out,
            "tandem deploy --dry-run: the plan. Nothing is built, uploaded or changed, and no AWS API is called.\n"
        );
        let _ = writeln!(
            out,
            "Regions: {primary} (primary), {secondary} (secondary). Account: the one your AWS credentials belong to.\n"
        );
        let mut step = 0;
        let mut next = || {
            step += 1;
            step
        };
        match &self.zip {
            Zip::Build { workspace } => {
                let _ = writeln!(
                    out,
                    "{}. Build the function in {}:",
                    next(),
                    workspace.display()
                );
                let _ = writeln!(
                    out,
                    "     rustup target add {LAMBDA_TARGET}   (when missing)\n     cargo {} target/lambda\n     -> {ZIP_IN_WORKSPACE}",
                    BUILD_ARGS.join(" ")
                );
            }
            Zip::Given { path, key } => {
                let _ = writeln!(
                    out,
                    "{}. Use the function zip {} (key {key}), no build.",
                    next(),
                    path.display()
                );
            }
        }
        let _ = writeln!(
            out,
            "{}. Upload it once per region (Lambda reads code from its own region; buckets are created, private, when missing):",
            next()
        );
        for i in 0..2 {
            let _ = writeln!(
                out,
                "     s3://{}/{}",
                self.describe_value(&Value::CodeBucket(i), None, None),
                self.describe_value(&Value::CodeKey, None, code_key)
            );
        }
        for stack in &self.stacks {
            let template = self.template(stack.role);
            let when = match stack.role {
                Role::Region(1) => " (at the same time as the previous step)",
                _ => "",
            };
            let _ = writeln!(
                out,
                "{}. Create or update stack {} in {}{when}:\n     template {}, {} resources{}",
                next(),
                stack.name,
                stack.region,
                template.source,
                template.resources,
                if template.iam { ", CAPABILITY_IAM" } else { "" }
            );
            let width = stack
                .parameters
                .iter()
                .map(|(k, _)| k.len())
                .max()
                .unwrap_or(0);
            for (key, value) in &stack.parameters {
                let _ = writeln!(
                    out,
                    "     {key:<width$} = {}",
                    self.describe_value(value, None, code_key)
                );
            }
        }
        let edge = self.stack(Role::Edge);
        let _ = writeln!(
            out,
            "{}. Upload the console from {} to s3://<output ConsoleBucketName of {} in {}>, then delete objects not listed here:",
            next(),
            self.console_dir.display(),
            edge.name,
            edge.region
        );
        let width = self.console.iter().map(|f| f.key.len()).max().unwrap_or(0);
        let ct_width = self
            .console
            .iter()
            .map(|f| f.content_type.len())
            .max()
            .unwrap_or(0);
        for file in &self.console {
            let _ = writeln!(
                out,
                "     {:<width$}  {:<ct_width$}  {:<36}  {}",
                file.key,
                file.content_type,
                file.cache_control,
                human_size(file.size)
            );
        }
        let _ = writeln!(
            out,
            "{}. Invalidate {} on CloudFront distribution <output DistributionId of {} in {}>.",
            next(),
            invalidation_paths(&self.console).join(" "),
            edge.name,
            edge.region
        );
        let _ = writeln!(
            out,
            "{}. Print the console URL: https://<output DistributionDomainName of {} in {}>/#token=<admin_token of secret {} in {}>",
            next(),
            edge.name,
            edge.region,
            self.args.secret_name,
            primary
        );
        out
    }
}

/// Adds the Lambda target and finds cargo-lambda (on PATH, or in the venv `cargo xtask test`
/// makes), then builds the zip. Returns its path.
async fn build_zip(workspace: &Path, progress: &Progress) -> anyhow::Result<PathBuf> {
    let installed = tokio::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .await;
    match installed {
        Ok(out)
            if !String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == LAMBDA_TARGET) =>
        {
            progress.line(format!("rustup target add {LAMBDA_TARGET}"));
            let status = tokio::process::Command::new("rustup")
                .args(["target", "add", LAMBDA_TARGET])
                .status()
                .await?;
            if !status.success() {
                bail!("rustup target add {LAMBDA_TARGET} failed");
            }
        }
        // No rustup (a distribution's Rust): cargo lambda will say what is missing.
        _ => {}
    }
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).any(|d| d.join("cargo-lambda").is_file());
    if !on_path {
        let venv = workspace.join("target/venv/bin");
        if venv.join("cargo-lambda").is_file() {
            let mut dirs = vec![venv];
            dirs.extend(std::env::split_paths(&path));
            path = std::env::join_paths(dirs)?;
        } else {
            bail!("cargo-lambda is not installed: `pip install cargo-lambda` (it bundles zig)");
        }
    }
    let lambda_dir = workspace.join("target/lambda");
    progress.line(format!(
        "cargo {} {}",
        BUILD_ARGS.join(" "),
        lambda_dir.display()
    ));
    let status = tokio::process::Command::new("cargo")
        .args(BUILD_ARGS)
        .arg(&lambda_dir)
        .env("PATH", path)
        .current_dir(workspace)
        .status()
        .await
        .context("running cargo lambda build")?;
    if !status.success() {
        bail!("cargo lambda build failed ({status})");
    }
    Ok(lambda_dir.join(FUNCTION_BIN).join("bootstrap.zip"))
}

/// What an earlier step produced, for the parameters of the later ones.
struct Context {
    account: String,
    code_key: String,
    outputs: BTreeMap<Role, BTreeMap<String, String>>,
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
            other => self.describe_value(other, Some(&ctx.account), Some(&ctx.code_key)),
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
                .map(|(k, v)| Ok((k.clone(), self.resolve(v, ctx)?)))
                .collect::<anyhow::Result<_>>()?,
            capabilities: if template.iam {
                vec![Capability::CapabilityIam]
            } else {
                Vec::new()
            },
        })
    }
}

fn outcome(d: &Deployed) -> &'static str {
    match d.outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
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
    let [primary, secondary] = plan.regions.clone();

    // The slow local part first: a failing build must not leave half-updated stacks.
    let zip_path = match &plan.zip {
        Zip::Given { path, .. } => path.clone(),
        Zip::Build { workspace } => build_zip(workspace, &progress).await?,
    };
    let zip =
        std::fs::read(&zip_path).with_context(|| format!("reading {}", zip_path.display()))?;
    check_zip(&zip_path, &zip)?;
    let code_key = code_key(&zip);

    let aws = Aws::load().await;
    let account = aws.account_id(&primary).await?;
    progress.line(format!(
        "account {account}; regions {primary} (primary) and {secondary}"
    ));
    let mut ctx = Context {
        account,
        code_key,
        outputs: BTreeMap::new(),
    };

    for (i, region) in plan.regions.iter().enumerate() {
        let s3 = aws.s3(region);
        let bucket = plan.describe_value(&Value::CodeBucket(i), Some(&ctx.account), None);
        if sdk::ensure_bucket(&s3, &bucket, region).await? {
            progress.line(format!("created code bucket {bucket} in {region}"));
        }
        let uploaded = sdk::upload_once(&s3, &bucket, &ctx.code_key, zip.clone()).await?;
        progress.line(format!(
            "s3://{bucket}/{}: {}",
            ctx.code_key,
            if uploaded {
                "uploaded"
            } else {
                "already there"
            }
        ));
    }

    let mut summary = Vec::new();
    let data = stack::deploy(
        &aws.cloudformation(&primary),
        &plan.spec(Role::Data, &ctx)?,
        &progress,
    )
    .await?;
    summary.push((plan.stack(Role::Data), outcome(&data)));
    ctx.outputs.insert(Role::Data, data.outputs);

    // The two regions do not depend on each other: deploy them at once.
    let east = plan.spec(Role::Region(0), &ctx)?;
    let west = plan.spec(Role::Region(1), &ctx)?;
    let (east_cfn, west_cfn) = (
        aws.cloudformation(&east.region),
        aws.cloudformation(&west.region),
    );
    let (r0, r1) = tokio::try_join!(
        stack::deploy(&east_cfn, &east, &progress),
        stack::deploy(&west_cfn, &west, &progress),
    )?;
    summary.push((plan.stack(Role::Region(0)), outcome(&r0)));
    summary.push((plan.stack(Role::Region(1)), outcome(&r1)));
    ctx.outputs.insert(Role::Region(0), r0.outputs);
    ctx.outputs.insert(Role::Region(1), r1.outputs);

    let edge = stack::deploy(
        &aws.cloudformation(&primary),
        &plan.spec(Role::Edge, &ctx)?,
        &progress,
    )
    .await?;
    summary.push((plan.stack(Role::Edge), outcome(&edge)));
    ctx.outputs.insert(Role::Edge, edge.outputs);
    let out = |key: &'static str| plan.resolve(&Value::Output(Role::Edge, key), &ctx);
    let bucket = out("ConsoleBucketName")?;
    let distribution = out("DistributionId")?;
    let domain = out("DistributionDomainName")?;

    // Console: hashed assets first and index.html last, so that no browser gets an index.html
    // that names files not uploaded yet; then what the new build no longer has.
    let s3 = aws.s3(&primary);
    let mut files: Vec<&ConsoleFile> = plan.console.iter().collect();
    files.sort_by_key(|f| {
        (
            f.cache_control == NO_CACHE,
            format!("/{}", f.key) == INDEX,
            f.key.clone(),
        )
    });
    for file in &files {
        let body = std::fs::read(&file.path)
            .with_context(|| format!("reading {}", file.path.display()))?;
        sdk::put_file(
            &s3,
            &bucket,
            &file.key,
            body,
            file.content_type,
            file.cache_control,
        )
        .await?;
        progress.line(format!(
            "s3://{bucket}/{}  {}  {}",
            file.key, file.content_type, file.cache_control
        ));
    }
    let keep: BTreeSet<&str> = plan.console.iter().map(|f| f.key.as_str()).collect();
    let stale: Vec<String> = sdk::list_keys(&s3, &bucket)
        .await?
        .into_iter()
        .filter(|k| !keep.contains(k.as_str()))
        .collect();
    if !stale.is_empty() {
        sdk::delete_keys(&s3, &bucket, &stale).await?;
        progress.line(format!(
            "deleted {} files the new console no longer has",
            stale.len()
        ));
    }

    let paths = invalidation_paths(&plan.console);
    let invalidation = aws
        .cloudfront()
        .create_invalidation()
        .distribution_id(&distribution)
        .invalidation_batch(
            aws_sdk_cloudfront::types::InvalidationBatch::builder()
                .paths(
                    aws_sdk_cloudfront::types::Paths::builder()
                        .quantity(paths.len() as i32)
                        .set_items(Some(paths.clone()))
                        .build()?,
                )
                .caller_reference(format!("tandem-deploy-{}", uuid::Uuid::new_v4()))
                .build()?,
        )
        .send()
        .await
        .map_err(sdk::sdk_error)
        .with_context(|| format!("invalidating {} on {distribution}", paths.join(" ")))?;
    let invalidation_id = invalidation
        .invalidation()
        .map(|i| i.id().to_owned())
        .unwrap_or_default();
    progress.line(format!(
        "invalidation {invalidation_id} of {} on distribution {distribution}",
        paths.join(" ")
    ));

    let secret = plan.resolve(&Value::Output(Role::Data, "SecretName"), &ctx)?;
    let token = aws
        .admin_token(&primary, &secret)
        .await
        .with_context(|| format!("reading the admin token from secret {secret} in {primary}"))?;

    println!("\nDeployed:");
    for (stack, what) in summary {
        println!(
            "  {:<28} {what}",
            format!("{} ({})", stack.name, stack.region)
        );
    }
    println!(
        "  console: {} files in s3://{bucket}, {} stale removed",
        plan.console.len(),
        stale.len()
    );
    println!("  API: https://{domain}/api/health");
    println!("\nConsole (the token after # never leaves your browser):");
    println!("https://{domain}/#token={token}");
    Ok(())
}

/// `tandem destroy`.
pub async fn destroy(args: DestroyArgs) -> anyhow::Result<()> {
    let (primary, secondary) = args.stacks.check()?;
    let s = &args.stacks;
    let mut plan = vec![
        format!(
            "empty the console bucket of {} ({primary}), then delete that stack (CloudFront distribution, bucket, functions)",
            s.stack(Role::Edge)
        ),
        format!(
            "delete {} in {primary} and in {secondary} (functions, HTTP APIs, roles, log groups)",
            s.stack(Role::Region(0))
        ),
        format!(
            "empty and delete the code buckets {} and {}",
            s.code_bucket("<account-id>", &primary),
            s.code_bucket("<account-id>", &secondary)
        ),
    ];
    if args.delete_data {
        plan.push(format!(
            "turn off deletion protection of table {} in {primary} and {secondary}, delete {} ({primary}; its secret {} goes with it), then delete the table and every item in it",
            s.table_name,
            s.stack(Role::Data),
            s.secret_name
        ));
    } else {
        plan.push(format!(
            "keep {} ({primary}): table {} with its items, secret {} (pass --delete-data to delete them)",
            s.stack(Role::Data),
            s.table_name,
            s.secret_name
        ));
    }
    println!("tandem destroy will:");
    for (i, step) in plan.iter().enumerate() {
        println!("{}. {step}", i + 1);
    }
    if args.dry_run {
        println!("(dry run: nothing was deleted, no AWS API was called)");
        return Ok(());
    }
    if !args.yes {
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
    }

    let progress = Progress::default();
    let aws = Aws::load().await;
    let account = aws.account_id(&primary).await?;
    let edge_templ = Template::load("edge.yaml", None)?.resources;
    let region_templ = Template::load("region.yaml", None)?.resources;
    let data_templ = Template::load("data.yaml", None)?.resources;

    // Edge: CloudFormation cannot delete a bucket that holds anything, old versions included.
    let cfn = aws.cloudformation(&primary);
    let edge_name = s.stack(Role::Edge);
    let edge_bucket = stack::describe(&cfn, &edge_name)
        .await?
        .and_then(|stack| stack::outputs(&stack).remove("ConsoleBucketName"));
    if let Some(bucket) = edge_bucket {
        let s3 = aws.s3(&primary);
        if sdk::bucket_exists(&s3, &bucket).await? {
            let n = sdk::empty_bucket(&s3, &bucket).await?;
            progress.line(format!("emptied s3://{bucket} ({n} object versions)"));
        }
    }
    stack::delete(&cfn, &edge_name, &primary, edge_templ, &progress).await?;

    let region_name = s.stack(Role::Region(0));
    let (east, west) = (aws.cloudformation(&primary), aws.cloudformation(&secondary));
    tokio::try_join!(
        stack::delete(&east, &region_name, &primary, region_templ, &progress),
        stack::delete(&west, &region_name, &secondary, region_templ, &progress),
    )?;

    for region in [&primary, &secondary] {
        let bucket = s.code_bucket(&account, region);
        if sdk::delete_bucket(&aws.s3(region), &bucket).await? {
            progress.line(format!("deleted code bucket {bucket}"));
        }
    }

    if args.delete_data {
        for region in [&primary, &secondary] {
            if sdk::unprotect_table(&aws, region, &s.table_name).await? {
                progress.line(format!(
                    "turned off deletion protection of {} in {region}",
                    s.table_name
                ));
            }
        }
        stack::delete(&cfn, &s.stack(Role::Data), &primary, data_templ, &progress).await?;
        let deleted = sdk::delete_table(&aws, &primary, &s.table_name).await?;
        for region in &deleted.replicas_removed {
            progress.line(format!("removed the {region} replica of {}", s.table_name));
        }
        if deleted.deleted {
            progress.line(format!("deleted table {} in {primary}", s.table_name));
        }
        println!("\nDestroyed everything, data included.");
    } else {
        println!(
            "\nDestroyed everything but the data: {} keeps table {} and secret {}. \
             `tandem destroy --delete-data` deletes them too.",
            s.stack(Role::Data),
            s.table_name,
            s.secret_name
        );
    }
    Ok(())
}
