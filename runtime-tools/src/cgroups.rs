//! The cgroups group: linux.resources as the kernel shows them in the container's
//! cgroup (read on the host through cgroupsPath) on v1, hybrid and v2 hosts; init
//! inside it; update, pause and resume; and the cgroup gone after delete.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{Bundle, Report, Runtime};

fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The control file `file` of `ctrl` for cgroup `path`, wherever this host keeps it.
fn control(ctrl: &str, path: &str, file: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    [
        Path::new("/sys/fs/cgroup").join(ctrl).join(rel).join(file),
        Path::new("/sys/fs/cgroup/unified").join(rel).join(file),
        Path::new("/sys/fs/cgroup").join(rel).join(file),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn read(ctrl: &str, path: &str, file: &str) -> String {
    control(ctrl, path, file)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

struct Case {
    name: &'static str,
    resources: Value,
    /// (controller, file, expected content); files the host lacks are left out.
    expect: Vec<(&'static str, String, String)>,
}

fn cases() -> Vec<Case> {
    let v2 = unified();
    let mut out = Vec::new();
    let mb = |n: i64| n << 20;
    let mut memory = json!({"limit": mb(64), "reservation": mb(32)});
    let mut mem_expect = if v2 {
        vec![
            ("memory", "memory.max".to_string(), mb(64).to_string()),
            ("memory", "memory.low".into(), mb(32).to_string()),
        ]
    } else {
        vec![
            (
                "memory",
                "memory.limit_in_bytes".to_string(),
                mb(64).to_string(),
            ),
            (
                "memory",
                "memory.soft_limit_in_bytes".into(),
                mb(32).to_string(),
            ),
        ]
    };
    if v2 {
        memory["swap"] = json!(mb(128));
        mem_expect.push(("memory", "memory.swap.max".into(), mb(64).to_string()));
    } else {
        memory["swappiness"] = json!(30);
        mem_expect.push(("memory", "memory.swappiness".into(), "30".into()));
        if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
            memory["swap"] = json!(mb(128));
            mem_expect.push((
                "memory",
                "memory.memsw.limit_in_bytes".into(),
                mb(128).to_string(),
            ));
        }
    }
    out.push(Case {
        name: "memory",
        resources: json!({"memory": memory}),
        expect: mem_expect,
    });
    out.push(Case {
        name: "cpu",
        resources: json!({"cpu": {"shares": 2048, "quota": 20000, "period": 50000, "cpus": "0", "mems": "0"}}),
        expect: if v2 {
            vec![
                ("cpu", "cpu.weight".into(), "79".into()),
                ("cpu", "cpu.max".into(), "20000 50000".into()),
                ("cpuset", "cpuset.cpus".into(), "0".into()),
                ("cpuset", "cpuset.mems".into(), "0".into()),
            ]
        } else {
            vec![
                ("cpu", "cpu.shares".into(), "2048".into()),
                ("cpu", "cpu.cfs_quota_us".into(), "20000".into()),
                ("cpu", "cpu.cfs_period_us".into(), "50000".into()),
                ("cpuset", "cpuset.cpus".into(), "0".into()),
                ("cpuset", "cpuset.mems".into(), "0".into()),
            ]
        },
    });
    out.push(Case {
        name: "pids",
        resources: json!({"pids": {"limit": 33}}),
        expect: vec![("pids", "pids.max".into(), "33".into())],
    });
    let delegated = |f: &str| {
        std::fs::read_to_string(f).is_ok_and(|s| s.split_whitespace().any(|c| c == "hugetlb"))
    };
    let hugetlb = Path::new("/sys/fs/cgroup/hugetlb").is_dir()
        || delegated("/sys/fs/cgroup/cgroup.subtree_control")
        || delegated("/sys/fs/cgroup/unified/cgroup.subtree_control");
    if !hugetlb {
        println!("# cgroups: this host does not delegate the hugetlb controller");
    }
    if let (Some(size), true) = (hugepage_size(), hugetlb) {
        let file = if Path::new("/sys/fs/cgroup/hugetlb").is_dir() {
            format!("hugetlb.{size}.limit_in_bytes")
        } else {
            format!("hugetlb.{size}.max")
        };
        out.push(Case {
            name: "hugetlb",
            resources: json!({"hugepageLimits": [{"pageSize": size, "limit": mb(4)}]}),
            expect: vec![("hugetlb", file, mb(4).to_string())],
        });
    }
    if !v2 {
        out.push(Case {
            name: "devices",
            resources: json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}),
            expect: vec![("devices", "devices.list".into(), "c 10:229 rw".into())],
        });
    }
    out
}

pub fn run(rt: &Runtime, checker: &Path, r: &mut Report) -> std::io::Result<()> {
    let base = format!("/oci-conformance/{}", std::process::id());
    for (i, case) in cases().into_iter().enumerate() {
        let path = format!("{base}/{}", case.name);
        let mut b = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.config["linux"]["resources"] = case.resources;
        b.save()?;
        let id = format!("cg{i}");
        let out = rt.run(&["create", "--bundle", &b.path(), &id]);
        r.check(
            &format!("cgroups/{}: create", case.name),
            out.code == 0,
            &out.stderr,
        );
        for (ctrl, file, want) in &case.expect {
            if control(ctrl, &path, file).is_none() && out.code == 0 {
                println!("# cgroups/{}: this host has no {file}", case.name);
                continue;
            }
            let got = read(ctrl, &path, file);
            let ok = if *file == "devices.list" {
                got.lines().any(|l| l == want) && !got.contains("a *:* rwm")
            } else {
                got == *want
            };
            r.check(
                &format!("cgroups/{}: {file}", case.name),
                ok,
                &format!("want {want:?}, got {got:?}"),
            );
        }
        let _ = rt.run(&["delete", "--force", &id]);
        let left = control(
            case.expect.first().map_or("pids", |e| e.0),
            &path,
            "cgroup.procs",
        );
        r.check(
            &format!("cgroups/{}: cgroup removed by delete", case.name),
            left.is_none(),
            &format!("{left:?}"),
        );
    }
    lifecycle(rt, checker, r, &format!("{base}/life"))
}

/// init in its cgroup, update, pause/resume, removal.
fn lifecycle(rt: &Runtime, checker: &Path, r: &mut Report, path: &str) -> std::io::Result<()> {
    let mut b = Bundle::new(&rt.work, checker, &["sleep", "100"])?;
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 50}});
    b.save()?;
    let out = rt.run(&["run", "-d", "--bundle", &b.path(), "cglife"]);
    r.check("cgroups/run -d", out.code == 0, &out.stderr);
    let pid = rt.state("cglife")["pid"].as_i64().unwrap_or(0);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    r.check(
        "cgroups/init is in cgroupsPath",
        own.lines().any(|l| l.ends_with(path)),
        &own,
    );
    let out = rt.run(&["update", "--pids-limit", "12", "cglife"]);
    r.check("cgroups/update", out.code == 0, &out.stderr);
    let max = read("pids", path, "pids.max");
    r.check("cgroups/update changed pids.max", max == "12", &max);
    let out = rt.run(&["pause", "cglife"]);
    r.check("cgroups/pause", out.code == 0, &out.stderr);
    let st = rt.state("cglife");
    r.check(
        "cgroups/state after pause is paused",
        st["status"] == "paused",
        &st.to_string(),
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let frozen = if unified() {
        read("", path, "cgroup.events").contains("frozen 1")
    } else {
        read("freezer", path, "freezer.state") == "FROZEN"
    };
    r.check("cgroups/paused cgroup is frozen", frozen, &stat);
    let out = rt.run(&["resume", "cglife"]);
    r.check("cgroups/resume", out.code == 0, &out.stderr);
    r.check(
        "cgroups/state after resume is running",
        rt.state("cglife")["status"] == "running",
        "",
    );
    let out = rt.run(&["kill", "cglife", "KILL"]);
    r.check("cgroups/kill", out.code == 0, &out.stderr);
    rt.wait_status("cglife", "stopped");
    let out = rt.run(&["delete", "cglife"]);
    r.check("cgroups/delete", out.code == 0, &out.stderr);
    r.check(
        "cgroups/cgroup removed by delete",
        control("pids", path, "cgroup.procs").is_none(),
        "",
    );
    Ok(())
}

/// The smallest huge page size the kernel has, as cgroup files spell it ("2MB").
pub fn hugepage_size() -> Option<String> {
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
    } else if k >= 1 << 10 {
        format!("{}MB", k >> 10)
    } else {
        format!("{k}KB")
    })
}
