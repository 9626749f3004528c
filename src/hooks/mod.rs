//! Runs OCI hooks: each with the container state JSON on stdin, its own args and env,
//! a timeout after which it is killed, and its output captured for the error message.

pub mod nvidia;

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

/// The six hook points of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    fn list(self, hooks: &Hooks) -> &Option<Vec<Hook>> {
        match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hooks.{kind}[{index}] {path}: {source}")]
    Spawn {
        kind: &'static str,
        index: usize,
        path: String,
        source: std::io::Error,
    },
    #[error("hooks.{kind}[{index}] {path}: timed out after {secs}s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: String,
        secs: i64,
    },
    #[error("hooks.{kind}[{index}] {path}: {status}{output}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        status: String,
        output: String,
    },
}

/// Whether any hook of `kind` is configured.
pub fn any(kind: HookKind, hooks: Option<&Hooks>) -> bool {
    hooks.is_some_and(|h| kind.list(h).as_ref().is_some_and(|l| !l.is_empty()))
}

/// Runs every hook of `kind` in order; stops at the first failure.
pub fn run_all(
    kind: HookKind,
    hooks: Option<&Hooks>,
    state: &str,
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    for (index, hook) in kind.list(hooks).iter().flatten().enumerate() {
        run_one(kind, index, hook, state, cwd)?;
    }
    Ok(())
}

/// A memfd for the hook's stdout and stderr: it never blocks the hook.
fn output_file() -> std::io::Result<std::fs::File> {
    // SAFETY: the name is a valid C string; memfd_create returns a new descriptor.
    let fd = unsafe { libc::memfd_create(c"berth-hook".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn run_one(
    kind: HookKind,
    index: usize,
    hook: &Hook,
    state: &str,
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let spawn_err = |source| HookError::Spawn {
        kind: kind.name(),
        index,
        path: path.clone(),
        source,
    };
    let mut out = output_file().map_err(spawn_err)?;
    let mut cmd = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(spawn_err)?)
        .stderr(out.try_clone().map_err(spawn_err)?);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: EPIPE is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let timeout = hook.timeout();
    let status = match wait_timeout(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind: kind.name(),
                index,
                path,
                secs: timeout.unwrap_or(0),
            });
        }
        Err(e) => return Err(spawn_err(e)),
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = out.rewind();
    let _ = Read::by_ref(&mut out).take(4096).read_to_string(&mut text);
    let text = text.trim().replace('\n', " ");
    Err(HookError::Failed {
        kind: kind.name(),
        index,
        path,
        status: status.to_string(),
        output: if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        },
    })
}

/// Waits for the child, at most `timeout` seconds; Ok(None) when it ran out.
fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Option<i64>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(secs) = timeout else {
        return child.wait().map(Some);
    };
    let pidfd: OwnedFd =
        crate::syscall::pidfd_open(child.id() as i32).map_err(std::io::Error::from)?;
    let deadline = Instant::now() + Duration::from_secs(secs.max(0) as u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => return child.wait().map(Some),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{HookBuilder, HooksBuilder};

    fn hooks(path: &str, args: &[&str], timeout: Option<i64>) -> Hooks {
        let mut b = HookBuilder::default()
            .path(path)
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .env(vec!["HOOKVAR=ok".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        HooksBuilder::default()
            .poststop(vec![b.build().unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn state_on_stdin_and_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!(
            "cat > {}; echo \"$HOOKVAR\" >> {}",
            out.display(),
            out.display()
        );
        let h = hooks("/bin/sh", &["sh", "-c", &script], None);
        run_all(HookKind::Poststop, Some(&h), "{\"id\":\"x\"}", Some(&dir)).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}ok\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_names_hook_and_shows_output() {
        let h = hooks("/bin/sh", &["sh", "-c", "echo broken >&2; exit 3"], None);
        let err = run_all(HookKind::Poststop, Some(&h), "{}", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("hooks.poststop[0] /bin/sh: exit status: 3"),
            "{err}"
        );
        assert!(err.ends_with(": broken"), "{err}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hooks("/bin/sh", &["sh", "-c", "sleep 30"], Some(1));
        let start = Instant::now();
        let err = run_all(HookKind::Poststop, Some(&h), "{}", None).unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_binary() {
        let h = hooks("/nonexistent/hook", &[], None);
        let err = run_all(HookKind::Poststop, Some(&h), "{}", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hooks.poststop[0] /nonexistent/hook"), "{err}");
    }
}
