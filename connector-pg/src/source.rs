//! The PostgreSQL source: setup, snapshot, streaming, and the feedback loop to the slot.
//!
//! ```text
//!             ┌──────────── SourceMessage (bounded channel) ───────────►  worker
//!  source ────┤  Event · SlotCreated · SnapshotCompleted · TransactionCommitted
//!             └◄─────────── Feedback (watch): durable LSN, stop, finish ──  worker
//! ```
//!
//! Invariants:
//! - The source never confirms an LSN on its own: the flush LSN it reports to the slot is the
//!   `durable_lsn` the worker publishes, which only moves once events and offsets are durable.
//!   Reported LSNs only move forward.
//! - While the channel is full (Kafka is slow), the source keeps sending status updates on its
//!   timer, so `wal_sender_timeout` never fires because of backpressure.
//! - On stop, the source stops reading, waits for the worker's final durable LSN, reports it to
//!   the slot, and closes the connection.
//! - An interrupted initial snapshot ([`StartPoint::ResumeSnapshot`]) is finished while
//!   streaming: at transaction boundaries of the stream the source opens watermark windows
//!   (or re-reads a table without a key), and ends each window at its high watermark's commit
//!   (see `snapshot::resume`); `pg_logical_emit_message` watermarks of this slot never leave
//!   the source.
//! - Signals (see `snapshot::signal`): an INSERT into `signal.data.collection` is acted on at
//!   its transaction's commit, before the commit goes to the worker (so the offset stored with
//!   the commit carries the snapshot it started); a signal from the worker's inbox at the next
//!   transaction boundary. An `execute-snapshot` runs on the same windows as a resume.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use pgoutput::frame::{encode_standby_status_update, ReplicationFrame, PG_EPOCH_OFFSET_US};
use pgoutput::message::{DecodeContext, LogicalReplicationMessage};
use pgseam_model::{ChangeEvent, LogicalMessage, Lsn};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;

use crate::catalog::{self, TableIdentity};
use crate::connection::{BackendMessage, ConnectParams, ReplicationConnection};
use crate::error::{Result, SourceError};
use crate::publication::{self, PublicationAutocreate};
use crate::slot;
use crate::snapshot::{self, ChunkMessage, SnapshotSettings};
use crate::stream::{EventSettings, OpenTransaction, StreamDecoder, StreamRelation};

/// pgoutput protocol version requested. Version 1 is enough without streamed transactions.
const PGOUTPUT_PROTOCOL_VERSION: u32 = 1;

/// Debezium's `snapshot.mode` values this source implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Snapshot when there is no offset, then stream.
    Initial,
    /// Stream only, from the slot's consistent point (`no_data`, formerly `never`).
    NoData,
}

/// Which tables the user wants, by `schema` and `table` (Debezium's include/exclude lists).
pub type TableFilter = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Everything the source needs to know.
#[derive(Clone)]
pub struct SourceConfig {
    pub connect: ConnectParams,
    pub slot_name: String,
    pub publication_name: String,
    pub publication_autocreate: PublicationAutocreate,
    pub table_filter: TableFilter,
    pub snapshot_mode: SnapshotMode,
    pub status_update_interval: Duration,
    /// `slot.max.retries`: further looks at a slot another connection holds.
    pub slot_max_retries: u32,
    /// `slot.retry.delay.ms`.
    pub slot_retry_delay: Duration,
    /// How long slot creation may wait for running transactions (`database.query.timeout.ms`).
    pub slot_creation_timeout: Duration,
    /// `slot.drop.on.stop`: drop the slot after a clean stop.
    pub drop_slot_on_stop: bool,
    /// `heartbeat.interval.ms` and `heartbeat.action.query`; `None` = no heartbeats.
    pub heartbeat: Option<HeartbeatSettings>,
    /// How the initial snapshot is read.
    pub snapshot: SnapshotSettings,
    /// `skipped.operations` and the logical-message prefix filter.
    pub events: EventSettings,
}

/// Debezium's heartbeats: while streaming, every `interval` the source runs `action_query`
/// (if any; typically an `INSERT … ON CONFLICT UPDATE` into a heartbeat table in the captured
/// database, so that a database whose captured tables are idle still produces changes) and
/// then sends [`SourceMessage::Heartbeat`], which the worker writes to the heartbeat topic.
#[derive(Clone, Debug)]
pub struct HeartbeatSettings {
    pub interval: Duration,
    pub action_query: Option<String>,
}

/// Where to start, as the worker's stored offset says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// No usable offset: create the slot (replacing a slot this connector left behind in an
    /// interrupted start when `replace_slot` is set), snapshot if the mode says so, stream.
    Fresh { replace_slot: bool },
    /// Continue streaming after `lsn`, the end of the last durable transaction.
    Resume { lsn: Lsn },
    /// The initial snapshot was interrupted: stream from `lsn` (its consistent point, or the
    /// end of the last durable transaction of an earlier resume) and read what `progress`
    /// does not cover in watermark windows (see `snapshot::resume`). Without the slot, a
    /// fresh start.
    ResumeSnapshot {
        lsn: Lsn,
        progress: snapshot::SnapshotProgress,
    },
}

