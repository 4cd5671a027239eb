//! A Confluent-API-compatible Schema Registry **stand-in**, in-process, for tests.
//!
//! No real Schema Registry can be installed on these machines (it is a JVM service shipped
//! outside the package registries reached here), so tests run against this small HTTP/1.1
//! server on a free loopback port. It implements the part of the REST API that serializers,
//! converters and debugging tools call:
//!
//! | request | answer |
//! |---|---|
//! | `POST /subjects/{subject}/versions` `{"schema": "…"}` | `{"id": N}`: the schema's global id (the same text gets the same id in every subject); a new version under the subject if the text is new there |
//! | `GET /schemas/ids/{id}` | `{"schema": "…"}` |
//! | `GET /subjects` | `["subject", …]` |
//! | `GET /subjects/{subject}/versions` | `[1, 2, …]` |
//! | `GET /subjects/{subject}/versions/{n or latest}` | `{"subject","version","id","schema"}` |
//! | `GET /config` | `{"compatibilityLevel":"BACKWARD"}` |
//!
//! Differences from the real registry, deliberately kept small: schemas are compared by their
//! exact text (the real one compares parsed canonical forms), no compatibility check is run,
//! `schemaType` other than Avro is refused, state lives in memory. Errors use the registry's
//! shape, `{"error_code": 40401, "message": "…"}`. With [`SchemaRegistry::start_with_basic_auth`]
//! every request must carry the given HTTP basic credentials (401 otherwise).
//!
//! The server runs on its own threads and stops on `Drop`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// Largest request body accepted (schemas are a few KiB).
const MAX_BODY: usize = 16 << 20;

#[derive(Default, Debug)]
struct State {
    /// Global id → schema text; ids start at 1.
    schemas: Vec<String>,
    /// Subject → schema ids, one per version.
    subjects: BTreeMap<String, Vec<u32>>,
    /// Requests answered, for tests that count round trips.
    requests: usize,
}

/// A running stand-in registry.
pub struct SchemaRegistry {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .finish()
    }
}

impl SchemaRegistry {
    /// Starts the stand-in on a free loopback port.
    pub fn start() -> Result<SchemaRegistry> {
        Self::start_inner(None)
    }

    /// Starts the stand-in requiring HTTP basic authentication.
    pub fn start_with_basic_auth(user: &str, password: &str) -> Result<SchemaRegistry> {
        let token = base64_encode(format!("{user}:{password}").as_bytes());
        Self::start_inner(Some(format!("Basic {token}")))
    }

    fn start_inner(auth: Option<String>) -> Result<SchemaRegistry> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(Error::io("binding the schema registry stand-in"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("reading the registry's port"))?
            .port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            let auth = auth.map(Arc::new);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = Arc::clone(&state);
                    let auth = auth.clone();
                    std::thread::spawn(move || {
                        serve(conn, &state, auth.as_deref().map(String::as_str))
                    });
                }
            })
        };
        Ok(SchemaRegistry {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop,
            port,
            accept: Some(accept),
        })
    }

    /// The base URL, for `schema.registry.url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema registered under `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        let s = self.lock();
        id.checked_sub(1)
            .and_then(|i| s.schemas.get(i as usize))
            .cloned()
    }

    /// Subject → ids of its versions, in version order.
    pub fn subjects(&self) -> BTreeMap<String, Vec<u32>> {
        self.lock().subjects.clone()
    }

    /// How many requests were answered.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection (HTTP/1.1 keep-alive) until the client closes it.
fn serve(conn: TcpStream, state: &Mutex<State>, auth: Option<&str>) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut writer = write_half;
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut content_length = 0usize;
        let mut authorization = None;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.to_owned()),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        if content_length > MAX_BODY {
            return;
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = if auth.is_some() && authorization.as_deref() != auth {
            error(401, 40101, "Unauthorized")
        } else {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.requests += 1;
            route(&mut s, &method, &target, &body)
        };
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            404 => "Not Found",
            422 => "Unprocessable Entity",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
        if close {
            return;
        }
    }
}

fn error(status: u16, code: u32, message: &str) -> (u16, String) {
    (
        status,
        serde_json::json!({ "error_code": code, "message": message }).to_string(),
    )
}

