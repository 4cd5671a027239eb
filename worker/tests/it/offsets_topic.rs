//! Offsets in Kafka Connect's offsets topic (`offset.storage.topic`), end to end against the
//! real PostgreSQL and broker: pgseam creates the topic, stores Debezium's offset in Connect's
//! record layout, resumes from it after a clean restart and after `kill -9` without a second
//! snapshot and without losing a change, and refuses to start on a corrupt stored value. The
//! records are read back with Kafka Connect's own `KafkaOffsetBackingStore` and
//! `OffsetStorageReaderImpl` (a small Java program on the reference harness's jars), so a
//! Connect distributed worker running Debezium would resume from what pgseam wrote.
//!
//! The Java step needs `javac` and the jars in `$DBZPEER_HOME/libs` (default .dbzpeer/libs in
//! the repo); without them it fails unless `PGSEAM_SKIP_JAVA_TESTS=1`.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{run_to_exit, Env, Pgseam};
use pgseam_integration_tests::read_topics;
use pgseam_sink_kafka::offsets_topic::{OffsetsTopic, OffsetsTopicConfig};
use pgseam_testkit::JavaHarness;
use serde_json::{json, Value};

const TOPIC: &str = "connect-offsets";
const WAIT: Duration = Duration::from_secs(90);

const SCHEMA: &str = "
CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer);
INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 3000) g;
";

/// Every record of the offsets topic: (partition, key JSON, value JSON or null), in read order
/// per partition.
fn offsets_records(env: &Env) -> Vec<(i32, Value, Option<Value>)> {
    read_topics(
        &env.broker.bootstrap_servers(),
        &[TOPIC.to_owned()],
        1,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    )
    .expect("read the offsets topic")
    .into_iter()
    .map(|m| {
        (
            m.partition,
            m.key.expect("offset records have keys"),
            m.value,
        )
    })
    .collect()
}

/// The last stored value of `key` and its partition.
fn last_offset(records: &[(i32, Value, Option<Value>)], key: &Value) -> (i32, Option<Value>) {
    records
        .iter()
        .rev()
        .find(|(_, k, _)| k == key)
        .map(|(p, _, v)| (*p, v.clone()))
        .expect("an offset record for the connector")
}

