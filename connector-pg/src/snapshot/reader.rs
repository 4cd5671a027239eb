//! A snapshot reader: one connection in the exported snapshot, taking chunks from the shared
//! queue (in emission order) and streaming each chunk's rows, decoded, into its channel.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use pgseam_model::{
    ChangeEvent, Operation, Position, Row, SnapshotMarker, SourceInfo, TableSchema, Value,
};
use pgseam_pgvalue::{BinaryCopyReader, BinaryCopyRow, BinaryKind};
use tokio::sync::mpsc;

use super::encode::{Encoding, ReadRow, RowEncoderFactory};
use super::plan::{Chunk, ColumnRead, TablePlan};
use super::{
    lock_table, open_snapshot_session, ChunkMessage, SnapshotContext, BATCH_MAX_BYTES,
    BATCH_MAX_ROWS,
};
use crate::connection::ConnectParams;
use crate::error::{Result, SourceError};

/// How long a helper reader waits for its table locks.
pub(crate) const READER_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn is_lock_timeout(err: &SourceError) -> bool {
    matches!(err, SourceError::Query { error, .. }
        if error.as_db_error().is_some_and(|db| db.code().code() == "55P03"))
}

pub(crate) type WorkQueue = Mutex<VecDeque<(Chunk, mpsc::Sender<ChunkMessage>)>>;

/// Where a reader's session comes from.
pub(crate) enum Session {
    /// The coordinator's session, which already holds every table's lock.
    Coordinator(tokio_postgres::Client),
    /// A new session: it imports the snapshot and locks every table before taking work.
    Open {
        params: ConnectParams,
        snapshot_name: String,
    },
}

/// Reads chunks until the queue is empty; the transaction ends with the reader.
///
/// Why a helper reader locks every table up front, with a timeout, before taking any chunk: a
/// lock request waits behind any *queued* conflicting request. Once a VACUUM FULL waits for the
/// coordinator's ACCESS SHARE lock, a reader's first access to that table would wait behind the
/// VACUUM FULL, which waits for the coordinator, which waits for the reader's chunk — a cycle
/// PostgreSQL cannot see, since the coordinator is idle in its transaction. A lock the session
/// already holds is re-granted at once, so a reader that holds all its locks never waits. A
/// reader that cannot get them within [`READER_LOCK_TIMEOUT`] steps aside without taking work;
/// the coordinator's session (reader 0), locked from the start, always makes progress.
pub(crate) async fn run(
    id: usize,
    session: Session,
    tables: Arc<Vec<TablePlan>>,
    queue: Arc<WorkQueue>,
    context: Arc<SnapshotContext>,
    row_encoder: Option<RowEncoderFactory>,
) -> Result<()> {
    let mut encoding = row_encoder
        .map(|make| Encoding::start(id, make()))
        .transpose()?;
    let client = match session {
        Session::Coordinator(client) => client,
        Session::Open {
            params,
            snapshot_name,
        } => {
            let client = open_snapshot_session(&params, &snapshot_name).await?;
            client
                .batch_execute(&format!(
                    "SET lock_timeout = {}",
                    READER_LOCK_TIMEOUT.as_millis()
                ))
                .await
                .map_err(|error| SourceError::Query {
                    context: "cannot set lock_timeout".into(),
                    error,
                })?;
            for table in tables.iter() {
                if let Err(err) = lock_table(&client, &table.relation).await {
                    if is_lock_timeout(&err) {
                        tracing::warn!(reader = id, table = %table.schema.qualified_name(), "snapshot reader could not lock the table in time (a conflicting lock is queued); this reader steps aside");
                        return Ok(());
                    }
                    return Err(err);
                }
            }
            client
                .batch_execute("SET lock_timeout = 0")
                .await
                .map_err(|error| SourceError::Query {
                    context: "cannot reset lock_timeout".into(),
                    error,
                })?;
            client
        }
    };
    let mut first = true;
    loop {
        let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
        let Some((chunk, sender)) = next else {
            break;
        };
        if !first {
            // `snapshot.throttle.chunk.pause.ms`; see `throttle` for why a long pause is safe.
            context.throttle.between_chunks().await;
        }
        first = false;
        let table = &tables[chunk.table];
        read_chunk_with(&client, table, &chunk, &context, &sender, encoding.as_mut()).await?;
        tracing::debug!(reader = id, table = %table.schema.qualified_name(), chunk = chunk.index, "snapshot chunk read");
    }
    // Every chunk is taken; those still being read are protected by their readers' own locks.
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|error| SourceError::Query {
            context: "snapshot reader commit failed".into(),
            error,
        })
}

