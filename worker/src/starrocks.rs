//! `pgseam starrocks`: StarRocks DDL and Routine Load jobs for the tables a connector captures.
//!
//! The user's pipeline is PostgreSQL → pgseam → Kafka → StarRocks Routine Load into Primary
//! Key tables. This module reads the captured tables' schemas from the source (the same
//! include/exclude lists and publication rules as the connector, without changing anything
//! in the database) and prints, per table:
//!
//! 1. `CREATE TABLE … PRIMARY KEY (…) DISTRIBUTED BY HASH(…)`: the PostgreSQL key columns
//!    first, in key order, as StarRocks requires; every other column nullable (see *Deletes*);
//!    a `__source_lsn` column filled from `source.lsn`.
//! 2. `CREATE ROUTINE LOAD` jobs reading `<topic.prefix>.<schema>.<table>` from
//!    `OFFSET_BEGINNING`, in one or both of two forms:
//!    - **`envelope`**: `"format" = "json", "envelope" = "debezium"`. StarRocks pull request
//!      #71537 ("Support debezium json load", merged into `main` on 2026-04-10) added this load
//!      property: it parses `payload`/`before`/`after`/`op` itself and requires a Primary Key
//!      table. It is not in the StarRocks 4.1.0 release notes (released 2026-04-13); the first
//!      release that ships it could not be confirmed here, so the output says "a StarRocks
//!      build that includes PR #71537". How it converts Debezium's temporal encodings (epoch
//!      days, epoch micro/milliseconds) is not documented in what was read: the output lists
//!      the affected columns.
//!    - **`jsonpaths`**, for every StarRocks with Primary Key tables: `jsonpaths` pick `op`,
//!      `after.<col>`, `before.<key>` and `source.lsn` into temporary columns; `COLUMNS(…)`
//!      derives each key as `coalesce(after.key, before.key)` (a delete has only `before`),
//!      converts Debezium's encodings (below), and sets `__op = if(op = 'd', 1, 0)` (StarRocks'
//!      upsert/delete column).
//!
//! # Value encodings (Debezium JSON → StarRocks)
//!
//! | PostgreSQL | Debezium JSON | StarRocks column | load expression |
//! |---|---|---|---|
//! | `date` | epoch days | `DATE` | `days_add('1970-01-01', d)` |
//! | `timestamp(0..3)` | epoch ms (`Timestamp`) | `DATETIME` | `from_unixtime(ms DIV 1000)` + `microseconds_add` |
//! | `timestamp(4..6)` | epoch µs (`MicroTimestamp`) | `DATETIME` | `from_unixtime(us DIV 1000000)` + `microseconds_add` |
//! | `timestamptz` | ISO-8601 string in UTC (`…Z`) | `DATETIME` (UTC) | `CAST(replace(replace(s,'T',' '),'Z','') AS DATETIME)` |
//! | `time` | ms or µs after midnight | `BIGINT` (unit in the comment) | as is |
//! | `json`, `jsonb`, `hstore` | a string holding JSON | `JSON` | `parse_json(s)` |
//!
//! `from_unixtime` uses the job's time zone, so every job sets `"timezone" = "UTC"`;
//! `from_unixtime` rejects negative input, so timestamps before 1970 load as NULL (and with
//! `strict_mode` the row is an error, which pauses the job rather than losing the value).
//!
//! # Deletes, tombstones, TOAST
//!
//! - A delete event has `after = null` and, under REPLICA IDENTITY DEFAULT, only the key
//!   columns in `before`. Every non-key StarRocks column is therefore nullable: a delete row
//!   must not be rejected for a NULL in a column PostgreSQL declares NOT NULL.
//! - With `tombstones.on.delete=true` (Debezium's default) each delete is followed by a record
//!   with a null value. Empty Kafka messages made Routine Load lose data (StarRocks issue
//!   #8534, fixed by PR #8536 in July 2022); the output tells the user to set
//!   `tombstones.on.delete=false`.
//! - Under REPLICA IDENTITY DEFAULT an UPDATE that leaves a TOASTed value unchanged carries the
//!   placeholder `__debezium_unavailable_value` instead: loaded as an upsert it would overwrite
//!   the real value. Tables with such columns get a warning recommending REPLICA IDENTITY FULL.
//!
//! Nothing here runs StarRocks: the statements are checked for shape by tests, not executed.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use pgseam_connector_pg::catalog::{self, TableIdentity};
use pgseam_connector_pg::connection::connect_query_session;
use pgseam_model::{ColumnSchema, TableSchema};

use crate::config::{self, ConnectorConfig, DecimalHandlingMode, PublicationAutocreateMode};

