//! `snapshot.mode` and `offset.mismatch.strategy` against a real PostgreSQL and broker
//! (issue 4 "Modes", issue 3 "Slots"; the decision table is `pgseam_connector_pg::plan_start`):
//!
//! 1. `initial_only`: the worker snapshots under a temporary slot, stores a completed
//!    snapshot offset and exits 0 without streaming; a restart with that offset does nothing.
//! 2. `always`: the first start snapshots at a new slot; a restart streams from the stored
//!    offset (changes made while stopped, deletes too, are streamed) and reads every table
//!    again in watermark windows; the topic applied as a primary-key table equals the source;
//!    a reconnection after a lost connection does not snapshot again.
//! 3. `when_needed` after the slot was dropped: `initial` refuses to start, naming
//!    `when_needed`; `when_needed` takes a new snapshot and the topic equals the source.
//!    The same after the server removed WAL the slot needed (`wal_status = lost`).
//! 4. A slot confirmed past the stored offset: refused by default (`no_validation`, where
//!    Debezium would let the server skip the changes silently); `trust_slot` continues from
//!    the slot with a loud warning, and the skipped change is indeed not delivered;
//!    `when_needed` takes a new snapshot instead.
//! 5. A resumed snapshot drives the snapshot metrics: /metrics shows its rows and completion.

use crate::common;

use std::time::{Duration, Instant};

use common::{http_get, run_to_exit, stored, Env, Pgseam};
use pgseam::offsets::ConnectorOffset;
use pgseam_integration_tests::TopicMessage;
use pgseam_testkit::PostgresOptions;

const WAIT: Duration = Duration::from_secs(60);

fn slot_count(env: &Env, slot: &str) -> String {
    env.psql(&format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ))
}

/// Every record of `<prefix>.public.<table>`, once at least `min` have arrived.
fn records(env: &Env, prefix: &str, table: &str, min: usize) -> Vec<TopicMessage> {
    env.read_topic(
        &format!("{prefix}.public.{table}"),
        min,
        Duration::from_millis(1500),
        WAIT,
    )
}

fn count_op(messages: &[TopicMessage], op: &str) -> usize {
    messages.iter().filter(|m| m.op() == Some(op)).count()
}

fn assert_equal(env: &Env, prefix: &str, table: &str) {
    env.assert_topic_equals(prefix, &format!("public.{table}"), true, WAIT);
}

#[test]
fn initial_only_snapshots_then_exits_without_streaming() {
    let env = Env::start("only");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    env.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g");
    let (worker, connector) = env.write_configs("only", &[], &["snapshot.mode=initial_only"]);

    let (status, log) = run_to_exit(&worker, &[&connector], WAIT);
    assert!(status.success(), "initial_only did not exit 0:\n{log}");
    assert!(
        log.contains("snapshot.mode=initial_only: the snapshot is complete"),
        "{log}"
    );
    assert!(
        !log.contains("streaming started"),
        "initial_only streamed:\n{log}"
    );
    let Some(ConnectorOffset::SnapshotCompleted { lsn, .. }) = stored(&env, "only") else {
        panic!(
            "offset is not a completed snapshot: {:?}",
            stored(&env, "only")
        );
    };
    assert!(lsn.0 > 0);
    // The temporary slot went with the connection: nothing holds WAL.
    assert_eq!(slot_count(&env, "slot_only"), "0");
    let snapshot = records(&env, "only", "t", 500);
    assert_eq!(
        (snapshot.len(), count_op(&snapshot, "r")),
        (500, 500),
        "the snapshot is every row, once"
    );
    assert_equal(&env, "only", "t");

    // Changes after the snapshot, then a restart: the offset records a completed snapshot,
    // so there is nothing to do and nothing is streamed.
    env.psql("INSERT INTO t VALUES (501, 'late'); UPDATE t SET v = 'x' WHERE id = 1");
    let (status, log) = run_to_exit(&worker, &[&connector], WAIT);
    assert!(status.success(), "{log}");
    assert!(log.contains("nothing to do, not streaming"), "{log}");
    assert!(!log.contains("snapshot started"), "{log}");
    assert_eq!(slot_count(&env, "slot_only"), "0");
    let after = records(&env, "only", "t", 500);
    assert_eq!(
        after.len(),
        500,
        "a completed initial_only start sent records"
    );
    assert!(matches!(
        stored(&env, "only"),
        Some(ConnectorOffset::SnapshotCompleted { lsn: again, .. }) if again == lsn
    ));
}

