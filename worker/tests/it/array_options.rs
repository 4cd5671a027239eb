//! The two opt-in fixes of Debezium's array output (`docs/configuration.md`, "Array fixes that
//! change the schema"), end to end against a real PostgreSQL and broker:
//!
//! - `pgseam.array.multidimensional.mode=nested`: multi-dimensional arrays nest to the
//!   column's declared dimensions (`pg_attribute.attndims`) in the schema and the values;
//!   a value of other dimensions is one null per outer element, with a warning naming the
//!   table and column;
//! - `pgseam.unavailable.array.mode=null`: an unchanged TOAST `int4[]`/`int8[]`/`date[]`/
//!   `uuid[]` value is null where the column is nullable, and the `pgseam.unavailable` header
//!   names every unavailable column (not with `pgseam.position.headers=false`).
//!
//! Rows come from the snapshot (binary `COPY`) and from the stream (pgoutput text), and the
//! UPDATE that leaves TOASTed columns unchanged runs under REPLICA IDENTITY DEFAULT. JSON is
//! read as bytes; Avro is decoded by the oracle (schema fetched from the registry stand-in by
//! id, apache-avro; none of pgseam's converter code).

use crate::common;
use crate::common::golden;

use std::time::Duration;

use common::{Env, Pgseam};
use golden::{consume, Rec, WAIT};
use pgseam_integration_tests::{read_topics_decoded, Decoding};
use pgseam_testkit::SchemaRegistry;
use serde_json::{json, Value};

/// `m int[][]`, `t text[][]`, `d1 int[]` (one declared dimension), and four TOASTed columns
/// (`STORAGE EXTERNAL`, each value over 2 kB): a nullable and a NOT NULL `int[]`, an
/// `int[][]`, a `text[]`, a `uuid[]`. Row 1 has the declared dimensions, row 2 other ones,
/// row 3 empty arrays and nulls, row 4 the TOASTed values.
const SCHEMA: &str = "
CREATE TABLE arr (
    id int PRIMARY KEY,
    note text,
    m int[][],
    t text[][],
    d1 int[],
    big int[],
    bign int[] NOT NULL DEFAULT '{}',
    bigm int[][],
    bigt text[],
    bigu uuid[]
);
ALTER TABLE arr ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN bign SET STORAGE EXTERNAL,
    ALTER COLUMN bigm SET STORAGE EXTERNAL, ALTER COLUMN bigt SET STORAGE EXTERNAL,
    ALTER COLUMN bigu SET STORAGE EXTERNAL;
INSERT INTO arr (id, note, m, t, d1) VALUES
    (1, 's', '{{1,2},{3,NULL}}', '{{a,\"b c\"},{\"{d}\",NULL}}', '{5,6}'),
    (2, 's', '{1,2,3}', '{{{x}},{{y}}}', '{{1},{2}}'),
    (3, 's', '{}', NULL, '{}');
INSERT INTO arr (id, note, big, bign, bigm, bigt, bigu) VALUES
    (4, 's', array_fill(7, ARRAY[1000]), array_fill(8, ARRAY[1000]), array_fill(9, ARRAY[2, 500]),
     array_fill('t'::text, ARRAY[1000]),
     array_fill('00000000-0000-0000-0000-000000000001'::uuid, ARRAY[200]));
";

/// The streamed part: copies of rows 1-3 (decoded from pgoutput's text), then an UPDATE of
/// row 4 that leaves every TOASTed column unchanged.
const STREAM: &str = "
INSERT INTO arr (id, note, m, t, d1) SELECT id + 10, note, m, t, d1 FROM arr WHERE id < 4;
UPDATE arr SET note = 'u' WHERE id = 4;
";

/// The rows 1-3 (and their streamed copies 11-13) with both options on.
fn expected_rows() -> [Value; 3] {
    [
        json!({"id":1,"note":"s","m":[[1,2],[3,null]],"t":[["a","b c"],["{d}",null]],
               "d1":[5,6],"big":null,"bign":[],"bigm":null,"bigt":null,"bigu":null}),
        // Not the declared dimensions: one null per outer element.
        json!({"id":2,"note":"s","m":[null,null,null],"t":[null,null],"d1":[null,null],
               "big":null,"bign":[],"bigm":null,"bigt":null,"bigu":null}),
        json!({"id":3,"note":"s","m":[],"t":null,"d1":[],"big":null,"bign":[],"bigm":null,
               "bigt":null,"bigu":null}),
    ]
}

