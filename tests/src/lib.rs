//! Test support for pgseam's integration tests and the demo: an oracle that is independent of
//! the code under test.
//!
//! - [`read_topics`] reads topics back from the beginning with a plain consumer (`assign`, no
//!   consumer group: the test broker's group joins are slow), counting what it consumed.
//! - [`TableState::apply`] applies Debezium events as a primary-key table would: `r`/`c`/`u`
//!   upsert `after` under the key, `d` and tombstones delete it.
//! - [`source_rows`] reads the source table with SQL that renders each column the way
//!   Debezium's JSON does ([`describe_table`] derives the expression per column type), so the
//!   two can be compared value for value; [`compare_table`] does all three for one table.
//!
//! - [`Decoding::Avro`] reads records in Confluent's Avro wire format instead of JSON: the
//!   schema is fetched by id from the registry's REST API (`GET /schemas/ids/{id}`), the datum
//!   decoded with apache-avro, and the result written in Kafka Connect JSON's payload form
//!   (bytes and decimals as base64), so the rest of the oracle is the same for both. It uses
//!   none of pgseam's converter code.
//!
//! The end-to-end tests live in `worker/tests/`, beside the `pgseam` binary they run: Cargo
//! builds a package's binaries only for that package's own integration tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

mod avro;

/// One consumed record, with key and value parsed as JSON (`None` when absent/tombstone).
#[derive(Clone, Debug)]
pub struct TopicMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl TopicMessage {
    /// The key's payload (without the schema wrapper, if any).
    pub fn key_payload(&self) -> Option<&Value> {
        self.key.as_ref().map(payload)
    }

    /// The value's payload (the envelope), `None` for a tombstone.
    pub fn envelope(&self) -> Option<&Value> {
        self.value.as_ref().map(payload)
    }

    /// The envelope's `op`.
    pub fn op(&self) -> Option<&str> {
        self.envelope()?.get("op")?.as_str()
    }
}

/// Strips Kafka Connect JSON's `{"schema":…, "payload":…}` wrapper when present.
pub fn payload(value: &Value) -> &Value {
    match value {
        Value::Object(map)
            if map.len() == 2 && map.contains_key("schema") && map.contains_key("payload") =>
        {
            &map["payload"]
        }
        other => other,
    }
}

/// Reads every record of `topics` from the beginning. Waits up to `deadline` for the topics to
/// exist and for at least `min_records` records, then returns once nothing new arrived for
/// `idle`.
pub fn read_topics(
    bootstrap_servers: &str,
    topics: &[String],
    min_records: usize,
    idle: Duration,
    deadline: Duration,
) -> anyhow::Result<Vec<TopicMessage>> {
    read_topics_decoded(
        bootstrap_servers,
        topics,
        min_records,
        idle,
        deadline,
        &Decoding::Json,
    )
}

/// How record keys and values are encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// Kafka Connect JSON.
    Json,
    /// Confluent Avro; schemas come from the registry at this URL.
    Avro { registry_url: String },
}

/// [`read_topics`] for records in the given encoding.
pub fn read_topics_decoded(
    bootstrap_servers: &str,
    topics: &[String],
    min_records: usize,
    idle: Duration,
    deadline: Duration,
    decoding: &Decoding,
) -> anyhow::Result<Vec<TopicMessage>> {
    let mut avro = avro::Decoder::default();
    let raw = read_topics_raw(bootstrap_servers, topics, min_records, idle, deadline)?;
    let mut parse = |bytes: Option<&[u8]>| -> anyhow::Result<Option<Value>> {
        match decoding {
            Decoding::Json => bytes
                .map(serde_json::from_slice)
                .transpose()
                .context("record is not JSON"),
            Decoding::Avro { registry_url } => bytes
                .map(|b| avro.decode(registry_url, b))
                .transpose()
                .context("record is not Confluent Avro"),
        }
    };
    raw.into_iter()
        .map(|m| {
            Ok(TopicMessage {
                key: parse(m.key.as_deref())?,
                value: parse(m.value.as_deref())?,
                headers: m
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect(),
                topic: m.topic,
                partition: m.partition,
                offset: m.offset,
            })
        })
        .collect()
}

