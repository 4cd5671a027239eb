//! A throwaway PostgreSQL 15 cluster.
//!
//! ```text
//! <base>/                 chown'd to the server user, 0755
//!   owner.pid             PID of the test process (temp dirs only; see process::reap_orphans)
//!   pwfile                the superuser password, only while initdb runs
//!   data/                 the cluster (initdb -D)
//!   postgres.log          server log (pg_ctl -l)
//!   postgres.pid          postmaster PID, copied from data/postmaster.pid for shell scripts
//!   postgres.port         the TCP port, for shell scripts
//!   .s.PGSQL.<port>       the unix socket (unix_socket_directories = <base>)
//! ```
//!
//! PostgreSQL refuses to run as root, so when we are root every server-side program (initdb,
//! pg_ctl) runs as the OS user `postgres` via `runuser`; the base dir lives under `/dev/shm` or
//! `/tmp` (see `process::temp_root`), never in root's home, which that user cannot enter. `pg_ctl start -w` daemonises the postmaster into its own
//! session and returns once it accepts connections; from then on the server is known only by the
//! PID in `data/postmaster.pid`, and it is stopped by that PID: SIGINT (fast shutdown), then
//! SIGKILL after [`STOP_GRACE`].
//!
//! Authentication: `trust` on the unix socket (psql, setup), `scram-sha-256` on TCP 127.0.0.1
//! for the code under test, which must therefore do real password authentication, as in
//! production. The superuser is `postgres` / `postgres`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::port::{free_port, says_address_in_use, HOST};
use crate::process;

/// Where Debian's postgresql-15 puts the server binaries. Override with `PGSEAM_PG_BIN`.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The superuser, both OS user (when we are root) and database role.
pub const USER: &str = "postgres";

/// The superuser's password for TCP connections.
pub const PASSWORD: &str = "postgres";

/// Env var: when `1`, test clusters' directories are kept after `Drop` (the server still stops).
pub const KEEP_ENV: &str = "PGSEAM_KEEP_TEST_DATA";

/// `pg_ctl start -t`: initdb'd clusters start in well under a second; a loaded CI box with two
/// cores running parallel test binaries can be much slower.
const START_TIMEOUT_SECS: u32 = 60;

/// How long a fast shutdown may take before SIGKILL. Fast shutdown disconnects clients and
/// writes a checkpoint; with fsync=off that is quick, but walsenders wait for their client.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Prefix of temp dirs, also how orphaned clusters are recognised.
const TEMP_PREFIX: &str = "pgseam-pg-";

/// Settings every cluster gets, before [`PostgresOptions::conf`] lines (later lines win).
const BASE_CONF: &[&str] = &[
    "listen_addresses = '127.0.0.1'",
    "wal_level = logical",
    "max_replication_slots = 20",
    "max_wal_senders = 20",
    // Durability is not under test; speed is welcome.
    "fsync = off",
    "shared_buffers = 128MB",
    // Deterministic output regardless of the machine's zone.
    "timezone = 'UTC'",
    "log_timezone = 'UTC'",
];

/// How to start a cluster. `Default` gives a throwaway cluster on a free port.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// TCP port; `None` picks a free one (and retries once if it is taken meanwhile).
    pub port: Option<u16>,
    /// Extra `postgresql.conf` lines, appended after the defaults, e.g. `wal_level = replica`.
    pub conf: Vec<String>,
    /// A persistent base directory instead of a temp dir: it is created and initdb'd if needed,
    /// restarted if it already holds a cluster, and never removed by this crate.
    pub dir: Option<PathBuf>,
    /// `pg_hba.conf` lines for TCP connections, replacing the default `host all all
    /// 127.0.0.1/32 scram-sha-256` (the unix socket stays `trust` for psql). `None` keeps the
    /// default.
    pub hba: Option<Vec<String>>,
}

impl PostgresOptions {
    /// Sets the TCP port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Adds a `postgresql.conf` line such as `"wal_level = replica"`.
    pub fn conf(mut self, line: impl Into<String>) -> Self {
        self.conf.push(line.into());
        self
    }

