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
//! On a normal session of its own (`synchronous_commit = local`, timeouts off), after its key
//! range was cut (see "Several windows at once"):
//! 1. **Low watermark**: `SELECT pg_logical_emit_message(true, '__pgseam.<slot>', 'low:<id>')`,
//!    a transaction of its own in the stream, positioned by its commit like every change. It
//!    commits with `synchronous_commit = off` (`set_config(…, true)` in the same statement:
//!    the setting is still in force when the implicit transaction commits): nothing waits for
//!    the low watermark to reach the stream, and the high watermark's synchronous commit
//!    flushes the WAL up to and past it. With `fsync` on that saves one WAL flush wait of the
//!    two per window (BENCHMARKS.md, "Incremental snapshot under writers with kill -9").
//!    Its place in the WAL (before the chunk's snapshot is taken) does not depend on the
//!    flush. The high watermark is transactional and synchronous so that its COMMIT flushes
//!    the WAL: PostgreSQL 15 does not flush a non-transactional message, and the walsender
//!    only sends flushed WAL, so in an idle database an unflushed watermark could wait up to
//!    `wal_writer_delay` or, without a WAL writer wake-up, indefinitely.
//! 2. **The commit-visibility race**: a transaction's commit record is written (and decoded)
//!    before the transaction leaves the ProcArray, so a change streamed before the low
//!    watermark can still be invisible to a snapshot taken after it. The session takes
//!    `pg_current_snapshot()` after the low watermark committed and waits until every
//!    transaction in its `xip` list is visible in a new snapshot
//!    (`pg_visible_in_snapshot(xid, pg_current_snapshot())`: it has left the ProcArray,
//!    committed or not). Every transaction whose commit precedes the low watermark is then
//!    visible to the chunk's read.
//! 3. **Read** the chunk by key range, `(k) > (after) AND (k) <= (upper)`, where `upper` is
//!    the `window_rows`-th key after `after` (at most [`WINDOW_MAX_ROWS`]; none: the rest of
//!    the table), under the
//!    COPY statement's own snapshot, into a buffer (binary COPY, decoded as the initial
//!    snapshot decodes).
//! 4. **High watermark**: `… 'high:<id>'`.
//!
//! # Several windows at once
//!
//! The resume of an initial snapshot keeps up to `snapshot.max.threads` windows open at once,
//! each on a session of its own: windows over several tables, and over several consecutive
//! key ranges of one table. The range of a window is cut before it opens, on its session
//! (the `window_rows`-th key after the previous range's upper bound, `(lower, upper]`; the
//! last range of a table runs to its end), so the next window of the same table opens at
//! once. Tables are taken in order; a table without a key (read whole, the stream paused) is
//! a barrier: it is read when every window before it has closed.
//!
//! **Why concurrent windows are sound.** The argument for one window is per key: a row read
//! by window W is the key's state at W's high watermark unless a change of that key commits
//! between W's watermarks, and the stream decides that for W alone. Each window has its own
//! watermark pair (its id in the message), its own wait for the transactions in progress at
//! *its* low watermark, its own read under its own snapshot, and its own set of keys changed
//! between *its* watermarks; the ranges of the windows are disjoint. A change streamed
//! between the watermarks of windows A and B is recorded by both (each drops the key if it
//! read it); its position relative to the other window's watermarks is irrelevant to a key
//! that window did not read. So each key of each range is emitted exactly as if its window
//! were the only one, at that window's high watermark, and per-key order holds. The
//! watermark transactions of one window may be among the transactions another window waits
//! for; they are short, and a window's COPY runs without a transaction id, so no window
//! waits for another's read.
//!
//! **What concurrency changes: progress.** Windows close in any order, but the stored
//! progress is a prefix ("every key `<=` after is delivered"). Each table keeps its ranges by
//! sequence number; a window that closes ahead of an earlier one of its table emits its rows
//! at its high watermark but moves the table's `after` only once every earlier range is
//! delivered ([`Ranges`]). The stored progress keeps that key for every partly delivered
//! table (`SnapshotProgress::partial` and `more_partial`), so each table's step is sent as
//! soon as its prefix moves, whatever its place in line, and stored (like any checkpoint)
//! once every record before it is acknowledged. After a crash, the ranges past each
//! table's stored prefix are read again: a window delivered ahead of its table's prefix
//! comes twice, whole. Those are windows that closed while an earlier window of the same
//! table was still open, so fewer than `snapshot.max.threads` windows per crash over all
//! tables (plus whatever was sent but not yet acknowledged at the crash, as for any
//! record).
//!
//! A signalled incremental snapshot keeps one window open at a time, as Debezium reads its
//! chunks, and cuts its range after the low watermark (with its filter and greatest key).
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
use tokio::task::{JoinHandle, JoinSet};
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
    /// Its identity among the work items of this run (windows name their table by it).
    id: u64,
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
        /// Every key `<=` it is delivered (the stored progress, or where this run got to).
        after: Option<Vec<String>>,
        /// `additional-conditions` of a signalled snapshot: only rows matching it.
        filter: Option<String>,
        /// The table's key ranges: dispatched, in flight, delivered.
        ranges: Ranges,
    },
    /// Whole, by this COPY statement, without deduplication.
    Whole { copy: String },
}

