//! The drill: steady reads and writes through `/api`, a fault for a while on the region `/api`
//! goes to first (the active region: the primary unless switched), the heal, and then proof
//! that nothing acknowledged was lost: every acknowledged write is read back from every region
//! until all of them hold it. The figures come from `tandem_shared::drill`, the same
//! arithmetic as `tandem drill`'s.

use crate::console::Console;
use crate::model::{self, Source};
use crate::net::{self, encode};
use futures::stream::{self, StreamExt as _};
use leptos::prelude::*;
use std::collections::BTreeMap;
use tandem_shared::Fault;
use tandem_shared::control::{RegionState, SetRegionState};
use tandem_shared::drill::{Kind, Phase, Sample, Summary};
use tandem_shared::wire::ItemResponse;

const STEADY_MS: f64 = 3000.0;
const AFTER_HEAL_MS: f64 = 3000.0;
const CONVERGE_LIMIT_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Admin fault: data routes answer 503. Works on AWS too.
    AppFault,
    /// Local stack: SIGKILL the region's process.
    Crash,
    /// Local stack: the region accepts connections and never answers.
    Blackhole,
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "crash" => Method::Crash,
            "blackhole" => Method::Blackhole,
            _ => Method::AppFault,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Method::AppFault => "answering 503 (admin fault)",
            Method::Crash => "crashed (SIGKILL)",
            Method::Blackhole => "blackholed",
        }
    }
}

/// The drill's final figures.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    fault: String,
    summary: Summary,
    writes: usize,
    acknowledged: usize,
    converged_ms: Option<f64>,
    lost: Vec<String>,
    secondary: String,
}

/// What the Run button asks for.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seconds: u32,
    method: Method,
}

/// A write the region acknowledged: id, `updated_at`, `updated_in`.
type Acked = (String, String, String);

/// Everything one run records.
struct Run {
    /// Base 36 of the start time: ids unique across runs and sorted by run.
    id: String,
    started_ms: f64,
    phase: Phase,
    samples: Vec<Sample>,
    acked: Vec<Acked>,
}

impl Run {
    fn new() -> Self {
        let started_ms = net::now_ms();
        let mut t = started_ms as u64;
        let mut id = String::new();
        while t > 0 {
            id.insert(0, char::from_digit((t % 36) as u32, 36).unwrap_or('0'));
            t /= 36;
        }
        Run {
            id,
            started_ms,
            phase: Phase::Before,
            samples: Vec::new(),
            acked: Vec::new(),
        }
    }

    /// Requests made and failed so far.
    fn counts(&self) -> (usize, usize) {
        let failed = self.samples.iter().filter(|s| !s.ok()).count();
        (self.samples.len(), failed)
    }
}

/// The drill's progress, shown while it runs; the run itself is an action of [`DrillPanel`].
#[derive(Clone, Copy)]
struct Drill {
    console: Console,
    phase: RwSignal<String>,
    live: RwSignal<(usize, usize)>,
    error: RwSignal<Option<String>>,
}

impl Drill {
    /// Steady traffic, the fault, traffic through the outage, the heal, traffic after it, and
    /// the wait for every acknowledged write in every region. `None` when the fault could not
    /// be set. The faulted region is chosen once: a health watcher that switches the active
    /// region during the outage must not make the drill heal another region than it broke.
    async fn run(self, plan: Plan) -> Option<Outcome> {
        self.error.set(None);
        let target = self.console.first_region();
        let mut run = Run::new();

        self.phase.set("steady traffic".into());
        let until = run.started_ms + STEADY_MS;
        self.traffic(&mut run, until).await;

        let fault = format!("{target} {} for {} s", plan.method.describe(), plan.seconds);
        self.phase.set(fault.clone());
        let fault_at = net::now_ms();
        if let Err(e) = self.fault(plan, &target, false).await {
            self.error
                .set(Some(format!("could not fault {target}: {e}")));
            return None;
        }
        run.phase = Phase::Outage;
        let until = fault_at + f64::from(plan.seconds) * 1000.0;
        self.traffic(&mut run, until).await;

        self.phase.set(format!("healing {target}"));
        if let Err(e) = self.fault(plan, &target, true).await {
            self.error.set(Some(format!(
                "could not heal {target}: {e} (heal it by hand)"
            )));
        }
        run.phase = Phase::After;
        self.phase.set("traffic after the heal".into());
        let until = net::now_ms() + AFTER_HEAL_MS;
        self.traffic(&mut run, until).await;

        let (converged_ms, lost) = self.converge(&run.acked).await;
        self.phase.set("done".into());
        Some(Outcome {
            fault,
            summary: Summary::of(&run.samples, &target, fault_at - run.started_ms),
            writes: run.samples.iter().filter(|s| s.kind == Kind::Write).count(),
            acknowledged: run.acked.len(),
            converged_ms,
            lost,
            secondary: self.console.other_than(&target),
        })
    }

