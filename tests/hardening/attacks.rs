//! Attacks from inside the container, each of which must fail: overwriting
//! berth through /proc/<pid>/exe during exec (CVE-2019-5736), a leaked
//! descriptor or a cwd outside the rootfs (CVE-2024-21626), a mount destination
//! swapped for a symlink during setup (CVE-2021-30465), writes to masked and
//! read-only /proc and /sys paths, a device outside the allow list, ptrace of
//! berth during exec, capabilities beyond the bounding set, and escapes from
//! the pid and mount namespaces.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::{execs_during_run, serial};

fn file_digest(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn berth_cannot_be_overwritten_through_proc_exe_during_exec() {
    let _s = serial();
    let berth = PathBuf::from(berth_bin());
    let before = file_digest(&berth);
    // Every process the container sees, its exe opened for writing, in a loop.
    let attack = "end=$(( $(date +%s) + 4 )); n=0; \
        while [ $(date +%s) -lt $end ]; do for p in /proc/[0-9]*; do \
        [ \"$p\" = /proc/$$ ] && continue; \
        if (echo pwned >> $p/exe) 2>/dev/null; then echo \"WROTE $p\"; fi; n=$((n+1)); done; done; echo tries $n";
    let b = Bundle::new(&["sh", "-c", attack]);
    let (text, execs) = execs_during_run(&b, "victim", &["true"], 40);
    assert!(!text.contains("WROTE"), "{text}");
    assert!(text.contains("tries"), "{text}");
    assert!(execs >= 5, "only {execs} execs ran during the attack");
    assert_eq!(file_digest(&berth), before, "the berth binary changed");
}

#[test]
fn leaked_descriptor_and_outside_cwd_reach_nothing() {
    let _s = serial();
    let secret_dir = std::env::temp_dir().join(format!("berth-secret-{}", std::process::id()));
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("secret"), "host secret").unwrap();
    // A host directory descriptor berth inherits without close-on-exec, as a
    // careless engine might pass one.
    let dir = std::fs::File::open(&secret_dir).unwrap();
    let fd = dir.as_raw_fd();
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let probe = format!(
        "ls /proc/self/fd; cat /proc/self/fd/{fd}/secret 2>&1; cat /proc/1/fd/{fd}/secret 2>&1; true"
    );
    let b = Bundle::new(&["sh", "-c", &probe]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "leak"]);
    let o = out.ok();
    assert!(!o.contains("host secret"), "{o}");
    let fds: Vec<&str> = o.lines().take_while(|l| l.parse::<u32>().is_ok()).collect();
    assert!(
        fds.iter().all(|f| ["0", "1", "2", "3"].contains(f)),
        "{fds:?}"
    );
    // A cwd through the leaked descriptor: refused before exec.
    let mut b = Bundle::new(&["cat", "secret"]);
    b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "cwd"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("host secret"), "{out:?}");
    // And through exec into a running container.
    let b = Bundle::new(&["sleep", "30"]);
    b.create("x");
    b.berth(&["start", "x"]).ok();
    let cwd = format!("/proc/self/fd/{fd}");
    let out = b.berth(&["exec", "--cwd", &cwd, "x", "cat", "secret"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("host secret"), "{out:?}");
    drop(dir);
    b.berth(&["delete", "--force", "x"]).ok();
    let _ = std::fs::remove_dir_all(&secret_dir);
}

#[test]
fn mount_destination_swapped_for_a_symlink_stays_inside() {
    let _s = serial();
    let host = std::env::temp_dir().join(format!("berth-swap-target-{}", std::process::id()));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("keep"), "host").unwrap();
    let mut b = Bundle::new(&["true"]);
    let mounts: Vec<serde_json::Value> = (0..8)
        .map(|i| json!({"destination": format!("/data/m{i}"), "type": "tmpfs", "source": "tmpfs"}))
        .collect();
    b.edit(|c| c["mounts"].as_array_mut().unwrap().extend(mounts));
    let data = b.rootfs().join("data");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The race: /data flips between a directory and a symlink to the host.
    let swapper = {
        let (data, host, stop) = (data.clone(), host.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_dir_all(&data).or_else(|_| std::fs::remove_file(&data));
                if n % 2 == 0 {
                    let _ = std::fs::create_dir_all(&data);
                } else {
                    let _ = std::os::unix::fs::symlink(&host, &data);
                }
                n += 1;
            }
            n
        })
    };
    let bundle = b.dir.to_str().unwrap().to_owned();
    for i in 0..40 {
        let _ = b.berth(&["run", "--bundle", &bundle, &format!("swap{i}")]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 40, "{swaps} swaps");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(host.to_str().unwrap()),
        "a mount landed on the host"
    );
    let names: Vec<String> = std::fs::read_dir(&host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep"], "the host directory changed: {names:?}");
    assert!(b.residue().is_empty(), "{:?}", b.residue());
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn masked_and_read_only_paths_hold() {
    let _s = serial();
    let probe = "exec 2>&1; echo 1 > /proc/sys/kernel/panic; echo c > /proc/sysrq-trigger; \
        echo x > /sys/kernel/profiling; echo kcore=$(head -c 16 /proc/kcore | wc -c); \
        echo acpi=$(ls /proc/acpi 2>/dev/null | wc -l); mount -o remount,rw /proc/sys 2>&1; \
        umount /proc/kcore 2>&1; true";
    let panic_before = std::fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let b = Bundle::new(&["sh", "-c", probe]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "masked"]);
    let o = out.ok();
    assert!(
        o.contains("/proc/sys/kernel/panic: Read-only file system")
            || o.contains("can't create /proc/sys/kernel/panic: Read-only"),
        "{o}"
    );
    assert!(
        o.contains("/proc/sysrq-trigger: Read-only file system")
            || o.contains("can't create /proc/sysrq-trigger"),
        "{o}"
    );
    assert!(o.contains("can't create /sys/kernel/profiling"), "{o}");
    assert!(o.contains("kcore=0"), "{o}");
    assert!(o.contains("acpi=0"), "{o}");
    assert!(o.contains("mount: permission denied"), "{o}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/panic").unwrap(),
        panic_before
    );
}

