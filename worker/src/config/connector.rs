//! A Debezium PostgreSQL connector configuration, validated key by key.

use pgseam_connector_pg::snapshot::WatermarkStrategy;
use pgseam_sink_kafka::TopicCreation;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use tracing::{debug, info, warn};

use pgseam_converters::transforms::{
    ByLogicalTableRouter, DeleteTombstoneHandling, ExtractNewRecordState, FieldReference,
    JavaRegex, JavaReplacement, Predicate, RegexRouter, Transform, TransformStep, Transforms,
};

use super::catalog::{catalog, is_default_value, suggest};
use super::converter::{
    take_converter, take_header_converter, ConverterSettings, HeaderConverter, Role,
};
use super::error::{ConfigError, ConfigErrors, Owner, Scope};
use super::filter::{compile_regex_list, TableFilter};
use super::legacy::{legacy_key, DEPRECATED_KEYS, JDBC_PASSTHROUGH_LEGACY_PREFIX, REMOVED_PLUGINS};
use super::secret::{shown_value, Properties, Secret};
use super::settings::Settings;
use super::source::{RawConfig, RawEntry};
use super::worker::{is_worker_key, WorkerConfig};

/// Debezium's PostgreSQL connector class, the one connector pgseam implements.
pub const POSTGRES_CONNECTOR_CLASS: &str = "io.debezium.connector.postgresql.PostgresConnector";
/// Names Kafka Connect accepts for it: the class and its plugin aliases.
const POSTGRES_CONNECTOR_NAMES: [&str; 3] =
    [POSTGRES_CONNECTOR_CLASS, "PostgresConnector", "Postgres"];

/// Debezium's `database.port` default: PostgreSQL's standard port.
pub const DEFAULT_DATABASE_PORT: u16 = 5432;
/// Debezium's `slot.name` default.
pub const DEFAULT_SLOT_NAME: &str = "debezium";
/// Debezium's `publication.name` default.
pub const DEFAULT_PUBLICATION_NAME: &str = "dbz_publication";
/// Debezium's `status.update.interval.ms` default (10 s): how often the confirmed LSN is
/// reported to the server (also keeps the replication connection alive).
pub const DEFAULT_STATUS_UPDATE_INTERVAL: Duration = Duration::from_millis(10_000);
/// Debezium's `tombstones.on.delete` default: a delete is followed by a null-value record so
/// that log compaction can drop the key.
pub const DEFAULT_TOMBSTONES_ON_DELETE: bool = true;
/// Debezium's `slot.drop.on.stop` default: keep the slot so a restart resumes where it stopped.
pub const DEFAULT_SLOT_DROP_ON_STOP: bool = false;
/// Debezium's `publish.via.partition.root` default: a publication pgseam creates publishes
/// partitions as themselves (PostgreSQL's default too).
const DEFAULT_PUBLISH_VIA_PARTITION_ROOT: bool = false;
/// Debezium's `table.ignore.builtin` default: never capture system tables.
pub const DEFAULT_TABLE_IGNORE_BUILTIN: bool = true;
/// Debezium's `snapshot.max.threads` default: one snapshot connection.
pub const DEFAULT_SNAPSHOT_MAX_THREADS: u32 = 1;
/// Debezium's PostgreSQL `snapshot.fetch.size` default (rows per fetch during a snapshot).
pub const DEFAULT_SNAPSHOT_FETCH_SIZE: u32 = 10_240;
/// Debezium's `database.sslmode` default: TLS when the server offers it, no certificate check.
pub const DEFAULT_DATABASE_SSLMODE: DatabaseSslMode = DatabaseSslMode::Prefer;
/// Debezium's `slot.max.retries` default: attempts to take a slot that another connection
/// holds, before giving up.
pub const DEFAULT_SLOT_MAX_RETRIES: u32 = 6;
/// Debezium's `slot.retry.delay.ms` default: wait between those attempts.
pub const DEFAULT_SLOT_RETRY_DELAY: Duration = Duration::from_millis(10_000);
/// Debezium's `retriable.restart.connector.wait.ms` default: wait before reconnecting after a
/// retriable error (pgseam's first backoff step; later steps double up to a cap).
pub const DEFAULT_RETRIABLE_RESTART_WAIT: Duration = Duration::from_millis(10_000);
/// Debezium's `database.query.timeout.ms` default (10 minutes). pgseam applies it where a
/// command waits on other sessions: creating the replication slot.
pub const DEFAULT_DATABASE_QUERY_TIMEOUT: Duration = Duration::from_millis(600_000);
/// Debezium's `heartbeat.topics.prefix` default: heartbeats go to
/// `__debezium-heartbeat.<topic.prefix>`.
pub const DEFAULT_HEARTBEAT_TOPICS_PREFIX: &str = "__debezium-heartbeat";
/// `pgseam.position.headers` (pgseam) default: every record carries the `pgseam.lsn`,
/// `pgseam.commit_lsn`, `pgseam.seq` and `pgseam.snapshot` position headers.
pub const DEFAULT_POSITION_HEADERS: bool = true;
/// `snapshot.chunk.rows` (pgseam) default: rows per snapshot chunk (see connector-pg's
/// `snapshot::DEFAULT_CHUNK_ROWS`).
pub const DEFAULT_SNAPSHOT_CHUNK_ROWS: u64 = 100_000;
/// `snapshot.progress.interval.ms` (pgseam) default: how often snapshot progress is logged
/// when stderr is not a terminal.
pub const DEFAULT_SNAPSHOT_PROGRESS_INTERVAL: Duration = Duration::from_millis(5_000);
/// Debezium's `incremental.snapshot.chunk.size` default: keys per incremental-snapshot window.
pub(crate) const DEFAULT_INCREMENTAL_SNAPSHOT_CHUNK_SIZE: u64 = 1024;
/// Prefix of Debezium's per-table `snapshot.select.statement.overrides.<schema>.<table>` keys.
const SELECT_OVERRIDE_PREFIX: &str = "snapshot.select.statement.overrides.";
/// Debezium's `heartbeat.interval.ms` default: 0, no heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 0;
/// Debezium's `max.batch.size` default: events handed to Kafka Connect per poll.
pub const DEFAULT_MAX_BATCH_SIZE: u32 = 2048;
/// Debezium's `max.queue.size` default: events buffered between the stream and the producer.
pub const DEFAULT_MAX_QUEUE_SIZE: u32 = 8192;
/// Debezium's `poll.interval.ms` default: wait for new events when the queue is empty.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Debezium's `skipped.operations` default: skip truncates only.
pub const DEFAULT_SKIPPED_OPERATIONS: SkippedOperations = SkippedOperations {
    create: false,
    update: false,
    delete: false,
    truncate: true,
};
/// Kafka Connect's `tasks.max` default. Debezium's PostgreSQL connector runs one task whatever
/// the setting, since one replication slot is read by one connection.
pub const DEFAULT_TASKS_MAX: u32 = 1;
/// Longest Kafka topic name; `topic.prefix` cannot be longer.
const MAX_TOPIC_NAME_LEN: usize = 249;
/// PostgreSQL's replication-slot name rule: lower-case letters, digits, underscores, at most
/// NAMEDATALEN - 1 = 63 characters.
const SLOT_NAME_PATTERN: &str = "^[a-z0-9_]{1,63}$";
/// Debezium's topic-name characters.
const TOPIC_PREFIX_PATTERN: &str = "^[A-Za-z0-9._-]+$";

/// Debezium keys pgseam implements; all others from Debezium's definition follow the
/// accept-only-the-default rule.
const SUPPORTED_KEYS: &[&str] = &[
    "name",
    ERRORS_TOLERANCE,
    "connector.class",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "database.sslmode",
    "database.sslrootcert",
    "database.sslcert",
    "database.sslkey",
    "database.sslpassword",
    "slot.max.retries",
    "slot.retry.delay.ms",
    "database.query.timeout.ms",
    "retriable.restart.connector.wait.ms",
    "topic.prefix",
    "plugin.name",
    "slot.name",
    "publication.name",
    "publication.autocreate.mode",
    "publish.via.partition.root",
    "table.include.list",
    "table.exclude.list",
    "schema.include.list",
    "schema.exclude.list",
    "table.ignore.builtin",
    "snapshot.mode",
    "offset.mismatch.strategy",
    "decimal.handling.mode",
    "time.precision.mode",
    "binary.handling.mode",
    "hstore.handling.mode",
    "interval.handling.mode",
    "money.fraction.digits",
    "include.unknown.datatypes",
    "tombstones.on.delete",
    "skipped.operations",
    "provide.transaction.metadata",
    "topic.transaction",
    "message.prefix.include.list",
    "message.prefix.exclude.list",
    "status.update.interval.ms",
    "slot.drop.on.stop",
    "snapshot.max.threads",
    "snapshot.fetch.size",
    "snapshot.chunk.rows",
    "snapshot.chunk.strategy",
    "pgseam.snapshot.chunk.strategy.overrides",
    "snapshot.throttle.rows.per.second",
    "snapshot.throttle.bytes.per.second",
    "snapshot.throttle.chunk.pause.ms",
    "snapshot.progress.interval.ms",
    "pgseam.position.headers",
    "pgseam.array.multidimensional.mode",
    "pgseam.unavailable.array.mode",
    "snapshot.select.statement.overrides",
    "snapshot.include.collection.list",
    "signal.data.collection",
    "signal.enabled.channels",
    "notification.enabled.channels",
    "notification.sink.topic.name",
    "signal.poll.interval.ms",
    "signal.kafka.topic",
    "signal.kafka.bootstrap.servers",
    "signal.kafka.groupId",
    "signal.kafka.poll.timeout.ms",
    "signal.file",
    "incremental.snapshot.chunk.size",
    "incremental.snapshot.watermarking.strategy",
    "heartbeat.interval.ms",
    "heartbeat.action.query",
    "heartbeat.topics.prefix",
    "max.batch.size",
    "max.queue.size",
    "poll.interval.ms",
];

/// Kafka Connect connector-level keys pgseam reads or accepts.
const CONNECT_KEYS: &[&str] = &[
    "tasks.max",
    "key.converter",
    "value.converter",
    "header.converter",
    "transforms",
    "predicates",
    "config.action.reload",
    "offsets.storage.topic",
    "connector.plugin.version",
    "topic.creation.groups",
    "topic.creation.default.replication.factor",
    "topic.creation.default.partitions",
    EXACTLY_ONCE_SUPPORT,
    TRANSACTION_BOUNDARY,
    TRANSACTION_BOUNDARY_INTERVAL_MS,
];

/// What a Kafka Connect runtime key accepts.
#[derive(Clone, Copy)]
enum ConnectValue {
    Boolean,
    /// A whole number at least this.
    AtLeast(i64),
}

/// Kafka Connect runtime keys of a source connector that pgseam accepts with any valid value,
/// logging one warning line when the value is not Connect's default, since pgseam then does
/// not do what the key asks: (key, accepted values, Connect's default, what pgseam does).
/// Real deployments carry them (`errors.tolerance=all` with `errors.log.enable=true` is a
/// common recipe), so refusing them would break configurations that Connect accepts.
const WARNED_CONNECT_KEYS: &[(&str, ConnectValue, Option<&str>, &str)] = &[
    (
        "errors.retry.timeout",
        ConnectValue::AtLeast(-1),
        Some("0"),
        "conversion and transform failures are not retried (PostgreSQL and Kafka errors are, with pgseam's own backoff)",
    ),
    (
        "errors.retry.delay.max.ms",
        ConnectValue::AtLeast(0),
        Some("60000"),
        "conversion and transform failures are not retried (PostgreSQL and Kafka errors are, with pgseam's own backoff)",
    ),
    (
        "errors.log.enable",
        ConnectValue::Boolean,
        Some("false"),
        "pgseam always logs the error that stops a connector; there is no separate error log",
    ),
    (
        "errors.log.include.messages",
        ConnectValue::Boolean,
        Some("false"),
        "pgseam never logs record contents",
    ),
];

