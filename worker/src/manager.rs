//! The connector manager: the standalone worker's herder. It owns every connector's
//! configuration, target state and running pipeline, and answers the REST API.
//!
//! # States, as Kafka Connect's
//!
//! ```text
//!            create / resume                      pause
//!   ┌──────────────────────────► STARTED ◄──────────────────────► PAUSED
//!   │                              │  ▲ restart                      │
//!   │                         stop │  │ resume                   stop│
//!   │                              ▼  │                              ▼
//!   └───────────────────────────── STOPPED ◄─────────────────────────┘
//! ```
//!
//! The *target state* is what the user asked for; the *status* is what runs. A Debezium
//! PostgreSQL connector has one task, and in pgseam the connector and its task 0 are one
//! pipeline ([`crate::pipeline::run_connector_with`]) in its own tokio task:
//!
//! - STARTED: the pipeline runs; connector and task 0 are RUNNING.
//! - PAUSED: the pipeline keeps its replication connection and slot but takes no new events
//!   (the pause flag); connector and task are PAUSED. Resume continues where it stopped.
//! - STOPPED (Connect's KIP-875 state): the pipeline is shut down cleanly (deliveries drained,
//!   offset stored, slot confirmed); the connector is STOPPED and has no tasks. Only then may
//!   its offsets be altered or reset.
//! - A pipeline that ends with an error leaves the connector RUNNING and task 0 FAILED with the
//!   error chain as `trace` — where Connect reports a Debezium task failure. `restart` (with
//!   `includeTasks=true`) starts it again.
//!
//! # Persistence (an extension)
//!
//! Kafka Connect standalone keeps connectors created over REST in memory only. pgseam writes
//! every connector's configuration (as written: provider references unresolved) and target
//! state to `<offset.storage.file.filename>.connectors.json` (mode 0600, atomic replace), and
//! restores them at start. A connector file named on the command line wins over a stored
//! configuration of the same name (logged); its stored target state (paused, stopped) is kept.
//!
//! # Locking
//!
//! One async mutex guards the connector table; every operation holds it from start to end, so
//! operations on the worker are serialised as in Connect's standalone herder. Stopping a
//! pipeline waits for it to drain (bounded by the pipeline's own timeouts).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{ConfigErrors, ConnectorConfig, WorkerConfig};
use crate::metrics::{self, ConnectorMetrics};
use crate::offsets::{offset_key, OffsetStore};
use crate::pipeline::{run_connector_with, PipelineHooks};
use crate::standalone::pipeline_settings;

/// A replication slot: (host, port, database, slot name).
type SlotId = (String, u16, String, String);

/// A connector as kept in the store: name, configuration as written, target state.
type StoredConnector = (String, BTreeMap<String, String>, TargetState);

/// Marks files written by the configuration store.
const STORE_FORMAT: &str = "pgseam-connectors-v1";

/// Where a connector's configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file named on the command line.
    File(PathBuf),
    /// `POST /connectors` or `PUT /connectors/{name}/config` (now or before a restart).
    Rest,
}

/// What the user asked for (Connect's `TargetState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    fn as_str(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "STARTED" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// Why an operation was refused; the REST layer maps each to Connect's status code.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// 404.
    #[error("Connector {0} not found")]
    NotFound(String),
    /// 409.
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    /// 400 with Connect's "Connector configuration is invalid …" message.
    #[error("{}", invalid_config_message(.0))]
    InvalidConfig(ConfigErrors),
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 500.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// Kafka Connect's message for a configuration that failed validation
/// (`AbstractHerder.maybeAddConfigErrors`).
fn invalid_config_message(errors: &ConfigErrors) -> String {
    let mut message = format!(
        "Connector configuration is invalid and contains the following {} error(s):",
        errors.len()
    );
    for error in errors.errors() {
        message.push('\n');
        message.push_str(&error.to_string());
    }
    message.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
    message
}

/// A connector's or task's state as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Stopped,
    Failed { trace: String },
    Restarting,
    Unassigned,
}

impl State {
    fn json(&self, worker_id: &str) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        let name = match self {
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed { .. } => "FAILED",
            State::Restarting => "RESTARTING",
            State::Unassigned => "UNASSIGNED",
        };
        out.insert("state".into(), json!(name));
        if let State::Failed { trace } = self {
            out.insert("trace".into(), json!(trace));
        }
        out.insert("worker_id".into(), json!(worker_id));
        out
    }
}

