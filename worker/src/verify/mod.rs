//! `pgseam verify`: did everything arrive? Reads the connector's topics back, applies them as a
//! Primary Key table would, and compares the result with the source at one known position.
//!
//! ```text
//!  1. comparison point   replication conn: CREATE_REPLICATION_SLOT tmp TEMPORARY LOGICAL
//!                        pgoutput (SNAPSHOT 'export') → consistent point L, snapshot S
//!                        (S sees exactly the transactions whose commit record is before L)
//!  2. wait               pg_replication_slots.confirmed_flush_lsn of pgseam's slot ≥ L:
//!                        pgseam confirms only what Kafka acknowledged and its offset holds,
//!                        so every change S sees is in Kafka now
//!  3. topics             assign() every partition from the beginning; take each record
//!                        whose commit LSN (`pgseam.commit_lsn` header) is before L as an
//!                        event (key, position, hash of `after`) into its table's spool;
//!                        a partition is done at its first record at or after L, at our
//!                        marker (--end marker), or when nothing arrived for --idle-ms
//!  4. resolve            per table, replay the events per key (`store`): the state a
//!                        Primary Key table holds, duplicates and per-key order violations;
//!                        under --memory-budget, in key-hash ranges spilled to disk
//!  5. source             the snapshot engine reads every table under S; each row goes
//!                        through the connector's own JsonConverter → key and `after` JSON
//!  6. compare            per key: hash of the `after` JSON (per range: digests first);
//!                        row counts, missing / extra / different keys with examples
//! ```
//!
//! # Why this comparison point is exact
//!
//! A logical slot's exported snapshot and its consistent point split the history exactly:
//! PostgreSQL decodes a transaction from the slot iff its commit record starts at or after the
//! consistent point, and the exported snapshot sees exactly the transactions before it. pgseam
//! writes the commit record's LSN into every streamed record (`pgseam.commit_lsn`), so "the
//! topic as of L" is the records with a commit LSN before L plus pgseam's own snapshot rows. A
//! plain `REPEATABLE READ` snapshot with `pg_current_wal_lsn()` would not do: a transaction can
//! commit (before the LSN is read) without being visible to the snapshot. The temporary slot is
//! dropped by the server when verify's replication connection closes, even on a crash; while it
//! exists it holds back WAL removal and vacuum a little, as any open snapshot does.
//!
//! # The end of a partition
//!
//! The test broker's high watermark is unreliable, so verify does not use it. A partition is
//! complete as of L when a record at or after L arrives (any later change in that partition),
//! or — for partitions with no later traffic — by one of:
//! - `--end idle` (default): nothing arrived on any unfinished partition for `--idle-ms`. Safe
//!   because step 2 made everything before L durable in Kafka before reading started; a broker
//!   that stalls longer than the idle time makes verify report rows as missing (a false alarm,
//!   never a false pass). Writes nothing to Kafka.
//! - `--end marker`: verify first produces one marker record to every partition (null key, a
//!   small JSON value, header `pgseam.verify.marker` = a run id) and reads each partition until
//!   its own marker arrives. Exact, but it writes to the connector's topics, which their
//!   consumers (Routine Load, sinks) then see: use it on test or throwaway topics. Markers of
//!   earlier runs are skipped.
//!
//! # What is compared
//!
//! The source rows are rendered by pgseam's own converter with the connector's settings, and
//! compared with the topic's `after` payloads as JSON, so the comparison is exact for every
//! type the converter supports. It checks that everything *arrived*, not that the converter is
//! right: the independent oracle of the integration tests (`tests/`) is the proof of that.
//!
//! Tables with a key: the topic side holds, per key, a 64-bit hash of its current `after` JSON;
//! the source rows are streamed past it. Tables without a key (REPLICA IDENTITY FULL) are
//! compared as multisets of row hashes: an update removes its `before` image and adds its
//! `after`. The per-key order rules, the truncate rule and the memory bound are in `store`'s
//! docs; examples are the smallest keys (as JSON text) of each kind, so they do not depend on
//! the order of processing or on spilling.
//!
//! Records written without pgseam's position headers (e.g. by Debezium before a takeover) are
//! placed by the envelope's `source.lsn` (the change's LSN, before its commit): exact while the
//! source is quiet, approximate for transactions that span L.
//!
//! Not here yet: Avro; a comparison point in the past (PostgreSQL reads tables only "now").

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use pgseam_connector_pg::catalog::{self, TableIdentity};
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::snapshot::{self, SnapshotSettings};
use pgseam_connector_pg::{slot, SourceMessage};
use pgseam_converters::{JsonConverter, JsonConverterConfig, KafkaRecord};
use pgseam_model::Lsn;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config;
pub use progress::ProgressMode;
use progress::{Progress, LOG_INTERVAL};
use store::{Change, Event, Pos, Spill, Spool, TableCompare, Truncate};

mod progress;
mod store;
use crate::pipeline::{HEADER_COMMIT_LSN, HEADER_LSN, HEADER_SEQ, HEADER_SNAPSHOT};

/// Header of verify's marker records (`--end marker`); its value is the run id.
pub const MARKER_HEADER: &str = "pgseam.verify.marker";

/// Debezium's placeholder for an unchanged TOASTed value (`unavailable.value.placeholder`).
const UNAVAILABLE_PLACEHOLDER: &str = "__debezium_unavailable_value";
/// The same placeholder as base64 (bytea columns under `binary.handling.mode=bytes`).
const UNAVAILABLE_PLACEHOLDER_BASE64: &str = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";

/// How often the wait for pgseam's slot looks again.
const FLUSH_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one consumer poll blocks.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// How often the wait for pgseam is logged.
const PROGRESS_INTERVAL: Duration = LOG_INTERVAL;
/// How long a topic may take to appear in the metadata before it counts as absent (empty).
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How verify decides that a partition holds nothing more before the comparison point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EndMode {
    /// Nothing arrived for `--idle-ms` (writes nothing to Kafka).
    Idle,
    /// verify's own marker record, produced to every partition first, arrived.
    Marker,
}

/// `pgseam verify` options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only these tables (`schema.table`); empty = every captured table.
    pub tables: Vec<String>,
    pub end: EndMode,
    pub idle: Duration,
    /// How long to wait for pgseam's slot to pass the comparison point; `None` = do not wait.
    pub wait: Option<Duration>,
    /// Examples listed per kind of difference.
    pub examples: usize,
    /// Bytes of topic-side state held in memory before spilling to disk (see `store`).
    pub memory_budget: usize,
    /// Where the spill directory is created (default: the system's temp dir).
    pub spill_dir: Option<PathBuf>,
    pub progress: ProgressMode,
}

