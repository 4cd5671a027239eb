//! `pgseam offsets set`: changes a connector's stored offset while pgseam is not running it —
//! the command-line twin of `PATCH` / `DELETE /connectors/{name}/offsets` (KIP-875).
//!
//! ```text
//! pgseam offsets set worker.properties connector.properties --lsn 0/1A2B3C4
//! pgseam offsets set worker.properties connector.properties --offset '{"lsn_proc":…,"lsn":…}'
//! pgseam offsets set worker.properties connector.properties --reset
//! ```
//!
//! The offset is checked as the REST API checks it ([`OffsetStore::check_json`]: a Debezium
//! PostgreSQL offset with a numeric `lsn`, …), and written to the worker's store (the offset
//! file, or `offset.storage.topic`) under the key Connect uses, `["<name>",{"server":"<topic.prefix>"}]`.
//! `--lsn L` stores the offset pgseam itself writes after a transaction that ends at `L`:
//! streaming resumes with the first transaction that commits at or after `L`.
//!
//! Refused, with the reason, before anything is written:
//!
//! - a worker that has this connector answers on one of the worker's `listeners` (it would
//!   overwrite the offset; stop the connector and use the REST API there instead);
//! - the connector's slot is active (a consumer — usually pgseam — is streaming from it),
//!   naming the PID;
//! - for a position: the slot does not exist (the connector could not resume: its changes are
//!   gone), the position is before the slot's `confirmed_flush_lsn` (the server has released
//!   that WAL; a slot never goes back), or after the server's current WAL position.
//!
//! Moving the offset forward skips the changes in between: they are never sent. `--reset`
//! removes the offset, so the next start takes a new snapshot; an existing slot then has to be
//! dropped first (`pgseam slot drop`), since a connector without an offset will not adopt a
//! slot it did not create.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use pgseam_connector_pg::connection::connect_query_session;
use pgseam_connector_pg::slot;
use pgseam_model::Lsn;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{self, ConnectorConfig};
use crate::offsets::debezium::encode_value;
use crate::offsets::{offset_key, ConnectorOffset, OffsetStore, StreamOffset};

/// How long the probe of a listener may take.
const LISTENER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The new position.
#[derive(Debug, Clone)]
pub enum NewOffset {
    /// Resume with the first transaction committing at or after this LSN.
    Lsn(Lsn),
    /// A Debezium offset value as JSON (what `PATCH …/offsets` takes as `offset`).
    Json(Value),
    /// Remove the offset: the next start takes a new snapshot.
    Reset,
}

/// Parses `--lsn`: PostgreSQL's `X/Y` or a decimal number (as Debezium stores it).
pub fn parse_lsn(text: &str) -> Result<Lsn, String> {
    let text = text.trim();
    if text.contains('/') {
        text.parse::<Lsn>().map_err(|e| e.to_string())
    } else {
        text.parse::<u64>()
            .map(Lsn)
            .map_err(|_| format!("not an LSN (X/Y in hex, or a decimal number): {text:?}"))
    }
}

/// `pgseam offsets set`. Returns what was done, for stdout.
pub async fn run(worker: &Path, connector: &Path, new: &NewOffset) -> anyhow::Result<String> {
    let (worker, connectors) = config::load_standalone(worker, &[connector.to_path_buf()])
        .map_err(|errors| anyhow!("{errors}"))?;
    let connector = connectors
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no connector configuration was read"))?;
    let name = &connector.name;

    // The checks of the REST API: a valid offset for the connector's one partition.
    let offset = match new {
        NewOffset::Lsn(lsn) => Some(ConnectorOffset::Streaming(StreamOffset::after_commit(
            *lsn,
            0,
            0,
        ))),
        NewOffset::Json(value) => Some(OffsetStore::check_json(value).map_err(|reason| {
            anyhow!("invalid offset: {reason}; a PostgreSQL offset has a numeric `lsn` (and optionally `lsn_proc`, `lsn_commit`, `txId`, `ts_usec`)")
        })?),
        NewOffset::Reset => None,
    };
    // `--lsn`: no transaction id or time is known.
    let offset = offset.map(|o| match o {
        ConnectorOffset::Streaming(mut s) if matches!(new, NewOffset::Lsn(_)) => {
            s.tx_id = None;
            ConnectorOffset::Streaming(s)
        }
        other => other,
    });

    for listener in &worker.listeners {
        if let Some(url) = worker_with_connector(listener, name).await {
            bail!(
                "a worker running connector {name} answers on {url}: it would overwrite the offset. Stop the connector there (PUT /connectors/{name}/stop) and change the offset with PATCH /connectors/{name}/offsets, or stop that worker first"
            );
        }
    }

    let slot_note = check_slot(&connector, offset.as_ref()).await?;

    let store = OffsetStore::open(&worker).await?;
    let key = offset_key(name, &connector.topic_prefix);
    let before = store.get_json(&key).await;
    let mut out = String::new();
    match &offset {
        Some(offset) => {
            store.put(&key, offset).await?;
            let value: Value = serde_json::from_str(&encode_value(offset))?;
            writeln!(
                out,
                "connector {name}: offset set in {} to {value}",
                store.location()
            )?;
        }
        None => {
            let removed = store.remove(&key).await?;
            if removed {
                writeln!(
                    out,
                    "connector {name}: offset removed from {}; the next start takes a new snapshot",
                    store.location()
                )?;
            } else {
                writeln!(
                    out,
                    "connector {name}: no stored offset in {}; nothing to reset",
                    store.location()
                )?;
            }
        }
    }
    if let Some(before) = before {
        writeln!(out, "previous offset: {before}")?;
    }
    if let Some(note) = slot_note {
        writeln!(out, "{note}")?;
    }
    tracing::info!(connector = %name, "offset changed from the command line");
    Ok(out)
}

