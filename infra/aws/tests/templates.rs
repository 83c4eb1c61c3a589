//! Invariants of the CloudFormation templates in `infra/aws/cloudformation/`.
//!
//! The templates use long-form intrinsics only (`Ref:`, `Fn::Sub:`, ...), so
//! they parse as plain YAML here. These tests pin what the product depends
//! on: how the edge fails over, that the API is never cached, that every API
//! origin is cloaked, that IAM stays least-privilege, that the console bucket
//! is private, and the shape of the table and the function. `cfn-lint` and
//! `checkov` check the rest (see infra/aws/cloudformation/README.md).
//!
//! What the templates share with the rest of Tandem (the failover statuses,
//! the edge timings, header names, the security headers, the default regions
//! and names) is imported from the crates that define it, never repeated
//! here: the templates, the local edge and `tandem deploy` cannot drift apart
//! unnoticed.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use tandem_aws::deploy::{DEFAULT_SECRET_NAME, DEFAULT_TABLE_NAME};
use tandem_aws::names::{
    CONSISTENCY_PARAMETER, DEFAULT_WITNESS_REGION, KVS_ARN_OUTPUT, WITNESS_PARAMETER,
};
use tandem_shared::control::{
    DEFAULT_CONNECTION_ATTEMPTS, DEFAULT_CONNECTION_TIMEOUT_S, DEFAULT_ORIGIN_READ_TIMEOUT_S,
    FAILOVER_STATUSES, FUNCTION_TIMEOUT_S,
};
use tandem_shared::headers::{
    ACTIVE_REGION, CONSOLE_CSP, HSTS_MAX_AGE_S, ORIGIN_VERIFY, SECURITY_HEADERS,
};
use tandem_shared::region::{MRSC_REGION_SETS, PRIMARY, SECONDARY};
use tandem_shared::routing::{ACTIVE_REGION_KEY, FAILOVER_OFF, NO_ACTIVE_REGION};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cloudformation/data.yaml");
const REGION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cloudformation/region.yaml");
const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cloudformation/edge.yaml");
const FIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cloudformation/fis.yaml");
const WATCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cloudformation/watcher.yaml");
const ALL: [&str; 5] = [DATA, REGION, EDGE, FIS, WATCHER];

/// Managed cache and origin-request policies (ids are global constants).
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

const ALL_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
/// CloudFront only fails over these, and only allows these on a behavior
/// that targets an origin group.
const FAILOVER_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

const PRIMARY_ORIGIN: &str = "api-primary";
const SECONDARY_ORIGIN: &str = "api-secondary";
const ORIGIN_GROUP: &str = "api-failover";

// ---------------------------------------------------------------- helpers --

/// The statuses the edge fails over on, and on nothing else (contract §6.2), as YAML
/// numbers.
fn failover_statuses() -> Vec<u64> {
    FAILOVER_STATUSES.iter().map(|&s| u64::from(s)).collect()
}

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path} is not plain YAML: {e}"))
}

fn short(v: &Value) -> String {
    serde_norway::to_string(v)
        .unwrap_or_default()
        .chars()
        .take(400)
        .collect()
}

/// `v[key]`, with a readable panic when the key is absent.
fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("missing key {key:?} in:\n{}", short(v)))
}

fn at<'a>(v: &'a Value, keys: &[&str]) -> &'a Value {
    keys.iter().fold(v, |acc, key| field(acc, key))
}

fn str_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got:\n{}", short(v)))
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got:\n{}", short(v)))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an unsigned number, got:\n{}", short(v)))
}

/// A list, or a single value treated as a one-element list (IAM allows both).
fn one_or_many(v: &Value) -> Vec<&Value> {
    match v.as_sequence() {
        Some(items) => items.iter().collect(),
        None => vec![v],
    }
}

fn ref_to(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str)
}

/// A literal string, or the template string of an `Fn::Sub`.
fn text_of(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    match v.get("Fn::Sub") {
        Some(sub) if sub.is_string() => str_of(sub).to_owned(),
        Some(sub) => str_of(&seq(sub)[0]).to_owned(),
        None => panic!("expected a string or Fn::Sub, got:\n{}", short(v)),
    }
}

/// `Fn::If: [condition, then, else]`.
fn if_branches(v: &Value) -> (&str, &Value, &Value) {
    let parts = seq(field(v, "Fn::If"));
    assert_eq!(parts.len(), 3, "Fn::If needs three parts: {}", short(v));
    (str_of(&parts[0]), &parts[1], &parts[2])
}

/// Every string scalar inside `v` (values only, not mapping keys).
fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|x| strings_in(x, out)),
        Value::Mapping(map) => map.values().for_each(|x| strings_in(x, out)),
        Value::Tagged(tagged) => strings_in(&tagged.value, out),
        _ => {}
    }
}

fn contains_key_anywhere(v: &Value, key: &str) -> bool {
    match v {
        Value::Sequence(items) => items.iter().any(|x| contains_key_anywhere(x, key)),
        Value::Mapping(map) => map
            .iter()
            .any(|(k, x)| k.as_str() == Some(key) || contains_key_anywhere(x, key)),
        Value::Tagged(tagged) => contains_key_anywhere(&tagged.value, key),
        _ => false,
    }
}

fn has_tag(v: &Value) -> bool {
    match v {
        Value::Tagged(_) => true,
        Value::Sequence(items) => items.iter().any(has_tag),
        Value::Mapping(map) => map.iter().any(|(k, x)| has_tag(k) || has_tag(x)),
        _ => false,
    }
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    at(template, &["Resources", name])
}

fn props<'a>(template: &'a Value, name: &str) -> &'a Value {
    at(template, &["Resources", name, "Properties"])
}

fn resources_of_type<'a>(template: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    field(template, "Resources")
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(name, r)| (str_of(name), r))
        .collect()
}

fn param<'a>(template: &'a Value, name: &str) -> &'a Value {
    at(template, &["Parameters", name])
}

fn param_default_u64(template: &Value, name: &str) -> u64 {
    u64_of(field(param(template, name), "Default"))
}

fn string_set<'a>(items: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    items.into_iter().map(|v| str_of(v).to_owned()).collect()
}

fn method_set(v: &Value) -> BTreeSet<String> {
    string_set(seq(v))
}

/// Every action that `statements` ([`iam_statements`]) allow.
fn actions_of(statements: &[(String, &Value)]) -> BTreeSet<String> {
    string_set(
        statements
            .iter()
            .flat_map(|(_, s)| one_or_many(field(s, "Action"))),
    )
}

fn expected_set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn distribution_config(edge: &Value) -> &Value {
    field(props(edge, "Distribution"), "DistributionConfig")
}

/// The numbers in the first `[...]` after `marker` in some JavaScript.
fn js_numbers_after(code: &str, marker: &str) -> Vec<u64> {
    let start = code
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not found in function code"));
    let rest = &code[start..];
    let open = rest.find('[').expect("a [ after the marker");
    let close = rest.find(']').expect("a ] after the marker");
    rest[open + 1..close]
        .split(',')
        .map(|n| n.trim().parse::<u64>().expect("a status code"))
        .collect()
}

