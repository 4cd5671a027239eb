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

use pgseam_model::{ChangeEvent, KafkaRecord, Value};

use crate::error::{Result, SourceError};

/// Converts snapshot rows to records inside a reader (see the module docs).
pub trait RowEncoder: Send {
    /// Writes `event`'s records to `out` (empty on entry) and returns true, or returns false to
    /// leave the event to the pipeline (a conversion error, or a table it cannot do here).
    fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool;
}

/// Makes one [`RowEncoder`] per snapshot reader.
pub type RowEncoderFactory = Arc<dyn Fn() -> Box<dyn RowEncoder> + Send + Sync>;

/// A snapshot row converted by its reader: the event — its row values dropped — and the
/// records the pipeline sends for it.
#[derive(Debug)]
pub struct EncodedEvent {
    /// Table, operation, source block and position as read; `before` and `after` are `None`.
    pub event: ChangeEvent,
    pub records: Vec<KafkaRecord>,
    /// The size of the row values that were dropped (for the queue-size metric).
    pub row_bytes: u64,
}

/// A row as a reader sends it to the emitter.
#[derive(Debug)]
pub(crate) enum ReadRow {
    /// Decoded only: the pipeline converts it.
    Event(ChangeEvent),
    /// Decoded and converted.
    Encoded(EncodedEvent),
}

/// Converts a batch of one chunk's rows: every row but the chunk's first (when `has_first`,
/// the batch's first row is the chunk's first) and the chunk's last (when `has_last`).
pub(crate) fn encode_batch(
    encoder: &mut dyn RowEncoder,
    events: Vec<ChangeEvent>,
    has_first: bool,
    has_last: bool,
) -> Vec<ReadRow> {
    let count = events.len();
    let mut rows = Vec::with_capacity(count);
    for (index, mut event) in events.into_iter().enumerate() {
        let edge = (has_first && index == 0) || (has_last && index + 1 == count);
        if edge {
            rows.push(ReadRow::Event(event));
            continue;
        }
        let mut records = Vec::with_capacity(1);
        if encoder.encode(&event, &mut records) {
            let row_bytes = event
                .after
                .take()
                .map_or(0, |row| row.iter().map(Value::footprint).sum::<usize>())
                as u64;
            event.before = None;
            rows.push(ReadRow::Encoded(EncodedEvent {
                event,
                records,
                row_bytes,
            }));
        } else {
            rows.push(ReadRow::Event(event));
        }
    }
    rows
}

/// A reader's encoding stage: its [`RowEncoder`] and the batch it is encoding on a blocking
/// thread, if any.
pub(crate) struct Encoding {
    /// `None` while the encoder is on the blocking thread with a batch.
    encoder: Option<Box<dyn RowEncoder>>,
    in_flight: Option<InFlight>,
}

type InFlight = tokio::task::JoinHandle<(Box<dyn RowEncoder>, Vec<ReadRow>, u64)>;

impl Encoding {
    pub(crate) fn new(encoder: Box<dyn RowEncoder>) -> Self {
        Encoding {
            encoder: Some(encoder),
            in_flight: None,
        }
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
        let mut encoder = self.encoder.take().ok_or_else(lost)?;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let rows = encode_batch(encoder.as_mut(), events, has_first, has_last);
            (encoder, rows, bytes)
        }));
        Ok(previous)
    }

    /// The batch being encoded, once it is done.
    pub(crate) async fn finish(&mut self) -> Result<Option<(Vec<ReadRow>, u64)>> {
        let Some(job) = self.in_flight.take() else {
            return Ok(None);
        };
        let (encoder, rows, bytes) = job
            .await
            .map_err(|err| SourceError::Protocol(format!("snapshot row encoder failed: {err}")))?;
        self.encoder = Some(encoder);
        Ok(Some((rows, bytes)))
    }
}

fn lost() -> SourceError {
    SourceError::Protocol("snapshot row encoder failed before".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgseam_model::{
        ColumnSchema, Operation, Position, SnapshotMarker, SourceInfo, TableSchema,
    };

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

    fn kinds(rows: &[ReadRow]) -> String {
        rows.iter()
            .map(|r| match r {
                ReadRow::Event(_) => 'E',
                ReadRow::Encoded(_) => 'R',
            })
            .collect()
    }

    #[test]
    fn a_chunks_edges_and_failed_rows_stay_events() {
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
        let rows = [Some(1), Some(2), None, Some(4), Some(5)];
        let both = encode_batch(&mut FirstValue, batch(&rows), true, true);
        assert_eq!(kinds(&both), "ERERE");
        let middle = encode_batch(&mut FirstValue, batch(&rows), false, false);
        assert_eq!(kinds(&middle), "RRERR");
        let ReadRow::Encoded(encoded) = &middle[0] else {
            unreachable!()
        };
        assert!(encoded.event.after.is_none(), "values are dropped");
        assert_eq!(encoded.records[0].value.as_deref(), Some(&b"1"[..]));
        assert!(encoded.row_bytes > 0);
        let single = encode_batch(&mut FirstValue, batch(&[Some(7)]), false, true);
        assert_eq!(kinds(&single), "E");
    }
}
