//! Operating a Tandem stack from outside it: what the local stack, the AWS watcher, the
//! `tandem` command, the test kit and xtask share, without the API, its stores or any AWS SDK.
//!
//! Layout:
//! - [`client`]: the one typed client of a stack's control API (`/_tandem/*`) and of the admin
//!   fault routes, through any edge.
//! - [`confirm`]: whether `/api/*` through an edge is routed by the active region a store holds
//!   (the value the edge routed by, echoed in every answer), and waiting until it is.
//! - [`items`]: the one typed client of the item routes (`/api/items`), through an edge, to one
//!   region through it, or straight to a region.
//! - [`launch`]: a `tandem up` child process on a free port block (the bench and the tests).
//! - [`memory`]: a process's resident memory, now and at its peak (the bench, the tests).
//! - [`watcher`]: the health watcher's loop, over wherever the active region is kept.
//! - [`ports`]: ports for a local stack, outside the ephemeral range.

pub mod client;
pub mod confirm;
pub mod items;
pub mod launch;
pub mod memory;
pub mod ports;
#[cfg(test)]
mod testing;
pub mod watcher;

/// A random token of 256 bits, hex: admin tokens, origin secrets, replication keys.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
