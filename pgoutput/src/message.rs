//! pgoutput logical decoding messages: the `data` of each XLogData on a logical slot.
//!
//! Each message is one tag byte followed by fixed-layout fields (big-endian integers,
//! NUL-terminated strings, Int32-length-prefixed byte runs). The layouts follow PostgreSQL's
//! `src/backend/replication/logical/proto.c` and the "Logical Replication Message Formats"
//! chapter of its documentation.
//!
//! # A transaction on the wire
//!
//! ```text
//! protocol 1 (and any transaction that is not streamed):
//!   Begin  [Origin]  { [Type]* Relation }*  { Insert | Update | Delete | Truncate | Message }*  Commit
//!
//! protocol >= 2 with streaming, a large in-progress transaction is sent in segments:
//!   Stream Start(xid, first)  ..changes, each with a leading xid..  Stream Stop
//!   Stream Start(xid, later)  ..                                     Stream Stop
//!   ...
//!   Stream Commit(xid) | Stream Abort(xid, subxid) | Stream Prepare(xid)    <- outside any segment
//!
//! protocol >= 3 with two_phase:
//!   Begin Prepare  ..changes..  Prepare        later:  Commit Prepared | Rollback Prepared
//! ```
//!
//! Relation (and Type) messages describe a table (type) before the first change that needs it and
//! again whenever it changes; the consumer caches them by OID. A relation's namespace is sent as
//! an empty string for `pg_catalog`; this decoder returns `"pg_catalog"` then, as PostgreSQL's own
//! reader does.
//!
//! # What depends on decoder state
//!
//! The format is not self-describing in two places, so [`DecodeContext`] carries the state needed:
//!
//! * Inside a streamed segment (between Stream Start and Stream Stop, protocol >= 2), Relation,
//!   Type, Insert, Update, Delete, Truncate and Message carry the transaction's xid right after
//!   the tag. Outside a segment they do not. [`DecodeContext::observe`] keeps the flag current.
//! * Stream Abort carries the abort LSN and time only when protocol >= 4 *and* the client asked
//!   for `streaming = parallel`. The protocol version is in the context; whether the two fields
//!   are present is then read off the message length (9 bytes without, 25 with).
//!
//! # Versions
//!
//! | version | PostgreSQL | adds |
//! |---|---|---|
//! | 1 | 10 | Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate (11), Message (14, option `messages`) |
//! | 2 | 14 | Stream Start/Stop/Commit/Abort, leading xid inside segments |
//! | 3 | 15 | Begin Prepare, Prepare, Commit Prepared, Rollback Prepared, Stream Prepare |
//! | 4 | 16 | abort LSN and time in Stream Abort (with `streaming = parallel`) |
//!
//! Column values are `'n'` null, `'u'` unchanged TOASTed value (the value is not sent; the
//! consumer must keep the old one), `'t'` text format, or `'b'` binary format (option `binary`).
//! Values are returned as zero-copy slices of the input; interpreting them needs the column's
//! type from the Relation message and is not this crate's job.

use bytes::Bytes;

use crate::wire::WireReader;
use crate::{DecodeError, Lsn};

/// Tag bytes of pgoutput messages (`LogicalRepMsgType` in PostgreSQL's `logicalproto.h`).
pub mod tag {
    /// Begin ('B').
    pub const BEGIN: u8 = b'B';
    /// Commit ('C').
    pub const COMMIT: u8 = b'C';
    /// Origin ('O').
    pub const ORIGIN: u8 = b'O';
    /// Relation ('R').
    pub const RELATION: u8 = b'R';
    /// Type ('Y').
    pub const TYPE: u8 = b'Y';
    /// Insert ('I').
    pub const INSERT: u8 = b'I';
    /// Update ('U').
    pub const UPDATE: u8 = b'U';
    /// Delete ('D').
    pub const DELETE: u8 = b'D';
    /// Truncate ('T').
    pub const TRUNCATE: u8 = b'T';
    /// Logical decoding message ('M').
    pub const MESSAGE: u8 = b'M';
    /// Begin Prepare ('b'), protocol 3.
    pub const BEGIN_PREPARE: u8 = b'b';
    /// Prepare ('P'), protocol 3.
    pub const PREPARE: u8 = b'P';
    /// Commit Prepared ('K'), protocol 3.
    pub const COMMIT_PREPARED: u8 = b'K';
    /// Rollback Prepared ('r'), protocol 3.
    pub const ROLLBACK_PREPARED: u8 = b'r';
    /// Stream Start ('S'), protocol 2.
    pub const STREAM_START: u8 = b'S';
    /// Stream Stop ('E'), protocol 2.
    pub const STREAM_STOP: u8 = b'E';
    /// Stream Commit ('c'), protocol 2.
    pub const STREAM_COMMIT: u8 = b'c';
    /// Stream Abort ('A'), protocol 2.
    pub const STREAM_ABORT: u8 = b'A';
    /// Stream Prepare ('p'), protocol 3.
    pub const STREAM_PREPARE: u8 = b'p';
}

/// Markers inside Insert/Update/Delete saying which tuple follows.
mod tuple_marker {
    pub(super) const NEW: u8 = b'N';
    pub(super) const OLD_KEY: u8 = b'K';
    pub(super) const OLD_FULL: u8 = b'O';
}

/// Kind bytes of one column value in a tuple.
mod column_kind {
    pub(super) const NULL: u8 = b'n';
    pub(super) const UNCHANGED_TOAST: u8 = b'u';
    pub(super) const TEXT: u8 = b't';
    pub(super) const BINARY: u8 = b'b';
}

/// Relation column flag: the column is part of the replica identity (the key).
const COLUMN_FLAG_KEY: u8 = 1;
/// Message flag: the logical decoding message was emitted transactionally.
const MESSAGE_FLAG_TRANSACTIONAL: u8 = 1;
/// Stream Start `first_segment` value for the first segment of a transaction.
const STREAM_START_FIRST_SEGMENT: u8 = 1;

/// Smallest wire size of a relation column: flags, an empty name's NUL, type OID, type modifier.
const MIN_RELATION_COLUMN_LEN: usize = 1 + 1 + 4 + 4;
/// Smallest wire size of one tuple value: the kind byte.
const MIN_TUPLE_VALUE_LEN: usize = 1;
/// Wire size of one relation OID in a Truncate message.
const RELATION_ID_LEN: usize = 4;

