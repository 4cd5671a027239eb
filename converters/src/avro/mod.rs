//! Debezium change events as Confluent's `AvroConverter` writes them: Avro datums framed with
//! the Schema Registry wire format, schemas registered under `TopicNameStrategy` subjects.
//!
//! ```text
//!  ChangeEvent ──► JsonConverter (schemaless payloads, golden-verified) ──► serde_json value
//!                        │ Connect schema JSON, once per table version              │
//!                        ▼                                                          ▼
//!               connect::ConnectSchema ──► schema::from_connect ──► Avro schema ──► value::to_avro
//!                                                    │ register once                │
//!                                                    ▼                              ▼
//!                                     registry: id for <topic>-key / -value   apache-avro datum
//!                                                                                   │
//!                                                      0x00 | id (u32 BE) | datum ◄─┘
//! ```
//!
//! The Avro path reuses the JSON envelope for what Debezium decides (which columns, their
//! Connect types under the handling modes, defaults, TOAST placeholders, the source block):
//! those are verified byte for byte against Debezium, and the Avro mapping on top follows
//! Confluent's `AvroData` (see [`schema`] and [`value`]). The Connect schema JSON is read back
//! once per table version; the payload is parsed per event, which costs a JSON round trip
//! (see `bench/` for the rate) but keeps a single source of truth for Debezium's value
//! mapping.
//!
//! As in `AvroConverter` with its defaults, a null field with a schema default is written as
//! the default (`Struct.get` in `AvroData.fromConnectData`); `ignore.default.for.nullables`
//! turns that off.
//!
//! Per table version the key and value schemas are registered on first use: the table's
//! cache entry holds the parsed schemas and their ids, and is rebuilt (and re-registered) when
//! the event carries a different `TableSchema`. Identical schema texts are registered once per
//! subject. Registration is the only I/O and can block; [`AvroConverter::needs_registry`]
//! tells the caller in advance.

mod connect;
pub mod registry;
mod schema;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

use pgseam_model::{ChangeEvent, TableSchema};

use crate::{ConvertError, DecimalFormat, JsonConverter, JsonConverterConfig, KafkaRecord};
use connect::ConnectSchema;
use registry::{frame, RegistryError, SchemaRegistry};

/// The Avro converter's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroConverterConfig {
    /// Connector settings shared with the JSON envelope (`topic.prefix`, handling modes,
    /// `tombstones.on.delete`, run id). `*_schemas_enable` and `decimal_format` are ignored for
    /// Avro-encoded parts; `replace_null_with_default` is `!ignore.default.for.nullables`.
    pub json: JsonConverterConfig,
    /// The key is Avro (`key.converter` = AvroConverter); otherwise JsonConverter.
    pub key_avro: bool,
    /// The value is Avro (`value.converter` = AvroConverter); otherwise JsonConverter.
    pub value_avro: bool,
}

/// An Avro schema ready for use: parsed, and registered under its subject.
#[derive(Debug)]
struct Registered {
    connect: ConnectSchema,
    avro: apache_avro::Schema,
    id: u32,
}

#[derive(Debug)]
struct TableEntry {
    table: Arc<TableSchema>,
    key: Option<Registered>,
    value: Option<Registered>,
}

/// Converts [`ChangeEvent`]s to Kafka records in Confluent's Avro wire format.
#[derive(Debug)]
pub struct AvroConverter {
    cfg: AvroConverterConfig,
    json: JsonConverter,
    registry: Box<dyn SchemaRegistry>,
    tables: HashMap<u32, TableEntry>,
    /// (subject, schema JSON) → id: a schema is registered once per subject.
    ids: HashMap<(String, String), u32>,
    scratch: Vec<KafkaRecord>,
}

/// An event could not be converted to Avro.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    /// The event does not fit its table (as for JSON).
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// Registering a schema failed.
    #[error("table {table}: cannot register the {role} schema: {source}")]
    Registry {
        table: String,
        role: &'static str,
        #[source]
        source: RegistryError,
    },
    /// The Connect → Avro mapping failed (a type AvroData cannot map, or a value out of step
    /// with its schema).
    #[error("table {table}: {role}: {reason}")]
    Mapping {
        table: String,
        role: &'static str,
        reason: String,
    },
}

