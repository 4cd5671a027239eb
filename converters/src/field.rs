//! One column as a Kafka Connect field: its Connect schema (type, logical name, parameters,
//! default) and how a [`Value`] of it is written as JSON payload.
//!
//! The mapping follows Debezium's `PostgresValueConverter` under the configured [`TypeModes`]
//! (`decimal.handling.mode`, `time.precision.mode`, `binary.handling.mode`,
//! `hstore.handling.mode`, `interval.handling.mode`, `money.fraction.digits`,
//! `include.unknown.datatypes`) and JsonConverter's `decimal.format`.
//!
//! Overflow at the ends of PostgreSQL's timestamp range follows Debezium's arithmetic:
//! microseconds come from `TimeUnit.SECONDS.toMicros(epochSecond)` (saturating at
//! `Long.MAX_VALUE`) plus the micro-of-second (wrapping), so `294276-12-31 23:59:59.999`
//! becomes `-9223372036853776809`; nanoseconds use exact arithmetic and Debezium writes null
//! when they overflow.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE as B64_URL};
use base64::Engine as _;
use pgseam_model::{ColumnSchema, Numeric, Value};
use pgseam_pgvalue::datetime::{civil_from_days, parse_timestamp, MICROS_PER_DAY};
use std::fmt::Write as _;

use crate::decimal::{i64_bytes, Decimal};
use crate::{
    hstore, jackson, BinaryHandlingMode, DecimalFormat, DecimalHandlingMode, HstoreHandlingMode,
    IntervalHandlingMode, TimePrecisionMode, TypeModes,
};

/// What Debezium writes for a TOASTed value an UPDATE left unchanged.
pub(crate) const UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";
/// Debezium's placeholder item of an unchanged TOAST `uuid[]`: Java's
/// `UUID.nameUUIDFromBytes` (an MD5 name-based, version 3 UUID) of [`UNAVAILABLE_VALUE`]'s bytes.
pub(crate) const UNAVAILABLE_UUID: &str = "b68a35a7-17ad-35b3-af2a-ae46edb4545a";

/// pgjdbc's `PGStatement.DATE_POSITIVE_INFINITY`, which Debezium reads as epoch microseconds
/// for a `timestamp` of `infinity`.
const PG_POSITIVE_INFINITY_US: i128 = 9_223_372_036_825_200_000;
/// pgjdbc's `PGStatement.DATE_NEGATIVE_INFINITY`, the same for `-infinity`.
const PG_NEGATIVE_INFINITY_US: i128 = -9_223_372_036_832_400_000;

/// Debezium's average month length for `MicroDuration` (365.25 / 12).
const DAYS_PER_MONTH_AVG: f64 = 30.4375;

/// How one column (or array element) is represented.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    /// bytea (and unknown types with `include.unknown.datatypes`), per `binary.handling.mode`.
    Binary(BinaryHandlingMode),
    /// `org.apache.kafka.connect.data.Decimal` (numeric(p,s) with precision, money without);
    /// `numeric`: JsonConverter's `decimal.format=NUMERIC` writes a JSON number.
    Decimal {
        scale: u32,
        precision: Option<u32>,
        numeric: bool,
    },
    VariableScaleDecimal,
    DecimalString,
    DecimalDouble,
    /// `io.debezium.time.Date`, int32 days.
    Date,
    /// `org.apache.kafka.connect.data.Date`, int32 days.
    ConnectDate,
    /// `io.debezium.time.IsoDate`, `2024-02-29Z`.
    IsoDate,
    /// `io.debezium.time.Time`, int32 milliseconds (time(0..3)).
    Time,
    /// `org.apache.kafka.connect.data.Time`, int32 milliseconds.
    ConnectTime,
    MicroTime,
    NanoTime,
    /// `io.debezium.time.IsoTime`, `13:14:15.123Z`.
    IsoTime,
    ZonedTime,
    /// `io.debezium.time.Timestamp`, int64 milliseconds (timestamp(0..3)).
    Timestamp,
    /// `org.apache.kafka.connect.data.Timestamp`, int64 milliseconds.
    ConnectTimestamp,
    MicroTimestamp,
    NanoTimestamp,
    /// `io.debezium.time.IsoTimestamp`, `2024-02-29T13:14:15.123Z`.
    IsoTimestamp,
    ZonedTimestamp {
        fraction_digits: u32,
    },
    MicroDuration,
    /// `io.debezium.time.Interval`, `P1Y2M3DT4H5M6.789S`.
    IntervalString,
    Uuid,
    Json,
    Xml,
    Enum {
        allowed: String,
    },
    Point,
    /// `bit(n)` / `varbit(n)` with n > 1 (and unbounded `varbit`, length 2147483647):
    /// `io.debezium.data.Bits` bytes, the bit string as a little-endian `BitSet` (the last
    /// character is bit 0) cut after its highest set bit. `bit(1)` / `varbit(1)` are
    /// [`Kind::Boolean`].
    Bits {
        length: u32,
    },
    /// `ltree`: an `io.debezium.data.Ltree` string.
    Ltree,
    Hstore,
    /// `hstore.handling.mode=map`: Connect `map<string, optional string>`.
    HstoreMap,
    /// A type Debezium has no mapping for, with `include.unknown.datatypes=false`: the
    /// column is left out of the schema and the payload.
    Omitted,
    Array(Box<Kind>),
}

/// Geometric types that Debezium reads through pgjdbc's `PGbox`, `PGcircle`, `PGline`,
/// `PGlseg`, `PGpath` and `PGpolygon` (its stream resolver's `asBox()` … and JDBC's
/// `getObject` in the snapshot), whose text is what `include.unknown.datatypes` encodes.
pub(crate) const GEOMETRIC_TYPES: &[&str] = &["box", "circle", "line", "lseg", "path", "polygon"];

/// A geometric value's PostgreSQL text as pgjdbc's geometric classes print it
/// (`getValue()`): the same punctuation — `(x,y)` points, `<c,r>` circles, `[…]` open paths
/// and segments, `{a,b,c}` lines — with every number as Java's `Double.toString` writes it
/// (`(1,1),(0,0)` → `(1.0,1.0),(0.0,0.0)`; `1e+20` → `1.0E20`). A token that is not a
/// number is kept as it is.
pub(crate) fn java_geometric(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut token = String::new();
    let flush = |out: &mut String, token: &mut String| {
        if !token.is_empty() {
            match token.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => jackson::write_f64(out, v),
                // `Infinity`, `-Infinity`, `NaN`: spelled as Java spells them.
                _ => out.push_str(token),
            }
            token.clear();
        }
    };
    for c in text.chars() {
        if matches!(c, '(' | ')' | '<' | '>' | '[' | ']' | '{' | '}' | ',') {
            flush(&mut out, &mut token);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut out, &mut token);
    out
}

/// PostgreSQL built-in types that Debezium's `PostgresValueConverter` (and the JDBC fallback
/// it delegates to) has no schema for: their columns are dropped, or written as binary with
/// `include.unknown.datatypes`.
const UNKNOWN_TYPES: &[&str] = &[
    "box",
    "circle",
    "line",
    "lseg",
    "path",
    "polygon",
    "tsquery",
    "pg_lsn",
    "txid_snapshot",
    "pg_snapshot",
];

