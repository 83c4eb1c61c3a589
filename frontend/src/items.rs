//! The items panel: a paged list, one item's view, a JSON editor whose save shows the API's
//! error code inline, delete, and the staleness check that reads a written item back from the
//! other region until it has replicated.

use crate::console::{Console, Written};
use crate::model::{self, Source};
use crate::net::{self, encode};
use leptos::prelude::*;
use tandem_shared::Item;
use tandem_shared::wire::{ItemResponse, ListResponse};

/// Longest a staleness check keeps reading.
const STALENESS_LIMIT_MS: f64 = 60_000.0;

/// An answer worth a line under a form: status, region, latency and, on errors, the code.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub status: String,
    pub region: Option<String>,
    pub latency_ms: f64,
    pub code: Option<String>,
    pub message: Option<String>,
    /// `(region, status of the first try)` when the console resent the write.
    pub failover: Option<(String, String)>,
}

impl Outcome {
    fn of(w: &Written) -> Self {
        let error = model::error_of(&w.reply.body);
        Outcome {
            ok: w.reply.ok(),
            status: w.reply.status_text(),
            region: w.reply.region.clone(),
            latency_ms: w.reply.latency_ms,
            code: error.as_ref().map(|e| e.0.clone()),
            message: error.map(|e| e.1),
            failover: w.failover.clone(),
        }
    }
}

