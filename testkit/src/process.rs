//! Processes by PID: running helper programs, signalling, waiting for exit, pid files, and
//! reaping servers whose test process died without running `Drop`.
//!
//! Servers are always stopped by the PID they recorded, never by name: several test binaries, the
//! demo and a developer's own servers share one machine. Signals are sent with `kill(1)` because
//! the workspace forbids `unsafe` and std has no safe `kill(2)`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often exit and readiness are polled. Short, because every test pays it at least once.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How long a process gets after SIGKILL before we call it unkillable.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Name of the file, inside a server's private temp dir, holding the PID of the process that
/// owns the server (the test binary). See [`reap_orphans`].
const OWNER_FILE: &str = "owner.pid";

/// Whether this process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The uid and gid of an OS user, from `/etc/passwd`.
pub(crate) fn os_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Whether `pid` names a live process. Zombies count as dead: a server that is not our child is
/// reaped by whoever adopted it, and our own children are reaped by the caller.
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Format: `pid (comm) S ...`; comm may contain spaces and parentheses, so take the last `)`.
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
    {
        Some('Z') | Some('X') | None => false,
        Some(_) => true,
    }
}

/// Sends `signal` (a name such as `INT`, `TERM`, `KILL`) to `pid`. A process that is already gone
/// is not an error.
pub(crate) fn signal(pid: u32, signal: &str) -> Result<()> {
    let mut cmd = Command::new("kill");
    cmd.arg("-s").arg(signal).arg(pid.to_string());
    match output(&mut cmd) {
        Ok(_) => Ok(()),
        Err(_) if !alive(pid) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Waits until `pid` has exited or `timeout` has passed; returns whether it exited.
pub(crate) fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Stops `pid`: `first` signal, up to `grace` to exit, then SIGKILL.
pub(crate) fn terminate(pid: u32, first: &str, grace: Duration) -> Result<()> {
    if !alive(pid) {
        return Ok(());
    }
    signal(pid, first)?;
    if wait_exit(pid, grace) {
        return Ok(());
    }
    eprintln!("pgseam-testkit: pid {pid} ignored SIG{first} for {grace:?}, sending SIGKILL");
    signal(pid, "KILL")?;
    if wait_exit(pid, KILL_GRACE) {
        Ok(())
    } else {
        Err(Error::Unkillable { pid })
    }
}

/// Renders a command line for error messages.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` to completion with stdin closed, failing on a non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(Error::io(format!("running `{}`", display(cmd))))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: display(cmd),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// The last `lines` lines of a log file, or a note saying why there are none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(log unreadable: {err})"),
    }
}

/// Reads a pid (or port) file: one decimal number, optionally followed by more lines (PostgreSQL's
/// `postmaster.pid` has its PID on the first line).
pub(crate) fn read_number<T: std::str::FromStr>(path: &Path) -> Option<T> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Writes a one-number file (pid or port).
pub(crate) fn write_number(path: &Path, n: impl std::fmt::Display) -> Result<()> {
    fs::write(path, format!("{n}\n")).map_err(Error::io(format!("writing {}", path.display())))
}

/// Env var overriding where servers' temp dirs go (see [`temp_root`]).
pub const TMPDIR_ENV: &str = "PGSEAM_TEST_TMPDIR";

/// The smallest `/dev/shm` we put clusters on; Docker's default is 64 MiB.
const MIN_SHM_BYTES: u64 = 1 << 30;

/// Where servers' temp dirs go: `$PGSEAM_TEST_TMPDIR`, else `/dev/shm` when it is a tmpfs of at
/// least [`MIN_SHM_BYTES`], else `/tmp`. Never `$TMPDIR`: the PostgreSQL server runs as another
/// OS user and must reach the directory. tmpfs because initdb there takes 0.35 s instead of
/// 1.6 s on this machine's ext4 `/tmp`, and tests start many clusters.
pub(crate) fn temp_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(TMPDIR_ENV) {
        return PathBuf::from(dir);
    }
    let big_shm = fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 4
                && fields[1] == "/dev/shm"
                && fields[2] == "tmpfs"
                && fields[3].split(',').any(|o| o.starts_with("rw"))
                && !matches!(tmpfs_size(fields[3]), Some(size) if size < MIN_SHM_BYTES)
        })
    });
    PathBuf::from(if big_shm { "/dev/shm" } else { "/tmp" })
}

