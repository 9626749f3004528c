//! runtimetest: runs as the container's process and compares the live process
//! state with the bundle's config.json (copied to /.oci/config.json), printing TAP.
//! It is linked statically, so any root filesystem can run it.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::Value;

struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    fn check(&mut self, name: &str, got: impl std::fmt::Display, want: impl std::fmt::Display) {
        let (g, w) = (got.to_string(), want.to_string());
        self.n += 1;
        if g == w {
            println!("ok {} - {name}", self.n);
        } else {
            self.failed += 1;
            println!("not ok {} - {name} # got {g:?}, want {w:?}", self.n);
        }
    }
}

fn status_field(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn cap_mask(list: &Value) -> u64 {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        .filter_map(|c| CAPS.iter().position(|k| *k == c))
        .fold(0, |m, i| m | (1 << i))
}

fn rlimit_resource(name: &str) -> Option<u32> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        _ => return None,
    };
    Some(r)
}

/// One line of mountinfo, the topmost mount of its point.
struct MountLine {
    opts: String,
    fstype: String,
    /// Optional fields: "shared:N", "master:N", ...
    tags: String,
    /// Filesystem options ("size=1024k,mode=700").
    super_opts: String,
}

fn mountinfo() -> HashMap<String, MountLine> {
    let mut m = HashMap::new();
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in text.lines() {
        let Some((left, right)) = l.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() > 5 && r.len() > 2 {
            let line = MountLine {
                opts: f[5].to_string(),
                fstype: r[0].to_string(),
                tags: f[6..].join(" "),
                super_opts: r[2].to_string(),
            };
            m.insert(f[4].to_string(), line);
        }
    }
    m
}

