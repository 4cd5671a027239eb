//! Decoding of PostgreSQL values from their binary send form (`*send` functions in
//! `src/backend/utils/adt/*.c`), as `COPY … TO STDOUT (FORMAT binary)` writes them.
//!
//! The invariant this module exists for: for every type it accepts, decoding the binary form
//! gives exactly the [`Value`] that [`crate::decode_text`] gives for the text output form of the
//! same datum under pgseam's session settings. The snapshot reads binary, the stream reads
//! pgoutput text, and a row must encode the same in both. Where the text decoder keeps a value
//! as PostgreSQL prints it (`numeric`, timestamps beyond the model's range), this module
//! rebuilds the printed text exactly as the server's output function would.
//!
//! Formats (all integers big-endian, as `pq_sendint*` writes them):
//!
//! | type | send form |
//! |---|---|
//! | bool | 1 byte, 0 or 1 |
//! | int2 / int4 / int8, oid, xid, cid | 2 / 4 / 8 bytes; oid/xid/cid are unsigned 4 bytes |
//! | float4 / float8 | IEEE 754 bits, 4 / 8 bytes |
//! | numeric | int16 ndigits, int16 weight, uint16 sign (0x0000 +, 0x4000 −, 0xC000 NaN, 0xD000 +Inf, 0xF000 −Inf), int16 dscale, ndigits × int16 base-10000 digits |
//! | money | int8 cents |
//! | text, varchar, bpchar, name, enum labels, json | the bytes of the text (UTF-8) |
//! | jsonb | version byte 1, then the text |
//! | bytea | the raw bytes |
//! | date | int4 days since 2000-01-01; `i32::MIN` / `i32::MAX` are −/+infinity |
//! | time | int8 µs since midnight |
//! | timetz | int8 µs since midnight, int4 zone in seconds *west* of Greenwich |
//! | timestamp(tz) | int8 µs since 2000-01-01 (UTC); `i64::MIN` / `i64::MAX` are −/+infinity |
//! | interval | int8 µs, int4 days, int4 months |
//! | uuid | 16 bytes |
//! | bit / varbit | int4 bit count, then the bits, most significant first, padded to whole bytes (`bit_send`); decoded to the text `bit_out` prints (`0101…`) |
//! | arrays | int4 ndim, int4 has-null flag, oid element type, ndim × (int4 length, int4 lower bound), then per element int4 length (−1 NULL) and the element's send form |
//!
//! Safety: every length read from the input is checked against the bytes actually present
//! before anything is allocated, so malformed input is an error, never a panic or an unbounded
//! allocation.

use pgseam_model::{ColumnSchema, Numeric, Value};

use crate::datetime;
use crate::ValueError;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_OFFSET_DAYS: i64 = 10_957;
/// PostgreSQL's `MAXDIM`: arrays have at most six dimensions.
const MAX_ARRAY_DIMENSIONS: i32 = 6;

/// Scalar types this module decodes (base type names after domain resolution). Enum labels are
/// decoded too, but only the catalog knows a type is an enum: see [`binary_supported`].
const SCALAR_TYPES: &[&str] = &[
    "bool",
    "int2",
    "int4",
    "int8",
    "oid",
    "xid",
    "cid",
    "float4",
    "float8",
    "numeric",
    "money",
    "text",
    "varchar",
    "bpchar",
    "name",
    "bytea",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "json",
    "jsonb",
    "bit",
    "varbit",
];

/// Whether values of `type_name` (a base type name, `_elem` for arrays) can be read in binary
/// and decoded by [`decode_binary`]. `is_enum` says that the type (or, for an array, its element
/// type) is an enum, whose send form is its label. Anything else must be read as text (the
/// snapshot casts such columns with their output function).
pub fn binary_supported(type_name: &str, is_enum: bool) -> bool {
    let element = type_name.strip_prefix('_').unwrap_or(type_name);
    is_enum || SCALAR_TYPES.contains(&element)
}

/// Decodes a non-NULL column value from its binary send form. The caller has checked
/// [`binary_supported`]; type names this module does not know (enum labels) decode as UTF-8
/// text.
pub fn decode_binary(column: &ColumnSchema, bytes: &[u8]) -> Result<Value, ValueError> {
    decode_as(column, &column.type_name, bytes)
}

