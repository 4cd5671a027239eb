//! Single message transforms end to end against real Debezium 3.6.3: the pgseam binary runs
//! each capture of `reference/debezium/bin/capture-smt.sh` (the same `transforms.*` and
//! `predicates.*` settings, `sql/smt_schema.sql` snapshotted, `sql/smt_stream.sql` streamed,
//! then a barrier row) and every topic's records must equal the golden lines of
//! `reference/debezium/golden/smt/<capture>.jsonl` for that topic, in order, **byte for byte**
//! (key and value as consumed, after the masks of `golden-diff.py`: processing timestamps,
//! `txId`, `lsn`, `xmin`, `sequence`), with the same headers (apart from Debezium's
//! `__debezium.context.*` and pgseam's `pgseam.*`) in the same order: a header's value is its
//! `SimpleHeaderConverter` text (the golden files show it as JsonConverter payload; a null is
//! written empty by pgseam, COMPATIBILITY.md). No other topic under the prefix may appear.
//!
//! One difference outside transforms is substituted in the expected text (COMPATIBILITY.md,
//! "snapshot marker"): the first snapshot record is `first` in pgseam, `first_in_data_collection`
//! in Debezium when the alphabetically first table (`barrier`) is empty. `unwrap_drop` of the
//! script has no golden file.

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

/// One record as text: topic, key, value (`null` for none), headers.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Rec {
    topic: String,
    key: String,
    value: String,
    headers: Vec<(String, String)>,
}

fn compared_header(name: &str) -> bool {
    !name.starts_with("__debezium.context.") && !name.starts_with("pgseam.")
}

/// A golden header's value as `SimpleHeaderConverter` writes it: strings raw, numbers and
/// structs as their JSON text, null empty.
fn header_text(v: &serde_json::Value) -> String {
    let payload = match v {
        serde_json::Value::Object(m) if m.contains_key("schema") && m.contains_key("payload") => {
            &m["payload"]
        }
        other => other,
    };
    match payload {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The golden records: key and value are the raw JsonConverter text spliced into each line.
fn golden(name: &str) -> Vec<Rec> {
    let text = reference(&format!("golden/smt/{name}.jsonl"));
    text.lines()
        .map(|line| {
            let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
            let key_at = line.find("],\"key\":").unwrap() + 8;
            let value_at = key_at + line[key_at..].find(",\"value\":").unwrap();
            let headers = parsed["headers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| compared_header(h["key"].as_str().unwrap()))
                .map(|h| {
                    (
                        h["key"].as_str().unwrap().to_owned(),
                        header_text(&h["value"]),
                    )
                })
                .collect();
            Rec {
                topic: parsed["destination"].as_str().unwrap().to_owned(),
                key: line[key_at..value_at].to_owned(),
                value: line[value_at + 9..line.len() - 1].to_owned(),
                headers,
            }
        })
        .collect()
}

/// Every record of `topics`, raw, in partition order (one partition per topic), and the names
/// of every topic the broker has.
fn consume(bootstrap: &str, topics: &[String], min: usize) -> (Vec<Rec>, Vec<String>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pgseam-smt-golden")
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
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .filter(|h| compared_header(h.key))
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    h.value.map_or(String::new(), |v| {
                                        String::from_utf8(v.to_vec()).unwrap()
                                    }),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Rec {
                    topic: m.topic().to_owned(),
                    key: text(m.key()),
                    value: text(m.payload()),
                    headers,
                });
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {
                if out.len() >= min && last.elapsed() > Duration::from_secs(3) {
                    break;
                }
                assert!(
                    started.elapsed() < WAIT,
                    "only {} of {min} records arrived: {out:#?}",
                    out.len()
                );
            }
        }
    }
    let all = consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap()
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    (out, all)
}

fn mask(s: &str) -> String {
    let rx = Regex::new(
        r#""(ts_ms|ts_us|ts_ns|txId|lsn|xmin|__source_ts_ms|meta_ts_ms|meta_pos|meta_source_xmin)":-?\d+|"sequence":"(\\.|[^"\\])*"|"id":"\d+:\d+""#,
    )
    .unwrap();
    rx.replace_all(s, |c: &regex::Captures| match c.get(1) {
        Some(k) => format!("\"{}\":0", k.as_str()),
        None if c[0].starts_with("\"id\"") => "\"id\":\"\"".to_owned(),
        None => "\"sequence\":\"\"".to_owned(),
    })
    .into_owned()
}

