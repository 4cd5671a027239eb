//! Golden tests: pgseam's converter output against real Debezium 3.6.3 output.
//!
//! For each line of the golden files in `reference/debezium/golden/`, this builds the
//! [`ChangeEvent`] Debezium saw — table schema from `fixtures/catalog.tsv`, row values decoded by
//! `pgseam-pgvalue` from PostgreSQL's own text (`fixtures/snapshot|final/*.copy` for snapshot
//! rows, `fixtures/stream/*.txt` test_decoding output for streamed changes; see
//! `fixtures/README.md`) — converts it, and compares key and value bytes with the golden line's
//! raw text, after masking exactly what `golden-diff.py` masks (ts_*, txId, lsn, xmin,
//! sequence, runId). The golden's op and snapshot marker are taken as inputs (the worker decides
//! them, not the converter). Known differences are listed in [`KNOWN_DIFFERENCES`]; any other
//! difference fails with a per-field diff.

use crate::common;

use common::{
    golden_dir, load_catalog, top_level_members, Catalog, EventSource, FixtureSet, GoldenEvent,
    KeyChangeRow, Masks,
};
use pgseam_converters::{
    BinaryHandlingMode, DecimalFormat, DecimalHandlingMode, HeaderFormat, HstoreHandlingMode,
    IntervalHandlingMode, JsonConverter, JsonConverterConfig, KafkaRecord, KeyChange,
    TimePrecisionMode,
};

/// Debezium behaviours pgseam deliberately does not reproduce: (field, Debezium's payload
/// value, pgseam's payload value, reason). A difference is accepted only when the expected and
/// actual texts of that field are exactly these.
const KNOWN_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "c_date",
        "\"4713-01-01Z\"",
        "\"-4712-01-01Z\"",
        "snapshot rows, time.precision.mode=isostring: Debezium's JDBC snapshot path drops the \
         BC era of '4713-01-01 BC' (ISO year -4712)",
    ),
    (
        "c_date",
        "1001860",
        "-2440550",
        "snapshot rows: Debezium's JDBC snapshot path drops the BC era of '4713-01-01 BC' \
     (Debezium's own streaming path writes -2440550, the correct day count)",
    ),
];
/// Replaces the known differences (only when both sides hold exactly the listed values).
fn apply_known_differences(expected: &mut String, actual: &mut String, notes: &mut Vec<String>) {
    for (field, dbz, ours, reason) in KNOWN_DIFFERENCES {
        let e = format!("\"{field}\":{dbz}");
        let a = format!("\"{field}\":{ours}");
        if expected.contains(&e) && actual.contains(&a) {
            let marker = format!("\"{field}\":<known difference>");
            *expected = expected.replace(&e, &marker);
            *actual = actual.replace(&a, &marker);
            notes.push(format!("{field}: {reason}"));
        }
    }
}

