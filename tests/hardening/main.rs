//! Hardening: berth under load, under faults (SIGKILLed at each step of its
//! work), and under attack from inside its containers. The tests of this binary
//! run one at a time (they compare the whole host before and after), on the
//! host only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../integration/common.rs"]
mod common;

mod attacks;
mod faults;
mod load;

use std::sync::{Mutex, MutexGuard};

/// Held by every test: snapshots of the host must not see another test's work.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until berth knows container `id` (a `run` started elsewhere).
pub fn wait_exists(b: &common::Bundle, id: &str) {
    for _ in 0..500 {
        if b.cmd(&["state", id]).output().unwrap().status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("container {id} never appeared");
}

/// Runs the bundle as container `id` and, while it lives, `berth exec`s
/// `exec_args` into it (at most `max` times); returns the container's output and
/// how many execs ran. The output is read meanwhile: a full pipe must not stall
/// the container.
pub fn execs_during_run(
    b: &common::Bundle,
    id: &str,
    exec_args: &[&str],
    max: usize,
) -> (String, usize) {
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut run = b.cmd(&["run", "--bundle", &bundle, id]);
    run.stdout(std::process::Stdio::piped());
    let child = run.spawn().unwrap();
    let output = std::thread::spawn(move || child.wait_with_output().unwrap());
    wait_exists(b, id);
    let mut args = vec!["exec", id];
    args.extend_from_slice(exec_args);
    let mut execs = 0;
    while execs < max && b.cmd(&["state", id]).output().unwrap().status.success() {
        let _ = b.berth(&args);
        execs += 1;
    }
    let out = output.join().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), execs)
}
