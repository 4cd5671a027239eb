//! Decoding of PostgreSQL values from their text output form into pgseam's typed [`Value`]s.
//!
//! What it does: turns the text PostgreSQL prints for a datum — what pgoutput sends in a `'t'`
//! tuple column, and what `COPY ... TO STDOUT` writes once its escapes are undone
//! ([`unescape_copy_text_field`], [`split_copy_text_row`]) — into a [`Value`], dispatching on
//! the column's type name (domains already resolved to their base type). The snapshot and the
//! stream therefore produce identical values for identical datums.
//!
//! It assumes the session settings the source connections use: `DateStyle=ISO, MDY`,
//! `IntervalStyle=postgres`, `TimeZone=UTC`, `extra_float_digits=1` (or higher),
//! `bytea_output=hex`, and `lc_monetary=C` for `money`.
//!
//! It also decodes the binary send form of the common types ([`decode_binary`], module
//! `binary`) and the framing of `COPY … TO STDOUT (FORMAT binary)` ([`BinaryCopyReader`]), with
//! the invariant that binary and text decoding of the same datum give the same [`Value`].
//!
//! What it does not do: any I/O, and
//! any decision about how Debezium renders a value (that is `pgseam-converters`). Types without
//! a typed [`Value`] variant (inet, cidr, macaddr, xml, point, hstore, enums, ranges, ...) are
//! returned as [`Value::Text`] unchanged.
//!
//! Multi-dimensional arrays decode to nested [`Value::Array`]s (`{{1,2},{3,4}}` → two arrays
//! of two items), from the text and the binary form alike; how they are rendered (Debezium
//! writes one null per outer element) is the converters' business.
//!
//! `timestamp`/`timestamptz` values later than i64 microseconds since 1970 can count (within
//! PostgreSQL's last year, 294276 AD) stay [`Value::Text`]; [`datetime::parse_timestamp`]
//! re-parses them as `i128`.

mod binary;
mod copy;
mod copy_binary;
pub mod datetime;

use pgseam_model::{ColumnSchema, Numeric, Value};

pub use binary::{binary_supported, decode_binary, decode_binary_as, BinaryKind};
pub use copy::{split_copy_text_row, unescape_copy_text_field};
pub use copy_binary::{BinaryCopyError, BinaryCopyReader, BinaryCopyRow};

/// Longest prefix of the offending text an error carries.
const ERROR_TEXT_LIMIT: usize = 64;

/// A column's text could not be decoded as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("column {column:?} of type {type_name}: cannot decode {text:?}")]
    Invalid {
        column: String,
        type_name: String,
        text: String,
    },
    #[error("column {column:?} of type {type_name}: malformed binary value: {reason}")]
    InvalidBinary {
        column: String,
        type_name: String,
        reason: String,
    },
    #[error("column {column:?} of type {type_name}: value is not valid UTF-8")]
    NotUtf8 { column: String, type_name: String },
}

impl ValueError {
    fn invalid(column: &ColumnSchema, type_name: &str, text: &str) -> Self {
        let mut end = text.len().min(ERROR_TEXT_LIMIT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut shown = text[..end].to_owned();
        if end < text.len() {
            shown.push('…');
        }
        ValueError::Invalid {
            column: column.name.clone(),
            type_name: type_name.to_owned(),
            text: shown,
        }
    }
}

/// Decodes a column value given as bytes (pgoutput sends bytes); the bytes must be UTF-8.
pub fn decode_text_bytes(column: &ColumnSchema, bytes: &[u8]) -> Result<Value, ValueError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ValueError::NotUtf8 {
        column: column.name.clone(),
        type_name: column.type_name.clone(),
    })?;
    decode_text(column, text)
}

/// Decodes a non-NULL column value from PostgreSQL's text output form.
pub fn decode_text(column: &ColumnSchema, text: &str) -> Result<Value, ValueError> {
    decode_as(column, &column.type_name, text)
        .ok_or_else(|| ValueError::invalid(column, &column.type_name, text))
}

