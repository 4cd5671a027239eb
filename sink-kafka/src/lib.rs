//! The Kafka sink: an idempotent rdkafka producer whose delivery reports say what is durable.
//!
//! What it does: owns one librdkafka producer (the crate's bundled librdkafka) configured for
//! no loss and no reordering — `enable.idempotence=true`, `acks=all` — and Java-compatible key
//! partitioning (`partitioner=murmur2_random`, what the Java client's default partitioner does
//! for keyed records). [`KafkaSink::send`] enqueues a record and returns its **sequence
//! number** (0, 1, 2, … in enqueue order); [`KafkaSink::acks`] tells how far the broker has
//! acknowledged: the *watermark*, below which every record is durable ([`acks`]).
//!
//! How librdkafka works underneath: `send` only puts the record in librdkafka's in-memory
//! queue; a background thread batches and sends it; the delivery report arrives later and is
//! served by the producer's polling thread (rdkafka's `ThreadedProducer`), which calls
//! [`AckContext::delivery`] with the sequence number the record carried as its opaque. No
//! future, channel or allocation per record: the report sets one bit in the [`AckWindow`] and
//! wakes the single waiter (the worker's commit coordinator) only when something it waits for
//! happened — the watermark reached the position it asked for, a delivery failed, or nothing
//! is outstanding any more. With idempotence, records to one partition are written in the
//! order they were enqueued; across partitions the reports come in any order, which the
//! watermark absorbs.
//!
//! Failures: a failed delivery never moves the watermark past the failed record, so nothing
//! sent after it is ever reported durable; the failure (the lowest failed sequence number, its
//! topic and librdkafka's error) is kept, every later `send` returns it, and the waiter is woken.
//!
//! Records too large: librdkafka refuses, when it is enqueued, a record over its
//! `message.max.bytes` (key, value and headers plus a small overhead; default 1000000), and a
//! broker refuses a batch over the topic's `max.message.bytes` (`MESSAGE_TOO_LARGE`, which
//! librdkafka reports for every record of the batch: it does not split batches as the Java
//! producer does). Either is a [`SinkError::TooLarge`] naming the topic, the key
//! ([`key_text`]; never the value), the size, the LSN and the setting to raise, and stops the
//! watermark like any failure. With [`KafkaSinkConfig::skip_oversized`]
//! (`errors.tolerance=all`) a record librdkafka refuses is skipped instead: logged, counted
//! ([`KafkaSink::skipped`]) and settled as acknowledged, so the watermark passes it. A batch
//! the broker refuses is never skipped, since records that fit would be dropped with it.
//!
//! Backpressure and memory: one budget ([`KafkaSinkConfig::memory_budget`],
//! `pgseam.memory.budget.bytes`, default 128 MiB) gives librdkafka's
//! `queue.buffering.max.kbytes` and `queue.buffering.max.messages` and pgseam's own in-flight
//! bound ([`budget`]). At most that many records are enqueued and not yet acknowledged
//! ([`KafkaSink::has_room`], [`KafkaSink::max_outstanding`]); `send` waits for the watermark
//! beyond that. When librdkafka's own queue is full it refuses the record (`QueueFull`): `send`
//! then waits briefly and retries. Memory stays bounded either way.
//!
//! Defaults chosen by measurement (`DEFAULT_PRODUCER_SETTINGS`, BENCHMARKS.md):
//! `compression.type=lz4`, `linger.ms=20`, and the queue limits of the default budget; any
//! `producer.*` override wins (with a warning when the queue limits then exceed the budget).
//!
//! Topics: with `topic.creation.*` settings ([`topics`]), each topic is created through
//! librdkafka's admin API before the first record goes to it; a topic that exists is left alone.
//!
//! Exactly-once ([`KafkaSinkConfig::transactional_id`], [`transactions`]): the same producer
//! with a `transactional.id`; [`KafkaSink::init_transactions`] fences older producers with the
//! same id, the first `send` after a commit or abort opens a transaction, and the caller ends
//! it with [`KafkaSink::commit_transaction`] or [`KafkaSink::abort_transaction`]. Fencing is
//! [`SinkError::Fenced`] wherever it shows (a call, an enqueue, a delivery report).
//!
//! What it does not do: encode envelopes, decide topic names, or store offsets.

