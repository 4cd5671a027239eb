//! Connect payload JSON → Avro binary datum in one pass, into one buffer.
//!
//! The envelope renders each record's payload once (golden-verified, see the module docs of
//! [`super`]); this module reads that JSON text byte by byte and writes the Avro binary
//! encoding of the same value as `AvroData.fromConnectData` + Avro's `GenericDatumWriter`
//! would, without building a JSON tree or an Avro value tree. What drives it is a [`Plan`],
//! built once per table version from the Connect schema: per node its Avro type and, for an
//! optional schema, the union branches AvroData gives it.
//!
//! Avro binary encoding (Avro 1.11 specification, "Binary Encoding"):
//! - `int`/`long`: zig-zag, then a little-endian base-128 varint;
//! - `float`/`double`: 4 / 8 bytes, IEEE 754 little-endian;
//! - `boolean`: one byte 0/1; `string`/`bytes`: long length, then the bytes (a `decimal` on
//!   `bytes` is the unscaled two's-complement big-endian bytes, as given);
//! - `union`: long branch index, then the branch's value;
//! - `array`/`map`: one block (long item count, items; map keys are strings), then the empty
//!   block `0`; an empty array or map is just `0` (what apache-avro and Avro Java write);
//! - `record`: its fields in schema order, nothing else.
//!
//! The JSON forms are Kafka Connect `JsonConverter`'s: bytes and decimals base64, non-finite
//! floats as the strings `NaN` / `Infinity` / `-Infinity`, maps as objects (their entries keep
//! the payload's order, which is Java's `HashMap` order as the envelope reproduces it). A
//! string escape of an unpaired UTF-16 surrogate (a string cut inside a pair by
//! `column.truncate.to.N.chars`) is written as `?`, as Java's UTF-8 encoder does. Struct
//! fields are expected in schema order (the renderer writes them so); any other order, an
//! absent field (null) or an unknown one (ignored) takes a slower path with the same result.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::connect::{ConnectSchema, ConnectType};

/// The Avro type a node is written as.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Int,
    Long,
    Float,
    Double,
    Boolean,
    String,
    Bytes,
    Array(Box<Plan>),
    Map(Box<Plan>),
    Record(Vec<(String, Plan)>),
}

/// How one Connect schema is encoded (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    node: Node,
    /// For an optional schema, the union branch indices (null, value): `["null", T]`, or
    /// `[T, "null"]` when the schema has a default (never for structs), as AvroData maps it.
    union: Option<(u8, u8)>,
    /// The Connect type and name, for error messages.
    what: String,
}

