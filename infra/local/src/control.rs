//! The local control API on the edge (`/_tandem/*`, admin token): region states, replication
//! and, in the strong mode, the consensus log.

use crate::active::{Active, SwitchError};
use crate::consensus;
use crate::replication::client::{SignedClient, Target};
use crate::replication::routes;
use crate::replication::wire::{CONTROL_IDENTITY, Key};
use crate::replication::{PullError, RegionReplication, ReplicationConfig, Verdict};
use crate::supervisor::Supervisor;
use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tandem_api::auth::{Admin, AdminToken};
use tandem_api::error::respond;
use tandem_api::middleware::error_bodies;
use tandem_shared::control::{
    ActiveRegion, EdgeSettings, RegionState, RegionsBody, ReplicationBody, ReplicationPatch,
    ReplicationUpdate, SetRegionState, route,
};
use tandem_shared::control::{ConsensusStatus, MemberStatus};
use tandem_shared::{Consistency, ErrorCode};
use tokio::sync::Mutex;

/// The control API's state. It reaches the regions only with requests signed with the
/// replication key (as [`CONTROL_IDENTITY`]): it sends them no secret, and a process that took a
/// region's port can neither read its calls nor answer them.
#[derive(Clone)]
struct Control {
    supervisor: Arc<Mutex<Supervisor>>,
    token: Arc<str>,
    edge: EdgeSettings,
    active: Arc<Active>,
    regions: Arc<SignedClient>,
}

fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    respond(code, None, message, None)
}

/// The control routes, to be nested under `/_tandem`.
pub fn router(
    supervisor: Arc<Mutex<Supervisor>>,
    token: String,
    edge: EdgeSettings,
    active: Arc<Active>,
    key: Key,
) -> Router {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("reqwest client");
    let state = Control {
        supervisor,
        token: token.into(),
        edge,
        active,
        regions: Arc::new(SignedClient::new(http, key, CONTROL_IDENTITY)),
    };
    Router::new()
        .route(route::REGIONS, get(regions))
        .route(route::REGION, axum::routing::put(set_region))
        .route(route::REPLICATION, get(replication).put(set_replication))
        .route(route::VERIFY, get(verify))
        .route(route::CONSENSUS, get(consensus))
        .route(
            route::ACTIVE_REGION,
            get(active_region)
                .put(set_active_region)
                .delete(clear_active_region),
        )
        .fallback(|| async { error(ErrorCode::NotFound, "no such control route") })
        .layer(axum::middleware::from_fn_with_state(None, error_bodies))
        .with_state(state)
}

impl FromRef<Control> for AdminToken {
    fn from_ref(c: &Control) -> AdminToken {
        AdminToken(Some(c.token.clone()))
    }
}

async fn regions(State(c): State<Control>, _: Admin) -> Json<RegionsBody> {
    let mut supervisor = c.supervisor.lock().await;
    Json(RegionsBody {
        regions: supervisor.status(),
        edge: c.edge,
        consistency: supervisor.consistency(),
    })
}

/// `GET /_tandem/consensus`: each member's view of the log, and the leader and term they agree
/// on (strong mode, contract §10; in eventual mode it names the mode and no member).
async fn consensus(State(c): State<Control>, _: Admin) -> Json<ConsensusStatus> {
    let (mode, all, answering) = {
        let mut s = c.supervisor.lock().await;
        let all: Vec<String> = s.status().into_iter().map(|r| r.region).collect();
        (s.consistency(), all, s.answering())
    };
    if mode == Consistency::Eventual {
        return Json(ConsensusStatus::default());
    }
    let asked = answering.iter().map(|(name, url)| {
        let target = Target { region: name, url };
        c.regions.json::<MemberStatus>(
            target,
            reqwest::Method::GET,
            consensus::path::STATUS,
            None::<&()>,
        )
    });
    let members: Vec<MemberStatus> = futures::future::join_all(asked)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let unavailable = all
        .into_iter()
        .filter(|r| !members.iter().any(|m| m.region == *r))
        .collect();
    let term = members.iter().map(|m| m.term).max().unwrap_or(0);
    let leader = members
        .iter()
        .filter(|m| m.term == term)
        .find_map(|m| m.leader.clone());
    Json(ConsensusStatus {
        mode,
        leader,
        term,
        members,
        unavailable,
    })
}

async fn set_region(
    State(c): State<Control>,
    _: Admin,
    Path(region): Path<String>,
    body: Result<Json<SetRegionState>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(SetRegionState { state })) = body.map_err(drop).and_then(|b| {
        if RegionState::ASKABLE.contains(&b.0.state) {
            Ok(b)
        } else {
            Err(())
        }
    }) else {
        return error(
            ErrorCode::BadRequest,
            "body must be {\"state\": \"up\" | \"stopped\" | \"crashed\" | \"blackhole\"}",
        );
    };
    let mut supervisor = c.supervisor.lock().await;
    if !supervisor.status().iter().any(|r| r.region == region) {
        return error(ErrorCode::NotFound, format!("no region {region:?}"));
    }
    match supervisor.set_state(&region, state).await {
        Ok(status) => {
            // A region that comes back from a blackhole missed any settings change meanwhile.
            if state == RegionState::Up {
                let config = supervisor.replication;
                let targets = supervisor
                    .answering()
                    .into_iter()
                    .filter(|(name, _)| *name == region)
                    .collect();
                drop(supervisor);
                push_config(&c, targets, config).await;
            }
            Json(status).into_response()
        }
        Err(err) => error(ErrorCode::Internal, format!("{err:#}")),
    }
}