/// Kafka Connect's `errors.tolerance` (default `none`). See [`ErrorTolerance`].
pub(crate) const ERRORS_TOLERANCE: &str = "errors.tolerance";

/// `errors.tolerance`: what a connector does with a record it cannot deliver.
///
/// In Kafka Connect (KIP-298, and KIP-779 for producer failures) `all` skips records that fail
/// to convert or transform, and records the producer refuses, logging them. pgseam applies it
/// to one producer failure only: a record larger than librdkafka's `message.max.bytes`, which
/// librdkafka refuses before sending, is skipped and logged (topic, key, size, LSN; never the
/// values), counted in `pgseam_records_skipped_total`, and counts as acknowledged, so offsets
/// and the slot move past it. A record that fails to convert or transform still stops the
/// connector, and so does a batch the broker refuses as too large (librdkafka fails the whole
/// batch, records that fit included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorTolerance {
    /// `none` (default): any failure stops the connector; nothing is skipped.
    #[default]
    None,
    /// `all`: records over `message.max.bytes` are skipped and logged.
    All,
}

/// Connect's connector-level `exactly.once.support` (KIP-618; `SourceConnectorConfig`).
const EXACTLY_ONCE_SUPPORT: &str = "exactly.once.support";
/// Connect's `transaction.boundary` (KIP-618).
const TRANSACTION_BOUNDARY: &str = "transaction.boundary";
/// Connect's `transaction.boundary.interval.ms` (KIP-618).
const TRANSACTION_BOUNDARY_INTERVAL_MS: &str = "transaction.boundary.interval.ms";

/// `exactly.once.support` (Connect's default `requested`). In Connect, `required` makes
/// validation fail unless the worker has `exactly.once.source.support=enabled` and the
/// connector declares support (Debezium's `PostgresConnector.exactlyOnceSupport` returns
/// `SUPPORTED`); `requested` skips that check. Exactly-once delivery itself is switched on by
/// the worker key alone, for every connector, as in Connect. The worker half of the check is
/// made where both files are known (`standalone::pipeline_settings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExactlyOnceSupport {
    #[default]
    Requested,
    Required,
}

/// `transaction.boundary` (Connect's default `poll`): where a Kafka transaction ends when
/// exactly-once delivery is on. `connector` (boundaries the connector defines) is refused, as
/// Connect refuses it for Debezium's PostgreSQL connector, which does not implement
/// `canDefineTransactionBoundaries`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransactionBoundary {
    /// `poll`: one Kafka transaction per batch of records — in pgseam up to `max.batch.size`
    /// records, or fewer when the source has nothing more queued (Connect: one per
    /// `SourceTask.poll()`, which Debezium fills up to `max.batch.size`).
    #[default]
    Poll,
    /// `interval`: a Kafka transaction commits every `transaction.boundary.interval.ms`
    /// (default the worker's `offset.flush.interval.ms`).
    Interval,
}

/// Connector-level key prefixes Kafka Connect accepts that do not apply to pgseam (logged at
/// debug level): consumer and admin client overrides (a source connector's records go through
/// the producer only) and the sink-only dead-letter-queue settings, which Connect ignores for
/// source connectors too.
const IGNORED_CONNECT_PREFIXES: [&str; 3] = [
    "consumer.override.",
    "admin.override.",
    "errors.deadletterqueue.",
];

/// Debezium's passthrough prefix for JDBC driver properties.
const DRIVER_PASSTHROUGH_PREFIX: &str = "driver.";

/// Debezium 3.6.3's PostgreSQL `snapshot.mode` values pgseam does not implement: both hand
/// the decision to settings or code pgseam does not run (`snapshot.mode.configuration.based.*`,
/// a `Snapshotter` class named by `snapshot.mode.custom.name`).
const UNSUPPORTED_SNAPSHOT_MODES: [&str; 2] = ["configuration_based", "custom"];

/// How snapshot tables are split into chunks (`snapshot.chunk.strategy`, pgseam).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotChunkStrategy {
    /// `auto` (default): ctid block ranges on PostgreSQL ≥ 14, primary-key ranges before.
    Auto,
    /// `ctid`: block ranges (TID Range Scan).
    Ctid,
    /// `key`: primary-key ranges (tables without a primary key are one chunk).
    Key,
    /// `whole`: one chunk per table.
    Whole,
}

/// Whether and how the publication is created (`publication.autocreate.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationAutocreateMode {
    /// `all_tables` (default): `CREATE PUBLICATION … FOR ALL TABLES` if it does not exist.
    AllTables,
    /// `filtered`: create it for the tables the include/exclude lists select, and keep it in
    /// step with them.
    Filtered,
    /// `no_tables`: create it without tables; tables are added by the user.
    NoTables,
    /// `disabled`: never create it; it must exist.
    Disabled,
}

/// How the connections to PostgreSQL use TLS (`database.sslmode`, pgjdbc's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseSslMode {
    /// `disable`: never TLS.
    Disable,
    /// `allow`: plain first, TLS if the server rejects the plain login.
    Allow,
    /// `prefer` (default): TLS if the server offers it, no certificate check.
    Prefer,
    /// `require`: TLS always, no certificate check.
    Require,
    /// `verify-ca`: TLS, server certificate chain checked against `database.sslrootcert`.
    VerifyCa,
    /// `verify-full`: as `verify-ca`, and the certificate must name `database.hostname`.
    VerifyFull,
}

/// What to do before streaming (`snapshot.mode`); the start decision of each is in
/// `pgseam_connector_pg::plan_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// `initial` (default): snapshot the captured tables when no offset is stored, then stream.
    Initial,
    /// `initial_only`: as `initial`, then stop without streaming.
    InitialOnly,
    /// `no_data` (and its deprecated alias `never`): stream only, no snapshot of rows.
    NoData,
    /// `always`: a new snapshot at a new slot on every start, then stream.
    Always,
    /// `when_needed`: as `initial`, and a new snapshot when the offset cannot be served.
    WhenNeeded,
}

/// `offset.mismatch.strategy` (Debezium 3.6.3's values): what to do when the slot was
/// confirmed past the stored offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetMismatchStrategy {
    /// `no_validation` (Debezium's default): pgseam still refuses such a start (Debezium
    /// would let PostgreSQL skip the changes in between silently).
    NoValidation,
    /// `trust_offset`: refuse such a start.
    TrustOffset,
    /// `trust_slot`: continue from the slot, warning that the changes in between are lost.
    TrustSlot,
    /// `trust_greater_lsn`: as `trust_slot` (pgseam always starts at an offset ahead of the slot).
    TrustGreaterLsn,
}

pub use pgseam_converters::{
    BinaryHandlingMode, HstoreHandlingMode, IntervalHandlingMode, TimePrecisionMode,
};
use pgseam_converters::{MultidimensionalArrayMode, UnavailableArrayMode};

/// `money.fraction.digits` default (Debezium's): cents.
pub const DEFAULT_MONEY_FRACTION_DIGITS: u32 = 2;
/// Upper bound for `money.fraction.digits`: a Connect `Decimal` scale beyond this has no use
/// for a currency and only inflates the unscaled bytes.
pub const MAX_MONEY_FRACTION_DIGITS: u32 = 100;
/// `include.unknown.datatypes` default (Debezium's): columns of unmapped types are left out.
pub const DEFAULT_INCLUDE_UNKNOWN_DATATYPES: bool = false;

/// How `NUMERIC`/`DECIMAL` values are represented (`decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalHandlingMode {
    /// `precise` (default): Kafka Connect `Decimal` (bytes), or Debezium's
    /// `VariableScaleDecimal` when the column has no fixed scale.
    Precise,
    /// `double`: a 64-bit float (lossy).
    Double,
    /// `string`: the decimal as text.
    String,
}

/// A change-event operation that `skipped.operations` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `c`: insert.
    Create,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `t`: truncate.
    Truncate,
}

/// Operations not emitted while streaming (`skipped.operations`; `none` skips nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedOperations {
    /// Skip inserts (`c`).
    pub create: bool,
    /// Skip updates (`u`).
    pub update: bool,
    /// Skip deletes (`d`).
    pub delete: bool,
    /// Skip truncates (`t`).
    pub truncate: bool,
}

impl SkippedOperations {
    /// Skip nothing (`skipped.operations=none`).
    pub const NONE: SkippedOperations = SkippedOperations {
        create: false,
        update: false,
        delete: false,
        truncate: false,
    };

    /// True if events of `op` are skipped.
    pub fn skips(&self, op: Operation) -> bool {
        match op {
            Operation::Create => self.create,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
            Operation::Truncate => self.truncate,
        }
    }
}

impl Default for SkippedOperations {
    fn default() -> Self {
        DEFAULT_SKIPPED_OPERATIONS
    }
}

