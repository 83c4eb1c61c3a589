//! The console's logic that needs no browser: token parsing, failover rules, the request log's
//! entries, the timeline's geometry, replication lines, the active region's and the consensus
//! log's wording.
//! Kept apart from the views so that `cargo test` checks it on the host. The control API's
//! bodies are `tandem_shared::control`'s types, the same the edge and the CLI use.

use tandem_shared::control::{ConsensusStatus, SwitchState, WatcherStatus};
use tandem_shared::replication::ReplicationConfig;

/// What the console reads of `GET /api/health` (`tandem_shared::wire::HealthResponse`): the
/// status (as its word: the console only shows it), the mode and the fault. The rest, the
/// store's replication report (digests, links), is skipped unread: decoding it took 2 KB of the
/// console's wasm after brotli for nothing the console shows, and the size budget has no room
/// for it. A test reads a whole `HealthResponse` through it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct HealthView {
    pub status: String,
    #[serde(default)]
    pub consistency: Consistency,
    pub fault: Fault,
}

/// One process of a [`RegionsView`] (`tandem_shared::control::RegionStatus`), its state as its
/// word: the console shows it and sends states, it never decodes one.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ProcessView {
    pub region: String,
    pub state: String,
    pub primary: bool,
    #[serde(default)]
    pub restarts: u64,
    #[serde(default)]
    pub last_exit: Option<String>,
    #[serde(default)]
    pub witness: bool,
}

/// What the console reads of `GET /_tandem/replication` (`tandem_shared::control::ReplicationBody`):
/// the settings and, of each link, what [`describe_link`] shows, its states as their words.
/// Decoding every field and the states' enums took 1 KB of the console's wasm after brotli, for
/// text the console only shows. A test reads a whole `ReplicationBody` through it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ReplicationView {
    pub config: ReplicationConfig,
    pub pairs: Vec<LinkView>,
}

/// One link of a [`ReplicationView`] (`tandem_shared::replication::PairStatus`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct LinkView {
    pub from: String,
    pub to: String,
    pub state: String,
    pub pending: u64,
    pub lag_p50_ms: Option<u64>,
    pub lag_p99_ms: Option<u64>,
    pub last_error: Option<String>,
    pub digest: String,
    pub resyncs: u64,
    pub refused: u64,
}

/// What the console reads of `GET /_tandem/regions` (`tandem_shared::control::RegionsBody`):
/// each process (the witness's too) and the mode. The edge's settings, which the console does
/// not show, are skipped unread, for the same budget as [`HealthView`]'s.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RegionsView {
    pub regions: Vec<ProcessView>,
    #[serde(default)]
    pub consistency: Consistency,
}
use tandem_shared::{Consistency, Fault};

/// sessionStorage key of the admin token. sessionStorage, not localStorage: the token should
/// not outlive the tab it was opened in.
pub const TOKEN_KEY: &str = "tandem.admin-token";

/// The admin token in a URL fragment: `#token=abc`, also among other `&`-separated pairs.
pub fn token_from_fragment(fragment: &str) -> Option<String> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    fragment
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Whether a write's answer means the region did not take it: a 5xx, or no answer at all.
/// A 4xx is the client's mistake (contract §4) and resending it elsewhere would only repeat it.
pub fn write_needs_failover(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

/// The first region that is not `region`: where a failed write is resent, and where a
/// staleness check reads.
pub fn other_region<'a>(regions: &'a [String], region: &str) -> Option<&'a str> {
    regions.iter().map(String::as_str).find(|r| *r != region)
}

/// Who made a request, so the log can hide the background polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A person clicked something.
    User,
    /// Health and control polling.
    Poll,
    /// A staleness check (reading an item back from the other region).
    Check,
    /// The drill's traffic.
    Drill,
    /// Someone else (the CLI, the health watcher): a change that polling noticed.
    Other,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::User => "you",
            Source::Poll => "poll",
            Source::Check => "check",
            Source::Drill => "drill",
            Source::Other => "other",
        }
    }
}

