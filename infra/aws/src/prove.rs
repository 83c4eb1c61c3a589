//! The failover drill that `tandem deploy` runs after its smoke checks (and `tandem status
//! --prove` any time): failover shown through the real edge, not assumed. In order:
//!
//! 1. an item written through `/api/*` lands in the primary, and is read back from
//!    `/region/<secondary>/api/items/<id>` (replication);
//! 2. each region's own API, called directly without the origin secret, answers 403 (origin
//!    cloaking);
//! 3. the primary gets the admin fault `error:503` (through the edge, with the admin token) for
//!    `--prove-fault-s` seconds; meanwhile GETs through `/api/*` must all be answered by the
//!    secondary (per-request failover, then the active region); a write before the switch gets
//!    the primary's 503 (writes follow the active region);
//! 4. the active region is switched to the secondary, confirmed through the edge
//!    ([`crate::switch`]), and a write through `/api/*` lands in the secondary;
//! 5. the fault is healed, the active region cleared (confirmed again), the secondary's write is
//!    read back from the primary, and both items are deleted.
//!
//! It prints the RTO it saw: for reads, from the fault until the first GET answered (by the
//! secondary); for writes, until the first write through `/api/*` landed again, which needs the
//! switch. Whatever fails on the way, the fault is healed, the active region put back and the
//! items deleted.

use crate::switch::{Keeper, confirm};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tandem_ops::client::ControlClient;
use tandem_ops::confirm::{PROPAGATION, took};
use tandem_ops::items::ItemClient;
use tandem_shared::Fault;
use tandem_shared::item::Data;
use tandem_shared::wire::path;

/// How long an item may take to reach the other region: DynamoDB global tables replicate in
/// about a second (the `ReplicationLatency` alarm is far below this), the local stack in
/// milliseconds.
const REPLICATION_BOUND: Duration = Duration::from_secs(30);
/// How long a fault or its healing may take to reach every instance of a region: a Lambda
/// instance reads the region's fault at most once a second.
const FAULT_BOUND: Duration = Duration::from_secs(15);
/// Between two tries while waiting, and between two reads during the fault.
const POLL: Duration = Duration::from_millis(250);
/// The faulted primary heals itself this long after the drill would have ended anyway: a drill
/// that dies half-way (a lost connection, Ctrl-C) leaves no region failing for good.
const FAULT_SAFETY: Duration = Duration::from_secs(60);

/// The drill's flags, for `tandem deploy` and `tandem status --prove`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "The failover drill")]
pub struct DrillArgs {
    /// Seconds the primary answers 503 during the drill (writes through /api/* get 503 until
    /// the switch; reads fail over).
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub prove_fault_s: u64,
    /// Call this region's API here, directly, for the origin-cloaking check, instead of the
    /// region stack's ApiDomainName output (REGION=URL; once per region).
    #[arg(long, value_name = "REGION=URL", value_parser = region_url)]
    pub origin_endpoint: Vec<(String, String)>,
    /// Seconds to wait for /api/* through the edge to follow the active region: each switch
    /// of the drill, and `tandem status`'s comparison of the stored value with the edge's.
    /// CloudFront's edge locations get a KeyValueStore change within seconds (AWS gives no bound).
    #[arg(long, value_name = "SECONDS", default_value_t = PROPAGATION.as_secs())]
    pub confirm_within: u64,
}

fn region_url(arg: &str) -> Result<(String, String), String> {
    let (region, url) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?}: expected REGION=URL"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "{arg:?}: the URL must start with http:// or https://"
        ));
    }
    Ok((region.to_owned(), url.trim_end_matches('/').to_owned()))
}

impl DrillArgs {
    /// Each region's direct URL: `--origin-endpoint`, else `found` (the stacks' outputs, the
    /// local stack's control API).
    pub fn origins(
        &self,
        regions: &[String; 2],
        found: &[(String, String)],
    ) -> Vec<(String, String)> {
        regions
            .iter()
            .filter_map(|region| {
                let given = self.origin_endpoint.iter().chain(found);
                given.clone().find(|(r, _)| r == region).cloned()
            })
            .collect()
    }
}

