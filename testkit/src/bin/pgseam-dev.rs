//! `pgseam-dev`: start and stop the testkit's PostgreSQL and broker from shell scripts (the demo),
//! with pid and port files in a directory of the caller's choosing, so that a later invocation
//! stops exactly what an earlier one started.

use std::path::PathBuf;
use std::process::ExitCode;

use pgseam_testkit::{Broker, BrokerOptions, Postgres, PostgresOptions};

const USAGE: &str = "\
usage:
  pgseam-dev postgres start --dir DIR [--port PORT] [--conf 'key = value']...
  pgseam-dev postgres stop  --dir DIR
  pgseam-dev broker   start --dir DIR [--port PORT]
  pgseam-dev broker   stop  --dir DIR
  pgseam-dev broker-bin

start runs the server in the background and prints shell-sourceable lines (port=, pid=, log=, ...);
DIR holds its data, log, and pid/port files (postgres.pid, broker.port, ...) and is never deleted.
A PostgreSQL DIR that already holds a cluster is restarted with its data. stop is a no-op when
nothing runs. The PostgreSQL superuser is postgres/postgres.";

struct Args {
    dir: Option<PathBuf>,
    port: Option<u16>,
    conf: Vec<String>,
}

fn parse(mut rest: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        dir: None,
        port: None,
        conf: Vec::new(),
    };
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--port" => {
                let v = value()?;
                args.port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            "--conf" => args.conf.push(value()?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

fn run(argv: Vec<String>) -> Result<(), Failure> {
    let mut it = argv.into_iter().skip(1);
    let server = it.next().unwrap_or_default();
    if server == "broker-bin" {
        println!("{}", pgseam_testkit::broker_bin()?.display());
        return Ok(());
    }
    let action = it.next().unwrap_or_default();
    let args = parse(it).map_err(Failure::Usage)?;
    let dir = args
        .dir
        .ok_or_else(|| Failure::Usage("--dir is required".into()))?;
    match (server.as_str(), action.as_str()) {
        ("postgres", "start") => {
            let mut opts = PostgresOptions::default().dir(&dir);
            opts.port = args.port;
            opts.conf = args.conf;
            let pg = Postgres::start_with(opts)?;
            println!("port={}", pg.port());
            println!("pid={}", pg.pid());
            println!("data={}", pg.data_dir().display());
            println!("log={}", pg.log_path().display());
            println!("socket_dir={}", pg.base_dir().display());
            pg.detach();
        }
        ("broker", "start") => {
            if !args.conf.is_empty() {
                return Err(Failure::Usage("--conf is for postgres".into()));
            }
            let mut opts = BrokerOptions::default().dir(&dir);
            opts.port = args.port;
            let broker = Broker::start_with(opts)?;
            println!("port={}", broker.port());
            println!("pid={}", broker.pid());
            println!("bootstrap={}", broker.bootstrap_servers());
            println!("log={}", broker.log_path().display());
            broker.detach();
        }
        ("postgres", "stop") | ("broker", "stop") => {
            let stopped = if server == "postgres" {
                pgseam_testkit::stop_postgres_dir(&dir)?
            } else {
                pgseam_testkit::stop_broker_dir(&dir)?
            };
            let state = if stopped { "stopped" } else { "not running" };
            eprintln!("{server} in {}: {state}", dir.display());
        }
        _ => {
            return Err(Failure::Usage(format!(
                "unknown command {server:?} {action:?}"
            )))
        }
    }
    Ok(())
}

enum Failure {
    Usage(String),
    Kit(pgseam_testkit::Error),
}

impl From<pgseam_testkit::Error> for Failure {
    fn from(err: pgseam_testkit::Error) -> Self {
        Failure::Kit(err)
    }
}

fn main() -> ExitCode {
    match run(std::env::args().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("pgseam-dev: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Kit(err)) => {
            // Every variant's message already includes its cause.
            eprintln!("pgseam-dev: {err}");
            ExitCode::FAILURE
        }
    }
}
