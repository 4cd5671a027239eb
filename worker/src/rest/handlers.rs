//! The request handlers: parse the request as Connect does, call the [`Manager`], shape the
//! answer as Connect's entities.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error;
use crate::config::{ConfigError, POSTGRES_CONNECTOR_CLASS};
use crate::manager::{Manager, ManagerError};

pub(super) fn router(manager: Manager) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/metrics", get(metrics))
        .route("/connectors", get(list).post(create))
        .route("/connectors/", get(list).post(create))
        .route("/connectors/{name}", get(info).delete(delete))
        .route("/connectors/{name}/config", get(config).put(put_config))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/restart", axum::routing::post(restart))
        .route("/connectors/{name}/signals", axum::routing::post(signal))
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/", get(plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed",
            )
        })
        .with_state(manager)
}

/// Query parameters in order, repeated keys kept (`expand=status&expand=info`).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Jersey's `Boolean` query parameter: "true" (any case) is true, anything else false.
fn flag(pairs: &[(String, String)], name: &str) -> bool {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
}

/// A malformed request body: 400 with Connect's error body.
struct BadBody(String);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

fn parse_json(body: &Bytes) -> Result<Value, BadBody> {
    serde_json::from_slice(body)
        .map_err(|e| BadBody(format!("the request body is not valid JSON: {e}")))
}

/// A JSON object of configuration values, turned into strings as Jackson does for Connect's
/// `Map<String, String>`; `null` values are dropped.
fn config_map(value: &Value, what: &str) -> Result<BTreeMap<String, String>, BadBody> {
    let object = value.as_object().ok_or_else(|| {
        BadBody(format!(
            "{what} must be a JSON object of configuration keys and string values"
        ))
    })?;
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(BadBody(format!(
                    "{what}: the value of `{key}` must be a string, number or boolean"
                )))
            }
        };
        out.insert(key.clone(), text);
    }
    Ok(out)
}

/// Connect's `checkAndPutConnectorConfigName`.
fn check_and_put_name(
    name: &str,
    config: &mut BTreeMap<String, String>,
) -> Result<(), ManagerError> {
    match config.get("name") {
        Some(inner) if inner != name => Err(ManagerError::BadRequest(format!(
            "Connector name configuration ({inner}) doesn't match connector name in the URL ({name})"
        ))),
        _ => {
            config.insert("name".into(), name.to_owned());
            Ok(())
        }
    }
}

fn location(headers: &HeaderMap, name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}/connectors/{encoded}"),
        None => format!("/connectors/{encoded}"),
    }
}

async fn root() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("PGSEAM_GIT_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": Value::Null,
    }))
}

async fn metrics(State(manager): State<Manager>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        manager.render_metrics().await,
    )
        .into_response()
}

async fn list(State(manager): State<Manager>, RawQuery(query): RawQuery) -> Json<Value> {
    let pairs = query_pairs(query.as_deref());
    let expansions: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    if pairs.iter().any(|(k, _)| k == "expand") {
        for unknown in expansions
            .iter()
            .filter(|e| !["status", "info"].contains(e))
        {
            tracing::info!("Ignoring unknown expansion type {unknown}");
        }
        Json(
            manager
                .expanded(expansions.contains(&"status"), expansions.contains(&"info"))
                .await,
        )
    } else {
        Json(json!(manager.names().await))
    }
}

async fn create(State(manager): State<Manager>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let name = request
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let Some(config) = request.get("config") else {
        return error(
            StatusCode::BAD_REQUEST,
            "the request body must contain `config`, the connector configuration",
        );
    };
    let mut config = match config_map(config, "`config`") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    // KIP-980: the state to create the connector in.
    let initial = match request.get("initial_state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.to_ascii_uppercase().as_str() {
            "RUNNING" => None,
            "PAUSED" => Some("PAUSED"),
            "STOPPED" => Some("STOPPED"),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid initial state: {s}; expected RUNNING, PAUSED or STOPPED"),
                )
            }
        },
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Invalid initial state: {other}"),
            )
        }
    };
    if let Err(err) = check_and_put_name(&name, &mut config) {
        return err.into_response();
    }
    let result = manager.create(&name, config).await;
    let mut info = match result {
        Ok(info) => info,
        Err(err) => return err.into_response(),
    };
    let changed = match initial {
        Some("PAUSED") => Some(manager.pause(&name).await),
        Some(_) => Some(manager.stop(&name).await),
        None => None,
    };
    if let Some(changed) = changed {
        if let Err(err) = changed {
            return err.into_response();
        }
        info = match manager.connector_info(&name).await {
            Ok(info) => info,
            Err(err) => return err.into_response(),
        };
    }
    (
        StatusCode::CREATED,
        [(header::LOCATION, location(&headers, &name))],
        Json(info),
    )
        .into_response()
}

async fn info(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.connector_info(&name).await)
}

fn respond(result: Result<Value, ManagerError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn config(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.config(&name).await)
}

async fn put_config(
    State(manager): State<Manager>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let mut config = match config_map(&request, "the request body") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Err(err) = check_and_put_name(&name, &mut config) {
        return err.into_response();
    }
    match manager.put_config(&name, config).await {
        Ok((true, info)) => (
            StatusCode::CREATED,
            [(header::LOCATION, location(&headers, &name))],
            Json(info),
        )
            .into_response(),
        Ok((false, info)) => Json(info).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn status(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.status(&name).await)
}

async fn tasks(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.tasks(&name).await)
}

