//! One connector's pipeline and its commit coordinator.
//!
//! ```text
//!  source task ──SourceMessage──► coordinator ──records──► KafkaSink (librdkafka queue)
//!      ▲                             │  in-flight, in order:                │
//!      │                             │  [rec, rec, CHECKPOINT(tx end), rec…]│ delivery reports
//!      │                             ▼                                      ▼
//!      └──── Feedback(durable LSN) ◄─ offset store (fsync) ◄─ checkpoint whose predecessors
//!                                                              are all acknowledged
//! ```
//!
//! The one rule: **nothing is acknowledged upstream before it is durable downstream.** Every
//! record's delivery report and every checkpoint go into one ordered queue
//! ([`FuturesOrdered`]), which yields them in the order they were produced. A checkpoint comes
//! out of the queue only after every record before it was acknowledged by Kafka, so its
//! position is durable in Kafka. The offset is then written (atomically, fsync'd), and only after
//! that is the LSN published to the source, which reports it to the slot as the flush LSN. A
//! failed delivery stops the pipeline before any later checkpoint can be stored.
//!
//! Offsets are written at most every `offset.flush.interval.ms` (Connect's setting), when the
//! snapshot completes, and at shutdown. After a crash, the stream replays from the last stored
//! offset: an ordered suffix of duplicates, never a gap.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use futures_util::stream::{FuturesOrdered, StreamExt};
use pgseam_connector_pg::{Feedback, SourceConfig, SourceMessage, StartPoint};
use pgseam_converters::avro::registry::{BasicAuth, HttpSchemaRegistry};
use pgseam_converters::{
    AvroConverter, AvroConverterConfig, Converter, JsonConverter, JsonConverterConfig, KafkaRecord,
};
use pgseam_model::Lsn;
use pgseam_sink_kafka::{KafkaSink, KafkaSinkConfig, OutgoingRecord, SinkError};
use tokio::sync::{mpsc, watch};

use crate::metrics::ConnectorMetrics;
use crate::offsets::{offset_key, ConnectorOffset, FileOffsetStore};

/// Records produced but not yet acknowledged, at most. Bounds memory and the replay after a
/// crash; large enough to keep librdkafka's batches full.
const MAX_IN_FLIGHT: usize = 100_000;

/// How long to wait for a broker at start before giving up with a clear error.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for outstanding deliveries.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub offset_file: PathBuf,
    pub offset_flush_interval: Duration,
    pub max_queue_size: usize,
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

/// A checkpoint: once durable, the offset to store.
#[derive(Clone, Debug)]
struct Checkpoint {
    offset: ConnectorOffset,
    /// Store it at once (end of snapshot) instead of waiting for the flush timer.
    urgent: bool,
}

type InFlight = Pin<Box<dyn Future<Output = Result<Option<Checkpoint>, SinkError>> + Send>>;

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
    offsets: Arc<Mutex<FileOffsetStore>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_connector_with(settings, offsets, shutdown, PipelineHooks::default()).await
}

