//! `tandem deploy` and `tandem destroy`: the dry-run plan, and the whole flow against moto's
//! server, run as the real `tandem` binary with `AWS_ENDPOINT_URL` pointing at moto.
//!
//! What moto cannot do, and how the test deals with it (moto 5.2.5):
//! - Its CloudFormation has no `AWS::DynamoDB::GlobalTable`, `AWS::SecretsManager::Secret`,
//!   `AWS::CloudFront::*` or `AWS::ApiGatewayV2::*`, and it answers HTTP 500 to a template
//!   whose outputs `Fn::GetAtt` such a resource, so data.yaml and edge.yaml cannot be created
//!   there at all. The test deploys stand-ins with the real templates' `Parameters` (and
//!   `Rules`) and the outputs deploy reads, built from what moto has: a plain
//!   `AWS::DynamoDB::Table` (retained, deletion-protected) and the real `ConsoleBucket`. The
//!   secret and the distribution are made through their own APIs, as the stacks would have.
//! - region.yaml is deployed unmodified: moto creates its log groups, role, function (from
//!   the zip deploy uploaded) and permission, and skips the HTTP API, so its `ApiDomainName`
//!   output is the unresolved `${HttpApi}.execute-api...` string.
//! - The active region's store (`AWS::CloudFront::KeyValueStore`): moto's CloudFormation cannot
//!   create it either (it warns that the type is unsupported; `Fn::GetAtt` of its `Arn` fails),
//!   and moto has no KeyValueStore data plane at all (its CloudFront API can create a store,
//!   nothing serves GetKey/PutKey). The stand-in edge stack's `KeyValueStoreArn` output names a
//!   store that a stand-in data plane serves (`infra/aws/tests/support/fake_kvs.rs`), so that
//!   `tandem failover`/`failback` run as the real binary: stack output, endpoint and region
//!   checks, SigV4a-signed DescribeKeyValueStore/GetKey/PutKey/DeleteKey with `If-Match`.
//! - The health watcher's stack (watcher.yaml, `--auto-failover`) is deployed unmodified: moto
//!   makes its log group, role, function, EventBridge rule and invoke permission, and skips
//!   `AWS::Lambda::EventInvokeConfig` and the two `AWS::CloudWatch::Alarm`s (their properties
//!   are checked by `infra/aws/tests/templates.rs`, cfn-lint and checkov only). The function
//!   itself runs in `infra/aws/tests/watcher.rs`.
//! - The failover drill that ends a deploy goes through the smoke endpoint, the local stack's
//!   edge, and switches the active region in the stand-in store. The edge routes by the store's
//!   value as CloudFront's function would only because the test plays CloudFront's propagation:
//!   it carries each write of the store to the local edge through its control API
//!   ([`Propagation`]), and can stop doing so, to show a switch that never reaches the edge.
//!   The local stack's admin token is the stand-in secret's, and `--origin-endpoint` points the
//!   cloaking check at the local regions (region.yaml's `ApiDomainName` is unresolved on moto).
//! - moto reports only stack-level events (no per-resource ones), and says "No updates are to
//!   be performed" only when the template and every one of its parameters are unchanged: the
//!   unchanged data stack gets it (and deploy reports it unchanged), while the unchanged edge
//!   stack, whose timing parameters are left at their defaults, gets an UPDATE_COMPLETE that
//!   AWS would not give.
//!
//! Region names come from `tandem_shared::region`, as `tandem deploy`'s defaults do.

use aws_sdk_cloudformation::types::Stack;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tandem_aws::deploy::{Function, IMMUTABLE, NO_CACHE, cache_control, code_key, content_type};
use tandem_aws::stack::outputs;
use tandem_shared::control::FUNCTION_TIMEOUT_S;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::routing::ACTIVE_REGION_KEY;
use tandem_testkit::Moto;

/// A local stack, whose edge the smoke checks go through.
mod common;
/// The `tandem` binary on moto, and moto's clients.
mod support;
use support::{Clients as _, run, stand_in_distribution, tandem};

/// The KeyValueStore data plane moto lacks (see the module doc).
#[path = "../../aws/tests/support/fake_kvs.rs"]
mod fake_kvs;
use fake_kvs::FakeKvs;

/// The templates live with the AWS crate, beside this one.
const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../aws/cloudformation");
/// The checkout, where `tandem deploy` without `--lambda-zip` builds the function.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// moto's account.
const ACCOUNT: &str = "123456789012";
/// The stand-in secret's admin token: the local stack's (the drill faults its primary with it).
const ADMIN_TOKEN: &str = common::TOKEN;
/// The custom domain the first deploy gives the distribution (its alias).
const CUSTOM_DOMAIN: &str = "tandem.example.com";

// ------------------------------------------------------------------ fixtures --

