//! `tandem drill`: an outage drill with the figures a client lives through.
//!
//! Steady reads and writes go through `/api` (writes failing over in the client as the console
//! does, or not at all with `--client plain`), the outage is injected into one region through
//! the [`ControlClient`], healed, and then every acknowledged write is read back from every
//! region until they agree. With `--switch manual` the drill moves the active region (SPEC §6)
//! to the other region right after the fault; with `--switch auto` the stack's health watcher
//! does and the drill records when; either way it fails back once the region is healthy again,
//! so the stack ends as it started. What counts as lost, converged or stale, and the figures
//! ([`Summary`], [`SwitchFigures`]), come from [`tandem_shared::drill`], the same code the
//! console uses. Output: a progress bar, a terminal summary, a JSON report and
//! a self-contained HTML report ([`render_html`]) with a timeline of every request.

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tandem_local::client::{ControlClient, Target};
use tandem_shared::control::Outage;
use tandem_shared::drill::{
    self as rules, AckedWrite, ClientMode, Held, Kind, LostWrite, Phase, Sample, Stamp, Summary,
    SwitchFigures, SwitchMode, Window,
};
use tandem_shared::fault::MAX_DURATION_S;
use tandem_shared::headers::{EDGE_ACTIVE, EDGE_FAILOVER, SERVED_REGION};
use tandem_shared::item::Data;
use tandem_shared::region::{DEFAULT_REGIONS, is_valid_region};
use tandem_shared::wire::{ItemResponse, PutBody};
use tokio::task::{JoinHandle, JoinSet};

/// Flags of `tandem drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// The public endpoint (the local edge or the CloudFront distribution) and the admin token.
    #[command(flatten)]
    pub target: Target,
    /// Seconds of steady traffic, outage included.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    pub rps: u32,
    /// Share of requests that are writes (0..=1).
    #[arg(long, default_value_t = 0.3)]
    pub write_ratio: f64,
    /// The region to fail [default: the primary].
    #[arg(long)]
    pub region: Option<String>,
    /// The outage to inject: error:<500|502|503|504> or slow:<ms> (any edge); stopped, crashed,
    /// blackhole or partition (the local stack).
    #[arg(long, default_value = "error:503")]
    pub fault: Outage,
    /// Seconds the fault lasts.
    #[arg(long, default_value_t = 10)]
    pub outage: u64,
    /// Where to write the JSON report (the HTML report goes beside it, `.html`); a name ending
    /// in `.html` names the HTML report instead, with the JSON beside it.
    #[arg(long, default_value = "drill-report.json")]
    pub report: PathBuf,
    /// Seconds to wait for convergence after the traffic stops.
    #[arg(long, default_value_t = 60)]
    pub converge_timeout: u64,
    /// What the client does with a write that gets a 5xx or no answer through /api.
    #[arg(long, value_enum, default_value_t = ClientMode::Failover)]
    pub client: ClientMode,
    /// Who moves the active region (SPEC §6) during the outage; manual and auto need the
    /// local stack's control API, auto a stack started with `tandem up --auto-failover`.
    #[arg(long, value_enum, default_value_t = SwitchMode::None)]
    pub switch: SwitchMode,
}

/// The JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub endpoint: String,
    /// The outage, as `--fault` names it (`"error:503"`).
    pub fault: Outage,
    pub region: String,
    pub other_region: String,
    pub regions: Vec<String>,
    pub duration_s: u64,
    pub outage_s: u64,
    pub rps: u32,
    pub write_ratio: f64,
    /// `--client`: whether failed writes were resent to the other region.
    #[serde(default)]
    pub client: ClientMode,
    /// `--switch`: who moved the active region.
    #[serde(default)]
    pub switch: SwitchMode,
    /// Milliseconds from the drill's start.
    pub fault_ms: f64,
    pub heal_ms: f64,
    pub traffic_end_ms: f64,
    /// When the active region moved to the other region (the drill did it, or first saw it
    /// done), in milliseconds from the drill's start; `None` when it did not move.
    #[serde(default)]
    pub switch_ms: Option<f64>,
    /// When the drill cleared the active region again after the heal; `None` when it did not.
    #[serde(default)]
    pub failback_ms: Option<f64>,
    /// Milliseconds from the heal until every write acknowledged before the heal was in every
    /// region (nothing lost, the regions agreeing on those ids), measured while the traffic
    /// went on; `None` when that did not happen before the traffic ended.
    #[serde(default)]
    pub recovery_ms: Option<f64>,
    /// Milliseconds from the heal until every region held the same final state of every
    /// acknowledged id and nothing acknowledged was lost, checked once the traffic had stopped
    /// (so it is never less than the traffic left after the heal); `None` when that never
    /// happened.
    pub convergence_ms: Option<f64>,
    pub acknowledged_writes: usize,
    /// What was still lost when the wait for convergence ended ([`rules::lost_writes`]).
    pub lost_writes: Vec<LostWrite>,
    /// Ids whose regions still held different writes when the wait ended ([`rules::diverging`]).
    #[serde(default)]
    pub diverging: Vec<String>,
    pub summary: Summary,
    /// The fault-to-switch time, the outage split at the switch, the plain client's failed
    /// writes ([`SwitchFigures`]).
    #[serde(default)]
    pub switchover: SwitchFigures,
    /// What the drill did to the active region, and what it expected and did not see.
    #[serde(default)]
    pub notes: Vec<String>,
    pub samples: Vec<Sample>,
}

impl Report {
    /// How many ids lost an acknowledged write, in one region or more.
    pub fn lost_ids(&self) -> usize {
        let ids: BTreeSet<&str> = self.lost_writes.iter().map(|l| l.id.as_str()).collect();
        ids.len()
    }
}

