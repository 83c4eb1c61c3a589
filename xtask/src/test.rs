//! `cargo xtask test`: every check CI runs, in order, failing on the first that fails.

use crate::util::{self, cargo, cargo_step, done, run, step};
use crate::{console, e2e, setup};
use anyhow::Context as _;
use std::process::{Command, Stdio};
use tandem_ops::launch::region_args;

pub fn run_all() -> anyhow::Result<()> {
    setup::rust()?;
    setup::python()?;
    setup::console_tools()?;
    setup::openapi_tools()?;

    cargo_step("cargo fmt --check", "fmt --all --check")?;

    // Seconds, and needs nothing built: the edge's routing on AWS before the long steps.
    crate::function::run()?;

    cargo_step(
        "cargo clippy -D warnings",
        "clippy --workspace --all-targets -- -D warnings",
    )?;
    cargo_step(
        "shared crate builds for wasm32-unknown-unknown",
        "check -p tandem-shared --target wasm32-unknown-unknown",
    )?;

    local_stack_has_no_aws_sdk()?;
    crates_depend_on_what_they_say()?;

    // The workspace clippy above sees the console as host code; this is the code that ships.
    cargo_step(
        "cargo clippy -D warnings: the console for wasm32-unknown-unknown",
        "clippy -p tandem-frontend --target wasm32-unknown-unknown -- -D warnings",
    )?;

    console::build()?;
    console::size_budget()?;

    let t = step("cargo test (DynamoDB tests on moto's server)");
    let (passed, failed) = cargo_test(
        cargo()
            .args(["test", "--workspace"])
            .env("TANDEM_MOTO_SERVER", setup::venv_bin("moto_server")),
    )?;
    done(t);

    schemathesis()?;
    crate::templates::run_all()?;
    let (e2e_passed, e2e_failed) = e2e::run_all(e2e::Screenshots::Target)?;
    println!("\nall checks passed");
    println!("cargo-test: {passed} passed, {failed} failed");
    println!("e2e: {e2e_passed} passed, {e2e_failed} failed");
    Ok(())
}

/// Runs `cargo test`, streaming its output, and adds up its `test result:` lines so the run
/// ends on one total rather than on the last crate's (often empty) doc-test line.
fn cargo_test(cmd: &mut Command) -> anyhow::Result<(u64, u64)> {
    use std::io::{BufRead as _, BufReader};
    let mut child = cmd
        .current_dir(util::root())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    let stdout = child.stdout.take().context("cargo test stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| {
                        part.trim().strip_suffix(word).map(|n| {
                            n.trim()
                                .trim_start_matches("ok.")
                                .trim_start_matches("FAILED.")
                                .trim()
                                .parse()
                                .unwrap_or(0)
                        })
                    })
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "cargo test failed: {passed} passed, {failed} failed"
    );
    Ok((passed, failed))
}