/// The quoted strings in the first `[...]` after `marker` in some JavaScript.
fn js_strings_after(code: &str, marker: &str) -> Vec<String> {
    let start = code
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not found in function code"));
    let rest = &code[start + marker.len()..];
    let close = rest.find(']').expect("a ] after the marker");
    rest[..close]
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `(resource name, statement)` for every statement of every IAM identity
/// policy in a template (role inline policies, policies, role policies).
/// Trust policies and resource policies (bucket policies) are not included.
fn iam_statements(template: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (name, r) in field(template, "Resources")
        .as_mapping()
        .expect("Resources is a mapping")
    {
        let name = str_of(name);
        let properties = r.get("Properties");
        let documents: Vec<&Value> = match r.get("Type").and_then(Value::as_str) {
            Some("AWS::IAM::Role") => properties
                .and_then(|p| p.get("Policies"))
                .map(|ps| seq(ps).iter().map(|p| field(p, "PolicyDocument")).collect())
                .unwrap_or_default(),
            Some(
                "AWS::IAM::Policy"
                | "AWS::IAM::ManagedPolicy"
                | "AWS::IAM::RolePolicy"
                | "AWS::IAM::UserPolicy"
                | "AWS::IAM::GroupPolicy",
            ) => vec![field(
                properties.expect("IAM policy properties"),
                "PolicyDocument",
            )],
            _ => Vec::new(),
        };
        for document in documents {
            for statement in one_or_many(field(document, "Statement")) {
                out.push((name.to_owned(), statement));
            }
        }
    }
    out
}

/// `template` with every `${name}` replaced by `values[name]`, as `Fn::Sub` would; panics on
/// a name `values` lacks.
fn substitute(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').expect("a closing }");
        let name = &after[..end];
        let value = values
            .get(name)
            .unwrap_or_else(|| panic!("no value for ${{{name}}}"));
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// An alarm's (or a metric list's) `Dimensions`, by name.
fn dimensions(properties: &Value) -> BTreeMap<&str, &Value> {
    seq(field(properties, "Dimensions"))
        .iter()
        .map(|d| (str_of(field(d, "Name")), field(d, "Value")))
        .collect()
}

/// `Namespace/MetricName` of what an alarm watches (with metric math, every metric it reads).
fn alarm_metrics(alarm: &Value) -> Vec<String> {
    let properties = field(alarm, "Properties");
    let name = |m: &Value| {
        format!(
            "{}/{}",
            str_of(field(m, "Namespace")),
            str_of(field(m, "MetricName"))
        )
    };
    match properties.get("Metrics") {
        Some(metrics) => seq(metrics)
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .map(|stat| name(field(stat, "Metric")))
            .collect(),
        None => vec![name(properties)],
    }
}

/// The logical ids every `Fn::GetAtt` inside `v` reads.
fn get_att_targets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(map) => {
            for (key, x) in map {
                if key.as_str() == Some("Fn::GetAtt") {
                    out.push(str_of(&seq(x)[0]).to_owned());
                } else {
                    get_att_targets(x, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|x| get_att_targets(x, out)),
        Value::Tagged(tagged) => get_att_targets(&tagged.value, out),
        _ => {}
    }
}

// ------------------------------------------------------------------ tests --

#[test]
fn templates_parse_as_plain_yaml_without_short_form_tags() {
    for path in ALL {
        let template = load(path);
        assert_eq!(
            str_of(field(&template, "AWSTemplateFormatVersion")),
            "2010-09-09",
            "{path}"
        );
        assert!(
            !field(&template, "Resources")
                .as_mapping()
                .expect("Resources")
                .is_empty(),
            "{path} has no resources"
        );
        assert!(
            !has_tag(&template),
            "{path} uses a YAML tag (short-form intrinsic such as !Ref); use the long form"
        );
    }
}

#[test]
fn origin_group_fails_over_only_on_the_failover_statuses() {
    let edge = load(EDGE);
    let groups = at(distribution_config(&edge), &["OriginGroups"]);
    let items = seq(field(groups, "Items"));
    assert_eq!(items.len(), 1, "exactly one origin group");
    assert_eq!(u64_of(field(groups, "Quantity")), 1);

    let group = &items[0];
    assert_eq!(str_of(field(group, "Id")), ORIGIN_GROUP);
    let codes = at(group, &["FailoverCriteria", "StatusCodes"]);
    let listed: Vec<u64> = seq(field(codes, "Items")).iter().map(u64_of).collect();
    assert_eq!(listed, failover_statuses(), "failover set");
    assert_eq!(
        u64_of(field(codes, "Quantity")),
        FAILOVER_STATUSES.len() as u64
    );

    let members = field(group, "Members");
    let order: Vec<&str> = seq(field(members, "Items"))
        .iter()
        .map(|m| str_of(field(m, "OriginId")))
        .collect();
    assert_eq!(order, [PRIMARY_ORIGIN, SECONDARY_ORIGIN], "primary first");
    assert_eq!(u64_of(field(members, "Quantity")), 2);

    // The per-request origin group of the API router function must be the
    // same group: same order, same failover set, same methods.
    // (Which of the two it tries first is the active region's business: see
    // active_region_store_feeds_the_api_router below.)
    let code = text_of(field(props(&edge, "ApiRouterFunction"), "FunctionCode"));
    let code = code.as_str();
    assert_eq!(js_numbers_after(code, "statusCodes:"), failover_statuses());
    assert_eq!(
        js_strings_after(code, "ORIGINS = ["),
        [PRIMARY_ORIGIN, SECONDARY_ORIGIN],
        "the router's origins, in the order of its regions"
    );
    let methods_start = code
        .find("FAILOVER_METHODS = {")
        .expect("router lists its failover methods");
    let methods_end = methods_start + code[methods_start..].find('}').expect("closing brace");
    let methods: BTreeSet<String> = code[methods_start + "FAILOVER_METHODS = {".len()..methods_end]
        .split(',')
        .map(|entry| {
            entry
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .filter(|m| !m.is_empty())
        .collect();
    assert_eq!(methods, expected_set(&FAILOVER_METHODS));
    assert!(code.contains("cf.createRequestOriginGroup("));
    assert_eq!(
        str_of(at(
            props(&edge, "ApiRouterFunction"),
            &["FunctionConfig", "Runtime"]
        )),
        "cloudfront-js-2.0",
        "import cf from 'cloudfront' needs runtime 2.0"
    );
}

/// Contract §6.3 on AWS: one KeyValueStore, associated with the `/api/*` router
/// and with nothing else, whose key the router reads with CloudFront's KVS
/// helper; regions paired with origins by the template's own parameters;
/// the store's ARN an output for `tandem failover`. (How the code routes is
/// run in Node.js by `cargo xtask test`, xtask/src/function/.)
#[test]
fn active_region_store_feeds_the_api_router() {
    let edge = load(EDGE);
    let stores = resources_of_type(&edge, "AWS::CloudFront::KeyValueStore");
    assert_eq!(stores.len(), 1, "one store");
    let (store, resource) = stores[0];
    assert_eq!(store, "ActiveRegionStore");
    let name = text_of(at(resource, &["Properties", "Name"]));
    assert!(
        name.starts_with("${AWS::StackName}-"),
        "one store per stack: {name}"
    );
    assert!(
        at(resource, &["Properties"]).get("ImportSource").is_none(),
        "created empty: no key is the primary"
    );

    // Associated with the router, and only with it.
    let associations_of = |function: &str| {
        props(&edge, function)
            .get("FunctionConfig")
            .and_then(|c| c.get("KeyValueStoreAssociations"))
            .map(|a| {
                seq(a)
                    .iter()
                    .map(|a| seq(field(field(a, "KeyValueStoreARN"), "Fn::GetAtt")).to_vec())
                    .collect::<Vec<_>>()
            })
    };
    for (function, _) in resources_of_type(&edge, "AWS::CloudFront::Function") {
        let associations = associations_of(function);
        if function == "ApiRouterFunction" {
            let associations = associations.expect("the router reads the store");
            assert_eq!(associations.len(), 1);
            let target: Vec<&str> = associations[0].iter().map(str_of).collect();
            assert_eq!(target, [store, "Arn"]);
        } else {
            assert!(
                associations.is_none(),
                "{function} has no use for the store"
            );
        }
    }

    // The code reads the key the rest of Tandem uses, the documented way.
    let code = text_of(field(props(&edge, "ApiRouterFunction"), "FunctionCode"));
    assert!(
        code.contains(&format!("'{ACTIVE_REGION_KEY}'")),
        "the router must read key {ACTIVE_REGION_KEY}"
    );
    for needle in [
        "import cf from 'cloudfront';",
        "cf.kvs()",
        "async function handler(event)",
        "await kvs.get(",
        "try {",
        "catch (",
        "cf.selectRequestOriginById(",
        "cf.createRequestOriginGroup(",
    ] {
        assert!(code.contains(needle), "router code lacks {needle:?}");
    }
    // It marks the origin request with what it routed by, in the form the regions echo and
    // the health watcher reads (tandem_shared::routing::Routed).
    for needle in [
        format!("'{ACTIVE_REGION}'"),
        format!("'{NO_ACTIVE_REGION}'"),
        format!("'; {FAILOVER_OFF}'"),
        "request.headers[ACTIVE_HEADER] = { value: routed };".to_owned(),
    ] {
        assert!(code.contains(&needle), "router code lacks {needle:?}");
    }
    // Regions come from the parameters, paired index for index with the
    // origins, which serve those regions' APIs.
    assert_eq!(
        js_strings_after(&code, "REGIONS = ["),
        ["${PrimaryRegion}", "${SecondaryRegion}"]
    );
    let origins = seq(field(distribution_config(&edge), "Origins"));
    for (origin, domain) in [
        (PRIMARY_ORIGIN, "PrimaryApiDomain"),
        (SECONDARY_ORIGIN, "SecondaryApiDomain"),
    ] {
        let o = origins
            .iter()
            .find(|o| str_of(field(o, "Id")) == origin)
            .expect("API origin");
        assert_eq!(ref_to(field(o, "DomainName")), Some(domain), "{origin}");
    }
    // Fn::Sub substitutes only those two (a JavaScript `${` would break it).
    let substituted: BTreeSet<&str> = code
        .split("${")
        .skip(1)
        .map(|rest| rest.split_once('}').expect("a closing }").0)
        .collect();
    assert_eq!(
        substituted,
        BTreeSet::from(["PrimaryRegion", "SecondaryRegion"])
    );

    // `tandem failover` finds the store through this output.
    let output = at(&edge, &["Outputs", KVS_ARN_OUTPUT, "Value", "Fn::GetAtt"]);
    let output: Vec<&str> = seq(output).iter().map(str_of).collect();
    assert_eq!(output, [store, "Arn"]);
}

#[test]
fn every_api_behavior_disables_caching() {
    let edge = load(EDGE);
    let config = distribution_config(&edge);
    let behaviors = seq(field(config, "CacheBehaviors"));
    let patterns: Vec<String> = behaviors
        .iter()
        .map(|b| text_of(field(b, "PathPattern")))
        .collect();
    // First match wins: the region-pinned paths must come before /api/*.
    assert_eq!(
        patterns,
        [
            "/region/${PrimaryRegion}/api/*",
            "/region/${SecondaryRegion}/api/*",
            "/api/*"
        ]
    );

    let api: Vec<&Value> = behaviors
        .iter()
        .filter(|b| text_of(field(b, "PathPattern")).contains("/api/"))
        .collect();
    assert_eq!(api.len(), 3);
    for behavior in api {
        let pattern = text_of(field(behavior, "PathPattern"));
        assert_eq!(
            str_of(field(behavior, "CachePolicyId")),
            CACHING_DISABLED,
            "{pattern}"
        );
        assert_eq!(
            str_of(field(behavior, "OriginRequestPolicyId")),
            ALL_VIEWER_EXCEPT_HOST_HEADER,
            "{pattern}: API Gateway must get its own Host header"
        );
        assert_eq!(
            ref_to(field(behavior, "ResponseHeadersPolicyId")),
            Some("SecurityHeadersPolicy"),
            "{pattern}"
        );
        assert_eq!(
            str_of(field(behavior, "ViewerProtocolPolicy")),
            "redirect-to-https"
        );
    }

    // Region-pinned behaviors: one region, every method, prefix stripped.
    for (behavior, origin) in [
        (&behaviors[0], PRIMARY_ORIGIN),
        (&behaviors[1], SECONDARY_ORIGIN),
    ] {
        assert_eq!(str_of(field(behavior, "TargetOriginId")), origin);
        assert_eq!(
            method_set(field(behavior, "AllowedMethods")),
            expected_set(&ALL_METHODS)
        );
        let association = &seq(field(behavior, "FunctionAssociations"))[0];
        assert_eq!(str_of(field(association, "EventType")), "viewer-request");
        assert_eq!(
            str_of(&seq(field(field(association, "FunctionARN"), "Fn::GetAtt"))[0]),
            "RegionPrefixFunction"
        );
    }

    // /api/*: either the primary with all methods and the router function,
    // or the static origin group with GET/HEAD/OPTIONS only (CloudFront
    // rejects write methods on a behavior that targets an origin group).
    let api_all = &behaviors[2];
    let (condition, via_function, via_group) = if_branches(field(api_all, "TargetOriginId"));
    assert_eq!(condition, "ApiViaFunction");
    assert_eq!(str_of(via_function), PRIMARY_ORIGIN);
    assert_eq!(str_of(via_group), ORIGIN_GROUP);
    let (condition, methods_function, methods_group) =
        if_branches(field(api_all, "AllowedMethods"));
    assert_eq!(condition, "ApiViaFunction");
    assert_eq!(method_set(methods_function), expected_set(&ALL_METHODS));
    assert_eq!(method_set(methods_group), expected_set(&FAILOVER_METHODS));
    let (condition, functions, no_function) = if_branches(field(api_all, "FunctionAssociations"));
    assert_eq!(condition, "ApiViaFunction");
    let router = &seq(functions)[0];
    assert_eq!(str_of(field(router, "EventType")), "viewer-request");
    assert_eq!(
        str_of(&seq(field(field(router, "FunctionARN"), "Fn::GetAtt"))[0]),
        "ApiRouterFunction"
    );
    assert_eq!(ref_to(no_function), Some("AWS::NoValue"));
    let mode = at(&edge, &["Conditions", "ApiViaFunction", "Fn::Equals"]);
    assert_eq!(ref_to(&seq(mode)[0]), Some("ApiFailoverMode"));
    assert_eq!(str_of(&seq(mode)[1]), "function");
    assert_eq!(
        str_of(field(param(&edge, "ApiFailoverMode"), "Default")),
        "function"
    );

    // The console is the only cached content.
    let default = field(config, "DefaultCacheBehavior");
    assert_eq!(str_of(field(default, "TargetOriginId")), "console-s3");
    assert_eq!(str_of(field(default, "CachePolicyId")), CACHING_OPTIMIZED);
    assert_eq!(
        ref_to(field(default, "ResponseHeadersPolicyId")),
        Some("SecurityHeadersPolicy")
    );
}

#[test]
fn every_api_origin_sends_x_origin_verify_from_secrets_manager() {
    let edge = load(EDGE);
    let origins = seq(field(distribution_config(&edge), "Origins"));
    let api: Vec<&Value> = origins
        .iter()
        .filter(|o| o.get("CustomOriginConfig").is_some())
        .collect();
    let ids: Vec<&str> = api.iter().map(|o| str_of(field(o, "Id"))).collect();
    assert_eq!(ids, [PRIMARY_ORIGIN, SECONDARY_ORIGIN]);

    let mut values = Vec::new();
    for origin in api {
        let id = str_of(field(origin, "Id"));
        let headers: Vec<&Value> = seq(field(origin, "OriginCustomHeaders"))
            .iter()
            .filter(|h| str_of(field(h, "HeaderName")).eq_ignore_ascii_case(ORIGIN_VERIFY))
            .collect();
        assert_eq!(headers.len(), 1, "{id}: one {ORIGIN_VERIFY} header");
        // A Secrets Manager dynamic reference: pinned to OriginSecretVersionId when it is set
        // (version stage left empty, version id last), else the AWSCURRENT version.
        let value = field(headers[0], "HeaderValue");
        let (condition, pinned, current) = if_branches(value);
        assert_eq!(condition, "HasOriginSecretVersion", "{id}");
        assert_eq!(
            text_of(pinned),
            "{{resolve:secretsmanager:${SecretName}:SecretString:origin_secret::${OriginSecretVersionId}}}",
            "{id}"
        );
        assert_eq!(
            text_of(current),
            "{{resolve:secretsmanager:${SecretName}:SecretString:origin_secret}}",
            "{id}"
        );
        values.push(value);

        let custom = field(origin, "CustomOriginConfig");
        assert_eq!(
            str_of(field(custom, "OriginProtocolPolicy")),
            "https-only",
            "{id}"
        );
        assert_eq!(
            string_set(seq(field(custom, "OriginSSLProtocols"))),
            expected_set(&["TLSv1.2"])
        );
        assert_eq!(
            ref_to(field(origin, "ConnectionAttempts")),
            Some("ConnectionAttempts")
        );
        assert_eq!(
            ref_to(field(origin, "ConnectionTimeout")),
            Some("ConnectionTimeout")
        );
        assert_eq!(
            ref_to(field(custom, "OriginReadTimeout")),
            Some("OriginReadTimeout")
        );
    }
    // Both origins send the same value (a rotation switches them together).
    assert_eq!(
        values[0], values[1],
        "the two x-origin-verify values differ"
    );
    let version = seq(at(
        &edge,
        &["Conditions", "HasOriginSecretVersion", "Fn::Not"],
    ));
    let equals = seq(field(&version[0], "Fn::Equals"));
    assert_eq!(ref_to(&equals[0]), Some("OriginSecretVersionId"));
    assert_eq!(str_of(&equals[1]), "");
    assert_eq!(
        str_of(field(param(&edge, "OriginSecretVersionId"), "Default")),
        "",
        "a stack made by hand sends the AWSCURRENT value"
    );
}

#[test]
fn edge_timing_defaults_fail_over_fast_and_stay_in_range() {
    let edge = load(EDGE);
    // Attempts and the connect timeout: a default, and the range CloudFront accepts.
    for (name, default, range) in [
        ("ConnectionAttempts", DEFAULT_CONNECTION_ATTEMPTS, (1, 3)),
        ("ConnectionTimeout", DEFAULT_CONNECTION_TIMEOUT_S, (1, 10)),
    ] {
        let p = param(&edge, name);
        assert_eq!(u64_of(field(p, "Default")), u64::from(default), "{name}");
        assert_eq!(
            (u64_of(field(p, "MinValue")), u64_of(field(p, "MaxValue"))),
            range,
            "{name}"
        );
    }
    let read = param(&edge, "OriginReadTimeout");
    assert_eq!(
        u64_of(field(read, "Default")),
        u64::from(DEFAULT_ORIGIN_READ_TIMEOUT_S)
    );
    assert!(u64_of(field(read, "MinValue")) >= 1);

    // Attempts x timeout is what an unreachable primary costs before the
    // secondary is asked: at most 2 s.
    assert!(
        param_default_u64(&edge, "ConnectionAttempts")
            * param_default_u64(&edge, "ConnectionTimeout")
            <= 2
    );
    // The function's timeout is the origin read timeout: once CloudFront has given up on a
    // request (and failed a read over), no instance is still busy with it. `tandem deploy`
    // passes FUNCTION_TIMEOUT_S; the default is the same figure.
    let region = load(REGION);
    assert_eq!(
        param_default_u64(&region, "TimeoutSeconds"),
        param_default_u64(&edge, "OriginReadTimeout")
    );
    assert_eq!(
        param_default_u64(&region, "TimeoutSeconds"),
        u64::from(FUNCTION_TIMEOUT_S)
    );
    assert_eq!(
        ref_to(field(props(&region, "Function"), "Timeout")),
        Some("TimeoutSeconds")
    );
    // Below the HTTP API's 30 s integration timeout, which then never binds.
    assert!(u64_of(field(param(&region, "TimeoutSeconds"), "MaxValue")) < 30);
}

#[test]
fn iam_policies_have_no_wildcard_actions_or_resources() {
    let mut statements = 0;
    for path in ALL {
        let template = load(path);
        for (name, statement) in iam_statements(&template) {
            statements += 1;
            assert_eq!(str_of(field(statement, "Effect")), "Allow", "{path} {name}");
            assert!(
                statement.get("NotAction").is_none(),
                "{path} {name}: NotAction"
            );
            assert!(
                statement.get("NotResource").is_none(),
                "{path} {name}: NotResource"
            );
            for action in one_or_many(field(statement, "Action")) {
                let action = str_of(action);
                assert!(
                    !action.contains('*'),
                    "{path} {name}: wildcard action {action}"
                );
            }
            let mut resources = Vec::new();
            strings_in(field(statement, "Resource"), &mut resources);
            assert!(!resources.is_empty(), "{path} {name}: no resource");
            for r in resources {
                if !r.contains('*') {
                    continue;
                }
                let single = r.matches('*').count() == 1;
                // The log streams of one named log group.
                let log_streams = r.contains(":log-group:") && r.ends_with(":*") && single;
                // Fault configs FIS writes under a prefix of its own bucket
                // (fis.yaml only; object names are chosen by FIS).
                let fis_prefix = path == FIS && r.ends_with("/FisConfigs/*") && single;
                assert!(
                    log_streams || fis_prefix,
                    "{path} {name}: wildcard resource {r}"
                );
            }
        }
    }
    assert!(statements >= 6, "found only {statements} IAM statements");
}

#[test]
fn function_role_grants_exactly_what_the_api_needs() {
    let region = load(REGION);
    let role = props(&region, "FunctionRole");
    assert!(
        role.get("ManagedPolicyArns").is_none(),
        "no managed policies"
    );
    let statements = iam_statements(&region);
    let actions = actions_of(&statements);
    assert_eq!(
        actions,
        expected_set(&[
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
        ])
    );
    for (_, statement) in &statements {
        let action = str_of(one_or_many(field(statement, "Action"))[0]);
        let resource = text_of(field(statement, "Resource"));
        let expected = match action.split(':').next() {
            Some("dynamodb") => {
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}"
            }
            Some("secretsmanager") => {
                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretName}-??????"
            }
            Some("logs") => {
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${FunctionLogGroup}:*"
            }
            other => panic!("unexpected service {other:?}"),
        };
        assert_eq!(resource, expected, "{action}");
    }
}

#[test]
fn buckets_block_public_access_and_enforce_bucket_owner() {
    let mut buckets = 0;
    for path in ALL {
        let template = load(path);
        for (name, bucket) in resources_of_type(&template, "AWS::S3::Bucket") {
            buckets += 1;
            let properties = field(bucket, "Properties");
            let block = field(properties, "PublicAccessBlockConfiguration");
            for key in [
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            ] {
                assert_eq!(
                    field(block, key).as_bool(),
                    Some(true),
                    "{path} {name}: {key}"
                );
            }
            let ownership: Vec<&str> = seq(at(properties, &["OwnershipControls", "Rules"]))
                .iter()
                .map(|r| str_of(field(r, "ObjectOwnership")))
                .collect();
            assert_eq!(ownership, ["BucketOwnerEnforced"], "{path} {name}");
            let encryption = &seq(at(
                properties,
                &["BucketEncryption", "ServerSideEncryptionConfiguration"],
            ))[0];
            assert_eq!(
                str_of(at(
                    encryption,
                    &["ServerSideEncryptionByDefault", "SSEAlgorithm"]
                )),
                "AES256",
                "{path} {name}: SSE-S3"
            );
            assert!(
                properties.get("WebsiteConfiguration").is_none(),
                "{path} {name}"
            );
            assert!(properties.get("AccessControl").is_none(), "{path} {name}");
        }
    }
    assert!(buckets >= 1);

    // Only this distribution may read the console, and only GetObject.
    let edge = load(EDGE);
    let policy = field(props(&edge, "ConsoleBucketPolicy"), "PolicyDocument");
    let allows: Vec<&Value> = one_or_many(field(policy, "Statement"))
        .into_iter()
        .filter(|s| str_of(field(s, "Effect")) == "Allow")
        .collect();
    assert_eq!(allows.len(), 1);
    let allow = allows[0];
    assert_eq!(
        str_of(at(allow, &["Principal", "Service"])),
        "cloudfront.amazonaws.com"
    );
    let actions: Vec<&str> = one_or_many(field(allow, "Action"))
        .into_iter()
        .map(str_of)
        .collect();
    assert_eq!(actions, ["s3:GetObject"]);
    let source = text_of(at(allow, &["Condition", "StringEquals", "AWS:SourceArn"]));
    assert!(
        source.ends_with(":distribution/${Distribution}"),
        "{source}"
    );

    let oac = at(
        props(&edge, "ConsoleOriginAccessControl"),
        &["OriginAccessControlConfig"],
    );
    assert_eq!(str_of(field(oac, "OriginAccessControlOriginType")), "s3");
    assert_eq!(str_of(field(oac, "SigningBehavior")), "always");
    assert_eq!(str_of(field(oac, "SigningProtocol")), "sigv4");
    let s3_origin = seq(field(distribution_config(&edge), "Origins"))
        .iter()
        .find(|o| str_of(field(o, "Id")) == "console-s3")
        .expect("console origin");
    assert_eq!(
        str_of(
            &seq(field(
                field(s3_origin, "OriginAccessControlId"),
                "Fn::GetAtt"
            ))[0]
        ),
        "ConsoleOriginAccessControl"
    );
    assert_eq!(
        str_of(at(s3_origin, &["S3OriginConfig", "OriginAccessIdentity"])),
        ""
    );
}

#[test]
fn global_table_has_both_replicas() {
    let data = load(DATA);
    let table = resource(&data, "ItemsTable");
    assert_eq!(str_of(field(table, "Type")), "AWS::DynamoDB::GlobalTable");
    assert_eq!(str_of(field(table, "DeletionPolicy")), "Retain");
    let properties = field(table, "Properties");

    let replicas = seq(field(properties, "Replicas"));
    let regions: Vec<&str> = replicas
        .iter()
        .map(|r| ref_to(field(r, "Region")).expect("Region is a parameter"))
        .collect();
    assert_eq!(regions, ["PrimaryRegion", "SecondaryRegion"]);
    for replica in replicas {
        assert_eq!(
            at(
                replica,
                &[
                    "PointInTimeRecoverySpecification",
                    "PointInTimeRecoveryEnabled"
                ]
            )
            .as_bool(),
            Some(true)
        );
        assert_eq!(
            field(replica, "DeletionProtectionEnabled").as_bool(),
            Some(true)
        );
    }

    let keys = seq(field(properties, "KeySchema"));
    assert_eq!(keys.len(), 1, "partition key only");
    assert_eq!(str_of(field(&keys[0], "AttributeName")), "id");
    assert_eq!(str_of(field(&keys[0], "KeyType")), "HASH");
    let attributes = seq(field(properties, "AttributeDefinitions"));
    assert_eq!(attributes.len(), 1);
    assert_eq!(str_of(field(&attributes[0], "AttributeType")), "S");
    assert_eq!(str_of(field(properties, "BillingMode")), "PAY_PER_REQUEST");
    assert_eq!(
        str_of(at(properties, &["StreamSpecification", "StreamViewType"])),
        "NEW_AND_OLD_IMAGES"
    );
    assert_eq!(
        at(properties, &["SSESpecification", "SSEEnabled"]).as_bool(),
        Some(true)
    );
}

/// Contract §10 on AWS: the one parameter that makes the table strongly consistent (MRSC)
/// with a witness, off by default; the Region sets its rule allows are the ones deploy checks
/// ([`MRSC_REGION_SETS`]); and the function is told the table's mode.
#[test]
fn strong_consistency_is_mrsc_with_a_witness_behind_one_parameter() {
    let data = load(DATA);
    let consistency = param(&data, CONSISTENCY_PARAMETER);
    assert_eq!(str_of(field(consistency, "Default")), "eventual");
    assert_eq!(
        string_set(seq(field(consistency, "AllowedValues"))),
        expected_set(&["eventual", "strong"])
    );
    assert_eq!(
        str_of(field(param(&data, WITNESS_PARAMETER), "Default")),
        DEFAULT_WITNESS_REGION
    );
    let strong = seq(at(&data, &["Conditions", "Strong", "Fn::Equals"]));
    assert_eq!(ref_to(&strong[0]), Some(CONSISTENCY_PARAMETER));
    assert_eq!(str_of(&strong[1]), "strong");

    let properties = props(&data, "ItemsTable");
    let (condition, then, otherwise) = if_branches(field(properties, "MultiRegionConsistency"));
    assert_eq!(
        (condition, str_of(then), str_of(otherwise)),
        ("Strong", "STRONG", "EVENTUAL")
    );
    let (condition, witnesses, otherwise) = if_branches(field(properties, "GlobalTableWitnesses"));
    assert_eq!(condition, "Strong");
    let witnesses = seq(witnesses);
    assert_eq!(witnesses.len(), 1, "MRSC takes exactly one witness");
    assert_eq!(
        ref_to(field(&witnesses[0], "Region")),
        Some(WITNESS_PARAMETER)
    );
    assert_eq!(ref_to(otherwise), Some("AWS::NoValue"));
    // MRSC supports no TTL, local secondary index or transaction: the table must use none.
    for unsupported in ["TimeToLiveSpecification", "LocalSecondaryIndexes"] {
        assert!(properties.get(unsupported).is_none(), "{unsupported}");
    }

    // The rule's Region sets, one `Fn::And` of three `Fn::Contains` per set.
    let rule = at(&data, &["Rules", "StrongRegionSet"]);
    let first = &seq(field(rule, "Assertions"))[0];
    let sets: Vec<Vec<String>> = seq(at(first, &["Assert", "Fn::Or"]))
        .iter()
        .map(|and| {
            let contains = &seq(field(and, "Fn::And"))[0];
            seq(&seq(field(contains, "Fn::Contains"))[0])
                .iter()
                .map(|r| str_of(r).to_owned())
                .collect()
        })
        .collect();
    let expected: Vec<Vec<String>> = MRSC_REGION_SETS
        .iter()
        .map(|set| set.iter().map(|r| (*r).to_owned()).collect())
        .collect();
    assert_eq!(sets, expected);

    let region = load(REGION);
    let variables = at(props(&region, "Function"), &["Environment", "Variables"]);
    assert_eq!(
        ref_to(field(variables, "TANDEM_CONSISTENCY")),
        Some(CONSISTENCY_PARAMETER)
    );
    assert_eq!(
        str_of(field(param(&region, CONSISTENCY_PARAMETER), "Default")),
        "eventual"
    );
}

#[test]
fn runtime_secret_is_generated_and_replicated() {
    let data = load(DATA);
    for (name, secret) in resources_of_type(&data, "AWS::SecretsManager::Secret") {
        let properties = field(secret, "Properties");
        assert!(
            properties.get("SecretString").is_none(),
            "{name}: no literal secret"
        );
        assert!(properties.get("GenerateSecretString").is_some(), "{name}");
    }
    let app = props(&data, "AppSecret");
    assert_eq!(ref_to(field(app, "Name")), Some("SecretName"));
    let generate = field(app, "GenerateSecretString");
    assert_eq!(str_of(field(generate, "GenerateStringKey")), "admin_token");
    let template = text_of(field(generate, "SecretStringTemplate"));
    assert!(
        template.contains("\"origin_secret\":\"{{resolve:secretsmanager:${OriginSecretGenerator}:SecretString:origin_secret}}\""),
        "{template}"
    );
    let replicas: Vec<&str> = seq(field(app, "ReplicaRegions"))
        .iter()
        .map(|r| ref_to(field(r, "Region")).expect("a parameter"))
        .collect();
    assert_eq!(replicas, ["SecondaryRegion"]);
}

/// A change to either secret's `GenerateSecretString` makes CloudFormation generate the value
/// again on the next deploy: the original origin_secret back over a rotated one (403 from
/// every region: the edge sends the rotated one), and a new admin_token. So they are frozen:
/// this copy changes only together with a plan for deployed secrets (data.yaml's comment).
#[test]
fn the_generated_secrets_never_change_once_deployed() {
    let data = load(DATA);
    let frozen = [
        (
            "OriginSecretGenerator",
            r#"{"ExcludePunctuation":true,"GenerateStringKey":"origin_secret","PasswordLength":48,"SecretStringTemplate":"{}"}"#,
        ),
        (
            "AppSecret",
            r#"{"ExcludePunctuation":true,"GenerateStringKey":"admin_token","PasswordLength":40,"SecretStringTemplate":{"Fn::Sub":"{\"origin_secret\":\"{{resolve:secretsmanager:${OriginSecretGenerator}:SecretString:origin_secret}}\"}"}}"#,
        ),
    ];
    for (name, expected) in frozen {
        let generate = field(props(&data, name), "GenerateSecretString");
        let actual = serde_json::to_string(&serde_json::to_value(generate).unwrap()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&actual).unwrap(),
            expected,
            "{name}'s GenerateSecretString changed: a deployed secret would be generated again"
        );
    }
}

#[test]
fn parameter_defaults_are_the_ones_tandem_uses() {
    // A stack created by hand, with the defaults, is the one `tandem deploy`
    // makes and the local stack mirrors.
    let expected = [
        ("PrimaryRegion", PRIMARY),
        ("SecondaryRegion", SECONDARY),
        ("TableName", DEFAULT_TABLE_NAME),
        ("SecretName", DEFAULT_SECRET_NAME),
    ];
    let mut checked = 0;
    for path in ALL {
        let template = load(path);
        for (name, value) in expected {
            let Some(default) = template
                .get("Parameters")
                .and_then(|p| p.get(name))
                .and_then(|p| p.get("Default"))
            else {
                continue;
            };
            assert_eq!(str_of(default), value, "{path} {name}");
            checked += 1;
        }
    }
    // data.yaml and edge.yaml have all four, region.yaml and fis.yaml two.
    assert!(checked >= 12, "only {checked} defaults found");
}

#[test]
fn lambda_is_arm64_on_provided_al2023() {
    let region = load(REGION);
    let functions = resources_of_type(&region, "AWS::Lambda::Function");
    assert_eq!(functions.len(), 1);
    let function = field(functions[0].1, "Properties");
    assert_eq!(str_of(field(function, "Runtime")), "provided.al2023");
    let architectures: Vec<&str> = seq(field(function, "Architectures"))
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(architectures, ["arm64"]);
    assert_eq!(str_of(field(function, "Handler")), "bootstrap");
    assert_eq!(
        ref_to(at(function, &["Code", "S3Bucket"])),
        Some("CodeBucket")
    );
    assert_eq!(ref_to(at(function, &["Code", "S3Key"])), Some("CodeKey"));
    assert_eq!(param_default_u64(&region, "MemorySize"), 128);
    assert_eq!(
        param_default_u64(&region, "TimeoutSeconds"),
        u64::from(FUNCTION_TIMEOUT_S)
    );

    let env = at(function, &["Environment", "Variables"]);
    assert_eq!(str_of(field(env, "TANDEM_STORE")), "dynamodb");
    // RUST_LOG follows LogLevel (functions_log_json_at_the_log_level).
    assert!(field(env, "RUST_LOG").get("Fn::FindInMap").is_some());
    assert_eq!(ref_to(field(env, "TABLE_NAME")), Some("TableName"));
    assert_eq!(ref_to(field(env, "TANDEM_SECRET_ID")), Some("SecretName"));
    assert_eq!(
        ref_to(field(env, "TANDEM_CORS_ORIGINS")),
        Some("CorsOrigins")
    );
    assert_eq!(str_of(field(param(&region, "CorsOrigins"), "Default")), "");

    // The HTTP API invokes it with payload 2.0, and only that API may.
    let integration = props(&region, "LambdaIntegration");
    assert_eq!(str_of(field(integration, "IntegrationType")), "AWS_PROXY");
    assert_eq!(str_of(field(integration, "PayloadFormatVersion")), "2.0");
    let permission = props(&region, "ApiInvokePermission");
    assert_eq!(
        str_of(field(permission, "Principal")),
        "apigateway.amazonaws.com"
    );
    assert!(text_of(field(permission, "SourceArn")).contains(":${HttpApi}/"));
    let stage = props(&region, "DefaultStage");
    assert_eq!(str_of(field(stage, "StageName")), "$default");
    assert_eq!(field(stage, "AutoDeploy").as_bool(), Some(true));
    assert!(stage.get("AccessLogSettings").is_some());
    assert_eq!(
        ref_to(at(stage, &["DefaultRouteSettings", "ThrottlingBurstLimit"])),
        Some("ThrottlingBurstLimit")
    );
    assert_eq!(
        ref_to(at(stage, &["DefaultRouteSettings", "ThrottlingRateLimit"])),
        Some("ThrottlingRateLimit")
    );
    // The trade-off is said where the limits are set: 429 is not failed over, and the
    // throttle is spent before origin cloaking runs.
    for name in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        let description = str_of(field(param(&region, name), "Description"));
        assert!(
            description.contains("429") && description.contains("cloaking"),
            "{name}: {description}"
        );
    }
}

#[test]
fn distribution_has_no_custom_error_responses() {
    let edge = load(EDGE);
    let config = distribution_config(&edge);
    assert!(config.get("CustomErrorResponses").is_none());
    for path in ALL {
        assert!(
            !contains_key_anywhere(&load(path), "CustomErrorResponses"),
            "{path}: CustomErrorResponses would rewrite the API's errors"
        );
    }
    // SPA fallback is done by a viewer-request function on the default
    // behavior instead.
    let association = &seq(at(
        config,
        &["DefaultCacheBehavior", "FunctionAssociations"],
    ))[0];
    assert_eq!(str_of(field(association, "EventType")), "viewer-request");
    assert_eq!(
        str_of(&seq(field(field(association, "FunctionARN"), "Fn::GetAtt"))[0]),
        "SpaFallbackFunction"
    );
    assert_eq!(str_of(field(config, "DefaultRootObject")), "index.html");
    assert_eq!(str_of(field(config, "HttpVersion")), "http2and3");
}

/// The value CloudFront sends for response header `name` under a
/// response-headers policy's `SecurityHeadersConfig`.
fn cloudfront_security_header(config: &Value, name: &str) -> String {
    match name {
        "content-security-policy" => str_of(at(
            config,
            &["ContentSecurityPolicy", "ContentSecurityPolicy"],
        ))
        .to_owned(),
        // The setting has no value: nosniff is the only one CloudFront knows.
        "x-content-type-options" => {
            field(config, "ContentTypeOptions");
            "nosniff".to_owned()
        }
        "referrer-policy" => str_of(at(config, &["ReferrerPolicy", "ReferrerPolicy"])).to_owned(),
        "x-frame-options" => str_of(at(config, &["FrameOptions", "FrameOption"])).to_owned(),
        "strict-transport-security" => {
            let hsts = field(config, "StrictTransportSecurity");
            let mut value = format!("max-age={}", u64_of(field(hsts, "AccessControlMaxAgeSec")));
            if field(hsts, "IncludeSubdomains").as_bool() == Some(true) {
                value.push_str("; includeSubDomains");
            }
            if hsts.get("Preload").and_then(Value::as_bool) == Some(true) {
                value.push_str("; preload");
            }
            value
        }
        other => panic!("no SecurityHeadersConfig setting for {other}"),
    }
}

#[test]
fn security_headers_policy_matches_the_local_edge() {
    let edge = load(EDGE);
    let config = at(
        props(&edge, "SecurityHeadersPolicy"),
        &["ResponseHeadersPolicyConfig", "SecurityHeadersConfig"],
    );
    assert_eq!(
        str_of(at(
            config,
            &["ContentSecurityPolicy", "ContentSecurityPolicy"]
        )),
        CONSOLE_CSP
    );
    assert_eq!(
        u64_of(at(
            config,
            &["StrictTransportSecurity", "AccessControlMaxAgeSec"]
        )),
        HSTS_MAX_AGE_S
    );
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(cloudfront_security_header(config, name), value, "{name}");
    }
    let settings = config.as_mapping().expect("SecurityHeadersConfig");
    assert_eq!(
        settings.len(),
        SECURITY_HEADERS.len(),
        "a header the local edge does not send"
    );
    // The local edge replaces whatever the API sent; so must CloudFront.
    for (setting, value) in settings {
        assert_eq!(
            field(value, "Override").as_bool(),
            Some(true),
            "{}",
            short(setting)
        );
    }
}

