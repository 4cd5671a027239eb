//! A configuration being validated: typed keys are taken out one by one, problems are
//! collected (never returned early), and whatever is left is classified at the end.

use std::str::FromStr;

use super::error::{ConfigError, Location, Scope};
use super::secret::shown_value;
use super::source::{RawConfig, RawEntry};

pub(crate) struct Settings {
    source: String,
    scope: Scope,
    remaining: Vec<Option<RawEntry>>,
    pub(crate) errors: Vec<ConfigError>,
}

impl Settings {
    pub(crate) fn new(raw: RawConfig, scope: Scope) -> Self {
        Self {
            source: raw.source,
            scope,
            remaining: raw.entries.into_iter().map(Some).collect(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn location(&self, entry: &RawEntry) -> Location {
        Location::new(&self.source, entry.line)
    }

    pub(crate) fn file_location(&self) -> Location {
        Location::new(&self.source, None)
    }

    /// The entry for `key`, if not taken yet (a copy; it stays).
    pub(crate) fn peek(&self, key: &str) -> Option<RawEntry> {
        self.remaining
            .iter()
            .flatten()
            .find(|e| e.key == key)
            .cloned()
    }

    /// Removes and returns the entry for `key`.
    pub(crate) fn take(&mut self, key: &str) -> Option<RawEntry> {
        self.remaining
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|e| e.key == key))
            .and_then(Option::take)
    }

    /// Removes and returns every entry whose key starts with `prefix`, in file order.
    pub(crate) fn take_prefixed(&mut self, prefix: &str) -> Vec<RawEntry> {
        self.remaining
            .iter_mut()
            .filter(|e| e.as_ref().is_some_and(|e| e.key.starts_with(prefix)))
            .filter_map(Option::take)
            .collect()
    }

    /// Removes and returns all entries not taken yet, in file order.
    pub(crate) fn take_rest(&mut self) -> Vec<RawEntry> {
        self.remaining.iter_mut().filter_map(Option::take).collect()
    }

    /// True if `key` is present (and not taken yet).
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.remaining
            .iter()
            .any(|e| e.as_ref().is_some_and(|e| e.key == key))
    }

    pub(crate) fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    pub(crate) fn invalid(&mut self, entry: &RawEntry, expected: impl Into<String>) {
        let e = ConfigError::InvalidValue {
            location: self.location(entry),
            key: entry.key.clone(),
            value: shown_value(&entry.key, &entry.value),
            expected: expected.into(),
        };
        self.errors.push(e);
    }

    pub(crate) fn missing(&mut self, key: &str, hint: Option<&str>) {
        let e = ConfigError::MissingRequired {
            location: self.file_location(),
            scope: self.scope,
            key: key.to_owned(),
            hint: hint.map(str::to_owned),
        };
        self.errors.push(e);
    }

    /// A required, non-empty, trimmed string.
    pub(crate) fn required_string(&mut self, key: &str, hint: Option<&str>) -> Option<String> {
        match self.take(key) {
            Some(e) if !e.value.trim().is_empty() => Some(e.value.trim().to_owned()),
            Some(e) => {
                self.invalid(&e, "a non-empty value");
                None
            }
            None => {
                self.missing(key, hint);
                None
            }
        }
    }

    /// A boolean (`true`/`false`, any case, as Kafka's `ConfigDef` parses it).
    pub(crate) fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(e) = self.take(key) else {
            return default;
        };
        match parse_bool(&e.value) {
            Some(b) => b,
            None => {
                self.invalid(&e, "`true` or `false`");
                default
            }
        }
    }

    /// An integer within `min..=max`.
    pub(crate) fn int<T>(&mut self, key: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(e) = self.take(key) else {
            return default;
        };
        self.parse_int_entry(&e, min, max).unwrap_or(default)
    }

    pub(crate) fn parse_int_entry<T>(&mut self, e: &RawEntry, min: T, max: T) -> Option<T>
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        match e.value.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => Some(v),
            _ => {
                self.invalid(e, format!("an integer from {min} to {max}"));
                None
            }
        }
    }

    /// One of `choices` (case-insensitive, as Debezium parses its enums).
    pub(crate) fn choice<T: Copy>(&mut self, key: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(e) = self.take(key) else {
            return default;
        };
        let v = e.value.trim();
        match choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(v))
        {
            Some((_, t)) => *t,
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.invalid(&e, format!("one of {}", names.join(", ")));
                default
            }
        }
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
