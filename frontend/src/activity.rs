//! The request log: every request the console made, newest first, and an SVG timeline of
//! latency over the last minute, coloured by the region that answered. Switches of the active
//! region are marked in both, between the requests they changed.

use crate::console::Console;
use crate::model::{self, Entry, PLOT_BOTTOM, PLOT_HEIGHT, PLOT_LEFT, PLOT_TOP, Source};
use crate::net;
use crate::widgets::ColumnHeads;
use leptos::prelude::*;

/// Rows the table shows; the log keeps more, the timeline draws the last minute.
const ROWS: usize = 150;
const WINDOW_MS: f64 = 60_000.0;

#[component]
pub fn ActivityPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let show_polls = RwSignal::new(false);
    // The timeline slides with wall time even when no request is made.
    let now = RwSignal::new(net::now_ms());
    leptos::task::spawn_local(async move {
        loop {
            net::sleep(1000).await;
            now.set(net::now_ms());
        }
    });
    let keep = move |e: &Entry| show_polls.get() || e.source != Source::Poll;

    let counts = move || {
        console.log.with(|log| {
            let shown: Vec<&Entry> = log
                .iter()
                .filter(|e| keep(e) && e.marker.is_none())
                .collect();
            let failed = shown.iter().filter(|e| e.failed()).count();
            let failovers = shown.iter().filter(|e| e.failover_text().is_some()).count();
            format!(
                "{} request(s), {failed} failed, {failovers} with failover",
                shown.len()
            )
        })
    };

    // The newest rows, every redraw; `<For>` keeps the rows it already has, so only the
    // requests that came in (and those that scrolled off the end) touch the DOM.
    let rows = move || {
        console.log.with(|log| {
            log.iter()
                .rev()
                .filter(|e| keep(e))
                .take(ROWS)
                .cloned()
                .collect::<Vec<_>>()
        })
    };

    view! {
        <section class="panel wide" aria-labelledby="log-title">
            <div class="panel-head">
                <h2 id="log-title">"Requests"</h2>
                <span class="muted small" id="log-counts">{counts}</span>
                <label class="inline small">
                    <input
                        type="checkbox"
                        id="show-polls"
                        prop:checked=move || show_polls.get()
                        on:change=move |ev| show_polls.set(event_target_checked(&ev))
                    />
                    "Show health polling"
                </label>
                <button type="button" on:click=move |_| console.log.set(Vec::new())>
                    "Clear"
                </button>
            </div>
            <Timeline now=now keep=show_polls />
            <div class="table-wrap log-wrap">
                <table class="log" id="request-log">
                    <ColumnHeads
                        names=&["time (UTC)", "by", "request", "status", "latency", "region", "failover"]
                        numeric=&["latency"]
                    />
                    <tbody>
                        <For each=rows key=row_key children=move |e| view! { <LogRow e=e /> } />
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// A row's identity in the table: the request's sequence number, and whether the console has
/// noted a failover on it. The note lands in the same tick as the request it belongs to, so a
/// row is drawn once and kept; should one ever come later, only that row is redrawn.
fn row_key(e: &Entry) -> (u64, bool) {
    (e.seq, e.client_failover.is_some())
}

/// One request, or one marker (an active region switch). A marker is a row like a request's,
/// its text where the request goes: one view for both keeps the wasm small, and every row
/// keeps the table's seven cells (which the end-to-end test reads by position). Built once per
/// line: the log redraws several times a second while rows only come and go at its ends.
#[component]
fn LogRow(e: Entry) -> impl IntoView {
    let console = expect_context::<Console>();
    let failover = e.failover_text();
    let failed_over = failover.is_some();
    let failed = e.failed();
    let marker = e.marker.is_some();
    let (method, request) = match e.marker {
        Some(text) => (String::new(), text),
        None => (e.method, e.path),
    };
    let (status, latency) = match (marker, e.status) {
        (true, _) => (String::new(), String::new()),
        (false, s) => (
            s.map_or("—".to_owned(), |s| s.to_string()),
            model::fmt_ms(e.latency_ms),
        ),
    };
    // Only a title: the region cell must say the region alone.
    let active = e.edge_active.map(|a| format!("x-edge-active: {a}"));
    let region = e.region.clone();
    // The colour follows the region list, which the first look at the stack may reorder.
    let tag = move || {
        let class = console
            .regions
            .with(|regions| model::region_class(regions, region.as_deref()));
        format!("tag {class}")
    };
    view! {
        <tr class:failed=failed class:failover=failed_over class:marker=marker>
            <td class="mono small">{model::fmt_clock(e.at_ms)}</td>
            <td class="small muted">{e.source.label()}</td>
            <td class="mono small req">
                <span class="method">{method}</span>
                " "
                {request}
            </td>
            <td class="mono" data-col="status">
                {status}
            </td>
            <td class="num mono small">{latency}</td>
            <td data-col="region" title=active>
                <span class=tag>{e.region.unwrap_or_else(|| "—".into())}</span>
            </td>
            <td class="small" data-col="failover">{failover.unwrap_or_default()}</td>
        </tr>
    }
}

#[component]
fn Timeline(now: RwSignal<f64>, keep: RwSignal<bool>) -> impl IntoView {
    let console = expect_context::<Console>();
    let svg = NodeRef::<leptos::svg::Svg>::new();
    // Read on every redraw (at least once a second), so a resized window is redrawn 1:1 soon.
    let width = move || {
        now.track();
        svg.get()
            .map(|el| el.client_width())
            .filter(|w| *w > 0)
            .unwrap_or(800)
    };
    let drawing = move || {
        let regions = console.regions.get();
        let show_polls = keep.get();
        let width = width();
        console.log.with(|log| {
            let entries: Vec<&Entry> = log
                .iter()
                .filter(|e| show_polls || e.source != Source::Poll)
                .collect();
            let t = model::timeline(&entries, &regions, now.get(), WINDOW_MS, width);
            (t, width)
        })
    };
    let plot = move || {
        let (t, width) = drawing();
        plot_view(t, width)
    };
    view! {
        <figure class="timeline">
            <svg
                node_ref=svg
                height=PLOT_HEIGHT
                role="img"
                aria-label="Latency of each request over the last minute, coloured by the region that answered"
            >
                {plot}
            </svg>
            <Legend />
        </figure>
    }
}

/// The axes, their labels, and a mark per request.
fn plot_view(t: model::Timeline, width: i32) -> impl IntoView {
    let right = model::plot_right(width);
    let mid_y = (PLOT_TOP + PLOT_BOTTOM) / 2;
    let dots = t.dots.into_iter().map(dot_view).collect_view();
    let marks = t
        .marks
        .into_iter()
        .map(|m| {
            view! {
                <line class=format!("switch {}", m.class) x1=m.x y1=PLOT_TOP x2=m.x y2=PLOT_BOTTOM />
                <text class="label" x=m.x + 3 y=PLOT_TOP + 10>
                    {m.label}
                </text>
            }
        })
        .collect_view();
    view! {
        <line class="grid" x1=PLOT_LEFT y1=PLOT_TOP x2=right y2=PLOT_TOP />
        <line class="grid" x1=PLOT_LEFT y1=mid_y x2=right y2=mid_y />
        <line class="axis" x1=PLOT_LEFT y1=PLOT_BOTTOM x2=right y2=PLOT_BOTTOM />
        <text class="label" x=PLOT_LEFT - 6 y=PLOT_TOP + 4 text-anchor="end">
            {model::fmt_ms(t.y_max_ms)}
        </text>
        <text class="label" x=PLOT_LEFT - 6 y=mid_y + 4 text-anchor="end">
            {model::fmt_ms(t.y_max_ms / 2.0)}
        </text>
        <text class="label" x=PLOT_LEFT - 6 y=PLOT_BOTTOM + 4 text-anchor="end">"0"</text>
        <text class="label" x=PLOT_LEFT y=PLOT_BOTTOM + 18>"−60 s"</text>
        <text class="label" x=(PLOT_LEFT + right) / 2 y=PLOT_BOTTOM + 18 text-anchor="middle">
            "−30 s"
        </text>
        <text class="label" x=right y=PLOT_BOTTOM + 18 text-anchor="end">"now"</text>
        {marks}
        {dots}
    }
}

/// A request on the timeline: a cross when it failed, a ring (a larger dot) when it failed over.
fn dot_view(d: model::Dot) -> AnyView {
    let class = format!(
        "dot {}{}{}",
        d.class,
        if d.failed { " failed" } else { "" },
        if d.failover { " failover" } else { "" },
    );
    if d.failed {
        let path = format!("M{} {}l8 8m0 -8l-8 8", d.x - 4, d.y - 4);
        view! {
            <path class=class d=path>
                <title>{d.title}</title>
            </path>
        }
        .into_any()
    } else {
        view! {
            <circle class=class cx=d.x cy=d.y r=if d.failover { "5.5" } else { "3.5" }>
                <title>{d.title}</title>
            </circle>
        }
        .into_any()
    }
}

/// A colour per region, in the order of the region list, and the marks of failures.
#[component]
fn Legend() -> impl IntoView {
    let console = expect_context::<Console>();
    let regions = move || {
        console
            .regions
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let class = ["r0", "r1", "r2", "r3"].get(i).copied().unwrap_or("rx");
                view! {
                    <span class=format!("legend-item {class}")>
                        <span class="swatch" aria-hidden="true"></span>
                        {r}
                    </span>
                }
            })
            .collect_view()
    };
    view! {
        <figcaption class="legend small">
            {regions}
            <span class="legend-item failed">
                <span class="cross" aria-hidden="true">"×"</span>
                "failed (5xx or no answer)"
            </span>
            <span class="legend-item">
                <span class="ring" aria-hidden="true"></span>
                "failed over"
            </span>
        </figcaption>
    }
}
