//! Kafka Connect single message transforms (SMTs), applied natively to the Connect-level record
//! before it is serialised, with the output Kafka Connect + Debezium 3.6.3 produce:
//!
//! - `io.debezium.transforms.ExtractNewRecordState` ([`ExtractNewRecordState`]): the envelope is
//!   replaced by its `after` row (`before` for deletes in the `rewrite` modes), with
//!   `delete.tombstone.handling.mode`, `add.fields`(`.prefix`), `add.headers`(`.prefix`),
//!   `route.by.field`, `replace.null.with.default` and `drop.fields.*`.
//! - `io.debezium.transforms.ByLogicalTableRouter` ([`ByLogicalTableRouter`]): a new topic from
//!   `topic.regex`/`topic.replacement`, key and envelope schemas renamed after it, and the key
//!   made unique with a physical-table field.
//! - `org.apache.kafka.connect.transforms.RegexRouter` ([`RegexRouter`]).
//! - Connect predicates `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`, with `negate`.
//!
//! Invariants: transforms run in the configured order on every record of an event (the change
//! record and its tombstone separately, as Connect does); a transform that drops a record ends
//! its chain. Regexes are Java regexes matched against the whole topic name
//! (`Matcher.matches()`), compiled with Rust's `regex` (no look-around or back-references), and
//! replacements follow `Matcher.replaceFirst` (`$n`, `${name}`, `\` escapes).

pub(crate) mod record;

use record::{ConnectRecord, HeaderList, RecordValue, Scalar, StructSchema, StructValue};

/// The configured transform chain (`transforms`), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transforms {
    pub steps: Vec<TransformStep>,
}

impl Transforms {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// One `transforms.<alias>.*` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformStep {
    pub alias: String,
    pub transform: Transform,
    /// `transforms.<alias>.predicate`, resolved.
    pub predicate: Option<Predicate>,
    /// `transforms.<alias>.negate`.
    pub negate: bool,
}

/// A supported transform type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transform {
    ExtractNewRecordState(ExtractNewRecordState),
    ByLogicalTableRouter(ByLogicalTableRouter),
    RegexRouter(RegexRouter),
}

/// A supported predicate type (`predicates.<alias>.type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predicate {
    /// `org.apache.kafka.connect.transforms.predicates.TopicNameMatches` (`pattern`).
    TopicNameMatches(JavaRegex),
    /// `org.apache.kafka.connect.transforms.predicates.HasHeaderKey` (`name`).
    HasHeaderKey(String),
    /// `org.apache.kafka.connect.transforms.predicates.RecordIsTombstone`.
    RecordIsTombstone,
}

/// A Java regex matched against a whole string (`Matcher.matches()`).
#[derive(Clone, Debug)]
pub struct JavaRegex {
    source: String,
    anchored: regex::Regex,
}

impl PartialEq for JavaRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for JavaRegex {}

