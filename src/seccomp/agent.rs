//! The seccomp agent protocol: hands the notify descriptor of a container's filter,
//! with the container process state, to the listener at linux.seccomp.listenerPath
//! (one SOCK_STREAM connection, one JSON message whose `fds` names the SCM_RIGHTS
//! descriptors, then close), as the runtime spec and runc do.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{self, ControlMessage, MsgFlags};
use serde::Serialize;

use super::SeccompError;

/// The container process state of the runtime spec.
#[derive(Serialize)]
struct ProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: serde_json::Value,
}

fn failed(path: &Path, e: impl std::fmt::Display) -> SeccompError {
    super::invalid(
        "listenerPath",
        format!("send the notify descriptor to {}: {e}", path.display()),
    )
}

/// Sends `fd` and the state (`state`: the OCI state JSON of the container).
pub fn send(
    path: &Path,
    metadata: Option<&str>,
    pid: i32,
    state: &str,
    fd: BorrowedFd,
) -> Result<(), SeccompError> {
    let state: serde_json::Value = serde_json::from_str(state).map_err(|e| failed(path, e))?;
    let msg = ProcessState {
        oci_version: state["ociVersion"].as_str().unwrap_or("1.0.2"),
        fds: ["seccompFd"],
        pid,
        metadata,
        state: state.clone(),
    };
    let buf = serde_json::to_vec(&msg).map_err(|e| failed(path, e))?;
    let conn = UnixStream::connect(path).map_err(|e| failed(path, e))?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&buf)];
    let sent = socket::sendmsg::<()>(
        conn.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| failed(path, e))?;
    // The descriptors went with the first bytes; the rest is plain payload.
    if sent < buf.len() {
        use std::io::Write;
        (&conn)
            .write_all(&buf[sent..])
            .map_err(|e| failed(path, e))?;
    }
    Ok(())
}
