//! Resolves paths inside the container's rootfs without ever leaving it: every lookup
//! goes through openat2(RESOLVE_IN_ROOT), so `..` and symlinks (absolute or relative)
//! stay inside the root, and mounts target the O_PATH descriptor that was resolved
//! (never a path string that could be swapped for a symlink meanwhile:
//! CVE-2021-30465).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::syscall::{openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// What to create when the path does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    No,
    Dir,
    File,
}

fn cstr(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Opens `path` (absolute, as seen in the container) beneath `root` with `flags`.
pub fn open(root: BorrowedFd, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let target = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel.as_path()
    };
    openat2(
        root.as_raw_fd(),
        &cstr(target)?,
        flags.bits(),
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// The normal components of `path`, as a relative path (`/a/./b` → `a/b`).
fn relative(path: &Path) -> std::path::PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

/// Opens `path` beneath `root` as O_PATH, creating missing components (directories,
/// and a file for the last one when `create` is File). A dangling symlink on the
/// way is followed inside the root and its target created, as runc does.
pub fn open_or_create(root: BorrowedFd, path: &Path, create: Create) -> Result<OwnedFd, Errno> {
    open_or_create_depth(root, path, create, 0)
}

/// Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

fn open_or_create_depth(
    root: BorrowedFd,
    path: &Path,
    create: Create,
    depth: u32,
) -> Result<OwnedFd, Errno> {
    match open(root, path, OFlag::O_PATH) {
        Err(Errno::ENOENT) if create != Create::No => {}
        other => return other,
    }
    if depth > MAX_LINKS {
        return Err(Errno::ELOOP);
    }
    let rel = relative(path);
    let comps: Vec<_> = rel.components().collect();
    let mut cur = open(root, Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let mut prefix = std::path::PathBuf::from("/");
    for (i, comp) in comps.iter().enumerate() {
        let parent = prefix.clone();
        prefix.push(comp);
        let last = i + 1 == comps.len();
        match open(root, &prefix, OFlag::O_PATH) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let name = cstr(Path::new(comp.as_os_str()))?;
        // A dangling symlink: resolve its target inside the root and go on there.
        if let Ok(target) = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), name.as_c_str()) {
            let mut next = if Path::new(&target).is_absolute() {
                std::path::PathBuf::from(&target)
            } else {
                parent.join(&target)
            };
            for rest in &comps[i + 1..] {
                next.push(rest);
            }
            return open_or_create_depth(root, &next, create, depth + 1);
        }
        if last && create == Create::File {
            // SAFETY: cur is an open directory descriptor and name a single component.
            let fd = unsafe {
                libc::openat(
                    cur.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 && Errno::last() != Errno::EEXIST {
                return Err(Errno::last());
            }
            if fd >= 0 {
                // SAFETY: fd was just opened above and is owned by nobody else.
                unsafe { libc::close(fd) };
            }
        } else {
            match nix::sys::stat::mkdirat(
                Some(cur.as_raw_fd()),
                name.as_c_str(),
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        cur = open(root, &prefix, OFlag::O_PATH)?;
    }
    Ok(cur)
}

/// Opens a path as seen by this process (no containment), close-on-exec.
pub fn open_plain(path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The magic-link path of a descriptor, for syscalls that only take paths.
pub fn fd_path(fd: BorrowedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = std::env::temp_dir().join(format!("berth-resolve-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/../../opt/x", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let rootfd = std::fs::File::open(&root).unwrap();
        let fd = open_or_create(rootfd.as_fd(), Path::new("/evil/newdir/x"), Create::File).unwrap();
        let target = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert_eq!(target, root.join("etc/newdir/x"));
        assert!(!Path::new("/etc/newdir").exists());
        let fd = open_or_create(rootfd.as_fd(), Path::new("/up/a"), Create::Dir).unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(fd.as_fd())).unwrap(),
            root.join("a")
        );
        assert_eq!(
            open(rootfd.as_fd(), Path::new("/missing"), OFlag::O_PATH).unwrap_err(),
            Errno::ENOENT
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
