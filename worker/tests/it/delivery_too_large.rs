//! A record over librdkafka's `message.max.bytes` (issue 6, faults): against the real
//! PostgreSQL and broker, with a small `producer.message.max.bytes` and a large text row.
//!
//! - Default (`errors.tolerance=none`): pgseam stops with an error naming the topic, the key
//!   and the setting to raise, and never shows the row's values. Nothing after the record is
//!   confirmed: after a restart with the limit raised, the row and every later one arrive.
//! - `errors.tolerance=all`: the record is skipped and logged (topic, key, size, LSN), the
//!   rows after it arrive, and the slot is confirmed past it.

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, Pgseam};
use pgseam_integration_tests::read_topics;

/// librdkafka refuses records over this (its minimum is 1000).
const SMALL_LIMIT: &str = "producer.message.max.bytes=4000";
/// A body of 12,000 bytes; the text never appears in logs.
const BIG_BODY: &str = "repeat('secretvalue', 1200)";

fn setup(env: &Env) {
    env.psql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text);
         INSERT INTO docs SELECT g, 'small ' || g FROM generate_series(1, 5) g;",
    );
}

/// Row 6 small, row 7 large, row 8 small, each in its own transaction. Returns the WAL
/// position between rows 6 and 7 (at or after row 6's commit, at or before row 7's insert).
fn write_rows(env: &Env) -> String {
    env.psql("INSERT INTO docs VALUES (6, 'small 6')");
    let between = env.psql("SELECT pg_current_wal_lsn()").trim().to_owned();
    env.psql(&format!("INSERT INTO docs VALUES (7, {BIG_BODY})"));
    env.psql("INSERT INTO docs VALUES (8, 'small 8')");
    between
}

#[test]
fn a_record_over_message_max_bytes_stops_pgseam_then_arrives_after_raising_the_limit() {
    let env = Env::start("toolarge");
    setup(&env);
    let (worker, connector) = env.write_configs("big", &[SMALL_LIMIT], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", Duration::from_secs(60));
    let between = write_rows(&env);
    let status = pgseam.wait(Duration::from_secs(60));
    let log = pgseam.log_text();
    assert!(!status.success(), "pgseam must stop:\n{log}");
    for needle in [
        "record too large for Kafka: topic big.public.docs",
        r#""payload":{"id":7}"#,
        "producer.message.max.bytes",
        "errors.tolerance=all",
    ] {
        assert!(log.contains(needle), "{needle} missing:\n{log}");
    }
    assert!(
        !log.contains("secretvalue"),
        "a row value was logged:\n{log}"
    );
    // Nothing from row 7's transaction on was confirmed to the slot.
    let confirmed = env.psql(&format!(
        "SELECT confirmed_flush_lsn <= '{between}' FROM pg_replication_slots WHERE slot_name = 'slot_big'"
    ));
    assert_eq!(confirmed.trim(), "t", "the slot moved past row 6:\n{log}");

    // Raise the limit (the worker file's later key wins): row 7 and row 8 arrive.
    let (worker, connector) = env.write_configs(
        "big",
        &[SMALL_LIMIT, "producer.message.max.bytes=1000000"],
        &[],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let comparison = env.assert_topic_equals("big", "public.docs", false, Duration::from_secs(60));
    assert_eq!(comparison.source_rows, 8);
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}:\n{}", pgseam.log_text());
}

#[test]
fn errors_tolerance_all_skips_and_logs_a_record_over_message_max_bytes() {
    let env = Env::start("toolargeskip");
    setup(&env);
    let (worker, connector) = env.write_configs("skip", &[SMALL_LIMIT], &["errors.tolerance=all"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", Duration::from_secs(60));
    let _ = write_rows(&env);
    pgseam.wait_for_log("record skipped", Duration::from_secs(60));
    let end = env.psql("SELECT pg_current_wal_lsn()");
    let end = end.trim();
    // The slot is confirmed past the skipped record.
    let started = Instant::now();
    loop {
        let reached = env.psql(&format!(
            "SELECT confirmed_flush_lsn >= '{end}' FROM pg_replication_slots WHERE slot_name = 'slot_skip'"
        ));
        if reached.trim() == "t" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "slot not confirmed up to {end}:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = pgseam.log_text();
    let skip_line = log
        .lines()
        .find(|l| l.contains("record skipped"))
        .expect("the skip is logged");
    for needle in ["skip.public.docs", r#""id":7"#, "size=", "lsn="] {
        assert!(skip_line.contains(needle), "{needle} missing: {skip_line}");
    }
    assert!(
        !log.contains("secretvalue"),
        "a row value was logged:\n{log}"
    );

    // Rows 6 and 8 arrived, row 7 did not.
    let messages = read_topics(
        &env.broker.bootstrap_servers(),
        &["skip.public.docs".to_owned()],
        7,
        Duration::from_millis(700),
        Duration::from_secs(30),
    )
    .unwrap();
    let mut ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.key_payload().and_then(|k| k["id"].as_i64()))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 8]);
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}:\n{}", pgseam.log_text());
}
