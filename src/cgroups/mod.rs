//! The container's cgroup: made before its init runs, on every hierarchy the host
//! has (v1, cgroup2, or both as on hybrid hosts), filled with linux.resources,
//! joined by init before any create-time hook, frozen for `pause`, read for `ps`
//! and `events`, and removed by `delete`. Only directories berth made are ever
//! removed or reconfigured; the host's mounts are never touched.
//!
//! `layout` finds the hierarchies, `path` names the cgroup, `v1` and `v2` write
//! the resources that differ by version and `resources` those that do not, `devices` the device rules (v1 files, v2 eBPF), `stats` reads
//! the counters.

pub mod devices;
pub mod layout;
pub mod path;
mod resources;
pub mod stats;
mod v1;
mod v2;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use layout::Layout;

/// The parent of default cgroup paths (`/berth/<id>`).
pub const DEFAULT_PARENT: &str = "berth";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    #[error("linux.resources.{field}: the {controller} controller is not available on this host")]
    Missing { field: String, controller: String },
    #[error("linux.resources.{field}: write {value:?} to {}: {source}", path.display())]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cgroup: {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CgroupError {
    let what = what.into();
    move |source| CgroupError::Io { what, source }
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dir {
    pub path: PathBuf,
    /// v1: the hierarchy's controllers; v2: those enabled for this cgroup.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// How many trailing path components berth created (removed deepest first).
    pub created: usize,
}

/// The container's cgroup on every hierarchy; kept in state.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cgroup {
    pub dirs: Vec<Dir>,
}

/// Where the cgroup goes on one hierarchy.
fn place(h: &layout::Hierarchy, wanted: &path::Wanted) -> PathBuf {
    if wanted.absolute || h.v2 {
        h.mount.join(&wanted.path)
    } else {
        h.mount.join(&h.own).join(&wanted.path)
    }
}

