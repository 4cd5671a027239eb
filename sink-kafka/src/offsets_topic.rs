//! Kafka Connect's offsets topic (`offset.storage.topic`) as a log of key/value records: create
//! it, read it to its end, append to it. The meaning of keys and values (Connect's
//! `["<connector>",{…partition}]` keys, Debezium's offset values) belongs to the worker; this
//! module moves bytes.
//!
//! # What Connect does, and what this module does the same way
//!
//! Connect's `KafkaOffsetBackingStore` (distributed mode) keeps source offsets in a compacted
//! topic. It creates the topic if missing (`cleanup.policy=compact`,
//! `offset.storage.partitions`, default 25, `offset.storage.replication.factor`), writes each
//! offset as one record whose key and value are the JSON bytes of the partition key and offset,
//! with a producer using the default partitioner (murmur2 of the key bytes, modulo the partition
//! count) and `acks=all`; a null value (tombstone) removes an offset. At start it reads the
//! whole topic from the beginning; for each key the last record read wins. This module writes
//! with librdkafka's `murmur2_random` partitioner (the Java default for keyed records), an
//! idempotent producer and `acks=all`, so a key lands in the partition Connect would choose, and
//! [`OffsetsTopic::write`] returns only after the broker acknowledged the record.
//!
//! # Reading to the end without ListOffsets
//!
//! Connect reads "to the end" by asking the broker for each partition's end offset (ListOffsets)
//! and consuming up to it. Some Kafka-protocol brokers (tansu, used in the tests here) report a
//! wrong high watermark, so this module does not rely on it: it first appends a *marker* record
//! to every partition, waits for their acknowledgement, then consumes every partition from the
//! beginning until it has read its own marker back in each. Everything written before the
//! marker in that partition is then known to have been read.
//!
//! A marker is a tombstone (null value) whose key is `["__pgseam.marker",{"id":"<uuid>"}]`, a
//! fresh UUID per open. It is harmless to Connect and Debezium readers: Connect's reader stores
//! every record in its key → value map (nobody looks up a marker key), and its partition
//! tracking (`OffsetUtils.processPartitionKey`) sees a connector named `__pgseam.marker` whose
//! partition was removed (null value), i.e. nothing. Compaction eventually drops the tombstones
//! (after the topic's `delete.retention.ms`). Markers are never returned to the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode as AdminErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::DeliveredAt;

/// Connect's `offset.storage.partitions` default.
pub const DEFAULT_PARTITIONS: i32 = 25;

/// The connector name in marker keys.
pub const MARKER_CONNECTOR: &str = "__pgseam.marker";

/// How long a CreateTopics or DescribeConfigs request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the offsets topic and its clients.
#[derive(Clone, Debug)]
pub struct OffsetsTopicConfig {
    pub bootstrap_servers: String,
    /// librdkafka settings for the topic's producer, consumer and admin client (security…).
    pub client_overrides: BTreeMap<String, String>,
    pub topic: String,
    /// Partitions when the topic is created; `-1`: the broker's default.
    pub partitions: i32,
    /// Replication factor when the topic is created; `-1`: the broker's default.
    pub replication_factor: i32,
    /// How long reading to the markers may take before giving up.
    pub read_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetsTopicError {
    #[error("invalid client configuration for offsets topic {topic}")]
    Config {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "cannot create offsets topic {topic} ({partitions} partitions, replication factor \
         {replication_factor}, cleanup.policy=compact)"
    )]
    Create {
        topic: String,
        partitions: i32,
        replication_factor: i32,
        #[source]
        source: KafkaError,
    },
    #[error(
        "offsets topic {topic} has cleanup.policy={policy}; it must be `compact` (Kafka Connect \
         refuses such a topic too: old offsets would be deleted)"
    )]
    NotCompacted { topic: String, policy: String },
    /// `at`: the topic and the bootstrap servers asked.
    #[error("cannot read the metadata of offsets topic {at}")]
    Metadata {
        at: String,
        #[source]
        source: KafkaError,
    },
    #[error("offsets topic {topic}: {reason}")]
    Layout { topic: String, reason: String },
    #[error("Kafka did not acknowledge a record to offsets topic {topic}")]
    Write {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot read offsets topic {topic}")]
    Read {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "did not reach the end of offsets topic {topic} within {timeout:?}: the markers written \
         to partitions {missing:?} were not read back"
    )]
    ReadTimeout {
        topic: String,
        timeout: Duration,
        missing: Vec<i32>,
    },
    #[error("the producer of offsets topic {topic} was closed before an acknowledgement")]
    Canceled { topic: String },
}

/// One record read from the topic (markers excluded), in the order read within its partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// The marker key for one read (see the module docs).
pub fn marker_key(id: &str) -> Vec<u8> {
    format!("[\"{MARKER_CONNECTOR}\",{{\"id\":\"{id}\"}}]").into_bytes()
}

/// Whether `key` is a marker key (anyone's).
pub fn is_marker_key(key: &[u8]) -> bool {
    key.starts_with(format!("[\"{MARKER_CONNECTOR}\",").as_bytes())
}