/// The OpenAPI document of the live region on `port`, as its consumers take it: Redocly's
/// recommended rules find no error, and a client generated from it by openapi-python-client
/// does a round trip (put, get, conditional put, list, delete, 404, 400).
fn openapi_for_consumers(port: u16) -> anyhow::Result<()> {
    let t =
        step("OpenAPI for consumers: redocly lint (recommended), a generated client's round trip");
    let dir = util::target_dir().join("openapi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let document = dir.join("openapi.json");
    std::fs::write(&document, util::http_get(port, "/api/openapi.json")?)?;
    run(Command::new(setup::redocly())
        .arg("lint")
        .arg(&document)
        .args(["--extends", "recommended", "--format", "stylish"]))?;
    run(Command::new(setup::venv_bin("openapi-python-client"))
        .args(["generate", "--meta", "none", "--overwrite", "--path"])
        .arg(&document)
        .arg("--output-path")
        .arg(dir.join("tandem_client")))?;
    run(Command::new(setup::venv_bin("python"))
        .arg(util::root().join("xtask/python/client_round_trip.py"))
        .arg(&dir)
        .arg(format!("http://127.0.0.1:{port}")))?;
    done(t);
    Ok(())
}

/// A live region (embedded store) fuzzed from its own OpenAPI document.
fn schemathesis() -> anyhow::Result<()> {
    let t = step("schemathesis against a live region's /api/openapi.json");
    run(cargo().args(["build", "-p", "tandem-api", "--bin", "tandem-api"]))?;
    let data = util::target_dir().join("schemathesis-data");
    let _ = std::fs::remove_dir_all(&data);
    let port = util::free_ports(1)?;
    let mut region = Command::new(util::target_dir().join("debug/tandem-api"))
        .args(region_args("us-east-1", port, &data))
        .args(["--admin-token", "schemathesis-token"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting tandem-api")?;
    let result = util::wait_for_port(port)
        .and_then(|()| openapi_for_consumers(port))
        .and_then(|()| {
            // positive_data_acceptance is left out on purpose: a schema-valid `If-Match` that names
            // another version must get 412, and a schema-valid string that is not a cursor this API
            // issued must get 400. Every other check runs, `not_a_server_error` and
            // `response_schema_conformance` included. No admin token is sent, so the fuzzer cannot
            // set a fault that would turn data routes into (deliberate) 5xx.
            run(Command::new(setup::venv_bin("schemathesis"))
                .args(["run", &format!("http://127.0.0.1:{port}/api/openapi.json")])
                .args([
                    "--checks",
                    "all",
                    "--exclude-checks",
                    "positive_data_acceptance",
                ])
                .args(["--max-examples", "40", "--seed", "20261127", "--no-color"])
                .args(["--warnings", "off"]))
        });
    let _ = region.kill();
    let _ = region.wait();
    result?;
    done(t);
    Ok(())
}

/// The crates of `cargo tree -p <package> -e <edges> <flags>`, one per line.
fn tree(package: &str, edges: &str, flags: &[&str]) -> anyhow::Result<String> {
    let out = cargo()
        .args(["tree", "-p", package, "-e", edges, "--prefix", "none"])
        .args(flags)
        .output()
        .context("running cargo tree")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Crate edges that say what depends on what: the Lambda's build of the API carries no embedded
/// store, and the AWS crate, the test kit and xtask reach a stack through tandem-ops, not the
/// local stack's crate.
fn crates_depend_on_what_they_say() -> anyhow::Result<()> {
    let t = step(
        "crate edges: the Lambda build without redb; tandem-aws, testkit, xtask without tandem-local",
    );
    let has = |tree: &str, name: &str| tree.lines().any(|l| l.starts_with(&format!("{name} v")));
    let lambda = tree(
        "tandem-api",
        "normal",
        &["--no-default-features", "--features", "aws"],
    )?;
    anyhow::ensure!(
        !has(&lambda, "redb"),
        "the Lambda build of tandem-api carries redb"
    );
    for package in ["tandem-aws", "tandem-testkit", "xtask"] {
        let deps = tree(package, "normal", &[])?;
        anyhow::ensure!(
            !has(&deps, "tandem-local"),
            "{package} depends on tandem-local"
        );
    }
    done(t);
    Ok(())
}

/// The local stack and its tests build without any AWS SDK crate (issue 11): `cargo tree` of
/// tandem-local, dev-dependencies included, must not name one.
fn local_stack_has_no_aws_sdk() -> anyhow::Result<()> {
    let t = step("tandem-local builds without the AWS SDK (cargo tree)");
    let tree = tree("tandem-local", "normal,dev,build", &[])?;
    let aws: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter(|l| l.starts_with("aws-sdk-") || l.starts_with("aws-config"))
        .collect();
    anyhow::ensure!(aws.is_empty(), "tandem-local pulls in the AWS SDK: {aws:?}");
    done(t);
    Ok(())
}