impl Cgroup {
    /// Makes the cgroup on every hierarchy and applies `resources`. On failure,
    /// whatever was made is removed again.
    pub fn create(
        layout: &Layout,
        wanted: &path::Wanted,
        resources: Option<&LinuxResources>,
        extra_devices: &[devices::Rule],
    ) -> Result<Cgroup, CgroupError> {
        let mut cg = Cgroup::default();
        let made = cg.make_dirs(layout, wanted).and_then(|()| {
            cg.apply(resources, false)?;
            devices::apply(&cg, resources, extra_devices)
        });
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.destroy();
                Err(e)
            }
        }
    }

    fn make_dirs(&mut self, layout: &Layout, wanted: &path::Wanted) -> Result<(), CgroupError> {
        let hierarchies = layout.v1.iter().chain(layout.unified.iter());
        for h in hierarchies {
            let target = place(h, wanted);
            // Record the directory before making it, so a failure halfway removes
            // what was made.
            self.dirs.push(Dir {
                path: target.clone(),
                controllers: h.controllers.clone(),
                v2: h.v2,
                created: 0,
            });
            // A parent shared with other containers (`/berth`) may be removed by
            // their delete between our check and our mkdir: start over then.
            let mut attempts = 0;
            'again: loop {
                if let Some(last) = self.dirs.last_mut() {
                    last.created = 0;
                }
                let mut missing: Vec<&Path> = target
                    .ancestors()
                    .take_while(|p| *p != h.mount && !p.exists())
                    .collect();
                missing.reverse();
                for dir in missing {
                    match std::fs::create_dir(dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                        Err(e) if e.kind() == ErrorKind::NotFound && attempts < 20 => {
                            attempts += 1;
                            continue 'again;
                        }
                        Err(e) => return Err(io(format!("mkdir {}", dir.display()))(e)),
                    }
                    if let Some(last) = self.dirs.last_mut() {
                        last.created += 1;
                    }
                }
                break;
            }
            let Some(last) = self.dirs.last_mut() else {
                continue;
            };
            let joined = last.created == 0;
            // `/berth` is berth's own parent: whoever leaves it last removes it,
            // whichever container made it.
            if wanted.absolute && wanted.path.starts_with(DEFAULT_PARENT) {
                last.created = last.created.max(wanted.path.components().count());
            }
            // Top down over berth's directories, idempotent, so that a parent
            // another create made a moment ago is ready before our level is used:
            // v1 cpuset copies cpus/mems into empty ones; cgroup2 passes the
            // controllers down (the container's own directory keeps none: it holds
            // processes).
            let mut chain: Vec<&Path> = target.ancestors().take(last.created).collect();
            chain.reverse();
            for dir in chain {
                if h.v2 && dir != target {
                    v2::enable_controllers(dir)?;
                } else if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") {
                    v1::inherit_cpuset(dir)?;
                }
            }
            if h.v2 {
                last.controllers = v2::available(&target);
            }
            // A cgroup that already holds processes belongs to something else.
            if joined {
                let procs = read(&target, "cgroup.procs").unwrap_or_default();
                let n = procs.lines().count();
                if n > 0 {
                    last.created = 0;
                    return Err(CgroupError::Config {
                        field: "linux.cgroupsPath".into(),
                        message: format!(
                            "cgroup {} is not empty: {n} processes already in it",
                            target.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes linux.resources; `update` is set for `berth update`, which never
    /// touches the device rules.
    pub fn apply(&self, r: Option<&LinuxResources>, update: bool) -> Result<(), CgroupError> {
        let Some(r) = r else { return Ok(()) };
        if self.is_unified() {
            v2::apply(self, r, update)?;
        } else {
            v1::apply(self, r, update)?;
        }
        resources::apply(self, r)
    }

    /// Whether all controllers live on cgroup2.
    pub fn is_unified(&self) -> bool {
        self.dirs.iter().all(|d| d.v2)
    }

    /// The directory holding `controller`, if any hierarchy has it.
    pub fn dir_of(&self, controller: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
            .or_else(|| {
                self.dirs
                    .iter()
                    .find(|d| d.v2 && d.controllers.iter().any(|c| c == controller))
            })
    }

    /// The cgroup2 directory (unified or hybrid hosts).
    pub fn unified(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.v2)
    }

    /// Moves `pid` into the cgroup on every hierarchy.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let file = d.path.join("cgroup.procs");
            std::fs::write(&file, pid.to_string())
                .map_err(io(format!("add pid {pid} to {}", file.display())))?;
        }
        Ok(())
    }

    /// The pids in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(d) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let file = d.path.join("cgroup.procs");
        let text =
            std::fs::read_to_string(&file).map_err(io(format!("read {}", file.display())))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes or thaws every process, waiting until the kernel reports it done.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let d = self.freezer()?;
        let ctl =
            cgroups_rs::fs::freezer::FreezerController::new(d.path.clone(), d.path.clone(), d.v2);
        let what = if frozen { "freeze" } else { "thaw" };
        let res = if frozen { ctl.freeze() } else { ctl.thaw() };
        res.map_err(|e| {
            io(format!("{what} {}", d.path.display()))(std::io::Error::other(e.to_string()))
        })?;
        for _ in 0..1000 {
            if self.is_frozen()? == frozen {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(io(format!("{what} {}", d.path.display()))(
            std::io::Error::from(ErrorKind::TimedOut),
        ))
    }

    fn freezer(&self) -> Result<&Dir, CgroupError> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "freezer"))
            .or_else(|| self.unified().filter(|_| self.is_unified()))
            .ok_or_else(|| CgroupError::Missing {
                field: "(pause)".into(),
                controller: "freezer".into(),
            })
    }

    /// Whether the cgroup is frozen (v1 FROZEN, v2 cgroup.events frozen 1).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let d = self.freezer()?;
        if d.v2 {
            let file = d.path.join("cgroup.events");
            let text =
                std::fs::read_to_string(&file).map_err(io(format!("read {}", file.display())))?;
            Ok(text.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            let file = d.path.join("freezer.state");
            let text =
                std::fs::read_to_string(&file).map_err(io(format!("read {}", file.display())))?;
            Ok(text.trim() == "FROZEN")
        }
    }

    /// Removes every directory berth made, deepest first. Processes that are
    /// still exiting keep the container's cgroup busy for a moment: retried for up
    /// to a second. A parent still holding other containers' cgroups stays.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for d in &self.dirs {
            for (i, dir) in d.path.ancestors().take(d.created).enumerate() {
                match remove_dir(dir, i == 0) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Removes one cgroup directory; Ok(false) when a parent is still in use.
fn remove_dir(dir: &Path, leaf: bool) -> Result<bool, CgroupError> {
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
            Err(e)
                if !leaf
                    && matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) =>
            {
                return Ok(false)
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 200 => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io(format!("rmdir {}", dir.display()))(e)),
        }
    }
    Ok(true)
}

/// Writes one control file for the resource `field`.
pub(crate) fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| CgroupError::Write {
        field: field.into(),
        path,
        value: value.into(),
        source,
    })
}

/// Reads one control file, trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The directory of `controller` for resource `field`, or the error naming both.
pub(crate) fn need<'a>(
    cg: &'a Cgroup,
    controller: &str,
    field: &str,
) -> Result<&'a Path, CgroupError> {
    cg.dir_of(controller)
        .map(|d| d.path.as_path())
        .ok_or_else(|| CgroupError::Missing {
            field: field.into(),
            controller: controller.into(),
        })
}