pub mod acks;
pub mod budget;
pub mod offsets_topic;
pub mod topics;
pub mod transactions;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use acks::AckWindow;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode as AdminErrorCode;
pub use topics::{TopicCreation, TopicCreationError};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

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
    // `queue.buffering.max.kbytes` / `.messages` come from the memory budget (`budget`): its
    // default gives 64 MiB (librdkafka's default is 1 GiB), which bounds the sink's memory for
    // large (TOAST) rows too and still holds dozens of full 1 MB batches.
];

/// How long `send` waits before retrying when librdkafka's queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// What the producer settings give the sink itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SinkLimits {
    /// librdkafka's `message.max.bytes` in effect.
    message_max_bytes: u64,
    /// Records enqueued and not yet acknowledged, at most (from the budget, or a smaller
    /// `queue.buffering.max.messages` override). Bounds the replay after a crash and the
    /// tracking memory (per record a bit in the [`AckWindow`], a send time and an LSN).
    max_outstanding: u64,
}

#[derive(Clone, Debug, thiserror::Error)]
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
    /// A record over librdkafka's `message.max.bytes` (refused when enqueued), or in a batch
    /// the broker refused as too large (`MESSAGE_TOO_LARGE` in the delivery report).
    #[error("{0}")]
    TooLarge(Box<TooLargeRecord>),
    #[error("the producer was closed before a record's delivery report arrived")]
    Canceled,
    /// `topic` names the topic and the settings it was to be created with.
    #[error("cannot create topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    /// Another producer with the same `transactional.id` took over ([`transactions`]).
    #[error("{}", transactions::fenced_message(transactional_id))]
    Fenced {
        transactional_id: String,
        #[source]
        source: KafkaError,
    },
    /// A transactional call failed; `kind` says whether the transaction can be aborted, the
    /// call repeated, or the producer is lost.
    #[error(
        "Kafka transaction {operation} failed (transactional.id `{transactional_id}`, {kind:?})"
    )]
    Transaction {
        transactional_id: String,
        operation: &'static str,
        kind: transactions::TxnErrorKind,
        #[source]
        source: KafkaError,
    },
    #[error("the producer is not transactional (no transactional.id)")]
    NotTransactional,
}

/// Producer settings: the worker's `bootstrap.servers` and `producer.*` overrides (without the
/// prefix), passed through to librdkafka.
#[derive(Clone, Debug, Default)]
pub struct KafkaSinkConfig {
    pub bootstrap_servers: String,
    pub overrides: BTreeMap<String, String>,
    /// `topic.creation.*`; `None`: topics are not created by pgseam.
    pub topic_creation: Option<TopicCreation>,
    /// `pgseam.memory.budget.bytes`: what librdkafka's queue limits and the in-flight bound
    /// are derived from ([`budget`]); `None`: [`budget::DEFAULT_MEMORY_BUDGET`].
    pub memory_budget: Option<u64>,
    /// `errors.tolerance=all`: a record librdkafka refuses as larger than its
    /// `message.max.bytes` is skipped (logged, counted, treated as acknowledged) instead of
    /// stopping the sink. See "Records too large" in the module docs.
    pub skip_oversized: bool,
    /// Exactly-once delivery: the producer's `transactional.id` ([`transactions`]). `None`:
    /// the idempotent, non-transactional producer (at least once).
    pub transactional_id: Option<String>,
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

/// A record the broker acknowledged, as passed to a [`DeliveryHook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The sequence number `send` returned.
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    /// From `send` to the delivery report.
    pub latency: Duration,
}

/// Called on librdkafka's polling thread for every acknowledged record (metrics, tests). Keep
/// it short: delivery reports wait for it.
pub type DeliveryHook = Box<dyn Fn(&Delivered) + Send + Sync>;

/// How far the broker has acknowledged (see [`KafkaSink::acks`]).
#[derive(Clone, Debug)]
pub struct AckStatus {
    /// Every record with a lower sequence number is acknowledged.
    pub watermark: u64,
    /// The sequence number the next record will get (= records sent so far).
    pub next: u64,
    /// Records without a delivery report.
    pub unresolved: usize,
    /// The first failed delivery.
    pub failure: Option<DeliveryFailure>,
    /// Records skipped as too large under `errors.tolerance=all` (counted as acknowledged).
    pub skipped: u64,
}

