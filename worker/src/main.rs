//! `pgseam`: the command line.
//!
//! `pgseam standalone worker.properties connector.properties [connector2 …]` runs like Kafka
//! Connect's `connect-standalone.sh`: one worker, the named connectors, offsets in a file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc, for Rust and (the crate's `override` feature) for the
/// C code too, librdkafka above all: a snapshot allocates most of its rows and records on one
/// thread and frees them on another (the readers and their converting threads, the pipeline;
/// librdkafka's messages between the producing and the polling thread), which glibc serves
/// with locked arenas and mimalloc with thread-local free lists. Built without transparent
/// huge pages (`no_thp`): a 2 MiB page is resident as soon as one byte of it is used, which
/// doubled the RSS while streaming (BENCHMARKS.md "The allocator, measured into the broker
/// too").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pgseam",
    version,
    about = "PostgreSQL → Kafka change data capture, a drop-in for Debezium's PostgreSQL connector"
)]
struct Cli {
    /// Log format on stderr: `human` or `json` (default: the worker file's `log.format`, else
    /// `human`). `RUST_LOG` sets the level.
    #[arg(long, global = true, value_enum)]
    log_format: Option<pgseam::config::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// The worker file the command reads, if any (for its `log.format`).
    fn worker_file(&self) -> Option<&std::path::Path> {
        match self {
            Command::Standalone { worker, .. }
            | Command::Validate { worker, .. }
            | Command::Starrocks { worker, .. }
            | Command::Verify { worker, .. }
            | Command::Offsets {
                command: OffsetsCommand::Show { worker, .. } | OffsetsCommand::Set { worker, .. },
            }
            | Command::Slot {
                command: SlotCommand::List { worker, .. } | SlotCommand::Drop { worker, .. },
            } => Some(worker),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone worker, as Kafka Connect's connect-standalone.sh does.
    Standalone {
        /// Kafka Connect worker properties (bootstrap.servers, converters, offset file, …).
        worker: PathBuf,
        /// Connector configurations: Java properties, or the JSON posted to Kafka Connect.
        /// Optional: connectors can be created over the REST API.
        connectors: Vec<PathBuf>,
    },
    /// Show or change the stored offsets.
    Offsets {
        #[command(subcommand)]
        command: OffsetsCommand,
    },
    /// List or drop the replication slots of the connectors' databases.
    Slot {
        #[command(subcommand)]
        command: SlotCommand,
    },
    /// Check a worker file and connector files, then what each connector needs from its
    /// PostgreSQL server (connection, REPLICATION, wal_level, slots, WAL senders, publication,
    /// SELECT, replica identity); print a report with a fix per failing check. Exits 1 when a
    /// check fails.
    Validate {
        worker: PathBuf,
        #[arg(required = true)]
        connectors: Vec<PathBuf>,
        /// Check the files only; do not connect to PostgreSQL.
        #[arg(long)]
        offline: bool,
    },
    /// Print StarRocks Primary Key tables and Routine Load jobs for the captured tables.
    Starrocks {
        worker: PathBuf,
        connector: PathBuf,
        /// Which Routine Load form to print.
        #[arg(long, value_enum, default_value = "both")]
        format: pgseam::starrocks::Format,
        /// StarRocks database (default: the topic prefix as an identifier).
        #[arg(long)]
        database: Option<String>,
        /// `replication_num` of the tables (default: StarRocks' own, 3).
        #[arg(long)]
        replication_num: Option<u32>,
    },
    /// Read the connector's topics back, apply them as a Primary Key table would, and compare
    /// with the source at one LSN. Exits 1 when anything differs, 2 when it cannot compare.
    Verify {
        worker: PathBuf,
        connector: PathBuf,
        /// Only these tables (`schema.table`, comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// How the end of a partition is recognised: `idle` (nothing arrived for --idle-ms) or
        /// `marker` (verify's own marker record arrived; writes one record to every partition).
        #[arg(long, value_enum, default_value = "idle")]
        end: pgseam::verify::EndMode,
        /// With `--end idle`: how long no record must arrive before the topics count as read.
        #[arg(long, default_value_t = 5000)]
        idle_ms: u64,
        /// How long to wait for pgseam's slot to pass the comparison point.
        #[arg(long, default_value_t = 180_000)]
        wait_ms: u64,
        /// Compare at once, without waiting for pgseam (differences may be changes in flight).
        #[arg(long)]
        no_wait: bool,
        /// Example keys listed per kind of difference.
        #[arg(long, default_value_t = 10)]
        examples: usize,
        /// Memory for verify's own state before it spills to disk: bytes, or with a K, M or G
        /// suffix (default 512M). Kafka's client and the source reader use more
        /// (docs/verify.md#memory).
        #[arg(long, value_parser = pgseam::verify::parse_size)]
        memory_budget: Option<usize>,
        /// Directory for the spill files (default: the system's temp dir).
        #[arg(long)]
        spill_dir: Option<PathBuf>,
        /// Progress line on stderr: `auto` (when stderr is a terminal), `always` or `never`
        /// (progress is logged every 5 seconds instead).
        #[arg(long, value_enum, default_value = "auto")]
        progress: pgseam::verify::ProgressMode,
    },
}

#[derive(Subcommand)]
enum OffsetsCommand {
    /// Print every connector's stored offset (the worker's offset.storage.file.filename, or
    /// its offset.storage.topic when set).
    Show {
        worker: PathBuf,
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
    },
    /// Change a connector's stored offset while pgseam is not running it (as PATCH / DELETE
    /// /connectors/{name}/offsets do): resume from an LSN, store a Debezium offset, or reset.
    #[command(group(clap::ArgGroup::new("position").required(true).args(["lsn", "offset", "reset"])))]
    Set {
        worker: PathBuf,
        connector: PathBuf,
        /// Resume with the first transaction that commits at or after this LSN (`X/Y`, or the
        /// decimal number Debezium stores).
        #[arg(long, value_parser = pgseam::offset_edit::parse_lsn)]
        lsn: Option<pgseam_model::Lsn>,
        /// A Debezium PostgreSQL offset as JSON, e.g. `{"lsn_proc":123,"lsn":123,"lsn_commit":123}`.
        #[arg(long, value_parser = parse_json)]
        offset: Option<serde_json::Value>,
        /// Remove the offset: the next start takes a new snapshot.
        #[arg(long)]
        reset: bool,
    },
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

#[derive(Subcommand)]
enum SlotCommand {
    /// Every replication slot of each connector's database: plugin, active PID, restart and
    /// confirmed LSN, lag and retained WAL, wal_status, and which connector reads it.
    List {
        worker: PathBuf,
        /// Connector files: their database connection and slot.name (connectors created over
        /// the REST API are read too, from beside the worker's offsets file).
        connectors: Vec<PathBuf>,
        /// Every slot of the server, not only those of the connectors' databases.
        #[arg(long)]
        all: bool,
        /// `table` (human units) or `json` (one object per line, exact numbers).
        #[arg(long, value_enum, default_value = "table")]
        format: pgseam::slots::Format,
    },
    /// Drop a replication slot of the connector's database (refused while it is active).
    Drop {
        worker: PathBuf,
        connector: PathBuf,
        /// The slot to drop (default: the connector's slot.name).
        #[arg(long)]
        slot: Option<String>,
        /// The slot name again, to confirm without a prompt (required when stdin is not a
        /// terminal).
        #[arg(long, value_name = "SLOT")]
        confirm: Option<String>,
    },
}

/// The tokio runtime a command runs on.
#[derive(Clone, Copy)]
enum Threads {
    /// One worker thread per core (`TOKIO_WORKER_THREADS` overrides): the pipeline, `verify`
    /// and the offset commands, which read the offsets topic.
    PerCore,
    /// The calling thread only: one-shot admin commands.
    Current,
}

/// Runs `future` to completion on a new runtime of the given kind.
fn block_on<F: std::future::Future>(threads: Threads, future: F) -> anyhow::Result<F::Output> {
    let mut builder = match threads {
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
        Threads::Current => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|err| anyhow::anyhow!("cannot start the async runtime: {err}"))?;
    Ok(runtime.block_on(future))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli
        .log_format
        .or_else(|| {
            cli.command
                .worker_file()
                .and_then(pgseam::config::peek_log_format)
        })
        .unwrap_or_default();
    pgseam::logging::init(log_format);
    let result = match cli.command {
        Command::Standalone { worker, connectors } => block_on(
            Threads::PerCore,
            pgseam::standalone::run(&worker, &connectors),
        )
        .and_then(|r| r),
        Command::Offsets {
            command:
                OffsetsCommand::Set {
                    worker,
                    connector,
                    lsn,
                    offset,
                    reset,
                },
        } => {
            let new = match (lsn, offset) {
                (Some(lsn), _) => pgseam::offset_edit::NewOffset::Lsn(lsn),
                (None, Some(offset)) => pgseam::offset_edit::NewOffset::Json(offset),
                (None, None) => {
                    debug_assert!(reset, "clap requires one of --lsn, --offset, --reset");
                    pgseam::offset_edit::NewOffset::Reset
                }
            };
            block_on(
                Threads::PerCore,
                pgseam::offset_edit::run(&worker, &connector, &new),
            )
            .and_then(|r| r)
            .map(|text| print!("{text}"))
        }
        Command::Offsets {
            command: OffsetsCommand::Show { worker, connector },
        } => block_on(
            Threads::PerCore,
            pgseam::standalone::show_offsets(&worker, connector.as_deref()),
        )
        .and_then(|r| r)
        .map(|text| print!("{text}")),
        Command::Slot { command } => match command {
            SlotCommand::List {
                worker,
                connectors,
                all,
                format,
            } => block_on(
                Threads::Current,
                pgseam::slots::list(&worker, &connectors, all, format),
            ),
            SlotCommand::Drop {
                worker,
                connector,
                slot,
                confirm,
            } => block_on(
                Threads::Current,
                pgseam::slots::drop(
                    &worker,
                    &connector,
                    &pgseam::slots::DropRequest { slot, confirm },
                ),
            ),
        }
        .and_then(|r| r)
        .map(|text| print!("{text}")),
        Command::Validate {
            worker,
            connectors,
            offline,
        } => match block_on(
            Threads::Current,
            pgseam::validate::run(&worker, &connectors, offline),
        )
        .and_then(|r| r)
        {
            Ok(report) => {
                print!("{report}");
                return if report.failed() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                };
            }
            Err(err) => Err(err),
        },
        Command::Starrocks {
            worker,
            connector,
            format,
            database,
            replication_num,
        } => {
            let options = pgseam::starrocks::Options {
                format,
                database,
                replication_num,
            };
            block_on(
                Threads::Current,
                pgseam::starrocks::run(&worker, &connector, &options),
            )
            .and_then(|r| r)
            .map(|script| print!("{script}"))
        }
        Command::Verify {
            worker,
            connector,
            tables,
            end,
            idle_ms,
            wait_ms,
            no_wait,
            examples,
            memory_budget,
            spill_dir,
            progress,
        } => {
            let options = pgseam::verify::Options {
                tables,
                end,
                idle: std::time::Duration::from_millis(idle_ms),
                wait: (!no_wait).then(|| std::time::Duration::from_millis(wait_ms)),
                examples,
                memory_budget: memory_budget.unwrap_or(pgseam::verify::DEFAULT_MEMORY_BUDGET),
                spill_dir,
                progress,
            };
            match block_on(
                Threads::PerCore,
                pgseam::verify::run(&worker, &connector, &options),
            )
            .and_then(|r| r)
            {
                Ok(report) => {
                    print!("{report}");
                    return if report.is_clean() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    };
                }
                Err(err) => {
                    eprintln!("error: {err:#}");
                    // 1 is taken by "differences found".
                    return ExitCode::from(2);
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
