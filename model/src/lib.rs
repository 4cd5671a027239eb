//! The event model shared by the PostgreSQL source (`connector-pg`) and the converters.
//!
//! What it does: names the things that flow between the source and the envelope encoders —
//! [`Lsn`], [`TableSchema`], typed [`Value`]s, and the [`ChangeEvent`] with its Debezium-style
//! [`SourceInfo`] and its [`Position`] in the stream.
//!
//! What it does not do: any I/O, any decoding from PostgreSQL's wire formats (that is
//! `connector-pg`), or any encoding to Debezium's envelope (that is `converters`). It depends on
//! nothing, so both sides can use it without depending on each other.
//!
//! # Values
//!
//! A [`Value`] is a typed, decoded column value. The snapshot and the stream must produce the same
//! `Value` for the same stored datum, whatever the wire format they read it from; the converters
//! then decide how Debezium renders it (for example a `Numeric` as `Decimal` bytes or as a string,
//! depending on `decimal.handling.mode`). Values that have no typed variant yet are carried as
//! [`Value::Text`] in PostgreSQL's text output form.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A PostgreSQL write-ahead log position.
///
/// Displayed as PostgreSQL does (`16/B374D848`: high and low 32 bits in upper-case hex).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The invalid LSN `0/0`.
    pub const ZERO: Lsn = Lsn(0);
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The text did not have PostgreSQL's `X/Y` LSN form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLsnError(pub String);

impl fmt::Display for ParseLsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an LSN (expected X/Y in hex): {:?}", self.0)
    }
}

impl std::error::Error for ParseLsnError {}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(s.to_owned());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// A column of a captured table, as the catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Column name (`pg_attribute.attname`).
    pub name: String,
    /// Type OID of the column (for a domain, the domain's own OID).
    pub type_oid: u32,
    /// Type name after resolving domains to their base type (`pg_type.typname`, e.g. `int4`,
    /// `numeric`, `varchar`, `_int4` for arrays, the enum's name for enums).
    pub type_name: String,
    /// OID of the type after resolving domains.
    pub base_type_oid: u32,
    /// `atttypmod`: `-1` when absent; for `numeric(p,s)` it is `((p << 16) | s) + 4`.
    pub type_modifier: i32,
    /// `false` when the column is `NOT NULL`.
    pub nullable: bool,
    /// The column's default expression as `pg_get_expr` prints it, if any.
    pub default_expr: Option<String>,
    /// For enum columns (and arrays of an enum), the labels in sort order.
    pub enum_values: Option<Vec<String>>,
    /// The declared number of array dimensions (`pg_attribute.attndims`, for a domain column
    /// the domain's `pg_type.typndims`): `int[]` is 1, `int[][]` 2, 0 for a non-array column
    /// and where PostgreSQL recorded none (`CREATE TABLE AS`). PostgreSQL does not enforce
    /// it: an `int[]` column may hold a two-dimensional value.
    pub dimensions: u32,
}

impl ColumnSchema {
    /// Precision and scale of a `numeric(p,s)` column, from its type modifier.
    pub fn numeric_precision_scale(&self) -> Option<(u32, u32)> {
        if self.type_modifier < 4 {
            return None;
        }
        let m = (self.type_modifier - 4) as u32;
        Some(((m >> 16) & 0xFFFF, m & 0xFFFF))
    }

    /// Length of a `varchar(n)` / `char(n)` column, or fractional-second precision of a
    /// time/timestamp column, from its type modifier.
    pub fn length_or_precision(&self) -> Option<u32> {
        length_or_precision(&self.type_name, self.type_modifier)
    }
}

/// Length (`varchar(n)` / `char(n)`) or fractional-second precision (time and timestamp
/// types, `interval`) that type modifier `typmod` gives type `type_name`. An array column's
/// modifier is its element type's: pass the element's name.
pub fn length_or_precision(type_name: &str, typmod: i32) -> Option<u32> {
    match type_name {
        "varchar" | "bpchar" if typmod >= 4 => Some((typmod - 4) as u32),
        "time" | "timetz" | "timestamp" | "timestamptz" | "interval" if typmod >= 0 => {
            Some((typmod & 0xFFFF) as u32)
        }
        _ => None,
    }
}

