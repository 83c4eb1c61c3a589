//! The attacks that once took a region down (and, failed over, the other one too), each as a
//! bounded test on a real stack, so that no later change reopens them: poison list pages, a
//! process squatting on a region's port, regions killed from outside and crash loops, reads
//! while a region copies its peer's state, stalled bodies, and a stop that drains everything at
//! once. (Replays of signed replication requests: `replication.rs`; conditional deletes: the
//! API's behaviour suite; bodies, answers and connections at the server: `slow_clients.rs`.)

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};
use tandem_ops::memory::rss;
use tandem_shared::control::RegionState;
use tandem_testkit::{Signal, signal, until};

/// `{"a":[0,0,…]}` just under the item limit: the shape that cost most when pages were decoded.
fn poison() -> Value {
    json!({"data": {"a": vec![0; 200_000]}})
}

#[tokio::test]
async fn sixteen_poison_pages_at_once_leave_both_regions_standing() {
    let s = Stack::start().await;
    for i in 0..101 {
        s.create(&format!("/api/items/poison-{i:03}"), poison())
            .await;
    }
    s.converged("poison-100").await;
    let before = s.region_pids().await.unwrap();
    let baseline: Vec<f64> = before.iter().map(|(_, pid)| rss(*pid).now).collect();
    let started = Instant::now();
    let pages = (0..16).map(|_| s.edge(Method::GET, "/api/items?limit=100", None));
    let answers = futures::future::join_all(pages).await;
    eprintln!("16 pages answered in {:?}", started.elapsed());
    for r in answers {
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
        let page: Value = r.json().await.unwrap();
        assert!(!page["items"].as_array().unwrap().is_empty());
        assert!(
            page["next_cursor"].is_string(),
            "5 MiB of 40 MB: a cursor to the rest"
        );
    }
    let after = s.region_pids().await.unwrap();
    assert_eq!(before, after, "no region died (the same processes answer)");
    for ((region, pid), base) in after.iter().zip(baseline) {
        let peak = rss(*pid).peak;
        eprintln!("{region}: RSS {base:.0} MiB before, peak {peak:.0} MiB");
        // Eight pages at a time, each about twice its 5 MiB answer, and the store's cache.
        assert!(peak - base < 256.0, "{region} grew {:.0} MiB", peak - base);
    }
}

/// A process that takes us-west-2's port while it is down: the edge, the control API and the
/// supervisor send it nothing secret, and never call it up.
#[tokio::test]
async fn a_process_squatting_on_a_region_port_learns_no_secret_and_is_never_up() {
    let s = Stack::start().await;
    s.set_region(WEST, RegionState::Stopped).await;
    let port: u16 = s.regions[WEST].rsplit(':').next().unwrap().parse().unwrap();
    let rogue = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the freed port");
    let (tx, heard) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in rogue.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || rogue_answers(stream, tx));
        }
    });
    // Through the edge: a read, a write and an admin call, all addressed to us-west-2.
    let token = format!("Bearer {TOKEN}");
    let admin = s
        .http
        .get(format!("{}/region/{WEST}/api/admin/fault", s.edge))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin.status(),
        502,
        "an origin that cannot prove itself is unreachable"
    );
    let read = s
        .edge(Method::GET, &format!("/region/{WEST}/api/items/a"), None)
        .await;
    assert_eq!(read.status(), 502);
    // The control API asks the regions for their figures, and the supervisor tries to start it.
    s.control().replication().await.unwrap();
    let started = s.control().set_region(WEST, RegionState::Up).await;
    let why = format!("{:#}", started.unwrap_err());
    assert!(why.contains("cannot prove it is us-west-2"), "{why}");
    let west = s.control().regions().await.unwrap().regions.remove(1);
    assert_ne!(west.state, RegionState::Up, "{west:?}");
    // What the rogue heard: proof requests, and us-east-1's signed pulls (which carry no
    // secret, and whose answers it cannot sign); never a token, a secret or the headers that
    // carry them.
    let all = heard
        .try_iter()
        .collect::<Vec<String>>()
        .join("\n")
        .to_lowercase();
    assert!(all.contains("get /_replication/proof "), "{all}");
    for secret in [TOKEN, SECRET, "x-origin-verify", "authorization"] {
        let secret = secret.to_lowercase();
        assert!(!all.contains(&secret), "the rogue heard {secret}:\n{all}");
    }
}