/// Truncate option bit: `TRUNCATE … CASCADE`.
pub const TRUNCATE_CASCADE: u8 = 1;
/// Truncate option bit: `TRUNCATE … RESTART IDENTITY`.
pub const TRUNCATE_RESTART_IDENTITY: u8 = 2;

/// Protocol version that introduced streaming of in-progress transactions.
const FIRST_STREAMING_PROTOCOL_VERSION: u32 = 2;
/// Protocol version that may add abort LSN and time to Stream Abort.
const FIRST_ABORT_INFO_PROTOCOL_VERSION: u32 = 4;

/// One pgoutput message. Times are µs since 2000-01-01 (see
/// [`PG_EPOCH_OFFSET_US`](crate::frame::PG_EPOCH_OFFSET_US)).
///
/// `xid: Option<u32>` is `Some` exactly when the message was sent inside a streamed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicalReplicationMessage {
    /// Start of a (non-streamed) transaction.
    Begin {
        /// LSN of the commit record; the position to resume after once the transaction is done.
        final_lsn: Lsn,
        /// Commit timestamp.
        commit_ts_us: i64,
        /// Transaction id.
        xid: u32,
    },
    /// End of a (non-streamed) transaction.
    Commit {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// End LSN of the transaction.
        end_lsn: Lsn,
        /// Commit timestamp.
        commit_ts_us: i64,
    },
    /// The transaction came from another replication origin.
    Origin {
        /// Commit LSN on the origin server.
        commit_lsn: Lsn,
        /// Origin name.
        name: String,
    },
    /// Describes a table; sent before its first change and after every schema change.
    Relation {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Table OID.
        relation_id: u32,
        /// Schema name (`"pg_catalog"` when sent as the empty string).
        namespace: String,
        /// Table name.
        name: String,
        /// What old-row data Update and Delete carry.
        replica_identity: ReplicaIdentity,
        /// Published columns, in order; tuples have one value per column.
        columns: Vec<RelationColumn>,
    },
    /// Describes a non-built-in data type used by a relation's column.
    Type {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Type OID.
        type_id: u32,
        /// Schema name (`"pg_catalog"` when sent as the empty string).
        namespace: String,
        /// Type name.
        name: String,
    },
    /// A row was inserted.
    Insert {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Table OID.
        relation_id: u32,
        /// The new row.
        new: TupleData,
    },
    /// A row was updated.
    Update {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Table OID.
        relation_id: u32,
        /// The old key (if the key changed) or old row (replica identity full); `None` otherwise.
        old: Option<OldTuple>,
        /// The new row; TOASTed values that did not change are [`TupleValue::UnchangedToast`].
        new: TupleData,
    },
    /// A row was deleted.
    Delete {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Table OID.
        relation_id: u32,
        /// The old key or, with replica identity full, the old row.
        old: OldTuple,
    },
    /// Tables were truncated.
    Truncate {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Bits [`TRUNCATE_CASCADE`] and [`TRUNCATE_RESTART_IDENTITY`].
        options: u8,
        /// OIDs of the truncated tables.
        relation_ids: Vec<u32>,
    },
    /// A message from `pg_logical_emit_message` (needs the `messages` option).
    Message {
        /// Streamed transaction id, inside a streamed segment only.
        xid: Option<u32>,
        /// Emitted transactionally (delivered with its transaction) or not (delivered at once).
        transactional: bool,
        /// LSN of the message.
        lsn: Lsn,
        /// The prefix given by the emitter.
        prefix: String,
        /// The content, a zero-copy slice of the input.
        content: Bytes,
    },
    /// Start of one segment of a streamed in-progress transaction (protocol >= 2).
    StreamStart {
        /// Transaction id.
        xid: u32,
        /// This is the transaction's first segment.
        first_segment: bool,
    },
    /// End of a streamed segment (protocol >= 2).
    StreamStop,
    /// A streamed transaction committed (protocol >= 2).
    StreamCommit {
        /// Transaction id.
        xid: u32,
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// End LSN of the transaction.
        end_lsn: Lsn,
        /// Commit timestamp.
        commit_ts_us: i64,
    },
    /// A streamed transaction, or one of its subtransactions, aborted (protocol >= 2).
    StreamAbort {
        /// Top-level transaction id.
        xid: u32,
        /// The aborted (sub)transaction; equal to `xid` when the whole transaction aborted.
        subxid: u32,
        /// Abort LSN; protocol >= 4 with `streaming = parallel` only.
        abort_lsn: Option<Lsn>,
        /// Abort timestamp; protocol >= 4 with `streaming = parallel` only.
        abort_ts_us: Option<i64>,
    },
    /// Start of a prepared transaction (protocol >= 3, `two_phase`).
    BeginPrepare {
        /// LSN of the prepare record.
        prepare_lsn: Lsn,
        /// End LSN of the prepared transaction.
        end_lsn: Lsn,
        /// Prepare timestamp.
        prepare_ts_us: i64,
        /// Transaction id.
        xid: u32,
        /// Global transaction identifier given to `PREPARE TRANSACTION`.
        gid: String,
    },
    /// End of a prepared transaction's changes (protocol >= 3).
    Prepare {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// LSN of the prepare record.
        prepare_lsn: Lsn,
        /// End LSN of the prepared transaction.
        end_lsn: Lsn,
        /// Prepare timestamp.
        prepare_ts_us: i64,
        /// Transaction id.
        xid: u32,
        /// Global transaction identifier.
        gid: String,
    },
    /// `COMMIT PREPARED` (protocol >= 3).
    CommitPrepared {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// LSN of the commit prepared record.
        commit_lsn: Lsn,
        /// End LSN of the commit prepared transaction.
        end_lsn: Lsn,
        /// Commit timestamp.
        commit_ts_us: i64,
        /// Transaction id.
        xid: u32,
        /// Global transaction identifier.
        gid: String,
    },
    /// `ROLLBACK PREPARED` (protocol >= 3).
    RollbackPrepared {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// End LSN of the prepared transaction.
        prepare_end_lsn: Lsn,
        /// End LSN of the rollback prepared transaction.
        rollback_end_lsn: Lsn,
        /// Prepare timestamp.
        prepare_ts_us: i64,
        /// Rollback timestamp.
        rollback_ts_us: i64,
        /// Transaction id.
        xid: u32,
        /// Global transaction identifier.
        gid: String,
    },
    /// A streamed transaction was prepared (protocol >= 3, streaming and `two_phase`).
    StreamPrepare {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        /// LSN of the prepare record.
        prepare_lsn: Lsn,
        /// End LSN of the prepared transaction.
        end_lsn: Lsn,
        /// Prepare timestamp.
        prepare_ts_us: i64,
        /// Transaction id.
        xid: u32,
        /// Global transaction identifier.
        gid: String,
    },
}

