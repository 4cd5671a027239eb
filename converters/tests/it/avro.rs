//! Avro against the golden scenarios: every golden line's event is converted with the
//! `AvroConverter`, its schemas registered with the Schema Registry stand-in over HTTP, and
//! the framed key and value decoded with apache-avro using the schema fetched back by id. The
//! decoded record is turned into JSON by a mapping independent of the converter (Avro union →
//! its branch, record → object, bytes/decimal → base64, non-finite floats → their Connect
//! strings) and compared field by field with the payload of the golden line, which is real
//! Debezium output. Processing timestamps and the other fields `golden-diff.py` masks are
//! masked here too.
//!
//! Every framed datum is also compared with the **former encoder** (kept here as the oracle):
//! the payload parsed as a JSON tree, mapped to an apache-avro value by the Connect schema as
//! `AvroData.fromConnectData` does, and written by apache-avro's `GenericDatumWriter` with the
//! registered schema. The bytes must be equal (for schemas with a map, whose apache-avro
//! order is a `HashMap`'s, the decoded values must be).
//!
//! The registered schema of one table is also compared with the form written out by hand
//! from `AvroData.fromConnectSchema` (confluentinc/schema-registry) and Avro's
//! `Schema.toString()`.

use crate::common;

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use common::registry::{avro_with_registry, column, first_value, stream_event, table};
use common::*;
use pgseam_converters::avro::registry::{unframe, HttpSchemaRegistry};
use pgseam_converters::{
    AvroConverter, AvroConverterConfig, BinaryHandlingMode, DecimalHandlingMode,
    HstoreHandlingMode, IntervalHandlingMode, JsonConverter, JsonConverterConfig,
    TimePrecisionMode,
};
use pgseam_testkit::SchemaRegistry;
use serde_json::Value as Json;

/// Decoded Avro → the JSON Kafka Connect's JsonConverter would write for the same value.
fn to_json(v: &Avro) -> Json {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    let float = |f: f64, text: String| {
        if f.is_nan() {
            Json::String("NaN".into())
        } else if f.is_infinite() {
            Json::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
        } else {
            Json::from(text.parse::<f64>().unwrap())
        }
    };
    match v {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => Json::Bool(*b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => Json::from(*i),
        Avro::Long(i) | Avro::TimestampMillis(i) => Json::from(*i),
        // The f32's shortest text, so the comparison is at f32 precision.
        Avro::Float(f) => float(f64::from(*f), f.to_string()),
        Avro::Double(f) => float(*f, f.to_string()),
        Avro::Bytes(b) => b64(b),
        Avro::Decimal(d) => b64(&<Vec<u8>>::try_from(d).unwrap()),
        Avro::String(s) => Json::String(s.clone()),
        Avro::Union(_, inner) => to_json(inner),
        Avro::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Avro::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Avro::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected Avro value {other:?}"),
    }
}

/// The former Avro encoder, as the oracle of the one-pass encoder: `json` (a JsonConverter
/// payload) → apache-avro value by the Connect schema `schema` (JsonConverter's schema JSON),
/// as `AvroData.fromConnectData` maps it.
fn reference_datum(schema: &Json, json: &Json) -> Result<Avro, String> {
    let optional = schema["optional"].as_bool().unwrap_or(false);
    if !optional {
        return reference_required(schema, json);
    }
    let value_first = !schema["default"].is_null() && schema["type"] != "struct";
    let (value_branch, null_branch) = if value_first { (0, 1) } else { (1, 0) };
    Ok(if json.is_null() {
        Avro::Union(null_branch, Box::new(Avro::Null))
    } else {
        Avro::Union(value_branch, Box::new(reference_required(schema, json)?))
    })
}

fn reference_required(schema: &Json, json: &Json) -> Result<Avro, String> {
    let bad = || format!("{json} does not fit {schema}");
    let name = schema["name"].as_str().unwrap_or("");
    let float = |j: &Json| match j {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    };
    Ok(match schema["type"].as_str().ok_or_else(bad)? {
        "int8" | "int16" | "int32" => {
            let v = json
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(bad)?;
            match name {
                "org.apache.kafka.connect.data.Date" => Avro::Date(v),
                "org.apache.kafka.connect.data.Time" => Avro::TimeMillis(v),
                _ => Avro::Int(v),
            }
        }
        "int64" => {
            let v = json.as_i64().ok_or_else(bad)?;
            if name == "org.apache.kafka.connect.data.Timestamp" {
                Avro::TimestampMillis(v)
            } else {
                Avro::Long(v)
            }
        }
        "float" => Avro::Float(float(json).ok_or_else(bad)? as f32),
        "double" => Avro::Double(float(json).ok_or_else(bad)?),
        "boolean" => Avro::Boolean(json.as_bool().ok_or_else(bad)?),
        "string" => Avro::String(json.as_str().ok_or_else(bad)?.to_owned()),
        "bytes" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(json.as_str().ok_or_else(bad)?)
                .map_err(|_| bad())?;
            if name == "org.apache.kafka.connect.data.Decimal" {
                Avro::Decimal(apache_avro::Decimal::from(bytes))
            } else {
                Avro::Bytes(bytes)
            }
        }
        "array" => Avro::Array(
            json.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|i| reference_datum(&schema["items"], i))
                .collect::<Result<_, _>>()?,
        ),
        "map" => Avro::Map(
            json.as_object()
                .ok_or_else(bad)?
                .iter()
                .map(|(k, v)| Ok((k.clone(), reference_datum(&schema["values"], v)?)))
                .collect::<Result<_, String>>()?,
        ),
        "struct" => {
            let obj = json.as_object().ok_or_else(bad)?;
            let mut fields = Vec::new();
            for f in schema["fields"].as_array().ok_or_else(bad)? {
                let fname = f["field"].as_str().ok_or_else(bad)?;
                let v = obj.get(fname).unwrap_or(&Json::Null);
                fields.push((fname.to_owned(), reference_datum(f, v)?));
            }
            Avro::Record(fields)
        }
        _ => return Err(bad()),
    })
}