/// How a column's values decode from binary, resolved once from its type name: a snapshot
/// reader decodes millions of values of the same few columns, and [`decode_binary`] finds the
/// decoder by comparing the type name for every value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    Bool,
    Int2,
    Int4,
    Int8,
    /// `oid`, `xid`, `cid`: unsigned 4 bytes.
    Unsigned4,
    Float4,
    Float8,
    Numeric,
    Money,
    Bytea,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    /// `bit`, `varbit`.
    Bits,
    Uuid,
    Json,
    Jsonb,
    /// `text`, `varchar`, `bpchar`, `name`, enum labels: UTF-8 text.
    Text,
    /// An array (`_elem`); its elements' kind is resolved once per value.
    Array,
}

impl BinaryKind {
    /// The kind of `type_name` (a base type name, `_elem` for arrays); names this module does
    /// not know decode as text, as in [`decode_binary`].
    pub fn of(type_name: &str) -> BinaryKind {
        if type_name.starts_with('_') {
            return BinaryKind::Array;
        }
        match type_name {
            "bool" => BinaryKind::Bool,
            "int2" => BinaryKind::Int2,
            "int4" => BinaryKind::Int4,
            "int8" => BinaryKind::Int8,
            "oid" | "xid" | "cid" => BinaryKind::Unsigned4,
            "float4" => BinaryKind::Float4,
            "float8" => BinaryKind::Float8,
            "numeric" => BinaryKind::Numeric,
            "money" => BinaryKind::Money,
            "bytea" => BinaryKind::Bytea,
            "date" => BinaryKind::Date,
            "time" => BinaryKind::Time,
            "timetz" => BinaryKind::TimeTz,
            "timestamp" => BinaryKind::Timestamp,
            "timestamptz" => BinaryKind::TimestampTz,
            "interval" => BinaryKind::Interval,
            "bit" | "varbit" => BinaryKind::Bits,
            "uuid" => BinaryKind::Uuid,
            "json" => BinaryKind::Json,
            "jsonb" => BinaryKind::Jsonb,
            _ => BinaryKind::Text,
        }
    }
}

/// [`decode_binary`] with the column's kind resolved beforehand (`BinaryKind::of` of its
/// type name).
pub fn decode_binary_as(
    column: &ColumnSchema,
    kind: BinaryKind,
    bytes: &[u8],
) -> Result<Value, ValueError> {
    decode_kind(column, kind, &column.type_name, bytes)
}

fn invalid(column: &ColumnSchema, type_name: &str, reason: impl Into<String>) -> ValueError {
    ValueError::InvalidBinary {
        column: column.name.clone(),
        type_name: type_name.to_owned(),
        reason: reason.into(),
    }
}

fn fixed<const N: usize>(
    column: &ColumnSchema,
    type_name: &str,
    bytes: &[u8],
) -> Result<[u8; N], ValueError> {
    bytes.try_into().map_err(|_| {
        invalid(
            column,
            type_name,
            format!("expected {N} bytes, got {}", bytes.len()),
        )
    })
}

fn utf8(column: &ColumnSchema, type_name: &str, bytes: &[u8]) -> Result<String, ValueError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ValueError::NotUtf8 {
        column: column.name.clone(),
        type_name: type_name.to_owned(),
    })
}

fn decode_as(column: &ColumnSchema, type_name: &str, b: &[u8]) -> Result<Value, ValueError> {
    decode_kind(column, BinaryKind::of(type_name), type_name, b)
}