impl JavaRegex {
    /// Compiles `pattern`; the error says why it is not accepted.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let anchored =
            regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("{e}"))?;
        Ok(JavaRegex {
            source: pattern.to_owned(),
            anchored,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, s: &str) -> bool {
        self.anchored.is_match(s)
    }

    /// `matcher.matches()` then `matcher.replaceFirst(replacement)`: the replacement
    /// expanded for a whole-string match, or `None` when `s` does not match.
    pub fn replace_whole(&self, s: &str, replacement: &JavaReplacement) -> Option<String> {
        let caps = self.anchored.captures(s)?;
        let mut out = String::new();
        for part in &replacement.parts {
            match part {
                ReplacementPart::Literal(l) => out.push_str(l),
                ReplacementPart::Group(n) => {
                    out.push_str(caps.get(*n).map(|m| m.as_str()).unwrap_or(""))
                }
                ReplacementPart::Named(n) => {
                    out.push_str(caps.name(n).map(|m| m.as_str()).unwrap_or(""))
                }
            }
        }
        Some(out)
    }

    fn group_count(&self) -> usize {
        // The anchoring group is non-capturing; group 0 is the whole match.
        self.anchored.captures_len() - 1
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ReplacementPart {
    Literal(String),
    Group(usize),
    Named(String),
}

/// A `Matcher.appendReplacement` replacement string, checked against its regex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JavaReplacement {
    source: String,
    parts: Vec<ReplacementPart>,
}

impl JavaReplacement {
    /// Parses `replacement` as Java does for `regex`: `\c` is the character `c`, `${name}` a
    /// named group, `$` and digits a group number (further digits are taken while the number
    /// stays a group of the regex). Errors are Java's (`No group n`, `character to be escaped
    /// is missing`, ...).
    pub fn new(replacement: &str, regex: &JavaRegex) -> Result<Self, String> {
        let groups = regex.group_count();
        let chars: Vec<char> = replacement.chars().collect();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    i += 1;
                    let Some(c) = chars.get(i) else {
                        return Err("character to be escaped is missing".into());
                    };
                    lit.push(*c);
                    i += 1;
                }
                '$' => {
                    i += 1;
                    let Some(c) = chars.get(i) else {
                        return Err("illegal group reference: group index is missing".into());
                    };
                    if *c == '{' {
                        let end = chars[i..]
                            .iter()
                            .position(|c| *c == '}')
                            .ok_or("named capturing group is missing trailing '}'")?;
                        let name: String = chars[i + 1..i + end].iter().collect();
                        if !regex.anchored.capture_names().any(|n| n == Some(&name)) {
                            return Err(format!("no group with name {{{name}}}"));
                        }
                        if !lit.is_empty() {
                            parts.push(ReplacementPart::Literal(std::mem::take(&mut lit)));
                        }
                        parts.push(ReplacementPart::Named(name));
                        i += end + 1;
                    } else {
                        let Some(d) = c.to_digit(10) else {
                            return Err("illegal group reference".into());
                        };
                        let mut n = d as usize;
                        if n > groups {
                            return Err(format!("No group {n}"));
                        }
                        i += 1;
                        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            let next = n * 10 + d as usize;
                            if next > groups {
                                break;
                            }
                            n = next;
                            i += 1;
                        }
                        if !lit.is_empty() {
                            parts.push(ReplacementPart::Literal(std::mem::take(&mut lit)));
                        }
                        parts.push(ReplacementPart::Group(n));
                    }
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(ReplacementPart::Literal(lit));
        }
        Ok(JavaReplacement {
            source: replacement.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// `org.apache.kafka.connect.transforms.RegexRouter`: a topic matching `regex` as a whole is
/// renamed to `replacement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexRouter {
    pub regex: JavaRegex,
    pub replacement: JavaReplacement,
}

/// `io.debezium.transforms.ByLogicalTableRouter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByLogicalTableRouter {
    /// `topic.regex`, `topic.replacement` (both required).
    pub topic_regex: JavaRegex,
    pub topic_replacement: JavaReplacement,
    /// `key.enforce.uniqueness` (default `true`).
    pub key_enforce_uniqueness: bool,
    /// `key.field.name` (default `__dbz__physicalTableIdentifier`).
    pub key_field_name: String,
    /// `key.field.regex` with `key.field.replacement`.
    pub key_field: Option<(JavaRegex, JavaReplacement)>,
}

/// `delete.tombstone.handling.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteTombstoneHandling {
    /// `drop`: deletes and tombstones are dropped.
    Drop,
    /// `tombstone` (default): a delete becomes a record with a null value (and the value
    /// schema), the tombstone is dropped.
    #[default]
    Tombstone,
    /// `rewrite`: a delete becomes its `before` row with `__deleted=true`; tombstones dropped.
    Rewrite,
    /// `rewrite-with-tombstone`: as `rewrite`, tombstones kept.
    RewriteWithTombstone,
    /// `delete-to-tombstone`: a delete becomes a tombstone; tombstones dropped.
    DeleteToTombstone,
}

impl DeleteTombstoneHandling {
    pub const VALUES: &'static str =
        "`drop`, `tombstone`, `rewrite`, `rewrite-with-tombstone` or `delete-to-tombstone`";