/// The target `target` of the FIS experiment `experiment`.
fn fis_target<'a>(fis: &'a Value, experiment: &str, target: &str) -> &'a Value {
    at(props(fis, experiment), &["Targets", target])
}

#[test]
fn fis_experiments_target_the_primary_function_and_the_table() {
    let fis = load(FIS);
    let experiments = resources_of_type(&fis, "AWS::FIS::ExperimentTemplate");
    let mut action_ids = BTreeSet::new();
    for (name, experiment) in &experiments {
        let properties = field(experiment, "Properties");
        let stops = seq(field(properties, "StopConditions"));
        assert_eq!(str_of(field(&stops[0], "Source")), "none", "{name}");
        for (_, action) in field(properties, "Actions").as_mapping().expect("Actions") {
            action_ids.insert(str_of(field(action, "ActionId")).to_owned());
        }
    }
    assert_eq!(
        action_ids,
        expected_set(&[
            "aws:dynamodb:global-table-pause-replication",
            "aws:lambda:invocation-http-integration-response",
        ])
    );
    let lambda_target = fis_target(&fis, "LambdaHttpFaultExperiment", "PrimaryFunction");
    assert_eq!(
        str_of(field(lambda_target, "ResourceType")),
        "aws:lambda:function"
    );
    assert_eq!(
        ref_to(&seq(field(lambda_target, "ResourceArns"))[0]),
        Some("FunctionArn")
    );
    let fault = at(
        props(&fis, "LambdaHttpFaultExperiment"),
        &["Actions", "InjectHttpFault", "Parameters"],
    );
    assert_eq!(
        ref_to(field(fault, "duration")),
        Some("LambdaFaultDuration")
    );
    let codes: Vec<u64> = seq(field(param(&fis, "LambdaFaultStatusCode"), "AllowedValues"))
        .iter()
        .map(u64_of)
        .collect();
    assert_eq!(
        codes,
        failover_statuses(),
        "an injected fault must be one the edge fails over on"
    );
    let table_target = fis_target(&fis, "ReplicationPauseExperiment", "GlobalTable");
    assert_eq!(
        str_of(field(table_target, "ResourceType")),
        "aws:dynamodb:global-table"
    );
}

