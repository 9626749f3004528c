//! The parent side of `exec`: a new process in a created or running container.
//! berth forks stage-1, puts it in the container's cgroup, and stage-1 joins every
//! namespace of the container's init that differs from berth's own in one
//! setns(pidfd) call, then forks the process itself (so the pid namespace takes
//! effect). That process gets the terminal, capabilities, rlimits, user, cwd and
//! the container's seccomp profile, closes what is not meant for it, and execs.
//! The sync socket is close-on-exec: EOF means the exec happened; an Error
//! message means it failed, and only this exec fails.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, ResultExt};
use crate::init::{self, InitError};
use crate::lifecycle;
use crate::state::{self, Status, Store};
use crate::sync::{self, Msg, SyncError};
use crate::syscall::{clone_fork, pidfd_open, Forked};

/// exec's options, as the command line gives them.
pub struct ExecOpts {
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// A sub-cgroup of the container's to join (cgroup2: `--cgroup NAME`).
    pub sub_cgroup: Option<String>,
}

/// A started exec: the process's host pid and, for a relayed terminal, the
/// socket the pty master arrives on.
pub struct Started {
    pub pid: i32,
    pub console: Option<UnixStream>,
}

const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
];

/// The namespaces of `pid` that differ from ours.
fn namespaces_of(pid: i32) -> Result<libc::c_int, Error> {
    let mut flags = 0;
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
            .map_err(|_| Error::msg("container not running"))?;
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        if ours.as_ref() != Some(&theirs) {
            flags |= flag;
        }
    }
    Ok(flags)
}

/// Starts the process; returns once it has exec'd (or fails with its error).
pub fn start(store: &Store, opts: &ExecOpts) -> Result<Started, Error> {
    crate::config::validate_id(&opts.id)
        .map_err(|_| Error::msg(format!("container {} does not exist", opts.id)))?;
    let dir = store.open(&opts.id)?;
    let rec = lifecycle::load(&dir)?;
    let status = dir.status(&rec);
    match status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::msg(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ))
        }
        Status::Stopped => return Err(Error::msg("cannot exec in a stopped container")),
        Status::Creating => return Err(Error::msg("cannot exec in a container being created")),
    }
    let spec = lifecycle::saved_spec(&dir)?;
    drop(dir);
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) if crate::seccomp::uses_notify(s) => {
            return Err(Error::msg(
                "exec: the container's seccomp profile has SCMP_ACT_NOTIFY rules, which exec does not support",
            ))
        }
        Some(s) => Some(crate::seccomp::prepare(s, &store.seccomp_cache())?),
        None => None,
    };
    let terminal = opts.process.terminal().unwrap_or(false);
    let (console, relay) = match &opts.console_socket {
        Some(_) if !terminal => {
            return Err(Error::msg("--console-socket given but --tty is not set"))
        }
        Some(p) => (
            Some(UnixStream::connect(p).with(|| format!("--console-socket {}", p.display()))?),
            None,
        ),
        None if terminal && opts.detach => {
            return Err(Error::msg("--detach with --tty needs a --console-socket"))
        }
        None if terminal => {
            let (ours, theirs) = UnixStream::pair().with(|| "console socketpair".into())?;
            (Some(theirs), Some(ours))
        }
        None => (None, None),
    };
    let pidfd = pidfd_open(rec.pid).map_err(|_| Error::msg("container not running"))?;
    if !state::process_alive(rec.pid, rec.pid_start) {
        return Err(Error::msg("container not running"));
    }
    let flags = namespaces_of(rec.pid)?;
    let mut cgroup = rec.cgroup.clone();
    if let Some(sub) = &opts.sub_cgroup {
        if sub.contains("..") || sub.starts_with('/') {
            return Err(Error::msg(format!(
                "--cgroup {sub:?}: expected a sub-cgroup name"
            )));
        }
        for d in &mut cgroup.dirs {
            d.path.push(sub);
            if !d.path.is_dir() {
                return Err(Error::msg(format!(
                    "--cgroup {sub}: {} does not exist",
                    d.path.display()
                )));
            }
        }
    }
    let (parent, child) = sync::pair()?;
    // The process is stage-1's child: as subreaper berth can wait for it.
    nix::sys::prctl::set_child_subreaper(true).with(|| "set child subreaper".into())?;
    let first = match clone_fork(0).with(|| "fork the exec process".into())? {
        Forked::Child => {
            drop(parent);
            drop(relay);
            let ctx = Child {
                spec: &spec,
                process: &opts.process,
                seccomp: seccomp.as_ref(),
                console: console.as_ref(),
                preserve_fds: opts.preserve_fds,
            };
            stage1(child, pidfd, flags, &ctx)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    drop(console);
    let kill = |pid: i32| {
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(p, None);
    };
    // A frozen cgroup would freeze the process before its exec: in a paused
    // container (--ignore-paused) it joins once it has exec'd, and stays frozen
    // until `resume`.
    let join_late = status == Status::Paused;
    if !join_late {
        if let Err(e) = cgroup.join(first) {
            kill(first);
            return Err(e.into());
        }
    }
    let pid = parent
        .send(&Msg::CgroupJoined)
        .and_then(|()| {
            parent.expect("InitPid", |m| match m {
                Msg::InitPid { pid } => Ok(pid),
                other => Err(other),
            })
        })
        .inspect_err(|_| kill(first))?;
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(first), None);
    crate::fault::point("exec");
    // The process execs, closing its end, or reports why it could not.
    match parent.recv() {
        Err(SyncError::Closed) => {}
        Ok(Msg::Error { message }) => {
            kill(pid);
            return Err(Error::msg(message));
        }
        Ok(other) => {
            kill(pid);
            return Err(SyncError::Unexpected {
                expected: "exec",
                got: other,
            }
            .into());
        }
        Err(e) => {
            kill(pid);
            return Err(e.into());
        }
    }
    if join_late {
        if let Err(e) = cgroup.join(pid) {
            kill(pid);
            return Err(e.into());
        }
    }
    if let Some(pid_file) = &opts.pid_file {
        let path =
            std::path::absolute(pid_file).with(|| format!("--pid-file {}", pid_file.display()))?;
        state::write_atomic(&path, pid.to_string().as_bytes())?;
    }
    Ok(Started {
        pid,
        console: relay,
    })
}

