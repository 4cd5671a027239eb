//! Partitioned tables end to end, with and without `publish.via.partition.root`: a table with
//! three partitions (one attached with another column order and a dropped column), a chunked
//! parallel snapshot, then inserts, updates, deletes and an UPDATE that moves rows to another
//! partition. The topics are read back and applied as primary-key tables (the oracle in
//! `tests/`), and compared with the source. Also: the start errors for filters that would drop
//! partition changes and for a publication that does not publish via the root when asked
//! (and `pgseam validate` naming them), and a root's snapshot resumed after `kill -9`.
//!
//! What pgoutput sends for an UPDATE that moves a row to another partition (checked on
//! PostgreSQL 15 with `pg_logical_slot_peek_binary_changes`): a Delete of the old row under the
//! old partition's relation and an Insert under the new one's — or, publishing via the root,
//! both under the root's relation. Either way the key (which holds the partition key) changes,
//! so a primary-key consumer applies a delete of the old key and a create of the new one.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{run_to_exit, Env, Pgseam};
use pgseam_integration_tests::{read_topics, TopicMessage};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(90);
/// Rows per partition in the snapshot; with `snapshot.chunk.rows=200` each partition is read
/// in several ctid chunks.
const ROWS: i64 = 1000;
const LEAVES: [&str; 3] = ["m_eu", "m_us", "m_as"];

/// `m` partitioned by region; `m_as` is created apart with another column order and a dropped
/// column, then attached, so its attribute numbers differ from the root's.
fn create_partitioned_table(env: &Env) {
    env.psql(
        "CREATE TABLE m (id int, region text, v int, payload text, PRIMARY KEY (id, region)) \
             PARTITION BY LIST (region);
         CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
         CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
         CREATE TABLE m_as (payload text, gone int, v int, region text NOT NULL, id int NOT NULL);
         ALTER TABLE m_as DROP COLUMN gone;
         ALTER TABLE m ATTACH PARTITION m_as FOR VALUES IN ('as');",
    );
    env.psql(&format!(
        "INSERT INTO m SELECT g, r, g * 10, repeat('x', 40) || g \
         FROM generate_series(1, {ROWS}) g, unnest(ARRAY['eu', 'us', 'as']) r"
    ));
}

/// Inserts, updates, deletes, and UPDATEs that move rows between partitions (one statement
/// moving several, one moving a row twice in a transaction).
fn stream_changes(env: &Env) {
    env.psql(&format!(
        "INSERT INTO m SELECT g, 'eu', g, 'new' FROM generate_series({}, {}) g",
        ROWS + 1,
        ROWS + 50
    ));
    env.psql("UPDATE m SET v = -v, payload = 'updated' WHERE id % 7 = 0");
    env.psql("DELETE FROM m WHERE id % 11 = 0");
    // Cross-partition moves: one statement moving many `us` rows to `eu` (their `eu` twins
    // deleted first, the key must stay unique), and a row moved twice in one transaction.
    env.psql(
        "DELETE FROM m WHERE region = 'eu' AND id % 13 = 0;
         UPDATE m SET region = 'eu', payload = 'moved' WHERE region = 'us' AND id % 13 = 0;",
    );
    env.psql(
        "DELETE FROM m WHERE id = 23 AND region IN ('eu', 'us');
         BEGIN;
         UPDATE m SET region = 'eu' WHERE id = 23 AND region = 'as';
         UPDATE m SET region = 'us', v = 7 WHERE id = 23 AND region = 'eu';
         COMMIT;",
    );
    env.psql(&format!(
        "DELETE FROM m WHERE id = 29 AND region = 'eu'; \
         UPDATE m SET region = 'eu' WHERE id = 29 AND region = 'as'; \
         INSERT INTO m VALUES ({}, 'as', 1, 'last')",
        ROWS + 100
    ));
}

fn topic_names(env: &Env) -> BTreeSet<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", env.broker.bootstrap_servers())
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

fn read_all(env: &Env, topic: &str, at_least: usize) -> Vec<TopicMessage> {
    read_topics(
        &env.broker.bootstrap_servers(),
        &[topic.to_owned()],
        at_least,
        Duration::from_millis(700),
        WAIT,
    )
    .expect("read topic")
}

/// The snapshot (`op = r`) events of `messages`: each key exactly once, `count` of them.
fn assert_snapshot_once(messages: &[TopicMessage], table: &str, count: usize) {
    let keys: Vec<String> = messages
        .iter()
        .filter(|m| m.op() == Some("r"))
        .map(|m| {
            let envelope = m.envelope().expect("envelope");
            assert_eq!(envelope["source"]["table"], table, "source.table");
            m.key_payload().expect("key").to_string()
        })
        .collect();
    let distinct: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), count, "{table}: snapshot rows");
    assert_eq!(distinct.len(), count, "{table}: a snapshot row repeated");
}

