//! `tandem status`: the smoke checks `tandem deploy` ends with, run against a local stack's
//! edge, which follows CloudFront's routes (`/api/*`, `/region/<r>/api/*`, the console); the
//! stored active region beside the one `/api/*` is routed by; and `--prove`, the failover drill
//! `tandem deploy` runs after its checks.

mod common;

use common::{EAST, EXE, Stack, TOKEN, WEST, drill_steps, first_page, marking_edge};
use std::process::Command;
use tandem_shared::Fault;

/// `tandem status --endpoint <edge>`: whether it passed, and its output.
fn status(stack: &Stack) -> (bool, String) {
    status_via(&stack.edge, &[])
}

/// `tandem status --endpoint <edge> <args>`, without a token from the environment.
fn status_via(edge: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(EXE)
        .args(["status", "--endpoint", edge])
        .args(args)
        .env_remove("TANDEM_ADMIN_TOKEN")
        .output()
        .expect("tandem runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`status_via`] on another thread: the edges the tests put in front serve on this one.
async fn status_async(edge: &str, args: &[&str]) -> (bool, String) {
    let (edge, args): (String, Vec<String>) = (
        edge.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        status_via(&edge, &args)
    })
    .await
    .unwrap()
}

/// The line of the check named `name`.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{text}"))
}

#[tokio::test]
async fn status_checks_every_route_and_names_what_fails() {
    let console = tempfile::tempdir().unwrap();
    std::fs::write(
        console.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    let stack = Stack::start_with(&["--console-dir", console.path().to_str().unwrap()]).await;

    let (ok, text) = status(&stack);
    assert!(ok, "{text}");
    for (name, region) in [
        ("health through /api/*", EAST),
        (&format!("health of {EAST}"), EAST),
        (&format!("health of {WEST}"), WEST),
        ("write an item", EAST),
        ("read it back", EAST),
        ("delete it", EAST),
    ] {
        let l = line(&text, name);
        assert!(
            l.trim_start().starts_with("PASS") && l.contains(region),
            "{l}"
        );
    }
    assert!(
        line(&text, "console index.html")
            .trim_start()
            .starts_with("PASS"),
        "{text}"
    );
    let list = first_page(&stack).await;
    let items = list["items"].as_array().expect("a page of items");
    assert!(items.is_empty(), "the throwaway item was deleted: {list}");
    // Without the admin token the stored active region is not read: said, not failed.
    assert!(
        text.contains("the stored value was not read (no admin token"),
        "{text}"
    );

    // The secondary faulted: its own route fails, the rest passes, and status says so.
    stack
        .fault(
            WEST,
            Fault::Error {
                status: 503,
                duration_s: None,
            },
        )
        .await;
    let (ok, text) = status(&stack);
    assert!(!ok, "{text}");
    let west = line(&text, &format!("health of {WEST}"));
    assert!(
        west.trim_start().starts_with("FAIL") && west.contains("503"),
        "{text}"
    );
    assert!(
        line(&text, "write an item")
            .trim_start()
            .starts_with("PASS"),
        "{text}"
    );
    assert!(text.contains("Some checks failed"), "{text}");
}

/// The stored active region beside the one `/api/*` is routed by, and the region that served
/// it: agreeing after a switch, and a failure when they still disagree after the window.
#[tokio::test(flavor = "multi_thread")]
async fn status_compares_the_stored_active_region_with_the_edge() {
    let stack = Stack::start().await;
    let token = ["--token", TOKEN];
    let (ok, text) = status_async(&stack.edge, &token).await;
    assert!(ok, "{text}");
    let agree = format!(
        "active region: stored none (the primary); /api/* through {}: routed by none, the primary (x-tandem-active-region: none), served by {EAST} (200): they agree",
        stack.edge
    );
    assert!(text.contains(&agree), "{text}");

    stack.control().set_active_region(Some(WEST)).await.unwrap();
    let (ok, text) = status_async(&stack.edge, &token).await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "active region: stored {WEST}; /api/* through {}: routed by {WEST} (x-tandem-active-region: {WEST}), served by {WEST} (200): they agree",
            stack.edge
        )),
        "{text}"
    );

    // An edge whose router does not read the store: the smoke checks pass, the comparison
    // does not, once the window has passed.
    let stale = marking_edge(&stack.edge, "none").await;
    let started = std::time::Instant::now();
    let (ok, text) = status_async(&stale, &["--token", TOKEN, "--confirm-within", "2"]).await;
    assert!(!ok, "{text}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "{text}"
    );
    assert!(
        line(&text, "health through /api/*")
            .trim_start()
            .starts_with("PASS"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "active region: stored {WEST}; /api/* through {stale}: routed by none"
        )) && text.contains("they still disagree after 2 s"),
        "{text}"
    );
}

