//! Session settings: whatever the server and role defaults, pgseam's sessions run without
//! statement and idle timeouts, so a long snapshot or the idle holder of an exported snapshot
//! is never killed by them; and their TCP sockets have keepalives on, with pgseam's timing.

use crate::common;

use std::time::Duration;

use common::params;
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_testkit::{Postgres, PostgresOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_off_whatever_the_server_says() {
    let pg = Postgres::start_with(
        PostgresOptions::default()
            .conf("statement_timeout = '300ms'")
            .conf("idle_in_transaction_session_timeout = '300ms'")
            .conf("idle_session_timeout = '300ms'"),
    )
    .expect("start PostgreSQL");
    pg.psql(
        "postgres",
        "ALTER ROLE postgres SET statement_timeout = '200ms'",
    )
    .unwrap();
    let p = params(&pg, "127.0.0.1", "postgres", Some("postgres"));
    const SHOW: &str = "SELECT current_setting('statement_timeout'), \
        current_setting('idle_in_transaction_session_timeout'), \
        current_setting('idle_session_timeout')";

    let client = connect_query_session(&p).await.unwrap();
    let row = client.query_one(SHOW, &[]).await.unwrap();
    let got: (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(got, ("0".into(), "0".into(), "0".into()));
    client.batch_execute("BEGIN").await.unwrap();
    // Longer than every server timeout, idle inside a transaction, then a slow statement.
    tokio::time::sleep(Duration::from_millis(800)).await;
    client.batch_execute("SELECT pg_sleep(0.5)").await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    client.batch_execute("SELECT 1").await.unwrap();

    let mut replication = ReplicationConnection::connect(&p).await.unwrap();
    let rows = replication.simple_query(SHOW).await.unwrap();
    assert_eq!(
        rows,
        vec![vec![Some("0".into()), Some("0".into()), Some("0".into())]]
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    replication
        .simple_query("SELECT pg_sleep(0.5)")
        .await
        .unwrap();
    replication.simple_query("IDENTIFY_SYSTEM").await.unwrap();
}

/// The keepalive timers of our established TCP connections to `port`, as `ss -o` shows them
/// (`timer:(keepalive,<time left>,<probes>)`), one entry per connection.
fn keepalive_timers(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args([
            "-tno",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|line| {
            line.split_whitespace()
                .find(|field| field.starts_with("timer:"))
                .unwrap_or("no timer")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_keepalives_are_on() {
    let pg = Postgres::start().expect("start PostgreSQL");
    let p = params(&pg, "127.0.0.1", "postgres", Some("postgres"));
    let _replication = ReplicationConnection::connect(&p).await.unwrap();
    let _client = connect_query_session(&p).await.unwrap();
    let timers = keepalive_timers(pg.port());
    assert_eq!(timers.len(), 2, "two connections: {timers:?}");
    for timer in &timers {
        // The first probe is due within KEEPALIVE_IDLE (60 s), not the kernel's 2 hours.
        assert!(timer.starts_with("timer:(keepalive,"), "{timers:?}");
        let left = timer.trim_start_matches("timer:(keepalive,");
        let seconds: f64 = left
            .split(',')
            .next()
            .and_then(|t| {
                t.strip_suffix("sec")
                    .map(|s| s.parse::<f64>().ok())
                    .unwrap_or_else(|| {
                        t.strip_suffix("ms")
                            .and_then(|ms| ms.parse::<f64>().ok())
                            .map(|ms| ms / 1000.0)
                    })
            })
            .unwrap_or(f64::MAX);
        assert!(
            seconds <= pgseam_connector_pg::connection::KEEPALIVE_IDLE.as_secs_f64(),
            "{timers:?}"
        );
    }
}
