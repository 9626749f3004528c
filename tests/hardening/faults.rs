//! Faults: berth SIGKILLed at each step of create (after the cgroup, after
//! clone, during mounts, during hooks, before the pid file), during start,
//! delete and exec (BERTH_FAULT, src/fault.rs); a container's init killed from
//! outside; a full or read-only --root. Afterwards `list`, `state` and
//! `delete --force` work and nothing is left.

use std::process::Command;

use crate::common::*;
use crate::serial;

fn with_fault(b: &Bundle, fault: &str, args: &[&str]) -> Out {
    let mut cmd = b.cmd(args);
    cmd.env("BERTH_FAULT", fault);
    run_with_files(cmd, &b.dir)
}

/// After a crash: list and state answer, delete --force cleans, nothing is left.
fn recovers(b: &Bundle, id: &str, expect_state: &str) {
    b.berth(&["list"]).ok();
    let st = b.state(id);
    assert_eq!(st["status"], expect_state, "{id}: {st}");
    b.berth(&["delete", "--force", id]).ok();
    assert!(b.residue().is_empty(), "{id}: {:?}", b.residue());
    let out = b.berth(&["state", id]);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn killed_during_create_at_each_step() {
    let _s = serial();
    // Killed before init is ready the container never became usable; killed
    // right before the pid file it is created (the engine's create failed and
    // it deletes it).
    for (point, left) in [
        ("after-cgroup", "stopped"),
        ("after-clone", "stopped"),
        ("before-pid-file", "created"),
    ] {
        let b = Bundle::new(&["sleep", "30"]);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let pid_file = b.dir.join("pid");
        let out = with_fault(
            &b,
            point,
            &[
                "create",
                "--bundle",
                &bundle,
                "--pid-file",
                pid_file.to_str().unwrap(),
                "crash",
            ],
        );
        assert_eq!(
            out.code, -1,
            "{point}: berth should have been killed: {out:?}"
        );
        assert!(!pid_file.exists(), "{point}: pid file written");
        recovers(&b, "crash", left);
    }
}

#[test]
fn killed_during_mounts() {
    let _s = serial();
    let b = Bundle::new(&["sleep", "30"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mark = b.dir.join("in-mounts");
    let mut cmd = b.cmd(&["create", "--bundle", &bundle, "mnt"]);
    cmd.env("BERTH_FAULT", "mounts")
        .env("BERTH_FAULT_MARK", &mark)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut berth = cmd.spawn().unwrap();
    for _ in 0..500 {
        if mark.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(mark.exists(), "init never reached its mounts");
    let init = b.state("mnt")["pid"].as_i64().unwrap();
    berth.kill().unwrap();
    berth.wait().unwrap();
    // init is stuck half-way through its mounts, berth is gone.
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
    recovers(&b, "mnt", "stopped");
    // Gone, or dead and waiting for the host's init to reap it (its parent died).
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("State:\tZ"),
        "init {init} left: {status}"
    );
}

#[test]
fn killed_during_a_prestart_hook() {
    let _s = serial();
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| {
        c["hooks"] = serde_json::json!({"prestart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]})
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "hooked"]);
    assert_eq!(out.code, -1, "{out:?}");
    recovers(&b, "hooked", "stopped");
}

#[test]
fn killed_during_start_delete_and_exec() {
    let _s = serial();
    // start: init was let go, the fifo was not removed; it runs all the same.
    let b = Bundle::new(&["sleep", "30"]);
    b.create("s");
    assert_eq!(with_fault(&b, "start", &["start", "s"]).code, -1);
    recovers(&b, "s", "running");
    // delete: the container was killed, its cgroup and state dir not removed.
    b.create("d");
    b.berth(&["start", "d"]).ok();
    assert_eq!(
        with_fault(&b, "delete", &["delete", "--force", "d"]).code,
        -1
    );
    recovers(&b, "d", "stopped");
    // exec: the new process runs on in the container; delete --force ends it.
    b.create("e");
    b.berth(&["start", "e"]).ok();
    let out = with_fault(&b, "exec", &["exec", "e", "sleep", "40"]);
    assert_eq!(out.code, -1, "{out:?}");
    recovers(&b, "e", "running");
}

#[test]
fn init_killed_from_outside_is_stopped() {
    let _s = serial();
    let b = Bundle::new(&["sleep", "30"]);
    b.create("k");
    b.berth(&["start", "k"]).ok();
    let pid = b.state("k")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    b.wait_status("k", "stopped");
    let out = b.berth(&["kill", "k", "TERM"]);
    assert!(
        out.stderr.contains("container not running"),
        "{}",
        out.stderr
    );
    b.berth(&["delete", "k"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

/// A small tmpfs at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn new(dir: std::path::PathBuf, opts: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn full_or_read_only_root_is_a_clear_error() {
    let _s = serial();
    let b = Bundle::new(&["true"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let full = Tmpfs::new(b.dir.join("full-root"), "size=64k");
    // Fill it.
    let _ = std::fs::write(full.0.join("filler"), vec![0u8; 128 << 10]);
    let mut cmd = Command::new(berth_bin());
    cmd.arg("--root")
        .arg(&full.0)
        .args(["create", "--bundle", &bundle, "nospace"]);
    let out = run_with_files(cmd, &b.dir);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!full.0.join("nospace").exists());
    let ro = Tmpfs::new(b.dir.join("ro-root"), "ro,size=64k");
    let mut cmd = Command::new(berth_bin());
    cmd.arg("--root")
        .arg(&ro.0)
        .args(["create", "--bundle", &bundle, "rofs"]);
    let out = run_with_files(cmd, &b.dir);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(ro.0.to_str().unwrap()),
        "{}",
        out.stderr
    );
    drop(full);
    drop(ro);
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}
