//! The items panel: a paged list, one item's view, a JSON editor whose save shows the API's
//! error code inline, delete, and the staleness check that reads a written item back from the
//! other region until it has replicated.

use crate::console::{Console, Written};
use crate::model::{self, Source};
use crate::net::{self, Call, encode};
use crate::widgets::ColumnHeads;
use leptos::prelude::*;
use tandem_shared::Item;
use tandem_shared::wire::path;
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

/// The editor's contents when Save was pressed: what one save sends.
#[derive(Debug, Clone)]
struct Draft {
    id: String,
    /// The data as typed.
    data: String,
    /// Sent as `If-Match` when editing an item that was loaded.
    if_match: Option<u64>,
}

/// One page of the list, and the line about who answered it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Page {
    items: Vec<Item>,
    next: Option<String>,
    note: String,
}

/// The panel's own state; the server calls that change it are in [`ItemCalls`].
#[derive(Clone, Copy)]
pub struct ItemsState {
    /// Cursors of the pages before the current one (`None`: the first page).
    back: RwSignal<Vec<Option<String>>>,
    /// The page shown (`None`: the first).
    cursor: RwSignal<Option<String>>,
    limit: RwSignal<u32>,
    /// Bumped to read the page again: Refresh, and after a write changed it.
    refresh: RwSignal<u64>,
    selected: RwSignal<Option<(Item, String)>>,
    view_note: RwSignal<Option<Outcome>>,
    confirm_delete: RwSignal<bool>,
    editor_id: RwSignal<String>,
    editor_text: RwSignal<String>,
    /// Sent as `If-Match` when editing an item that was loaded.
    editor_version: RwSignal<Option<u64>>,
    staleness: RwSignal<Option<Staleness>>,
    staleness_run: StoredValue<u64>,
}

/// The list page as a resource of the signals that pick it, and the buttons' server calls as
/// actions: their `pending` disables the buttons while a call is out.
#[derive(Clone, Copy)]
struct ItemCalls {
    page: LocalResource<Result<Page, String>>,
    open: Action<String, ()>,
    save: Action<Draft, Outcome>,
    delete: Action<String, ()>,
}

impl ItemCalls {
    fn new(console: Console, s: ItemsState) -> Self {
        ItemCalls {
            page: LocalResource::new(move || {
                let (limit, cursor) = (s.limit.get(), s.cursor.get());
                s.refresh.track();
                load(console, limit, cursor)
            }),
            open: Action::new_local(move |id: &String| s.open(console, id.clone())),
            save: Action::new_local(move |draft: &Draft| s.save(console, draft.clone())),
            delete: Action::new_local(move |id: &String| s.delete(console, id.clone())),
        }
    }
}

/// Reads one page of the list.
async fn load(console: Console, limit: u32, cursor: Option<String>) -> Result<Page, String> {
    let path = path::list(Some(limit as usize), cursor.as_deref());
    let (reply, _) = console.send(Call::get(&path), Source::User).await;
    match reply.parse::<ListResponse>().filter(|_| reply.ok()) {
        Some(list) => Ok(Page {
            note: format!(
                "{} item(s), answered by {} in {}",
                list.items.len(),
                list.region,
                model::fmt_ms(reply.latency_ms)
            ),
            items: list.items,
            next: list.next_cursor,
        }),
        None => Err(match model::error_of(&reply.body) {
            Some((code, message)) => format!("{} {code}: {message}", reply.status_text()),
            None => format!("list failed: {}", reply.status_text()),
        }),
    }
}

impl ItemsState {
    fn new() -> Self {
        ItemsState {
            back: RwSignal::new(Vec::new()),
            cursor: RwSignal::new(None),
            limit: RwSignal::new(10),
            refresh: RwSignal::new(0),
            selected: RwSignal::new(None),
            view_note: RwSignal::new(None),
            confirm_delete: RwSignal::new(false),
            editor_id: RwSignal::new(String::new()),
            editor_text: RwSignal::new("{\n  \"hello\": \"world\"\n}".into()),
            editor_version: RwSignal::new(None),
            staleness: RwSignal::new(None),
            staleness_run: StoredValue::new(0),
        }
    }

    /// Reads the page shown again.
    fn reload(self) {
        self.refresh.update(|n| *n += 1);
    }

