//! Golden fixtures shared by the converter tests (`golden.rs`, `avro.rs`, `golden_events.rs`):
//! the catalogs and row texts captured from a real PostgreSQL (`fixtures/`, see
//! `fixtures/README.md`; `fixtures/notnull/` for the NOT NULL / key-change captures), the
//! golden lines of real Debezium 3.6.3 output with `golden-diff.py`'s masks, and the
//! [`EventSource`] that rebuilds the `ChangeEvent` behind each golden line — including the
//! delete + tombstone + create of a primary-key change.

// Each test binary compiles this module and uses only part of it.
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
use regex::Regex;

pub(crate) mod registry;

/// The reference goldens (`reference/debezium/golden/`, or `DBZ_GOLDEN_DIR`).
pub(crate) fn golden_dir() -> PathBuf {
    std::env::var_os("DBZ_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/debezium/golden")
        })
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A golden directory with the fixtures its scenarios were replayed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FixtureSet {
    /// `reference/debezium/golden/` with `fixtures/{catalog.tsv,snapshot,final,stream}`.
    Reference,
    /// `fixtures/notnull/`: NOT NULL columns without defaults (captured by its
    /// `capture-golden.sh` from the real Debezium, PostgreSQL side by `fixtures/capture.sh`).
    NotNull,
}

impl FixtureSet {
    pub(crate) fn golden(self, file: &str) -> PathBuf {
        match self {
            FixtureSet::Reference => golden_dir().join(file),
            FixtureSet::NotNull => fixtures().join("notnull/golden").join(file),
        }
    }

    pub(crate) fn catalog(self) -> PathBuf {
        match self {
            FixtureSet::Reference => fixtures().join("catalog.tsv"),
            FixtureSet::NotNull => fixtures().join("notnull/catalog.tsv"),
        }
    }

    /// The `<table>.copy` files of a table state (`snapshot` or `final`).
    pub(crate) fn state(self, state: &str) -> PathBuf {
        match self {
            FixtureSet::Reference => fixtures().join(state),
            FixtureSet::NotNull => fixtures().join("notnull").join(state),
        }
    }

    /// The test_decoding capture of a streaming scenario.
    pub(crate) fn stream(self, name: &str) -> PathBuf {
        match self {
            FixtureSet::Reference => fixtures().join("stream").join(format!("{name}.txt")),
            FixtureSet::NotNull => fixtures().join("notnull/stream.txt"),
        }
    }

