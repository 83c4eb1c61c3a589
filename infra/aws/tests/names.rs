//! Two deployments in one account: the names each plan gives (its stacks and code buckets, and
//! every name its templates set, worked out from the parameters deploy passes) never meet when
//! the prefixes differ. The templates are read as deploy reads them, so a name a template fixes
//! without the prefix shows up in both plans and fails the test.

use clap::Parser;
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use tandem_aws::deploy::{
    DEFAULT_SECRET_NAME, DEFAULT_TABLE_NAME, DeployArgs, Plan, Role, StackPlan, Value,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    deploy: DeployArgs,
}

/// Properties that name a resource in the account: a second deployment must choose another.
/// (Names inside a resource, like a web ACL's rules or an alarm's dimensions, are not.)
const NAME_KEYS: [&str; 8] = [
    "FunctionName",
    "LogGroupName",
    "TableName",
    "BucketName",
    "DashboardName",
    "AlarmName",
    "RoleName",
    "Name",
];

/// A name, where it must be unique (a region, or the account for CloudFront), and what set it.
type Named = (String, String, String);

/// A plan for `--prefix prefix` (with a given zip and a console, so nothing is built).
fn plan(prefix: &str, dir: &std::path::Path) -> Plan {
    std::fs::create_dir_all(dir).unwrap();
    let zip = dir.join("fn.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    writer.start_file("bootstrap", options).unwrap();
    writer.write_all(b"#!/bin/sh\n").unwrap();
    writer.finish().unwrap();
    let console = dir.join("dist");
    std::fs::create_dir_all(&console).unwrap();
    std::fs::write(console.join("index.html"), "<!doctype html>").unwrap();
    let args = Cli::parse_from([
        "deploy",
        "--prefix",
        prefix,
        "--lambda-zip",
        zip.to_str().unwrap(),
        "--console-dir",
        console.to_str().unwrap(),
        "--auto-failover",
        "--watcher-zip",
        zip.to_str().unwrap(),
        "--waf",
        "--alarm-topic-arn",
        "arn:aws:sns:us-east-1:123456789012:ops",
    ])
    .deploy;
    Plan::new(&args).unwrap()
}

/// Works out template values the way CloudFormation would, from one stack's parameters.
struct Eval<'a> {
    plan: &'a Plan,
    stack: &'a StackPlan,
    template: Yaml,
}

impl<'a> Eval<'a> {
    fn new(plan: &'a Plan, stack: &'a StackPlan) -> Eval<'a> {
        let file = match stack.role {
            Role::Data => "data.yaml",
            Role::Region(_) => "region.yaml",
            Role::Edge => "edge.yaml",
            Role::Watcher => "watcher.yaml",
        };
        let template = serde_norway::from_str(&plan.templates[file].body).unwrap();
        Eval {
            plan,
            stack,
            template,
        }
    }

    /// A parameter's value: what deploy passes, or the template's default.
    fn parameter(&self, key: &str) -> Option<String> {
        match self.stack.parameters.iter().find(|(k, _)| k == key) {
            Some((_, value)) => self.value(value),
            None => default(&self.template["Parameters"][key]),
        }
    }

    /// What deploy passes, resolved: another stack's output is worked out from its template.
    fn value(&self, value: &Value) -> Option<String> {
        match value {
            Value::Text(text) => Some(text.clone()),
            Value::Output(role, key) => {
                let other = self.plan.stacks.iter().find(|s| s.role == *role)?;
                let eval = Eval::new(self.plan, other);
                eval.eval(&eval.template["Outputs"][*key]["Value"].clone())
                    .into_iter()
                    .next()
            }
            Value::Keep => None,
            // Not names: a URL, a bucket deploy names itself (counted separately), a zip key.
            _ => None,
        }
    }

    /// Every value `node` can take (both branches of an `Fn::If`); none when it depends on
    /// something generated (a physical id, an attribute).
    fn eval(&self, node: &Yaml) -> Vec<String> {
        if let Some(text) = node.as_str() {
            return vec![text.to_owned()];
        }
        if let Some(name) = node.get("Ref").and_then(Yaml::as_str) {
            return match name {
                "AWS::StackName" => vec![self.stack.name.clone()],
                "AWS::Region" => vec![self.stack.region.clone()],
                _ => self.parameter(name).into_iter().collect(),
            };
        }
        if let Some(sub) = node.get("Fn::Sub") {
            return self.sub(sub).into_iter().collect();
        }
        if let Some(Yaml::Sequence(branches)) = node.get("Fn::If") {
            return branches[1..].iter().flat_map(|b| self.eval(b)).collect();
        }
        Vec::new()
    }

    /// `Fn::Sub` of a string: `${AWS::…}` and parameters; `None` for anything generated.
    fn sub(&self, sub: &Yaml) -> Option<String> {
        let mut text = sub.as_str()?.to_owned();
        while let Some(start) = text.find("${") {
            let end = start + text[start..].find('}')?;
            let var = &text[start + 2..end];
            let value = match var {
                "AWS::StackName" => self.stack.name.clone(),
                "AWS::Region" => self.stack.region.clone(),
                "AWS::AccountId" => "123456789012".into(),
                "AWS::Partition" => "aws".into(),
                _ => self.parameter(var)?,
            };
            text.replace_range(start..=end, &value);
        }
        Some(text)
    }

    /// Every name this stack's resources set, with where it must be unique.
    fn names(&self) -> Vec<Named> {
        let mut names = Vec::new();
        let resources = self.template["Resources"].as_mapping().unwrap();
        for (id, resource) in resources {
            let kind = resource["Type"].as_str().unwrap();
            let scope = if kind.starts_with("AWS::CloudFront::") || kind.starts_with("AWS::WAFv2::")
            {
                "global".to_owned()
            } else {
                self.stack.region.clone()
            };
            let mut found = Vec::new();
            collect(&resource["Properties"], &mut found);
            for node in found {
                for name in self.eval(&node) {
                    let what = format!("{} {}.{}", self.stack.name, id.as_str().unwrap(), kind);
                    names.push((scope.clone(), name, what));
                }
            }
        }
        names
    }
}

