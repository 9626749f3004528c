//! linux.resources on cgroup v1 hierarchies: memory, cpu, blkio and network (the
//! sections that read the same on both versions are in `resources`).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::resources::weight;
use super::{need, read, write, Cgroup, CgroupError};

/// A new cpuset cgroup starts with no cpus and mems: copy the parent's.
pub fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read(dir, file).is_some_and(|v| v.is_empty()) {
            let value = read(parent, file).unwrap_or_default();
            write(dir, file, &value, "cpu")?;
        }
    }
    Ok(())
}

pub fn apply(cg: &Cgroup, r: &LinuxResources, update: bool) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(cg, m, update)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(b) = r.block_io() {
        blkio(cg, b)?;
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            let dir = need(cg, "net_cls", "network.classID")?;
            write(dir, "net_cls.classid", &id.to_string(), "network.classID")?;
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let field = format!("network.priorities[{i}]");
            let dir = need(cg, "net_prio", &field)?;
            write(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
                &field,
            )?;
        }
    }
    Ok(())
}

fn memory(cg: &Cgroup, m: &LinuxMemory, update: bool) -> Result<(), CgroupError> {
    let dir = need(cg, "memory", "memory")?;
    if update && m.check_before_update().unwrap_or(false) {
        if let (Some(limit), Some(usage)) = (m.limit(), read(dir, "memory.usage_in_bytes")) {
            let usage: i64 = usage.parse().unwrap_or(0);
            if limit > 0 && limit < usage {
                return Err(CgroupError::Config {
                    field: "linux.resources.memory.limit".into(),
                    message: format!(
                        "{limit} is below the current usage {usage} (checkBeforeUpdate)"
                    ),
                });
            }
        }
    }
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    let set_limit = |v: i64| write(dir, "memory.limit_in_bytes", &v.to_string(), "memory.limit");
    let set_swap = |v: i64| {
        write(
            dir,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
            "memory.swap",
        )
    };
    // memsw must stay >= the memory limit at every step: raise it first when the
    // new value is above the current limit, else lower the limit first.
    if limit != 0 && swap != 0 {
        let current: i64 = read(dir, "memory.limit_in_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MAX);
        if swap == -1 || current < swap {
            set_swap(swap)?;
            set_limit(limit)?;
        } else {
            set_limit(limit)?;
            set_swap(swap)?;
        }
    } else if limit != 0 {
        set_limit(limit)?;
    } else if swap != 0 {
        set_swap(swap)?;
    }
    if let Some(v) = m.reservation() {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            &v.to_string(),
            "memory.reservation",
        )?;
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(CgroupError::Config {
                field: "linux.resources.memory.swappiness".into(),
                message: format!("{v} is above 100"),
            });
        }
        write(
            dir,
            "memory.swappiness",
            &v.to_string(),
            "memory.swappiness",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1", "memory.disableOOMKiller")?;
    }
    // Kernel memory limits are deprecated by the spec and gone from recent
    // kernels: applied where the file still exists, else ignored (as runc does).
    for (value, file, field) in [
        (m.kernel(), "memory.kmem.limit_in_bytes", "memory.kernel"),
        (
            m.kernel_tcp(),
            "memory.kmem.tcp.limit_in_bytes",
            "memory.kernelTCP",
        ),
    ] {
        if let Some(v) = value.filter(|_| dir.join(file).exists()) {
            write(dir, file, &v.to_string(), field)?;
        }
    }
    if let Some(h) = m.use_hierarchy() {
        if dir.join("memory.use_hierarchy").exists() {
            write(
                dir,
                "memory.use_hierarchy",
                if h { "1" } else { "0" },
                "memory.useHierarchy",
            )?;
        }
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<(), CgroupError> {
    let scheduling = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.idle().is_some();
    if scheduling {
        let dir = need(cg, "cpu", "cpu")?;
        if let Some(v) = c.shares().filter(|v| *v != 0) {
            write(dir, "cpu.shares", &v.to_string(), "cpu.shares")?;
        }
        if let Some(v) = c.period().filter(|v| *v != 0) {
            write(dir, "cpu.cfs_period_us", &v.to_string(), "cpu.period")?;
        }
        if let Some(v) = c.quota().filter(|v| *v != 0) {
            write(dir, "cpu.cfs_quota_us", &v.to_string(), "cpu.quota")?;
        }
        if let Some(v) = c.burst() {
            write(dir, "cpu.cfs_burst_us", &v.to_string(), "cpu.burst")?;
        }
        // The period first: a runtime above the current period is refused.
        if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
            write(
                dir,
                "cpu.rt_period_us",
                &v.to_string(),
                "cpu.realtimePeriod",
            )?;
        }
        if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
            write(
                dir,
                "cpu.rt_runtime_us",
                &v.to_string(),
                "cpu.realtimeRuntime",
            )?;
        }
        if let Some(v) = c.idle() {
            write(dir, "cpu.idle", &v.to_string(), "cpu.idle")?;
        }
    }
    if c.cpus().is_some() || c.mems().is_some() {
        let dir = need(cg, "cpuset", "cpu.cpus")?;
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.cpus", v, "cpu.cpus")?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.mems", v, "cpu.mems")?;
        }
    }
    Ok(())
}

/// The first of `names` that exists in `dir` (BFQ renamed the weight files); the
/// weights need CFQ or BFQ, so a host may have neither.
fn pick<'a>(dir: &Path, names: &[&'a str], field: &str) -> Result<&'a str, CgroupError> {
    names
        .iter()
        .find(|n| dir.join(n).exists())
        .copied()
        .ok_or_else(|| CgroupError::Missing {
            field: field.into(),
            controller: format!("blkio weight ({})", names.join(" or ")),
        })
}

fn blkio(cg: &Cgroup, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let dir = need(cg, "blkio", "blockIO")?;
    if let Some(w) = weight(b.weight()) {
        let file = pick(dir, &["blkio.weight", "blkio.bfq.weight"], "blockIO.weight")?;
        write(dir, file, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = weight(b.leaf_weight()) {
        write(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = weight(d.weight()) {
            let field = format!("blockIO.weightDevice[{i}]");
            let names = ["blkio.weight_device", "blkio.bfq.weight_device"];
            let file = pick(dir, &names, &field)?;
            write(
                dir,
                file,
                &format!("{}:{} {w}", d.major(), d.minor()),
                &field,
            )?;
        }
        if let Some(w) = weight(d.leaf_weight()) {
            let field = format!("blockIO.weightDevice[{i}].leafWeight");
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
                &field,
            )?;
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "throttleWriteIOPSDevice",
        ),
    ];
    for (list, file, name) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let field = format!("blockIO.{name}[{i}]");
            write(
                dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                &field,
            )?;
        }
    }
    Ok(())
}
