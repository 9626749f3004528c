//! Carries out a `Plan` on a container's rootfs, from inside its mount namespace
//! and before pivot_root: device nodes (mknod, the host's numbers), driver files
//! bind-mounted read-only, nosuid, nodev, soname links, the container's ld cache,
//! and a tmpfs over /proc/driver/nvidia. Every path is resolved inside the rootfs
//! (openat2 RESOLVE_IN_ROOT), so a symlink in the image never leads out of it.
//! `enter_and_inject` does it for a container seen from outside (a hook, or
//! create's parent), in a forked child that joins the mount namespace.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use super::{ldcache, NvidiaError, Plan};
use crate::init::resolve::{self, Create};
use crate::syscall::{self, MountAttr};

fn err(what: impl Into<String>) -> impl FnOnce(Errno) -> NvidiaError {
    let what = what.into();
    move |errno| NvidiaError::Inject { what, errno }
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/')
        .map(|(d, n)| (if d.is_empty() { "/" } else { d }, n))
        .unwrap_or(("/", path))
}

/// Applies `plan` to the rootfs at `rootfs` (a path in the current mount
/// namespace).
pub fn inject(plan: &Plan, rootfs: &Path) -> Result<(), NvidiaError> {
    let root = resolve::open_plain(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(err(format!("open rootfs {}", rootfs.display())))?;
    let root = root.as_fd();
    nodes(plan, root)?;
    for f in &plan.files {
        let dir = f.host.is_dir();
        let target = resolve::open_or_create(
            root,
            Path::new(&f.dest),
            if dir { Create::Dir } else { Create::File },
        )
        .map_err(err(format!("mount point {}", f.dest)))?;
        bind_ro(&f.host, target.as_fd()).map_err(err(format!(
            "bind {} on {}",
            f.host.display(),
            f.dest
        )))?;
    }
    finish(root, &plan.links, &plan.cache)?;
    if plan.proc_files {
        proc_driver(plan, root)?;
    }
    Ok(())
}

/// The links and ld cache entries (what CDI's createContainer hook still has to
/// do once the spec's mounts are in place), on the rootfs at `rootfs`.
pub fn finish_rootfs(
    rootfs: &Path,
    links: &[(String, String)],
    cache: &[(String, String, bool)],
) -> Result<(), NvidiaError> {
    let root = resolve::open_plain(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(err(format!("open rootfs {}", rootfs.display())))?;
    finish(root.as_fd(), links, cache)
}

fn finish(
    root: BorrowedFd,
    links: &[(String, String)],
    cache: &[(String, String, bool)],
) -> Result<(), NvidiaError> {
    for (link, target) in links {
        let (dir, name) = split(link);
        let dirfd = resolve::open_or_create(root, Path::new(dir), Create::Dir)
            .map_err(err(format!("directory {dir}")))?;
        let dirfd = reopen_dir(dirfd.as_fd()).map_err(err(format!("directory {dir}")))?;
        match nix::unistd::symlinkat(target.as_str(), Some(dirfd.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err(format!("symlink {link}"))(e)),
        }
    }
    ld_cache(cache, root)
}

/// An O_PATH descriptor reopened as a real directory descriptor (for *at calls).
fn reopen_dir(fd: BorrowedFd) -> Result<OwnedFd, Errno> {
    resolve::open(
        fd,
        Path::new("/"),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
    )
}

fn nodes(plan: &Plan, root: BorrowedFd) -> Result<(), NvidiaError> {
    let dev = resolve::open_or_create(root, Path::new("/dev"), Create::Dir)
        .map_err(err("directory /dev"))?;
    let dev = reopen_dir(dev.as_fd()).map_err(err("directory /dev"))?;
    for n in &plan.nodes {
        let name = n.path.trim_start_matches("/dev/");
        let rdev = nix::sys::stat::makedev(n.major, n.minor);
        let old = nix::sys::stat::umask(Mode::empty());
        let made = nix::sys::stat::mknodat(
            Some(dev.as_raw_fd()),
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            rdev,
        );
        nix::sys::stat::umask(old);
        match made {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err(format!("mknod {}", n.path))(e)),
        }
    }
    Ok(())
}

/// Binds `src` (a host path) read-only, nosuid, nodev onto `target`.
fn bind_ro(src: &Path, target: BorrowedFd) -> Result<(), Errno> {
    let c = CString::new(src.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let tree = syscall::open_tree(
        libc::AT_FDCWD,
        &c,
        syscall::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
    )?;
    let attr = MountAttr {
        attr_set: syscall::MOUNT_ATTR_RDONLY
            | syscall::MOUNT_ATTR_NOSUID
            | syscall::MOUNT_ATTR_NODEV,
        ..Default::default()
    };
    syscall::mount_setattr(tree.as_fd(), &attr, false)?;
    syscall::move_mount_fd(tree.as_fd(), target)
}

/// Adds the injected libraries to the container's /etc/ld.so.cache (keeping its
/// own entries), written beside it and renamed over it.
fn ld_cache(cache: &[(String, String, bool)], root: BorrowedFd) -> Result<(), NvidiaError> {
    if cache.is_empty() {
        return Ok(());
    }
    let etc = resolve::open_or_create(root, Path::new("/etc"), Create::Dir)
        .map_err(err("directory /etc"))?;
    let etc = reopen_dir(etc.as_fd()).map_err(err("directory /etc"))?;
    let mut entries = match nix::fcntl::openat(
        Some(etc.as_raw_fd()),
        "ld.so.cache",
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut raw)
                .map_err(|e| NvidiaError::Msg(format!("container's /etc/ld.so.cache: {e}")))?;
            ldcache::parse(&raw)
                .map_err(|e| NvidiaError::Msg(format!("container's /etc/ld.so.cache: {e}")))?
        }
        Err(Errno::ENOENT) => Vec::new(),
        Err(e) => return Err(err("open /etc/ld.so.cache")(e)),
    };
    for (soname, path, is64) in cache {
        entries.push(ldcache::Entry {
            flags: if *is64 {
                ldcache::FLAGS_X86_64
            } else {
                ldcache::FLAGS_I386
            },
            key: soname.clone(),
            value: path.clone(),
            hwcap: 0,
        });
    }
    let raw = ldcache::write(&entries);
    let tmp = "ld.so.cache.berth";
    let fd = nix::fcntl::openat(
        Some(etc.as_raw_fd()),
        tmp,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(err("write /etc/ld.so.cache"))?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(&raw)
        .map_err(|e| NvidiaError::Msg(format!("write /etc/ld.so.cache: {e}")))?;
    nix::fcntl::renameat(
        Some(etc.as_raw_fd()),
        tmp,
        Some(etc.as_raw_fd()),
        "ld.so.cache",
    )
    .map_err(err("rename /etc/ld.so.cache"))
}

/// A read-only tmpfs over the container's /proc/driver/nvidia (when its procfs
/// has one: the kernel driver is loaded) holding the driver's params with
/// ModifyDeviceFiles: 0 (so nothing inside recreates device nodes), version and
/// registry.
fn proc_driver(plan: &Plan, root: BorrowedFd) -> Result<(), NvidiaError> {
    let target = match resolve::open(
        root,
        Path::new("/proc/driver/nvidia"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(err("open /proc/driver/nvidia")(e)),
    };
    let mnt = syscall::fsmount_detached(
        c"tmpfs",
        &[
            (c"mode".into(), c"0555".into()),
            (c"size".into(), c"1m".into()),
        ],
        syscall::MOUNT_ATTR_NOSUID | syscall::MOUNT_ATTR_NODEV | syscall::MOUNT_ATTR_NOEXEC,
    )
    .map_err(err("tmpfs for /proc/driver/nvidia"))?;
    let dir = reopen_dir(mnt.as_fd()).map_err(err("tmpfs for /proc/driver/nvidia"))?;
    for name in ["params", "version", "registry"] {
        let host = plan.driver.host(&format!("/proc/driver/nvidia/{name}"));
        let Ok(text) = std::fs::read_to_string(&host) else {
            continue;
        };
        let text = if name == "params" {
            text.lines()
                .map(|l| {
                    if l.starts_with("ModifyDeviceFiles:") {
                        "ModifyDeviceFiles: 0".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        } else {
            text
        };
        let fd = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o444),
        )
        .map_err(err(format!("/proc/driver/nvidia/{name}")))?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.write_all(text.as_bytes())
            .map_err(|e| NvidiaError::Msg(format!("/proc/driver/nvidia/{name}: {e}")))?;
    }
    let attr = MountAttr {
        attr_set: syscall::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    syscall::mount_setattr(mnt.as_fd(), &attr, false).map_err(err("tmpfs read-only"))?;
    syscall::move_mount_fd(mnt.as_fd(), target.as_fd()).map_err(err("mount /proc/driver/nvidia"))
}

/// Joins the mount namespace of `pid` and injects there, in a forked child (the
/// caller's own namespaces never change). The child's error comes back over a
/// pipe as one line.
pub fn enter_and_inject(plan: &Plan, pid: i32, rootfs: &Path) -> Result<(), NvidiaError> {
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = resolve::open_plain(Path::new(&ns_path), OFlag::O_RDONLY)
        .map_err(err(format!("open {ns_path}")))?;
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(err("pipe"))?;
    // SAFETY: berth is single-threaded here (no threads before fork/clone), so
    // the child may run any code until it exits.
    match unsafe { nix::unistd::fork() }.map_err(err("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let result = nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(err(format!("join mount namespace of pid {pid}")))
                .and_then(|()| inject(plan, rootfs));
            let code = match result {
                Ok(()) => 0,
                Err(e) => {
                    let mut f = std::fs::File::from(wr);
                    let _ = f.write_all(e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: _exit ends the forked child without running the parent's
            // destructors or atexit handlers twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut msg);
            let status = nix::sys::wait::waitpid(child, None).map_err(err("wait"))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                _ if !msg.is_empty() => Err(NvidiaError::Msg(msg)),
                other => Err(NvidiaError::Msg(format!("GPU injection failed: {other:?}"))),
            }
        }
    }
}
