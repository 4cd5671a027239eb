//! Debezium change events as Confluent's `AvroConverter` writes them: Avro datums framed with
//! the Schema Registry wire format, schemas registered under `TopicNameStrategy` subjects.
//!
//! ```text
//!  per table version (once):
//!    envelope Connect schema JSON (golden-verified) ──► connect::ConnectSchema
//!        ──► schema::from_connect ──► Avro schema JSON ──► registry: id for <topic>-key / -value
//!        ──► binary::Plan (Avro type and union branches per node)
//!  per event:
//!    ChangeEvent ──► envelope (JsonConverter's row walk) ──► 0x00 | id (u32 BE) | datum
//!                      common kinds: written straight from the Value
//!                      other kinds, mapped columns, defaults: that field's JSON, transcoded
//! ```
//!
//! The Avro path reuses the envelope for what Debezium decides (which columns, their Connect
//! types under the handling modes, defaults, NOT NULL fallbacks, TOAST placeholders, the
//! source block): the envelope walks the row once and writes each field into one buffer, as
//! Avro binary (`binary::Plan::write_scalar`) where the value is a number, text or bytes
//! that needs no Debezium-specific rendering, otherwise as the golden-verified JSON of that
//! field transcoded by the plan (`binary`). The Avro mapping follows Confluent's `AvroData`
//! (`schema`). Records changed by single message transforms are rendered as JSON with their
//! transformed Connect schema; each distinct (subject, schema) is registered under the
//! record's own topic and the payload transcoded whole. `converters/tests/it/avro.rs` checks that every datum equals what the former
//! encoder (JSON tree → apache-avro value → `GenericDatumWriter`) wrote, byte for byte.
//!
//! Logical decoding messages and transaction metadata: [`AvroConverter::convert_message`]
//! (schemas registered on the first message) and [`AvroConverter::transaction_monitor`]
//! (schemas registered when the monitor is made; BEGIN/END written directly, see
//! [`crate::txmeta`]).
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

pub(crate) mod binary;
mod connect;
pub mod registry;
mod schema;

use std::collections::HashMap;
use std::sync::Arc;

use pgseam_model::{ChangeEvent, KeyChangeRow, LogicalMessage, TableSchema, TransactionBlock};

use crate::envelope::AvroParts;
use crate::{
    ConvertError, DecimalFormat, JsonConverter, JsonConverterConfig, KafkaRecord, KeyChange,
    TransactionMonitor,
};
use connect::ConnectSchema;
use registry::{RegistryError, SchemaRegistry};

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
    plan: binary::Plan,
    id: u32,
}

#[derive(Debug)]
struct TableEntry {
    table: Arc<TableSchema>,
    key: Option<Registered>,
    value: Option<Registered>,
    /// The value schema of streamed events, when it differs from the snapshot's (source type
    /// propagation of a `serial` column or an unconstrained `numeric`).
    stream_value: Option<Registered>,
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
    /// The logical decoding message schemas (key, value), once registered.
    message: Option<(Option<Registered>, Option<Registered>)>,
    /// With transforms: renders the transformed records with their Connect schemas.
    json_schemas: Option<JsonConverter>,
    /// With transforms: (subject, transformed Connect schema JSON) → its registered plan.
    transformed: HashMap<(String, String), Registered>,
    scratch: Vec<KafkaRecord>,
}

/// An event could not be converted to Avro.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    /// The event does not fit its table (as for JSON).
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// Registering a schema failed. `owner` is `table <schema.table>` or `topic <topic>`.
    #[error("{owner}: cannot register the {role} schema: {source}")]
    Registry {
        owner: String,
        role: &'static str,
        #[source]
        source: RegistryError,
    },
    /// The Connect → Avro mapping failed (a type AvroData cannot map, or a value out of step
    /// with its schema).
    #[error("{owner}: {role}: {reason}")]
    Mapping {
        owner: String,
        role: &'static str,
        reason: String,
    },
}