/// One consumed record as the broker returned it: key, value and header values as bytes
/// (`None` for a null key, a tombstone or a null header value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// [`read_topics`] without decoding: every record's bytes as the broker returned them, for
/// byte-for-byte comparisons. Within a partition the records are in offset order.
pub fn read_topics_raw(
    bootstrap_servers: &str,
    topics: &[String],
    min_records: usize,
    idle: Duration,
    deadline: Duration,
) -> anyhow::Result<Vec<RawMessage>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "pgseam-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("cannot create consumer")?;
    let started = Instant::now();
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        loop {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .unwrap_or(0);
            if partitions > 0 {
                for partition in 0..partitions as i32 {
                    assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
                }
                break;
            }
            if started.elapsed() > deadline {
                bail!("topic {topic} did not appear within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    consumer.assign(&assignment)?;
    let mut messages = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                messages.push(RawMessage {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
                last_progress = Instant::now();
            }
            Some(Err(err)) => bail!("consumer error: {err}"),
            None => {
                if messages.len() >= min_records && last_progress.elapsed() >= idle {
                    return Ok(messages);
                }
                if started.elapsed() > deadline {
                    if messages.len() >= min_records {
                        return Ok(messages);
                    }
                    bail!(
                        "only {} of at least {min_records} records arrived within {deadline:?}",
                        messages.len()
                    );
                }
            }
        }
    }
}

/// The rows a primary-key table holds after applying events: key payload (as JSON text) →
/// `after` image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableState {
    pub rows: BTreeMap<String, Value>,
    pub reads: usize,
    pub creates: usize,
    pub updates: usize,
    pub deletes: usize,
    pub tombstones: usize,
    pub truncates: usize,
}

impl TableState {
    /// Applies one topic's records in partition order.
    pub fn apply(messages: &[TopicMessage]) -> anyhow::Result<TableState> {
        let mut state = TableState::default();
        for message in messages {
            // TRUNCATE (`skipped.operations` without `t`): key null, op `t`; the table is
            // empty afterwards. Records are applied in the order given, so with several
            // partitions this is exact only when `messages` is in commit order (a topic with
            // one partition is).
            if message.key.is_none() && message.op() == Some("t") {
                state.truncates += 1;
                state.rows.clear();
                continue;
            }
            let key = canonical_key(message.key_payload().with_context(|| {
                format!("record without key at {}@{}", message.topic, message.offset)
            })?);
            match message.envelope() {
                None => {
                    state.tombstones += 1;
                    state.rows.remove(&key);
                }
                Some(envelope) => match envelope.get("op").and_then(Value::as_str) {
                    Some(op @ ("r" | "c" | "u")) => {
                        match op {
                            "r" => state.reads += 1,
                            "c" => state.creates += 1,
                            _ => state.updates += 1,
                        }
                        let after = envelope.get("after").cloned().context("no after image")?;
                        state.rows.insert(key, after);
                    }
                    Some("d") => {
                        state.deletes += 1;
                        state.rows.remove(&key);
                    }
                    other => bail!(
                        "unexpected op {other:?} at {}@{}",
                        message.topic,
                        message.offset
                    ),
                },
            }
        }
        Ok(state)
    }
}

/// A key payload as text with its fields in name order: the key struct follows the primary
/// key's order, the source query the table's column order, and a partition attached with
/// another column order has them differ.
fn canonical_key(key: &Value) -> String {
    match key {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            serde_json::to_string(&sorted).unwrap_or_else(|_| key.to_string())
        }
        other => other.to_string(),
    }
}

/// Runs one SQL statement against the source and returns psql's unaligned output
/// (`-At`: one line per row, columns separated by `|`).
pub type SqlRunner<'a> = &'a dyn Fn(&str) -> anyhow::Result<String>;

/// How the oracle renders one source column so it equals Debezium's JSON for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnOracle {
    pub name: String,
    /// SQL expression giving the column as Debezium's JSON would hold it.
    pub expression: String,
    /// `numeric(p,s)` columns in `decimal.handling.mode=precise`: the topic holds base64 Connect
    /// Decimals of this scale, converted back to text before comparing.
    pub decimal_scale: Option<u32>,
}