    /// Debezium's case-insensitive, trimmed parse.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        [
            ("drop", Self::Drop),
            ("tombstone", Self::Tombstone),
            ("rewrite", Self::Rewrite),
            ("rewrite-with-tombstone", Self::RewriteWithTombstone),
            ("delete-to-tombstone", Self::DeleteToTombstone),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, m)| m)
    }

    fn rewrites(self) -> bool {
        matches!(self, Self::Rewrite | Self::RewriteWithTombstone)
    }
}

/// Where a referenced field lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldHost {
    /// The envelope itself (`op`, `ts_ms`, `ts_us`, `ts_ns`).
    Envelope,
    Source,
    Transaction,
}

/// An `add.fields`/`add.headers` entry: `[struct.]field[:newName]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldReference {
    pub host: FieldHost,
    pub field: String,
    /// The outgoing field or header name (prefix included).
    pub new_field: String,
}

impl FieldReference {
    /// Debezium's `FieldReference(prefix, spec)`.
    pub fn parse(prefix: &str, spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() > 2 || parts.iter().all(|p| p.is_empty()) {
            return Err(format!("unexpected field name `{spec}`"));
        }
        let splits: Vec<&str> = parts[0].split('.').filter(|s| !s.is_empty()).collect();
        let (field, host, host_name) = match splits.as_slice() {
            [f] => {
                let host = match *f {
                    "id" | "total_order" | "data_collection_order" => FieldHost::Transaction,
                    "op" | "ts_ms" | "ts_us" | "ts_ns" => FieldHost::Envelope,
                    _ => FieldHost::Source,
                };
                (f.to_string(), host, None)
            }
            [s, f, ..] => {
                let host = match *s {
                    "source" => FieldHost::Source,
                    "transaction" => FieldHost::Transaction,
                    other => {
                        return Err(format!(
                        "`{spec}` names struct `{other}`; the PostgreSQL envelope has `source` and `transaction`"
                    ))
                    }
                };
                (f.to_string(), host, Some(*s))
            }
            [] => return Err(format!("unexpected field name `{spec}`")),
        };
        let new_field = match (parts.get(1), host_name) {
            (Some(n), _) => format!("{prefix}{n}"),
            (None, None) => format!("{prefix}{field}"),
            (None, Some(h)) => format!("{prefix}{h}_{field}"),
        };
        Ok(FieldReference {
            host,
            field,
            new_field,
        })
    }

    /// The referenced field's schema (copied basics, optional, no default) and value, or `None`
    /// when the envelope has no such field (Debezium then skips it). A field missing from its
    /// struct is looked up on the envelope, as Debezium does.
    fn resolve(&self, env: &record::Envelope) -> Option<(String, Scalar)> {
        let in_host = match self.host {
            FieldHost::Envelope => envelope_field(env, &self.field),
            FieldHost::Source => source_field(env, &self.field),
            FieldHost::Transaction => transaction_field(&self.field),
        };
        in_host.or_else(|| envelope_field(env, &self.field))
    }
}

fn envelope_field(env: &record::Envelope, field: &str) -> Option<(String, Scalar)> {
    let int = r#"{"type":"int64","optional":true}"#.to_owned();
    Some(match field {
        "op" => (
            r#"{"type":"string","optional":true}"#.to_owned(),
            Scalar::Str(env.op.to_owned()),
        ),
        "ts_ms" => (int, Scalar::Int(env.ts_ns.div_euclid(1_000_000))),
        "ts_us" => (int, Scalar::Int(env.ts_ns.div_euclid(1_000))),
        "ts_ns" => (int, Scalar::Int(env.ts_ns)),
        _ => return None,
    })
}

fn source_field(env: &record::Envelope, field: &str) -> Option<(String, Scalar)> {
    let value = env.source.iter().find(|(n, _)| *n == field)?.1.clone();
    let schema = match field {
        "snapshot" => {
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"}}"#
        }
        "ts_ms" | "ts_us" | "ts_ns" | "txId" | "lsn" | "xmin" | "origin_lsn" => {
            r#"{"type":"int64","optional":true}"#
        }
        _ => r#"{"type":"string","optional":true}"#,
    };
    Some((schema.to_owned(), value))
}