fn main() {
    let cfg: Value = match std::fs::read("/.oci/config.json").map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(v)) => v,
        _ => {
            println!("1..1\nnot ok 1 - read /.oci/config.json");
            std::process::exit(1);
        }
    };
    let mut t = Tap { n: 0, failed: 0 };
    let p = &cfg["process"];
    // args, env, cwd
    let args: Vec<String> = std::env::args().collect();
    let want_args: Vec<String> = p["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    t.check("process.args", args.join(" "), want_args.join(" "));
    for e in p["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
    {
        if let Some((k, v)) = e.split_once('=') {
            t.check(
                &format!("process.env {k}"),
                std::env::var(k).unwrap_or_default(),
                v,
            );
        }
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    t.check("process.cwd", cwd, p["cwd"].as_str().unwrap_or("/"));
    // user
    let u = &p["user"];
    t.check(
        "process.user.uid",
        nix::unistd::geteuid(),
        u["uid"].as_u64().unwrap_or(0),
    );
    t.check(
        "process.user.gid",
        nix::unistd::getegid(),
        u["gid"].as_u64().unwrap_or(0),
    );
    if let Some(gids) = u["additionalGids"].as_array() {
        let mut got: Vec<u32> = nix::unistd::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        let mut want: Vec<u32> = gids
            .iter()
            .filter_map(|g| g.as_u64())
            .map(|g| g as u32)
            .collect();
        got.sort();
        want.sort();
        t.check(
            "process.user.additionalGids",
            format!("{got:?}"),
            format!("{want:?}"),
        );
    }
    if let Some(umask) = u["umask"].as_u64() {
        t.check(
            "process.user.umask",
            status_field("Umask"),
            format!("{umask:04o}"),
        );
    }
    // capabilities
    // The runtime sets the five sets before execve; execve then recomputes them
    // (capabilities(7)): root gains bounding | inheritable (capped by the old
    // permitted set under no_new_privs), anyone else keeps only the ambient set.
    let caps = &p["capabilities"];
    if caps.is_object() {
        let (b, pm, i) = (
            cap_mask(&caps["bounding"]),
            cap_mask(&caps["permitted"]),
            cap_mask(&caps["inheritable"]),
        );
        let ambient = cap_mask(&caps["ambient"]) & pm & i;
        let nnp = p["noNewPrivileges"].as_bool().unwrap_or(false);
        let after = if nix::unistd::geteuid().is_root() {
            let gained = (b | i) & if nnp { pm } else { u64::MAX };
            gained | ambient
        } else {
            ambient
        };
        for (set, field, want) in [
            ("bounding", "CapBnd", b),
            ("effective", "CapEff", after),
            ("permitted", "CapPrm", after),
            ("inheritable", "CapInh", i),
            ("ambient", "CapAmb", ambient),
        ] {
            t.check(
                &format!("process.capabilities.{set}"),
                status_field(field),
                format!("{want:016x}"),
            );
        }
    }
    // rlimits, noNewPrivileges, oomScoreAdj
    for r in p["rlimits"].as_array().into_iter().flatten() {
        let name = r["type"].as_str().unwrap_or("");
        let Some(res) = rlimit_resource(name) else {
            continue;
        };
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid rlimit struct for getrlimit to fill.
        unsafe { libc::getrlimit(res, &mut lim) };
        t.check(
            &format!("process.rlimits {name}"),
            format!("{}/{}", lim.rlim_cur, lim.rlim_max),
            format!("{}/{}", r["soft"], r["hard"]),
        );
    }
    let nnp = if p["noNewPrivileges"].as_bool().unwrap_or(false) {
        "1"
    } else {
        "0"
    };
    t.check("process.noNewPrivileges", status_field("NoNewPrivs"), nnp);
    if let Some(adj) = p["oomScoreAdj"].as_i64() {
        t.check(
            "process.oomScoreAdj",
            std::fs::read_to_string("/proc/self/oom_score_adj")
                .unwrap_or_default()
                .trim(),
            adj,
        );
    }
    // hostname, domainname
    if let Some(h) = cfg["hostname"].as_str() {
        t.check(
            "hostname",
            nix::unistd::gethostname()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            h,
        );
    }
    if let Some(d) = cfg["domainname"].as_str() {
        t.check(
            "domainname",
            std::fs::read_to_string("/proc/sys/kernel/domainname")
                .unwrap_or_default()
                .trim(),
            d,
        );
    }
    // mounts and root
    let mi = mountinfo();
    let ro = |opts: &str| opts.split(',').next() == Some("ro");
    if cfg["root"]["readonly"].as_bool().unwrap_or(false) {
        t.check(
            "root.readonly",
            mi.get("/").map(|m| ro(&m.opts)).unwrap_or(false),
            true,
        );
    }
    if let Some(prop) = cfg["linux"]["rootfsPropagation"].as_str() {
        let tags = mi.get("/").map(|m| m.tags.clone()).unwrap_or_default();
        let got = if tags.contains("shared:") {
            "shared"
        } else if tags.contains("master:") {
            "slave"
        } else if tags.contains("unbindable") {
            "unbindable"
        } else {
            "private"
        };
        let want = prop.trim_start_matches('r');
        // A slave of a mount that is private on the host shows as private.
        let got = if want == "slave" && got == "private" {
            "slave"
        } else {
            got
        };
        t.check("linux.rootfsPropagation", got, want);
    }
    for (i, m) in cfg["mounts"].as_array().into_iter().flatten().enumerate() {
        let dest = m["destination"].as_str().unwrap_or("");
        let Some(MountLine {
            opts,
            fstype,
            super_opts,
            ..
        }) = mi.get(dest)
        else {
            t.check(&format!("mounts[{i}] {dest} mounted"), false, true);
            continue;
        };
        let options: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str())
            .collect();
        let typ = m["type"].as_str().unwrap_or("");
        let bind = typ == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
        if !bind && typ != "cgroup" {
            t.check(&format!("mounts[{i}] {dest} type"), fstype, typ);
        }
        for flag in ["nosuid", "nodev", "noexec"] {
            if options.contains(&flag) {
                t.check(
                    &format!("mounts[{i}] {dest} {flag}"),
                    opts.split(',').any(|o| o == flag),
                    true,
                );
            }
        }
        if options.contains(&"ro") {
            t.check(&format!("mounts[{i}] {dest} ro"), ro(opts), true);
        }
        for data in options
            .iter()
            .filter(|o| o.starts_with("mode=") && typ == "tmpfs")
        {
            let mode = u32::from_str_radix(&data[5..], 8).unwrap_or(0);
            let want = format!("mode={mode:o}");
            // tmpfs leaves its default mode, 1777, out of mountinfo.
            let shown = super_opts.split(',').find(|o| o.starts_with("mode="));
            let ok = shown == Some(want.as_str()) || (shown.is_none() && mode == 0o1777);
            t.check(&format!("mounts[{i}] {dest} {data}"), ok, true);
        }
    }
    // devices
    for d in cfg["linux"]["devices"].as_array().into_iter().flatten() {
        let path = d["path"].as_str().unwrap_or("");
        match std::fs::metadata(path) {
            Ok(md) => {
                let kind = if md.file_type().is_char_device() {
                    "c"
                } else if md.file_type().is_block_device() {
                    "b"
                } else if md.file_type().is_fifo() {
                    "p"
                } else {
                    "?"
                };
                let want_kind = if d["type"] == "u" {
                    "c"
                } else {
                    d["type"].as_str().unwrap_or("")
                };
                t.check(&format!("linux.devices {path} type"), kind, want_kind);
                if kind != "p" {
                    let rdev = md.rdev();
                    t.check(
                        &format!("linux.devices {path} major:minor"),
                        format!("{}:{}", libc::major(rdev), libc::minor(rdev)),
                        format!("{}:{}", d["major"], d["minor"]),
                    );
                }
                if let Some(mode) = d["fileMode"].as_u64() {
                    t.check(
                        &format!("linux.devices {path} mode"),
                        format!("{:o}", md.mode() & 0o7777),
                        format!("{mode:o}"),
                    );
                }
                t.check(
                    &format!("linux.devices {path} owner"),
                    format!("{}:{}", md.uid(), md.gid()),
                    format!(
                        "{}:{}",
                        d["uid"].as_u64().unwrap_or(0),
                        d["gid"].as_u64().unwrap_or(0)
                    ),
                );
            }
            Err(e) => t.check(&format!("linux.devices {path} exists"), e, "present"),
        }
    }
    for (path, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let got = std::fs::metadata(path)
            .map(|m| format!("{}:{}", libc::major(m.rdev()), libc::minor(m.rdev())))
            .unwrap_or_else(|e| e.to_string());
        t.check(
            &format!("default device {path}"),
            got,
            format!("{major}:{minor}"),
        );
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        t.check(
            &format!("default link {link}"),
            std::fs::read_link(link)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            target,
        );
    }
    // masked and read-only paths
    for path in cfg["linux"]["maskedPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
    {
        let Ok(md) = std::fs::metadata(path) else {
            continue;
        };
        let empty = if md.is_dir() {
            std::fs::read_dir(path)
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        } else {
            std::fs::read(path).map(|b| b.is_empty()).unwrap_or(true)
        };
        t.check(&format!("linux.maskedPaths {path} empty"), empty, true);
    }
    for path in cfg["linux"]["readonlyPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
    {
        if let Some(m) = mi.get(path) {
            t.check(&format!("linux.readonlyPaths {path} ro"), ro(&m.opts), true);
        }
    }
    // sysctl, id maps, seccomp
    for (k, v) in cfg["linux"]["sysctl"].as_object().into_iter().flatten() {
        let got = std::fs::read_to_string(format!("/proc/sys/{}", k.replace('.', "/")))
            .unwrap_or_default();
        t.check(
            &format!("linux.sysctl {k}"),
            got.trim(),
            v.as_str().unwrap_or(""),
        );
    }
    for (file, key) in [("uid_map", "uidMappings"), ("gid_map", "gidMappings")] {
        if let Some(maps) = cfg["linux"][key].as_array() {
            let got: Vec<String> = std::fs::read_to_string(format!("/proc/self/{file}"))
                .unwrap_or_default()
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            let want: Vec<String> = maps
                .iter()
                .map(|m| format!("{} {} {}", m["containerID"], m["hostID"], m["size"]))
                .collect();
            t.check(&format!("linux.{key}"), got.join(","), want.join(","));
        }
    }
    let seccomp = if cfg["linux"]["seccomp"].is_object() {
        "2"
    } else {
        "0"
    };
    t.check("linux.seccomp mode", status_field("Seccomp"), seccomp);
    println!("1..{}", t.n);
    std::process::exit(if t.failed > 0 { 1 } else { 0 });
}
