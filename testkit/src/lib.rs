//! Tandem's test kit, shared by every crate's tests instead of per-crate copies:
//!
//! - [`Moto`]: moto's server (the AWS API stand-in) on a free port, stopped when dropped.
//! - [`Launch`]/[`Stack`]: a real `tandem up` on a free port block (from [`tandem_local::launch`]).
//! - [`signal`], [`alive`]: signals to processes, one way (nix).
//! - [`until`]: waiting for a condition, with a deadline, instead of sleeping.

mod moto;
mod process;
mod wait;

pub use moto::Moto;
pub use nix::sys::signal::Signal;
pub use process::{alive, signal};
pub use tandem_local::launch::{Launch, Stack};
pub use wait::until;