/// What the source sends to the worker, in order.
// Events are nearly every message; boxing them would add an allocation per row for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SourceMessage {
    /// Setup checks passed and the slot is about to be created. The worker records that a
    /// start is under way (so that a crash from here on lets it replace the slot), then
    /// answers on `proceed`.
    CreatingSlot {
        proceed: tokio::sync::oneshot::Sender<()>,
    },
    /// The slot exists, at this consistent point. The worker persists it ("slot created at
    /// C", the start of the snapshot's progress) and then answers on `proceed`: no chunk is
    /// read before.
    SlotCreated {
        consistent_point: Lsn,
        proceed: tokio::sync::oneshot::Sender<()>,
    },
    /// The snapshot rows sent before this complete a step of the snapshot's progress; once
    /// they are durable the worker stores the progress with the offset.
    SnapshotProgress(snapshot::ProgressUpdate),
    Event(ChangeEvent),
    /// A transaction begins (pgoutput `Begin`, whose frame is at `lsn`); its events follow,
    /// then [`SourceMessage::TransactionCommitted`]. Sent for every transaction pgoutput
    /// sends (PostgreSQL 15 skips empty ones), whether or not it has captured changes.
    TransactionBegun {
        tx_id: i64,
        lsn: Lsn,
        commit_lsn: Lsn,
        commit_ts_us: i64,
    },
    /// A logical decoding message (`pg_logical_emit_message`) that passed the filters; a
    /// transactional one comes between its transaction's `TransactionBegun` and
    /// `TransactionCommitted`, a non-transactional one outside any transaction.
    Message(LogicalMessage),
    /// All snapshot rows have been sent; streaming starts at `consistent_point`.
    SnapshotCompleted {
        consistent_point: Lsn,
    },
    /// All events of this transaction have been sent. Once they are durable, the slot may be
    /// confirmed up to `end_lsn`.
    TransactionCommitted {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        tx_id: i64,
        commit_ts_us: i64,
    },
    /// The server has sent everything up to `wal_end` and no transaction is open: once the
    /// messages before this are durable, the slot may be confirmed up to here. This lets the
    /// slot advance (and WAL be recycled) while the captured tables are idle.
    CaughtUp {
        wal_end: Lsn,
    },
    /// A heartbeat is due (`heartbeat.interval.ms`); the action query, if any, has run.
    Heartbeat {
        ts_ms: i64,
    },
    /// The server accepted `START_REPLICATION` from `start_lsn`: the source is streaming.
    StreamingStarted {
        start_lsn: Lsn,
    },
}

/// What the worker tells the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Everything up to here is in Kafka and in the offset store.
    pub durable_lsn: Lsn,
    /// Stop reading from the server (shutdown has begun).
    pub stop_reading: bool,
    /// `durable_lsn` is final: report it and close.
    pub finished: bool,
}

