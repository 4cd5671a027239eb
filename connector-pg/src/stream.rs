//! Turning pgoutput messages into change events.
//!
//! pgoutput sends, per transaction:
//!
//! ```text
//! Begin(final_lsn, commit_ts, xid)
//!   Relation(id, columns…)        — before the first change of a table in this session, and
//!                                   again after its schema changed
//!   Insert / Update / Delete / Truncate (relation id, tuples)
//! Commit(commit_lsn, end_lsn, commit_ts)
//! ```
//!
//! The LSN of each change is the `wal_start` of the XLogData frame that carried it. A change's
//! columns are mapped to the catalog's [`TableSchema`] by name, so the order of the Relation
//! message does not matter. Each Relation message reloads the table's schema from the catalog
//! (the source does that), so the first event after an `ALTER TABLE` carries the new schema.
//!
//! `before`, per replica identity (as Debezium): DEFAULT — updates have none (pgoutput sends no
//! old tuple unless the key changed), deletes have the key columns and nulls; FULL — the whole
//! old row, whose values also fill the new row's unchanged TOAST columns; INDEX — the old index
//! columns and nulls, when pgoutput sends them; NOTHING — PostgreSQL rejects UPDATE and DELETE
//! on a published table. A primary-key change becomes a delete of the old key and a create of
//! the new one, as Debezium emits it; a primary-key consumer applies both correctly.
//!
//! **`skipped.operations`** drops events by the operation PostgreSQL performed: an UPDATE that
//! changes the primary key is skipped whole (delete and create) when `u` is skipped, as in
//! Debezium, whose filter sees the UPDATE before splitting it.
//!
//! **TRUNCATE**: one pgoutput Truncate message names every truncated relation; each captured
//! one becomes an event with op `t` and no rows, all sharing the message's LSN, in the order
//! of the message. They are part of their transaction, so the worker's checkpoint (per
//! transaction) covers all of them or none: a restart replays the whole transaction, never a
//! part of those events.
//!
//! **Logical decoding messages** (`pg_logical_emit_message`): a transactional message comes
//! inside its transaction, in WAL order with the changes; a non-transactional one comes at
//! once, outside any transaction, and gets Debezium's source block: no `txId`, the last
//! commit's time. Messages whose prefix starts with [`PGSEAM_MESSAGE_PREFIX`] are pgseam's own
//! (heartbeats, watermarks) and are never emitted; the rest pass the configured prefix filter
//! (`message.prefix.include.list` / `message.prefix.exclude.list`).

use std::collections::HashMap;
use std::sync::Arc;

use pgoutput::message::{LogicalReplicationMessage, OldTuple, TupleData, TupleValue};
use pgseam_model::{
    ChangeEvent, KeyChangeRow, LogicalMessage, Lsn, Operation, Position, Row, SnapshotMarker,
    SourceInfo, TableSchema, Value,
};

use crate::error::{Result, SourceError};

/// A relation as the stream knows it: the catalog schema and, per pgoutput column, the index
/// of that column in the schema.
pub(crate) struct StreamRelation {
    pub(crate) schema: Arc<TableSchema>,
    pub(crate) column_map: Vec<Option<usize>>,
    pub(crate) captured: bool,
}

/// The transaction being decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenTransaction {
    pub(crate) xid: u32,
    pub(crate) commit_lsn: Lsn,
    pub(crate) commit_ts_us: i64,
}

/// The prefix of pgseam's own logical decoding messages (`__pgseam.<slot>` for heartbeats and
/// watermarks). Every slot with `messages` on receives every message of its database, so
/// these are dropped here; Debezium connectors running beside pgseam should exclude them with
/// `message.prefix.exclude.list=__pgseam\..*`.
pub const PGSEAM_MESSAGE_PREFIX: &str = "__pgseam.";

/// Which logical decoding messages to emit, by prefix (`message.prefix.include.list` /
/// `message.prefix.exclude.list`).
pub type MessageFilter = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The Kafka key columns of a table (indices into its columns, in key order), when they are
/// not its primary key: Debezium's `message.key.columns`.
pub type KeyColumns = std::sync::Arc<dyn Fn(&TableSchema) -> Vec<usize> + Send + Sync>;

