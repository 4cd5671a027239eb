//! A failed delivery stops the acknowledgement watermark in front of the failed record, is
//! kept, wakes the waiter, and makes every later `send` fail: nothing after it can ever be
//! reported durable. No broker: nothing listens on the bootstrap address, so every record
//! times out in librdkafka (`message.timeout.ms`) and its delivery report is an error.

use std::time::Duration;

use pgseam_sink_kafka::{KafkaSink, KafkaSinkConfig, OutgoingRecord, SinkError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_stops_the_watermark_and_later_sends() {
    let sink = KafkaSink::new(&KafkaSinkConfig {
        // A port nothing listens on (the discard port, closed on test machines).
        bootstrap_servers: "127.0.0.1:9".into(),
        overrides: [
            ("message.timeout.ms".to_owned(), "300".to_owned()),
            ("linger.ms".to_owned(), "0".to_owned()),
        ]
        .into(),
        topic_creation: None,
        skip_oversized: false,
        memory_budget: None,
        transactional_id: None,
    })
    .unwrap();
    let record = OutgoingRecord {
        topic: "t".into(),
        key: Some(b"k".to_vec()),
        value: Some(b"v".to_vec()),
        headers: vec![("h".into(), b"1".to_vec())],
    };
    for expected in 0..3 {
        assert_eq!(sink.send(&record).await.unwrap(), expected);
    }
    // Waits for a watermark that can never be reached: the failure wakes it.
    tokio::time::timeout(Duration::from_secs(30), sink.wait(3, false))
        .await
        .expect("the failure wakes the waiter");
    // Settled at once: nothing before the failed record is outstanding.
    tokio::time::timeout(Duration::from_secs(1), sink.wait_settled())
        .await
        .expect("settled after the failure");
    let acks = sink.acks();
    assert_eq!(acks.watermark, 0, "nothing acknowledged");
    assert_eq!(acks.next, 3);
    let failure = acks.failure.expect("the failure is kept");
    assert_eq!(
        (failure.seq, failure.topic()),
        (0, "t"),
        "the lowest failed record"
    );
    match sink.send(&record).await {
        Err(SinkError::Delivery { topic, .. }) => assert_eq!(topic, "t"),
        other => panic!("a send after a failure must fail, got {other:?}"),
    }
}