pub(crate) async fn read_chunk(
    client: &tokio_postgres::Client,
    table: &TablePlan,
    chunk: &Chunk,
    context: &SnapshotContext,
    sender: &mpsc::Sender<ChunkMessage>,
) -> Result<()> {
    read_chunk_with(client, table, chunk, context, sender, None).await
}

/// Reads one chunk into its channel; with `encoding`, converting the rows (see [`encode`]):
/// the newest row of a full batch is carried into the next one, since it may be the chunk's
/// last, which must stay unconverted.
async fn read_chunk_with(
    client: &tokio_postgres::Client,
    table: &TablePlan,
    chunk: &Chunk,
    context: &SnapshotContext,
    sender: &mpsc::Sender<ChunkMessage>,
    mut encoding: Option<&mut Encoding>,
) -> Result<()> {
    let name = table.schema.qualified_name();
    let stream = client
        .copy_out(chunk.copy.as_str())
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot read chunk {} of {name}", chunk.index),
            error,
        })?;
    futures_util::pin_mut!(stream);
    let mut reader = BinaryCopyReader::new(table.columns.len());
    let mut buffer = BytesMut::new();
    let mut fields = Vec::with_capacity(table.columns.len());
    let decoders = column_decoders(table);
    let mut batch = Vec::with_capacity(64);
    let mut batch_bytes = 0usize;
    // Whether the next batch handed to the encoder starts with the chunk's first row.
    let mut at_chunk_start = true;
    let send = |message: ChunkMessage, rows: usize, bytes: u64| async move {
        // `snapshot.throttle.*`: wait for this batch's share of the budget before sending it.
        context.throttle.before_batch(rows as u64, bytes).await;
        sender
            .send(message)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    };
    let send_encoded = |done: Option<(Vec<ReadRow>, u64)>| async move {
        match done {
            Some((rows, bytes)) => {
                // Rows, not messages: a run is many rows (the throttle counts rows).
                let count = rows.iter().map(ReadRow::rows).sum::<u64>() as usize;
                send(ChunkMessage::Read { rows, bytes }, count, bytes).await
            }
            None => Ok(()),
        }
    };
    loop {
        match reader
            .next_row(&buffer, &mut fields)
            .map_err(|e| SourceError::Protocol(format!("{e} (table {name})")))?
        {
            BinaryCopyRow::Row { consumed } => {
                let row = decode_row(&table.schema, &decoders, &buffer, &fields)?;
                batch.push(snapshot_event(&table.schema, row, context));
                batch_bytes += consumed;
                buffer.advance(consumed);
                if batch.len() >= BATCH_MAX_ROWS || batch_bytes >= BATCH_MAX_BYTES {
                    match encoding.as_deref_mut() {
                        // At least two rows: one is carried, one goes (a chunk's first row
                        // must be in the batch flagged as the chunk's start).
                        Some(encoding) if batch.len() >= 2 => {
                            let carried = batch.pop();
                            let events = take_batch(&mut batch);
                            let done = encoding
                                .submit(events, batch_bytes as u64, at_chunk_start, false)
                                .await?;
                            send_encoded(done).await?;
                            at_chunk_start = false;
                            batch.extend(carried);
                            batch_bytes = 0;
                        }
                        Some(_) => {}
                        None => {
                            let events = take_batch(&mut batch);
                            let rows = events.len();
                            let bytes = batch_bytes as u64;
                            send(ChunkMessage::Rows { events, bytes }, rows, bytes).await?;
                            batch_bytes = 0;
                        }
                    }
                }
            }
            BinaryCopyRow::End { consumed } => {
                buffer.advance(consumed);
                // The stream must end right after the trailer.
                while let Some(data) = stream.next().await {
                    let data = data.map_err(|error| SourceError::Query {
                        context: format!("reading {name} failed"),
                        error,
                    })?;
                    if !data.is_empty() {
                        return Err(SourceError::Protocol(format!(
                            "COPY of {name} sent data after its trailer"
                        )));
                    }
                }
                break;
            }
            BinaryCopyRow::NeedMore => match stream.next().await {
                Some(data) => {
                    let data = data.map_err(|error| SourceError::Query {
                        context: format!("reading {name} failed"),
                        error,
                    })?;
                    buffer.extend_from_slice(&data);
                }
                None => {
                    return Err(SourceError::Protocol(format!(
                        "COPY of {name} ended without its trailer"
                    )))
                }
            },
        }
    }
    match encoding {
        Some(encoding) => {
            if !batch.is_empty() {
                let done = encoding
                    .submit(batch, batch_bytes as u64, at_chunk_start, true)
                    .await?;
                send_encoded(done).await?;
            }
            send_encoded(encoding.finish().await?).await?;
        }
        None if !batch.is_empty() => {
            let rows = batch.len();
            let bytes = batch_bytes as u64;
            send(
                ChunkMessage::Rows {
                    events: batch,
                    bytes,
                },
                rows,
                bytes,
            )
            .await?;
        }
        None => {}
    }
    if let Some(update) = &chunk.checkpoint {
        sender
            .send(ChunkMessage::Delivered(update.clone()))
            .await
            .map_err(|_| SourceError::ConsumerGone)?;
    }
    sender
        .send(ChunkMessage::Done)
        .await
        .map_err(|_| SourceError::ConsumerGone)
}

