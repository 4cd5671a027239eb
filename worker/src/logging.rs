//! The process's log: `tracing` events to stderr, human-readable or JSON.
//!
//! The format comes from `--log-format` on the command line, else the worker file's
//! `log.format` (a pgseam extension, read before the file is validated: see
//! [`crate::config::peek_log_format`]), else `human`. `RUST_LOG` sets the filter (default
//! `info`) in both formats.
//!
//! What is never logged: row values (the pipeline logs tables, LSNs and counts), and secrets.
//! Passwords and other secret settings are typed [`crate::config::Secret`] or kept in
//! [`crate::config::Properties`], whose `Debug` prints `****`; configuration errors show
//! secret values as `****`; connection parameters' `Debug` masks the password. The end-to-end
//! test `worker/tests/it/logging.rs` checks a run at `trace` level in both formats for the
//! password, a SASL JAAS password and a provider-resolved secret.

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Plain stderr, except that snapshot progress bars (drawn when stderr is a terminal)
        // are hidden while a line is written.
        .with_writer(pgseam_connector_pg::snapshot::progress::stderr_writer);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