/// StarRocks' longest VARCHAR, in bytes.
const MAX_VARCHAR_BYTES: u64 = 1_048_576;
/// Bytes per character reserved for PostgreSQL lengths: StarRocks VARCHAR lengths are bytes,
/// PostgreSQL's are characters, and UTF-8 needs up to 4 bytes per character.
const UTF8_MAX_BYTES_PER_CHAR: u64 = 4;
/// StarRocks' default limit on the encoded length of a Primary Key (bytes): text keys get
/// this length, and longer keys fail to load, which the column comment says.
const PRIMARY_KEY_MAX_BYTES: u64 = 128;
/// PostgreSQL enum labels are at most NAMEDATALEN - 1 = 63 bytes.
const ENUM_LABEL_MAX_BYTES: u64 = 63;
/// Decimal precision StarRocks supports (DECIMAL128).
const MAX_DECIMAL_PRECISION: u32 = 38;
/// The column that records each event's `source.lsn` in the StarRocks table.
pub const LSN_COLUMN: &str = "__source_lsn";
/// Prefix of the temporary columns the jsonpaths form reads before deriving real ones.
const RAW_PREFIX: &str = "__pgseam_";

/// Which Routine Load form(s) to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `"envelope" = "debezium"` (StarRocks builds that include PR #71537).
    Debezium,
    /// `jsonpaths` + `COLUMNS(…, __op = …)`, for every StarRocks version with Primary Key tables.
    Jsonpaths,
    /// Both, one commented as the alternative to the other.
    Both,
}

/// Debezium's `time.precision.mode`: how temporal values are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePrecisionMode {
    /// Debezium's default: precision ≤ 3 as milliseconds, otherwise microseconds.
    Adaptive,
    /// As adaptive, but `time` always in microseconds.
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's logical types: milliseconds throughout.
    Connect,
}

impl TimePrecisionMode {
    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("adaptive") => Ok(Self::Adaptive),
            Some("adaptive_time_microseconds") => Ok(Self::AdaptiveTimeMicroseconds),
            Some("connect") => Ok(Self::Connect),
            Some(other) => bail!("time.precision.mode `{other}` is not one of adaptive, adaptive_time_microseconds, connect"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::AdaptiveTimeMicroseconds => "adaptive_time_microseconds",
            Self::Connect => "connect",
        }
    }
}

/// Everything the statements depend on besides the table schemas.
#[derive(Clone, Debug)]
pub struct Settings {
    /// StarRocks database the tables and jobs are created in.
    pub database: String,
    pub topic_prefix: String,
    /// `kafka_broker_list`: the worker's `bootstrap.servers`.
    pub bootstrap_servers: String,
    pub decimal_mode: DecimalHandlingMode,
    pub time_mode: TimePrecisionMode,
    /// The value converter's `schemas.enable`: with it, the envelope sits under `payload`.
    pub value_schemas_enable: bool,
    pub tombstones_on_delete: bool,
    /// `pgseam.array.multidimensional.mode=nested`: a column declared with n > 1 dimensions
    /// is `ARRAY<…>` nested n deep, as its values are.
    pub nested_arrays: bool,
    pub format: Format,
    /// `replication_num` of the tables; `None` leaves StarRocks' default (3).
    pub replication_num: Option<u32>,
}

/// A captured table as the generator needs it.
#[derive(Clone, Debug)]
pub struct CapturedTable {
    pub schema: Arc<TableSchema>,
    /// `pg_class.relreplident`.
    pub replica_identity: char,
}

/// How a raw JSON value becomes the column value in the jsonpaths form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    AsIs,
    EpochDays,
    EpochMillis,
    EpochMicros,
    IsoUtc,
    ParseJson,
}

impl Load {
    fn expression(self, raw: &str) -> String {
        match self {
            Load::AsIs => raw.to_owned(),
            Load::EpochDays => format!("days_add('1970-01-01', {raw})"),
            Load::EpochMillis => {
                format!("microseconds_add(from_unixtime({raw} DIV 1000), ({raw} % 1000) * 1000)")
            }
            Load::EpochMicros => {
                format!("microseconds_add(from_unixtime({raw} DIV 1000000), {raw} % 1000000)")
            }
            Load::IsoUtc => format!("CAST(replace(replace({raw}, 'T', ' '), 'Z', '') AS DATETIME)"),
            Load::ParseJson => format!("parse_json({raw})"),
        }
    }

    /// What the Debezium JSON carries, for the envelope form's caveat list.
    fn encoding(self) -> Option<&'static str> {
        match self {
            Load::AsIs => None,
            Load::EpochDays => Some("epoch days"),
            Load::EpochMillis => Some("epoch milliseconds"),
            Load::EpochMicros => Some("epoch microseconds"),
            Load::IsoUtc => Some("ISO-8601 UTC string"),
            Load::ParseJson => Some("JSON text in a string"),
        }
    }
}

