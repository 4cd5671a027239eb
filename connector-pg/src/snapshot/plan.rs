//! Chunk planning: which COPY statements read a table, and how each column is read.
//!
//! Runs on the coordinator session, inside the exported snapshot, after the table's ACCESS
//! SHARE lock is held (so the relation cannot be rewritten between planning and reading).
//!
//! Strategies (`snapshot.chunk.strategy`, a pgseam property, and per table
//! `pgseam.snapshot.chunk.strategy.overrides`):
//! - **ctid**: block ranges `ctid >= '(b,0)' AND ctid < '(e,0)'`,
//!   read by a TID Range Scan that touches only those blocks. Planning costs one catalog read.
//!   The block count is read after the lock, and the last chunk has no upper bound, so rows on
//!   blocks added since (invisible to the snapshot anyway) cannot be missed. Sized by
//!   `reltuples / relpages`; with no statistics, [`FALLBACK_ROWS_PER_BLOCK`].
//! - **key**: primary-key ranges `(k) > (lo) AND (k) <= (hi)`, boundaries every `chunk_rows`-th
//!   key in key order (one ordered scan of the key under the snapshot, so chunks are exact).
//!   A key range means the same rows under any snapshot, so each delivered range is stored as
//!   progress and a resumed snapshot reads only the rest; ctid progress cannot be resumed (a
//!   crash re-reads the table). A table without a primary key is one chunk.
//! - **whole**: one chunk per table.
//! - **auto** (default) chooses per table, see [`choose`]: key ranges — resumable — where the
//!   key's first column follows the physical order (`pg_stats` correlation, |c| ≥
//!   [`KEY_MIN_CORRELATION`]), so each key range is an index range scan over contiguous
//!   blocks; ctid ranges otherwise, where every key range visits blocks scattered over the
//!   whole heap. Measured (`bench/chunking.sh`, BENCHMARKS.md "Snapshot chunk strategies",
//!   data in shared buffers): key ranges cost PostgreSQL about 1.6× ctid's CPU on an ordered
//!   key and 2.3–2.5× on a random one (uuid, shuffled inserts); with pgseam's decoding the
//!   bottleneck, wall time differs by 0–40%. Before PostgreSQL 14, where a ctid range is a
//!   full scan per chunk, key ranges. The choice and its reason are logged per table
//!   (`snapshot table planned`).
//!
//! A table in `snapshot.select.statement.overrides` is always one chunk: its statement is
//! wrapped as `SELECT <columns> FROM (<statement>) AS o`, so it must return the table's columns
//! by name.
//!
//! **A partitioned table** is captured only when the publication publishes via the partition
//! root (see `crate::publication`): its rows are in its leaf partitions, and are emitted with
//! the root's schema (columns selected by the root's names, which every partition has; their
//! attribute order may differ). ctid chunks are planned per leaf partition (`FROM ONLY leaf`,
//! leaves in name order, ranges sized by each leaf's statistics), so every row is read exactly
//! once. Key ranges, which are a property of the root's key, and a whole-table chunk read
//! `FROM root` (without `ONLY`, i.e. every partition); so do resumed and incremental windows.
//! Locks are taken on the root without `ONLY`, which locks every partition.

use std::collections::HashMap;
use std::sync::Arc;

use pgseam_model::TableSchema;
use tokio_postgres::Client;

use super::checkpoint::{KeyProgress, ProgressUpdate};
use super::{qualified, SnapshotSettings};
use crate::catalog::{quote_identifier, quote_literal};
use crate::error::{Result, SourceError};

/// Rows per 8 kB block assumed for a table that was never vacuumed or analyzed.
pub const FALLBACK_ROWS_PER_BLOCK: f64 = 60.0;
/// First server version (`server_version_num`) with TID Range Scans.
const TID_RANGE_SCAN_VERSION: i32 = 140_000;
/// `auto` reads a table by key ranges when the `pg_stats` correlation of its key's first
/// column is at least this (in absolute value). Measured (`bench/chunking.sh`, cached data):
/// PostgreSQL CPU per 1M rows, ctid 0.30–0.36 s; key 0.49–0.57 s at correlation 1.0 and
/// 0.53–0.56 s at 0.59 (30% of rows updated), 0.72–0.85 s at ~0. The cached measurement
/// would allow 0.5; 0.9 is chosen because on a heap larger than memory a key range also
/// reads every block holding one of its displaced rows, so at 0.59 each chunk re-reads the
/// heap's updated tail (not measured here: the machine's page cache holds the tables).
pub const KEY_MIN_CORRELATION: f64 = 0.9;