/// A zip with one executable, stored (uncompressed), named `bootstrap`: the shape cargo lambda
/// produces. The timestamp is fixed so that a script always zips to the same bytes, and so to
/// the same code key, whenever the test runs.
fn lambda_zip(script: &str) -> Vec<u8> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(script.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

fn write_zip(dir: &Path, file: &str, script: &str) -> (PathBuf, Vec<u8>) {
    let bytes = lambda_zip(script);
    let path = dir.join(file);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// A console build shaped like trunk's output.
fn console(dir: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    let files: BTreeMap<&'static str, Vec<u8>> = BTreeMap::from([
        (
            "index.html",
            b"<!doctype html><title>Tandem</title>".to_vec(),
        ),
        (
            "tandem-frontend-5f1e8d0c2b3a4f69.js",
            b"export default 1;".to_vec(),
        ),
        (
            "tandem-frontend-5f1e8d0c2b3a4f69_bg.wasm",
            b"\0asm\x01\0\0\0".to_vec(),
        ),
        ("style-0a1b2c3d4e5f6a7b.css", b"body{}".to_vec()),
        ("favicon.ico", vec![0, 0, 1, 0]),
        ("boot.js", b"import('./x.js');\n//".to_vec()),
        (
            "assets/logo.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
        ),
    ]);
    for (key, body) in &files {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    files
}

/// Lines with runs of spaces collapsed, so that assertions do not depend on column widths.
fn squeezed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn assert_line(output: &str, expected: &str) {
    let lines = squeezed(output);
    assert!(
        lines.iter().any(|l| l == expected),
        "no line {expected:?} in:\n{output}"
    );
}

/// `tandem deploy --dry-run <args>` from the checkout (where it would build the function), with
/// an AWS endpoint where nothing listens: whether it passed, stdout, stderr.
fn dry_run(args: &[&str]) -> (bool, String, String) {
    run(tandem("http://127.0.0.1:9")
        .current_dir(WORKSPACE)
        .args(["deploy", "--dry-run"])
        .args(args))
}

/// [`dry_run`] of arguments it must refuse: its stderr.
fn dry_run_refused(args: &[&str]) -> String {
    let (ok, out, err) = dry_run(args);
    assert!(!ok, "{args:?} passed:\n{out}");
    err
}

/// A path as an argument.
fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

// --------------------------------------------------------- pure functions --

#[test]
fn console_files_get_their_content_type_and_cache_policy() {
    assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
    assert_eq!(
        content_type("tandem-frontend-5f1e8d0c2b3a4f69.js"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(content_type("x_bg.wasm"), "application/wasm");
    assert_eq!(content_type("a/b/c.CSS"), "text/css; charset=utf-8");
    assert_eq!(content_type("favicon.ico"), "image/x-icon");
    assert_eq!(content_type("LICENSE"), "application/octet-stream");

    assert_eq!(cache_control("index.html"), NO_CACHE);
    assert_eq!(cache_control("docs/other.html"), NO_CACHE);
    assert_eq!(
        cache_control("tandem-frontend-5f1e8d0c2b3a4f69.js"),
        IMMUTABLE
    );
    assert_eq!(
        cache_control("tandem-frontend-5f1e8d0c2b3a4f69_bg.wasm"),
        IMMUTABLE
    );
    assert_eq!(cache_control("snippets/x-1/inline0-0a1b2c3d.js"), IMMUTABLE);
    // Names that every build reuses are revalidated, like index.html.
    assert_eq!(cache_control("favicon.ico"), NO_CACHE);
    assert_eq!(cache_control("boot.js"), NO_CACHE);
    // A dash alone, or a word that happens to be hex-ish but short, is no hash.
    assert_eq!(cache_control("tandem-frontend.js"), NO_CACHE);
    assert_eq!(cache_control("dead-beef.js"), NO_CACHE);
}

#[test]
fn code_key_is_the_content_hash() {
    let a = code_key(Function::Api, b"one");
    assert_eq!(a, code_key(Function::Api, b"one"));
    assert_ne!(a, code_key(Function::Api, b"two"));
    assert!(a.starts_with("tandem-api/") && a.ends_with(".zip"), "{a}");
    assert_eq!(a.len(), "tandem-api/".len() + 32 + ".zip".len());
}

// ------------------------------------------------------------------ dry run --

#[test]
fn dry_run_prints_the_plan_and_calls_no_aws_api() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    console(&dist);
    // The local edge's precompressed copy (`cargo xtask` writes them): not for S3.
    std::fs::write(dist.join("index.html.br"), "br").unwrap();
    let (zip, bytes) = write_zip(dir.path(), "fn.zip", "#!/bin/sh\necho v1\n");
    let key = code_key(Function::Api, &bytes);
    // Any AWS call would connect here; nothing may.
    let trap = StdListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", trap.local_addr().unwrap());

    let (ok, out, err) = run(tandem(&endpoint)
        .args(["deploy", "--dry-run", "--lambda-zip"])
        .arg(&zip)
        .arg("--console-dir")
        .arg(&dist));
    assert!(ok, "dry run failed:\n{out}\n{err}");
    println!("{out}");
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the dry run connected to the AWS endpoint"
    );

    assert_line(
        &out,
        &format!(
            "Regions: {PRIMARY} (primary), {SECONDARY} (secondary). Account: the one your AWS credentials belong to."
        ),
    );
    assert_line(
        &out,
        &format!(
            "1. Use the function zip {} (key {key}), no build.",
            zip.display()
        ),
    );
    assert_line(
        &out,
        &format!("s3://tandem-code-<account-id>-{PRIMARY}/{key}"),
    );
    assert_line(
        &out,
        &format!("s3://tandem-code-<account-id>-{SECONDARY}/{key}"),
    );
    // The stacks, in order, with their regions and parameters.
    let order: Vec<usize> = [
        format!("3. Create or update stack tandem-data in {PRIMARY}:"),
        format!("4. Create or update stack tandem-region in {PRIMARY}:"),
        format!(
            "5. Create or update stack tandem-region in {SECONDARY} (at the same time as the previous step):"
        ),
        format!("6. Create or update stack tandem-edge in {PRIMARY}:"),
        "7. Upload the console from".to_owned(),
        format!(
            "8. Invalidate /index.html /assets/logo.svg /boot.js /favicon.ico on CloudFront distribution <output DistributionId of tandem-edge in {PRIMARY}>, and wait until it completes."
        ),
        "9. Delete the console files the previous deploy left".to_owned(),
        format!(
            "10. Smoke checks through https://<output DistributionDomainName of tandem-edge in {PRIMARY}>, retried for up to 300 s"
        ),
        format!(
            "11. Failover drill through https://<output DistributionDomainName of tandem-edge in {PRIMARY}>, once the smoke checks pass"
        ),
        format!(
            "12. Print the console URL: https://<output DistributionDomainName of tandem-edge in {PRIMARY}>/#token=<admin_token of secret tandem/secrets in {PRIMARY}>"
        ),
    ]
    .iter()
    .map(|step| {
        squeezed(&out)
            .iter()
            .position(|l| l.starts_with(step.as_str()))
            .unwrap_or_else(|| panic!("no step {step:?} in:\n{out}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "steps out of order:\n{out}"
    );
    assert_line(
        &out,
        "template infra/aws/cloudformation/region.yaml (built into tandem), 17 resources, CAPABILITY_IAM",
    );
    for line in [
        format!("PrimaryRegion = {PRIMARY}"),
        format!("SecondaryRegion = {SECONDARY}"),
        "TableName = tandem-items".to_owned(),
        "SecretName = tandem/secrets".to_owned(),
        "Consistency = eventual".to_owned(),
        format!("Consistency = <output Consistency of tandem-data in {PRIMARY}>"),
        format!("TableName = <output TableName of tandem-data in {PRIMARY}>"),
        format!("CodeBucket = tandem-code-<account-id>-{SECONDARY}"),
        format!("PrimaryApiDomain = <output ApiDomainName of tandem-region in {PRIMARY}>"),
        format!("SecondaryApiDomain = <output ApiDomainName of tandem-region in {SECONDARY}>"),
        // Named after the prefix, timed after the edge, alarmed on the other region's lag.
        "FunctionName = tandem-api".to_owned(),
        format!("TimeoutSeconds = {FUNCTION_TIMEOUT_S}"),
        format!("PeerRegion = {SECONDARY}"),
        format!("PeerRegion = {PRIMARY}"),
        format!("PrimaryFunctionName = <output FunctionName of tandem-region in {PRIMARY}>"),
        // Set by tandem rotate-secret and --fallback-origin-group: a deploy leaves them.
        "OriginSecretVersionId = <unchanged (the template's default on create)>".to_owned(),
        "ApiFailoverMode = <unchanged (the template's default on create)>".to_owned(),
        // The smoke checks it will run.
        "health through /api/* GET /api/health -> [200]".to_owned(),
        format!(
            "health of {SECONDARY} GET /region/{SECONDARY}/api/health -> [200], from {SECONDARY}"
        ),
        "write an item PUT /api/items/tandem-smoke-<random> -> [200, 201]".to_owned(),
        "console index.html GET /index.html -> [200]".to_owned(),
        // The failover drill it will run after them.
        format!(
            "PUT /api/items/tandem-prove-<random>-a -> 2xx from {PRIMARY}; read back from /region/{SECONDARY}/api/items/<id> (replication, up to 30 s)"
        ),
        format!(
            "GET https://<output ApiDomainName of tandem-region in {PRIMARY}>/api/health and https://<output ApiDomainName of tandem-region in {SECONDARY}>/api/health without x-origin-verify -> 403 (origin cloaking)"
        ),
        format!(
            "PUT /region/{PRIMARY}/api/admin/fault error:503 (admin token) for 20 s; GET /api/items/<id> every 250 ms meanwhile -> 200 from {SECONDARY}"
        ),
        format!(
            "switch the active region to {SECONDARY} (PutKey on the KeyValueStore), confirmed through /api/health within 60 s; the same PUT -> 2xx from {SECONDARY}"
        ),
    ] {
        assert_line(&out, &line);
    }
    assert_line(&out, &format!("CodeKey = {key}"));
    // The active region's store, which deploy creates with the edge and never writes.
    assert_line(
        &out,
        &format!(
            "the active region (docs/contract.md §6.3): CloudFront KeyValueStore <output KeyValueStoreArn of tandem-edge in {PRIMARY}>, read by the /api/* router function; created empty (= the primary); deploy never changes its keys"
        ),
    );
    assert_line(
        &out,
        "`tandem failover --to <region>` / `tandem failback` write its key active_region",
    );
    assert!(!out.contains("index.html.br"), "{out}");
    // Every console file, with the headers it will be served with.
    for line in [
        "assets/logo.svg image/svg+xml no-cache 41 B",
        "boot.js text/javascript; charset=utf-8 no-cache 20 B",
        "favicon.ico image/x-icon no-cache 4 B",
        "index.html text/html; charset=utf-8 no-cache 36 B",
        "style-0a1b2c3d4e5f6a7b.css text/css; charset=utf-8 public, max-age=31536000, immutable 6 B",
        "tandem-frontend-5f1e8d0c2b3a4f69.js text/javascript; charset=utf-8 public, max-age=31536000, immutable 17 B",
        "tandem-frontend-5f1e8d0c2b3a4f69_bg.wasm application/wasm public, max-age=31536000, immutable 8 B",
    ] {
        assert_line(&out, line);
    }
}

#[test]
fn dry_run_of_one_region_plans_its_stack_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (zip, _) = write_zip(dir.path(), "fn.zip", "#!/bin/sh\necho v1\n");
    // No console is needed: --only-region uploads none.
    let (ok, out, err) = dry_run(&[
        "--only-region",
        SECONDARY,
        "--lambda-zip",
        arg(&zip),
        "--console-dir",
        "/nonexistent",
    ]);
    assert!(ok, "{out}\n{err}");
    let stacks: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Create or update stack"))
        .collect();
    assert_eq!(stacks.len(), 1, "{out}");
    assert!(
        stacks[0].contains(&format!("tandem-region in {SECONDARY}")),
        "{out}"
    );
    assert_line(&out, "TableName = tandem-items");
    assert_line(&out, "SecretName = tandem/secrets");
    assert!(
        out.contains(&format!("s3://tandem-code-<account-id>-{SECONDARY}/")),
        "{out}"
    );
    assert!(!out.contains("at the same time"), "{out}");
    assert!(
        !out.contains(&format!("tandem-code-<account-id>-{PRIMARY}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Only {SECONDARY}: no AWS API is called in {PRIMARY}"
        )),
        "{out}"
    );
    let err = dry_run_refused(&["--only-region", "eu-west-1", "--lambda-zip", arg(&zip)]);
    assert!(
        err.contains("--only-region eu-west-1 is not one of --regions"),
        "{err}"
    );
}

#[test]
fn dry_run_without_a_zip_plans_the_cargo_lambda_build() {
    let dir = tempfile::tempdir().unwrap();
    console(dir.path());
    let (ok, out, err) = dry_run(&["--console-dir", arg(dir.path())]);
    assert!(ok, "{out}\n{err}");
    assert_line(
        &out,
        "cargo lambda build --release --arm64 --output-format zip --package tandem-api --bin tandem-api --no-default-features --features aws --lambda-dir target/lambda",
    );
    assert_line(&out, "-> target/lambda/tandem-api/bootstrap.zip");
    assert_line(&out, "CodeKey = tandem-api/<sha256 of the built zip>.zip");
    assert!(
        !out.contains("tandem-watcher"),
        "no watcher unless asked:\n{out}"
    );
    // Without the failover drill, the plan says so in its place.
    let (ok, out, err) = dry_run(&["--no-prove", "--console-dir", arg(dir.path())]);
    assert!(ok, "{out}\n{err}");
    assert_line(&out, "11. No failover drill (--no-prove).");
    assert!(!out.contains("tandem-prove-"), "{out}");
}

#[test]
fn dry_run_with_auto_failover_plans_the_watcher_after_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    console(dir.path());
    let (ok, out, err) = dry_run(&[
        "--auto-failover",
        "--auto-failback",
        "--probe-interval-ms",
        "2000",
        "--console-dir",
        arg(dir.path()),
    ]);
    assert!(ok, "{out}\n{err}");
    println!("{out}");
    assert_line(
        &out,
        "cargo lambda build --release --arm64 --output-format zip --package tandem-aws --bin tandem-watcher --lambda-dir target/lambda",
    );
    assert_line(&out, "-> target/lambda/tandem-watcher/bootstrap.zip");
    // Its code goes to the secondary region only, where it runs.
    let watcher_key = "tandem-watcher/<sha256 of the built zip>.zip";
    assert_line(
        &out,
        &format!("s3://tandem-code-<account-id>-{SECONDARY}/{watcher_key}"),
    );
    assert!(
        !out.contains(&format!(
            "s3://tandem-code-<account-id>-{PRIMARY}/{watcher_key}"
        )),
        "{out}"
    );
    let edge = format!("Create or update stack tandem-edge in {PRIMARY}:");
    let watcher = format!("Create or update stack tandem-watcher in {SECONDARY}:");
    let at = |step: &str| squeezed(&out).iter().position(|l| l.contains(step));
    assert!(
        at(&edge).unwrap() < at(&watcher).expect("a watcher stack"),
        "{out}"
    );
    for line in [
        format!("Endpoint = https://<output DistributionDomainName of tandem-edge in {PRIMARY}>"),
        format!("KeyValueStoreArn = <output KeyValueStoreArn of tandem-edge in {PRIMARY}>"),
        format!("Regions = {PRIMARY},{SECONDARY}"),
        format!("CodeBucket = tandem-code-<account-id>-{SECONDARY}"),
        format!("CodeKey = {watcher_key}"),
        "FunctionName = tandem-watcher".to_owned(),
        "FailoverAfter = 3".to_owned(),
        "ProbeIntervalMs = 2000".to_owned(),
        "AutoFailback = true".to_owned(),
        "FailbackAfter = 10".to_owned(),
        format!("back to {PRIMARY} after 10 healthy probes in a row (--auto-failback)"),
        // No reserved concurrency unless asked: a new account (quota 10) cannot spare any.
        "ReserveConcurrency = false".to_owned(),
        format!("before any change, deploy reads Lambda's account settings in {SECONDARY} (lambda:GetAccountSettings: ConcurrentExecutions, UnreservedConcurrentExecutions) and prints them"),
        "no reserved concurrency (new accounts often cannot spare any): overlapping invocations are kept apart by the KeyValueStore's ETag".to_owned(),
    ] {
        assert_line(&out, &line);
    }
    let (ok, out, err) = dry_run(&[
        "--auto-failover",
        "--reserve-watcher-concurrency",
        "--console-dir",
        arg(dir.path()),
    ]);
    assert!(ok, "{out}\n{err}");
    assert_line(&out, "ReserveConcurrency = true");
    assert_line(
        &out,
        "reserved concurrency 1 (--reserve-watcher-concurrency): deploy stops before any change if the account cannot spare it",
    );

    // An interval a one-minute run cannot hold twice is refused before anything happens.
    let err = dry_run_refused(&[
        "--auto-failover",
        "--probe-interval-ms",
        "30000",
        "--console-dir",
        arg(dir.path()),
    ]);
    assert!(
        err.contains("the watcher on AWS takes at most 20000"),
        "{err}"
    );
    // A watcher zip without the watcher is a mistake, not something to ignore.
    let err = dry_run_refused(&["--watcher-zip", "w.zip"]);
    assert!(err.contains("--auto-failover"), "{err}");
}

#[test]
fn deploy_refuses_what_it_cannot_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let (zip, _) = write_zip(dir.path(), "fn.zip", "#!/bin/sh\n");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // The dry run of `zip` with the console in `empty`, and `extra`: its refusal.
    let refused = |zip: &Path, extra: &[&str]| {
        let mut args = vec!["--lambda-zip", arg(zip), "--console-dir", arg(&empty)];
        args.extend(extra);
        dry_run_refused(&args)
    };
    let err = refused(&zip, &[]);
    assert!(
        err.contains("has no index.html: build the console first"),
        "{err}"
    );

    console(&empty);
    let not_zip = dir.path().join("bootstrap");
    std::fs::write(&not_zip, "#!/bin/sh\n").unwrap();
    let err = refused(&not_zip, &[]);
    assert!(err.contains("is not a zip file"), "{err}");

    let err = refused(&zip, &["--regions", PRIMARY]);
    assert!(err.contains("--regions needs exactly two regions"), "{err}");

    // Strong consistency needs three distinct Regions of one MRSC Region set.
    for witness in [SECONDARY, "eu-west-1"] {
        let (ok, _, err) = run(tandem("http://127.0.0.1:9")
            .args(["deploy", "--dry-run", "--consistency", "strong"])
            .args(["--witness-region", witness, "--lambda-zip"])
            .arg(&zip)
            .arg("--console-dir")
            .arg(&empty));
        assert!(!ok, "witness {witness}");
        assert!(
            err.contains("three distinct Regions of one MRSC Region set"),
            "{err}"
        );
    }

    // A template that lacks a parameter deploy sets is caught before any AWS call.
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    for file in ["data.yaml", "region.yaml", "edge.yaml"] {
        let text = std::fs::read_to_string(Path::new(TEMPLATES).join(file)).unwrap();
        let text = if file == "region.yaml" {
            text.replace("  CodeKey:\n", "  CodeKeyRenamed:\n")
        } else {
            text
        };
        std::fs::write(templates.join(file), text).unwrap();
    }
    let err = refused(&zip, &["--templates", arg(&templates)]);
    assert!(
        err.contains("region.yaml declares no parameter CodeKey, which deploy sets"),
        "{err}"
    );

    // So is an edge without the active region's store, which `tandem failover` needs.
    let text = std::fs::read_to_string(Path::new(TEMPLATES).join("region.yaml")).unwrap();
    std::fs::write(templates.join("region.yaml"), text).unwrap();
    let edge = std::fs::read_to_string(Path::new(TEMPLATES).join("edge.yaml")).unwrap();
    assert!(edge.contains("\n  KeyValueStoreArn:\n"));
    std::fs::write(
        templates.join("edge.yaml"),
        edge.replace("\n  KeyValueStoreArn:\n", "\n  KeyValueStoreArnRenamed:\n"),
    )
    .unwrap();
    let err = refused(&zip, &["--templates", arg(&templates)]);
    assert!(
        err.contains("edge.yaml has no output KeyValueStoreArn, which deploy reads"),
        "{err}"
    );
}

/// `--consistency strong` (contract §10): the data stack gets the mode and the witness, the
/// region stacks the mode the data stack reports.
#[test]
fn dry_run_of_a_strong_table_plans_mrsc_with_its_witness() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    console(&dist);
    let (zip, _) = write_zip(dir.path(), "fn.zip", "#!/bin/sh\n");
    let (ok, out, err) = run(tandem("http://127.0.0.1:9")
        .args([
            "deploy",
            "--dry-run",
            "--consistency",
            "strong",
            "--lambda-zip",
        ])
        .arg(&zip)
        .arg("--console-dir")
        .arg(&dist));
    assert!(ok, "dry run failed:\n{out}\n{err}");
    for line in [
        "Consistency = strong".to_owned(),
        format!("WitnessRegion = {}", tandem_shared::region::WITNESS),
        format!("Consistency = <output Consistency of tandem-data in {PRIMARY}>"),
    ] {
        assert_line(&out, &line);
    }
}