async fn task_status(
    State(manager): State<Manager>,
    Path((name, task)): Path<(String, String)>,
) -> Response {
    respond(manager.task_status(&name, &task).await)
}

fn no_body(result: Result<(), ManagerError>, status: StatusCode) -> Response {
    match result {
        Ok(()) => status.into_response(),
        Err(err) => err.into_response(),
    }
}

/// `POST /connectors/{name}/signals` (pgseam extension): 202 `{"id"}`.
async fn signal(State(manager): State<Manager>, Path(name): Path<String>, body: Bytes) -> Response {
    let request = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    match manager.signal(&name, &request).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn pause(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    no_body(manager.pause(&name).await, StatusCode::ACCEPTED)
}

async fn resume(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    no_body(manager.resume(&name).await, StatusCode::ACCEPTED)
}

async fn stop(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    no_body(manager.stop(&name).await, StatusCode::NO_CONTENT)
}

async fn delete(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    no_body(manager.delete(&name).await, StatusCode::NO_CONTENT)
}

async fn restart(
    State(manager): State<Manager>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let include_tasks = flag(&pairs, "includeTasks");
    let only_failed = flag(&pairs, "onlyFailed");
    match manager.restart(&name, include_tasks, only_failed).await {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(body)) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn offsets(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.offsets(&name).await)
}

async fn alter_offsets(
    State(manager): State<Manager>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let request = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    respond(manager.alter_offsets(&name, Some(request)).await)
}

async fn reset_offsets(State(manager): State<Manager>, Path(name): Path<String>) -> Response {
    respond(manager.alter_offsets(&name, None).await)
}

async fn plugins() -> Json<Value> {
    Json(json!([{
        "class": POSTGRES_CONNECTOR_CLASS,
        "type": "source",
        "version": env!("CARGO_PKG_VERSION"),
    }]))
}

/// Connect's plugin name matching: the class, its simple name, or the simple name without
/// `Connector`.
fn is_postgres_plugin(name: &str) -> bool {
    let simple = POSTGRES_CONNECTOR_CLASS
        .rsplit('.')
        .next()
        .unwrap_or(POSTGRES_CONNECTOR_CLASS);
    name == POSTGRES_CONNECTOR_CLASS
        || name == simple
        || name == simple.trim_end_matches("Connector")
}

/// The keys a configuration error is about.
fn error_keys(error: &ConfigError) -> Vec<String> {
    match error {
        ConfigError::UnknownKey { key, .. }
        | ConfigError::WrongScope { key, .. }
        | ConfigError::MissingRequired { key, .. }
        | ConfigError::InvalidValue { key, .. }
        | ConfigError::Unsupported { key, .. }
        | ConfigError::UnsupportedValue { key, .. }
        | ConfigError::Removed { key, .. } => vec![key.clone()],
        ConfigError::Conflict { keys, .. } => keys.clone(),
        _ => Vec::new(),
    }
}

async fn validate(
    State(manager): State<Manager>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Response {
    let request = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let config = match config_map(&request, "the request body") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Some(included) = config.get("connector.class") {
        let normalize = |n: &str| n.trim().to_owned();
        if !normalize(included).ends_with(&normalize(&plugin)) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Included connector type {included} does not match request type {plugin}"),
            );
        }
    }
    if !is_postgres_plugin(&plugin) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("Failed to find any class that implements Connector and which name matches {plugin}, available connectors are: PluginDesc{{klass=class {POSTGRES_CONNECTOR_CLASS}, name='{POSTGRES_CONNECTOR_CLASS}', type=source, typeName='source', location='pgseam'}}"),
        );
    }
    let name = config.get("name").cloned().unwrap_or_default();
    // Errors per key; errors about no key go to `name`, as Connect reports connector-level
    // validation problems.
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Err(problems) = manager.validate(&name, &config) {
        for problem in problems.errors() {
            let keys = error_keys(problem);
            let keys = if keys.is_empty() {
                vec!["name".to_owned()]
            } else {
                keys
            };
            for key in keys {
                errors.entry(key).or_default().push(problem.to_string());
            }
        }
    }
    let mut keys: Vec<String> = config.keys().cloned().collect();
    for key in errors.keys() {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    let error_count: usize = errors.values().map(Vec::len).sum();
    let configs: Vec<Value> = keys
        .iter()
        .map(|key| {
            let value = config.get(key).map(|v| {
                if crate::config::is_sensitive_key(key) {
                    crate::manager::MASK.to_owned()
                } else {
                    v.clone()
                }
            });
            json!({
                "definition": {
                    "name": key,
                    "type": if crate::config::is_sensitive_key(key) { "PASSWORD" } else { "STRING" },
                    "required": false,
                    "default_value": Value::Null,
                    "importance": "MEDIUM",
                    "documentation": "",
                    "group": Value::Null,
                    "width": "NONE",
                    "display_name": key,
                    "dependents": [],
                    "order": -1,
                },
                "value": {
                    "name": key,
                    "value": value,
                    "recommended_values": [],
                    "errors": errors.get(key).cloned().unwrap_or_default(),
                    "visible": true,
                },
            })
        })
        .collect();
    Json(json!({
        "name": POSTGRES_CONNECTOR_CLASS,
        "error_count": error_count,
        "groups": [],
        "configs": configs,
    }))
    .into_response()
}
