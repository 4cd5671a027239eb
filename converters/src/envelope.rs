//! The Debezium change-event envelope, written as Kafka Connect's `JsonConverter` writes it.
//!
//! ```text
//! key   = {"schema":<Key struct>,"payload":{<key columns>}}          (None: no primary key)
//! value = {"schema":<Envelope v2>,"payload":{"before":..,"after":..,"source":{..},
//!          "transaction":null,"op":"c","ts_ms":..,"ts_us":..,"ts_ns":..}}
//! ```
//! With `*.schemas.enable=false` the key and value are the bare payloads. A delete is followed
//! by a tombstone (same key, no value) when `tombstones.on.delete` is on.
//!
//! Per table, the Connect schemas are rendered once and cached by relation id; the cache entry
//! is rebuilt when the event carries a different `TableSchema` (pointer change and content
//! change), so a relation message with new columns takes effect on the next event.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use pgseam_model::{
    ChangeEvent, ColumnSchema, Operation, SnapshotMarker, SourceInfo, TableSchema,
    TransactionBlock, Value,
};

use crate::avro::binary::{write_bytes, write_long, Plan};
use crate::columns::{write_truncated_str, ColumnMapper, FieldMapping};
use crate::field::{Kind, UNAVAILABLE_VALUE};
use crate::transforms::record::{
    ConnectRecord, FieldSchema, JsonSettings, RecordValue, Scalar, StructSchema, StructValue,
};
use crate::{
    default, jackson, ConvertError, JsonConverterConfig, KafkaRecord, MultidimensionalArrayMode,
    UnavailableArrayMode,
};

/// Debezium's version string in `source.version`.
pub const DEBEZIUM_VERSION: &str = "3.6.3.Final";
/// `source.connector`.
pub const CONNECTOR: &str = "postgresql";

/// The `source` block's schema (`io.debezium.connector.postgresql.Source`), with its field name.
pub(crate) const SOURCE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"}"#;

/// The transaction block's schema (`event.block`), with its field name.
pub(crate) const TRANSACTION_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}"#;

/// The envelope's trailing fields: `op` and the processing timestamps.
const ENVELOPE_TAIL_SCHEMA: &str = r#"{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}"#;

/// One column as rendered: name, representation, and its default's payload JSON.
#[derive(Debug)]
struct Field {
    name: String,
    kind: Kind,
    default: Option<String>,
    /// For a NOT NULL column: what Debezium's value converter writes for a null (the
    /// default, else the type's fallback, [`Kind::null_fallback`]), whatever
    /// `replace.null.with.default` says. `None` for nullable columns.
    null_as: Option<String>,
    /// The payload JSON of an unchanged TOAST value of this column
    /// ([`Kind::write_unavailable_for`], by the column's type name).
    unavailable: String,
    /// A geometric type Debezium writes through pgjdbc's `PGbox`/`PGcircle`/… text
    /// (`include.unknown.datatypes`): see [`crate::field::java_geometric`].
    geometric: bool,
    /// In the value struct (`column.include.list` / `column.exclude.list`; key columns are in
    /// the key whatever this says) and of a type Debezium maps.
    in_value: bool,
    /// Left out by the column filter. Debezium's streaming schema (rebuilt from pgoutput's
    /// Relation message, with optionality and defaults read through the column filter) then
    /// has it optional and without default: this shows in the key of a streamed event.
    filtered_out: bool,
    /// The column mapper's rewrite of value-struct values (never of key values).
    mapping: Option<FieldMapping>,
    /// Array levels of the kind (0: not an array): a value of another depth is written as
    /// one null per outer element ([`Field::adjusted`]).
    depth: usize,
    /// Warns about a value whose depth differs from the declared one
    /// (`pgseam.array.multidimensional.mode=nested` only: in Debezium's mode the nulls are
    /// the expected output).
    dimension_warning: Option<Arc<DimensionWarning>>,
    /// The schema parameters the mapper adds to the value field (`masked`, `truncateLength`,
    /// `__debezium.source.column.*`) as JSON object members; empty for none.
    value_params: String,
    /// The parameters of streamed (not snapshot) events, when they differ from
    /// `value_params` (`column.propagate.source.type`: a `serial` column, an unconstrained
    /// `numeric`).
    stream_value_params: Option<String>,
}

impl Field {
    /// The value as Debezium's converter sees it: a geometric type's text as pgjdbc's
    /// geometric classes print it; an array whose depth is not the schema's (a
    /// multi-dimensional value in Debezium's mode; a value that does not have the column's
    /// declared dimensions in nested mode) as one null per outer element.
    fn adjusted<'a>(
        &self,
        value: &'a Value,
        table: &TableSchema,
        column: &ColumnSchema,
    ) -> std::borrow::Cow<'a, Value> {
        match value {
            Value::Text(t) if self.geometric => {
                std::borrow::Cow::Owned(Value::Text(crate::field::java_geometric(t)))
            }
            Value::Array(items)
                if self.depth > 0
                    && !items.is_empty()
                    && crate::field::array_depth(items) != Some(self.depth) =>
            {
                if let Some(warning) = &self.dimension_warning {
                    warning.warn(table, column, crate::field::array_depth(items), self.depth);
                }
                std::borrow::Cow::Owned(Value::Array(vec![Value::Null; items.len()]))
            }
            _ => std::borrow::Cow::Borrowed(value),
        }
    }

    fn value_params(&self, stream: bool) -> &str {
        match &self.stream_value_params {
            Some(p) if stream => p,
            _ => &self.value_params,
        }
    }

    /// Whether the struct `part` carries this field.
    fn in_struct(&self, part: Part) -> bool {
        match part {
            Part::Value => self.in_value,
            Part::Key { .. } => !self.kind.is_omitted(),
        }
    }

    /// Whether `part` sees the column as Debezium's streaming schema of a filtered-out column
    /// (optional, no default).
    fn relaxed(&self, part: Part) -> bool {
        matches!(part, Part::Key { stream: true }) && self.filtered_out
    }

    fn null_as(&self, part: Part) -> Option<&String> {
        if self.relaxed(part) {
            None
        } else {
            self.null_as.as_ref()
        }
    }

    fn default(&self, part: Part) -> Option<&str> {
        if self.relaxed(part) {
            None
        } else {
            self.default.as_deref()
        }
    }

    fn optional(&self, column: &ColumnSchema, part: Part) -> bool {
        self.relaxed(part) || column.nullable
    }

    /// The extra schema parameters of the field in `part`; `stream`: of a streamed event.
    fn params(&self, part: Part, stream: bool) -> &str {
        match part {
            Part::Value => self.value_params(stream),
            Part::Key { .. } => "",
        }
    }
}

/// Which struct of a record is being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// `before` / `after`: filtered columns, mapped values.
    Value,
    /// The key (no filter, no mappers); `stream`: of a streamed (not snapshot) event.
    Key { stream: bool },
}

impl Part {
    fn key(op: Operation) -> Part {
        Part::Key {
            stream: op != Operation::Read,
        }
    }
}

/// Writes a mapped value-struct value as Debezium's column mapper leaves it (the mapper runs
/// on the value converter's result). `Ok(false)`: nothing written, the value is written as
/// usual (a null the mapper passes through, a value it does not change).
fn write_mapped(
    out: &mut String,
    field: &Field,
    mapping: &FieldMapping,
    value: &Value,
) -> Result<bool, String> {
    match mapping {
        FieldMapping::Mask(literal) => {
            out.push_str(literal);
            Ok(true)
        }
        FieldMapping::Hash {
            algorithm,
            salt,
            v2,
            max,
        } => {
            // The converted value: the text, the placeholder, or a NOT NULL column's
            // replacement for a null.
            let text = match (value, &field.null_as) {
                (Value::Null, None) => return Ok(false),
                (Value::Null, Some(null_as)) => match jackson::parse_str(null_as) {
                    Some(s) => s,
                    None => return Ok(false),
                },
                (Value::Text(s), _) => s.clone(),
                (Value::UnchangedToast, _) => UNAVAILABLE_VALUE.to_owned(),
                (other, _) => return Err(format!("{other:?} is not text, cannot hash it")),
            };
            let mut hex = FieldMapping::hash_hex(*algorithm, salt, *v2, &text);
            if let Some(max) = max {
                hex.truncate(*max);
            }
            jackson::write_str(out, &hex);
            Ok(true)
        }
        FieldMapping::Truncate(max) => {
            let max = *max;
            match (&field.kind, value) {
                (_, Value::Null) => Ok(false),
                (Kind::Binary(crate::BinaryHandlingMode::Bytes), Value::Bytes(b)) => {
                    let b = &b[..b.len().min(max)];
                    field.kind.write_value(out, &Value::Bytes(b.to_vec()))?;
                    Ok(true)
                }
                (Kind::Binary(crate::BinaryHandlingMode::Bytes), Value::UnchangedToast) => {
                    let b = UNAVAILABLE_VALUE.as_bytes();
                    let b = &b[..b.len().min(max)];
                    field.kind.write_value(out, &Value::Bytes(b.to_vec()))?;
                    Ok(true)
                }
                // Debezium's value is a BigDecimal or a Double here, not a string.
                (
                    Kind::Binary(crate::BinaryHandlingMode::Bytes)
                    | Kind::Decimal { .. }
                    | Kind::Float32
                    | Kind::Float64
                    | Kind::DecimalDouble,
                    _,
                ) => Ok(false),
                _ => {
                    let mut rendered = String::new();
                    field.kind.write_value(&mut rendered, value)?;
                    match rendered
                        .starts_with('"')
                        .then(|| jackson::parse_str(&rendered))
                        .flatten()
                    {
                        Some(text) => write_truncated_str(out, &text, max),
                        None => out.push_str(&rendered),
                    }
                    Ok(true)
                }
            }
        }
    }
}

/// The rate-limited warning about array values whose dimensions differ from their column's
/// declared ones (`pgseam.array.multidimensional.mode=nested`): at most one per column per
/// [`DimensionWarning::INTERVAL_SECS`], with the count of the values since the last one.
#[derive(Debug, Default)]
struct DimensionWarning {
    /// Seconds since the epoch of the last warning; 0: none yet.
    last: std::sync::atomic::AtomicU64,
    /// Values not warned about since the last warning.
    suppressed: std::sync::atomic::AtomicU64,
}

