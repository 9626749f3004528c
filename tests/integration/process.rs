//! process.*: args and PATH lookup, env, cwd, user and groups, umask, capability
//! sets, noNewPrivileges, rlimits, oomScoreAdj, and the descriptors that reach
//! the container.

use serde_json::json;

use crate::common::*;

fn run_in(b: &Bundle, id: &str) -> String {
    b.run(id).ok().to_string()
}

#[test]
fn capabilities_and_no_new_privs_match_config() {
    let b = Bundle::new(&["cat", "/proc/self/status"]);
    let status = run_in(&b, "caps");
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29)
    let want = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    assert_eq!(status_field(&status, "CapEff"), want);
    assert_eq!(status_field(&status, "CapPrm"), want);
    assert_eq!(status_field(&status, "CapBnd"), want);
    assert_eq!(status_field(&status, "CapInh"), want);
    assert_eq!(status_field(&status, "CapAmb"), want);
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
}

#[test]
fn ambient_and_inheritable_caps() {
    let mut b = Bundle::new(&["cat", "/proc/self/status"]);
    b.edit(|c| {
        let caps = json!(["CAP_CHOWN", "CAP_NET_RAW"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": ["CAP_NET_RAW"]});
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let status = run_in(&b, "amb");
    assert_eq!(
        status_field(&status, "CapAmb"),
        format!("{:016x}", 1u64 << 13)
    );
    assert_eq!(
        status_field(&status, "CapInh"),
        format!("{:016x}", (1u64 << 13) | 1)
    );
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
}

#[test]
fn unknown_capability_is_an_error() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN", "CAP_FLY"]));
    let out = b.run("badcap");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("process.capabilities.bounding") && out.stderr.contains("CAP_FLY"),
        "{}",
        out.stderr
    );
    assert!(b.residue().is_empty());
}

#[test]
fn user_without_passwd_entry_and_groups() {
    let mut b = Bundle::new(&["sh", "-c", "id -u; id -g; id -G; umask"]);
    b.edit(|c| {
        c["process"]["user"] =
            json!({"uid": 4242, "gid": 4343, "additionalGids": [5, 77], "umask": 63})
    });
    let out = run_in(&b, "user");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "4242");
    assert_eq!(lines[1], "4343");
    assert_eq!(lines[2], "4343 5 77");
    assert_eq!(lines[3], "0077");
    let mut b = Bundle::new(&["id"]);
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    assert_eq!(run_in(&b, "id1000"), "uid=1000(user) gid=1000(user)\n");
}

#[test]
fn env_cwd_and_path_lookup() {
    let mut b = Bundle::new(&["sh", "-c", "echo $FOO; pwd"]);
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/work/deep/dir");
    });
    assert_eq!(run_in(&b, "env"), "bar baz\n/work/deep/dir\n");
    let mut b = Bundle::new(&["no-such-program"]);
    b.edit(|_| {});
    let out = b.run("nobin");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("\"no-such-program\": executable file not found in $PATH"),
        "{}",
        out.stderr
    );
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn rlimits_applied_and_raising_past_hard_fails() {
    let mut b = Bundle::new(&["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 800},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ])
    });
    assert_eq!(run_in(&b, "rl"), "512\n800\n0\n");
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    // Above fs.nr_open no one may raise NOFILE, CAP_SYS_RESOURCE or not.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if hard != u64::MAX {
        let too_high = hard.max(nr_open) + 1;
        b.edit(|c| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": too_high, "hard": too_high}])
        });
        let out = b.run("rl2");
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("process.rlimits[0] RLIMIT_NOFILE"),
            "{}",
            out.stderr
        );
        assert!(b.residue().is_empty());
    }
}

#[test]
fn oom_score_adj() {
    let mut b = Bundle::new(&["cat", "/proc/self/oom_score_adj"]);
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(run_in(&b, "oom"), "500\n");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let b = Bundle::new(&["ls", "/proc/self/fd"]);
    // ls opens the directory itself as fd 3.
    assert_eq!(run_in(&b, "fds"), "0\n1\n2\n3\n");
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut b2 = Bundle::new(&["sh", "-c", "ls /proc/$$/fd; cat <&3"]);
    b2.edit(|_| {});
    let file = b2.dir.join("passed");
    std::fs::write(&file, "through fd 3\n").unwrap();
    let f = std::fs::File::open(&file).unwrap();
    let mut cmd = b2.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b2.dir.to_str().unwrap(),
        "pres",
    ]);
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = f.as_raw_fd();
    // SAFETY: dup2 and fcntl in the forked child before exec, onto fd 3.
    unsafe {
        cmd.pre_exec(move || {
            let ret = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if ret < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_with_files(cmd, &b2.dir);
    assert_eq!(out.ok(), "0\n1\n2\n3\nthrough fd 3\n");
    let _ = bundle;
}

#[test]
fn scheduler_io_priority_and_personality() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "grep -E '^policy' /proc/self/sched | tr -s ' '; uname -m",
    ]);
    b.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let out = run_in(&b, "sched");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "policy : 3", "{out}");
    assert_eq!(lines[1], "i686", "{out}");
    // ioprio_get(IOPRIO_WHO_PROCESS, pid) of the container's process, from the host.
    b.edit(|c| c["process"]["args"] = json!(["sleep", "100"]));
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.berth(&["run", "-d", "--bundle", &bundle, "io"]).ok();
    let pid = b.state("io")["pid"].as_i64().unwrap();
    // SAFETY: ioprio_get only reads another process's I/O priority.
    let prio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid as libc::c_long) };
    assert_eq!(prio >> 13, 3, "class IDLE");
    let nice = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert_eq!(
        nice.rsplit(')').next().unwrap().split_whitespace().nth(16),
        Some("5")
    );
}