/// One StarRocks column and how to load it.
#[derive(Clone, Debug)]
struct ColumnPlan {
    name: String,
    sr_type: String,
    key: bool,
    load: Load,
    comment: String,
}

/// Why a table cannot become a StarRocks Primary Key table fed by Routine Load.
#[derive(Debug)]
struct Skip(String);

/// StarRocks type for a PostgreSQL column, how to load it, and a comment.
fn map_type(column: &ColumnSchema, key: bool, settings: &Settings) -> Result<ColumnPlan, Skip> {
    let ty = column.type_name.as_str();
    let mut comment = format!("PostgreSQL {}", pg_type_display(column));
    if !column.nullable {
        comment.push_str(" NOT NULL");
    }
    let precision = column.length_or_precision();
    let (sr_type, load, note): (String, Load, Option<String>) =
        if let Some(element) = ty.strip_prefix('_') {
            match array_element(element) {
                Some(element) => {
                    let depth = if settings.nested_arrays {
                        column.dimensions.max(1)
                    } else {
                        1
                    };
                    let mut ty = element.to_string();
                    for _ in 0..depth {
                        ty = format!("ARRAY<{ty}>");
                    }
                    (ty, Load::AsIs, None)
                }
                None => (
                    "JSON".into(),
                    Load::AsIs,
                    Some("array loaded as a JSON array".into()),
                ),
            }
        } else if column.enum_values.is_some() {
            (
                format!("VARCHAR({ENUM_LABEL_MAX_BYTES})"),
                Load::AsIs,
                Some("enum label".into()),
            )
        } else {
            match ty {
                "int2" => ("SMALLINT".into(), Load::AsIs, None),
                "int4" => ("INT".into(), Load::AsIs, None),
                "int8" | "oid" => ("BIGINT".into(), Load::AsIs, None),
                "float4" => ("FLOAT".into(), Load::AsIs, None),
                "float8" => ("DOUBLE".into(), Load::AsIs, None),
                "bool" => ("BOOLEAN".into(), Load::AsIs, None),
                "numeric" => numeric_type(column.numeric_precision_scale(), settings.decimal_mode),
                "money" => numeric_type(Some((19, 2)), settings.decimal_mode),
                "text" | "xml" | "name" | "citext" | "inet" | "cidr" | "macaddr" | "macaddr8" => {
                    ("STRING".into(), Load::AsIs, None)
                }
                "varchar" | "bpchar" => match precision {
                    Some(n) => (
                        varchar(u64::from(n) * UTF8_MAX_BYTES_PER_CHAR),
                        Load::AsIs,
                        None,
                    ),
                    None => ("STRING".into(), Load::AsIs, None),
                },
                "uuid" => ("VARCHAR(36)".into(), Load::AsIs, None),
                "json" | "jsonb" | "hstore" => ("JSON".into(), Load::ParseJson, None),
                "bytea" => (
                    "STRING".into(),
                    Load::AsIs,
                    Some("base64 (binary.handling.mode=bytes)".into()),
                ),
                "date" => ("DATE".into(), Load::EpochDays, None),
                "timestamp" => {
                    let millis = settings.time_mode == TimePrecisionMode::Connect
                        || matches!(precision, Some(p) if p <= 3);
                    if millis {
                        ("DATETIME".into(), Load::EpochMillis, None)
                    } else {
                        ("DATETIME".into(), Load::EpochMicros, None)
                    }
                }
                "timestamptz" => (
                    "DATETIME".into(),
                    Load::IsoUtc,
                    Some("UTC: Debezium sends timestamptz converted to UTC".into()),
                ),
                "time" => {
                    let millis = match settings.time_mode {
                        TimePrecisionMode::Connect => true,
                        TimePrecisionMode::AdaptiveTimeMicroseconds => false,
                        TimePrecisionMode::Adaptive => matches!(precision, Some(p) if p <= 3),
                    };
                    let unit = if millis {
                        "milliseconds"
                    } else {
                        "microseconds"
                    };
                    (
                        "BIGINT".into(),
                        Load::AsIs,
                        Some(format!(
                            "{unit} after midnight (time.precision.mode={})",
                            settings.time_mode.as_str()
                        )),
                    )
                }
                "timetz" => (
                    "STRING".into(),
                    Load::AsIs,
                    Some("ISO-8601 time in UTC".into()),
                ),
                "interval" => (
                    "BIGINT".into(),
                    Load::AsIs,
                    Some("microseconds (interval.handling.mode=numeric)".into()),
                ),
                "point" => (
                    "JSON".into(),
                    Load::AsIs,
                    Some("Debezium Point struct {x, y, wkb, srid}".into()),
                ),
                other => (
                    "STRING".into(),
                    Load::AsIs,
                    Some(format!("type {other} loaded as its text form")),
                ),
            }
        };
    if let Some(note) = note {
        comment.push_str("; ");
        comment.push_str(&note);
    }
    let sr_type = if key {
        key_type(column, sr_type, &mut comment)?
    } else {
        sr_type
    };
    Ok(ColumnPlan {
        name: column.name.clone(),
        sr_type,
        key,
        load,
        comment,
    })
}