impl AvroConverter {
    /// A converter registering its schemas with `registry`.
    pub fn new(cfg: AvroConverterConfig, registry: Box<dyn SchemaRegistry>) -> Self {
        let mut json_cfg = cfg.json.clone();
        // One runId header for every record, whichever inner converter renders it.
        if json_cfg.run_id.is_none() {
            json_cfg.run_id = Some(uuid::Uuid::new_v4().to_string());
        }
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
        let json_schemas = (!cfg.json.transforms.is_empty()).then(|| {
            JsonConverter::new(JsonConverterConfig {
                key_schemas_enable: cfg.key_avro || json_cfg.key_schemas_enable,
                value_schemas_enable: cfg.value_avro || json_cfg.value_schemas_enable,
                ..json_cfg.clone()
            })
        });
        AvroConverter {
            json: JsonConverter::new(json_cfg),
            json_schemas,
            transformed: HashMap::new(),
            cfg,
            registry,
            tables: HashMap::new(),
            ids: HashMap::new(),
            message: None,
            scratch: Vec::new(),
        }
    }

    /// The Debezium extended headers every record carries.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        self.json.headers()
    }

    /// Whether converting an event of `table` will call the registry (first use of this table
    /// version): the caller may then run [`convert`](Self::convert) where blocking is fine.
    /// With transforms, a transformed shape first seen on a later event (another operation's)
    /// registers inline, once.
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
        let (key_json, value_json, stream_value_json) = {
            let (k, v, sv) = self.json.connect_schemas(table);
            (k.map(str::to_owned), v.to_owned(), sv.map(str::to_owned))
        };
        let topic =
            self.cfg
                .json
                .naming
                .topic(&[&self.cfg.json.topic_prefix, &table.schema, &table.table]);
        let owner = format!("table {}", table.qualified_name());
        // With transforms, what gets registered is each transformed record's schema.
        let direct = self.cfg.json.transforms.is_empty();
        let key = match (&key_json, self.cfg.key_avro && direct) {
            (Some(k), true) => Some(self.prepare(&owner, "key", &topic, k)?),
            _ => None,
        };
        let value = if self.cfg.value_avro && direct {
            Some(self.prepare(&owner, "value", &topic, &value_json)?)
        } else {
            None
        };
        let stream_value = match (&stream_value_json, self.cfg.value_avro && direct) {
            (Some(v), true) => Some(self.prepare(&owner, "value", &topic, v)?),
            _ => None,
        };
        self.tables.insert(
            table.relation_id,
            TableEntry {
                table: Arc::clone(table),
                key,
                value,
                stream_value,
            },
        );
        Ok(())
    }

    fn prepare(
        &mut self,
        owner: &str,
        role: &'static str,
        topic: &str,
        connect_json: &str,
    ) -> Result<Registered, AvroError> {
        let mapping = |reason: String| AvroError::Mapping {
            owner: owner.to_owned(),
            role,
            reason,
        };
        let json: serde_json::Value = serde_json::from_str(connect_json)
            .map_err(|e| mapping(format!("Connect schema JSON: {e}")))?;
        let connect = ConnectSchema::from_json(&json).map_err(mapping)?;
        let avro_json =
            schema::to_json(&schema::from_connect(&connect).map_err(mapping)?).map_err(mapping)?;
        // What the registry will parse: checked here, once per table version.
        apache_avro::Schema::parse_str(&avro_json)
            .map_err(|e| mapping(format!("Avro schema does not parse: {e}")))?;
        let plan = binary::Plan::new(&connect).map_err(mapping)?;
        let subject = format!("{topic}-{role}");
        let cache_key = (subject, avro_json);
        let id = match self.ids.get(&cache_key) {
            Some(id) => *id,
            None => {
                let id = self
                    .registry
                    .register(&cache_key.0, &cache_key.1)
                    .map_err(|source| AvroError::Registry {
                        owner: owner.to_owned(),
                        role,
                        source,
                    })?;
                self.ids.insert(cache_key, id);
                id
            }
        };
        Ok(Registered { plan, id })
    }

    /// Converts one event into its record(s), like [`JsonConverter::convert`]; the Avro parts
    /// are framed with their registered schema ids.
    pub fn convert(
        &mut self,
        event: &ChangeEvent,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), AvroError> {
        self.convert_in_transaction(event, None, processing_time_ns, out)
    }

    /// As [`convert`](Self::convert), with the event's `transaction` block
    /// (`provide.transaction.metadata=true`) instead of null.
    pub fn convert_in_transaction(
        &mut self,
        event: &ChangeEvent,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), AvroError> {
        self.entry(&event.table)?;
        self.scratch.clear();
        let key_change = match &event.key_change {
            Some(KeyChangeRow::NewKey(row)) => Some(KeyChange::NewKey(row)),
            Some(KeyChangeRow::OldKey(row)) => Some(KeyChange::OldKey(row)),
            None => None,
        };
        let entry = &self.tables[&event.table.relation_id];
        if self.cfg.json.transforms.is_empty() {
            // Straight from the row values into the framed datums.
            let parts = AvroParts {
                key: entry.key.as_ref().map(|r| (&r.plan, r.id)),
                value: match (&entry.stream_value, event.op) {
                    (Some(r), op) if op != pgseam_model::Operation::Read => Some((&r.plan, r.id)),
                    _ => entry.value.as_ref().map(|r| (&r.plan, r.id)),
                },
            };
            self.json.convert_avro(
                event,
                key_change,
                transaction,
                processing_time_ns,
                parts,
                out,
            )?;
            return Ok(());
        }
        // Transformed records: rendered as JSON with their (transformed) Connect schemas; each
        // distinct schema is registered under the record's own topic, and the payload
        // transcoded with its plan.
        let mut records = std::mem::take(&mut self.scratch);
        records.clear();
        let converted = match self.json_schemas.as_mut() {
            Some(json) => json.convert_in_transaction(
                event,
                key_change,
                transaction,
                processing_time_ns,
                &mut records,
            ),
            None => Ok(()),
        };
        let owner = format!("table {}", event.table.qualified_name());
        let result = converted.map_err(AvroError::from).and_then(|()| {
            for mut record in records.drain(..) {
                if self.cfg.key_avro {
                    record.key =
                        self.encode_transformed(&owner, "key", &record.topic, record.key)?;
                }
                if self.cfg.value_avro {
                    record.value =
                        self.encode_transformed(&owner, "value", &record.topic, record.value)?;
                }
                out.push(record);
            }
            Ok(())
        });
        records.clear();
        self.scratch = records;
        result
    }

    /// One part of a transformed record (`{"schema":..,"payload":..}`) as a framed datum.
    fn encode_transformed(
        &mut self,
        owner: &str,
        role: &'static str,
        topic: &str,
        part: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, AvroError> {
        let Some(part) = part else { return Ok(None) };
        let mapping = |reason: String| AvroError::Mapping {
            owner: owner.to_owned(),
            role,
            reason,
        };
        let json: serde_json::Value = serde_json::from_slice(&part)
            .map_err(|e| mapping(format!("transformed record JSON: {e}")))?;
        let schema = serde_json::to_string(&json["schema"])
            .map_err(|e| mapping(format!("transformed record schema: {e}")))?;
        let payload = serde_json::to_vec(&json["payload"])
            .map_err(|e| mapping(format!("transformed record payload: {e}")))?;
        let key = (format!("{topic}-{role}"), schema);
        if !self.transformed.contains_key(&key) {
            let registered = self.prepare(owner, role, topic, &key.1)?;
            self.transformed.insert(key.clone(), registered);
        }
        let reg = &self.transformed[&key];
        encode(reg, &payload).map(Some).map_err(mapping)
    }

    /// Whether [`convert_message`](Self::convert_message) will call the registry (the
    /// message schemas are registered on the first message).
    pub fn needs_message_registry(&self) -> bool {
        self.message.is_none() && (self.cfg.key_avro || self.cfg.value_avro)
    }

    /// A logical decoding message's record on `<topic.prefix>.message`, as
    /// [`JsonConverter::convert_message`] writes it, with Avro key and/or value (schemas
    /// `io.debezium.connector.postgresql.MessageKey` / `MessageValue`, registered on first
    /// use under `<topic>-key` / `<topic>-value`).
    pub fn convert_message(
        &mut self,
        message: &LogicalMessage,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
    ) -> Result<KafkaRecord, AvroError> {
        let mut record = self
            .json
            .convert_message(message, transaction, processing_time_ns);
        let owner = format!("topic {}", record.topic);
        if self.message.is_none() {
            let key = if self.cfg.key_avro {
                Some(self.prepare(&owner, "key", &record.topic, crate::message::KEY_SCHEMA)?)
            } else {
                None
            };
            let value = if self.cfg.value_avro {
                let schema = crate::message::value_schema(self.cfg.json.modes.binary);
                Some(self.prepare(&owner, "value", &record.topic, &schema)?)
            } else {
                None
            };
            self.message = Some((key, value));
        }
        if let Some((key, value)) = &self.message {
            encode_parts(&mut record, key.as_ref(), value.as_ref(), || owner.clone())?;
        }
        Ok(record)
    }

    /// A [`TransactionMonitor`] whose records have this converter's key and value formats:
    /// the Avro parts' schemas (`io.debezium.connector.common.TransactionMetadataKey` /
    /// `TransactionMetadataValue`) are registered now, under the transaction topic's
    /// subjects. Blocks on the registry.
    pub fn transaction_monitor(
        &mut self,
        transaction_topic_suffix: &str,
    ) -> Result<TransactionMonitor, AvroError> {
        let mut monitor = TransactionMonitor::new(&self.cfg.json, transaction_topic_suffix);
        let topic = monitor.topic().to_owned();
        let owner = format!("topic {topic}");
        let key = if self.cfg.key_avro {
            Some(
                self.prepare(&owner, "key", &topic, crate::txmeta::KEY_SCHEMA)?
                    .id,
            )
        } else {
            None
        };
        let value = if self.cfg.value_avro {
            Some(
                self.prepare(&owner, "value", &topic, crate::txmeta::VALUE_SCHEMA)?
                    .id,
            )
        } else {
            None
        };
        monitor.set_avro(key, value);
        Ok(monitor)
    }
}

