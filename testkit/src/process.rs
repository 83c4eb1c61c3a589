//! Signals to processes, and whether one still runs.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Sends `sig` to process `pid`; false when there is no such process.
pub fn signal(pid: u32, sig: Signal) -> bool {
    i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), sig).is_ok())
}

/// Whether `pid` runs (a zombie, exited but not yet reaped, does not count).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
}
