//! Resuming an interrupted initial snapshot while streaming from its consistent point, and
//! reading the tables of a signalled incremental snapshot (see `signal`) the same way.
//!
//! Both feed the `Resumer` work: a resume plans the captured tables the progress does not
//! cover (`Resumer::prepare`); a signal adds tables (`Resumer::add_tables`, keyed tables
//! only, each with its optional `additional-conditions` filter applied to every window) or
//! removes them (`Resumer::stop`). An incremental snapshot's progress carries its table list
//! (`SnapshotProgress::incremental`), so a restart plans exactly those tables again, after the
//! stored key.
//!
//! After a crash mid-snapshot the exported snapshot is gone, but the slot (at consistent
//! point C) and the stored progress (see `progress`) remain. The source starts streaming at
//! the stored position (C, or the end of the last delivered transaction of an earlier resume)
//! and reads what the progress does not cover, each table under fresh snapshots:
//!
//! - a table delivered whole is skipped;
//! - a table with a primary key is read in key order, in windows of at most
//!   [`WINDOW_MAX_ROWS`] keys, starting after the stored key if it was chunked by key
//!   ranges, from the start otherwise (a partly delivered ctid-chunked table: ctid ranges
//!   cannot be resumed under another snapshot);
//! - a table without a primary key (or with a `snapshot.select.statement.overrides`
//!   statement) cannot be deduplicated: it is re-read whole, and its rows may repeat.
//!
//! # A window (DBLog), in this order
//!
//! On a normal session of its own (`synchronous_commit = local`, timeouts off):
//! 1. **Low watermark**: `SELECT pg_logical_emit_message(true, '__pgseam.<slot>', 'low:<id>')`.
//!    Transactional, so that its COMMIT flushes the WAL: PostgreSQL 15 does not flush a
//!    non-transactional message, and the walsender only sends flushed WAL, so in an idle
//!    database a non-transactional watermark could wait indefinitely. In the stream it is a
//!    transaction of its own, positioned by its commit like every change.
//! 2. **The commit-visibility race**: a transaction's commit record is written (and decoded)
//!    before the transaction leaves the ProcArray, so a change streamed before the low
//!    watermark can still be invisible to a snapshot taken after it. The session takes
//!    `pg_current_snapshot()` after the low watermark committed and waits until every
//!    transaction in its `xip` list is visible in a new snapshot
//!    (`pg_visible_in_snapshot(xid, pg_current_snapshot())`: it has left the ProcArray,
//!    committed or not). Every transaction whose commit precedes the low watermark is then
//!    visible to the chunk's read.
//! 3. **Read** the chunk by key range, `(k) > (after) AND (k) <= (upper)`, where `upper` is
//!    the [`WINDOW_MAX_ROWS`]-th key after `after` (none: the rest of the table), under the
//!    COPY statement's own snapshot, into a buffer (binary COPY, decoded as the initial
//!    snapshot decodes).
//! 4. **High watermark**: `… 'high:<id>'`.
//!
//! With `incremental.snapshot.watermarking.strategy` set, the watermarks are Debezium's rows
//! in the signaling table instead (see [`WatermarkWriter`]): the stream recognises them by
//! their `type` (or, for `insert_delete`'s close, the DELETE of the open row) and ignores
//! logical-message watermarks.
//!
//! Meanwhile the stream goes on (keepalives, status updates, events); between the two
//! watermarks it remembers the keys of the table changed (see `window`). At the end of the
//! high watermark's transaction the buffered rows whose keys did not change are emitted as
//! `op = "r"` events, then the progress step (the key range, or the table done). The worker
//! stores that with the stream position, so a crash during a resume continues from the last
//! completed window. After the last window the source sends `ProgressUpdate::Finished` and
//! the worker stores a plain streaming offset: the snapshot is complete.
//!
//! A table without a key is read at a transaction boundary of the stream, which pauses
//! (status updates go on) while the rows are sent: after the same wait for running
//! transactions, every change committed before that point is in the read; changes committed
//! after it may be in the read and in the stream (duplicates, never a loss).
//!
//! Resumed rows carry `source.snapshot = "incremental"`, as Debezium's incremental snapshot
//! rows do (`OffsetContext.incrementalSnapshotEvents()` sets `SnapshotRecord.INCREMENTAL`),
//! and the position of the high watermark's commit.
//!
//! The resume drives the snapshot counters (`settings.stats`, what the connector's snapshot
//! metrics read) as the initial snapshot does: started when it is planned, over the tables
//! left to read (a key window counts as a chunk), rows as they are emitted, completed after
//! the last table; a resume that stops early leaves them finished but not completed.
//!
//! Each watermark is a transaction of its own in the stream: with
//! `provide.transaction.metadata=true` it shows as a BEGIN/END pair with no events on the
//! transaction topic (two per window), as the transactions of a heartbeat action query do.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgseam_model::{
    ChangeEvent, Lsn, Notification, Position, SnapshotMarker, INCREMENTAL_SNAPSHOT,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::checkpoint::{IncrementalTable, KeyProgress, ProgressUpdate, SnapshotProgress};
use super::plan::{self, Chunk, ChunkStrategy, TablePlan};
use super::progress::SnapshotStats;
use super::window::{Phase, Window};
use super::{
    reader, ChunkMessage, SnapshotContext, SnapshotSettings, WatermarkStrategy,
    CHUNK_CHANNEL_BATCHES, SESSION_TIMEOUTS,
};
use crate::catalog::{load_table_schema, quote_identifier, TableIdentity};
use crate::connection::{connect_query_session, ConnectParams};
use crate::error::{Result, SourceError};
use crate::source::SourceMessage;

/// Most keys one window reads (and buffers).
pub(crate) const WINDOW_MAX_ROWS: u64 = 10_000;

/// How often the wait for running transactions looks again.
const XID_POLL: Duration = Duration::from_millis(20);

