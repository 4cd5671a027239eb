//! Text exactly as Jackson (the JSON library inside Kafka Connect's `JsonConverter`) writes it.
//!
//! Debezium's JSON is compared byte for byte, and general-purpose JSON writers differ from
//! Jackson in the details, so pgseam writes its own:
//!
//! **Strings.** `"` and `\` are escaped as `\"` and `\\`; the control characters with a short
//! form (`\b \t \n \f \r`) use it; every other character below U+0020 becomes `\u00XX` with
//! **upper-case** hex (`\u001F`). Nothing else is escaped: `/`, DEL (U+007F), U+2028 and all
//! other BMP characters are written as raw UTF-8. Characters outside the BMP are written as a
//! UTF-16 surrogate pair of escapes (`\uD83D\uDE00`): Jackson's UTF-8 generator sees the
//! surrogates of Java's UTF-16 strings and escapes them. (`serde_json` writes lower-case hex and
//! raw non-BMP characters, which is why it is not used here.)
//!
//! **Numbers.** Integers are plain decimal. `double` and `float` are printed by Java's
//! `Double.toString` / `Float.toString`: the shortest digit string that reads back as the
//! same value (for `float`, the same `f32`; when that is a single digit, the closest
//! two-digit string that also reads back, e.g. `4.9E-324`), in plain notation with at least one fraction digit
//! when `1e-3 <= |v| < 1e7` (`0.1`, `100.0`, `0.001`), otherwise in computerized scientific
//! notation `d.dddE[-]n` (`1.0E7`, `1.0E-4`, `3.4E38`, `1.7976931348623157E308`); zero is
//! `0.0` / `-0.0`. NaN and the infinities are not JSON numbers: Kafka Connect writes the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
//!
//! Java 17's `Double.toString` (the JVM Debezium runs on here) is not always shortest: for a
//! few rare values (JDK-4511638, fixed in Java 19) it prints one more digit than needed. This
//! module prints the shortest form, which is what Java 19+ prints.

use std::fmt::Write;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` as a JSON string literal with Jackson's escaping.
///
/// Scans bytes: everything but control characters, `"`, `\\` and characters beyond the BMP
/// (4-byte UTF-8, lead byte ≥ 0xF0, which Jackson writes as surrogate-pair escapes) is copied
/// in runs. A stop is always at a char boundary: an ASCII byte or a lead byte.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b >= 0x20 && b != b'"' && b != b'\\' && b < 0xF0 {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        start = i;
        let short = match c {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\n' => Some('n'),
            '\r' => Some('r'),
            '\t' => Some('t'),
            '\u{8}' => Some('b'),
            '\u{c}' => Some('f'),
            _ => None,
        };
        if let Some(e) = short {
            out.push('\\');
            out.push(e);
        } else if (c as u32) < 0x20 {
            push_unicode_escape(out, c as u16);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                push_unicode_escape(out, *u);
            }
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a decimal integer (no `fmt` machinery: this is the hot path of every payload).
pub fn write_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn push_unicode_escape(out: &mut String, unit: u16) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)] as char);
    }
}

/// Appends a Java `double` as Jackson writes it.
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let mut sci = ShortText::default();
        let _ = write!(sci, "{v:e}");
        if !sci.as_str().contains('.') {
            // One significant digit: Java picks the two-digit decimal closest to the value
            // when one rounds back to it (`4.9E-324`, not `5.0E-324`).
            let mut two = ShortText::default();
            let _ = write!(two, "{v:.1e}");
            if two.as_str().parse::<f64>() == Ok(v) {
                sci = two;
            }
        }
        push_java_decimal(
            out,
            sci.as_str(),
            v == 0.0,
            v.abs() >= 1e-3 && v.abs() < 1e7,
        );
    }
}

/// Appends a Java `float` as Jackson writes it (`Float.toString`: shortest digits for `f32`).
pub fn write_f32(out: &mut String, v: f32) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let mut sci = ShortText::default();
        let _ = write!(sci, "{v:e}");
        if !sci.as_str().contains('.') {
            let mut two = ShortText::default();
            let _ = write!(two, "{v:.1e}");
            if two.as_str().parse::<f32>() == Ok(v) {
                sci = two;
            }
        }
        push_java_decimal(
            out,
            sci.as_str(),
            v == 0.0,
            v.abs() >= 1e-3 && v.abs() < 1e7,
        );
    }
}

/// A number's text on the stack: `{:e}` of an `f64` is at most 24 bytes
/// (`-2.2250738585072014e-308`), so formatting one allocates nothing.
#[derive(Clone, Copy, Default)]
struct ShortText {
    bytes: [u8; 32],
    len: usize,
}

