//! The Kafka Connect record a transform chain works on: the connector's `SourceRecord` with its
//! key and value as Connect structs, before `JsonConverter` serialises it.
//!
//! Field values are kept as their JSON payload text (what `JsonConverter` writes for the value),
//! `None` for a null. Field schemas are kept as their JSON schema text without the `"field"`
//! member, plus the payload text of their default: `JsonConverter` with
//! `replace.null.with.default` writes the default for a null when the record is serialised, so
//! the default stays attached to the schema until then, as in Connect.

use crate::jackson;

/// One field of a Connect struct schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldSchema {
    pub name: String,
    /// The field's schema as `JsonConverter` writes it, without the `"field"` member.
    pub schema: String,
    /// Payload text of the schema's default value.
    pub default: Option<String>,
    /// Whether the field's schema is optional (`drop.fields.keep.schema.compatible`).
    pub optional: bool,
}

/// A Connect struct schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StructSchema {
    pub name: Option<String>,
    pub optional: bool,
    pub version: Option<i32>,
    pub fields: Vec<FieldSchema>,
}

impl StructSchema {
    /// `SchemaUtil.copySchemaBasics(schema, SchemaBuilder.struct())` plus every field: name,
    /// version and parameters are kept, optionality is not (the copy is required).
    pub(crate) fn copy_basics(&self) -> StructSchema {
        StructSchema {
            name: self.name.clone(),
            optional: false,
            version: self.version,
            fields: self.fields.clone(),
        }
    }

    pub(crate) fn index_of(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == field)
    }

    /// Writes the schema, with `"field":<field>` when it is a struct field.
    pub(crate) fn write(&self, out: &mut String, field: Option<&str>) {
        out.push_str("{\"type\":\"struct\",\"fields\":[");
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_field_schema(out, &f.schema, &f.name);
        }
        out.push_str("],\"optional\":");
        out.push_str(if self.optional { "true" } else { "false" });
        if let Some(name) = &self.name {
            out.push_str(",\"name\":");
            jackson::write_str(out, name);
        }
        if let Some(v) = self.version {
            out.push_str(",\"version\":");
            out.push_str(&v.to_string());
        }
        if let Some(field) = field {
            out.push_str(",\"field\":");
            jackson::write_str(out, field);
        }
        out.push('}');
    }
}

/// Writes a field schema (`{...}` without `"field"`) with its `"field"` member appended, which
/// `JsonConverter` writes last.
pub(crate) fn write_field_schema(out: &mut String, schema: &str, name: &str) {
    let body = schema.strip_suffix('}').unwrap_or(schema);
    out.push_str(body);
    out.push_str(",\"field\":");
    jackson::write_str(out, name);
    out.push('}');
}

/// A Connect struct value: one payload text per schema field, `None` for null.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StructValue {
    pub schema: StructSchema,
    pub values: Vec<Option<String>>,
}

impl StructValue {
    /// Writes the payload; with `replace` a null is written as the field's default.
    pub(crate) fn write_payload(&self, out: &mut String, replace: bool) {
        write_values(out, &self.schema, &self.values, replace);
    }
}

pub(crate) fn write_values(
    out: &mut String,
    schema: &StructSchema,
    values: &[Option<String>],
    replace: bool,
) {
    out.push('{');
    for (i, (f, v)) in schema.fields.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        jackson::write_str(out, &f.name);
        out.push(':');
        match (v, &f.default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) if replace => out.push_str(d),
            (None, _) => out.push_str("null"),
        }
    }
    out.push('}');
}

/// A value of a `source`/envelope field that a transform can copy (`add.fields`,
/// `add.headers`): strings and integers, or null.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Null,
    Str(String),
    Int(i64),
}

impl Scalar {
    pub(crate) fn payload(&self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Str(s) => {
                let mut out = String::new();
                jackson::write_str(&mut out, s);
                Some(out)
            }
            Scalar::Int(i) => Some(i.to_string()),
        }
    }

    /// The header value: `SimpleHeaderConverter`'s form is the raw string or the number's
    /// text, null a null header value; `JsonConverter`'s is `{"schema":<schema>,"payload":…}`
    /// (the payload alone without schemas; `null` for null).
    pub(crate) fn header(&self, format: crate::HeaderFormat, schema: &str) -> Option<Vec<u8>> {
        match format {
            crate::HeaderFormat::Simple => match self {
                Scalar::Null => None,
                Scalar::Str(s) => Some(s.clone().into_bytes()),
                Scalar::Int(i) => Some(i.to_string().into_bytes()),
            },
            crate::HeaderFormat::Json { schemas_enable } => {
                let payload = self.payload().unwrap_or_else(|| "null".to_owned());
                Some(
                    if schemas_enable {
                        format!(r#"{{"schema":{schema},"payload":{payload}}}"#)
                    } else {
                        payload
                    }
                    .into_bytes(),
                )
            }
        }
    }
}