#[test]
fn destroy_dry_run_lists_what_goes_and_what_stays() {
    let (ok, out, err) = run(tandem("http://127.0.0.1:9").args(["destroy", "--dry-run"]));
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "keep tandem-data ({PRIMARY}): table tandem-items with its items, secret tandem/secrets (pass --delete-data to delete them)"
        )),
        "{out}"
    );
    assert!(out.contains("no AWS API was called"), "{out}");
    let (ok, out, _) =
        run(tandem("http://127.0.0.1:9").args(["destroy", "--dry-run", "--delete-data"]));
    assert!(ok);
    assert!(
        out.contains(&format!(
            "turn off deletion protection of table tandem-items in {PRIMARY} and {SECONDARY}"
        )),
        "{out}"
    );
    // Without a terminal, only --yes may confirm.
    let (ok, _, err) = run(tandem("http://127.0.0.1:9").arg("destroy"));
    assert!(!ok);
    assert!(err.contains("pass --yes"), "{err}");
}

// ---------------------------------------------------------------------- moto --

fn yaml(path: &Path) -> Mapping {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str::<Value>(&text)
        .unwrap()
        .as_mapping()
        .unwrap()
        .clone()
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::String(k.to_owned()), v))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn output(value: Value) -> Value {
    map(vec![("Value", value)])
}

