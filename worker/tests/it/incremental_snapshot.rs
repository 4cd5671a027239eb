//! Signalled incremental snapshots (issue 9): Debezium's signals, through the signaling table
//! (`source` channel) and pgseam's `POST /connectors/{name}/signals`, read tables by
//! primary-key watermark windows while streaming.
//!
//! 1. With writers inserting, updating and deleting throughout, an `execute-snapshot` signal
//!    inserted into the signaling table snapshots a 60k-row table of a connector that took no
//!    initial snapshot (`snapshot.mode=no_data`); pgseam is killed with SIGKILL twice during
//!    it and continues from the stored progress each time. At the end the topic applied as a
//!    primary-key table equals the source (so every row came either from the snapshot or the
//!    stream), and every key not changed by the stream was sent as an `incremental` read.
//! 2. A table newly added to the include list (a restart with the new configuration) is
//!    signalled with `additional-conditions`: only the matching rows are snapshotted.
//! 3. A signal over REST; invalid signals and unknown connectors are refused.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{
    check_per_key_order, curl, id_of, items_writes, progress_of, snapshot_marker, stored, Env,
    HeldCommit, Pgseam, SqlWriter, SIGNAL_TABLE,
};
use pgseam_integration_tests::TopicMessage;

const WAIT: Duration = Duration::from_secs(120);
const ROWS: i64 = 60_000;

/// The ids sent as incremental-snapshot reads, and the ids the stream changed.
fn incremental_and_streamed(messages: &[TopicMessage]) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let mut incremental = BTreeSet::new();
    let mut streamed = BTreeSet::new();
    for m in messages {
        let Some(id) = id_of(m) else { continue };
        match (m.op(), snapshot_marker(m).as_deref()) {
            (Some("r"), Some("incremental")) => {
                incremental.insert(id);
            }
            _ => {
                streamed.insert(id);
            }
        }
    }
    (incremental, streamed)
}