impl DimensionWarning {
    /// One warning a minute per column: enough to find the column, not one per row of a
    /// table full of such values.
    const INTERVAL_SECS: u64 = 60;

    fn warn(
        &self,
        table: &TableSchema,
        column: &ColumnSchema,
        actual: Option<usize>,
        declared: usize,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().max(1));
        let last = self.last.load(Relaxed);
        if last != 0 && now < last + Self::INTERVAL_SECS
            || self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Relaxed);
            return;
        }
        let suppressed = self.suppressed.swap(0, Relaxed);
        tracing::warn!(
            table = %table.qualified_name(),
            column = %column.name,
            declared_dimensions = declared,
            value_dimensions = actual.map_or_else(|| "unknown".to_owned(), |d| d.to_string()),
            suppressed_since_last_warning = suppressed,
            "an array value does not have its column's declared dimensions \
             (pgseam.array.multidimensional.mode=nested): written as one null per outer element"
        );
    }
}

/// The dimension warnings of a converter and its forks, by table and column: one rate limit per
/// column however many snapshot readers convert its values.
#[derive(Debug, Default)]
struct DimensionWarnings(std::sync::Mutex<HashMap<(u32, String), Arc<DimensionWarning>>>);

impl DimensionWarnings {
    fn for_column(&self, table: &TableSchema, column: &ColumnSchema) -> Arc<DimensionWarning> {
        let mut warnings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            warnings
                .entry((table.relation_id, column.name.clone()))
                .or_default(),
        )
    }
}

/// The cache entry of `table`, built when it is new or its schema changed (one hash lookup:
/// this runs for every row).
fn current_entry<'a>(
    tables: &'a mut HashMap<u32, TableEntry>,
    cfg: &JsonConverterConfig,
    warnings: &DimensionWarnings,
    table: &Arc<TableSchema>,
) -> &'a TableEntry {
    use std::collections::hash_map::Entry;
    match tables.entry(table.relation_id) {
        Entry::Occupied(occupied) => {
            let e = occupied.into_mut();
            if !Arc::ptr_eq(&e.table, table) {
                if *e.table == **table {
                    // Same content under a new allocation: keep the cheap pointer check
                    // effective.
                    e.table = Arc::clone(table);
                } else {
                    *e = TableEntry::build(cfg, table, warnings);
                }
            }
            e
        }
        Entry::Vacant(vacant) => vacant.insert(TableEntry::build(cfg, table, warnings)),
    }
}

/// Everything about a table that does not change from event to event.
#[derive(Debug)]
pub(crate) struct TableEntry {
    table: Arc<TableSchema>,
    topic: Arc<str>,
    /// The adjusted record schema names (`<topic>.Key`, `.Value`, `.Envelope`).
    key_name: String,
    value_name: String,
    envelope_name: String,
    fields: Vec<Field>,
    /// The key columns (the primary key, or `message.key.columns`), in key order.
    key_columns: Vec<usize>,
    /// Key struct schema JSON; `None` when the table has no key.
    key_schema: Option<String>,
    /// The key schema of streamed events, when it differs (a key column the column filter
    /// leaves out, see [`Field::filtered_out`]).
    stream_key_schema: Option<String>,
    /// Envelope schema JSON (of snapshot events).
    value_schema: String,
    /// The envelope schema of streamed events, when it differs (source type propagation, see
    /// [`Field::stream_value_params`]).
    stream_value_schema: Option<String>,
}

impl TableEntry {
    /// The envelope schema of a snapshot (`stream: false`) or streamed event.
    fn value_schema(&self, stream: bool) -> &str {
        match &self.stream_value_schema {
            Some(s) if stream => s,
            _ => &self.value_schema,
        }
    }

    fn build(
        cfg: &JsonConverterConfig,
        table: &Arc<TableSchema>,
        warnings: &DimensionWarnings,
    ) -> TableEntry {
        // Debezium's record schema names are the (sanitised) topic's, adjusted.
        let base = cfg
            .naming
            .topic(&[&cfg.topic_prefix, &table.schema, &table.table]);
        let key_name = cfg.naming.schema_name(&format!("{base}.Key"));
        let value_name = cfg.naming.schema_name(&format!("{base}.Value"));
        let envelope_name = cfg.naming.schema_name(&format!("{base}.Envelope"));
        let plan = (!cfg.columns.is_empty()).then(|| cfg.columns.plan(table));
        let fields: Vec<Field> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let nested = cfg.modes.multidimensional_arrays == MultidimensionalArrayMode::Nested;
                let kind = Kind::for_type(c, &c.type_name, &cfg.modes, cfg.decimal_format);
                let kind = if nested {
                    kind.nested(c.dimensions)
                } else {
                    kind
                };
                let default = default::default_value(c).and_then(|v| kind.render_default(&v));
                let null_as = (!c.nullable).then(|| {
                    default
                        .clone()
                        .unwrap_or_else(|| kind.null_fallback(c, &cfg.modes))
                });
                let mapping = match plan.as_ref().and_then(|p| p.mappers[i].as_ref()) {
                    Some(mapper) => FieldMapping::resolve(c, mapper).0,
                    None => None,
                };
                // The mapper's schema parameters. Source type propagation's depend on the
                // phase: the snapshot's column metadata (JDBC) and the stream's (relation
                // messages) differ for a `serial` column and an unconstrained `numeric`, and
                // a by-datatype rule sees the snapshot's type name. (Only integer columns can
                // match different rules in the two phases, and no mapper changes their values.)
                let (value_params, stream_value_params) = if plan.is_some() {
                    let id = format!("{}.{}.{}", table.schema, table.table, c.name);
                    let params =
                        |snapshot: bool| match cfg.columns.mapper_for(table, i, &id, snapshot) {
                            Some(ColumnMapper::PropagateSourceType { .. }) => {
                                crate::columns::source_type_parameters(c, snapshot)
                            }
                            Some(m) => {
                                let mut s = String::new();
                                if let (_, Some((k, v))) = FieldMapping::resolve(c, m) {
                                    jackson::write_str(&mut s, k);
                                    s.push(':');
                                    jackson::write_str(&mut s, &v);
                                }
                                s
                            }
                            None => String::new(),
                        };
                    let (snapshot, stream) = (params(true), params(false));
                    let stream = (stream != snapshot).then_some(stream);
                    (snapshot, stream)
                } else {
                    (String::new(), None)
                };
                let filtered_out = plan.as_ref().is_some_and(|p| !p.included[i]);
                let mut unavailable = String::new();
                kind.write_unavailable_for(&mut unavailable, &c.type_name);
                // Debezium's placeholders that read as data: null where the schema allows it.
                if cfg.modes.unavailable_arrays == UnavailableArrayMode::Null
                    && c.nullable
                    && matches!(c.type_name.as_str(), "_int4" | "_int8" | "_date" | "_uuid")
                {
                    unavailable = "null".to_owned();
                }
                let depth = kind.array_depth();
                Field {
                    unavailable,
                    depth,
                    dimension_warning: (nested && depth > 0).then(|| warnings.for_column(table, c)),
                    geometric: crate::field::GEOMETRIC_TYPES.contains(&c.type_name.as_str()),
                    name: cfg.naming.field_name(&c.name),
                    in_value: !kind.is_omitted() && !filtered_out,
                    filtered_out,
                    kind,
                    default,
                    null_as,
                    mapping,
                    value_params,
                    stream_value_params,
                }
            })
            .collect();
        let key_columns = match &plan {
            Some(p) => p.key_columns.clone(),
            None => table.key_columns.clone(),
        };
        let struct_fields = |idx: &mut dyn Iterator<Item = usize>, part: Part, stream: bool| {
            let mut s = String::from("[");
            for (n, i) in idx.filter(|i| fields[*i].in_struct(part)).enumerate() {
                if n > 0 {
                    s.push(',');
                }
                let f = &fields[i];
                f.kind.write_schema_with(
                    &mut s,
                    f.optional(&table.columns[i], part),
                    f.default(part),
                    Some(&f.name),
                    f.params(part, stream),
                );
            }
            s.push(']');
            s
        };
        let key_struct_schema = |stream: bool| {
            let mut s = String::from("{\"type\":\"struct\",\"fields\":");
            s.push_str(&struct_fields(
                &mut key_columns.iter().copied(),
                Part::Key { stream },
                stream,
            ));
            s.push_str(",\"optional\":false,\"name\":");
            jackson::write_str(&mut s, &key_name);
            s.push('}');
            s
        };
        let key_schema = (!key_columns.is_empty()).then(|| key_struct_schema(false));
        let stream_key_schema = key_columns
            .iter()
            .any(|i| fields[*i].filtered_out)
            .then(|| key_struct_schema(true));
        let envelope_schema = |stream: bool| {
            let row_fields = struct_fields(&mut (0..fields.len()), Part::Value, stream);
            let row_schema = |field: &str| {
                let mut s = String::from("{\"type\":\"struct\",\"fields\":");
                s.push_str(&row_fields);
                s.push_str(",\"optional\":true,\"name\":");
                jackson::write_str(&mut s, &value_name);
                s.push_str(",\"field\":");
                jackson::write_str(&mut s, field);
                s.push('}');
                s
            };
            let mut value_schema = String::from("{\"type\":\"struct\",\"fields\":[");
            value_schema.push_str(&row_schema("before"));
            value_schema.push(',');
            value_schema.push_str(&row_schema("after"));
            value_schema.push(',');
            value_schema.push_str(SOURCE_SCHEMA);
            value_schema.push(',');
            value_schema.push_str(TRANSACTION_SCHEMA);
            value_schema.push(',');
            value_schema.push_str(ENVELOPE_TAIL_SCHEMA);
            value_schema.push_str("],\"optional\":false,\"name\":");
            jackson::write_str(&mut value_schema, &envelope_name);
            value_schema.push_str(",\"version\":2}");
            value_schema
        };
        let value_schema = envelope_schema(false);
        let stream_value_schema = fields
            .iter()
            .any(|f| f.stream_value_params.is_some())
            .then(|| envelope_schema(true));
        TableEntry {
            table: Arc::clone(table),
            topic: Arc::from(base),
            key_name,
            value_name,
            envelope_name,
            fields,
            key_columns,
            key_schema,
            stream_key_schema,
            value_schema,
            stream_value_schema,
        }
    }
}

