//! Crash points: named places in multi-step changes where tests kill the process.
//!
//! `STRATO_CRASH_AT=<name>` makes the process abort (as a `kill -9` would: no
//! destructors, no flushing) the first time it reaches [`point`] with that name. The
//! end-to-end crash tests start Strato with it set to each step of a change in turn,
//! restart it without, and check that every resource converges to a state the API
//! reported or a later one. Unset (always, outside those tests), a point costs one
//! comparison against a value read once.

use std::sync::OnceLock;

fn target() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| {
        std::env::var("STRATO_CRASH_AT")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Aborts the process here when `STRATO_CRASH_AT` names this point.
pub fn point(name: &str) {
    if target() == Some(name) {
        eprintln!("STRATO_CRASH_AT={name}: aborting here");
        std::process::abort();
    }
}
