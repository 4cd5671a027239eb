//! `hstore` in Debezium's default `hstore.handling.mode=json`: the text form is parsed into a
//! `java.util.HashMap` (pgjdbc's `HStoreConverter`) and written by Jackson, so the keys come out
//! in `HashMap` iteration order. That order is reproduced here: bucket index of Java's
//! `String.hashCode()` spread by `h ^ (h >>> 16)`, in a table of the power-of-two capacity a
//! default `HashMap` grows to (16, doubling while size > 0.75 × capacity), insertion order
//! within a bucket. (Buckets that Java turns into trees — 8+ colliding keys in a table of 64+ —
//! would iterate differently; that is not reproduced.)

use crate::jackson;

/// Parses hstore output text (`"a"=>"1", "b"=>NULL`); `None` if it is malformed.
pub(crate) fn parse(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key = item(&mut chars)?;
        let key = key?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != '=' || chars.next()? != '>' {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let value = item(&mut chars)?;
        out.push((key, value));
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// One quoted or bare item; bare `NULL` is `Some(None)`.
fn item(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Option<String>> {
    let mut s = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        loop {
            match chars.next()? {
                '"' => return Some(Some(s)),
                '\\' => s.push(chars.next()?),
                c => s.push(c),
            }
        }
    }
    while let Some(&c) = chars.peek() {
        if c == ',' || c == '=' || c.is_whitespace() {
            break;
        }
        s.push(c);
        chars.next();
    }
    if s.is_empty() {
        None
    } else if s.eq_ignore_ascii_case("NULL") {
        Some(None)
    } else {
        Some(Some(s))
    }
}

fn java_string_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for u in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(u));
    }
    h
}

/// Orders entries as a default `java.util.HashMap<String, String>` iterates them.
fn hashmap_order(mut entries: Vec<(String, Option<String>)>) -> Vec<(String, Option<String>)> {
    // A later duplicate key replaces the value in place (HashMap.put).
    let mut dedup: Vec<(String, Option<String>)> = Vec::with_capacity(entries.len());
    for (k, v) in entries.drain(..) {
        match dedup.iter_mut().find(|(dk, _)| *dk == k) {
            Some(e) => e.1 = v,
            None => dedup.push((k, v)),
        }
    }
    let mut capacity: usize = 16;
    while dedup.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let mut keyed: Vec<(usize, usize, (String, Option<String>))> = dedup
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let h = java_string_hash(&e.0);
            let spread = (h ^ ((h as u32) >> 16) as i32) as u32 as usize;
            (spread & (capacity - 1), i, e)
        })
        .collect();
    keyed.sort_by_key(|(bucket, i, _)| (*bucket, *i));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

/// The JSON text Debezium emits for an hstore value, or `None` if the text is malformed.
pub(crate) fn to_json(text: &str) -> Option<String> {
    let mut out = String::new();
    write_object(&mut out, parse(text)?);
    Some(out)
}

/// Appends the entries as a JSON object in `HashMap` order: the `map` form of
/// `hstore.handling.mode=map`, and the text of the `json` form.
pub(crate) fn write_object(out: &mut String, entries: Vec<(String, Option<String>)>) {
    let entries = hashmap_order(entries);
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        jackson::write_str(out, k);
        out.push(':');
        match v {
            Some(v) => jackson::write_str(out, v),
            None => out.push_str("null"),
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_like_hashmap() {
        assert_eq!(
            to_json(r#""a"=>"1", "b"=>NULL"#).unwrap(),
            r#"{"a":"1","b":null}"#
        );
        assert_eq!(
            to_json(r#""k"=>"v with space""#).unwrap(),
            r#"{"k":"v with space"}"#
        );
        assert_eq!(to_json(r#""a b"=>"c\"d""#).unwrap(), r#"{"a b":"c\"d"}"#);
        assert_eq!(to_json("").unwrap(), "{}");
        // "b" (98) and "a" (97): bucket order, not insertion order.
        assert_eq!(
            to_json(r#""b"=>"2", "a"=>"1""#).unwrap(),
            r#"{"a":"1","b":"2"}"#
        );
        // "q" (113) lands in bucket 1, after "p" (112 → bucket 0).
        assert_eq!(
            to_json(r#""q"=>"1", "p"=>"2""#).unwrap(),
            r#"{"p":"2","q":"1"}"#
        );
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert!(to_json(r#""a"=>"#).is_none());
    }
}