/// A router that fell back (`failover=off`): the check of health through `/api/*` says
/// "failover is off", and status fails with the way out.
#[tokio::test(flavor = "multi_thread")]
async fn status_reports_failover_off() {
    let stack = Stack::start().await;
    let fell_back = marking_edge(&stack.edge, "none; failover=off").await;
    let (ok, text) = status_async(&fell_back, &[]).await;
    assert!(!ok, "{text}");
    let api = line(&text, "health through /api/*");
    assert!(api.trim_start().starts_with("FAIL"), "{text}");
    assert!(
        text.contains("failover is off: the /api/* router fell back"),
        "{text}"
    );
    assert!(text.contains("--fallback-origin-group"), "{text}");
}

/// `tandem status --prove` on a local stack: the failover drill, every step passing, the RTO
/// printed, and the stack as it was afterwards (no fault, no active region, no drill item).
#[tokio::test(flavor = "multi_thread")]
async fn status_prove_runs_the_failover_drill() {
    let stack = Stack::start().await;
    let (ok, text) = status_async(
        &stack.edge,
        &["--prove", "--token", TOKEN, "--prove-fault-s", "3"],
    )
    .await;
    println!("{text}");
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("Failover drill through {}:", stack.edge)),
        "{text}"
    );
    for step in drill_steps() {
        let l = line(&text, &format!("  {step} "));
        assert!(l.trim_start().starts_with("PASS"), "{step}: {text}");
    }
    assert!(
        line(&text, "reads during the fault").contains(&format!("answered 200 by {WEST}")),
        "{text}"
    );
    assert!(
        text.contains("RTO seen with the primary failing 3 s: reads "),
        "{text}"
    );
    let control = stack.control();
    assert_eq!(control.active_region().await.unwrap().region, None);
    let fault = control.fault(EAST).await.unwrap().fault;
    assert!(matches!(fault, Fault::None { .. }), "{fault:?}");
    let list = first_page(&stack).await;
    assert_eq!(list["items"], serde_json::json!([]), "the drill cleaned up");
}

/// A drill step that fails (here origin cloaking, checked against the edge, which answers
/// without the secret): status fails, and the drill faults nothing after it.
#[tokio::test(flavor = "multi_thread")]
async fn status_prove_fails_when_a_step_fails() {
    let stack = Stack::start().await;
    let around = format!("{EAST}={}", stack.edge);
    let (ok, text) = status_async(
        &stack.edge,
        &["--prove", "--token", TOKEN, "--origin-endpoint", &around],
    )
    .await;
    assert!(!ok, "{text}");
    let cloaking = line(&text, &format!("origin cloaking {EAST}"));
    assert!(
        cloaking.trim_start().starts_with("FAIL") && cloaking.contains("200, expected 403"),
        "{text}"
    );
    assert!(!text.contains(&format!("fault {EAST}")), "{text}");
    assert!(
        line(&text, "  clean up ").trim_start().starts_with("PASS"),
        "{text}"
    );
    assert!(text.contains("the failover drill failed"), "{text}");
}