/// `snapshot.chunk.strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkStrategy {
    /// ctid ranges on PostgreSQL ≥ 14, key ranges before.
    Auto,
    Ctid,
    Key,
    Whole,
}

impl ChunkStrategy {
    /// The property value (`auto`, `ctid`, `key`, `whole`).
    pub fn name(self) -> &'static str {
        match self {
            ChunkStrategy::Auto => "auto",
            ChunkStrategy::Ctid => "ctid",
            ChunkStrategy::Key => "key",
            ChunkStrategy::Whole => "whole",
        }
    }
}

/// What [`choose`] decides a table's strategy from.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableFacts {
    /// `server_version_num`.
    pub version: i32,
    pub has_key: bool,
    pub partitioned: bool,
    pub estimated_rows: u64,
    /// `pg_stats.correlation` of the key's first column (`None`: never analyzed).
    pub key_correlation: Option<f64>,
}

/// The strategy a table is read with, and why: `configured` is the table's override or
/// `snapshot.chunk.strategy`; `auto` is decided from the table's facts.
pub fn choose(
    configured: ChunkStrategy,
    overridden: bool,
    facts: &TableFacts,
    chunk_rows: u64,
) -> (ChunkStrategy, &'static str) {
    if configured != ChunkStrategy::Auto {
        return (
            configured,
            if overridden {
                "pgseam.snapshot.chunk.strategy.overrides"
            } else {
                "snapshot.chunk.strategy"
            },
        );
    }
    if facts.version < TID_RANGE_SCAN_VERSION {
        return (ChunkStrategy::Key, "no TID Range Scan before PostgreSQL 14");
    }
    if !facts.has_key {
        return (ChunkStrategy::Ctid, "no primary key");
    }
    if facts.partitioned {
        return (
            ChunkStrategy::Ctid,
            "partitioned: ctid ranges per partition",
        );
    }
    if facts.estimated_rows <= chunk_rows {
        return (ChunkStrategy::Ctid, "one chunk");
    }
    match facts.key_correlation {
        None => (ChunkStrategy::Ctid, "no statistics on the key"),
        Some(c) if c.abs() >= KEY_MIN_CORRELATION => {
            (ChunkStrategy::Key, "key follows the physical order")
        }
        Some(_) => (
            ChunkStrategy::Ctid,
            "key does not follow the physical order",
        ),
    }
}

/// `pg_stats.correlation` of the first key column (`None`: no statistics, or no key).
async fn key_correlation(client: &Client, schema: &TableSchema) -> Result<Option<f64>> {
    let Some(&first) = schema.key_columns.first() else {
        return Ok(None);
    };
    let row = client
        .query_opt(
            "SELECT correlation::float8 FROM pg_stats \
             WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited",
            &[
                &&*schema.schema,
                &&*schema.table,
                &schema.columns[first].name,
            ],
        )
        .await
        .map_err(query_error(format!(
            "cannot read the statistics of {}",
            schema.qualified_name()
        )))?;
    Ok(row.and_then(|r| r.get::<_, Option<f64>>(0)))
}

/// How one column travels in the binary COPY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnRead {
    /// The type's binary send form, decoded by `pgseam_pgvalue::decode_binary`.
    Binary,
    /// Converted to its text output form in the SELECT; decoded by the text decoder.
    Text,
}

/// One table to read.
#[derive(Debug)]
pub struct TablePlan {
    pub schema: Arc<TableSchema>,
    /// `"schema"."table"`.
    pub qualified: String,
    /// What a `FROM` or `LOCK TABLE` names to read every row of the table exactly once:
    /// `ONLY "schema"."table"`, or, for a partitioned table, `"schema"."table"` (its
    /// partitions).
    pub relation: String,
    pub columns: Vec<ColumnRead>,
    /// Rows expected (statistics), for progress.
    pub estimated_rows: u64,
    pub chunks: usize,
}

