//! The drill: steady reads and writes through `/api`, a fault for a while on the region `/api`
//! goes to first (the active region: the primary unless switched), the heal, and then proof
//! that nothing acknowledged was lost: every acknowledged write is read back from every region
//! until they agree. What counts as lost, converged or stale, and the figures, come from
//! [`tandem_shared::drill`]: the same rules and arithmetic as `tandem drill`'s, so the console
//! and the CLI cannot count the same run differently.

use crate::console::Console;
use crate::model::{self, Source};
use crate::net::{self, Call, Method as Verb, Reply, encode};
use crate::widgets::NumberInput;
use futures::stream::{self, StreamExt as _};
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tandem_shared::Fault;
use tandem_shared::control::{RegionState, SetRegionState};
use tandem_shared::drill::{
    self as rules, AckedWrite, Held, Kind, LostWrite, Phase, Sample, Stamp, Summary,
};
use tandem_shared::wire::ItemResponse;
use tandem_shared::wire::path;

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
    /// The ids of the acknowledged writes some region lost ([`rules::lost_writes`]), each once.
    lost: Vec<String>,
    /// The ids the regions still held different writes of ([`rules::diverging`]).
    diverging: Vec<String>,
    secondary: String,
}

/// How the wait for convergence ended.
struct Convergence {
    /// From the start of the wait until settled; `None` when time ran out first.
    ms: Option<f64>,
    lost: Vec<String>,
    diverging: Vec<String>,
}

/// What the Run button asks for.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seconds: u32,
    method: Method,
}

/// Everything one run records.
struct Run {
    /// Base 36 of the start time: ids unique across runs and sorted by run.
    id: String,
    started_ms: f64,
    phase: Phase,
    samples: Vec<Sample>,
    acked: Vec<AckedWrite>,
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