/// A record too large for Kafka (see [`SinkError::TooLarge`]).
#[derive(Clone, Debug)]
pub struct TooLargeRecord {
    pub topic: String,
    /// The record's key as text (JSON keys as they are; other bytes in hex), truncated.
    pub key: String,
    /// Key, value and header bytes.
    pub size: usize,
    /// The change's LSN, when the caller gave it.
    pub lsn: Option<u64>,
    /// librdkafka's `message.max.bytes` in effect.
    pub limit: u64,
    /// The broker refused it (delivery report), rather than librdkafka at enqueue.
    pub by_broker: bool,
    /// librdkafka's error (not shown: its text says "Broker: …" even when librdkafka
    /// refused the record itself).
    pub kafka_error: KafkaError,
}

impl std::fmt::Display for TooLargeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&too_large_message(
            &self.topic,
            &self.key,
            self.size,
            self.lsn,
            self.limit,
            self.by_broker,
        ))
    }
}

/// The first (lowest-numbered) record whose delivery failed.
#[derive(Clone, Debug)]
pub struct DeliveryFailure {
    /// Its sequence number: the watermark never passes it.
    pub seq: u64,
    /// What went wrong, naming the topic ([`SinkError::Delivery`] or [`SinkError::TooLarge`]).
    pub error: SinkError,
}

impl DeliveryFailure {
    /// The topic of the failed record.
    pub fn topic(&self) -> &str {
        match &self.error {
            SinkError::Delivery { topic, .. } => topic,
            SinkError::TooLarge(record) => &record.topic,
            _ => "",
        }
    }
}

/// librdkafka's `message.max.bytes` default.
pub const LIBRDKAFKA_MESSAGE_MAX_BYTES: u64 = 1_000_000;

/// How much of a key an error message or log line shows.
const KEY_TEXT_MAX: usize = 512;

/// A record key for error messages and logs: UTF-8 (Debezium's JSON keys) as it is, other
/// bytes (Avro) in hex; cut at 512 bytes. Keys are primary-key values, which pgseam's
/// errors name; a record's value is never shown.
pub fn key_text(key: Option<&[u8]>) -> String {
    let Some(key) = key else {
        return "(none)".to_owned();
    };
    let mut text = match std::str::from_utf8(key) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let mut hex = String::from("0x");
            for byte in key.iter().take(KEY_TEXT_MAX / 2) {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex
        }
    };
    if text.len() > KEY_TEXT_MAX {
        let mut cut = KEY_TEXT_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An LSN in PostgreSQL's text form.
fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn as u32)
}

fn too_large_message(
    topic: &str,
    key: &str,
    size: usize,
    lsn: Option<u64>,
    limit: u64,
    by_broker: bool,
) -> String {
    let at = lsn.map_or(String::new(), |lsn| format!(", LSN {}", lsn_text(lsn)));
    if by_broker {
        format!(
            "Kafka refused a batch of records as too large (MESSAGE_TOO_LARGE): topic {topic}, \
             first refused record key {key} ({size} bytes of key, value and headers{at}). Raise \
             the topic's `max.message.bytes` (or the broker's `message.max.bytes`) to at least \
             librdkafka's `message.max.bytes` ({limit}), or lower `producer.message.max.bytes` \
             to the broker's limit so that pgseam catches such records before batching them; \
             then restart: nothing after this record was confirmed, it is sent again. \
             (`errors.tolerance=all` does not skip records the broker refuses: librdkafka fails \
             their whole batch, records that fit included.)"
        )
    } else {
        format!(
            "record too large for Kafka: topic {topic}, key {key}: {size} bytes of key, value \
             and headers{at} exceed librdkafka's `message.max.bytes` ({limit}). Raise \
             `producer.message.max.bytes` in the worker file (or \
             `producer.override.message.max.bytes` for this connector), and the topic's \
             `max.message.bytes` on the broker with it, then restart: nothing after this record \
             was confirmed, it is sent again. Or set `errors.tolerance=all` to skip and log such \
             records."
        )
    }
}

/// The state delivery reports update, shared by the sink and its producer's context.
struct Shared {
    state: Mutex<AckState>,
    /// Wakes the one waiter (`send` waiting for room, [`KafkaSink::wait`]); a permit is kept
    /// if it is not waiting yet, so no wake-up is lost.
    wake: tokio::sync::Notify,
    hook: Option<DeliveryHook>,
    epoch: Instant,
    /// `errors.tolerance=all`: skip records librdkafka refuses as too large.
    skip_oversized: bool,
    /// librdkafka's `message.max.bytes` in effect (for messages).
    message_max_bytes: u64,
    /// Records skipped as too large.
    skipped: std::sync::atomic::AtomicU64,
    /// The producer's `transactional.id` (fenced delivery reports name it).
    transactional_id: Option<String>,
}