/// What a pipeline task reports when it ends.
#[derive(Debug, Clone, Default)]
enum RunOutcome {
    #[default]
    Running,
    Failed(String),
}

struct Run {
    /// Signals for the running source (`POST …/signals`).
    signals: Arc<pgseam_connector_pg::snapshot::SignalInbox>,
    shutdown: watch::Sender<bool>,
    paused: watch::Sender<bool>,
    handle: JoinHandle<()>,
    outcome: Arc<Mutex<RunOutcome>>,
}

struct Connector {
    /// As written: provider references unresolved.
    config: BTreeMap<String, String>,
    origin: Origin,
    target: TargetState,
    /// `topic.prefix`, resolved; `None` if the stored config no longer validates.
    topic_prefix: Option<String>,
    /// (host, port, database, slot), resolved.
    slot: Option<SlotId>,
    metrics: Arc<ConnectorMetrics>,
    run: Option<Run>,
    /// Why the connector could not be started at all (a stored config that fails validation).
    start_error: Option<String>,
}

/// A connector run that ended on its own, reported to the worker: it failed (`error`; a file
/// connector's failure stops the worker), or it finished its work (`None`:
/// `snapshot.mode=initial_only` after its snapshot).
#[derive(Debug)]
pub struct Ended {
    pub connector: String,
    pub origin: Origin,
    pub error: Option<String>,
}

/// The standalone worker's connectors.
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

struct Shared {
    worker: WorkerConfig,
    offsets: Arc<OffsetStore>,
    store_path: PathBuf,
    worker_id: Mutex<String>,
    connectors: tokio::sync::Mutex<BTreeMap<String, Connector>>,
    ended: mpsc::UnboundedSender<Ended>,
}

/// The file next to the offsets where connector configurations are kept.
pub fn store_path(worker: &WorkerConfig) -> PathBuf {
    let mut name = worker
        .offset_storage_file_filename
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "offsets".into());
    name.push(".connectors.json");
    worker.offset_storage_file_filename.with_file_name(name)
}

impl Manager {
    /// A manager with no connectors; runs that end on their own (failed or finished) are
    /// reported on the returned receiver.
    pub fn new(
        worker: WorkerConfig,
        offsets: Arc<OffsetStore>,
    ) -> (Manager, mpsc::UnboundedReceiver<Ended>) {
        let (ended, ended_rx) = mpsc::unbounded_channel();
        let store_path = store_path(&worker);
        let manager = Manager {
            shared: Arc::new(Shared {
                worker,
                offsets,
                store_path,
                worker_id: Mutex::new(String::new()),
                connectors: tokio::sync::Mutex::new(BTreeMap::new()),
                ended,
            }),
        };
        (manager, ended_rx)
    }

    /// Sets the `worker_id` reported in statuses (`host:port` of the REST listener).
    pub fn set_worker_id(&self, id: String) {
        if let Ok(mut worker_id) = self.shared.worker_id.lock() {
            *worker_id = id;
        }
    }