fn assert_equal(env: &Env, prefix: &str, table: &str) -> usize {
    let comparison = env.assert_topic_equals(prefix, table, true, WAIT);
    comparison.source_rows
}

#[test]
fn via_partition_root_puts_snapshot_and_changes_on_the_root_topic_once() {
    let env = Env::start("viaroot");
    create_partitioned_table(&env);
    let (worker, connector) = env.write_configs(
        "viaroot",
        &[],
        &[
            // Debezium's own golden capture lists the root and its partitions.
            "table.include.list=public.m,public.m_eu,public.m_us,public.m_as",
            "publication.autocreate.mode=filtered",
            "publish.via.partition.root=true",
            "snapshot.max.threads=2",
            "snapshot.chunk.rows=200",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert_eq!(
        env.psql("SELECT pubviaroot FROM pg_publication WHERE pubname = 'pub_viaroot'")
            .trim(),
        "t"
    );
    stream_changes(&env);
    let rows = assert_equal(&env, "viaroot", "public.m");
    assert!(rows > 2500, "{rows} rows at the source");

    let messages = read_all(&env, "viaroot.public.m", 1);
    assert_snapshot_once(&messages, "m", 3 * ROWS as usize);
    // The root's schema, whatever the partition's attribute order.
    let first = messages.iter().find(|m| m.op() == Some("r")).unwrap();
    let fields: Vec<&str> = first.value.as_ref().unwrap()["schema"]["fields"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "region", "v", "payload"]);
    // Every streamed change is the root's, and the moves are a delete and a create.
    let streamed: Vec<&TopicMessage> = messages
        .iter()
        .filter(|m| matches!(m.op(), Some("c" | "u" | "d")))
        .collect();
    assert!(streamed
        .iter()
        .all(|m| m.envelope().unwrap()["source"]["table"] == "m"));
    let moved_out = streamed.iter().any(|m| {
        let e = m.envelope().unwrap();
        m.op() == Some("d") && e["before"]["id"] == 29 && e["before"]["region"] == "as"
    });
    let moved_in = streamed.iter().any(|m| {
        let e = m.envelope().unwrap();
        m.op() == Some("c") && e["after"]["id"] == 29 && e["after"]["region"] == "eu"
    });
    assert!(
        moved_out && moved_in,
        "the move of row 29 is a delete and a create"
    );
    let topics = topic_names(&env);
    for leaf in LEAVES {
        assert!(
            !topics.contains(&format!("viaroot.public.{leaf}")),
            "{leaf} has a topic: {topics:?}"
        );
    }
    pgseam.terminate(WAIT);
}

#[test]
fn without_via_partition_root_each_partition_has_its_topic() {
    let env = Env::start("leaves");
    create_partitioned_table(&env);
    let (worker, connector) = env.write_configs(
        "leaves",
        &[],
        &[
            // A pattern that selects the root and its partitions.
            "table.include.list=public\\.m.*",
            "publication.autocreate.mode=filtered",
            "snapshot.max.threads=2",
            "snapshot.chunk.rows=200",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    stream_changes(&env);
    let mut total = 0;
    for leaf in LEAVES {
        total += assert_equal(&env, "leaves", &format!("public.{leaf}"));
        let messages = read_all(&env, &format!("leaves.public.{leaf}"), 1);
        assert_snapshot_once(&messages, leaf, ROWS as usize);
    }
    assert!(total > 2500, "{total} rows at the source");
    // The move of row 29: a delete on m_as's topic, a create on m_eu's.
    let deleted = read_all(&env, "leaves.public.m_as", 1)
        .into_iter()
        .any(|m| m.op() == Some("d") && m.envelope().unwrap()["before"]["id"] == 29);
    let created = read_all(&env, "leaves.public.m_eu", 1)
        .into_iter()
        .any(|m| m.op() == Some("c") && m.envelope().unwrap()["after"]["id"] == 29);
    assert!(
        deleted && created,
        "the move of row 29 is a delete and a create"
    );
    assert!(!topic_names(&env).contains("leaves.public.m"));
    pgseam.terminate(WAIT);
}

#[test]
fn filters_that_would_drop_partition_changes_and_publication_mismatches_are_errors() {
    let env = Env::start("partcfg");
    create_partitioned_table(&env);
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "rootonly",
            &[
                "table.include.list=public.m",
                "publication.autocreate.mode=filtered",
            ],
            "partitioned table `public.m` is published as its partitions",
        ),
        (
            "leavesonly",
            &[
                "table.include.list=public.m_eu,public.m_us",
                "publication.autocreate.mode=all_tables",
                "publish.via.partition.root=true",
            ],
            "partition `public.m_eu` is published under its partitioned table `public.m`",
        ),
        (
            "mismatch",
            &[
                "table.include.list=public.m",
                "publication.autocreate.mode=filtered",
                "publication.name=pub_plain",
                "publish.via.partition.root=true",
            ],
            "SET (publish_via_partition_root = true)",
        ),
    ];
    env.psql("CREATE PUBLICATION pub_plain FOR TABLE m");
    for (name, extra, expected) in cases {
        let (worker, connector) = env.write_configs(name, &[], extra);
        let (status, log) = run_to_exit(&worker, &[&connector], WAIT);
        assert!(!status.success(), "{name}: pgseam should fail:\n{log}");
        assert!(
            log.contains(expected),
            "{name}: expected `{expected}` in:\n{log}"
        );
        // `pgseam validate` names the same problem (the publication exists by now).
        let output = Command::new(common::PGSEAM)
            .args(["validate"])
            .arg(&worker)
            .arg(&connector)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run pgseam validate");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success(),
            "{name}: validate should fail:\n{report}"
        );
        let line = report
            .lines()
            .find(|l| l.contains("] partitions: "))
            .unwrap_or_else(|| panic!("{name}: no partitions check in:\n{report}"));
        assert!(line.contains("FAIL"), "{name}: {line}");
    }
    // No slot was created by any of them.
    assert_eq!(
        env.psql("SELECT count(*) FROM pg_replication_slots").trim(),
        "0"
    );

    // `all_tables` publishing via the root with the root selected: the root is captured,
    // read in key ranges.
    let (worker, connector) = env.write_configs(
        "allroot",
        &[],
        &[
            "table.include.list=public.m",
            "publication.name=pub_allroot",
            "publish.via.partition.root=true",
            // key ranges over the root (FROM m, every partition)
            "snapshot.chunk.strategy=key",
            "snapshot.chunk.rows=500",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("INSERT INTO m VALUES (5000, 'as', 1, 'streamed')");
    assert_equal(&env, "allroot", "public.m");
    assert_eq!(
        env.psql(
            "SELECT puballtables AND pubviaroot FROM pg_publication WHERE pubname = 'pub_allroot'"
        )
        .trim(),
        "t"
    );
    pgseam.terminate(WAIT);
}

/// A snapshot of a partitioned table published via its root, killed (`kill -9`) after part of
/// it was delivered, with changes (a cross-partition move among them) before the restart: the
/// restart resumes it in key-range windows over the root (`FROM m`, every partition) and the
/// root's topic equals the source.
#[test]
fn an_interrupted_snapshot_of_a_root_resumes_and_loses_nothing() {
    use pgseam::offsets::{offset_key, ConnectorOffset, FileOffsetStore};
    use std::time::Instant;

    let env = Env::start("viaresume");
    env.psql(
        "CREATE TABLE m (id int, region text, v int, payload text, PRIMARY KEY (id, region)) \
             PARTITION BY LIST (region);
         CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
         CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
         CREATE TABLE m_as PARTITION OF m FOR VALUES IN ('as');
         INSERT INTO m SELECT g, r, g, repeat('p', 50) FROM generate_series(1, 20000) g,
             unnest(ARRAY['eu', 'us', 'as']) r;",
    );
    let (worker, connector) = env.write_configs(
        "viaresume",
        &[],
        &[
            "table.include.list=public.m",
            "publish.via.partition.root=true",
            "snapshot.chunk.strategy=key",
            "snapshot.chunk.rows=2000",
            "snapshot.throttle.rows.per.second=15000",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let started = Instant::now();
    let progress = loop {
        let offset = FileOffsetStore::open(&env.offsets_path())
            .ok()
            .and_then(|store| store.get(&offset_key("viaresume", "viaresume")).ok())
            .flatten();
        if let Some(ConnectorOffset::SnapshotResumable { progress, .. }) = offset {
            if progress.partial.is_some() {
                break progress;
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no snapshot progress:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    pgseam.kill9();
    let partial = progress.partial.expect("partial");
    assert_eq!(partial.table, ("public".to_owned(), "m".to_owned()));
    env.psql(
        "UPDATE m SET v = -v WHERE id % 97 = 0;
         DELETE FROM m WHERE id % 89 = 0;
         DELETE FROM m WHERE id = 19999 AND region = 'eu';
         UPDATE m SET region = 'eu', payload = 'moved' WHERE id = 19999 AND region = 'as';
         INSERT INTO m VALUES (30000, 'us', 1, 'new');",
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    assert!(
        pgseam
            .log_text()
            .contains("resuming the interrupted snapshot"),
        "the restart resumed the snapshot:\n{}",
        pgseam.log_text()
    );
    assert_equal(&env, "viaresume", "public.m");
    pgseam.terminate(WAIT);
}