/// One request the console made, as the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub at_ms: f64,
    pub method: String,
    pub path: String,
    /// `None`: no HTTP answer (network error).
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// `x-served-region`: the only trace of failover that exists on AWS too.
    pub region: Option<String>,
    /// `x-edge-failover`, sent by the local edge only.
    pub edge_failover: Option<String>,
    /// `x-edge-origin`, sent by the local edge only.
    pub edge_origin: Option<String>,
    /// `x-edge-active`: the active region the local edge routed by, when one is set.
    pub edge_active: Option<String>,
    /// Set on a write the console resent to another region, and on the failed original.
    pub client_failover: Option<String>,
    pub source: Source,
    /// Set on a line that marks an event instead of a request (`active region → us-west-2`);
    /// such a line has no method, path or status, and `region` is the region it names.
    pub marker: Option<String>,
}

impl Entry {
    /// A line that marks an active region switch: `region` is the region now active.
    pub fn switch(seq: u64, at_ms: f64, region: String, default: bool, source: Source) -> Entry {
        Entry {
            seq,
            at_ms,
            method: String::new(),
            path: String::new(),
            status: None,
            latency_ms: 0.0,
            marker: Some(switch_text(&region, default)),
            region: Some(region),
            edge_failover: None,
            edge_origin: None,
            edge_active: None,
            client_failover: None,
            source,
        }
    }

    /// A request that got no usable answer: what an outage looks like to a client.
    pub fn failed(&self) -> bool {
        self.marker.is_none() && self.status.is_none_or(|s| s >= 500)
    }

    /// The failover column: what the edge or the console did about an unhealthy region.
    pub fn failover_text(&self) -> Option<String> {
        let edge = self
            .edge_failover
            .as_ref()
            .map(|reason| match &self.edge_origin {
                Some(origin) => format!("edge: {reason} → {origin}"),
                None => format!("edge: {reason}"),
            });
        match (edge, &self.client_failover) {
            (Some(e), Some(c)) => Some(format!("{e}; {c}")),
            (Some(e), None) => Some(e),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        }
    }
}

/// `12 ms`, `1.25 s`: latencies and durations for people. Integer arithmetic only: float
/// formatting would add kilobytes to the wasm for no visible gain.
pub fn fmt_ms(ms: f64) -> String {
    let ms = ms.max(0.0).round() as u64;
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        let centis = (ms + 5) / 10;
        format!("{}.{:02} s", centis / 100, centis % 100)
    }
}

/// `HH:MM:SS.mmm` (UTC) of a wall-clock time in milliseconds since the epoch.
pub fn fmt_clock(at_ms: f64) -> String {
    let ms = at_ms.max(0.0) as u64;
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// The smallest of 1, 2, 5 × 10^n that is at least `x` (and at least 10): the timeline's
/// latency axis ends on a round number.
pub fn nice_ceiling(x: f64) -> f64 {
    let mut step = 10.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if step * m >= x {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

/// CSS class of a region's colour: by its place in the region list, so the primary is always
/// the same colour whatever it is called.
pub fn region_class(regions: &[String], region: Option<&str>) -> &'static str {
    const CLASSES: [&str; 4] = ["r0", "r1", "r2", "r3"];
    match region {
        None => "rnone",
        Some(r) => regions
            .iter()
            .position(|x| x == r)
            .and_then(|i| CLASSES.get(i).copied())
            .unwrap_or("rx"),
    }
}

/// Where one request lands on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub seq: u64,
    /// Pixels, rounded: whole pixels are sharp enough, and integers format without the
    /// float machinery.
    pub x: i32,
    pub y: i32,
    pub class: &'static str,
    pub failed: bool,
    pub failover: bool,
    pub title: String,
}

/// A vertical line on the timeline where a marker line of the log happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x: i32,
    pub class: &'static str,
    pub label: String,
}

/// The timeline's drawing: a window of `window_ms` ending at `now_ms`, latency upwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub dots: Vec<Dot>,
    pub marks: Vec<Mark>,
    /// Top of the latency axis, in milliseconds.
    pub y_max_ms: f64,
}