/// `payload` with every `\\uXXXX` escape of an unpaired surrogate replaced by `?` (the former
/// encoder's step before parsing).
fn lone_surrogates_as_question_marks(payload: &[u8]) -> Vec<u8> {
    let unit = |at: usize| -> Option<u16> {
        let hex = payload.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut out = Vec::with_capacity(payload.len());
    let mut i = 0;
    while i < payload.len() {
        if payload[i] != b'\\' {
            out.push(payload[i]);
            i += 1;
            continue;
        }
        match unit(i) {
            Some(0xD800..=0xDBFF) => match unit(i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    out.extend_from_slice(&payload[i..i + 12]);
                    i += 12;
                }
                _ => {
                    out.push(b'?');
                    i += 6;
                }
            },
            Some(0xDC00..=0xDFFF) => {
                out.push(b'?');
                i += 6;
            }
            _ => {
                let len = if payload.get(i + 1) == Some(&b'u') {
                    6
                } else {
                    2
                };
                let end = (i + len).min(payload.len());
                out.extend_from_slice(&payload[i..end]);
                i = end;
            }
        }
    }
    out
}

/// Checks one framed part against the former encoder: `with_schema` is the same part as
/// JsonConverter writes it with schemas (`{"schema":..,"payload":..}`).
fn check_against_reference(
    registry: &SchemaRegistry,
    framed: &[u8],
    with_schema: &[u8],
) -> Result<(), String> {
    let (id, datum) = unframe(framed).ok_or("no Confluent framing")?;
    let text = registry.schema(id).ok_or("unregistered id")?;
    let avro_schema = apache_avro::Schema::parse_str(&text).map_err(|e| e.to_string())?;
    // The former encoder's handling of a string cut inside a surrogate pair: the unpaired
    // half becomes `?` (what Java's UTF-8 encoder writes).
    let json: Json = match serde_json::from_slice(with_schema) {
        Ok(json) => json,
        Err(_) => serde_json::from_slice(&lone_surrogates_as_question_marks(with_schema))
            .map_err(|e| e.to_string())?,
    };
    let value = reference_datum(&json["schema"], &json["payload"])?;
    let reference = apache_avro::writer::datum::GenericDatumWriter::builder(&avro_schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| e.to_string())?;
    if reference == datum {
        return Ok(());
    }
    if json["schema"].to_string().contains(r#""type":"map""#) {
        let read = |mut b: &[u8]| {
            apache_avro::reader::datum::GenericDatumReader::builder(&avro_schema)
                .build()
                .and_then(|r| r.read_value(&mut b))
                .map_err(|e| e.to_string())
        };
        if read(&reference)? == read(datum)? {
            return Ok(());
        }
    }
    Err(format!(
        "one-pass datum {datum:02x?} != former encoder's {reference:02x?}"
    ))
}

