//! Kafka Connect config providers (KIP-297): `${provider:path:key}` references in worker and
//! connector values, resolved when the configuration is loaded, so that secrets stay in files
//! or environment variables (Kubernetes secrets mounted as files or env).
//!
//! ```text
//! config.providers=file,env
//! config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
//! config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
//!
//! database.password=${file:/etc/secrets/db.properties:password}
//! database.user=${env:PG_USER}
//! ```
//!
//! Supported classes: `FileConfigProvider` (`${file:<properties file>:<key>}`),
//! `EnvVarConfigProvider` (`${env:<NAME>}`) and `DirectoryConfigProvider`
//! (`${dir:<directory>:<file name>}`, the file's content). References are found with Connect's
//! `ConfigTransformer` pattern `\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`; a value may hold several.
//!
//! Differences from Kafka Connect, on purpose:
//! - Without `config.providers` in the worker file, the aliases `file` and `env` are available
//!   (an extension; Connect would leave the references unresolved and the connector would fail
//!   later with a wrong password).
//! - A reference Connect would leave as it is — an alias that is not configured, a missing file,
//!   key or variable — is an error naming the key and the reference, never a literal
//!   `${…}` password sent to the server.
//!
//! The REST API shows and stores values as written (references unresolved), as Connect does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use super::error::{ConfigError, Location};
use super::source::{parse_properties_in, RawConfig};

const FILE_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_PROVIDER_CLASS: &str =
    "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// One provider implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `FileConfigProvider`: a key of a Java properties file.
    File,
    /// `EnvVarConfigProvider`: an environment variable.
    Env,
    /// `DirectoryConfigProvider`: the content of a file in a directory.
    Directory,
}

/// The providers a worker declares: alias → implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProviders {
    aliases: BTreeMap<String, ProviderKind>,
}

impl Default for ConfigProviders {
    /// `file` and `env`, pgseam's default when `config.providers` is not set.
    fn default() -> Self {
        ConfigProviders {
            aliases: BTreeMap::from([
                ("file".to_owned(), ProviderKind::File),
                ("env".to_owned(), ProviderKind::Env),
            ]),
        }
    }
}

fn reference_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").expect("Connect's variable pattern")
    })
}

