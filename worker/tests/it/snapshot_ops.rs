//! The operational side of the initial snapshot, end to end: `snapshot.throttle.*` limits the
//! measured rate (against a server whose statement, idle and idle-in-transaction timeouts are
//! one second, shorter than the throttle's waits and pauses), progress is logged with its
//! fields when stderr is not a terminal, and the snapshot metrics on `/metrics` count the
//! tables, rows and chunks. Two connectors in one worker snapshot the same tables at once: one
//! limited in rows/s, one in bytes/s with a pause between chunks. The null sink keeps Kafka out
//! of the timing.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{http_get, Env, Pgseam};
use pgseam_testkit::PostgresOptions;

const BIG_ROWS: u64 = 20_000;
const SMALL_ROWS: u64 = 300;
const ROWS_PER_SECOND: u64 = 5_000;
const BYTES_PER_SECOND: u64 = 200_000;

/// The pids of the processes below `pid` (children first), from `/proc/<pid>/task/*/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// The log line with `message` of the connector whose sessions are `pgseam-<connector>`.
fn line<'a>(log: &'a str, message: &str, connector: &str) -> &'a str {
    log.lines()
        .find(|l| {
            l.contains(message)
                && field(l, "application_name") == Some(&format!("pgseam-{connector}"))
        })
        .unwrap_or_else(|| panic!("no `{message}` line of {connector}:\n{log}"))
}

/// The value of `name=value` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split_whitespace().next()
}

/// The sample of `metric` whose labels contain `labels`.
fn sample(metrics: &str, metric: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {metric} with {labels}:\n{metrics}"))
}

