//! What every group uses: the runtime under test (own --root, output through files
//! so a created container cannot hold a pipe open), busybox bundles carrying the
//! runtimetest checker, and the TAP reporter with the skip list.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A finished runtime command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The runtime binary under test, with a --root of its own.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub work: PathBuf,
}

impl Runtime {
    pub fn new(bin: PathBuf, work: &Path) -> Runtime {
        let root = work.join("state");
        let _ = std::fs::create_dir_all(&root);
        Runtime {
            bin,
            root,
            work: work.to_path_buf(),
        }
    }

    /// Runs `runtime --root R args...`; output through files.
    pub fn run(&self, args: &[&str]) -> Out {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.work.join(format!(".o{n}")),
            self.work.join(format!(".e{n}")),
        );
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        let status = match (std::fs::File::create(&o), std::fs::File::create(&e)) {
            (Ok(fo), Ok(fe)) => cmd.stdout(fo).stderr(fe).status(),
            (Err(err), _) | (_, Err(err)) => Err(err),
        };
        let out = Out {
            code: status.map(|s| s.code().unwrap_or(-1)).unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap_or_default(),
            stderr: std::fs::read_to_string(&e).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        out
    }

    /// `state ID` parsed; Null when it fails.
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        if out.code != 0 {
            return Value::Null;
        }
        serde_json::from_str(&out.stdout).unwrap_or(Value::Null)
    }

    /// Waits (at most 5 s) for `status`; returns whether it came.
    pub fn wait_status(&self, id: &str, status: &str) -> bool {
        for _ in 0..250 {
            if self.state(id)["status"] == status {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Removes every container left under the root.
    pub fn cleanup(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.run(&["kill", &id, "KILL"]);
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// A bundle: busybox rootfs with /.oci/runtimetest, and its config.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn new(work: &Path, checker: &Path, args: &[&str]) -> std::io::Result<Bundle> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = work.join(format!("bundle{n}"));
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", ".oci"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        if std::fs::hard_link("/bin/busybox", rootfs.join("bin/busybox")).is_err() {
            std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
        }
        let list = Command::new("/bin/busybox").arg("--list").output()?;
        for a in String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|a| *a != "busybox")
        {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::copy(checker, rootfs.join(".oci/runtimetest"))?;
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
        let b = Bundle {
            dir,
            config: base_config(args),
        };
        b.save()?;
        Ok(b)
    }

    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Writes config.json into the bundle and, for runtimetest, into the rootfs.
    pub fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&self.config).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join("config.json"), &text)?;
        std::fs::write(self.dir.join("rootfs/.oci/config.json"), &text)
    }
}

/// runc's `spec` template with terminal off and ociVersion 1.0.2 (which every
/// runtime accepts); shared with berth's integration tests.
const BASE_CONFIG: &str = include_str!("../fixtures/base-config.json");

/// The base config running `args`.
pub fn base_config(args: &[&str]) -> Value {
    let mut c: Value = serde_json::from_str(BASE_CONFIG).unwrap_or(Value::Null);
    c["process"]["args"] = json!(args);
    c
}

/// TAP output with counts; checks named in the skip list are reported as skipped.
pub struct Report {
    n: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    skips: Vec<(String, String)>,
}

impl Report {
    pub fn new(skips: Vec<(String, String)>) -> Report {
        Report {
            n: 0,
            passed: 0,
            failed: 0,
            skipped: 0,
            skips,
        }
    }

    /// Records one check; `detail` explains a failure.
    pub fn check(&mut self, name: &str, ok: bool, detail: &str) {
        self.n += 1;
        if let Some((_, why)) = self
            .skips
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()))
        {
            self.skipped += 1;
            println!("ok {} - {name} # SKIP {why}", self.n);
        } else if ok {
            self.passed += 1;
            println!("ok {} - {name}", self.n);
        } else {
            self.failed += 1;
            println!("not ok {} - {name}", self.n);
            for line in detail.lines().take(5) {
                println!("#   {line}");
            }
        }
    }

    pub fn plan(&self) {
        println!("1..{}", self.n);
    }
}
