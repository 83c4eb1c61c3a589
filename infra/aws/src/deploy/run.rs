//! `tandem deploy` itself: build or read the zips, then, with the caller's credentials, upload
//! them, deploy the stacks in order (each one's outputs feeding the next one's parameters),
//! upload the console, invalidate, delete what the old console left, run the smoke checks and
//! the failover drill ([`crate::prove`]) and print the console's URL.

use super::args::{DeployArgs, SmokeArgs};
use super::console::{invalidation_paths, upload_order};
use super::lambda::{Function, code_key};
use super::plan::{Plan, Value};
use crate::active::Store;
use crate::names::{
    CONSISTENCY_PARAMETER, CONSOLE_BUCKET, DISTRIBUTION_DOMAIN, DISTRIBUTION_ID, KVS_ARN_OUTPUT,
    MODE_PARAMETER, Role,
};
use crate::prove::Drill;
use crate::sdk::{self, Aws};
use crate::smoke;
use crate::stack::{self, Deployed, Progress, StackSpec};
use crate::switch::Keeper;
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudformation::types::Capability;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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
    // Before any change: a watcher stack the account cannot hold must not fail last.
    deployment
        .check_watcher_concurrency(args.watcher.reserve_watcher_concurrency)
        .await?;
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
    let proved = deployment
        .prove(&edge, &args.smoke, smoke.is_none(), &token)
        .await?;
    deployment.print_summary(&edge, stale, &token);
    match (smoke, proved) {
        (None, true) => Ok(()),
        (Some(advice), _) => bail!("deployed, but the smoke checks failed. {advice}"),
        (None, false) => bail!(
            "deployed, and the smoke checks passed, but the failover drill failed: see its table \
             (`tandem status --prove` runs it again; --no-prove skips it)"
        ),
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

    /// With the watcher: reads the account's Lambda limits where it runs, says what they are
    /// and what the watcher reserves, and stops if `reserve` asks for what the account cannot
    /// spare. Limits that cannot be read (no `lambda:GetAccountSettings`, an emulator without
    /// it) are said, and do not stop the deploy.
    async fn check_watcher_concurrency(&self, reserve: bool) -> anyhow::Result<()> {
        if self.plan.watcher.is_none() {
            return Ok(());
        }
        let region = &self.plan.stack(Role::Watcher).region;
        let limits = self
            .aws
            .lambda_limits(region)
            .await
            .map_err(|e| format!("{e:#}"));
        let verdict = super::concurrency::decide(region, limits, reserve);
        for line in &verdict.lines {
            self.progress.line(line);
        }
        match verdict.proceed {
            true => Ok(()),
            false => bail!(
                "nothing was changed: {}",
                verdict.lines.last().map_or("", String::as_str)
            ),
        }
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
        self.keep_consistency(&data).await?;
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

    /// DynamoDB cannot change a global table's consistency mode: a data stack that exists keeps
    /// the one it was created in (a stack from before the parameter is eventual), and asking
    /// for the other fails here, before any change, with the way to move (contract §10).
    async fn keep_consistency(&self, data: &StackSpec) -> anyhow::Result<()> {
        let wanted = data
            .parameters
            .iter()
            .find(|(k, _)| k == CONSISTENCY_PARAMETER)
            .map_or("eventual", |(_, v)| v.as_str());
        let cfn = self.aws.cloudformation(&data.region);
        let Some(existing) = stack::describe(&cfn, &data.name).await? else {
            return Ok(());
        };
        let current = existing
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(CONSISTENCY_PARAMETER))
            .and_then(|p| p.parameter_value())
            .unwrap_or("eventual");
        if current != wanted {
            bail!(
                "stack {} holds a table created with --consistency {current}; DynamoDB cannot \
                 change a table's consistency mode. Deploy with --consistency {current}, or \
                 move to {wanted} with a new table (--prefix or --table-name) as \
                 docs/contract.md §10 describes",
                data.name
            );
        }
        Ok(())
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
        let base = smoke_base(edge, args);
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
            &[(MODE_PARAMETER, group.as_str())],
            &self.progress,
        )
        .await?;
        sdk::wait_deployed(&self.aws.cloudfront(), &edge.distribution).await?;
        let report = smoke::until_passed(&base, regions, group, wait, &self.progress).await;
        print!("\n{}", report.table());
        println!("\n{}", smoke::ORIGIN_GROUP_WARNING);
        Ok(smoke::advice(report.verdict(), group))
    }

    /// The failover drill through the edge the smoke checks used, once they passed: false when
    /// it failed. Skipped (and said) with `--no-prove`, after failed checks, and where `/api/*`
    /// has no active region (the origin group).
    async fn prove(
        &self,
        edge: &EdgeOutputs,
        args: &SmokeArgs,
        smoke_passed: bool,
        token: &str,
    ) -> anyhow::Result<bool> {
        let skip = match (args.no_prove, smoke_passed, self.api_mode().await?) {
            (true, _, _) => Some("skipped (--no-prove)"),
            (_, false, _) => Some("not run: the smoke checks failed"),
            (_, _, smoke::Mode::OriginGroup) => Some(
                "not run: ApiFailoverMode=origin-group carries no writes on /api/* and has no active region",
            ),
            _ => None,
        };
        if let Some(why) = skip {
            println!("\nFailover drill: {why}");
            return Ok(true);
        }
        let regions = &self.plan.regions;
        let found: Vec<(String, String)> = (0..2)
            .filter_map(|i| {
                let domain = self
                    .ctx
                    .outputs
                    .get(&Role::Region(i))?
                    .get("ApiDomainName")?;
                Some((regions[i].clone(), format!("https://{domain}")))
            })
            .collect();
        let edge_stack = self.plan.stack(Role::Edge);
        let drill = Drill {
            base: smoke_base(edge, args),
            regions: regions.clone(),
            token: token.to_owned(),
            keeper: Keeper::Aws {
                client: self.aws.keyvaluestore(),
                store: Store {
                    arn: edge.kvs_arn.clone(),
                    stack: Some(format!("{} ({})", edge_stack.name, edge_stack.region)),
                    regions: Some(regions.clone()),
                    warning: None,
                },
            },
            origins: args.drill.origins(regions, &found),
            fault: Duration::from_secs(args.drill.prove_fault_s),
            within: Duration::from_secs(args.drill.confirm_within),
        };
        let report = drill.run(&|line| self.progress.line(line)).await?;
        print!("\n{}", report.table());
        // A drill that could not start (the active region is set: a deploy on the bad day) is
        // said, and does not fail the deploy; one that ran must pass.
        Ok(report.skipped.is_some() || report.passed())
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
                    .find(|p| p.parameter_key() == Some(MODE_PARAMETER))
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

/// Where the smoke checks and the drill go: `--smoke-endpoint`, or the distribution.
fn smoke_base(edge: &EdgeOutputs, args: &SmokeArgs) -> String {
    args.smoke_endpoint
        .as_deref()
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://{}", edge.domain))
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
