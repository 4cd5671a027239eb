//! Debezium PostgreSQL's source offset: the key and value JSON that Kafka Connect stores.
//!
//! The key is the JSON text `["<connector name>",{"server":"<topic.prefix>"}]`, as Connect's
//! `OffsetStorageWriter` builds it and `JsonConverter` (schemas disabled) prints it.
//!
//! The value is the map `PostgresOffsetContext.getOffset()` returns in Debezium 3.6.3, printed
//! by `JsonConverter`. Fields, each present only when set:
//!
//! | field | meaning |
//! |---|---|
//! | `ts_usec` | commit time of the last processed transaction (µs since the epoch); snapshot start time in a snapshot |
//! | `txId` | transaction id of the last processed event |
//! | `lsn` | LSN of the last processed replication message (`source.lsn`) |
//! | `xmin` | only with `xmin.fetch.interval.ms` (not used by pgseam) |
//! | `snapshot`, `last_snapshot_record`, `snapshot_completed` | while a snapshot runs: `"INITIAL"`, whether the last record of the snapshot was reached, whether the snapshot finished |
//! | `lsn_proc` | last completely processed LSN: streaming resumes here |
//! | `lsn_commit` | LSN of the last processed COMMIT message (its end LSN): what Debezium flushes to the slot |
//! | `messageType` | the `ReplicationMessage.Operation` of the last processed message (`INSERT`, `COMMIT`, …) |
//!
//! `getOffset()` returns a `java.util.HashMap`, and JsonConverter writes a map's entries in its
//! iteration order, which is bucket order: `(h ^ h >>> 16) & (capacity - 1)` of
//! `String.hashCode()`, then insertion order within a bucket. [`encode_value`] reproduces that
//! order, so the value bytes equal Debezium's for the same fields (checked against files
//! Debezium wrote).
//!
//! What pgseam writes:
//! - before the slot is created: `snapshot="INITIAL"`, `last_snapshot_record=false`,
//!   `snapshot_completed=false` (a restart takes the snapshot again);
//! - once the slot exists, and after each delivered chunk of the snapshot (or window of a
//!   resumed one): the same three fields, `lsn` = the consistent point C (or, while a resumed
//!   snapshot streams, the streaming fields below), and pgseam's own key
//!   [`PROGRESS_KEY`]: a compact JSON text of the snapshot's progress (see
//!   [`encode_progress`]), from which the next start resumes the snapshot instead of starting
//!   it over. Debezium's `PostgresOffsetContext.Loader` reads only the keys it knows (checked
//!   in 3.6.3's bytecode: `Map.get` of `lsn`, `lsn_proc`, `lsn_commit`, `txId`, `messageType`,
//!   `ts_usec`, the snapshot flags, transaction and incremental-snapshot keys), so it ignores
//!   this key and, seeing an incomplete snapshot, takes its own snapshot again;
//! - when the snapshot is delivered: `lsn` = the slot's consistent point, `snapshot_completed=true`;
//! - at the end of each delivered transaction: `lsn` = `lsn_proc` = `lsn_commit` = the
//!   transaction's end LSN and `messageType="COMMIT"` — the offset Debezium holds after
//!   processing that COMMIT message.
//!
//! What pgseam reads: any of the above, and what Debezium wrote in the middle of a transaction
//! (`lsn_proc` = the LSN of a change). Streaming resumes at `lsn_proc` (or `lsn` when absent).
//! PostgreSQL then sends every transaction whose commit record starts at or after that LSN, so
//! a transaction Debezium had partly processed is sent again whole: duplicates of an ordered
//! suffix, never a gap.

use pgseam_connector_pg::snapshot::checkpoint::IncrementalTable;
use pgseam_connector_pg::snapshot::{KeyProgress, SnapshotProgress, TableName};
use pgseam_converters::jackson;
use pgseam_model::Lsn;
use serde_json::Value;

/// The value of `snapshot` for the initial snapshot (`SnapshotType.INITIAL`).
const SNAPSHOT_INITIAL: &str = "INITIAL";
/// pgseam's key for the progress of an interrupted initial snapshot.
pub const PROGRESS_KEY: &str = "pgseam_snapshot";
/// pgseam's key for a position inside a transaction (exactly-once delivery commits Kafka
/// transactions there): `"<commit LSN>:<records>"`, see [`StreamOffset::skip`]. Debezium ignores
/// it (its `Loader` reads only its own keys) and replays the whole transaction: duplicates,
/// never a gap.
pub const SKIP_KEY: &str = "pgseam_skip";
/// Debezium's offset key of an incremental snapshot's correlation id
/// (`AbstractIncrementalSnapshotContext.CORRELATION_ID`), written beside [`PROGRESS_KEY`] while a
/// signalled incremental snapshot runs.
pub const CORRELATION_ID_KEY: &str = "incremental_snapshot_correlation_id";
/// Version of the progress text's layout.
const PROGRESS_VERSION: i64 = 1;
/// `ReplicationMessage.Operation.COMMIT`.
pub const MESSAGE_TYPE_COMMIT: &str = "COMMIT";

