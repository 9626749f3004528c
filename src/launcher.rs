//! The parent side of `create`: validates the bundle, makes the state dir, clones
//! the container's first process, then drives the sync protocol (id maps, init's
//! pid, prestart/createRuntime hooks, ready) in the one legal order. Any failure
//! kills what was cloned and removes the state dir: nothing is left behind.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups::{self, Cgroup};
use crate::config::{self, Bundle};
use crate::error::{Error, ResultExt};
use crate::hooks::nvidia::{self, create as gpu};
use crate::hooks::{self, HookKind};
use crate::init::{self, namespaces, InitArgs};
use crate::state::{self, ContainerDir, Record, Status, Store};
use crate::sync::{self, Msg};
use crate::syscall::{clone_fork, Forked};

/// create's options, as the command line gives them.
pub struct CreateOpts {
    pub id: String,
    /// --systemd-cgroup: cgroupsPath is slice:prefix:name.
    pub systemd_cgroup: bool,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// `run` in the foreground relays a terminal itself when no socket is given.
    pub tty_relay: bool,
    /// --gpus, CDI devices and the driver root.
    pub gpu: crate::cli::GpuFlags,
}

/// A container that create has set up: blocked before exec, waiting for start.
pub struct Created {
    pub dir: ContainerDir,
    pub record: Record,
    /// For a relayed terminal: the socket the pty master arrives on.
    pub console: Option<UnixStream>,
}

/// Kills what create started, removes its cgroup and the state dir unless disarmed.
struct Cleanup {
    dir: Option<ContainerDir>,
    pids: Vec<i32>,
    cgroup: Option<Cgroup>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in self.pids.iter().rev() {
            let p = nix::unistd::Pid::from_raw(*pid);
            let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// Loads the bundle and creates the container.
pub fn create(store: &Store, opts: &CreateOpts) -> Result<Created, Error> {
    config::validate_id(&opts.id)?;
    let bundle = gpu::edit_config(config::load(&opts.bundle)?, &opts.gpu)?;
    // GPUs asked for in the env are planned (and refused) before any side effect.
    let gpu_started = std::time::Instant::now();
    let gpu_plan = gpu::plan(&bundle, &opts.gpu)?;
    let gpu_planning = gpu_started.elapsed();
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.tty_relay {
        return Err(Error::msg(
            "process.terminal is set: a --console-socket is needed to receive the pty",
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::msg(
            "--console-socket given but process.terminal is false",
        ));
    }
    // Connect before any side effect: a bad socket path fails cleanly.
    let (console, relay) = match &opts.console_socket {
        Some(p) => (
            Some(UnixStream::connect(p).with(|| format!("--console-socket {}", p.display()))?),
            None,
        ),
        None if terminal => {
            let (ours, theirs) = UnixStream::pair().with(|| "console socketpair".into())?;
            (Some(theirs), Some(ours))
        }
        None => (None, None),
    };
    let profile = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let seccomp = match profile {
        Some(s) => Some(crate::seccomp::prepare(s, &store.seccomp_cache())?),
        None => None,
    };
    let dir = store.create(&opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir),
        pids: Vec::new(),
        cgroup: None,
    };
    let dir = cleanup
        .dir
        .as_ref()
        .ok_or_else(|| Error::msg("state dir vanished"))?;
    state::write_atomic(&dir.config_path(), &bundle.raw)?;
    let fifo_path = dir.fifo_path();
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600))
        .with(|| format!("mkfifo {}", fifo_path.display()))?;
    let fifo = init::resolve::open_plain(&fifo_path, OFlag::O_RDWR)
        .with(|| format!("open {}", fifo_path.display()))?;
    let mut record = Record {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        status: Status::Creating,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup: Cgroup::default(),
    };
    // The cgroup, with its limits, exists before the first process: recorded at
    // once, so `delete --force` finds it even if this berth is killed.
    let cgroup = make_cgroup(&bundle, opts, gpu_plan.as_ref())?;
    record.cgroup = cgroup.clone();
    cleanup.cgroup = Some(cgroup);
    dir.write(&record)?;
    crate::fault::point("after-cgroup");
    let (parent, child) = sync::pair()?;
    let cloned = namespaces::clone_flags(&bundle.namespaces);
    let forks = namespaces::forks_init(&bundle.namespaces, cloned);
    if forks {
        // init is stage-1's child: when stage-1 exits it becomes ours, so a failed
        // create can kill and reap it, and `run` can wait for it.
        nix::sys::prctl::set_child_subreaper(true).with(|| "set child subreaper".into())?;
    }
    let first = match clone_fork(cloned).with(|| "clone the container's init".into())? {
        Forked::Child => {
            // SAFETY: the lock descriptor is closed in this child only; the File that
            // owns it in the parent's copy of memory is never used or dropped here,
            // since child_main never returns.
            unsafe { libc::close(dir.lock_fd()) };
            drop(parent);
            drop(relay);
            child_main(&bundle, cloned, child, fifo, console, seccomp, opts)
        }
        Forked::Parent(pid) => pid,
    };
    cleanup.pids.push(first);
    // Into the cgroup before it does anything: every process of the container,
    // and every create-time hook's view of it, is inside.
    record.cgroup.join(first)?;
    parent.send(&Msg::CgroupJoined)?;
    crate::fault::point("after-clone");
    drop(child);
    drop(fifo);
    drop(console);
    if bundle.namespaces.is_new(LinuxNamespaceType::User) {
        parent.expect_exactly("IdMapRequest", Msg::IdMapRequest)?;
        namespaces::write_id_maps(first, &bundle.spec)?;
        parent.send(&Msg::IdMapDone)?;
    }
    let init_pid = if forks {
        let pid = parent.expect("InitPid", |m| match m {
            Msg::InitPid { pid } => Ok(pid),
            other => Err(other),
        })?;
        cleanup.pids.push(pid);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(first), None);
        pid
    } else {
        first
    };
    record.pid = init_pid;
    record.pid_start = state::process_start(init_pid).unwrap_or(0);
    // From here `delete --force` can find and kill init if this berth is killed.
    dir.write(&record)?;
    parent.expect_exactly("RunHooks", Msg::RunHooks)?;
    if let Some(plan) = &gpu_plan {
        // Where the toolkit's prestart hook would run: in init's mount namespace,
        // on the rootfs before pivot_root.
        let started = std::time::Instant::now();
        nvidia::inject::enter_and_inject(plan, init_pid, &bundle.rootfs)?;
        crate::logging::debug(&format!(
            "GPUs: planned in {:.2} ms, injected in {:.2} ms",
            gpu_planning.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        ));
    }
    let hook_state = record.hook_state(Status::Creating);
    let hook_list = bundle.spec.hooks().as_ref();
    hooks::run_all(
        HookKind::Prestart,
        hook_list,
        &hook_state,
        Some(&bundle.dir),
    )?;
    hooks::run_all(
        HookKind::CreateRuntime,
        hook_list,
        &hook_state,
        Some(&bundle.dir),
    )?;
    parent.send(&Msg::HooksDone { state: hook_state })?;
    if let Some(s) = profile {
        if crate::seccomp::uses_notify(s) {
            let (_, fd) = parent.recv_with_fd("SeccompFd")?;
            let path = s
                .listener_path()
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            let metadata = s.listener_metadata().as_deref();
            let state = record.hook_state(Status::Creating);
            crate::seccomp::agent::send(path, metadata, init_pid, &state, fd.as_fd())?;
            drop(fd);
            parent.send(&Msg::SeccompDone)?;
        }
    }
    parent.expect_exactly("Ready", Msg::Ready)?;
    record.status = Status::Created;
    dir.write(&record)?;
    crate::fault::point("before-pid-file");
    if let Some(pid_file) = &opts.pid_file {
        let path =
            std::path::absolute(pid_file).with(|| format!("--pid-file {}", pid_file.display()))?;
        state::write_atomic(&path, init_pid.to_string().as_bytes())?;
    }
    let dir = cleanup
        .dir
        .take()
        .ok_or_else(|| Error::msg("state dir vanished"))?;
    cleanup.pids.clear();
    cleanup.cgroup = None;
    crate::logging::debug(&format!(
        "created container {} with init pid {init_pid}",
        opts.id
    ));
    Ok(Created {
        dir,
        record,
        console: relay,
    })
}

