//! Fixtures shared by the integration tests: a busybox bundle (Debian's
//! busybox-static, every applet linked, /etc/passwd and /etc/group with root and
//! uid 1000), a runc-like base config, a berth runner with its own --root, and a
//! residue check (mounts, state, processes) for failure paths.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// The berth under test: the one cargo built, unless BERTH_BIN names a copy (the
/// cgroup v2 VM runs a copy from its tmpfs).
pub fn berth_bin() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_string())
}
const BUSYBOX: &str = "/bin/busybox";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The applets of the host's busybox, listed once.
fn applets() -> &'static Vec<String> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install busybox-static"
        );
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox --list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

/// Builds a busybox root filesystem in `dir`.
pub fn make_rootfs(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = dir.join("bin/busybox");
    if std::fs::hard_link(BUSYBOX, &bb).is_err() {
        std::fs::copy(BUSYBOX, &bb).unwrap();
    }
    for a in applets() {
        if a != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(a));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

/// runc's `spec` template with terminal off: the conformance suite's base config.
pub fn base_config(args: &[&str]) -> Value {
    let mut c: Value = serde_json::from_str(include_str!(
        "../../runtime-tools/fixtures/base-config.json"
    ))
    .unwrap();
    c["process"]["args"] = json!(args);
    c
}

/// A test's own bundle and --root, removed (with its containers) on drop.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// A fresh bundle running `args`.
    pub fn new(args: &[&str]) -> Bundle {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_rootfs(&dir.join("rootfs"));
        let root = dir.join("state");
        let mut config = base_config(args);
        // Tests reuse container ids across --roots: each bundle gets its own cgroup.
        config["linux"]["cgroupsPath"] = json!(test_cgroup(n));
        let b = Bundle { dir, root, config };
        b.save();
        b
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Writes config.json from `self.config`.
    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edits the config and saves it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    /// A berth command with this bundle's --root.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth and collects its output. Output goes through files, not pipes: a
    /// created container inherits berth's stdio and would hold a pipe open.
    pub fn berth(&self, args: &[&str]) -> Out {
        run_with_files(self.cmd(args), &self.dir)
    }

    /// `berth run` of this bundle as container `id`, in the foreground.
    pub fn run(&self, id: &str) -> Out {
        let bundle = self.dir.to_str().unwrap().to_owned();
        self.berth(&["run", "--bundle", &bundle, id])
    }

    /// `berth create`; panics with berth's message on failure.
    pub fn create(&self, id: &str) -> Out {
        let bundle = self.dir.to_str().unwrap().to_owned();
        let out = self.berth(&["create", "--bundle", &bundle, id]);
        assert_eq!(out.code, 0, "create failed: {}", out.stderr);
        out
    }

    /// `berth state ID` parsed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.berth(&["state", id]);
        assert_eq!(out.code, 0, "state failed: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// Waits (at most 5 s) until the container reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..250 {
            if self.state(id)["status"] == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(self.state(id)["status"], status);
    }

    /// What a failing command may not leave behind: mounts naming this bundle on
    /// the host, container dirs under --root, processes rooted in the rootfs, and
    /// its cgroup on any hierarchy.
    pub fn residue(&self) -> Vec<String> {
        let mut left = Vec::new();
        if let Some(path) = self.config["linux"]["cgroupsPath"].as_str() {
            left.extend(
                cgroup_dirs(path)
                    .into_iter()
                    .map(|d| format!("cgroup: {d}")),
            );
        }
        let dir = self.dir.to_str().unwrap();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains(dir))
                .map(|l| format!("mount: {l}")),
        );
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            // Entries starting with '@' are berth's caches, not containers.
            left.extend(
                entries
                    .flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('@'))
                    .map(|e| format!("state: {}", e.path().display())),
            );
        }
        let rootfs = self.rootfs();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(r) = std::fs::read_link(p.path().join("root")) {
                if r.starts_with(&rootfs) {
                    left.push(format!("process: {}", p.path().display()));
                }
            }
        }
        left
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.cmd(&["delete", "--force", &id]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with stdout and stderr in files under `dir`; waits for its exit only.
pub fn run_with_files(mut cmd: Command, dir: &Path) -> Out {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let (o, e) = (dir.join(format!(".out{n}")), dir.join(format!(".err{n}")));
    cmd.stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    let status = cmd.status().expect("spawn berth");
    let out = Out {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

/// A finished command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Out {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "berth failed: stderr={} stdout={}",
            self.stderr, self.stdout
        );
        &self.stdout
    }
}

/// The line of /proc/<pid>/status named `key`, value only.
pub fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A static helper built from tests/integration/fixtures/NAME.c (once per test run)
/// and copied into `rootfs` as /NAME.
pub fn install_helper(rootfs: &Path, name: &str) {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures");
    let bin = out_dir.join(name);
    {
        let mut built = BUILT.lock().unwrap();
        if !built.iter().any(|b| b == name) {
            std::fs::create_dir_all(&out_dir).unwrap();
            let src = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/integration/fixtures")
                .join(format!("{name}.c"));
            let tmp = out_dir.join(format!("{name}.{}", std::process::id()));
            let st = Command::new("cc")
                .args(["-static", "-O2", "-o"])
                .arg(&tmp)
                .arg(&src)
                .status()
                .unwrap();
            assert!(st.success(), "cc {}", src.display());
            std::fs::rename(&tmp, &bin).unwrap();
            built.push(name.to_string());
        }
    }
    std::fs::copy(&bin, rootfs.join(name)).unwrap();
}

/// The cgroupsPath of the n-th bundle of this test process.
pub fn test_cgroup(n: usize) -> String {
    format!("/berth/it-{}-{n}", std::process::id())
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (cgroup and cgroup2 only).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mnt = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mnt))
        })
        .collect()
}

/// The directories named `path` (an absolute cgroupsPath) on any hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<String> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(path.trim_start_matches('/')))
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect()
}

/// The host directory of the container's cgroup for a v1 `controller`, or the
/// cgroup2 directory on a unified host.
pub fn host_cgroup(b: &Bundle, controller: &str) -> PathBuf {
    let path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    if v1.is_dir() && !unified_host() {
        v1.join(path)
    } else {
        Path::new("/sys/fs/cgroup").join(path)
    }
}

/// Whether the host is cgroup2 only.
pub fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Receives one message carrying one descriptor (SCM_RIGHTS): its bytes and the fd.
pub fn recv_with_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("no descriptor received");
    let n = msg.bytes;
    buf.truncate(n);
    // SAFETY: the descriptor just arrived with SCM_RIGHTS and belongs to us.
    (buf, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
