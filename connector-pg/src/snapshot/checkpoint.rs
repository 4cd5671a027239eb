//! How far an initial snapshot got, in units of delivered chunks: what the worker stores in
//! the offset (under pgseam's own key, see `worker::offsets::debezium`) and what a resume need
//! not read again.
//!
//! The emitter sends chunks in one fixed order (table by table, chunks in range order) and
//! the worker stores a checkpoint only once every record before it is acknowledged, so what
//! a first run delivers is always a *prefix* of that order: some tables whole, then at most
//! one table partly. A resumed snapshot (see `resume`) reads several tables at once, so
//! there several tables can be partly delivered. The progress therefore says
//! - the consistent point C of the slot ("slot created at C"),
//! - the tables delivered whole,
//! - for each table partly delivered by primary-key ranges, the key its delivered ranges end
//!   at (every key `<=` it is delivered): [`SnapshotProgress::partial`] and
//!   [`SnapshotProgress::more_partial`].
//!
//! Each table's key only moves over a prefix of its own ranges, whatever the other tables
//! do, so it is stored as soon as the worker has the rows of those ranges acknowledged.
//!
//! A signalled incremental snapshot (see `signal`) uses the same progress with
//! [`SnapshotProgress::incremental`] set: the tables it reads (with their
//! `additional-conditions` filters) replace "every captured table", and the consistent point
//! is the stream position where it started (for the log only).
//!
//! A table chunked by ctid ranges that is partly delivered records nothing until its last
//! chunk: ctid ranges mean other rows under another snapshot (an UPDATE or VACUUM FULL moves
//! rows), so a resume re-reads such a table whole, by key windows if it has a primary key.

use pgseam_model::Lsn;

/// `(schema, table)`.
pub type TableName = (String, String);

/// A table delivered up to a primary-key value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProgress {
    pub table: TableName,
    /// The primary-key column names, in key order, when the progress was written: a resume
    /// only uses `after` if the key is still the same.
    pub key_columns: Vec<String>,
    /// The key value (each column in its text form) the delivered chunks end at, inclusive.
    pub after: Vec<String>,
    /// A signalled incremental snapshot's greatest key of the table (each column in its text
    /// form), as its first window found it: the `maximum_key` of the notifications, kept so
    /// that they carry the same value after a restart (Debezium stores it in the offset as
    /// `incremental_snapshot_maximum_key`). `None` for an initial snapshot.
    pub max_key: Option<Vec<String>>,
}

/// One step of progress, sent by the source after the records it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressUpdate {
    /// Every row of the table with a key `<= after` is delivered.
    KeyRange(KeyProgress),
    /// The table is delivered whole.
    TableDone(TableName),
    /// The snapshot is complete (sent by a resumed snapshot after its last window; the
    /// first run ends with `SourceMessage::SnapshotCompleted` instead).
    Finished,
    /// A signalled incremental snapshot started, or its tables changed (another
    /// `execute-snapshot`, a `stop-snapshot`): the whole progress from here on.
    Incremental(SnapshotProgress),
}

/// A table of a signalled incremental snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalTable {
    pub table: TableName,
    /// `additional-conditions`: only rows matching this SQL condition.
    pub filter: Option<String>,
}

/// The progress of an interrupted initial snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotProgress {
    /// The slot's consistent point: the snapshot covers every transaction committed before it.
    pub consistent_point: Lsn,
    /// Tables delivered whole.
    pub done: Vec<TableName>,
    /// The first table partly delivered by key ranges (the one whose key was recorded
    /// first), if any.
    pub partial: Option<KeyProgress>,
    /// The other tables partly delivered by key ranges (a resumed snapshot reads several
    /// tables at once), each once; empty whenever `partial` is `None`. Kept apart from
    /// `partial` because the offset stores them apart: a pgseam from before this field reads
    /// `partial` and ignores the rest (it reads those tables from their start again).
    pub more_partial: Vec<KeyProgress>,
    /// Set for a signalled incremental snapshot: the tables it reads, in order (those in
    /// `done` are read).
    pub incremental: Option<Vec<IncrementalTable>>,
    /// A signalled incremental snapshot's correlation id: the id of the `execute-snapshot`
    /// signal that started (or last extended) it, the `id` of its notifications. Stored, as
    /// Debezium stores `incremental_snapshot_correlation_id`, so that the notifications after a
    /// restart carry the same id as before it.
    pub correlation_id: Option<String>,
}

impl SnapshotProgress {
    /// Nothing delivered yet.
    pub fn new(consistent_point: Lsn) -> Self {
        SnapshotProgress {
            consistent_point,
            done: Vec::new(),
            partial: None,
            more_partial: Vec::new(),
            incremental: None,
            correlation_id: None,
        }
    }

