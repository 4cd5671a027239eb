//! Errors of the PostgreSQL source, classified once.
//!
//! Every failure carries what a user needs to act on it: the server's own message and SQLSTATE,
//! the table or slot concerned. [`SourceError::class`] sorts them into [`ErrorClass`]es; the worker
//! decides what each class means (retry, stop, report a configuration mistake) in one place.

use std::fmt;

/// How the worker should treat an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The network or the server went away; retrying later may succeed.
    Transient,
    /// The configuration or the database setup is wrong; a user must change something.
    Config,
    /// Data or protocol state is inconsistent; continuing could lose data.
    Permanent,
}

/// The fields of a PostgreSQL `ErrorResponse` that matter to users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to PostgreSQL at {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS connection to PostgreSQL at {address} failed: {message}")]
    Tls { address: String, message: String },
    #[error("PostgreSQL rejected the login of user {user:?}: {server}")]
    Authentication {
        user: String,
        server: Box<ServerError>,
    },
    #[error("PostgreSQL asks for a password for user {user:?}, but database.password is not set")]
    PasswordRequired { user: String },
    #[error("PostgreSQL asks for an authentication method pgseam does not support: {method}")]
    UnsupportedAuthentication { method: String },
    #[error("{context}: {server}")]
    Server {
        context: String,
        server: Box<ServerError>,
    },
    /// The server's message is part of the text (tokio-postgres' own `Display` hides it), so
    /// the error is not exposed as a `source` to avoid printing it twice.
    #[error("{context}: {}", describe_pg_error(.error))]
    Query {
        context: String,
        error: tokio_postgres::Error,
    },
    #[error("connection to PostgreSQL lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server ended the replication stream (it is shutting down or restarting)")]
    StreamEnded,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("cannot decode replication message at {lsn}")]
    Decode {
        lsn: pgseam_model::Lsn,
        #[source]
        source: pgoutput::DecodeError,
    },
    #[error("cannot decode column {table}.{column}: {message}")]
    Value {
        table: String,
        column: String,
        message: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error("{message}")]
    SlotInUse {
        slot: String,
        pid: i32,
        message: String,
    },
    #[error(
        "replication slot `{slot}` has lost WAL it still needed (wal_status = lost, usually because of \
         max_slot_wal_keep_size): the changes in that WAL are gone and the slot cannot stream again. \
         Drop it (SELECT pg_drop_replication_slot('{slot}')), delete the connector's stored offset and \
         start over with a new snapshot"
    )]
    SlotLost { slot: String },
    #[error("the event consumer went away")]
    ConsumerGone,
}

/// SQLSTATE classes that mean "the server is gone or busy", worth a retry.
const TRANSIENT_SQLSTATE_PREFIXES: &[&str] = &["08", "53", "57P"];

impl SourceError {
    /// The class that decides the worker's reaction.
    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::Connect { .. } | SourceError::Io(_) | SourceError::StreamEnded => {
                ErrorClass::Transient
            }
            SourceError::Authentication { .. }
            | SourceError::PasswordRequired { .. }
            | SourceError::UnsupportedAuthentication { .. }
            | SourceError::Tls { .. }
            | SourceError::SlotInUse { .. }
            | SourceError::Setup(_) => ErrorClass::Config,
            SourceError::SlotLost { .. } => ErrorClass::Permanent,
            SourceError::Server { server, .. } => {
                if TRANSIENT_SQLSTATE_PREFIXES
                    .iter()
                    .any(|p| server.code.starts_with(p))
                {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Config
                }
            }
            SourceError::Query { error, .. } => match error.code() {
                Some(code)
                    if TRANSIENT_SQLSTATE_PREFIXES
                        .iter()
                        .any(|p| code.code().starts_with(p)) =>
                {
                    ErrorClass::Transient
                }
                Some(_) => ErrorClass::Config,
                None => ErrorClass::Transient,
            },
            SourceError::Protocol(_)
            | SourceError::Decode { .. }
            | SourceError::Value { .. }
            | SourceError::ConsumerGone => ErrorClass::Permanent,
        }
    }
}

impl SourceError {
    /// True if the server refused the login in `pg_hba.conf` (SQLSTATE 28000), which another
    /// TLS choice may pass (`sslmode` `allow` / `prefer`).
    pub(crate) fn is_hba_rejection(&self) -> bool {
        matches!(self, SourceError::Authentication { server, .. } if server.code == "28000")
    }
}

/// Renders a tokio-postgres error with the server's message, which its `Display` hides.
pub(crate) fn describe_pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(detail) = db.detail() {
                s.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                s.push_str(&format!("; hint: {hint}"));
            }
            s
        }
        None => err.to_string(),
    }
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;