/// One table still to read.
struct Work {
    plan: Arc<TablePlan>,
    kind: WorkKind,
    /// Its index in the snapshot counters.
    stats_index: usize,
    /// The table's greatest key (under its filter), as the snapshot's first window of it
    /// found it (kept across restarts in [`KeyProgress::max_key`]): the `maximum_key` of the
    /// notifications.
    max_key: Option<Vec<String>>,
    /// Rows read of it in this run: `total_rows_scanned` of the notifications.
    scanned: u64,
}

enum WorkKind {
    /// By key windows, after `after` (from the start when `None`).
    Keyed {
        select_list: String,
        key_columns: Vec<String>,
        types: Vec<String>,
        after: Option<Vec<String>>,
        /// `additional-conditions` of a signalled snapshot: only rows matching it.
        filter: Option<String>,
    },
    /// Whole, by this COPY statement, without deduplication.
    Whole { copy: String },
}

/// What a window's task read.
struct WindowRead {
    rows: Vec<ChangeEvent>,
    /// COPY bytes read (emitted or not).
    bytes: u64,
    /// The last key of the window (`None`: the table is read to its end).
    upper: Option<Vec<String>>,
    /// The table's greatest key, when the job asked for it.
    max_key: Option<Vec<String>>,
}

type WindowTask = JoinHandle<Result<(Client, WindowRead)>>;

struct Active {
    window: Window,
    task: Option<WindowTask>,
    read: Option<WindowRead>,
}

/// The source's resume state: remaining tables, the open window, the session.
pub(crate) struct Resumer {
    watermarks: Arc<WatermarkWriter>,
    run_id: String,
    next_id: u64,
    client: Option<Client>,
    work: VecDeque<Work>,
    active: Option<Active>,
    context: Arc<SnapshotContext>,
    window_rows: u64,
    rows_emitted: u64,
    windows: u64,
    /// A signalled incremental snapshot's progress (its table list; `None`: the resume of
    /// an initial snapshot).
    incremental: Option<SnapshotProgress>,
    /// `pause-snapshot`: no window opens until `resume-snapshot`.
    paused: bool,
    /// `stop-snapshot` of the table whose window is open: its rows are dropped at the end.
    cancel_front: bool,
    stats: Arc<SnapshotStats>,
    /// The id of the signal that started (or last extended) the incremental snapshot:
    /// Debezium's correlation id, the notifications' id. Stored with the progress
    /// ([`SnapshotProgress::correlation_id`]), so a restart keeps it.
    correlation_id: Option<String>,
    /// `stop-snapshot` emptied the snapshot: it ends ABORTED, not COMPLETED.
    aborted: bool,
    /// Notifications made since the source last took them ([`Resumer::take_notifications`]).
    notifications: Vec<Notification>,
}

impl Drop for Resumer {
    /// However the resume ends, its counters stop (completed only by [`Resumer::complete`]).
    fn drop(&mut self) {
        self.stats.finish();
    }
}

/// `__pgseam.<slot>`: the prefix of this slot's watermarks.
pub(crate) fn watermark_prefix(slot: &str) -> String {
    format!("{}{slot}", crate::stream::PGSEAM_MESSAGE_PREFIX)
}

fn query_error(context: String) -> impl FnOnce(tokio_postgres::Error) -> SourceError {
    move |error| SourceError::Query { context, error }
}

impl Resumer {
    /// Plans what `progress` leaves to read of the captured tables (those
    /// `snapshot.include.collection.list` selects).
    pub(crate) async fn prepare(
        params: &ConnectParams,
        settings: &SnapshotSettings,
        captured: &[TableIdentity],
        progress: &SnapshotProgress,
        slot: &str,
    ) -> Result<Resumer> {
        let client = connect_query_session(params).await?;
        client
            .batch_execute(&format!(
                "{SESSION_TIMEOUTS}; SET synchronous_commit = local"
            ))
            .await
            .map_err(query_error(
                "cannot set up the snapshot resume session".into(),
            ))?;
        let mut work = VecDeque::new();
        let mut skipped = 0usize;
        if let Some(tables) = &progress.incremental {
            for entry in tables {
                let (schema, table) = &entry.table;
                if progress.is_done(schema, table) {
                    skipped += 1;
                    continue;
                }
                let Some(oid) = table_oid(&client, schema, table).await? else {
                    tracing::warn!(table = %format!("{schema}.{table}"), "incremental snapshot: the table does not exist any more; skipped");
                    continue;
                };
                if let Some(w) =
                    plan_work(&client, settings, oid, progress, entry.filter.clone(), true).await?
                {
                    work.push_back(w);
                }
            }
        } else {
            for table in captured {
                if settings
                    .include
                    .as_ref()
                    .is_some_and(|f| !f(&table.schema, &table.table))
                {
                    continue;
                }
                if progress.is_done(&table.schema, &table.table) {
                    skipped += 1;
                    continue;
                }
                if let Some(w) =
                    plan_work(&client, settings, table.oid, progress, None, false).await?
                {
                    work.push_back(w);
                }
            }
        }
        if progress.incremental.is_some() {
            tracing::info!(
                tables_done = skipped,
                tables_left = work.len(),
                started_at = %progress.consistent_point,
                "incremental snapshot: reading while streaming"
            );
        } else {
            tracing::info!(
                tables_done = skipped,
                tables_left = work.len(),
                consistent_point = %progress.consistent_point,
                "resuming the interrupted initial snapshot while streaming"
            );
        }
        let window_rows = if progress.incremental.is_some() {
            settings.incremental_chunk_rows
        } else {
            settings.chunk_rows
        }
        .clamp(1, WINDOW_MAX_ROWS);
        // The snapshot counters follow the resume of an initial snapshot (table i of the
        // counters is work item i); a signalled incremental snapshot leaves them alone.
        if progress.incremental.is_none() {
            for (index, w) in work.iter_mut().enumerate() {
                w.stats_index = index;
            }
            settings.stats.start();
            settings.stats.begin_tables(work.iter().map(|w| {
                let chunks = match w.kind {
                    WorkKind::Keyed { .. } => w.plan.estimated_rows.div_ceil(window_rows).max(1),
                    WorkKind::Whole { .. } => 1,
                };
                (
                    w.plan.schema.qualified_name(),
                    w.plan.estimated_rows,
                    chunks,
                )
            }));
        }
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
            .to_string();
        Ok(Resumer {
            watermarks: Arc::new(WatermarkWriter::new(settings, slot)?),
            run_id,
            next_id: 0,
            client: Some(client),
            work,
            active: None,
            context: Arc::new(SnapshotContext {
                database: params.dbname.as_str().into(),
                consistent_point: progress.consistent_point,
                started_at_us: now_us(),
                tx_id: None,
                throttle: Arc::new(super::throttle::Throttle::new(&settings.throttle)),
            }),
            window_rows,
            rows_emitted: 0,
            windows: 0,
            incremental: progress.incremental.is_some().then(|| progress.clone()),
            paused: false,
            cancel_front: false,
            stats: Arc::clone(&settings.stats),
            correlation_id: progress.correlation_id.clone(),
            aborted: false,
            notifications: Vec::new(),
        })
    }

