//! Heartbeats end to end: `heartbeat.interval.ms` records in Debezium's format on
//! `__debezium-heartbeat.<topic.prefix>`, and `heartbeat.action.query` run on each beat.

use crate::common;

use std::time::Duration;

use common::{Env, Pgseam};
use pgseam_integration_tests::read_topics;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn heartbeats_in_debezium_format_and_action_query_runs() {
    let env = Env::start("beat");
    env.psql("CREATE TABLE heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL)");
    let (worker, connector) = env.write_configs(
        "hb",
        &[],
        &[
            "heartbeat.interval.ms=1000",
            "heartbeat.action.query=INSERT INTO heartbeat VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = now()",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);

    let beats = read_topics(
        &env.broker.bootstrap_servers(),
        &["__debezium-heartbeat.hb".to_owned()],
        3,
        Duration::from_millis(600),
        WAIT,
    )
    .expect("read the heartbeat topic");
    assert!(beats.len() >= 3, "{} heartbeats", beats.len());
    let first = &beats[0];
    assert!(first.headers.is_empty(), "{:?}", first.headers);
    assert_eq!(
        first.key,
        Some(json!({
            "schema": {
                "type": "struct",
                "fields": [{"type": "string", "optional": false, "field": "serverName"}],
                "optional": false,
                "name": "io.debezium.connector.common.ServerNameKey",
                "version": 1
            },
            "payload": {"serverName": "hb"}
        }))
    );
    let value = first.value.as_ref().expect("a value");
    assert_eq!(
        value["schema"],
        json!({
            "type": "struct",
            "fields": [{"type": "int64", "optional": false, "field": "ts_ms"}],
            "optional": false,
            "name": "io.debezium.connector.common.Heartbeat",
            "version": 1
        })
    );
    let ts_ms = value["payload"]["ts_ms"].as_i64().expect("ts_ms");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now_ms - 120_000..=now_ms).contains(&ts_ms), "{ts_ms}");

    // The action query ran, and its changes were captured like any other.
    assert_eq!(env.psql("SELECT count(*) FROM heartbeat"), "1");
    // (The row changes every beat, so it is checked by its events, not by comparison.)
    let changes = read_topics(
        &env.broker.bootstrap_servers(),
        &["hb.public.heartbeat".to_owned()],
        3,
        Duration::from_millis(600),
        WAIT,
    )
    .expect("read the heartbeat table's topic");
    let ops: Vec<&str> = changes.iter().filter_map(|m| m.op()).collect();
    assert!(
        ops.contains(&"c") && ops.iter().filter(|op| **op == "u").count() >= 2,
        "{ops:?}"
    );
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
}
