//! The logical replication slot.
//!
//! The slot is what makes the hand-off gap-free: `CREATE_REPLICATION_SLOT … (SNAPSHOT 'export')`
//! returns the consistent point C and the name of a snapshot that sees exactly the transactions
//! committed before C. Rows read under that snapshot plus the changes streamed from C are the
//! whole history, once. The exported snapshot lives only while the creating connection stays
//! idle, so that connection is kept aside until every snapshot reader has imported it.
//!
//! # Waiting, and what can go wrong
//!
//! - **Slot creation waits for every transaction that holds an xid** (the snapshot builder
//!   must see them end to find a consistent point). A forgotten `BEGIN; UPDATE …` in a psql
//!   window blocks it forever. [`create_slot_exporting_snapshot`] therefore polls
//!   `pg_blocking_pids()` of the creating walsender from a query session, logs the blockers
//!   (PID, state, transaction start, application), and gives up after a bound with an error
//!   naming them; dropping the connection makes the server abandon the half-made slot.
//! - **A slot is active elsewhere** (another consumer, or our own previous walsender that the
//!   server has not reaped yet): [`wait_until_inactive`] retries `slot.max.retries` times every
//!   `slot.retry.delay.ms` (Debezium's semantics), then names the PID holding it.
//! - **`wal_status = 'lost'`**: the server removed WAL the slot still needed (usually
//!   `max_slot_wal_keep_size`); changes are gone and the slot can never stream again.
//!   Fatal, with what to do.

use std::time::Duration;

use pgseam_model::Lsn;
use tokio_postgres::Client;

use crate::catalog::{quote_identifier, quote_literal};
use crate::connection::ReplicationConnection;
use crate::error::{Result, SourceError};

/// The state of an existing slot, from `pg_replication_slots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
}

/// What `CREATE_REPLICATION_SLOT` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedSlot {
    pub consistent_point: Lsn,
    pub snapshot_name: String,
}

pub async fn find_slot(client: &Client, slot: &str) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, active_pid, confirmed_flush_lsn::text, wal_status \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|error| SourceError::Query { context: format!("cannot look up slot {slot}"), error })?;
    Ok(row.map(|row| SlotInfo {
        plugin: row.get(0),
        database: row.get(1),
        active_pid: row.get(2),
        confirmed_flush_lsn: row.get::<_, Option<String>>(3).and_then(|s| s.parse().ok()),
        wal_status: row.get(4),
    }))
}

/// One row of `pg_replication_slots`, with how far the slot is behind the server's WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotStatus {
    pub name: String,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// Output plugin (logical slots).
    pub plugin: Option<String>,
    /// Database of a logical slot.
    pub database: Option<String>,
    pub temporary: bool,
    pub active: bool,
    pub active_pid: Option<i32>,
    /// Oldest WAL the slot still needs: the server keeps WAL from here.
    pub restart_lsn: Option<Lsn>,
    /// What the consumer confirmed (logical slots).
    pub confirmed_flush_lsn: Option<Lsn>,
    /// WAL written since `confirmed_flush_lsn` (or `restart_lsn` for physical slots): what the
    /// consumer has still to read.
    pub lag_bytes: Option<i64>,
    /// WAL held back for this slot: written since `restart_lsn`.
    pub retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+; `None` before).
    pub wal_status: Option<String>,
}

/// First server version (`server_version_num`) with `pg_replication_slots.wal_status`.
const WAL_STATUS_VERSION: i32 = 130_000;

/// Every replication slot of the server, by name. Lag is measured from
/// `pg_current_wal_lsn()`, or on a standby (where logical slots exist from PostgreSQL 16) from
/// `pg_last_wal_replay_lsn()`.
pub async fn list_slots(client: &Client) -> Result<Vec<SlotStatus>> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read server_version_num".into(),
            error,
        })?
        .get(0);
    let wal_status = if version >= WAL_STATUS_VERSION {
        "wal_status"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "WITH head AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                                   ELSE pg_current_wal_lsn() END AS lsn) \
         SELECT slot_name::text, slot_type::text, plugin::text, database::text, temporary, \
                active, active_pid, restart_lsn::text, confirmed_flush_lsn::text, \
                pg_wal_lsn_diff(head.lsn, coalesce(confirmed_flush_lsn, restart_lsn))::bigint, \
                pg_wal_lsn_diff(head.lsn, restart_lsn)::bigint, {wal_status} \
         FROM pg_replication_slots, head ORDER BY slot_name"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot list replication slots".into(),
            error,
        })?;
    let lsn = |text: Option<String>| text.and_then(|s| s.parse::<Lsn>().ok());
    Ok(rows
        .iter()
        .map(|row| SlotStatus {
            name: row.get(0),
            slot_type: row.get(1),
            plugin: row.get(2),
            database: row.get(3),
            temporary: row.get(4),
            active: row.get(5),
            active_pid: row.get(6),
            restart_lsn: lsn(row.get(7)),
            confirmed_flush_lsn: lsn(row.get(8)),
            lag_bytes: row.get(9),
            retained_bytes: row.get(10),
            wal_status: row.get(11),
        })
        .collect())
}

