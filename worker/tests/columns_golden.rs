//! Column shaping end to end against real Debezium 3.6.3: the pgseam binary captures the
//! schema and changes that `reference/debezium/bin/capture-columns.sh` ran for the goldens in
//! `reference/debezium/golden/columns/` (`sql/columns_schema.sql`, `sql/columns_stream.sql`,
//! a barrier row), with the same `column.exclude.list` / `column.include.list`,
//! `column.truncate.to.3.chars`, `column.mask.with.5.chars`, `column.mask.hash[.v2].*` and
//! `message.key.columns` settings, and every topic's records must equal the golden lines of
//! that topic, in order, **byte for byte** (key and value, raw as consumed), after the masks of
//! `golden-diff.py` (processing timestamps, `txId`, `lsn`, `sequence`). The key-change headers
//! (`__debezium.newkey` / `__debezium.oldkey`) must be on the same records with the same key.
//!
//! The `names_*` captures (`sql/names_*.sql`) do the same for `schema.name.adjustment.mode`,
//! `field.name.adjustment.mode` (`avro`, `avro_unicode`) and `topic.delimiter` (with
//! transaction metadata, whose topic follows the delimiter; its `"id":"txId:LSN"` is masked too).
//!
//! One deliberate difference is substituted in the expected text: Debezium's snapshot leaves
//! excluded columns out of its `SELECT`, so an excluded key column (or `message.key.columns`
//! column) reads as null and the snapshot key is `0` / `null`; pgseam writes the real value,
//! as Debezium's own streaming does (`COMPATIBILITY.md`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Env, Pgseam};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use regex::Regex;

const WAIT: Duration = Duration::from_secs(120);

fn reference(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference/debezium")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One record as text: topic, key, value (`null` for none), and the key-change header.
#[derive(Debug, PartialEq, Eq)]
struct Rec {
    topic: String,
    key: String,
    value: String,
    key_header: Option<(String, String)>,
}

/// The golden records: key and value are the raw JsonConverter text spliced into each line;
/// the key-change header's payload is taken from its JsonConverter form.
fn golden(name: &str) -> Vec<Rec> {
    let text = reference(&format!("golden/columns/{name}.jsonl"));
    let header_rx = Regex::new(
        r#"\{"key":"(__debezium\.(?:newkey|oldkey))","value":\{"schema":.*?,"payload":(\{[^{}]*\})\}\}"#,
    )
    .unwrap();
    text.lines()
        .map(|line| {
            let topic_end = line[16..].find('"').unwrap() + 16;
            let topic = line[16..topic_end].to_owned();
            let key_at = line.find("],\"key\":").unwrap() + 8;
            let value_at = key_at + line[key_at..].find(",\"value\":").unwrap();
            let key_header = header_rx
                .captures(&line[..key_at])
                .map(|c| (c[1].to_owned(), c[2].to_owned()));
            Rec {
                topic,
                key: line[key_at..value_at].to_owned(),
                value: line[value_at + 9..line.len() - 1].to_owned(),
                key_header,
            }
        })
        .collect()
}

/// Every record of `topics`, raw, in partition order (one partition per topic).
fn consume(bootstrap: &str, topics: &[String], min: usize) -> Vec<Rec> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pgseam-columns-golden")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let started = Instant::now();
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .unwrap();
            let n = metadata
                .topics()
                .iter()
                .find(|t| t.name() == *topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if n > 0 {
                for p in 0..n as i32 {
                    assignment
                        .add_partition_offset(topic, p, Offset::Beginning)
                        .unwrap();
                }
                break;
            }
            assert!(started.elapsed() < WAIT, "topic {topic} did not appear");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let text = |b: Option<&[u8]>| {
                    b.map_or("null".to_owned(), |b| {
                        String::from_utf8(b.to_vec()).unwrap()
                    })
                };
                let key_header = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "__debezium.newkey" || h.key == "__debezium.oldkey")
                        .map(|h| (h.key.to_owned(), text(h.value)))
                });
                out.push(Rec {
                    topic: m.topic().to_owned(),
                    key: text(m.key()),
                    value: text(m.payload()),
                    key_header,
                });
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {
                if out.len() >= min && last.elapsed() > Duration::from_secs(3) {
                    return out;
                }
                assert!(
                    started.elapsed() < WAIT,
                    "only {} of {min} records arrived",
                    out.len()
                );
            }
        }
    }
}

fn mask(s: &str) -> String {
    let rx = Regex::new(
        r#""(ts_ms|ts_us|ts_ns|txId|lsn)":-?\d+|"sequence":"(\\.|[^"\\])*"|"id":"\d+:\d+""#,
    )
    .unwrap();
    rx.replace_all(s, |c: &regex::Captures| match c.get(1) {
        Some(k) => format!("\"{}\":0", k.as_str()),
        None if c[0].starts_with("\"id\"") => "\"id\":\"\"".to_owned(),
        None => "\"sequence\":\"\"".to_owned(),
    })
    .into_owned()
}

