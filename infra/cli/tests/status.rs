//! `tandem status`: the smoke checks `tandem deploy` ends with, run against a local stack's
//! edge, which follows CloudFront's routes (`/api/*`, `/region/<r>/api/*`, the console).

mod common;

use common::{EAST, EXE, Stack, WEST};
use std::process::Command;
use tandem_shared::Fault;

/// `tandem status --endpoint <edge>`: whether it passed, and its output.
fn status(stack: &Stack) -> (bool, String) {
    let out = Command::new(EXE)
        .args(["status", "--endpoint", &stack.edge])
        .output()
        .expect("tandem runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
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
    let list: serde_json::Value = stack
        .edge(reqwest::Method::GET, "/api/items?limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().expect("a page of items");
    assert!(items.is_empty(), "the throwaway item was deleted: {list}");

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
