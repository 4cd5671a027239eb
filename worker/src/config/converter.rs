//! Kafka Connect converter settings (`key.converter`, `value.converter`, `header.converter` and
//! their `.<property>` sub-keys), shared by the worker and connector configurations.

use tracing::{info, warn};

use super::catalog::{catalog, suggest};
use super::error::{ConfigError, Owner};
use super::secret::Secret;
use super::settings::{parse_bool, Settings};
use super::source::RawEntry;

/// Kafka Connect's JsonConverter.
pub const JSON_CONVERTER_CLASS: &str = "org.apache.kafka.connect.json.JsonConverter";
/// Confluent's AvroConverter (Schema Registry wire format).
pub const AVRO_CONVERTER_CLASS: &str = "io.confluent.connect.avro.AvroConverter";
/// The only subject naming strategy implemented (Confluent's default).
pub const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";
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
const AVRO_CONVERTER_NAMES: [&str; 3] = [AVRO_CONVERTER_CLASS, "AvroConverter", "Avro"];
/// AvroConverter properties accepted only at their default: (property, default, why).
const AVRO_FIXED_PROPS: &[(&str, &str)] = &[
    ("auto.register.schemas", "true"),
    ("use.latest.version", "false"),
    ("normalize.schemas", "false"),
    ("connect.meta.data", "true"),
    ("enhanced.avro.schema.support", "false"),
    ("scrub.invalid.names", "false"),
    ("generalized.sum.type.support", "false"),
    ("discard.type.doc.default", "false"),
    ("allow.optional.map.keys", "false"),
    ("flatten.singleton.unions", "true"),
    ("avro.remove.java.properties", "false"),
];
/// AvroConverter properties that only tune caches or retries: any value is accepted.
const IGNORED_AVRO_PROPS: &[&str] = &[
    "schemas.cache.config",
    "schemas.cache.size",
    "max.schemas.per.subject",
    "latest.compatibility.strict",
    "schema.registry.request.timeout.ms",
];
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
    /// `io.confluent.connect.avro.AvroConverter`.
    Avro,
}

/// The AvroConverter's Schema Registry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `schema.registry.url` (one URL or a comma-separated list).
    pub url: String,
    /// `basic.auth.credentials.source` + `basic.auth.user.info` (or the URL's user info):
    /// user and password.
    pub basic_auth: Option<(String, Secret)>,
}