fn reference(name: &str) -> Value {
    map(vec![("Ref", s(name))])
}

/// A stand-in for `file`: its real `Parameters` and `Rules`, the given resources and outputs.
fn stand_in(file: &str, resources: Value, outputs: Value) -> String {
    let real = yaml(&Path::new(TEMPLATES).join(file));
    let mut t = Mapping::new();
    t.insert(s("AWSTemplateFormatVersion"), s("2010-09-09"));
    for section in ["Parameters", "Rules", "Conditions"] {
        if let Some(v) = real.get(section) {
            t.insert(s(section), v.clone());
        }
    }
    t.insert(s("Resources"), resources);
    t.insert(s("Outputs"), outputs);
    serde_norway::to_string(&Value::Mapping(t)).unwrap()
}

/// Templates moto can create: region.yaml as it is, stand-ins for data.yaml and edge.yaml.
fn moto_templates(dir: &Path, distribution_id: &str, distribution_domain: &str, kvs_arn: &str) {
    for real in ["region.yaml", "watcher.yaml"] {
        std::fs::copy(Path::new(TEMPLATES).join(real), dir.join(real)).unwrap();
    }
    // data.yaml: the global table as a plain table with the same key, retention and
    // deletion protection. (The secret is created through Secrets Manager by the test.)
    let table = map(vec![
        ("Type", s("AWS::DynamoDB::Table")),
        ("DeletionPolicy", s("Retain")),
        ("UpdateReplacePolicy", s("Retain")),
        (
            "Properties",
            map(vec![
                ("TableName", reference("TableName")),
                ("BillingMode", s("PAY_PER_REQUEST")),
                ("DeletionProtectionEnabled", Value::Bool(true)),
                (
                    "AttributeDefinitions",
                    Value::Sequence(vec![map(vec![
                        ("AttributeName", s("id")),
                        ("AttributeType", s("S")),
                    ])]),
                ),
                (
                    "KeySchema",
                    Value::Sequence(vec![map(vec![
                        ("AttributeName", s("id")),
                        ("KeyType", s("HASH")),
                    ])]),
                ),
                (
                    "StreamSpecification",
                    map(vec![("StreamViewType", s("NEW_AND_OLD_IMAGES"))]),
                ),
            ]),
        ),
    ]);
    let data = stand_in(
        "data.yaml",
        map(vec![("ItemsTable", table)]),
        map(vec![
            ("TableName", output(reference("ItemsTable"))),
            ("SecretName", output(reference("SecretName"))),
            ("Consistency", output(reference("Consistency"))),
        ]),
    );
    std::fs::write(dir.join("data.yaml"), data).unwrap();
    // edge.yaml: the real console bucket; the distribution and the active region's store exist
    // outside the stack.
    let real_edge = yaml(&Path::new(TEMPLATES).join("edge.yaml"));
    let bucket = real_edge["Resources"]["ConsoleBucket"].clone();
    let edge = stand_in(
        "edge.yaml",
        map(vec![("ConsoleBucket", bucket)]),
        map(vec![
            ("ConsoleBucketName", output(reference("ConsoleBucket"))),
            ("DistributionId", output(s(distribution_id))),
            ("DistributionDomainName", output(s(distribution_domain))),
            ("KeyValueStoreArn", output(s(kvs_arn))),
        ]),
    );
    std::fs::write(dir.join("edge.yaml"), edge).unwrap();
}

/// The physical name of a stack's resource `Function`.
async fn function_name(cfn: &aws_sdk_cloudformation::Client, stack: &str) -> String {
    let function = cfn
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id("Function")
        .send()
        .await
        .unwrap()
        .stack_resource_detail
        .unwrap();
    function.physical_resource_id().unwrap().to_owned()
}

async fn stack(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Option<Stack> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => out.stacks.unwrap_or_default().into_iter().next(),
        Err(_) => None,
    }
}

