//! Sans-IO codec for PostgreSQL's streaming replication frames and the pgoutput logical
//! decoding protocol.
//!
//! # Where these bytes come from
//!
//! A logical replication client opens a connection with `replication=database`, creates or
//! reuses a slot with the `pgoutput` plugin, and sends
//! `START_REPLICATION SLOT s LOGICAL <lsn> (proto_version 'N', publication_names '…', …)`.
//! The server answers CopyBothResponse and from then on both sides exchange CopyData messages:
//!
//! ```text
//!  PostgreSQL                                                   client
//!     │  CopyData 'w' XLogData { wal_start, wal_end, time, data } ──►  frame::ReplicationFrame
//!     │                                   └─ data = one pgoutput message ──► message::LogicalReplicationMessage
//!     │  CopyData 'k' Keepalive { wal_end, time, reply_requested } ──►  frame::ReplicationFrame
//!     │  ◄── CopyData 'r' Standby status update { write, flush, apply, time, reply }
//!     │                                   frame::encode_standby_status_update
//! ```
//!
//! [`frame`] decodes the server's CopyData payloads and encodes the client's status update;
//! [`message`] decodes the pgoutput messages (protocol versions 1 to 4: PostgreSQL 10 to 16+)
//! carried in XLogData.
//!
//! # What this crate does not do
//!
//! * No I/O, no async runtime: callers hand in one complete CopyData payload or one complete
//!   pgoutput message as [`bytes::Bytes`]; the CopyData framing itself (the `d` tag and Int32
//!   length of the frontend/backend protocol) belongs to the connection layer.
//! * No value parsing: column values stay text- or binary-format bytes; turning them into typed
//!   values needs the Relation's type OIDs and lives elsewhere.
//! * No relation cache and no transaction assembly: the caller keeps Relation messages by OID and
//!   tracks Begin/Commit. The one piece of state the wire format itself needs (protocol version,
//!   inside a streamed segment or not) is [`message::DecodeContext`].
//!
//! # Guarantees
//!
//! Decoding never panics and never allocates from a count read off the wire before the bytes for
//! it are known to be present. Short input, unknown tags, trailing bytes and invalid UTF-8 are
//! [`DecodeError`]s. Byte bodies are zero-copy slices ([`bytes::Bytes::slice`]) of the input.

pub mod frame;
pub mod message;

mod error;
mod wire;

pub use error::DecodeError;

/// A WAL position (log sequence number) as PostgreSQL sends it: a raw 64-bit byte offset.
pub type Lsn = u64;