/// A key or value converter and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConverterSettings {
    /// Which converter.
    pub kind: ConverterKind,
    /// `*.converter.schemas.enable`: wrap each record in `{"schema": …, "payload": …}`.
    pub schemas_enable: bool,
    /// `*.converter.decimal.format`: `BASE64` or `NUMERIC` (case-insensitive).
    pub decimal_format: DecimalFormat,
    /// `*.converter.replace.null.with.default` (JsonConverter), or the negation of
    /// `*.converter.ignore.default.for.nullables` (AvroConverter).
    pub replace_null_with_default: bool,
    /// The Schema Registry (AvroConverter only).
    pub registry: Option<RegistrySettings>,
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
            registry: None,
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
    match kind {
        ConverterKind::Json => {
            let props = take_json_props(settings, class_key, &subkeys);
            Some(ConverterSettings::json(props))
        }
        ConverterKind::Avro => take_avro_props(settings, class_key, &subkeys),
    }
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
    if AVRO_CONVERTER_NAMES.contains(&name) {
        return Some(ConverterKind::Avro);
    }
    let reason = format!(
        "pgseam writes {JSON_CONVERTER_CLASS} and {AVRO_CONVERTER_CLASS}; set `{}` to one of them",
        class.key
    );
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
            warn!(source = settings.source(), key = %e.key, "ignored: `header.converter` is not set here");
        }
        return None;
    };
    let name = class.value.trim();
    if SIMPLE_HEADER_CONVERTER_NAMES.contains(&name) {
        for e in &subkeys {
            warn!(source = settings.source(), key = %e.key, "ignored: SimpleHeaderConverter has no settings");
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
            warn!(source = settings.source(), key = %e.key, "ignored: pgseam has one built-in version of each converter");
        } else if IGNORED_JSON_CONVERTER_PROPS.contains(&prop) {
            if e.value.trim().parse::<u32>().is_err() {
                settings.invalid(e, "a non-negative integer");
            }
            warn!(source = settings.source(), key = %e.key, "ignored: a JsonConverter cache setting");
        } else if IGNORED_REGISTRY_PREFIXES
            .iter()
            .any(|p| prop.starts_with(p))
        {
            warn!(source = settings.source(), key = %e.key, "ignored: the JsonConverter does not use a schema registry");
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

/// Validates AvroConverter sub-keys (`<class_key>.<prop>`): `schema.registry.url` is required.
fn take_avro_props(
    settings: &mut Settings,
    class_key: &str,
    subkeys: &[RawEntry],
) -> Option<ConverterSettings> {
    let prefix = format!("{class_key}.");
    let mut url = None;
    let mut source = "URL".to_owned();
    let mut user_info: Option<&RawEntry> = None;
    let mut ignore_default_for_nullables = false;
    for e in subkeys {
        let prop = &e.key[prefix.len()..];
        match prop {
            "schema.registry.url" => url = Some(e.value.trim().to_owned()),
            "basic.auth.credentials.source" => {
                let v = e.value.trim().to_ascii_uppercase();
                if v == "URL" || v == "USER_INFO" {
                    source = v;
                } else {
                    settings.invalid(e, "`URL` or `USER_INFO` (SASL_INHERIT is not supported)");
                }
            }
            "basic.auth.user.info" => user_info = Some(e),
            "ignore.default.for.nullables" => match parse_bool(&e.value) {
                Some(b) => ignore_default_for_nullables = b,
                None => settings.invalid(e, "`true` or `false`"),
            },
            "key.subject.name.strategy" | "value.subject.name.strategy" => {
                let v = e.value.trim();
                if v != TOPIC_NAME_STRATEGY && v != "TopicNameStrategy" {
                    let err = ConfigError::UnsupportedValue {
                        location: settings.location(e),
                        key: e.key.clone(),
                        value: v.to_owned(),
                        reason: format!("pgseam names subjects with {TOPIC_NAME_STRATEGY} only"),
                    };
                    settings.push(err);
                }
            }
            "plugin.version" => {
                warn!(source = settings.source(), key = %e.key, "ignored: pgseam has one built-in version of each converter");
            }
            p if IGNORED_AVRO_PROPS.contains(&p) => {
                warn!(source = settings.source(), key = %e.key, "ignored: an AvroConverter cache or retry setting");
            }
            p => match AVRO_FIXED_PROPS.iter().find(|(k, _)| *k == p) {
                Some((_, default)) => {
                    if !e.value.trim().eq_ignore_ascii_case(default) {
                        let err = ConfigError::UnsupportedValue {
                            location: settings.location(e),
                            key: e.key.clone(),
                            value: e.value.trim().to_owned(),
                            reason: format!("pgseam's AvroConverter implements only `{default}`"),
                        };
                        settings.push(err);
                    }
                }
                None => {
                    let candidates: Vec<String> = [
                        "schema.registry.url",
                        "basic.auth.credentials.source",
                        "basic.auth.user.info",
                        "ignore.default.for.nullables",
                        "key.subject.name.strategy",
                        "value.subject.name.strategy",
                    ]
                    .iter()
                    .copied()
                    .chain(AVRO_FIXED_PROPS.iter().map(|(k, _)| *k))
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
            },
        }
    }
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        settings.missing(
            &format!("{prefix}schema.registry.url"),
            Some("the AvroConverter registers its schemas there, e.g. http://schema-registry:8081"),
        );
        return None;
    };
    let basic_auth = match source.as_str() {
        "USER_INFO" => match user_info {
            Some(e) => match e.value.split_once(':') {
                Some((u, p)) => Some((u.to_owned(), Secret::new(p))),
                None => {
                    settings.invalid(e, "`user:password`");
                    None
                }
            },
            None => {
                settings.missing(
                    &format!("{prefix}basic.auth.user.info"),
                    Some("basic.auth.credentials.source=USER_INFO needs `user:password`"),
                );
                None
            }
        },
        // URL: credentials from the first URL's user info, if any.
        _ => url_user_info(&url),
    };
    let url = strip_user_info(&url);
    Some(ConverterSettings {
        kind: ConverterKind::Avro,
        schemas_enable: true,
        decimal_format: DEFAULT_DECIMAL_FORMAT,
        replace_null_with_default: !ignore_default_for_nullables,
        registry: Some(RegistrySettings { url, basic_auth }),
    })
}

/// `http://user:pass@host:port` → (user, pass).
fn url_user_info(urls: &str) -> Option<(String, Secret)> {
    let first = urls.split(',').next()?.trim();
    let rest = first.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (info, _) = authority.rsplit_once('@')?;
    let (u, p) = info.split_once(':')?;
    Some((u.to_owned(), Secret::new(p)))
}

/// The URLs without their user info (it must not reach logs or request lines).
fn strip_user_info(urls: &str) -> String {
    urls.split(',')
        .map(|u| {
            let u = u.trim();
            match u.split_once("://") {
                Some((scheme, rest)) => match rest.split_once('@') {
                    Some((info, host)) if !info.contains('/') => format!("{scheme}://{host}"),
                    _ => u.to_owned(),
                },
                None => u.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
