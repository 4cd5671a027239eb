//! The Kafka Connect worker configuration (`worker.properties`, Connect's
//! `connect-standalone.properties`).

use std::path::PathBuf;
use std::time::Duration;

use tracing::{info, warn};

use super::catalog::suggest;
use super::connector::is_connector_key;
use super::converter::{
    take_header_converter, take_worker_converter, ConverterSettings, HeaderConverter, Role,
};
use super::error::{ConfigError, ConfigErrors, Scope};
use super::provider::ConfigProviders;
use super::secret::Properties;
use super::settings::Settings;
use super::source::RawConfig;

/// Kafka Connect's `bootstrap.servers` default: a broker on this host.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "localhost:9092";
/// Kafka Connect's `offset.flush.interval.ms` default (60 s): how often source offsets are
/// committed; a crash replays at most this much.
pub const DEFAULT_OFFSET_FLUSH_INTERVAL: Duration = Duration::from_millis(60_000);
/// Kafka Connect's `offset.flush.timeout.ms` default (5 s): how long an offset flush waits for
/// outstanding records before giving up until the next interval.
pub const DEFAULT_OFFSET_FLUSH_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Kafka Connect's `task.shutdown.graceful.timeout.ms` default (5 s): how long a stop waits
/// for a connector to finish cleanly. pgseam bounds the whole stop of each connector by it:
/// deliveries still outstanding then are abandoned (purged) and sent again after the restart.
pub(crate) const DEFAULT_TASK_SHUTDOWN_GRACEFUL_TIMEOUT: Duration = Duration::from_millis(5_000);
/// pgseam's `listeners` default: the REST API on the loopback interface, port 8083. Kafka
/// Connect's default (`http://:8083`) listens on every interface; pgseam's REST API has no
/// authentication (neither has Connect's by default), so it is only reachable from this host
/// unless `listeners` says otherwise (a deliberate difference, see COMPATIBILITY.md).
pub const DEFAULT_LISTENERS: &str = "http://127.0.0.1:8083";

/// pgseam's own worker key (not a Kafka Connect key): where records go. See [`SinkKind`].
pub const SINK_KEY: &str = "pgseam.sink";
/// pgseam's own worker key: how log lines are written. See [`LogFormat`].
pub const LOG_FORMAT_KEY: &str = "log.format";
/// pgseam's own worker key: each connector producer's memory budget in bytes, from which
/// librdkafka's `queue.buffering.max.kbytes` / `.messages` and pgseam's bound on records
/// awaiting acknowledgement are derived (`pgseam_sink_kafka::budget`). Default 128 MiB, at
/// least 8 MiB.
pub const MEMORY_BUDGET_KEY: &str = "pgseam.memory.budget.bytes";

/// Kafka Connect's `offset.storage.partitions` default.
pub const DEFAULT_OFFSET_STORAGE_PARTITIONS: i32 = 25;
/// `offset.storage.replication.factor` when unset: the broker's `default.replication.factor`.
/// (Connect's default is 3, which fails on clusters of fewer than three brokers.)
pub const DEFAULT_OFFSET_STORAGE_REPLICATION_FACTOR: i16 = -1;

/// Worker keys pgseam reads.
const WORKER_KEYS: [&str; 19] = [
    "bootstrap.servers",
    "topic.creation.enable",
    "key.converter",
    "value.converter",
    "header.converter",
    "offset.storage.file.filename",
    "offset.flush.interval.ms",
    "offset.flush.timeout.ms",
    "task.shutdown.graceful.timeout.ms",
    "offset.storage.topic",
    "offset.storage.partitions",
    "offset.storage.replication.factor",
    "listeners",
    "config.providers",
    SINK_KEY,
    LOG_FORMAT_KEY,
    MEMORY_BUDGET_KEY,
    EXACTLY_ONCE_SOURCE_SUPPORT,
    "group.id",
];