/// The Debezium change-event envelope as a Connect struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The envelope schema's name (`<topic>.Envelope`).
    pub name: String,
    /// The `before`/`after` row schema (`<topic>.Value`, optional).
    pub row: StructSchema,
    pub before: Option<Vec<Option<String>>>,
    pub after: Option<Vec<Option<String>>>,
    /// The rendered `source` block payload.
    pub source_payload: String,
    /// The `source` block's fields, for `add.fields`/`add.headers`.
    pub source: Vec<(&'static str, Scalar)>,
    pub op: &'static str,
    pub ts_ns: i64,
}

/// A record's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordValue {
    /// No schema, no value: a tombstone.
    Tombstone,
    /// A value schema and a null value (`ExtractNewRecordState`'s `tombstone` mode): Kafka
    /// Connect's `JsonConverter` writes `{"schema":..,"payload":null}`, or `null` without
    /// schemas — not a tombstone.
    Null(StructSchema),
    /// The change-event envelope.
    Envelope(Box<Envelope>),
    /// A plain struct (the flattened row).
    Struct(StructValue),
}

/// Record headers in `SimpleHeaderConverter` form; `None` is a null value.
pub(crate) type HeaderList = Vec<(String, Option<Vec<u8>>)>;

/// A Connect source record going through the transform chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectRecord {
    pub topic: String,
    pub key: Option<StructValue>,
    pub value: RecordValue,
    /// Header values in `SimpleHeaderConverter` form; `None` is a null value.
    pub headers: HeaderList,
}

/// The envelope's schema fields after `before`/`after`.
const SOURCE_SCHEMA_TAIL: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}"#;

impl Envelope {
    fn write_schema(&self, out: &mut String) {
        out.push_str("{\"type\":\"struct\",\"fields\":[");
        self.row.write(out, Some("before"));
        out.push(',');
        self.row.write(out, Some("after"));
        out.push(',');
        out.push_str(SOURCE_SCHEMA_TAIL);
        out.push_str("],\"optional\":false,\"name\":");
        jackson::write_str(out, &self.name);
        out.push_str(",\"version\":2}");
    }

    fn write_payload(&self, out: &mut String, replace: bool) {
        out.push_str("{\"before\":");
        match &self.before {
            Some(v) => write_values(out, &self.row, v, replace),
            None => out.push_str("null"),
        }
        out.push_str(",\"after\":");
        match &self.after {
            Some(v) => write_values(out, &self.row, v, replace),
            None => out.push_str("null"),
        }
        out.push_str(",\"source\":");
        out.push_str(&self.source_payload);
        out.push_str(&format!(
            ",\"transaction\":null,\"op\":\"{}\",\"ts_ms\":{},\"ts_us\":{},\"ts_ns\":{}}}",
            self.op,
            self.ts_ns.div_euclid(1_000_000),
            self.ts_ns.div_euclid(1_000),
            self.ts_ns
        ));
    }
}

/// Serialisation settings of `JsonConverter` (key and value converters).
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonSettings {
    pub key_schemas: bool,
    pub value_schemas: bool,
    pub replace_null_with_default: bool,
}

impl ConnectRecord {
    /// Serialises the record as `JsonConverter` (key, value) and `SimpleHeaderConverter`
    /// (headers) do.
    pub(crate) fn serialise(self, s: JsonSettings) -> crate::KafkaRecord {
        let key = self.key.as_ref().map(|k| {
            let mut out = String::new();
            if s.key_schemas {
                out.push_str("{\"schema\":");
                k.schema.write(&mut out, None);
                out.push_str(",\"payload\":");
            }
            // Key fields are primary-key columns; JsonConverter's key converter setting is the
            // same `replace.null.with.default`.
            k.write_payload(&mut out, s.replace_null_with_default);
            if s.key_schemas {
                out.push('}');
            }
            out.into_bytes()
        });
        let value = match &self.value {
            RecordValue::Tombstone => None,
            RecordValue::Null(schema) => {
                let mut out = String::new();
                if s.value_schemas {
                    out.push_str("{\"schema\":");
                    schema.write(&mut out, None);
                    out.push_str(",\"payload\":null}");
                } else {
                    out.push_str("null");
                }
                Some(out.into_bytes())
            }
            RecordValue::Envelope(e) => {
                let mut out = String::with_capacity(2048);
                if s.value_schemas {
                    out.push_str("{\"schema\":");
                    e.write_schema(&mut out);
                    out.push_str(",\"payload\":");
                }
                e.write_payload(&mut out, s.replace_null_with_default);
                if s.value_schemas {
                    out.push('}');
                }
                Some(out.into_bytes())
            }
            RecordValue::Struct(v) => {
                let mut out = String::with_capacity(1024);
                if s.value_schemas {
                    out.push_str("{\"schema\":");
                    v.schema.write(&mut out, None);
                    out.push_str(",\"payload\":");
                }
                v.write_payload(&mut out, s.replace_null_with_default);
                if s.value_schemas {
                    out.push('}');
                }
                Some(out.into_bytes())
            }
        };
        crate::KafkaRecord {
            topic: self.topic.into(),
            key,
            value,
            // KafkaRecord has no null header values: a null is written empty (COMPATIBILITY.md).
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        }
    }
}
