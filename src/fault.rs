//! Fault injection for the hardening tests: with `BERTH_FAULT=<point>` berth is
//! SIGKILLed at that point of its work, as an OOM kill or a crash would end it
//! (or, at a point inside init, init stalls there for the test to kill berth),
//! so the tests can check that `delete --force`, `list` and `state` still work
//! and that nothing is left behind. Unset, a point costs one getenv.

use nix::sys::signal::{kill, Signal};
use nix::unistd::getpid;

fn armed(point: &str) -> bool {
    std::env::var_os("BERTH_FAULT").is_some_and(|v| v == point)
}

/// berth kills itself here.
pub fn point(name: &str) {
    if armed(name) {
        let _ = kill(getpid(), Signal::SIGKILL);
    }
}

/// The container's init stalls here for good (as if stuck), after creating the
/// file named by BERTH_FAULT_MARK, for the test to kill berth while init is in
/// the middle of this step (from inside its pid namespace init can neither
/// name berth nor stop itself).
pub fn stall_at(name: &str) {
    if armed(name) {
        if let Some(mark) = std::env::var_os("BERTH_FAULT_MARK") {
            let _ = std::fs::write(mark, b"");
        }
        loop {
            nix::unistd::pause();
        }
    }
}
