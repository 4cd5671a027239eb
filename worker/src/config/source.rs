//! Reading configuration text: Java `.properties` files (with `java.util.Properties.load`
//! semantics) and the JSON bodies Kafka Connect's REST API takes.

use std::path::Path;

use serde_json::Value;

use super::error::{ConfigError, Location};

/// One `key=value` setting and the line it started on (properties files only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) line: Option<usize>,
}

/// The settings of one file or request, in order of first appearance, each key once (a later
/// duplicate replaces the value, as `java.util.Properties` does).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawConfig {
    /// Path or description, used in every error message.
    pub(crate) source: String,
    pub(crate) entries: Vec<RawEntry>,
}

impl RawConfig {
    pub(crate) fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            entries: Vec::new(),
        }
    }

    /// Adds a setting; a later duplicate key replaces the earlier value in place.
    pub(crate) fn push(&mut self, key: String, value: String, line: Option<usize>) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.value = value;
            e.line = line;
        } else {
            self.entries.push(RawEntry { key, value, line });
        }
    }

    pub(crate) fn from_pairs<I, K, V>(pairs: I, source: &str) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut raw = Self::new(source);
        for (k, v) in pairs {
            raw.push(k.into(), v.into(), None);
        }
        raw
    }
}

/// Parses Java properties text with `java.util.Properties.load` semantics and returns the
/// settings in order of first appearance (a later duplicate key replaces the earlier value).
///
/// Supported: `#` and `!` comment lines; `key=value`, `key: value` and `key value`; whitespace
/// around the separator; line continuation with an odd number of trailing backslashes (leading
/// whitespace of the continuation line is dropped); the escapes `\t \n \r \f \uXXXX` (UTF-16
/// surrogate pairs combine) and `\<any>` for a literal character (`\=`, `\:`, `\ `, `\\`, `\#`).
/// A malformed `\u` escape is an error, as in Java.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let raw = parse_properties_in(text, "<properties>")?;
    Ok(raw.entries.into_iter().map(|e| (e.key, e.value)).collect())
}

/// Java's whitespace for properties files: space, tab, form feed.
fn is_prop_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

pub(crate) fn parse_properties_in(text: &str, source: &str) -> Result<RawConfig, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw = RawConfig::new(source);
    // Natural lines end at \n, \r or \r\n.
    let lines: Vec<&str> = split_natural_lines(text);
    let mut i = 0;
    while i < lines.len() {
        let start_line = i + 1;
        let first = lines[i].trim_start_matches(is_prop_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut current = first;
        loop {
            if ends_with_odd_backslashes(current) {
                logical.push_str(&current[..current.len() - 1]);
                if i < lines.len() {
                    current = lines[i].trim_start_matches(is_prop_ws);
                    i += 1;
                    continue;
                }
                // A trailing backslash at end of file is dropped, as Java does.
                break;
            }
            logical.push_str(current);
            break;
        }
        let (key, value) = split_key_value(&logical);
        let location = || Location::new(source, Some(start_line));
        let key = unescape(key).map_err(|m| ConfigError::Syntax {
            location: location(),
            message: m,
        })?;
        let value = unescape(value).map_err(|m| ConfigError::Syntax {
            location: location(),
            message: m,
        })?;
        raw.push(key, value, Some(start_line));
    }
    Ok(raw)
}

fn split_natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into (escaped key, escaped value): the key ends at the first
/// unescaped `=`, `:` or whitespace; then whitespace, at most one `=`/`:`, and whitespace are
/// skipped.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut escaped = false;
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_prop_ws(c) {
            key_end = idx;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_prop_ws);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches(is_prop_ws);
    }
    (key, rest)
}

