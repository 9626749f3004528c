//! `update`: new resource limits for a created, running or paused container,
//! from `--resources FILE` (linux.resources JSON, "-" for stdin) and runc's flags,
//! which take precedence. Device rules are never touched, so rules that hooks
//! added survive.

use std::io::Read;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::cli::UpdateArgs;
use crate::error::{Error, ResultExt};
use crate::lifecycle;
use crate::state::{Status, Store};

/// Bytes with an optional binary suffix (k, m, g, t; "b" allowed), or -1.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64, Error> {
    let bad = || {
        Error::msg(format!(
            "--{flag} {s:?}: expected bytes such as 512m, 1g or -1"
        ))
    };
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult).filter(|v| *v >= 0).ok_or_else(bad)
}

fn read_resources(path: &std::path::Path) -> Result<Value, Error> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .with(|| "read resources from stdin".into())?;
    } else {
        text = std::fs::read_to_string(path).with(|| format!("--resources {}", path.display()))?;
    }
    serde_json::from_str(&text)
        .map_err(|e| Error::msg(format!("--resources {}: {e}", path.display())))
}

/// The resources the arguments ask for, as linux.resources JSON.
pub fn requested(args: &UpdateArgs) -> Result<Value, Error> {
    let mut r = match &args.resources {
        Some(p) => read_resources(p)?,
        None => json!({}),
    };
    if !r.is_object() {
        return Err(Error::msg(
            "--resources: expected a JSON object (linux.resources)",
        ));
    }
    let mut set = |section: &str, key: &str, v: Value| {
        if !r[section].is_object() {
            r[section] = json!({});
        }
        r[section][key] = v;
    };
    for (flag, key, value) in [
        ("memory", "limit", &args.memory),
        ("memory-swap", "swap", &args.memory_swap),
        (
            "memory-reservation",
            "reservation",
            &args.memory_reservation,
        ),
    ] {
        if let Some(v) = value {
            set("memory", key, json!(parse_bytes(flag, v)?));
        }
    }
    if let Some(v) = args.cpu_shares {
        set("cpu", "shares", json!(v));
    }
    if let Some(v) = args.cpu_quota {
        set("cpu", "quota", json!(v));
    }
    if let Some(v) = args.cpu_period {
        set("cpu", "period", json!(v));
    }
    if let Some(v) = &args.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &args.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = args.pids_limit {
        set("pids", "limit", json!(v));
    }
    if let Some(v) = args.blkio_weight {
        set("blockIO", "weight", json!(v));
    }
    Ok(r)
}

pub fn run(store: &Store, args: &UpdateArgs) -> Result<i32, Error> {
    let dir = super::open(store, &args.id)?;
    dir.lock()?;
    let rec = lifecycle::load(&dir)?;
    if dir.status(&rec) == Status::Stopped {
        return Err(Error::msg("container not running"));
    }
    let mut value = requested(args)?;
    if value.get("devices").is_some_and(|d| !d.is_null()) {
        crate::logging::warn(
            "update: linux.resources.devices is ignored; device rules are set at create",
        );
        value["devices"] = Value::Null;
    }
    let resources: LinuxResources = serde_path_to_error::deserialize(value)
        .map_err(|e| Error::msg(format!("--resources: {}: {}", e.path(), e.inner())))?;
    rec.cgroup.apply(Some(&resources), true)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("memory", "10kb").unwrap(), 10 << 10);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        assert!(parse_bytes("memory", "lots").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let args = UpdateArgs {
            memory: Some("64m".into()),
            pids_limit: Some(10),
            cpu_quota: Some(-1),
            ..Default::default()
        };
        let r = requested(&args).unwrap();
        assert_eq!(r["memory"]["limit"], json!(64 << 20));
        assert_eq!(r["pids"]["limit"], json!(10));
        assert_eq!(r["cpu"]["quota"], json!(-1));
    }
}
