//! The crate's error: every module's own error enum, gathered at the command edge,
//! plus the command-level conditions runc reports with fixed strings.

use crate::cgroups::CgroupError;
use crate::config::ConfigError;
use crate::hooks::nvidia::NvidiaError;
use crate::hooks::HookError;
use crate::init::InitError;
use crate::seccomp::SeccompError;
use crate::state::StateError;
use crate::sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Nvidia(#[from] NvidiaError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    /// A plain message, for the fixed strings engines match on.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    pub fn msg(text: impl Into<String>) -> Error {
        Error::Msg(text.into())
    }
}

/// Adds what was being done to io and nix errors.
pub trait ResultExt<T> {
    fn with(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> ResultExt<T> for std::io::Result<T> {
    fn with(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl<T> ResultExt<T> for nix::Result<T> {
    fn with(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|errno| Error::Sys {
            what: what(),
            errno,
        })
    }
}
