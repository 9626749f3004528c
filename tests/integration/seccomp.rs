//! linux.seccomp, observed from inside: the errno a denied syscall returns, death
//! by SIGSYS, argument comparisons, unknown names skipped, filter mode in
//! /proc/self/status, and invalid profiles refused with nothing left behind.

use serde_json::json;

use crate::common::*;

fn with_profile(args: &[&str], profile: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(args);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    b
}

#[test]
fn errno_action_and_filter_mode() {
    let b = with_profile(
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
    );
    let out = b.run("errno");
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
    assert!(out.stdout.contains("rc=1"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Function not implemented"),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_action_gives_sigsys() {
    let b = with_profile(
        &["uname"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    assert_eq!(b.run("sigsys").code, 128 + libc::SIGSYS);
}

#[test]
fn argument_comparisons() {
    // kill(pid, SIGUSR1) is refused; kill(pid, 0) still works.
    let b = with_profile(
        &[
            "sh",
            "-c",
            "kill -0 $$ && echo zero-ok; kill -USR1 $$; echo usr1-rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]}),
    );
    let out = b.run("args");
    assert!(out.stdout.contains("zero-ok\nusr1-rc=1"), "{out:?}");
    // MASKED_EQ: value is the mask, valueTwo the value: deny when sig & 0xf == 0xa.
    let b = with_profile(
        &[
            "sh",
            "-c",
            "kill -USR1 $$; echo usr1-rc=$?; kill -0 $$; echo zero-rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 15, "valueTwo": 10, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    );
    assert_eq!(b.run("masked").ok(), "usr1-rc=1\nzero-rc=0\n");
}

#[test]
fn default_errno_allow_list() {
    // An allow list in the style of engines' profiles: everything busybox echo
    // needs is allowed, anything else returns EPERM.
    let allowed = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "mprotect",
        "readlinkat",
        "getrandom",
        "write",
        "exit_group",
        "getuid",
        "geteuid",
        "getpid",
        "getppid",
        "rt_sigaction",
        "rt_sigprocmask",
        "uname",
        "newfstatat",
        "fstat",
        "ioctl",
        "mmap",
        "munmap",
        "readlink",
        "close",
        "read",
        "fcntl",
        "getcwd",
        "stat",
        "lstat",
        "openat",
        "access",
        "faccessat",
        "faccessat2",
        "statx",
    ];
    let b = with_profile(
        &["echo", "allowed"],
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [{"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(b.run("allow").ok(), "allowed\n");
}

#[test]
fn invalid_profiles_fail_cleanly() {
    for (profile, field) in [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
            "linux.seccomp.flags[0]",
        ),
    ] {
        let b = with_profile(&["true"], profile);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains(field), "want {field}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1);
        assert!(b.residue().is_empty(), "{:?}", b.residue());
    }
}

#[test]
fn filter_without_no_new_privileges() {
    // The filter applies, and no_new_privs stays off as the config says.
    let mut b = with_profile(
        &[
            "sh",
            "-c",
            "mkdir /tmp/y; echo rc=$?; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(b.run("nonnp").ok(), "rc=1\nNoNewPrivs:\t0\nSeccomp:\t2\n");
}

/// podman's default profile (Debian's golang-github-containers-common), turned into
/// an OCI profile the way engines do: the native architecture with its
/// sub-architectures, and each rule kept only when its includes/excludes (by
/// capability and architecture) fit the process.
fn engine_profile(caps: &[&str]) -> serde_json::Value {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/fixtures/containers-seccomp.json"
    );
    let path = ["/usr/share/containers/seccomp.json", fixture]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("podman's seccomp.json is missing: run scripts/setup");
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let mut arches = Vec::new();
    for m in p["archMap"].as_array().unwrap() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.push("SCMP_ARCH_X86_64".to_string());
            arches.extend(strs(&m["subArchitectures"]));
        }
    }
    let mut rules = Vec::new();
    for s in p["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let inc_arches = strs(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64") {
            continue;
        }
        if strs(&exc["arches"]).iter().any(|a| a == "amd64") {
            continue;
        }
        if !strs(&inc["caps"])
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if strs(&exc["caps"])
            .iter()
            .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let mut rule = json!({"names": s["names"], "action": s["action"]});
        if s["args"].is_array() {
            rule["args"] = s["args"].clone();
        }
        if s["errnoRet"].is_u64() {
            rule["errnoRet"] = s["errnoRet"].clone();
        }
        rules.push(rule);
    }
    json!({"defaultAction": p["defaultAction"], "defaultErrnoRet": p["defaultErrnoRet"], "architectures": arches, "syscalls": rules})
}

#[test]
fn podman_default_profile_runs_busybox_and_refuses_unshare_and_mount() {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let b = with_profile(
        &["sh", "-c", "echo ok; ls / > /dev/null && echo ls-ok; date > /dev/null && echo date-ok; unshare -m true; echo unshare=$?; mount -t tmpfs t /tmp; echo mount=$?"],
        engine_profile(&caps),
    );
    let out = b.run("podman");
    let text = out.ok();
    assert!(text.starts_with("ok\nls-ok\ndate-ok\n"), "{text}");
    assert!(
        !text.contains("unshare=0") && text.contains("unshare="),
        "{text}"
    );
    assert!(
        !text.contains("mount=0") && text.contains("mount="),
        "{text}"
    );
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
}

/// Which refusals come from the filter itself: podman's profile answers syscalls
/// outside its allow list (add_key, request_key) with ENOSYS, allows keyctl, and
/// refuses sethostname unless the profile was converted for CAP_SYS_ADMIN, even
/// when the process holds that capability; unshare and mount it leaves to the
/// capabilities (EPERM from the kernel without CAP_SYS_ADMIN).
#[test]
fn podman_profile_keyring_and_capability_rules() {
    let default_caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let run = |profile: Option<serde_json::Value>, sys_admin: bool, id: &str| {
        let mut b = Bundle::new(&[
            "/sysprobe",
            "add_key",
            "request_key",
            "keyctl",
            "unshare",
            "sethostname",
        ]);
        install_helper(&b.rootfs(), "sysprobe");
        b.edit(|c| {
            if let Some(p) = profile {
                c["linux"]["seccomp"] = p;
            }
            if sys_admin {
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set]
                        .as_array_mut()
                        .unwrap()
                        .push(json!("CAP_SYS_ADMIN"));
                }
            }
        });
        b.run(id).ok().to_string()
    };
    let filtered = run(Some(engine_profile(&default_caps)), false, "keys");
    assert_eq!(
        filtered,
        "add_key=errno:38\nrequest_key=errno:38\nkeyctl=ok\nunshare=errno:1\nsethostname=errno:1\n"
    );
    // Without a profile the kernel itself serves the keyring calls.
    let open = run(None, false, "nokeys");
    assert!(
        open.starts_with("add_key=ok\nrequest_key=errno:126\nkeyctl=ok\n"),
        "{open}"
    );
    // CAP_SYS_ADMIN held, profile converted without it: the filter still refuses
    // sethostname while unshare (allowed by the profile) now works.
    let admin = run(Some(engine_profile(&default_caps)), true, "admin");
    assert!(
        admin.ends_with("unshare=ok\nsethostname=errno:1\n"),
        "{admin}"
    );
    let mut with_admin = default_caps.to_vec();
    with_admin.push("CAP_SYS_ADMIN");
    let converted = run(Some(engine_profile(&with_admin)), true, "admin2");
    assert!(
        converted.ends_with("unshare=ok\nsethostname=ok\n"),
        "{converted}"
    );
}

#[test]
fn trap_trace_log_and_kill_actions() {
    // TRAP: SIGSYS with no handler kills the process.
    let b = with_profile(
        &["uname"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_TRAP"}]}),
    );
    assert_eq!(b.run("trap").code, 128 + libc::SIGSYS);
    // KILL (thread): the single-threaded process dies by SIGSYS too.
    let b = with_profile(
        &["uname"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL"}]}),
    );
    assert_eq!(b.run("killthread").code, 128 + libc::SIGSYS);
    // TRACE with no tracer attached: the syscall fails with ENOSYS.
    let b = with_profile(
        &["sh", "-c", "mkdir /tmp/t; echo rc=$?"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}]}),
    );
    let out = b.run("trace");
    assert_eq!(out.stdout, "rc=1\n");
    assert!(
        out.stderr.contains("Function not implemented"),
        "{}",
        out.stderr
    );
    // LOG: allowed, and the kernel logs it (audit type 1326) with the syscall number.
    let b = with_profile(
        &["sh", "-c", "mkdir /tmp/logged && echo made"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}),
    );
    assert_eq!(b.run("log").ok(), "made\n");
    let dmesg = std::process::Command::new("dmesg")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !dmesg.is_empty() {
        assert!(
            dmesg
                .lines()
                .any(|l| l.contains("type=1326") || l.contains("seccomp")),
            "no seccomp log line in dmesg"
        );
    }
}

/// A seccomp agent: accepts one connection on `sock`, takes the container process
/// state and the notify descriptor, then answers mkdir with a faked success (the
/// directory is never made) and lets every other notified syscall through.
/// Returns the state it received once the filter has no users left.
fn fake_mkdir_agent(sock: &std::path::Path) -> std::thread::JoinHandle<(serde_json::Value, usize)> {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use std::io::Read;
    use std::os::fd::AsRawFd;

    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let (mut data, owned) = recv_with_fd(&conn);
        let fd = owned.as_raw_fd();
        conn.read_to_end(&mut data).unwrap();
        let state: serde_json::Value = serde_json::from_slice(&data).unwrap();
        let mut faked = 0;
        // The descriptor reports POLLHUP once every process under the filter has
        // exited (RECV itself would block on older kernels).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n < 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                break;
            }
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            let Ok(req) = ScmpNotifReq::receive(fd) else {
                break;
            };
            let name = req.data.syscall.get_name().unwrap_or_default();
            let resp = if name == "mkdir" || name == "mkdirat" {
                faked += 1;
                ScmpNotifResp::new_val(req.id, 0, ScmpNotifRespFlags::empty())
            } else {
                ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::empty())
            };
            let _ = resp.respond(fd);
        }
        drop(owned);
        (state, faked)
    })
}

