//! Load: a thousand run/delete cycles, fifty containers created and deleted in
//! parallel, and ten racing creates of one id; the host before and after must be
//! the same (mounts, cgroups, the state root, processes, /dev/shm, /tmp).

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;
use crate::serial;

/// What berth could leave behind, as sets of lines.
#[derive(Debug, PartialEq)]
struct Host {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    state: BTreeSet<String>,
    processes: BTreeSet<String>,
    shm: BTreeSet<String>,
    tmp: BTreeSet<String>,
}

fn list(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn walk(dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.insert(e.path().display().to_string());
            walk(&e.path(), out);
        }
    }
}

impl Host {
    fn take(b: &Bundle) -> Host {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
            .collect();
        let mut cgroups = BTreeSet::new();
        walk(Path::new("/sys/fs/cgroup"), &mut cgroups);
        // Processes of berth or of a container of this bundle.
        let rootfs = b.rootfs();
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|p| {
                std::fs::read_link(p.path().join("root")).is_ok_and(|r| r.starts_with(&rootfs))
                    || std::fs::read_to_string(p.path().join("cmdline"))
                        .is_ok_and(|c| c.contains(b.root.to_str().unwrap()))
            })
            .map(|p| p.path().display().to_string())
            .collect();
        let state = list(&b.root)
            .into_iter()
            .filter(|e| !e.starts_with('@'))
            .collect();
        Host {
            mounts,
            cgroups,
            state,
            processes,
            shm: list(Path::new("/dev/shm")),
            tmp: list(Path::new("/tmp")),
        }
    }
}

fn same(before: &Host, after: &Host) {
    let diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
        let added: Vec<_> = b.difference(a).collect();
        let gone: Vec<_> = a.difference(b).collect();
        assert!(
            added.is_empty() && gone.is_empty(),
            "{what}: added {added:?}, gone {gone:?}"
        );
    };
    diff("mounts", &before.mounts, &after.mounts);
    diff("cgroups", &before.cgroups, &after.cgroups);
    diff("state root", &before.state, &after.state);
    diff("processes", &before.processes, &after.processes);
    diff("/dev/shm", &before.shm, &after.shm);
    diff("/tmp", &before.tmp, &after.tmp);
}

/// Runs berth with each argument list at once; every one must succeed.
fn parallel(b: &std::sync::Arc<Bundle>, runs: impl Iterator<Item = Vec<String>>) {
    let handles: Vec<_> = runs
        .map(|args| {
            let b = b.clone();
            std::thread::spawn(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                b.berth(&a)
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

#[test]
fn thousand_runs_then_fifty_in_parallel_leave_nothing() {
    let _s = serial();
    let b = Bundle::new(&["true"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    // berth makes /berth (the default parent) and its @seccomp cache once.
    b.berth(&["run", "--bundle", &bundle, "warm"]).ok();
    let before = Host::take(&b);
    let start = std::time::Instant::now();
    for i in 0..1000 {
        let out = b.berth(&["run", "--bundle", &bundle, &format!("r{i}")]);
        assert_eq!(out.code, 0, "cycle {i}: {}", out.stderr);
    }
    eprintln!(
        "1000 run/delete cycles: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    same(&before, &Host::take(&b));
    // Fifty containers, created and then deleted in parallel; each its own cgroup.
    let mut b = b;
    b.edit(|c| c["linux"]["cgroupsPath"] = serde_json::json!(""));
    let b = std::sync::Arc::new(b);
    let id = |i: usize| format!("par-{}-{i}", std::process::id());
    parallel(
        &b,
        (0..50).map(|i| vec!["create".into(), "--bundle".into(), bundle.clone(), id(i)]),
    );
    assert_eq!(
        b.berth(&["list", "-q"]).ok().lines().count(),
        50,
        "all fifty listed"
    );
    parallel(
        &b,
        (0..50).map(|i| vec!["delete".into(), "--force".into(), id(i)]),
    );
    same(&before, &Host::take(&b));
}

#[test]
fn ten_racing_creates_of_one_id_one_wins() {
    let _s = serial();
    let b = std::sync::Arc::new(Bundle::new(&["sleep", "30"]));
    let before = Host::take(&b);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                let bundle = b.dir.to_str().unwrap().to_owned();
                b.berth(&["create", "--bundle", &bundle, "same"])
            })
        })
        .collect();
    let outs: Vec<Out> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = outs.iter().filter(|o| o.code == 0).count();
    assert_eq!(won, 1, "{outs:?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("container with id same already exists"),
            "{}",
            o.stderr
        );
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    }
    assert_eq!(b.state("same")["status"], "created");
    b.berth(&["delete", "--force", "same"]).ok();
    same(&before, &Host::take(&b));
}

#[test]
fn berth_and_init_hold_no_stray_descriptors() {
    let _s = serial();
    let b = Bundle::new(&["sh", "-c", "ls -l /proc/self/fd/ | tail -n +2; sleep 30"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let mut cmd = b.cmd(&["run", "--bundle", &bundle, "fds"]);
    cmd.stdout(std::process::Stdio::piped());
    // berth starts with stdio only (the test harness's own descriptors would
    // otherwise be inherited): what it holds beyond is its own.
    // SAFETY: close_range is async-signal-safe and touches only this child's table.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    crate::wait_exists(&b, "fds");
    b.wait_status("fds", "running");
    // berth run, waiting for its container: stdio and nothing of the container's.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    // stdio, and the lock on its state dir (ARCHITECTURE.md's table).
    let lock = format!("-> {}", b.root.join("fds").display());
    for f in &fds {
        let n: u32 = f.split(' ').next().unwrap().parse().unwrap();
        assert!(
            n <= 2 || f.ends_with(&lock),
            "berth run holds {f} (all: {fds:?})"
        );
    }
    assert_eq!(fds.len(), 4, "{fds:?}");
    // The container's process: stdio only.
    let pid = b.state("fds")["pid"].as_i64().unwrap();
    let init_fds = list(Path::new(&format!("/proc/{pid}/fd")));
    assert_eq!(
        init_fds,
        ["0", "1", "2"].map(String::from).into(),
        "init holds {init_fds:?}"
    );
    b.berth(&["kill", "fds", "KILL"]).ok();
    let _ = child.wait();
}