    /// A write and a read back of the last acknowledged one, every 100 ms until `until_ms`.
    async fn traffic(&self, run: &mut Run, until_ms: f64) {
        while net::now_ms() < until_ms {
            self.write(run).await;
            self.read_back(run).await;
            self.live.set(run.counts());
            net::sleep(100).await;
        }
    }

    /// Writes a new item through `/api` (with the console's failover), and keeps it when a
    /// region acknowledged it.
    async fn write(&self, run: &mut Run) {
        let n = run.samples.len() + 1;
        let id = format!("drill-{}-{n:04}", run.id);
        let body = format!(r#"{{"data":{{"drill":"{}","n":{n}}}}}"#, run.id);
        let path = format!("/api/items/{id}");
        let started = net::now_ms();
        let w = self
            .console
            .write("PUT", &path, Some(&body), None, Source::Drill)
            .await;
        run.samples.push(Sample {
            t_ms: started - run.started_ms,
            kind: Kind::Write,
            phase: run.phase,
            status: w.reply.status.unwrap_or(0),
            latency_ms: net::now_ms() - started,
            region: w.reply.region.clone(),
            edge_failover: w.reply.edge_failover.clone(),
            client_failover: w.failover.is_some(),
            stale: false,
        });
        if let Some(r) = w.reply.parse::<ItemResponse>().filter(|_| w.reply.ok()) {
            run.acked.push((id, r.item.updated_at, r.item.updated_in));
        }
    }

    /// Reads the last acknowledged write back through `/api`: a 404 is a stale read.
    async fn read_back(&self, run: &mut Run) {
        let Some((id, _, _)) = run.acked.last() else {
            return;
        };
        let path = format!("/api/items/{}", encode(id));
        let started = net::now_ms();
        let (reply, _) = self
            .console
            .send("GET", &path, None, false, Source::Drill)
            .await;
        run.samples.push(Sample {
            t_ms: started - run.started_ms,
            kind: Kind::Read,
            phase: run.phase,
            status: reply.status.unwrap_or(0),
            latency_ms: reply.latency_ms,
            // An acknowledged write that this region does not have yet.
            stale: reply.status == Some(404),
            region: reply.region,
            edge_failover: reply.edge_failover,
            client_failover: false,
        });
    }

    /// Sets (`heal == false`) or clears the fault in `region`; the admin fault also clears
    /// itself later, so a drill abandoned mid-way (a closed tab) does not leave it broken.
    async fn fault(&self, plan: Plan, region: &str, heal: bool) -> Result<(), String> {
        let admin = format!("/region/{region}/api/admin/fault");
        let (method_name, path, body) = match (plan.method, heal) {
            (Method::AppFault, false) => {
                let fault = Fault::Error {
                    status: 503,
                    duration_s: Some(u64::from(plan.seconds) + 30),
                };
                ("PUT", admin, serde_json::to_string(&fault).ok())
            }
            (Method::AppFault, true) => ("DELETE", admin, None),
            (m, heal) => {
                let state = match (m, heal) {
                    (_, true) => RegionState::Up,
                    (Method::Blackhole, _) => RegionState::Blackhole,
                    _ => RegionState::Crashed,
                };
                let body = serde_json::to_string(&SetRegionState { state }).ok();
                ("PUT", format!("/_tandem/regions/{region}"), body)
            }
        };
        let (reply, _) = self
            .console
            .send(method_name, &path, body.as_deref(), true, Source::Drill)
            .await;
        if reply.ok() {
            Ok(())
        } else {
            Err(match model::error_of(&reply.body) {
                Some((code, message)) => format!("{} {code}: {message}", reply.status_text()),
                None => reply.status_text(),
            })
        }
    }

    /// Reads every acknowledged write back from every region until each holds it (or a later
    /// write), or the time limit passes; returns how long it took and what was never seen.
    async fn converge(&self, acked: &[Acked]) -> (Option<f64>, Vec<String>) {
        let regions = self.console.regions.get_untracked();
        let started = net::now_ms();
        let mut missing: Vec<Replica> = acked
            .iter()
            .flat_map(|a| regions.iter().map(move |r| (a, r.as_str())))
            .collect();
        let total = missing.len();
        loop {
            missing = self.still_missing(missing).await;
            self.phase.set(format!(
                "waiting for convergence: {} of {total} copies not there yet",
                missing.len()
            ));
            let elapsed = net::now_ms() - started;
            if missing.is_empty() {
                return (Some(elapsed), Vec::new());
            }
            if elapsed > CONVERGE_LIMIT_MS {
                let mut lost: Vec<String> = missing.iter().map(|(a, _)| a.0.clone()).collect();
                lost.dedup();
                return (None, lost);
            }
            net::sleep(250).await;
        }
    }

    /// The copies a round of reads did not find. The reads go out [`PARALLEL`] at a time, so a
    /// round over a hundred copies takes a fraction of a second and the time measured is
    /// replication's, not the console's.
    async fn still_missing<'a>(&self, copies: Vec<Replica<'a>>) -> Vec<Replica<'a>> {
        let console = self.console;
        let reads = copies.iter().map(|&(a, region)| holds(console, region, a));
        let there: Vec<bool> = stream::iter(reads).buffered(PARALLEL).collect().await;
        copies
            .into_iter()
            .zip(there)
            .filter_map(|(copy, there)| (!there).then_some(copy))
            .collect()
    }
}