    fn worker_id(&self) -> String {
        self.shared
            .worker_id
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    /// The worker configuration.
    pub fn worker(&self) -> &WorkerConfig {
        &self.shared.worker
    }

    /// Starts the worker's connectors: the stored ones, then the files named on the command
    /// line (a file wins over a stored configuration of the same name). A file connector whose
    /// configuration is invalid is an error; a stored one that no longer validates is kept
    /// with task 0 FAILED, so that it can be fixed over REST.
    pub async fn start_all(
        &self,
        files: Vec<(PathBuf, BTreeMap<String, String>)>,
    ) -> anyhow::Result<()> {
        let stored = self.read_store()?;
        let mut table = self.shared.connectors.lock().await;
        let mut merged: BTreeMap<String, (BTreeMap<String, String>, Origin, TargetState)> =
            BTreeMap::new();
        for (name, config, target) in stored {
            merged.insert(name, (config, Origin::Rest, target));
        }
        for (path, config) in files {
            let name = config.get("name").cloned().unwrap_or_default();
            let target = match merged.remove(&name) {
                Some((stored, _, target)) => {
                    if stored != config {
                        tracing::info!(connector = %name, file = %path.display(), store = %self.shared.store_path.display(), "the connector file named on the command line replaces the stored configuration of the same name");
                    }
                    target
                }
                None => TargetState::Started,
            };
            merged.insert(name, (config, Origin::File(path), target));
        }
        for (name, (config, origin, target)) in merged {
            let validated = self.validate(&name, &config);
            let validated = match (validated, &origin) {
                (Ok(v), _) => Some(v),
                (Err(err), Origin::File(path)) => {
                    return Err(anyhow!("{}: {err}", path.display()));
                }
                (Err(err), Origin::Rest) => {
                    tracing::error!(connector = %name, error = %err, "the stored connector configuration is invalid; fix it with PUT /connectors/{name}/config");
                    table.insert(
                        name.clone(),
                        Connector {
                            config,
                            origin,
                            target,
                            topic_prefix: None,
                            slot: None,
                            metrics: Arc::new(ConnectorMetrics::new()),
                            run: None,
                            start_error: Some(err.to_string()),
                        },
                    );
                    continue;
                }
            };
            if let Some(validated) = validated {
                if let Err(err) = check_slot_free(&table, &name, &validated) {
                    return Err(anyhow!("{err}"));
                }
                let mut connector = Connector {
                    config,
                    origin,
                    target,
                    topic_prefix: Some(validated.topic_prefix.clone()),
                    slot: Some(slot_of(&validated)),
                    metrics: Arc::new(ConnectorMetrics::new()),
                    run: None,
                    start_error: None,
                };
                if target != TargetState::Stopped {
                    self.start_run(&name, &mut connector, &validated)?;
                }
                table.insert(name, connector);
            }
        }
        self.write_store(&table)?;
        Ok(())
    }

    /// Stops every pipeline cleanly (at shutdown).
    pub async fn stop_all(&self) {
        let mut table = self.shared.connectors.lock().await;
        for connector in table.values() {
            if let Some(run) = &connector.run {
                let _ = run.shutdown.send(true);
            }
        }
        for (name, connector) in table.iter_mut() {
            if let Some(run) = connector.run.take() {
                if let Err(err) = run.handle.await {
                    tracing::error!(connector = %name, error = %err, "connector task panicked");
                }
            }
        }
    }

    /// Connector names, sorted.
    pub async fn names(&self) -> Vec<String> {
        self.shared
            .connectors
            .lock()
            .await
            .keys()
            .cloned()
            .collect()
    }

    /// `POST /connectors`.
    pub async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
    ) -> Result<Value, ManagerError> {
        let mut table = self.shared.connectors.lock().await;
        if table.contains_key(name) {
            return Err(ManagerError::AlreadyExists(name.to_owned()));
        }
        self.insert(&mut table, name, config)?;
        Ok(self.info(name, &table[name]))
    }

    /// `PUT /connectors/{name}/config`: creates (true) or replaces (false) the configuration.
    /// A replaced connector restarts with the new configuration in its current target state.
    pub async fn put_config(
        &self,
        name: &str,
        mut config: BTreeMap<String, String>,
    ) -> Result<(bool, Value), ManagerError> {
        let mut table = self.shared.connectors.lock().await;
        let Some(existing) = table.get_mut(name) else {
            self.insert(&mut table, name, config)?;
            return Ok((true, self.info(name, &table[name])));
        };
        // A masked secret sent back unchanged (GET, edit, PUT) keeps the stored value.
        for (key, value) in config.iter_mut() {
            if value == MASK && is_sensitive(key) {
                if let Some(old) = existing.config.get(key) {
                    value.clone_from(old);
                }
            }
        }
        let validated = self
            .validate(name, &config)
            .map_err(ManagerError::InvalidConfig)?;
        let others = table
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .filter_map(|(n, c)| c.slot.clone().map(|s| (n.clone(), s)))
            .collect::<Vec<_>>();
        check_slot_against(&others, name, &validated).map_err(ManagerError::BadRequest)?;
        let existing = table.get_mut(name).expect("checked above");
        stop_run(name, existing).await;
        existing.config = config;
        existing.origin = Origin::Rest;
        existing.start_error = None;
        existing.topic_prefix = Some(validated.topic_prefix.clone());
        existing.slot = Some(slot_of(&validated));
        if existing.target != TargetState::Stopped {
            self.start_run(name, existing, &validated)
                .map_err(ManagerError::Internal)?;
        }
        self.write_store(&table).map_err(ManagerError::Internal)?;
        Ok((false, self.info(name, &table[name])))
    }

