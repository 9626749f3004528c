//! `berth kill`: send a signal (name or number, default TERM) to a container.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::cli::KillArgs;
use crate::error::Error;
use crate::lifecycle;
use crate::state::{Status, Store};

/// Parses "KILL", "SIGKILL", "kill" or "9".
pub fn parse_signal(s: &str) -> Result<Signal, Error> {
    let bad = || Error::msg(format!("invalid signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

pub fn run(store: &Store, args: &KillArgs) -> Result<i32, Error> {
    let sig = parse_signal(&args.signal)?;
    let dir = super::open(store, &args.id)?;
    let rec = lifecycle::load(&dir)?;
    if matches!(dir.status(&rec), Status::Stopped) {
        return Err(Error::msg("container not running"));
    }
    if args.all {
        lifecycle::signal_all(&rec, sig)?;
    } else {
        lifecycle::signal(&rec, sig)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