#[test]
fn always_snapshots_again_on_every_start_and_the_topic_equals_the_source() {
    let env = Env::start("alw");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    env.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) g");
    let (worker, connector) = env.write_configs(
        "alw",
        &[],
        &[
            "snapshot.mode=always",
            "retriable.restart.connector.wait.ms=300",
        ],
    );

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("UPDATE t SET v = 'streamed' WHERE id <= 10; DELETE FROM t WHERE id = 300");
    assert_equal(&env, "alw", "t");
    let first_point = stored(&env, "alw")
        .and_then(|o| o.resume_lsn())
        .expect("an offset");
    // A lost connection is not a new start: the reconnection streams on, no new snapshot.
    env.psql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name = 'slot_alw' AND active_pid IS NOT NULL",
    );
    pgseam.wait_for_log("reconnecting to PostgreSQL", WAIT);
    env.psql("INSERT INTO t VALUES (1000, 'after reconnect')");
    assert_equal(&env, "alw", "t");
    assert_eq!(
        pgseam.log_text().matches("snapshot completed").count(),
        1,
        "{}",
        pgseam.log_text()
    );
    pgseam.stop_cleanly();
    let first_reads = count_op(&records(&env, "alw", "t", 300), "r");
    assert_eq!(first_reads, 300);

    // Changes while stopped (a delete too), then a restart: the slot can serve the offset, so
    // the stream resumes there (the delete is streamed) while every table is read again in
    // watermark windows; the slot is kept.
    env.psql(
        "UPDATE t SET v = 'while stopped' WHERE id % 3 = 0; INSERT INTO t VALUES (2000, 'new'); \
         DELETE FROM t WHERE id IN (7, 8)",
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    let log = pgseam.log_text();
    assert!(
        log.contains("snapshot.mode=always: taking a new snapshot, every table read in windows"),
        "{log}"
    );
    assert!(!log.contains("dropping the existing slot"), "{log}");
    let rows_then: usize = env.psql("SELECT count(*) FROM t").parse().unwrap();
    env.psql("INSERT INTO t VALUES (3000, 'streamed after'); UPDATE t SET v = 'late' WHERE id = 5");
    assert_equal(&env, "alw", "t");
    let messages = records(&env, "alw", "t", 300 + rows_then);
    let again: Vec<&TopicMessage> = messages
        .iter()
        .filter(|m| {
            m.op() == Some("r")
                && m.envelope()
                    .is_some_and(|e| e["source"]["snapshot"] == "incremental")
        })
        .collect();
    assert_eq!(count_op(&messages, "r"), 300 + rows_then, "snapshot rows");
    assert_eq!(
        again.len(),
        rows_then,
        "the second snapshot reads every row"
    );
    let deletes = messages
        .iter()
        .filter(|m| m.op() == Some("d"))
        .filter_map(|m| m.key_payload().and_then(|k| k["id"].as_i64()))
        .collect::<Vec<_>>();
    assert!(
        deletes.contains(&7) && deletes.contains(&8),
        "the deletes made while stopped were not streamed: {deletes:?}"
    );
    assert!(
        matches!(stored(&env, "alw"), Some(ConnectorOffset::Streaming(s)) if s.lsn > first_point),
        "{:?}",
        stored(&env, "alw")
    );
    pgseam.stop_cleanly();
}

