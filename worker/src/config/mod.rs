//! Configuration: a Kafka Connect worker file and Debezium PostgreSQL connector files, read
//! the way Kafka Connect and Debezium read them, so existing files work unchanged:
//!
//! ```text
//! pgseam standalone worker.properties connector1.properties [connector2.json ...]
//! ```
//!
//! # Files
//!
//! - **Worker**: Java properties (`connect-standalone.properties`), parsed with
//!   `java.util.Properties.load` semantics (comments, `=`/`:`/space separators, line
//!   continuations, `\uXXXX` and other escapes; a later duplicate key wins).
//! - **Connector**: Java properties, or JSON when the first non-blank character is `{`: either
//!   the `POST /connectors` body `{"name": "...", "config": {...}}` or a bare config object as
//!   `PUT /connectors/{name}/config` takes. JSON values may be strings, numbers or booleans
//!   (turned into text as Kafka Connect does); `null` means unset. If both the outer `name` and
//!   `config.name` are given they must agree.
//!
//! Every problem in every file is reported in one run ([`ConfigErrors`]), each naming the file,
//! the line (properties files), the key and what to do.
//!
//! # Connector keys: accepted, ignored with a log line, or rejected
//!
//! Nothing is silently ignored. A connector key is one of:
//!
//! 1. **Implemented** — read into [`ConnectorConfig`] with Debezium's default and validation:
//!    `name`, `connector.class`, `database.hostname`, `database.port`, `database.user`,
//!    `database.password`, `database.dbname`, `database.sslmode`, `database.sslrootcert`,
//!    `database.sslcert`, `database.sslkey`, `database.sslpassword`, `slot.max.retries`,
//!    `slot.retry.delay.ms`, `retriable.restart.connector.wait.ms`, `database.query.timeout.ms`
//!    (applied to slot creation, the one command that waits on other sessions), `topic.prefix`, `plugin.name`, `slot.name`,
//!    `publication.name`, `publication.autocreate.mode`, `publish.via.partition.root`,
//!    `schema.include.list`,
//!    `schema.exclude.list`, `table.include.list`, `table.exclude.list`, `table.ignore.builtin`,
//!    `snapshot.mode`, `offset.mismatch.strategy`, `decimal.handling.mode`, `time.precision.mode`, `binary.handling.mode`,
//!    `hstore.handling.mode`, `interval.handling.mode`, `money.fraction.digits`,
//!    `include.unknown.datatypes`, `tombstones.on.delete`, `skipped.operations`,
//!    `provide.transaction.metadata`, `topic.transaction`, `message.prefix.include.list`,
//!    `message.prefix.exclude.list`,
//!    `status.update.interval.ms`, `slot.drop.on.stop`, `snapshot.max.threads`,
//!    `snapshot.fetch.size`, `snapshot.select.statement.overrides` (with its per-table
//!    `snapshot.select.statement.overrides.<schema>.<table>` keys),
//!    `snapshot.include.collection.list`, `signal.data.collection`,
//!    `signal.enabled.channels` (`source`, `kafka`, `file`), `signal.kafka.topic`,
//!    `signal.kafka.bootstrap.servers`, `signal.kafka.groupId`, `signal.kafka.poll.timeout.ms`,
//!    `signal.consumer.*`, `signal.file`, `signal.poll.interval.ms`,
//!    `incremental.snapshot.chunk.size`, `incremental.snapshot.watermarking.strategy` (unset:
//!    pgseam's logical-message watermarks; `insert_insert`/`insert_delete`: Debezium's window
//!    rows in the signaling table),
//!    `notification.enabled.channels` (`sink`, `log`), `notification.sink.topic.name`,
//!    `heartbeat.interval.ms`, `heartbeat.action.query`,
//!    `heartbeat.topics.prefix`, `max.batch.size`, `max.queue.size`,
//!    `poll.interval.ms`, and the column-shaping and naming keys (`columns.rs`):
//!    `column.include.list`, `column.exclude.list`, `column.truncate.to.<n>.chars`,
//!    `column.mask.with.<n>.chars`, `column.mask.hash[.v2].<algorithm>.with.salt.<salt>`,
//!    `message.key.columns`, `topic.delimiter`, `schema.name.adjustment.mode`,
//!    `field.name.adjustment.mode`. Invalid values are errors naming key, value and the
//!    accepted values.
//! 2. **Debezium properties pgseam does not implement yet** (every other key of Debezium's
//!    PostgreSQL connector definition, embedded from `debezium-defaults.tsv`, including
//!    templated keys such as `column.mask.with.<n>.chars` and the `driver.*` passthrough) —
//!    accepted when the value equals Debezium's default, since behaviour is then the same;
//!    otherwise an error: "`<key>` is a Debezium property pgseam does not support yet (value
//!    `<v>`); remove it or keep the default `<default>`". Defaults compare as Kafka's
//!    `ConfigDef` parses: trimmed, booleans and modes case-insensitively, numbers numerically,
//!    lists item by item; an empty value equals an unset default.
//! 3. **Kafka Connect framework keys**:
//!    - `tasks.max` — any value ≥ 1; above 1 logs a warning: the PostgreSQL connector runs one
//!      task, as in Debezium.
//!    - `key.converter`, `value.converter`, `header.converter` and their `.<property>` keys —
//!      override the worker's converter for this connector. As in Kafka Connect, the
//!      connector's `key.converter.schemas.enable` only applies when the connector also sets
//!      `key.converter`; alone it is ignored with a warning.
//!    - `transforms` / `predicates` — applied natively (`pgseam_converters::transforms`):
//!      `ExtractNewRecordState`, `ByLogicalTableRouter`, `RegexRouter`, and the predicates
//!      `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone` with `negate`. Any other type is
//!      an error naming the alias and class; unknown keys of a listed alias are errors; keys of
//!      unlisted aliases are ignored, as in Connect, with a one-line warning each.
//!    - `producer.override.*` — kept in [`ConnectorConfig::producer_overrides`];
//!      `topic.creation.*` — kept in [`ConnectorConfig::topic_creation`].
//!    - `errors.tolerance` — implemented ([`ErrorTolerance`]): `all` skips and logs a record
//!      larger than the producer's `message.max.bytes` (a warning at start says so); a record
//!      that fails to convert or transform still stops the connector.
//!    - `errors.retry.timeout`, `errors.retry.delay.max.ms`,
//!      `errors.log.enable`, `errors.log.include.messages` — any valid value (checked as
//!      Connect checks it); a value other than Connect's default logs one warning saying what
//!      pgseam does instead (it never logs record contents).
//!    - KIP-618 exactly-once keys, implemented ([`ExactlyOnceSupport`],
//!      [`TransactionBoundary`]): `exactly.once.support` (`requested`, `required` — the latter
//!      an error unless the worker sets `exactly.once.source.support=enabled`, as in Connect),
//!      `transaction.boundary` (`poll`, `interval`; `connector` is an error, as Connect makes
//!      it for Debezium's PostgreSQL connector) and `transaction.boundary.interval.ms`. The
//!      worker's `exactly.once.source.support=enabled` (with `group.id` and
//!      `offset.storage.topic`) turns exactly-once delivery on.
//!    - JsonConverter's `schema.content` — accepted at its default, rejected otherwise (rule 2).
//!    - JsonConverter's `schemas.enable`, `decimal.format` (`BASE64`/`NUMERIC`) and
//!      `replace.null.with.default` are implemented (typed in [`ConverterSettings`]).
//!    - Ignored with a one-line warning each (nothing is silently ignored), as a standalone
//!      Connect worker ignores them for a source connector: `offsets.storage.topic`, `config.action.reload`, `connector.plugin.version`,
//!      `*.converter.plugin.version`, `consumer.override.*`, `admin.override.*`,
//!      `errors.deadletterqueue.*`, JsonConverter's `schemas.cache.size` and schema-registry
//!      keys.
//! 4. **Removed Debezium 1.x keys** (`legacy.rs`): `database.server.name`, the
//!    `*.whitelist`/`*.blacklist` keys, `database.history.*`, `truncate.handling.mode`,
//!    `toasted.value.placeholder`, `source.struct.version`, `sanitize.field.names`,
//!    `snapshot.custom.class`, and `database.<jdbc property>` pass-through keys — an error
//!    naming the replacement ("`database.server.name` was removed in Debezium 2.0; set
//!    `topic.prefix` …"). Likewise the removed values `plugin.name=wal2json*` and
//!    `snapshot.mode=exported`. Debezium ignores keys it no longer defines, which would
//!    silently drop a filter or change topic names. `docs/configuration.md` lists them.
//! 5. **Worker keys** in a connector file (and connector keys in the worker file) — an error
//!    saying which file they belong in.
//! 6. **Anything else** — an error naming the key and the closest known key: "unknown connector
//!    property `databse.hostname` (did you mean `database.hostname`?)".
//!
//! pgseam's own connector keys (no Debezium equivalent), validated the same way:
//! - `snapshot.chunk.rows` (default 100000): target rows per snapshot chunk, the unit the
//!   `snapshot.max.threads` readers share out.
//! - `snapshot.chunk.strategy` (`auto` default, `ctid`, `key`, `whole`): how tables are split;
//!   `auto` chooses per table (key ranges where the key follows the physical order, ctid
//!   block ranges otherwise; see `pgseam_connector_pg::snapshot::plan::choose`).
//! - `pgseam.snapshot.chunk.strategy.overrides` (none by default): per-table strategies,
//!   `<schema>.<table>:<strategy>` comma-separated, overriding `snapshot.chunk.strategy`.
//! - `snapshot.throttle.rows.per.second` and `snapshot.throttle.bytes.per.second` (default 0,
//!   no limit): the snapshot's rate across all readers (bytes of binary COPY data read from
//!   PostgreSQL); `snapshot.throttle.chunk.pause.ms` (default 0): each reader's pause after a
//!   chunk. The number of readers is Debezium's `snapshot.max.threads`.
//! - `snapshot.progress.interval.ms` (default 5000, at least 100): how often snapshot progress
//!   is logged when stderr is not a terminal (on a terminal, progress bars are drawn).
//!
//! Choices where Debezium and pgseam differ on purpose:
//! - `plugin.name`: Debezium defaults to `decoderbufs`, a server extension pgseam does not
//!   speak. Absent, pgseam uses `pgoutput` (info log); `decoderbufs` is an error asking for
//!   `plugin.name=pgoutput`.
//! - `snapshot.mode`: `initial` (default), `initial_only`, `no_data` (alias `never`, removed
//!   by Debezium 3.3), `always`, `when_needed`; `configuration_based` and `custom` are errors.
//!   Where each differs from Debezium: docs/snapshot.md, "Snapshot modes".
//! - `offset.mismatch.strategy`: Debezium's default `no_validation` lets PostgreSQL skip the
//!   changes between a stored offset and a slot confirmed past it silently; pgseam refuses
//!   such a start instead (`trust_slot` / `trust_greater_lsn` follow the slot, loudly).
//! - Table and schema lists are Debezium regexes (anchored, case-insensitive, `\,` for a
//!   literal comma) compiled with Rust's `regex`, which lacks look-around and
//!   back-references.
//!
//! # Worker keys
//!
//! The worker file is Java properties, or TOML when its name ends in `.toml` (pgseam's native
//! form, read with the `config` crate); `PGSEAM_WORKER_<KEY>` environment variables override
//! its keys (`PGSEAM_WORKER_BOOTSTRAP_SERVERS` → `bootstrap.servers`). Precedence: environment,
//! then file, then default. See `native.rs`.
//!
//! Read: `bootstrap.servers` (default `localhost:9092`), `key.converter`, `value.converter`
//! (only the JsonConverter so far — another converter is an error; absent means the
//! JsonConverter, where Connect would require it), `*.converter.schemas.enable` (default
//! true), `header.converter` (SimpleHeaderConverter or JsonConverter),
//! `offset.storage.file.filename` (required), `offset.flush.interval.ms` (60000),
//! `offset.flush.timeout.ms` (5000), `offset.storage.topic`, `offset.storage.partitions` (25),
//! `offset.storage.replication.factor` (-1) — distributed-mode keys in Connect; with the topic
//! set, a standalone pgseam worker keeps its offsets in that topic, a pgseam extension (see
//! [`OffsetStorageTopic`]) — `listeners` (`http://127.0.0.1:8083`; Connect's is `http://:8083`), `config.providers` and
//! `config.providers.<alias>.class` (see [`ConfigProviders`]: `${file:path:key}`,
//! `${env:NAME}` and `${dir:path:file}` references in worker and connector values), and
//! `producer.*` (kept in [`WorkerConfig::producer_overrides`]). pgseam's own keys `pgseam.sink`
//! (`kafka`, the default, or `null`: encode, then drop — for benchmarks, see [`SinkKind`]) and
//! `log.format` (`human`, the default, or `json`; see [`LogFormat`]; `--log-format` on the
//! command line wins), and `pgseam.memory.budget.bytes` (default 128 MiB, at least 8 MiB):
//! each connector producer's memory budget, from which librdkafka's
//! `queue.buffering.max.kbytes` / `queue.buffering.max.messages` and pgseam's bound on records
//! awaiting acknowledgement are derived (`pgseam_sink_kafka::budget`; `producer.*` overrides of
//! those keys win, with a warning when they exceed the budget).
//! Kafka Connect worker keys pgseam has no use for — plugin loading, REST advertisement,
//! metrics, distributed-mode keys, `internal.*`, `consumer.*`, `admin.*`, client tuning of
//! Connect's internal clients — are ignored with a one-line warning each. Worker-level
//! `security.protocol`, `sasl.*` and `ssl.*` do not reach connector producers in Connect
//! either; pgseam warns and points at `producer.<key>` (they do reach the offsets topic's
//! clients, as they reach Connect's internal clients).
//!
//! # Secrets
//!
//! `database.password` is a [`Secret`] whose `Debug` prints `****`; secret values in
//! [`Properties`] maps (`*password`, `*secret`, `sasl.jaas.config`, …, Debezium's own
//! sanitize pattern) are redacted from `Debug` and from error messages. Nothing here logs a
//! value.

