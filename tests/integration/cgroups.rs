//! Cgroups, observed through the kernel's own files (inside the container through
//! its cgroup namespace, or on the host) and by effect: limits in the control
//! files, an OOM kill with its event, a fork loop stopped at pids.max, device
//! rules, pause/resume, live updates, ps, paths, bad resources refused cleanly,
//! and nothing left after delete. The same tests run on cgroup v1/hybrid hosts
//! and on a cgroup2 host (the VM lane).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// A bundle in its own cgroup namespace with /sys/fs/cgroup mounted.
fn cg_bundle(args: &[&str], resources: Value) -> Bundle {
    let mut b = Bundle::new(args);
    b.edit(|c| {
        c["linux"]["resources"] = resources;
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/sys/fs/cgroup",
            "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    });
    b
}

/// A control file as the container sees it: `/sys/fs/cgroup/<ctrl>/<v1>` on v1,
/// `/sys/fs/cgroup/<v2>` on cgroup2.
fn inside(ctrl: &str, v1: &str, v2: &str) -> String {
    if unified_host() {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{ctrl}/{v1}")
    }
}

fn read_host(b: &Bundle, ctrl: &str, file: &str) -> String {
    let p = host_cgroup(b, ctrl).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Whether a container's cgroup can get the hugetlb controller: a v1 hierarchy,
/// or a cgroup2 root that passes it down (this hybrid host's does not).
fn hugetlb_delegated() -> bool {
    let has = |f: &str| {
        std::fs::read_to_string(f).is_ok_and(|s| s.split_whitespace().any(|c| c == "hugetlb"))
    };
    Path::new("/sys/fs/cgroup/hugetlb").is_dir()
        || has("/sys/fs/cgroup/cgroup.subtree_control")
        || has("/sys/fs/cgroup/unified/cgroup.subtree_control")
}

/// The smallest huge page size the kernel has, as cgroup files spell it ("2MB").
fn hugepage_size() -> Option<String> {
    let mut kb: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kb.sort_unstable();
    let k = *kb.first()?;
    Some(if k >= 1 << 20 {
        format!("{}GB", k >> 20)
    } else {
        format!("{}MB", k >> 10)
    })
}

#[test]
fn resources_show_in_the_containers_control_files() {
    let v2 = unified_host();
    let mut files = vec![
        inside("memory", "memory.limit_in_bytes", "memory.max"),
        inside("memory", "memory.soft_limit_in_bytes", "memory.low"),
        inside("pids", "pids.max", "pids.max"),
        inside("cpu", "cpu.cfs_quota_us", "cpu.max"),
        inside("cpuset", "cpuset.cpus", "cpuset.cpus"),
    ];
    if !v2 {
        files.push(inside("cpu", "cpu.shares", ""));
        files.push(inside("memory", "memory.swappiness", ""));
    } else {
        files.push(inside("", "", "cpu.weight"));
    }
    let script = format!(
        "for f in {}; do cat $f; done; cat /proc/self/cgroup",
        files.join(" ")
    );
    let mut resources = json!({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20},
        "pids": {"limit": 42},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
    });
    if !v2 {
        resources["memory"]["swappiness"] = json!(10);
    }
    if let (Some(size), true) = (hugepage_size(), hugetlb_delegated()) {
        resources["hugepageLimits"] = json!([{"pageSize": size, "limit": 4 << 20}]);
    }
    let b = cg_bundle(&["sh", "-c", &script], resources);
    let out = b.run("res");
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], (64 << 20).to_string());
    assert_eq!(lines[1], (32 << 20).to_string());
    assert_eq!(lines[2], "42");
    if v2 {
        assert_eq!(lines[3], "50000 100000");
        assert_eq!(lines[4], "0");
        assert_eq!(lines[5], "20"); // 512 shares → weight 20, as runc converts
    } else {
        assert_eq!(lines[3], "50000");
        assert_eq!(lines[4], "0");
        assert_eq!(lines[5], "512");
        assert_eq!(lines[6], "10");
    }
    // Its own cgroup is the root of its cgroup namespace.
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.contains(":/"))
            .all(|l| l.ends_with(":/")),
        "{}",
        out.stdout
    );
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn hugetlb_limit_on_the_hosts_hierarchy() {
    let Some(size) = hugepage_size() else {
        eprintln!("no hugetlb controller: skipped");
        return;
    };
    let b = cg_bundle(
        &["sleep", "10"],
        json!({"hugepageLimits": [{"pageSize": size, "limit": 2 << 20}]}),
    );
    if !hugetlb_delegated() {
        // The host keeps hugetlb to its root: the limit cannot be applied, and
        // create says so, naming the field.
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "huge"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains(
                "linux.resources.hugepageLimits[0]: the hugetlb controller is not available"
            ),
            "{}",
            out.stderr
        );
        assert!(b.residue().is_empty(), "{:?}", b.residue());
        return;
    }
    b.create("huge");
    // On hybrid hosts hugetlb lives on the cgroup2 mount: hugetlb.<size>.max there.
    let path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let candidates = [
        Path::new("/sys/fs/cgroup/hugetlb")
            .join(&path)
            .join(format!("hugetlb.{size}.limit_in_bytes")),
        Path::new("/sys/fs/cgroup/unified")
            .join(&path)
            .join(format!("hugetlb.{size}.max")),
        Path::new("/sys/fs/cgroup")
            .join(&path)
            .join(format!("hugetlb.{size}.max")),
    ];
    let file = candidates
        .iter()
        .find(|p| p.exists())
        .expect("no hugetlb limit file");
    assert_eq!(
        std::fs::read_to_string(file).unwrap().trim(),
        (2 << 20).to_string()
    );
    b.berth(&["delete", "--force", "huge"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let mut resources = json!({"memory": {"limit": 24 << 20}});
    // Swap capped at the limit too, where the host accounts swap.
    if unified_host() || host_has("memory", "memory.memsw.limit_in_bytes") {
        resources["memory"]["swap"] = json!(24 << 20);
    }
    // sort keeps its whole input (one 200 MB line) in memory.
    let b = cg_bundle(
        &[
            "sh",
            "-c",
            "sleep 0.5; head -c 200m /dev/zero | sort > /dev/null; echo survived=$?",
        ],
        resources,
    );
    b.create("oom");
    let events = b.cmd(&["events", "--interval", "200ms", "oom"]);
    let log = b.dir.join("events.log");
    let mut ev = events_to(events, &log);
    b.berth(&["start", "oom"]).ok();
    b.wait_status("oom", "stopped");
    let _ = wait_exit(&mut ev, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["type"] == "oom" && v["id"] == "oom")),
        "no oom event: {text}"
    );
    let file = if unified_host() {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let counters = read_host(&b, "memory", file);
    assert!(
        counters
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{counters}"
    );
    b.berth(&["delete", "oom"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

fn host_has(ctrl: &str, file: &str) -> bool {
    Path::new("/sys/fs/cgroup").join(ctrl).join(file).exists()
}

fn events_to(mut cmd: std::process::Command, log: &Path) -> std::process::Child {
    cmd.stdout(std::fs::File::create(log).unwrap());
    cmd.stderr(std::process::Stdio::null());
    cmd.spawn().unwrap()
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn fork_loop_stops_at_pids_max() {
    let current = inside("pids", "pids.current", "pids.current");
    let mut b = cg_bundle(&["/sysprobe", "fork=50"], json!({"pids": {"limit": 8}}));
    install_helper(&b.rootfs(), "sysprobe");
    b.edit(|c| {
        c["process"]["args"] = json!(["sh", "-c", format!("/sysprobe fork=50; cat {current}")])
    });
    let out = b.run("forks");
    // sh and sysprobe count against the limit: 6 forks succeed, the 7th gets EAGAIN.
    assert_eq!(out.ok(), "forked=6 errno:11\n1\n", "{out:?}");
}

#[test]
fn device_rules_decide_what_opens() {
    // A node for /dev/fuse (c 10:229), outside the default list. Once the cgroup
    // lets an open through, the driver may still answer ENODEV (19) where fuse is
    // not loaded; the cgroup's refusal is EPERM (1).
    let mut b = cg_bundle(
        &[
            "/sysprobe",
            "openr=/dev/null",
            "openr=/dev/fusetest",
            "openw=/dev/fusetest",
        ],
        json!({"devices": [{"allow": false, "access": "rwm"}]}),
    );
    install_helper(&b.rootfs(), "sysprobe");
    let node = b.dir.join("fusetest");
    let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; makes a character device node in the test's own dir.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(10, 229)) };
    assert_eq!(rc, 0);
    let src = node.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/fusetest", "type": "bind", "source": src, "options": ["bind"]}));
    });
    let out = b.run("denied");
    assert_eq!(out.ok(), "openr=ok\nopenr=errno:1\nopenw=errno:1\n");
    // Allowed for reading by a later rule: reading passes the cgroup, writing not.
    b.edit(|c| {
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}));
    });
    let out = b.run("allowed");
    let text = out.ok();
    assert!(
        text == "openr=ok\nopenr=ok\nopenw=errno:1\n"
            || text == "openr=ok\nopenr=errno:19\nopenw=errno:1\n",
        "{text}"
    );
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn pause_stops_the_counter_and_resume_restarts_it() {
    let mut b = cg_bundle(
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /out/count; done",
        ],
        json!({}),
    );
    let out_dir = b.dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let src = out_dir.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/out", "type": "bind", "source": src, "options": ["rbind"]}),
        );
    });
    b.create("pz");
    b.berth(&["start", "pz"]).ok();
    // The loop truncates before it writes: retry a read that catches it between
    // (and, if the container was frozen right there, the file stays empty: that
    // reads as the last value seen).
    let last = std::cell::Cell::new(0u64);
    let count = || {
        for _ in 0..200 {
            let read = std::fs::read_to_string(out_dir.join("count")).ok();
            if let Some(n) = read.and_then(|t| t.trim().parse::<u64>().ok()) {
                last.set(n);
                return n;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        last.get()
    };
    let start = Instant::now();
    while count() < 10 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    b.berth(&["pause", "pz"]).ok();
    assert_eq!(b.state("pz")["status"], "paused");
    let frozen = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen, "the counter moved while paused");
    assert_eq!(b.berth(&["pause", "pz"]).code, 1);
    b.berth(&["resume", "pz"]).ok();
    assert_eq!(b.state("pz")["status"], "running");
    let start = Instant::now();
    while count() <= frozen && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let freezer = std::fs::read_to_string(host_cgroup(&b, "freezer").join("freezer.state"))
        .or_else(|_| std::fs::read_to_string(host_cgroup(&b, "").join("cgroup.freeze")))
        .unwrap_or_default();
    assert!(
        count() > frozen,
        "the counter did not move after resume (freezer: {freezer:?}, state: {})",
        b.state("pz")
    );
    assert_eq!(b.berth(&["resume", "pz"]).code, 1);
    // A paused container can be killed and deleted.
    b.berth(&["pause", "pz"]).ok();
    b.berth(&["delete", "--force", "pz"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn update_changes_live_limits() {
    let b = cg_bundle(
        &["sleep", "30"],
        json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}),
    );
    b.create("up");
    b.berth(&[
        "update",
        "--memory",
        "100m",
        "--pids-limit",
        "7",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "up",
    ])
    .ok();
    let v2 = unified_host();
    let mem = read_host(
        &b,
        "memory",
        if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    );
    assert_eq!(mem, (100u64 << 20).to_string());
    assert_eq!(read_host(&b, "pids", "pids.max"), "7");
    if v2 {
        assert_eq!(read_host(&b, "cpu", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read_host(&b, "cpu", "cpu.cfs_quota_us"), "20000");
    }
    // --resources from stdin, as engines pass it.
    let mut cmd = b.cmd(&["update", "--resources", "-", "up"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 9}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(read_host(&b, "pids", "pids.max"), "9");
    // checkBeforeUpdate refuses a limit below the current usage.
    let file = b.dir.join("tiny.json");
    std::fs::write(
        &file,
        r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
    )
    .unwrap();
    let out = b.berth(&["update", "--resources", file.to_str().unwrap(), "up"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("linux.resources.memory.limit"),
        "{}",
        out.stderr
    );
    let out = b.berth(&["update", "--memory", "lots", "up"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--memory"), "{}", out.stderr);
    b.berth(&["delete", "--force", "up"]).ok();
    assert_eq!(b.berth(&["update", "--pids-limit", "3", "up"]).code, 1);
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn ps_lists_the_containers_processes() {
    let b = cg_bundle(&["sh", "-c", "sleep 31 & sleep 32 & wait"], json!({}));
    b.create("ps");
    b.berth(&["start", "ps"]).ok();
    let start = Instant::now();
    let pids = loop {
        let out = b.berth(&["ps", "--format", "json", "ps"]);
        let pids: Vec<i64> = serde_json::from_str(out.ok()).unwrap();
        if pids.len() == 3 || start.elapsed() > Duration::from_secs(5) {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), 3, "{pids:?}");
    let init = b.state("ps")["pid"].as_i64().unwrap();
    assert!(pids.contains(&init));
    let table = b.berth(&["ps", "ps"]);
    let text = table.ok();
    assert!(text.lines().next().unwrap().contains("PID"), "{text}");
    assert!(
        text.contains("sleep 31") && text.contains("sleep 32"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    b.berth(&["kill", "--all", "ps", "KILL"]).ok();
    b.wait_status("ps", "stopped");
    b.berth(&["delete", "ps"]).ok();
    assert_eq!(b.berth(&["ps", "ps"]).code, 1);
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn events_stats_in_runcs_shape() {
    let b = cg_bundle(
        &["sleep", "30"],
        json!({"pids": {"limit": 11}, "memory": {"limit": 50 << 20}}),
    );
    b.create("ev");
    let out = b.berth(&["events", "--stats", "ev"]);
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], "ev");
    assert_eq!(v["data"]["pids"]["limit"], 11);
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 50 << 20);
    assert!(v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(v["data"]["cpu"]["usage"]["total"].is_u64(), "{v}");
    b.berth(&["delete", "--force", "ev"]).ok();
}

#[test]
fn default_and_systemd_cgroup_paths() {
    // Empty cgroupsPath: /berth/<id>.
    let mut b = Bundle::new(&["sleep", "30"]);
    let id = format!("dflt-{}", std::process::id());
    b.edit(|c| {
        c["linux"]
            .as_object_mut()
            .unwrap()
            .remove("cgroupsPath")
            .map(drop)
            .unwrap_or(())
    });
    b.create(&id);
    assert!(!cgroup_dirs(&format!("/berth/{id}")).is_empty());
    b.berth(&["delete", "--force", &id]).ok();
    assert!(cgroup_dirs(&format!("/berth/{id}")).is_empty());
    // --systemd-cgroup: slice:prefix:name laid out as systemd would.
    let name = format!("sd{}", std::process::id());
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("berthtest-inner.slice:berth:{name}")));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["--systemd-cgroup", "create", "--bundle", &bundle, "sd"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let path = format!("/berthtest.slice/berthtest-inner.slice/berth-{name}.scope");
    assert!(!cgroup_dirs(&path).is_empty(), "{path}");
    b.berth(&["delete", "--force", "sd"]).ok();
    assert!(cgroup_dirs("/berthtest.slice").is_empty());
    let out = b.berth(&["--systemd-cgroup", "create", "--bundle", &bundle, "sd2"]);
    assert!(out.code == 0 || out.code == 1);
    b.berth(&["delete", "--force", "sd2"]).ok();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("/not/systemd"));
    let out = b.berth(&["--systemd-cgroup", "create", "--bundle", &bundle, "sd3"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("slice:prefix:name"), "{}", out.stderr);
}

#[test]
fn init_is_in_its_cgroup_before_prestart_hooks() {
    let mut b = Bundle::new(&["true"]);
    let log = b.dir.join("hook-cgroup");
    let script = format!(
        "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); cat /proc/$pid/cgroup > {}",
        log.display()
    );
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
    });
    b.run("hooked").ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let path = b.config["linux"]["cgroupsPath"].as_str().unwrap();
    assert!(
        text.lines()
            .filter(|l| !l.contains("name="))
            .all(|l| l.ends_with(path)),
        "{text}"
    );
}

#[test]
fn bad_resources_fail_cleanly() {
    let v2 = unified_host();
    let mut cases = vec![
        (json!({"cpu": {"cpus": "9999"}}), "linux.resources.cpu.cpus"),
        (
            json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
            "linux.resources.devices[0]",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness",
        ),
        (
            json!({"unified": {"../escape": "1"}}),
            "linux.resources.unified",
        ),
    ];
    if !Path::new("/sys/fs/cgroup/net_cls").exists() {
        cases.push((
            json!({"network": {"classID": 1}}),
            "linux.resources.network.classID",
        ));
    }
    if !v2 {
        cases.push((
            json!({"cpu": {"realtimeRuntime": 999999999, "realtimePeriod": 1000}}),
            "linux.resources.cpu.realtime",
        ));
    }
    for (resources, field) in cases {
        let b = cg_bundle(&["true"], resources);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
        assert_eq!(out.code, 1, "{field}");
        assert!(out.stderr.contains(field), "want {field}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(b.residue().is_empty(), "{field}: {:?}", b.residue());
    }
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("/berth/../../escape"));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("linux.cgroupsPath"), "{}", out.stderr);
}

#[test]
fn a_cgroup_holding_processes_is_not_joined() {
    let b = Bundle::new(&["sleep", "30"]);
    b.create("first");
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "second"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not empty"), "{}", out.stderr);
    assert_eq!(b.state("first")["status"], "created");
    b.berth(&["delete", "--force", "first"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

/// The first block device of the host, as "major:minor".
fn block_device() -> Option<String> {
    let mut devs: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    devs.sort();
    devs.into_iter().next()
}

#[test]
fn burst_idle_oom_killer_unified_and_block_io() {
    let v2 = unified_host();
    let mut resources = json!({
        "cpu": {"quota": 50000, "period": 100000, "burst": 10000, "idle": 1},
        "unified": {"cgroup.max.depth": "5"},
    });
    if !v2 {
        resources["memory"] = json!({"disableOOMKiller": true});
    }
    let dev = block_device();
    if let Some(d) = &dev {
        let (major, minor) = d.split_once(':').unwrap();
        resources["blockIO"] = json!({"throttleReadBpsDevice": [
            {"major": major.parse::<i64>().unwrap(), "minor": minor.parse::<i64>().unwrap(), "rate": 1048576}]});
    }
    let b = cg_bundle(&["sleep", "30"], resources);
    b.create("more");
    let cpu = |v1: &str, v2f: &str| read_host(&b, "cpu", if v2 { v2f } else { v1 });
    assert_eq!(cpu("cpu.cfs_burst_us", "cpu.max.burst"), "10000");
    assert_eq!(cpu("cpu.idle", "cpu.idle"), "1");
    let path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let unified_dir = if v2 {
        Path::new("/sys/fs/cgroup").join(&path)
    } else {
        Path::new("/sys/fs/cgroup/unified").join(&path)
    };
    assert_eq!(
        std::fs::read_to_string(unified_dir.join("cgroup.max.depth"))
            .unwrap()
            .trim(),
        "5"
    );
    if !v2 {
        assert!(read_host(&b, "memory", "memory.oom_control").contains("oom_kill_disable 1"));
    }
    if let Some(d) = &dev {
        let (file, want) = if v2 {
            ("io.max", format!("{d} rbps=1048576"))
        } else {
            ("blkio.throttle.read_bps_device", format!("{d} 1048576"))
        };
        let got = read_host(&b, if v2 { "io" } else { "blkio" }, file);
        assert!(got.contains(&want), "{file}: {got}");
    }
    b.berth(&["delete", "--force", "more"]).ok();
    // A block IO weight needs a scheduler with weights (BFQ): applied where the
    // host has the file, else refused with the field named.
    let b = cg_bundle(&["true"], json!({"blockIO": {"weight": 300}}));
    let weight_file = if v2 {
        "io.bfq.weight"
    } else {
        "blkio.bfq.weight"
    };
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "w"]);
    if out.code == 0 {
        // BFQ takes the weight as is; io.weight (1..10000) gets runc's conversion.
        let ctrl = if v2 { "io" } else { "blkio" };
        let bfq = host_cgroup(&b, ctrl).join(weight_file).exists();
        let (file, want) = if bfq {
            (weight_file, "300")
        } else {
            ("io.weight", "default 2930")
        };
        let got = read_host(&b, ctrl, file);
        assert!(got.contains(want), "{file}: {got}");
        b.berth(&["delete", "--force", "w"]).ok();
    } else {
        assert!(
            out.stderr.contains("linux.resources.blockIO.weight"),
            "{}",
            out.stderr
        );
    }
    assert!(b.residue().is_empty(), "{:?}", b.residue());
    // Weight 0 means "not set", as runc reads it: dockerd sends it for every
    // container. Create succeeds on any host and leaves the kernel's weight.
    let zero = json!({"weight": 0, "leafWeight": 0,
        "weightDevice": [{"major": 7, "minor": 0, "weight": 0, "leafWeight": 0}]});
    let b = cg_bundle(&["true"], json!({ "blockIO": zero }));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "w0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    b.berth(&["delete", "--force", "w0"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn relative_cgroups_path_and_hook_added_device_rules_survive_update() {
    // Relative: under berth's own cgroup on v1 hierarchies, under the root on cgroup2.
    let name = format!("berth-rel-{}", std::process::id());
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(name));
    b.create("rel");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let pids_own = own
        .lines()
        .find_map(|l| {
            if unified_host() {
                l.strip_prefix("0::")
            } else {
                l.strip_suffix("")
                    .and_then(|l| l.split_once(":pids:").map(|(_, p)| p))
            }
        })
        .unwrap()
        .to_string();
    let dir = if unified_host() {
        Path::new("/sys/fs/cgroup").join(&name)
    } else {
        Path::new("/sys/fs/cgroup/pids")
            .join(pids_own.trim_start_matches('/'))
            .join(&name)
    };
    assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
    b.berth(&["delete", "--force", "rel"]).ok();
    assert!(!dir.exists());
    if unified_host() {
        return;
    }
    // v1: a rule a hook wrote into devices.allow is still there after an update.
    let mut b = Bundle::new(&["sleep", "30"]);
    let path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .to_string();
    let allow = format!("/sys/fs/cgroup/devices{path}/devices.allow");
    let script = format!("echo 'c 10:229 rw' > {allow}");
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
    });
    b.create("hooked");
    let list =
        || std::fs::read_to_string(format!("/sys/fs/cgroup/devices{path}/devices.list")).unwrap();
    assert!(list().lines().any(|l| l == "c 10:229 rw"), "{}", list());
    b.berth(&["update", "--memory", "80m", "--pids-limit", "9", "hooked"])
        .ok();
    let file = b.dir.join("r.json");
    std::fs::write(
        &file,
        r#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 10}}"#,
    )
    .unwrap();
    b.berth(&["update", "--resources", file.to_str().unwrap(), "hooked"])
        .ok();
    assert!(list().lines().any(|l| l == "c 10:229 rw"), "{}", list());
    b.berth(&["delete", "--force", "hooked"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}