/// An open offsets topic: where to append, and how to read it again.
pub struct OffsetsTopic {
    producer: FutureProducer,
    topic: String,
    /// The clients' settings (for reading again).
    client: ClientConfig,
    partitions: i32,
    read_timeout: Duration,
}

impl OffsetsTopic {
    /// Creates the topic if missing, reads it to its end (see the module docs) and returns the
    /// records read, markers excluded.
    pub async fn open(
        config: &OffsetsTopicConfig,
    ) -> Result<(OffsetsTopic, Vec<LogRecord>), OffsetsTopicError> {
        let topic = config.topic.clone();
        let config_error = |source| OffsetsTopicError::Config {
            topic: topic.clone(),
            source,
        };
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &config.bootstrap_servers);
        for (key, value) in &config.client_overrides {
            client.set(key, value);
        }
        let admin: AdminClient<DefaultClientContext> = client.create().map_err(config_error)?;
        create_compacted(&admin, &client, config).await?;

        let mut producer_config = client.clone();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random");
        let producer: FutureProducer = producer_config.create().map_err(config_error)?;
        let partitions = partition_count(&producer, config).await?;
        let this = OffsetsTopic {
            producer,
            topic: topic.clone(),
            client,
            partitions,
            read_timeout: config.read_timeout,
        };
        let records = this.read_all().await?;
        Ok((this, records))
    }

    /// Reads the topic from the beginning to its end again (markers first, see the module
    /// docs), as a `read_committed` consumer: records of open or aborted transactions are not
    /// returned (by a broker that implements transactions). Exactly-once delivery calls this
    /// after fencing older producers, so that the offset it resumes from is the committed one.
    pub async fn read_all(&self) -> Result<Vec<LogRecord>, OffsetsTopicError> {
        let partitions = self.partitions;
        let id = uuid::Uuid::new_v4().to_string();
        let marker = marker_key(&id);
        // Enqueued together, acknowledged each.
        futures_util::future::try_join_all(
            (0..partitions).map(|partition| self.append(&marker, None, Some(partition))),
        )
        .await?;
        tracing::debug!(topic = %self.topic, partitions, marker = %id, "offsets topic markers written; reading to them");
        let mut consumer_config = self.client.clone();
        consumer_config
            .set("group.id", format!("pgseam-offsets-reader-{id}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        if consumer_config.get("isolation.level").is_none() {
            // Connect's offsets consumers read committed (`Worker.*OffsetsConsumerConfigs`);
            // librdkafka's default too, set here so that no override of the client
            // settings' defaults changes it silently.
            consumer_config.set("isolation.level", "read_committed");
        }
        let consumer: BaseConsumer =
            consumer_config
                .create()
                .map_err(|source| OffsetsTopicError::Config {
                    topic: self.topic.clone(),
                    source,
                })?;
        let topic = self.topic.clone();
        let timeout = self.read_timeout;
        let records = tokio::task::spawn_blocking(move || {
            read_to_markers(&consumer, &topic, partitions, &marker, timeout)
        })
        .await
        .map_err(|_| OffsetsTopicError::Canceled {
            topic: self.topic.clone(),
        })??;
        tracing::info!(topic = %self.topic, partitions, records = records.len(), "read the offsets topic to its end");
        Ok(records)
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends a record (`value: None`: a tombstone) partitioned by its key, and returns once
    /// the broker acknowledged it (`acks=all`).
    pub async fn write(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<DeliveredAt, OffsetsTopicError> {
        self.append(key, value, None).await
    }

    async fn append(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        partition: Option<i32>,
    ) -> Result<DeliveredAt, OffsetsTopicError> {
        let write_error = |source| OffsetsTopicError::Write {
            topic: self.topic.clone(),
            source,
        };
        let delivery = loop {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((source, _)) => return Err(write_error(source)),
            }
        };
        match delivery.await {
            Ok(Ok(delivered)) => Ok(DeliveredAt {
                partition: delivered.partition,
                offset: delivered.offset,
            }),
            Ok(Err((source, _))) => Err(write_error(source)),
            Err(_) => Err(OffsetsTopicError::Canceled {
                topic: self.topic.clone(),
            }),
        }
    }
}

/// Creates the topic compacted if it does not exist; checks an existing topic is compacted
/// when the broker says (Connect's `verifyTopicCleanupPolicyOnlyCompact`).
async fn create_compacted(
    admin: &AdminClient<DefaultClientContext>,
    client: &ClientConfig,
    config: &OffsetsTopicConfig,
) -> Result<(), OffsetsTopicError> {
    let topic = &config.topic;
    let create_error = |source| OffsetsTopicError::Create {
        topic: topic.clone(),
        partitions: config.partitions,
        replication_factor: config.replication_factor,
        source,
    };
    let new_topic = NewTopic::new(
        topic,
        config.partitions,
        TopicReplication::Fixed(config.replication_factor),
    )
    .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let created = match admin.create_topics([&new_topic], &options).await {
        Ok(results) => results
            .into_iter()
            .map(|result| match result {
                Ok(_) => Ok(true),
                Err((_, AdminErrorCode::TopicAlreadyExists)) => Ok(false),
                Err((_, code)) => Err(KafkaError::AdminOp(code)),
            })
            .collect::<Result<Vec<bool>, KafkaError>>()
            .map(|r| r.contains(&true)),
        Err(err) => Err(err),
    };
    match created {
        Ok(true) => {
            tracing::info!(topic = %topic, partitions = config.partitions,
                replication_factor = config.replication_factor, "created the offsets topic (cleanup.policy=compact)");
            return Ok(());
        }
        Ok(false) => {}
        Err(source) => {
            // A broker that refuses CreateTopics (no permission, or no such API) while the
            // topic exists: use it as it is, as Connect does when it cannot create a topic
            // that is there.
            if !topic_exists(client, topic).await {
                return Err(create_error(source));
            }
            tracing::warn!(topic = %topic, error = %source, "cannot create the offsets topic, but it exists; using it");
            return Ok(());
        }
    }
    // It existed: is it compacted? A broker that cannot say is trusted, with a warning.
    let resource = ResourceSpecifier::Topic(topic);
    match admin.describe_configs([&resource], &options).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(described) => {
                        if let Some(policy) = described
                            .get("cleanup.policy")
                            .and_then(|e| e.value.clone())
                        {
                            let only_compact =
                                policy.split(',').map(str::trim).all(|p| p == "compact");
                            if !only_compact {
                                return Err(OffsetsTopicError::NotCompacted {
                                    topic: topic.clone(),
                                    policy,
                                });
                            }
                        }
                    }
                    Err(code) => {
                        tracing::warn!(topic = %topic, error = %code, "cannot check that the offsets topic is compacted");
                    }
                }
            }
        }
        Err(err) => {
            tracing::warn!(topic = %topic, error = %err, "cannot check that the offsets topic is compacted");
        }
    }
    Ok(())
}

