//! linux.resources on a cgroup2 host: memory.max and friends, cpu.max and
//! cpu.weight, io.* (the sections that read the same on both versions are in
//! `resources`).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::resources::weight;
use super::{need, read, write, Cgroup, CgroupError};

/// Passes every controller `dir` has on to its children.
pub fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let have = read(dir, "cgroup.controllers").unwrap_or_default();
    let enabled = read(dir, "cgroup.subtree_control").unwrap_or_default();
    for c in have.split_whitespace() {
        if enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        // A controller the kernel refuses here (a realtime task elsewhere keeps
        // cpu from being enabled, for example) stays off; a resource that needs
        // it reports it as missing.
        let _ = write(
            dir,
            "cgroup.subtree_control",
            &format!("+{c}"),
            "(controllers)",
        );
    }
    Ok(())
}

/// The controllers a cgroup2 directory has.
pub fn available(dir: &Path) -> Vec<String> {
    read(dir, "cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn unsupported(field: &str, why: &str) -> CgroupError {
    CgroupError::Config {
        field: format!("linux.resources.{field}"),
        message: format!("not supported on cgroup v2: {why}"),
    }
}

pub fn apply(cg: &Cgroup, r: &LinuxResources, update: bool) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(cg, m, update)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(b) = r.block_io() {
        io(cg, b)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            return Err(unsupported("network.classID", "net_cls is a v1 controller"));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported(
                "network.priorities",
                "net_prio is a v1 controller",
            ));
        }
    }
    Ok(())
}

/// OCI `swap` is memory plus swap; cgroup2's memory.swap.max is swap alone.
fn swap_value(swap: i64, limit: i64) -> Result<Option<String>, CgroupError> {
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        _ if limit <= 0 => Err(CgroupError::Config {
            field: "linux.resources.memory.swap".into(),
            message: "cannot be set without memory.limit on cgroup v2".into(),
        }),
        _ if swap < limit => Err(CgroupError::Config {
            field: "linux.resources.memory.swap".into(),
            message: format!("{swap} is below memory.limit {limit}"),
        }),
        _ => Ok(Some((swap - limit).to_string())),
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn memory(cg: &Cgroup, m: &LinuxMemory, update: bool) -> Result<(), CgroupError> {
    let dir = need(cg, "memory", "memory")?;
    let limit = m.limit().unwrap_or(0);
    if update && m.check_before_update().unwrap_or(false) && limit > 0 {
        let usage: i64 = read(dir, "memory.current")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if limit < usage {
            return Err(CgroupError::Config {
                field: "linux.resources.memory.limit".into(),
                message: format!("{limit} is below the current usage {usage} (checkBeforeUpdate)"),
            });
        }
    }
    if let Some(v) = swap_value(m.swap().unwrap_or(0), limit)? {
        write(dir, "memory.swap.max", &v, "memory.swap")?;
    }
    if limit != 0 {
        write(dir, "memory.max", &max_or(limit), "memory.limit")?;
    }
    if let Some(v) = m.reservation() {
        write(dir, "memory.low", &max_or(v), "memory.reservation")?;
    }
    if m.swappiness().is_some() {
        return Err(unsupported(
            "memory.swappiness",
            "cgroup2 has no per-cgroup swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "memory.disableOOMKiller",
            "cgroup2 cannot disable the OOM killer",
        ));
    }
    // kernel, kernelTCP: deprecated by the spec; cgroup2 has no such limits.
    Ok(())
}

/// cpu.shares (2..262144) mapped onto cpu.weight (1..10000), as runc does.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(unsupported(
            "cpu.realtimeRuntime",
            "cgroup2 has no realtime group scheduling",
        ));
    }
    let scheduling = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some();
    if scheduling {
        let dir = need(cg, "cpu", "cpu")?;
        if let Some(w) = c.shares().map(shares_to_weight).filter(|w| *w != 0) {
            write(dir, "cpu.weight", &w.to_string(), "cpu.shares")?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let current = read(dir, "cpu.max").unwrap_or_else(|| "max 100000".into());
            let mut parts = current.split_whitespace();
            let old_quota = parts.next().unwrap_or("max").to_string();
            let old_period = parts.next().unwrap_or("100000").to_string();
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".into(),
                None => old_quota,
            };
            let period = c
                .period()
                .filter(|p| *p != 0)
                .map(|p| p.to_string())
                .unwrap_or(old_period);
            write(dir, "cpu.max", &format!("{quota} {period}"), "cpu.quota")?;
        }
        if let Some(b) = c.burst() {
            write(dir, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
        }
        if let Some(i) = c.idle() {
            write(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
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

/// blkio weight (10..1000) onto io.weight (1..10000), as runc does.
fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

fn io(cg: &Cgroup, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let dir = need(cg, "io", "blockIO")?;
    let bfq = dir.join("io.bfq.weight").exists();
    let weights = weight(b.weight()).is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| weight(d.weight()).is_some());
    if weights && !bfq && !dir.join("io.weight").exists() {
        return Err(CgroupError::Missing {
            field: "blockIO.weight".into(),
            controller: "io weight (io.bfq.weight or io.weight)".into(),
        });
    }
    if let Some(w) = weight(b.weight()) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string(), "blockIO.weight")?;
        } else {
            write(
                dir,
                "io.weight",
                &format!("default {}", io_weight(w)),
                "blockIO.weight",
            )?;
        }
    }
    if weight(b.leaf_weight()).is_some() {
        return Err(unsupported(
            "blockIO.leafWeight",
            "cgroup2 has no leaf weights",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if weight(d.leaf_weight()).is_some() {
            return Err(unsupported(&field, "cgroup2 has no leaf weights"));
        }
        if let Some(w) = weight(d.weight()) {
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", io_weight(w))
            };
            write(
                dir,
                file,
                &format!("{}:{} {w}", d.major(), d.minor()),
                &field,
            )?;
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "throttleWriteIOPSDevice",
        ),
    ];
    for (list, key, name) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let field = format!("blockIO.{name}[{i}]");
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
                &field,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10000);
        assert_eq!(swap_value(0, 100).unwrap(), None);
        assert_eq!(swap_value(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_value(300, 100).unwrap().as_deref(), Some("200"));
        assert!(swap_value(50, 100).is_err());
        assert!(swap_value(50, 0).is_err());
    }
}
