//! process.terminal: a pty from the container's own devpts, /dev/console bound to
//! its slave, the master sent over --console-socket with SCM_RIGHTS (as runc sends
//! it), and the slave made init's controlling terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Process;

use super::resolve::{self, fd_path, open_plain, Create};
use super::{Context, InitError};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// `bind_console`: init binds /dev/console to the pty; an exec'd process does not.
pub fn setup(
    socket: Option<&UnixStream>,
    process: &Process,
    bind_console: bool,
) -> Result<(), InitError> {
    let socket = socket.ok_or_else(|| {
        InitError::Config("process.terminal is set but no --console-socket was given".into())
    })?;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".into())?;
    nix::pty::unlockpt(&master).ctx(|| "unlock pty".into())?;
    let name = nix::pty::ptsname_r(&master).ctx(|| "pty name".into())?;
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ws is a valid winsize and master an open pty master.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }.ctx(|| "process.consoleSize".into())?;
    }
    let slave = open_plain(Path::new(&name), OFlag::O_RDWR | OFlag::O_NOCTTY)
        .ctx(|| format!("open {name}"))?;
    let user = process.user();
    nix::unistd::fchown(
        slave.as_raw_fd(),
        Some(user.uid().into()),
        Some(user.gid().into()),
    )
    .ctx(|| format!("chown {name}"))?;
    if bind_console {
        let root = open_plain(Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ctx(|| "open /".into())?;
        let console =
            resolve::open_or_create(root.as_fd(), Path::new("/dev/console"), Create::File)
                .ctx(|| "create /dev/console".into())?;
        mount(
            Some(name.as_str()),
            fd_path(console.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind {name} to /dev/console"))?;
    }
    let fds = [master.as_raw_fd()];
    let payload = [IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &payload,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master to --console-socket".into())?;
    drop(master);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // SAFETY: TIOCSCTTY takes an int argument; slave is an open terminal.
    let ret = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(ret).ctx(|| "make the pty the controlling terminal".into())?;
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).ctx(|| "dup pty to stdio".into())?;
    }
    Ok(())
}