/// How often slot creation looks for the transactions it waits for.
const BLOCKER_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A session that slot creation waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub pid: i32,
    pub state: Option<String>,
    pub xact_start: Option<String>,
    pub application_name: Option<String>,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PID {} (state {}, transaction started {}, application {:?})",
            self.pid,
            self.state.as_deref().unwrap_or("?"),
            self.xact_start.as_deref().unwrap_or("?"),
            self.application_name.as_deref().unwrap_or("")
        )
    }
}

fn describe_blockers(blockers: &[Blocker]) -> String {
    blockers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The sessions whose transactions the backend `pid` waits for.
pub async fn blockers_of(client: &Client, pid: i32) -> Result<Vec<Blocker>> {
    let rows = client
        .query(
            "SELECT a.pid, a.state, a.xact_start::text, a.application_name \
             FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid",
            &[&pid],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot look up the sessions slot creation waits for".into(),
            error,
        })?;
    Ok(rows
        .iter()
        .map(|row| Blocker {
            pid: row.get(0),
            state: row.get(1),
            xact_start: row.get(2),
            application_name: row.get(3),
        })
        .collect())
}

/// Warns when `max_slot_wal_keep_size` is set: a snapshot that takes longer than the server
/// needs to write that much WAL invalidates the new slot, and the whole snapshot is wasted.
pub async fn warn_if_wal_keep_size_limited(client: &Client, slot: &str) -> Result<()> {
    let row = client
        .query_one("SELECT current_setting('max_slot_wal_keep_size')", &[])
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read max_slot_wal_keep_size".into(),
            error,
        })?;
    let value: String = row.get(0);
    if value != "-1" {
        tracing::warn!(
            slot,
            max_slot_wal_keep_size = %value,
            "max_slot_wal_keep_size is set: if the server writes more WAL than this while the \
             snapshot runs, it invalidates the slot (wal_status = lost) and pgseam must start over; \
             raise it or set it to -1 for the initial snapshot"
        );
    }
    Ok(())
}

/// Creates the slot with an exported snapshot. `connection` must then stay idle while the
/// snapshot is in use. While the server waits for running transactions, the blockers are
/// looked up on `client` and logged; after `timeout` the creation is abandoned with an error
/// naming them (the caller must then drop `connection`).
pub async fn create_slot_exporting_snapshot(
    connection: &mut ReplicationConnection,
    client: &Client,
    slot: &str,
    timeout: Duration,
) -> Result<CreatedSlot> {
    let command = format!(
        "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
        quote_identifier(slot)
    );
    create_with(connection, client, slot, &command, timeout).await
}

/// As [`create_slot_exporting_snapshot`], but a `TEMPORARY` slot: the server drops it when
/// `connection` closes (or fails), so nothing is left behind. `pgseam verify` uses it to fix a
/// comparison point: the consistent point and a snapshot that sees exactly the transactions
/// committed before it.
pub async fn create_temporary_slot_exporting_snapshot(
    connection: &mut ReplicationConnection,
    client: &Client,
    slot: &str,
    timeout: Duration,
) -> Result<CreatedSlot> {
    let command = format!(
        "CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')",
        quote_identifier(slot)
    );
    create_with(connection, client, slot, &command, timeout).await
}