#[test]
fn a_signalled_incremental_snapshot_survives_kill_9_and_loses_nothing() {
    let env = Env::start("inc");
    env.psql(SIGNAL_TABLE);
    env.psql(&format!(
        "CREATE TABLE items (id bigserial PRIMARY KEY, ver bigint NOT NULL DEFAULT 0, name text);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, {ROWS}) g;"
    ));
    let name = "inc";
    let (worker, connector) = env.write_configs(
        name,
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "snapshot.mode=no_data",
            "signal.data.collection=public.dbz_signal",
            "incremental.snapshot.chunk.size=2000",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("signals: source channel enabled", WAIT);
    pgseam.wait_for_log("streaming started", WAIT);

    let writer = SqlWriter::start(&env, &items_writes(ROWS));
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public\\.items"], "type": "incremental"}')"#,
    );

    // Kill twice once the stored progress has moved, each time further.
    let mut last_after: Option<Vec<String>> = None;
    for kill in 1..=2 {
        let started = Instant::now();
        loop {
            let progress = progress_of(&stored(&env, name));
            let after = progress
                .as_ref()
                .and_then(|p| p.partial.as_ref())
                .map(|p| p.after.clone());
            if progress.as_ref().is_some_and(|p| p.incremental.is_some())
                && after.is_some()
                && after != last_after
            {
                // A restart continues after the stored key, never from the start.
                let key = |a: &Option<Vec<String>>| -> i64 {
                    a.as_ref().map_or(0, |a| a[0].parse().expect("numeric key"))
                };
                assert!(
                    key(&after) > key(&last_after),
                    "the progress went back from {last_after:?} to {after:?}: the snapshot started over"
                );
                println!("observed {progress:?}");
                last_after = after;
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "no incremental snapshot progress before kill {kill}:\n{}",
                pgseam.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pgseam.kill9();
        let progress = progress_of(&stored(&env, name)).expect("progress stored at the kill");
        println!(
            "kill {kill}: progress after {:?}",
            progress.partial.map(|p| p.after)
        );
        pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
        pgseam.wait_for_log("resuming the interrupted snapshot", WAIT);
    }
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    // The completion is stored once the rows before it are acknowledged.
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_some() {
        assert!(started.elapsed() < WAIT, "the completion was not stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    let batches = writer.stop();
    assert!(batches >= 2, "the writers ran only {batches} batches");

    env.assert_topic_equals(name, "public.items", true, WAIT);
    let messages = env.read_topic("inc.public.items", 1, Duration::from_secs(2), WAIT);
    let replayed = check_per_key_order(&messages);
    println!("{replayed} replayed records");
    let (incremental, streamed) = incremental_and_streamed(&messages);
    let source: BTreeSet<i64> = env
        .psql("SELECT id FROM items")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // Every key present now and never touched by the stream came from the snapshot.
    let untouched: Vec<i64> = source.difference(&streamed).copied().collect();
    let missing: Vec<i64> = untouched
        .iter()
        .filter(|id| !incremental.contains(id))
        .copied()
        .collect();
    println!(
        "{} records, {} incremental keys, {} streamed keys, {} source rows, {batches} write batches",
        messages.len(),
        incremental.len(),
        streamed.len(),
        source.len()
    );
    assert!(
        missing.is_empty(),
        "{} untouched keys were not snapshotted, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(incremental.len() as i64 >= ROWS - streamed.len() as i64);
    pgseam.stop_cleanly();
}

#[test]
fn a_table_added_to_the_include_list_is_snapshotted_with_a_filter() {
    let env = Env::start("added");
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, color text);
         INSERT INTO a SELECT g, 'a' FROM generate_series(1, 100) g;
         INSERT INTO b SELECT g, CASE WHEN g % 10 = 0 THEN 'blue' ELSE 'red' END FROM generate_series(1, 5000) g;",
    );
    let name = "added";
    let base = ["signal.data.collection=public.dbz_signal"];
    let (worker, connector) =
        env.write_configs(name, &[], &[base[0], "table.include.list=public.a"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    pgseam.stop_cleanly();

    // Restart with b in the include list, then signal b with a filter.
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[base[0], "table.include.list=public.a,public.b"],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('sig-b', 'execute-snapshot', '{"data-collections": ["public.b"], "type": "INCREMENTAL", "additional-conditions": [{"data-collection": "public.b", "filter": "color = ''blue''"}]}')"#,
    );
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    env.psql("UPDATE b SET color = 'green' WHERE id = 1");
    let messages = env.read_topic("added.public.b", 501, Duration::from_secs(2), WAIT);
    let reads: BTreeSet<i64> = messages
        .iter()
        .filter(|m| snapshot_marker(m).as_deref() == Some("incremental"))
        .filter_map(id_of)
        .collect();
    let expected: BTreeSet<i64> = (1..=500).map(|i| i * 10).collect();
    assert_eq!(reads, expected, "only the blue rows are snapshotted");
    // The stream goes on after it.
    assert!(messages
        .iter()
        .any(|m| m.op() == Some("u") && id_of(m) == Some(1)));
    // The signaling table is captured though the include list does not name it, as
    // Debezium adds it to the table filter: its change events have a topic.
    let signals = env.read_topic("added.public.dbz_signal", 1, Duration::from_secs(1), WAIT);
    assert_eq!(signals.len(), 1);
    pgseam.stop_cleanly();
}

#[test]
fn a_signal_over_rest_snapshots_a_table() {
    let env = Env::start("rest");
    env.psql(
        "CREATE TABLE c (id int PRIMARY KEY, v text);
         INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 3000) g;",
    );
    let name = "rest";
    env.psql(
        "CREATE TABLE d (id int PRIMARY KEY, v text);
         INSERT INTO d SELECT g, 'd' || g FROM generate_series(1, 20000) g;",
    );
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "incremental.snapshot.chunk.size=500",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    pgseam.wait_for_log("streaming started", WAIT);

    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/nope/signals"),
        Some(r#"{"type":"log","data":{"message":"x"}}"#),
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        Some(
            r#"{"type":"execute-snapshot","data":{"type":"eventual","data-collections":["public.c"]}}"#,
        ),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("eventual"), "{body}");
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        Some(r#"{"type":"log","data":{"message":"hello from REST"}}"#),
    );
    assert_eq!(code, 202, "{body}");
    pgseam.wait_for_log("hello from REST", WAIT);
    // Start d, pause it (progress stands still), then stop it: the snapshot ends early.
    let signal = |body: &str| {
        let (code, answer) = curl(
            "POST",
            &format!("{base}/connectors/{name}/signals"),
            Some(body),
        );
        assert_eq!(code, 202, "{answer}");
    };
    signal(r#"{"type":"execute-snapshot","data":{"data-collections":["public.d"]}}"#);
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_none_or(|p| p.partial.is_none()) {
        assert!(started.elapsed() < WAIT, "{}", pgseam.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Windows hold exactly `incremental.snapshot.chunk.size` keys in key order (they were
    // cut in the keys' text order once: "1", "10", "100", "1000", ...).
    let first = progress_of(&stored(&env, name)).and_then(|p| p.partial);
    let after: i64 = first.expect("partial progress").after[0]
        .parse()
        .expect("an int key");
    assert_eq!(after % 500, 0, "a window ended at key {after}");
    signal(r#"{"type":"pause-snapshot","data":{}}"#);
    pgseam.wait_for_log("incremental snapshot paused state changed by signal", WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    let paused = progress_of(&stored(&env, name)).expect("d's snapshot is under way");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        progress_of(&stored(&env, name)).as_ref(),
        Some(&paused),
        "progress moved while paused"
    );
    signal(r#"{"type":"resume-snapshot"}"#);
    signal(
        r#"{"type":"stop-snapshot","data":{"data-collections":["public\\.d"],"type":"incremental"}}"#,
    );
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    let d_reads = env
        .read_topic("rest.public.d", 1, Duration::from_secs(2), WAIT)
        .len();
    println!("d: {d_reads} rows read before the stop");
    assert!(d_reads > 0 && d_reads < 20_000, "{d_reads}");

    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        Some(r#"{"id":"r1","type":"execute-snapshot","data":{"data-collections":["public\\.c"]}}"#),
    );
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("r1"), "{body}");
    pgseam.wait_for_log_count("the incremental snapshot is complete", 2, WAIT);
    let messages = env.read_topic("rest.public.c", 3000, Duration::from_secs(2), WAIT);
    let reads: BTreeSet<i64> = messages
        .iter()
        .filter(|m| m.op() == Some("r") && snapshot_marker(m).as_deref() == Some("incremental"))
        .filter_map(id_of)
        .collect();
    assert_eq!(reads, (1..=3000).collect::<BTreeSet<i64>>());
    pgseam.stop_cleanly();
}

/// The commit-visibility race in a signalled snapshot: an update whose commit record is in the
/// stream before the first window's low watermark, but which is still running (held by
/// synchronous replication to a standby that does not exist), is waited for before the read,
/// so the window does not overwrite it with the older row.
#[test]
fn a_commit_still_running_at_the_low_watermark_is_waited_for() {
    let env = Env::start("race");
    HeldCommit::allow(&env);
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE held (id int PRIMARY KEY, v text);
         INSERT INTO held SELECT g, 'v' || g FROM generate_series(1, 5000) g;",
    );
    let name = "race";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.data.collection=public.dbz_signal",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);

    let held = HeldCommit::hold(&env, "UPDATE held SET v = 'held' WHERE id = 7");
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('race-1', 'execute-snapshot', '{"data-collections": ["public.held"]}')"#,
    );
    held.release_once_waited_for(
        &env,
        &mut pgseam,
        "the incremental snapshot is complete",
        WAIT,
    );
    env.assert_topic_equals(name, "public.held", true, WAIT);
    pgseam.stop_cleanly();
}

/// An `execute-snapshot` signal that arrives while an interrupted initial snapshot is being
/// resumed waits until the resume completes, then runs.
#[test]
fn a_signal_during_a_resumed_initial_snapshot_runs_after_it() {
    let env = Env::start("deferred");
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE big (id int PRIMARY KEY, v text);
         CREATE TABLE s (id int PRIMARY KEY, v text);
         INSERT INTO big SELECT g, repeat('b', 50) FROM generate_series(1, 100000) g;
         INSERT INTO s SELECT g, 's' FROM generate_series(1, 200) g;",
    );
    let name = "deferred";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "signal.data.collection=public.dbz_signal",
            "snapshot.include.collection.list=public\\.big",
            "snapshot.max.threads=1",
            "snapshot.chunk.strategy=key",
            "snapshot.chunk.rows=1000",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_none_or(|p| p.partial.is_none()) {
        assert!(started.elapsed() < WAIT, "{}", pgseam.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
    pgseam.kill9();
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('later', 'execute-snapshot', '{"data-collections": ["public\\.s"]}')"#,
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming the interrupted snapshot", WAIT);
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    let log = pgseam.log_text();
    let deferred = log
        .find("execute-snapshot deferred")
        .expect("the signal was deferred");
    let resumed = log
        .find("the resumed snapshot is complete")
        .expect("the resume completed");
    assert!(deferred < resumed);
    let messages = env.read_topic("deferred.public.s", 200, Duration::from_secs(2), WAIT);
    let reads: BTreeSet<i64> = messages
        .iter()
        .filter(|m| snapshot_marker(m).as_deref() == Some("incremental"))
        .filter_map(id_of)
        .collect();
    assert_eq!(reads, (1..=200).collect::<BTreeSet<i64>>());
    env.assert_topic_equals(name, "public.big", true, WAIT);
    pgseam.stop_cleanly();
}

/// The notifications of a topic for one snapshot (`id`), in the order they were sent (one id
/// is one key, so one partition): `(type, additional_data)`.
fn notifications_of(messages: &[TopicMessage], id: &str) -> Vec<(String, serde_json::Value)> {
    let mut found: Vec<&TopicMessage> = messages
        .iter()
        .filter(|m| m.key_payload().and_then(|k| k["id"].as_str()) == Some(id))
        .collect();
    found.sort_by_key(|m| (m.partition, m.offset));
    found
        .into_iter()
        .map(|m| {
            let v = m.envelope().expect("a notification value");
            assert_eq!(v["id"], id);
            assert_eq!(v["aggregate_type"], "Incremental Snapshot");
            assert!(v["timestamp"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000_000));
            (
                v["type"].as_str().expect("type").to_owned(),
                v["additional_data"].clone(),
            )
        })
        .collect()
}

/// `notification.enabled.channels=sink,log`: an incremental snapshot of a table of 2500 rows
/// (windows of 1000) and an empty table sends Debezium's sequence to the sink topic, in
/// Debezium's record format (its key and value schemas), and logs it; pause, resume and stop
/// of a second snapshot send PAUSED, RESUMED and ABORTED (and no COMPLETED).
#[test]
fn notifications_go_to_the_sink_topic_and_the_log() {
    let env = Env::start("notes");
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE t1 (id int PRIMARY KEY, v text);
         CREATE TABLE t_empty (id int PRIMARY KEY);
         CREATE TABLE d (id int PRIMARY KEY, v text);
         INSERT INTO t1 SELECT g, 'v' FROM generate_series(1, 2500) g;
         INSERT INTO d SELECT g, 'd' FROM generate_series(1, 5000) g;",
    );
    let name = "notes";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.data.collection=public.dbz_signal",
            "incremental.snapshot.chunk.size=1000",
            "notification.enabled.channels=sink,log",
            "notification.sink.topic.name=notes.notifications",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('sig-n', 'execute-snapshot', '{"data-collections": ["public.t1", "public.t_empty"]}')"#,
    );
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    // Execute, pause in one transaction (no window opens in between), then resume and stop
    // in another: the snapshot of d reads nothing.
    env.psql(
        r#"BEGIN;
           INSERT INTO dbz_signal VALUES ('sig-d', 'execute-snapshot', '{"data-collections": ["public.d"]}');
           INSERT INTO dbz_signal VALUES ('pause-d', 'pause-snapshot', NULL);
           COMMIT;"#,
    );
    pgseam.wait_for_log("incremental snapshot paused state changed by signal", WAIT);
    std::thread::sleep(Duration::from_millis(1000));
    env.psql(
        r#"BEGIN;
           INSERT INTO dbz_signal VALUES ('resume-d', 'resume-snapshot', NULL);
           INSERT INTO dbz_signal VALUES ('stop-d', 'stop-snapshot', '{"data-collections": ["public.d"], "type": "incremental"}');
           COMMIT;"#,
    );
    pgseam.wait_for_log_count("the incremental snapshot is complete", 2, WAIT);
    let messages = env.read_topic("notes.notifications", 11, Duration::from_secs(2), WAIT);
    // Debezium's schemas, as JsonConverter writes them.
    let first = &messages[0];
    assert_eq!(
        first.key.as_ref().unwrap()["schema"],
        serde_json::from_str::<serde_json::Value>(pgseam_converters::notification::KEY_SCHEMA)
            .unwrap()
    );
    assert_eq!(
        first.value.as_ref().unwrap()["schema"],
        serde_json::from_str::<serde_json::Value>(pgseam_converters::notification::VALUE_SCHEMA)
            .unwrap()
    );
    assert!(first.headers.is_empty(), "{:?}", first.headers);

    let n = notifications_of(&messages, "sig-n");
    let kinds: Vec<&str> = n.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "STARTED",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "TABLE_SCAN_COMPLETED",
            "TABLE_SCAN_COMPLETED",
            "COMPLETED"
        ],
        "{n:?}"
    );
    for (_, data) in &n {
        assert_eq!(data["connector_name"], name);
    }
    assert_eq!(n[0].1["data_collections"], "public.t1,public.t_empty");
    let progress: Vec<(&str, &str)> = n[1..4]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["current_collection_in_progress"], "public.t1");
            assert_eq!(d["maximum_key"], "2500");
            (
                d["data_collections"].as_str().unwrap(),
                d["last_processed_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            ("public.t1,public.t_empty", "1000"),
            ("public.t1,public.t_empty", "2000"),
            ("public.t1,public.t_empty", "2500")
        ]
    );
    let scan = |i: usize| {
        let d = &n[i].1;
        (
            d["scanned_collection"].as_str().unwrap().to_owned(),
            d["total_rows_scanned"].as_str().unwrap().to_owned(),
            d["status"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        scan(4),
        ("public.t1".into(), "2500".into(), "SUCCEEDED".into())
    );
    assert_eq!(
        scan(5),
        ("public.t_empty".into(), "0".into(), "EMPTY".into())
    );
    assert_eq!(n[6].1.as_object().unwrap().len(), 1, "{:?}", n[6].1);

    let d = notifications_of(&messages, "sig-d");
    let kinds: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["STARTED", "PAUSED", "RESUMED", "ABORTED"], "{d:?}");
    for (_, data) in &d {
        assert_eq!(data["data_collections"], "public.d");
    }

    let log = pgseam.log_text();
    assert_eq!(log.matches("[Notification Service]").count(), 11, "{log}");
    assert!(log.contains(
        "aggregateType='Incremental Snapshot', type='COMPLETED', additionalData={connector_name=notes}"
    ));
    // Key values are not logged.
    assert!(log.contains("maximum_key=<redacted>"));
    assert!(!log.contains("maximum_key=2500"));
    pgseam.stop_cleanly();
}

/// The initial snapshot's notifications on the sink topic (one partition, so in order):
/// STARTED, per table IN_PROGRESS and TABLE_SCAN_COMPLETED with its row count, COMPLETED, as
/// Debezium's one-thread snapshot sends them.
#[test]
fn the_initial_snapshot_sends_its_notifications() {
    let env = Env::start("initnotes");
    env.psql(
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY);
         CREATE TABLE c (n int);
         INSERT INTO a SELECT g, 'a' FROM generate_series(1, 300) g;
         INSERT INTO c SELECT g FROM generate_series(1, 50) g;",
    );
    let name = "initnotes";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "notification.enabled.channels=sink",
            "notification.sink.topic.name=initnotes.notifications",
            "topic.creation.default.partitions=1",
            "topic.creation.default.replication.factor=1",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let mut messages = env.read_topic("initnotes.notifications", 8, Duration::from_secs(2), WAIT);
    messages.sort_by_key(|m| (m.partition, m.offset));
    let notes: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let v = m.envelope().expect("value").clone();
            assert_eq!(v["aggregate_type"], "Initial Snapshot");
            assert_eq!(m.key_payload().unwrap()["id"], v["id"]);
            assert_eq!(v["additional_data"]["connector_name"], name);
            v
        })
        .collect();
    assert_eq!(notes.len(), 8, "{notes:#?}");
    assert_eq!(notes[0]["type"], "STARTED");
    assert_eq!(notes[7]["type"], "COMPLETED");
    let mut scanned = BTreeMap::new();
    for pair in notes[1..7].chunks(2) {
        assert_eq!(pair[0]["type"], "IN_PROGRESS", "{pair:?}");
        assert_eq!(pair[1]["type"], "TABLE_SCAN_COMPLETED", "{pair:?}");
        let table = pair[0]["additional_data"]["current_collection_in_progress"]
            .as_str()
            .unwrap()
            .to_owned();
        let done = &pair[1]["additional_data"];
        assert_eq!(done["scanned_collection"], table.as_str());
        assert_eq!(done["status"], "SUCCEEDED");
        assert_eq!(done["data_collections"], "public.a,public.b,public.c");
        // Java's HashSet order of the three names.
        assert_eq!(
            pair[0]["additional_data"]["data_collections"],
            "public.c,public.a,public.b"
        );
        scanned.insert(
            table,
            done["total_rows_scanned"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(
        scanned,
        BTreeMap::from([
            ("public.a".to_owned(), "300".to_owned()),
            ("public.b".to_owned(), "0".to_owned()),
            ("public.c".to_owned(), "50".to_owned()),
        ])
    );
    pgseam.stop_cleanly();
}

/// Writes one record to partition 0 of `topic` (Debezium's signal channel reads partition 0).
fn produce(bootstrap: &str, topic: &str, key: &str, value: &str) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to(topic).partition(0).key(key).payload(value))
        .map_err(|(e, _)| e)
        .expect("send a signal");
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn incremental_reads(env: &Env, topic: &str, at_least: usize) -> BTreeSet<i64> {
    env.read_topic(topic, at_least, Duration::from_secs(2), WAIT)
        .iter()
        .filter(|m| m.op() == Some("r") && snapshot_marker(m).as_deref() == Some("incremental"))
        .filter_map(id_of)
        .collect()
}

/// The `kafka` signal channel: records keyed by `topic.prefix` on partition 0 of the default
/// topic `<topic.prefix>-signal` are signals, others are skipped; a signal written while
/// pgseam is down is read at the next start, and one already applied is not read again (its
/// offset is committed for the group once the source has applied it).
#[test]
fn signals_over_the_kafka_channel() {
    let env = Env::start("kafkasig");
    env.psql(
        "CREATE TABLE k (id int PRIMARY KEY, v text);
         INSERT INTO k SELECT g, 'k' FROM generate_series(1, 2000) g;",
    );
    let name = "kafkasig";
    let bootstrap = env.broker.bootstrap_servers();
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.enabled.channels=source,kafka",
            &format!("signal.kafka.bootstrap.servers={bootstrap}"),
            "signal.kafka.groupId=kafkasig-signals",
        ],
    );
    // Written before pgseam starts: read from the earliest record.
    produce(
        &bootstrap,
        "kafkasig-signal",
        "someone-else",
        r#"{"id":"x","type":"log","data":{"message":"not for us"}}"#,
    );
    produce(
        &bootstrap,
        "kafkasig-signal",
        name,
        r#"{"id":"k1","type":"execute-snapshot","data":{"data-collections":["public.k"],"type":"incremental"}}"#,
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    let log = pgseam.log_text();
    assert!(
        log.contains("signal key does not match the connector's name"),
        "{log}"
    );
    assert!(!log.contains("not for us"), "{log}");
    assert_eq!(
        incremental_reads(&env, "kafkasig.public.k", 2000),
        (1..=2000).collect::<BTreeSet<i64>>()
    );
    pgseam.stop_cleanly();

    // While pgseam is down: a new signal. The next start reads it, and not k1 again.
    produce(
        &bootstrap,
        "kafkasig-signal",
        name,
        r#"{"id":"k2","type":"log","data":{"message":"hello after the restart"}}"#,
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("hello after the restart", WAIT);
    std::thread::sleep(Duration::from_secs(2));
    let log = pgseam.log_text();
    assert!(
        !log.contains("signal: execute-snapshot"),
        "k1 was read again:\n{log}"
    );
    assert!(!log.contains("signal_id=x"), "{log}");
    pgseam.stop_cleanly();
}

/// The `file` signal channel: a line appended to `signal.file` is a signal; the lines read
/// are removed from the file once applied.
#[test]
fn signals_over_the_file_channel() {
    let env = Env::start("filesig");
    env.psql(
        "CREATE TABLE f (id int PRIMARY KEY, v text);
         INSERT INTO f SELECT g, 'f' FROM generate_series(1, 700) g;",
    );
    let name = "filesig";
    let file = env.dir.path().join("signals.txt");
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.enabled.channels=file",
            &format!("signal.file={}", file.display()),
            "signal.poll.interval.ms=200",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    std::fs::write(
        &file,
        "\n{\"id\":\"f1\",\"type\":\"execute-snapshot\",\"data\":{\"data-collections\":[\"public.f\"]}}\nnot json\n",
    )
    .unwrap();
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    assert_eq!(
        incremental_reads(&env, "filesig.public.f", 700),
        (1..=700).collect::<BTreeSet<i64>>()
    );
    let started = Instant::now();
    while !std::fs::read_to_string(&file).unwrap().is_empty() {
        assert!(started.elapsed() < WAIT, "the signal file was not emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(pgseam.log_text().contains("signal is not JSON; skipped"));
    pgseam.stop_cleanly();
}

/// Debezium keeps an incremental snapshot's identity in the offset
/// (`incremental_snapshot_correlation_id`, `incremental_snapshot_maximum_key`), so its
/// notifications after a restart carry the signal's id and the table's greatest key as the
/// snapshot first found it. pgseam is killed with SIGKILL mid-snapshot after rows with greater
/// keys were inserted: every notification of the snapshot, before and after the kill, has the
/// id `sig-r` and `maximum_key` 10000, and it ends with one COMPLETED. As Debezium's, the
/// snapshot reads keys up to that maximum; the greater keys come from the stream.
#[test]
fn notifications_keep_the_correlation_id_and_maximum_key_across_kill_9() {
    let env = Env::start("corr");
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10000) g;",
    );
    let name = "corr";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.data.collection=public.dbz_signal",
            "incremental.snapshot.chunk.size=500",
            "snapshot.throttle.rows.per.second=2500",
            "notification.enabled.channels=sink",
            "notification.sink.topic.name=corr.notifications",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('sig-r', 'execute-snapshot', '{"data-collections": ["public.t"]}')"#,
    );
    // Wait until a window of t is stored with its greatest key.
    let started = Instant::now();
    let progress = loop {
        let offset = stored(&env, name);
        if let Some(p) = progress_of(&offset) {
            if p.partial.as_ref().is_some_and(|k| k.max_key.is_some()) {
                break p;
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no stored window of t:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(progress.correlation_id.as_deref(), Some("sig-r"));
    let partial = progress.partial.expect("a partly read table");
    assert_eq!(partial.max_key, Some(vec!["10000".to_owned()]));
    // Greater keys now: a snapshot that looked the maximum up again would see 10100.
    env.psql("INSERT INTO t SELECT g, 'late' FROM generate_series(10001, 10100) g;");
    pgseam.kill9();
    let stored_progress = progress_of(&stored(&env, name)).expect("progress stored at the kill");
    assert_eq!(stored_progress.correlation_id.as_deref(), Some("sig-r"));
    pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);

    let messages = env.read_topic("corr.notifications", 3, Duration::from_secs(3), WAIT);
    let mut incremental: Vec<&TopicMessage> = messages
        .iter()
        .filter(|m| {
            m.envelope()
                .is_some_and(|v| v["aggregate_type"] == "Incremental Snapshot")
        })
        .collect();
    incremental.sort_by_key(|m| (m.partition, m.offset));
    let ids: BTreeSet<String> = incremental
        .iter()
        .map(|m| {
            m.envelope().unwrap()["id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["sig-r".to_owned()]),
        "notifications of one snapshot with other ids"
    );
    let n = notifications_of(&messages, "sig-r");
    let kinds: Vec<&str> = n.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"STARTED"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"COMPLETED"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "STARTED").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "COMPLETED").count(), 1);
    assert!(kinds.contains(&"TABLE_SCAN_COMPLETED"), "{kinds:?}");
    let in_progress: Vec<&serde_json::Value> = n
        .iter()
        .filter(|(k, _)| k == "IN_PROGRESS")
        .map(|(_, d)| d)
        .collect();
    // Both runs' windows: 10000 keys in windows of 500 (a notification made just before the
    // kill may be lost or repeated: they are sent once, not stored).
    assert!(in_progress.len() >= 15, "{n:?}");
    for d in &in_progress {
        assert_eq!(d["maximum_key"], "10000", "{d}");
        let last: i64 = d["last_processed_key"].as_str().unwrap().parse().unwrap();
        assert!(last % 500 == 0 && last <= 10_000, "{d}");
    }
    // The snapshot reads up to its maximum key, as Debezium's; the later rows were streamed.
    assert_eq!(
        in_progress.last().unwrap()["last_processed_key"],
        "10000",
        "{n:?}"
    );
    let data = env.read_topic("corr.public.t", 10_100, Duration::from_secs(3), WAIT);
    let (incremental, streamed) = incremental_and_streamed(&data);
    assert_eq!(incremental, (1..=10_000).collect::<BTreeSet<i64>>());
    assert_eq!(streamed, (10_001..=10_100).collect::<BTreeSet<i64>>());
    pgseam.stop_cleanly();
}

/// `incremental.snapshot.watermarking.strategy` (Debezium's window rows in the signaling table
/// instead of pgseam's logical messages): an incremental snapshot of 6000 rows in windows of
/// 1000, with writers running, opens and closes each window with rows of the signaling table
/// in Debezium's format, and the topic equals the source. Returns the signaling table's
/// window rows `(id, type, data)` at the end.
fn snapshot_with_table_watermarks(name: &str, strategy: &str) -> Vec<(String, String, String)> {
    let env = Env::start(name);
    env.psql(SIGNAL_TABLE);
    env.psql(
        "CREATE TABLE items (id bigserial PRIMARY KEY, ver bigint NOT NULL DEFAULT 0, name text);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 6000) g;",
    );
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            "snapshot.mode=no_data",
            "signal.data.collection=public.dbz_signal",
            "incremental.snapshot.chunk.size=1000",
            &format!("incremental.snapshot.watermarking.strategy={strategy}"),
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let writer = SqlWriter::start(
        &env,
        "INSERT INTO items (name) VALUES ('new');
         UPDATE items SET ver = ver + 1 WHERE id = 1 + (random() * 5999)::int;
         DELETE FROM items WHERE id = 1 + (random() * 5999)::int;",
    );
    env.psql(
        r#"INSERT INTO dbz_signal VALUES ('sig-w', 'execute-snapshot', '{"data-collections": ["public.items"]}')"#,
    );
    pgseam.wait_for_log("the incremental snapshot is complete", WAIT);
    let batches = writer.stop();
    assert!(batches >= 1);
    env.assert_topic_equals(name, "public.items", true, WAIT);
    let messages = env.read_topic(
        &format!("{name}.public.items"),
        6000,
        Duration::from_secs(2),
        WAIT,
    );
    let (incremental, _) = incremental_and_streamed(&messages);
    assert!(
        incremental.len() > 5000,
        "{} incremental reads",
        incremental.len()
    );
    // The windows moved on the table rows alone (with a table strategy the source ignores
    // logical-message watermarks), and no window row was taken for a signal.
    let log = pgseam.log_text();
    assert!(!log.contains("invalid signal"), "{log}");
    pgseam.stop_cleanly();
    env.psql("SELECT id, type, data FROM dbz_signal WHERE type LIKE 'snapshot-window-%' ORDER BY data, id")
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            (next(), next(), next())
        })
        .collect()
}