fn params(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().to_owned(),
                p.parameter_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn status(stack: &Stack) -> &str {
    stack.stack_status().unwrap().as_str()
}

async fn body_of(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (Vec<u8>, String, String) {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let content_type = out.content_type().unwrap_or_default().to_owned();
    let cache = out.cache_control().unwrap_or_default().to_owned();
    let bytes = out.body.collect().await.unwrap().into_bytes().to_vec();
    (bytes, content_type, cache)
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

/// What data.yaml's secret and edge.yaml's distribution would be (see the module doc), made
/// through their own APIs. Returns the distribution's id and domain.
async fn stand_in_secret_and_distribution(moto: &Moto) -> (String, String) {
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(PRIMARY).await);
    secrets
        .create_secret()
        .name("tandem/secrets")
        .secret_string(
            serde_json::json!({"admin_token": ADMIN_TOKEN, "origin_secret": "moto-origin-secret"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    stand_in_distribution(moto).await
}

/// The smoke table: every check passed, each region answered its own route.
fn assert_smoke_passed(out: &str, edge: &str) {
    assert_line(out, &format!("Smoke checks through {edge}:"));
    // The smoke table's rows (the failover drill's table follows it).
    let rows: Vec<String> = squeezed(out)
        .into_iter()
        .skip_while(|l| !l.starts_with("Smoke checks through"))
        .skip(1)
        .take_while(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    assert_eq!(rows.len(), 7, "{out}");
    assert!(rows.iter().all(|r| r.starts_with("PASS ")), "{out}");
    assert!(
        rows.iter()
            .any(|r| r.contains(&format!("/region/{SECONDARY}/api/health 200 {SECONDARY}"))),
        "{out}"
    );
}

/// Each stack was created, and its events followed until it settled.
fn assert_every_stack_created(out: &str) {
    for stack in [
        format!("tandem-data ({PRIMARY})"),
        format!("tandem-region ({PRIMARY})"),
        format!("tandem-region ({SECONDARY})"),
        format!("tandem-edge ({PRIMARY})"),
    ] {
        assert_line(out, &format!("{stack} created"));
        let name = stack.split(' ').next().unwrap();
        assert!(
            out.contains(&format!(
                "{stack}: {name} AWS::CloudFormation::Stack CREATE_COMPLETE"
            )),
            "no CREATE_COMPLETE event for {stack}:\n{out}"
        );
    }
}

/// The stacks, with the parameters that chain them, and the function each region made from
/// the zip deploy uploaded to that region's bucket. Returns the console bucket.
async fn assert_stacks_chained(moto: &Moto, code_key: &str, zip: &[u8]) -> String {
    let data = stack(&moto.cfn(PRIMARY).await, "tandem-data")
        .await
        .unwrap();
    assert_eq!(status(&data), "CREATE_COMPLETE");
    assert_eq!(params(&data)["PrimaryRegion"], PRIMARY);
    assert_eq!(params(&data)["SecondaryRegion"], SECONDARY);
    assert_eq!(params(&data)["Consistency"], "eventual");
    let mut api_domains = BTreeMap::new();
    for region in [PRIMARY, SECONDARY] {
        let cfn = moto.cfn(region).await;
        let s = stack(&cfn, "tandem-region").await.unwrap();
        assert_eq!(status(&s), "CREATE_COMPLETE", "{region}");
        let p = params(&s);
        assert_eq!(p["TableName"], "tandem-items");
        assert_eq!(
            p["Consistency"], "eventual",
            "the data stack's mode, passed on"
        );
        assert_eq!(p["SecretName"], "tandem/secrets");
        assert_eq!(p["CodeBucket"], format!("tandem-code-{ACCOUNT}-{region}"));
        assert_eq!(p["CodeKey"], code_key);
        assert_eq!(function_name(&cfn, "tandem-region").await, "tandem-api");
        let s3 = moto.s3(region).await;
        let (zip_body, zip_type, _) = body_of(&s3, &p["CodeBucket"], code_key).await;
        assert_eq!(zip_body, zip);
        assert_eq!(zip_type, "application/zip");
        api_domains.insert(region, outputs(&s)["ApiDomainName"].clone());
    }
    let edge = stack(&moto.cfn(PRIMARY).await, "tandem-edge")
        .await
        .unwrap();
    assert_eq!(status(&edge), "CREATE_COMPLETE");
    let edge_params = params(&edge);
    assert_eq!(edge_params["PrimaryApiDomain"], api_domains[PRIMARY]);
    assert_eq!(edge_params["SecondaryApiDomain"], api_domains[SECONDARY]);
    assert_eq!(edge_params["SecretName"], "tandem/secrets");
    outputs(&edge)["ConsoleBucketName"].clone()
}

/// The console, byte for byte, with its headers.
async fn assert_console_uploaded(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    files: &BTreeMap<&str, Vec<u8>>,
) {
    let mut uploaded = keys(s3, bucket).await;
    uploaded.sort();
    assert_eq!(
        uploaded,
        files.keys().map(|k| k.to_string()).collect::<Vec<_>>()
    );
    for (key, body) in files {
        let (got, content_type_got, cache) = body_of(s3, bucket, key).await;
        assert_eq!(&got, body, "{key}");
        assert_eq!(content_type_got, content_type(key), "{key}");
        assert_eq!(cache, cache_control(key), "{key}");
    }
    let (_, _, index_cache) = body_of(s3, bucket, "index.html").await;
    assert_eq!(index_cache, "no-cache");
    let (_, wasm_type, wasm_cache) =
        body_of(s3, bucket, "tandem-frontend-5f1e8d0c2b3a4f69_bg.wasm").await;
    assert_eq!(wasm_type, "application/wasm");
    assert_eq!(wasm_cache, "public, max-age=31536000, immutable");
}

/// The invalidations made on `distribution`, each as its paths.
async fn invalidations(moto: &Moto, distribution: &str) -> Vec<Vec<String>> {
    let cloudfront = moto.cloudfront().await;
    let list = cloudfront
        .list_invalidations()
        .distribution_id(distribution)
        .send()
        .await
        .unwrap()
        .invalidation_list
        .unwrap()
        .items
        .unwrap_or_default();
    let mut paths = Vec::new();
    for summary in list {
        let batch = cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(summary.id())
            .send()
            .await
            .unwrap()
            .invalidation
            .unwrap()
            .invalidation_batch
            .unwrap();
        paths.push(batch.paths().unwrap().items().to_vec());
    }
    paths
}

/// CloudFront's part (see the module doc): each write of the store's active region carried to
/// the local stack's edge, through its control API, unless paused.
struct Propagation {
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Propagation {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Propagation {
    fn start(kvs: &FakeKvs, edge: tandem_ops::client::ControlClient) -> Propagation {
        let mut changes = kvs.changes();
        let paused = Arc::new(AtomicBool::new(false));
        let stopped = paused.clone();
        let task = tokio::spawn(async move {
            while let Some((key, value)) = changes.recv().await {
                if key == ACTIVE_REGION_KEY && !stopped.load(Ordering::SeqCst) {
                    edge.set_active_region(value.as_deref()).await.unwrap();
                }
            }
        });
        Propagation { paused, task }
    }

    /// Stops carrying writes (`true`), or carries them again.
    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

/// The failover drill after the smoke checks: every step passed through the local edge, the
/// RTO printed, the switch made in the stand-in store (and undone), nothing left behind.
async fn assert_drill_passed(out: &str, local: &common::Stack, kvs: &FakeKvs) {
    assert_line(out, &format!("Failover drill through {}:", local.edge));
    let rows: Vec<String> = squeezed(out)
        .into_iter()
        .skip_while(|l| !l.starts_with("Failover drill through"))
        .take_while(|l| !l.starts_with("RTO seen"))
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    // The local stack's primary is deploy's (both us-east-1).
    let names = common::drill_steps();
    assert_eq!(rows.len(), names.len(), "{out}");
    for (row, name) in rows.iter().zip(&names) {
        assert!(row.starts_with(&format!("PASS {name} ")), "{row}\n{out}");
    }
    let row = |name: &str| rows.iter().find(|r| r.contains(name)).unwrap().clone();
    assert!(
        row("write before the switch").contains(&format!("503 from {PRIMARY}")),
        "{out}"
    );
    assert!(
        row("write after the switch").contains(&format!("from {SECONDARY}")),
        "{out}"
    );
    assert!(row("switch to").contains("confirmed through"), "{out}");
    assert!(
        row(&format!("origin cloaking {PRIMARY}")).contains("403"),
        "{out}"
    );
    let rto = squeezed(out)
        .into_iter()
        .find(|l| l.starts_with("RTO seen with the primary failing 3 s: reads "))
        .unwrap_or_else(|| panic!("no RTO line in:\n{out}"));
    assert!(rto.contains("; writes "), "{rto}");
    // The switch went through the store the edge stack names, and back.
    let writes: Vec<(String, Option<String>)> = kvs
        .take_requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.if_match))
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0].0, "PUT");
    assert_eq!(writes[1].0, "DELETE");
    assert!(writes.iter().all(|(_, etag)| etag.is_some()), "{writes:?}");
    assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);
    assert_eq!(local.control().active_region().await.unwrap().region, None);
    let faults = local.control().fault(PRIMARY).await.unwrap();
    assert!(
        matches!(faults.fault, tandem_shared::Fault::None { .. }),
        "{faults:?}"
    );
    let page = common::first_page(local).await;
    let left: Vec<&serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"].as_str().unwrap().starts_with("tandem-prove-"))
        .collect();
    assert!(left.is_empty(), "the drill left {left:?}");
}

/// `tandem failover` and `tandem failback` against the deployed edge: the store is the one the
/// edge stack's output names, written through the (stand-in) data plane; what does not match
/// the stack is refused before anything is written. Then the switch confirmed through an edge
/// that follows the store, and not confirmed through one that does not.
async fn assert_active_region_on_aws(
    moto: &Moto,
    kvs: &FakeKvs,
    domain: &str,
    local: &common::Stack,
    propagation: &Propagation,
) {
    // The fake serves on this runtime while the binary runs: block only this worker.
    let active = |args: &[&str], endpoint: &str| {
        let mut cmd = tandem(&moto.endpoint);
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE", &kvs.endpoint)
            .env_remove("TANDEM_ENDPOINT")
            .env_remove("TANDEM_ADMIN_TOKEN")
            .args(args)
            .args(["--endpoint", endpoint]);
        tokio::task::block_in_place(|| run(&mut cmd))
    };
    // moto's distribution answers nothing: what these calls write is checked in the store, and
    // confirming through the edge comes last, through the local edge.
    let active = |args: &[&str], endpoint: &str| {
        let mut args = args.to_vec();
        if endpoint.starts_with("https://") {
            args.push("--no-confirm");
        }
        active(&args, endpoint)
    };
    let endpoint = format!("https://{domain}/#token={ADMIN_TOKEN}");

    kvs.take_requests();
    let etag = kvs.etag();
    let (ok, out, err) = active(&["failover", "--to", SECONDARY], &endpoint);
    println!("{out}\n{err}");
    assert!(ok, "failover failed:\n{out}\n{err}");
    assert_line(
        &out,
        &format!("active region: {SECONDARY} (every /api/* request goes there first)"),
    );
    assert!(
        out.contains(&format!(
            "key active_region of {} (stack tandem-edge ({PRIMARY})): none -> {SECONDARY}.",
            kvs.arn
        )),
        "{out}"
    );
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let requests = kvs.take_requests();
    let calls: Vec<(&str, &str, Option<&str>)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str(), r.if_match.as_deref()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", "describe", None),
            ("GET", ACTIVE_REGION_KEY, None),
            ("PUT", ACTIVE_REGION_KEY, Some(etag.as_str())),
        ]
    );
    for r in &requests {
        assert!(
            r.authorization.starts_with("AWS4-ECDSA-P256-SHA256 "),
            "not SigV4a: {}",
            r.authorization
        );
        assert_eq!(r.region_set.as_deref(), Some("*"));
    }

    // Refused before the store is touched: a region the edge does not have, another
    // distribution, another prefix.
    for (args, endpoint, refusal) in [
        (
            vec!["failover", "--to", "eu-west-1"],
            endpoint.as_str(),
            format!("no region \"eu-west-1\" behind the edge of tandem-edge ({PRIMARY})"),
        ),
        (
            vec!["failover", "--to", PRIMARY],
            "https://d999999example.cloudfront.net",
            "--endpoint d999999example.cloudfront.net is not the distribution of stack tandem-edge"
                .to_owned(),
        ),
        (
            vec!["failback", "--prefix", "other"],
            endpoint.as_str(),
            format!("no stack other-edge in {PRIMARY}"),
        ),
    ] {
        let (ok, out, err) = active(&args, endpoint);
        assert!(!ok, "{args:?} succeeded:\n{out}");
        assert!(err.contains(&refusal), "{args:?}: {err}");
    }
    assert!(
        kvs.take_requests().is_empty(),
        "a refusal wrote to the store"
    );
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));

    // Failback deletes the key; a second one has nothing to do.
    let (ok, out, err) = active(&["failback"], &endpoint);
    assert!(ok, "failback failed:\n{out}\n{err}");
    assert_line(&out, "active region: the primary (no value set)");
    assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);
    let (ok, out, _) = active(&["failback"], &endpoint);
    assert!(ok && out.contains("already was none: no write"), "{out}");

    // The distribution's custom domain (the first deploy's --domain-name) is the distribution
    // too; another domain is not.
    let (ok, out, err) = active(
        &["failover", "--to", SECONDARY],
        &format!("https://{CUSTOM_DOMAIN}"),
    );
    assert!(ok, "the custom domain was refused:\n{out}\n{err}");
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let (ok, _, err) = active(&["failback"], "https://other.example.com");
    assert!(!ok);
    assert!(
        err.contains(&format!("or its alias {CUSTOM_DOMAIN}")),
        "{err}"
    );
    let (ok, _, err) = active(&["failback"], &format!("https://{CUSTOM_DOMAIN}/#token=x"));
    assert!(ok, "{err}");
    assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);

    // --kvs-arn needs no stack (nor an https endpoint); here another writer gets in first.
    kvs.conflict_next(1);
    let (ok, out, err) = active(
        &[
            "failover",
            "--to",
            SECONDARY,
            "--kvs-arn",
            &kvs.arn,
            "--no-confirm",
        ],
        "http://127.0.0.1:9",
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("the write was retried with its new ETag"),
        "{out}"
    );
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let (ok, _, err) = active(
        &["failback", "--kvs-arn", &kvs.arn, "--no-confirm"],
        "http://127.0.0.1:9",
    );
    assert!(ok, "{err}");
    assert_eq!(kvs.value(ACTIVE_REGION_KEY), None);

    // Confirmed through an edge that routes by the store (the local one, which the test's
    // propagation keeps in step): how long it took, and what the edge showed.
    let through_edge = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--kvs-arn", &kvs.arn]);
        active(&args, &local.edge)
    };
    let (ok, out, err) = through_edge(&["failover", "--to", SECONDARY]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(&format!("confirmed through {} after ", local.edge))
            && out.contains(&format!(
                "routed by {SECONDARY} (x-tandem-active-region: {SECONDARY}), served by {SECONDARY} (200)"
            )),
        "{out}"
    );
    let (ok, out, err) = through_edge(&["failback"]);
    assert!(ok && out.contains("confirmed through"), "{out}\n{err}");

    // An edge that does not follow the store (the propagation stopped, as a router that does
    // not read it): written, not confirmed, and said, after the bound.
    propagation.pause(true);
    let started = std::time::Instant::now();
    let (ok, out, err) = through_edge(&["failover", "--to", SECONDARY, "--confirm-within", "2"]);
    assert!(!ok, "an unconfirmed switch succeeded:\n{out}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(
        err.contains(&format!("not confirmed through {} within 2 s", local.edge))
            && err.contains("routed by none")
            && err.contains("The value is written, but /api/* does not follow it"),
        "{err}"
    );
    assert_eq!(kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let (ok, _, err) = through_edge(&["failback", "--no-confirm"]);
    assert!(ok, "{err}");
    propagation.pause(false);
    assert_eq!(local.control().active_region().await.unwrap().region, None);
    kvs.take_requests();
}

