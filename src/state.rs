//! Container state under `--root`: one directory per id holding state.json (written
//! atomically), the frozen copy of config.json, and exec.fifo while the container is
//! created but not started. A flock on the directory serialises commands on one id.
//! The status is derived from the live process, never trusted from disk alone.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_ROOT: &str = "/run/berth";
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt state: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: corrupt state: {what}")]
    Invalid { path: PathBuf, what: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// What state.json holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Host pid of the container's init; 0 before it is known.
    pub pid: i32,
    /// Start time of that pid (clock ticks since boot), against pid reuse.
    pub pid_start: u64,
    /// `creating` until create finished, then `created`.
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup directories (made by create, removed by delete).
    #[serde(default)]
    pub cgroup: crate::cgroups::Cgroup,
}

/// Why a state file was refused.
#[derive(Debug)]
pub enum RecordError {
    Json(serde_json::Error),
    Invalid(String),
}

/// The mount points of this host's cgroup filesystems.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| pre.split(' ').nth(4).map(PathBuf::from))
                .flatten()
        })
        .collect()
}

/// Parses state.json for the container `id` and checks what later commands act
/// on, since delete removes and writes what the file names: the id is the
/// directory's, the pid is not negative, and every cgroup directory is a plain
/// absolute path strictly inside one of `cgroup_mounts`, with no more created
/// components than it has.
pub fn parse_record(
    raw: &[u8],
    id: &str,
    cgroup_mounts: &[PathBuf],
) -> Result<Record, RecordError> {
    let rec: Record = serde_json::from_slice(raw).map_err(RecordError::Json)?;
    let bad = |what: String| Err(RecordError::Invalid(what));
    if rec.id != id {
        return bad(format!("id {:?} is not the directory's {id:?}", rec.id));
    }
    if rec.pid < 0 {
        return bad(format!("pid {} is negative", rec.pid));
    }
    for d in &rec.cgroup.dirs {
        let plain = d.path.is_absolute()
            && d.path.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            });
        let Some(mount) = cgroup_mounts
            .iter()
            .find(|m| d.path.starts_with(m) && d.path != **m)
        else {
            return bad(format!(
                "cgroup {} is not inside a cgroup mount",
                d.path.display()
            ));
        };
        let inside = d
            .path
            .strip_prefix(mount)
            .map(|r| r.components().count())
            .unwrap_or(0);
        if !plain || d.created > inside {
            return bad(format!("cgroup {} is not a plain path", d.path.display()));
        }
    }
    Ok(rec)
}

/// The OCI state document, as `state` prints it and hooks read it.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

impl Record {
    pub fn oci(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: "",
        }
    }

    /// The state JSON handed to hooks on stdin.
    pub fn hook_state(&self, status: Status) -> String {
        serde_json::to_string(&self.oci(status)).unwrap_or_default()
    }
}

/// The state root (`--root`).
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// Where compiled seccomp filters are kept ('@' is never part of an id).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("@seccomp")
    }

    /// Makes a new container directory, locked. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(io_err(&self.root))?;
        let path = self.root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.into()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        let dir = ContainerDir::open_dir(id, path)?;
        dir.lock()?;
        Ok(dir)
    }

    /// Opens an existing container directory (unlocked).
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        let path = self.root.join(id);
        match ContainerDir::open_dir(id, path) {
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(StateError::NotFound(id.into()))
            }
            other => other,
        }
    }

    /// Every container id under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| crate::config::validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// One container's directory, with the descriptor that carries its lock.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    dir: File,
}

impl ContainerDir {
    fn open_dir(id: &str, path: PathBuf) -> Result<ContainerDir, StateError> {
        let dir = File::open(&path).map_err(io_err(&path))?;
        Ok(ContainerDir {
            id: id.into(),
            path,
            dir,
        })
    }

