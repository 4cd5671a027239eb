//! Connector metrics, exported in the Prometheus text format at `GET /metrics`.
//!
//! # Names
//!
//! Debezium publishes its metrics as JMX MBeans
//! (`debezium.postgres:type=connector-metrics,context=streaming,server=<topic.prefix>`), and
//! deployments scrape them with the Prometheus JMX exporter using the rules of Debezium's
//! monitoring example, which turn each attribute into `debezium_metrics_<Attribute>` with the
//! labels `plugin`, `name` (the topic prefix) and `context`. pgseam exports the same series
//! directly, so dashboards and alerts keep working:
//!
//! ```text
//! debezium_metrics_TotalNumberOfEventsSeen{plugin="postgres",name="dbz",context="streaming"} 42
//! debezium_metrics_RowsScanned{plugin="postgres",name="dbz",context="snapshot",table="public.t"} 7
//! ```
//!
//! Streaming context: [`STREAMING_METRICS`]. Snapshot context: [`SNAPSHOT_METRICS`], of which
//! [`SNAPSHOT_TABLE_METRICS`] — Debezium's `Map<String, Long>` attributes `RowsScanned`,
//! `TableChunkCounts` and `TableChunksCompletedCounts` — have one sample per table with a
//! `table` label (`schema.table`, Debezium's data collection identifier). Booleans are 0/1. `LastTransactionId` is PostgreSQL's numeric
//! transaction id (the JMX exporter drops Debezium's string form).
//!
//! What each one means in pgseam (`NumberOfEventsFiltered`, the queue sizes, the lag
//! statistics, …) is listed in `docs/metrics.md`, which the REST compliance test reads.
//!
//! pgseam's own series ([`PGSEAM_METRICS`]) carry the labels `connector` and `name`:
//! `pgseam_slot_lag_bytes` (server WAL end seen by the stream minus the LSN confirmed durable),
//! `pgseam_producer_queue_depth` (records handed to the producer and not yet acknowledged),
//! `pgseam_delivery_latency_seconds` (a summary: send → broker acknowledgement),
//! `pgseam_records_skipped_total` (records skipped under `errors.tolerance=all` because they
//! were larger than the producer's `message.max.bytes`; each is also logged), and
//! `pgseam_connector_running` (1 while the pipeline runs and is not paused).
//!
//! # Snapshot metrics, as Debezium's `SnapshotMeter`
//!
//! - `TotalTableCount`: tables of the current (or last) snapshot; `RemainingTableCount`: those
//!   not completely emitted yet.
//! - `RowsScanned{table}`: rows emitted so far (Debezium updates it while scanning and at the
//!   end of each table); a table appears once its first row is emitted.
//! - `TableChunkCounts{table}` / `TableChunksCompletedCounts{table}`: chunks planned / emitted,
//!   every table of the snapshot from the start.
//! - `SnapshotRunning` from the engine's start (before its locks and planning) to its end;
//!   `SnapshotCompleted` once streaming follows it; `SnapshotAborted` when it ended without
//!   sending every row (an error, or the connector stopped during it);
//!   `SnapshotDurationInSeconds` from its start to its end, up to now while running;
//!   `SnapshotPaused` while the connector is paused over REST during its snapshot.
//!
//! Not exported: `SnapshotPausedDurationInSeconds`, `SnapshotSkipped`, and the string
//! attributes (`ChunkId`, `ChunkFrom`, …, `LastEvent`), which the JMX exporter drops.
//!
//! # Updating
//!
//! The pipeline updates one [`ConnectorMetrics`] per connector through lock-free atomics; the
//! snapshot engine updates the [`SnapshotStats`] the connector's `SnapshotSettings` carry (the
//! manager hands it [`ConnectorMetrics::snapshot_stats`]), under a short mutex once per row
//! batch. The REST handler reads both when scraped. A restarted connector keeps its counters, as a JMX bean
//! outlives task restarts within a Connect worker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgseam_connector_pg::snapshot::{EncodedRows, SnapshotStats};
use pgseam_model::{ChangeEvent, Operation, Position, Value};

/// Debezium streaming metrics exported in the `streaming` context.
pub const STREAMING_METRICS: &[&str] = &[
    "TotalNumberOfEventsSeen",
    "TotalNumberOfCreateEventsSeen",
    "TotalNumberOfUpdateEventsSeen",
    "TotalNumberOfDeleteEventsSeen",
    "NumberOfCommittedTransactions",
    "MilliSecondsBehindSource",
    "MilliSecondsSinceLastEvent",
    "Connected",
    "LastTransactionId",
    "QueueTotalCapacity",
    "QueueRemainingCapacity",
    "MaxQueueSizeInBytes",
    "CurrentQueueSizeInBytes",
    "NumberOfEventsFiltered",
    "NumberOfErroneousEvents",
    "MilliSecondsBehindSourceMinValue",
    "MilliSecondsBehindSourceMaxValue",
    "MilliSecondsBehindSourceAverageValue",
    "MilliSecondsBehindSourceP50",
    "MilliSecondsBehindSourceP95",
    "MilliSecondsBehindSourceP99",
];