    /// Whether this reads a signalled incremental snapshot (not an initial one's resume).
    pub(crate) fn is_incremental(&self) -> bool {
        self.incremental.is_some()
    }

    /// The notifications made since the last call (incremental snapshots only).
    pub(crate) fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.notifications)
    }

    /// Queues an incremental-snapshot notification (see `pgseam_model::Notification`).
    fn notify(&mut self, kind: &'static str, data: Vec<(&str, String)>) {
        if self.incremental.is_some() {
            self.notifications.push(Notification::now(
                self.correlation_id.as_deref(),
                INCREMENTAL_SNAPSHOT,
                kind,
                data,
            ));
        }
    }

    /// `data_collections`: the tables of the snapshot not read yet, the current one first,
    /// as Debezium lists its context's data collections.
    fn data_collections(&self) -> String {
        self.work
            .iter()
            .map(|w| w.plan.schema.qualified_name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The incremental snapshot has read every table: its COMPLETED notification, unless
    /// `stop-snapshot` ended it (ABORTED was sent then).
    pub(crate) fn notify_completed(&mut self) {
        if !self.aborted {
            self.notify("COMPLETED", Vec::new());
        }
    }

    /// Adds the tables of an `execute-snapshot` signal (`tables` with their filters; read
    /// with `client`, the source's catalog session) and returns the new progress to store.
    /// A table without a primary key is skipped, as Debezium skips it.
    pub(crate) async fn add_tables(
        &mut self,
        client: &Client,
        settings: &SnapshotSettings,
        signal_id: &str,
        tables: Vec<(TableIdentity, Option<String>)>,
    ) -> Result<Option<ProgressUpdate>> {
        // Debezium's `addDataCollectionNamesToSnapshot`: STARTED only when no snapshot was
        // running; the signal's id becomes the correlation id either way.
        let was_running = !self.is_finished();
        self.correlation_id = Some(signal_id.to_owned());
        let Some(progress) = self.incremental.as_mut() else {
            return Ok(None);
        };
        progress.correlation_id = Some(signal_id.to_owned());
        let mut added = 0usize;
        for (table, filter) in tables {
            let name = (table.schema.clone(), table.table.clone());
            let list = progress.incremental.get_or_insert_with(Vec::new);
            let queued = list.iter().any(|t| t.table == name) && !progress.done.contains(&name);
            if queued {
                tracing::info!(table = %format!("{}.{}", name.0, name.1), "incremental snapshot: the table is already queued");
                continue;
            }
            let empty = SnapshotProgress::new(progress.consistent_point);
            let Some(w) =
                plan_work(client, settings, table.oid, &empty, filter.clone(), true).await?
            else {
                continue;
            };
            progress.done.retain(|t| t != &name);
            list.retain(|t| t.table != name);
            list.push(IncrementalTable {
                table: name,
                filter,
            });
            self.work.push_back(w);
            added += 1;
        }
        tracing::info!(
            added,
            tables_left = self.work.len(),
            "incremental snapshot: tables queued"
        );
        let update = (added > 0).then(|| ProgressUpdate::Incremental(progress.clone()));
        if added > 0 && !was_running {
            self.aborted = false;
            let data_collections = self.data_collections();
            self.notify("STARTED", vec![("data_collections", data_collections)]);
        }
        Ok(update)
    }

    /// `stop-snapshot`: the tables matching `patterns` (all when empty) leave the snapshot.
    /// Returns the new progress to store.
    pub(crate) fn stop(&mut self, patterns: &[String]) -> Option<ProgressUpdate> {
        let progress = self.incremental.as_mut()?;
        let matches = |w: &Work| {
            patterns.is_empty()
                || super::signal::matches_any(patterns, &w.plan.schema.schema, &w.plan.schema.table)
        };
        let front_open = self.active.is_some();
        let mut stopped = Vec::new();
        let mut kept = VecDeque::new();
        for (i, w) in self.work.drain(..).enumerate() {
            if matches(&w) {
                stopped.push((
                    w.plan.schema.schema.to_string(),
                    w.plan.schema.table.to_string(),
                ));
                if i == 0 && front_open {
                    // Its window ends first; finish_window drops it.
                    self.cancel_front = true;
                    kept.push_back(w);
                }
            } else {
                kept.push_back(w);
            }
        }
        self.work = kept;
        if let Some(list) = progress.incremental.as_mut() {
            list.retain(|t| !stopped.contains(&t.table));
        }
        if progress
            .partial
            .as_ref()
            .is_some_and(|p| stopped.contains(&p.table))
        {
            progress.partial = None;
        }
        for (schema, table) in &stopped {
            tracing::info!(table = %format!("{schema}.{table}"), "incremental snapshot: table stopped by signal");
        }
        let update = (!stopped.is_empty()).then(|| ProgressUpdate::Incremental(progress.clone()));
        // Debezium's `checkAndProcessStopFlag`: ABORTED with the stopped collections; a
        // snapshot left without tables ends there (no COMPLETED).
        if self.work.len() == usize::from(self.cancel_front) {
            self.aborted = true;
        }
        let names: Vec<String> = stopped.iter().map(|(s, t)| format!("{s}.{t}")).collect();
        self.notify("ABORTED", vec![("data_collections", names.join(","))]);
        update
    }

    /// `pause-snapshot` / `resume-snapshot`.
    pub(crate) fn set_paused(&mut self, paused: bool) {
        let changed = self.paused != paused;
        self.paused = paused;
        tracing::info!(
            paused,
            "incremental snapshot paused state changed by signal"
        );
        // Debezium notifies only a change of a running snapshot.
        if changed && !self.is_finished() {
            let data_collections = self.data_collections();
            let kind = if paused { "PAUSED" } else { "RESUMED" };
            self.notify(kind, vec![("data_collections", data_collections)]);
        }
    }

    /// Keeps the incremental progress in step with an update sent to the worker.
    fn track(&mut self, update: &ProgressUpdate) {
        if let Some(progress) = self.incremental.as_mut() {
            progress.apply(update);
        }
    }

    /// Every table is read and no window is open.
    pub(crate) fn has_open_window(&self) -> bool {
        self.active.is_some()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.work.is_empty() && self.active.is_none()
    }

    /// No window is open and the next table is read by key windows.
    pub(crate) fn can_start_window(&self) -> bool {
        !self.paused
            && self.active.is_none()
            && self
                .work
                .front()
                .is_some_and(|w| matches!(w.kind, WorkKind::Keyed { .. }))
    }

    /// No window is open and the next table is read whole.
    pub(crate) fn next_is_whole(&self) -> bool {
        !self.paused
            && self.active.is_none()
            && self
                .work
                .front()
                .is_some_and(|w| matches!(w.kind, WorkKind::Whole { .. }))
    }

    pub(crate) fn summary(&self) -> (u64, u64) {
        (self.windows, self.rows_emitted)
    }

    /// Every table is read: the snapshot counters complete.
    pub(crate) fn complete(&self) {
        self.stats.complete();
    }

    /// `rows` rows (`bytes` COPY bytes) of the table being re-read whole were emitted.
    pub(crate) fn count_whole_rows(&self, rows: u64, bytes: u64) {
        if let Some(work) = self.work.front() {
            self.stats.add_rows(work.stats_index, rows, bytes);
        }
    }

    /// Opens the next window: its task writes the low watermark, waits, reads, and writes
    /// the high watermark, while the stream goes on.
    pub(crate) fn start_window(&mut self) -> Result<()> {
        let (Some(work), Some(client)) = (self.work.front(), self.client.take()) else {
            return Ok(());
        };
        let WorkKind::Keyed {
            select_list,
            key_columns,
            types,
            after,
            filter,
        } = &work.kind
        else {
            self.client = Some(client);
            return Ok(());
        };
        self.next_id += 1;
        let id = format!("{}-{}", self.run_id, self.next_id);
        let job = KeyedJob {
            watermarks: Arc::clone(&self.watermarks),
            id: id.clone(),
            plan: Arc::clone(&work.plan),
            select_list: select_list.clone(),
            key_columns: key_columns.clone(),
            types: types.clone(),
            after: after.clone(),
            filter: filter.clone(),
            rows: self.window_rows,
            context: Arc::clone(&self.context),
            want_max: self.incremental.is_some() && work.max_key.is_none(),
            known_max: work.max_key.clone(),
        };
        tracing::debug!(table = %work.plan.schema.qualified_name(), window = %id, "snapshot resume window opened");
        self.active = Some(Active {
            window: Window::new(id, work.plan.schema.relation_id),
            task: Some(tokio::spawn(read_window(client, job))),
            read: None,
        });
        Ok(())
    }

    /// A logical message: if it is one of this slot's watermarks, the window moves on.
    /// Returns whether the prefix is this slot's.
    pub(crate) fn on_message(&mut self, prefix: &str, content: &[u8]) -> bool {
        if prefix != self.watermarks.prefix {
            return false;
        }
        if self.watermarks.strategy != WatermarkStrategy::Message {
            // Not this configuration's watermarks (an earlier run's, before a restart with
            // another strategy): ignored, as Debezium ignores a window it does not expect.
            return true;
        }
        let Some(active) = self.active.as_mut() else {
            return true;
        };
        let text = String::from_utf8_lossy(content);
        if let Some((kind, id)) = text.split_once(':') {
            if id == active.window.id {
                active.window.on_watermark(kind == "high");
            }
        }
        true
    }

    /// A row of the signaling table that may be one of Debezium's window markers (see
    /// [`WatermarkStrategy`]): `kind` is its `type` for an INSERT, `None` for a DELETE. Returns
    /// whether it was one (then it is no signal).
    pub(crate) fn on_window_row(&mut self, id: &str, kind: Option<&str>) -> bool {
        let (high, window_id) = match kind {
            Some(WINDOW_OPEN) => (false, id.strip_suffix("-open")),
            Some(WINDOW_CLOSE) => (true, id.strip_suffix("-close")),
            // insert_delete closes a window by deleting its open row.
            None if self.watermarks.strategy == WatermarkStrategy::InsertDelete => {
                (true, id.strip_suffix("-open"))
            }
            _ => return false,
        };
        if self.watermarks.strategy == WatermarkStrategy::Message {
            return true;
        }
        if let (Some(active), Some(window_id)) = (self.active.as_mut(), window_id) {
            if window_id == active.window.id {
                active.window.on_watermark(high);
            }
        }
        true
    }

    pub(crate) fn observe(&mut self, event: &ChangeEvent) {
        if let Some(active) = self.active.as_mut() {
            active.window.observe(event);
        }
    }

    pub(crate) fn observe_truncate(&mut self, relation_ids: &[u32]) {
        if let Some(active) = self.active.as_mut() {
            active.window.observe_truncate(relation_ids);
        }
    }

    /// The high watermark came through: the window ends with its transaction.
    pub(crate) fn is_closed(&self) -> bool {
        self.active
            .as_ref()
            .is_some_and(|a| a.window.phase == Phase::Closed)
    }

    /// Waits for the open window's task (pending forever when there is none running).
    pub(crate) async fn task_done(&mut self) -> Result<()> {
        let Some(task) = self.active.as_mut().and_then(|a| a.task.as_mut()) else {
            return std::future::pending().await;
        };
        let joined = task.await;
        let (client, read) = match joined {
            Ok(result) => result?,
            Err(join) => {
                return Err(SourceError::Setup(format!(
                    "snapshot resume window task failed: {join}"
                )))
            }
        };
        self.client = Some(client);
        if let Some(active) = self.active.as_mut() {
            active.task = None;
            active.read = Some(read);
        }
        Ok(())
    }

    /// Ends the closed window at the commit of its high watermark (`commit_lsn`): the rows
    /// the stream did not overtake, then the progress step, into `out`.
    pub(crate) async fn finish_window(
        &mut self,
        commit_lsn: Lsn,
        commit_ts_us: i64,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        if self.active.as_ref().is_some_and(|a| a.task.is_some()) {
            // The task writes the high watermark last: it is ending.
            self.task_done().await?;
        }
        let Some(active) = self.active.take() else {
            return Ok(());
        };
        let Some(read) = active.read else {
            return Err(SourceError::Protocol(
                "snapshot resume window closed without its rows".into(),
            ));
        };
        if std::mem::take(&mut self.cancel_front) {
            // `stop-snapshot` of this table: its progress is already stored without it.
            self.work.pop_front();
            return Ok(());
        }
        let Some(work) = self.work.front_mut() else {
            return Ok(());
        };
        let read_rows = read.rows.len();
        if read.max_key.is_some() {
            work.max_key = read.max_key.clone();
        }
        work.scanned += read_rows as u64;
        let rows = active.window.finish(read.rows);
        tracing::debug!(
            table = %work.plan.schema.qualified_name(),
            window = %active.window.id,
            read = read_rows,
            emitted = rows.len(),
            overtaken = active.window.touched(),
            "snapshot resume window closed"
        );
        self.windows += 1;
        self.rows_emitted += rows.len() as u64;
        self.stats
            .add_rows(work.stats_index, rows.len() as u64, read.bytes);
        self.stats.chunk_done(work.stats_index);
        for row in rows {
            out.push(SourceMessage::Event(resumed_row(
                row,
                commit_lsn,
                commit_ts_us,
            )));
        }
        let table = (
            work.plan.schema.schema.to_string(),
            work.plan.schema.table.to_string(),
        );
        let WorkKind::Keyed {
            key_columns, after, ..
        } = &mut work.kind
        else {
            return Err(SourceError::Protocol(
                "snapshot resume window over a table without a key".into(),
            ));
        };
        let current = work.plan.schema.qualified_name();
        let max_key = work.max_key.as_ref().map(|k| k.join(","));
        let scanned = work.scanned;
        let update = match read.upper {
            Some(upper) => {
                *after = Some(upper.clone());
                ProgressUpdate::KeyRange(KeyProgress {
                    table,
                    key_columns: key_columns.clone(),
                    after: upper,
                    max_key: work.max_key.clone(),
                })
            }
            None => {
                tracing::info!(table = %work.plan.schema.qualified_name(), "snapshot resume: table done");
                self.stats.table_done(work.stats_index);
                ProgressUpdate::TableDone(table)
            }
        };
        // Debezium notifies IN_PROGRESS after each chunk that read rows, and
        // TABLE_SCAN_COMPLETED (SUCCEEDED, or EMPTY for a table without rows) when a table
        // is read to its end (pgseam's last window of a table is Debezium's last chunk plus
        // its empty read after it).
        if read_rows > 0 {
            let last = match &update {
                ProgressUpdate::KeyRange(k) => Some(k.after.join(",")),
                _ => max_key.clone(),
            };
            let data = vec![
                ("data_collections", self.data_collections()),
                ("current_collection_in_progress", current.clone()),
                (
                    "maximum_key",
                    max_key.unwrap_or_else(|| "\"<null>\"".to_owned()),
                ),
                (
                    "last_processed_key",
                    last.unwrap_or_else(|| "<null>".into()),
                ),
            ];
            self.notify("IN_PROGRESS", data);
        }
        if matches!(update, ProgressUpdate::TableDone(_)) {
            let data = vec![
                ("data_collections", self.data_collections()),
                ("scanned_collection", current),
                ("total_rows_scanned", scanned.to_string()),
                (
                    "status",
                    if scanned == 0 { "EMPTY" } else { "SUCCEEDED" }.to_owned(),
                ),
            ];
            self.notify("TABLE_SCAN_COMPLETED", data);
            self.work.pop_front();
        }
        self.track(&update);
        out.push(SourceMessage::SnapshotProgress(update));
        Ok(())
    }

    /// Starts reading the next table whole (see the module docs): after the wait for running
    /// transactions, its rows arrive on the returned channel; the task returns the session.
    pub(crate) fn start_whole(
        &mut self,
    ) -> Option<(mpsc::Receiver<ChunkMessage>, JoinHandle<Result<Client>>)> {
        let work = self.work.front()?;
        let WorkKind::Whole { copy } = &work.kind else {
            return None;
        };
        let client = self.client.take()?;
        let plan = Arc::clone(&work.plan);
        let chunk = Chunk {
            table: 0,
            index: 0,
            copy: copy.clone(),
            checkpoint: None,
        };
        let context = Arc::clone(&self.context);
        let (tx, rx) = mpsc::channel(CHUNK_CHANNEL_BATCHES);
        let task = tokio::spawn(async move {
            let xids = running_xids(&client).await?;
            wait_until_ended(&client, &xids, &plan.schema.qualified_name()).await?;
            reader::read_chunk(&client, &plan, &chunk, &context, &tx).await?;
            Ok(client)
        });
        Some((rx, task))
    }

    /// The whole-table read ended: the session comes back, the table is done.
    pub(crate) fn finish_whole(&mut self, client: Client, rows: u64) -> Option<SourceMessage> {
        self.client = Some(client);
        let work = self.work.pop_front()?;
        self.rows_emitted += rows;
        self.stats.chunk_done(work.stats_index);
        self.stats.table_done(work.stats_index);
        tracing::info!(table = %work.plan.schema.qualified_name(), rows, "snapshot resume: table re-read whole (no primary key: rows may repeat)");
        let update = ProgressUpdate::TableDone((
            work.plan.schema.schema.to_string(),
            work.plan.schema.table.to_string(),
        ));
        self.track(&update);
        Some(SourceMessage::SnapshotProgress(update))
    }

    /// Gives a row of a whole-table re-read its resumed form, at the stream position `lsn`.
    pub(crate) fn resumed(&self, event: ChangeEvent, lsn: Lsn) -> ChangeEvent {
        resumed_row(event, lsn, now_us())
    }
}

/// A resumed row: Debezium's incremental-snapshot marker, the position of its window. As in
/// Debezium 3.6.3 the record's `sequence` is `["<lsn>","<lsn>"]` (the window's high watermark),
/// `source.ts_ms` the time the row is emitted, and `txId`/`lsn`/`xmin` are not written
/// (`SourceInfo::emitted_lsn`).
fn resumed_row(mut event: ChangeEvent, lsn: Lsn, ts_us: i64) -> ChangeEvent {
    event.source.snapshot = SnapshotMarker::Incremental;
    event.source.lsn = Some(lsn);
    event.source.last_commit_lsn = Some(lsn);
    event.source.ts_us = ts_us;
    event.source.tx_id = None;
    event.position = Position::Snapshot {
        consistent_point: lsn,
        last: false,
    };
    event
}

struct KeyedJob {
    watermarks: Arc<WatermarkWriter>,
    id: String,
    plan: Arc<TablePlan>,
    select_list: String,
    key_columns: Vec<String>,
    types: Vec<String>,
    after: Option<Vec<String>>,
    filter: Option<String>,
    rows: u64,
    context: Arc<SnapshotContext>,
    /// Also look up the table's greatest key (for the notifications, and the bound below).
    want_max: bool,
    /// The incremental snapshot's greatest key of the table, found by an earlier window:
    /// no key above it is read (see `read_window`).
    known_max: Option<Vec<String>>,
}

/// The OID of `schema.table`, if it exists.
async fn table_oid(client: &Client, schema: &str, table: &str) -> Result<Option<u32>> {
    Ok(client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&schema, &table],
        )
        .await
        .map_err(query_error(format!("cannot look up {schema}.{table}")))?
        .map(|row| row.get(0)))
}