#[test]
fn watcher_sets_what_the_function_reads_and_reserves_only_when_asked() {
    use clap::CommandFactory as _;
    let watcher = load(WATCHER);
    let function = props(&watcher, "Function");
    // Every variable the template sets is one the function reads, and the reverse: the names
    // come from the function's own configuration (clap's `env`), not from a copy here.
    let set: BTreeSet<String> = field(field(function, "Environment"), "Variables")
        .as_mapping()
        .expect("Variables")
        .keys()
        .map(|k| str_of(k).to_owned())
        .filter(|k| k != "RUST_LOG")
        .collect();
    let read: BTreeSet<String> = tandem_aws::watcher::WatcherConfig::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(set, read);

    // Reserved concurrency only when asked (off by default): a new account whose quota is 10
    // can reserve none, and the stack would fail there. One execution when it is asked for.
    let reserve = param(&watcher, "ReserveConcurrency");
    assert_eq!(str_of(field(reserve, "Default")), "false");
    let (condition, reserved, otherwise) =
        if_branches(field(function, "ReservedConcurrentExecutions"));
    assert_eq!(condition, "ReservesConcurrency");
    assert_eq!(u64_of(reserved), 1);
    assert_eq!(ref_to(otherwise), Some("AWS::NoValue"));
    let when: Vec<&Value> = seq(at(
        &watcher,
        &["Conditions", "ReservesConcurrency", "Fn::Equals"],
    ))
    .iter()
    .collect();
    assert_eq!(ref_to(when[0]), Some("ReserveConcurrency"));
    assert_eq!(str_of(when[1]), "true");

    // Each invocation ends before the next minute's starts, and is long enough for rounds at
    // the longest probe interval plus the 2 s it keeps to answer.
    let timeout = u64_of(field(function, "Timeout"));
    assert!(
        timeout < 60,
        "Timeout {timeout} s overlaps the next scheduled run"
    );
    let longest = u64_of(field(param(&watcher, "ProbeIntervalMs"), "MaxValue"));
    assert!(
        timeout * 1000 >= 2 * longest + 2000,
        "{timeout} s holds too few rounds"
    );
    let rule = props(&watcher, "Schedule");
    assert_eq!(str_of(field(rule, "ScheduleExpression")), "rate(1 minute)");
    let permission = props(&watcher, "SchedulePermission");
    assert_eq!(
        str_of(field(permission, "Principal")),
        "events.amazonaws.com"
    );
    let rule_arn: Value = serde_norway::from_str("Fn::GetAtt: [Schedule, Arn]").unwrap();
    assert_eq!(field(permission, "SourceArn"), &rule_arn);

    // The role may read and switch the one store and write its own logs, nothing else.
    let statements = iam_statements(&watcher);
    let actions = actions_of(&statements);
    let expected = expected_set(&[
        "cloudfront-keyvaluestore:DescribeKeyValueStore",
        "cloudfront-keyvaluestore:GetKey",
        "cloudfront-keyvaluestore:PutKey",
        "cloudfront-keyvaluestore:DeleteKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]);
    assert_eq!(actions, expected);
    let kvs = statements
        .iter()
        .find(|(_, s)| {
            one_or_many(field(s, "Action"))
                .iter()
                .any(|a| str_of(a) == "cloudfront-keyvaluestore:PutKey")
        })
        .map(|(_, s)| field(s, "Resource"))
        .unwrap();
    assert_eq!(ref_to(kvs), Some("KeyValueStoreArn"));

    // Failing and not running at all are both alarms on the function.
    for (alarm, metric) in [
        ("ErrorsAlarm", "Errors"),
        ("NotRunningAlarm", "Invocations"),
    ] {
        let alarm = props(&watcher, alarm);
        assert_eq!(str_of(field(alarm, "MetricName")), metric);
        let dimension = &seq(field(alarm, "Dimensions"))[0];
        assert_eq!(ref_to(field(dimension, "Value")), Some("Function"));
    }
    assert_eq!(
        str_of(field(
            props(&watcher, "NotRunningAlarm"),
            "TreatMissingData"
        )),
        "breaching"
    );
}

/// Whether an AWS WAF statement (ByteMatch on the URI path, Or, And, Not) matches `path`, with
/// each ByteMatch's text transformations applied in priority order, as WAF documents them.
fn waf_matches(statement: &Value, path: &str) -> bool {
    if let Some(or) = statement.get("OrStatement") {
        return seq(field(or, "Statements"))
            .iter()
            .any(|s| waf_matches(s, path));
    }
    if let Some(and) = statement.get("AndStatement") {
        return seq(field(and, "Statements"))
            .iter()
            .all(|s| waf_matches(s, path));
    }
    if let Some(not) = statement.get("NotStatement") {
        return !waf_matches(field(not, "Statement"), path);
    }
    let byte_match = field(statement, "ByteMatchStatement");
    assert!(
        field(byte_match, "FieldToMatch").get("UriPath").is_some(),
        "only the URI path is modelled"
    );
    let mut transformations: Vec<&Value> = seq(field(byte_match, "TextTransformations"))
        .iter()
        .collect();
    transformations.sort_by_key(|t| u64_of(field(t, "Priority")));
    let mut text = path.to_owned();
    for t in transformations {
        text = match str_of(field(t, "Type")) {
            "URL_DECODE" => percent_decode(&text),
            "LOWERCASE" => text.to_lowercase(),
            other => panic!("text transformation {other} is not modelled"),
        };
    }
    let needle = str_of(field(byte_match, "SearchString"));
    match str_of(field(byte_match, "PositionalConstraint")) {
        "CONTAINS" => text.contains(needle),
        "ENDS_WITH" => text.ends_with(needle),
        "STARTS_WITH" => text.starts_with(needle),
        "EXACTLY" => text == needle,
        other => panic!("positional constraint {other} is not modelled"),
    }
}

/// `%XX` sequences decoded, the rest kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every alarm (region, edge, watcher): named after its stack, so that two deployments (whose
/// stack names differ by `--prefix`) never share one, and notifying only the optional topic,
/// on ALARM and on OK.
#[test]
fn alarms_are_named_after_the_stack_and_notify_only_the_topic() {
    let mut total = 0;
    for path in [REGION, EDGE, WATCHER] {
        let template = load(path);
        let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
        assert!(!alarms.is_empty(), "{path} has no alarm");
        let mut names = BTreeSet::new();
        for (name, alarm) in alarms {
            total += 1;
            let properties = field(alarm, "Properties");
            let alarm_name = text_of(field(properties, "AlarmName"));
            assert!(
                alarm_name.starts_with("${AWS::StackName}-"),
                "{path} {name}: {alarm_name}"
            );
            assert!(
                names.insert(alarm_name.clone()),
                "{path}: two alarms named {alarm_name}"
            );
            assert!(
                properties.get("TreatMissingData").is_some(),
                "{path} {name}: say what no data means"
            );
            for actions in ["AlarmActions", "OKActions"] {
                let (condition, topic, none) = if_branches(field(properties, actions));
                assert_eq!(condition, "HasAlarmTopic", "{path} {name} {actions}");
                let topic: Vec<Option<&str>> = seq(topic).iter().map(ref_to).collect();
                assert_eq!(topic, [Some("AlarmTopicArn")], "{path} {name} {actions}");
                assert_eq!(ref_to(none), Some("AWS::NoValue"), "{path} {name}");
            }
        }
        assert_eq!(
            str_of(field(param(&template, "AlarmTopicArn"), "Default")),
            "",
            "{path}: the topic is optional"
        );
    }
    assert!(total >= 11, "only {total} alarms");
}

#[test]
fn region_alarms_cover_the_api_the_function_and_the_table() {
    let region = load(REGION);
    let watched: BTreeSet<String> = resources_of_type(&region, "AWS::CloudWatch::Alarm")
        .into_iter()
        .flat_map(|(_, alarm)| alarm_metrics(alarm))
        .collect();
    assert_eq!(
        watched,
        expected_set(&[
            "AWS/ApiGateway/5xx",
            "AWS/ApiGateway/Latency",
            "AWS/Lambda/Errors",
            "AWS/Lambda/Throttles",
            "AWS/Lambda/Duration",
            "AWS/DynamoDB/ReadThrottleEvents",
            "AWS/DynamoDB/WriteThrottleEvents",
            "AWS/DynamoDB/ReplicationLatency",
        ])
    );
    // This stack's API (one stage, so ApiId alone), p99 for the latency.
    for name in ["Api5xxAlarm", "ApiLatencyAlarm"] {
        let dims = dimensions(props(&region, name));
        assert_eq!(dims.len(), 1, "{name}");
        assert_eq!(ref_to(dims["ApiId"]), Some("HttpApi"), "{name}");
    }
    assert_eq!(
        str_of(field(
            props(&region, "ApiLatencyAlarm"),
            "ExtendedStatistic"
        )),
        "p99"
    );
    // The function's alarms watch this stack's function.
    for name in ["FunctionErrorsAlarm", "FunctionThrottlesAlarm"] {
        let dims = dimensions(props(&region, name));
        assert_eq!(ref_to(dims["FunctionName"]), Some("Function"), "{name}");
    }
    // Duration against the timeout, whatever TimeoutSeconds is.
    let expression = seq(field(props(&region, "FunctionDurationAlarm"), "Metrics"))
        .iter()
        .find_map(|m| m.get("Expression"))
        .map(text_of)
        .expect("a metric math expression");
    assert!(expression.contains("${TimeoutSeconds}"), "{expression}");
    // Replication to the peer region, only when there is one.
    let replication = resource(&region, "ReplicationLatencyAlarm");
    assert_eq!(str_of(field(replication, "Condition")), "HasPeerRegion");
    let dims = dimensions(field(replication, "Properties"));
    assert_eq!(ref_to(dims["TableName"]), Some("TableName"));
    assert_eq!(ref_to(dims["ReceivingRegion"]), Some("PeerRegion"));
    assert_eq!(str_of(field(param(&region, "PeerRegion"), "Default")), "");
}

/// region.yaml and watcher.yaml are deployed unmodified on moto (infra/cli/tests/deploy.rs),
/// whose CloudFormation answers 500 to an output that `Fn::GetAtt`s a resource it cannot
/// create (alarms, the HTTP API, ...): their outputs read attributes of these types only.
#[test]
fn moto_deployed_templates_output_attributes_only_of_what_moto_creates() {
    const MOTO_CREATES: [&str; 3] = [
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
    ];
    for path in [REGION, WATCHER] {
        let template = load(path);
        let mut targets = Vec::new();
        get_att_targets(field(&template, "Outputs"), &mut targets);
        for target in targets {
            let ty = str_of(field(resource(&template, &target), "Type"));
            assert!(
                MOTO_CREATES.contains(&ty),
                "{path}: an output reads an attribute of {target} ({ty})"
            );
        }
    }
}

/// JSON logs filtered by level: Lambda's LoggingConfig from `LogLevel`, and RUST_LOG set to
/// the filter the function itself derives from AWS_LAMBDA_LOG_LEVEL.
#[test]
fn functions_log_json_at_the_log_level() {
    for path in [REGION, WATCHER] {
        let template = load(path);
        let function = props(&template, "Function");
        let logging = field(function, "LoggingConfig");
        assert_eq!(str_of(field(logging, "LogFormat")), "JSON", "{path}");
        assert_eq!(
            ref_to(field(logging, "ApplicationLogLevel")),
            Some("LogLevel"),
            "{path}"
        );
        assert_eq!(str_of(field(logging, "SystemLogLevel")), "WARN", "{path}");
        assert_eq!(
            ref_to(field(logging, "LogGroup")),
            Some("FunctionLogGroup"),
            "{path}"
        );
        assert_eq!(
            ref_to(field(
                props(&template, "FunctionLogGroup"),
                "RetentionInDays"
            )),
            Some("LogRetentionDays"),
            "{path}"
        );
        let level = param(&template, "LogLevel");
        assert_eq!(str_of(field(level, "Default")), "INFO", "{path}");
        let levels: Vec<&str> = seq(field(level, "AllowedValues"))
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(
            levels,
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
            "{path}"
        );
        for level in levels {
            assert_eq!(
                str_of(at(&template, &["Mappings", "LogLevels", level, "filter"])),
                tandem_api::args::log_filter(Some(level)),
                "{path} {level}"
            );
        }
        let rust_log = seq(at(
            function,
            &["Environment", "Variables", "RUST_LOG", "Fn::FindInMap"],
        ));
        assert_eq!(str_of(&rust_log[0]), "LogLevels", "{path}");
        assert_eq!(ref_to(&rust_log[1]), Some("LogLevel"), "{path}");
        assert_eq!(str_of(&rust_log[2]), "filter", "{path}");
    }
}

/// The edge's optional parts (web ACL, custom domain, paid CloudFront metrics) exist only
/// under their conditions, off by default; CloudFront alarms only where CloudFront publishes
/// metrics (us-east-1, Region=Global).
#[test]
fn edge_options_and_alarms_live_under_their_conditions() {
    let edge = load(EDGE);
    let config = distribution_config(&edge);

    for (name, metric, condition) in [
        ("Edge5xxRateAlarm", "5xxErrorRate", "InUsEast1"),
        (
            "OriginLatencyAlarm",
            "OriginLatency",
            "OriginLatencyAlarmOn",
        ),
    ] {
        let alarm = resource(&edge, name);
        assert_eq!(str_of(field(alarm, "Condition")), condition, "{name}");
        let properties = field(alarm, "Properties");
        assert_eq!(str_of(field(properties, "Namespace")), "AWS/CloudFront");
        assert_eq!(str_of(field(properties, "MetricName")), metric);
        let dims = dimensions(properties);
        assert_eq!(
            ref_to(dims["DistributionId"]),
            Some("Distribution"),
            "{name}"
        );
        assert_eq!(str_of(dims["Region"]), "Global", "{name}");
    }
    let in_us_east_1 = seq(at(&edge, &["Conditions", "InUsEast1", "Fn::Equals"]));
    assert_eq!(ref_to(&in_us_east_1[0]), Some("AWS::Region"));
    assert_eq!(str_of(&in_us_east_1[1]), "us-east-1");
    // OriginLatency needs CloudFront's additional metrics, which cost money: off by default.
    let subscription = resource(&edge, "AdditionalMetricsSubscription");
    assert_eq!(
        str_of(field(subscription, "Type")),
        "AWS::CloudFront::MonitoringSubscription"
    );
    assert_eq!(
        str_of(field(subscription, "Condition")),
        "HasAdditionalMetrics"
    );
    assert_eq!(
        str_of(field(param(&edge, "AdditionalMetrics"), "Default")),
        "false"
    );
    let latency_on: Vec<&str> = seq(at(
        &edge,
        &["Conditions", "OriginLatencyAlarmOn", "Fn::And"],
    ))
    .iter()
    .map(|c| str_of(field(c, "Condition")))
    .collect();
    assert_eq!(latency_on, ["InUsEast1", "HasAdditionalMetrics"]);

    // The web ACL: only with WebAcl=create (default none), scope CLOUDFRONT, allow by
    // default, one per-IP rate rule on the admin API.
    let acls = resources_of_type(&edge, "AWS::WAFv2::WebACL");
    assert_eq!(acls.len(), 1);
    let (acl_name, acl) = acls[0];
    assert_eq!(str_of(field(acl, "Condition")), "CreateWebAcl");
    assert_eq!(str_of(field(param(&edge, "WebAcl"), "Default")), "none");
    let acl = field(acl, "Properties");
    assert_eq!(str_of(field(acl, "Scope")), "CLOUDFRONT");
    assert!(field(acl, "DefaultAction").get("Allow").is_some());
    let rules = seq(field(acl, "Rules"));
    assert_eq!(rules.len(), 1);
    assert!(field(&rules[0], "Action").get("Block").is_some());
    let rate = at(&rules[0], &["Statement", "RateBasedStatement"]);
    assert_eq!(str_of(field(rate, "AggregateKeyType")), "IP");
    assert_eq!(ref_to(field(rate, "Limit")), Some("AdminRateLimit"));
    assert!(
        u64_of(field(param(&edge, "AdminRateLimit"), "MinValue")) >= 10,
        "AWS WAF's minimum rate limit is 10"
    );
    // The admin routes, through either behavior, with or without the trailing slash, encoded
    // or cased otherwise, are limited; nothing else is.
    let scope = field(rate, "ScopeDownStatement");
    for admin in [
        "/api/admin",
        "/api/admin/",
        "/api/admin/fault",
        "/region/us-east-1/api/admin",
        "/region/us-west-2/api/admin/fault",
        "/API/Admin",
        "/api%2Fadmin",
        "/region/us-east-1/api/%61dmin/fault",
    ] {
        assert!(
            waf_matches(scope, admin),
            "{admin} escapes the admin rate limit"
        );
    }
    for other in [
        "/api/items",
        "/api/items/administrator",
        "/api/administrator",
        "/api/health",
        "/region/us-east-1/api/items/a",
        "/index.html",
    ] {
        assert!(!waf_matches(scope, other), "{other} is not an admin route");
    }
    // Attached only when created, or when an existing one is given.
    let (condition, created, otherwise) = if_branches(field(config, "WebACLId"));
    assert_eq!(condition, "CreateWebAcl");
    let target: Vec<&str> = seq(field(created, "Fn::GetAtt"))
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(target, [acl_name, "Arn"]);
    let (condition, given, none) = if_branches(otherwise);
    assert_eq!(condition, "HasWebAclArn");
    assert_eq!(ref_to(given), Some("WebAclArn"));
    assert_eq!(ref_to(none), Some("AWS::NoValue"));
    // Scope CLOUDFRONT exists only in us-east-1: a rule says so before anything is made.
    let rule = at(&edge, &["Rules", "WebAclInUsEast1"]);
    let when = seq(at(rule, &["RuleCondition", "Fn::Equals"]));
    assert_eq!(ref_to(&when[0]), Some("WebAcl"));
    assert_eq!(str_of(&when[1]), "create");
    let region = seq(at(
        &seq(field(rule, "Assertions"))[0],
        &["Assert", "Fn::Equals"],
    ));
    assert_eq!(ref_to(&region[0]), Some("AWS::Region"));
    assert_eq!(str_of(&region[1]), "us-east-1");

    // Custom domain: both parameters or neither; then TLSv1.2_2021 with SNI, else the
    // default certificate as before.
    for name in ["DomainName", "CertificateArn"] {
        assert_eq!(str_of(field(param(&edge, name), "Default")), "", "{name}");
    }
    assert!(
        str_of(field(param(&edge, "CertificateArn"), "AllowedPattern")).contains(":acm:us-east-1:"),
        "CloudFront takes certificates from us-east-1 only"
    );
    assert!(
        at(&edge, &["Rules", "CustomDomainNeedsCertificate"])
            .get("Assertions")
            .is_some()
    );
    let (condition, aliases, no_aliases) = if_branches(field(config, "Aliases"));
    assert_eq!(condition, "HasCustomDomain");
    let aliases: Vec<Option<&str>> = seq(aliases).iter().map(ref_to).collect();
    assert_eq!(aliases, [Some("DomainName")]);
    assert_eq!(ref_to(no_aliases), Some("AWS::NoValue"));
    let (condition, custom, default) = if_branches(field(config, "ViewerCertificate"));
    assert_eq!(condition, "HasCustomDomain");
    assert_eq!(
        ref_to(field(custom, "AcmCertificateArn")),
        Some("CertificateArn")
    );
    assert_eq!(str_of(field(custom, "SslSupportMethod")), "sni-only");
    assert_eq!(
        str_of(field(custom, "MinimumProtocolVersion")),
        "TLSv1.2_2021"
    );
    assert_eq!(
        field(default, "CloudFrontDefaultCertificate").as_bool(),
        Some(true)
    );
}

/// The dashboard's body, rendered as `Fn::Sub` would with sample values (with and without the
/// origin latency widget), is JSON; every metric widget names its region; both regions get the
/// API, function and table metrics, CloudFront's are read in us-east-1.
#[test]
fn dashboard_shows_both_regions_and_the_edge() {
    let edge = load(EDGE);
    let dashboard = props(&edge, "Dashboard");
    assert_eq!(
        ref_to(field(dashboard, "DashboardName")),
        Some("AWS::StackName")
    );
    let sub = seq(field(field(dashboard, "DashboardBody"), "Fn::Sub"));
    assert_eq!(sub.len(), 2);
    let body = str_of(&sub[0]);
    let variables = &sub[1];
    // The API ids are the first label of the API domains (<api id>.execute-api.<region>...).
    for (variable, domain) in [
        ("PrimaryApiId", "PrimaryApiDomain"),
        ("SecondaryApiId", "SecondaryApiDomain"),
    ] {
        let select = seq(field(field(variables, variable), "Fn::Select"));
        assert_eq!(u64_of(&select[0]), 0, "{variable}");
        let split = seq(field(&select[1], "Fn::Split"));
        assert_eq!(str_of(&split[0]), ".", "{variable}");
        assert_eq!(ref_to(&split[1]), Some(domain), "{variable}");
    }
    let (condition, widget, no_widget) = if_branches(field(variables, "OriginLatencyWidget"));
    assert_eq!(condition, "HasAdditionalMetrics");
    assert_eq!(str_of(no_widget), "");

    let mut values: BTreeMap<&str, String> = [
        ("AWS::StackName", "tandem-edge"),
        ("PrimaryRegion", PRIMARY),
        ("SecondaryRegion", SECONDARY),
        ("Distribution", "E2EXAMPLE0"),
        ("PrimaryApiId", "a1b2c3d4e5"),
        ("SecondaryApiId", "f6g7h8i9j0"),
        ("PrimaryFunctionName", "tandem-api"),
        ("SecondaryFunctionName", "tandem-api"),
        ("TableName", DEFAULT_TABLE_NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    values.insert(
        "OriginReadTimeout",
        DEFAULT_ORIGIN_READ_TIMEOUT_S.to_string(),
    );
    let widget = substitute(&text_of(widget), &values);
    for extra in [String::new(), widget] {
        let with_latency = !extra.is_empty();
        let mut values = values.clone();
        values.insert("OriginLatencyWidget", extra);
        let rendered = substitute(body, &values);
        let json: serde_json::Value = serde_json::from_str(&rendered)
            .unwrap_or_else(|e| panic!("the dashboard body is not JSON ({e}):\n{rendered}"));
        let mut seen = BTreeSet::new();
        for w in json["widgets"].as_array().expect("widgets") {
            if w["type"] != "metric" {
                continue;
            }
            let region = w["properties"]["region"]
                .as_str()
                .expect("every metric widget names its region");
            for metric in w["properties"]["metrics"].as_array().expect("metrics") {
                let namespace = metric[0].as_str().expect("a namespace");
                let name = metric[1].as_str().expect("a metric name");
                if namespace == "AWS/CloudFront" {
                    assert_eq!(region, "us-east-1", "CloudFront metrics live in us-east-1");
                }
                seen.insert(format!("{region} {namespace}/{name}"));
            }
        }
        for region in [PRIMARY, SECONDARY] {
            for metric in [
                "AWS/ApiGateway/5xx",
                "AWS/ApiGateway/Latency",
                "AWS/Lambda/Errors",
                "AWS/Lambda/Throttles",
                "AWS/Lambda/Duration",
                "AWS/DynamoDB/ReplicationLatency",
                "AWS/DynamoDB/ReadThrottleEvents",
                "AWS/DynamoDB/WriteThrottleEvents",
            ] {
                let key = format!("{region} {metric}");
                assert!(seen.contains(&key), "no {key} on the dashboard");
            }
        }
        for metric in ["AWS/CloudFront/Requests", "AWS/CloudFront/5xxErrorRate"] {
            assert!(seen.contains(&format!("us-east-1 {metric}")), "{metric}");
        }
        assert_eq!(
            seen.contains("us-east-1 AWS/CloudFront/OriginLatency"),
            with_latency,
            "origin latency only with AdditionalMetrics"
        );
    }
}