    fn insert(
        &self,
        table: &mut BTreeMap<String, Connector>,
        name: &str,
        config: BTreeMap<String, String>,
    ) -> Result<(), ManagerError> {
        let validated = self
            .validate(name, &config)
            .map_err(ManagerError::InvalidConfig)?;
        check_slot_free(table, name, &validated).map_err(ManagerError::BadRequest)?;
        let mut connector = Connector {
            config,
            origin: Origin::Rest,
            target: TargetState::Started,
            topic_prefix: Some(validated.topic_prefix.clone()),
            slot: Some(slot_of(&validated)),
            metrics: Arc::new(ConnectorMetrics::new()),
            run: None,
            start_error: None,
        };
        self.start_run(name, &mut connector, &validated)
            .map_err(ManagerError::Internal)?;
        tracing::info!(connector = %name, "connector created");
        table.insert(name.to_owned(), connector);
        self.write_store(table).map_err(ManagerError::Internal)
    }

    /// Validates a configuration as written: providers resolved, then the connector's and the
    /// pipeline's checks.
    pub fn validate(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<ConnectorConfig, ConfigErrors> {
        let source = format!("connector {name}");
        let resolved = self
            .shared
            .worker
            .config_providers
            .resolve_pairs(config, &source)
            .map_err(ConfigErrors)?;
        let validated = ConnectorConfig::from_map(resolved, &source)?;
        pipeline_settings(&self.shared.worker, &validated).map_err(|err| {
            ConfigErrors(vec![crate::config::ConfigError::Syntax {
                location: crate::config::Location::new(&source, None),
                message: format!("{err:#}"),
            }])
        })?;
        Ok(validated)
    }

    fn start_run(
        &self,
        name: &str,
        connector: &mut Connector,
        validated: &ConnectorConfig,
    ) -> anyhow::Result<()> {
        let mut settings = pipeline_settings(&self.shared.worker, validated)?;
        // The snapshot's counters feed this connector's snapshot metrics.
        settings.source.snapshot.stats = connector.metrics.snapshot_stats();
        settings.source.events.filtered = connector.metrics.filtered_counter();
        let signals = Arc::clone(&settings.source.snapshot.signals);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (paused_tx, paused_rx) = watch::channel(connector.target == TargetState::Paused);
        let outcome = Arc::new(Mutex::new(RunOutcome::Running));
        let hooks = PipelineHooks {
            metrics: Arc::clone(&connector.metrics),
            paused: paused_rx,
        };
        let offsets = Arc::clone(&self.shared.offsets);
        let ended = self.shared.ended.clone();
        let stop_requested = shutdown_rx.clone();
        let task_outcome = Arc::clone(&outcome);
        let origin = connector.origin.clone();
        let task_name = name.to_owned();
        tracing::info!(connector = %name, "starting connector");
        let handle = tokio::spawn(async move {
            let result = run_connector_with(settings, offsets, shutdown_rx, hooks).await;
            match result {
                Ok(()) if *stop_requested.borrow() => {
                    tracing::info!(connector = %task_name, "connector stopped")
                }
                Ok(()) => {
                    tracing::info!(connector = %task_name, "connector finished its work");
                    let _ = ended.send(Ended {
                        connector: task_name,
                        origin,
                        error: None,
                    });
                }
                Err(err) => {
                    let trace = format!("{err:?}");
                    tracing::error!(connector = %task_name, error = %format!("{err:#}"), "connector failed");
                    if let Ok(mut outcome) = task_outcome.lock() {
                        *outcome = RunOutcome::Failed(trace);
                    }
                    let _ = ended.send(Ended {
                        connector: task_name,
                        origin,
                        error: Some(format!("{err:#}")),
                    });
                }
            }
        });
        connector.start_error = None;
        connector.run = Some(Run {
            signals,
            shutdown: shutdown_tx,
            paused: paused_tx,
            handle,
            outcome,
        });
        Ok(())
    }

    /// `POST …/signals` (pgseam extension): a Debezium signal, `{"id"?, "type", "data"}`
    /// (`data` an object or its JSON text), handed to the running source (see
    /// `pgseam_connector_pg::snapshot::signal`). 400 for an invalid signal or a connector that
    /// is not running.
    pub async fn signal(&self, name: &str, body: &Value) -> Result<String, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let id = match body.get("id") {
            None | Some(Value::Null) => format!(
                "rest-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or(0)
            ),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ManagerError::BadRequest("the signal needs a string `type`".into()))?;
        let data = match body.get("data") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        };
        let signal = pgseam_connector_pg::snapshot::Signal::parse(&id, kind, data.as_deref())
            .map_err(ManagerError::BadRequest)?;
        let run = connector
            .run
            .as_ref()
            .filter(|r| {
                connector.target == TargetState::Started
                    && r.outcome
                        .lock()
                        .is_ok_and(|o| matches!(*o, RunOutcome::Running))
            })
            .ok_or_else(|| {
                ManagerError::BadRequest(format!(
                    "Connector {name} is not running: signals go to a running connector"
                ))
            })?;
        tracing::info!(connector = %name, signal_id = %id, signal_type = %kind, "signal received over REST");
        run.signals.send(signal);
        Ok(id)
    }

    /// `PUT …/pause`.
    pub async fn pause(&self, name: &str) -> Result<(), ManagerError> {
        self.set_target(name, TargetState::Paused).await
    }

    /// `PUT …/resume`.
    pub async fn resume(&self, name: &str) -> Result<(), ManagerError> {
        self.set_target(name, TargetState::Started).await
    }

    /// `PUT …/stop`.
    pub async fn stop(&self, name: &str) -> Result<(), ManagerError> {
        self.set_target(name, TargetState::Stopped).await
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<(), ManagerError> {
        let mut table = self.shared.connectors.lock().await;
        let connector = table
            .get_mut(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        connector.target = target;
        match target {
            TargetState::Stopped => stop_run(name, connector).await,
            TargetState::Paused | TargetState::Started => {
                let paused = target == TargetState::Paused;
                match &connector.run {
                    Some(run) => {
                        run.paused.send_replace(paused);
                    }
                    None if connector.start_error.is_none() => {
                        // Leaving STOPPED: start the pipeline (paused if asked).
                        let config = connector.config.clone();
                        let validated = self
                            .validate(name, &config)
                            .map_err(ManagerError::InvalidConfig)?;
                        self.start_run(name, connector, &validated)
                            .map_err(ManagerError::Internal)?;
                    }
                    None => {}
                }
            }
        }
        tracing::info!(connector = %name, target = target.as_str(), "target state changed");
        self.write_store(&table).map_err(ManagerError::Internal)
    }

    /// `POST …/restart`. Returns the status to report (items being restarted as RESTARTING),
    /// or `None` if the connector-only form was asked for (Connect answers it with no body).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<Value>, ManagerError> {
        let mut table = self.shared.connectors.lock().await;
        let connector = table
            .get_mut(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let worker_id = self.worker_id();
        let (connector_state, task_states) = status_of(connector);
        // The connector instance of pgseam has no state of its own: restarting it restarts
        // the pipeline it shares with task 0. A stopped connector stays stopped.
        let task_failed = matches!(task_states.first(), Some(State::Failed { .. }));
        let restart = connector.target != TargetState::Stopped
            && (!only_failed || (include_tasks && task_failed));
        let body = if !include_tasks && !only_failed {
            None
        } else {
            let shown_connector = if restart && !only_failed {
                State::Restarting
            } else {
                connector_state
            };
            let tasks = task_states
                .into_iter()
                .map(|t| if restart { State::Restarting } else { t })
                .collect::<Vec<_>>();
            Some(status_json(name, &shown_connector, &tasks, &worker_id))
        };
        if restart {
            stop_run(name, connector).await;
            let config = connector.config.clone();
            match self.validate(name, &config) {
                Ok(validated) => self
                    .start_run(name, connector, &validated)
                    .map_err(ManagerError::Internal)?,
                Err(errors) => connector.start_error = Some(errors.to_string()),
            }
        }
        Ok(body)
    }

    /// `DELETE /connectors/{name}`. The offsets are kept, as in Connect.
    pub async fn delete(&self, name: &str) -> Result<(), ManagerError> {
        let mut table = self.shared.connectors.lock().await;
        let mut connector = table
            .remove(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        stop_run(name, &mut connector).await;
        tracing::info!(connector = %name, "connector deleted");
        self.write_store(&table).map_err(ManagerError::Internal)
    }

    /// `GET /connectors/{name}` (Connect's `ConnectorInfo`).
    pub async fn connector_info(&self, name: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        Ok(self.info(name, connector))
    }

    /// `GET /connectors/{name}/config`: as written, secrets masked.
    pub async fn config(&self, name: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        Ok(masked(&connector.config))
    }

    /// `GET /connectors/{name}/status` (Connect's `ConnectorStateInfo`).
    pub async fn status(&self, name: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let (state, tasks) = status_of(connector);
        Ok(status_json(name, &state, &tasks, &self.worker_id()))
    }

    /// `GET /connectors?expand=…`: each connector's expansions.
    pub async fn expanded(&self, status: bool, info: bool) -> Value {
        let table = self.shared.connectors.lock().await;
        let worker_id = self.worker_id();
        let mut out = serde_json::Map::new();
        for (name, connector) in table.iter() {
            let mut expansions = serde_json::Map::new();
            if status {
                let (state, tasks) = status_of(connector);
                expansions.insert(
                    "status".into(),
                    status_json(name, &state, &tasks, &worker_id),
                );
            }
            if info {
                expansions.insert("info".into(), self.info(name, connector));
            }
            out.insert(name.clone(), Value::Object(expansions));
        }
        Value::Object(out)
    }

    /// `GET /connectors/{name}/tasks/{task}/status`.
    pub async fn task_status(&self, name: &str, task: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let (_, tasks) = status_of(connector);
        match (task, tasks.first()) {
            ("0", Some(state)) => {
                let mut body = serde_json::Map::new();
                body.insert("id".into(), json!(0));
                body.extend(state.json(&self.worker_id()));
                Ok(Value::Object(body))
            }
            _ => Err(ManagerError::NotFound(format!(
                "No status found for task {name}-{task}"
            ))),
        }
    }

    /// `GET /connectors/{name}/tasks` (Connect's `TaskInfo` list).
    pub async fn tasks(&self, name: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        Ok(Value::Array(task_infos(name, connector)))
    }

    /// `GET /connectors/{name}/offsets` (KIP-875's `ConnectorOffsets`).
    pub async fn offsets(&self, name: &str) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        let mut offsets = Vec::new();
        if let Some(prefix) = &connector.topic_prefix {
            if let Some(offset) = self
                .shared
                .offsets
                .get_json(&offset_key(name, prefix))
                .await
            {
                offsets.push(json!({"partition": {"server": prefix}, "offset": offset}));
            }
        }
        Ok(json!({ "offsets": offsets }))
    }

    /// `PATCH /connectors/{name}/offsets` (`Some(body)`) or `DELETE` (`None`); only while
    /// STOPPED. Returns Connect's message.
    pub async fn alter_offsets(
        &self,
        name: &str,
        body: Option<Value>,
    ) -> Result<Value, ManagerError> {
        let table = self.shared.connectors.lock().await;
        let connector = table
            .get(name)
            .ok_or_else(|| ManagerError::NotFound(name.to_owned()))?;
        if connector.target != TargetState::Stopped || connector.run.is_some() {
            return Err(ManagerError::BadRequest(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        let prefix = connector.topic_prefix.clone().ok_or_else(|| {
            ManagerError::BadRequest(format!(
                "the configuration of connector {name} is invalid; fix it before altering its offsets"
            ))
        })?;
        let key = offset_key(name, &prefix);
        let store = &self.shared.offsets;
        let Some(body) = body else {
            store
                .remove(&key)
                .await
                .map_err(|e| ManagerError::Internal(e.into()))?;
            tracing::info!(connector = %name, "offsets reset");
            return Ok(
                json!({"message": "The Connect framework-managed offsets for this connector have been reset successfully. However, if this connector manages offsets externally, they will need to be manually reset in the system that the connector uses."}),
            );
        };
        let entries = body
            .get("offsets")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ManagerError::BadRequest(
                    "Partitions / offsets need to be provided for an alter offsets request".into(),
                )
            })?;
        let expected_partition = json!({ "server": prefix });
        // Check every entry before writing any.
        let mut changes = Vec::new();
        for entry in entries {
            let partition = entry.get("partition").cloned().unwrap_or(Value::Null);
            if partition != expected_partition {
                return Err(ManagerError::BadRequest(format!(
                    "connector {name} has one source partition, {expected_partition}; cannot alter the offset of partition {partition}"
                )));
            }
            match entry.get("offset") {
                None | Some(Value::Null) => changes.push(None),
                Some(offset) => {
                    let offset = OffsetStore::check_json(offset).map_err(|reason| {
                        ManagerError::BadRequest(format!(
                            "invalid offset for partition {partition}: {reason}; a PostgreSQL offset has a numeric `lsn` (and optionally `lsn_commit`, `txId`, `ts_usec`)"
                        ))
                    })?;
                    changes.push(Some(offset));
                }
            }
        }
        for change in changes {
            match change {
                None => {
                    store
                        .remove(&key)
                        .await
                        .map_err(|e| ManagerError::Internal(e.into()))?;
                }
                Some(offset) => store
                    .put(&key, &offset)
                    .await
                    .map_err(|e| ManagerError::Internal(e.into()))?,
            }
        }
        tracing::info!(connector = %name, "offsets altered");
        Ok(
            json!({"message": "The Connect framework-managed offsets for this connector have been altered successfully. However, if this connector manages offsets externally, they will need to be manually altered in the system that the connector uses."}),
        )
    }

    /// Prometheus text of every connector's metrics.
    pub async fn render_metrics(&self) -> String {
        let table = self.shared.connectors.lock().await;
        metrics::render(table.iter().map(|(name, c)| metrics::Exported {
            connector: name,
            topic_prefix: c.topic_prefix.as_deref().unwrap_or(""),
            paused: c.target == TargetState::Paused,
            metrics: &c.metrics,
        }))
    }

    fn info(&self, name: &str, connector: &Connector) -> Value {
        let tasks: Vec<Value> = if connector.target == TargetState::Stopped {
            Vec::new()
        } else {
            vec![json!({"connector": name, "task": 0})]
        };
        json!({
            "name": name,
            "config": masked(&connector.config),
            "tasks": tasks,
            "type": "source",
        })
    }

    fn read_store(&self) -> anyhow::Result<Vec<StoredConnector>> {
        read_store_file(&self.shared.store_path)
    }

    fn write_store(&self, table: &BTreeMap<String, Connector>) -> anyhow::Result<()> {
        let connectors: Vec<Value> = table
            .iter()
            .map(|(name, c)| {
                json!({
                    "name": name,
                    "config": c.config,
                    "target_state": c.target.as_str(),
                })
            })
            .collect();
        let document = json!({ "format": STORE_FORMAT, "connectors": connectors });
        write_atomically(&self.shared.store_path, document.to_string().as_bytes())
            .with_context(|| format!("cannot write {}", self.shared.store_path.display()))
    }
}

/// Reads the connector store (see [`store_path`]): name, configuration as written, target
/// state; empty when there is none yet.
fn read_store_file(path: &Path) -> anyhow::Result<Vec<StoredConnector>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(anyhow!(err).context(format!("cannot read {}", path.display()))),
    };
    let corrupt = |reason: &str| {
        anyhow!("connector store {} is corrupt: {reason}; restore it or delete it (the connectors it held are then forgotten, their offsets stay)", path.display())
    };
    let document: Value = serde_json::from_str(&text).map_err(|e| corrupt(&e.to_string()))?;
    if document.get("format").and_then(Value::as_str) != Some(STORE_FORMAT) {
        return Err(corrupt("missing format marker"));
    }
    let mut out = Vec::new();
    for entry in document
        .get("connectors")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt("no `connectors` array"))?
    {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt("a connector without a name"))?;
        let config = entry
            .get("config")
            .and_then(Value::as_object)
            .ok_or_else(|| corrupt("a connector without a config"))?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str()
                        .ok_or_else(|| corrupt("a non-string value"))?
                        .to_owned(),
                ))
            })
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let target = entry
            .get("target_state")
            .and_then(Value::as_str)
            .and_then(TargetState::parse)
            .ok_or_else(|| corrupt("a connector without a valid target_state"))?;
        out.push((name.to_owned(), config, target));
    }
    Ok(out)
}