/// Plans how one table is read (see the module docs). `incremental`: a signalled snapshot,
/// which reads keyed tables only (`None` for a table without a primary key, as Debezium
/// skips it).
async fn plan_work(
    client: &Client,
    settings: &SnapshotSettings,
    oid: u32,
    progress: &SnapshotProgress,
    filter: Option<String>,
    incremental: bool,
) -> Result<Option<Work>> {
    let whole = SnapshotSettings {
        chunk_strategy: ChunkStrategy::Whole,
        chunk_strategy_overrides: BTreeMap::new(),
        window_reason: Some("resume or incremental snapshot window"),
        include: None,
        ..settings.clone()
    };
    let schema = load_table_schema(client, oid).await?;
    let mut planned = plan::plan(client, std::slice::from_ref(&schema), &whole).await?;
    let (Some(table_plan), Some(chunk)) = (planned.tables.pop(), planned.chunks.pop()) else {
        return Err(SourceError::Protocol(format!(
            "no plan for {}",
            schema.qualified_name()
        )));
    };
    let overridden = settings
        .select_overrides
        .contains_key(&schema.qualified_name());
    // The greatest key a restarted incremental snapshot stored for the table.
    let mut max_key = None;
    let kind = if schema.key_columns.is_empty() || (overridden && !incremental) {
        if incremental {
            tracing::warn!(table = %schema.qualified_name(), "incremental snapshot: the table has no primary key; skipped (as Debezium skips it)");
            return Ok(None);
        }
        WorkKind::Whole { copy: chunk.copy }
    } else {
        let key_columns = plan::key_column_names(&schema);
        let after = progress
            .resume_after(&schema.schema, &schema.table, &key_columns)
            .map(<[String]>::to_vec);
        max_key = progress
            .stored_max_key(&schema.schema, &schema.table, &key_columns)
            .map(<[String]>::to_vec);
        WorkKind::Keyed {
            select_list: plan::select_list(client, &schema, &table_plan.columns).await?,
            types: plan::key_types(client, &schema, &table_plan.qualified).await?,
            key_columns,
            after,
            filter,
        }
    };
    tracing::info!(
        table = %schema.qualified_name(),
        keyed = matches!(kind, WorkKind::Keyed { .. }),
        resumes_after_key = matches!(&kind, WorkKind::Keyed { after: Some(_), .. }),
        filtered = matches!(&kind, WorkKind::Keyed { filter: Some(_), .. }),
        "snapshot resume: table to read"
    );
    Ok(Some(Work {
        plan: Arc::new(table_plan),
        kind,
        // Set by `prepare` for a resume; out of range (ignored by the counters) otherwise.
        stats_index: usize::MAX,
        max_key,
        scanned: 0,
    }))
}