/// Kafka Connect worker keys that pgseam accepts and ignores (logged at debug level): plugin
/// loading, REST advertisement and extensions, metrics, topic tracking, internal converters,
/// distributed-mode keys (a standalone Connect worker ignores them too), and client tuning of
/// Connect's own internal clients, which pgseam does not have.
const IGNORED_WORKER_KEYS: &[&str] = &[
    "plugin.path",
    "plugin.discovery",
    "rest.host.name",
    "rest.port",
    "rest.advertised.host.name",
    "rest.advertised.port",
    "rest.advertised.listener",
    "admin.listeners",
    "access.control.allow.origin",
    "access.control.allow.methods",
    "rest.extension.classes",
    "response.http.headers.config",
    "connector.client.config.override.policy",
    "metrics.sample.window.ms",
    "metrics.num.samples",
    "metrics.recording.level",
    "metric.reporters",
    "auto.include.jmx.reporter",
    "topic.tracking.enable",
    "topic.tracking.allow.reset",
    "ssl.client.auth",
    "client.dns.lookup",
    "client.id",
    "request.timeout.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "receive.buffer.bytes",
    "send.buffer.bytes",
    "metadata.max.age.ms",
    "metadata.recovery.strategy",
    "connections.max.idle.ms",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    // Distributed mode.
    "config.storage.topic",
    "config.storage.replication.factor",
    "status.storage.topic",
    "status.storage.replication.factor",
    "status.storage.partitions",
    "heartbeat.interval.ms",
    "session.timeout.ms",
    "rebalance.timeout.ms",
    "worker.sync.timeout.ms",
    "worker.unsync.backoff.ms",
    "scheduled.rebalance.max.delay.ms",
    "connect.protocol",
    "inter.worker.key.generation.algorithm",
    "inter.worker.key.size",
    "inter.worker.key.ttl.ms",
    "inter.worker.signature.algorithm",
    "inter.worker.verification.algorithms",
];

/// Ignored worker keys that change what a Kafka Connect worker does, so their being ignored
/// is logged as a warning (one line each), with the reason: a distributed deployment's keys
/// (pgseam runs one standalone worker; offsets can still go to `offset.storage.topic`) and
/// the plugin path.
const WARNED_WORKER_KEYS: &[(&str, &str)] = &[
    (
        "config.storage.topic",
        "a distributed-mode key; pgseam keeps connector configs in files next to the offsets file",
    ),
    (
        "status.storage.topic",
        "a distributed-mode key; pgseam serves connector status over its REST API only",
    ),
    (
        "plugin.path",
        "pgseam has the PostgreSQL connector, converters and transforms built in; there are no plugins to load",
    ),
];

/// Prefixes of ignored worker keys: internal converters (`internal.key.converter`, removed in
/// Kafka 3.0), HTTPS listener settings, and Connect's consumer and admin
/// clients.
const IGNORED_WORKER_PREFIXES: [&str; 4] = ["internal.", "listeners.https.", "consumer.", "admin."];

/// Worker-level client security keys. Kafka Connect applies them to its internal clients and
/// REST listener but not to connector producers (those take `producer.*`), so pgseam ignores
/// them with a warning that points at `producer.<key>`.
const CLIENT_SECURITY_PREFIXES: [&str; 3] = ["security.protocol", "sasl.", "ssl."];

/// Debezium embedded-engine keys that are worker keys in Kafka Connect.
const ENGINE_WORKER_KEYS: [&str; 1] = ["offset.storage"];

/// True if `key` is a worker key (for telling users a key is in the wrong file).
pub(crate) fn is_worker_key(key: &str) -> bool {
    WORKER_KEYS.contains(&key)
        || IGNORED_WORKER_KEYS.contains(&key)
        || ENGINE_WORKER_KEYS.contains(&key)
}

/// The worker key of KIP-618 exactly-once source support.
pub const EXACTLY_ONCE_SOURCE_SUPPORT: &str = "exactly.once.source.support";

/// `exactly.once.source.support` (Kafka Connect's `DistributedConfig`, default `disabled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExactlyOnceSourceSupport {
    /// `disabled` (default): at least once, the idempotent producer.
    #[default]
    Disabled,
    /// `preparing`: in Connect, the workers fence and coordinate but tasks do not use
    /// transactions yet (a rolling upgrade's first step); pgseam has no worker group, so this
    /// is `disabled` with a log line.
    Preparing,
    /// `enabled`: records and offsets in Kafka transactions.
    Enabled,
}

/// `pgseam.sink`: where a connector's records go. A pgseam extension for benchmarks; Kafka
/// Connect has no such key, and a Connect worker file never sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkKind {
    /// `kafka` (default): the idempotent producer to `bootstrap.servers`.
    #[default]
    Kafka,
    /// `null`: records are encoded as usual, then dropped, each counting as acknowledged at
    /// once, so offsets are stored and the slot advances. For measuring everything but Kafka
    /// (`bench/run.sh`); the data goes nowhere, so the start is logged as a warning.
    Null,
}

/// `log.format`: how pgseam writes its log (to stderr). A pgseam extension: Kafka Connect
/// configures logging in `connect-log4j.properties`, not in the worker file. The command
/// line's `--log-format` wins over it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `human` (default): one line per event, `time level target: message field=value …`,
    /// coloured on a terminal.
    #[default]
    Human,
    /// `json`: one JSON object per line (`timestamp`, `level`, `target`, `fields` with
    /// `message`, and the `span`s), for log shippers.
    Json,
}

