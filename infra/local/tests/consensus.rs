//! The strong mode (contract §10) on real processes: `tandem-local up --consistency strong`,
//! two regions and a witness agreeing through the consensus log.

mod common;

use common::{EAST, Stack, WEST};
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tandem_ops::items::ItemClient;
use tandem_shared::Consistency;
use tandem_shared::control::{MemberRole, RegionState};
use tandem_shared::item::Data;
use tandem_testkit::until;

const WITNESS: &str = "us-east-2";

/// A strong stack; the log is snapshotted every 50 entries, so a member that lost its disk
/// after a few hundred writes catches up from a snapshot, not from the log.
async fn strong() -> Stack {
    Stack::start_with(&["--consistency", "strong", "--snapshot-every", "50"]).await
}

fn data(n: usize) -> Data {
    Data::try_from(serde_json::json!({ "n": n })).unwrap()
}

/// Waits until every member is a voter of one membership and a leader is known (at most 15 s).
async fn settled(s: &Stack) {
    let control = s.control();
    let ok = until(Duration::from_secs(15), || async {
        let c = control.consensus().await.ok()?;
        let voters = c.members.iter().filter(|m| m.voter).count();
        (c.leader.is_some() && c.members.len() == 3 && voters == 3).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{:?}", control.consensus().await);
}

/// PUT to `items` until the answer is not a 503 (a leader being elected), at most 10 s.
async fn put_settled(
    items: &ItemClient,
    id: &str,
    n: usize,
) -> tandem_ops::items::Answer<tandem_shared::wire::ItemResponse> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = items.put(id, &data(n), None).await.expect("an answer");
        if answer.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return answer;
        }
    }
}