struct AckState {
    window: AckWindow,
    failure: Option<DeliveryFailure>,
    /// Wake the waiter once the watermark reaches this.
    wake_at: u64,
    /// Records outstanding at most ([`SinkLimits::max_outstanding`]).
    max_outstanding: u64,
    /// Send time of each outstanding record (nanoseconds since `epoch`), by sequence modulo
    /// the window's capacity.
    sent_ns: Box<[u64]>,
    /// The LSN each outstanding record came from (0: not given), indexed like `sent_ns`.
    lsn: Box<[u64]>,
}

impl AckState {
    fn is_full(&self) -> bool {
        self.window.next() - self.window.watermark() >= self.max_outstanding
    }

    /// The watermark at which one more record fits (only meaningful while full).
    fn room_at(&self) -> u64 {
        (self.window.next() + 1).saturating_sub(self.max_outstanding)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, AckState> {
        // The state is updated under the lock by code that does not panic between related
        // updates; after a panic elsewhere, keep going with the state as it is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn report(&self, seq: u64, result: &DeliveryResult<'_>) {
        match result {
            Ok(message) => self.resolve(seq, Ok(Some((message.partition(), message.offset())))),
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                message,
            )) => {
                // The broker refused the batch this record was in. librdkafka fails the whole
                // batch (it does not split it as the Java producer does), so records that fit
                // fail too: never skipped, whatever errors.tolerance says.
                let header_bytes = message.headers().map_or(0, |headers| {
                    (0..headers.count())
                        .map(|i| {
                            let h = headers.get(i);
                            h.key.len() + h.value.map_or(0, <[u8]>::len)
                        })
                        .sum()
                });
                let lsn = {
                    let state = self.lock();
                    state.lsn[(seq & (state.window.capacity() - 1)) as usize]
                };
                let error = SinkError::TooLarge(Box::new(TooLargeRecord {
                    topic: message.topic().to_owned(),
                    key: key_text(message.key()),
                    size: message.key_len() + message.payload_len() + header_bytes,
                    lsn: (lsn != 0).then_some(lsn),
                    limit: self.message_max_bytes,
                    by_broker: true,
                    kafka_error: KafkaError::MessageProduction(
                        RDKafkaErrorCode::MessageSizeTooLarge,
                    ),
                }));
                self.resolve(seq, Err(error));
            }
            Err((error, message)) => {
                let error = match &self.transactional_id {
                    Some(id)
                        if transactions::classify(error, None)
                            == transactions::TxnErrorKind::Fenced =>
                    {
                        SinkError::Fenced {
                            transactional_id: id.clone(),
                            source: error.clone(),
                        }
                    }
                    _ => SinkError::Delivery {
                        topic: message.topic().to_owned(),
                        source: error.clone(),
                    },
                };
                self.resolve(seq, Err(error))
            }
        }
    }

    /// Settles record `seq`: acknowledged (`Ok(Some(where))`), skipped and counted as
    /// acknowledged (`Ok(None)`), or failed; wakes the waiter when it waits for this.
    fn resolve(&self, seq: u64, outcome: Result<Option<(i32, i64)>, SinkError>) {
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let mut wake;
        let mut delivered = None;
        {
            let mut state = self.lock();
            match outcome {
                Ok(at) => {
                    state.window.ack(seq);
                    if let (Some(_), Some((partition, offset))) = (&self.hook, at) {
                        let index = (seq & (state.window.capacity() - 1)) as usize;
                        delivered = Some(Delivered {
                            seq,
                            partition,
                            offset,
                            latency: Duration::from_nanos(
                                now_ns.saturating_sub(state.sent_ns[index]),
                            ),
                        });
                    }
                    wake = false;
                }
                Err(error) => {
                    state.window.fail(seq);
                    if state.failure.as_ref().is_none_or(|f| seq < f.seq) {
                        state.failure = Some(DeliveryFailure { seq, error });
                    }
                    wake = true;
                }
            }
            if state.window.watermark() >= state.wake_at {
                state.wake_at = u64::MAX;
                wake = true;
            }
            wake |= state.window.unresolved() == 0;
        }
        // The hook first: a waiter woken by this report sees its effects.
        if let (Some(hook), Some(delivered)) = (&self.hook, delivered) {
            hook(&delivered);
        }
        if wake {
            self.wake.notify_one();
        }
    }
}