impl ShortText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever written into it.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Rewrites Rust's shortest scientific form (`-1.2345e-7`) into Java's `toString` layout.
fn push_java_decimal(out: &mut String, sci: &str, zero: bool, plain: bool) {
    let (neg, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    if neg {
        out.push('-');
    }
    if zero {
        out.push_str("0.0");
        return;
    }
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let mut digits = ShortText::default();
    for part in mantissa.split('.') {
        let _ = digits.write_str(part);
    }
    let digits = match digits.as_str().trim_end_matches('0') {
        "" => "0",
        d => d,
    };
    if plain {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        let _ = write!(out, "E{exp}");
    }
}

/// `Double.toString(v)` without JSON quoting of the non-finite values.
pub fn f64_to_java_string(v: f64) -> String {
    let mut s = String::new();
    write_f64(&mut s, v);
    s.trim_matches('"').to_owned()
}

/// Decodes a JSON string literal as [`write_str`] writes it (quotes included); `None` if `json`
/// is not one.
pub fn parse_str(json: &str) -> Option<String> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let ch = match e {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = u32::from_str_radix(&hex, 16).ok()?;
                if (0xD800..0xDC00).contains(&unit) {
                    pending_high = Some(unit);
                    continue;
                }
                if (0xDC00..0xE000).contains(&unit) {
                    let high = pending_high.take()?;
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))?
                } else {
                    char::from_u32(unit)?
                }
            }
            _ => return None,
        };
        out.push(ch);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        let mut o = String::new();
        write_str(&mut o, x);
        o
    }
    fn d(x: f64) -> String {
        let mut o = String::new();
        write_f64(&mut o, x);
        o
    }
    fn f(x: f32) -> String {
        let mut o = String::new();
        write_f32(&mut o, x);
        o
    }

    #[test]
    fn strings_escape_like_jackson() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{1}\u{1f}\u{0}"), r#""\u0001\u001F\u0000""#);
        assert_eq!(
            s("\u{7f} \u{2028} \u{a0} é / < > & '"),
            "\"\u{7f} \u{2028} \u{a0} é / < > & '\""
        );
        assert_eq!(s("\u{1F600}x"), r#""\uD83D\uDE00x""#);
        assert_eq!(
            s("uni\u{e9} \u{1F600} \"q\" \\ \n"),
            r#""unié \uD83D\uDE00 \"q\" \\ \n""#
        );
        assert_eq!(s(""), "\"\"");
    }

    #[test]
    fn doubles_and_floats_round_trip_over_random_bit_patterns() {
        // Java's text parses back to the same value (Double.parseDouble accepts `E`), and the
        // layout is Java's: plain in [1e-3, 1e7), otherwise d.dddE±x.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = f64::from_bits(state);
            if v.is_finite() {
                let text = d(v);
                assert_eq!(text.parse::<f64>(), Ok(v), "{v:e} printed {text}");
                assert_eq!(
                    text.contains('E'),
                    v != 0.0 && !(1e-3..1e7).contains(&v.abs()),
                    "{text}"
                );
            }
            let f = f32::from_bits(state as u32);
            if f.is_finite() {
                let mut text = String::new();
                write_f32(&mut text, f);
                assert_eq!(text.parse::<f32>(), Ok(f), "{f:e} printed {text}");
            }
        }
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(d(0.0), "0.0");
        assert_eq!(d(-0.0), "-0.0");
        assert_eq!(d(1.5), "1.5");
        assert_eq!(d(2.25), "2.25");
        assert_eq!(d(100.0), "100.0");
        assert_eq!(d(0.001), "0.001");
        assert_eq!(d(1e-4), "1.0E-4");
        assert_eq!(d(1e7), "1.0E7");
        assert_eq!(d(9999999.0), "9999999.0");
        assert_eq!(d(1e10), "1.0E10");
        assert_eq!(d(-1e-10), "-1.0E-10");
        assert_eq!(d(1.2345678901234568e29), "1.2345678901234568E29");
        assert_eq!(d(f64::MAX), "1.7976931348623157E308");
        assert_eq!(d(f64::MIN_POSITIVE), "2.2250738585072014E-308");
        assert_eq!(d(4.9e-324), "4.9E-324");
        assert_eq!(d(-9.223372036854776e16), "-9.223372036854776E16");
        assert_eq!(d(std::f64::consts::PI), "3.141592653589793");
        assert_eq!(d(1234.56), "1234.56");
        assert_eq!(d(f64::NAN), "\"NaN\"");
        assert_eq!(d(f64::INFINITY), "\"Infinity\"");
        assert_eq!(d(f64::NEG_INFINITY), "\"-Infinity\"");
    }

    #[test]
    fn floats_print_like_java() {
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(3.4e38), "3.4E38");
        assert_eq!(f(f32::MAX), "3.4028235E38");
        assert_eq!(f(1.4e-45), "1.4E-45");
        assert_eq!(f(1e7), "1.0E7");
        assert_eq!(f(0.0), "0.0");
        assert_eq!(f(f32::NAN), "\"NaN\"");
    }
}
