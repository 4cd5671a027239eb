//! Snapshot progress: live counters ([`SnapshotStats`], also the source of the snapshot
//! metrics), and a reporter that shows them — progress bars on a terminal, structured logs
//! otherwise.
//!
//! # Counters
//!
//! The emitter updates one [`SnapshotStats`] as it sends rows on, so rows are counted when they
//! leave the snapshot in emission order (at most a few batches behind what readers have read):
//! per table the rows, the binary COPY bytes, the chunks done out of the chunks planned, and
//! whether the table is done. Row totals are estimates from the planner's statistics
//! (`pg_class.reltuples`, or `relpages` × rows per block, see [`super::plan`]), so bars and logs
//! say "≈" and an ETA is only as good as the last ANALYZE. The stats live as long as the
//! connector's metrics: [`SnapshotStats::begin`] resets them when a snapshot starts.
//!
//! # Reporter
//!
//! When stderr is a terminal: one bar per table being read (rows, bytes, rate, ETA) above a
//! total bar (named by the sessions' `application_name`, `pgseam-<connector>`), all in one process-wide [`MultiProgress`] so that several connectors share the
//! screen. A finished table's bar is replaced by one printed line. Log lines must not tear the
//! bars: the binary's log writer goes through [`stderr_writer`], which hides the bars while a
//! line is written.
//!
//! Otherwise, every `snapshot.progress.interval.ms` (pgseam, default 5 s) one `snapshot
//! progress` log event with the fields `application_name` (the sessions' `application_name`,
//! `pgseam-<connector>`, telling connectors apart), `table`, `rows`, `estimated_rows`, `bytes`, `rate`
//! (rows/s in this table), `eta_seconds` (this table), `chunks_done`, `chunks_total`, and for
//! the whole snapshot `total_rows`, `total_estimated_rows`, `tables_done`, `tables_total`,
//! `total_rate` and `total_eta_seconds`. Never a row value.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanCount, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget,
    ProgressStyle,
};
use tokio::sync::watch;

use super::plan::TablePlan;

/// `snapshot.progress.interval.ms` default.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// How often bars are redrawn.
const BAR_REFRESH: Duration = Duration::from_millis(200);

/// One table's progress.
#[derive(Clone, Debug)]
pub struct TableProgress {
    /// `schema.table`, as Debezium names data collections.
    pub name: String,
    /// From statistics; see the module docs.
    pub estimated_rows: u64,
    pub chunks_total: u64,
    pub chunks_done: u64,
    pub rows: u64,
    /// Binary COPY bytes.
    pub bytes: u64,
    /// When its first row (or its end, for an empty table) was emitted.
    pub started: Option<Instant>,
    pub done: bool,
    /// How long it took, once done.
    pub duration: Option<Duration>,
}

impl TableProgress {
    /// Rows per second so far.
    pub fn rate(&self) -> f64 {
        match (self.started, self.duration) {
            (_, Some(d)) => self.rows as f64 / d.as_secs_f64().max(1e-3),
            (Some(s), None) => self.rows as f64 / s.elapsed().as_secs_f64().max(1e-3),
            (None, None) => 0.0,
        }
    }

    /// Seconds left at the current rate, by the estimate; 0 once the estimate is reached.
    pub fn eta_seconds(&self) -> u64 {
        eta(self.estimated_rows.saturating_sub(self.rows), self.rate())
    }
}

fn eta(remaining: u64, rate: f64) -> u64 {
    if remaining == 0 || rate <= 0.0 {
        0
    } else {
        (remaining as f64 / rate).ceil() as u64
    }
}

/// A consistent copy of the counters.
#[derive(Clone, Debug, Default)]
pub struct StatsView {
    pub tables: Vec<TableProgress>,
    /// How long the snapshot has run (or ran).
    pub elapsed: Duration,
    /// A snapshot has started since these counters were created.
    pub started: bool,
    pub running: bool,
    /// It ended with every row sent ([`SnapshotStats::complete`]).
    pub completed: bool,
}

impl StatsView {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }

    /// Rows still expected: each unfinished table's estimate beyond what it has sent.
    pub fn remaining_estimated_rows(&self) -> u64 {
        self.tables
            .iter()
            .filter(|t| !t.done)
            .map(|t| t.estimated_rows.saturating_sub(t.rows))
            .sum()
    }

    /// Tables not completed yet (Debezium's `RemainingTableCount`).
    pub fn remaining_tables(&self) -> usize {
        self.tables.iter().filter(|t| !t.done).count()
    }

    /// Rows per second over the whole snapshot.
    pub fn rate(&self) -> f64 {
        self.total_rows() as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// The table being emitted: the first unfinished one that has started.
    pub fn current(&self) -> Option<&TableProgress> {
        self.tables.iter().find(|t| t.started.is_some() && !t.done)
    }
}