impl Kind {
    /// The representation of `type_name` (domains resolved) for `column`.
    pub(crate) fn for_type(
        column: &ColumnSchema,
        type_name: &str,
        modes: &TypeModes,
        decimal_format: DecimalFormat,
    ) -> Kind {
        if let Some(element) = type_name.strip_prefix('_') {
            return match (
                element,
                Kind::for_type(column, element, modes, decimal_format),
            ) {
                // Debezium has no schema for these arrays (`PostgresValueConverter`'s
                // "still need to be implemented" list): the column is left out.
                ("interval" | "money" | "name" | "varbit" | "xml" | "point", _)
                | (_, Kind::Omitted) => Kind::Omitted,
                (_, element) => Kind::Array(Box::new(element)),
            };
        }
        let mode = modes.decimal;
        let numeric = decimal_format == DecimalFormat::Numeric;
        let time_mode = modes.time_precision;
        // An array column's type modifier is its element's (Debezium builds the element
        // column with the array column's length and scale): `time(3)[]` has `Time` items.
        let precision = if type_name == column.type_name.trim_start_matches('_') {
            pgseam_model::length_or_precision(type_name, column.type_modifier)
        } else {
            None
        };
        match type_name {
            "bool" => Kind::Boolean,
            "int2" => Kind::Int16,
            "int4" => Kind::Int32,
            "int8" | "oid" => Kind::Int64,
            "float4" => Kind::Float32,
            "float8" => Kind::Float64,
            "numeric" => match mode {
                DecimalHandlingMode::String => Kind::DecimalString,
                DecimalHandlingMode::Double => Kind::DecimalDouble,
                DecimalHandlingMode::Precise => match column.numeric_precision_scale() {
                    Some((p, s)) if type_name == column.type_name.trim_start_matches('_') => {
                        Kind::Decimal {
                            scale: s,
                            precision: Some(p),
                            numeric,
                        }
                    }
                    _ => Kind::VariableScaleDecimal,
                },
            },
            "money" => match mode {
                DecimalHandlingMode::String => Kind::DecimalString,
                DecimalHandlingMode::Double => Kind::DecimalDouble,
                DecimalHandlingMode::Precise => Kind::Decimal {
                    scale: modes.money_fraction_digits,
                    precision: None,
                    numeric,
                },
            },
            "bytea" => Kind::Binary(modes.binary),
            "date" => match time_mode {
                TimePrecisionMode::Connect => Kind::ConnectDate,
                TimePrecisionMode::IsoString => Kind::IsoDate,
                _ => Kind::Date,
            },
            "time" => match (time_mode, precision) {
                (TimePrecisionMode::Adaptive, Some(p)) if p <= 3 => Kind::Time,
                (TimePrecisionMode::Connect, _) => Kind::ConnectTime,
                (TimePrecisionMode::IsoString, _) => Kind::IsoTime,
                (TimePrecisionMode::Nanoseconds, _) => Kind::NanoTime,
                _ => Kind::MicroTime,
            },
            "timetz" => Kind::ZonedTime,
            "timestamp" => match (time_mode, precision) {
                (
                    TimePrecisionMode::Adaptive | TimePrecisionMode::AdaptiveTimeMicroseconds,
                    Some(p),
                ) if p <= 3 => Kind::Timestamp,
                (TimePrecisionMode::Connect, _) => Kind::ConnectTimestamp,
                (TimePrecisionMode::IsoString, _) => Kind::IsoTimestamp,
                (TimePrecisionMode::Nanoseconds, _) => Kind::NanoTimestamp,
                _ => Kind::MicroTimestamp,
            },
            "timestamptz" => Kind::ZonedTimestamp {
                fraction_digits: precision.unwrap_or(6).min(6),
            },
            "interval" => match modes.interval {
                IntervalHandlingMode::Numeric => Kind::MicroDuration,
                IntervalHandlingMode::String => Kind::IntervalString,
            },
            "uuid" => Kind::Uuid,
            "json" | "jsonb" => Kind::Json,
            "xml" => Kind::Xml,
            "point" => Kind::Point,
            // Debezium's `column.length()`: n of bit(n)/varbit(n); `bit` is bit(1); an
            // unbounded varbit reads as Integer.MAX_VALUE.
            "bit" | "varbit" => match u32::try_from(column.type_modifier) {
                Ok(1) => Kind::Boolean,
                Ok(n) => Kind::Bits { length: n },
                Err(_) => Kind::Bits {
                    length: i32::MAX as u32,
                },
            },
            "ltree" => Kind::Ltree,
            "hstore" => match modes.hstore {
                HstoreHandlingMode::Json => Kind::Hstore,
                HstoreHandlingMode::Map => Kind::HstoreMap,
            },
            t if UNKNOWN_TYPES.contains(&t) => {
                if modes.include_unknown_datatypes {
                    Kind::Binary(modes.binary)
                } else {
                    Kind::Omitted
                }
            }
            _ => match &column.enum_values {
                Some(labels)
                    if type_name == column.type_name
                        || column.type_name == format!("_{type_name}") =>
                {
                    Kind::Enum {
                        allowed: labels.join(","),
                    }
                }
                _ => Kind::String,
            },
        }
    }

    /// An array kind nested to `dimensions` levels (`pgseam.array.multidimensional.mode=nested`):
    /// `int4` items at 2 dimensions are an array of arrays of `int4`. A scalar kind, and a
    /// `dimensions` of 0 or 1, leave it as it is.
    pub(crate) fn nested(self, dimensions: u32) -> Kind {
        if !matches!(self, Kind::Array(_)) {
            return self;
        }
        (1..dimensions).fold(self, |kind, _| Kind::Array(Box::new(kind)))
    }

    /// How many array levels this kind has: 0 for a scalar kind.
    pub(crate) fn array_depth(&self) -> usize {
        match self {
            Kind::Array(element) => 1 + element.array_depth(),
            _ => 0,
        }
    }

    fn is_struct(&self) -> bool {
        matches!(self, Kind::VariableScaleDecimal | Kind::Point)
    }

    /// Appends this kind's Connect schema as JsonConverter writes it.
    pub(crate) fn write_schema(
        &self,
        out: &mut String,
        optional: bool,
        default: Option<&str>,
        field: Option<&str>,
    ) {
        self.write_schema_with(out, optional, default, field, "");
    }

