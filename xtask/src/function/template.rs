//! The router function's code as CloudFormation would deploy it, read from `edge.yaml` without a
//! YAML library: the parameters' defaults, and a function's `FunctionCode` literal block with
//! its `Fn::Sub` resolved. Enough YAML for the template's own layout (a literal block,
//! long-form intrinsics), which `function_code` insists on.

use super::{FUNCTION, TEMPLATE};
use anyhow::{anyhow, ensure};
use std::collections::BTreeMap;

/// Leading spaces of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Whether a line carries nothing for YAML's structure (blank or a comment).
fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The lines of the mapping entry `key:` at `level` spaces, after its key line, up to the
/// next entry at that level or less.
fn entry<'a>(lines: &[&'a str], key: &str, level: usize) -> Option<Vec<&'a str>> {
    let head = format!("{}{key}:", " ".repeat(level));
    let start = lines
        .iter()
        .position(|l| *l == head || l.starts_with(&format!("{head} ")))?;
    Some(
        lines[start + 1..]
            .iter()
            .take_while(|l| is_blank(l) || indent(l) > level)
            .copied()
            .collect(),
    )
}

/// The `Default` of every template parameter that has a plain one.
pub(super) fn parameter_defaults(template: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = template.lines().collect();
    let mut defaults = BTreeMap::new();
    let Some(section) = entry(&lines, "Parameters", 0) else {
        return defaults;
    };
    let mut current: Option<String> = None;
    for line in section {
        if is_blank(line) {
            continue;
        }
        let t = line.trim();
        if indent(line) == 2 {
            current = t.strip_suffix(':').map(str::to_owned);
        } else if indent(line) == 4
            && let (Some(name), Some(value)) = (&current, t.strip_prefix("Default:"))
        {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            defaults.insert(name.clone(), value.to_owned());
        }
    }
    defaults
}

/// The code of CloudFront Function `resource`: its `FunctionCode` literal block, through
/// `Fn::Sub` when it is one (resolved with `parameters`).
pub(super) fn function_code(
    template: &str,
    resource: &str,
    parameters: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let lines: Vec<&str> = template.lines().collect();
    let resources =
        entry(&lines, "Resources", 0).ok_or_else(|| anyhow!("{TEMPLATE}: no Resources"))?;
    let body = entry(&resources, resource, 2)
        .ok_or_else(|| anyhow!("{TEMPLATE}: no resource {resource}"))?;
    let properties = entry(&body, "Properties", 4)
        .ok_or_else(|| anyhow!("{TEMPLATE}: {resource} has no Properties"))?;
    let head = properties
        .iter()
        .position(|l| indent(l) == 6 && l.trim_start().starts_with("FunctionCode:"))
        .ok_or_else(|| anyhow!("{TEMPLATE}: {resource} has no FunctionCode"))?;
    let inline = properties[head].trim_start()["FunctionCode:".len()..].trim();
    let (block_head, sub) = if inline.is_empty() {
        // FunctionCode:\n  Fn::Sub: |
        let next = properties[head + 1..]
            .iter()
            .position(|l| !is_blank(l))
            .map(|i| head + 1 + i)
            .ok_or_else(|| anyhow!("{TEMPLATE}: {resource}: empty FunctionCode"))?;
        let t = properties[next].trim();
        ensure!(
            t.starts_with("Fn::Sub:") && t["Fn::Sub:".len()..].trim().starts_with('|'),
            "{TEMPLATE}: {resource}: FunctionCode must be a literal block (`|`) or `Fn::Sub: |`"
        );
        (next, true)
    } else {
        ensure!(
            inline.starts_with('|'),
            "{TEMPLATE}: {resource}: FunctionCode must be a literal block (`|`) or `Fn::Sub: |`"
        );
        (head, false)
    };
    let level = indent(properties[block_head]);
    let block: Vec<&str> = properties[block_head + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > level)
        .copied()
        .collect();
    let margin = block
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .ok_or_else(|| anyhow!("{TEMPLATE}: {resource}: empty FunctionCode"))?;
    let code: String = block
        .iter()
        .map(|l| format!("{}\n", l.get(margin..).unwrap_or("")))
        .collect();
    let code = format!("{}\n", code.trim_end());
    if sub {
        substitute(&code, parameters)
    } else {
        Ok(code)
    }
}

/// `Fn::Sub` with parameter values: `${Name}` is the value, `${!Text}` is `${Text}`.
fn substitute(text: &str, parameters: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| anyhow!("{TEMPLATE}: {FUNCTION}: an unclosed ${{ in Fn::Sub"))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            let value = parameters.get(name).ok_or_else(|| {
                anyhow!(
                    "{TEMPLATE}: {FUNCTION}: Fn::Sub names ${{{name}}}, which is no parameter \
                     with a Default (the check resolves only those)"
                )
            })?;
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Parameters:
  PrimaryRegion:
    Type: String
    Default: us-east-1
  SecondaryRegion:
    Type: String
    Default: \"us-west-2\"
  NoDefault:
    Type: String

Resources:
  Other:
    Type: AWS::CloudFront::Function
    Properties:
      FunctionCode: |
        function handler(event) { return event.request; }
  ApiRouterFunction:
    Type: AWS::CloudFront::Function
    Properties:
      Name: x
      FunctionCode:
        Fn::Sub: |
          import cf from 'cloudfront';

          var REGIONS = ['${PrimaryRegion}', '${SecondaryRegion}'];
          // ${!Kept}
            var deeper = 1;
  Distribution:
    Type: AWS::CloudFront::Distribution
";

    #[test]
    fn reads_parameter_defaults_and_the_substituted_code() {
        let parameters = parameter_defaults(SAMPLE);
        assert_eq!(parameters["PrimaryRegion"], "us-east-1");
        assert_eq!(parameters["SecondaryRegion"], "us-west-2");
        assert!(!parameters.contains_key("NoDefault"));
        let code = function_code(SAMPLE, "ApiRouterFunction", &parameters).unwrap();
        assert_eq!(
            code,
            "import cf from 'cloudfront';\n\nvar REGIONS = ['us-east-1', 'us-west-2'];\n\
             // ${Kept}\n  var deeper = 1;\n"
        );
        let plain = function_code(SAMPLE, "Other", &parameters).unwrap();
        assert_eq!(plain, "function handler(event) { return event.request; }\n");
        assert!(function_code(SAMPLE, "Missing", &parameters).is_err());
        assert!(substitute("${NoDefault}", &parameters).is_err());
    }
}
