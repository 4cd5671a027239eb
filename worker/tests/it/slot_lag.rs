//! `pgseam_slot_lag_bytes` (the server's WAL end as the stream last saw it, minus the LSN
//! confirmed durable) on the REST API's `/metrics`, end to end: 0 once caught up; with the
//! broker stopped (SIGSTOP) and a transaction written, at least that transaction's WAL and no
//! more than the server's own view of the slot's lag; 0 again once the broker continues.
//! And WAL hygiene: WAL written to uncaptured tables does not stay held by the slot.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, Pgseam};

const WAIT: Duration = Duration::from_secs(60);

/// The connector's `pgseam_slot_lag_bytes`.
fn slot_lag(base: &str) -> u64 {
    let output = Command::new("curl")
        .args(["-s", &format!("{base}/metrics")])
        .output()
        .expect("run curl");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let line = text
        .lines()
        .find(|l| l.starts_with("pgseam_slot_lag_bytes{connector=\"lag\""))
        .unwrap_or_else(|| panic!("no pgseam_slot_lag_bytes for connector lag:\n{text}"));
    let value = line.rsplit(' ').next().unwrap_or_default();
    value
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {line}")) as u64
}

fn wait_for(what: &str, base: &str, mut done: impl FnMut(u64) -> bool) -> u64 {
    let started = Instant::now();
    loop {
        let lag = slot_lag(base);
        if done(lag) {
            return lag;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what}: slot lag still {lag} after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal_broker(env: &Env, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &env.broker.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} broker");
}

#[test]
fn slot_lag_bytes_follows_what_is_not_yet_durable() {
    let env = Env::start("lag");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, body text)");
    let (worker, connector) = env.write_configs("lag", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("INSERT INTO t VALUES (0, 'first')");
    wait_for("caught up", &base, |lag| lag == 0);

    signal_broker(&env, "-STOP");
    let before = env.psql("SELECT pg_current_wal_lsn()").trim().to_owned();
    env.psql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
    let written: u64 = env
        .psql(&format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{before}')::bigint"
        ))
        .trim()
        .parse()
        .unwrap();
    let lag = wait_for("broker stopped", &base, |lag| lag >= written);
    let server: u64 = env
        .psql(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = 'slot_lag'",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(
        lag <= server,
        "pgseam reports {lag} bytes behind, the server's slot is {server} behind"
    );
    signal_broker(&env, "-CONT");
    wait_for("broker continued", &base, |lag| lag == 0);
    eprintln!("slot lag: {written} bytes written with the broker stopped, pgseam reported {lag}, server {server}");
    pgseam.terminate(WAIT);
}

/// WAL hygiene: while the captured table is idle and an uncaptured table is written, the
/// server sends no changes, only keepalives; pgseam still moves the slot's
/// `confirmed_flush_lsn` past that WAL, so the server can recycle it.
#[test]
fn idle_captured_tables_do_not_hold_wal_written_elsewhere() {
    let env = Env::start("hygiene");
    env.psql("CREATE TABLE captured (id int PRIMARY KEY, v text)");
    env.psql("CREATE TABLE elsewhere (id int PRIMARY KEY, body text)");
    env.psql("INSERT INTO captured VALUES (1, 'one')");
    let (worker, connector) = env.write_configs(
        "hygiene",
        &[],
        &[
            "table.include.list=public.captured",
            "publication.autocreate.mode=filtered",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    // About 30 MB of WAL that the publication does not carry.
    for round in 0..10 {
        env.psql(&format!(
            "INSERT INTO elsewhere SELECT g, repeat('w', 2000) FROM generate_series({}, {}) g",
            round * 1500 + 1,
            (round + 1) * 1500
        ));
    }
    let written = env.psql("SELECT pg_current_wal_lsn()").trim().to_owned();
    let started = Instant::now();
    loop {
        let (passed, behind) = {
            let row = env.psql(&format!(
                "SELECT confirmed_flush_lsn >= '{written}', \
                        pg_wal_lsn_diff('{written}', confirmed_flush_lsn)::bigint \
                 FROM pg_replication_slots WHERE slot_name = 'slot_hygiene'"
            ));
            let (passed, behind) = row.trim().split_once('|').expect("two columns");
            (passed == "t", behind.to_owned())
        };
        if passed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "confirmed_flush_lsn is still {behind} bytes behind WAL written to an uncaptured table\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Nothing of the uncaptured table reached Kafka.
    assert!(!pgseam.log_text().contains("hygiene.public.elsewhere"));
    pgseam.terminate(WAIT);
}