#[test]
fn throttled_snapshots_report_progress_and_metrics() {
    // Server defaults that would kill a waiting reader or the idle exported-snapshot
    // connection if pgseam's sessions did not turn them off.
    let env = Env::start_with(
        "ops",
        PostgresOptions::default()
            .conf("statement_timeout = '1s'")
            .conf("idle_in_transaction_session_timeout = '1s'")
            .conf("idle_session_timeout = '1s'"),
    );
    env.psql(&format!(
        "SET statement_timeout = 0;
         CREATE TABLE big (id bigint PRIMARY KEY, payload text);
         INSERT INTO big SELECT g, 'secret-payload-' || g FROM generate_series(1, {BIG_ROWS}) g;
         CREATE TABLE small (id int PRIMARY KEY, note text);
         INSERT INTO small SELECT g, 'secret-note-' || g FROM generate_series(1, {SMALL_ROWS}) g;
         ANALYZE big; ANALYZE small;"
    ));
    // Nothing listens on port 1: the null sink never needs a broker.
    let worker_extra = ["pgseam.sink=null", "bootstrap.servers=127.0.0.1:1"];
    let (worker, rows_connector) = env.write_configs(
        "rows",
        &worker_extra,
        &[
            "snapshot.max.threads=2",
            // Each COPY of 10000 rows takes 2 s at this rate: longer than statement_timeout.
            "snapshot.chunk.rows=10000",
            &format!("snapshot.throttle.rows.per.second={ROWS_PER_SECOND}"),
            "snapshot.progress.interval.ms=500",
        ],
    );
    let (_, bytes_connector) = env.write_configs(
        "bytes",
        &worker_extra,
        &[
            "snapshot.max.threads=2",
            "snapshot.chunk.rows=5000",
            &format!("snapshot.throttle.bytes.per.second={BYTES_PER_SECOND}"),
            // Longer than idle_in_transaction_session_timeout: a reader sits idle in its
            // transaction between chunks.
            "snapshot.throttle.chunk.pause.ms=1500",
        ],
    );
    let mut pgseam = Pgseam::start(
        env.dir.path(),
        &worker,
        &[&rows_connector, &bytes_connector],
    );
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    let started = std::time::Instant::now();
    while pgseam.log_text().matches("streaming started").count() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "both connectors should stream:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = pgseam.log_text();

    // Throttling: a lower bound on time (the buckets allow a 0.1 s burst) and an upper bound on
    // the rate the engine measured. No tight upper bound on time: the machine may be slow.
    let completed = line(&log, "snapshot completed", "rows");
    let rows: u64 = field(completed, "rows").unwrap().parse().unwrap();
    let seconds: f64 = field(completed, "seconds").unwrap().parse().unwrap();
    let rate: f64 = field(completed, "rows_per_second")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rows, BIG_ROWS + SMALL_ROWS);
    let minimum = (rows - ROWS_PER_SECOND / 10) as f64 / ROWS_PER_SECOND as f64;
    println!("rows/s limit {ROWS_PER_SECOND}: {rows} rows in {seconds:.2} s = {rate} rows/s (at least {minimum:.2} s)");
    assert!(seconds >= minimum * 0.98, "{completed}");
    assert!(rate <= ROWS_PER_SECOND as f64 * 1.05, "{completed}");

    let completed = line(&log, "snapshot completed", "bytes");
    let bytes: u64 = field(completed, "bytes").unwrap().parse().unwrap();
    let seconds: f64 = field(completed, "seconds").unwrap().parse().unwrap();
    let rate: f64 = field(completed, "bytes_per_second")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(field(completed, "rows"), Some("20300"), "{completed}");
    // At least the COPY data of 20300 rows of (bigint, ~20 characters).
    assert!(bytes > 20_300 * 30, "{completed}");
    let minimum = (bytes - BYTES_PER_SECOND / 10) as f64 / BYTES_PER_SECOND as f64;
    println!("bytes/s limit {BYTES_PER_SECOND}: {bytes} bytes in {seconds:.2} s = {rate} bytes/s (at least {minimum:.2} s)");
    assert!(seconds >= minimum * 0.98, "{completed}");
    assert!(rate <= BYTES_PER_SECOND as f64 * 1.05, "{completed}");

    // Progress logs with their fields, at least a few in ~4 s at a 0.5 s interval.
    let progress: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("snapshot progress") && field(l, "application_name") == Some("pgseam-rows")
        })
        .collect();
    assert!(progress.len() >= 3, "{log}");
    let big = progress
        .iter()
        .find(|l| field(l, "table") == Some("public.big"))
        .unwrap_or_else(|| panic!("no progress line for public.big:\n{log}"));
    for name in [
        "rows",
        "estimated_rows",
        "bytes",
        "rate",
        "eta_seconds",
        "chunks_done",
        "chunks_total",
        "total_rows",
        "total_estimated_rows",
        "total_bytes",
        "tables_done",
        "tables_total",
        "total_rate",
        "total_eta_seconds",
        "elapsed_seconds",
    ] {
        let value = field(big, name).unwrap_or_else(|| panic!("no {name} in {big}"));
        assert!(value.parse::<u64>().is_ok(), "{name}={value} in {big}");
    }
    assert_eq!(field(big, "estimated_rows"), Some("20000"), "{big}");
    assert_eq!(field(big, "chunks_total"), Some("2"), "{big}");
    assert_eq!(field(big, "tables_total"), Some("2"), "{big}");
    // The rate a progress line reports stays under the limit (plus the burst).
    for line in &progress {
        let rate: u64 = field(line, "total_rate").unwrap().parse().unwrap();
        assert!(rate <= ROWS_PER_SECOND * 11 / 10, "{line}");
    }
    assert!(
        !log.contains("secret-"),
        "a row value reached the log:\n{log}"
    );

    // Snapshot metrics of each connector.
    let metrics = http_get(&format!("{base}/metrics"));
    for (name, big_chunks) in [("rows", 2.0), ("bytes", 4.0)] {
        let snapshot = format!("name=\"{name}\",context=\"snapshot\"");
        let gauge =
            |metric: &str| sample(&metrics, &format!("debezium_metrics_{metric}"), &snapshot);
        assert_eq!(gauge("TotalTableCount"), 2.0);
        assert_eq!(gauge("RemainingTableCount"), 0.0);
        assert_eq!(gauge("SnapshotCompleted"), 1.0);
        assert_eq!(gauge("SnapshotRunning"), 0.0);
        assert_eq!(gauge("SnapshotAborted"), 0.0);
        assert_eq!(gauge("SnapshotPaused"), 0.0);
        assert!(gauge("SnapshotDurationInSeconds") >= 3.0, "{metrics}");
        assert_eq!(
            gauge("TotalNumberOfEventsSeen"),
            (BIG_ROWS + SMALL_ROWS) as f64
        );
        for (table, count, chunks) in [
            ("public.big", BIG_ROWS, big_chunks),
            ("public.small", SMALL_ROWS, 1.0),
        ] {
            let labels = format!("{snapshot},table=\"{table}\"");
            let value =
                |metric: &str| sample(&metrics, &format!("debezium_metrics_{metric}"), &labels);
            assert_eq!(value("RowsScanned"), count as f64, "{name} {table}");
            assert_eq!(value("TableChunkCounts"), chunks, "{name} {table}");
            assert_eq!(
                value("TableChunksCompletedCounts"),
                chunks,
                "{name} {table}"
            );
        }
    }

    pgseam.stop_cleanly();
}