#[derive(Debug, Default)]
struct StatsState {
    started: Option<Instant>,
    finished: Option<Instant>,
    completed: bool,
    tables: Vec<TableProgress>,
}

/// Live counters of the current (or last) snapshot, shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    state: Mutex<StatsState>,
}

impl SnapshotStats {
    pub fn new() -> Self {
        SnapshotStats::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StatsState> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent in a harmful way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of these planned tables starts (resets the previous one's counters).
    pub(crate) fn begin(&self, tables: &[TablePlan]) {
        self.begin_tables(
            tables
                .iter()
                .map(|t| (t.schema.qualified_name(), t.estimated_rows, t.chunks as u64)),
        );
    }

    /// A snapshot starts (before its locks and planning): the previous one's counters go.
    pub fn start(&self) {
        let mut state = self.state();
        *state = StatsState {
            started: Some(Instant::now()),
            ..StatsState::default()
        };
    }

    /// The snapshot's tables `(schema.table, estimated rows, chunks)` are planned; table `i` of
    /// the iterator is table `i` of the other calls. Starts the snapshot if [`Self::start`]
    /// was not called.
    pub fn begin_tables(&self, tables: impl IntoIterator<Item = (String, u64, u64)>) {
        let mut state = self.state();
        if state.started.is_none() || state.finished.is_some() {
            state.started = Some(Instant::now());
            state.finished = None;
        }
        state.tables = tables
            .into_iter()
            .map(|(name, estimated_rows, chunks_total)| TableProgress {
                name,
                estimated_rows,
                chunks_total,
                chunks_done: 0,
                rows: 0,
                bytes: 0,
                started: None,
                done: false,
                duration: None,
            })
            .collect();
    }

    fn with_table(&self, table: usize, f: impl FnOnce(&mut TableProgress)) {
        let mut state = self.state();
        if let Some(t) = state.tables.get_mut(table) {
            if t.started.is_none() {
                t.started = Some(Instant::now());
            }
            f(t);
        }
    }

    /// `rows` rows of `bytes` COPY bytes of table `table` (index in the plan) were emitted.
    pub fn add_rows(&self, table: usize, rows: u64, bytes: u64) {
        self.with_table(table, |t| {
            t.rows += rows;
            t.bytes += bytes;
        });
    }

    /// One more chunk of `table` was emitted completely.
    pub fn chunk_done(&self, table: usize) {
        self.with_table(table, |t| t.chunks_done += 1);
    }

    /// Every chunk of `table` was emitted.
    pub fn table_done(&self, table: usize) {
        self.with_table(table, |t| {
            t.done = true;
            t.duration = t.started.map(|s| s.elapsed());
        });
    }

    /// Every row was sent: the snapshot completed.
    pub fn complete(&self) {
        self.finish();
        self.state().completed = true;
    }

    /// The snapshot ended (completed, failed or cancelled).
    pub fn finish(&self) {
        let mut state = self.state();
        if state.finished.is_none() {
            state.finished = Some(Instant::now());
        }
    }

    /// A copy of the counters.
    pub fn view(&self) -> StatsView {
        let state = self.state();
        let elapsed = match (state.started, state.finished) {
            (Some(s), Some(f)) => f.saturating_duration_since(s),
            (Some(s), None) => s.elapsed(),
            _ => Duration::ZERO,
        };
        StatsView {
            tables: state.tables.clone(),
            elapsed,
            started: state.started.is_some(),
            running: state.started.is_some() && state.finished.is_none(),
            completed: state.completed,
        }
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Display {
    Bars,
    Logs,
}

impl Display {
    /// Bars when stderr is a terminal, logs otherwise.
    pub(crate) fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Display::Bars
        } else {
            Display::Logs
        }
    }
}

/// The reporter task of one snapshot; [`Reporter::stop`] draws the final state.
pub(crate) struct Reporter {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Reporter {
    /// `label`: the sessions' `application_name`, in every log event.
    pub(crate) fn start(
        stats: Arc<SnapshotStats>,
        display: Display,
        interval: Duration,
        label: String,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = match display {
            Display::Logs => tokio::spawn(log_loop(stats, interval, label, stopped)),
            Display::Bars => tokio::spawn(bar_loop(stats, label, stopped)),
        };
        Reporter {
            stop,
            task: Some(task),
        }
    }

    /// Stops the reporter after its last update.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // A snapshot that fails leaves without `stop`: end the task with it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn log_loop(
    stats: Arc<SnapshotStats>,
    interval: Duration,
    label: String,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => log_progress(&stats.view(), &label),
            _ = stopped.changed() => return,
        }
    }
}

/// One `snapshot progress` event (see the module docs for the fields).
pub(crate) fn log_progress(view: &StatsView, label: &str) {
    let tables_done = view.tables.iter().filter(|t| t.done).count();
    let total_rate = view.rate();
    let total_eta = eta(view.remaining_estimated_rows(), total_rate);
    let total_estimated: u64 = view
        .tables
        .iter()
        .map(|t| {
            if t.done {
                t.rows
            } else {
                t.estimated_rows.max(t.rows)
            }
        })
        .sum();
    let empty = TableProgress {
        name: String::new(),
        estimated_rows: 0,
        chunks_total: 0,
        chunks_done: 0,
        rows: 0,
        bytes: 0,
        started: None,
        done: false,
        duration: None,
    };
    let table = view.current().unwrap_or(&empty);
    tracing::info!(
        application_name = %label,
        table = %table.name,
        rows = table.rows,
        estimated_rows = table.estimated_rows,
        bytes = table.bytes,
        rate = table.rate() as u64,
        eta_seconds = table.eta_seconds(),
        chunks_done = table.chunks_done,
        chunks_total = table.chunks_total,
        total_rows = view.total_rows(),
        total_estimated_rows = total_estimated,
        total_bytes = view.total_bytes(),
        tables_done,
        tables_total = view.tables.len(),
        total_rate = total_rate as u64,
        total_eta_seconds = total_eta,
        elapsed_seconds = view.elapsed.as_secs(),
        "snapshot progress"
    );
}

/// The process-wide bars (several connectors may snapshot at once).
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Whether any bar is being drawn.
fn bars_active() -> &'static std::sync::atomic::AtomicUsize {
    static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    &ACTIVE
}