/// A readable description of where two texts first differ, naming the JSON field.
fn describe_diff(expected: &str, actual: &str) -> String {
    let p = expected
        .bytes()
        .zip(actual.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let field = expected[..p]
        .rfind("\":")
        .and_then(|end| {
            expected[..end]
                .rfind('"')
                .map(|start| &expected[start + 1..end])
        })
        .unwrap_or("?");
    let ctx = |s: &str| {
        let mut from = p.saturating_sub(100);
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (p + 120).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        s[from..to].to_owned()
    };
    format!(
        "first difference at byte {p}, in field {field:?}\n      expected: …{}…\n      actual  : …{}…",
        ctx(expected),
        ctx(actual)
    )
}

struct Run {
    file: &'static str,
    cfg: JsonConverterConfig,
    /// Table state for snapshot rows (`snapshot` or `final`).
    state: &'static str,
    /// Streaming scenario whose test_decoding output feeds the non-snapshot lines.
    stream: Option<&'static str>,
    /// Where the golden and its PostgreSQL-side fixtures are.
    set: FixtureSet,
    /// The golden's headers went through SimpleHeaderConverter (raw text), not JsonConverter.
    simple_headers: bool,
}

fn run(catalog: &Catalog, r: &Run) -> (usize, Vec<String>, Vec<String>) {
    let masks = Masks::new();
    // The goldens ran headers through JsonConverter (its schemas.enable follows
    // `converter.schemas.enable`), except the SimpleHeaderConverter captures.
    let mut conv = JsonConverter::new(JsonConverterConfig {
        header_format: if r.simple_headers {
            HeaderFormat::Simple
        } else {
            HeaderFormat::Json {
                schemas_enable: r.cfg.value_schemas_enable,
            }
        },
        ..r.cfg.clone()
    });
    let mut events = EventSource::new(r.set, r.file, r.state, r.stream);
    let mut pending_tombstone: Option<KafkaRecord> = None;
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let text = std::fs::read_to_string(r.set.golden(r.file)).expect("golden file");
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        let members = top_level_members(line);
        let get = |k: &str| {
            members
                .iter()
                .find(|(m, _)| m == k)
                .map(|(_, v)| *v)
                .unwrap()
        };
        let destination: String = serde_json::from_str(get("destination")).unwrap();
        let table_name = destination.rsplit('.').next().unwrap().to_owned();
        let Some(table) = catalog.tables.get(&table_name).cloned() else {
            failures.push(format!(
                "{}:{}: no catalog entry for {table_name}",
                r.file,
                n + 1
            ));
            continue;
        };
        let (gkey, gvalue, gheaders) = (get("key"), get("value"), get("headers"));
        let record = if gvalue == "null" {
            match pending_tombstone.take() {
                Some(t) => t,
                None => {
                    failures.push(format!(
                        "{}:{}: golden tombstone, pgseam made none",
                        r.file,
                        n + 1
                    ));
                    continue;
                }
            }
        } else {
            let v: serde_json::Value = serde_json::from_str(gvalue).unwrap();
            let payload = if r.cfg.value_schemas_enable {
                &v["payload"]
            } else {
                &v
            };
            let GoldenEvent { event, key_change } =
                match events.event(&mut conv, &table, gkey, payload) {
                    Ok(e) => e,
                    Err(e) => {
                        failures.push(format!("{}:{}: {e}", r.file, n + 1));
                        continue;
                    }
                };
            let mut out = Vec::new();
            let converted = match &key_change {
                None => conv.convert(&event, 1_795_492_539_760_865_102, &mut out),
                Some(k) => conv.convert_key_change(
                    &event,
                    match k {
                        KeyChangeRow::New(row) => KeyChange::NewKey(row),
                        KeyChangeRow::Old(row) => KeyChange::OldKey(row),
                    },
                    1_795_492_539_760_865_102,
                    &mut out,
                ),
            };
            if let Err(e) = converted {
                failures.push(format!("{}:{}: convert failed: {e}", r.file, n + 1));
                continue;
            }
            let mut out = out.into_iter();
            let first = out.next().unwrap();
            pending_tombstone = out.next();
            first
        };
        checked += 1;
        let text_of = |b: &Option<Vec<u8>>| {
            b.as_ref().map_or_else(
                || "null".to_owned(),
                |b| String::from_utf8(b.clone()).unwrap(),
            )
        };
        let headers_json = {
            let mut s = String::from("[");
            for (i, (k, v)) in record.headers.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                // DbzPeer splices each header's bytes verbatim.
                let v = String::from_utf8(v.clone()).unwrap();
                s.push_str(&format!(r#"{{"key":"{k}","value":{v}}}"#));
            }
            s.push(']');
            s
        };
        if *record.topic != *destination {
            failures.push(format!(
                "{}:{}: topic {} != {destination}",
                r.file,
                n + 1,
                record.topic
            ));
        }
        for (what, expected, actual) in [
            ("headers", gheaders.to_owned(), headers_json),
            ("key", gkey.to_owned(), text_of(&record.key)),
            ("value", gvalue.to_owned(), text_of(&record.value)),
        ] {
            let mut e = masks.apply(&expected);
            let mut a = masks.apply(&actual);
            apply_known_differences(&mut e, &mut a, &mut notes);
            if e != a {
                failures.push(format!(
                    "{}:{} ({table_name}) {what} differs: {}",
                    r.file,
                    n + 1,
                    describe_diff(&e, &a)
                ));
            }
        }
    }
    if pending_tombstone.is_some() {
        failures.push(format!(
            "{}: pgseam made a tombstone the golden does not have",
            r.file
        ));
    }
    (checked, failures, notes)
}

fn cfg(f: impl FnOnce(&mut JsonConverterConfig)) -> JsonConverterConfig {
    let mut c = JsonConverterConfig::new("dbz");
    f(&mut c);
    c
}

fn check(runs: &[Run]) {
    if !golden_dir().is_dir() {
        eprintln!(
            "golden directory {} not found; skipping",
            golden_dir().display()
        );
        return;
    }
    let mut all_failures = Vec::new();
    for r in runs {
        let catalog = load_catalog(&r.set.catalog());
        let (checked, failures, notes) = run(&catalog, r);
        let mut notes = notes;
        notes.sort();
        notes.dedup();
        eprintln!(
            "{}: {checked} lines compared, {} differing; known differences: {notes:?}",
            r.file,
            failures.len()
        );
        all_failures.extend(failures);
    }
    assert!(
        all_failures.is_empty(),
        "{} golden differences:\n  {}",
        all_failures.len(),
        all_failures.join("\n  ")
    );
}

#[test]
fn snapshot_matches_debezium() {
    check(&[Run {
        file: "01_snapshot.jsonl",
        cfg: cfg(|_| {}),
        state: "snapshot",
        stream: Some("01_snapshot"),
        set: FixtureSet::Reference,
        simple_headers: false,
    }]);
}

#[test]
fn streaming_inserts_updates_deletes_match_debezium() {
    check(&[
        Run {
            file: "02_insert.jsonl",
            cfg: cfg(|_| {}),
            state: "final",
            stream: Some("02_insert"),
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "03_update.jsonl",
            cfg: cfg(|_| {}),
            state: "final",
            stream: Some("03_update"),
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "04_update_pk.jsonl",
            cfg: cfg(|_| {}),
            state: "final",
            stream: Some("04_update_pk"),
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "05_delete.jsonl",
            cfg: cfg(|_| {}),
            state: "final",
            stream: Some("05_delete"),
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "10_noschema_stream.jsonl",
            cfg: cfg(|c| {
                c.key_schemas_enable = false;
                c.value_schemas_enable = false;
            }),
            state: "final",
            stream: Some("10_noschema_stream"),
            set: FixtureSet::Reference,
            simple_headers: false,
        },
    ]);
}

#[test]
fn snapshot_variants_match_debezium() {
    check(&[
        Run {
            file: "variant_noschema_all.jsonl",
            cfg: cfg(|c| {
                c.key_schemas_enable = false;
                c.value_schemas_enable = false;
            }),
            state: "final",
            stream: None,
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "variant_decimal_string.jsonl",
            cfg: cfg(|c| c.modes.decimal = DecimalHandlingMode::String),
            state: "final",
            stream: None,
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "variant_decimal_double.jsonl",
            cfg: cfg(|c| c.modes.decimal = DecimalHandlingMode::Double),
            state: "final",
            stream: None,
            set: FixtureSet::Reference,
            simple_headers: false,
        },
        Run {
            file: "variant_jsonconv_no_null_default.jsonl",
            cfg: cfg(|c| c.replace_null_with_default = false),
            state: "final",
            stream: None,
            set: FixtureSet::Reference,
            simple_headers: false,
        },
    ]);
}

#[test]
fn handling_mode_variants_match_debezium() {
    let variant = |file: &'static str, f: fn(&mut JsonConverterConfig)| Run {
        file,
        cfg: cfg(f),
        state: "final",
        stream: None,
        set: FixtureSet::Reference,
        simple_headers: false,
    };
    check(&[
        variant("variant_time_connect.jsonl", |c| {
            c.modes.time_precision = TimePrecisionMode::Connect
        }),
        variant("variant_time_adaptive_us.jsonl", |c| {
            c.modes.time_precision = TimePrecisionMode::AdaptiveTimeMicroseconds
        }),
        variant("variant_time_isostring.jsonl", |c| {
            c.modes.time_precision = TimePrecisionMode::IsoString
        }),
        variant("variant_time_micro.jsonl", |c| {
            c.modes.time_precision = TimePrecisionMode::Microseconds
        }),
        variant("variant_time_nano.jsonl", |c| {
            c.modes.time_precision = TimePrecisionMode::Nanoseconds
        }),
        variant("variant_binary_hex.jsonl", |c| {
            c.modes.binary = BinaryHandlingMode::Hex
        }),
        variant("variant_binary_base64.jsonl", |c| {
            c.modes.binary = BinaryHandlingMode::Base64
        }),
        variant("variant_hstore_map.jsonl", |c| {
            c.modes.hstore = HstoreHandlingMode::Map
        }),
        variant("variant_interval_string.jsonl", |c| {
            c.modes.interval = IntervalHandlingMode::String
        }),
        variant("variant_jsonconv_decimal_numeric.jsonl", |c| {
            c.decimal_format = DecimalFormat::Numeric
        }),
        variant("variant_unknown_types.jsonl", |c| {
            c.modes.include_unknown_datatypes = true
        }),
    ]);
}