/// Runs the source until the worker says it is finished or an error occurs.
pub async fn run(
    config: SourceConfig,
    start: StartPoint,
    events: mpsc::Sender<SourceMessage>,
    feedback: watch::Receiver<Feedback>,
) -> Result<()> {
    let catalog_client = crate::connection::connect_query_session(&config.connect).await?;
    catalog::check_wal_level(&catalog_client).await?;
    let tables = select_tables(&config, &catalog_client).await?;
    publication::ensure_publication(
        &catalog_client,
        &config.publication_name,
        config.publication_autocreate,
        &tables,
    )
    .await?;
    let published = catalog::publication_tables(&catalog_client, &config.publication_name).await?;
    let captured = catalog::keep_published(tables, &published);
    for table in &captured {
        if table.lacks_replica_identity() {
            tracing::warn!(
                table = %table.qualified_name(),
                "table has no primary key and no replica identity: once it is in the publication, \
                 PostgreSQL rejects UPDATE and DELETE on it; fix with ALTER TABLE {} REPLICA IDENTITY FULL \
                 (or add a primary key)",
                table.qualified_name()
            );
        }
    }
    if captured.is_empty() {
        tracing::warn!(publication = %config.publication_name, "no captured table: the filters and the publication select nothing");
    }
    // A slot held by another connection may be freed soon (our own previous walsender after a
    // lost connection lingers until the server notices): wait as Debezium does, then fail.
    let existing_slot = slot::wait_until_inactive(
        &catalog_client,
        &config.slot_name,
        config.slot_max_retries,
        config.slot_retry_delay,
    )
    .await?;
    if let Some(info) = &existing_slot {
        if let Some(plugin) = info.plugin.as_deref().filter(|p| *p != "pgoutput") {
            return Err(SourceError::Setup(format!(
                "slot `{}` exists but uses plugin `{plugin}`; pgseam needs a pgoutput slot: use another \
                 slot.name or drop that slot",
                config.slot_name
            )));
        }
        if info.database.as_deref() != Some(config.connect.dbname.as_str()) {
            return Err(SourceError::Setup(format!(
                "slot `{}` belongs to database {:?}, not {:?}",
                config.slot_name, info.database, config.connect.dbname
            )));
        }
        if matches!(start, StartPoint::Resume { .. }) {
            slot::check_not_lost(&config.slot_name, info)?;
        }
    }

    // A resumed snapshot needs its slot; without it nothing was streamed yet, so a fresh
    // start (a new slot and snapshot) loses nothing.
    let start = match start {
        StartPoint::ResumeSnapshot { .. } if existing_slot.is_none() => {
            tracing::warn!(slot = %config.slot_name, "the interrupted snapshot's slot is gone; starting the snapshot over");
            StartPoint::Fresh { replace_slot: true }
        }
        other => other,
    };
    if let (StartPoint::ResumeSnapshot { .. }, Some(info)) = (&start, &existing_slot) {
        slot::check_not_lost(&config.slot_name, info)?;
    }

    let mut replication = ReplicationConnection::connect(&config.connect).await?;
    let mut source = Source {
        decoder: StreamDecoder::new(config.connect.dbname.clone(), config.events.clone()),
        config,
        events,
        feedback,
        catalog_client,
        reported_flush: Lsn::ZERO,
        last_received: Lsn::ZERO,
        status_buffer: BytesMut::with_capacity(64),
        resumer: None,
        signals: SignalState::default(),
    };

    let resuming = !matches!(start, StartPoint::Fresh { .. });
    let start_lsn = match start {
        StartPoint::ResumeSnapshot { lsn, progress } => {
            if let Some(confirmed) = existing_slot.as_ref().and_then(|i| i.confirmed_flush_lsn) {
                if confirmed > lsn {
                    return Err(SourceError::Setup(format!(
                        "slot `{}` was confirmed up to {confirmed}, past the stored offset {lsn} of the \
                         interrupted snapshot: the changes in between are lost to pgseam",
                        source.config.slot_name
                    )));
                }
            }
            // `no_data` takes no snapshot: a resume only records it complete.
            let to_snapshot: &[TableIdentity] = match source.config.snapshot_mode {
                SnapshotMode::Initial => &captured,
                SnapshotMode::NoData => &[],
            };
            source.resumer = Some(
                snapshot::resume::Resumer::prepare(
                    &source.config.connect,
                    &source.config.snapshot,
                    to_snapshot,
                    &progress,
                    &source.config.slot_name,
                )
                .await?,
            );
            tracing::info!(slot = %source.config.slot_name, %lsn, consistent_point = %progress.consistent_point, "resuming the interrupted snapshot: streaming from the stored offset");
            lsn
        }
        StartPoint::Resume { lsn } => {
            let Some(info) = existing_slot else {
                return Err(SourceError::Setup(format!(
                    "the stored offset says streaming reached {lsn}, but slot `{}` does not exist: its \
                     changes since then are lost. Delete the offset file to start over with a new snapshot",
                    source.config.slot_name
                )));
            };
            if let Some(confirmed) = info.confirmed_flush_lsn {
                if confirmed > lsn {
                    return Err(SourceError::Setup(format!(
                        "slot `{}` was confirmed up to {confirmed}, past the stored offset {lsn}: the \
                         changes in between were acknowledged by someone else and are lost to pgseam",
                        source.config.slot_name
                    )));
                }
            }
            tracing::info!(slot = %source.config.slot_name, %lsn, "resuming streaming from stored offset");
            lsn
        }
        StartPoint::Fresh { replace_slot } => {
            if existing_slot.is_some() {
                if !replace_slot {
                    return Err(SourceError::Setup(format!(
                        "slot `{}` already exists but pgseam has no offset for this connector: it may \
                         belong to another consumer. Drop it (SELECT pg_drop_replication_slot('{}')) or \
                         choose another slot.name",
                        source.config.slot_name, source.config.slot_name
                    )));
                }
                tracing::warn!(slot = %source.config.slot_name, "dropping the slot of an interrupted start and starting over");
                slot::drop_slot(&source.catalog_client, &source.config.slot_name).await?;
            }
            slot::warn_if_wal_keep_size_limited(&source.catalog_client, &source.config.slot_name)
                .await?;
            let (proceed, proceed_rx) = tokio::sync::oneshot::channel();
            source.send(SourceMessage::CreatingSlot { proceed }).await?;
            proceed_rx.await.map_err(|_| SourceError::ConsumerGone)?;
            let created = slot::create_slot_exporting_snapshot(
                &mut replication,
                &source.catalog_client,
                &source.config.slot_name,
                source.config.slot_creation_timeout,
            )
            .await?;
            tracing::info!(slot = %source.config.slot_name, consistent_point = %created.consistent_point, "replication slot created");
            let (proceed, proceed_rx) = tokio::sync::oneshot::channel();
            source
                .send(SourceMessage::SlotCreated {
                    consistent_point: created.consistent_point,
                    proceed,
                })
                .await?;
            proceed_rx.await.map_err(|_| SourceError::ConsumerGone)?;
            if source.config.snapshot_mode == SnapshotMode::Initial {
                source.snapshot(&captured, &created).await?;
            }
            source
                .send(SourceMessage::SnapshotCompleted {
                    consistent_point: created.consistent_point,
                })
                .await?;
            created.consistent_point
        }
    };
    // Never report more than is durable: a resume after a lost connection may start past the
    // durable LSN (at the end of the last transaction already handed to the worker).
    source.reported_flush = if resuming {
        start_lsn.min(source.feedback.borrow().durable_lsn)
    } else {
        start_lsn
    };
    source.last_received = start_lsn;
    let command = slot::start_replication_command(
        &source.config.slot_name,
        start_lsn,
        &source.config.publication_name,
        PGOUTPUT_PROTOCOL_VERSION,
    );
    replication.start_replication(&command).await?;
    tracing::info!(slot = %source.config.slot_name, lsn = %start_lsn, encrypted = replication.is_encrypted(), "streaming started");
    source
        .send(SourceMessage::StreamingStarted { start_lsn })
        .await?;
    source.stream(replication).await
}

