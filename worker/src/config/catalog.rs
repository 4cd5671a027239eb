//! What pgseam knows about other systems' keys: Debezium's connector properties and their
//! defaults (embedded from Debezium's own config definition), and the closest-key suggestion for
//! typos.

use std::sync::OnceLock;

use regex::Regex;

/// Debezium's config definition, dumped from Debezium 3.x (`scope`, `name`, `type`, `default`,
/// `importance`, tab-separated). A copy of `shared/reference/debezium/golden/defaults.tsv`:
/// the reference, not pgseam's output.
const DEBEZIUM_DEFAULTS_TSV: &str = include_str!("debezium-defaults.tsv");

/// A Debezium property from the embedded table.
#[derive(Debug)]
pub(crate) struct DebeziumKey {
    /// The name; for templated keys (`column.mask.with.(d+).chars`) the template as dumped.
    pub(crate) name: &'static str,
    /// Debezium's type: `STRING`, `INT`, `LONG`, `BOOLEAN`, `LIST`, `CLASS`, `PASSWORD`
    /// (and `ENUM` for Kafka Connect's case-insensitive enums, see [`is_default_value`]).
    pub(crate) ty: &'static str,
    /// Debezium's default; `None` when unset by default (dumped as `null`).
    pub(crate) default: Option<&'static str>,
    /// For templated keys, the regex matching concrete key names.
    pattern: Option<Regex>,
}

/// The connector-scope rows of the table, and the JsonConverter rows.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) connector: Vec<DebeziumKey>,
    pub(crate) json_converter: Vec<DebeziumKey>,
}

pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut connector = Vec::new();
        let mut json_converter = Vec::new();
        for line in DEBEZIUM_DEFAULTS_TSV.lines() {
            let cols: Vec<&'static str> = line.split('\t').collect();
            let [scope, name, ty, default, _importance] = cols[..] else {
                continue;
            };
            let key = DebeziumKey {
                name,
                ty,
                default: (default != "null").then_some(default),
                pattern: name.contains('(').then(|| template_regex(name)),
            };
            match scope {
                "connector" => connector.push(key),
                "jsonconverter" => json_converter.push(key),
                _ => {}
            }
        }
        Catalog {
            connector,
            json_converter,
        }
    })
}

impl Catalog {
    /// The connector property named `key` (exactly, or matching a templated name).
    pub(crate) fn connector_key(&self, key: &str) -> Option<&DebeziumKey> {
        self.connector
            .iter()
            .find(|k| k.pattern.is_none() && k.name == key)
            .or_else(|| {
                self.connector
                    .iter()
                    .find(|k| k.pattern.as_ref().is_some_and(|p| p.is_match(key)))
            })
    }

    /// Plain (non-templated) connector property names, for suggestions.
    pub(crate) fn connector_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.connector
            .iter()
            .filter(|k| k.pattern.is_none())
            .map(|k| k.name)
    }

    pub(crate) fn json_converter_key(&self, key: &str) -> Option<&DebeziumKey> {
        self.json_converter.iter().find(|k| k.name == key)
    }
}

/// Turns a dumped template such as `column.mask.hash.([^.]+).with.salt.(.+)` into an anchored
/// regex: groups stay regex (the dump lost the backslash of `\d+`), the rest is literal.
fn template_regex(template: &str) -> Regex {
    let mut re = String::from("^");
    let mut rest = template;
    while let Some(open) = rest.find('(') {
        re.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find(')').map_or(rest.len(), |c| open + c + 1);
        re.push_str(&rest[open..close].replace("(d+)", r"(\d+)"));
        rest = &rest[close..];
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    Regex::new(&re).expect("Debezium key templates are valid regexes")
}

impl DebeziumKey {
    /// True if `value` means the same as the default, so accepting it changes nothing.
    ///
    /// Values are compared as Kafka's `ConfigDef` would parse them: trimmed (passwords aside),
    /// booleans and enum-like modes case-insensitively, numbers numerically, lists item by item;
    /// an empty value equals an unset (`null`) default.
    pub(crate) fn is_default(&self, value: &str) -> bool {
        is_default_value(self.name, self.ty, self.default, value)
    }
}

pub(crate) fn is_default_value(key: &str, ty: &str, default: Option<&str>, value: &str) -> bool {
    let value = if ty == "PASSWORD" {
        value
    } else {
        value.trim()
    };
    let Some(default) = default else {
        return value.is_empty();
    };
    match ty {
        "BOOLEAN" | "ENUM" => value.eq_ignore_ascii_case(default),
        "INT" | "LONG" | "SHORT" => match (value.parse::<i64>(), default.parse::<i64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => value == default,
        },
        "LIST" => {
            let items = |s: &str| -> Vec<String> {
                s.trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|i| i.trim().to_ascii_lowercase())
                    .filter(|i| !i.is_empty())
                    .collect()
            };
            items(value) == items(default)
        }
        _ if is_enum_like(key) => value.eq_ignore_ascii_case(default),
        _ => value == default,
    }
}

