//! The CloudFront Function that routes `/api/*` on AWS (`ApiRouterFunction` in
//! `infra/aws/cloudformation/edge.yaml`), run in Node.js against the table of routing cases
//! `shared/tests/api_routing.json`: the edge on AWS must route exactly as `api_route` in
//! `shared/src/routing.rs` says, which is what the local edge follows.
//!
//! The function's code is taken from the template as CloudFormation would deploy it: its
//! `Fn::Sub` resolved with the parameters' defaults (the regions the table uses). It runs with a
//! stand-in for the `cloudfront` module that records `selectRequestOriginById` and
//! `createRequestOriginGroup` and whose `kvs()` store holds the case's `active_region` (for an
//! absent value: a `get` that rejects, one that throws, and one that resolves to nothing).
//! The origins a request would try are read from those calls: an origin group's members in
//! order, a selected origin alone, and no call at all the behavior's own target (the primary).
//! Origin ids map back to regions the way the distribution pairs them.
//!
//! What this does not show: that CloudFront's own runtime behaves like Node.js here (it runs a
//! subset of JavaScript; the code keeps to what its runtime 2.0 documents), and that the real
//! `cloudfront` module does what its documentation says. Those need a deployed distribution.

use crate::util::{self, done, step};
use anyhow::{Context as _, anyhow, bail, ensure};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tandem_shared::routing::{ACTIVE_REGION_KEY, api_route};

/// The template and the resource whose code runs here.
const TEMPLATE: &str = "infra/aws/cloudformation/edge.yaml";
const FUNCTION: &str = "ApiRouterFunction";
/// The table of cases both edges are checked against.
const CASES: &str = "shared/tests/api_routing.json";
/// The function's import, pointed at the stand-in when it runs here.
const IMPORT: &str = "import cf from 'cloudfront';";
/// The origin ids of the two regions' APIs, in the order of the region parameters (primary
/// first), as the distribution's `/region/<r>/api/*` behaviors pair them (checked by
/// infra/aws/tests/templates.rs).
const ORIGIN_IDS: [&str; 2] = ["api-primary", "api-secondary"];
const REGION_PARAMETERS: [&str; 2] = ["PrimaryRegion", "SecondaryRegion"];
/// Values that are no region but are names every JavaScript object has: a lookup in an
/// object literal would find something for them. Each runs as an unknown region, expected
/// where `api_route` sends it.
const PROTOTYPE_NAMES: [&str; 4] = ["toString", "constructor", "__proto__", "hasOwnProperty"];

/// The stand-in for CloudFront's `cloudfront` module.
const STAND_IN: &str = r#"// Stand-in for CloudFront Functions' `cloudfront` module (xtask/src/function.rs).
export const state = { key: null, active: null, mode: 'value', calls: [], gets: [] };

const cf = {
  kvs() {
    return {
      get(key, options) {
        state.gets.push(key);
        switch (state.mode) {
          case 'value':
            if (key !== state.key) {
              return Promise.reject(new Error('Key ' + key + ' not found'));
            }
            return Promise.resolve(state.active);
          case 'missing':
            return Promise.reject(new Error('Key ' + key + ' not found'));
          case 'throws':
            throw new Error('store unreadable');
          case 'nothing':
            return Promise.resolve(undefined);
          default:
            throw new Error('unknown mode ' + state.mode);
        }
      },
    };
  },
  selectRequestOriginById(originId, overrides) {
    state.calls.push({ fn: 'selectRequestOriginById', originId: originId });
  },
  createRequestOriginGroup(params) {
    state.calls.push({ fn: 'createRequestOriginGroup', params: params });
  },
  updateRequestOrigin(params) {
    state.calls.push({ fn: 'updateRequestOrigin', params: params });
  },
};

export default cf;
"#;

/// Runs every run in `runs.json` through the function and prints what it did, as JSON.
const HARNESS: &str = r#"// Runs the CloudFront function once per run in runs.json (xtask/src/function.rs).
import { readFileSync } from 'node:fs';
import { state } from './cloudfront.mjs';
import { handler } from './function.mjs';

