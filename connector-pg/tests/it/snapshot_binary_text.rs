//! The snapshot reads binary COPY; the stream decodes text. For every type pgseam reads in
//! binary (and the types it casts to text), the snapshot engine's values must equal the text
//! decoder's values for the same datums: this test reads the same exported snapshot both ways,
//! against a real PostgreSQL, and compares row by row.

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use pgseam_connector_pg::catalog::{list_user_tables, load_table_schema, quote_identifier};
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::snapshot::{self, ChunkStrategy, SnapshotSettings};
use pgseam_connector_pg::{ConnectParams, SourceMessage};
use pgseam_model::{Row, TableSchema, Value};
use pgseam_testkit::Postgres;

use crate::common;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference/debezium/sql");

/// Edge values beyond the reference seed: numerics of every shape, float extremes, arrays of
/// every binary-read element type, multi-dimensional and offset arrays, BC and far-future dates,
/// bit strings, and types that are read through their text output (inet, ranges, composites,
/// "char").
const MORE_TYPES: &str = r#"
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN tags AS text[];
CREATE TABLE more_types (
  id serial PRIMARY KEY,
  n numeric, n52 numeric(5,2), f4 real, f8 float8, nm name, ch "char", o oid,
  ts timestamp, tstz timestamptz, d date, tz timetz, iv interval, b bytea, t text, bp char(5),
  a_num numeric[], a_f8 float8[], a_bool bool[], a_date date[], a_tstz timestamptz[], a_uuid uuid[],
  a_bytea bytea[], a_jsonb jsonb[], a_mood mood[], a_inet inet[], a_vc varchar(10)[], a_bp char(2)[],
  a_iv interval[], a_money money[], a_time time[], a_timetz timetz[], a_3d int4[], a_name name[],
  a_tags tags, r int4range, p pair, j json, jb jsonb, m money, u uuid, i8 int8[], i2 int2[]
);
INSERT INTO more_types (n, n52, f4, f8, nm, ch, o, ts, tstz, d, tz, iv, b, t, bp,
  a_num, a_f8, a_bool, a_date, a_tstz, a_uuid, a_bytea, a_jsonb, a_mood, a_inet, a_vc, a_bp, a_iv,
  a_money, a_time, a_timetz, a_3d, a_name, a_tags, r, p, j, jb, m, u, i8, i2) VALUES
 (0, 0, 1.17549435e-38, 5e-324, 'name', 'x', 4294967295, '4713-01-01 00:00:00 BC', '-infinity',
  '5874897-12-31', '12:00:00+05:30:15', '178000000 years', '\x', '', 'a',
  '{0,0.00,-0.5,NaN,Infinity,-Infinity,NULL}', '{NaN,-0,1e308,Infinity}', '{t,f,NULL}',
  '{infinity,-infinity,2000-01-01,0001-01-01 BC}', '{"2024-02-29 12:00:00+00",infinity}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"\\x00ff",NULL,"\\x"}', '{"{\"a\": 1}",null,"[]"}',
  '{sad,happy}', '{10.0.0.1,::1/128}', '{"a b","",NULL}', '{a,"b "}', '{"1 day","-00:00:01"}',
  '{1.23,-5}', '{24:00:00,00:00:00.000001}', '{12:00:00+14,00:00:00-14}', '{{{1,2},{3,4}},{{5,6},{7,8}}}',
  '{pg_catalog}', '{x,y}', '[1,10)', '(1,"a b")', '{ "a" :  1 }', '{"z": [1, {"y": null}], "a": "é"}',
  '-92233720368547758.08', 'ffffffff-ffff-ffff-ffff-000000000000', '{-9223372036854775808,9223372036854775807}',
  '{-32768,32767}'),
 (0.0001, -999.99, '-0', -0.0, '', '\001', 0, '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00',
  'infinity', '23:59:59.999999-15:59', '-2562047788:00:54.775807', decode(repeat('ab', 50000), 'hex'),
  repeat('é😀', 20000), 'abcde',
  '{0.00000000000000000001,100000000000000000000,99999999999999999999.9999,-123.4500,10000,1}',
  '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
  '{}', '{}', 'empty', NULL, '[]', '[]', '92233720368547758.07', '00000000-0000-0000-0000-000000000001',
  '[0:1]={7,8}', '{NULL}'),
 (123456789012345678901234567890.000000000000000000000000000001, 0.01, 3.4028235e38, 2.2250738585072014e-308,
  'longername', ' ', 1, '2000-01-01 00:00:00', '1999-12-31 23:59:59.999999+00', '2000-01-01', '00:00:00+00',
  '1 year -2 mons 3 days -04:05:06.000007', '\x00', E'tab\there\nnewline \\ backslash', NULL,
  '{1e-10}', '{0.1,0.2}', '{true}', '{1999-12-31}', '{"1970-01-01 00:00:00+00"}', '{}', '{"\\xdeadbeef"}',
  '{"\"str\""}', '{ok}', '{}', '{"x,y","{z}"}', '{"  "}', '{"-178000000 years"}', '{0}', '{13:14:15.123456}',
  '{13:14:15.123456+05:30}', '{}', '{"a b"}', '{"NULL"}', '(,5]', '(,)', 'null', '"str"', 0, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '{1}', '{}');
