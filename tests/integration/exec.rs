//! exec: the new process joins every namespace and the cgroup of the container,
//! gets the flags' user, env, cwd and capabilities and the container's seccomp
//! profile; berth returns its status; failures fail that exec only.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

fn running(args: &[&str], id: &str) -> Bundle {
    let b = Bundle::new(args);
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.berth(&["run", "-d", "--bundle", &bundle, id]).ok();
    b
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "cgroup"}));
        ns.push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["root"]["readonly"] = json!(false);
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.berth(&["run", "-d", "--bundle", &bundle, "ex"]).ok();
    let init = b.state("ex")["pid"].as_i64().unwrap();
    let pid_file = b.dir.join("exec.pid");
    b.berth(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "ex",
        "sleep",
        "20",
    ])
    .ok();
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(pid, init);
    for ns in ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"] {
        let a = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        let e = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(a, e, "{ns}");
    }
    let cg = |p: i64| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(init), cg(pid));
    let root = |p: i64| std::fs::read_link(format!("/proc/{p}/root")).unwrap();
    assert_eq!(root(init), root(pid));
    // Inside: a child of the container's pid namespace, root in its user namespace.
    let out = b.berth(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "echo $$; id -u; cat /proc/self/uid_map",
    ]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].parse::<i64>().unwrap() > 1, "{text}");
    assert_eq!(lines[1], "0");
    assert!(
        lines[2].split_whitespace().eq(["0", "100000", "65536"]),
        "{text}"
    );
    let ps = b.berth(&["ps", "--format", "json", "ex"]);
    let pids: Vec<i64> = serde_json::from_str(ps.ok()).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&init), "{pids:?}");
    b.berth(&["delete", "--force", "ex"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn exec_status_env_user_cwd_and_caps() {
    let b = running(&["sleep", "30"], "ex2");
    let out = b.berth(&["exec", "ex2", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (7, "out\n", "err\n")
    );
    let out = b.berth(&[
        "exec",
        "--env",
        "FOO=bar",
        "--env",
        "PATH=/bin",
        "--user",
        "1000:1000",
        "--additional-gids",
        "5",
        "--cwd",
        "/tmp",
        "ex2",
        "sh",
        "-c",
        "echo $FOO $PATH; id; pwd",
    ]);
    assert_eq!(
        out.ok(),
        "bar /bin\nuid=1000(user) gid=1000(user) groups=5\n/tmp\n"
    );
    let caps = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend(["ex2", "grep", "CapEff", "/proc/self/status"]);
        b.berth(&args)
            .ok()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let plain = u64::from_str_radix(&caps(&[]), 16).unwrap();
    let added = u64::from_str_radix(&caps(&["--cap", "CAP_SYS_ADMIN"]), 16).unwrap();
    assert_eq!(plain & (1 << 21), 0);
    assert_eq!(added, plain | (1 << 21));
    let out = b.berth(&[
        "exec",
        "--no-new-privs",
        "ex2",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(out.ok(), "NoNewPrivs:\t1\n");
    let out = b.berth(&["exec", "--cap", "CAP_NOPE", "ex2", "true"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("CAP_NOPE"), "{}", out.stderr);
    // A signal to berth reaches the process; the status says which.
    let mut cmd = b.cmd(&["exec", "ex2", "sleep", "20"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(128 + 15));
}

#[test]
fn exec_process_file_and_the_containers_seccomp_profile() {
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]});
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.berth(&["run", "-d", "--bundle", &bundle, "sc"]).ok();
    let out = b.berth(&[
        "exec",
        "sc",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?",
    ]);
    assert_eq!(out.stdout, "Seccomp:\t2\nrc=1\n");
    assert!(
        out.stderr.contains("Function not implemented"),
        "{}",
        out.stderr
    );
    let file = b.dir.join("process.json");
    std::fs::write(&file, serde_json::to_vec(&json!({"args": ["sh", "-c", "echo $X; pwd"], "env": ["X=from-file", "PATH=/bin"], "cwd": "/dev", "user": {"uid": 0, "gid": 0}})).unwrap()).unwrap();
    let out = b.berth(&["exec", "--process", file.to_str().unwrap(), "sc"]);
    assert_eq!(out.ok(), "from-file\n/dev\n");
    std::fs::write(&file, "{\"args\": 5}").unwrap();
    let out = b.berth(&["exec", "--process", file.to_str().unwrap(), "sc"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("process.args"), "{}", out.stderr);
}

#[test]
fn failing_execs_leave_the_container_running() {
    let b = running(&["sleep", "30"], "ex3");
    let out = b.berth(&["exec", "ex3", "no-such-binary"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    let out = b.berth(&["exec", "--cwd", "/no/such/dir", "ex3", "true"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/no/such/dir"), "{}", out.stderr);
    assert_eq!(b.state("ex3")["status"], "running");
    assert_eq!(b.berth(&["exec", "no-such-id", "true"]).code, 1);
    assert!(b
        .berth(&["exec", "no-such-id", "true"])
        .stderr
        .contains("does not exist"));
    // Paused: refused, unless --ignore-paused (the process then waits for resume).
    b.berth(&["pause", "ex3"]).ok();
    let out = b.berth(&["exec", "ex3", "true"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("paused"), "{}", out.stderr);
    let pid_file = b.dir.join("p");
    b.berth(&[
        "exec",
        "-d",
        "--ignore-paused",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "ex3",
        "sleep",
        "7",
    ])
    .ok();
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let init = b.state("ex3")["pid"].as_i64().unwrap();
    assert_eq!(
        stat,
        std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap()
    );
    b.berth(&["resume", "ex3"]).ok();
    b.berth(&["kill", "ex3", "KILL"]).ok();
    b.wait_status("ex3", "stopped");
    let out = b.berth(&["exec", "ex3", "true"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("stopped"), "{}", out.stderr);
    b.berth(&["delete", "ex3"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn exec_tty_over_a_console_socket() {
    let b = running(&["sleep", "30"], "ext");
    let sock = b.dir.join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = b.berth(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        "ext",
        "sh",
        "-c",
        "tty; echo done; sleep 1",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (conn, _) = listener.accept().unwrap();
    let mut master = std::fs::File::from(recv_with_fd(&conn).1);
    let mut text = Vec::new();
    let mut chunk = [0u8; 256];
    use std::io::Read;
    while !String::from_utf8_lossy(&text).contains("done") {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert!(text.starts_with("/dev/pts/"), "{text}");
    assert!(b
        .berth(&["exec", "-d", "-t", "ext", "true"])
        .stderr
        .contains("console-socket"));
}
