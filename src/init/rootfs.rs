//! The container's filesystem: propagation of the new mount namespace, the rootfs
//! bind, every config mount (resolved inside the rootfs, mounted on descriptors),
//! the switch of root (pivot_root or MS_MOVE+chroot), then sysctls, readonlyPaths,
//! maskedPaths and a read-only root.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use super::mounts::{propagation_flag, MountKind, MountPlan};
use super::resolve::{self, fd_path, open_plain, Create};
use super::{devices, Context, InitError};
use crate::config::Bundle;
use crate::syscall::{
    self, MountAttr, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};

const NONE: Option<&str> = None;

/// Mounts everything under the rootfs; returns an O_PATH descriptor of it.
pub fn prepare(bundle: &Bundle) -> Result<OwnedFd, InitError> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    // Nothing we mount may propagate back to the host: slave by default.
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE);
    mount(NONE, "/", NONE, prop | MsFlags::MS_REC, NONE).ctx(|| "set propagation of /".into())?;
    let rootfs = &bundle.rootfs;
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    if prop.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared new root or parent: both go private for the
        // switch, and `finalize` makes / shared again afterwards.
        make_parent_private(rootfs)?;
        mount(NONE, rootfs, NONE, MsFlags::MS_PRIVATE, NONE)
            .ctx(|| format!("make rootfs {} private", rootfs.display()))?;
    }
    let root = open_plain(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .ctx(|| format!("open rootfs {}", rootfs.display()))?;
    let userns = bundle
        .namespaces
        .is_private(oci_spec::runtime::LinuxNamespaceType::User);
    let mut dev_is_bind = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if i == 1 {
            crate::fault::stall_at("mounts");
        }
        let plan =
            MountPlan::parse(m).map_err(|e| InitError::Config(format!("mounts[{i}]: {e}")))?;
        if plan.destination == Path::new("/dev") && matches!(plan.kind, MountKind::Bind { .. }) {
            dev_is_bind = true;
        }
        mount_one(root.as_fd(), &plan, &bundle.dir, userns).map_err(|e| match e {
            InitError::Sys { what, errno } => InitError::Sys {
                what: format!("mounts[{i}] {}: {what}", plan.destination.display()),
                errno,
            },
            other => other,
        })?;
    }
    if !dev_is_bind {
        devices::create_defaults(root.as_fd(), userns)?;
    }
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        devices::create(root.as_fd(), d, userns).map_err(|e| match e {
            InitError::Sys { what, errno } => InitError::Sys {
                what: format!("linux.devices[{i}]: {what}"),
                errno,
            },
            other => other,
        })?;
    }
    if let Some(p) = spec.process() {
        resolve::open_or_create(root.as_fd(), p.cwd(), Create::Dir)
            .ctx(|| format!("create process.cwd {}", p.cwd().display()))?;
    }
    Ok(root)
}

fn make_parent_private(rootfs: &Path) -> Result<(), InitError> {
    let mut parent = rootfs.parent();
    while let Some(p) = parent {
        match mount(NONE, p, NONE, MsFlags::MS_PRIVATE, NONE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => parent = p.parent(),
            Err(e) => return Err(e).ctx(|| format!("make {} private", p.display())),
        }
    }
    Ok(())
}

/// Mounts one entry on its destination, resolved inside the rootfs.
fn mount_one(
    root: BorrowedFd,
    plan: &MountPlan,
    bundle_dir: &Path,
    userns: bool,
) -> Result<(), InitError> {
    match &plan.kind {
        MountKind::Bind { recursive } => {
            let src = bundle_dir.join(plan.source.as_deref().unwrap_or(Path::new("")));
            let meta = std::fs::metadata(&src).ctx(|| format!("bind source {}", src.display()))?;
            let create = if meta.is_dir() {
                Create::Dir
            } else {
                Create::File
            };
            let target = resolve::open_or_create(root, &plan.destination, create)
                .ctx(|| "resolve destination".into())?;
            bind(&src, target.as_fd(), *recursive, plan)
        }
        MountKind::Fs { fstype } if fstype == "cgroup" || fstype == "cgroup2" => {
            let target = resolve::open_or_create(root, &plan.destination, Create::Dir)
                .ctx(|| "resolve destination".into())?;
            mount_cgroup(root, target.as_fd(), plan)
        }
        MountKind::Fs { fstype } => {
            let target = resolve::open_or_create(root, &plan.destination, Create::Dir)
                .ctx(|| "resolve destination".into())?;
            let source = plan
                .source
                .as_deref()
                .map(|s| s.as_os_str())
                .unwrap_or(fstype.as_ref());
            let data = (!plan.data.is_empty()).then_some(plan.data.as_str());
            let res = mount(
                Some(source),
                fd_path(target.as_fd()).as_str(),
                Some(fstype.as_str()),
                plan.flags,
                data,
            );
            match res {
                // sysfs cannot be mounted from a user namespace that does not own the
                // network namespace: bind the host's, as runc does.
                Err(Errno::EPERM) if fstype == "sysfs" && userns => {
                    bind(Path::new("/sys"), target.as_fd(), true, plan)?;
                    return Ok(());
                }
                other => other.ctx(|| format!("mount {fstype}"))?,
            }
            apply_propagation(root, plan)
        }
    }
}

