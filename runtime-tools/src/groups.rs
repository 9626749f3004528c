//! The check groups. Each builds bundles from the base config plus one change,
//! drives the runtime through them, and reports what it observed.

use std::path::Path;

use serde_json::{json, Value};

use crate::harness::{Bundle, Report, Runtime};

pub const GROUPS: [&str; 8] = [
    "lifecycle",
    "state",
    "config",
    "namespaces",
    "hooks",
    "errors",
    "kill",
    "cgroups",
];

pub fn run(group: &str, rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    println!("# group {group}");
    match group {
        "lifecycle" => lifecycle(rt, checker, r),
        "state" => state(rt, checker, r),
        "config" => config(rt, checker, r),
        "namespaces" => namespaces(rt, checker, r),
        "hooks" => hooks(rt, checker, r),
        "errors" => errors(rt, checker, r),
        "kill" => kill(rt, checker, r),
        "cgroups" => crate::cgroups::run(rt, checker, r),
        _ => Ok(()),
    }?;
    rt.cleanup();
    Ok(())
}

fn lifecycle(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let b = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
    let pid_file = b.dir.join("pid");
    let out = rt.run(&[
        "create",
        "--bundle",
        &b.path(),
        "--pid-file",
        &pid_file.display().to_string(),
        "lc",
    ]);
    r.check("lifecycle/create succeeds", out.code == 0, &out.stderr);
    let st = rt.state("lc");
    r.check(
        "lifecycle/state after create is created",
        st["status"] == "created",
        &st.to_string(),
    );
    let pid = st["pid"].as_i64().unwrap_or(0);
    let written = std::fs::read_to_string(&pid_file).unwrap_or_default();
    r.check(
        "lifecycle/pid-file holds init's pid",
        written.trim() == pid.to_string(),
        &written,
    );
    let again = rt.run(&["create", "--bundle", &b.path(), "lc"]);
    r.check(
        "lifecycle/create with a duplicate id fails",
        again.code != 0,
        "",
    );
    r.check(
        "lifecycle/failed duplicate create keeps the first",
        rt.state("lc")["status"] == "created",
        "",
    );
    let out = rt.run(&["start", "lc"]);
    r.check("lifecycle/start succeeds", out.code == 0, &out.stderr);
    r.check(
        "lifecycle/state after start is running",
        rt.state("lc")["status"] == "running",
        "",
    );
    let out = rt.run(&["start", "lc"]);
    r.check(
        "lifecycle/start of a running container fails",
        out.code != 0,
        "",
    );
    let out = rt.run(&["delete", "lc"]);
    r.check(
        "lifecycle/delete of a running container fails",
        out.code != 0,
        "",
    );
    let out = rt.run(&["kill", "lc", "KILL"]);
    r.check("lifecycle/kill succeeds", out.code == 0, &out.stderr);
    r.check(
        "lifecycle/state after kill is stopped",
        rt.wait_status("lc", "stopped"),
        "",
    );
    let out = rt.run(&["delete", "lc"]);
    r.check(
        "lifecycle/delete of a stopped container succeeds",
        out.code == 0,
        &out.stderr,
    );
    r.check(
        "lifecycle/state after delete fails",
        rt.run(&["state", "lc"]).code != 0,
        "",
    );
    let out = rt.run(&["create", "--bundle", &b.path(), "lc2"]);
    r.check("lifecycle/create again", out.code == 0, &out.stderr);
    let out = rt.run(&["delete", "--force", "lc2"]);
    r.check(
        "lifecycle/delete --force of a created container",
        out.code == 0 && rt.run(&["state", "lc2"]).code != 0,
        &out.stderr,
    );
    for verb in ["start", "state", "kill", "delete"] {
        let out = rt.run(&[verb, "no-such-container"]);
        r.check(
            &format!("lifecycle/{verb} of an unknown id fails"),
            out.code != 0,
            "",
        );
    }
    Ok(())
}

