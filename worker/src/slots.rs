//! `pgseam slot list|drop`: the replication slots of the connectors' databases.
//!
//! A logical slot pins WAL on the server until its consumer confirms it: a slot whose
//! connector was deleted or stopped for good fills the server's disk. `slot list` shows every
//! slot of each connector's database (or the whole server with `--all`) with how far it is
//! behind, how much WAL it holds back, whether the server still has that WAL (`wal_status`),
//! and which of the given connector configurations reads it. `slot drop` removes one.
//!
//! # Dropping safely
//!
//! - An **active** slot (a walsender is streaming from it) is refused, naming the PID: stop
//!   the consumer first. The check and the drop are two statements; if a consumer takes the
//!   slot in between, `pg_drop_replication_slot` itself fails with the server's message.
//! - The name must be **confirmed**: `--confirm <slot>`, or typed at the prompt when stdin is
//!   a terminal. Without either, nothing is dropped.
//! - Only a slot of the connector's own database is dropped.
//! - A connector with a stored offset does not start again after its slot is dropped (its
//!   changes since the offset are gone; connector-pg refuses to resume). The output says so
//!   and how to start over.
//!
//! Connection parameters (host, port, user, password, TLS) come from the connector file, as
//! for `pgseam validate` and `pgseam verify`; config provider references are resolved with
//! the worker's `config.providers`. `slot list` also reads the connectors created over the
//! REST API (kept beside the offsets file), unless a file names the same connector.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use pgseam_connector_pg::connection::connect_query_session;
use pgseam_connector_pg::slot::{self, SlotStatus};

use crate::config::{self, ConnectorConfig, WorkerConfig};
use crate::offsets::{offset_key, OffsetStore};

/// How `slot list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table per server, with lag in human units.
    Table,
    /// One JSON object per slot and line, exact numbers.
    Json,
}

/// How long `slot drop` waits for the offset store when it checks for a stored offset.
const OFFSET_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// One server and database, as the connectors name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Database {
    host: String,
    port: u16,
    dbname: String,
}

impl Database {
    fn of(connector: &ConnectorConfig) -> Self {
        Database {
            host: connector.database_hostname.clone(),
            port: connector.database_port,
            dbname: connector.database_dbname.clone(),
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.dbname)
    }
}

