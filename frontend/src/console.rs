//! The console's shared state (provided as a Leptos context): the request log, the admin
//! token, which regions exist and what kind of stack answers. Every request goes through
//! [`Console::send`], so the log sees all of them; writes go through [`Console::write`], which
//! resends them to another region when the region they went to fails (contract §6: CloudFront
//! never fails writes over, clients do). The active region (contract §6.3) lives here too: writes
//! go to it first, and the log marks each switch.

use crate::model::{self, Entry, Source};
use crate::net::{self, Call, Reply};
use leptos::prelude::*;
use tandem_shared::Consistency;
use tandem_shared::control::{self, ActiveRegion};
use tandem_shared::region::DEFAULT_REGIONS;

/// Entries the log keeps; older ones drop off.
const LOG_CAP: usize = 2000;
/// The log's views redraw at most this often: during a drill the answers come faster than a
/// table and a chart of hundreds of rows should be redrawn, and a busy page would inflate
/// the very latencies it measures.
const LOG_REDRAW_MS: u32 = 250;

/// What serves this origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The first look at `/_tandem/regions` has not come back yet.
    Detecting,
    /// `tandem up`: `/_tandem/*` answers JSON. `control` when it accepted our token.
    Local { control: bool },
    /// CloudFront: `/_tandem/*` is the console's index.html, so there is no control API.
    Cloud,
}

#[derive(Clone, Copy)]
pub struct Console {
    pub log: RwSignal<Vec<Entry>>,
    /// The log changed since its views last redrew.
    log_dirty: StoredValue<bool>,
    next_seq: StoredValue<u64>,
    pub token: RwSignal<Option<String>>,
    /// The regions that serve items, primary first (never the witness: it has no item API).
    pub regions: RwSignal<Vec<String>>,
    pub stack: RwSignal<Stack>,
    /// Region states from the control API (`up`, `crashed`, ...), local stack only; the
    /// witness's too, in the strong mode.
    pub states: RwSignal<Vec<model::ProcessView>>,
    /// The stack's consistency mode (contract §10), as the control API or health said it;
    /// `None` until one of them did.
    pub consistency: RwSignal<Option<Consistency>>,
    /// The active region's value from the control API; `None` until it said one.
    pub active: RwSignal<Option<ActiveRegion>>,
    /// Bumped around each switch this console makes, so that a poll that was out meanwhile
    /// cannot put the old value back (and mark a switch that never happened).
    active_epoch: StoredValue<u64>,
}

/// A write's outcome, after the console's own failover.
#[derive(Debug, Clone)]
pub struct Written {
    pub reply: Reply,
    /// Where the write was resent, and why: `(region, status of the first try)`.
    pub failover: Option<(String, String)>,
}

impl Console {
    pub(crate) fn new() -> Self {
        Console {
            log: RwSignal::new(Vec::new()),
            log_dirty: StoredValue::new(false),
            next_seq: StoredValue::new(0),
            token: RwSignal::new(None),
            regions: RwSignal::new(DEFAULT_REGIONS.iter().map(|r| r.to_string()).collect()),
            stack: RwSignal::new(Stack::Detecting),
            states: RwSignal::new(Vec::new()),
            consistency: RwSignal::new(None),
            active: RwSignal::new(None),
            active_epoch: StoredValue::new(0),
        }
    }

    /// Redraws the log's views when it changed, every [`LOG_REDRAW_MS`].
    pub fn start_log_redraw(self) {
        leptos::task::spawn_local(async move {
            loop {
                net::sleep(LOG_REDRAW_MS).await;
                if self.log_dirty.get_value() {
                    self.log_dirty.set_value(false);
                    self.log.notify();
                }
            }
        });
    }

    fn change_log(&self, f: impl FnOnce(&mut Vec<Entry>)) {
        self.log.update_untracked(f);
        self.log_dirty.set_value(true);
    }

    fn next_seq(&self) -> u64 {
        let seq = self.next_seq.get_value() + 1;
        self.next_seq.set_value(seq);
        seq
    }

    fn push(&self, entry: Entry) {
        self.change_log(|log| {
            log.push(entry);
            if log.len() > LOG_CAP {
                log.drain(..log.len() - LOG_CAP);
            }
        });
    }

    /// Takes a token from `#token=…` into sessionStorage and clears the fragment, so the token
    /// neither stays in the address bar nor reaches history or bookmarks.
    pub fn load_token(&self) {
        if let Some(token) = model::token_from_fragment(&net::take_fragment()) {
            net::session_set(model::TOKEN_KEY, Some(&token));
        }
        self.token.set(net::session_get(model::TOKEN_KEY));
    }

    pub fn set_token(&self, token: Option<String>) {
        let token = token.filter(|t| !t.trim().is_empty());
        net::session_set(model::TOKEN_KEY, token.as_deref());
        self.token.set(token);
    }

    pub fn primary(&self) -> String {
        self.regions.with_untracked(|r| r[0].clone())
    }

    pub fn other_than(&self, region: &str) -> String {
        self.regions
            .with_untracked(|r| model::other_region(r, region).unwrap_or(region).to_owned())
    }

    /// Where `/api/*` goes first (contract §6.3): the active region the control API last said, else
    /// the primary.
    pub fn first_region(&self) -> String {
        let value = self
            .active
            .with_untracked(|a| a.as_ref().and_then(|a| a.region.clone()));
        self.regions
            .with_untracked(|r| model::first_region(value.as_deref(), r))
            .unwrap_or_else(|| self.primary())
    }

    pub fn active_epoch(&self) -> u64 {
        self.active_epoch.get_value()
    }

