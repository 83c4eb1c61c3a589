//! The stacks of a plan, in deploy order, and the parameters deploy passes to each template.
//! A parameter's flag left out leaves the template's default; one set by another command
//! (`tandem rotate-secret`, `--fallback-origin-group`) is kept as the stack has it.

use super::args::DeployArgs;
use super::lambda::Function;
use super::plan::{StackPlan, Value};
use crate::names::{
    CONSISTENCY_PARAMETER, DISTRIBUTION_DOMAIN, KVS_ARN_OUTPUT, MODE_PARAMETER, Role,
    VERSION_PARAMETER, WITNESS_PARAMETER,
};
use tandem_shared::control::FUNCTION_TIMEOUT_S;

/// The stacks in deploy order, with their parameters. Some parameters are outputs of an
/// earlier stack: named here, resolved once that stack has run.
pub(super) fn stack_plans(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<StackPlan> {
    let names = &args.stacks;
    let stack = |role: Role, region: &str, parameters| StackPlan {
        role,
        name: names.stack(role),
        region: region.to_owned(),
        parameters,
    };
    let mut stacks = vec![
        stack(
            Role::Data,
            primary,
            data_parameters(args, primary, secondary),
        ),
        stack(
            Role::Region(0),
            primary,
            region_parameters(args, 0, secondary),
        ),
        stack(
            Role::Region(1),
            secondary,
            region_parameters(args, 1, primary),
        ),
        // The edge reads the secret's origin_secret through a dynamic reference, which
        // resolves in the stack's own region: the primary, where the secret lives.
        stack(
            Role::Edge,
            primary,
            edge_parameters(args, primary, secondary),
        ),
    ];
    // The watcher needs the edge's store and domain, so it comes last; it runs where it is
    // needed when the primary is down.
    if args.watcher.auto_failover {
        let parameters = watcher_parameters(args, primary, secondary);
        stacks.push(stack(Role::Watcher, secondary, parameters));
    }
    stacks
}

/// data.yaml: the global table's two regions, its consistency mode and witness, and the
/// names of the table and the secret.
fn data_parameters(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    // The witness is passed in eventual mode too, where the template ignores it: a stack
    // update then has every parameter set, so an unchanged stack stays unchanged.
    let names = &args.stacks;
    parameters([
        ("PrimaryRegion", Value::text(primary)),
        ("SecondaryRegion", Value::text(secondary)),
        ("TableName", Value::Text(names.table())),
        ("SecretName", Value::Text(names.secret())),
        (
            CONSISTENCY_PARAMETER,
            Value::text(args.consistency.as_str()),
        ),
        (WITNESS_PARAMETER, Value::text(&args.witness_region)),
    ])
}

/// region.yaml: the table and the secret as the data stack named them, the code in this
/// region's bucket (Lambda reads code only from its own region), the function's name after
/// the prefix, and its timeout from the edge's origin read timeout.
fn region_parameters(args: &DeployArgs, index: usize, peer: &str) -> Vec<(String, Value)> {
    let mut parameters = parameters([
        ("TableName", Value::Output(Role::Data, "TableName")),
        (
            CONSISTENCY_PARAMETER,
            Value::Output(Role::Data, CONSISTENCY_PARAMETER),
        ),
        ("SecretName", Value::Output(Role::Data, "SecretName")),
        ("CodeBucket", Value::CodeBucket(index)),
        ("CodeKey", Value::CodeKey(Function::Api)),
        ("FunctionName", Value::Text(args.stacks.function())),
        (
            "TimeoutSeconds",
            Value::Text(FUNCTION_TIMEOUT_S.to_string()),
        ),
        ("PeerRegion", Value::Text(peer.to_owned())),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(&args.stacks.regions[index])),
        ("LogLevel", ops.log_level.clone()),
        (
            "ThrottlingRateLimit",
            ops.throttle_rate.map(|n| n.to_string()),
        ),
        (
            "ThrottlingBurstLimit",
            ops.throttle_burst.map(|n| n.to_string()),
        ),
    ];
    parameters.extend(given(optional));
    let cors_origins = &args.cors_origins;
    // Without the flag, the template's default (no other web app may call the API) applies.
    if !cors_origins.is_empty() {
        parameters.push((
            "CorsOrigins".to_owned(),
            Value::text(&cors_origins.join(",")),
        ));
    }
    parameters
}

/// edge.yaml: both regions' API domains, primary first, and the secret holding
/// origin_secret; the functions and the table for the dashboard; the operations flags. The
/// secret version and the `/api/*` mode stay as other commands set them.
fn edge_parameters(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    let mut parameters = parameters([
        ("PrimaryRegion", Value::text(primary)),
        ("SecondaryRegion", Value::text(secondary)),
        (
            "PrimaryApiDomain",
            Value::Output(Role::Region(0), "ApiDomainName"),
        ),
        (
            "SecondaryApiDomain",
            Value::Output(Role::Region(1), "ApiDomainName"),
        ),
        ("SecretName", Value::Output(Role::Data, "SecretName")),
        (
            "PrimaryFunctionName",
            Value::Output(Role::Region(0), "FunctionName"),
        ),
        (
            "SecondaryFunctionName",
            Value::Output(Role::Region(1), "FunctionName"),
        ),
        ("TableName", Value::Output(Role::Data, "TableName")),
        (VERSION_PARAMETER, Value::Keep),
        (
            MODE_PARAMETER,
            args.smoke
                .api_failover_mode
                .map_or(Value::Keep, |m| Value::text(m.as_str())),
        ),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(primary)),
        ("DomainName", ops.domain_name.clone()),
        ("CertificateArn", ops.certificate_arn.clone()),
        ("WebAcl", ops.waf.then(|| "create".to_owned())),
        (
            "AdminRateLimit",
            ops.admin_rate_limit.map(|n| n.to_string()),
        ),
        (
            "AdditionalMetrics",
            ops.cloudfront_additional_metrics.then(|| "true".to_owned()),
        ),
    ];
    parameters.extend(given(optional));
    parameters
}

/// watcher.yaml: what to probe, the store to switch, the rule, the code in the secondary
/// region's bucket, and its alarms' topic and log level.
fn watcher_parameters(args: &DeployArgs, primary: &str, secondary: &str) -> Vec<(String, Value)> {
    let names = &args.stacks;
    let rule = &args.watcher.rule;
    let mut parameters = parameters([
        ("FunctionName", Value::Text(names.stack(Role::Watcher))),
        ("CodeBucket", Value::CodeBucket(1)),
        ("CodeKey", Value::CodeKey(Function::Watcher)),
        ("Endpoint", Value::Https(Role::Edge, DISTRIBUTION_DOMAIN)),
        (
            "KeyValueStoreArn",
            Value::Output(Role::Edge, KVS_ARN_OUTPUT),
        ),
        ("Regions", Value::Text(format!("{primary},{secondary}"))),
        (
            "FailoverAfter",
            Value::Text(rule.failover_after.to_string()),
        ),
        (
            "ProbeIntervalMs",
            Value::Text(rule.probe_interval_ms.to_string()),
        ),
        ("AutoFailback", Value::Text(rule.auto_failback.to_string())),
        (
            "FailbackAfter",
            Value::Text(rule.failback_after.to_string()),
        ),
        (
            "ReserveConcurrency",
            Value::Text(args.watcher.reserve_watcher_concurrency.to_string()),
        ),
    ]);
    let ops = &args.ops;
    let optional = [
        ("AlarmTopicArn", ops.topic_for(secondary)),
        ("LogLevel", ops.log_level.clone()),
    ];
    parameters.extend(given(optional));
    parameters
}

/// Parameters set only when their flag is; left out, the template's default applies.
fn given<const N: usize>(
    pairs: [(&str, Option<String>); N],
) -> impl Iterator<Item = (String, Value)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), Value::Text(v?))))
}

fn parameters<const N: usize>(pairs: [(&str, Value); N]) -> Vec<(String, Value)> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}