/// Standard error for the log subscriber (`tracing_subscriber::fmt().with_writer(stderr_writer)`):
/// while snapshot bars are drawn, a log line is written with the bars hidden, then they are
/// redrawn below it.
pub fn stderr_writer() -> BarAwareStderr {
    BarAwareStderr
}

/// See [`stderr_writer`].
#[derive(Debug)]
pub struct BarAwareStderr;

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if bars_active().load(std::sync::atomic::Ordering::Relaxed) > 0 {
            bars().suspend(|| std::io::stderr().write_all(buf))?;
        } else {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>32.bold} [{bar:30.cyan/blue}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `12,345 / ≈100,000 rows · 1.2 MiB · 5,000 rows/s · ETA 17s`
fn bar_message(
    rows: u64,
    estimated: u64,
    bytes: u64,
    rate: f64,
    eta_seconds: u64,
    done: bool,
) -> String {
    let total = if done {
        String::new()
    } else {
        format!(" / ≈{}", HumanCount(estimated.max(rows)))
    };
    let eta = if done {
        String::new()
    } else {
        format!(" · ETA {}", HumanDuration(Duration::from_secs(eta_seconds)))
    };
    format!(
        "{}{total} rows · {} · {} rows/s{eta}",
        HumanCount(rows),
        HumanBytes(bytes),
        HumanCount(rate as u64),
    )
}

struct Bars {
    tables: Vec<Option<ProgressBar>>,
    total: ProgressBar,
}

impl Bars {
    fn new(view: &StatsView, label: &str) -> Self {
        bars_active().fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let total = bars().add(
            ProgressBar::new(1)
                .with_style(bar_style())
                .with_prefix(format!("{label} total")),
        );
        Bars {
            tables: vec![None; view.tables.len()],
            total,
        }
    }

    fn draw(&mut self, view: &StatsView) {
        for (i, t) in view.tables.iter().enumerate() {
            if t.started.is_none() {
                continue;
            }
            let Some(slot) = self.tables.get_mut(i) else {
                continue;
            };
            if slot.is_none() && t.done {
                // Finished between two redraws: only the summary line.
                let _ = bars().println(table_summary(t));
                *slot = Some(ProgressBar::hidden());
                continue;
            }
            let bar = slot.get_or_insert_with(|| {
                bars().insert_before(
                    &self.total,
                    ProgressBar::new(t.estimated_rows.max(1))
                        .with_style(bar_style())
                        .with_prefix(t.name.clone()),
                )
            });
            if bar.is_finished() {
                continue;
            }
            bar.set_length(t.estimated_rows.max(t.rows).max(1));
            bar.set_position(t.rows);
            bar.set_message(bar_message(
                t.rows,
                t.estimated_rows,
                t.bytes,
                t.rate(),
                t.eta_seconds(),
                t.done,
            ));
            if t.done {
                bar.finish_and_clear();
                bars().remove(bar);
                let _ = bars().println(table_summary(t));
            }
        }
        let estimated: u64 = view
            .tables
            .iter()
            .map(|t| {
                if t.done {
                    t.rows
                } else {
                    t.estimated_rows.max(t.rows)
                }
            })
            .sum();
        let rows = view.total_rows();
        self.total.set_length(estimated.max(rows).max(1));
        self.total.set_position(rows);
        let done = view.remaining_tables() == 0;
        self.total.set_message(format!(
            "{} · {}/{} tables",
            bar_message(
                rows,
                estimated,
                view.total_bytes(),
                view.rate(),
                eta(view.remaining_estimated_rows(), view.rate()),
                done,
            ),
            view.tables.len() - view.remaining_tables(),
            view.tables.len()
        ));
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        for bar in self.tables.iter().flatten() {
            bar.finish_and_clear();
            bars().remove(bar);
        }
        self.total.finish();
        bars().remove(&self.total);
        bars_active().fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn table_summary(t: &TableProgress) -> String {
    format!(
        "{}: {} rows, {} in {} ({} rows/s)",
        t.name,
        HumanCount(t.rows),
        HumanBytes(t.bytes),
        HumanDuration(t.duration.unwrap_or_default()),
        HumanCount(t.rate() as u64)
    )
}

async fn bar_loop(stats: Arc<SnapshotStats>, label: String, mut stopped: watch::Receiver<bool>) {
    let mut drawn = Bars::new(&stats.view(), &label);
    let mut ticker = tokio::time::interval(BAR_REFRESH);
    loop {
        tokio::select! {
            _ = ticker.tick() => drawn.draw(&stats.view()),
            _ = stopped.changed() => {
                let view = stats.view();
                drawn.draw(&view);
                let _ = bars().println(format!(
                    "{label} snapshot: {} rows, {} in {}",
                    HumanCount(view.total_rows()),
                    HumanBytes(view.total_bytes()),
                    HumanDuration(view.elapsed)
                ));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_count_rows_chunks_and_remaining_tables() {
        let stats = SnapshotStats::new();
        stats.begin_tables([("public.a".into(), 100, 2), ("public.b".into(), 100, 1)]);
        stats.add_rows(0, 60, 600);
        stats.chunk_done(0);
        let view = stats.view();
        assert_eq!(view.total_rows(), 60);
        assert_eq!(view.remaining_tables(), 2);
        assert_eq!(view.remaining_estimated_rows(), 140);
        assert_eq!(view.current().map(|t| t.name.as_str()), Some("public.a"));
        stats.add_rows(0, 50, 500);
        stats.chunk_done(0);
        stats.table_done(0);
        let view = stats.view();
        assert_eq!(view.remaining_tables(), 1);
        // Past its estimate, a table expects nothing more.
        assert_eq!(view.remaining_estimated_rows(), 100);
        assert_eq!(view.tables[0].chunks_done, 2);
        assert!(view.running);
        stats.finish();
        assert!(!stats.view().running && !stats.view().completed);
        stats.start();
        assert!(stats.view().running && stats.view().tables.is_empty());
        stats.complete();
        assert!(!stats.view().running && stats.view().completed);
    }

    #[test]
    fn bar_messages_mark_estimates() {
        assert_eq!(
            bar_message(12_345, 100_000, 2048, 5000.0, 17, false),
            "12,345 / ≈100,000 rows · 2.00 KiB · 5,000 rows/s · ETA 17 seconds"
        );
        assert_eq!(
            bar_message(10, 0, 0, 10.0, 0, true),
            "10 rows · 0 B · 10 rows/s"
        );
    }
}
