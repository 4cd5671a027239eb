//! Golden fixtures shared by the converter tests: the catalog and row texts captured from a
//! real PostgreSQL (`fixtures/`), the golden lines of real Debezium output, and the
//! [`EventSource`] that rebuilds the `ChangeEvent` behind each golden line.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgseam_converters::JsonConverter;
use pgseam_model::{
    ChangeEvent, ColumnSchema, Lsn, Operation, Position, Row, SnapshotMarker, SourceInfo,
    TableSchema, Value,
};
use pgseam_pgvalue::{decode_text, split_copy_text_row};

pub(crate) fn golden_dir() -> PathBuf {
    std::env::var_os("DBZ_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/reference/debezium/golden"))
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// ---------------------------------------------------------------------------------------------
// Fixtures

pub(crate) struct Catalog {
    pub(crate) tables: HashMap<String, Arc<TableSchema>>,
}

pub(crate) fn load_catalog() -> Catalog {
    let text = std::fs::read(fixtures().join("catalog.tsv")).expect("catalog.tsv");
    // table name -> (relation id, schema name, [(column, 1-based primary key position or 0)])
    type Columns = HashMap<String, (u32, String, Vec<(ColumnSchema, usize)>)>;
    let mut cols: Columns = HashMap::new();
    for line in text
        .split(|b| *b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
    {
        let f = split_copy_text_row(line).expect("utf8");
        let s = |i: usize| f[i].clone().unwrap_or_default();
        let entry = cols
            .entry(s(2))
            .or_insert_with(|| (s(0).parse().unwrap(), s(1), Vec::new()));
        let col = ColumnSchema {
            name: s(4),
            type_oid: s(5).parse().unwrap(),
            type_name: s(6),
            base_type_oid: s(7).parse().unwrap(),
            type_modifier: s(8).parse().unwrap(),
            nullable: s(9) != "t",
            default_expr: f[10].clone(),
            enum_values: f[11]
                .as_ref()
                .map(|l| l.split(',').map(str::to_owned).collect()),
        };
        entry.2.push((col, s(12).parse().unwrap()));
    }
    let tables = cols
        .into_iter()
        .map(|(name, (relid, schema, cols))| {
            let mut key: Vec<(usize, usize)> = cols
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| *p > 0)
                .map(|(i, (_, p))| (*p, i))
                .collect();
            key.sort();
            let t = TableSchema {
                relation_id: relid,
                schema,
                table: name.clone(),
                columns: cols.into_iter().map(|(c, _)| c).collect(),
                key_columns: key.into_iter().map(|(_, i)| i).collect(),
            };
            (name, Arc::new(t))
        })
        .collect();
    Catalog { tables }
}

pub(crate) fn decode_row(table: &TableSchema, fields: &[Option<String>]) -> Row {
    assert_eq!(fields.len(), table.columns.len(), "{}", table.table);
    table
        .columns
        .iter()
        .zip(fields)
        .map(|(c, f)| match f {
            None => Value::Null,
            Some(t) => decode_text(c, t).unwrap_or_else(|e| panic!("{}: {e}", table.table)),
        })
        .collect()
}

pub(crate) fn load_copy(state: &str, table: &TableSchema) -> Vec<Row> {
    let bytes =
        std::fs::read(fixtures().join(state).join(format!("{}.copy", table.table))).unwrap();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| decode_row(table, &split_copy_text_row(l).expect("utf8")))
        .collect()
}

/// One change from test_decoding output.
#[derive(Debug)]
pub(crate) struct StreamChange {
    table: String,
    op: Operation,
    xid: i64,
    old: Option<HashMap<String, Option<String>>>,
    new: Option<HashMap<String, Option<String>>>,
}

/// Marker for `unchanged-toast-datum` in a parsed tuple.
pub(crate) const TOAST: &str = "\u{0}unchanged-toast-datum";

