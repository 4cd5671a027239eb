//! The Kafka Connect REST API of the standalone worker, on the worker's `listeners`.
//!
//! Paths, bodies and status codes follow Kafka Connect's `RootResource`, `ConnectorsResource`
//! and `ConnectorPluginsResource`, so deployment scripts written for Debezium on Connect work
//! unchanged:
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | 200 `{"version","commit","kafka_cluster_id"}` |
//! | `GET /connectors[?expand=status&expand=info]` | 200 names, or name → expansions |
//! | `POST /connectors` | 201 `ConnectorInfo` + `Location`; 409 if it exists |
//! | `GET /connectors/{name}` | 200 `ConnectorInfo` |
//! | `GET`/`PUT /connectors/{name}/config` | 200 map; PUT: 201 created / 200 updated |
//! | `GET /connectors/{name}/status` | 200 `ConnectorStateInfo` |
//! | `GET /connectors/{name}/tasks`, `…/tasks/0/status` | 200 |
//! | `PUT …/pause`, `…/resume` | 202 |
//! | `PUT …/stop` | 204 |
//! | `POST …/restart` | 204; with `includeTasks`/`onlyFailed`: 202 `ConnectorStateInfo` |
//! | `DELETE /connectors/{name}` | 204 |
//! | `GET …/offsets` | 200 `{"offsets":[{"partition","offset"}]}` |
//! | `PATCH`/`DELETE …/offsets` | 200 `{"message"}`; 400 unless STOPPED |
//! | `GET /connector-plugins` | 200 |
//! | `PUT /connector-plugins/{type}/config/validate` | 200 `ConfigInfos` |
//! | `GET /metrics` | Prometheus text (pgseam extension, see [`crate::metrics`]) |
//! | `POST /connectors/{name}/signals` | 202 `{"id"}`: a Debezium signal `{"id"?,"type","data"}` for the running source (pgseam extension, see `docs/snapshot.md`) |
//!
//! Errors are Connect's `ErrorMessage`: `{"error_code": 404, "message": "Connector x not
//! found"}`; an unknown path is `{"error_code":404,"message":"HTTP 404 Not Found"}`.
//! An invalid configuration is 400 with Connect's "Connector configuration is invalid and
//! contains the following N error(s): …" message, each error naming the key.
//!
//! Differences, on purpose: secret values (`*password`, `*secret`, `sasl.jaas.config`, …) are
//! shown as `****` in every response (Connect shows them), unless written as config provider
//! references; a PUT that sends `****` back for such a key keeps the stored value. A request
//! body that is not valid JSON is 400 (Connect answers 500). `kafka_cluster_id` is `null`.
//!
//! Listeners use Connect's syntax, `http://host:port` (empty host: every interface); port 0
//! binds an ephemeral port. The bound address is logged as `REST API listening on http://…`.
//! HTTPS listeners are not supported yet (an error at start).

mod handlers;

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::manager::{Manager, ManagerError};

/// One parsed `listeners` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// As written, for messages.
    pub url: String,
    /// Where to bind.
    pub address: SocketAddr,
}

/// Parses Connect's `listeners` syntax: `http://host:port`, `http://:port`, `http://[::1]:port`.
pub fn parse_listener(url: &str) -> anyhow::Result<Listener> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        bail!("listener `{url}`: HTTPS listeners are not supported yet; use http://");
    } else {
        bail!("listener `{url}`: expected http://host:port");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("listener `{url}`: no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("listener `{url}`: invalid port `{port}`"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" => std::net::IpAddr::from([0, 0, 0, 0]),
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        other => match other.parse() {
            Ok(ip) => ip,
            Err(_) => {
                use std::net::ToSocketAddrs;
                (other, port)
                    .to_socket_addrs()
                    .with_context(|| format!("listener `{url}`: cannot resolve `{other}`"))?
                    .next()
                    .ok_or_else(|| anyhow!("listener `{url}`: `{other}` has no address"))?
                    .ip()
            }
        },
    };
    Ok(Listener {
        url: url.to_owned(),
        address: SocketAddr::new(ip, port),
    })
}

/// Binds every listener and serves the API until `shutdown` resolves. Returns once bound;
/// the servers run in background tasks.
pub async fn serve(
    manager: Manager,
    listeners: &[String],
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for url in listeners {
        let listener = parse_listener(url)?;
        let socket = tokio::net::TcpListener::bind(listener.address)
            .await
            .with_context(|| format!("cannot listen on {} (listeners={url})", listener.address))?;
        let local = socket.local_addr()?;
        tracing::info!("REST API listening on http://{local}");
        if bound.is_empty() {
            manager.set_worker_id(worker_id(&listener, local));
        }
        bound.push(local);
        let app = handlers::router(manager.clone());
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let stop = async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
            };
            if let Err(err) = axum::serve(socket, app).with_graceful_shutdown(stop).await {
                tracing::error!(error = %err, "REST server failed");
            }
        });
    }
    Ok(bound)
}

/// Connect's `worker_id`: the advertised `host:port`; an unspecified host is this machine's
/// name.
fn worker_id(listener: &Listener, local: SocketAddr) -> String {
    let host = if listener.address.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| local.ip().to_string())
    } else {
        local.ip().to_string()
    };
    format!("{host}:{}", local.port())
}

/// Connect's error body.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

impl IntoResponse for ManagerError {
    fn into_response(self) -> Response {
        let status = match &self {
            ManagerError::NotFound(_) => StatusCode::NOT_FOUND,
            ManagerError::AlreadyExists(_) => StatusCode::CONFLICT,
            ManagerError::InvalidConfig(_) | ManagerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ManagerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_syntax() {
        let l = parse_listener("http://:8083").unwrap();
        assert_eq!(l.address, "0.0.0.0:8083".parse().unwrap());
        let l = parse_listener("http://127.0.0.1:0").unwrap();
        assert_eq!(l.address, "127.0.0.1:0".parse().unwrap());
        let l = parse_listener("http://[::1]:8083/").unwrap();
        assert_eq!(l.address, "[::1]:8083".parse().unwrap());
        assert!(parse_listener("https://:8443")
            .unwrap_err()
            .to_string()
            .contains("HTTPS"));
        assert!(parse_listener("http://:x").is_err());
        assert!(parse_listener("tcp://:1").is_err());
    }
}