/// Debezium's `OpenIncrementalSnapshotWindow.NAME`.
pub(crate) const WINDOW_OPEN: &str = "snapshot-window-open";
/// Debezium's `CloseIncrementalSnapshotWindow.NAME`.
pub(crate) const WINDOW_CLOSE: &str = "snapshot-window-close";

/// Writes a window's watermarks as the configured [`WatermarkStrategy`] says.
///
/// Debezium's strategies (`SignalBasedIncrementalSnapshotChangeEventSource`, 3.6): the open
/// row is `('<chunk id>-open', 'snapshot-window-open', '{"openWindowTimestamp": "<instant>"}')`;
/// `insert_insert` closes with `('<chunk id>-close', 'snapshot-window-close',
/// '{"openWindowTimestamp": "<instant>", "closeWindowTimestamp": "<instant>"}')`,
/// `insert_delete` with `DELETE … WHERE id = '<chunk id>-open'`; each in a transaction of
/// its own. Debezium inserts by position (`VALUES (?, ?, ?)`); pgseam names the columns `id`,
/// `type`, `data`, which is the same for Debezium's documented table and also works when
/// the table has its columns in another order.
struct WatermarkWriter {
    /// `__pgseam.<slot>`: the logical messages' prefix.
    prefix: String,
    strategy: WatermarkStrategy,
    /// The signaling table, quoted (Debezium's strategies).
    table: Option<String>,
}

