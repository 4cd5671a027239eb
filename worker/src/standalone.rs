//! `pgseam standalone`: one worker process, the connectors named on the command line, offsets
//! in `offset.storage.file.filename` — the shape of Kafka Connect's `connect-standalone.sh`.
//!
//! The connectors are run by the [`Manager`] and served over Kafka Connect's REST API
//! ([`crate::rest`]) on the worker's `listeners`; connectors created over REST are kept next to
//! the offsets and come back after a restart.
//!
//! SIGINT and SIGTERM stop it cleanly: each connector stops reading, waits for Kafka to
//! acknowledge what it sent, stores the offset, and reports the final flush LSN to its slot.
//! If a connector named on the command line fails, the others are stopped the same way and the
//! process exits with the error; a connector created over REST that fails is reported FAILED
//! (task 0, with the error as `trace`) and the worker goes on, as Kafka Connect does.
//! A connector that finishes its work (`snapshot.mode=initial_only`, once its snapshot is
//! stored) ends its run; when every connector named on the command line has finished, the
//! worker stops with success (Kafka Connect would keep an idle task running instead).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use pgseam_connector_pg::snapshot::ChunkStrategy;
use pgseam_connector_pg::{
    ConnectParams, OffsetMismatchStrategy, PublicationAutocreate, SnapshotMode, SourceConfig,
    SslMode, TlsSettings,
};
use pgseam_converters::avro::registry::BasicAuth;
use pgseam_converters::{
    DecimalHandlingMode, HeaderFormat, JsonConverterConfig, TypeModes, UnavailableArrayMode,
};
use pgseam_sink_kafka::KafkaSinkConfig;
use tokio::sync::watch;

use crate::config::{
    self, ConnectorConfig, ConverterKind, ConverterSettings, HeaderConverter, WorkerConfig,
};
use crate::manager::{Manager, Origin};
use crate::offsets::OffsetStore;
use crate::pipeline::{AvroSettings, ExactlyOnceSettings, PipelineSettings, TransactionBounds};
use crate::rest;

/// `pgseam offsets show`: one line per stored offset, `connector partition offset` (JSON), in
/// the form `GET /connectors/{name}/offsets` reports.
///
/// With `offset.storage.topic` set this reads the topic to its end, which appends one marker
/// record per partition (see [`pgseam_sink_kafka::offsets_topic`]).
pub async fn show_offsets(worker: &Path, connector: Option<&str>) -> anyhow::Result<String> {
    let worker = config::load_worker_file(worker).map_err(|errors| anyhow!("{errors}"))?;
    let store = OffsetStore::open(&worker).await?;
    let mut out = String::new();
    for (key, value) in store.entries().await {
        let (key, value) = (key.as_str(), value.as_str());
        let parsed: serde_json::Value =
            serde_json::from_str(key).map_err(|e| anyhow!("offset key {key} is not JSON: {e}"))?;
        let (name, partition) = match parsed.as_array().map(Vec::as_slice) {
            Some([serde_json::Value::String(name), partition]) => (name.clone(), partition.clone()),
            _ => bail!("offset key {key} is not [connector, partition]"),
        };
        if connector.is_some_and(|c| c != name) {
            continue;
        }
        let offset: serde_json::Value =
            serde_json::from_str(value).map_err(|e| anyhow!("offset of {key} is not JSON: {e}"))?;
        out.push_str(&format!(
            "{}\n",
            serde_json::json!({"connector": name, "partition": partition, "offset": offset})
        ));
    }
    if out.is_empty() {
        match connector {
            Some(name) => bail!(
                "no stored offset for connector {name} in {}",
                store.location()
            ),
            None => out = format!("no stored offsets in {}\n", store.location()),
        }
    }
    Ok(out)
}