fn decode_kind(
    column: &ColumnSchema,
    kind: BinaryKind,
    type_name: &str,
    b: &[u8],
) -> Result<Value, ValueError> {
    let be_i64 = |b: &[u8]| fixed::<8>(column, type_name, b).map(i64::from_be_bytes);
    let be_i32 = |b: &[u8]| fixed::<4>(column, type_name, b).map(i32::from_be_bytes);
    Ok(match kind {
        BinaryKind::Array => {
            let element = type_name.strip_prefix('_').unwrap_or(type_name);
            return decode_array(column, element, b);
        }
        BinaryKind::Bool => match fixed::<1>(column, type_name, b)? {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            [other] => return Err(invalid(column, type_name, format!("byte {other}"))),
        },
        BinaryKind::Int2 => Value::Int16(i16::from_be_bytes(fixed::<2>(column, type_name, b)?)),
        BinaryKind::Int4 => Value::Int32(be_i32(b)?),
        BinaryKind::Int8 => Value::Int64(be_i64(b)?),
        BinaryKind::Unsigned4 => {
            Value::Int64(u32::from_be_bytes(fixed::<4>(column, type_name, b)?).into())
        }
        BinaryKind::Float4 => Value::Float32(f32::from_be_bytes(fixed::<4>(column, type_name, b)?)),
        BinaryKind::Float8 => Value::Float64(f64::from_be_bytes(fixed::<8>(column, type_name, b)?)),
        BinaryKind::Numeric => {
            Value::Numeric(decode_numeric(b).map_err(|reason| invalid(column, type_name, reason))?)
        }
        BinaryKind::Money => Value::Money(be_i64(b)?),
        BinaryKind::Bytea => Value::Bytes(b.to_vec()),
        BinaryKind::Date => match be_i32(b)? {
            i32::MIN => Value::Infinity { negative: true },
            i32::MAX => Value::Infinity { negative: false },
            days => Value::Date(
                i32::try_from(i64::from(days) + PG_EPOCH_OFFSET_DAYS)
                    .map_err(|_| invalid(column, type_name, "date out of range"))?,
            ),
        },
        BinaryKind::Time => Value::Time(be_i64(b)?),
        BinaryKind::TimeTz => {
            if b.len() != 12 {
                return Err(invalid(
                    column,
                    type_name,
                    format!("expected 12 bytes, got {}", b.len()),
                ));
            }
            let micros = be_i64(&b[..8])?;
            let zone_west = be_i32(&b[8..])?;
            Value::TimeTz {
                micros,
                offset_seconds: zone_west
                    .checked_neg()
                    .ok_or_else(|| invalid(column, type_name, "zone out of range"))?,
            }
        }
        BinaryKind::Timestamp | BinaryKind::TimestampTz => {
            let with_tz = kind == BinaryKind::TimestampTz;
            match be_i64(b)? {
                i64::MIN => Value::Infinity { negative: true },
                i64::MAX => Value::Infinity { negative: false },
                pg_us => match pg_us.checked_add(PG_EPOCH_OFFSET_US) {
                    Some(us) if with_tz => Value::TimestampTz(us),
                    Some(us) => Value::Timestamp(us),
                    // Beyond i64 µs since 1970: the text decoder keeps the printed text.
                    None => Value::Text(datetime::format_timestamp(
                        i128::from(pg_us) + i128::from(PG_EPOCH_OFFSET_US),
                        with_tz,
                    )),
                },
            }
        }
        BinaryKind::Interval => {
            if b.len() != 16 {
                return Err(invalid(
                    column,
                    type_name,
                    format!("expected 16 bytes, got {}", b.len()),
                ));
            }
            Value::Interval {
                micros: be_i64(&b[..8])?,
                days: be_i32(&b[8..12])?,
                months: be_i32(&b[12..])?,
            }
        }
        BinaryKind::Bits => {
            let bits = b
                .get(..4)
                .map(|n| i32::from_be_bytes([n[0], n[1], n[2], n[3]]))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| invalid(column, type_name, "truncated bit length"))?;
            let data = &b[4..];
            if data.len() != bits.div_ceil(8) {
                return Err(invalid(
                    column,
                    type_name,
                    format!("{bits} bits in {} bytes", data.len()),
                ));
            }
            Value::Text(
                (0..bits)
                    .map(|i| {
                        if data[i / 8] & (0x80 >> (i % 8)) != 0 {
                            '1'
                        } else {
                            '0'
                        }
                    })
                    .collect(),
            )
        }
        BinaryKind::Uuid => {
            let u = fixed::<16>(column, type_name, b)?;
            // uuid_out's form: lower-case hex, hyphens after bytes 4, 6, 8 and 10.
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut text = String::with_capacity(36);
            for (i, byte) in u.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    text.push('-');
                }
                text.push(char::from(HEX[usize::from(byte >> 4)]));
                text.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
            Value::Uuid(text)
        }
        BinaryKind::Json => Value::Json(utf8(column, type_name, b)?),
        BinaryKind::Jsonb => match b.split_first() {
            Some((1, text)) => Value::Json(utf8(column, type_name, text)?),
            Some((version, _)) => {
                return Err(invalid(
                    column,
                    type_name,
                    format!("unsupported jsonb version {version}"),
                ))
            }
            None => return Err(invalid(column, type_name, "empty jsonb")),
        },
        BinaryKind::Text => Value::Text(utf8(column, type_name, b)?),
    })
}