/// Plot area of the timeline, in pixels (the SVG is drawn 1:1 so dots stay round and text
/// stays legible at any width); the right edge is [`plot_right`] of the drawn width.
pub const PLOT_LEFT: i32 = 56;
pub const PLOT_TOP: i32 = 12;
pub const PLOT_BOTTOM: i32 = 160;
pub const PLOT_HEIGHT: i32 = 184;

pub fn plot_right(width: i32) -> i32 {
    (width - 14).max(PLOT_LEFT + 100)
}

pub fn timeline(
    entries: &[&Entry],
    regions: &[String],
    now_ms: f64,
    window_ms: f64,
    width_px: i32,
) -> Timeline {
    let start = now_ms - window_ms;
    let (marked, visible): (Vec<&&Entry>, Vec<&&Entry>) = entries
        .iter()
        .filter(|e| e.at_ms >= start)
        .partition(|e| e.marker.is_some());
    let y_max_ms = nice_ceiling(visible.iter().map(|e| e.latency_ms).fold(0.0, f64::max));
    let width = f64::from(plot_right(width_px) - PLOT_LEFT);
    let height = f64::from(PLOT_BOTTOM - PLOT_TOP);
    let x = |at_ms: f64| {
        PLOT_LEFT + (((at_ms - start) / window_ms).clamp(0.0, 1.0) * width).round() as i32
    };
    let marks = marked
        .iter()
        .map(|e| Mark {
            x: x(e.at_ms),
            class: region_class(regions, e.region.as_deref()),
            label: format!("→ {}", e.region.as_deref().unwrap_or("?")),
        })
        .collect();
    let dots = visible
        .iter()
        .map(|e| Dot {
            seq: e.seq,
            x: x(e.at_ms),
            y: PLOT_BOTTOM - ((e.latency_ms / y_max_ms).clamp(0.0, 1.0) * height).round() as i32,
            class: region_class(regions, e.region.as_deref()),
            failed: e.failed(),
            failover: e.edge_failover.is_some() || e.client_failover.is_some(),
            title: format!(
                "{} {} → {} in {} ({})",
                e.method,
                e.path,
                e.status.map_or("network error".into(), |s| s.to_string()),
                fmt_ms(e.latency_ms),
                e.region.as_deref().unwrap_or("no region")
            ),
        })
        .collect();
    Timeline {
        dots,
        marks,
        y_max_ms,
    }
}

/// Whether the copy of an item a region holds is the write we made or a later one.
/// `updated_at` is RFC 3339 UTC with milliseconds, fixed width, so text order is time order;
/// ties break on the region name, as last-writer-wins does (contract §5).
pub fn caught_up(seen: (&str, &str), written: (&str, &str)) -> bool {
    seen >= written
}

/// The region `/api/*` goes to first (contract §6.3): `value` when it names one of `regions`
/// (primary first), else the primary. `tandem_shared::routing::api_route`'s rule, written out
/// rather than called because that one allocates its whole route; a test holds them together.
pub fn first_region(value: Option<&str>, regions: &[String]) -> Option<String> {
    value
        .and_then(|v| regions.iter().find(|r| *r == v))
        .or(regions.first())
        .cloned()
}

/// What a region card says of a region `/api/*` does not go to first.
pub const NOT_ACTIVE: &str = "not active";

/// What a region card says about routing, given the active region's value: `active (default)`
/// when the primary is first because no known region is set, `active (switched)` when the
/// value names this region, else [`NOT_ACTIVE`].
pub fn active_label(value: Option<&str>, region: &str, regions: &[String]) -> &'static str {
    let switched = value.is_some_and(|v| regions.iter().any(|r| r == v));
    match first_region(value, regions) {
        Some(first) if first == region && switched => "active (switched)",
        Some(first) if first == region => "active (default)",
        _ => NOT_ACTIVE,
    }
}

