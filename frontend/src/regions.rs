//! The regions panel: each region's health, fault, process state and replication, polled
//! every 1.5 s, and the outage controls (admin faults everywhere; region states and
//! replication settings on the local stack only, hidden elsewhere).

use crate::console::{Console, Stack};
use crate::model::{self, ControlRegions, ControlReplication, Source};
use crate::net;
use leptos::prelude::*;
use serde_json::Value;
use tandem_shared::Fault;

const POLL_MS: u32 = 1500;

/// What the last health check of a region said.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub status: Option<u16>,
    /// `ok`, `faulted`, or the error code when the region could not be asked.
    pub word: String,
    /// The fault health reports (`error 503`, `none`, …); `None` when health did not answer.
    pub fault: Option<String>,
    pub latency_ms: f64,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.status == Some(200)
    }
}

/// The polled status, shared with the drill.
#[derive(Clone, Copy)]
pub struct Status {
    pub health: RwSignal<Vec<(String, Health)>>,
    pub replication: RwSignal<Option<ControlReplication>>,
    in_flight: StoredValue<Vec<String>>,
}

impl Status {
    pub(crate) fn new() -> Self {
        Status {
            health: RwSignal::new(Vec::new()),
            replication: RwSignal::new(None),
            in_flight: StoredValue::new(Vec::new()),
        }
    }

    pub fn health_of(&self, region: &str) -> Option<Health> {
        self.health
            .with(|h| h.iter().find(|(r, _)| r == region).map(|(_, h)| h.clone()))
    }

    /// Starts the polling loop. Each region is asked on its own, and not again while its last
    /// check is still out: a blackholed region answers only when the edge gives up, and must
    /// not hold back the others.
    pub fn start(self, console: Console) {
        leptos::task::spawn_local(async move {
            loop {
                for region in console.regions.get_untracked() {
                    self.spawn_once(format!("health:{region}"), {
                        let region = region.clone();
                        async move { self.check_health(console, region).await }
                    });
                }
                if console.stack.get_untracked() == (Stack::Local { control: true })
                    && console.token.with_untracked(Option::is_some)
                {
                    self.spawn_once("control".into(), async move {
                        self.check_control(console).await
                    });
                }
                net::sleep(POLL_MS).await;
            }
        });
    }

    fn spawn_once(self, key: String, work: impl Future<Output = ()> + 'static) {
        let fresh = self
            .in_flight
            .try_update_value(|s| {
                let fresh = !s.contains(&key);
                if fresh {
                    s.push(key.clone());
                }
                fresh
            })
            .unwrap_or(false);
        if fresh {
            leptos::task::spawn_local(async move {
                work.await;
                self.in_flight.update_value(|s| s.retain(|k| *k != key));
            });
        }
    }

    pub async fn check_health(self, console: Console, region: String) {
        let path = format!("/region/{region}/api/health");
        let (reply, _) = console.send("GET", &path, None, false, Source::Poll).await;
        // Read as a JSON value rather than as `HealthResponse`: the typed `Fault` decoder (an
        // internally tagged enum) costs kilobytes of wasm, and this panel only shows text.
        let body = reply.parse::<Value>().unwrap_or(Value::Null);
        let fault = body.get("fault").map(fault_value_text);
        let health = Health {
            status: reply.status,
            word: match (
                body.get("status").and_then(Value::as_str),
                model::error_of(&reply.body),
            ) {
                (Some(word), _) if fault.is_some() => word.to_owned(),
                (_, Some((code, _))) => code,
                _ => "unreachable".into(),
            },
            fault,
            latency_ms: reply.latency_ms,
        };
        self.health
            .update(|all| match all.iter_mut().find(|(r, _)| *r == region) {
                Some((_, h)) => *h = health,
                None => all.push((region, health)),
            });
    }