/// A table's `REPLICA IDENTITY`: which old-row columns Update and Delete carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// `'d'`: the primary key.
    Default,
    /// `'n'`: nothing.
    Nothing,
    /// `'f'`: all columns.
    Full,
    /// `'i'`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    fn from_wire(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            b'd' => Ok(Self::Default),
            b'n' => Ok(Self::Nothing),
            b'f' => Ok(Self::Full),
            b'i' => Ok(Self::Index),
            byte => Err(DecodeError::UnexpectedByte {
                field: "relation replica identity",
                byte,
            }),
        }
    }
}

/// One column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (flags bit 1); every column with replica identity full.
    pub is_key: bool,
    /// Column name.
    pub name: String,
    /// Data type OID.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

/// Old-row data of an Update or Delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// `'K'`: the replica-identity key columns; other columns are null.
    Key(TupleData),
    /// `'O'`: the whole old row (replica identity full).
    Full(TupleData),
}

/// The values of one row, one per column of the Relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleData(pub Vec<TupleValue>);

/// One column value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// `'n'`: SQL NULL.
    Null,
    /// `'u'`: an unchanged TOASTed value that was not sent.
    UnchangedToast,
    /// `'t'`: the value in text format.
    Text(Bytes),
    /// `'b'`: the value in binary (send/recv) format.
    Binary(Bytes),
}

/// Decoder state the wire format needs: the protocol version, and whether we are inside a
/// streamed transaction (between Stream Start and Stream Stop), in which case
/// Relation/Type/Insert/Update/Delete/Truncate/Message carry a leading xid (protocol >= 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// The `proto_version` given to `START_REPLICATION`.
    pub protocol_version: u32,
    /// Between a Stream Start and its Stream Stop.
    pub in_streamed_transaction: bool,
}

impl DecodeContext {
    /// A context for a fresh replication stream, outside any streamed segment.
    pub fn new(protocol_version: u32) -> Self {
        Self {
            protocol_version,
            in_streamed_transaction: false,
        }
    }

    /// Updates the state after `message` was decoded: Stream Start enters a streamed segment,
    /// Stream Stop leaves it. Call this after every decoded message to keep the context right.
    pub fn observe(&mut self, message: &LogicalReplicationMessage) {
        match message {
            LogicalReplicationMessage::StreamStart { .. } => self.in_streamed_transaction = true,
            LogicalReplicationMessage::StreamStop => self.in_streamed_transaction = false,
            _ => {}
        }
    }

    fn messages_carry_xid(&self) -> bool {
        self.in_streamed_transaction && self.protocol_version >= FIRST_STREAMING_PROTOCOL_VERSION
    }
}