/// What a staleness check expects to find in the other region.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// This write (its `updated_at`, `updated_in`) or a later one.
    Write(String, String),
    /// Nothing: the item was deleted.
    Gone,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Reading { attempts: u32, last: String },
    Caught { after_ms: f64, attempts: u32 },
    GaveUp { after_ms: f64, last: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Staleness {
    pub run: u64,
    pub id: String,
    pub region: String,
    pub progress: Progress,
}

#[derive(Clone, Copy)]
pub struct ItemsState {
    page: RwSignal<Vec<Item>>,
    /// Cursors of the pages before the current one (`None`: the first page).
    back: RwSignal<Vec<Option<String>>>,
    current: RwSignal<Option<String>>,
    next: RwSignal<Option<String>>,
    limit: RwSignal<u32>,
    list_note: RwSignal<String>,
    selected: RwSignal<Option<(Item, String)>>,
    view_note: RwSignal<Option<Outcome>>,
    confirm_delete: RwSignal<bool>,
    editor_id: RwSignal<String>,
    editor_text: RwSignal<String>,
    /// Sent as `If-Match` when editing an item that was loaded.
    editor_version: RwSignal<Option<u64>>,
    editor_outcome: RwSignal<Option<Outcome>>,
    staleness: RwSignal<Option<Staleness>>,
    staleness_run: StoredValue<u64>,
    busy: RwSignal<bool>,
}

impl ItemsState {
    fn new() -> Self {
        ItemsState {
            page: RwSignal::new(Vec::new()),
            back: RwSignal::new(Vec::new()),
            current: RwSignal::new(None),
            next: RwSignal::new(None),
            limit: RwSignal::new(10),
            list_note: RwSignal::new(String::new()),
            selected: RwSignal::new(None),
            view_note: RwSignal::new(None),
            confirm_delete: RwSignal::new(false),
            editor_id: RwSignal::new(String::new()),
            editor_text: RwSignal::new("{\n  \"hello\": \"world\"\n}".into()),
            editor_version: RwSignal::new(None),
            editor_outcome: RwSignal::new(None),
            staleness: RwSignal::new(None),
            staleness_run: StoredValue::new(0),
            busy: RwSignal::new(false),
        }
    }

    async fn load(self, console: Console, cursor: Option<String>) {
        let mut path = format!("/api/items?limit={}", self.limit.get_untracked());
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode(c));
        }
        let (reply, _) = console.send("GET", &path, None, false, Source::User).await;
        match reply.parse::<ListResponse>().filter(|_| reply.ok()) {
            Some(list) => {
                self.list_note.set(format!(
                    "{} item(s), answered by {} in {}",
                    list.items.len(),
                    list.region,
                    model::fmt_ms(reply.latency_ms)
                ));
                self.page.set(list.items);
                self.current.set(cursor);
                self.next.set(list.next_cursor);
            }
            None => self.list_note.set(match model::error_of(&reply.body) {
                Some((code, message)) => format!("{} {code}: {message}", reply.status_text()),
                None => format!("list failed: {}", reply.status_text()),
            }),
        }
    }

    async fn open(self, console: Console, id: String) {
        let path = format!("/api/items/{}", encode(&id));
        let (reply, _) = console.send("GET", &path, None, false, Source::User).await;
        self.confirm_delete.set(false);
        match reply.parse::<ItemResponse>().filter(|_| reply.ok()) {
            Some(r) => {
                self.selected.set(Some((r.item, r.region)));
                self.view_note.set(None);
            }
            None => {
                self.selected.set(None);
                self.view_note.set(Some(Outcome::of(&Written {
                    reply,
                    failover: None,
                })));
            }
        }
    }

    async fn save(self, console: Console) {
        let id = self.editor_id.get_untracked();
        // The data text goes to the API as typed, so a mistake in it comes back as the API's
        // own error code (invalid_json, bad_request, …) rather than as a local guess.
        let body = format!("{{\"data\": {}}}", self.editor_text.get_untracked());
        let path = format!("/api/items/{}", encode(&id));
        let if_match = self.editor_version.get_untracked();
        self.busy.set(true);
        let written = console
            .write("PUT", &path, Some(&body), if_match, Source::User)
            .await;
        self.busy.set(false);
        let outcome = Outcome::of(&written);
        self.editor_outcome.set(Some(outcome.clone()));
        if let Some(r) = written.reply.parse::<ItemResponse>().filter(|_| outcome.ok) {
            self.editor_version.set(Some(r.item.version));
            let expect = Expect::Write(r.item.updated_at.clone(), r.item.updated_in.clone());
            self.selected.set(Some((r.item, r.region.clone())));
            self.view_note.set(None);
            self.check_staleness(console, id, console.other_than(&r.region), expect);
            self.load(console, self.current.get_untracked()).await;
        }
    }

    async fn delete(self, console: Console, id: String) {
        let path = format!("/api/items/{}", encode(&id));
        let written = console
            .write("DELETE", &path, None, None, Source::User)
            .await;
        let outcome = Outcome::of(&written);
        if outcome.ok {
            let accepted = written.reply.region.clone().unwrap_or(console.primary());
            self.selected.set(None);
            self.check_staleness(console, id, console.other_than(&accepted), Expect::Gone);
            self.load(console, self.current.get_untracked()).await;
        }
        self.confirm_delete.set(false);
        self.view_note.set(Some(outcome));
    }

    /// Reads the item from `region` until it shows `expect`, backing off from 250 ms to 2 s.
    /// A newer check (or the Stop button) ends an older one.
    pub fn check_staleness(self, console: Console, id: String, region: String, expect: Expect) {
        let run = self.staleness_run.get_value() + 1;
        self.staleness_run.set_value(run);
        let started = net::now_ms();
        self.staleness.set(Some(Staleness {
            run,
            id: id.clone(),
            region: region.clone(),
            progress: Progress::Reading {
                attempts: 0,
                last: "…".into(),
            },
        }));
        leptos::task::spawn_local(async move {
            let path = format!("/region/{region}/api/items/{}", encode(&id));
            let mut wait = 250;
            let mut attempts = 0;
            let update = |progress: Progress| {
                self.staleness.update(|s| {
                    if let Some(s) = s.as_mut().filter(|s| s.run == run) {
                        s.progress = progress;
                    }
                })
            };
            loop {
                if self.staleness_run.get_value() != run {
                    return;
                }
                attempts += 1;
                let (reply, _) = console.send("GET", &path, None, false, Source::Check).await;
                let seen = reply.parse::<ItemResponse>().filter(|_| reply.ok());
                let caught = match (&expect, &seen) {
                    (Expect::Write(at, region), Some(r)) => {
                        model::caught_up((&r.item.updated_at, &r.item.updated_in), (at, region))
                    }
                    (Expect::Gone, None) => reply.status == Some(404),
                    _ => false,
                };
                let elapsed = net::now_ms() - started;
                if caught {
                    update(Progress::Caught {
                        after_ms: elapsed,
                        attempts,
                    });
                    return;
                }
                let last = match (&seen, model::error_of(&reply.body)) {
                    (Some(r), _) => {
                        format!("has version {} from {}", r.item.version, r.item.updated_in)
                    }
                    (None, Some((code, _))) => format!("{} {code}", reply.status_text()),
                    (None, None) => reply.status_text(),
                };
                if elapsed > STALENESS_LIMIT_MS {
                    update(Progress::GaveUp {
                        after_ms: elapsed,
                        last,
                    });
                    return;
                }
                update(Progress::Reading { attempts, last });
                net::sleep(wait).await;
                wait = (wait * 2).min(2000);
            }
        });
    }
}