/// Reads a big-endian i32 at `at`, advancing it.
fn read_i32(b: &[u8], at: &mut usize) -> Option<i32> {
    let v = b.get(*at..*at + 4)?;
    *at += 4;
    Some(i32::from_be_bytes(v.try_into().ok()?))
}

fn decode_array(column: &ColumnSchema, element: &str, b: &[u8]) -> Result<Value, ValueError> {
    let type_name = format!("_{element}");
    let bad = |reason: &str| invalid(column, &type_name, reason);
    let mut at = 0usize;
    let ndim = read_i32(b, &mut at).ok_or_else(|| bad("truncated header"))?;
    let _has_null = read_i32(b, &mut at).ok_or_else(|| bad("truncated header"))?;
    let _element_oid = read_i32(b, &mut at).ok_or_else(|| bad("truncated header"))?;
    if !(0..=MAX_ARRAY_DIMENSIONS).contains(&ndim) {
        return Err(bad("invalid number of dimensions"));
    }
    if ndim == 0 {
        return if at == b.len() {
            Ok(Value::Array(Vec::new()))
        } else {
            Err(bad("trailing bytes after an empty array"))
        };
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let length = read_i32(b, &mut at).ok_or_else(|| bad("truncated dimensions"))?;
        let _lower = read_i32(b, &mut at).ok_or_else(|| bad("truncated dimensions"))?;
        let length = usize::try_from(length).map_err(|_| bad("negative dimension"))?;
        dims.push(length);
    }
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("too many elements"))?;
    // Every element takes at least its 4-byte length: bounds the allocation by the input.
    if total > (b.len() - at) / 4 {
        return Err(bad("more elements than bytes"));
    }
    let mut elements = Vec::with_capacity(total);
    let element_kind = BinaryKind::of(element);
    for _ in 0..total {
        let length = read_i32(b, &mut at).ok_or_else(|| bad("truncated element"))?;
        if length == -1 {
            elements.push(Value::Null);
            continue;
        }
        let length = usize::try_from(length).map_err(|_| bad("negative element length"))?;
        let end = at
            .checked_add(length)
            .filter(|&end| end <= b.len())
            .ok_or_else(|| bad("truncated element"))?;
        elements.push(decode_kind(column, element_kind, element, &b[at..end])?);
        at = end;
    }
    if at != b.len() {
        return Err(bad("trailing bytes"));
    }
    // Multi-dimensional: the elements come in row-major order; nest them as the text
    // decoder does, innermost dimension first.
    let mut level = elements;
    for &length in dims[1..].iter().rev() {
        let outer = level.len().checked_div(length).unwrap_or(0);
        let mut items = level.into_iter();
        level = (0..outer)
            .map(|_| Value::Array(items.by_ref().take(length).collect()))
            .collect();
    }
    Ok(Value::Array(level))
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// PostgreSQL's `NUMERIC_DSCALE_MAX`.
const NUMERIC_DSCALE_MAX: i16 = 0x3FFF;
const NBASE: i16 = 10_000;