impl LogicalReplicationMessage {
    /// Decodes one complete pgoutput message (the `data` of one XLogData).
    ///
    /// Bodies (tuple values, message content) are zero-copy slices of `data`. Input that ends
    /// early, unknown tags or markers, invalid UTF-8 and trailing bytes are errors; nothing panics.
    pub fn decode(data: Bytes, ctx: &DecodeContext) -> Result<Self, DecodeError> {
        let mut reader = WireReader::new(data);
        let message = match reader.u8("message tag")? {
            tag::BEGIN => Self::Begin {
                final_lsn: reader.u64("Begin final_lsn")?,
                commit_ts_us: reader.i64("Begin commit timestamp")?,
                xid: reader.u32("Begin xid")?,
            },
            tag::COMMIT => Self::Commit {
                flags: reader.u8("Commit flags")?,
                commit_lsn: reader.u64("Commit commit_lsn")?,
                end_lsn: reader.u64("Commit end_lsn")?,
                commit_ts_us: reader.i64("Commit timestamp")?,
            },
            tag::ORIGIN => Self::Origin {
                commit_lsn: reader.u64("Origin commit_lsn")?,
                name: reader.cstr("Origin name")?,
            },
            tag::RELATION => decode_relation(&mut reader, ctx)?,
            tag::TYPE => Self::Type {
                xid: read_streamed_xid(&mut reader, ctx)?,
                type_id: reader.u32("Type OID")?,
                namespace: read_namespace(&mut reader, "Type namespace")?,
                name: reader.cstr("Type name")?,
            },
            tag::INSERT => {
                let xid = read_streamed_xid(&mut reader, ctx)?;
                let relation_id = reader.u32("Insert relation OID")?;
                expect_marker(&mut reader, tuple_marker::NEW, "Insert new-tuple marker")?;
                Self::Insert {
                    xid,
                    relation_id,
                    new: read_tuple(&mut reader)?,
                }
            }
            tag::UPDATE => decode_update(&mut reader, ctx)?,
            tag::DELETE => {
                let xid = read_streamed_xid(&mut reader, ctx)?;
                let relation_id = reader.u32("Delete relation OID")?;
                let old = match reader.u8("Delete old-tuple marker")? {
                    tuple_marker::OLD_KEY => OldTuple::Key(read_tuple(&mut reader)?),
                    tuple_marker::OLD_FULL => OldTuple::Full(read_tuple(&mut reader)?),
                    byte => {
                        return Err(DecodeError::UnexpectedByte {
                            field: "Delete old-tuple marker",
                            byte,
                        })
                    }
                };
                Self::Delete {
                    xid,
                    relation_id,
                    old,
                }
            }
            tag::TRUNCATE => decode_truncate(&mut reader, ctx)?,
            tag::MESSAGE => Self::Message {
                xid: read_streamed_xid(&mut reader, ctx)?,
                transactional: reader.u8("Message flags")? & MESSAGE_FLAG_TRANSACTIONAL != 0,
                lsn: reader.u64("Message lsn")?,
                prefix: reader.cstr("Message prefix")?,
                content: reader.counted_bytes("Message content")?,
            },
            tag::STREAM_START => Self::StreamStart {
                xid: reader.u32("Stream Start xid")?,
                first_segment: reader.u8("Stream Start first_segment")?
                    == STREAM_START_FIRST_SEGMENT,
            },
            tag::STREAM_STOP => Self::StreamStop,
            tag::STREAM_COMMIT => Self::StreamCommit {
                xid: reader.u32("Stream Commit xid")?,
                flags: reader.u8("Stream Commit flags")?,
                commit_lsn: reader.u64("Stream Commit commit_lsn")?,
                end_lsn: reader.u64("Stream Commit end_lsn")?,
                commit_ts_us: reader.i64("Stream Commit timestamp")?,
            },
            tag::STREAM_ABORT => decode_stream_abort(&mut reader, ctx)?,
            tag::BEGIN_PREPARE => Self::BeginPrepare {
                prepare_lsn: reader.u64("Begin Prepare prepare_lsn")?,
                end_lsn: reader.u64("Begin Prepare end_lsn")?,
                prepare_ts_us: reader.i64("Begin Prepare timestamp")?,
                xid: reader.u32("Begin Prepare xid")?,
                gid: reader.cstr("Begin Prepare gid")?,
            },
            tag::PREPARE => Self::Prepare {
                flags: reader.u8("Prepare flags")?,
                prepare_lsn: reader.u64("Prepare prepare_lsn")?,
                end_lsn: reader.u64("Prepare end_lsn")?,
                prepare_ts_us: reader.i64("Prepare timestamp")?,
                xid: reader.u32("Prepare xid")?,
                gid: reader.cstr("Prepare gid")?,
            },
            tag::COMMIT_PREPARED => Self::CommitPrepared {
                flags: reader.u8("Commit Prepared flags")?,
                commit_lsn: reader.u64("Commit Prepared commit_lsn")?,
                end_lsn: reader.u64("Commit Prepared end_lsn")?,
                commit_ts_us: reader.i64("Commit Prepared timestamp")?,
                xid: reader.u32("Commit Prepared xid")?,
                gid: reader.cstr("Commit Prepared gid")?,
            },
            tag::ROLLBACK_PREPARED => Self::RollbackPrepared {
                flags: reader.u8("Rollback Prepared flags")?,
                prepare_end_lsn: reader.u64("Rollback Prepared prepare_end_lsn")?,
                rollback_end_lsn: reader.u64("Rollback Prepared rollback_end_lsn")?,
                prepare_ts_us: reader.i64("Rollback Prepared prepare timestamp")?,
                rollback_ts_us: reader.i64("Rollback Prepared rollback timestamp")?,
                xid: reader.u32("Rollback Prepared xid")?,
                gid: reader.cstr("Rollback Prepared gid")?,
            },
            tag::STREAM_PREPARE => Self::StreamPrepare {
                flags: reader.u8("Stream Prepare flags")?,
                prepare_lsn: reader.u64("Stream Prepare prepare_lsn")?,
                end_lsn: reader.u64("Stream Prepare end_lsn")?,
                prepare_ts_us: reader.i64("Stream Prepare timestamp")?,
                xid: reader.u32("Stream Prepare xid")?,
                gid: reader.cstr("Stream Prepare gid")?,
            },
            unknown => return Err(DecodeError::UnknownTag(unknown)),
        };
        reader.finish(message.name())?;
        Ok(message)
    }

    /// The message kind as PostgreSQL names it, e.g. `"Stream Commit"`; for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Begin { .. } => "Begin",
            Self::Commit { .. } => "Commit",
            Self::Origin { .. } => "Origin",
            Self::Relation { .. } => "Relation",
            Self::Type { .. } => "Type",
            Self::Insert { .. } => "Insert",
            Self::Update { .. } => "Update",
            Self::Delete { .. } => "Delete",
            Self::Truncate { .. } => "Truncate",
            Self::Message { .. } => "Message",
            Self::StreamStart { .. } => "Stream Start",
            Self::StreamStop => "Stream Stop",
            Self::StreamCommit { .. } => "Stream Commit",
            Self::StreamAbort { .. } => "Stream Abort",
            Self::BeginPrepare { .. } => "Begin Prepare",
            Self::Prepare { .. } => "Prepare",
            Self::CommitPrepared { .. } => "Commit Prepared",
            Self::RollbackPrepared { .. } => "Rollback Prepared",
            Self::StreamPrepare { .. } => "Stream Prepare",
        }
    }
}

fn read_streamed_xid(
    reader: &mut WireReader,
    ctx: &DecodeContext,
) -> Result<Option<u32>, DecodeError> {
    if ctx.messages_carry_xid() {
        reader.u32("streamed transaction xid").map(Some)
    } else {
        Ok(None)
    }
}

/// A namespace name; PostgreSQL sends `pg_catalog` as the empty string to save space.
fn read_namespace(reader: &mut WireReader, field: &'static str) -> Result<String, DecodeError> {
    let namespace = reader.cstr(field)?;
    Ok(if namespace.is_empty() {
        String::from("pg_catalog")
    } else {
        namespace
    })
}

fn expect_marker(
    reader: &mut WireReader,
    expected: u8,
    field: &'static str,
) -> Result<(), DecodeError> {
    match reader.u8(field)? {
        byte if byte == expected => Ok(()),
        byte => Err(DecodeError::UnexpectedByte { field, byte }),
    }
}

