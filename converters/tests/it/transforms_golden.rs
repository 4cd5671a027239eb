//! SMT output against real Debezium 3.6.3 (`reference/debezium/golden/smt/`, captured by
//! `reference/debezium/bin/capture-smt.sh`): the `INSERT INTO items (id, name) VALUES (4, 'fig')`
//! and `DELETE FROM items WHERE id = 2` events of `sql/smt_stream.sql`, converted with the
//! StarRocks recipe (`ExtractNewRecordState`, `delete.tombstone.handling.mode=rewrite`,
//! `add.fields=op,source.ts_ms`), with schemas on and off; key and value bytes must equal the
//! golden lines after masking `ts_ms` (as `golden-diff.py` does).

use std::path::Path;
use std::sync::Arc;

use pgseam_converters::transforms::{
    DeleteTombstoneHandling, ExtractNewRecordState, FieldReference, Transform, TransformStep,
    Transforms,
};
use pgseam_converters::{JsonConverter, JsonConverterConfig};
use pgseam_model::{
    ChangeEvent, ColumnSchema, Lsn, Operation, Position, SnapshotMarker, SourceInfo, TableSchema,
    Value,
};

fn column(
    name: &str,
    ty: &str,
    typmod: i32,
    nullable: bool,
    default: Option<&str>,
) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_oid: 0,
        type_name: ty.into(),
        base_type_oid: 0,
        type_modifier: typmod,
        nullable,
        default_expr: default.map(str::to_owned),
        enum_values: None,
        dimensions: 0,
    }
}

fn items() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        relation_id: 1,
        schema: "public".into(),
        table: "items".into(),
        columns: vec![
            column("id", "int4", -1, false, None),
            column("name", "text", -1, false, None),
            column("qty", "int4", -1, true, Some("7")),
            column("price", "numeric", (10 << 16 | 2) + 4, true, None),
            column("note", "varchar", 24, true, None),
        ],
        key_columns: vec![0],
    })
}

