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
//! - Where to start is decided once, before anything is created or dropped, by [`plan_start`]
//!   from the stored offset, the slot's state, `snapshot.mode` and `offset.mismatch.strategy`:
//!   a start never streams from a position its snapshot did not cover, and a slot that cannot
//!   serve the offset is either an error, a new snapshot (`when_needed`), or followed with an
//!   error-level log (`trust_slot`), never skipped over silently.
//! - Signals (see `snapshot::signal`): an INSERT into `signal.data.collection` is acted on at
//!   its transaction's commit, before the commit goes to the worker (so the offset stored with
//!   the commit carries the snapshot it started); a signal from the worker's inbox at the next
//!   transaction boundary. An `execute-snapshot` runs on the same windows as a resume.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use pgoutput::frame::{encode_standby_status_update, ReplicationFrame, PG_EPOCH_OFFSET_US};
use pgoutput::message::{DecodeContext, LogicalReplicationMessage};
use pgseam_model::{ChangeEvent, LogicalMessage, Lsn, Position};
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

/// Debezium's `snapshot.mode` values this source implements (Debezium 3.6.3's snapshotters
/// `InitialSnapshotter`, `InitialOnlySnapshotter`, `NoDataSnapshotter`, `AlwaysSnapshotter`,
/// `WhenNeededSnapshotter`). How each decides at start is [`plan_start`]'s table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// `initial`: snapshot when there is no offset (or an interrupted snapshot), then stream.
    Initial,
    /// `initial_only`: as `initial`, then stop instead of streaming. No slot is kept: the
    /// snapshot is read under a `TEMPORARY` slot's exported snapshot.
    InitialOnly,
    /// `no_data` (formerly `never`): stream only, from the slot's consistent point.
    NoData,
    /// `always`: a new snapshot, at a new consistent point, on every start.
    Always,
    /// `when_needed`: as `initial`, and also a new snapshot when the stored offset can no
    /// longer be served (slot missing, WAL lost, slot confirmed past the offset).
    WhenNeeded,
}

impl SnapshotMode {
    /// Whether the mode reads rows at all.
    pub fn reads_rows(self) -> bool {
        self != SnapshotMode::NoData
    }

    /// Whether the mode streams after the snapshot (only `initial_only` does not).
    pub fn streams(self) -> bool {
        self != SnapshotMode::InitialOnly
    }

    /// The mode a reconnection after a lost connection runs in: a reconnection is not a new
    /// start, so `always` does not snapshot again there.
    pub fn for_reconnect(self) -> SnapshotMode {
        match self {
            SnapshotMode::Always => SnapshotMode::Initial,
            other => other,
        }
    }
}

/// Debezium's `offset.mismatch.strategy` (3.6.3, `OffsetSlotMismatchStrategy`): what to do when
/// the slot was confirmed past the stored offset, i.e. the changes in between were
/// acknowledged by someone else and the server will not send them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetMismatchStrategy {
    /// `no_validation` (Debezium's default). Debezium streams from the offset unchecked, and
    /// PostgreSQL then silently starts at the slot; pgseam refuses with an error instead
    /// (deliberate difference: never skip data silently).
    NoValidation,
    /// `trust_offset`: the offset is authoritative; a slot ahead of it is an error.
    TrustOffset,
    /// `trust_slot`: the slot is authoritative; continue from its `confirmed_flush_lsn`,
    /// with a loud warning that the changes in between are not delivered.
    TrustSlot,
    /// `trust_greater_lsn`: continue from the greater of offset and slot (pgseam always
    /// streams from the offset when it is ahead, so this acts as `trust_slot`).
    TrustGreaterLsn,
}