fn state(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
    b.config["annotations"] = json!({"org.example.key": "value"});
    b.save()?;
    let out = rt.run(&["create", "--bundle", &b.path(), "st"]);
    r.check("state/create", out.code == 0, &out.stderr);
    let st = rt.state("st");
    r.check(
        "state/ociVersion",
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        &st.to_string(),
    );
    r.check("state/id", st["id"] == "st", &st.to_string());
    r.check(
        "state/bundle is absolute",
        st["bundle"] == b.path().as_str(),
        &st.to_string(),
    );
    r.check(
        "state/pid is positive",
        st["pid"].as_i64().is_some_and(|p| p > 0),
        &st.to_string(),
    );
    r.check(
        "state/annotations",
        st["annotations"]["org.example.key"] == "value",
        &st.to_string(),
    );
    // Config changes after create have no effect on the container.
    b.config["process"]["args"] = json!(["false"]);
    b.config["hostname"] = json!("changed");
    b.save()?;
    let out = rt.run(&["start", "st"]);
    r.check(
        "state/start after the bundle changed",
        out.code == 0,
        &out.stderr,
    );
    let pid = st["pid"].as_i64().unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    r.check(
        "state/config changes after create have no effect",
        comm.trim() == "sleep",
        &comm,
    );
    Ok(())
}

/// One config variant: runs runtimetest and reports each of its TAP lines.
fn checked_run(
    rt: &Runtime,
    checker: &Path,
    r: &mut Report,
    name: &str,
    edit: impl FnOnce(&mut Value),
) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["/.oci/runtimetest"])?;
    edit(&mut b.config);
    b.save()?;
    let out = rt.run(&["run", "--bundle", &b.path(), &format!("cfg-{name}")]);
    let mut lines = 0;
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("not ok ") {
            let (_, what) = rest.split_once(" - ").unwrap_or(("", rest));
            let (check, why) = what.split_once(" # ").unwrap_or((what, ""));
            r.check(&format!("config/{name}: {check}"), false, why);
            lines += 1;
        } else if let Some(rest) = line.strip_prefix("ok ") {
            let (_, what) = rest.split_once(" - ").unwrap_or(("", rest));
            r.check(&format!("config/{name}: {what}"), true, "");
            lines += 1;
        }
    }
    if lines == 0 {
        r.check(
            &format!("config/{name}: container ran runtimetest"),
            false,
            &format!("exit {}: {}", out.code, out.stderr),
        );
    }
    Ok(())
}

fn config(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    checked_run(rt, checker, r, "default", |_| {})?;
    checked_run(rt, checker, r, "user", |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 77], "umask": 63});
        c["process"]["cwd"] = json!("/tmp");
    })?;
    checked_run(rt, checker, r, "capabilities", |c| {
        let caps = json!(["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": ["CAP_CHOWN"], "permitted": caps, "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]});
        c["process"]["noNewPrivileges"] = json!(false);
    })?;
    checked_run(rt, checker, r, "rlimits", |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}, {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200}]);
        c["process"]["oomScoreAdj"] = json!(300);
    })?;
    checked_run(rt, checker, r, "env-cwd", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "A=1", "B=two words"]);
        c["process"]["cwd"] = json!("/var/created/by/runtime");
        c["root"]["readonly"] = json!(false);
    })?;
    checked_run(rt, checker, r, "uts", |c| {
        c["hostname"] = json!("conf-host");
        c["domainname"] = json!("conf.example");
    })?;
    checked_run(rt, checker, r, "devices", |c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/fuse-like", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
            {"path": "/dev/sub/loopish", "type": "b", "major": 7, "minor": 100, "fileMode": 0o660, "uid": 0, "gid": 6}
        ]);
    })?;
    checked_run(rt, checker, r, "mounts", |c| {
        let m = c["mounts"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut m = m;
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m"]}));
        m.push(json!({"destination": "/ro-bind", "type": "bind", "source": "/etc", "options": ["rbind", "ro", "nosuid"]}));
        m.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}));
        c["mounts"] = Value::Array(m);
    })?;
    for prop in ["rprivate", "rslave", "rshared"] {
        checked_run(rt, checker, r, &format!("propagation-{prop}"), |c| {
            c["linux"]["rootfsPropagation"] = json!(prop);
        })?;
    }
    checked_run(rt, checker, r, "unknown-fields", |c| {
        c["org.example.future"] = json!({"anything": [1, 2, 3]});
        c["process"]["someNewField"] = json!(true);
        c["linux"]["someNewSection"] = json!({"a": "b"});
    })?;
    checked_run(rt, checker, r, "seccomp", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO"}]});
    })?;
    checked_run(rt, checker, r, "sysctl", |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    })?;
    checked_run(rt, checker, r, "userns", |c| {
        if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
            ns.push(json!({"type": "user"}));
        }
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["root"]["readonly"] = json!(false);
    })?;
    Ok(())
}

