//! create → start → state → kill → delete, runc's error strings, pid files,
//! `run` exit codes, and concurrent creates.

use std::process::Stdio;

use crate::common::*;

#[test]
fn run_prints_and_returns_exit_status() {
    let b = Bundle::new(&["sh", "-c", "echo hello; exit 7"]);
    let out = b.run("r1");
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stdout, "hello\n");
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn run_reports_death_by_signal() {
    // Outside a pid namespace the shell is not PID 1, which ignores SIGKILL from inside.
    let mut b = Bundle::new(&["sh", "-c", "kill -9 $$"]);
    b.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().remove(0);
    });
    assert_eq!(b.run("sig").code, 137);
}

#[test]
fn full_lifecycle_with_states_and_pid_file() {
    let b = Bundle::new(&["sleep", "100"]);
    let pid_file = b.dir.join("init.pid");
    let bundle = b.dir.to_str().unwrap();
    b.berth(&[
        "create",
        "--bundle",
        bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
    ])
    .ok();
    let state = b.state("c");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "c");
    assert_eq!(state["bundle"], bundle);
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // The created container's init is blocked before exec: it still is berth.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    b.berth(&["start", "c"]).ok();
    assert_eq!(b.state("c")["status"], "running");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sleep"
    );
    let start_again = b.berth(&["start", "c"]);
    assert_eq!(start_again.code, 1);
    let del = b.berth(&["delete", "c"]);
    assert_eq!(del.code, 1);
    assert!(
        del.stderr
            .contains("cannot delete container c that is not stopped: running"),
        "{}",
        del.stderr
    );
    b.berth(&["kill", "c", "KILL"]).ok();
    b.wait_status("c", "stopped");
    assert_eq!(b.state("c")["pid"], 0);
    let kill = b.berth(&["kill", "c"]);
    assert_eq!(kill.code, 1);
    assert!(
        kill.stderr.contains("container not running"),
        "{}",
        kill.stderr
    );
    b.berth(&["delete", "c"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn unknown_ids_and_force_delete() {
    let b = Bundle::new(&["true"]);
    for verb in ["state", "start", "delete", "kill"] {
        let out = b.berth(&[verb, "nope"]);
        assert_eq!(out.code, 1, "{verb}");
        assert!(
            out.stderr.contains("container nope does not exist"),
            "{verb}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    b.berth(&["delete", "--force", "nope"]).ok();
}

#[test]
fn created_container_can_be_deleted_and_killed() {
    let b = Bundle::new(&["sleep", "100"]);
    b.create("k");
    let pid = b.state("k")["pid"].as_i64().unwrap();
    b.berth(&["kill", "k", "9"]).ok();
    b.create("k2");
    b.berth(&["delete", "k2"]).ok();
    b.berth(&["delete", "--force", "k"]).ok();
    assert!(!std::path::Path::new(&format!("/proc/{pid}/root")).exists() || b.residue().is_empty());
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn duplicate_id_fails_and_keeps_the_first() {
    let b = Bundle::new(&["sleep", "100"]);
    b.create("dup");
    let bundle = b.dir.to_str().unwrap();
    let out = b.berth(&["create", "--bundle", bundle, "dup"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(b.state("dup")["status"], "created");
}

#[test]
fn twenty_concurrent_creates_all_listed() {
    let mut b = Bundle::new(&["sleep", "100"]);
    // One cgroup each: the default /berth/<id>.
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut c = b.cmd(&["create", "--bundle", &bundle, &format!("par{i}")]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = b.berth(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(list.ok()).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 20, "{ids:?}");
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "created"));
    let quiet = b.berth(&["list", "-q"]);
    assert_eq!(quiet.ok().lines().count(), 20);
    let table = b.berth(&["list"]);
    assert!(
        table.ok().starts_with("ID          PID         STATUS"),
        "{}",
        table.stdout
    );
    for i in 0..20 {
        b.berth(&["delete", "--force", &format!("par{i}")]).ok();
    }
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn runc_argument_forms() {
    let b = Bundle::new(&["true"]);
    let bundle = format!("-bundle={}", b.dir.display());
    let root = b.root.to_str().unwrap().to_owned();
    let mut cmd = std::process::Command::new(berth_bin());
    cmd.args(["-root", &root, "run", &bundle, "-no-subreaper", "forms"]);
    run_with_files(cmd, &b.dir).ok();
    let bad = b.berth(&["create", "--no-such-flag", "x"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--no-such-flag"), "{}", bad.stderr);
    let v = b.berth(&["--version"]);
    assert!(v.ok().starts_with("berth version "));
    assert!(v.stdout.contains("\nspec: 1."));
}

#[test]
fn detached_run_and_kill_all() {
    let b = Bundle::new(&["sh", "-c", "sleep 100 & sleep 100"]);
    let bundle = b.dir.to_str().unwrap();
    b.berth(&["run", "--detach", "--bundle", bundle, "d"]).ok();
    assert_eq!(b.state("d")["status"], "running");
    b.berth(&["kill", "--all", "d", "KILL"]).ok();
    b.wait_status("d", "stopped");
    b.berth(&["delete", "d"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn spec_and_features() {
    let b = Bundle::new(&["true"]);
    let dir = b.dir.join("spec-out");
    std::fs::create_dir_all(&dir).unwrap();
    b.berth(&["spec", "--bundle", dir.to_str().unwrap()]).ok();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["terminal"], true);
    assert!(b.berth(&["spec", "--bundle", dir.to_str().unwrap()]).code == 1);
    let f: serde_json::Value = serde_json::from_str(b.berth(&["features"]).ok()).unwrap();
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "rro"));
}

#[test]
fn killed_create_is_cleaned_by_delete_force() {
    let mut b = Bundle::new(&["true"]);
    let marker = b.dir.join("hook-started");
    // The hook records its pid, then becomes the sleep: the test kills exactly it.
    let script = format!("echo $$ > {}; exec sleep 30", marker.display());
    b.edit(|c| c["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut create = b.cmd(&["create", "--bundle", &bundle, "killed"]);
    create.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = create.spawn().unwrap();
    for _ in 0..3000 {
        if std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(marker.exists(), "hook never ran");
    child.kill().unwrap();
    child.wait().unwrap();
    // The state dir is there, the container is not usable, and list/state still work.
    assert_eq!(b.state("killed")["status"], "stopped");
    b.berth(&["list"]).ok();
    b.berth(&["delete", "--force", "killed"]).ok();
    let hook_pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(hook_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn json_log_carries_the_error_for_engines() {
    let b = Bundle::new(&["true"]);
    let log = b.dir.join("berth.log");
    let out = b.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "ghost",
    ]);
    assert_eq!(out.code, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container ghost does not exist");
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn berth_binary_is_sealed_against_overwrite() {
    for method in ["overlay", "memfd"] {
        let b = Bundle::new(&["true"]);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let mut cmd = b.cmd(&["create", "--bundle", &bundle, "sealed"]);
        cmd.env("BERTH_SEAL_METHOD", method);
        run_with_files(cmd, &b.dir).ok();
        let pid = b.state("sealed")["pid"].as_i64().unwrap();
        // The created init still runs berth's code: what its exe link reaches must
        // not be writable, even for the host's root.
        let exe = format!("/proc/{pid}/exe");
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&exe)
            .unwrap_err();
        let errno = err.raw_os_error().unwrap();
        assert!(
            errno == libc::EROFS || errno == libc::ETXTBSY || errno == libc::EPERM,
            "{method}: {err}"
        );
        let target = std::fs::read_link(&exe).unwrap();
        assert_ne!(
            target,
            std::path::PathBuf::from(berth_bin()),
            "{method}: exe is the real binary"
        );
        b.berth(&["delete", "--force", "sealed"]).ok();
    }
}
