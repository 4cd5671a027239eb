//! Source type propagation with AvroConverter: the propagated parameters are in the registered
//! schema's `connect.parameters`, and a table whose snapshot and streamed parameters differ
//! (a `serial` column, an unconstrained `numeric`; see `golden/columns/propagate_*.jsonl`)
//! registers both value schemas: snapshot records use the first, streamed records the second,
//! each equal to what JsonConverter writes for the same event.

use crate::common::registry::{avro_with_registry, column, first_value, stream_event, table};

use std::sync::Arc;

use pgseam_converters::avro::registry::unframe;
use pgseam_converters::columns::{ColumnMapper, ColumnShaping, MapperRule};
use pgseam_converters::{AvroConverter, JsonConverterConfig};
use pgseam_model::{ColumnSchema, Operation, Value};

#[test]
fn avro_registers_snapshot_and_stream_parameters() {
    let table = table(
        44,
        "prop",
        vec![
            ColumnSchema {
                default_expr: Some("nextval('prop_id_seq'::regclass)".into()),
                ..column("id", "int4")
            },
            column("n", "numeric"),
            column("v", "varchar"),
        ],
    );
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
    let (registry, mut avro) = avro_with_registry(cfg);
    let after = vec![Value::Int32(1), Value::Null, Value::Text("x".into())];
    let schema_of = |avro: &mut AvroConverter, op| {
        let event = stream_event(&table, op, None, Some(after.clone()));
        let (id, _) = unframe(&first_value(avro, &event)).unwrap();
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