/// Takes the full batch, leaving an empty one of its size: each batch is allocated at the size
/// of the one before (wide rows close a batch by bytes long before `BATCH_MAX_ROWS`), so it
/// rarely grows and never holds much unused room.
fn take_batch(batch: &mut Vec<ChangeEvent>) -> Vec<ChangeEvent> {
    let next = Vec::with_capacity(batch.len() + 1);
    std::mem::replace(batch, next)
}

/// How each column of a chunk is decoded: its binary kind resolved once, or the text
/// decoder (see `plan`).
fn column_decoders(table: &TablePlan) -> Vec<Option<BinaryKind>> {
    table
        .columns
        .iter()
        .zip(&table.schema.columns)
        .map(|(read, column)| match read {
            ColumnRead::Binary => Some(BinaryKind::of(&column.type_name)),
            ColumnRead::Text => None,
        })
        .collect()
}

fn decode_row(
    table: &TableSchema,
    decoders: &[Option<BinaryKind>],
    buffer: &[u8],
    fields: &[Option<std::ops::Range<usize>>],
) -> Result<Row> {
    // Sized once: collecting a `Result` iterator cannot know its length, and would grow the
    // row by doubling.
    let mut row = Vec::with_capacity(table.columns.len());
    for ((column, decoder), field) in table.columns.iter().zip(decoders).zip(fields) {
        let Some(range) = field else {
            row.push(Value::Null);
            continue;
        };
        let bytes = &buffer[range.clone()];
        let value = match decoder {
            Some(kind) => pgseam_pgvalue::decode_binary_as(column, *kind, bytes),
            None => pgseam_pgvalue::decode_text_bytes(column, bytes),
        }
        .map_err(|err| SourceError::Value {
            table: table.qualified_name(),
            column: column.name.clone(),
            message: err.to_string(),
        })?;
        row.push(value);
    }
    Ok(row)
}

fn snapshot_event(table: &Arc<TableSchema>, row: Row, context: &SnapshotContext) -> ChangeEvent {
    ChangeEvent {
        table: Arc::clone(table),
        op: Operation::Read,
        before: None,
        after: Some(row),
        source: SourceInfo {
            ts_us: context.started_at_us,
            snapshot: SnapshotMarker::True,
            db: context.database.clone(),
            schema: table.schema.clone(),
            table: table.table.clone(),
            tx_id: context.tx_id,
            lsn: Some(context.consistent_point),
            last_commit_lsn: None,
        },
        position: Position::Snapshot {
            consistent_point: context.consistent_point,
            last: false,
        },
        key_change: None,
    }
}