/// Debezium's placeholder `__debezium_unavailable_value` as the numbers of its bytes.
fn placeholder_bytes() -> Value {
    Value::Array(
        "__debezium_unavailable_value"
            .bytes()
            .map(Value::from)
            .collect(),
    )
}

fn options(extra: &[&str]) -> Vec<String> {
    let mut lines = vec![
        "pgseam.array.multidimensional.mode=nested".to_owned(),
        "pgseam.unavailable.array.mode=NULL".to_owned(),
        "topic.creation.default.partitions=1".to_owned(),
        "topic.creation.default.replication.factor=1".to_owned(),
    ];
    lines.extend(extra.iter().map(|s| (*s).to_owned()));
    lines
}

fn header<'a>(rec: &'a Rec, name: &str) -> Option<&'a str> {
    rec.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
}

#[test]
fn nested_arrays_and_null_unavailable_arrays_in_json() {
    let env = Env::start("arrjson");
    env.psql(SCHEMA);
    let lines = options(&[]);
    let extra: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (worker, connector) = env.write_configs("aj", &[], &extra);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(STREAM);
    let records = consume(
        &env.broker.bootstrap_servers(),
        &["aj.public.arr".to_owned()],
        8,
    );
    assert_eq!(records.len(), 8, "{records:?}");
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(&r.value).expect("JSON value"))
        .collect();
    // The record of row `id` with operation `op` (the order of rows within the snapshot and
    // within one INSERT … SELECT is the server's).
    let find = |id: i64, op: &str| -> usize {
        values
            .iter()
            .position(|v| {
                v["payload"]["op"] == op && v["payload"]["after"]["id"].as_i64() == Some(id)
            })
            .unwrap_or_else(|| panic!("no {op} record of row {id} in {values:?}"))
    };
    let after = |i: usize| values[i]["payload"]["after"].clone();
    let rows = expected_rows();
    for row in &rows {
        let id = row["id"].as_i64().unwrap();
        assert_eq!(after(find(id, "r")), *row, "snapshot row {id}");
        let mut copy = row.clone();
        copy["id"] = (id + 10).into();
        assert_eq!(after(find(id + 10, "c")), copy, "streamed copy of row {id}");
    }
    // Row 4 from the snapshot: every value read.
    let row4 = after(find(4, "r"));
    assert_eq!(row4["big"].as_array().map(Vec::len), Some(1000));
    assert_eq!(row4["bigm"].as_array().map(Vec::len), Some(2));
    assert_eq!(row4["bigm"][1].as_array().map(Vec::len), Some(500));
    assert_eq!(row4["bigm"][1][499], 9);
    // The UPDATE under REPLICA IDENTITY DEFAULT: the TOASTed values are unavailable.
    let u = find(4, "u");
    assert_eq!(
        after(u),
        json!({"id":4,"note":"u","m":null,"t":null,"d1":null,
            "big":null,
            // NOT NULL: no null in its schema, Debezium's value stays.
            "bign":placeholder_bytes(),
            "bigm":null,
            "bigt":["__debezium_unavailable_value"],
            "bigu":null})
    );
    assert_eq!(
        header(&records[u], "pgseam.unavailable"),
        Some(r#"["big","bign","bigm","bigt","bigu"]"#),
        "{:?}",
        records[u].headers
    );
    // Only the UPDATE has unavailable values.
    for (i, rec) in records.iter().enumerate().filter(|(i, _)| *i != u) {
        assert!(header(rec, "pgseam.unavailable").is_none(), "record {i}");
    }
    // The schema nests as declared.
    let fields = &values[0]["schema"]["fields"][1]["fields"];
    let field = |name: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .unwrap_or_else(|| panic!("no field {name} in {fields}"))
            .clone()
    };
    assert_eq!(
        field("m"),
        json!({"type":"array","items":{"type":"array","items":{"type":"int32","optional":true},
            "optional":true},"optional":true,"field":"m"})
    );
    assert_eq!(
        field("t")["items"],
        json!({"type":"array","items":{"type":"string","optional":true},"optional":true})
    );
    assert_eq!(
        field("d1"),
        json!({"type":"array","items":{"type":"int32","optional":true},"optional":true,
            "field":"d1"})
    );
    assert_eq!(field("bign")["optional"], false);
    // The dimension warnings name the table and column, once per column.
    let log = pgseam.log_text();
    for column in ["m", "t", "d1"] {
        let warnings = log
            .lines()
            .filter(|l| l.contains("does not have its column's declared dimensions"))
            .filter(|l| l.contains("public.arr") && l.contains(&format!("column={column}")))
            .count();
        assert_eq!(warnings, 1, "warnings for {column}:\n{log}");
    }
}