impl WatermarkWriter {
    fn new(settings: &SnapshotSettings, slot: &str) -> Result<WatermarkWriter> {
        let table = settings.signal_table.as_ref().map(|(schema, table)| {
            format!("{}.{}", quote_identifier(schema), quote_identifier(table))
        });
        if settings.watermarking != WatermarkStrategy::Message && table.is_none() {
            return Err(SourceError::Setup(
                "incremental.snapshot.watermarking.strategy writes into the signaling table, but signal.data.collection is not set".into(),
            ));
        }
        Ok(WatermarkWriter {
            prefix: watermark_prefix(slot),
            strategy: settings.watermarking,
            table,
        })
    }

    /// The low watermark of window `id`; returns the open time (for the close row).
    async fn open(&self, client: &Client, id: &str) -> Result<String> {
        let opened = java_instant(now_us());
        match (self.strategy, &self.table) {
            (WatermarkStrategy::Message, _) | (_, None) => {
                self.message(client, &format!("low:{id}")).await?
            }
            (_, Some(table)) => {
                let data = format!("{{\"openWindowTimestamp\": \"{opened}\"}}");
                self.insert(client, table, &format!("{id}-open"), WINDOW_OPEN, &data)
                    .await?
            }
        }
        Ok(opened)
    }

    /// The high watermark of window `id`, opened at `opened`.
    async fn close(&self, client: &Client, id: &str, opened: &str) -> Result<()> {
        match (self.strategy, &self.table) {
            (WatermarkStrategy::Message, _) | (_, None) => {
                self.message(client, &format!("high:{id}")).await
            }
            (WatermarkStrategy::InsertInsert, Some(table)) => {
                let data = format!(
                    "{{\"openWindowTimestamp\": \"{opened}\", \"closeWindowTimestamp\": \"{}\"}}",
                    java_instant(now_us())
                );
                self.insert(client, table, &format!("{id}-close"), WINDOW_CLOSE, &data)
                    .await
            }
            (WatermarkStrategy::InsertDelete, Some(table)) => {
                let open_id = format!("{id}-open");
                client
                    .execute(&format!("DELETE FROM {table} WHERE id = $1"), &[&open_id])
                    .await
                    .map_err(query_error(format!(
                        "cannot delete the snapshot window row {open_id} from the signaling table {table} (incremental.snapshot.watermarking.strategy=insert_delete)"
                    )))?;
                Ok(())
            }
        }
    }