/// New code for both regions, the same data stack, the console as the new build has it.
async fn assert_updated(moto: &Moto, out: &str, code_key: &str, console_bucket: &str) {
    // Same template, same parameters: CloudFormation's "No updates are to be performed."
    assert_line(out, &format!("tandem-data ({PRIMARY}) unchanged"));
    assert!(
        out.contains(&format!("tandem-data ({PRIMARY}): no changes")),
        "{out}"
    );
    for region in [PRIMARY, SECONDARY] {
        let s = stack(&moto.cfn(region).await, "tandem-region")
            .await
            .unwrap();
        assert_eq!(status(&s), "UPDATE_COMPLETE", "{region}");
        assert_eq!(params(&s)["CodeKey"], code_key, "{region}");
        assert_line(out, &format!("tandem-region ({region}) updated"));
    }
    assert!(
        out.contains("deleted 1 files the new console no longer has"),
        "{out}"
    );
    let s3 = moto.s3(PRIMARY).await;
    let keys_now = keys(&s3, console_bucket).await;
    assert!(
        !keys_now.contains(&"favicon.ico".to_owned()),
        "{keys_now:?}"
    );
    let (index, _, _) = body_of(&s3, console_bucket, "index.html").await;
    assert_eq!(index, b"<!doctype html><title>v2</title>");
}

/// An edge whose CloudFront Function route is broken: `/api/*` answers 502 while the edge
/// stack's `ApiFailoverMode` is `function`, and reads are served by the primary once it is
/// `origin-group` (read from moto's edge stack on each request, as CloudFront follows its
/// configuration); both regions answer on their own paths, which hold items. Its base URL.
async fn broken_function_route(moto: &Moto) -> String {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{any, get};
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Edge {
        items: Arc<Mutex<BTreeMap<String, serde_json::Value>>>,
        cfn: aws_sdk_cloudformation::Client,
    }
    fn served_by(region: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-served-region", region.parse().unwrap());
        headers
    }
    async fn api(State(edge): State<Edge>) -> (StatusCode, HeaderMap, &'static str) {
        let s = stack(&edge.cfn, "tandem-edge").await.unwrap();
        match params(&s)["ApiFailoverMode"].as_str() {
            "origin-group" => (StatusCode::OK, served_by(PRIMARY), "{}"),
            _ => (StatusCode::BAD_GATEWAY, HeaderMap::new(), ""),
        }
    }
    async fn health(UrlPath(region): UrlPath<String>) -> (HeaderMap, &'static str) {
        (served_by(&region), "{}")
    }
    async fn item(
        State(edge): State<Edge>,
        method: axum::http::Method,
        UrlPath((region, id)): UrlPath<(String, String)>,
        body: String,
    ) -> (StatusCode, HeaderMap, String) {
        let mut items = edge.items.lock().unwrap();
        let (status, body) = match method.as_str() {
            "PUT" => {
                let data: serde_json::Value = serde_json::from_str(&body).unwrap();
                items.insert(id, data["data"].clone());
                (StatusCode::CREATED, String::new())
            }
            // A whole item, as the contract's GET answers it: the smoke checks read it typed.
            "GET" => match items.get(&id) {
                Some(data) => (
                    StatusCode::OK,
                    serde_json::json!({
                        "item": {
                            "id": id,
                            "data": data,
                            "version": 1,
                            "updated_at": "2026-01-01T00:00:00.000Z",
                            "updated_in": region,
                        },
                        "region": region,
                    })
                    .to_string(),
                ),
                None => (StatusCode::NOT_FOUND, String::new()),
            },
            _ => (StatusCode::NO_CONTENT, String::new()),
        };
        (status, served_by(&region), body)
    }
    let edge = Edge {
        items: Default::default(),
        cfn: moto.cfn(PRIMARY).await,
    };
    let app = axum::Router::new()
        .route("/api/{*rest}", any(api))
        .route("/region/{region}/api/health", get(health))
        .route("/region/{region}/api/items/{id}", any(item))
        .route(
            "/index.html",
            get(|| async { ([("content-type", "text/html")], "<!doctype html>") }),
        )
        .with_state(edge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A parameter of the edge stack as it is now.
async fn edge_parameter(moto: &Moto, key: &str) -> String {
    let s = stack(&moto.cfn(PRIMARY).await, "tandem-edge")
        .await
        .unwrap();
    params(&s)[key].clone()
}

/// `--only-region` of the secondary: its stack has the new code, the primary's the old, and
/// moto saw no request signed for the primary region, nor any to CloudFront.
async fn assert_only_region_deployed(moto: &Moto, out: &str, old_key: &str, new_key: &str) {
    let recorded = moto.recorded().await;
    let elsewhere: Vec<_> = recorded
        .iter()
        .filter(|r| r.region != SECONDARY || r.service == "cloudfront")
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests outside {SECONDARY}: {elsewhere:#?}"
    );
    for service in ["sts", "s3", "cloudformation"] {
        assert!(
            recorded.iter().any(|r| r.service == service),
            "no {service} request recorded: {recorded:#?}"
        );
    }
    for (region, key) in [(PRIMARY, old_key), (SECONDARY, new_key)] {
        let s = stack(&moto.cfn(region).await, "tandem-region")
            .await
            .unwrap();
        assert_eq!(params(&s)["CodeKey"], key, "{region}");
    }
    assert!(
        out.contains(&format!(
            "Deployed only tandem-region ({SECONDARY}): updated."
        )),
        "{out}"
    );
    assert_smoke_region_passed(out);
}

/// `--only-region`'s one smoke check: the region's own health route.
fn assert_smoke_region_passed(out: &str) {
    let rows: Vec<String> = squeezed(out)
        .into_iter()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].starts_with(&format!("PASS health of {SECONDARY}")),
        "{out}"
    );
}