/// [`run_connector`] with metrics and a pause switch.
pub async fn run_connector_with(
    settings: PipelineSettings,
    offsets: Arc<Mutex<FileOffsetStore>>,
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
    offsets: Arc<Mutex<FileOffsetStore>>,
    mut shutdown: watch::Receiver<bool>,
    hooks: PipelineHooks,
) -> anyhow::Result<()> {
    let PipelineHooks {
        metrics,
        mut paused,
    } = hooks;
    let mut is_paused = *paused.borrow_and_update();
    let name = settings.connector_name.clone();
    let sink = KafkaSink::new(&settings.sink).context("cannot create the Kafka producer")?;
    sink.check_reachable(BROKER_CHECK_TIMEOUT).await?;

    let key = offset_key(&settings.connector_name, &settings.topic_prefix);
    let stored = offsets
        .lock()
        .map_err(|_| anyhow!("offset store poisoned"))?
        .get(&key);
    let start = match &stored {
        None => StartPoint::Fresh {
            replace_slot: false,
        },
        Some(ConnectorOffset::SnapshotIncomplete) => {
            tracing::warn!(connector = %name, "the previous initial snapshot did not complete; starting it over");
            StartPoint::Fresh { replace_slot: true }
        }
        Some(ConnectorOffset::Streaming { lsn, .. }) => StartPoint::Resume { lsn: *lsn },
    };

    let (events_tx, mut events_rx) = mpsc::channel(settings.max_queue_size.max(1));
    let (feedback_tx, feedback_rx) = watch::channel(Feedback {
        durable_lsn: match start {
            StartPoint::Resume { lsn } => lsn,
            StartPoint::Fresh { .. } => Lsn::ZERO,
        },
        ..Feedback::default()
    });
    let mut source_task = tokio::spawn(pgseam_connector_pg::run(
        settings.source.clone(),
        start,
        events_tx,
        feedback_rx,
    ));

    // `Option` so a conversion that must register schemas can move it to a blocking thread.
    let mut converter = Some(build_converter(&settings));
    let mut records: Vec<KafkaRecord> = Vec::new();
    let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut durable: Option<ConnectorOffset> = None;
    let mut last_streaming = stored.clone();
    let mut stored_offset = stored;
    let mut flush_timer = tokio::time::interval(settings.offset_flush_interval);
    flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_result: Option<anyhow::Result<()>> = None;

    let outcome: anyhow::Result<()> = loop {
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
            // 2. Delivery reports, in production order; they free in-flight room.
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                metrics.set_producer_queue_depth(in_flight.len());
                match done {
                    Ok(Some(checkpoint)) => {
                        let urgent = checkpoint.urgent;
                        durable = Some(checkpoint.offset);
                        if urgent {
                            commit(&offsets, &key, &mut durable, &mut stored_offset, &feedback_tx, &metrics)?;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => break Err(anyhow!(err).context("a record could not be delivered to Kafka")),
                }
            }
            // 3. Periodic offset commit.
            _ = flush_timer.tick() => {
                commit(&offsets, &key, &mut durable, &mut stored_offset, &feedback_tx, &metrics)?;
            }
            // 4. The source ended on its own: an error, or the consumer side went away.
            result = &mut source_task, if source_result.is_none() => {
                let result = match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(anyhow!(err)),
                    Err(join) => Err(anyhow!("source task failed: {join}")),
                };
                source_result = Some(result);
                // Deliver what it sent before it ended, then report.
            }
            // 5. New work, while there is room.
            message = events_rx.recv(), if in_flight.len() < MAX_IN_FLIGHT && !is_paused => {
                metrics.set_queue(events_rx.max_capacity(), events_rx.max_capacity() - events_rx.len());
                match message {
                    Some(SourceMessage::Event(event)) => {
                        metrics.on_event(&event);
                        records.clear();
                        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
                        let conv = converter.as_mut().ok_or_else(|| anyhow!("the converter was lost"))?;
                        if conv.needs_registry(&event) {
                            // First use of this table version with Avro: registering its
                            // schemas is blocking HTTP, kept off the async workers.
                            let mut moved = converter.take().ok_or_else(|| anyhow!("the converter was lost"))?;
                            let mut out = std::mem::take(&mut records);
                            let (moved, out, result) = tokio::task::spawn_blocking(move || {
                                let result = moved.convert(&event, now_ns, &mut out);
                                (moved, out, result)
                            })
                            .await
                            .map_err(|e| anyhow!("schema registration task failed: {e}"))?;
                            converter = Some(moved);
                            records = out;
                            result.context("cannot convert an event")?;
                        } else {
                            conv.convert(&event, now_ns, &mut records).context("cannot convert an event")?;
                        }
                        for record in records.drain(..) {
                            let delivery = sink.send(&OutgoingRecord {
                                topic: record.topic,
                                key: record.key,
                                value: record.value,
                                headers: record.headers,
                            }).await?;
                            let sent = std::time::Instant::now();
                            let metrics = Arc::clone(&metrics);
                            in_flight.push_back(Box::pin(async move {
                                delivery.wait().await.map(|_| {
                                    metrics.on_delivered(sent.elapsed());
                                    None
                                })
                            }));
                        }
                        metrics.set_producer_queue_depth(in_flight.len());
                    }
                    Some(SourceMessage::TransactionCommitted { commit_lsn, end_lsn, tx_id, commit_ts_us }) => {
                        metrics.on_transaction_committed(tx_id);
                        metrics.on_wal_end(end_lsn.0);
                        let offset = ConnectorOffset::Streaming { lsn: end_lsn, commit_lsn, tx_id, ts_usec: commit_ts_us };
                        last_streaming = Some(offset.clone());
                        let checkpoint = Checkpoint { offset, urgent: false };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
                    }
                    Some(SourceMessage::CaughtUp { wal_end }) => {
                        metrics.on_wal_end(wal_end.0);
                        // Keeps the last transaction's identity; only the resume point moves.
                        let (commit_lsn, tx_id, ts_usec) = match &last_streaming {
                            Some(ConnectorOffset::Streaming { commit_lsn, tx_id, ts_usec, .. }) => (*commit_lsn, *tx_id, *ts_usec),
                            _ => (wal_end, 0, 0),
                        };
                        let offset = ConnectorOffset::Streaming { lsn: wal_end, commit_lsn, tx_id, ts_usec };
                        last_streaming = Some(offset.clone());
                        let checkpoint = Checkpoint { offset, urgent: false };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
                    }
                    Some(SourceMessage::SnapshotCompleted { consistent_point }) => {
                        metrics.on_snapshot_completed();
                        let checkpoint = Checkpoint {
                            offset: ConnectorOffset::Streaming { lsn: consistent_point, commit_lsn: consistent_point, tx_id: 0, ts_usec: 0 },
                            urgent: true,
                        };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
                    }
                    Some(SourceMessage::CreatingSlot { proceed }) => {
                        // Written before the slot exists: a crash from here on leaves a slot
                        // that is ours to replace on the next start.
                        store_offset(&offsets, &key, &ConnectorOffset::SnapshotIncomplete)?;
                        stored_offset = Some(ConnectorOffset::SnapshotIncomplete);
                        let _ = proceed.send(());
                    }
                    Some(SourceMessage::SlotCreated { consistent_point }) => {
                        tracing::info!(connector = %name, %consistent_point, "slot created");
                    }
                    None => {
                        // The source has ended and everything it sent is queued.
                        let result = match source_result.take() {
                            Some(result) => result,
                            None => match (&mut source_task).await {
                                Ok(Ok(())) => Ok(()),
                                Ok(Err(err)) => Err(anyhow!(err)),
                                Err(join) => Err(anyhow!("source task failed: {join}")),
                            },
                        };
                        source_result = Some(Ok(()));
                        break result.and(Err(anyhow!("the PostgreSQL source stopped unexpectedly")));
                    }
                }
            }
        }
    };

    // Clean stop or failure: deliver what is in flight, store what is durable, tell the slot.
    feedback_tx.send_modify(|f| f.stop_reading = true);
    let drain = async {
        while let Some(done) = in_flight.next().await {
            match done {
                Ok(Some(checkpoint)) => durable = Some(checkpoint.offset),
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(connector = %name, error = %err, "delivery failed during shutdown");
                    break;
                }
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, drain)
        .await
        .is_err()
    {
        tracing::error!(connector = %name, "deliveries still outstanding after {SHUTDOWN_FLUSH_TIMEOUT:?}; they will be sent again after restart");
    }
    commit(
        &offsets,
        &key,
        &mut durable,
        &mut stored_offset,
        &feedback_tx,
        &metrics,
    )?;
    feedback_tx.send_modify(|f| f.finished = true);
    if source_result.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), &mut source_task).await {
            Ok(Ok(Err(err))) if outcome.is_ok() => return Err(anyhow!(err)),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(connector = %name, "source did not stop in time; closing its connection");
                source_task.abort();
            }
        }
    }
    tracing::info!(connector = %name, offset = ?stored_offset, "stopped");
    outcome
}

/// Stores the latest durable offset if it changed, then publishes its LSN to the source.
fn commit(
    offsets: &Mutex<FileOffsetStore>,
    key: &str,
    durable: &mut Option<ConnectorOffset>,
    stored: &mut Option<ConnectorOffset>,
    feedback: &watch::Sender<Feedback>,
    metrics: &ConnectorMetrics,
) -> anyhow::Result<()> {
    let Some(offset) = durable.take() else {
        return Ok(());
    };
    if stored.as_ref() != Some(&offset) {
        store_offset(offsets, key, &offset)?;
    }
    if let ConnectorOffset::Streaming { lsn, .. } = &offset {
        let lsn = *lsn;
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
    Ok(())
}

fn store_offset(
    offsets: &Mutex<FileOffsetStore>,
    key: &str,
    offset: &ConnectorOffset,
) -> anyhow::Result<()> {
    offsets
        .lock()
        .map_err(|_| anyhow!("offset store poisoned"))?
        .put(key, offset)
        .context("cannot store the offset")
}
