//! The initial snapshot: every captured row, read under the slot's exported snapshot by
//! parallel readers in chunks, emitted in one deterministic order.
//!
//! ```text
//!  replication conn R: CREATE_REPLICATION_SLOT … (SNAPSHOT 'export') → (C, S)   … stays idle …
//!
//!  coordinator:  BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT 'S';
//!                LOCK TABLE ONLY t IN ACCESS SHARE MODE   (every table, held to the end;
//!                                                          a partitioned t without ONLY)
//!                read schemas, plan chunks ───────────────┐
//!                                                         ▼  work queue, in emission order
//!  reader 0:     the coordinator's session;  readers 1..N-1: same BEGIN + SET TRANSACTION
//!                SNAPSHOT + LOCK of every table (with a timeout, see `reader`); then per chunk
//!                COPY (SELECT cols FROM ONLY t WHERE <range>) TO STDOUT (FORMAT binary)
//!                (t: a table, or a leaf partition of a partitioned table, see `plan`)
//!                decode → batches of op "r" events ──► one bounded channel per chunk
//!                                                         │
//!  emitter:      chunk 0 of table 0, chunk 1 of table 0, …, chunk 0 of table 1, …
//!                assigns the markers, sends to the source's event channel
//!  readers:      COMMIT when the queue is empty (locks released once every chunk is read)
//!  R:            START_REPLICATION … C   (after every snapshot event is sent)
//! ```
//!
//! # Consistency
//!
//! Every session imports S, so every chunk sees exactly the transactions committed before C,
//! and the stream from C holds every later one. All snapshot rows are emitted before streaming
//! starts, so per key the snapshot row precedes that key's changes. The ACCESS SHARE locks
//! (taken by the coordinator before planning, and by each other reader before its first chunk;
//! each reader holds them until no chunk is left to take) keep VACUUM FULL, CLUSTER, TRUNCATE and rewriting ALTERs — which move rows
//! without a logical event and would break ctid ranges — out until the snapshot is done, while
//! INSERT, UPDATE, DELETE and plain VACUUM go on.
//!
//! # Order and markers
//!
//! Readers take chunks from one queue in emission order (table by table, chunks in range
//! order) and the single emitter drains the chunks' channels in that same order, so the
//! events of the whole snapshot come out in a fixed order whatever the timing: the first is
//! `first`, the very last `last`, each table's first and last `first_in_data_collection` /
//! `last_in_data_collection` (a one-row table's only row is `last_in_data_collection`), the rest
//! `true`. The emitter holds back one event to know whether it ends its table.
//!
//! # Memory bound
//!
//! The coordinator's session is reader 0 (see `reader` for why it must be).
//!
//! Each chunk has its own channel of [`CHUNK_CHANNEL_BATCHES`] batches; a batch holds at most
//! [`BATCH_MAX_ROWS`] rows or about [`BATCH_MAX_BYTES`] bytes of COPY data (a single larger row
//! is one batch). A reader blocks when its chunk's channel is full, so at most
//! `max_threads × (CHUNK_CHANNEL_BATCHES + 2)` batches are in flight (one being decoded, one
//! being converted, see [`encode`]) — about `max_threads × 4 MiB` of COPY data, the decoded
//! events somewhat more — plus what the source's own event channel holds. Two batches per
//! channel are enough: readers can run ahead of the emitter by that much only, but buffers of
//! 64 batches were measured no faster (BENCHMARKS.md "Converting in the readers"). This cannot deadlock: chunks are handed out in emission
//! order, so the chunk the emitter waits for is always held by a reader that is not blocked on
//! a later one, or is next in the queue for a free reader.
//!
//! # Decoding
//!
//! Columns whose type pgvalue decodes in binary (see `pgseam_pgvalue::binary_supported`, and
//! `pg_type.typsend` must exist) are read in binary; any other column is converted by its type's
//! output function in the SELECT (`textin(<typoutput>(col))`, which is exactly the text pgoutput
//! sends — `col::text` is not, e.g. for `inet` or `bool`) and decoded by the text decoder. The
//! binary decoder is tested to give the same values as the text decoder for every type.
//!
//! # Converting in the readers
//!
//! With a [`RowEncoder`] (`SnapshotSettings::reader_encoding`, the worker's JSON converter), each
//! reader also converts its rows to records, beside decoding, and sends most rows as
//! [`EncodedRows`] (`SourceMessage::Encoded`); see [`encode`] for the order, marker and
//! memory rules.
//!
//! # Chunks
//!
//! See [`plan`]: ctid block ranges (TID Range Scan, PostgreSQL ≥ 14) by default, primary-key
//! ranges as the alternative, a `snapshot.select.statement.overrides` statement as one chunk.
//!
//! # Throttling and progress display
//!
//! See [`throttle`] (`snapshot.throttle.*`: rows/s and bytes/s shared by all readers, a pause
//! between chunks) and [`progress`] (bars on a terminal, `snapshot progress` logs otherwise, and
//! the counters behind the snapshot metrics).
//!
//! # Delivered progress and resume
//!
//! Each chunk carries the progress step it completes ([`checkpoint`]: a key range's upper bound,
//! or its table done after the last chunk; nothing for a ctid range that is not the last). The
//! reader sends it after the chunk's rows and the emitter passes it on right after the chunk's
//! last row, as `SourceMessage::SnapshotProgress`; the worker stores it with the offset once
//! those rows are acknowledged, after "slot created at C", which it stores before any chunk is
//! read. A crash mid-snapshot then keeps the slot, streams from C and reads only what the
//! progress does not cover, in DBLog watermark windows while streaming (`resume`, `window`).
//! A slot without a stored progress (a crash before the first offset write) is replaced and
//! the snapshot starts over: the stream never starts at a position a snapshot did not cover.