/// The `size=` of tmpfs mount options in bytes; `None` when absent (half of RAM) or unreadable.
fn tmpfs_size(options: &str) -> Option<u64> {
    let size = options.split(',').find_map(|o| o.strip_prefix("size="))?;
    let split = size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(size.len());
    let (digits, unit) = size.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    Some(n << shift)
}

/// Creates a private directory `<temp_root>/<prefix>XXXXXX` recording this process as its owner.
pub(crate) fn owned_temp_dir(prefix: &str) -> Result<PathBuf> {
    let root = temp_root();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&root)
        .map_err(Error::io(format!("creating {}/{prefix}*", root.display())))?
        .keep();
    write_number(&dir.join(OWNER_FILE), std::process::id())?;
    Ok(dir)
}

/// Marks a temp dir as no longer owned, so [`reap_orphans`] leaves it alone (kept test data).
pub(crate) fn disown(dir: &Path) {
    let _ = fs::remove_file(dir.join(OWNER_FILE));
}

/// Stops and deletes servers left behind by test processes that died without running `Drop`
/// (killed by a timeout, SIGKILL, or Ctrl-C while PostgreSQL, which `pg_ctl` detaches into its
/// own session, kept running). A directory qualifies when its owner PID is dead; `stop` is given
/// the directory and must stop whatever server it recorded. Best effort: errors are ignored, and
/// two processes reaping the same directory at once is harmless.
pub(crate) fn reap_orphans(prefix: &str, stop: impl Fn(&Path)) {
    let root = temp_root();
    let entries = [root.as_path(), Path::new("/tmp")]
        .into_iter()
        .take(if root == Path::new("/tmp") { 1 } else { 2 })
        .filter_map(|root| fs::read_dir(root).ok())
        .flatten();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let dir = entry.path();
        let Some(owner) = read_number::<u32>(&dir.join(OWNER_FILE)) else {
            continue; // being created, kept on purpose, or not ours
        };
        if alive(owner) {
            continue;
        }
        stop(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Where a server about to start keeps its files, and whether that is a private temp dir (to
/// remove when the server is dropped). With `dir`: that directory, made absolute and created,
/// refused while a `server` recorded there still runs (`running_pid`). Without: a fresh private
/// temp dir named `temp_prefix…`, after stopping (`stop_dir`, best effort) the servers of test
/// processes that died (see [`reap_orphans`]).
pub(crate) fn server_base_dir(
    server: &'static str,
    dir: &Option<PathBuf>,
    temp_prefix: &str,
    running_pid: impl Fn(&Path) -> Option<u32>,
    stop_dir: impl Fn(&Path) -> Result<bool>,
) -> Result<(PathBuf, bool)> {
    match dir {
        Some(dir) => {
            let dir = std::path::absolute(dir)
                .map_err(Error::io(format!("resolving {}", dir.display())))?;
            fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
            if let Some(pid) = running_pid(&dir) {
                return Err(Error::AlreadyRunning { server, dir, pid });
            }
            Ok((dir, false))
        }
        None => {
            reap_orphans(temp_prefix, |dir| {
                let _ = stop_dir(dir);
            });
            Ok((owned_temp_dir(temp_prefix)?, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn terminate_stops_a_sleeping_child() {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        // Reap concurrently, as the zombie would otherwise linger until `wait`.
        let reaper = thread::spawn(move || child.wait());
        terminate(pid, "TERM", Duration::from_secs(5)).unwrap();
        assert!(!reaper.join().unwrap().unwrap().success());
    }

    #[test]
    fn tmpfs_sizes() {
        assert_eq!(tmpfs_size("rw,relatime,size=65536k"), Some(64 << 20));
        assert_eq!(tmpfs_size("rw,size=2g,mode=1777"), Some(2 << 30));
        assert_eq!(tmpfs_size("rw,size=100%"), None);
        assert_eq!(tmpfs_size("rw,relatime"), None);
        assert_eq!(tmpfs_size("rw,size=1024"), Some(1024));
    }

    #[test]
    fn root_exists_in_passwd() {
        assert_eq!(os_user("root"), Some((0, 0)));
        assert_eq!(os_user("no-such-user-pgseam"), None);
    }
}
