//! `COPY ... TO STDOUT` text format: row splitting and field unescaping.
//!
//! In COPY's text format a row is one line, fields are separated by a tab, `\N` is NULL, and a
//! backslash escapes the next character: `\b \f \n \r \t \v` are the usual control characters,
//! `\NNN` (one to three octal digits) and `\xHH` (one or two hex digits) are raw bytes, and any
//! other escaped character stands for itself (`\\` is a backslash). After unescaping, a field is
//! exactly the type's text output form, the same text pgoutput sends in a `'t'` tuple column.

use std::borrow::Cow;

/// Unescapes one COPY text field (without its separators). Returns `None` for `\N` (SQL NULL)
/// and when the unescaped bytes are not valid UTF-8 (the source databases are UTF-8, so that is
/// a corrupt field, not a value).
pub fn unescape_copy_text_field(field: &[u8]) -> Option<Cow<'_, str>> {
    if field == b"\\N" {
        return None;
    }
    if !field.contains(&b'\\') {
        return std::str::from_utf8(field).ok().map(Cow::Borrowed);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = field[i + 1];
        i += 2;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < field.len() && field[i].is_ascii_hexdigit() => {
                let mut v = hex_val(field[i]);
                i += 1;
                if i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + hex_val(field[i]);
                    i += 1;
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Splits one COPY text row (with or without its trailing newline) into unescaped fields;
/// `None` is SQL NULL. A field that is not valid UTF-8 after unescaping is an error naming its
/// index.
pub fn split_copy_text_row(line: &[u8]) -> Result<Vec<Option<String>>, usize> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Escaped tabs are `\t`, never a raw tab, so a raw tab always separates fields.
    line.split(|&b| b == b'\t')
        .enumerate()
        .map(|(i, f)| {
            if f == b"\\N" {
                Ok(None)
            } else {
                unescape_copy_text_field(f)
                    .map(|s| Some(s.into_owned()))
                    .ok_or(i)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_every_escape_form() {
        assert_eq!(unescape_copy_text_field(b"\\N"), None);
        assert_eq!(unescape_copy_text_field(b"plain").unwrap(), "plain");
        assert_eq!(
            unescape_copy_text_field(b"a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh").unwrap(),
            "a\tb\nc\rd\\e\x08f\x0cg\x0bh"
        );
        assert_eq!(
            unescape_copy_text_field(b"\\001\\37\\x7f\\x1").unwrap(),
            "\x01\x1f\x7f\x01"
        );
        assert_eq!(unescape_copy_text_field(b"\\303\\251").unwrap(), "é");
        assert_eq!(unescape_copy_text_field(b"\\q\\.").unwrap(), "q.");
        assert_eq!(
            unescape_copy_text_field(b"\\xff"),
            None,
            "lone 0xff is not UTF-8"
        );
    }

    #[test]
    fn splits_rows() {
        let row = split_copy_text_row(b"1\t\\N\t\tx\\ty\n").unwrap();
        assert_eq!(
            row,
            vec![
                Some("1".into()),
                None,
                Some(String::new()),
                Some("x\ty".into())
            ]
        );
    }
}