/// StarRocks Primary Key columns may be BOOLEAN, integers, DATE, DATETIME or strings.
fn key_type(column: &ColumnSchema, sr_type: String, comment: &mut String) -> Result<String, Skip> {
    let integral = ["BOOLEAN", "SMALLINT", "INT", "BIGINT", "DATE", "DATETIME"];
    if integral.contains(&sr_type.as_str()) {
        return Ok(sr_type);
    }
    if sr_type == "STRING" || sr_type.starts_with("VARCHAR(") {
        let length = sr_type
            .strip_prefix("VARCHAR(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(MAX_VARCHAR_BYTES);
        if length > PRIMARY_KEY_MAX_BYTES {
            comment.push_str(&format!(
                "; key limited to {PRIMARY_KEY_MAX_BYTES} bytes by StarRocks' Primary Key length limit"
            ));
            return Ok(varchar(PRIMARY_KEY_MAX_BYTES));
        }
        return Ok(sr_type);
    }
    if sr_type.starts_with("DECIMAL") || sr_type == "FLOAT" || sr_type == "DOUBLE" {
        comment.push_str("; StarRocks keys cannot be DECIMAL or floating point: kept as text");
        return Ok(varchar(64));
    }
    Err(Skip(format!(
        "key column `{}` has type {} ({sr_type} in StarRocks), which a StarRocks Primary Key cannot hold",
        column.name,
        pg_type_display(column)
    )))
}

fn numeric_type(
    precision_scale: Option<(u32, u32)>,
    mode: DecimalHandlingMode,
) -> (String, Load, Option<String>) {
    match (mode, precision_scale) {
        (DecimalHandlingMode::Double, _) => (
            "DOUBLE".into(),
            Load::AsIs,
            Some("decimal.handling.mode=double".into()),
        ),
        (_, Some((p, s))) if p <= MAX_DECIMAL_PRECISION => {
            (format!("DECIMAL({p},{s})"), Load::AsIs, None)
        }
        (_, Some((p, _))) => (
            "STRING".into(),
            Load::AsIs,
            Some(format!(
                "precision {p} exceeds StarRocks' {MAX_DECIMAL_PRECISION}: kept as text"
            )),
        ),
        (_, None) => (
            "STRING".into(),
            Load::AsIs,
            Some("unconstrained numeric: any scale, kept exactly as text".into()),
        ),
    }
}

fn array_element(element: &str) -> Option<&'static str> {
    Some(match element {
        "int2" => "SMALLINT",
        "int4" => "INT",
        "int8" => "BIGINT",
        "float4" => "FLOAT",
        "float8" => "DOUBLE",
        "bool" => "BOOLEAN",
        "text" | "varchar" | "bpchar" => "STRING",
        _ => return None,
    })
}

fn varchar(bytes: u64) -> String {
    format!("VARCHAR({})", bytes.clamp(1, MAX_VARCHAR_BYTES))
}

fn pg_type_display(column: &ColumnSchema) -> String {
    let ty = &column.type_name;
    let base = ty.strip_prefix('_').unwrap_or(ty);
    let suffix = if ty.starts_with('_') { "[]" } else { "" };
    let modifier = match base {
        "numeric" => column
            .numeric_precision_scale()
            .map(|(p, s)| format!("({p},{s})")),
        _ => column.length_or_precision().map(|n| format!("({n})")),
    };
    format!("{base}{}{suffix}", modifier.unwrap_or_default())
}

/// Types whose values PostgreSQL may store out of line (TOAST): everything of variable length
/// except a constrained `numeric(p,s)`, whose few bytes never leave the row in practice.
fn toastable(column: &ColumnSchema) -> bool {
    if column.type_name == "numeric" && column.numeric_precision_scale().is_some() {
        return false;
    }
    let fixed = [
        "int2",
        "int4",
        "int8",
        "oid",
        "float4",
        "float8",
        "bool",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "interval",
        "uuid",
        "money",
        "point",
        "macaddr",
        "macaddr8",
    ];
    // An enum array (which carries its element's labels) is variable-length like any array.
    (column.enum_values.is_none() || column.type_name.starts_with('_'))
        && !fixed.contains(&column.type_name.as_str())
}