/// Which events the stream emits besides row changes (Debezium's `skipped.operations` and
/// message filters), and which columns make the key.
#[derive(Clone)]
pub struct EventSettings {
    /// Operations not emitted (`skipped.operations`; Debezium's default skips `t`).
    pub skipped_operations: Vec<Operation>,
    /// Messages to emit; `None` emits every message (outside pgseam's own prefix).
    pub message_filter: Option<MessageFilter>,
    /// The key columns (`message.key.columns`); `None`: the primary key. An UPDATE whose
    /// key columns change is emitted as delete + create (Debezium's key change), so this must
    /// agree with the converter's key.
    pub key_columns: Option<KeyColumns>,
    /// Counts the row changes decoded and not emitted (tables outside the filters,
    /// `skipped.operations`): Debezium's `NumberOfEventsFiltered`.
    pub filtered: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            skipped_operations: vec![Operation::Truncate],
            message_filter: None,
            key_columns: None,
            filtered: Default::default(),
        }
    }
}

impl std::fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings")
            .field("skipped_operations", &self.skipped_operations)
            .field("message_filter", &self.message_filter.is_some())
            .field("key_columns", &self.key_columns.is_some())
            .finish()
    }
}

/// Key columns per relation id, with the table version they were computed for.
type KeyColumnsCache = HashMap<u32, (Arc<TableSchema>, Arc<[usize]>)>;

/// Decoding state that lives across messages.
pub(crate) struct StreamDecoder {
    pub(crate) database: Arc<str>,
    pub(crate) relations: HashMap<u32, StreamRelation>,
    pub(crate) transaction: Option<OpenTransaction>,
    pub(crate) last_commit_lsn: Option<Lsn>,
    /// Commit time of the last transaction seen: a non-transactional message's `ts_ms`.
    pub(crate) last_commit_ts_us: Option<i64>,
    pub(crate) settings: EventSettings,
    /// `settings.key_columns` per relation, computed once per table version.
    key_columns: std::sync::Mutex<KeyColumnsCache>,
}

impl StreamDecoder {
    pub(crate) fn new(database: &str, settings: EventSettings) -> Self {
        StreamDecoder {
            database: database.into(),
            relations: HashMap::new(),
            transaction: None,
            last_commit_lsn: None,
            last_commit_ts_us: None,
            settings,
            key_columns: Default::default(),
        }
    }

    /// The key columns of `table`: its primary key, or `message.key.columns`'s choice (cached
    /// per table version).
    fn key_columns(&self, table: &Arc<TableSchema>) -> Arc<[usize]> {
        let Some(choose) = &self.settings.key_columns else {
            return Arc::from(table.key_columns.as_slice());
        };
        let mut cache = self
            .key_columns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.get(&table.relation_id) {
            Some((schema, keys)) if Arc::ptr_eq(schema, table) => Arc::clone(keys),
            _ => {
                let keys: Arc<[usize]> = Arc::from(choose(table));
                cache.insert(table.relation_id, (Arc::clone(table), Arc::clone(&keys)));
                keys
            }
        }
    }

    fn skips(&self, op: Operation) -> bool {
        self.settings.skipped_operations.contains(&op)
    }

    fn count_filtered(&self, events: u64) {
        (self.settings.filtered).fetch_add(events, std::sync::atomic::Ordering::Relaxed);
    }

    fn stream_event(
        &self,
        table: &Arc<TableSchema>,
        transaction: OpenTransaction,
        lsn: Lsn,
        op: Operation,
        before: Option<Row>,
        after: Option<Row>,
    ) -> ChangeEvent {
        ChangeEvent {
            table: Arc::clone(table),
            op,
            before,
            after,
            source: SourceInfo {
                ts_us: transaction.commit_ts_us,
                snapshot: SnapshotMarker::False,
                db: self.database.clone(),
                schema: table.schema.clone(),
                table: table.table.clone(),
                tx_id: Some(i64::from(transaction.xid)),
                lsn: Some(lsn),
                last_commit_lsn: self.last_commit_lsn,
            },
            position: Position::Stream {
                lsn,
                commit_lsn: transaction.commit_lsn,
                tx_id: i64::from(transaction.xid),
                commit_ts_us: transaction.commit_ts_us,
            },
            key_change: None,
        }
    }