/// On a terminal (here a pseudo-terminal from util-linux `script`), the snapshot draws a bar
/// per table and a total, with "≈" estimates, rates and ETAs, then a summary line per table.
#[test]
fn a_terminal_gets_progress_bars() {
    let env = Env::start("bars");
    env.psql(
        "CREATE TABLE big (id bigint PRIMARY KEY, payload text);
         INSERT INTO big SELECT g, 'secret-payload-' || g FROM generate_series(1, 20000) g;
         ANALYZE big;",
    );
    let (worker, connector) = env.write_configs(
        "bars",
        &["pgseam.sink=null", "bootstrap.servers=127.0.0.1:1"],
        // About 2 s: several redraws.
        &["snapshot.throttle.rows.per.second=10000"],
    );
    let screen = env.dir.path().join("screen.txt");
    let command = format!(
        "{} standalone {} {}",
        common::PGSEAM,
        worker.display(),
        connector.display()
    );
    let mut script = Command::new("script")
        .args(["-q", "-f", "-c", &command])
        .arg(&screen)
        .env("RUST_LOG", "info")
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run util-linux script");
    let started = std::time::Instant::now();
    let text = loop {
        let text =
            String::from_utf8_lossy(&std::fs::read(&screen).unwrap_or_default()).into_owned();
        if text.contains("streaming started") {
            break text;
        }
        if let Some(status) = script.try_wait().expect("script status") {
            panic!("pgseam under script exited ({status}):\n{text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no `streaming started` on the terminal:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // `script` runs pgseam in a session of its own on the pseudo-terminal: killing `script`
    // alone would leave pgseam running. Stop pgseam (SIGTERM to script's descendants), then
    // `script` ends with it.
    for pid in descendants(script.id()) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let stopping = std::time::Instant::now();
    while script.try_wait().expect("script status").is_none() {
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = script.kill();
            let _ = script.wait();
            panic!("pgseam under script did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for needle in [
        "pgseam-bars total",
        "public.big",
        "/ ≈20,000 rows",
        "rows/s",
        "ETA",
        // The table's summary line once done, and the snapshot's.
        "public.big: 20,000 rows",
        "pgseam-bars snapshot: 20,000 rows",
    ] {
        assert!(text.contains(needle), "{needle:?} not drawn:\n{text}");
    }
    // Bars replace the progress logs on a terminal.
    assert!(!text.contains("snapshot progress"), "{text}");
    assert!(
        !text.contains("secret-"),
        "a row value reached the terminal"
    );
}