pub(crate) mod blocking;
pub mod checkpoint;
mod emitter;
pub mod encode;
pub mod plan;
pub mod progress;
mod reader;
pub(crate) mod resume;
pub mod signal;
pub mod throttle;
mod window;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use pgseam_model::{ChangeEvent, Lsn};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::catalog::{load_table_schema, quote_identifier, quote_literal, TableIdentity};
use crate::connection::{connect_query_session, ConnectParams};
use crate::error::{Result, SourceError};
use crate::slot::CreatedSlot;
use crate::source::SourceMessage;

pub use checkpoint::{KeyProgress, ProgressUpdate, SnapshotProgress, TableName};
pub(crate) use emitter::marker;
pub use encode::{EncodedRows, ReaderEncoding, RowEncoder, RowEncoderFactory};
pub use plan::ChunkStrategy;
pub use progress::SnapshotStats;
pub(crate) use resume::{WINDOW_CLOSE, WINDOW_OPEN};
pub use signal::{AdditionalCondition, Signal, SignalInbox};
pub use throttle::ThrottleSettings;

/// Batches buffered per chunk between its reader and the emitter (see "Memory bound").
pub const CHUNK_CHANNEL_BATCHES: usize = 2;
/// Most rows in one batch (fewer channel operations per row without holding much).
pub const BATCH_MAX_ROWS: usize = 2048;
/// A batch is closed once its rows' COPY bytes reach this.
pub const BATCH_MAX_BYTES: usize = 1 << 20;
/// `snapshot.chunk.rows` default: rows per chunk. Large enough that per-chunk overhead (a COPY
/// statement, a channel) is negligible, small enough that 1M rows give every reader work.
pub const DEFAULT_CHUNK_ROWS: u64 = 100_000;

/// Decides whether a table (schema, table) is snapshotted (`snapshot.include.collection.list`).
pub type SnapshotTableFilter = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How the snapshot is read (Debezium's `snapshot.*` settings this engine honours, and
/// pgseam's extensions).
#[derive(Clone)]
pub struct SnapshotSettings {
    /// `snapshot.max.threads`: reader connections.
    pub max_threads: usize,
    /// `snapshot.chunk.rows` (pgseam): target rows per chunk.
    pub chunk_rows: u64,
    /// `snapshot.chunk.strategy` (pgseam): how tables are split.
    pub chunk_strategy: ChunkStrategy,
    /// `pgseam.snapshot.chunk.strategy.overrides`: `schema.table` → the strategy that table
    /// is read with, whatever `chunk_strategy` says.
    pub chunk_strategy_overrides: BTreeMap<String, ChunkStrategy>,
    /// Set by the engine's own whole-table reads (resume and incremental windows, blocking
    /// snapshots): what they are, logged as the plan's reason instead of the configured
    /// strategy's. `None` for the initial snapshot.
    pub window_reason: Option<&'static str>,
    /// `snapshot.select.statement.overrides`: `schema.table` → the SELECT that replaces
    /// `SELECT * FROM schema.table`; read as one chunk.
    pub select_overrides: BTreeMap<String, String>,
    /// `snapshot.include.collection.list`: `None` snapshots every captured table.
    pub include: Option<SnapshotTableFilter>,
    /// `snapshot.throttle.*` (pgseam): off by default.
    pub throttle: ThrottleSettings,
    /// `snapshot.progress.interval.ms` (pgseam): how often progress is logged when stderr is
    /// not a terminal.
    pub progress_interval: std::time::Duration,
    /// Where the snapshot's counters go (the connector's metrics read them).
    pub stats: Arc<SnapshotStats>,
    /// `signal.data.collection`: the signaling table of the `source` channel (see `signal`).
    pub signal_table: Option<TableName>,
    /// `incremental.snapshot.chunk.size`: keys per window of a signalled snapshot.
    pub incremental_chunk_rows: u64,
    /// How the windows are marked in the WAL: pgseam's logical messages, or Debezium's rows
    /// in the signaling table (`incremental.snapshot.watermarking.strategy`).
    pub watermarking: WatermarkStrategy,
    /// Signals from the worker (the REST extension); the manager shares it.
    pub signals: Arc<SignalInbox>,
    /// Converts the initial snapshot's rows in the readers (see [`encode`]); `None`: the
    /// pipeline converts every row.
    pub reader_encoding: Option<ReaderEncoding>,
}

impl std::fmt::Debug for SnapshotSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotSettings")
            .field("max_threads", &self.max_threads)
            .field("chunk_rows", &self.chunk_rows)
            .field("chunk_strategy", &self.chunk_strategy)
            .field("chunk_strategy_overrides", &self.chunk_strategy_overrides)
            .field("select_overrides", &self.select_overrides.keys())
            .field("include", &self.include.as_ref().map(|_| "…"))
            .field("throttle", &self.throttle)
            .field("progress_interval", &self.progress_interval)
            .field("reader_encoding", &self.reader_encoding.is_some())
            .finish()
    }
}