impl ConfigProviders {
    /// Reads `config.providers` and `config.providers.<alias>.class` from a worker
    /// configuration; problems are pushed to `errors`.
    pub(crate) fn from_worker(raw: &RawConfig, errors: &mut Vec<ConfigError>) -> Self {
        let find = |key: &str| raw.entries.iter().find(|e| e.key == key);
        let Some(list) = find("config.providers") else {
            return ConfigProviders::default();
        };
        let mut aliases = BTreeMap::new();
        for alias in list
            .value
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let class_key = format!("config.providers.{alias}.class");
            let Some(class) = find(&class_key) else {
                errors.push(ConfigError::MissingRequired {
                    location: Location::new(&raw.source, None),
                    scope: super::Scope::Worker,
                    key: class_key,
                    hint: Some(format!("the class of config provider `{alias}`")),
                });
                continue;
            };
            let kind = match class.value.trim() {
                FILE_PROVIDER_CLASS => ProviderKind::File,
                ENV_PROVIDER_CLASS => ProviderKind::Env,
                DIRECTORY_PROVIDER_CLASS => ProviderKind::Directory,
                other => {
                    errors.push(ConfigError::UnsupportedValue {
                        location: Location::new(&raw.source, class.line),
                        key: class_key.clone(),
                        value: other.to_owned(),
                        reason: format!(
                            "pgseam supports the config providers {FILE_PROVIDER_CLASS}, \
                             {ENV_PROVIDER_CLASS} and {DIRECTORY_PROVIDER_CLASS}"
                        ),
                    });
                    continue;
                }
            };
            aliases.insert(alias.to_owned(), kind);
        }
        ConfigProviders { aliases }
    }

    /// True if `value` holds a `${…}` reference.
    pub fn has_reference(value: &str) -> bool {
        reference_pattern().is_match(value)
    }

    /// Resolves every reference in `value` (of `key`, for error messages).
    pub fn resolve_value(&self, key: &str, value: &str) -> Result<String, String> {
        let pattern = reference_pattern();
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        for captures in pattern.captures_iter(value) {
            let whole = captures.get(0).expect("group 0 always matches");
            out.push_str(&value[last..whole.start()]);
            last = whole.end();
            let alias = captures.get(1).map_or("", |m| m.as_str());
            let path = captures.get(3).map(|m| m.as_str());
            let name = captures.get(4).map_or("", |m| m.as_str());
            let reference = whole.as_str();
            let kind = self.aliases.get(alias).ok_or_else(|| {
                format!(
                    "`{key}` refers to config provider `{alias}` ({reference}), which the worker does not configure (config.providers = {})",
                    self.aliases.keys().cloned().collect::<Vec<_>>().join(",")
                )
            })?;
            let resolved = match kind {
                ProviderKind::Env => {
                    if path.is_some_and(|p| !p.is_empty()) {
                        return Err(format!(
                            "`{key}`: {reference}: the env provider takes no path; write ${{{alias}:NAME}}"
                        ));
                    }
                    std::env::var(name).map_err(|_| {
                        format!("`{key}`: {reference}: environment variable `{name}` is not set")
                    })?
                }
                ProviderKind::File => {
                    let path = path.unwrap_or_default();
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("`{key}`: {reference}: cannot read `{path}`: {e}"))?;
                    let entries = parse_properties_in(&text, path).map_err(|e| {
                        format!("`{key}`: {reference}: `{path}` is not a properties file: {e}")
                    })?;
                    entries
                        .entries
                        .into_iter()
                        .find(|e| e.key == name)
                        .map(|e| e.value)
                        .ok_or_else(|| {
                            format!("`{key}`: {reference}: `{path}` has no key `{name}`")
                        })?
                }
                ProviderKind::Directory => {
                    let directory = Path::new(path.unwrap_or_default());
                    let file = directory.join(name);
                    if name.contains('/') || name == ".." {
                        return Err(format!(
                            "`{key}`: {reference}: `{name}` must be a file name inside the directory"
                        ));
                    }
                    std::fs::read_to_string(&file).map_err(|e| {
                        format!(
                            "`{key}`: {reference}: cannot read `{}`: {e}",
                            file.display()
                        )
                    })?
                }
            };
            out.push_str(&resolved);
        }
        out.push_str(&value[last..]);
        Ok(out)
    }

    /// Resolves every value of `raw` in place (the `config.providers*` keys themselves are
    /// left alone); problems are pushed to `errors`.
    pub(crate) fn resolve_raw(&self, raw: &mut RawConfig, errors: &mut Vec<ConfigError>) {
        let source = raw.source.clone();
        for entry in &mut raw.entries {
            if entry.key.starts_with("config.providers") || !Self::has_reference(&entry.value) {
                continue;
            }
            match self.resolve_value(&entry.key, &entry.value) {
                Ok(value) => entry.value = value,
                Err(message) => errors.push(ConfigError::Syntax {
                    location: Location::new(&source, entry.line),
                    message,
                }),
            }
        }
    }

    /// Resolves a connector configuration given as pairs (REST bodies, stored configs).
    pub fn resolve_pairs(
        &self,
        pairs: &BTreeMap<String, String>,
        source: &str,
    ) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, value) in pairs {
            if !Self::has_reference(value) {
                out.insert(key.clone(), value.clone());
                continue;
            }
            match self.resolve_value(key, value) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(message) => errors.push(ConfigError::Syntax {
                    location: Location::new(source, None),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_env_and_directory_references() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.properties");
        std::fs::write(&file, "password = s3cr:et\nuser=alice\n").unwrap();
        std::fs::write(dir.path().join("token"), "abc").unwrap();
        std::env::set_var("PGSEAM_PROVIDER_TEST_VAR", "from-env");
        let mut raw = RawConfig::new("worker.properties");
        raw.push("config.providers".into(), "file,env,dir".into(), Some(1));
        raw.push(
            "config.providers.file.class".into(),
            FILE_PROVIDER_CLASS.into(),
            Some(2),
        );
        raw.push(
            "config.providers.env.class".into(),
            ENV_PROVIDER_CLASS.into(),
            Some(3),
        );
        raw.push(
            "config.providers.dir.class".into(),
            DIRECTORY_PROVIDER_CLASS.into(),
            Some(4),
        );
        let mut errors = Vec::new();
        let providers = ConfigProviders::from_worker(&raw, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let f = file.display();
        assert_eq!(
            providers
                .resolve_value("k", &format!("${{file:{f}:password}}"))
                .unwrap(),
            "s3cr:et"
        );
        assert_eq!(
            providers
                .resolve_value(
                    "k",
                    &format!("u=${{file:{f}:user}};e=${{env:PGSEAM_PROVIDER_TEST_VAR}}")
                )
                .unwrap(),
            "u=alice;e=from-env"
        );
        assert_eq!(
            providers
                .resolve_value("k", &format!("${{dir:{}:token}}", dir.path().display()))
                .unwrap(),
            "abc"
        );
        let err = providers
            .resolve_value("database.password", &format!("${{file:{f}:nope}}"))
            .unwrap_err();
        assert!(err.contains("has no key `nope`"), "{err}");
        let err = providers
            .resolve_value("database.password", "${vault:secret/db:pw}")
            .unwrap_err();
        assert!(err.contains("config provider `vault`"), "{err}");
        let err = providers
            .resolve_value("x", "${env:PGSEAM_PROVIDER_TEST_UNSET}")
            .unwrap_err();
        assert!(err.contains("is not set"), "{err}");
        assert_eq!(
            providers.resolve_value("x", "plain $ {x}").unwrap(),
            "plain $ {x}"
        );
    }

    #[test]
    fn default_providers_and_bad_class() {
        let providers = ConfigProviders::default();
        std::env::set_var("PGSEAM_PROVIDER_TEST_DEFAULT", "v");
        assert_eq!(
            providers
                .resolve_value("k", "${env:PGSEAM_PROVIDER_TEST_DEFAULT}")
                .unwrap(),
            "v"
        );
        let mut raw = RawConfig::new("worker.properties");
        raw.push("config.providers".into(), "vault,file".into(), Some(1));
        raw.push(
            "config.providers.vault.class".into(),
            "com.example.VaultProvider".into(),
            Some(2),
        );
        let mut errors = Vec::new();
        ConfigProviders::from_worker(&raw, &mut errors);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("com.example.VaultProvider"), "{text:?}");
        assert!(text[1].contains("config.providers.file.class"), "{text:?}");
    }
}