/// Masks what golden-diff.py masks.
fn mask(v: &mut Json) {
    if let Json::Object(m) = v {
        for (k, x) in m.iter_mut() {
            if ["ts_ms", "ts_us", "ts_ns", "txId", "lsn", "xmin", "sequence"].contains(&k.as_str())
                && !x.is_null()
            {
                *x = Json::String(format!("<{k}>"));
            } else {
                mask(x);
            }
        }
    }
}

/// Floats compared as numbers (`1.0E10` and `1e10` are the same value).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// Decodes a framed record part with the schema the registry holds for its id.
fn decode(registry: &SchemaRegistry, bytes: &[u8]) -> (u32, Json) {
    let (id, mut datum) = unframe(bytes).expect("Confluent framing");
    let text = registry.schema(id).expect("registered schema");
    let schema = apache_avro::Schema::parse_str(&text).unwrap();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap();
    let value = reader.read_value(&mut datum).unwrap();
    assert!(datum.is_empty(), "trailing bytes after the datum");
    (id, to_json(&value))
}

struct Case {
    file: &'static str,
    cfg: JsonConverterConfig,
    state: &'static str,
    stream: Option<&'static str>,
}

fn case(
    file: &'static str,
    state: &'static str,
    stream: Option<&'static str>,
    f: fn(&mut JsonConverterConfig),
) -> Case {
    let mut cfg = JsonConverterConfig::new("dbz");
    f(&mut cfg);
    Case {
        file,
        cfg,
        state,
        stream,
    }
}

