//! The single emitter: drains the chunks' channels in emission order, assigns Debezium's
//! snapshot markers, sends the events on, and counts progress ([`SnapshotStats`]).

use std::time::Instant;

use pgseam_model::{Position, SnapshotMarker};
use tokio::sync::mpsc;

use super::encode::{ReadRow, ReaderEncoding};
use super::plan::TablePlan;
use super::progress::SnapshotStats;
use super::ChunkMessage;
use crate::error::{Result, SourceError};
use crate::source::SourceMessage;

/// Debezium's markers: `last` on the very last row, `first` on the first, then
/// `last_in_data_collection` / `first_in_data_collection` at table edges, `true` elsewhere.
/// A table of one row gets `last_in_data_collection`.
pub(crate) fn marker(
    first_overall: bool,
    first_in_table: bool,
    last_in_table: bool,
    last_overall: bool,
) -> SnapshotMarker {
    if last_overall {
        SnapshotMarker::Last
    } else if first_overall {
        SnapshotMarker::First
    } else if last_in_table {
        SnapshotMarker::LastInDataCollection
    } else if first_in_table {
        SnapshotMarker::FirstInDataCollection
    } else {
        SnapshotMarker::True
    }
}

/// One row held back until the next one shows whether it ends its table.
struct Pending {
    row: ReadRow,
    table: usize,
    first_overall: bool,
    first_in_table: bool,
}

struct Emitter<'a> {
    out: &'a mpsc::Sender<SourceMessage>,
    /// Bounds the converted rows queued towards the pipeline (see `encode`).
    encoding: Option<&'a ReaderEncoding>,
    pending: Option<Pending>,
    emitted: u64,
    /// Progress steps due right after the held-back event (the last row of their chunk).
    after_pending: Vec<SourceMessage>,
}

impl Emitter<'_> {
    async fn push(&mut self, row: ReadRow, table: usize, first_in_table: bool) -> Result<()> {
        let first_overall = self.pending.is_none() && self.emitted == 0;
        if let Some(previous) = self.pending.take() {
            let ends_table = previous.table != table;
            self.send(previous, ends_table, false).await?;
        }
        self.pending = Some(Pending {
            row,
            table,
            first_overall,
            first_in_table,
        });
        Ok(())
    }

    /// Pushes one batch of a chunk of `table`, counting its rows and COPY bytes.
    async fn push_rows(
        &mut self,
        rows: impl IntoIterator<Item = ReadRow>,
        table: usize,
        progress: &mut Progress,
        bytes: u64,
        stats: &SnapshotStats,
    ) -> Result<()> {
        progress.bytes += bytes;
        let before = progress.rows;
        for row in rows {
            let first_in_table = progress.rows == 0;
            progress.rows += row.rows();
            self.push(row, table, first_in_table).await?;
        }
        stats.add_rows(table, progress.rows - before, bytes);
        Ok(())
    }

    async fn send(&mut self, p: Pending, last_in_table: bool, last_overall: bool) -> Result<()> {
        let marker = marker(
            p.first_overall,
            p.first_in_table,
            last_in_table,
            last_overall,
        );
        let (message, rows) = match p.row {
            ReadRow::Event(mut event) => {
                event.source.snapshot = marker;
                if let Position::Snapshot { last, .. } = &mut event.position {
                    *last = last_overall;
                }
                (SourceMessage::Event(event), 1)
            }
            // A reader converts only rows that cannot be at a table's or the snapshot's edge
            // (see `encode`), so their marker is `true` as converted.
            ReadRow::Encoded(mut run) if marker == SnapshotMarker::True => {
                if let Some(encoding) = self.encoding {
                    run.permit = Some(encoding.reserve(run.rows).await?);
                }
                let rows = run.rows;
                (SourceMessage::Encoded(run), rows)
            }
            ReadRow::Encoded(run) => {
                return Err(SourceError::Protocol(format!(
                    "snapshot rows of {} were converted by their reader but are marked {marker:?}",
                    run.table.qualified_name()
                )))
            }
        };
        self.out
            .send(message)
            .await
            .map_err(|_| SourceError::ConsumerGone)?;
        self.emitted += rows;
        for message in std::mem::take(&mut self.after_pending) {
            self.out
                .send(message)
                .await
                .map_err(|_| SourceError::ConsumerGone)?;
        }
        Ok(())
    }

    /// Sends `message` once every row read so far is sent (it follows the held-back one).
    async fn after_rows(&mut self, message: SourceMessage) -> Result<()> {
        if self.pending.is_some() {
            self.after_pending.push(message);
            return Ok(());
        }
        self.out
            .send(message)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }
}

/// Per-table progress.
struct Progress {
    rows: u64,
    bytes: u64,
    started: Instant,
}