/// A captured table: its identity, columns and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// The relation OID (pgoutput's relation id).
    pub relation_id: u32,
    /// Schema (namespace) name (shared: every event's source block names it).
    pub schema: Arc<str>,
    /// Table name (shared, as `schema`).
    pub table: Arc<str>,
    /// Columns in attribute order (dropped columns excluded).
    pub columns: Vec<ColumnSchema>,
    /// Indices into `columns` of the primary key, in key order. Empty when the table has no
    /// primary key: its events then have no Kafka key.
    pub key_columns: Vec<usize>,
}

impl TableSchema {
    /// `schema.table`, the data collection name Debezium uses in include lists and markers.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// A numeric value, which may be one of PostgreSQL's special values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Numeric {
    /// A finite value in PostgreSQL's text form: optional `-`, digits, optional `.` and digits
    /// (PostgreSQL never prints an exponent for `numeric`).
    Finite(String),
    NaN,
    PositiveInfinity,
    NegativeInfinity,
}

/// A decoded column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Numeric(Numeric),
    /// `money`, as a number of cents.
    Money(i64),
    /// Text-like values: text, varchar, bpchar (blank-padded), name, enum labels, and any type
    /// that has no typed variant yet, in PostgreSQL's text output form.
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// `timetz`: microseconds since midnight and the UTC offset in seconds east of Greenwich.
    TimeTz {
        micros: i64,
        offset_seconds: i32,
    },
    /// `timestamp` (without time zone): microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// `timestamptz`: microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// `infinity` / `-infinity` for date/timestamp types.
    Infinity {
        negative: bool,
    },
    /// `interval`: months, days and microseconds, as PostgreSQL stores it.
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    /// Canonical lower-case hyphenated form.
    Uuid(String),
    /// `json` / `jsonb` text (jsonb in PostgreSQL's canonical output form).
    Json(String),
    /// An array. A multi-dimensional array nests: `{{1,2},{3,4}}` is an `Array` of two
    /// `Array`s (PostgreSQL's arrays are rectangular, so every item of one level has the same
    /// depth). The converters decide how a nested value is rendered (Debezium writes one
    /// null per outer element).
    Array(Vec<Value>),
    /// A TOASTed value the WAL did not carry because the UPDATE left it unchanged.
    UnchangedToast,
}

impl Value {
    /// Roughly the memory the value takes: its inline size and its text or bytes (the
    /// queue-size metrics count events with it).
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Value>()
            + match self {
                Value::Text(s) | Value::Uuid(s) | Value::Json(s) => s.len(),
                Value::Bytes(b) => b.len(),
                Value::Array(items) => items.iter().map(Value::footprint).sum(),
                _ => 0,
            }
    }
}

/// The columns of one row, in the order of [`TableSchema::columns`].
pub type Row = Vec<Value>;

/// The Debezium operation of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `r`: a row read by the snapshot.
    Read,
    /// `c`: INSERT.
    Create,
    /// `u`: UPDATE.
    Update,
    /// `d`: DELETE.
    Delete,
    /// `t`: TRUNCATE.
    Truncate,
}

impl Operation {
    /// Debezium's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Operation::Read => "r",
            Operation::Create => "c",
            Operation::Update => "u",
            Operation::Delete => "d",
            Operation::Truncate => "t",
        }
    }
}

/// Debezium's `source.snapshot` marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMarker {
    /// `"false"`: a streamed change.
    False,
    /// `"true"`: a snapshot row that is neither first nor last of anything.
    True,
    First,
    FirstInDataCollection,
    LastInDataCollection,
    Last,
    Incremental,
}

impl SnapshotMarker {
    /// The string Debezium writes.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::False => "false",
            SnapshotMarker::True => "true",
            SnapshotMarker::First => "first",
            SnapshotMarker::FirstInDataCollection => "first_in_data_collection",
            SnapshotMarker::LastInDataCollection => "last_in_data_collection",
            SnapshotMarker::Last => "last",
            SnapshotMarker::Incremental => "incremental",
        }
    }
}