/// Runs the cases; returns (lines compared, failures).
fn check(cases: &[Case]) -> usize {
    if !golden_dir().is_dir() {
        eprintln!(
            "golden directory {} not found; skipping",
            golden_dir().display()
        );
        return 0;
    }
    let catalog = load_catalog(&FixtureSet::Reference.catalog());
    let registry = SchemaRegistry::start().unwrap();
    let mut failures = Vec::new();
    let mut total = 0;
    let mut against_reference = 0;
    for c in cases {
        let mut json = JsonConverter::new(c.cfg.clone());
        // The same records with their Connect schemas, for the former encoder.
        let mut with_schemas = JsonConverter::new(JsonConverterConfig {
            key_schemas_enable: true,
            value_schemas_enable: true,
            decimal_format: pgseam_converters::DecimalFormat::Base64,
            ..c.cfg.clone()
        });
        let mut avro = AvroConverter::new(
            AvroConverterConfig {
                json: c.cfg.clone(),
                key_avro: true,
                value_avro: true,
            },
            Box::new(HttpSchemaRegistry::new(registry.url(), None)),
        );
        let mut events = EventSource::new(FixtureSet::Reference, c.file, c.state, c.stream);
        let mut pending_tombstone = None;
        let text = std::fs::read_to_string(golden_dir().join(c.file)).unwrap();
        let mut compared = 0;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", c.file, n + 1);
            let golden: Json = serde_json::from_str(line).unwrap();
            let destination = golden["destination"].as_str().unwrap();
            let table = catalog.tables[destination.rsplit('.').next().unwrap()].clone();
            let members = top_level_members(line);
            let gkey = members.iter().find(|(k, _)| k == "key").unwrap().1;
            let record = if golden["value"].is_null() {
                match pending_tombstone.take() {
                    Some(t) => t,
                    None => {
                        failures.push(format!("{at}: golden tombstone, none made"));
                        continue;
                    }
                }
            } else {
                let payload = &golden["value"]["payload"];
                let event = match events.event(&mut json, &table, gkey, payload) {
                    Ok(e) => e.event,
                    Err(e) => {
                        failures.push(format!("{at}: {e}"));
                        continue;
                    }
                };
                let mut out = Vec::new();
                if let Err(e) = avro.convert(&event, 1_795_492_539_760_865_102, &mut out) {
                    failures.push(format!("{at}: {e}"));
                    continue;
                }
                let mut reference = Vec::new();
                with_schemas
                    .convert(&event, 1_795_492_539_760_865_102, &mut reference)
                    .unwrap();
                for (part, framed, plain) in [
                    ("key", &out[0].key, &reference[0].key),
                    ("value", &out[0].value, &reference[0].value),
                ] {
                    if let (Some(framed), Some(plain)) = (framed, plain) {
                        match check_against_reference(&registry, framed, plain) {
                            Ok(()) => against_reference += 1,
                            Err(e) => failures.push(format!("{at}: {part}: {e}")),
                        }
                    }
                }
                let mut out = out.into_iter();
                let first = out.next().unwrap();
                pending_tombstone = out.next();
                first
            };
            assert_eq!(&*record.topic, destination, "{at}");
            // Key.
            match (&record.key, golden["key"].is_null()) {
                (None, true) => {}
                (Some(k), false) => {
                    let (id, decoded) = decode(&registry, k);
                    let subjects = registry.subjects();
                    assert!(
                        subjects[&format!("{destination}-key")].contains(&id),
                        "{at}"
                    );
                    if !same(&decoded, &golden["key"]["payload"]) {
                        failures.push(format!(
                            "{at}: key {decoded} != golden {}",
                            golden["key"]["payload"]
                        ));
                    }
                }
                (k, _) => failures.push(format!("{at}: key presence differs: {k:?}")),
            }
            // Value.
            match (&record.value, golden["value"].is_null()) {
                (None, true) => {}
                (Some(v), false) => {
                    let (id, mut decoded) = decode(&registry, v);
                    assert!(registry.subjects()[&format!("{destination}-value")].contains(&id));
                    let mut expected = golden["value"]["payload"].clone();
                    mask(&mut decoded);
                    mask(&mut expected);
                    // The one deliberate difference of the JSON path (BC dates in snapshot
                    // rows, COMPATIBILITY.md) holds for Avro too.
                    for row in ["after", "before"] {
                        if let (Some(e), Some(d)) = (
                            expected.get_mut(row).and_then(|r| r.get_mut("c_date")),
                            decoded.get(row).and_then(|r| r.get("c_date")),
                        ) {
                            let known = [(1001860, -2440550)];
                            if known.iter().any(|(dbz, ours)| *e == *dbz && *d == *ours) {
                                *e = d.clone();
                            }
                        }
                        if let (Some(e), Some(d)) = (
                            expected.get_mut(row).and_then(|r| r.get_mut("c_date")),
                            decoded.get(row).and_then(|r| r.get("c_date")),
                        ) {
                            if *e == "4713-01-01Z" && *d == "-4712-01-01Z" {
                                *e = d.clone();
                            }
                        }
                    }
                    if !same(&decoded, &expected) {
                        let fields = |j: &Json| -> HashMap<String, Json> {
                            let mut m = HashMap::new();
                            for row in ["before", "after", "source"] {
                                if let Some(Json::Object(o)) = j.get(row) {
                                    for (k, v) in o {
                                        m.insert(format!("{row}.{k}"), v.clone());
                                    }
                                }
                            }
                            m
                        };
                        let (d, e) = (fields(&decoded), fields(&expected));
                        let diffs: Vec<String> = e
                            .iter()
                            .filter(|(k, v)| !d.get(*k).is_some_and(|x| same(x, v)))
                            .map(|(k, v)| format!("{k}: golden {v}, avro {:?}", d.get(k)))
                            .collect();
                        failures.push(format!("{at}: value differs: {diffs:?}"));
                    }
                }
                (v, _) => failures.push(format!("{at}: value presence differs: {v:?}")),
            }
            compared += 1;
        }
        eprintln!("{}: {compared} lines decoded and compared", c.file);
        total += compared;
    }
    eprintln!("{against_reference} keys and values equal to the former encoder's bytes");
    assert!(
        failures.is_empty(),
        "{} differences:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    total
}