/// NOT NULL columns without defaults: a DELETE's and a key change's before image under the
/// default replica identity carries the key and NULL for every other column, which Debezium
/// writes as the per-type fallback; plus the `__debezium.newkey` / `oldkey` headers.
#[test]
fn not_null_fallbacks_and_key_headers_match_debezium() {
    let nn = |file: &'static str, simple_headers: bool, f: fn(&mut JsonConverterConfig)| Run {
        file,
        cfg: cfg(f),
        state: "snapshot",
        stream: Some("nn"),
        set: FixtureSet::NotNull,
        simple_headers,
    };
    check(&[
        nn("schemas.jsonl", false, |_| {}),
        nn("noschema.jsonl", false, |c| {
            c.key_schemas_enable = false;
            c.value_schemas_enable = false;
        }),
        nn("simple_headers.jsonl", true, |_| {}),
        nn("modes_a.jsonl", false, |c| {
            c.decimal_format = DecimalFormat::Numeric;
            c.modes.time_precision = TimePrecisionMode::Connect;
            c.modes.binary = BinaryHandlingMode::Hex;
            c.modes.hstore = HstoreHandlingMode::Map;
            c.modes.interval = IntervalHandlingMode::String;
        }),
        nn("modes_b.jsonl", false, |c| {
            c.modes.decimal = DecimalHandlingMode::String;
            c.modes.time_precision = TimePrecisionMode::IsoString;
            c.modes.binary = BinaryHandlingMode::Base64;
        }),
        nn("modes_c.jsonl", false, |c| {
            c.modes.decimal = DecimalHandlingMode::Double;
            c.modes.time_precision = TimePrecisionMode::Microseconds;
            c.replace_null_with_default = false;
        }),
        nn("modes_d.jsonl", false, |c| {
            c.modes.time_precision = TimePrecisionMode::AdaptiveTimeMicroseconds;
            c.modes.binary = BinaryHandlingMode::Base64UrlSafe;
        }),
    ]);
}