/// Debezium's `source` block, minus the constant fields the converter fills in
/// (`version`, `connector`, `name`).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    /// Commit time of the transaction (streaming) or the snapshot's start (snapshot), in
    /// microseconds since the epoch. `ts_ms`, `ts_us` and `ts_ns` are derived from it.
    pub ts_us: i64,
    pub snapshot: SnapshotMarker,
    /// Database name. The names are shared (`Arc`): every event carries them, and cloning a
    /// `String` per event was an allocation, a copy and a free per row.
    pub db: Arc<str>,
    pub schema: Arc<str>,
    pub table: Arc<str>,
    /// Transaction id (`txId`); `None` for snapshot rows.
    pub tx_id: Option<i64>,
    /// LSN of the change (`lsn`). For snapshot rows, the slot's consistent point.
    pub lsn: Option<Lsn>,
    /// LSN of the last commit before this change (`sequence`'s first element); `None` in the
    /// snapshot.
    pub last_commit_lsn: Option<Lsn>,
}

impl SourceInfo {
    /// The `txId` written in the record's `source` block. Debezium's PostgreSQL source struct
    /// (`PostgresSourceInfoStructMaker.struct`, 3.6.3) leaves `txId`, `lsn` and `xmin` out of
    /// incremental-snapshot rows (`snapshot = incremental`); only `sequence` carries the
    /// window's position there.
    pub fn emitted_tx_id(&self) -> Option<i64> {
        match self.snapshot {
            SnapshotMarker::Incremental => None,
            _ => self.tx_id,
        }
    }

    /// The `lsn` written in the record's `source` block: `None` for incremental-snapshot rows
    /// (see [`SourceInfo::emitted_tx_id`]); `lsn` itself still holds the window's position,
    /// which `sequence` shows.
    pub fn emitted_lsn(&self) -> Option<Lsn> {
        match self.snapshot {
            SnapshotMarker::Incremental => None,
            _ => self.lsn,
        }
    }
}

/// Where an event sits in the stream: what the offset store records once it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// A snapshot row. `last` is set on the very last row of the whole snapshot.
    Snapshot { consistent_point: Lsn, last: bool },
    /// A streamed change of transaction `tx_id`, at `lsn`, whose commit is at `commit_lsn`.
    Stream {
        lsn: Lsn,
        commit_lsn: Lsn,
        tx_id: i64,
        commit_ts_us: i64,
    },
}

/// For the two events a primary-key change becomes (a delete of the old key, a create of the
/// new one): the row on the other side of the change, from which Debezium's
/// `__debezium.newkey` / `__debezium.oldkey` headers are made.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyChangeRow {
    /// On the delete of the old key: the UPDATE's new row.
    NewKey(Row),
    /// On the create of the new key: the UPDATE's old row (key columns set).
    OldKey(Row),
}

/// One change to one row (or a truncate of one table).
#[derive(Clone, Debug)]
pub struct ChangeEvent {
    pub table: Arc<TableSchema>,
    pub op: Operation,
    /// The old row (UPDATE/DELETE; complete only under REPLICA IDENTITY FULL, key columns
    /// only otherwise). `None` for inserts and snapshot rows.
    pub before: Option<Row>,
    /// The new row. `None` for deletes and truncates.
    pub after: Option<Row>,
    pub source: SourceInfo,
    pub position: Position,
    /// Set on the two events of a primary-key change.
    pub key_change: Option<KeyChangeRow>,
}

/// A logical decoding message (`pg_logical_emit_message`), which Debezium writes to
/// `<topic.prefix>.message`.
///
/// `source` follows Debezium: `schema` and `table` are empty; a transactional message has the
/// transaction's id and commit time; a non-transactional one (delivered at once, outside any
/// transaction) has `tx_id = None` and the time of the last commit seen before it (Debezium's
/// stale `ts_ms`), and `last_commit_lsn` equal to its own LSN.
#[derive(Clone, Debug, PartialEq)]
pub struct LogicalMessage {
    /// Emitted with `transactional = true`: delivered at its transaction's commit.
    pub transactional: bool,
    /// The emitter's prefix (the record key).
    pub prefix: String,
    /// The content, arbitrary bytes.
    pub content: Vec<u8>,
    pub source: SourceInfo,
    /// For a non-transactional message, `commit_lsn` is the message's own LSN and `tx_id` 0.
    pub position: Position,
}

