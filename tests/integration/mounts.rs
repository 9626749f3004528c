//! Mounts as mountinfo shows them, read-only and masked paths, binds of files,
//! and destinations that try to leave the rootfs through symlinks.

use serde_json::json;

use crate::common::*;

/// (mount point, per-mount options, fs type) of each line of mountinfo.
fn mounts(mountinfo: &str) -> Vec<(String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some((
                f[4].to_string(),
                f[5].to_string(),
                right.split(' ').next()?.to_string(),
            ))
        })
        .collect()
}

fn find<'a>(m: &'a [(String, String, String)], point: &str) -> &'a (String, String, String) {
    m.iter()
        .rev()
        .find(|(p, _, _)| p == point)
        .unwrap_or_else(|| panic!("{point} not mounted: {m:?}"))
}

#[test]
fn mountinfo_shows_each_mount_with_its_flags() {
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    let data = b.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro", "nosuid", "noexec"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["noatime", "size=1m", "mode=700"]}));
    });
    let info = b.run("mi").ok().to_string();
    let m = mounts(&info);
    assert_eq!(find(&m, "/").1.split(',').next(), Some("ro"));
    assert_eq!(find(&m, "/proc").2, "proc");
    assert_eq!(find(&m, "/sys").1, "ro,nosuid,nodev,noexec,relatime");
    assert!(find(&m, "/dev").1.contains("nosuid") && find(&m, "/dev").2 == "tmpfs");
    assert_eq!(find(&m, "/dev/pts").2, "devpts");
    assert_eq!(find(&m, "/dev/mqueue").2, "mqueue");
    assert_eq!(find(&m, "/data").1, "ro,nosuid,noexec,relatime");
    assert_eq!(find(&m, "/scratch").1, "rw,noatime");
    assert!(
        info.lines().any(|l| l.contains(" /scratch ")
            && l.contains("size=1024k")
            && l.contains("mode=700")),
        "{info}"
    );
    // The host's root is gone: every mount point is inside the container's tree.
    assert!(
        m.iter()
            .all(|(p, _, _)| !p.starts_with(b.dir.to_str().unwrap())),
        "{info}"
    );
    assert_eq!(m.iter().filter(|(p, _, _)| p == "/").count(), 1, "{info}");
}

#[test]
fn readonly_paths_give_erofs_and_masked_paths_read_empty() {
    let b = Bundle::new(&["sh", "-c", "echo 1 > /proc/sys/kernel/ostype; echo rc=$?; wc -c < /proc/keys; ls /sys/firmware | wc -l; touch /x; echo root=$?"]);
    let out = b.run("ro");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["rc=1", "0", "0", "root=1"]);
}

#[test]
fn bind_a_file_onto_a_file() {
    let mut b = Bundle::new(&["cat", "/etc/hostname.custom"]);
    let src = b.dir.join("hostfile");
    std::fs::write(&src, "from the host\n").unwrap();
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/etc/hostname.custom", "type": "none", "source": "hostfile", "options": ["bind", "ro"]})));
    assert_eq!(b.run("file").ok(), "from the host\n");
}

#[test]
fn symlinked_destination_does_not_escape_the_rootfs() {
    let mut b = Bundle::new(&["sh", "-c", "cat /evil/marker"]);
    std::os::unix::fs::symlink("/etc", b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../opt", b.rootfs().join("up")).unwrap();
    let src = b.dir.join("payload");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("marker"), "inside\n").unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/evil", "type": "bind", "source": "payload", "options": ["bind"]}));
        m.push(json!({"destination": "/up/escape", "type": "tmpfs", "source": "tmpfs"}));
    });
    let host_etc = std::fs::read_dir("/etc").unwrap().count();
    assert_eq!(b.run("sym").ok(), "inside\n");
    assert_eq!(std::fs::read_dir("/etc").unwrap().count(), host_etc);
    assert!(!std::path::Path::new("/opt/escape").exists());
    assert!(b.rootfs().join("etc").is_dir() && b.rootfs().join("opt/escape").is_dir());
}

#[test]
fn default_devices_and_links() {
    let b = Bundle::new(&["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a %F' /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done; head -c 4 /dev/zero | wc -c"]);
    let out = b.run("dev").ok().to_string();
    for want in [
        "/dev/null 1:3 666",
        "/dev/zero 1:5 666",
        "/dev/full 1:7 666",
        "/dev/random 1:8 666",
        "/dev/urandom 1:9 666",
        "/dev/tty 5:0 666",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n4\n"),
        "{out}"
    );
}

#[test]
fn linux_devices_with_owner_and_mode() {
    let mut b = Bundle::new(&[
        "stat",
        "-c",
        "%t:%T %a %u:%g %F",
        "/dev/mydev",
        "/dev/sub/blk",
    ]);
    b.edit(|c| c["linux"]["devices"] = json!([
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 1000, "gid": 5},
        {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600}
    ]));
    assert_eq!(
        b.run("devs").ok(),
        "1:3 620 1000:5 character special file\n7:c8 600 0:0 block special file\n"
    );
}

#[test]
fn no_pivot_and_propagation() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "grep ' / / ' /proc/self/mountinfo | grep -c shared; ls /",
    ]);
    b.edit(|c| c["linux"]["rootfsPropagation"] = json!("rshared"));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--no-pivot", "--bundle", &bundle, "np"]);
    assert!(out.ok().contains("bin\n"), "{}", out.stdout);
}

#[test]
fn cgroup_mount_type_with_and_without_cgroup_namespace() {
    for cgroupns in [false, true] {
        let mut b = Bundle::new(&["sh", "-c", "grep ' /sys/fs/cgroup' /proc/self/mountinfo | wc -l; cat /sys/fs/cgroup/pids/tasks /sys/fs/cgroup/cgroup.procs 2>/dev/null | wc -l"]);
        b.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
            if cgroupns {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
            }
        });
        let out = b.run("cg");
        let lines: Vec<usize> = out
            .ok()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        // cgroup2 alone, or the tmpfs plus one mount per host hierarchy.
        let want = if unified_host() { 1 } else { 2 };
        assert!(lines[0] >= want, "{cgroupns}: {}", out.stdout);
        // The container's own cgroup is the root shown: its processes are there.
        assert!(lines[1] >= 1, "{cgroupns}: {}", out.stdout);
    }
}