mod catalog;
mod columns;
mod connector;
mod converter;
mod error;
mod filter;
mod legacy;
mod native;
mod provider;
mod secret;
mod settings;
mod source;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use connector::{
    BinaryHandlingMode, ConnectorConfig, DatabaseSslMode, DecimalHandlingMode, ErrorTolerance,
    ExactlyOnceSupport, HstoreHandlingMode, IntervalHandlingMode, KafkaSignalChannel,
    MessagePrefixFilter, NotificationChannels, OffsetMismatchStrategy, Operation,
    PublicationAutocreateMode, SkippedOperations, SnapshotChunkStrategy, SnapshotMode,
    TimePrecisionMode, TransactionBoundary, DEFAULT_DATABASE_PORT, DEFAULT_DATABASE_QUERY_TIMEOUT,
    DEFAULT_DATABASE_SSLMODE, DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TOPICS_PREFIX,
    DEFAULT_INCLUDE_UNKNOWN_DATATYPES, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_MONEY_FRACTION_DIGITS, DEFAULT_POLL_INTERVAL, DEFAULT_POSITION_HEADERS,
    DEFAULT_PROVIDE_TRANSACTION_METADATA, DEFAULT_PUBLICATION_NAME, DEFAULT_RETRIABLE_RESTART_WAIT,
    DEFAULT_SKIPPED_OPERATIONS, DEFAULT_SLOT_DROP_ON_STOP, DEFAULT_SLOT_MAX_RETRIES,
    DEFAULT_SLOT_NAME, DEFAULT_SLOT_RETRY_DELAY, DEFAULT_SNAPSHOT_CHUNK_ROWS,
    DEFAULT_SNAPSHOT_FETCH_SIZE, DEFAULT_SNAPSHOT_MAX_THREADS, DEFAULT_SNAPSHOT_PROGRESS_INTERVAL,
    DEFAULT_STATUS_UPDATE_INTERVAL, DEFAULT_TABLE_IGNORE_BUILTIN, DEFAULT_TASKS_MAX,
    DEFAULT_TOMBSTONES_ON_DELETE, DEFAULT_TOPIC_TRANSACTION, MAX_MONEY_FRACTION_DIGITS,
    POSTGRES_CONNECTOR_CLASS,
};
pub use converter::{
    ConverterKind, ConverterSettings, DecimalFormat, HeaderConverter, RegistrySettings,
    AVRO_CONVERTER_CLASS, DEFAULT_DECIMAL_FORMAT, DEFAULT_REPLACE_NULL_WITH_DEFAULT,
    DEFAULT_SCHEMAS_ENABLE, JSON_CONVERTER_CLASS, SIMPLE_HEADER_CONVERTER_CLASS,
    TOPIC_NAME_STRATEGY,
};
pub use error::{ConfigError, ConfigErrors, Location, Owner, Scope};
pub use filter::TableFilter;
pub use native::{env_name as worker_env_name, WORKER_ENV_PREFIX};
pub use provider::{ConfigProviders, ProviderKind};
pub(crate) use secret::is_sensitive_key;
pub use secret::{Properties, Secret};
pub use source::parse_properties;
pub use worker::{
    peek_log_format, ExactlyOnceSourceSupport, LogFormat, OffsetStorageTopic, SinkKind,
    WorkerConfig, DEFAULT_BOOTSTRAP_SERVERS, DEFAULT_LISTENERS, DEFAULT_OFFSET_FLUSH_INTERVAL,
    DEFAULT_OFFSET_FLUSH_TIMEOUT, DEFAULT_OFFSET_STORAGE_PARTITIONS,
    DEFAULT_OFFSET_STORAGE_REPLICATION_FACTOR, EXACTLY_ONCE_SOURCE_SUPPORT, LOG_FORMAT_KEY,
    MEMORY_BUDGET_KEY, SINK_KEY,
};

