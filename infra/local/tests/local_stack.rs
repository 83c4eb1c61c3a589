//! The local stack end to end, with real processes on free 127.0.0.1 ports: `tandem up`, its
//! region processes, the edge, replication and every fault of contract §6 and §8.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tandem_api::store::now_ms;
use tandem_shared::Fault;
use tandem_shared::Item;
use tandem_shared::control::{Outage, RegionState};
use tandem_shared::item::parse_timestamp;
use tandem_shared::wire::ItemResponse;
use tandem_testkit::{Signal, alive, exit_status, signal, until};

/// A field of an item's data (null when the item or the field is absent).
fn field(item: &Option<Item>, name: &str) -> Value {
    let data = item.as_ref().map(|i| i.data.to_map()).unwrap_or_default();
    data.get(name).cloned().unwrap_or(Value::Null)
}

/// Waits until the clock (the regions' too: they run on this machine) is past `ms`, so that a
/// write made now is stamped later than one stamped at `ms` (last writer wins by milliseconds).
async fn past(ms: u64) {
    let past = until(Duration::from_secs(5), || async {
        (now_ms() > ms).then_some(())
    });
    assert!(past.await.is_some(), "the clock did not pass {ms}");
}

#[tokio::test]
async fn healthy_write_is_answered_by_the_primary_and_replicates() {
    let s = Stack::start().await;
    let r = s.create("/api/items/h1", json!({"data": {"v": 1}})).await;
    assert_eq!(header(&r, "x-served-region").as_deref(), Some(EAST));
    assert_eq!(header(&r, "x-edge-origin").as_deref(), Some(EAST));
    assert_eq!(header(&r, "x-edge-failover"), None);
    assert!(
        header(&r, "content-security-policy")
            .unwrap()
            .contains("'wasm-unsafe-eval'")
    );
    let (status, item) = s.converged("h1").await;
    assert_eq!((status, field(&item, "v")), (StatusCode::OK, json!(1)));
    // Past the edge without the secret: refused.
    let r = s
        .http
        .get(format!("{}/api/items/h1", s.regions[WEST]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The console's fallback and the control API's token.
    let r = s.edge(Method::GET, "/some/console/route", None).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    let r = s
        .http
        .get(format!("{}/_tandem/regions", s.edge))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn reads_fail_over_on_every_primary_fault() {
    let s = Stack::start().await;
    s.create("/api/items/r1", json!({"data": {"v": 1}})).await;
    s.converged("r1").await;

    let cases = [
        (Outage::Error { status: 500 }, "status-500"),
        (Outage::Error { status: 502 }, "status-502"),
        (Outage::Error { status: 503 }, "status-503"),
        (Outage::Error { status: 504 }, "status-504"),
        (Outage::Slow { latency_ms: 2500 }, "timeout"),
        (Outage::Stopped, "connect"),
        (Outage::Crashed, "connect"),
        (Outage::Blackhole, "timeout"),
    ];
    for (fault, reason) in cases {
        s.control().inject(EAST, fault, None).await.unwrap();
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let started = Instant::now();
            let r = s.edge(method.clone(), "/api/items/r1", None).await;
            let waited = started.elapsed();
            assert_eq!(
                header(&r, "x-edge-origin").as_deref(),
                Some(WEST),
                "{fault} {method}"
            );
            assert_eq!(
                header(&r, "x-served-region").as_deref(),
                Some(WEST),
                "{fault} {method}"
            );
            assert_eq!(
                header(&r, "x-edge-failover").as_deref(),
                Some(reason),
                "{fault} {method}"
            );
            if method == Method::OPTIONS {
                assert_eq!(
                    r.status(),
                    405,
                    "the API has no OPTIONS route: west's own answer"
                );
            } else {
                assert_eq!(r.status(), 200, "{fault} {method}");
            }
            if reason == "timeout" {
                // The edge gives the primary its whole read timeout before failing over.
                let full_timeout_waited = waited >= READ_TIMEOUT;
                assert!(
                    full_timeout_waited,
                    "{fault}: failed over before the read timeout"
                );
            }
        }
        // Heal; the next request starts at the primary again (no stickiness).
        s.control().clear(EAST, fault).await.unwrap();
        let r = s.edge(Method::GET, "/api/items/r1", None).await;
        assert_eq!(
            (r.status(), header(&r, "x-edge-origin")),
            (StatusCode::OK, Some(EAST.to_owned())),
            "after healing {fault}"
        );
        assert_eq!(header(&r, "x-edge-failover"), None);
    }
}

#[tokio::test]
async fn writes_do_not_fail_over_and_client_errors_pass_through() {
    let s = Stack::start().await;
    // 4xx from a healthy primary: passed through, never failed over.
    let r = s.edge(Method::GET, "/api/items/missing", None).await;
    assert_eq!(
        (
            r.status(),
            header(&r, "x-edge-origin"),
            header(&r, "x-edge-failover")
        ),
        (StatusCode::NOT_FOUND, Some(EAST.into()), None)
    );
    let r = s
        .edge(Method::PUT, "/api/items/w1", Some(json!({"data": [1]})))
        .await;
    assert_eq!(
        (r.status(), header(&r, "x-edge-origin")),
        (StatusCode::BAD_REQUEST, Some(EAST.into()))
    );

    // Primary answers 503: PUT and DELETE get the primary's 503.
    let error = Fault::Error {
        status: 503,
        duration_s: None,
    };
    s.fault(EAST, error).await;
    for method in [Method::PUT, Method::DELETE] {
        let r = s
            .edge(
                method.clone(),
                "/api/items/w1",
                Some(json!({"data": {"v": 1}})),
            )
            .await;
        assert_eq!(
            (
                r.status(),
                header(&r, "x-served-region"),
                header(&r, "x-edge-failover")
            ),
            (StatusCode::SERVICE_UNAVAILABLE, Some(EAST.into()), None),
            "{method}"
        );
    }
    // The client's own failover: the same write to the secondary's path succeeds.
    let r = s
        .edge(
            Method::PUT,
            "/region/us-west-2/api/items/w1",
            Some(json!({"data": {"v": 1}})),
        )
        .await;
    assert_eq!(
        (r.status(), header(&r, "x-served-region")),
        (StatusCode::CREATED, Some(WEST.into()))
    );
    let r = s
        .edge(
            Method::POST,
            "/region/us-west-2/api/write",
            Some(json!({"id": "w2", "data": {}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.fault(EAST, Fault::NONE).await;

    // Primary stopped: the edge's own 502; blackholed: its own 504; both JSON.
    for (state, status) in [
        (RegionState::Stopped, StatusCode::BAD_GATEWAY),
        (RegionState::Blackhole, StatusCode::GATEWAY_TIMEOUT),
    ] {
        s.set_region(EAST, state).await;
        let r = s
            .edge(Method::PUT, "/api/items/w3", Some(json!({"data": {}})))
            .await;
        assert_eq!(
            (r.status(), header(&r, "x-edge-failover")),
            (status, None),
            "{state}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "region_unavailable", "{state}");
        let r = s
            .edge(Method::DELETE, "/region/us-west-2/api/items/w1", None)
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        s.set_region(EAST, RegionState::Up).await;
    }
}

#[tokio::test]
async fn partition_then_heal_converges_last_writer_wins() {
    let s = Stack::start().await;
    s.set_paused(true).await;
    // A write's timestamp, in milliseconds.
    let put = |region: &'static str, id: &'static str, v: &'static str| {
        let s = &s;
        async move {
            let r = s
                .edge(
                    Method::PUT,
                    &format!("/region/{region}/api/items/{id}"),
                    Some(json!({"data": {"v": v}})),
                )
                .await;
            assert!(r.status().is_success(), "{region} {id}");
            let body: Value = r.json().await.unwrap();
            parse_timestamp(body["item"]["updated_at"].as_str().unwrap()).unwrap()
        }
    };
    // When the delete was answered (its timestamp is at most that, or the item's last one + 1).
    let delete = |region: &'static str, id: &'static str| {
        let s = &s;
        async move {
            let r = s
                .edge(
                    Method::DELETE,
                    &format!("/region/{region}/api/items/{id}"),
                    None,
                )
                .await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
            now_ms()
        }
    };
    // Same id written in both regions: the later write (west) must win everywhere.
    past(put(EAST, "p1", "east").await).await;
    put(WEST, "p1", "west").await;
    // A later delete beats an earlier write...
    past(put(WEST, "p2", "west").await).await;
    past(put(EAST, "p2", "east").await).await;
    delete(WEST, "p2").await;
    // ...and a later write beats an earlier delete.
    let one = put(EAST, "p3", "one").await;
    put(WEST, "p3", "one").await;
    past(delete(EAST, "p3").await.max(one + 1)).await;
    put(WEST, "p3", "two").await;

    // Still partitioned: each region sees its own writes only.
    let r: Value = s.direct(EAST, "/api/items/p1").await.json().await.unwrap();
    assert_eq!(r["item"]["data"]["v"], "east");
    let rep = s.control().replication().await.unwrap();
    assert!(rep.config.paused);
    assert_eq!(rep.pairs.len(), 2, "{rep:?}");

    s.set_paused(false).await;
    let (status, item) = s.converged("p1").await;
    assert_eq!(
        (
            status,
            field(&item, "v"),
            item.map(|i| i.updated_in).unwrap_or_default()
        ),
        (StatusCode::OK, json!("west"), WEST.to_owned())
    );
    let (status, _) = s.converged("p2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, item) = s.converged("p3").await;
    assert_eq!((status, field(&item, "v")), (StatusCode::OK, json!("two")));
    let rep = s.control().replication().await.unwrap();
    for pair in &rep.pairs {
        assert_eq!(pair.pending, 0, "{pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_the_primary_mid_write_loses_no_acknowledged_write() {
    let s = Arc::new(Stack::start().await);
    let (acks, failovers) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let writer = {
        let (s, acks, failovers) = (s.clone(), acks.clone(), failovers.clone());
        tokio::spawn(async move {
            let mut acked: Vec<(String, Item)> = Vec::new();
            let mut failed_over = 0;
            for i in 0..400 {
                let id = format!("c{i}");
                let body = json!({"data": {"i": i}});
                let mut r = s
                    .http
                    .put(format!("{}/api/items/{id}", s.edge))
                    .json(&body)
                    .send()
                    .await;
                // The client's failover, as the console does it: a 5xx or a network error on a
                // write through /api is resent to the other region.
                if !matches!(&r, Ok(resp) if resp.status().is_success()) {
                    failed_over += 1;
                    failovers.fetch_add(1, Ordering::SeqCst);
                    r = s
                        .http
                        .put(format!("{}/region/{WEST}/api/items/{id}", s.edge))
                        .json(&body)
                        .send()
                        .await;
                }
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let v: ItemResponse = resp.json().await.unwrap();
                        acked.push((id, v.item));
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(resp) => eprintln!(
                        "{id}: {} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    ),
                    Err(e) => eprintln!("{id}: {e:?}"),
                }
            }
            (acked, failed_over)
        })
    };
    // Crash once the writer is under way; bring the primary back once the crash has cost
    // writes through /api (counted, not timed: a slow machine only makes the test slower).
    let reached = |counter: &Arc<AtomicUsize>, n: usize| {
        let counter = counter.clone();
        until(Duration::from_secs(60), move || {
            let counter = counter.clone();
            async move { (counter.load(Ordering::SeqCst) >= n).then_some(()) }
        })
    };
    assert!(
        reached(&acks, 50).await.is_some(),
        "the writer did not start"
    );
    s.set_region(EAST, RegionState::Crashed).await;
    assert!(
        reached(&failovers, 10).await.is_some(),
        "writes did not fail over"
    );
    s.set_region(EAST, RegionState::Up).await;
    let (acked, failed_over) = writer.await.unwrap();
    assert!(
        acked.len() >= 390,
        "writes with client failover should nearly all succeed: {}",
        acked.len()
    );
    assert!(
        failed_over > 0,
        "the crash should have forced client failovers"
    );
    for (id, item) in &acked {
        let (status, now) = s.converged(id).await;
        assert_eq!(status, StatusCode::OK, "acknowledged write {id} lost");
        assert_eq!(now.as_ref(), Some(item), "acknowledged write {id} changed");
    }
}

#[tokio::test]
async fn sigterm_leaves_no_process_behind() {
    let s = Stack::start().await;
    let pids = s.region_pids().await.unwrap();
    assert_eq!(pids.len(), 2);
    s.set_region(WEST, RegionState::Blackhole).await; // even a SIGSTOPped region must go
    assert!(signal(s.pid(), Signal::SIGINT)); // as Ctrl-C
    let status = until(Duration::from_secs(30), || async { exit_status(s.pid()) }).await;
    let status = status.expect("tandem up is still running");
    assert!(status.success(), "tandem up exited with {status}");
    let gone = until(Duration::from_secs(5), || async {
        pids.iter().all(|(_, pid)| !alive(*pid)).then_some(())
    });
    assert!(
        gone.await.is_some(),
        "region processes outlived tandem up: {pids:?}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_stack_while_half_sent_requests_are_open() {
    let s = Stack::start().await;
    // Half a request to the edge and half to each region: nobody will ever finish them.
    let _open = s.half_sent_requests();
    assert!(signal(s.pid(), Signal::SIGTERM));
    // The drain is bounded (3 s for the edge, then each region's), so this returns; before,
    // the edge waited for the half-sent request forever.
    let status = until(Duration::from_secs(30), || async { exit_status(s.pid()) }).await;
    let status = status.expect("tandem up is still running");
    assert!(status.success(), "tandem up exited with {status}");
}

#[tokio::test]
async fn control_and_admin_routes_refuse_a_rebound_name_or_a_foreign_page() {
    let s = Stack::start().await;
    let port = s.edge.rsplit(':').next().unwrap().to_owned();
    let routes = [
        format!("{}/_tandem/regions", s.edge),
        format!("{}/region/{EAST}/api/admin/fault", s.edge),
        format!("{}/api/admin/fault", s.edge),
    ];
    for url in &routes {
        let get = |host: String, origin: Option<&str>| {
            let mut req = s.http.get(url).bearer_auth(TOKEN).header("host", host);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send()
        };
        let ok = get(format!("127.0.0.1:{port}"), None).await.unwrap();
        assert_eq!(ok.status(), 200, "{url}");
        let same = get(
            format!("localhost:{port}"),
            Some(&format!("http://localhost:{port}")),
        )
        .await
        .unwrap();
        assert_eq!(same.status(), 200, "{url}");
        let rebound = get(format!("evil.example:{port}"), None).await.unwrap();
        assert_eq!(rebound.status(), 403, "{url}");
        let body: Value = rebound.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        let foreign = get(format!("127.0.0.1:{port}"), Some("http://evil.example"))
            .await
            .unwrap();
        assert_eq!(foreign.status(), 403, "{url}");
    }
    // The data routes are not affected: any name may read items.
    let r = s
        .http
        .get(format!("{}/api/health", s.edge))
        .header("host", "tandem.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_region_whose_database_cannot_open_does_not_take_the_stack_down() {
    let data = tempfile::tempdir().unwrap();
    // A directory where us-west-2's database file should be: redb cannot open it.
    std::fs::create_dir_all(data.path().join(WEST).join("tandem.redb")).unwrap();
    let s = Stack::start_in(data).await;
    let v = s.control().regions().await.unwrap();
    let region = |name: &str| v.regions.iter().find(|r| r.region == name).unwrap();
    assert_eq!(region(EAST).state, RegionState::Up, "{v:?}");
    assert_eq!(region(WEST).state, RegionState::Crashed, "{v:?}");
    assert!(
        region(WEST).error.as_deref().unwrap().contains(WEST),
        "the control API says which region and why: {v:?}"
    );
    let r = s.create("/api/items/still-up", json!({"data": {}})).await;
    assert_eq!(header(&r, "x-served-region").as_deref(), Some(EAST));
}

#[tokio::test]
async fn the_edge_forwards_paths_exactly_as_sent() {
    let s = Stack::start().await;
    // An encoded region segment is that region; the encoded `?` stays in the id, which the
    // API then refuses (before, the edge decoded it and wrote item "a" with query "b").
    let r = s
        .edge(
            Method::PUT,
            "/region/us%2Deast-1/api/items/a%3Fb",
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(header(&r, "x-served-region").as_deref(), Some(EAST));
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_id");
    assert_eq!(s.direct(EAST, "/api/items/a").await.status(), 404);
    // Percent-encoding that is part of a valid id reaches the origin intact.
    let r = s
        .create("/region/us-west-2/api/items/x%2Dy", json!({"data": {}}))
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["item"]["id"], "x-y");
}