/// The position of one connector, as stored.
// One value per stored checkpoint, moved a few times: the snapshot variant's size (a few
// hundred bytes) costs nothing measurable, and boxing it would touch every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorOffset {
    /// The initial snapshot was started but did not complete: the slot (if any) is ours, the
    /// rows already sent will be sent again.
    SnapshotIncomplete { ts_usec: i64 },
    /// The initial snapshot was delivered; streaming starts at the slot's consistent point.
    SnapshotCompleted {
        lsn: Lsn,
        tx_id: Option<i64>,
        ts_usec: i64,
    },
    /// Streaming.
    Streaming(StreamOffset),
    /// The initial snapshot is under way (or being resumed) and can be resumed from
    /// `progress`; `stream` is the streaming position once a resume streams (`None`: stream
    /// from the consistent point).
    SnapshotResumable {
        progress: SnapshotProgress,
        stream: Option<StreamOffset>,
        ts_usec: i64,
    },
}

/// A streaming position with Debezium's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOffset {
    pub lsn: Lsn,
    pub lsn_proc: Option<Lsn>,
    pub lsn_commit: Option<Lsn>,
    pub tx_id: Option<i64>,
    pub ts_usec: i64,
    pub message_type: Option<String>,
    /// Exactly-once's position inside a transaction ([`SKIP_KEY`]): resume at `lsn_proc` as
    /// usual, and of the transaction that commits at `commit_lsn` (the first one sent again)
    /// do not send the first `records` records: they were committed to Kafka already.
    pub skip: Option<SkipWithin>,
}

/// The records of one transaction already delivered (see [`StreamOffset::skip`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipWithin {
    /// The transaction's commit LSN (`pgseam.commit_lsn`).
    pub commit_lsn: Lsn,
    /// Its first this many records (`pgseam.seq` below it) are delivered.
    pub records: u64,
}

impl StreamOffset {
    /// The offset after a transaction ending at `end_lsn` was delivered.
    pub fn after_commit(end_lsn: Lsn, tx_id: i64, ts_usec: i64) -> Self {
        StreamOffset {
            lsn: end_lsn,
            lsn_proc: Some(end_lsn),
            lsn_commit: Some(end_lsn),
            tx_id: Some(tx_id),
            ts_usec,
            message_type: Some(MESSAGE_TYPE_COMMIT.to_owned()),
            skip: None,
        }
    }
}

impl ConnectorOffset {
    /// Where streaming resumes, or `None` when a snapshot must be taken (again).
    pub fn resume_lsn(&self) -> Option<Lsn> {
        match self {
            ConnectorOffset::SnapshotIncomplete { .. } => None,
            ConnectorOffset::SnapshotCompleted { lsn, .. } => Some(*lsn),
            ConnectorOffset::Streaming(s) => Some(s.lsn_proc.unwrap_or(s.lsn)),
            ConnectorOffset::SnapshotResumable {
                progress, stream, ..
            } => Some(
                stream
                    .as_ref()
                    .map_or(progress.consistent_point, |s| s.lsn_proc.unwrap_or(s.lsn)),
            ),
        }
    }

    /// Everything up to this LSN is delivered: what the slot may be told (Debezium flushes
    /// `lsn_commit`, else `lsn_proc`).
    pub fn flush_lsn(&self) -> Option<Lsn> {
        match self {
            ConnectorOffset::SnapshotIncomplete { .. } => None,
            ConnectorOffset::SnapshotCompleted { lsn, .. } => Some(*lsn),
            ConnectorOffset::Streaming(s) => s.lsn_commit.or(s.lsn_proc).or(Some(s.lsn)),
            ConnectorOffset::SnapshotResumable {
                progress, stream, ..
            } => Some(stream.as_ref().map_or(progress.consistent_point, |s| {
                s.lsn_commit.or(s.lsn_proc).unwrap_or(s.lsn)
            })),
        }
    }
}

/// One field of the value in `getOffset()`'s insertion order.
enum Field {
    Long(i64),
    Bool(bool),
    Str(String),
}

