//! The Kafka sink: an idempotent rdkafka producer whose delivery reports say what is durable.
//!
//! What it does: owns one librdkafka producer (the crate's bundled librdkafka) configured for
//! no loss and no reordering — `enable.idempotence=true`, `acks=all` — and Java-compatible key
//! partitioning (`partitioner=murmur2_random`, what the Java client's default partitioner does
//! for keyed records). [`KafkaSink::send`] enqueues a record and returns a [`Delivery`] future
//! that resolves when the broker has acknowledged it (durable) or librdkafka gave up (an error).
//!
//! How librdkafka works underneath: `send` only puts the record in librdkafka's in-memory
//! queue; a background thread batches and sends it; the delivery report arrives later on that
//! thread. When the queue is full, librdkafka refuses the record (`QueueFull`): `send` then
//! waits briefly and retries, which is this sink's backpressure. With idempotence, records to
//! one partition are written in the order they were enqueued, so "record N is acknowledged"
//! and "every earlier record to that partition is acknowledged" coincide; across partitions the
//! caller must wait for each report (the worker's commit coordinator does).
//!
//! Defaults chosen by measurement (`DEFAULT_PRODUCER_SETTINGS`, BENCHMARKS.md on the `perf`
//! branch): `compression.type=lz4`, `linger.ms=20`, `queue.buffering.max.kbytes=65536`; any
//! `producer.*` override wins.
//!
//! Topics: with `topic.creation.*` settings ([`topics`]), each topic is created through
//! librdkafka's admin API before the first record goes to it; a topic that exists is left alone.
//!
//! What it does not do: encode envelopes, decide topic names, or store offsets.

pub mod offsets_topic;
pub mod topics;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode as AdminErrorCode;
pub use topics::{TopicCreation, TopicCreationError};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// librdkafka settings pgseam always sets, and why.
const FIXED_PRODUCER_SETTINGS: &[(&str, &str)] = &[
    // No duplicates from internal retries, no reordering, no loss on leader change.
    ("enable.idempotence", "true"),
    ("acks", "all"),
    // The Java client's partitioner for keyed records: murmur2 of the key bytes. Keys land in
    // the same partitions as under Debezium; keyless records are spread at random.
    ("partitioner", "murmur2_random"),
];

/// librdkafka settings pgseam chooses by measurement; a `producer.*` override wins.
const DEFAULT_PRODUCER_SETTINGS: &[(&str, &str)] = &[
    // Fewer bytes to copy into requests and onto the socket: on a 1M-row snapshot pgseam's
    // CPU per record fell by about a sixth and the broker's by three quarters. Consumers
    // decompress transparently (every Kafka client supports lz4).
    ("compression.type", "lz4"),
    // Waits up to 20 ms (librdkafka: 5 ms) to fill batches: draining a streaming backlog of
    // single-row transactions, librdkafka otherwise sends many small ProduceRequests. Adds at
    // most 20 ms to the commit → acknowledgement latency (goal: p99 ≤ 50 ms).
    ("linger.ms", "20"),
    // Record bytes librdkafka may hold (its default is 1 GiB): bounds the sink's memory for
    // large (TOAST) rows too, and still holds dozens of full 1 MB batches.
    ("queue.buffering.max.kbytes", "65536"),
];

