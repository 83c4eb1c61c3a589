//! `tandem drill`: an outage drill with the figures a client lives through.
//!
//! Steady reads and writes go through `/api` (writes failing over in the client, as the console
//! does), the fault is injected into one region, healed, and then every acknowledged write is
//! read back from every region until they agree. The figures ([`Summary`]) are computed by the
//! same code the console uses. Output: a progress bar, a terminal summary, a JSON report and a
//! self-contained HTML report with a timeline of every request.

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_shared::drill::{Kind, Phase, Sample, Summary};
use tandem_shared::headers::{EDGE_FAILOVER, SERVED_REGION};

/// A fault to inject: `error:503`, `slow:<ms>`, and on the local stack `stopped`, `crashed`,
/// `blackhole`, `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum DrillFault {
    Error { status: u16 },
    Slow { latency_ms: u64 },
    Stopped,
    Crashed,
    Blackhole,
    Partition,
}

impl std::str::FromStr for DrillFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "unknown fault {s:?}: use error:<500|502|503|504>, slow:<ms>, stopped, crashed, blackhole or partition"
            )
        };
        match s.split_once(':') {
            Some(("error", n)) => match n.parse() {
                Ok(status @ (500 | 502 | 503 | 504)) => Ok(DrillFault::Error { status }),
                _ => Err(bad()),
            },
            Some(("slow", n)) => n
                .parse()
                .map(|latency_ms| DrillFault::Slow { latency_ms })
                .map_err(|_| bad()),
            None => match s {
                "stopped" => Ok(DrillFault::Stopped),
                "crashed" => Ok(DrillFault::Crashed),
                "blackhole" => Ok(DrillFault::Blackhole),
                "partition" => Ok(DrillFault::Partition),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for DrillFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrillFault::Error { status } => write!(f, "error:{status}"),
            DrillFault::Slow { latency_ms } => write!(f, "slow:{latency_ms}"),
            DrillFault::Stopped => write!(f, "stopped"),
            DrillFault::Crashed => write!(f, "crashed"),
            DrillFault::Blackhole => write!(f, "blackhole"),
            DrillFault::Partition => write!(f, "partition"),
        }
    }
}

/// Flags of `tandem drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// The public endpoint: the local edge or the CloudFront distribution.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub endpoint: String,
    /// Admin token.
    #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
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
    /// The fault to inject.
    #[arg(long, default_value = "error:503")]
    pub fault: DrillFault,
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
}

/// An acknowledged write that was missing or different after convergence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LostWrite {
    pub id: String,
    pub region: String,
    pub found: Value,
}

/// The JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub endpoint: String,
    pub fault: DrillFault,
    pub region: String,
    pub other_region: String,
    pub regions: Vec<String>,
    pub duration_s: u64,
    pub outage_s: u64,
    pub rps: u32,
    pub write_ratio: f64,
    /// Milliseconds from the drill's start.
    pub fault_ms: f64,
    pub heal_ms: f64,
    pub traffic_end_ms: f64,
    /// Milliseconds from heal until every acknowledged write read the same in every region.
    pub convergence_ms: Option<f64>,
    pub acknowledged_writes: usize,
    pub lost_writes: Vec<LostWrite>,
    pub summary: Summary,
    pub samples: Vec<Sample>,
}

struct Drill {
    http: reqwest::Client,
    endpoint: String,
    token: String,
    region: String,
    other: String,
    started: Instant,
    fault_ms: f64,
    heal_ms: f64,
    samples: Mutex<Vec<Sample>>,
    acked: Mutex<Vec<(String, Value)>>,
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Drill {
    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
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

    async fn write(self: Arc<Self>, n: u64, run: String) {
        let t = self.now_ms();
        let id = format!("drill-{run}-{n}");
        let data = json!({"n": n, "run": run});
        let body = json!({ "data": data });
        let first = self
            .http
            .put(format!("{}/api/items/{id}", self.endpoint))
            .json(&body)
            .send()
            .await;
        let (mut resp, mut client_failover) = (first, false);
        if !matches!(&resp, Ok(r) if r.status().as_u16() < 500) {
            client_failover = true;
            resp = self
                .http
                .put(format!(
                    "{}/region/{}/api/items/{id}",
                    self.endpoint, self.other
                ))
                .json(&body)
                .send()
                .await;
        }
        let (status, region, edge_failover) = match &resp {
            Ok(r) => (
                r.status().as_u16(),
                header(r, SERVED_REGION),
                header(r, EDGE_FAILOVER),
            ),
            Err(_) => (0, None, None),
        };
        if let Ok(r) = resp {
            let _ = r.bytes().await;
        }
        if (200..300).contains(&status) {
            self.acked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, data));
        }
        let sample = Sample {
            t_ms: t,
            kind: Kind::Write,
            phase: self.phase(t),
            status,
            latency_ms: self.now_ms() - t,
            region,
            edge_failover,
            client_failover,
            stale: false,
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }

    async fn read(self: Arc<Self>, pick: u64) {
        let t = self.now_ms();
        let target = {
            let acked = self.acked.lock().unwrap_or_else(|e| e.into_inner());
            acked
                .get(pick as usize % acked.len().max(1))
                .map(|(id, _)| id.clone())
        };
        let Some(id) = target else { return };
        let resp = self
            .http
            .get(format!("{}/api/items/{id}", self.endpoint))
            .send()
            .await;
        let (status, region, edge_failover) = match &resp {
            Ok(r) => (
                r.status().as_u16(),
                header(r, SERVED_REGION),
                header(r, EDGE_FAILOVER),
            ),
            Err(_) => (0, None, None),
        };
        if let Ok(r) = resp {
            let _ = r.bytes().await;
        }
        let sample = Sample {
            t_ms: t,
            kind: Kind::Read,
            phase: self.phase(t),
            status,
            latency_ms: self.now_ms() - t,
            region,
            edge_failover,
            client_failover: false,
            // Every id read was acknowledged: a 404 means the answering region has not got it yet.
            stale: status == 404,
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<()> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        if !r.status().is_success() {
            bail!(
                "{path} answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    async fn inject(&self, fault: DrillFault) -> anyhow::Result<()> {
        let admin = format!("/region/{}/api/admin/fault", self.region);
        let state = format!("/_tandem/regions/{}", self.region);
        match fault {
            DrillFault::Error { status } => {
                self.control(
                    reqwest::Method::PUT,
                    &admin,
                    json!({"mode": "error", "status": status}),
                )
                .await
            }
            DrillFault::Slow { latency_ms } => {
                self.control(
                    reqwest::Method::PUT,
                    &admin,
                    json!({"mode": "slow", "latency_ms": latency_ms}),
                )
                .await
            }
            DrillFault::Stopped => {
                self.control(reqwest::Method::PUT, &state, json!({"state": "stopped"}))
                    .await
            }
            DrillFault::Crashed => {
                self.control(reqwest::Method::PUT, &state, json!({"state": "crashed"}))
                    .await
            }
            DrillFault::Blackhole => {
                self.control(reqwest::Method::PUT, &state, json!({"state": "blackhole"}))
                    .await
            }
            DrillFault::Partition => {
                self.control(
                    reqwest::Method::PUT,
                    "/_tandem/replication",
                    json!({"paused": true}),
                )
                .await
            }
        }
    }

    async fn heal(&self, fault: DrillFault) -> anyhow::Result<()> {
        match fault {
            DrillFault::Error { .. } | DrillFault::Slow { .. } => {
                self.control(
                    reqwest::Method::DELETE,
                    &format!("/region/{}/api/admin/fault", self.region),
                    json!({}),
                )
                .await
            }
            DrillFault::Partition => {
                self.control(
                    reqwest::Method::PUT,
                    "/_tandem/replication",
                    json!({"paused": false}),
                )
                .await
            }
            _ => {
                self.control(
                    reqwest::Method::PUT,
                    &format!("/_tandem/regions/{}", self.region),
                    json!({"state": "up"}),
                )
                .await
            }
        }
    }

    /// Reads every acknowledged write from every region until all agree or time runs out.
    async fn converge(
        &self,
        regions: &[String],
        timeout: Duration,
    ) -> (Option<f64>, Vec<LostWrite>) {
        let acked = self.acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut waiting: BTreeSet<usize> = (0..acked.len()).collect();
        let deadline = Instant::now() + timeout;
        let mut lost = Vec::new();
        loop {
            lost.clear();
            let mut done = Vec::new();
            for &i in &waiting {
                let (id, data) = &acked[i];
                let mut all = true;
                for region in regions {
                    let found = match self
                        .http
                        .get(format!("{}/region/{region}/api/items/{id}", self.endpoint))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => r
                            .json::<Value>()
                            .await
                            .map(|v| v["item"]["data"].clone())
                            .unwrap_or(Value::Null),
                        Ok(r) => json!({"status": r.status().as_u16()}),
                        Err(e) => json!({"error": e.to_string()}),
                    };
                    if &found != data {
                        all = false;
                        lost.push(LostWrite {
                            id: id.clone(),
                            region: region.clone(),
                            found,
                        });
                    }
                }
                if all {
                    done.push(i);
                }
            }
            for i in done {
                waiting.remove(&i);
            }
            if waiting.is_empty() {
                return (Some(self.now_ms() - self.heal_ms), Vec::new());
            }
            if Instant::now() > deadline {
                return (None, lost);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The regions behind the endpoint: the local control API says; elsewhere the defaults.
async fn discover_regions(http: &reqwest::Client, endpoint: &str, token: &str) -> Vec<String> {
    let local = http
        .get(format!("{endpoint}/_tandem/regions"))
        .bearer_auth(token)
        .send()
        .await;
    if let Ok(r) = local
        && let Ok(v) = r.json::<Value>().await
        && let Some(list) = v["regions"].as_array()
    {
        return list
            .iter()
            .filter_map(|r| r["region"].as_str().map(str::to_owned))
            .collect();
    }
    tandem_shared::region::DEFAULT_REGIONS
        .iter()
        .map(|r| r.to_string())
        .collect()
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
}

/// Runs a drill and writes its reports; returns the report.
pub async fn run(args: DrillArgs) -> anyhow::Result<Report> {
    if args.outage == 0 || args.outage >= args.duration {
        bail!("--outage must be at least 1 and shorter than --duration");
    }
    if !(0.0..=1.0).contains(&args.write_ratio) || args.rps == 0 {
        bail!("--write-ratio must be within 0..=1 and --rps at least 1");
    }
    let endpoint = args.endpoint.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build()?;
    let regions = discover_regions(&http, &endpoint, &args.token).await;
    let region = args.region.clone().unwrap_or_else(|| regions[0].clone());
    let other = regions
        .iter()
        .find(|r| **r != region)
        .cloned()
        .context("the drill needs two regions")?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let total_ms = args.duration as f64 * 1000.0;
    let fault_ms = ((args.duration - args.outage) as f64 * 1000.0 / 2.0)
        .max(1000.0)
        .min(total_ms - args.outage as f64 * 1000.0);
    let drill = Arc::new(Drill {
        http: http.clone(),
        endpoint: endpoint.clone(),
        token: args.token.clone(),
        region: region.clone(),
        other: other.clone(),
        started: Instant::now(),
        fault_ms,
        heal_ms: fault_ms + args.outage as f64 * 1000.0,
        samples: Mutex::new(Vec::new()),
        acked: Mutex::new(Vec::new()),
    });
    // One acknowledged write before the drill, so reads have something to read from the start.
    Arc::clone(&drill).write(0, run_id.clone()).await;
    drill
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    if drill
        .acked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
    {
        bail!("the endpoint did not acknowledge a first write; is it up?");
    }

    let bar = ProgressBar::new(args.duration);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let faults = {
        let drill = drill.clone();
        let fault = args.fault;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(drill.fault_ms / 1000.0)).await;
            let injected = drill.inject(fault).await;
            tokio::time::sleep(Duration::from_secs_f64(
                (drill.heal_ms - drill.now_ms()).max(0.0) / 1000.0,
            ))
            .await;
            let healed = drill.heal(fault).await;
            injected.and(healed)
        })
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ run_id.len() as u64 ^ std::process::id() as u64);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rps)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 1;
    while drill.now_ms() < total_ms {
        tick.tick().await;
        let t = drill.now_ms();
        let write = (rng.next() % 10_000) as f64 / 10_000.0 < args.write_ratio;
        if write {
            n += 1;
            tasks.spawn(Arc::clone(&drill).write(n, run_id.clone()));
        } else {
            tasks.spawn(Arc::clone(&drill).read(rng.next()));
        }
        bar.set_position((t / 1000.0) as u64);
        bar.set_message(format!("{:?}, {} requests", drill.phase(t), n));
    }
    while tasks.join_next().await.is_some() {}
    let traffic_end_ms = drill.now_ms();
    bar.finish_with_message("traffic done; waiting for convergence");
    faults.await.context("fault task")??;
    let (convergence_ms, lost_writes) = drill
        .converge(&regions, Duration::from_secs(args.converge_timeout))
        .await;

    let mut samples = drill
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let summary = Summary::of(&samples, &region, drill.fault_ms);
    let acknowledged_writes = drill.acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    let report = Report {
        endpoint,
        fault: args.fault,
        region,
        other_region: other,
        regions,
        duration_s: args.duration,
        outage_s: args.outage,
        rps: args.rps,
        write_ratio: args.write_ratio,
        fault_ms: drill.fault_ms,
        heal_ms: drill.heal_ms,
        traffic_end_ms,
        convergence_ms,
        acknowledged_writes,
        lost_writes,
        summary,
        samples,
    };
    let (json, html) = report_paths(&args.report);
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, render_html(&report))
        .with_context(|| format!("writing {}", html.display()))?;
    print_summary(&report);
    println!("reports: {} and {}", json.display(), html.display());
    Ok(report)
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
    println!(
        "  failed reads:        {} {:?}",
        s.failures.total_reads, s.failures.reads
    );
    println!(
        "  failed writes:       {} {:?}",
        s.failures.total_writes, s.failures.writes
    );
    println!(
        "  client failovers:    {} (writes resent to {})",
        s.client_failovers, r.other_region
    );
    println!(
        "  RTO (first success from {}): {}",
        r.other_region,
        fmt_ms(s.rto_ms)
    );
    println!("  stale reads:         {}", s.stale_reads);
    println!("  acknowledged writes: {}", r.acknowledged_writes);
    println!(
        "  lost writes:         {}",
        r.lost_writes
            .iter()
            .map(|l| l.id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    );
    println!("  convergence after heal: {}", fmt_ms(r.convergence_ms));
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
}

const COLORS: [&str; 4] = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the JSON and HTML reports go: `--report x.html` names the HTML one (the JSON goes
/// beside it as `x.json`); any other name is the JSON one, with `.html` beside it. Never the
/// same file twice.
pub fn report_paths(report: &std::path::Path) -> (PathBuf, PathBuf) {
    let is_html = report
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    if is_html {
        (report.with_extension("json"), report.to_path_buf())
    } else {
        (report.to_path_buf(), report.with_extension("html"))
    }
}

/// A self-contained HTML report: no external assets, an inline SVG timeline.
pub fn render_html(r: &Report) -> String {
    let (w, h, left, bottom) = (1000.0, 360.0, 50.0, 30.0);
    let t_max = r.traffic_end_ms.max(1.0);
    let l_max = r.samples.iter().map(|s| s.latency_ms).fold(1.0, f64::max);
    let x = |t: f64| left + t / t_max * (w - left - 10.0);
    let y =
        |l: f64| (h - bottom) - ((l + 1.0).log10() / (l_max + 1.0).log10()) * (h - bottom - 10.0);
    let color = |region: &Option<String>| match region {
        Some(reg) => COLORS[r.regions.iter().position(|x| x == reg).unwrap_or(3) % COLORS.len()],
        None => "#dc2626",
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="Every request: latency over time, coloured by answering region">"#
    );
    svg += &format!(
        r##"<rect x="{:.1}" y="0" width="{:.1}" height="{:.1}" fill="#fde68a" opacity="0.5"><title>fault window</title></rect>"##,
        x(r.fault_ms),
        (x(r.heal_ms) - x(r.fault_ms)).max(1.0),
        h - bottom
    );
    svg += &format!(
        r##"<line x1="{left}" y1="{0}" x2="{w}" y2="{0}" stroke="#888"/><line x1="{left}" y1="0" x2="{left}" y2="{0}" stroke="#888"/>"##,
        h - bottom
    );
    for tick in [1.0, 10.0, 100.0, 1000.0, 10000.0] {
        if tick <= l_max * 1.5 {
            svg += &format!(
                r##"<text x="4" y="{:.1}" font-size="11" fill="#555">{tick} ms</text>"##,
                y(tick) + 4.0
            );
        }
    }
    let secs = (t_max / 1000.0).ceil() as u64;
    for s in (0..=secs).step_by(((secs / 10).max(1)) as usize) {
        svg += &format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555">{s}s</text>"##,
            x(s as f64 * 1000.0) - 6.0,
            h - 8.0
        );
    }
    for s in &r.samples {
        let c = if s.ok() { color(&s.region) } else { "#dc2626" };
        let shape = if s.kind == Kind::Write {
            "rect"
        } else {
            "circle"
        };
        let (cx, cy) = (x(s.t_ms), y(s.latency_ms));
        let title = escape(&format!(
            "{:?} {} in {:.1} ms from {} {}{}",
            s.kind,
            s.status,
            s.latency_ms,
            s.region.as_deref().unwrap_or("no answer"),
            s.edge_failover
                .as_deref()
                .map(|f| format!("(edge failover: {f}) "))
                .unwrap_or_default(),
            if s.client_failover {
                "(client failover)"
            } else {
                ""
            }
        ));
        svg += &if shape == "rect" {
            format!(
                r#"<rect x="{:.1}" y="{:.1}" width="5" height="5" fill="{c}"><title>{title}</title></rect>"#,
                cx - 2.5,
                cy - 2.5
            )
        } else {
            format!(
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="2.5" fill="{c}"><title>{title}</title></circle>"#
            )
        };
    }
    svg += "</svg>";
    let legend: String = r
        .regions
        .iter()
        .enumerate()
        .map(|(i, reg)| {
            format!(
                r#"<span><i style="background:{}"></i>{}</span>"#,
                COLORS[i % COLORS.len()],
                escape(reg)
            )
        })
        .collect::<String>()
        + r##"<span><i style="background:#dc2626"></i>failed</span><span><i style="background:#fde68a"></i>fault window</span> ● read ■ write"##;
    let s = &r.summary;
    let rows = [
        ("Requests", s.requests.to_string()),
        (
            "Failed reads",
            format!("{} {:?}", s.failures.total_reads, s.failures.reads),
        ),
        (
            "Failed writes",
            format!("{} {:?}", s.failures.total_writes, s.failures.writes),
        ),
        (
            "Writes failed over in the client",
            s.client_failovers.to_string(),
        ),
        (
            "Time to first success from the other region (RTO)",
            fmt_ms(s.rto_ms),
        ),
        ("Stale reads", s.stale_reads.to_string()),
        ("Acknowledged writes", r.acknowledged_writes.to_string()),
        (
            "Lost writes",
            r.lost_writes
                .iter()
                .map(|l| l.id.as_str())
                .collect::<BTreeSet<_>>()
                .len()
                .to_string(),
        ),
        ("Convergence after heal", fmt_ms(r.convergence_ms)),
    ]
    .into_iter()
    .chain(
        s.latency_by_phase
            .iter()
            .map(|(p, l)| {
                (
                    p.as_str(),
                    format!(
                        "p50 {} · p99 {} ({} ok)",
                        fmt_ms(l.p50_ms),
                        fmt_ms(l.p99_ms),
                        l.count
                    ),
                )
            })
            .map(|(p, v)| {
                (
                    if p == "before" {
                        "Latency before"
                    } else if p == "outage" {
                        "Latency during the outage"
                    } else {
                        "Latency after"
                    },
                    v,
                )
            }),
    )
    .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v)))
    .collect::<String>();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tandem drill: {fault} on {region}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2rem;color:#111;max-width:1040px}}table{{border-collapse:collapse}}th,td{{text-align:left;padding:.25rem .75rem;border-bottom:1px solid #eee}}.legend span{{margin-right:1rem}}.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}}svg{{width:100%;height:auto;border:1px solid #eee}}</style></head>