    pub async fn check_control(self, console: Console) {
        let (regions, _) = console
            .send("GET", "/_tandem/regions", None, true, Source::Poll)
            .await;
        if let Some(body) = regions.parse::<ControlRegions>() {
            console.states.set(
                body.regions
                    .into_iter()
                    .map(|r| (r.region, r.state))
                    .collect(),
            );
        } else if regions.status == Some(401) {
            console.stack.set(Stack::Local { control: false });
            return;
        }
        let (repl, _) = console
            .send("GET", "/_tandem/replication", None, true, Source::Poll)
            .await;
        if let Some(body) = repl.parse::<ControlReplication>() {
            self.replication.set(Some(body));
        }
    }
}

/// `error 503`, `slow +3000 ms` or `none`, from health's `fault` object.
fn fault_value_text(fault: &Value) -> String {
    let field = |name: &str| fault.get(name).and_then(Value::as_u64).unwrap_or(0);
    match fault.get("mode").and_then(Value::as_str) {
        Some("error") => format!("error {}", field("status")),
        Some("slow") => format!("slow +{} ms", field("latency_ms")),
        Some(mode) => mode.to_owned(),
        None => "unknown".into(),
    }
}

fn fault_text(fault: &Fault) -> String {
    match fault {
        Fault::Error { status, .. } => format!("error {status}"),
        Fault::Slow { latency_ms, .. } => format!("slow +{latency_ms} ms"),
        Fault::None { .. } => "none".into(),
    }
}

/// A one-line outcome of the last control action, shown under the controls.
#[derive(Clone, Copy)]
struct Feedback(RwSignal<Option<(bool, String)>>);

impl Feedback {
    fn show(&self, reply: &net::Reply, what: &str) {
        let text = if reply.ok() {
            format!("{what}: done")
        } else {
            match model::error_of(&reply.body) {
                Some((code, message)) => {
                    format!("{what}: {} {code}: {message}", reply.status_text())
                }
                None => format!("{what}: {}", reply.status_text()),
            }
        };
        self.0.set(Some((reply.ok(), text)));
    }
}

#[component]
pub fn RegionsPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let feedback = Feedback(RwSignal::new(None));
    let duration = RwSignal::new(String::new());
    let slow_ms = RwSignal::new("3000".to_owned());

    let cards = move || {
        console
            .regions
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, region)| {
                view! {
                    <RegionCard
                        region=region
                        primary=i == 0
                        class=["r0", "r1", "r2", "r3"].get(i).copied().unwrap_or("rx")
                        feedback=feedback
                        duration=duration
                        slow_ms=slow_ms
                    />
                }
            })
            .collect_view()
    };

    view! {
        <section class="panel" aria-labelledby="regions-title">
            <div class="panel-head">
                <h2 id="regions-title">"Regions"</h2>
                <span class="muted small">"health every 1.5 s"</span>
            </div>
            <div class="cards">{cards}</div>
            <div class="fault-options" hidden=move || console.token.with(Option::is_none)>
                    <label>
                        "Fault lasts (s, empty = until cleared)"
                        <input
                            id="fault-duration"
                            type="number"
                            min="1"
                            inputmode="numeric"
                            prop:value=move || duration.get()
                            on:input=move |ev| duration.set(event_target_value(&ev))
                        />
                    </label>
                    <label>
                        "Slow fault latency (ms)"
                        <input
                            id="slow-ms"
                            type="number"
                            min="0"
                            inputmode="numeric"
                            prop:value=move || slow_ms.get()
                            on:input=move |ev| slow_ms.set(event_target_value(&ev))
                        />
                    </label>
            </div>
            <div hidden=move || !console.has_control()>
                <ReplicationControls feedback=feedback />
            </div>
            <p class="muted small" hidden=move || console.token.with(Option::is_some)>
                    "Outage controls need the admin token: open the console URL that "
                    <code>"tandem up"</code> " prints (it ends in " <code>"#token=…"</code>
                    "), or enter the token above."
            </p>
            <p class="feedback" role="status" aria-live="polite">
                {move || {
                    feedback
                        .0
                        .get()
                        .map(|(ok, text)| {
                            view! { <span class=if ok { "good" } else { "bad" }>{text}</span> }
                        })
                }}
            </p>
            <p class="muted small" hidden=move || console.stack.get() != Stack::Cloud>
                "On AWS: region processes and replication are managed by AWS, so only app faults can be set here."
            </p>
        </section>
    }
}