impl LogFormat {
    /// Parses a `log.format` value (case-insensitive, trimmed).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "human" => Some(LogFormat::Human),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `offset.storage.topic`, `offset.storage.partitions`, `offset.storage.replication.factor`.
///
/// In Kafka Connect these are distributed-mode keys: a distributed worker keeps source offsets
/// in this compacted topic, and a standalone worker ignores them and uses
/// `offset.storage.file.filename`. pgseam extension: a standalone pgseam worker with
/// `offset.storage.topic` set keeps its offsets in the topic, in the layout Connect's
/// distributed workers write (so a distributed Connect cluster running Debezium and pgseam can
/// hand a connector's offsets to each other through it). Without the key the file is used, as
/// in Connect standalone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetStorageTopic {
    pub topic: String,
    /// Partitions when pgseam creates the topic (Connect's default 25; `-1`: broker default).
    pub partitions: i32,
    /// Replication factor when pgseam creates the topic (`-1`, the default: broker default).
    pub replication_factor: i16,
    /// The worker-level client security keys (`security.protocol`, `sasl.*`, `ssl.*`), which
    /// Connect applies to the clients of its internal topics; passed to librdkafka as given.
    pub client_overrides: Properties,
}

/// The worker configuration.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list of Kafka brokers.
    pub bootstrap_servers: String,
    /// `key.converter` and `key.converter.*` (JsonConverter when unset).
    pub key_converter: ConverterSettings,
    /// `value.converter` and `value.converter.*` (JsonConverter when unset).
    pub value_converter: ConverterSettings,
    /// `header.converter` (SimpleHeaderConverter when unset, as in Kafka Connect).
    pub header_converter: HeaderConverter,
    /// `offset.storage.file.filename`: where a standalone worker stores source offsets (and,
    /// beside it, connectors created over REST). Required, as in Connect standalone, even when
    /// the offsets go to a topic.
    pub offset_storage_file_filename: PathBuf,
    /// `offset.storage.topic` (and its partitions and replication factor): store offsets in
    /// this compacted Kafka topic instead of the file. See [`OffsetStorageTopic`].
    pub offset_storage_topic: Option<OffsetStorageTopic>,
    /// `offset.flush.interval.ms`.
    pub offset_flush_interval: Duration,
    /// `offset.flush.timeout.ms`: with `task_shutdown_graceful_timeout`, how long a stop
    /// waits for outstanding records (the shorter of the two, as in Connect).
    pub offset_flush_timeout: Duration,
    /// `task.shutdown.graceful.timeout.ms` (default 5 s): the bound on each connector's stop
    /// (see [`DEFAULT_TASK_SHUTDOWN_GRACEFUL_TIMEOUT`]).
    pub task_shutdown_graceful_timeout: Duration,
    /// `listeners`: REST API listener URLs such as `http://:8083` (empty host = all interfaces).
    pub listeners: Vec<String>,
    /// `producer.*` keys with the prefix removed, passed to the Kafka producer. Secret values
    /// are redacted from `Debug`.
    pub producer_overrides: Properties,
    /// `config.providers` and `config.providers.<alias>.class`: how `${alias:path:key}`
    /// references in worker and connector values are resolved (see [`ConfigProviders`]).
    pub config_providers: ConfigProviders,
    /// `topic.creation.enable` (Connect's default true): whether connectors' `topic.creation.*`
    /// settings create topics.
    pub topic_creation_enable: bool,
    /// `pgseam.sink` (default `kafka`).
    pub sink: SinkKind,
    /// `pgseam.memory.budget.bytes` (default 128 MiB): each connector producer's memory budget
    /// (see [`MEMORY_BUDGET_KEY`]).
    pub memory_budget_bytes: u64,
    /// `exactly.once.source.support` (Connect distributed's worker key, KIP-618; a pgseam
    /// extension in standalone): `enabled` delivers every connector's records exactly once,
    /// in Kafka transactions with their offsets (see `pipeline`'s "Exactly-once").
    pub exactly_once_source_support: ExactlyOnceSourceSupport,
    /// `group.id`: with exactly-once delivery, the first part of each connector's
    /// `transactional.id` (`<group.id>-<connector>-0`, as Connect names task 0's); otherwise
    /// unused (pgseam runs no worker group).
    pub group_id: Option<String>,
    /// `log.format` (default `human`). Applied by `main` before the file is validated (see
    /// [`peek_log_format`]); kept here so that a bad value is a configuration error.
    pub log_format: LogFormat,
}