#[test]
fn nested_arrays_and_null_unavailable_arrays_in_avro() {
    let env = Env::start("arravro");
    env.psql(SCHEMA);
    let registry = SchemaRegistry::start().expect("registry");
    let url = registry.url().to_owned();
    let converters: Vec<String> = ["key", "value"]
        .iter()
        .flat_map(|role| {
            [
                format!("{role}.converter=io.confluent.connect.avro.AvroConverter"),
                format!("{role}.converter.schema.registry.url={url}"),
            ]
        })
        .collect();
    let mut extra: Vec<&str> = converters.iter().map(String::as_str).collect();
    // pgseam's own headers off: no `pgseam.unavailable` either; the nulls stay.
    let lines = options(&["pgseam.position.headers=false"]);
    extra.extend(lines.iter().map(String::as_str));
    let (worker, connector) = env.write_configs("av", &[], &extra);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(STREAM);
    let decoding = Decoding::Avro {
        registry_url: url.clone(),
    };
    let records = read_topics_decoded(
        &env.broker.bootstrap_servers(),
        &["av.public.arr".to_owned()],
        8,
        Duration::from_secs(3),
        WAIT,
        &decoding,
    )
    .unwrap_or_else(|e| panic!("{e:#}\npgseam log:\n{}", pgseam.log_text()));
    assert_eq!(records.len(), 8);
    let find = |id: i64, op: &str| -> Value {
        records
            .iter()
            .filter_map(|r| r.value.as_ref())
            .find(|v| v["op"] == op && v["after"]["id"].as_i64() == Some(id))
            .unwrap_or_else(|| panic!("no {op} record of row {id} in {records:?}"))["after"]
            .clone()
    };
    let rows = expected_rows();
    for row in &rows {
        let id = row["id"].as_i64().unwrap();
        assert_eq!(find(id, "r"), *row, "snapshot row {id}");
        let mut copy = row.clone();
        copy["id"] = (id + 10).into();
        assert_eq!(find(id + 10, "c"), copy, "streamed copy of row {id}");
    }
    assert_eq!(find(4, "r")["bigm"][0][0], 9);
    assert_eq!(
        find(4, "u"),
        json!({"id":4,"note":"u","m":null,"t":null,"d1":null,"big":null,
            "bign":placeholder_bytes(),"bigm":null,
            "bigt":["__debezium_unavailable_value"],"bigu":null})
    );
    for rec in &records {
        assert!(
            rec.headers.iter().all(|(k, _)| !k.starts_with("pgseam.")),
            "{:?}",
            rec.headers
        );
    }
    // The Avro schema registered for the value: `m` an optional array of optional arrays of
    // optional ints.
    let ids = registry.subjects();
    let id = ids
        .get("av.public.arr-value")
        .and_then(|v| v.last())
        .unwrap_or_else(|| panic!("no value subject in {ids:?}"));
    let schema = registry.schema(*id).expect("the value schema by id");
    let schema: Value = serde_json::from_str(&schema).expect("schema JSON");
    let value_record = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        // `before` defines the row record; `after` names it.
        .find(|f| f["name"] == "before")
        .expect("before")["type"][1]
        .clone();
    let m = value_record["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no row record in {schema}"))
        .iter()
        .find(|f| f["name"] == "m")
        .expect("m")
        .clone();
    assert_eq!(
        m["type"],
        json!(["null",{"type":"array","items":["null",{"type":"array","items":["null","int"]}]}]),
        "{m}"
    );
}