/// pgseam never fills the `transaction` block (`provide.transaction.metadata` is not
/// supported), so its fields exist with null values.
fn transaction_field(field: &str) -> Option<(String, Scalar)> {
    let schema = match field {
        "id" => r#"{"type":"string","optional":true}"#,
        "total_order" | "data_collection_order" => r#"{"type":"int64","optional":true}"#,
        _ => return None,
    };
    Some((schema.to_owned(), Scalar::Null))
}

/// `io.debezium.transforms.ExtractNewRecordState`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractNewRecordState {
    pub delete_handling: DeleteTombstoneHandling,
    pub add_fields: Vec<FieldReference>,
    pub add_headers: Vec<FieldReference>,
    /// `route.by.field` (empty = off).
    pub route_by_field: Option<String>,
    /// `replace.null.with.default` (default `true`): in the `rewrite` modes the `__deleted`
    /// insertion copies fields with their defaults in place of nulls.
    pub replace_null_with_default: bool,
    /// `drop.fields.header.name`: pgseam's records never carry a header with a field list
    /// (it comes from `ExtractChangedRecordState`/MongoDB), so nothing is dropped, as in
    /// Debezium when the header is absent.
    pub drop_fields_header_name: Option<String>,
    pub drop_fields_from_key: bool,
    pub drop_fields_keep_schema_compatible: bool,
}

/// A transform failed on a record (Connect fails the task).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transform `{alias}`: {reason}")]
pub struct TransformError {
    pub alias: String,
    pub reason: String,
}

impl Transforms {
    /// Runs the chain on an event's change record, then on its tombstone, as Connect does.
    ///
    /// Debezium creates the tombstone of a delete with the delete record's own `Headers`
    /// object (`SourceRecord.newRecord(…, record.headers())`), and `ExtractNewRecordState`
    /// adds its `add.headers` to its *input* record's headers in place. So while no earlier
    /// transform has copied the change record (every `newRecord` without headers duplicates
    /// them: a `RegexRouter` or `ByLogicalTableRouter` that renamed the topic, an
    /// `ExtractNewRecordState` that ran), the headers `ExtractNewRecordState` adds to the
    /// change record are also on the tombstone when its turn comes: Debezium 3.6.3 writes a
    /// tombstone with the delete's `add.headers` followed by its own (`op` twice, see
    /// `reference/debezium/golden/smt/unwrap_fields.jsonl`).
    /// `headers` is the `header.converter`'s form, in which `add.headers` values are written.
    pub(crate) fn apply_event(
        &self,
        record: ConnectRecord,
        tombstone: Option<ConnectRecord>,
        headers: crate::HeaderFormat,
    ) -> Result<[Option<ConnectRecord>; 2], TransformError> {
        let mut shared = Vec::new();
        let first = self.run(record, tombstone.as_ref().map(|_| &mut shared), headers)?;
        let second = match tombstone {
            Some(mut t) => {
                t.headers.extend(shared);
                self.run(t, None, headers)?
            }
            None => None,
        };
        Ok([first, second])
    }

