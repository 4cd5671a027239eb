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

use std::collections::HashMap;
use std::sync::Arc;

use pgoutput::message::{LogicalReplicationMessage, OldTuple, TupleData, TupleValue};
use pgseam_model::{
    ChangeEvent, KeyChangeRow, Lsn, Operation, Position, Row, SnapshotMarker, SourceInfo,
    TableSchema, Value,
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

/// Decoding state that lives across messages.
pub(crate) struct StreamDecoder {
    pub(crate) database: String,
    pub(crate) relations: HashMap<u32, StreamRelation>,
    pub(crate) transaction: Option<OpenTransaction>,
    pub(crate) last_commit_lsn: Option<Lsn>,
}

impl StreamDecoder {
    pub(crate) fn new(database: String) -> Self {
        StreamDecoder {
            database,
            relations: HashMap::new(),
            transaction: None,
            last_commit_lsn: None,
        }
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
        let event = |op, before, after| ChangeEvent {
            table: Arc::clone(&relation.schema),
            op,
            before,
            after,
            source: SourceInfo {
                ts_us: transaction.commit_ts_us,
                snapshot: SnapshotMarker::False,
                db: self.database.clone(),
                schema: relation.schema.schema.clone(),
                table: relation.schema.table.clone(),
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
                    let keys = &relation.schema.key_columns;
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