#[test]
fn avro_records_decode_to_the_golden_payloads() {
    let n = check(&[
        case("01_snapshot.jsonl", "snapshot", Some("01_snapshot"), |_| {}),
        case("02_insert.jsonl", "final", Some("02_insert"), |_| {}),
        case("03_update.jsonl", "final", Some("03_update"), |_| {}),
        case("05_delete.jsonl", "final", Some("05_delete"), |_| {}),
    ]);
    assert!(n == 0 || n > 60, "{n} lines");
}

#[test]
fn avro_handling_modes_decode_to_the_golden_payloads() {
    check(&[
        case("variant_decimal_string.jsonl", "final", None, |c| {
            c.modes.decimal = DecimalHandlingMode::String
        }),
        case("variant_decimal_double.jsonl", "final", None, |c| {
            c.modes.decimal = DecimalHandlingMode::Double
        }),
        // AvroConverter's ignore.default.for.nullables=true is JsonConverter's
        // replace.null.with.default=false.
        case(
            "variant_jsonconv_no_null_default.jsonl",
            "final",
            None,
            |c| c.replace_null_with_default = false,
        ),
        case("variant_time_connect.jsonl", "final", None, |c| {
            c.modes.time_precision = TimePrecisionMode::Connect
        }),
        case("variant_time_adaptive_us.jsonl", "final", None, |c| {
            c.modes.time_precision = TimePrecisionMode::AdaptiveTimeMicroseconds
        }),
        case("variant_time_isostring.jsonl", "final", None, |c| {
            c.modes.time_precision = TimePrecisionMode::IsoString
        }),
        case("variant_time_micro.jsonl", "final", None, |c| {
            c.modes.time_precision = TimePrecisionMode::Microseconds
        }),
        case("variant_time_nano.jsonl", "final", None, |c| {
            c.modes.time_precision = TimePrecisionMode::Nanoseconds
        }),
        case("variant_binary_hex.jsonl", "final", None, |c| {
            c.modes.binary = BinaryHandlingMode::Hex
        }),
        case("variant_binary_base64.jsonl", "final", None, |c| {
            c.modes.binary = BinaryHandlingMode::Base64
        }),
        case("variant_hstore_map.jsonl", "final", None, |c| {
            c.modes.hstore = HstoreHandlingMode::Map
        }),
        case("variant_interval_string.jsonl", "final", None, |c| {
            c.modes.interval = IntervalHandlingMode::String
        }),
        case("variant_unknown_types.jsonl", "final", None, |c| {
            c.modes.include_unknown_datatypes = true
        }),
    ]);
}

/// `dbz.public.composite` (a int4 NOT NULL, b text NOT NULL, c int4; primary key (a, b)), as
/// AvroData maps Debezium's Connect schemas and Avro's `Schema.toString()` writes them.
const COMPOSITE_KEY: &str = r#"{"type":"record","name":"Key","namespace":"dbz.public.composite","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}],"connect.name":"dbz.public.composite.Key"}"#;
const COMPOSITE_VALUE: &str = r#"{"type":"record","name":"Envelope","namespace":"dbz.public.composite","fields":[{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"},{"name":"c","type":["null","int"],"default":null}],"connect.name":"dbz.public.composite.Value"}],"default":null},{"name":"after","type":["null","Value"],"default":null},{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[{"name":"version","type":"string"},{"name":"connector","type":"string"},{"name":"name","type":"string"},{"name":"ts_ms","type":"long"},{"name":"snapshot","type":[{"type":"string","connect.version":1,"connect.parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"connect.default":"false","connect.name":"io.debezium.data.Enum"},"null"],"default":"false"},{"name":"db","type":"string"},{"name":"sequence","type":["null","string"],"default":null},{"name":"ts_us","type":["null","long"],"default":null},{"name":"ts_ns","type":["null","long"],"default":null},{"name":"schema","type":"string"},{"name":"table","type":"string"},{"name":"txId","type":["null","long"],"default":null},{"name":"lsn","type":["null","long"],"default":null},{"name":"xmin","type":["null","long"],"default":null},{"name":"origin","type":["null","string"],"default":null},{"name":"origin_lsn","type":["null","long"],"default":null}],"connect.version":1,"connect.name":"io.debezium.connector.postgresql.Source"}},{"name":"transaction","type":["null",{"type":"record","name":"block","namespace":"event","fields":[{"name":"id","type":"string"},{"name":"total_order","type":"long"},{"name":"data_collection_order","type":"long"}],"connect.version":1,"connect.name":"event.block"}],"default":null},{"name":"op","type":"string"},{"name":"ts_ms","type":["null","long"],"default":null},{"name":"ts_us","type":["null","long"],"default":null},{"name":"ts_ns","type":["null","long"],"default":null}],"connect.version":2,"connect.name":"dbz.public.composite.Envelope"}"#;