/// Emits every chunk in order; returns the number of events. A channel that closes before its
/// chunk's `Done` means the reader failed: the caller reports the reader's error.
/// The `data_collections` of the initial snapshot's notifications (see `run`): `None` for
/// none (a test, or a snapshot that makes no notifications).
#[derive(Default)]
pub(crate) struct InitialNotifications {
    /// IN_PROGRESS's: the snapshotted tables, in Java `HashSet` order.
    pub(crate) snapshotted: String,
    /// TABLE_SCAN_COMPLETED's: the captured tables, sorted.
    pub(crate) captured: String,
}

fn initial(kind: &'static str, data: Vec<(&str, String)>) -> SourceMessage {
    SourceMessage::Notification(pgseam_model::Notification::now(
        None,
        pgseam_model::INITIAL_SNAPSHOT,
        kind,
        data,
    ))
}

pub(crate) async fn emit(
    tables: &[TablePlan],
    receivers: Vec<(usize, mpsc::Receiver<ChunkMessage>)>,
    out: &mpsc::Sender<SourceMessage>,
    stats: &SnapshotStats,
    notes: Option<&InitialNotifications>,
    encoding: Option<&ReaderEncoding>,
) -> Result<u64> {
    let mut emitter = Emitter {
        out,
        encoding,
        pending: None,
        emitted: 0,
        after_pending: Vec::new(),
    };
    let started = Instant::now();
    let mut current_table = usize::MAX;
    let mut progress = Progress {
        rows: 0,
        bytes: 0,
        started,
    };
    let mut chunks_done = 0usize;
    // Debezium's `InitialSnapshotNotificationService` as its one-thread snapshot sends them:
    // IN_PROGRESS when a table starts, TABLE_SCAN_COMPLETED when it is read.
    let table_done = |table: usize, progress: &Progress| {
        notes.map(|n| {
            initial(
                "TABLE_SCAN_COMPLETED",
                vec![
                    ("scanned_collection", tables[table].schema.qualified_name()),
                    ("data_collections", n.captured.clone()),
                    ("total_rows_scanned", progress.rows.to_string()),
                    ("status", "SUCCEEDED".to_owned()),
                ],
            )
        })
    };
    for (table, mut receiver) in receivers {
        if table != current_table {
            if current_table != usize::MAX {
                stats.table_done(current_table);
                log_table_done(&tables[current_table], &progress);
                if let Some(message) = table_done(current_table, &progress) {
                    emitter.after_rows(message).await?;
                }
            }
            if let Some(n) = notes {
                let message = initial(
                    "IN_PROGRESS",
                    vec![
                        (
                            "current_collection_in_progress",
                            tables[table].schema.qualified_name(),
                        ),
                        ("data_collections", n.snapshotted.clone()),
                    ],
                );
                emitter.after_rows(message).await?;
            }
            current_table = table;
            progress = Progress {
                rows: 0,
                bytes: 0,
                started: Instant::now(),
            };
        }
        loop {
            match receiver.recv().await {
                Some(ChunkMessage::Rows { events, bytes }) => {
                    let rows = events.into_iter().map(ReadRow::Event);
                    emitter
                        .push_rows(rows, table, &mut progress, bytes, stats)
                        .await?;
                }
                Some(ChunkMessage::Read { rows, bytes }) => {
                    emitter
                        .push_rows(rows, table, &mut progress, bytes, stats)
                        .await?;
                }
                Some(ChunkMessage::Delivered(update)) => {
                    emitter
                        .after_rows(SourceMessage::SnapshotProgress(update))
                        .await?;
                }
                Some(ChunkMessage::Done) => break,
                None => {
                    return Err(SourceError::Protocol(format!(
                        "snapshot reader of {} stopped before the end of a chunk",
                        tables[table].schema.qualified_name()
                    )))
                }
            }
        }
        chunks_done += 1;
        stats.chunk_done(table);
        tracing::trace!(chunks_done, "snapshot chunk emitted");
    }
    if current_table != usize::MAX {
        stats.table_done(current_table);
        log_table_done(&tables[current_table], &progress);
        if let Some(message) = table_done(current_table, &progress) {
            emitter.after_rows(message).await?;
        }
    }
    if let Some(last) = emitter.pending.take() {
        emitter.send(last, true, true).await?;
    }
    Ok(emitter.emitted)
}

fn log_table_done(table: &TablePlan, p: &Progress) {
    let seconds = p.started.elapsed().as_secs_f64();
    tracing::info!(
        table = %table.schema.qualified_name(),
        rows = p.rows,
        bytes = p.bytes,
        chunks = table.chunks,
        seconds = format_args!("{seconds:.1}"),
        rows_per_second = (p.rows as f64 / seconds.max(1e-3)) as u64,
        "snapshot of table done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_follow_debezium() {
        use SnapshotMarker::*;
        assert_eq!(marker(true, true, false, false), First);
        assert_eq!(marker(false, true, false, false), FirstInDataCollection);
        assert_eq!(marker(false, true, true, false), LastInDataCollection);
        assert_eq!(marker(false, false, false, false), True);
        assert_eq!(marker(true, true, true, true), Last);
    }
}
