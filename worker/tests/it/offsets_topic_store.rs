//! The topic-backed offset store against the real broker, below the pipeline: offsets survive a
//! reopen, a reset writes a tombstone that the next reader honours, other connectors' records
//! are left alone, and a key spelled differently (same connector and partition, other JSON
//! whitespace) is found and rewritten under its own spelling.

use std::time::Duration;

use pgseam::config::WorkerConfig;
use pgseam::offsets::{offset_key, ConnectorOffset, OffsetError, OffsetStore, StreamOffset};
use pgseam_model::Lsn;
use pgseam_sink_kafka::offsets_topic::{OffsetsTopic, OffsetsTopicConfig};
use pgseam_testkit::Broker;

const TOPIC: &str = "offsets";

fn worker(broker: &Broker, dir: &std::path::Path) -> WorkerConfig {
    WorkerConfig::from_map(
        [
            ("bootstrap.servers", broker.bootstrap_servers()),
            (
                "offset.storage.file.filename",
                dir.join("unused.dat").display().to_string(),
            ),
            ("offset.storage.topic", TOPIC.to_owned()),
            ("offset.storage.partitions", "4".to_owned()),
        ],
        "test",
    )
    .expect("worker config")
}

fn streaming(lsn: u64) -> ConnectorOffset {
    ConnectorOffset::Streaming(StreamOffset::after_commit(Lsn(lsn), 7, 9))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_reset_and_reopen() {
    let broker = Broker::start().expect("broker");
    let dir = tempfile::tempdir().unwrap();
    let worker = worker(&broker, dir.path());

    // Another tool wrote this connector's key with spaces, and a second connector's offset.
    let (log, _) = OffsetsTopic::open(&OffsetsTopicConfig {
        bootstrap_servers: broker.bootstrap_servers(),
        client_overrides: Default::default(),
        topic: TOPIC.to_owned(),
        partitions: 4,
        replication_factor: -1,
        read_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap();
    let spaced = br#"[ "spaced", { "server": "p" } ]"#;
    log.write(spaced, Some(br#"{"lsn":100}"#)).await.unwrap();
    log.write(br#"["other",{"server":"q"}]"#, Some(br#"{"lsn":5}"#))
        .await
        .unwrap();
    drop(log);

    let store = OffsetStore::open(&worker).await.expect("open");
    assert_eq!(store.location(), "offsets topic offsets");
    let (a, spaced_key, other) = (
        offset_key("a", "p"),
        offset_key("spaced", "p"),
        offset_key("other", "q"),
    );
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert_eq!(
        store
            .get(&spaced_key)
            .await
            .unwrap()
            .and_then(|o| o.resume_lsn()),
        Some(Lsn(100))
    );
    store.put(&a, &streaming(16)).await.unwrap();
    store.put(&a, &streaming(32)).await.unwrap();
    store.put(&spaced_key, &streaming(200)).await.unwrap();
    drop(store);

    let store = OffsetStore::open(&worker).await.expect("reopen");
    assert_eq!(store.get(&a).await.unwrap(), Some(streaming(32)));
    assert_eq!(store.get(&spaced_key).await.unwrap(), Some(streaming(200)));
    let entries = store.entries().await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(
        entries.iter().any(|(k, _)| k.as_bytes() == spaced),
        "the spaced key was not rewritten under its own spelling: {entries:?}"
    );
    assert!(store.remove(&a).await.unwrap());
    assert!(!store.remove(&a).await.unwrap(), "nothing left to reset");
    drop(store);

    let store = OffsetStore::open(&worker)
        .await
        .expect("reopen after reset");
    assert_eq!(store.get(&a).await.unwrap(), None, "the reset was lost");
    assert_eq!(
        store.get_json(&other).await,
        Some(serde_json::json!({"lsn": 5}))
    );
    // A corrupt value is an error naming the key and the topic.
    let (log, _) = OffsetsTopic::open(&OffsetsTopicConfig {
        bootstrap_servers: broker.bootstrap_servers(),
        client_overrides: Default::default(),
        topic: TOPIC.to_owned(),
        partitions: 4,
        replication_factor: -1,
        read_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap();
    log.write(br#"["a",{"server":"p"}]"#, Some(b"[1]"))
        .await
        .unwrap();
    let store = OffsetStore::open(&worker).await.unwrap();
    let err = store.get(&a).await.unwrap_err();
    assert!(matches!(err, OffsetError::BadValue { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(r#"key ["a",{"server":"p"}]"#) && text.contains("offsets topic offsets"),
        "{text}"
    );
}
