//! Tandem's test kit, shared by every crate's tests instead of per-crate copies:
//!
//! - [`Moto`]: moto's server (the AWS API stand-in) on a free port, stopped when dropped.
//! - [`Launch`]/[`Stack`]: a real `tandem up` on a free port block (from [`tandem_ops::launch`]),
//!   and [`region_args`] for a test that starts one region process itself.
//! - [`stack`]: that stack as tests use it: short edge timeouts, known secrets, HTTP helpers.
//! - [`signal`], [`alive`], [`exit_status`]: signals to processes, one way (nix).
//! - [`KillOnDrop`]: a child process that does not outlive its test (its memory:
//!   [`tandem_ops::memory`]).
//! - [`until`]: waiting for a condition, with a deadline, instead of sleeping.
//! - [`free_block`]: ports outside the ephemeral range, as the stacks take theirs.

mod moto;
mod process;
pub mod stack;
mod wait;

pub use moto::{Moto, Recorded};
pub use nix::sys::signal::Signal;
pub use process::{KillOnDrop, alive, exit_status, signal};
pub use tandem_ops::launch::{Launch, Stack, region_args};
pub use tandem_ops::ports::free_block;
pub use wait::until;