/// Debezium snapshot metrics exported in the `snapshot` context.
pub const SNAPSHOT_METRICS: &[&str] = &[
    "TotalNumberOfEventsSeen",
    "MilliSecondsSinceLastEvent",
    "TotalTableCount",
    "RemainingTableCount",
    "SnapshotRunning",
    "SnapshotPaused",
    "SnapshotCompleted",
    "SnapshotAborted",
    "SnapshotDurationInSeconds",
    "RowsScanned",
    "TableChunkCounts",
    "TableChunksCompletedCounts",
    "TotalNumberOfCreateEventsSeen",
    "TotalNumberOfUpdateEventsSeen",
    "TotalNumberOfDeleteEventsSeen",
    "NumberOfEventsFiltered",
    "NumberOfErroneousEvents",
    "QueueTotalCapacity",
    "QueueRemainingCapacity",
    "MaxQueueSizeInBytes",
    "CurrentQueueSizeInBytes",
];

/// The [`SNAPSHOT_METRICS`] that are maps in Debezium: one sample per table (`table` label).
pub const SNAPSHOT_TABLE_METRICS: &[&str] = &[
    "RowsScanned",
    "TableChunkCounts",
    "TableChunksCompletedCounts",
];

/// pgseam's own series.
pub const PGSEAM_METRICS: &[&str] = &[
    "pgseam_slot_lag_bytes",
    "pgseam_producer_queue_depth",
    "pgseam_delivery_latency_seconds",
    "pgseam_records_skipped_total",
    "pgseam_connector_running",
];

/// Counters of one connector; shared by its pipeline (writer) and the REST server (reader).
#[derive(Debug, Default)]
pub struct ConnectorMetrics {
    streaming_events: AtomicU64,
    creates: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
    committed_transactions: AtomicU64,
    /// -1 until the first streamed event, as Debezium.
    behind_source_ms: AtomicI64,
    last_streaming_event_ms: AtomicI64,
    connected: AtomicBool,
    /// -1 until the first transaction.
    last_transaction_id: AtomicI64,
    queue_capacity: AtomicU64,
    queue_remaining: AtomicU64,
    /// Initial-snapshot rows converted by the readers and queued (besides the queue's events).
    converted_rows_queued: AtomicU64,
    /// Running mean of the in-memory size of the events taken from the source queue, in
    /// bytes × 16 (a fixed-point exponential average, see [`ConnectorMetrics::on_event`]).
    event_bytes_x16: AtomicU64,
    /// Events seen, for sampling their size.
    size_samples: AtomicU64,
    /// Events the stream decoded and did not emit (`skipped.operations`, tables outside the
    /// filters); shared with the stream (`EventSettings::filtered`).
    filtered: Arc<AtomicU64>,
    /// Streamed events that failed to convert or transform (each one stops the connector).
    erroneous: AtomicU64,
    /// Snapshot rows that failed to convert or transform.
    snapshot_erroneous: AtomicU64,
    /// Snapshot events by operation: all reads, so these stay 0, as in Debezium (whose
    /// `CommonEventMeter` counts only `c`, `u`, `d`).
    snapshot_creates: AtomicU64,
    snapshot_updates: AtomicU64,
    snapshot_deletes: AtomicU64,
    /// Every streamed event's `MilliSecondsBehindSource`, for the statistics.
    lag: LagStatistics,

    snapshot_events: AtomicU64,
    last_snapshot_event_ms: AtomicI64,
    snapshot_running: AtomicBool,
    snapshot_completed: AtomicBool,
    snapshot_aborted: AtomicBool,
    snapshot_started_ms: AtomicI64,
    snapshot_duration_ms: AtomicI64,
    /// Tables, rows and chunks of the snapshot, kept by the snapshot engine.
    snapshot: Arc<SnapshotStats>,

    wal_end: AtomicU64,
    durable_lsn: AtomicU64,
    producer_queue_depth: AtomicU64,
    delivery_latency_ns_sum: AtomicU64,
    deliveries: AtomicU64,
    /// Records skipped as too large (`errors.tolerance=all`), over the pipeline's restarts.
    records_skipped: AtomicU64,
    /// The current pipeline's sink count already added to `records_skipped`.
    records_skipped_seen: AtomicU64,
    running: AtomicBool,
}

