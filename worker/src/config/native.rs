//! pgseam's native worker configuration: the worker settings as a TOML file, and environment
//! overrides for any worker file — both read with the `config` crate.
//!
//! # TOML
//!
//! A worker file whose name ends in `.toml` is read as TOML. Its keys are the worker
//! properties (the same names, defaults and validation as `worker.properties`); dotted names
//! may be written as nested tables or as quoted keys, and flatten to the same property:
//!
//! ```toml
//! "bootstrap.servers" = "kafka-1:9092,kafka-2:9092"
//! listeners = ["http://:8083"]                  # an array is the comma-separated list
//! "key.converter" = "org.apache.kafka.connect.json.JsonConverter"
//! "key.converter.schemas.enable" = false        # quoted: `key.converter` is also a value
//! log.format = "json"                           # a dotted key: table `log`, key `format`
//!
//! [offset.storage.file]
//! filename = "/var/lib/pgseam/offsets.dat"
//!
//! [producer]
//! "compression.type" = "zstd"
//! ```
//!
//! Values may be strings, integers, floats or booleans (written as Kafka Connect would read
//! their text); an array becomes its items joined with `,`. A key that is both a value and a
//! table prefix (`key.converter` and `key.converter.schemas.enable`) must be quoted, since TOML
//! cannot make one name both. Line numbers are not known for TOML, so errors name the file and
//! the key.
//!
//! # Environment overrides
//!
//! `PGSEAM_WORKER_<KEY>` sets worker property `<key>` for a TOML or properties worker file,
//! with Confluent's container convention for the name: lower-cased, `_` → `.`, `__` → `_`,
//! `___` → `-` (`PGSEAM_WORKER_BOOTSTRAP_SERVERS` → `bootstrap.servers`,
//! `PGSEAM_WORKER_PRODUCER_COMPRESSION_TYPE` → `producer.compression.type`). The value is taken
//! as written (config provider references such as `${file:…}` are resolved afterwards, like
//! the file's own).
//!
//! # Precedence
//!
//! For each worker property, the first of: a `PGSEAM_WORKER_*` environment variable, the
//! worker file (TOML or properties), pgseam's default (Kafka Connect's default unless the key's
//! docs say otherwise). `log.format` also yields to `--log-format` on the command line.
//! Connector configurations are not affected: they stay Debezium's properties or JSON, as
//! Kafka Connect takes them.

use std::collections::HashMap;
use std::path::Path;

use ::config::{Environment, FileFormat, Format, Source, Value, ValueKind};
use tracing::info;

use super::error::{ConfigError, ConfigErrors, Location};
use super::source::RawConfig;

/// Prefix of the environment variables that override worker properties.
pub const WORKER_ENV_PREFIX: &str = "PGSEAM_WORKER";