fn ns_link(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn namespaces(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]);
    b.save()?;
    let out = rt.run(&["run", "-d", "--bundle", &b.path(), "ns1"]);
    r.check("namespaces/run -d", out.code == 0, &out.stderr);
    let pid = rt.state("ns1")["pid"].as_i64().unwrap_or(0);
    let me = std::process::id() as i64;
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        r.check(
            &format!("namespaces/new {kind}"),
            ns_link(pid, kind) != ns_link(me, kind) && !ns_link(pid, kind).is_empty(),
            "",
        );
    }
    for kind in ["user", "time"] {
        r.check(
            &format!("namespaces/inherited {kind}"),
            ns_link(pid, kind) == ns_link(me, kind),
            "",
        );
    }
    let mut j = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
    j.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": format!("/proc/{pid}/ns/net")}, {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")}, {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}]);
    j.config.as_object_mut().map(|o| o.remove("hostname"));
    j.save()?;
    let out = rt.run(&["run", "-d", "--bundle", &j.path(), "ns2"]);
    r.check("namespaces/run joining by path", out.code == 0, &out.stderr);
    let pid2 = rt.state("ns2")["pid"].as_i64().unwrap_or(0);
    for kind in ["net", "ipc", "uts"] {
        r.check(
            &format!("namespaces/joined {kind}"),
            pid2 > 0 && ns_link(pid2, kind) == ns_link(pid, kind),
            "",
        );
    }
    r.check(
        "namespaces/new pid beside joined",
        pid2 > 0 && ns_link(pid2, "pid") != ns_link(pid, "pid"),
        "",
    );
    let mut w = Bundle::new(&rt.work, checker, &["true"])?;
    w.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": format!("/proc/{pid}/ns/uts")}]);
    w.config.as_object_mut().map(|o| o.remove("hostname"));
    w.save()?;
    let out = rt.run(&["create", "--bundle", &w.path(), "ns3"]);
    r.check(
        "namespaces/path of the wrong type fails",
        out.code != 0,
        &out.stdout,
    );
    Ok(())
}

fn hooks(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["true"])?;
    let log = b.dir.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")], "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    b.config["root"]["readonly"] = json!(false);
    b.save()?;
    let out = rt.run(&["create", "--bundle", &b.path(), "hk"]);
    r.check("hooks/create", out.code == 0, &out.stderr);
    let pid = rt.state("hk")["pid"].clone();
    let _ = rt.run(&["start", "hk"]);
    rt.wait_status("hk", "stopped");
    let _ = rt.run(&["delete", "hk"]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').next()).collect();
    r.check(
        "hooks/order",
        names
            == [
                "prestart",
                "createRuntime",
                "createContainer",
                "poststart",
                "poststop",
            ],
        &text,
    );
    for line in &lines {
        let name = line.split(' ').next().unwrap_or("");
        let st: Value = line
            .find('{')
            .and_then(|i| serde_json::from_str(&line[i..]).ok())
            .unwrap_or(Value::Null);
        r.check(&format!("hooks/{name} state id"), st["id"] == "hk", line);
        // Hooks in the container's namespaces see the pid as the container sees it.
        let want_pid = if name == "createContainer" {
            json!(1)
        } else {
            pid.clone()
        };
        if name != "poststop" {
            r.check(
                &format!("hooks/{name} state pid"),
                st["pid"] == want_pid,
                line,
            );
        }
        // The spec does not say whether poststart sees created or running.
        let want: &[&str] = match name {
            "poststart" => &["created", "running"],
            "poststop" => &["stopped"],
            _ => &["creating"],
        };
        r.check(
            &format!("hooks/{name} state status"),
            want.iter().any(|w| st["status"] == *w),
            line,
        );
    }
    let mut f = Bundle::new(&rt.work, checker, &["true"])?;
    f.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    f.save()?;
    let out = rt.run(&["create", "--bundle", &f.path(), "hkf"]);
    r.check("hooks/failing prestart fails create", out.code != 0, "");
    let st = rt.run(&["state", "hkf"]);
    r.check(
        "hooks/failing prestart leaves no container",
        st.code != 0 || st.stdout.contains("stopped"),
        &st.stdout,
    );
    Ok(())
}

