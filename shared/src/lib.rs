//! Tandem's external contract (docs/contract.md §1–§5), shared by the API, the console and the tools.
//!
//! Layout:
//! - [`item`]: the `Item` a client sees and the `Record` a store keeps (tombstones and
//!   last-writer-wins order included).
//! - [`wire`]: request and response bodies of every route, and the item routes' paths
//!   ([`wire::path`]).
//! - [`error`]: the error body and its codes, each with its HTTP status.
//! - [`consistency`]: the stack's consistency mode (eventual, strong), one switch everywhere.
//! - [`control`]: the local control plane (`/_tandem/*`), region states, edge settings and the
//!   `Outage` vocabulary every tool and the console share.
//! - [`drill`]: what an outage drill records and reports (CLI and console alike).
//! - [`fault`]: the admin fault modes a region can be put in.
//! - [`replication`]: how replication links, digests and settings are reported.
//! - [`routing`]: where the edge sends `/api/*` (contract §6, §6.3: the active region), one rule for
//!   the local edge and the CloudFront Function alike.
//! - [`watch`]: the health watcher's rule for switching the active region automatically.
//! - [`rng`]: the one small deterministic random-number generator (SplitMix64).
//! - [`stats`]: percentiles, computed one way everywhere.
//! - [`sync`]: locks taken one way everywhere (a poisoned lock is still used).
//! - [`bench`]: a row of `cargo xtask bench`'s summary (figure, reference, ratio, goal).
//! - [`validate`]: the rules a request must pass before it reaches a store.
//! - [`headers`] and [`region`]: names that both sides of the wire must agree on.
//!
//! This crate compiles to `wasm32-unknown-unknown`, so it stays free of tokio and AWS crates.

pub mod bench;
pub mod consistency;
pub mod control;
pub mod drill;
pub mod error;
pub mod fault;
pub mod headers;
pub mod item;
pub mod region;
pub mod replication;
pub mod rng;
pub mod routing;
pub mod stats;
pub mod sync;
pub mod validate;
pub mod watch;
pub mod wire;

pub use consistency::Consistency;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use fault::{Fault, FaultState};
pub use item::{Item, Record};
