//! The plan: everything `tandem deploy` will do, worked out and checked before any AWS call.
//! Its stacks in order with their parameters (some of them outputs of an earlier stack, known
//! only once it has run), its templates, the functions' zips and the console's files.

use super::args::{DeployArgs, SmokeArgs};
use super::console::{ConsoleFile, console_files};
use super::lambda::{Function, Zip, locate_code};
use super::parameters::stack_plans;
use super::template::{Template, load_templates};
use crate::names::{
    CONSISTENCY_PARAMETER, CONSOLE_BUCKET, DISTRIBUTION_DOMAIN, DISTRIBUTION_ID, KVS_ARN_OUTPUT,
    Role, StackArgs,
};
use anyhow::bail;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    pub watcher: Option<tandem_ops::watcher::WatchArgs>,
    pub console_dir: PathBuf,
    pub console: Vec<ConsoleFile>,
    pub smoke: SmokeArgs,
    /// `--only-region`: the index of the one region deployed.
    pub only: Option<usize>,
}

/// One stack of the plan.
#[derive(Debug, Clone)]
pub struct StackPlan {
    pub role: Role,
    pub name: String,
    pub region: String,
    pub parameters: Vec<(String, Value)>,
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
    pub(super) fn text(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

impl Plan {
    /// The plan for `args`: reads the templates, lists the console files and hashes a given
    /// zip. Everything that can be checked without AWS is checked here, for `--dry-run` too.
    pub fn new(args: &DeployArgs) -> anyhow::Result<Plan> {
        let (primary, secondary) = args.stacks.check()?;
        args.ops.check([&primary, &secondary])?;
        args.check_consistency([&primary, &secondary])?;
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
                        // The table's mode is the data stack's; one region alone keeps its own.
                        CONSISTENCY_PARAMETER => *value = Value::Keep,
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

    pub(super) fn template(&self, role: Role) -> &Template {
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
    pub(super) fn code_regions(&self, function: Function) -> Vec<usize> {
        function
            .regions()
            .iter()
            .copied()
            .filter(|i| self.only.is_none_or(|only| only == *i))
            .collect()
    }

    pub(super) fn stack(&self, role: Role) -> &StackPlan {
        self.stacks
            .iter()
            .find(|s| s.role == role)
            .expect("every role has a stack")
    }

    pub(super) fn primary(&self) -> &str {
        &self.regions[0]
    }

    /// A value as the dry run shows it, or as deploy passes it once `account` and the zips'
    /// `keys` are known.
    pub(super) fn describe_value(
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
    pub(super) fn known_keys(&self) -> BTreeMap<Function, String> {
        self.code
            .iter()
            .filter_map(|(f, zip)| Some((*f, zip.known_key()?.to_owned())))
            .collect()
    }
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