fn is_snapshot(event: &ChangeEvent) -> bool {
    matches!(event.position, Position::Snapshot { .. }) || event.op == Operation::Read
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ConnectorMetrics {
    /// Fresh counters.
    pub fn new() -> Self {
        ConnectorMetrics {
            behind_source_ms: AtomicI64::new(-1),
            last_transaction_id: AtomicI64::new(-1),
            ..Default::default()
        }
    }

    /// The counters the snapshot engine keeps (`SnapshotSettings::stats`).
    pub fn snapshot_stats(&self) -> Arc<SnapshotStats> {
        Arc::clone(&self.snapshot)
    }

    /// The counter the stream increments for each event it decodes and does not emit
    /// (`EventSettings::filtered`).
    pub fn filtered_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.filtered)
    }

    /// An event failed to convert or transform; the connector stops with the error.
    pub fn on_erroneous_event(&self, event: &ChangeEvent) {
        if is_snapshot(event) {
            &self.snapshot_erroneous
        } else {
            &self.erroneous
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A change event was taken from the source.
    pub fn on_event(&self, event: &ChangeEvent) {
        let now = now_ms();
        // Exponential average (weight 1/16) of the size of one event in 64, for
        // CurrentQueueSizeInBytes (sampled: measuring every row costs snapshot throughput).
        if self
            .size_samples
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(64)
        {
            self.sample_event_size(event_size(event));
        }
        if is_snapshot(event) {
            self.snapshot_started(now);
            self.snapshot_events.fetch_add(1, Ordering::Relaxed);
            let counter = match event.op {
                Operation::Create => Some(&self.snapshot_creates),
                Operation::Update => Some(&self.snapshot_updates),
                Operation::Delete => Some(&self.snapshot_deletes),
                Operation::Read | Operation::Truncate => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            self.last_snapshot_event_ms.store(now, Ordering::Relaxed);
            return;
        }
        self.connected.store(true, Ordering::Relaxed);
        self.streaming_events.fetch_add(1, Ordering::Relaxed);
        self.last_streaming_event_ms.store(now, Ordering::Relaxed);
        let counter = match event.op {
            Operation::Create => Some(&self.creates),
            Operation::Update => Some(&self.updates),
            Operation::Delete => Some(&self.deletes),
            Operation::Read | Operation::Truncate => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if event.source.ts_us > 0 {
            let behind = (now - event.source.ts_us / 1000).max(0);
            self.behind_source_ms.store(behind, Ordering::Relaxed);
            self.lag.record(behind as u64);
        }
        if let Some(tx_id) = event.source.tx_id {
            self.last_transaction_id.store(tx_id, Ordering::Relaxed);
        }
    }

    /// Initial-snapshot rows converted by their reader were taken from the source's queue
    /// (their values were dropped after conversion; each counts as the event it was).
    pub fn on_encoded_rows(&self, run: &EncodedRows) {
        if run.rows == 0 {
            return;
        }
        let now = now_ms();
        // As `event_size` counts the event each row was (the database name aside).
        let per_row = (std::mem::size_of::<ChangeEvent>()
            + run.table.schema.len()
            + run.table.table.len()) as u64
            + run.row_bytes / run.rows;
        self.size_samples.fetch_add(run.rows, Ordering::Relaxed);
        self.sample_event_size(per_row);
        self.snapshot_started(now);
        self.snapshot_events.fetch_add(run.rows, Ordering::Relaxed);
        self.last_snapshot_event_ms.store(now, Ordering::Relaxed);
    }

    fn sample_event_size(&self, size: u64) {
        let size = size << 4;
        let _ = self
            .event_bytes_x16
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    size
                } else {
                    avg - avg / 16 + size / 16
                })
            });
    }

    fn snapshot_started(&self, now: i64) {
        if !self.snapshot_running.swap(true, Ordering::Relaxed)
            && !self.snapshot_completed.load(Ordering::Relaxed)
        {
            self.snapshot_started_ms.store(now, Ordering::Relaxed);
        }
    }

    /// A streamed transaction's events were all handed to the producer.
    pub fn on_transaction_committed(&self, tx_id: i64) {
        self.connected.store(true, Ordering::Relaxed);
        self.committed_transactions.fetch_add(1, Ordering::Relaxed);
        self.last_transaction_id.store(tx_id, Ordering::Relaxed);
    }

    /// The initial snapshot finished; streaming begins.
    pub fn on_snapshot_completed(&self) {
        let now = now_ms();
        let started = self.snapshot_started_ms.load(Ordering::Relaxed);
        if self.snapshot_running.swap(false, Ordering::Relaxed) && started > 0 {
            self.snapshot_duration_ms
                .store(now - started, Ordering::Relaxed);
        }
        self.snapshot_completed.store(true, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    /// The stream reported the server's WAL end (keepalive or transaction end).
    pub fn on_wal_end(&self, lsn: u64) {
        self.connected.store(true, Ordering::Relaxed);
        self.wal_end.fetch_max(lsn, Ordering::Relaxed);
    }

    /// An offset up to `lsn` is durable and confirmed to the slot.
    pub fn on_durable(&self, lsn: u64) {
        self.durable_lsn.fetch_max(lsn, Ordering::Relaxed);
    }

    /// Records handed to the producer and not yet acknowledged.
    pub fn set_producer_queue_depth(&self, depth: usize) {
        self.producer_queue_depth
            .store(depth as u64, Ordering::Relaxed);
    }

    /// The running pipeline's sink has skipped `skipped` records so far (a fresh sink starts
    /// at 0; see [`ConnectorMetrics::set_running`]).
    pub fn set_records_skipped(&self, skipped: u64) {
        let seen = self.records_skipped_seen.swap(skipped, Ordering::Relaxed);
        self.records_skipped
            .fetch_add(skipped.saturating_sub(seen), Ordering::Relaxed);
    }

    /// CurrentQueueSizeInBytes: the queued events and converted snapshot rows at the sampled
    /// mean event size.
    fn queue_bytes(&self, queued: u64) -> f64 {
        let events = queued + self.converted_rows_queued.load(Ordering::Relaxed);
        (events * (self.event_bytes_x16.load(Ordering::Relaxed) >> 4)) as f64
    }

    /// Initial-snapshot rows converted by the readers and queued towards the pipeline (they
    /// travel in runs, one queue entry each).
    pub fn set_converted_rows_queued(&self, rows: usize) {
        self.converted_rows_queued
            .store(rows as u64, Ordering::Relaxed);
    }

    /// The source→pipeline queue's capacity and free room.
    pub fn set_queue(&self, capacity: usize, remaining: usize) {
        self.queue_capacity
            .store(capacity as u64, Ordering::Relaxed);
        self.queue_remaining
            .store(remaining as u64, Ordering::Relaxed);
    }

    /// A record was acknowledged by the broker `latency` after it was sent.
    pub fn on_delivered(&self, latency: Duration) {
        self.delivery_latency_ns_sum
            .fetch_add(latency.as_nanos() as u64, Ordering::Relaxed);
        self.deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// The pipeline started (true) or ended (false).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
        // The next pipeline's sink counts skipped records from 0 again.
        self.records_skipped_seen.store(0, Ordering::Relaxed);
        if !running {
            self.connected.store(false, Ordering::Relaxed);
            if self.snapshot_running.swap(false, Ordering::Relaxed) {
                self.snapshot_aborted.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Appends this connector's series to `out` (Prometheus text format, without `# TYPE`
    /// lines; see [`render`]).
    fn write_series(&self, out: &mut Series, connector: &str, prefix: &str, paused: bool) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let flag = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed)) as f64;
        let since = |a: &AtomicI64| {
            let t = a.load(Ordering::Relaxed);
            if t == 0 {
                -1.0
            } else {
                (now_ms() - t) as f64
            }
        };
        let dbz = |context: &str| {
            format!(
                "plugin=\"postgres\",name=\"{}\",context=\"{context}\"",
                escape(prefix)
            )
        };
        let s = dbz("streaming");
        let queued = self
            .queue_capacity
            .load(Ordering::Relaxed)
            .saturating_sub(self.queue_remaining.load(Ordering::Relaxed));
        let lag = self.lag.summary();
        let streaming: [(&str, f64); 21] = [
            ("TotalNumberOfEventsSeen", load(&self.streaming_events)),
            ("TotalNumberOfCreateEventsSeen", load(&self.creates)),
            ("TotalNumberOfUpdateEventsSeen", load(&self.updates)),
            ("TotalNumberOfDeleteEventsSeen", load(&self.deletes)),
            (
                "NumberOfCommittedTransactions",
                load(&self.committed_transactions),
            ),
            (
                "MilliSecondsBehindSource",
                self.behind_source_ms.load(Ordering::Relaxed) as f64,
            ),
            (
                "MilliSecondsSinceLastEvent",
                since(&self.last_streaming_event_ms),
            ),
            ("Connected", flag(&self.connected)),
            (
                "LastTransactionId",
                self.last_transaction_id.load(Ordering::Relaxed) as f64,
            ),
            ("QueueTotalCapacity", load(&self.queue_capacity)),
            ("QueueRemainingCapacity", load(&self.queue_remaining)),
            // `max.queue.size.in.bytes` is accepted only at its default, 0 (no byte bound: the
            // queue is bounded by `max.queue.size` events).
            ("MaxQueueSizeInBytes", 0.0),
            ("CurrentQueueSizeInBytes", self.queue_bytes(queued)),
            ("NumberOfEventsFiltered", load(&self.filtered)),
            ("NumberOfErroneousEvents", load(&self.erroneous)),
            ("MilliSecondsBehindSourceMinValue", lag[0]),
            ("MilliSecondsBehindSourceMaxValue", lag[1]),
            ("MilliSecondsBehindSourceAverageValue", lag[2]),
            ("MilliSecondsBehindSourceP50", lag[3]),
            ("MilliSecondsBehindSourceP95", lag[4]),
            ("MilliSecondsBehindSourceP99", lag[5]),
        ];
        for (name, value) in streaming {
            out.add(&format!("debezium_metrics_{name}"), &s, value);
        }
        let s = dbz("snapshot");
        let view = self.snapshot.view();
        // The engine knows from before its locks and planning; the pipeline from the first row
        // it takes (and it alone sees a snapshot whose source task it drops end).
        let running = view.running || self.snapshot_running.load(Ordering::Relaxed);
        let aborted = self.snapshot_aborted.load(Ordering::Relaxed)
            || (view.started && !view.running && !view.completed);
        let duration_ms = if view.started {
            view.elapsed.as_millis() as i64
        } else {
            match self.snapshot_duration_ms.load(Ordering::Relaxed) {
                0 if self.snapshot_running.load(Ordering::Relaxed) => {
                    now_ms() - self.snapshot_started_ms.load(Ordering::Relaxed)
                }
                d => d,
            }
        };
        let queue_bytes = self.queue_bytes(queued);
        let snapshot: [(&str, f64); 18] = [
            ("TotalNumberOfEventsSeen", load(&self.snapshot_events)),
            (
                "MilliSecondsSinceLastEvent",
                since(&self.last_snapshot_event_ms),
            ),
            ("TotalTableCount", view.tables.len() as f64),
            ("RemainingTableCount", view.remaining_tables() as f64),
            ("SnapshotRunning", f64::from(u8::from(running))),
            ("SnapshotPaused", f64::from(u8::from(paused && running))),
            ("SnapshotCompleted", flag(&self.snapshot_completed)),
            ("SnapshotAborted", f64::from(u8::from(aborted))),
            ("SnapshotDurationInSeconds", (duration_ms / 1000) as f64),
            (
                "TotalNumberOfCreateEventsSeen",
                load(&self.snapshot_creates),
            ),
            (
                "TotalNumberOfUpdateEventsSeen",
                load(&self.snapshot_updates),
            ),
            (
                "TotalNumberOfDeleteEventsSeen",
                load(&self.snapshot_deletes),
            ),
            // The snapshot reads the captured tables only: nothing to filter.
            ("NumberOfEventsFiltered", 0.0),
            ("NumberOfErroneousEvents", load(&self.snapshot_erroneous)),
            // One queue for both contexts, as Debezium's `ChangeEventQueue`.
            ("QueueTotalCapacity", load(&self.queue_capacity)),
            ("QueueRemainingCapacity", load(&self.queue_remaining)),
            ("MaxQueueSizeInBytes", 0.0),
            ("CurrentQueueSizeInBytes", queue_bytes),
        ];
        for (name, value) in snapshot {
            out.add(&format!("debezium_metrics_{name}"), &s, value);
        }
        for name in SNAPSHOT_TABLE_METRICS {
            // Present before the first table, so that the family exists from the start.
            out.declare(&format!("debezium_metrics_{name}"));
        }
        for table in &view.tables {
            let labels = format!("{s},table=\"{}\"", escape(&table.name));
            if table.started.is_some() {
                out.add("debezium_metrics_RowsScanned", &labels, table.rows as f64);
            }
            out.add(
                "debezium_metrics_TableChunkCounts",
                &labels,
                table.chunks_total as f64,
            );
            out.add(
                "debezium_metrics_TableChunksCompletedCounts",
                &labels,
                table.chunks_done as f64,
            );
        }

        let own = format!(
            "connector=\"{}\",name=\"{}\"",
            escape(connector),
            escape(prefix)
        );
        let wal_end = self.wal_end.load(Ordering::Relaxed);
        let durable = self.durable_lsn.load(Ordering::Relaxed);
        out.add(
            "pgseam_slot_lag_bytes",
            &own,
            wal_end.saturating_sub(durable) as f64,
        );
        out.add(
            "pgseam_producer_queue_depth",
            &own,
            load(&self.producer_queue_depth),
        );
        out.add(
            "pgseam_delivery_latency_seconds_sum",
            &own,
            load(&self.delivery_latency_ns_sum) / 1e9,
        );
        out.add(
            "pgseam_delivery_latency_seconds_count",
            &own,
            load(&self.deliveries),
        );
        out.add(
            "pgseam_records_skipped_total",
            &own,
            load(&self.records_skipped),
        );
        out.add(
            "pgseam_connector_running",
            &own,
            f64::from(u8::from(self.running.load(Ordering::Relaxed) && !paused)),
        );
    }
}

/// DDSketch's relative accuracy in Debezium's `LongDDSketchStatistics` (1 %).
const LAG_ACCURACY: f64 = 0.01;
/// Buckets of the logarithmic mapping: γ^LAG_BUCKETS ms is far beyond any lag (γ ≈ 1.0202).
const LAG_BUCKETS: usize = 2048;

/// Debezium's lag statistics (`statistics.metrics.enabled`, default `true`): minimum,
/// maximum and mean of every streamed event's lag, and quantiles from a DDSketch with 1 %
/// relative accuracy (Debezium's `DDSketches.unboundedDense(0.01)`): a value `v ≥ 1` counts in
/// bucket `⌈log_γ v⌉` with `γ = (1+α)/(1−α)`, and a quantile is the bucket holding rank
/// `q·(n−1)`, reported as `2γ^i/(γ+1)` (within `α` of every value in the bucket); a lag of 0
/// has its own bucket. Lock-free: the stream records, the scrape reads.
#[derive(Debug)]
struct LagStatistics {
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    zeros: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

impl Default for LagStatistics {
    fn default() -> Self {
        LagStatistics {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            zeros: AtomicU64::new(0),
            buckets: (0..LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LagStatistics {
    fn gamma() -> f64 {
        (1.0 + LAG_ACCURACY) / (1.0 - LAG_ACCURACY)
    }

    fn record(&self, ms: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(ms, Ordering::Relaxed);
        self.min.fetch_min(ms, Ordering::Relaxed);
        self.max.fetch_max(ms, Ordering::Relaxed);
        if ms == 0 {
            self.zeros.fetch_add(1, Ordering::Relaxed);
        } else {
            let i = ((ms as f64).ln() / Self::gamma().ln()).ceil() as usize;
            self.buckets[i.min(LAG_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Min, max, mean, P50, P95, P99; -1 each before the first event (Debezium: null, which
    /// the JMX exporter leaves out).
    fn summary(&self) -> [f64; 6] {
        let n = self.count.load(Ordering::Relaxed);
        if n == 0 {
            return [-1.0; 6];
        }
        let quantile = |q: f64| {
            let rank = q * (n - 1) as f64;
            let mut seen = self.zeros.load(Ordering::Relaxed);
            if seen as f64 > rank {
                return 0.0;
            }
            let gamma = Self::gamma();
            for (i, b) in self.buckets.iter().enumerate() {
                seen += b.load(Ordering::Relaxed);
                if seen as f64 > rank {
                    return 2.0 * gamma.powi(i as i32) / (gamma + 1.0);
                }
            }
            self.max.load(Ordering::Relaxed) as f64
        };
        [
            self.min.load(Ordering::Relaxed) as f64,
            self.max.load(Ordering::Relaxed) as f64,
            self.sum.load(Ordering::Relaxed) as f64 / n as f64,
            quantile(0.5),
            quantile(0.95),
            quantile(0.99),
        ]
    }
}

/// The in-memory size of a change event: the struct, its row slots and the heap bytes of its
/// values (what Debezium's `ObjectSizeCalculator` measures for a queued event, approximately).
pub fn event_size(event: &ChangeEvent) -> u64 {
    let row = |r: &Option<Vec<Value>>| {
        r.as_ref()
            .map_or(0, |r| r.iter().map(Value::footprint).sum())
    };
    (std::mem::size_of::<ChangeEvent>()
        + row(&event.before)
        + row(&event.after)
        + event.source.db.len()
        + event.source.schema.len()
        + event.source.table.len()) as u64
}

/// Series grouped by metric name, so that each name's samples follow its `# TYPE` line.
#[derive(Default)]
struct Series(BTreeMap<String, Vec<String>>);

impl Series {
    fn add(&mut self, name: &str, labels: &str, value: f64) {
        self.0
            .entry(name.to_owned())
            .or_default()
            .push(format!("{name}{{{labels}}} {value}"));
    }

    fn declare(&mut self, name: &str) {
        self.0.entry(name.to_owned()).or_default();
    }
}

/// One connector as the exporter sees it.
pub struct Exported<'a> {
    pub connector: &'a str,
    pub topic_prefix: &'a str,
    pub paused: bool,
    pub metrics: &'a ConnectorMetrics,
}

/// Renders every connector's metrics in the Prometheus text exposition format (version 0.0.4).
pub fn render<'a>(connectors: impl IntoIterator<Item = Exported<'a>>) -> String {
    let mut series = Series::default();
    for c in connectors {
        c.metrics
            .write_series(&mut series, c.connector, c.topic_prefix, c.paused);
    }
    // Declared even with no connector, so that a scrape always lists the families.
    for name in STREAMING_METRICS.iter().chain(SNAPSHOT_METRICS) {
        series.declare(&format!("debezium_metrics_{name}"));
    }
    let mut out = String::new();
    let mut summary_done = false;
    for (name, samples) in &series.0 {
        if let Some(base) = name
            .strip_suffix("_sum")
            .or_else(|| name.strip_suffix("_count"))
        {
            if !summary_done {
                let _ = writeln!(out, "# TYPE {base} summary");
                summary_done = true;
            }
        } else {
            let kind = if (name.starts_with("debezium_metrics_Total")
                && name != "debezium_metrics_TotalTableCount")
                || name == "debezium_metrics_NumberOfCommittedTransactions"
                || name == "debezium_metrics_NumberOfEventsFiltered"
                || name == "debezium_metrics_NumberOfErroneousEvents"
                || name == "debezium_metrics_RowsScanned"
                || name.ends_with("_total")
            {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
        }
        for sample in samples {
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

/// Escapes a label value (`\`, `"`, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_metric_is_rendered() {
        let metrics = ConnectorMetrics::new();
        metrics.on_transaction_committed(7);
        metrics.on_wal_end(200);
        metrics.on_durable(150);
        let text = render([Exported {
            connector: "inv\"x",
            topic_prefix: "dbz",
            paused: false,
            metrics: &metrics,
        }]);
        for name in STREAMING_METRICS {
            let line = format!(
                "debezium_metrics_{name}{{plugin=\"postgres\",name=\"dbz\",context=\"streaming\"}}"
            );
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        for name in SNAPSHOT_METRICS {
            assert!(
                text.contains(&format!("# TYPE debezium_metrics_{name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(
            text.contains("pgseam_slot_lag_bytes{connector=\"inv\\\"x\",name=\"dbz\"} 50\n"),
            "{text}"
        );
        assert!(text.contains("debezium_metrics_LastTransactionId{plugin=\"postgres\",name=\"dbz\",context=\"streaming\"} 7\n"), "{text}");
        assert!(text.contains("# TYPE pgseam_delivery_latency_seconds summary\n"));
    }

    fn streaming_value(text: &str, name: &str) -> f64 {
        let prefix = format!(
            "debezium_metrics_{name}{{plugin=\"postgres\",name=\"dbz\",context=\"streaming\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn filtered_erroneous_and_queue_bytes() {
        use pgseam_model::{Lsn, SnapshotMarker, SourceInfo, TableSchema};
        let metrics = ConnectorMetrics::new();
        metrics.filtered_counter().fetch_add(3, Ordering::Relaxed);
        let event = ChangeEvent {
            table: Arc::new(TableSchema {
                relation_id: 1,
                schema: "public".into(),
                table: "t".into(),
                columns: vec![],
                key_columns: vec![],
            }),
            op: Operation::Create,
            before: None,
            after: Some(vec![Value::Text("x".repeat(1000)), Value::Int32(1)]),
            source: SourceInfo {
                ts_us: 1,
                snapshot: SnapshotMarker::False,
                db: "db".into(),
                schema: "public".into(),
                table: "t".into(),
                tx_id: Some(1),
                lsn: Some(Lsn(1)),
                last_commit_lsn: None,
            },
            position: Position::Stream {
                lsn: Lsn(1),
                commit_lsn: Lsn(1),
                tx_id: 1,
                commit_ts_us: 0,
            },
            key_change: None,
        };
        let size = event_size(&event);
        metrics.on_erroneous_event(&event);
        assert!(size > 1000 && size < 1500, "{size}");
        metrics.on_event(&event);
        metrics.set_queue(10, 6);
        let text = render([Exported {
            connector: "c",
            topic_prefix: "dbz",
            paused: false,
            metrics: &metrics,
        }]);
        assert_eq!(streaming_value(&text, "NumberOfEventsFiltered"), 3.0);
        assert_eq!(streaming_value(&text, "NumberOfErroneousEvents"), 1.0);
        assert_eq!(streaming_value(&text, "MaxQueueSizeInBytes"), 0.0);
        // Four events queued, of the mean size seen.
        let queued = streaming_value(&text, "CurrentQueueSizeInBytes");
        assert_eq!(queued, (4 * size) as f64, "{text}");
        assert!(text.contains("# TYPE debezium_metrics_NumberOfEventsFiltered counter\n"));
    }

    #[test]
    fn lag_statistics_within_one_percent() {
        let lag = LagStatistics::default();
        assert_eq!(lag.summary(), [-1.0; 6]);
        for ms in 1..=1000 {
            lag.record(ms);
        }
        lag.record(0);
        let [min, max, mean, p50, p95, p99] = lag.summary();
        assert_eq!((min, max), (0.0, 1000.0));
        assert!((mean - 500_500.0 / 1001.0).abs() < 1e-9, "{mean}");
        for (got, want) in [(p50, 500.0), (p95, 950.0), (p99, 990.0)] {
            assert!(
                (got - want).abs() <= want * 0.011,
                "{got} not within 1% of {want}"
            );
        }
    }

    #[test]
    fn skipped_records_add_up_across_pipeline_restarts() {
        let metrics = ConnectorMetrics::new();
        metrics.set_running(true);
        metrics.set_records_skipped(2);
        metrics.set_records_skipped(2);
        metrics.set_records_skipped(3);
        metrics.set_running(false);
        // A restarted pipeline has a new sink, counting from 0.
        metrics.set_running(true);
        metrics.set_records_skipped(1);
        let text = render([Exported {
            connector: "c",
            topic_prefix: "dbz",
            paused: false,
            metrics: &metrics,
        }]);
        assert!(
            text.contains("# TYPE pgseam_records_skipped_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("pgseam_records_skipped_total{connector=\"c\",name=\"dbz\"} 4\n"),
            "{text}"
        );
    }

    #[test]
    fn snapshot_tables_rows_and_chunks_follow_the_engine() {
        let metrics = ConnectorMetrics::new();
        let stats = metrics.snapshot_stats();
        stats.begin_tables([
            ("public.a".to_owned(), 1000, 3),
            ("public.b".to_owned(), 10, 1),
        ]);
        stats.add_rows(0, 700, 7000);
        stats.chunk_done(0);
        stats.chunk_done(0);
        let scrape = |paused| {
            render([Exported {
                connector: "c",
                topic_prefix: "dbz",
                paused,
                metrics: &metrics,
            }])
        };
        let s = "{plugin=\"postgres\",name=\"dbz\",context=\"snapshot\"";
        let text = scrape(false);
        for line in [
            format!("debezium_metrics_TotalTableCount{s}}} 2\n"),
            format!("debezium_metrics_RemainingTableCount{s}}} 2\n"),
            format!("debezium_metrics_RowsScanned{s},table=\"public.a\"}} 700\n"),
            format!("debezium_metrics_TableChunkCounts{s},table=\"public.a\"}} 3\n"),
            format!("debezium_metrics_TableChunkCounts{s},table=\"public.b\"}} 1\n"),
            format!("debezium_metrics_TableChunksCompletedCounts{s},table=\"public.a\"}} 2\n"),
            format!("debezium_metrics_TableChunksCompletedCounts{s},table=\"public.b\"}} 0\n"),
            "# TYPE debezium_metrics_TotalTableCount gauge\n".to_owned(),
            "# TYPE debezium_metrics_RowsScanned counter\n".to_owned(),
        ] {
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        // A table appears in RowsScanned once it has started.
        assert!(!text.contains("RowsScanned{plugin=\"postgres\",name=\"dbz\",context=\"snapshot\",table=\"public.b\""), "{text}");
        stats.add_rows(0, 300, 3000);
        stats.chunk_done(0);
        stats.table_done(0);
        stats.chunk_done(1);
        stats.table_done(1);
        let text = scrape(false);
        for line in [
            format!("debezium_metrics_RemainingTableCount{s}}} 0\n"),
            format!("debezium_metrics_RowsScanned{s},table=\"public.a\"}} 1000\n"),
            format!("debezium_metrics_RowsScanned{s},table=\"public.b\"}} 0\n"),
            format!("debezium_metrics_TableChunksCompletedCounts{s},table=\"public.a\"}} 3\n"),
        ] {
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        // Running from the engine's start; SnapshotPaused: the connector is paused over REST
        // while its snapshot runs.
        let flags = |text: &str| {
            ["SnapshotRunning", "SnapshotPaused", "SnapshotAborted"]
                .map(|name| text.contains(&format!("debezium_metrics_{name}{s}}} 1\n")))
        };
        assert_eq!(flags(&scrape(true)), [true, true, false]);
        assert_eq!(flags(&scrape(false)), [true, false, false]);
        stats.complete();
        assert_eq!(flags(&scrape(true)), [false, false, false]);
        // A snapshot that ends without completing was aborted.
        stats.start();
        assert_eq!(flags(&scrape(false)), [true, false, false]);
        assert!(scrape(false).contains(&format!("debezium_metrics_TotalTableCount{s}}} 0\n")));
        stats.finish();
        assert_eq!(flags(&scrape(false)), [false, false, true]);
    }
}