#[tokio::test]
async fn writes_acknowledged_in_one_region_are_read_at_once_in_the_other_and_survive_a_lost_disk() {
    let s = strong().await;
    settled(&s).await;
    let (east, west) = (s.items_in(EAST), s.items_in(WEST));
    let started = Instant::now();
    let mut etags = Vec::new();
    for i in 0..200 {
        let id = format!("k{i}");
        let put = put_settled(&east, &id, i).await;
        assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
        // Read at once in the other region: the write is there, the very same write.
        let got = west.get(&id).await.expect("an answer");
        assert_eq!((got.status, &got.etag), (StatusCode::OK, &put.etag), "{id}");
        assert_eq!(got.served_region.as_deref(), Some(WEST));
        etags.push(put.etag.clone().expect("an ETag"));
    }
    eprintln!(
        "200 strong writes in us-east-1, each read back in us-west-2: {:?}",
        started.elapsed()
    );

    // us-east-1 crashes and its disk is lost.
    s.set_region(EAST, RegionState::Crashed).await;
    std::fs::remove_dir_all(s.data_dir().join(EAST)).expect("removing us-east-1's data");
    // If us-east-1 led, the others elect a leader first: reads answer 503 until then.
    let crashed = Instant::now();
    let served = until(Duration::from_secs(10), || async {
        let got = west.get("k0").await.ok()?;
        (got.status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(served.is_some(), "{:?}", s.control().consensus().await);
    eprintln!(
        "us-west-2 served reads {:?} after us-east-1 crashed",
        crashed.elapsed()
    );
    for (i, etag) in etags.iter().enumerate() {
        let got = west.get(&format!("k{i}")).await.expect("an answer");
        assert_eq!(
            (got.status, got.etag.as_ref()),
            (StatusCode::OK, Some(etag)),
            "k{i}"
        );
    }
    // us-west-2 and the witness are a majority: writes go on.
    let during = put_settled(&west, "during-the-outage", 1).await;
    assert_eq!(during.status, StatusCode::CREATED, "{during:?}");

    // us-east-1 comes back on an empty disk: it rejoins under a new node id and catches up.
    let back = Instant::now();
    s.set_region(EAST, RegionState::Up).await;
    let caught_up = until(Duration::from_secs(30), || async {
        let got = east.get("during-the-outage").await.ok()?;
        (got.status == StatusCode::OK && got.etag == during.etag).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "{:?}", s.control().consensus().await);
    eprintln!(
        "us-east-1 rejoined on an empty disk and served the outage's write after {:?}",
        back.elapsed()
    );
    settled(&s).await;
    // The swap of ids is a joint-consensus change, two log entries: every member may already
    // be a voter while the joint configuration (old and new id) is still the one in force, so
    // wait for the final one to reach the rejoined member rather than read it once.
    let control = s.control();
    let swapped = until(Duration::from_secs(15), || async {
        let status = control.consensus().await.ok()?;
        let east = status.members.iter().find(|m| m.region == EAST)?;
        (!east.voters.contains(&format!("{EAST}#0"))).then_some(())
    })
    .await;
    let status = control.consensus().await.unwrap();
    let rejoined = status.members.iter().find(|m| m.region == EAST).unwrap();
    assert!(swapped.is_some(), "the old id still votes: {status:?}");
    assert_eq!(
        (rejoined.generation, rejoined.voter),
        (1, true),
        "{status:?}"
    );
    assert!(rejoined.voters.contains(&format!("{EAST}#1")), "{status:?}");
    assert!(
        !rejoined.voters.contains(&format!("{EAST}#0")),
        "the old id no longer votes"
    );
    // The log behind the snapshot was purged: the state came in a snapshot.
    assert!(rejoined.purged.is_some(), "{rejoined:?}");
    for (i, etag) in etags.iter().enumerate() {
        let got = east.get(&format!("k{i}")).await.expect("an answer");
        assert_eq!(got.etag.as_ref(), Some(etag), "k{i} in the rejoined region");
    }
    assert!(
        s.control().until_agreed(Duration::from_secs(10)).await,
        "{:?}",
        s.control().verify().await
    );
}

#[tokio::test]
async fn a_region_cut_off_from_the_majority_answers_503_and_acknowledges_nothing() {
    let s = strong().await;
    settled(&s).await;
    let east = s.items_in(EAST);
    assert_eq!(
        put_settled(&east, "before", 0).await.status,
        StatusCode::CREATED
    );
    s.set_region(WEST, RegionState::Stopped).await;
    s.set_region(WITNESS, RegionState::Blackhole).await;
    for i in 0..3 {
        let started = Instant::now();
        let put = east
            .put(&format!("cut-off-{i}"), &data(i), None)
            .await
            .expect("an answer");
        let took = started.elapsed();
        assert_eq!(put.status, StatusCode::SERVICE_UNAVAILABLE, "{put:?}");
        assert!(
            put.error()
                .is_some_and(|e| e.error.code == tandem_shared::ErrorCode::RegionUnavailable)
        );
        assert!(
            took < Duration::from_millis(2_500),
            "refused after {took:?}"
        );
        let read = east.get("before").await.expect("an answer");
        assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE, "{read:?}");
    }
    // A 503 a client should retry says when.
    let raw = s
        .http
        .put(format!("{}/api/items/raw", s.regions[EAST]))
        .header("x-origin-verify", common::SECRET)
        .json(&serde_json::json!({"data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(raw.headers().contains_key("retry-after"));
    let health = s.direct(EAST, "/api/health").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: tandem_shared::wire::HealthResponse = health.json().await.unwrap();
    assert_eq!(body.consistency, Consistency::Strong);
    // With the majority back, the region serves again.
    s.set_region(WITNESS, RegionState::Up).await;
    let again = put_settled(&east, "after", 1).await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
}

#[tokio::test]
async fn two_concurrent_writes_on_one_etag_in_both_regions_exactly_one_succeeds() {
    let s = strong().await;
    settled(&s).await;
    let (east, west) = (s.items_in(EAST), s.items_in(WEST));
    // The mode, the witness and the log, as health and the control API say them.
    let regions = s.control().regions().await.unwrap();
    assert_eq!(regions.consistency, Consistency::Strong);
    let witness = regions
        .regions
        .iter()
        .find(|r| r.region == WITNESS)
        .expect("the witness");
    assert!(witness.witness && witness.state == RegionState::Up);
    let health = s.direct(WEST, "/api/health").await;
    assert_eq!(
        health
            .json::<tandem_shared::wire::HealthResponse>()
            .await
            .unwrap()
            .consistency,
        Consistency::Strong
    );
    let status = s.control().consensus().await.unwrap();
    assert!(
        status.term > 0
            && status
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Leader)
                .count()
                == 1,
        "{status:?}"
    );

    let mut etag = put_settled(&east, "contended", 0)
        .await
        .etag
        .expect("an ETag");
    for round in 1..=10 {
        let (mine, theirs) = (data(round), data(100 + round));
        let (a, b) = tokio::join!(
            east.put("contended", &mine, Some(&etag)),
            west.put("contended", &theirs, Some(&etag)),
        );
        let (a, b) = (a.expect("an answer"), b.expect("an answer"));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
            "round {round}: {a:?} {b:?}"
        );
        let winner = if a.status == StatusCode::OK { a } else { b };
        etag = winner.etag.expect("an ETag");
        // Both regions hold the winner.
        for items in [&east, &west] {
            assert_eq!(
                items.get("contended").await.unwrap().etag.as_ref(),
                Some(&etag)
            );
        }
    }
}