impl AvroConverter {
    /// A converter registering its schemas with `registry`.
    pub fn new(cfg: AvroConverterConfig, registry: Box<dyn SchemaRegistry>) -> Self {
        let mut json_cfg = cfg.json.clone();
        // The inner converter renders what gets parsed: bare payloads, decimals as base64.
        if cfg.key_avro {
            json_cfg.key_schemas_enable = false;
        }
        if cfg.value_avro {
            json_cfg.value_schemas_enable = false;
        }
        if cfg.key_avro || cfg.value_avro {
            json_cfg.decimal_format = DecimalFormat::Base64;
        }
        AvroConverter {
            json: JsonConverter::new(json_cfg),
            cfg,
            registry,
            tables: HashMap::new(),
            ids: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The Debezium extended headers every record carries.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        self.json.headers()
    }

    /// Whether converting an event of `table` will call the registry (first use of this table
    /// version): the caller may then run [`convert`](Self::convert) where blocking is fine.
    pub fn needs_registry(&self, table: &Arc<TableSchema>) -> bool {
        match self.tables.get(&table.relation_id) {
            Some(e) => !Arc::ptr_eq(&e.table, table) && *e.table != **table,
            None => true,
        }
    }

    /// Makes the cache entry of `table` current, registering its schemas if needed.
    fn entry(&mut self, table: &Arc<TableSchema>) -> Result<(), AvroError> {
        if !self.needs_registry(table) {
            if let Some(e) = self.tables.get_mut(&table.relation_id) {
                if !Arc::ptr_eq(&e.table, table) {
                    e.table = Arc::clone(table);
                }
            }
            return Ok(());
        }
        let (key_json, value_json) = {
            let (k, v) = self.json.connect_schemas(table);
            (k.map(str::to_owned), v.to_owned())
        };
        let topic =
            self.cfg
                .json
                .naming
                .topic(&[&self.cfg.json.topic_prefix, &table.schema, &table.table]);
        let key = match (&key_json, self.cfg.key_avro) {
            (Some(k), true) => Some(self.prepare(table, "key", &topic, k)?),
            _ => None,
        };
        let value = if self.cfg.value_avro {
            Some(self.prepare(table, "value", &topic, &value_json)?)
        } else {
            None
        };
        self.tables.insert(
            table.relation_id,
            TableEntry {
                table: Arc::clone(table),
                key,
                value,
            },
        );
        Ok(())
    }

    fn prepare(
        &mut self,
        table: &TableSchema,
        role: &'static str,
        topic: &str,
        connect_json: &str,
    ) -> Result<Registered, AvroError> {
        let mapping = |reason: String| AvroError::Mapping {
            table: table.qualified_name(),
            role,
            reason,
        };
        let json: serde_json::Value = serde_json::from_str(connect_json)
            .map_err(|e| mapping(format!("Connect schema JSON: {e}")))?;
        let connect = ConnectSchema::from_json(&json).map_err(mapping)?;
        let avro_json =
            schema::to_json(&schema::from_connect(&connect).map_err(mapping)?).map_err(mapping)?;
        let avro = apache_avro::Schema::parse_str(&avro_json)
            .map_err(|e| mapping(format!("Avro schema does not parse: {e}")))?;
        let subject = format!("{topic}-{role}");
        let cache_key = (subject, avro_json);
        let id = match self.ids.get(&cache_key) {
            Some(id) => *id,
            None => {
                let id = self
                    .registry
                    .register(&cache_key.0, &cache_key.1)
                    .map_err(|source| AvroError::Registry {
                        table: table.qualified_name(),
                        role,
                        source,
                    })?;
                self.ids.insert(cache_key, id);
                id
            }
        };
        Ok(Registered { connect, avro, id })
    }

    /// Converts one event into its record(s), like [`JsonConverter::convert`]; the Avro parts
    /// are framed with their registered schema ids.
    pub fn convert(
        &mut self,
        event: &ChangeEvent,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), AvroError> {
        self.entry(&event.table)?;
        self.scratch.clear();
        self.json
            .convert(event, processing_time_ns, &mut self.scratch)?;
        let entry = &self.tables[&event.table.relation_id];
        let table = &event.table;
        for mut record in self.scratch.drain(..) {
            if let (Some(reg), Some(key)) = (&entry.key, &record.key) {
                record.key = Some(encode(reg, key).map_err(|reason| AvroError::Mapping {
                    table: table.qualified_name(),
                    role: "key",
                    reason,
                })?);
            }
            if let (Some(reg), Some(value)) = (&entry.value, &record.value) {
                record.value = Some(encode(reg, value).map_err(|reason| AvroError::Mapping {
                    table: table.qualified_name(),
                    role: "value",
                    reason,
                })?);
            }
            out.push(record);
        }
        Ok(())
    }
}

/// Encodes one JSON payload as a framed Avro datum.
fn encode(reg: &Registered, payload: &[u8]) -> Result<Vec<u8>, String> {
    let json: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(json) => json,
        // A string cut inside a surrogate pair (`column.truncate.to.N.chars`) ends in a lone
        // high surrogate; Java's UTF-8 encoder, which Avro uses, writes `?` for it.
        Err(_) => serde_json::from_slice(&lone_surrogates_as_question_marks(payload))
            .map_err(|e| format!("payload JSON: {e}"))?,
    };
    let datum = value::to_avro(&reg.connect, &json)?;
    let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&reg.avro)
        .build()
        .and_then(|w| w.write_value_to_vec(datum))
        .map_err(|e| format!("Avro encoding: {e}"))?;
    Ok(frame(reg.id, &bytes))
}

