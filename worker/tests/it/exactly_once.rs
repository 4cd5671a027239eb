//! Exactly-once delivery (`exactly.once.source.support=enabled`) end to end: the `pgseam`
//! binary, a real PostgreSQL, and librdkafka's mock cluster as the Kafka cluster (it runs the
//! transactional protocol; see `sink-kafka/tests/it/transactions.rs` for what it does and does not
//! check, and COMPATIBILITY.md "Exactly-once" for what was verified where).
//!
//! 1. The happy path, on tansu: snapshot and streamed changes arrive
//!    once each (no duplicate position), the offsets topic holds the connector's offset,
//!    written in the records' transactions, the slot is confirmed no further than it, and a
//!    clean restart continues without repeating anything.
//! 2. Fencing and recovery: the cluster answers every Produce with `PRODUCER_FENCED`, as a
//!    coordinator answers a zombie after a newer instance started; pgseam stops with the
//!    fenced error, its slot confirmed no further than the committed offset; the restart
//!    resumes from the committed offset: the failed transaction's changes arrive, and nothing
//!    at or before the committed offset is repeated.
//! 3. A large source transaction is split into many Kafka transactions (offsets inside it,
//!    `pgseam_skip`); fenced in its middle (at a commit), the restart resumes inside it: its
//!    first records, committed, are not sent again, the rest arrive.
//!
//! 4. On tansu, the walsender terminated inside a large transaction: the reconnection skips the
//!    records already sent; every record once.
//!
//! The mock shows records of failed transactions to every consumer (it hides nothing from
//! `read_committed`), so these tests check what it can show: no position before the
//! committed offset is repeated, nothing is missing, and the slot is not confirmed past the
//! committed offset.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Env, Pgseam};
use pgseam_integration_tests::{compare_table, read_topics, TopicMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
const OFFSETS_TOPIC: &str = "eos-offsets";

const SCHEMA: &str = "
CREATE TABLE items (id bigint PRIMARY KEY, qty integer);
INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g;
";

/// A mock cluster with the offsets topic and the table's topic (the mock has no CreateTopics).
fn cluster(prefix: &str) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic(OFFSETS_TOPIC, 5, 3).unwrap();
    cluster
        .create_topic(&format!("{prefix}.public.items"), 3, 3)
        .unwrap();
    cluster
}

fn configs(env: &Env, prefix: &str, bootstrap: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    configs_with(env, prefix, bootstrap, 200)
}

