//! `ChangeEvent` → Debezium change-event records, as Kafka Connect's `JsonConverter` writes them.
//!
//! What it does: renders each [`ChangeEvent`](pgseam_model::ChangeEvent) as the Kafka record(s)
//! Debezium 3.6.3's PostgreSQL connector produces under Kafka Connect's JSON converter — topic
//! `<topic.prefix>.<schema>.<table>`, the key struct, the envelope with its `source` block, the
//! delete tombstone and Debezium's extended headers — byte for byte, with and without schemas.
//! Column types map as Debezium's `PostgresValueConverter` does under the configured
//! [`TypeModes`] (`decimal.handling.mode`, `time.precision.mode`, `binary.handling.mode`,
//! `hstore.handling.mode`, `interval.handling.mode`, `money.fraction.digits`,
//! `include.unknown.datatypes`); JsonConverter's `decimal.format` and
//! `replace.null.with.default` are honoured. Column defaults come from the catalog's default
//! expression as Debezium derives them ([`default`]), and
//! `replace.null.with.default` writes them in place of nulls as Kafka ≥ 3.7's JsonConverter
//! does. A null in a NOT NULL column (the before image of a DELETE or key change under the
//! default replica identity) becomes the column's default, else Debezium's per-type fallback.
//! Unchanged TOAST values become Debezium's `__debezium_unavailable_value` placeholder,
//! except in an UPDATE's `after` when the old tuple (REPLICA IDENTITY FULL) carries the value,
//! which Debezium then writes. The [`jackson`] module reproduces Jackson's number and string
//! output.
//!
//! Column shaping ([`columns`]: `column.include.list` / `column.exclude.list`, the truncate,
//! mask and hash mappers, `message.key.columns`) and naming ([`naming`]: `topic.delimiter`,
//! `schema.name.adjustment.mode`, `field.name.adjustment.mode`, Debezium's topic sanitising)
//! are decided once per table version, when the table's cache entry is built.
//!
//! TRUNCATE events (`op` `t`, key and before/after null), logical decoding messages on
//! `<topic.prefix>.message` ([`JsonConverter::convert_message`]) and transaction metadata
//! (BEGIN/END records and the events' `transaction` block, [`TransactionMonitor`]) are written
//! as Debezium writes them.
//!
//! The [`avro`] module writes the same records as Confluent's `AvroConverter` does: Avro
//! datums in the Schema Registry wire format, schemas mapped as `AvroData` maps them and
//! registered through a small blocking client (the only I/O in this crate, used once per
//! table version). [`Converter`] is the one interface the pipeline calls.
//!
//! What it does not do: heartbeat records (the worker builds them). The PK-change `__debezium.newkey`/`oldkey` headers are
//! written from the event's `key_change`. Apart from the registry client it does no I/O. `COMPATIBILITY.md` at the repository root lists every difference.
//!
//! Known differences from Debezium (see the golden test's allow-list):
//! - BC dates in **snapshot** rows: Debezium's snapshot path drops the era
//!   (`4713-01-01 BC` → 1001860 days); pgseam writes the correct day count (-2440550), which is
//!   what Debezium itself writes for the same value when streaming.
//! - Headers: the golden capture ran headers through `JsonConverter`
//!   (`{"schema":{"type":"string","optional":false},"payload":"dbz"}`); a Kafka Connect worker
//!   uses `SimpleHeaderConverter`, which writes the raw string, and so does pgseam by default
//!   ([`HeaderFormat`]; `header.converter=JsonConverter` gives the golden form).
//! - Types Debezium has no mapping for (box, circle, line, lseg, path, polygon, tsquery,
//!   pg_lsn, txid_snapshot, pg_snapshot) are left out unless `include.unknown.datatypes` is
//!   set, as in Debezium; so are the arrays Debezium has no schema for (`interval[]`,
//!   `money[]`, `name[]`, `varbit[]`, `xml[]`, `point[]`). Other types pgseam does not map
//!   specially yet (tsvector, ranges, ...) are written as strings of their PostgreSQL text.
//! - Array columns: a `NaN` in `numeric[]`, an infinite `date[]` element and the fractions of
//!   `time[]`/`timetz[]` elements are written correctly where Debezium loses them
//!   (`COMPATIBILITY.md`, §2).
//!
//! Two fixes that change the schema are opt-in ([`TypeModes`]): nested multi-dimensional
//! arrays ([`MultidimensionalArrayMode`]; the model carries every multi-dimensional value
//! nested, and Debezium's mode writes it as one null per outer element) and null unchanged
//! TOAST `int4[]`/`int8[]`/`date[]`/`uuid[]` values with the [`UNAVAILABLE_HEADER`]
//! ([`UnavailableArrayMode`]).

