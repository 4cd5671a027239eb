//! Debezium's column-shaping keys (see [`pgseam_converters::columns`] for what they do):
//!
//! - `column.include.list` / `column.exclude.list`: comma-separated regexes on
//!   `<schema>.<table>.<column>` (anchored, case-insensitive, `\,` for a literal comma); both set
//!   is an error, as in Debezium; an empty value is the same as unset.
//! - `column.truncate.to.<n>.chars`, `column.mask.with.<n>.chars` (`n` ≥ 0),
//!   `column.mask.hash.<algorithm>.with.salt.<salt>` and
//!   `column.mask.hash.v2.<algorithm>.with.salt.<salt>`: each a regex list of columns. The
//!   algorithm is a Java `MessageDigest` name pgseam computes (MD5 and the SHA-2 family); any
//!   other is an error naming the key. A key with the prefix but not the template
//!   (`column.truncate.to.x.chars`) is an unknown key.
//! - `column.propagate.source.type` (regexes on `<schema>.<table>.<column>`) and
//!   `datatype.propagate.source.type` (regexes on `<schema>.<table>.<type name>`, e.g.
//!   `.+\.varchar`): mapper rules between the mask and the hash rules, as Debezium orders them.
//! - `message.key.columns`: `<fully-qualified table regex>:<column>[,<column>...]` items
//!   separated by `;`, validated with Debezium's item pattern.
//! - `topic.delimiter` (default `.`; empty = default), `schema.name.adjustment.mode` and
//!   `field.name.adjustment.mode` (`none` default, `avro`, `avro_unicode`): see
//!   [`pgseam_converters::naming`].

use pgseam_converters::columns::{
    parse_message_key_columns, ColumnFilter, ColumnMapper, ColumnShaping, HashAlgorithm, MapperRule,
};
use pgseam_converters::naming::{NameAdjustment, Naming};
use regex::Regex;

use super::error::ConfigError;
use super::filter::compile_regex_list;
use super::settings::Settings;
use super::source::RawEntry;

/// The keys of this module that have a fixed name.
pub(crate) const COLUMN_KEYS: &[&str] = &[
    "column.include.list",
    "column.exclude.list",
    "column.propagate.source.type",
    "datatype.propagate.source.type",
    "message.key.columns",
    "topic.delimiter",
    "schema.name.adjustment.mode",
    "field.name.adjustment.mode",
];

const TRUNCATE_PREFIX: &str = "column.truncate.to.";
const MASK_PREFIX: &str = "column.mask.with.";
const HASH_PREFIX: &str = "column.mask.hash.";

fn bad_regex(s: &mut Settings, e: &RawEntry, pattern: &str, reason: &str) {
    s.invalid(
        e,
        format!(
            "comma-separated regular expressions of `<schema>.<table>.<column>`, but `{pattern}` is invalid: {reason} (pgseam uses Rust regex syntax: no look-around or back-references)"
        ),
    );
}

fn patterns(s: &mut Settings, e: &RawEntry) -> Option<Vec<Regex>> {
    match compile_regex_list(&e.value) {
        Ok(p) => Some(p),
        Err(bad) => {
            bad_regex(s, e, &bad.pattern, &bad.reason);
            None
        }
    }
}