/// The connectors created over the REST API, as kept beside the worker's offsets: name and
/// configuration as written (config provider references unresolved). For tools that run
/// beside the worker (`pgseam slot list`).
pub fn stored_connector_configs(
    worker: &WorkerConfig,
) -> anyhow::Result<Vec<(String, BTreeMap<String, String>)>> {
    Ok(read_store_file(&store_path(worker))?
        .into_iter()
        .map(|(name, config, _)| (name, config))
        .collect())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&directory)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(".{file_name}.tmp"));
    {
        // The configurations may hold passwords.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    fs::File::open(&directory)?.sync_all()
}

/// What a masked secret looks like in REST output.
pub const MASK: &str = "****";

fn is_sensitive(key: &str) -> bool {
    crate::config::is_sensitive_key(key)
}

/// The configuration as shown over REST: secret values masked unless they are config provider
/// references (which are not secret, and which Connect shows as written).
fn masked(config: &BTreeMap<String, String>) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in config {
        let shown = if is_sensitive(key) && !crate::config::ConfigProviders::has_reference(value) {
            MASK.to_owned()
        } else {
            value.clone()
        };
        out.insert(key.clone(), Value::String(shown));
    }
    Value::Object(out)
}

fn task_infos(name: &str, connector: &Connector) -> Vec<Value> {
    if connector.target == TargetState::Stopped {
        return Vec::new();
    }
    let mut config = match masked(&connector.config) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    config.insert(
        "task.class".into(),
        json!("io.debezium.connector.postgresql.PostgresConnectorTask"),
    );
    vec![json!({"id": {"connector": name, "task": 0}, "config": config})]
}

