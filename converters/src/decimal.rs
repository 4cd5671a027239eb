//! Decimal text to the byte forms Kafka Connect's `Decimal` and Debezium's
//! `VariableScaleDecimal` carry: Java's `BigInteger.toByteArray()` of the unscaled value, i.e.
//! the minimal big-endian two's-complement encoding.

/// A finite decimal split into sign, unscaled digits and scale (`-12.340` → (true, "12340", 3)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    /// Digits of the unscaled value without leading zeros (`"0"` for zero).
    pub(crate) unscaled: String,
    pub(crate) scale: u32,
}

impl Decimal {
    /// Zero at `scale` (`0.00` for scale 2), Java's `BigDecimal.ZERO.setScale(scale)`.
    pub(crate) fn zero(scale: u32) -> Decimal {
        Decimal {
            negative: false,
            unscaled: "0".to_owned(),
            scale,
        }
    }

    /// Parses PostgreSQL's numeric text (`-?digits(.digits)?`); `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut unscaled: String = int
            .chars()
            .chain(frac.chars())
            .skip_while(|c| *c == '0')
            .collect();
        if unscaled.is_empty() {
            unscaled.push('0');
        }
        let negative = negative && unscaled != "0";
        Some(Decimal {
            negative,
            unscaled,
            scale: frac.len() as u32,
        })
    }

    /// Java's `stripTrailingZeros()` followed by `setScale(0)` when the scale went negative.
    pub(crate) fn strip_trailing_zeros(mut self) -> Decimal {
        while self.scale > 0 && self.unscaled.len() > 1 && self.unscaled.ends_with('0') {
            self.unscaled.pop();
            self.scale -= 1;
        }
        if self.unscaled == "0" {
            self.scale = 0;
        }
        self
    }

    /// Rescales to `scale`, rounding half up when digits are dropped (`BigDecimal.setScale`
    /// with `HALF_UP`; PostgreSQL already rounds numeric(p,s) values to scale s, so this only
    /// pads in practice).
    pub(crate) fn with_scale(mut self, scale: u32) -> Decimal {
        if scale >= self.scale {
            if self.unscaled != "0" {
                self.unscaled
                    .extend(std::iter::repeat_n('0', (scale - self.scale) as usize));
            }
        } else {
            let drop = (self.scale - scale) as usize;
            let keep = self.unscaled.len().saturating_sub(drop);
            let round_up = self.unscaled.len() >= drop && self.unscaled.as_bytes()[keep] >= b'5';
            let mut digits: Vec<u8> = self.unscaled.as_bytes()[..keep].to_vec();
            if round_up {
                let mut i = digits.len();
                loop {
                    if i == 0 {
                        digits.insert(0, b'1');
                        break;
                    }
                    i -= 1;
                    if digits[i] == b'9' {
                        digits[i] = b'0';
                    } else {
                        digits[i] += 1;
                        break;
                    }
                }
            }
            let s: String = String::from_utf8(digits).expect("ascii digits");
            let s = s.trim_start_matches('0');
            self.unscaled = if s.is_empty() { "0".into() } else { s.into() };
            if self.unscaled == "0" {
                self.negative = false;
            }
        }
        self.scale = scale;
        self
    }

    /// `BigInteger.toByteArray()` of the (signed) unscaled value.
    pub(crate) fn unscaled_bytes(&self) -> Vec<u8> {
        twos_complement(self.negative, &self.unscaled)
    }

    /// `BigDecimal.doubleValue()`: the nearest double (Rust's parser rounds correctly too).
    pub(crate) fn to_f64(&self) -> f64 {
        let s = format!(
            "{}{}e-{}",
            if self.negative { "-" } else { "" },
            self.unscaled,
            self.scale
        );
        s.parse().unwrap_or(f64::NAN)
    }

    /// `BigDecimal.toString()`: plain when the scale is not negative and the adjusted exponent
    /// is at least -6, else scientific (`1.23E-7`).
    pub(crate) fn to_java_string(&self) -> String {
        let digits = self.unscaled.len() as i64;
        let adjusted = digits - 1 - i64::from(self.scale);
        if adjusted >= -6 {
            return self.to_plain_string();
        }
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        out.push_str(&self.unscaled[..1]);
        if digits > 1 {
            out.push('.');
            out.push_str(&self.unscaled[1..]);
        }
        out.push_str(&format!("E{adjusted}"));
        out
    }

    /// `BigDecimal.toPlainString()`.
    pub(crate) fn to_plain_string(&self) -> String {
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        let scale = self.scale as usize;
        if scale == 0 {
            out.push_str(&self.unscaled);
        } else if self.unscaled.len() > scale {
            let (i, f) = self.unscaled.split_at(self.unscaled.len() - scale);
            out.push_str(i);
            out.push('.');
            out.push_str(f);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - self.unscaled.len()));
            out.push_str(&self.unscaled);
        }
        out
    }
}

