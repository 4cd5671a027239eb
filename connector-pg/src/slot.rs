//! The logical replication slot.
//!
//! The slot is what makes the hand-off gap-free: `CREATE_REPLICATION_SLOT … (SNAPSHOT 'export')`
//! returns the consistent point C and the name of a snapshot that sees exactly the transactions
//! committed before C. Rows read under that snapshot plus the changes streamed from C are the
//! whole history, once. The exported snapshot lives only while the creating connection stays
//! idle, so that connection is kept aside until every snapshot reader has imported it.

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

/// Creates the slot with an exported snapshot. `connection` must then stay idle while the
/// snapshot is in use.
pub async fn create_slot_exporting_snapshot(
    connection: &mut ReplicationConnection,
    slot: &str,
) -> Result<CreatedSlot> {
    let rows = connection
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
            quote_identifier(slot)
        ))
        .await?;
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
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '{}', publication_names {})",
        quote_identifier(slot),
        start,
        protocol_version,
        quote_literal(&quote_identifier(publication)),
    )
}
