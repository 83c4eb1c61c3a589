//! The drill's report: the JSON document ([`Report`]), where it and the HTML report are written,
//! and the summary printed in the terminal.

use super::html::render_html;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tandem_shared::control::Outage;
use tandem_shared::drill::{
    ClientMode, LostWrite, Rpo, Sample, Summary, SwitchFigures, SwitchMode, Window,
};

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
    /// What was still lost when the wait for convergence ended
    /// ([`tandem_shared::drill::lost_writes`]).
    pub lost_writes: Vec<LostWrite>,
    /// Ids whose regions still held different writes when the wait ended
    /// ([`tandem_shared::drill::diverging`]).
    #[serde(default)]
    pub diverging: Vec<String>,
    /// The stack's consistency mode and what was lost against its promise (contract §10); a
    /// report from before the field reads as eventual.
    #[serde(default)]
    pub rpo: Rpo,
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
pub(super) fn write_reports(report: &Report, path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (json, html) = report_paths(path);
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, render_html(report))
        .with_context(|| format!("writing {}", html.display()))?;
    Ok((json, html))
}

pub(super) fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "-".into())
}

pub(super) fn print_summary(r: &Report) {
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
    println!("  consistency:         {}", r.rpo.consistency);
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
    println!("  recovery point:      {}", r.rpo.describe());
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
pub(super) fn switch_line(r: &Report) -> String {
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
pub(super) fn window_line(w: &Window) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::fixtures::{report, switched_report};

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
            "rpo",
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
    }
}
