//! What the health watcher costs in KeyValueStore API calls, counted: the watcher's loop
//! ([`tandem_ops::watcher::Probes`]) with the AWS store (`tandem_aws::watcher::KeyValueStore`,
//! the real SDK client) against the KeyValueStore stand-in (`support/fake_kvs.rs`), which records
//! every request, and a stand-in edge whose `/api/health` answers as the router function and
//! the regions do: marked with the store's value in `x-tandem-active-region` (the function's own
//! reads of the store are not API calls, so the stand-in reads it directly).
//!
//! Counted: an idle hour (3,600 rounds, the default 1 s interval, nothing failing), a cold start
//! behind an edge that does not say, a switch, and a switch that loses the race to another
//! writer. The rounds run back to back: what is counted is calls per round, not time. (Before
//! the active region came from the edge, every round called GetKey: 3,600 an hour, and the
//! switching round four calls.)

#[path = "support/fake_kvs.rs"]
mod fake_kvs;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use fake_kvs::{FakeKvs, Recorded};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tandem_aws::watcher::KeyValueStore;
use tandem_ops::watcher::{Probes, Source, Switch, WatchArgs};
use tandem_shared::headers::ACTIVE_REGION;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::routing::{ACTIVE_REGION_KEY, Routed};

/// Rounds in an hour at the default interval.
const HOUR: usize = 3_600;

/// The stand-in edge's state: the store its router reads, whether the primary answers 503,
/// and whether `/api/health` is marked at all (an API too old to echo, or no router).
#[derive(Clone)]
struct Edge {
    kvs: Arc<FakeKvs>,
    primary_down: Arc<AtomicBool>,
    marks: Arc<AtomicBool>,
}

async fn region_health(State(edge): State<Edge>, Path(region): Path<String>) -> StatusCode {
    match region == PRIMARY && edge.primary_down.load(Ordering::SeqCst) {
        true => StatusCode::SERVICE_UNAVAILABLE,
        false => StatusCode::OK,
    }
}

/// `/api/health` as the router function and the region that answers make it.
async fn api_health(State(edge): State<Edge>) -> axum::response::Response {
    let active = edge
        .kvs
        .value(ACTIVE_REGION_KEY)
        .filter(|v| [PRIMARY, SECONDARY].contains(&v.as_str()));
    let mut response = StatusCode::OK.into_response();
    if edge.marks.load(Ordering::SeqCst) {
        let routed = Routed {
            active,
            failover_off: false,
        };
        let value = routed.header_value().parse().unwrap();
        response.headers_mut().insert(ACTIVE_REGION, value);
    }
    response
}

struct Setup {
    kvs: Arc<FakeKvs>,
    edge: Edge,
    probes: Probes,
    store: KeyValueStore,
}

