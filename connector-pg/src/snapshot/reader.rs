//! A snapshot reader: one connection in the exported snapshot, taking chunks from the shared
//! queue (in emission order) and streaming each chunk's rows, decoded, into its channel.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use pgseam_model::{
    ChangeEvent, Operation, Position, Row, SnapshotMarker, SourceInfo, TableSchema, Value,
};
use pgseam_pgvalue::{BinaryCopyReader, BinaryCopyRow};
use tokio::sync::mpsc;

use super::plan::{Chunk, ColumnRead, TablePlan};
use super::{
    lock_table, open_snapshot_session, ChunkMessage, SnapshotContext, BATCH_MAX_BYTES,
    BATCH_MAX_ROWS,
};
use crate::connection::ConnectParams;
use crate::error::{Result, SourceError};

pub(crate) type WorkQueue = Mutex<VecDeque<(Chunk, mpsc::Sender<ChunkMessage>)>>;

/// Reads chunks until the queue is empty; the transaction ends with the connection.
pub(crate) async fn run(
    id: usize,
    params: ConnectParams,
    snapshot_name: String,
    tables: Arc<Vec<TablePlan>>,
    queue: Arc<WorkQueue>,
    context: Arc<SnapshotContext>,
) -> Result<()> {
    let client = open_snapshot_session(&params, &snapshot_name).await?;
    let mut locked = HashSet::new();
    loop {
        let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
        let Some((chunk, sender)) = next else {
            break;
        };
        let table = &tables[chunk.table];
        if locked.insert(chunk.table) {
            lock_table(&client, &table.qualified).await?;
        }
        read_chunk(&client, table, &chunk, &context, &sender).await?;
        tracing::debug!(reader = id, table = %table.schema.qualified_name(), chunk = chunk.index, "snapshot chunk read");
    }
    // Read-only: ending the transaction only releases the locks this session took; the
    // coordinator holds its own until every chunk is emitted.
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|error| SourceError::Query {
            context: "snapshot reader commit failed".into(),
            error,
        })
}

async fn read_chunk(
    client: &tokio_postgres::Client,
    table: &TablePlan,
    chunk: &Chunk,
    context: &SnapshotContext,
    sender: &mpsc::Sender<ChunkMessage>,
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
    let mut batch = Vec::new();
    let mut batch_bytes = 0usize;
    let send = |events, bytes| async move {
        sender
            .send(ChunkMessage::Rows {
                events,
                bytes: bytes as u64,
            })
            .await
            .map_err(|_| SourceError::ConsumerGone)
    };
    loop {
        match reader
            .next_row(&buffer, &mut fields)
            .map_err(|e| SourceError::Protocol(format!("{e} (table {name})")))?
        {
            BinaryCopyRow::Row { consumed } => {
                let row = decode_row(&table.schema, &table.columns, &buffer, &fields)?;
                batch.push(snapshot_event(&table.schema, row, context));
                batch_bytes += consumed;
                buffer.advance(consumed);
                if batch.len() >= BATCH_MAX_ROWS || batch_bytes >= BATCH_MAX_BYTES {
                    send(std::mem::take(&mut batch), batch_bytes).await?;
                    batch_bytes = 0;
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
    if !batch.is_empty() {
        send(batch, batch_bytes).await?;
    }
    sender
        .send(ChunkMessage::Done)
        .await
        .map_err(|_| SourceError::ConsumerGone)
}

fn decode_row(
    table: &TableSchema,
    reads: &[ColumnRead],
    buffer: &[u8],
    fields: &[Option<std::ops::Range<usize>>],
) -> Result<Row> {
    table
        .columns
        .iter()
        .zip(reads)
        .zip(fields)
        .map(|((column, read), field)| {
            let Some(range) = field else {
                return Ok(Value::Null);
            };
            let bytes = &buffer[range.clone()];
            match read {
                ColumnRead::Binary => pgseam_pgvalue::decode_binary(column, bytes),
                ColumnRead::Text => pgseam_pgvalue::decode_text_bytes(column, bytes),
            }
            .map_err(|err| SourceError::Value {
                table: table.qualified_name(),
                column: column.name.clone(),
                message: err.to_string(),
            })
        })
        .collect()
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
    }
}
