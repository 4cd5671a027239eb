//! Catalog queries: server checks, captured tables, their columns and keys.
//!
//! pgoutput's Relation message names a table's columns and types but not their nullability,
//! defaults or enum labels, which Debezium's schemas carry; so table schemas are always read
//! from the catalog, here, on an ordinary connection.

use std::sync::Arc;

use pgseam_model::{ColumnSchema, TableSchema};
use tokio_postgres::Client;

use crate::error::{Result, SourceError};

/// A table's identity and whether PostgreSQL can replicate its UPDATEs and DELETEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableIdentity {
    pub oid: u32,
    pub schema: String,
    pub table: String,
    /// `pg_class.relreplident`: `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: char,
    pub has_primary_key: bool,
    /// A partitioned table (`relkind = 'p'`): it holds no rows itself; its leaf partitions do.
    /// Captured only when the publication publishes via the partition root (see
    /// `crate::publication`), and then read through its leaves.
    pub partitioned: bool,
}

impl TableIdentity {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// True when PostgreSQL will reject UPDATE and DELETE on this table once it is in a
    /// publication that publishes them.
    pub fn lacks_replica_identity(&self) -> bool {
        match self.replica_identity {
            'f' | 'i' => false,
            'd' => !self.has_primary_key,
            _ => true,
        }
    }
}

/// The server's `wal_sender_timeout` as this user sees it (`None`: 0, no timeout). Read on a
/// normal session with the same user and database as the replication connection, so per-role
/// and per-database settings apply as they do to our walsender.
pub async fn wal_sender_timeout(client: &Client) -> Result<Option<std::time::Duration>> {
    let row = client
        .query_one(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'",
            &[],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read wal_sender_timeout".into(),
            error,
        })?;
    let ms: i64 = row.get(0);
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms as u64)))
}

/// Fails with a clear message unless `wal_level` is `logical`.
pub async fn check_wal_level(client: &Client) -> Result<()> {
    let row = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read wal_level".into(),
            error,
        })?;
    let level: String = row.get(0);
    if level != "logical" {
        return Err(SourceError::Setup(format!(
            "PostgreSQL's wal_level is `{level}`, but logical decoding needs `logical`: set \
             wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and \
             restart PostgreSQL"
        )));
    }
    Ok(())
}

/// Ordinary tables and leaf partitions the user could capture, sorted by schema and name.
/// System schemas are excluded, as Debezium excludes them.
pub async fn list_user_tables(client: &Client) -> Result<Vec<TableIdentity>> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname, c.relname, c.relreplident::text, \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), \
                    c.relkind = 'p' \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
               AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' \
             ORDER BY n.nspname, c.relname",
            &[],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot list tables".into(),
            error,
        })?;
    Ok(rows
        .iter()
        .map(|row| TableIdentity {
            oid: row.get(0),
            schema: row.get(1),
            table: row.get(2),
            replica_identity: row.get::<_, String>(3).chars().next().unwrap_or('d'),
            has_primary_key: row.get(4),
            partitioned: row.get(5),
        })
        .collect())
}

/// Tables a publication publishes (leaf tables as PostgreSQL expands them).
pub async fn publication_tables(
    client: &Client,
    publication: &str,
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 \
             ORDER BY 1, 2",
            &[&publication],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot read the tables of publication {publication}"),
            error,
        })?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The tables of `tables` that the publication publishes (`published` as
/// [`publication_tables`] returns it): the captured tables.
pub fn keep_published(
    tables: Vec<TableIdentity>,
    published: &[(String, String)],
) -> Vec<TableIdentity> {
    tables
        .into_iter()
        .filter(|t| {
            published
                .iter()
                .any(|(s, n)| *s == t.schema && *n == t.table)
        })
        .collect()
}

/// Reads the schema of one table by OID: columns in attribute order, domains resolved to their
/// base type, enum labels, defaults and the primary key.
pub async fn load_table_schema(client: &Client, oid: u32) -> Result<Arc<TableSchema>> {
    let context = || format!("cannot read the schema of table with OID {oid}");
    let head = client
        .query_opt(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(|error| SourceError::Query { context: context(), error })?
        .ok_or_else(|| SourceError::Setup(format!("table with OID {oid} no longer exists")))?;
    let columns = client
        .query(
            "WITH RECURSIVE base(attnum, typ, depth) AS ( \
                 SELECT a.attnum, a.atttypid, 0 FROM pg_attribute a \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
               UNION ALL \
                 SELECT b.attnum, t.typbasetype, b.depth + 1 FROM base b JOIN pg_type t ON t.oid = b.typ \
                 WHERE t.typtype = 'd' AND b.depth < 16) \
             SELECT a.attname::text, a.atttypid, bt.oid, bt.typname::text, \
                    CASE WHEN dt.typtype = 'd' AND a.atttypmod = -1 THEN dt.typtypmod ELSE a.atttypmod END, \
                    NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), \
                    CASE WHEN bt.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e \
                         WHERE e.enumtypid = bt.oid ORDER BY e.enumsortorder) \
                         WHEN bt.typelem <> 0 AND bt.typlen = -1 \
                              AND (SELECT et.typtype FROM pg_type et WHERE et.oid = bt.typelem) = 'e' \
                         THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e \
                         WHERE e.enumtypid = bt.typelem ORDER BY e.enumsortorder) END, \
                    CASE WHEN a.attndims = 0 AND dt.typtype = 'd' THEN dt.typndims ELSE a.attndims END \
             FROM pg_attribute a \
             JOIN pg_type dt ON dt.oid = a.atttypid \
             JOIN LATERAL (SELECT typ FROM base WHERE base.attnum = a.attnum ORDER BY depth DESC LIMIT 1) b ON true \
             JOIN pg_type bt ON bt.oid = b.typ \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|error| SourceError::Query { context: context(), error })?;
    let columns: Vec<ColumnSchema> = columns
        .iter()
        .map(|row| ColumnSchema {
            name: row.get(0),
            type_oid: row.get(1),
            base_type_oid: row.get(2),
            type_name: row.get(3),
            type_modifier: row.get(4),
            nullable: row.get(5),
            default_expr: row.get(6),
            enum_values: row.get(7),
            dimensions: u32::try_from(row.get::<_, i32>(8)).unwrap_or(0),
        })
        .collect();
    let key_names: Vec<String> = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: context(),
            error,
        })?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let key_columns = key_names
        .iter()
        .filter_map(|name| columns.iter().position(|c| &c.name == name))
        .collect();
    Ok(Arc::new(TableSchema {
        relation_id: oid,
        schema: head.get::<_, String>(0).into(),
        table: head.get::<_, String>(1).into(),
        columns,
        key_columns,
    }))
}

/// Quotes an identifier for SQL (`"my ""table"""`).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL and replication commands.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