/// The producer's context: routes delivery reports, by sequence number, into the window.
pub struct AckContext {
    shared: Arc<Shared>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    /// The record's sequence number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        self.shared.report(seq as u64, result);
    }
}

pub struct KafkaSink {
    producer: ThreadedProducer<AckContext>,
    shared: Arc<Shared>,
    bootstrap_servers: String,
    /// The admin client and rules when topic creation is on.
    creation: Option<(AdminClient<DefaultClientContext>, TopicCreation)>,
    /// Topics already created or found to exist.
    known_topics: Mutex<HashSet<String>>,
    /// The `transactional.id`, when the producer is transactional.
    transactional_id: Option<String>,
    /// A transaction is open (begun and neither committed nor aborted).
    in_transaction: std::sync::atomic::AtomicBool,
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> Result<Self, SinkError> {
        Self::with_hook(config, None)
    }

    /// [`KafkaSink::new`] with a hook called for every acknowledged record.
    pub fn with_hook(
        config: &KafkaSinkConfig,
        hook: Option<DeliveryHook>,
    ) -> Result<Self, SinkError> {
        let (client, limits) = client_config(config);
        let SinkLimits {
            message_max_bytes,
            max_outstanding,
        } = limits;
        let window = AckWindow::new(max_outstanding as usize);
        let shared = Arc::new(Shared {
            state: Mutex::new(AckState {
                sent_ns: vec![0; window.capacity() as usize].into_boxed_slice(),
                lsn: vec![0; window.capacity() as usize].into_boxed_slice(),
                window,
                failure: None,
                wake_at: u64::MAX,
                max_outstanding,
            }),
            wake: tokio::sync::Notify::new(),
            hook,
            epoch: Instant::now(),
            skip_oversized: config.skip_oversized,
            message_max_bytes,
            skipped: std::sync::atomic::AtomicU64::new(0),
            transactional_id: config.transactional_id.clone(),
        });
        let producer: ThreadedProducer<AckContext> = client
            .create_with_context(AckContext {
                shared: Arc::clone(&shared),
            })
            .map_err(SinkError::Config)?;
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
            shared,
            bootstrap_servers: config.bootstrap_servers.clone(),
            creation,
            known_topics: Mutex::new(HashSet::new()),
            transactional_id: config.transactional_id.clone(),
            in_transaction: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the producer is transactional (exactly-once delivery).
    pub fn is_transactional(&self) -> bool {
        self.transactional_id.is_some()
    }

    /// Whether a transaction is open: records were sent since the last commit or abort.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Treats `topic` as existing: records to it never trigger topic creation (the offsets
    /// topic, which the offset store created with its own settings).
    pub fn mark_topic_known(&self, topic: &str) {
        if let Ok(mut known) = self.known_topics.lock() {
            known.insert(topic.to_owned());
        }
    }

    /// The error of a failed transactional call, classified ([`transactions::classify`]).
    fn transaction_error(&self, operation: &'static str, source: KafkaError) -> SinkError {
        let transactional_id = self.transactional_id.clone().unwrap_or_default();
        let fatal = self.producer.client().fatal_error().map(|(code, _)| code);
        match transactions::classify(&source, fatal) {
            transactions::TxnErrorKind::Fenced => SinkError::Fenced {
                transactional_id,
                source,
            },
            kind => SinkError::Transaction {
                transactional_id,
                operation,
                kind,
                source,
            },
        }
    }

    /// Runs a blocking transactional call of librdkafka off the async workers.
    async fn transactional_call(
        &self,
        operation: &'static str,
        call: impl FnOnce(&ThreadedProducer<AckContext>) -> Result<(), KafkaError> + Send + 'static,
    ) -> Result<(), SinkError> {
        if self.transactional_id.is_none() {
            return Err(SinkError::NotTransactional);
        }
        let producer = self.producer.clone();
        let result = tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|_| SinkError::Canceled)?;
        result.map_err(|source| self.transaction_error(operation, source))
    }

    /// `init_transactions`: registers the `transactional.id` with its coordinator, which fences
    /// any older producer with the same id and aborts the transaction it left open. Call once,
    /// before the first record. A producer fenced by a newer one gets [`SinkError::Fenced`].
    pub async fn init_transactions(&self, timeout: Duration) -> Result<(), SinkError> {
        self.transactional_call("init", move |p| p.init_transactions(timeout))
            .await
    }