pub mod avro;
pub mod columns;
mod decimal;
pub mod default;
mod envelope;
mod field;
mod hstore;
pub mod jackson;
mod message;
pub mod naming;
pub mod notification;
pub mod transforms;
pub mod txmeta;

pub use avro::{AvroConverter, AvroConverterConfig, AvroError};
pub use envelope::{JsonConverter, KeyChange, CONNECTOR, DEBEZIUM_VERSION};
pub use message::MESSAGE_TOPIC_SUFFIX;
pub use txmeta::{TransactionMonitor, DEFAULT_TRANSACTION_TOPIC_SUFFIX};

/// The record converter a pipeline runs: `JsonConverter`, or `AvroConverter` (for the key, the
/// value or both).
#[derive(Debug)]
pub enum Converter {
    Json(JsonConverter),
    Avro(Box<AvroConverter>),
}

impl Converter {
    /// Converts one event into its record(s); see [`JsonConverter::convert`].
    pub fn convert(
        &mut self,
        event: &pgseam_model::ChangeEvent,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), AvroError> {
        match self {
            Converter::Json(c) => Ok(c.convert(event, processing_time_ns, out)?),
            Converter::Avro(c) => c.convert(event, processing_time_ns, out),
        }
    }

    /// Converts one event carrying its transaction-metadata block
    /// (`provide.transaction.metadata=true`; `None` writes `transaction: null`).
    pub fn convert_in_transaction(
        &mut self,
        event: &pgseam_model::ChangeEvent,
        transaction: Option<&pgseam_model::TransactionBlock>,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), AvroError> {
        match self {
            Converter::Json(c) => {
                let key_change = match &event.key_change {
                    Some(pgseam_model::KeyChangeRow::NewKey(row)) => Some(KeyChange::NewKey(row)),
                    Some(pgseam_model::KeyChangeRow::OldKey(row)) => Some(KeyChange::OldKey(row)),
                    None => None,
                };
                Ok(c.convert_in_transaction(
                    event,
                    key_change,
                    transaction,
                    processing_time_ns,
                    out,
                )?)
            }
            Converter::Avro(c) => {
                c.convert_in_transaction(event, transaction, processing_time_ns, out)
            }
        }
    }

    /// A logical decoding message's record on `<topic.prefix>.message`. With Avro, the first
    /// message registers the message schemas ([`needs_message_registry`](Self::needs_message_registry)).
    pub fn convert_message(
        &mut self,
        message: &pgseam_model::LogicalMessage,
        transaction: Option<&pgseam_model::TransactionBlock>,
        processing_time_ns: i64,
    ) -> Result<KafkaRecord, AvroError> {
        match self {
            Converter::Json(c) => Ok(c.convert_message(message, transaction, processing_time_ns)),
            Converter::Avro(c) => c.convert_message(message, transaction, processing_time_ns),
        }
    }

    /// Whether [`convert_message`](Self::convert_message) will block on the schema registry
    /// (the first message with an Avro converter).
    pub fn needs_message_registry(&self) -> bool {
        match self {
            Converter::Json(_) => false,
            Converter::Avro(c) => c.needs_message_registry(),
        }
    }

