//! `pgseam validate`: the configuration check, then everything the connector will need from
//! the PostgreSQL server, checked before it is needed, each failure with its fix.
//!
//! The checks, per connector, in the order a start would meet them:
//!
//! | check | fails when | why it matters |
//! |---|---|---|
//! | configuration | any config error (all reported at once) | nothing starts |
//! | connection | the query session cannot connect or authenticate | nothing starts |
//! | server version | PostgreSQL < 14 | pgseam asks pgoutput for logical messages (`messages 'true'`, 14+) |
//! | `wal_level` | not `logical` | no logical decoding at all |
//! | replication privilege | neither superuser, `REPLICATION`, nor member of `rds_replication` | the walsender refuses the role |
//! | replication connection | a `replication=database` session cannot start (`IDENTIFY_SYSTEM`) | pg_hba.conf or privilege; logical replication matches the database name in pg_hba.conf, not the `replication` keyword |
//! | replication slot | the slot exists with another plugin or database, or its WAL is lost; or it does not exist and no slot is free (`max_replication_slots`) | the slot cannot be used or created |
//! | WAL retention | (warning) `max_slot_wal_keep_size` is limited | a connector that falls that far behind loses its slot |
//! | WAL senders | every `max_wal_senders` walsender is in use | the replication connection is refused |
//! | publication | missing with `publication.autocreate.mode=disabled`; missing `all_tables` without superuser; `filtered` without ownership of the tables (or of an existing publication) or without `CREATE` on the database | creating or altering it fails at start |
//! | captured tables | none selected (warning); filtered tables the publication does not publish (warning) | nothing, or less than expected, is captured |
//! | `SELECT` | a captured table (or its schema) is not readable | the snapshot fails |
//! | replica identity | a captured table has neither a primary key nor `REPLICA IDENTITY FULL`/`INDEX` | once published, PostgreSQL rejects the application's UPDATE and DELETE on it |
//!
//! A check that needs a connection is skipped (and says so) when the connection fails. Nothing
//! is changed on the server: the checks read catalogs and settings, and the replication
//! session only runs `IDENTIFY_SYSTEM`. `--offline` stops after the configuration check.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use pgseam_connector_pg::catalog::{self, quote_identifier, TableIdentity};
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::SourceError;
use pgseam_connector_pg::{publication, slot};
use tokio_postgres::Client;

use crate::config::{self, ConnectorConfig, PublicationAutocreateMode};

/// Oldest PostgreSQL pgseam streams from: `messages 'true'` in `START_REPLICATION` is 14+.
const MIN_SERVER_VERSION: i32 = 140_000;
/// How many table names a check lists before "and N more".
const MAX_LISTED: usize = 10;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but probably not as intended.
    Warn,
    /// The connector would fail (at start, or later).
    Fail,
    /// Not run, because an earlier check failed.
    Skipped,
}

/// One check of one connector.
#[derive(Clone, Debug)]
pub struct Check {
    pub status: Status,
    pub name: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do, for `Warn` and `Fail`.
    pub fix: Option<String>,
}

/// The checks of one connector.
#[derive(Clone, Debug)]
pub struct ConnectorReport {
    pub name: String,
    /// `user@host:port/db slot … publication …`.
    pub target: String,
    pub checks: Vec<Check>,
}

/// Every connector's checks.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub connectors: Vec<ConnectorReport>,
}