fn decode_relation(
    reader: &mut WireReader,
    ctx: &DecodeContext,
) -> Result<LogicalReplicationMessage, DecodeError> {
    let xid = read_streamed_xid(reader, ctx)?;
    let relation_id = reader.u32("Relation OID")?;
    let namespace = read_namespace(reader, "Relation namespace")?;
    let name = reader.cstr("Relation name")?;
    let replica_identity = ReplicaIdentity::from_wire(reader.u8("Relation replica identity")?)?;
    let column_count = usize::from(reader.u16("Relation column count")?);
    let mut columns =
        Vec::with_capacity(reader.capacity_for(column_count, MIN_RELATION_COLUMN_LEN));
    for _ in 0..column_count {
        columns.push(RelationColumn {
            is_key: reader.u8("Relation column flags")? & COLUMN_FLAG_KEY != 0,
            name: reader.cstr("Relation column name")?,
            type_oid: reader.u32("Relation column type OID")?,
            type_modifier: reader.i32("Relation column type modifier")?,
        });
    }
    Ok(LogicalReplicationMessage::Relation {
        xid,
        relation_id,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn decode_update(
    reader: &mut WireReader,
    ctx: &DecodeContext,
) -> Result<LogicalReplicationMessage, DecodeError> {
    let xid = read_streamed_xid(reader, ctx)?;
    let relation_id = reader.u32("Update relation OID")?;
    let old = match reader.u8("Update tuple marker")? {
        tuple_marker::NEW => None,
        tuple_marker::OLD_KEY => {
            let old = OldTuple::Key(read_tuple(reader)?);
            expect_marker(reader, tuple_marker::NEW, "Update new-tuple marker")?;
            Some(old)
        }
        tuple_marker::OLD_FULL => {
            let old = OldTuple::Full(read_tuple(reader)?);
            expect_marker(reader, tuple_marker::NEW, "Update new-tuple marker")?;
            Some(old)
        }
        byte => {
            return Err(DecodeError::UnexpectedByte {
                field: "Update tuple marker",
                byte,
            })
        }
    };
    Ok(LogicalReplicationMessage::Update {
        xid,
        relation_id,
        old,
        new: read_tuple(reader)?,
    })
}

fn decode_truncate(
    reader: &mut WireReader,
    ctx: &DecodeContext,
) -> Result<LogicalReplicationMessage, DecodeError> {
    let xid = read_streamed_xid(reader, ctx)?;
    let relation_count = reader.u32("Truncate relation count")?;
    let options = reader.u8("Truncate options")?;
    let relation_count = usize::try_from(relation_count).unwrap_or(usize::MAX);
    let mut relation_ids = Vec::with_capacity(reader.capacity_for(relation_count, RELATION_ID_LEN));
    for _ in 0..relation_count {
        relation_ids.push(reader.u32("Truncate relation OID")?);
    }
    Ok(LogicalReplicationMessage::Truncate {
        xid,
        options,
        relation_ids,
    })
}

fn decode_stream_abort(
    reader: &mut WireReader,
    ctx: &DecodeContext,
) -> Result<LogicalReplicationMessage, DecodeError> {
    let xid = reader.u32("Stream Abort xid")?;
    let subxid = reader.u32("Stream Abort subxid")?;
    // Protocol 4 adds the two fields only with `streaming = parallel`; the length tells.
    let (abort_lsn, abort_ts_us) =
        if ctx.protocol_version >= FIRST_ABORT_INFO_PROTOCOL_VERSION && reader.remaining() > 0 {
            (
                Some(reader.u64("Stream Abort abort_lsn")?),
                Some(reader.i64("Stream Abort timestamp")?),
            )
        } else {
            (None, None)
        };
    Ok(LogicalReplicationMessage::StreamAbort {
        xid,
        subxid,
        abort_lsn,
        abort_ts_us,
    })
}

fn read_tuple(reader: &mut WireReader) -> Result<TupleData, DecodeError> {
    let column_count = usize::from(reader.u16("tuple column count")?);
    let mut values = Vec::with_capacity(reader.capacity_for(column_count, MIN_TUPLE_VALUE_LEN));
    for _ in 0..column_count {
        values.push(match reader.u8("tuple column kind")? {
            column_kind::NULL => TupleValue::Null,
            column_kind::UNCHANGED_TOAST => TupleValue::UnchangedToast,
            column_kind::TEXT => TupleValue::Text(reader.counted_bytes("text column value")?),
            column_kind::BINARY => TupleValue::Binary(reader.counted_bytes("binary column value")?),
            byte => {
                return Err(DecodeError::UnexpectedByte {
                    field: "tuple column kind",
                    byte,
                })
            }
        });
    }
    Ok(TupleData(values))
}

#[cfg(test)]
mod tests {
    //! Unit tests on constructed messages (built here byte by byte from the documented layout,
    //! not captured). The bytes captured from a real PostgreSQL 15 are in `tests/captured.rs`.

    use super::*;

    /// Builds a message the way `proto.c` writes one.
    struct Constructed(Vec<u8>);

    impl Constructed {
        fn tag(tag: u8) -> Self {
            Self(vec![tag])
        }
        fn u8(mut self, value: u8) -> Self {
            self.0.push(value);
            self
        }
        fn u16(mut self, value: u16) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn u32(mut self, value: u32) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn i32(mut self, value: i32) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn u64(mut self, value: u64) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn i64(mut self, value: i64) -> Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn cstr(mut self, value: &str) -> Self {
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(0);
            self
        }
        fn raw(mut self, value: &[u8]) -> Self {
            self.0.extend_from_slice(value);
            self
        }
        fn text(self, value: &str) -> Self {
            let len = i32::try_from(value.len()).expect("small test value");
            self.u8(b't').i32(len).raw(value.as_bytes())
        }
        fn bytes(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    const V1: DecodeContext = DecodeContext {
        protocol_version: 1,
        in_streamed_transaction: false,
    };
    const V2_STREAMING: DecodeContext = DecodeContext {
        protocol_version: 2,
        in_streamed_transaction: true,
    };

    fn decode(message: Constructed, ctx: &DecodeContext) -> LogicalReplicationMessage {
        let bytes = message.bytes();
        let decoded = LogicalReplicationMessage::decode(bytes.clone(), ctx)
            .unwrap_or_else(|err| panic!("decoding {bytes:02x?}: {err}"));
        assert_every_strict_prefix_fails(&bytes, ctx);
        decoded
    }

    fn assert_every_strict_prefix_fails(bytes: &Bytes, ctx: &DecodeContext) {
        for len in 0..bytes.len() {
            assert!(
                LogicalReplicationMessage::decode(bytes.slice(..len), ctx).is_err(),
                "prefix of {len} of {} bytes decoded",
                bytes.len()
            );
        }
    }

    #[test]
    fn begin() {
        let message = Constructed::tag(b'B')
            .u64(0x16B_3748)
            .i64(700_000_000_000)
            .u32(745);
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Begin {
                final_lsn: 0x16B_3748,
                commit_ts_us: 700_000_000_000,
                xid: 745
            }
        );
    }

    #[test]
    fn commit() {
        let message = Constructed::tag(b'C').u8(0).u64(10).u64(20).i64(-1);
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Commit {
                flags: 0,
                commit_lsn: 10,
                end_lsn: 20,
                commit_ts_us: -1
            }
        );
    }

    #[test]
    fn origin() {
        let message = Constructed::tag(b'O').u64(99).cstr("upstream");
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Origin {
                commit_lsn: 99,
                name: "upstream".into()
            }
        );
    }

    fn relation_body(message: Constructed) -> Constructed {
        message
            .u32(16397)
            .cstr("")
            .cstr("accounts")
            .u8(b'i')
            .u16(2)
            .u8(1)
            .cstr("id")
            .u32(23)
            .i32(-1)
            .u8(0)
            .cstr("balance")
            .u32(1700)
            .i32(655_366)
    }

    #[test]
    fn relation_maps_empty_namespace_to_pg_catalog() {
        assert_eq!(
            decode(relation_body(Constructed::tag(b'R')), &V1),
            LogicalReplicationMessage::Relation {
                xid: None,
                relation_id: 16397,
                namespace: "pg_catalog".into(),
                name: "accounts".into(),
                replica_identity: ReplicaIdentity::Index,
                columns: vec![
                    RelationColumn {
                        is_key: true,
                        name: "id".into(),
                        type_oid: 23,
                        type_modifier: -1
                    },
                    RelationColumn {
                        is_key: false,
                        name: "balance".into(),
                        type_oid: 1700,
                        type_modifier: 655_366
                    },
                ],
            }
        );
    }

    #[test]
    fn relation_inside_streamed_segment_carries_xid() {
        let message = relation_body(Constructed::tag(b'R').u32(900));
        assert!(matches!(
            decode(message, &V2_STREAMING),
            LogicalReplicationMessage::Relation {
                xid: Some(900),
                relation_id: 16397,
                ..
            }
        ));
    }

    #[test]
    fn relation_rejects_unknown_replica_identity() {
        let message = Constructed::tag(b'R')
            .u32(1)
            .cstr("s")
            .cstr("t")
            .u8(b'x')
            .u16(0);
        assert_eq!(
            LogicalReplicationMessage::decode(message.bytes(), &V1),
            Err(DecodeError::UnexpectedByte {
                field: "relation replica identity",
                byte: b'x'
            })
        );
    }

    #[test]
    fn relation_with_forged_column_count_is_truncated_not_allocated() {
        let message = Constructed::tag(b'R')
            .u32(1)
            .cstr("s")
            .cstr("t")
            .u8(b'd')
            .u16(u16::MAX);
        assert!(matches!(
            LogicalReplicationMessage::decode(message.bytes(), &V1),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn type_message() {
        let message = Constructed::tag(b'Y')
            .u32(16390)
            .cstr("public")
            .cstr("mood");
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Type {
                xid: None,
                type_id: 16390,
                namespace: "public".into(),
                name: "mood".into()
            }
        );
    }

    #[test]
    fn insert_with_every_value_kind() {
        let message = Constructed::tag(b'I')
            .u32(16397)
            .u8(b'N')
            .u16(4)
            .u8(b'n')
            .u8(b'u')
            .text("42")
            .u8(b'b')
            .i32(4)
            .raw(&[0, 0, 0, 42]);
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Insert {
                xid: None,
                relation_id: 16397,
                new: TupleData(vec![
                    TupleValue::Null,
                    TupleValue::UnchangedToast,
                    TupleValue::Text(Bytes::from_static(b"42")),
                    TupleValue::Binary(Bytes::from_static(&[0, 0, 0, 42])),
                ]),
            }
        );
    }

    #[test]
    fn insert_values_are_slices_of_the_input() {
        let input = Constructed::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .text("zero-copy")
            .bytes();
        let decoded = LogicalReplicationMessage::decode(input.clone(), &V1).expect("valid");
        let LogicalReplicationMessage::Insert { new, .. } = decoded else {
            panic!("expected Insert");
        };
        let [TupleValue::Text(text)] = &new.0[..] else {
            panic!("expected one text value");
        };
        assert_eq!(text.as_ptr(), input[input.len() - 9..].as_ptr());
    }

    #[test]
    fn insert_rejects_wrong_marker_unknown_kind_and_negative_length() {
        let wrong_marker = Constructed::tag(b'I').u32(1).u8(b'K').u16(0);
        assert_eq!(
            LogicalReplicationMessage::decode(wrong_marker.bytes(), &V1),
            Err(DecodeError::UnexpectedByte {
                field: "Insert new-tuple marker",
                byte: b'K'
            })
        );
        let unknown_kind = Constructed::tag(b'I').u32(1).u8(b'N').u16(1).u8(b'z');
        assert_eq!(
            LogicalReplicationMessage::decode(unknown_kind.bytes(), &V1),
            Err(DecodeError::UnexpectedByte {
                field: "tuple column kind",
                byte: b'z'
            })
        );
        let negative = Constructed::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b't')
            .i32(-1);
        assert_eq!(
            LogicalReplicationMessage::decode(negative.bytes(), &V1),
            Err(DecodeError::NegativeLength {
                field: "text column value",
                length: -1
            })
        );
        let forged_length = Constructed::tag(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b't')
            .i32(i32::MAX);
        assert!(matches!(
            LogicalReplicationMessage::decode(forged_length.bytes(), &V1),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn update_without_old_tuple() {
        let message = Constructed::tag(b'U').u32(5).u8(b'N').u16(1).text("a");
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Update {
                xid: None,
                relation_id: 5,
                old: None,
                new: TupleData(vec![TupleValue::Text(Bytes::from_static(b"a"))]),
            }
        );
    }

    #[test]
    fn update_with_old_key_and_with_old_row() {
        for (marker, wrap) in [
            (b'K', OldTuple::Key as fn(TupleData) -> OldTuple),
            (b'O', OldTuple::Full),
        ] {
            let message = Constructed::tag(b'U')
                .u32(5)
                .u8(marker)
                .u16(1)
                .text("old")
                .u8(b'N')
                .u16(1)
                .text("new");
            assert_eq!(
                decode(message, &V1),
                LogicalReplicationMessage::Update {
                    xid: None,
                    relation_id: 5,
                    old: Some(wrap(TupleData(vec![TupleValue::Text(Bytes::from_static(
                        b"old"
                    ))]))),
                    new: TupleData(vec![TupleValue::Text(Bytes::from_static(b"new"))]),
                }
            );
        }
    }

    #[test]
    fn update_requires_new_tuple_after_old() {
        let message = Constructed::tag(b'U')
            .u32(5)
            .u8(b'K')
            .u16(0)
            .u8(b'K')
            .u16(0);
        assert_eq!(
            LogicalReplicationMessage::decode(message.bytes(), &V1),
            Err(DecodeError::UnexpectedByte {
                field: "Update new-tuple marker",
                byte: b'K'
            })
        );
    }

    #[test]
    fn delete_with_old_key_and_with_old_row() {
        let key = Constructed::tag(b'D').u32(5).u8(b'K').u16(1).text("1");
        assert_eq!(
            decode(key, &V1),
            LogicalReplicationMessage::Delete {
                xid: None,
                relation_id: 5,
                old: OldTuple::Key(TupleData(vec![TupleValue::Text(Bytes::from_static(b"1"))])),
            }
        );
        let full = Constructed::tag(b'D').u32(5).u8(b'O').u16(1).u8(b'n');
        assert_eq!(
            decode(full, &V1),
            LogicalReplicationMessage::Delete {
                xid: None,
                relation_id: 5,
                old: OldTuple::Full(TupleData(vec![TupleValue::Null])),
            }
        );
        let new_marker = Constructed::tag(b'D').u32(5).u8(b'N').u16(0);
        assert!(matches!(
            LogicalReplicationMessage::decode(new_marker.bytes(), &V1),
            Err(DecodeError::UnexpectedByte { byte: b'N', .. })
        ));
    }

    #[test]
    fn truncate() {
        let message = Constructed::tag(b'T').u32(2).u8(3).u32(16400).u32(16410);
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Truncate {
                xid: None,
                options: TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY,
                relation_ids: vec![16400, 16410],
            }
        );
    }

    #[test]
    fn truncate_with_forged_count_is_truncated_not_allocated() {
        let message = Constructed::tag(b'T').u32(u32::MAX).u8(0).u32(1);
        assert!(matches!(
            LogicalReplicationMessage::decode(message.bytes(), &V1),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn message_transactional_and_not() {
        let message = Constructed::tag(b'M')
            .u8(1)
            .u64(77)
            .cstr("pfx")
            .i32(3)
            .raw(b"abc");
        assert_eq!(
            decode(message, &V1),
            LogicalReplicationMessage::Message {
                xid: None,
                transactional: true,
                lsn: 77,
                prefix: "pfx".into(),
                content: Bytes::from_static(b"abc"),
            }
        );
        let message = Constructed::tag(b'M').u8(0).u64(78).cstr("pfx").i32(0);
        assert!(matches!(
            decode(message, &V1),
            LogicalReplicationMessage::Message { transactional: false, content, .. } if content.is_empty()
        ));
    }

    #[test]
    fn streamed_changes_carry_xid_only_inside_a_segment_with_protocol_2() {
        let insert = |with_xid: bool| {
            let message = Constructed::tag(b'I');
            let message = if with_xid { message.u32(901) } else { message };
            message.u32(5).u8(b'N').u16(1).u8(b'n')
        };
        assert!(matches!(
            decode(insert(true), &V2_STREAMING),
            LogicalReplicationMessage::Insert {
                xid: Some(901),
                relation_id: 5,
                ..
            }
        ));
        let outside = DecodeContext::new(2);
        assert!(matches!(
            decode(insert(false), &outside),
            LogicalReplicationMessage::Insert {
                xid: None,
                relation_id: 5,
                ..
            }
        ));
        let v1_flag_set = DecodeContext {
            protocol_version: 1,
            in_streamed_transaction: true,
        };
        assert!(matches!(
            decode(insert(false), &v1_flag_set),
            LogicalReplicationMessage::Insert { xid: None, .. }
        ));

        let others = [
            Constructed::tag(b'Y').u32(901).u32(1).cstr("s").cstr("t"),
            Constructed::tag(b'U').u32(901).u32(5).u8(b'N').u16(0),
            Constructed::tag(b'D').u32(901).u32(5).u8(b'K').u16(0),
            Constructed::tag(b'T').u32(901).u32(1).u8(0).u32(5),
            Constructed::tag(b'M')
                .u32(901)
                .u8(1)
                .u64(1)
                .cstr("p")
                .i32(0),
        ];
        for message in others {
            let decoded = decode(message, &V2_STREAMING);
            let xid = match decoded {
                LogicalReplicationMessage::Type { xid, .. }
                | LogicalReplicationMessage::Update { xid, .. }
                | LogicalReplicationMessage::Delete { xid, .. }
                | LogicalReplicationMessage::Truncate { xid, .. }
                | LogicalReplicationMessage::Message { xid, .. } => xid,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(xid, Some(901));
        }
    }

    #[test]
    fn stream_start_stop_and_context_tracking() {
        let mut ctx = DecodeContext::new(2);
        let start = decode(Constructed::tag(b'S').u32(901).u8(1), &ctx);
        assert_eq!(
            start,
            LogicalReplicationMessage::StreamStart {
                xid: 901,
                first_segment: true
            }
        );
        ctx.observe(&start);
        assert!(ctx.in_streamed_transaction);
        let stop = decode(Constructed::tag(b'E'), &ctx);
        assert_eq!(stop, LogicalReplicationMessage::StreamStop);
        ctx.observe(&stop);
        assert!(!ctx.in_streamed_transaction);
        assert!(matches!(
            decode(Constructed::tag(b'S').u32(901).u8(0), &ctx),
            LogicalReplicationMessage::StreamStart {
                first_segment: false,
                ..
            }
        ));
    }

    #[test]
    fn stream_commit() {
        let message = Constructed::tag(b'c')
            .u32(901)
            .u8(0)
            .u64(100)
            .u64(200)
            .i64(300);
        assert_eq!(
            decode(message, &DecodeContext::new(2)),
            LogicalReplicationMessage::StreamCommit {
                xid: 901,
                flags: 0,
                commit_lsn: 100,
                end_lsn: 200,
                commit_ts_us: 300
            }
        );
    }

    #[test]
    fn stream_abort_protocol_2_has_no_abort_info() {
        let message = Constructed::tag(b'A').u32(901).u32(902);
        assert_eq!(
            decode(message, &DecodeContext::new(2)),
            LogicalReplicationMessage::StreamAbort {
                xid: 901,
                subxid: 902,
                abort_lsn: None,
                abort_ts_us: None
            }
        );
        let with_info = Constructed::tag(b'A').u32(901).u32(902).u64(1).i64(2);
        assert_eq!(
            LogicalReplicationMessage::decode(with_info.bytes(), &DecodeContext::new(3)),
            Err(DecodeError::TrailingBytes {
                message: "Stream Abort",
                count: 16
            })
        );
    }

    #[test]
    fn stream_abort_protocol_4_parallel_carries_abort_lsn_and_time() {
        // Constructed: PostgreSQL 16+ with proto_version '4' and streaming 'parallel'.
        let v4 = DecodeContext::new(4);
        let bytes = Constructed::tag(b'A')
            .u32(901)
            .u32(901)
            .u64(0x1A2B)
            .i64(123_456)
            .bytes();
        assert_eq!(
            LogicalReplicationMessage::decode(bytes.clone(), &v4),
            Ok(LogicalReplicationMessage::StreamAbort {
                xid: 901,
                subxid: 901,
                abort_lsn: Some(0x1A2B),
                abort_ts_us: Some(123_456)
            })
        );
        // Every prefix that cuts into the abort info is an error. (A prefix of exactly 9 bytes is
        // the valid protocol-4 form without abort info, sent with `streaming = on`.)
        for len in (0..9).chain(10..bytes.len()) {
            assert!(
                LogicalReplicationMessage::decode(bytes.slice(..len), &v4).is_err(),
                "prefix {len}"
            );
        }
    }

    #[test]
    fn stream_abort_protocol_4_without_parallel_has_no_abort_info() {
        // Constructed: PostgreSQL 16+ with proto_version '4' and streaming 'on'.
        let message = Constructed::tag(b'A').u32(901).u32(903);
        assert_eq!(
            decode(message, &DecodeContext::new(4)),
            LogicalReplicationMessage::StreamAbort {
                xid: 901,
                subxid: 903,
                abort_lsn: None,
                abort_ts_us: None
            }
        );
    }

    #[test]
    fn two_phase_messages() {
        let v3 = DecodeContext::new(3);
        assert_eq!(
            decode(
                Constructed::tag(b'b')
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("gid-1"),
                &v3
            ),
            LogicalReplicationMessage::BeginPrepare {
                prepare_lsn: 1,
                end_lsn: 2,
                prepare_ts_us: 3,
                xid: 4,
                gid: "gid-1".into()
            }
        );
        assert_eq!(
            decode(
                Constructed::tag(b'P')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("gid-1"),
                &v3
            ),
            LogicalReplicationMessage::Prepare {
                flags: 0,
                prepare_lsn: 1,
                end_lsn: 2,
                prepare_ts_us: 3,
                xid: 4,
                gid: "gid-1".into()
            }
        );
        assert_eq!(
            decode(
                Constructed::tag(b'K')
                    .u8(0)
                    .u64(5)
                    .u64(6)
                    .i64(7)
                    .u32(4)
                    .cstr("gid-1"),
                &v3
            ),
            LogicalReplicationMessage::CommitPrepared {
                flags: 0,
                commit_lsn: 5,
                end_lsn: 6,
                commit_ts_us: 7,
                xid: 4,
                gid: "gid-1".into()
            }
        );
        assert_eq!(
            decode(
                Constructed::tag(b'r')
                    .u8(0)
                    .u64(2)
                    .u64(8)
                    .i64(3)
                    .i64(9)
                    .u32(4)
                    .cstr("gid-1"),
                &v3
            ),
            LogicalReplicationMessage::RollbackPrepared {
                flags: 0,
                prepare_end_lsn: 2,
                rollback_end_lsn: 8,
                prepare_ts_us: 3,
                rollback_ts_us: 9,
                xid: 4,
                gid: "gid-1".into()
            }
        );
        assert_eq!(
            decode(
                Constructed::tag(b'p')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("gid-2"),
                &v3
            ),
            LogicalReplicationMessage::StreamPrepare {
                flags: 0,
                prepare_lsn: 1,
                end_lsn: 2,
                prepare_ts_us: 3,
                xid: 4,
                gid: "gid-2".into()
            }
        );
    }

    #[test]
    fn rejects_unknown_tag_trailing_bytes_and_invalid_utf8() {
        assert_eq!(
            LogicalReplicationMessage::decode(Bytes::from_static(b"Z"), &V1),
            Err(DecodeError::UnknownTag(b'Z'))
        );
        assert_eq!(
            LogicalReplicationMessage::decode(Bytes::from_static(b"E\0"), &V1),
            Err(DecodeError::TrailingBytes {
                message: "Stream Stop",
                count: 1
            })
        );
        let invalid = Constructed::tag(b'O').u64(1).raw(&[0xFF, 0xFE, 0]);
        assert_eq!(
            LogicalReplicationMessage::decode(invalid.bytes(), &V1),
            Err(DecodeError::InvalidUtf8 {
                field: "Origin name"
            })
        );
        assert!(matches!(
            LogicalReplicationMessage::decode(Bytes::new(), &V1),
            Err(DecodeError::Truncated {
                field: "message tag",
                ..
            })
        ));
    }
}