const runs = JSON.parse(readFileSync('runs.json', 'utf8'));
const results = [];
for (const run of runs) {
  state.key = run.key;
  state.active = run.active;
  state.mode = run.mode;
  state.calls = [];
  state.gets = [];
  const request = {
    method: run.method,
    uri: '/api/items/parity',
    querystring: {},
    headers: { host: { value: 'd111111abcdef8.cloudfront.net' } },
    cookies: {},
  };
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionDomainName: 'd111111abcdef8.cloudfront.net' },
    viewer: { ip: '192.0.2.1' },
    request: request,
  };
  let error = null;
  let same = false;
  try {
    const out = await handler(event);
    same = out === request;
  } catch (err) {
    error = String(err && err.stack || err);
  }
  results.push({ calls: state.calls, gets: state.gets, returnedRequest: same, error: error });
}
process.stdout.write(JSON.stringify(results));
"#;

/// One run of the function: a method, the store's content, and the origins it must try.
#[derive(Debug, Clone)]
struct Run {
    name: String,
    method: String,
    /// The value under `active_region`, when there is one.
    active: Option<String>,
    /// How the store answers: `value`, or for an absent value `missing`, `throws`, `nothing`.
    mode: &'static str,
    expected: Vec<String>,
}

/// `cargo xtask test`'s step: fails unless the function routes every case as the table says.
pub fn run() -> anyhow::Result<()> {
    let t = step("CloudFront API router function vs shared/tests/api_routing.json (Node.js)");
    let node = node()?;
    let root = util::root();
    let template = std::fs::read_to_string(root.join(TEMPLATE))
        .with_context(|| format!("reading {TEMPLATE}"))?;
    let parameters = parameter_defaults(&template);
    let regions: Vec<String> = REGION_PARAMETERS
        .iter()
        .map(|p| {
            parameters
                .get(*p)
                .cloned()
                .ok_or_else(|| anyhow!("{TEMPLATE}: parameter {p} has no Default"))
        })
        .collect::<anyhow::Result<_>>()?;
    let code = function_code(&template, FUNCTION, &parameters)?;

    let table: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(CASES)).with_context(|| format!("reading {CASES}"))?,
    )
    .with_context(|| format!("{CASES} is not JSON"))?;
    let runs = runs(&table, &regions)?;

    let dir = scratch_dir()?;
    let outcome = run_in_node(&node, &dir, &code, &runs);
    let _ = std::fs::remove_dir_all(&dir);
    let results = outcome?;

    let origin_regions: BTreeMap<&str, &str> = ORIGIN_IDS
        .iter()
        .copied()
        .zip(regions.iter().map(String::as_str))
        .collect();
    let mut failures = Vec::new();
    for (run, result) in runs.iter().zip(&results) {
        match tried(result, &origin_regions, &regions[0]) {
            Ok(got) if got == run.expected => {}
            Ok(got) => failures.push(format!(
                "{} [store: {}]: expected {:?}, the function tried {:?}",
                run.name,
                describe_store(run),
                run.expected,
                got
            )),
            Err(e) => failures.push(format!(
                "{} [store: {}]: {e}",
                run.name,
                describe_store(run)
            )),
        }
    }
    if !failures.is_empty() {
        bail!(
            "the CloudFront function in {TEMPLATE} ({FUNCTION}) does not route as {CASES} says \
             ({} of {} runs):\n  {}",
            failures.len(),
            runs.len(),
            failures.join("\n  ")
        );
    }
    let cases = table["cases"].as_array().map_or(0, Vec::len);
    println!(
        "{cases} cases of {CASES} ({} runs, with each absent value read three ways and {} \
         prototype names as unknown regions): every one routed as the table says",
        runs.len(),
        PROTOTYPE_NAMES.len()
    );
    done(t);
    Ok(())
}

/// `node`, checked before anything else: without it the step cannot run at all.
fn node() -> anyhow::Result<PathBuf> {
    let node = util::which("node").ok_or_else(|| {
        anyhow!(
            "node (Node.js) is not on PATH: `cargo xtask test` runs the CloudFront function of \
             {TEMPLATE} in it. Install Node.js 18 or later (Debian: apt-get install nodejs), \
             which .ci/run does"
        )
    })?;
    let version = util::output(Command::new(&node).arg("--version"))
        .with_context(|| format!("{} --version", node.display()))?;
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    ensure!(
        major >= 18,
        "{} is Node.js {}: the CloudFront function check needs 18 or later",
        node.display(),
        version.trim()
    );
    Ok(node)
}