/// Java's `Instant.toString()` in UTC, as Debezium's window rows carry it.
fn is_java_instant(s: &str) -> bool {
    regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z$")
        .unwrap()
        .is_match(s)
}

#[test]
fn insert_insert_watermarks_are_rows_of_the_signaling_table() {
    let rows = snapshot_with_table_watermarks("wmii", "insert_insert");
    let opens: Vec<_> = rows
        .iter()
        .filter(|r| r.1 == "snapshot-window-open")
        .collect();
    let closes: Vec<_> = rows
        .iter()
        .filter(|r| r.1 == "snapshot-window-close")
        .collect();
    // At least one window per 1000 keys, each opened and closed once.
    assert!(opens.len() >= 6, "{rows:?}");
    assert_eq!(opens.len(), closes.len(), "{rows:?}");
    for (id, _, data) in &opens {
        let window = id.strip_suffix("-open").expect("`<window>-open`");
        let data: serde_json::Value = serde_json::from_str(data).expect("JSON data");
        let opened = data["openWindowTimestamp"].as_str().expect("open time");
        assert!(is_java_instant(opened), "{data}");
        assert_eq!(data.as_object().unwrap().len(), 1, "{data}");
        let (_, _, close) = closes
            .iter()
            .find(|r| r.0 == format!("{window}-close"))
            .unwrap_or_else(|| panic!("window {window} not closed: {rows:?}"));
        let close: serde_json::Value = serde_json::from_str(close).expect("JSON data");
        assert_eq!(close["openWindowTimestamp"], opened);
        let closed = close["closeWindowTimestamp"].as_str().expect("close time");
        assert!(is_java_instant(closed) && closed >= opened, "{close}");
    }
    // Debezium's spacing: `{"openWindowTimestamp": "…", "closeWindowTimestamp": "…"}`.
    assert!(
        closes[0].2.starts_with("{\"openWindowTimestamp\": \""),
        "{rows:?}"
    );
    assert!(
        closes[0].2.contains("\", \"closeWindowTimestamp\": \""),
        "{rows:?}"
    );
}

#[test]
fn insert_delete_watermarks_leave_the_signaling_table_empty() {
    let rows = snapshot_with_table_watermarks("wmid", "insert_delete");
    assert!(rows.is_empty(), "window rows left: {rows:?}");
}