/// Debezium parses its mode/action/strategy enums case-insensitively.
fn is_enum_like(key: &str) -> bool {
    key.ends_with("mode")
        || key.ends_with(".action")
        || key.ends_with(".strategy")
        || key.ends_with(".format")
        || key == "snapshot.tables.order.by.row.count"
}

/// Optimal-string-alignment (restricted Damerau–Levenshtein) distance: insertions, deletions,
/// substitutions and adjacent transpositions each cost 1.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Shortest unknown key for which a prefix of a known key counts as a match
/// (`database.host` → `database.hostname`); shorter prefixes match too much.
const MIN_PREFIX_SUGGESTION_LEN: usize = 6;

/// The known key closest to `key`, case-insensitively: one at edit distance 1; else the
/// shortest known key that `key` is a prefix of (`database.host` → `database.hostname`); else
/// the closest within an edit distance of a third of its length (at least 1, at most 3).
pub(crate) fn suggest<'a>(
    key: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let max_distance = (lower.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    let mut prefix: Option<&str> = None;
    for c in candidates {
        let cl = c.to_ascii_lowercase();
        if cl == lower {
            // Differs only in case.
            return Some(c.to_owned());
        }
        let d = edit_distance(&lower, &cl);
        if d <= max_distance && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
        if lower.len() >= MIN_PREFIX_SUGGESTION_LEN
            && cl.starts_with(&lower)
            && prefix.is_none_or(|p| c.len() < p.len())
        {
            prefix = Some(c);
        }
    }
    match (best, prefix) {
        // A single slip beats a prefix; a prefix beats a bigger edit.
        (Some((1, c)), _) | (_, Some(c)) | (Some((_, c)), None) => Some(c.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_loads_debezium_defaults() {
        let c = catalog();
        assert!(c.connector.len() > 100);
        let k = c.connector_key("binary.handling.mode").unwrap();
        assert_eq!(k.default, Some("bytes"));
        assert_eq!(
            c.connector_key("message.key.columns").unwrap().default,
            None
        );
        assert!(c.connector_key("column.mask.with.12.chars").is_some());
        assert!(c
            .connector_key("column.mask.hash.SHA-256.with.salt.pepper")
            .is_some());
        assert!(c.connector_key("column.truncate.to.x.chars").is_none());
        assert!(c.connector_key("databse.hostname").is_none());
        assert_eq!(
            c.json_converter_key("decimal.format").unwrap().default,
            Some("BASE64")
        );
    }

    #[test]
    fn default_comparison() {
        let c = catalog();
        let d = |k: &str, v: &str| c.connector_key(k).unwrap().is_default(v);
        assert!(d("binary.handling.mode", "bytes"));
        assert!(d("binary.handling.mode", " BYTES "));
        assert!(!d("binary.handling.mode", "base64"));
        assert!(d("include.unknown.datatypes", "FALSE"));
        assert!(!d("include.unknown.datatypes", "true"));
        assert!(d("query.fetch.size", "0"));
        assert!(d("query.fetch.size", "00"));
        assert!(d("signal.enabled.channels", "source"));
        assert!(d("signal.enabled.channels", " source , "));
        assert!(!d("signal.enabled.channels", "source,kafka"));
        assert!(d("message.key.columns", ""));
        assert!(d("message.key.columns", "  "));
        assert!(!d("message.key.columns", "public.t:id"));
        assert!(d("heartbeat.topics.prefix", "__debezium-heartbeat"));
        assert!(!d("heartbeat.topics.prefix", "__DEBEZIUM-heartbeat"));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("databse.hostname", "database.hostname"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = [
            "database.hostname",
            "database.port",
            "slot.name",
            "tasks.max",
            "name",
        ];
        assert_eq!(
            suggest("databse.hostname", keys).as_deref(),
            Some("database.hostname")
        );
        assert_eq!(
            suggest("Database.Hostname", keys).as_deref(),
            Some("database.hostname")
        );
        assert_eq!(
            suggest("database.host", keys).as_deref(),
            Some("database.hostname")
        );
        assert_eq!(suggest("slot.nmae", keys).as_deref(), Some("slot.name"));
        assert_eq!(suggest("nam", keys).as_deref(), Some("name"));
        assert_eq!(suggest("completely.different", keys), None);
        assert_eq!(suggest("port", keys), None);
    }
}