    /// The [`TransactionMonitor`] writing BEGIN/END records on
    /// `<topic.prefix>.<transaction_topic_suffix>` in this converter's key and value formats.
    /// With Avro this registers the transaction schemas: it blocks on the registry.
    pub fn transaction_monitor(
        &mut self,
        transaction_topic_suffix: &str,
    ) -> Result<TransactionMonitor, AvroError> {
        match self {
            Converter::Json(c) => Ok(TransactionMonitor::new(
                c.config(),
                transaction_topic_suffix,
            )),
            Converter::Avro(c) => c.transaction_monitor(transaction_topic_suffix),
        }
    }

    /// Whether converting `event` will block on the schema registry (its table version is
    /// new to an Avro converter). JSON conversion never blocks.
    pub fn needs_registry(&self, event: &pgseam_model::ChangeEvent) -> bool {
        match self {
            Converter::Json(_) => false,
            Converter::Avro(c) => c.needs_registry(&event.table),
        }
    }
}

/// Debezium's `decimal.handling.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecimalHandlingMode {
    /// `org.apache.kafka.connect.data.Decimal` bytes (or `VariableScaleDecimal` when the column
    /// has no precision). Debezium's default.
    #[default]
    Precise,
    /// A JSON double.
    Double,
    /// The decimal's plain text.
    String,
}

/// Debezium's `time.precision.mode`: how `date`, `time` and `timestamp` (without time zone)
/// are represented. `timetz` and `timestamptz` are `ZonedTime`/`ZonedTimestamp` strings in
/// every mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimePrecisionMode {
    /// Per column precision: `time(0..3)`/`timestamp(0..3)` in milliseconds
    /// (`io.debezium.time.Time`/`Timestamp`), wider ones in microseconds. Debezium's default.
    #[default]
    Adaptive,
    /// As `Adaptive`, but every `time` in microseconds (`MicroTime`).
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's own logical types (`org.apache.kafka.connect.data.Date`/`Time`/
    /// `Timestamp`), milliseconds; sub-millisecond digits are dropped.
    Connect,
    /// ISO-8601 strings (`io.debezium.time.IsoDate`/`IsoTime`/`IsoTimestamp`).
    IsoString,
    /// Always microseconds (`MicroTime`/`MicroTimestamp`).
    Microseconds,
    /// Always nanoseconds (`NanoTime`/`NanoTimestamp`).
    Nanoseconds,
}

/// Debezium's `binary.handling.mode` (bytea, and unknown types with
/// `include.unknown.datatypes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BinaryHandlingMode {
    /// Connect `bytes` (base64 in JSON). Debezium's default.
    #[default]
    Bytes,
    /// A `string` holding standard base64.
    Base64,
    /// A `string` holding URL-safe base64.
    Base64UrlSafe,
    /// A `string` holding lower-case hex.
    Hex,
}

/// Debezium's `hstore.handling.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HstoreHandlingMode {
    /// An `io.debezium.data.Json` string. Debezium's default.
    #[default]
    Json,
    /// A Connect `map<string, string>`.
    Map,
}

/// Debezium's `interval.handling.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntervalHandlingMode {
    /// `io.debezium.time.MicroDuration`, approximate microseconds. Debezium's default.
    #[default]
    Numeric,
    /// `io.debezium.time.Interval`, an ISO-8601 duration string `PnYnMnDTnHnMnS`.
    String,
}

/// JsonConverter's `decimal.format`: how `org.apache.kafka.connect.data.Decimal` values are
/// written (the schema is the same).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecimalFormat {
    /// Base64 of the unscaled two's-complement bytes. Kafka Connect's default.
    #[default]
    Base64,
    /// A JSON number (Java's `BigDecimal.toString()`).
    Numeric,
}

