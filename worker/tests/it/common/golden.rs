//! Byte-for-byte comparison of pgseam's records with real Debezium 3.6.3 captures
//! (`reference/debezium/golden/`, written by the harness's `DbzPeer`, one JSON line per record:
//! `{"destination":T,"headers":[{"key":K,"value":V},…],"key":K,"value":V}`, where the key, the
//! value and each header value are the converter's bytes spliced in verbatim).
//!
//! [`golden`] splits such lines into raw texts without re-serialising anything, [`consume`]
//! reads pgseam's records back as bytes (`pgseam_integration_tests::read_topics_raw`), and
//! [`mask`] blanks what `golden-diff.py` masks (processing timestamps, `txId`, `lsn`, `xmin`,
//! `sequence`, `"txId:LSN"` transaction ids).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use super::{Env, Pgseam};

/// How long a golden test waits for topics and records.
pub const WAIT: Duration = Duration::from_secs(120);

/// A file of the vendored harness folder `reference/debezium/`.
pub fn reference(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference/debezium")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One record as text: topic, key and value (`null` for none), and every header with its raw
/// value (`None` for a null value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub topic: String,
    pub key: String,
    pub value: String,
    pub headers: Vec<(String, Option<String>)>,
}

/// End of the JSON-ish value starting at `at`: a string, an object or array (balanced, strings
/// respected), or — for `SimpleHeaderConverter`'s raw header text, which is not JSON — the
/// text up to the next `}`.
fn value_end(s: &str, at: usize) -> usize {
    let b = s.as_bytes();
    match b[at] {
        b'"' => {
            let mut i = at + 1;
            while b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i + 1
        }
        b'{' | b'[' => {
            let (mut depth, mut i) = (0usize, at);
            loop {
                match b[i] {
                    b'"' => {
                        i = value_end(s, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => at + s[at..].find(['}', ',']).expect("unterminated value"),
    }
}

/// Splits one `DbzPeer` line into its raw parts.
pub fn parse_line(line: &str) -> Rec {
    let expect = |at: usize, lit: &str| {
        assert!(
            line[at..].starts_with(lit),
            "expected {lit:?} at {at}: {line}"
        );
        at + lit.len()
    };
    let mut at = expect(0, "{\"destination\":");
    let end = value_end(line, at);
    let topic: String = serde_json::from_str(&line[at..end]).unwrap();
    at = expect(end, ",\"headers\":[");
    let mut headers = Vec::new();
    while line.as_bytes()[at] == b'{' {
        at = expect(at, "{\"key\":");
        let end = value_end(line, at);
        let name: String = serde_json::from_str(&line[at..end]).unwrap();
        at = expect(end, ",\"value\":");
        let end = value_end(line, at);
        let value = &line[at..end];
        headers.push((name, (value != "null").then(|| value.to_owned())));
        at = expect(end, "}");
        if line.as_bytes()[at] == b',' {
            at += 1;
        }
    }
    at = expect(at, "],\"key\":");
    let end = value_end(line, at);
    let key = line[at..end].to_owned();
    at = expect(end, ",\"value\":");
    let value = line[at..line.len() - 1].to_owned();
    Rec {
        topic,
        key,
        value,
        headers,
    }
}

/// The records of a golden file (`path` below `reference/debezium/golden/`).
pub fn golden(path: &str) -> Vec<Rec> {
    reference(&format!("golden/{path}"))
        .lines()
        .map(parse_line)
        .collect()
}

/// Every record of `topics` as pgseam wrote it, waiting for at least `min` of them (then for
/// three quiet seconds). Within a topic partition the order is the broker's.
pub fn consume(bootstrap: &str, topics: &[String], min: usize) -> Vec<Rec> {
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 record");
    pgseam_integration_tests::read_topics_raw(bootstrap, topics, min, Duration::from_secs(3), WAIT)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .map(|m| Rec {
            topic: m.topic,
            key: m.key.map_or_else(|| "null".to_owned(), text),
            value: m.value.map_or_else(|| "null".to_owned(), text),
            headers: m
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.map(text)))
                .collect(),
        })
        .collect()
}

/// pgseam's records on every topic `expected` names, waiting for at least as many as `expected`
/// holds (see [`consume`]).
pub fn consume_like(bootstrap: &str, expected: &[Rec]) -> Vec<Rec> {
    let mut topics: Vec<String> = expected.iter().map(|r| r.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    consume(bootstrap, &topics, expected.len())
}

/// Replays capture `name` through pgseam as the harness replayed it through Debezium: the
/// capture's `sql/{sql}_schema.sql`, pgseam on connector `dbz` (one-partition topics, then
/// `settings`), and once it streams `sql/{sql}_stream.sql` and a `barrier` row naming `name`.
pub fn replay_capture(env: &Env, name: &str, sql: &str, settings: &[&str]) -> Pgseam {
    env.psql(&reference(&format!("sql/{sql}_schema.sql")));
    let mut connector = vec![
        "topic.creation.default.partitions=1",
        "topic.creation.default.replication.factor=1",
    ];
    connector.extend_from_slice(settings);
    let (worker, connector) = env.write_configs("dbz", &[], &connector);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(&reference(&format!("sql/{sql}_stream.sql")));
    env.psql(&format!("INSERT INTO barrier(note) VALUES ('{name}')"));
    pgseam
}

/// `expected` and `actual` grouped by topic (see [`by_topic`]), asserting first that both hold
/// the same topics; `context` is the failure message (the capture's name, pgseam's log).
pub fn by_topic_with_the_same_topics(
    expected: Vec<Rec>,
    actual: Vec<Rec>,
    context: &str,
) -> (BTreeMap<String, Vec<Rec>>, BTreeMap<String, Vec<Rec>>) {
    let expected = by_topic(expected);
    let actual = by_topic(actual);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "{context}"
    );
    (expected, actual)
}

/// Every header but pgseam's own (`pgseam.*`), the per-run `runId` value masked.
pub fn debezium_headers(rec: &Rec) -> Vec<(String, Option<String>)> {
    rec.headers
        .iter()
        .filter(|(k, _)| !k.starts_with("pgseam."))
        .map(|(k, v)| match k.as_str() {
            "__debezium.context.runId" => (k.clone(), None),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Asserts that every topic's records are the golden's, in order: key and value byte for byte
/// after [`mask`], headers by [`debezium_headers`]. Returns the number of records compared.
pub fn assert_records_match(
    expected: &BTreeMap<String, Vec<Rec>>,
    actual: &BTreeMap<String, Vec<Rec>>,
) -> usize {
    let mut compared = 0;
    for (topic, want) in expected {
        let got = &actual[topic];
        assert_eq!(want.len(), got.len(), "{topic}: record count\n{got:#?}");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert_eq!(
                mask(&w.key, &[]),
                mask(&g.key, &[]),
                "{topic} record {i}: key"
            );
            assert_eq!(
                mask(&w.value, &[]),
                mask(&g.value, &[]),
                "{topic} record {i}: value"
            );
            assert_eq!(
                debezium_headers(w),
                debezium_headers(g),
                "{topic} record {i}: headers"
            );
            compared += 1;
        }
    }
    compared
}

/// The names of every topic the broker has.
pub fn list_topics(bootstrap: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .expect("metadata")
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

/// `golden-diff.py`'s masks, plus `extra` integer fields (e.g. fields that SMTs copy from
/// `source`).
pub fn mask(s: &str, extra: &[&str]) -> String {
    let mut keys = vec!["ts_ms", "ts_us", "ts_ns", "txId", "lsn", "xmin"];
    keys.extend_from_slice(extra);
    let rx = Regex::new(&format!(
        r#""({})":-?\d+|"sequence":"(\\.|[^"\\])*"|"id":"\d+:\d+""#,
        keys.join("|")
    ))
    .unwrap();
    rx.replace_all(s, |c: &regex::Captures| match c.get(1) {
        Some(k) => format!("\"{}\":0", k.as_str()),
        None if c[0].starts_with("\"id\"") => "\"id\":\"\"".to_owned(),
        None => "\"sequence\":\"\"".to_owned(),
    })
    .into_owned()
}

/// Groups records by topic, keeping their order.
pub fn by_topic(records: Vec<Rec>) -> BTreeMap<String, Vec<Rec>> {
    let mut m: BTreeMap<String, Vec<Rec>> = BTreeMap::new();
    for r in records {
        m.entry(r.topic.clone()).or_default().push(r);
    }
    m
}

/// Where two JSON documents differ: the paths (`/payload/after/c`) of differing leaves, with
/// both values, at most `limit` of them. Diagnostics only (the comparison is on bytes).
pub fn json_diff(want: &str, got: &str, limit: usize) -> Vec<String> {
    fn walk(p: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::{Array, Object};
        match (a, b) {
            (Object(x), Object(y)) => {
                for (k, v) in x {
                    match y.get(k) {
                        Some(w) => walk(&format!("{p}/{k}"), v, w, out),
                        None => out.push(format!("{p}/{k}: missing, want {v}")),
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.push(format!("{p}/{k}: unexpected {}", y[k]));
                }
            }
            (Array(x), Array(y)) if x.len() == y.len() => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    let name = v.get("field").and_then(|f| f.as_str());
                    walk(
                        &format!("{p}/{}", name.map_or(i.to_string(), str::to_owned)),
                        v,
                        w,
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{p}: want {a} got {b}")),
            _ => {}
        }
    }
    match (
        serde_json::from_str::<serde_json::Value>(want),
        serde_json::from_str::<serde_json::Value>(got),
    ) {
        (Ok(a), Ok(b)) => {
            let mut out = Vec::new();
            walk("", &a, &b, &mut out);
            out.truncate(limit);
            out
        }
        _ => vec!["(not JSON)".to_owned()],
    }
}

/// `assert_eq!` on long texts, showing where they first differ.
pub fn same(want: &str, got: &str, what: &str) {
    if want == got {
        return;
    }
    let at = want
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map_or(want.len().min(got.len()), |((i, _), _)| i);
    let from = want[..at]
        .char_indices()
        .rev()
        .nth(150)
        .map_or(0, |(i, _)| i);
    panic!(
        "{what}: first difference at byte {at}\n want: …{}\n  got: …{}",
        &want[from..],
        got.get(from..).unwrap_or(got)
    );
}

#[test]
fn parses_json_and_simple_header_lines() {
    let json = r#"{"destination":"dbz.public.t","headers":[{"key":"__debezium.newkey","value":{"schema":{"type":"struct"},"payload":{"id":2}}},{"key":"h","value":null}],"key":{"schema":{"a":"}"},"payload":{"id":1}},"value":null}"#;
    let r = parse_line(json);
    assert_eq!(r.topic, "dbz.public.t");
    assert_eq!(
        r.headers,
        vec![
            (
                "__debezium.newkey".to_owned(),
                Some(r#"{"schema":{"type":"struct"},"payload":{"id":2}}"#.to_owned())
            ),
            ("h".to_owned(), None)
        ]
    );
    assert_eq!(r.key, r#"{"schema":{"a":"}"},"payload":{"id":1}}"#);
    assert_eq!(r.value, "null");
    let simple = r#"{"destination":"x","headers":[{"key":"a","value":dbz},{"key":"b","value":{"id":20}}],"key":null,"value":{"v":1}}"#;
    let r = parse_line(simple);
    assert_eq!(
        r.headers,
        vec![
            ("a".to_owned(), Some("dbz".to_owned())),
            ("b".to_owned(), Some(r#"{"id":20}"#.to_owned()))
        ]
    );
    assert_eq!((r.key.as_str(), r.value.as_str()), ("null", r#"{"v":1}"#));
}