async fn setup() -> Setup {
    let kvs = Arc::new(FakeKvs::start().await);
    let edge = Edge {
        kvs: kvs.clone(),
        primary_down: Arc::new(AtomicBool::new(false)),
        marks: Arc::new(AtomicBool::new(true)),
    };
    let app = Router::new()
        .route("/region/{region}/api/health", get(region_health))
        .route("/api/health", get(api_health))
        .with_state(edge.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let store = KeyValueStore {
        client: kvs.client().await,
        arn: kvs.arn.clone(),
    };
    // The defaults `tandem deploy --auto-failover` deploys with.
    let args = WatchArgs {
        failover_after: 3,
        auto_failback: false,
        failback_after: 10,
        probe_interval_ms: 1000,
    };
    let regions = vec![PRIMARY.to_owned(), SECONDARY.to_owned()];
    let probes = Probes::new(format!("http://{addr}"), regions, args).unwrap();
    Setup {
        kvs,
        edge,
        probes,
        store,
    }
}

/// `METHOD target` of each call.
fn calls(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_hour_makes_no_call_and_a_switch_three() {
    let mut s = setup().await;

    for _ in 0..HOUR {
        let round = s.probes.round(&s.store).await.unwrap();
        assert_eq!(round.source, Source::Edge);
        assert_eq!(round.switch, None);
    }
    let idle = s.kvs.take_requests();
    eprintln!(
        "KeyValueStore calls in an idle hour ({HOUR} rounds): {}",
        idle.len()
    );
    assert_eq!(calls(&idle), Vec::<String>::new());

    // The primary fails: three rounds, the third switches, confirmed against the store.
    s.edge.primary_down.store(true, Ordering::SeqCst);
    let etag = s.kvs.etag();
    let mut rounds = Vec::new();
    while rounds.len() < 10 {
        let round = s.probes.round(&s.store).await.unwrap();
        let done = round.switch.is_some();
        rounds.push(round);
        if done {
            break;
        }
    }
    assert_eq!(rounds.len(), 3, "switched on the third failed round");
    assert_eq!(
        rounds[2].switch,
        Some(Switch::Done(Some(SECONDARY.to_owned())))
    );
    let switch = s.kvs.take_requests();
    eprintln!(
        "KeyValueStore calls for a switch: {} ({:?})",
        switch.len(),
        calls(&switch)
    );
    assert_eq!(
        calls(&switch),
        [
            "GET describe".to_owned(),
            format!("GET {ACTIVE_REGION_KEY}"),
            format!("PUT {ACTIVE_REGION_KEY}"),
        ]
    );
    assert_eq!(switch[2].if_match.as_deref(), Some(etag.as_str()));
    assert_eq!(s.kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));

    // After it, the edge routes by the new value (here at once): the rounds call nothing.
    for _ in 0..60 {
        let round = s.probes.round(&s.store).await.unwrap();
        assert_eq!(round.active.as_deref(), Some(SECONDARY));
        assert_eq!(round.switch, None);
    }
    assert_eq!(s.kvs.take_requests().len(), 0);
}

/// An edge that does not say (an API too old to echo the header, or ApiFailoverMode
/// origin-group, which runs no router): the store is read once, and then remembered.
#[tokio::test(flavor = "multi_thread")]
async fn an_edge_that_does_not_say_costs_one_read() {
    let mut s = setup().await;
    s.edge.marks.store(false, Ordering::SeqCst);
    let first = s.probes.round(&s.store).await.unwrap();
    assert_eq!(first.source, Source::Store);
    for _ in 0..100 {
        let round = s.probes.round(&s.store).await.unwrap();
        assert_eq!(round.source, Source::Remembered);
    }
    assert_eq!(
        calls(&s.kvs.take_requests()),
        [format!("GET {ACTIVE_REGION_KEY}")]
    );
}

/// Two watchers: the other one writes between this one's read and its write. The write names
/// the ETag it read, the store refuses it, and the round says so: nothing written over the
/// other writer, nothing retried.
#[tokio::test(flavor = "multi_thread")]
async fn a_switch_that_loses_the_race_writes_nothing() {
    let mut s = setup().await;
    s.edge.primary_down.store(true, Ordering::SeqCst);
    s.kvs.conflict_next(1);
    let mut last = None;
    for _ in 0..3 {
        last = Some(s.probes.round(&s.store).await.unwrap());
    }
    let round = last.unwrap();
    match &round.switch {
        Some(Switch::LostRace { target, why }) => {
            assert_eq!(target.as_deref(), Some(SECONDARY));
            assert!(why.contains("another writer changed the store"), "{why}");
        }
        other => panic!("expected a lost race, got {other:?}"),
    }
    assert_eq!(round.switched, None);
    assert_eq!(s.kvs.value(ACTIVE_REGION_KEY), None, "nothing written");
    let raced = s.kvs.take_requests();
    assert_eq!(
        calls(&raced),
        [
            "GET describe".to_owned(),
            format!("GET {ACTIVE_REGION_KEY}"),
            format!("PUT {ACTIVE_REGION_KEY}"),
        ],
        "one write, refused, and no retry"
    );

    // The primary still fails: the rule asks again after three more rounds, and this time
    // the write names the current ETag.
    let mut switched = None;
    for _ in 0..3 {
        switched = s.probes.round(&s.store).await.unwrap().switch;
    }
    assert_eq!(switched, Some(Switch::Done(Some(SECONDARY.to_owned()))));
    assert_eq!(s.kvs.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
}

/// The store already holds the target (another watcher or an operator switched, and the edge
/// has not picked it up): confirmed, not written again.
#[tokio::test(flavor = "multi_thread")]
async fn a_switch_already_made_is_not_made_again() {
    let mut s = setup().await;
    // The edge still routes by the old value: it does not mark the answer with the new one.
    s.edge.marks.store(false, Ordering::SeqCst);
    assert_eq!(s.probes.round(&s.store).await.unwrap().active, None);
    let client = s.kvs.client().await;
    tandem_aws::active::set(&client, &s.kvs.arn, Some(SECONDARY))
        .await
        .unwrap();
    s.kvs.take_requests();
    s.edge.primary_down.store(true, Ordering::SeqCst);
    let mut last = None;
    for _ in 0..3 {
        last = s.probes.round(&s.store).await.unwrap().switch;
    }
    assert_eq!(last, Some(Switch::Already(Some(SECONDARY.to_owned()))));
    assert_eq!(
        calls(&s.kvs.take_requests()),
        [
            "GET describe".to_owned(),
            format!("GET {ACTIVE_REGION_KEY}")
        ],
        "read to confirm, no write"
    );
    // It goes by that value from now on: the secondary answers, so nothing more happens.
    for _ in 0..10 {
        let round = s.probes.round(&s.store).await.unwrap();
        assert_eq!(round.active.as_deref(), Some(SECONDARY));
        assert_eq!(round.switch, None);
    }
    assert_eq!(s.kvs.take_requests().len(), 0);
}