/// The watcher's stack in the secondary region, after the edge, fed the edge's outputs, its
/// function made from its own zip, which went to the secondary region's bucket only.
async fn assert_watcher_deployed(
    moto: &Moto,
    out: &str,
    key: &str,
    zip: &[u8],
    domain: &str,
    kvs_arn: &str,
) {
    assert_line(out, &format!("tandem-watcher ({SECONDARY}) created"));
    let cfn = moto.cfn(SECONDARY).await;
    let s = stack(&cfn, "tandem-watcher")
        .await
        .expect("a watcher stack");
    assert_eq!(status(&s), "CREATE_COMPLETE");
    let p = params(&s);
    assert_eq!(p["Endpoint"], format!("https://{domain}"));
    assert_eq!(p["KeyValueStoreArn"], kvs_arn);
    assert_eq!(p["Regions"], format!("{PRIMARY},{SECONDARY}"));
    assert_eq!(p["ReserveConcurrency"], "false");
    // Deploy said what it found of the account's Lambda limits before changing anything;
    // moto 5.2.5 has no GetAccountSettings, which is said and does not stop it.
    assert!(
        out.contains(&format!(
            "Lambda in {SECONDARY}: could not read the account's limits"
        )),
        "{out}"
    );
    assert!(
        out.contains("the watcher reserves no concurrency; overlapping invocations are kept apart by the KeyValueStore's ETag"),
        "{out}"
    );
    assert_eq!(p["CodeKey"], key);
    let secondary_bucket = format!("tandem-code-{ACCOUNT}-{SECONDARY}");
    assert_eq!(p["CodeBucket"], secondary_bucket);
    let (body, _, _) = body_of(&moto.s3(SECONDARY).await, &secondary_bucket, key).await;
    assert_eq!(body, zip);
    let primary_bucket = format!("tandem-code-{ACCOUNT}-{PRIMARY}");
    let primary_keys = keys(&moto.s3(PRIMARY).await, &primary_bucket).await;
    assert!(!primary_keys.contains(&key.to_owned()), "{primary_keys:?}");
    assert_eq!(
        function_name(&cfn, "tandem-watcher").await,
        "tandem-watcher"
    );
    let made: Vec<String> = cfn
        .describe_stack_resources()
        .stack_name("tandem-watcher")
        .send()
        .await
        .unwrap()
        .stack_resources()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.logical_resource_id().unwrap(),
                r.resource_type().unwrap()
            )
        })
        .collect();
    // What moto's CloudFormation can make (see the module doc for what it skips).
    for resource in [
        "FunctionLogGroup AWS::Logs::LogGroup",
        "FunctionRole AWS::IAM::Role",
        "Function AWS::Lambda::Function",
        "Schedule AWS::Events::Rule",
        "SchedulePermission AWS::Lambda::Permission",
    ] {
        assert!(
            made.iter().any(|m| m == resource),
            "{resource} not in {made:?}"
        );
    }
    assert_line(
        out,
        &format!(
            "health watcher: tandem-watcher in {SECONDARY}, switching after ~3s of failed probes (logs: /aws/lambda/tandem-watcher)"
        ),
    );
}