    async fn open(self, console: Console, id: String) {
        let path = path::item(&encode(&id));
        let (reply, _) = console.send(Call::get(&path), Source::User).await;
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

    async fn save(self, console: Console, draft: Draft) -> Outcome {
        // The data text goes to the API as typed, so a mistake in it comes back as the API's
        // own error code (invalid_json, bad_request, …) rather than as a local guess.
        let body = format!("{{\"data\": {}}}", draft.data);
        let path = path::item(&encode(&draft.id));
        let written = console
            .write(
                Call::put(&path, &body).if_match(draft.if_match),
                Source::User,
            )
            .await;
        let outcome = Outcome::of(&written);
        if let Some(r) = written.reply.parse::<ItemResponse>().filter(|_| outcome.ok) {
            self.editor_version.set(Some(r.item.version));
            let expect = Expect::Write(r.item.updated_at.clone(), r.item.updated_in.clone());
            let other = console.other_than(&r.region);
            self.selected.set(Some((r.item, r.region)));
            self.view_note.set(None);
            self.check_staleness(console, draft.id, other, expect);
            self.reload();
        }
        outcome
    }

    async fn delete(self, console: Console, id: String) {
        let path = path::item(&encode(&id));
        let written = console.write(Call::delete(&path), Source::User).await;
        let outcome = Outcome::of(&written);
        if outcome.ok {
            let accepted = written.reply.region.clone().unwrap_or(console.primary());
            self.selected.set(None);
            self.check_staleness(console, id, console.other_than(&accepted), Expect::Gone);
            self.reload();
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
            let path = path::in_region(&region, &path::item(&encode(&id)));
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
                let (reply, _) = console.send(Call::get(&path), Source::Check).await;
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
    let calls = ItemCalls::new(console, s);
    provide_context(s);
    provide_context(calls);
    // A failed read keeps the last page on screen; the note above it says what went wrong.
    let shown = Memo::new(move |last: Option<&Page>| match calls.page.get() {
        Some(Ok(page)) => page,
        _ => last.cloned().unwrap_or_default(),
    });
    let note = move || {
        let note = calls.page.map(|r| match r {
            Ok(page) => page.note.clone(),
            Err(e) => e.clone(),
        });
        note.unwrap_or_default()
    };
    view! {
        <section class="panel" aria-labelledby="items-title">
            <div class="panel-head">
                <h2 id="items-title">"Items"</h2>
                <PageSize />
                <button type="button" id="items-refresh" on:click=move |_| s.reload()>
                    "Refresh"
                </button>
            </div>
            <p class="muted small" id="items-note" role="status">{note}</p>
            <div class="table-wrap">
                <table class="items">
                    <ColumnHeads names=&["id", "version", "updated_at", "in", "data"] />
                    <tbody id="items-rows">
                        <ItemRows page=shown />
                    </tbody>
                </table>
            </div>
            <Pager />
            <Viewer />
            <Editor />
            <StalenessView />
        </section>
    }
}

/// A new page size starts over from the first page.
#[component]
fn PageSize() -> impl IntoView {
    let s = expect_context::<ItemsState>();
    view! {
        <label class="inline small">
            "Per page"
            <select
                id="page-size"
                on:change=move |ev| {
                    s.limit.set(event_target_value(&ev).parse().unwrap_or(10));
                    s.back.set(Vec::new());
                    s.cursor.set(None);
                }
            >
                <option value="10" selected>"10"</option>
                <option value="25">"25"</option>
                <option value="100">"100"</option>
            </select>
        </label>
    }
}

/// The page's items; a click on an id opens that item.
#[component]
fn ItemRows(page: Memo<Page>) -> impl IntoView {
    let calls = expect_context::<ItemCalls>();
    move || {
        page.get()
            .items
            .into_iter()
            .map(|item| {
                let id = item.id.clone();
                let preview = item.data.as_str().to_owned();
                view! {
                    <tr>
                        <td>
                            <button
                                type="button"
                                class="link"
                                on:click=move |_| {
                                    calls.open.dispatch(id.clone());
                                }
                            >
                                {item.id}
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
    }
}

/// Moves through the pages by their cursors, keeping the ones before for the way back.
#[component]
fn Pager() -> impl IntoView {
    let s = expect_context::<ItemsState>();
    let calls = expect_context::<ItemCalls>();
    // Only a page that was read names the next one; after a failed read, Refresh retries.
    let next = move || {
        calls
            .page
            .map(|r| r.as_ref().ok().and_then(|p| p.next.clone()))
            .flatten()
    };
    let previous = move |_| {
        let cursor = s.back.try_update(|b| b.pop().flatten()).flatten();
        s.cursor.set(cursor);
    };
    let forward = move |_| {
        if let Some(cursor) = next() {
            s.back.update(|b| b.push(s.cursor.get_untracked()));
            s.cursor.set(Some(cursor));
        }
    };
    view! {
        <div class="pager">
            <button type="button" disabled=move || s.back.with(Vec::is_empty) on:click=previous>
                "← Previous"
            </button>
            <button type="button" disabled=move || next().is_none() on:click=forward>
                "Next →"
            </button>
        </div>
    }
}

/// The item last opened or saved, or what went wrong reading, saving or deleting one.
#[component]
fn Viewer() -> impl IntoView {
    let s = expect_context::<ItemsState>();
    let body = move || {
        s.selected.get().map(|(item, region)| {
            let pretty = serde_json::to_string_pretty(&item).unwrap_or_default();
            view! {
                <div class="viewer" id="item-view">
                    <div class="panel-head">
                        <h3>{format!("Item {}", item.id)}</h3>
                        <span class="muted small">{format!("read from {region}")}</span>
                    </div>
                    <pre class="json">{pretty}</pre>
                    <ItemControls item=item />
                </div>
            }
        })
    };
    view! {
        {body}
        {move || s.view_note.get().map(outcome_view)}
    }
}

/// Edit, read back from the other region, delete.
#[component]
fn ItemControls(item: Item) -> impl IntoView {
    let console = expect_context::<Console>();
    let s = expect_context::<ItemsState>();
    let calls = expect_context::<ItemCalls>();
    let other = console.other_than(&item.updated_in);
    let (edit_item, read_item, id) = (item.clone(), item.clone(), item.id);
    let edit = move |_| {
        s.editor_id.set(edit_item.id.clone());
        s.editor_text
            .set(serde_json::to_string_pretty(&edit_item.data.to_map()).unwrap_or_default());
        s.editor_version.set(Some(edit_item.version));
        calls.save.clear();
    };
    let read_other = move |_| {
        let expect = Expect::Write(read_item.updated_at.clone(), read_item.updated_in.clone());
        let other = console.other_than(&read_item.updated_in);
        s.check_staleness(console, read_item.id.clone(), other, expect);
    };
    view! {
        <div class="controls">
            <button type="button" on:click=edit>
                "Edit"
            </button>
            <button type="button" id="read-other" on:click=read_other>
                {format!("Read from {other}")}
            </button>
            <DeleteButtons id=id />
        </div>
    }
}

/// Two steps, no modal dialog: the second button only shows after the first.
#[component]
fn DeleteButtons(id: String) -> impl IntoView {
    let s = expect_context::<ItemsState>();
    let calls = expect_context::<ItemCalls>();
    let deleting = calls.delete.pending();
    view! {
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
            disabled=move || deleting.get()
            on:click=move |_| {
                calls.delete.dispatch(id.clone());
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
    }
}

#[component]
fn Editor() -> impl IntoView {
    let s = expect_context::<ItemsState>();
    let calls = expect_context::<ItemCalls>();
    let saving = calls.save.pending();
    let outcome = calls.save.value();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        calls.save.dispatch(Draft {
            id: s.editor_id.get_untracked(),
            data: s.editor_text.get_untracked(),
            if_match: s.editor_version.get_untracked(),
        });
    };
    let new = move |_| {
        s.editor_id.set(String::new());
        s.editor_version.set(None);
        calls.save.clear();
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
                <button type="submit" class="primary" id="editor-save" disabled=move || saving.get()>
                    "Save (PUT)"
                </button>
                <button type="button" on:click=new>
                    "New"
                </button>
            </div>
            <div id="editor-outcome" aria-live="polite">
                {move || outcome.get().map(outcome_view)}
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