/// One COPY statement.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Index into [`Plan::tables`].
    pub table: usize,
    /// Position within its table.
    pub index: usize,
    pub copy: String,
    /// The progress this chunk completes once it is delivered (with every chunk before it):
    /// a key range's upper bound, or the whole table after its last chunk; `None` for a ctid
    /// range that is not the last (ctid progress cannot be resumed, see `progress`).
    pub checkpoint: Option<ProgressUpdate>,
}

/// All tables and their chunks, in emission order.
#[derive(Debug)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    pub chunks: Vec<Chunk>,
}

fn query_error(context: String) -> impl FnOnce(tokio_postgres::Error) -> SourceError {
    move |error| SourceError::Query { context, error }
}

/// Plans every table (already locked) in order.
pub async fn plan(
    client: &Client,
    schemas: &[Arc<TableSchema>],
    settings: &SnapshotSettings,
) -> Result<Plan> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(query_error("cannot read server_version_num".into()))?
        .get(0);
    let mut plan = Plan {
        tables: Vec::new(),
        chunks: Vec::new(),
    };
    for schema in schemas {
        let table = plan.tables.len();
        let name = qualified(&schema.schema, &schema.table);
        let columns = column_reads(client, schema).await?;
        let select_list = select_list(client, schema, &columns).await?;
        let (partitioned, parts) = storage(client, schema.relation_id, &name).await?;
        let relation = if partitioned {
            name.clone()
        } else {
            format!("ONLY {name}")
        };
        let estimated_rows = parts.iter().map(|p| p.estimated_rows).sum();
        let override_strategy = settings
            .chunk_strategy_overrides
            .get(&schema.qualified_name())
            .copied();
        let configured = override_strategy.unwrap_or(settings.chunk_strategy);
        let key_correlation = if configured == ChunkStrategy::Auto && !partitioned {
            key_correlation(client, schema).await?
        } else {
            None
        };
        let facts = TableFacts {
            version,
            has_key: !schema.key_columns.is_empty(),
            partitioned,
            estimated_rows,
            key_correlation,
        };
        let (strategy, reason) = choose(
            configured,
            override_strategy.is_some(),
            &facts,
            settings.chunk_rows,
        );
        let reason = settings.window_reason.unwrap_or(reason);
        let copy = |relation: &str, filter: &str| {
            format!("COPY (SELECT {select_list} FROM {relation}{filter}) TO STDOUT (FORMAT binary)")
        };
        let done = ProgressUpdate::TableDone((schema.schema.to_string(), schema.table.to_string()));
        // (FROM target, filter, key upper bound)
        let filters: Vec<(String, String, Option<Vec<String>>)> =
            if let Some(statement) = settings.select_overrides.get(&schema.qualified_name()) {
                plan.chunks.push(Chunk {
                    table,
                    index: 0,
                    copy: format!(
                    "COPY (SELECT {select_list} FROM ({statement}) AS o) TO STDOUT (FORMAT binary)"
                ),
                    checkpoint: Some(done.clone()),
                });
                Vec::new()
            } else {
                match strategy {
                    ChunkStrategy::Ctid => parts
                        .iter()
                        .flat_map(|part| {
                            ctid_filters(part.blocks, part.rows_per_block, settings.chunk_rows)
                                .into_iter()
                                .map(|f| (part.relation.clone(), f, None))
                        })
                        .collect(),
                    ChunkStrategy::Key if !schema.key_columns.is_empty() => {
                        key_filters(client, schema, &relation, settings.chunk_rows)
                            .await?
                            .into_iter()
                            .map(|(f, upper)| (relation.clone(), f, upper))
                            .collect()
                    }
                    _ => vec![(relation.clone(), String::new(), None)],
                }
            };
        // A partitioned table without partitions still gets its one (empty) chunk, whose
        // progress step completes it.
        let filters = if filters.is_empty()
            && !settings
                .select_overrides
                .contains_key(&schema.qualified_name())
        {
            vec![(relation.clone(), String::new(), None)]
        } else {
            filters
        };
        let key_columns = key_column_names(schema);
        let last = filters.len().saturating_sub(1);
        for (index, (from, filter, upper)) in filters.iter().enumerate() {
            let checkpoint = if index == last {
                Some(done.clone())
            } else {
                upper.as_ref().map(|after| {
                    ProgressUpdate::KeyRange(KeyProgress {
                        table: (schema.schema.to_string(), schema.table.to_string()),
                        key_columns: key_columns.clone(),
                        after: after.clone(),
                        max_key: None,
                    })
                })
            };
            plan.chunks.push(Chunk {
                table,
                index,
                copy: copy(from, filter),
                checkpoint,
            });
        }
        let chunks = filters.len().max(1);
        let overridden = settings
            .select_overrides
            .contains_key(&schema.qualified_name());
        tracing::info!(
            table = %schema.qualified_name(),
            strategy = if overridden { "select override" } else { strategy.name() },
            reason = if overridden { "snapshot.select.statement.overrides" } else { reason },
            key_correlation,
            chunks,
            estimated_rows,
            partitions = partitioned.then_some(parts.len()),
            "snapshot table planned"
        );
        plan.tables.push(TablePlan {
            schema: Arc::clone(schema),
            qualified: name,
            relation,
            columns,
            estimated_rows,
            chunks,
        });
    }
    Ok(plan)
}

