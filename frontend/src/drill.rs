//! The drill: steady reads and writes through `/api`, a fault on the primary for a while, the
//! heal, and then proof that nothing acknowledged was lost: every acknowledged write is read
//! back from every region until all of them hold it. The figures come from
//! `tandem_shared::drill`, the same arithmetic as `tandem drill`'s.

use crate::console::Console;
use crate::model::{self, Source};
use crate::net::{self, encode};
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use tandem_shared::drill::{Kind, Phase, Sample, Summary};
use tandem_shared::wire::ItemResponse;

const STEADY_MS: f64 = 3000.0;
const AFTER_HEAL_MS: f64 = 3000.0;
const CONVERGE_LIMIT_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Admin fault: data routes answer 503. Works on AWS too.
    AppFault,
    /// Local stack: SIGKILL the primary's process.
    Crash,
    /// Local stack: the primary accepts connections and never answers.
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

/// Where the drill is, for the samples it records.
struct Clock {
    started_ms: f64,
    phase: Phase,
}

#[derive(Clone, Copy)]
struct Drill {
    console: Console,
    running: RwSignal<bool>,
    phase: RwSignal<String>,
    live: RwSignal<(usize, usize)>,
    outcome: RwSignal<Option<Outcome>>,
    error: RwSignal<Option<String>>,
}

/// A write the region acknowledged: id, `updated_at`, `updated_in`.
type Acked = (String, String, String);