    /// Sets the TCP `pg_hba.conf` lines (see the field), e.g.
    /// `"hostssl all all 127.0.0.1/32 scram-sha-256"`.
    pub fn hba<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.hba = Some(lines.into_iter().map(Into::into).collect());
        self
    }

    /// Uses a persistent base directory (see the field).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// A running PostgreSQL 15 cluster, stopped (and, if it lives in a temp dir, deleted) on drop.
#[derive(Debug)]
pub struct Postgres {
    base: PathBuf,
    port: u16,
    pid: u32,
    /// The base dir is ours to delete.
    temp: bool,
    /// `Drop` leaves the server running (pgseam-dev).
    detached: bool,
}

impl Postgres {
    /// Starts a throwaway cluster with the default options.
    pub fn start() -> Result<Postgres> {
        Postgres::start_with(PostgresOptions::default())
    }

    /// Starts a cluster as `opts` says.
    pub fn start_with(opts: PostgresOptions) -> Result<Postgres> {
        let server_user = server_user()?;
        let (base, temp) =
            process::server_base_dir("postgres", &opts.dir, TEMP_PREFIX, running_pid, stop_dir)?;
        // Constructed before initdb so that a failure from here on still cleans up.
        let mut pg = Postgres {
            base,
            port: 0,
            pid: 0,
            temp,
            detached: false,
        };
        if let Some((uid, gid)) = server_user {
            std::os::unix::fs::chown(&pg.base, Some(uid), Some(gid))
                .map_err(Error::io(format!("chown postgres {}", pg.base.display())))?;
        }
        fs::set_permissions(&pg.base, fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("chmod 755 {}", pg.base.display())))?;