CREATE TABLE more_bits (
  id serial PRIMARY KEY, b1 bit(1), b9 bit(9), b64 bit(64), vb varbit, vb5 varbit(5),
  a_vb varbit[], a_b bit(3)[]
);
INSERT INTO more_bits (b1, b9, b64, vb, vb5, a_vb, a_b) VALUES
 (B'1', B'100000001', B'1000000000000000000000000000000000000000000000000000000000000001',
  B'', B'101', '{1,"",0101010101}', '{101,NULL,000}'),
 (B'0', B'000000000', B'0111111111111111111111111111111111111111111111111111111111111110',
  B'11111111111111111111111111111111111111111', B'0', '{}', '{}');
"#;

fn params(pg: &Postgres, db: &str) -> ConnectParams {
    ConnectParams {
        host: pg.host().to_owned(),
        port: pg.port(),
        user: pg.user().to_owned(),
        password: Some(pg.password().to_owned()),
        dbname: db.to_owned(),
        application_name: "snapshot-binary-text-test".into(),
        tls: Default::default(),
    }
}

/// Rows of one table through text COPY and the text decoder (the stream's decoding). A
/// partitioned table is read through its partitions, as the snapshot reads a captured root.
async fn text_rows(
    client: &tokio_postgres::Client,
    table: &TableSchema,
    partitioned: bool,
) -> Vec<Row> {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| quote_identifier(&c.name))
        .collect();
    let copy = format!(
        "COPY (SELECT {} FROM {}{}.{}) TO STDOUT",
        columns.join(", "),
        if partitioned { "" } else { "ONLY " },
        quote_identifier(&table.schema),
        quote_identifier(&table.table)
    );
    let stream = client.copy_out(copy.as_str()).await.expect("text COPY");
    futures_util::pin_mut!(stream);
    let mut buffer = BytesMut::new();
    while let Some(data) = stream.next().await {
        buffer.extend_from_slice(&data.expect("COPY data"));
    }
    let mut rows = Vec::new();
    while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
        let line = buffer.split_to(newline);
        buffer.advance(1);
        let fields = pgseam_pgvalue::split_copy_text_row(&line).expect("COPY text row");
        rows.push(
            table
                .columns
                .iter()
                .zip(fields)
                .map(|(column, field)| match field {
                    None => Value::Null,
                    Some(text) => pgseam_pgvalue::decode_text(column, &text)
                        .unwrap_or_else(|e| panic!("text decode of {}: {e}", column.name)),
                })
                .collect(),
        );
    }
    assert!(buffer.is_empty());
    rows
}

/// Rows compare by their `Debug` form, so NaN equals NaN and -0.0 differs from 0.0.
fn keyed(rows: Vec<Row>) -> Vec<String> {
    let mut rows: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_snapshot_values_equal_text_decoding_for_every_type() {
    let pg = Postgres::start().expect("postgres");
    let db = "types";
    pg.create_database(db).expect("database");
    let schema = std::fs::read_to_string(format!("{REFERENCE}/schema.sql")).expect("schema.sql");
    let seed = std::fs::read_to_string(format!("{REFERENCE}/seed.sql")).expect("seed.sql");
    pg.psql(db, &schema).expect("schema");
    pg.psql(db, &seed).expect("seed");
    pg.psql(db, MORE_TYPES).expect("more types");
    let params = params(&pg, db);

    let mut replication = ReplicationConnection::connect(&params)
        .await
        .expect("replication");
    let client = connect_query_session(&params).await.expect("session");
    let created = pgseam_connector_pg::slot::create_slot_exporting_snapshot(
        &mut replication,
        &client,
        "types_slot",
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("slot");

    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            created.snapshot_name
        ))
        .await
        .expect("import snapshot");
    let tables = list_user_tables(&client).await.expect("tables");
    let mut expected = std::collections::BTreeMap::new();
    for table in &tables {
        let schema = load_table_schema(&client, table.oid).await.expect("schema");
        expected.insert(
            table.qualified_name(),
            text_rows(&client, &schema, table.partitioned).await,
        );
    }

    // The engine: several readers, tiny chunks (ctid ranges), binary COPY.
    for strategy in [ChunkStrategy::Ctid, ChunkStrategy::Key] {
        let settings = SnapshotSettings {
            max_threads: 3,
            chunk_rows: 2,
            chunk_strategy: strategy,
            ..SnapshotSettings::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let run = {
            let params = params.clone();
            let tables = tables.clone();
            let created = created.clone();
            tokio::spawn(
                async move { snapshot::run(&params, &settings, &tables, &created, &tx).await },
            )
        };
        let mut got: std::collections::BTreeMap<String, Vec<Row>> = Default::default();
        let mut markers = Vec::new();
        while let Some(message) = rx.recv().await {
            if let SourceMessage::Event(event) = message {
                markers.push((event.table.qualified_name(), event.source.snapshot));
                got.entry(event.table.qualified_name())
                    .or_default()
                    .push(event.after.expect("row"));
            }
        }
        let emitted = run.await.expect("task").expect("snapshot");
        assert_eq!(emitted as usize, markers.len());
        for (table, rows) in &expected {
            let binary = got.remove(table).unwrap_or_default();
            assert_eq!(
                binary.len(),
                rows.len(),
                "{strategy:?}: row count of {table}"
            );
            let (text, binary) = (keyed(rows.clone()), keyed(binary));
            for (t, b) in text.iter().zip(&binary) {
                assert_eq!(t, b, "{strategy:?}: {table}: text vs binary");
            }
        }
        assert!(got.is_empty(), "unexpected tables {:?}", got.keys());
        common::check_markers(&markers);
    }
    drop(replication);
}
