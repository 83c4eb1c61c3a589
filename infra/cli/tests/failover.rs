//! `tandem failover --to <region>` and `tandem failback`, run as the real binary against a
//! real stack: `/api/*` follows the active region for writes and reads, and comes back; each
//! switch is confirmed through the edge, and one the edge does not follow fails after the bound.

mod common;

use common::{EAST, Stack, TOKEN, WEST, header, marking_edge};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::process::Command;
use tandem_shared::headers::{EDGE_ACTIVE, SERVED_REGION};

/// Runs `tandem <args> --endpoint <edge> --token <token>`: (success, stdout, stderr).
async fn tandem(s: &Stack, args: &[&str]) -> (bool, String, String) {
    tandem_via(&s.edge, args).await
}

/// Runs `tandem <args> --endpoint <edge> --token <token>` through `edge`.
async fn tandem_via(edge: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(common::EXE);
    cmd.args(args)
        .args(["--endpoint", edge, "--token", TOKEN])
        .env_remove("TANDEM_ENDPOINT")
        .env_remove("TANDEM_ADMIN_TOKEN");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Where a plain PUT through `/api/` lands, and the active region the edge reports.
async fn put_lands(s: &Stack, id: &str) -> (Option<String>, Option<String>) {
    let r = s
        .edge(
            Method::PUT,
            &format!("/api/items/{id}"),
            Some(json!({"data": {}})),
        )
        .await;
    assert!(r.status().is_success(), "{id}: {}", r.status());
    (header(&r, SERVED_REGION), header(&r, EDGE_ACTIVE))
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_and_failback_move_every_method() {
    let s = Stack::start().await;
    assert_eq!(put_lands(&s, "a").await, (Some(EAST.into()), None));

    let (ok, out, err) = tandem(&s, &["failover", "--to", WEST]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(&format!("active region: {WEST}")), "{out}");
    // Confirmed through the edge: its answer to /api/health routed by the new value, and
    // served by that region.
    assert!(
        out.contains(&format!("confirmed through {} after ", s.edge))
            && out.contains(&format!(
                "routed by {WEST} (x-tandem-active-region: {WEST}), served by {WEST} (200)"
            )),
        "{out}"
    );
    assert_eq!(
        put_lands(&s, "b").await,
        (Some(WEST.into()), Some(WEST.into()))
    );
    let r = s.edge(Method::GET, "/api/items/b", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, SERVED_REGION).as_deref(), Some(WEST));

    // A region the stack does not have is refused, and changes nothing.
    let (ok, _, err) = tandem(&s, &["failover", "--to", "eu-west-1"]).await;
    assert!(!ok);
    assert!(err.contains("no region \"eu-west-1\""), "{err}");
    assert_eq!(put_lands(&s, "c").await.0.as_deref(), Some(WEST));

    let (ok, out, err) = tandem(&s, &["failback"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("the primary"), "{out}");
    assert!(
        out.contains(&format!(
            "routed by none, the primary (x-tandem-active-region: none), served by {EAST} (200)"
        )),
        "{out}"
    );
    assert_eq!(put_lands(&s, "d").await, (Some(EAST.into()), None));
}

/// `tandem watch` as its own process, against a stack that runs no watcher: it switches the
/// active region off a hung primary, through the control API.
#[tokio::test(flavor = "multi_thread")]
async fn tandem_watch_switches_a_stack_that_runs_no_watcher() {
    let s = Stack::start().await;
    let mut watch = Command::new(common::EXE)
        .args(["watch", "--endpoint", &s.edge, "--token", TOKEN])
        .args(["--probe-interval-ms", "300", "--failover-after", "3"])
        .env_remove("TANDEM_ENDPOINT")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    s.set_region(EAST, tandem_shared::control::RegionState::Blackhole)
        .await;
    let switched = tandem_testkit::until(std::time::Duration::from_secs(20), || async {
        let active = s.control().active_region().await.ok()?.region;
        (active.as_deref() == Some(WEST)).then_some(())
    })
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(switched.is_some(), "tandem watch did not switch to {WEST}");
    s.set_region(EAST, tandem_shared::control::RegionState::Up)
        .await;
    assert_eq!(put_lands(&s, "after").await.0.as_deref(), Some(WEST));
}

/// An edge that does not route by the value written (its router does not read it): the write
/// happens, the confirmation waits the bound, and the command fails saying what the edge showed.
#[tokio::test(flavor = "multi_thread")]
async fn a_switch_the_edge_does_not_follow_fails_after_the_bound() {
    let s = Stack::start().await;
    let stale = marking_edge(&s.edge, "none").await;
    let started = std::time::Instant::now();
    let (ok, out, err) =
        tandem_via(&stale, &["failover", "--to", WEST, "--confirm-within", "2"]).await;
    assert!(!ok, "an unconfirmed switch succeeded:\n{out}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(out.contains(&format!("active region: {WEST}")), "{out}");
    assert!(
        err.contains(&format!("not confirmed through {stale} within 2 s"))
            && err.contains(&format!(
                "routed by none, the primary (x-tandem-active-region: none), served by {WEST}"
            )),
        "{err}"
    );
    // Written all the same: the store holds it, which `tandem status` would compare.
    assert_eq!(
        s.control().active_region().await.unwrap().region.as_deref(),
        Some(WEST)
    );
    // --no-confirm writes and stops.
    let (ok, out, err) = tandem_via(&stale, &["failback", "--no-confirm"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("not confirmed through the edge (--no-confirm)"),
        "{out}"
    );
    assert_eq!(s.control().active_region().await.unwrap().region, None);
}