/// A fresh directory for the harness under the system's temp dir.
fn scratch_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tandem-cloudfront-function-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Writes the function, the stand-in and the harness to `dir`, runs them, and returns one
/// result per run.
fn run_in_node(node: &Path, dir: &Path, code: &str, runs: &[Run]) -> anyhow::Result<Vec<Value>> {
    std::fs::write(dir.join("function.mjs"), as_module(code)?)?;
    std::fs::write(dir.join("cloudfront.mjs"), STAND_IN)?;
    std::fs::write(dir.join("harness.mjs"), HARNESS)?;
    let input: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "key": ACTIVE_REGION_KEY,
                "active": r.active,
                "mode": r.mode,
            })
        })
        .collect();
    std::fs::write(dir.join("runs.json"), serde_json::to_vec(&input)?)?;
    let out = Command::new(node)
        .arg("harness.mjs")
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {} harness.mjs", node.display()))?;
    if !out.status.success() {
        bail!(
            "node could not run the function of {TEMPLATE} ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let results: Vec<Value> =
        serde_json::from_slice(&out.stdout).context("the harness's output is not JSON")?;
    ensure!(
        results.len() == runs.len(),
        "the harness reported {} results for {} runs",
        results.len(),
        runs.len()
    );
    Ok(results)
}

/// The function's code as an ES module Node.js can import: the `cloudfront` module replaced by
/// the stand-in, and `handler` exported (CloudFront calls it by name).
fn as_module(code: &str) -> anyhow::Result<String> {
    ensure!(
        code.matches(IMPORT).count() == 1,
        "{FUNCTION} must import the cloudfront module exactly once, as `{IMPORT}`"
    );
    Ok(format!(
        "{}\nexport {{ handler }};\n",
        code.replace(IMPORT, "import cf from './cloudfront.mjs';")
    ))
}

/// Every run: each case of the table (an absent value three ways), plus each method of the
/// table with a prototype name as the value. Fails unless the table's regions are the
/// template's defaults, which is what the function is resolved with.
fn runs(table: &Value, regions: &[String]) -> anyhow::Result<Vec<Run>> {
    let table_regions: Vec<&str> = table["regions"]
        .as_array()
        .ok_or_else(|| anyhow!("{CASES}: no regions"))?
        .iter()
        .map(|r| {
            r.as_str()
                .ok_or_else(|| anyhow!("{CASES}: a region is not a string"))
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(
        table_regions == regions,
        "{CASES} is for regions {table_regions:?}, but {TEMPLATE}'s defaults are {regions:?}"
    );
    let cases = table["cases"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow!("{CASES}: no cases"))?;
    let mut runs = Vec::new();
    let mut methods: Vec<String> = Vec::new();
    for case in cases {
        let field = |key: &str| -> anyhow::Result<&str> {
            case[key]
                .as_str()
                .ok_or_else(|| anyhow!("{CASES}: a case without a string {key:?}: {case}"))
        };
        let name = field("name")?.to_owned();
        let method = field("method")?.to_owned();
        let active = match &case["active"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => bail!("{CASES}: {name}: active must be a string or null, not {other}"),
        };
        let expected: Vec<String> = case["origins"]
            .as_array()
            .ok_or_else(|| anyhow!("{CASES}: {name}: no origins"))?
            .iter()
            .map(|o| o.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow!("{CASES}: {name}: origins must be strings"))?;
        if !methods.contains(&method) {
            methods.push(method.clone());
        }
        let modes: &[&'static str] = match active {
            Some(_) => &["value"],
            None => &["missing", "throws", "nothing"],
        };
        for mode in modes {
            runs.push(Run {
                name: name.clone(),
                method: method.clone(),
                active: active.clone(),
                mode,
                expected: expected.clone(),
            });
        }
    }
    let region_refs: Vec<&str> = regions.iter().map(String::as_str).collect();
    for method in &methods {
        for name in PROTOTYPE_NAMES {
            runs.push(Run {
                name: format!("{method} with the active region {name:?} (a prototype name)"),
                method: method.clone(),
                active: Some(name.to_owned()),
                mode: "value",
                expected: api_route(method, Some(name), &region_refs)
                    .origins
                    .iter()
                    .map(|r| (*r).to_owned())
                    .collect(),
            });
        }
    }
    Ok(runs)
}

fn describe_store(run: &Run) -> String {
    match (&run.active, run.mode) {
        (Some(v), _) => format!("{ACTIVE_REGION_KEY}={v:?}"),
        (None, "missing") => "no key (get rejects)".to_owned(),
        (None, "throws") => "unreadable (get throws)".to_owned(),
        (None, _) => "get resolves to nothing".to_owned(),
    }
}

/// The regions a request would try, from what the function did: an origin group's members in
/// order, one selected origin, or (no call) the behavior's target, the primary.
fn tried(
    result: &Value,
    origin_regions: &BTreeMap<&str, &str>,
    primary: &str,
) -> anyhow::Result<Vec<String>> {
    if let Some(error) = result["error"].as_str() {
        bail!("the function failed: {error}");
    }
    ensure!(
        result["returnedRequest"] == Value::Bool(true),
        "the function did not return the request"
    );
    let gets: Vec<&str> = result["gets"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ensure!(
        gets == [ACTIVE_REGION_KEY],
        "the function read {gets:?} from the store, not {ACTIVE_REGION_KEY:?} once"
    );
    let region = |id: &Value| -> anyhow::Result<String> {
        // An origin group member is an id, or an object with `originId` (and overrides).
        let id = id
            .as_str()
            .or_else(|| id["originId"].as_str())
            .ok_or_else(|| anyhow!("an origin that is not an origin id: {id}"))?;
        origin_regions
            .get(id)
            .map(|r| (*r).to_owned())
            .ok_or_else(|| anyhow!("origin {id:?} is not one of the distribution's API origins"))
    };
    let calls = result["calls"].as_array().cloned().unwrap_or_default();
    match calls.as_slice() {
        [] => Ok(vec![primary.to_owned()]),
        [call] => match call["fn"].as_str() {
            Some("selectRequestOriginById") => Ok(vec![region(&call["originId"])?]),
            Some("createRequestOriginGroup") => {
                let params = &call["params"];
                let statuses = params["failoverCriteria"]["statusCodes"]
                    .as_array()
                    .map_or(0, Vec::len);
                ensure!(
                    statuses > 0,
                    "an origin group without failover status codes"
                );
                let members = params["originIds"]
                    .as_array()
                    .ok_or_else(|| anyhow!("an origin group without originIds"))?;
                ensure!(
                    members.len() == 2,
                    "an origin group of {} origins (CloudFront needs two)",
                    members.len()
                );
                members.iter().map(region).collect()
            }
            other => bail!("the function called {other:?}"),
        },
        more => bail!(
            "the function made {} origin calls; one at most is expected: {}",
            more.len(),
            Value::Array(more.to_vec())
        ),
    }
}

// ----------------------------------------------------------- the template --

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
fn parameter_defaults(template: &str) -> BTreeMap<String, String> {
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
fn function_code(
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

    #[test]
    fn the_origins_tried_follow_the_calls() {
        let map = BTreeMap::from([("api-primary", "p"), ("api-secondary", "s")]);
        let result = |calls: Value| json!({"calls": calls, "gets": [ACTIVE_REGION_KEY], "returnedRequest": true, "error": null});
        let tried = |calls: Value| tried(&result(calls), &map, "p");
        assert_eq!(tried(json!([])).unwrap(), ["p"]);
        assert_eq!(
            tried(json!([{"fn": "selectRequestOriginById", "originId": "api-secondary"}])).unwrap(),
            ["s"]
        );
        let group = |ids: Value| {
            json!([{"fn": "createRequestOriginGroup",
                    "params": {"originIds": ids, "failoverCriteria": {"statusCodes": [500]}}}])
        };
        assert_eq!(
            tried(group(json!([{"originId": "api-secondary"}, "api-primary"]))).unwrap(),
            ["s", "p"]
        );
        assert!(tried(group(json!(["api-primary"]))).is_err());
        assert!(tried(group(json!(["api-primary", "console-s3"]))).is_err());
        assert!(tried(json!([{"fn": "updateRequestOrigin"}])).is_err());
        let two = json!([{"fn": "selectRequestOriginById", "originId": "api-primary"},
                         {"fn": "selectRequestOriginById", "originId": "api-secondary"}]);
        assert!(tried(two).is_err());
        let failed = json!({"calls": [], "gets": [], "returnedRequest": false, "error": "boom"});
        assert!(super::tried(&failed, &map, "p").is_err());
        let unread = json!({"calls": [], "gets": [], "returnedRequest": true, "error": null});
        assert!(super::tried(&unread, &map, "p").is_err());
    }
}
