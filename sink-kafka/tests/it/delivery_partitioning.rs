//! Keys land in the partition the Java producer would choose, and topics are created with
//! Connect's `topic.creation.*` settings.
//!
//! A 6-partition topic is created through the sink's topic creation (rdkafka's admin API), 1000
//! keys shaped as the JSON converter writes them (with and without schema, ASCII and not) are
//! produced through the sink, and the partitions the broker acknowledged are compared with
//! `BuiltInPartitioner.partitionForKey` from the reference harness's kafka-clients jar (a small
//! Java program compiled here). Needs javac and `$DBZPEER_HOME/libs` (default .dbzpeer in the repo);
//! `PGSEAM_SKIP_JAVA_TESTS=1` skips the Java comparison.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgseam_sink_kafka::{Delivered, KafkaSink, KafkaSinkConfig, OutgoingRecord, TopicCreation};
use pgseam_testkit::{Broker, JavaHarness};
use rdkafka::producer::Producer as _;

const PARTITIONS: i32 = 6;

fn keys() -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for i in 0..500i64 {
        keys.push(format!("{{\"id\":{}}}", i * 7919 - 100).into_bytes());
    }
    for i in 0..400 {
        keys.push(format!(
            "{{\"schema\":{{\"type\":\"struct\",\"fields\":[{{\"type\":\"int32\",\"optional\":false,\"field\":\"id\"}}],\"optional\":false,\"name\":\"dbz.public.t.Key\"}},\"payload\":{{\"id\":{i}}}}}"
        ).into_bytes());
    }
    for i in 0..100 {
        keys.push(format!("{{\"a\":\"schlüssel-{i}-ü€😀\",\"b\":{i}}}").into_bytes());
    }
    keys
}

fn java_partitions(keys: &[Vec<u8>]) -> Option<Vec<i32>> {
    let java = JavaHarness::find("kafka-clients-4.3.0.jar")?;
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/JavaPartitions.java");
    let mut java = java
        .compile(&source, dir.path(), "JavaPartitions")
        .command()
        .arg(PARTITIONS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run java");
    {
        let mut stdin = java.stdin.take().unwrap();
        for key in keys {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{hex}").unwrap();
        }
    }
    let output = java.wait_with_output().unwrap();
    assert!(output.status.success());
    Some(
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_where_the_java_producer_puts_them() {
    let broker = Broker::start().expect("start broker");
    let settings: BTreeMap<String, String> = [
        ("default.partitions", "3"),
        ("default.replication.factor", "-1"),
        ("groups", "six"),
        ("six.include", "parts\\..*"),
        ("six.partitions", &PARTITIONS.to_string()),
        ("six.cleanup.policy", "compact"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    // Partitions by sequence number, from the delivery reports.
    let delivered: Arc<Mutex<BTreeMap<u64, i32>>> = Arc::default();
    let hook = {
        let delivered = Arc::clone(&delivered);
        Box::new(move |d: &Delivered| {
            delivered.lock().unwrap().insert(d.seq, d.partition);
        })
    };
    let sink = KafkaSink::with_hook(
        &KafkaSinkConfig {
            bootstrap_servers: broker.bootstrap_servers(),
            overrides: [("compression.type".to_owned(), "lz4".to_owned())].into(),
            topic_creation: TopicCreation::from_properties(&settings).unwrap(),
            skip_oversized: false,
            memory_budget: None,
            transactional_id: None,
        },
        Some(hook),
    )
    .unwrap();
    let topic = "parts.public.t";
    let keys = keys();
    let mut seqs = Vec::new();
    for key in &keys {
        seqs.push(
            sink.send(&OutgoingRecord {
                topic: topic.into(),
                key: Some(key.clone()),
                value: Some(b"{}".to_vec()),
                headers: vec![("pgseam.seq".into(), b"0".to_vec())],
            })
            .await
            .unwrap(),
        );
    }
    assert_eq!(seqs, (0..keys.len() as u64).collect::<Vec<_>>());
    sink.wait(keys.len() as u64, false).await;
    let acks = sink.acks();
    assert!(acks.failure.is_none(), "{:?}", acks.failure);
    assert_eq!(
        acks.watermark,
        keys.len() as u64,
        "every record acknowledged"
    );
    let ours: Vec<i32> = {
        let delivered = delivered.lock().unwrap();
        seqs.iter().map(|seq| delivered[seq]).collect()
    };
    // The topic was created by the group's settings before the first record.
    let metadata = sink
        .producer()
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), PARTITIONS as usize);
    let used: std::collections::BTreeSet<i32> = ours.iter().copied().collect();
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "1000 keys use all partitions"
    );

    // The default group creates a topic outside the named group with 3 partitions.
    let seq = sink
        .send(&OutgoingRecord {
            topic: "other.public.t".into(),
            key: Some(b"{\"id\":1}".to_vec()),
            value: None,
            headers: Vec::new(),
        })
        .await
        .unwrap();
    sink.wait(seq + 1, false).await;
    assert_eq!(sink.acks().watermark, seq + 1);
    let metadata = sink
        .producer()
        .client()
        .fetch_metadata(Some("other.public.t"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let Some(java) = java_partitions(&keys) else {
        return;
    };
    assert_eq!(java.len(), keys.len());
    let differing: Vec<_> = keys
        .iter()
        .zip(ours.iter().zip(&java))
        .filter(|(_, (a, b))| a != b)
        .map(|(k, (a, b))| (String::from_utf8_lossy(k).into_owned(), *a, *b))
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "pgseam vs Java partitions differ: {differing:?}"
    );
}