/// The log's marker for a switch: `active region → us-west-2`, with `(default)` when no value
/// is set and the primary is first by default.
pub fn switch_text(region: &str, default: bool) -> String {
    let suffix = if default { " (default)" } else { "" };
    format!("active region → {region}{suffix}")
}

/// The health watcher's line under the cards: what it does, or why it cannot switch.
pub fn watcher_text(w: &WatcherStatus) -> String {
    if let Some(error) = &w.error {
        return format!("Health watcher cannot switch the active region: {error}");
    }
    let last = match w.failing.as_slice() {
        [] => "every region answered".to_owned(),
        failing => format!("no answer from {}", failing.join(", ")),
    };
    // A switch the edge does not route by is no switch: said after the rest, as a warning.
    let unconfirmed = match &w.last_switch {
        Some(s) if s.state == SwitchState::Unconfirmed => format!(
            "; its switch to {} did not show at the edge within {} s",
            s.to.as_deref().unwrap_or("the primary"),
            s.after_ms / 1000
        ),
        _ => String::new(),
    };
    format!(
        "Health watcher: probes every {} ms, switches after {} failed probes in a row; {} rounds, {} switches; last round: {last}{unconfirmed}",
        w.probe_interval_ms, w.failover_after, w.rounds, w.switches
    )
}

/// `error 503`, `slow +3000 ms` or `none`: a fault as the cards show it.
pub fn fault_text(fault: &Fault) -> String {
    match fault {
        Fault::Error { status, .. } => format!("error {status}"),
        Fault::Slow { latency_ms, .. } => format!("slow +{latency_ms} ms"),
        Fault::None { .. } => "none".into(),
    }
}

/// One line about a replication link: backlog, lag, and whatever is wrong with it.
/// A region process's restarts after exits nobody asked for, in words.
pub fn describe_restarts(r: &ProcessView) -> String {
    match (r.restarts, &r.last_exit) {
        (0, None) => "none".into(),
        (n, Some(exit)) => format!("{n}; last exit: {exit}"),
        (n, None) => n.to_string(),
    }
}

pub fn describe_link(p: &LinkView) -> String {
    let ms = |l: Option<u64>| l.map_or("–".into(), |l| format!("{l} ms"));
    let mut line = format!(
        "{} pending from {}, lag p50 {} p99 {}; link {}, digests {}",
        p.pending,
        p.from,
        ms(p.lag_p50_ms),
        ms(p.lag_p99_ms),
        p.state,
        p.digest,
    );
    if p.resyncs > 0 {
        line.push_str(&format!("; {} resync(s)", p.resyncs));
    }
    if p.refused > 0 {
        line.push_str(&format!("; {} answer(s) refused", p.refused));
    }
    if let Some(err) = &p.last_error {
        line.push_str(&format!("; error: {err}"));
    }
    line
}

/// `code: message` of an error body: a region's, the edge's own (whose `region` is null) or the
/// control API's, which all answer with the same `tandem_shared::ErrorBody`. The code is read as
/// the text it is on the wire: the console only shows it, and decoding the `ErrorCode` enum
/// took 0.7 KB of the console's wasm after brotli.
pub fn error_of(body: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        error: Detail,
    }
    let body: Body = serde_json::from_str(body).ok()?;
    Some((body.error.code, body.error.message))
}

/// The stack's mode over the region cards: `eventual consistency`, or in the strong mode who
/// leads the consensus log in which term, or that nobody does (no majority: every data request
/// answers 503, contract §10.3). Empty until the mode is known.
pub fn consistency_text(mode: Option<Consistency>, s: Option<&ConsensusStatus>) -> String {
    let Some(mode) = mode else {
        return String::new();
    };
    let leader = match (mode, s) {
        (Consistency::Strong, Some(s)) => s.leader.as_deref(),
        _ => return format!("{mode} consistency"),
    };
    let term = s.map_or(0, |s| s.term);
    match leader {
        Some(leader) => format!("strong consistency: {leader} leads, term {term}"),
        None => format!("strong consistency: no leader (term {term}), reads and writes answer 503"),
    }
}

