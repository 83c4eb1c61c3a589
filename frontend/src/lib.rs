//! Tandem's console: a Leptos (client-side rendered) WebAssembly app served by the edge from
//! the same origin as the API. It reads and writes items, shows which region answered every
//! request, and sets up outages to watch the system ride through them.
//!
//! Layout:
//! - [`model`]: logic that needs no browser (tested on the host).
//! - [`net`]: `fetch`, timers, the URL fragment and sessionStorage.
//! - [`console`]: shared state, the request log, client-side write failover, stack detection.
//! - [`regions`]: health polling, the regions panel and the outage controls; in the strong
//!   mode also the consensus log (leader, term, each member's place) and the witness's card.
//! - [`items`]: list, view, JSON editor, delete, staleness check.
//! - [`drill`]: the outage drill.
//! - [`activity`]: the request log table and its SVG timeline.
//! - [`widgets`]: markup more than one panel draws: number fields, table headings.

pub mod activity;
pub mod console;
pub mod drill;
pub mod items;
pub mod model;
pub mod net;
pub mod regions;
pub mod widgets;

use console::{Console, Stack};
use leptos::prelude::*;

/// Mounts the console on `<body>`.
pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let console = Console::new();
    console.load_token();
    console.start_log_redraw();
    let status = regions::Status::new();
    provide_context(console);
    provide_context(status);
    leptos::task::spawn_local(async move {
        console.detect().await;
        status.start(console);
    });

    view! {
        <header class="top">
            <div class="brand">
                <span class="logo" aria-hidden="true">"⇄"</span>
                <h1>"Tandem"</h1>
                <span class="stack" id="stack">
                    {move || match console.stack.get() {
                        Stack::Detecting => "detecting…",
                        Stack::Local { .. } => "local stack",
                        Stack::Cloud => "AWS",
                    }}
                </span>
            </div>
            <TokenBox />
        </header>
        <main id="app" data-ready=move || (console.stack.get() != Stack::Detecting).to_string()>
            <div class="column">
                <regions::RegionsPanel />
                <drill::DrillPanel />
            </div>
            <div class="column">
                <items::ItemsPanel />
            </div>
            <activity::ActivityPanel />
        </main>
    }
}

/// Shows whether an admin token is held, and lets one be entered or forgotten.
#[component]
fn TokenBox() -> impl IntoView {
    let console = expect_context::<Console>();
    let draft = RwSignal::new(String::new());
    let redetect = move || {
        leptos::task::spawn_local(async move { console.detect().await });
    };
    view! {
        <div class="token" role="group" aria-label="admin token">
            <form
                class="inline"
                hidden=move || console.token.with(Option::is_some)
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    console.set_token(Some(draft.get_untracked()));
                    draft.set(String::new());
                    redetect();
                }
            >
                <label for="token-input" class="small">"Admin token"</label>
                <input
                    id="token-input"
                    type="password"
                    autocomplete="off"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit">"Use"</button>
            </form>
            <span class="small" id="token-state" hidden=move || console.token.with(Option::is_none)>
                "admin token held for this tab"
            </span>
            <button
                type="button"
                hidden=move || console.token.with(Option::is_none)
                on:click=move |_| {
                    console.set_token(None);
                    redetect();
                }
            >
                "Forget"
            </button>
        </div>
    }
}
