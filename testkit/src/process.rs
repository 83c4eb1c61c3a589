//! Signals to processes, whether one still runs, how a child ended, how much memory one holds,
//! and children that do not outlive their test.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use std::ops::{Deref, DerefMut};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, ExitStatus};

/// Sends `sig` to process `pid`; false when there is no such process.
pub fn signal(pid: u32, sig: Signal) -> bool {
    i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), sig).is_ok())
}

/// Whether `pid` runs (a zombie, exited but not yet reaped, does not count).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// How our child `pid` ended, once it has (`None` while it runs). It is not reaped: whoever holds
/// its `Child` (a [`crate::Stack`]) still waits for it as usual.
pub fn exit_status(pid: u32) -> Option<ExitStatus> {
    let pid = Pid::from_raw(i32::try_from(pid).ok()?);
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags).ok()? {
        WaitStatus::Exited(_, code) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus::from_raw(sig as i32)),
        _ => None,
    }
}

/// A child process killed and reaped when dropped, so that a test that fails half-way leaves
/// nothing running. It derefs to the [`Child`].
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}