<body><h1>Drill: {fault} on {region}</h1><p>{endpoint} · {duration} s of traffic at {rps} req/s ({writes:.0}% writes), fault for {outage} s.</p>
<h2>Every request</h2><p class="legend">{legend}</p>{svg}<h2>Figures</h2><table>{rows}</table></body></html>"#,
        fault = escape(&r.fault.to_string()),
        region = escape(&r.region),
        endpoint = escape(&r.endpoint),
        duration = r.duration_s,
        rps = r.rps,
        writes = r.write_ratio * 100.0,
        outage = r.outage_s,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_never_overwrite_each_other() {
        use std::path::{Path, PathBuf};
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            super::report_paths(Path::new("x.html")),
            (p("x.json"), p("x.html"))
        );
        assert_eq!(
            super::report_paths(Path::new("x.HTM")),
            (p("x.json"), p("x.HTM"))
        );
        assert_eq!(
            super::report_paths(Path::new("d/r.json")),
            (p("d/r.json"), p("d/r.html"))
        );
        assert_eq!(
            super::report_paths(Path::new("report")),
            (p("report"), p("report.html"))
        );
    }

    use super::*;

    #[test]
    fn fault_syntax() {
        assert_eq!(
            "error:503".parse::<DrillFault>(),
            Ok(DrillFault::Error { status: 503 })
        );
        assert_eq!(
            "slow:1500".parse::<DrillFault>(),
            Ok(DrillFault::Slow { latency_ms: 1500 })
        );
        assert_eq!("blackhole".parse::<DrillFault>(), Ok(DrillFault::Blackhole));
        assert!("error:429".parse::<DrillFault>().is_err());
        assert!("melt".parse::<DrillFault>().is_err());
        for f in ["error:500", "slow:5", "stopped", "crashed", "partition"] {
            assert_eq!(f.parse::<DrillFault>().unwrap().to_string(), f);
        }
    }
}