/// `pgseam slot list`: the slots of every database the connectors read (all of the server's
/// slots with `all`).
pub async fn list(
    worker: &Path,
    connectors: &[PathBuf],
    all: bool,
    format: Format,
) -> anyhow::Result<String> {
    let (worker, mut connectors) =
        config::load_standalone(worker, connectors).map_err(|errors| anyhow!("{errors}"))?;
    let mut notes = Vec::new();
    // Connectors created over the REST API, unless a file names the same connector (the file
    // wins, as in `pgseam standalone`).
    for (name, stored) in crate::manager::stored_connector_configs(&worker)? {
        if connectors.iter().any(|c| c.name == name) {
            continue;
        }
        let source = format!("stored connector {name}");
        let loaded = worker
            .config_providers
            .resolve_pairs(&stored, &source)
            .map_err(config::ConfigErrors)
            .and_then(|resolved| ConnectorConfig::from_map(resolved, &source));
        match loaded {
            Ok(c) => connectors.push(c),
            Err(errors) => notes.push(format!(
                "connector {name:?} (created over REST) is left out: {errors}"
            )),
        }
    }
    if connectors.is_empty() {
        bail!(
            "no connector: name connector files, or create connectors over the REST API (they are kept in {})",
            crate::manager::store_path(&worker).display()
        );
    }
    let mut by_database: BTreeMap<Database, Vec<&ConnectorConfig>> = BTreeMap::new();
    for c in &connectors {
        by_database.entry(Database::of(c)).or_default().push(c);
    }
    let mut out = String::new();
    for (database, readers) in &by_database {
        let params = crate::standalone::connect_params(readers[0], "pgseam-slot".to_owned());
        let client = connect_query_session(&params).await?;
        let slots: Vec<SlotStatus> = slot::list_slots(&client)
            .await?
            .into_iter()
            .filter(|s| all || s.database.as_deref() == Some(database.dbname.as_str()))
            .collect();
        let user_of = |s: &SlotStatus| -> Option<String> {
            let names: Vec<&str> = readers
                .iter()
                .filter(|c| {
                    c.slot_name == s.name
                        && s.database.as_deref() == Some(c.database_dbname.as_str())
                })
                .map(|c| c.name.as_str())
                .collect();
            (!names.is_empty()).then(|| names.join(","))
        };
        match format {
            Format::Json => {
                for s in &slots {
                    let line = serde_json::json!({
                        "server": format!("{}:{}", database.host, database.port),
                        "slot": s.name,
                        "type": s.slot_type,
                        "plugin": s.plugin,
                        "database": s.database,
                        "temporary": s.temporary,
                        "active": s.active,
                        "active_pid": s.active_pid,
                        "restart_lsn": s.restart_lsn.map(|l| l.to_string()),
                        "confirmed_flush_lsn": s.confirmed_flush_lsn.map(|l| l.to_string()),
                        "lag_bytes": s.lag_bytes,
                        "retained_bytes": s.retained_bytes,
                        "wal_status": s.wal_status,
                        "connector": user_of(s),
                    });
                    writeln!(out, "{line}")?;
                }
            }
            Format::Table => {
                writeln!(
                    out,
                    "{} {database}{}:",
                    if all { "server of" } else { "slots of" },
                    if all { " (all databases)" } else { "" }
                )?;
                let mut rows = vec![[
                    "SLOT",
                    "TYPE",
                    "PLUGIN",
                    "DATABASE",
                    "ACTIVE",
                    "RESTART_LSN",
                    "CONFIRMED_FLUSH",
                    "LAG",
                    "RETAINED",
                    "WAL_STATUS",
                    "CONNECTOR",
                ]
                .map(str::to_owned)];
                for s in &slots {
                    rows.push([
                        format!("{}{}", s.name, if s.temporary { " (temp)" } else { "" }),
                        s.slot_type.clone(),
                        s.plugin.clone().unwrap_or_else(|| "-".into()),
                        s.database.clone().unwrap_or_else(|| "-".into()),
                        match (s.active, s.active_pid) {
                            (true, Some(pid)) => format!("yes (pid {pid})"),
                            (true, None) => "yes".into(),
                            (false, _) => "no".into(),
                        },
                        lsn_text(s.restart_lsn),
                        lsn_text(s.confirmed_flush_lsn),
                        bytes_text(s.lag_bytes),
                        bytes_text(s.retained_bytes),
                        s.wal_status.clone().unwrap_or_else(|| "-".into()),
                        user_of(s).unwrap_or_else(|| "-".into()),
                    ]);
                }
                if slots.is_empty() {
                    writeln!(out, "  (no replication slots)")?;
                } else {
                    out.push_str(&align(&rows));
                }
                for c in readers {
                    if !slots.iter().any(|s| {
                        s.name == c.slot_name
                            && s.database.as_deref() == Some(c.database_dbname.as_str())
                    }) {
                        writeln!(
                            out,
                            "  connector {:?}: slot `{}` does not exist (the connector has not started yet, or its slot was dropped)",
                            c.name, c.slot_name
                        )?;
                    }
                }
            }
        }
    }
    for note in notes {
        writeln!(out, "{note}")?;
    }
    Ok(out)
}

/// What `slot drop` is asked to do.
#[derive(Debug, Clone)]
pub struct DropRequest {
    /// The slot; default: the connector's `slot.name`.
    pub slot: Option<String>,
    /// The slot name typed again, to confirm.
    pub confirm: Option<String>,
}

