//! Seals the berth binary against overwrite from inside a container (CVE-2019-5736).
//!
//! Before a command that enters a container (create, run, exec), berth re-executes
//! itself from a read-only, detached overlayfs whose lower layers are the binary's
//! own directory and an empty detached tmpfs. Through /proc/<pid>/exe a container
//! then reaches only a file on a mount that nobody can remount read-write, since it
//! is attached nowhere, and overlayfs without an upper layer is read-only. Nothing
//! is copied: this costs a few mount syscalls and one exec. Kernels without the
//! mount API fall back to a sealed memfd copy of the binary.

use std::ffi::{CString, OsString};
use std::io::Seek;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, ResultExt};
use crate::syscall::{
    execveat_fd, fsmount_detached, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};

/// Set in the environment of the re-executed berth; removed at once.
const SEALED_ENV: &str = "_BERTH_SEALED_EXE";
/// `memfd` forces the fallback (for tests and benchmarks of that path).
const METHOD_ENV: &str = "BERTH_SEAL_METHOD";

/// Returns when this process runs from a sealed binary; otherwise re-executes.
pub fn ensure_sealed() -> Result<(), Error> {
    if std::env::var_os(SEALED_ENV).is_some() {
        std::env::remove_var(SEALED_ENV);
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").with(|| "read /proc/self/exe".into())?;
    let force_memfd = std::env::var_os(METHOD_ENV).is_some_and(|m| m == "memfd");
    let fd = match overlay_exe(&exe) {
        Ok(fd) if !force_memfd => fd,
        _ => memfd_exe()?,
    };
    let to_c = |s: OsString| {
        CString::new(s.as_bytes()).map_err(|_| Error::msg("argument holds a NUL byte"))
    };
    let argv = std::env::args_os()
        .map(to_c)
        .collect::<Result<Vec<_>, _>>()?;
    let mut envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    envp.push(to_c(format!("{SEALED_ENV}=1").into())?);
    let errno = execveat_fd(fd.as_fd(), &argv, &envp);
    Err(Error::Sys {
        what: "re-execute the sealed berth binary".into(),
        errno,
    })
}

/// Opens the binary through a detached, read-only overlayfs.
fn overlay_exe(exe: &Path) -> Result<OwnedFd, Error> {
    let dir = exe
        .parent()
        .ok_or_else(|| Error::msg("berth binary has no directory"))?;
    let name = exe
        .file_name()
        .ok_or_else(|| Error::msg("berth binary has no name"))?;
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
    let empty = fsmount_detached(c"tmpfs", &[], attrs).with(|| "mount empty tmpfs".into())?;
    let mut lower = dir.as_os_str().as_bytes().to_vec();
    if lower.contains(&b':') || lower.contains(&b',') {
        return Err(Error::msg("berth's directory holds ':' or ','"));
    }
    lower.extend_from_slice(format!(":/proc/self/fd/{}", empty.as_raw_fd()).as_bytes());
    let opts = [(
        CString::from(c"lowerdir"),
        CString::new(lower).map_err(|_| Error::msg("path holds a NUL byte"))?,
    )];
    let mnt =
        fsmount_detached(c"overlay", &opts, attrs).with(|| "mount sealing overlayfs".into())?;
    let cname = CString::new(name.as_bytes()).map_err(|_| Error::msg("name holds a NUL byte"))?;
    // SAFETY: mnt is an open mount descriptor and cname a single path component.
    let fd = unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            cname.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::Sys {
            what: "open berth through the sealing overlayfs".into(),
            errno: nix::errno::Errno::last(),
        });
    }
    // SAFETY: openat returned a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A sealed, unwritable memfd copy of the binary.
fn memfd_exe() -> Result<OwnedFd, Error> {
    // SAFETY: the name is a valid C string; memfd_create returns a new descriptor.
    let fd = unsafe {
        libc::memfd_create(
            c"berth".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with(|| "memfd_create".into());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut mem = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut exe = std::fs::File::open("/proc/self/exe").with(|| "open /proc/self/exe".into())?;
    std::io::copy(&mut exe, &mut mem).with(|| "copy berth binary".into())?;
    mem.rewind().with(|| "rewind memfd".into())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an int argument on a memfd we own.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error()).with(|| "seal memfd".into());
    }
    Ok(OwnedFd::from(mem))
}