/// Resolves Java properties escapes.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    // A high surrogate from a `\uD8xx` escape waiting for its low half.
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            if pending_high.take().is_some() {
                return Err(lone_surrogate());
            }
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            // Only reachable for a key ending in a lone backslash; Java drops it.
            break;
        };
        if e == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            let unit = (hex.len() == 4)
                .then(|| u32::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or_else(|| format!("malformed \\uxxxx escape `\\u{hex}`"))?;
            match (pending_high.take(), unit) {
                (None, 0xD800..=0xDBFF) => pending_high = Some(unit),
                (Some(high), 0xDC00..=0xDFFF) => {
                    let cp = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                    out.push(char::from_u32(cp).ok_or_else(lone_surrogate)?);
                }
                (Some(_), _) | (None, 0xDC00..=0xDFFF) => return Err(lone_surrogate()),
                (None, _) => out.push(char::from_u32(unit).ok_or_else(lone_surrogate)?),
            }
            continue;
        }
        if pending_high.take().is_some() {
            return Err(lone_surrogate());
        }
        out.push(match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            other => other,
        });
    }
    if pending_high.is_some() {
        return Err(lone_surrogate());
    }
    Ok(out)
}

fn lone_surrogate() -> String {
    "a \\uXXXX escape encodes an unpaired UTF-16 surrogate".to_owned()
}

/// A connector configuration given as JSON, in either form Kafka Connect's REST API takes.
#[derive(Debug)]
pub(crate) struct JsonConnector {
    pub(crate) config: RawConfig,
    /// The `name` of the `{"name": …, "config": {…}}` form.
    pub(crate) outer_name: Option<String>,
}

/// Keys of Kafka Connect's create-connector request body (`POST /connectors`).
const CREATE_REQUEST_KEYS: [&str; 3] = ["name", "config", "initial_state"];

/// Parses `{"name": "...", "config": {...}}` (the `POST /connectors` body) or a bare config
/// object (the `PUT /connectors/{name}/config` body). Values may be strings, numbers or
/// booleans (converted to text as Connect does); `null` means unset.
pub(crate) fn parse_connector_json(text: &str, source: &str) -> Result<JsonConnector, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
        location: Location::new(source, Some(e.line())),
        message: format!("invalid JSON: {e}"),
    })?;
    let syntax = |message: String| ConfigError::Syntax {
        location: Location::new(source, None),
        message,
    };
    let Value::Object(top) = value else {
        return Err(syntax(
            "a connector JSON file must be an object: {\"name\": \"...\", \"config\": {...}} or {\"connector.class\": ...}"
                .to_owned(),
        ));
    };
    let (config_obj, outer_name) = match top.get("config") {
        Some(Value::Object(cfg)) => {
            if let Some(k) = top
                .keys()
                .find(|k| !CREATE_REQUEST_KEYS.contains(&k.as_str()))
            {
                return Err(syntax(format!(
                    "unexpected key `{k}` next to `config`; a create-connector request has only `name`, `config` and `initial_state`"
                )));
            }
            let outer_name = match top.get("name") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    return Err(syntax(format!("`name` must be a string, not {other}")));
                }
            };
            match top.get("initial_state") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.eq_ignore_ascii_case("running") => {}
                Some(other) => {
                    return Err(syntax(format!(
                        "`initial_state` {other} is not supported yet: pgseam starts connectors RUNNING; remove it"
                    )));
                }
            }
            (cfg.clone(), outer_name)
        }
        _ => (top, None),
    };
    let mut config = RawConfig::new(source);
    for (key, v) in config_obj {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => {
                return Err(syntax(format!(
                    "the value of `{key}` must be a string, number or boolean (lists are comma-separated strings)"
                )));
            }
        };
        config.push(key, text, None);
    }
    Ok(JsonConnector { config, outer_name })
}

/// Reads a file as text: UTF-8, or ISO-8859-1 (what `Properties.load(InputStream)` assumes)
/// when it is not valid UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