        if !pg.data_dir().join("PG_VERSION").exists() {
            pg.initdb(server_user, &opts.conf)?;
        } else if !opts.conf.is_empty() {
            pg.append_conf(&opts.conf)?;
        }
        if let Some(lines) = &opts.hba {
            pg.write_hba(lines)?;
        }
        pg.launch(opts.port)?;
        Ok(pg)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP host, always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// The superuser role, `postgres`.
    pub fn user(&self) -> &'static str {
        USER
    }

    /// The superuser's password, `postgres`.
    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// A key=value connection string for `tokio-postgres` (TCP, password authentication).
    pub fn connection_string(&self, db: &str) -> String {
        format!(
            "host={HOST} port={} user={USER} password={PASSWORD} dbname={db}",
            self.port
        )
    }

    /// The postmaster PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The cluster directory (`initdb -D`).
    pub fn data_dir(&self) -> PathBuf {
        self.base.join("data")
    }

    /// The server log.
    pub fn log_path(&self) -> PathBuf {
        self.base.join("postgres.log")
    }

    /// The base directory: data dir, log, pid files and unix socket.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// Runs `sql` (a script: several statements and psql meta-commands are fine) with psql as
    /// the superuser over the unix socket and returns its output: unaligned, tuples only, one
    /// row per line, `|` between columns, the final newline removed. Stops at the first error,
    /// which is returned with psql's stderr.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let mut cmd = Command::new(pg_bin("psql"));
        cmd.arg("-h")
            .arg(&self.base)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-XAtq",
                "-f",
                "-",
            ]);
        clear_pg_env(&mut cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io(format!("running `{}`", process::display(&cmd))))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = sql.to_owned();
        // A writer thread, so a large script cannot deadlock against a large result.
        let writer = thread::spawn(move || stdin.write_all(script.as_bytes()));
        let out = child
            .wait_with_output()
            .map_err(Error::io("waiting for psql"))?;
        let written = writer.join().expect("psql stdin writer panicked");
        if !out.status.success() {
            return Err(Error::Command {
                command: format!("{} <<< {sql:?}", process::display(&cmd)),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        written.map_err(Error::io("writing the script to psql"))?;
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
    }

    /// Replaces the TCP lines of `pg_hba.conf` (the unix socket stays `trust`). On a running
    /// server, call [`Postgres::reload`] afterwards.
    pub fn write_hba(&self, tcp_lines: &[String]) -> Result<()> {
        let path = self.data_dir().join("pg_hba.conf");
        let mut text = String::from("# pgseam-testkit\nlocal all all trust\n");
        for line in tcp_lines {
            text.push_str(line);
            text.push('\n');
        }
        fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))
    }

    /// `SELECT pg_reload_conf()`, then waits until the postmaster has re-read its files (a
    /// reload is asynchronous): `pg_conf_load_time()` of a new session has moved.
    pub fn reload(&self) -> Result<()> {
        let before = self.psql("postgres", "SELECT pg_conf_load_time()")?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        for _ in 0..100 {
            if self.psql("postgres", "SELECT pg_conf_load_time()")? != before {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Startup {
            server: "postgres",
            reason: "the configuration reload did not happen within 5 s".into(),
            log_tail: process::log_tail(&self.log_path(), 30),
            log: self.log_path(),
        })
    }

    /// `CREATE DATABASE "<name>"`.
    pub fn create_database(&self, name: &str) -> Result<()> {
        let quoted = name.replace('"', "\"\"");
        self.psql("postgres", &format!("CREATE DATABASE \"{quoted}\""))
            .map(drop)
    }

    /// Stops the server (fast shutdown) and starts it again on the same port, keeping the data:
    /// for tests of reconnection and of what survives a restart.
    pub fn restart(&mut self) -> Result<()> {
        self.restart_with(ShutdownMode::Fast)
    }

    /// [`Postgres::restart`] with the given shutdown mode (`pg_ctl restart -m fast|immediate`):
    /// an immediate shutdown aborts every backend without a checkpoint, so the next start runs
    /// crash recovery, as after a power loss.
    pub fn restart_with(&mut self, mode: ShutdownMode) -> Result<()> {
        match mode {
            ShutdownMode::Fast => {
                stop_dir(&self.base)?;
            }
            ShutdownMode::Immediate => {
                if let Some(pid) = running_pid(&self.base) {
                    process::terminate(pid, "QUIT", STOP_GRACE)?;
                }
            }
        }
        self.launch(Some(self.port))
    }

    /// Stops the server and deletes a temp dir now, reporting errors that `Drop` would swallow.
    pub fn stop(mut self) -> Result<()> {
        self.detached = true; // Drop has nothing left to do
        stop_dir(&self.base)?;
        self.cleanup();
        Ok(())
    }

    /// Leaves the server running when this value is dropped (pgseam-dev); stop it later with
    /// [`stop_dir`].
    pub fn detach(mut self) {
        self.detached = true;
    }

    fn initdb(&self, server_user: Option<(u32, u32)>, conf: &[String]) -> Result<()> {
        let pwfile = self.base.join("pwfile");
        fs::write(&pwfile, format!("{PASSWORD}\n"))
            .map_err(Error::io(format!("writing {}", pwfile.display())))?;
        if let Some((uid, gid)) = server_user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(Error::io(format!("chown {}", pwfile.display())))?;
        }
        let mut cmd = server_command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]);
        let result = process::output(&mut cmd);
        let _ = fs::remove_file(&pwfile);
        result?;

        let socket_dir = self.base.display().to_string().replace('\'', "''");
        let mut lines: Vec<String> = BASE_CONF.iter().map(|s| s.to_string()).collect();
        lines.push(format!("unix_socket_directories = '{socket_dir}'"));
        lines.extend(conf.iter().cloned());
        self.append_conf(&lines)
    }

    fn append_conf(&self, lines: &[String]) -> Result<()> {
        let path = self.data_dir().join("postgresql.conf");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        let mut text = String::from("\n# pgseam-testkit\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .map_err(Error::io(format!("appending to {}", path.display())))
    }

    /// `pg_ctl start -w` on `port` (or a free port, retried once if it gets taken).
    fn launch(&mut self, port: Option<u16>) -> Result<()> {
        let attempts = if port.is_some() { 1 } else { 2 };
        let log = self.log_path();
        for attempt in 1..=attempts {
            let port = match port {
                Some(p) => p,
                None => free_port()?,
            };
            let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let mut cmd = server_command("pg_ctl");
            cmd.arg("start")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-s", "-t", &START_TIMEOUT_SECS.to_string()])
                .arg("-o")
                .arg(format!("-p {port}"));
            let reason = match process::output(&mut cmd) {
                Ok(_) => match process::read_number(&self.data_dir().join("postmaster.pid")) {
                    Some(pid) => {
                        self.port = port;
                        self.pid = pid;
                        process::write_number(&self.base.join("postgres.pid"), pid)?;
                        process::write_number(&self.base.join("postgres.port"), port)?;
                        return Ok(());
                    }
                    None => "pg_ctl succeeded but data/postmaster.pid is unreadable".to_owned(),
                },
                Err(Error::Command { stderr, .. }) => stderr.trim().to_owned(),
                Err(err) => return Err(err),
            };
            let new_log = fs::read(&log)
                .map(|b| String::from_utf8_lossy(&b[log_start as usize..]).into_owned())
                .unwrap_or_default();
            if attempt < attempts && says_address_in_use(&new_log) {
                continue;
            }
            return Err(Error::Startup {
                server: "postgres",
                reason: format!("port {port}: {reason}"),
                log_tail: process::log_tail(&log, 30),
                log,
            });
        }
        unreachable!("the last attempt returns")
    }

    fn cleanup(&mut self) {
        if !self.temp {
            return;
        }
        if std::env::var(KEEP_ENV).as_deref() == Ok("1") {
            process::disown(&self.base);
            eprintln!(
                "pgseam-testkit: kept PostgreSQL data in {}",
                self.base.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Err(err) = stop_dir(&self.base) {
            eprintln!(
                "pgseam-testkit: stopping PostgreSQL in {}: {err}",
                self.base.display()
            );
        }
        self.cleanup();
    }
}

/// How [`Postgres::restart_with`] stops the server: the postmaster's signals behind
/// `pg_ctl stop -m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    /// SIGINT: roll back open transactions, disconnect clients, checkpoint, exit.
    Fast,
    /// SIGQUIT: every process exits at once; the next start recovers from the WAL.
    Immediate,
}

/// Stops the cluster whose base dir is `base`, by the PID in `data/postmaster.pid`. Returns
/// whether a server was running. Used by `Drop`, `pgseam-dev postgres stop` and the orphan reaper.
pub fn stop_dir(base: &Path) -> Result<bool> {
    match running_pid(base) {
        Some(pid) => {
            process::terminate(pid, "INT", STOP_GRACE)?;
            let _ = fs::remove_file(base.join("postgres.pid"));
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The PID of the live postmaster of `base`, checking that the process really serves that data
/// dir (a stale pid file may name an unrelated process).
fn running_pid(base: &Path) -> Option<u32> {
    let data = base.join("data");
    let pid = process::read_number(&data.join("postmaster.pid"))?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let serves = String::from_utf8_lossy(&cmdline).contains(&*data.to_string_lossy());
    (serves && process::alive(pid)).then_some(pid)
}

/// The OS user to run the server as: `Some(uid, gid)` of `postgres` when we are root, `None`
/// (ourselves) otherwise.
fn server_user() -> Result<Option<(u32, u32)>> {
    if !process::is_root() {
        return Ok(None);
    }
    process::os_user(USER)
        .map(Some)
        .ok_or(Error::NoPostgresUser)
}

fn pg_bin(program: &str) -> PathBuf {
    let dir = std::env::var_os("PGSEAM_PG_BIN").unwrap_or_else(|| DEFAULT_PG_BIN.into());
    Path::new(&dir).join(program)
}

/// A command for a server-side program, run as `postgres` when we are root.
fn server_command(program: &str) -> Command {
    let mut cmd = if process::is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--"]).arg(pg_bin(program));
        cmd
    } else {
        Command::new(pg_bin(program))
    };
    clear_pg_env(&mut cmd);
    cmd
}

/// Removes libpq and server environment (PGDATA, PGPORT, PGOPTIONS, ...) so that only our
/// explicit arguments count.
fn clear_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") && !key.to_string_lossy().starts_with("PGSEAM") {
            cmd.env_remove(key);
        }
    }
}
