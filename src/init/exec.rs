//! The last steps of init: find the program in the container's PATH (so create
//! fails, as runc's does, when it is missing), wait on exec.fifo for `start`, then
//! close every descriptor not meant for the container, check that the cwd is inside
//! the container (CVE-2024-21626) and execve.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::AccessFlags;
use oci_spec::runtime::Process;

use super::{Context, InitError};
use crate::syscall::close_range_from;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of `key` in a KEY=VALUE list.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
        && nix::unistd::access(p, AccessFlags::X_OK).is_ok()
}

/// Resolves process.args[0] as execvp would, with the container's PATH.
pub fn find_program(p: &Process) -> Result<PathBuf, InitError> {
    let arg0 = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .map(String::as_str)
        .unwrap_or("");
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        return match std::fs::metadata(&path) {
            Ok(_) => Ok(path),
            Err(e) => Err(InitError::Config(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                io_text(&e)
            ))),
        };
    }
    let env = p.env().clone().unwrap_or_default();
    let search = env_value(&env, "PATH").unwrap_or(DEFAULT_PATH);
    search
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|c| is_executable_file(c))
        .ok_or_else(|| {
            InitError::Config(format!(
                "exec: {arg0:?}: executable file not found in $PATH"
            ))
        })
}

fn io_text(e: &std::io::Error) -> String {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
        .desc()
        .to_lowercase()
}

/// Blocks until `start` writes its byte into exec.fifo.
pub fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitError> {
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(fifo.as_raw_fd(), &mut buf) {
            Ok(1) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Ok(_) => return Err(InitError::Config("exec.fifo closed before start".into())),
            Err(e) => return Err(e).ctx(|| "wait for start on exec.fifo".into()),
        }
    }
}

/// Executes the program; returns only the error.
pub fn exec(
    program: &Path,
    p: &Process,
    preserve_fds: i32,
    filter: Option<&crate::seccomp::Filter>,
) -> InitError {
    match exec_inner(program, p, preserve_fds, filter) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(
    program: &Path,
    p: &Process,
    preserve_fds: i32,
    filter: Option<&crate::seccomp::Filter>,
) -> Result<std::convert::Infallible, InitError> {
    let cstr = |s: &[u8], what: &str| {
        CString::new(s).map_err(|_| InitError::Config(format!("{what} holds a NUL byte")))
    };
    let path = cstr(program.as_os_str().as_bytes(), "process.args[0]")?;
    let argv = p
        .args()
        .iter()
        .flatten()
        .map(|a| cstr(a.as_bytes(), "process.args"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = p
        .env()
        .iter()
        .flatten()
        .map(|e| cstr(e.as_bytes(), "process.env"))
        .collect::<Result<Vec<_>, _>>()?;
    // Every descriptor above the preserved ones goes at exec: the sync socket, the
    // fifo, anything inherited from berth's caller (CVE-2024-21626).
    let first = 3 + preserve_fds.max(0) as u32;
    close_range_from(first, true).ctx(|| "close descriptors".into())?;
    for fd in 3..first as i32 {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .ctx(|| format!("--preserve-fds: descriptor {fd}"))?;
    }
    let cwd = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    if !cwd.is_absolute() {
        return Err(InitError::Config(
            "current working directory is outside of the container's root: possible container breakout detected".into(),
        ));
    }
    if let Some(f) = filter {
        // Never a notify filter here: those are loaded before Ready.
        crate::seccomp::load(f)?;
    }
    nix::unistd::execve(&path, &argv, &envp).ctx(|| format!("exec {}", program.display()))?;
    Err(InitError::Config("execve returned".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lookup_takes_the_last() {
        let env = vec![
            "PATH=/a".to_string(),
            "X=1".into(),
            "PATH=/b".into(),
            "PATHX=no".into(),
        ];
        assert_eq!(env_value(&env, "PATH"), Some("/b"));
        assert_eq!(env_value(&env, "Y"), None);
    }
}