/// A bind mount through the new mount API: clone the source tree detached, set its
/// attributes, then move it onto the resolved destination descriptor.
fn bind(
    src: &Path,
    target: BorrowedFd,
    recursive: bool,
    plan: &MountPlan,
) -> Result<(), InitError> {
    let csrc = CString::new(src.as_os_str().as_bytes())
        .map_err(|_| InitError::Config("bind source holds a NUL byte".into()))?;
    let mut flags = syscall::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let tree = syscall::open_tree(libc::AT_FDCWD, &csrc, flags)
        .ctx(|| format!("bind {}", src.display()))?;
    let attr = plan.bind_attr();
    if attr != MountAttr::default() {
        syscall::mount_setattr(tree.as_fd(), &attr, false).ctx(|| "set mount options".into())?;
    }
    if plan.recursive != MountAttr::default() {
        syscall::mount_setattr(tree.as_fd(), &plan.recursive, true)
            .ctx(|| "set recursive mount options".into())?;
    }
    for p in &plan.propagation {
        let attr = MountAttr {
            propagation: (*p - MsFlags::MS_REC).bits(),
            ..Default::default()
        };
        syscall::mount_setattr(tree.as_fd(), &attr, p.contains(MsFlags::MS_REC))
            .ctx(|| "set propagation".into())?;
    }
    syscall::move_mount_fd(tree.as_fd(), target).ctx(|| "attach bind mount".into())
}

/// Propagation options of a filesystem mount, applied on the mount just made.
fn apply_propagation(root: BorrowedFd, plan: &MountPlan) -> Result<(), InitError> {
    if plan.propagation.is_empty() {
        return Ok(());
    }
    let mounted = resolve::open(root, &plan.destination, OFlag::O_PATH)
        .ctx(|| "reopen destination".into())?;
    for p in &plan.propagation {
        mount(NONE, fd_path(mounted.as_fd()).as_str(), NONE, *p, NONE)
            .ctx(|| "set propagation".into())?;
    }
    Ok(())
}

