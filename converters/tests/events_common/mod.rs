//! Fixture helpers shared by golden tests: the captured catalog and the test_decoding output
//! of the golden scenarios (see `fixtures/README.md`), and `golden-diff.py`'s masks.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgseam_model::{ColumnSchema, Operation, Row, TableSchema, Value};
use pgseam_pgvalue::{decode_text, split_copy_text_row};
use regex::Regex;

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

/// Table schemas by table name, from `catalog.tsv`.
pub(crate) fn load_catalog(path: &Path) -> HashMap<String, Arc<TableSchema>> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
    cols.into_iter()
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
        .collect()
}

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

/// The masks of `golden-diff.py`, applied to key, value and header texts.
pub(crate) struct Masks(Vec<(Regex, &'static str)>);

impl Masks {
    pub(crate) fn new() -> Self {
        Masks(vec![
            (
                Regex::new(r#"("__debezium\.context\.runId","value":(?:\{"schema":\{[^{}]*\},"payload":)?)"[0-9a-f-]{36}""#)
                    .unwrap(),
                r#"$1"<runId>""#,
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

fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

fn skip_value(b: &[u8], i: usize) -> usize {
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