fn errors(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 9] = [
        ("bad ociVersion", |c| c["ociVersion"] = json!("9.9.9")),
        ("missing process.args", |c| c["process"]["args"] = json!([])),
        ("unknown capability", |c| {
            c["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"])
        }),
        ("invalid rlimit type", |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
        }),
        ("unknown namespace type", |c| {
            c["linux"]["namespaces"] = json!([{"type": "bogus"}])
        }),
        ("missing rootfs", |c| {
            c["root"]["path"] = json!("no-such-rootfs")
        }),
        ("missing program", |c| {
            c["process"]["args"] = json!(["/no/such/program"])
        }),
        ("uid of wrong type", |c| {
            c["process"]["user"]["uid"] = json!("root")
        }),
        ("namespace path that does not exist", |c| {
            c["linux"]["namespaces"] = json!([{"type": "network", "path": "/no/such/ns"}])
        }),
    ];
    for (i, (name, edit)) in cases.iter().enumerate() {
        let mut b = Bundle::new(&rt.work, checker, &["true"])?;
        edit(&mut b.config);
        b.save()?;
        let id = format!("err{i}");
        let out = rt.run(&["create", "--bundle", &b.path(), &id]);
        r.check(
            &format!("errors/{name}: create fails"),
            out.code != 0,
            &out.stdout,
        );
        let st = rt.run(&["state", &id]);
        r.check(
            &format!("errors/{name}: nothing left"),
            st.code != 0,
            &st.stdout,
        );
    }
    let b = Bundle::new(&rt.work, checker, &["true"])?;
    std::fs::write(b.dir.join("config.json"), "{ broken")?;
    let out = rt.run(&["create", "--bundle", &b.path(), "errjson"]);
    r.check(
        "errors/malformed config.json: create fails",
        out.code != 0,
        "",
    );
    Ok(())
}

fn kill(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["sh", "-c", "trap 'touch /out/usr1' USR1; trap 'touch /out/hup' HUP; touch /out/ready; while true; do sleep 0.05; done"])?;
    let out_dir = b.dir.join("out");
    std::fs::create_dir_all(&out_dir)?;
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind"]}),
        );
    }
    b.save()?;
    let out = rt.run(&["run", "-d", "--bundle", &b.path(), "kl"]);
    r.check("kill/run -d", out.code == 0, &out.stderr);
    let wait_file = |f: &str| {
        (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            out_dir.join(f).exists()
        })
    };
    r.check("kill/container ready", wait_file("ready"), "");
    let out = rt.run(&["kill", "kl", "USR1"]);
    r.check(
        "kill/by name USR1",
        out.code == 0 && wait_file("usr1"),
        &out.stderr,
    );
    let out = rt.run(&["kill", "kl", "1"]);
    r.check(
        "kill/by number 1 (HUP)",
        out.code == 0 && wait_file("hup"),
        &out.stderr,
    );
    let out = rt.run(&["kill", "kl", "SIGKILL"]);
    r.check(
        "kill/by name SIGKILL",
        out.code == 0 && rt.wait_status("kl", "stopped"),
        &out.stderr,
    );
    let out = rt.run(&["kill", "kl", "TERM"]);
    r.check("kill/of a stopped container fails", out.code != 0, "");
    Ok(())
}