impl WorkerConfig {
    /// Validates a worker configuration given as key/value pairs (a later duplicate key wins).
    /// `source` names it in error messages (a path or a description).
    pub fn from_map<I, K, V>(entries: I, source: &str) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::from_raw(RawConfig::from_pairs(entries, source))
    }

    pub(crate) fn from_raw(mut raw: RawConfig) -> Result<Self, ConfigErrors> {
        let mut provider_errors = Vec::new();
        let config_providers = ConfigProviders::from_worker(&raw, &mut provider_errors);
        config_providers.resolve_raw(&mut raw, &mut provider_errors);
        let mut s = Settings::new(raw, Scope::Worker);
        for e in provider_errors {
            s.push(e);
        }

        let bootstrap_servers = match s.take("bootstrap.servers") {
            Some(e) if !e.value.trim().is_empty() => e.value.trim().to_owned(),
            Some(e) => {
                s.invalid(&e, "a comma-separated list of host:port");
                String::new()
            }
            None => {
                info!(
                    source = s.source(),
                    "`bootstrap.servers` is not set: using {DEFAULT_BOOTSTRAP_SERVERS}"
                );
                DEFAULT_BOOTSTRAP_SERVERS.to_owned()
            }
        };
        let key_converter = take_worker_converter(&mut s, Role::Key);
        let value_converter = take_worker_converter(&mut s, Role::Value);
        let header_converter = take_header_converter(&mut s).unwrap_or_default();
        let offset_storage_file_filename = s
            .required_string(
                "offset.storage.file.filename",
                Some("the file where the standalone worker stores connector offsets"),
            )
            .map(PathBuf::from);
        let offset_flush_interval = Duration::from_millis(s.int(
            "offset.flush.interval.ms",
            millis(DEFAULT_OFFSET_FLUSH_INTERVAL),
            1,
            i64::MAX as u64,
        ));
        let offset_flush_timeout = Duration::from_millis(s.int(
            "offset.flush.timeout.ms",
            millis(DEFAULT_OFFSET_FLUSH_TIMEOUT),
            1,
            i64::MAX as u64,
        ));
        // Connect defines it as a LONG without a validator (a negative value waits for
        // nothing); pgseam takes 0 for that and refuses a negative one.
        let task_shutdown_graceful_timeout = Duration::from_millis(s.int(
            "task.shutdown.graceful.timeout.ms",
            millis(DEFAULT_TASK_SHUTDOWN_GRACEFUL_TIMEOUT),
            0,
            i64::MAX as u64,
        ));
        let mut offset_storage_topic = take_offset_storage_topic(&mut s);
        let listeners = take_listeners(&mut s);
        // Read above by `ConfigProviders::from_worker`; provider parameters are not used.
        s.take("config.providers");
        for e in s.take_prefixed("config.providers.") {
            if !e.key.ends_with(".class") {
                warn!(
                    source = s.source(),
                    key = e.key.as_str(),
                    "ignored: pgseam's file, env and directory config providers take no parameters"
                );
            }
        }
        let topic_creation_enable = s.bool("topic.creation.enable", true);
        let sink = s.choice(
            SINK_KEY,
            SinkKind::Kafka,
            &[("kafka", SinkKind::Kafka), ("null", SinkKind::Null)],
        );
        let memory_budget_bytes = s.int(
            MEMORY_BUDGET_KEY,
            pgseam_sink_kafka::budget::DEFAULT_MEMORY_BUDGET,
            pgseam_sink_kafka::budget::MIN_MEMORY_BUDGET,
            i64::MAX as u64,
        );
        let log_format = s.choice(
            LOG_FORMAT_KEY,
            LogFormat::Human,
            &[("human", LogFormat::Human), ("json", LogFormat::Json)],
        );

        let exactly_once_entry = s.peek(EXACTLY_ONCE_SOURCE_SUPPORT);
        let exactly_once_source_support = s.choice(
            EXACTLY_ONCE_SOURCE_SUPPORT,
            ExactlyOnceSourceSupport::Disabled,
            &[
                ("disabled", ExactlyOnceSourceSupport::Disabled),
                ("preparing", ExactlyOnceSourceSupport::Preparing),
                ("enabled", ExactlyOnceSourceSupport::Enabled),
            ],
        );
        let group_id = s
            .take("group.id")
            .map(|e| e.value.trim().to_owned())
            .filter(|g| !g.is_empty());
        match exactly_once_source_support {
            ExactlyOnceSourceSupport::Enabled => {
                let location = exactly_once_entry
                    .as_ref()
                    .map_or_else(|| s.file_location(), |e| s.location(e));
                if offset_storage_topic.is_none() {
                    let e = ConfigError::Conflict {
                        location: location.clone(),
                        keys: vec![EXACTLY_ONCE_SOURCE_SUPPORT.into(), "offset.storage.topic".into()],
                        message: "`exactly.once.source.support=enabled` needs `offset.storage.topic`: each offset is written in the same Kafka transaction as the records it covers, which a file cannot join (Kafka Connect keeps offsets in that topic in distributed mode, the only mode where it offers exactly-once)".into(),
                    };
                    s.push(e);
                }
                if group_id.is_none() {
                    let e = ConfigError::Conflict {
                        location,
                        keys: vec![EXACTLY_ONCE_SOURCE_SUPPORT.into(), "group.id".into()],
                        message: "`exactly.once.source.support=enabled` needs `group.id`: each connector's producer uses transactional.id `<group.id>-<connector>-0`, as Kafka Connect names it, so that a second instance of the connector fences the first; use the Connect cluster's group.id to take over from its task".into(),
                    };
                    s.push(e);
                }
            }
            ExactlyOnceSourceSupport::Preparing => {
                info!(source = s.source(), "exactly.once.source.support=preparing: as in Kafka Connect, records are not delivered in transactions (at least once) until it is `enabled`");
            }
            ExactlyOnceSourceSupport::Disabled => {
                if group_id.is_some() {
                    warn!(source = s.source(), key = "group.id", "ignored: a distributed-mode key; pgseam runs one standalone worker (no group, no rebalancing); it names transactional producers only with exactly.once.source.support=enabled");
                }
            }
        }

        let mut producer_overrides = Properties::default();
        for e in s.take_prefixed("producer.") {
            producer_overrides.insert(e.key["producer.".len()..].to_owned(), e.value);
        }

        for e in s.take_rest() {
            let key = e.key.as_str();
            if let Some((_, reason)) = WARNED_WORKER_KEYS.iter().find(|(k, _)| *k == key) {
                warn!(source = s.source(), key, "ignored: {reason}");
            } else if IGNORED_WORKER_KEYS.contains(&key)
                || IGNORED_WORKER_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                warn!(
                    source = s.source(),
                    key, "ignored: a Kafka Connect worker property pgseam does not need"
                );
            } else if CLIENT_SECURITY_PREFIXES.iter().any(|p| key.starts_with(p)) {
                if let Some(topic) = &mut offset_storage_topic {
                    // Connect's internal clients (the offsets topic's) use them.
                    topic
                        .client_overrides
                        .insert(e.key.clone(), e.value.clone());
                }
                if producer_overrides.get(key).is_none() {
                    warn!(
                        source = s.source(),
                        key,
                        "worker-level client security settings do not apply to connector producers (in Kafka Connect either; only to the offsets topic's clients); set `producer.{key}` for pgseam's producer"
                    );
                }
            } else if is_connector_key(key) {
                let err = ConfigError::WrongScope {
                    location: s.location(&e),
                    key: e.key.clone(),
                    found_in: Scope::Worker,
                    belongs_to: Scope::Connector,
                };
                s.push(err);
            } else {
                let candidates = WORKER_KEYS
                    .iter()
                    .chain(IGNORED_WORKER_KEYS)
                    .copied()
                    .chain(["offset.storage.file.filename", "producer.bootstrap.servers"]);
                let err = ConfigError::UnknownKey {
                    location: s.location(&e),
                    scope: Scope::Worker,
                    key: e.key.clone(),
                    suggestion: suggest(key, candidates),
                };
                s.push(err);
            }
        }

        match offset_storage_file_filename {
            Some(offset_storage_file_filename) if s.errors.is_empty() => Ok(WorkerConfig {
                bootstrap_servers,
                key_converter,
                value_converter,
                header_converter,
                offset_storage_file_filename,
                offset_storage_topic,
                offset_flush_interval,
                offset_flush_timeout,
                task_shutdown_graceful_timeout,
                listeners,
                producer_overrides,
                config_providers,
                topic_creation_enable,
                sink,
                memory_budget_bytes,
                log_format,
                exactly_once_source_support,
                group_id,
            }),
            _ => Err(ConfigErrors(s.errors)),
        }
    }
}