fn configs_with(
    env: &Env,
    prefix: &str,
    bootstrap: &str,
    max_batch_size: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let batch_line = format!("max.batch.size={max_batch_size}");
    let bootstrap_line = format!("bootstrap.servers={bootstrap}");
    let offsets_line = format!("offset.storage.topic={OFFSETS_TOPIC}");
    env.write_configs(
        prefix,
        &[
            &bootstrap_line,
            &offsets_line,
            "offset.storage.replication.factor=3",
            "exactly.once.source.support=enabled",
            "group.id=pgseam-it",
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &["exactly.once.support=required", &batch_line],
    )
}

fn updates(env: &Env, transactions: u32, round: u32) {
    for t in 0..transactions {
        let low = t * 10 + 1;
        env.psql(&format!(
            "UPDATE items SET qty = qty + {round} WHERE id BETWEEN {low} AND {}",
            low + 9
        ));
    }
}

fn records(bootstrap: &str, prefix: &str) -> Vec<TopicMessage> {
    read_topics(
        bootstrap,
        &[format!("{prefix}.public.items")],
        1,
        Duration::from_millis(1500),
        Duration::from_secs(60),
    )
    .expect("read the table's topic")
}

fn header(m: &TopicMessage, name: &str) -> Option<String> {
    m.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn lsn(text: &str) -> u64 {
    let (high, low) = text.split_once('/').expect("an LSN");
    (u64::from_str_radix(high, 16).unwrap() << 32) | u64::from_str_radix(low, 16).unwrap()
}

/// Records per position: streamed records by (commit LSN, sequence), snapshot rows by key.
fn positions(records: &[TopicMessage]) -> HashMap<(Option<u64>, String), usize> {
    let mut seen = HashMap::new();
    for m in records {
        let position = match header(m, "pgseam.commit_lsn") {
            Some(commit) => (
                Some(lsn(&commit)),
                header(m, "pgseam.seq").expect("a sequence header"),
            ),
            None => (
                None,
                m.key.as_ref().map(Value::to_string).unwrap_or_default(),
            ),
        };
        *seen.entry(position).or_insert(0) += 1;
    }
    seen
}

/// The connector's offset records in the offsets topic (values), in read order.
fn offset_values(bootstrap: &str, connector: &str) -> Vec<Value> {
    let key = serde_json::json!([connector, {"server": connector}]);
    read_topics(
        bootstrap,
        &[OFFSETS_TOPIC.to_owned()],
        1,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    )
    .expect("read the offsets topic")
    .into_iter()
    .filter(|m| m.key.as_ref() == Some(&key))
    .filter_map(|m| m.value)
    .collect()
}

fn wait_equal(env: &Env, bootstrap: &str, prefix: &str) {
    let started = Instant::now();
    let run_sql = |sql: &str| -> anyhow::Result<String> { Ok(env.pg.psql(&env.database, sql)?) };
    loop {
        let comparison = compare_table(
            &run_sql,
            bootstrap,
            "items",
            &format!("{prefix}.public.items"),
            false,
            Duration::from_millis(700),
            Duration::from_secs(30),
        )
        .expect("compare");
        if comparison.differences.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "the topic does not match the table: {:?}",
            &comparison.differences[..comparison.differences.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn confirmed_flush_lsn(env: &Env, slot: &str) -> u64 {
    lsn(env
        .psql(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
        .trim())
}

/// The happy path against tansu, which runs the transactional protocol far enough for
/// commits to succeed and committed records to be read (it does not hide aborted ones). (The
/// same against the mock cluster passes too, but costs two minutes: the mock answers no
/// CreateTopics, so opening the offsets topic waits for the admin timeout at every start.)
#[test]
fn records_and_offsets_are_committed_together_and_a_restart_repeats_nothing() {
    let prefix = "eost";
    let env = Env::start(prefix);
    happy_path(&env, &env.broker.bootstrap_servers(), prefix);
}

fn happy_path(env: &Env, bootstrap: &str, prefix: &str) {
    env.psql(SCHEMA);
    let bootstrap = bootstrap.to_owned();
    let (worker, connector) = configs(env, prefix, &bootstrap);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let log = pgseam.log_text();
    assert!(
        log.contains("exactly-once delivery: older producers fenced, committed offsets read")
            && log.contains(&format!("pgseam-it-{prefix}-0")),
        "{log}"
    );
    updates(env, 30, 1);
    wait_equal(env, &bootstrap, prefix);
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());

    // The offset is in the offsets topic, and the slot went no further than it.
    let offsets = offset_values(&bootstrap, prefix);
    let last = offsets.last().expect("an offset record");
    let stored_lsn = last["lsn"].as_u64().expect("a streaming offset");
    assert!(confirmed_flush_lsn(env, &format!("slot_{prefix}")) <= stored_lsn);

    // More changes while stopped; the restart resumes from the committed offset.
    updates(env, 20, 2);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    wait_equal(env, &bootstrap, prefix);
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());

    let all = records(&bootstrap, prefix);
    let seen = positions(&all);
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "records repeated: {:?}",
        &repeated[..repeated.len().min(5)]
    );
    // 1000 snapshot rows and 50 transactions of 10 updates, each once.
    assert_eq!(all.len(), 1000 + 500, "{} records", all.len());
    println!(
        "exactly once: {} records, {} offset records in {OFFSETS_TOPIC}",
        all.len(),
        offsets.len()
    );
}

#[test]
fn a_fenced_instance_stops_and_the_restart_resumes_from_the_committed_offset() {
    let prefix = "eosf";
    let env = Env::start(prefix);
    env.psql(SCHEMA);
    let cluster = cluster(prefix);
    let bootstrap = cluster.bootstrap_servers();
    let (worker, connector) = configs(&env, prefix, &bootstrap);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    updates(&env, 10, 1);
    wait_equal(&env, &bootstrap, prefix);
    // Let an idle offset commit pass, then fence: every Produce is refused from now on.
    std::thread::sleep(Duration::from_secs(1));
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 200],
    );
    updates(&env, 10, 2);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = pgseam.exited() {
            break status;
        }
        assert!(
            started.elapsed() < WAIT,
            "pgseam did not stop when fenced:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = pgseam.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("this producer was fenced: another instance started with the same transactional.id `pgseam-it-eosf-0`"),
        "no clear fenced error:\n{log}"
    );
    cluster.clear_request_errors(RDKafkaApiKey::Produce);

    // Nothing of the fenced transaction was committed: the slot and the offset are where the
    // last commit left them.
    let offsets = offset_values(&bootstrap, prefix);
    let committed = offsets
        .last()
        .and_then(|v| v["lsn"].as_u64())
        .expect("a committed streaming offset");
    let confirmed = confirmed_flush_lsn(&env, &format!("slot_{prefix}"));
    assert!(
        confirmed <= committed,
        "slot {confirmed} past offset {committed}"
    );

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    wait_equal(&env, &bootstrap, prefix);
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());

    // Repeats (the mock shows records of failed transactions, which a broker hides from
    // read_committed consumers) are all after the committed offset.
    let seen = positions(&records(&bootstrap, prefix));
    for ((commit, seq), n) in &seen {
        if *n > 1 {
            let commit = commit.expect("no snapshot row is repeated");
            assert!(
                commit > committed,
                "a committed record was repeated: commit LSN {commit:X}, seq {seq}"
            );
        }
    }
    println!(
        "fenced: committed offset {committed:X}, {} positions repeated after it",
        seen.values().filter(|n| **n > 1).count()
    );
}

