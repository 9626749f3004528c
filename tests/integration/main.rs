//! Integration tests: real busybox containers run by the berth binary, as root.
//! Every assertion is about what is observed inside the container or on the host.

mod common;
mod console;
mod errors;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