    /// As [`write_schema`](Self::write_schema), with more schema parameters after the kind's
    /// own (a column mapper's `masked` / `truncateLength` / `__debezium.source.column.*`,
    /// added by `SchemaBuilder.parameter`): `extra` is JSON object members (`"k":"v",...`),
    /// empty for none.
    pub(crate) fn write_schema_with(
        &self,
        out: &mut String,
        optional: bool,
        default: Option<&str>,
        field: Option<&str>,
        extra: &str,
    ) {
        let (ty, name, doc): (&str, Option<&str>, Option<&str>) = match self {
            Kind::Int16 => ("int16", None, None),
            Kind::Int32 => ("int32", None, None),
            Kind::Int64 => ("int64", None, None),
            Kind::Float32 => ("float", None, None),
            Kind::Float64 | Kind::DecimalDouble => ("double", None, None),
            Kind::Boolean => ("boolean", None, None),
            Kind::String | Kind::DecimalString => ("string", None, None),
            Kind::Binary(BinaryHandlingMode::Bytes) => ("bytes", None, None),
            Kind::Binary(_) => ("string", None, None),
            Kind::Decimal { .. } => ("bytes", Some("org.apache.kafka.connect.data.Decimal"), None),
            Kind::VariableScaleDecimal => (
                "struct",
                Some("io.debezium.data.VariableScaleDecimal"),
                Some("Variable scaled decimal"),
            ),
            Kind::Date => ("int32", Some("io.debezium.time.Date"), None),
            Kind::ConnectDate => ("int32", Some("org.apache.kafka.connect.data.Date"), None),
            Kind::IsoDate => ("string", Some("io.debezium.time.IsoDate"), None),
            Kind::Time => ("int32", Some("io.debezium.time.Time"), None),
            Kind::ConnectTime => ("int32", Some("org.apache.kafka.connect.data.Time"), None),
            Kind::MicroTime => ("int64", Some("io.debezium.time.MicroTime"), None),
            Kind::NanoTime => ("int64", Some("io.debezium.time.NanoTime"), None),
            Kind::IsoTime => ("string", Some("io.debezium.time.IsoTime"), None),
            Kind::ZonedTime => ("string", Some("io.debezium.time.ZonedTime"), None),
            Kind::Timestamp => ("int64", Some("io.debezium.time.Timestamp"), None),
            Kind::ConnectTimestamp => (
                "int64",
                Some("org.apache.kafka.connect.data.Timestamp"),
                None,
            ),
            Kind::MicroTimestamp => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
            Kind::NanoTimestamp => ("int64", Some("io.debezium.time.NanoTimestamp"), None),
            Kind::IsoTimestamp => ("string", Some("io.debezium.time.IsoTimestamp"), None),
            Kind::ZonedTimestamp { .. } => {
                ("string", Some("io.debezium.time.ZonedTimestamp"), None)
            }
            Kind::MicroDuration => ("int64", Some("io.debezium.time.MicroDuration"), None),
            Kind::IntervalString => ("string", Some("io.debezium.time.Interval"), None),
            Kind::Uuid => ("string", Some("io.debezium.data.Uuid"), None),
            Kind::Json | Kind::Hstore => ("string", Some("io.debezium.data.Json"), None),
            Kind::Xml => ("string", Some("io.debezium.data.Xml"), None),
            Kind::Enum { .. } => ("string", Some("io.debezium.data.Enum"), None),
            Kind::Point => (
                "struct",
                Some("io.debezium.data.geometry.Point"),
                Some("Geometry (POINT)"),
            ),
            Kind::Bits { .. } => ("bytes", Some("io.debezium.data.Bits"), None),
            Kind::Ltree => ("string", Some("io.debezium.data.Ltree"), None),
            Kind::Array(_) => ("array", None, None),
            Kind::HstoreMap => ("map", None, None),
            // Never rendered: the envelope skips omitted columns.
            Kind::Omitted => ("bytes", None, None),
        };
        let _ = write!(out, "{{\"type\":\"{ty}\"");
        match self {
            Kind::VariableScaleDecimal => out.push_str(
                r#","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}]"#,
            ),
            Kind::Point => out.push_str(
                r#","fields":[{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}]"#,
            ),
            Kind::Array(element) => {
                out.push_str(",\"items\":");
                // Debezium builds enum items without `.optional()`, every other kind's
                // items optional.
                let optional_items = !matches!(**element, Kind::Enum { .. });
                element.write_schema(out, optional_items, None, None);
            }
            Kind::HstoreMap => out.push_str(
                r#","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true}"#,
            ),
            _ => {}
        }
        let _ = write!(out, ",\"optional\":{optional}");
        if let Some(name) = name {
            out.push_str(",\"name\":");
            jackson::write_str(out, name);
            out.push_str(",\"version\":1");
        }
        if let Some(doc) = doc {
            out.push_str(",\"doc\":");
            jackson::write_str(out, doc);
        }
        let mut params_open = false;
        match self {
            Kind::Decimal {
                scale, precision, ..
            } => {
                let _ = write!(out, ",\"parameters\":{{\"scale\":\"{scale}\"");
                if let Some(p) = precision {
                    let _ = write!(out, ",\"connect.decimal.precision\":\"{p}\"");
                }
                params_open = true;
            }
            Kind::Enum { allowed } => {
                out.push_str(",\"parameters\":{\"allowed\":");
                jackson::write_str(out, allowed);
                params_open = true;
            }
            Kind::Bits { length } => {
                let _ = write!(out, ",\"parameters\":{{\"length\":\"{length}\"");
                params_open = true;
            }
            _ => {}
        }
        if !extra.is_empty() {
            out.push_str(if params_open {
                ","
            } else {
                ",\"parameters\":{"
            });
            out.push_str(extra);
            params_open = true;
        }
        if params_open {
            out.push('}');
        }
        if let Some(default) = default {
            out.push_str(",\"default\":");
            out.push_str(default);
        }
        if let Some(field) = field {
            out.push_str(",\"field\":");
            jackson::write_str(out, field);
        }
        out.push('}');
    }