/// Where a table's rows are stored: the table itself (`ONLY t`), or the leaf partitions of a
/// partitioned table, in name order (ordinary tables only: PostgreSQL replicates no foreign
/// table), each with its size.
struct Storage {
    /// `ONLY "schema"."table"` of the table or leaf.
    relation: String,
    blocks: u64,
    rows_per_block: f64,
    estimated_rows: u64,
}

/// Whether the table is partitioned, and where its rows are.
async fn storage(client: &Client, oid: u32, name: &str) -> Result<(bool, Vec<Storage>)> {
    let partitioned: bool = client
        .query_one("SELECT relkind = 'p' FROM pg_class WHERE oid = $1", &[&oid])
        .await
        .map_err(query_error(format!("cannot read the kind of {name}")))?
        .get(0);
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, c.relpages::int8, \
                    pg_relation_size(c.oid) / current_setting('block_size')::int8 \
             FROM pg_class r \
             JOIN LATERAL (SELECT relid FROM pg_partition_tree(r.oid) WHERE isleaf AND r.relkind = 'p' \
                           UNION ALL SELECT r.oid WHERE r.relkind <> 'p') t ON true \
             JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE r.oid = $1 AND (c.relkind <> 'f' OR c.oid = r.oid) \
             ORDER BY n.nspname, c.relname",
            &[&oid],
        )
        .await
        .map_err(query_error(format!("cannot read the size of {name}")))?;
    let parts = rows
        .iter()
        .map(|row| {
            let (reltuples, relpages, blocks): (f64, i64, i64) =
                (row.get(2), row.get(3), row.get(4));
            let rows_per_block = if reltuples > 0.0 && relpages > 0 {
                reltuples / relpages as f64
            } else {
                FALLBACK_ROWS_PER_BLOCK
            };
            let estimated_rows = if reltuples >= 0.0 {
                reltuples as u64
            } else {
                (blocks.max(0) as f64 * rows_per_block) as u64
            };
            Storage {
                relation: format!("ONLY {}", qualified(row.get(0), row.get(1))),
                blocks: blocks.max(0) as u64,
                rows_per_block,
                estimated_rows,
            }
        })
        .collect();
    Ok((partitioned, parts))
}