    async fn message(&self, client: &Client, content: &str) -> Result<()> {
        client
            .execute(
                "SELECT pg_logical_emit_message(true, $1, $2)",
                &[&self.prefix, &content],
            )
            .await
            .map_err(query_error(format!(
                "cannot write the snapshot watermark {content}"
            )))?;
        Ok(())
    }

    async fn insert(
        &self,
        client: &Client,
        table: &str,
        id: &str,
        kind: &str,
        data: &str,
    ) -> Result<()> {
        // Text parameters, cast by the server to whatever the columns are (varchar, text).
        client
            .execute(
                &format!("INSERT INTO {table} (id, type, data) VALUES ($1::text, $2::text, $3::text)"),
                &[&id, &kind, &data],
            )
            .await
            .map_err(query_error(format!(
                "cannot insert the snapshot window row {id} into the signaling table {table} (incremental.snapshot.watermarking.strategy)"
            )))?;
        Ok(())
    }
}

/// `java.time.Instant.toString()` of a time in microseconds since the epoch: ISO-8601 in UTC,
/// the fraction in groups of three digits, none when zero (`2026-11-24T15:30:01.120Z`).
fn java_instant(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, m, d) = pgseam_pgvalue::datetime::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    );
    if micros != 0 {
        if micros % 1000 == 0 {
            out.push_str(&format!(".{:03}", micros / 1000));
        } else {
            out.push_str(&format!(".{micros:06}"));
        }
    }
    out.push('Z');
    out
}

/// Transactions in progress now (`pg_current_snapshot()`'s xip list).
pub(crate) async fn running_xids(client: &Client) -> Result<Vec<String>> {
    Ok(client
        .query_one(
            "SELECT coalesce(array_agg(x::text), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) x",
            &[],
        )
        .await
        .map_err(query_error("cannot read the running transactions".into()))?
        .get(0))
}

/// Waits until every transaction of `xids` has left the ProcArray (is visible in a new
/// snapshot, committed or aborted).
pub(crate) async fn wait_until_ended(client: &Client, xids: &[String], table: &str) -> Result<()> {
    if xids.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut warned = false;
    loop {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM unnest($1::text[]) x \
                 WHERE NOT pg_visible_in_snapshot(x::xid8, pg_current_snapshot())",
                &[&xids],
            )
            .await
            .map_err(query_error(
                "cannot check whether transactions have ended".into(),
            ))?
            .get(0);
        if running == 0 {
            if warned {
                tracing::info!(%table, waited_ms = started.elapsed().as_millis() as u64, "snapshot resume: the transactions it waited for have ended");
            }
            return Ok(());
        }
        if !warned && started.elapsed() > Duration::from_secs(1) {
            warned = true;
            tracing::info!(%table, running, "snapshot resume: waiting for transactions in progress at the low watermark to end before reading");
        }
        tokio::time::sleep(XID_POLL).await;
    }
}

