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

/// The pid in `pidfile` if that process is alive (not a zombie) and one of its
/// arguments contains `needle`: a pid file can outlive its process, and the pid be
/// recycled by another, so the pid alone proves nothing.
pub(crate) fn live_pid(pidfile: &std::path::Path, needle: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| std::str::from_utf8(arg).is_ok_and(|a| a.contains(needle)));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|s| s.trim_start().starts_with('Z'));
    (ours && !zombie).then_some(pid)
}

/// `n` random bytes from the kernel (keys, names that must not be guessed or reused).
pub(crate) fn random_bytes(n: usize) -> strato_common::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| io_err("reading /dev/urandom", e))?;
    Ok(buf)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