/// One connector's configuration, with Debezium's property names and defaults.
///
/// The logical decoding plugin is always `pgoutput` (see the module docs on `plugin.name`).
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `name`: unique connector name (the key of its offsets).
    pub name: String,
    /// `database.hostname`.
    pub database_hostname: String,
    /// `database.port`.
    pub database_port: u16,
    /// `database.user`: needs the REPLICATION attribute.
    pub database_user: String,
    /// `database.password`; `Debug` shows `****`.
    pub database_password: Option<Secret>,
    /// `database.dbname`.
    pub database_dbname: String,
    /// `database.sslmode`.
    pub database_sslmode: DatabaseSslMode,
    /// `database.sslrootcert`: PEM file of trusted certificate authorities.
    pub database_sslrootcert: Option<PathBuf>,
    /// `database.sslcert`: PEM client certificate.
    pub database_sslcert: Option<PathBuf>,
    /// `database.sslkey`: the client certificate's key (PEM, or PKCS#8 DER).
    pub database_sslkey: Option<PathBuf>,
    /// `database.sslpassword`: the key's passphrase; `Debug` shows `****`.
    pub database_sslpassword: Option<Secret>,
    /// `database.query.timeout.ms`: how long slot creation may wait for running transactions.
    pub database_query_timeout: Duration,
    /// `slot.max.retries`: attempts to take a slot held by another connection.
    pub slot_max_retries: u32,
    /// `slot.retry.delay.ms`.
    pub slot_retry_delay: Duration,
    /// `retriable.restart.connector.wait.ms`: first wait before reconnecting after a lost
    /// connection.
    pub retriable_restart_wait: Duration,
    /// `topic.prefix`: topics are `<topic.prefix>.<schema>.<table>`; also the `server` of the
    /// offset key.
    pub topic_prefix: String,
    /// `slot.name`.
    pub slot_name: String,
    /// `publication.name`.
    pub publication_name: String,
    /// `publication.autocreate.mode`.
    pub publication_autocreate_mode: PublicationAutocreateMode,
    /// `publish.via.partition.root`: create the publication with
    /// `publish_via_partition_root = true` (partitioned tables on their root's topic).
    pub publish_via_partition_root: bool,
    /// `schema.include.list`, `schema.exclude.list`, `table.include.list`,
    /// `table.exclude.list` and `table.ignore.builtin`, compiled.
    pub table_filter: TableFilter,
    /// `snapshot.mode`.
    pub snapshot_mode: SnapshotMode,
    /// `offset.mismatch.strategy`.
    pub offset_mismatch_strategy: OffsetMismatchStrategy,
    /// `decimal.handling.mode`.
    pub decimal_handling_mode: DecimalHandlingMode,
    /// `time.precision.mode` (default `adaptive`).
    pub time_precision_mode: TimePrecisionMode,
    /// `binary.handling.mode` (default `bytes`).
    pub binary_handling_mode: BinaryHandlingMode,
    /// `hstore.handling.mode` (default `json`).
    pub hstore_handling_mode: HstoreHandlingMode,
    /// `interval.handling.mode` (default `numeric`).
    pub interval_handling_mode: IntervalHandlingMode,
    /// `money.fraction.digits` (default 2): the scale of `money` decimals.
    pub money_fraction_digits: u32,
    /// `include.unknown.datatypes` (default `false`): keep columns of types Debezium has no
    /// mapping for, as binary values.
    pub include_unknown_datatypes: bool,
    /// `pgseam.array.multidimensional.mode` (pgseam, default `debezium`): `nested` writes
    /// multi-dimensional arrays nested to their declared dimensions (`docs/configuration.md`).
    pub multidimensional_array_mode: MultidimensionalArrayMode,
    /// `pgseam.unavailable.array.mode` (pgseam, default `debezium`): `null` writes an
    /// unchanged TOAST `int4[]`/`int8[]`/`date[]`/`uuid[]` value as null and names the
    /// unavailable columns in the `pgseam.unavailable` header.
    pub unavailable_array_mode: UnavailableArrayMode,
    /// `tombstones.on.delete`.
    pub tombstones_on_delete: bool,
    /// `skipped.operations`.
    pub skipped_operations: SkippedOperations,
    /// `provide.transaction.metadata`: BEGIN/END records and the events' `transaction` block.
    pub provide_transaction_metadata: bool,
    /// `pgseam.position.headers` (pgseam, default `true`): the record position headers
    /// (`pgseam.lsn`, `pgseam.commit_lsn`, `pgseam.seq`, `pgseam.snapshot`; see the worker's
    /// `pipeline` module). `false` leaves only the headers Debezium writes.
    pub position_headers: bool,
    /// `topic.transaction` (Debezium's `DefaultTopicNamingStrategy`, default `transaction`):
    /// the transaction topic is `<topic.prefix>.<topic.transaction>`.
    pub topic_transaction: String,
    /// `message.prefix.include.list` / `message.prefix.exclude.list`; `None` = every prefix.
    pub message_prefix_filter: Option<MessagePrefixFilter>,
    /// `transforms` and `predicates`: the SMT chain applied to every record.
    pub transforms: Transforms,
    /// `column.include.list` / `column.exclude.list`, `column.truncate.to.<n>.chars`,
    /// `column.mask.with.<n>.chars`, `column.mask.hash[.v2].<algorithm>.with.salt.<salt>` and
    /// `message.key.columns` (see `config/columns.rs`).
    pub columns: pgseam_converters::columns::ColumnShaping,
    /// `topic.delimiter`, `schema.name.adjustment.mode`, `field.name.adjustment.mode`.
    pub naming: pgseam_converters::naming::Naming,
    /// `status.update.interval.ms`.
    pub status_update_interval: Duration,
    /// `slot.drop.on.stop`.
    pub slot_drop_on_stop: bool,
    /// `snapshot.max.threads`.
    pub snapshot_max_threads: u32,
    /// `snapshot.fetch.size`.
    pub snapshot_fetch_size: u32,
    /// `snapshot.chunk.rows` (pgseam): target rows per snapshot chunk.
    pub snapshot_chunk_rows: u64,
    /// `snapshot.chunk.strategy` (pgseam).
    pub snapshot_chunk_strategy: SnapshotChunkStrategy,
    /// `pgseam.snapshot.chunk.strategy.overrides`: `schema.table` → its strategy.
    pub snapshot_chunk_strategy_overrides:
        std::collections::BTreeMap<String, SnapshotChunkStrategy>,
    /// `snapshot.throttle.rows.per.second` (pgseam): rows per second across all snapshot
    /// readers; `None` (0, the default) is no limit.
    pub snapshot_throttle_rows_per_second: Option<u64>,
    /// `snapshot.throttle.bytes.per.second` (pgseam): binary COPY bytes per second across all
    /// snapshot readers; `None` (0, the default) is no limit.
    pub snapshot_throttle_bytes_per_second: Option<u64>,
    /// `snapshot.throttle.chunk.pause.ms` (pgseam, default 0): each reader's pause after a
    /// chunk.
    pub snapshot_throttle_chunk_pause: Duration,
    /// `snapshot.progress.interval.ms` (pgseam, default 5000): progress log period.
    pub snapshot_progress_interval: Duration,
    /// `snapshot.select.statement.overrides` with each listed table's
    /// `snapshot.select.statement.overrides.<schema>.<table>` statement, by `schema.table`.
    pub snapshot_select_overrides: std::collections::BTreeMap<String, String>,
    /// `snapshot.include.collection.list`, compiled (`schema.table` regexes, anchored,
    /// case-insensitive); `None` snapshots every captured table.
    pub snapshot_include: Option<Vec<Regex>>,
    /// `signal.data.collection`: the signaling table `(schema, table)` of the `source`
    /// channel (`signal.enabled.channels`, only `source` is implemented); `None`: no signals.
    pub signal_data_collection: Option<(String, String)>,
    /// `incremental.snapshot.chunk.size`: keys per window of a signalled incremental snapshot.
    pub incremental_snapshot_chunk_size: u64,
    /// `incremental.snapshot.watermarking.strategy`: unset, pgseam's logical-message
    /// watermarks (no table is written); `insert_insert` or `insert_delete`, Debezium's rows in
    /// the signaling table (needs `signal.data.collection`).
    pub incremental_snapshot_watermarking: WatermarkStrategy,
    /// The `kafka` signal channel (`signal.enabled.channels` lists `kafka`).
    pub signal_kafka: Option<KafkaSignalChannel>,
    /// The `file` signal channel's file (`signal.file`, when `signal.enabled.channels` lists
    /// `file`).
    pub signal_file: Option<std::path::PathBuf>,
    /// `signal.poll.interval.ms` (default 5000): how often the `file` channel reads its file.
    pub signal_poll_interval: Duration,
    /// `notification.enabled.channels` and `notification.sink.topic.name`: where snapshot
    /// notifications go (none by default).
    pub notifications: NotificationChannels,
    /// `heartbeat.interval.ms`; `None` when 0 (no heartbeats).
    pub heartbeat_interval: Option<Duration>,
    /// `heartbeat.action.query`: run on every heartbeat (only with heartbeats on).
    pub heartbeat_action_query: Option<String>,
    /// `heartbeat.topics.prefix`.
    pub heartbeat_topics_prefix: String,
    /// `max.batch.size`.
    pub max_batch_size: u32,
    /// `max.queue.size` (always greater than `max_batch_size`).
    pub max_queue_size: u32,
    /// `poll.interval.ms`.
    pub poll_interval: Duration,
    /// Connector-level `key.converter` (with its own `key.converter.*`); `None` = the worker's.
    pub key_converter: Option<ConverterSettings>,
    /// Connector-level `value.converter`; `None` = the worker's.
    pub value_converter: Option<ConverterSettings>,
    /// Connector-level `header.converter`; `None` = the worker's.
    pub header_converter: Option<HeaderConverter>,
    /// `producer.override.*` with the prefix removed; applied over the worker's `producer.*`.
    pub producer_overrides: Properties,
    /// `errors.tolerance` (default `none`).
    pub errors_tolerance: ErrorTolerance,
    /// `exactly.once.support` (default `requested`).
    pub exactly_once_support: ExactlyOnceSupport,
    /// `transaction.boundary` (default `poll`); used with exactly-once delivery only.
    pub transaction_boundary: TransactionBoundary,
    /// `transaction.boundary.interval.ms`; `None`: the worker's `offset.flush.interval.ms`.
    pub transaction_boundary_interval: Option<Duration>,
    /// `topic.creation.*` with the prefix removed (`default.partitions`, …), as given.
    pub topic_creation: Properties,
    /// The validated topic-creation groups; `None` when no `topic.creation.*` key is set.
    pub topic_creation_groups: Option<TopicCreation>,
    /// Every key and value as given (for `GET /connectors/{name}/config`); `Debug` redacts
    /// secrets.
    pub original: Properties,
}

