//! One connector's pipeline and its commit coordinator.
//!
//! ```text
//!  source task ──SourceMessage──► coordinator ──records #0,1,2…──► KafkaSink (librdkafka queue)
//!      ▲                             │  checkpoints, in order, each with      │ delivery reports
//!      │                             │  the number of records sent before it  │ by record number
//!      │                             ▼                                        ▼
//!      └──── Feedback(durable LSN) ◄─ offset store ◄─ checkpoint k ≤ acknowledgement watermark
//! ```
//!
//! The one rule: **nothing is acknowledged upstream before it is durable downstream.** The sink
//! numbers records 0, 1, 2, … in the order they are sent and keeps the *acknowledgement
//! watermark*: every record numbered below it was acknowledged by Kafka
//! (`pgseam_sink_kafka::acks`). A checkpoint — a durable step to run once everything sent
//! before it is acknowledged, today "store this offset" — is queued, in order, with the number
//! of records sent before it (`k`); it comes out of the queue only once the watermark reaches
//! `k`, so its position is durable in Kafka. The offset is then written — to the file
//! (atomically, fsync'd) or to the offsets topic (acknowledged with `acks=all`), see
//! [`OffsetStore`] — and only after that is the LSN published to the source, which reports it
//! to the slot as the flush LSN. A failed delivery stops the watermark in front of the failed
//! record for good: the checkpoints before it are stored, no later one ever is, and the
//! pipeline stops with the error. A record too large for Kafka is such a failure — the error
//! names its topic and key — unless `errors.tolerance=all`, under which the sink skips a
//! record librdkafka refuses as larger than `message.max.bytes` and settles it as
//! acknowledged, so later checkpoints pass it (`pgseam_records_skipped_total` counts them).
//!
//! Memory: at most `KafkaSink::max_outstanding` records — derived from
//! `pgseam.memory.budget.bytes` with librdkafka's queue limits (`pgseam_sink_kafka::budget`) —
//! are unacknowledged (new events wait for room; librdkafka's own queue limit makes `send`
//! back off), and the checkpoint queue holds at most one entry per transaction among them.
//!
//! Position headers: every record carries where it came from, so that a consumer can recognise
//! the duplicates an at-least-once restart replays (unless the connector sets
//! `pgseam.position.headers=false`; they are pgseam's own, Debezium writes none):
//!
//! | header | value (UTF-8 text) |
//! |---|---|
//! | `pgseam.lsn` | LSN of the change (`16/B374D848`); for snapshot rows the slot's consistent point |
//! | `pgseam.commit_lsn` | LSN of the transaction's commit record; absent on snapshot rows |
//! | `pgseam.seq` | 0-based number of the record within its transaction (or within the snapshot) |
//! | `pgseam.snapshot` | `true` on snapshot rows; absent otherwise |
//!
//! Logical decoding messages and transaction BEGIN/END records carry the same headers (a
//! non-transactional message is its own unit: its commit LSN is its LSN, its `seq` 0).
//!
//! `(commit_lsn, seq)` identifies a streamed record; commit LSNs grow in commit order, so a
//! consumer that remembers the last pair it applied per partition can drop any record at or
//! before it. A replay after a crash starts at a transaction boundary (or at the start of the
//! snapshot), so `seq` restarts with the transaction and the pairs repeat exactly.
//!
//! # Lost connections
//!
//! Once the source has streamed (it sent `StreamingStarted`), a [`ErrorClass::Transient`]
//! failure — the server restarted, the walsender was terminated, the network dropped — does
//! not stop the connector: the messages the source sent before failing are processed as
//! usual, then the source is started again with `StartPoint::Resume` at the end of the last
//! complete transaction it handed over, after a backoff that starts at
//! `retriable.restart.connector.wait.ms` and doubles up to [`MAX_RECONNECT_WAIT`]. Events of a
//! transaction cut off by the failure were already queued and are sent again whole: an ordered
//! suffix of duplicates, never a gap. The slot is still only confirmed up to what is durable
//! (the new source never reports more than the durable LSN). A slot still held by another
//! connection is retried too: after a network cut that is our own previous walsender until
//! the server's `wal_sender_timeout` reaps it. Failures before the first
//! `StreamingStarted` (wrong password, missing slot, …) stay fatal: retrying would only hide
//! them.
//!
//! Offsets are written at most every `offset.flush.interval.ms` (Connect's setting), when the
//! snapshot completes, and at shutdown.
//!
//! # Stopping
//!
//! A stop (SIGTERM, REST stop or delete, a failure) is bounded by
//! `task.shutdown.graceful.timeout.ms` (Kafka Connect's worker key, default 5 s, the time
//! Connect gives a task before it cancels it and closes its producer without waiting), or by
//! `offset.flush.timeout.ms` when that is shorter (default 5 s, how long Connect's final
//! offset commit waits for outstanding records):
//! 1. the source stops reading (a source inside the initial snapshot drops the snapshot at
//!    once: its readers are aborted);
//! 2. deliveries still outstanding are awaited until the bound, then abandoned;
//! 3. the offset of the last checkpoint whose records are all acknowledged is stored, and the
//!    source reports its LSN to the slot (given at least [`SOURCE_STOP_GRACE`]);
//! 4. dropping the producer purges what librdkafka still holds.
//!
//! Nothing is lost: the stored offset is never past an unacknowledged record, so what was
//! abandoned is sent again after the restart (at least once; an interrupted snapshot resumes
//! from its stored progress). Before the bound, a stop during a heavy snapshot into a slow
//! broker waited up to 30 s for librdkafka's queue (up to `pgseam.memory.budget.bytes`) to
//! drain, and 5 s more for the snapshot, blocked on the channel the worker no longer read.
//!
//! **Snapshot progress**: "slot created at C" is stored (synchronously, before the source reads
//! any chunk), then every `SourceMessage::SnapshotProgress` is a checkpoint like a
//! transaction's, stored at once when it comes out of the queue: the offset then holds the
//! progress (`ConnectorOffset::SnapshotResumable`), and while a resumed snapshot streams, every
//! streaming checkpoint carries it too, until the source reports the snapshot finished. A
//! restart (or a reconnection) resumes the snapshot from it (`StartPoint::ResumeSnapshot`). After a crash, the stream replays from the last stored
//! offset: an ordered suffix of duplicates, never a gap.
//!
//! # Exactly-once
//!
//! With `exactly.once.source.support=enabled` ([`ExactlyOnceSettings`]; KIP-618's keys, a
//! pgseam extension in standalone, COMPATIBILITY.md "Exactly-once") the producer is
//! transactional (`transactional.id` `<group.id>-<connector>-0`) and the ordering rule is kept
//! by Kafka transactions instead of the acknowledgement watermark:
//!
//! 1. At start, `init_transactions` fences older instances and aborts what they left open;
//!    only then is the offsets topic read again and the committed offset resumed from.
//! 2. The first record after a commit opens a Kafka transaction. Checkpoints are not stored as
//!    they become acknowledged: the last one queued at a PostgreSQL transaction boundary
//!    (outside `TransactionBegun`…`TransactionCommitted`) is the *commit point*.
//! 3. When nothing was sent after the commit point and the bound is reached (see below for a
//!    bound reached inside a large transaction)
//!    (`transaction.boundary=poll`: `max.batch.size` records or the source's queue empty;
//!    `interval`: `transaction.boundary.interval.ms`; a snapshot step at once; an idle
//!    position move every `offset.flush.interval.ms`), the commit point's offset record is
//!    written to the offsets topic inside the transaction and the transaction is committed.
//! 4. Only after the commit is the offset noted in the store and its LSN published to the
//!    source (the slot's flush LSN).
//! 5. A failure (a delivery, a commit, fencing) stops the pipeline without committing: the
//!    open transaction is aborted and a restart resumes from the last committed offset. A clean
//!    stop commits at the commit point if nothing was sent after it, else aborts.
//!
//! A large PostgreSQL transaction is split: once the bound is reached inside it, the commit
//! point is the current event boundary, with the offset "resume at the last transaction
//! boundary, and of the transaction committing at C skip the first `n` records"
//! (`SkipWithin`, stored as pgseam's `pgseam_skip` offset key; its flush LSN stays at the
//! boundary). A restart replays that transaction from its start and drops its first `n`
//! records — they are numbered as before (`pgseam.seq`), conversion being deterministic —
//! and so does a reconnection after a lost connection, with `n` the records already sent.
//! At-least-once delivery is unchanged by all this (it honours a stored `pgseam_skip` too:
//! those records were committed).
//!
//! **Snapshot rows converted by the readers**: with the JSON converter, the initial snapshot's
//! readers convert most rows themselves (a fork of this pipeline's converter, see
//! `snapshot_row_encoder` and `pgseam_connector_pg::snapshot::encode`) and send
//! `SourceMessage::Encoded`: the coordinator only numbers and sends their records, exactly as it
//! sends the records it converts.
//!
//! **Null sink** (`pgseam.sink=null`, for benchmarks): records are encoded as usual and then
//! dropped instead of sent, each counting as acknowledged at once — nothing is outstanding, so a
//! checkpoint becomes durable as soon as it reaches the head of the queue, and offsets and the
//! slot advance as they would with an instant broker. No producer is created.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use pgseam_connector_pg::snapshot::{
    ProgressUpdate, ReaderEncoding, RowEncoder, RowEncoderFactory, SnapshotProgress,
};
use pgseam_connector_pg::{
    ErrorClass, Feedback, SourceConfig, SourceError, SourceMessage, StartPoint,
};
use pgseam_converters::avro::registry::{BasicAuth, HttpSchemaRegistry};
use pgseam_converters::{
    AvroConverter, AvroConverterConfig, Converter, JsonConverter, JsonConverterConfig, KafkaRecord,
};
use pgseam_model::{Lsn, Position};
use pgseam_sink_kafka::transactions::TxnErrorKind;
use pgseam_sink_kafka::{Delivered, KafkaSink, KafkaSinkConfig, OutgoingRecord, SinkError};
use tokio::sync::{mpsc, watch};