/// The value JSON, byte for byte as Debezium 3.6.3 and JsonConverter write it.
pub fn encode_value(offset: &ConnectorOffset) -> String {
    // getOffset() puts, in this order: ts_usec, txId, lsn, xmin, snapshot,
    // last_snapshot_record, snapshot_completed, lsn_proc, lsn_commit, messageType.
    let mut fields: Vec<(&str, Field)> = Vec::new();
    let push_stream = |fields: &mut Vec<(&str, Field)>, s: &StreamOffset| {
        fields.push(("ts_usec", Field::Long(s.ts_usec)));
        if let Some(tx_id) = s.tx_id {
            fields.push(("txId", Field::Long(tx_id)));
        }
        fields.push(("lsn", Field::Long(s.lsn.0 as i64)));
        if let Some(lsn) = s.lsn_proc {
            fields.push(("lsn_proc", Field::Long(lsn.0 as i64)));
        }
        if let Some(lsn) = s.lsn_commit {
            fields.push(("lsn_commit", Field::Long(lsn.0 as i64)));
        }
        if let Some(message_type) = &s.message_type {
            fields.push(("messageType", Field::Str(message_type.clone())));
        }
        if let Some(skip) = &s.skip {
            fields.push((
                SKIP_KEY,
                Field::Str(format!("{}:{}", skip.commit_lsn, skip.records)),
            ));
        }
    };
    match offset {
        ConnectorOffset::SnapshotIncomplete { ts_usec } => {
            fields.push(("ts_usec", Field::Long(*ts_usec)));
            fields.push(("snapshot", Field::Str(SNAPSHOT_INITIAL.into())));
            fields.push(("last_snapshot_record", Field::Bool(false)));
            fields.push(("snapshot_completed", Field::Bool(false)));
        }
        ConnectorOffset::SnapshotCompleted {
            lsn,
            tx_id,
            ts_usec,
        } => {
            fields.push(("ts_usec", Field::Long(*ts_usec)));
            if let Some(tx_id) = tx_id {
                fields.push(("txId", Field::Long(*tx_id)));
            }
            fields.push(("lsn", Field::Long(lsn.0 as i64)));
            fields.push(("snapshot", Field::Str(SNAPSHOT_INITIAL.into())));
            fields.push(("last_snapshot_record", Field::Bool(true)));
            fields.push(("snapshot_completed", Field::Bool(true)));
        }
        ConnectorOffset::Streaming(s) => push_stream(&mut fields, s),
        ConnectorOffset::SnapshotResumable {
            progress,
            stream,
            ts_usec,
        } if progress.incremental.is_some() && stream.is_some() => {
            // A signalled incremental snapshot: a streaming offset (Debezium reading it
            // streams on) plus pgseam's progress key.
            if let Some(s) = stream {
                push_stream(&mut fields, s);
            }
            if let Some(id) = &progress.correlation_id {
                fields.push((CORRELATION_ID_KEY, Field::Str(id.clone())));
            }
            fields.push((PROGRESS_KEY, Field::Str(encode_progress(progress))));
        }
        ConnectorOffset::SnapshotResumable {
            progress,
            stream,
            ts_usec,
        } => {
            match stream {
                Some(s) => push_stream(&mut fields, s),
                None => {
                    fields.push(("ts_usec", Field::Long(*ts_usec)));
                    fields.push(("lsn", Field::Long(progress.consistent_point.0 as i64)));
                }
            }
            fields.push(("snapshot", Field::Str(SNAPSHOT_INITIAL.into())));
            fields.push(("last_snapshot_record", Field::Bool(false)));
            fields.push(("snapshot_completed", Field::Bool(false)));
            fields.push((PROGRESS_KEY, Field::Str(encode_progress(progress))));
        }
    }
    let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    let mut out = String::from("{");
    for (n, index) in java_hashmap_order(&names).into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let (name, field) = &fields[index];
        jackson::write_str(&mut out, name);
        out.push(':');
        match field {
            Field::Long(v) => out.push_str(&v.to_string()),
            Field::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
            Field::Str(v) => jackson::write_str(&mut out, v),
        }
    }
    out.push('}');
    out
}

