//! The Confluent Schema Registry: registering schemas, and the wire format that names them.
//!
//! **Wire format** (Confluent's `AbstractKafkaSchemaSerDe`): each Avro key or value is
//!
//! ```text
//! +------+---------------------+------------------------------+
//! | 0x00 | schema id (u32, BE) | Avro binary datum            |
//! +------+---------------------+------------------------------+
//! ```
//!
//! **Subjects** follow `TopicNameStrategy`: `<topic>-key` and `<topic>-value`.
//!
//! **Registration** (`POST /subjects/{subject}/versions` with `{"schema": "<Avro JSON>"}`,
//! answered with `{"id": N}`) is idempotent on the registry side: the same schema under the
//! same subject gets the same id. The converter registers each table version's schemas once,
//! on first use, and again after a schema change (the registry then adds a version if the
//! schema differs, subject to its compatibility setting).
//!
//! **Why a blocking client here.** `converters` must not depend on tokio (DESIGN.md §5), so
//! the client is `ureq`, a small blocking HTTP client. It runs only when a table's schema is
//! first seen or changes — never per event — and the pipeline runs those conversions on a
//! blocking thread (`Converter::needs_registry`), so the async hot path never waits on HTTP.
//! The `schema_registry_converter` crate was not used: its clients pull in reqwest and tokio.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Confluent's magic byte, first in every framed key and value.
pub const MAGIC_BYTE: u8 = 0;

/// How long one registry request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The registry's media type (what Confluent's `RestService` sends).
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A schema could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No registry URL answered.
    #[error("schema registry {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The registry refused the schema (incompatible, invalid, unauthorised, …).
    #[error("schema registry {url} refused subject {subject:?}: HTTP {status}: {message}")]
    Refused {
        url: String,
        subject: String,
        status: u16,
        message: String,
    },
    /// The registry's answer is not `{"id": N}`.
    #[error("schema registry {url}: unexpected answer for subject {subject:?}: {body}")]
    BadAnswer {
        url: String,
        subject: String,
        body: String,
    },
}

/// Where schemas are registered.
pub trait SchemaRegistry: Send + std::fmt::Debug {
    /// Registers `schema` (Avro schema JSON) under `subject`; returns its global id.
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError>;
}

/// `basic.auth.*` credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A Confluent-API Schema Registry over HTTP(S).
#[derive(Clone)]
pub struct HttpSchemaRegistry {
    urls: Vec<String>,
    auth: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpSchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSchemaRegistry")
            .field("urls", &self.urls)
            .field("auth", &self.auth.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl HttpSchemaRegistry {
    /// A client for `schema.registry.url` (one URL or several, comma-separated: they are tried
    /// in order when one cannot be reached, as Confluent's `RestService` does).
    pub fn new(urls: &str, auth: Option<BasicAuth>) -> Self {
        let urls = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        HttpSchemaRegistry {
            urls,
            auth: auth
                .map(|a| format!("Basic {}", B64.encode(format!("{}:{}", a.user, a.password)))),
            agent,
        }
    }
}

impl SchemaRegistry for HttpSchemaRegistry {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let mut last = RegistryError::Unreachable {
            url: String::new(),
            reason: "no schema.registry.url".into(),
        };
        for url in &self.urls {
            let endpoint = format!("{url}/subjects/{}/versions", encode_path(subject));
            let mut request = self
                .agent
                .post(&endpoint)
                .header("Content-Type", CONTENT_TYPE)
                .header("Accept", CONTENT_TYPE);
            if let Some(auth) = &self.auth {
                request = request.header("Authorization", auth);
            }
            let mut response = match request.send(body.as_str()) {
                Ok(r) => r,
                Err(e) => {
                    last = RegistryError::Unreachable {
                        url: url.clone(),
                        reason: e.to_string(),
                    };
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text =
                response
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| RegistryError::Unreachable {
                        url: url.clone(),
                        reason: format!("reading the answer: {e}"),
                    })?;
            let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            if !(200..300).contains(&status) {
                let message = json
                    .as_ref()
                    .and_then(|j| j.get("message"))
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or(text);
                return Err(RegistryError::Refused {
                    url: url.clone(),
                    subject: subject.to_owned(),
                    status,
                    message,
                });
            }
            return json
                .as_ref()
                .and_then(|j| j.get("id"))
                .and_then(|id| id.as_u64())
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| RegistryError::BadAnswer {
                    url: url.clone(),
                    subject: subject.to_owned(),
                    body: text.chars().take(200).collect(),
                });
        }
        Err(last)
    }
}

/// Percent-encodes a subject for a URL path segment (RFC 3986 unreserved characters stay).
fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Frames an Avro datum: magic byte, big-endian schema id, datum.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Splits a framed key or value into its schema id and Avro datum; `None` when the bytes do
/// not start with the magic byte and an id.
pub fn unframe(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, rest @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let f = frame(0x0102_0304, b"xy");
        assert_eq!(f, [0, 1, 2, 3, 4, b'x', b'y']);
        assert_eq!(unframe(&f), Some((0x0102_0304, &b"xy"[..])));
        assert_eq!(unframe(&[1, 0, 0, 0, 1]), None);
        assert_eq!(unframe(&[0, 0, 0]), None);
        assert_eq!(encode_path("a.b-c_d/é"), "a.b-c_d%2F%C3%A9");
    }
}
