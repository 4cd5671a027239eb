//! `ChangeEvent` → Debezium change-event records, as Kafka Connect's `JsonConverter` writes them.
//!
//! What it does: renders each [`ChangeEvent`](pgseam_model::ChangeEvent) as the Kafka record(s)
//! Debezium 3.6.3's PostgreSQL connector produces under Kafka Connect's JSON converter — topic
//! `<topic.prefix>.<schema>.<table>`, the key struct, the envelope with its `source` block, the
//! delete tombstone and Debezium's extended headers — byte for byte, with and without schemas.
//! Column types map as Debezium's defaults do (`time.precision.mode=adaptive`,
//! `binary.handling.mode=bytes`, `hstore.handling.mode=json`, `interval.handling.mode=numeric`)
//! with `decimal.handling.mode` configurable. Column defaults come from the catalog's default
//! expression as Debezium derives them ([`default`]), and
//! `replace.null.with.default` writes them in place of nulls as Kafka ≥ 3.7's JsonConverter
//! does. Unchanged TOAST values become Debezium's `__debezium_unavailable_value` placeholder,
//! except in an UPDATE's `after` when the old tuple (REPLICA IDENTITY FULL) carries the value,
//! which Debezium then writes. The [`jackson`] module reproduces Jackson's number and string
//! output.
//!
//! What it does not do: Avro / Schema Registry framing, transaction metadata blocks and the
//! transaction topic, logical-message and heartbeat records, TRUNCATE events' special key
//! handling beyond `key = None`, the PK-change `__debezium.newkey`/`oldkey` headers, and the
//! other `time.precision.mode`, `binary.handling.mode`, `hstore.handling.mode` and
//! `interval.handling.mode` values. It does no I/O.
//!
//! Known differences from Debezium (see the golden test's allow-list):
//! - BC dates in **snapshot** rows: Debezium's snapshot path drops the era
//!   (`4713-01-01 BC` → 1001860 days); pgseam writes the correct day count (-2440550), which is
//!   what Debezium itself writes for the same value when streaming.
//! - Headers: the golden capture ran headers through `JsonConverter`
//!   (`{"schema":{"type":"string","optional":false},"payload":"dbz"}`); a Kafka Connect worker
//!   uses `SimpleHeaderConverter`, which writes the raw string, and so does pgseam.
//! - Types without a Debezium mapping here (ranges, geometric types other than point, bit
//!   strings, ...) are written as strings of their PostgreSQL text; Debezium would omit the
//!   column unless `include.unknown.datatypes` is set.

mod decimal;
pub mod default;
mod envelope;
mod field;
mod hstore;
pub mod jackson;

pub use envelope::{JsonConverter, CONNECTOR, DEBEZIUM_VERSION};

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

/// Connector and converter settings that shape the JSON records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonConverterConfig {
    /// `topic.prefix`: topic prefix, Debezium's logical name and `source.name`.
    pub topic_prefix: String,
    /// `key.converter.schemas.enable` (Kafka Connect default `true`).
    pub key_schemas_enable: bool,
    /// `value.converter.schemas.enable` (Kafka Connect default `true`).
    pub value_schemas_enable: bool,
    /// `decimal.handling.mode`.
    pub decimal_handling_mode: DecimalHandlingMode,
    /// `tombstones.on.delete` (Debezium default `true`).
    pub tombstones_on_delete: bool,
    /// JsonConverter's `replace.null.with.default` (default `true` since Kafka 3.7).
    pub replace_null_with_default: bool,
    /// The `__debezium.context.runId` header; `None` generates a random UUID in
    /// [`JsonConverter::new`].
    pub run_id: Option<String>,
}

impl JsonConverterConfig {
    /// Debezium's and Kafka Connect's defaults for the given `topic.prefix`.
    pub fn new(topic_prefix: impl Into<String>) -> Self {
        JsonConverterConfig {
            topic_prefix: topic_prefix.into(),
            key_schemas_enable: true,
            value_schemas_enable: true,
            decimal_handling_mode: DecimalHandlingMode::Precise,
            tombstones_on_delete: true,
            replace_null_with_default: true,
            run_id: None,
        }
    }
}

/// One record for the producer. `key: None` = no key (table without primary key);
/// `value: None` = tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

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
    /// A row has a different number of values than the table has columns.
    #[error("table {table}: row has {actual} values, the table has {expected} columns")]
    RowShape {
        table: String,
        expected: usize,
        actual: usize,
    },
}