#[test]
fn registered_schemas_are_what_avro_data_produces() {
    let catalog = load_catalog(&FixtureSet::Reference.catalog());
    let (registry, mut avro) = avro_with_registry(JsonConverterConfig::new("dbz"));
    let table = catalog.tables["composite"].clone();
    let row = vec![
        pgseam_model::Value::Int32(1),
        pgseam_model::Value::Text("x".into()),
        pgseam_model::Value::Null,
    ];
    let source = pgseam_model::SourceInfo {
        ts_us: 1,
        snapshot: pgseam_model::SnapshotMarker::True,
        db: "peer".into(),
        schema: "public".into(),
        table: "composite".into(),
        tx_id: None,
        lsn: None,
        last_commit_lsn: None,
    };
    let ev = snapshot_event(&table, row, source);
    let mut out = Vec::new();
    avro.convert(&ev, 0, &mut out).unwrap();
    assert!(!avro.needs_registry(&table));
    let requests = registry.requests();
    avro.convert(&ev, 0, &mut out).unwrap();
    assert_eq!(
        registry.requests(),
        requests,
        "registered once per table version"
    );
    let subjects = registry.subjects();
    let key_id = subjects["dbz.public.composite-key"][0];
    let value_id = subjects["dbz.public.composite-value"][0];
    assert_eq!(registry.schema(key_id).unwrap(), COMPOSITE_KEY);
    assert_eq!(registry.schema(value_id).unwrap(), COMPOSITE_VALUE);
    assert_eq!(unframe(out[0].key.as_ref().unwrap()).unwrap().0, key_id);

    // A schema change (a new column) registers a new version under the same subjects.
    let mut changed = (*table).clone();
    let mut d = changed.columns[2].clone();
    d.name = "d".into();
    changed.columns.push(d);
    let changed = std::sync::Arc::new(changed);
    assert!(avro.needs_registry(&changed));
    let mut ev2 = ev.clone();
    ev2.table = changed.clone();
    ev2.after
        .as_mut()
        .unwrap()
        .push(pgseam_model::Value::Int32(7));
    out.clear();
    avro.convert(&ev2, 0, &mut out).unwrap();
    let subjects = registry.subjects();
    assert_eq!(subjects["dbz.public.composite-value"].len(), 2);
    assert_eq!(
        subjects["dbz.public.composite-key"],
        vec![key_id],
        "key unchanged"
    );
    let (id, decoded) = decode(&registry, out[0].value.as_ref().unwrap());
    assert_eq!(id, subjects["dbz.public.composite-value"][1]);
    assert_eq!(decoded["after"]["d"], 7);
}