/// The items table in the primary region; `None` once DynamoDB no longer knows it.
async fn items_table(moto: &Moto) -> Option<aws_sdk_dynamodb::types::TableDescription> {
    let described = moto
        .dynamodb(PRIMARY)
        .await
        .describe_table()
        .table_name("tandem-items")
        .send()
        .await;
    match described {
        Ok(out) => Some(out.table.expect("a described table")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("describing tandem-items: {e:?}"),
    }
}

/// Everything but the data stack and its retained, still protected table is gone.
async fn assert_destroyed_but_the_data(moto: &Moto, console_bucket: &str) {
    let (primary, secondary) = (moto.cfn(PRIMARY).await, moto.cfn(SECONDARY).await);
    assert!(stack(&secondary, "tandem-watcher").await.is_none());
    assert!(stack(&primary, "tandem-edge").await.is_none());
    assert!(stack(&primary, "tandem-region").await.is_none());
    assert!(stack(&secondary, "tandem-region").await.is_none());
    for region in [PRIMARY, SECONDARY] {
        let gone = moto
            .s3(region)
            .await
            .head_bucket()
            .bucket(format!("tandem-code-{ACCOUNT}-{region}"))
            .send()
            .await;
        assert!(gone.is_err(), "code bucket in {region} still there");
    }
    // Emptied before the stack went (moto then leaves the bucket itself behind).
    let left = moto
        .s3(PRIMARY)
        .await
        .list_object_versions()
        .bucket(console_bucket)
        .send()
        .await
        .map(|o| o.versions().len() + o.delete_markers().len())
        .unwrap_or(0);
    assert_eq!(left, 0, "console bucket not emptied");
    let data = stack(&primary, "tandem-data")
        .await
        .expect("the data stack stays");
    assert_eq!(status(&data), "CREATE_COMPLETE");
    let table = items_table(moto).await.expect("the table stays");
    assert_eq!(table.deletion_protection_enabled, Some(true));
}

/// Protection off, data stack gone, table gone.
async fn assert_destroyed_with_the_data(moto: &Moto, out: &str) {
    assert!(
        out.contains(&format!(
            "turned off deletion protection of tandem-items in {PRIMARY}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("deleted table tandem-items in {PRIMARY}")),
        "{out}"
    );
    assert!(
        stack(&moto.cfn(PRIMARY).await, "tandem-data")
            .await
            .is_none()
    );
    let table = items_table(moto).await;
    assert!(table.is_none(), "table still there: {table:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_update_and_destroy_against_moto() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (distribution, domain) = stand_in_secret_and_distribution(&moto).await;
    let kvs = FakeKvs::start().await;
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    moto_templates(&templates, &distribution, &domain, &kvs.arn);
    let dist = dir.path().join("dist");
    let files = console(&dist);
    // moto's distribution answers nothing: the smoke checks go through a local stack's edge,
    // which follows CloudFront's routes, serving the same console, and routes /api/* by the
    // stand-in store's value, which the test carries to it.
    let local = common::Stack::start_with(&["--console-dir", dist.to_str().unwrap()]).await;
    let propagation = Propagation::start(&kvs, local.control().clone());
    let origins = [PRIMARY, SECONDARY].map(|r| format!("{r}={}", local.regions[r]));
    let deploy_via = |zip: &Path, smoke: &str| {
        let mut cmd = tandem(&moto.endpoint);
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE", &kvs.endpoint)
            .args(["deploy", "--lambda-zip"])
            .arg(zip)
            .arg("--console-dir")
            .arg(&dist)
            .arg("--templates")
            .arg(&templates)
            .args(["--smoke-endpoint", smoke, "--smoke-wait", "0"])
            .args([
                "--origin-endpoint",
                &origins[0],
                "--origin-endpoint",
                &origins[1],
            ])
            .args(["--prove-fault-s", "3"]);
        cmd
    };
    let deploy = |zip: &Path| deploy_via(zip, &local.edge);
    // The fake store and the propagation serve on this runtime while the binary runs.
    let run = |cmd: &mut std::process::Command| tokio::task::block_in_place(|| run(cmd));
    let (watcher_zip, watcher_bytes) = write_zip(dir.path(), "watcher.zip", "#!/bin/sh\necho w\n");
    let watcher_key = code_key(Function::Watcher, &watcher_bytes);

    // ---- first deploy: everything is created, and failover is proved through the edge.
    let (zip1, bytes1) = write_zip(dir.path(), "v1.zip", "#!/bin/sh\necho v1\n");
    let key1 = code_key(Function::Api, &bytes1);
    let certificate = format!("arn:aws:acm:us-east-1:{ACCOUNT}:certificate/tandem-test");
    let (ok, out, err) = run(deploy(&zip1)
        .args(["--domain-name", CUSTOM_DOMAIN])
        .args(["--certificate-arn", &certificate]));
    println!("{out}\n{err}");
    assert!(ok, "deploy failed:\n{out}\n{err}");
    let url = format!("https://{domain}/#token={ADMIN_TOKEN}");
    assert_eq!(out.lines().last(), Some(url.as_str()), "{out}");
    assert_every_stack_created(&out);
    assert_smoke_passed(&out, &local.edge);
    assert_drill_passed(&out, &local, &kvs).await;
    assert_line(
        &out,
        &format!(
            "active region: key active_region of {} (`tandem failover --to <region>`, `tandem failback`)",
            kvs.arn
        ),
    );
    let bucket = assert_stacks_chained(&moto, &key1, &bytes1).await;
    assert_console_uploaded(&moto.s3(PRIMARY).await, &bucket, &files).await;
    assert_eq!(
        invalidations(&moto, &distribution).await,
        [[
            "/index.html",
            "/assets/logo.svg",
            "/boot.js",
            "/favicon.ico"
        ]],
        "index.html and every name a build reuses"
    );

    // ---- the active region on AWS, in the store the edge stack names.
    assert_active_region_on_aws(&moto, &kvs, &domain, &local, &propagation).await;

    // ---- the table's mode is fixed at its creation (contract §10): asking for the other one
    // fails before any stack changes. (moto has no MRSC table to create: the stand-in data
    // stack keeps the real Parameters, Rules and Conditions, not the GlobalTable.)
    let (ok, out, err) = run(deploy(&zip1).args(["--consistency", "strong"]));
    assert!(!ok, "a mode change must fail:\n{out}");
    assert!(
        err.contains("cannot change a table's consistency mode"),
        "{err}"
    );
    let data = stack(&moto.cfn(PRIMARY).await, "tandem-data")
        .await
        .unwrap();
    assert_eq!(params(&data)["Consistency"], "eventual");

    // ---- second deploy: new code, one file gone, one changed.
    let (zip2, bytes2) = write_zip(dir.path(), "v2.zip", "#!/bin/sh\necho v2\n");
    let key2 = code_key(Function::Api, &bytes2);
    assert_ne!(key1, key2);
    std::fs::remove_file(dist.join("favicon.ico")).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>v2</title>").unwrap();
    // This time with the health watcher, and without the drill.
    let (ok, out, err) = run(deploy(&zip2)
        .args(["--auto-failover", "--no-prove", "--watcher-zip"])
        .arg(&watcher_zip));
    assert!(ok, "second deploy failed:\n{out}\n{err}");
    println!("{out}");
    assert_line(&out, "Failover drill: skipped (--no-prove)");
    assert_updated(&moto, &out, &key2, &bucket).await;
    assert_watcher_deployed(&moto, &out, &watcher_key, &watcher_bytes, &domain, &kvs.arn).await;
    assert_eq!(
        invalidations(&moto, &distribution).await.len(),
        2,
        "one invalidation per deploy"
    );

    // ---- the bad day: the secondary region alone, with nothing sent to the primary's.
    let (zip3, bytes3) = write_zip(dir.path(), "v3.zip", "#!/bin/sh\necho v3\n");
    let key3 = code_key(Function::Api, &bytes3);
    moto.start_recording().await;
    let (ok, out, err) = run(deploy(&zip3).args(["--only-region", SECONDARY]));
    println!("{out}\n{err}");
    assert!(ok, "--only-region failed:\n{out}\n{err}");
    assert_only_region_deployed(&moto, &out, &key2, &key3).await;

    // ---- the function route broken while both regions answer: offered, then switched.
    let broken = broken_function_route(&moto).await;
    let smoke_through = |extra: &[&str]| {
        let mut cmd = deploy_via(&zip2, &broken);
        cmd.args(["--auto-failover", "--watcher-zip"])
            .arg(&watcher_zip)
            .args(extra);
        cmd
    };
    let (ok, out, err) = run(&mut smoke_through(&[]));
    assert!(!ok, "a failed smoke check fails the deploy:\n{out}");
    assert!(err.contains("--fallback-origin-group"), "{out}\n{err}");
    assert_eq!(edge_parameter(&moto, "ApiFailoverMode").await, "function");
    let (ok, out, err) = run(&mut smoke_through(&["--fallback-origin-group"]));
    println!("{out}\n{err}");
    assert!(ok, "the switch to the origin group passes:\n{out}\n{err}");
    assert!(
        out.contains("switching it to the static origin group")
            && out.contains("CloudFront refuses writes there with 403"),
        "{out}"
    );
    assert_eq!(
        edge_parameter(&moto, "ApiFailoverMode").await,
        "origin-group"
    );
    let write = format!("PASS write an item PUT /region/{PRIMARY}/api/items/");
    assert!(
        squeezed(&out).iter().any(|l| l.starts_with(&write)),
        "{out}"
    );
    assert!(
        squeezed(&out)
            .iter()
            .any(|l| l.starts_with("PASS health through /api/*")),
        "{out}"
    );
    // A deploy without the flags keeps the mode another command chose.
    let (ok, out, err) = run(&mut smoke_through(&[]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        edge_parameter(&moto, "ApiFailoverMode").await,
        "origin-group"
    );

    // ---- destroy, keeping the data.
    let (ok, out, err) = run(tandem(&moto.endpoint).args(["destroy", "--yes"]));
    println!("{out}\n{err}");
    assert!(ok, "destroy failed:\n{out}\n{err}");
    assert_destroyed_but_the_data(&moto, &bucket).await;

    // ---- destroy with the data.
    let (ok, out, err) = run(tandem(&moto.endpoint).args(["destroy", "--yes", "--delete-data"]));
    println!("{out}\n{err}");
    assert!(ok, "destroy --delete-data failed:\n{out}\n{err}");
    assert_destroyed_with_the_data(&moto, &out).await;
}

/// The console bucket is versioned (edge.yaml), and CloudFormation cannot delete a bucket that
/// still holds old versions or delete markers: `destroy` must remove those too. (moto's
/// CloudFormation does not turn versioning on for the stack's bucket, so this is checked on a
/// bucket made versioned through the S3 API.)
#[tokio::test(flavor = "multi_thread")]
async fn emptying_a_versioned_bucket_removes_every_version() {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    use tandem_aws::sdk::{bucket_exists, delete_bucket, empty_bucket};
    let moto = Moto::start().await;
    let s3 = moto.s3(PRIMARY).await;
    let bucket = "tandem-versioned-test";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for (key, body) in [("index.html", "v1"), ("index.html", "v2"), ("gone.js", "x")] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .unwrap();
    }
    s3.delete_object()
        .bucket(bucket)
        .key("gone.js")
        .send()
        .await
        .unwrap();
    /// The bucket's object versions and delete markers.
    async fn versions(s3: &aws_sdk_s3::Client, bucket: &str) -> (usize, usize) {
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        (out.versions().len(), out.delete_markers().len())
    }
    assert_eq!(versions(&s3, bucket).await, (3, 1));

    let deleted = empty_bucket(&s3, bucket).await.unwrap();
    assert_eq!(deleted, 4, "three versions and one delete marker");
    assert_eq!(versions(&s3, bucket).await, (0, 0));
    assert!(delete_bucket(&s3, bucket).await.unwrap());
    assert!(!bucket_exists(&s3, bucket).await.unwrap());
    assert!(!delete_bucket(&s3, bucket).await.unwrap());
}
