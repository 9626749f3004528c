//! Integration tests: real busybox containers run by the berth binary, as root.
//! Every assertion is about what is observed inside the container or on the host.

// A failed unwrap in a test is a test failure with its location: what tests want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cgroups;
mod common;
mod console;
mod errors;
mod exec;
mod gpu;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod seccomp;