    /// Appends the JSON payload of a non-null value; `Err` names what did not fit the kind.
    pub(crate) fn write_value(&self, out: &mut String, value: &Value) -> Result<(), String> {
        let mismatch = || format!("{value:?} does not fit {self:?}");
        if matches!(value, Value::Null) {
            out.push_str("null");
            return Ok(());
        }
        if matches!(value, Value::UnchangedToast) {
            self.write_unavailable(out);
            return Ok(());
        }
        match (self, value) {
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int16(v)) => {
                jackson::write_i64(out, i64::from(*v))
            }
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int32(v)) => {
                jackson::write_i64(out, i64::from(*v))
            }
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int64(v)) => {
                jackson::write_i64(out, *v)
            }
            (Kind::Float32, Value::Float32(v)) => jackson::write_f32(out, *v),
            (Kind::Float64, Value::Float64(v)) => jackson::write_f64(out, *v),
            (Kind::Float64, Value::Float32(v)) => jackson::write_f64(out, f64::from(*v)),
            (Kind::Boolean, Value::Bool(b)) => push_display(out, b),
            // bit(1) / varbit(1): Debezium's `Integer.valueOf(text, 2) != 0`.
            (Kind::Boolean, Value::Text(bits)) => {
                bits_bytes(bits).ok_or_else(mismatch)?;
                push_display(out, bits.contains('1'))
            }
            (Kind::Bits { .. }, Value::Text(bits)) => {
                push_base64(out, &bits_bytes(bits).ok_or_else(mismatch)?)
            }
            (Kind::Binary(mode), Value::Bytes(b)) => push_binary(out, *mode, b),
            (Kind::Binary(mode), Value::Text(t)) => push_binary(out, *mode, t.as_bytes()),
            (Kind::Decimal { scale, numeric, .. }, Value::Numeric(n)) => match n {
                Numeric::Finite(t) => {
                    let d = Decimal::parse(t).ok_or_else(mismatch)?.with_scale(*scale);
                    push_decimal(out, &d, *numeric);
                }
                _ => out.push_str("null"),
            },
            (Kind::Decimal { scale, numeric, .. }, Value::Money(cents)) => {
                if *scale == 2 && !numeric {
                    push_base64(out, &i64_bytes(*cents));
                } else {
                    push_decimal(out, &money_decimal(*cents).with_scale(*scale), *numeric);
                }
            }
            (Kind::VariableScaleDecimal, Value::Numeric(n)) => match n {
                Numeric::Finite(t) => {
                    let d = Decimal::parse(t)
                        .ok_or_else(mismatch)?
                        .strip_trailing_zeros();
                    let _ = write!(out, "{{\"scale\":{},\"value\":", d.scale);
                    push_base64(out, &d.unscaled_bytes());
                    out.push('}');
                }
                _ => out.push_str("null"),
            },
            (Kind::DecimalString, Value::Numeric(n)) => {
                let s = match n {
                    Numeric::Finite(t) => t.as_str(),
                    Numeric::NaN => "NAN",
                    Numeric::PositiveInfinity => "POSITIVE_INFINITY",
                    Numeric::NegativeInfinity => "NEGATIVE_INFINITY",
                };
                jackson::write_str(out, s);
            }
            (Kind::DecimalString, Value::Money(c)) => {
                jackson::write_str(out, &money_decimal(*c).to_plain_string())
            }
            (Kind::DecimalDouble, Value::Numeric(n)) => match n {
                Numeric::Finite(t) => {
                    jackson::write_f64(out, Decimal::parse(t).ok_or_else(mismatch)?.to_f64())
                }
                Numeric::NaN => jackson::write_f64(out, f64::NAN),
                Numeric::PositiveInfinity => jackson::write_f64(out, f64::INFINITY),
                Numeric::NegativeInfinity => jackson::write_f64(out, f64::NEG_INFINITY),
            },
            (Kind::DecimalDouble, Value::Money(c)) => {
                jackson::write_f64(out, money_decimal(*c).to_f64())
            }
            (Kind::Date | Kind::ConnectDate, Value::Date(d)) => push_display(out, d),
            (Kind::IsoDate, Value::Date(d)) => {
                let mut s = format_iso_date(i64::from(*d));
                s.push('Z');
                jackson::write_str(out, &s);
            }
            // Debezium writes overflow garbage that differs between its snapshot
            // (-622191234 for infinity) and its stream (-2147472692); pgseam writes the i32
            // extremes in both (COMPATIBILITY.md).
            (Kind::Date | Kind::ConnectDate, Value::Infinity { negative }) => {
                push_display(out, if *negative { i32::MIN } else { i32::MAX })
            }
            (Kind::Time | Kind::ConnectTime, Value::Time(us)) => {
                push_display(out, us.div_euclid(1000))
            }
            (Kind::MicroTime, Value::Time(us)) => push_display(out, us),
            (Kind::NanoTime, Value::Time(us)) => push_display(out, us.saturating_mul(1000)),
            // `24:00:00` is a whole day: Debezium's IsoTime wraps it to midnight.
            (Kind::IsoTime, Value::Time(us)) => {
                jackson::write_str(out, &format_zoned_time(us.rem_euclid(MICROS_PER_DAY)))
            }
            (
                Kind::ZonedTime,
                Value::TimeTz {
                    micros,
                    offset_seconds,
                },
            ) => {
                let utc =
                    (micros - i64::from(*offset_seconds) * 1_000_000).rem_euclid(MICROS_PER_DAY);
                jackson::write_str(out, &format_zoned_time(utc));
            }
            (
                Kind::Timestamp
                | Kind::ConnectTimestamp
                | Kind::MicroTimestamp
                | Kind::NanoTimestamp
                | Kind::IsoTimestamp,
                Value::Timestamp(_) | Value::TimestampTz(_) | Value::Text(_),
            ) => {
                let us = match value {
                    Value::Timestamp(us) | Value::TimestampTz(us) => i128::from(*us),
                    Value::Text(t) => match parse_timestamp(t, false) {
                        Some(Ok(us)) => us,
                        _ => return Err(mismatch()),
                    },
                    _ => return Err(mismatch()),
                };
                self.write_local_timestamp(out, us);
            }
            // `time.precision.mode=nanoseconds`: Debezium writes ±infinity as `Long.MAX_VALUE` /
            // `Long.MIN_VALUE` (golden/types/edge_nano), where a finite value out of the
            // nanosecond range is null.
            (Kind::NanoTimestamp, Value::Infinity { negative }) => {
                push_display(out, if *negative { i64::MIN } else { i64::MAX })
            }
            // Debezium turns ±infinity into pgjdbc's `PGStatement.DATE_POSITIVE_INFINITY` /
            // `DATE_NEGATIVE_INFINITY` read as epoch microseconds (its
            // `POSITIVE_INFINITY_LOCAL_DATE_TIME`), then converts as any timestamp:
            // 9223372036825200000 µs, 9223372036825200 ms, `+294247-01-10T04:00:25.2Z`
            // (golden/types, adaptive, connect, microseconds and isostring modes).
            (
                Kind::Timestamp
                | Kind::ConnectTimestamp
                | Kind::MicroTimestamp
                | Kind::IsoTimestamp,
                Value::Infinity { negative },
            ) => self.write_local_timestamp(
                out,
                if *negative {
                    PG_NEGATIVE_INFINITY_US
                } else {
                    PG_POSITIVE_INFINITY_US
                },
            ),
            // Debezium's infinite dates are overflow garbage that differs between its snapshot
            // and its stream (COMPATIBILITY.md); pgseam writes the words.
            (Kind::IsoDate, Value::Infinity { negative }) => {
                jackson::write_str(out, if *negative { "-infinity" } else { "infinity" })
            }
            (
                Kind::ZonedTimestamp { fraction_digits },
                Value::TimestampTz(us) | Value::Timestamp(us),
            ) => {
                write_zoned_timestamp_literal(out, i128::from(*us), *fraction_digits);
            }
            (Kind::ZonedTimestamp { fraction_digits }, Value::Text(t)) => {
                match parse_timestamp(t, true) {
                    Some(Ok(us)) => write_zoned_timestamp_literal(out, us, *fraction_digits),
                    _ => return Err(mismatch()),
                }
            }
            (Kind::ZonedTimestamp { .. }, Value::Infinity { negative }) => {
                jackson::write_str(out, if *negative { "-infinity" } else { "infinity" })
            }
            (
                Kind::MicroDuration,
                Value::Interval {
                    months,
                    days,
                    micros,
                },
            ) => push_display(out, interval_micros(*months, *days, *micros)),
            (
                Kind::IntervalString,
                Value::Interval {
                    months,
                    days,
                    micros,
                },
            ) => jackson::write_str(out, &interval_iso(*months, *days, *micros)),
            (Kind::HstoreMap, Value::Text(t)) => {
                let entries = hstore::parse(t).ok_or_else(mismatch)?;
                hstore::write_object(out, entries);
            }
            (Kind::Point, Value::Text(t)) => write_point(out, t).ok_or_else(mismatch)?,
            (Kind::Hstore, Value::Text(t)) => {
                jackson::write_str(out, &hstore::to_json(t).ok_or_else(mismatch)?)
            }
            (Kind::Array(element), Value::Array(items)) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match (&**element, item) {
                        // A sub-array where the schema has none: Debezium's null per outer
                        // element of a multi-dimensional value.
                        (Kind::Array(_), _) | (_, Value::Null) => element.write_value(out, item)?,
                        (_, Value::Array(_)) => out.push_str("null"),
                        _ => element.write_value(out, item)?,
                    }
                }
                out.push(']');
            }
            (
                Kind::String
                | Kind::Uuid
                | Kind::Json
                | Kind::Xml
                | Kind::Enum { .. }
                | Kind::Ltree
                | Kind::DecimalString,
                Value::Text(s) | Value::Uuid(s) | Value::Json(s),
            ) => jackson::write_str(out, s),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// The placeholder Debezium writes for an unchanged TOASTed value.
    fn write_unavailable(&self, out: &mut String) {
        self.write_unavailable_for(out, "");
    }

    /// Appends what Debezium 3.6.3 writes for an unchanged TOAST value of a column of
    /// `type_name` (its PostgreSQL type, `_` prefix for arrays; `""` when unknown).
    ///
    /// Debezium picks a placeholder object by type name
    /// (`UnchangedToastedReplicationMessageColumn.markerForType`: `_text`, `_varchar`,
    /// `_bpchar`, `_json`, `_jsonb` → a one-string list; `_bytea` → a one-bytes list; `_int4`,
    /// `_date` → the placeholder's bytes as an int list; `_int8` → as a long list; `hstore` →
    /// a one-entry map; `_uuid` → a one-UUID list, `UUID.nameUUIDFromBytes(placeholder)`;
    /// anything else → the placeholder string), then runs the column's value converter on it:
    /// what that converter cannot read becomes null. Verified for every case here by the
    /// `reference/debezium/golden/types/toast_*` captures.
    ///
    /// A nested array kind (`pgseam.array.multidimensional.mode=nested`) writes the
    /// one-dimensional placeholder wrapped to its depth (`[["__debezium_unavailable_value"]]`),
    /// so that it fits the schema; a null stays null.
    pub(crate) fn write_unavailable_for(&self, out: &mut String, type_name: &str) {
        if let Kind::Array(element) = self {
            if matches!(**element, Kind::Array(_)) {
                let mut inner = String::new();
                element.write_unavailable_for(&mut inner, type_name);
                if inner == "null" {
                    out.push_str("null");
                } else {
                    out.push('[');
                    out.push_str(&inner);
                    out.push(']');
                }
                return;
            }
        }
        let list_of = |out: &mut String, item: &dyn Fn(&mut String)| {
            out.push('[');
            item(out);
            out.push(']');
        };
        let bytes_as_numbers = |out: &mut String| {
            out.push('[');
            for (i, b) in UNAVAILABLE_VALUE.bytes().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_display(out, b);
            }
            out.push(']');
        };
        match (type_name, self) {
            ("_text" | "_varchar" | "_bpchar" | "_json" | "_jsonb", Kind::Array(_)) => {
                list_of(out, &|out| jackson::write_str(out, UNAVAILABLE_VALUE))
            }
            // The bytes list converts only under `binary.handling.mode=bytes`.
            ("_bytea", Kind::Array(element)) => match **element {
                Kind::Binary(BinaryHandlingMode::Bytes) => list_of(out, &|out| {
                    push_binary(out, BinaryHandlingMode::Bytes, UNAVAILABLE_VALUE.as_bytes())
                }),
                _ => out.push_str("null"),
            },
            // Integers: `_int4` items read them; `_date` items only as `io.debezium.time.Date`.
            ("_int4" | "_int8", Kind::Array(_)) => bytes_as_numbers(out),
            ("_date", Kind::Array(element)) if matches!(**element, Kind::Date) => {
                bytes_as_numbers(out)
            }
            ("_uuid", Kind::Array(_)) => {
                list_of(out, &|out| jackson::write_str(out, UNAVAILABLE_UUID))
            }
            ("hstore", Kind::Hstore) => jackson::write_str(
                out,
                &format!("{{\"{UNAVAILABLE_VALUE}\":\"{UNAVAILABLE_VALUE}\"}}"),
            ),
            ("hstore", Kind::HstoreMap) => {
                out.push('{');
                jackson::write_str(out, UNAVAILABLE_VALUE);
                out.push(':');
                jackson::write_str(out, UNAVAILABLE_VALUE);
                out.push('}');
            }
            // The placeholder string, through the column's converter: a `bytea` reads it
            // as its bytes in `bytes` mode, keeps it as a string in `hex` mode (Debezium's
            // hex path passes strings through), and fails in the base64 modes.
            (_, Kind::Binary(BinaryHandlingMode::Bytes)) => {
                push_binary(out, BinaryHandlingMode::Bytes, UNAVAILABLE_VALUE.as_bytes())
            }
            (_, Kind::Binary(BinaryHandlingMode::Hex)) => {
                jackson::write_str(out, UNAVAILABLE_VALUE)
            }
            (_, k) if k.is_struct() => out.push_str("null"),
            (
                _,
                Kind::String
                | Kind::Json
                | Kind::Xml
                | Kind::Enum { .. }
                | Kind::Uuid
                | Kind::Ltree
                | Kind::DecimalString
                | Kind::ZonedTime
                | Kind::ZonedTimestamp { .. }
                | Kind::IsoDate
                | Kind::IsoTime
                | Kind::IsoTimestamp
                | Kind::IntervalString,
            ) => jackson::write_str(out, UNAVAILABLE_VALUE),
            _ => out.push_str("null"),
        }
    }

    /// The payload JSON of a default value, or `None` when Debezium sets no default (struct
    /// kinds cannot carry one: KAFKA-12694).
    pub(crate) fn render_default(&self, value: &Value) -> Option<String> {
        if self.is_struct() || matches!(value, Value::Null) {
            return None;
        }
        let mut s = String::new();
        self.write_value(&mut s, value).ok()?;
        (s != "null").then_some(s)
    }
}

