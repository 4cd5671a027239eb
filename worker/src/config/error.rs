//! Configuration errors: one variant per kind of mistake, each naming the file (and line when
//! known), the key and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// Where a setting came from: a file (with the line of the key when known) or a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// A file path, or a description such as `POST /connectors`.
    pub source: String,
    /// 1-based line of the key in a properties file; `None` for JSON input and maps.
    pub line: Option<usize>,
}

impl Location {
    pub(crate) fn new(source: &str, line: Option<usize>) -> Self {
        Self {
            source: source.to_owned(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.source),
            None => f.write_str(&self.source),
        }
    }
}

/// Which configuration a key was found in (or belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The Kafka Connect worker properties (`worker.properties`).
    Worker,
    /// A connector's configuration (`connector.properties` / `.json`).
    Connector,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Worker => "worker",
            Scope::Connector => "connector",
        })
    }
}

/// Whose property an unsupported key is: it changes the wording users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A Debezium PostgreSQL connector property (listed in Debezium's config definition).
    Debezium,
    /// A Kafka Connect framework property (connector- or converter-level).
    KafkaConnect,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Owner::Debezium => "Debezium",
            Owner::KafkaConnect => "Kafka Connect",
        })
    }
}

/// One configuration problem. Every message names what is wrong and how to fix it.
///
/// Values of secret keys (`*password`, `*secret`, `sasl.jaas.config`, …) are shown as `****`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid Java properties or JSON.
    #[error("{location}: {message}")]
    Syntax {
        /// File and line of the problem.
        location: Location,
        /// What is malformed.
        message: String,
    },

    /// A key that neither pgseam, Debezium nor Kafka Connect knows (usually a typo).
    #[error(
        "{location}: unknown {scope} property `{key}`{}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    UnknownKey {
        /// Where the key is.
        location: Location,
        /// Worker or connector configuration.
        scope: Scope,
        /// The key as written.
        key: String,
        /// The closest known key, if one is close enough.
        suggestion: Option<String>,
    },

    /// A key that is valid, but in the other file (a connector key in the worker file or the
    /// reverse).
    #[error(
        "{location}: `{key}` is a {belongs_to} property, not a {found_in} property; move it to the {belongs_to} configuration"
    )]
    WrongScope {
        /// Where the key is.
        location: Location,
        /// The key.
        key: String,
        /// The configuration it was found in.
        found_in: Scope,
        /// The configuration it belongs to.
        belongs_to: Scope,
    },

    /// A required key is absent.
    #[error("{location}: missing required {scope} property `{key}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingRequired {
        /// The file (no line: the key is not there).
        location: Location,
        /// Worker or connector configuration.
        scope: Scope,
        /// The missing key.
        key: String,
        /// What the key is for or how to set it.
        hint: Option<String>,
    },

    /// A value that does not parse or is out of range.
    #[error("{location}: invalid value `{value}` for `{key}`: expected {expected}")]
    InvalidValue {
        /// Where the key is.
        location: Location,
        /// The key.
        key: String,
        /// The value as written (`****` for secrets).
        value: String,
        /// The accepted values or form.
        expected: String,
    },

    /// A Debezium or Kafka Connect property pgseam does not implement, set to a non-default
    /// value. At its default it is accepted, since the behaviour is then the same.
    #[error(
        "{location}: `{key}` is a {owner} property pgseam does not support yet (value `{value}`); {}",
        match default {
            Some(d) => format!("remove it or keep the default `{d}`"),
            None => "remove it (it has no default)".to_owned(),
        }
    )]
    Unsupported {
        /// Where the key is.
        location: Location,
        /// The key.
        key: String,
        /// The value as written (`****` for secrets).
        value: String,
        /// The owner's default; `None` when the property is unset by default.
        default: Option<String>,
        /// Debezium or Kafka Connect.
        owner: Owner,
    },

    /// A valid value of a supported key that pgseam cannot honour (yet): `plugin.name=decoderbufs`,
    /// `snapshot.mode=always`, an Avro converter, SMTs, …
    #[error("{location}: `{key}={value}` is not supported: {reason}")]
    UnsupportedValue {
        /// Where the key is.
        location: Location,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why, and what to set instead.
        reason: String,
    },

    /// A Debezium 1.x key (or value) that Debezium 2.0 or later removed or renamed. Debezium
    /// ignores such a key today, which silently changes behaviour; pgseam names the
    /// replacement instead.
    #[error(
        "{location}: `{key}{}` was removed in Debezium {removed_in}; {instead}",
        value.as_ref().map(|v| format!("={v}")).unwrap_or_default()
    )]
    Removed {
        /// Where the key is.
        location: Location,
        /// The key as written.
        key: String,
        /// For a removed value of a current key (`snapshot.mode=exported`), the value (boxed to
        /// keep the error small).
        value: Option<Box<str>>,
        /// The Debezium version that removed it.
        removed_in: &'static str,
        /// What to do instead.
        instead: String,
    },

    /// Keys that cannot be used together.
    #[error("{location}: {message}")]
    Conflict {
        /// The file (and line of the later key, when known).
        location: Location,
        /// The keys involved.
        keys: Vec<String>,
        /// What conflicts and how to resolve it.
        message: String,
    },

    /// Two connector files declare the same connector name.
    #[error("connector name `{name}` is used by both {first} and {second}; connector names must be unique")]
    DuplicateConnector {
        /// The name.
        name: String,
        /// The first file declaring it.
        first: String,
        /// The second file declaring it.
        second: String,
    },
}

/// All problems found in a configuration, reported together so that one run shows every
/// mistake. Its `Display` is a bulleted list.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there is no problem (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
