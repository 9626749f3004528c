//! What happens to a container after create: start (release init through
//! exec.fifo, then poststart hooks), signals (through a pidfd, checked against the
//! recorded start time so a reused pid is never hit), and destroy (poststop hooks,
//! then the state dir goes).

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::config;
use crate::error::{Error, ResultExt};
use crate::hooks::{self, HookKind};
use crate::logging;
use crate::state::{self, ContainerDir, Record, Status};
use crate::syscall::{pidfd_open, pidfd_send_signal};

/// Loads a container's record; a directory without one is a create that died early.
pub fn load(dir: &ContainerDir) -> Result<Record, Error> {
    dir.read()?
        .ok_or_else(|| Error::msg(format!("container {} does not exist", dir.id)))
}

/// Releases a created container's init and runs poststart hooks.
pub fn start(dir: &ContainerDir, rec: &Record) -> Result<(), Error> {
    match dir.status(rec) {
        Status::Created => {}
        Status::Stopped => return Err(Error::msg("cannot start a container that has stopped")),
        Status::Running | Status::Paused => {
            return Err(Error::msg("cannot start an already running container"))
        }
        Status::Creating => {
            return Err(Error::msg(format!(
                "cannot start container {} while it is being created",
                rec.id
            )))
        }
    }
    let fifo = dir.fifo_path();
    let mut f = match crate::init::resolve::open_plain(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK) {
        Ok(fd) => std::fs::File::from(fd),
        Err(nix::errno::Errno::ENXIO) | Err(nix::errno::Errno::ENOENT) => {
            return Err(Error::msg("container not running"))
        }
        Err(e) => return Err(e).with(|| format!("open {}", fifo.display())),
    };
    f.write_all(b"0")
        .with(|| format!("write {}", fifo.display()))?;
    crate::fault::point("start");
    drop(f);
    let _ = std::fs::remove_file(&fifo);
    let spec = saved_spec(dir)?;
    let state = rec.hook_state(Status::Running);
    if let Err(e) = hooks::run_all(
        HookKind::Poststart,
        spec.hooks().as_ref(),
        &state,
        Some(&rec.bundle),
    ) {
        logging::warn(&format!("poststart hook failed: {e}"));
    }
    Ok(())
}

/// The config.json frozen at create time.
pub fn saved_spec(dir: &ContainerDir) -> Result<oci_spec::runtime::Spec, Error> {
    let raw = config::read_limited(&dir.config_path())?;
    Ok(config::parse(&raw)?)
}

/// Sends `sig` to init, if it is still the process create started.
pub fn signal(rec: &Record, sig: Signal) -> Result<(), Error> {
    let pidfd = pidfd_open(rec.pid).map_err(|_| Error::msg("container not running"))?;
    if !state::process_alive(rec.pid, rec.pid_start) {
        return Err(Error::msg("container not running"));
    }
    pidfd_send_signal(pidfd.as_fd(), sig as i32).map_err(|e| match e {
        nix::errno::Errno::ESRCH => Error::msg("container not running"),
        e => Error::Sys {
            what: format!("kill {} {sig}", rec.pid),
            errno: e,
        },
    })
}

/// Signals every process of the container: those in its cgroup (frozen around
/// the signal so that none forks away), else those in its pid namespace.
pub fn signal_all(rec: &Record, sig: Signal) -> Result<(), Error> {
    if !rec.cgroup.dirs.is_empty() {
        signal_cgroup(rec, sig)?;
        return Ok(());
    }
    signal_pid_ns(rec, sig)
}

/// Signals what is in the cgroup; returns how many processes were signalled.
fn signal_cgroup(rec: &Record, sig: Signal) -> Result<usize, Error> {
    // An empty cgroup (the usual case at delete) costs one read, no freeze.
    if rec.cgroup.pids()?.is_empty() {
        return Ok(0);
    }
    let was_frozen = rec.cgroup.is_frozen().unwrap_or(false);
    let froze = !was_frozen && rec.cgroup.freeze(true).is_ok();
    let pids = rec.cgroup.pids();
    if let Ok(pids) = &pids {
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), sig);
        }
    }
    // A frozen process only acts on SIGKILL once thawed (v1).
    if froze || (was_frozen && sig == Signal::SIGKILL) {
        let _ = rec.cgroup.freeze(false);
    }
    Ok(pids?.len())
}

/// SIGKILLs everything left in the container's cgroup and waits (up to 5 s) until
/// it is empty, so that the cgroup can be removed.
fn kill_cgroup(rec: &Record) -> Result<(), Error> {
    if rec.cgroup.dirs.is_empty() {
        return Ok(());
    }
    for _ in 0..500 {
        match signal_cgroup(rec, Signal::SIGKILL) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Err(Error::msg(format!(
        "container {}: processes survived SIGKILL in its cgroup",
        rec.id
    )))
}

/// Sends `sig` to every process in the container's pid namespace (or, sharing the
/// host's, to init alone).
fn signal_pid_ns(rec: &Record, sig: Signal) -> Result<(), Error> {
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", rec.pid))
        .map_err(|_| Error::msg("container not running"))?;
    let host = std::fs::read_link("/proc/self/ns/pid").with(|| "read /proc/self/ns/pid".into())?;
    if ns == host {
        return signal(rec, sig);
    }
    let procs =
        procfs::process::all_processes().map_err(|e| Error::msg(format!("list processes: {e}")))?;
    for p in procs.flatten() {
        if std::fs::read_link(format!("/proc/{}/ns/pid", p.pid)).is_ok_and(|n| n == ns) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig);
        }
    }
    Ok(())
}

/// Kills init with SIGKILL and waits until it is gone (at most 10 s).
pub fn kill_and_wait(rec: &Record) -> Result<(), Error> {
    let Ok(pidfd) = pidfd_open(rec.pid) else {
        return Ok(());
    };
    if !state::process_alive(rec.pid, rec.pid_start) {
        return Ok(());
    }
    let _ = pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL as i32);
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(Duration::from_secs(10)).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) => Err(Error::msg(format!(
            "container {}: init {} did not die after SIGKILL",
            rec.id, rec.pid
        ))),
        _ => Ok(()),
    }
}

/// Kills whatever of the container still runs (everything in its cgroup, then
/// init), runs poststop hooks when `poststop` (failures are warnings), removes
/// the cgroup and the state dir. Without a record only the state dir is left.
pub fn destroy(dir: ContainerDir, rec: Option<&Record>, poststop: bool) -> Result<(), Error> {
    if let Some(rec) = rec {
        kill_cgroup(rec)?;
        kill_and_wait(rec)?;
        crate::fault::point("delete");
    }
    if let (Some(rec), true, Ok(spec)) = (rec, poststop, saved_spec(&dir)) {
        let state = rec.hook_state(Status::Stopped);
        if let Err(e) = hooks::run_all(
            HookKind::Poststop,
            spec.hooks().as_ref(),
            &state,
            Some(&rec.bundle),
        ) {
            logging::warn(&format!("poststop hook failed: {e}"));
        }
    }
    if let Some(rec) = rec {
        rec.cgroup.destroy()?;
    }
    dir.remove()?;
    Ok(())
}