/// `payload` with every `\\uXXXX` escape of a surrogate that is not half of a pair replaced by
/// `?` (what `String.getBytes(UTF_8)` does to an unpaired surrogate).
fn lone_surrogates_as_question_marks(payload: &[u8]) -> Vec<u8> {
    let unit = |at: usize| -> Option<u16> {
        let hex = payload.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut out = Vec::with_capacity(payload.len());
    let mut i = 0;
    while i < payload.len() {
        if payload[i] != b'\\' {
            out.push(payload[i]);
            i += 1;
            continue;
        }
        match unit(i) {
            Some(0xD800..=0xDBFF) => match unit(i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    out.extend_from_slice(&payload[i..i + 12]);
                    i += 12;
                }
                _ => {
                    out.push(b'?');
                    i += 6;
                }
            },
            Some(0xDC00..=0xDFFF) => {
                out.push(b'?');
                i += 6;
            }
            _ => {
                // Any other escape: copy it whole (`\\\\` must not start a new one).
                let len = if payload.get(i + 1) == Some(&b'u') {
                    6
                } else {
                    2
                };
                let end = (i + len).min(payload.len());
                out.extend_from_slice(&payload[i..end]);
                i = end;
            }
        }
    }
    out
}

/// The Avro schema JSON AvroData derives from a Connect schema in `JsonConverter`'s schema
/// JSON form (for tests and tools that compare registered schemas).
pub fn avro_schema_for_connect_json(connect_json: &str) -> Result<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(connect_json).map_err(|e| format!("Connect schema JSON: {e}"))?;
    let connect = ConnectSchema::from_json(&json)?;
    schema::to_json(&schema::from_connect(&connect)?)
}

#[cfg(test)]
mod tests {
    use super::lone_surrogates_as_question_marks as fix;

    #[test]
    fn lone_surrogates_become_question_marks() {
        let t = |s: &str| String::from_utf8(fix(s.as_bytes())).unwrap();
        assert_eq!(t(r#""\uD83C\uDF55\uD83C""#), r#""\uD83C\uDF55?""#);
        assert_eq!(t(r#""a\uDF55b""#), r#""a?b""#);
        assert_eq!(t(r#""\\uD83C \" \u00e9""#), r#""\\uD83C \" \u00e9""#);
        let v: serde_json::Value = serde_json::from_slice(&fix(br#"{"n":"x\uD83C"}"#)).unwrap();
        assert_eq!(v["n"], "x?");
    }
}
