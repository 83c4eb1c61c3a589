//! The drill's HTML report: one self-contained page (no external assets) with every request on
//! a timeline, as an inline SVG, and the figures as a table.

use super::report::{Report, fmt_ms, switch_line, window_line};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use tandem_shared::drill::{ClientMode, Kind, Sample, SwitchMode};

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
        ("Recovery point", r.rpo.describe()),
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
    use crate::drill::fixtures::{report, switched_report};

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
    fn the_html_report_shows_the_switch_only_when_there_was_one() {
        let r = switched_report();
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
