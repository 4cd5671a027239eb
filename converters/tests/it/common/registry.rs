//! The hand-built side of the Avro tests (`avro.rs`, `avro_propagate.rs`): an `AvroConverter`
//! writing Avro keys and values against a fresh Schema Registry stand-in, columns and tables
//! declared in a line each, and streamed changes at one fixed position.

use std::sync::Arc;

use pgseam_converters::avro::registry::HttpSchemaRegistry;
use pgseam_converters::{AvroConverter, AvroConverterConfig, JsonConverterConfig};
use pgseam_model::{
    ChangeEvent, ColumnSchema, Lsn, Operation, Position, Row, SnapshotMarker, SourceInfo,
    TableSchema,
};
use pgseam_testkit::SchemaRegistry;

/// A Schema Registry stand-in and an `AvroConverter` (Avro keys and values, `json`'s settings)
/// registering with it over HTTP.
pub(crate) fn avro_with_registry(json: JsonConverterConfig) -> (SchemaRegistry, AvroConverter) {
    let registry = SchemaRegistry::start().expect("start the Schema Registry stand-in");
    let avro = AvroConverter::new(
        AvroConverterConfig {
            json,
            key_avro: true,
            value_avro: true,
        },
        Box::new(HttpSchemaRegistry::new(registry.url(), None)),
    );
    (registry, avro)
}

/// A column of type `ty` (a `pg_type.typname`), no type modifier, no default; nullable unless
/// it is named `id`. Tests set other fields with struct update syntax.
pub(crate) fn column(name: &str, ty: &str) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_oid: 0,
        type_name: ty.into(),
        base_type_oid: 0,
        type_modifier: -1,
        nullable: name != "id",
        default_expr: None,
        enum_values: None,
        dimensions: 0,
    }
}

/// Table `public.<table>` (relation `relation_id`) keyed by its first column.
pub(crate) fn table(relation_id: u32, table: &str, columns: Vec<ColumnSchema>) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        relation_id,
        schema: "public".into(),
        table: table.into(),
        columns,
        key_columns: vec![0],
    })
}

/// A streamed change of `table` from database `db`: transaction 7 at LSN 77, committed at 78,
/// `ts_us` one second.
pub(crate) fn stream_event(
    table: &Arc<TableSchema>,
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
            ts_us: 1_000_000,
            snapshot: SnapshotMarker::False,
            db: "db".into(),
            schema: table.schema.clone(),
            table: table.table.clone(),
            tx_id: Some(7),
            lsn: Some(Lsn(77)),
            last_commit_lsn: None,
        },
        position: Position::Stream {
            lsn: Lsn(77),
            commit_lsn: Lsn(78),
            tx_id: 7,
            commit_ts_us: 0,
        },
        key_change: None,
    }
}

/// The value of the first record `avro` writes for `event` (partition 5): the framed datum.
pub(crate) fn first_value(avro: &mut AvroConverter, event: &ChangeEvent) -> Vec<u8> {
    let mut out = Vec::new();
    avro.convert(event, 5, &mut out).expect("convert");
    out.remove(0).value.expect("a value")
}