/// True for a worker file pgseam reads as TOML.
pub(crate) fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// Reads a TOML worker file into flat `key = value` settings.
pub(crate) fn read_toml(path: &Path) -> Result<RawConfig, ConfigErrors> {
    let source = path.display().to_string();
    let syntax = |message: String| ConfigError::Syntax {
        location: Location::new(&source, None),
        message,
    };
    let text = super::source::read_text(path)?;
    // `Format::parse` keeps the keys as written; a `Config` would split quoted dotted keys
    // into paths, making `key.converter` and `key.converter.schemas.enable` collide.
    let table = FileFormat::Toml
        .parse(Some(&source), &text)
        .map_err(|e| syntax(format!("not a valid TOML worker configuration: {e}")))?;
    let mut raw = RawConfig::new(&source);
    let mut errors = Vec::new();
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    for key in keys {
        flatten(key, &table[key], &mut raw, &mut errors, &source);
    }
    if errors.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Adds `value` under `key`, recursing into tables (`a.b`).
fn flatten(
    key: &str,
    value: &Value,
    raw: &mut RawConfig,
    errors: &mut Vec<ConfigError>,
    source: &str,
) {
    match &value.kind {
        ValueKind::Table(table) => {
            let mut names: Vec<&String> = table.keys().collect();
            names.sort();
            for name in names {
                flatten(&format!("{key}.{name}"), &table[name], raw, errors, source);
            }
        }
        ValueKind::Nil => {}
        ValueKind::Array(items) => {
            let mut texts = Vec::new();
            for item in items {
                match scalar_text(item) {
                    Some(t) => texts.push(t),
                    None => errors.push(ConfigError::InvalidValue {
                        location: Location::new(source, None),
                        key: key.to_owned(),
                        value: "[…]".to_owned(),
                        expected: "an array of strings, numbers or booleans".to_owned(),
                    }),
                }
            }
            raw.push(key.to_owned(), texts.join(","), None);
        }
        _ => {
            if let Some(text) = scalar_text(value) {
                raw.push(key.to_owned(), text, None);
            }
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match &value.kind {
        ValueKind::String(s) => Some(s.clone()),
        ValueKind::Boolean(b) => Some(b.to_string()),
        ValueKind::I64(n) => Some(n.to_string()),
        ValueKind::I128(n) => Some(n.to_string()),
        ValueKind::U64(n) => Some(n.to_string()),
        ValueKind::U128(n) => Some(n.to_string()),
        ValueKind::Float(f) => Some(f.to_string()),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => None,
    }
}

/// Worker property name of an environment variable's key (the part after the prefix,
/// lower-cased): `___` → `-`, `__` → `_`, `_` → `.`.
pub(crate) fn property_name(env_key: &str) -> String {
    let lower = env_key.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("___") {
            out.push('-');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("__") {
            out.push('_');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('_') {
            out.push('.');
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The environment variable that sets worker property `key`.
pub fn env_name(key: &str) -> String {
    let mut out = format!("{WORKER_ENV_PREFIX}_");
    for c in key.chars() {
        match c {
            '.' => out.push('_'),
            '_' => out.push_str("__"),
            '-' => out.push_str("___"),
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    out
}

/// Applies the `PGSEAM_WORKER_*` variables of `vars` (the process environment when `None`) to
/// `raw`: each replaces the file's value of its property, or adds it.
pub(crate) fn apply_env_overrides(
    raw: &mut RawConfig,
    vars: Option<HashMap<String, String>>,
) -> Result<(), ConfigErrors> {
    let env = Environment::with_prefix(WORKER_ENV_PREFIX)
        .prefix_separator("_")
        .source(vars);
    let overrides = env.collect().map_err(|e| ConfigError::Syntax {
        location: Location::new("the environment", None),
        message: format!("cannot read {WORKER_ENV_PREFIX}_* variables: {e}"),
    })?;
    let mut names: Vec<&String> = overrides.keys().collect();
    names.sort();
    for name in names {
        let key = property_name(name);
        let Some(value) = scalar_text(&overrides[name]) else {
            continue;
        };
        info!(
            key = key.as_str(),
            variable = env_name(&key).as_str(),
            "worker property set from the environment"
        );
        raw.push(key, value, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_container_convention() {
        assert_eq!(property_name("bootstrap_servers"), "bootstrap.servers");
        assert_eq!(
            property_name("PRODUCER_COMPRESSION_TYPE"),
            "producer.compression.type"
        );
        assert_eq!(property_name("a__b___c_d"), "a_b-c.d");
        assert_eq!(
            env_name("bootstrap.servers"),
            "PGSEAM_WORKER_BOOTSTRAP_SERVERS"
        );
        assert_eq!(env_name("a_b-c.d"), "PGSEAM_WORKER_A__B___C_D");
        for key in ["offset.storage.file.filename", "x_y", "p-q.r"] {
            let env = env_name(key);
            let tail = env.strip_prefix("PGSEAM_WORKER_").unwrap();
            assert_eq!(property_name(tail), key);
        }
    }

    #[test]
    fn overrides_replace_and_add() {
        let mut raw = RawConfig::new("w.properties");
        raw.push("bootstrap.servers".into(), "file:9092".into(), Some(1));
        raw.push("listeners".into(), "http://:8083".into(), Some(2));
        let vars = HashMap::from([
            (
                "PGSEAM_WORKER_BOOTSTRAP_SERVERS".to_owned(),
                "env:9092".to_owned(),
            ),
            ("PGSEAM_WORKER_LOG_FORMAT".to_owned(), "json".to_owned()),
            ("PGSEAM_BROKER_BIN".to_owned(), "/x".to_owned()),
            ("OTHER".to_owned(), "1".to_owned()),
        ]);
        apply_env_overrides(&mut raw, Some(vars)).unwrap();
        let pairs: Vec<(&str, &str)> = raw
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("bootstrap.servers", "env:9092"),
                ("listeners", "http://:8083"),
                ("log.format", "json"),
            ]
        );
    }

    #[test]
    fn toml_flattens_tables_quoted_keys_and_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            r#"
"bootstrap.servers" = "k1:9092,k2:9092"
listeners = ["http://:8083", "http://127.0.0.1:8084"]
"key.converter" = "org.apache.kafka.connect.json.JsonConverter"
"key.converter.schemas.enable" = false
log.format = "json"
"offset.flush.interval.ms" = 1000

[offset.storage.file]
filename = "/var/lib/pgseam/offsets.dat"

[producer]
"compression.type" = "zstd"
"#,
        )
        .unwrap();
        let raw = read_toml(&path).unwrap();
        let mut pairs: Vec<(&str, &str)> = raw
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("bootstrap.servers", "k1:9092,k2:9092"),
                (
                    "key.converter",
                    "org.apache.kafka.connect.json.JsonConverter"
                ),
                ("key.converter.schemas.enable", "false"),
                ("listeners", "http://:8083,http://127.0.0.1:8084"),
                ("log.format", "json"),
                ("offset.flush.interval.ms", "1000"),
                (
                    "offset.storage.file.filename",
                    "/var/lib/pgseam/offsets.dat"
                ),
                ("producer.compression.type", "zstd"),
            ]
        );

        std::fs::write(&path, "bootstrap.servers = \n").unwrap();
        let err = read_toml(&path).unwrap_err().to_string();
        assert!(
            err.contains("not a valid TOML worker configuration"),
            "{err}"
        );
        let err = read_toml(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
    }
}
