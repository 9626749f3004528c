//! The terminal of a foreground `run` without --console-socket: receives the pty
//! master from init, puts berth's own terminal in raw mode, and relays stdin to the
//! master and the master to stdout while forwarding signals (SIGWINCH resizes).

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;

use crate::error::{Error, ResultExt};

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Receives the pty master init sends over the console socket.
pub fn receive_master(sock: &UnixStream) -> Result<std::fs::File, Error> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .with(|| "receive the pty master".into())?;
    let fd = msg
        .cmsgs()
        .with(|| "receive the pty master".into())?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or_else(|| Error::msg("container init sent no pty master"))?;
    // SAFETY: the descriptor arrived with SCM_RIGHTS and belongs to this process.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Restores berth's terminal settings when dropped.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn copy_winsize(master: &std::fs::File) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a valid winsize; fd 0 may not be a terminal, then this fails.
    if unsafe { get_winsize(0, &mut ws) }.is_ok() {
        // SAFETY: ws is a valid winsize and master an open pty master.
        let _ = unsafe { set_winsize(master.as_raw_fd(), &ws) };
    }
}

/// Relays until init exits; returns its exit status via `reap`.
pub fn relay(
    mut master: std::fs::File,
    init: i32,
    set: &SigSet,
    mut reap: impl FnMut() -> Option<i32>,
) -> Result<i32, Error> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).with(|| "signalfd".into())?;
    let _raw = RawMode::enter();
    copy_winsize(&master);
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let mut stdout = std::io::stdout();
    loop {
        if let Some(code) = reap() {
            drain(&mut master, &mut stdout);
            return Ok(code);
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let master_idx = master_open.then(|| {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stdin_idx = stdin_open.then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.with(|| "poll".into())?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            if let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) => copy_winsize(&master),
                    Ok(sig) => {
                        let _ = kill(Pid::from_raw(init), sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if master_idx.is_some_and(|i| ready[i]) {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    let _ = stdout.write_all(&buf[..n]);
                    let _ = stdout.flush();
                }
            }
        }
        if stdin_idx.is_some_and(|i| ready[i]) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master.write_all(&buf[..n]);
                }
            }
        }
    }
}

/// Copies what the container wrote before it exited.
fn drain(master: &mut std::fs::File, stdout: &mut std::io::Stdout) {
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            break;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = stdout.write_all(&buf[..n]);
            }
        }
    }
    let _ = stdout.flush();
}