impl ConnectorConfig {
    /// Validates a connector configuration given as key/value pairs (a later duplicate key
    /// wins). `source` names it in error messages: a path, or e.g. `PUT /connectors/x/config`.
    pub fn from_map<I, K, V>(entries: I, source: &str) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::from_raw(RawConfig::from_pairs(entries, source))
    }

    /// The key converter in effect: the connector's own if it sets `key.converter`, else the
    /// worker's (Kafka Connect's rule).
    pub fn effective_key_converter(&self, worker: &WorkerConfig) -> ConverterSettings {
        self.key_converter
            .clone()
            .unwrap_or_else(|| worker.key_converter.clone())
    }

    /// The value converter in effect.
    pub fn effective_value_converter(&self, worker: &WorkerConfig) -> ConverterSettings {
        self.value_converter
            .clone()
            .unwrap_or_else(|| worker.value_converter.clone())
    }

    /// The header converter in effect.
    pub fn effective_header_converter(&self, worker: &WorkerConfig) -> HeaderConverter {
        self.header_converter.unwrap_or(worker.header_converter)
    }

    pub(crate) fn from_raw(raw: RawConfig) -> Result<Self, ConfigErrors> {
        let original = Properties::from(
            raw.entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        let mut s = Settings::new(raw, Scope::Connector);

        let name = take_name(&mut s);
        take_connector_class(&mut s);
        take_tasks_max(&mut s);
        take_plugin_name(&mut s);

        let database_hostname =
            s.required_string("database.hostname", Some("the PostgreSQL server"));
        let database_port = s.int("database.port", DEFAULT_DATABASE_PORT, 1, u16::MAX);
        let database_user = s.required_string(
            "database.user",
            Some("a role with the REPLICATION attribute"),
        );
        // Passwords are not trimmed (Kafka's ConfigDef does not trim PASSWORD values either).
        let database_password = s.take("database.password").map(|e| Secret::new(e.value));
        let database_dbname = s.required_string("database.dbname", Some("the database to capture"));
        let database_sslmode = s.choice(
            "database.sslmode",
            DEFAULT_DATABASE_SSLMODE,
            &[
                ("disable", DatabaseSslMode::Disable),
                ("allow", DatabaseSslMode::Allow),
                ("prefer", DatabaseSslMode::Prefer),
                ("require", DatabaseSslMode::Require),
                ("verify-ca", DatabaseSslMode::VerifyCa),
                ("verify-full", DatabaseSslMode::VerifyFull),
            ],
        );
        let mut path = |key: &str| {
            s.take(key)
                .map(|e| e.value.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let database_sslrootcert = path("database.sslrootcert");
        let database_sslcert = path("database.sslcert");
        let database_sslkey = path("database.sslkey");
        let database_sslpassword = s.take("database.sslpassword").map(|e| Secret::new(e.value));
        let slot_max_retries = s.int(
            "slot.max.retries",
            DEFAULT_SLOT_MAX_RETRIES,
            0,
            i32::MAX as u32,
        );
        let slot_retry_delay = Duration::from_millis(s.int(
            "slot.retry.delay.ms",
            millis(DEFAULT_SLOT_RETRY_DELAY),
            0,
            i64::MAX as u64,
        ));
        let database_query_timeout = Duration::from_millis(s.int(
            "database.query.timeout.ms",
            millis(DEFAULT_DATABASE_QUERY_TIMEOUT),
            1,
            i32::MAX as u64,
        ));
        let retriable_restart_wait = Duration::from_millis(s.int(
            "retriable.restart.connector.wait.ms",
            millis(DEFAULT_RETRIABLE_RESTART_WAIT),
            0,
            i64::MAX as u64,
        ));
        let topic_prefix = take_topic_prefix(&mut s);
        let slot_name = take_slot_name(&mut s);
        let publication_name = match s.take("publication.name") {
            None => DEFAULT_PUBLICATION_NAME.to_owned(),
            Some(e) if e.value.trim().is_empty() => {
                s.invalid(&e, "a publication name");
                DEFAULT_PUBLICATION_NAME.to_owned()
            }
            Some(e) => e.value.trim().to_owned(),
        };
        let publication_autocreate_mode = s.choice(
            "publication.autocreate.mode",
            PublicationAutocreateMode::AllTables,
            &[
                ("all_tables", PublicationAutocreateMode::AllTables),
                ("filtered", PublicationAutocreateMode::Filtered),
                ("no_tables", PublicationAutocreateMode::NoTables),
                ("disabled", PublicationAutocreateMode::Disabled),
            ],
        );
        let table_filter = take_table_filter(&mut s);
        let snapshot_mode = take_snapshot_mode(&mut s);
        let offset_mismatch_strategy = s.choice(
            "offset.mismatch.strategy",
            OffsetMismatchStrategy::NoValidation,
            &[
                ("no_validation", OffsetMismatchStrategy::NoValidation),
                ("trust_offset", OffsetMismatchStrategy::TrustOffset),
                ("trust_slot", OffsetMismatchStrategy::TrustSlot),
                ("trust_greater_lsn", OffsetMismatchStrategy::TrustGreaterLsn),
            ],
        );
        let decimal_handling_mode = s.choice(
            "decimal.handling.mode",
            DecimalHandlingMode::Precise,
            &[
                ("precise", DecimalHandlingMode::Precise),
                ("double", DecimalHandlingMode::Double),
                ("string", DecimalHandlingMode::String),
            ],
        );
        let time_precision_mode = s.choice(
            "time.precision.mode",
            TimePrecisionMode::Adaptive,
            &[
                ("adaptive", TimePrecisionMode::Adaptive),
                (
                    "adaptive_time_microseconds",
                    TimePrecisionMode::AdaptiveTimeMicroseconds,
                ),
                ("connect", TimePrecisionMode::Connect),
                ("isostring", TimePrecisionMode::IsoString),
                ("microseconds", TimePrecisionMode::Microseconds),
                ("nanoseconds", TimePrecisionMode::Nanoseconds),
            ],
        );
        let binary_handling_mode = s.choice(
            "binary.handling.mode",
            BinaryHandlingMode::Bytes,
            &[
                ("bytes", BinaryHandlingMode::Bytes),
                ("base64", BinaryHandlingMode::Base64),
                ("base64-url-safe", BinaryHandlingMode::Base64UrlSafe),
                ("hex", BinaryHandlingMode::Hex),
            ],
        );
        let hstore_handling_mode = s.choice(
            "hstore.handling.mode",
            HstoreHandlingMode::Json,
            &[
                ("json", HstoreHandlingMode::Json),
                ("map", HstoreHandlingMode::Map),
            ],
        );
        let interval_handling_mode = s.choice(
            "interval.handling.mode",
            IntervalHandlingMode::Numeric,
            &[
                ("numeric", IntervalHandlingMode::Numeric),
                ("string", IntervalHandlingMode::String),
            ],
        );
        let money_fraction_digits = s.int(
            "money.fraction.digits",
            DEFAULT_MONEY_FRACTION_DIGITS,
            0,
            MAX_MONEY_FRACTION_DIGITS,
        );
        let include_unknown_datatypes = s.bool(
            "include.unknown.datatypes",
            DEFAULT_INCLUDE_UNKNOWN_DATATYPES,
        );
        let tombstones_on_delete = s.bool("tombstones.on.delete", DEFAULT_TOMBSTONES_ON_DELETE);
        let skipped_operations = take_skipped_operations(&mut s);
        let provide_transaction_metadata = s.bool(
            "provide.transaction.metadata",
            DEFAULT_PROVIDE_TRANSACTION_METADATA,
        );
        let position_headers = s.bool("pgseam.position.headers", DEFAULT_POSITION_HEADERS);
        let multidimensional_array_mode = s.choice(
            "pgseam.array.multidimensional.mode",
            MultidimensionalArrayMode::Debezium,
            &[
                ("debezium", MultidimensionalArrayMode::Debezium),
                ("nested", MultidimensionalArrayMode::Nested),
            ],
        );
        let unavailable_array_mode = s.choice(
            "pgseam.unavailable.array.mode",
            UnavailableArrayMode::Debezium,
            &[
                ("debezium", UnavailableArrayMode::Debezium),
                ("null", UnavailableArrayMode::Null),
            ],
        );
        let topic_transaction = match s.take("topic.transaction") {
            None => DEFAULT_TOPIC_TRANSACTION.to_owned(),
            Some(e)
                if Regex::new(TOPIC_PREFIX_PATTERN).is_ok_and(|r| r.is_match(e.value.trim())) =>
            {
                e.value.trim().to_owned()
            }
            Some(e) => {
                s.invalid(&e, "a topic name part of letters, digits, `.`, `_` and `-`");
                DEFAULT_TOPIC_TRANSACTION.to_owned()
            }
        };
        let message_prefix_filter = take_message_prefix_filter(&mut s);
        let status_update_interval = Duration::from_millis(s.int(
            "status.update.interval.ms",
            millis(DEFAULT_STATUS_UPDATE_INTERVAL),
            1,
            i32::MAX as u64,
        ));
        let slot_drop_on_stop = s.bool("slot.drop.on.stop", DEFAULT_SLOT_DROP_ON_STOP);
        let publish_via_partition_root = s.bool(
            "publish.via.partition.root",
            DEFAULT_PUBLISH_VIA_PARTITION_ROOT,
        );
        let snapshot_max_threads = s.int(
            "snapshot.max.threads",
            DEFAULT_SNAPSHOT_MAX_THREADS,
            1,
            i32::MAX as u32,
        );
        let snapshot_fetch_size = s.int(
            "snapshot.fetch.size",
            DEFAULT_SNAPSHOT_FETCH_SIZE,
            1,
            i32::MAX as u32,
        );
        let snapshot_chunk_rows = s.int(
            "snapshot.chunk.rows",
            DEFAULT_SNAPSHOT_CHUNK_ROWS,
            1,
            i64::MAX as u64,
        );
        let snapshot_chunk_strategy = s.choice(
            "snapshot.chunk.strategy",
            SnapshotChunkStrategy::Auto,
            &[
                ("auto", SnapshotChunkStrategy::Auto),
                ("ctid", SnapshotChunkStrategy::Ctid),
                ("key", SnapshotChunkStrategy::Key),
                ("whole", SnapshotChunkStrategy::Whole),
            ],
        );
        // 0 = no limit; the upper bounds keep the rates meaningful (a bucket of a tenth of
        // a second must fit in an f64 exactly) and the pause under a day.
        let nonzero = |v: u64| (v > 0).then_some(v);
        let snapshot_throttle_rows_per_second =
            nonzero(s.int("snapshot.throttle.rows.per.second", 0u64, 0, 1 << 40));
        let snapshot_throttle_bytes_per_second =
            nonzero(s.int("snapshot.throttle.bytes.per.second", 0u64, 0, 1 << 50));
        let snapshot_throttle_chunk_pause =
            Duration::from_millis(s.int("snapshot.throttle.chunk.pause.ms", 0u64, 0, 86_400_000));
        let snapshot_progress_interval = Duration::from_millis(s.int(
            "snapshot.progress.interval.ms",
            millis(DEFAULT_SNAPSHOT_PROGRESS_INTERVAL),
            100,
            86_400_000,
        ));
        let snapshot_select_overrides = take_select_overrides(&mut s);
        let snapshot_chunk_strategy_overrides = take_chunk_strategy_overrides(&mut s);
        let snapshot_include = match s
            .take("snapshot.include.collection.list")
            .filter(|e| !e.value.trim().is_empty())
        {
            None => None,
            Some(entry) => match compile_regex_list(&entry.value) {
                Ok(patterns) => Some(patterns),
                Err(bad) => {
                    s.invalid(
                        &entry,
                        format!(
                            "comma-separated regular expressions, but `{}` is invalid: {} (pgseam uses Rust regex syntax: no look-around or back-references)",
                            bad.pattern, bad.reason
                        ),
                    );
                    None
                }
            },
        };
        let signals = take_signal_settings(&mut s, topic_prefix.as_deref().unwrap_or_default());
        let signal_data_collection = signals.table;
        let signal_kafka = signals.kafka;
        let signal_file = signals.file;
        let signal_poll_interval = signals.poll_interval;
        let notifications = take_notification_settings(&mut s);
        let incremental_snapshot_chunk_size = s.int(
            "incremental.snapshot.chunk.size",
            DEFAULT_INCREMENTAL_SNAPSHOT_CHUNK_SIZE,
            1,
            i32::MAX as u64,
        );
        let incremental_snapshot_watermarking = take_watermarking(&mut s, &signal_data_collection);
        let heartbeat_ms = s.int(
            "heartbeat.interval.ms",
            DEFAULT_HEARTBEAT_INTERVAL_MS,
            0,
            i32::MAX as u64,
        );
        let heartbeat_interval = (heartbeat_ms > 0).then(|| Duration::from_millis(heartbeat_ms));
        let heartbeat_action_query = s
            .take("heartbeat.action.query")
            .map(|e| e.value.trim().to_owned())
            .filter(|v| !v.is_empty());
        let heartbeat_topics_prefix = match s.take("heartbeat.topics.prefix") {
            None => DEFAULT_HEARTBEAT_TOPICS_PREFIX.to_owned(),
            Some(e)
                if Regex::new(TOPIC_PREFIX_PATTERN).is_ok_and(|r| r.is_match(e.value.trim())) =>
            {
                e.value.trim().to_owned()
            }
            Some(e) => {
                s.invalid(
                    &e,
                    "a topic name prefix of letters, digits, `.`, `_` and `-`",
                );
                DEFAULT_HEARTBEAT_TOPICS_PREFIX.to_owned()
            }
        };
        if heartbeat_action_query.is_some() && heartbeat_interval.is_none() {
            warn!(source = s.source(), "heartbeat.action.query is set but heartbeat.interval.ms is 0: the query never runs");
        }
        let max_batch_size = s.int("max.batch.size", DEFAULT_MAX_BATCH_SIZE, 1, i32::MAX as u32);
        let queue_entry = s.take("max.queue.size");
        let max_queue_size = match &queue_entry {
            None => DEFAULT_MAX_QUEUE_SIZE,
            Some(e) => s
                .parse_int_entry(e, 1, i32::MAX as u32)
                .unwrap_or(DEFAULT_MAX_QUEUE_SIZE),
        };
        if max_queue_size <= max_batch_size {
            let e = ConfigError::Conflict {
                location: queue_entry.as_ref().map_or_else(|| s.file_location(), |e| s.location(e)),
                keys: vec!["max.queue.size".into(), "max.batch.size".into()],
                message: format!(
                    "`max.queue.size` ({max_queue_size}) must be larger than `max.batch.size` ({max_batch_size}), as Debezium requires"
                ),
            };
            s.push(e);
        }
        let poll_interval = Duration::from_millis(s.int(
            "poll.interval.ms",
            millis(DEFAULT_POLL_INTERVAL),
            1,
            i64::MAX as u64,
        ));

        let key_converter = take_converter(&mut s, Role::Key);
        let value_converter = take_converter(&mut s, Role::Value);
        let header_converter = take_header_converter(&mut s);
        let transforms = take_transforms(&mut s);
        let mut unknown_column_keys = Vec::new();
        let columns = super::columns::take_column_shaping(&mut s, &mut unknown_column_keys);
        for e in &unknown_column_keys {
            classify_other_key(&mut s, e);
        }
        let naming = super::columns::take_naming(&mut s);
        let errors_tolerance = match s.take(ERRORS_TOLERANCE) {
            None => ErrorTolerance::None,
            Some(e) if e.value.trim().eq_ignore_ascii_case("none") => ErrorTolerance::None,
            Some(e) if e.value.trim().eq_ignore_ascii_case("all") => {
                warn!(
                    source = s.source(),
                    key = ERRORS_TOLERANCE,
                    value = "all",
                    "records larger than the producer's message.max.bytes are skipped and logged; a record that fails to convert or transform, or that the broker refuses, still stops the connector"
                );
                ErrorTolerance::All
            }
            Some(e) => {
                s.invalid(&e, "`none`, `all`");
                ErrorTolerance::None
            }
        };
        let exactly_once_support = s.choice(
            EXACTLY_ONCE_SUPPORT,
            ExactlyOnceSupport::Requested,
            &[
                ("requested", ExactlyOnceSupport::Requested),
                ("required", ExactlyOnceSupport::Required),
            ],
        );
        let transaction_boundary = match s.take(TRANSACTION_BOUNDARY) {
            None => TransactionBoundary::Poll,
            Some(e) if e.value.trim().eq_ignore_ascii_case("poll") => TransactionBoundary::Poll,
            Some(e) if e.value.trim().eq_ignore_ascii_case("interval") => {
                TransactionBoundary::Interval
            }
            Some(e) if e.value.trim().eq_ignore_ascii_case("connector") => {
                let err = ConfigError::UnsupportedValue {
                    location: s.location(&e),
                    key: e.key.clone(),
                    value: e.value.trim().to_owned(),
                    reason: "the connector does not support connector-defined transaction boundaries (Kafka Connect refuses this value for Debezium's PostgreSQL connector too); use `poll` or `interval`".to_owned(),
                };
                s.push(err);
                TransactionBoundary::Poll
            }
            Some(e) => {
                s.invalid(&e, "`poll`, `interval`, `connector`");
                TransactionBoundary::Poll
            }
        };
        let transaction_boundary_interval = match s.take(TRANSACTION_BOUNDARY_INTERVAL_MS) {
            None => None,
            Some(e) if e.value.trim().is_empty() => None,
            Some(e) => match e.value.trim().parse::<i64>() {
                Ok(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                _ => {
                    s.invalid(&e, "a whole number ≥ 0");
                    None
                }
            },
        };
        let mut producer_overrides = Properties::default();
        for e in s.take_prefixed("producer.override.") {
            producer_overrides.insert(e.key["producer.override.".len()..].to_owned(), e.value);
        }
        let mut topic_creation = Properties::default();
        let topic_creation_entries = s.take_prefixed("topic.creation.");
        for e in &topic_creation_entries {
            topic_creation.insert(e.key["topic.creation.".len()..].to_owned(), e.value.clone());
        }
        let topic_creation_groups = match TopicCreation::from_properties(topic_creation.as_map()) {
            Ok(groups) => groups,
            Err(errors) => {
                for error in errors {
                    let key = format!("topic.creation.{}", error.key);
                    match topic_creation_entries.iter().find(|e| e.key == key) {
                        Some(entry) => s.invalid(entry, error.message),
                        None => s.missing(&key, Some(&error.message)),
                    }
                }
                None
            }
        };
        take_reload_action(&mut s);
        for e in s.take_rest() {
            classify_other_key(&mut s, &e);
        }

        let (
            Some(name),
            Some(database_hostname),
            Some(database_user),
            Some(database_dbname),
            Some(topic_prefix),
        ) = (
            name,
            database_hostname,
            database_user,
            database_dbname,
            topic_prefix,
        )
        else {
            return Err(ConfigErrors(s.errors));
        };
        if !s.errors.is_empty() {
            return Err(ConfigErrors(s.errors));
        }
        Ok(ConnectorConfig {
            name,
            database_hostname,
            database_port,
            database_user,
            database_password,
            database_dbname,
            database_sslmode,
            database_sslrootcert,
            database_sslcert,
            database_sslkey,
            database_sslpassword,
            database_query_timeout,
            slot_max_retries,
            slot_retry_delay,
            retriable_restart_wait,
            topic_prefix,
            slot_name,
            publication_name,
            publication_autocreate_mode,
            table_filter,
            snapshot_mode,
            offset_mismatch_strategy,
            decimal_handling_mode,
            time_precision_mode,
            binary_handling_mode,
            hstore_handling_mode,
            interval_handling_mode,
            money_fraction_digits,
            include_unknown_datatypes,
            multidimensional_array_mode,
            unavailable_array_mode,
            tombstones_on_delete,
            skipped_operations,
            provide_transaction_metadata,
            position_headers,
            topic_transaction,
            message_prefix_filter,
            transforms,
            columns,
            naming,
            status_update_interval,
            slot_drop_on_stop,
            publish_via_partition_root,
            snapshot_max_threads,
            snapshot_fetch_size,
            snapshot_chunk_rows,
            snapshot_chunk_strategy,
            snapshot_throttle_rows_per_second,
            snapshot_throttle_bytes_per_second,
            snapshot_throttle_chunk_pause,
            snapshot_progress_interval,
            snapshot_select_overrides,
            snapshot_chunk_strategy_overrides,
            snapshot_include,
            signal_data_collection,
            signal_kafka,
            signal_file,
            signal_poll_interval,
            notifications,
            incremental_snapshot_chunk_size,
            incremental_snapshot_watermarking,
            heartbeat_interval,
            heartbeat_action_query,
            heartbeat_topics_prefix,
            max_batch_size,
            max_queue_size,
            poll_interval,
            key_converter,
            value_converter,
            header_converter,
            producer_overrides,
            errors_tolerance,
            exactly_once_support,
            transaction_boundary,
            transaction_boundary_interval,
            topic_creation,
            topic_creation_groups,
            original,
        })
    }
}

/// Debezium's `snapshot.select.statement.overrides`: a comma-separated list of `schema.table`,
/// each with its statement in `snapshot.select.statement.overrides.<schema>.<table>`. A listed
/// table without a statement, or a statement for an unlisted table, is an error.
fn take_select_overrides(s: &mut Settings) -> std::collections::BTreeMap<String, String> {
    let list = s.take("snapshot.select.statement.overrides");
    let statements = s.take_prefixed(SELECT_OVERRIDE_PREFIX);
    let mut overrides = std::collections::BTreeMap::new();
    let listed: Vec<String> = list
        .as_ref()
        .map(|e| {
            e.value
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for statement in statements {
        let table = statement.key[SELECT_OVERRIDE_PREFIX.len()..].to_owned();
        if !listed.contains(&table) {
            s.invalid(
                &statement,
                format!("a statement for a table listed in `snapshot.select.statement.overrides`, but `{table}` is not listed there"),
            );
        } else if statement.value.trim().is_empty() {
            s.invalid(&statement, "a SELECT statement");
        } else {
            overrides.insert(table, statement.value.trim().to_owned());
        }
    }
    if let Some(entry) = &list {
        for table in &listed {
            if !overrides.contains_key(table) {
                s.invalid(
                    entry,
                    format!("tables that each have a `{SELECT_OVERRIDE_PREFIX}{table}` statement, but `{table}` has none"),
                );
            }
        }
    }
    overrides
}

/// `pgseam.snapshot.chunk.strategy.overrides`: a comma-separated list of
/// `<schema>.<table>:<strategy>` (strategy as `snapshot.chunk.strategy`), e.g.
/// `public.orders:key,public.events:ctid`. A malformed entry, an unknown strategy or a table
/// named twice is an error naming the entry.
fn take_chunk_strategy_overrides(
    s: &mut Settings,
) -> std::collections::BTreeMap<String, SnapshotChunkStrategy> {
    let mut overrides = std::collections::BTreeMap::new();
    let Some(entry) = s.take("pgseam.snapshot.chunk.strategy.overrides") else {
        return overrides;
    };
    for item in entry
        .value
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let parsed = item.rsplit_once(':').and_then(|(table, strategy)| {
            let table = table.trim();
            let strategy = match strategy.trim().to_ascii_lowercase().as_str() {
                "auto" => SnapshotChunkStrategy::Auto,
                "ctid" => SnapshotChunkStrategy::Ctid,
                "key" => SnapshotChunkStrategy::Key,
                "whole" => SnapshotChunkStrategy::Whole,
                _ => return None,
            };
            let (schema, name) = table.split_once('.')?;
            (!schema.is_empty() && !name.is_empty()).then(|| (table.to_owned(), strategy))
        });
        match parsed {
            Some((table, _)) if overrides.contains_key(&table) => s.invalid(
                &entry,
                format!("each table once, but `{table}` is named twice"),
            ),
            Some((table, strategy)) => {
                overrides.insert(table, strategy);
            }
            None => s.invalid(
                &entry,
                format!("a comma-separated list of `<schema>.<table>:<strategy>` with strategy auto, ctid, key or whole, but `{item}` is not"),
            ),
        }
    }
    overrides
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// True if `key` is a connector key (for telling users a key is in the wrong file).
pub(crate) fn is_connector_key(key: &str) -> bool {
    SUPPORTED_KEYS.contains(&key)
        || super::columns::COLUMN_KEYS.contains(&key)
        || CONNECT_KEYS.contains(&key)
        || catalog().connector_key(key).is_some()
}

fn take_name(s: &mut Settings) -> Option<String> {
    let Some(e) = s.take("name") else {
        s.missing("name", Some("a unique connector name"));
        return None;
    };
    let v = e.value.trim();
    // Kafka Connect requires a non-empty name without control characters.
    if v.is_empty() || v.chars().any(char::is_control) {
        s.invalid(&e, "a non-empty name without control characters");
        return None;
    }
    Some(v.to_owned())
}

fn take_connector_class(s: &mut Settings) {
    let Some(e) = s.take("connector.class") else {
        s.missing(
            "connector.class",
            Some(&format!("set connector.class={POSTGRES_CONNECTOR_CLASS}")),
        );
        return;
    };
    let class = e.value.trim();
    if !POSTGRES_CONNECTOR_NAMES.contains(&class) {
        let err = ConfigError::UnsupportedValue {
            location: s.location(&e),
            key: e.key.clone(),
            value: class.to_owned(),
            reason: format!(
                "pgseam implements only Debezium's PostgreSQL connector; set connector.class={POSTGRES_CONNECTOR_CLASS}"
            ),
        };
        s.push(err);
    }
}

fn take_tasks_max(s: &mut Settings) {
    let Some(e) = s.take("tasks.max") else {
        return;
    };
    if let Some(n) = s.parse_int_entry(&e, 1, i32::MAX as u32) {
        if n > DEFAULT_TASKS_MAX {
            warn!(
                source = s.source(),
                tasks_max = n,
                "the PostgreSQL connector always runs a single task (one replication slot, one connection), as in Debezium"
            );
        }
    }
}

fn take_plugin_name(s: &mut Settings) {
    let Some(e) = s.take("plugin.name") else {
        info!(
            source = s.source(),
            "`plugin.name` is not set: using pgoutput (Debezium's default, decoderbufs, needs a server extension pgseam does not speak)"
        );
        return;
    };
    let v = e.value.trim();
    if v.eq_ignore_ascii_case("pgoutput") {
        return;
    }
    if let Some(plugin) = REMOVED_PLUGINS.iter().find(|p| v.eq_ignore_ascii_case(p)) {
        let err = ConfigError::Removed {
            location: s.location(&e),
            key: e.key.clone(),
            value: Some((*plugin).into()),
            removed_in: "2.0",
            instead:
                "set plugin.name=pgoutput (PostgreSQL's built-in plugin, the one pgseam speaks)"
                    .to_owned(),
        };
        s.push(err);
    } else if v.eq_ignore_ascii_case("decoderbufs") {
        let err = ConfigError::UnsupportedValue {
            location: s.location(&e),
            key: e.key.clone(),
            value: v.to_owned(),
            reason: "pgseam speaks only pgoutput; set plugin.name=pgoutput".to_owned(),
        };
        s.push(err);
    } else {
        s.invalid(
            &e,
            "`pgoutput` (the only logical decoding plugin pgseam speaks)",
        );
    }
}

fn take_topic_prefix(s: &mut Settings) -> Option<String> {
    let e = match s.take("topic.prefix") {
        Some(e) => e,
        None => {
            s.missing(
                "topic.prefix",
                Some("topics are named <topic.prefix>.<schema>.<table>"),
            );
            return None;
        }
    };
    let v = e.value.trim();
    let re = Regex::new(TOPIC_PREFIX_PATTERN).expect("valid regex");
    if !re.is_match(v) || v.len() > MAX_TOPIC_NAME_LEN {
        s.invalid(
            &e,
            format!("a topic name prefix of ASCII letters, digits, `.`, `_` and `-` (at most {MAX_TOPIC_NAME_LEN} characters)"),
        );
        return None;
    }
    Some(v.to_owned())
}

fn take_slot_name(s: &mut Settings) -> String {
    let Some(e) = s.take("slot.name") else {
        return DEFAULT_SLOT_NAME.to_owned();
    };
    let v = e.value.trim();
    let re = Regex::new(SLOT_NAME_PATTERN).expect("valid regex");
    if !re.is_match(v) {
        s.invalid(
            &e,
            "a PostgreSQL replication slot name: lower-case letters, digits and underscores, 1 to 63 characters",
        );
    }
    v.to_owned()
}

/// Debezium's `provide.transaction.metadata` default.
pub const DEFAULT_PROVIDE_TRANSACTION_METADATA: bool = false;

/// Debezium's `topic.transaction` default (`DefaultTopicNamingStrategy`).
pub const DEFAULT_TOPIC_TRANSACTION: &str = "transaction";

/// Which logical decoding messages are emitted, by prefix: Debezium's
/// `message.prefix.include.list` or `message.prefix.exclude.list` (anchored, case-insensitive
/// regular expressions, like the table lists).
#[derive(Debug, Clone)]
pub struct MessagePrefixFilter {
    /// `true` for an include list, `false` for an exclude list.
    pub include: bool,
    pub patterns: Vec<Regex>,
}

impl MessagePrefixFilter {
    /// True if messages with `prefix` are emitted.
    pub fn allows(&self, prefix: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(prefix)) == self.include
    }
}

fn take_message_prefix_filter(s: &mut Settings) -> Option<MessagePrefixFilter> {
    let (include_key, exclude_key) = ("message.prefix.include.list", "message.prefix.exclude.list");
    let include = s.take(include_key).filter(|e| !e.value.trim().is_empty());
    let exclude = s.take(exclude_key).filter(|e| !e.value.trim().is_empty());
    let (include, entry) = match (include, exclude) {
        (Some(inc), Some(exc)) => {
            let later = if exc.line >= inc.line { &exc } else { &inc };
            let e = ConfigError::Conflict {
                location: s.location(later),
                keys: vec![include_key.to_owned(), exclude_key.to_owned()],
                message: format!(
                    "`{include_key}` and `{exclude_key}` cannot both be set (Debezium rejects this too); keep one"
                ),
            };
            s.push(e);
            return None;
        }
        (Some(inc), None) => (true, inc),
        (None, Some(exc)) => (false, exc),
        (None, None) => return None,
    };
    match compile_regex_list(&entry.value) {
        Ok(patterns) => Some(MessagePrefixFilter { include, patterns }),
        Err(bad) => {
            s.invalid(
                &entry,
                format!(
                    "comma-separated regular expressions, but `{}` is invalid: {} (pgseam uses Rust regex syntax: no look-around or back-references)",
                    bad.pattern, bad.reason
                ),
            );
            None
        }
    }
}

fn take_table_filter(s: &mut Settings) -> TableFilter {
    let ignore_builtin = s.bool("table.ignore.builtin", DEFAULT_TABLE_IGNORE_BUILTIN);
    let mut filter = TableFilter::new(ignore_builtin);
    for (include_key, exclude_key, is_schema) in [
        ("schema.include.list", "schema.exclude.list", true),
        ("table.include.list", "table.exclude.list", false),
    ] {
        // An empty list is the same as no list, as in Debezium.
        let include = s.take(include_key).filter(|e| !e.value.trim().is_empty());
        let exclude = s.take(exclude_key).filter(|e| !e.value.trim().is_empty());
        let chosen = match (include, exclude) {
            (Some(inc), Some(exc)) => {
                let later = if exc.line >= inc.line { &exc } else { &inc };
                let e = ConfigError::Conflict {
                    location: s.location(later),
                    keys: vec![include_key.to_owned(), exclude_key.to_owned()],
                    message: format!(
                        "`{include_key}` and `{exclude_key}` cannot both be set (Debezium rejects this too); keep one"
                    ),
                };
                s.push(e);
                None
            }
            (Some(inc), None) => Some((true, inc)),
            (None, Some(exc)) => Some((false, exc)),
            (None, None) => None,
        };
        let Some((include, entry)) = chosen else {
            continue;
        };
        match compile_regex_list(&entry.value) {
            Ok(patterns) if is_schema => filter.set_schema_rule(include, patterns),
            Ok(patterns) => filter.set_table_rule(include, patterns),
            Err(bad) => s.invalid(
                &entry,
                format!(
                    "comma-separated regular expressions, but `{}` is invalid: {} (pgseam uses Rust regex syntax: no look-around or back-references)",
                    bad.pattern, bad.reason
                ),
            ),
        }
    }
    filter
}

fn take_snapshot_mode(s: &mut Settings) -> SnapshotMode {
    let Some(e) = s.take("snapshot.mode") else {
        return SnapshotMode::Initial;
    };
    let v = e.value.trim().to_ascii_lowercase();
    match v.as_str() {
        "initial" => SnapshotMode::Initial,
        "initial_only" => SnapshotMode::InitialOnly,
        "no_data" => SnapshotMode::NoData,
        "always" => SnapshotMode::Always,
        "when_needed" => SnapshotMode::WhenNeeded,
        "exported" => {
            let err = ConfigError::Removed {
                location: s.location(&e),
                key: e.key.clone(),
                value: Some("exported".into()),
                removed_in: "3.3",
                instead: "use `initial`, which reads the snapshot exported by the slot's creation"
                    .to_owned(),
            };
            s.push(err);
            SnapshotMode::Initial
        }
        "never" => {
            warn!(
                source = s.source(),
                "snapshot.mode=never was deprecated in Debezium 2 and removed in 3.3; read as its replacement, no_data"
            );
            SnapshotMode::NoData
        }
        other if UNSUPPORTED_SNAPSHOT_MODES.contains(&other) => {
            let err = ConfigError::UnsupportedValue {
                location: s.location(&e),
                key: e.key.clone(),
                value: e.value.trim().to_owned(),
                reason: "not implemented: pgseam implements snapshot.mode `initial`, `initial_only`, `no_data` (alias `never`), `always` and `when_needed`".to_owned(),
            };
            s.push(err);
            SnapshotMode::Initial
        }
        _ => {
            s.invalid(
                &e,
                "one of `initial`, `initial_only`, `no_data`, `never`, `always`, `when_needed` (`configuration_based` and `custom` are Debezium modes pgseam does not implement)",
            );
            SnapshotMode::Initial
        }
    }
}

fn take_skipped_operations(s: &mut Settings) -> SkippedOperations {
    let Some(e) = s.take("skipped.operations") else {
        return DEFAULT_SKIPPED_OPERATIONS;
    };
    let mut ops = SkippedOperations::NONE;
    let mut saw_none = false;
    let mut saw_op = false;
    let expected = "a comma-separated list of `c` (inserts), `u` (updates), `d` (deletes), `t` (truncates), or `none`";
    for item in e.value.split(',').map(|i| i.trim().to_ascii_lowercase()) {
        match item.as_str() {
            "" => {}
            "none" => saw_none = true,
            "c" => ops.create = true,
            "u" => ops.update = true,
            "d" => ops.delete = true,
            "t" => ops.truncate = true,
            "r" => {
                let err = ConfigError::UnsupportedValue {
                    location: s.location(&e),
                    key: e.key.clone(),
                    value: e.value.trim().to_owned(),
                    reason: "skipping `r` (snapshot reads) is not supported yet".to_owned(),
                };
                s.push(err);
                return DEFAULT_SKIPPED_OPERATIONS;
            }
            _ => {
                s.invalid(&e, expected);
                return DEFAULT_SKIPPED_OPERATIONS;
            }
        }
        saw_op |= item.len() == 1;
    }
    if saw_none && saw_op {
        s.invalid(&e, "`none` alone, or operations without `none`");
        return DEFAULT_SKIPPED_OPERATIONS;
    }
    if !saw_none && !saw_op {
        // An empty list: Debezium would skip nothing; say so explicitly instead.
        s.invalid(&e, expected);
        return DEFAULT_SKIPPED_OPERATIONS;
    }
    ops
}

/// `transforms` and `predicates`: the chain of single message transforms pgseam applies natively
/// ([`pgseam_converters::transforms`]). Every alias needs `transforms.<alias>.type` of a supported
/// class; any other type is an error naming it. Each transform's keys are validated like
/// connector keys (unknown keys are errors naming the alias); `predicate`/`negate` refer to
/// `predicates.<alias>.*`. Keys of unlisted transform or predicate aliases are ignored, as Kafka
/// Connect ignores them.
/// The keys of one transform or predicate alias (`<prefix>` = `transforms.<alias>.` or
/// `predicates.<alias>.`), marked as used.
fn alias_keys<'a>(
    entries: &'a [RawEntry],
    prefix: &str,
    used: &mut std::collections::HashSet<String>,
) -> Vec<&'a RawEntry> {
    let keys: Vec<&RawEntry> = entries
        .iter()
        .filter(|e| e.key.starts_with(prefix))
        .collect();
    used.extend(keys.iter().map(|e| e.key.clone()));
    keys
}

/// The alias's key `<prefix><name>`, if set.
fn alias_key<'a>(keys: &[&'a RawEntry], prefix: &str, name: &str) -> Option<&'a RawEntry> {
    keys.iter()
        .find(|e| e.key.strip_prefix(prefix) == Some(name))
        .copied()
}

