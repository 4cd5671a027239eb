//! One column as a Kafka Connect field: its Connect schema (type, logical name, parameters,
//! default) and how a [`Value`] of it is written as JSON payload.
//!
//! The mapping follows Debezium's `PostgresValueConverter` with the connector defaults
//! `time.precision.mode=adaptive`, `binary.handling.mode=bytes`, `hstore.handling.mode=json`,
//! `interval.handling.mode=numeric`, and the configured `decimal.handling.mode`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use pgseam_model::{ColumnSchema, Numeric, Value};
use pgseam_pgvalue::datetime::{civil_from_days, parse_timestamp, MICROS_PER_DAY};
use std::fmt::Write as _;

use crate::decimal::{i64_bytes, Decimal};
use crate::{hstore, jackson, DecimalHandlingMode};

/// What Debezium writes for a TOASTed value an UPDATE left unchanged.
pub(crate) const UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

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
    Bytes,
    /// `org.apache.kafka.connect.data.Decimal` (numeric(p,s) with precision, money without).
    Decimal {
        scale: u32,
        precision: Option<u32>,
    },
    VariableScaleDecimal,
    DecimalString,
    DecimalDouble,
    Date,
    /// `io.debezium.time.Time`, int32 milliseconds (time(0..3)).
    Time,
    MicroTime,
    ZonedTime,
    /// `io.debezium.time.Timestamp`, int64 milliseconds (timestamp(0..3)).
    Timestamp,
    MicroTimestamp,
    ZonedTimestamp {
        fraction_digits: u32,
    },
    MicroDuration,
    Uuid,
    Json,
    Xml,
    Enum {
        allowed: String,
    },
    Point,
    Hstore,
    Array(Box<Kind>),
}

