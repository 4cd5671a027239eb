//! The transactional producer (exactly-once delivery) against librdkafka's mock cluster
//! (`rdkafka::mocking`) and the tansu broker.
//!
//! What each can verify (found by these tests, see COMPATIBILITY.md "Exactly-once"):
//! - the mock cluster runs the transactional protocol (InitProducerId with a transactional id,
//!   AddPartitionsToTxn, EndTxn commit and abort) and checks producer epochs on Produce and
//!   EndTxn, and errors can be injected per request type; but its InitProducerId hands a second
//!   producer with the same id a *new* producer id instead of bumping the epoch (no fencing),
//!   and its Fetch never lists aborted transactions, so `read_committed` consumers see aborted
//!   records. Fencing is therefore tested by injecting `PRODUCER_FENCED`, as a real
//!   coordinator answers a zombie.

use std::time::Duration;

use pgseam_sink_kafka::transactions::TxnErrorKind;
use pgseam_sink_kafka::{KafkaSink, KafkaSinkConfig, OutgoingRecord, SinkError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(20);

fn transactional_sink(bootstrap: &str, id: &str) -> KafkaSink {
    KafkaSink::new(&KafkaSinkConfig {
        bootstrap_servers: bootstrap.to_owned(),
        overrides: [("linger.ms".to_owned(), "0".to_owned())].into(),
        transactional_id: Some(id.to_owned()),
        ..KafkaSinkConfig::default()
    })
    .unwrap()
}

fn record(value: &str) -> OutgoingRecord {
    OutgoingRecord {
        topic: "t".into(),
        key: Some(value.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: Vec::new(),
    }
}

/// Every value in topic `t` (one partition) as a consumer with `isolation` reads it, until
/// nothing more arrives for a second.
fn read_values(bootstrap: &str, isolation: &str, partitions: i32) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset("t", partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let mut quiet = 0;
    while quiet < 4 {
        match consumer.poll(Duration::from_millis(250)) {
            Some(Ok(message)) => {
                quiet = 0;
                values.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into());
            }
            Some(Err(err)) => panic!("consumer error: {err}"),
            None => quiet += 1,
        }
    }
    values
}

async fn read(bootstrap: &str, isolation: &'static str, partitions: i32) -> Vec<String> {
    let bootstrap = bootstrap.to_owned();
    let mut values =
        tokio::task::spawn_blocking(move || read_values(&bootstrap, isolation, partitions))
            .await
            .unwrap();
    if partitions > 1 {
        values.sort();
    }
    values
}

/// Commit a, b, c; abort x, y; commit d. Returns the sink.
async fn commit_abort_commit(bootstrap: &str, id: &str) -> KafkaSink {
    let sink = transactional_sink(bootstrap, id);
    sink.init_transactions(TIMEOUT).await.unwrap();
    assert!(!sink.in_transaction());
    for value in ["a", "b", "c"] {
        sink.send(&record(value)).await.unwrap();
    }
    assert!(
        sink.in_transaction(),
        "the first record opens a transaction"
    );
    sink.commit_transaction(TIMEOUT).await.unwrap();
    assert!(!sink.in_transaction());
    assert_eq!(sink.acks().watermark, 3, "a commit flushes every record");
    for value in ["x", "y"] {
        sink.send(&record(value)).await.unwrap();
    }
    sink.wait(5, false).await;
    sink.abort_transaction(TIMEOUT).await.unwrap();
    assert!(!sink.in_transaction());
    sink.send(&record("d")).await.unwrap();
    sink.commit_transaction(TIMEOUT).await.unwrap();
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_commit_and_abort() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("t", 1, 3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    commit_abort_commit(&bootstrap, "pgseam-test-commit-0").await;
    // The mock writes aborted records and does not hide them (see the module docs): every
    // record was written, in order, and the protocol calls all succeeded.
    assert_eq!(
        read(&bootstrap, "read_uncommitted", 1).await,
        ["a", "b", "c", "x", "y", "d"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_commit_is_a_fenced_error_and_the_producer_stays_dead() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("t", 1, 3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let zombie = transactional_sink(&bootstrap, "pgseam-test-fence-0");
    zombie.init_transactions(TIMEOUT).await.unwrap();
    zombie.send(&record("zombie-1")).await.unwrap();
    zombie.wait(1, false).await;
    // What the coordinator answers a producer whose epoch a newer one bumped.
    cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    match zombie.commit_transaction(TIMEOUT).await {
        Err(SinkError::Fenced {
            transactional_id, ..
        }) => assert_eq!(transactional_id, "pgseam-test-fence-0"),
        other => panic!("the zombie's commit must fail as fenced, got {other:?}"),
    }
    // Fatal: nothing more can be sent or committed.
    let later = zombie.send(&record("zombie-2")).await;
    assert!(
        matches!(later, Err(SinkError::Fenced { .. })),
        "a send after fencing must fail as fenced, got {later:?}"
    );
    let message = later.unwrap_err().to_string();
    assert!(
        message.contains(
            "another instance started with the same transactional.id `pgseam-test-fence-0`"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abortable_commit_failure_is_aborted_and_the_producer_goes_on() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("t", 1, 3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let sink = transactional_sink(&bootstrap, "pgseam-test-abortable-0");
    sink.init_transactions(TIMEOUT).await.unwrap();
    sink.send(&record("a")).await.unwrap();
    sink.wait(1, false).await;
    cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TXN_STATE],
    );
    let err = sink.commit_transaction(TIMEOUT).await.unwrap_err();
    match &err {
        SinkError::Transaction {
            kind, operation, ..
        } => {
            assert_eq!(*operation, "commit");
            assert_ne!(*kind, TxnErrorKind::Fenced);
        }
        other => panic!("expected a transaction error, got {other:?}"),
    }
    assert!(sink.in_transaction(), "still open: to be aborted");
}