/// Makes the container's cgroup from linux.cgroupsPath and linux.resources; the
/// nodes of linux.devices are allowed besides the resource rules.
fn make_cgroup(
    bundle: &Bundle,
    opts: &CreateOpts,
    gpu: Option<&nvidia::Plan>,
) -> Result<Cgroup, Error> {
    let linux = bundle.spec.linux().as_ref();
    let wanted = cgroups::path::resolve(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
        opts.systemd_cgroup,
    )?;
    let mut extra = cgroups::devices::node_rules(linux);
    extra.extend(gpu.map(|p| p.device_rules()).unwrap_or_default());
    let layout = cgroups::Layout::detect()?;
    crate::logging::debug(&format!("cgroup layout: {}", layout.mode()));
    Ok(Cgroup::create(
        &layout,
        &wanted,
        linux.and_then(|l| l.resources().as_ref()),
        &extra,
    )?)
}

/// The cloned child: namespaces, then init. Never returns.
fn child_main(
    bundle: &Bundle,
    cloned: u64,
    sync: sync::Channel,
    fifo: OwnedFd,
    console: Option<UnixStream>,
    seccomp: Option<crate::seccomp::Filter>,
    opts: &CreateOpts,
) -> ! {
    // Keep /proc/<pid> of this process (and its exe) out of reach of anything in the
    // container's namespaces until the exec (CVE-2019-5736 hardening).
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Err(e) = sync.expect_exactly("CgroupJoined", Msg::CgroupJoined) {
        sync.send_error(e.to_string());
        // SAFETY: a forked child exits without unwinding into the parent's code.
        unsafe { libc::_exit(1) }
    }
    if let Err(e) = namespaces::enter(&bundle.spec, &bundle.namespaces, cloned, &sync) {
        sync.send_error(e.to_string());
        // SAFETY: a forked child exits without unwinding into the parent's code.
        unsafe { libc::_exit(1) }
    }
    init::run(InitArgs {
        bundle,
        sync,
        fifo,
        console,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        seccomp,
    })
}