/// Column shaping with Avro: masked, truncated (one cut inside a surrogate pair), hashed and
/// filtered columns, NOT NULL fallbacks and unchanged TOAST values, written by the direct
/// encoder, equal to the former encoder's bytes.
#[test]
fn column_shaping_with_avro_equals_the_former_encoder() {
    use pgseam_converters::columns::{
        ColumnFilter, ColumnMapper, ColumnShaping, HashAlgorithm, MapperRule,
    };
    use pgseam_model::{ColumnSchema, Operation, Value};
    use std::sync::Arc;
    let table = table(
        42,
        "shaped",
        vec![
            column("id", "int4"),
            column("secret", "text"),
            column("cut", "text"),
            ColumnSchema {
                nullable: false,
                ..column("hashed", "text")
            },
            column("gone", "text"),
            column("blob", "bytea"),
        ],
    );
    let rule = |p: &str, mapper| MapperRule {
        patterns: vec![regex::Regex::new(&format!("(?i)^(?:{p})$")).unwrap()],
        mapper,
    };
    let cfg = JsonConverterConfig {
        columns: Arc::new(ColumnShaping {
            filter: Some(ColumnFilter::Exclude(vec![regex::Regex::new(
                "(?i)^(?:public.shaped.gone)$",
            )
            .unwrap()])),
            mappers: vec![
                rule("public.shaped.secret", ColumnMapper::Mask(3)),
                rule("public.shaped.cut", ColumnMapper::Truncate(2)),
                rule(
                    "public.shaped.hashed",
                    ColumnMapper::Hash {
                        algorithm: HashAlgorithm::Sha256,
                        salt: "s".into(),
                        v2: true,
                    },
                ),
            ],
            key_columns: Vec::new(),
        }),
        run_id: Some("r".into()),
        ..JsonConverterConfig::new("dbz")
    };
    let (registry, mut avro) = avro_with_registry(cfg.clone());
    let mut with_schemas = JsonConverter::new(cfg);
    let event = |op, before, after| stream_event(&table, op, before, after);
    let row = |id: i32, cut: &str| {
        vec![
            Value::Int32(id),
            Value::Text("top secret".into()),
            Value::Text(cut.into()),
            Value::Text("h".into()),
            Value::Text("left out".into()),
            Value::Bytes(vec![0, 1, 2]),
        ]
    };
    let events = [
        event(Operation::Create, None, Some(row(1, "ab\u{e9}"))),
        // A cut inside a surrogate pair: Avro writes `?` for the dangling half.
        event(Operation::Create, None, Some(row(2, "a\u{1F600}b"))),
        event(
            Operation::Update,
            None,
            Some(vec![
                Value::Int32(3),
                Value::UnchangedToast,
                Value::UnchangedToast,
                Value::UnchangedToast,
                Value::Null,
                Value::UnchangedToast,
            ]),
        ),
        // The before image of a delete under the default replica identity: NOT NULL `hashed`
        // gets its fallback, which is then hashed.
        event(
            Operation::Delete,
            Some(vec![
                Value::Int32(4),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]),
            None,
        ),
    ];
    let compared: usize = events
        .iter()
        .map(|ev| compare_with_former_encoder(&registry, &mut avro, &mut with_schemas, ev))
        .sum();
    assert_eq!(compared, 9);
    // The dangling half of the emoji became `?`.
    let (_, decoded) = decode(&registry, &first_value(&mut avro, &events[1]));
    assert_eq!(decoded["after"]["cut"], "a?");
    assert_eq!(decoded["after"]["secret"], "***");
    assert!(decoded["after"].get("gone").is_none());
}

/// Converts `ev` with `avro` and with `with_schemas` (JSON with Connect schemas, the same
/// settings) and checks every framed key and value against the former encoder's bytes for the
/// JSON record; returns how many were compared.
fn compare_with_former_encoder(
    registry: &SchemaRegistry,
    avro: &mut AvroConverter,
    with_schemas: &mut JsonConverter,
    ev: &pgseam_model::ChangeEvent,
) -> usize {
    let (mut out, mut reference) = (Vec::new(), Vec::new());
    avro.convert(ev, 5, &mut out).unwrap();
    with_schemas.convert(ev, 5, &mut reference).unwrap();
    assert_eq!(out.len(), reference.len());
    let mut compared = 0;
    for (a, j) in out.iter().zip(&reference) {
        for (framed, plain) in [(&a.key, &j.key), (&a.value, &j.value)] {
            if let (Some(framed), Some(plain)) = (framed, plain) {
                if let Err(e) = check_against_reference(registry, framed, plain) {
                    panic!("{:?}: {e}", ev.op);
                }
                compared += 1;
            }
        }
    }
    compared
}