impl Report {
    /// True if some check failed.
    pub fn failed(&self) -> bool {
        self.connectors
            .iter()
            .flat_map(|c| &c.checks)
            .any(|c| c.status == Status::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.connectors {
            writeln!(f, "connector {:?} ({})", c.name, c.target)?;
            for check in &c.checks {
                let tag = match check.status {
                    Status::Ok => "ok  ",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                    Status::Skipped => "skip",
                };
                writeln!(f, "  [{tag}] {}: {}", check.name, check.detail)?;
                if let Some(fix) = &check.fix {
                    for (i, line) in fix.lines().enumerate() {
                        let lead = if i == 0 { "fix:" } else { "    " };
                        writeln!(f, "         {lead} {line}")?;
                    }
                }
            }
            let failed = c.checks.iter().filter(|c| c.status == Status::Fail).count();
            let warned = c.checks.iter().filter(|c| c.status == Status::Warn).count();
            writeln!(
                f,
                "  => {}",
                match (failed, warned) {
                    (0, 0) => "OK".to_owned(),
                    (0, w) => format!("OK, {w} warning{}", plural(w)),
                    (n, w) => format!("{n} check{} failed, {w} warning{}", plural(n), plural(w)),
                }
            )?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            status: Status::Ok,
            name,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Warn,
            name,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Fail,
            name,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skipped(name: &'static str, why: &str) -> Self {
        Check {
            status: Status::Skipped,
            name,
            detail: format!("not checked: {why}"),
            fix: None,
        }
    }
}

/// `pgseam validate`: the files (an error listing every problem when they do not load), then
/// unless `offline` the server checks of each connector.
pub async fn run(worker: &Path, connectors: &[PathBuf], offline: bool) -> anyhow::Result<Report> {
    let (worker, connectors) =
        config::load_standalone(worker, connectors).map_err(|errors| anyhow!("{errors}"))?;
    let mut report = Report::default();
    for connector in &connectors {
        let mut checks = Vec::new();
        match crate::standalone::pipeline_settings(&worker, connector) {
            Ok(_) => checks.push(Check::ok(
                "configuration",
                format!(
                    "worker and connector files are valid; topics {}.<schema>.<table>",
                    connector.topic_prefix
                ),
            )),
            Err(err) => checks.push(Check::fail(
                "configuration",
                format!("{err:#}"),
                "correct the connector or worker file",
            )),
        }
        if !offline {
            server_checks(connector, &mut checks).await;
        }
        report.connectors.push(ConnectorReport {
            name: connector.name.clone(),
            target: format!(
                "{}@{}:{}/{}, slot {}, publication {}",
                connector.database_user,
                connector.database_hostname,
                connector.database_port,
                connector.database_dbname,
                connector.slot_name,
                connector.publication_name
            ),
            checks,
        });
    }
    Ok(report)
}

/// The names of the checks after the connection, for "skipped" lines.
const SERVER_CHECKS: [&str; 11] = [
    "server version",
    "wal_level",
    "replication privilege",
    "replication connection",
    "replication slot",
    "WAL retention",
    "WAL senders",
    "publication",
    "captured tables",
    "SELECT privilege",
    "replica identity",
];

async fn server_checks(connector: &ConnectorConfig, checks: &mut Vec<Check>) {
    let params =
        crate::standalone::connect_params(connector, format!("pgseam-validate-{}", connector.name));
    let client = match connect_query_session(&params).await {
        Ok(client) => {
            checks.push(Check::ok(
                "connection",
                format!(
                    "connected to {}:{} as {}",
                    connector.database_hostname, connector.database_port, connector.database_user
                ),
            ));
            client
        }
        Err(err) => {
            let fix = match &err {
                SourceError::Authentication { .. } | SourceError::PasswordRequired { .. } => {
                    format!(
                        "check database.user / database.password, and that pg_hba.conf has a line for user {} and database {} from this host",
                        connector.database_user, connector.database_dbname
                    )
                }
                SourceError::Tls { .. } => "check database.sslmode and the certificate files (database.sslrootcert, database.sslcert, database.sslkey)".to_owned(),
                _ => "check database.hostname / database.port, that PostgreSQL listens there (listen_addresses, port), and that pg_hba.conf lets this host in".to_owned(),
            };
            checks.push(Check::fail("connection", err.to_string(), fix));
            for name in SERVER_CHECKS {
                checks.push(Check::skipped(name, "no connection"));
            }
            return;
        }
    };
    if let Err(err) = checks_with(&client, connector, &params, checks).await {
        checks.push(Check::fail(
            "catalog queries",
            format!("{err:#}"),
            "the role needs to read pg_catalog (every role can by default); see the error",
        ));
    }
}

/// The role's privileges that matter here.
struct Role {
    superuser: bool,
    replication: bool,
    rds_replication: bool,
}

async fn checks_with(
    client: &Client,
    connector: &ConnectorConfig,
    params: &pgseam_connector_pg::ConnectParams,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let user = &connector.database_user;

    // Server version.
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await?;
    let (version_num, version): (i32, String) = (row.get(0), row.get(1));
    checks.push(if version_num >= MIN_SERVER_VERSION {
        Check::ok("server version", format!("PostgreSQL {version}"))
    } else {
        Check::fail(
            "server version",
            format!("PostgreSQL {version}; pgseam needs 14 or later (it asks pgoutput for logical decoding messages)"),
            "upgrade PostgreSQL to 14 or later",
        )
    });

    // wal_level.
    let level: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    checks.push(if level == "logical" {
        Check::ok("wal_level", "logical")
    } else {
        Check::fail(
            "wal_level",
            format!("`{level}`; logical decoding needs `logical`"),
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (on RDS/Aurora: rds.logical_replication = 1 in the parameter group; Cloud SQL: cloudsql.logical_decoding = on)",
        )
    });

    // Replication privilege.
    let row = client
        .query_one(
            "SELECT r.rolsuper, r.rolreplication, \
                    CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') \
                         THEN pg_has_role(current_user, 'rds_replication', 'MEMBER') ELSE false END \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await?;
    let role = Role {
        superuser: row.get(0),
        replication: row.get(1),
        rds_replication: row.get(2),
    };
    checks.push(if role.superuser {
        Check::ok("replication privilege", format!("{user} is a superuser"))
    } else if role.replication {
        Check::ok("replication privilege", format!("{user} has REPLICATION"))
    } else if role.rds_replication {
        Check::ok(
            "replication privilege",
            format!("{user} is a member of rds_replication"),
        )
    } else {
        Check::fail(
            "replication privilege",
            format!("role {user} has neither REPLICATION nor superuser"),
            format!(
                "ALTER ROLE {} WITH REPLICATION;   (on Amazon RDS/Aurora: GRANT rds_replication TO {};)",
                quote_identifier(user),
                quote_identifier(user)
            ),
        )
    });

    // A real replication session.
    checks.push(match replication_session(params).await {
        Ok(system) => Check::ok("replication connection", system),
        Err(err) => Check::fail(
            "replication connection",
            err.to_string(),
            format!(
                "the role needs REPLICATION (above), and pg_hba.conf must accept it for database {} (logical replication matches the database name, not the `replication` keyword)",
                connector.database_dbname
            ),
        ),
    });

    // Slot.
    checks.push(slot_check(client, connector).await?);

    // WAL retention (max_slot_wal_keep_size exists from PostgreSQL 13).
    if version_num >= 130_000 {
        let keep: String = client
            .query_one("SHOW max_slot_wal_keep_size", &[])
            .await?
            .get(0);
        checks.push(if keep.trim() == "-1" {
            Check::ok(
                "WAL retention",
                "max_slot_wal_keep_size = -1: the server keeps the WAL the slot needs",
            )
        } else {
            Check::warn(
                "WAL retention",
                format!("max_slot_wal_keep_size = {keep}: if the connector falls further behind (a long snapshot, an outage), the server invalidates its slot and the connector has to start over with a new snapshot"),
                "keep it above the WAL written during the longest expected snapshot or outage, or -1 (unlimited); watch the lag with `pgseam slot list`",
            )
        });
    }

    // WAL senders (the replication session above is closed by now).
    let row = client
        .query_one(
            "SELECT current_setting('max_wal_senders')::int, \
                    (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender')",
            &[],
        )
        .await?;
    let (max_senders, senders): (i32, i32) = (row.get(0), row.get(1));
    checks.push(if senders < max_senders {
        Check::ok(
            "WAL senders",
            format!("{senders} of max_wal_senders {max_senders} in use"),
        )
    } else {
        Check::fail(
            "WAL senders",
            format!("all {max_senders} WAL senders (max_wal_senders) are in use"),
            "raise max_wal_senders (restart needed) or stop an unused replication consumer",
        )
    });

    // Publication and captured tables.
    let filtered: Vec<TableIdentity> = catalog::list_user_tables(client)
        .await?
        .into_iter()
        .filter(|t| connector.table_filter.includes(&t.schema, &t.table))
        .collect();
    let captured = publication_checks(client, connector, &role, filtered, checks).await?;

    // SELECT on the captured tables (and USAGE on their schemas).
    let oids: Vec<u32> = captured.iter().map(|t| t.oid).collect();
    let rows = client
        .query(
            "SELECT c.oid, has_schema_privilege(c.relnamespace, 'USAGE'), \
                    has_table_privilege(c.oid, 'SELECT') \
             FROM pg_class c WHERE c.oid = ANY($1)",
            &[&oids],
        )
        .await?;
    let mut unreadable = Vec::new();
    for row in &rows {
        let (oid, usage, select): (u32, bool, bool) = (row.get(0), row.get(1), row.get(2));
        if !(usage && select) {
            if let Some(t) = captured.iter().find(|t| t.oid == oid) {
                unreadable.push((t, usage));
            }
        }
    }
    checks.push(if unreadable.is_empty() {
        Check::ok(
            "SELECT privilege",
            format!(
                "{user} can read the {} captured table{}",
                captured.len(),
                plural(captured.len())
            ),
        )
    } else {
        let mut fix = Vec::new();
        let mut schemas: Vec<&str> = unreadable
            .iter()
            .filter(|(_, usage)| !usage)
            .map(|(t, _)| t.schema.as_str())
            .collect();
        schemas.dedup();
        for schema in schemas {
            fix.push(format!(
                "GRANT USAGE ON SCHEMA {} TO {};",
                quote_identifier(schema),
                quote_identifier(user)
            ));
        }
        fix.push(format!(
            "GRANT SELECT ON {} TO {};",
            unreadable
                .iter()
                .map(|(t, _)| qualified(t))
                .collect::<Vec<_>>()
                .join(", "),
            quote_identifier(user)
        ));
        Check::fail(
            "SELECT privilege",
            format!(
                "{user} cannot read {}: the snapshot would fail",
                listed(unreadable.iter().map(|(t, _)| t.qualified_name()))
            ),
            fix.join("\n"),
        )
    });

    // Replica identity.
    let lacking: Vec<&TableIdentity> = captured
        .iter()
        .filter(|t| t.lacks_replica_identity())
        .collect();
    checks.push(if lacking.is_empty() {
        let full = captured.iter().filter(|t| t.replica_identity == 'f').count();
        Check::ok(
            "replica identity",
            format!(
                "every captured table has a primary key or a replica identity ({full} with REPLICA IDENTITY FULL)"
            ),
        )
    } else {
        Check::fail(
            "replica identity",
            format!(
                "{} ha{} no primary key and no usable replica identity: once published, PostgreSQL rejects UPDATE and DELETE on {}",
                listed(lacking.iter().map(|t| t.qualified_name())),
                if lacking.len() == 1 { "s" } else { "ve" },
                if lacking.len() == 1 { "it" } else { "them" }
            ),
            lacking
                .iter()
                .map(|t| format!("ALTER TABLE {} REPLICA IDENTITY FULL;   (or add a primary key)", qualified(t)))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    });
    Ok(())
}

/// Connects with the replication protocol and runs `IDENTIFY_SYSTEM`.
async fn replication_session(
    params: &pgseam_connector_pg::ConnectParams,
) -> Result<String, SourceError> {
    let mut replication = ReplicationConnection::connect(params).await?;
    let rows = replication.simple_query("IDENTIFY_SYSTEM").await?;
    let encrypted = replication.is_encrypted();
    replication.close().await?;
    let position = rows
        .first()
        .and_then(|r| r.get(2).cloned().flatten())
        .unwrap_or_default();
    Ok(format!(
        "IDENTIFY_SYSTEM answered (WAL at {position}{})",
        if encrypted { ", TLS" } else { "" }
    ))
}

async fn slot_check(client: &Client, connector: &ConnectorConfig) -> anyhow::Result<Check> {
    let name = "replication slot";
    let slot_name = &connector.slot_name;
    let row = client
        .query_one(
            "SELECT current_setting('max_replication_slots')::int, \
                    (SELECT count(*)::int FROM pg_replication_slots)",
            &[],
        )
        .await?;
    let (max_slots, used): (i32, i32) = (row.get(0), row.get(1));
    let capacity = format!("{used} of max_replication_slots {max_slots} in use");
    let Some(info) = slot::find_slot(client, slot_name).await? else {
        return Ok(if used < max_slots {
            Check::ok(
                name,
                format!("`{slot_name}` does not exist yet and will be created; {capacity}"),
            )
        } else {
            Check::fail(
                name,
                format!("`{slot_name}` does not exist and every slot is taken ({capacity})"),
                "drop an unused slot (`pgseam slot list` shows them; `pgseam slot drop`), or raise max_replication_slots (restart needed)",
            )
        });
    };
    if info.plugin.as_deref() != Some("pgoutput") {
        return Ok(Check::fail(
            name,
            format!(
                "`{slot_name}` exists with plugin {}, not pgoutput",
                info.plugin.as_deref().unwrap_or("none (a physical slot)")
            ),
            "choose another slot.name, or drop that slot if nothing uses it",
        ));
    }
    if info.database.as_deref() != Some(connector.database_dbname.as_str()) {
        return Ok(Check::fail(
            name,
            format!(
                "`{slot_name}` belongs to database {}, not {}",
                info.database.as_deref().unwrap_or("?"),
                connector.database_dbname
            ),
            "choose another slot.name (slot names are unique per server)",
        ));
    }
    if info.wal_status.as_deref() == Some("lost") {
        return Ok(Check::fail(
            name,
            format!("`{slot_name}` has lost WAL it still needed (wal_status = lost): it can never stream again"),
            "drop the slot (`pgseam slot drop`), reset the connector's offset, and start over with a new snapshot; consider raising max_slot_wal_keep_size",
        ));
    }
    let at = info
        .confirmed_flush_lsn
        .map(|l| format!(", confirmed up to {l}"))
        .unwrap_or_default();
    Ok(match info.active_pid {
        Some(pid) => Check::warn(
            name,
            format!("`{slot_name}` exists and is active (PID {pid}){at}: another consumer reads it now"),
            format!(
                "stop that consumer before starting this connector (pgseam waits slot.max.retries × slot.retry.delay.ms for the slot, then fails); or, if the session is stale: SELECT pg_terminate_backend({pid});"
            ),
        ),
        None => Check::ok(name, format!("`{slot_name}` exists, not active{at}; {capacity}")),
    })
}

/// The publication checks; returns the tables the connector would capture.
async fn publication_checks(
    client: &Client,
    connector: &ConnectorConfig,
    role: &Role,
    filtered: Vec<TableIdentity>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<Vec<TableIdentity>> {
    let name = "publication";
    let publication = &connector.publication_name;
    let user = &connector.database_user;
    let mode = connector.publication_autocreate_mode;
    let mode_text = match mode {
        PublicationAutocreateMode::AllTables => "all_tables",
        PublicationAutocreateMode::Filtered => "filtered",
        PublicationAutocreateMode::NoTables => "no_tables",
        PublicationAutocreateMode::Disabled => "disabled",
    };
    let row = client
        .query_opt(
            "SELECT p.puballtables, p.pubupdate, p.pubdelete, pg_get_userbyid(p.pubowner)::text, \
                    pg_has_role(p.pubowner, 'USAGE') \
             FROM pg_publication p WHERE p.pubname = $1",
            &[publication],
        )
        .await?;
    let create_on_db: bool = client
        .query_one(
            "SELECT has_database_privilege(current_database(), 'CREATE')",
            &[],
        )
        .await?
        .get(0);
    // Tables the role does not own (filtered mode needs ownership to publish them).
    let not_owned = if role.superuser {
        Vec::new()
    } else {
        let oids: Vec<u32> = filtered.iter().map(|t| t.oid).collect();
        let rows = client
            .query(
                "SELECT c.oid FROM pg_class c WHERE c.oid = ANY($1) AND NOT pg_has_role(c.relowner, 'USAGE')",
                &[&oids],
            )
            .await?;
        let oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
        filtered
            .iter()
            .filter(|t| oids.contains(&t.oid))
            .cloned()
            .collect::<Vec<_>>()
    };
    let create_statement = |tables: &[TableIdentity]| {
        format!(
            "CREATE PUBLICATION {} FOR TABLE {};",
            quote_identifier(publication),
            if tables.is_empty() {
                "…".to_owned()
            } else {
                tables.iter().map(qualified).collect::<Vec<_>>().join(", ")
            }
        )
    };
    let ownership_fix = |tables: &[TableIdentity]| {
        let mut lines: Vec<String> = tables
            .iter()
            .map(|t| {
                format!(
                    "ALTER TABLE {} OWNER TO {};",
                    qualified(t),
                    quote_identifier(user)
                )
            })
            .collect();
        lines.push(format!(
            "or have a superuser (or the owner) create the publication and set publication.autocreate.mode=disabled: {}",
            create_statement(&filtered)
        ));
        lines.join("\n")
    };

    let captured = match row {
        None => {
            match mode {
                PublicationAutocreateMode::Disabled => checks.push(Check::fail(
                    name,
                    format!("`{publication}` does not exist and publication.autocreate.mode=disabled"),
                    create_statement(&filtered),
                )),
                PublicationAutocreateMode::AllTables if !role.superuser => checks.push(Check::fail(
                    name,
                    format!("`{publication}` does not exist; publication.autocreate.mode=all_tables creates it FOR ALL TABLES, which needs a superuser, and {user} is not one"),
                    format!(
                        "create it as a superuser (CREATE PUBLICATION {} FOR ALL TABLES;), or set publication.autocreate.mode=filtered (needs ownership of the captured tables)",
                        quote_identifier(publication)
                    ),
                )),
                PublicationAutocreateMode::Filtered if filtered.is_empty() => checks.push(Check::fail(
                    name,
                    format!("`{publication}` does not exist and publication.autocreate.mode=filtered, but the table lists select no table to create it with"),
                    "check table.include.list / schema.include.list",
                )),
                PublicationAutocreateMode::Filtered | PublicationAutocreateMode::NoTables
                    if !create_on_db && !role.superuser =>
                {
                    checks.push(Check::fail(
                        name,
                        format!("`{publication}` does not exist, and {user} may not create it (no CREATE privilege on database {})", connector.database_dbname),
                        format!(
                            "GRANT CREATE ON DATABASE {} TO {};   (or create the publication yourself: {})",
                            quote_identifier(&connector.database_dbname),
                            quote_identifier(user),
                            create_statement(&filtered)
                        ),
                    ))
                }
                PublicationAutocreateMode::Filtered if !not_owned.is_empty() => checks.push(Check::fail(
                    name,
                    format!(
                        "`{publication}` does not exist; publication.autocreate.mode=filtered creates it for the captured tables, which needs ownership, and {user} does not own {}",
                        listed(not_owned.iter().map(TableIdentity::qualified_name))
                    ),
                    ownership_fix(&not_owned),
                )),
                _ => checks.push(Check::ok(
                    name,
                    format!("`{publication}` does not exist yet; it will be created (publication.autocreate.mode={mode_text})"),
                )),
            }
            match mode {
                PublicationAutocreateMode::NoTables => Vec::new(),
                _ => filtered.clone(),
            }
        }
        Some(row) => {
            let (all_tables, updates, deletes, owner, owned): (bool, bool, bool, String, bool) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let published = catalog::publication_tables(client, publication).await?;
            partition_checks(client, connector, &filtered, &published, checks).await?;
            if mode == PublicationAutocreateMode::Filtered {
                // pgseam resets it to the filtered tables: ALTER PUBLICATION … SET TABLE.
                if !owned && !role.superuser {
                    checks.push(Check::fail(
                        name,
                        format!("`{publication}` exists, owned by {owner}; publication.autocreate.mode=filtered alters it to the captured tables, which only its owner can"),
                        format!(
                            "ALTER PUBLICATION {} OWNER TO {};   (or set publication.autocreate.mode=disabled and keep its tables yourself)",
                            quote_identifier(publication),
                            quote_identifier(user)
                        ),
                    ));
                } else if !not_owned.is_empty() {
                    checks.push(Check::fail(
                        name,
                        format!(
                            "publication.autocreate.mode=filtered sets `{publication}` to the captured tables, which needs ownership, and {user} does not own {}",
                            listed(not_owned.iter().map(TableIdentity::qualified_name))
                        ),
                        ownership_fix(&not_owned),
                    ));
                } else if filtered.is_empty() {
                    checks.push(Check::fail(
                        name,
                        format!("publication.autocreate.mode=filtered, but the table lists select no table to set `{publication}` to"),
                        "check table.include.list / schema.include.list",
                    ));
                } else {
                    checks.push(Check::ok(
                        name,
                        format!(
                            "`{publication}` exists and will be set to the {} captured table{}",
                            filtered.len(),
                            plural(filtered.len())
                        ),
                    ));
                }
                filtered.clone()
            } else {
                let kept = catalog::keep_published(filtered.clone(), &published);
                // A partitioned table or a partition is published under another name or not at
                // all by design (the "partitions" check covers it), never added by hand.
                let tree = publication::partition_tree(client).await?;
                let missing: Vec<&TableIdentity> = filtered
                    .iter()
                    .filter(|t| !kept.iter().any(|k| k.oid == t.oid))
                    .filter(|t| !t.partitioned && !tree.contains_key(&t.oid))
                    .collect();
                if !missing.is_empty() {
                    checks.push(Check::warn(
                        name,
                        format!(
                            "`{publication}` exists but does not publish {}, which the table lists select: {} not captured",
                            listed(missing.iter().map(|t| t.qualified_name())),
                            if missing.len() == 1 { "it is" } else { "they are" }
                        ),
                        format!(
                            "ALTER PUBLICATION {} ADD TABLE {};   (or narrow table.include.list)",
                            quote_identifier(publication),
                            missing.iter().map(|t| qualified(t)).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                } else if !updates || !deletes {
                    checks.push(Check::warn(
                        name,
                        format!(
                            "`{publication}` does not publish {}: those changes are not captured",
                            match (updates, deletes) {
                                (false, false) => "UPDATE and DELETE",
                                (false, true) => "UPDATE",
                                _ => "DELETE",
                            }
                        ),
                        format!(
                            "ALTER PUBLICATION {} SET (publish = 'insert, update, delete, truncate');",
                            quote_identifier(publication)
                        ),
                    ));
                } else {
                    checks.push(Check::ok(
                        name,
                        format!(
                            "`{publication}` exists ({}) and publishes the {} selected table{}",
                            if all_tables {
                                "FOR ALL TABLES"
                            } else {
                                "a table list"
                            },
                            kept.len(),
                            plural(kept.len())
                        ),
                    ));
                }
                kept
            }
        }
    };
    checks.push(if captured.is_empty() {
        Check::warn(
            "captured tables",
            "no table would be captured",
            "check table.include.list / schema.include.list (regexes matched against `schema.table`) and the publication's tables",
        )
    } else {
        Check::ok(
            "captured tables",
            format!(
                "{} table{}: {}",
                captured.len(),
                plural(captured.len()),
                listed(captured.iter().map(TableIdentity::qualified_name))
            ),
        )
    });
    Ok(captured)
}

/// An existing publication's partition routing: `publish.via.partition.root` against its
/// `publish_via_partition_root`, and selected tables whose changes it would send under tables
/// the filters exclude (both start errors, see `pgseam_connector_pg::publication`).
async fn partition_checks(
    client: &Client,
    connector: &ConnectorConfig,
    filtered: &[TableIdentity],
    published: &[(String, String)],
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let name = "partitions";
    let publication = &connector.publication_name;
    let via_root = publication::publishes_via_root(client, publication)
        .await?
        .unwrap_or(false);
    if connector.publish_via_partition_root && !via_root {
        checks.push(Check::fail(
            name,
            format!("publish.via.partition.root=true, but `{publication}` publishes partitions as themselves (publish_via_partition_root = false)"),
            format!(
                "ALTER PUBLICATION {} SET (publish_via_partition_root = true);   (or set publish.via.partition.root=false)",
                quote_identifier(publication)
            ),
        ));
        return Ok(());
    }
    let tree = publication::partition_tree(client).await?;
    if !filtered.iter().any(|t| tree.contains_key(&t.oid)) {
        return Ok(());
    }
    checks.push(
        match publication::check_partition_routing(publication, filtered, published, &tree) {
            Ok(()) => Check::ok(
                name,
                format!(
                    "partitioned tables are published {} (publish_via_partition_root = {via_root})",
                    if via_root {
                        "under their root: one topic each"
                    } else {
                        "as their partitions: a topic per partition"
                    }
                ),
            ),
            Err(problem) => Check::fail(
                name,
                problem,
                "include the tables named above in table.include.list, or change publish_via_partition_root",
            ),
        },
    );
    Ok(())
}

fn qualified(t: &TableIdentity) -> String {
    format!(
        "{}.{}",
        quote_identifier(&t.schema),
        quote_identifier(&t.table)
    )
}

/// `a, b, c and 7 more`.
fn listed(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.collect();
    if names.len() <= MAX_LISTED {
        names.join(", ")
    } else {
        format!(
            "{} and {} more",
            names[..MAX_LISTED].join(", "),
            names.len() - MAX_LISTED
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_and_failure() {
        let mut report = Report::default();
        report.connectors.push(ConnectorReport {
            name: "inv".into(),
            target: "cdc@db:5432/shop".into(),
            checks: vec![
                Check::ok("wal_level", "logical"),
                Check::fail(
                    "replication privilege",
                    "no",
                    "ALTER ROLE cdc WITH REPLICATION;\nline two",
                ),
                Check::skipped("WAL senders", "no connection"),
            ],
        });
        assert!(report.failed());
        assert_eq!(
            report.to_string(),
            "connector \"inv\" (cdc@db:5432/shop)\n  [ok  ] wal_level: logical\n  [FAIL] replication privilege: no\n         fix: ALTER ROLE cdc WITH REPLICATION;\n              line two\n  [skip] WAL senders: not checked: no connection\n  => 1 check failed, 0 warnings\n"
        );
        report.connectors[0].checks.remove(1);
        assert!(!report.failed());
    }

    #[test]
    fn long_lists_are_cut() {
        let names = (0..12).map(|i| format!("t{i}"));
        assert_eq!(
            listed(names),
            "t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 and 2 more"
        );
    }
}