/// Describes a table's columns (in order) and primary key, and derives the oracle expressions
/// for the types the end-to-end tests use.
pub fn describe_table(
    run_sql: SqlRunner<'_>,
    table: &str,
    precise_decimals: bool,
) -> anyhow::Result<(Vec<ColumnOracle>, Vec<String>)> {
    let output = run_sql(&format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, \
                CASE WHEN t.typname = 'numeric' AND a.atttypmod >= 4 THEN ((a.atttypmod - 4) & 65535)::text ELSE '' END, \
                COALESCE((SELECT bool_or(a.attnum = ANY(i.indkey)) FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary), false) \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = '{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    ))?;
    let mut columns = Vec::new();
    let mut key = Vec::new();
    for line in output.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').collect();
        let [name, _formatted, type_name, scale, is_key] = fields[..] else {
            bail!("unexpected catalog line {line:?}")
        };
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let (expression, decimal_scale) = match type_name {
            "int2" | "int4" | "int8" | "bool" | "text" | "varchar" | "bpchar" => (quoted, None),
            "numeric" => {
                let scale = scale.parse::<u32>().ok();
                (
                    format!("{quoted}::text"),
                    if precise_decimals { scale } else { None },
                )
            }
            "date" => (format!("({quoted} - date '1970-01-01')"), None),
            "timestamp" => (
                format!("(extract(epoch from {quoted}) * 1000000)::bigint"),
                None,
            ),
            "timestamptz" => (
                format!(
                    "to_char({quoted} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                ),
                None,
            ),
            "uuid" | "json" | "jsonb" => (format!("{quoted}::text"), None),
            "bytea" => (
                format!("translate(encode({quoted}, 'base64'), E'\\n', '')"),
                None,
            ),
            other => bail!(
                "the test oracle does not know how Debezium renders type {other} (column {name})"
            ),
        };
        if is_key == "t" {
            key.push(name.to_owned());
        }
        columns.push(ColumnOracle {
            name: name.to_owned(),
            expression,
            decimal_scale,
        });
    }
    if columns.is_empty() {
        bail!("table {table} has no columns or does not exist");
    }
    Ok((columns, key))
}

/// Reads the source table as `key payload text → row`, each column rendered by its oracle
/// expression.
pub fn source_rows(
    run_sql: SqlRunner<'_>,
    table: &str,
    columns: &[ColumnOracle],
    key: &[String],
) -> anyhow::Result<BTreeMap<String, Value>> {
    let object = |cols: &mut dyn Iterator<Item = &ColumnOracle>| {
        cols.map(|c| format!("'{}', {}", c.name, c.expression))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "SELECT json_build_object({})::text || E'\\t' || json_build_object({})::text FROM {table}",
        object(&mut columns.iter().filter(|c| key.contains(&c.name))),
        object(&mut columns.iter())
    );
    let output = run_sql(&sql)?;
    let mut rows = BTreeMap::new();
    for line in output.lines().filter(|l| !l.is_empty()) {
        let (key, row) = line.split_once('\t').context("psql line without tab")?;
        let key: Value = serde_json::from_str(key)?;
        rows.insert(canonical_key(&key), serde_json::from_str(row)?);
    }
    Ok(rows)
}

/// Converts the Connect Decimals of a topic row back to text, per the oracle's columns.
pub fn normalize_topic_row(row: &Value, columns: &[ColumnOracle]) -> anyhow::Result<Value> {
    let mut row = row.clone();
    for column in columns {
        if let (Some(scale), Some(Value::String(encoded))) =
            (column.decimal_scale, row.get(&column.name))
        {
            let text = decimal_text(encoded, scale)?;
            row[&column.name] = Value::String(text);
        }
    }
    Ok(row)
}

/// The result of comparing one table with its topic.
#[derive(Debug)]
pub struct Comparison {
    pub table: String,
    pub topic: String,
    pub source_rows: usize,
    pub state: TableState,
    pub differences: Vec<String>,
}

/// Reads `topic` back, applies it as a primary-key table, and compares with `table` at the
/// source.
pub fn compare_table(
    run_sql: SqlRunner<'_>,
    bootstrap_servers: &str,
    table: &str,
    topic: &str,
    precise_decimals: bool,
    idle: Duration,
    deadline: Duration,
) -> anyhow::Result<Comparison> {
    compare_table_decoded(
        run_sql,
        bootstrap_servers,
        table,
        topic,
        precise_decimals,
        idle,
        deadline,
        &Decoding::Json,
    )
}

/// [`compare_table`] for a topic in the given encoding.
#[allow(clippy::too_many_arguments)]
pub fn compare_table_decoded(
    run_sql: SqlRunner<'_>,
    bootstrap_servers: &str,
    table: &str,
    topic: &str,
    precise_decimals: bool,
    idle: Duration,
    deadline: Duration,
    decoding: &Decoding,
) -> anyhow::Result<Comparison> {
    let (columns, key) = describe_table(run_sql, table, precise_decimals)?;
    let expected = source_rows(run_sql, table, &columns, &key)?;
    let messages = read_topics_decoded(
        bootstrap_servers,
        &[topic.to_owned()],
        0,
        idle,
        deadline,
        decoding,
    )?;
    let mut state = TableState::apply(&messages)?;
    for row in state.rows.values_mut() {
        *row = normalize_topic_row(row, &columns)?;
    }
    let differences = diff_rows(&expected, &state.rows);
    Ok(Comparison {
        table: table.to_owned(),
        topic: topic.to_owned(),
        source_rows: expected.len(),
        state,
        differences,
    })
}

/// Describes the differences between expected (source) and actual (topic) rows; empty when equal.
pub fn diff_rows(
    expected: &BTreeMap<String, Value>,
    actual: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (key, row) in expected {
        match actual.get(key) {
            None => differences.push(format!("missing {key}: {row}")),
            Some(topic_row) if topic_row != row => differences.push(format!(
                "different {key}:\n  source {row}\n  topic  {topic_row}"
            )),
            Some(_) => {}
        }
    }
    for (key, row) in actual {
        if !expected.contains_key(key) {
            differences.push(format!("extra {key}: {row}"));
        }
    }
    differences
}

/// Decodes Kafka Connect's `Decimal` (base64 of a big-endian two's-complement unscaled value)
/// into PostgreSQL's text form, for comparisons.
pub fn decimal_text(base64_text: &str, scale: u32) -> anyhow::Result<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64_text)?;
    if bytes.is_empty() || bytes.len() > 16 {
        bail!(
            "decimal of {} bytes not supported by the test oracle",
            bytes.len()
        );
    }
    let mut unscaled: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for byte in bytes {
        unscaled = (unscaled << 8) | i128::from(byte);
    }
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    let sign = if negative { "-" } else { "" };
    Ok(if scale == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_oracle_reads_connect_decimals() {
        assert_eq!(decimal_text("SZYC0w==", 2).unwrap(), "12345678.91");
        assert_eq!(decimal_text("/w==", 2).unwrap(), "-0.01");
        assert_eq!(decimal_text("AA==", 2).unwrap(), "0.00");
    }

    #[test]
    fn truncate_empties_the_table() {
        let msg = |key: Option<Value>, value: Option<Value>| TopicMessage {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key,
            value,
            headers: Vec::new(),
        };
        let state = TableState::apply(&[
            msg(
                Some(json!({"id": 1})),
                Some(json!({"op": "c", "after": {"id": 1}})),
            ),
            msg(
                Some(json!({"id": 2})),
                Some(json!({"op": "c", "after": {"id": 2}})),
            ),
            msg(
                None,
                Some(json!({"op": "t", "before": null, "after": null})),
            ),
            msg(
                Some(json!({"id": 3})),
                Some(json!({"op": "c", "after": {"id": 3}})),
            ),
        ])
        .unwrap();
        assert_eq!(state.truncates, 1);
        assert_eq!(state.rows.keys().collect::<Vec<_>>(), vec![r#"{"id":3}"#]);
        // A keyless record that is not a truncate is still an error.
        assert!(TableState::apply(&[msg(None, Some(json!({"op": "c", "after": {}})))]).is_err());
    }

    #[test]
    fn applying_events_follows_primary_key_semantics() {
        let message = |offset, key: &str, value: Option<&str>| TopicMessage {
            topic: "t".into(),
            partition: 0,
            offset,
            key: Some(serde_json::from_str(key).unwrap()),
            value: value.map(|v| serde_json::from_str(v).unwrap()),
            headers: vec![],
        };
        let messages = vec![
            message(
                0,
                r#"{"id":1}"#,
                Some(r#"{"op":"r","after":{"id":1,"v":"a"}}"#),
            ),
            message(
                1,
                r#"{"id":2}"#,
                Some(r#"{"op":"c","after":{"id":2,"v":"b"}}"#),
            ),
            message(
                2,
                r#"{"id":1}"#,
                Some(r#"{"op":"u","after":{"id":1,"v":"c"}}"#),
            ),
            message(
                3,
                r#"{"id":2}"#,
                Some(r#"{"op":"d","before":{"id":2},"after":null}"#),
            ),
            message(4, r#"{"id":2}"#, None),
        ];
        let state = TableState::apply(&messages).unwrap();
        assert_eq!(state.rows.len(), 1);
        assert_eq!(state.rows[r#"{"id":1}"#]["v"], "c");
        assert_eq!(
            (
                state.reads,
                state.creates,
                state.updates,
                state.deletes,
                state.tombstones
            ),
            (1, 1, 1, 1, 1)
        );
    }
}
