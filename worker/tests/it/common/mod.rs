//! Shared harness of the end-to-end tests: a real PostgreSQL 15 and a real Kafka-protocol
//! broker (tansu), config files in a temp dir, and the `pgseam` binary as a child process, so
//! that tests can stop it with SIGTERM or kill it with SIGKILL as a user or a crash would.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use pgseam::offsets::{offset_key, ConnectorOffset, FileOffsetStore};
use pgseam_connector_pg::snapshot::SnapshotProgress;
use pgseam_integration_tests::{compare_table, read_topics, Comparison, TopicMessage};
use pgseam_model::Lsn;
use pgseam_testkit::{Broker, Postgres, PostgresOptions};

pub const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");

pub struct Env {
    pub pg: Postgres,
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    pub database: String,
}

impl Env {
    pub fn start(database: &str) -> Env {
        Env::start_with(database, PostgresOptions::default())
    }

    /// [`Env::start`] with server settings (`PostgresOptions::conf`).
    pub fn start_with(database: &str, options: PostgresOptions) -> Env {
        let pg = Postgres::start_with(options).expect("start PostgreSQL");
        pg.create_database(database).expect("create database");
        let broker = Broker::start().expect("start broker");
        Env {
            pg,
            broker,
            dir: tempfile::tempdir().expect("temp dir"),
            database: database.to_owned(),
        }
    }

    pub fn psql(&self, sql: &str) -> String {
        self.pg
            .psql(&self.database, sql)
            .unwrap_or_else(|err| panic!("SQL failed: {err}\n{sql}"))
    }

    pub fn offsets_path(&self) -> PathBuf {
        self.dir.path().join("offsets.dat")
    }

    /// Writes `worker.properties` and `<name>.properties`; `extra` lines are appended to the
    /// connector file (later keys win).
    pub fn write_configs(
        &self,
        name: &str,
        worker_extra: &[&str],
        connector_extra: &[&str],
    ) -> (PathBuf, PathBuf) {
        let worker = self.dir.path().join("worker.properties");
        let mut worker_text = format!(
            "bootstrap.servers={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=true\n\
             value.converter.schemas.enable=true\n\
             offset.storage.file.filename={}\n\
             offset.flush.interval.ms=500\n\
             listeners=http://127.0.0.1:0\n",
            self.broker.bootstrap_servers(),
            self.offsets_path().display()
        );
        for line in worker_extra {
            worker_text.push_str(line);
            worker_text.push('\n');
        }
        fs::write(&worker, worker_text).unwrap();
        let connector = self.dir.path().join(format!("{name}.properties"));
        let mut text = format!(
            "name={name}\n\
             connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             database.hostname=127.0.0.1\n\
             database.port={}\n\
             database.user=postgres\n\
             database.password=postgres\n\
             database.dbname={}\n\
             topic.prefix={name}\n\
             plugin.name=pgoutput\n\
             slot.name=slot_{name}\n\
             publication.name=pub_{name}\n\
             status.update.interval.ms=1000\n",
            self.pg.port(),
            self.database
        );
        for line in connector_extra {
            text.push_str(line);
            text.push('\n');
        }
        fs::write(&connector, text).unwrap();
        (worker, connector)
    }

    /// Every record of `topic` (read with `assign`, from the beginning) once at least
    /// `at_least` have arrived and then none for `idle`, within `deadline`.
    pub fn read_topic(
        &self,
        topic: &str,
        at_least: usize,
        idle: Duration,
        deadline: Duration,
    ) -> Vec<TopicMessage> {
        read_topics(
            &self.broker.bootstrap_servers(),
            &[topic.to_owned()],
            at_least,
            idle,
            deadline,
        )
        .unwrap_or_else(|err| panic!("read topic {topic}: {err:#}"))
    }

