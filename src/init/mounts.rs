//! Parses an OCI mount entry (type, source, options) into what the kernel takes:
//! mount(2) flags and data for filesystems, mount attributes for bind mounts,
//! propagation changes and recursive (`r*`) attributes. Pure, so it is unit-tested
//! and run during validation before anything is mounted.

use std::path::PathBuf;

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::syscall::*;

/// Whether the entry is a bind mount or a new filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Bind { recursive: bool },
    Fs { fstype: String },
}

/// One mount entry, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub kind: MountKind,
    pub source: Option<PathBuf>,
    pub destination: PathBuf,
    /// mount(2) flags to set (filesystems), and their mount-attribute form (binds).
    pub flags: MsFlags,
    /// Flags an option explicitly clears (`rw`, `suid`, `dev`, ...): binds only.
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Attributes applied recursively (`rro`, `rnosuid`, ...).
    pub recursive: MountAttr,
    /// Filesystem-specific options, comma-joined (`size=64m,mode=755`).
    pub data: String,
}

/// The mount(2) flag of a propagation option, MS_REC included for `r*` forms.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// (flag, true = set / false = clear) for the plain options of config.md.
fn flag_option(name: &str) -> Option<(MsFlags, bool)> {
    Some(match name {
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "atime" => (MsFlags::MS_NOATIME, false),
        "bind" => (MsFlags::MS_BIND, true),
        "defaults" => (MsFlags::empty(), true),
        "dev" => (MsFlags::MS_NODEV, false),
        "diratime" => (MsFlags::MS_NODIRATIME, false),
        "dirsync" => (MsFlags::MS_DIRSYNC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "iversion" => (MsFlags::MS_I_VERSION, true),
        "lazytime" => (MsFlags::MS_LAZYTIME, true),
        "loud" => (MsFlags::MS_SILENT, false),
        "mand" => (MsFlags::MS_MANDLOCK, true),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "nodev" => (MsFlags::MS_NODEV, true),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "noiversion" => (MsFlags::MS_I_VERSION, false),
        "nolazytime" => (MsFlags::MS_LAZYTIME, false),
        "nomand" => (MsFlags::MS_MANDLOCK, false),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "nostrictatime" => (MsFlags::MS_STRICTATIME, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "nosymfollow" => (MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW), true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "remount" => (MsFlags::MS_REMOUNT, true),
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "silent" => (MsFlags::MS_SILENT, true),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "symfollow" => (MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW), false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        _ => return None,
    })
}

/// The recursive attribute options: (attribute, set?) — atime modes also clear the mask.
fn recursive_option(name: &str) -> Option<(u64, bool)> {
    Some(match name {
        "rro" => (MOUNT_ATTR_RDONLY, true),
        "rrw" => (MOUNT_ATTR_RDONLY, false),
        "rnosuid" => (MOUNT_ATTR_NOSUID, true),
        "rsuid" => (MOUNT_ATTR_NOSUID, false),
        "rnodev" => (MOUNT_ATTR_NODEV, true),
        "rdev" => (MOUNT_ATTR_NODEV, false),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, true),
        "rexec" => (MOUNT_ATTR_NOEXEC, false),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, true),
        "rdiratime" => (MOUNT_ATTR_NODIRATIME, false),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, true),
        "rsymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, false),
        "rrelatime" | "rnorelatime" => (MOUNT_ATTR_RELATIME, true),
        "rnoatime" => (MOUNT_ATTR_NOATIME, true),
        "ratime" => (MOUNT_ATTR_NOATIME, false),
        "rstrictatime" | "rnostrictatime" => (MOUNT_ATTR_STRICTATIME, true),
        _ => return None,
    })
}

