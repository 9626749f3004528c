//! `berth run`: create and start; unless --detach, forward signals to the
//! container's init, wait for it, delete the container (unless --keep) and exit
//! with its status (128+N for death by signal N).

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::error::{Error, ResultExt};
use crate::launcher;
use crate::lifecycle;
use crate::state::Store;

/// Signals berth passes on to the container instead of acting on them.
pub const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

pub fn run(store: &Store, args: &RunArgs, systemd_cgroup: bool) -> Result<i32, Error> {
    let mut opts = super::create::opts(&args.create, systemd_cgroup);
    opts.tty_relay = !args.detach;
    let created = launcher::create(store, &opts)?;
    if args.detach {
        lifecycle::start(&created.dir, &created.record)?;
        return Ok(0);
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block().with(|| "block signals".into())?;
    let init = created.record.pid;
    let master = created
        .console
        .as_ref()
        .map(crate::tty::receive_master)
        .transpose();
    let started = master.and_then(|m| lifecycle::start(&created.dir, &created.record).map(|()| m));
    created.dir.unlock();
    let code = match started {
        Ok(Some(master)) => crate::tty::relay(master, init, &set, || reap(init))?,
        Ok(None) => wait_forwarding(init, &set)?,
        Err(e) => {
            let _ = lifecycle::kill_and_wait(&created.record);
            let _ = reap(created.record.pid);
            created.dir.lock()?;
            let _ = lifecycle::destroy(created.dir, Some(&created.record), false);
            return Err(e);
        }
    };
    if !args.keep {
        created.dir.lock()?;
        lifecycle::destroy(created.dir, Some(&created.record), true)?;
    }
    Ok(code)
}

/// Reaps children; Some(status) once init is among them.
pub fn reap(init: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            // No child at all: init is gone and was reaped elsewhere.
            Err(_) => return Some(255),
        }
    }
}

pub fn wait_forwarding(init: i32, set: &SigSet) -> Result<i32, Error> {
    loop {
        if let Some(code) = reap(init) {
            return Ok(code);
        }
        let sig = set.wait().with(|| "wait for signals".into())?;
        if sig != Signal::SIGCHLD {
            let _ = kill(Pid::from_raw(init), sig);
        }
    }
}