/// `GET /_tandem/replication`: the config, and every region pair's figures.
async fn replication(State(c): State<Control>, _: Admin) -> Json<ReplicationBody> {
    let (config, all, answering) = {
        let mut s = c.supervisor.lock().await;
        let all: Vec<String> = s.status().into_iter().map(|r| r.region).collect();
        (s.replication, all, s.answering())
    };
    let mut pairs = Vec::new();
    let mut answered = Vec::new();
    // The strong mode replicates items through its consensus log: no link to report.
    let strong = c.supervisor.lock().await.consistency() == Consistency::Strong;
    let asked = ask_each::<RegionReplication>(
        &c,
        answering,
        reqwest::Method::GET,
        routes::STATUS,
        None::<&()>,
    )
    .await;
    for (name, got) in asked {
        if let Ok(status) = got {
            if !strong {
                pairs.extend(status.pairs);
            }
            answered.push(name);
        }
    }
    let unavailable = all.into_iter().filter(|r| !answered.contains(r)).collect();
    Json(ReplicationBody {
        config,
        pairs,
        unavailable,
    })
}

async fn push_config(
    c: &Control,
    targets: Vec<(String, String)>,
    config: ReplicationConfig,
) -> Vec<String> {
    let sent = ask_each::<ReplicationConfig>(
        c,
        targets,
        reqwest::Method::PUT,
        routes::CONFIG,
        Some(&config),
    )
    .await;
    let failed = sent.into_iter().filter(|(_, sent)| sent.is_err());
    failed.map(|(name, _)| name).collect()
}

/// Sends one replication route to each of `regions` (`(name, url)`) in turn, signed as the
/// supervisor: what each answered, by name.
async fn ask_each<T: serde::de::DeserializeOwned>(
    c: &Control,
    regions: Vec<(String, String)>,
    method: reqwest::Method,
    route: &str,
    body: Option<&impl serde::Serialize>,
) -> Vec<(String, Result<T, PullError>)> {
    let mut answers = Vec::new();
    for (name, url) in regions {
        let target = Target {
            region: &name,
            url: &url,
        };
        let answer = c.regions.json(target, method.clone(), route, body).await;
        answers.push((name, answer));
    }
    answers
}

async fn set_replication(
    State(c): State<Control>,
    _: Admin,
    body: Result<Json<ReplicationPatch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(patch)) = body else {
        return error(
            ErrorCode::BadRequest,
            "body must be {\"paused\": bool, \"lag_ms\": n}",
        );
    };
    if let Err(message) = patch.validate() {
        return error(ErrorCode::BadRequest, message);
    }
    let (config, targets) = {
        let mut s = c.supervisor.lock().await;
        s.replication = patch.apply(s.replication);
        (s.replication, s.answering())
    };
    let not_reached = push_config(&c, targets, config).await;
    Json(ReplicationUpdate {
        config,
        not_reached,
    })
    .into_response()
}

/// `GET /_tandem/verify`: do the regions hold the same items? (see [`crate::verify`])
async fn verify(State(c): State<Control>, _: Admin) -> Json<Verdict> {
    let (all, answering) = {
        let mut s = c.supervisor.lock().await;
        let all: Vec<String> = s.status().into_iter().map(|r| r.region).collect();
        (all, s.answering())
    };
    Json(crate::verify::compare(&c.regions, &answering, &all).await)
}

/// `GET /_tandem/active-region` (contract §6.3).
async fn active_region(State(c): State<Control>, _: Admin) -> Json<ActiveRegion> {
    Json(ActiveRegion {
        region: c.active.get(),
        watcher: c.active.watcher(),
    })
}

/// `PUT /_tandem/active-region` `{"region": R}`: `/api/*` goes to R first from now on.
async fn set_active_region(
    State(c): State<Control>,
    _: Admin,
    body: Result<Json<ActiveRegion>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(ActiveRegion {
        region: Some(region),
        ..
    })) = body
    else {
        return error(
            ErrorCode::BadRequest,
            "body must be {\"region\": \"<region>\"} (DELETE clears it)",
        );
    };
    switch(&c, Some(&region))
}

/// `DELETE /_tandem/active-region`: back to the primary.
async fn clear_active_region(State(c): State<Control>, _: Admin) -> Response {
    switch(&c, None)
}

fn switch(c: &Control, region: Option<&str>) -> Response {
    match c.active.set(region) {
        Ok(region) => Json(ActiveRegion::new(region)).into_response(),
        Err(e @ SwitchError::UnknownRegion(_)) => error(ErrorCode::BadRequest, e.to_string()),
        Err(e @ SwitchError::Io(_)) => error(ErrorCode::Internal, e.to_string()),
    }
}