impl Drill {
    async fn traffic(
        &self,
        run: &str,
        until_ms: f64,
        clock: &Clock,
        samples: &mut Vec<Sample>,
        acked: &mut Vec<Acked>,
    ) {
        while net::now_ms() < until_ms {
            let n = samples.len() + 1;
            let id = format!("drill-{run}-{n:04}");
            let body = format!(r#"{{"data":{{"drill":"{run}","n":{n}}}}}"#);
            let path = format!("/api/items/{id}");
            let started = net::now_ms();
            let w = self
                .console
                .write("PUT", &path, Some(&body), None, Source::Drill)
                .await;
            samples.push(Sample {
                t_ms: started - clock.started_ms,
                kind: Kind::Write,
                phase: clock.phase,
                status: w.reply.status.unwrap_or(0),
                latency_ms: net::now_ms() - started,
                region: w.reply.region.clone(),
                edge_failover: w.reply.edge_failover.clone(),
                client_failover: w.failover.is_some(),
                stale: false,
            });
            if let Some(r) = w.reply.parse::<ItemResponse>().filter(|_| w.reply.ok()) {
                acked.push((id, r.item.updated_at, r.item.updated_in));
            }
            if let Some((read_id, _, _)) = acked.last() {
                let path = format!("/api/items/{}", encode(read_id));
                let started = net::now_ms();
                let (reply, _) = self
                    .console
                    .send("GET", &path, None, false, Source::Drill)
                    .await;
                samples.push(Sample {
                    t_ms: started - clock.started_ms,
                    kind: Kind::Read,
                    phase: clock.phase,
                    status: reply.status.unwrap_or(0),
                    latency_ms: reply.latency_ms,
                    // An acknowledged write that this region does not have yet.
                    stale: reply.status == Some(404),
                    region: reply.region,
                    edge_failover: reply.edge_failover,
                    client_failover: false,
                });
            }
            self.live
                .set((samples.len(), samples.iter().filter(|s| !s.ok()).count()));
            net::sleep(100).await;
        }
    }

    /// Sets (`heal == false`) or clears the fault; the admin fault also clears itself later,
    /// so a drill abandoned mid-way (a closed tab) does not leave the primary broken.
    async fn fault(&self, method: Method, seconds: u32, heal: bool) -> Result<(), String> {
        let primary = self.console.primary();
        let (method_name, path, body) = match (method, heal) {
            (Method::AppFault, false) => (
                "PUT",
                format!("/region/{primary}/api/admin/fault"),
                Some(format!(
                    r#"{{"mode":"error","status":503,"duration_s":{}}}"#,
                    seconds + 30
                )),
            ),
            (Method::AppFault, true) => {
                ("DELETE", format!("/region/{primary}/api/admin/fault"), None)
            }
            (m, heal) => {
                let state = match (m, heal) {
                    (_, true) => "up",
                    (Method::Blackhole, _) => "blackhole",
                    _ => "crashed",
                };
                (
                    "PUT",
                    format!("/_tandem/regions/{primary}"),
                    Some(format!(r#"{{"state":"{state}"}}"#)),
                )
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
    /// Reads go out a few at a time, so a round over a hundred copies takes a fraction of a
    /// second and the time measured is replication's, not the console's.
    async fn converge(&self, acked: &[Acked]) -> (Option<f64>, Vec<String>) {
        const PARALLEL: usize = 6;
        let regions = self.console.regions.get_untracked();
        let started = net::now_ms();
        let mut missing: Vec<(&Acked, &String)> = acked
            .iter()
            .flat_map(|a| regions.iter().map(move |r| (a, r)))
            .collect();
        loop {
            // A few reader tasks share the work; the results come back in order.
            let queue: Rc<RefCell<Vec<(usize, String, Acked)>>> = Rc::new(RefCell::new(
                missing
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, (a, r))| (i, (*r).clone(), (*a).clone()))
                    .collect(),
            ));
            let seen = Rc::new(RefCell::new(vec![None; missing.len()]));
            for _ in 0..PARALLEL {
                let (queue, seen, console) = (queue.clone(), seen.clone(), self.console);
                leptos::task::spawn_local(async move {
                    loop {
                        let next = queue.borrow_mut().pop();
                        let Some((i, region, a)) = next else { break };
                        let path = format!("/region/{region}/api/items/{}", encode(&a.0));
                        let (reply, _) =
                            console.send("GET", &path, None, false, Source::Drill).await;
                        let there = reply
                            .parse::<ItemResponse>()
                            .filter(|_| reply.ok())
                            .is_some_and(|r| {
                                model::caught_up(
                                    (&r.item.updated_at, &r.item.updated_in),
                                    (&a.1, &a.2),
                                )
                            });
                        seen.borrow_mut()[i] = Some(there);
                    }
                });
            }
            while seen.borrow().iter().any(Option::is_none) {
                net::sleep(20).await;
            }
            let still: Vec<(&Acked, &String)> = missing
                .iter()
                .zip(seen.borrow().iter())
                .filter(|(_, there)| **there != Some(true))
                .map(|(m, _)| *m)
                .collect();
            self.phase.set(format!(
                "waiting for convergence: {} of {} copies not there yet",
                still.len(),
                acked.len() * regions.len()
            ));
            let elapsed = net::now_ms() - started;
            if still.is_empty() {
                return (Some(elapsed), Vec::new());
            }
            if elapsed > CONVERGE_LIMIT_MS {
                let mut lost: Vec<String> = still.iter().map(|(a, _)| a.0.clone()).collect();
                lost.dedup();
                return (None, lost);
            }
            missing = still;
            net::sleep(250).await;
        }
    }

    async fn run(self, seconds: u32, method: Method) {
        self.running.set(true);
        self.outcome.set(None);
        self.error.set(None);
        let primary = self.console.primary();
        let secondary = self.console.other_than(&primary);
        // Base 36 of the start time: ids unique across runs and sorted by run.
        let mut t = net::now_ms() as u64;
        let mut run = String::new();
        while t > 0 {
            run.insert(0, char::from_digit((t % 36) as u32, 36).unwrap_or('0'));
            t /= 36;
        }
        let mut samples = Vec::new();
        let mut acked = Vec::new();
        let mut clock = Clock {
            started_ms: net::now_ms(),
            phase: Phase::Before,
        };

        self.phase.set("steady traffic".into());
        let until = clock.started_ms + STEADY_MS;
        self.traffic(&run, until, &clock, &mut samples, &mut acked)
            .await;

        self.phase
            .set(format!("{primary} {} for {seconds} s", method.describe()));
        let fault_at = net::now_ms();
        if let Err(e) = self.fault(method, seconds, false).await {
            self.error
                .set(Some(format!("could not fault {primary}: {e}")));
            self.running.set(false);
            return;
        }
        clock.phase = Phase::Outage;
        let until = fault_at + f64::from(seconds) * 1000.0;
        self.traffic(&run, until, &clock, &mut samples, &mut acked)
            .await;

        self.phase.set(format!("healing {primary}"));
        if let Err(e) = self.fault(method, seconds, true).await {
            self.error.set(Some(format!(
                "could not heal {primary}: {e} (heal it by hand)"
            )));
        }
        clock.phase = Phase::After;
        self.phase.set("traffic after the heal".into());
        let until = net::now_ms() + AFTER_HEAL_MS;
        self.traffic(&run, until, &clock, &mut samples, &mut acked)
            .await;

        let (converged_ms, lost) = self.converge(&acked).await;
        let summary = Summary::of(&samples, &primary, fault_at - clock.started_ms);
        self.outcome.set(Some(Outcome {
            fault: format!("{primary} {} for {seconds} s", method.describe()),
            writes: samples.iter().filter(|s| s.kind == Kind::Write).count(),
            acknowledged: acked.len(),
            summary,
            converged_ms,
            lost,
            secondary,
        }));
        self.phase.set("done".into());
        self.running.set(false);
    }
}

#[component]
pub fn DrillPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let d = Drill {
        console,
        running: RwSignal::new(false),
        phase: RwSignal::new(String::new()),
        live: RwSignal::new((0, 0)),
        outcome: RwSignal::new(None),
        error: RwSignal::new(None),
    };
    let seconds = RwSignal::new("5".to_owned());
    let method = RwSignal::new("fault".to_owned());
    let start = move |_| {
        let s = seconds
            .get_untracked()
            .trim()
            .parse()
            .unwrap_or(5)
            .clamp(1, 300);
        let m = Method::parse(&method.get_untracked());
        leptos::task::spawn_local(async move { d.run(s, m).await });
    };

    let results = move || {
        d.outcome.get().map(|o| {
            let s = o.summary;
            let lost = o.lost.len();
            let lost_class = if lost == 0 { "good" } else { "bad" };
            let failed = s.failures.total_reads + s.failures.total_writes;
            let by_phase = |m: &std::collections::BTreeMap<String, usize>| {
                let parts: Vec<String> = m.iter().map(|(p, n)| format!("{n} {p}")).collect();
                if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
            };
            let latency: Vec<String> = s
                .latency_by_region
                .iter()
                .map(|(r, l)| {
                    let f = |v: Option<f64>| v.map_or("–".into(), model::fmt_ms);
                    format!("{r}: p50 {} p99 {} ({})", f(l.p50_ms), f(l.p99_ms), l.count)
                })
                .collect();
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
                    <dd data-role="first-success">
                        {s.rto_ms.map_or("none".to_owned(), |ms| format!("{} after the fault", model::fmt_ms(ms)))}
                    </dd>
                    <dt>"Latency"</dt>
                    <dd>{latency.join("; ")}</dd>
                    <dt>"Writes acknowledged"</dt>
                    <dd data-role="acknowledged">{o.acknowledged}</dd>
                    <dt>"Converged"</dt>
                    <dd>
                        {o
                            .converged_ms
                            .map_or("not within 60 s".to_owned(), |ms| format!("after {}", model::fmt_ms(ms)))}
                    </dd>
                    <dt>"Writes lost"</dt>
                    <dd class=lost_class data-role="lost">
                        <strong>{lost}</strong>
                        {(lost > 0).then(|| format!(" ({})", o.lost.join(", ")))}
                    </dd>
                </dl>
            }
        })
    };

    view! {
        <section class="panel" aria-labelledby="drill-title">
            <div class="panel-head">
                <h2 id="drill-title">"Drill"</h2>
            </div>
            <p class="small muted">
                "Steady reads and writes through /api, a fault on the primary, the heal, then every acknowledged write read back from every region."
            </p>
            <div class="controls">
                <label class="inline">
                    "Fault"
                    <select id="drill-method" on:change=move |ev| method.set(event_target_value(&ev))>
                        <option value="fault" selected>"app error 503"</option>
                        <option value="crash" hidden=move || !console.has_control() disabled=move || !console.has_control()>
                            "crash the process"
                        </option>
                        <option value="blackhole" hidden=move || !console.has_control() disabled=move || !console.has_control()>
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
                    disabled=move || d.running.get() || console.token.with(Option::is_none)
                    on:click=start
                >
                    {move || if d.running.get() { "Running…" } else { "Run drill" }}
                </button>
            </div>
            <p class="small muted" hidden=move || console.token.with(Option::is_some)>
                "The drill sets faults, so it needs the admin token."
            </p>
            <p class="small" id="drill-phase" role="status" aria-live="polite">
                {move || {
                    let (n, failed) = d.live.get();
                    let phase = d.phase.get();
                    if phase.is_empty() { String::new() } else { format!("{phase} — {n} requests, {failed} failed") }
                }}
            </p>
            {move || d.error.get().map(|e| view! { <p class="outcome bad" role="alert">{e}</p> })}
            {results}
        </section>
    }
}