impl Kind {
    /// The representation of `type_name` (domains resolved) for `column`.
    pub(crate) fn for_type(
        column: &ColumnSchema,
        type_name: &str,
        mode: DecimalHandlingMode,
    ) -> Kind {
        if let Some(element) = type_name.strip_prefix('_') {
            return Kind::Array(Box::new(Kind::for_type(column, element, mode)));
        }
        let precision = if type_name == column.type_name {
            column.length_or_precision()
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
                    Some((p, s)) if type_name == column.type_name => Kind::Decimal {
                        scale: s,
                        precision: Some(p),
                    },
                    _ => Kind::VariableScaleDecimal,
                },
            },
            "money" => match mode {
                DecimalHandlingMode::String => Kind::DecimalString,
                DecimalHandlingMode::Double => Kind::DecimalDouble,
                DecimalHandlingMode::Precise => Kind::Decimal {
                    scale: 2,
                    precision: None,
                },
            },
            "bytea" => Kind::Bytes,
            "date" => Kind::Date,
            "time" => match precision {
                Some(p) if p <= 3 => Kind::Time,
                _ => Kind::MicroTime,
            },
            "timetz" => Kind::ZonedTime,
            "timestamp" => match precision {
                Some(p) if p <= 3 => Kind::Timestamp,
                _ => Kind::MicroTimestamp,
            },
            "timestamptz" => Kind::ZonedTimestamp {
                fraction_digits: precision.unwrap_or(6).min(6),
            },
            "interval" => Kind::MicroDuration,
            "uuid" => Kind::Uuid,
            "json" | "jsonb" => Kind::Json,
            "xml" => Kind::Xml,
            "point" => Kind::Point,
            "hstore" => Kind::Hstore,
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
        let (ty, name, doc): (&str, Option<&str>, Option<&str>) = match self {
            Kind::Int16 => ("int16", None, None),
            Kind::Int32 => ("int32", None, None),
            Kind::Int64 => ("int64", None, None),
            Kind::Float32 => ("float", None, None),
            Kind::Float64 | Kind::DecimalDouble => ("double", None, None),
            Kind::Boolean => ("boolean", None, None),
            Kind::String | Kind::DecimalString => ("string", None, None),
            Kind::Bytes => ("bytes", None, None),
            Kind::Decimal { .. } => ("bytes", Some("org.apache.kafka.connect.data.Decimal"), None),
            Kind::VariableScaleDecimal => (
                "struct",
                Some("io.debezium.data.VariableScaleDecimal"),
                Some("Variable scaled decimal"),
            ),
            Kind::Date => ("int32", Some("io.debezium.time.Date"), None),
            Kind::Time => ("int32", Some("io.debezium.time.Time"), None),
            Kind::MicroTime => ("int64", Some("io.debezium.time.MicroTime"), None),
            Kind::ZonedTime => ("string", Some("io.debezium.time.ZonedTime"), None),
            Kind::Timestamp => ("int64", Some("io.debezium.time.Timestamp"), None),
            Kind::MicroTimestamp => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
            Kind::ZonedTimestamp { .. } => {
                ("string", Some("io.debezium.time.ZonedTimestamp"), None)
            }
            Kind::MicroDuration => ("int64", Some("io.debezium.time.MicroDuration"), None),
            Kind::Uuid => ("string", Some("io.debezium.data.Uuid"), None),
            Kind::Json | Kind::Hstore => ("string", Some("io.debezium.data.Json"), None),
            Kind::Xml => ("string", Some("io.debezium.data.Xml"), None),
            Kind::Enum { .. } => ("string", Some("io.debezium.data.Enum"), None),
            Kind::Point => (
                "struct",
                Some("io.debezium.data.geometry.Point"),
                Some("Geometry (POINT)"),
            ),
            Kind::Array(_) => ("array", None, None),
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
                element.write_schema(out, true, None, None);
            }
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
        match self {
            Kind::Decimal { scale, precision } => {
                let _ = write!(out, ",\"parameters\":{{\"scale\":\"{scale}\"");
                if let Some(p) = precision {
                    let _ = write!(out, ",\"connect.decimal.precision\":\"{p}\"");
                }
                out.push('}');
            }
            Kind::Enum { allowed } => {
                out.push_str(",\"parameters\":{\"allowed\":");
                jackson::write_str(out, allowed);
                out.push('}');
            }
            _ => {}
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
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int16(v)) => push_display(out, v),
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int32(v)) => push_display(out, v),
            (Kind::Int16 | Kind::Int32 | Kind::Int64, Value::Int64(v)) => push_display(out, v),
            (Kind::Float32, Value::Float32(v)) => jackson::write_f32(out, *v),
            (Kind::Float64, Value::Float64(v)) => jackson::write_f64(out, *v),
            (Kind::Float64, Value::Float32(v)) => jackson::write_f64(out, f64::from(*v)),
            (Kind::Boolean, Value::Bool(b)) => push_display(out, b),
            (Kind::Bytes, Value::Bytes(b)) => push_base64(out, b),
            (Kind::Decimal { scale, .. }, Value::Numeric(n)) => match n {
                Numeric::Finite(t) => {
                    let d = Decimal::parse(t).ok_or_else(mismatch)?.with_scale(*scale);
                    push_base64(out, &d.unscaled_bytes());
                }
                _ => out.push_str("null"),
            },
            (Kind::Decimal { .. }, Value::Money(cents)) => push_base64(out, &i64_bytes(*cents)),
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
            (Kind::Date, Value::Date(d)) => push_display(out, d),
            // Unverified against Debezium: pgjdbc maps infinite dates to extreme values.
            (Kind::Date, Value::Infinity { negative }) => {
                push_display(out, if *negative { i32::MIN } else { i32::MAX })
            }
            (Kind::Time, Value::Time(us)) => push_display(out, us.div_euclid(1000)),
            (Kind::MicroTime, Value::Time(us)) => push_display(out, us),
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
            (Kind::Timestamp, Value::Timestamp(us) | Value::TimestampTz(us)) => {
                push_display(out, us.div_euclid(1000))
            }
            (Kind::MicroTimestamp, Value::Timestamp(us) | Value::TimestampTz(us)) => {
                push_display(out, us)
            }
            (Kind::Timestamp | Kind::MicroTimestamp, Value::Text(t)) => {
                let us = match parse_timestamp(t, false) {
                    Some(Ok(us)) => us,
                    _ => return Err(mismatch()),
                };
                let v = if *self == Kind::Timestamp {
                    us.div_euclid(1000)
                } else {
                    us
                };
                push_display(out, v);
            }
            // Unverified against Debezium (no golden has an infinite timestamp without zone).
            (Kind::Timestamp | Kind::MicroTimestamp, Value::Infinity { negative }) => {
                push_display(out, if *negative { i64::MIN } else { i64::MAX })
            }
            (
                Kind::ZonedTimestamp { fraction_digits },
                Value::TimestampTz(us) | Value::Timestamp(us),
            ) => {
                jackson::write_str(
                    out,
                    &format_zoned_timestamp(i128::from(*us), *fraction_digits),
                );
            }
            (Kind::ZonedTimestamp { fraction_digits }, Value::Text(t)) => {
                match parse_timestamp(t, true) {
                    Some(Ok(us)) => {
                        jackson::write_str(out, &format_zoned_timestamp(us, *fraction_digits))
                    }
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
                    element.write_value(out, item)?;
                }
                out.push(']');
            }
            (
                Kind::String
                | Kind::Uuid
                | Kind::Json
                | Kind::Xml
                | Kind::Enum { .. }
                | Kind::DecimalString,
                Value::Text(s) | Value::Uuid(s) | Value::Json(s),
            ) => jackson::write_str(out, s),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// The placeholder Debezium writes for an unchanged TOASTed value.
    fn write_unavailable(&self, out: &mut String) {
        match self {
            Kind::Bytes => push_base64(out, UNAVAILABLE_VALUE.as_bytes()),
            Kind::Array(element) => match **element {
                Kind::Int16 | Kind::Int32 | Kind::Int64 => {
                    out.push('[');
                    for (i, b) in UNAVAILABLE_VALUE.bytes().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_display(out, b);
                    }
                    out.push(']');
                }
                Kind::String | Kind::Json | Kind::Xml | Kind::Enum { .. } | Kind::Uuid => {
                    out.push('[');
                    jackson::write_str(out, UNAVAILABLE_VALUE);
                    out.push(']');
                }
                _ => out.push_str("null"),
            },
            k if k.is_struct() => out.push_str("null"),
            Kind::String
            | Kind::Json
            | Kind::Xml
            | Kind::Enum { .. }
            | Kind::Uuid
            | Kind::Hstore
            | Kind::DecimalString
            | Kind::ZonedTime
            | Kind::ZonedTimestamp { .. } => jackson::write_str(out, UNAVAILABLE_VALUE),
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
pub(crate) fn format_zoned_timestamp(us: i128, fraction_digits: u32) -> String {
    let day = i128::from(MICROS_PER_DAY);
    let days = us.div_euclid(day) as i64;
    let tod = us.rem_euclid(day) as i64;
    let (y, m, d) = civil_from_days(days);
    let mut s = String::new();
    if y > 9999 {
        let _ = write!(s, "+{y}");
    } else if y < 0 {
        let _ = write!(s, "-{:04}", -y);
    } else {
        let _ = write!(s, "{y:04}");
    }
    let secs = tod / 1_000_000;
    let _ = write!(
        s,
        "-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fraction_digits > 0 {
        let f = format!("{:06}", tod % 1_000_000);
        s.push('.');
        s.push_str(&f[..fraction_digits as usize]);
    }
    s.push('Z');
    s
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
        assert_eq!(interval_micros(14, 3, 14_706_789_000), 37_091_106_789_000);
        assert_eq!(interval_micros(0, -1, -1), -86_400_000_001);
        assert_eq!(interval_micros(-2_136_000_000, 0, 0), i64::MIN);
        assert_eq!(interval_micros(0, 0, 0), 0);
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
