//! Dates, times, timestamps and intervals in PostgreSQL's text output form under
//! `DateStyle=ISO, MDY`, `IntervalStyle=postgres` and `TimeZone=UTC`.
//!
//! Calendar arithmetic is the proleptic Gregorian calendar with astronomical years (year 0 is
//! 1 BC), which is what PostgreSQL uses internally: `0044-03-15 BC` is astronomical year -43.

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (astronomical year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `infinity` / `-infinity`, as date and timestamp types print them.
pub fn parse_infinity(s: &str) -> Option<bool> {
    match s {
        "infinity" => Some(false),
        "-infinity" => Some(true),
        _ => None,
    }
}

/// Strips a trailing ` BC`, returning whether it was there.
fn strip_era(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` (year may have more than four digits) to days since the epoch; `bc` flips the
/// year to astronomical numbering.
fn parse_ymd(s: &str, bc: bool) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = digits(parts.next()?)?;
    let m: u32 = digits(parts.next()?)?;
    let d: u32 = digits(parts.next()?)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y == 0 {
        return None;
    }
    let year = if bc { 1 - y } else { y };
    Some(days_from_civil(year, m, d))
}

/// A `date` in days since 1970-01-01, or `Err(negative)` for an infinity.
pub fn parse_date(s: &str) -> Option<Result<i64, bool>> {
    if let Some(neg) = parse_infinity(s) {
        return Some(Err(neg));
    }
    let (s, bc) = strip_era(s);
    parse_ymd(s, bc).map(Ok)
}

/// `HH:MM[:SS[.ffffff]]` to microseconds since midnight (`24:00:00` is allowed).
pub fn parse_time(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, ':');
    let h: i64 = digits(parts.next()?)?;
    let m: i64 = digits(parts.next()?)?;
    let sec = match parts.next() {
        Some(sec) => parse_seconds(sec)?,
        None => 0,
    };
    if m > 59 || sec >= 60_000_000 {
        return None;
    }
    Some(h * 3_600_000_000 + m * 60_000_000 + sec)
}

/// `SS[.f...]` to microseconds (PostgreSQL prints at most six fraction digits; more are
/// rounded half up as PostgreSQL's input would).
fn parse_seconds(s: &str) -> Option<i64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let w: i64 = digits(whole)?;
    if !frac.is_empty() && !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros = 0i64;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    if frac.len() > 6 && frac.as_bytes()[6] >= b'5' {
        micros += 1;
    }
    Some(w * 1_000_000 + micros)
}

/// A UTC offset `+HH[:MM[:SS]]` / `-HH...` to seconds east of Greenwich.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let mut total = 0i32;
    let mut mult = 3600;
    for part in rest.split(':') {
        if mult == 0 {
            return None;
        }
        total += digits::<i32>(part)? * mult;
        mult /= 60;
    }
    Some(sign * total)
}

/// Splits `TIME[+-OFFSET]` at the offset's sign.
fn split_offset(s: &str) -> Option<(&str, i32)> {
    let idx = s.rfind(['+', '-'])?;
    Some((&s[..idx], parse_offset(&s[idx..])?))
}

/// A `timetz`: microseconds since midnight and the offset in seconds east of Greenwich.
pub fn parse_timetz(s: &str) -> Option<(i64, i32)> {
    let (t, off) = split_offset(s)?;
    Some((parse_time(t)?, off))
}

/// A `timestamp` (`with_tz = false`) or `timestamptz` in microseconds since the epoch (UTC for
/// timestamptz), or `Err(negative)` for an infinity.
///
/// The result is an `i128`: PostgreSQL's range (4713 BC to 294276 AD) does not fit in `i64`
/// microseconds since 1970 at its upper end (PostgreSQL counts from 2000).
pub fn parse_timestamp(s: &str, with_tz: bool) -> Option<Result<i128, bool>> {
    if let Some(neg) = parse_infinity(s) {
        return Some(Err(neg));
    }
    let (s, bc) = strip_era(s);
    let (date, time) = s.split_once(' ')?;
    let days = parse_ymd(date, bc)?;
    let (time, offset) = if with_tz {
        split_offset(time)?
    } else {
        (time, 0)
    };
    let micros = parse_time(time)?;
    Some(Ok(i128::from(days) * i128::from(MICROS_PER_DAY)
        + i128::from(micros)
        - i128::from(offset) * 1_000_000))
}

/// Prints microseconds since 1970 (UTC) as PostgreSQL's `timestamp_out` / `timestamptz_out`
/// do under `DateStyle=ISO` and `TimeZone=UTC`: `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing
/// fraction zeros trimmed, `+00` for timestamptz, and ` BC` for years before 1 AD.
pub fn format_timestamp(us: i128, with_tz: bool) -> String {
    let day_us = i128::from(MICROS_PER_DAY);
    let days = us.div_euclid(day_us) as i64;
    let time = us.rem_euclid(day_us) as i64;
    let (year, month, day) = civil_from_days(days);
    let (shown_year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    let (secs, fraction) = (time / 1_000_000, time % 1_000_000);
    let mut out = format!(
        "{shown_year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    if with_tz {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

/// An interval in `IntervalStyle=postgres` form (`1 year 2 mons 3 days 04:05:06.789`,
/// `-1 days -00:00:00.000001`, `00:00:00`) to (months, days, microseconds).
pub fn parse_interval(s: &str) -> Option<(i32, i32, i64)> {
    let mut months = 0i64;
    let mut days = 0i64;
    let mut micros = 0i64;
    let mut tokens = s.split_ascii_whitespace().peekable();
    let mut any = false;
    while let Some(tok) = tokens.next() {
        any = true;
        if tok.contains(':') {
            let (neg, t) = match tok.as_bytes()[0] {
                b'-' => (true, &tok[1..]),
                b'+' => (false, &tok[1..]),
                _ => (false, tok),
            };
            let v = parse_time_unbounded(t)?;
            micros = micros.checked_add(if neg { -v } else { v })?;
            continue;
        }
        let n: i64 = tok.parse().ok()?;
        let unit = tokens.next()?;
        match unit {
            "year" | "years" => months = months.checked_add(n.checked_mul(12)?)?,
            "mon" | "mons" => months = months.checked_add(n)?,
            "day" | "days" => days = days.checked_add(n)?,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
}

/// `H+:MM:SS[.f]` where hours may exceed 24 (interval time parts).
fn parse_time_unbounded(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, ':');
    let h: i64 = digits(parts.next()?)?;
    let m: i64 = digits(parts.next()?)?;
    let sec = parse_seconds(parts.next()?)?;
    h.checked_mul(3_600_000_000)?
        .checked_add(m * 60_000_000 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19782);
        assert_eq!(days_from_civil(1, 1, 1), -719162);
        assert_eq!(days_from_civil(-4712, 1, 1), -2440550);
        for d in [-2440550, -719162, -1, 0, 1, 19782, 106_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-02-29"), Some(Ok(19782)));
        assert_eq!(parse_date("4713-01-01 BC"), Some(Ok(-2440550)));
        assert_eq!(
            parse_date("0044-03-15 BC"),
            Some(Ok(days_from_civil(-43, 3, 15)))
        );
        assert_eq!(parse_date("infinity"), Some(Err(false)));
        assert_eq!(parse_date("-infinity"), Some(Err(true)));
        assert_eq!(
            parse_date("5874897-12-31"),
            Some(Ok(days_from_civil(5874897, 12, 31)))
        );
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("x"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("13:14:15.123456"), Some(47_655_123_456));
        assert_eq!(parse_time("24:00:00"), Some(MICROS_PER_DAY));
        assert_eq!(parse_time("00:00:00.5"), Some(500_000));
        assert_eq!(parse_time("00:00:00.000001"), Some(1));
        assert_eq!(
            parse_timetz("13:14:15.123456+05:30"),
            Some((47_655_123_456, 19_800))
        );
        assert_eq!(parse_timetz("00:00:00-14"), Some((0, -50_400)));
        assert_eq!(
            parse_timetz("23:59:59.999999+14"),
            Some((86_399_999_999, 50_400))
        );
        assert_eq!(
            parse_timetz("12:00:00+05:30:15"),
            Some((43_200_000_000, 19_815))
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2024-02-29 13:14:15.123456", false),
            Some(Ok(1_709_212_455_123_456))
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:00", false), Some(Ok(0)));
        assert_eq!(
            parse_timestamp("1900-01-01 00:00:00.000001", false),
            Some(Ok(-2_208_988_799_999_999))
        );
        assert_eq!(
            parse_timestamp("294276-12-31 23:59:59.999", false),
            Some(Ok(9_224_318_015_999_999_000))
        );
        assert_eq!(
            parse_timestamp("2024-02-29 12:14:15.123456+00", true),
            Some(Ok(1_709_208_855_123_456))
        );
        assert_eq!(
            parse_timestamp("2024-02-29 13:14:15.123456+01", true),
            parse_timestamp("2024-02-29 12:14:15.123456+00", true)
        );
        assert_eq!(parse_timestamp("infinity", true), Some(Err(false)));
        assert_eq!(
            parse_timestamp("0044-03-15 12:00:00+00 BC", true),
            Some(Ok(i128::from(
                days_from_civil(-43, 3, 15) * MICROS_PER_DAY + 43_200_000_000
            )))
        );
        assert_eq!(parse_timestamp("2024-02-29", false), None);
    }

    #[test]
    fn formats_timestamps_as_postgres_prints_them() {
        for (text, tz) in [
            ("294276-12-31 23:59:59.999", false),
            ("294276-12-31 23:59:59.999999+00", true),
            ("2024-02-29 13:14:15.12", false),
            ("1970-01-01 00:00:00", false),
            ("0044-03-15 12:00:00+00 BC", true),
            ("4713-01-01 00:00:00 BC", false),
        ] {
            let Some(Ok(us)) = parse_timestamp(text, tz) else {
                panic!("{text}")
            };
            assert_eq!(format_timestamp(us, tz), text);
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval("1 year 2 mons 3 days 04:05:06.789"),
            Some((14, 3, 14_706_789_000))
        );
        assert_eq!(
            parse_interval("-178000000 years"),
            Some((-2_136_000_000, 0, 0))
        );
        assert_eq!(
            parse_interval("-1 days -00:00:00.000001"),
            Some((0, -1, -1))
        );
        assert_eq!(parse_interval("00:00:00"), Some((0, 0, 0)));
        assert_eq!(
            parse_interval("-1 years -2 mons +3 days -04:05:06"),
            Some((-14, 3, -14_706_000_000))
        );
        assert_eq!(
            parse_interval("2562047788:00:54.775807"),
            Some((0, 0, i64::MAX))
        );
        assert_eq!(parse_interval("1 fortnight"), None);
        assert_eq!(parse_interval(""), None);
    }
}
