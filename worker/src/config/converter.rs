//! Kafka Connect converter settings (`key.converter`, `value.converter`, `header.converter` and
//! their `.<property>` sub-keys), shared by the worker and connector configurations.

use tracing::{debug, info, warn};

use super::catalog::{catalog, suggest};
use super::error::{ConfigError, Owner};
use super::settings::{parse_bool, Settings};
use super::source::RawEntry;

/// Kafka Connect's JsonConverter, the only record converter pgseam writes today.
pub const JSON_CONVERTER_CLASS: &str = "org.apache.kafka.connect.json.JsonConverter";
/// Kafka Connect's default header converter (worker `header.converter` default).
pub const SIMPLE_HEADER_CONVERTER_CLASS: &str =
    "org.apache.kafka.connect.storage.SimpleHeaderConverter";
/// JsonConverter's `schemas.enable` default: envelopes carry their schema.
pub const DEFAULT_SCHEMAS_ENABLE: bool = true;
/// JsonConverter's `decimal.format` default: `Decimal` values as base64 of their bytes.
pub const DEFAULT_DECIMAL_FORMAT: DecimalFormat = DecimalFormat::Base64;
/// JsonConverter's `replace.null.with.default` default (Kafka ≥ 3.7): a null field with a
/// schema default is written as the default.
pub const DEFAULT_REPLACE_NULL_WITH_DEFAULT: bool = true;

pub use pgseam_converters::DecimalFormat;

/// Names Kafka Connect accepts for the JsonConverter: the class, and the plugin aliases it
/// derives (simple class name, and that name without the `Converter` suffix).
const JSON_CONVERTER_NAMES: [&str; 3] = [JSON_CONVERTER_CLASS, "JsonConverter", "Json"];
const SIMPLE_HEADER_CONVERTER_NAMES: [&str; 3] = [
    SIMPLE_HEADER_CONVERTER_CLASS,
    "SimpleHeaderConverter",
    "SimpleHeader",
];

/// JsonConverter properties that only tune a cache: any valid value is accepted.
const IGNORED_JSON_CONVERTER_PROPS: [&str; 1] = ["schemas.cache.size"];
/// Sub-key prefixes of other converters (Avro, schema registry) that the JsonConverter ignores,
/// as Kafka Connect's does; accepted so a JSON setup keeps working with leftover registry keys.
const IGNORED_REGISTRY_PREFIXES: [&str; 2] = ["schema.registry.", "basic.auth."];
/// Set by Kafka Connect itself; not a user property.
const INTERNAL_JSON_CONVERTER_PROPS: [&str; 1] = ["converter.type"];

/// A record converter pgseam can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConverterKind {
    /// `org.apache.kafka.connect.json.JsonConverter`.
    Json,
}

/// A key or value converter and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConverterSettings {
    /// Which converter.
    pub kind: ConverterKind,
    /// `*.converter.schemas.enable`: wrap each record in `{"schema": …, "payload": …}`.
    pub schemas_enable: bool,
    /// `*.converter.decimal.format`: `BASE64` or `NUMERIC` (case-insensitive).
    pub decimal_format: DecimalFormat,
    /// `*.converter.replace.null.with.default`.
    pub replace_null_with_default: bool,
}

impl Default for ConverterSettings {
    fn default() -> Self {
        Self::json(JsonProps::default())
    }
}

impl ConverterSettings {
    fn json(p: JsonProps) -> Self {
        Self {
            kind: ConverterKind::Json,
            schemas_enable: p.schemas_enable,
            decimal_format: p.decimal_format,
            replace_null_with_default: p.replace_null_with_default,
        }
    }
}

/// The JsonConverter properties pgseam implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JsonProps {
    schemas_enable: bool,
    decimal_format: DecimalFormat,
    replace_null_with_default: bool,
}