#[test]
fn a_large_transaction_is_split_and_a_restart_resumes_inside_it() {
    let prefix = "eosl";
    let env = Env::start(prefix);
    env.psql(SCHEMA);
    let cluster = cluster(prefix);
    let bootstrap = cluster.bootstrap_servers();
    let (worker, connector) = configs_with(&env, prefix, &bootstrap, 50);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    wait_equal(&env, &bootstrap, prefix);
    // Fenced at the sixth commit (EndTxn): some five Kafka transactions of 50 records into a
    // source transaction of 5,000. (Fencing on Produce instead would be as real, but the mock
    // shows records of failed transactions, and an offset record whose Produce happened to
    // succeed in a failed transaction would then look committed.)
    let mut errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR; 5];
    errors.extend([RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 50]);
    cluster.request_errors(RDKafkaApiKey::EndTxn, &errors);
    let big: String = (1..=5)
        .map(|round| format!("UPDATE items SET qty = qty + {round};"))
        .collect();
    env.psql(&format!("BEGIN; {big} COMMIT;"));
    let started = Instant::now();
    while pgseam.exited().is_none() {
        assert!(
            started.elapsed() < WAIT,
            "pgseam was not fenced:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = pgseam.log_text();
    assert!(log.contains("this producer was fenced"), "{log}");
    cluster.clear_request_errors(RDKafkaApiKey::EndTxn);

    let offsets = offset_values(&bootstrap, prefix);
    let last = offsets.last().expect("an offset").clone();
    let skip = last["pgseam_skip"]
        .as_str()
        .unwrap_or_else(|| {
            panic!("the last committed offset is not inside the transaction: {last}")
        })
        .to_owned();
    let (commit, delivered) = skip.split_once(':').unwrap();
    let (commit, delivered) = (lsn(commit), delivered.parse::<u64>().unwrap());
    assert!(delivered > 0 && delivered < 5_000, "{skip}");
    // The slot stays before the transaction.
    let confirmed = confirmed_flush_lsn(&env, &format!("slot_{prefix}"));
    assert!(
        confirmed < commit,
        "slot {confirmed:X} at or past {commit:X}"
    );

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    wait_equal(&env, &bootstrap, prefix);
    let status = pgseam.terminate(WAIT);
    let log = pgseam.log_text();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("the stored position is inside a transaction"),
        "{log}"
    );
    let seen = positions(&records(&bootstrap, prefix));
    let mut of_big = 0;
    for ((c, seq), n) in &seen {
        if *c == Some(commit) {
            of_big += 1;
            let seq: u64 = seq.parse().unwrap();
            assert!(
                *n == 1 || seq >= delivered,
                "record {seq} of the transaction, committed before the restart, was sent again"
            );
        }
    }
    assert_eq!(of_big, 5_000, "every record of the transaction arrived");
    println!(
        "split: {} offsets, the fenced one at record {delivered} of 5000",
        offsets.len()
    );
}