    /// Builds the events of a Truncate message at `lsn`: one per captured relation, in the
    /// message's order, unless `skipped.operations` has `t`.
    pub(crate) fn truncate_events(
        &self,
        relation_ids: &[u32],
        lsn: Lsn,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<()> {
        if self.skips(Operation::Truncate) {
            tracing::debug!(?relation_ids, %lsn, "TRUNCATE skipped (skipped.operations has t)");
            self.count_filtered(relation_ids.len() as u64);
            return Ok(());
        }
        let transaction = self.transaction.ok_or_else(|| {
            SourceError::Protocol(format!("TRUNCATE at {lsn} outside a transaction"))
        })?;
        for relation_id in relation_ids {
            let relation = self.relations.get(relation_id).ok_or_else(|| {
                SourceError::Protocol(format!(
                    "TRUNCATE of relation {relation_id} before its Relation message"
                ))
            })?;
            if relation.captured {
                out.push(self.stream_event(
                    &relation.schema,
                    transaction,
                    lsn,
                    Operation::Truncate,
                    None,
                    None,
                ));
            }
        }
        Ok(())
    }

    /// Builds the record of a logical decoding message at `lsn`, unless it is pgseam's own
    /// or the prefix filter drops it.
    pub(crate) fn logical_message(
        &self,
        transactional: bool,
        prefix: &str,
        content: &[u8],
        lsn: Lsn,
    ) -> Result<Option<LogicalMessage>> {
        if prefix.starts_with(PGSEAM_MESSAGE_PREFIX) {
            return Ok(None);
        }
        if let Some(filter) = &self.settings.message_filter {
            if !filter(prefix) {
                return Ok(None);
            }
        }
        let (tx_id, ts_us, last_commit_lsn, commit_lsn) = if transactional {
            let transaction = self.transaction.ok_or_else(|| {
                SourceError::Protocol(format!(
                    "transactional message at {lsn} outside a transaction"
                ))
            })?;
            (
                Some(i64::from(transaction.xid)),
                transaction.commit_ts_us,
                self.last_commit_lsn,
                transaction.commit_lsn,
            )
        } else {
            // Debezium: no txId, the last commit's time, and the message's own LSN as the
            // sequence's commit LSN.
            let ts_us = self.last_commit_ts_us.unwrap_or_else(now_us);
            (None, ts_us, Some(lsn), lsn)
        };
        Ok(Some(LogicalMessage {
            transactional,
            prefix: prefix.to_owned(),
            content: content.to_vec(),
            source: SourceInfo {
                ts_us,
                snapshot: SnapshotMarker::False,
                db: self.database.clone(),
                schema: "".into(),
                table: "".into(),
                tx_id,
                lsn: Some(lsn),
                last_commit_lsn,
            },
            position: Position::Stream {
                lsn,
                commit_lsn,
                tx_id: tx_id.unwrap_or(0),
                commit_ts_us: ts_us,
            },
        }))
    }

    /// Builds the events of one row change (`Insert`, `Update`, `Delete`) at `lsn`.
    pub(crate) fn row_change_events(
        &self,
        message: &LogicalReplicationMessage,
        lsn: Lsn,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<()> {
        let (relation_id, old, new, is_delete) = match message {
            LogicalReplicationMessage::Insert {
                relation_id, new, ..
            } => (*relation_id, None, Some(new), false),
            LogicalReplicationMessage::Update {
                relation_id,
                old,
                new,
                ..
            } => (*relation_id, old.as_ref(), Some(new), false),
            LogicalReplicationMessage::Delete {
                relation_id, old, ..
            } => (*relation_id, Some(old), None, true),
            _ => return Ok(()),
        };
        let relation = self.relations.get(&relation_id).ok_or_else(|| {
            SourceError::Protocol(format!(
                "change for relation {relation_id} before its Relation message"
            ))
        })?;
        if !relation.captured {
            self.count_filtered(1);
            return Ok(());
        }
        let performed = match message {
            LogicalReplicationMessage::Insert { .. } => Operation::Create,
            LogicalReplicationMessage::Update { .. } => Operation::Update,
            _ => Operation::Delete,
        };
        if self.skips(performed) {
            self.count_filtered(1);
            return Ok(());
        }
        let transaction = self.transaction.ok_or_else(|| {
            SourceError::Protocol(format!("change at {lsn} outside a transaction"))
        })?;
        let old_row = match old {
            Some(OldTuple::Key(tuple)) | Some(OldTuple::Full(tuple)) => {
                Some(self.decode_tuple(relation, tuple)?)
            }
            None => None,
        };
        let old_is_full = matches!(old, Some(OldTuple::Full(_)));
        let mut new_row = match new {
            Some(tuple) => Some(self.decode_tuple(relation, tuple)?),
            None => None,
        };
        // Under REPLICA IDENTITY FULL the old tuple has the TOASTed values the new one omits.
        if let (Some(new_row), Some(old_row), true) =
            (new_row.as_mut(), old_row.as_ref(), old_is_full)
        {
            for (new_value, old_value) in new_row.iter_mut().zip(old_row) {
                if *new_value == Value::UnchangedToast && *old_value != Value::UnchangedToast {
                    *new_value = old_value.clone();
                }
            }
        }
        let event = |op, before, after| {
            self.stream_event(&relation.schema, transaction, lsn, op, before, after)
        };
        if is_delete {
            out.push(event(Operation::Delete, old_row, None));
            return Ok(());
        }
        match old_row {
            None if matches!(message, LogicalReplicationMessage::Insert { .. }) => {
                out.push(event(Operation::Create, None, new_row))
            }
            None => out.push(event(Operation::Update, None, new_row)),
            Some(old_row) => {
                let key_changed = new_row.as_ref().is_some_and(|new_row| {
                    let keys = self.key_columns(&relation.schema);
                    !keys.is_empty() && keys.iter().any(|&k| old_row[k] != new_row[k])
                });
                if key_changed {
                    // Debezium's headers name the other key: `__debezium.newkey` on the delete,
                    // `__debezium.oldkey` on the create.
                    let mut delete = event(Operation::Delete, Some(old_row.clone()), None);
                    delete.key_change = new_row.clone().map(KeyChangeRow::NewKey);
                    let mut create = event(Operation::Create, None, new_row);
                    create.key_change = Some(KeyChangeRow::OldKey(old_row));
                    out.push(delete);
                    out.push(create);
                } else {
                    // FULL: the whole old row. INDEX: pgoutput sends the old identity columns
                    // when they changed; Debezium's `before` is then that partial row (the
                    // other columns null), as for DEFAULT identity's delete.
                    out.push(event(Operation::Update, Some(old_row), new_row));
                }
            }
        }
        Ok(())
    }

    fn decode_tuple(&self, relation: &StreamRelation, tuple: &TupleData) -> Result<Row> {
        let schema = &relation.schema;
        let mut row = vec![Value::Null; schema.columns.len()];
        for (position, value) in tuple.0.iter().enumerate() {
            let Some(Some(index)) = relation.column_map.get(position) else {
                continue;
            };
            let column = &schema.columns[*index];
            row[*index] = match value {
                TupleValue::Null => Value::Null,
                TupleValue::UnchangedToast => Value::UnchangedToast,
                TupleValue::Text(bytes) => pgseam_pgvalue::decode_text_bytes(column, bytes)
                    .map_err(|err| SourceError::Value {
                        table: schema.qualified_name(),
                        column: column.name.clone(),
                        message: err.to_string(),
                    })?,
                TupleValue::Binary(_) => {
                    return Err(SourceError::Protocol(
                        "binary tuple data received, but pgseam did not ask for binary mode".into(),
                    ))
                }
            };
        }
        Ok(row)
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