/// Loads and validates `pgseam standalone worker.properties connector1.properties …`.
///
/// Connector files may be properties or JSON (see the module docs). All problems in all
/// files are returned together; connector names must be unique across files.
pub fn load_standalone(
    worker_path: &Path,
    connector_paths: &[PathBuf],
) -> Result<(WorkerConfig, Vec<ConnectorConfig>), ConfigErrors> {
    let mut errors = Vec::new();
    let worker = match load_worker_file(worker_path) {
        Ok(w) => Some(w),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let mut connectors: Vec<ConnectorConfig> = Vec::new();
    // Connector name -> file that declared it first.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    // (host, port, database, slot) -> file that uses it first.
    let mut slots: BTreeMap<(String, u16, String, String), String> = BTreeMap::new();
    let providers = worker
        .as_ref()
        .map(|w| w.config_providers.clone())
        .unwrap_or_default();
    for path in connector_paths {
        let loaded = read_connector_file(path).and_then(|mut raw| {
            let mut problems = Vec::new();
            providers.resolve_raw(&mut raw, &mut problems);
            if problems.is_empty() {
                ConnectorConfig::from_raw(raw)
            } else {
                Err(ConfigErrors(problems))
            }
        });
        match loaded {
            Ok(c) => {
                let here = path.display().to_string();
                let slot = (
                    c.database_hostname.clone(),
                    c.database_port,
                    c.database_dbname.clone(),
                    c.slot_name.clone(),
                );
                if let Some(first) = names.get(&c.name) {
                    errors.push(ConfigError::DuplicateConnector {
                        name: c.name.clone(),
                        first: first.clone(),
                        second: here,
                    });
                } else if let Some(first) = slots.get(&slot) {
                    // Two readers of one slot would steal each other's changes.
                    errors.push(ConfigError::Conflict {
                        location: Location::new(&here, None),
                        keys: vec!["slot.name".into()],
                        message: format!(
                            "replication slot `{}` on {}:{}/{} is already used by the connector in {first}; give each connector its own slot.name",
                            slot.3, slot.0, slot.1, slot.2
                        ),
                    });
                } else {
                    slots.insert(slot, here.clone());
                    names.insert(c.name.clone(), here);
                    connectors.push(c);
                }
            }
            Err(e) => errors.extend(e.0),
        }
    }
    match worker {
        Some(w) if errors.is_empty() => Ok((w, connectors)),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Loads a worker file: Java properties, or TOML when the name ends in `.toml`; then the
/// `PGSEAM_WORKER_*` environment overrides (module docs, "Worker keys").
pub fn load_worker_file(path: &Path) -> Result<WorkerConfig, ConfigErrors> {
    WorkerConfig::from_raw(read_worker_raw(path, None)?)
}

/// A worker file's settings with the environment overrides applied (`vars`: the process
/// environment when `None`), not yet validated.
pub(crate) fn read_worker_raw(
    path: &Path,
    vars: Option<std::collections::HashMap<String, String>>,
) -> Result<source::RawConfig, ConfigErrors> {
    let mut raw = if native::is_toml(path) {
        native::read_toml(path)?
    } else {
        let source = path.display().to_string();
        let text = source::read_text(path)?;
        if source::looks_like_json(&text) {
            return Err(ConfigError::Syntax {
                location: Location::new(&source, None),
                message: "the worker configuration must be a Java properties file (or TOML, named *.toml), not JSON".into(),
            }
            .into());
        }
        source::parse_properties_in(&text, &source)?
    };
    native::apply_env_overrides(&mut raw, vars)?;
    Ok(raw)
}

/// Loads a connector file: Java properties, or JSON if it starts with `{`. Config provider
/// references are resolved with the default providers (`file`, `env`).
pub fn load_connector_file(path: &Path) -> Result<ConnectorConfig, ConfigErrors> {
    let mut raw = read_connector_file(path)?;
    let mut problems = Vec::new();
    ConfigProviders::default().resolve_raw(&mut raw, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    ConnectorConfig::from_raw(raw)
}

/// A connector file's settings as written (config provider references unresolved), with the
/// JSON form's outer `name` merged in as `name`.
pub fn read_connector_pairs(path: &Path) -> Result<Vec<(String, String)>, ConfigErrors> {
    Ok(read_connector_file(path)?
        .entries
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

fn read_connector_file(path: &Path) -> Result<source::RawConfig, ConfigErrors> {
    let source = path.display().to_string();
    let text = source::read_text(path)?;
    let raw = if source::looks_like_json(&text) {
        let json = source::parse_connector_json(&text, &source)?;
        let mut raw = json.config;
        if let Some(outer) = json.outer_name {
            match raw.entries.iter().find(|e| e.key == "name") {
                Some(inner) if inner.value.trim() != outer.trim() => {
                    return Err(ConfigError::Conflict {
                        location: Location::new(&source, None),
                        keys: vec!["name".into(), "config.name".into()],
                        message: format!(
                            "the connector name `{outer}` does not match `config.name` `{}`",
                            inner.value
                        ),
                    }
                    .into());
                }
                Some(_) => {}
                None => raw.entries.insert(
                    0,
                    source::RawEntry {
                        key: "name".into(),
                        value: outer,
                        line: None,
                    },
                ),
            }
        }
        raw
    } else {
        source::parse_properties_in(&text, &source)?
    };
    Ok(raw)
}

#[cfg(test)]
mod tests;