/// A lost replication connection inside a large transaction (the walsender is terminated):
/// the reconnection replays the transaction from its start and skips the records already sent,
/// so every record of it is in Kafka once. On tansu: nothing is aborted here.
#[test]
fn a_reconnection_inside_a_large_transaction_repeats_nothing() {
    let prefix = "eosr";
    let env = Env::start(prefix);
    env.psql(SCHEMA);
    let bootstrap = env.broker.bootstrap_servers();
    let bootstrap_line = format!("bootstrap.servers={bootstrap}");
    let offsets_line = format!("offset.storage.topic={OFFSETS_TOPIC}");
    let (worker, connector) = env.write_configs(
        prefix,
        &[
            &bootstrap_line,
            &offsets_line,
            "exactly.once.source.support=enabled",
            "group.id=pgseam-it",
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "max.batch.size=50",
            "max.queue.size=100",
            "retriable.restart.connector.wait.ms=300",
            "slot.retry.delay.ms=500",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    wait_equal(&env, &bootstrap, prefix);
    let big: String = (1..=20)
        .map(|round| format!("UPDATE items SET qty = qty + {round};"))
        .collect();
    env.psql(&format!("BEGIN; {big} COMMIT;"));
    // Once part of the transaction is streamed (pgoutput sends it after its commit, and the
    // small queue holds the walsender back), the walsender is in the middle of it.
    let base = pgseam.rest_base_url(WAIT);
    let started = Instant::now();
    while streamed_events(&base) < 3_000 {
        assert!(started.elapsed() < WAIT, "{}", pgseam.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let terminated = env.psql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name = 'slot_eosr' AND active_pid IS NOT NULL",
    );
    assert_eq!(terminated, "t", "the walsender was running");
    let started = Instant::now();
    while pgseam.log_text().matches("streaming started").count() < 2 {
        assert!(started.elapsed() < WAIT, "{}", pgseam.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_equal(&env, &bootstrap, prefix);
    let status = pgseam.terminate(WAIT);
    let log = pgseam.log_text();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("the cut transaction is sent again from its start"),
        "the connection was not lost inside the transaction:\n{log}"
    );
    let seen = positions(&records(&bootstrap, prefix));
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "records repeated: {:?}",
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(seen.len(), 1000 + 20_000);
}

/// Debezium's streaming `TotalNumberOfEventsSeen` from `GET /metrics`.
fn streamed_events(base: &str) -> u64 {
    let output = std::process::Command::new("curl")
        .args(["-s", &format!("{base}/metrics")])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| {
            l.starts_with("debezium_metrics_TotalNumberOfEventsSeen{")
                && l.contains("context=\"streaming\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}