/// Parses a stored value, whoever wrote it (Debezium 1.x–3.x or pgseam).
pub fn decode_value(text: &[u8]) -> Result<ConnectorOffset, String> {
    let value: Value =
        serde_json::from_slice(text).map_err(|e| format!("offset value is not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("offset value is not a JSON object")?;
    let long = |name: &str| -> Result<Option<i64>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("offset field `{name}` is not an integer: {v}")),
        }
    };
    let lsn = |name: &str| -> Result<Option<Lsn>, String> {
        match long(name)? {
            Some(v) if v < 0 => Err(format!("offset field `{name}` is negative: {v}")),
            other => Ok(other.map(|v| Lsn(v as u64))),
        }
    };
    let flag = |name: &str| object.get(name).and_then(Value::as_bool);
    let ts_usec = long("ts_usec")?.unwrap_or(0);
    let skip = match object.get(SKIP_KEY) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(decode_skip(text)?),
        Some(other) => {
            return Err(format!(
                "offset field `{SKIP_KEY}` is not a string: {other}"
            ))
        }
    };
    // Debezium 3.x writes `snapshot` as a string and `snapshot_completed`; older versions wrote
    // `snapshot: true` and only `last_snapshot_record`.
    let in_snapshot = match object.get("snapshot") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(_) => true,
    };
    if in_snapshot {
        let completed = flag("snapshot_completed")
            .or(flag("last_snapshot_record"))
            .unwrap_or(false);
        if !completed {
            let progress = match object.get(PROGRESS_KEY) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(decode_progress(text)?),
                Some(other) => {
                    return Err(format!(
                        "offset field `{PROGRESS_KEY}` is not a string: {other}"
                    ))
                }
            };
            let Some(progress) = progress else {
                return Ok(ConnectorOffset::SnapshotIncomplete { ts_usec });
            };
            // A resume that streams stores the streaming fields (`lsn_proc` among them).
            let stream = match lsn("lsn_proc")? {
                None => None,
                Some(lsn_proc) => Some(StreamOffset {
                    lsn: lsn("lsn")?.unwrap_or(lsn_proc),
                    lsn_proc: Some(lsn_proc),
                    lsn_commit: lsn("lsn_commit")?,
                    tx_id: long("txId")?,
                    ts_usec,
                    message_type: object
                        .get("messageType")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    skip,
                }),
            };
            return Ok(ConnectorOffset::SnapshotResumable {
                progress,
                stream,
                ts_usec,
            });
        }
        let lsn = lsn("lsn")?.ok_or("completed snapshot offset without `lsn`")?;
        return Ok(ConnectorOffset::SnapshotCompleted {
            lsn,
            tx_id: long("txId")?,
            ts_usec,
        });
    }
    let last = lsn("lsn")?;
    let lsn_proc = lsn("lsn_proc")?;
    let Some(position) = last.or(lsn_proc) else {
        return Err("offset has neither `lsn` nor `lsn_proc`".into());
    };
    let message_type = match object.get("messageType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "offset field `messageType` is not a string: {other}"
            ))
        }
    };
    let stream = StreamOffset {
        lsn: position,
        lsn_proc,
        lsn_commit: lsn("lsn_commit")?,
        tx_id: long("txId")?,
        ts_usec,
        message_type,
        skip,
    };
    // A streaming offset with a signalled incremental snapshot under way.
    if let Some(Value::String(text)) = object.get(PROGRESS_KEY) {
        let mut progress = decode_progress(text)?;
        if progress.incremental.is_some() {
            progress.correlation_id = match object.get(CORRELATION_ID_KEY) {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) => Some(id.clone()),
                Some(other) => {
                    return Err(format!(
                        "offset field `{CORRELATION_ID_KEY}` is not a string: {other}"
                    ))
                }
            };
            return Ok(ConnectorOffset::SnapshotResumable {
                progress,
                stream: Some(stream),
                ts_usec,
            });
        }
    }
    Ok(ConnectorOffset::Streaming(stream))
}

/// Parses [`SKIP_KEY`]'s value, `"<commit LSN>:<records>"`.
fn decode_skip(text: &str) -> Result<SkipWithin, String> {
    let bad = || format!("offset field `{SKIP_KEY}` is not `<commit LSN>:<records>`: {text:?}");
    let (commit, records) = text.split_once(':').ok_or_else(bad)?;
    Ok(SkipWithin {
        commit_lsn: commit.parse::<Lsn>().map_err(|_| bad())?,
        records: records.parse().map_err(|_| bad())?,
    })
}

/// The progress as compact JSON text:
/// `{"v":1,"c":"<consistent point>","done":[["schema","table"],…],"partial":{"table":["schema","table"],"key":["col",…],"after":["value",…]}}`
/// (`partial` absent when no table is partly delivered; key values in their text form),
/// `"more_partial":[{"table":…,"key":…,"after":…},…]` when a resumed snapshot has more
/// than one table partly delivered (absent otherwise: a pgseam from before it reads
/// `partial` and ignores this field, so it reads those tables again from their start), and
/// for a signalled incremental snapshot `"inc":[{"table":["schema","table"],"filter":<SQL or null>},…]`
/// and `partial.max`, the table's greatest key (the correlation id is Debezium's own field,
/// [`CORRELATION_ID_KEY`], beside this one)
/// (pgseam's key, not Debezium's `incremental_snapshot_*` fields: their layout is
/// Java-serialised chunk state that pgseam does not read).
pub fn encode_progress(progress: &SnapshotProgress) -> String {
    let table = |t: &TableName| serde_json::json!([t.0, t.1]);
    let mut value = serde_json::json!({
        "v": PROGRESS_VERSION,
        "c": progress.consistent_point.to_string(),
        "done": progress.done.iter().map(table).collect::<Vec<_>>(),
    });
    let key_progress = |partial: &KeyProgress| {
        let mut value = serde_json::json!({
            "table": table(&partial.table),
            "key": partial.key_columns,
            "after": partial.after,
        });
        if let Some(max) = &partial.max_key {
            value["max"] = serde_json::json!(max);
        }
        value
    };
    if let Some(partial) = &progress.partial {
        value["partial"] = key_progress(partial);
    }
    if !progress.more_partial.is_empty() {
        value["more_partial"] = progress.more_partial.iter().map(key_progress).collect();
    }
    if let Some(tables) = &progress.incremental {
        value["inc"] = tables
            .iter()
            .map(|t| serde_json::json!({"table": table(&t.table), "filter": t.filter}))
            .collect();
    }
    value.to_string()
}