/// One member's place in the consensus log: its role (`learner` while a member that lost its
/// disk catches up), generation, last log index, committed and applied, and why it cannot serve
/// when it says so; `not answering` when the control API could not ask it.
pub fn member_text(s: Option<&ConsensusStatus>, region: &str) -> String {
    let Some(s) = s else {
        return "?".into();
    };
    let Some(m) = s.members.iter().find(|m| m.region == region) else {
        return "not answering".into();
    };
    let at = |i: Option<u64>| i.map_or_else(|| "-".to_owned(), |i| i.to_string());
    let mut text = format!(
        "{} (gen {}), log {}, committed {}, applied {}",
        m.role.as_str(),
        m.generation,
        at(m.last_log_index),
        at(m.committed),
        at(m.applied)
    );
    if let Some(error) = &m.error {
        text.push_str(": ");
        text.push_str(error);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_shared::FaultState;
    use tandem_shared::control::{
        ActiveRegion, RegionState, RegionsBody, ReplicationBody, ReplicationPatch, SetRegionState,
    };
    use tandem_shared::routing::api_route;
    use tandem_shared::wire::HealthResponse;

    fn entry(seq: u64, at_ms: f64, latency_ms: f64, status: Option<u16>, region: &str) -> Entry {
        Entry {
            seq,
            at_ms,
            method: "GET".into(),
            path: "/api/items".into(),
            status,
            latency_ms,
            region: (!region.is_empty()).then(|| region.to_owned()),
            edge_failover: None,
            edge_origin: None,
            edge_active: None,
            client_failover: None,
            source: Source::User,
            marker: None,
        }
    }

    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn regions() -> Vec<String> {
        vec!["us-east-1".into(), "us-west-2".into()]
    }

    #[test]
    fn the_consistency_line_names_the_leader_and_each_card_its_log() {
        use tandem_shared::control::{MemberRole, MemberStatus};
        assert_eq!(consistency_text(None, None), "");
        let eventual = Some(Consistency::Eventual);
        assert_eq!(consistency_text(eventual, None), "eventual consistency");
        let strong = Some(Consistency::Strong);
        assert_eq!(consistency_text(strong, None), "strong consistency");
        let mut s = ConsensusStatus {
            leader: Some("us-west-2".into()),
            term: 4,
            members: vec![MemberStatus {
                region: "us-east-2".into(),
                role: MemberRole::Learner,
                generation: 1,
                last_log_index: Some(12),
                committed: Some(11),
                ..MemberStatus::default()
            }],
            ..ConsensusStatus::default()
        };
        assert_eq!(
            consistency_text(strong, Some(&s)),
            "strong consistency: us-west-2 leads, term 4"
        );
        assert_eq!(
            member_text(Some(&s), "us-east-2"),
            "learner (gen 1), log 12, committed 11, applied -"
        );
        assert_eq!(member_text(Some(&s), "us-east-1"), "not answering");
        assert_eq!(member_text(None, "us-east-1"), "?");
        s.leader = None;
        s.members[0].error = Some("catching up".into());
        assert_eq!(
            consistency_text(strong, Some(&s)),
            "strong consistency: no leader (term 4), reads and writes answer 503"
        );
        assert!(member_text(Some(&s), "us-east-2").ends_with(": catching up"));
    }

    #[test]
    fn the_watcher_line_puts_an_error_first() {
        let mut w = WatcherStatus {
            probe_interval_ms: 1000,
            failover_after: 3,
            rounds: 12,
            failing: vec![],
            switches: 0,
            error: None,
            last_switch: None,
        };
        assert_eq!(
            watcher_text(&w),
            "Health watcher: probes every 1000 ms, switches after 3 failed probes in a row; 12 rounds, 0 switches; last round: every region answered"
        );
        w.failing = vec!["us-east-1".into()];
        assert!(watcher_text(&w).ends_with("last round: no answer from us-east-1"));
        w.last_switch = Some(tandem_shared::control::SwitchSeen {
            to: Some("us-west-2".into()),
            state: SwitchState::Unconfirmed,
            after_ms: 60_400,
        });
        assert!(
            watcher_text(&w)
                .ends_with("; its switch to us-west-2 did not show at the edge within 60 s")
        );
        w.error = Some("saving the active region: disk full".into());
        assert_eq!(
            watcher_text(&w),
            "Health watcher cannot switch the active region: saving the active region: disk full"
        );
    }

    #[test]
    fn token_comes_from_the_fragment_only_when_present() {
        assert_eq!(token_from_fragment("#token=abc").as_deref(), Some("abc"));
        assert_eq!(token_from_fragment("token=abc").as_deref(), Some("abc"));
        assert_eq!(
            token_from_fragment("#view=log&token=f00d").as_deref(),
            Some("f00d")
        );
        assert_eq!(token_from_fragment("#token="), None);
        assert_eq!(token_from_fragment("#tokens=abc"), None);
        assert_eq!(token_from_fragment(""), None);
    }

    #[test]
    fn only_server_side_failures_are_resent() {
        assert!(write_needs_failover(None));
        assert!(write_needs_failover(Some(502)));
        assert!(write_needs_failover(Some(503)));
        assert!(!write_needs_failover(Some(200)));
        assert!(!write_needs_failover(Some(400)));
        assert!(!write_needs_failover(Some(412)));
    }

    #[test]
    fn other_region_skips_the_given_one() {
        let r = regions();
        assert_eq!(other_region(&r, "us-east-1"), Some("us-west-2"));
        assert_eq!(other_region(&r, "us-west-2"), Some("us-east-1"));
        assert_eq!(other_region(&r[..1], "us-east-1"), None);
    }

    #[test]
    fn failover_text_names_edge_and_client() {
        let mut e = entry(1, 0.0, 5.0, Some(200), "us-west-2");
        assert_eq!(e.failover_text(), None);
        e.edge_failover = Some("status-503".into());
        e.edge_origin = Some("us-west-2".into());
        assert_eq!(
            e.failover_text().as_deref(),
            Some("edge: status-503 → us-west-2")
        );
        e.edge_failover = None;
        e.client_failover = Some("client: resent after 502".into());
        assert_eq!(
            e.failover_text().as_deref(),
            Some("client: resent after 502")
        );
        assert!(!e.failed());
        assert!(entry(2, 0.0, 1.0, None, "").failed());
        assert!(entry(3, 0.0, 1.0, Some(504), "").failed());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(12.4), "12 ms");
        assert_eq!(fmt_ms(1250.0), "1.25 s");
        assert_eq!(fmt_ms(999.6), "1.00 s");
        assert_eq!(fmt_ms(61_005.0), "61.01 s");
        assert_eq!(fmt_clock(1_764_000_000_123.0), "16:00:00.123");
        assert_eq!(nice_ceiling(0.0), 10.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(200.0), 200.0);
        assert_eq!(nice_ceiling(201.0), 500.0);
        assert_eq!(nice_ceiling(4100.0), 5000.0);
    }

    #[test]
    fn timeline_places_dots_by_time_and_latency() {
        let r = regions();
        let a = entry(1, 1000.0, 50.0, Some(200), "us-east-1");
        let b = entry(2, 11_000.0, 100.0, Some(200), "us-west-2");
        let old = entry(3, -60_000.0, 9999.0, Some(200), "us-east-1");
        let c = entry(4, 6000.0, 10.0, Some(502), "");
        let t = timeline(&[&a, &b, &old, &c], &r, 11_000.0, 10_000.0, 800);
        assert_eq!(
            t.y_max_ms, 100.0,
            "the old, slow entry is out of the window"
        );
        assert_eq!(t.dots.len(), 3);
        assert_eq!(t.dots[0].x, PLOT_LEFT);
        assert_eq!(t.dots[1].x, plot_right(800));
        assert_eq!(t.dots[1].y, PLOT_TOP);
        assert_eq!(t.dots[0].y, (PLOT_TOP + PLOT_BOTTOM) / 2);
        assert_eq!(
            (t.dots[0].class, t.dots[1].class, t.dots[2].class),
            ("r0", "r1", "rnone")
        );
        assert!(t.dots[2].failed && !t.dots[0].failed);
        assert_eq!(region_class(&r, Some("eu-west-1")), "rx");
    }

    #[test]
    fn caught_up_follows_last_writer_wins() {
        let w = ("2026-01-01T00:00:00.100Z", "us-west-2");
        assert!(caught_up(w, w));
        assert!(caught_up(("2026-01-01T00:00:00.101Z", "us-east-1"), w));
        assert!(!caught_up(("2026-01-01T00:00:00.100Z", "us-east-1"), w));
        assert!(!caught_up(("2026-01-01T00:00:00.099Z", "us-west-2"), w));
    }

    #[test]
    fn control_api_bodies_are_the_shared_types() {
        let regions: RegionsBody = serde_json::from_str(
            r#"{"regions":[{"region":"us-east-1","state":"up","primary":true,"url":"http://127.0.0.1:8081","pid":7},
                {"region":"us-west-2","state":"crashing","primary":false,"url":"http://127.0.0.1:8082","pid":null,
                 "restarts":3,"last_exit":"killed by SIGKILL"}],
                "edge":{"connection_attempts":2,"connection_timeout":1,"origin_read_timeout":4}}"#,
        )
        .unwrap();
        assert_eq!(regions.regions[0].state, RegionState::Up);
        assert!(regions.regions[0].primary);
        // The console's view of the answer reads it whole, as the control API writes it.
        let view: RegionsView = serde_json::from_str(&json(&regions)).unwrap();
        assert_eq!(view.consistency, regions.consistency);
        let names = |v: &RegionsView| {
            v.regions
                .iter()
                .map(|r| r.region.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&view), ["us-east-1", "us-west-2"]);
        assert_eq!(view.regions[0].state, "up");
        assert_eq!(describe_restarts(&view.regions[0]), "none");
        assert_eq!(view.regions[1].state, "crashing");
        assert_eq!(
            describe_restarts(&view.regions[1]),
            "3; last exit: killed by SIGKILL"
        );
        let repl: ReplicationBody = serde_json::from_str(
            r#"{"config":{"paused":false,"lag_ms":0},"pairs":[{"from":"us-west-2","to":"us-east-1",
                "applied":3,"source_head":4,"pending":1,"lag_p50_ms":12,"lag_p99_ms":null,"lag_max_ms":null,
                "samples":1,"last_pull_ms":null,"last_error":null}],"unavailable":["us-west-2"]}"#,
        )
        .unwrap();
        assert_eq!(repl.pairs[0].pending, 1);
        assert_eq!(repl.unavailable, vec!["us-west-2".to_owned()]);
        let view: ReplicationView = serde_json::from_str(&json(&repl)).unwrap();
        assert_eq!(view.config, repl.config);
        assert_eq!(
            (view.pairs[0].state.as_str(), view.pairs[0].pending),
            (repl.pairs[0].state.as_str(), 1)
        );
        let failing: ReplicationBody = serde_json::from_str(
            r#"{"config":{"paused":false,"lag_ms":0},"pairs":[{"from":"us-west-2","to":"us-east-1",
                "state":"stalled","pending":7,"digest":"differ","resyncs":1,"refused":2,
                "last_error":"peer unreachable"}],"unavailable":[]}"#,
        )
        .unwrap();
        let failing: ReplicationView = serde_json::from_str(&json(&failing)).unwrap();
        assert_eq!(
            describe_link(&failing.pairs[0]),
            "7 pending from us-west-2, lag p50 – p99 –; link stalled, digests differ; 1 resync(s); \
             2 answer(s) refused; error: peer unreachable"
        );
        // What the console sends, as the control API reads it.
        assert_eq!(
            json(&SetRegionState {
                state: RegionState::Crashed
            }),
            r#"{"state":"crashed"}"#
        );
        assert_eq!(
            json(&ReplicationPatch {
                paused: None,
                lag_ms: Some(250)
            }),
            r#"{"lag_ms":250}"#
        );
        assert_eq!(
            json(&ActiveRegion::new(Some("us-west-2".into()))),
            r#"{"region":"us-west-2"}"#
        );
        let cleared: ActiveRegion = serde_json::from_str(r#"{"region":null}"#).unwrap();
        assert_eq!(cleared.region, None);
    }

    #[test]
    fn fault_answers_read_as_fault_state() {
        let state: FaultState = serde_json::from_str(
            r#"{"fault":{"mode":"slow","latency_ms":250,"duration_s":5},
                "expires_at":"2026-01-01T00:00:05.000Z","region":"us-east-1"}"#,
        )
        .unwrap();
        assert_eq!(fault_text(&state.fault), "slow +250 ms");
        // Health reports the fault the same way.
        let health: HealthResponse = serde_json::from_str(
            r#"{"region":"us-east-1","status":"faulted","fault":{"mode":"error","status":503},
                "replication":{}}"#,
        )
        .unwrap();
        assert_eq!(fault_text(&health.fault), "error 503");
        // The console's view of health reads the same answer, whole, as the API writes it.
        let view: HealthView = serde_json::from_str(&json(&health)).unwrap();
        assert_eq!(
            (view.status.as_str(), view.consistency, view.fault),
            (health.status.as_str(), health.consistency, health.fault)
        );
        let sent = Fault::Error {
            status: 504,
            duration_s: None,
        };
        let back: Fault = serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
        assert_eq!(fault_text(&back), "error 504");
        assert_eq!(fault_text(&Fault::NONE), "none");
    }

    #[test]
    fn the_active_region_follows_the_edge_rule() {
        let r = regions();
        let names = ["us-east-1", "us-west-2"];
        for value in [
            None,
            Some("us-east-1"),
            Some("us-west-2"),
            Some("eu-west-1"),
            Some(""),
        ] {
            let edge = api_route("PUT", value, &names).origins[0];
            assert_eq!(first_region(value, &r).as_deref(), Some(edge), "{value:?}");
        }
        assert_eq!(first_region(None, &[]), None);
        assert_eq!(first_region(None, &r).as_deref(), Some("us-east-1"));
        assert_eq!(
            first_region(Some("us-west-2"), &r).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            first_region(Some("eu-west-1"), &r).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(active_label(None, "us-east-1", &r), "active (default)");
        assert_eq!(active_label(None, "us-west-2", &r), "not active");
        assert_eq!(
            active_label(Some("us-west-2"), "us-west-2", &r),
            "active (switched)"
        );
        assert_eq!(
            active_label(Some("us-west-2"), "us-east-1", &r),
            "not active"
        );
        assert_eq!(
            active_label(Some("eu-west-1"), "us-east-1", &r),
            "active (default)"
        );
        let m = Entry::switch(9, 5000.0, "us-west-2".into(), false, Source::Other);
        assert_eq!(m.marker.as_deref(), Some("active region → us-west-2"));
        assert!(!m.failed(), "a marker is no failed request");
        assert_eq!(
            switch_text("us-east-1", true),
            "active region → us-east-1 (default)"
        );
        let a = entry(1, 1000.0, 50.0, Some(200), "us-east-1");
        let t = timeline(&[&a, &m], &r, 11_000.0, 10_000.0, 800);
        assert_eq!(t.dots.len(), 1, "a marker is no dot");
        assert_eq!(t.marks.len(), 1);
        assert_eq!(
            (t.marks[0].class, t.marks[0].label.as_str()),
            ("r1", "→ us-west-2")
        );
    }

    #[test]
    fn error_bodies_read_also_from_the_edge() {
        assert_eq!(
            error_of(r#"{"error":{"code":"region_unavailable","message":"x"},"region":null}"#),
            Some(("region_unavailable".into(), "x".into()))
        );
        assert_eq!(error_of("<!doctype html>"), None);
    }
}
