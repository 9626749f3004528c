//! The container's init: everything that runs inside the new namespaces, from the
//! first mount to the execve of the user's program. `run` is the whole sequence as a
//! flat list of named steps; each step lives in the module named for its concern.
//! Init never returns: it execs or reports its error to the parent and exits.

pub mod console;
pub mod devices;
pub mod exec;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod resolve;
pub mod rootfs;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use nix::errno::Errno;

use crate::config::Bundle;
use crate::hooks::{self, HookError, HookKind};
use crate::sync::{Channel, Msg, SyncError};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{what}: {errno}")]
    Sys { what: String, errno: Errno },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{0}")]
    Config(String),
}

/// Adds the failing step to a syscall error, once, at the call site.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError> {
        self.map_err(|errno| InitError::Sys {
            what: what(),
            errno,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, InitError> {
        self.map_err(|e| InitError::Sys {
            what: what(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
}

/// What init needs besides the bundle; all descriptors were opened by the parent.
pub struct InitArgs<'a> {
    pub bundle: &'a Bundle,
    pub sync: Channel,
    /// exec.fifo, opened read-write: `start` writes a byte to it.
    pub fifo: OwnedFd,
    /// The connected --console-socket, when process.terminal is set.
    pub console: Option<UnixStream>,
    /// Descriptors 3 .. 3+N are passed to the user's program.
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// linux.seccomp, compiled by the parent; loaded just before exec.
    pub seccomp: Option<crate::seccomp::Filter>,
}

/// Runs init to the exec of the user's program; on failure tells the parent and exits.
pub fn run(args: InitArgs) -> ! {
    let ready = std::cell::Cell::new(false);
    let err = match steps(&args, &ready) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if ready.get() {
        // create has returned: nobody reads the sync socket any more. Tell the
        // container's stderr, as the process itself would have.
        eprintln!("berth: {err}");
    } else {
        args.sync.send_error(err.to_string());
    }
    // SAFETY: _exit ends this forked process without running the parent's atexit
    // handlers or flushing its copied stdio buffers.
    unsafe { libc::_exit(1) }
}

/// The init sequence. Order matters; the reason for each position is given.
fn steps(
    args: &InitArgs,
    ready: &std::cell::Cell<bool>,
) -> Result<std::convert::Infallible, InitError> {
    let spec = &args.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Config("process is missing".into()))?;
    // Mount setup must not be shaped by berth's caller's umask; the process's own
    // umask is set last.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // 1. Mounts, devices and cwd, while the host's filesystem is still reachable
    //    (bind sources live there).
    let root = rootfs::prepare(args.bundle)?;
    // 2. prestart and createRuntime hooks run in the parent (runtime namespace);
    //    createContainer hooks here, after the mounts and before pivot_root.
    args.sync.send(&Msg::RunHooks)?;
    let state = args.sync.expect("HooksDone", |m| match m {
        Msg::HooksDone { state } => Ok(state),
        other => Err(other),
    })?;
    let hook_list = spec.hooks().as_ref();
    // Hooks in the container's namespaces get its view of the state, built only
    // when there is such a hook.
    let in_container = |kind: HookKind, status: &str, cwd: Option<&std::path::Path>| {
        if hooks::any(kind, hook_list) {
            hooks::run_all(kind, hook_list, &container_view(&state, status), cwd)?;
        }
        Ok::<(), InitError>(())
    };
    in_container(
        HookKind::CreateContainer,
        "creating",
        Some(&args.bundle.dir),
    )?;
    // 3. Switch root. From here on only the container's filesystem is visible.
    rootfs::switch_root(&args.bundle.rootfs, root, args.no_pivot)?;
    // 4. The terminal needs the container's /dev/pts, so it comes after the switch.
    if process.terminal().unwrap_or(false) {
        console::setup(args.console.as_ref(), process, true)?;
    }
    // 5. Hostname and sysctls before readonlyPaths make /proc/sys read-only.
    namespaces::set_uts(spec)?;
    rootfs::sysctls(spec)?;
    // 6. Read-only and masked paths, read-only root.
    rootfs::finalize(spec)?;
    // 7. The process's own attributes; capabilities and user last, so that every
    //    privileged step above still had them. Without noNewPrivileges only a
    //    process holding CAP_SYS_ADMIN may load a seccomp filter: then it goes in
    //    before the capabilities are dropped. With it, the filter waits until just
    //    before exec, so berth's own remaining steps are not subject to it.
    //    A filter with notify rules must be in before Ready, so that the listener
    //    has its descriptor when create returns.
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (&args.seccomp, nnp) {
        load_seccomp(filter, &args.sync)?;
    }
    process::apply(spec, process)?;
    let program = exec::find_program(process)?;
    if let (Some(filter), true) = (&args.seccomp, nnp) {
        if filter.notifies() {
            load_seccomp(filter, &args.sync)?;
        }
    }
    // 8. Tell the parent we are ready; `create` returns. Wait for `start`.
    args.sync.send(&Msg::Ready)?;
    ready.set(true);
    exec::wait_for_start(&args.fifo)?;
    // 9. startContainer hooks, in the container, after start and before the exec.
    in_container(HookKind::StartContainer, "created", None)?;
    // 10. Close every descriptor not meant for the container, check the cwd, exec.
    let late_filter = args.seccomp.as_ref().filter(|f| nnp && !f.notifies());
    Err(exec::exec(
        &program,
        process,
        args.preserve_fds,
        late_filter,
    ))
}

/// Loads the filter; with notify rules, hands the listener descriptor to the parent
/// and waits until the parent has passed it on to listenerPath.
fn load_seccomp(filter: &crate::seccomp::Filter, sync: &Channel) -> Result<(), InitError> {
    if let Some(fd) = crate::seccomp::load(filter)? {
        sync.send_with_fd(&Msg::SeccompFd, std::os::fd::AsFd::as_fd(&fd))?;
        drop(fd);
        sync.expect_exactly("SeccompDone", Msg::SeccompDone)?;
    }
    Ok(())
}

/// The state for hooks that run in the container's namespaces: the spec wants the
/// pid as the container sees it (1 in a new pid namespace).
fn container_view(state: &str, status: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    v["pid"] = serde_json::Value::from(nix::unistd::getpid().as_raw());
    v["status"] = serde_json::Value::from(status);
    v.to_string()
}