/// Reads in flight at once while waiting for convergence.
const PARALLEL: usize = 6;

/// An acknowledged write, and a region that should hold it.
type Replica<'a> = (&'a Acked, &'a str);

/// Whether `region` holds the acknowledged write `a`, or a later one.
async fn holds(console: Console, region: &str, a: &Acked) -> bool {
    let path = format!("/region/{region}/api/items/{}", encode(&a.0));
    let (reply, _) = console.send("GET", &path, None, false, Source::Drill).await;
    reply
        .parse::<ItemResponse>()
        .filter(|_| reply.ok())
        .is_some_and(|r| model::caught_up((&r.item.updated_at, &r.item.updated_in), (&a.1, &a.2)))
}

#[component]
pub fn DrillPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let d = Drill {
        console,
        phase: RwSignal::new(String::new()),
        live: RwSignal::new((0, 0)),
        error: RwSignal::new(None),
    };
    let run = Action::new_local(move |plan: &Plan| d.run(*plan));
    view! {
        <section class="panel" aria-labelledby="drill-title">
            <div class="panel-head">
                <h2 id="drill-title">"Drill"</h2>
            </div>
            <p class="small muted">
                "Steady reads and writes through /api, a fault on the region /api goes to first (the active region), the heal, then every acknowledged write read back from every region."
            </p>
            <DrillControls run=run />
            <p class="small muted" hidden=move || console.token.with(Option::is_some)>
                "The drill sets faults, so it needs the admin token."
            </p>
            <DrillProgress d=d />
            <DrillResults run=run />
        </section>
    }
}

/// The fault, how long it lasts, and the Run button, which waits for the run to end.
#[component]
fn DrillControls(run: Action<Plan, Option<Outcome>>) -> impl IntoView {
    let console = expect_context::<Console>();
    let seconds = RwSignal::new("5".to_owned());
    let method = RwSignal::new("fault".to_owned());
    let running = run.pending();
    let start = move |_| {
        let seconds = seconds
            .get_untracked()
            .trim()
            .parse()
            .unwrap_or(5)
            .clamp(1, 300);
        let method = Method::parse(&method.get_untracked());
        // The last run's figures go as soon as the next one starts.
        run.clear();
        run.dispatch(Plan { seconds, method });
    };
    let no_control = move || !console.has_control();
    view! {
        <div class="controls">
            <label class="inline">
                "Fault"
                <select id="drill-method" on:change=move |ev| method.set(event_target_value(&ev))>
                    <option value="fault" selected>"app error 503"</option>
                    <option value="crash" hidden=no_control disabled=no_control>
                        "crash the process"
                    </option>
                    <option value="blackhole" hidden=no_control disabled=no_control>
                        "blackhole"
                    </option>
                </select>
            </label>
            <label class="inline">
                "for (s)"
                <input
                    id="drill-seconds"
                    type="number"
                    min="1"
                    max="300"
                    inputmode="numeric"
                    prop:value=move || seconds.get()
                    on:input=move |ev| seconds.set(event_target_value(&ev))
                />
            </label>
            <button
                type="button"
                class="primary"
                id="drill-run"
                disabled=move || running.get() || console.token.with(Option::is_none)
                on:click=start
            >
                {move || if running.get() { "Running…" } else { "Run drill" }}
            </button>
        </div>
    }
}

