//! Source type propagation with AvroConverter: the propagated parameters are in the registered
//! schema's `connect.parameters`, and a table whose snapshot and streamed parameters differ
//! (a `serial` column, an unconstrained `numeric`; see `golden/columns/propagate_*.jsonl`)
//! registers both value schemas: snapshot records use the first, streamed records the second,
//! each equal to what JsonConverter writes for the same event.

use std::sync::Arc;

use pgseam_converters::avro::registry::{unframe, HttpSchemaRegistry};
use pgseam_converters::columns::{ColumnMapper, ColumnShaping, MapperRule};
use pgseam_converters::{AvroConverter, AvroConverterConfig, JsonConverterConfig};
use pgseam_model::{
    ChangeEvent, ColumnSchema, Lsn, Operation, Position, SnapshotMarker, SourceInfo, TableSchema,
    Value,
};
use pgseam_testkit::SchemaRegistry;

#[test]
fn avro_registers_snapshot_and_stream_parameters() {
    let column = |name: &str, ty: &str, default: Option<&str>| ColumnSchema {
        name: name.into(),
        type_oid: 0,
        type_name: ty.into(),
        base_type_oid: 0,
        type_modifier: -1,
        nullable: name != "id",
        default_expr: default.map(str::to_owned),
        enum_values: None,
        dimensions: 0,
    };
    let table = Arc::new(TableSchema {
        relation_id: 44,
        schema: "public".into(),
        table: "prop".into(),
        columns: vec![
            column("id", "int4", Some("nextval('prop_id_seq'::regclass)")),
            column("n", "numeric", None),
            column("v", "varchar", None),
        ],
        key_columns: vec![0],
    });
    let cfg = JsonConverterConfig {
        columns: Arc::new(ColumnShaping {
            mappers: vec![MapperRule {
                patterns: vec![regex::Regex::new(r"(?i)^(?:public\.prop\..*)$").unwrap()],
                mapper: ColumnMapper::PropagateSourceType { by_datatype: false },
            }],
            ..ColumnShaping::default()
        }),
        run_id: Some("r".into()),
        ..JsonConverterConfig::new("dbz")
    };
    let registry = SchemaRegistry::start().unwrap();
    let mut avro = AvroConverter::new(
        AvroConverterConfig {
            json: cfg,
            key_avro: true,
            value_avro: true,
        },
        Box::new(HttpSchemaRegistry::new(registry.url(), None)),
    );
    let event = |op| ChangeEvent {
        table: Arc::clone(&table),
        op,
        before: None,
        after: Some(vec![Value::Int32(1), Value::Null, Value::Text("x".into())]),
        source: SourceInfo {
            ts_us: 1_000_000,
            snapshot: SnapshotMarker::False,
            db: "db".into(),
            schema: "public".into(),
            table: "prop".into(),
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
    };
    let schema_of = |avro: &mut AvroConverter, op| {
        let mut out = Vec::new();
        avro.convert(&event(op), 5, &mut out).unwrap();
        let value = out.remove(0).value.unwrap();
        let (id, _) = unframe(&value).unwrap();
        (id, registry.schema(id).unwrap())
    };
    let (snap_id, snap) = schema_of(&mut avro, Operation::Read);
    let (stream_id, stream) = schema_of(&mut avro, Operation::Create);
    let (again_id, _) = schema_of(&mut avro, Operation::Read);
    assert_ne!(snap_id, stream_id);
    assert_eq!(again_id, snap_id);
    let params = |ty: &str| {
        format!(
            r#""connect.parameters":{{"__debezium.source.column.type":"{ty}","__debezium.source.column.length":"10","__debezium.source.column.scale":"0","__debezium.source.column.name":"id"}}"#
        )
    };
    assert!(snap.contains(&params("SERIAL")), "{snap}");
    assert!(stream.contains(&params("INT4")), "{stream}");
    let numeric_snapshot = r#""connect.parameters":{"__debezium.source.column.type":"NUMERIC","__debezium.source.column.length":"0","__debezium.source.column.name":"n"}"#;
    assert!(snap.contains(numeric_snapshot), "{snap}");
    assert!(stream.contains(r#""__debezium.source.column.length":"131089","__debezium.source.column.scale":"0","__debezium.source.column.name":"n""#), "{stream}");
    let varchar = r#""connect.parameters":{"__debezium.source.column.type":"VARCHAR","__debezium.source.column.length":"2147483647","__debezium.source.column.scale":"0","__debezium.source.column.name":"v"}"#;
    assert!(
        snap.contains(varchar) && stream.contains(varchar),
        "{snap}\n{stream}"
    );
}