async fn create_with(
    connection: &mut ReplicationConnection,
    client: &Client,
    slot: &str,
    command: &str,
    timeout: Duration,
) -> Result<CreatedSlot> {
    let walsender_pid = connection.backend_pid();
    let create = connection.simple_query(command);
    tokio::pin!(create);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut poll = tokio::time::interval_at(
        tokio::time::Instant::now() + BLOCKER_POLL_INTERVAL,
        BLOCKER_POLL_INTERVAL,
    );
    let mut blockers = Vec::new();
    let rows = loop {
        tokio::select! {
            rows = &mut create => break rows?,
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(pid) = walsender_pid {
                    blockers = blockers_of(client, pid).await.unwrap_or(blockers);
                }
                return Err(SourceError::Setup(format!(
                    "creating slot `{slot}` did not finish within {timeout:?} (database.query.timeout.ms): \
                     it waits for transactions that were running when it started to end: {}. End or \
                     cancel them (SELECT pg_cancel_backend(pid)), then restart",
                    if blockers.is_empty() { "none found".to_owned() } else { describe_blockers(&blockers) }
                )));
            }
            _ = poll.tick() => {
                if let Some(pid) = walsender_pid {
                    blockers = blockers_of(client, pid).await?;
                    if !blockers.is_empty() {
                        tracing::warn!(
                            slot,
                            blockers = %describe_blockers(&blockers),
                            "slot creation is waiting for running transactions to end"
                        );
                    }
                }
            }
        }
    };
    // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
    let row = rows
        .first()
        .ok_or_else(|| SourceError::Protocol("CREATE_REPLICATION_SLOT returned no row".into()))?;
    let consistent_point = row
        .get(1)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            SourceError::Protocol("CREATE_REPLICATION_SLOT: no consistent point".into())
        })?;
    let snapshot_name = row
        .get(2)
        .and_then(|v| v.clone())
        .ok_or_else(|| SourceError::Protocol("CREATE_REPLICATION_SLOT: no snapshot name".into()))?;
    Ok(CreatedSlot {
        consistent_point,
        snapshot_name,
    })
}

/// Waits until no other connection holds the slot: `retries` more looks, `delay` apart
/// (Debezium's `slot.max.retries` / `slot.retry.delay.ms`). Returns the slot's state, or an
/// error naming the PID that still holds it.
pub async fn wait_until_inactive(
    client: &Client,
    slot: &str,
    retries: u32,
    delay: Duration,
) -> Result<Option<SlotInfo>> {
    let mut attempt = 0;
    loop {
        let info = find_slot(client, slot).await?;
        let Some(pid) = info.as_ref().and_then(|i| i.active_pid) else {
            return Ok(info);
        };
        if attempt >= retries {
            let holder = client
                .query_opt(
                    "SELECT application_name, client_addr::text, backend_start::text \
                     FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .ok()
                .flatten()
                .map(|row| {
                    format!(
                        " (application {:?}, client {}, connected since {})",
                        row.get::<_, Option<String>>(0).unwrap_or_default(),
                        row.get::<_, Option<String>>(1)
                            .unwrap_or_else(|| "local".into()),
                        row.get::<_, Option<String>>(2).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            return Err(SourceError::SlotInUse {
                slot: slot.to_owned(),
                pid,
                message: format!(
                    "replication slot `{slot}` is in use by PID {pid}{holder}, still after {retries} \
                     retries {delay:?} apart (slot.max.retries, slot.retry.delay.ms); stop the other \
                     consumer or terminate it with SELECT pg_terminate_backend({pid})"
                ),
            });
        }
        attempt += 1;
        tracing::warn!(
            slot,
            pid,
            attempt,
            retries,
            delay_ms = delay.as_millis() as u64,
            "replication slot is in use by another connection; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Refuses a slot whose WAL is gone.
pub fn check_not_lost(slot: &str, info: &SlotInfo) -> Result<()> {
    if info.wal_status.as_deref() == Some("lost") {
        return Err(SourceError::SlotLost {
            slot: slot.to_owned(),
        });
    }
    Ok(())
}

pub async fn drop_slot(client: &Client, slot: &str) -> Result<()> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot drop slot {slot}"),
            error,
        })?;
    Ok(())
}

/// The `START_REPLICATION` command for pgoutput.
pub fn start_replication_command(
    slot: &str,
    start: Lsn,
    publication: &str,
    protocol_version: u32,
) -> String {
    format!(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '{}', publication_names {}, messages 'true')",
        quote_identifier(slot),
        start,
        protocol_version,
        quote_literal(&quote_identifier(publication)),
    )
}