/// Reads the column-shaping keys; `unknown` receives prefixed keys that are not one of the
/// templates (the caller reports them as unknown keys).
pub(crate) fn take_column_shaping(s: &mut Settings, unknown: &mut Vec<RawEntry>) -> ColumnShaping {
    let mut shaping = ColumnShaping::default();

    let include = s
        .take("column.include.list")
        .filter(|e| !e.value.trim().is_empty());
    let exclude = s
        .take("column.exclude.list")
        .filter(|e| !e.value.trim().is_empty());
    match (include, exclude) {
        (Some(inc), Some(exc)) => {
            let later = if exc.line >= inc.line { &exc } else { &inc };
            let e = ConfigError::Conflict {
                location: s.location(later),
                keys: vec!["column.include.list".into(), "column.exclude.list".into()],
                message: "`column.include.list` and `column.exclude.list` cannot both be set (Debezium rejects this too); keep one".into(),
            };
            s.push(e);
        }
        (Some(inc), None) => {
            shaping.filter = patterns(s, &inc).map(ColumnFilter::Include);
        }
        (None, Some(exc)) => {
            shaping.filter = patterns(s, &exc).map(ColumnFilter::Exclude);
        }
        (None, None) => {}
    }

    // Debezium reads the mappers in this order and the first matching rule wins; several
    // keys of one kind are taken in key order.
    let truncate_rx = Regex::new(r"^column\.truncate\.to\.(\d+)\.chars$").expect("valid");
    let mask_rx = Regex::new(r"^column\.mask\.with\.(\d+)\.chars$").expect("valid");
    let hash_rx =
        Regex::new(r"^column\.mask\.hash\.(v2\.)?([^.]+)\.with\.salt\.(.+)$").expect("valid");
    let mut by_key = |prefix: &str| {
        let mut v = s.take_prefixed(prefix);
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    };
    let truncates = by_key(TRUNCATE_PREFIX);
    let masks = by_key(MASK_PREFIX);
    let hashes = by_key(HASH_PREFIX);
    let mut rules_v1 = Vec::new();
    let mut rules_v2 = Vec::new();
    for (entries, rx) in [(truncates, &truncate_rx), (masks, &mask_rx)] {
        for e in entries {
            let Some(c) = rx.captures(&e.key) else {
                unknown.push(e);
                continue;
            };
            let Ok(n) = c[1].parse::<u32>() else {
                s.invalid(&e, "a length in the key that fits in 32 bits");
                continue;
            };
            if e.value.trim().is_empty() {
                continue;
            }
            let mapper = if rx.as_str() == truncate_rx.as_str() {
                ColumnMapper::Truncate(n)
            } else {
                ColumnMapper::Mask(n)
            };
            if let Some(patterns) = patterns(s, &e) {
                shaping.mappers.push(MapperRule { patterns, mapper });
            }
        }
    }
    // Then source type propagation: by column, by data type.
    for (key, by_datatype) in [
        ("column.propagate.source.type", false),
        ("datatype.propagate.source.type", true),
    ] {
        if let Some(e) = s.take(key).filter(|e| !e.value.trim().is_empty()) {
            if let Some(patterns) = patterns(s, &e) {
                shaping.mappers.push(MapperRule {
                    patterns,
                    mapper: ColumnMapper::PropagateSourceType { by_datatype },
                });
            }
        }
    }
    for e in hashes {
        let Some(c) = hash_rx.captures(&e.key) else {
            unknown.push(e);
            continue;
        };
        let v2 = c.get(1).is_some();
        let Some(algorithm) = HashAlgorithm::from_java_name(&c[2]) else {
            let name = c[2].to_owned();
            s.invalid(
                &e,
                format!(
                    "a key naming a hash algorithm pgseam computes ({}); `{name}` is not one",
                    HashAlgorithm::NAMES
                ),
            );
            continue;
        };
        let salt = c[3].to_owned();
        if e.value.trim().is_empty() {
            continue;
        }
        if let Some(patterns) = patterns(s, &e) {
            let rule = MapperRule {
                patterns,
                mapper: ColumnMapper::Hash {
                    algorithm,
                    salt,
                    v2,
                },
            };
            if v2 {
                rules_v2.push(rule);
            } else {
                rules_v1.push(rule);
            }
        }
    }
    shaping.mappers.extend(rules_v1);
    shaping.mappers.extend(rules_v2);

    if let Some(e) = s
        .take("message.key.columns")
        .filter(|e| !e.value.trim().is_empty())
    {
        match parse_message_key_columns(&e.value) {
            Err(reason) => s.invalid(
                &e,
                format!("`<fully-qualified table regex>:<column>[,<column>...]` items separated by `;`: {reason}"),
            ),
            Ok(texts) => {
                for text in texts {
                    match compile_regex_list(&text) {
                        Ok(p) => shaping.key_columns.push(p),
                        Err(bad) => {
                            bad_regex(s, &e, &bad.pattern, &bad.reason);
                            break;
                        }
                    }
                }
            }
        }
    }
    shaping
}

/// Reads `topic.delimiter`, `schema.name.adjustment.mode` and `field.name.adjustment.mode`.
pub(crate) fn take_naming(s: &mut Settings) -> Naming {
    let modes = [
        ("none", NameAdjustment::None),
        ("avro", NameAdjustment::Avro),
        ("avro_unicode", NameAdjustment::AvroUnicode),
    ];
    let delimiter = s
        .take("topic.delimiter")
        .map(|e| e.value.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    Naming {
        delimiter,
        schema_names: s.choice("schema.name.adjustment.mode", NameAdjustment::None, &modes),
        field_names: s.choice("field.name.adjustment.mode", NameAdjustment::None, &modes),
    }
}