/// One window: low watermark, wait, read by key range, high watermark (see the module docs).
async fn read_window(client: Client, job: KeyedJob) -> Result<(Client, WindowRead)> {
    let KeyedJob {
        watermarks,
        id,
        plan: table,
        select_list,
        key_columns,
        types,
        after,
        filter,
        rows: window_rows,
        context,
        want_max,
        known_max,
    } = job;
    let name = table.qualified.clone();
    let relation = table.relation.clone();
    let opened = watermarks.open(&client, &id).await?;
    let xids = running_xids(&client).await?;
    wait_until_ended(&client, &xids, &table.schema.qualified_name()).await?;

    let quoted: Vec<String> = key_columns.iter().map(|k| quote_identifier(k)).collect();
    let key = format!("({})", quoted.join(", "));
    let lower = after
        .as_ref()
        .map(|after| format!("{key} > {}", plan::key_literal(after, &types)));
    // `additional-conditions`: in both the boundary query and the read, so a window holds
    // up to `window_rows` matching keys.
    let condition = filter.as_ref().map(|f| format!("({f})"));
    let lower = match (lower, condition.clone()) {
        (Some(l), Some(c)) => Some(format!("{l} AND {c}")),
        (l, c) => l.or(c),
    };
    // The aliases the key queries read the key's text form by (see below).
    let as_text: Vec<String> = quoted
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k}::text AS pgseam_key{i}"))
        .collect();
    let max_key = if want_max {
        let descending: Vec<String> = quoted.iter().map(|k| format!("{k} DESC")).collect();
        client
            .query(
                &format!(
                    "SELECT {} FROM {relation}{} ORDER BY {} LIMIT 1",
                    as_text.join(", "),
                    condition
                        .as_ref()
                        .map_or(String::new(), |c| format!(" WHERE {c}")),
                    descending.join(", ")
                ),
                &[],
            )
            .await
            .map_err(query_error(format!(
                "cannot find the greatest key of {name}"
            )))?
            .first()
            .map(|row| (0..quoted.len()).map(|i| row.get::<_, String>(i)).collect())
    } else {
        None
    };
    // An incremental snapshot reads keys up to the greatest key its first window of the table
    // found, as Debezium's reads chunks up to `maximumKey`: a row with a greater key was
    // committed after that look-up, after the stream position the snapshot started at, so
    // the stream sends it. This also keeps the windows (and `maximum_key`) the same after a
    // restart.
    let lower = match max_key.as_ref().or(known_max.as_ref()) {
        None => lower,
        Some(max) => {
            let bound = format!("{key} <= {}", plan::key_literal(max, &types));
            Some(match lower {
                Some(l) => format!("{l} AND {bound}"),
                None => bound,
            })
        }
    };
    // Aliased: an output column named like a key column would capture `ORDER BY "id"` (an
    // output name wins over an input column in PostgreSQL's ORDER BY), sorting by the keys'
    // text, not their type. That made the windows cut at the N-th key in text order ("1",
    // "10", "100", "1000", ...), so a window held far fewer or far more than N rows (ranges
    // stayed contiguous: nothing was lost, but a window could exceed its buffer bound).
    let offset = i64::try_from(window_rows.saturating_sub(1)).unwrap_or(i64::MAX);
    let boundary = client
        .query(
            &format!(
                "SELECT {} FROM {relation}{} ORDER BY {} OFFSET $1 LIMIT 1",
                as_text.join(", "),
                lower
                    .as_ref()
                    .map_or(String::new(), |l| format!(" WHERE {l}")),
                quoted.join(", ")
            ),
            &[&offset],
        )
        .await
        .map_err(query_error(format!(
            "cannot find the next key range of {name}"
        )))?;
    let upper: Option<Vec<String>> = boundary
        .first()
        .map(|row| (0..quoted.len()).map(|i| row.get::<_, String>(i)).collect());
    let mut conditions: Vec<String> = lower.into_iter().collect();
    // (the lower bound above already carries the filter)
    if let Some(upper) = &upper {
        conditions.push(format!("{key} <= {}", plan::key_literal(upper, &types)));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let chunk = Chunk {
        table: 0,
        index: 0,
        copy: format!(
            "COPY (SELECT {select_list} FROM {relation}{filter}) TO STDOUT (FORMAT binary)"
        ),
        checkpoint: None,
    };
    let (tx, mut rx) = mpsc::channel(CHUNK_CHANNEL_BATCHES);
    let session = &client;
    let reading = async move { reader::read_chunk(session, &table, &chunk, &context, &tx).await };
    let collecting = async {
        let mut rows = Vec::new();
        let mut read_bytes = 0;
        while let Some(message) = rx.recv().await {
            if let ChunkMessage::Rows { events, bytes } = message {
                rows.extend(events);
                read_bytes += bytes;
            }
        }
        (rows, read_bytes)
    };
    let (read, (rows, bytes)) = tokio::join!(reading, collecting);
    read?;
    watermarks.close(&client, &id, &opened).await?;
    Ok((
        client,
        WindowRead {
            rows,
            bytes,
            upper,
            max_key,
        },
    ))
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::java_instant;

    #[test]
    fn instants_print_as_java_does() {
        // java.time.Instant.ofEpochSecond(1795534201).toString() and its fractions.
        assert_eq!(java_instant(1_795_534_201_000_000), "2026-11-24T15:30:01Z");
        assert_eq!(
            java_instant(1_795_534_201_120_000),
            "2026-11-24T15:30:01.120Z"
        );
        assert_eq!(
            java_instant(1_795_534_201_123_456),
            "2026-11-24T15:30:01.123456Z"
        );
        assert_eq!(java_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(java_instant(-1), "1969-12-31T23:59:59.999999Z");
    }
}