/// How the low and high watermarks of a window (see `resume`) are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkStrategy {
    /// pgseam's default: `pg_logical_emit_message(true, '__pgseam.<slot>', 'low:<id>')` and
    /// `'high:<id>'`; no table is written.
    Message,
    /// Debezium's `insert_insert`: rows `('<id>-open', 'snapshot-window-open', …)` and
    /// `('<id>-close', 'snapshot-window-close', …)` inserted into `signal.data.collection`.
    InsertInsert,
    /// Debezium's `insert_delete`: the open row is inserted, and deleted to close the window,
    /// so the signaling table does not grow.
    InsertDelete,
}

/// Debezium's `incremental.snapshot.chunk.size` default.
pub const DEFAULT_INCREMENTAL_CHUNK_ROWS: u64 = 1024;

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            max_threads: 1,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            chunk_strategy: ChunkStrategy::Auto,
            chunk_strategy_overrides: BTreeMap::new(),
            window_reason: None,
            select_overrides: BTreeMap::new(),
            include: None,
            throttle: ThrottleSettings::default(),
            progress_interval: progress::DEFAULT_PROGRESS_INTERVAL,
            stats: Arc::new(SnapshotStats::new()),
            signal_table: None,
            incremental_chunk_rows: DEFAULT_INCREMENTAL_CHUNK_ROWS,
            watermarking: WatermarkStrategy::Message,
            signals: Arc::new(SignalInbox::default()),
            reader_encoding: None,
        }
    }
}

/// Facts every snapshot row's `source` block carries.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotContext {
    pub(crate) database: Arc<str>,
    pub(crate) consistent_point: Lsn,
    pub(crate) started_at_us: i64,
    /// `pg_snapshot_xmax` of the exported snapshot (Debezium's snapshot `txId`).
    pub(crate) tx_id: Option<i64>,
    /// The limits every reader honours (`snapshot.throttle.*`).
    pub(crate) throttle: Arc<throttle::Throttle>,
}

/// What a reader sends for one chunk.
pub(crate) enum ChunkMessage {
    Rows {
        events: Vec<ChangeEvent>,
        bytes: u64,
    },
    /// Rows of the initial snapshot, most of them converted by the reader (see [`encode`]).
    Read {
        rows: Vec<encode::ReadRow>,
        bytes: u64,
    },
    /// The chunk's progress step (see `progress`), sent after its rows: the emitter passes it
    /// on right after the chunk's last row.
    Delivered(checkpoint::ProgressUpdate),
    /// The chunk is complete (its COPY ended without error).
    Done,
}

/// Session settings of the coordinator and readers: a snapshot can take hours, and waits for
/// the lock (behind e.g. a running VACUUM FULL) must not fail it.
pub(crate) const SESSION_TIMEOUTS: &str =
    "SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0";

/// Opens a session that imports the exported snapshot `name`.
pub(crate) async fn open_snapshot_session(
    params: &ConnectParams,
    name: &str,
) -> Result<tokio_postgres::Client> {
    let client = connect_query_session(params).await?;
    client
        .batch_execute(&format!(
            "{SESSION_TIMEOUTS}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(name)
        ))
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot import the slot's exported snapshot {name}"),
            error,
        })?;
    Ok(client)
}

