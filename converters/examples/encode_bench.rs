//! Encode rate of the converters for the issue-10 benchmark row (`bigint` key, three `int4`,
//! a ~50-character `text`, `timestamptz`, `numeric(12,2)`), single-threaded, in events/s.
//!
//! `cargo run --release -p pgseam-converters --example encode_bench [events]`
//! (`bench/encode.sh` runs it). One event is one `convert` call producing one record (key and
//! value bytes); the records are dropped, as a producer would take them. The Avro run uses
//! `AvroConverter` with key and value Avro and an in-memory registry (registration happens
//! once, in the warm-up, as with a real registry).

use std::sync::Arc;
use std::time::Instant;

use pgseam_converters::avro::registry::{RegistryError, SchemaRegistry};
use pgseam_converters::{
    AvroConverter, AvroConverterConfig, Converter, JsonConverter, JsonConverterConfig,
};
use pgseam_model::{
    ChangeEvent, ColumnSchema, Lsn, Numeric, Operation, Position, SnapshotMarker, SourceInfo,
    TableSchema, Value,
};

fn column(name: &str, ty: &str, typmod: i32, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_oid: 0,
        type_name: ty.into(),
        base_type_oid: 0,
        type_modifier: typmod,
        nullable,
        default_expr: None,
        enum_values: None,
        dimensions: 0,
    }
}

fn table() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        relation_id: 16_384,
        schema: "public".into(),
        table: "bench".into(),
        columns: vec![
            column("id", "int8", -1, false),
            column("a", "int4", -1, true),
            column("b", "int4", -1, true),
            column("c", "int4", -1, true),
            column("note", "text", -1, true),
            column("created_at", "timestamptz", -1, true),
            // numeric(12,2): typmod = (12 << 16 | 2) + 4.
            column("amount", "numeric", ((12 << 16) | 2) + 4, true),
        ],
        key_columns: vec![0],
    })
}

fn event(table: &Arc<TableSchema>, i: i64) -> ChangeEvent {
    ChangeEvent {
        table: Arc::clone(table),
        op: Operation::Create,
        before: None,
        after: Some(vec![
            Value::Int64(i),
            Value::Int32((i % 1000) as i32),
            Value::Int32((i % 77) as i32),
            Value::Int32(-((i % 13) as i32)),
            Value::Text(format!("benchmark row {i:>12} with some text padding...")),
            Value::TimestampTz(1_709_208_855_123_456 + i),
            Value::Numeric(Numeric::Finite(format!("{}.{:02}", i % 1_000_000, i % 100))),
        ]),
        source: SourceInfo {
            ts_us: 1_709_208_855_123_456,
            snapshot: SnapshotMarker::False,
            db: "bench".into(),
            schema: "public".into(),
            table: "bench".into(),
            tx_id: Some(1234),
            lsn: Some(Lsn(0x1_6000_0000 + i as u64)),
            last_commit_lsn: Some(Lsn(0x1_5000_0000)),
        },
        position: Position::Stream {
            lsn: Lsn(1),
            commit_lsn: Lsn(1),
            tx_id: 1234,
            commit_ts_us: 0,
        },
        key_change: None,
    }
}

/// A registry answering every registration with id 1 (nothing is decoded here).
#[derive(Debug)]
struct NoRegistry;

impl SchemaRegistry for NoRegistry {
    fn register(&self, _subject: &str, _schema: &str) -> Result<u32, RegistryError> {
        Ok(1)
    }
}

fn run(label: &str, mut conv: Converter, events: &[ChangeEvent]) {
    let mut out = Vec::with_capacity(2);
    let mut bytes = 0usize;
    // Warm-up: schema cache, allocator.
    for e in events.iter().take(1000) {
        out.clear();
        conv.convert(e, 1, &mut out).expect("convert");
    }
    let start = Instant::now();
    for e in events {
        out.clear();
        conv.convert(e, 1_709_208_855_999_000_000, &mut out)
            .expect("convert");
        bytes += out
            .iter()
            .map(|r| r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = events.len() as f64;
    println!(
        "{label:<22} {:>10.0} events/s/core  {:>7.1} MB/s  {:>5.0} bytes/event",
        n / secs,
        bytes as f64 / secs / 1e6,
        bytes as f64 / n
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let t = table();
    let events: Vec<ChangeEvent> = (0..n as i64).map(|i| event(&t, i)).collect();
    let base = || JsonConverterConfig {
        run_id: Some("bench".into()),
        ..JsonConverterConfig::new("bench")
    };
    let json = |cfg| Converter::Json(JsonConverter::new(cfg));
    run(
        "json schemaless",
        json(JsonConverterConfig {
            key_schemas_enable: false,
            value_schemas_enable: false,
            ..base()
        }),
        &events,
    );
    run("json with schema", json(base()), &events);
    let avro = AvroConverter::new(
        AvroConverterConfig {
            json: base(),
            key_avro: true,
            value_avro: true,
        },
        Box::new(NoRegistry),
    );
    run("avro", Converter::Avro(Box::new(avro)), &events);
}
