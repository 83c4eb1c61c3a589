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
//! Origin ids map back to regions the way the distribution pairs them. Every run also checks
//! the `x-tandem-active-region` header the function sets on the origin request (over a forged
//! one the viewer sent), which the regions echo and the health watcher reads.
//!
//! The fallbacks run too, for every case: the store read throwing (whatever it holds: the
//! primary, as for an absent value); the origin-group helper throwing (the request still goes
//! out: reads to the active region alone, marked `failover=off`); and every origin helper
//! throwing (the behavior's target, the primary, marked). Their expectations come from
//! `api_route`, the rule the table itself is checked against.
//!
//! What this does not show: that CloudFront's own runtime behaves like Node.js here (it runs a
//! subset of JavaScript; the code keeps to what its runtime 2.0 documents), and that the real
//! `cloudfront` module does what its documentation says. Those need a deployed distribution.

mod template;

use crate::util::{self, done, step};
use anyhow::{Context as _, anyhow, bail, ensure};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tandem_shared::headers::ACTIVE_REGION;
use tandem_shared::routing::{ACTIVE_REGION_KEY, Routed, api_route};
use template::{function_code, parameter_defaults};

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
const STAND_IN: &str = r#"// Stand-in for CloudFront Functions' `cloudfront` module (xtask/src/function/).
export const state = { key: null, active: null, mode: 'value', helpers: 'ok', calls: [], gets: [] };

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
    if (state.helpers === 'all-throw') {
      throw new Error('selectRequestOriginById refused');
    }
    state.calls.push({ fn: 'selectRequestOriginById', originId: originId });
  },
  createRequestOriginGroup(params) {
    if (state.helpers !== 'ok') {
      throw new Error('createRequestOriginGroup refused its argument');
    }
    state.calls.push({ fn: 'createRequestOriginGroup', params: params });
  },
  updateRequestOrigin(params) {
    state.calls.push({ fn: 'updateRequestOrigin', params: params });
  },
};

export default cf;
"#;

/// Runs every run in `runs.json` through the function and prints what it did, as JSON.
const HARNESS: &str = r#"// Runs the CloudFront function once per run in runs.json (xtask/src/function/).
import { readFileSync } from 'node:fs';
import { state } from './cloudfront.mjs';
import { handler } from './function.mjs';