fn route(s: &mut State, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let path = target.split('?').next().unwrap_or("");
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segs.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            let Ok(req) = serde_json::from_slice::<serde_json::Value>(body) else {
                return error(422, 42201, "request body is not JSON");
            };
            if let Some(t) = req.get("schemaType").and_then(|t| t.as_str()) {
                if t != "AVRO" {
                    return error(422, 42201, "the stand-in registry holds Avro schemas only");
                }
            }
            let Some(schema) = req.get("schema").and_then(|v| v.as_str()) else {
                return error(422, 42201, "no \"schema\" string in the request");
            };
            let id = match s.schemas.iter().position(|x| x == schema) {
                Some(i) => i as u32 + 1,
                None => {
                    s.schemas.push(schema.to_owned());
                    s.schemas.len() as u32
                }
            };
            let versions = s.subjects.entry((*subject).to_owned()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            (200, serde_json::json!({ "id": id }).to_string())
        }
        ("GET", ["schemas", "ids", id]) => {
            match id
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| s.schemas.get(i))
            {
                Some(schema) => (200, serde_json::json!({ "schema": schema }).to_string()),
                None => error(404, 40403, "Schema not found"),
            }
        }
        ("GET", ["subjects"]) => (
            200,
            serde_json::Value::from(s.subjects.keys().cloned().collect::<Vec<_>>()).to_string(),
        ),
        ("GET", ["subjects", subject, "versions"]) => match s.subjects.get(*subject) {
            Some(v) => (
                200,
                serde_json::Value::from((1..=v.len() as u32).collect::<Vec<_>>()).to_string(),
            ),
            None => error(404, 40401, "Subject not found"),
        },
        ("GET", ["subjects", subject, "versions", version]) => {
            let Some(ids) = s.subjects.get(*subject) else {
                return error(404, 40401, "Subject not found");
            };
            let n = if *version == "latest" {
                ids.len()
            } else {
                version.parse().unwrap_or(0)
            };
            match n.checked_sub(1).and_then(|i| ids.get(i)) {
                Some(id) => (
                    200,
                    serde_json::json!({
                        "subject": subject,
                        "version": n,
                        "id": id,
                        "schema": s.schemas[*id as usize - 1],
                    })
                    .to_string(),
                ),
                None => error(404, 40402, "Version not found"),
            }
        }
        ("GET", ["config"]) => (200, r#"{"compatibilityLevel":"BACKWARD"}"#.to_owned()),
        _ => error(404, 404, "Not found in the stand-in registry"),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_encode(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(char::from(A[(v >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str, method: &str, path: &str, body: &str, auth: Option<&str>) -> (u16, String) {
        let addr = url.trim_start_matches("http://");
        let mut c = TcpStream::connect(addr).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[test]
    fn registers_and_serves_schemas() {
        let r = SchemaRegistry::start().unwrap();
        let u = r.url().to_owned();
        assert_eq!(
            http(
                &u,
                "POST",
                "/subjects/t-value/versions",
                r#"{"schema":"\"int\""}"#,
                None
            ),
            (200, r#"{"id":1}"#.to_owned())
        );
        // Same text: same id, no new version; new text: new id and version.
        assert_eq!(
            http(
                &u,
                "POST",
                "/subjects/t-value/versions",
                r#"{"schema":"\"int\""}"#,
                None
            )
            .1,
            r#"{"id":1}"#
        );
        assert_eq!(
            http(
                &u,
                "POST",
                "/subjects/t-value/versions",
                r#"{"schema":"\"long\""}"#,
                None
            )
            .1,
            r#"{"id":2}"#
        );
        assert_eq!(
            http(
                &u,
                "POST",
                "/subjects/t%2Dkey/versions",
                r#"{"schema":"\"int\""}"#,
                None
            )
            .1,
            r#"{"id":1}"#
        );
        assert_eq!(
            http(&u, "GET", "/schemas/ids/2", "", None).1,
            r#"{"schema":"\"long\""}"#
        );
        assert_eq!(
            http(&u, "GET", "/subjects", "", None).1,
            r#"["t-key","t-value"]"#
        );
        assert_eq!(
            http(&u, "GET", "/subjects/t-value/versions", "", None).1,
            "[1,2]"
        );
        assert!(
            http(&u, "GET", "/subjects/t-value/versions/latest", "", None)
                .1
                .contains(r#""id":2"#)
        );
        assert_eq!(http(&u, "GET", "/schemas/ids/9", "", None).0, 404);
        assert_eq!(http(&u, "GET", "/config", "", None).0, 200);
        assert_eq!(r.subjects()["t-value"], vec![1, 2]);
        assert_eq!(r.schema(2).as_deref(), Some("\"long\""));
    }

    #[test]
    fn basic_auth_is_enforced() {
        let r = SchemaRegistry::start_with_basic_auth("u", "p").unwrap();
        assert_eq!(http(r.url(), "GET", "/subjects", "", None).0, 401);
        assert_eq!(base64_encode(b"u:p"), "dTpw");
        assert_eq!(
            http(r.url(), "GET", "/subjects", "", Some("Basic dTpw")).0,
            200
        );
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