impl Kind {
    /// The payload JSON Debezium writes for a null in a NOT NULL column that has no default:
    /// the per-type fallback of `JdbcValueConverters.convertValue(column, field, data,
    /// fallback, callback)` (`data == null` on a non-optional column: the schema default if
    /// any, else this). That happens in the before image of a DELETE or key change under the
    /// default replica identity, which carries the key and NULL for every other column.
    /// Every value here was captured from Debezium 3.6.3 (`tests/fixtures/notnull/golden/`):
    /// zeros, `false`, the empty string (also for uuid, json, enum, inet, ...), empty bytes
    /// and arrays, the epoch (`00:00:00Z` / `1970-01-01T00:00:00Z` without a fraction in the
    /// string time forms), a zero decimal at the column's scale, `POINT(0 0)` and an empty
    /// hstore. `column` supplies the scale of `decimal.handling.mode=string` zeros.
    pub(crate) fn null_fallback(&self, column: &ColumnSchema, modes: &TypeModes) -> String {
        let mut out = String::new();
        match self {
            Kind::Int16
            | Kind::Int32
            | Kind::Int64
            | Kind::Date
            | Kind::ConnectDate
            | Kind::Time
            | Kind::ConnectTime
            | Kind::MicroTime
            | Kind::NanoTime
            | Kind::Timestamp
            | Kind::ConnectTimestamp
            | Kind::MicroTimestamp
            | Kind::NanoTimestamp
            | Kind::MicroDuration => out.push('0'),
            Kind::Float32 | Kind::Float64 | Kind::DecimalDouble => out.push_str("0.0"),
            Kind::Boolean => out.push_str("false"),
            Kind::String
            | Kind::Uuid
            | Kind::Json
            | Kind::Xml
            | Kind::Enum { .. }
            | Kind::Ltree => out.push_str("\"\""),
            Kind::Binary(mode) => push_binary(&mut out, *mode, &[]),
            // `JdbcValueConverters.convertBits`' fallback `new byte[0]`.
            Kind::Bits { .. } => out.push_str("\"\""),
            Kind::Decimal { scale, numeric, .. } => {
                push_decimal(&mut out, &Decimal::zero(*scale), *numeric)
            }
            Kind::VariableScaleDecimal => out.push_str("{\"scale\":0,\"value\":\"AA==\"}"),
            Kind::DecimalString => {
                let scale = if column.type_name == "money" {
                    modes.money_fraction_digits
                } else {
                    column.numeric_precision_scale().map_or(0, |(_, s)| s)
                };
                jackson::write_str(&mut out, &Decimal::zero(scale).to_plain_string());
            }
            Kind::IsoDate => out.push_str("\"1970-01-01Z\""),
            Kind::IsoTime | Kind::ZonedTime => out.push_str("\"00:00:00Z\""),
            Kind::IsoTimestamp | Kind::ZonedTimestamp { .. } => {
                out.push_str("\"1970-01-01T00:00:00Z\"")
            }
            Kind::IntervalString => out.push_str("\"P0Y0M0DT0H0M0S\""),
            Kind::Point => out.push_str(
                "{\"x\":0.0,\"y\":0.0,\"wkb\":\"AQEAAAAAAAAAAAAAAAAAAAAAAAAA\",\"srid\":null}",
            ),
            Kind::Hstore => out.push_str("\"{}\""),
            Kind::HstoreMap => out.push_str("{}"),
            Kind::Array(_) => out.push_str("[]"),
            Kind::Omitted => out.push_str("null"),
        }
        out
    }