/// `bit(n)[]`, for which Debezium declares a non-array `Bits` schema and then fails the record
/// (so no golden exists): pgseam writes an array of `io.debezium.data.Bits` items (boolean
/// items for `bit(1)[]`), in JSON and in Avro. Unchanged TOAST placeholders of array and
/// `hstore` columns (JSON verified against `golden/types/toast_*`) go through Avro too.
#[test]
fn bit_arrays_and_toast_placeholders_in_json_and_avro() {
    use pgseam_model::{ChangeEvent, ColumnSchema, Operation, Value};
    let bits = |name: &str, type_modifier: i32| ColumnSchema {
        type_modifier,
        ..column(name, "_bit")
    };
    let table = table(
        43,
        "bitarr",
        vec![
            column("id", "int4"),
            bits("b8", 8),
            bits("b1", 1),
            column("a_i4", "_int4"),
            column("a_uuid", "_uuid"),
            column("a_t", "_text"),
            column("a_ci", "_citext"),
            column("h", "hstore"),
        ],
    );
    let cfg = JsonConverterConfig {
        run_id: Some("r".into()),
        ..JsonConverterConfig::new("dbz")
    };
    let (registry, mut avro) = avro_with_registry(cfg.clone());
    let mut with_schemas = JsonConverter::new(cfg);
    let event = |after| stream_event(&table, Operation::Update, None, Some(after));
    let text = |s: &str| Value::Text(s.into());
    let events = [
        event(vec![
            Value::Int32(1),
            Value::Array(vec![text("10100101"), Value::Null, text("00000001")]),
            Value::Array(vec![text("1"), text("0")]),
            Value::Array(vec![Value::Int32(5)]),
            Value::Array(vec![text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]),
            Value::Array(vec![text("x")]),
            Value::Array(vec![text("y")]),
            text("\"k\"=>\"v\""),
        ]),
        event(vec![
            Value::Int32(2),
            Value::UnchangedToast,
            Value::UnchangedToast,
            Value::UnchangedToast,
            Value::UnchangedToast,
            Value::UnchangedToast,
            Value::UnchangedToast,
            Value::UnchangedToast,
        ]),
    ];
    let mut json = |ev: &ChangeEvent| {
        let mut out = Vec::new();
        with_schemas.convert(ev, 5, &mut out).unwrap();
        let v: Json = serde_json::from_slice(out[0].value.as_ref().unwrap()).unwrap();
        v
    };
    let first = json(&events[0]);
    let fields = &first["schema"]["fields"][1]["fields"];
    assert_eq!(
        fields[1],
        serde_json::json!({"type":"array","items":{"type":"bytes","optional":true,
            "name":"io.debezium.data.Bits","version":1,"parameters":{"length":"8"}},
            "optional":true,"field":"b8"})
    );
    assert_eq!(
        fields[2],
        serde_json::json!({"type":"array","items":{"type":"boolean","optional":true},
            "optional":true,"field":"b1"})
    );
    assert_eq!(
        first["payload"]["after"]["b8"],
        serde_json::json!(["pQ==", null, "AQ=="])
    );
    assert_eq!(
        first["payload"]["after"]["b1"],
        serde_json::json!([true, false])
    );
    let placeholder = "__debezium_unavailable_value";
    let bytes: Vec<Json> = placeholder.bytes().map(Json::from).collect();
    let toast = json(&events[1]);
    assert_eq!(
        toast["payload"]["after"],
        serde_json::json!({"id":2,"b8":null,"b1":null,"a_i4":bytes,
            "a_uuid":["b68a35a7-17ad-35b3-af2a-ae46edb4545a"],"a_t":[placeholder],
            "a_ci":null,"h":format!("{{\"{placeholder}\":\"{placeholder}\"}}")})
    );
    let mut compared = 0;
    for (ev, expected) in events.iter().zip([&first, &toast]) {
        compared += compare_with_former_encoder(&registry, &mut avro, &mut with_schemas, ev);
        let (_, decoded) = decode(&registry, &first_value(&mut avro, ev));
        assert!(
            same(&decoded["after"], &expected["payload"]["after"]),
            "Avro {} != JSON {}",
            decoded["after"],
            expected["payload"]["after"]
        );
    }
    assert_eq!(compared, 4);
}