/// Headers carrying per-run values (`source.ts_ms`, LSNs) compare by name only.
fn mask_headers(h: &[(String, String)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| match k.as_str() {
            "__source_ts_ms" | "LSN" => (k.clone(), "<masked>".to_owned()),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// `assert_eq!` on long texts, showing where they first differ.
fn same(want: &str, got: &str, what: &str) {
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

fn by_topic(records: Vec<Rec>) -> BTreeMap<String, Vec<Rec>> {
    let mut m: BTreeMap<String, Vec<Rec>> = BTreeMap::new();
    for r in records {
        m.entry(r.topic.clone()).or_default().push(r);
    }
    m
}

/// Runs one capture's settings through pgseam and compares with its golden file; `fix` may
/// rewrite expected records (a documented deliberate difference).
fn run(name: &str, settings: &[&str], fix: impl Fn(&mut Rec)) {
    let env = Env::start("smt");
    env.psql(&reference("sql/smt_schema.sql"));
    let mut connector = vec![
        "topic.creation.default.partitions=1",
        "topic.creation.default.replication.factor=1",
    ];
    connector.extend_from_slice(settings);
    let (worker, connector) = env.write_configs("dbz", &[], &connector);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(&reference("sql/smt_stream.sql"));
    env.psql(&format!("INSERT INTO barrier(note) VALUES ('{name}')"));

    let mut expected = golden(name);
    // Not about transforms: the alphabetically first table (`barrier`) is empty at the
    // snapshot, and Debezium then marks no record `first` (the next table's first record is
    // `first_in_data_collection`) where pgseam marks the first record it writes `first`.
    for rec in expected.iter_mut() {
        if rec.value.contains("\"first_in_data_collection\"")
            || rec
                .headers
                .iter()
                .any(|(_, v)| v == "first_in_data_collection")
        {
            rec.value = rec
                .value
                .replacen("\"first_in_data_collection\"", "\"first\"", 1);
            for (_, v) in rec.headers.iter_mut() {
                if v == "first_in_data_collection" {
                    *v = "first".to_owned();
                }
            }
            break;
        }
    }
    expected.iter_mut().for_each(&fix);
    let mut topics: Vec<String> = expected.iter().map(|r| r.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    let total = expected.len();
    let (actual, all_topics) = consume(&env.broker.bootstrap_servers(), &topics, total);
    let log = pgseam.log_text();

    let stray: Vec<&String> = all_topics
        .iter()
        .filter(|t| t.starts_with("dbz") && !topics.contains(t))
        .collect();
    let expected = by_topic(expected);
    let actual = by_topic(actual);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "{name}: topics\n{log}"
    );
    let mut compared = 0;
    for (topic, want) in &expected {
        let got = &actual[topic];
        assert_eq!(
            want.len(),
            got.len(),
            "{name} {topic}: record count\nwant {want:#?}\ngot {got:#?}"
        );
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            same(
                &mask(&w.key),
                &mask(&g.key),
                &format!("{name} {topic} record {i}: key"),
            );
            same(
                &mask(&w.value),
                &mask(&g.value),
                &format!("{name} {topic} record {i}: value"),
            );
            assert_eq!(
                mask_headers(&w.headers),
                mask_headers(&g.headers),
                "{name} {topic} record {i}: headers"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, total);
    assert!(stray.is_empty(), "{name}: unexpected topics {stray:?}");
}

const UNWRAP: &str = "transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState";
const NO_SCHEMAS: [&str; 4] = [
    "key.converter=org.apache.kafka.connect.json.JsonConverter",
    "value.converter=org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable=false",
    "value.converter.schemas.enable=false",
];

fn no_fix(_: &mut Rec) {}

#[test]
fn unwrap_rewrite_matches_debezium() {
    run(
        "unwrap_rewrite",
        &[
            "transforms=unwrap",
            UNWRAP,
            "transforms.unwrap.delete.tombstone.handling.mode=rewrite",
            "transforms.unwrap.add.fields=op,source.ts_ms",
        ],
        no_fix,
    );
}

#[test]
fn unwrap_rewrite_without_schemas_matches_debezium() {
    let mut settings = NO_SCHEMAS.to_vec();
    settings.extend([
        "transforms=unwrap",
        UNWRAP,
        "transforms.unwrap.delete.tombstone.handling.mode=rewrite",
        "transforms.unwrap.add.fields=op,source.ts_ms",
    ]);
    run("unwrap_rewrite_noschema", &settings, no_fix);
}

#[test]
fn unwrap_default_with_headers_matches_debezium() {
    run(
        "unwrap_default",
        &[
            "transforms=unwrap",
            UNWRAP,
            "transforms.unwrap.add.headers=op,source.ts_ms,db,source.snapshot,transaction.id",
        ],
        no_fix,
    );
}

#[test]
fn unwrap_fields_matches_debezium() {
    run(
        "unwrap_fields",
        &[
            "transforms=unwrap",
            UNWRAP,
            "transforms.unwrap.delete.tombstone.handling.mode=rewrite-with-tombstone",
            "transforms.unwrap.add.fields=op,table,source.lsn:pos,ts_ms,source.snapshot,source.xmin,transaction.id,nosuch",
            "transforms.unwrap.add.fields.prefix=meta_",
            "transforms.unwrap.add.headers=lsn:LSN,op",
            "transforms.unwrap.add.headers.prefix=",
        ],
        no_fix,
    );
}

#[test]
fn unwrap_delete_to_tombstone_matches_debezium() {
    let mut settings = NO_SCHEMAS.to_vec();
    settings.extend([
        "transforms=unwrap",
        UNWRAP,
        "transforms.unwrap.delete.tombstone.handling.mode=delete-to-tombstone",
        "transforms.unwrap.add.fields=op",
    ]);
    run("unwrap_delete_to_tombstone", &settings, no_fix);
}

#[test]
fn unwrap_then_regex_router_matches_debezium() {
    run(
        "unwrap_route",
        &[
            "transforms=unwrap,route",
            UNWRAP,
            "transforms.unwrap.delete.tombstone.handling.mode=rewrite",
            "transforms.unwrap.add.fields=op,source.ts_ms",
            "transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex=([^.]+)\\\\.public\\\\.(.*)",
            "transforms.route.replacement=$1_$2_cdc",
        ],
        no_fix,
    );
}

#[test]
fn predicates_match_debezium() {
    run(
        "predicates",
        &[
            "transforms=unwrap,route,route2",
            UNWRAP,
            "transforms.unwrap.predicate=isTomb",
            "transforms.unwrap.negate=true",
            "transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex=.*\\\\.(orders_.)",
            "transforms.route.replacement=orders.$1",
            "transforms.route.predicate=isOrders",
            "transforms.route2.type=org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route2.regex=(.*)",
            "transforms.route2.replacement=$1.other",
            "transforms.route2.predicate=isOrders",
            "transforms.route2.negate=true",
            "predicates=isTomb,isOrders,hasKey",
            "predicates.isTomb.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            "predicates.isOrders.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            "predicates.isOrders.pattern=dbz\\\\.public\\\\.orders_.*",
            "predicates.hasKey.type=org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            "predicates.hasKey.name=__debezium.newkey",
        ],
        no_fix,
    );
}

#[test]
fn header_predicate_matches_debezium() {
    run(
        "header_predicate",
        &[
            "transforms=unwrap",
            UNWRAP,
            "transforms.unwrap.predicate=hasKey",
            "predicates=hasKey",
            "predicates.hasKey.type=org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            "predicates.hasKey.name=__debezium.newkey",
        ],
        no_fix,
    );
}

const REROUTE: &str = "transforms.Reroute.type=io.debezium.transforms.ByLogicalTableRouter";

#[test]
fn logical_router_matches_debezium() {
    run(
        "logical_router",
        &[
            "transforms=Reroute",
            REROUTE,
            "transforms.Reroute.topic.regex=(.*)\\\\.public\\\\.orders_(.*)",
            "transforms.Reroute.topic.replacement=$1.orders_all",
        ],
        no_fix,
    );
}

#[test]
fn logical_router_key_field_then_unwrap_matches_debezium() {
    run(
        "logical_router_key",
        &[
            "transforms=Reroute,unwrap",
            REROUTE,
            "transforms.Reroute.topic.regex=(.*)\\\\.public\\\\.orders_(.*)",
            "transforms.Reroute.topic.replacement=$1.orders_all",
            "transforms.Reroute.key.field.name=shard",
            "transforms.Reroute.key.field.regex=.*orders_(.*)",
            "transforms.Reroute.key.field.replacement=$1",
            UNWRAP,
            "transforms.unwrap.delete.tombstone.handling.mode=rewrite",
        ],
        no_fix,
    );
}

#[test]
fn logical_router_without_key_uniqueness_matches_debezium() {
    let mut settings = NO_SCHEMAS.to_vec();
    settings.extend([
        "transforms=Reroute",
        REROUTE,
        "transforms.Reroute.topic.regex=(.*)\\\\.public\\\\.(items|orders_a)",
        "transforms.Reroute.topic.replacement=$1.merged",
        "transforms.Reroute.key.enforce.uniqueness=false",
    ]);
    run("logical_router_nounique", &settings, no_fix);
}