/// Data requests give up after this long (a blackholed region holds them until the edge's read
/// timeout, far shorter).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Control requests (region list, inject, heal) give up after this long.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// An admin fault also clears itself this long after the planned heal, so that a drill stopped
/// half-way (Ctrl-C) does not leave the region broken.
const FAULT_GRACE_S: u64 = 30;
/// Reads in flight at once while waiting for convergence.
const PARALLEL_READS: usize = 16;
/// The pause between two rounds of reads while waiting for convergence.
const ROUND_PAUSE: Duration = Duration::from_millis(200);
/// How often `--switch auto` asks the control API for the active region during the outage.
const SWITCH_POLL: Duration = Duration::from_millis(50);
/// How long the drill waits, after the heal, for the region to answer its health check before
/// failing back (it fails back anyway then, so that the stack ends as it started).
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// One health check's limit, and the pause between two.
const HEALTH_PROBE: Duration = Duration::from_millis(500);

/// Runs a drill and writes its reports; returns the report.
pub async fn run(args: DrillArgs) -> anyhow::Result<Report> {
    check_args(&args)?;
    let control = args.target.client(CONTROL_TIMEOUT)?;
    let regions = discover_regions(&control).await;
    let (region, other) = pick_regions(&regions, args.region.as_deref())?;
    if args.switch != SwitchMode::None {
        check_no_active_region(&control).await?;
    }
    let drill = Arc::new(Drill::new(&args, control, region, other)?);
    drill.first_write().await?;

    let outage = drill.spawn_outage(args.fault, args.outage);
    let watch = (args.switch == SwitchMode::Auto).then(|| drill.spawn_switch_watch());
    let recovery = drill.spawn_recovery_watch(regions.clone(), args.duration);
    let traffic_end_ms = drill.traffic(&args).await;
    if let Some(watch) = watch {
        watch.await.context("the switch watch")?;
    }
    outage.await.context("the fault task")??;
    let recovery_ms = recovery.await.context("the recovery watch")?;
    let timeout = Duration::from_secs(args.converge_timeout);
    let convergence = drill.converge(&regions, timeout).await;

    let report = drill.report(&args, regions, traffic_end_ms, (recovery_ms, convergence));
    let (json, html) = write_reports(&report, &args.report)?;
    print_summary(&report);
    println!("reports: {} and {}", json.display(), html.display());
    Ok(report)
}

fn check_args(args: &DrillArgs) -> anyhow::Result<()> {
    if args.outage == 0 || args.outage >= args.duration {
        bail!("--outage must be at least 1 and shorter than --duration");
    }
    if !(0.0..=1.0).contains(&args.write_ratio) || args.rps == 0 {
        bail!("--write-ratio must be within 0..=1 and --rps at least 1");
    }
    Ok(())
}

/// A switched drill starts with no active region set (`/api/*` to the primary), so that it can
/// end the same way by clearing it.
async fn check_no_active_region(control: &ControlClient) -> anyhow::Result<()> {
    let active = control
        .active_region()
        .await
        .context("--switch manual|auto needs the local stack's control API")?;
    if let Some(r) = active.region {
        bail!(
            "the active region is already {r}; run `tandem failback` first, so that the drill \
             starts and ends with none"
        );
    }
    Ok(())
}

/// The regions behind the endpoint, primary first: the local control API says; elsewhere
/// (CloudFront has no control API) the default ones.
async fn discover_regions(control: &ControlClient) -> Vec<String> {
    match control.regions().await {
        Ok(body) if !body.regions.is_empty() => {
            let mut regions = body.regions;
            regions.sort_by_key(|r| !r.primary);
            regions.into_iter().map(|r| r.region).collect()
        }
        _ => DEFAULT_REGIONS.iter().map(|r| r.to_string()).collect(),
    }
}

/// The region to fail (`--region`, else the first, the primary) and the one that takes over.
fn pick_regions(regions: &[String], asked: Option<&str>) -> anyhow::Result<(String, String)> {
    let region = match asked {
        Some(r) if !is_valid_region(r) => bail!("--region {r:?} is not a region name"),
        Some(r) => r.to_owned(),
        None => regions.first().context("no regions")?.clone(),
    };
    let other = regions
        .iter()
        .find(|r| **r != region)
        .cloned()
        .context("the drill needs two regions")?;
    Ok((region, other))
}

/// When the fault starts and ends, in milliseconds from the drill's start: in the middle of the
/// traffic, at least a second in, and over before the traffic is.
fn fault_window(duration_s: u64, outage_s: u64) -> (f64, f64) {
    let (total, outage) = (duration_s as f64 * 1000.0, outage_s as f64 * 1000.0);
    let fault_ms = ((total - outage) / 2.0).max(1000.0).min(total - outage);
    (fault_ms, fault_ms + outage)
}

