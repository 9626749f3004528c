//! Which cgroup hierarchies this host has: v1 hierarchies (one per mount, each with
//! its controllers), the cgroup2 mount and the controllers it holds, and the
//! cgroup berth itself is in on each. Read from /proc/self/mountinfo and
//! /proc/self/cgroup; nothing is mounted or changed.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// v1: the controllers mounted together ("cpu", "name=systemd"); v2: those in
    /// the root's cgroup.controllers.
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    /// berth's own cgroup in this hierarchy, relative to the mount.
    pub own: PathBuf,
    pub v2: bool,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub v1: Vec<Hierarchy>,
    pub unified: Option<Hierarchy>,
}

impl Layout {
    /// Reads the layout of this process's cgroup namespace.
    pub fn detect() -> Result<Layout, CgroupError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |e: procfs::ProcError| CgroupError::Io {
                what,
                source: std::io::Error::other(e.to_string()),
            }
        };
        let me = procfs::process::Process::myself().map_err(io("read /proc/self"))?;
        let mounts: Vec<Mount> = me
            .mountinfo()
            .map_err(io("read /proc/self/mountinfo"))?
            .into_iter()
            .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
            .map(|m| Mount {
                fs_type: m.fs_type,
                root: m.root,
                mount: m.mount_point,
                options: m
                    .super_options
                    .into_iter()
                    .map(|(k, v)| v.map_or(k.clone(), |v| format!("{k}={v}")))
                    .collect(),
            })
            .collect();
        let own: Vec<Membership> = me
            .cgroups()
            .map_err(io("read /proc/self/cgroup"))?
            .into_iter()
            .map(|c| Membership {
                hierarchy: c.hierarchy,
                controllers: c.controllers,
                path: c.pathname,
            })
            .collect();
        let mut layout = build(&mounts, &own);
        if let Some(u) = layout.unified.as_mut() {
            let file = u.mount.join("cgroup.controllers");
            u.controllers = std::fs::read_to_string(&file)
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
        }
        Ok(layout)
    }

    /// "v1", "v2" or "hybrid", as the closing notes and `features` say it.
    pub fn mode(&self) -> &'static str {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => "v2",
            (false, true) => "hybrid",
            (false, false) => "v1",
        }
    }
}

/// A cgroup or cgroup2 mount from mountinfo.
pub struct Mount {
    pub fs_type: String,
    pub root: String,
    pub mount: PathBuf,
    /// Super options: the v1 controllers and flags such as "rw", "xattr".
    pub options: Vec<String>,
}

/// One line of /proc/self/cgroup.
pub struct Membership {
    pub hierarchy: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

/// The layout from the cgroup mounts and this process's memberships (pure).
pub fn build(mounts: &[Mount], own: &[Membership]) -> Layout {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let mut layout = Layout {
        v1: Vec::new(),
        unified: None,
    };
    for m in mounts {
        if m.fs_type == "cgroup2" {
            if layout.unified.is_none() {
                let own = own
                    .iter()
                    .find(|c| c.hierarchy == 0 && c.controllers.is_empty())
                    .map(|c| relative_to_root(&c.path, &m.root))
                    .unwrap_or_default();
                layout.unified = Some(Hierarchy {
                    controllers: Vec::new(),
                    mount: m.mount.clone(),
                    own,
                    v2: true,
                });
            }
            continue;
        }
        let ctrls: Vec<String> = sorted(
            &m.options
                .iter()
                .filter(|o| {
                    !matches!(
                        o.as_str(),
                        "rw" | "ro" | "xattr" | "clone_children" | "noprefix" | "cpuset_v2_mode"
                    ) && !o.starts_with("release_agent")
                })
                .cloned()
                .collect::<Vec<_>>(),
        );
        if ctrls.is_empty() || layout.v1.iter().any(|h| h.controllers == ctrls) {
            continue;
        }
        let own = own
            .iter()
            .find(|c| c.hierarchy != 0 && sorted(&c.controllers) == ctrls)
            .map(|c| relative_to_root(&c.path, &m.root))
            .unwrap_or_default();
        layout.v1.push(Hierarchy {
            controllers: ctrls,
            mount: m.mount.clone(),
            own,
            v2: false,
        });
    }
    layout
}

/// berth's cgroup path made relative to the mount's root.
fn relative_to_root(path: &str, root: &str) -> PathBuf {
    let p = Path::new(path);
    let rel = p.strip_prefix(root).unwrap_or(p);
    rel.strip_prefix("/").unwrap_or(rel).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(fs: &str, at: &str, opts: &[&str]) -> Mount {
        Mount {
            fs_type: fs.into(),
            root: "/".into(),
            mount: at.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn member(h: u32, c: &[&str], path: &str) -> Membership {
        Membership {
            hierarchy: h,
            controllers: c.iter().map(|s| s.to_string()).collect(),
            path: path.into(),
        }
    }

    #[test]
    fn hybrid_layout() {
        let mounts = [
            mount("cgroup", "/sys/fs/cgroup/cpu", &["rw", "cpu"]),
            mount("cgroup", "/sys/fs/cgroup/memory", &["rw", "memory"]),
            mount(
                "cgroup",
                "/sys/fs/cgroup/systemd",
                &["rw", "xattr", "name=systemd"],
            ),
            mount("cgroup2", "/sys/fs/cgroup/unified", &["rw"]),
        ];
        let own = [
            member(9, &["name=systemd"], "/"),
            member(4, &["memory"], "/api/x"),
            member(1, &["cpu"], "/"),
            member(0, &[], "/"),
        ];
        let l = build(&mounts, &own);
        assert_eq!(l.mode(), "hybrid");
        assert_eq!(l.v1.len(), 3);
        let mem = l.v1.iter().find(|h| h.controllers == ["memory"]).unwrap();
        assert_eq!(mem.mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own, Path::new("api/x"));
        assert!(l.v1.iter().any(|h| h.controllers == ["name=systemd"]));
        assert_eq!(
            l.unified.as_ref().unwrap().mount,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn unified_layout() {
        let l = build(
            &[mount("cgroup2", "/sys/fs/cgroup", &["rw", "nsdelegate"])],
            &[member(0, &[], "/user.slice/x.scope")],
        );
        assert_eq!(l.mode(), "v2");
        assert_eq!(l.unified.unwrap().own, Path::new("user.slice/x.scope"));
    }
}