impl Plan {
    /// The plan of `schema`.
    pub(crate) fn new(schema: &ConnectSchema) -> Result<Plan, String> {
        let node = match schema.ty {
            ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32 => Node::Int,
            ConnectType::Int64 => Node::Long,
            ConnectType::Float32 => Node::Float,
            ConnectType::Float64 => Node::Double,
            ConnectType::Boolean => Node::Boolean,
            ConnectType::String => Node::String,
            ConnectType::Bytes => Node::Bytes,
            ConnectType::Array => Node::Array(Box::new(Plan::new(
                schema
                    .value_schema
                    .as_ref()
                    .ok_or("an array has no items")?,
            )?)),
            ConnectType::Map => Node::Map(Box::new(Plan::new(
                schema.value_schema.as_ref().ok_or("a map has no values")?,
            )?)),
            ConnectType::Struct => Node::Record(
                schema
                    .fields
                    .iter()
                    .map(|(name, s)| Ok((name.clone(), Plan::new(s)?)))
                    .collect::<Result<_, String>>()?,
            ),
        };
        let union = schema.optional.then(|| {
            if schema.default.is_some() && schema.ty != ConnectType::Struct {
                (1, 0)
            } else {
                (0, 1)
            }
        });
        Ok(Plan {
            node,
            union,
            what: format!(
                "Connect {:?}{}",
                schema.ty,
                schema
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        })
    }

    /// Appends the Avro datum of `json` (one JSON value of this plan's schema) to `out`.
    /// `Err` names what does not fit; `out` may then hold a partial datum.
    pub(crate) fn encode(&self, json: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut r = Reader { b: json, i: 0 };
        self.value(&mut r, out)?;
        r.ws();
        if r.i != json.len() {
            return Err(format!(
                "trailing characters at byte {} of the payload",
                r.i
            ));
        }
        Ok(())
    }

    /// Appends the Avro datum of one JSON value of this plan's schema, as [`encode`](Self::encode)
    /// without the end-of-input check (for a field rendered on its own).
    pub(crate) fn transcode(&self, json: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.value(&mut Reader { b: json, i: 0 }, out)
    }

    /// Writes a null: the union's null branch; `Err` for a required schema.
    pub(crate) fn write_null(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self.union {
            Some((null, _)) => {
                out.push(null * 2);
                Ok(())
            }
            None => Err(format!("null in a required {} field", self.what)),
        }
    }

    /// Writes the union's value branch (nothing for a required schema); the value follows.
    pub(crate) fn write_present(&self, out: &mut Vec<u8>) {
        if let Some((_, value)) = self.union {
            out.push(value * 2);
        }
    }

    /// The fields of a record plan.
    pub(crate) fn fields(&self) -> Option<&[(String, Plan)]> {
        match &self.node {
            Node::Record(fields) => Some(fields),
            _ => None,
        }
    }

    /// Writes `scalar` directly if this plan's Avro type takes it; `false`: it does not (the
    /// caller renders the value as JSON and transcodes it instead). Never writes partially.
    pub(crate) fn write_scalar(&self, scalar: Scalar<'_>, out: &mut Vec<u8>) -> bool {
        match (&self.node, scalar) {
            (Node::Int, Scalar::Long(v)) if i32::try_from(v).is_ok() => {
                self.write_present(out);
                write_long(out, v);
            }
            (Node::Long, Scalar::Long(v)) => {
                self.write_present(out);
                write_long(out, v);
            }
            (Node::Float, Scalar::Float(v)) => {
                self.write_present(out);
                // JsonConverter writes every NaN as "NaN": one bit pattern.
                let v = if v.is_nan() { f32::NAN } else { v };
                out.extend_from_slice(&v.to_le_bytes());
            }
            (Node::Double, Scalar::Double(v)) => {
                self.write_present(out);
                let v = if v.is_nan() { f64::NAN } else { v };
                out.extend_from_slice(&v.to_le_bytes());
            }
            (Node::Boolean, Scalar::Bool(b)) => {
                self.write_present(out);
                out.push(u8::from(b));
            }
            (Node::String, Scalar::Str(s)) | (Node::Bytes, Scalar::Bytes(s)) => {
                self.write_present(out);
                write_bytes(out, s);
            }
            _ => return false,
        }
        true
    }

    fn value(&self, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        r.ws();
        if r.peek() == Some(b'n') {
            r.literal(b"null")?;
            return match self.union {
                Some((null, _)) => {
                    out.push(null * 2);
                    Ok(())
                }
                None => Err(format!("null in a required {} field", self.what)),
            };
        }
        if let Some((_, value)) = self.union {
            out.push(value * 2);
        }
        let bad = |r: &Reader<'_>| {
            let end = (r.i + 80).min(r.b.len());
            format!(
                "{} does not fit {}",
                String::from_utf8_lossy(&r.b[r.i..end]),
                self.what
            )
        };
        match &self.node {
            Node::Int => {
                let v = r.integer().ok_or_else(|| bad(r))?;
                let v = i32::try_from(v).map_err(|_| bad(r))?;
                write_long(out, i64::from(v));
            }
            Node::Long => {
                let v = r.integer().ok_or_else(|| bad(r))?;
                write_long(out, v);
            }
            Node::Float => {
                let v = r.float::<f32>().ok_or_else(|| bad(r))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Node::Double => {
                let v = r.float::<f64>().ok_or_else(|| bad(r))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Node::Boolean => {
                if r.peek() == Some(b't') {
                    r.literal(b"true")?;
                    out.push(1);
                } else if r.peek() == Some(b'f') {
                    r.literal(b"false")?;
                    out.push(0);
                } else {
                    return Err(bad(r));
                }
            }
            Node::String => {
                if r.peek() != Some(b'"') {
                    return Err(bad(r));
                }
                r.string_into(out)?;
            }
            Node::Bytes => {
                if r.peek() != Some(b'"') {
                    return Err(bad(r));
                }
                let at = r.i;
                let text = r.string()?;
                let bytes = B64.decode(&*text).map_err(|_| {
                    r.i = at;
                    bad(r)
                })?;
                write_long(out, bytes.len() as i64);
                out.extend_from_slice(&bytes);
            }
            Node::Array(items) => {
                if r.peek() != Some(b'[') {
                    return Err(bad(r));
                }
                r.i += 1;
                write_block(r, out, b']', |r, out| items.value(r, out))?;
            }
            Node::Map(values) => {
                if r.peek() != Some(b'{') {
                    return Err(bad(r));
                }
                r.i += 1;
                write_block(r, out, b'}', |r, out| {
                    r.ws();
                    r.string_into(out)?;
                    r.ws();
                    r.expect(b':')?;
                    values.value(r, out)
                })?;
            }
            Node::Record(fields) => {
                if r.peek() != Some(b'{') {
                    return Err(bad(r));
                }
                let (at, start) = (r.i, out.len());
                if !record_in_order(fields, r, out)? {
                    r.i = at;
                    out.truncate(start);
                    record_any_order(fields, r, out)?;
                }
            }
        }
        Ok(())
    }
}

/// A value the envelope can write without rendering JSON (see [`Plan::write_scalar`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scalar<'a> {
    Long(i64),
    Float(f32),
    Double(f64),
    Bool(bool),
    /// UTF-8 text (an Avro `string`).
    Str(&'a [u8]),
    /// An Avro `bytes` (also a decimal's unscaled bytes).
    Bytes(&'a [u8]),
}

/// A record whose members come in schema order (the renderer's order). `Ok(false)`: they do
/// not; nothing useful was written (the caller rewinds).
fn record_in_order(
    fields: &[(String, Plan)],
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    r.i += 1;
    let mut next = 0;
    loop {
        r.ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
            break;
        }
        if next > 0 {
            r.expect(b',')?;
            r.ws();
        }
        let key = r.string()?;
        let Some((name, plan)) = fields.get(next) else {
            return Ok(false);
        };
        if *key != *name.as_bytes() {
            return Ok(false);
        }
        r.ws();
        r.expect(b':')?;
        plan.value(r, out)
            .map_err(|e| format!("field {name}: {e}"))?;
        next += 1;
    }
    // Absent trailing fields are null.
    for (name, plan) in &fields[next..] {
        plan.value(&mut Reader { b: b"null", i: 0 }, out)
            .map_err(|e| format!("field {name}: {e}"))?;
    }
    Ok(true)
}

/// A record with its members in any order: their values are located first, then encoded in
/// schema order; absent ones are null, unknown ones ignored.
fn record_any_order(
    fields: &[(String, Plan)],
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut found: Vec<Option<(usize, usize)>> = vec![None; fields.len()];
    r.i += 1;
    let mut first = true;
    loop {
        r.ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
            break;
        }
        if !first {
            r.expect(b',')?;
            r.ws();
        }
        first = false;
        let key = r.string()?.into_owned();
        r.ws();
        r.expect(b':')?;
        r.ws();
        let start = r.i;
        r.skip()?;
        if let Some(n) = fields.iter().position(|(f, _)| *f.as_bytes() == *key) {
            found[n] = Some((start, r.i));
        }
    }
    for ((name, plan), at) in fields.iter().zip(found) {
        let slice = match at {
            Some((s, e)) => &r.b[s..e],
            None => b"null",
        };
        plan.value(&mut Reader { b: slice, i: 0 }, out)
            .map_err(|e| format!("field {name}: {e}"))?;
    }
    Ok(())
}

/// Writes the comma-separated elements of a JSON array or object (the cursor just past its `[`
/// or `{`, up to and past `close`) as one Avro block: `element` writes each, then the block's item
/// count goes in front and the empty block after (see [`block_count`]).
fn write_block(
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
    close: u8,
    mut element: impl FnMut(&mut Reader<'_>, &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let start = out.len();
    let mut count = 0i64;
    loop {
        r.ws();
        if r.peek() == Some(close) {
            r.i += 1;
            break;
        }
        if count > 0 {
            r.expect(b',')?;
        }
        element(r, out)?;
        count += 1;
    }
    block_count(out, start, count);
    Ok(())
}

/// Puts the item count of the block written from `start` in front of it, and closes the
/// array/map with the empty block.
fn block_count(out: &mut Vec<u8>, start: usize, count: i64) {
    if count > 0 {
        let mut varint = Vec::with_capacity(10);
        write_long(&mut varint, count);
        out.splice(start..start, varint);
    }
    out.push(0);
}

/// Avro `long` (and `int`): zig-zag, then base-128 little-endian.
pub(crate) fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Avro `string` / `bytes`: the length, then the bytes.
pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// A cursor over JSON text.
struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected {:?} at byte {} of the payload",
                char::from(c),
                self.i
            ))
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), String> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(format!("bad literal at byte {} of the payload", self.i))
        }
    }

    /// The text of a JSON number at the cursor (advanced past it).
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        (self.i > start)
            .then(|| std::str::from_utf8(&self.b[start..self.i]).ok())
            .flatten()
    }

    /// A JSON integer (no fraction, no exponent) in `i64` range.
    fn integer(&mut self) -> Option<i64> {
        let at = self.i;
        let v = self.number().and_then(|t| t.parse::<i64>().ok());
        if v.is_none() {
            self.i = at;
        }
        v
    }

    /// A JSON number, or one of JsonConverter's non-finite strings.
    fn float<F: std::str::FromStr + FloatConsts>(&mut self) -> Option<F> {
        let at = self.i;
        let v = if self.peek() == Some(b'"') {
            match self.string().ok()?.as_ref() {
                b"NaN" => Some(F::NAN),
                b"Infinity" => Some(F::INFINITY),
                b"-Infinity" => Some(F::NEG_INFINITY),
                _ => None,
            }
        } else {
            self.number().and_then(|t| t.parse::<F>().ok())
        };
        if v.is_none() {
            self.i = at;
        }
        v
    }

    /// A JSON string at the cursor, unescaped (borrowed when it has no escapes).
    fn string(&mut self) -> Result<std::borrow::Cow<'a, [u8]>, String> {
        self.expect(b'"')?;
        let start = self.i;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(std::borrow::Cow::Borrowed(&self.b[start..self.i - 1]));
                }
                b'\\' => {
                    self.i = start;
                    let mut s = Vec::with_capacity(64);
                    self.unescape_into(&mut s)?;
                    return Ok(std::borrow::Cow::Owned(s));
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated string in the payload".into())
    }

    /// A JSON string at the cursor, written as an Avro `string`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let s = self.string()?;
        write_bytes(out, &s);
        Ok(())
    }

    /// Unescapes the string body starting at the cursor (after the opening quote) into `s`,
    /// consuming the closing quote.
    fn unescape_into(&mut self, s: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated string in the payload".into());
            };
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape in the payload")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => s.push(e),
                        b'b' => s.push(8),
                        b'f' => s.push(12),
                        b'n' => s.push(b'\n'),
                        b'r' => s.push(b'\r'),
                        b't' => s.push(b'\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let ch = match unit {
                                0xD800..=0xDBFF => {
                                    let save = self.i;
                                    let low = if self.b[self.i..].starts_with(b"\\u") {
                                        self.i += 2;
                                        self.hex4().ok()
                                    } else {
                                        None
                                    };
                                    match low {
                                        Some(low @ 0xDC00..=0xDFFF) => char::from_u32(
                                            0x10000
                                                + ((u32::from(unit) - 0xD800) << 10)
                                                + (u32::from(low) - 0xDC00),
                                        ),
                                        _ => {
                                            self.i = save;
                                            None
                                        }
                                    }
                                }
                                0xDC00..=0xDFFF => None,
                                u => char::from_u32(u32::from(u)),
                            };
                            // An unpaired surrogate: Java's UTF-8 encoder writes `?`.
                            let ch = ch.unwrap_or('?');
                            let mut buf = [0u8; 4];
                            s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            return Err(format!(
                                "bad escape \\{} in the payload",
                                char::from(other)
                            ))
                        }
                    }
                }
                c => s.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, String> {
        let hex = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or("bad \\u escape in the payload")?;
        self.i += 4;
        Ok(hex)
    }

    /// Skips one JSON value.
    fn skip(&mut self) -> Result<(), String> {
        self.ws();
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                let mut first = true;
                loop {
                    self.ws();
                    if self.peek() == Some(close) {
                        self.i += 1;
                        break;
                    }
                    if !first {
                        self.expect(b',')?;
                        self.ws();
                    }
                    first = false;
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                    }
                    self.skip()?;
                }
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            _ => {
                self.number()
                    .ok_or_else(|| format!("bad value at byte {} of the payload", self.i))?;
            }
        }
        Ok(())
    }
}

