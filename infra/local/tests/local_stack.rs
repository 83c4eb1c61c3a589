//! The local stack end to end, with real processes on free 127.0.0.1 ports: `tandem up`, its
//! region processes, the edge, replication and every fault of SPEC §3–§4.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthy_write_is_answered_by_the_primary_and_replicates() {
    let s = Stack::start().await;
    let r = s
        .edge(
            Method::PUT,
            "/api/items/h1",
            Some(json!({"data": {"v": 1}})),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "x-served-region").as_deref(), Some(EAST));
    assert_eq!(header(&r, "x-edge-origin").as_deref(), Some(EAST));
    assert_eq!(header(&r, "x-edge-failover"), None);
    assert!(
        header(&r, "content-security-policy")
            .unwrap()
            .contains("'wasm-unsafe-eval'")
    );
    let (status, item) = s.converged("h1").await;
    assert_eq!(
        (status, item["data"]["v"].clone()),
        (StatusCode::OK, json!(1))
    );
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
    let r = s
        .edge(
            Method::PUT,
            "/api/items/r1",
            Some(json!({"data": {"v": 1}})),
        )
        .await;
    assert_eq!(r.status(), 201);
    s.converged("r1").await;

    let cases: Vec<(&str, &str)> = vec![
        ("error:500", "status-500"),
        ("error:502", "status-502"),
        ("error:503", "status-503"),
        ("error:504", "status-504"),
        ("slow", "timeout"),
        ("stopped", "connect"),
        ("crashed", "connect"),
        ("blackhole", "timeout"),
    ];
    for (fault, reason) in cases {
        match fault.split_once(':') {
            Some(("error", status)) => {
                s.fault(
                    EAST,
                    json!({"mode": "error", "status": status.parse::<u16>().unwrap()}),
                )
                .await
            }
            _ if fault == "slow" => {
                s.fault(EAST, json!({"mode": "slow", "latency_ms": 2500}))
                    .await
            }
            _ => s.set_region(EAST, fault).await,
        }
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
        match fault.split_once(':') {
            Some(_) => s.fault(EAST, json!({"mode": "none"})).await,
            _ if fault == "slow" => s.fault(EAST, json!({"mode": "none"})).await,
            _ => s.set_region(EAST, "up").await,
        }
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
    s.fault(EAST, json!({"mode": "error", "status": 503})).await;
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
    s.fault(EAST, json!({"mode": "none"})).await;

    // Primary stopped: the edge's own 502; blackholed: its own 504; both JSON.
    for (state, status) in [
        ("stopped", StatusCode::BAD_GATEWAY),
        ("blackhole", StatusCode::GATEWAY_TIMEOUT),
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
        s.set_region(EAST, "up").await;
    }
}

#[tokio::test]
async fn partition_then_heal_converges_last_writer_wins() {
    let s = Stack::start().await;
    let v = s
        .control(Method::PUT, "/replication", json!({"paused": true}))
        .await;
    assert_eq!(v["config"]["paused"], true);
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
        }
    };
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
        }
    };
    // Same id written in both regions: the later write (west) must win everywhere.
    put(EAST, "p1", "east").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(WEST, "p1", "west").await;
    // A later delete beats an earlier write...
    put(WEST, "p2", "west").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(EAST, "p2", "east").await;
    delete(WEST, "p2").await;
    // ...and a later write beats an earlier delete.
    put(EAST, "p3", "one").await;
    put(WEST, "p3", "one").await;
    delete(EAST, "p3").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(WEST, "p3", "two").await;

    // Still partitioned: each region sees its own writes only.
    let r: Value = s.direct(EAST, "/api/items/p1").await.json().await.unwrap();
    assert_eq!(r["item"]["data"]["v"], "east");
    let rep = s.control(Method::GET, "/replication", json!({})).await;
    let pending: u64 = rep["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pending"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(rep["config"]["paused"], true);
    assert!(rep["pairs"].as_array().unwrap().len() == 2, "{rep}");
    let _ = pending; // pending is only known after a pull; paused regions do not pull.

    s.control(Method::PUT, "/replication", json!({"paused": false}))
        .await;
    let (status, item) = s.converged("p1").await;
    assert_eq!(
        (
            status,
            item["data"]["v"].clone(),
            item["updated_in"].clone()
        ),
        (StatusCode::OK, json!("west"), json!(WEST))
    );
    let (status, _) = s.converged("p2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, item) = s.converged("p3").await;
    assert_eq!(
        (status, item["data"]["v"].clone()),
        (StatusCode::OK, json!("two"))
    );
    let rep = s.control(Method::GET, "/replication", json!({})).await;
    for pair in rep["pairs"].as_array().unwrap() {
        assert_eq!(pair["pending"], 0, "{pair}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_the_primary_mid_write_loses_no_acknowledged_write() {
    let s = std::sync::Arc::new(Stack::start().await);
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut acked: Vec<(String, Value)> = Vec::new();
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
                    r = s
                        .http
                        .put(format!("{}/region/{WEST}/api/items/{id}", s.edge))
                        .json(&body)
                        .send()
                        .await;
                }
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let v: Value = resp.json().await.unwrap();
                        acked.push((id, v["item"].clone()));
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.set_region(EAST, "crashed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.set_region(EAST, "up").await;
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
        assert_eq!(&now, item, "acknowledged write {id} changed");
    }
}

#[tokio::test]
async fn sigterm_leaves_no_process_behind() {
    let mut s = Stack::start().await;
    let v = s.control(Method::GET, "/regions", json!({})).await;
    let pids: Vec<u32> = v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(pids.len(), 2);
    s.set_region(WEST, "blackhole").await; // even a SIGSTOPped region must go
    // SAFETY: signalling our own child.
    unsafe { libc_kill(s.child.id() as i32, 2) }; // SIGINT, as Ctrl-C
    let status = s.child.wait().unwrap();
    assert!(status.success(), "tandem up exited with {status}");
    std::thread::sleep(Duration::from_millis(100));
    for pid in pids {
        assert!(!pid_alive(pid), "region process {pid} outlived tandem up");
    }
}

#[tokio::test]
async fn sigterm_stops_the_stack_while_half_sent_requests_are_open() {
    use std::io::Write as _;
    let mut s = Stack::start().await;
    // Half a request to the edge and half to each region: nobody will ever finish them.
    let mut open = Vec::new();
    for base in std::iter::once(&s.edge).chain(s.regions.values()) {
        let mut c = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        c.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        open.push(c);
    }
    // SAFETY: signalling our own child.
    unsafe { libc_kill(s.child.id() as i32, 15) };
    // The drain is bounded (3 s for the edge, then each region's), so this returns; before,
    // the edge waited for the half-sent request forever.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tandem up is still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
    let v = s.control(Method::GET, "/regions", json!({})).await;
    let region = |name: &str| {
        v["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["region"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(region(EAST)["state"], "up", "{v}");
    assert_eq!(region(WEST)["state"], "crashed", "{v}");
    assert!(
        region(WEST)["error"].as_str().unwrap().contains(WEST),
        "the control API says which region and why: {v}"
    );
    let r = s
        .edge(
            Method::PUT,
            "/api/items/still-up",
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(r.status(), 201);
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
        .edge(
            Method::PUT,
            "/region/us-west-2/api/items/x%2Dy",
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["item"]["id"], "x-y");
}