/// A drill ready to run.
pub struct Drill {
    /// The edge: the distribution (or a custom domain, or the local edge).
    pub base: String,
    /// Primary first.
    pub regions: [String; 2],
    pub token: String,
    pub keeper: Keeper,
    /// Each region's API, called directly (no edge): `(region, base URL)`.
    pub origins: Vec<(String, String)>,
    pub fault: Duration,
    pub within: Duration,
}

/// One step of the drill.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// When it ended, from the start of the drill.
    pub at: Duration,
}

/// What the drill saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub base: String,
    pub fault_s: u64,
    pub steps: Vec<Step>,
    /// Why the drill did not run, when it did not.
    pub skipped: Option<String>,
    /// From the fault until the first GET through `/api/*` answered 2xx.
    pub read_rto: Option<Duration>,
    /// From the fault until the first write through `/api/*` landed.
    pub write_rto: Option<Duration>,
    /// The switch: written, then confirmed, from the fault.
    pub switch_at: Option<(Duration, Duration)>,
}

impl Report {
    fn skipped(base: &str, why: String) -> Report {
        Report {
            base: base.to_owned(),
            skipped: Some(why),
            ..Report::default()
        }
    }

    /// Every step passed (a skipped drill did not pass).
    pub fn passed(&self) -> bool {
        self.skipped.is_none() && self.steps.iter().all(|s| s.passed)
    }

    /// The table, and the RTO line (when the drill got as far as the fault).
    pub fn table(&self) -> String {
        let mut out = format!("Failover drill through {}:\n", self.base);
        if let Some(why) = &self.skipped {
            let _ = writeln!(out, "  skipped: {why}");
            return out;
        }
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.steps {
            let _ = writeln!(
                out,
                "  {:<4}  {:<width$}  {:>6.1} s  {}",
                if s.passed { "PASS" } else { "FAIL" },
                s.name,
                s.at.as_secs_f64(),
                s.detail
            );
        }
        let faulted = self.steps.iter().any(|s| s.name.starts_with("fault "));
        match faulted {
            true => {
                let _ = writeln!(out, "{}", self.rto_line());
            }
            false => {
                let _ = writeln!(out, "No RTO: the drill stopped before the fault.");
            }
        }
        out
    }

    /// `RTO seen …: reads 120 ms (…); writes 2.3 s (…)`.
    pub fn rto_line(&self) -> String {
        let reads = match self.read_rto {
            Some(d) => format!(
                "reads {} (the first GET through /api/* after the fault, failed over per request)",
                took(d)
            ),
            None => "reads: no GET through /api/* answered during the fault".to_owned(),
        };
        let writes = match (self.write_rto, self.switch_at) {
            (Some(d), Some((written, confirmed))) => format!(
                "writes {} (the switch written at {}, seen at the edge at {}, then the first write landed)",
                took(d),
                took(written),
                took(confirmed)
            ),
            (Some(d), None) => format!("writes {}", took(d)),
            (None, _) => "writes: no write through /api/* landed during the fault".to_owned(),
        };
        format!(
            "RTO seen with the primary failing {} s: {reads}; {writes}",
            self.fault_s
        )
    }
}

/// The drill under way: what each step needs, and the steps so far.
struct Run<'d> {
    drill: &'d Drill,
    http: reqwest::Client,
    items: ItemClient,
    control: ControlClient,
    start: Instant,
    steps: Vec<Step>,
    /// Whether the second item landed in the secondary (then it is read back from the primary).
    b_landed: bool,
}