/// What Kafka Connect's reader makes of the topic: `offset`, `partitions`, `marker`,
/// `partition` lines (see ReadOffsetsTopic.java).
fn connect_reads(env: &Env, connector: &str, prefix: &str) -> Option<Vec<(String, String)>> {
    let java = JavaHarness::find("connect-runtime-4.3.0.jar")?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/ReadOffsetsTopic.java");
    let stdout = java
        .compile(
            &source,
            &env.dir.path().join("java-classes"),
            "ReadOffsetsTopic",
        )
        .run([&env.broker.bootstrap_servers(), TOPIC, connector, prefix]);
    Some(
        stdout
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[test]
fn offsets_in_the_topic_carry_pgseam_across_restart_and_crash() {
    let env = Env::start("shop");
    env.psql(SCHEMA);
    let (worker, connector) =
        env.write_configs("shop", &[&format!("offset.storage.topic={TOPIC}")], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("UPDATE items SET qty = qty + 1 WHERE id % 3 = 0");
    env.psql("DELETE FROM items WHERE id % 10 = 0");
    let items = env.assert_topic_equals("shop", "public.items", true, WAIT);
    let snapshot_reads = items.state.reads;
    assert_eq!(snapshot_reads, 3000);

    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
    assert!(
        pgseam.log_text().contains("offsets topic connect-offsets"),
        "{}",
        pgseam.log_text()
    );
    assert!(
        !env.offsets_path().exists(),
        "the offsets went to the file, not the topic"
    );

    // Connect's layout: key ["<name>",{"server":"<prefix>"}], value Debezium's offset, stored
    // last at the slot's confirmed position; markers are null-valued and carry no offset.
    let key = json!(["shop", {"server": "shop"}]);
    let records = offsets_records(&env);
    let (partition, value) = last_offset(&records, &key);
    let value = value.expect("the last offset is not a tombstone");
    let confirmed: u64 = env
        .psql("SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = 'slot_shop'")
        .parse()
        .unwrap();
    assert_eq!(value["lsn_commit"].as_u64(), Some(confirmed), "{value}");
    assert_eq!(value["messageType"], "COMMIT", "{value}");
    let markers: Vec<_> = records
        .iter()
        .filter(|(_, k, _)| k[0] == "__pgseam.marker")
        .collect();
    assert!(
        markers.len() >= 25,
        "one marker per partition at start: {markers:?}"
    );
    assert!(markers
        .iter()
        .all(|(_, k, v)| v.is_none() && k[1]["id"].is_string()));
    let partitions: std::collections::BTreeSet<i32> = markers.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(partitions.len(), 25, "Connect's default of 25 partitions");

    // Kafka Connect's own reader finds the same offset, in the partition Java's partitioner
    // picks, and ignores the markers.
    if let Some(lines) = connect_reads(&env, "shop", "shop") {
        let get = |name: &str| {
            lines
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
        };
        let java_offset: Value = serde_json::from_str(&get("offset")).unwrap();
        assert_eq!(java_offset, value, "Connect's reader sees another offset");
        assert_eq!(get("partitions"), "[{server=shop}]");
        assert_eq!(get("marker"), "[]");
        assert_eq!(
            get("partition"),
            partition.to_string(),
            "not the partition Connect would use"
        );
    }

    // `pgseam offsets show` reads the topic too.
    let shown = Command::new(common::PGSEAM)
        .args(["offsets", "show"])
        .arg(&worker)
        .output()
        .expect("run pgseam offsets show");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("one JSON line");
    assert_eq!(
        shown,
        json!({"connector": "shop", "partition": {"server": "shop"}, "offset": value})
    );

    // Changes while pgseam is down are streamed after the restart, with no second snapshot.
    env.psql("INSERT INTO items SELECT g, 'offline ' || g, g FROM generate_series(5001, 5200) g");
    env.psql("UPDATE items SET name = 'changed' WHERE id % 7 = 0");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    let items = env.assert_topic_equals("shop", "public.items", true, WAIT);
    assert_eq!(
        items.state.reads, snapshot_reads,
        "the restart took a second snapshot"
    );

    // kill -9 while changes flow: an ordered suffix may repeat, nothing is lost.
    env.psql("UPDATE items SET qty = -qty WHERE id % 5 = 0");
    pgseam.kill9();
    env.psql("DELETE FROM items WHERE id % 11 = 0");
    env.psql("INSERT INTO items VALUES (9000001, 'after crash', 1)");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    let items = env.assert_topic_equals("shop", "public.items", true, WAIT);
    assert_eq!(
        items.state.reads, snapshot_reads,
        "the crash restart took a second snapshot"
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
    let (_, value) = last_offset(&offsets_records(&env), &key);
    let confirmed: u64 = env
        .psql("SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = 'slot_shop'")
        .parse()
        .unwrap();
    assert_eq!(
        value.expect("offset")["lsn_commit"].as_u64(),
        Some(confirmed)
    );
}

#[test]
fn a_corrupt_offset_in_the_topic_is_a_fatal_error_naming_the_key() {
    let env = Env::start("shop");
    env.psql(SCHEMA);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = br#"["shop",{"server":"shop"}]"#;
    runtime.block_on(async {
        let config = OffsetsTopicConfig {
            bootstrap_servers: env.broker.bootstrap_servers(),
            client_overrides: Default::default(),
            topic: TOPIC.to_owned(),
            partitions: 25,
            replication_factor: -1,
            read_timeout: Duration::from_secs(60),
        };
        let (log, _) = OffsetsTopic::open(&config).await.expect("open the topic");
        log.write(key, Some(br#"{"lsn":"not a number","ts_usec":1}"#))
            .await
            .expect("write the corrupt offset");
    });
    let (worker, connector) =
        env.write_configs("shop", &[&format!("offset.storage.topic={TOPIC}")], &[]);
    let (status, log) = run_to_exit(&worker, &[&connector], WAIT);
    assert!(
        !status.success(),
        "pgseam started on a corrupt offset:\n{log}"
    );
    assert!(
        log.contains(r#"key ["shop",{"server":"shop"}]"#)
            && log.contains("offsets topic connect-offsets")
            && log.contains("`lsn` is not an integer"),
        "the error does not name the key, topic and problem:\n{log}"
    );
    let slots = env.psql("SELECT count(*) FROM pg_replication_slots");
    assert_eq!(slots, "0", "a slot was created despite the corrupt offset");
}