impl Default for JsonProps {
    fn default() -> Self {
        JsonProps {
            schemas_enable: DEFAULT_SCHEMAS_ENABLE,
            decimal_format: DEFAULT_DECIMAL_FORMAT,
            replace_null_with_default: DEFAULT_REPLACE_NULL_WITH_DEFAULT,
        }
    }
}

/// The header converter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderConverter {
    /// `org.apache.kafka.connect.storage.SimpleHeaderConverter` (Kafka Connect's default).
    #[default]
    Simple,
    /// `org.apache.kafka.connect.json.JsonConverter` with its `schemas.enable`.
    Json {
        /// `header.converter.schemas.enable`.
        schemas_enable: bool,
    },
}

/// Which converter a `*.converter` key configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Key,
    Value,
}

impl Role {
    fn class_key(self) -> &'static str {
        match self {
            Role::Key => "key.converter",
            Role::Value => "value.converter",
        }
    }
}

/// Takes `key.converter`/`value.converter` and its sub-keys.
///
/// Returns `None` when the class is not set. Kafka Connect then uses the worker's converter and
/// ignores the connector's `*.converter.*` sub-keys; a connector-level sub-key without its class
/// is therefore logged as ignored, exactly as Connect ignores it.
pub(crate) fn take_converter(settings: &mut Settings, role: Role) -> Option<ConverterSettings> {
    let class_key = role.class_key();
    let class = settings.take(class_key);
    let subkeys = settings.take_prefixed(&format!("{class_key}."));
    let Some(class) = class else {
        for e in &subkeys {
            warn!(
                source = settings.source(),
                key = %e.key,
                "ignored: `{class_key}` is not set here, so the worker's converter is used and, as in Kafka Connect, its settings come from the worker configuration; set `{class_key}` here too to override"
            );
        }
        return None;
    };
    let kind = parse_converter_class(settings, &class)?;
    let props = take_json_props(settings, class_key, &subkeys);
    Some(ConverterSettings {
        kind,
        ..ConverterSettings::json(props)
    })
}

/// Like [`take_converter`], for the worker: an absent class means the JsonConverter.
pub(crate) fn take_worker_converter(settings: &mut Settings, role: Role) -> ConverterSettings {
    let class_key = role.class_key();
    if !settings.contains(class_key) {
        info!(
            source = settings.source(),
            "`{class_key}` is not set: using {JSON_CONVERTER_CLASS} (Kafka Connect requires it to be set)"
        );
        let subkeys = settings.take_prefixed(&format!("{class_key}."));
        return ConverterSettings::json(take_json_props(settings, class_key, &subkeys));
    }
    take_converter(settings, role).unwrap_or_default()
}

fn parse_converter_class(settings: &mut Settings, class: &RawEntry) -> Option<ConverterKind> {
    let name = class.value.trim();
    if JSON_CONVERTER_NAMES.contains(&name) {
        return Some(ConverterKind::Json);
    }
    let reason = if name.to_ascii_lowercase().contains("avro") {
        format!(
            "pgseam writes only {JSON_CONVERTER_CLASS} for now; Avro (Confluent wire format) comes later"
        )
    } else {
        format!(
            "pgseam writes only {JSON_CONVERTER_CLASS} (Avro comes later); set `{}={JSON_CONVERTER_CLASS}`",
            class.key
        )
    };
    let e = ConfigError::UnsupportedValue {
        location: settings.location(class),
        key: class.key.clone(),
        value: name.to_owned(),
        reason,
    };
    settings.push(e);
    None
}

