//! The drill itself: its setup, steady reads and writes through `/api` while `outage` faults a
//! region, the wait for convergence (`converge`), and the report's figures once it is over.

use super::args::DrillArgs;
use super::converge::Convergence;
use super::report::{Report, print_summary, write_reports};
use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tandem_api::store::embedded::DB_FILE;
use tandem_ops::client::ControlClient;
use tandem_ops::items::{self, ItemClient, NoAnswer};
use tandem_shared::Consistency;
use tandem_shared::drill::{
    self as rules, AckedWrite, ClientMode, Kind, Phase, Rpo, Sample, Stamp, Summary, SwitchFigures,
    SwitchMode,
};
use tandem_shared::item::Data;
use tandem_shared::region::{DEFAULT_REGIONS, is_valid_region};
use tandem_shared::rng::Rng;
use tandem_shared::sync::lock;
use tandem_shared::wire::{HealthResponse, ItemResponse};
use tokio::task::JoinSet;

/// Data requests give up after this long (a blackholed region holds them until the edge's read
/// timeout, far shorter).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Control requests (region list, inject, heal) give up after this long.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a drill and writes its reports; returns the report.
pub async fn run(args: DrillArgs) -> anyhow::Result<Report> {
    check_args(&args)?;
    let control = args.target.client(CONTROL_TIMEOUT)?;
    let stack = discover(&control).await;
    let regions = stack.regions.clone();
    let (region, other) = pick_regions(&stack, args.region.as_deref())?;
    if args.switch != SwitchMode::None {
        if stack.witness.as_ref() == Some(&region) {
            bail!("the witness serves no requests: --switch needs a region to fail");
        }
        check_no_active_region(&control).await?;
    }
    if args.fault.loses_disk() {
        check_data_dir(&args.data_dir, &region)?;
    }
    let drill = Arc::new(Drill::new(
        &args,
        control,
        region,
        other,
        stack.consistency,
    )?);
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

/// What the drill learns of the stack before it starts.
struct Stack {
    /// The regions that serve requests, primary first.
    regions: Vec<String>,
    /// The witness (strong mode, local stack): a member to fail, never one to read from.
    witness: Option<String>,
    consistency: Consistency,
}

/// The stack behind the endpoint: the local control API says; elsewhere (CloudFront has no
/// control API) the default regions, and the mode the primary's health reports.
async fn discover(control: &ControlClient) -> Stack {
    match control.regions().await {
        Ok(body) if !body.regions.is_empty() => {
            let mut regions = body.regions;
            regions.sort_by_key(|r| !r.primary);
            let (witness, regions): (Vec<_>, Vec<_>) = regions.into_iter().partition(|r| r.witness);
            Stack {
                regions: regions.into_iter().map(|r| r.region).collect(),
                witness: witness.into_iter().next().map(|r| r.region),
                consistency: body.consistency,
            }
        }
        _ => Stack {
            regions: DEFAULT_REGIONS.iter().map(|r| r.to_string()).collect(),
            witness: None,
            consistency: health_consistency(control.base()).await,
        },
    }
}

/// The mode `GET /api/health` reports; eventual when it cannot be read (a region older than the
/// field answers without it, and that means eventual too).
async fn health_consistency(base: &str) -> Consistency {
    let Ok(http) = tandem_ops::client::http_client(CONTROL_TIMEOUT) else {
        return Consistency::default();
    };
    let answer = http.get(format!("{base}/api/health")).send().await;
    // Health answers its own body with 503 too (a faulted or cut-off region).
    match answer {
        Ok(answer) => answer
            .json::<HealthResponse>()
            .await
            .map_or(Consistency::default(), |h| h.consistency),
        Err(_) => Consistency::default(),
    }
}

/// The member to fail (`--region`, else the primary; the witness too, in the strong mode) and
/// the region that takes over (another region: the witness serves no requests).
fn pick_regions(stack: &Stack, asked: Option<&str>) -> anyhow::Result<(String, String)> {
    let region = match asked {
        Some(r) if !is_valid_region(r) => bail!("--region {r:?} is not a region name"),
        Some(r) => r.to_owned(),
        None => stack.regions.first().context("no regions")?.clone(),
    };
    let other = stack
        .regions
        .iter()
        .find(|r| **r != region)
        .cloned()
        .context("the drill needs two regions")?;
    Ok((region, other))
}

/// `--fault disk-lost` deletes `<data-dir>/<region>`: only once it is seen to be that member's
/// data directory (it holds the store's database), so that a mistyped `--data-dir` deletes
/// nothing.
fn check_data_dir(data_dir: &Path, region: &str) -> anyhow::Result<()> {
    let dir = data_dir.join(region);
    if !dir.join(DB_FILE).is_file() {
        bail!(
            "--fault disk-lost deletes {}, which holds no {DB_FILE}: is --data-dir the stack's \
             (`tandem up --data-dir`)?",
            dir.display()
        );
    }
    Ok(())
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

/// One drill's state, shared by its request tasks. Its methods are here (setup, traffic, the
/// report's figures), in `outage` (the fault and the active region) and in `converge`.
pub(super) struct Drill {
    /// For the health probes; the items go through `items`, on the same connections.
    pub(super) http: reqwest::Client,
    pub(super) endpoint: String,
    /// `/api/items` through the edge.
    pub(super) items: ItemClient,
    /// `/region/<other>/api/items`: where a failed write is resent.
    to_other: ItemClient,
    pub(super) control: ControlClient,
    pub(super) region: String,
    pub(super) other: String,
    run_id: String,
    consistency: Consistency,
    /// `<data-dir>/<region>`: what `--fault disk-lost` deletes.
    pub(super) region_dir: PathBuf,
    client: ClientMode,
    pub(super) switch: SwitchMode,
    started: Instant,
    pub(super) fault_ms: f64,
    pub(super) heal_ms: f64,
    samples: Mutex<Vec<Sample>>,
    pub(super) acked: Mutex<Vec<AckedWrite>>,
    /// When the active region moved away from the faulted region ([`Report::switch_ms`]).
    pub(super) switch_ms: Mutex<Option<f64>>,
    pub(super) failback_ms: Mutex<Option<f64>>,
    notes: Mutex<Vec<String>>,
}

/// What one request got back, from the item client: an answer, or none (status 0).
pub(super) struct Answer(pub(super) Result<items::Answer<ItemResponse>, NoAnswer>);

impl Answer {
    /// The status, 0 when no answer came.
    pub(super) fn status(&self) -> u16 {
        self.0.as_ref().map_or(0, |a| a.status.as_u16())
    }

    /// The write the answer shows, when it carries an item.
    pub(super) fn stamp(&self) -> Option<Stamp> {
        let answer = self.0.as_ref().ok()?;
        answer.ok().and_then(|r| Stamp::of(&r.item))
    }

    /// `x-edge-active`: the active region when the edge routed the request.
    fn edge_active(&self) -> Option<&str> {
        self.0.as_ref().ok()?.edge.active.as_deref()
    }

    /// Worth resending to the other region: a 5xx, or no answer at all.
    fn failed(&self) -> bool {
        self.status() == 0 || self.status() >= 500
    }
}

impl Drill {
    fn new(
        args: &DrillArgs,
        control: ControlClient,
        region: String,
        other: String,
        consistency: Consistency,
    ) -> anyhow::Result<Drill> {
        let (fault_ms, heal_ms) = fault_window(args.duration, args.outage);
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(tandem_ops::client::idle_timeout())
            .pool_max_idle_per_host(256)
            .build()?;
        let items = ItemClient::new(http.clone(), control.base());
        let region_dir = args.data_dir.join(&region);
        Ok(Drill {
            http,
            endpoint: control.base().to_owned(),
            to_other: items.in_region(&other),
            items,
            control,
            region,
            other,
            run_id: run_id()?,
            consistency,
            region_dir,
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

    pub(super) fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    pub(super) async fn sleep_until(&self, t_ms: f64) {
        let left = (t_ms - self.now_ms()).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(left / 1000.0)).await;
    }

    pub(super) fn note(&self, note: String) {
        lock(&self.notes).push(note);
    }

    /// Notes that the active region was seen moved away from the faulted region at `t_ms`
    /// (keeping the earliest sighting), with `--switch auto` and from the fault on. Every
    /// sighting comes after the switch itself: the earliest is the closest.
    pub(super) fn saw_active(&self, active: Option<&str>, t_ms: f64) {
        let moved = active.is_some_and(|a| a != self.region);
        if self.switch != SwitchMode::Auto || !moved || t_ms < self.fault_ms {
            return;
        }
        let mut at = lock(&self.switch_ms);
        if at.is_none_or(|s| t_ms < s) {
            *at = Some(t_ms);
        }
    }

    pub(super) fn switched(&self) -> bool {
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

    /// The sample of a request of `kind` that started at `t_ms` and got `answer`.
    fn sample(&self, t_ms: f64, kind: Kind, answer: &Answer) -> Sample {
        let served = answer.0.as_ref().ok();
        Sample {
            t_ms,
            kind,
            phase: self.phase(t_ms),
            status: answer.status(),
            latency_ms: self.now_ms() - t_ms,
            region: served.and_then(|a| a.served_region.clone()),
            edge_failover: served.and_then(|a| a.edge.failover.clone()),
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
        let mut answer = Answer(self.items.put(&id, &data, None).await);
        self.saw_active(answer.edge_active(), self.now_ms());
        let client_failover = self.client == ClientMode::Failover && answer.failed();
        if client_failover {
            answer = Answer(self.to_other.put(&id, &data, None).await);
        }
        if (200..300).contains(&answer.status())
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
        let answer = Answer(self.items.get(&target.id).await);
        self.saw_active(answer.edge_active(), self.now_ms());
        let stale = match answer.status() {
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

    /// Steady traffic until `--duration`: `--rps` requests a second, each a write with
    /// probability `--write-ratio`, else a read. Returns once every request has ended, with the
    /// time it did.
    async fn traffic(self: &Arc<Self>, args: &DrillArgs) -> f64 {
        let bar = progress_bar(args.duration);
        let total_ms = args.duration as f64 * 1000.0;
        let mut rng = Rng::new(self.run_id.len() as u64 ^ u64::from(std::process::id()));
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
                tasks.spawn(Arc::clone(self).read(rng.next_u64()));
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
        let mut report = Report {
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
            rpo: Rpo {
                consistency: self.consistency,
                // Counted below, by the report's own rule.
                lost_ids: 0,
            },
            lost_writes: convergence.lost,
            diverging: convergence.diverging,
            summary: Summary::of(&samples, &self.region, self.fault_ms),
            switchover: SwitchFigures::of(&samples, self.fault_ms, switch_ms),
            notes: lock(&self.notes).clone(),
            samples,
        };
        report.rpo.lost_ids = report.lost_ids();
        report
    }
}

fn progress_bar(duration_s: u64) -> ProgressBar {
    let bar = ProgressBar::new(duration_s);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_sits_in_the_middle_of_the_traffic() {
        assert_eq!(fault_window(30, 10), (10_000.0, 20_000.0));
        // At least a second in, and over before the traffic is.
        assert_eq!(fault_window(4, 2), (1000.0, 3000.0));
        assert_eq!(fault_window(2, 1), (1000.0, 2000.0));
    }
}