/// ` WHERE ctid >= '(b,0)' AND ctid < '(e,0)'` per range of blocks; the last is open-ended.
pub fn ctid_filters(blocks: u64, rows_per_block: f64, chunk_rows: u64) -> Vec<String> {
    let per_chunk = ((chunk_rows as f64 / rows_per_block.max(1.0)).ceil() as u64).max(1);
    if blocks <= per_chunk {
        return vec![String::new()];
    }
    let mut filters = Vec::new();
    let mut start = 0u64;
    while start < blocks {
        let end = start + per_chunk;
        let lower = if start == 0 {
            String::new()
        } else {
            format!("ctid >= '({start},0)'::tid")
        };
        let upper = if end >= blocks {
            String::new()
        } else {
            format!("ctid < '({end},0)'::tid")
        };
        let parts: Vec<&str> = [lower.as_str(), upper.as_str()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        filters.push(format!(" WHERE {}", parts.join(" AND ")));
        start = end;
    }
    filters
}

/// The primary-key column names, in key order.
pub(crate) fn key_column_names(schema: &TableSchema) -> Vec<String> {
    schema
        .key_columns
        .iter()
        .map(|&i| schema.columns[i].name.clone())
        .collect()
}

/// `format_type` of each primary-key column, in key order (for typed key literals).
pub(crate) async fn key_types(
    client: &Client,
    schema: &TableSchema,
    name: &str,
) -> Result<Vec<String>> {
    let keys = key_column_names(schema);
    Ok(client
        .query(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM unnest($2::text[]) WITH ORDINALITY k(name, ord) \
             JOIN pg_attribute a ON a.attrelid = $1 AND a.attname = k.name ORDER BY k.ord",
            &[&schema.relation_id, &keys],
        )
        .await
        .map_err(query_error(format!("cannot read the key types of {name}")))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// `('v1'::type1, 'v2'::type2)`: a key value from its columns' text forms.
pub(crate) fn key_literal(values: &[String], types: &[String]) -> String {
    let literals: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{}::{}",
                quote_literal(v),
                types.get(i).map_or("text", String::as_str)
            )
        })
        .collect();
    format!("({})", literals.join(", "))
}

/// Primary-key range filters with a boundary every `chunk_rows` keys, each with its upper
/// bound (the key's text forms; `None` for the open-ended last range).
async fn key_filters(
    client: &Client,
    schema: &TableSchema,
    relation: &str,
    chunk_rows: u64,
) -> Result<Vec<(String, Option<Vec<String>>)>> {
    let name = schema.qualified_name();
    let name = name.as_str();
    let keys = key_column_names(schema);
    let quoted: Vec<String> = keys.iter().map(|k| quote_identifier(k)).collect();
    let key_list = quoted.join(", ");
    let as_text: Vec<String> = quoted.iter().map(|k| format!("{k}::text")).collect();
    let types = key_types(client, schema, name).await?;
    let chunk_rows = i64::try_from(chunk_rows.max(1)).unwrap_or(i64::MAX);
    let boundaries = client
        .query(
            &format!(
                "SELECT {} FROM (SELECT {key_list}, row_number() OVER (ORDER BY {key_list}) AS pgseam_rn \
                 FROM {relation}) s WHERE pgseam_rn % $1 = 0 ORDER BY pgseam_rn",
                as_text.join(", ")
            ),
            &[&chunk_rows],
        )
        .await
        .map_err(query_error(format!("cannot plan key ranges of {name}")))?;
    let key = format!("({key_list})");
    let mut boundaries = boundaries;
    // When the row count is a multiple of `chunk_rows` the last boundary is the last key, and
    // the open-ended range after it would be an empty chunk: it becomes the open-ended one.
    if let Some(last) = boundaries.last() {
        let values: Vec<String> = (0..keys.len()).map(|i| last.get::<_, String>(i)).collect();
        let beyond: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {relation} WHERE {key} > {})",
                    key_literal(&values, &types)
                ),
                &[],
            )
            .await
            .map_err(query_error(format!("cannot plan key ranges of {name}")))?
            .get(0);
        if !beyond {
            boundaries.pop();
        }
    }
    let mut filters = Vec::new();
    let mut lower: Option<String> = None;
    for row in &boundaries {
        let values: Vec<String> = (0..keys.len()).map(|i| row.get::<_, String>(i)).collect();
        let upper = key_literal(&values, &types);
        filters.push((
            match &lower {
                None => format!(" WHERE {key} <= {upper}"),
                Some(lower) => format!(" WHERE {key} > {lower} AND {key} <= {upper}"),
            },
            Some(values),
        ));
        lower = Some(upper);
    }
    filters.push((
        match &lower {
            None => String::new(),
            Some(lower) => format!(" WHERE {key} > {lower}"),
        },
        None,
    ));
    Ok(filters)
}