const runs = JSON.parse(readFileSync('runs.json', 'utf8'));
const results = [];
for (const run of runs) {
  state.key = run.key;
  state.active = run.active;
  state.mode = run.mode;
  state.helpers = run.helpers;
  state.calls = [];
  state.gets = [];
  const request = {
    method: run.method,
    uri: '/api/items/parity',
    querystring: {},
    headers: {
      host: { value: 'd111111abcdef8.cloudfront.net' },
      // A viewer's own value, which the function must overwrite.
      [run.header]: { value: 'forged-by-the-viewer' },
    },
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
  const marked = request.headers[run.header];
  results.push({
    calls: state.calls,
    gets: state.gets,
    returnedRequest: same,
    error: error,
    header: marked && typeof marked.value === 'string' ? marked.value : null,
  });
}
process.stdout.write(JSON.stringify(results));
"#;

/// One run of the function: a method, the store's content, how the origin helpers behave, and
/// what it must do: the origins it tries and the header it sets.
#[derive(Debug, Clone)]
struct Run {
    name: String,
    method: String,
    /// The value under `active_region`, when there is one.
    active: Option<String>,
    /// How the store answers: `value`, or for an absent value `missing`, `throws`, `nothing`;
    /// `throws` with a value is a store that holds one but cannot be read.
    mode: &'static str,
    /// How the origin helpers behave: `ok`, `group-throws` (createRequestOriginGroup), or
    /// `all-throw` (selectRequestOriginById too).
    helpers: &'static str,
    expected: Vec<String>,
    /// The `x-tandem-active-region` value the origin request must carry.
    header: String,
}

/// The helper behaviours of the fallback runs, each with the store answering as the case says
/// and as a store that throws.
const FALLBACKS: [&str; 2] = ["group-throws", "all-throw"];

/// What the function must do for `method` when the store read gave `read` (what `get` resolved
/// to; `None` when it threw or rejected) and the helpers behave as `helpers`: the origins tried
/// and the header. The rule is `api_route`'s; a helper that throws leaves the request to the
/// active region alone, or to the behavior's target (the primary) when selecting it throws too.
fn expect(
    method: &str,
    read: Option<&str>,
    helpers: &str,
    regions: &[&str],
) -> (Vec<String>, String) {
    let route = api_route(method, read, regions);
    let primary = regions[0];
    let first = route.origins.first().copied().unwrap_or(primary);
    // Which helper the function calls: the group for reads, a selection for a write to the
    // secondary, none for a write to the primary.
    let calls_helper = route.fails_over() || first != primary;
    let (origins, failover_off) = match helpers {
        "group-throws" if route.fails_over() => (vec![first], true),
        "all-throw" if calls_helper => (vec![primary], true),
        _ => (route.origins.clone(), false),
    };
    let routed = Routed {
        active: read.filter(|r| regions.contains(r)).map(str::to_owned),
        failover_off,
    };
    (
        origins.iter().map(|r| (*r).to_owned()).collect(),
        routed.header_value(),
    )
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
        let header = result["header"].as_str();
        if result["error"].is_null() && header != Some(run.header.as_str()) {
            failures.push(format!(
                "{} [store: {}, helpers: {}]: the origin request carries {ACTIVE_REGION} {header:?}, \
                 not {:?}",
                run.name,
                describe_store(run),
                run.helpers,
                run.header
            ));
            continue;
        }
        match tried(result, &origin_regions, &regions[0]) {
            Ok(got) if got == run.expected => {}
            Ok(got) => failures.push(format!(
                "{} [store: {}, helpers: {}]: expected {:?}, the function tried {:?}",
                run.name,
                describe_store(run),
                run.helpers,
                run.expected,
                got
            )),
            Err(e) => failures.push(format!(
                "{} [store: {}, helpers: {}]: {e}",
                run.name,
                describe_store(run),
                run.helpers
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
         prototype names as unknown regions): every one routed as the table says, the origin \
         request marked {ACTIVE_REGION} over the viewer's value",
        runs.len(),
        PROTOTYPE_NAMES.len()
    );
    for line in fallback_lines(&runs) {
        println!("  {line}");
    }
    done(t);
    Ok(())
}

/// What the fallback runs showed, one line each.
fn fallback_lines(runs: &[Run]) -> Vec<String> {
    let count = |pick: &dyn Fn(&Run) -> bool| runs.iter().filter(|r| pick(r)).count();
    vec![
        format!(
            "store read throwing: {} runs, every one to the primary (reads still in an origin \
             group), none failed",
            count(&|r| r.mode == "throws" && r.helpers == "ok")
        ),
        format!(
            "createRequestOriginGroup throwing: {} runs, reads to the active region alone \
             marked failover=off, writes as usual, none failed",
            count(&|r| r.helpers == "group-throws")
        ),
        format!(
            "every origin helper throwing: {} runs, to the behavior's target (the primary), \
             marked failover=off where a helper was called, none failed",
            count(&|r| r.helpers == "all-throw")
        ),
    ]
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
                "helpers": r.helpers,
                "header": ACTIVE_REGION,
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
        let region_refs: Vec<&str> = regions.iter().map(String::as_str).collect();
        for mode in modes {
            let (_, header) = expect(&method, active.as_deref(), "ok", &region_refs);
            runs.push(Run {
                name: name.clone(),
                method: method.clone(),
                active: active.clone(),
                mode,
                helpers: "ok",
                expected: expected.clone(),
                header,
            });
        }
        // The fallbacks: a store that holds this value but cannot be read, and helpers that
        // throw with the store read as the case says and as that unreadable store.
        let mut fallbacks = Vec::new();
        if active.is_some() {
            fallbacks.push(("throws", "ok"));
        }
        for helpers in FALLBACKS {
            fallbacks.push((modes[0], helpers));
            fallbacks.push(("throws", helpers));
        }
        for (mode, helpers) in fallbacks {
            let read = if mode == "value" {
                active.as_deref()
            } else {
                None
            };
            let (expected, header) = expect(&method, read, helpers, &region_refs);
            runs.push(Run {
                name: name.clone(),
                method: method.clone(),
                active: active.clone(),
                mode,
                helpers,
                expected,
                header,
            });
        }
    }
    let region_refs: Vec<&str> = regions.iter().map(String::as_str).collect();
    for method in &methods {
        for name in PROTOTYPE_NAMES {
            let (expected, header) = expect(method, Some(name), "ok", &region_refs);
            runs.push(Run {
                name: format!("{method} with the active region {name:?} (a prototype name)"),
                method: method.clone(),
                active: Some(name.to_owned()),
                mode: "value",
                helpers: "ok",
                expected,
                header,
            });
        }
    }
    Ok(runs)
}

fn describe_store(run: &Run) -> String {
    match (&run.active, run.mode) {
        (Some(v), "throws") => format!("{ACTIVE_REGION_KEY}={v:?}, unreadable (get throws)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_throws_leaves_the_active_region_alone_or_the_primary() {
        let r = ["p", "s"];
        let want = |origins: &[&str], header: &str| {
            (
                origins.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>(),
                header.to_owned(),
            )
        };
        assert_eq!(expect("GET", Some("s"), "ok", &r), want(&["s", "p"], "s"));
        assert_eq!(
            expect("GET", Some("s"), "group-throws", &r),
            want(&["s"], "s; failover=off")
        );
        assert_eq!(
            expect("GET", None, "group-throws", &r),
            want(&["p"], "none; failover=off")
        );
        assert_eq!(
            expect("GET", Some("s"), "all-throw", &r),
            want(&["p"], "s; failover=off")
        );
        // Writes never call the group helper; a selection is called only for the secondary.
        assert_eq!(
            expect("PUT", Some("s"), "group-throws", &r),
            want(&["s"], "s")
        );
        assert_eq!(
            expect("PUT", Some("s"), "all-throw", &r),
            want(&["p"], "s; failover=off")
        );
        assert_eq!(expect("PUT", Some("p"), "all-throw", &r), want(&["p"], "p"));
        // A value naming no region routes, and is marked, as none.
        assert_eq!(
            expect("GET", Some("x"), "ok", &r),
            want(&["p", "s"], "none")
        );
    }

    /// The step itself, as `cargo xtask test` runs it: `cargo test -p xtask -- --ignored
    /// routes_as_the_table_says` (it needs Node.js 18 or later on PATH).
    #[test]
    #[ignore = "needs Node.js; a step of cargo xtask test"]
    fn the_router_function_routes_as_the_table_says() {
        run().unwrap();
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