#[component]
fn RegionCard(
    region: String,
    primary: bool,
    class: &'static str,
    feedback: Feedback,
    duration: RwSignal<String>,
    slow_ms: RwSignal<String>,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    let name = StoredValue::new(region.clone());
    let health = move || status.health_of(&name.get_value());
    let state = move || {
        console.states.with(|s| {
            s.iter()
                .find(|(r, _)| *r == name.get_value())
                .map(|(_, st)| st.clone())
        })
    };
    let incoming = move || {
        status.replication.with(|r| {
            r.as_ref()
                .and_then(|r| r.pairs.iter().find(|p| p.to == name.get_value()).cloned())
        })
    };

    let set_fault = move |fault: Fault| {
        let region = name.get_value();
        leptos::task::spawn_local(async move {
            let body = serde_json::to_string(&fault).unwrap_or_default();
            let path = format!("/region/{region}/api/admin/fault");
            let (reply, _) = console
                .send("PUT", &path, Some(&body), true, Source::User)
                .await;
            feedback.show(&reply, &format!("{region}: fault {}", fault_text(&fault)));
            status.check_health(console, region).await;
        });
    };
    let duration_s = move || duration.get_untracked().trim().parse::<u64>().ok();
    let clear = move |_| {
        let region = name.get_value();
        leptos::task::spawn_local(async move {
            let path = format!("/region/{region}/api/admin/fault");
            let (reply, _) = console
                .send("DELETE", &path, None, true, Source::User)
                .await;
            feedback.show(&reply, &format!("{region}: clear fault"));
            status.check_health(console, region).await;
        });
    };
    let set_state = move |state: &'static str| {
        let region = name.get_value();
        leptos::task::spawn_local(async move {
            let path = format!("/_tandem/regions/{region}");
            let body = format!(r#"{{"state":"{state}"}}"#);
            let (reply, _) = console
                .send("PUT", &path, Some(&body), true, Source::User)
                .await;
            feedback.show(&reply, &format!("{region}: {state}"));
            status.check_control(console).await;
            status.check_health(console, region).await;
        });
    };

    let health_view = move || match health() {
        None => view! { <span class="pill">"checking…"</span> }.into_any(),
        Some(h) => {
            let pill = if h.healthy() {
                "pill good"
            } else if h.status == Some(503) && h.fault.is_some() {
                "pill warn"
            } else {
                "pill bad"
            };
            let code = h.status.map_or("no answer".to_owned(), |s| s.to_string());
            view! {
                <span class=pill>{h.word.clone()}</span>
                <span class="muted small">{format!("{code} in {}", model::fmt_ms(h.latency_ms))}</span>
            }
            .into_any()
        }
    };

    let id = region.clone();
    view! {
        <article class=format!("card {class}") id=format!("region-{id}") aria-label=format!("region {id}")>
            <header>
                <span class="swatch" aria-hidden="true"></span>
                <h3>{region.clone()}</h3>
                <span class="badge">{if primary { "primary" } else { "secondary" }}</span>
            </header>
            <div class="health" data-role="health">{health_view}</div>
            <dl class="facts">
                <dt>"Fault"</dt>
                <dd data-role="fault">
                    {move || {
                        health().and_then(|h| h.fault).unwrap_or_else(|| "unknown".into())
                    }}
                </dd>
                <div class="group" hidden=move || !console.is_local()>
                    <dt>"Process"</dt>
                    <dd data-role="state">{move || state().unwrap_or_else(|| "?".into())}</dd>
                    <dt>"Replication in"</dt>
                    <dd data-role="replication">
                        {move || incoming().map_or("?".to_owned(), |p| model::describe_link(&p))}
                    </dd>
                </div>
            </dl>
            <div
                class="controls"
                role="group"
                aria-label=format!("app fault for {}", name.get_value())
                hidden=move || console.token.with(Option::is_none)
            >
                    <button
                        type="button"
                        data-action="fault-503"
                        on:click=move |_| set_fault(Fault::Error { status: 503, duration_s: duration_s() })
                    >
                        "Fail 503"
                    </button>
                    <button
                        type="button"
                        data-action="fault-slow"
                        on:click=move |_| {
                            let latency_ms = slow_ms.get_untracked().trim().parse().unwrap_or(3000);
                            set_fault(Fault::Slow { latency_ms, duration_s: duration_s() })
                        }
                    >
                        "Slow"
                    </button>
                    <button type="button" data-action="fault-clear" on:click=clear>
                        "Clear fault"
                    </button>
            </div>
            <div
                class="controls"
                role="group"
                aria-label=format!("process state of {}", name.get_value())
                hidden=move || !console.has_control()
            >
                    {[
                        ("Up", "up", ""),
                        ("Stop", "stopped", ""),
                        ("Crash", "crashed", "danger"),
                        ("Blackhole", "blackhole", ""),
                    ]
                        .into_iter()
                        .map(|(label, state, class)| {
                            view! {
                                <button
                                    type="button"
                                    class=class
                                    data-action=format!("state-{state}")
                                    on:click=move |_| set_state(state)
                                >
                                    {label}
                                </button>
                            }
                        })
                        .collect_view()}
            </div>
        </article>
    }
}

