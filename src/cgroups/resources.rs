//! The linux.resources sections that read the same on every layout: pids.max,
//! hugetlb limits (on whichever hierarchy holds hugetlb), rdma.max, and `unified`
//! key/values, written to the cgroup2 directory as given.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxRdma, LinuxResources};

use super::{need, write, Cgroup, CgroupError};

pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(p) = r.pids() {
        let dir = need(cg, "pids", "pids.limit")?;
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        write(dir, "pids.max", &v, "pids.limit")?;
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let Some(d) = cg.dir_of("hugetlb") else {
            return Err(CgroupError::Missing {
                field,
                controller: "hugetlb".into(),
            });
        };
        let suffix = if d.v2 { "max" } else { "limit_in_bytes" };
        let file = format!("hugetlb.{}.{suffix}", h.page_size());
        write(&d.path, &file, &h.limit().to_string(), &field)?;
    }
    if let Some(rdma) = r.rdma() {
        self::rdma(cg, rdma)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let Some(d) = cg.unified() else {
            return Err(CgroupError::Config {
                field: "linux.resources.unified".into(),
                message: "needs cgroup v2, and this host has only v1 hierarchies".into(),
            });
        };
        unified(&d.path, u)?;
    }
    Ok(())
}

/// rdma.max lines, one per device (the same format on v1 and v2).
fn rdma(cg: &Cgroup, rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    for (dev, l) in rdma {
        let field = format!("rdma.{dev}");
        let dir = need(cg, "rdma", &field)?;
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        write(dir, "rdma.max", &line, &field)?;
    }
    Ok(())
}

/// `unified`: each key is a file of the cgroup, written as given.
fn unified(dir: &Path, u: &HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("unified.{key}");
        if key.contains('/')
            || key.starts_with('.')
            || key.starts_with("cgroup.procs")
            || key == "cgroup.threads"
        {
            return Err(CgroupError::Config {
                field: format!("linux.resources.{field}"),
                message: "is not a cgroup control file berth may write".into(),
            });
        }
        if !dir.join(key).exists() {
            let controller = key.split('.').next().unwrap_or(key);
            return Err(CgroupError::Missing {
                field,
                controller: controller.into(),
            });
        }
        write(dir, key, &u[key], &field)?;
    }
    Ok(())
}

/// A block IO weight that is set: 0 means "leave the kernel's value", as runc
/// reads it (engines send 0 for a weight the user did not give).
pub(super) fn weight(w: Option<u16>) -> Option<u16> {
    w.filter(|w| *w != 0)
}