/// Whether the broker's metadata lists `topic` with partitions.
async fn topic_exists(client: &ClientConfig, topic: &str) -> bool {
    let client = client.clone();
    let name = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let Ok(consumer) = client.create::<BaseConsumer>() else {
            return false;
        };
        consumer
            .fetch_metadata(Some(&name), METADATA_TIMEOUT)
            .is_ok_and(|m| {
                m.topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            })
    })
    .await
    .unwrap_or(false)
}

/// The topic's partition count, waiting briefly for a just-created topic to appear.
async fn partition_count(
    producer: &FutureProducer,
    config: &OffsetsTopicConfig,
) -> Result<i32, OffsetsTopicError> {
    let started = Instant::now();
    loop {
        let client = producer.clone();
        let topic = config.topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
        })
        .await
        .map_err(|_| OffsetsTopicError::Canceled {
            topic: config.topic.clone(),
        })?
        .map_err(|source| OffsetsTopicError::Metadata {
            at: format!("{} from {}", config.topic, config.bootstrap_servers),
            source,
        })?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        if count > 0 {
            return i32::try_from(count).map_err(|_| OffsetsTopicError::Layout {
                topic: config.topic.clone(),
                reason: format!("{count} partitions"),
            });
        }
        if started.elapsed() > METADATA_TIMEOUT {
            return Err(OffsetsTopicError::Layout {
                topic: config.topic.clone(),
                reason: format!("the broker reports no partitions after {METADATA_TIMEOUT:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Consumes every partition from the beginning until each has returned `marker`.
fn read_to_markers(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    marker: &[u8],
    timeout: Duration,
) -> Result<Vec<LogRecord>, OffsetsTopicError> {
    let read_error = |source| OffsetsTopicError::Read {
        topic: topic.to_owned(),
        source,
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(read_error)?;
    }
    consumer.assign(&assignment).map_err(read_error)?;
    let mut missing: BTreeSet<i32> = (0..partitions).collect();
    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    while !missing.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            return Err(OffsetsTopicError::ReadTimeout {
                topic: topic.to_owned(),
                timeout,
                missing: missing.into_iter().collect(),
            });
        }
        let Some(polled) = consumer.poll((deadline - now).min(Duration::from_millis(500))) else {
            continue;
        };
        let message = polled.map_err(read_error)?;
        let partition = message.partition();
        // Past this partition's marker: another writer's later records; the end is reached.
        if !missing.contains(&partition) {
            continue;
        }
        let key = message.key();
        if key == Some(marker) {
            missing.remove(&partition);
            consumer
                .pause(&{
                    let mut done = TopicPartitionList::new();
                    done.add_partition(topic, partition);
                    done
                })
                .map_err(read_error)?;
            continue;
        }
        if key.is_some_and(is_marker_key) {
            continue;
        }
        records.push(LogRecord {
            partition,
            offset: message.offset(),
            key: key.map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_keys_are_connect_partition_keys() {
        let key = marker_key("0f9c");
        assert_eq!(key, br#"["__pgseam.marker",{"id":"0f9c"}]"#);
        assert!(is_marker_key(&key));
        assert!(!is_marker_key(br#"["inventory",{"server":"dbz"}]"#));
    }
}
