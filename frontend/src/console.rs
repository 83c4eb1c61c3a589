//! The console's shared state (provided as a Leptos context): the request log, the admin
//! token, which regions exist and what kind of stack answers. Every request goes through
//! [`Console::send`], so the log sees all of them; writes go through [`Console::write`], which
//! resends them to another region when the primary fails (SPEC §3: CloudFront never fails
//! writes over, clients do).

use crate::model::{self, ControlRegions, Entry, Source};
use crate::net::{self, Call, Reply};
use leptos::prelude::*;
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
    /// Primary first.
    pub regions: RwSignal<Vec<String>>,
    pub stack: RwSignal<Stack>,
    /// Region states from the control API (`up`, `crashed`, ...), local stack only.
    pub states: RwSignal<Vec<(String, String)>>,
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

    pub fn is_local(&self) -> bool {
        matches!(self.stack.get(), Stack::Local { .. })
    }

    pub fn has_control(&self) -> bool {
        self.stack.get() == Stack::Local { control: true } && self.token.with(Option::is_some)
    }

    /// Sends a request and logs it; admin routes get the token.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        admin: bool,
        source: Source,
    ) -> (Reply, u64) {
        self.send_if(method, path, body, admin, None, source).await
    }

    /// [`Console::send`] with an optional `If-Match` version.
    pub async fn send_if(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        admin: bool,
        if_match: Option<u64>,
        source: Source,
    ) -> (Reply, u64) {
        let token = if admin {
            self.token.get_untracked()
        } else {
            None
        };
        let at_ms = net::now_ms();
        let reply = net::fetch(Call {
            method,
            path,
            body,
            token: token.as_deref(),
            if_match,
        })
        .await;
        let seq = self.next_seq.get_value() + 1;
        self.next_seq.set_value(seq);
        let entry = Entry {
            seq,
            at_ms,
            method: method.to_owned(),
            path: path.to_owned(),
            status: reply.status,
            latency_ms: reply.latency_ms,
            region: reply.region.clone(),
            edge_failover: reply.edge_failover.clone(),
            edge_origin: reply.edge_origin.clone(),
            client_failover: None,
            source,
        };
        self.change_log(|log| {
            log.push(entry);
            if log.len() > LOG_CAP {
                log.drain(..log.len() - LOG_CAP);
            }
        });
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
    pub async fn write(
        &self,
        method: &str,
        api_path: &str,
        body: Option<&str>,
        if_match: Option<u64>,
        source: Source,
    ) -> Written {
        let (first, first_seq) = self
            .send_if(method, api_path, body, false, if_match, source)
            .await;
        if !model::write_needs_failover(first.status) {
            return Written {
                reply: first,
                failover: None,
            };
        }
        // A 5xx that names its region says which one failed; the edge's own 502/504 names none,
        // and then it was the primary, where every write through /api goes first.
        let failed = first.region.clone().unwrap_or_else(|| self.primary());
        let other = self.other_than(&failed);
        if other == failed {
            return Written {
                reply: first,
                failover: None,
            };
        }
        let why = first.status_text();
        self.note(first_seq, format!("client: failed, resent to {other}"));
        let path = format!("/region/{other}{api_path}");
        let (second, second_seq) = self
            .send_if(method, &path, body, false, if_match, source)
            .await;
        self.note(second_seq, format!("client: write failed over after {why}"));
        Written {
            reply: second,
            failover: Some((other, why)),
        }
    }

    /// Finds out what serves this origin, and the region names when the control API says them.
    pub async fn detect(&self) {
        let (reply, _) = self
            .send("GET", "/_tandem/regions", None, true, Source::Poll)
            .await;
        let stack = if !reply.json {
            Stack::Cloud
        } else if let Some(body) = reply.parse::<ControlRegions>().filter(|_| reply.ok()) {
            let mut names: Vec<String> = body.regions.iter().map(|r| r.region.clone()).collect();
            // The primary first, the others in the order the stack lists them.
            if let Some(i) = body.regions.iter().position(|r| r.primary) {
                names[..=i].rotate_right(1);
            }
            if names.len() >= 2 {
                self.regions.set(names);
            }
            self.states.set(
                body.regions
                    .into_iter()
                    .map(|r| (r.region, r.state))
                    .collect(),
            );
            Stack::Local { control: true }
        } else {
            Stack::Local { control: false }
        };
        self.stack.set(stack);
    }
}