    /// Appends a non-null `value` as Kafka Connect's `Values.convertToString` writes it inside a
    /// struct — the form `SimpleHeaderConverter` gives Debezium's `__debezium.newkey` /
    /// `__debezium.oldkey` headers (`{"id":20}`, `{"a":2,"b":"z"}`, captured in
    /// `tests/fixtures/notnull/golden/simple_headers.jsonl`). Values' rules: strings in double
    /// quotes with only `\` and `"` escaped (no control-character escapes), numbers as Java's
    /// `toString` (a `Decimal` is a `BigDecimal`, so its plain/scientific text, not base64; a
    /// float NaN is bare `NaN`), bytes as quoted base64, lists `[..]`, structs and maps
    /// `{"k":v,..}`, `java.util.Date` (Connect's logical date/time/timestamp) through
    /// `SimpleDateFormat` — `HH:mm:ss.SSS'Z'` below one day, `yyyy-MM-dd` on whole days, else
    /// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, here in UTC (the worker JVM's default zone in Kafka).
    pub(crate) fn write_connect_string(
        &self,
        out: &mut String,
        value: &Value,
    ) -> Result<(), String> {
        if matches!(value, Value::Null) {
            out.push_str("null");
            return Ok(());
        }
        match self {
            Kind::Decimal { scale, .. } => {
                let numeric = Kind::Decimal {
                    scale: *scale,
                    precision: None,
                    numeric: true,
                };
                numeric.write_value(out, value)
            }
            Kind::ConnectDate | Kind::ConnectTime | Kind::ConnectTimestamp => {
                let mut json = String::new();
                self.write_value(&mut json, value)?;
                let n: i64 = json
                    .parse()
                    .map_err(|_| format!("{value:?} does not fit {self:?}"))?;
                let ms = if matches!(self, Kind::ConnectDate) {
                    n * 86_400_000
                } else {
                    n
                };
                out.push_str(&java_util_date_string(ms));
                Ok(())
            }
            // Jackson quotes the non-finite values; Java's toString does not.
            Kind::Float32 | Kind::Float64 | Kind::DecimalDouble => {
                let mut json = String::new();
                self.write_value(&mut json, value)?;
                out.push_str(json.trim_matches('"'));
                Ok(())
            }
            Kind::Array(element) => match value {
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        match (&**element, item) {
                            (Kind::Array(_), _) | (_, Value::Null) => {
                                element.write_connect_string(out, item)?
                            }
                            (_, Value::Array(_)) => out.push_str("null"),
                            _ => element.write_connect_string(out, item)?,
                        }
                    }
                    out.push(']');
                    Ok(())
                }
                _ => Err(format!("{value:?} does not fit {self:?}")),
            },
            _ => {
                let mut json = String::new();
                self.write_value(&mut json, value)?;
                json_to_connect_string(out, &json);
                Ok(())
            }
        }
    }

    /// A `timestamp` without time zone, `us` microseconds after 1970-01-01 00:00.
    fn write_local_timestamp(&self, out: &mut String, us: i128) {
        match self {
            Kind::Timestamp | Kind::ConnectTimestamp => push_display(out, us.div_euclid(1000)),
            Kind::MicroTimestamp => push_display(out, java_epoch_micros(us)),
            Kind::NanoTimestamp => match i64::try_from(us * 1000) {
                Ok(ns) => push_display(out, ns),
                Err(_) => out.push_str("null"),
            },
            _ => jackson::write_str(out, &format_iso_timestamp(us)),
        }
    }

    /// Whether the envelope leaves this column out (an unknown type).
    pub(crate) fn is_omitted(&self) -> bool {
        matches!(self, Kind::Omitted)
    }
}

/// The number of array levels of a non-empty array value's `items` (`[1,2]` is 1,
/// `[[1,2],[3,4]]` 2): PostgreSQL's arrays are rectangular, so the first item decides. `None`
/// for `items` with an empty array at a lower level, which PostgreSQL never writes.
pub(crate) fn array_depth(items: &[Value]) -> Option<usize> {
    match items.first() {
        None => None,
        Some(Value::Array(inner)) => array_depth(inner).map(|d| d + 1),
        Some(_) => Some(1),
    }
}

/// A bit string's text (`0101…`) as Debezium's `PostgresValueConverter.convertBits` turns it
/// into bytes: a `java.util.BitSet` with bit `i` set when the `i`-th character from the
/// right is `1`, then `BitSet.toByteArray()` (little-endian, up to the highest set bit, so all
/// zeros are no bytes). `None` if the text is not a bit string.
pub(crate) fn bits_bytes(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (i, c) in text.bytes().rev().enumerate() {
        match c {
            b'0' => {}
            b'1' => {
                if out.len() <= i / 8 {
                    out.resize(i / 8 + 1, 0);
                }
                out[i / 8] |= 1 << (i % 8);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Rewrites JSON text as Kafka Connect's `Values` string form: strings are unescaped and
/// re-quoted with only `\\` and `"` escaped; everything else is kept.
fn json_to_connect_string(out: &mut String, json: &str) {
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let unit = u16::from_str_radix(&hex, 16).unwrap_or(0xFFFD);
                        push_utf16_unit(&mut s, unit, &mut chars);
                    }
                    Some(other) => s.push(other),
                    None => {}
                },
                c => s.push(c),
            }
        }
        out.push('"');
        for c in s.chars() {
            if c == '\\' || c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// Decodes a `\\uXXXX` unit, joining a high surrogate with the `\\uXXXX` low one after it.
fn push_utf16_unit(
    s: &mut String,
    unit: u16,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) {
    if (0xD800..0xDC00).contains(&unit) && chars.peek() == Some(&'\\') {
        let rest: String = chars.clone().take(6).collect();
        if let Some(low) = rest
            .strip_prefix("\\u")
            .and_then(|h| u16::from_str_radix(h, 16).ok())
        {
            for _ in 0..6 {
                chars.next();
            }
            s.extend(char::decode_utf16([unit, low]).map(|r| r.unwrap_or('\u{FFFD}')));
            return;
        }
    }
    s.extend(char::decode_utf16([unit]).map(|r| r.unwrap_or('\u{FFFD}')));
}

/// `Values.dateFormatFor(date).format(date)` in UTC.
fn java_util_date_string(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    let tod = ms.rem_euclid(DAY);
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        tod / 3_600_000,
        tod / 60_000 % 60,
        tod / 1000 % 60,
        tod % 1000
    );
    if ms < DAY {
        return time;
    }
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY));
    let date = format!("{y:04}-{m:02}-{d:02}");
    if ms % DAY == 0 {
        date
    } else {
        format!("{date}T{time}")
    }
}

/// Debezium's `Conversions.toEpochMicros(Instant)`: `TimeUnit.SECONDS.toMicros(epochSecond)`
/// saturates at `Long.MIN/MAX_VALUE`, then the micro-of-second is added with wrap-around.
pub(crate) fn java_epoch_micros(us: i128) -> i64 {
    let secs = us.div_euclid(1_000_000);
    let micro_of_second = us.rem_euclid(1_000_000) as i64;
    let whole = secs
        .checked_mul(1_000_000)
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
    whole.wrapping_add(micro_of_second)
}

/// `BigDecimal.toString()` (JsonConverter `decimal.format=NUMERIC`) or base64 bytes.
fn push_decimal(out: &mut String, d: &Decimal, numeric: bool) {
    if numeric {
        out.push_str(&d.to_java_string());
    } else {
        push_base64(out, &d.unscaled_bytes());
    }
}

pub(crate) fn push_binary(out: &mut String, mode: BinaryHandlingMode, bytes: &[u8]) {
    match mode {
        BinaryHandlingMode::Bytes | BinaryHandlingMode::Base64 => push_base64(out, bytes),
        BinaryHandlingMode::Base64UrlSafe => {
            out.push('"');
            B64_URL.encode_string(bytes, out);
            out.push('"');
        }
        BinaryHandlingMode::Hex => {
            out.push('"');
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out.push('"');
        }
    }
}

/// Java's `LocalDate.toString()` of `days` after 1970-01-01: `yyyy-MM-dd`, years beyond 9999
/// with `+`, years before 0 with `-` (proleptic, year 0 = 1 BC).
pub(crate) fn format_iso_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    let mut s = String::new();
    if y > 9999 {
        let _ = write!(s, "+{y}");
    } else if y < 0 {
        let _ = write!(s, "-{:04}", -y);
    } else {
        let _ = write!(s, "{y:04}");
    }
    let _ = write!(s, "-{m:02}-{d:02}");
    s
}

/// `io.debezium.time.IsoTimestamp`: ISO date, `T`, `HH:mm:ss`, the fraction without trailing
/// zeros, `Z`.
pub(crate) fn format_iso_timestamp(us: i128) -> String {
    let day = i128::from(MICROS_PER_DAY);
    let days = us.div_euclid(day) as i64;
    let tod = us.rem_euclid(day) as i64;
    let mut s = format_iso_date(days);
    s.push('T');
    let time = format_zoned_time(tod);
    s.push_str(&time);
    s
}

/// `io.debezium.time.Interval.toIsoString`: `P<y>Y<m>M<d>DT<h>H<min>M<s>S` over pgjdbc's
/// `PGInterval` split, seconds as a plain decimal without trailing zeros.
pub(crate) fn interval_iso(months: i32, days: i32, micros: i64) -> String {
    let years = months / 12;
    let mons = months % 12;
    let hours = micros / 3_600_000_000;
    let minutes = (micros % 3_600_000_000) / 60_000_000;
    let sec_micros = micros % 60_000_000;
    let seconds = Decimal {
        negative: sec_micros < 0,
        unscaled: sec_micros.unsigned_abs().to_string(),
        scale: 6,
    }
    .strip_trailing_zeros()
    .to_plain_string();
    format!("P{years}Y{mons}M{days}DT{hours}H{minutes}M{seconds}S")
}