struct Child<'a> {
    spec: &'a Spec,
    process: &'a Process,
    seccomp: Option<&'a crate::seccomp::Filter>,
    console: Option<&'a UnixStream>,
    preserve_fds: i32,
}

/// Stage-1: waits to be in the cgroup, joins the namespaces, forks the process.
fn stage1(sync: sync::Channel, pidfd: OwnedFd, flags: libc::c_int, ctx: &Child) -> ! {
    let _ = nix::sys::prctl::set_dumpable(false);
    let joined = sync
        .expect_exactly("CgroupJoined", Msg::CgroupJoined)
        .map_err(InitError::from)
        .and_then(|()| {
            nix::sched::setns(pidfd.as_fd(), CloneFlags::from_bits_retain(flags)).map_err(|errno| {
                InitError::Sys {
                    what: "join the container's namespaces".into(),
                    errno,
                }
            })
        });
    drop(pidfd);
    if let Err(e) = joined {
        sync.send_error(e.to_string());
        // SAFETY: a forked child exits without unwinding into the parent's code.
        unsafe { libc::_exit(1) }
    }
    match clone_fork(0) {
        Ok(Forked::Parent(pid)) => {
            let ok = sync.send(&Msg::InitPid { pid }).is_ok();
            // SAFETY: as above.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(Forked::Child) => {
            let err = match process_main(ctx) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            sync.send_error(err.to_string());
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        Err(errno) => {
            sync.send_error(format!("fork the exec process: {errno}"));
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

/// The process itself, inside every namespace: terminal, attributes, exec.
fn process_main(ctx: &Child) -> Result<std::convert::Infallible, InitError> {
    let _ = nix::sys::prctl::set_dumpable(false);
    // berth blocked the signals it forwards; the process starts with none blocked.
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(|errno| InitError::Sys {
            what: "unblock signals".into(),
            errno,
        })?;
    if ctx.process.terminal().unwrap_or(false) {
        init::console::setup(ctx.console, ctx.process, false)?;
    }
    let program = init::exec::find_program(ctx.process)?;
    let nnp = ctx.process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (ctx.seccomp, nnp) {
        crate::seccomp::load(filter)?;
    }
    init::process::apply(ctx.spec, ctx.process)?;
    let late = ctx.seccomp.filter(|_| nnp);
    Err(init::exec::exec(
        &program,
        ctx.process,
        ctx.preserve_fds,
        late,
    ))
}