/// Takes the header converter: `None` if `header.converter` is not set.
pub(crate) fn take_header_converter(settings: &mut Settings) -> Option<HeaderConverter> {
    const KEY: &str = "header.converter";
    let class = settings.take(KEY);
    let subkeys = settings.take_prefixed("header.converter.");
    let Some(class) = class else {
        for e in &subkeys {
            debug!(source = settings.source(), key = %e.key, "ignored: `header.converter` is not set here");
        }
        return None;
    };
    let name = class.value.trim();
    if SIMPLE_HEADER_CONVERTER_NAMES.contains(&name) {
        for e in &subkeys {
            debug!(source = settings.source(), key = %e.key, "ignored: SimpleHeaderConverter has no settings");
        }
        Some(HeaderConverter::Simple)
    } else if JSON_CONVERTER_NAMES.contains(&name) {
        let schemas_enable = take_json_props(settings, KEY, &subkeys).schemas_enable;
        Some(HeaderConverter::Json { schemas_enable })
    } else {
        let e = ConfigError::UnsupportedValue {
            location: settings.location(&class),
            key: KEY.to_owned(),
            value: name.to_owned(),
            reason: format!(
                "pgseam supports only {SIMPLE_HEADER_CONVERTER_CLASS} and {JSON_CONVERTER_CLASS} as header converters"
            ),
        };
        settings.push(e);
        None
    }
}

/// Validates JsonConverter sub-keys (`<class_key>.<prop>`) and returns the implemented ones.
fn take_json_props(settings: &mut Settings, class_key: &str, subkeys: &[RawEntry]) -> JsonProps {
    let mut props = JsonProps::default();
    let prefix = format!("{class_key}.");
    for e in subkeys {
        let prop = &e.key[prefix.len()..];
        if prop == "schemas.enable" {
            match parse_bool(&e.value) {
                Some(b) => props.schemas_enable = b,
                None => settings.invalid(e, "`true` or `false`"),
            }
        } else if prop == "replace.null.with.default" {
            match parse_bool(&e.value) {
                Some(b) => props.replace_null_with_default = b,
                None => settings.invalid(e, "`true` or `false`"),
            }
        } else if prop == "decimal.format" {
            let v = e.value.trim();
            if v.eq_ignore_ascii_case("BASE64") {
                props.decimal_format = DecimalFormat::Base64;
            } else if v.eq_ignore_ascii_case("NUMERIC") {
                props.decimal_format = DecimalFormat::Numeric;
            } else {
                settings.invalid(e, "`BASE64` or `NUMERIC`");
            }
        } else if prop == "plugin.version" {
            debug!(source = settings.source(), key = %e.key, "ignored: pgseam has one built-in version of each converter");
        } else if IGNORED_JSON_CONVERTER_PROPS.contains(&prop) {
            if e.value.trim().parse::<u32>().is_err() {
                settings.invalid(e, "a non-negative integer");
            }
            debug!(source = settings.source(), key = %e.key, "ignored: a JsonConverter cache setting");
        } else if IGNORED_REGISTRY_PREFIXES
            .iter()
            .any(|p| prop.starts_with(p))
        {
            debug!(source = settings.source(), key = %e.key, "ignored: the JsonConverter does not use a schema registry");
        } else if let Some(k) = catalog()
            .json_converter_key(prop)
            .filter(|_| !INTERNAL_JSON_CONVERTER_PROPS.contains(&prop))
        {
            if !k.is_default(&e.value) {
                let err = ConfigError::Unsupported {
                    location: settings.location(e),
                    key: e.key.clone(),
                    value: e.value.trim().to_owned(),
                    default: k.default.map(str::to_owned),
                    owner: Owner::KafkaConnect,
                };
                settings.push(err);
            }
        } else {
            let candidates: Vec<String> = catalog()
                .json_converter
                .iter()
                .map(|k| k.name)
                .filter(|n| !INTERNAL_JSON_CONVERTER_PROPS.contains(n))
                .chain(["plugin.version"])
                .map(|n| format!("{prefix}{n}"))
                .collect();
            let err = ConfigError::UnknownKey {
                location: settings.location(e),
                scope: settings.scope(),
                key: e.key.clone(),
                suggestion: suggest(&e.key, candidates.iter().map(String::as_str)),
            };
            settings.push(err);
        }
    }
    props
}