impl OffsetMismatchStrategy {
    /// Whether a slot confirmed past the offset is followed rather than refused.
    pub fn follows_slot(self) -> bool {
        matches!(
            self,
            OffsetMismatchStrategy::TrustSlot | OffsetMismatchStrategy::TrustGreaterLsn
        )
    }
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
    /// `publish.via.partition.root`: create the publication with
    /// `publish_via_partition_root = true` (see `publication`).
    pub publish_via_partition_root: bool,
    pub table_filter: TableFilter,
    pub snapshot_mode: SnapshotMode,
    /// `offset.mismatch.strategy`.
    pub offset_mismatch: OffsetMismatchStrategy,
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
// Made once per start: the progress is not worth a box.
#[allow(clippy::large_enum_variant)]
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

/// What a start does, once [`plan_start`] has weighed the stored offset against the slot.
// Made once per start, as [`StartPoint`].
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPlan {
    /// Go on from here. `Fresh { replace_slot: true }` drops an existing slot first.
    Start(StartPoint),
    /// `always` with an offset the slot can serve: stream from `lsn` and read every table
    /// again in watermark windows while streaming, as a resumed snapshot with no progress
    /// (see `snapshot::resume`). The slot stays, so the changes since the last run (deletes
    /// too) are streamed, in order with the new snapshot's rows.
    Resnapshot { lsn: Lsn },
    /// `initial_only` and the snapshot is complete: nothing to do.
    Done,
}

/// The start decision of `snapshot.mode` and `offset.mismatch.strategy`, following Debezium
/// 3.6.3's snapshotters (`shouldSnapshotData(offsetExists, snapshotInProgress)`,
/// `shouldStream`, `shouldSnapshotOnDataError`) with pgseam's rule that no start streams from
/// a position its snapshot did not cover and none skips changes silently:
///
/// | stored offset | `initial`, `no_data` | `initial_only` | `always` | `when_needed` |
/// |---|---|---|---|---|
/// | none | new slot, snapshot (`no_data`: no rows); an existing slot is an error | snapshot under a temporary slot, stop | new slot (replacing one), snapshot | as `always` |
/// | interrupted snapshot | resume it (slot gone: start over) | start over, stop | read every table again while streaming (slot gone: start over) | resume it |
/// | complete | stream from the offset | stop | stream from the offset, reading every table again in windows | stream from the offset |
///
/// Streaming from an offset needs the slot, its WAL (`wal_status` not `lost`), and the slot
/// not confirmed past the offset (the server would start at the slot: the changes in between
/// are gone). When one fails: `when_needed` takes a new snapshot at a new slot; a slot past
/// the offset is followed under `offset.mismatch.strategy` `trust_slot`/`trust_greater_lsn`,
/// with a loud warning; otherwise the start fails with an error that says what to do.
pub fn plan_start(
    mode: SnapshotMode,
    strategy: OffsetMismatchStrategy,
    slot_name: &str,
    start: StartPoint,
    existing: Option<&slot::SlotInfo>,
) -> Result<StartPlan> {
    let new_snapshot = StartPlan::Start(StartPoint::Fresh { replace_slot: true });
    match start {
        StartPoint::Fresh { replace_slot } => {
            if existing.is_some()
                && !replace_slot
                && matches!(mode, SnapshotMode::Always | SnapshotMode::WhenNeeded)
            {
                tracing::warn!(slot = slot_name, ?mode, "the slot exists but no offset is stored for this connector: it is dropped and a new slot and snapshot are taken");
                return Ok(new_snapshot);
            }
            Ok(StartPlan::Start(StartPoint::Fresh { replace_slot }))
        }
        StartPoint::ResumeSnapshot { lsn, progress } => match mode {
            SnapshotMode::Always => {
                let Some(info) = existing else {
                    tracing::warn!(
                        slot = slot_name,
                        "the interrupted snapshot's slot is gone; starting the snapshot over"
                    );
                    return Ok(new_snapshot);
                };
                let lsn =
                    serve_offset(mode, strategy, slot_name, lsn, info, "interrupted snapshot")?
                        .unwrap_or(lsn);
                tracing::info!(slot = slot_name, %lsn, "snapshot.mode=always: the interrupted snapshot is taken again from its start, every table read in windows while streaming");
                Ok(StartPlan::Resnapshot { lsn })
            }
            SnapshotMode::InitialOnly => {
                tracing::warn!(slot = slot_name, "snapshot.mode=initial_only: an interrupted snapshot cannot be resumed without streaming; it is started over");
                Ok(new_snapshot)
            }
            SnapshotMode::Initial | SnapshotMode::NoData | SnapshotMode::WhenNeeded => {
                // Without its slot nothing was streamed yet, so a new slot and snapshot lose
                // nothing.
                let Some(info) = existing else {
                    tracing::warn!(
                        slot = slot_name,
                        "the interrupted snapshot's slot is gone; starting the snapshot over"
                    );
                    return Ok(new_snapshot);
                };
                Ok(
                    match serve_offset(
                        mode,
                        strategy,
                        slot_name,
                        lsn,
                        info,
                        "interrupted snapshot",
                    )? {
                        Some(lsn) => StartPlan::Start(StartPoint::ResumeSnapshot { lsn, progress }),
                        None => new_snapshot,
                    },
                )
            }
        },
        StartPoint::Resume { lsn } => match mode {
            SnapshotMode::InitialOnly => Ok(StartPlan::Done),
            SnapshotMode::Initial
            | SnapshotMode::NoData
            | SnapshotMode::WhenNeeded
            | SnapshotMode::Always => {
                let Some(info) = existing else {
                    if mode == SnapshotMode::WhenNeeded {
                        tracing::warn!(slot = slot_name, %lsn, "NEW SNAPSHOT: the stored offset says streaming reached this position but the slot does not exist; snapshot.mode=when_needed takes a new snapshot at a new slot");
                        return Ok(new_snapshot);
                    }
                    return Err(SourceError::Setup(format!(
                        "the stored offset says streaming reached {lsn}, but slot `{slot_name}` does not \
                         exist: its changes since then are lost. Set snapshot.mode=when_needed to take a new \
                         snapshot, or delete the connector's offset to start over"
                    )));
                };
                Ok(
                    match serve_offset(mode, strategy, slot_name, lsn, info, "offset")? {
                        Some(lsn) if mode == SnapshotMode::Always => {
                            tracing::info!(slot = slot_name, %lsn, "snapshot.mode=always: taking a new snapshot, every table read in windows while streaming from the stored offset");
                            StartPlan::Resnapshot { lsn }
                        }
                        Some(lsn) => StartPlan::Start(StartPoint::Resume { lsn }),
                        None => new_snapshot,
                    },
                )
            }
        },
    }
}

/// Where an existing slot can stream a stored position from; `None`: `when_needed` takes a
/// new snapshot instead (see [`plan_start`]).
fn serve_offset(
    mode: SnapshotMode,
    strategy: OffsetMismatchStrategy,
    slot_name: &str,
    lsn: Lsn,
    info: &slot::SlotInfo,
    what: &str,
) -> Result<Option<Lsn>> {
    let when_needed = mode == SnapshotMode::WhenNeeded;
    if slot::check_not_lost(slot_name, info).is_err() {
        if when_needed {
            tracing::warn!(slot = slot_name, %lsn, "NEW SNAPSHOT: the slot has lost WAL it needed (wal_status = lost); snapshot.mode=when_needed replaces it and takes a new snapshot");
            return Ok(None);
        }
        slot::check_not_lost(slot_name, info)?;
    }
    let Some(confirmed) = info.confirmed_flush_lsn.filter(|c| *c > lsn) else {
        return Ok(Some(lsn));
    };
    if strategy.follows_slot() {
        tracing::error!(
            slot = slot_name,
            stored = %lsn,
            %confirmed,
            ?strategy,
            "CHANGES NOT DELIVERED: the slot was confirmed past the stored {what}; offset.mismatch.strategy \
             trusts the slot, so streaming continues at its confirmed_flush_lsn and the changes committed \
             in between are not sent by pgseam"
        );
        return Ok(Some(confirmed));
    }
    if when_needed {
        tracing::warn!(slot = slot_name, stored = %lsn, %confirmed, "NEW SNAPSHOT: the slot was confirmed past the stored {what}, so the changes in between cannot be streamed; snapshot.mode=when_needed replaces the slot and takes a new snapshot");
        return Ok(None);
    }
    Err(SourceError::Setup(format!(
        "slot `{slot_name}` was confirmed up to {confirmed}, past the stored {what} {lsn}: the changes in \
         between were acknowledged by someone else and the server will not send them again. Set \
         snapshot.mode=when_needed to take a new snapshot, or offset.mismatch.strategy=trust_slot to \
         continue from the slot without them"
    )))
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
    /// read before. Also sent, with the stored position, when `snapshot.mode=always` reads
    /// every table again while streaming from an existing slot ([`StartPlan::Resnapshot`]).
    SlotCreated {
        consistent_point: Lsn,
        proceed: tokio::sync::oneshot::Sender<()>,
    },
    /// The snapshot rows sent before this complete a step of the snapshot's progress; once
    /// they are durable the worker stores the progress with the offset.
    SnapshotProgress(snapshot::ProgressUpdate),
    Event(ChangeEvent),
    /// Consecutive initial-snapshot rows their reader already converted (see
    /// `snapshot::encode`); the worker sends their records as they are.
    Encoded(snapshot::EncodedRows),
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
    /// A snapshot notification (Debezium's `notification.enabled.channels`); the worker sends
    /// it to the enabled channels. Not part of the stream's position: one made before a crash
    /// may be made again after it (or, for an incremental snapshot's STARTED, not at all: the
    /// restart continues the snapshot).
    Notification(pgseam_model::Notification),
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
    let via_root = publication::ensure_publication(
        &catalog_client,
        &config.publication_name,
        config.publication_autocreate,
        &tables,
        config.publish_via_partition_root,
    )
    .await?;
    let captured =
        publication::captured_tables(&catalog_client, &config.publication_name, tables).await?;
    for table in captured.iter().filter(|t| t.partitioned) {
        tracing::info!(table = %table.qualified_name(), publication = %config.publication_name, publish_via_partition_root = via_root, "partitioned table published via its root: the rows and changes of its partitions go to its topic");
    }
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
    }