fn outcome_view(o: Outcome) -> impl IntoView {
    let summary = match (&o.region, &o.failover) {
        (Some(r), Some((to, why))) => format!(
            "{} from {r} in {} — the primary failed ({why}), the console resent the write to {to}",
            o.status,
            model::fmt_ms(o.latency_ms)
        ),
        (Some(r), None) => format!("{} from {r} in {}", o.status, model::fmt_ms(o.latency_ms)),
        (None, _) => format!(
            "{} (no region answered) in {}",
            o.status,
            model::fmt_ms(o.latency_ms)
        ),
    };
    let class = if o.ok { "outcome good" } else { "outcome bad" };
    view! {
        <div class=class role="status" data-role="outcome">
            {o.code.map(|c| view! { <code class="code">{c}</code> " " })}
            <span>{summary}</span>
            {o.message.map(|m| view! { <div class="small">{m}</div> })}
        </div>
    }
}

#[component]
pub fn ItemsPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let s = ItemsState::new();
    provide_context(s);
    leptos::task::spawn_local(async move { s.load(console, None).await });

    let rows = move || {
        s.page
            .get()
            .into_iter()
            .map(|item| {
                let id = item.id.clone();
                let open_id = id.clone();
                let preview = serde_json::Value::Object(item.data.clone()).to_string();
                view! {
                    <tr>
                        <td>
                            <button
                                type="button"
                                class="link"
                                on:click=move |_| {
                                    let id = open_id.clone();
                                    leptos::task::spawn_local(async move { s.open(console, id).await })
                                }
                            >
                                {id}
                            </button>
                        </td>
                        <td class="num">{item.version}</td>
                        <td class="mono small">{item.updated_at}</td>
                        <td>{item.updated_in}</td>
                        <td class="mono small preview">{preview}</td>
                    </tr>
                }
            })
            .collect_view()
    };

    view! {
        <section class="panel" aria-labelledby="items-title">
            <div class="panel-head">
                <h2 id="items-title">"Items"</h2>
                <label class="inline small">
                    "Per page"
                    <select
                        id="page-size"
                        on:change=move |ev| {
                            s.limit.set(event_target_value(&ev).parse().unwrap_or(10));
                            s.back.set(Vec::new());
                            leptos::task::spawn_local(async move { s.load(console, None).await })
                        }
                    >
                        <option value="10" selected>"10"</option>
                        <option value="25">"25"</option>
                        <option value="100">"100"</option>
                    </select>
                </label>
                <button
                    type="button"
                    id="items-refresh"
                    on:click=move |_| {
                        leptos::task::spawn_local(async move {
                            s.load(console, s.current.get_untracked()).await
                        })
                    }
                >
                    "Refresh"
                </button>
            </div>
            <p class="muted small" id="items-note" role="status">{move || s.list_note.get()}</p>
            <div class="table-wrap">
                <table class="items">
                    <thead>
                        <tr>
                            <th scope="col">"id"</th>
                            <th scope="col">"version"</th>
                            <th scope="col">"updated_at"</th>
                            <th scope="col">"in"</th>
                            <th scope="col">"data"</th>
                        </tr>
                    </thead>
                    <tbody id="items-rows">{rows}</tbody>
                </table>
            </div>
            <div class="pager">
                <button
                    type="button"
                    disabled=move || s.back.with(Vec::is_empty)
                    on:click=move |_| {
                        let mut back = s.back.get_untracked();
                        let prev = back.pop().flatten();
                        s.back.set(back);
                        leptos::task::spawn_local(async move { s.load(console, prev).await })
                    }
                >
                    "← Previous"
                </button>
                <button
                    type="button"
                    disabled=move || s.next.with(Option::is_none)
                    on:click=move |_| {
                        let next = s.next.get_untracked();
                        s.back.update(|b| b.push(s.current.get_untracked()));
                        leptos::task::spawn_local(async move { s.load(console, next).await })
                    }
                >
                    "Next →"
                </button>
            </div>
            <Viewer />
            <Editor />
            <StalenessView />
        </section>
    }
}