/// True if the text is JSON: its first non-whitespace character is `{`.
pub(crate) fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .starts_with('{')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        parse_properties(text).unwrap()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn separators_and_whitespace() {
        let text = "a=1\nb: 2\nc 3\n  d   =   4  \ne\t:\tfive\nf\ng=\nh = = x\n";
        assert_eq!(
            parse(text),
            kv(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4  "),
                ("e", "five"),
                ("f", ""),
                ("g", ""),
                ("h", "= x"),
            ])
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let text =
            "# comment\n! also comment\n   # indented comment\n\n \t \nkey=value # not a comment\n";
        assert_eq!(parse(text), kv(&[("key", "value # not a comment")]));
    }

    #[test]
    fn continuation_lines() {
        let text = "list=a,\\\n    b,\\\n    c\nnext=1\n";
        assert_eq!(parse(text), kv(&[("list", "a,b,c"), ("next", "1")]));
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            parse("path=C:\\\\\nx=y"),
            kv(&[("path", "C:\\"), ("x", "y")])
        );
        // A continuation line starting with '#' is not a comment.
        assert_eq!(parse("k=a\\\n  #b"), kv(&[("k", "a#b")]));
        // A trailing backslash at end of input is dropped.
        assert_eq!(parse("k=v\\"), kv(&[("k", "v")]));
        // A comment line ending in a backslash does not continue.
        assert_eq!(parse("# c \\\nk=v"), kv(&[("k", "v")]));
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            parse("a=1\r\nb=2\rc=3"),
            kv(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(r"k\=ey\:x\ y=v\tw\nx\ry\fz\u0041\\"),
            kv(&[("k=ey:x y", "v\tw\nx\ry\x0cz\u{41}\\")])
        );
        assert_eq!(parse(r"e=caf\u00e9"), kv(&[("e", "café")]));
        assert_eq!(parse(r"s=\uD83D\uDE00"), kv(&[("s", "😀")]));
        assert_eq!(parse(r"other=\q\#"), kv(&[("other", "q#")]));
        assert_eq!(parse("u=ünïcode"), kv(&[("u", "ünïcode")]));
    }

    #[test]
    fn malformed_unicode_escape_names_line() {
        let err = parse_properties_in("ok=1\nbad=\\u12G4\n", "w.properties").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("w.properties:2: malformed \\uxxxx"),
            "{msg}"
        );
        let err = parse_properties_in("bad=\\uD83D", "w.properties").unwrap_err();
        assert!(err.to_string().contains("surrogate"), "{err}");
        assert!(parse_properties("short=\\u12").is_err());
    }

    #[test]
    fn later_duplicate_wins_in_first_position() {
        let raw = parse_properties_in("a=1\nb=2\na=3\n", "f").unwrap();
        let got: Vec<_> = raw
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(got, vec![("a", "3", Some(3)), ("b", "2", Some(2))]);
    }

    #[test]
    fn bom_is_ignored() {
        assert_eq!(parse("\u{feff}a=1"), kv(&[("a", "1")]));
    }

    #[test]
    fn json_create_request_form() {
        let j = parse_connector_json(
            r#"{"name": "inventory", "config": {"connector.class": "PostgresConnector",
                "database.port": 5432, "tombstones.on.delete": false, "x": null}}"#,
            "c.json",
        )
        .unwrap();
        assert_eq!(j.outer_name.as_deref(), Some("inventory"));
        let got: Vec<_> = j
            .config
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("connector.class", "PostgresConnector"),
                ("database.port", "5432"),
                ("tombstones.on.delete", "false"),
            ]
        );
    }

    #[test]
    fn json_bare_config_form() {
        let j = parse_connector_json(r#"{"name": "x", "connector.class": "c"}"#, "c.json").unwrap();
        assert_eq!(j.outer_name, None);
        assert_eq!(j.config.entries.len(), 2);
    }

    #[test]
    fn json_errors() {
        let e = parse_connector_json("{\n\"a\": \n}", "c.json").unwrap_err();
        assert!(e.to_string().starts_with("c.json:3: invalid JSON"), "{e}");
        let e = parse_connector_json("[1]", "c.json").unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
        let e = parse_connector_json(r#"{"a": [1, 2]}"#, "c.json").unwrap_err();
        assert!(e.to_string().contains("`a` must be a string"), "{e}");
        let e = parse_connector_json(r#"{"name": "n", "config": {}, "tasks": []}"#, "c.json")
            .unwrap_err();
        assert!(e.to_string().contains("unexpected key `tasks`"), "{e}");
        let e = parse_connector_json(
            r#"{"name": "n", "config": {}, "initial_state": "PAUSED"}"#,
            "c.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("initial_state"), "{e}");
    }

    #[test]
    fn json_detection() {
        assert!(looks_like_json("  \n {\"a\": 1}"));
        assert!(!looks_like_json("# {comment}\na=1"));
    }
}