/// The key ranges of one table, cut one after another, read by windows that may close in
/// any order, delivered as a prefix (see "Several windows at once" in the module docs).
///
/// Range `seq` is `(lower, upper]` where `lower` is the `upper` of range `seq - 1` (or the
/// table's `after` for the first); the last range has no `upper` (to the table's end).
#[derive(Debug, Default)]
struct Ranges {
    /// The lower bound of the next range to dispatch (`None`: the table's start).
    cursor: Option<Vec<String>>,
    /// The range to the table's end is dispatched: nothing more to cut.
    exhausted: bool,
    /// A window in flight cuts its own range (a signalled snapshot's window, which looks up
    /// its upper bound after its low watermark): the next range waits for its end.
    bound_pending: bool,
    /// The sequence number of the next range dispatched.
    next_seq: u64,
    /// The first range not delivered yet: `after` is the upper bound of the one before it.
    prefix_seq: u64,
    /// Ranges delivered ahead of the prefix (their windows closed before an earlier one's),
    /// by sequence number: their upper bound.
    ahead: BTreeMap<u64, Option<Vec<String>>>,
    /// Windows of this table open now.
    in_flight: usize,
}

impl Ranges {
    /// Range `seq`, ending at `upper`, is delivered: the prefix moves over every range
    /// delivered in sequence, `after` to the last one's upper bound. Returns whether `after`
    /// moved and whether the table is delivered to its end.
    fn delivered(
        &mut self,
        seq: u64,
        upper: Option<Vec<String>>,
        after: &mut Option<Vec<String>>,
    ) -> (bool, bool) {
        self.ahead.insert(seq, upper);
        let mut advanced = false;
        let mut table_done = false;
        while let Some(upper) = self.ahead.remove(&self.prefix_seq) {
            self.prefix_seq += 1;
            match upper {
                Some(upper) => {
                    *after = Some(upper);
                    advanced = true;
                }
                None => table_done = true,
            }
        }
        (advanced, table_done)
    }
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

/// A window's task ends with its window id and, unless it failed, its session and its read.
type WindowDone = (String, Result<(Client, WindowRead)>);

/// One open window.
struct Active {
    window: Window,
    /// The [`Work::id`] of its table.
    work_id: u64,
    /// Its range's sequence number in the table's [`Ranges`].
    seq: u64,
    /// Its task ended: what it read.
    read: Option<WindowRead>,
    /// `stop-snapshot` took its table away: its rows are dropped when it closes.
    cancelled: bool,
}

/// The source's resume state: remaining tables, the open windows, the sessions.
pub(crate) struct Resumer {
    watermarks: Arc<WatermarkWriter>,
    run_id: String,
    next_id: u64,
    /// Where window sessions connect to.
    params: ConnectParams,
    /// Sessions not in use by a window (each with [`SESSION_TIMEOUTS`] and
    /// `synchronous_commit = local`).
    idle: Vec<Client>,
    /// Sessions opened so far (idle or in a window), at most `max_windows`.
    sessions: usize,
    /// Most windows open at once: `snapshot.max.threads` for the resume of an initial
    /// snapshot, one for a signalled incremental snapshot (as Debezium reads its chunks).
    max_windows: usize,
    work: VecDeque<Work>,
    next_work_id: u64,
    /// Open windows, in the order they were opened.
    active: Vec<Active>,
    /// The windows' tasks.
    tasks: JoinSet<WindowDone>,
    context: Arc<SnapshotContext>,
    window_rows: u64,
    rows_emitted: u64,
    windows: u64,
    /// Most windows that were open at once.
    max_open: usize,
    /// A signalled incremental snapshot's progress (its table list; `None`: the resume of
    /// an initial snapshot).
    incremental: Option<SnapshotProgress>,
    /// `pause-snapshot`: no window opens until `resume-snapshot`.
    paused: bool,
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

/// A session for windows: timeouts off, and `synchronous_commit = local` so that a watermark's
/// commit does not wait for a synchronous standby (see the module docs).
async fn open_session(params: &ConnectParams) -> Result<Client> {
    let client = connect_query_session(params).await?;
    client
        .batch_execute(&format!(
            "{SESSION_TIMEOUTS}; SET synchronous_commit = local"
        ))
        .await
        .map_err(query_error(
            "cannot set up the snapshot resume session".into(),
        ))?;
    Ok(client)
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
        let client = open_session(params).await?;
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
        for (id, w) in work.iter_mut().enumerate() {
            w.id = id as u64;
        }
        let max_windows = if progress.incremental.is_some() {
            1
        } else {
            settings.max_threads.max(1)
        };
        Ok(Resumer {
            watermarks: Arc::new(WatermarkWriter::new(settings, slot)?),
            run_id,
            next_id: 0,
            params: params.clone(),
            idle: vec![client],
            sessions: 1,
            max_windows,
            next_work_id: work.len() as u64,
            work,
            active: Vec::new(),
            tasks: JoinSet::new(),
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
            max_open: 0,
            incremental: progress.incremental.is_some().then(|| progress.clone()),
            paused: false,
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
            let Some(mut w) =
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
            w.id = self.next_work_id;
            self.next_work_id += 1;
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
        let mut stopped = Vec::new();
        let mut kept = VecDeque::new();
        for w in self.work.drain(..) {
            if matches(&w) {
                stopped.push((
                    w.plan.schema.schema.to_string(),
                    w.plan.schema.table.to_string(),
                ));
                // Its open windows end in the stream; their rows are dropped then.
                for active in self.active.iter_mut().filter(|a| a.work_id == w.id) {
                    active.cancelled = true;
                }
            } else {
                kept.push_back(w);
            }
        }
        self.work = kept;
        if let Some(list) = progress.incremental.as_mut() {
            list.retain(|t| !stopped.contains(&t.table));
        }
        progress.forget_partial(|table| stopped.contains(table));
        for (schema, table) in &stopped {
            tracing::info!(table = %format!("{schema}.{table}"), "incremental snapshot: table stopped by signal");
        }
        let update = (!stopped.is_empty()).then(|| ProgressUpdate::Incremental(progress.clone()));
        // Debezium's `checkAndProcessStopFlag`: ABORTED with the stopped collections; a
        // snapshot left without tables ends there (no COMPLETED).
        if self.work.is_empty() {
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

    /// A window is open.
    pub(crate) fn has_open_window(&self) -> bool {
        !self.active.is_empty()
    }

    /// Every table is read and no window is open.
    pub(crate) fn is_finished(&self) -> bool {
        self.work.is_empty() && self.active.is_empty()
    }

    /// No window is open and the next table is read whole.
    pub(crate) fn next_is_whole(&self) -> bool {
        !self.paused
            && self.active.is_empty()
            && self
                .work
                .front()
                .is_some_and(|w| matches!(w.kind, WorkKind::Whole { .. }))
    }

    /// Windows read, rows emitted, most windows open at once.
    pub(crate) fn summary(&self) -> (u64, u64, usize) {
        (self.windows, self.rows_emitted, self.max_open)
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

    /// The next table a window can be opened on: the first, in table order, whose ranges are
    /// not all cut yet. A table read whole is a barrier: nothing after it opens before it is
    /// read (it is read when no window is open, see `next_is_whole`).
    fn next_work_for_window(&self) -> Option<usize> {
        for (index, w) in self.work.iter().enumerate() {
            match &w.kind {
                WorkKind::Whole { .. } => return None,
                WorkKind::Keyed { ranges, .. } if !ranges.exhausted && !ranges.bound_pending => {
                    return Some(index)
                }
                WorkKind::Keyed { .. } => {}
            }
        }
        None
    }

    /// Opens windows while there is a key range to read and a session for it (up to
    /// `max_windows`): each window's task writes the low watermark, waits, reads, and writes
    /// the high watermark, while the stream goes on. Called at a transaction boundary.
    ///
    /// For the resume of an initial snapshot the range is cut here, before the window opens
    /// (the next `window_rows`-th key after the previous range), so that the next window of
    /// the same table can open at once; a signalled snapshot's single window cuts its own
    /// after its low watermark, with its filter and greatest key (see `read_window`).
    pub(crate) async fn start_windows(&mut self) -> Result<()> {
        while !self.paused && self.active.len() < self.max_windows {
            let Some(index) = self.next_work_for_window() else {
                return Ok(());
            };
            let client = match self.idle.pop() {
                Some(client) => client,
                None if self.sessions < self.max_windows => {
                    let client = open_session(&self.params).await?;
                    self.sessions += 1;
                    client
                }
                None => return Ok(()),
            };
            let precut = self.incremental.is_none();
            let window_rows = self.window_rows;
            let Some(work) = self.work.get_mut(index) else {
                self.idle.push(client);
                return Ok(());
            };
            let WorkKind::Keyed {
                select_list,
                key_columns,
                types,
                filter,
                ranges,
                ..
            } = &mut work.kind
            else {
                self.idle.push(client);
                return Ok(());
            };
            let lower = ranges.cursor.clone();
            let upper = if precut {
                let bounds = RangeBounds {
                    relation: &work.plan.relation,
                    key_columns,
                    types,
                    after: lower.as_ref(),
                    filter: filter.as_ref(),
                    max: None,
                };
                let upper =
                    match next_upper(&client, &bounds, window_rows, &work.plan.qualified).await {
                        Ok(upper) => upper,
                        Err(error) => {
                            self.idle.push(client);
                            return Err(error);
                        }
                    };
                ranges.exhausted = upper.is_none();
                ranges.cursor.clone_from(&upper);
                Some(upper)
            } else {
                ranges.bound_pending = true;
                None
            };
            let seq = ranges.next_seq;
            ranges.next_seq += 1;
            ranges.in_flight += 1;
            self.next_id += 1;
            let id = format!("{}-{}", self.run_id, self.next_id);
            let job = KeyedJob {
                watermarks: Arc::clone(&self.watermarks),
                id: id.clone(),
                plan: Arc::clone(&work.plan),
                select_list: select_list.clone(),
                key_columns: key_columns.clone(),
                types: types.clone(),
                after: lower,
                upper,
                filter: filter.clone(),
                rows: window_rows,
                context: Arc::clone(&self.context),
                want_max: self.incremental.is_some() && work.max_key.is_none(),
                known_max: work.max_key.clone(),
            };
            tracing::debug!(table = %work.plan.schema.qualified_name(), window = %id, seq, open = self.active.len() + 1, "snapshot resume window opened");
            self.active.push(Active {
                window: Window::new(id.clone(), work.plan.schema.relation_id),
                work_id: work.id,
                seq,
                read: None,
                cancelled: false,
            });
            self.max_open = self.max_open.max(self.active.len());
            self.tasks
                .spawn(async move { (id, read_window(client, job).await) });
        }
        Ok(())
    }

    /// A logical message: if it is one of this slot's watermarks, its window moves on.
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
        let text = String::from_utf8_lossy(content);
        if let Some((kind, id)) = text.split_once(':') {
            if let Some(active) = self.active.iter_mut().find(|a| a.window.id == id) {
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
        if let Some(window_id) = window_id {
            if let Some(active) = self.active.iter_mut().find(|a| a.window.id == window_id) {
                active.window.on_watermark(high);
            }
        }
        true
    }

    /// A streamed change: every open window of its table remembers its key.
    pub(crate) fn observe(&mut self, event: &ChangeEvent) {
        for active in &mut self.active {
            active.window.observe(event);
        }
    }

    pub(crate) fn observe_truncate(&mut self, relation_ids: &[u32]) {
        for active in &mut self.active {
            active.window.observe_truncate(relation_ids);
        }
    }

    /// A high watermark came through: its window ends with its transaction.
    pub(crate) fn is_closed(&self) -> bool {
        self.active.iter().any(|a| a.window.phase == Phase::Closed)
    }

    /// Waits for the next window task to end (pending forever when none is running) and
    /// keeps what it read with its window; its session becomes idle.
    pub(crate) async fn task_done(&mut self) -> Result<()> {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let Some(joined) = self.tasks.join_next().await else {
            return std::future::pending().await;
        };
        let (id, result) = joined.map_err(|join| {
            SourceError::Setup(format!("snapshot resume window task failed: {join}"))
        })?;
        let (client, read) = result?;
        self.idle.push(client);
        match self.active.iter_mut().find(|a| a.window.id == id) {
            Some(active) => active.read = Some(read),
            None => {
                return Err(SourceError::Protocol(format!(
                    "snapshot resume window {id} ended, but is not open"
                )))
            }
        }
        Ok(())
    }

    /// Ends the closed windows at the commit of a high watermark (`commit_lsn`): for each,
    /// the rows the stream did not overtake, then the progress step, into `out`.
    pub(crate) async fn finish_window(
        &mut self,
        commit_lsn: Lsn,
        commit_ts_us: i64,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        while let Some(position) = self
            .active
            .iter()
            .position(|a| a.window.phase == Phase::Closed)
        {
            // Its task writes the high watermark last: it is ending.
            while self.active[position].read.is_none() {
                if self.tasks.is_empty() {
                    return Err(SourceError::Protocol(
                        "snapshot resume window closed without its rows".into(),
                    ));
                }
                self.task_done().await?;
            }
            let active = self.active.remove(position);
            self.finish_one(active, commit_lsn, commit_ts_us, out)?;
        }
        Ok(())
    }

    /// Ends one closed window (see [`Resumer::finish_window`]).
    fn finish_one(
        &mut self,
        active: Active,
        commit_lsn: Lsn,
        commit_ts_us: i64,
        out: &mut Vec<SourceMessage>,
    ) -> Result<()> {
        let Some(read) = active.read else {
            return Err(SourceError::Protocol(
                "snapshot resume window closed without its rows".into(),
            ));
        };
        if active.cancelled {
            // `stop-snapshot` of this table: its progress is already stored without it.
            return Ok(());
        }
        let Some(index) = self.work.iter().position(|w| w.id == active.work_id) else {
            return Ok(());
        };
        let read_rows = read.rows.len();
        let rows = active.window.finish(read.rows);
        let Some(work) = self.work.get_mut(index) else {
            return Ok(());
        };
        if read.max_key.is_some() {
            work.max_key = read.max_key.clone();
        }
        work.scanned += read_rows as u64;
        tracing::debug!(
            table = %work.plan.schema.qualified_name(),
            window = %active.window.id,
            seq = active.seq,
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
            key_columns,
            after,
            ranges,
            ..
        } = &mut work.kind
        else {
            return Err(SourceError::Protocol(
                "snapshot resume window over a table without a key".into(),
            ));
        };
        ranges.in_flight = ranges.in_flight.saturating_sub(1);
        if ranges.bound_pending {
            // The window cut its own range: the next one starts after it.
            ranges.bound_pending = false;
            ranges.exhausted = read.upper.is_none();
            ranges.cursor.clone_from(&read.upper);
        }
        let (advanced, table_done) = ranges.delivered(active.seq, read.upper.clone(), after);
        let current = work.plan.schema.qualified_name();
        let max_key = work.max_key.as_ref().map(|k| k.join(","));
        let scanned = work.scanned;
        let update = if table_done {
            tracing::info!(table = %current, "snapshot resume: table done");
            self.stats.table_done(work.stats_index);
            Some(ProgressUpdate::TableDone(table))
        } else if advanced {
            // Whatever the tables before this one do: the stored progress keeps a key per
            // partly delivered table.
            Some(ProgressUpdate::KeyRange(KeyProgress {
                table,
                key_columns: key_columns.clone(),
                after: after.clone().unwrap_or_default(),
                max_key: work.max_key.clone(),
            }))
        } else {
            // Delivered ahead of an earlier range of the table still open: recorded in
            // `ranges`, stored once the prefix reaches it.
            None
        };
        // Debezium notifies IN_PROGRESS after each chunk that read rows, and
        // TABLE_SCAN_COMPLETED (SUCCEEDED, or EMPTY for a table without rows) when a table
        // is read to its end (pgseam's last window of a table is Debezium's last chunk plus
        // its empty read after it). (A signalled snapshot has one window open at a time.)
        if read_rows > 0 {
            let last = match &update {
                Some(ProgressUpdate::KeyRange(k)) => Some(k.after.join(",")),
                _ => read
                    .upper
                    .as_ref()
                    .map(|u| u.join(","))
                    .or_else(|| max_key.clone()),
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
        let Some(update) = update else {
            return Ok(());
        };
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
            self.work.remove(index);
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
        let client = self.idle.pop()?;
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
        self.idle.push(client);
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
    /// The range's upper bound when it was cut before the window opened (`Some(None)`: to
    /// the table's end); `None`: the window cuts it after its low watermark.
    upper: Option<Option<Vec<String>>>,
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
            ranges: Ranges {
                cursor: after.clone(),
                ..Ranges::default()
            },
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
        // Set by the caller.
        id: 0,
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
                self.message(client, &format!("low:{id}"), Flush::No)
                    .await?
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
                self.message(client, &format!("high:{id}"), Flush::Wait)
                    .await
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

    async fn message(&self, client: &Client, content: &str, flush: Flush) -> Result<()> {
        let statement = match flush {
            Flush::Wait => "SELECT pg_logical_emit_message(true, $1, $2)",
            // `is_local`: for this statement's implicit transaction, whose commit reads it.
            Flush::No => {
                "SELECT pg_logical_emit_message(true, $1, $2), set_config('synchronous_commit', 'off', true)"
            }
        };
        client
            .execute(statement, &[&self.prefix, &content])
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

/// Whether a logical-message watermark's commit waits for its WAL flush (module docs, step 1).
#[derive(Clone, Copy)]
enum Flush {
    /// `synchronous_commit = local` (the session's): the walsender can send it at once.
    Wait,
    /// `synchronous_commit = off`: the next synchronous commit on the server flushes it.
    No,
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

/// What bounds a key range: the table, its key, where the range starts, a signalled
/// snapshot's filter and greatest key.
struct RangeBounds<'a> {
    /// `ONLY "schema"."table"`.
    relation: &'a str,
    key_columns: &'a [String],
    types: &'a [String],
    /// The range starts after this key (`None`: at the table's start).
    after: Option<&'a Vec<String>>,
    /// `additional-conditions`.
    filter: Option<&'a String>,
    /// No key above this one (a signalled snapshot's greatest key).
    max: Option<&'a Vec<String>>,
}

impl RangeBounds<'_> {
    /// `("k1", "k2")`.
    fn key(&self) -> String {
        let quoted: Vec<String> = self
            .key_columns
            .iter()
            .map(|k| quote_identifier(k))
            .collect();
        format!("({})", quoted.join(", "))
    }

    /// The conditions every row of the range meets, below its upper bound: after `after`,
    /// the filter, at most `max`.
    fn lower(&self) -> Vec<String> {
        let key = self.key();
        let mut conditions = Vec::new();
        if let Some(after) = self.after {
            conditions.push(format!("{key} > {}", plan::key_literal(after, self.types)));
        }
        if let Some(filter) = self.filter {
            conditions.push(format!("({filter})"));
        }
        if let Some(max) = self.max {
            conditions.push(format!("{key} <= {}", plan::key_literal(max, self.types)));
        }
        conditions
    }
}

/// `WHERE a AND b`, or nothing.
fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// The `rows`-th key of the range (its inclusive upper bound), or `None` when fewer keys are
/// left: the range then runs to the table's end.
async fn next_upper(
    client: &Client,
    bounds: &RangeBounds<'_>,
    rows: u64,
    name: &str,
) -> Result<Option<Vec<String>>> {
    let quoted: Vec<String> = bounds
        .key_columns
        .iter()
        .map(|k| quote_identifier(k))
        .collect();
    // Aliased: an output column named like a key column would capture `ORDER BY "id"` (an
    // output name wins over an input column in PostgreSQL's ORDER BY), sorting by the keys'
    // text, not their type. That made the windows cut at the N-th key in text order ("1",
    // "10", "100", "1000", ...), so a window held far fewer or far more than N rows (ranges
    // stayed contiguous: nothing was lost, but a window could exceed its buffer bound).
    let as_text: Vec<String> = quoted
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k}::text AS pgseam_key{i}"))
        .collect();
    let offset = i64::try_from(rows.saturating_sub(1)).unwrap_or(i64::MAX);
    let boundary = client
        .query(
            &format!(
                "SELECT {} FROM {}{} ORDER BY {} OFFSET $1 LIMIT 1",
                as_text.join(", "),
                bounds.relation,
                where_clause(&bounds.lower()),
                quoted.join(", ")
            ),
            &[&offset],
        )
        .await
        .map_err(query_error(format!(
            "cannot find the next key range of {name}"
        )))?;
    Ok(boundary
        .first()
        .map(|row| (0..quoted.len()).map(|i| row.get::<_, String>(i)).collect()))
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
        upper,
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

    let max_key = if want_max {
        let quoted: Vec<String> = key_columns.iter().map(|k| quote_identifier(k)).collect();
        let as_text: Vec<String> = quoted
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k}::text AS pgseam_key{i}"))
            .collect();
        let descending: Vec<String> = quoted.iter().map(|k| format!("{k} DESC")).collect();
        client
            .query(
                &format!(
                    "SELECT {} FROM {relation}{} ORDER BY {} LIMIT 1",
                    as_text.join(", "),
                    filter
                        .as_ref()
                        .map_or(String::new(), |c| format!(" WHERE ({c})")),
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
    // restart. `additional-conditions` are in both the boundary query and the read, so a
    // window holds up to `window_rows` matching keys.
    let bounds = RangeBounds {
        relation: &relation,
        key_columns: &key_columns,
        types: &types,
        after: after.as_ref(),
        filter: filter.as_ref(),
        max: max_key.as_ref().or(known_max.as_ref()),
    };
    // A range cut before the window opened (see `Resumer::start_windows`), or cut now.
    let upper = match upper {
        Some(upper) => upper,
        None => next_upper(&client, &bounds, window_rows, &name).await?,
    };
    let mut conditions = bounds.lower();
    if let Some(upper) = &upper {
        conditions.push(format!(
            "{} <= {}",
            bounds.key(),
            plan::key_literal(upper, &types)
        ));
    }
    let filter = where_clause(&conditions);
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
    use super::{java_instant, Ranges};

    fn key(k: &str) -> Option<Vec<String>> {
        Some(vec![k.to_owned()])
    }

    /// Windows that close out of order move the stored key only over a delivered prefix.
    #[test]
    fn ranges_deliver_a_prefix_whatever_order_windows_close_in() {
        let mut ranges = Ranges::default();
        let mut after = key("100");
        // Ranges 0: (100, 200], 1: (200, 300], 2: (300, end).
        assert_eq!(ranges.delivered(1, key("300"), &mut after), (false, false));
        assert_eq!(after, key("100"), "range 0 is not delivered yet");
        assert_eq!(ranges.delivered(2, None, &mut after), (false, false));
        assert_eq!(after, key("100"));
        assert_eq!(ranges.delivered(0, key("200"), &mut after), (true, true));
        assert_eq!(after, key("300"));
        assert!(ranges.ahead.is_empty());

        let mut ranges = Ranges::default();
        let mut after = None;
        assert_eq!(ranges.delivered(0, key("10"), &mut after), (true, false));
        assert_eq!(after, key("10"));
        assert_eq!(ranges.delivered(2, key("30"), &mut after), (false, false));
        assert_eq!(ranges.delivered(1, key("20"), &mut after), (true, false));
        assert_eq!(after, key("30"));
        assert_eq!(ranges.prefix_seq, 3);
    }

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