        let convergence = self.converge(&run.acked).await;
        self.phase.set("done".into());
        Some(Outcome {
            fault,
            summary: Summary::of(&run.samples, &target, fault_at - run.started_ms),
            writes: run.samples.iter().filter(|s| s.kind == Kind::Write).count(),
            acknowledged: run.acked.len(),
            converged_ms: convergence.ms,
            lost: convergence.lost,
            diverging: convergence.diverging,
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
    /// region acknowledged it: a 2xx carrying the stored item, whose stamp says which write
    /// later reads must find.
    async fn write(&self, run: &mut Run) {
        let n = run.samples.len() + 1;
        let id = format!("drill-{}-{n:04}", run.id);
        let body = format!(r#"{{"data":{{"drill":"{}","n":{n}}}}}"#, run.id);
        let path = path::item(&id);
        let started = net::now_ms();
        let w = self
            .console
            .write(Call::put(&path, &body), Source::Drill)
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
        if w.reply.ok()
            && let Some(stamp) = w
                .reply
                .parse::<ItemResponse>()
                .and_then(|r| Stamp::of(&r.item))
        {
            run.acked.push(AckedWrite { id, stamp });
        }
    }

    /// Reads the last acknowledged write back through `/api`: stale when the answer shows it
    /// missing or an older write ([`rules::is_stale_read`]).
    async fn read_back(&self, run: &mut Run) {
        let Some(last) = run.acked.last() else {
            return;
        };
        let path = path::item(&encode(&last.id));
        let started = net::now_ms();
        let (reply, _) = self.console.send(Call::get(&path), Source::Drill).await;
        // A failed read (no answer, a 5xx) is a failure, not a stale read.
        let stale = found(&reply).is_some_and(|f| rules::is_stale_read(&last.stamp, f.as_ref()));
        run.samples.push(Sample {
            t_ms: started - run.started_ms,
            kind: Kind::Read,
            phase: run.phase,
            status: reply.status.unwrap_or(0),
            latency_ms: reply.latency_ms,
            stale,
            region: reply.region,
            edge_failover: reply.edge_failover,
            client_failover: false,
        });
    }

    /// Sets (`heal == false`) or clears the fault in `region`; the admin fault also clears
    /// itself later, so a drill abandoned mid-way (a closed tab) does not leave it broken.
    async fn fault(&self, plan: Plan, region: &str, heal: bool) -> Result<(), String> {
        let admin = format!("/region/{region}/api/admin/fault");
        let (verb, path, body) = match (plan.method, heal) {
            (Method::AppFault, false) => {
                let fault = Fault::Error {
                    status: 503,
                    duration_s: Some(u64::from(plan.seconds) + 30),
                };
                (Verb::Put, admin, serde_json::to_string(&fault).ok())
            }
            (Method::AppFault, true) => (Verb::Delete, admin, None),
            (m, heal) => {
                let state = match (m, heal) {
                    (_, true) => RegionState::Up,
                    (Method::Blackhole, _) => RegionState::Blackhole,
                    _ => RegionState::Crashed,
                };
                let body = serde_json::to_string(&SetRegionState { state }).ok();
                (Verb::Put, tandem_shared::control::region_path(region), body)
            }
        };
        let (reply, _) = self
            .console
            .send(
                Call::with(verb, &path, body.as_deref()).admin(),
                Source::Drill,
            )
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

    /// Reads every acknowledged id back from every region, in rounds, until the regions hold
    /// the same final state and nothing acknowledged is lost ([`rules::unsettled`]), or the
    /// time limit passes. Each round rereads only the ids the last one left unsettled, so the
    /// rounds shrink as replication catches up.
    async fn converge(&self, acked: &[AckedWrite]) -> Convergence {
        let regions = self.console.regions.get_untracked();
        // `extend`, not `collect`: see `tandem_shared::drill` on what `collect` costs here.
        let mut held = Held::new();
        held.extend(regions.into_iter().map(|r| (r, BTreeMap::new())));
        let mut waiting = BTreeSet::new();
        waiting.extend(acked.iter().map(|a| a.id.clone()));
        let total = waiting.len();
        let started = net::now_ms();
        loop {
            self.read_round(&waiting, &mut held).await;
            waiting = rules::unsettled(acked, &held);
            self.phase.set(format!(
                "waiting for convergence: {} of {total} writes not settled yet",
                waiting.len()
            ));
            let elapsed = net::now_ms() - started;
            if waiting.is_empty() {
                return Convergence {
                    ms: Some(elapsed),
                    lost: Vec::new(),
                    diverging: Vec::new(),
                };
            }
            if elapsed > CONVERGE_LIMIT_MS {
                return Convergence {
                    ms: None,
                    lost: lost_ids(&rules::lost_writes(acked, &held)),
                    diverging: rules::diverging(&held),
                };
            }
            net::sleep(250).await;
        }
    }

    /// Reads `ids` from every region of `held` and notes what each holds; a failed read drops
    /// the entry, so the id does not count as held there. The reads go out [`PARALLEL`] at a
    /// time, so a round over a hundred copies takes a fraction of a second and the time
    /// measured is replication's, not the console's.
    async fn read_round(&self, ids: &BTreeSet<String>, held: &mut Held) {
        let console = self.console;
        let copies: Vec<(String, &String)> = held
            .keys()
            .flat_map(|r| ids.iter().map(move |id| (r.clone(), id)))
            .collect();
        let reads = copies
            .iter()
            .map(|(region, id)| held_by(console, region, id));
        let found: Vec<Option<Option<Stamp>>> =
            stream::iter(reads).buffered(PARALLEL).collect().await;
        for ((region, id), found) in copies.into_iter().zip(found) {
            let ids = held.entry(region).or_default();
            match found {
                Some(state) => ids.insert(id.clone(), state),
                None => ids.remove(id),
            };
        }
    }
}

/// Reads in flight at once while waiting for convergence.
const PARALLEL: usize = 6;

/// What `region` holds of `id` ([`found`]).
async fn held_by(console: Console, region: &str, id: &str) -> Option<Option<Stamp>> {
    let path = path::in_region(region, &path::item(&encode(id)));
    let (reply, _) = console.send(Call::get(&path), Source::Drill).await;
    found(&reply)
}

/// What a read of an item found: `Some(None)` for a 404, `Some(Some(stamp))` for the item, and
/// `None` when the read failed (no answer, another status, a body that is not an item), which
/// shows nothing either way.
fn found(reply: &Reply) -> Option<Option<Stamp>> {
    match reply.status {
        Some(200) => reply
            .parse::<ItemResponse>()
            .and_then(|r| Stamp::of(&r.item))
            .map(Some),
        Some(404) => Some(None),
        _ => None,
    }
}

/// The ids of `lost`, each once: a write lost in both regions is one lost write, as the CLI
/// counts it. [`rules::lost_writes`] sorts by id, so duplicates are adjacent.
fn lost_ids(lost: &[LostWrite]) -> Vec<String> {
    let mut ids: Vec<String> = lost.iter().map(|l| l.id.clone()).collect();
    ids.dedup();
    ids
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
                <NumberInput id="drill-seconds" min="1" max="300" value=seconds />
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
            <dt>"Stale reads (missing or older)"</dt>
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
            {diverging_view(o.diverging)}
        </dl>
    }
}

/// The ids the regions still differ on, when the wait ended with some.
fn diverging_view(ids: Vec<String>) -> impl IntoView {
    (!ids.is_empty()).then(|| {
        view! {
            <dt>"Regions still differ on"</dt>
            <dd class="bad" data-role="diverging">
                <strong>{ids.len()}</strong>
                {format!(" ({})", ids.join(", "))}
            </dd>
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: Option<u16>, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            ..Reply::default()
        }
    }

    #[test]
    fn a_read_finds_the_item_nothing_or_shows_nothing() {
        let item = r#"{"item":{"id":"a","data":{},"version":1,"updated_at":"2026-01-01T00:00:00.100Z","updated_in":"us-west-2"},"region":"us-west-2"}"#;
        let stamp = found(&reply(Some(200), item)).flatten().expect("a stamp");
        assert_eq!(stamp.updated_in, "us-west-2");
        assert_eq!(found(&reply(Some(404), "")), Some(None));
        // Failed reads show nothing: neither held nor missing, and never a stale read.
        assert_eq!(found(&reply(Some(503), item)), None);
        assert_eq!(found(&reply(None, "")), None);
        assert_eq!(found(&reply(Some(200), "<html>")), None);
    }

    #[test]
    fn a_write_lost_in_every_region_counts_once() {
        let stamp = Stamp {
            updated_at_ms: 20,
            updated_in: "us-west-2".into(),
        };
        let acked = [AckedWrite {
            id: "a".into(),
            stamp: stamp.clone(),
        }];
        let held: Held = ["us-east-1", "us-west-2"]
            .into_iter()
            .map(|r| (r.to_owned(), BTreeMap::from([("a".to_owned(), None)])))
            .collect();
        let lost = rules::lost_writes(&acked, &held);
        assert_eq!(lost.len(), 2);
        assert_eq!(lost_ids(&lost), vec!["a".to_owned()]);
    }
}
