//! process.terminal: the pty master arrives on --console-socket; inside, the
//! process runs on /dev/pts/0 with /dev/console bound to it.

use std::io::Read;
use std::os::unix::net::UnixListener;

use serde_json::json;

use crate::common::*;

#[test]
fn console_socket_receives_the_pty() {
    let mut b = Bundle::new(&["sh", "-c", "tty; stat -c %t:%T /dev/console; echo done"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.berth(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        sock.to_str().unwrap(),
        "tty",
    ])
    .ok();
    let (conn, _) = listener.accept().unwrap();
    let mut master = std::fs::File::from(recv_with_fd(&conn).1);
    b.berth(&["start", "tty"]).ok();
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&out).contains("done") {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(text.starts_with("/dev/pts/0\n88:0\n"), "{text}");
}

#[test]
fn terminal_without_socket_is_an_error() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "t"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("console-socket"), "{}", out.stderr);
    assert!(b.residue().is_empty());
}

#[test]
fn foreground_run_relays_its_own_terminal() {
    let mut b = Bundle::new(&["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut cmd = b.cmd(&["run", "--bundle", &bundle, "fg"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    let mut master = std::fs::File::from(pty.master);
    use std::io::Write;
    master
        .write_all(b"tty; echo typed-$((6*7)); exit 3\n")
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !String::from_utf8_lossy(&out).contains("typed-42")
        && std::time::Instant::now() < deadline
    {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("/dev/pts/0") && text.contains("typed-42"),
        "{text}"
    );
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}
