//! Records over `message.max.bytes`, on rdkafka's mock cluster (librdkafka's in-process
//! broker): refused by librdkafka when enqueued, or by the broker in the delivery report.
//!
//! - Default: the error names the topic, the key and the setting to raise; the watermark
//!   stops in front of the record, so nothing after it is ever reported durable.
//! - `skip_oversized` (`errors.tolerance=all`): a record librdkafka refuses is skipped, counted
//!   and treated as acknowledged; the records after it are delivered.
//! - A batch the broker refuses is never skipped (its records that fit would be lost too).

use std::time::Duration;

use pgseam_sink_kafka::{KafkaSink, KafkaSinkConfig, SinkError};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const TOPIC: &str = "dbz.public.big";
/// librdkafka's smallest allowed `message.max.bytes` is 1000.
const LIMIT: &str = "2000";

fn sink(bootstrap: String, skip_oversized: bool) -> KafkaSink {
    KafkaSink::new(&KafkaSinkConfig {
        bootstrap_servers: bootstrap,
        overrides: [
            ("message.max.bytes".to_owned(), LIMIT.to_owned()),
            ("linger.ms".to_owned(), "0".to_owned()),
            ("message.timeout.ms".to_owned(), "10000".to_owned()),
        ]
        .into(),
        topic_creation: None,
        skip_oversized,
        memory_budget: None,
        transactional_id: None,
    })
    .unwrap()
}

async fn send(sink: &KafkaSink, id: u32, value_len: usize) -> Result<u64, SinkError> {
    let key = format!(r#"{{"id":{id}}}"#);
    let value = vec![b'x'; value_len];
    sink.send_parts_at(
        TOPIC,
        Some(key.as_bytes()),
        Some(&value),
        [("pgseam.lsn", b"0/16B3748".as_slice())],
        Some(0x16B_3748),
    )
    .await
}

async fn settled(sink: &KafkaSink) {
    tokio::time::timeout(Duration::from_secs(20), sink.wait_settled())
        .await
        .expect("deliveries settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_limit_stops_the_sink_naming_topic_and_key() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    let sink = sink(cluster.bootstrap_servers(), false);
    assert_eq!(send(&sink, 1, 10).await.unwrap(), 0);
    let err = send(&sink, 2, 5000)
        .await
        .expect_err("over message.max.bytes");
    let text = err.to_string();
    match &err {
        SinkError::TooLarge(record) => {
            assert_eq!(record.topic, TOPIC);
            assert_eq!(record.key, r#"{"id":2}"#);
            assert!(!record.by_broker);
            assert_eq!(record.limit, 2000);
            assert!(record.size > 5000, "{}", record.size);
            assert_eq!(record.lsn, Some(0x16B_3748));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    for needle in [
        TOPIC,
        r#"{"id":2}"#,
        "producer.message.max.bytes",
        "errors.tolerance=all",
        "0/16B3748",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
    assert!(!text.contains("xxxx"), "the value is never shown: {text}");
    // Everything later fails with the same error; nothing after the record becomes durable.
    assert!(matches!(
        send(&sink, 3, 10).await,
        Err(SinkError::TooLarge(_))
    ));
    settled(&sink).await;
    let acks = sink.acks();
    assert_eq!(acks.watermark, 1, "only the record before it is durable");
    assert_eq!(acks.failure.expect("kept").seq, 1);
    assert_eq!(acks.skipped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_tolerance_all_skips_a_record_over_the_limit() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    let sink = sink(cluster.bootstrap_servers(), true);
    assert_eq!(send(&sink, 1, 10).await.unwrap(), 0);
    assert_eq!(
        send(&sink, 2, 5000).await.unwrap(),
        1,
        "skipped, not failed"
    );
    assert_eq!(send(&sink, 3, 10).await.unwrap(), 2);
    assert_eq!(sink.skipped(), 1);
    tokio::time::timeout(Duration::from_secs(20), sink.wait(3, false))
        .await
        .expect("the watermark passes the skipped record");
    let acks = sink.acks();
    assert_eq!((acks.watermark, acks.unresolved), (3, 0));
    assert!(acks.failure.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_broker_refuses_as_too_large_is_fatal_even_when_skipping() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let sink = sink(cluster.bootstrap_servers(), true);
    // A first record goes through (producer id and metadata settled), then the broker
    // answers the next ProduceRequest with MESSAGE_TOO_LARGE.
    assert_eq!(send(&sink, 1, 10).await.unwrap(), 0);
    tokio::time::timeout(Duration::from_secs(20), sink.wait(1, false))
        .await
        .unwrap();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    assert_eq!(send(&sink, 2, 100).await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(20), sink.wait(2, false))
        .await
        .expect("the failure wakes the waiter");
    settled(&sink).await;
    let acks = sink.acks();
    assert_eq!(acks.watermark, 1);
    assert_eq!(acks.skipped, 0, "a broker refusal is never skipped");
    let failure = acks.failure.expect("the refusal is kept");
    assert_eq!(failure.seq, 1);
    let text = failure.error.to_string();
    match &failure.error {
        SinkError::TooLarge(record) => {
            assert_eq!(record.topic, TOPIC);
            assert_eq!(record.key, r#"{"id":2}"#);
            assert!(record.by_broker);
            assert_eq!(record.lsn, Some(0x16B_3748));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    for needle in ["max.message.bytes", "MESSAGE_TOO_LARGE", r#"{"id":2}"#] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}
