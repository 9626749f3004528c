//! `ps`: the container's processes, from its cgroup. The table is ps(1)'s own
//! output (arguments after the id, default -ef) filtered to those pids; json is
//! the list of pids.

use std::process::Command;

use crate::cli::{PsArgs, PsFormat};
use crate::error::{Error, ResultExt};
use crate::lifecycle;
use crate::state::{Status, Store};

pub fn run(store: &Store, args: &PsArgs) -> Result<i32, Error> {
    let dir = super::open(store, &args.id)?;
    let rec = lifecycle::load(&dir)?;
    if dir.status(&rec) == Status::Stopped {
        return Err(Error::msg("container not running"));
    }
    let pids = rec.cgroup.pids()?;
    if args.format == PsFormat::Json {
        println!(
            "{}",
            serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
        );
        return Ok(0);
    }
    let ps_args: Vec<String> = if args.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .with(|| format!("run ps {}", ps_args.join(" ")))?;
    if !out.status.success() {
        return Err(Error::msg(format!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::msg("ps output has no PID column"))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
