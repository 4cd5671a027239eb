//! Blocking snapshots (`execute-snapshot` with `"type": "blocking"`), as Debezium's
//! `ChangeEventSourceCoordinator.doBlockingSnapshot` runs them: streaming pauses, the listed
//! tables are snapshotted like an initial snapshot, then streaming resumes where it stopped.
//!
//! The source acts on a blocking signal at the next transaction boundary of the stream (after
//! the signal's own transaction, see `source`). From there it reads no replication message
//! until the snapshot ends (status updates go on, so the server keeps the connection), on a
//! session of its own:
//! 1. **The commit-visibility race**: it waits until every transaction in progress
//!    (`pg_current_snapshot()`'s xip list) has left the ProcArray, as a resume window does, so
//!    every transaction whose commit the stream has passed is visible to the read;
//! 2. `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`: one snapshot for all the tables;
//! 3. each table whole, in the signal's order, by binary COPY (`additional-conditions` become
//!    the table's select, `SELECT * FROM ONLY <table> WHERE <filter>`, as Debezium turns them
//!    into a snapshot select override).
//!
//! Every change committed before the pause point is in the read. Changes committed after it
//! (before or during the read) may be in the read *and* are streamed after it, when streaming
//! resumes at the pause point: duplicates, never a loss; a key may show a newer state in the
//! snapshot and then replay its later changes, so per key the final state is the source's.
//!
//! Rows are `op = "r"` with the initial snapshot's markers (`first`, `first_in_data_collection`,
//! `true`, `last_in_data_collection`, `last`), as Debezium's blocking snapshot (a relational
//! snapshot) marks them, at the stream position where streaming paused, without `txId`. The
//! snapshot is not stored in the offset: a crash during it streams on from the pause point
//! without it (as Debezium's, "will not be automatically executed"); signal again.
//! Notifications are the initial snapshot's (`Initial Snapshot`: STARTED, IN_PROGRESS and
//! TABLE_SCAN_COMPLETED per table, COMPLETED), as Debezium's blocking snapshot sends them.

use std::collections::BTreeMap;
use std::sync::Arc;

use pgseam_model::Lsn;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::{self, ChunkStrategy};
use super::{reader, ChunkMessage, SnapshotContext, SnapshotSettings, CHUNK_CHANNEL_BATCHES};
use crate::catalog::{load_table_schema, quote_identifier, TableIdentity};
use crate::connection::{connect_query_session, ConnectParams};
use crate::error::{Result, SourceError};

/// A blocking snapshot to take: the signal's id and its tables (with their filters).
#[derive(Debug)]
pub(crate) struct BlockingRequest {
    pub(crate) id: String,
    pub(crate) tables: Vec<(TableIdentity, Option<String>)>,
}

/// Starts reading `request`'s tables (see the module docs); each table's rows arrive on the
/// returned channel, followed by [`ChunkMessage::Done`], in the request's order.
pub(crate) fn start(
    params: &ConnectParams,
    settings: &SnapshotSettings,
    request: &BlockingRequest,
    position: Lsn,
) -> (mpsc::Receiver<ChunkMessage>, JoinHandle<Result<()>>) {
    let params = params.clone();
    let mut settings = SnapshotSettings {
        chunk_strategy: ChunkStrategy::Whole,
        chunk_strategy_overrides: BTreeMap::new(),
        window_reason: Some("blocking snapshot"),
        include: None,
        ..settings.clone()
    };
    for (table, filter) in &request.tables {
        if let Some(filter) = filter {
            settings.select_overrides.insert(
                table.qualified_name(),
                format!(
                    "SELECT * FROM ONLY {}.{} WHERE {filter}",
                    quote_identifier(&table.schema),
                    quote_identifier(&table.table)
                ),
            );
        }
    }
    let oids: Vec<(u32, String)> = request
        .tables
        .iter()
        .map(|(t, _)| (t.oid, t.qualified_name()))
        .collect();
    let (tx, rx) = mpsc::channel(CHUNK_CHANNEL_BATCHES);
    let task = tokio::spawn(async move {
        let client = connect_query_session(&params).await?;
        let query = |context: &'static str| {
            move |error| SourceError::Query {
                context: context.into(),
                error,
            }
        };
        client
            .batch_execute(super::SESSION_TIMEOUTS)
            .await
            .map_err(query("cannot set up the blocking snapshot session"))?;
        let xids = super::resume::running_xids(&client).await?;
        super::resume::wait_until_ended(&client, &xids, "blocking snapshot").await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(query("cannot begin the blocking snapshot's transaction"))?;
        let mut schemas = Vec::with_capacity(oids.len());
        for (oid, _) in &oids {
            schemas.push(load_table_schema(&client, *oid).await?);
        }
        let planned = plan::plan(&client, &schemas, &settings).await?;
        let context = Arc::new(SnapshotContext {
            database: params.dbname.as_str().into(),
            consistent_point: position,
            started_at_us: super::now_us(),
            tx_id: None,
            throttle: Arc::new(super::throttle::Throttle::new(&settings.throttle)),
        });
        for chunk in &planned.chunks {
            let Some(table) = planned.tables.get(chunk.table) else {
                return Err(SourceError::Protocol(
                    "blocking snapshot: a chunk without its table".into(),
                ));
            };
            reader::read_chunk(&client, table, chunk, &context, &tx).await?;
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(query("cannot end the blocking snapshot's transaction"))?;
        Ok(())
    });
    (rx, task)
}