/// The `cgroup` mount type: cgroup2 where the host is unified; otherwise a tmpfs
/// holding each hierarchy the host has mounted. Each shows the container's own
/// cgroup as its root: in a new cgroup namespace the kernel does that; without
/// one, the container's directory of a fresh mount is bound there (as runc does).
fn mount_cgroup(root: BorrowedFd, target: BorrowedFd, plan: &MountPlan) -> Result<(), InitError> {
    let flags = plan.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if flags.contains(MsFlags::MS_RDONLY) {
        attrs |= MOUNT_ATTR_RDONLY;
    }
    let layout = crate::cgroups::Layout::detect().map_err(|e| InitError::Config(e.to_string()))?;
    if layout.v1.is_empty() {
        if let Some(u) = &layout.unified {
            return mount_hierarchy("cgroup2", &[], &u.own, target, attrs);
        }
    }
    mount(
        Some("tmpfs"),
        fd_path(target).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .ctx(|| "mount tmpfs for cgroup hierarchies".into())?;
    // The descriptor still names the covered directory: resolve again to reach the tmpfs.
    let tmp = resolve::open(root, &plan.destination, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .ctx(|| "open cgroup tmpfs".into())?;
    let hierarchies = layout.v1.iter().chain(layout.unified.iter());
    for h in hierarchies {
        let Some(name) = h
            .mount
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .filter(|n| n.components().count() == 1)
        else {
            continue;
        };
        let sub = resolve::open_or_create(tmp.as_fd(), name, Create::Dir)
            .ctx(|| format!("create cgroup dir {}", name.display()))?;
        let (fstype, opts) = if h.v2 {
            ("cgroup2", Vec::new())
        } else {
            ("cgroup", h.controllers.clone())
        };
        mount_hierarchy(fstype, &opts, &h.own, sub.as_fd(), attrs)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        syscall::mount_setattr(tmp.as_fd(), &attr, false)
            .ctx(|| "make cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

/// A fresh mount of one hierarchy, its directory `own` attached on `target`.
fn mount_hierarchy(
    fstype: &str,
    controllers: &[String],
    own: &Path,
    target: BorrowedFd,
    attrs: u64,
) -> Result<(), InitError> {
    let nul =
        |s: &str| CString::new(s).map_err(|_| InitError::Config(format!("cgroup option {s:?}")));
    let mut opts = Vec::new();
    // A named hierarchy without controllers ("name=systemd") is mounted "none".
    if fstype == "cgroup" && controllers.iter().all(|c| c.contains('=')) {
        opts.push((nul("none")?, nul("")?));
    }
    for c in controllers {
        let (k, v) = c.split_once('=').unwrap_or((c.as_str(), ""));
        opts.push((nul(k)?, nul(v)?));
    }
    let fstype_c = nul(fstype)?;
    let mnt = syscall::fsmount_detached(&fstype_c, &opts, attrs)
        .ctx(|| format!("mount {fstype} {}", controllers.join(",")))?;
    if own.as_os_str().is_empty() {
        return syscall::move_mount_fd(mnt.as_fd(), target)
            .ctx(|| format!("attach {fstype} hierarchy"));
    }
    let path = nul(&own.to_string_lossy())?;
    let flags = (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    let what = || format!("open the container's cgroup {}", own.display());
    let tree = match syscall::open_tree(mnt.as_raw_fd(), &path, flags) {
        Ok(tree) => tree,
        // Kernels before 6.15 clone only from attached mounts: attach the whole
        // hierarchy on the target for a moment, clone the subtree, detach it.
        Err(Errno::EINVAL) => {
            syscall::move_mount_fd(mnt.as_fd(), target)
                .ctx(|| format!("attach {fstype} hierarchy"))?;
            let tree = syscall::open_tree(mnt.as_raw_fd(), &path, flags).ctx(what)?;
            nix::mount::umount2(fd_path(mnt.as_fd()).as_str(), MntFlags::MNT_DETACH)
                .ctx(|| format!("detach the whole {fstype} hierarchy"))?;
            tree
        }
        Err(e) => return Err(e).ctx(what),
    };
    syscall::move_mount_fd(tree.as_fd(), target).ctx(|| format!("attach {fstype} hierarchy"))
}

/// Makes the rootfs `/`: pivot_root and detach the old root, or with --no-pivot,
/// move the rootfs over / and chroot (for initramfs hosts where pivot_root fails).
pub fn switch_root(rootfs: &Path, root: OwnedFd, no_pivot: bool) -> Result<(), InitError> {
    drop(root);
    if no_pivot {
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        mount(Some("."), "/", NONE, MsFlags::MS_MOVE, NONE).ctx(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    let open_dir = |p: &Path| open_plain(p, OFlag::O_DIRECTORY | OFlag::O_RDONLY);
    let old = open_dir(Path::new("/")).ctx(|| "open /".into())?;
    let new = open_dir(rootfs).ctx(|| format!("open rootfs {}", rootfs.display()))?;
    nix::unistd::fchdir(new.as_raw_fd()).ctx(|| "chdir rootfs".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    nix::unistd::fchdir(old.as_raw_fd()).ctx(|| "chdir old root".into())?;
    // Unmounting the old root must not propagate to the host's mounts.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .ctx(|| "make old root slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// Writes linux.sysctl through the container's /proc/sys.
pub fn sysctls(spec: &Spec) -> Result<(), InitError> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in map {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .ctx(|| format!("linux.sysctl.{key}: write {path}"))?;
    }
    Ok(())
}

/// After the switch: root propagation, readonlyPaths, maskedPaths, read-only root.
pub fn finalize(spec: &Spec) -> Result<(), InitError> {
    let root =
        open_plain(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY).ctx(|| "open /".into())?;
    let linux = spec.linux().as_ref();
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        mount(NONE, "/", NONE, p, NONE).ctx(|| "linux.rootfsPropagation".into())?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(root.as_fd(), p).ctx(|| format!("linux.readonlyPaths {p}"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        masked_path(root.as_fd(), p).ctx(|| format!("linux.maskedPaths {p}"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        syscall::mount_setattr(root.as_fd(), &attr, false).ctx(|| "root.readonly".into())?;
    }
    Ok(())
}

/// Binds a path onto itself, read-only, nosuid, nodev, noexec (recursively).
fn readonly_path(root: BorrowedFd, p: &str) -> nix::Result<()> {
    let fd = match resolve::open(root, Path::new(p), OFlag::O_PATH) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    };
    let tree = syscall::open_tree(
        fd.as_raw_fd(),
        c"",
        syscall::OPEN_TREE_CLONE
            | libc::O_CLOEXEC as libc::c_uint
            | libc::AT_EMPTY_PATH as libc::c_uint
            | libc::AT_RECURSIVE as libc::c_uint,
    )?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    syscall::mount_setattr(tree.as_fd(), &attr, true)?;
    syscall::move_mount_fd(tree.as_fd(), fd.as_fd())
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
fn masked_path(root: BorrowedFd, p: &str) -> nix::Result<()> {
    let fd = match resolve::open(root, Path::new(p), OFlag::O_PATH) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    };
    let is_dir = nix::sys::stat::fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let target = fd_path(fd.as_fd());
    if is_dir {
        mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
    } else {
        mount(
            Some("/dev/null"),
            target.as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
    }
}