/// The default `--memory-budget`: 512 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;

/// Parses a byte size: a number with an optional `K`, `M` or `G` suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    let n: usize = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size (bytes, or a number with K, M or G)"))?;
    n.checked_mul(1usize << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}`: the size must be more than 0 and fit in memory"))
}

/// What verify found, per table.
#[derive(Debug)]
pub struct Report {
    /// The comparison point L.
    pub lsn: Lsn,
    /// pgseam's slot: its name and `confirmed_flush_lsn` when the topics were read.
    pub slot: String,
    pub confirmed_flush: Option<Lsn>,
    pub tables: Vec<TableReport>,
}

impl Report {
    /// True when every table matches.
    pub fn is_clean(&self) -> bool {
        self.tables.iter().all(TableReport::is_clean)
    }
}

/// One table's comparison.
#[derive(Debug, Default)]
pub struct TableReport {
    pub table: String,
    pub topic: String,
    pub keyed: bool,
    pub source_rows: u64,
    pub topic_rows: u64,
    /// Keyed tables: keys in the source, not in the topic. Keyless: rows only in the source.
    pub missing: u64,
    /// Keyed tables: keys in the topic, not in the source. Keyless: rows only in the topic.
    pub extra: u64,
    /// Keys in both whose rows differ.
    pub different: u64,
    /// Of `different`: topic rows holding Debezium's unchanged-TOAST placeholder.
    pub different_placeholder: u64,
    pub missing_examples: Vec<String>,
    pub extra_examples: Vec<String>,
    pub different_examples: Vec<String>,
    pub records: RecordCounts,
    /// Records repeating a change already applied for their key at the same position (the
    /// recognisable duplicates of an at-least-once replay); tables without a key: records at
    /// or before their partition's newest position. Not a difference.
    pub duplicates: u64,
    pub duplicate_examples: Vec<String>,
    /// Records at a position before the newest one applied for their key in their partition
    /// that are not duplicates.
    pub out_of_order: u64,
    /// Keys whose last record is not their newest position (the sink holds an older version).
    pub behind: u64,
    /// Keys of `out_of_order` and `behind`.
    pub order_examples: Vec<String>,
}

impl TableReport {
    pub fn is_clean(&self) -> bool {
        self.missing == 0
            && self.extra == 0
            && self.different == 0
            && self.out_of_order == 0
            && self.behind == 0
    }
}

/// The topic records applied (and passed over) for one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub reads: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub tombstones: u64,
    pub truncates: u64,
    /// Records at or after the comparison point (not applied).
    pub after_point: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pgseam verify: compared at LSN {}", self.lsn)?;
        match self.confirmed_flush {
            Some(c) if c >= self.lsn => {
                writeln!(f, "slot {} confirmed up to {c} (past the comparison point)", self.slot)?
            }
            Some(c) => writeln!(
                f,
                "slot {} confirmed only up to {c}, before the comparison point: changes after {c} may still be on their way",
                self.slot
            )?,
            None => writeln!(f, "slot {} has no confirmed position", self.slot)?,
        }
        for t in &self.tables {
            writeln!(f)?;
            let status = if t.is_clean() { "OK" } else { "DIFFERENT" };
            writeln!(f, "{} ({})  {status}", t.table, t.topic)?;
            writeln!(
                f,
                "  rows: source {}, topic {}",
                t.source_rows, t.topic_rows
            )?;
            let r = &t.records;
            writeln!(
                f,
                "  records applied: r {}, c {}, u {}, d {}, tombstones {}, truncates {}; at or after the point {}",
                r.reads, r.creates, r.updates, r.deletes, r.tombstones, r.truncates, r.after_point
            )?;
            write!(f, "  duplicate events: {}", t.duplicates)?;
            if !t.duplicate_examples.is_empty() {
                write!(f, ", e.g. {}", t.duplicate_examples.join(", "))?;
            }
            writeln!(f)?;
            write!(
                f,
                "  order violations: {} out of order, {} keys end behind",
                t.out_of_order, t.behind
            )?;
            if !t.order_examples.is_empty() {
                write!(f, ", e.g. {}", t.order_examples.join(", "))?;
            }
            writeln!(f)?;
            let (missing, extra) = if t.keyed {
                ("keys missing from the topic", "keys only in the topic")
            } else {
                ("rows missing from the topic", "rows only in the topic")
            };
            write_kind(f, missing, t.missing, &t.missing_examples)?;
            write_kind(f, extra, t.extra, &t.extra_examples)?;
            write_kind(
                f,
                "keys whose row differs",
                t.different,
                &t.different_examples,
            )?;
            if t.different_placeholder > 0 {
                writeln!(
                    f,
                    "    {} of them hold Debezium's unchanged-TOAST placeholder ({UNAVAILABLE_PLACEHOLDER}): \
                     an update under the default replica identity did not carry the value; \
                     set REPLICA IDENTITY FULL on the table",
                    t.different_placeholder
                )?;
            }
        }
        writeln!(f)?;
        let bad = self.tables.iter().filter(|t| !t.is_clean()).count();
        if bad == 0 {
            writeln!(f, "all {} tables match", self.tables.len())
        } else {
            writeln!(f, "{bad} of {} tables differ", self.tables.len())
        }
    }
}

fn write_kind(f: &mut fmt::Formatter<'_>, what: &str, n: u64, examples: &[String]) -> fmt::Result {
    if n == 0 {
        return Ok(());
    }
    write!(f, "  {what}: {n}")?;
    if !examples.is_empty() {
        write!(f, ", e.g. {}", examples.join(", "))?;
    }
    writeln!(f)
}

/// Runs `pgseam verify` for one connector.
pub async fn run(
    worker_path: &Path,
    connector_path: &Path,
    options: &Options,
) -> anyhow::Result<Report> {
    let (worker, connectors) =
        config::load_standalone(worker_path, &[connector_path.to_path_buf()])
            .map_err(|errors| anyhow!("{errors}"))?;
    let connector = connectors
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no connector configuration was read"))?;
    let settings = crate::standalone::pipeline_settings(&worker, &connector)?;
    let params =
        crate::standalone::connect_params(&connector, format!("pgseam-verify-{}", connector.name));
    let client = connect_query_session(&params).await?;
    let tables = captured_tables(&client, &connector, &options.tables).await?;
    let slot_name = &connector.slot_name;
    if slot::find_slot(&client, slot_name).await?.is_none() {
        bail!("slot `{slot_name}` does not exist: pgseam has not run with this connector configuration (or its slot was dropped)");
    }

    // 1. The comparison point.
    let mut replication = ReplicationConnection::connect(&params).await?;
    let temporary = format!("pgseam_verify_{}", std::process::id());
    let created = slot::create_temporary_slot_exporting_snapshot(
        &mut replication,
        &client,
        &temporary,
        connector.database_query_timeout,
    )
    .await?;
    let point = created.consistent_point;
    tracing::info!(lsn = %point, tables = tables.len(), "comparison point fixed");

    // 2. Everything before it is in Kafka.
    let confirmed = wait_for_slot(&client, slot_name, point, options.wait).await?;

    // 3. The topics.
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let read = TopicRead {
        client: kafka_client_config(&settings),
        topics: tables.iter().map(|t| topic_name(&connector, t)).collect(),
        point,
        end: options.end,
        idle: options.idle,
        marker_wait: options
            .wait
            .unwrap_or(METADATA_TIMEOUT)
            .max(METADATA_TIMEOUT),
        run_id,
        progress: options.progress,
    };
    let spill = Spill::new(
        options.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
        options.memory_budget,
    );
    let names: Vec<String> = tables.iter().map(TableIdentity::qualified_name).collect();
    let examples = options.examples;
    let (sides, mut compares, mut spill) = tokio::task::spawn_blocking(move || {
        let (sides, mut spill) = read.run(spill)?;
        // Each table's events, replayed per key into the topic side's state.
        let mut held = 0;
        let mut counts = Vec::with_capacity(sides.len());
        let mut compares = Vec::with_capacity(sides.len());
        for (name, side) in names.iter().zip(sides) {
            let compare = TableCompare::resolve(
                name,
                side.spool,
                &side.truncates,
                side.keyed,
                examples,
                &mut spill,
                &mut held,
            )
            .with_context(|| format!("resolving the topic side of {name}"))?;
            tracing::info!(
                table = %name,
                rows = compare.findings.topic_rows,
                duplicates = compare.findings.duplicates,
                out_of_order = compare.findings.out_of_order,
                "topic side resolved"
            );
            counts.push((side.counts, side.keyless_duplicates));
            compares.push(compare);
        }
        anyhow::Ok((counts, compares, spill))
    })
    .await
    .context("the topic reader failed")??;

    // 4 + 5. The source under the exported snapshot, compared row by row.
    let snapshot_settings = SnapshotSettings {
        max_threads: connector.snapshot_max_threads.max(1) as usize,
        chunk_rows: settings.source.snapshot.chunk_rows,
        chunk_strategy: settings.source.snapshot.chunk_strategy,
        chunk_strategy_overrides: settings.source.snapshot.chunk_strategy_overrides.clone(),
        select_overrides: BTreeMap::new(),
        include: None,
        ..SnapshotSettings::default()
    };
    let topics = compare_source(
        &params,
        &snapshot_settings,
        &tables,
        &created,
        settings.converter.clone(),
        &mut compares,
        &mut spill,
        options.progress,
    )
    .await?;
    if let Err(err) = replication.close().await {
        tracing::warn!(error = %err, "closing the replication connection failed; the server drops the temporary slot anyway");
    }
    let mut reports = Vec::with_capacity(tables.len());
    for (((table, compare), (records, keyless_duplicates)), topic) in
        tables.iter().zip(compares).zip(sides).zip(topics)
    {
        let keyed = compare.keyed;
        let found = tokio::task::block_in_place(|| compare.finish())
            .with_context(|| format!("comparing {}", table.qualified_name()))?;
        reports.push(TableReport {
            table: table.qualified_name(),
            topic,
            keyed,
            source_rows: found.source_rows,
            topic_rows: found.topic_rows,
            missing: found.missing,
            extra: found.extra,
            different: found.different,
            different_placeholder: found.different_placeholder,
            missing_examples: found.missing_examples.into_vec(),
            extra_examples: found.extra_examples.into_vec(),
            different_examples: found.different_examples.into_vec(),
            records,
            duplicates: found.duplicates + keyless_duplicates,
            duplicate_examples: found.duplicate_examples.into_vec(),
            out_of_order: found.out_of_order,
            behind: found.behind,
            order_examples: found.order_examples.into_vec(),
        });
    }
    if spill.used() {
        tracing::info!(
            bytes = spill.written,
            budget = spill.budget,
            "verify spilled to disk"
        );
    }
    Ok(Report {
        lsn: point,
        slot: slot_name.clone(),
        confirmed_flush: confirmed,
        tables: reports,
    })
}

/// The table's topic as the converter names it (`topic.delimiter`, Debezium's sanitising).
fn topic_name(connector: &config::ConnectorConfig, table: &TableIdentity) -> String {
    connector
        .naming
        .topic(&[&connector.topic_prefix, &table.schema, &table.table])
}

/// The connector's captured tables (its filters, intersected with its publication), narrowed
/// to `only` when given.
async fn captured_tables(
    client: &tokio_postgres::Client,
    connector: &config::ConnectorConfig,
    only: &[String],
) -> anyhow::Result<Vec<TableIdentity>> {
    let publication = &connector.publication_name;
    let published = catalog::publication_tables(client, publication).await?;
    let filtered: Vec<TableIdentity> = catalog::list_user_tables(client)
        .await?
        .into_iter()
        .filter(|t| connector.table_filter.includes(&t.schema, &t.table))
        .collect();
    let captured = catalog::keep_published(filtered, &published);
    if only.is_empty() {
        if captured.is_empty() {
            bail!("connector {}: no captured table (publication `{publication}` and the table filters select nothing)", connector.name);
        }
        return Ok(captured);
    }
    let mut selected = Vec::with_capacity(only.len());
    for name in only {
        let table = captured
            .iter()
            .find(|t| t.qualified_name() == *name)
            .ok_or_else(|| {
                anyhow!(
                    "--tables: `{name}` is not a table connector {} captures (captured: {})",
                    connector.name,
                    captured
                        .iter()
                        .map(TableIdentity::qualified_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        selected.push(table.clone());
    }
    Ok(selected)
}

/// Waits until pgseam's slot has confirmed `point`; returns its last confirmed position.
async fn wait_for_slot(
    client: &tokio_postgres::Client,
    slot_name: &str,
    point: Lsn,
    wait: Option<Duration>,
) -> anyhow::Result<Option<Lsn>> {
    let started = Instant::now();
    let mut logged = Instant::now();
    loop {
        let info = slot::find_slot(client, slot_name)
            .await?
            .ok_or_else(|| anyhow!("slot `{slot_name}` disappeared while verify waited for it"))?;
        let confirmed = info.confirmed_flush_lsn;
        let Some(limit) = wait else {
            return Ok(confirmed);
        };
        if confirmed.is_some_and(|c| c >= point) {
            tracing::info!(slot = slot_name, confirmed = %confirmed.unwrap_or(Lsn::ZERO), "pgseam has passed the comparison point");
            return Ok(confirmed);
        }
        if started.elapsed() >= limit {
            bail!(
                "slot `{slot_name}` confirmed only up to {} and the comparison point is {point}: after {limit:?} \
                 pgseam has still not made everything before it durable (is it running? its offsets are \
                 flushed every offset.flush.interval.ms). Raise --wait-ms, or use --no-wait to compare anyway",
                confirmed.map(|c| c.to_string()).unwrap_or_else(|| "nothing".into())
            );
        }
        if logged.elapsed() >= PROGRESS_INTERVAL {
            logged = Instant::now();
            tracing::info!(slot = slot_name, confirmed = %confirmed.unwrap_or(Lsn::ZERO), point = %point, "waiting for pgseam to pass the comparison point");
        }
        tokio::time::sleep(FLUSH_POLL_INTERVAL).await;
    }
}

/// librdkafka settings for verify's consumer and marker producer: the worker's bootstrap
/// servers and the connection and security settings of its producer overrides.
fn kafka_client_config(settings: &crate::pipeline::PipelineSettings) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &settings.sink.bootstrap_servers);
    for (key, value) in &settings.sink.overrides {
        if ["security.", "sasl.", "ssl.", "socket.", "client.dns."]
            .iter()
            .any(|p| key.starts_with(p))
        {
            client.set(key, value);
        }
    }
    client
}

/// The topic side of one table, as read.
#[derive(Debug, Default)]
struct TopicSide {
    /// Its records as events (see `store`).
    spool: Spool,
    truncates: Vec<Truncate>,
    counts: RecordCounts,
    /// Records of a table without a key at or before their partition's newest position.
    keyless_duplicates: u64,
    /// A record with a key was seen.
    keyed: bool,
}

#[derive(Debug, Clone, Copy)]
struct TopicRow {
    hash: u64,
    placeholder: bool,
}

fn hash_text(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Strips Kafka Connect JSON's `{"schema":…, "payload":…}` wrapper when present.
fn payload(value: Value) -> Value {
    match value {
        Value::Object(mut map)
            if map.len() == 2 && map.contains_key("schema") && map.contains_key("payload") =>
        {
            map.remove("payload").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Key bytes → canonical key text (the payload's JSON); `None` for no key.
fn key_text(bytes: Option<&[u8]>) -> anyhow::Result<Option<String>> {
    match bytes {
        None => Ok(None),
        Some(bytes) => {
            let value: Value = serde_json::from_slice(bytes).context("record key is not JSON")?;
            match payload(value) {
                Value::Null => Ok(None),
                key => Ok(Some(key.to_string())),
            }
        }
    }
}

fn row_hash(row: &Value) -> TopicRow {
    let text = row.to_string();
    TopicRow {
        hash: hash_text(&text),
        placeholder: text.contains(UNAVAILABLE_PLACEHOLDER)
            || text.contains(UNAVAILABLE_PLACEHOLDER_BASE64),
    }
}

struct TopicRead {
    client: ClientConfig,
    topics: Vec<String>,
    point: Lsn,
    end: EndMode,
    idle: Duration,
    /// How long `--end marker` waits for the markers.
    marker_wait: Duration,
    run_id: String,
    progress: ProgressMode,
}

/// One partition's progress.
#[derive(Debug, Default)]
struct PartitionProgress {
    done: bool,
    /// The newest position read in the partition.
    newest: Option<Pos>,
}

impl TopicRead {
    /// Reads every topic from the beginning up to the comparison point (blocking).
    fn run(self, mut spill: Spill) -> anyhow::Result<(Vec<TopicSide>, Spill)> {
        let mut consumer_config = self.client.clone();
        // librdkafka prefetches up to queued.max.messages.kbytes (64 MiB by default) of
        // payload and, measured, holds 10-20 times that in fetch buffers and message structures;
        // a larger prefetch reads faster (docs/verify.md#memory has the numbers). Scaled with
        // the budget: budget/64, 1 to 16 MiB.
        let prefetch_kb = (spill.budget / 64 / 1024).clamp(1024, 16_384);
        consumer_config
            .set("group.id", format!("pgseam-verify-{}", self.run_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("queued.max.messages.kbytes", prefetch_kb.to_string())
            .set("fetch.max.bytes", (prefetch_kb * 1024).to_string());
        let consumer: BaseConsumer = consumer_config
            .create()
            .context("cannot create the Kafka consumer")?;
        let mut states: Vec<TopicSide> = self.topics.iter().map(|_| TopicSide::default()).collect();
        let index: HashMap<&str, usize> = self
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let mut assignment = TopicPartitionList::new();
        let mut progress: HashMap<(usize, i32), PartitionProgress> = HashMap::new();
        for (i, topic) in self.topics.iter().enumerate() {
            let partitions = partition_count(&consumer, topic)?;
            if partitions == 0 {
                tracing::warn!(topic = %topic, "topic does not exist: its table's topic side is empty");
            }
            for partition in 0..partitions {
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
                progress.insert((i, partition), PartitionProgress::default());
            }
        }
        if progress.is_empty() {
            return Ok((states, spill));
        }
        if self.end == EndMode::Marker {
            self.produce_markers(&progress)?;
        }
        consumer.assign(&assignment)?;
        let started = Instant::now();
        let mut last_record = Instant::now();
        let mut shown = Progress::new(self.progress);
        let mut consumed: u64 = 0;
        let mut buffered: usize = 0;
        let partitions = progress.len();
        let mut open = partitions;
        while open > 0 {
            match consumer.poll(POLL_TIMEOUT) {
                Some(Ok(message)) => {
                    let Some(&table) = index.get(message.topic()) else {
                        continue;
                    };
                    let partition = message.partition();
                    let Some(state) = progress.get_mut(&(table, partition)) else {
                        continue;
                    };
                    if state.done {
                        continue;
                    }
                    last_record = Instant::now();
                    consumed += 1;
                    let headers = message_headers(&message);
                    if let Some(marker) = header(&headers, MARKER_HEADER) {
                        if marker == self.run_id.as_bytes() {
                            finish(&consumer, &self.topics[table], partition, state, &mut open);
                        }
                        continue;
                    }
                    let before = states[table].spool.bytes;
                    let end = apply(
                        &mut states[table],
                        state,
                        self.point,
                        Placed {
                            partition,
                            read_seq: consumed,
                        },
                        &headers,
                        message.key(),
                        message.payload(),
                    )
                    .with_context(|| {
                        format!(
                            "record {}[{partition}]@{}",
                            message.topic(),
                            message.offset()
                        )
                    })?;
                    if end {
                        finish(&consumer, &self.topics[table], partition, state, &mut open);
                    }
                    buffered += states[table].spool.bytes.saturating_sub(before);
                    if buffered > spill.budget {
                        for (side, topic) in states.iter_mut().zip(&self.topics) {
                            side.spool.spill(&mut spill, topic)?;
                        }
                        buffered = 0;
                    }
                }
                Some(Err(err)) => bail!("Kafka consumer error: {err}"),
                None => {
                    if self.end == EndMode::Idle && last_record.elapsed() >= self.idle {
                        break;
                    }
                    if self.end == EndMode::Marker && started.elapsed() >= self.marker_wait {
                        bail!(
                            "verify's marker records did not arrive within {:?} on {open} partitions",
                            self.marker_wait
                        );
                    }
                }
            }
            shown.update(
                || format!("reading topics: {consumed} records, {open} of {partitions} partitions open"),
                || {
                    tracing::info!(
                        records = consumed,
                        partitions_open = open,
                        "reading the topics"
                    )
                },
            );
        }
        shown.finish(|| format!("reading topics: {consumed} records, done"));
        tracing::info!(records = consumed, "topics read");
        Ok((states, spill))
    }

    /// `--end marker`: one marker per partition, produced before reading starts.
    fn produce_markers(
        &self,
        progress: &HashMap<(usize, i32), PartitionProgress>,
    ) -> anyhow::Result<()> {
        let producer: BaseProducer = self
            .client
            .create()
            .context("cannot create the Kafka producer for the markers")?;
        let value = serde_json::json!({ "pgseam_verify_marker": self.run_id }).to_string();
        for &(table, partition) in progress.keys() {
            let record = BaseRecord::<(), _>::to(&self.topics[table])
                .partition(partition)
                .payload(&value)
                .headers(OwnedHeaders::new().insert(Header {
                    key: MARKER_HEADER,
                    value: Some(self.run_id.as_bytes()),
                }));
            producer.send(record).map_err(|(err, _)| {
                anyhow!(
                    "cannot produce a marker to {}[{partition}]: {err}",
                    self.topics[table]
                )
            })?;
        }
        producer
            .flush(self.marker_wait)
            .context("the marker records were not acknowledged")?;
        Ok(())
    }
}

fn finish(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    state: &mut PartitionProgress,
    open: &mut usize,
) {
    state.done = true;
    *open -= 1;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(err) = consumer.pause(&tpl) {
        tracing::debug!(topic, partition, error = %err, "cannot pause a finished partition; its records are skipped");
    }
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0))
}

fn message_headers(message: &rdkafka::message::BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

fn header_lsn(headers: &[(String, Vec<u8>)], name: &str) -> anyhow::Result<Option<Lsn>> {
    header(headers, name)
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<Lsn>().ok())
                .ok_or_else(|| anyhow!("header {name} is not an LSN"))
        })
        .transpose()
}

/// Where verify read a record.
#[derive(Debug, Clone, Copy)]
struct Placed {
    partition: i32,
    /// Order of reading, over all partitions.
    read_seq: u64,
}

/// Takes one record into its table's topic side as an event. Returns true when the record is
/// at or after the comparison point: its partition is complete.
fn apply(
    table: &mut TopicSide,
    partition: &mut PartitionProgress,
    point: Lsn,
    placed: Placed,
    headers: &[(String, Vec<u8>)],
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> anyhow::Result<bool> {
    let envelope = value
        .map(|bytes| serde_json::from_slice::<Value>(bytes).map(payload))
        .transpose()
        .context("record value is not JSON")?;
    let snapshot = header(headers, HEADER_SNAPSHOT).is_some_and(|v| v == b"true");
    let commit_lsn = header_lsn(headers, HEADER_COMMIT_LSN)?;
    let seq = header(headers, HEADER_SEQ)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let mut pos = None;
    if snapshot {
        // pgseam's own snapshot, at its slot's consistent point.
        if let Some(lsn) = header_lsn(headers, HEADER_LSN)? {
            if lsn > point {
                bail!("pgseam's snapshot was taken at {lsn}, after the comparison point {point}: pgseam was still starting; run verify again");
            }
            pos = Some(Pos {
                lsn,
                stream: false,
                seq,
            });
        }
    } else if let Some(commit_lsn) = commit_lsn {
        if commit_lsn >= point {
            table.counts.after_point += 1;
            return Ok(true);
        }
        pos = Some(Pos {
            lsn: commit_lsn,
            stream: true,
            seq,
        });
    } else if let Some(envelope) = &envelope {
        // Written without pgseam's headers: place it by the change's own LSN.
        let source = envelope.get("source");
        let is_snapshot = source
            .and_then(|s| s.get("snapshot"))
            .and_then(Value::as_str)
            .is_some_and(|s| s != "false");
        let lsn = source.and_then(|s| s.get("lsn")).and_then(Value::as_u64);
        if !is_snapshot && lsn.is_some_and(|l| Lsn(l) >= point) {
            table.counts.after_point += 1;
            return Ok(true);
        }
    }
    // Tables without a key have no per-key order: a record at or before the partition's newest
    // position is a duplicate there.
    let at_or_before_newest = pos.is_some_and(|p| partition.newest.is_some_and(|n| p <= n));
    if let Some(p) = pos {
        partition.newest = Some(partition.newest.map_or(p, |n| n.max(p)));
    }
    let event = |key: String, change: Change| Event {
        key,
        partition: placed.partition,
        read_seq: placed.read_seq,
        pos,
        change,
    };
    let key = key_text(key)?;
    let Some(envelope) = envelope else {
        table.counts.tombstones += 1;
        if let Some(key) = key {
            table.keyed = true;
            table
                .spool
                .push(event(key, Change::Delete { tombstone: true }));
        }
        return Ok(false);
    };
    let op = envelope.get("op").and_then(Value::as_str).unwrap_or("");
    let image = |name: &str| envelope.get(name).filter(|v| !v.is_null());
    let keyless = |hash: u64| format!("{hash:016x}");
    if key.is_none() && matches!(op, "r" | "c" | "u" | "d") && at_or_before_newest {
        table.keyless_duplicates += 1;
    }
    match op {
        "r" | "c" | "u" => {
            match op {
                "r" => table.counts.reads += 1,
                "c" => table.counts.creates += 1,
                _ => table.counts.updates += 1,
            }
            let after = image("after").ok_or_else(|| anyhow!("op {op} without an after image"))?;
            let row = row_hash(after);
            match key {
                Some(key) => {
                    table.keyed = true;
                    table.spool.push(event(
                        key,
                        Change::Row {
                            hash: row.hash,
                            placeholder: row.placeholder,
                        },
                    ));
                }
                None => {
                    if op == "u" {
                        let before = image("before").ok_or_else(|| {
                            anyhow!("an update of a table without key has no before image (REPLICA IDENTITY FULL is needed)")
                        })?;
                        table
                            .spool
                            .push(event(keyless(row_hash(before).hash), Change::Count(-1)));
                    }
                    table.spool.push(event(keyless(row.hash), Change::Count(1)));
                }
            }
        }
        "d" => {
            table.counts.deletes += 1;
            match key {
                Some(key) => {
                    table.keyed = true;
                    table
                        .spool
                        .push(event(key, Change::Delete { tombstone: false }));
                }
                None => {
                    let before = image("before").ok_or_else(|| {
                        anyhow!("a delete from a table without key has no before image (REPLICA IDENTITY FULL is needed)")
                    })?;
                    table
                        .spool
                        .push(event(keyless(row_hash(before).hash), Change::Count(-1)));
                }
            }
        }
        "t" => {
            table.counts.truncates += 1;
            table.truncates.push(Truncate {
                pos,
                read_seq: placed.read_seq,
            });
        }
        other => bail!("unexpected op {other:?}"),
    }
    Ok(false)
}

/// Reads the source under the comparison point's snapshot with the snapshot engine, renders
/// each row with the connector's converter, and feeds it to its table's comparison. Returns
/// each table's topic name as the converter names it.
#[allow(clippy::too_many_arguments)]
async fn compare_source(
    params: &pgseam_connector_pg::ConnectParams,
    settings: &SnapshotSettings,
    tables: &[TableIdentity],
    created: &slot::CreatedSlot,
    converter: JsonConverterConfig,
    compares: &mut [TableCompare],
    spill: &mut Spill,
    progress: ProgressMode,
) -> anyhow::Result<Vec<String>> {
    let (tx, rx) = mpsc::channel(1024);
    let read = async move {
        let result = snapshot::run(params, settings, tables, created, &tx).await;
        drop(tx);
        result
    };
    let by_name: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.qualified_name(), i))
        .collect();
    let topic_prefix = converter.topic_prefix.clone();
    let mut topics: Vec<String> = vec![String::new(); tables.len()];
    let mut converter = JsonConverter::new(converter);
    let consume = async {
        // Owned here, so that a failure below closes the channel and stops the reader.
        let mut rx = rx;
        let mut records: Vec<KafkaRecord> = Vec::new();
        let mut rows: u64 = 0;
        let mut buffered: usize = 0;
        let mut shown = Progress::new(progress);
        while let Some(message) = rx.recv().await {
            let event = match message {
                SourceMessage::Event(event) => event,
                // verify's snapshot runs without a row encoder: every row is an event.
                SourceMessage::Encoded(run) => bail!(
                    "the snapshot sent rows of {} converted: verify needs them as events",
                    run.table.qualified_name()
                ),
                _ => continue,
            };
            let name = event.table.qualified_name();
            let index = *by_name
                .get(&name)
                .ok_or_else(|| anyhow!("the source read a table verify did not ask for: {name}"))?;
            records.clear();
            converter
                .convert(&event, 0, &mut records)
                .with_context(|| format!("cannot render a row of {name}"))?;
            for record in &records {
                let Some(value) = &record.value else { continue };
                let envelope: Value =
                    payload(serde_json::from_slice(value).context("converter output is not JSON")?);
                let after = envelope.get("after").cloned().unwrap_or(Value::Null);
                let key = key_text(record.key.as_deref())?;
                buffered += compares[index].source_row(key, row_hash(&after).hash);
                if topics[index].is_empty() {
                    topics[index] = record.topic.to_string();
                }
            }
            if buffered > spill.source_limit() {
                for compare in compares.iter_mut() {
                    compare.spill_source(spill)?;
                }
                buffered = 0;
            }
            rows += 1;
            shown.update(
                || format!("comparing source rows: {rows} ({name})"),
                || tracing::info!(rows, table = %name, "comparing source rows"),
            );
        }
        shown.finish(|| format!("comparing source rows: {rows}, done"));
        anyhow::Ok(rows)
    };
    let (read, consumed) = tokio::join!(read, consume);
    // A consumer error first: it explains a source read that stopped on a closed channel.
    let rows = consumed?;
    read.context("reading the source under the comparison point's snapshot failed")?;
    for (topic, table) in topics.iter_mut().zip(tables) {
        if topic.is_empty() {
            *topic = format!("{topic_prefix}.{}", table.qualified_name());
        }
    }
    tracing::info!(rows, "source compared");
    Ok(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(commit: Option<&str>, seq: u64, snapshot: bool) -> Vec<(String, Vec<u8>)> {
        let mut h = Vec::new();
        if let Some(c) = commit {
            h.push((HEADER_COMMIT_LSN.to_owned(), c.as_bytes().to_vec()));
            h.push((HEADER_LSN.to_owned(), c.as_bytes().to_vec()));
        } else {
            h.push((HEADER_LSN.to_owned(), b"0/100".to_vec()));
        }
        h.push((HEADER_SEQ.to_owned(), seq.to_string().into_bytes()));
        if snapshot {
            h.push((HEADER_SNAPSHOT.to_owned(), b"true".to_vec()));
        }
        h
    }

    fn record(op: &str, before: Value, after: Value) -> Vec<u8> {
        serde_json::json!({"schema": {}, "payload": {"op": op, "before": before, "after": after, "source": {}}})
            .to_string()
            .into_bytes()
    }

    const POINT: Lsn = Lsn(0x1000);

    /// A table's topic side fed record by record, then compared with source rows.
    #[derive(Default)]
    struct Feed {
        side: TopicSide,
        partitions: HashMap<i32, PartitionProgress>,
        read: u64,
    }

    impl Feed {
        fn push(
            &mut self,
            partition: i32,
            headers: &[(String, Vec<u8>)],
            key: Option<&[u8]>,
            value: Option<&[u8]>,
        ) -> anyhow::Result<bool> {
            self.read += 1;
            apply(
                &mut self.side,
                self.partitions.entry(partition).or_default(),
                POINT,
                Placed {
                    partition,
                    read_seq: self.read,
                },
                headers,
                key,
                value,
            )
        }

        /// Compares with the source rows (key JSON, `after`), under `budget`.
        fn compare(
            self,
            budget: usize,
            source: &[(Option<String>, Value)],
        ) -> (store::Findings, bool) {
            let mut spill = Spill::new(std::env::temp_dir(), budget);
            let mut held = 0;
            let mut compare = TableCompare::resolve(
                "public.t",
                self.side.spool,
                &self.side.truncates,
                self.side.keyed,
                5,
                &mut spill,
                &mut held,
            )
            .unwrap();
            let mut buffered = 0;
            for (key, after) in source {
                buffered += compare.source_row(key.clone(), row_hash(after).hash);
                if buffered > budget {
                    compare.spill_source(&mut spill).unwrap();
                    buffered = 0;
                }
            }
            let used = spill.used();
            (compare.finish().unwrap(), used)
        }
    }

    fn id(n: i64) -> String {
        format!(r#"{{"id":{n}}}"#)
    }

    #[test]
    fn applies_as_a_primary_key_table_up_to_the_point() {
        let mut feed = Feed::default();
        let key = br#"{"schema":{},"payload":{"id":1}}"#;
        let key2 = br#"{"id":2}"#;
        let row = |v: i64| serde_json::json!({"id": 1, "v": v});
        assert!(!feed
            .push(
                0,
                &headers(None, 0, true),
                Some(key),
                Some(&record("r", Value::Null, row(1)))
            )
            .unwrap());
        assert!(!feed
            .push(
                0,
                &headers(None, 1, true),
                Some(key2),
                Some(&record("r", Value::Null, serde_json::json!({"id": 2})))
            )
            .unwrap());
        let u = headers(Some("0/800"), 0, false);
        let update = record("u", Value::Null, row(2));
        assert!(!feed.push(0, &u, Some(key), Some(&update)).unwrap());
        // The same position and change again: an at-least-once replay, still applied.
        assert!(!feed.push(0, &u, Some(key), Some(&update)).unwrap());
        // A delete and its tombstone (the next seq).
        let d = record("d", serde_json::json!({"id": 2}), Value::Null);
        assert!(!feed
            .push(0, &headers(Some("0/900"), 0, false), Some(key2), Some(&d))
            .unwrap());
        assert!(!feed
            .push(0, &headers(Some("0/900"), 1, false), Some(key2), None)
            .unwrap());
        // At the point: not applied, the partition is complete.
        let late = headers(Some("0/1000"), 0, false);
        assert!(feed
            .push(0, &late, Some(key), Some(&record("u", Value::Null, row(3))))
            .unwrap());
        let counts = feed.side.counts.clone();
        assert_eq!(counts.after_point, 1);
        assert_eq!(
            (
                counts.reads,
                counts.updates,
                counts.deletes,
                counts.tombstones
            ),
            (2, 2, 1, 1)
        );
        let (found, _) = feed.compare(1 << 20, &[(Some(id(1)), row(2))]);
        assert_eq!((found.topic_rows, found.source_rows), (1, 1));
        assert_eq!((found.missing, found.extra, found.different), (0, 0, 0));
        assert_eq!(found.duplicates, 1);
        assert_eq!(found.duplicate_examples.into_vec(), vec![id(1)]);
        assert_eq!((found.out_of_order, found.behind), (0, 0));
    }

    #[test]
    fn order_violations_and_duplicates_per_key() {
        let mut feed = Feed::default();
        let row = |k: i64, v: i64| serde_json::json!({"id": k, "v": v});
        let push = |feed: &mut Feed, partition: i32, commit: &str, seq: u64, k: i64, v: i64| {
            feed.push(
                partition,
                &headers(Some(commit), seq, false),
                Some(id(k).as_bytes()),
                Some(&record("u", Value::Null, row(k, v))),
            )
            .unwrap();
        };
        // Key 1: a replayed suffix (0/10, 0/20 again): two duplicates, in order at the end.
        push(&mut feed, 0, "0/10", 0, 1, 1);
        push(&mut feed, 0, "0/20", 0, 1, 2);
        push(&mut feed, 0, "0/10", 0, 1, 1);
        push(&mut feed, 0, "0/20", 0, 1, 2);
        // Key 2: a record at a new position before the newest: out of order (and it is the
        // key's last record, so the key ends behind too).
        push(&mut feed, 1, "0/10", 1, 2, 1);
        push(&mut feed, 1, "0/30", 0, 2, 3);
        push(&mut feed, 1, "0/20", 5, 2, 2);
        // Key 3: an old change repeated last: a duplicate, but the key ends behind.
        push(&mut feed, 0, "0/10", 2, 3, 1);
        push(&mut feed, 0, "0/20", 1, 3, 2);
        push(&mut feed, 0, "0/10", 2, 3, 1);
        // Key 4: the same position with another change: out of order.
        push(&mut feed, 1, "0/40", 0, 4, 1);
        push(&mut feed, 1, "0/40", 0, 4, 9);
        // Key 5: its own partition's order only; another partition's older position is fine.
        push(&mut feed, 0, "0/50", 0, 5, 1);
        push(&mut feed, 1, "0/45", 0, 5, 1);
        let source = [
            (Some(id(1)), row(1, 2)),
            (Some(id(2)), row(2, 3)),
            (Some(id(3)), row(3, 2)),
            (Some(id(4)), row(4, 9)),
            (Some(id(5)), row(5, 1)),
        ];
        let (found, _) = feed.compare(1 << 20, &source);
        assert_eq!(found.duplicates, 3);
        assert_eq!(found.duplicate_examples.into_vec(), vec![id(1), id(3)]);
        assert_eq!(found.out_of_order, 2);
        assert_eq!(found.behind, 2);
        assert_eq!(found.order_examples.into_vec(), vec![id(2), id(3), id(4)]);
        // Key 2 ends at v=2, key 3 at v=1: the sink holds older rows.
        assert_eq!(found.different, 2);
        assert_eq!(found.different_examples.into_vec(), vec![id(2), id(3)]);
    }

    #[test]
    fn a_busy_key_is_checked_the_same_way() {
        let mut feed = Feed::default();
        let row = |v: u64| serde_json::json!({"id": 7, "v": v});
        let mut push = |lsn: u64, seq: u64, v: u64| {
            feed.push(
                0,
                &headers(Some(&Lsn(lsn).to_string()), seq, false),
                Some(id(7).as_bytes()),
                Some(&record("u", Value::Null, row(v))),
            )
            .unwrap();
        };
        for v in 1..=100 {
            push(v * 16, 0, v);
        }
        // A replayed suffix of 10, then one record at a new, older position, then the newest.
        for v in 91..=100 {
            push(v * 16, 0, v);
        }
        push(50 * 16, 1, 50);
        push(100 * 16, 0, 100);
        let (found, _) = feed.compare(1 << 20, &[(Some(id(7)), row(100))]);
        assert_eq!(
            (found.duplicates, found.out_of_order, found.behind),
            (11, 1, 0)
        );
        assert_eq!((found.missing, found.extra, found.different), (0, 0, 0));
    }

    #[test]
    fn truncate_clears_what_came_before_it_by_position() {
        let mut feed = Feed::default();
        let row = |k: i64| serde_json::json!({"id": k});
        // Key 1 in partition 0 before the truncate, key 2 after it, read in another order.
        feed.push(
            1,
            &headers(Some("0/30"), 0, false),
            Some(id(2).as_bytes()),
            Some(&record("c", Value::Null, row(2))),
        )
        .unwrap();
        feed.push(
            2,
            &headers(Some("0/20"), 0, false),
            None,
            Some(&record("t", Value::Null, Value::Null)),
        )
        .unwrap();
        feed.push(
            0,
            &headers(Some("0/10"), 0, false),
            Some(id(1).as_bytes()),
            Some(&record("c", Value::Null, row(1))),
        )
        .unwrap();
        let (found, _) = feed.compare(1 << 20, &[(Some(id(2)), row(2))]);
        assert_eq!((found.topic_rows, found.missing, found.extra), (1, 0, 0));
    }

    #[test]
    fn a_snapshot_after_the_point_is_refused() {
        let mut feed = Feed::default();
        let mut h = vec![(HEADER_SNAPSHOT.to_owned(), b"true".to_vec())];
        h.push((HEADER_LSN.to_owned(), b"0/2000".to_vec()));
        let err = feed
            .push(
                0,
                &h,
                Some(b"{\"id\":1}"),
                Some(&record("r", Value::Null, serde_json::json!({"id": 1}))),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("after the comparison point"),
            "{err}"
        );
    }

    #[test]
    fn keyless_tables_compare_as_multisets() {
        let mut feed = Feed::default();
        let a = serde_json::json!({"x": 1});
        let b = serde_json::json!({"x": 2});
        for seq in 0..2 {
            feed.push(
                0,
                &headers(Some("0/10"), seq, false),
                None,
                Some(&record("c", Value::Null, a.clone())),
            )
            .unwrap();
        }
        feed.push(
            0,
            &headers(Some("0/20"), 0, false),
            None,
            Some(&record("u", a.clone(), b.clone())),
        )
        .unwrap();
        // A replayed record of a table without key: counted as a duplicate (and applied).
        feed.push(
            0,
            &headers(Some("0/10"), 1, false),
            None,
            Some(&record("c", Value::Null, a.clone())),
        )
        .unwrap();
        assert_eq!(feed.side.keyless_duplicates, 1);
        assert!(!feed.side.keyed);
        let (found, _) = feed.compare(1 << 20, &[(None, a.clone()), (None, a.clone())]);
        assert_eq!(found.topic_rows, 3);
        // Topic: a ×2, b ×1; source: a ×2.
        assert_eq!((found.missing, found.extra), (0, 1));
    }

    /// A deterministic mix of snapshot rows, updates, deletes, duplicates, out-of-order records
    /// and a truncate, for keyed and keyless tables.
    fn mixed(keyed: bool) -> (Feed, Vec<(Option<String>, Value)>) {
        let mut feed = Feed::default();
        let row = |k: i64, v: i64| serde_json::json!({"id": k, "v": v, "pad": "x".repeat((k % 7) as usize)});
        let key = |k: i64| keyed.then(|| id(k));
        let mut lsn = 0x10u64;
        for k in 0..1500 {
            feed.push(
                (k % 3) as i32,
                &headers(None, k as u64, true),
                key(k).as_deref().map(str::as_bytes),
                Some(&record("r", Value::Null, row(k, 0))),
            )
            .unwrap();
        }
        let mut current: BTreeMap<i64, i64> = (0..1500).map(|k| (k, 0)).collect();
        for step in 0..3000i64 {
            lsn += 0x10;
            let k = (step * 7919) % 1700;
            let commit = Lsn(lsn).to_string();
            let partition = (k % 3) as i32;
            let h = headers(Some(&commit), 0, false);
            if step % 11 == 0 {
                if let Some(v) = current.remove(&k) {
                    feed.push(
                        partition,
                        &h,
                        key(k).as_deref().map(str::as_bytes),
                        Some(&record("d", row(k, v), Value::Null)),
                    )
                    .unwrap();
                }
                continue;
            }
            let before = current.get(&k).map(|&v| row(k, v)).unwrap_or(Value::Null);
            let op = if before.is_null() { "c" } else { "u" };
            feed.push(
                partition,
                &h,
                key(k).as_deref().map(str::as_bytes),
                Some(&record(op, before, row(k, step))),
            )
            .unwrap();
            current.insert(k, step);
            if keyed && step % 97 == 0 {
                // An exact duplicate, and an out-of-order record at a new, older position.
                feed.push(
                    partition,
                    &h,
                    key(k).as_deref().map(str::as_bytes),
                    Some(&record(op, Value::Null, row(k, step))),
                )
                .unwrap();
                let older = Lsn(lsn - 8).to_string();
                feed.push(
                    partition,
                    &headers(Some(&older), 3, false),
                    key(k).as_deref().map(str::as_bytes),
                    Some(&record("u", Value::Null, row(k, step))),
                )
                .unwrap();
            }
        }
        let source = current
            .iter()
            .filter(|(k, _)| *k % 50 != 0)
            .map(|(&k, &v)| (key(k), row(k, if k % 61 == 0 { v + 1 } else { v })))
            .collect();
        (feed, source)
    }

    #[test]
    fn the_spill_path_finds_what_the_memory_path_finds() {
        for keyed in [true, false] {
            let (feed, source) = mixed(keyed);
            let (memory, spilled) = feed.compare(1 << 30, &source);
            assert!(!spilled);
            for budget in [4 << 10, 64 << 10] {
                let (feed, source) = mixed(keyed);
                let (disk, spilled) = feed.compare(budget, &source);
                assert!(spilled, "budget {budget} spills");
                assert_eq!(
                    format!("{disk:?}"),
                    format!("{memory:?}"),
                    "budget {budget}"
                );
            }
            assert!(
                memory.missing > 0 && memory.source_rows > 1000,
                "{memory:?}"
            );
            if keyed {
                assert!(
                    memory.different > 0 && memory.duplicates > 0 && memory.out_of_order > 0,
                    "{memory:?}"
                );
            }
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn placeholders_are_flagged() {
        assert!(row_hash(&serde_json::json!({"doc": UNAVAILABLE_PLACEHOLDER})).placeholder);
        assert!(row_hash(&serde_json::json!({"pic": UNAVAILABLE_PLACEHOLDER_BASE64})).placeholder);
        assert!(!row_hash(&serde_json::json!({"doc": "x"})).placeholder);
        assert_eq!(
            base64_of(UNAVAILABLE_PLACEHOLDER),
            UNAVAILABLE_PLACEHOLDER_BASE64
        );
    }

    fn base64_of(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