impl Run<'_> {
    fn step(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) -> bool {
        self.steps.push(Step {
            name: name.into(),
            passed,
            detail: detail.into(),
            at: self.start.elapsed(),
        });
        passed
    }

    fn primary(&self) -> &str {
        &self.drill.regions[0]
    }

    /// Writes `id` through `/api/*` until it lands (2xx) in `region`, or `bound` has passed
    /// (`Duration::ZERO`: once). `Ok` with the answer's words, `Err` with the last one's.
    async fn put(&self, id: &str, region: &str, bound: Duration) -> Result<String, String> {
        let data = Data::from_iter([("prove".to_owned(), id.into())]);
        let start = Instant::now();
        loop {
            let said = match self.items.put(id, &data, None).await {
                Ok(a) if a.is_success() && a.served_region.as_deref() == Some(region) => {
                    return Ok(format!("{} from {region}", a.status.as_u16()));
                }
                Ok(a) => format!(
                    "{} from {}",
                    a.status.as_u16(),
                    a.served_region.as_deref().unwrap_or("no region")
                ),
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= bound {
                return Err(said);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Reads `id` from `region` alone (`/region/<r>/api/items/<id>`) until it holds what the
    /// drill wrote, or the bound has passed; how long that took.
    async fn replicated(&self, id: &str, region: &str) -> Result<Duration, String> {
        let start = Instant::now();
        let there = self.items.in_region(region);
        loop {
            let last = match there.get(id).await {
                Ok(a) => match a.ok() {
                    Some(read)
                        if read
                            .item
                            .data
                            .to_map()
                            .get("prove")
                            .and_then(|v| v.as_str())
                            == Some(id) =>
                    {
                        return Ok(start.elapsed());
                    }
                    _ => format!("{}", a.status.as_u16()),
                },
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= REPLICATION_BOUND {
                return Err(format!(
                    "not there after {} s (last: {last})",
                    REPLICATION_BOUND.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `GET /region/<region>/api/health` through the edge until it answers `status`; how long.
    async fn health_becomes(&self, region: &str, status: u16) -> Result<Duration, String> {
        let start = Instant::now();
        let url = format!("{}/region/{region}/api/health", self.drill.base);
        loop {
            let last = match self.http.get(&url).send().await {
                Ok(r) if r.status().as_u16() == status => return Ok(start.elapsed()),
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= FAULT_BOUND {
                return Err(format!("still {last} after {} s", FAULT_BOUND.as_secs()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Each region's API, directly, without `x-origin-verify`: 403.
    async fn cloaking(&mut self) {
        for region in self.drill.regions.clone() {
            let name = format!("origin cloaking {region}");
            let Some((_, url)) = self.drill.origins.iter().find(|(r, _)| *r == region) else {
                self.step(
                    name,
                    false,
                    "no direct endpoint known for it (--origin-endpoint)",
                );
                continue;
            };
            let url = format!("{url}/api/health");
            let (passed, detail) = match self.http.get(&url).send().await {
                Ok(r) if r.status().as_u16() == 403 => {
                    (true, format!("GET {url} without x-origin-verify: 403"))
                }
                Ok(r) => (
                    false,
                    format!(
                        "GET {url} without x-origin-verify: {}, expected 403 (the region can be called around the edge)",
                        r.status().as_u16()
                    ),
                ),
                Err(e) => (false, format!("GET {url}: no answer ({e})")),
            };
            self.step(name, passed, detail);
        }
    }

    /// Switches the active region (`Some`) or clears it, and waits for the edge to show it: the
    /// times it was written and seen, from `since`.
    async fn switch(
        &mut self,
        name: String,
        to: Option<&str>,
        since: Instant,
    ) -> Option<(Duration, Duration)> {
        if let Err(e) = self.drill.keeper.set(to).await {
            self.step(name, false, format!("{e:#}"));
            return None;
        }
        let written = since.elapsed();
        let primary = self.primary().to_owned();
        let seen = confirm(&self.drill.base, to, Some(&primary), self.drill.within).await;
        let seen = match seen {
            Ok(seen) => seen,
            Err(e) => {
                self.step(name, false, format!("{e:#}"));
                return None;
            }
        };
        let detail = seen.describe(&self.drill.base, self.drill.within);
        self.step(name, seen.confirmed, detail);
        seen.confirmed.then(|| (written, since.elapsed()))
    }
}

/// GETs of `id` through `/api/*` every [`POLL`] until `stop`: each answer's time (from `since`),
/// status and region.
async fn reads(
    items: ItemClient,
    id: String,
    since: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(Duration, Option<u16>, Option<String>)> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let (status, region) = match items.get(&id).await {
            Ok(a) => (Some(a.status.as_u16()), a.served_region),
            Err(_) => (None, None),
        };
        seen.push((since.elapsed(), status, region));
        tokio::time::sleep(POLL).await;
    }
    seen
}

impl Drill {
    /// Runs the drill; `progress` gets a line as each phase starts.
    pub async fn run(&self, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
        let http = tandem_ops::client::http_client(Duration::from_secs(10))?;
        let [primary, secondary] = &self.regions;
        match self.keeper.get().await {
            Ok(None) => {}
            Ok(Some(active)) => {
                return Ok(Report::skipped(
                    &self.base,
                    format!(
                        "the active region is {active}: the drill starts from the primary and \
                         ends by failing back to it; run `tandem failback` first"
                    ),
                ));
            }
            Err(e) => {
                return Ok(Report::skipped(
                    &self.base,
                    format!("the active region could not be read: {e:#}"),
                ));
            }
        }
        let mut run = Run {
            drill: self,
            items: ItemClient::new(http.clone(), &self.base),
            control: ControlClient::new(&self.base, &self.token, Duration::from_secs(10))?,
            http,
            start: Instant::now(),
            steps: Vec::new(),
            b_landed: false,
        };
        let stamp = uuid::Uuid::new_v4().simple().to_string();
        let (a, b) = (
            format!("tandem-prove-{stamp}-a"),
            format!("tandem-prove-{stamp}-b"),
        );
        let mut report = Report {
            base: self.base.clone(),
            fault_s: self.fault.as_secs(),
            ..Report::default()
        };

        progress(&format!(
            "failover drill: an item through /api/*, replicated to {secondary}; origin cloaking"
        ));
        let written = run.put(&a, primary, Duration::ZERO).await;
        let wrote = run.step(
            "write through /api/*",
            written.is_ok(),
            format!("PUT {}: {}", path::item(&a), written.unwrap_or_else(|e| e)),
        );
        if wrote {
            let there = run.replicated(&a, secondary).await;
            let detail = match &there {
                Ok(d) => format!(
                    "read back from {} after {}",
                    path::in_region(secondary, &path::item(&a)),
                    took(*d)
                ),
                Err(e) => format!("{}: {e}", path::in_region(secondary, &path::item(&a))),
            };
            run.step(format!("replicated to {secondary}"), there.is_ok(), detail);
        }
        run.cloaking().await;

        if run.steps.iter().all(|s| s.passed) {
            progress(&format!(
                "failover drill: {primary} answers 503 for {} s; reads through /api/* must fail over, writes follow the switch to {secondary}",
                self.fault.as_secs()
            ));
            self.outage(&mut run, &mut report, &a, &b).await;
        }

        progress("failover drill: heal, fail back, clean up");
        self.restore(&mut run, &a, &b).await;
        report.steps = run.steps;
        Ok(report)
    }

    /// The fault, the reads during it, the switch and the write after it.
    async fn outage(&self, run: &mut Run<'_>, report: &mut Report, a: &str, b: &str) {
        let [primary, secondary] = &self.regions;
        let safety = self.fault + self.within + FAULT_SAFETY;
        let fault = Fault::Error {
            status: 503,
            duration_s: Some(safety.as_secs()),
        };
        if let Err(e) = run.control.set_fault(primary, fault).await {
            run.step(format!("fault {primary}"), false, format!("{e:#}"));
            return;
        }
        let in_effect = run.health_becomes(primary, 503).await;
        let since = Instant::now();
        let detail = match &in_effect {
            Ok(d) => format!(
                "error:503 set through /region/{primary}/api/admin/fault, in effect after {} (it clears itself after {} s if the drill dies)",
                took(*d),
                safety.as_secs()
            ),
            Err(e) => format!("/region/{primary}/api/health {e}"),
        };
        if !run.step(format!("fault {primary}"), in_effect.is_ok(), detail) {
            return;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let reading = tokio::spawn(reads(run.items.clone(), a.to_owned(), since, stop.clone()));

        // Writes go to the active region only: the primary's 503 until the switch.
        let before = run.put(b, secondary, Duration::ZERO).await;
        let detail = match &before {
            Err(said) => format!(
                "PUT {}: {said} (writes follow the active region; none fails over)",
                path::item(b)
            ),
            Ok(said) => format!(
                "PUT {}: {said} (the active region had been switched already: the health watcher?)",
                path::item(b)
            ),
        };
        let failed_as_expected = before.as_ref().err().is_none_or(|s| s.starts_with('5'));
        run.b_landed = before.is_ok();
        run.step("write before the switch", failed_as_expected, detail);

        let switched = run
            .switch(format!("switch to {secondary}"), Some(secondary), since)
            .await;
        report.switch_at = switched;
        if switched.is_some() {
            let after = run.put(b, secondary, FAULT_BOUND).await;
            if after.is_ok() {
                report.write_rto = Some(since.elapsed());
                run.b_landed = true;
            }
            let landed = after.is_ok();
            let detail = format!("PUT {}: {}", path::item(b), after.unwrap_or_else(|e| e));
            run.step("write after the switch", landed, detail);
        }

        // The rest of the fault: reads keep going; then what they saw.
        if let Some(left) = self.fault.checked_sub(since.elapsed()) {
            tokio::time::sleep(left).await;
        }
        stop.store(true, Ordering::SeqCst);
        let seen = reading.await.unwrap_or_default();
        report.read_rto = seen
            .iter()
            .find(|(_, status, _)| status.is_some_and(|s| (200..300).contains(&s)))
            .map(|(at, _, _)| *at);
        let by_secondary = seen
            .iter()
            .filter(|(_, s, r)| *s == Some(200) && r.as_deref() == Some(secondary.as_str()))
            .count();
        let others: Vec<String> = seen
            .iter()
            .filter(|(_, s, r)| !(*s == Some(200) && r.as_deref() == Some(secondary.as_str())))
            .take(3)
            .map(|(at, s, r)| {
                format!(
                    "{} from {} at {:.1} s",
                    s.map_or("no answer".to_owned(), |s| s.to_string()),
                    r.as_deref().unwrap_or("no region"),
                    at.as_secs_f64()
                )
            })
            .collect();
        let passed = !seen.is_empty() && others.is_empty();
        let mut detail = format!(
            "{by_secondary} of {} GETs of {} answered 200 by {secondary}",
            seen.len(),
            path::item(a)
        );
        if !others.is_empty() {
            let _ = write!(detail, "; not: {}", others.join(", "));
        }
        run.step("reads during the fault", passed, detail);
    }

    /// Heal, fail back, read the secondary's write from the primary, delete both items: run
    /// whatever happened before.
    async fn restore(&self, run: &mut Run<'_>, a: &str, b: &str) {
        let [primary, secondary] = &self.regions;
        let faulted = run
            .steps
            .iter()
            .any(|s| s.name == format!("fault {primary}"));
        if faulted {
            let healed = match run.control.heal(primary).await {
                Ok(_) => run.health_becomes(primary, 200).await,
                Err(e) => Err(format!("{e:#}")),
            };
            let detail = match &healed {
                Ok(d) => format!("/region/{primary}/api/health 200 after {}", took(*d)),
                Err(e) => e.clone(),
            };
            run.step(format!("heal {primary}"), healed.is_ok(), detail);
        }
        let switched = run
            .steps
            .iter()
            .any(|s| s.name == format!("switch to {secondary}"));
        if switched {
            run.switch("fail back".to_owned(), None, Instant::now())
                .await;
        }
        if run.b_landed {
            let there = run.replicated(b, primary).await;
            let detail = match &there {
                Ok(d) => format!(
                    "the write made in {secondary} read back from {} after {}",
                    path::in_region(primary, &path::item(b)),
                    took(*d)
                ),
                Err(e) => format!("{}: {e}", path::in_region(primary, &path::item(b))),
            };
            run.step(format!("replicated to {primary}"), there.is_ok(), detail);
        }
        // Deleted through /api/* (the primary again); a delete of an absent item is a 204.
        let mut left = Vec::new();
        for id in [a, b] {
            match run.items.delete(id, None).await {
                Ok(answer) if answer.is_success() => {}
                Ok(answer) => left.push(format!("{} ({})", path::item(id), answer.status.as_u16())),
                Err(e) => left.push(format!("{} ({e})", path::item(id))),
            }
        }
        let detail = match left.is_empty() {
            true => format!("deleted {} and {}", path::item(a), path::item(b)),
            false => format!("left in the table: {}", left.join(", ")),
        };
        run.step("clean up", left.is_empty(), detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, passed: bool) -> Step {
        Step {
            name: name.to_owned(),
            passed,
            detail: "detail".to_owned(),
            at: Duration::from_millis(1500),
        }
    }

    #[test]
    fn the_report_says_each_step_and_the_rto() {
        let mut report = Report {
            base: "https://d.example".into(),
            fault_s: 20,
            steps: vec![
                step("write through /api/*", true),
                step("fault us-east-1", true),
                step("fail back", true),
            ],
            read_rto: Some(Duration::from_millis(120)),
            write_rto: Some(Duration::from_millis(2300)),
            switch_at: Some((Duration::from_millis(400), Duration::from_millis(2200))),
            skipped: None,
        };
        assert!(report.passed());
        let table = report.table();
        assert!(
            table.contains("PASS  write through /api/*     1.5 s  detail"),
            "{table}"
        );
        assert!(
            table.contains("RTO seen with the primary failing 20 s: reads 120 ms"),
            "{table}"
        );
        assert!(
            table.contains("writes 2.3 s (the switch written at 400 ms, seen at the edge at 2.2 s"),
            "{table}"
        );
        report.steps.push(step("clean up", false));
        assert!(!report.passed());
        report.steps.retain(|s| !s.name.starts_with("fault"));
        assert!(
            report
                .table()
                .contains("No RTO: the drill stopped before the fault.")
        );
        let skipped = Report::skipped("https://d.example", "why".into());
        assert!(!skipped.passed());
        assert!(skipped.table().contains("skipped: why"));
    }

    #[test]
    fn origin_endpoints_come_from_the_flag_first() {
        let args = DrillArgs {
            prove_fault_s: 20,
            origin_endpoint: vec![region_url("us-west-2=http://127.0.0.1:9/").unwrap()],
            confirm_within: 60,
        };
        let regions = ["us-east-1".to_owned(), "us-west-2".to_owned()];
        let found = [
            ("us-east-1".to_owned(), "https://a.execute-api".to_owned()),
            ("us-west-2".to_owned(), "https://b.execute-api".to_owned()),
        ];
        assert_eq!(
            args.origins(&regions, &found),
            [
                ("us-east-1".to_owned(), "https://a.execute-api".to_owned()),
                ("us-west-2".to_owned(), "http://127.0.0.1:9".to_owned()),
            ]
        );
        assert!(region_url("us-east-1").is_err());
        assert!(region_url("us-east-1=ftp://x").is_err());
    }
}