/// Parses [`encode_progress`]'s text.
pub fn decode_progress(text: &str) -> Result<SnapshotProgress, String> {
    let bad = |what: &str| format!("offset field `{PROGRESS_KEY}` is invalid: {what}");
    let value: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    if value.get("v").and_then(Value::as_i64) != Some(PROGRESS_VERSION) {
        return Err(bad("unknown version (written by a newer pgseam?)"));
    }
    let consistent_point = value
        .get("c")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<Lsn>().ok())
        .ok_or_else(|| bad("no consistent point `c`"))?;
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v?.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let table = |v: Option<&Value>| -> Option<TableName> {
        match strings(v)?.as_slice() {
            [schema, table] => Some((schema.clone(), table.clone())),
            _ => None,
        }
    };
    let done = value
        .get("done")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `done` list"))?
        .iter()
        .map(|t| table(Some(t)).ok_or_else(|| bad("a `done` entry is not [schema, table]")))
        .collect::<Result<Vec<_>, _>>()?;
    let key_progress = |p: &Value, field: &str| -> Result<KeyProgress, String> {
        let progress = KeyProgress {
            table: table(p.get("table")).ok_or_else(|| bad(&format!("`{field}.table`")))?,
            key_columns: strings(p.get("key")).ok_or_else(|| bad(&format!("`{field}.key`")))?,
            after: strings(p.get("after")).ok_or_else(|| bad(&format!("`{field}.after`")))?,
            max_key: match p.get("max") {
                None | Some(Value::Null) => None,
                max => Some(strings(max).ok_or_else(|| bad(&format!("`{field}.max`")))?),
            },
        };
        if progress.key_columns.is_empty() || progress.key_columns.len() != progress.after.len() {
            return Err(bad(&format!(
                "`{field}.key` and `{field}.after` differ in length"
            )));
        }
        Ok(progress)
    };
    let partial = match value.get("partial") {
        None | Some(Value::Null) => None,
        Some(p) => Some(key_progress(p, "partial")?),
    };
    let more_partial = match value.get("more_partial") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| key_progress(p, "more_partial[]"))
            .collect::<Result<Vec<_>, String>>()?,
        Some(_) => return Err(bad("`more_partial` is not a list")),
    };
    if partial.is_none() && !more_partial.is_empty() {
        return Err(bad("`more_partial` without `partial`"));
    }
    let incremental = match value.get("inc") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|t| {
                    Ok(IncrementalTable {
                        table: table(t.get("table")).ok_or_else(|| bad("`inc[].table`"))?,
                        filter: match t.get("filter") {
                            None | Some(Value::Null) => None,
                            Some(Value::String(f)) => Some(f.clone()),
                            Some(_) => return Err(bad("`inc[].filter` is not a string")),
                        },
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
        Some(_) => return Err(bad("`inc` is not a list")),
    };
    Ok(SnapshotProgress {
        consistent_point,
        done,
        partial,
        more_partial,
        incremental,
        correlation_id: None,
    })
}

/// The key JSON `["<name>",{"server":"<prefix>"}]` with Jackson's escaping.
pub fn encode_key(connector_name: &str, topic_prefix: &str) -> String {
    let mut out = String::from("[");
    jackson::write_str(&mut out, connector_name);
    out.push_str(",{\"server\":");
    jackson::write_str(&mut out, topic_prefix);
    out.push_str("}]");
    out
}

/// Whether stored key bytes name this connector and prefix (compared as JSON, not as text).
pub fn key_matches(key: &[u8], connector_name: &str, topic_prefix: &str) -> bool {
    let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(key) else {
        return false;
    };
    match parts.as_slice() {
        [Value::String(name), Value::Object(partition)] => {
            name == connector_name
                && partition.len() == 1
                && partition.get("server").and_then(Value::as_str) == Some(topic_prefix)
        }
        _ => false,
    }
}

/// `java.lang.String.hashCode()`: over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

/// The iteration order of a `new HashMap<String, _>()` after putting `keys` in this order
/// (distinct keys): bucket index of the spread hash, then insertion order within a bucket
/// (a resize splits buckets keeping relative order, so the final table decides).
fn java_hashmap_order(keys: &[&str]) -> Vec<usize> {
    let mut capacity: usize = 16;
    while keys.len() > capacity * 3 / 4 {
        capacity *= 2;
    }
    let mut order: Vec<(usize, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let h = java_string_hash(key) as u32;
            (((h ^ (h >> 16)) as usize) & (capacity - 1), i)
        })
        .collect();
    order.sort();
    order.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::java_serial::read_hashmap;

    fn fixture_value(bytes: &[u8]) -> String {
        let entries = read_hashmap(bytes).unwrap();
        String::from_utf8(entries[0].1.clone().unwrap()).unwrap()
    }

    #[test]
    fn java_string_hash_matches_java() {
        // "lsn".hashCode() and "hello".hashCode() in Java.
        assert_eq!(java_string_hash("lsn"), 107_463);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
    }

    #[test]
    fn reencodes_debeziums_streaming_value_byte_for_byte() {
        let text = fixture_value(include_bytes!(
            "../../tests/fixtures/offsets/debezium-streaming.dat"
        ));
        let offset = decode_value(text.as_bytes()).unwrap();
        let ConnectorOffset::Streaming(s) = &offset else {
            panic!("{offset:?}")
        };
        assert_eq!(s.lsn, Lsn(70_323_232));
        assert_eq!(s.lsn_proc, Some(Lsn(70_323_232)));
        assert_eq!(s.tx_id, Some(729));
        assert_eq!(s.message_type.as_deref(), Some("DELETE"));
        assert_eq!(offset.resume_lsn(), Some(Lsn(70_323_232)));
        assert_eq!(encode_value(&offset), text);
    }

    #[test]
    fn reencodes_debeziums_snapshot_values_byte_for_byte() {
        let completed = fixture_value(include_bytes!(
            "../../tests/fixtures/offsets/debezium-snapshot-completed.dat"
        ));
        let offset = decode_value(completed.as_bytes()).unwrap();
        assert!(matches!(
            offset,
            ConnectorOffset::SnapshotCompleted {
                lsn: Lsn(70_322_592),
                tx_id: Some(728),
                ..
            }
        ));
        assert_eq!(encode_value(&offset), completed);

        let running = fixture_value(include_bytes!(
            "../../tests/fixtures/offsets/debezium-snapshot-in-progress.dat"
        ));
        let offset = decode_value(running.as_bytes()).unwrap();
        assert!(matches!(offset, ConnectorOffset::SnapshotIncomplete { .. }));
        assert_eq!(offset.resume_lsn(), None);
    }

    #[test]
    fn a_commit_offset_has_debeziums_field_order() {
        let offset = ConnectorOffset::Streaming(StreamOffset::after_commit(Lsn(100), 7, 9));
        // The order Java's HashMap gives these six keys.
        assert_eq!(
            encode_value(&offset),
            r#"{"lsn_proc":100,"messageType":"COMMIT","lsn_commit":100,"lsn":100,"txId":7,"ts_usec":9}"#
        );
        assert_eq!(
            decode_value(encode_value(&offset).as_bytes()).unwrap(),
            offset
        );
    }

    #[test]
    fn older_layouts_are_read() {
        // pgseam's walking skeleton and Debezium 1.x/2.x.
        let skeleton = br#"{"lsn_proc":16,"lsn_commit":8,"lsn":16,"txId":7,"ts_usec":9}"#;
        assert_eq!(decode_value(skeleton).unwrap().resume_lsn(), Some(Lsn(16)));
        let skeleton_snapshot = br#"{"snapshot":"INITIAL","snapshot_completed":false}"#;
        assert!(matches!(
            decode_value(skeleton_snapshot).unwrap(),
            ConnectorOffset::SnapshotIncomplete { .. }
        ));
        let old_snapshot = br#"{"snapshot":true,"last_snapshot_record":false,"lsn":5}"#;
        assert!(matches!(
            decode_value(old_snapshot).unwrap(),
            ConnectorOffset::SnapshotIncomplete { .. }
        ));
        let old_done = br#"{"snapshot":true,"last_snapshot_record":true,"lsn":5}"#;
        assert_eq!(decode_value(old_done).unwrap().resume_lsn(), Some(Lsn(5)));
        assert!(decode_value(br#"{"txId":1}"#).is_err());
        assert!(decode_value(br#"{"lsn":"x"}"#).is_err());
    }

    #[test]
    fn snapshot_progress_round_trips_in_debeziums_layout() {
        let progress = SnapshotProgress {
            consistent_point: Lsn(0x16_B374_D848),
            done: vec![("public".into(), "a \"quoted\"".into())],
            partial: Some(KeyProgress {
                table: ("s".into(), "b".into()),
                key_columns: vec!["k1".into(), "k2".into()],
                after: vec!["10".into(), "it's".into()],
                max_key: None,
            }),
            more_partial: Vec::new(),
            incremental: None,
            correlation_id: None,
        };
        let text = encode_progress(&progress);
        let mut signalled = progress.clone();
        signalled.correlation_id = Some("ad-hoc-1 \"x\"".into());
        if let Some(partial) = signalled.partial.as_mut() {
            partial.max_key = Some(vec!["99".into(), "zz".into()]);
        }
        signalled.incremental = Some(vec![
            IncrementalTable {
                table: ("s".into(), "b".into()),
                filter: Some("id > 'x'".into()),
            },
            IncrementalTable {
                table: ("s".into(), "c".into()),
                filter: None,
            },
        ]);
        // The correlation id is not in the progress text but in its own offset field.
        let mut text_only = signalled.clone();
        text_only.correlation_id = None;
        assert_eq!(
            decode_progress(&encode_progress(&signalled)).unwrap(),
            text_only
        );
        // An incremental snapshot's offset: streaming fields, no snapshot flags.
        let offset = ConnectorOffset::SnapshotResumable {
            progress: signalled.clone(),
            stream: Some(StreamOffset::after_commit(Lsn(0x500), 7, 1_000)),
            ts_usec: 1_000,
        };
        let stored = encode_value(&offset);
        assert!(!stored.contains("snapshot_completed"), "{stored}");
        // The correlation id under Debezium's own key; the table's greatest key in pgseam's.
        let json: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(json[CORRELATION_ID_KEY], "ad-hoc-1 \"x\"", "{stored}");
        assert!(stored.contains(r#"\"max\":[\"99\",\"zz\"]"#), "{stored}");
        assert_eq!(decode_value(stored.as_bytes()).unwrap(), offset);
        // The correlation id is optional (an offset of an earlier pgseam) and must be a string.
        let mut object = json.as_object().unwrap().clone();
        object.remove(CORRELATION_ID_KEY);
        let mut without = offset.clone();
        if let ConnectorOffset::SnapshotResumable { progress, .. } = &mut without {
            progress.correlation_id = None;
        }
        assert_eq!(
            decode_value(Value::Object(object.clone()).to_string().as_bytes()).unwrap(),
            without
        );
        object.insert(CORRELATION_ID_KEY.into(), Value::from(5));
        assert!(decode_value(Value::Object(object).to_string().as_bytes()).is_err());
        assert_eq!(decode_progress(&text).unwrap(), progress);
        assert!(text.contains(r#""c":"16/B374D848""#), "{text}");

        // First run: the consistent point as `lsn`, Debezium's incomplete-snapshot flags.
        let first = ConnectorOffset::SnapshotResumable {
            progress: SnapshotProgress::new(Lsn(100)),
            stream: None,
            ts_usec: 5,
        };
        let value = encode_value(&first);
        let json: Value = serde_json::from_str(&value).unwrap();
        assert_eq!(json["lsn"], 100);
        assert_eq!(json["snapshot"], "INITIAL");
        assert_eq!(json["snapshot_completed"], false);
        assert_eq!(json["last_snapshot_record"], false);
        assert_eq!(decode_value(value.as_bytes()).unwrap(), first);
        assert_eq!(first.resume_lsn(), Some(Lsn(100)));
        assert_eq!(first.flush_lsn(), Some(Lsn(100)));

        // A resume that streams: the streaming fields and the progress.
        let streaming = ConnectorOffset::SnapshotResumable {
            progress,
            stream: Some(StreamOffset::after_commit(Lsn(300), 7, 9)),
            ts_usec: 9,
        };
        let value = encode_value(&streaming);
        assert_eq!(decode_value(value.as_bytes()).unwrap(), streaming);
        assert_eq!(streaming.resume_lsn(), Some(Lsn(300)));

        // Without the key it is the plain incomplete snapshot (Debezium's, or an old pgseam's).
        let json: Value = serde_json::from_str(&value).unwrap();
        let mut object = json.as_object().unwrap().clone();
        object.remove(PROGRESS_KEY);
        assert!(matches!(
            decode_value(Value::Object(object).to_string().as_bytes()).unwrap(),
            ConnectorOffset::SnapshotIncomplete { .. }
        ));
    }

    /// A resumed snapshot with several tables partly delivered stores a key for each; the
    /// first stays under `partial`, so a pgseam from before `more_partial` (whose decoder
    /// reads `v`, `c`, `done`, `partial` and `inc` and ignores other fields) still resumes
    /// that table after its key and reads the others from their start.
    #[test]
    fn several_partly_delivered_tables_round_trip_and_stay_readable_by_the_old_layout() {
        let key = |t: &str, after: &str| KeyProgress {
            table: ("public".into(), t.into()),
            key_columns: vec!["id".into()],
            after: vec![after.into()],
            max_key: None,
        };
        let progress = SnapshotProgress {
            consistent_point: Lsn(0x100),
            done: vec![("public".into(), "a".into())],
            partial: Some(key("b", "1000")),
            more_partial: vec![key("c", "2500"), key("d", "7")],
            incremental: None,
            correlation_id: None,
        };
        let text = encode_progress(&progress);
        assert_eq!(
            text,
            r#"{"v":1,"c":"0/100","done":[["public","a"]],"partial":{"table":["public","b"],"key":["id"],"after":["1000"]},"more_partial":[{"table":["public","c"],"key":["id"],"after":["2500"]},{"table":["public","d"],"key":["id"],"after":["7"]}]}"#
        );
        assert_eq!(decode_progress(&text).unwrap(), progress);
        // What the old layout sees: the same version, `partial`, nothing of the rest.
        let mut json: Value = serde_json::from_str(&text).unwrap();
        json.as_object_mut().unwrap().remove("more_partial");
        let old = decode_progress(&json.to_string()).unwrap();
        assert_eq!(old.partial, progress.partial);
        assert_eq!(old.resume_after("public", "c", &["id".into()]), None);
        // One partly delivered table: exactly the old layout.
        let mut one = progress.clone();
        one.more_partial.clear();
        assert!(!encode_progress(&one).contains("more_partial"));
        // Malformed: not a list, a bad entry, entries without `partial`.
        for bad in [
            r#"{"v":1,"c":"0/1","done":[],"partial":{"table":["s","t"],"key":["a"],"after":["1"]},"more_partial":5}"#,
            r#"{"v":1,"c":"0/1","done":[],"partial":{"table":["s","t"],"key":["a"],"after":["1"]},"more_partial":[{"table":["s","u"],"key":["a"],"after":[]}]}"#,
            r#"{"v":1,"c":"0/1","done":[],"more_partial":[{"table":["s","u"],"key":["a"],"after":["1"]}]}"#,
        ] {
            assert!(decode_progress(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_progress_is_an_error_not_a_restart() {
        assert!(decode_progress("{}").is_err());
        assert!(decode_progress(r#"{"v":2,"c":"0/1","done":[]}"#).is_err());
        assert!(decode_progress(r#"{"v":1,"c":"x","done":[]}"#).is_err());
        assert!(decode_progress(r#"{"v":1,"c":"0/1","done":[["only"]]}"#).is_err());
        assert!(decode_progress(
            r#"{"v":1,"c":"0/1","done":[],"partial":{"table":["s","t"],"key":["a"],"after":[]}}"#
        )
        .is_err());
        let bad = br#"{"snapshot":"INITIAL","snapshot_completed":false,"pgseam_snapshot":"nope"}"#;
        assert!(decode_value(bad).is_err());
    }

    #[test]
    fn keys_are_connects_json() {
        assert_eq!(
            encode_key("inventory", "dbz"),
            r#"["inventory",{"server":"dbz"}]"#
        );
        assert!(key_matches(
            br#"[ "inventory", {"server": "dbz"} ]"#,
            "inventory",
            "dbz"
        ));
        assert!(!key_matches(
            br#"["inventory",{"server":"other"}]"#,
            "inventory",
            "dbz"
        ));
        assert!(!key_matches(b"garbage", "inventory", "dbz"));
    }

    #[test]
    fn a_position_inside_a_transaction_round_trips() {
        let offset = ConnectorOffset::Streaming(StreamOffset {
            skip: Some(SkipWithin {
                commit_lsn: Lsn(0x1_0000_0200),
                records: 4096,
            }),
            ..StreamOffset::after_commit(Lsn(0x1_0000_0100), 7, 9)
        });
        let text = encode_value(&offset);
        assert!(text.contains(r#""pgseam_skip":"1/200:4096""#), "{text}");
        assert_eq!(decode_value(text.as_bytes()).unwrap(), offset);
        // Debezium's fields are the commit offset's: it resumes at the same place.
        let plain = encode_value(&ConnectorOffset::Streaming(StreamOffset::after_commit(
            Lsn(0x1_0000_0100),
            7,
            9,
        )));
        let fields = |t: &str| -> serde_json::Map<String, Value> {
            let mut m: serde_json::Map<String, Value> = serde_json::from_str(t).unwrap();
            m.remove(SKIP_KEY);
            m
        };
        assert_eq!(fields(&text), fields(&plain));
        for bad in ["1/200", "x:1", "1/200:-1", "1/200:"] {
            let value = format!(r#"{{"lsn":1,"pgseam_skip":"{bad}"}}"#);
            assert!(decode_value(value.as_bytes()).is_err(), "{bad}");
        }
    }
}