/// Where the run is and how many requests failed so far, and what stopped it.
#[component]
fn DrillProgress(d: Drill) -> impl IntoView {
    let line = move || {
        let (n, failed) = d.live.get();
        let phase = d.phase.get();
        if phase.is_empty() {
            String::new()
        } else {
            format!("{phase} — {n} requests, {failed} failed")
        }
    };
    view! {
        <p class="small" id="drill-phase" role="status" aria-live="polite">
            {line}
        </p>
        {move || d.error.get().map(|e| view! { <p class="outcome bad" role="alert">{e}</p> })}
    }
}

/// The last run's figures, once it has them.
#[component]
fn DrillResults(run: Action<Plan, Option<Outcome>>) -> impl IntoView {
    let outcome = run.value();
    move || outcome.get().flatten().map(results_view)
}

fn results_view(o: Outcome) -> impl IntoView {
    let s = o.summary;
    let lost = o.lost.len();
    let lost_class = if lost == 0 { "good" } else { "bad" };
    let failed = s.failures.total_reads + s.failures.total_writes;
    let first_success = s.rto_ms.map_or("none".to_owned(), |ms| {
        format!("{} after the fault", model::fmt_ms(ms))
    });
    let converged = o.converged_ms.map_or("not within 60 s".to_owned(), |ms| {
        format!("after {}", model::fmt_ms(ms))
    });
    view! {
        <dl class="results" id="drill-results">
            <dt>"Fault"</dt>
            <dd>{o.fault}</dd>
            <dt>"Requests"</dt>
            <dd>{format!("{} ({} writes, {} reads)", s.requests, o.writes, s.requests - o.writes)}</dd>
            <dt>"Failed requests (after failover)"</dt>
            <dd data-role="failed">{failed}</dd>
            <dt>"Failed reads"</dt>
            <dd>{format!("{}{}", s.failures.total_reads, by_phase(&s.failures.reads))}</dd>
            <dt>"Failed writes"</dt>
            <dd>{format!("{}{}", s.failures.total_writes, by_phase(&s.failures.writes))}</dd>
            <dt>"Writes failed over by the console"</dt>
            <dd>{s.client_failovers}</dd>
            <dt>"Stale reads (404)"</dt>
            <dd>{s.stale_reads}</dd>
            <dt>{format!("First success from {}", o.secondary)}</dt>
            <dd data-role="first-success">{first_success}</dd>
            <dt>"Latency"</dt>
            <dd>{latency_line(&s)}</dd>
            <dt>"Writes acknowledged"</dt>
            <dd data-role="acknowledged">{o.acknowledged}</dd>
            <dt>"Converged"</dt>
            <dd>{converged}</dd>
            <dt>"Writes lost"</dt>
            <dd class=lost_class data-role="lost">
                <strong>{lost}</strong>
                {(lost > 0).then(|| format!(" ({})", o.lost.join(", ")))}
            </dd>
        </dl>
    }
}

/// ` (2 outage, 1 after)`, or nothing when there is nothing to count.
fn by_phase(counts: &BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = counts.iter().map(|(p, n)| format!("{n} {p}")).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// `us-east-1: p50 12 ms p99 40 ms (80); …`
fn latency_line(s: &Summary) -> String {
    let f = |v: Option<f64>| v.map_or("–".into(), model::fmt_ms);
    let parts: Vec<String> = s
        .latency_by_region
        .iter()
        .map(|(r, l)| format!("{r}: p50 {} p99 {} ({})", f(l.p50_ms), f(l.p99_ms), l.count))
        .collect();
    parts.join("; ")
}
