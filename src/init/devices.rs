//! Device nodes in the container's /dev: the default set (null, zero, full, random,
//! urandom, tty), linux.devices, and the standard links (/dev/fd, std*, ptmx, core).
//! Nodes are made with mknod, or bind-mounted from the host inside a user namespace,
//! where mknod is not allowed.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType};

use super::resolve::{self, Create};
use super::{Context, InitError};
use crate::syscall;

/// (path, major, minor) of the devices every container gets, all 0666 char devices.
pub const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

/// Creates the default devices and links.
pub fn create_defaults(root: BorrowedFd, userns: bool) -> Result<(), InitError> {
    for (path, major, minor) in DEFAULT_DEVICES {
        let dev = LinuxDeviceBuilder::default()
            .path(path)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .map_err(|e| InitError::Config(e.to_string()))?;
        create(root, &dev, userns)?;
    }
    let dev = resolve::open_or_create(root, Path::new("/dev"), Create::Dir)
        .ctx(|| "create /dev".into())?;
    let mut links: Vec<(&str, &str)> = LINKS.to_vec();
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        let name = &link["/dev/".len()..];
        if name == "ptmx" {
            // /dev/ptmx must be the link to the devpts instance, not a host node.
            let _ = nix::unistd::unlinkat(
                Some(dev.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("link {link} -> {target}")),
        }
    }
    Ok(())
}

/// Creates one device node (or binds the host's inside a user namespace).
pub fn create(root: BorrowedFd, d: &LinuxDevice, userns: bool) -> Result<(), InitError> {
    let path = d.path();
    if userns {
        let target = resolve::open_or_create(root, path, Create::File)
            .ctx(|| format!("create {}", path.display()))?;
        let src = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| InitError::Config("device path holds a NUL byte".into()))?;
        let tree = syscall::open_tree(
            libc::AT_FDCWD,
            &src,
            syscall::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
        .ctx(|| format!("bind host device {}", path.display()))?;
        return syscall::move_mount_fd(tree.as_fd(), target.as_fd())
            .ctx(|| format!("bind device onto {}", path.display()));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| InitError::Config(format!("device path {} has no name", path.display())))?;
    let dir = resolve::open_or_create(root, parent, Create::Dir)
        .ctx(|| format!("create {}", parent.display()))?;
    // An O_PATH descriptor serves as dirfd of the *at calls below.
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(InitError::Config(format!(
                "device {}: type a is for cgroup rules only",
                path.display()
            )))
        }
    };
    let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
    let rdev = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
    let _ = nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, mode, rdev)
        .ctx(|| format!("mknod {}", path.display()))?;
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(d.uid().unwrap_or(0).into()),
        Some(d.gid().unwrap_or(0).into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", path.display()))?;
    Ok(())
}