/// `numeric_send`'s form to the text `numeric_out` prints (`get_str_from_var`).
fn decode_numeric(b: &[u8]) -> Result<Numeric, String> {
    let word = |i: usize| -> Result<i16, String> {
        b.get(i * 2..i * 2 + 2)
            .map(|w| i16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = word(0)?;
    let weight = word(1)?;
    let sign = word(2)? as u16;
    let dscale = word(3)?;
    let ndigits = usize::try_from(ndigits).map_err(|_| "negative digit count".to_owned())?;
    if b.len() != 8 + ndigits * 2 {
        return Err(format!(
            "numeric with {ndigits} digits has {} bytes",
            b.len()
        ));
    }
    match sign {
        NUMERIC_NAN => return Ok(Numeric::NaN),
        NUMERIC_PINF => return Ok(Numeric::PositiveInfinity),
        NUMERIC_NINF => return Ok(Numeric::NegativeInfinity),
        NUMERIC_POS | NUMERIC_NEG => {}
        other => return Err(format!("invalid numeric sign {other:#06x}")),
    }
    if !(0..=NUMERIC_DSCALE_MAX).contains(&dscale) {
        return Err(format!("invalid numeric scale {dscale}"));
    }
    // Base-10000 digit `i` (0 beyond the stored ones), checked as it is read.
    let digit_at = |i: i32| -> Result<i16, String> {
        let Some(i) = usize::try_from(i).ok().filter(|&i| i < ndigits) else {
            return Ok(0);
        };
        let d = word(4 + i)?;
        if !(0..NBASE).contains(&d) {
            return Err(format!("invalid numeric digit {d}"));
        }
        Ok(d)
    };
    for i in 0..ndigits {
        digit_at(i as i32)?;
    }
    // Four decimal digits of a base-10000 digit, written without allocating.
    fn push_group(out: &mut String, group: i16) {
        let g = group as u16;
        for divisor in [1000, 100, 10, 1] {
            out.push(char::from(b'0' + (g / divisor % 10) as u8));
        }
    }
    let weight = i32::from(weight);
    let integer_groups = usize::try_from(weight + 1).unwrap_or(0);
    let mut out = String::with_capacity(2 + integer_groups * 4 + dscale as usize + 4);
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    let mut d: i32;
    if weight < 0 {
        d = weight + 1;
        out.push('0');
    } else {
        // The first group without its leading zeros, then whole groups.
        let first = digit_at(0)? as u16;
        let mut divisor = 1000;
        while divisor > 1 && first < divisor {
            divisor /= 10;
        }
        while divisor > 0 {
            out.push(char::from(b'0' + (first / divisor % 10) as u8));
            divisor /= 10;
        }
        d = 1;
        while d <= weight {
            push_group(&mut out, digit_at(d)?);
            d += 1;
        }
    }
    if dscale > 0 {
        out.push('.');
        let fraction_start = out.len();
        while out.len() - fraction_start < dscale as usize {
            push_group(&mut out, digit_at(d)?);
            d += 1;
        }
        out.truncate(fraction_start + dscale as usize);
    }
    Ok(Numeric::Finite(out))
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

    fn b(t: &str, bytes: &[u8]) -> Value {
        decode_binary(&col(t), bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_print_as_numeric_out() {
        let n = |s: &str| Value::Numeric(Numeric::Finite(s.into()));
        assert_eq!(b("numeric", &numeric(0, 0, 0, 0, &[])), n("0"));
        assert_eq!(b("numeric", &numeric(0, 0, 0, 2, &[])), n("0.00"));
        assert_eq!(
            b("numeric", &numeric(3, 1, 0, 2, &[1234, 5678, 9100])),
            n("12345678.91")
        );
        assert_eq!(
            b("numeric", &numeric(1, -2, 0x4000, 6, &[100])),
            n("-0.000001")
        );
        assert_eq!(b("numeric", &numeric(1, 2, 0, 0, &[7])), n("700000000"));
        assert_eq!(
            b("numeric", &numeric(0, 0, 0xC000, 0, &[])),
            Value::Numeric(Numeric::NaN)
        );
        assert_eq!(
            b("numeric", &numeric(0, 0, 0xF000, 0, &[])),
            Value::Numeric(Numeric::NegativeInfinity)
        );
        assert!(decode_binary(&col("numeric"), &numeric(1, 0, 0, 0, &[10_000])).is_err());
        assert!(decode_binary(&col("numeric"), &numeric(2, 0, 0, 0, &[1])).is_err());
        assert!(decode_binary(&col("numeric"), &numeric(-1, 0, 0, 0, &[])).is_err());
        assert!(decode_binary(&col("numeric"), &[0, 1]).is_err());
    }

    /// `numeric_send` of a decimal text as PostgreSQL would store it (base-10000 groups
    /// aligned on the decimal point, leading and trailing zero groups stripped).
    fn numeric_of(text: &str) -> Vec<u8> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let dscale = frac.len() as i16;
        let int_pad = (4 - int.len() % 4) % 4;
        let frac_pad = (4 - frac.len() % 4) % 4;
        let all = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
        let mut groups: Vec<i16> = all
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
            .collect();
        let mut weight = ((int.len() + int_pad) / 4) as i16 - 1;
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        let sign = if negative && !groups.is_empty() {
            0x4000
        } else {
            0
        };
        numeric(groups.len() as i16, weight, sign, dscale, &groups)
    }

    #[test]
    fn numerics_round_trip_numeric_out_on_many_shapes() {
        // A small deterministic generator: integer parts of 0-13 digits, scales 0-11.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..20_000 {
            let int_len = next(14) as usize;
            let scale = next(12) as usize;
            let mut text = String::new();
            if next(2) == 0 {
                text.push('-');
            }
            let mut int: String = (0..int_len)
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let int_trimmed = int.trim_start_matches('0');
            int = if int_trimmed.is_empty() {
                "0".into()
            } else {
                int_trimmed.into()
            };
            text.push_str(&int);
            if scale > 0 {
                text.push('.');
                text.extend((0..scale).map(|_| char::from(b'0' + next(10) as u8)));
            }
            if text
                .trim_start_matches('-')
                .trim_matches(|c| c == '0' || c == '.')
                .is_empty()
            {
                text = text.trim_start_matches('-').to_owned(); // PostgreSQL has no -0
            }
            assert_eq!(
                b("numeric", &numeric_of(&text)),
                Value::Numeric(Numeric::Finite(text.clone())),
                "{text}"
            );
        }
    }

    #[test]
    fn bit_strings_print_as_bit_out() {
        let bits = |n: i32, data: &[u8]| {
            let mut v = n.to_be_bytes().to_vec();
            v.extend_from_slice(data);
            v
        };
        assert_eq!(
            b("bit", &bits(9, &[0x80, 0x80])),
            Value::Text("100000001".into())
        );
        assert_eq!(b("varbit", &bits(0, &[])), Value::Text(String::new()));
        assert_eq!(b("varbit", &bits(3, &[0xA0])), Value::Text("101".into()));
        assert_eq!(
            b("_varbit", &{
                let mut a = Vec::new();
                for x in [1i32, 0, 1562] {
                    a.extend_from_slice(&x.to_be_bytes());
                }
                a.extend_from_slice(&1i32.to_be_bytes());
                a.extend_from_slice(&1i32.to_be_bytes());
                let e = bits(2, &[0x40]);
                a.extend_from_slice(&(e.len() as i32).to_be_bytes());
                a.extend_from_slice(&e);
                a
            }),
            Value::Array(vec![Value::Text("01".into())])
        );
        assert!(decode_binary(&col("bit"), &bits(9, &[0x80])).is_err());
        assert!(decode_binary(&col("bit"), &bits(-1, &[])).is_err());
        assert!(decode_binary(&col("bit"), &[0, 0]).is_err());
    }

    #[test]
    fn temporal_edges() {
        assert_eq!(b("date", &0i32.to_be_bytes()), Value::Date(10_957));
        assert_eq!(
            b("date", &i32::MAX.to_be_bytes()),
            Value::Infinity { negative: false }
        );
        assert_eq!(
            b("timestamp", &0i64.to_be_bytes()),
            Value::Timestamp(PG_EPOCH_OFFSET_US)
        );
        assert_eq!(
            b("timestamptz", &i64::MIN.to_be_bytes()),
            Value::Infinity { negative: true }
        );
        // 294276-12-31 23:59:59.999 is past i64 µs since 1970: kept as PostgreSQL prints it.
        let late = 9_224_318_015_999_999_000i128 - i128::from(PG_EPOCH_OFFSET_US);
        assert_eq!(
            b("timestamp", &(late as i64).to_be_bytes()),
            Value::Text("294276-12-31 23:59:59.999".into())
        );
        assert_eq!(
            b("timestamptz", &(late as i64).to_be_bytes()),
            Value::Text("294276-12-31 23:59:59.999+00".into())
        );
        let mut timetz = 47_655_123_456i64.to_be_bytes().to_vec();
        timetz.extend_from_slice(&(-19_800i32).to_be_bytes());
        assert_eq!(
            b("timetz", &timetz),
            Value::TimeTz {
                micros: 47_655_123_456,
                offset_seconds: 19_800
            }
        );
        let mut interval = (-1i64).to_be_bytes().to_vec();
        interval.extend_from_slice(&(-1i32).to_be_bytes());
        interval.extend_from_slice(&14i32.to_be_bytes());
        assert_eq!(
            b("interval", &interval),
            Value::Interval {
                months: 14,
                days: -1,
                micros: -1
            }
        );
    }

    fn array(ndim: i32, dims: &[i32], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndim.to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&23i32.to_be_bytes());
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&1i32.to_be_bytes());
        }
        for e in elements {
            match e {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(e) => {
                    v.extend_from_slice(&(e.len() as i32).to_be_bytes());
                    v.extend_from_slice(e);
                }
            }
        }
        v
    }

    #[test]
    fn arrays_and_malformed_input() {
        let one = 1i32.to_be_bytes();
        assert_eq!(
            b("_int4", &array(1, &[2], &[Some(&one), None])),
            Value::Array(vec![Value::Int32(1), Value::Null])
        );
        assert_eq!(b("_int4", &array(0, &[], &[])), Value::Array(vec![]));
        assert_eq!(
            b("_int4", &array(2, &[2, 1], &[Some(&one), Some(&one)])),
            Value::Array(vec![
                Value::Array(vec![Value::Int32(1)]),
                Value::Array(vec![Value::Int32(1)])
            ])
        );
        // Row-major order, as `{{1,2,3},{4,5,6}}`; and a 3-dimensional `{{{1},{2}},{{3},{NULL}}}`.
        let n = |i: i32| i.to_be_bytes();
        let (n1, n2, n3, n4, n5, n6) = (n(1), n(2), n(3), n(4), n(5), n(6));
        let ints = |v: &[i32]| Value::Array(v.iter().map(|i| Value::Int32(*i)).collect());
        assert_eq!(
            b(
                "_int4",
                &array(
                    2,
                    &[2, 3],
                    &[
                        Some(&n1),
                        Some(&n2),
                        Some(&n3),
                        Some(&n4),
                        Some(&n5),
                        Some(&n6)
                    ]
                )
            ),
            Value::Array(vec![ints(&[1, 2, 3]), ints(&[4, 5, 6])])
        );
        assert_eq!(
            b(
                "_int4",
                &array(3, &[2, 2, 1], &[Some(&n1), Some(&n2), Some(&n3), None])
            ),
            Value::Array(vec![
                Value::Array(vec![ints(&[1]), ints(&[2])]),
                Value::Array(vec![ints(&[3]), Value::Array(vec![Value::Null])]),
            ])
        );
        // A huge claimed element count is rejected before allocating.
        assert!(decode_binary(&col("_int4"), &array(1, &[i32::MAX], &[])).is_err());
        assert!(decode_binary(&col("_int4"), &array(2, &[65536, 65536], &[])).is_err());
        assert!(decode_binary(&col("_int4"), &array(7, &[1; 7], &[None])).is_err());
        assert!(decode_binary(&col("_int4"), &array(1, &[1], &[Some(&[1, 2])])).is_err());
        assert!(decode_binary(&col("int4"), &[0, 0, 1]).is_err());
        assert!(decode_binary(&col("bool"), &[2]).is_err());
        assert!(decode_binary(&col("jsonb"), &[2, b'1']).is_err());
        assert!(decode_binary(&col("text"), &[0xff]).is_err());
        // Every prefix of a valid value is an error, never a panic.
        let valid = array(1, &[2], &[Some(&one), Some(&one)]);
        for end in 0..valid.len() {
            assert!(
                decode_binary(&col("_int4"), &valid[..end]).is_err(),
                "{end}"
            );
        }
    }

    #[test]
    fn text_like_uuid_json() {
        assert_eq!(b("mood", b"happy"), Value::Text("happy".into()));
        assert_eq!(
            b("jsonb", b"\x01{\"a\": 1}"),
            Value::Json("{\"a\": 1}".into())
        );
        assert_eq!(
            b(
                "uuid",
                &[
                    0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd,
                    0x38, 0x0a, 0x11
                ]
            ),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert_eq!(
            b("oid", &u32::MAX.to_be_bytes()),
            Value::Int64(u32::MAX.into())
        );
        assert!(binary_supported("_mood", true));
        assert!(binary_supported("_numeric", false));
        assert!(!binary_supported("inet", false));
        assert!(!binary_supported("_inet", false));
    }
}
