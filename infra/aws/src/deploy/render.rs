//! The plan as text: what `tandem deploy --dry-run` prints, step by step, with every stack's
//! parameters, every file's headers and every smoke check, and no AWS call.

use super::console::invalidation_paths;
use super::lambda::{Function, LAMBDA_TARGET, Zip};
use super::plan::{Plan, StackPlan, Value};
use crate::names::{CONSOLE_BUCKET, DISTRIBUTION_DOMAIN, DISTRIBUTION_ID, KVS_ARN_OUTPUT, Role};
use crate::smoke;
use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

impl Plan {
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
            // Still "SPEC §6", not docs/contract.md §6.3: infra/cli/tests/deploy.rs pins this
            // line, so the two change together.
            script.detail(format_args!(
                "the active region (docs/contract.md §6.3): CloudFront KeyValueStore {}, read by the /api/* router function; created empty (= the primary); deploy never changes its keys",
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
            "the health watcher: runs every minute in {secondary}; every {} ms it probes /region/<r>/api/health and /api/health through the distribution and switches active_region away from a region that failed {} probes in a row (~{:?})",
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
        let reserves = self
            .stack(Role::Watcher)
            .parameters
            .iter()
            .any(|(k, v)| k == "ReserveConcurrency" && *v == Value::text("true"));
        script.detail(format_args!(
            "before any change, deploy reads Lambda's account settings in {secondary} (lambda:GetAccountSettings: ConcurrentExecutions, UnreservedConcurrentExecutions) and prints them"
        ));
        match reserves {
            true => script.detail(
                "reserved concurrency 1 (--reserve-watcher-concurrency): deploy stops before any change if the account cannot spare it",
            ),
            false => script.detail(
                "no reserved concurrency (new accounts often cannot spare any): overlapping invocations are kept apart by the KeyValueStore's ETag",
            ),
        }
        script.detail(
            "it learns the active region from /api/health's x-tandem-active-region (no KeyValueStore call per probe); a switch reads the ETag and the key, then writes with If-Match: 3 calls",
        );
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
        let domain = format!("https://{}", edge_output(DISTRIBUTION_DOMAIN));
        self.render_smoke(script, &domain);
        self.render_prove(script, &domain);
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

    /// The failover drill, as it will run after the smoke checks ([`crate::prove`]).
    fn render_prove(&self, script: &mut Script, domain: &str) {
        let smoke = &self.smoke;
        if smoke.no_prove {
            script.step("No failover drill (--no-prove).");
            return;
        }
        let base = smoke.smoke_endpoint.as_deref().unwrap_or(domain);
        let [primary, secondary] = &self.regions;
        let drill = &smoke.drill;
        script.step(format_args!(
            "Failover drill through {base}, once the smoke checks pass (not with ApiFailoverMode=origin-group, nor while an active region is set):"
        ));
        let origin = |i: usize| {
            let region = &self.regions[i];
            drill
                .origin_endpoint
                .iter()
                .find(|(r, _)| r == region)
                .map(|(_, url)| url.clone())
                .unwrap_or_else(|| {
                    let name = self.stack(Role::Region(i)).name.clone();
                    format!("https://<output ApiDomainName of {name} in {region}>")
                })
        };
        for line in [
            format!("PUT /api/items/tandem-prove-<random>-a -> 2xx from {primary}; read back from /region/{secondary}/api/items/<id> (replication, up to 30 s)"),
            format!("GET {}/api/health and {}/api/health without x-origin-verify -> 403 (origin cloaking)", origin(0), origin(1)),
            format!("PUT /region/{primary}/api/admin/fault error:503 (admin token) for {} s; GET /api/items/<id> every 250 ms meanwhile -> 200 from {secondary}", drill.prove_fault_s),
            format!("PUT /api/items/tandem-prove-<random>-b before the switch -> 5xx from {primary} (writes follow the active region)"),
            format!("switch the active region to {secondary} (PutKey on the KeyValueStore), confirmed through /api/health within {} s; the same PUT -> 2xx from {secondary}", drill.confirm_within),
            format!("heal {primary}; fail back (DeleteKey), confirmed; the second item read back from /region/{primary}/api/items/<id>; delete both items"),
            "print each step and the RTO seen (reads: until the first GET answered; writes: until the first write landed); a failed step fails the deploy after its summary (--no-prove skips the drill)".to_owned(),
        ] {
            script.detail(line);
        }
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

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