/// Binary where pgvalue decodes the type's send form, text otherwise.
pub(crate) async fn column_reads(client: &Client, schema: &TableSchema) -> Result<Vec<ColumnRead>> {
    let oids: Vec<u32> = schema.columns.iter().map(|c| c.base_type_oid).collect();
    let rows = client
        .query(
            "SELECT t.oid, t.typsend <> 0, \
                    t.typtype = 'e' OR COALESCE(e.typtype = 'e', false) \
             FROM pg_type t LEFT JOIN pg_type e ON t.typlen = -1 AND t.typelem <> 0 AND e.oid = t.typelem \
             WHERE t.oid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(query_error(format!(
            "cannot read the column types of {}",
            schema.qualified_name()
        )))?;
    let info: HashMap<u32, (bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    Ok(schema
        .columns
        .iter()
        .map(|c| match info.get(&c.base_type_oid) {
            Some(&(has_send, is_enum))
                if has_send && pgseam_pgvalue::binary_supported(&c.type_name, is_enum) =>
            {
                ColumnRead::Binary
            }
            _ => ColumnRead::Text,
        })
        .collect())
}

/// The SELECT list: binary columns as they are, text columns through their type's output
/// function (what pgoutput sends; `::text` casts differ for e.g. `inet` and `bool`).
pub(crate) async fn select_list(
    client: &Client,
    schema: &TableSchema,
    reads: &[ColumnRead],
) -> Result<String> {
    let mut list = Vec::with_capacity(reads.len());
    for (column, read) in schema.columns.iter().zip(reads) {
        let name = quote_identifier(&column.name);
        list.push(match read {
            ColumnRead::Binary => name,
            ColumnRead::Text => {
                let output: String = client
                    .query_one(
                        "SELECT typoutput::regproc::text FROM pg_type WHERE oid = $1",
                        &[&column.base_type_oid],
                    )
                    .await
                    .map_err(query_error(format!(
                        "cannot read the output function of column {}",
                        column.name
                    )))?
                    .get(0);
                format!("textin({output}({name})) AS {name}")
            }
        });
    }
    Ok(list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_chooses_key_ranges_only_where_the_key_follows_the_heap() {
        let facts = TableFacts {
            version: 150_004,
            has_key: true,
            partitioned: false,
            estimated_rows: 1_000_000,
            key_correlation: Some(1.0),
        };
        let auto = |f: TableFacts| choose(ChunkStrategy::Auto, false, &f, 100_000);
        assert_eq!(auto(facts).0, ChunkStrategy::Key);
        // A key in descending physical order is as contiguous.
        let descending = TableFacts {
            key_correlation: Some(-0.95),
            ..facts
        };
        assert_eq!(auto(descending).0, ChunkStrategy::Key);
        for (facts, reason) in [
            (
                TableFacts {
                    key_correlation: Some(0.5),
                    ..facts
                },
                "key does not follow the physical order",
            ),
            (
                TableFacts {
                    key_correlation: None,
                    ..facts
                },
                "no statistics on the key",
            ),
            (
                TableFacts {
                    has_key: false,
                    ..facts
                },
                "no primary key",
            ),
            (
                TableFacts {
                    partitioned: true,
                    ..facts
                },
                "partitioned: ctid ranges per partition",
            ),
            (
                TableFacts {
                    estimated_rows: 100_000,
                    ..facts
                },
                "one chunk",
            ),
        ] {
            assert_eq!(auto(facts), (ChunkStrategy::Ctid, reason), "{facts:?}");
        }
        let old = TableFacts {
            version: 130_000,
            key_correlation: Some(0.0),
            ..facts
        };
        assert_eq!(auto(old).0, ChunkStrategy::Key);
        // An explicit strategy, global or per table, is never second-guessed.
        let shuffled = TableFacts {
            key_correlation: Some(0.0),
            ..facts
        };
        assert_eq!(
            choose(ChunkStrategy::Key, true, &shuffled, 100_000),
            (
                ChunkStrategy::Key,
                "pgseam.snapshot.chunk.strategy.overrides"
            )
        );
        assert_eq!(
            choose(ChunkStrategy::Whole, false, &facts, 100_000),
            (ChunkStrategy::Whole, "snapshot.chunk.strategy")
        );
    }

    #[test]
    fn ctid_ranges_cover_every_block_and_leave_the_last_open() {
        assert_eq!(ctid_filters(0, 100.0, 1000), vec![String::new()]);
        assert_eq!(ctid_filters(10, 100.0, 1000), vec![String::new()]);
        let f = ctid_filters(25, 100.0, 1000);
        assert_eq!(
            f,
            vec![
                " WHERE ctid < '(10,0)'::tid",
                " WHERE ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid",
                " WHERE ctid >= '(20,0)'::tid",
            ]
        );
    }
}
