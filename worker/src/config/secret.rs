//! Secrets: values that must never reach a log line, a `Debug` dump or an error message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// What secrets look like when shown.
pub(crate) const REDACTED: &str = "****";

/// Keys whose values are secret. This is Debezium's `custom.sanitize.pattern` default (the keys
/// Debezium masks in its own logs), plus Kafka's other PASSWORD-typed client keys that do not
/// end in `password`.
const SENSITIVE_KEY_PATTERN: &str = r".*secret$|.*password$|.*sasl\.jaas\.config$|.*basic\.auth\.user\.info|.*registry\.auth\.client-secret|.*credentials\.json$|.*connectionstring$|.*connection\.string$|.*ssl\.keystore\.key$";

/// True if values of `key` must be redacted.
pub(crate) fn is_sensitive_key(key: &str) -> bool {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            Regex::new(&format!("(?i)^(?:{SENSITIVE_KEY_PATTERN})$"))
                .expect("SENSITIVE_KEY_PATTERN is a valid regex")
        })
        .is_match(key)
}

/// `value`, or `****` if `key` is secret; for error messages.
pub(crate) fn shown_value(key: &str, value: &str) -> String {
    if is_sensitive_key(key) {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// A secret string (a password). `Debug` prints `****`; read it with [`Secret::expose`] only
/// where it is handed to the system that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A string map of properties (client overrides, a connector's original configuration) whose
/// `Debug` output redacts secret values (`producer.sasl.jaas.config`, `database.password`, …).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties(BTreeMap<String, String>);

impl Properties {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Entries in key order. Values are not redacted: do not log them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying map. Values are not redacted: do not log them.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The underlying map.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    pub(crate) fn insert(&mut self, key: String, value: String) {
        self.0.insert(key, value);
    }
}

impl From<BTreeMap<String, String>> for Properties {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, if is_sensitive_key(k) { REDACTED } else { v })),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "****");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn sensitive_keys() {
        for k in [
            "database.password",
            "database.sslpassword",
            "sasl.jaas.config",
            "sasl.jaas.config",
            "ssl.key.password",
            "SSL.TRUSTSTORE.PASSWORD",
            "basic.auth.user.info",
            "sasl.oauthbearer.client.secret",
            "ssl.keystore.key",
        ] {
            assert!(is_sensitive_key(k), "{k}");
        }
        for k in ["database.user", "bootstrap.servers", "password.policy"] {
            assert!(!is_sensitive_key(k), "{k}");
        }
    }

    #[test]
    fn properties_debug_redacts_secret_values() {
        let mut p = Properties::default();
        p.insert(
            "sasl.jaas.config".into(),
            "user=\"a\" password=\"b\"".into(),
        );
        p.insert("acks".into(), "all".into());
        let dbg = format!("{p:?}");
        assert!(dbg.contains("\"acks\": \"all\""), "{dbg}");
        assert!(dbg.contains("****"), "{dbg}");
        assert!(!dbg.contains("password=\\\"b"), "{dbg}");
    }
}
