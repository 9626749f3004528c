//! berth's own log: `--log FILE` and `--log-format text|json` as runc takes them.
//! JSON lines carry `level`, `msg` and `time`; engines show the last error line.
//! Errors always reach stderr too, as one line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(file: Option<PathBuf>, format: Format, debug: bool) {
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
}

fn line(format: Format, level: &str, msg: &str) -> String {
    let time = crate::state::now_rfc3339();
    match format {
        Format::Json => serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string(),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}"),
    }
}

fn emit(level: &str, msg: &str, to_stderr: bool) {
    let Some(l) = LOGGER.get() else {
        if to_stderr {
            eprintln!("berth: {msg}");
        }
        return;
    };
    if let Some(path) = &l.file {
        let text = line(l.format, level, msg) + "\n";
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(text.as_bytes());
        }
    }
    if to_stderr {
        if l.file.is_none() && l.format == Format::Json {
            eprintln!("{}", line(Format::Json, level, msg));
        } else {
            eprintln!("berth: {msg}");
        }
    }
}

pub fn error(msg: &str) {
    emit("error", msg, true);
}

pub fn warn(msg: &str) {
    emit("warning", msg, true);
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        emit("debug", msg, false);
    }
}
