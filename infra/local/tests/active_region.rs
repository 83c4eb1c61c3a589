//! The active region (contract §6.3) on a real stack: a plain client's writes follow it, the health
//! watcher moves it off a hung primary (and confirms its switch through the edge), a manual
//! switch and back loses nothing, and an ETag from one region never passes `If-Match` on another
//! region's write of the same version.

mod common;

use common::{EAST, Stack, WEST, header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tandem_shared::Item;
use tandem_shared::control::{RegionState, SwitchState};
use tandem_shared::headers::{
    ACTIVE_REGION, EDGE_ACTIVE, EDGE_FAILOVER, EDGE_ORIGIN, SERVED_REGION,
};
use tandem_shared::routing::Routed;
use tandem_testkit::until;

/// A plain client's PUT through `/api/`: no resend to another region, as curl does it.
async fn plain_put(s: &Stack, id: &str, n: u64) -> reqwest::Response {
    let body = json!({"data": {"n": n}});
    s.edge(Method::PUT, &format!("/api/items/{id}"), Some(body))
        .await
}

async fn item(r: reqwest::Response) -> Item {
    let body: Value = r.json().await.unwrap();
    serde_json::from_value(body["item"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watcher_moves_plain_writes_and_reads_off_a_hung_primary() {
    let s = Stack::start_with(&[
        "--auto-failover",
        "--failover-after",
        "3",
        "--probe-interval-ms",
        "300",
    ])
    .await;
    assert_eq!(
        plain_put(&s, "before", 1).await.status(),
        StatusCode::CREATED
    );
    s.converged("before").await;
    s.set_region(EAST, RegionState::Blackhole).await;

    // Plain writes fail (the edge's 504) until the watcher switches; then they land in the
    // secondary. Count, don't time: the window is the watcher's N probes.
    let landed = until(Duration::from_secs(30), || {
        let s = &s;
        async move {
            let r = plain_put(s, "during", 2).await;
            r.status().is_success().then(|| header(&r, SERVED_REGION))
        }
    })
    .await;
    assert_eq!(
        landed,
        Some(Some(WEST.to_owned())),
        "a plain PUT never landed"
    );
    assert_eq!(
        s.control().active_region().await.unwrap().region.as_deref(),
        Some(WEST)
    );

    // Reads now go to the secondary first: no failover, so no read timeout paid on the primary.
    for _ in 0..3 {
        let r = s.edge(Method::GET, "/api/items/before", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, EDGE_ORIGIN).as_deref(), Some(WEST));
        assert_eq!(
            header(&r, EDGE_FAILOVER),
            None,
            "the edge tried the hung primary first"
        );
        assert_eq!(header(&r, EDGE_ACTIVE).as_deref(), Some(WEST));
    }

    // The watcher confirmed its switch through the edge on a later round, and says so.
    let confirmed = until(Duration::from_secs(10), || {
        let s = &s;
        async move {
            let watcher = s.control().active_region().await.ok()?.watcher?;
            let seen = watcher.last_switch?;
            (seen.state == SwitchState::Confirmed).then_some(seen)
        }
    })
    .await
    .expect("the watcher never confirmed its switch through the edge");
    assert_eq!(confirmed.to.as_deref(), Some(WEST));
    assert!(confirmed.after_ms < 10_000, "{confirmed:?}");

    // Without --auto-failback the primary's return changes nothing until someone asks.
    s.set_region(EAST, RegionState::Up).await;
    let (status, during) = s.converged("during").await;
    let n = during.map(|i| i.data.to_map()["n"].clone());
    assert_eq!((status, n), (StatusCode::OK, Some(json!(2))));
    assert_eq!(
        s.control().active_region().await.unwrap().region.as_deref(),
        Some(WEST)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_failover_and_back_with_writes_in_flight_loses_nothing() {
    let s = Stack::start().await;
    let mut acked: Vec<Item> = Vec::new();
    let mut served = std::collections::BTreeSet::new();
    for step in 0..3 {
        match step {
            1 => s.control().set_active_region(Some(WEST)).await.unwrap(),
            2 => s.control().set_active_region(None).await.unwrap(),
            _ => Default::default(),
        };
        let want = if step == 1 { WEST } else { EAST };
        // The edge marks the origin request with the value it routed by, over a client's own,
        // and the region that answers echoes it: how the health watcher learns it.
        let r = s
            .http
            .get(format!("{}/api/health", s.edge))
            .header(ACTIVE_REGION, "forged-by-the-client")
            .send()
            .await
            .unwrap();
        let routed = header(&r, ACTIVE_REGION).and_then(|v| Routed::parse(&v));
        let expected = (step == 1).then(|| WEST.to_owned());
        assert_eq!(
            routed,
            Some(Routed {
                active: expected,
                failover_off: false
            }),
            "step {step}"
        );
        // Writes right after the switch, each to a new id and to one shared id.
        for n in 0..20u64 {
            for id in [format!("w{step}-{n}"), "shared".to_owned()] {
                let r = plain_put(&s, &id, step * 100 + n).await;
                assert!(r.status().is_success(), "{id}: {}", r.status());
                assert_eq!(header(&r, SERVED_REGION).as_deref(), Some(want));
                served.insert(want);
                acked.push(item(r).await);
            }
        }
    }
    assert_eq!(served.len(), 2);
    let control = s.control();
    assert!(
        control.until_agreed(Duration::from_secs(30)).await,
        "the regions did not converge"
    );
    for a in &acked {
        let (status, held) = s.converged(&a.id).await;
        assert_eq!(status, StatusCode::OK, "{}", a.id);
        let held = held.unwrap();
        // The last write to "shared" wins everywhere; every other id holds its one write.
        let last = acked.iter().rev().find(|x| x.id == a.id).unwrap();
        assert_eq!(held.etag(), last.etag(), "{} in the end", a.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_etag_from_one_region_never_matches_the_same_version_written_in_another() {
    let s = Stack::start().await;
    s.set_paused(true).await;
    // Version 1 of one id, written independently in each region while they are cut off.
    let put = |region: &'static str| {
        let s = &s;
        async move {
            let path = format!("/region/{region}/api/items/twin");
            item(
                s.edge(Method::PUT, &path, Some(json!({"data": {"in": region}})))
                    .await,
            )
            .await
        }
    };
    let (east, west) = (put(EAST).await, put(WEST).await);
    assert_eq!((east.version, west.version), (1, 1));
    assert_ne!(east.etag(), west.etag());

    // An edit of the primary's copy, conditional on an ETag the client read somewhere.
    let edit_in_east = |etag: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .put(format!("{}/region/{EAST}/api/items/twin", s.edge))
                .header("if-match", etag)
                .json(&json!({"data": {"edited": true}}))
                .send()
                .await
                .unwrap();
            r.status()
        }
    };
    // A client that read the secondary's write sends its ETag to the primary: 412.
    let status = edit_in_east(west.etag().unwrap()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // The primary's own ETag passes there.
    let status = edit_in_east(east.etag().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

/// A watcher that cannot switch is not silent: the control API (and through it the console)
/// says why, and it switches once the disk takes the value again.
#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_cannot_switch_says_so() {
    let s = Stack::start_with(&["--auto-failover", "--probe-interval-ms", "200"]).await;
    let healthy = until(Duration::from_secs(10), || async {
        s.control().active_region().await.ok()?.watcher
    })
    .await
    .expect("the watcher reports its rounds");
    assert_eq!(healthy.error, None);
    assert_eq!(healthy.failover_after, 3);

    // The value cannot be saved: a directory stands where its temporary file goes.
    let tmp = s
        .data_dir()
        .join(format!("{}.tmp", tandem_shared::routing::ACTIVE_REGION_KEY));
    std::fs::create_dir_all(tmp.join("in-the-way")).unwrap();
    s.set_region(EAST, RegionState::Blackhole).await;
    let stuck = until(Duration::from_secs(30), || async {
        let watcher = s.control().active_region().await.ok()?.watcher?;
        watcher.error.is_some().then_some(watcher)
    })
    .await
    .expect("the watcher says it cannot switch");
    assert!(
        stuck
            .error
            .as_deref()
            .unwrap()
            .contains("saving the active region"),
        "{stuck:?}"
    );
    assert_eq!(stuck.failing, [EAST]);
    assert_eq!(stuck.switches, 0);
    assert_eq!(s.control().active_region().await.unwrap().region, None);

    // The disk takes it again: the next round switches, and the error is gone.
    std::fs::remove_dir_all(&tmp).unwrap();
    let switched = until(Duration::from_secs(30), || async {
        let active = s.control().active_region().await.ok()?;
        (active.region.as_deref() == Some(WEST)).then_some(active.watcher?)
    })
    .await
    .expect("the watcher switches once it can");
    assert_eq!(switched.error, None);
    assert_eq!(switched.switches, 1);
}