#[test]
fn a_device_outside_the_allow_list_does_not_open() {
    let _s = serial();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "head -c1 /disk 2>&1; head -c1 /kmem 2>&1; mknod /dev/sneak b 254 0 2>&1; true",
    ]);
    for (name, kind, maj, min) in [("disk", "b", "254", "0"), ("kmem", "c", "1", "2")] {
        let st = Command::new("mknod")
            .arg(b.rootfs().join(name))
            .args([kind, maj, min])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "dev"]);
    let o = out.ok();
    assert!(o.contains("/disk: Operation not permitted"), "{o}");
    assert!(o.contains("/kmem: Operation not permitted"), "{o}");
    assert!(o.contains("Operation not permitted"), "mknod: {o}");
    assert!(!b.rootfs().join("dev/sneak").exists());
}

#[test]
fn ptrace_of_berth_during_exec_fails() {
    let _s = serial();
    let b = Bundle::new(&["/ptracer", "4"]);
    install_helper(&b.rootfs(), "ptracer");
    let (text, execs) = execs_during_run(&b, "tracer", &["sleep", "0.05"], 60);
    assert!(text.contains("tries"), "{text}");
    // The tracer can attach to what exec started once it is the user's program
    // (a control that the attack works at all) but never to berth's code.
    for line in text.lines().filter(|l| l.starts_with("attached")) {
        assert!(
            line.ends_with("/bin/busybox"),
            "attached to berth: {line}\n{text}"
        );
    }
    assert!(execs >= 5, "only {execs} execs ran during the attack");
    assert!(
        text.contains("attached"),
        "the tracer never attached to anything: {text}"
    );
}

#[test]
fn no_capability_beyond_the_bounding_set() {
    let _s = serial();
    // A setuid-root binary run by uid 1000, noNewPrivileges off: root's
    // capabilities come back, but only those of the bounding set.
    let mut b = Bundle::new(&["/capprobe"]);
    install_helper(&b.rootfs(), "capprobe");
    let st = Command::new("chmod")
        .arg("4755")
        .arg(b.rootfs().join("capprobe"))
        .status()
        .unwrap();
    assert!(st.success());
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "caps"]);
    let o = out.ok();
    let field = |k: &str| {
        let v = o
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
            .unwrap();
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    let (eff, bnd) = (field("CapEff"), field("CapBnd"));
    assert!(o.contains("euid=0"), "the setuid bit did not work: {o}");
    assert_ne!(eff, 0, "setuid root gave no capabilities at all: {o}");
    assert_eq!(eff & !bnd, 0, "CapEff {eff:x} beyond CapBnd {bnd:x}");
    assert_eq!(eff & (1 << 21), 0, "CAP_SYS_ADMIN: {o}");
    assert!(o.contains("sethostname=errno:1"), "{o}");
}

#[test]
fn pid_and_mount_namespaces_hold() {
    let _s = serial();
    let me = std::process::id();
    let probe = format!(
        "echo procs=$(ls -d /proc/[0-9]* | wc -l); kill -0 {me} 2>&1; \
         echo root=$(ls /proc/1/root/ | tr '\\n' ' '); cd /../../..; echo up=$(pwd) $(ls | tr '\\n' ' '); \
         umount -l / 2>&1; ls /host-only 2>&1; true"
    );
    let b = Bundle::new(&["sh", "-c", &probe]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["run", "--bundle", &bundle, "ns"]);
    let o = out.ok();
    // sh and its ls: nothing of the host's.
    let procs: usize = o
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(procs <= 4, "{o}");
    assert!(
        o.contains(&format!("can't kill pid {me}: No such process")),
        "{o}"
    );
    let root_line = o.lines().find(|l| l.starts_with("root=")).unwrap();
    let up_line = o.lines().find(|l| l.starts_with("up=/ ")).unwrap();
    assert_eq!(
        root_line.trim_start_matches("root="),
        up_line.trim_start_matches("up=/ "),
        "{o}"
    );
    assert!(
        !root_line.contains("boot") && !root_line.contains("work"),
        "{o}"
    );
    assert!(
        o.contains("Operation not permitted") || o.contains("Invalid argument"),
        "umount: {o}"
    );
    assert!(o.contains("/host-only: No such file or directory"), "{o}");
}