    /// Called before and after this console switches the active region: a poll begun
    /// before then is stale.
    pub fn bump_active_epoch(&self) {
        self.active_epoch.update_value(|e| *e += 1);
    }

    /// Takes the active region's value. A change from a known value gets a marker line in the
    /// log, at the time it is seen; `source` says who switched (this console, or someone else
    /// whose switch polling noticed).
    pub fn set_active(&self, value: ActiveRegion, source: Source) {
        let before = self.active.get_untracked();
        if before.as_ref() == Some(&value) {
            return;
        }
        // The watcher's report changes every round; only a new region is a switch.
        let switched = before.as_ref().is_some_and(|b| b.region != value.region);
        let regions = self.regions.get_untracked();
        if switched && let Some(first) = model::first_region(value.region.as_deref(), &regions) {
            let default = !value.region.as_ref().is_some_and(|v| regions.contains(v));
            let seq = self.next_seq();
            self.push(Entry::switch(seq, net::now_ms(), first, default, source));
        }
        self.active.set(Some(value));
    }

    /// Takes the mode a poll reported; signals nothing when it is the one already shown, as
    /// every poll reports it.
    pub fn set_consistency(&self, mode: Consistency) {
        if self.consistency.get_untracked() != Some(mode) {
            self.consistency.set(Some(mode));
        }
    }

    /// Takes the control API's region list: the states (witness included), and the mode.
    pub fn set_states(&self, body: model::RegionsView) {
        self.set_consistency(body.consistency);
        self.states.set(body.regions);
    }

    /// The witness's name (strong mode, local stack), once the control API listed it.
    pub fn witness(&self) -> Option<String> {
        self.states
            .with(|s| s.iter().find(|r| r.witness).map(|r| r.region.clone()))
    }

    pub fn is_local(&self) -> bool {
        matches!(self.stack.get(), Stack::Local { .. })
    }

    pub fn has_control(&self) -> bool {
        self.stack.get() == Stack::Local { control: true } && self.token.with(Option::is_some)
    }

    /// A GET of a control route (`/_tandem/…`, with the admin token), logged as polling.
    pub async fn poll_control(&self, route: &str) -> Reply {
        let path = control::path(route);
        self.send(Call::get(&path).admin(), Source::Poll).await.0
    }

    /// Sends a call and logs it (admin calls with the token).
    pub async fn send(&self, call: Call<'_>, source: Source) -> (Reply, u64) {
        let token = self.token.get_untracked();
        let at_ms = net::now_ms();
        let reply = net::fetch(call, token.as_deref()).await;
        let seq = self.next_seq();
        let entry = Entry {
            seq,
            at_ms,
            method: call.method.as_str().to_owned(),
            path: call.path.to_owned(),
            status: reply.status,
            latency_ms: reply.latency_ms,
            region: reply.region.clone(),
            edge_failover: reply.edge_failover.clone(),
            edge_origin: reply.edge_origin.clone(),
            edge_active: reply.edge_active.clone(),
            client_failover: None,
            source,
            marker: None,
        };
        self.push(entry);
        (reply, seq)
    }

    fn note(&self, seq: u64, text: String) {
        self.change_log(|log| {
            if let Some(e) = log.iter_mut().rev().find(|e| e.seq == seq) {
                e.client_failover = Some(text);
            }
        });
    }

    /// A write through `/api/…`, resent to `/region/<other>/api/…` on a 5xx or a network error.
    /// `<other>` is another region than the one the write went to, which the answer names, or
    /// else is the region `/api/*` goes to first.
    pub async fn write(&self, call: Call<'_>, source: Source) -> Written {
        let (first, first_seq) = self.send(call, source).await;
        if !model::write_needs_failover(first.status) {
            return Written {
                reply: first,
                failover: None,
            };
        }
        // A 5xx that names its region says which one failed; the edge's own 502/504 names none,
        // and then it was where writes through /api go first: the active region, which the
        // local edge names in `x-edge-active`, or the primary when none is set.
        let failed = match (&first.region, &first.edge_active) {
            (Some(region), _) => region.clone(),
            (None, Some(active)) => self
                .regions
                .with_untracked(|r| model::first_region(Some(active), r))
                .unwrap_or_else(|| self.primary()),
            (None, None) => self.first_region(),
        };
        let other = self.other_than(&failed);
        if other == failed {
            return Written {
                reply: first,
                failover: None,
            };
        }
        let why = first.status_text();
        self.note(first_seq, format!("client: failed, resent to {other}"));
        let path = format!("/region/{other}{}", call.path);
        let (second, second_seq) = self.send(call.to(&path), source).await;
        self.note(second_seq, format!("client: write failed over after {why}"));
        Written {
            reply: second,
            failover: Some((other, why)),
        }
    }

    /// Finds out what serves this origin, and the region names when the control API says them.
    pub async fn detect(&self) {
        let reply = self.poll_control(control::route::REGIONS).await;
        let stack = if !reply.json {
            Stack::Cloud
        } else if let Some(body) = reply.parse::<model::RegionsView>().filter(|_| reply.ok()) {
            // The witness votes but serves no item: no health card, no origin, no drill target.
            let serving = body.regions.iter().filter(|r| !r.witness);
            let mut names: Vec<String> = serving.clone().map(|r| r.region.clone()).collect();
            // The primary first, the others in the order the stack lists them.
            if let Some(i) = serving.clone().position(|r| r.primary) {
                names[..=i].rotate_right(1);
            }
            if names.len() >= 2 {
                self.regions.set(names);
            }
            self.set_states(body);
            Stack::Local { control: true }
        } else {
            Stack::Local { control: false }
        };
        self.stack.set(stack);
    }
}
