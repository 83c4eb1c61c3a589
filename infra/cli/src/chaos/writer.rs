//! One chaos client: PUTs, DELETEs and (in a strong run) GETs of a few ids, through the edge and
//! straight to each region, each recorded with what came back and when.

use super::history::{Kind, Op, Outcome};
use super::strong::nonce_of;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tandem_api::store::now_ms;
use tandem_ops::items::ItemClient;
use tandem_shared::item::{Data, parse_timestamp};
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::rng::Rng;
use tandem_shared::sync::lock;

/// The id of key `n`.
pub fn id_of(n: u64) -> String {
    format!("chaos-{n}")
}

/// What a writer needs: its clients, its choices, the run's clock, and where to record.
pub struct Writer {
    pub w: usize,
    pub rng: Rng,
    pub keys: usize,
    /// Strong runs read too: reads are what the linearizability check judges.
    pub reads: bool,
    pub edge: ItemClient,
    /// The run's monotonic clock, shared by every writer ([`Op::start_us`]).
    pub clock: Instant,
    pub ops: Arc<Mutex<Vec<Op>>>,
}

impl Writer {
    /// Sends operations until `stop`, recording each.
    pub async fn run(mut self, stop: Arc<AtomicBool>) {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let op = self.one(n).await;
            lock(&self.ops).push(op);
        }
    }

    /// Operation `n`: a random id, a random way in, a random kind.
    async fn one(&mut self, n: u64) -> Op {
        let id = id_of(self.rng.below(self.keys as u64));
        let (via, items) = match self.rng.below(5) {
            0 => (PRIMARY, self.edge.in_region(PRIMARY)),
            1 => (SECONDARY, self.edge.in_region(SECONDARY)),
            _ => ("edge", self.edge.clone()),
        };
        let roll = self.rng.below(100);
        let kind = match roll {
            r if self.reads && r < 30 => Kind::Get,
            r if r < 80 => Kind::Put,
            _ => Kind::Delete,
        };
        let nonce = (self.w as u64) << 32 | n;
        let (start_ms, start_us) = (now_ms(), self.micros());
        let (outcome, found) = match kind {
            Kind::Put => (put(&items, &id, self.w, n, nonce).await, None),
            Kind::Delete => (delete(&items, &id).await, None),
            Kind::Get => get(&items, &id).await,
        };
        Op {
            writer: self.w,
            id,
            kind,
            via: via.to_owned(),
            nonce: (kind == Kind::Put).then_some(nonce),
            found,
            start_ms,
            end_ms: now_ms(),
            start_us,
            end_us: self.micros(),
            outcome,
        }
    }

    fn micros(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }
}

/// A PUT of `{"w", "n", "nonce"}`: its outcome, with the write's stamp when acknowledged.
async fn put(items: &ItemClient, id: &str, w: usize, n: u64, nonce: u64) -> Outcome {
    let data = Data::from_iter([
        ("w".to_owned(), w.into()),
        ("n".to_owned(), n.into()),
        ("nonce".to_owned(), nonce.into()),
    ]);
    match items.put(id, &data, None).await {
        Ok(a) if a.is_success() => {
            let item = a.into_ok().map(|r| r.item);
            Outcome::Ok {
                updated_at_ms: item.as_ref().and_then(|i| parse_timestamp(&i.updated_at)),
                updated_in: item.map(|i| i.updated_in),
            }
        }
        Ok(a) => failed(a.status),
        Err(e) => Outcome::Unknown {
            error: e.error.to_string(),
        },
    }
}

async fn delete(items: &ItemClient, id: &str) -> Outcome {
    match items.delete(id, None).await {
        Ok(a) if a.is_success() => Outcome::Ok {
            updated_at_ms: None,
            updated_in: None,
        },
        Ok(a) => failed(a.status),
        Err(e) => Outcome::Unknown {
            error: e.error.to_string(),
        },
    }
}

/// A GET: 200 and 404 are answers (what was found); anything else saw nothing.
async fn get(items: &ItemClient, id: &str) -> (Outcome, Option<u64>) {
    let answered = Outcome::Ok {
        updated_at_ms: None,
        updated_in: None,
    };
    match items.get(id).await {
        Ok(a) if a.status.as_u16() == 200 => match a.into_ok() {
            Some(read) => (answered, nonce_of(&read.item.data)),
            None => (
                Outcome::Unknown {
                    error: "a 200 without an item".into(),
                },
                None,
            ),
        },
        Ok(a) if a.status.as_u16() == 404 => (answered, None),
        Ok(a) => (failed(a.status), None),
        Err(e) => (
            Outcome::Unknown {
                error: e.error.to_string(),
            },
            None,
        ),
    }
}

/// A refusal: a 5xx may come after the origin applied the write (a read timeout at the edge, a
/// leader that committed after the follower gave up), so it is unknown; a 4xx did nothing.
fn failed(status: reqwest::StatusCode) -> Outcome {
    if status.is_server_error() {
        Outcome::Unknown {
            error: format!("status {}", status.as_u16()),
        }
    } else {
        Outcome::Failed {
            status: status.as_u16(),
        }
    }
}