/// Backquotes a StarRocks identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Escapes a StarRocks double-quoted string literal.
fn string_literal(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A column name a Routine Load jsonpath can address as `$.after.<name>`.
fn plain_json_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The StarRocks table name: `<table>` for `public`, `<schema>_<table>` otherwise.
pub fn starrocks_table_name(schema: &str, table: &str) -> String {
    if schema == "public" {
        table.to_owned()
    } else {
        format!("{schema}_{table}")
    }
}

/// A StarRocks database name from a topic prefix: letters, digits and `_`.
pub fn database_name(topic_prefix: &str) -> String {
    let mut name: String = topic_prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "db_");
    }
    name
}

struct TablePlan<'a> {
    table: &'a CapturedTable,
    name: String,
    columns: Vec<ColumnPlan>,
}

fn plan_table<'a>(table: &'a CapturedTable, settings: &Settings) -> Result<TablePlan<'a>, Skip> {
    let schema = &table.schema;
    if schema.key_columns.is_empty() {
        return Err(Skip(
            "no primary key: a StarRocks Primary Key table and delete handling need one \
             (add a primary key in PostgreSQL, or load it into a Duplicate Key table by hand)"
                .into(),
        ));
    }
    let mut order: Vec<usize> = schema.key_columns.clone();
    order.extend((0..schema.columns.len()).filter(|i| !schema.key_columns.contains(i)));
    let mut columns = Vec::with_capacity(order.len());
    let mut seen = std::collections::HashSet::new();
    for index in order {
        let column = &schema.columns[index];
        if !plain_json_name(&column.name) {
            return Err(Skip(format!(
                "column `{}` has a name a Routine Load jsonpath cannot address as $.after.<name>",
                column.name
            )));
        }
        let lower = column.name.to_ascii_lowercase();
        if lower.starts_with(RAW_PREFIX) || lower == LSN_COLUMN {
            return Err(Skip(format!(
                "column `{}` collides with the names pgseam uses for loading",
                column.name
            )));
        }
        if !seen.insert(lower) {
            return Err(Skip(format!(
                "columns differing only in case (`{}`): StarRocks column names are case-insensitive",
                column.name
            )));
        }
        let key = schema.key_columns.contains(&index);
        columns.push(map_type(column, key, settings)?);
    }
    Ok(TablePlan {
        table,
        name: starrocks_table_name(&schema.schema, &schema.table),
        columns,
    })
}

/// Renders the whole script: header, then per table the DDL and the load job(s).
pub fn render(settings: &Settings, tables: &[CapturedTable]) -> anyhow::Result<String> {
    let mut out = String::new();
    render_header(&mut out, settings);
    let db = ident(&settings.database);
    writeln!(out, "CREATE DATABASE IF NOT EXISTS {db};\n")?;
    let mut names = std::collections::BTreeMap::new();
    for table in tables {
        let qualified = table.schema.qualified_name();
        let plan = match plan_table(table, settings) {
            Ok(plan) => plan,
            Err(Skip(reason)) => {
                tracing::warn!(table = %qualified, reason = %reason, "table skipped");
                writeln!(out, "-- ==== {qualified}: SKIPPED: {reason}\n")?;
                continue;
            }
        };
        if let Some(other) = names.insert(plan.name.to_ascii_lowercase(), qualified.clone()) {
            bail!(
                "tables {other} and {qualified} both map to StarRocks table `{}`; exclude one \
                 of them with table.exclude.list",
                plan.name
            );
        }
        render_table(&mut out, settings, &plan)?;
    }
    Ok(out)
}