#[component]
fn ReplicationControls(feedback: Feedback) -> impl IntoView {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    let lag = RwSignal::new(String::new());
    let config = move || status.replication.with(|r| r.as_ref().map(|r| r.config));
    let send = move |paused: Option<bool>, lag_ms: Option<u64>| {
        leptos::task::spawn_local(async move {
            let mut body = serde_json::Map::new();
            if let Some(p) = paused {
                body.insert("paused".into(), p.into());
            }
            if let Some(l) = lag_ms {
                body.insert("lag_ms".into(), l.into());
            }
            let body = serde_json::Value::Object(body).to_string();
            let (reply, _) = console
                .send(
                    "PUT",
                    "/_tandem/replication",
                    Some(&body),
                    true,
                    Source::User,
                )
                .await;
            feedback.show(&reply, "replication");
            status.check_control(console).await;
        });
    };
    view! {
        <div class="replication" role="group" aria-label="replication">
            <h3>"Replication"</h3>
            <p class="small" data-role="replication-config">
                {move || match config() {
                    None => "…".to_owned(),
                    Some(c) => {
                        format!(
                            "{}, artificial lag {} ms",
                            if c.paused { "paused" } else { "running" },
                            c.lag_ms,
                        )
                    }
                }}
            </p>
            <div class="controls">
                <button
                    type="button"
                    id="replication-toggle"
                    on:click=move |_| {
                        let paused = config().is_some_and(|c| c.paused);
                        send(Some(!paused), None)
                    }
                >
                    {move || if config().is_some_and(|c| c.paused) { "Resume" } else { "Pause" }}
                </button>
                <label class="inline">
                    "Lag (ms)"
                    <input
                        id="replication-lag"
                        type="number"
                        min="0"
                        max="600000"
                        inputmode="numeric"
                        prop:value=move || lag.get()
                        on:input=move |ev| lag.set(event_target_value(&ev))
                    />
                </label>
                <button
                    type="button"
                    on:click=move |_| {
                        let l = lag.get_untracked().trim().parse().unwrap_or(0);
                        send(None, Some(l))
                    }
                >
                    "Set lag"
                </button>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fault_text_from_health() {
        let text = |v: Value| fault_value_text(&v);
        assert_eq!(text(json!({"mode": "error", "status": 503})), "error 503");
        assert_eq!(
            text(json!({"mode": "slow", "latency_ms": 250, "duration_s": 5})),
            "slow +250 ms"
        );
        assert_eq!(text(json!({"mode": "none"})), "none");
        assert_eq!(text(json!(null)), "unknown");
        // What the console sends is what health reports back.
        let sent = serde_json::to_value(Fault::Error {
            status: 504,
            duration_s: None,
        })
        .unwrap();
        assert_eq!(text(sent), "error 504");
    }
}
