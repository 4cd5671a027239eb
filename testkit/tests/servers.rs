//! The testkit against the real PostgreSQL 15 and tansu binaries.

use std::net::TcpStream;
use std::process::Command;

use pgseam_testkit::{Broker, Error, Postgres, PostgresOptions, ShutdownMode};

/// Live and not a zombie: a stopped server is reaped by init, not by us, and maybe not yet.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !state.is_empty() && !state.starts_with('Z')
}

#[test]
fn postgres_is_logical_and_stops_on_drop() -> Result<(), Error> {
    let pg = Postgres::start()?;
    assert_eq!(pg.psql("postgres", "select 1")?, "1");
    assert_eq!(pg.psql("postgres", "show wal_level")?, "logical");
    assert_eq!(pg.psql("postgres", "show max_replication_slots")?, "20");
    assert_eq!(pg.psql("postgres", "show server_version_num")?[..2], *"15");
    assert!(pg
        .connection_string("x")
        .contains(&format!("port={}", pg.port())));
    TcpStream::connect((pg.host(), pg.port())).expect("TCP port open");

    let (pid, base) = (pg.pid(), pg.data_dir().parent().unwrap().to_owned());
    assert!(alive(pid));
    drop(pg);
    assert!(!alive(pid), "postmaster {pid} still running");
    assert!(!base.exists(), "{} not removed", base.display());
    Ok(())
}

#[test]
fn postgres_tcp_needs_the_password() -> Result<(), Error> {
    let pg = Postgres::start()?;
    pg.create_database("shop")?;
    let psql = |conninfo: String| {
        Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-XAtq", "-d", &conninfo, "-c", "select current_user"])
            .env_remove("PGPASSWORD")
            .output()
            .unwrap()
    };
    let ok = psql(pg.connection_string("shop"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "postgres");
    let wrong = psql(
        pg.connection_string("shop")
            .replace("password=postgres", "password=x"),
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn postgres_psql_reports_sql_errors_and_runs_scripts() -> Result<(), Error> {
    let pg = Postgres::start()?;
    let rows = pg.psql(
        "postgres",
        "create table t (id int primary key, name text);\n\
         insert into t values (1, 'a'), (2, 'b');\n\
         select id, name from t order by id;",
    )?;
    assert_eq!(rows, "1|a\n2|b");
    let err = pg.psql("postgres", "select * from missing").unwrap_err();
    assert!(
        err.to_string()
            .contains("relation \"missing\" does not exist"),
        "{err}"
    );
    Ok(())
}

#[test]
fn postgres_extra_conf_and_restart() -> Result<(), Error> {
    let mut pg = Postgres::start_with(PostgresOptions::default().conf("wal_level = replica"))?;
    assert_eq!(pg.psql("postgres", "show wal_level")?, "replica");
    pg.psql("postgres", "create table kept (id int)")?;
    let (port, pid) = (pg.port(), pg.pid());
    pg.restart()?;
    assert_eq!(pg.port(), port);
    assert_ne!(pg.pid(), pid);
    assert_eq!(pg.psql("postgres", "select count(*) from kept")?, "0");
    pg.stop()
}

#[test]
fn postgres_immediate_restart_recovers_committed_data() -> Result<(), Error> {
    let mut pg = Postgres::start()?;
    pg.psql(
        "postgres",
        "create table kept (id int); insert into kept values (1), (2)",
    )?;
    let pid = pg.pid();
    pg.restart_with(ShutdownMode::Immediate)?;
    assert_ne!(pg.pid(), pid);
    assert_eq!(pg.psql("postgres", "select count(*) from kept")?, "2");
    // No shutdown checkpoint: the start ran crash recovery.
    let log = std::fs::read_to_string(pg.log_path()).unwrap_or_default();
    assert!(log.contains("not properly shut down"), "{log}");
    pg.stop()
}

#[test]
fn broker_accepts_connections_and_stops_on_drop() -> Result<(), Error> {
    let broker = Broker::start()?;
    let addr = broker.bootstrap_servers();
    assert_eq!(addr, format!("127.0.0.1:{}", broker.port()));
    TcpStream::connect(&addr).expect("broker port open");
    let (pid, log) = (broker.pid(), broker.log_path());
    assert!(log.exists());
    drop(broker);
    assert!(!alive(pid), "broker {pid} still running");
    assert!(!log.exists(), "temp dir not removed");
    Ok(())
}

#[test]
fn pgseam_dev_starts_and_stops_by_pid_file() {
    let dir = tempfile::Builder::new()
        .prefix("pgseam-dev-test-")
        .tempdir_in("/tmp")
        .unwrap();
    let dev = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pgseam-dev"))
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "pgseam-dev {args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let value = |out: &str, key: &str| -> u32 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap();
        line[key.len() + 1..].parse().unwrap()
    };

    let pg = dev(&["postgres", "start"]);
    let pg_pid = value(&pg, "pid");
    assert!(alive(pg_pid));
    let broker = dev(&["broker", "start"]);
    let broker_pid = value(&broker, "pid");
    assert!(alive(broker_pid));
    TcpStream::connect(("127.0.0.1", value(&broker, "port") as u16)).unwrap();

    dev(&["postgres", "stop"]);
    dev(&["broker", "stop"]);
    assert!(!alive(pg_pid) && !alive(broker_pid));
    // Stopping again is a no-op; starting again reuses the cluster.
    dev(&["postgres", "stop"]);
    let again = dev(&["postgres", "start"]);
    dev(&["postgres", "stop"]);
    assert!(!alive(value(&again, "pid")));
}

#[test]
fn postgres_startup_failure_shows_the_log() {
    let err = Postgres::start_with(PostgresOptions::default().conf("wal_level = bogus"))
        .expect_err("invalid wal_level must not start");
    let text = err.to_string();
    assert!(text.contains("postgres did not start"), "{text}");
    assert!(text.contains("wal_level"), "log tail missing: {text}");
}

#[test]
fn servers_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Postgres>();
    shareable::<Broker>();
}