/// A parameter's `Default`, as text.
fn default(parameter: &Yaml) -> Option<String> {
    match &parameter["Default"] {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The values of a resource's name properties: at the top of its properties, or the `Name`
/// of a `…Config` block (CloudFront's origin access control and policies name themselves there).
fn collect(properties: &Yaml, found: &mut Vec<Yaml>) {
    let Some(map) = properties.as_mapping() else {
        return;
    };
    for (key, value) in map {
        let key = key.as_str().unwrap_or("");
        if NAME_KEYS.contains(&key) {
            found.push(value.clone());
        } else if key.ends_with("Config")
            && let Some(name) = value.get("Name")
        {
            found.push(name.clone());
        }
    }
}

/// Every name a plan gives: stacks, code buckets and the templates' names.
fn names(plan: &Plan) -> BTreeMap<(String, String), String> {
    let mut all = BTreeMap::new();
    for stack in &plan.stacks {
        let eval = Eval::new(plan, stack);
        all.insert(
            (stack.region.clone(), stack.name.clone()),
            "stack".to_owned(),
        );
        for (scope, name, what) in eval.names() {
            all.insert((scope, name), what);
        }
    }
    for region in &plan.regions {
        let bucket = format!("{}-code-123456789012-{region}", plan.args.prefix);
        all.insert(("global".to_owned(), bucket), "code bucket".to_owned());
    }
    all
}

#[test]
fn two_prefixes_share_no_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = names(&plan("blue", &dir.path().join("a")));
    let b = names(&plan("green", &dir.path().join("b")));
    println!("{a:#?}");
    let shared: Vec<_> = a
        .iter()
        .filter(|(key, _)| b.contains_key(*key))
        .map(|((scope, name), what)| format!("{name} in {scope} ({what})"))
        .collect();
    assert!(
        shared.is_empty(),
        "names both deployments would use:\n{}",
        shared.join("\n")
    );
    // The check is only as good as what it found: the function, its log groups, the table,
    // the secret, the CloudFront functions, the store, the dashboard, alarms, the web ACL.
    let found: BTreeSet<&str> = a.values().map(String::as_str).collect();
    for kind in [
        "AWS::Lambda::Function",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SecretsManager::Secret",
        "AWS::CloudFront::Function",
        "AWS::CloudFront::KeyValueStore",
        "AWS::CloudWatch::Dashboard",
        "AWS::CloudWatch::Alarm",
        "AWS::WAFv2::WebACL",
    ] {
        assert!(
            found.iter().any(|w| w.ends_with(kind)),
            "no name of a {kind} found: {a:#?}"
        );
    }
    assert!(a.len() >= 30, "only {} names found: {a:#?}", a.len());
}

#[test]
fn the_default_prefix_keeps_the_names_of_earlier_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan("tandem", dir.path());
    assert_eq!(plan.args.table(), DEFAULT_TABLE_NAME);
    assert_eq!(plan.args.secret(), DEFAULT_SECRET_NAME);
    assert_eq!(plan.args.function(), "tandem-api");
}