#[component]
fn Viewer() -> impl IntoView {
    let console = expect_context::<Console>();
    let s = expect_context::<ItemsState>();
    let body = move || {
        s.selected.get().map(|(item, region)| {
            let pretty = serde_json::to_string_pretty(&item).unwrap_or_default();
            let (edit_item, del_id, read_item) = (item.clone(), item.id.clone(), item.clone());
            view! {
                <div class="viewer" id="item-view">
                    <div class="panel-head">
                        <h3>{format!("Item {}", item.id)}</h3>
                        <span class="muted small">{format!("read from {region}")}</span>
                    </div>
                    <pre class="json">{pretty}</pre>
                    <div class="controls">
                        <button
                            type="button"
                            on:click=move |_| {
                                s.editor_id.set(edit_item.id.clone());
                                s.editor_text.set(
                                    serde_json::to_string_pretty(&edit_item.data).unwrap_or_default(),
                                );
                                s.editor_version.set(Some(edit_item.version));
                                s.editor_outcome.set(None);
                            }
                        >
                            "Edit"
                        </button>
                        <button
                            type="button"
                            id="read-other"
                            on:click=move |_| {
                                let other = console.other_than(&read_item.updated_in);
                                s.check_staleness(
                                    console,
                                    read_item.id.clone(),
                                    other,
                                    Expect::Write(read_item.updated_at.clone(), read_item.updated_in.clone()),
                                );
                            }
                        >
                            {format!("Read from {}", console.other_than(&item.updated_in))}
                        </button>
                        // Two steps, no modal dialog: the second button only exists after the first.
                        <button
                            type="button"
                            class="danger"
                            hidden=move || s.confirm_delete.get()
                            on:click=move |_| s.confirm_delete.set(true)
                        >
                            "Delete"
                        </button>
                        <button
                            type="button"
                            class="danger"
                            id="confirm-delete"
                            hidden=move || !s.confirm_delete.get()
                            on:click=move |_| {
                                let id = del_id.clone();
                                leptos::task::spawn_local(async move { s.delete(console, id).await })
                            }
                        >
                            "Really delete"
                        </button>
                        <button
                            type="button"
                            hidden=move || !s.confirm_delete.get()
                            on:click=move |_| s.confirm_delete.set(false)
                        >
                            "Keep"
                        </button>
                    </div>
                </div>
            }
        })
    };
    view! {
        {body}
        {move || s.view_note.get().map(outcome_view)}
    }
}

#[component]
fn Editor() -> impl IntoView {
    let console = expect_context::<Console>();
    let s = expect_context::<ItemsState>();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        leptos::task::spawn_local(async move { s.save(console).await });
    };
    view! {
        <form class="editor" on:submit=submit aria-labelledby="editor-title">
            <h3 id="editor-title">
                {move || match s.editor_version.get() {
                    Some(v) => format!("Edit (If-Match version {v})"),
                    None => "Create or replace".to_owned(),
                }}
            </h3>
            <label for="editor-id">"id"</label>
            <input
                id="editor-id"
                type="text"
                autocomplete="off"
                spellcheck="false"
                placeholder="order-42"
                prop:value=move || s.editor_id.get()
                on:input=move |ev| {
                    s.editor_id.set(event_target_value(&ev));
                    s.editor_version.set(None);
                }
            />
            <label for="editor-data">"data (a JSON object)"</label>
            <textarea
                id="editor-data"
                rows="6"
                spellcheck="false"
                prop:value=move || s.editor_text.get()
                on:input=move |ev| s.editor_text.set(event_target_value(&ev))
            ></textarea>
            <div class="controls">
                <button type="submit" class="primary" id="editor-save" disabled=move || s.busy.get()>
                    "Save (PUT)"
                </button>
                <button
                    type="button"
                    on:click=move |_| {
                        s.editor_id.set(String::new());
                        s.editor_version.set(None);
                        s.editor_outcome.set(None);
                    }
                >
                    "New"
                </button>
            </div>
            <div id="editor-outcome" aria-live="polite">
                {move || s.editor_outcome.get().map(outcome_view)}
            </div>
        </form>
    }
}

#[component]
fn StalenessView() -> impl IntoView {
    let s = expect_context::<ItemsState>();
    let body = move || {
        s.staleness.get().map(|st| {
            let (class, text) = match &st.progress {
                Progress::Reading { attempts, last } => (
                    "outcome warn",
                    format!(
                        "{} in {}: not replicated yet (read {attempts}×, last: {last})…",
                        st.id, st.region
                    ),
                ),
                Progress::Caught { after_ms, attempts } => (
                    "outcome good",
                    format!(
                        "{} in {}: replicated, seen after {} ({attempts} read(s))",
                        st.id,
                        st.region,
                        model::fmt_ms(*after_ms)
                    ),
                ),
                Progress::GaveUp { after_ms, last } => (
                    "outcome bad",
                    format!(
                        "{} in {}: still stale after {} (last: {last})",
                        st.id,
                        st.region,
                        model::fmt_ms(*after_ms)
                    ),
                ),
            };
            let reading = matches!(st.progress, Progress::Reading { .. });
            view! {
                <div class=class id="staleness" role="status" aria-live="polite">
                    <strong>"Read from the other region: "</strong>
                    <span>{text}</span>
                    <button
                        type="button"
                        class="small-button"
                        hidden=!reading
                        on:click=move |_| {
                            s.staleness_run.update_value(|r| *r += 1);
                            s.staleness.set(None);
                        }
                    >
                        "Stop"
                    </button>
                </div>
            }
        })
    };
    view! { {body} }
}