    /// The database name in the goldens' `source.db`.
    pub(crate) fn db(self) -> &'static str {
        match self {
            FixtureSet::Reference => "peer",
            FixtureSet::NotNull => "nn",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Table schemas by table name, from a `catalog.tsv`.
pub(crate) struct Catalog {
    pub(crate) tables: HashMap<String, Arc<TableSchema>>,
}

pub(crate) fn load_catalog(path: &Path) -> Catalog {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
            dimensions: 0,
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
                schema: schema.into(),
                table: name.as_str().into(),
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

pub(crate) fn load_copy(dir: &Path, table: &TableSchema) -> Vec<Row> {
    let bytes = std::fs::read(dir.join(format!("{}.copy", table.table))).unwrap();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| decode_row(table, &split_copy_text_row(l).expect("utf8")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Streamed changes (test_decoding output)

/// Marker for `unchanged-toast-datum` in a parsed tuple.
pub(crate) const TOAST: &str = "\u{0}unchanged-toast-datum";

pub(crate) type Tuple = HashMap<String, Option<String>>;

/// One item of test_decoding output, in WAL order.
#[derive(Debug)]
pub(crate) enum StreamItem {
    Begin {
        xid: i64,
    },
    Commit {
        xid: i64,
    },
    /// A row change, or a TRUNCATE of one table (a TRUNCATE of several tables is one item per
    /// table, as pgoutput's one Truncate message becomes one event per table).
    Change {
        table: String,
        op: Operation,
        old: Option<Tuple>,
        new: Option<Tuple>,
    },
    /// `pg_logical_emit_message`: test_decoding prints the content raw, so `content` is its
    /// text and `size` the real byte count (they differ for binary content).
    Message {
        transactional: bool,
        prefix: String,
        size: usize,
        content: String,
    },
}

/// Parses `name[type]:value name[type]:'quoted'' value' ...` (test_decoding's tuple form).
pub(crate) fn parse_tuple(mut s: &str) -> Tuple {
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

/// Reads a test_decoding capture (`include-xids`) into items.
pub(crate) fn load_stream_items(path: &Path) -> Vec<StreamItem> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&bytes);
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
    let message =
        Regex::new(r"(?s)^message: transactional: ([01]) prefix: (.*), sz: (\d+) content:(.*)$")
            .unwrap();
    let mut out = Vec::new();
    for line in &lines {
        if let Some(x) = line.strip_prefix("BEGIN ") {
            out.push(StreamItem::Begin {
                xid: x.trim().parse().unwrap(),
            });
        } else if let Some(x) = line.strip_prefix("COMMIT ") {
            out.push(StreamItem::Commit {
                xid: x.trim().parse().unwrap(),
            });
        } else if let Some(c) = message.captures(line) {
            out.push(StreamItem::Message {
                transactional: &c[1] == "1",
                prefix: c[2].to_owned(),
                size: c[3].parse().unwrap(),
                content: c[4].to_owned(),
            });
        } else if let Some(rest) = line.strip_prefix("table ") {
            let (qualified, rest) = rest.split_once(": ").unwrap();
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
                Operation::Truncate => (None, None),
                Operation::Delete => (Some(parse_tuple(body)), None),
                Operation::Update if body.starts_with("old-key:") => {
                    let (o, n) = body["old-key:".len()..].split_once("new-tuple:").unwrap();
                    (Some(parse_tuple(o)), Some(parse_tuple(n)))
                }
                _ => (None, Some(parse_tuple(body))),
            };
            // `table public.a, public.b: TRUNCATE: ...`
            for qualified in qualified.split(", ") {
                out.push(StreamItem::Change {
                    table: qualified.rsplit('.').next().unwrap().to_owned(),
                    op,
                    old: old.clone(),
                    new: new.clone(),
                });
            }
        }
    }
    out
}

/// One row change of a test_decoding capture, with its transaction id.
#[derive(Debug)]
pub(crate) struct StreamChange {
    pub(crate) table: String,
    pub(crate) op: Operation,
    pub(crate) xid: i64,
    pub(crate) old: Option<Tuple>,
    pub(crate) new: Option<Tuple>,
}

/// The row changes of a test_decoding capture in order (BEGIN/COMMIT and messages dropped).
pub(crate) fn load_stream(path: &Path) -> VecDeque<StreamChange> {
    let mut xid = 0;
    let mut out = VecDeque::new();
    for item in load_stream_items(path) {
        match item {
            StreamItem::Begin { xid: x } => xid = x,
            StreamItem::Change {
                table,
                op,
                old,
                new,
            } => out.push_back(StreamChange {
                table,
                op,
                xid,
                old,
                new,
            }),
            StreamItem::Commit { .. } | StreamItem::Message { .. } => {}
        }
    }
    out
}

/// A row of `table` from a parsed tuple (absent columns are null).
pub(crate) fn tuple_row(table: &TableSchema, tuple: &Tuple) -> Row {
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

/// The masks of `golden-diff.py`, applied to key, value and header texts, plus the runId of a
/// header written by SimpleHeaderConverter (spliced in raw, unquoted, by the harness).
pub(crate) struct Masks(Vec<(Regex, &'static str)>);

impl Masks {
    pub(crate) fn new() -> Self {
        Masks(vec![
            (
                Regex::new(r#"("__debezium\.context\.runId","value":(?:\{"schema":\{[^{}]*\},"payload":)?)"[0-9a-f-]{36}""#)
                    .unwrap(),
                r#"$1"<runId>""#,
            ),
            // SimpleHeaderConverter: the harness splices the raw header text, unquoted
            (
                Regex::new(r#"("__debezium\.context\.runId","value":)[0-9a-f-]{36}\}"#).unwrap(),
                r#"$1<runId>}"#,
            ),
            (Regex::new(r#""(ts_ms|ts_us|ts_ns|txId|lsn|xmin)":-?\d+"#).unwrap(), r#""$1":"<$1>""#),
            (Regex::new(r#""sequence":"\[[^\]]*\]""#).unwrap(), r#""sequence":"<sequence>""#),
            (Regex::new(r#""id":"\d+:\d+""#).unwrap(), r#""id":"<txId:lsn>""#),
            (Regex::new(r"LogicalDecodingMessageId@[0-9a-f]+").unwrap(), "LogicalDecodingMessageId@<hash>"),
        ])
    }

    pub(crate) fn apply(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for (rx, rep) in &self.0 {
            s = rx.replace_all(&s, *rep).into_owned();
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Events behind the golden lines

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

/// The other row of a primary-key change, as `KeyChange` borrows it.
#[derive(Debug, Clone)]
pub(crate) enum KeyChangeRow {
    /// On the delete half: the row after the change (the `__debezium.newkey` header).
    New(Row),
    /// On the create half: the row before the change (the `__debezium.oldkey` header).
    Old(Row),
}

/// The event behind one golden line.
pub(crate) struct GoldenEvent {
    pub(crate) event: ChangeEvent,
    /// Set on both halves of a primary-key change, which convert with `convert_key_change`.
    pub(crate) key_change: Option<KeyChangeRow>,
}

/// The create half of a primary-key change, waiting for its golden `c` line.
struct PendingCreate {
    event: ChangeEvent,
    old_row: Row,
}

fn key_values(table: &TableSchema, row: &Row) -> Vec<Value> {
    table.key_columns.iter().map(|i| row[*i].clone()).collect()
}

/// Rebuilds the events behind the golden lines of one capture, in line order.
pub(crate) struct EventSource {
    set: FixtureSet,
    /// The golden file's name without `.jsonl`.
    capture: String,
    state: &'static str,
    copies: HashMap<String, Vec<Row>>,
    keyless_seen: HashMap<String, usize>,
    stream: VecDeque<StreamChange>,
    pending_create: Option<PendingCreate>,
}

impl EventSource {
    /// `file`: the golden file of `set`; `state`: the table state for snapshot rows
    /// (`snapshot` or `final`); `stream`: the test_decoding capture that feeds the
    /// non-snapshot lines.
    pub(crate) fn new(
        set: FixtureSet,
        file: &str,
        state: &'static str,
        stream: Option<&str>,
    ) -> Self {
        EventSource {
            set,
            capture: file.trim_end_matches(".jsonl").to_owned(),
            state,
            copies: HashMap::new(),
            keyless_seen: HashMap::new(),
            stream: stream
                .map(|s| load_stream(&set.stream(s)))
                .unwrap_or_default(),
            pending_create: None,
        }
    }

    /// The event behind a golden line that is not a tombstone. `payload` is the golden
    /// value's payload (its op and snapshot marker are inputs: the worker decides them);
    /// `gkey` is the golden key text, which `conv` (configured as the golden run) must render
    /// identically for the snapshot row it picks. An UPDATE whose old key differs from the
    /// new one is a delete (this line), a tombstone and a create (the next `c` line).
    pub(crate) fn event(
        &mut self,
        conv: &mut JsonConverter,
        table: &Arc<TableSchema>,
        gkey: &str,
        payload: &serde_json::Value,
    ) -> Result<GoldenEvent, String> {
        let table_name = table.table.to_string();
        let Some(op) = payload["op"].as_str() else {
            return Err(format!("golden value without op: {payload}"));
        };
        let marker = match payload["source"]["snapshot"].as_str().unwrap_or("false") {
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
            db: self.set.db().into(),
            schema: table.schema.clone(),
            table: table.table.clone(),
            tx_id: Some(tx),
            lsn: Some(Lsn(890_675_328)),
            last_commit_lsn: (op != "r").then_some(Lsn(890_675_000)),
        };
        if op == "r" {
            let dir = self.set.state(self.state);
            let rows = self
                .copies
                .entry(table_name.clone())
                .or_insert_with(|| load_copy(&dir, table));
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
            return Ok(GoldenEvent {
                event: snapshot_event(table, row, source(1)),
                key_change: None,
            });
        }
        if let Some(p) = self.pending_create.take().filter(|_| op == "c") {
            return Ok(GoldenEvent {
                event: p.event,
                key_change: Some(KeyChangeRow::Old(p.old_row)),
            });
        }
        let Some(change) = self.stream.pop_front() else {
            return Err("stream fixture exhausted".into());
        };
        let before = change.old.as_ref().map(|t| tuple_row(table, t));
        let mut after = change.new.as_ref().map(|t| tuple_row(table, t));
        // notnull/capture-golden.sh writes the capture's name as the barrier note;
        // fixtures/capture.sh wrote 'nn'.
        if self.set == FixtureSet::NotNull && table_name == "barrier" {
            if let Some(row) = after.as_mut() {
                row[1] = Value::Text(self.capture.clone());
            }
        }
        let position = Position::Stream {
            lsn: Lsn(1),
            commit_lsn: Lsn(1),
            tx_id: change.xid,
            commit_ts_us: 0,
        };
        let key_change = match (change.op, &before, &after) {
            (Operation::Update, Some(b), Some(a))
                if !table.key_columns.is_empty()
                    && key_values(table, b) != key_values(table, a) =>
            {
                Some((b.clone(), a.clone()))
            }
            _ => None,
        };
        let fixture_op = if key_change.is_some() {
            "d"
        } else {
            change.op.code()
        };
        if change.table != table_name || fixture_op != op {
            return Err(format!(
                "golden {op} on {table_name}, fixture has {fixture_op} on {}",
                change.table
            ));
        }
        let event = |op, before, after| ChangeEvent {
            table: Arc::clone(table),
            op,
            before,
            after,
            source: source(change.xid),
            position: position.clone(),
            key_change: None,
        };
        Ok(match key_change {
            Some((old_row, new_row)) => {
                self.pending_create = Some(PendingCreate {
                    event: event(Operation::Create, None, Some(new_row.clone())),
                    old_row: old_row.clone(),
                });
                GoldenEvent {
                    event: event(Operation::Delete, Some(old_row), None),
                    key_change: Some(KeyChangeRow::New(new_row)),
                }
            }
            None => GoldenEvent {
                event: event(change.op, before, after),
                key_change: None,
            },
        })
    }
}