    let start = match plan_start(
        config.snapshot_mode,
        config.offset_mismatch,
        &config.slot_name,
        start,
        existing_slot.as_ref(),
    )? {
        StartPlan::Start(start) => start,
        StartPlan::Resnapshot { lsn } => {
            // The worker records the new snapshot's start (as "slot created at `lsn`") before
            // anything is read, so that its progress goes into the offset.
            let (proceed, proceed_rx) = tokio::sync::oneshot::channel();
            events
                .send(SourceMessage::SlotCreated {
                    consistent_point: lsn,
                    proceed,
                })
                .await
                .map_err(|_| SourceError::ConsumerGone)?;
            proceed_rx.await.map_err(|_| SourceError::ConsumerGone)?;
            StartPoint::ResumeSnapshot {
                lsn,
                progress: snapshot::SnapshotProgress::new(lsn),
            }
        }
        StartPlan::Done => {
            tracing::info!(slot = %config.slot_name, "snapshot.mode=initial_only and the stored offset records a completed snapshot: nothing to do, not streaming");
            return Ok(());
        }
    };

    let mut replication = ReplicationConnection::connect(&config.connect).await?;
    let mut source = Source {
        decoder: StreamDecoder::new(&config.connect.dbname, config.events.clone()),
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
            // `no_data` takes no snapshot: a resume only records it complete.
            let to_snapshot: &[TableIdentity] = if source.config.snapshot_mode.reads_rows() {
                &captured
            } else {
                &[]
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
            // `plan_start` checked the slot: it exists, its WAL is there, it is not past `lsn`
            // (or the strategy moved `lsn` to it).
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
                tracing::warn!(slot = %source.config.slot_name, "dropping the existing slot: a new one is created for a new snapshot");
                slot::drop_slot(&source.catalog_client, &source.config.slot_name).await?;
            }
            slot::warn_if_wal_keep_size_limited(&source.catalog_client, &source.config.slot_name)
                .await?;
            let (proceed, proceed_rx) = tokio::sync::oneshot::channel();
            source.send(SourceMessage::CreatingSlot { proceed }).await?;
            proceed_rx.await.map_err(|_| SourceError::ConsumerGone)?;
            // `initial_only` keeps no slot: a temporary one fixes the snapshot's consistent
            // point and goes with the connection.
            let created = if source.config.snapshot_mode.streams() {
                slot::create_slot_exporting_snapshot(
                    &mut replication,
                    &source.catalog_client,
                    &source.config.slot_name,
                    source.config.slot_creation_timeout,
                )
                .await?
            } else {
                slot::create_temporary_slot_exporting_snapshot(
                    &mut replication,
                    &source.catalog_client,
                    &source.config.slot_name,
                    source.config.slot_creation_timeout,
                )
                .await?
            };
            tracing::info!(slot = %source.config.slot_name, consistent_point = %created.consistent_point, "replication slot created");
            let (proceed, proceed_rx) = tokio::sync::oneshot::channel();
            source
                .send(SourceMessage::SlotCreated {
                    consistent_point: created.consistent_point,
                    proceed,
                })
                .await?;
            proceed_rx.await.map_err(|_| SourceError::ConsumerGone)?;
            if source.config.snapshot_mode.reads_rows() {
                source.snapshot(&captured, &created).await?;
            }
            source
                .send(SourceMessage::SnapshotCompleted {
                    consistent_point: created.consistent_point,
                })
                .await?;
            if !source.config.snapshot_mode.streams() {
                tracing::info!(slot = %source.config.slot_name, consistent_point = %created.consistent_point, "snapshot.mode=initial_only: the snapshot is complete; not streaming (the temporary slot goes with the connection)");
                replication.close().await?;
                return Ok(());
            }
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
    /// Blocking snapshots to take at the next transaction boundary (held in memory only).
    blocking: std::collections::VecDeque<snapshot::blocking::BlockingRequest>,
}

impl Source {
    async fn send(&mut self, message: SourceMessage) -> Result<()> {
        self.events
            .send(message)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }

    /// Reads the initial snapshot, unless the worker stops first: then the snapshot is
    /// dropped where it is (its readers are aborted, their sessions closed) and the source
    /// ends with [`SourceError::ConsumerGone`]. What it sent is stored as far as it is
    /// acknowledged (its progress steps), the rest is read again when the snapshot resumes.
    /// Without this, a stop during a snapshot waited for the snapshot's send into the full
    /// channel the worker no longer reads, until the worker closed it.
    async fn snapshot(
        &mut self,
        captured: &[TableIdentity],
        created: &slot::CreatedSlot,
    ) -> Result<()> {
        let mut feedback = self.feedback.clone();
        let stopping = async move {
            if feedback.wait_for(|f| f.stop_reading).await.is_err() {
                // The worker is gone altogether.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = snapshot::run(
                &self.config.connect,
                &self.config.snapshot,
                captured,
                created,
                &self.events,
            ) => {
                result?;
                Ok(())
            }
            () = stopping => {
                tracing::info!("stop requested during the snapshot: the snapshot stops here; it resumes from the stored progress at the next start");
                Err(SourceError::ConsumerGone)
            }
        }
    }

    async fn stream(&mut self, mut replication: ReplicationConnection) -> Result<()> {
        self.check_signal_table().await?;
        let inbox = Arc::clone(&self.config.snapshot.signals);
        let wal_sender_timeout = catalog::wal_sender_timeout(&self.catalog_client).await?;
        let status_interval =
            status_interval(self.config.status_update_interval, wal_sender_timeout);
        if status_interval < self.config.status_update_interval {
            tracing::info!(
                status_update_interval_ms = self.config.status_update_interval.as_millis() as u64,
                wal_sender_timeout_ms = wal_sender_timeout.map_or(0, |t| t.as_millis() as u64),
                effective_ms = status_interval.as_millis() as u64,
                "status.update.interval.ms is not well below the server's wal_sender_timeout: \
                 sending status updates more often, so that the server never times the \
                 connection out while Kafka applies backpressure"
            );
        }
        let mut status_timer = tokio::time::interval(status_interval);
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
                    // Its progress is with the worker: the channel may acknowledge it.
                    inbox.mark_applied();
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
                blocking,
            } => {
                if !blocking && self.resumer.as_ref().is_some_and(|r| !r.is_incremental()) {
                    tracing::warn!(signal_id = %id, "signal: execute-snapshot deferred until the interrupted initial snapshot, being resumed, completes (held in memory: a restart before then loses it)");
                    self.signals.deferred.push(Signal::ExecuteSnapshot {
                        id,
                        data_collections,
                        conditions,
                        blocking,
                    });
                    return Ok(());
                }
                // The captured tables as they are now (tables created since the start are
                // captured too), so that a partitioned table is read only when its changes
                // are published under it.
                let published = catalog::publication_tables(
                    &self.catalog_client,
                    &self.config.publication_name,
                )
                .await?;
                let tables: Vec<_> = catalog::keep_published(
                    select_tables(&self.config, &self.catalog_client).await?,
                    &published,
                )
                .into_iter()
                .filter(|t| snapshot::signal::matches_any(&data_collections, &t.schema, &t.table))
                .map(|t| {
                    let name = format!("{}.{}", t.schema, t.table);
                    let filter = conditions
                        .iter()
                        .find(|c| c.data_collection == name)
                        .map(|c| c.filter.clone());
                    (t, filter)
                })
                .collect();
                let kind = if blocking { "blocking" } else { "incremental" };
                tracing::info!(signal_id = %id, patterns = ?data_collections, tables = tables.len(), kind, "signal: execute-snapshot");
                if tables.is_empty() {
                    tracing::warn!(signal_id = %id, patterns = ?data_collections, "signal: no captured table matches the data collections; nothing to snapshot");
                    return Ok(());
                }
                if blocking {
                    // Taken at the next transaction boundary (see `snapshot::blocking`).
                    self.signals
                        .blocking
                        .push_back(snapshot::blocking::BlockingRequest { id, tables });
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
                        .add_tables(&self.catalog_client, &self.config.snapshot, &id, tables)
                        .await?
                    {
                        out.push(SourceMessage::SnapshotProgress(update));
                    }
                }
            }
        }
        if let Some(resumer) = self.resumer.as_mut() {
            out.extend(
                resumer
                    .take_notifications()
                    .into_iter()
                    .map(SourceMessage::Notification),
            );
        }
        Ok(())
    }

    /// A change of the signaling table: an INSERT is a signal (Debezium's source channel).
    ///
    /// Debezium's window rows (`incremental.snapshot.watermarking.strategy`) go to the
    /// incremental snapshot instead: the INSERT of a `snapshot-window-open` or
    /// `snapshot-window-close` row, and with `insert_delete` the DELETE of an open row.
    fn take_signal(&mut self, event: &ChangeEvent) {
        let deleted = event.op == pgseam_model::Operation::Delete;
        if event.op != pgseam_model::Operation::Create && !deleted {
            return;
        }
        let Some(row) = (if deleted {
            event.before.as_ref()
        } else {
            event.after.as_ref()
        }) else {
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
        if deleted {
            if let Some(resumer) = self.resumer.as_mut() {
                resumer.on_window_row(&id, None);
            }
            return;
        }
        let kind = column("type");
        if let Some(window) = kind
            .as_deref()
            .filter(|k| [snapshot::WINDOW_OPEN, snapshot::WINDOW_CLOSE].contains(k))
        {
            // A window row of this or an earlier run: never a signal.
            if let Some(resumer) = self.resumer.as_mut() {
                resumer.on_window_row(&id, Some(window));
            }
            return;
        }
        let Some(kind) = kind else {
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
        // A blocking snapshot waits for an open window to close (its rows are emitted first).
        if !self.signals.blocking.is_empty()
            && !self.resumer.as_ref().is_some_and(|r| r.has_open_window())
        {
            return self.read_blocking(replication, status_timer).await;
        }
        let Some(resumer) = self.resumer.as_mut() else {
            return Ok(());
        };
        // A blocking snapshot waits for the open windows to close: none opens meanwhile.
        if !self.signals.blocking.is_empty() {
            return Ok(());
        }
        resumer.start_windows().await?;
        if resumer.next_is_whole() {
            return self.read_whole(replication, status_timer).await;
        }
        if resumer.is_finished() {
            resumer.complete();
            resumer.notify_completed();
            let notifications = resumer.take_notifications();
            let (windows, rows, max_open_windows) = resumer.summary();
            self.resumer = None;
            for notification in notifications {
                let _sent = self
                    .send_with_keepalive(
                        replication,
                        status_timer,
                        SourceMessage::Notification(notification),
                    )
                    .await?;
            }
            tracing::info!(
                windows,
                rows,
                max_open_windows,
                "the resumed snapshot is complete"
            );
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
            let ChunkMessage::Rows { events, bytes } = message else {
                continue;
            };
            if let Some(resumer) = self.resumer.as_ref() {
                resumer.count_whole_rows(events.len() as u64, bytes);
            }
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

    /// Takes the next blocking snapshot (see `snapshot::blocking`): the stream pauses (status
    /// updates go on) while the tables' rows are sent with the initial snapshot's markers and
    /// notifications, then streaming resumes where it stopped.
    async fn read_blocking(
        &mut self,
        replication: &mut ReplicationConnection,
        status_timer: &mut tokio::time::Interval,
    ) -> Result<()> {
        use pgseam_model::{Notification, INITIAL_SNAPSHOT};
        let Some(request) = self.signals.blocking.pop_front() else {
            return Ok(());
        };
        let position = self.last_received;
        let names: Vec<String> = request
            .tables
            .iter()
            .map(|(t, _)| t.qualified_name())
            .collect();
        tracing::info!(signal_id = %request.id, tables = ?names, lsn = %position, "blocking snapshot: streaming paused");
        let notify = |kind: &'static str, data: Vec<(&str, String)>| {
            SourceMessage::Notification(Notification::now(None, INITIAL_SNAPSHOT, kind, data))
        };
        let snapshotted = snapshot::java_hash_set_order(names.clone()).join(",");
        let captured = {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.join(",")
        };
        if !self
            .send_with_keepalive(replication, status_timer, notify("STARTED", Vec::new()))
            .await?
        {
            return Ok(());
        }
        let (mut rows, task) = snapshot::blocking::start(
            &self.config.connect,
            &self.config.snapshot,
            &request,
            position,
        );
        // The last row is held back until the next one (or the end) says whether it is the
        // last of its table, or of the snapshot.
        // (row, first overall, first in its table, last in its table)
        let mut held: Option<(ChangeEvent, bool, bool, bool)> = None;
        let mut table = 0usize;
        let mut table_rows = 0u64;
        let mut total = 0u64;
        let mut started_table = false;
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
            let mut out = Vec::new();
            if !started_table {
                started_table = true;
                out.push(notify(
                    "IN_PROGRESS",
                    vec![
                        (
                            "current_collection_in_progress",
                            names.get(table).cloned().unwrap_or_default(),
                        ),
                        ("data_collections", snapshotted.clone()),
                    ],
                ));
            }
            match message {
                ChunkMessage::Rows { events, .. } => {
                    for event in events {
                        if let Some((row, first, first_in_table, last_in_table)) = held.take() {
                            out.push(blocking_row(
                                row,
                                position,
                                [first, first_in_table, last_in_table, false],
                            ));
                        }
                        held = Some((event, total == 0, table_rows == 0, false));
                        table_rows += 1;
                        total += 1;
                    }
                }
                ChunkMessage::Done => {
                    // The table's last row (sent once the next row, or the end, says whether
                    // it is the snapshot's last).
                    if let Some(held) = held.as_mut().filter(|_| table_rows > 0) {
                        held.3 = true;
                    }
                    out.push(notify(
                        "TABLE_SCAN_COMPLETED",
                        vec![
                            (
                                "scanned_collection",
                                names.get(table).cloned().unwrap_or_default(),
                            ),
                            ("data_collections", captured.clone()),
                            ("total_rows_scanned", table_rows.to_string()),
                            ("status", "SUCCEEDED".to_owned()),
                        ],
                    ));
                    table += 1;
                    table_rows = 0;
                    started_table = false;
                }
                ChunkMessage::Delivered(_) => {}
                // Its reads run without a row encoder.
                ChunkMessage::Read { .. } => {
                    return Err(SourceError::Protocol(
                        "a blocking snapshot read sent converted rows".into(),
                    ))
                }
            }
            for message in out {
                if !self
                    .send_with_keepalive(replication, status_timer, message)
                    .await?
                {
                    task.abort();
                    return Ok(()); // stopping: the blocking snapshot is not resumed
                }
            }
        }
        match task.await {
            Ok(result) => result?,
            Err(join) => {
                return Err(SourceError::Setup(format!(
                    "blocking snapshot task failed: {join}"
                )))
            }
        }
        let mut out = Vec::new();
        if let Some((row, first, first_in_table, _)) = held.take() {
            out.push(blocking_row(
                row,
                position,
                [first, first_in_table, true, true],
            ));
        }
        out.push(notify("COMPLETED", Vec::new()));
        for message in out {
            let _sent = self
                .send_with_keepalive(replication, status_timer, message)
                .await?;
        }
        tracing::info!(signal_id = %request.id, rows = total, "blocking snapshot complete: streaming resumes");
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
        if self.feedback.borrow().finished {
            // The worker is done and will not read this message: it is not durable, so the
            // next start reads it again. Returning lets the stream loop send the final status
            // update instead of waiting behind a full channel.
            return Ok(false);
        }
        // Fast path, the common case of a consumer that keeps up: room in the channel. The
        // select below would take the same permit, but builds and drops a watch and a timer
        // future per message, which was a fifth of the streaming CPU.
        match self.events.try_reserve() {
            Ok(permit) => {
                permit.send(message);
                return Ok(true);
            }
            Err(mpsc::error::TrySendError::Closed(())) => return Err(SourceError::ConsumerGone),
            Err(mpsc::error::TrySendError::Full(())) => {}
        }
        let events = self.events.clone();
        loop {
            if self.feedback.borrow().finished {
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
                    out.extend(
                        resumer
                            .take_notifications()
                            .into_iter()
                            .map(SourceMessage::Notification),
                    );
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
/// How often to send status updates: `status.update.interval.ms`, but at most a third of the
/// server's `wal_sender_timeout`. While the event channel is full (Kafka applies backpressure)
/// the source reads nothing from the socket, so it cannot answer the server's keepalive
/// requests; these timed updates are then all that keeps the walsender from timing out.
/// pg_recvlogical makes the same choice for its own interval.
fn status_interval(configured: Duration, wal_sender_timeout: Option<Duration>) -> Duration {
    let floor = Duration::from_millis(100);
    match wal_sender_timeout {
        Some(timeout) => configured.min((timeout / 3).max(floor)),
        None => configured,
    }
    .max(Duration::from_millis(1))
}

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

/// A row of a blocking snapshot: the initial snapshot's marker, at the stream position where
/// streaming paused.
/// `flags`: first overall, first in its table, last in its table, last overall.
fn blocking_row(mut event: ChangeEvent, position: Lsn, flags: [bool; 4]) -> SourceMessage {
    let [first_overall, first_in_table, last_in_table, last_overall] = flags;
    event.source.snapshot =
        snapshot::marker(first_overall, first_in_table, last_in_table, last_overall);
    event.source.lsn = Some(position);
    event.source.tx_id = None;
    event.position = Position::Snapshot {
        consistent_point: position,
        last: last_overall,
    };
    SourceMessage::Event(event)
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_updates_come_well_within_wal_sender_timeout() {
        use std::time::Duration;
        let s = Duration::from_secs;
        // Debezium's default 10 s against PostgreSQL's default 60 s: unchanged.
        assert_eq!(super::status_interval(s(10), Some(s(60))), s(10));
        // 10 s against a 5 s timeout: a third of the timeout.
        assert_eq!(super::status_interval(s(10), Some(s(5))), s(5) / 3);
        // No timeout (0): as configured.
        assert_eq!(super::status_interval(s(30), None), s(30));
        // A tiny timeout never drives the interval below 100 ms, nor raises a smaller setting.
        assert_eq!(
            super::status_interval(s(10), Some(Duration::from_millis(30))),
            Duration::from_millis(100)
        );
        assert_eq!(
            super::status_interval(Duration::from_millis(20), Some(s(60))),
            Duration::from_millis(20)
        );
    }

    use super::*;

    fn slot(confirmed: u64, wal_status: &str) -> slot::SlotInfo {
        slot::SlotInfo {
            plugin: Some("pgoutput".into()),
            database: Some("postgres".into()),
            active_pid: None,
            confirmed_flush_lsn: Some(Lsn(confirmed)),
            wal_status: Some(wal_status.into()),
        }
    }

    fn plan(
        mode: SnapshotMode,
        strategy: OffsetMismatchStrategy,
        start: StartPoint,
        existing: Option<&slot::SlotInfo>,
    ) -> Result<StartPlan> {
        plan_start(mode, strategy, "s", start, existing)
    }

    const NEW_SNAPSHOT: StartPlan = StartPlan::Start(StartPoint::Fresh { replace_slot: true });
    const CHECKED: OffsetMismatchStrategy = OffsetMismatchStrategy::NoValidation;

    #[test]
    fn a_complete_offset_streams_except_under_always_and_initial_only() {
        let ok = slot(100, "reserved");
        let resume = StartPoint::Resume { lsn: Lsn(200) };
        for mode in [
            SnapshotMode::Initial,
            SnapshotMode::NoData,
            SnapshotMode::WhenNeeded,
        ] {
            assert_eq!(
                plan(mode, CHECKED, resume.clone(), Some(&ok)).unwrap(),
                StartPlan::Start(resume.clone())
            );
        }
        assert_eq!(
            plan(SnapshotMode::Always, CHECKED, resume.clone(), Some(&ok)).unwrap(),
            StartPlan::Resnapshot { lsn: Lsn(200) }
        );
        assert_eq!(
            plan(SnapshotMode::InitialOnly, CHECKED, resume, Some(&ok)).unwrap(),
            StartPlan::Done
        );
    }

    #[test]
    fn an_offset_the_slot_cannot_serve_fails_or_snapshots_under_when_needed() {
        let resume = StartPoint::Resume { lsn: Lsn(200) };
        let lost = slot(100, "lost");
        let ahead = slot(300, "reserved");
        for existing in [None, Some(&lost), Some(&ahead)] {
            for strategy in [
                OffsetMismatchStrategy::NoValidation,
                OffsetMismatchStrategy::TrustOffset,
            ] {
                for mode in [SnapshotMode::Initial, SnapshotMode::Always] {
                    let e = plan(mode, strategy, resume.clone(), existing)
                        .unwrap_err()
                        .to_string();
                    assert!(
                        e.contains("when_needed") || e.contains("wal_status = lost"),
                        "{e}"
                    );
                }
                assert_eq!(
                    plan(SnapshotMode::WhenNeeded, strategy, resume.clone(), existing).unwrap(),
                    NEW_SNAPSHOT
                );
            }
        }
    }

    #[test]
    fn trust_slot_follows_a_slot_past_the_offset_but_never_a_lost_or_missing_one() {
        let resume = StartPoint::Resume { lsn: Lsn(200) };
        let ahead = slot(300, "reserved");
        for strategy in [
            OffsetMismatchStrategy::TrustSlot,
            OffsetMismatchStrategy::TrustGreaterLsn,
        ] {
            for mode in [SnapshotMode::Initial, SnapshotMode::WhenNeeded] {
                assert_eq!(
                    plan(mode, strategy, resume.clone(), Some(&ahead)).unwrap(),
                    StartPlan::Start(StartPoint::Resume { lsn: Lsn(300) })
                );
            }
            assert!(plan(
                SnapshotMode::Initial,
                strategy,
                resume.clone(),
                Some(&slot(100, "lost"))
            )
            .is_err());
            assert!(plan(SnapshotMode::Initial, strategy, resume.clone(), None).is_err());
        }
    }

    #[test]
    fn an_existing_slot_without_offset_is_replaced_only_by_always_and_when_needed() {
        let ok = slot(100, "reserved");
        let fresh = StartPoint::Fresh {
            replace_slot: false,
        };
        for mode in [SnapshotMode::Always, SnapshotMode::WhenNeeded] {
            assert_eq!(
                plan(mode, CHECKED, fresh.clone(), Some(&ok)).unwrap(),
                NEW_SNAPSHOT
            );
        }
        for mode in [
            SnapshotMode::Initial,
            SnapshotMode::NoData,
            SnapshotMode::InitialOnly,
        ] {
            // `run` refuses the slot then: it may belong to another consumer.
            assert_eq!(
                plan(mode, CHECKED, fresh.clone(), Some(&ok)).unwrap(),
                StartPlan::Start(fresh.clone())
            );
        }
    }

    #[test]
    fn an_interrupted_snapshot_resumes_except_under_always_and_initial_only() {
        let progress = snapshot::SnapshotProgress::new(Lsn(150));
        let start = StartPoint::ResumeSnapshot {
            lsn: Lsn(150),
            progress,
        };
        let ok = slot(150, "reserved");
        for mode in [SnapshotMode::Initial, SnapshotMode::WhenNeeded] {
            assert_eq!(
                plan(mode, CHECKED, start.clone(), Some(&ok)).unwrap(),
                StartPlan::Start(start.clone())
            );
            assert_eq!(
                plan(mode, CHECKED, start.clone(), None).unwrap(),
                NEW_SNAPSHOT
            );
        }
        assert_eq!(
            plan(SnapshotMode::InitialOnly, CHECKED, start.clone(), Some(&ok)).unwrap(),
            NEW_SNAPSHOT
        );
        assert_eq!(
            plan(SnapshotMode::Always, CHECKED, start.clone(), Some(&ok)).unwrap(),
            StartPlan::Resnapshot { lsn: Lsn(150) }
        );
        assert!(plan(
            SnapshotMode::Initial,
            CHECKED,
            start.clone(),
            Some(&slot(400, "reserved"))
        )
        .is_err());
        assert_eq!(
            plan(
                SnapshotMode::WhenNeeded,
                CHECKED,
                start,
                Some(&slot(400, "reserved"))
            )
            .unwrap(),
            NEW_SNAPSHOT
        );
    }
}