    /// [`Env::wait_until_equal`], then fails the test with the first 20 differences unless
    /// `table` equals its topic; returns the comparison for further checks.
    pub fn assert_topic_equals(
        &self,
        prefix: &str,
        table: &str,
        precise_decimals: bool,
        deadline: Duration,
    ) -> Comparison {
        let comparison = self.wait_until_equal(prefix, table, precise_decimals, deadline);
        assert!(
            comparison.differences.is_empty(),
            "{table} differs from its topic {prefix}.{table} ({} differences), first ones:\n{}",
            comparison.differences.len(),
            comparison.differences[..comparison.differences.len().min(20)].join("\n")
        );
        comparison
    }

    /// Reads `table`'s topic back and compares it with the source until they are equal or
    /// `deadline` passes; returns the last comparison.
    pub fn wait_until_equal(
        &self,
        prefix: &str,
        table: &str,
        precise_decimals: bool,
        deadline: Duration,
    ) -> Comparison {
        let started = Instant::now();
        let run_sql =
            |sql: &str| -> anyhow::Result<String> { Ok(self.pg.psql(&self.database, sql)?) };
        loop {
            let comparison = compare_table(
                &run_sql,
                &self.broker.bootstrap_servers(),
                table,
                &format!("{prefix}.{table}"),
                precise_decimals,
                Duration::from_millis(700),
                Duration::from_secs(30),
            )
            .expect("compare topic with source");
            if comparison.differences.is_empty() {
                return comparison;
            }
            if started.elapsed() > deadline {
                // The quick reads above stop after 0.7 s without a record, which a loaded
                // machine's broker can exceed mid-topic: the verdict comes from one patient
                // read (10 s without a record), so a row reported missing is missing.
                return compare_table(
                    &run_sql,
                    &self.broker.bootstrap_servers(),
                    table,
                    &format!("{prefix}.{table}"),
                    precise_decimals,
                    Duration::from_secs(10),
                    Duration::from_secs(120),
                )
                .expect("compare topic with source");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Connector settings that make the snapshot of table `public.slow` read one row per 50 ms.
const SLOW_SNAPSHOT_OF_SLOW: [&str; 2] = [
    "snapshot.select.statement.overrides=public.slow",
    "snapshot.select.statement.overrides.public.slow=SELECT s.* FROM public.slow s WHERE pg_sleep(0.05) IS NOT NULL",
];

/// Creates table `slow` with `rows` rows, starts pgseam on connector `name` with a select
/// override that makes the snapshot read one row per 50 ms, and stops pgseam (SIGTERM) one second
/// into that snapshot. Asserts that pgseam exited cleanly and that the snapshot did not complete;
/// returns how long the stop took and pgseam's log.
pub fn stop_during_a_slow_snapshot(
    env: &Env,
    name: &str,
    rows: u32,
    wait: Duration,
) -> (Duration, String) {
    env.psql("CREATE TABLE slow (id int PRIMARY KEY, v text)");
    env.psql(&format!(
        "INSERT INTO slow SELECT g, 'v' || g FROM generate_series(1, {rows}) g"
    ));
    let (worker, connector) = env.write_configs(name, &[], &SLOW_SNAPSHOT_OF_SLOW);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("snapshot started", wait);
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let status = pgseam.terminate(Duration::from_secs(30));
    let stop_took = started.elapsed();
    let log = pgseam.log_text();
    assert!(status.success(), "stop during the snapshot failed:\n{log}");
    assert!(
        !log.contains("snapshot completed"),
        "the snapshot was not interrupted:\n{log}"
    );
    (stop_took, log)
}

/// A running `pgseam standalone`.
pub struct Pgseam {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Pgseam {
    pub fn start(dir: &Path, worker: &Path, connectors: &[&Path]) -> Pgseam {
        let log = dir.join(format!("pgseam-{}.log", unique()));
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new(PGSEAM)
            .arg("standalone")
            .arg(worker)
            .args(connectors)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pgseam");
        Pgseam {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The REST API's base URL (`http://127.0.0.1:PORT`) from the log line
    /// `REST API listening on http://127.0.0.1:PORT`, waiting up to `timeout` for that line.
    pub fn rest_base_url(&mut self, timeout: Duration) -> String {
        self.wait_for_log("REST API listening on http://", timeout);
        let log = self.log_text();
        let (_, after) = log.split_once("REST API listening on ").unwrap();
        let url = after.split_whitespace().next().unwrap();
        url.trim_end_matches(|c: char| !c.is_ascii_digit())
            .to_owned()
    }

    /// Waits until the log contains `needle`; panics with the log if the process exits or the
    /// timeout passes first.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        self.wait_for_log_count(needle, 1, timeout);
    }

    /// Waits until the log holds `needle` at least `count` times; panics with the log if
    /// pgseam exits first or `timeout` passes.
    pub fn wait_for_log_count(&mut self, needle: &str, count: usize, timeout: Duration) {
        let started = Instant::now();
        loop {
            if self.log_text().matches(needle).count() >= count {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "pgseam exited ({status}) before logging {needle:?} {count} times:\n{}",
                    self.log_text()
                );
            }
            if started.elapsed() > timeout {
                panic!(
                    "pgseam did not log {needle:?} {count} times within {timeout:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id (while running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap();
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Resident set size in bytes, from `/proc/<pid>/status` (`VmRSS`).
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal("-TERM");
        self.wait(timeout)
    }

    /// SIGTERM, then checks that pgseam exited 0 within 30 s (a clean stop).
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate(Duration::from_secs(30));
        assert!(status.success(), "exit {status}:\n{}", self.log_text());
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        self.wait(Duration::from_secs(10));
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if started.elapsed() > timeout {
                panic!(
                    "pgseam did not exit within {timeout:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pgseam {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `curl -s -X METHOD [-H 'Content-Type: application/json' -d BODY] URL`; returns the status
/// code and the body.
pub fn curl(method: &str, url: &str, data: Option<&str>) -> (u16, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg(url);
    if let Some(data) = data {
        command.args(["-H", "Content-Type: application/json", "-d", data]);
    }
    let output = command.output().expect("run curl");
    let text = String::from_utf8(output.stdout).expect("UTF-8 body");
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status code"), body.to_owned())
}

/// `GET url`, which must answer 200; returns the body.
pub fn http_get(url: &str) -> String {
    let (code, body) = curl("GET", url, None);
    assert_eq!(code, 200, "GET {url}: {body}");
    body
}

/// Runs `pgseam standalone` to completion (it is expected to fail fast); returns the exit
/// status and stderr.
pub fn run_to_exit(worker: &Path, connectors: &[&Path], timeout: Duration) -> (ExitStatus, String) {
    let dir = worker.parent().unwrap();
    let mut pgseam = Pgseam::start(dir, worker, connectors);
    let status = pgseam.wait(timeout);
    (status, pgseam.log_text())
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The offset stored for connector `name` (its source partition is named after it), read from
/// the file store.
pub fn stored(env: &Env, name: &str) -> Option<ConnectorOffset> {
    FileOffsetStore::open(&env.offsets_path())
        .ok()?
        .get(&offset_key(name, name))
        .ok()?
}

/// The snapshot progress of a stored offset, while a snapshot is resumable.
pub fn progress_of(offset: &Option<ConnectorOffset>) -> Option<SnapshotProgress> {
    match offset {
        Some(ConnectorOffset::SnapshotResumable { progress, .. }) => Some(progress.clone()),
        _ => None,
    }
}

/// Runs `sql` with psql against `127.0.0.1:port` as postgres (`options` go to `PGOPTIONS`,
/// e.g. `-c lock_timeout=1s`); returns whether it succeeded and stdout + stderr. Unlike
/// [`Env::psql`] it needs no `Env`, so writer threads can use it.
pub fn psql_port(port: u16, db: &str, options: &str, sql: &str) -> (bool, String) {
    let out = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", "postgres", "-d", db, "-c", sql])
        .env("PGPASSWORD", "postgres")
        .env("PGOPTIONS", options)
        .output()
        .expect("run psql");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A thread that runs one SQL batch after another against an [`Env`]'s database (a psql
/// session each) until [`SqlWriter::stop`]; a batch that fails fails the test unless its
/// error contains the tolerated text.
pub struct SqlWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl SqlWriter {
    /// Starts running `sql`; every batch must succeed.
    pub fn start(env: &Env, sql: &str) -> SqlWriter {
        SqlWriter::start_tolerating(env, sql, None)
    }

    /// Starts running `sql`; a batch whose error contains `tolerated` (e.g. `deadlock
    /// detected`: it was rolled back) is counted and the next one runs.
    pub fn start_tolerating(env: &Env, sql: &str, tolerated: Option<&'static str>) -> SqlWriter {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (port, database, sql) = (env.pg.port(), env.database.clone(), sql.to_owned());
        let thread = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut batches = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (ok, out) = psql_port(port, &database, "", &sql);
                    assert!(
                        ok || tolerated.is_some_and(|t| out.contains(t)),
                        "writes failed: {out}"
                    );
                    batches += 1;
                }
                batches
            })
        };
        SqlWriter { stop, thread }
    }

    /// Stops after the running batch; returns how many batches ran.
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().expect("writer thread")
    }
}

/// A transaction whose commit record is in the WAL (and so in the replication stream) while
/// the transaction is still running: the setup of the commit-visibility race at a DBLog low
/// watermark (DESIGN.md §2). Its session commits with `synchronous_commit = on` while
/// `synchronous_standby_names` names a standby that does not exist, so the commit waits in
/// `SyncRep` after writing its record, before the transaction leaves the ProcArray.
///
/// [`HeldCommit::allow`] must run before pgseam starts: every other session (pgseam's
/// watermarks, the test's own SQL) commits with `synchronous_commit = local` and never waits.
pub struct HeldCommit {
    session: std::thread::JoinHandle<(bool, String)>,
}

impl HeldCommit {
    /// Lets only the held session wait for the (missing) synchronous standby: the server's
    /// default becomes `synchronous_commit = local`.
    pub fn allow(env: &Env) {
        env.psql("ALTER SYSTEM SET synchronous_commit = 'local'");
        env.psql("SELECT pg_reload_conf()");
    }

    /// Runs `sql` in a session of its own and returns once its commit is written and held.
    pub fn hold(env: &Env, sql: &str) -> HeldCommit {
        env.psql("ALTER SYSTEM SET synchronous_standby_names = 'nonexistent'");
        env.psql("SELECT pg_reload_conf()");
        let (port, database, sql) = (env.pg.port(), env.database.clone(), sql.to_owned());
        let session = std::thread::spawn(move || {
            psql_port(port, &database, "-c synchronous_commit=on", &sql)
        });
        let started = Instant::now();
        while env.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") != "1"
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the commit is not held"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HeldCommit { session }
    }

    /// Waits until `pgseam` logs that a window waits at its low watermark for transactions in
    /// progress, checks that it still has not logged `done` a second later, then releases the
    /// held commit and waits for `done`.
    pub fn release_once_waited_for(
        self,
        env: &Env,
        pgseam: &mut Pgseam,
        done: &str,
        timeout: Duration,
    ) {
        pgseam.wait_for_log(
            "waiting for transactions in progress at the low watermark",
            timeout,
        );
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            !pgseam.log_text().contains(done),
            "{done:?} while a transaction in progress at the low watermark was held:\n{}",
            pgseam.log_text()
        );
        self.release(env);
        pgseam.wait_for_log(done, timeout);
    }

    /// Lets the held commit finish (no standby is waited for any more) and checks it succeeded.
    pub fn release(self, env: &Env) {
        env.psql("ALTER SYSTEM RESET synchronous_standby_names");
        env.psql("SELECT pg_reload_conf()");
        let (ok, out) = self.session.join().expect("held session");
        assert!(ok, "the held transaction failed: {out}");
    }
}

/// Debezium's signaling table (`signal.data.collection=public.dbz_signal`).
pub const SIGNAL_TABLE: &str =
    "CREATE TABLE dbz_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048));";

/// One batch of writes to table `items` (`id bigserial` key, `ver`, `name`), 40 transactions
/// each inserting a row, bumping `ver` of a random key in `1..=keys` and deleting another:
/// what the snapshot tests run under [`SqlWriter`].
pub fn items_writes(keys: i64) -> String {
    format!(
        "
DO $$
DECLARE i int; a bigint; b bigint;
BEGIN
  FOR i IN 1..40 LOOP
    a := 1 + (random() * {max})::int; b := 1 + (random() * {max})::int;
    INSERT INTO items (name) VALUES ('new');
    UPDATE items SET ver = ver + 1 WHERE id = a;
    DELETE FROM items WHERE id = b;
    COMMIT;
  END LOOP;
END $$;
",
        max = keys - 1
    )
}

/// A record's `source.snapshot` (`true`, `last`, `incremental`, ...).
pub fn snapshot_marker(m: &TopicMessage) -> Option<String> {
    m.envelope()
        .and_then(|e| e["source"]["snapshot"].as_str().map(str::to_owned))
}

/// The `id` field of a record's key.
pub fn id_of(m: &TopicMessage) -> Option<i64> {
    m.key_payload()?.get("id")?.as_i64()
}

/// The UTF-8 value of a record header.
pub fn header<'a>(m: &'a TopicMessage, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// A streamed record's position from its headers: `(pgseam.commit_lsn, pgseam.seq)`.
/// `None` for records without them (snapshot reads); panics on a malformed header.
pub fn position(m: &TopicMessage) -> Option<(Lsn, u64)> {
    let commit: Lsn = header(m, "pgseam.commit_lsn")?
        .parse()
        .unwrap_or_else(|_| panic!("bad pgseam.commit_lsn at offset {}", m.offset));
    let seq: u64 = header(m, "pgseam.seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("missing or bad pgseam.seq at offset {}", m.offset));
    Some((commit, seq))
}

/// Per key, the `ver` of the events a consumer applies never goes back, once the records a
/// restart replays (a streamed [`position`] at or before the last one of its partition) are
/// dropped, as the position headers allow. Returns how many replayed records were dropped.
pub fn check_per_key_order(messages: &[TopicMessage]) -> usize {
    let mut last_position: BTreeMap<i32, (Lsn, u64)> = BTreeMap::new();
    let mut versions: BTreeMap<String, i64> = BTreeMap::new();
    let mut replayed = 0;
    for m in messages {
        if let Some(at) = position(m) {
            let last = last_position.entry(m.partition).or_insert((Lsn(0), 0));
            if at <= *last {
                replayed += 1;
                continue;
            }
            *last = at;
        }
        let Some(key) = m.key_payload().map(|k| k.to_string()) else {
            continue;
        };
        let Some(envelope) = m.envelope() else {
            continue;
        };
        match envelope["op"].as_str() {
            Some("d") => {
                versions.remove(&key);
            }
            Some(_) => {
                let ver = envelope["after"]["ver"].as_i64().expect("ver");
                if let Some(previous) = versions.insert(key.clone(), ver) {
                    assert!(
                        ver >= previous,
                        "key {key}: version {ver} after {previous} at partition {} offset {} (op {:?}, snapshot {:?})",
                        m.partition,
                        m.offset,
                        envelope["op"],
                        envelope["source"]["snapshot"]
                    );
                }
            }
            None => {}
        }
    }
    replayed
}
pub mod golden;