fn event(op: Operation, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> ChangeEvent {
    ChangeEvent {
        table: items(),
        op,
        before,
        after,
        source: SourceInfo {
            ts_us: 1_000_000,
            snapshot: SnapshotMarker::False,
            db: "smt".into(),
            schema: "public".into(),
            table: "items".into(),
            tx_id: Some(1),
            lsn: Some(Lsn(1)),
            last_commit_lsn: None,
        },
        position: Position::Stream {
            lsn: Lsn(1),
            commit_lsn: Lsn(1),
            tx_id: 1,
            commit_ts_us: 0,
        },
        key_change: None,
    }
}

/// The capture's INSERT of item 4, `fig` (golden line 7).
fn insert_of_item_4() -> ChangeEvent {
    event(
        Operation::Create,
        None,
        Some(vec![
            Value::Int32(4),
            Value::Text("fig".into()),
            Value::Null,
            Value::Null,
            Value::Null,
        ]),
    )
}

/// The capture's DELETE of item 2 under the default replica identity: the old key only, every
/// other column NULL (golden line 9).
fn delete_of_item_2() -> ChangeEvent {
    event(
        Operation::Delete,
        Some(vec![
            Value::Int32(2),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ]),
        None,
    )
}

fn mask(s: &str) -> String {
    regex::Regex::new(r#""(ts_ms|ts_us|ts_ns|__source_ts_ms)":-?\d+"#)
        .unwrap()
        .replace_all(s, "\"$1\":0")
        .into_owned()
}

/// (key, value) raw JSON texts of golden line `n` (1-based).
fn golden(file: &str, n: usize) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference/debezium/golden/smt")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().nth(n - 1).unwrap();
    let key_at = line.find("],\"key\":").unwrap() + 8;
    let value_at = key_at + line[key_at..].find(",\"value\":").unwrap();
    // The key is an object, so `,"value":` after it is the top-level one.
    let key = &line[key_at..value_at];
    let value = &line[value_at + 9..line.len() - 1];
    (key.to_owned(), value.to_owned())
}

/// Asserts that `record`'s JSON key and value are golden line `n` of `file`, timestamps masked.
fn assert_is_golden_line(record: &pgseam_converters::KafkaRecord, file: &str, n: usize) {
    let (key, value) = golden(file, n);
    assert_eq!(
        std::str::from_utf8(record.key.as_deref().unwrap()).unwrap(),
        key,
        "{file} line {n}"
    );
    assert_eq!(
        mask(std::str::from_utf8(record.value.as_deref().unwrap()).unwrap()),
        mask(&value),
        "{file} line {n}"
    );
}

fn recipe(schemas: bool) -> JsonConverter {
    let unwrap = ExtractNewRecordState {
        delete_handling: DeleteTombstoneHandling::Rewrite,
        add_fields: vec![
            FieldReference::parse("__", "op").unwrap(),
            FieldReference::parse("__", "source.ts_ms").unwrap(),
        ],
        replace_null_with_default: true,
        drop_fields_keep_schema_compatible: true,
        ..Default::default()
    };
    JsonConverter::new(JsonConverterConfig {
        key_schemas_enable: schemas,
        value_schemas_enable: schemas,
        run_id: Some("r".into()),
        transforms: Transforms {
            steps: vec![TransformStep {
                alias: "unwrap".into(),
                transform: Transform::ExtractNewRecordState(unwrap),
                predicate: None,
                negate: false,
            }],
        },
        ..JsonConverterConfig::new("dbz")
    })
}

#[test]
fn starrocks_recipe_matches_debezium() {
    for (file, schemas) in [
        ("unwrap_rewrite.jsonl", true),
        ("unwrap_rewrite_noschema.jsonl", false),
    ] {
        let mut c = recipe(schemas);
        let insert = insert_of_item_4();
        let mut out = Vec::new();
        c.convert(&insert, 0, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_is_golden_line(&out[0], file, 7);
        // DELETE under the default replica identity: old key only, NOT NULL `name` becomes ""
        // and the tombstone is dropped by `rewrite`.
        let delete = delete_of_item_2();
        out.clear();
        c.convert(&delete, 0, &mut out).unwrap();
        assert_eq!(out.len(), 1, "{file}: the tombstone is dropped");
        assert_is_golden_line(&out[0], file, 9);
    }
}

/// Decoded Avro → the JSON payload JsonConverter writes (union → its branch, bytes and
/// decimals → base64).
fn avro_to_json(v: &apache_avro::types::Value) -> serde_json::Value {
    use apache_avro::types::Value as Avro;
    use base64::Engine as _;
    use serde_json::Value as Json;
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    match v {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => Json::Bool(*b),
        Avro::Int(i) => Json::from(*i),
        Avro::Long(i) => Json::from(*i),
        Avro::String(s) => Json::String(s.clone()),
        Avro::Bytes(b) => b64(b),
        Avro::Decimal(d) => b64(&<Vec<u8>>::try_from(d).unwrap()),
        Avro::Union(_, inner) => avro_to_json(inner),
        Avro::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected Avro value {other:?}"),
    }
}

#[test]
fn starrocks_recipe_with_avro_registers_and_writes_the_transformed_records() {
    use pgseam_converters::avro::registry::{unframe, HttpSchemaRegistry};
    use pgseam_converters::{AvroConverter, AvroConverterConfig};
    let registry = pgseam_testkit::SchemaRegistry::start().unwrap();
    let json = recipe(true);
    let mut avro = AvroConverter::new(
        AvroConverterConfig {
            json: json.config().clone(),
            key_avro: true,
            value_avro: true,
        },
        Box::new(HttpSchemaRegistry::new(registry.url(), None)),
    );
    let insert = insert_of_item_4();
    let delete = delete_of_item_2();
    let decode = |bytes: &[u8]| {
        let (id, mut datum) = unframe(bytes).unwrap();
        let schema = apache_avro::Schema::parse_str(&registry.schema(id).unwrap()).unwrap();
        let v = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut datum)
            .unwrap();
        assert!(datum.is_empty());
        (id, serde_json::to_string(&avro_to_json(&v)).unwrap())
    };
    for (ev, line) in [(insert, 7), (delete, 9)] {
        let mut out = Vec::new();
        avro.convert(&ev, 0, &mut out).unwrap();
        assert_eq!(out.len(), 1, "line {line}: the tombstone is dropped");
        let (key, value) = golden("unwrap_rewrite_noschema.jsonl", line);
        let (key_id, decoded_key) = decode(out[0].key.as_deref().unwrap());
        let (value_id, decoded_value) = decode(out[0].value.as_deref().unwrap());
        assert_eq!(decoded_key, key, "line {line}");
        assert_eq!(mask(&decoded_value), mask(&value), "line {line}");
        let subjects = registry.subjects();
        assert!(subjects["dbz.public.items-key"].contains(&key_id));
        assert!(subjects["dbz.public.items-value"].contains(&value_id));
    }
    // One value schema: the flattened row (never the envelope), registered once.
    let subjects = registry.subjects();
    assert_eq!(subjects["dbz.public.items-value"].len(), 1);
    let schema = registry
        .schema(subjects["dbz.public.items-value"][0])
        .unwrap();
    assert!(
        schema.starts_with(r#"{"type":"record","name":"Value","namespace":"dbz.public.items""#)
            && schema.contains(r#""name":"__deleted""#),
        "{schema}"
    );
}

fn chain(steps: Vec<(&str, Transform)>) -> JsonConverter {
    JsonConverter::new(JsonConverterConfig {
        run_id: Some("r".into()),
        transforms: Transforms {
            steps: steps
                .into_iter()
                .map(|(alias, transform)| TransformStep {
                    alias: alias.into(),
                    transform,
                    predicate: None,
                    negate: false,
                })
                .collect(),
        },
        ..JsonConverterConfig::new("dbz")
    })
}

fn own_headers(r: &pgseam_converters::KafkaRecord) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| !k.starts_with("__debezium.context."))
        .map(|(k, v)| (k.clone(), String::from_utf8(v.clone()).unwrap()))
        .collect()
}

/// Debezium's tombstone shares the delete record's `Headers` object, and
/// `ExtractNewRecordState` adds `add.headers` to its input in place: the tombstone carries the
/// delete's headers and then its own (`golden/smt/unwrap_fields.jsonl`) — unless an earlier
/// transform copied the delete record (a `RegexRouter` that renamed its topic).
#[test]
fn tombstone_shares_the_headers_added_to_its_delete_until_a_transform_copies_it() {
    let unwrap = || {
        Transform::ExtractNewRecordState(ExtractNewRecordState {
            delete_handling: DeleteTombstoneHandling::RewriteWithTombstone,
            add_headers: vec![
                FieldReference::parse("", "lsn:LSN").unwrap(),
                FieldReference::parse("", "op").unwrap(),
            ],
            replace_null_with_default: true,
            ..Default::default()
        })
    };
    let delete = delete_of_item_2();
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    let mut out = Vec::new();
    chain(vec![("unwrap", unwrap())])
        .convert(&delete, 0, &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(own_headers(&out[0]), h(&[("LSN", "1"), ("op", "d")]));
    assert!(out[1].value.is_none());
    assert_eq!(
        own_headers(&out[1]),
        h(&[("LSN", "1"), ("op", "d"), ("op", "d")])
    );

    // A RegexRouter that renames the topic first copies the delete record (and its headers):
    // the tombstone keeps only its own.
    let regex = pgseam_converters::transforms::JavaRegex::new(r"dbz\.public\.(.*)").unwrap();
    let replacement =
        pgseam_converters::transforms::JavaReplacement::new("cdc_$1", &regex).unwrap();
    let route =
        Transform::RegexRouter(pgseam_converters::transforms::RegexRouter { regex, replacement });
    out.clear();
    chain(vec![("route", route), ("unwrap", unwrap())])
        .convert(&delete, 0, &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[1].topic, "cdc_items");
    assert_eq!(own_headers(&out[0]), h(&[("LSN", "1"), ("op", "d")]));
    assert_eq!(own_headers(&out[1]), h(&[("op", "d")]));
}