/// Runs the worker until a signal, or until a connector named on the command line fails.
///
/// Order: the files are validated, the REST API is bound (as Connect binds its REST server
/// before starting connectors, so a busy port fails fast), then the stored and named
/// connectors are started by the [`Manager`]. A connector created over REST that fails is
/// reported as FAILED and the worker goes on, as in Kafka Connect; a connector named on the
/// command line that fails stops the worker with its error (the process supervisor restarts
/// it), which is pgseam's file-deployment contract.
pub async fn run(worker_path: &Path, connector_paths: &[PathBuf]) -> anyhow::Result<()> {
    let (worker, connectors) = config::load_standalone(worker_path, connector_paths)
        .map_err(|errors| anyhow!("{errors}"))?;
    for connector in &connectors {
        pipeline_settings(&worker, connector)?;
    }
    let mut files = Vec::new();
    for path in connector_paths {
        let pairs = config::read_connector_pairs(path).map_err(|errors| anyhow!("{errors}"))?;
        files.push((path.clone(), pairs.into_iter().collect()));
    }
    let offsets = Arc::new(OffsetStore::open(&worker).await?);
    tracing::info!(store = offsets.location(), "offset store open");

    let (manager, mut ended) = Manager::new(worker.clone(), offsets);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    rest::serve(manager.clone(), &worker.listeners, shutdown_rx).await?;
    if let Err(err) = manager.start_all(files).await {
        manager.stop_all().await;
        return Err(err);
    }

    let signal = shutdown_signal();
    tokio::pin!(signal);
    // Connectors named on the command line that finished on their own (`initial_only`).
    let mut finished = std::collections::BTreeSet::new();
    let outcome = loop {
        tokio::select! {
            _ = &mut signal => {
                tracing::info!("signal received: stopping connectors");
                break Ok(());
            }
            Some(run) = ended.recv() => {
                let Origin::File(path) = &run.origin else { continue };
                match &run.error {
                    Some(error) => {
                        tracing::error!(connector = %run.connector, file = %path.display(), "a connector named on the command line failed: stopping the worker");
                        break Err(anyhow!("connector {} failed: {error}", run.connector));
                    }
                    None => {
                        finished.insert(run.connector.clone());
                        if finished.len() == connectors.len() {
                            tracing::info!("every connector named on the command line has finished its work (snapshot.mode=initial_only): stopping the worker");
                            break Ok(());
                        }
                    }
                }
            }
        }
    };
    manager.stop_all().await;
    let _ = shutdown_tx.send(true);
    outcome
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Turns validated configuration into what the pipeline runs, rejecting settings that are
/// accepted by the configuration layer but not implemented by the pipeline yet.
pub(crate) fn pipeline_settings(
    worker: &WorkerConfig,
    connector: &ConnectorConfig,
) -> anyhow::Result<PipelineSettings> {
    let name = &connector.name;
    let skipped = &connector.skipped_operations;
    let skipped_operations = [
        (skipped.create, pgseam_model::Operation::Create),
        (skipped.update, pgseam_model::Operation::Update),
        (skipped.delete, pgseam_model::Operation::Delete),
        (skipped.truncate, pgseam_model::Operation::Truncate),
    ]
    .into_iter()
    .filter_map(|(skip, op)| skip.then_some(op))
    .collect();
    let message_filter = connector.message_prefix_filter.clone().map(|f| {
        Arc::new(move |prefix: &str| f.allows(prefix)) as pgseam_connector_pg::MessageFilter
    });
    let header_format = match connector.effective_header_converter(worker) {
        HeaderConverter::Simple => HeaderFormat::Simple,
        HeaderConverter::Json { schemas_enable } => HeaderFormat::Json { schemas_enable },
    };
    let key_converter = connector.effective_key_converter(worker);
    let value_converter = connector.effective_value_converter(worker);
    let avro = avro_settings(name, &key_converter, &value_converter)?;
    if avro.is_none() && key_converter.decimal_format != value_converter.decimal_format {
        bail!("connector {name}: key.converter.decimal.format and value.converter.decimal.format differ; pgseam applies one decimal.format to keys and values, set both to the same value");
    }
    if avro.is_some() && connector.notifications.sink_topic.is_some() {
        bail!("connector {name}: notification.enabled.channels=sink writes Kafka Connect JSON only; with AvroConverter use the `log` channel");
    }
    let filter = connector.table_filter.clone();
    let signal_table = connector.signal_data_collection.clone();
    let mut overrides = worker.producer_overrides.as_map().clone();
    overrides.extend(connector.producer_overrides.as_map().clone());
    let exactly_once = exactly_once_settings(worker, connector)?;
    Ok(PipelineSettings {
        connector_name: connector.name.clone(),
        topic_prefix: connector.topic_prefix.clone(),
        source: SourceConfig {
            connect: connect_params(connector, format!("pgseam-{}", connector.name)),
            slot_name: connector.slot_name.clone(),
            publication_name: connector.publication_name.clone(),
            publish_via_partition_root: connector.publish_via_partition_root,
            publication_autocreate: match connector.publication_autocreate_mode {
                config::PublicationAutocreateMode::AllTables => PublicationAutocreate::AllTables,
                config::PublicationAutocreateMode::Filtered => PublicationAutocreate::Filtered,
                config::PublicationAutocreateMode::Disabled => PublicationAutocreate::Disabled,
                config::PublicationAutocreateMode::NoTables => PublicationAutocreate::NoTables,
            },
            // As Debezium's `RelationalTableFilters`, the signaling table is always captured
            // (its events have a topic; a filtered publication includes it).
            table_filter: Arc::new(move |schema: &str, table: &str| {
                filter.includes(schema, table)
                    || signal_table
                        .as_ref()
                        .is_some_and(|(s, t)| s == schema && t == table)
            }),
            snapshot_mode: match connector.snapshot_mode {
                config::SnapshotMode::Initial => SnapshotMode::Initial,
                config::SnapshotMode::InitialOnly => SnapshotMode::InitialOnly,
                config::SnapshotMode::NoData => SnapshotMode::NoData,
                config::SnapshotMode::Always => SnapshotMode::Always,
                config::SnapshotMode::WhenNeeded => SnapshotMode::WhenNeeded,
            },
            offset_mismatch: match connector.offset_mismatch_strategy {
                config::OffsetMismatchStrategy::NoValidation => {
                    OffsetMismatchStrategy::NoValidation
                }
                config::OffsetMismatchStrategy::TrustOffset => OffsetMismatchStrategy::TrustOffset,
                config::OffsetMismatchStrategy::TrustSlot => OffsetMismatchStrategy::TrustSlot,
                config::OffsetMismatchStrategy::TrustGreaterLsn => {
                    OffsetMismatchStrategy::TrustGreaterLsn
                }
            },
            status_update_interval: connector.status_update_interval,
            slot_max_retries: connector.slot_max_retries,
            slot_retry_delay: connector.slot_retry_delay,
            slot_creation_timeout: connector.database_query_timeout,
            drop_slot_on_stop: connector.slot_drop_on_stop,
            heartbeat: connector.heartbeat_interval.map(|interval| {
                pgseam_connector_pg::HeartbeatSettings {
                    interval,
                    action_query: connector.heartbeat_action_query.clone(),
                }
            }),
            snapshot: pgseam_connector_pg::SnapshotSettings {
                max_threads: connector.snapshot_max_threads.max(1) as usize,
                chunk_rows: connector.snapshot_chunk_rows,
                chunk_strategy: chunk_strategy(connector.snapshot_chunk_strategy),
                chunk_strategy_overrides: connector
                    .snapshot_chunk_strategy_overrides
                    .iter()
                    .map(|(table, strategy)| (table.clone(), chunk_strategy(*strategy)))
                    .collect(),
                window_reason: None,
                select_overrides: connector.snapshot_select_overrides.clone(),
                include: connector.snapshot_include.clone().map(|patterns| {
                    Arc::new(move |schema: &str, table: &str| {
                        let name = format!("{schema}.{table}");
                        patterns.iter().any(|p| p.is_match(&name))
                    }) as pgseam_connector_pg::snapshot::SnapshotTableFilter
                }),
                throttle: pgseam_connector_pg::snapshot::ThrottleSettings {
                    rows_per_second: connector.snapshot_throttle_rows_per_second,
                    bytes_per_second: connector.snapshot_throttle_bytes_per_second,
                    chunk_pause: connector.snapshot_throttle_chunk_pause,
                },
                progress_interval: connector.snapshot_progress_interval,
                // The manager puts the connector's metrics' stats here.
                stats: Default::default(),
                signal_table: connector.signal_data_collection.clone(),
                incremental_chunk_rows: connector.incremental_snapshot_chunk_size,
                watermarking: connector.incremental_snapshot_watermarking,
                // The manager keeps a handle for `POST …/signals`.
                signals: Default::default(),
                // The pipeline sets it from its converter.
                reader_encoding: None,
            },
            events: pgseam_connector_pg::EventSettings {
                skipped_operations,
                message_filter,
                // `message.key.columns`: the stream's key-change detection uses the
                // converter's key columns.
                key_columns: (!connector.columns.key_columns.is_empty()).then(|| {
                    let columns = connector.columns.clone();
                    Arc::new(move |table: &pgseam_model::TableSchema| columns.key_columns(table))
                        as pgseam_connector_pg::KeyColumns
                }),
                // The manager puts the connector's metrics' counter here.
                filtered: Default::default(),
            },
        },
        converter: JsonConverterConfig {
            key_schemas_enable: key_converter.schemas_enable,
            value_schemas_enable: value_converter.schemas_enable,
            modes: TypeModes {
                decimal: match connector.decimal_handling_mode {
                    config::DecimalHandlingMode::Precise => DecimalHandlingMode::Precise,
                    config::DecimalHandlingMode::Double => DecimalHandlingMode::Double,
                    config::DecimalHandlingMode::String => DecimalHandlingMode::String,
                },
                time_precision: connector.time_precision_mode,
                binary: connector.binary_handling_mode,
                hstore: connector.hstore_handling_mode,
                interval: connector.interval_handling_mode,
                money_fraction_digits: connector.money_fraction_digits,
                include_unknown_datatypes: connector.include_unknown_datatypes,
                multidimensional_arrays: connector.multidimensional_array_mode,
                unavailable_arrays: connector.unavailable_array_mode,
            },
            decimal_format: if value_converter.kind == ConverterKind::Json {
                value_converter.decimal_format
            } else {
                key_converter.decimal_format
            },
            // Keys are primary-key columns, never null: only the value's setting matters.
            replace_null_with_default: value_converter.replace_null_with_default,
            tombstones_on_delete: connector.tombstones_on_delete,
            transforms: connector.transforms.clone(),
            columns: Arc::new(connector.columns.clone()),
            naming: Arc::new(connector.naming.clone()),
            header_format,
            // pgseam's own header, off with the other pgseam headers.
            unavailable_header: connector.unavailable_array_mode == UnavailableArrayMode::Null
                && connector.position_headers,
            ..JsonConverterConfig::new(connector.topic_prefix.clone())
        },
        avro,
        sink: KafkaSinkConfig {
            bootstrap_servers: worker.bootstrap_servers.clone(),
            overrides,
            // As in Connect, the worker's `topic.creation.enable=false` turns creation off.
            topic_creation: if worker.topic_creation_enable {
                connector.topic_creation_groups.clone()
            } else {
                None
            },
            skip_oversized: connector.errors_tolerance == config::ErrorTolerance::All,
            memory_budget: Some(worker.memory_budget_bytes),
            transactional_id: exactly_once.as_ref().map(|e| e.transactional_id.clone()),
        },
        exactly_once,
        null_sink: worker.sink == config::SinkKind::Null,
        offset_file: worker.offset_storage_file_filename.clone(),
        offset_flush_interval: worker.offset_flush_interval,
        // As Connect: a stopping task waits `offset.flush.timeout.ms` for its outstanding
        // records (`WorkerSourceTask::finalOffsetCommit`), and is cancelled, its producer
        // closed without waiting, after `task.shutdown.graceful.timeout.ms`.
        shutdown_timeout: worker
            .task_shutdown_graceful_timeout
            .min(worker.offset_flush_timeout),
        max_queue_size: connector.max_queue_size as usize,
        reconnect_wait: connector.retriable_restart_wait,
        heartbeat_topic: connector
            .naming
            .join(&[&connector.heartbeat_topics_prefix, &connector.topic_prefix]),
        transaction_metadata: connector
            .provide_transaction_metadata
            .then(|| connector.topic_transaction.clone()),
        position_headers: connector.position_headers,
        notifications: connector.notifications.clone(),
        signal_kafka: connector.signal_kafka.clone(),
        signal_file: connector.signal_file.clone(),
        signal_poll_interval: connector.signal_poll_interval,
    })
}

/// The connector's `snapshot.chunk.strategy` value as the snapshot engine's.
fn chunk_strategy(strategy: config::SnapshotChunkStrategy) -> ChunkStrategy {
    match strategy {
        config::SnapshotChunkStrategy::Auto => ChunkStrategy::Auto,
        config::SnapshotChunkStrategy::Ctid => ChunkStrategy::Ctid,
        config::SnapshotChunkStrategy::Key => ChunkStrategy::Key,
        config::SnapshotChunkStrategy::Whole => ChunkStrategy::Whole,
    }
}

/// Exactly-once delivery's settings (KIP-618 keys, see `pipeline`'s "Exactly-once"), or
/// `None` for at-least-once; errors for combinations Kafka Connect refuses.
fn exactly_once_settings(
    worker: &WorkerConfig,
    connector: &ConnectorConfig,
) -> anyhow::Result<Option<ExactlyOnceSettings>> {
    let name = &connector.name;
    let enabled = worker.exactly_once_source_support == config::ExactlyOnceSourceSupport::Enabled;
    if !enabled {
        if connector.exactly_once_support == config::ExactlyOnceSupport::Required {
            // Connect's preflight check (`DistributedHerder.validateSourceConnectorExactlyOnceSupport`).
            bail!("connector {name}: `exactly.once.support=required`, but this worker does not have exactly-once source support enabled; set `{}=enabled` (with `group.id` and `offset.storage.topic`) in the worker file, or use `exactly.once.support=requested`", config::EXACTLY_ONCE_SOURCE_SUPPORT);
        }
        if connector.transaction_boundary != config::TransactionBoundary::Poll
            || connector.transaction_boundary_interval.is_some()
        {
            tracing::warn!(connector = %name, "transaction.boundary settings have no effect: exactly-once delivery is off (`{}` is not `enabled` in the worker file); records are sent idempotently, at least once", config::EXACTLY_ONCE_SOURCE_SUPPORT);
        }
        return Ok(None);
    }
    if worker.sink == config::SinkKind::Null {
        bail!("connector {name}: `pgseam.sink=null` drops records, so there is nothing to deliver exactly once; remove `{}=enabled` or the null sink", config::EXACTLY_ONCE_SOURCE_SUPPORT);
    }
    // Checked by the worker's validation; kept here for the error's sake.
    let Some(group_id) = &worker.group_id else {
        bail!("connector {name}: exactly-once delivery needs the worker's `group.id`");
    };
    let boundary = match connector.transaction_boundary {
        config::TransactionBoundary::Poll => {
            if connector.transaction_boundary_interval.is_some() {
                tracing::warn!(connector = %name, "transaction.boundary.interval.ms has no effect with transaction.boundary=poll");
            }
            TransactionBounds::Poll {
                max_records: u64::from(connector.max_batch_size),
            }
        }
        config::TransactionBoundary::Interval => TransactionBounds::Interval(
            connector
                .transaction_boundary_interval
                .unwrap_or(worker.offset_flush_interval),
        ),
    };
    let transactional_id = format!("{group_id}-{name}-0");
    tracing::debug!(connector = %name, transactional_id = %transactional_id, ?boundary, "exactly-once delivery: records and offsets in Kafka transactions");
    Ok(Some(ExactlyOnceSettings {
        transactional_id,
        boundary,
    }))
}

/// How to reach the connector's database (address, credentials, TLS), for any pgseam session.
pub(crate) fn connect_params(
    connector: &ConnectorConfig,
    application_name: String,
) -> ConnectParams {
    ConnectParams {
        host: connector.database_hostname.clone(),
        port: connector.database_port,
        user: connector.database_user.clone(),
        password: connector
            .database_password
            .as_ref()
            .map(|s| s.expose().to_owned()),
        dbname: connector.database_dbname.clone(),
        application_name,
        tls: TlsSettings {
            mode: match connector.database_sslmode {
                config::DatabaseSslMode::Disable => SslMode::Disable,
                config::DatabaseSslMode::Allow => SslMode::Allow,
                config::DatabaseSslMode::Prefer => SslMode::Prefer,
                config::DatabaseSslMode::Require => SslMode::Require,
                config::DatabaseSslMode::VerifyCa => SslMode::VerifyCa,
                config::DatabaseSslMode::VerifyFull => SslMode::VerifyFull,
            },
            root_cert: connector.database_sslrootcert.clone(),
            cert: connector.database_sslcert.clone(),
            key: connector.database_sslkey.clone(),
            key_password: connector
                .database_sslpassword
                .as_ref()
                .map(|s| s.expose().to_owned()),
        },
    }
}

/// The AvroConverter settings of a pipeline whose key or value converter is Avro. One
/// registry serves both: when key and value name different registries, that is an error.
fn avro_settings(
    name: &str,
    key: &ConverterSettings,
    value: &ConverterSettings,
) -> anyhow::Result<Option<AvroSettings>> {
    let registries: Vec<&config::RegistrySettings> = [key, value]
        .iter()
        .filter_map(|c| c.registry.as_ref())
        .collect();
    let Some(first) = registries.first() else {
        return Ok(None);
    };
    if registries.iter().any(|r| r != first) {
        bail!("connector {name}: key.converter and value.converter use different schema registries; pgseam uses one registry per connector");
    }
    Ok(Some(AvroSettings {
        key_avro: key.kind == ConverterKind::Avro,
        value_avro: value.kind == ConverterKind::Avro,
        registry_url: first.url.clone(),
        basic_auth: first.basic_auth.as_ref().map(|(user, password)| BasicAuth {
            user: user.clone(),
            password: password.expose().to_owned(),
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(extra: &[(&str, &str)]) -> ConnectorConfig {
        let mut pairs = vec![
            ("name", "inventory"),
            (
                "connector.class",
                "io.debezium.connector.postgresql.PostgresConnector",
            ),
            ("database.hostname", "db.example"),
            ("database.user", "cdc"),
            ("database.password", "hunter2"),
            ("database.dbname", "shop"),
            ("topic.prefix", "dbz"),
            ("plugin.name", "pgoutput"),
            ("max.batch.size", "500"),
        ];
        pairs.extend_from_slice(extra);
        ConnectorConfig::from_map(pairs, "inventory.properties").unwrap()
    }

    fn worker(exactly_once: &str) -> WorkerConfig {
        WorkerConfig::from_map(
            [
                ("offset.storage.file.filename", "/tmp/offsets.dat"),
                ("offset.storage.topic", "connect-offsets"),
                ("group.id", "connect-cluster"),
                ("offset.flush.interval.ms", "7000"),
                ("exactly.once.source.support", exactly_once),
            ],
            "worker.properties",
        )
        .unwrap()
    }

    #[test]
    fn exactly_once_follows_the_worker_key_and_connects_naming() {
        // Off: at least once, whatever the connector's boundary keys say.
        let off = pipeline_settings(&worker("disabled"), &connector(&[])).unwrap();
        assert!(off.exactly_once.is_none() && off.sink.transactional_id.is_none());
        // On: Connect's task-0 transactional id; `poll` is max.batch.size records.
        let on = pipeline_settings(&worker("enabled"), &connector(&[])).unwrap();
        let eos = on.exactly_once.unwrap();
        assert_eq!(eos.transactional_id, "connect-cluster-inventory-0");
        assert_eq!(
            on.sink.transactional_id.as_deref(),
            Some("connect-cluster-inventory-0")
        );
        assert_eq!(eos.boundary, TransactionBounds::Poll { max_records: 500 });
        // `interval` defaults to offset.flush.interval.ms, as in Connect.
        let interval = |extra: &[(&str, &str)]| {
            pipeline_settings(&worker("enabled"), &connector(extra))
                .unwrap()
                .exactly_once
                .unwrap()
                .boundary
        };
        assert_eq!(
            interval(&[("transaction.boundary", "interval")]),
            TransactionBounds::Interval(std::time::Duration::from_secs(7))
        );
        assert_eq!(
            interval(&[
                ("transaction.boundary", "interval"),
                ("transaction.boundary.interval.ms", "250")
            ]),
            TransactionBounds::Interval(std::time::Duration::from_millis(250))
        );
        // `required` needs the worker's support, as Connect's preflight check says.
        let required = connector(&[("exactly.once.support", "required")]);
        assert!(pipeline_settings(&worker("enabled"), &required).is_ok());
        for disabled in ["disabled", "preparing"] {
            let err = pipeline_settings(&worker(disabled), &required)
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("`exactly.once.support=required`, but this worker does not have exactly-once source support enabled; set `exactly.once.source.support=enabled`"),
                "{err}"
            );
        }
    }
}