fn take_transforms(s: &mut Settings) -> Transforms {
    use std::collections::HashMap;
    let transforms = s.take("transforms");
    let transform_keys = s.take_prefixed("transforms.");
    let predicates = s.take("predicates");
    let predicate_keys = s.take_prefixed("predicates.");
    let list = |e: &Option<RawEntry>| -> Vec<String> {
        e.as_ref()
            .map(|e| {
                e.value
                    .split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let aliases = list(&transforms);
    let predicate_aliases = list(&predicates);
    let mut used = std::collections::HashSet::new();
    // Predicates first: transforms refer to them.
    let mut resolved: HashMap<String, Predicate> = HashMap::new();
    for p in &predicate_aliases {
        let prefix = format!("predicates.{p}.");
        let keys = alias_keys(&predicate_keys, &prefix, &mut used);
        let get = |k: &str| alias_key(&keys, &prefix, k);
        let Some(ty) = get("type") else {
            s.missing(&format!("{prefix}type"), Some("the predicate's class"));
            continue;
        };
        let class = ty.value.trim();
        let (predicate, allowed): (Option<Predicate>, &[&str]) = match class {
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches" => {
                let pred = match get("pattern") {
                    None => {
                        s.missing(
                            &format!("{prefix}pattern"),
                            Some("a Java regex matched against the whole topic name"),
                        );
                        None
                    }
                    Some(e) => match JavaRegex::new(e.value.trim()) {
                        Ok(re) => Some(Predicate::TopicNameMatches(re)),
                        Err(why) => {
                            s.invalid(e, format!("a regex ({why})"));
                            None
                        }
                    },
                };
                (pred, &["type", "pattern"])
            }
            "org.apache.kafka.connect.transforms.predicates.HasHeaderKey" => {
                let pred = match get("name") {
                    None => {
                        s.missing(&format!("{prefix}name"), Some("the header key"));
                        None
                    }
                    Some(e) => Some(Predicate::HasHeaderKey(e.value.trim().to_owned())),
                };
                (pred, &["type", "name"])
            }
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone" => {
                (Some(Predicate::RecordIsTombstone), &["type"])
            }
            other => {
                s.push(ConfigError::UnsupportedValue {
                    location: s.location(ty),
                    key: ty.key.clone(),
                    value: other.to_owned(),
                    reason: "pgseam supports the predicates TopicNameMatches, HasHeaderKey and RecordIsTombstone (org.apache.kafka.connect.transforms.predicates)".into(),
                });
                continue;
            }
        };
        for e in &keys {
            if !allowed.iter().any(|k| e.key == format!("{prefix}{k}")) {
                s.invalid(
                    e,
                    format!(
                        "no such property of predicate `{p}` ({class}); it takes {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        if let Some(pred) = predicate {
            resolved.insert(p.clone(), pred);
        }
    }
    let mut steps = Vec::new();
    for a in &aliases {
        let prefix = format!("transforms.{a}.");
        let keys = alias_keys(&transform_keys, &prefix, &mut used);
        let get = |k: &str| alias_key(&keys, &prefix, k);
        let Some(ty) = get("type") else {
            s.missing(&format!("{prefix}type"), Some("the transform's class"));
            continue;
        };
        let class = ty.value.trim().to_owned();
        let mut errors: Vec<(RawEntry, String)> = Vec::new();
        let mut missing: Vec<(String, &'static str)> = Vec::new();
        let bool_of = |k: &str, default: bool, errors: &mut Vec<(RawEntry, String)>| -> bool {
            match get(k) {
                None => default,
                Some(e) => match e.value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        errors.push(((*e).clone(), "`true` or `false`".into()));
                        default
                    }
                },
            }
        };
        let regex_of = |k: &str, errors: &mut Vec<(RawEntry, String)>| -> Option<JavaRegex> {
            let e = get(k)?;
            match JavaRegex::new(e.value.trim()) {
                Ok(re) => Some(re),
                Err(why) => {
                    errors.push(((*e).clone(), format!("a regex ({why})")));
                    None
                }
            }
        };
        let replacement_of = |k: &str,
                              re: &JavaRegex,
                              errors: &mut Vec<(RawEntry, String)>|
         -> Option<JavaReplacement> {
            let e = get(k)?;
            match JavaReplacement::new(&e.value, re) {
                Ok(r) => Some(r),
                Err(why) => {
                    errors.push((
                        (*e).clone(),
                        format!("a replacement for `{}` ({why})", re.as_str()),
                    ));
                    None
                }
            }
        };
        let (transform, allowed): (Option<Transform>, &[&str]) = match class.as_str() {
            "org.apache.kafka.connect.transforms.RegexRouter" => {
                let re = regex_of("regex", &mut errors);
                if get("regex").is_none() {
                    missing.push((
                        "regex".into(),
                        "a Java regex matched against the whole topic name",
                    ));
                }
                if get("replacement").is_none() {
                    missing.push((
                        "replacement".into(),
                        "the new topic name (`$1` refers to a group)",
                    ));
                }
                let rep = re
                    .as_ref()
                    .and_then(|re| replacement_of("replacement", re, &mut errors));
                let t = re.zip(rep).map(|(regex, replacement)| {
                    Transform::RegexRouter(RegexRouter { regex, replacement })
                });
                (t, &["type", "regex", "replacement", "predicate", "negate"])
            }
            "io.debezium.transforms.ByLogicalTableRouter" => {
                let re = regex_of("topic.regex", &mut errors);
                if get("topic.regex").is_none() {
                    missing.push((
                        "topic.regex".into(),
                        "a Java regex matched against the whole topic name",
                    ));
                }
                if get("topic.replacement").is_none() {
                    missing.push(("topic.replacement".into(), "the logical table's topic"));
                }
                let rep = re
                    .as_ref()
                    .and_then(|re| replacement_of("topic.replacement", re, &mut errors));
                let key_field = match (
                    regex_of("key.field.regex", &mut errors),
                    get("key.field.replacement"),
                ) {
                    (Some(kre), Some(_)) => {
                        replacement_of("key.field.replacement", &kre, &mut errors).map(|r| (kre, r))
                    }
                    (Some(_), None) => {
                        missing.push((
                            "key.field.replacement".into(),
                            "key.field.replacement must be non-empty if key.field.regex is set",
                        ));
                        None
                    }
                    _ => None,
                };
                let key_enforce_uniqueness = bool_of("key.enforce.uniqueness", true, &mut errors);
                let key_field_name = get("key.field.name")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "__dbz__physicalTableIdentifier".into());
                if let Some(e) = get("schema.name.adjustment.mode") {
                    if !e.value.trim().eq_ignore_ascii_case("none") {
                        errors.push((
                            (*e).clone(),
                            "`none` (pgseam does not adjust schema names)".into(),
                        ));
                    }
                }
                if let Some(e) = get("logical.table.cache.size") {
                    if e.value.trim().parse::<u32>().is_err() {
                        errors.push(((*e).clone(), "a positive integer".into()));
                    }
                }
                let t = re.zip(rep).map(|(topic_regex, topic_replacement)| {
                    Transform::ByLogicalTableRouter(ByLogicalTableRouter {
                        topic_regex,
                        topic_replacement,
                        key_enforce_uniqueness,
                        key_field_name,
                        key_field,
                    })
                });
                (
                    t,
                    &[
                        "type",
                        "topic.regex",
                        "topic.replacement",
                        "key.enforce.uniqueness",
                        "key.field.name",
                        "key.field.regex",
                        "key.field.replacement",
                        "schema.name.adjustment.mode",
                        "logical.table.cache.size",
                        "predicate",
                        "negate",
                    ],
                )
            }
            "io.debezium.transforms.ExtractNewRecordState" => {
                let mut u = ExtractNewRecordState {
                    replace_null_with_default: true,
                    drop_fields_keep_schema_compatible: true,
                    ..Default::default()
                };
                if let Some(e) = get("delete.tombstone.handling.mode") {
                    match DeleteTombstoneHandling::parse(&e.value) {
                        Some(m) => u.delete_handling = m,
                        None => errors.push(((*e).clone(), DeleteTombstoneHandling::VALUES.into())),
                    }
                }
                let add_fields_prefix = get("add.fields.prefix")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "__".into());
                let add_headers_prefix = get("add.headers.prefix")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "__".into());
                for (k, prefix, target) in [
                    ("add.fields", &add_fields_prefix, &mut u.add_fields),
                    ("add.headers", &add_headers_prefix, &mut u.add_headers),
                ] {
                    if let Some(e) = get(k) {
                        for spec in e.value.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                            match FieldReference::parse(prefix, spec) {
                                Ok(f) => target.push(f),
                                Err(why) => errors.push((
                                    (*e).clone(),
                                    format!("a list of [struct.]field[:name] ({why})"),
                                )),
                            }
                        }
                    }
                }
                u.route_by_field = get("route.by.field")
                    .map(|e| e.value.trim().to_owned())
                    .filter(|v| !v.is_empty());
                u.replace_null_with_default =
                    bool_of("replace.null.with.default", true, &mut errors);
                u.drop_fields_header_name = get("drop.fields.header.name")
                    .map(|e| e.value.trim().to_owned())
                    .filter(|v| !v.is_empty());
                u.drop_fields_from_key = bool_of("drop.fields.from.key", false, &mut errors);
                u.drop_fields_keep_schema_compatible =
                    bool_of("drop.fields.keep.schema.compatible", true, &mut errors);
                for (legacy, instead) in [
                    ("delete.handling.mode", "delete.tombstone.handling.mode"),
                    ("drop.tombstones", "delete.tombstone.handling.mode"),
                ] {
                    if let Some(e) = get(legacy) {
                        errors.push(((*e).clone(), format!("nothing: `{prefix}{legacy}` was removed in Debezium 3.0, use `{prefix}{instead}`")));
                    }
                }
                (
                    Some(Transform::ExtractNewRecordState(u)),
                    &[
                        "type",
                        "delete.tombstone.handling.mode",
                        "add.fields",
                        "add.fields.prefix",
                        "add.headers",
                        "add.headers.prefix",
                        "route.by.field",
                        "replace.null.with.default",
                        "drop.fields.header.name",
                        "drop.fields.from.key",
                        "drop.fields.keep.schema.compatible",
                        "predicate",
                        "negate",
                        "delete.handling.mode",
                        "drop.tombstones",
                    ],
                )
            }
            other => {
                s.push(ConfigError::UnsupportedValue {
                    location: s.location(ty),
                    key: ty.key.clone(),
                    value: other.to_owned(),
                    reason: format!("transform `{a}`: pgseam applies io.debezium.transforms.ExtractNewRecordState, io.debezium.transforms.ByLogicalTableRouter and org.apache.kafka.connect.transforms.RegexRouter natively; other transforms are not supported"),
                });
                continue;
            }
        };
        for e in &keys {
            if !allowed.iter().any(|k| e.key == format!("{prefix}{k}")) {
                errors.push((
                    (*e).clone(),
                    format!("no such property of transform `{a}` ({class})"),
                ));
            }
        }
        let negate = bool_of("negate", false, &mut errors);
        let predicate = match get("predicate") {
            None => None,
            Some(e) => {
                let name = e.value.trim();
                match resolved.get(name) {
                    Some(p) => Some(p.clone()),
                    None => {
                        if !predicate_aliases.iter().any(|p| p == name) {
                            errors.push((
                                (*e).clone(),
                                format!(
                                    "a predicate alias listed in `predicates` ({})",
                                    predicate_aliases.join(", ")
                                ),
                            ));
                        }
                        None
                    }
                }
            }
        };
        for (e, why) in errors {
            s.invalid(&e, why);
        }
        for (k, hint) in missing {
            s.missing(&format!("{prefix}{k}"), Some(hint));
        }
        if let Some(transform) = transform {
            steps.push(TransformStep {
                alias: a.clone(),
                transform,
                predicate,
                negate,
            });
        }
    }
    if transforms.is_none() || aliases.is_empty() {
        debug!(source = s.source(), "no transforms");
    }
    for e in transform_keys.iter().chain(&predicate_keys) {
        if !used.contains(&e.key) {
            warn!(source = s.source(), key = %e.key, "ignored: not a key of a listed transform or predicate");
        }
    }
    Transforms { steps }
}