/// `pgseam slot drop`: drops a slot of the connector's database after the checks in the module
/// docs. Returns what was done, for stdout.
pub async fn drop(
    worker: &Path,
    connector: &Path,
    request: &DropRequest,
) -> anyhow::Result<String> {
    let (worker, connectors) = config::load_standalone(worker, &[connector.to_path_buf()])
        .map_err(|errors| anyhow!("{errors}"))?;
    let connector = connectors
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no connector configuration was read"))?;
    let database = Database::of(&connector);
    let name = request
        .slot
        .clone()
        .unwrap_or_else(|| connector.slot_name.clone());
    let params = crate::standalone::connect_params(&connector, "pgseam-slot".to_owned());
    let client = connect_query_session(&params).await?;
    let slots = slot::list_slots(&client).await?;
    let Some(found) = slots.iter().find(|s| s.name == name) else {
        let here: Vec<&str> = slots
            .iter()
            .filter(|s| s.database.as_deref() == Some(database.dbname.as_str()))
            .map(|s| s.name.as_str())
            .collect();
        bail!(
            "there is no replication slot `{name}` on {}:{} (slots of database {}: {})",
            database.host,
            database.port,
            database.dbname,
            if here.is_empty() {
                "none".to_owned()
            } else {
                here.join(", ")
            }
        );
    };
    if found.database.as_deref() != Some(database.dbname.as_str()) {
        bail!(
            "slot `{name}` belongs to {}, not to the connector's database {}; pgseam drops only slots of the connector's database",
            found
                .database
                .as_deref()
                .map_or("no database (a physical slot)".to_owned(), |d| format!("database {d}")),
            database.dbname
        );
    }
    if found.active {
        bail!(
            "slot `{name}` on {database} is active{}: a consumer is streaming from it. Stop that consumer first (pgseam: stop the worker or `PUT /connectors/{}/stop`; or, if the session is stale, SELECT pg_terminate_backend(<pid>))",
            found
                .active_pid
                .map(|pid| format!(" (PID {pid})"))
                .unwrap_or_default(),
            connector.name
        );
    }
    confirm(&name, &database, request.confirm.as_deref())?;
    slot::drop_slot(&client, &name).await?;
    tracing::info!(slot = %name, database = %database, "replication slot dropped");
    let mut out = format!("dropped replication slot `{name}` on {database}\n");
    if name == connector.slot_name {
        let stored = stored_offset(&worker, &connector).await;
        match stored {
            Ok(Some(lsn)) => writeln!(
                out,
                "connector {:?} has a stored offset (LSN {lsn}): it will not start again, since the changes after that offset went with the slot. To start over with a new snapshot, reset its offset (`DELETE /connectors/{}/offsets` while it is stopped)",
                connector.name, connector.name
            )?,
            Ok(None) => writeln!(
                out,
                "connector {:?} has no stored offset: its next start creates the slot again and takes a snapshot",
                connector.name
            )?,
            Err(err) => writeln!(
                out,
                "could not read the offset store to check connector {:?}'s offset ({err:#}); if it has one, it will not start again until the offset is reset",
                connector.name
            )?,
        }
    }
    Ok(out)
}

/// Asks for (or checks) the slot name. `confirm` from `--confirm`; otherwise a prompt on a
/// terminal.
fn confirm(name: &str, database: &Database, given: Option<&str>) -> anyhow::Result<()> {
    let typed = match given {
        Some(given) => given.trim().to_owned(),
        None if std::io::stdin().is_terminal() => {
            eprint!(
                "Drop replication slot `{name}` on {database}? Its position is lost for good.\nType the slot name to confirm: "
            );
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
        None => bail!("not dropping slot `{name}` on {database}: confirm with `--confirm {name}`"),
    };
    if typed != name {
        bail!("not dropping slot `{name}`: the confirmation `{typed}` does not match");
    }
    Ok(())
}

/// The LSN of the connector's stored offset, if any.
async fn stored_offset(
    worker: &WorkerConfig,
    connector: &ConnectorConfig,
) -> anyhow::Result<Option<String>> {
    let read = async {
        let store = OffsetStore::open(worker).await?;
        let offset = store
            .get_json(&offset_key(&connector.name, &connector.topic_prefix))
            .await;
        anyhow::Ok(offset.map(|o| {
            o.get("lsn")
                .and_then(serde_json::Value::as_u64)
                .map_or_else(|| o.to_string(), |lsn| pgseam_model::Lsn(lsn).to_string())
        }))
    };
    tokio::time::timeout(OFFSET_CHECK_TIMEOUT, read)
        .await
        .map_err(|_| anyhow!("no answer within {OFFSET_CHECK_TIMEOUT:?}"))?
}

fn lsn_text(lsn: Option<pgseam_model::Lsn>) -> String {
    lsn.map_or_else(|| "-".into(), |l| l.to_string())
}

/// Bytes in binary units, one decimal (`1.5 MiB`); exact below 1 KiB.
fn bytes_text(bytes: Option<i64>) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let Some(bytes) = bytes else {
        return "-".into();
    };
    if bytes.abs() < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Left-aligned columns, two spaces apart, indented by two.
fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(bytes_text(None), "-");
        assert_eq!(bytes_text(Some(0)), "0 B");
        assert_eq!(bytes_text(Some(1023)), "1023 B");
        assert_eq!(bytes_text(Some(1536)), "1.5 KiB");
        assert_eq!(bytes_text(Some(3 * 1024 * 1024)), "3.0 MiB");
        assert_eq!(bytes_text(Some(5 << 40)), "5.0 TiB");
    }

    #[test]
    fn columns_align() {
        let rows = [
            ["A".to_owned(), "BB".to_owned()],
            ["CCC".to_owned(), "D".to_owned()],
        ];
        assert_eq!(align(&rows), "  A    BB\n  CCC  D\n");
    }
}
