//! The initial snapshot: every captured row, read under the slot's exported snapshot.
//!
//! ```text
//!  replication conn R: CREATE_REPLICATION_SLOT … (SNAPSHOT 'export') → (C, S)   … stays idle …
//!  reader conn:        BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
//!                      SET TRANSACTION SNAPSHOT 'S';
//!                      per table, in name order:
//!                        LOCK TABLE t IN ACCESS SHARE MODE;
//!                        COPY (SELECT cols FROM ONLY t) TO STDOUT      → op "r" events
//!                      COMMIT
//!  R:                  START_REPLICATION … C                            → the stream
//! ```
//!
//! The reader sees exactly the transactions committed before C, and the stream from C holds
//! every later one, so nothing is read twice or missed. The ACCESS SHARE lock, held from a
//! table's read to the end of the snapshot, keeps VACUUM FULL, CLUSTER, TRUNCATE and rewriting
//! ALTERs (which move rows with no logical event) out until the snapshot is done.
//!
//! Rows are copied in text form with the same session parameters as the replication
//! connection, and decoded by the same decoder as pgoutput's text tuples, so a row encodes the
//! same in the snapshot and in the stream.
//!
//! This version reads one table after the other on one connection. Chunking, parallel readers
//! and resume are the snapshot engine's own work (see the snapshot issue).

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use pgseam_model::{
    ChangeEvent, Lsn, Operation, Position, Row, SnapshotMarker, SourceInfo, TableSchema,
};
use tokio_postgres::Client;

use tokio::sync::mpsc;

use crate::catalog::{load_table_schema, quote_identifier, quote_literal, TableIdentity};
use crate::connection::{connect_query_session, ConnectParams};
use crate::error::{Result, SourceError};
use crate::slot::CreatedSlot;
use crate::source::SourceMessage;

/// How the snapshot is read (Debezium's `snapshot.*` settings that this engine honours).
#[derive(Clone, Debug)]
pub struct SnapshotSettings {
    /// `snapshot.max.threads`: reader connections. This version reads on one.
    pub max_threads: usize,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings { max_threads: 1 }
    }
}

/// Where snapshot rows go; the source turns them into messages with backpressure.
pub(crate) trait SnapshotSink {
    async fn emit(&mut self, event: ChangeEvent) -> Result<()>;
}

struct ChannelSink<'a>(&'a mpsc::Sender<SourceMessage>);

impl SnapshotSink for ChannelSink<'_> {
    async fn emit(&mut self, event: ChangeEvent) -> Result<()> {
        self.0
            .send(SourceMessage::Event(event))
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }
}

/// Reads every captured table under the slot's exported snapshot and sends the rows as
/// `op = "r"` events. Returns the number of rows.
pub(crate) async fn run(
    params: &ConnectParams,
    _settings: &SnapshotSettings,
    captured: &[TableIdentity],
    created: &CreatedSlot,
    events: &mpsc::Sender<SourceMessage>,
) -> Result<u64> {
    let reader = connect_query_session(params).await?;
    reader
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(&created.snapshot_name)
        ))
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot import the slot's snapshot".into(),
            error,
        })?;
    let mut schemas: Vec<Arc<TableSchema>> = Vec::with_capacity(captured.len());
    for table in captured {
        schemas.push(load_table_schema(&reader, table.oid).await?);
    }
    let context = SnapshotContext {
        database: params.dbname.clone(),
        consistent_point: created.consistent_point,
        started_at_us: now_us(),
    };
    tracing::info!(tables = schemas.len(), snapshot = %created.snapshot_name, "snapshot started");
    let rows = read_tables(&reader, &schemas, &context, &mut ChannelSink(events)).await?;
    reader
        .batch_execute("COMMIT")
        .await
        .map_err(|error| SourceError::Query {
            context: "snapshot commit failed".into(),
            error,
        })?;
    tracing::info!(rows, "snapshot completed");
    Ok(rows)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Facts every snapshot row's `source` block carries.
pub(crate) struct SnapshotContext {
    pub(crate) database: String,
    pub(crate) consistent_point: Lsn,
    pub(crate) started_at_us: i64,
}

