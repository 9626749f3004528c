//! linux.cgroupsPath: what the container's cgroup is called. Absolute paths are
//! taken from each hierarchy's root; relative ones from berth's own cgroup on v1
//! hierarchies and from the root on cgroup2, as runc does; an empty path means
//! `/berth/<id>`. With `--systemd-cgroup` the path is `slice:prefix:name`, mapped
//! to the cgroupfs layout systemd itself would create.

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// The requested cgroup, before it is placed in a hierarchy.
#[derive(Debug, PartialEq)]
pub struct Wanted {
    pub path: PathBuf,
    pub absolute: bool,
}

fn invalid(message: String) -> CgroupError {
    CgroupError::Config {
        field: "linux.cgroupsPath".into(),
        message,
    }
}

/// Resolves cgroupsPath for container `id`.
pub fn resolve(
    cgroups_path: Option<&Path>,
    id: &str,
    systemd: bool,
) -> Result<Wanted, CgroupError> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = if systemd {
        let spec = if raw.is_empty() {
            format!("system.slice:berth:{id}")
        } else {
            raw.clone()
        };
        systemd_path(&spec)?
    } else if raw.is_empty() {
        PathBuf::from("/").join(super::DEFAULT_PARENT).join(id)
    } else {
        PathBuf::from(&raw)
    };
    for c in path.components() {
        if matches!(c, Component::ParentDir | Component::CurDir) {
            return Err(invalid(format!(
                "{raw:?} must not contain . or .. components"
            )));
        }
    }
    let absolute = path.is_absolute();
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect();
    if rel.as_os_str().is_empty() {
        return Err(invalid(format!("{raw:?} names the root cgroup")));
    }
    Ok(Wanted {
        path: rel,
        absolute,
    })
}

/// `slice:prefix:name` as systemd lays it out: `a-b.slice` nests in `a.slice`; the
/// unit is `prefix-name.scope`, or `name` itself when it is a slice.
fn systemd_path(spec: &str) -> Result<PathBuf, CgroupError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(format!(
            "{spec:?}: with --systemd-cgroup it must be slice:prefix:name"
        )));
    };
    if name.is_empty() {
        return Err(invalid(format!("{spec:?}: the name part is empty")));
    }
    let mut path = PathBuf::from("/");
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if slice != "-.slice" {
        let Some(stem) = slice.strip_suffix(".slice") else {
            return Err(invalid(format!(
                "{slice:?} is not a slice name (NAME.slice)"
            )));
        };
        if stem.is_empty()
            || stem.contains('/')
            || stem.starts_with('-')
            || stem.ends_with('-')
            || stem.contains("--")
        {
            return Err(invalid(format!("{slice:?} is not a valid slice name")));
        }
        let mut acc = String::new();
        for part in stem.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            path.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.contains('/') {
        return Err(invalid(format!("{spec:?}: the unit name contains '/'")));
    }
    path.push(unit);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str, systemd: bool) -> Result<Wanted, CgroupError> {
        resolve(Some(Path::new(p)), "c1", systemd)
    }

    #[test]
    fn plain_paths() {
        assert_eq!(
            resolve(None, "c1", false).unwrap(),
            Wanted {
                path: "berth/c1".into(),
                absolute: true
            }
        );
        assert_eq!(
            r("/a/b", false).unwrap(),
            Wanted {
                path: "a/b".into(),
                absolute: true
            }
        );
        assert_eq!(
            r("a/b", false).unwrap(),
            Wanted {
                path: "a/b".into(),
                absolute: false
            }
        );
        assert!(r("/a/../../etc", false)
            .unwrap_err()
            .to_string()
            .contains("linux.cgroupsPath"));
        assert!(r("/", false).is_err());
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            r("machine-web.slice:docker:abc", true).unwrap().path,
            PathBuf::from("machine.slice/machine-web.slice/docker-abc.scope")
        );
        assert_eq!(
            resolve(None, "c1", true).unwrap().path,
            PathBuf::from("system.slice/berth-c1.scope")
        );
        assert_eq!(
            r("-.slice::x", true).unwrap().path,
            PathBuf::from("x.scope")
        );
        assert!(r("/plain/path", true)
            .unwrap_err()
            .to_string()
            .contains("slice:prefix:name"));
        assert!(r("bad:x:y", true).is_err());
    }
}
