//! Incremental-snapshot rows against real Debezium 3.6.3 (issue 9): the scenario of
//! `worker/tests/golden/incremental/` (`schema.sql`, then `stream.sql`: a streamed insert, the
//! `execute-snapshot` signal with an update in its transaction, windows of 2 keys, a delete and
//! an end marker after) runs through pgseam, and the `items` topic must equal Debezium's
//! records in `debezium.jsonl` (captured by `capture.sh`) line by line, key and value with
//! schemas, after `golden-diff.py`'s masks only: `ts_ms`/`ts_us`/`ts_ns`, `txId`, `lsn`,
//! `xmin` *numbers* (a `null` stays a `null`, so incremental rows must carry no `txId`, `lsn`
//! or `xmin`, as Debezium's) and `sequence` (positions differ between clusters). What the masks
//! hide is checked by structure instead: an incremental row's `sequence` is `["N","N"]`, the
//! position of its window's high watermark, and its `source.ts_ms` is the top-level `ts_ms`
//! (emission time, not a commit time: not before the signal's commit, at most the envelope's
//! `ts_ms`). The signal table's topic is not compared: Debezium's
//! default watermarking writes open/close rows there, pgseam's default writes none
//! (COMPATIBILITY.md).

use crate::common;
use crate::common::golden;

use common::{Env, Pgseam};
use golden::{consume, mask, parse_line, same, WAIT};

const GOLDEN: &str = include_str!("../golden/incremental/debezium.jsonl");
const SCHEMA: &str = include_str!("../golden/incremental/schema.sql");
const STREAM: &str = include_str!("../golden/incremental/stream.sql");

/// The `source` fields an incremental row's position is checked by: its `sequence` must be
/// two equal, non-null LSNs and `source.ts_ms` must be the time of emission.
fn check_incremental_source(value: &str, signal_ms: i64, who: &str) {
    let v: serde_json::Value = serde_json::from_str(value).expect("value JSON");
    let p = &v["payload"];
    if p["source"]["snapshot"] != "incremental" {
        return;
    }
    let seq: Vec<Option<String>> =
        serde_json::from_str(p["source"]["sequence"].as_str().expect("sequence")).unwrap();
    assert!(
        seq.len() == 2 && seq[0].is_some() && seq[0] == seq[1],
        "{who}: incremental row's sequence {seq:?} is not [hw, hw]"
    );
    for f in ["txId", "lsn", "xmin"] {
        assert!(
            p["source"][f].is_null(),
            "{who}: incremental row has source.{f}"
        );
    }
    // Emission time: not before the signal's commit (`signal_ms`, the source time of the update
    // in the signal's transaction) and at most the envelope's `ts_ms` (taken just after; the
    // two are the same millisecond in the capture, but need not be).
    let src_ms = p["source"]["ts_ms"].as_i64().expect("source.ts_ms");
    let ts_ms = p["ts_ms"].as_i64().expect("ts_ms");
    assert!(
        signal_ms <= src_ms && src_ms <= ts_ms && ts_ms - src_ms < 5_000,
        "{who}: source.ts_ms {src_ms} of an incremental row is not its emission time \
         (signal committed at {signal_ms}, record made at {ts_ms})"
    );
}

/// `source.ts_ms` of the streamed update committed with the signal (the second record).
fn signal_ms(values: &[&str]) -> i64 {
    let v: serde_json::Value = serde_json::from_str(values[1]).expect("value JSON");
    assert_eq!(
        v["payload"]["op"], "u",
        "second items record: the update with the signal"
    );
    v["payload"]["source"]["ts_ms"].as_i64().unwrap()
}

#[test]
fn incremental_snapshot_rows_match_debezium() {
    let env = Env::start("incgold");
    env.psql(SCHEMA);
    let (worker, connector) = env.write_configs(
        "dbz",
        &[],
        &[
            // one partition: Debezium's capture is one ordered sequence
            "topic.creation.default.partitions=1",
            "topic.creation.default.replication.factor=1",
            "publication.name=dbz_publication",
            "snapshot.mode=no_data",
            "table.include.list=public.items,public.dbz_signal",
            "signal.data.collection=public.dbz_signal",
            "incremental.snapshot.chunk.size=2",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(STREAM);

    let want: Vec<_> = GOLDEN
        .lines()
        .map(parse_line)
        .filter(|r| r.topic == "dbz.public.items")
        .collect();
    assert_eq!(want.len(), 11, "golden items records");
    let got = consume(
        &env.broker.bootstrap_servers(),
        &["dbz.public.items".to_owned()],
        want.len(),
    );
    pgseam.terminate(WAIT);
    for r in &got {
        println!("pgseam {} {}", r.key, mask(&r.value, &[]));
    }
    let values = |rs: &[golden::Rec]| -> Vec<String> {
        rs.iter()
            .filter(|r| r.value != "null")
            .map(|r| r.value.clone())
            .collect()
    };
    for (who, vals) in [("Debezium", values(&want)), ("pgseam", values(&got))] {
        let vals: Vec<&str> = vals.iter().map(String::as_str).collect();
        let at = signal_ms(&vals);
        for v in &vals {
            check_incremental_source(v, at, who);
        }
    }
    assert_eq!(
        got.len(),
        want.len(),
        "pgseam wrote {} items records, Debezium {}",
        got.len(),
        want.len()
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        same(
            &mask(&w.key, &[]),
            &mask(&g.key, &[]),
            &format!("record {i} key"),
        );
        same(
            &mask(&w.value, &[]),
            &mask(&g.value, &[]),
            &format!("record {i} value"),
        );
    }
}