fn take_reload_action(s: &mut Settings) {
    let Some(e) = s.take("config.action.reload") else {
        return;
    };
    if ["none", "restart"]
        .iter()
        .any(|v| v.eq_ignore_ascii_case(e.value.trim()))
    {
        warn!(source = s.source(), key = %e.key, "ignored: pgseam resolves config providers once, at start (a changed secret takes a restart of the connector)");
    } else {
        s.invalid(&e, "`none` or `restart`");
    }
}

/// Everything not read above: Debezium or Connect properties pgseam does not implement
/// (accepted at their default), ignored Connect keys, keys of the other file, and typos.
fn classify_other_key(s: &mut Settings, e: &RawEntry) {
    let key = e.key.as_str();
    let unsupported = |owner: Owner, default: Option<&str>| ConfigError::Unsupported {
        location: s.location(e),
        key: e.key.clone(),
        value: shown_value(key, e.value.trim()),
        default: default.map(str::to_owned),
        owner,
    };
    if let Some(legacy) = legacy_key(key) {
        let err = ConfigError::Removed {
            location: s.location(e),
            key: e.key.clone(),
            value: None,
            removed_in: legacy.removed_in,
            instead: legacy.instead.to_owned(),
        };
        s.push(err);
    } else if let Some(k) = catalog().connector_key(key) {
        if let Some((_, instead)) = DEPRECATED_KEYS.iter().find(|(d, _)| *d == key) {
            warn!(
                source = s.source(),
                key,
                replacement = instead,
                "deprecated in Debezium; use `{instead}`"
            );
        }
        if k.is_default(&e.value) {
            debug!(
                source = s.source(),
                key, "accepted: a Debezium property at its default"
            );
        } else {
            let err = unsupported(Owner::Debezium, k.default);
            s.push(err);
        }
    } else if let Some((_, accepted, default, behaviour)) =
        WARNED_CONNECT_KEYS.iter().find(|(k, ..)| *k == key)
    {
        let value = e.value.trim();
        let valid = match accepted {
            ConnectValue::Boolean => ["true", "false"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(value)),
            ConnectValue::AtLeast(min) => value.parse::<i64>().is_ok_and(|n| n >= *min),
        };
        if !valid {
            let expected = match accepted {
                ConnectValue::Boolean => "`true` or `false`".to_owned(),
                ConnectValue::AtLeast(min) => format!("a whole number ≥ {min}"),
            };
            s.invalid(e, expected);
        } else if is_default_value(key, "ENUM", *default, value) {
            debug!(
                source = s.source(),
                key, "accepted: a Kafka Connect property at its default"
            );
        } else {
            warn!(source = s.source(), key, value, "accepted, but {behaviour}");
        }
    } else if key.starts_with(DRIVER_PASSTHROUGH_PREFIX) {
        let err = unsupported(Owner::Debezium, None);
        s.push(err);
    } else if IGNORED_CONNECT_PREFIXES.iter().any(|p| key.starts_with(p))
        || key == "offsets.storage.topic"
        || key == "connector.plugin.version"
    {
        warn!(source = s.source(), key, "ignored: a Kafka Connect property that does not apply to a standalone source connector");
    } else if is_worker_key(key) {
        let err = ConfigError::WrongScope {
            location: s.location(e),
            key: e.key.clone(),
            found_in: Scope::Connector,
            belongs_to: Scope::Worker,
        };
        s.push(err);
    } else {
        let suggestion = match key.strip_prefix("producer.") {
            Some(rest) => Some(format!("producer.override.{rest}")),
            None => suggest(
                key,
                SUPPORTED_KEYS
                    .iter()
                    .chain(CONNECT_KEYS)
                    .copied()
                    .chain(WARNED_CONNECT_KEYS.iter().map(|(k, ..)| *k))
                    .chain(catalog().connector_names()),
            ),
        };
        let err = match (suggestion, key.strip_prefix(JDBC_PASSTHROUGH_LEGACY_PREFIX)) {
            // Not a typo of a known key: a JDBC driver property under Debezium 1.x's prefix.
            (None, Some(property)) => ConfigError::Removed {
                location: s.location(e),
                key: e.key.clone(),
                value: None,
                removed_in: "2.0",
                instead: format!(
                    "JDBC driver properties are passed with the `driver.` prefix since then (`driver.{property}`), which pgseam does not support yet"
                ),
            },
            (suggestion, _) => ConfigError::UnknownKey {
                location: s.location(e),
                scope: Scope::Connector,
                key: e.key.clone(),
                suggestion,
            },
        };
        s.push(err);
    }
}