    /// Commits the open transaction (flushing its records first); a no-op when none is open.
    /// On success every record sent before is committed. An abortable error leaves the
    /// transaction to [`KafkaSink::abort_transaction`].
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<(), SinkError> {
        if !self.in_transaction() {
            return Ok(());
        }
        self.transactional_call("commit", move |p| p.commit_transaction(timeout))
            .await?;
        self.in_transaction
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Aborts the open transaction: none of its records becomes visible to `read_committed`
    /// consumers. Records not delivered yet fail (purged), so the acknowledgement watermark
    /// stops: after an abort the sink is used for nothing but shutting down.
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<(), SinkError> {
        if !self.in_transaction() {
            return Ok(());
        }
        self.transactional_call("abort", move |p| p.abort_transaction(timeout))
            .await?;
        self.in_transaction
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Begins a transaction unless one is open (transactional producers only).
    fn ensure_transaction(&self) -> Result<(), SinkError> {
        if self.transactional_id.is_none() || self.in_transaction() {
            return Ok(());
        }
        self.producer
            .begin_transaction()
            .map_err(|source| self.transaction_error("begin", source))?;
        self.in_transaction
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The underlying librdkafka producer (metadata queries, tests).
    pub fn producer(&self) -> &ThreadedProducer<AckContext> {
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

    /// Enqueues a record and returns its sequence number. Waits (asynchronously) while
    /// [`KafkaSink::max_outstanding`] records are unacknowledged or librdkafka's queue is full. The first
    /// record to a topic creates it when topic creation is configured. After a failed delivery
    /// every `send` returns that failure.
    ///
    /// Await it to completion: dropped while it backs off from a full librdkafka queue, the
    /// number it took stays unresolved and the watermark never passes it (nothing is lost, but
    /// nothing later becomes durable). The commit coordinator never drops it.
    pub async fn send(&self, record: &OutgoingRecord) -> Result<u64, SinkError> {
        self.send_parts(
            &record.topic,
            record.key.as_deref(),
            record.value.as_deref(),
            record
                .headers
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_slice())),
        )
        .await
    }

    /// [`KafkaSink::send`] from borrowed parts (librdkafka copies them).
    pub async fn send_parts<'h>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<u64, SinkError> {
        self.send_parts_at(topic, key, value, headers, None).await
    }

    /// [`KafkaSink::send_parts`] for a change at `lsn`, which errors and skip logs name.
    pub async fn send_parts_at<'h>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        lsn: Option<u64>,
    ) -> Result<u64, SinkError> {
        self.ensure_topic(topic).await?;
        self.ensure_transaction()?;
        let seq = loop {
            let registered = {
                let mut state = self.shared.lock();
                if let Some(failure) = &state.failure {
                    return Err(failure.error.clone());
                }
                let seq = if state.is_full() {
                    None
                } else {
                    state.window.register()
                };
                match seq {
                    Some(seq) => {
                        let index = (seq & (state.window.capacity() - 1)) as usize;
                        state.sent_ns[index] = self.shared.epoch.elapsed().as_nanos() as u64;
                        state.lsn[index] = lsn.unwrap_or(0);
                    }
                    None => state.wake_at = state.room_at(),
                }
                seq
            };
            match registered {
                Some(seq) => break seq,
                None => self.shared.wake.notified().await,
            }
        };
        let mut owned_headers = OwnedHeaders::new_with_capacity(8);
        let mut header_bytes = 0;
        for (key, value) in headers {
            header_bytes += key.len() + value.len();
            owned_headers = owned_headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, seq as usize).headers(owned_headers);
        if let Some(key) = key {
            base = base.key(key);
        }
        if let Some(value) = value {
            base = base.payload(value);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => return Ok(seq),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    base = returned;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((source, _)) => {
                    // Never enqueued, so no report will come: settle it here.
                    let error = match source {
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => {
                            let size = key.map_or(0, <[u8]>::len)
                                + value.map_or(0, <[u8]>::len)
                                + header_bytes;
                            let key = key_text(key);
                            if self.shared.skip_oversized {
                                // errors.tolerance=all: this record alone is over the limit.
                                tracing::warn!(
                                    topic, %key, size, lsn = lsn.map(lsn_text),
                                    message_max_bytes = self.shared.message_max_bytes,
                                    "errors.tolerance=all: record skipped, larger than librdkafka's message.max.bytes; it is not in Kafka"
                                );
                                self.shared
                                    .skipped
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                self.shared.resolve(seq, Ok(None));
                                return Ok(seq);
                            }
                            SinkError::TooLarge(Box::new(TooLargeRecord {
                                topic: topic.to_owned(),
                                key,
                                size,
                                lsn,
                                limit: self.shared.message_max_bytes,
                                by_broker: false,
                                kafka_error: source,
                            }))
                        }
                        source if self.is_transactional() => {
                            match self.transaction_error("produce", source) {
                                fenced @ SinkError::Fenced { .. } => fenced,
                                SinkError::Transaction { source, .. } => SinkError::Delivery {
                                    topic: topic.to_owned(),
                                    source,
                                },
                                other => other,
                            }
                        }
                        source => SinkError::Delivery {
                            topic: topic.to_owned(),
                            source,
                        },
                    };
                    // The watermark stops in front of this record for good.
                    self.shared.resolve(seq, Err(error.clone()));
                    return Err(error);
                }
            }
        }
    }

    /// Records enqueued and not yet acknowledged, at most (from the memory budget).
    pub fn max_outstanding(&self) -> u64 {
        self.shared.lock().max_outstanding
    }

    /// Records skipped as too large under `errors.tolerance=all`.
    pub fn skipped(&self) -> u64 {
        self.shared
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a `send` now would not wait for acknowledgements (librdkafka's queue aside).
    pub fn has_room(&self) -> bool {
        !self.shared.lock().is_full()
    }

    /// The sequence number the next record will get: how many records were sent so far.
    pub fn next_seq(&self) -> u64 {
        self.shared.lock().window.next()
    }

    /// How far the broker has acknowledged.
    pub fn acks(&self) -> AckStatus {
        let state = self.shared.lock();
        AckStatus {
            watermark: state.window.watermark(),
            next: state.window.next(),
            unresolved: state.window.unresolved(),
            failure: state.failure.clone(),
            skipped: self.skipped(),
        }
    }

    /// Waits until the watermark reaches `watermark`, a delivery failed, or (with
    /// `want_room`) [`KafkaSink::has_room`] holds. One waiter at a time (the wake-up goes to
    /// one task).
    pub async fn wait(&self, watermark: u64, want_room: bool) {
        loop {
            {
                let mut state = self.shared.lock();
                if state.window.watermark() >= watermark
                    || state.failure.is_some()
                    || (want_room && !state.is_full())
                {
                    return;
                }
                state.wake_at = if want_room {
                    watermark.min(state.room_at())
                } else {
                    watermark
                };
            }
            self.shared.wake.notified().await;
        }
    }

    /// Waits until the acknowledgements are settled: every record sent has its delivery
    /// report, or — after a failure — every record before the failed one has (nothing after it
    /// can become durable, so waiting for the rest would only delay a shutdown).
    pub async fn wait_settled(&self) {
        loop {
            {
                let mut state = self.shared.lock();
                if state.window.unresolved() == 0 {
                    return;
                }
                if let Some(failure) = &state.failure {
                    let failed = failure.seq;
                    if state.window.watermark() >= failed {
                        return;
                    }
                    state.wake_at = failed;
                }
            }
            self.shared.wake.notified().await;
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

/// librdkafka's configuration: pgseam's defaults and the memory budget's queue limits, its
/// fixed settings, then the overrides; and what they give the sink.
fn client_config(config: &KafkaSinkConfig) -> (ClientConfig, SinkLimits) {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    // A report for every record: the acknowledgement watermark needs each one.
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
    let number = |key: &str| -> Option<u64> {
        config
            .overrides
            .get(key)
            .and_then(|value| value.trim().parse().ok())
    };
    let message_max_bytes = number("message.max.bytes").unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES);
    let budget = config
        .memory_budget
        .unwrap_or(budget::DEFAULT_MEMORY_BUDGET);
    let derived = budget::QueueLimits::from_budget(budget, message_max_bytes);
    for (key, value) in DEFAULT_PRODUCER_SETTINGS {
        client.set(*key, *value);
    }
    client.set("queue.buffering.max.kbytes", derived.max_kbytes.to_string());
    client.set(
        "queue.buffering.max.messages",
        derived.max_messages.to_string(),
    );
    for (key, value) in FIXED_PRODUCER_SETTINGS {
        client.set(*key, *value);
    }
    for (key, value) in &config.overrides {
        client.set(key, value);
    }
    if let Some(id) = &config.transactional_id {
        // As Kafka Connect (`Worker::exactlyOnceSourceTaskProducerConfigs`): the id is the
        // connector's, whatever an override says.
        if let Some(other) = config
            .overrides
            .get("transactional.id")
            .filter(|o| *o != id)
        {
            tracing::warn!(
                override_value = %other, transactional_id = %id,
                "producer override of transactional.id ignored: exactly-once delivery uses the connector's own transactional.id"
            );
        }
        client.set("transactional.id", id);
        client.set("enable.idempotence", "true");
    }
    let effective = budget::QueueLimits {
        max_kbytes: number("queue.buffering.max.kbytes").unwrap_or(derived.max_kbytes),
        max_messages: number("queue.buffering.max.messages").unwrap_or(derived.max_messages),
    };
    if effective != derived && effective.bytes() > budget {
        tracing::warn!(
            memory_budget_bytes = budget,
            queue_buffering_max_kbytes = effective.max_kbytes,
            queue_buffering_max_messages = effective.max_messages,
            estimated_bytes = effective.bytes(),
            "producer.queue.buffering.max.* overrides let librdkafka hold more than \
             pgseam.memory.budget.bytes; raise the budget instead, or remove the overrides"
        );
    }
    if message_max_bytes > budget / 2 {
        tracing::warn!(
            memory_budget_bytes = budget,
            message_max_bytes,
            "message.max.bytes is over half of pgseam.memory.budget.bytes: librdkafka's queue \
             is sized to hold one record that large, beyond the budget"
        );
    }
    let limits = SinkLimits {
        message_max_bytes,
        max_outstanding: derived.max_messages.min(effective.max_messages).max(1),
    };
    tracing::info!(
        memory_budget_bytes = budget,
        queue_buffering_max_kbytes = effective.max_kbytes,
        queue_buffering_max_messages = effective.max_messages,
        max_outstanding = limits.max_outstanding,
        message_max_bytes,
        "producer memory limits"
    );
    (client, limits)
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
        let (client, limits) = client_config(&config);
        assert_eq!(client.get("compression.type"), Some("lz4"));
        assert_eq!(client.get("linger.ms"), Some("20"));
        assert_eq!(client.get("queue.buffering.max.kbytes"), Some("65536"));
        assert_eq!(client.get("queue.buffering.max.messages"), Some("65536"));
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        assert_eq!(limits.max_outstanding, 65_536);
        assert_eq!(limits.message_max_bytes, 1_000_000);
        config.overrides = [
            ("compression.type".to_owned(), "none".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
        ]
        .into();
        let (client, _) = client_config(&config);
        assert_eq!(client.get("compression.type"), Some("none"));
        assert_eq!(client.get("linger.ms"), Some("5"));
    }

    #[test]
    fn the_memory_budget_sets_the_queue_limits_and_the_in_flight_bound() {
        let mut config = KafkaSinkConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            memory_budget: Some(32 * 1024 * 1024),
            ..KafkaSinkConfig::default()
        };
        let (client, limits) = client_config(&config);
        assert_eq!(client.get("queue.buffering.max.kbytes"), Some("16384"));
        assert_eq!(client.get("queue.buffering.max.messages"), Some("16384"));
        assert_eq!(limits.max_outstanding, 16_384);
        // A smaller message override also bounds pgseam's in-flight records; a larger one
        // reaches librdkafka (with a warning) but pgseam keeps the budget's bound.
        config.overrides = [("queue.buffering.max.messages".to_owned(), "5000".to_owned())].into();
        let (client, limits) = client_config(&config);
        assert_eq!(client.get("queue.buffering.max.messages"), Some("5000"));
        assert_eq!(limits.max_outstanding, 5_000);
        config.overrides = [
            (
                "queue.buffering.max.messages".to_owned(),
                "500000".to_owned(),
            ),
            ("message.max.bytes".to_owned(), "2000000".to_owned()),
        ]
        .into();
        let (client, limits) = client_config(&config);
        assert_eq!(client.get("queue.buffering.max.messages"), Some("500000"));
        assert_eq!(
            (limits.max_outstanding, limits.message_max_bytes),
            (16_384, 2_000_000)
        );
    }
}
