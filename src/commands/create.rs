//! `berth create`: set a container up, blocked before exec of its process.

use crate::cli::CreateArgs;
use crate::error::Error;
use crate::launcher::{self, CreateOpts};
use crate::state::Store;

pub fn run(store: &Store, args: &CreateArgs, systemd_cgroup: bool) -> Result<i32, Error> {
    launcher::create(store, &opts(args, systemd_cgroup))?;
    Ok(0)
}

/// create's options; $LISTEN_FDS descriptors (socket activation) are preserved too.
pub fn opts(args: &CreateArgs, systemd_cgroup: bool) -> CreateOpts {
    let listen = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    CreateOpts {
        id: args.id.clone(),
        systemd_cgroup,
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        no_pivot: args.no_pivot,
        preserve_fds: args.preserve_fds.max(0) + listen.max(0),
        tty_relay: false,
        gpu: args.gpu.clone(),
    }
}