/// Converts [`ChangeEvent`]s to Kafka records with Debezium's JSON envelope.
#[derive(Debug)]
pub struct JsonConverter {
    cfg: JsonConverterConfig,
    headers: Arc<[(String, Vec<u8>)]>,
    tables: HashMap<u32, TableEntry>,
    /// Sizes of the last key and value written: the next buffers' capacities. A record of the
    /// same table is usually about as long, so the buffer neither grows (realloc + copy) nor
    /// wastes room, and a small record's buffer stays a small allocation (a fixed 1 KiB start
    /// made glibc consolidate its free lists on every record: 6% of a snapshot's CPU).
    size_hint: (usize, usize),
    /// Shared with the converter's forks.
    dimension_warnings: Arc<DimensionWarnings>,
}

impl JsonConverter {
    /// A converter for one connector instance. Its `runId` header is `cfg.run_id`, or a fresh
    /// random UUID when that is `None`.
    pub fn new(cfg: JsonConverterConfig) -> Self {
        let run_id = cfg
            .run_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let text = |s: &str| string_header(cfg.header_format, s);
        let headers: Arc<[(String, Vec<u8>)]> = Arc::from(vec![
            (
                "__debezium.context.connectorLogicalName".to_owned(),
                text(&cfg.topic_prefix),
            ),
            ("__debezium.context.taskId".to_owned(), text("0")),
            (
                "__debezium.context.connectorName".to_owned(),
                text(CONNECTOR),
            ),
            ("__debezium.context.runId".to_owned(), text(&run_id)),
        ]);
        JsonConverter {
            cfg,
            headers,
            tables: HashMap::new(),
            size_hint: (32, 256),
            dimension_warnings: Arc::default(),
        }
    }

    /// A converter for another thread of the same connector: the same configuration and
    /// headers (so the same `runId`), its own table cache. Each snapshot reader converts its
    /// rows with one (see `pgseam_connector_pg::snapshot::RowEncoder`); the records are the same
    /// bytes the original would write.
    pub fn fork(&self) -> JsonConverter {
        JsonConverter {
            cfg: self.cfg.clone(),
            headers: Arc::clone(&self.headers),
            tables: HashMap::new(),
            size_hint: self.size_hint,
            dimension_warnings: Arc::clone(&self.dimension_warnings),
        }
    }

    /// The configuration this converter was built with.
    pub fn config(&self) -> &JsonConverterConfig {
        &self.cfg
    }