/// Parses `name[type]:value name[type]:'quoted'' value' ...` (test_decoding's tuple form).
pub(crate) fn parse_tuple(mut s: &str) -> HashMap<String, Option<String>> {
    let mut out = HashMap::new();
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with("new-tuple:") {
            return out;
        }
        let open = s.find('[').unwrap();
        let name = s[..open].trim_matches('"').to_owned();
        let close = open + s[open..].find("]:").unwrap();
        s = &s[close + 2..];
        let value = if let Some(rest) = s.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if rest[i + 1..].starts_with('\'') {
                        v.push('\'');
                        chars.next();
                    } else {
                        end = i + 1;
                        break;
                    }
                } else {
                    v.push(c);
                }
            }
            s = &rest[end..];
            Some(v)
        } else {
            let end = s.find(' ').unwrap_or(s.len());
            let raw = &s[..end];
            s = &s[end..];
            match raw {
                "null" => None,
                "unchanged-toast-datum" => Some(TOAST.to_owned()),
                r => Some(r.to_owned()),
            }
        };
        out.insert(name, value);
    }
}

pub(crate) fn load_stream(name: &str) -> VecDeque<StreamChange> {
    let text =
        std::fs::read_to_string(fixtures().join("stream").join(format!("{name}.txt"))).unwrap();
    let mut xid = 0;
    let mut out = VecDeque::new();
    // A value with a newline spans lines: glue continuation lines back on.
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let starts_record = ["BEGIN ", "COMMIT ", "table ", "message:"]
            .iter()
            .any(|p| line.starts_with(p));
        match lines.last_mut() {
            Some(last) if !starts_record => {
                last.push('\n');
                last.push_str(line);
            }
            _ => lines.push(line.to_owned()),
        }
    }
    for line in &lines {
        if let Some(x) = line.strip_prefix("BEGIN ") {
            xid = x.parse().unwrap();
            continue;
        }
        let Some(rest) = line.strip_prefix("table ") else {
            continue;
        };
        let (qualified, rest) = rest.split_once(": ").unwrap();
        let table = qualified.rsplit('.').next().unwrap().to_owned();
        let (op, body) = rest
            .split_once(": ")
            .unwrap_or((rest.trim_end_matches(':'), ""));
        let op = match op {
            "INSERT" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "TRUNCATE" => Operation::Truncate,
            other => panic!("unknown op {other}"),
        };
        let (old, new) = match op {
            Operation::Delete => (Some(parse_tuple(body)), None),
            Operation::Update if body.starts_with("old-key:") => {
                let (o, n) = body["old-key:".len()..].split_once("new-tuple:").unwrap();
                (Some(parse_tuple(o)), Some(parse_tuple(n)))
            }
            _ => (None, Some(parse_tuple(body))),
        };
        out.push_back(StreamChange {
            table,
            op,
            xid,
            old,
            new,
        });
    }
    out
}

