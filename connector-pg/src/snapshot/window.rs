//! The DBLog window of one resumed chunk: which buffered rows the stream has overtaken.
//!
//! ```text
//!  stream:  … ─ LOW(w) ─ change k1 ─ change k7 ─ … ─ HIGH(w) ─ …
//!                 │                                     │
//!                 open: remember the keys of the        close: emit the buffered rows
//!                 chunk's table changed in the window   whose key was not changed
//! ```
//!
//! The chunk is read (under its own snapshot) after the low watermark and before the high
//! one, so for each row of the chunk either no change of its key committed inside the window
//! — the buffered row is the key's state at the high watermark, and is emitted there — or one
//! did, and the stream itself carries that change, in commit order: the buffered row may be
//! older or newer than the change, so it is dropped. A TRUNCATE of the table inside the window
//! drops the whole buffer. Rows the stream changes after the high watermark come after the
//! emitted rows, as any later change does.
//!
//! Keys are compared by their decoded values (the binary COPY decoder gives the same values
//! as pgoutput's text decoder, which pgvalue tests for every type).

use std::collections::HashSet;

use pgseam_model::{ChangeEvent, Operation, Row, TableSchema};

/// Where the window is, as the stream sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The low watermark has not come through the stream yet.
    Requested,
    /// Between the low and the high watermark: changes of the table are remembered.
    Open,
    /// The high watermark came through: the buffer is emitted at the end of its transaction.
    Closed,
}

/// One window over one table.
#[derive(Debug)]
pub(crate) struct Window {
    /// The watermark id (the text after `low:` / `high:`).
    pub(crate) id: String,
    /// The table's relation id (pgoutput's relation id, the table's OID).
    pub(crate) relation_id: u32,
    pub(crate) phase: Phase,
    touched: HashSet<String>,
    truncated: bool,
}

/// The comparable form of a row's primary key; `None` for a table without one.
pub(crate) fn row_key(schema: &TableSchema, row: &Row) -> Option<String> {
    if schema.key_columns.is_empty() {
        return None;
    }
    let values: Vec<_> = schema.key_columns.iter().map(|&i| row.get(i)).collect();
    Some(format!("{values:?}"))
}

impl Window {
    pub(crate) fn new(id: String, relation_id: u32) -> Self {
        Window {
            id,
            relation_id,
            phase: Phase::Requested,
            touched: HashSet::new(),
            truncated: false,
        }
    }

    /// A watermark of this window came through the stream.
    pub(crate) fn on_watermark(&mut self, high: bool) {
        self.phase = match (self.phase, high) {
            (Phase::Requested, false) => Phase::Open,
            (Phase::Open, true) => Phase::Closed,
            (phase, _) => phase,
        };
    }

    /// A streamed change: remembered if it is inside the window and of the window's table.
    pub(crate) fn observe(&mut self, event: &ChangeEvent) {
        if self.phase != Phase::Open || event.table.relation_id != self.relation_id {
            return;
        }
        if event.op == Operation::Truncate {
            self.truncated = true;
            return;
        }
        for row in [&event.before, &event.after].into_iter().flatten() {
            if let Some(key) = row_key(&event.table, row) {
                self.touched.insert(key);
            }
        }
    }

    /// A TRUNCATE of `relation_id` came through the stream (also when `skipped.operations`
    /// drops its event).
    pub(crate) fn observe_truncate(&mut self, relation_ids: &[u32]) {
        if self.phase == Phase::Open && relation_ids.contains(&self.relation_id) {
            self.truncated = true;
        }
    }

    /// Keys changed inside the window so far.
    pub(crate) fn touched(&self) -> usize {
        self.touched.len()
    }

    /// The buffered rows that survive the window, in their read order.
    pub(crate) fn finish(&self, rows: Vec<ChangeEvent>) -> Vec<ChangeEvent> {
        if self.truncated {
            return Vec::new();
        }
        rows.into_iter()
            .filter(|row| {
                row.after
                    .as_ref()
                    .and_then(|after| row_key(&row.table, after))
                    .is_none_or(|key| !self.touched.contains(&key))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgseam_model::{ColumnSchema, Lsn, Position, SnapshotMarker, SourceInfo, Value};

    use super::*;

    fn schema(relation_id: u32) -> Arc<TableSchema> {
        let column = |name: &str| ColumnSchema {
            name: name.into(),
            type_oid: 20,
            type_name: "int8".into(),
            base_type_oid: 20,
            type_modifier: -1,
            nullable: false,
            default_expr: None,
            enum_values: None,
            dimensions: 0,
        };
        Arc::new(TableSchema {
            relation_id,
            schema: "public".into(),
            table: "t".into(),
            columns: vec![column("id"), column("v")],
            key_columns: vec![0],
        })
    }

    fn event(table: &Arc<TableSchema>, op: Operation, id: i64, v: &str) -> ChangeEvent {
        let row = vec![Value::Int64(id), Value::Text(v.into())];
        let (before, after) = match op {
            Operation::Delete => (Some(row), None),
            Operation::Truncate => (None, None),
            _ => (None, Some(row)),
        };
        ChangeEvent {
            table: Arc::clone(table),
            op,
            before,
            after,
            source: SourceInfo {
                ts_us: 0,
                snapshot: SnapshotMarker::False,
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

    fn ids(rows: &[ChangeEvent]) -> Vec<i64> {
        rows.iter()
            .map(|r| match &r.after.as_ref().unwrap()[0] {
                Value::Int64(id) => *id,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn keys_changed_inside_the_window_are_dropped() {
        let t = schema(10);
        let other = schema(11);
        let chunk: Vec<_> = (1..=5)
            .map(|id| event(&t, Operation::Read, id, "r"))
            .collect();
        let mut w = Window::new("1".into(), 10);
        // Before the low watermark: not the window's business.
        w.observe(&event(&t, Operation::Update, 1, "early"));
        w.on_watermark(false);
        assert_eq!(w.phase, Phase::Open);
        w.observe(&event(&t, Operation::Update, 2, "u"));
        w.observe(&event(&t, Operation::Delete, 3, ""));
        w.observe(&event(&t, Operation::Create, 9, "new")); // not in the chunk
        w.observe(&event(&other, Operation::Update, 4, "other table"));
        assert_eq!(w.touched(), 3);
        w.on_watermark(true);
        assert_eq!(w.phase, Phase::Closed);
        // After the high watermark: too late to matter.
        w.observe(&event(&t, Operation::Update, 5, "late"));
        assert_eq!(ids(&w.finish(chunk)), vec![1, 4, 5]);
    }

    #[test]
    fn a_truncate_inside_the_window_drops_the_buffer() {
        let t = schema(10);
        let chunk: Vec<_> = (1..=3)
            .map(|id| event(&t, Operation::Read, id, "r"))
            .collect();
        let mut w = Window::new("1".into(), 10);
        w.on_watermark(false);
        w.observe_truncate(&[7, 10]);
        w.on_watermark(true);
        assert!(w.finish(chunk).is_empty());
    }

    #[test]
    fn a_high_watermark_before_the_low_one_is_ignored() {
        let mut w = Window::new("1".into(), 10);
        w.on_watermark(true);
        assert_eq!(w.phase, Phase::Requested);
    }
}
