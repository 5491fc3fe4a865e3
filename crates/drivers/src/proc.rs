//! Processes the drivers start and stop (QEMU, dnsmasq), and the error they share.

use std::time::{Duration, Instant};
use strato_common::Error;

/// An internal error for a failed host operation, with what was being done.
pub(crate) fn io_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Kills `pid` outright.
pub(crate) fn kill(pid: u32) {
    signal(pid, libc::SIGKILL);
}

/// Waits until a process is gone (or a zombie); true if it went in time.
pub(crate) fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