    /// Records one step (`Finished` changes nothing here: the worker drops the progress).
    pub fn apply(&mut self, update: &ProgressUpdate) {
        match update {
            ProgressUpdate::KeyRange(key) => {
                if let Some(entry) = self.partial_mut(&key.table) {
                    *entry = key.clone();
                } else if self.partial.is_none() {
                    self.partial = Some(key.clone());
                } else {
                    self.more_partial.push(key.clone());
                }
            }
            ProgressUpdate::TableDone(table) => {
                self.more_partial.retain(|p| &p.table != table);
                if self.partial.as_ref().is_some_and(|p| &p.table == table) {
                    self.partial =
                        (!self.more_partial.is_empty()).then(|| self.more_partial.remove(0));
                }
                if !self.done.contains(table) {
                    self.done.push(table.clone());
                }
            }
            ProgressUpdate::Finished => {}
            ProgressUpdate::Incremental(progress) => *self = progress.clone(),
        }
    }

    /// Every table partly delivered by key ranges.
    pub fn partials(&self) -> impl Iterator<Item = &KeyProgress> {
        self.partial.iter().chain(&self.more_partial)
    }

    /// The key progress of `table`, if it is partly delivered.
    pub fn partial_of(&self, schema: &str, table: &str) -> Option<&KeyProgress> {
        self.partials()
            .find(|p| p.table.0 == schema && p.table.1 == table)
    }

    fn partial_mut(&mut self, table: &TableName) -> Option<&mut KeyProgress> {
        self.partial
            .iter_mut()
            .chain(&mut self.more_partial)
            .find(|p| &p.table == table)
    }

    /// Drops the key progress of the tables `drop` selects (`stop-snapshot`).
    pub fn forget_partial(&mut self, mut drop: impl FnMut(&TableName) -> bool) {
        self.more_partial.retain(|p| !drop(&p.table));
        if self.partial.as_ref().is_some_and(|p| drop(&p.table)) {
            self.partial = (!self.more_partial.is_empty()).then(|| self.more_partial.remove(0));
        }
    }

    pub fn is_done(&self, schema: &str, table: &str) -> bool {
        self.done.iter().any(|(s, t)| s == schema && t == table)
    }

    /// The key after which `schema.table` resumes, if its delivered chunks were key ranges
    /// over the same key columns.
    pub fn resume_after(
        &self,
        schema: &str,
        table: &str,
        key_columns: &[String],
    ) -> Option<&[String]> {
        self.partial_of(schema, table)
            .filter(|p| p.key_columns == key_columns)
            .map(|p| p.after.as_slice())
    }

