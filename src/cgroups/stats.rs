//! The counters `events` reports, in runc's JSON shape (cpu, memory, pids, blkio,
//! hugetlb), read through cgroups-rs's controllers; and the OOM-kill counter that
//! `events` watches.

use std::path::PathBuf;

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use serde_json::{json, Map, Value};

use super::{read, Cgroup};

fn ctl(cg: &Cgroup, name: &str) -> Option<(PathBuf, bool)> {
    cg.dir_of(name).map(|d| (d.path.clone(), d.v2))
}

/// "key value" lines (cpu.stat, memory.events) as a map.
fn keyed(text: &str) -> Map<String, Value> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|v| (k.to_string(), json!(v)))
        })
        .collect()
}

fn cpu(cg: &Cgroup) -> Value {
    let mut usage = json!({});
    let mut throttling = json!({});
    if let Some((dir, false)) = ctl(cg, "cpuacct") {
        let acct = CpuAcctController::new(dir.clone(), dir).cpuacct();
        let percpu: Vec<u64> = acct
            .usage_percpu
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let stat = keyed(&acct.stat);
        // cpuacct.stat counts clock ticks; runc reports nanoseconds.
        let ticks = |k: &str| stat.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
        usage = json!({"total": acct.usage, "percpu": percpu,
            "kernel": ticks("system"), "user": ticks("user")});
    }
    if let Some((dir, v2)) = ctl(cg, "cpu") {
        let stat = keyed(&CpuController::new(dir.clone(), dir, v2).cpu().stat);
        let n = |k: &str| stat.get(k).and_then(Value::as_u64).unwrap_or(0);
        if v2 {
            usage = json!({"total": n("usage_usec") * 1000, "kernel": n("system_usec") * 1000,
                "user": n("user_usec") * 1000});
            throttling = json!({"periods": n("nr_periods"), "throttled_periods": n("nr_throttled"),
                "throttled_time": n("throttled_usec") * 1000});
        } else {
            throttling = json!({"periods": n("nr_periods"), "throttled_periods": n("nr_throttled"),
                "throttled_time": n("throttled_time")});
        }
    }
    json!({"usage": usage, "throttling": throttling})
}

fn memory(cg: &Cgroup) -> Value {
    let Some((dir, v2)) = ctl(cg, "memory") else {
        return json!({});
    };
    let c = MemController::new(dir.clone(), dir.clone(), v2);
    let m = c.memory_stat();
    let swap = if v2 { c.memswap_v2() } else { c.memswap() };
    let raw = read(&dir, "memory.stat")
        .map(|s| keyed(&s))
        .unwrap_or_default();
    json!({
        "cache": m.stat.cache,
        "usage": {"usage": m.usage_in_bytes, "max": m.max_usage_in_bytes,
            "failcnt": m.fail_cnt, "limit": m.limit_in_bytes},
        "swap_usage": {"usage": swap.usage_in_bytes, "max": swap.max_usage_in_bytes,
            "failcnt": swap.fail_cnt, "limit": swap.limit_in_bytes},
        "stats": raw,
    })
}

fn pids(cg: &Cgroup) -> Value {
    let Some((dir, v2)) = ctl(cg, "pids") else {
        return json!({});
    };
    let c = PidController::new(dir.clone(), dir, v2);
    let limit = match c.get_pid_max() {
        Ok(MaxValue::Value(v)) => v as u64,
        _ => 0,
    };
    json!({"current": c.get_pid_current().unwrap_or(0), "limit": limit})
}

fn blkio(cg: &Cgroup) -> Value {
    let dir = ctl(cg, "blkio").or_else(|| ctl(cg, "io"));
    let Some((dir, v2)) = dir else {
        return json!({});
    };
    let b = BlkIoController::new(dir.clone(), dir, v2).blkio();
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    if v2 {
        for s in &b.io_stat {
            bytes
                .push(json!({"major": s.major, "minor": s.minor, "op": "Read", "value": s.rbytes}));
            bytes.push(
                json!({"major": s.major, "minor": s.minor, "op": "Write", "value": s.wbytes}),
            );
            ios.push(json!({"major": s.major, "minor": s.minor, "op": "Read", "value": s.rios}));
            ios.push(json!({"major": s.major, "minor": s.minor, "op": "Write", "value": s.wios}));
        }
    } else {
        for (list, out) in [
            (&b.io_service_bytes_recursive, &mut bytes),
            (&b.io_serviced_recursive, &mut ios),
        ] {
            for s in list {
                out.push(
                    json!({"major": s.major, "minor": s.minor, "op": "Read", "value": s.read}),
                );
                out.push(
                    json!({"major": s.major, "minor": s.minor, "op": "Write", "value": s.write}),
                );
            }
        }
    }
    json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios})
}

fn hugetlb(cg: &Cgroup) -> Value {
    let Some((dir, v2)) = ctl(cg, "hugetlb") else {
        return json!({});
    };
    let c = HugeTlbController::new(dir.clone(), dir, v2);
    let mut out = Map::new();
    for size in c.get_sizes() {
        out.insert(
            size.clone(),
            json!({"usage": c.usage_in_bytes(&size).unwrap_or(0),
                "max": c.max_usage_in_bytes(&size).unwrap_or(0),
                "failcnt": c.failcnt(&size).unwrap_or(0)}),
        );
    }
    Value::Object(out)
}

/// runc's `events --stats` document for container `id`.
pub fn collect(cg: &Cgroup, id: &str) -> Value {
    json!({"type": "stats", "id": id, "data": {
        "cpu": cpu(cg), "memory": memory(cg), "pids": pids(cg),
        "blkio": blkio(cg), "hugetlb": hugetlb(cg)}})
}

/// How many processes the OOM killer has killed in the cgroup so far.
pub fn oom_kills(cg: &Cgroup) -> u64 {
    let Some(d) = cg.dir_of("memory") else {
        return 0;
    };
    let file = if d.v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    read(&d.path, file)
        .map(|s| keyed(&s))
        .and_then(|m| m.get("oom_kill").and_then(Value::as_u64))
        .unwrap_or(0)
}