/// Reads all `tables` (already in order) inside the snapshot transaction open on `client`.
pub(crate) async fn read_tables(
    client: &Client,
    tables: &[Arc<TableSchema>],
    context: &SnapshotContext,
    sink: &mut impl SnapshotSink,
) -> Result<u64> {
    let tx_id: Option<i64> = client
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
    let mut pending: Option<(ChangeEvent, bool)> = None; // (event, first in its table)
    let mut emitted = 0u64;
    let mut first_overall = true;
    for table in tables {
        let mut first_in_table = true;
        let qualified = format!(
            "{}.{}",
            quote_identifier(&table.schema),
            quote_identifier(&table.table)
        );
        client
            .batch_execute(&format!("LOCK TABLE ONLY {qualified} IN ACCESS SHARE MODE"))
            .await
            .map_err(|error| SourceError::Query {
                context: format!("cannot lock {qualified}"),
                error,
            })?;
        let columns = table
            .columns
            .iter()
            .map(|c| quote_identifier(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let copy = format!("COPY (SELECT {columns} FROM ONLY {qualified}) TO STDOUT");
        let stream = client
            .copy_out(copy.as_str())
            .await
            .map_err(|error| SourceError::Query {
                context: format!("cannot read {qualified}"),
                error,
            })?;
        futures_util::pin_mut!(stream);
        let mut buffer = BytesMut::new();
        let mut rows_in_table = 0u64;
        loop {
            let chunk = stream.next().await;
            let end = chunk.is_none();
            if let Some(chunk) = chunk {
                let chunk = chunk.map_err(|error| SourceError::Query {
                    context: format!("reading {qualified} failed"),
                    error,
                })?;
                buffer.extend_from_slice(&chunk);
            }
            while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                let line = buffer.split_to(newline);
                buffer.advance(1);
                let row = decode_copy_row(table, &line)?;
                let event = snapshot_event(table, row, context, tx_id);
                if let Some((previous, previous_first)) = pending.take() {
                    let last_in_table = first_in_table; // the previous row ended its table
                    sink.emit(with_marker(
                        previous,
                        first_overall,
                        previous_first,
                        last_in_table,
                        false,
                    ))
                    .await?;
                    emitted += 1;
                    first_overall = false;
                }
                pending = Some((event, first_in_table));
                first_in_table = false;
                rows_in_table += 1;
            }
            if end {
                break;
            }
        }
        if !buffer.is_empty() {
            return Err(SourceError::Protocol(format!(
                "COPY of {qualified} ended inside a row"
            )));
        }
        tracing::info!(table = %table.qualified_name(), rows = rows_in_table, "snapshot of table read");
    }
    if let Some((last, last_first)) = pending.take() {
        sink.emit(with_marker(last, first_overall, last_first, true, true))
            .await?;
        emitted += 1;
    }
    Ok(emitted)
}

/// Debezium's markers: `first` on the first row, `last` on the very last, then
/// `last_in_data_collection` / `first_in_data_collection` at table edges, `true` elsewhere.
/// A table of one row gets `last_in_data_collection`.
fn with_marker(
    mut event: ChangeEvent,
    first_overall: bool,
    first_in_table: bool,
    last_in_table: bool,
    last_overall: bool,
) -> ChangeEvent {
    event.source.snapshot = if last_overall {
        SnapshotMarker::Last
    } else if first_overall {
        SnapshotMarker::First
    } else if last_in_table {
        SnapshotMarker::LastInDataCollection
    } else if first_in_table {
        SnapshotMarker::FirstInDataCollection
    } else {
        SnapshotMarker::True
    };
    if let Position::Snapshot { last, .. } = &mut event.position {
        *last = last_overall;
    }
    event
}

fn snapshot_event(
    table: &Arc<TableSchema>,
    row: Row,
    context: &SnapshotContext,
    tx_id: Option<i64>,
) -> ChangeEvent {
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
            tx_id,
            lsn: Some(context.consistent_point),
            last_commit_lsn: None,
        },
        position: Position::Snapshot {
            consistent_point: context.consistent_point,
            last: false,
        },
    }
}

fn decode_copy_row(table: &TableSchema, line: &[u8]) -> Result<Row> {
    let fields = pgseam_pgvalue::split_copy_text_row(line).map_err(|at| SourceError::Value {
        table: table.qualified_name(),
        column: "?".into(),
        message: format!("malformed COPY text row at byte {at}"),
    })?;
    if fields.len() != table.columns.len() {
        return Err(SourceError::Protocol(format!(
            "COPY of {} returned {} columns, expected {}",
            table.qualified_name(),
            fields.len(),
            table.columns.len()
        )));
    }
    table
        .columns
        .iter()
        .zip(fields)
        .map(|(column, field)| match field {
            None => Ok(pgseam_model::Value::Null),
            Some(text) => {
                pgseam_pgvalue::decode_text(column, &text).map_err(|err| SourceError::Value {
                    table: table.qualified_name(),
                    column: column.name.clone(),
                    message: err.to_string(),
                })
            }
        })
        .collect()
}