impl MountPlan {
    /// Parses one config entry; the error text is completed with the entry's index.
    pub fn parse(m: &Mount) -> Result<MountPlan, String> {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(format!(
                "destination {:?} is not an absolute path",
                dest.display().to_string()
            ));
        }
        let mut flags = MsFlags::empty();
        let mut cleared = MsFlags::empty();
        let mut propagation = Vec::new();
        let mut recursive = MountAttr::default();
        let mut data = Vec::new();
        for opt in m.options().iter().flatten() {
            if let Some((f, set)) = flag_option(opt) {
                if set {
                    flags |= f;
                    cleared &= !f;
                } else {
                    flags &= !f;
                    cleared |= f;
                }
            } else if let Some(p) = propagation_flag(opt) {
                propagation.push(p);
            } else if let Some((attr, set)) = recursive_option(opt) {
                let atime = attr == MOUNT_ATTR_NOATIME
                    || attr == MOUNT_ATTR_STRICTATIME
                    || attr == MOUNT_ATTR_RELATIME;
                if atime {
                    recursive.attr_clr |= MOUNT_ATTR__ATIME;
                    if set {
                        recursive.attr_set |= attr;
                    }
                } else if set {
                    recursive.attr_set |= attr;
                    recursive.attr_clr &= !attr;
                } else {
                    recursive.attr_clr |= attr;
                    recursive.attr_set &= !attr;
                }
            } else if opt == "idmap" || opt == "ridmap" {
                return Err(format!("option {opt:?}: idmapped mounts are not supported"));
            } else if opt.contains('\0') {
                return Err(format!("option {opt:?} holds a NUL byte"));
            } else {
                data.push(opt.as_str());
            }
        }
        let typ = m.typ().as_deref().unwrap_or("");
        let kind = if typ == "bind" || flags.contains(MsFlags::MS_BIND) {
            MountKind::Bind {
                recursive: flags.contains(MsFlags::MS_REC),
            }
        } else if typ.is_empty() || typ == "none" {
            return Err("type is required unless options hold bind or rbind".to_string());
        } else {
            MountKind::Fs {
                fstype: typ.to_string(),
            }
        };
        if matches!(kind, MountKind::Bind { .. }) && m.source().is_none() {
            return Err("a bind mount needs a source".to_string());
        }
        if matches!(kind, MountKind::Bind { .. }) && !data.is_empty() {
            return Err(format!("option {:?} is not a bind mount option", data[0]));
        }
        if flags.contains(MsFlags::MS_REMOUNT) {
            return Err("option \"remount\" is not allowed in a container config".to_string());
        }
        Ok(MountPlan {
            kind,
            source: m.source().clone(),
            destination: dest.clone(),
            flags: flags - (MsFlags::MS_BIND | MsFlags::MS_REC),
            cleared,
            propagation,
            recursive,
            data: data.join(","),
        })
    }

    /// The non-recursive mount attributes of a bind mount (set, clear).
    pub fn bind_attr(&self) -> MountAttr {
        let pairs = [
            (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
            (
                MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                MOUNT_ATTR_NOSYMFOLLOW,
            ),
        ];
        let mut attr = MountAttr::default();
        for (flag, a) in pairs {
            if self.flags.contains(flag) {
                attr.attr_set |= a;
            } else if self.cleared.contains(flag) {
                attr.attr_clr |= a;
            }
        }
        let atime = [
            (MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
            (MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
            (MsFlags::MS_RELATIME, MOUNT_ATTR_RELATIME),
        ];
        for (flag, a) in atime {
            if self.flags.contains(flag) {
                attr.attr_clr |= MOUNT_ATTR__ATIME;
                attr.attr_set |= a;
            }
        }
        attr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn mount(typ: &str, opts: &[&str]) -> Mount {
        MountBuilder::default()
            .destination("/x")
            .typ(typ)
            .source("/src")
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn tmpfs_flags_and_data() {
        let p = MountPlan::parse(&mount(
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ))
        .unwrap();
        assert_eq!(
            p.kind,
            MountKind::Fs {
                fstype: "tmpfs".into()
            }
        );
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
    }

    #[test]
    fn bind_with_attrs_and_propagation() {
        let p = MountPlan::parse(&mount(
            "none",
            &["rbind", "ro", "nosuid", "rslave", "rnoexec"],
        ))
        .unwrap();
        assert_eq!(p.kind, MountKind::Bind { recursive: true });
        assert_eq!(p.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        let attr = p.bind_attr();
        assert_eq!(attr.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(p.recursive.attr_set, MOUNT_ATTR_NOEXEC);
        let p = MountPlan::parse(&mount("bind", &["rw", "dev"])).unwrap();
        assert_eq!(p.kind, MountKind::Bind { recursive: false });
        assert_eq!(p.bind_attr().attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
    }

    #[test]
    fn later_options_win() {
        let p = MountPlan::parse(&mount("tmpfs", &["ro", "rw"])).unwrap();
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bad_entries() {
        assert!(MountPlan::parse(&mount("", &["nosuid"]))
            .unwrap_err()
            .contains("type is required"));
        assert!(MountPlan::parse(&mount("bind", &["size=1"])).is_err());
        assert!(MountPlan::parse(&mount("tmpfs", &["remount"])).is_err());
        let rel = MountBuilder::default()
            .destination("rel")
            .typ("tmpfs")
            .build()
            .unwrap();
        assert!(MountPlan::parse(&rel)
            .unwrap_err()
            .contains("not an absolute path"));
    }
}