fn push_display(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

fn push_base64(out: &mut String, bytes: &[u8]) {
    out.push('"');
    B64.encode_string(bytes, out);
    out.push('"');
}

fn money_decimal(cents: i64) -> Decimal {
    Decimal {
        negative: cents < 0,
        unscaled: cents.unsigned_abs().to_string(),
        scale: 2,
    }
}

/// `io.debezium.time.ZonedTime`: `HH:mm:ss` plus the fraction without trailing zeros, then `Z`
/// (Java's `ISO_OFFSET_TIME` of a UTC `OffsetTime`).
pub(crate) fn format_zoned_time(utc_micros: i64) -> String {
    let secs = utc_micros / 1_000_000;
    let frac = utc_micros % 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// `io.debezium.time.ZonedTimestamp`: ISO date (years beyond 9999 signed, as Java prints
/// them), `T`, time with a fixed-width fraction, `Z`.
#[cfg(test)]
pub(crate) fn format_zoned_timestamp(us: i128, fraction_digits: u32) -> String {
    let mut s = String::with_capacity(32);
    push_zoned_timestamp(&mut s, us, fraction_digits);
    s
}

/// [`format_zoned_timestamp`] as a JSON string literal (its characters need no escaping).
fn write_zoned_timestamp_literal(out: &mut String, us: i128, fraction_digits: u32) {
    out.push('"');
    push_zoned_timestamp(out, us, fraction_digits);
    out.push('"');
}

/// Appends `value` as exactly `width` decimal digits (`value < 10^width`), without `fmt`.
fn push_digits(out: &mut String, mut value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or_default());
}

pub(crate) fn push_zoned_timestamp(s: &mut String, us: i128, fraction_digits: u32) {
    let day = i128::from(MICROS_PER_DAY);
    let days = us.div_euclid(day) as i64;
    let tod = us.rem_euclid(day) as i64;
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        s.push('+');
        s.push_str(itoa::Buffer::new().format(y));
    } else if y < 0 {
        let _ = write!(s, "-{:04}", -y);
    } else {
        push_digits(s, y as u64, 4);
    }
    let secs = tod / 1_000_000;
    s.push('-');
    push_digits(s, m as u64, 2);
    s.push('-');
    push_digits(s, d as u64, 2);
    s.push('T');
    push_digits(s, (secs / 3600) as u64, 2);
    s.push(':');
    push_digits(s, (secs / 60 % 60) as u64, 2);
    s.push(':');
    push_digits(s, (secs % 60) as u64, 2);
    if fraction_digits > 0 {
        let digits = (fraction_digits as usize).min(6);
        let fraction = (tod % 1_000_000) as u64 / 10u64.pow(6 - digits as u32);
        s.push('.');
        push_digits(s, fraction, digits);
    }
    s.push('Z');
}

/// Debezium's `MicroDuration.durationMicros` over the interval as pgjdbc's `PGInterval` splits
/// it (years, months, days, hours, minutes, seconds as a double), in the same floating-point
/// steps, so rounding and the saturating `(long)` cast match.
pub(crate) fn interval_micros(months: i32, days: i32, micros: i64) -> i64 {
    let years = months / 12;
    let mons = months % 12;
    let hours = micros / 3_600_000_000;
    let minutes = (micros % 3_600_000_000) / 60_000_000;
    let whole_seconds = (micros % 60_000_000) / 1_000_000;
    let frac_micros = micros % 1_000_000;
    let seconds = whole_seconds as f64 + frac_micros as f64 / 1e6;
    let number_of_days =
        f64::from(years.wrapping_mul(12).wrapping_add(mons)) * DAYS_PER_MONTH_AVG + f64::from(days);
    let number_of_seconds =
        (((number_of_days * 24.0 + hours as f64) * 60.0) + minutes as f64) * 60.0 + seconds;
    (number_of_seconds * 1e6) as i64
}

