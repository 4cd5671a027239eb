//! `pgseam standalone`: one worker process, the connectors named on the command line, offsets
//! in `offset.storage.file.filename` — the shape of Kafka Connect's `connect-standalone.sh`.
//!
//! SIGINT and SIGTERM stop it cleanly: each connector stops reading, waits for Kafka to
//! acknowledge what it sent, stores the offset, and reports the final flush LSN to its slot.
//! If one connector fails, the others are stopped the same way and the process exits with the
//! error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};
use pgseam_connector_pg::{ConnectParams, PublicationAutocreate, SnapshotMode, SourceConfig};
use pgseam_converters::{DecimalHandlingMode, JsonConverterConfig};
use pgseam_sink_kafka::KafkaSinkConfig;
use tokio::sync::watch;

use crate::config::{self, ConnectorConfig, HeaderConverter, WorkerConfig};
use crate::offsets::FileOffsetStore;
use crate::pipeline::{run_connector, PipelineSettings};

/// Loads and checks the files; returns a one-line summary per connector.
pub fn validate(worker: &Path, connectors: &[PathBuf]) -> anyhow::Result<String> {
    let (worker, connectors) =
        config::load_standalone(worker, connectors).map_err(|errors| anyhow!("{errors}"))?;
    let mut summary = Vec::new();
    for connector in &connectors {
        pipeline_settings(&worker, connector)?;
        summary.push(format!(
            "connector {:?}: {}@{}:{}/{} slot {} publication {} → topics {}.<schema>.<table>: OK",
            connector.name,
            connector.database_user,
            connector.database_hostname,
            connector.database_port,
            connector.database_dbname,
            connector.slot_name,
            connector.publication_name,
            connector.topic_prefix
        ));
    }
    Ok(summary.join("\n"))
}

/// Runs the worker until a signal or a failure.
pub async fn run(worker_path: &Path, connector_paths: &[PathBuf]) -> anyhow::Result<()> {
    let (worker, connectors) = config::load_standalone(worker_path, connector_paths)
        .map_err(|errors| anyhow!("{errors}"))?;
    let settings = connectors
        .iter()
        .map(|connector| pipeline_settings(&worker, connector))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let offsets = Arc::new(Mutex::new(FileOffsetStore::open(
        &worker.offset_storage_file_filename,
    )?));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for settings in settings {
        let name = settings.connector_name.clone();
        tracing::info!(connector = %name, "starting connector");
        let offsets = Arc::clone(&offsets);
        let shutdown = shutdown_rx.clone();
        tasks.spawn(async move { (name, run_connector(settings, offsets, shutdown).await) });
    }

    let mut first_error: Option<anyhow::Error> = None;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut signalled = false;
    while !tasks.is_empty() {
        tokio::select! {
            _ = &mut signal, if !signalled => {
                signalled = true;
                tracing::info!("signal received: stopping connectors");
                let _ = shutdown_tx.send(true);
            }
            Some(joined) = tasks.join_next() => {
                let (name, result) = joined.map_err(|e| anyhow!("connector task panicked: {e}"))?;
                match result {
                    Ok(()) => tracing::info!(connector = %name, "connector stopped"),
                    Err(err) => {
                        tracing::error!(connector = %name, error = %format!("{err:#}"), "connector failed");
                        if first_error.is_none() {
                            first_error = Some(err.context(format!("connector {name} failed")));
                        }
                        let _ = shutdown_tx.send(true);
                    }
                }
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
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
fn pipeline_settings(
    worker: &WorkerConfig,
    connector: &ConnectorConfig,
) -> anyhow::Result<PipelineSettings> {
    let name = &connector.name;
    if connector.heartbeat_interval.is_some() {
        bail!("connector {name}: heartbeat.interval.ms is not supported yet; remove it or set it to 0");
    }
    if connector.slot_drop_on_stop {
        bail!("connector {name}: slot.drop.on.stop=true is not supported yet; remove it or set it to false");
    }
    let skipped = &connector.skipped_operations;
    if !skipped.truncate {
        bail!("connector {name}: emitting TRUNCATE events is not supported yet; keep `t` in skipped.operations");
    }
    if skipped.create || skipped.update || skipped.delete {
        bail!("connector {name}: skipping c/u/d operations is not supported yet; use skipped.operations=t");
    }
    if !matches!(
        connector.effective_header_converter(worker),
        HeaderConverter::Simple
    ) {
        bail!("connector {name}: only org.apache.kafka.connect.storage.SimpleHeaderConverter is supported as header.converter yet");
    }
    if connector.snapshot_max_threads > 1 {
        tracing::warn!(connector = %name, threads = connector.snapshot_max_threads, "snapshot.max.threads > 1: this version reads the snapshot on one connection");
    }
    let key_converter = connector.effective_key_converter(worker);
    let value_converter = connector.effective_value_converter(worker);
    let filter = connector.table_filter.clone();
    let mut overrides = worker.producer_overrides.as_map().clone();
    overrides.extend(connector.producer_overrides.as_map().clone());
    Ok(PipelineSettings {
        connector_name: connector.name.clone(),
        topic_prefix: connector.topic_prefix.clone(),
        source: SourceConfig {
            connect: ConnectParams {
                host: connector.database_hostname.clone(),
                port: connector.database_port,
                user: connector.database_user.clone(),
                password: connector
                    .database_password
                    .as_ref()
                    .map(|s| s.expose().to_owned()),
                dbname: connector.database_dbname.clone(),
                application_name: format!("pgseam-{}", connector.name),
            },
            slot_name: connector.slot_name.clone(),
            publication_name: connector.publication_name.clone(),
            publication_autocreate: match connector.publication_autocreate_mode {
                config::PublicationAutocreateMode::AllTables => PublicationAutocreate::AllTables,
                config::PublicationAutocreateMode::Filtered => PublicationAutocreate::Filtered,
                config::PublicationAutocreateMode::Disabled => PublicationAutocreate::Disabled,
                config::PublicationAutocreateMode::NoTables => PublicationAutocreate::NoTables,
            },
            table_filter: Arc::new(move |schema: &str, table: &str| filter.includes(schema, table)),
            snapshot_mode: match connector.snapshot_mode {
                config::SnapshotMode::Initial => SnapshotMode::Initial,
                config::SnapshotMode::NoData => SnapshotMode::NoData,
            },
            status_update_interval: connector.status_update_interval,
            snapshot: pgseam_connector_pg::SnapshotSettings {
                max_threads: connector.snapshot_max_threads.max(1) as usize,
            },
        },
        converter: JsonConverterConfig {
            key_schemas_enable: key_converter.schemas_enable,
            value_schemas_enable: value_converter.schemas_enable,
            decimal_handling_mode: match connector.decimal_handling_mode {
                config::DecimalHandlingMode::Precise => DecimalHandlingMode::Precise,
                config::DecimalHandlingMode::Double => DecimalHandlingMode::Double,
                config::DecimalHandlingMode::String => DecimalHandlingMode::String,
            },
            tombstones_on_delete: connector.tombstones_on_delete,
            ..JsonConverterConfig::new(connector.topic_prefix.clone())
        },
        sink: KafkaSinkConfig {
            bootstrap_servers: worker.bootstrap_servers.clone(),
            overrides,
        },
        null_sink: worker.sink == config::SinkKind::Null,
        offset_file: worker.offset_storage_file_filename.clone(),
        offset_flush_interval: worker.offset_flush_interval,
        max_queue_size: connector.max_queue_size as usize,
    })
}
