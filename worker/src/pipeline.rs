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
//! Position headers: every record carries where it came from, so that a consumer can recognise
//! the duplicates an at-least-once restart replays:
//!
//! | header | value (UTF-8 text) |
//! |---|---|
//! | `__pgseam.lsn` | LSN of the change (`16/B374D848`); for snapshot rows the slot's consistent point |
//! | `__pgseam.commit_lsn` | LSN of the transaction's commit record; absent on snapshot rows |
//! | `__pgseam.seq` | 0-based number of the record within its transaction (or within the snapshot) |
//! | `__pgseam.snapshot` | `true` on snapshot rows; absent otherwise |
//!
//! `(commit_lsn, seq)` identifies a streamed record; commit LSNs grow in commit order, so a
//! consumer that remembers the last pair it applied per partition can drop any record at or
//! before it. A replay after a crash starts at a transaction boundary (or at the start of the
//! snapshot), so `seq` restarts with the transaction and the pairs repeat exactly.
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
use pgseam_converters::{JsonConverter, JsonConverterConfig, KafkaRecord};
use pgseam_model::{Lsn, Position};
use pgseam_sink_kafka::{KafkaSink, KafkaSinkConfig, OutgoingRecord, SinkError};
use tokio::sync::{mpsc, watch};

use crate::metrics::ConnectorMetrics;
use crate::offsets::{offset_key, ConnectorOffset, FileOffsetStore, OffsetKey, StreamOffset};

/// Records produced but not yet acknowledged, at most. Bounds memory and the replay after a
/// crash; large enough to keep librdkafka's batches full.
const MAX_IN_FLIGHT: usize = 100_000;

/// How long to wait for a broker at start before giving up with a clear error.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Header names of the record position (see the module docs).
pub const HEADER_LSN: &str = "__pgseam.lsn";
pub const HEADER_COMMIT_LSN: &str = "__pgseam.commit_lsn";
pub const HEADER_SEQ: &str = "__pgseam.seq";
pub const HEADER_SNAPSHOT: &str = "__pgseam.snapshot";

/// How long shutdown waits for outstanding deliveries.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything one connector's pipeline needs, already validated.
#[derive(Clone)]
pub struct PipelineSettings {
    pub connector_name: String,
    pub topic_prefix: String,
    pub source: SourceConfig,
    pub converter: JsonConverterConfig,
    pub sink: KafkaSinkConfig,
    pub offset_file: PathBuf,
    pub offset_flush_interval: Duration,
    pub max_queue_size: usize,
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
        .get(&key)?;
    let start = match stored.as_ref().map(|o| (o, o.resume_lsn())) {
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

    let mut converter = JsonConverter::new(settings.converter.clone());
    let mut records: Vec<KafkaRecord> = Vec::new();
    let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut durable: Option<ConnectorOffset> = None;
    let mut last_streaming = stored.clone();
    let mut stored_offset = stored;
    let mut flush_timer = tokio::time::interval(settings.offset_flush_interval);
    flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_result: Option<anyhow::Result<()>> = None;
    // Records sent in the current transaction (or snapshot): the `__pgseam.seq` header.
    let mut sequence: u64 = 0;

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
                        converter.convert(&event, now_ns, &mut records).context("cannot convert an event")?;
                        for record in records.drain(..) {
                            let mut headers = record.headers;
                            push_position_headers(&mut headers, &event.position, sequence);
                            sequence += 1;
                            let delivery = sink.send(&OutgoingRecord {
                                topic: record.topic,
                                key: record.key,
                                value: record.value,
                                headers,
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
                    Some(SourceMessage::TransactionCommitted { end_lsn, tx_id, commit_ts_us, .. }) => {
                        metrics.on_transaction_committed(tx_id);
                        metrics.on_wal_end(end_lsn.0);
                        sequence = 0;
                        let offset = ConnectorOffset::Streaming(StreamOffset::after_commit(end_lsn, tx_id, commit_ts_us));
                        last_streaming = Some(offset.clone());
                        let checkpoint = Checkpoint { offset, urgent: false };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
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
                        let offset = ConnectorOffset::Streaming(StreamOffset { tx_id, ..StreamOffset::after_commit(wal_end, 0, ts_usec) });
                        last_streaming = Some(offset.clone());
                        let checkpoint = Checkpoint { offset, urgent: false };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
                    }
                    Some(SourceMessage::SnapshotCompleted { consistent_point }) => {
                        metrics.on_snapshot_completed();
                        sequence = 0;
                        let checkpoint = Checkpoint {
                            offset: ConnectorOffset::SnapshotCompleted { lsn: consistent_point, tx_id: None, ts_usec: now_micros() },
                            urgent: true,
                        };
                        in_flight.push_back(Box::pin(async move { Ok(Some(checkpoint)) }));
                    }
                    Some(SourceMessage::CreatingSlot { proceed }) => {
                        // Written before the slot exists: a crash from here on leaves a slot
                        // that is ours to replace on the next start.
                        let incomplete = ConnectorOffset::SnapshotIncomplete { ts_usec: now_micros() };
                        store_offset(&offsets, &key, &incomplete)?;
                        stored_offset = Some(incomplete);
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
        store_offset(offsets, key, &offset)?;
    }
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
    Ok(())
}

fn store_offset(
    offsets: &Mutex<FileOffsetStore>,
    key: &OffsetKey,
    offset: &ConnectorOffset,
) -> anyhow::Result<()> {
    offsets
        .lock()
        .map_err(|_| anyhow!("offset store poisoned"))?
        .put(key, offset)
        .context("cannot store the offset")
}

/// Now, in microseconds since the epoch (Debezium's `ts_usec` for snapshot offsets).
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Appends the position headers of one record (see the module docs).
fn push_position_headers(headers: &mut Vec<(String, Vec<u8>)>, position: &Position, seq: u64) {
    match position {
        Position::Snapshot {
            consistent_point, ..
        } => {
            headers.push((HEADER_LSN.into(), consistent_point.to_string().into_bytes()));
            headers.push((HEADER_SEQ.into(), seq.to_string().into_bytes()));
            headers.push((HEADER_SNAPSHOT.into(), b"true".to_vec()));
        }
        Position::Stream {
            lsn, commit_lsn, ..
        } => {
            headers.push((HEADER_LSN.into(), lsn.to_string().into_bytes()));
            headers.push((
                HEADER_COMMIT_LSN.into(),
                commit_lsn.to_string().into_bytes(),
            ));
            headers.push((HEADER_SEQ.into(), seq.to_string().into_bytes()));
        }
    }
}