    /// Takes the exclusive lock, waiting for another berth command to finish.
    pub fn lock(&self) -> Result<(), StateError> {
        loop {
            match flock(self.dir.as_raw_fd(), libc::LOCK_EX) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(|e| io_err(&self.path)(e.into())),
            }
        }
    }

    /// Releases the lock (run keeps the directory while its container runs).
    pub fn unlock(&self) {
        let _ = flock(self.dir.as_raw_fd(), libc::LOCK_UN);
    }

    /// The descriptor carrying the lock: a forked init closes it, or it would hold
    /// the lock until its exec.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self.dir.as_raw_fd()
    }

    /// True when a live berth process holds the lock (a create in progress).
    pub fn is_locked_by_other(&self) -> bool {
        let probe = match File::open(&self.path) {
            Ok(f) => f,
            Err(_) => return false,
        };
        match flock(probe.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => false,
            Err(nix::errno::Errno::EWOULDBLOCK) => true,
            Err(_) => false,
        }
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// Reads state.json; None when create died before writing it.
    pub fn read(&self) -> Result<Option<Record>, StateError> {
        let path = self.state_path();
        let id = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(&path) {
            Ok(b) => parse_record(&b, &id, &cgroup_mounts())
                .map(Some)
                .map_err(|e| match e {
                    RecordError::Json(source) => StateError::Corrupt { path, source },
                    RecordError::Invalid(what) => StateError::Invalid { path, what },
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Writes state.json atomically (temporary file, then rename).
    pub fn write(&self, rec: &Record) -> Result<(), StateError> {
        let path = self.state_path();
        write_atomic(&path, &serde_json::to_vec(rec).unwrap_or_default())
    }

    /// The live status of the container recorded in `rec`. A create whose berth
    /// died (nobody holds the lock) can never finish: that container is stopped,
    /// even while its orphaned init is still on its way out.
    pub fn status(&self, rec: &Record) -> Status {
        if rec.status == Status::Creating {
            return if self.is_locked_by_other() {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if rec.pid <= 0 || !process_alive(rec.pid, rec.pid_start) {
            return Status::Stopped;
        }
        if self.fifo_path().exists() && holds(rec.pid, &self.fifo_path()) {
            Status::Created
        } else if !rec.cgroup.dirs.is_empty() && rec.cgroup.is_frozen().unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&self.path)(e)),
            _ => Ok(()),
        }
    }
}

/// Whether process `pid` has `path` open: init holds exec.fifo until its execve
/// (close-on-exec), so a fifo left behind by a `start` that was killed after
/// letting init go does not make a running container look created.
fn holds(pid: i32, path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path))
}

/// flock(2) on a descriptor we keep open (nix only offers an owning wrapper).
fn flock(fd: std::os::fd::RawFd, op: libc::c_int) -> nix::Result<()> {
    // SAFETY: flock only changes the lock state of an open descriptor.
    nix::errno::Errno::result(unsafe { libc::flock(fd, op) }).map(drop)
}

/// Writes a file atomically: a temporary sibling, fsync-free, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let res = File::create(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io_err(path))
}

/// (alive and not a zombie, start time) of a pid.
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    if stat.state == 'Z' || stat.state == 'X' {
        return None;
    }
    Some(stat.starttime)
}

/// True when `pid` runs and is the same process that started at `start`.
pub fn process_alive(pid: i32, start: u64) -> bool {
    process_start(pid) == Some(start)
}

/// RFC 3339 with nanoseconds, UTC, as runc writes `created`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, cgroup: &str, created: usize) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "pid": 1, "pid_start": 0, "status": "created", "bundle": "/b",
            "rootfs": "/b/rootfs", "created": "now",
            "cgroup": {"dirs": [{"path": cgroup, "controllers": ["pids"], "v2": false,
                "created": created}]}
        }))
        .unwrap()
    }

    #[test]
    fn state_files_cannot_point_delete_elsewhere() {
        let mounts = [PathBuf::from("/sys/fs/cgroup/pids")];
        let ok = |raw: Vec<u8>| parse_record(&raw, "c1", &mounts);
        assert!(ok(record("c1", "/sys/fs/cgroup/pids/berth/c1", 2)).is_ok());
        for (raw, why) in [
            (
                record("c2", "/sys/fs/cgroup/pids/berth/c1", 2),
                "not the directory's",
            ),
            (record("c1", "/etc", 1), "not inside a cgroup mount"),
            (
                record("c1", "/sys/fs/cgroup/pids", 0),
                "not inside a cgroup mount",
            ),
            (
                record("c1", "/sys/fs/cgroup/pids/../../../etc", 1),
                "not a plain path",
            ),
            (record("c1", "/sys/fs/cgroup/pids/a", 2), "not a plain path"),
        ] {
            match ok(raw) {
                Err(RecordError::Invalid(w)) => assert!(w.contains(why), "{w}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        assert!(matches!(ok(b"{".to_vec()), Err(RecordError::Json(_))));
    }

    #[test]
    fn create_open_write_read_remove() {
        let root = std::env::temp_dir().join(format!("berth-state-{}", std::process::id()));
        let store = Store::new(&root);
        let dir = store.create("c1").unwrap();
        assert!(matches!(store.create("c1"), Err(StateError::Exists(_))));
        assert!(dir.read().unwrap().is_none());
        let rec = Record {
            id: "c1".into(),
            pid: std::process::id() as i32,
            pid_start: process_start(std::process::id() as i32).unwrap(),
            status: Status::Created,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: HashMap::new(),
            cgroup: Default::default(),
        };
        dir.write(&rec).unwrap();
        let again = store.open("c1").unwrap();
        assert_eq!(again.read().unwrap().unwrap().pid, rec.pid);
        assert_eq!(again.status(&rec), Status::Running);
        assert!(again.is_locked_by_other());
        assert_eq!(store.ids().unwrap(), vec!["c1".to_string()]);
        dir.remove().unwrap();
        assert!(matches!(store.open("c1"), Err(StateError::NotFound(_))));
        let json = serde_json::to_value(rec.oci(Status::Stopped)).unwrap();
        assert_eq!(json["pid"], 0);
        assert_eq!(json["status"], "stopped");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