/// `LOCK TABLE <relation> IN ACCESS SHARE MODE` inside the open transaction: `relation` is
/// `ONLY t`, or a partitioned table without `ONLY`, which locks its partitions too
/// ([`plan::TablePlan::relation`]).
pub(crate) async fn lock_table(client: &tokio_postgres::Client, relation: &str) -> Result<()> {
    client
        .batch_execute(&format!("LOCK TABLE {relation} IN ACCESS SHARE MODE"))
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot lock {relation} in ACCESS SHARE mode"),
            error,
        })
}

/// [`plan::TablePlan::relation`] of a captured table.
pub(crate) fn relation(table: &TableIdentity) -> String {
    let name = qualified(&table.schema, &table.table);
    if table.partitioned {
        name
    } else {
        format!("ONLY {name}")
    }
}

pub(crate) fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_identifier(schema), quote_identifier(table))
}

/// Reads every captured table (those `snapshot.include.collection.list` selects) under the
/// slot's exported snapshot and sends the rows as `op = "r"` events. Returns the number of rows.
pub async fn run(
    params: &ConnectParams,
    settings: &SnapshotSettings,
    captured: &[TableIdentity],
    created: &CreatedSlot,
    events: &mpsc::Sender<SourceMessage>,
) -> Result<u64> {
    let started = std::time::Instant::now();
    settings.stats.start();
    // Debezium's initial-snapshot notifications: STARTED, per table IN_PROGRESS and
    // TABLE_SCAN_COMPLETED (see `emitter`), COMPLETED, or ABORTED when it fails.
    notify_initial(events, "STARTED", Vec::new()).await?;
    let result = run_snapshot(params, settings, captured, created, events, started).await;
    match &result {
        Ok(_) => notify_initial(events, "COMPLETED", Vec::new()).await?,
        // Best effort: the pipeline may be gone.
        Err(_) => {
            let _ = notify_initial(events, "ABORTED", Vec::new()).await;
        }
    }
    result
}

async fn notify_initial(
    events: &mpsc::Sender<SourceMessage>,
    kind: &'static str,
    data: Vec<(&str, String)>,
) -> Result<()> {
    events
        .send(SourceMessage::Notification(
            pgseam_model::Notification::now(None, pgseam_model::INITIAL_SNAPSHOT, kind, data),
        ))
        .await
        .map_err(|_| SourceError::ConsumerGone)
}

/// The names in the iteration order of a `java.util.HashSet` made by `new HashSet<>(names)`
/// (Debezium's `rowCountTablesKeySet`): `String.hashCode`, a table of
/// `tableSizeFor(max(n / 0.75 + 1, 16))` bins in index order, a bin in insertion order.
pub(crate) fn java_hash_set_order(mut names: Vec<String>) -> Vec<String> {
    let hash = |s: &str| {
        s.encode_utf16()
            .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)))
    };
    let capacity = ((((names.len() as f32) / 0.75f32) as usize) + 1)
        .max(16)
        .next_power_of_two();
    names.sort_by_key(|n| {
        let h = hash(n);
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    });
    names
}