/// Debezium's notification channels pgseam implements (`notification.enabled.channels`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationChannels {
    /// `log`: each notification is logged (`[Notification Service] {..}`, as Debezium's
    /// `LogNotificationChannel`).
    pub log: bool,
    /// `sink`: each notification is a record on this topic (`notification.sink.topic.name`).
    pub sink_topic: Option<String>,
}

impl NotificationChannels {
    /// Whether any channel is enabled.
    pub fn any(&self) -> bool {
        self.log || self.sink_topic.is_some()
    }
}

/// `notification.enabled.channels` (`sink`, `log`; Debezium's `jmx` is refused: pgseam has
/// no JMX, its metrics are at `/metrics`) and `notification.sink.topic.name` (required with
/// `sink`, as Debezium's validation requires it).
fn take_notification_settings(s: &mut Settings) -> NotificationChannels {
    let mut channels = NotificationChannels::default();
    let mut sink = false;
    if let Some(entry) = s.take("notification.enabled.channels") {
        for channel in entry
            .value
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            match channel {
                "log" => channels.log = true,
                "sink" => sink = true,
                "jmx" => s.invalid(
                    &entry,
                    "a list of notification channels; `jmx` is not supported (pgseam runs no JVM: use `log` or `sink`, and the snapshot metrics at GET /metrics)",
                ),
                other => s.invalid(
                    &entry,
                    format!("a list of notification channels; `{other}` is not one pgseam implements (`sink`, `log`)"),
                ),
            }
        }
    }
    let topic = s.take("notification.sink.topic.name");
    match (sink, topic) {
        (true, Some(e)) if !e.value.trim().is_empty() => {
            let name = e.value.trim().to_owned();
            if Regex::new(TOPIC_PREFIX_PATTERN).is_ok_and(|r| r.is_match(&name))
                && name.len() <= MAX_TOPIC_NAME_LEN
            {
                channels.sink_topic = Some(name);
            } else {
                s.invalid(&e, "a Kafka topic name (letters, digits, `.`, `_`, `-`)");
            }
        }
        (true, _) => s.missing(
            "notification.sink.topic.name",
            Some("Notification topic name must be provided when kafka notification channel is enabled: notification.enabled.channels lists `sink`"),
        ),
        // Debezium ignores the topic while `sink` is off.
        (false, _) => {}
    }
    channels
}

