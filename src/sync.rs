//! The sync protocol between `berth create` (the parent) and the container's init.
//!
//! One SOCK_SEQPACKET socketpair, one JSON message per packet. The legal order:
//!
//! ```text
//!  parent (berth create / run / exec)        child (stage-1, then init)
//!       clone ────────────────────────────────▶
//!       CgroupJoined ─────────────────────────▶ the child is in the container's
//!                                              cgroup; it waits for this first
//!       ◀─────────────── IdMapRequest          only with a new user namespace
//!       IdMapDone ────────────────────────────▶
//!       ◀─────────────── InitPid { pid }       only when stage-1 had to fork init
//!       ◀─────────────── RunHooks              rootfs mounted, before pivot_root
//!       HooksDone { state } ──────────────────▶ init runs createContainer hooks
//!       ◀─────────────── SeccompFd + fd        only with a notify rule: the filter
//!                                              is loaded; the parent hands the fd
//!                                              and the state to listenerPath
//!       SeccompDone ──────────────────────────▶
//!       ◀─────────────── Ready                 init now blocks on exec.fifo
//!  at any point:
//!       ◀─────────────── Error { message }     init failed; it exits after sending
//! ```
//!
//! A closed socket at any wait means the other side died: the child exits, the
//! parent fails the create and cleans up. `Parent::expect_*` enforce the order.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// One message of the protocol.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    CgroupJoined,
    IdMapRequest,
    IdMapDone,
    InitPid {
        pid: i32,
    },
    RunHooks,
    HooksDone {
        state: String,
    },
    /// Carries the seccomp notify descriptor (SCM_RIGHTS).
    SeccompFd,
    SeccompDone,
    Ready,
    Error {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync socket: {0}")]
    Io(#[from] nix::Error),
    #[error("sync socket: malformed message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("container init exited before it was set up")]
    Closed,
    #[error("sync protocol: expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: Msg },
    #[error("{0}")]
    Child(String),
}

/// One end of the sync socketpair.
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the pair: (parent end, child end). Both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let buf = serde_json::to_vec(msg)?;
        loop {
            match socket::send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {
                    return Err(SyncError::Closed)
                }
                other => return other.map(drop).map_err(SyncError::from),
            }
        }
    }

    /// Sends `msg` with one descriptor attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: BorrowedFd) -> Result<(), SyncError> {
        let buf = serde_json::to_vec(msg)?;
        let fds = [fd.as_raw_fd()];
        let cmsg = [socket::ControlMessage::ScmRights(&fds)];
        let iov = [std::io::IoSlice::new(&buf)];
        loop {
            match socket::sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {
                    return Err(SyncError::Closed)
                }
                other => return other.map(drop).map_err(SyncError::from),
            }
        }
    }

    /// Receives a message that must carry one descriptor.
    pub fn recv_with_fd(&self, expected: &'static str) -> Result<(Msg, OwnedFd), SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = loop {
                match socket::recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::Error::EINTR) => continue,
                    Err(nix::Error::ECONNRESET) => return Err(SyncError::Closed),
                    other => break other?,
                }
            };
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let socket::ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        // SAFETY: SCM_RIGHTS installed this descriptor in our table
                        // just now; nothing else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            (msg.bytes, fd)
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        let msg: Msg = serde_json::from_slice(&buf[..n])?;
        match (msg, fd) {
            (Msg::Error { message }, _) => Err(SyncError::Child(message)),
            (msg, Some(fd)) => Ok((msg, fd)),
            (got, None) => Err(SyncError::Unexpected { expected, got }),
        }
    }

    pub fn recv(&self) -> Result<Msg, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Err(SyncError::Closed),
                other => break other?,
            }
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        Ok(serde_json::from_slice(&buf[..n])?)
    }

    /// Child side: reports a failure; best effort, the child exits next anyway.
    pub fn send_error(&self, message: String) {
        let _ = self.send(&Msg::Error { message });
    }

    /// Waits for the message `expected` names: `pick` returns its payload, or gives
    /// the message back when it is another one. An Error becomes `SyncError::Child`.
    pub fn expect<T>(
        &self,
        expected: &'static str,
        pick: impl FnOnce(Msg) -> Result<T, Msg>,
    ) -> Result<T, SyncError> {
        match self.recv()? {
            Msg::Error { message } => Err(SyncError::Child(message)),
            msg => pick(msg).map_err(|got| SyncError::Unexpected { expected, got }),
        }
    }

    /// Waits for one message without payload.
    pub fn expect_exactly(&self, expected: &'static str, want: Msg) -> Result<(), SyncError> {
        self.expect(expected, |m| if m == want { Ok(()) } else { Err(m) })
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_is_closed() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::InitPid { pid: 42 }).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::InitPid { pid: 42 });
        b.send(&Msg::Error {
            message: "boom".into(),
        })
        .unwrap();
        let err = a.expect_exactly("Ready", Msg::Ready).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        b.send(&Msg::RunHooks).unwrap();
        assert!(matches!(
            a.expect_exactly("Ready", Msg::Ready),
            Err(SyncError::Unexpected { .. })
        ));
        let file = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::SeccompFd, file.as_fd()).unwrap();
        let (msg, fd) = a.recv_with_fd("SeccompFd").unwrap();
        assert_eq!(msg, Msg::SeccompFd);
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"));
        b.send(&Msg::Ready).unwrap();
        assert!(a.recv_with_fd("SeccompFd").is_err());
        drop(b);
        assert!(matches!(a.recv(), Err(SyncError::Closed)));
    }
}