    /// The greatest key stored for `schema.table` with its resume point (see
    /// [`KeyProgress::max_key`]), under the same conditions as [`Self::resume_after`].
    pub fn stored_max_key(
        &self,
        schema: &str,
        table: &str,
        key_columns: &[String],
    ) -> Option<&[String]> {
        self.resume_after(schema, table, key_columns)?;
        self.partial_of(schema, table)?.max_key.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgseam_model::{
        ChangeEvent, ColumnSchema, Operation, Position, SnapshotMarker, SourceInfo, TableSchema,
        Value,
    };
    use tokio::sync::mpsc;

    use super::super::plan::{ColumnRead, TablePlan};
    use super::super::{emitter, ChunkMessage};
    use super::*;
    use crate::source::SourceMessage;

    fn name(t: &str) -> TableName {
        ("public".into(), t.into())
    }

    #[test]
    fn updates_accumulate_a_prefix() {
        let mut p = SnapshotProgress::new(Lsn(42));
        p.apply(&ProgressUpdate::TableDone(name("a")));
        let key = KeyProgress {
            table: name("b"),
            key_columns: vec!["id".into()],
            after: vec!["1000".into()],
            max_key: None,
        };
        p.apply(&ProgressUpdate::KeyRange(key.clone()));
        assert!(p.is_done("public", "a"));
        assert!(!p.is_done("public", "b"));
        assert_eq!(
            p.resume_after("public", "b", &["id".into()]),
            Some(&["1000".to_owned()][..])
        );
        // Another key, or another table: no resume point.
        assert_eq!(p.resume_after("public", "b", &["other".into()]), None);
        assert_eq!(p.resume_after("public", "a", &["id".into()]), None);
        p.apply(&ProgressUpdate::TableDone(name("b")));
        assert_eq!(p.partial, None);
        assert_eq!(p.done, vec![name("a"), name("b")]);
        // Idempotent.
        p.apply(&ProgressUpdate::TableDone(name("b")));
        assert_eq!(p.done.len(), 2);
    }

    fn key(table: &str, after: &str) -> KeyProgress {
        KeyProgress {
            table: name(table),
            key_columns: vec!["id".into()],
            after: vec![after.into()],
            max_key: None,
        }
    }

    /// A resumed snapshot reads several tables at once: each partly delivered table keeps its
    /// own key, whichever table was recorded first, until it is done.
    #[test]
    fn several_tables_keep_their_own_key() {
        let mut p = SnapshotProgress::new(Lsn(42));
        p.apply(&ProgressUpdate::KeyRange(key("a", "10")));
        p.apply(&ProgressUpdate::KeyRange(key("b", "500")));
        p.apply(&ProgressUpdate::KeyRange(key("c", "7")));
        p.apply(&ProgressUpdate::KeyRange(key("b", "900")));
        assert_eq!(p.partial, Some(key("a", "10")));
        assert_eq!(p.more_partial, vec![key("b", "900"), key("c", "7")]);
        let id = ["id".to_owned()];
        assert_eq!(
            p.resume_after("public", "b", &id),
            Some(&["900".to_owned()][..])
        );
        assert_eq!(
            p.resume_after("public", "c", &id),
            Some(&["7".to_owned()][..])
        );
        // The first table done: the next one takes its place (the field a previous pgseam
        // reads).
        p.apply(&ProgressUpdate::TableDone(name("a")));
        assert_eq!(p.partial, Some(key("b", "900")));
        assert_eq!(p.more_partial, vec![key("c", "7")]);
        p.apply(&ProgressUpdate::TableDone(name("c")));
        assert_eq!(p.partial, Some(key("b", "900")));
        assert!(p.more_partial.is_empty());
        assert_eq!(p.resume_after("public", "c", &id), None);
        p.forget_partial(|t| t == &name("b"));
        assert_eq!(p.partial, None);
        assert_eq!(p.done, vec![name("a"), name("c")]);
    }

    fn row(table: &Arc<TableSchema>, id: i64) -> ChangeEvent {
        ChangeEvent {
            table: Arc::clone(table),
            op: Operation::Read,
            before: None,
            after: Some(vec![Value::Int64(id)]),
            source: SourceInfo {
                ts_us: 0,
                snapshot: SnapshotMarker::True,
                db: "db".into(),
                schema: "public".into(),
                table: "t".into(),
                tx_id: None,
                lsn: None,
                last_commit_lsn: None,
            },
            position: Position::Snapshot {
                consistent_point: Lsn(1),
                last: false,
            },
            key_change: None,
        }
    }

    /// A chunk's progress step goes out right after the chunk's last row (the emitter holds
    /// one row back to assign markers), never before it.
    #[tokio::test]
    async fn the_emitter_sends_a_chunks_progress_after_its_last_row() {
        let schema = Arc::new(TableSchema {
            relation_id: 1,
            schema: "public".into(),
            table: "t".into(),
            columns: vec![ColumnSchema {
                name: "id".into(),
                type_oid: 20,
                type_name: "int8".into(),
                base_type_oid: 20,
                type_modifier: -1,
                nullable: false,
                default_expr: None,
                enum_values: None,
                dimensions: 0,
            }],
            key_columns: vec![0],
        });
        let tables = vec![TablePlan {
            schema: Arc::clone(&schema),
            qualified: "\"public\".\"t\"".into(),
            relation: "ONLY \"public\".\"t\"".into(),
            columns: vec![ColumnRead::Binary],
            estimated_rows: 3,
            chunks: 3,
        }];
        let range = ProgressUpdate::KeyRange(KeyProgress {
            table: name("t"),
            key_columns: vec!["id".into()],
            after: vec!["2".into()],
            max_key: None,
        });
        let chunks: Vec<(Vec<i64>, ProgressUpdate)> = vec![
            (vec![1, 2], range.clone()),
            (vec![], range.clone()),
            (vec![3], ProgressUpdate::TableDone(name("t"))),
        ];
        let mut receivers = Vec::new();
        for (ids, update) in chunks {
            let (tx, rx) = mpsc::channel(8);
            tx.send(ChunkMessage::Rows {
                events: ids.iter().map(|&id| row(&schema, id)).collect(),
                bytes: 0,
            })
            .await
            .unwrap();
            tx.send(ChunkMessage::Delivered(update)).await.unwrap();
            tx.send(ChunkMessage::Done).await.unwrap();
            receivers.push((0, rx));
        }
        let (out, mut sent) = mpsc::channel(64);
        assert_eq!(
            emitter::emit(
                &tables,
                receivers,
                &out,
                &super::super::SnapshotStats::new(),
                None,
                None,
            )
            .await
            .unwrap(),
            3
        );
        drop(out);
        let mut order = Vec::new();
        while let Some(message) = sent.recv().await {
            order.push(match message {
                SourceMessage::Event(e) => format!("row {:?}", e.after.unwrap()[0]),
                SourceMessage::SnapshotProgress(ProgressUpdate::KeyRange(_)) => "range".into(),
                SourceMessage::SnapshotProgress(ProgressUpdate::TableDone(_)) => "done".into(),
                other => panic!("{other:?}"),
            });
        }
        assert_eq!(
            order,
            vec![
                "row Int64(1)",
                "row Int64(2)",
                "range",
                "range",
                "row Int64(3)",
                "done"
            ]
        );
    }
}