    /// Runs the chain on one record; `None` when a transform dropped it. `shared` collects the headers added in place to the record's original
    /// header object (see [`Transforms::apply_event`]), until a transform copies the record.
    fn run(
        &self,
        mut record: ConnectRecord,
        mut shared: Option<&mut HeaderList>,
        headers: crate::HeaderFormat,
    ) -> Result<Option<ConnectRecord>, TransformError> {
        for step in &self.steps {
            let run = match &step.predicate {
                None => true,
                Some(p) => p.test(&record) != step.negate,
            };
            if !run {
                continue;
            }
            let out = match &step.transform {
                Transform::RegexRouter(r) => {
                    if let Some(t) = r.regex.replace_whole(&record.topic, &r.replacement) {
                        record.topic = t;
                        shared = None;
                    }
                    Some(record)
                }
                Transform::ByLogicalTableRouter(r) => {
                    let (out, rerouted) = r.apply(record);
                    if rerouted {
                        shared = None;
                    }
                    Some(out)
                }
                Transform::ExtractNewRecordState(u) => {
                    let before = record.headers.len();
                    u.add_headers(&mut record, headers);
                    if let Some(s) = shared.take() {
                        s.extend_from_slice(&record.headers[before..]);
                    }
                    u.apply(record).map_err(|reason| TransformError {
                        alias: step.alias.clone(),
                        reason,
                    })?
                }
            };
            match out {
                Some(r) => record = r,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}

impl Predicate {
    fn test(&self, r: &ConnectRecord) -> bool {
        match self {
            Predicate::TopicNameMatches(re) => re.matches(&r.topic),
            Predicate::HasHeaderKey(name) => r.headers.iter().any(|(k, _)| k == name),
            Predicate::RecordIsTombstone => {
                matches!(r.value, RecordValue::Tombstone | RecordValue::Null(_))
            }
        }
    }
}

impl ByLogicalTableRouter {
    /// The record, and whether it was rerouted (a new record).
    fn apply(&self, mut r: ConnectRecord) -> (ConnectRecord, bool) {
        let old_topic = r.topic.clone();
        let Some(new_topic) = self
            .topic_regex
            .replace_whole(&old_topic, &self.topic_replacement)
        else {
            return (r, false);
        };
        if new_topic.is_empty() {
            // Debezium logs a warning and passes the record on unchanged.
            return (r, false);
        }
        if let Some(key) = &mut r.key {
            key.schema.name = Some(format!("{new_topic}.Key"));
            if self.key_enforce_uniqueness {
                let id = self
                    .key_field
                    .as_ref()
                    .and_then(|(re, rep)| re.replace_whole(&old_topic, rep))
                    .unwrap_or_else(|| old_topic.clone());
                key.schema.fields.push(record::FieldSchema {
                    name: self.key_field_name.clone(),
                    schema: r#"{"type":"string","optional":false}"#.to_owned(),
                    default: None,
                    optional: false,
                });
                key.values.push(Scalar::Str(id).payload());
            }
        }
        if let RecordValue::Envelope(e) = &mut r.value {
            e.row.name = Some(format!("{new_topic}.Value"));
            e.name = format!("{new_topic}.Envelope");
        }
        r.topic = new_topic;
        (r, true)
    }
}

impl ExtractNewRecordState {
    /// `add.headers`, added to the input record's headers in place (first step of `apply`),
    /// in the header converter's form: `SimpleHeaderConverter` writes the value's text (null
    /// for null), `JsonConverter` the field's schema and value (a tombstone's `op` header is
    /// `Headers.addString`'s non-optional string).
    fn add_headers(&self, r: &mut ConnectRecord, format: crate::HeaderFormat) {
        let envelope = match &r.value {
            RecordValue::Envelope(e) => Some(e),
            RecordValue::Tombstone | RecordValue::Null(_) => None,
            RecordValue::Struct(_) => return,
        };
        let mut added = Vec::new();
        for f in &self.add_headers {
            match envelope {
                None => {
                    if f.field == "op" {
                        let d = Scalar::Str("d".to_owned());
                        added.push((
                            f.new_field.clone(),
                            d.header(format, r#"{"type":"string","optional":false}"#),
                        ));
                    }
                }
                Some(e) => {
                    if let Some((schema, v)) = f.resolve(e) {
                        added.push((f.new_field.clone(), v.header(format, &schema)));
                    }
                }
            }
        }
        r.headers.extend(added);
    }

    /// The rest of Debezium's `doApply`, after [`ExtractNewRecordState::add_headers`].
    fn apply(&self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>, String> {
        let is_tombstone = matches!(r.value, RecordValue::Tombstone | RecordValue::Null(_));
        let envelope = match &r.value {
            RecordValue::Envelope(e) => Some(e.clone()),
            _ => None,
        };
        if is_tombstone {
            return Ok(match self.delete_handling {
                DeleteTombstoneHandling::RewriteWithTombstone => Some(r),
                _ => None,
            });
        }
        let Some(env) = envelope else {
            return Ok(Some(r));
        };
        match (&env.before, &env.after) {
            // TRUNCATE: dropped.
            (None, None) => Ok(None),
            (before, None) => {
                let mut out = match self.delete_handling {
                    DeleteTombstoneHandling::Drop => return Ok(None),
                    DeleteTombstoneHandling::Tombstone => {
                        r.value = RecordValue::Null(env.row.clone());
                        r
                    }
                    DeleteTombstoneHandling::DeleteToTombstone => {
                        r.value = RecordValue::Tombstone;
                        r
                    }
                    DeleteTombstoneHandling::Rewrite
                    | DeleteTombstoneHandling::RewriteWithTombstone => {
                        let before = before.clone().unwrap_or_default();
                        r.value =
                            RecordValue::Struct(self.insert_deleted(&env.row, before, "true"));
                        r
                    }
                };
                if let Some(field) = &self.route_by_field {
                    if let Some(before) = &env.before {
                        if let Some(t) = string_field(&env.row, before, field)? {
                            out.topic = t;
                        }
                    }
                }
                if !matches!(out.value, RecordValue::Tombstone | RecordValue::Null(_)) {
                    out = self.add_fields(out, &env);
                }
                Ok(Some(out))
            }
            (_, Some(after)) => {
                let value = if self.delete_handling.rewrites() {
                    self.insert_deleted(&env.row, after.clone(), "false")
                } else {
                    StructValue {
                        schema: env.row.clone(),
                        values: after.clone(),
                    }
                };
                if let Some(field) = &self.route_by_field {
                    if let Some(t) = string_field(&value.schema, &value.values, field)? {
                        r.topic = t;
                    }
                }
                r.value = RecordValue::Struct(value);
                Ok(Some(self.add_fields(r, &env)))
            }
        }
    }

    /// `InsertField` with `static.field=__deleted`: a required copy of the schema with an
    /// optional string field; with `replace.null.with.default` nulls take their defaults.
    fn insert_deleted(
        &self,
        row: &StructSchema,
        mut values: Vec<Option<String>>,
        deleted: &str,
    ) -> StructValue {
        if self.replace_null_with_default {
            for (v, f) in values.iter_mut().zip(&row.fields) {
                if v.is_none() {
                    v.clone_from(&f.default);
                }
            }
        }
        let mut schema = row.copy_basics();
        schema.fields.push(record::FieldSchema {
            name: "__deleted".into(),
            schema: r#"{"type":"string","optional":true}"#.into(),
            default: None,
            optional: true,
        });
        values.push(Scalar::Str(deleted.into()).payload());
        StructValue { schema, values }
    }

    /// Debezium's `addFields`: always a required copy of the schema, plus every referenced
    /// field that exists.
    fn add_fields(&self, mut r: ConnectRecord, env: &record::Envelope) -> ConnectRecord {
        if let RecordValue::Struct(v) = &mut r.value {
            v.schema = v.schema.copy_basics();
            for f in &self.add_fields {
                if let Some((schema, value)) = f.resolve(env) {
                    v.schema.fields.push(record::FieldSchema {
                        name: f.new_field.clone(),
                        schema,
                        default: None,
                        optional: true,
                    });
                    v.values.push(value.payload());
                }
            }
        }
        r
    }
}

/// `Struct.getString(field)` for `route.by.field`: the string value, `None` for null or blank
/// (the topic is then kept); an error for a missing or non-string field, as in Connect.
fn string_field(
    schema: &StructSchema,
    values: &[Option<String>],
    field: &str,
) -> Result<Option<String>, String> {
    let i = schema
        .index_of(field)
        .ok_or_else(|| format!("route.by.field: {field} is not a valid field name"))?;
    if !schema.fields[i].schema.starts_with(r#"{"type":"string""#) {
        return Err(format!(
            "route.by.field: field {field} is not a string field"
        ));
    }
    match &values[i] {
        None => Ok(None),
        Some(json) => {
            let s: String = crate::jackson::parse_str(json)
                .ok_or_else(|| format!("route.by.field: field {field} is not a string"))?;
            Ok((!s.trim().is_empty()).then_some(s))
        }
    }
}
