//! Converting initial-snapshot rows where they are read, so that conversion runs beside
//! decoding instead of after it.
//!
//! Converting a row to its Debezium record is, with decoding the COPY data, the costliest step
//! per snapshot row. The pipeline converts events one at a time in its one task, so however
//! many readers decode, every row then waits for that one task. For the initial snapshot —
//! whose rows need no transaction context — each reader converts its own batches instead, with
//! a [`RowEncoder`] of its own (the pipeline's converter, forked), on a blocking thread while
//! the reader decodes the next batch:
//!
//! ```text
//!  reader task:       COPY data ─► decode batch n+1 ─┐
//!  blocking thread:             encode batch n ──────┴─► the chunk's channel ─► emitter ─► pipeline
//! ```
//!
//! Invariants:
//! - **Order.** A reader has at most one batch being encoded, and sends it before it hands over
//!   the next one, so a chunk's rows reach its channel in COPY order.
//! - **Markers.** The emitter decides a row's `snapshot` marker only when it sees the next row.
//!   Only the first and the last row of a chunk can get a marker other than `true` (`first`,
//!   `first_in_data_collection`, `last_in_data_collection`, `last`), so those two are never
//!   encoded here: they stay [`ReadRow::Event`] and the pipeline converts them with their
//!   marker. Every encoded row has the marker `true`, which the emitter checks.
//! - **Same bytes.** The encoder writes what the pipeline's converter would: the same
//!   configuration, headers and `runId`; `ts_ms` is the time of conversion in both.
//! - **Failures.** A row the encoder cannot convert is left as an event: the pipeline converts
//!   it again and reports the error as it does for any event.
//! - **Memory.** An encoded row's values are dropped on the blocking thread (the pipeline needs
//!   only its table, position and records); one more batch per reader is in flight.

use std::sync::Arc;

use pgseam_model::{ChangeEvent, KafkaRecord, Position, TableSchema, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Result, SourceError};

/// Converts snapshot rows to records inside a reader (see the module docs).
pub trait RowEncoder: Send {
    /// Appends `event`'s records to `out` (which holds the records of the rows converted
    /// before it: never touch those) and returns true, or returns false to leave the event to
    /// the pipeline (a conversion error, or a table it cannot do here); what it appended
    /// before returning false is taken back by the caller.
    fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool;
}

/// Makes one [`RowEncoder`] per snapshot reader.
pub type RowEncoderFactory = Arc<dyn Fn() -> Box<dyn RowEncoder> + Send + Sync>;

/// How the initial snapshot's readers convert rows (`SnapshotSettings::reader_encoding`).
#[derive(Clone)]
pub struct ReaderEncoding {
    /// Makes each reader's encoder.
    pub make: RowEncoderFactory,
    /// Rows of [`EncodedRows`] queued towards the pipeline, one permit per row: the emitter
    /// takes a run's permits before sending it and the run gives them back when the pipeline
    /// drops it. With `max.queue.size` permits, the source's queue holds at most that many
    /// converted rows besides its `max.queue.size` messages.
    queued_rows: Arc<Semaphore>,
    /// The permits `queued_rows` started with: a run of more rows takes them all.
    queue_capacity: u32,
}

impl ReaderEncoding {
    /// `make`, with a queue of at most `max_queued_rows` converted rows.
    pub fn new(make: RowEncoderFactory, max_queued_rows: usize) -> Self {
        let queue_capacity = max_queued_rows.clamp(1, Semaphore::MAX_PERMITS.min(1 << 30)) as u32;
        ReaderEncoding {
            make,
            queued_rows: Arc::new(Semaphore::new(queue_capacity as usize)),
            queue_capacity,
        }
    }

    /// Converted rows queued now (sent by the emitter, not yet dropped by the pipeline).
    pub fn queued_rows(&self) -> usize {
        (self.queue_capacity as usize).saturating_sub(self.queued_rows.available_permits())
    }

    /// Waits until `rows` more converted rows may be queued (all of the queue for a run
    /// larger than it); the permit gives them back when dropped.
    pub(crate) async fn reserve(&self, rows: u64) -> Result<OwnedSemaphorePermit> {
        let wanted = rows.clamp(1, u64::from(self.queue_capacity)) as u32;
        Arc::clone(&self.queued_rows)
            .acquire_many_owned(wanted)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }
}

