//! `pgseam`: the command line.
//!
//! `pgseam standalone worker.properties connector.properties [connector2 …]` runs like Kafka
//! Connect's `connect-standalone.sh`: one worker, the named connectors, offsets in a file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pgseam",
    version,
    about = "PostgreSQL → Kafka change data capture, a drop-in for Debezium's PostgreSQL connector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Inspect the stored offsets.
    Offsets {
        #[command(subcommand)]
        command: OffsetsCommand,
    },
    /// Check a worker file and connector files, print the errors, and exit.
    Validate {
        worker: PathBuf,
        #[arg(required = true)]
        connectors: Vec<PathBuf>,
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Standalone { worker, connectors } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(pgseam::standalone::run(&worker, &connectors))
        }
        Command::Offsets {
            command: OffsetsCommand::Show { worker, connector },
        } => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime
                .block_on(pgseam::standalone::show_offsets(
                    &worker,
                    connector.as_deref(),
                ))
                .map(|text| print!("{text}")),
            Err(err) => {
                eprintln!("error: cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        },
        Command::Validate { worker, connectors } => {
            pgseam::standalone::validate(&worker, &connectors).map(|summary| println!("{summary}"))
        }
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
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime
                    .block_on(pgseam::starrocks::run(&worker, &connector, &options))
                    .map(|script| print!("{script}")),
                Err(err) => Err(anyhow::anyhow!("cannot start the async runtime: {err}")),
            }
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
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(pgseam::verify::run(&worker, &connector, &options)) {
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