/// Kafka Connect's `header.converter`: how the values of Debezium's headers (the
/// `__debezium.context.*` headers and the key-change headers `__debezium.newkey` /
/// `__debezium.oldkey`) are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeaderFormat {
    /// `SimpleHeaderConverter` (a Connect worker's default): `Values.convertToString` — a
    /// string raw, a struct as `{"id":20}`.
    #[default]
    Simple,
    /// `JsonConverter` (`fromConnectHeader` is `fromConnectData`): a string header is
    /// `{"schema":{"type":"string","optional":false},"payload":"dbz"}`, a key header the key's
    /// JSON with its schema; with `header.converter.schemas.enable=false` the payload alone.
    Json { schemas_enable: bool },
}

/// `pgseam.array.multidimensional.mode`: how a multi-dimensional array value is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MultidimensionalArrayMode {
    /// As Debezium: the column's schema is an array of its element type, and a
    /// multi-dimensional value is one null per outer element (`{{1,2},{3,4}}` → `[null,null]`).
    #[default]
    Debezium,
    /// The schema nests as deep as the column is declared (`pg_attribute.attndims`: `int[][]`
    /// is an array of optional arrays of optional `int32`), and a value of that depth is
    /// written nested (`[[1,2],[3,4]]`). PostgreSQL does not enforce the declared depth: a
    /// value of another depth is written as in `Debezium` mode, one null per outer element
    /// (every level's items are optional, so this fits the schema), with a rate-limited
    /// warning naming the table and column. A column declared without dimensions
    /// (`attndims` 0, e.g. made by `CREATE TABLE AS`) nests one level, as Debezium's schema.
    Nested,
}

/// `pgseam.unavailable.array.mode`: what an unchanged TOAST value (REPLICA IDENTITY DEFAULT;
/// the WAL does not carry it) of an `int4[]`, `int8[]`, `date[]` or `uuid[]` column becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnavailableArrayMode {
    /// As Debezium: the bytes of `__debezium_unavailable_value` as numbers
    /// (`[95,95,100,…]`), for `uuid[]` the name-based UUID of those bytes — values a consumer
    /// cannot tell from data.
    #[default]
    Debezium,
    /// Null, where the column is nullable (a NOT NULL column's schema has no null: it keeps
    /// Debezium's value). The record's `pgseam.unavailable` header names the unavailable
    /// columns (see [`JsonConverterConfig::unavailable_header`]).
    Null,
}

/// The record header naming the columns whose value the WAL did not carry (unchanged TOAST
/// values), written with [`UnavailableArrayMode::Null`].
pub const UNAVAILABLE_HEADER: &str = "pgseam.unavailable";

/// The column-type handling modes: connector keys that decide each column's Connect schema
/// and value, shared by every encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeModes {
    /// `decimal.handling.mode`.
    pub decimal: DecimalHandlingMode,
    /// `time.precision.mode`.
    pub time_precision: TimePrecisionMode,
    /// `binary.handling.mode`.
    pub binary: BinaryHandlingMode,
    /// `hstore.handling.mode`.
    pub hstore: HstoreHandlingMode,
    /// `interval.handling.mode`.
    pub interval: IntervalHandlingMode,
    /// `money.fraction.digits` (Debezium default 2): the scale of `money` decimals.
    pub money_fraction_digits: u32,
    /// `include.unknown.datatypes` (Debezium default `false`): columns of types Debezium has
    /// no mapping for are left out unless this is set; then they are binary values of their
    /// text form, shaped by `binary.handling.mode`.
    pub include_unknown_datatypes: bool,
    /// `pgseam.array.multidimensional.mode` (default `debezium`).
    pub multidimensional_arrays: MultidimensionalArrayMode,
    /// `pgseam.unavailable.array.mode` (default `debezium`).
    pub unavailable_arrays: UnavailableArrayMode,
}

impl Default for TypeModes {
    fn default() -> Self {
        TypeModes {
            decimal: DecimalHandlingMode::Precise,
            time_precision: TimePrecisionMode::Adaptive,
            binary: BinaryHandlingMode::Bytes,
            hstore: HstoreHandlingMode::Json,
            interval: IntervalHandlingMode::Numeric,
            money_fraction_digits: 2,
            include_unknown_datatypes: false,
            multidimensional_arrays: MultidimensionalArrayMode::Debezium,
            unavailable_arrays: UnavailableArrayMode::Debezium,
        }
    }
}