use crate::metrics::ConnectorMetrics;
use crate::offsets::debezium::encode_progress;
use crate::offsets::debezium::SkipWithin;
use crate::offsets::{offset_key, ConnectorOffset, OffsetKey, OffsetStore, StreamOffset};

/// How long to wait for a broker at start before giving up with a clear error.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Header names of the record position (see the module docs).
pub const HEADER_LSN: &str = "pgseam.lsn";
pub const HEADER_COMMIT_LSN: &str = "pgseam.commit_lsn";
pub const HEADER_SEQ: &str = "pgseam.seq";
pub const HEADER_SNAPSHOT: &str = "pgseam.snapshot";

/// The least a stop gives the source to send its final status update once the offset is stored
/// (when `task.shutdown.graceful.timeout.ms` is spent), before closing its channel and again
/// before aborting it: a streaming source needs one round trip.
const SOURCE_STOP_GRACE: Duration = Duration::from_secs(1);

/// Records of a converted snapshot run sent between two looks at the stop signal.
const ENCODED_SLICE: usize = 256;

/// Longest wait between reconnection attempts; the first wait is the configured
/// `retriable.restart.connector.wait.ms` (when that is longer, it is used as is).
pub const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// Everything one connector's pipeline needs, already validated.
#[derive(Clone)]
pub struct PipelineSettings {
    pub connector_name: String,
    pub topic_prefix: String,
    pub source: SourceConfig,
    pub converter: JsonConverterConfig,
    /// `Some` when the key or value converter is Confluent's AvroConverter.
    pub avro: Option<AvroSettings>,
    pub sink: KafkaSinkConfig,
    /// `pgseam.sink=null`: encode, then drop (see the module docs). `sink` is unused.
    pub null_sink: bool,
    pub offset_file: PathBuf,
    pub offset_flush_interval: Duration,
    /// The bound on a stop (module docs, "Stopping"): `task.shutdown.graceful.timeout.ms`,
    /// or `offset.flush.timeout.ms` when that is shorter.
    pub shutdown_timeout: Duration,
    pub max_queue_size: usize,
    /// First wait before reconnecting after a lost connection.
    pub reconnect_wait: Duration,
    /// `<heartbeat.topics.prefix>.<topic.prefix>`.
    pub heartbeat_topic: String,
    /// `provide.transaction.metadata=true`: the `topic.transaction` suffix of the transaction
    /// topic (`<topic.prefix>.<suffix>`); `None` = no transaction metadata.
    pub transaction_metadata: Option<String>,
    /// `pgseam.position.headers`: add the position headers (module docs) to every record.
    pub position_headers: bool,
    /// `notification.enabled.channels`: where snapshot notifications go.
    pub notifications: crate::config::NotificationChannels,
    /// The `kafka` signal channel (see `signal_channels`).
    pub signal_kafka: Option<crate::config::KafkaSignalChannel>,
    /// The `file` signal channel's file, read every `signal_poll_interval`.
    pub signal_file: Option<PathBuf>,
    pub signal_poll_interval: Duration,
    /// Exactly-once delivery (`exactly.once.source.support=enabled`); `None`: at least once.
    /// `sink.transactional_id` is set with it.
    pub exactly_once: Option<ExactlyOnceSettings>,
}

/// Exactly-once delivery's settings (see the module docs, "Exactly-once").
#[derive(Clone, Debug)]
pub struct ExactlyOnceSettings {
    /// `<group.id>-<connector>-0`, as Kafka Connect names task 0's transactional id.
    pub transactional_id: String,
    pub boundary: TransactionBounds,
}

/// Where a Kafka transaction may end (`transaction.boundary`); it always ends at a
/// PostgreSQL transaction boundary, the first one at or after this bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionBounds {
    /// `poll`: after `max.batch.size` records, or as soon as the source has nothing more
    /// queued.
    Poll { max_records: u64 },
    /// `interval`: once this long since the last commit.
    Interval(Duration),
}

/// Debezium's heartbeat record (`HeartbeatImpl` with `SchemaFactory`'s schemas): key struct
/// `io.debezium.connector.common.ServerNameKey` {serverName = topic.prefix}, value struct
/// `io.debezium.connector.common.Heartbeat` {ts_ms}, no headers, in Kafka Connect JSON with or
/// without schemas.
fn heartbeat_record(settings: &PipelineSettings, ts_ms: i64) -> OutgoingRecord {
    let key = serde_json::json!({"serverName": settings.topic_prefix});
    let value = serde_json::json!({ "ts_ms": ts_ms });
    let key = if settings.converter.key_schemas_enable {
        serde_json::json!({
            "schema": {
                "type": "struct",
                "fields": [{"type": "string", "optional": false, "field": "serverName"}],
                "optional": false,
                "name": "io.debezium.connector.common.ServerNameKey",
                "version": 1
            },
            "payload": key
        })
    } else {
        key
    };
    let value = if settings.converter.value_schemas_enable {
        serde_json::json!({
            "schema": {
                "type": "struct",
                "fields": [{"type": "int64", "optional": false, "field": "ts_ms"}],
                "optional": false,
                "name": "io.debezium.connector.common.Heartbeat",
                "version": 1
            },
            "payload": value
        })
    } else {
        value
    };
    OutgoingRecord {
        topic: settings.heartbeat_topic.clone(),
        key: Some(key.to_string().into_bytes()),
        value: Some(value.to_string().into_bytes()),
        headers: Vec::new(),
    }
}

/// Sends a snapshot notification to the enabled channels (Debezium's `NotificationService`):
/// the log (`[Notification Service] {..}` as `LogNotificationChannel` prints it, with the key
/// values of `maximum_key` and `last_processed_key` replaced by `<redacted>`: pgseam logs no
/// row values) and the sink topic (`SinkNotificationChannel`'s record, see
/// `pgseam_converters::notification`; no position headers, as Debezium's has none). Not a
/// checkpoint: a notification is at most once per making, and the source may make one again
/// after a restart.
async fn send_notification(
    settings: &PipelineSettings,
    sink: Option<&KafkaSink>,
    notification: &pgseam_model::Notification,
) -> anyhow::Result<()> {
    use pgseam_converters::notification::{notification_json, notification_text};
    let channels = &settings.notifications;
    if channels.log {
        let mut shown = notification.clone();
        for (key, value) in &mut shown.additional_data {
            if key == "maximum_key" || key == "last_processed_key" {
                *value = "<redacted>".to_owned();
            }
        }
        tracing::info!(
            connector = %settings.connector_name,
            aggregate_type = notification.aggregate_type,
            notification_type = notification.kind,
            "[Notification Service]  {}",
            notification_text(&shown, &settings.topic_prefix)
        );
    }
    if let (Some(topic), Some(sink)) = (&channels.sink_topic, sink) {
        let (key, value) = notification_json(
            notification,
            &settings.topic_prefix,
            settings.converter.key_schemas_enable,
            settings.converter.value_schemas_enable,
        );
        sink.send(&OutgoingRecord {
            topic: topic.clone(),
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        })
        .await?;
    }
    Ok(())
}

/// Aborts the tasks when dropped (however the pipeline ends).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

type SourceOutcome = Result<Result<(), SourceError>, tokio::task::JoinError>;

fn outcome_to_anyhow(outcome: SourceOutcome) -> anyhow::Result<()> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(anyhow!(err)),
        Err(join) => Err(anyhow!("source task failed: {join}")),
    }
}

/// The AvroConverter's part of the pipeline settings.
#[derive(Clone, Debug)]
pub struct AvroSettings {
    pub key_avro: bool,
    pub value_avro: bool,
    /// `schema.registry.url` (the key's if both are Avro and they differ: see
    /// `standalone::pipeline_settings`).
    pub registry_url: String,
    pub basic_auth: Option<BasicAuth>,
}

/// Builds the converter the settings ask for.
fn build_converter(settings: &PipelineSettings) -> Converter {
    match &settings.avro {
        None => Converter::Json(JsonConverter::new(settings.converter.clone())),
        Some(a) => Converter::Avro(Box::new(AvroConverter::new(
            AvroConverterConfig {
                json: settings.converter.clone(),
                key_avro: a.key_avro,
                value_avro: a.value_avro,
            },
            Box::new(HttpSchemaRegistry::new(
                &a.registry_url,
                a.basic_auth.clone(),
            )),
        ))),
    }
}

/// Converts initial-snapshot rows in the snapshot readers with a fork of the pipeline's JSON
/// converter (`pgseam_connector_pg::snapshot::encode`): the same bytes the pipeline would write,
/// made beside the decoding. `None` for Avro: its first record of a table registers schemas
/// (blocking HTTP), which stays in the pipeline.
fn snapshot_row_encoder(converter: &Converter) -> Option<RowEncoderFactory> {
    let Converter::Json(json) = converter else {
        return None;
    };
    let template = json.fork();
    Some(Arc::new(move || {
        Box::new(ReaderEncoder(template.fork())) as Box<dyn RowEncoder>
    }))
}

/// A snapshot reader's converter (see [`snapshot_row_encoder`]).
struct ReaderEncoder(JsonConverter);