/// `io.debezium.data.geometry.Point` from PostgreSQL's `(x,y)`: x, y, and the point as
/// little-endian WKB (byte order 1, type 1, x, y); srid null.
fn write_point(out: &mut String, text: &str) -> Option<()> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (x, y) = inner.split_once(',')?;
    let x: f64 = x.trim().parse().ok()?;
    let y: f64 = y.trim().parse().ok()?;
    let mut wkb = vec![1u8, 1, 0, 0, 0];
    wkb.extend_from_slice(&x.to_le_bytes());
    wkb.extend_from_slice(&y.to_le_bytes());
    out.push_str("{\"x\":");
    jackson::write_f64(out, x);
    out.push_str(",\"y\":");
    jackson::write_f64(out, y);
    out.push_str(",\"wkb\":");
    push_base64(out, &wkb);
    out.push_str(",\"srid\":null}");
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`UNAVAILABLE_UUID`] is Java's `UUID.nameUUIDFromBytes` of the placeholder: its MD5
    /// with the version (3) and IETF variant bits set.
    #[test]
    fn unavailable_uuid_is_the_name_based_uuid_of_the_placeholder() {
        use md5::Digest as _;
        let mut h: [u8; 16] = md5::Md5::digest(UNAVAILABLE_VALUE.as_bytes()).into();
        h[6] = (h[6] & 0x0f) | 0x30;
        h[8] = (h[8] & 0x3f) | 0x80;
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        assert_eq!(uuid, UNAVAILABLE_UUID);
    }

    /// pgjdbc's `getValue()` of each geometric type, from PostgreSQL's output text.
    #[test]
    fn geometric_text_as_pgjdbc_prints_it() {
        // Verified against Debezium (`golden/types/toast_modes`).
        assert_eq!(java_geometric("(1,1),(0,0)"), "(1.0,1.0),(0.0,0.0)");
        assert_eq!(java_geometric("<(1,1),2>"), "<(1.0,1.0),2.0>");
        // From pgjdbc's PGlseg / PGline / PGpath / PGpolygon `getValue()`.
        assert_eq!(java_geometric("[(0,0),(1.5,-2)]"), "[(0.0,0.0),(1.5,-2.0)]");
        assert_eq!(java_geometric("{1,-1,0}"), "{1.0,-1.0,0.0}");
        assert_eq!(
            java_geometric("((0,0),(1,1),(1,0))"),
            "((0.0,0.0),(1.0,1.0),(1.0,0.0))"
        );
        assert_eq!(java_geometric("(1e+20,1e-05)"), "(1.0E20,1.0E-5)");
        assert_eq!(
            java_geometric("(Infinity,-Infinity),(NaN,0)"),
            "(Infinity,-Infinity),(NaN,0.0)"
        );
    }

    #[test]
    fn temporal_formats() {
        assert_eq!(format_zoned_time(27_855_123_456), "07:44:15.123456Z");
        assert_eq!(format_zoned_time(43_200_000_000), "12:00:00Z");
        assert_eq!(format_zoned_time(500_000), "00:00:00.5Z");
        assert_eq!(
            format_zoned_timestamp(1_709_208_855_123_456, 6),
            "2024-02-29T12:14:15.123456Z"
        );
        assert_eq!(format_zoned_timestamp(-1, 6), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_zoned_timestamp(0, 6), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_zoned_timestamp(0, 0), "1970-01-01T00:00:00Z");
        // Fraction widths other than 6 truncate (as the former `format!` slicing did).
        assert_eq!(
            format_zoned_timestamp(1_709_208_855_123_456, 3),
            "2024-02-29T12:14:15.123Z"
        );
        // Years beyond 9999 carry a sign, years before 1000 are zero-padded.
        assert_eq!(
            format_zoned_timestamp(253_402_300_800_000_000, 1),
            "+10000-01-01T00:00:00.0Z"
        );
        assert_eq!(
            format_zoned_timestamp(-59_011_459_200_000_000, 6),
            "0100-01-01T00:00:00.000000Z"
        );
        assert_eq!(interval_micros(14, 3, 14_706_789_000), 37_091_106_789_000);
        assert_eq!(interval_micros(0, -1, -1), -86_400_000_001);
        assert_eq!(interval_micros(-2_136_000_000, 0, 0), i64::MIN);
        assert_eq!(interval_micros(0, 0, 0), 0);
    }

    fn col(ty: &str) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            type_oid: 0,
            type_name: ty.into(),
            base_type_oid: 0,
            type_modifier: -1,
            nullable: true,
            default_expr: None,
            enum_values: None,
            dimensions: 0,
        }
    }

    fn render(kind: &Kind, v: &Value) -> String {
        let mut s = String::new();
        kind.write_value(&mut s, v).unwrap();
        s
    }

    #[test]
    fn modes_beyond_the_goldens() {
        let modes = |f: fn(&mut TypeModes)| {
            let mut m = TypeModes::default();
            f(&mut m);
            m
        };
        let kind = |ty: &str, m: &TypeModes| Kind::for_type(&col(ty), ty, m, DecimalFormat::Base64);
        // Unknown types: left out by default, binary text with include.unknown.datatypes.
        assert!(kind("polygon", &TypeModes::default()).is_omitted());
        assert!(kind("_box", &TypeModes::default()).is_omitted());
        let hex = modes(|m| {
            m.include_unknown_datatypes = true;
            m.binary = BinaryHandlingMode::Hex
        });
        assert_eq!(
            render(&kind("box", &hex), &Value::Text("(1,1),(0,0)".into())),
            "\"28312c31292c28302c3029\""
        );
        let url = modes(|m| m.binary = BinaryHandlingMode::Base64UrlSafe);
        assert_eq!(
            render(&kind("bytea", &url), &Value::Bytes(vec![0xfb, 0xff])),
            "\"-_8=\""
        );
        // money.fraction.digits rescales the cents, half up.
        let m4 = modes(|m| m.money_fraction_digits = 4);
        let mut schema = String::new();
        kind("money", &m4).write_schema(&mut schema, true, None, None);
        assert!(schema.contains(r#""parameters":{"scale":"4"}"#), "{schema}");
        // 12.34 at scale 4 = 123400 = 0x01E208.
        assert_eq!(render(&kind("money", &m4), &Value::Money(1234)), "\"AeII\"");
        let m0 = modes(|m| m.money_fraction_digits = 0);
        assert_eq!(render(&kind("money", &m0), &Value::Money(150)), "\"Ag==\"");
        // decimal.format=NUMERIC uses BigDecimal.toString (scientific below 1e-6).
        let c = ColumnSchema {
            type_modifier: ((10 << 16) | 9) + 4,
            ..col("numeric")
        };
        let k = Kind::for_type(&c, "numeric", &TypeModes::default(), DecimalFormat::Numeric);
        assert_eq!(
            render(&k, &Value::Numeric(Numeric::Finite("0.0000001".into()))),
            "1.00E-7"
        );
        assert_eq!(
            render(&k, &Value::Numeric(Numeric::Finite("-1.5".into()))),
            "-1.500000000"
        );
        // Nanoseconds overflow to null; microseconds saturate as Debezium's TimeUnit does.
        let nano = modes(|m| m.time_precision = TimePrecisionMode::Nanoseconds);
        assert_eq!(
            render(
                &kind("timestamp", &nano),
                &Value::Text("294276-12-31 23:59:59.999".into())
            ),
            "null"
        );
        assert_eq!(
            java_epoch_micros(9_224_318_015_999_999_000),
            -9_223_372_036_853_776_809
        );
        assert_eq!(java_epoch_micros(-1), -1);
        assert_eq!(
            interval_iso(-13, 2, -3_723_000_001),
            "P-1Y-1M2DT-1H-2M-3.000001S"
        );
        assert_eq!(format_iso_timestamp(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_iso_date(-2_440_550), "-4712-01-01");
    }

    #[test]
    fn null_fallbacks_beyond_the_goldens() {
        let modes = TypeModes::default();
        // time.precision.mode=nanoseconds: Debezium 3.6.3 has no fallback for NanoTimestamp
        // and stops the connector (fixtures/notnull/golden/nanoseconds.error); pgseam writes
        // the epoch, as for every other temporal kind.
        assert_eq!(
            Kind::NanoTimestamp.null_fallback(&col("timestamp"), &modes),
            "0"
        );
        assert_eq!(Kind::NanoTime.null_fallback(&col("time"), &modes), "0");
        let mut money = col("money");
        money.type_modifier = -1;
        assert_eq!(
            Kind::DecimalString.null_fallback(&money, &modes),
            "\"0.00\""
        );
    }

    #[test]
    fn connect_strings_as_simple_header_converter_writes_them() {
        let s = |k: &Kind, v: &Value| {
            let mut out = String::new();
            k.write_connect_string(&mut out, v).unwrap();
            out
        };
        assert_eq!(s(&Kind::Int32, &Value::Int32(20)), "20");
        // only backslash and quote are escaped; control characters and non-ASCII stay raw
        assert_eq!(
            s(
                &Kind::String,
                &Value::Text("a\"b\\c\nd\u{e9}\u{1F600}".into())
            ),
            "\"a\\\"b\\\\c\nd\u{e9}\u{1F600}\""
        );
        assert_eq!(s(&Kind::Float64, &Value::Float64(f64::NAN)), "NaN");
        assert_eq!(s(&Kind::Float64, &Value::Float64(1e7)), "1.0E7");
        let dec = Kind::Decimal {
            scale: 2,
            precision: Some(10),
            numeric: false,
        };
        assert_eq!(
            s(&dec, &Value::Numeric(Numeric::Finite("12.5".into()))),
            "12.50"
        );
        assert_eq!(
            s(
                &Kind::Binary(BinaryHandlingMode::Bytes),
                &Value::Bytes(vec![0, 1])
            ),
            "\"AAE=\""
        );
        assert_eq!(s(&Kind::ConnectDate, &Value::Date(19782)), "2024-02-29");
        assert_eq!(s(&Kind::ConnectTime, &Value::Time(1_500)), "00:00:00.001Z");
        assert_eq!(
            s(&Kind::ConnectTimestamp, &Value::Timestamp(86_400_001_000)),
            "1970-01-02T00:00:00.001Z"
        );
        assert_eq!(
            s(
                &Kind::Array(Box::new(Kind::String)),
                &Value::Array(vec![Value::Text("x".into()), Value::Null])
            ),
            "[\"x\",null]"
        );
    }

    #[test]
    fn bit_strings_as_debezium_bitsets() {
        // Captured from Debezium 3.6.3 (golden/types): the last character is bit 0.
        assert_eq!(bits_bytes("10100101"), Some(vec![0xA5]));
        assert_eq!(bits_bytes("100000001"), Some(vec![1, 1]));
        assert_eq!(bits_bytes("00000000000000001"), Some(vec![1]));
        assert_eq!(bits_bytes("10000000000000000"), Some(vec![0, 0, 1]));
        assert_eq!(bits_bytes("0000"), Some(vec![]));
        assert_eq!(bits_bytes(""), Some(vec![]));
        assert_eq!(bits_bytes("10x"), None);
        let bits = Kind::Bits { length: 17 };
        assert_eq!(
            render(&bits, &Value::Text("10000000000000000".into())),
            "\"AAAB\""
        );
        assert_eq!(render(&Kind::Boolean, &Value::Text("1".into())), "true");
        assert_eq!(render(&Kind::Boolean, &Value::Text("0".into())), "false");
        let mut schema = String::new();
        bits.write_schema(&mut schema, true, None, Some("b"));
        assert_eq!(
            schema,
            r#"{"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"17"},"field":"b"}"#
        );
    }

    #[test]
    fn points_carry_wkb() {
        let mut s = String::new();
        write_point(&mut s, "(1.5,-2.5)").unwrap();
        assert_eq!(
            s,
            r#"{"x":1.5,"y":-2.5,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAATA","srid":null}"#
        );
    }
}