/// Connector and converter settings that shape the JSON records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonConverterConfig {
    /// `topic.prefix`: topic prefix, Debezium's logical name and `source.name`.
    pub topic_prefix: String,
    /// `key.converter.schemas.enable` (Kafka Connect default `true`).
    pub key_schemas_enable: bool,
    /// `value.converter.schemas.enable` (Kafka Connect default `true`).
    pub value_schemas_enable: bool,
    /// Column-type handling modes.
    pub modes: TypeModes,
    /// JsonConverter's `decimal.format` (`key.converter.decimal.format` /
    /// `value.converter.decimal.format`; one setting here, applied to both).
    pub decimal_format: DecimalFormat,
    /// `tombstones.on.delete` (Debezium default `true`).
    pub tombstones_on_delete: bool,
    /// JsonConverter's `replace.null.with.default` (default `true` since Kafka 3.7).
    pub replace_null_with_default: bool,
    /// The `__debezium.context.runId` header; `None` generates a random UUID in
    /// [`JsonConverter::new`].
    pub run_id: Option<String>,
    /// The connector's single message transforms (`transforms`), applied to each record
    /// before it is serialised; empty by default.
    pub transforms: transforms::Transforms,
    /// Column filter, value mappers and `message.key.columns` ([`columns`]); shapes nothing by
    /// default.
    pub columns: std::sync::Arc<columns::ColumnShaping>,
    /// `topic.delimiter`, `schema.name.adjustment.mode`, `field.name.adjustment.mode`.
    pub naming: std::sync::Arc<naming::Naming>,
    /// `header.converter`: the form of Debezium's header values.
    pub header_format: HeaderFormat,
    /// Write the [`UNAVAILABLE_HEADER`] on every change record whose `after` image has
    /// unchanged TOAST values: the names of those columns (every type, in column order; the
    /// key and value field names) as a Connect `array<string>` in [`header_format`]
    /// (`SimpleHeaderConverter`: `["a","b"]`). The worker sets it with
    /// [`UnavailableArrayMode::Null`] unless `pgseam.position.headers=false`.
    ///
    /// [`header_format`]: Self::header_format
    pub unavailable_header: bool,
}

impl JsonConverterConfig {
    /// Debezium's and Kafka Connect's defaults for the given `topic.prefix`.
    pub fn new(topic_prefix: impl Into<String>) -> Self {
        JsonConverterConfig {
            topic_prefix: topic_prefix.into(),
            key_schemas_enable: true,
            value_schemas_enable: true,
            modes: TypeModes::default(),
            decimal_format: DecimalFormat::Base64,
            tombstones_on_delete: true,
            replace_null_with_default: true,
            run_id: None,
            transforms: transforms::Transforms::default(),
            columns: std::sync::Arc::default(),
            naming: std::sync::Arc::default(),
            header_format: HeaderFormat::Simple,
            unavailable_header: false,
        }
    }
}

/// One record for the producer (defined in the model, so that a snapshot reader can carry the
/// records it converted; see `pgseam_connector_pg::snapshot::RowEncoder`).
pub use pgseam_model::KafkaRecord;

/// An event could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A value does not fit its column's type (a decoder bug, or a schema out of step).
    #[error("table {table}, column {column:?} ({type_name}): {reason}")]
    Value {
        table: String,
        column: String,
        type_name: String,
        reason: String,
    },
    /// A transform failed on a record.
    #[error(transparent)]
    Transform(#[from] transforms::TransformError),
    /// An Avro record could not be written (a schema plan out of step with the envelope).
    #[error("table {table}: Avro: {reason}")]
    Avro { table: String, reason: String },
    /// A row has a different number of values than the table has columns.
    #[error("table {table}: row has {actual} values, the table has {expected} columns")]
    RowShape {
        table: String,
        expected: usize,
        actual: usize,
    },
}
