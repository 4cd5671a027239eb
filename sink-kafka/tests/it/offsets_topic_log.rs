//! The offsets-topic log against the real broker: the topic is created with Connect's default of
//! 25 partitions, a write returns after the acknowledgement, a later open reads every record
//! back (markers excluded, its own and an earlier open's), and tombstones are returned as null
//! values.

use std::collections::BTreeMap;
use std::time::Duration;

use pgseam_sink_kafka::offsets_topic::{
    is_marker_key, OffsetsTopic, OffsetsTopicConfig, DEFAULT_PARTITIONS,
};
use pgseam_testkit::Broker;

fn config(broker: &Broker, topic: &str) -> OffsetsTopicConfig {
    OffsetsTopicConfig {
        bootstrap_servers: broker.bootstrap_servers(),
        client_overrides: BTreeMap::new(),
        topic: topic.to_owned(),
        partitions: DEFAULT_PARTITIONS,
        replication_factor: -1,
        read_timeout: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_are_read_back_by_the_next_open() {
    let broker = Broker::start().expect("broker");
    let config = config(&broker, "connect-offsets");
    let (log, records) = OffsetsTopic::open(&config).await.expect("open empty");
    assert!(records.is_empty(), "{records:?}");

    let a = br#"["a",{"server":"dbz"}]"#.as_slice();
    let b = br#"["b",{"server":"dbz"}]"#.as_slice();
    let mut written = Vec::new();
    for i in 0..20 {
        let value = format!(r#"{{"lsn":{i}}}"#);
        written.push(log.write(a, Some(value.as_bytes())).await.expect("write a"));
    }
    written.push(log.write(b, Some(br#"{"lsn":5}"#)).await.expect("write b"));
    written.push(log.write(b, None).await.expect("tombstone b"));
    // Keyed records go to one partition per key.
    assert!(written[..20]
        .iter()
        .all(|d| d.partition == written[0].partition));
    assert_eq!(written[20].partition, written[21].partition);
    drop(log);

    let (_log, records) = OffsetsTopic::open(&config).await.expect("reopen");
    assert!(records
        .iter()
        .all(|r| !r.key.as_deref().is_some_and(is_marker_key)));
    let of = |key: &[u8]| -> Vec<Option<Vec<u8>>> {
        records
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .map(|r| r.value.clone())
            .collect()
    };
    let a_values = of(a);
    assert_eq!(a_values.len(), 20);
    assert_eq!(
        a_values.last().unwrap().as_deref(),
        Some(br#"{"lsn":19}"#.as_slice())
    );
    assert_eq!(of(b), vec![Some(br#"{"lsn":5}"#.to_vec()), None]);
    assert_eq!(records.len(), 22);

    // The topic has Connect's default partition count.
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    use rdkafka::consumer::Consumer as _;
    let metadata = consumer
        .fetch_metadata(Some("connect-offsets"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        metadata.topics()[0].partitions().len(),
        DEFAULT_PARTITIONS as usize
    );
}