/// Reads what a client sends on `stream`, reports it, and answers 204 with a made-up proof.
fn rogue_answers(mut stream: std::net::TcpStream, heard: std::sync::mpsc::Sender<String>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        let _ = heard.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        let answer = "HTTP/1.1 204 No Content\r\nx-tandem-proof: bm90LWEtcHJvb2Y\r\n\r\n";
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_region_killed_from_outside_comes_back_and_a_crash_loop_is_called_one() {
    let s = Stack::start().await;
    s.create("/api/items/k", json!({"data": {}})).await;
    s.converged("k").await;
    for kill in 1..=3u64 {
        let pid = s.region_pids().await.unwrap()[1].1;
        let killed = Instant::now();
        assert!(signal(pid, Signal::SIGKILL), "{WEST} runs");
        // Back: another process, proven, answering reads.
        let back = until(Duration::from_secs(30), || async {
            let west = s.control().regions().await.ok()?.regions.remove(1);
            let read = s
                .http
                .get(format!("{}/api/items/k", s.regions[WEST]))
                .header("x-origin-verify", SECRET)
                .send()
                .await;
            let answered = read.is_ok_and(|r| r.status() == StatusCode::OK);
            (west.pid.is_some_and(|p| p != pid) && west.restarts == kill && answered)
                .then_some(west)
        })
        .await
        .unwrap_or_else(|| panic!("{WEST} did not come back after kill {kill}"));
        eprintln!(
            "kill {kill}: {WEST} answered again after {:?}",
            killed.elapsed()
        );
        assert_eq!(back.last_exit.as_deref(), Some("killed by SIGKILL"));
        let expected = if kill < 3 {
            RegionState::Up
        } else {
            RegionState::Crashing
        };
        assert_eq!(back.state, expected, "after kill {kill}: {back:?}");
    }
    // The operator's own crash stays down: it is what they asked for.
    s.set_region(WEST, RegionState::Crashed).await;
    let west = s.control().regions().await.unwrap().regions.remove(1);
    assert_eq!((west.state, west.pid), (RegionState::Crashed, None));
}

#[tokio::test]
async fn a_region_copying_its_peer_answers_503_for_what_it_cannot_vouch_for_never_404() {
    let s = Stack::start().await;
    let ids: Vec<String> = (0..50).map(|i| format!("held-{i:02}")).collect();
    for id in &ids {
        s.create(&format!("/api/items/{id}"), json!({"data": {}}))
            .await;
    }
    s.converged(ids.last().unwrap()).await;
    // us-west-2 loses its disk while replication is paused: it comes back empty, and cannot
    // copy us-east-1's state until replication resumes.
    s.set_paused(true).await;
    s.set_region(WEST, RegionState::Stopped).await;
    std::fs::remove_dir_all(s.data_dir().join(WEST)).unwrap();
    s.set_region(WEST, RegionState::Up).await;
    for id in &ids {
        let r = s.direct(WEST, &format!("/api/items/{id}")).await;
        assert_eq!(r.status(), 503, "{id}");
        assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "region_unavailable");
    }
    assert_eq!(
        s.direct(WEST, "/api/items").await.status(),
        503,
        "nor can it list"
    );
    let health = s.direct(WEST, "/api/health").await;
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "resyncing", "{health}");
    // With us-west-2 active, a read fails over to us-east-1, which holds the item.
    s.control().set_active_region(Some(WEST)).await.unwrap();
    let r = s.edge(Method::GET, "/api/items/held-07", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-edge-failover").as_deref(), Some("status-503"));
    // Once the copy is made, it vouches again.
    s.set_paused(false).await;
    let (status, _) = s.converged("held-07").await;
    assert_eq!(status, 200);
    let gone = s.direct(WEST, "/api/items/never-written").await;
    assert_eq!(gone.status(), 404, "absent, and now it can say so");
}

#[tokio::test]
async fn stalled_bodies_leave_health_and_the_control_api_answering() {
    let s = Stack::start().await;
    let edge = s.edge.trim_start_matches("http://").to_owned();
    // Each promises 100,000 bytes and sends one. The edge's budget takes ~1,300 of them, the
    // rest are refused at once; none holds the edge beyond the body deadline.
    let mut stalled = Vec::new();
    for _ in 0..400 {
        let mut c = std::net::TcpStream::connect(&edge).unwrap();
        c.write_all(
            b"PUT /api/items/stall HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
        )
        .unwrap();
        stalled.push(c);
    }
    let asked = Instant::now();
    let health = s.edge(Method::GET, "/api/health", None).await;
    assert_eq!(health.status(), 200);
    s.control().regions().await.unwrap();
    eprintln!(
        "health and the control API answered in {:?} beside 400 stalled bodies",
        asked.elapsed()
    );
    // A stalled body gets 408 once its deadline passes, and its connection is closed.
    let mut first = stalled.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn stopping_drains_every_process_at_once() {
    let mut s = Stack::start().await;
    // A request half sent to the edge and to each region holds each for its whole drain.
    let _held = s.half_sent_requests();
    // Let every server take its connection in.
    assert_eq!(s.edge(Method::GET, "/api/health", None).await.status(), 200);
    let stopping = Instant::now();
    s.stop();
    let took = stopping.elapsed();
    eprintln!("tandem up stopped in {took:?}");
    // One drain (3 s), not one per process in turn (the edge, then each region: 9 s and more).
    assert!(took < Duration::from_secs(6), "stopping took {took:?}");
}

/// While replication is paused, the backlog reads from the peer's current head (it read 0
/// before: the head was only learnt by pulling), and `tandem verify` counts every difference
/// while listing only the first hundred (its memory does not grow with them).
#[tokio::test]
async fn figures_stay_true_while_replication_is_paused() {
    let s = Stack::start().await;
    s.set_paused(true).await;
    let writes = 150u64;
    for i in 0..writes {
        s.create(&format!("/api/items/behind-{i:03}"), json!({"data": {}}))
            .await;
    }
    let backlog = until(Duration::from_secs(15), || async {
        let pairs = s.control().replication().await.ok()?.pairs;
        let pair = pairs.into_iter().find(|p| p.from == EAST)?;
        (pair.pending == writes).then_some(pair)
    })
    .await;
    assert!(
        backlog.is_some(),
        "the paused link's backlog never read {writes}"
    );
    let verdict = s.control().verify().await.unwrap();
    assert!(!verdict.agree);
    assert_eq!(verdict.differing_ids, writes);
    assert_eq!(
        verdict.differences.len(),
        tandem_shared::replication::DIFFERENCES_SHOWN
    );
    assert_eq!(verdict.differences[0].id, "behind-000", "in id order");
    s.set_paused(false).await;
    assert!(s.control().until_agreed(Duration::from_secs(30)).await);
}