#[test]
fn notify_listener_fakes_mkdir() {
    for nnp in [true, false] {
        let mut b = Bundle::new(&[
            "sh",
            "-c",
            "mkdir /tmp/n && echo made; test -d /tmp/n && echo exists || echo absent",
        ]);
        let sock = b.dir.join("agent.sock");
        let agent = fake_mkdir_agent(&sock);
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock, "listenerMetadata": "fake-mkdir",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
        });
        let out = b.run("notify");
        assert_eq!(out.ok(), "made\nabsent\n", "nnp={nnp}");
        let (state, faked) = agent.join().unwrap();
        assert_eq!(faked, 1);
        assert_eq!(state["fds"], json!(["seccompFd"]));
        assert_eq!(state["metadata"], "fake-mkdir");
        assert_eq!(state["state"]["id"], "notify");
        assert_eq!(state["state"]["status"], "creating");
        assert!(state["pid"].as_i64().unwrap() > 1);
        assert_eq!(state["pid"], state["state"]["pid"]);
        assert!(b.residue().is_empty(), "{:?}", b.residue());
    }
}

#[test]
fn notify_errors_fail_cleanly() {
    let rule = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
    for (profile, field) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}),
            "linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock", "syscalls": rule}),
            "/nonexistent/agent.sock",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x.sock"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x.sock",
                "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
            "linux.seccomp.flags[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
            "linux.seccomp.listenerMetadata",
        ),
    ] {
        let b = with_profile(&["true"], profile);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains(field), "want {field}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(b.residue().is_empty(), "{:?}", b.residue());
    }
}