/// Debezium's `transaction` block of an event when `provide.transaction.metadata` is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionBlock {
    /// `"<txId>:<LSN>"`, the LSN (decimal) being the event's own.
    pub id: String,
    /// 1-based position of the event in its transaction.
    pub total_order: u64,
    /// 1-based position of the event among its transaction's events of the same data
    /// collection.
    pub data_collection_order: u64,
}

/// Debezium's `aggregate_type` of incremental-snapshot notifications.
pub const INCREMENTAL_SNAPSHOT: &str = "Incremental Snapshot";
/// Debezium's `aggregate_type` of initial-snapshot notifications.
pub const INITIAL_SNAPSHOT: &str = "Initial Snapshot";

/// A notification about a snapshot, as Debezium's `io.debezium.pipeline.notification.Notification`
/// (`notification.enabled.channels`). The source makes them; the worker adds
/// `connector_name` (Debezium's logical name, `topic.prefix`) to `additional_data` and sends
/// them to the enabled channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The signal's id for an incremental snapshot (Debezium's correlation id), else a random
    /// UUID.
    pub id: String,
    /// [`INCREMENTAL_SNAPSHOT`] or [`INITIAL_SNAPSHOT`].
    pub aggregate_type: &'static str,
    /// `STARTED`, `IN_PROGRESS`, `TABLE_SCAN_COMPLETED`, `COMPLETED`, `ABORTED`, `PAUSED`,
    /// `RESUMED`.
    pub kind: &'static str,
    /// In the order Debezium's `Map.of(..)` lists them (the worker reorders them as Java's
    /// `HashMap` iterates), without `connector_name`.
    pub additional_data: Vec<(String, String)>,
    /// Milliseconds since the epoch, when it was made.
    pub timestamp_ms: i64,
}

impl Notification {
    /// A notification made now; `id: None` gets a random UUID.
    pub fn now(
        id: Option<&str>,
        aggregate_type: &'static str,
        kind: &'static str,
        additional_data: Vec<(&str, String)>,
    ) -> Notification {
        Notification {
            id: id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
            aggregate_type,
            kind,
            additional_data: additional_data
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            timestamp_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }
}

/// One record for the producer, as a converter writes it. `key: None` = no key (table without
/// primary key); `value: None` = tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRecord {
    /// Shared by every record of a table (built once per table).
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Shared by the records of a converter (Debezium's context headers, built once), so
    /// producing a record allocates only its key and value.
    pub headers: Arc<[(String, Vec<u8>)]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_rows_write_no_tx_id_or_lsn_other_rows_do() {
        let mut src = SourceInfo {
            ts_us: 1,
            snapshot: SnapshotMarker::False,
            db: "db".into(),
            schema: "public".into(),
            table: "t".into(),
            tx_id: Some(7),
            lsn: Some(Lsn(42)),
            last_commit_lsn: Some(Lsn(42)),
        };
        assert_eq!(
            (src.emitted_tx_id(), src.emitted_lsn()),
            (Some(7), Some(Lsn(42)))
        );
        src.snapshot = SnapshotMarker::Incremental;
        assert_eq!((src.emitted_tx_id(), src.emitted_lsn()), (None, None));
        // the position itself is kept (sequence, offsets)
        assert_eq!(src.lsn, Some(Lsn(42)));
        src.snapshot = SnapshotMarker::Last;
        assert_eq!(src.emitted_lsn(), Some(Lsn(42)));
    }

    #[test]
    fn lsn_round_trips_through_postgres_text_form() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
    }

    #[test]
    fn numeric_typmod_gives_precision_and_scale() {
        let col = ColumnSchema {
            name: "c".into(),
            type_oid: 1700,
            type_name: "numeric".into(),
            base_type_oid: 1700,
            type_modifier: ((10 << 16) | 2) + 4,
            nullable: true,
            default_expr: None,
            enum_values: None,
            dimensions: 0,
        };
        assert_eq!(col.numeric_precision_scale(), Some((10, 2)));
        let unconstrained = ColumnSchema {
            type_modifier: -1,
            ..col
        };
        assert_eq!(unconstrained.numeric_precision_scale(), None);
    }
}