fn by_topic(records: Vec<Rec>) -> BTreeMap<String, Vec<Rec>> {
    let mut m: BTreeMap<String, Vec<Rec>> = BTreeMap::new();
    for r in records {
        m.entry(r.topic.clone()).or_default().push(r);
    }
    m
}

/// Runs one capture's settings through pgseam and compares with its golden file.
/// `fixes`: (topic, golden text, pgseam text) replaced in the expected key and value of the
/// topic's snapshot records: known differences that are not about column shaping.
fn run(name: &str, sql: &str, settings: &[&str], fixes: &[(&str, &str, &str)]) {
    let env = Env::start("cols");
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

    let mut expected = golden(name);
    for rec in &mut expected {
        for (topic, from, to) in fixes {
            if rec.topic == *topic && rec.value.contains("\"op\":\"r\"") {
                rec.key = rec.key.replace(from, to);
                rec.value = rec.value.replace(from, to);
            }
        }
    }
    let mut topics: Vec<String> = expected.iter().map(|r| r.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    let total = expected.len();
    let actual = consume(&env.broker.bootstrap_servers(), &topics, total);
    let log = pgseam.log_text();

    let expected = by_topic(expected);
    let actual = by_topic(actual);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "{log}"
    );
    let mut compared = 0;
    for (topic, want) in &expected {
        let got = &actual[topic];
        assert_eq!(want.len(), got.len(), "{topic}: record count\n{got:#?}");
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert_eq!(mask(&w.key), mask(&g.key), "{topic} record {i}: key");
            assert_eq!(mask(&w.value), mask(&g.value), "{topic} record {i}: value");
            assert_eq!(w.key_header, g.key_header, "{topic} record {i}: key header");
            compared += 1;
        }
    }
    assert_eq!(compared, total);
}

#[test]
fn exclude_list_mappers_and_message_key_columns_match_debezium() {
    run(
        "columns_exclude",
        "columns",
        &[
            "column.exclude.list=public.cust.extra,.*\\\\.secret,public.hidden_pk.id,public.mixed.other",
            "column.mask.with.5.chars=public.cust.ssn,public.cust.score,public.cust.feeling,public.cust.email",
            "column.truncate.to.3.chars=public.cust.name,public.cust.code,public.cust.photo,public.cust.score,public.cust.email",
            "column.mask.hash.SHA-256.with.salt.pepper=public.cust.bio",
            "column.mask.hash.v2.MD5.with.salt.salt2=public.orders_def.comment",
            "message.key.columns=public.orders:cust_id,region;public.nokey:a;public.orders_def:cust_id",
        ],
        &[(
            "dbz.public.hidden_pk",
            "\"payload\":{\"id\":0}",
            "\"payload\":{\"id\":100}",
        )],
    );
}

#[test]
fn include_list_matches_debezium() {
    run(
        "columns_include",
        "columns",
        &[
            "column.include.list=public\\\\.cust\\\\.(id|name|email),public.orders.*,public.nokey.b,public.barrier.*,public.orders_def.region,public.Mixed.val",
            "message.key.columns=public.nokey:a",
        ],
        &[
            (
                "dbz.public.Mixed",
                "\"payload\":{\"Id\":0}",
                "\"payload\":{\"Id\":100}",
            ),
            (
                "dbz.public.nokey",
                "\"payload\":{\"a\":null}",
                "\"payload\":{\"a\":100}",
            ),
        ],
    );
}

#[test]
fn avro_name_adjustment_matches_debezium() {
    run(
        "names_avro",
        "names",
        &[
            "schema.name.adjustment.mode=avro",
            "field.name.adjustment.mode=avro",
        ],
        FIRST_TABLE_EMPTY,
    );
}

#[test]
fn avro_unicode_name_adjustment_matches_debezium() {
    run(
        "names_avro_unicode",
        "names",
        &[
            "schema.name.adjustment.mode=avro_unicode",
            "field.name.adjustment.mode=avro_unicode",
        ],
        FIRST_TABLE_EMPTY,
    );
}

#[test]
fn topic_delimiter_matches_debezium() {
    run(
        "names_delimiter",
        "names",
        &["topic.delimiter=_", "provide.transaction.metadata=true"],
        &[(
            "dbz_public_my-table",
            "\"snapshot\":\"last_in_data_collection\"",
            "\"snapshot\":\"first\"",
        )],
    );
}

/// Not about names: when the alphabetically first table (`barrier`) is empty, Debezium marks the
/// snapshot's first record `last_in_data_collection` (its one-row table) where pgseam writes
/// `first` (a snapshot-marker difference outside this test's subject).
const FIRST_TABLE_EMPTY: &[(&str, &str, &str)] = &[(
    "dbz.public.my-table",
    "\"snapshot\":\"last_in_data_collection\"",
    "\"snapshot\":\"first\"",
)];