async fn select_tables(config: &SourceConfig, client: &Client) -> Result<Vec<TableIdentity>> {
    Ok(catalog::list_user_tables(client)
        .await?
        .into_iter()
        .filter(|t| (config.table_filter)(&t.schema, &t.table))
        .collect())
}

struct Source {
    config: SourceConfig,
    decoder: StreamDecoder,
    events: mpsc::Sender<SourceMessage>,
    feedback: watch::Receiver<Feedback>,
    catalog_client: Client,
    reported_flush: Lsn,
    last_received: Lsn,
    status_buffer: BytesMut,
    /// Set while an interrupted snapshot is being resumed, or a signalled incremental
    /// snapshot runs.
    resumer: Option<snapshot::resume::Resumer>,
    signals: SignalState,
}

/// The `source` signal channel's state (see `snapshot::signal`).
#[derive(Default)]
struct SignalState {
    /// The signaling table's relation id, and whether the include lists capture it.
    relation: Option<(u32, bool)>,
    /// Signals of the open transaction, acted on at its commit.
    pending: Vec<snapshot::Signal>,
    /// `execute-snapshot` signals that came while an interrupted initial snapshot is being
    /// resumed: acted on when it completes (held in memory only).
    deferred: Vec<snapshot::Signal>,
}

impl Source {
    async fn send(&mut self, message: SourceMessage) -> Result<()> {
        self.events
            .send(message)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }

    async fn snapshot(
        &mut self,
        captured: &[TableIdentity],
        created: &slot::CreatedSlot,
    ) -> Result<()> {
        snapshot::run(
            &self.config.connect,
            &self.config.snapshot,
            captured,
            created,
            &self.events,
        )
        .await?;
        Ok(())
    }