async fn run_snapshot(
    params: &ConnectParams,
    settings: &SnapshotSettings,
    captured: &[TableIdentity],
    created: &CreatedSlot,
    events: &mpsc::Sender<SourceMessage>,
    started: std::time::Instant,
) -> Result<u64> {
    // Whatever way `run` ends — returned, failed, or dropped with its task — the counters stop.
    let _finish = FinishStats(&settings.stats);
    let coordinator = open_snapshot_session(params, &created.snapshot_name).await?;
    let selected: Vec<&TableIdentity> = captured
        .iter()
        .filter(|t| {
            settings
                .include
                .as_ref()
                .is_none_or(|f| f(&t.schema, &t.table))
        })
        .collect();
    for name in settings.select_overrides.keys() {
        if !selected.iter().any(|t| &t.qualified_name() == name) {
            tracing::warn!(table = %name, "snapshot.select.statement.overrides names a table that is not snapshotted; ignored");
        }
    }
    for table in &selected {
        lock_table(&coordinator, &relation(table)).await?;
    }
    let mut schemas = Vec::with_capacity(selected.len());
    for table in &selected {
        schemas.push(load_table_schema(&coordinator, table.oid).await?);
    }
    let tx_id: Option<i64> = coordinator
        .query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read the snapshot's xmax".into(),
            error,
        })?
        .get(0);
    let context = Arc::new(SnapshotContext {
        database: params.dbname.as_str().into(),
        consistent_point: created.consistent_point,
        started_at_us: now_us(),
        tx_id,
        throttle: Arc::new(throttle::Throttle::new(&settings.throttle)),
    });
    let plan = plan::plan(&coordinator, &schemas, settings).await?;
    let chunk_count = plan.chunks.len();
    tracing::info!(
        application_name = %params.application_name,
        tables = plan.tables.len(),
        chunks = chunk_count,
        readers = settings.max_threads,
        snapshot = %created.snapshot_name,
        throttle = ?settings.throttle.is_active().then_some(settings.throttle),
        "snapshot started"
    );
    settings.stats.begin(&plan.tables);
    let reporter = progress::Reporter::start(
        Arc::clone(&settings.stats),
        progress::Display::detect(),
        settings.progress_interval,
        params.application_name.clone(),
    );

    // One bounded channel per chunk; readers take (chunk, sender) in emission order.
    let mut receivers = Vec::with_capacity(chunk_count);
    let mut queue = VecDeque::with_capacity(chunk_count);
    for chunk in &plan.chunks {
        let (tx, rx) = mpsc::channel(CHUNK_CHANNEL_BATCHES);
        receivers.push((chunk.table, rx));
        queue.push_back((chunk.clone(), tx));
    }
    let queue = Arc::new(Mutex::new(queue));
    let tables = Arc::new(plan.tables);
    let mut readers = JoinSet::new();
    let reader_count = settings.max_threads.clamp(1, chunk_count.max(1));
    readers.spawn(reader::run(
        0,
        reader::Session::Coordinator(coordinator),
        Arc::clone(&tables),
        Arc::clone(&queue),
        Arc::clone(&context),
        settings
            .reader_encoding
            .as_ref()
            .map(|e| Arc::clone(&e.make)),
    ));
    for id in 1..reader_count {
        readers.spawn(reader::run(
            id,
            reader::Session::Open {
                params: params.clone(),
                snapshot_name: created.snapshot_name.clone(),
            },
            Arc::clone(&tables),
            Arc::clone(&queue),
            Arc::clone(&context),
            settings
                .reader_encoding
                .as_ref()
                .map(|e| Arc::clone(&e.make)),
        ));
    }
    let notes = emitter::InitialNotifications {
        snapshotted: java_hash_set_order(
            tables.iter().map(|t| t.schema.qualified_name()).collect(),
        )
        .join(","),
        captured: {
            let mut names: Vec<String> = captured.iter().map(|t| t.qualified_name()).collect();
            names.sort();
            names.join(",")
        },
    };
    let emitted = match emitter::emit(
        &tables,
        receivers,
        events,
        &settings.stats,
        Some(&notes),
        settings.reader_encoding.as_ref(),
    )
    .await
    {
        Ok(rows) => rows,
        Err(err) => {
            // A chunk ended without `Done`: its reader failed; report the reader's error.
            readers.abort_all();
            let mut reader_error = None;
            while let Some(result) = readers.join_next().await {
                if let Ok(Err(e)) = result {
                    reader_error.get_or_insert(e);
                }
            }
            return Err(reader_error.unwrap_or(err));
        }
    };
    while let Some(result) = readers.join_next().await {
        match result {
            Ok(result) => result?,
            Err(join) => {
                return Err(SourceError::Setup(format!(
                    "snapshot reader task failed: {join}"
                )))
            }
        }
    }
    settings.stats.complete();
    reporter.stop().await;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = settings.stats.view().total_bytes();
    tracing::info!(
        application_name = %params.application_name,
        rows = emitted,
        bytes,
        seconds,
        rows_per_second = (emitted as f64 / seconds.max(1e-9)) as u64,
        bytes_per_second = (bytes as f64 / seconds.max(1e-9)) as u64,
        "snapshot completed"
    );
    Ok(emitted)
}

/// Calls [`SnapshotStats::finish`] when dropped.
struct FinishStats<'a>(&'a SnapshotStats);

impl Drop for FinishStats<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod notification_tests {
    /// Java 17's `String.join(",", new HashSet<>(Arrays.asList(..)))` for these names.
    #[test]
    fn hash_set_order_matches_java() {
        let names = [
            "public.t1",
            "public.t2",
            "public.dbz_signal",
            "public.orders",
            "public.customers",
            "inventory.products",
            "public.a",
            "public.b",
        ];
        let ordered = super::java_hash_set_order(names.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            ordered.join(","),
            "public.orders,public.customers,public.a,public.b,public.dbz_signal,public.t2,inventory.products,public.t1"
        );
    }
}
