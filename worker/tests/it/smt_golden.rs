//! Single message transforms end to end against real Debezium 3.6.3: the pgseam binary runs
//! each capture of `reference/debezium/bin/capture-smt.sh` (the same `transforms.*` and
//! `predicates.*` settings, `sql/smt_schema.sql` snapshotted, `sql/smt_stream.sql` streamed,
//! then a barrier row) and every topic's records must equal the golden lines of
//! `reference/debezium/golden/smt/<capture>.jsonl` for that topic, in order, **byte for byte**
//! (key and value as consumed, after the masks of `golden-diff.py`: processing timestamps,
//! `txId`, `lsn`, `xmin`, `sequence`), with the same headers (apart from Debezium's
//! `__debezium.context.*` and pgseam's `pgseam.*`) in the same order, byte for byte: pgseam
//! runs with `header.converter=JsonConverter` as the captures did, except for
//! `unwrap_default_simple_headers` (SimpleHeaderConverter; a null is written empty by pgseam,
//! COMPATIBILITY.md). No other topic under the prefix may appear.
//!
//! One difference outside transforms is substituted in the expected text (COMPATIBILITY.md,
//! "snapshot marker"): the first snapshot record is `first` in pgseam, `first_in_data_collection`
//! in Debezium when the alphabetically first table (`barrier`) is empty. `unwrap_drop` of the
//! script has no golden file.

use crate::common;
use crate::common::golden;

use common::Env;
use golden::{
    by_topic_with_the_same_topics, consume_like, golden, list_topics, mask, replay_capture, same,
    Rec,
};

/// Integer fields the transforms copy from `source` (masked as `golden-diff.py` masks them).
const MASKED: &[&str] = &[
    "__source_ts_ms",
    "meta_ts_ms",
    "meta_pos",
    "meta_source_xmin",
];

fn compared_header(name: &str) -> bool {
    !name.starts_with("__debezium.context.") && !name.starts_with("pgseam.")
}

/// The compared headers; those carrying per-run numbers (`source.ts_ms`, LSNs) with their
/// digits masked.
fn headers(rec: &Rec) -> Vec<(String, Option<String>)> {
    let digits = regex::Regex::new(r"\d+").unwrap();
    rec.headers
        .iter()
        .filter(|(k, _)| compared_header(k))
        .map(|(k, v)| match k.as_str() {
            "__source_ts_ms" | "LSN" => (
                k.clone(),
                v.as_ref().map(|v| digits.replace_all(v, "0").into_owned()),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Runs one capture's settings through pgseam and compares with its golden file; `fix` may
/// rewrite expected records (a documented deliberate difference). The captures ran headers
/// through JsonConverter (`*_simple_headers`: SimpleHeaderConverter), and so does pgseam here,
/// so header values compare byte for byte too.
fn run(name: &str, settings: &[&str], fix: impl Fn(&mut Rec)) {
    let env = Env::start("smt");
    let simple = name.ends_with("_simple_headers");
    let mut connector = vec![];
    if !simple {
        connector.push("header.converter=org.apache.kafka.connect.json.JsonConverter");
        // The harness's `converter.schemas.enable=false` reaches the header converter too.
        if settings.contains(&"value.converter.schemas.enable=false") {
            connector.push("header.converter.schemas.enable=false");
        }
    }
    connector.extend_from_slice(settings);
    let pgseam = replay_capture(&env, name, "smt", &connector);

    let mut expected = golden(&format!("smt/{name}.jsonl"));
    // Not about transforms: the alphabetically first table (`barrier`) is empty at the
    // snapshot, and Debezium then marks no record `first` (the next table's first record is
    // `first_in_data_collection`) where pgseam marks the first record it writes `first`.
    for rec in expected.iter_mut() {
        // The marker as a header value: raw (SimpleHeaderConverter) or as JSON's payload.
        let marked = |v: &Option<String>| {
            v.as_deref().is_some_and(|v| {
                v == "first_in_data_collection"
                    || v.contains("\"payload\":\"first_in_data_collection\"")
            })
        };
        if rec.value.contains("\"first_in_data_collection\"")
            || rec.headers.iter().any(|(_, v)| marked(v))
        {
            rec.value = rec
                .value
                .replacen("\"first_in_data_collection\"", "\"first\"", 1);
            for (_, v) in rec.headers.iter_mut() {
                if let Some(v) = v {
                    *v = if v == "first_in_data_collection" {
                        "first".to_owned()
                    } else {
                        v.replace(
                            "\"payload\":\"first_in_data_collection\"",
                            "\"payload\":\"first\"",
                        )
                    };
                }
            }
            break;
        }
    }
    expected.iter_mut().for_each(&fix);
    let total = expected.len();
    let bootstrap = env.broker.bootstrap_servers();
    let mut actual = consume_like(&bootstrap, &expected);
    if simple {
        // SimpleHeaderConverter turns a null value into null bytes: Debezium's embedded engine
        // (the harness) then drops the header (`ConverterBuilder.toFormat`), a Connect worker
        // keeps it with a null value, pgseam writes it with an empty value (COMPATIBILITY.md).
        for r in &mut actual {
            r.headers.retain(|(_, v)| v.as_deref() != Some(""));
        }
    }
    let all_topics = list_topics(&bootstrap);
    let log = pgseam.log_text();

    let stray: Vec<&String> = all_topics
        .iter()
        .filter(|t| t.starts_with("dbz") && !expected.iter().any(|r| &r.topic == *t))
        .collect();
    let (expected, actual) =
        by_topic_with_the_same_topics(expected, actual, &format!("{name}: topics\n{log}"));
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
                &mask(&w.key, MASKED),
                &mask(&g.key, MASKED),
                &format!("{name} {topic} record {i}: key"),
            );
            same(
                &mask(&w.value, MASKED),
                &mask(&g.value, MASKED),
                &format!("{name} {topic} record {i}: value"),
            );
            assert_eq!(headers(w), headers(g), "{name} {topic} record {i}: headers");
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

/// The same with SimpleHeaderConverter (a Connect worker's default): the added headers' raw
/// text (`r`, `1795501521146`, `smt`, `first`), a null value empty.
#[test]
fn unwrap_default_with_simple_headers_matches_debezium() {
    run(
        "unwrap_default_simple_headers",
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