/// The `log.format` of a worker file (or its `PGSEAM_WORKER_LOG_FORMAT` override), read before
/// logging starts (so before the file is validated and before config providers are
/// resolved). `None` when the file cannot be read,
/// does not parse, or has no valid `log.format`: logging then starts in the default format,
/// and validation reports the problem.
pub fn peek_log_format(path: &std::path::Path) -> Option<LogFormat> {
    let raw = super::read_worker_raw(path, None).ok()?;
    raw.entries
        .iter()
        .rev()
        .find(|e| e.key == LOG_FORMAT_KEY)
        .and_then(|e| LogFormat::parse(&e.value))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `offset.storage.topic` and its partitions and replication factor (positive or -1, as
/// Connect validates them); the last two without the first are an error.
fn take_offset_storage_topic(s: &mut Settings) -> Option<OffsetStorageTopic> {
    let topic = s.take("offset.storage.topic");
    let mut number = |key: &str, default: i32, max: i32| -> (bool, i32) {
        let Some(e) = s.take(key) else {
            return (false, default);
        };
        match e.value.trim().parse::<i32>() {
            Ok(n) if n == -1 || (1..=max).contains(&n) => (true, n),
            _ => {
                s.invalid(
                    &e,
                    format!("-1 (the broker's default) or an integer from 1 to {max}"),
                );
                (true, default)
            }
        }
    };
    let (partitions_set, partitions) = number(
        "offset.storage.partitions",
        DEFAULT_OFFSET_STORAGE_PARTITIONS,
        i32::MAX,
    );
    let (factor_set, replication_factor) = number(
        "offset.storage.replication.factor",
        i32::from(DEFAULT_OFFSET_STORAGE_REPLICATION_FACTOR),
        i32::from(i16::MAX),
    );
    let replication_factor =
        i16::try_from(replication_factor).unwrap_or(DEFAULT_OFFSET_STORAGE_REPLICATION_FACTOR);
    let Some(topic) = topic else {
        if partitions_set || factor_set {
            s.missing(
                "offset.storage.topic",
                Some("offset.storage.partitions and offset.storage.replication.factor configure the offsets topic"),
            );
        }
        return None;
    };
    if topic.value.trim().is_empty() {
        s.invalid(&topic, "a topic name");
        return None;
    }
    Some(OffsetStorageTopic {
        topic: topic.value.trim().to_owned(),
        partitions,
        replication_factor,
        client_overrides: Properties::default(),
    })
}

/// `listeners`: a comma-separated list of `http://host:port` or `https://host:port`.
fn take_listeners(s: &mut Settings) -> Vec<String> {
    let Some(e) = s.take("listeners") else {
        return vec![DEFAULT_LISTENERS.to_owned()];
    };
    let items: Vec<String> = e
        .value
        .split(',')
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect();
    let valid = |l: &String| {
        let rest = l
            .strip_prefix("http://")
            .or_else(|| l.strip_prefix("https://"));
        rest.and_then(|r| r.rsplit_once(':'))
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    };
    if items.is_empty() || !items.iter().all(valid) {
        s.invalid(
            &e,
            "a comma-separated list of listener URLs such as `http://:8083` or `http://0.0.0.0:8083`",
        );
        return vec![DEFAULT_LISTENERS.to_owned()];
    }
    items
}

#[cfg(test)]
mod tests {
    use super::super::converter::{ConverterKind, DecimalFormat};
    use super::*;

    fn worker(pairs: &[(&str, &str)]) -> Result<WorkerConfig, ConfigErrors> {
        WorkerConfig::from_map(pairs.iter().copied(), "worker.properties")
    }

    fn errors(pairs: &[(&str, &str)]) -> Vec<String> {
        worker(pairs)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const FILE: (&str, &str) = ("offset.storage.file.filename", "/tmp/offsets.dat");

    #[test]
    fn exactly_once_source_support() {
        let w = worker(&[FILE]).unwrap();
        assert_eq!(
            (w.exactly_once_source_support, w.group_id),
            (ExactlyOnceSourceSupport::Disabled, None)
        );
        let topic = ("offset.storage.topic", "connect-offsets");
        let w = worker(&[
            FILE,
            topic,
            ("exactly.once.source.support", "ENABLED"),
            ("group.id", "connect-cluster"),
        ])
        .unwrap();
        assert_eq!(
            w.exactly_once_source_support,
            ExactlyOnceSourceSupport::Enabled
        );
        assert_eq!(w.group_id.as_deref(), Some("connect-cluster"));
        // `preparing` is accepted: at least once, as in Connect.
        let w = worker(&[FILE, ("exactly.once.source.support", "preparing")]).unwrap();
        assert_eq!(
            w.exactly_once_source_support,
            ExactlyOnceSourceSupport::Preparing
        );
        // Enabled needs the offsets topic and group.id, each named.
        let errs = errors(&[FILE, ("exactly.once.source.support", "enabled")]);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].contains("`exactly.once.source.support=enabled` needs `offset.storage.topic`"),
            "{errs:#?}"
        );
        assert!(
            errs[1].contains("needs `group.id`") && errs[1].contains("<group.id>-<connector>-0"),
            "{errs:#?}"
        );
        let errs = errors(&[FILE, ("exactly.once.source.support", "on")]);
        assert!(
            errs[0].contains("one of `disabled`, `preparing`, `enabled`"),
            "{errs:#?}"
        );
    }

    #[test]
    fn defaults() {
        let w = worker(&[FILE]).unwrap();
        assert_eq!(w.bootstrap_servers, "localhost:9092");
        assert_eq!(w.key_converter.kind, ConverterKind::Json);
        assert!(w.key_converter.schemas_enable);
        assert!(w.value_converter.schemas_enable);
        assert_eq!(w.header_converter, HeaderConverter::Simple);
        assert_eq!(
            w.offset_storage_file_filename,
            PathBuf::from("/tmp/offsets.dat")
        );
        assert_eq!(w.offset_flush_interval, Duration::from_secs(60));
        assert_eq!(w.offset_flush_timeout, Duration::from_secs(5));
        assert_eq!(w.task_shutdown_graceful_timeout, Duration::from_secs(5));
        assert_eq!(w.listeners, vec!["http://127.0.0.1:8083"]);
        assert!(w.producer_overrides.is_empty());
        assert_eq!(w.sink, SinkKind::Kafka);
    }

    #[test]
    fn offset_storage_topic() {
        assert_eq!(worker(&[FILE]).unwrap().offset_storage_topic, None);
        let w = worker(&[
            FILE,
            ("offset.storage.topic", " connect-offsets "),
            ("security.protocol", "SASL_SSL"),
        ])
        .unwrap();
        let topic = w.offset_storage_topic.unwrap();
        assert_eq!(topic.topic, "connect-offsets");
        assert_eq!(topic.partitions, 25);
        assert_eq!(topic.replication_factor, -1);
        assert_eq!(
            topic.client_overrides.get("security.protocol"),
            Some("SASL_SSL")
        );
        let w = worker(&[
            FILE,
            ("offset.storage.topic", "o"),
            ("offset.storage.partitions", "-1"),
            ("offset.storage.replication.factor", "3"),
        ])
        .unwrap();
        let topic = w.offset_storage_topic.unwrap();
        assert_eq!((topic.partitions, topic.replication_factor), (-1, 3));
        let errs = errors(&[
            FILE,
            ("offset.storage.topic", "o"),
            ("offset.storage.partitions", "0"),
            ("offset.storage.replication.factor", "40000"),
        ]);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter().all(|e| e.contains("-1 (the broker's default)")),
            "{errs:?}"
        );
        let errs = errors(&[FILE, ("offset.storage.partitions", "5")]);
        assert!(
            errs[0].contains("missing required worker property `offset.storage.topic`"),
            "{errs:?}"
        );
    }

    #[test]
    fn null_sink() {
        let w = worker(&[FILE]).unwrap();
        assert_eq!(w.memory_budget_bytes, 128 * 1024 * 1024);
        let w = worker(&[FILE, ("pgseam.memory.budget.bytes", "33554432")]).unwrap();
        assert_eq!(w.memory_budget_bytes, 32 * 1024 * 1024);
        let errs = errors(&[FILE, ("pgseam.memory.budget.bytes", "1000")]);
        assert!(
            errs.len() == 1 && errs[0].contains("`pgseam.memory.budget.bytes`"),
            "{errs:?}"
        );
        let w = worker(&[FILE, ("pgseam.sink", " NULL ")]).unwrap();
        assert_eq!(w.sink, SinkKind::Null);
        let w = worker(&[FILE, ("pgseam.sink", "kafka")]).unwrap();
        assert_eq!(w.sink, SinkKind::Kafka);
        let errs = errors(&[FILE, ("pgseam.sink", "/dev/null")]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("`pgseam.sink`") && errs[0].contains("`kafka`, `null`"),
            "{errs:?}"
        );
    }

    #[test]
    fn log_format() {
        assert_eq!(worker(&[FILE]).unwrap().log_format, LogFormat::Human);
        let w = worker(&[FILE, ("log.format", " JSON ")]).unwrap();
        assert_eq!(w.log_format, LogFormat::Json);
        let errs = errors(&[FILE, ("log.format", "logfmt")]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("`log.format`") && errs[0].contains("`human`, `json`"),
            "{errs:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.properties");
        std::fs::write(&path, "log.format=human\nlog.format = json\n").unwrap();
        assert_eq!(peek_log_format(&path), Some(LogFormat::Json));
        std::fs::write(&path, "log.format=logfmt\n").unwrap();
        assert_eq!(peek_log_format(&path), None);
        assert_eq!(peek_log_format(&dir.path().join("missing")), None);
    }

    #[test]
    fn typical_connect_standalone_file() {
        let w = worker(&[
            ("bootstrap.servers", "kafka-1:9092,kafka-2:9092"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("key.converter.schemas.enable", "false"),
            ("value.converter.schemas.enable", "False"),
            FILE,
            ("offset.flush.interval.ms", "10000"),
            ("task.shutdown.graceful.timeout.ms", "2000"),
            ("plugin.path", "/usr/share/java"),
            ("rest.advertised.host.name", "connect"),
            (
                "internal.key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("internal.key.converter.schemas.enable", "false"),
            ("listeners", "http://0.0.0.0:8083, https://:8443"),
            ("producer.compression.type", "zstd"),
            ("producer.sasl.jaas.config", "secret stuff"),
            ("consumer.max.poll.records", "5"),
            ("security.protocol", "SASL_SSL"),
        ])
        .unwrap();
        assert_eq!(w.bootstrap_servers, "kafka-1:9092,kafka-2:9092");
        assert!(!w.key_converter.schemas_enable);
        assert!(!w.value_converter.schemas_enable);
        assert_eq!(w.offset_flush_interval, Duration::from_secs(10));
        assert_eq!(w.task_shutdown_graceful_timeout, Duration::from_secs(2));
        let err = worker(&[FILE, ("task.shutdown.graceful.timeout.ms", "-1")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("task.shutdown.graceful.timeout.ms"),
            "{err}"
        );
        assert_eq!(w.listeners, vec!["http://0.0.0.0:8083", "https://:8443"]);
        assert_eq!(w.producer_overrides.get("compression.type"), Some("zstd"));
        let dbg = format!("{w:?}");
        assert!(!dbg.contains("secret stuff"), "{dbg}");
    }

    #[test]
    fn converter_aliases_and_header_converter() {
        let w = worker(&[
            FILE,
            ("key.converter", "JsonConverter"),
            ("value.converter", "Json"),
            (
                "header.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("header.converter.schemas.enable", "false"),
            ("value.converter.schemas.cache.size", "100"),
            (
                "value.converter.schema.registry.url",
                "http://registry:8081",
            ),
            ("value.converter.decimal.format", "base64"),
        ])
        .unwrap();
        assert_eq!(
            w.header_converter,
            HeaderConverter::Json {
                schemas_enable: false
            }
        );
    }

    #[test]
    fn avro_converter_needs_its_registry() {
        let errs = errors(&[
            FILE,
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
        ]);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("value.converter.schema.registry.url"),
            "{errs:?}"
        );
        let errs = errors(&[
            FILE,
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
        ]);
        assert!(errs[0].contains("JsonConverter"), "{errs:?}");
    }

    #[test]
    fn json_converter_settings() {
        let w = worker(&[
            FILE,
            ("value.converter.decimal.format", "numeric"),
            ("value.converter.replace.null.with.default", "false"),
        ])
        .unwrap();
        assert_eq!(w.value_converter.decimal_format, DecimalFormat::Numeric);
        assert!(!w.value_converter.replace_null_with_default);
        assert_eq!(w.key_converter.decimal_format, DecimalFormat::Base64);
        assert!(w.key_converter.replace_null_with_default);
        let errs = errors(&[FILE, ("value.converter.decimal.format", "hex")]);
        assert!(
            errs[0].contains("`value.converter.decimal.format`") && errs[0].contains("NUMERIC"),
            "{errs:?}"
        );
        let errs = errors(&[FILE, ("value.converter.schema.content", "{}")]);
        assert!(
            errs[0].contains("`value.converter.schema.content` is a Kafka Connect property pgseam does not support yet"),
            "{errs:?}"
        );
        let errs = errors(&[FILE, ("value.converter.schemas.enabled", "false")]);
        assert!(
            errs[0].contains("(did you mean `value.converter.schemas.enable`?)"),
            "{errs:?}"
        );
    }

    #[test]
    fn missing_offsets_file_and_bad_values_reported_together() {
        let errs = errors(&[
            ("offset.flush.interval.ms", "soon"),
            ("listeners", "tcp://:1"),
            ("bootstrap.server", "x:9092"),
            ("database.hostname", "db"),
        ]);
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e
                    .contains("missing required worker property `offset.storage.file.filename`"))
        );
        assert!(errs
            .iter()
            .any(|e| e.contains("invalid value `soon` for `offset.flush.interval.ms`")));
        assert!(errs.iter().any(|e| e.contains("`listeners`")));
        assert!(errs.iter().any(|e| e.contains(
            "unknown worker property `bootstrap.server` (did you mean `bootstrap.servers`?)"
        )));
        assert!(errs
            .iter()
            .any(|e| e
                .contains("`database.hostname` is a connector property, not a worker property")));
    }
}