fn render_header(out: &mut String, settings: &Settings) {
    let mut lines = vec![
        "StarRocks tables and Routine Load jobs for pgseam topics, generated by `pgseam starrocks`.".to_owned(),
        "Validated for shape only; run it against your StarRocks and check SHOW ROUTINE LOAD.".to_owned(),
        String::new(),
        "Connector settings these statements assume (set them in the connector config):".to_owned(),
        "- value.converter.schemas.enable=false: Routine Load reads the bare envelope".to_owned(),
        "  (with schemas.enable=true the paths below go through $.payload, each message carries".to_owned(),
        "  its schema, and messages are several times larger).".to_owned(),
        "- decimal.handling.mode=string: Routine Load cannot decode the default `precise`".to_owned(),
        "  encoding (base64 of the unscaled two's-complement integer); `string` loads exactly".to_owned(),
        "  into DECIMAL(p,s), `double` loses precision.".to_owned(),
        format!(
            "- time.precision.mode={} (pgseam implements Debezium's default, adaptive):",
            settings.time_mode.as_str()
        ),
        "  timestamp(0..3) as epoch ms, timestamp(4..6) as epoch µs, date as epoch days, time as".to_owned(),
        "  ms or µs after midnight (kept as BIGINT), timestamptz as an ISO-8601 string in UTC.".to_owned(),
        "- tombstones.on.delete=false: a delete is followed by a null-value record otherwise.".to_owned(),
        "  Empty messages made Routine Load lose data (StarRocks issue #8534, fixed by PR #8536,".to_owned(),
        "  July 2022) and a null value cannot satisfy the jsonpaths below.".to_owned(),
        "- Deletes: StarRocks column __op (0 upsert, 1 delete) comes from op = 'd'; keys come".to_owned(),
        "  from after or, for deletes, before. Under REPLICA IDENTITY DEFAULT a delete carries".to_owned(),
        "  only the key, so every non-key column is nullable here even where PostgreSQL says".to_owned(),
        "  NOT NULL. TRUNCATE is not propagated (skipped.operations=t).".to_owned(),
        format!(
            "- Ordering: Kafka keeps each key's events in commit order. {LSN_COLUMN} holds source.lsn,"
        ),
        "  which grows per key in commit order (ts_ms is milliseconds and can tie): compare it".to_owned(),
        "  to find replays; it is a candidate for merge_condition, but StarRocks does not apply".to_owned(),
        "  merge_condition to deletes (__op = 1).".to_owned(),
        "- Jobs set \"timezone\" = \"UTC\": from_unixtime() uses the job's time zone.".to_owned(),
    ];
    if settings.value_schemas_enable {
        lines.push(String::new());
        lines.push(
            "WARNING: the value converter has schemas.enable=true; paths use $.payload.".into(),
        );
    }
    if settings.decimal_mode == DecimalHandlingMode::Precise {
        lines.push(String::new());
        lines.push("WARNING: decimal.handling.mode=precise: numeric and money columns will not load; set decimal.handling.mode=string.".into());
    }
    if settings.tombstones_on_delete {
        lines.push(String::new());
        lines.push("WARNING: tombstones.on.delete=true: set it to false for Routine Load.".into());
    }
    for line in lines {
        if line.is_empty() {
            out.push_str("--\n");
        } else {
            out.push_str("-- ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push('\n');
}

fn render_table(out: &mut String, settings: &Settings, plan: &TablePlan<'_>) -> anyhow::Result<()> {
    let schema = &plan.table.schema;
    let qualified = schema.qualified_name();
    let topic = format!("{}.{}", settings.topic_prefix, qualified);
    let db = ident(&settings.database);
    let table = format!("{db}.{}", ident(&plan.name));
    writeln!(
        out,
        "-- ==== {qualified} → {}.{} (topic {topic})",
        settings.database, plan.name
    )?;
    let toasted: Vec<&str> = schema
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| !schema.key_columns.contains(i) && toastable(c))
        .map(|(_, c)| c.name.as_str())
        .collect();
    if plan.table.replica_identity != 'f' && !toasted.is_empty() {
        writeln!(
            out,
            "-- WARNING: columns {} can be TOASTed; under REPLICA IDENTITY DEFAULT an UPDATE that \
             does not change them sends the placeholder __debezium_unavailable_value, which would \
             overwrite the stored value. Run: ALTER TABLE {}.{} REPLICA IDENTITY FULL;",
            toasted.join(", "),
            catalog::quote_identifier(&schema.schema),
            catalog::quote_identifier(&schema.table)
        )?;
    }

    // CREATE TABLE
    writeln!(out, "CREATE TABLE IF NOT EXISTS {table} (")?;
    for column in &plan.columns {
        let null = if column.key { "NOT NULL" } else { "NULL" };
        writeln!(
            out,
            "    {} {} {null} COMMENT {},",
            ident(&column.name),
            column.sr_type,
            string_literal(&column.comment)
        )?;
    }
    writeln!(
        out,
        "    {} BIGINT NULL COMMENT \"source.lsn of the last event applied\"",
        ident(LSN_COLUMN)
    )?;
    let keys = plan
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(out, ")\nPRIMARY KEY ({keys})\nDISTRIBUTED BY HASH({keys})")?;
    match settings.replication_num {
        Some(n) => writeln!(out, "PROPERTIES (\"replication_num\" = \"{n}\");\n")?,
        None => writeln!(out, ";\n")?,
    }

    let both = settings.format == Format::Both;
    if both {
        writeln!(
            out,
            "-- Create ONE of the two jobs below for this table: the envelope form needs a \
             StarRocks build that includes PR #71537; the jsonpaths form works on every version."
        )?;
    }
    if matches!(settings.format, Format::Debezium | Format::Both) {
        render_envelope_job(out, settings, plan, &topic, both)?;
    }
    if matches!(settings.format, Format::Jsonpaths | Format::Both) {
        render_jsonpaths_job(out, settings, plan, &topic)?;
    }
    Ok(())
}

fn job_name(settings: &Settings, plan: &TablePlan<'_>, form: &str) -> String {
    format!(
        "{}.{}",
        ident(&settings.database),
        ident(&format!("{}_{form}", plan.name))
    )
}

fn kafka_source(out: &mut String, settings: &Settings, topic: &str) -> std::fmt::Result {
    writeln!(out, "FROM KAFKA (")?;
    writeln!(
        out,
        "    \"kafka_broker_list\" = {},",
        string_literal(&settings.bootstrap_servers)
    )?;
    writeln!(out, "    \"kafka_topic\" = {},", string_literal(topic))?;
    writeln!(
        out,
        "    \"property.kafka_default_offsets\" = \"OFFSET_BEGINNING\""
    )?;
    writeln!(out, ");")
}

fn render_envelope_job(
    out: &mut String,
    settings: &Settings,
    plan: &TablePlan<'_>,
    topic: &str,
    commented: bool,
) -> anyhow::Result<()> {
    let mut job = String::new();
    writeln!(
        job,
        "-- Form (a): \"envelope\" = \"debezium\" (StarRocks PR #71537: before/after/op parsed by StarRocks)."
    )?;
    let encoded: Vec<String> = plan
        .columns
        .iter()
        .filter_map(|c| c.load.encoding().map(|e| format!("{} ({e})", c.name)))
        .collect();
    if !encoded.is_empty() {
        writeln!(
            job,
            "-- Check these columns after the first load; their Debezium encoding is not a \
             StarRocks literal: {}.",
            encoded.join(", ")
        )?;
    }
    writeln!(job, "-- {LSN_COLUMN} stays NULL in this form.")?;
    let mut statement = String::new();
    writeln!(
        statement,
        "CREATE ROUTINE LOAD {} ON {}",
        job_name(settings, plan, "debezium"),
        ident(&plan.name)
    )?;
    writeln!(statement, "PROPERTIES (")?;
    writeln!(statement, "    \"format\" = \"json\",")?;
    writeln!(statement, "    \"envelope\" = \"debezium\",")?;
    writeln!(statement, "    \"timezone\" = \"UTC\",")?;
    writeln!(statement, "    \"strict_mode\" = \"true\"")?;
    writeln!(statement, ")")?;
    kafka_source(&mut statement, settings, topic)?;
    job.push_str(&statement);
    if commented {
        for line in job.lines() {
            if line.starts_with("--") {
                out.push_str(line);
            } else {
                out.push_str("-- ");
                out.push_str(line);
            }
            out.push('\n');
        }
    } else {
        out.push_str(&job);
    }
    out.push('\n');
    Ok(())
}

fn render_jsonpaths_job(
    out: &mut String,
    settings: &Settings,
    plan: &TablePlan<'_>,
    topic: &str,
) -> anyhow::Result<()> {
    let root = if settings.value_schemas_enable {
        "$.payload"
    } else {
        "$"
    };
    // Parallel lists: a temporary column per jsonpath, then the derived columns.
    let mut raw_columns: Vec<String> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut derived: Vec<String> = Vec::new();
    let op_raw = format!("{RAW_PREFIX}op");
    raw_columns.push(op_raw.clone());
    paths.push(format!("{root}.op"));
    for column in &plan.columns {
        let after = format!("{RAW_PREFIX}a_{}", column.name);
        raw_columns.push(after.clone());
        paths.push(format!("{root}.after.{}", column.name));
        let source = if column.key {
            let before = format!("{RAW_PREFIX}b_{}", column.name);
            raw_columns.push(before.clone());
            paths.push(format!("{root}.before.{}", column.name));
            format!("coalesce({}, {})", ident(&after), ident(&before))
        } else {
            ident(&after)
        };
        derived.push(format!(
            "{} = {}",
            ident(&column.name),
            column.load.expression(&source)
        ));
    }
    let lsn_raw = format!("{RAW_PREFIX}lsn");
    raw_columns.push(lsn_raw.clone());
    paths.push(format!("{root}.source.lsn"));
    derived.push(format!("{} = {}", ident(LSN_COLUMN), ident(&lsn_raw)));
    derived.push(format!("`__op` = if({} = 'd', 1, 0)", ident(&op_raw)));

    writeln!(
        out,
        "-- Form (b): jsonpaths + COLUMNS; keys from after or, for deletes, before; __op from op."
    )?;
    writeln!(
        out,
        "CREATE ROUTINE LOAD {} ON {}",
        job_name(settings, plan, "jsonpaths"),
        ident(&plan.name)
    )?;
    writeln!(out, "COLUMNS (")?;
    let mut entries: Vec<String> = raw_columns.iter().map(|c| ident(c)).collect();
    entries.extend(derived);
    for (i, entry) in entries.iter().enumerate() {
        let sep = if i + 1 == entries.len() { "" } else { "," };
        writeln!(out, "    {entry}{sep}")?;
    }
    writeln!(out, ")")?;
    let jsonpaths = serde_json::to_string(&paths).context("encoding jsonpaths")?;
    writeln!(out, "PROPERTIES (")?;
    writeln!(out, "    \"format\" = \"json\",")?;
    writeln!(out, "    \"jsonpaths\" = {},", string_literal(&jsonpaths))?;
    writeln!(out, "    \"timezone\" = \"UTC\",")?;
    writeln!(out, "    \"strict_mode\" = \"true\"")?;
    writeln!(out, ")")?;
    kafka_source(out, settings, topic)?;
    out.push('\n');
    Ok(())
}

/// Command-line options of `pgseam starrocks` besides the two files.
#[derive(Clone, Debug)]
pub struct Options {
    pub format: Format,
    /// StarRocks database; default: the topic prefix made into an identifier.
    pub database: Option<String>,
    pub replication_num: Option<u32>,
}

/// Loads the files, reads the captured tables from the source, and renders the script.
pub async fn run(
    worker_path: &Path,
    connector_path: &Path,
    options: &Options,
) -> anyhow::Result<String> {
    let (worker, connectors) =
        config::load_standalone(worker_path, &[connector_path.to_path_buf()])
            .map_err(|errors| anyhow!("{errors}"))?;
    let connector = connectors
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no connector configuration was read"))?;
    let settings = Settings {
        database: options
            .database
            .clone()
            .unwrap_or_else(|| database_name(&connector.topic_prefix)),
        topic_prefix: connector.topic_prefix.clone(),
        bootstrap_servers: worker.bootstrap_servers.clone(),
        decimal_mode: connector.decimal_handling_mode,
        time_mode: TimePrecisionMode::parse(connector.original.get("time.precision.mode"))?,
        value_schemas_enable: connector.effective_value_converter(&worker).schemas_enable,
        tombstones_on_delete: connector.tombstones_on_delete,
        nested_arrays: connector.multidimensional_array_mode
            == pgseam_converters::MultidimensionalArrayMode::Nested,
        format: options.format,
        replication_num: options.replication_num,
    };
    let tables = captured_tables(&connector).await?;
    render(&settings, &tables)
}

/// The tables the connector would capture, read without changing the database: the filtered
/// user tables, intersected with the publication's tables when it exists, or — when it does
/// not — the tables the connector would create it with.
async fn captured_tables(connector: &ConnectorConfig) -> anyhow::Result<Vec<CapturedTable>> {
    let params = crate::standalone::connect_params(
        connector,
        format!("pgseam-starrocks-{}", connector.name),
    );
    let client = connect_query_session(&params).await?;
    let filtered: Vec<TableIdentity> = catalog::list_user_tables(&client)
        .await?
        .into_iter()
        .filter(|t| connector.table_filter.includes(&t.schema, &t.table))
        .collect();
    let publication = &connector.publication_name;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[publication],
        )
        .await
        .with_context(|| format!("cannot look up publication {publication}"))?
        .is_some();
    let captured: Vec<TableIdentity> = if exists {
        let published = catalog::publication_tables(&client, publication).await?;
        catalog::keep_published(filtered, &published)
    } else {
        match connector.publication_autocreate_mode {
            PublicationAutocreateMode::Disabled => bail!(
                "publication `{publication}` does not exist and publication.autocreate.mode=disabled: \
                 create it (CREATE PUBLICATION {publication} FOR TABLE …) or choose another mode"
            ),
            PublicationAutocreateMode::NoTables => Vec::new(),
            // Without publish_via_partition_root, FOR ALL TABLES and FOR TABLE publish leaf
            // partitions, never their parents. With it, a partition is published under its
            // topmost ancestor in the publication (every root, for FOR ALL TABLES).
            PublicationAutocreateMode::AllTables | PublicationAutocreateMode::Filtered => {
                if connector.publish_via_partition_root {
                    let tree = pgseam_connector_pg::publication::partition_tree(&client).await?;
                    let all_tables = connector.publication_autocreate_mode
                        == PublicationAutocreateMode::AllTables;
                    let listed: Vec<u32> = filtered.iter().map(|t| t.oid).collect();
                    filtered
                        .into_iter()
                        .filter(|t| {
                            let mut parent = tree.get(&t.oid).and_then(|n| n.parent);
                            while let Some(p) = parent {
                                if all_tables || listed.contains(&p) {
                                    return false;
                                }
                                parent = tree.get(&p).and_then(|n| n.parent);
                            }
                            true
                        })
                        .collect()
                } else {
                    filtered.into_iter().filter(|t| !t.partitioned).collect()
                }
            }
        }
    };
    let mut tables = Vec::with_capacity(captured.len());
    for identity in captured {
        let schema = catalog::load_table_schema(&client, identity.oid).await?;
        tables.push(CapturedTable {
            schema,
            replica_identity: identity.replica_identity,
        });
    }
    Ok(tables)
}

#[cfg(test)]
mod tests;