    async fn stream(&mut self, mut replication: ReplicationConnection) -> Result<()> {
        self.check_signal_table().await?;
        let inbox = Arc::clone(&self.config.snapshot.signals);
        let mut status_timer = tokio::time::interval(self.config.status_update_interval);
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let context = DecodeContext {
            protocol_version: PGOUTPUT_PROTOCOL_VERSION,
            in_streamed_transaction: false,
        };
        let mut pending = Vec::new();
        let mut heartbeat_timer = self.config.heartbeat.as_ref().map(|h| {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + h.interval, h.interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        loop {
            let feedback = *self.feedback.borrow();
            if feedback.finished {
                self.send_status(&mut replication, feedback.durable_lsn, false)
                    .await?;
                tracing::info!(flush_lsn = %self.reported_flush, "final status update sent; closing replication connection");
                replication.close().await?;
                if self.config.drop_slot_on_stop {
                    self.drop_slot_after_stop().await?;
                }
                return Ok(());
            }
            if !feedback.stop_reading && self.decoder.transaction.is_none() {
                while let Some(signal) = inbox.take() {
                    let mut out = Vec::new();
                    self.apply_signal(signal, &mut out).await?;
                    for message in out {
                        let _sent = self
                            .send_with_keepalive(&mut replication, &mut status_timer, message)
                            .await?;
                    }
                }
                self.drive_resume(&mut replication, &mut status_timer)
                    .await?;
            }
            tokio::select! {
                // A signal from the worker (REST): taken at the loop's top.
                _ = inbox.notified(), if self.decoder.transaction.is_none() && !feedback.stop_reading => {}
                // 0. A resumed snapshot's window has read its chunk (or failed).
                done = window_task(self.resumer.as_mut()) => done?,
                // 1. Feedback first: a durable LSN or a stop request must never wait behind data.
                changed = self.feedback.changed() => {
                    if changed.is_err() {
                        return Err(SourceError::ConsumerGone);
                    }
                    let durable = self.feedback.borrow().durable_lsn;
                    if durable > self.reported_flush {
                        self.send_status(&mut replication, durable, false).await?;
                    }
                }
                // 2. The timer keeps wal_sender_timeout from firing, whatever else is happening.
                _ = status_timer.tick() => {
                    let durable = self.feedback.borrow().durable_lsn;
                    self.send_status(&mut replication, durable, false).await?;
                }
                // 3. Heartbeats, when configured and not stopping.
                _ = next_tick(heartbeat_timer.as_mut()), if !feedback.stop_reading => {
                    let message = self.heartbeat().await?;
                    // `false`: stopping; the loop's top sends the final status update.
                    let _sent = self.send_with_keepalive(&mut replication, &mut status_timer, message).await?;
                }
                // 4. Data, unless shutdown has begun.
                message = replication.read_message(), if !feedback.stop_reading => {
                    match message? {
                        BackendMessage::CopyData(data) => {
                            self.handle_frame(&mut replication, data, &context, &mut pending).await?;
                            for message in pending.drain(..) {
                                if !self.send_with_keepalive(&mut replication, &mut status_timer, message).await? {
                                    break; // stopping: the rest is re-read after the restart
                                }
                            }
                        }
                        BackendMessage::CopyDone => {
                            // The walsender ends the stream this way when the server shuts down.
                            return Err(SourceError::StreamEnded)
                        }
                        BackendMessage::Other(postgres_protocol::message::backend::Message::ErrorResponse(body)) => {
                            return Err(SourceError::Server {
                                context: "replication stream failed".into(),
                                server: Box::new(crate::connection::server_error(&body)),
                            })
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// `signal.data.collection` must be in the publication: otherwise its signals never reach
    /// the stream.
    async fn check_signal_table(&self) -> Result<()> {
        let Some((schema, table)) = &self.config.snapshot.signal_table else {
            return Ok(());
        };
        let published = self
            .catalog_client
            .query_opt(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                &[&self.config.publication_name, schema, table],
            )
            .await
            .map_err(|error| SourceError::Query {
                context: "cannot read the publication's tables".into(),
                error,
            })?;
        if published.is_none() {
            return Err(SourceError::Setup(format!(
                "signal.data.collection `{schema}.{table}` is not in publication `{}`: signals written to it would never \
                 reach pgseam. Create the table (columns id, type, data) and add it: ALTER PUBLICATION {} ADD TABLE {schema}.{table}",
                self.config.publication_name,
                catalog::quote_identifier(&self.config.publication_name)
            )));
        }
        tracing::info!(table = %format!("{schema}.{table}"), "signals: source channel enabled");
        Ok(())
    }

    /// Acts on a signal (see `snapshot::signal`); progress updates go into `out`.
    async fn apply_signal(
        &mut self,
        signal: snapshot::Signal,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        use snapshot::Signal;
        match signal {
            Signal::Log { id, message } => {
                tracing::info!(signal_id = %id, %message, "signal: log");
            }
            Signal::PauseSnapshot { id } | Signal::ResumeSnapshot { id }
                if self.resumer.is_none() =>
            {
                tracing::warn!(signal_id = %id, "signal: no incremental snapshot is running; ignored");
            }
            Signal::PauseSnapshot { id } => {
                tracing::info!(signal_id = %id, "signal: pause-snapshot");
                if let Some(r) = self.resumer.as_mut() {
                    r.set_paused(true);
                }
            }
            Signal::ResumeSnapshot { id } => {
                tracing::info!(signal_id = %id, "signal: resume-snapshot");
                if let Some(r) = self.resumer.as_mut() {
                    r.set_paused(false);
                }
            }
            Signal::StopSnapshot {
                id,
                data_collections,
            } => {
                tracing::info!(signal_id = %id, tables = ?data_collections, "signal: stop-snapshot");
                match self.resumer.as_mut().filter(|r| r.is_incremental()) {
                    Some(r) => {
                        if let Some(update) = r.stop(&data_collections) {
                            out.push(SourceMessage::SnapshotProgress(update));
                        }
                    }
                    None => {
                        tracing::warn!(signal_id = %id, "signal: no incremental snapshot is running; stop-snapshot ignored")
                    }
                }
            }
            Signal::ExecuteSnapshot {
                id,
                data_collections,
                conditions,
            } => {
                if self.resumer.as_ref().is_some_and(|r| !r.is_incremental()) {
                    tracing::warn!(signal_id = %id, "signal: execute-snapshot deferred until the interrupted initial snapshot, being resumed, completes (held in memory: a restart before then loses it)");
                    self.signals.deferred.push(Signal::ExecuteSnapshot {
                        id,
                        data_collections,
                        conditions,
                    });
                    return Ok(());
                }
                let tables: Vec<_> = select_tables(&self.config, &self.catalog_client)
                    .await?
                    .into_iter()
                    .filter(|t| {
                        snapshot::signal::matches_any(&data_collections, &t.schema, &t.table)
                    })
                    .map(|t| {
                        let name = format!("{}.{}", t.schema, t.table);
                        let filter = conditions
                            .iter()
                            .find(|c| c.data_collection == name)
                            .map(|c| c.filter.clone());
                        (t, filter)
                    })
                    .collect();
                tracing::info!(signal_id = %id, patterns = ?data_collections, tables = tables.len(), "signal: execute-snapshot (incremental)");
                if tables.is_empty() {
                    tracing::warn!(signal_id = %id, patterns = ?data_collections, "signal: no captured table matches the data collections; nothing to snapshot");
                    return Ok(());
                }
                if self.resumer.is_none() {
                    let mut progress = snapshot::SnapshotProgress::new(self.last_received);
                    progress.incremental = Some(Vec::new());
                    self.resumer = Some(
                        snapshot::resume::Resumer::prepare(
                            &self.config.connect,
                            &self.config.snapshot,
                            &[],
                            &progress,
                            &self.config.slot_name,
                        )
                        .await?,
                    );
                }
                if let Some(resumer) = self.resumer.as_mut() {
                    if let Some(update) = resumer
                        .add_tables(&self.catalog_client, &self.config.snapshot, tables)
                        .await?
                    {
                        out.push(SourceMessage::SnapshotProgress(update));
                    }
                }
            }
        }
        Ok(())
    }

    /// A change of the signaling table: an INSERT is a signal (Debezium's source channel).
    fn take_signal(&mut self, event: &ChangeEvent) {
        if event.op != pgseam_model::Operation::Create {
            return;
        }
        let Some(row) = event.after.as_ref() else {
            return;
        };
        let column = |name: &str| -> Option<String> {
            let i = event.table.columns.iter().position(|c| c.name == name)?;
            match row.get(i)? {
                pgseam_model::Value::Text(s)
                | pgseam_model::Value::Json(s)
                | pgseam_model::Value::Uuid(s) => Some(s.clone()),
                pgseam_model::Value::Null => None,
                other => Some(format!("{other:?}")),
            }
        };
        let id = column("id").unwrap_or_default();
        let Some(kind) = column("type") else {
            tracing::warn!(signal_id = %id, table = %event.table.qualified_name(), "signal without a `type`; ignored");
            return;
        };
        match snapshot::Signal::parse(&id, &kind, column("data").as_deref()) {
            Ok(signal) => self.signals.pending.push(signal),
            Err(reason) => tracing::warn!(signal_id = %id, %reason, "invalid signal; ignored"),
        }
    }

    /// Moves a resumed snapshot on at a transaction boundary of the stream: opens the next
    /// key window, re-reads a table without a key (pausing the stream, see
    /// `snapshot::resume`), or, when everything is read, reports the snapshot finished.
    async fn drive_resume(
        &mut self,
        replication: &mut ReplicationConnection,
        status_timer: &mut tokio::time::Interval,
    ) -> Result<()> {
        let Some(resumer) = self.resumer.as_mut() else {
            return Ok(());
        };
        if resumer.can_start_window() {
            return resumer.start_window();
        }
        if resumer.next_is_whole() {
            return self.read_whole(replication, status_timer).await;
        }
        if resumer.is_finished() {
            let (windows, rows) = resumer.summary();
            self.resumer = None;
            tracing::info!(windows, rows, "the resumed snapshot is complete");
            let sent = self
                .send_with_keepalive(
                    replication,
                    status_timer,
                    SourceMessage::SnapshotProgress(snapshot::ProgressUpdate::Finished),
                )
                .await?;
            // Signals deferred behind the resumed initial snapshot start now.
            if sent {
                let mut out = Vec::new();
                for signal in std::mem::take(&mut self.signals.deferred) {
                    self.apply_signal(signal, &mut out).await?;
                }
                for message in out {
                    let _sent = self
                        .send_with_keepalive(replication, status_timer, message)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Re-reads the next table whole while the stream waits at a transaction boundary.
    async fn read_whole(
        &mut self,
        replication: &mut ReplicationConnection,
        status_timer: &mut tokio::time::Interval,
    ) -> Result<()> {
        let Some((mut rows, task)) = self.resumer.as_mut().and_then(|r| r.start_whole()) else {
            return Ok(());
        };
        let position = self.last_received;
        let mut sent = 0u64;
        loop {
            let message = tokio::select! {
                message = rows.recv() => message,
                _ = status_timer.tick() => {
                    let durable = self.feedback.borrow().durable_lsn;
                    self.send_status(replication, durable, false).await?;
                    continue;
                }
            };
            let Some(message) = message else { break };
            let ChunkMessage::Rows { events, .. } = message else {
                continue;
            };
            for event in events {
                let Some(resumer) = self.resumer.as_ref() else {
                    break;
                };
                let event = resumer.resumed(event, position);
                if !self
                    .send_with_keepalive(replication, status_timer, SourceMessage::Event(event))
                    .await?
                {
                    task.abort();
                    return Ok(()); // stopping: the table is read again after the restart
                }
                sent += 1;
            }
        }
        let client = match task.await {
            Ok(result) => result?,
            Err(join) => {
                return Err(SourceError::Setup(format!(
                    "snapshot resume read task failed: {join}"
                )))
            }
        };
        if let Some(message) = self
            .resumer
            .as_mut()
            .and_then(|r| r.finish_whole(client, sent))
        {
            let _sent = self
                .send_with_keepalive(replication, status_timer, message)
                .await?;
        }
        Ok(())
    }

    /// Runs `heartbeat.action.query` (if set) and returns the heartbeat message. A failing
    /// action query stops the source, as in Debezium.
    async fn heartbeat(&mut self) -> Result<SourceMessage> {
        if let Some(query) = self
            .config
            .heartbeat
            .as_ref()
            .and_then(|h| h.action_query.as_deref())
        {
            self.catalog_client
                .batch_execute(query)
                .await
                .map_err(|error| SourceError::Query {
                    context: "heartbeat.action.query failed".into(),
                    error,
                })?;
        }
        Ok(SourceMessage::Heartbeat {
            ts_ms: now_us() / 1000,
        })
    }

    /// `slot.drop.on.stop`: the walsender releases the slot shortly after the connection
    /// closes, so a few short retries cover that window.
    async fn drop_slot_after_stop(&mut self) -> Result<()> {
        let slot = self.config.slot_name.clone();
        slot::wait_until_inactive(&self.catalog_client, &slot, 50, Duration::from_millis(100))
            .await?;
        slot::drop_slot(&self.catalog_client, &slot).await?;
        tracing::info!(slot = %slot, "replication slot dropped (slot.drop.on.stop=true)");
        Ok(())
    }

    /// Sends a message to the worker; while the channel is full, keeps the server's
    /// `wal_sender_timeout` at bay with status updates.
    async fn send_with_keepalive(
        &mut self,
        replication: &mut ReplicationConnection,
        status_timer: &mut tokio::time::Interval,
        message: SourceMessage,
    ) -> Result<bool> {
        let events = self.events.clone();
        loop {
            if self.feedback.borrow().finished {
                // The worker is done and will not read this message: it is not durable, so the
                // next start reads it again. Returning lets the stream loop send the final
                // status update instead of waiting behind a full channel.
                return Ok(false);
            }
            tokio::select! {
                permit = events.reserve() => {
                    permit.map_err(|_| SourceError::ConsumerGone)?.send(message);
                    return Ok(true);
                }
                changed = self.feedback.changed() => {
                    if changed.is_err() {
                        return Err(SourceError::ConsumerGone);
                    }
                }
                _ = status_timer.tick() => {
                    let durable = self.feedback.borrow().durable_lsn;
                    self.send_status(replication, durable, false).await?;
                }
            }
        }
    }

    async fn handle_frame(
        &mut self,
        replication: &mut ReplicationConnection,
        data: bytes::Bytes,
        context: &DecodeContext,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        let frame = ReplicationFrame::decode(data).map_err(|source| SourceError::Decode {
            lsn: self.last_received,
            source,
        })?;
        match frame {
            ReplicationFrame::PrimaryKeepalive {
                wal_end,
                reply_requested,
                ..
            } => {
                let wal_end = Lsn(wal_end);
                if self.decoder.transaction.is_none() && wal_end > self.last_received {
                    out.push(SourceMessage::CaughtUp { wal_end });
                }
                self.last_received = self.last_received.max(wal_end);
                if reply_requested {
                    let durable = self.feedback.borrow().durable_lsn;
                    self.send_status(replication, durable, false).await?;
                }
            }
            ReplicationFrame::XLogData {
                wal_start,
                wal_end,
                data,
                ..
            } => {
                let lsn = Lsn(wal_start);
                self.last_received = self.last_received.max(Lsn(wal_end));
                let message = LogicalReplicationMessage::decode(data, context)
                    .map_err(|source| SourceError::Decode { lsn, source })?;
                self.handle_message(message, lsn, out).await?;
            }
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        message: LogicalReplicationMessage,
        lsn: Lsn,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        match &message {
            LogicalReplicationMessage::Begin {
                final_lsn,
                commit_ts_us,
                xid,
            } => {
                self.decoder.transaction = Some(OpenTransaction {
                    xid: *xid,
                    commit_lsn: Lsn(*final_lsn),
                    commit_ts_us: commit_ts_us + PG_EPOCH_OFFSET_US,
                });
                out.push(SourceMessage::TransactionBegun {
                    tx_id: i64::from(*xid),
                    lsn,
                    commit_lsn: Lsn(*final_lsn),
                    commit_ts_us: commit_ts_us + PG_EPOCH_OFFSET_US,
                });
            }
            LogicalReplicationMessage::Commit {
                commit_lsn,
                end_lsn,
                commit_ts_us,
                ..
            } => {
                // Signals of this transaction: their progress goes before its commit, so the
                // commit's offset carries it (a crash before re-reads the signal).
                for signal in std::mem::take(&mut self.signals.pending) {
                    self.apply_signal(signal, out).await?;
                }
                let transaction = self.decoder.transaction.take();
                self.decoder.last_commit_lsn = Some(Lsn(*commit_lsn));
                self.decoder.last_commit_ts_us = Some(commit_ts_us + PG_EPOCH_OFFSET_US);
                out.push(SourceMessage::TransactionCommitted {
                    commit_lsn: Lsn(*commit_lsn),
                    end_lsn: Lsn(*end_lsn),
                    tx_id: transaction.map_or(0, |t| i64::from(t.xid)),
                    commit_ts_us: commit_ts_us + PG_EPOCH_OFFSET_US,
                });
                if let Some(resumer) = self.resumer.as_mut().filter(|r| r.is_closed()) {
                    resumer
                        .finish_window(Lsn(*commit_lsn), commit_ts_us + PG_EPOCH_OFFSET_US, out)
                        .await?;
                }
            }
            LogicalReplicationMessage::Relation {
                relation_id,
                namespace,
                name,
                columns,
                ..
            } => {
                // Every relation pgoutput sends is in the publication; the include/exclude
                // lists decide the rest. Tables created after the start are captured too, as
                // Debezium captures them.
                let is_captured = (self.config.table_filter)(namespace, name);
                let is_signal = self
                    .config
                    .snapshot
                    .signal_table
                    .as_ref()
                    .is_some_and(|(s, t)| s == namespace && t == name);
                if is_signal {
                    self.signals.relation = Some((*relation_id, is_captured));
                }
                let schema = catalog::load_table_schema(&self.catalog_client, *relation_id).await?;
                let column_map = columns
                    .iter()
                    .map(|c| schema.columns.iter().position(|s| s.name == c.name))
                    .collect::<Vec<_>>();
                if column_map.iter().any(Option::is_none) {
                    tracing::warn!(table = %schema.qualified_name(), "a column of the Relation message is not in the catalog any more; its values are dropped");
                }
                self.decoder.relations.insert(
                    *relation_id,
                    StreamRelation {
                        schema,
                        column_map,
                        // The signaling table is decoded for its signals in any case.
                        captured: is_captured || is_signal,
                    },
                );
            }
            LogicalReplicationMessage::Insert { .. }
            | LogicalReplicationMessage::Update { .. }
            | LogicalReplicationMessage::Delete { .. } => {
                let mut events = Vec::new();
                self.decoder.row_change_events(&message, lsn, &mut events)?;
                if let Some((relation, captured)) = self.signals.relation {
                    for event in events.iter().filter(|e| e.table.relation_id == relation) {
                        self.take_signal(event);
                    }
                    if !captured {
                        events.retain(|e| e.table.relation_id != relation);
                    }
                }
                if let Some(resumer) = self.resumer.as_mut() {
                    events.iter().for_each(|e| resumer.observe(e));
                }
                out.extend(events.into_iter().map(SourceMessage::Event));
            }
            LogicalReplicationMessage::Truncate { relation_ids, .. } => {
                if let Some(resumer) = self.resumer.as_mut() {
                    resumer.observe_truncate(relation_ids);
                }
                let mut events = Vec::new();
                self.decoder
                    .truncate_events(relation_ids, lsn, &mut events)?;
                out.extend(events.into_iter().map(SourceMessage::Event));
            }
            LogicalReplicationMessage::Message {
                transactional,
                lsn: message_lsn,
                prefix,
                content,
                ..
            } => {
                if self
                    .resumer
                    .as_mut()
                    .is_some_and(|r| r.on_message(prefix, content))
                {
                    return Ok(());
                }
                if let Some(message) = self.decoder.logical_message(
                    *transactional,
                    prefix,
                    content,
                    Lsn(*message_lsn),
                )? {
                    out.push(SourceMessage::Message(message));
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn send_status(
        &mut self,
        replication: &mut ReplicationConnection,
        durable: Lsn,
        reply: bool,
    ) -> Result<()> {
        // Reported LSNs only move forward.
        let flush = self.reported_flush.max(durable);
        debug_assert!(flush >= self.reported_flush);
        self.reported_flush = flush;
        let write = self.last_received.max(flush);
        self.status_buffer.clear();
        encode_standby_status_update(
            write.0,
            flush.0,
            flush.0,
            now_us() - PG_EPOCH_OFFSET_US,
            reply,
            &mut self.status_buffer,
        );
        replication.send_copy_data(&self.status_buffer).await
    }
}

/// The end of the open resume window's read task; never, without one.
async fn window_task(resumer: Option<&mut snapshot::resume::Resumer>) -> Result<()> {
    match resumer {
        Some(resumer) => resumer.task_done().await,
        None => std::future::pending().await,
    }
}

/// The next tick of an optional timer; never, without one.
async fn next_tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