/// The connector's state and its tasks' states.
fn status_of(connector: &Connector) -> (State, Vec<State>) {
    if connector.target == TargetState::Stopped {
        return (State::Stopped, Vec::new());
    }
    let paused = connector.target == TargetState::Paused;
    let connector_state = if paused {
        State::Paused
    } else {
        State::Running
    };
    let task = if let Some(error) = &connector.start_error {
        State::Failed {
            trace: error.clone(),
        }
    } else {
        match &connector.run {
            None => State::Unassigned,
            Some(run) => match run.outcome.lock().map(|o| o.clone()) {
                Ok(RunOutcome::Failed(trace)) => State::Failed { trace },
                _ if paused => State::Paused,
                _ => State::Running,
            },
        }
    };
    (connector_state, vec![task])
}

fn status_json(name: &str, connector: &State, tasks: &[State], worker_id: &str) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(id, state)| {
            let mut task = serde_json::Map::new();
            task.insert("id".into(), json!(id));
            task.extend(state.json(worker_id));
            Value::Object(task)
        })
        .collect();
    json!({
        "name": name,
        "connector": Value::Object(connector.json(worker_id)),
        "tasks": tasks,
        "type": "source",
    })
}

async fn stop_run(name: &str, connector: &mut Connector) {
    if let Some(run) = connector.run.take() {
        let _ = run.shutdown.send(true);
        if let Err(err) = run.handle.await {
            tracing::error!(connector = %name, error = %err, "connector task panicked");
        }
    }
}

fn slot_of(config: &ConnectorConfig) -> SlotId {
    (
        config.database_hostname.clone(),
        config.database_port,
        config.database_dbname.clone(),
        config.slot_name.clone(),
    )
}

fn check_slot_free(
    table: &BTreeMap<String, Connector>,
    name: &str,
    config: &ConnectorConfig,
) -> Result<(), String> {
    let others = table
        .iter()
        .filter(|(n, _)| n.as_str() != name)
        .filter_map(|(n, c)| c.slot.clone().map(|s| (n.clone(), s)))
        .collect::<Vec<_>>();
    check_slot_against(&others, name, config)
}

/// Two readers of one slot would steal each other's changes.
fn check_slot_against(
    others: &[(String, SlotId)],
    name: &str,
    config: &ConnectorConfig,
) -> Result<(), String> {
    let slot = slot_of(config);
    match others.iter().find(|(_, s)| *s == slot) {
        Some((other, _)) => Err(format!(
            "connector {name}: replication slot `{}` on {}:{}/{} is already used by connector {other}; give each connector its own slot.name",
            slot.3, slot.0, slot.1, slot.2
        )),
        None => Ok(()),
    }
}