    /// The Debezium extended headers every record carries, in the configured
    /// [`HeaderFormat`](crate::HeaderFormat) (by default `SimpleHeaderConverter`'s raw UTF-8
    /// strings).
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The Connect schemas of `table` as this converter renders them: the key struct (`None`
    /// without a primary key), the envelope of snapshot events and, when it differs (source
    /// type propagation), of streamed events, in JsonConverter's schema JSON.
    pub(crate) fn connect_schemas(
        &mut self,
        table: &Arc<TableSchema>,
    ) -> (Option<&str>, &str, Option<&str>) {
        let e = current_entry(&mut self.tables, &self.cfg, &self.dimension_warnings, table);
        (
            e.key_schema.as_deref(),
            &e.value_schema,
            e.stream_value_schema.as_deref(),
        )
    }

    /// Converts one event into its record(s): one, or two for a delete with tombstones on.
    /// `processing_time_ns` is the envelope's `ts_ns` (`ts_ms`/`ts_us` derive from it).
    pub fn convert(
        &mut self,
        event: &ChangeEvent,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), ConvertError> {
        // The two halves of a primary-key change carry the other key (Debezium's
        // `__debezium.newkey` / `__debezium.oldkey` headers).
        let key_change = match &event.key_change {
            Some(pgseam_model::KeyChangeRow::NewKey(row)) => Some(KeyChange::NewKey(row)),
            Some(pgseam_model::KeyChangeRow::OldKey(row)) => Some(KeyChange::OldKey(row)),
            None => None,
        };
        self.convert_with(event, key_change, None, processing_time_ns, None, out)
    }

    /// Converts one half of a primary-key change (an UPDATE whose key differs from the old
    /// key, which Debezium emits as delete + tombstone + create): as [`convert`](Self::convert),
    /// and every record also carries Debezium's key header first — `__debezium.newkey` on the
    /// delete and its tombstone, `__debezium.oldkey` on the create — holding the other key
    /// struct in `SimpleHeaderConverter` form (`{"id":20}`). `event` must be the delete
    /// (with [`KeyChange::NewKey`]) or the create (with [`KeyChange::OldKey`]).
    pub fn convert_key_change(
        &mut self,
        event: &ChangeEvent,
        key_change: KeyChange<'_>,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), ConvertError> {
        self.convert_with(event, Some(key_change), None, processing_time_ns, None, out)
    }

    /// As [`convert`](Self::convert) / [`convert_key_change`](Self::convert_key_change), with
    /// the event's `transaction` block (`provide.transaction.metadata=true`; see
    /// [`TransactionMonitor`](crate::TransactionMonitor)) instead of `null`.
    pub fn convert_in_transaction(
        &mut self,
        event: &ChangeEvent,
        key_change: Option<KeyChange<'_>>,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), ConvertError> {
        self.convert_with(
            event,
            key_change,
            transaction,
            processing_time_ns,
            None,
            out,
        )
    }

    /// As [`convert_in_transaction`](Self::convert_in_transaction), with the key and/or value
    /// written as framed Avro datums directly from the row values (`AvroConverter`; see
    /// `avro::binary`). Only without transforms: a transformed record is rendered as JSON.
    pub(crate) fn convert_avro(
        &mut self,
        event: &ChangeEvent,
        key_change: Option<KeyChange<'_>>,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
        avro: AvroParts<'_>,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), ConvertError> {
        debug_assert!(self.cfg.transforms.is_empty());
        self.convert_with(
            event,
            key_change,
            transaction,
            processing_time_ns,
            Some(avro),
            out,
        )
    }

    fn convert_with(
        &mut self,
        event: &ChangeEvent,
        key_change: Option<KeyChange<'_>>,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
        avro: Option<AvroParts<'_>>,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<(), ConvertError> {
        let avro = avro.unwrap_or_default();
        let cfg_key_schemas = self.cfg.key_schemas_enable;
        let cfg_value_schemas = self.cfg.value_schemas_enable;
        let replace = self.cfg.replace_null_with_default;
        let tombstones = self.cfg.tombstones_on_delete;
        let entry = current_entry(
            &mut self.tables,
            &self.cfg,
            &self.dimension_warnings,
            &event.table,
        );
        let prefix = self.cfg.topic_prefix.as_str();
        let table = &event.table;
        let other_key = key_change.map(|k| match k {
            KeyChange::NewKey(row) => ("__debezium.newkey", row),
            KeyChange::OldKey(row) => ("__debezium.oldkey", row),
        });
        for row in [event.before.as_deref(), event.after.as_deref()]
            .into_iter()
            .chain([other_key.map(|(_, row)| row)])
            .flatten()
        {
            if row.len() != table.columns.len() {
                return Err(ConvertError::RowShape {
                    table: table.qualified_name(),
                    expected: table.columns.len(),
                    actual: row.len(),
                });
            }
        }
        let unavailable = self
            .cfg
            .unavailable_header
            .then(|| unavailable_header_value(entry, event, self.cfg.header_format))
            .flatten();
        let headers: Arc<[(String, Vec<u8>)]> = match (other_key, unavailable) {
            (None, None) => Arc::clone(&self.headers),
            (other_key, unavailable) => {
                let mut h = Vec::with_capacity(self.headers.len() + 2);
                if let Some((name, row)) = other_key {
                    h.push((
                        name.to_owned(),
                        key_header_value(
                            entry,
                            table,
                            row,
                            Part::key(event.op),
                            self.cfg.header_format,
                        )?,
                    ));
                }
                h.extend(self.headers.iter().cloned());
                if let Some(value) = unavailable {
                    h.push((crate::UNAVAILABLE_HEADER.to_owned(), value));
                }
                Arc::from(h)
            }
        };

        let key = match (&entry.key_schema, event.op) {
            (None, _) | (_, Operation::Truncate) => None,
            (Some(key_schema), op) => {
                let part = Part::key(op);
                let key_schema = match (part, &entry.stream_key_schema) {
                    (Part::Key { stream: true }, Some(stream_schema)) => stream_schema,
                    _ => key_schema,
                };
                let row = if op == Operation::Delete {
                    event.before.as_ref().or(event.after.as_ref())
                } else {
                    event.after.as_ref().or(event.before.as_ref())
                };
                match row {
                    None => None,
                    Some(row) => match avro.key {
                        Some((plan, id)) => {
                            let mut b = framed(id, 32);
                            let fields = plan.fields().ok_or_else(|| avro_error(table, "key"))?;
                            write_avro_struct(
                                &mut b,
                                fields,
                                entry,
                                table,
                                row,
                                entry.key_columns.iter().copied(),
                                replace,
                                part,
                            )?;
                            Some(b)
                        }
                        None => {
                            let mut s = String::with_capacity(self.size_hint.0);
                            if cfg_key_schemas {
                                s.push_str("{\"schema\":");
                                s.push_str(key_schema);
                                s.push_str(",\"payload\":");
                            }
                            write_struct(
                                &mut s,
                                entry,
                                table,
                                row,
                                entry.key_columns.iter().copied(),
                                replace,
                                part,
                            )?;
                            if cfg_key_schemas {
                                s.push('}');
                            }
                            Some(s.into_bytes())
                        }
                    },
                }
            }
        };

        let after = resolve_unchanged_toast(event.before.as_deref(), event.after.as_deref());
        let value = match avro.value {
            Some((plan, id)) => {
                let mut b = framed(id, 512);
                write_avro_envelope(
                    &mut b,
                    plan,
                    entry,
                    event,
                    after.as_deref(),
                    transaction,
                    prefix,
                    replace,
                    processing_time_ns,
                )?;
                b
            }
            None => {
                let mut v = String::with_capacity(self.size_hint.1);
                if cfg_value_schemas {
                    v.push_str("{\"schema\":");
                    v.push_str(entry.value_schema(event.op != Operation::Read));
                    v.push_str(",\"payload\":");
                }
                v.push_str("{\"before\":");
                write_row(&mut v, entry, table, event.before.as_deref(), replace)?;
                v.push_str(",\"after\":");
                write_row(&mut v, entry, table, after.as_deref(), replace)?;
                v.push_str(",\"source\":");
                write_source(&mut v, prefix, &event.source, replace);
                v.push_str(",\"transaction\":");
                write_transaction_block(&mut v, transaction);
                v.push_str(",\"op\":\"");
                v.push_str(event.op.code());
                v.push_str("\",\"ts_ms\":");
                jackson::write_i64(&mut v, processing_time_ns.div_euclid(1_000_000));
                v.push_str(",\"ts_us\":");
                jackson::write_i64(&mut v, processing_time_ns.div_euclid(1_000));
                v.push_str(",\"ts_ns\":");
                jackson::write_i64(&mut v, processing_time_ns);
                v.push('}');
                if cfg_value_schemas {
                    v.push('}');
                }
                // Slack for a slightly longer next record.
                self.size_hint = (
                    key.as_ref().map_or(self.size_hint.0, |k| k.len() + 8),
                    v.len() + v.len() / 16 + 16,
                );
                v.into_bytes()
            }
        };
        if !self.cfg.transforms.is_empty() {
            let key_struct = match (&entry.key_schema, event.op) {
                (None, _) | (_, Operation::Truncate) => None,
                (Some(_), op) => {
                    let row = if op == Operation::Delete {
                        event.before.as_ref().or(event.after.as_ref())
                    } else {
                        event.after.as_ref().or(event.before.as_ref())
                    };
                    row.map(|row| key_struct(entry, table, row, Part::key(op)))
                        .transpose()?
                }
            };
            let row_schema = row_struct_schema(entry, table, event.op != Operation::Read);
            let before = event
                .before
                .as_deref()
                .map(|r| struct_values(entry, table, r, 0..r.len(), Part::Value))
                .transpose()?;
            let after = after
                .as_deref()
                .map(|r| struct_values(entry, table, r, 0..r.len(), Part::Value))
                .transpose()?;
            let mut source_payload = String::with_capacity(512);
            write_source(&mut source_payload, prefix, &event.source, replace);
            let envelope = crate::transforms::record::Envelope {
                name: entry.envelope_name.clone(),
                row: row_schema,
                before,
                after,
                source_payload,
                source: source_scalars(prefix, event),
                op: event.op.code(),
                ts_ns: processing_time_ns,
            };
            let hdrs: Vec<(String, Option<Vec<u8>>)> = headers
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            let record = ConnectRecord {
                topic: entry.topic.to_string(),
                key: key_struct,
                value: RecordValue::Envelope(Box::new(envelope)),
                headers: hdrs.clone(),
            };
            let tombstone = (event.op == Operation::Delete && tombstones).then(|| ConnectRecord {
                topic: entry.topic.to_string(),
                key: record.key.clone(),
                value: RecordValue::Tombstone,
                headers: hdrs,
            });
            let settings = JsonSettings {
                key_schemas: cfg_key_schemas,
                value_schemas: cfg_value_schemas,
                replace_null_with_default: replace,
            };
            for r in self
                .cfg
                .transforms
                .apply_event(record, tombstone, self.cfg.header_format)?
                .into_iter()
                .flatten()
            {
                out.push(r.serialise(settings));
            }
            return Ok(());
        }
        let tombstone = (event.op == Operation::Delete && tombstones).then(|| KafkaRecord {
            topic: Arc::clone(&entry.topic),
            key: key.clone(),
            value: None,
            headers: Arc::clone(&headers),
        });
        out.push(KafkaRecord {
            topic: Arc::clone(&entry.topic),
            key,
            value: Some(value),
            headers,
        });
        out.extend(tombstone);
        Ok(())
    }
}

/// The Avro plans and registered schema ids of an `AvroConverter`'s key and value (`None`:
/// that part is JSON).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AvroParts<'a> {
    pub(crate) key: Option<(&'a Plan, u32)>,
    pub(crate) value: Option<(&'a Plan, u32)>,
}

/// A buffer holding the Schema Registry framing of `schema_id`.
fn framed(schema_id: u32, datum: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum);
    out.push(crate::avro::registry::MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out
}

fn avro_error(table: &TableSchema, reason: &str) -> ConvertError {
    ConvertError::Avro {
        table: table.qualified_name(),
        reason: format!("the Avro plan does not fit the {reason}"),
    }
}

/// The Avro envelope (`<topic>.Envelope` as AvroData maps it): before, after, source,
/// transaction, op, ts_ms, ts_us, ts_ns — the fields [`JsonConverter::convert_with`] writes as
/// JSON, in the same order, with the same values.
#[allow(clippy::too_many_arguments)]
fn write_avro_envelope(
    out: &mut Vec<u8>,
    plan: &Plan,
    entry: &TableEntry,
    event: &ChangeEvent,
    after: Option<&[Value]>,
    transaction: Option<&TransactionBlock>,
    prefix: &str,
    replace: bool,
    processing_time_ns: i64,
) -> Result<(), ConvertError> {
    let table = &event.table;
    let row_plan = plan
        .fields()
        .and_then(|f| f.first())
        .map(|(_, p)| p)
        .ok_or_else(|| avro_error(table, "envelope"))?;
    let row_fields = row_plan
        .fields()
        .ok_or_else(|| avro_error(table, "row struct"))?;
    for row in [event.before.as_deref(), after] {
        match row {
            None => row_plan
                .write_null(out)
                .map_err(|reason| ConvertError::Avro {
                    table: table.qualified_name(),
                    reason,
                })?,
            Some(row) => {
                row_plan.write_present(out);
                write_avro_struct(
                    out,
                    row_fields,
                    entry,
                    table,
                    row,
                    0..row.len(),
                    replace,
                    Part::Value,
                )?;
            }
        }
    }
    write_avro_source(out, prefix, &event.source, replace);
    match transaction {
        None => out.push(0),
        Some(b) => {
            out.push(2);
            write_bytes(out, b.id.as_bytes());
            write_long(out, b.total_order as i64);
            write_long(out, b.data_collection_order as i64);
        }
    }
    write_bytes(out, event.op.code().as_bytes());
    for v in [
        processing_time_ns.div_euclid(1_000_000),
        processing_time_ns.div_euclid(1_000),
        processing_time_ns,
    ] {
        out.push(2);
        write_long(out, v);
    }
    Ok(())
}

/// The `source` block as [`write_source`] writes it, in Avro: `snapshot` is
/// `[string, "null"]` (it has a default), the other optional fields `["null", T]`.
fn write_avro_source(out: &mut Vec<u8>, prefix: &str, src: &SourceInfo, replace: bool) {
    write_bytes(out, DEBEZIUM_VERSION.as_bytes());
    write_bytes(out, CONNECTOR.as_bytes());
    write_bytes(out, prefix.as_bytes());
    write_long(out, src.ts_us.div_euclid(1000));
    if src.snapshot == SnapshotMarker::False && !replace {
        out.push(2);
    } else {
        out.push(0);
        write_bytes(out, src.snapshot.as_str().as_bytes());
    }
    write_bytes(out, src.db.as_bytes());
    let mut seq = String::with_capacity(48);
    seq.push('[');
    match src.last_commit_lsn {
        Some(l) => {
            let _ = write!(seq, "\"{}\"", l.0);
        }
        None => seq.push_str("null"),
    }
    match src.lsn {
        Some(l) => {
            let _ = write!(seq, ",\"{}\"]", l.0);
        }
        None => seq.push_str(",null]"),
    }
    out.push(2);
    write_bytes(out, seq.as_bytes());
    out.push(2);
    write_long(out, src.ts_us);
    out.push(2);
    write_long(out, src.ts_us.saturating_mul(1000));
    write_bytes(out, src.schema.as_bytes());
    write_bytes(out, src.table.as_bytes());
    for v in [src.emitted_tx_id(), src.emitted_lsn().map(|l| l.0 as i64)] {
        match v {
            Some(v) => {
                out.push(2);
                write_long(out, v);
            }
            None => out.push(0),
        }
    }
    // xmin, origin, origin_lsn
    out.extend_from_slice(&[0, 0, 0]);
}

/// [`write_struct`] in Avro: each field's value is written directly when its kind allows
/// ([`avro_scalar`]), else rendered as JSON (the golden-verified form) and transcoded.
#[allow(clippy::too_many_arguments)]
fn write_avro_struct(
    out: &mut Vec<u8>,
    plans: &[(String, Plan)],
    entry: &TableEntry,
    table: &TableSchema,
    row: &[Value],
    columns: impl Iterator<Item = usize>,
    replace: bool,
    part: Part,
) -> Result<(), ConvertError> {
    let mut plans = plans.iter();
    let mut scratch = String::new();
    for i in columns.filter(|i| entry.fields[*i].in_struct(part)) {
        let field = &entry.fields[i];
        let err = |reason: String| column_error(table, &table.columns[i], reason);
        let (name, plan) = plans
            .next()
            .ok_or_else(|| err("the Avro record has fewer fields than the row".into()))?;
        debug_assert_eq!(name, &field.name, "Avro plan and row out of step");
        if part == Part::Value {
            if let Some(mapping) = &field.mapping {
                scratch.clear();
                if write_mapped(&mut scratch, field, mapping, &row[i]).map_err(err)? {
                    plan.transcode(scratch.as_bytes(), out).map_err(err)?;
                    continue;
                }
            }
        }
        match (&row[i], field.null_as(part), field.default(part)) {
            (Value::Null, Some(null_as), _) => plan.transcode(null_as.as_bytes(), out),
            (Value::Null, None, Some(default)) if replace => {
                plan.transcode(default.as_bytes(), out)
            }
            (Value::Null, _, _) => plan.write_null(out),
            (Value::UnchangedToast, _, _) if field.unavailable == "null" => plan.write_null(out),
            (Value::UnchangedToast, _, _) => plan.transcode(field.unavailable.as_bytes(), out),
            (value, _, _) => {
                let value = &*field.adjusted(value, table, &table.columns[i]);
                if avro_scalar(plan, &field.kind, value, out, &mut scratch) {
                    Ok(())
                } else {
                    scratch.clear();
                    field.kind.write_value(&mut scratch, value).map_err(err)?;
                    plan.transcode(scratch.as_bytes(), out)
                }
            }
        }
        .map_err(err)?;
    }
    Ok(())
}

/// Writes the common kinds' non-null values straight into Avro, with the numbers and text
/// [`Kind::write_value`] would put in JSON. `false`: not one of them (nothing written).
fn avro_scalar(
    plan: &Plan,
    kind: &Kind,
    value: &Value,
    out: &mut Vec<u8>,
    scratch: &mut String,
) -> bool {
    use crate::avro::binary::Scalar as S;
    let decimal_bytes;
    let scalar = match (kind, value) {
        (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int16(v)) => S::Long(i64::from(*v)),
        (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int32(v)) => S::Long(i64::from(*v)),
        (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int64(v)) => S::Long(*v),
        (Kind::Float32, Value::Float32(v)) => S::Float(*v),
        (Kind::Float64, Value::Float64(v)) => S::Double(*v),
        (Kind::Float64, Value::Float32(v)) => S::Double(f64::from(*v)),
        (Kind::Boolean, Value::Bool(b)) => S::Bool(*b),
        (
            Kind::String | Kind::Uuid | Kind::Json | Kind::Xml | Kind::Enum { .. },
            Value::Text(s) | Value::Uuid(s) | Value::Json(s),
        ) => S::Str(s.as_bytes()),
        (Kind::Binary(crate::BinaryHandlingMode::Bytes), Value::Bytes(b)) => S::Bytes(b),
        (
            Kind::Decimal {
                scale,
                numeric: false,
                ..
            },
            Value::Numeric(pgseam_model::Numeric::Finite(t)),
        ) => match crate::decimal::Decimal::parse(t) {
            Some(d) => {
                decimal_bytes = d.with_scale(*scale).unscaled_bytes();
                S::Bytes(&decimal_bytes)
            }
            None => return false,
        },
        (Kind::Date | Kind::ConnectDate, Value::Date(d)) => S::Long(i64::from(*d)),
        (Kind::Time | Kind::ConnectTime, Value::Time(us)) => S::Long(us.div_euclid(1000)),
        (Kind::MicroTime, Value::Time(us)) => S::Long(*us),
        (
            Kind::Timestamp | Kind::ConnectTimestamp,
            Value::Timestamp(us) | Value::TimestampTz(us),
        ) => S::Long(us.div_euclid(1000)),
        (Kind::MicroTimestamp, Value::Timestamp(us) | Value::TimestampTz(us)) => {
            S::Long(crate::field::java_epoch_micros(i128::from(*us)))
        }
        (
            Kind::ZonedTimestamp { fraction_digits },
            Value::TimestampTz(us) | Value::Timestamp(us),
        ) => {
            scratch.clear();
            crate::field::push_zoned_timestamp(scratch, i128::from(*us), *fraction_digits);
            S::Str(scratch.as_bytes())
        }
        (
            Kind::Decimal {
                scale: 2,
                numeric: false,
                ..
            },
            Value::Money(cents),
        ) => {
            decimal_bytes = crate::decimal::i64_bytes(*cents);
            S::Bytes(&decimal_bytes)
        }
        (Kind::DecimalString, Value::Numeric(n)) => S::Str(match n {
            pgseam_model::Numeric::Finite(t) => t.as_bytes(),
            pgseam_model::Numeric::NaN => b"NAN",
            pgseam_model::Numeric::PositiveInfinity => b"POSITIVE_INFINITY",
            pgseam_model::Numeric::NegativeInfinity => b"NEGATIVE_INFINITY",
        }),
        // Base64 and hex need no JSON escaping: the quoted text minus its quotes.
        (Kind::Binary(mode), Value::Bytes(b)) => {
            scratch.clear();
            crate::field::push_binary(scratch, *mode, b);
            S::Str(&scratch.as_bytes()[1..scratch.len() - 1])
        }
        (Kind::NanoTime, Value::Time(us)) => S::Long(us.saturating_mul(1000)),
        (Kind::NanoTimestamp, Value::Timestamp(us) | Value::TimestampTz(us)) => {
            match i64::try_from(i128::from(*us) * 1000) {
                Ok(ns) => S::Long(ns),
                // Debezium writes null: the JSON path handles it.
                Err(_) => return false,
            }
        }
        (
            Kind::MicroDuration,
            Value::Interval {
                months,
                days,
                micros,
            },
        ) => S::Long(crate::field::interval_micros(*months, *days, *micros)),
        (
            Kind::ZonedTime,
            Value::TimeTz {
                micros,
                offset_seconds,
            },
        ) => {
            let utc = (micros - i64::from(*offset_seconds) * 1_000_000)
                .rem_euclid(pgseam_pgvalue::datetime::MICROS_PER_DAY);
            scratch.clear();
            scratch.push_str(&crate::field::format_zoned_time(utc));
            S::Str(scratch.as_bytes())
        }
        _ => return false,
    };
    plan.write_scalar(scalar, out)
}

/// The other key of a primary-key change, for Debezium's `__debezium.newkey` /
/// `__debezium.oldkey` headers ([`JsonConverter::convert_key_change`]). The row is a whole row
/// of the table (only its key columns are read): the source has both tuples of the UPDATE.
#[derive(Clone, Copy, Debug)]
pub enum KeyChange<'a> {
    /// On the delete of the old key (and its tombstone): the UPDATE's new row.
    NewKey(&'a [Value]),
    /// On the create of the new key: the UPDATE's old row (under the default replica identity
    /// pgoutput's old-key tuple, key columns set, the rest null).
    OldKey(&'a [Value]),
}

/// A string header's value in `format` (`JsonConverter`: schema `string`, not optional).
fn string_header(format: crate::HeaderFormat, s: &str) -> Vec<u8> {
    match format {
        crate::HeaderFormat::Simple => s.as_bytes().to_vec(),
        crate::HeaderFormat::Json { schemas_enable } => {
            let mut out = String::with_capacity(s.len() + 48);
            if schemas_enable {
                out.push_str(r#"{"schema":{"type":"string","optional":false},"payload":"#);
            }
            jackson::write_str(&mut out, s);
            if schemas_enable {
                out.push('}');
            }
            out.into_bytes()
        }
    }
}

/// The key struct of `row` in `format`: `SimpleHeaderConverter`'s `Values.convertToString`,
/// or what `JsonConverter` writes for the record key (`{"schema":<key schema>,"payload":…}`,
/// golden `04_update_pk`).
/// The [`crate::UNAVAILABLE_HEADER`] value of `event`: the (adjusted) names of the fields
/// whose `after` value is an unchanged TOAST value, as a Connect `array<string>` in the
/// header converter's form. `None` when there are none.
fn unavailable_header_value(
    entry: &TableEntry,
    event: &ChangeEvent,
    format: crate::HeaderFormat,
) -> Option<Vec<u8>> {
    let after = event.after.as_deref()?;
    let names: Vec<Value> = after
        .iter()
        .zip(&entry.fields)
        .filter(|(v, f)| matches!(v, Value::UnchangedToast) && f.in_struct(Part::Value))
        .map(|(_, f)| Value::Text(f.name.clone()))
        .collect();
    if names.is_empty() {
        return None;
    }
    let names = Value::Array(names);
    let kind = Kind::Array(Box::new(Kind::String));
    let mut s = String::new();
    match format {
        crate::HeaderFormat::Simple => kind.write_connect_string(&mut s, &names).ok()?,
        crate::HeaderFormat::Json { schemas_enable } => {
            if schemas_enable {
                s.push_str(
                    r#"{"schema":{"type":"array","items":{"type":"string","optional":false},"optional":false},"payload":"#,
                );
            }
            kind.write_value(&mut s, &names).ok()?;
            if schemas_enable {
                s.push('}');
            }
        }
    }
    Some(s.into_bytes())
}

fn key_header_value(
    entry: &TableEntry,
    table: &TableSchema,
    row: &[Value],
    part: Part,
    format: crate::HeaderFormat,
) -> Result<Vec<u8>, ConvertError> {
    if let crate::HeaderFormat::Json { schemas_enable } = format {
        let mut s = String::with_capacity(256);
        if schemas_enable {
            let key_schema = match (part, &entry.stream_key_schema, &entry.key_schema) {
                (Part::Key { stream: true }, Some(stream_schema), _) => stream_schema,
                (_, _, Some(key_schema)) => key_schema,
                // A key change needs a key: the caller only asks for tables that have one.
                _ => "null",
            };
            s.push_str("{\"schema\":");
            s.push_str(key_schema);
            s.push_str(",\"payload\":");
        }
        write_struct(
            &mut s,
            entry,
            table,
            row,
            entry.key_columns.iter().copied(),
            true,
            part,
        )?;
        if schemas_enable {
            s.push('}');
        }
        return Ok(s.into_bytes());
    }
    let mut s = String::from("{");
    for (n, &i) in entry
        .key_columns
        .iter()
        .filter(|i| entry.fields[**i].in_struct(part))
        .enumerate()
    {
        if n > 0 {
            s.push(',');
        }
        let field = &entry.fields[i];
        s.push('"');
        for c in field.name.chars() {
            if c == '\\' || c == '"' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push_str("\":");
        match (&row[i], field.null_as(part)) {
            (Value::Null, Some(null_as)) => s.push_str(null_as),
            (value, _) => field
                .kind
                .write_connect_string(&mut s, value)
                .map_err(|reason| column_error(table, &table.columns[i], reason))?,
        }
    }
    s.push('}');
    Ok(s.into_bytes())
}

/// Under REPLICA IDENTITY FULL the old tuple carries the TOASTed values an UPDATE left
/// unchanged; Debezium then writes the real value in `after` instead of the placeholder.
fn resolve_unchanged_toast<'a>(
    before: Option<&[Value]>,
    after: Option<&'a [Value]>,
) -> Option<std::borrow::Cow<'a, [Value]>> {
    let after = after?;
    let Some(before) = before else {
        return Some(std::borrow::Cow::Borrowed(after));
    };
    let fillable = |i: usize| {
        matches!(after[i], Value::UnchangedToast)
            && before
                .get(i)
                .is_some_and(|b| !matches!(b, Value::UnchangedToast | Value::Null))
    };
    if !(0..after.len()).any(fillable) {
        return Some(std::borrow::Cow::Borrowed(after));
    }
    let row = (0..after.len())
        .map(|i| {
            if fillable(i) {
                before[i].clone()
            } else {
                after[i].clone()
            }
        })
        .collect();
    Some(std::borrow::Cow::Owned(row))
}

fn write_row(
    out: &mut String,
    entry: &TableEntry,
    table: &TableSchema,
    row: Option<&[Value]>,
    replace: bool,
) -> Result<(), ConvertError> {
    match row {
        None => {
            out.push_str("null");
            Ok(())
        }
        Some(row) => write_struct(out, entry, table, row, 0..row.len(), replace, Part::Value),
    }
}

/// Writes `{"col":value,...}` for the given column indices. A null in a NOT NULL column is
/// written as Debezium's converter writes it (its default, else the type's fallback); with
/// `replace` (JsonConverter's `replace.null.with.default`), a null in a nullable column with a
/// default is written as the default.
fn write_struct(
    out: &mut String,
    entry: &TableEntry,
    table: &TableSchema,
    row: &[Value],
    columns: impl Iterator<Item = usize>,
    replace: bool,
    part: Part,
) -> Result<(), ConvertError> {
    out.push('{');
    for (n, i) in columns
        .filter(|i| entry.fields[*i].in_struct(part))
        .enumerate()
    {
        if n > 0 {
            out.push(',');
        }
        let field = &entry.fields[i];
        jackson::write_str(out, &field.name);
        out.push(':');
        if part == Part::Value {
            if let Some(mapping) = &field.mapping {
                if write_mapped(out, field, mapping, &row[i])
                    .map_err(|reason| column_error(table, &table.columns[i], reason))?
                {
                    continue;
                }
            }
        }
        match (&row[i], field.null_as(part), field.default(part)) {
            (Value::Null, Some(null_as), _) => out.push_str(null_as),
            (Value::Null, None, Some(default)) if replace => out.push_str(default),
            (Value::UnchangedToast, _, _) => out.push_str(&field.unavailable),
            (value, _, _) => field
                .kind
                .write_value(out, &field.adjusted(value, table, &table.columns[i]))
                .map_err(|reason| column_error(table, &table.columns[i], reason))?,
        }
    }
    out.push('}');
    Ok(())
}

/// The `<topic>.Value` row schema as a Connect struct schema (the `before`/`after` field).
/// `stream`: of a streamed (not snapshot) event.
fn row_struct_schema(entry: &TableEntry, table: &TableSchema, stream: bool) -> StructSchema {
    StructSchema {
        name: Some(entry.value_name.clone()),
        optional: true,
        version: None,
        fields: field_schemas(entry, table, 0..entry.fields.len(), Part::Value, stream),
    }
}

fn field_schemas(
    entry: &TableEntry,
    table: &TableSchema,
    columns: impl Iterator<Item = usize>,
    part: Part,
    stream: bool,
) -> Vec<FieldSchema> {
    columns
        .filter(|i| entry.fields[*i].in_struct(part))
        .map(|i| {
            let f = &entry.fields[i];
            let nullable = f.optional(&table.columns[i], part);
            let mut schema = String::new();
            f.kind.write_schema_with(
                &mut schema,
                nullable,
                f.default(part),
                None,
                f.params(part, stream),
            );
            FieldSchema {
                name: f.name.clone(),
                schema,
                default: f.default(part).map(str::to_owned),
                optional: nullable,
            }
        })
        .collect()
}

/// The key struct of `row` (schema `<topic>.Key`).
fn key_struct(
    entry: &TableEntry,
    table: &TableSchema,
    row: &[Value],
    part: Part,
) -> Result<StructValue, ConvertError> {
    Ok(StructValue {
        schema: StructSchema {
            name: Some(entry.key_name.clone()),
            optional: false,
            version: None,
            fields: field_schemas(entry, table, entry.key_columns.iter().copied(), part, false),
        },
        values: struct_values(entry, table, row, entry.key_columns.iter().copied(), part)?,
    })
}

/// The values of a struct as the connector creates it: a null in a NOT NULL column is already
/// Debezium's replacement; other nulls stay null (the default is the serialiser's business).
fn struct_values(
    entry: &TableEntry,
    table: &TableSchema,
    row: &[Value],
    columns: impl Iterator<Item = usize>,
    part: Part,
) -> Result<Vec<Option<String>>, ConvertError> {
    columns
        .filter(|i| entry.fields[*i].in_struct(part))
        .map(|i| {
            let field = &entry.fields[i];
            if part == Part::Value {
                if let Some(mapping) = &field.mapping {
                    let mut s = String::new();
                    if write_mapped(&mut s, field, mapping, &row[i])
                        .map_err(|reason| column_error(table, &table.columns[i], reason))?
                    {
                        return Ok((s != "null").then_some(s));
                    }
                }
            }
            match (&row[i], field.null_as(part)) {
                (Value::Null, Some(null_as)) => Ok(Some(null_as.clone())),
                (Value::Null, None) => Ok(None),
                (Value::UnchangedToast, _) => {
                    Ok((field.unavailable != "null").then(|| field.unavailable.clone()))
                }
                (value, _) => {
                    let mut s = String::new();
                    field
                        .kind
                        .write_value(&mut s, &field.adjusted(value, table, &table.columns[i]))
                        .map_err(|reason| column_error(table, &table.columns[i], reason))?;
                    Ok(Some(s))
                }
            }
        })
        .collect()
}

/// The `source` block's fields as the connector sets them (no schema defaults applied: a
/// streamed change's `snapshot` is null).
fn source_scalars(prefix: &str, event: &ChangeEvent) -> Vec<(&'static str, Scalar)> {
    let src = &event.source;
    let seq = format!(
        "[{},{}]",
        src.last_commit_lsn
            .map_or("null".to_owned(), |l| format!("\"{}\"", l.0)),
        src.lsn
            .map_or("null".to_owned(), |l| format!("\"{}\"", l.0)),
    );
    let opt = |v: Option<i64>| v.map_or(Scalar::Null, Scalar::Int);
    vec![
        ("version", Scalar::Str(DEBEZIUM_VERSION.to_owned())),
        ("connector", Scalar::Str(CONNECTOR.to_owned())),
        ("name", Scalar::Str(prefix.to_owned())),
        ("ts_ms", Scalar::Int(src.ts_us.div_euclid(1000))),
        (
            "snapshot",
            match src.snapshot {
                SnapshotMarker::False => Scalar::Null,
                m => Scalar::Str(m.as_str().to_owned()),
            },
        ),
        ("db", Scalar::Str(src.db.to_string())),
        ("sequence", Scalar::Str(seq)),
        ("ts_us", Scalar::Int(src.ts_us)),
        ("ts_ns", Scalar::Int(src.ts_us.saturating_mul(1000))),
        ("schema", Scalar::Str(src.schema.to_string())),
        ("table", Scalar::Str(src.table.to_string())),
        ("txId", opt(src.emitted_tx_id())),
        ("lsn", opt(src.emitted_lsn().map(|l| l.0 as i64))),
        ("xmin", Scalar::Null),
        ("origin", Scalar::Null),
        ("origin_lsn", Scalar::Null),
    ]
}

fn column_error(table: &TableSchema, column: &ColumnSchema, reason: String) -> ConvertError {
    ConvertError::Value {
        table: table.qualified_name(),
        column: column.name.clone(),
        type_name: column.type_name.clone(),
        reason,
    }
}

/// Writes Debezium's PostgreSQL `source` block. Outside the snapshot Debezium leaves
/// `snapshot` null; JsonConverter writes its schema default `"false"` in its place unless
/// `replace.null.with.default=false` (then `null`, captured in
/// `tests/fixtures/notnull/golden/modes_c.jsonl`).
pub(crate) fn write_source(out: &mut String, prefix: &str, src: &SourceInfo, replace: bool) {
    out.push_str("{\"version\":\"");
    out.push_str(DEBEZIUM_VERSION);
    out.push_str("\",\"connector\":\"");
    out.push_str(CONNECTOR);
    out.push_str("\",\"name\":");
    jackson::write_str(out, prefix);
    out.push_str(",\"ts_ms\":");
    jackson::write_i64(out, src.ts_us.div_euclid(1000));
    out.push_str(",\"snapshot\":");
    if src.snapshot == SnapshotMarker::False && !replace {
        out.push_str("null");
    } else {
        out.push('"');
        out.push_str(src.snapshot.as_str());
        out.push('"');
    }
    out.push_str(",\"db\":");
    jackson::write_str(out, &src.db);
    // The sequence is a JSON string holding a JSON array of two strings (LSNs in decimal),
    // `"[\"123\",\"456\"]"` as write_str escapes it, written without the temporary string.
    out.push_str(",\"sequence\":\"[");
    let mut digits = itoa::Buffer::new();
    match src.last_commit_lsn {
        Some(l) => {
            out.push_str("\\\"");
            out.push_str(digits.format(l.0));
            out.push_str("\\\"");
        }
        None => out.push_str("null"),
    }
    match src.lsn {
        Some(l) => {
            out.push_str(",\\\"");
            out.push_str(digits.format(l.0));
            out.push_str("\\\"]\"");
        }
        None => out.push_str(",null]\""),
    }
    out.push_str(",\"ts_us\":");
    jackson::write_i64(out, src.ts_us);
    out.push_str(",\"ts_ns\":");
    jackson::write_i64(out, src.ts_us.saturating_mul(1000));
    out.push_str(",\"schema\":");
    jackson::write_str(out, &src.schema);
    out.push_str(",\"table\":");
    jackson::write_str(out, &src.table);
    out.push_str(",\"txId\":");
    match src.emitted_tx_id() {
        Some(x) => jackson::write_i64(out, x),
        None => out.push_str("null"),
    }
    out.push_str(",\"lsn\":");
    match src.emitted_lsn() {
        Some(l) => out.push_str(digits.format(l.0)),
        None => out.push_str("null"),
    }
    out.push_str(",\"xmin\":null,\"origin\":null,\"origin_lsn\":null}");
}

/// Writes the `transaction` block (`event.block`), or `null`.
pub(crate) fn write_transaction_block(out: &mut String, block: Option<&TransactionBlock>) {
    match block {
        None => out.push_str("null"),
        Some(b) => {
            out.push_str("{\"id\":");
            jackson::write_str(out, &b.id);
            let _ = write!(
                out,
                ",\"total_order\":{},\"data_collection_order\":{}}}",
                b.total_order, b.data_collection_order
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgseam_model::{Lsn, Position, SnapshotMarker, SourceInfo};

    fn column(name: &str, ty: &str, nullable: bool, default: Option<&str>) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            type_oid: 0,
            type_name: ty.into(),
            base_type_oid: 0,
            type_modifier: -1,
            nullable,
            default_expr: default.map(str::to_owned),
            enum_values: None,
            dimensions: 0,
        }
    }

    fn table(key: Vec<usize>) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            relation_id: 7,
            schema: "public".into(),
            table: "t".into(),
            columns: vec![
                column("id", "int4", false, None),
                column("v", "text", true, Some("'d'::text")),
            ],
            key_columns: key,
        })
    }

    fn event(
        table: &Arc<TableSchema>,
        op: Operation,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> ChangeEvent {
        ChangeEvent {
            table: Arc::clone(table),
            op,
            before,
            after,
            source: SourceInfo {
                ts_us: 1_000_001,
                snapshot: SnapshotMarker::False,
                db: "db".into(),
                schema: "public".into(),
                table: "t".into(),
                tx_id: Some(5),
                lsn: Some(Lsn(0x1_0000_0010)),
                last_commit_lsn: None,
            },
            position: Position::Stream {
                lsn: Lsn(1),
                commit_lsn: Lsn(1),
                tx_id: 5,
                commit_ts_us: 0,
            },
            key_change: None,
        }
    }

    fn cfg() -> JsonConverterConfig {
        JsonConverterConfig {
            key_schemas_enable: false,
            value_schemas_enable: false,
            run_id: Some("run".into()),
            ..JsonConverterConfig::new("p")
        }
    }

    fn text(b: &Option<Vec<u8>>) -> &str {
        std::str::from_utf8(b.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn delete_gets_tombstone_and_defaults_in_before() {
        let t = table(vec![0]);
        let mut c = JsonConverter::new(cfg());
        let mut out = Vec::new();
        let ev = event(
            &t,
            Operation::Delete,
            Some(vec![Value::Int32(3), Value::Null]),
            None,
        );
        c.convert(&ev, 2_000_000_003, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&*out[0].topic, "p.public.t");
        assert_eq!(text(&out[0].key), r#"{"id":3}"#);
        assert_eq!(
            text(&out[0].value),
            r#"{"before":{"id":3,"v":"d"},"after":null,"source":{"version":"3.6.3.Final","connector":"postgresql","name":"p","ts_ms":1000,"snapshot":"false","db":"db","sequence":"[null,\"4294967312\"]","ts_us":1000001,"ts_ns":1000001000,"schema":"public","table":"t","txId":5,"lsn":4294967312,"xmin":null,"origin":null,"origin_lsn":null},"transaction":null,"op":"d","ts_ms":2000,"ts_us":2000000,"ts_ns":2000000003}"#
        );
        assert_eq!(out[1].key, out[0].key);
        assert_eq!(out[1].value, None);
        assert_eq!(
            out[0].headers.to_vec(),
            vec![
                (
                    "__debezium.context.connectorLogicalName".to_owned(),
                    b"p".to_vec()
                ),
                ("__debezium.context.taskId".to_owned(), b"0".to_vec()),
                (
                    "__debezium.context.connectorName".to_owned(),
                    b"postgresql".to_vec()
                ),
                ("__debezium.context.runId".to_owned(), b"run".to_vec()),
            ]
        );

        let mut c = JsonConverter::new(JsonConverterConfig {
            tombstones_on_delete: false,
            replace_null_with_default: false,
            ..cfg()
        });
        out.clear();
        c.convert(&ev, 0, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(text(&out[0].value).starts_with(r#"{"before":{"id":3,"v":null}"#));
    }

    #[test]
    fn keyless_tables_and_truncates_have_no_key() {
        let mut c = JsonConverter::new(cfg());
        let mut out = Vec::new();
        let keyless = table(vec![]);
        c.convert(
            &event(
                &keyless,
                Operation::Create,
                None,
                Some(vec![Value::Int32(1), Value::Null]),
            ),
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].key, None);
        let keyed = table(vec![0]);
        out.clear();
        c.convert(&event(&keyed, Operation::Truncate, None, None), 0, &mut out)
            .unwrap();
        assert_eq!(out[0].key, None);
        assert!(text(&out[0].value).contains(r#""op":"t""#));
    }

    #[test]
    fn schema_cache_follows_table_changes() {
        let mut c = JsonConverter::new(JsonConverterConfig {
            key_schemas_enable: true,
            ..cfg()
        });
        let mut out = Vec::new();
        let t1 = table(vec![0]);
        c.convert(
            &event(
                &t1,
                Operation::Create,
                None,
                Some(vec![Value::Int32(1), Value::Null]),
            ),
            0,
            &mut out,
        )
        .unwrap();
        assert!(text(&out[0].key).contains(r#""field":"id""#));
        // Same relation id, new column set (an ALTER TABLE seen in a relation message).
        let mut t2 = (*t1).clone();
        t2.columns[0].name = "ident".into();
        let t2 = Arc::new(t2);
        out.clear();
        c.convert(
            &event(
                &t2,
                Operation::Create,
                None,
                Some(vec![Value::Int32(1), Value::Null]),
            ),
            0,
            &mut out,
        )
        .unwrap();
        assert!(
            text(&out[0].key).contains(r#""field":"ident""#),
            "{}",
            text(&out[0].key)
        );
    }

    #[test]
    fn errors_name_table_and_column() {
        let t = table(vec![0]);
        let mut c = JsonConverter::new(cfg());
        let mut out = Vec::new();
        let err = c
            .convert(
                &event(
                    &t,
                    Operation::Create,
                    None,
                    Some(vec![Value::Text("x".into()), Value::Null]),
                ),
                0,
                &mut out,
            )
            .unwrap_err();
        assert!(
            matches!(&err, ConvertError::Value { column, .. } if column == "id"),
            "{err}"
        );
        let err = c
            .convert(
                &event(&t, Operation::Create, None, Some(vec![Value::Null])),
                0,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(
            err,
            ConvertError::RowShape {
                expected: 2,
                actual: 1,
                ..
            }
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn full_identity_fills_unchanged_toast_from_before() {
        let t = table(vec![0]);
        let mut c = JsonConverter::new(cfg());
        let mut out = Vec::new();
        let before = vec![Value::Int32(1), Value::Text("big".into())];
        let after = vec![Value::Int32(1), Value::UnchangedToast];
        c.convert(
            &event(&t, Operation::Update, Some(before), Some(after.clone())),
            0,
            &mut out,
        )
        .unwrap();
        assert!(text(&out[0].value).contains(r#""after":{"id":1,"v":"big"}"#));
        out.clear();
        c.convert(
            &event(&t, Operation::Update, None, Some(after)),
            0,
            &mut out,
        )
        .unwrap();
        assert!(
            text(&out[0].value).contains(r#""after":{"id":1,"v":"__debezium_unavailable_value"}"#)
        );
    }

    fn shaping(spec: &[(&str, crate::columns::ColumnMapper)]) -> crate::columns::ColumnShaping {
        crate::columns::ColumnShaping {
            mappers: spec
                .iter()
                .map(|(p, m)| crate::columns::MapperRule {
                    patterns: vec![regex::Regex::new(&format!("(?i)^(?:{p})$")).unwrap()],
                    mapper: m.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn mappers_apply_to_values_not_keys() {
        use crate::columns::ColumnMapper;
        let t = Arc::new(TableSchema {
            relation_id: 8,
            schema: "public".into(),
            table: "m".into(),
            columns: vec![
                column("k", "text", false, None),
                column("v", "text", true, None),
                column("w", "text", false, None),
            ],
            key_columns: vec![0],
        });
        let mut c = JsonConverter::new(JsonConverterConfig {
            columns: Arc::new(shaping(&[
                ("public.m.k", ColumnMapper::Mask(2)),
                ("public.m.v", ColumnMapper::Truncate(4)),
                (
                    "public.m.w",
                    ColumnMapper::Hash {
                        algorithm: crate::columns::HashAlgorithm::Md5,
                        salt: "s".into(),
                        v2: true,
                    },
                ),
            ])),
            ..cfg()
        });
        let mut out = Vec::new();
        // An unchanged TOAST value is the placeholder text, truncated like any string; a null
        // in a NOT NULL column is its fallback `""`, which is hashed.
        let e = event(
            &t,
            Operation::Update,
            None,
            Some(vec![
                Value::Text("key".into()),
                Value::UnchangedToast,
                Value::Null,
            ]),
        );
        c.convert(&e, 0, &mut out).unwrap();
        assert_eq!(text(&out[0].key), r#"{"k":"key"}"#);
        let hash_of_empty = crate::columns::FieldMapping::hash_hex(
            crate::columns::HashAlgorithm::Md5,
            b"s",
            true,
            "",
        );
        assert!(
            text(&out[0].value).contains(&format!(
                r#""after":{{"k":"**","v":"__de","w":"{hash_of_empty}"}}"#
            )),
            "{}",
            text(&out[0].value)
        );
    }

    #[test]
    fn filtered_key_column_is_optional_in_streamed_keys_only() {
        let t = table(vec![0]);
        let mut c = JsonConverter::new(JsonConverterConfig {
            key_schemas_enable: true,
            columns: Arc::new(crate::columns::ColumnShaping {
                filter: Some(crate::columns::ColumnFilter::Exclude(vec![
                    regex::Regex::new("(?i)^(?:public.t.id)$").unwrap(),
                ])),
                ..Default::default()
            }),
            ..cfg()
        });
        let mut out = Vec::new();
        let row = || Some(vec![Value::Int32(1), Value::Text("x".into())]);
        c.convert(&event(&t, Operation::Read, None, row()), 0, &mut out)
            .unwrap();
        c.convert(&event(&t, Operation::Create, None, row()), 0, &mut out)
            .unwrap();
        assert!(text(&out[0].key).contains(r#"{"type":"int32","optional":false,"field":"id"}"#));
        assert!(text(&out[1].key).contains(r#"{"type":"int32","optional":true,"field":"id"}"#));
        for r in &out {
            assert!(text(&r.value).contains(r#""after":{"v":"x"}"#));
        }
    }

    /// A table with `m int4[][]` (declared 2 dimensions), `d int4[]`, a NOT NULL `n int4[]`
    /// and a `t text[]`.
    fn array_table() -> Arc<TableSchema> {
        let arr = |name: &str, ty: &str, nullable: bool, dimensions: u32| ColumnSchema {
            dimensions,
            ..column(name, ty, nullable, None)
        };
        Arc::new(TableSchema {
            relation_id: 9,
            schema: "public".into(),
            table: "a".into(),
            columns: vec![
                column("id", "int4", false, None),
                arr("m", "_int4", true, 2),
                arr("d", "_int4", true, 1),
                arr("n", "_int4", false, 1),
                arr("t", "_text", true, 1),
            ],
            key_columns: vec![0],
        })
    }

    fn ints(v: &[i32]) -> Value {
        Value::Array(v.iter().map(|i| Value::Int32(*i)).collect())
    }

    fn after_json(c: &mut JsonConverter, row: Vec<Value>) -> (String, Vec<(String, Vec<u8>)>) {
        let t = array_table();
        let mut out = Vec::new();
        c.convert(&event(&t, Operation::Update, None, Some(row)), 0, &mut out)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(out[0].value.as_ref().unwrap()).unwrap();
        let payload = if v.get("payload").is_some() {
            &v["payload"]
        } else {
            &v
        };
        (payload["after"].to_string(), out[0].headers.to_vec())
    }

    #[test]
    fn multidimensional_values_are_nulls_by_default_and_nested_on_request() {
        let two_d = Value::Array(vec![ints(&[1, 2]), ints(&[3, 4])]);
        let row = || {
            vec![
                Value::Int32(1),
                two_d.clone(),
                two_d.clone(),
                ints(&[5]),
                Value::Null,
            ]
        };
        // Debezium's output: one null per outer element, in every column.
        let mut c = JsonConverter::new(cfg());
        assert_eq!(
            after_json(&mut c, row()).0,
            r#"{"id":1,"m":[null,null],"d":[null,null],"n":[5],"t":null}"#
        );
        let mut nested = cfg();
        nested.modes.multidimensional_arrays = crate::MultidimensionalArrayMode::Nested;
        let mut c = JsonConverter::new(nested.clone());
        // `m` has its declared dimensions; `d` (declared 1) falls back.
        assert_eq!(
            after_json(&mut c, row()).0,
            r#"{"id":1,"m":[[1,2],[3,4]],"d":[null,null],"n":[5],"t":null}"#
        );
        // A 1-dimensional and a 3-dimensional value in `m`: one null per outer element; an
        // empty array is empty at any depth; null items of a sub-array stay.
        let three_d = Value::Array(vec![Value::Array(vec![ints(&[1])])]);
        let mut r = row();
        r[1] = ints(&[1, 2, 3]);
        r[2] = Value::Array(vec![]);
        assert_eq!(
            after_json(&mut c, r).0,
            r#"{"id":1,"m":[null,null,null],"d":[],"n":[5],"t":null}"#
        );
        let mut r = row();
        r[1] = three_d;
        r[2] = Value::Array(vec![Value::Null, Value::Int32(2)]);
        assert_eq!(
            after_json(&mut c, r).0,
            r#"{"id":1,"m":[null],"d":[null,2],"n":[5],"t":null}"#
        );
        let mut r = row();
        r[1] = Value::Array(vec![Value::Array(vec![Value::Null, Value::Int32(7)])]);
        assert_eq!(
            after_json(&mut c, r).0,
            r#"{"id":1,"m":[[null,7]],"d":[null,null],"n":[5],"t":null}"#
        );
        // The schema: `m` nests, its sub-arrays optional; `d` is Debezium's.
        nested.value_schemas_enable = true;
        let mut c = JsonConverter::new(nested);
        let t = array_table();
        let mut out = Vec::new();
        c.convert(
            &event(&t, Operation::Create, None, Some(row())),
            0,
            &mut out,
        )
        .unwrap();
        let v = text(&out[0].value);
        assert!(
            v.contains(r#"{"type":"array","items":{"type":"array","items":{"type":"int32","optional":true},"optional":true},"optional":true,"field":"m"}"#),
            "{v}"
        );
        assert!(
            v.contains(r#"{"type":"array","items":{"type":"int32","optional":true},"optional":true,"field":"d"}"#),
            "{v}"
        );
    }

    #[test]
    fn unchanged_toast_arrays_are_null_with_a_header_on_request() {
        let toast = || {
            vec![
                Value::Int32(1),
                Value::UnchangedToast,
                Value::UnchangedToast,
                Value::UnchangedToast,
                Value::UnchangedToast,
            ]
        };
        let bytes: Vec<String> = UNAVAILABLE_VALUE.bytes().map(|b| b.to_string()).collect();
        let bytes = format!("[{}]", bytes.join(","));
        // Debezium's placeholders, and no header.
        let mut c = JsonConverter::new(cfg());
        let (after, headers) = after_json(&mut c, toast());
        assert_eq!(
            after,
            format!(
                r#"{{"id":1,"m":{bytes},"d":{bytes},"n":{bytes},"t":["{UNAVAILABLE_VALUE}"]}}"#
            )
        );
        assert!(headers.iter().all(|(k, _)| k != crate::UNAVAILABLE_HEADER));
        // Nested: the placeholder wrapped to the declared depth.
        let mut nested = cfg();
        nested.modes.multidimensional_arrays = crate::MultidimensionalArrayMode::Nested;
        let mut c = JsonConverter::new(nested.clone());
        assert!(after_json(&mut c, toast())
            .0
            .starts_with(&format!(r#"{{"id":1,"m":[{bytes}],"d":{bytes}"#)));
        // Null where nullable; the NOT NULL `n` keeps Debezium's value; the header names
        // every unavailable column, in each header converter's form.
        let mut on = nested;
        on.modes.unavailable_arrays = crate::UnavailableArrayMode::Null;
        on.unavailable_header = true;
        let mut c = JsonConverter::new(on.clone());
        let (after, headers) = after_json(&mut c, toast());
        assert_eq!(
            after,
            format!(r#"{{"id":1,"m":null,"d":null,"n":{bytes},"t":["{UNAVAILABLE_VALUE}"]}}"#)
        );
        let header = |headers: &[(String, Vec<u8>)]| {
            headers
                .iter()
                .filter(|(k, _)| k == crate::UNAVAILABLE_HEADER)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(header(&headers), [r#"["m","d","n","t"]"#]);
        // Only the unavailable ones; none, no header.
        let mut row = toast();
        row[1] = Value::Null;
        row[4] = Value::Array(vec![Value::Text("x".into())]);
        assert_eq!(header(&after_json(&mut c, row).1), [r#"["d","n"]"#]);
        let mut row = toast();
        row[1..].fill(Value::Null);
        assert!(header(&after_json(&mut c, row).1).is_empty());
        for (format, expected) in [
            (
                crate::HeaderFormat::Json {
                    schemas_enable: true,
                },
                r#"{"schema":{"type":"array","items":{"type":"string","optional":false},"optional":false},"payload":["m","d","n","t"]}"#,
            ),
            (
                crate::HeaderFormat::Json {
                    schemas_enable: false,
                },
                r#"["m","d","n","t"]"#,
            ),
        ] {
            let mut c = JsonConverter::new(JsonConverterConfig {
                header_format: format,
                ..on.clone()
            });
            assert_eq!(header(&after_json(&mut c, toast()).1), [expected]);
        }
    }

    #[test]
    fn propagated_source_types_differ_between_snapshot_and_stream() {
        use crate::columns::ColumnMapper;
        let t = Arc::new(TableSchema {
            relation_id: 9,
            schema: "public".into(),
            table: "p".into(),
            columns: vec![
                column("id", "int4", false, Some("nextval('p_id_seq'::regclass)")),
                column("n", "numeric", true, None),
            ],
            key_columns: vec![0],
        });
        let mut c = JsonConverter::new(JsonConverterConfig {
            key_schemas_enable: true,
            value_schemas_enable: true,
            columns: Arc::new(shaping(&[(
                "public.p.(id|n)",
                ColumnMapper::PropagateSourceType { by_datatype: false },
            )])),
            ..cfg()
        });
        let mut out = Vec::new();
        let row = || Some(vec![Value::Int32(1), Value::Null]);
        for op in [Operation::Read, Operation::Create, Operation::Read] {
            c.convert(&event(&t, op, None, row()), 0, &mut out).unwrap();
        }
        let id = |ty: &str| {
            format!(
                r#"{{"type":"int32","optional":false,"parameters":{{"__debezium.source.column.type":"{ty}","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"id"}},"default":0,"field":"id"}}"#
            )
        };
        let snapshot = text(&out[0].value);
        assert!(snapshot.contains(&id("SERIAL")), "{snapshot}");
        assert!(snapshot.contains(r#""parameters":{"__debezium.source.column.type":"NUMERIC","__debezium.source.column.length":"0","__debezium.source.column.name":"n"}"#), "{snapshot}");
        let stream = text(&out[1].value);
        assert!(stream.contains(&id("INT4")), "{stream}");
        assert!(stream.contains(r#""parameters":{"__debezium.source.column.type":"NUMERIC","__debezium.source.column.length":"131089","__debezium.source.column.scale":"0","__debezium.source.column.name":"n"}"#), "{stream}");
        assert_eq!(text(&out[2].value), snapshot);
        // The key struct is built without mappers.
        for r in &out {
            let key = text(&r.key);
            assert!(key.contains(r#""field":"id""#), "{key}");
            assert!(!key.contains("__debezium.source"), "{key}");
        }
    }
}