/// Decodes `text` as type `type_name` (which may differ from the column's type for array
/// elements). `None` when the text is not a valid value of the type.
fn decode_as(column: &ColumnSchema, type_name: &str, text: &str) -> Option<Value> {
    if let Some(element) = type_name.strip_prefix('_') {
        return decode_array(column, element, text);
    }
    Some(match type_name {
        "bool" => match text {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            _ => return None,
        },
        "int2" => Value::Int16(text.parse().ok()?),
        "int4" => Value::Int32(text.parse().ok()?),
        "int8" => Value::Int64(text.parse().ok()?),
        "oid" | "xid" | "cid" => Value::Int64(text.parse::<u32>().ok()?.into()),
        "float4" => Value::Float32(parse_float(text)?),
        "float8" => Value::Float64(parse_float(text)?),
        "numeric" => Value::Numeric(parse_numeric(text)?),
        "money" => Value::Money(parse_money(text)?),
        "bytea" => Value::Bytes(parse_bytea(text)?),
        "date" => match datetime::parse_date(text)? {
            Ok(days) => Value::Date(i32::try_from(days).ok()?),
            Err(negative) => Value::Infinity { negative },
        },
        "time" => Value::Time(datetime::parse_time(text)?),
        "timetz" => {
            let (micros, offset_seconds) = datetime::parse_timetz(text)?;
            Value::TimeTz {
                micros,
                offset_seconds,
            }
        }
        "timestamp" | "timestamptz" => {
            match datetime::parse_timestamp(text, type_name == "timestamptz")? {
                Ok(us) => match i64::try_from(us) {
                    Ok(us) if type_name == "timestamp" => Value::Timestamp(us),
                    Ok(us) => Value::TimestampTz(us),
                    // Beyond i64 µs since 1970 (late in year 294276): the model cannot hold
                    // it, so the text goes on for the converter to re-parse.
                    Err(_) => Value::Text(text.to_owned()),
                },
                Err(negative) => Value::Infinity { negative },
            }
        }
        "interval" => {
            let (months, days, micros) = datetime::parse_interval(text)?;
            Value::Interval {
                months,
                days,
                micros,
            }
        }
        "uuid" => Value::Uuid(parse_uuid(text)?),
        "json" | "jsonb" => Value::Json(text.to_owned()),
        _ => Value::Text(text.to_owned()),
    })
}

