//! The PostgreSQL source of pgseam.
//!
//! What it does: opens a `replication=database` connection itself (TLS per `database.sslmode`,
//! startup, password, md5 and SCRAM-SHA-256 authentication, simple queries, CopyBoth
//! streaming), manages the publication and the logical replication slot (in-use retries,
//! blocked creation, lost WAL, drop on stop), reads the initial snapshot under the slot's
//! exported snapshot, streams pgoutput changes from the slot's consistent point, and turns both
//! into [`pgseam_model::ChangeEvent`]s. It reports the worker's durable LSN back to the slot and
//! emits heartbeats. Reconnecting after a lost connection is the worker's decision (it restarts
//! [`run`] with [`StartPoint::Resume`]); errors say whether that is worth it ([`ErrorClass`]).
//!
//! What it does not do: decide what is durable (the worker's commit coordinator does), encode
//! envelopes (`converters`), or talk to Kafka (`sink-kafka`). Ordinary catalog queries and the
//! snapshot's COPY use tokio-postgres; only the replication connection is hand-written.
//!
//! Not done: streamed (in-progress) transactions — deliberately, pgoutput protocol version 1
//! lets the server spill a large transaction and sends it after its commit (COMPATIBILITY.md,
//! "Large transactions"); schema-change history — see the project's issues.

pub mod catalog;
pub mod connection;
pub mod error;
pub mod publication;
pub mod slot;
pub mod snapshot;
pub mod source;
mod stream;
pub mod tls;

pub use connection::ConnectParams;
pub use error::{ErrorClass, SourceError};
pub use publication::PublicationAutocreate;
pub use snapshot::SnapshotSettings;
pub use source::{
    plan_start, run, Feedback, HeartbeatSettings, OffsetMismatchStrategy, SnapshotMode,
    SourceConfig, SourceMessage, StartPlan, StartPoint, TableFilter,
};
pub use stream::{EventSettings, KeyColumns, MessageFilter, PGSEAM_MESSAGE_PREFIX};
pub use tls::{SslMode, TlsSettings};
