//! The local control API on the edge (`/_tandem/*`, admin token): region states and replication.

use crate::replication::wire::Key;
use crate::replication::{PairStatus, RegionReplication, ReplicationConfig, Verdict};
use crate::settings::EdgeSettings;
use crate::up::{RegionState, RegionStatus, Supervisor};
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tandem_shared::headers::ORIGIN_VERIFY;
use tokio::sync::Mutex;

#[derive(Clone)]
struct Control {
    supervisor: Arc<Mutex<Supervisor>>,
    token: Arc<str>,
    edge: EdgeSettings,
    http: reqwest::Client,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body =
        serde_json::json!({"error": {"code": code, "message": message.into()}, "region": null});
    (status, Json(body)).into_response()
}

/// The control routes, to be nested under `/_tandem`.
pub fn router(supervisor: Arc<Mutex<Supervisor>>, token: String, edge: EdgeSettings) -> Router {
    let state = Control {
        supervisor,
        token: token.into(),
        edge,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client"),
    };
    Router::new()
        .route("/regions", get(regions))
        .route("/regions/{region}", axum::routing::put(set_region))
        .route("/replication", get(replication).put(set_replication))
        .route("/verify", get(verify))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such control route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn auth(State(c): State<Control>, req: Request, next: Next) -> Response {
    match tandem_api::admin::authorize(Some(&c.token), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(_) => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin token (Authorization: Bearer <token>)",
        ),
    }
}

#[derive(Serialize)]
struct RegionsBody {
    regions: Vec<RegionStatus>,
    edge: EdgeSettings,
}

async fn regions(State(c): State<Control>) -> Json<RegionsBody> {
    Json(RegionsBody {
        regions: c.supervisor.lock().await.status(),
        edge: c.edge,
    })
}

#[derive(Deserialize)]
struct StateBody {
    state: RegionState,
}

async fn set_region(
    State(c): State<Control>,
    Path(region): Path<String>,
    body: Result<Json<StateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(StateBody { state })) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body must be {\"state\": \"up\" | \"stopped\" | \"crashed\" | \"blackhole\"}",
        );
    };
    let mut supervisor = c.supervisor.lock().await;
    if !supervisor.status().iter().any(|r| r.region == region) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no region {region:?}"),
        );
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
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{err:#}"),
        ),
    }
}

/// `GET /_tandem/replication`: the config, and every region pair's figures.
#[derive(Serialize, Deserialize)]
pub struct ReplicationBody {
    pub config: ReplicationConfig,
    pub pairs: Vec<PairStatus>,
    /// Regions that could not be asked (down, crashed, blackholed).
    pub unavailable: Vec<String>,
}

async fn replication(State(c): State<Control>) -> Json<ReplicationBody> {
    let (config, secret, all, answering) = {
        let mut s = c.supervisor.lock().await;
        let all: Vec<String> = s.status().into_iter().map(|r| r.region).collect();
        (
            s.replication,
            s.origin_secret().to_owned(),
            all,
            s.answering(),
        )
    };
    let mut pairs = Vec::new();
    let mut answered = Vec::new();
    for (name, url) in answering {
        let got = c
            .http
            .get(format!("{url}/_replication/status"))
            .header(ORIGIN_VERIFY, &secret)
            .send()
            .await;
        if let Ok(resp) = got
            && let Ok(status) = resp.json::<RegionReplication>().await
        {
            pairs.extend(status.pairs);
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

#[derive(Deserialize)]
struct ReplicationPatch {
    paused: Option<bool>,
    lag_ms: Option<u64>,
}

async fn push_config(
    c: &Control,
    targets: Vec<(String, String)>,
    config: ReplicationConfig,
) -> Vec<String> {
    let (secret, token) = {
        let s = c.supervisor.lock().await;
        (s.origin_secret().to_owned(), s.admin_token().to_owned())
    };
    let mut failed = Vec::new();
    for (name, url) in targets {
        let sent = c
            .http
            .put(format!("{url}/_replication/config"))
            .header(ORIGIN_VERIFY, &secret)
            .bearer_auth(&token)
            .json(&config)
            .send()
            .await;
        if !sent.is_ok_and(|r| r.status().is_success()) {
            failed.push(name);
        }
    }
    failed
}

async fn set_replication(
    State(c): State<Control>,
    body: Result<Json<ReplicationPatch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(patch)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body must be {\"paused\": bool, \"lag_ms\": n}",
        );
    };
    if patch.lag_ms.is_some_and(|l| l > 600_000) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "lag_ms must be at most 600000",
        );
    }
    let (config, targets) = {
        let mut s = c.supervisor.lock().await;
        if let Some(p) = patch.paused {
            s.replication.paused = p;
        }
        if let Some(l) = patch.lag_ms {
            s.replication.lag_ms = l;
        }
        (s.replication, s.answering())
    };
    let failed = push_config(&c, targets, config).await;
    Json(serde_json::json!({"config": config, "not_reached": failed})).into_response()
}

/// `GET /_tandem/verify`: do the regions hold the same items? (see [`crate::verify`])
async fn verify(State(c): State<Control>) -> Json<Verdict> {
    let (secret, key, all, answering) = {
        let mut s = c.supervisor.lock().await;
        let all: Vec<String> = s.status().into_iter().map(|r| r.region).collect();
        (
            s.origin_secret().to_owned(),
            Key::new(s.replication_key()),
            all,
            s.answering(),
        )
    };
    Json(crate::verify::compare(&c.http, &secret, &key, &answering, &all).await)
}