/// How long `send` waits before retrying when librdkafka's queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid producer configuration")]
    Config(#[source] KafkaError),
    #[error("cannot reach the Kafka brokers at {bootstrap_servers}")]
    Unreachable {
        bootstrap_servers: String,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka did not accept a record for topic {topic}")]
    Delivery {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("the producer was closed before a record's delivery report arrived")]
    Canceled,
    /// `topic` names the topic and the settings it was to be created with.
    #[error("cannot create topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// Producer settings: the worker's `bootstrap.servers` and `producer.*` overrides (without the
/// prefix), passed through to librdkafka.
#[derive(Clone, Debug, Default)]
pub struct KafkaSinkConfig {
    pub bootstrap_servers: String,
    pub overrides: BTreeMap<String, String>,
    /// `topic.creation.*`; `None`: topics are not created by pgseam.
    pub topic_creation: Option<TopicCreation>,
}

/// How long a CreateTopics request may take.
const CREATE_TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// A record to produce. `value: None` is a tombstone; `key: None` a keyless record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveredAt {
    pub partition: i32,
    pub offset: i64,
}

/// A pending delivery report.
pub struct Delivery {
    topic: String,
    inner: rdkafka::producer::DeliveryFuture,
}

impl Delivery {
    /// Waits for the broker's acknowledgement.
    pub async fn wait(self) -> Result<DeliveredAt, SinkError> {
        match self.inner.await {
            Ok(Ok(delivery)) => Ok(DeliveredAt {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Ok(Err((source, _))) => Err(SinkError::Delivery {
                topic: self.topic,
                source,
            }),
            Err(_) => Err(SinkError::Canceled),
        }
    }
}

pub struct KafkaSink {
    producer: FutureProducer,
    bootstrap_servers: String,
    /// The admin client and rules when topic creation is on.
    creation: Option<(AdminClient<DefaultClientContext>, TopicCreation)>,
    /// Topics already created or found to exist.
    known_topics: Mutex<HashSet<String>>,
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> Result<Self, SinkError> {
        let client = client_config(config);
        let producer: FutureProducer = client.create().map_err(SinkError::Config)?;
        let creation = match &config.topic_creation {
            Some(rules) => {
                // The admin client shares the producer's connection settings (security
                // included), as Connect's topic admin uses the worker's client settings.
                let admin: AdminClient<DefaultClientContext> =
                    client.create().map_err(SinkError::Config)?;
                Some((admin, rules.clone()))
            }
            None => None,
        };
        Ok(KafkaSink {
            producer,
            bootstrap_servers: config.bootstrap_servers.clone(),
            creation,
            known_topics: Mutex::new(HashSet::new()),
        })
    }

    /// The underlying librdkafka producer (metadata queries, tests).
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Asks a broker for cluster metadata, so that a wrong address fails at start with a clear
    /// message rather than as delivery timeouts later.
    pub async fn check_reachable(&self, timeout: Duration) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let result = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|_| ())
        })
        .await
        .map_err(|_| SinkError::Canceled)?;
        result.map_err(|source| SinkError::Unreachable {
            bootstrap_servers: self.bootstrap_servers.clone(),
            source,
        })
    }

    /// Creates `topic` with its group's settings unless it was seen before or exists.
    async fn ensure_topic(&self, topic: &str) -> Result<(), SinkError> {
        let Some((admin, rules)) = &self.creation else {
            return Ok(());
        };
        if self
            .known_topics
            .lock()
            .map(|known| known.contains(topic))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let group = rules.group_for(topic);
        let replication = TopicReplication::Fixed(group.replication_factor);
        let mut new_topic = NewTopic::new(topic, group.partitions, replication);
        for (key, value) in &group.configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(CREATE_TOPIC_TIMEOUT));
        let create_error = |source| SinkError::CreateTopic {
            topic: format!(
                "{topic} (topic.creation group {}: {} partitions, replication factor {})",
                group.name, group.partitions, group.replication_factor
            ),
            source,
        };
        let results = admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(create_error)?;
        for result in results {
            match result {
                Ok(_) => {
                    tracing::info!(topic, group = %group.name, partitions = group.partitions,
                        replication_factor = group.replication_factor, "created topic");
                }
                Err((_, AdminErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(topic, "topic exists; left as it is");
                }
                Err((_, code)) => return Err(create_error(KafkaError::AdminOp(code))),
            }
        }
        if let Ok(mut known) = self.known_topics.lock() {
            known.insert(topic.to_owned());
        }
        Ok(())
    }

    /// Enqueues a record. Waits (asynchronously) while librdkafka's queue is full. The first
    /// record to a topic creates it when topic creation is configured.
    pub async fn send(&self, record: &OutgoingRecord) -> Result<Delivery, SinkError> {
        self.ensure_topic(&record.topic).await?;
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_slice()),
                });
            }
            let mut future_record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&record.topic).headers(headers);
            if let Some(key) = &record.key {
                future_record = future_record.key(key.as_slice());
            }
            if let Some(value) = &record.value {
                future_record = future_record.payload(value.as_slice());
            }
            match self.producer.send_result(future_record) {
                Ok(inner) => {
                    return Ok(Delivery {
                        topic: record.topic.clone(),
                        inner,
                    })
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((source, _)) => {
                    return Err(SinkError::Delivery {
                        topic: record.topic.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Waits until every enqueued record has a delivery report, or the timeout passes.
    pub async fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let bootstrap_servers = self.bootstrap_servers.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|_| SinkError::Canceled)?
            .map_err(|source| SinkError::Unreachable {
                bootstrap_servers,
                source,
            })
    }
}

/// librdkafka's configuration: pgseam's defaults, its fixed settings, then the overrides.
fn client_config(config: &KafkaSinkConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    // Keep delivery reports small: the worker only needs partition and offset.
    client.set("delivery.report.only.error", "false");
    for (key, value) in &config.overrides {
        if let Some((_, fixed)) = FIXED_PRODUCER_SETTINGS.iter().find(|(k, _)| k == key) {
            if fixed != value {
                tracing::warn!(
                    setting = %key, value = %value, pgseam_default = %fixed,
                    "producer override changes a setting pgseam relies on for ordering, \
                     no-loss or Debezium-compatible partitioning"
                );
            }
        }
    }
    for (key, value) in DEFAULT_PRODUCER_SETTINGS {
        client.set(*key, *value);
    }
    for (key, value) in FIXED_PRODUCER_SETTINGS {
        client.set(*key, *value);
    }
    for (key, value) in &config.overrides {
        client.set(key, value);
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_defaults_apply_and_overrides_win() {
        let mut config = KafkaSinkConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            ..KafkaSinkConfig::default()
        };
        let client = client_config(&config);
        assert_eq!(client.get("compression.type"), Some("lz4"));
        assert_eq!(client.get("linger.ms"), Some("20"));
        assert_eq!(client.get("queue.buffering.max.kbytes"), Some("65536"));
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        config.overrides = [
            ("compression.type".to_owned(), "none".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
        ]
        .into();
        let client = client_config(&config);
        assert_eq!(client.get("compression.type"), Some("none"));
        assert_eq!(client.get("linger.ms"), Some("5"));
    }
}
