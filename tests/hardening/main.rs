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