/// Replaces the record's JSON key / value payloads with their framed Avro datums (the parts
/// that have a registered schema).
fn encode_parts(
    record: &mut KafkaRecord,
    key: Option<&Registered>,
    value: Option<&Registered>,
    owner: impl Fn() -> String,
) -> Result<(), AvroError> {
    if let (Some(reg), Some(k)) = (key, &record.key) {
        record.key = Some(encode(reg, k).map_err(|reason| AvroError::Mapping {
            owner: owner(),
            role: "key",
            reason,
        })?);
    }
    if let (Some(reg), Some(v)) = (value, &record.value) {
        record.value = Some(encode(reg, v).map_err(|reason| AvroError::Mapping {
            owner: owner(),
            role: "value",
            reason,
        })?);
    }
    Ok(())
}

/// Encodes one JSON payload as a framed Avro datum, in one buffer.
fn encode(reg: &Registered, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 16);
    out.push(registry::MAGIC_BYTE);
    out.extend_from_slice(&reg.id.to_be_bytes());
    reg.plan.encode(payload, &mut out)?;
    Ok(out)
}

/// The Avro schema JSON AvroData derives from a Connect schema in `JsonConverter`'s schema
/// JSON form (for tests and tools that compare registered schemas).
pub fn avro_schema_for_connect_json(connect_json: &str) -> Result<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(connect_json).map_err(|e| format!("Connect schema JSON: {e}"))?;
    let connect = ConnectSchema::from_json(&json)?;
    schema::to_json(&schema::from_connect(&connect)?)
}