/// Debezium's `KafkaSignalChannel` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSignalChannel {
    /// `signal.kafka.topic` (default `<topic.prefix>-signal`); partition 0 is read.
    pub topic: String,
    /// `signal.kafka.bootstrap.servers` (required).
    pub bootstrap_servers: String,
    /// `signal.kafka.groupId` (default `kafka-signal`): the consumer group whose committed
    /// offset says where reading resumes.
    pub group_id: String,
    /// `signal.consumer.*`: consumer properties (librdkafka names), the prefix removed.
    pub consumer: std::collections::BTreeMap<String, String>,
}

/// The signal settings of a connector.
struct SignalSettings {
    table: Option<(String, String)>,
    kafka: Option<KafkaSignalChannel>,
    file: Option<std::path::PathBuf>,
    poll_interval: Duration,
}

/// `signal.enabled.channels` (Debezium's default `source`; also `kafka` and `file`; `jmx` is
/// refused), `signal.data.collection` (`<schema>.<table>`, the table of the `source`
/// channel), the `kafka` channel's `signal.kafka.*` and `signal.consumer.*` keys, the `file`
/// channel's `signal.file` and `signal.poll.interval.ms`.
fn take_signal_settings(s: &mut Settings, topic_prefix: &str) -> SignalSettings {
    let (mut source, mut kafka, mut file) = (true, false, false);
    if let Some(entry) = s.take("signal.enabled.channels") {
        source = false;
        for channel in entry
            .value
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            match channel {
                "source" => source = true,
                "kafka" => kafka = true,
                "file" => file = true,
                "jmx" => s.invalid(
                    &entry,
                    "a list of signal channels; `jmx` is not supported (pgseam runs no JVM: use POST /connectors/{name}/signals, pgseam's extension, or the source, kafka or file channel)",
                ),
                other => s.invalid(
                    &entry,
                    format!("a list of signal channels; `{other}` is not one pgseam implements (`source`, `kafka`, `file`)"),
                ),
            }
        }
    }
    let poll_interval =
        Duration::from_millis(s.int("signal.poll.interval.ms", 5000u64, 1, i32::MAX as u64));
    let kafka_keys = [
        "signal.kafka.topic",
        "signal.kafka.bootstrap.servers",
        "signal.kafka.groupId",
        "signal.kafka.poll.timeout.ms",
    ];
    let kafka = if kafka {
        let topic = match s.take("signal.kafka.topic") {
            None => format!("{topic_prefix}-signal"),
            Some(e)
                if Regex::new(TOPIC_PREFIX_PATTERN).is_ok_and(|r| r.is_match(e.value.trim())) =>
            {
                e.value.trim().to_owned()
            }
            Some(e) => {
                s.invalid(&e, "a Kafka topic name (letters, digits, `.`, `_`, `-`)");
                String::new()
            }
        };
        let bootstrap_servers = s.required_string(
            "signal.kafka.bootstrap.servers",
            Some("the Kafka cluster of the signal topic, required by the kafka signal channel"),
        );
        let group_id = s
            .take("signal.kafka.groupId")
            .map(|e| e.value.trim().to_owned())
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "kafka-signal".to_owned());
        // Debezium's poll wait; pgseam's reader waits for records without polling.
        let _poll_timeout = s.int("signal.kafka.poll.timeout.ms", 0u64, 0, i32::MAX as u64);
        let consumer = s
            .take_prefixed("signal.consumer.")
            .into_iter()
            .map(|e| (e.key["signal.consumer.".len()..].to_owned(), e.value))
            .collect();
        bootstrap_servers.map(|bootstrap_servers| KafkaSignalChannel {
            topic,
            bootstrap_servers,
            group_id,
            consumer,
        })
    } else {
        // Debezium ignores the channel's keys while it is off.
        for key in kafka_keys {
            s.take(key);
        }
        s.take_prefixed("signal.consumer.");
        None
    };
    let file_entry = s.take("signal.file");
    let file = file.then(|| {
        std::path::PathBuf::from(
            file_entry
                .map(|e| e.value.trim().to_owned())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "file-signals.txt".to_owned()),
        )
    });
    let table = take_signal_table(s, source);
    SignalSettings {
        table,
        kafka,
        file,
        poll_interval,
    }
}

/// `incremental.snapshot.watermarking.strategy`. Debezium always writes its window rows
/// (default `insert_insert`); pgseam writes logical messages unless the key asks for
/// Debezium's rows, which go into the signaling table.
fn take_watermarking(
    s: &mut Settings,
    signal_table: &Option<(String, String)>,
) -> WatermarkStrategy {
    let Some(entry) = s
        .take("incremental.snapshot.watermarking.strategy")
        .filter(|e| !e.value.trim().is_empty())
    else {
        return WatermarkStrategy::Message;
    };
    // Debezium's `WatermarkStrategy.parse`: trimmed, case-insensitive.
    let strategy = match entry.value.trim().to_ascii_lowercase().as_str() {
        "insert_insert" => WatermarkStrategy::InsertInsert,
        "insert_delete" => WatermarkStrategy::InsertDelete,
        _ => {
            s.invalid(&entry, "`insert_insert` or `insert_delete`");
            return WatermarkStrategy::Message;
        }
    };
    if signal_table.is_none() {
        s.invalid(
            &entry,
            "no value without signal.data.collection: the strategy writes its window rows into the signaling table (unset, pgseam writes logical-message watermarks)",
        );
        return WatermarkStrategy::Message;
    }
    strategy
}

/// `signal.data.collection`, the `source` channel's table (`source_enabled`: the channel is
/// listed in `signal.enabled.channels`).
fn take_signal_table(s: &mut Settings, source_enabled: bool) -> Option<(String, String)> {
    let entry = s
        .take("signal.data.collection")
        .filter(|e| !e.value.trim().is_empty())?;
    if !source_enabled {
        s.invalid(
            &entry,
            "no value while signal.enabled.channels does not list `source`: the signaling table is the source channel's",
        );
        return None;
    }
    let value = entry.value.trim().to_owned();
    match value.split_once('.') {
        Some((schema, table))
            if !schema.is_empty() && !table.is_empty() && !table.contains('.') =>
        {
            Some((schema.to_owned(), table.to_owned()))
        }
        _ => {
            s.invalid(
                &entry,
                "`<schema>.<table>`, the signaling table (columns `id`, `type`, `data`)",
            );
            None
        }
    }
}
