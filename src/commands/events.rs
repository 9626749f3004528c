//! `events`: resource usage of a container as runc prints it: with --stats one
//! `{"type":"stats",...}` line; otherwise a stats line every --interval and an
//! `{"type":"oom",...}` line whenever the OOM killer strikes in the container,
//! until the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cgroups::stats;
use crate::cli::EventsArgs;
use crate::error::Error;
use crate::lifecycle;
use crate::state::{Status, Store};

/// "5s", "500ms", "1m", or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::msg(format!(
            "--interval {s:?}: expected a duration such as 5s or 500ms"
        ))
    };
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 || !secs.is_finite() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn emit(line: &serde_json::Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::msg(format!("write events: {e}")))
}

pub fn run(store: &Store, args: &EventsArgs) -> Result<i32, Error> {
    let interval = parse_duration(&args.interval)?;
    let dir = super::open(store, &args.id)?;
    let rec = lifecycle::load(&dir)?;
    if dir.status(&rec) == Status::Stopped {
        return Err(Error::msg("container not running"));
    }
    if args.stats {
        emit(&stats::collect(&rec.cgroup, &rec.id))?;
        return Ok(0);
    }
    let mut ooms = stats::oom_kills(&rec.cgroup);
    let mut next = Instant::now();
    loop {
        // Status first: an OOM kill that stopped the container is still reported.
        let stopped = dir.status(&rec) == Status::Stopped;
        let now_ooms = stats::oom_kills(&rec.cgroup);
        if now_ooms > ooms {
            ooms = now_ooms;
            emit(&serde_json::json!({"type": "oom", "id": rec.id, "data": {}}))?;
        }
        if stopped {
            return Ok(0);
        }
        if Instant::now() >= next {
            emit(&stats::collect(&rec.cgroup, &rec.id))?;
            next = Instant::now() + interval;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