#[test]
fn when_needed_snapshots_again_after_the_slot_is_dropped() {
    let env = Env::start("need");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    env.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 200) g");
    let (worker, connector) = env.write_configs("need", &[], &["snapshot.mode=when_needed"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("UPDATE t SET v = 'streamed' WHERE id <= 5");
    assert_equal(&env, "need", "t");
    pgseam.stop_cleanly();

    // A restart with the slot in place streams from the offset: no new snapshot.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    pgseam.stop_cleanly();
    assert!(!pgseam.log_text().contains("snapshot started"));

    // The slot is dropped (an operator, a failover) and the table changes meanwhile.
    env.psql("SELECT pg_drop_replication_slot('slot_need')");
    env.psql("UPDATE t SET v = 'unseen' WHERE id % 4 = 0; INSERT INTO t VALUES (500, 'new')");
    // `initial` cannot serve the offset: a clear error naming the way out.
    let (_, initial_connector) = env.write_configs("need", &[], &["snapshot.mode=initial"]);
    let (status, log) = run_to_exit(&worker, &[&initial_connector], WAIT);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("slot `slot_need` does not exist")
            && log.contains("snapshot.mode=when_needed"),
        "{log}"
    );
    // `when_needed` takes a new snapshot at a new slot.
    let (_, connector) = env.write_configs("need", &[], &["snapshot.mode=when_needed"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert!(
        pgseam.log_text().contains("NEW SNAPSHOT"),
        "{}",
        pgseam.log_text()
    );
    assert_eq!(slot_count(&env, "slot_need"), "1");
    env.psql("DELETE FROM t WHERE id = 1");
    assert_equal(&env, "need", "t");
    pgseam.stop_cleanly();
}

#[test]
fn when_needed_replaces_a_slot_whose_wal_is_lost() {
    let env = Env::start_with(
        "lost",
        PostgresOptions::default()
            .conf("max_slot_wal_keep_size = 1")
            .conf("min_wal_size = 32MB")
            .conf("max_wal_size = 64MB"),
    );
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE filler (n int, pad text)");
    env.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g");
    let (worker, connector) = env.write_configs(
        "lost",
        &[],
        &["snapshot.mode=when_needed", "table.include.list=public.t"],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert_equal(&env, "lost", "t");
    pgseam.stop_cleanly();

    // While pgseam is stopped, t changes and the server removes WAL the slot still needs.
    env.psql("DELETE FROM t WHERE id <= 10; UPDATE t SET v = 'gone with the WAL' WHERE id > 90");
    let mut wal_status = String::new();
    for round in 0..40 {
        wal_status = env
            .psql(&format!(
                "INSERT INTO filler SELECT g, repeat('x', 500) FROM generate_series({a}, {b}) g; \
                 SELECT pg_switch_wal(); SELECT pg_switch_wal(); CHECKPOINT; \
                 SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'slot_lost'",
                a = round * 2000,
                b = round * 2000 + 1999
            ))
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        if wal_status == "lost" {
            break;
        }
    }
    assert_eq!(wal_status, "lost", "the test could not invalidate the slot");

    let (_, initial) = env.write_configs("lost", &[], &["table.include.list=public.t"]);
    let (status, log) = run_to_exit(&worker, &[&initial], WAIT);
    assert!(!status.success(), "{log}");
    assert!(log.contains("wal_status = lost"), "{log}");

    let (_, connector) = env.write_configs(
        "lost",
        &[],
        &["snapshot.mode=when_needed", "table.include.list=public.t"],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let log = pgseam.log_text();
    assert!(
        log.contains("NEW SNAPSHOT") && log.contains("wal_status = lost"),
        "{log}"
    );
    assert_eq!(
        env.psql("SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'slot_lost'"),
        "reserved"
    );
    // The deleted rows are still on the topic (their deletes went with the WAL); the new
    // snapshot carries every current row, so the current keys match the source.
    let messages = records(&env, "lost", "t", 100 + 90);
    assert_eq!(count_op(&messages, "r"), 100 + 90, "both snapshots");
    pgseam.stop_cleanly();
}

#[test]
fn a_slot_confirmed_past_the_offset_fails_or_follows_the_strategy() {
    let env = Env::start("mism");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    env.psql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g");
    let (worker, connector) = env.write_configs("mism", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert_equal(&env, "mism", "t");
    pgseam.stop_cleanly();

    // Someone else consumes the slot past pgseam's offset: that change is gone for pgseam.
    env.psql("INSERT INTO t VALUES (7777, 'consumed elsewhere')");
    env.psql("SELECT pg_replication_slot_advance('slot_mism', pg_current_wal_lsn())");
    for strategy in ["no_validation", "trust_offset"] {
        let (_, c) = env.write_configs(
            "mism",
            &[],
            &[&format!("offset.mismatch.strategy={strategy}")],
        );
        let (status, log) = run_to_exit(&worker, &[&c], WAIT);
        assert!(!status.success(), "{strategy}: {log}");
        assert!(
            log.contains("past the stored offset") && log.contains("trust_slot"),
            "{strategy}: {log}"
        );
    }

    // trust_slot: continue from the slot, loudly; the consumed change is not delivered.
    let (_, c) = env.write_configs("mism", &[], &["offset.mismatch.strategy=trust_slot"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&c]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert!(
        pgseam.log_text().contains("CHANGES NOT DELIVERED"),
        "{}",
        pgseam.log_text()
    );
    env.psql("INSERT INTO t VALUES (8888, 'after')");
    let deadline = Instant::now() + WAIT;
    let messages = loop {
        let messages = records(&env, "mism", "t", 100);
        if messages
            .iter()
            .any(|m| m.key_payload().is_some_and(|k| k["id"] == 8888))
            || Instant::now() > deadline
        {
            break messages;
        }
    };
    let ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.key_payload().and_then(|k| k["id"].as_i64()))
        .collect();
    assert!(ids.contains(&8888), "{ids:?}");
    assert!(
        !ids.contains(&7777),
        "the skipped change was delivered: {ids:?}"
    );
    pgseam.stop_cleanly();

    // Again past the offset, now under when_needed: a new snapshot, and the topic equals
    // the source (the new snapshot carries 7777 and 9999).
    env.psql("INSERT INTO t VALUES (9999, 'consumed elsewhere too')");
    env.psql("SELECT pg_replication_slot_advance('slot_mism', pg_current_wal_lsn())");
    let (_, c) = env.write_configs("mism", &[], &["snapshot.mode=when_needed"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&c]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert!(
        pgseam.log_text().contains("NEW SNAPSHOT"),
        "{}",
        pgseam.log_text()
    );
    assert_equal(&env, "mism", "t");
    pgseam.stop_cleanly();
}

fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_resumed_snapshot_drives_the_snapshot_metrics() {
    let env = Env::start("resm");
    common::stop_during_a_slow_snapshot(&env, "resm", 250, WAIT);

    // Restart without the override: the table is resumed in key windows while streaming.
    let (worker, connector) = env.write_configs("resm", &[], &["snapshot.chunk.rows=100"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let base = pgseam.rest_base_url(WAIT);
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    let scanned =
        "debezium_metrics_RowsScanned{plugin=\"postgres\",name=\"resm\",context=\"snapshot\",table=\"public.slow\"}";
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let metrics = http_get(&format!("{base}/metrics"));
        if metric(&metrics, scanned) == Some(250.0) || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(metric(&metrics, scanned), Some(250.0), "{metrics}");
    let flag = |name: &str| {
        metric(
            &metrics,
            &format!(
                "debezium_metrics_{name}{{plugin=\"postgres\",name=\"resm\",context=\"snapshot\"}}"
            ),
        )
    };
    assert_eq!(flag("SnapshotCompleted"), Some(1.0), "{metrics}");
    assert_eq!(flag("SnapshotRunning"), Some(0.0), "{metrics}");
    assert_eq!(flag("TotalTableCount"), Some(1.0), "{metrics}");
    assert_eq!(flag("RemainingTableCount"), Some(0.0), "{metrics}");
    assert_equal(&env, "resm", "slow");
    pgseam.stop_cleanly();
}