/// Consecutive rows of one chunk converted by their reader: their records, in order. Their
/// markers are all `true` and their position the snapshot's (see the module docs).
#[derive(Debug)]
pub struct EncodedRows {
    pub table: Arc<TableSchema>,
    /// `Position::Snapshot` at the consistent point, `last: false`.
    pub position: Position,
    /// Every row's records, in row order (one each, unless a transform drops or adds some).
    pub records: Vec<KafkaRecord>,
    /// The rows.
    pub rows: u64,
    /// The size of the rows' values, dropped after conversion (for the queue-size metric).
    pub row_bytes: u64,
    /// The run's share of [`ReaderEncoding::queued_rows`], given back when it is dropped.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// A row, or a run of converted rows, as a reader sends them to the emitter.
#[derive(Debug)]
pub(crate) enum ReadRow {
    /// Decoded only: the pipeline converts it.
    Event(ChangeEvent),
    /// Decoded and converted.
    Encoded(EncodedRows),
}

impl ReadRow {
    /// The snapshot rows it holds.
    pub(crate) fn rows(&self) -> u64 {
        match self {
            ReadRow::Event(_) => 1,
            ReadRow::Encoded(run) => run.rows,
        }
    }
}

/// Converts a batch of one chunk's rows: every row but the chunk's first (when `has_first`,
/// the batch's first row is the chunk's first) and the chunk's last (when `has_last`);
/// consecutive converted rows form one [`EncodedRows`].
pub(crate) fn encode_batch(
    encoder: &mut dyn RowEncoder,
    events: Vec<ChangeEvent>,
    has_first: bool,
    has_last: bool,
) -> Vec<ReadRow> {
    let count = events.len();
    let mut out = Vec::new();
    let mut run: Option<EncodedRows> = None;
    for (index, mut event) in events.into_iter().enumerate() {
        let edge = (has_first && index == 0) || (has_last && index + 1 == count);
        if !edge {
            let run = run.get_or_insert_with(|| EncodedRows {
                table: Arc::clone(&event.table),
                position: event.position.clone(),
                // Sized for the rest of the batch.
                records: Vec::with_capacity(count - index),
                rows: 0,
                row_bytes: 0,
                permit: None,
            });
            let before = run.records.len();
            if encoder.encode(&event, &mut run.records) {
                let values = event.after.take().unwrap_or_default();
                run.rows += 1;
                run.row_bytes += values.iter().map(Value::footprint).sum::<usize>() as u64;
                continue;
            }
            run.records.truncate(before);
        }
        // An edge or a refused row ends the run (a refused first row leaves it empty).
        out.extend(run.take().filter(|r| r.rows > 0).map(ReadRow::Encoded));
        out.push(ReadRow::Event(event));
    }
    out.extend(run.filter(|r| r.rows > 0).map(ReadRow::Encoded));
    out
}

/// A reader's encoding stage: a thread of its own, with its [`RowEncoder`], converting one
/// batch at a time. A thread rather than the runtime's blocking pool: a fixed thread keeps its
/// allocator's caches (the pool hands jobs to whichever of its threads is idle, and each one
/// used keeps memory of its own). Dropping the stage closes the job channel; the thread ends
/// after the batch it may be converting (never waited for: a dropped reader does not block).
pub(crate) struct Encoding {
    jobs: std::sync::mpsc::SyncSender<Job>,
    done: tokio::sync::mpsc::Receiver<(Vec<ReadRow>, u64)>,
    /// A batch was handed over and its result not taken yet.
    in_flight: bool,
}

struct Job {
    events: Vec<ChangeEvent>,
    bytes: u64,
    has_first: bool,
    has_last: bool,
}

impl Encoding {
    /// Starts the thread of reader `reader`.
    pub(crate) fn start(reader: usize, mut encoder: Box<dyn RowEncoder>) -> Result<Self> {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(1);
        let (done_tx, done) = tokio::sync::mpsc::channel(1);
        std::thread::Builder::new()
            .name(format!("pgseam-encode-{reader}"))
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let rows =
                        encode_batch(encoder.as_mut(), job.events, job.has_first, job.has_last);
                    if done_tx.blocking_send((rows, job.bytes)).is_err() {
                        break;
                    }
                }
            })
            .map_err(SourceError::Io)?;
        Ok(Encoding {
            jobs,
            done,
            in_flight: false,
        })
    }

    /// Starts encoding `events` (one chunk's rows in order, `bytes` of COPY data; see
    /// [`encode_batch`] for the flags) and returns the batch handed over before, encoded: it
    /// must be sent before anything else of the chunk.
    pub(crate) async fn submit(
        &mut self,
        events: Vec<ChangeEvent>,
        bytes: u64,
        has_first: bool,
        has_last: bool,
    ) -> Result<Option<(Vec<ReadRow>, u64)>> {
        let previous = self.finish().await?;
        let job = Job {
            events,
            bytes,
            has_first,
            has_last,
        };
        // Nothing is in flight, so the channel (of one) has room: this does not block.
        self.jobs.send(job).map_err(|_| stopped())?;
        self.in_flight = true;
        Ok(previous)
    }

    /// The batch being encoded, once it is done.
    pub(crate) async fn finish(&mut self) -> Result<Option<(Vec<ReadRow>, u64)>> {
        if !self.in_flight {
            return Ok(None);
        }
        let done = self.done.recv().await.ok_or_else(stopped)?;
        self.in_flight = false;
        Ok(Some(done))
    }
}

