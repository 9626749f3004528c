//! berth's modules, as a library: the `berth` binary (src/main.rs) is a thin
//! command-line front over them, and the fuzz targets (fuzz/) call the parsers
//! directly. See ARCHITECTURE.md for what each module owns.

pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exec;
pub mod fault;
pub mod hooks;
pub mod init;
pub mod launcher;
pub mod lifecycle;
pub mod logging;
pub mod seal;
pub mod seccomp;
pub mod state;
pub mod sync;
pub mod syscall;
pub mod tty;