/// A run's id, unique across runs: the start time in hexadecimal milliseconds.
fn run_id() -> anyhow::Result<String> {
    Ok(format!(
        "{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    ))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One drill's state, shared by its request tasks.
struct Drill {
    http: reqwest::Client,
    endpoint: String,
    control: ControlClient,
    region: String,
    other: String,
    run_id: String,
    client: ClientMode,
    switch: SwitchMode,
    started: Instant,
    fault_ms: f64,
    heal_ms: f64,
    samples: Mutex<Vec<Sample>>,
    acked: Mutex<Vec<AckedWrite>>,
    /// When the active region moved away from the faulted region ([`Report::switch_ms`]).
    switch_ms: Mutex<Option<f64>>,
    failback_ms: Mutex<Option<f64>>,
    notes: Mutex<Vec<String>>,
}

/// What one request got back: status 0 when no answer came.
struct Answer {
    status: u16,
    region: Option<String>,
    edge_failover: Option<String>,
    /// `x-edge-active`: the active region when the edge routed the request.
    edge_active: Option<String>,
    item: Option<ItemResponse>,
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Answer {
    /// Reads a response to its end, keeping the item when the body is one.
    async fn of(response: reqwest::Result<reqwest::Response>) -> Answer {
        let Ok(r) = response else {
            return Answer {
                status: 0,
                region: None,
                edge_failover: None,
                edge_active: None,
                item: None,
            };
        };
        let (status, region) = (r.status().as_u16(), header(&r, SERVED_REGION));
        let (edge_failover, edge_active) = (header(&r, EDGE_FAILOVER), header(&r, EDGE_ACTIVE));
        let body = r.bytes().await.unwrap_or_default();
        Answer {
            status,
            region,
            edge_failover,
            edge_active,
            item: serde_json::from_slice(&body).ok(),
        }
    }

    /// The write the answer shows, when it carries an item.
    fn stamp(&self) -> Option<Stamp> {
        self.item.as_ref().and_then(|r| Stamp::of(&r.item))
    }

    /// Worth resending to the other region: a 5xx, or no answer at all.
    fn failed(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

impl Drill {
    fn new(
        args: &DrillArgs,
        control: ControlClient,
        region: String,
        other: String,
    ) -> anyhow::Result<Drill> {
        let (fault_ms, heal_ms) = fault_window(args.duration, args.outage);
        Ok(Drill {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .pool_idle_timeout(tandem_local::client::idle_timeout())
                .pool_max_idle_per_host(256)
                .build()?,
            endpoint: control.base().to_owned(),
            control,
            region,
            other,
            run_id: run_id()?,
            client: args.client,
            switch: args.switch,
            started: Instant::now(),
            fault_ms,
            heal_ms,
            samples: Mutex::default(),
            acked: Mutex::default(),
            switch_ms: Mutex::default(),
            failback_ms: Mutex::default(),
            notes: Mutex::default(),
        })
    }

    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    async fn sleep_until(&self, t_ms: f64) {
        let left = (t_ms - self.now_ms()).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(left / 1000.0)).await;
    }

    fn note(&self, note: String) {
        lock(&self.notes).push(note);
    }

    /// Notes that the active region was seen moved away from the faulted region at `t_ms`
    /// (keeping the earliest sighting), with `--switch auto` and from the fault on. Every
    /// sighting comes after the switch itself: the earliest is the closest.
    fn saw_active(&self, active: Option<&str>, t_ms: f64) {
        let moved = active.is_some_and(|a| a != self.region);
        if self.switch != SwitchMode::Auto || !moved || t_ms < self.fault_ms {
            return;
        }
        let mut at = lock(&self.switch_ms);
        if at.is_none_or(|s| t_ms < s) {
            *at = Some(t_ms);
        }
    }

    fn switched(&self) -> bool {
        lock(&self.switch_ms).is_some()
    }

    fn phase(&self, t: f64) -> Phase {
        if t < self.fault_ms {
            Phase::Before
        } else if t < self.heal_ms {
            Phase::Outage
        } else {
            Phase::After
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.endpoint);
        Answer::of(self.http.get(url).send().await).await
    }

    async fn put(&self, path: &str, body: &PutBody) -> Answer {
        let url = format!("{}{path}", self.endpoint);
        Answer::of(self.http.put(url).json(body).send().await).await
    }

    /// The sample of a request of `kind` that started at `t_ms` and got `answer`.
    fn sample(&self, t_ms: f64, kind: Kind, answer: &Answer) -> Sample {
        Sample {
            t_ms,
            kind,
            phase: self.phase(t_ms),
            status: answer.status,
            latency_ms: self.now_ms() - t_ms,
            region: answer.region.clone(),
            edge_failover: answer.edge_failover.clone(),
            client_failover: false,
            stale: false,
        }
    }

    /// Writes item `n` of this run through `/api`; with `--client failover`, resent to the other
    /// region when the first answer is a 5xx or none. Acknowledged: a 2xx carrying the stored
    /// item.
    async fn write(self: Arc<Self>, n: u64) {
        let t = self.now_ms();
        let id = format!("drill-{}-{n}", self.run_id);
        let data = Data::from_iter([
            ("n".to_owned(), n.into()),
            ("run".to_owned(), self.run_id.clone().into()),
        ]);
        let body = PutBody { data };
        let mut answer = self.put(&format!("/api/items/{id}"), &body).await;
        self.saw_active(answer.edge_active.as_deref(), self.now_ms());
        let client_failover = self.client == ClientMode::Failover && answer.failed();
        if client_failover {
            let path = format!("/region/{}/api/items/{id}", self.other);
            answer = self.put(&path, &body).await;
        }
        if (200..300).contains(&answer.status)
            && let Some(stamp) = answer.stamp()
        {
            lock(&self.acked).push(AckedWrite { id, stamp });
        }
        let sample = Sample {
            client_failover,
            ..self.sample(t, Kind::Write, &answer)
        };
        lock(&self.samples).push(sample);
    }

    /// Reads an acknowledged write (the `pick`th, modulo) through `/api`: stale when the answer
    /// shows it missing or older ([`rules::is_stale_read`]).
    async fn read(self: Arc<Self>, pick: u64) {
        let t = self.now_ms();
        let target = {
            let acked = lock(&self.acked);
            acked.get(pick as usize % acked.len().max(1)).cloned()
        };
        let Some(target) = target else { return };
        let answer = self.get(&format!("/api/items/{}", target.id)).await;
        self.saw_active(answer.edge_active.as_deref(), self.now_ms());
        let stale = match answer.status {
            404 => rules::is_stale_read(&target.stamp, None),
            200 => answer
                .stamp()
                .is_some_and(|found| rules::is_stale_read(&target.stamp, Some(&found))),
            _ => false,
        };
        let sample = Sample {
            stale,
            ..self.sample(t, Kind::Read, &answer)
        };
        lock(&self.samples).push(sample);
    }

    /// One acknowledged write before the traffic, so that reads have something to read from
    /// the start; it is not one of the drill's samples.
    async fn first_write(self: &Arc<Self>) -> anyhow::Result<()> {
        Arc::clone(self).write(0).await;
        lock(&self.samples).clear();
        if lock(&self.acked).is_empty() {
            bail!("the endpoint did not acknowledge a first write; is it up?");
        }
        Ok(())
    }

    /// In the background: injects `outage` into the region at `fault_ms` (and, with `--switch
    /// manual`, makes the other region active) and clears it at `heal_ms`; then, when the active
    /// region moved, fails back once the region is healthy. Each step's error fails the drill,
    /// but the later steps still run (a failed inject still heals and fails back).
    fn spawn_outage(
        self: &Arc<Self>,
        outage: Outage,
        outage_s: u64,
    ) -> JoinHandle<anyhow::Result<()>> {
        let drill = Arc::clone(self);
        let expiry = Some(outage_s + FAULT_GRACE_S).filter(|s| *s <= MAX_DURATION_S);
        tokio::spawn(async move {
            let region = drill.region.as_str();
            drill.sleep_until(drill.fault_ms).await;
            let injected = drill.control.inject(region, outage, expiry).await;
            let mut result = injected.with_context(|| format!("injecting {outage} into {region}"));
            if drill.switch == SwitchMode::Manual {
                result = result.and(drill.switch_over().await);
            }
            drill.sleep_until(drill.heal_ms).await;
            let healed = drill.control.clear(region, outage).await;
            result = result.and(healed.with_context(|| format!("clearing {outage} from {region}")));
            if drill.switch != SwitchMode::None {
                result = result.and(drill.fail_back().await);
            }
            result
        })
    }

    /// `--switch manual`: makes the other region the active one, and notes when.
    async fn switch_over(&self) -> anyhow::Result<()> {
        let other = self.other.as_str();
        self.control
            .set_active_region(Some(other))
            .await
            .with_context(|| format!("making {other} the active region"))?;
        *lock(&self.switch_ms) = Some(self.now_ms());
        self.note(format!(
            "the drill made {other} the active region right after the fault"
        ));
        Ok(())
    }

    /// `--switch auto`: in the background, asks the control API for the active region every
    /// [`SWITCH_POLL`] from the fault to the heal, until it is seen moved ([`Drill::saw_active`];
    /// the `x-edge-active` of the traffic's answers may show it first).
    fn spawn_switch_watch(self: &Arc<Self>) -> JoinHandle<()> {
        let drill = Arc::clone(self);
        tokio::spawn(async move {
            drill.sleep_until(drill.fault_ms).await;
            while drill.now_ms() < drill.heal_ms && !drill.switched() {
                if let Ok(active) = drill.control.active_region().await {
                    drill.saw_active(active.region.as_deref(), drill.now_ms());
                }
                tokio::time::sleep(SWITCH_POLL).await;
            }
            if !drill.switched() {
                drill.note(format!(
                    "the active region did not move during the outage: is the stack running \
                     with `tandem up --auto-failover`, and is {} the region it serves from?",
                    drill.region
                ));
            }
        })
    }

    /// After the heal, with a switch: waits (at most [`HEALTHY_TIMEOUT`]) for the region to
    /// answer its health check, then clears the active region when it is set, so that the
    /// stack ends as it started; notes what it did.
    async fn fail_back(&self) -> anyhow::Result<()> {
        let region = self.region.as_str();
        if !self.until_healthy(HEALTHY_TIMEOUT).await {
            self.note(format!(
                "{region} was still unhealthy {} s after the heal; failing back anyway",
                HEALTHY_TIMEOUT.as_secs()
            ));
        }
        let active = self.control.active_region().await;
        let active = active.context("reading the active region after the heal")?;
        let Some(was) = active.region else {
            self.note("after the heal no active region was set: nothing to fail back".into());
            return Ok(());
        };
        self.control
            .set_active_region(None)
            .await
            .context("clearing the active region after the heal (run `tandem failback`)")?;
        *lock(&self.failback_ms) = Some(self.now_ms());
        self.note(format!(
            "failed back after the heal: the active region ({was}) is cleared, /api/* goes to \
             the primary first again, as before the drill"
        ));
        Ok(())
    }

    /// Whether the region answers its health check through the edge within `limit`.
    async fn until_healthy(&self, limit: Duration) -> bool {
        let url = format!("{}/region/{}/api/health", self.endpoint, self.region);
        let deadline = Instant::now() + limit;
        loop {
            let probe = self.http.get(&url).timeout(HEALTH_PROBE).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(HEALTH_PROBE).await;
        }
    }

    /// Steady traffic until `--duration`: `--rps` requests a second, each a write with
    /// probability `--write-ratio`, else a read. Returns once every request has ended, with the
    /// time it did.
    async fn traffic(self: &Arc<Self>, args: &DrillArgs) -> f64 {
        let bar = progress_bar(args.duration);
        let total_ms = args.duration as f64 * 1000.0;
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ self.run_id.len() as u64 ^ u64::from(std::process::id()));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rps)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = JoinSet::new();
        let (mut writes, mut requests) = (0, 0);
        while self.now_ms() < total_ms {
            tick.tick().await;
            if rng.chance(args.write_ratio) {
                writes += 1;
                tasks.spawn(Arc::clone(self).write(writes));
            } else {
                tasks.spawn(Arc::clone(self).read(rng.next()));
            }
            requests += 1;
            let t = self.now_ms();
            bar.set_position((t / 1000.0) as u64);
            let switched = if self.switched() { " (switched)" } else { "" };
            bar.set_message(format!(
                "{:?}{switched}, {requests} requests",
                self.phase(t)
            ));
        }
        while tasks.join_next().await.is_some() {}
        bar.finish_with_message("traffic done; waiting for convergence");
        self.now_ms()
    }

    /// Reads every acknowledged id back from every region, in rounds, until the regions hold the
    /// same final state and nothing acknowledged is lost ([`rules::unsettled`]), or `timeout`
    /// passes. Each round rereads only the ids the last one left unsettled.
    /// From the heal, while the traffic goes on: reads back the writes acknowledged before the
    /// heal until every region holds them ([`rules::unsettled`]); the milliseconds that took,
    /// or `None` when the traffic ended first.
    fn spawn_recovery_watch(
        self: &Arc<Self>,
        regions: Vec<String>,
        duration_s: u64,
    ) -> tokio::task::JoinHandle<Option<f64>> {
        let drill = Arc::clone(self);
        tokio::spawn(async move {
            drill.sleep_until(drill.heal_ms).await;
            let backlog = lock(&drill.acked).clone();
            let mut held: Held = regions.into_iter().map(|r| (r, BTreeMap::new())).collect();
            let mut waiting: BTreeSet<String> = backlog.iter().map(|a| a.id.clone()).collect();
            while drill.now_ms() < duration_s as f64 * 1000.0 {
                drill.read_back(&waiting, &mut held).await;
                waiting = rules::unsettled(&backlog, &held);
                if waiting.is_empty() {
                    return Some(drill.now_ms() - drill.heal_ms);
                }
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            None
        })
    }

    async fn converge(self: &Arc<Self>, regions: &[String], timeout: Duration) -> Convergence {
        let acked = lock(&self.acked).clone();
        let mut held: Held = regions
            .iter()
            .map(|r| (r.clone(), BTreeMap::new()))
            .collect();
        let mut waiting: BTreeSet<String> = acked.iter().map(|a| a.id.clone()).collect();
        let deadline = Instant::now() + timeout;
        loop {
            self.read_back(&waiting, &mut held).await;
            waiting = rules::unsettled(&acked, &held);
            if waiting.is_empty() {
                return Convergence {
                    ms: Some(self.now_ms() - self.heal_ms),
                    lost: Vec::new(),
                    diverging: Vec::new(),
                };
            }
            if Instant::now() > deadline {
                return Convergence {
                    ms: None,
                    lost: rules::lost_writes(&acked, &held),
                    diverging: rules::diverging(&held),
                };
            }
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }

    /// Reads `ids` from every region of `held`, [`PARALLEL_READS`] at a time, and notes what
    /// each region holds; a failed read removes the entry (not shown to be held).
    async fn read_back(self: &Arc<Self>, ids: &BTreeSet<String>, held: &mut Held) {
        let copies: Vec<(String, String)> = held
            .keys()
            .flat_map(|r| ids.iter().map(move |id| (r.clone(), id.clone())))
            .collect();
        let mut reads = JoinSet::new();
        for (region, id) in copies {
            if reads.len() >= PARALLEL_READS
                && let Some(Ok(read)) = reads.join_next().await
            {
                note(held, read);
            }
            let drill = Arc::clone(self);
            reads.spawn(async move {
                let found = drill.held_by(&region, &id).await;
                (region, id, found)
            });
        }
        while let Some(done) = reads.join_next().await {
            if let Ok(read) = done {
                note(held, read);
            }
        }
    }

    /// What `region` holds of `id`: `Some(None)` for a 404, `None` when the read failed.
    async fn held_by(&self, region: &str, id: &str) -> Option<Option<Stamp>> {
        let answer = self.get(&format!("/region/{region}/api/items/{id}")).await;
        match answer.status {
            200 => answer.stamp().map(Some),
            404 => Some(None),
            _ => None,
        }
    }

    fn report(
        &self,
        args: &DrillArgs,
        regions: Vec<String>,
        traffic_end_ms: f64,
        (recovery_ms, convergence): (Option<f64>, Convergence),
    ) -> Report {
        let mut samples = lock(&self.samples).clone();
        samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        let switch_ms = *lock(&self.switch_ms);
        Report {
            endpoint: self.endpoint.clone(),
            fault: args.fault,
            region: self.region.clone(),
            other_region: self.other.clone(),
            regions,
            duration_s: args.duration,
            outage_s: args.outage,
            rps: args.rps,
            write_ratio: args.write_ratio,
            client: self.client,
            switch: self.switch,
            fault_ms: self.fault_ms,
            heal_ms: self.heal_ms,
            traffic_end_ms,
            switch_ms,
            failback_ms: *lock(&self.failback_ms),
            recovery_ms,
            convergence_ms: convergence.ms,
            acknowledged_writes: lock(&self.acked).len(),
            lost_writes: convergence.lost,
            diverging: convergence.diverging,
            summary: Summary::of(&samples, &self.region, self.fault_ms),
            switchover: SwitchFigures::of(&samples, self.fault_ms, switch_ms),
            notes: lock(&self.notes).clone(),
            samples,
        }
    }
}

/// How the wait for convergence ended.
struct Convergence {
    /// From the heal until settled; `None` when time ran out first.
    ms: Option<f64>,
    lost: Vec<LostWrite>,
    diverging: Vec<String>,
}

/// Notes one read of [`Drill::read_back`] in `held`.
fn note(held: &mut Held, (region, id, found): (String, String, Option<Option<Stamp>>)) {
    let ids = held.entry(region).or_default();
    match found {
        Some(state) => ids.insert(id, state),
        None => ids.remove(&id),
    };
}

fn progress_bar(duration_s: u64) -> ProgressBar {
    let bar = ProgressBar::new(duration_s);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A tiny deterministic generator: which id to read, whether to write. Not for secrets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True with probability `p` (to 1/10,000).
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

/// Where the JSON and HTML reports go: `--report x.html` names the HTML one (the JSON goes
/// beside it as `x.json`); any other name is the JSON one, with `.html` beside it. Never the
/// same file twice.
pub fn report_paths(report: &Path) -> (PathBuf, PathBuf) {
    let is_html = report
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    if is_html {
        (report.with_extension("json"), report.to_path_buf())
    } else {
        (report.to_path_buf(), report.with_extension("html"))
    }
}

/// Writes both reports where `--report` says ([`report_paths`]); returns their paths.
fn write_reports(report: &Report, path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (json, html) = report_paths(path);
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, render_html(report))
        .with_context(|| format!("writing {}", html.display()))?;
    Ok((json, html))
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "-".into())
}

fn print_summary(r: &Report) {
    let s = &r.summary;
    println!(
        "\nDrill: {} on {} for {} s (of {} s), {} req/s, {:.0}% writes",
        r.fault,
        r.region,
        r.outage_s,
        r.duration_s,
        r.rps,
        r.write_ratio * 100.0
    );
    println!("  requests:            {}", s.requests);
    let failures = &s.failures;
    println!(
        "  failed reads:        {} {:?}",
        failures.total_reads, failures.reads
    );
    println!(
        "  failed writes:       {} {:?}",
        failures.total_writes, failures.writes
    );
    match r.client {
        ClientMode::Failover => println!(
            "  client failovers:    {} (writes resent to {})",
            s.client_failovers, r.other_region
        ),
        ClientMode::Plain => {
            println!("  client failovers:    none (plain client: a failed write is not resent)")
        }
    }
    let w = &r.switchover;
    println!(
        "  failed plain writes: {} {:?}",
        w.total_plain_failed_writes, w.plain_failed_writes
    );
    println!(
        "  RTO (first success from {}): {}",
        r.other_region,
        fmt_ms(s.rto_ms)
    );
    if r.switch != SwitchMode::None {
        println!("  active region:       {}", switch_line(r));
        for (name, window) in [
            ("before", &w.outage_before_switch),
            ("after", &w.outage_after_switch),
        ] {
            println!("  outage {name:<6} switch: {}", window_line(window));
        }
    }
    println!("  stale reads:         {}", s.stale_reads);
    println!("  acknowledged writes: {}", r.acknowledged_writes);
    println!("  lost writes:         {}", r.lost_ids());
    println!(
        "  backlog in every region after heal (traffic going on): {}",
        fmt_ms(r.recovery_ms)
    );
    println!(
        "  convergence after heal (checked after the traffic): {}",
        fmt_ms(r.convergence_ms)
    );
    if !r.diverging.is_empty() {
        println!("  regions still differ on {} ids", r.diverging.len());
    }
    for (phase, l) in &s.latency_by_phase {
        println!(
            "  latency {phase:<8} p50 {:>9} p99 {:>9} ({} ok)",
            fmt_ms(l.p50_ms),
            fmt_ms(l.p99_ms),
            l.count
        );
    }
    for (region, l) in &s.latency_by_region {
        println!(
            "  latency {region:<10} p50 {:>9} p99 {:>9} ({} ok)",
            fmt_ms(l.p50_ms),
            fmt_ms(l.p99_ms),
            l.count
        );
    }
    for note in &r.notes {
        println!("  note: {note}");
    }
}

/// Who moved the active region, how long after the fault, and whether the drill moved it back.
fn switch_line(r: &Report) -> String {
    let who = match r.switch {
        SwitchMode::None => return "not switched (--switch none)".into(),
        SwitchMode::Manual => "by the drill",
        SwitchMode::Auto => "by the health watcher",
    };
    let switched = match r.switchover.switch_after_ms {
        Some(ms) => format!(
            "{} switched {who} {ms:.0} ms after the fault",
            r.other_region
        ),
        None => format!("no switch {who}"),
    };
    let back = match r.failback_ms {
        Some(ms) => format!("; failed back {:.0} ms after the heal", ms - r.heal_ms),
        None => String::new(),
    };
    switched + &back
}

/// Reads' latency and writes' outcome in a part of the outage.
fn window_line(w: &Window) -> String {
    format!(
        "reads p50 {} p99 {} ({} ok), writes {} ok {} failed {:?}",
        fmt_ms(w.reads.p50_ms),
        fmt_ms(w.reads.p99_ms),
        w.reads.count,
        w.writes_ok,
        w.writes_failed,
        w.writes_by_region
    )
}

/// Colours of the regions' answers, in the order of the report's regions.
const COLORS: [&str; 4] = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
/// Colour of a failed request.
const FAILED: &str = "#dc2626";
/// Colour of the fault window.
const WINDOW: &str = "#fde68a";
/// Colour of the switch and failback of the active region.
const SWITCH: &str = "#111827";

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:2rem;color:#111;max-width:1040px}\
table{border-collapse:collapse}\
th,td{text-align:left;padding:.25rem .75rem;border-bottom:1px solid #eee}\
.legend span{margin-right:1rem}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}\
svg{width:100%;height:auto;border:1px solid #eee}";

/// A self-contained HTML report: no external assets, inline CSS and an inline SVG timeline.
pub fn render_html(r: &Report) -> String {
    let heading = format!("Drill: {} on {}", r.fault, r.region);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Tandem drill: " (r.fault) " on " (r.region) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (heading) }
                p {
                    (r.endpoint) " · " (r.duration_s) " s of traffic at " (r.rps) " req/s ("
                    (format!("{:.0}", r.write_ratio * 100.0)) "% writes), fault for "
                    (r.outage_s) " s."
                }
                h2 { "Every request" }
                p.legend { (legend(r)) }
                (timeline(r))
                h2 { "Figures" }
                table {
                    @for (name, value) in figures(r) {
                        tr { th { (name) } td { (value) } }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// What each colour and shape of the timeline means.
fn legend(r: &Report) -> Markup {
    let swatch = |color: &str| format!("background:{color}");
    let switched = r.switch_ms.is_some() || r.failback_ms.is_some();
    html! {
        @for (i, region) in r.regions.iter().enumerate() {
            span { i style=(swatch(COLORS[i % COLORS.len()])) {} (region) }
        }
        span { i style=(swatch(FAILED)) {} "failed" }
        span { i style=(swatch(WINDOW)) {} "fault window" }
        @if switched {
            span { i style=(swatch(SWITCH)) {} "switch / failback of the active region (dashed)" }
        }
        " ● read ■ write"
    }
}

/// The rows of the figures table.
fn figures(r: &Report) -> Vec<(&'static str, String)> {
    let s = &r.summary;
    let f = &s.failures;
    let w = &r.switchover;
    let client = match r.client {
        ClientMode::Failover => "failover (a failed write is resent to the other region)",
        ClientMode::Plain => "plain (a failed write is not resent)",
    };
    let mut rows = vec![
        ("Requests", s.requests.to_string()),
        ("Client", client.to_owned()),
        ("Failed reads", format!("{} {:?}", f.total_reads, f.reads)),
        (
            "Failed writes",
            format!("{} {:?}", f.total_writes, f.writes),
        ),
        (
            "Writes failed over in the client",
            s.client_failovers.to_string(),
        ),
        (
            "Failed writes not resent (plain client)",
            format!(
                "{} {:?}",
                w.total_plain_failed_writes, w.plain_failed_writes
            ),
        ),
        (
            "Time to first success from the other region (RTO)",
            fmt_ms(s.rto_ms),
        ),
        ("Stale reads", s.stale_reads.to_string()),
        ("Acknowledged writes", r.acknowledged_writes.to_string()),
        ("Lost writes", r.lost_ids().to_string()),
        (
            "Backlog in every region after heal (traffic going on)",
            fmt_ms(r.recovery_ms),
        ),
        (
            "Convergence after heal (checked after the traffic)",
            fmt_ms(r.convergence_ms),
        ),
    ];
    if !r.diverging.is_empty() {
        rows.push((
            "Ids the regions still differ on",
            r.diverging.len().to_string(),
        ));
    }
    if r.switch != SwitchMode::None {
        rows.push(("Active region", switch_line(r)));
        rows.push(("Time from fault to switch", fmt_ms(w.switch_after_ms)));
        rows.push((
            "During the outage, before the switch",
            window_line(&w.outage_before_switch),
        ));
        rows.push((
            "During the outage, after the switch",
            window_line(&w.outage_after_switch),
        ));
    }
    for note in &r.notes {
        rows.push(("Note", note.clone()));
    }
    for (phase, l) in &s.latency_by_phase {
        let name = match phase.as_str() {
            "before" => "Latency before",
            "outage" => "Latency during the outage",
            _ => "Latency after",
        };
        let value = format!(
            "p50 {} · p99 {} ({} ok)",
            fmt_ms(l.p50_ms),
            fmt_ms(l.p99_ms),
            l.count
        );
        rows.push((name, value));
    }
    rows
}

/// The timeline's frame: time across, latency up on a log scale.
struct Plot {
    t_max: f64,
    l_max: f64,
}

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 50.0;
const BOTTOM: f64 = 30.0;

impl Plot {
    fn of(r: &Report) -> Plot {
        Plot {
            t_max: r.traffic_end_ms.max(1.0),
            l_max: r.samples.iter().map(|s| s.latency_ms).fold(1.0, f64::max),
        }
    }

    fn x(&self, t_ms: f64) -> f64 {
        LEFT + t_ms / self.t_max * (WIDTH - LEFT - 10.0)
    }

    fn y(&self, latency_ms: f64) -> f64 {
        let scale = (latency_ms + 1.0).log10() / (self.l_max + 1.0).log10();
        (HEIGHT - BOTTOM) - scale * (HEIGHT - BOTTOM - 10.0)
    }
}

/// A coordinate, to a tenth.
fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// Every request as a dot (read) or a square (write) at its start time and latency, coloured
/// by the region that answered, over the fault window.
fn timeline(r: &Report) -> Markup {
    let p = Plot::of(r);
    let (fault_x, heal_x) = (p.x(r.fault_ms), p.x(r.heal_ms));
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            role="img" aria-label="Every request: latency over time, coloured by answering region" {
            rect x=(at(fault_x)) y="0" width=(at((heal_x - fault_x).max(1.0)))
                height=(at(HEIGHT - BOTTOM)) fill=(WINDOW) opacity="0.5" {
                title { "fault window" }
            }
            (axes(&p))
            @for (t, name) in [(r.switch_ms, "switch"), (r.failback_ms, "failback")] {
                @if let Some(t) = t {
                    line x1=(at(p.x(t))) y1="0" x2=(at(p.x(t))) y2=(at(HEIGHT - BOTTOM))
                        stroke=(SWITCH) stroke-dasharray="4 3" {
                        title { (name) " of the active region" }
                    }
                }
            }
            @for s in &r.samples {
                (request(&p, s, &r.regions))
            }
        }
    }
}

/// The axes, latency ticks (1 ms to 10 s, as far as needed) and up to about ten time ticks.
fn axes(p: &Plot) -> Markup {
    let base = HEIGHT - BOTTOM;
    let ticks = [1.0, 10.0, 100.0, 1000.0, 10000.0]
        .into_iter()
        .filter(|t| *t <= p.l_max * 1.5);
    let secs = (p.t_max / 1000.0).ceil() as u64;
    let step = (secs / 10).max(1) as usize;
    html! {
        line x1=(LEFT) y1=(base) x2=(WIDTH) y2=(base) stroke="#888" {}
        line x1=(LEFT) y1="0" x2=(LEFT) y2=(base) stroke="#888" {}
        @for tick in ticks {
            text x="4" y=(at(p.y(tick) + 4.0)) font-size="11" fill="#555" { (tick) " ms" }
        }
        @for s in (0..=secs).step_by(step) {
            text x=(at(p.x(s as f64 * 1000.0) - 6.0)) y=(at(HEIGHT - 8.0)) font-size="11" fill="#555" {
                (s) "s"
            }
        }
    }
}

/// One request: its shape says read or write, its colour who answered (or that it failed),
/// its tooltip the details.
fn request(p: &Plot, s: &Sample, regions: &[String]) -> Markup {
    let fill = match (&s.region, s.ok()) {
        (Some(region), true) => {
            let i = regions.iter().position(|r| r == region).unwrap_or(3);
            COLORS[i % COLORS.len()]
        }
        _ => FAILED,
    };
    let (x, y) = (p.x(s.t_ms), p.y(s.latency_ms));
    html! {
        @if s.kind == Kind::Write {
            rect x=(at(x - 2.5)) y=(at(y - 2.5)) width="5" height="5" fill=(fill) {
                title { (describe(s)) }
            }
        } @else {
            circle cx=(at(x)) cy=(at(y)) r="2.5" fill=(fill) { title { (describe(s)) } }
        }
    }
}

/// A request's tooltip: `Write 200 in 12.3 ms from us-west-2 (client failover)`.
fn describe(s: &Sample) -> String {
    let edge = s
        .edge_failover
        .as_deref()
        .map(|f| format!("(edge failover: {f}) "))
        .unwrap_or_default();
    format!(
        "{:?} {} in {:.1} ms from {} {edge}{}",
        s.kind,
        s.status,
        s.latency_ms,
        s.region.as_deref().unwrap_or("no answer"),
        if s.client_failover {
            "(client failover)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_never_overwrite_each_other() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            report_paths(Path::new("x.html")),
            (p("x.json"), p("x.html"))
        );
        assert_eq!(report_paths(Path::new("x.HTM")), (p("x.json"), p("x.HTM")));
        assert_eq!(
            report_paths(Path::new("d/r.json")),
            (p("d/r.json"), p("d/r.html"))
        );
        assert_eq!(
            report_paths(Path::new("report")),
            (p("report"), p("report.html"))
        );
    }

    #[test]
    fn the_fault_sits_in_the_middle_of_the_traffic() {
        assert_eq!(fault_window(30, 10), (10_000.0, 20_000.0));
        // At least a second in, and over before the traffic is.
        assert_eq!(fault_window(4, 2), (1000.0, 3000.0));
        assert_eq!(fault_window(2, 1), (1000.0, 2000.0));
    }

    fn sample(t_ms: f64, kind: Kind, status: u16, region: Option<&str>) -> Sample {
        Sample {
            t_ms,
            kind,
            phase: Phase::Before,
            status,
            latency_ms: 12.0,
            region: region.map(str::to_owned),
            edge_failover: None,
            client_failover: false,
            stale: false,
        }
    }

    fn report() -> Report {
        let samples = vec![
            sample(100.0, Kind::Write, 200, Some("us-east-1")),
            sample(1500.0, Kind::Read, 502, None),
            sample(1600.0, Kind::Read, 200, Some("us-west-2")),
        ];
        Report {
            endpoint: "http://127.0.0.1:8080/?a=<b>&c".into(),
            fault: "crashed".parse().unwrap(),
            region: "us-east-1".into(),
            other_region: "us-west-2".into(),
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            duration_s: 4,
            outage_s: 2,
            rps: 40,
            write_ratio: 0.4,
            client: ClientMode::Failover,
            switch: SwitchMode::None,
            fault_ms: 1000.0,
            heal_ms: 3000.0,
            traffic_end_ms: 4000.0,
            switch_ms: None,
            failback_ms: None,
            recovery_ms: Some(120.0),
            convergence_ms: Some(250.0),
            acknowledged_writes: 1,
            lost_writes: vec![],
            diverging: vec![],
            summary: Summary::of(&samples, "us-east-1", 1000.0),
            switchover: SwitchFigures::of(&samples, 1000.0, None),
            notes: vec![],
            samples,
        }
    }

    /// [`report`] as a plain client with the health watcher switching at 1.5 s.
    fn switched_report() -> Report {
        let mut r = report();
        r.samples.push(sample(1200.0, Kind::Write, 504, None));
        r.samples
            .push(sample(1700.0, Kind::Write, 201, Some("us-west-2")));
        for s in &mut r.samples {
            s.phase = if s.t_ms < 1000.0 {
                Phase::Before
            } else {
                Phase::Outage
            };
        }
        r.samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        r.client = ClientMode::Plain;
        r.switch = SwitchMode::Auto;
        r.switch_ms = Some(1500.0);
        r.failback_ms = Some(3400.0);
        r.summary = Summary::of(&r.samples, "us-east-1", 1000.0);
        r.switchover = SwitchFigures::of(&r.samples, 1000.0, r.switch_ms);
        r.notes = vec!["failed back after the heal".into()];
        r
    }

    #[test]
    fn the_html_report_is_self_contained_and_escaped() {
        let html = render_html(&report());
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<title>Tandem drill: crashed on us-east-1</title>"));
        // One shape per request: a square per write, a dot per read, each with its tooltip.
        assert_eq!(html.matches("<circle ").count(), 2);
        assert!(html.contains("<title>Write 200 in 12.0 ms from us-east-1 </title>"));
        assert!(html.contains("<title>Read 502 in 12.0 ms from no answer </title>"));
        assert!(
            html.contains(r##"fill="#dc2626""##),
            "the failed read is red"
        );
        assert!(html.contains("<title>fault window</title>"));
        // Text from the outside is escaped.
        assert!(html.contains("http://127.0.0.1:8080/?a=&lt;b&gt;&amp;c"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains(" src=") && !html.contains("<link"));
        assert!(html.contains("<tr><th>Lost writes</th><td>0</td></tr>"));
        assert!(html.contains(
            "<th>Convergence after heal (checked after the traffic)</th><td>250 ms</td>"
        ));
        assert!(html.contains(
            "<th>Backlog in every region after heal (traffic going on)</th><td>120 ms</td>"
        ));
    }

    #[test]
    fn the_json_report_names_the_fault_as_the_flag_does() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["fault"], "crashed");
        assert_eq!(
            (&json["client"], &json["switch"]),
            (&"failover".into(), &"none".into())
        );
        assert!(json["switchover"]["switch_after_ms"].is_null());
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.fault, Outage::Crashed);
    }

    #[test]
    fn a_report_from_before_the_switch_flags_still_reads() {
        let mut json = serde_json::to_value(report()).unwrap();
        let fields = json.as_object_mut().unwrap();
        for new in [
            "client",
            "switch",
            "switch_ms",
            "failback_ms",
            "switchover",
            "notes",
        ] {
            fields.remove(new);
        }
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(
            (back.client, back.switch, back.switch_ms),
            (ClientMode::Failover, SwitchMode::None, None)
        );
    }

    #[test]
    fn a_switched_drill_reports_the_switch_and_the_plain_client_failures() {
        let r = switched_report();
        let w = &r.switchover;
        assert_eq!(w.switch_after_ms, Some(500.0));
        assert_eq!(w.plain_failed_writes.get("outage"), Some(&1));
        assert_eq!(w.outage_after_switch.writes_ok, 1);
        assert_eq!(
            switch_line(&r),
            "us-west-2 switched by the health watcher 500 ms after the fault; \
             failed back 400 ms after the heal"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (&json["client"], &json["switch"]),
            (&"plain".into(), &"auto".into())
        );
        assert_eq!(json["switchover"]["switch_after_ms"], 500.0);
        assert_eq!(json["switchover"]["total_plain_failed_writes"], 1);

        let html = render_html(&r);
        assert!(
            html.contains("<th>Time from fault to switch</th><td>500 ms</td>"),
            "{html}"
        );
        assert!(html.contains("<th>Client</th><td>plain (a failed write is not resent)</td>"));
        assert!(html.contains("<th>Failed writes not resent (plain client)</th><td>1 "));
        assert!(html.contains("<title>switch of the active region</title>"));
        assert!(html.contains("<title>failback of the active region</title>"));
        assert!(html.contains("<th>During the outage, after the switch</th>"));
        assert!(html.contains("<th>Note</th><td>failed back after the heal</td>"));
        // Without a switch: no switch rows, no marker, no legend for it.
        let html = render_html(&report());
        assert!(!html.contains("switch of the active region") && !html.contains("fault to switch"));
    }
}