fn stopped() -> SourceError {
    SourceError::Protocol("the snapshot row encoder thread stopped (a panic)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgseam_model::{ColumnSchema, Operation, SnapshotMarker, SourceInfo};

    /// Writes the event's first value as the record value; fails on a `Null`.
    struct FirstValue;

    impl RowEncoder for FirstValue {
        fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool {
            let Some(Value::Int64(id)) = event.after.as_ref().and_then(|row| row.first()) else {
                return false;
            };
            out.push(KafkaRecord {
                topic: Arc::from("t"),
                key: None,
                value: Some(id.to_string().into_bytes()),
                headers: Arc::from(Vec::new()),
            });
            true
        }
    }

    /// As `FirstValue`, but writes a record before it refuses a `Null`.
    struct WritesThenRefuses;

    impl RowEncoder for WritesThenRefuses {
        fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool {
            let refuse = matches!(
                event.after.as_ref().and_then(|row| row.first()),
                Some(Value::Null)
            );
            out.push(KafkaRecord {
                topic: Arc::from("t"),
                key: None,
                value: Some(b"partial".to_vec()),
                headers: Arc::from(Vec::new()),
            });
            if refuse {
                return false;
            }
            out.pop();
            FirstValue.encode(event, out)
        }
    }

    fn event(table: &Arc<TableSchema>, value: Value) -> ChangeEvent {
        ChangeEvent {
            table: Arc::clone(table),
            op: Operation::Read,
            before: None,
            after: Some(vec![value]),
            source: SourceInfo {
                ts_us: 0,
                snapshot: SnapshotMarker::True,
                db: Arc::from("db"),
                schema: Arc::from("public"),
                table: Arc::from("t"),
                tx_id: None,
                lsn: None,
                last_commit_lsn: None,
            },
            position: Position::Snapshot {
                consistent_point: pgseam_model::Lsn(1),
                last: false,
            },
            key_change: None,
        }
    }

    /// `E` for an event, `R<n>` for a run of n converted rows.
    fn kinds(rows: &[ReadRow]) -> String {
        rows.iter()
            .map(|r| match r {
                ReadRow::Event(_) => "E".to_owned(),
                ReadRow::Encoded(run) => {
                    assert_eq!(run.records.len() as u64, run.rows);
                    format!("R{}", run.rows)
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn a_chunks_edges_and_refused_rows_stay_events_the_rest_form_runs() {
        let table = Arc::new(TableSchema {
            relation_id: 1,
            schema: "public".into(),
            table: "t".into(),
            columns: vec![ColumnSchema {
                name: "id".into(),
                type_oid: 20,
                type_name: "int8".into(),
                base_type_oid: 20,
                type_modifier: -1,
                nullable: true,
                default_expr: None,
                enum_values: None,
                dimensions: 0,
            }],
            key_columns: vec![],
        });
        let batch = |values: &[Option<i64>]| {
            values
                .iter()
                .map(|v| event(&table, v.map_or(Value::Null, Value::Int64)))
                .collect::<Vec<_>>()
        };
        let rows = [Some(1), Some(2), Some(3), None, Some(5), Some(6)];
        let both = encode_batch(&mut FirstValue, batch(&rows), true, true);
        assert_eq!(kinds(&both), "E,R2,E,R1,E");
        let middle = encode_batch(&mut FirstValue, batch(&rows), false, false);
        assert_eq!(kinds(&middle), "R3,E,R2");
        let run = first_run_values(&middle, &["1", "2", "3"]);
        assert!(run.row_bytes > 0);
        assert_eq!(run.position, middle_position());
        let single = encode_batch(&mut FirstValue, batch(&[Some(7)]), false, true);
        assert_eq!(kinds(&single), "E");
        // What an encoder writes before refusing is taken back; the run's records stay.
        let partial = encode_batch(&mut WritesThenRefuses, batch(&rows), false, false);
        assert_eq!(kinds(&partial), "R3,E,R2");
        first_run_values(&partial, &["1", "2", "3"]);
    }

    /// The first entry is a run whose records' values are `expected`.
    fn first_run_values<'a>(rows: &'a [ReadRow], expected: &[&str]) -> &'a EncodedRows {
        let ReadRow::Encoded(run) = &rows[0] else {
            panic!("not a run: {rows:?}")
        };
        let values: Vec<_> = run.records.iter().map(|r| r.value.clone()).collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|v| Some(v.as_bytes().to_vec()))
            .collect();
        assert_eq!(values, expected);
        run
    }

    fn middle_position() -> Position {
        Position::Snapshot {
            consistent_point: pgseam_model::Lsn(1),
            last: false,
        }
    }
}
