//! The regions panel: each region's health, fault, process state, replication and whether
//! `/api/*` goes to it first (the active region), polled every 1.5 s, and the outage and
//! routing controls (admin faults everywhere; region states, replication settings and the
//! active region on the local stack only, hidden elsewhere). In the strong mode the witness
//! has a card of its own: its process state and the same state buttons.

use crate::console::{Console, Stack};
use crate::model::{self, NOT_ACTIVE, Source};
use crate::net::{self, Call};
use crate::widgets::NumberInput;
use leptos::prelude::*;
use tandem_shared::Consistency;
use tandem_shared::control::{
    self, ActiveRegion, ConsensusStatus, RegionState, ReplicationPatch, SetRegionState,
};
use tandem_shared::{Fault, FaultState};

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
    pub replication: RwSignal<Option<model::ReplicationView>>,
    /// The consensus log's status (strong mode, local stack): the leader line and each card's
    /// consensus fact.
    pub consensus: RwSignal<Option<ConsensusStatus>>,
    in_flight: StoredValue<Vec<String>>,
}

impl Status {
    pub(crate) fn new() -> Self {
        Status {
            health: RwSignal::new(Vec::new()),
            replication: RwSignal::new(None),
            consensus: RwSignal::new(None),
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

    /// Checks a region's health now rather than at the next poll, after a control action
    /// changed it. Not awaited by the action: a region that does not answer (blackholed) must
    /// not hold the buttons back until the edge gives up on it.
    fn recheck_health(self, console: Console, region: String) {
        leptos::task::spawn_local(async move { self.check_health(console, region).await });
    }

    pub async fn check_health(self, console: Console, region: String) {
        let path = format!("/region/{region}/api/health");
        let (reply, _) = console.send(Call::get(&path), Source::Poll).await;
        // Health answers its own body also with 503 (faulted, unavailable); anything else is
        // the edge's error body, or no answer at all.
        let body = reply.parse::<model::HealthView>();
        // On AWS health is the only place the mode shows; locally it agrees with the control API.
        if let Some(h) = &body {
            console.set_consistency(h.consistency);
        }
        let fault = body.as_ref().map(|h| model::fault_text(&h.fault));
        let health = Health {
            status: reply.status,
            word: match (body, model::error_of(&reply.body)) {
                (Some(h), _) => h.status,
                (None, Some((code, _))) => code,
                (None, None) => "unreachable".into(),
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

    /// Shows the fault a region just reported setting, before its next health check.
    fn show_fault(self, region: &str, fault: &Fault) {
        self.health.update(|all| {
            if let Some((_, h)) = all.iter_mut().find(|(r, _)| r == region) {
                h.fault = Some(model::fault_text(fault));
            }
        });
    }

    pub async fn check_control(self, console: Console) {
        let regions = console.poll_control(control::route::REGIONS).await;
        if let Some(body) = regions.parse::<model::RegionsView>() {
            console.set_states(body);
        } else if regions.status == Some(401) {
            console.stack.set(Stack::Local { control: false });
            return;
        }
        // Before replication, whose answer waits on every region: a blackholed one must not
        // delay the active region's card.
        check_active(console).await;
        if console.consistency.get_untracked() == Some(Consistency::Strong) {
            let reply = console.poll_control(control::route::CONSENSUS).await;
            if let Some(body) = reply.parse::<ConsensusStatus>() {
                self.consensus.set(Some(body));
            }
        }
        let repl = console.poll_control(control::route::REPLICATION).await;
        if let Some(body) = repl.parse::<model::ReplicationView>() {
            self.replication.set(Some(body));
        }
    }
}

/// Reads the active region's value. A switch made elsewhere (the CLI, the health watcher) shows
/// up here, and the log marks it; an answer that a switch of this console's overtook is dropped.
async fn check_active(console: Console) {
    let epoch = console.active_epoch();
    let reply = console.poll_control(control::route::ACTIVE_REGION).await;
    if let Some(value) = reply.parse::<ActiveRegion>().filter(|_| reply.ok())
        && console.active_epoch() == epoch
    {
        console.set_active(value, Source::Other);
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
    let witness = move || {
        console
            .witness()
            .map(|region| view! { <WitnessCard region=region feedback=feedback /> })
    };

    view! {
        <section class="panel" aria-labelledby="regions-title">
            <div class="panel-head">
                <h2 id="regions-title">"Regions"</h2>
                <span class="muted small">"health every 1.5 s"</span>
            </div>
            <p id="consistency" class="small">
                {fact(StoredValue::new(String::new()), |console, status, _| {
                    status.consensus.with(|s| model::consistency_text(console.consistency.get(), s.as_ref()))
                })}
            </p>
            <div class="cards">{cards} {witness}</div>
            <WatcherLine />
            <FaultOptions duration=duration slow_ms=slow_ms />
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

/// How long a fault lasts and how slow the slow one is: shared by every region's buttons.
#[component]
fn FaultOptions(duration: RwSignal<String>, slow_ms: RwSignal<String>) -> impl IntoView {
    let console = expect_context::<Console>();
    view! {
        <div class="fault-options" hidden=move || console.token.with(Option::is_none)>
            <label>
                "Fault lasts (s, empty = until cleared)"
                <NumberInput id="fault-duration" min="1" value=duration />
            </label>
            <label>
                "Slow fault latency (ms)"
                <NumberInput id="slow-ms" min="0" value=slow_ms />
            </label>
        </div>
    }
}

/// One region: what it says about itself, and the controls that break and heal it.
#[component]
fn RegionCard(
    region: String,
    primary: bool,
    class: &'static str,
    feedback: Feedback,
    duration: RwSignal<String>,
    slow_ms: RwSignal<String>,
) -> impl IntoView {
    let (id, label) = (format!("region-{region}"), format!("region {region}"));
    view! {
        <article class=format!("card {class}") id=id aria-label=label>
            <header>
                <span class="swatch" aria-hidden="true"></span>
                <h3>{region.clone()}</h3>
                <span class="badge">{if primary { "primary" } else { "secondary" }}</span>
            </header>
            <HealthLine region=region.clone() />
            <RegionFacts region=region.clone() />
            <FaultButtons
                region=region.clone()
                feedback=feedback
                duration=duration
                slow_ms=slow_ms
            />
            <StateButtons region=region.clone() feedback=feedback />
            <ActiveButtons region=region feedback=feedback />
        </article>
    }
}

/// The witness (strong mode, local stack): no item API, so no health, fault or routing; its
/// process is stopped, crashed and blackholed with the same buttons as a region's (contract
/// §10.3), and its place in the log shows as a region's does.
#[component]
fn WitnessCard(region: String, feedback: Feedback) -> impl IntoView {
    let (id, label) = (format!("region-{region}"), format!("witness {region}"));
    view! {
        <article class="card witness" id=id aria-label=label>
            <header>
                <span class="swatch" aria-hidden="true"></span>
                <h3>{region.clone()}</h3>
                <span class="badge">"witness"</span>
            </header>
            <dl class="facts">
                <ProcessFacts name=StoredValue::new(region.clone()) />
            </dl>
            <StateButtons region=region feedback=feedback />
        </article>
    }
}

/// The last health check: its word in a pill, then the status and how long it took.
#[component]
fn HealthLine(region: String) -> impl IntoView {
    let status = expect_context::<Status>();
    let line = move || match status.health_of(&region) {
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
                <span class=pill>{h.word}</span>
                <span class="muted small">{format!("{code} in {}", model::fmt_ms(h.latency_ms))}</span>
            }
            .into_any()
        }
    };
    view! { <div class="health" data-role="health">{line}</div> }
}

/// The fault health reports; on the local stack also the process state, the replication link
/// into this region and, in the strong mode, its place in the consensus log.
#[component]
fn RegionFacts(region: String) -> impl IntoView {
    let console = expect_context::<Console>();
    let name = StoredValue::new(region);
    let active = active_label(console, name);
    let fault = fact(name, |_, status, r| {
        let fault = status.health_of(r).and_then(|h| h.fault);
        fault.unwrap_or_else(|| "unknown".into())
    });
    let incoming = fact(name, |console, status, r| {
        // The strong mode has no item replication: the consensus log carries every write.
        if console.consistency.get() == Some(Consistency::Strong) {
            return "none: the consensus log carries writes".into();
        }
        status.replication.with(|l| {
            let link = l.as_ref().and_then(|l| l.pairs.iter().find(|p| p.to == r));
            link.map_or_else(|| "?".to_owned(), model::describe_link)
        })
    });
    view! {
        <dl class="facts">
            <dt>"Fault"</dt>
            <dd data-role="fault">{fault}</dd>
            <div class="group" hidden=move || !console.is_local()>
                <ProcessFacts name=name />
                <dt>"Replication in"</dt>
                <dd data-role="replication">{incoming}</dd>
                <dt>"Routing"</dt>
                <dd data-role="active" class:on=move || active().is_some_and(|a| a != NOT_ACTIVE)>
                    {fact(name, |console, _, r| active_text(console, r).unwrap_or("?").to_owned())}
                </dd>
            </div>
        </dl>
    }
}

/// A card's fact about its region, from the polled state.
type FactOf = fn(Console, Status, &str) -> String;

/// The text of the fact `f` about region `name`, redrawn when what it reads changes. Every fact
/// of every card is this one closure type, so the view code that redraws a changing text is
/// built once: each distinct closure in a view brings its own copy into the wasm, which the
/// console's size budget counts.
fn fact(name: StoredValue<String>, f: FactOf) -> impl Fn() -> String + Copy + 'static {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    move || name.with_value(|r| f(console, status, r))
}

/// `f` of what the control API last said of `region`, `?` before it said anything.
fn state_of(console: Console, region: &str, f: fn(&model::ProcessView) -> String) -> String {
    console.states.with(|s| {
        s.iter()
            .find(|s| s.region == region)
            .map_or_else(|| "?".to_owned(), f)
    })
}

/// What the control API reports of the process (local stack) and, in the strong mode, what the
/// consensus log says of this member (contract §10.3), as `<dt>`/`<dd>` pairs of a card's list.
#[component]
fn ProcessFacts(name: StoredValue<String>) -> impl IntoView {
    let console = expect_context::<Console>();
    view! {
        <dt>"Process"</dt>
        <dd data-role="state">{fact(name, |c, _, r| state_of(c, r, |s| s.state.clone()))}</dd>
        <dt>"Restarts"</dt>
        <dd data-role="restarts">{fact(name, |c, _, r| state_of(c, r, model::describe_restarts))}</dd>
        <div class="group" hidden=move || console.consistency.get() != Some(Consistency::Strong)>
            <dt>"Consensus"</dt>
            <dd data-role="consensus">
                {fact(name, |_, status, r| status.consensus.with(|s| model::member_text(s.as_ref(), r)))}
            </dd>
        </div>
    }
}

/// The app fault (admin token): fail with 503, answer slowly, or clear. The buttons wait for
/// the answer before they take another click.
#[component]
fn FaultButtons(
    region: String,
    feedback: Feedback,
    duration: RwSignal<String>,
    slow_ms: RwSignal<String>,
) -> impl IntoView {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    let label = format!("app fault for {region}");
    let change = Action::new_local(move |fault: &Option<Fault>| {
        change_fault(console, status, feedback, region.clone(), *fault)
    });
    let busy = change.pending();
    let duration_s = move || duration.get_untracked().trim().parse::<u64>().ok();
    let fail = move |_| {
        change.dispatch(Some(Fault::Error {
            status: 503,
            duration_s: duration_s(),
        }));
    };
    let slow = move |_| {
        let latency_ms = slow_ms.get_untracked().trim().parse().unwrap_or(3000);
        change.dispatch(Some(Fault::Slow {
            latency_ms,
            duration_s: duration_s(),
        }));
    };
    view! {
        <div
            class="controls"
            role="group"
            aria-label=label
            hidden=move || console.token.with(Option::is_none)
        >
            <button type="button" data-action="fault-503" disabled=busy on:click=fail>
                "Fail 503"
            </button>
            <button type="button" data-action="fault-slow" disabled=busy on:click=slow>
                "Slow"
            </button>
            <button
                type="button"
                data-action="fault-clear"
                disabled=busy
                on:click=move |_| {
                    change.dispatch(None);
                }
            >
                "Clear fault"
            </button>
        </div>
    }
}

/// Sets (`Some`) or clears (`None`) a region's app fault and says how that went.
async fn change_fault(
    console: Console,
    status: Status,
    feedback: Feedback,
    region: String,
    fault: Option<Fault>,
) {
    let path = format!("/region/{region}/api/admin/fault");
    let (reply, what) = match fault {
        Some(fault) => {
            let body = serde_json::to_string(&fault).unwrap_or_default();
            let sent = console.send(Call::put(&path, &body).admin(), Source::User);
            (
                sent.await.0,
                format!("{region}: fault {}", model::fault_text(&fault)),
            )
        }
        None => {
            let sent = console.send(Call::delete(&path).admin(), Source::User);
            (sent.await.0, format!("{region}: clear fault"))
        }
    };
    feedback.show(&reply, &what);
    // The answer is the fault the region now has: the card shows it at once, and health
    // follows with the rest.
    if let Some(state) = reply.parse::<FaultState>().filter(|_| reply.ok()) {
        status.show_fault(&region, &state.fault);
    }
    status.recheck_health(console, region);
}

/// The states a region's process can be put in (local stack): label, state, button class.
const STATES: [(&str, RegionState, &str); 4] = [
    ("Up", RegionState::Up, ""),
    ("Stop", RegionState::Stopped, ""),
    ("Crash", RegionState::Crashed, "danger"),
    ("Blackhole", RegionState::Blackhole, ""),
];

/// The region's process (local stack, with the token): up, stopped, crashed, blackholed.
#[component]
fn StateButtons(region: String, feedback: Feedback) -> impl IntoView {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    let label = format!("process state of {region}");
    let change = Action::new_local(move |state: &RegionState| {
        change_state(console, status, feedback, region.clone(), *state)
    });
    let busy = change.pending();
    let buttons = STATES
        .into_iter()
        .map(|(label, state, class)| {
            view! {
                <button
                    type="button"
                    class=class
                    data-action=format!("state-{state}")
                    disabled=busy
                    on:click=move |_| {
                        change.dispatch(state);
                    }
                >
                    {label}
                </button>
            }
        })
        .collect_view();
    view! {
        <div
            class="controls"
            role="group"
            aria-label=label
            hidden=move || !console.has_control()
        >
            {buttons}
        </div>
    }
}

/// Puts a region's process in `state`, says how that went, and reads the states back, so the
/// card shows the new one by the time the buttons take clicks again.
async fn change_state(
    console: Console,
    status: Status,
    feedback: Feedback,
    region: String,
    state: RegionState,
) {
    let path = control::region_path(&region);
    let body = serde_json::to_string(&SetRegionState { state }).unwrap_or_default();
    let (reply, _) = console
        .send(Call::put(&path, &body).admin(), Source::User)
        .await;
    feedback.show(&reply, &format!("{region}: {state}"));
    status.check_control(console).await;
    status.recheck_health(console, region);
}

#[component]
fn ReplicationControls(feedback: Feedback) -> impl IntoView {
    let console = expect_context::<Console>();
    let status = expect_context::<Status>();
    let lag = RwSignal::new(String::new());
    let config = move || status.replication.with(|r| r.as_ref().map(|r| r.config));
    let change = Action::new_local(move |patch: &ReplicationPatch| {
        change_replication(console, status, feedback, *patch)
    });
    let busy = change.pending();
    let toggle = move |_| {
        let paused = config().is_some_and(|c| c.paused);
        change.dispatch(ReplicationPatch::paused(!paused));
    };
    let set_lag = move |_| {
        let lag_ms = lag.get_untracked().trim().parse().unwrap_or(0);
        change.dispatch(ReplicationPatch {
            paused: None,
            lag_ms: Some(lag_ms),
        });
    };
    view! {
        <div class="replication" role="group" aria-label="replication">
            <h3>"Replication"</h3>
            <p class="small" data-role="replication-config">
                {fact(StoredValue::new(String::new()), |_, status, _| {
                    status.replication.with(|r| match r {
                        None => "…".to_owned(),
                        Some(r) => format!(
                            "{}, artificial lag {} ms",
                            if r.config.paused { "paused" } else { "running" },
                            r.config.lag_ms,
                        ),
                    })
                })}
            </p>
            <div class="controls">
                <button type="button" id="replication-toggle" disabled=busy on:click=toggle>
                    {fact(StoredValue::new(String::new()), |_, status, _| {
                        let paused = status.replication.with(|r| r.as_ref().is_some_and(|r| r.config.paused));
                        if paused { "Resume" } else { "Pause" }.to_owned()
                    })}
                </button>
                <label class="inline">
                    "Lag (ms)"
                    <NumberInput id="replication-lag" min="0" max="600000" value=lag />
                </label>
                <button type="button" disabled=busy on:click=set_lag>
                    "Set lag"
                </button>
            </div>
        </div>
    }
}

/// Sends a replication change and reads the settings back before the buttons take another
/// click: Pause/Resume decides from the settings shown, which must not be the old ones.
async fn change_replication(
    console: Console,
    status: Status,
    feedback: Feedback,
    patch: ReplicationPatch,
) {
    let body = serde_json::to_string(&patch).unwrap_or_default();
    let (reply, _) = console
        .send(
            Call::put(&control::path(control::route::REPLICATION), &body).admin(),
            Source::User,
        )
        .await;
    feedback.show(&reply, "replication");
    status.check_control(console).await;
}

/// What a card says about routing: `active (default)`, `active (switched)` or [`NOT_ACTIVE`],
/// or `None` while the active region is not known (no control API, or not polled yet).
fn active_label(
    console: Console,
    region: StoredValue<String>,
) -> impl Fn() -> Option<&'static str> + Copy + 'static {
    move || region.with_value(|r| active_text(console, r))
}

/// [`active_label`] of the region named `region`.
fn active_text(console: Console, region: &str) -> Option<&'static str> {
    let value = console
        .active
        .with(|a| a.as_ref().map(|a| a.region.clone()))?;
    let label = console
        .regions
        .with(|r| model::active_label(value.as_deref(), region, r));
    Some(label)
}

/// The stack's health watcher (`tandem up --auto-failover`), when it runs one: what it does,
/// or, in red, why it cannot switch.
#[component]
fn WatcherLine() -> impl IntoView {
    let console = expect_context::<Console>();
    let status = move || {
        console
            .active
            .with(|a| a.as_ref().and_then(|a| a.watcher.clone()))
    };
    view! {
        <p
            class="small"
            data-role="watcher"
            class:bad=move || status().is_some_and(|w| w.error.is_some())
            hidden=move || status().is_none()
        >
            {fact(StoredValue::new(String::new()), |console, _, _| {
                console.active.with(|a| {
                    a.as_ref().and_then(|a| a.watcher.as_ref()).map(model::watcher_text).unwrap_or_default()
                })
            })}
        </p>
    }
}

/// Where `/api/*` goes first (local stack, with the token): "Make active" on a region that is
/// not, "Fail back" (clear the value: the primary again) while a value is set. Fail back does
/// the same on every card, so it shows on each: no card hides a control another one offers.
#[component]
fn ActiveButtons(region: String, feedback: Feedback) -> impl IntoView {
    let console = expect_context::<Console>();
    let label = format!("active region: {region}");
    let name = StoredValue::new(region);
    let switch =
        Action::new_local(move |to: &Option<String>| switch_active(console, feedback, to.clone()));
    let busy = switch.pending();
    let active = active_label(console, name);
    let is_active = move || active().is_some_and(|a| a != NOT_ACTIVE);
    let value_set = move || {
        console
            .active
            .with(|a| a.as_ref().is_some_and(|a| a.region.is_some()))
    };
    view! {
        <div
            class="controls"
            role="group"
            aria-label=label
            hidden=move || !console.has_control() || active().is_none()
        >
            <button
                type="button"
                data-action="make-active"
                disabled=busy
                hidden=is_active
                on:click=move |_| {
                    switch.dispatch(Some(name.get_value()));
                }
            >
                "Make active"
            </button>
            <button
                type="button"
                data-action="fail-back"
                disabled=busy
                hidden=move || !value_set()
                on:click=move |_| {
                    switch.dispatch(None);
                }
            >
                "Fail back"
            </button>
        </div>
    }
}

/// Makes `to` the active region (`PUT`), or clears the value (`DELETE`: the primary is first
/// again), says how that went, and takes the value the control API answers, which the log
/// marks as this console's switch.
async fn switch_active(console: Console, feedback: Feedback, to: Option<String>) {
    console.bump_active_epoch();
    let path = control::path(control::route::ACTIVE_REGION);
    let (reply, what) = match &to {
        Some(region) => {
            let body = ActiveRegion::new(Some(region.clone()));
            let body = serde_json::to_string(&body).unwrap_or_default();
            let sent = console.send(Call::put(&path, &body).admin(), Source::User);
            (sent.await.0, format!("make {region} active"))
        }
        None => {
            let sent = console.send(Call::delete(&path).admin(), Source::User);
            (sent.await.0, format!("fail back to {}", console.primary()))
        }
    };
    feedback.show(&reply, &what);
    console.bump_active_epoch();
    if let Some(value) = reply.parse::<ActiveRegion>().filter(|_| reply.ok()) {
        console.set_active(value, Source::User);
    }
}