/// `NaN`, `Infinity`, `-Infinity` or a decimal float (Rust's parser reads every form
/// PostgreSQL prints, e.g. `1e+10`, `3.4e+38`).
fn parse_float<T: std::str::FromStr + FloatConsts>(text: &str) -> Option<T> {
    match text {
        "NaN" => Some(T::NAN),
        "Infinity" => Some(T::INFINITY),
        "-Infinity" => Some(T::NEG_INFINITY),
        _ if text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

trait FloatConsts {
    const NAN: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
}
impl FloatConsts for f32 {
    const NAN: Self = f32::NAN;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
}
impl FloatConsts for f64 {
    const NAN: Self = f64::NAN;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
}

fn parse_numeric(text: &str) -> Option<Numeric> {
    match text {
        "NaN" => return Some(Numeric::NaN),
        "Infinity" => return Some(Numeric::PositiveInfinity),
        "-Infinity" => return Some(Numeric::NegativeInfinity),
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    ok.then(|| Numeric::Finite(text.to_owned()))
}

/// `money` under `lc_monetary=C`: `$1,234.56`, `-$1.00`, `-$92,233,720,368,547,758.08`.
fn parse_money(text: &str) -> Option<i64> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (
            false,
            text.strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .map_or(text, |r| r),
        ),
    };
    let neg = neg || text.starts_with('(');
    let rest = rest.strip_prefix('$').unwrap_or(rest);
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if int.is_empty() || frac.len() > 2 {
        return None;
    }
    let mut cents: i128 = 0;
    for b in int.bytes().filter(|&b| b != b',') {
        if !b.is_ascii_digit() {
            return None;
        }
        cents = cents * 10 + i128::from(b - b'0');
    }
    for i in 0..2 {
        let d = match frac.as_bytes().get(i) {
            Some(b) if b.is_ascii_digit() => i128::from(b - b'0'),
            Some(_) => return None,
            None => 0,
        };
        cents = cents * 10 + d;
    }
    i64::try_from(if neg { -cents } else { cents }).ok()
}

/// `bytea` in hex output (`\x0001ff`), or the escape format as a fallback.
fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    if let Some(hex) = text.strip_prefix("\\x") {
        let b = hex.as_bytes();
        if b.len() % 2 != 0 {
            return None;
        }
        return b
            .chunks(2)
            .map(|p| Some((hex_digit(p[0])? << 4) | hex_digit(p[1])?))
            .collect();
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = b.get(i + 1..i + 4)?;
            let mut v = 0u32;
            for &d in oct {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v * 8 + u32::from(d - b'0');
            }
            out.push(u8::try_from(v).ok()?);
            i += 4;
        }
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn parse_uuid(text: &str) -> Option<String> {
    // uuid_out's own form (what pgoutput and COPY send): taken as it is.
    let canonical = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if canonical {
        return Some(text.to_owned());
    }
    let hex: String = text.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// An array literal `{a,"b c",NULL}` (optionally prefixed by dimension bounds `[1:3]=`).
fn decode_array(column: &ColumnSchema, element: &str, text: &str) -> Option<Value> {
    let text = match text.strip_prefix('[') {
        Some(_) => &text[text.find('=')? + 1..],
        None => text,
    };
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let elements = split_array_elements(inner)?;
    if inner.trim_start().starts_with('{') {
        // Multi-dimensional: every element is a sub-array literal (PostgreSQL's arrays are
        // rectangular; it never prints a NULL or a scalar beside a sub-array).
        return elements
            .into_iter()
            .map(|e| decode_array(column, element, &e?))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array);
    }
    elements
        .into_iter()
        .map(|e| match e {
            None => Some(Value::Null),
            Some(s) => decode_as(column, element, &s),
        })
        .collect::<Option<Vec<_>>>()
        .map(Value::Array)
}

/// Splits the inside of an array literal at top-level commas, undoing quotes and backslash
/// escapes; an unquoted `NULL` is `None`. Nested `{...}` sub-arrays are kept as raw text.
fn split_array_elements(inner: &str) -> Option<Vec<Option<String>>> {
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Some(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let mut quoted = false;
        match chars.peek() {
            Some('"') => {
                quoted = true;
                chars.next();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => value.push(chars.next()?),
                        c => value.push(c),
                    }
                }
            }
            Some('{') => {
                let mut depth = 0;
                let mut in_quotes = false;
                while let Some(c) = chars.next() {
                    value.push(c);
                    match c {
                        '\\' => value.push(chars.next()?),
                        '"' => in_quotes = !in_quotes,
                        '{' if !in_quotes => depth += 1,
                        '}' if !in_quotes => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                quoted = true;
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        value.push(chars.next()?);
                    } else {
                        value.push(c);
                    }
                }
                let trimmed = value.trim_end().len();
                value.truncate(trimmed);
            }
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        out.push(if !quoted && value.eq_ignore_ascii_case("NULL") {
            None
        } else {
            Some(value)
        });
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(type_name: &str) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            type_oid: 0,
            type_name: type_name.into(),
            base_type_oid: 0,
            type_modifier: -1,
            nullable: true,
            default_expr: None,
            enum_values: None,
            dimensions: 0,
        }
    }

    fn d(t: &str, s: &str) -> Value {
        decode_text(&col(t), s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scalars() {
        assert_eq!(d("bool", "t"), Value::Bool(true));
        assert_eq!(d("bool", "f"), Value::Bool(false));
        assert_eq!(d("int2", "-32768"), Value::Int16(i16::MIN));
        assert_eq!(d("int4", "2147483647"), Value::Int32(i32::MAX));
        assert_eq!(d("int8", "-9223372036854775808"), Value::Int64(i64::MIN));
        assert_eq!(d("float4", "3.4e+38"), Value::Float32(3.4e38));
        assert_eq!(d("float4", "0.1"), Value::Float32(0.1));
        assert!(matches!(d("float4", "NaN"), Value::Float32(f) if f.is_nan()));
        assert_eq!(d("float8", "-Infinity"), Value::Float64(f64::NEG_INFINITY));
        assert_eq!(
            d("float8", "1.7976931348623157e+308"),
            Value::Float64(f64::MAX)
        );
        assert_eq!(d("float8", "0.0001"), Value::Float64(1e-4));
        assert!(decode_text(&col("float8"), "inf").is_err());
        assert!(decode_text(&col("int2"), "32768").is_err());
    }

    #[test]
    fn numerics_and_money() {
        let n = |s: &str| Value::Numeric(Numeric::Finite(s.into()));
        assert_eq!(d("numeric", "12345678.91"), n("12345678.91"));
        assert_eq!(d("numeric", "-0.000001"), n("-0.000001"));
        assert_eq!(
            d(
                "numeric",
                "123456789012345678901234567890.123456789012345678901234567890"
            ),
            n("123456789012345678901234567890.123456789012345678901234567890")
        );
        assert_eq!(d("numeric", "NaN"), Value::Numeric(Numeric::NaN));
        assert_eq!(
            d("numeric", "Infinity"),
            Value::Numeric(Numeric::PositiveInfinity)
        );
        assert_eq!(
            d("numeric", "-Infinity"),
            Value::Numeric(Numeric::NegativeInfinity)
        );
        assert!(decode_text(&col("numeric"), "1e5").is_err());
        assert_eq!(d("money", "$1,234.56"), Value::Money(123_456));
        assert_eq!(d("money", "-$1.00"), Value::Money(-100));
        assert_eq!(d("money", "$0.00"), Value::Money(0));
        assert_eq!(
            d("money", "-$92,233,720,368,547,758.08"),
            Value::Money(i64::MIN)
        );
        assert_eq!(
            d("money", "$92,233,720,368,547,758.07"),
            Value::Money(i64::MAX)
        );
    }

    #[test]
    fn text_bytes_uuid_json() {
        assert_eq!(d("bpchar", "ab "), Value::Text("ab ".into()));
        assert_eq!(d("mood", "happy"), Value::Text("happy".into()));
        assert_eq!(
            d("bytea", "\\x0001fffe"),
            Value::Bytes(vec![0, 1, 0xff, 0xfe])
        );
        assert_eq!(d("bytea", "\\x"), Value::Bytes(vec![]));
        assert_eq!(
            d("bytea", "a\\\\b\\001"),
            Value::Bytes(b"a\\b\x01".to_vec())
        );
        assert!(decode_text(&col("bytea"), "\\x0").is_err());
        assert_eq!(
            d("uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert_eq!(
            d("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert_eq!(
            d("uuid", "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert!(decode_text(&col("uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g").is_err());
        assert!(decode_text(&col("uuid"), "a0eebc99x9c0b-4ef8-bb6d-6bb9bd380a11").is_err());
        assert_eq!(
            d("jsonb", "{\"a\": [1, 2]}"),
            Value::Json("{\"a\": [1, 2]}".into())
        );
    }

    #[test]
    fn temporal() {
        assert_eq!(d("date", "2024-02-29"), Value::Date(19782));
        assert_eq!(d("date", "4713-01-01 BC"), Value::Date(-2440550));
        assert_eq!(d("date", "infinity"), Value::Infinity { negative: false });
        assert_eq!(d("time", "24:00:00"), Value::Time(86_400_000_000));
        assert_eq!(
            d("timetz", "13:14:15.123456+05:30"),
            Value::TimeTz {
                micros: 47_655_123_456,
                offset_seconds: 19_800
            }
        );
        assert_eq!(d("timestamp", "1970-01-01 00:00:00"), Value::Timestamp(0));
        assert_eq!(
            d("timestamptz", "1969-12-31 23:59:59.999999+00"),
            Value::TimestampTz(-1)
        );
        assert_eq!(
            d("timestamptz", "-infinity"),
            Value::Infinity { negative: true }
        );
        assert_eq!(
            d("timestamp", "294276-12-31 23:59:59.999"),
            Value::Text("294276-12-31 23:59:59.999".into())
        );
        assert_eq!(
            d("interval", "-1 days -00:00:00.000001"),
            Value::Interval {
                months: 0,
                days: -1,
                micros: -1
            }
        );
    }

    #[test]
    fn arrays() {
        assert_eq!(
            d("_int4", "{1,2,NULL,4}"),
            Value::Array(vec![
                Value::Int32(1),
                Value::Int32(2),
                Value::Null,
                Value::Int32(4)
            ])
        );
        assert_eq!(
            d("_text", r#"{x,"y z",NULL,"q\"uote"}"#),
            Value::Array(vec![
                Value::Text("x".into()),
                Value::Text("y z".into()),
                Value::Null,
                Value::Text("q\"uote".into())
            ])
        );
        assert_eq!(
            d("_text", r#"{""," ","NULL","a\\b"}"#),
            Value::Array(vec![
                Value::Text("".into()),
                Value::Text(" ".into()),
                Value::Text("NULL".into()),
                Value::Text("a\\b".into())
            ])
        );
        assert_eq!(d("_int4", "{}"), Value::Array(vec![]));
        let ints = |v: &[i32]| Value::Array(v.iter().map(|i| Value::Int32(*i)).collect());
        assert_eq!(
            d("_int4", "{{1,2},{3,4}}"),
            Value::Array(vec![ints(&[1, 2]), ints(&[3, 4])])
        );
        assert_eq!(
            d("_int4", "[0:1][1:1]={{5},{6}}"),
            Value::Array(vec![ints(&[5]), ints(&[6])])
        );
        assert_eq!(
            d("_int4", "{{{1},{2}},{{3},{NULL}}}"),
            Value::Array(vec![
                Value::Array(vec![ints(&[1]), ints(&[2])]),
                Value::Array(vec![ints(&[3]), Value::Array(vec![Value::Null])]),
            ])
        );
        assert_eq!(
            d("_text", r#"{{"a}b",NULL},{"{c,d}","e\"f"}}"#),
            Value::Array(vec![
                Value::Array(vec![Value::Text("a}b".into()), Value::Null]),
                Value::Array(vec![
                    Value::Text("{c,d}".into()),
                    Value::Text("e\"f".into())
                ]),
            ])
        );
        assert!(decode_text(&col("_int4"), "{{1,2},3}").is_err());
        assert!(decode_text(&col("_int4"), "{{1,2},NULL}").is_err());
        assert_eq!(
            d("_int4", "[0:1]={7,8}"),
            Value::Array(vec![Value::Int32(7), Value::Int32(8)])
        );
        assert_eq!(
            d("_text", r#"{"a,b","{c}"}"#),
            Value::Array(vec![Value::Text("a,b".into()), Value::Text("{c}".into())])
        );
        assert_eq!(
            d("_date", "{2024-02-29,infinity}"),
            Value::Array(vec![
                Value::Date(19782),
                Value::Infinity { negative: false }
            ])
        );
        assert!(decode_text(&col("_int4"), "{1,x}").is_err());
        assert!(decode_text(&col("_int4"), "{1,2").is_err());
    }

    #[test]
    fn errors_name_column_type_and_truncated_text() {
        let long = "x".repeat(200);
        let err = decode_text(&col("int4"), &long).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"c\"") && msg.contains("int4") && msg.contains('…'),
            "{msg}"
        );
        assert!(msg.len() < 120, "{msg}");
        assert!(matches!(
            decode_text_bytes(&col("text"), b"\xff"),
            Err(ValueError::NotUtf8 { .. })
        ));
    }
}