pub(crate) fn tuple_row(table: &TableSchema, tuple: &HashMap<String, Option<String>>) -> Row {
    table
        .columns
        .iter()
        .map(|c| match tuple.get(&c.name) {
            None | Some(None) => Value::Null,
            Some(Some(t)) if t == TOAST => Value::UnchangedToast,
            Some(Some(t)) => decode_text(c, t).unwrap_or_else(|e| panic!("{e}")),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Golden lines

/// The raw text of each top-level member of a JSON object line (no re-serialisation).
pub(crate) fn top_level_members(line: &str) -> Vec<(String, &str)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let key_end = skip_string(b, i);
        let key = line[i + 1..key_end - 1].to_owned();
        let start = key_end + 1; // after ':'
        let end = skip_value(b, start);
        out.push((key, &line[start..end]));
        i = end + 1;
    }
    out
}

pub(crate) fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

pub(crate) fn skip_value(b: &[u8], i: usize) -> usize {
    match b[i] {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0;
            let mut j = i;
            loop {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            j
        }
    }
}

pub(crate) fn snapshot_event(
    table: &Arc<TableSchema>,
    row: Row,
    source: SourceInfo,
) -> ChangeEvent {
    ChangeEvent {
        table: Arc::clone(table),
        op: Operation::Read,
        before: None,
        after: Some(row),
        source,
        position: Position::Snapshot {
            consistent_point: Lsn(1),
            last: false,
        },
        key_change: None,
    }
}

/// Rebuilds the events behind the golden lines of one capture, in line order.
pub(crate) struct EventSource {
    state: &'static str,
    copies: HashMap<String, Vec<Row>>,
    keyless_seen: HashMap<String, usize>,
    stream: VecDeque<StreamChange>,
}

impl EventSource {
    /// `state`: the table state for snapshot rows (`snapshot` or `final`); `stream`: the
    /// test_decoding capture that feeds the non-snapshot lines.
    pub(crate) fn new(state: &'static str, stream: Option<&str>) -> Self {
        EventSource {
            state,
            copies: HashMap::new(),
            keyless_seen: HashMap::new(),
            stream: stream.map(load_stream).unwrap_or_default(),
        }
    }

    /// The event behind a golden line that is not a tombstone. `payload` is the golden
    /// value's payload (its op and snapshot marker are inputs: the worker decides them);
    /// `gkey` is the golden key text, which `conv` (configured as the golden run) must render
    /// identically for the snapshot row it picks.
    pub(crate) fn event(
        &mut self,
        conv: &mut JsonConverter,
        table: &Arc<TableSchema>,
        gkey: &str,
        payload: &serde_json::Value,
    ) -> Result<ChangeEvent, String> {
        let table_name = table.table.clone();
        let op = payload["op"].as_str().unwrap();
        let marker = match payload["source"]["snapshot"].as_str().unwrap() {
            "true" => SnapshotMarker::True,
            "first" => SnapshotMarker::First,
            "first_in_data_collection" => SnapshotMarker::FirstInDataCollection,
            "last_in_data_collection" => SnapshotMarker::LastInDataCollection,
            "last" => SnapshotMarker::Last,
            _ => SnapshotMarker::False,
        };
        let source = |tx: i64| SourceInfo {
            ts_us: 1_795_492_539_507_238,
            snapshot: marker,
            db: "peer".into(),
            schema: table.schema.clone(),
            table: table.table.clone(),
            tx_id: Some(tx),
            lsn: Some(Lsn(890_675_328)),
            last_commit_lsn: (op != "r").then_some(Lsn(890_675_000)),
        };
        if op == "r" {
            let state = self.state;
            let rows = self
                .copies
                .entry(table_name.clone())
                .or_insert_with(|| load_copy(state, table));
            let chosen = if table.key_columns.is_empty() {
                let seen = self.keyless_seen.entry(table_name.clone()).or_default();
                *seen += 1;
                rows.get(*seen - 1).cloned()
            } else {
                // The row whose key renders as the golden key.
                rows.iter()
                    .find(|row| {
                        let ev = snapshot_event(table, (*row).clone(), source(1));
                        let mut out = Vec::new();
                        conv.convert(&ev, 0, &mut out).unwrap();
                        out[0].key.as_deref() == Some(gkey.as_bytes())
                    })
                    .cloned()
            };
            let Some(row) = chosen else {
                return Err(format!("no {table_name} row in fixtures for key {gkey}"));
            };
            Ok(snapshot_event(table, row, source(1)))
        } else {
            let Some(change) = self.stream.pop_front() else {
                return Err("stream fixture exhausted".into());
            };
            if change.table != table_name || change.op.code() != op {
                return Err(format!(
                    "golden {op} on {table_name}, fixture has {} on {}",
                    change.op.code(),
                    change.table
                ));
            }
            Ok(ChangeEvent {
                table: Arc::clone(table),
                op: change.op,
                before: change.old.as_ref().map(|t| tuple_row(table, t)),
                after: change.new.as_ref().map(|t| tuple_row(table, t)),
                source: source(change.xid),
                position: Position::Stream {
                    lsn: Lsn(1),
                    commit_lsn: Lsn(1),
                    tx_id: change.xid,
                    commit_ts_us: 0,
                },
                key_change: None,
            })
        }
    }
}