impl RowEncoder for ReaderEncoder {
    fn encode(&mut self, event: &pgseam_model::ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool {
        // What the pipeline does for a snapshot row: no key change, no transaction block, the
        // time of conversion.
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        // `out` holds the run's earlier records: only this event's may be taken back.
        let start = out.len();
        let converted = self
            .0
            .convert_in_transaction(event, None, None, now_ns, out)
            .is_ok();
        if !converted {
            out.truncate(start);
        }
        converted
    }
}

/// A checkpoint: once durable, the offset to store.
#[derive(Clone, Debug)]
struct Checkpoint {
    offset: ConnectorOffset,
    /// Store it at once (end of snapshot) instead of waiting for the flush timer.
    urgent: bool,
}

/// Checkpoints waiting for their records, in order: (records sent before it, checkpoint).
type Checkpoints = VecDeque<(u64, Checkpoint)>;

/// Queues a checkpoint behind every record sent so far (with the null sink nothing is
/// outstanding: it is durable as soon as the acknowledgement arm looks).
fn queue_checkpoint(
    sink: Option<&KafkaSink>,
    checkpoints: &mut Checkpoints,
    checkpoint: Checkpoint,
) {
    let after = sink.map_or(0, KafkaSink::next_seq);
    checkpoints.push_back((after, checkpoint));
}

/// Moves every checkpoint whose records are all acknowledged (`watermark`: every record
/// numbered below it is) into `durable`, in order. Returns whether one of them is urgent.
fn take_durable(
    checkpoints: &mut Checkpoints,
    watermark: u64,
    durable: &mut Option<ConnectorOffset>,
) -> bool {
    let mut urgent = false;
    while checkpoints
        .front()
        .is_some_and(|(after, _)| *after <= watermark)
    {
        if let Some((_, checkpoint)) = checkpoints.pop_front() {
            urgent |= checkpoint.urgent;
            *durable = Some(checkpoint.offset);
        }
    }
    urgent
}

/// What the connector manager observes and controls in a running pipeline.
#[derive(Clone)]
pub struct PipelineHooks {
    /// Updated as events flow.
    pub metrics: Arc<ConnectorMetrics>,
    /// While true the pipeline takes no new events from the source (Connect's PAUSED): the
    /// source blocks on its full queue and keeps the replication connection alive with status
    /// updates; deliveries and offset commits go on.
    pub paused: watch::Receiver<bool>,
}

impl Default for PipelineHooks {
    fn default() -> Self {
        PipelineHooks {
            metrics: Arc::new(ConnectorMetrics::new()),
            paused: watch::channel(false).1,
        }
    }
}

/// Runs the connector until `shutdown` turns true (then stops cleanly) or an error occurs.
pub async fn run_connector(
    settings: PipelineSettings,
    offsets: Arc<OffsetStore>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_connector_with(settings, offsets, shutdown, PipelineHooks::default()).await
}

/// [`run_connector`] with metrics and a pause switch.
pub async fn run_connector_with(
    settings: PipelineSettings,
    offsets: Arc<OffsetStore>,
    shutdown: watch::Receiver<bool>,
    hooks: PipelineHooks,
) -> anyhow::Result<()> {
    let metrics = Arc::clone(&hooks.metrics);
    metrics.set_running(true);
    let result = run_pipeline(settings, offsets, shutdown, hooks).await;
    metrics.set_running(false);
    result
}

async fn run_pipeline(
    settings: PipelineSettings,
    offsets: Arc<OffsetStore>,
    mut shutdown: watch::Receiver<bool>,
    hooks: PipelineHooks,
) -> anyhow::Result<()> {
    let PipelineHooks {
        metrics,
        mut paused,
    } = hooks;
    let mut is_paused = *paused.borrow_and_update();
    let name = settings.connector_name.clone();
    // Inside the main loop a failure must leave through the shutdown path below (deliver what
    // is in flight, store what is durable, stop the source), never return early.
    macro_rules! or_break {
        ($label:lifetime, $result:expr) => {
            match $result {
                Ok(value) => value,
                Err(err) => break $label Err(anyhow::Error::from(err)),
            }
        };
    }
    let sink = if settings.null_sink {
        tracing::warn!(connector = %name, "pgseam.sink=null: records are encoded and then dropped, not sent to Kafka");
        None
    } else {
        let delivered = Arc::clone(&metrics);
        let hook = Box::new(move |d: &Delivered| delivered.on_delivered(d.latency));
        let sink = KafkaSink::with_hook(&settings.sink, Some(hook))
            .context("cannot create the Kafka producer")?;
        sink.check_reachable(BROKER_CHECK_TIMEOUT).await?;
        Some(sink)
    };

    let key = offset_key(&settings.connector_name, &settings.topic_prefix);
    let mut eos = match (&settings.exactly_once, &sink) {
        (Some(exactly_once), Some(sink)) => {
            Some(start_exactly_once(exactly_once, sink, &offsets, &name).await?)
        }
        _ => None,
    };
    let stored = offsets.get(&key).await?;
    let start = match stored.as_ref().map(|o| (o, o.resume_lsn())) {
        Some((ConnectorOffset::SnapshotResumable { progress, .. }, Some(lsn))) => {
            tracing::info!(connector = %name, resume_lsn = %lsn, progress = %encode_progress(progress), "the previous initial snapshot did not complete; resuming it");
            StartPoint::ResumeSnapshot {
                lsn,
                progress: progress.clone(),
            }
        }
        None => StartPoint::Fresh {
            replace_slot: false,
        },
        Some((_, None)) => {
            tracing::warn!(connector = %name, "the previous initial snapshot did not complete; starting it over");
            StartPoint::Fresh { replace_slot: true }
        }
        Some((offset, Some(lsn))) => {
            tracing::info!(connector = %name, resume_lsn = %lsn, stored = ?offset, "resuming from the stored offset");
            StartPoint::Resume { lsn }
        }
    };

    // `Option` so a conversion that must register schemas can move it to a blocking thread.
    let mut converter = Some(build_converter(&settings));
    // provide.transaction.metadata: counts per transaction, never buffered events. With Avro,
    // making the monitor registers the transaction schemas (blocking HTTP, off the workers).
    let mut tx_monitor = match settings.transaction_metadata.clone() {
        None => None,
        Some(suffix) => {
            let mut conv = converter
                .take()
                .ok_or_else(|| anyhow!("the converter was lost"))?;
            let (conv, monitor) = tokio::task::spawn_blocking(move || {
                let monitor = conv.transaction_monitor(&suffix);
                (conv, monitor)
            })
            .await
            .map_err(|e| anyhow!("schema registration task failed: {e}"))?;
            converter = Some(conv);
            Some(monitor.context("cannot register the transaction metadata schemas")?)
        }
    };

    // Initial-snapshot rows are converted in the readers where the converter allows it.
    let mut settings = settings;
    settings.source.snapshot.reader_encoding = converter
        .as_ref()
        .and_then(snapshot_row_encoder)
        .map(|make| ReaderEncoding::new(make, settings.max_queue_size));
    let (events_tx, mut events_rx) = mpsc::channel(settings.max_queue_size.max(1));
    let (feedback_tx, feedback_rx) = watch::channel(Feedback {
        durable_lsn: match &start {
            StartPoint::Resume { lsn } | StartPoint::ResumeSnapshot { lsn, .. } => *lsn,
            StartPoint::Fresh { .. } => Lsn::ZERO,
        },
        ..Feedback::default()
    });
    // The progress of an initial snapshot that is not complete yet (see `SnapshotProgress`).
    let mut snapshot_progress = match &stored {
        Some(ConnectorOffset::SnapshotResumable { progress, .. }) => Some(progress.clone()),
        _ => None,
    };
    // The external signal channels feed the source's inbox until the connector stops.
    let mut signal_tasks = Vec::new();
    if let Some(kafka) = &settings.signal_kafka {
        let consumer = crate::signal_channels::kafka_consumer(kafka)?;
        signal_tasks.push(tokio::spawn(crate::signal_channels::run_kafka(
            consumer,
            kafka.topic.clone(),
            settings.topic_prefix.clone(),
            Arc::clone(&settings.source.snapshot.signals),
            shutdown.clone(),
        )));
    }
    if let Some(file) = &settings.signal_file {
        signal_tasks.push(tokio::spawn(crate::signal_channels::run_file(
            file.clone(),
            settings.signal_poll_interval,
            Arc::clone(&settings.source.snapshot.signals),
            shutdown.clone(),
        )));
    }
    let _stop_signal_tasks = AbortOnDrop(signal_tasks);
    let mut source_task = tokio::spawn(pgseam_connector_pg::run(
        settings.source.clone(),
        start,
        events_tx,
        feedback_rx,
    ));

    let mut records: Vec<KafkaRecord> = Vec::new();
    let mut checkpoints: Checkpoints = VecDeque::new();
    // Reused per record: the position headers' values.
    let mut header_text = PositionText::new(settings.position_headers);
    let mut durable: Option<ConnectorOffset> = None;
    let mut last_streaming = stored.clone();
    let mut stored_offset = stored;
    let mut flush_timer = tokio::time::interval(settings.offset_flush_interval);
    flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_result: Option<SourceOutcome> = None;
    // Records sent in the current transaction (or snapshot): the `pgseam.seq` header.
    let mut sequence: u64 = 0;
    // Reconnection state: whether the source ever streamed, where a new source resumes, when
    // the next attempt is due, and the wait after that.
    let mut ever_streamed = false;
    let mut resume_lsn: Option<Lsn> = None;
    let mut restart_at: Option<tokio::time::Instant> = None;
    let mut next_wait = settings.reconnect_wait;
    // Between a transaction's `TransactionBegun` and `TransactionCommitted`: a checkpoint
    // queued then is not at a transaction boundary (exactly-once commits only at one).
    let mut in_source_transaction = false;
    // The current source transaction's commit LSN (for positions inside it).
    let mut current_commit_lsn: Option<Lsn> = None;
    // Records already delivered of the first transaction sent again (see `SkipWithin`).
    let mut skip: Option<SkipWithin> = match &stored_offset {
        Some(ConnectorOffset::Streaming(s))
        | Some(ConnectorOffset::SnapshotResumable {
            stream: Some(s), ..
        }) => s.skip,
        _ => None,
    };
    if let Some(skip) = &skip {
        tracing::info!(connector = %name, commit_lsn = %skip.commit_lsn, records = skip.records,
            "the stored position is inside a transaction: its first records are delivered and not sent again");
    }
    if let Some(eos) = &eos {
        if let TransactionBounds::Interval(interval) = eos.bounds {
            flush_timer = tokio::time::interval(interval.max(Duration::from_millis(1)));
            flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
    }

    let outcome: anyhow::Result<()> = 'pipeline: loop {
        // What the acknowledgement arm waits for: the next checkpoint's records, and room for
        // new records when there is none.
        let first_checkpoint = checkpoints.front().map_or(u64::MAX, |(after, _)| *after);
        let room = sink.as_ref().is_none_or(KafkaSink::has_room);
        // Exactly-once, `poll`: when a batch smaller than `max.batch.size` may end (see
        // `ExactlyOnce::commit_due`).
        let eos_wake = match (&eos, &sink) {
            (Some(eos), Some(sink)) => eos.linger_until(sink, events_rx.is_empty()),
            _ => None,
        };
        tokio::select! {
            biased;
            // 1. Shutdown wins over everything: stop taking new work.
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::info!(connector = %name, "stopping");
                    break Ok(());
                }
            }
            // Pause and resume: only gate new work (arm 5).
            changed = paused.changed() => {
                if changed.is_ok() {
                    is_paused = *paused.borrow_and_update();
                    tracing::info!(connector = %name, paused = is_paused, "pause state changed");
                }
            }
            // 2. Acknowledgements: checkpoints whose records are all acknowledged become
            //    durable; room for new records; a failed delivery stops the pipeline.
            () = wait_acks(sink.as_ref(), first_checkpoint, !room), if sink.is_some() || !checkpoints.is_empty() => {
                let acks = sink.as_ref().map(KafkaSink::acks);
                let watermark = acks.as_ref().map_or(u64::MAX, |a| a.watermark);
                if let Some(acks) = &acks {
                    metrics.set_producer_queue_depth(acks.unresolved);
                    metrics.set_records_skipped(acks.skipped);
                }
                if take_durable(&mut checkpoints, watermark, &mut durable) {
                    or_break!('pipeline, commit(&offsets, &key, &mut durable, &mut stored_offset, &feedback_tx, &metrics).await);
                }
                if let Some(failure) = acks.and_then(|a| a.failure) {
                    break Err(anyhow!(failure.error).context("a record could not be delivered to Kafka"));
                }
            }
            // 3. Periodic offset commit (exactly-once: the interval bound is due).
            _ = flush_timer.tick() => {
                if let Some(eos) = eos.as_mut() {
                    eos.timer_due = true;
                }
                if let Some(sink) = &sink {
                    let acks = sink.acks();
                    metrics.set_producer_queue_depth(acks.unresolved);
                    metrics.set_records_skipped(acks.skipped);
                }
                or_break!('pipeline, commit(&offsets, &key, &mut durable, &mut stored_offset, &feedback_tx, &metrics).await);
            }
            // Exactly-once: a short batch's linger has passed; the block after the select commits.
            _ = sleep_until_optional(eos_wake), if eos_wake.is_some() => {}
            // 4. The source ended on its own: an error, or the consumer side went away.
            result = &mut source_task, if source_result.is_none() => {
                source_result = Some(result);
                // Deliver what it sent before it ended, then report (or reconnect).
            }
            // 5. Reconnect after a lost connection, once the backoff has passed.
            _ = sleep_until_optional(restart_at), if restart_at.is_some() => {
                restart_at = None;
                let Some(lsn) = resume_lsn else {
                    break Err(anyhow!("cannot reconnect: no position to resume from"));
                };
                tracing::info!(connector = %name, %lsn, "reconnecting to PostgreSQL");
                if let (Some(_), true, Some(commit_lsn)) = (&eos, in_source_transaction, current_commit_lsn) {
                    // Exactly-once: the records of the cut transaction sent so far are in Kafka
                    // (committed or in the open transaction): the replay must not repeat them.
                    let records = skip.filter(|s| s.commit_lsn == commit_lsn).map_or(sequence, |s| s.records.max(sequence));
                    skip = Some(SkipWithin { commit_lsn, records });
                    in_source_transaction = false;
                    tracing::info!(connector = %name, %commit_lsn, records, "exactly-once: the cut transaction is sent again from its start; its first records, already in Kafka, are skipped");
                }
                let (tx, rx) = mpsc::channel(settings.max_queue_size.max(1));
                events_rx = rx;
                let start = match &snapshot_progress {
                    Some(progress) => StartPoint::ResumeSnapshot { lsn, progress: progress.clone() },
                    None => StartPoint::Resume { lsn },
                };
                // A reconnection is not a new start: `always` does not snapshot again.
                let mut source = settings.source.clone();
                source.snapshot_mode = source.snapshot_mode.for_reconnect();
                source_task = tokio::spawn(pgseam_connector_pg::run(
                    source,
                    start,
                    tx,
                    feedback_tx.subscribe(),
                ));
                source_result = None;
            }
            // 6. New work, while there is room (and while no reconnection is pending: the
            //    old channel is closed then).
            message = events_rx.recv(), if room && !is_paused && restart_at.is_none() => {
                metrics.set_queue(events_rx.max_capacity(), events_rx.max_capacity() - events_rx.len());
                if let Some(encoding) = &settings.source.snapshot.reader_encoding {
                    metrics.set_converted_rows_queued(encoding.queued_rows());
                }
                match message {
                    Some(SourceMessage::Event(event)) => {
                        metrics.on_event(&event);
                        records.clear();
                        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
                        let block = tx_monitor.as_mut().and_then(|m| m.on_event(&event, &mut records));
                        let conv = or_break!('pipeline, converter.as_mut().ok_or_else(|| anyhow!("the converter was lost")));
                        if conv.needs_registry(&event) {
                            // First use of this table version with Avro: registering its
                            // schemas is blocking HTTP, kept off the async workers.
                            let mut moved = or_break!('pipeline, converter.take().ok_or_else(|| anyhow!("the converter was lost")));
                            let mut out = std::mem::take(&mut records);
                            let moved_event = event.clone();
                            let joined = tokio::task::spawn_blocking(move || {
                                let result = moved.convert_in_transaction(&moved_event, block.as_ref(), now_ns, &mut out);
                                (moved, out, result)
                            })
                            .await
                            .map_err(|e| anyhow!("schema registration task failed: {e}"));
                            let (moved, out, result) = or_break!('pipeline, joined);
                            converter = Some(moved);
                            records = out;
                            or_break!('pipeline, result.inspect_err(|_| metrics.on_erroneous_event(&event)).context("cannot convert an event"));
                        } else {
                            or_break!('pipeline, conv.convert_in_transaction(&event, block.as_ref(), now_ns, &mut records).inspect_err(|_| metrics.on_erroneous_event(&event)).context("cannot convert an event"));
                        }
                        // Null sink: the encoded records are dropped here, acknowledged at once.
                        let Some(sink) = &sink else { continue };
                        or_break!('pipeline, send_records(sink, records.drain(..), &event.position, &mut sequence, &mut header_text, skip).await);
                    }
                    Some(SourceMessage::Encoded(mut run)) => {
                        // Snapshot rows their reader converted: their records go as they are
                        // (the run's place in the queue is given back when it is dropped).
                        metrics.on_encoded_rows(&run);
                        let Some(sink) = &sink else { continue };
                        // In slices, so that a stop need not wait for a whole run to find room
                        // in the producer (what is not sent is read again after the restart).
                        let mut records = std::mem::take(&mut run.records).into_iter();
                        while records.len() > 0 && !*shutdown.borrow() {
                            or_break!('pipeline, send_records(sink, records.by_ref().take(ENCODED_SLICE), &run.position, &mut sequence, &mut header_text, skip).await);
                        }
                    }
                    Some(SourceMessage::TransactionBegun { tx_id, lsn, commit_lsn, commit_ts_us }) => {
                        sequence = 0;
                        in_source_transaction = true;
                        current_commit_lsn = Some(commit_lsn);
                        if let (Some(monitor), Some(sink)) = (tx_monitor.as_mut(), &sink) {
                            records.clear();
                            records.push(monitor.begin(tx_id, lsn, commit_ts_us));
                            let position = Position::Stream { lsn, commit_lsn, tx_id, commit_ts_us };
                            or_break!('pipeline, send_records(sink, records.drain(..), &position, &mut sequence, &mut header_text, skip).await);
                        } else if let Some(monitor) = tx_monitor.as_mut() {
                            monitor.begin(tx_id, lsn, commit_ts_us);
                        }
                    }
                    Some(SourceMessage::Message(message)) => {
                        records.clear();
                        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
                        let block = tx_monitor.as_mut().and_then(|m| m.on_message(&message, &mut records));
                        let mut conv = or_break!('pipeline, converter.take().ok_or_else(|| anyhow!("the converter was lost")));
                        let record = if conv.needs_message_registry() {
                            // The first message with Avro registers the message schemas:
                            // blocking HTTP, kept off the async workers.
                            let moved = message.clone();
                            let joined = tokio::task::spawn_blocking(move || {
                                let record = conv.convert_message(&moved, block.as_ref(), now_ns);
                                (conv, record)
                            })
                            .await
                            .map_err(|e| anyhow!("schema registration task failed: {e}"));
                            let (moved_conv, record) = or_break!('pipeline, joined);
                            conv = moved_conv;
                            record
                        } else {
                            conv.convert_message(&message, block.as_ref(), now_ns)
                        };
                        converter = Some(conv);
                        records.push(or_break!('pipeline, record.context("cannot convert a logical decoding message")));
                        if let Some(sink) = &sink {
                            if !message.transactional {
                                sequence = 0;
                            }
                            or_break!('pipeline, send_records(sink, records.drain(..), &message.position, &mut sequence, &mut header_text, skip).await);
                            if !message.transactional {
                                sequence = 0;
                            }
                        }
                    }
                    Some(SourceMessage::TransactionCommitted { commit_lsn, end_lsn, tx_id, commit_ts_us }) => {
                        // The END record goes before the checkpoint: durable before the offset.
                        if let Some(end) = tx_monitor.as_mut().and_then(|m| m.end(end_lsn)) {
                            if let Some(sink) = &sink {
                                records.clear();
                                records.push(end);
                                let position = Position::Stream { lsn: end_lsn, commit_lsn, tx_id, commit_ts_us };
                                or_break!('pipeline, send_records(sink, records.drain(..), &position, &mut sequence, &mut header_text, skip).await);
                            }
                        }
                        metrics.on_transaction_committed(tx_id);
                        metrics.on_wal_end(end_lsn.0);
                        sequence = 0;
                        in_source_transaction = false;
                        current_commit_lsn = None;
                        skip = None;
                        let offset = ConnectorOffset::Streaming(StreamOffset::after_commit(end_lsn, tx_id, commit_ts_us));
                        resume_lsn = Some(end_lsn);
                        last_streaming = Some(offset.clone());
                        let offset = with_snapshot_progress(offset, &snapshot_progress);
                        queue_checkpoint(sink.as_ref(), &mut checkpoints, Checkpoint { offset, urgent: false });
                    }
                    Some(SourceMessage::CaughtUp { wal_end }) => {
                        metrics.on_wal_end(wal_end.0);
                        // Keeps the last transaction's identity; only the resume point moves.
                        // Nothing is pending up to wal_end: the offset of a COMMIT there.
                        let (tx_id, ts_usec) = match &last_streaming {
                            Some(ConnectorOffset::Streaming(s)) => (s.tx_id, s.ts_usec),
                            Some(ConnectorOffset::SnapshotCompleted { tx_id, ts_usec, .. }) => (*tx_id, *ts_usec),
                            _ => (None, 0),
                        };
                        resume_lsn = Some(wal_end);
                        let offset = ConnectorOffset::Streaming(StreamOffset { tx_id, ..StreamOffset::after_commit(wal_end, 0, ts_usec) });
                        last_streaming = Some(offset.clone());
                        let offset = with_snapshot_progress(offset, &snapshot_progress);
                        queue_checkpoint(sink.as_ref(), &mut checkpoints, Checkpoint { offset, urgent: false });
                    }
                    Some(SourceMessage::Notification(notification)) => {
                        or_break!('pipeline, send_notification(&settings, sink.as_ref(), &notification).await.context("cannot send a notification to notification.sink.topic.name"));
                    }
                    Some(SourceMessage::Heartbeat { ts_ms }) => {
                        if let Some(sink) = &sink {
                            or_break!('pipeline, sink.send(&heartbeat_record(&settings, ts_ms)).await);
                        }
                    }
                    Some(SourceMessage::StreamingStarted { start_lsn }) => {
                        ever_streamed = true;
                        next_wait = settings.reconnect_wait;
                        resume_lsn = Some(resume_lsn.map_or(start_lsn, |lsn| lsn.max(start_lsn)));
                    }
                    Some(SourceMessage::SnapshotCompleted { consistent_point }) => {
                        snapshot_progress = None;
                        metrics.on_snapshot_completed();
                        sequence = 0;
                        resume_lsn = Some(consistent_point);
                        let checkpoint = Checkpoint {
                            offset: ConnectorOffset::SnapshotCompleted { lsn: consistent_point, tx_id: None, ts_usec: now_micros() },
                            urgent: true,
                        };
                        queue_checkpoint(sink.as_ref(), &mut checkpoints, checkpoint);
                    }
                    Some(SourceMessage::CreatingSlot { proceed }) => {
                        // Written before the slot exists: a crash from here on leaves a slot
                        // that is ours to replace on the next start.
                        let incomplete = ConnectorOffset::SnapshotIncomplete { ts_usec: now_micros() };
                        or_break!('pipeline, store_offset(&offsets, &key, &incomplete).await);
                        stored_offset = Some(incomplete);
                        let _ = proceed.send(());
                    }
                    Some(SourceMessage::SlotCreated { consistent_point, proceed }) => {
                        // "Slot created at C", stored before the snapshot reads anything: from
                        // here on a crash resumes the snapshot (see `SnapshotProgress`).
                        tracing::info!(connector = %name, %consistent_point, "slot created");
                        let progress = SnapshotProgress::new(consistent_point);
                        let offset = ConnectorOffset::SnapshotResumable { progress: progress.clone(), stream: None, ts_usec: now_micros() };
                        or_break!('pipeline, store_offset(&offsets, &key, &offset).await);
                        stored_offset = Some(offset);
                        snapshot_progress = Some(progress);
                        let _ = proceed.send(());
                    }
                    Some(SourceMessage::SnapshotProgress(ProgressUpdate::Incremental(progress))) => {
                        // A signalled incremental snapshot started or changed its tables. It
                        // may come inside the signal's transaction (before its commit, so the
                        // commit's offset carries it): no records, the sequence goes on.
                        tracing::info!(connector = %name, progress = %encode_progress(&progress), "incremental snapshot progress");
                        snapshot_progress = Some(progress.clone());
                        // Nothing committed since the start yet: the start position.
                        let stream = match &last_streaming {
                            Some(ConnectorOffset::Streaming(s)) => Some(s.clone()),
                            Some(ConnectorOffset::SnapshotResumable { stream: Some(s), .. }) => Some(s.clone()),
                            _ => resume_lsn.map(|lsn| StreamOffset { tx_id: None, ..StreamOffset::after_commit(lsn, 0, now_micros()) }),
                        };
                        let offset = ConnectorOffset::SnapshotResumable { progress, stream, ts_usec: now_micros() };
                        queue_checkpoint(sink.as_ref(), &mut checkpoints, Checkpoint { offset, urgent: true });
                    }
                    Some(SourceMessage::SnapshotProgress(update)) => {
                        // A checkpoint like a transaction's: stored once the rows before it are
                        // acknowledged, at once (a chunk or window is worth a write).
                        let Some(progress) = snapshot_progress.as_mut() else {
                            tracing::warn!(connector = %name, ?update, "snapshot progress without a snapshot under way; ignored");
                            continue;
                        };
                        let stream = match &last_streaming {
                            Some(ConnectorOffset::Streaming(s)) => Some(s.clone()),
                            Some(ConnectorOffset::SnapshotResumable { stream, .. }) => stream.clone(),
                            _ => None,
                        };
                        let offset = if update == ProgressUpdate::Finished {
                            let consistent_point = progress.consistent_point;
                            if progress.incremental.is_some() {
                                tracing::info!(connector = %name, "the incremental snapshot is complete");
                            } else {
                                metrics.on_snapshot_completed();
                                tracing::info!(connector = %name, "the resumed initial snapshot is complete");
                            }
                            snapshot_progress = None;
                            match stream {
                                Some(s) => ConnectorOffset::Streaming(s),
                                None => ConnectorOffset::SnapshotCompleted { lsn: consistent_point, tx_id: None, ts_usec: now_micros() },
                            }
                        } else {
                            progress.apply(&update);
                            ConnectorOffset::SnapshotResumable { progress: progress.clone(), stream, ts_usec: now_micros() }
                        };
                        sequence = 0;
                        queue_checkpoint(sink.as_ref(), &mut checkpoints, Checkpoint { offset, urgent: true });
                    }
                    None => {
                        // The source has ended and everything it sent is queued.
                        let outcome = match source_result.take() {
                            Some(outcome) => outcome,
                            None => (&mut source_task).await,
                        };
                        // From here on no source task is running.
                        source_result = Some(Ok(Ok(())));
                        match outcome {
                            Ok(Err(err)) if ever_streamed && is_retriable_after_streaming(&err) => {
                                let wait = next_wait;
                                next_wait = (next_wait * 2).min(MAX_RECONNECT_WAIT.max(settings.reconnect_wait));
                                tracing::warn!(
                                    connector = %name,
                                    error = %err,
                                    wait_ms = wait.as_millis() as u64,
                                    resume_lsn = ?resume_lsn,
                                    "lost the connection to PostgreSQL; reconnecting after a pause"
                                );
                                restart_at = Some(tokio::time::Instant::now() + wait);
                            }
                            // `initial_only`: the snapshot is complete (and queued); stop.
                            Ok(Ok(())) if !settings.source.snapshot_mode.streams() => {
                                tracing::info!(connector = %name, "snapshot.mode=initial_only: the snapshot is complete; the connector stops without streaming");
                                break Ok(());
                            }
                            outcome => {
                                break outcome_to_anyhow(outcome)
                                    .and(Err(anyhow!("the PostgreSQL source stopped unexpectedly")));
                            }
                        }
                    }
                }
            }
        }
        // Exactly-once: checkpoints become candidate commit points; commit when one is due.
        if let (Some(eos), Some(sink)) = (eos.as_mut(), sink.as_ref()) {
            eos.absorb(&mut checkpoints, in_source_transaction);
            if in_source_transaction && eos.bound_reached(sink) {
                // A large source transaction: commit inside it, at this event boundary, with
                // the position "the first `sequence` records of this transaction".
                // Resume where this transaction's replay starts: the last boundary.
                let base = match &last_streaming {
                    Some(ConnectorOffset::Streaming(s))
                    | Some(ConnectorOffset::SnapshotResumable {
                        stream: Some(s), ..
                    }) => Some(s.clone()),
                    _ => resume_lsn.map(|lsn| StreamOffset {
                        tx_id: None,
                        ..StreamOffset::after_commit(lsn, 0, now_micros())
                    }),
                };
                if let (Some(commit_lsn), Some(base)) = (current_commit_lsn, base) {
                    let records = skip
                        .filter(|s| s.commit_lsn == commit_lsn)
                        .map_or(sequence, |s| s.records.max(sequence));
                    let offset = ConnectorOffset::Streaming(StreamOffset {
                        skip: Some(SkipWithin {
                            commit_lsn,
                            records,
                        }),
                        ..base
                    });
                    eos.commit_point = Some((
                        sink.next_seq(),
                        with_snapshot_progress(offset, &snapshot_progress),
                    ));
                }
            }
            if eos.commit_due(sink, events_rx.is_empty(), settings.offset_flush_interval) {
                or_break!('pipeline, eos.commit(sink, &offsets, &key, &mut stored_offset, &feedback_tx, &metrics).await);
            }
        }
    };

    // Clean stop or failure: deliver what is in flight, store what is durable, tell the slot,
    // within `task.shutdown.graceful.timeout.ms` (module docs, "Stopping").
    let stop_deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    feedback_tx.send_modify(|f| f.stop_reading = true);
    let mut outcome = outcome;
    if let (Some(eos), Some(sink)) = (eos.as_mut(), sink.as_ref()) {
        // Exactly-once: commit up to the last boundary if nothing was sent after it, else
        // abort (records after it would be sent again after the restart); never commit after
        // a failure.
        eos.absorb(&mut checkpoints, in_source_transaction);
        let mut committed = false;
        if outcome.is_ok() && eos.at_commit_point(sink) {
            match eos
                .commit(
                    sink,
                    &offsets,
                    &key,
                    &mut stored_offset,
                    &feedback_tx,
                    &metrics,
                )
                .await
            {
                Ok(()) => committed = true,
                Err(err) => outcome = Err(err),
            }
        }
        if !committed && sink.in_transaction() {
            match sink.abort_transaction(EOS_CALL_TIMEOUT).await {
                Ok(()) => {
                    tracing::info!(connector = %name, "exactly-once: the open Kafka transaction was aborted; its records are sent again after the restart")
                }
                Err(err) => {
                    tracing::warn!(connector = %name, error = %err, "exactly-once: cannot abort the open Kafka transaction; the broker aborts it after transaction.timeout.ms, or when the next instance starts")
                }
            }
        }
    }
    let watermark = match &sink {
        Some(sink) => {
            if tokio::time::timeout_at(stop_deadline, sink.wait_settled())
                .await
                .is_err()
            {
                tracing::warn!(
                    connector = %name,
                    outstanding = sink.next_seq().saturating_sub(sink.acks().watermark),
                    timeout_ms = settings.shutdown_timeout.as_millis() as u64,
                    "deliveries still outstanding when the stop's time ran out (task.shutdown.graceful.timeout.ms, offset.flush.timeout.ms): abandoned; the offset stays before them, so they are sent again after the restart"
                );
            }
            let acks = sink.acks();
            metrics.set_records_skipped(acks.skipped);
            if let Some(failure) = &acks.failure {
                tracing::error!(connector = %name, record = failure.seq, topic = failure.topic(), error = %failure.error, "delivery failed; no checkpoint after it is stored");
            }
            acks.watermark
        }
        None => u64::MAX,
    };
    take_durable(&mut checkpoints, watermark, &mut durable);
    commit(
        &offsets,
        &key,
        &mut durable,
        &mut stored_offset,
        &feedback_tx,
        &metrics,
    )
    .await?;
    feedback_tx.send_modify(|f| f.finished = true);
    let mut source_stopped_cleanly = false;
    if source_result.is_none() {
        // A streaming source sees `finished` and sends its final status update; one inside the
        // initial snapshot has already stopped at `stop_reading`. One blocked on the full
        // channel is stopped by closing it (what it would have sent is not durable; the next
        // start resumes from the stored offset).
        let grace = stop_deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(SOURCE_STOP_GRACE);
        let mut joined = tokio::time::timeout(grace, &mut source_task).await.ok();
        if joined.is_none() {
            events_rx.close();
            joined = tokio::time::timeout(SOURCE_STOP_GRACE, &mut source_task)
                .await
                .ok();
        }
        match joined {
            Some(Ok(Err(SourceError::ConsumerGone))) => {}
            Some(Ok(Err(err))) if outcome.is_ok() => return Err(anyhow!(err)),
            Some(Ok(Ok(()))) => source_stopped_cleanly = true,
            Some(_) => {}
            None => {
                tracing::warn!(connector = %name, "source did not stop in time; closing its connection");
                source_task.abort();
            }
        }
    }
    if outcome.is_ok() && settings.source.drop_slot_on_stop && source_stopped_cleanly {
        // The source dropped the slot after its final status update; an offset pointing into
        // that slot would make the next start fail, so the next start is a fresh one.
        offsets
            .remove(&key)
            .await
            .context("cannot remove the offset after dropping the slot")?;
        tracing::info!(connector = %name, "slot.drop.on.stop=true: slot and offset removed; the next start begins afresh");
        return Ok(());
    }
    tracing::info!(connector = %name, offset = ?stored_offset, "stopped");
    outcome
}

/// How long one transactional call (`init_transactions`, commit, abort) may block.
const EOS_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// With `transaction.boundary=poll`, the shortest time between commits of batches smaller than
/// `max.batch.size`, which end when the source has nothing queued. Debezium's `poll()` returns
/// whatever its queue holds, which fills while Kafka Connect commits; pgseam's pipeline often
/// keeps up with the source, and without this a trickle of transactions would cost one Kafka
/// commit (a flush and an EndTxn round trip) per PostgreSQL transaction. 20 ms, as pgseam's
/// default `linger.ms`: at most that much latency added.
const EOS_POLL_LINGER: Duration = Duration::from_millis(20);

/// How often a commit that failed with a retriable error (a timeout) is tried again.
const EOS_COMMIT_RETRIES: u32 = 3;

/// Starts exactly-once delivery: fences older producers with the connector's
/// `transactional.id` (which also aborts the transaction a crashed or zombie instance left
/// open), then reads the offsets topic again, so that the offset the pipeline resumes from is
/// the last committed one.
async fn start_exactly_once(
    settings: &ExactlyOnceSettings,
    sink: &KafkaSink,
    offsets: &OffsetStore,
    name: &str,
) -> anyhow::Result<ExactlyOnce> {
    if !offsets.is_topic().await {
        return Err(anyhow!(
            "exactly-once delivery needs the offsets topic (`offset.storage.topic`), not {}",
            offsets.location()
        ));
    }
    sink.init_transactions(EOS_CALL_TIMEOUT)
        .await
        .with_context(|| {
            format!(
                "exactly-once delivery: cannot initialise the transactional producer (transactional.id `{}`)",
                settings.transactional_id
            )
        })?;
    offsets
        .refresh()
        .await
        .context("exactly-once delivery: cannot read the committed offsets")?;
    tracing::info!(connector = %name, transactional_id = %settings.transactional_id, boundary = ?settings.boundary,
        "exactly-once delivery: older producers fenced, committed offsets read");
    Ok(ExactlyOnce {
        bounds: settings.boundary,
        commit_point: None,
        urgent: false,
        timer_due: false,
        txn_start_seq: sink.next_seq(),
        last_commit: tokio::time::Instant::now(),
    })
}

/// Exactly-once delivery's state in the commit coordinator.
///
/// A Kafka transaction holds the records sent since the previous commit and ends, at a
/// *commit point* — a checkpoint queued at a PostgreSQL transaction boundary (after a
/// transaction's commit, a "caught up" position, a snapshot step) with no record sent after
/// it — with the offset record of that checkpoint, written to the offsets topic inside the
/// transaction, then `commit_transaction`. Only after the commit is the flush LSN published.
/// Records sent after the last commit point (part of a PostgreSQL transaction) are never
/// committed without their offset: at shutdown they are aborted.
struct ExactlyOnce {
    bounds: TransactionBounds,
    /// The latest checkpoint at a boundary: (records sent before it, offset).
    commit_point: Option<(u64, ConnectorOffset)>,
    /// A checkpoint since the last commit asked to be stored at once (snapshot steps).
    urgent: bool,
    /// The flush timer fired since the last commit.
    timer_due: bool,
    /// The sink's sequence number when the current Kafka transaction began.
    txn_start_seq: u64,
    last_commit: tokio::time::Instant,
}

impl ExactlyOnce {
    /// Takes the queued checkpoints: the last one becomes the commit point when it is at a
    /// transaction boundary (`in_source_transaction` false). A checkpoint inside a source
    /// transaction (an incremental snapshot's signal) is carried by its commit's offset.
    fn absorb(&mut self, checkpoints: &mut Checkpoints, in_source_transaction: bool) {
        while let Some((after, checkpoint)) = checkpoints.pop_front() {
            if !in_source_transaction {
                self.urgent |= checkpoint.urgent;
                self.commit_point = Some((after, checkpoint.offset));
            }
        }
    }

    /// Whether the commit point is at the end of what was sent.
    fn at_commit_point(&self, sink: &KafkaSink) -> bool {
        self.commit_point
            .as_ref()
            .is_some_and(|(after, _)| *after == sink.next_seq())
    }

    /// Whether to commit now: at a commit point, with the bound reached. A commit point with
    /// no records in the transaction (the source is idle, its position moves) is committed at
    /// most every `offset.flush.interval.ms`.
    fn commit_due(&self, sink: &KafkaSink, source_idle: bool, flush_interval: Duration) -> bool {
        if !self.at_commit_point(sink) {
            return false;
        }
        let records = sink.next_seq() - self.txn_start_seq;
        if self.urgent && records > 0 {
            return true;
        }
        let elapsed = self.last_commit.elapsed();
        if records == 0 {
            return self.timer_due || elapsed >= flush_interval;
        }
        match self.bounds {
            TransactionBounds::Poll { max_records } => {
                records >= max_records || (source_idle && elapsed >= EOS_POLL_LINGER)
            }
            TransactionBounds::Interval(interval) => self.timer_due || elapsed >= interval,
        }
    }

    /// With `poll`, at a commit point with records and nothing queued by the source, before
    /// [`EOS_POLL_LINGER`] has passed: when to look again.
    fn linger_until(&self, sink: &KafkaSink, source_idle: bool) -> Option<tokio::time::Instant> {
        let TransactionBounds::Poll { .. } = self.bounds else {
            return None;
        };
        let records = sink.next_seq() - self.txn_start_seq;
        let at = self.last_commit + EOS_POLL_LINGER;
        (source_idle
            && records > 0
            && self.at_commit_point(sink)
            && tokio::time::Instant::now() < at)
            .then_some(at)
    }

    /// Whether the current Kafka transaction reached its bound (records or time).
    fn bound_reached(&self, sink: &KafkaSink) -> bool {
        let records = sink.next_seq() - self.txn_start_seq;
        records > 0
            && match self.bounds {
                TransactionBounds::Poll { max_records } => records >= max_records,
                TransactionBounds::Interval(interval) => {
                    self.timer_due || self.last_commit.elapsed() >= interval
                }
            }
    }

    /// Writes the commit point's offset record in the open transaction and commits it; then
    /// notes the offset in the store and publishes its LSN to the source. A retriable failure
    /// is retried; any other leaves the transaction to be aborted by the shutdown path.
    async fn commit(
        &mut self,
        sink: &KafkaSink,
        offsets: &OffsetStore,
        key: &OffsetKey,
        stored: &mut Option<ConnectorOffset>,
        feedback: &watch::Sender<Feedback>,
        metrics: &ConnectorMetrics,
    ) -> anyhow::Result<()> {
        let Some((_, offset)) = self.commit_point.take() else {
            return Ok(());
        };
        let (topic, key_bytes, value) = offsets
            .topic_record(key, &offset)
            .await
            .ok_or_else(|| anyhow!("exactly-once delivery needs the offsets topic"))?;
        sink.mark_topic_known(&topic);
        sink.send_parts(&topic, Some(&key_bytes), Some(&value), std::iter::empty())
            .await
            .with_context(|| format!("exactly-once: cannot write the offset to {topic}"))?;
        let mut attempt = 0;
        loop {
            match sink.commit_transaction(EOS_CALL_TIMEOUT).await {
                Ok(()) => break,
                Err(SinkError::Transaction {
                    kind: TxnErrorKind::Retriable,
                    ..
                }) if attempt < EOS_COMMIT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(attempt, "exactly-once: committing the Kafka transaction timed out; trying again");
                }
                Err(err) => {
                    return Err(anyhow!(err).context(
                        "exactly-once: the Kafka transaction could not be committed; it is aborted and the connector stops (a restart resumes from the last committed offset)",
                    ))
                }
            }
        }
        offsets.note_committed(key, &offset).await;
        self.urgent = false;
        self.timer_due = false;
        self.txn_start_seq = sink.next_seq();
        self.last_commit = tokio::time::Instant::now();
        let mut durable = Some(offset);
        publish_durable(&mut durable, stored, feedback, metrics);
        Ok(())
    }
}

/// While an initial snapshot is being resumed, a streaming offset also carries its progress
/// (so that a crash continues the snapshot instead of only streaming).
fn with_snapshot_progress(
    offset: ConnectorOffset,
    progress: &Option<SnapshotProgress>,
) -> ConnectorOffset {
    match (offset, progress) {
        (ConnectorOffset::Streaming(stream), Some(progress)) => {
            ConnectorOffset::SnapshotResumable {
                progress: progress.clone(),
                ts_usec: stream.ts_usec,
                stream: Some(stream),
            }
        }
        (offset, _) => offset,
    }
}

/// Failures worth a reconnection once the source has streamed: transient ones, and a slot
/// still held by another connection — after a network cut that is usually our own previous
/// walsender, which the server only reaps after `wal_sender_timeout`.
fn is_retriable_after_streaming(err: &SourceError) -> bool {
    err.class() == ErrorClass::Transient || matches!(err, SourceError::SlotInUse { .. })
}

/// Waits until the watermark reaches `watermark`, a delivery failed, or (with `want_room`) new
/// records fit. With the null sink everything sent is acknowledged: returns at once.
async fn wait_acks(sink: Option<&KafkaSink>, watermark: u64, want_room: bool) {
    if let Some(sink) = sink {
        sink.wait(watermark, want_room).await;
    }
}

async fn sleep_until_optional(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stores the latest durable offset if it changed, then publishes its LSN to the source.
async fn commit(
    offsets: &OffsetStore,
    key: &OffsetKey,
    durable: &mut Option<ConnectorOffset>,
    stored: &mut Option<ConnectorOffset>,
    feedback: &watch::Sender<Feedback>,
    metrics: &ConnectorMetrics,
) -> anyhow::Result<()> {
    let Some(offset) = durable.take() else {
        return Ok(());
    };
    if stored.as_ref() != Some(&offset) {
        store_offset(offsets, key, &offset).await?;
    }
    *durable = Some(offset);
    publish_durable(durable, stored, feedback, metrics);
    Ok(())
}

/// After `durable` is stored (or committed): publishes its LSN to the source and records it
/// as stored.
fn publish_durable(
    durable: &mut Option<ConnectorOffset>,
    stored: &mut Option<ConnectorOffset>,
    feedback: &watch::Sender<Feedback>,
    metrics: &ConnectorMetrics,
) {
    let Some(offset) = durable.take() else {
        return;
    };
    if let Some(lsn) = offset.flush_lsn() {
        metrics.on_durable(lsn.0);
        feedback.send_if_modified(|f| {
            if lsn > f.durable_lsn {
                f.durable_lsn = lsn;
                true
            } else {
                false
            }
        });
    }
    *stored = Some(offset);
}

async fn store_offset(
    offsets: &OffsetStore,
    key: &OffsetKey,
    offset: &ConnectorOffset,
) -> anyhow::Result<()> {
    offsets
        .put(key, offset)
        .await
        .with_context(|| format!("cannot store the offset in {}", offsets.location()))
}

/// Now, in microseconds since the epoch (Debezium's `ts_usec` for snapshot offsets).
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Sends `records` (draining it) with their position headers; the sink tracks their
/// acknowledgements by sequence number.
async fn send_records(
    sink: &KafkaSink,
    records: impl IntoIterator<Item = KafkaRecord>,
    position: &Position,
    sequence: &mut u64,
    header_text: &mut PositionText,
    skip: Option<SkipWithin>,
) -> Result<(), SinkError> {
    // Records of a transaction already delivered (a stored position inside it): numbered as
    // before, not sent again.
    let skipping = match (skip, position) {
        (Some(skip), Position::Stream { commit_lsn, .. }) if *commit_lsn == skip.commit_lsn => {
            Some(skip.records)
        }
        _ => None,
    };
    let lsn = match position {
        Position::Snapshot {
            consistent_point, ..
        } => consistent_point.0,
        Position::Stream { lsn, .. } => lsn.0,
    };
    for record in records {
        if skipping.is_some_and(|delivered| *sequence < delivered) {
            *sequence += 1;
            continue;
        }
        let headers = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()));
        sink.send_parts_at(
            &record.topic,
            record.key.as_deref(),
            record.value.as_deref(),
            headers.chain(header_text.render(position, *sequence)),
            Some(lsn),
        )
        .await?;
        *sequence += 1;
    }
    Ok(())
}

/// The position headers' values of one record (see the module docs), rendered into reused
/// buffers: no allocation per record. Renders nothing when the headers are turned off.
#[derive(Default)]
struct PositionText {
    enabled: bool,
    lsn: LsnText,
    commit_lsn: LsnText,
    seq: itoa::Buffer,
}

impl PositionText {
    fn new(enabled: bool) -> Self {
        PositionText {
            enabled,
            ..PositionText::default()
        }
    }

    fn render<'a>(
        &'a mut self,
        position: &Position,
        seq: u64,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let seq = self.seq.format(seq).as_bytes();
        let headers: [Option<(&str, &[u8])>; 3] = match position {
            _ if !self.enabled => [None, None, None],
            Position::Snapshot {
                consistent_point, ..
            } => [
                Some((HEADER_LSN, self.lsn.render(*consistent_point))),
                Some((HEADER_SEQ, seq)),
                Some((HEADER_SNAPSHOT, b"true")),
            ],
            Position::Stream {
                lsn, commit_lsn, ..
            } => [
                Some((HEADER_LSN, self.lsn.render(*lsn))),
                Some((HEADER_COMMIT_LSN, self.commit_lsn.render(*commit_lsn))),
                Some((HEADER_SEQ, seq)),
            ],
        };
        headers.into_iter().flatten()
    }
}

/// An LSN in PostgreSQL's text form (`16/B374D848`, as `Lsn`'s `Display`), without `fmt`.
#[derive(Default)]
struct LsnText {
    buf: [u8; 17],
}

impl LsnText {
    fn render(&mut self, lsn: Lsn) -> &[u8] {
        fn hex(mut value: u32, out: &mut [u8]) -> usize {
            const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            let mut tmp = [0u8; 8];
            let mut n = 0;
            loop {
                tmp[n] = DIGITS[(value & 0xF) as usize];
                n += 1;
                value >>= 4;
                if value == 0 {
                    break;
                }
            }
            for (i, digit) in tmp[..n].iter().rev().enumerate() {
                out[i] = *digit;
            }
            n
        }
        let high = hex((lsn.0 >> 32) as u32, &mut self.buf);
        self.buf[high] = b'/';
        let low = hex(lsn.0 as u32, &mut self.buf[high + 1..]);
        &self.buf[..high + 1 + low]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgseam_sink_kafka::AckWindow;

    fn checkpoint(lsn: u64, urgent: bool) -> Checkpoint {
        Checkpoint {
            offset: ConnectorOffset::Streaming(StreamOffset::after_commit(Lsn(lsn), 1, 0)),
            urgent,
        }
    }

    #[test]
    fn lsn_text_matches_display() {
        let mut text = LsnText::default();
        for lsn in [0, 1, 0xB374_D848, 0x16_B374_D848, u64::MAX, 0x1_0000_0000] {
            let lsn = Lsn(lsn);
            assert_eq!(text.render(lsn), lsn.to_string().as_bytes());
        }
    }

    fn rendered(text: &mut PositionText, position: &Position, seq: u64) -> Vec<(String, Vec<u8>)> {
        text.render(position, seq)
            .map(|(k, v)| (k.to_owned(), v.to_vec()))
            .collect()
    }

    #[test]
    fn position_headers_as_before() {
        assert_eq!(
            [HEADER_LSN, HEADER_COMMIT_LSN, HEADER_SEQ, HEADER_SNAPSHOT],
            [
                "pgseam.lsn",
                "pgseam.commit_lsn",
                "pgseam.seq",
                "pgseam.snapshot"
            ]
        );
        let mut text = PositionText::new(true);
        let stream = Position::Stream {
            lsn: Lsn(0x16_B374_D848),
            commit_lsn: Lsn(0x16_B374_D900),
            tx_id: 7,
            commit_ts_us: 0,
        };
        assert_eq!(
            rendered(&mut text, &stream, 42),
            vec![
                (HEADER_LSN.to_owned(), b"16/B374D848".to_vec()),
                (HEADER_COMMIT_LSN.to_owned(), b"16/B374D900".to_vec()),
                (HEADER_SEQ.to_owned(), b"42".to_vec()),
            ]
        );
        let snapshot = Position::Snapshot {
            consistent_point: Lsn(0x1_0000_00A0),
            last: false,
        };
        assert_eq!(
            rendered(&mut text, &snapshot, 7),
            vec![
                (HEADER_LSN.to_owned(), b"1/A0".to_vec()),
                (HEADER_SEQ.to_owned(), b"7".to_vec()),
                (HEADER_SNAPSHOT.to_owned(), b"true".to_vec()),
            ]
        );
        let mut off = PositionText::new(false);
        assert!(rendered(&mut off, &stream, 42).is_empty());
        assert!(rendered(&mut off, &snapshot, 7).is_empty());
    }

    #[test]
    fn checkpoints_wait_for_every_record_before_them() {
        // Records 0..3, checkpoint A, records 3..5, checkpoint B.
        let mut window = AckWindow::new(64);
        let mut checkpoints = Checkpoints::new();
        let mut durable = None;
        for _ in 0..3 {
            window.register();
        }
        checkpoints.push_back((window.next(), checkpoint(100, false)));
        for _ in 0..2 {
            window.register();
        }
        checkpoints.push_back((window.next(), checkpoint(200, true)));
        // Reports across partitions, out of order: 1, 4, 3 first.
        for seq in [1, 4, 3] {
            window.ack(seq);
        }
        assert!(!take_durable(
            &mut checkpoints,
            window.watermark(),
            &mut durable
        ));
        assert_eq!(durable, None, "records 0 and 2 outstanding");
        window.ack(0);
        take_durable(&mut checkpoints, window.watermark(), &mut durable);
        assert_eq!(durable, None, "record 2 outstanding");
        window.ack(2);
        assert!(take_durable(
            &mut checkpoints,
            window.watermark(),
            &mut durable
        ));
        assert_eq!(
            durable,
            Some(checkpoint(200, true).offset),
            "both durable, B urgent"
        );
        assert!(checkpoints.is_empty());
    }

    #[test]
    fn a_failed_delivery_keeps_later_checkpoints_from_being_stored() {
        let mut window = AckWindow::new(64);
        let mut checkpoints = Checkpoints::new();
        let mut durable = None;
        window.register(); // 0
        checkpoints.push_back((window.next(), checkpoint(100, false)));
        window.register(); // 1: fails
        window.register(); // 2
        checkpoints.push_back((window.next(), checkpoint(200, false)));
        window.ack(2);
        window.fail(1);
        window.ack(0);
        take_durable(&mut checkpoints, window.watermark(), &mut durable);
        assert_eq!(durable, Some(checkpoint(100, false).offset));
        assert_eq!(window.failed(), Some(1));
        assert_eq!(
            checkpoints.len(),
            1,
            "the checkpoint after the failure stays queued"
        );
    }

    #[test]
    fn a_checkpoint_with_nothing_before_it_is_durable_at_once() {
        // The null sink (and a checkpoint right after an acknowledged one) queue it behind
        // records that are all acknowledged.
        let mut checkpoints = Checkpoints::new();
        let mut durable = None;
        queue_checkpoint(None, &mut checkpoints, checkpoint(5, true));
        queue_checkpoint(None, &mut checkpoints, checkpoint(6, false));
        assert!(take_durable(&mut checkpoints, u64::MAX, &mut durable));
        assert_eq!(
            durable,
            Some(checkpoint(6, false).offset),
            "the later one wins"
        );
        assert!(checkpoints.is_empty());
    }

    fn idle_sink() -> KafkaSink {
        // Nothing listens there: records are only enqueued, which is all `next_seq` needs.
        KafkaSink::new(&KafkaSinkConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            ..KafkaSinkConfig::default()
        })
        .unwrap()
    }

    fn exactly_once(bounds: TransactionBounds) -> ExactlyOnce {
        ExactlyOnce {
            bounds,
            commit_point: None,
            urgent: false,
            timer_due: false,
            txn_start_seq: 0,
            last_commit: tokio::time::Instant::now(),
        }
    }

    async fn send(sink: &KafkaSink, n: usize) {
        for _ in 0..n {
            sink.send(&OutgoingRecord {
                topic: "t".into(),
                ..OutgoingRecord::default()
            })
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn exactly_once_commits_only_at_a_boundary_with_nothing_after_it() {
        let sink = idle_sink();
        let hour = Duration::from_secs(3600);
        let mut eos = exactly_once(TransactionBounds::Poll { max_records: 3 });
        let mut checkpoints = Checkpoints::new();
        send(&sink, 2).await;
        // A checkpoint inside a source transaction is no commit point.
        queue_checkpoint(Some(&sink), &mut checkpoints, checkpoint(100, true));
        eos.absorb(&mut checkpoints, true);
        assert!(checkpoints.is_empty() && eos.commit_point.is_none());
        send(&sink, 1).await;
        queue_checkpoint(Some(&sink), &mut checkpoints, checkpoint(200, false));
        eos.absorb(&mut checkpoints, false);
        assert_eq!(eos.commit_point.as_ref().map(|(after, _)| *after), Some(3));
        // Three records reached the bound; the source still has events queued.
        assert!(eos.commit_due(&sink, false, hour));
        // A record after the commit point: the transaction cannot end there any more.
        send(&sink, 1).await;
        assert!(!eos.at_commit_point(&sink));
        assert!(!eos.commit_due(&sink, true, hour));
    }

    #[tokio::test]
    async fn exactly_once_poll_and_interval_bounds() {
        let sink = idle_sink();
        let hour = Duration::from_secs(3600);
        let mut checkpoints = Checkpoints::new();
        let mut poll = exactly_once(TransactionBounds::Poll { max_records: 10 });
        send(&sink, 2).await;
        queue_checkpoint(Some(&sink), &mut checkpoints, checkpoint(100, false));
        poll.absorb(&mut checkpoints, false);
        assert!(!poll.commit_due(&sink, false, hour), "2 of 10, source busy");
        assert!(
            !poll.commit_due(&sink, true, hour),
            "the source has nothing queued, but the batch lingers"
        );
        let wake = poll.linger_until(&sink, true).expect("a linger deadline");
        assert!(wake > tokio::time::Instant::now());
        assert!(poll.linger_until(&sink, false).is_none());
        poll.last_commit -= EOS_POLL_LINGER;
        assert!(
            poll.commit_due(&sink, true, hour),
            "the source has nothing queued, the linger passed"
        );
        assert!(poll.linger_until(&sink, true).is_none());
        assert!(!poll.bound_reached(&sink));

        let mut interval = exactly_once(TransactionBounds::Interval(hour));
        queue_checkpoint(Some(&sink), &mut checkpoints, checkpoint(100, false));
        interval.absorb(&mut checkpoints, false);
        assert!(
            !interval.commit_due(&sink, true, hour),
            "the interval has not passed"
        );
        interval.timer_due = true;
        assert!(interval.commit_due(&sink, false, hour));
        assert!(interval.bound_reached(&sink));

        // A position move with no records (idle source): only every flush interval.
        let mut idle = exactly_once(TransactionBounds::Poll { max_records: 10 });
        idle.txn_start_seq = sink.next_seq();
        queue_checkpoint(Some(&sink), &mut checkpoints, checkpoint(300, true));
        idle.absorb(&mut checkpoints, false);
        assert!(
            !idle.commit_due(&sink, true, hour),
            "urgent, but nothing to deliver"
        );
        assert!(idle.commit_due(&sink, true, Duration::ZERO));
    }

    #[test]
    fn records_of_a_delivered_prefix_are_skipped_but_numbered() {
        // `send_records` skips by (commit LSN, seq): the numbering goes on across the skip.
        let skip = SkipWithin {
            commit_lsn: Lsn(0x500),
            records: 2,
        };
        let inside = Position::Stream {
            lsn: Lsn(0x400),
            commit_lsn: Lsn(0x500),
            tx_id: 1,
            commit_ts_us: 0,
        };
        let other = Position::Stream {
            lsn: Lsn(0x600),
            commit_lsn: Lsn(0x700),
            tx_id: 2,
            commit_ts_us: 0,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let sink = idle_sink();
            let mut text = PositionText::default();
            let record = KafkaRecord {
                topic: "t".into(),
                key: None,
                value: None,
                headers: Vec::new().into(),
            };
            let mut sequence = 0;
            let records = vec![record.clone(), record.clone(), record.clone()];
            send_records(
                &sink,
                records,
                &inside,
                &mut sequence,
                &mut text,
                Some(skip),
            )
            .await
            .unwrap();
            assert_eq!((sequence, sink.next_seq()), (3, 1), "two skipped, one sent");
            let mut sequence = 0;
            let records = vec![record.clone(), record];
            send_records(&sink, records, &other, &mut sequence, &mut text, Some(skip))
                .await
                .unwrap();
            assert_eq!(
                (sequence, sink.next_seq()),
                (2, 3),
                "another transaction: all sent"
            );
        });
    }
}