/// Refuses an active slot, and a position the slot cannot serve. Returns a note for the user.
async fn check_slot(
    connector: &ConnectorConfig,
    offset: Option<&ConnectorOffset>,
) -> anyhow::Result<Option<String>> {
    let params = crate::standalone::connect_params(connector, "pgseam-offsets".to_owned());
    let client = connect_query_session(&params)
        .await
        .context("cannot check the connector's replication slot")?;
    let slot_name = &connector.slot_name;
    let info = slot::find_slot(&client, slot_name).await?;
    if let Some(pid) = info.as_ref().and_then(|i| i.active_pid) {
        bail!(
            "slot `{slot_name}` is active (PID {pid}): a consumer is streaming from it, probably this connector. Stop it before changing the offset"
        );
    }
    let Some(offset) = offset else {
        return Ok(info.map(|_| {
            format!(
                "slot `{slot_name}` still exists: a connector without an offset does not adopt it; drop it before the next start (pgseam slot drop)"
            )
        }));
    };
    let Some(resume) = offset.resume_lsn() else {
        // An offset of an unfinished snapshot: the next start takes the snapshot again.
        return Ok(None);
    };
    let Some(info) = info else {
        bail!(
            "slot `{slot_name}` does not exist, so the connector cannot resume from {resume}: the changes since then are gone. Use --reset to start over with a new snapshot"
        );
    };
    if let Some(confirmed) = info.confirmed_flush_lsn {
        if resume < confirmed {
            bail!(
                "{resume} is before slot `{slot_name}`'s confirmed position {confirmed}: the server has released the WAL before it, and a slot never goes back. Choose a position at or after {confirmed}, or --reset to start over"
            );
        }
    }
    let current: String = client
        .query_one(
            "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                         ELSE pg_current_wal_lsn() END)::text",
            &[],
        )
        .await?
        .get(0);
    let current: Lsn = current
        .parse()
        .map_err(|e| anyhow!("the server's WAL position: {e}"))?;
    if resume > current {
        bail!("{resume} is after the server's current WAL position {current}");
    }
    Ok(info.confirmed_flush_lsn.and_then(|confirmed| {
        (resume > confirmed).then(|| {
            format!(
                "the slot is at {confirmed}: the changes between {confirmed} and {resume} will be skipped"
            )
        })
    }))
}

/// `Some(url)` if a Connect-compatible worker on `listener` has the connector `name`.
async fn worker_with_connector(listener: &str, name: &str) -> Option<String> {
    let rest = listener.strip_prefix("http://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let port: u16 = port.trim_end_matches('/').parse().ok()?;
    if port == 0 {
        return None;
    }
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        other => other,
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let path = format!("/connectors/{}", percent_encode(name));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await.ok()?;
        let status = std::str::from_utf8(&head[..n]).ok()?;
        // "HTTP/1.1 200 OK"
        status
            .split_whitespace()
            .nth(1)
            .filter(|code| *code == "200")
            .map(|_| format!("http://{host}:{port}"))
    };
    tokio::time::timeout(LISTENER_PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
}

/// Percent-encodes a connector name for a URL path segment.
fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_forms() {
        assert_eq!(parse_lsn("0/1A2B3C4"), Ok(Lsn(0x1A2B3C4)));
        assert_eq!(parse_lsn(" 16/0 "), Ok(Lsn(0x16 << 32)));
        assert_eq!(parse_lsn("27439044"), Ok(Lsn(27_439_044)));
        assert!(parse_lsn("0/xyz").is_err());
        assert!(parse_lsn("-5").is_err());
    }

    #[test]
    fn names_in_paths() {
        assert_eq!(percent_encode("inv-1.a_b"), "inv-1.a_b");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