/// The non-finite values of `f32` / `f64`.
trait FloatConsts {
    const NAN: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
}

impl FloatConsts for f32 {
    const NAN: f32 = f32::NAN;
    const INFINITY: f32 = f32::INFINITY;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
}

impl FloatConsts for f64 {
    const NAN: f64 = f64::NAN;
    const INFINITY: f64 = f64::INFINITY;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connect: &str) -> Plan {
        Plan::new(&ConnectSchema::from_json(&serde_json::from_str(connect).unwrap()).unwrap())
            .unwrap()
    }

    fn enc(p: &Plan, json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        p.encode(json.as_bytes(), &mut out).unwrap();
        out
    }

    #[test]
    fn varints_are_zig_zag() {
        let v = |n: i64| {
            let mut out = Vec::new();
            write_long(&mut out, n);
            out
        };
        assert_eq!(v(0), [0]);
        assert_eq!(v(-1), [1]);
        assert_eq!(v(1), [2]);
        assert_eq!(v(-64), [0x7f]);
        assert_eq!(v(64), [0x80, 0x01]);
        assert_eq!(
            v(i64::MIN),
            [0xff; 9].iter().copied().chain([1]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn records_unions_arrays_maps_and_strings() {
        let p = plan(
            r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"a"},{"type":"string","optional":true,"default":"x","field":"s"},{"type":"array","items":{"type":"int64","optional":true},"optional":true,"field":"l"},{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true},"optional":true,"field":"m"},{"type":"double","optional":true,"field":"d"}],"optional":false,"name":"r"}"#,
        );
        let datum = enc(
            &p,
            r#"{"a":-2,"s":"\u00e9\uD83D\uDE00\uD83C","l":[1,null],"m":{"k":"v"},"d":"NaN"}"#,
        );
        let mut want = vec![3, 0];
        want.push(2 * 7);
        want.extend_from_slice("é😀?".as_bytes());
        want.extend_from_slice(&[2, 4, 2, 2, 0, 0]);
        want.extend_from_slice(&[2, 2, 2, b'k', 2, 2, b'v', 0]);
        want.push(2);
        want.extend_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(datum, want);
        // Another member order, an absent field and an unknown one give the same datum.
        assert_eq!(
            enc(
                &p,
                r#"{"s":"é😀?","zz":[{"q":1}],"m":{"k":"v"},"a":-2,"l":[1,null],"d":"NaN"}"#
            ),
            want
        );
        let short = enc(&p, r#"{"a":1,"s":null}"#);
        assert_eq!(short, [2, 2, 0, 0, 0]);
        let mut out = Vec::new();
        assert!(p.encode(br#"{"a":1.5}"#, &mut out).is_err());
        assert!(p.encode(br#"{"a":null}"#, &mut out).is_err());
    }
}
