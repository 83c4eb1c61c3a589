//! The CloudFormation templates deploy reads: the copies built into tandem, or a directory's
//! (`--templates`), each parsed for what the plan checks against it (its parameters and their
//! defaults, its outputs, how many resources it makes, whether it needs CAPABILITY_IAM).

use anyhow::{Context as _, anyhow};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The templates, built into the binary so that `tandem` deploys from anywhere.
const BUILT_IN: [(&str, &str); 4] = [
    ("data.yaml", include_str!("../../cloudformation/data.yaml")),
    (
        "region.yaml",
        include_str!("../../cloudformation/region.yaml"),
    ),
    ("edge.yaml", include_str!("../../cloudformation/edge.yaml")),
    (
        "watcher.yaml",
        include_str!("../../cloudformation/watcher.yaml"),
    ),
];

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

/// The templates the plan uses (watcher.yaml only with `--auto-failover`): from `dir`, or the
/// copies built into tandem.
pub(super) fn load_templates(
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