/// Minimal big-endian two's complement of `±digits` (decimal digit string).
pub(crate) fn twos_complement(negative: bool, digits: &str) -> Vec<u8> {
    // Magnitude in base 256, little-endian while building.
    let mut mag: Vec<u8> = Vec::new();
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in mag.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    while mag.last() == Some(&0) {
        mag.pop();
    }
    if mag.is_empty() {
        return vec![0];
    }
    if !negative {
        if mag.last().is_some_and(|b| b & 0x80 != 0) {
            mag.push(0);
        }
    } else {
        // Two's complement: invert and add one.
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if mag.last().is_some_and(|b| b & 0x80 == 0) {
            mag.push(0xff);
        }
    }
    mag.reverse();
    mag
}

/// `BigInteger.valueOf(v).toByteArray()`.
pub(crate) fn i64_bytes(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twos_complement_matches_big_integer() {
        assert_eq!(twos_complement(false, "0"), vec![0]);
        assert_eq!(twos_complement(false, "1"), vec![1]);
        assert_eq!(twos_complement(false, "128"), vec![0, 0x80]);
        assert_eq!(twos_complement(true, "1"), vec![0xff]);
        assert_eq!(twos_complement(true, "128"), vec![0x80]);
        assert_eq!(twos_complement(true, "129"), vec![0xff, 0x7f]);
        assert_eq!(twos_complement(true, "256"), vec![0xff, 0x00]);
        assert_eq!(
            twos_complement(false, "1234567891"),
            vec![0x49, 0x96, 0x02, 0xd3]
        );
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            -256,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                i64_bytes(v),
                twos_complement(v < 0, &v.unsigned_abs().to_string()),
                "{v}"
            );
        }
    }

    #[test]
    fn decimal_scales() {
        let d = Decimal::parse("123456789012345678901234567890.123456789012345678901234567890")
            .unwrap();
        let s = d.strip_trailing_zeros();
        assert_eq!(s.scale, 29);
        assert_eq!(
            Decimal::parse("100").unwrap().strip_trailing_zeros().scale,
            0
        );
        assert_eq!(
            Decimal::parse("0.00").unwrap().strip_trailing_zeros(),
            Decimal::parse("0").unwrap()
        );
        assert_eq!(Decimal::parse("1.5").unwrap().with_scale(2).unscaled, "150");
        assert_eq!(
            Decimal::parse("1.005").unwrap().with_scale(2).unscaled,
            "101"
        );
        assert_eq!(
            Decimal::parse("-0.001")
                .unwrap()
                .with_scale(2)
                .to_plain_string(),
            "0.00"
        );
        assert_eq!(
            Decimal::parse("-0.000001").unwrap().to_plain_string(),
            "-0.000001"
        );
        assert_eq!(
            Decimal::parse("-0.000001").unwrap().unscaled_bytes(),
            vec![0xff]
        );
        assert_eq!(Decimal::parse("1234.56").unwrap().to_f64(), 1234.56);
    }
}
