//! End to end through the pgseam binary: TRUNCATE events (`skipped.operations=none`), logical
//! decoding messages on `<prefix>.message` (with a prefix filter and pgseam's reserved
//! `__pgseam.` prefix), and transaction metadata (`provide.transaction.metadata=true`) whose
//! END counts match the events on the table topics.
//!
//! Topics are created with one partition, so that the oracle applies each table topic in
//! commit order (a TRUNCATE has no key and would land on any partition).

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::{Env, Pgseam};
use pgseam_integration_tests::read_topics;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

const SCHEMA: &str = "
CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE TABLE other (id int PRIMARY KEY, v text);
INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, 50) g;
INSERT INTO other SELECT g, 'seed ' || g FROM generate_series(1, 20) g;
";

const CHANGES: &str = "
INSERT INTO items VALUES (1001, 'a');
BEGIN;
INSERT INTO items VALUES (1002, 'b');
SELECT pg_logical_emit_message(true, 'app', 'in a transaction');
UPDATE other SET v = 'changed' WHERE id = 1;
DELETE FROM items WHERE id = 2;
COMMIT;
SELECT pg_logical_emit_message(false, 'nontx', '\\x00ff'::bytea);
SELECT pg_logical_emit_message(false, 'skipme.noise', 'filtered out');
SELECT pg_logical_emit_message(false, '__pgseam.slot_ev', 'pgseam''s own');
TRUNCATE items, other;
INSERT INTO items VALUES (2001, 'after truncate');
INSERT INTO other VALUES (2001, 'after truncate');
";

fn payload(v: &Value) -> &Value {
    v.get("payload").unwrap_or(v)
}

#[test]
fn truncate_messages_and_transaction_metadata_end_to_end() {
    let env = Env::start("ev");
    env.psql(SCHEMA);
    let (worker, connector) = env.write_configs(
        "ev",
        &[],
        &[
            "skipped.operations=none",
            "provide.transaction.metadata=true",
            "message.prefix.exclude.list=skipme\\..*",
            "topic.creation.default.partitions=1",
            "topic.creation.default.replication.factor=1",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(CHANGES);

    // The table topics, applied with the oracle (t clears the table), equal the source.
    for table in ["items", "other"] {
        let comparison = env.assert_topic_equals("ev.public", table, true, WAIT);
        assert_eq!(comparison.state.truncates, 1, "{table}: one TRUNCATE event");
    }

    let bootstrap = env.broker.bootstrap_servers();
    let read = |topic: &str, min: usize| {
        read_topics(
            &bootstrap,
            &[topic.to_owned()],
            min,
            Duration::from_millis(800),
            WAIT,
        )
        .unwrap()
    };

    // TRUNCATE: key null, before/after null, op t, one per table.
    let items = read("ev.public.items", 1);
    let truncates: Vec<_> = items.iter().filter(|m| m.op() == Some("t")).collect();
    assert_eq!(truncates.len(), 1);
    let t = truncates[0].envelope().unwrap();
    assert!(truncates[0].key.is_none());
    assert!(t["before"].is_null() && t["after"].is_null());
    assert_eq!(t["source"]["table"], "items");

    // Messages: the filtered and the reserved prefixes never appear.
    let messages = read("ev.message", 2);
    let prefixes: Vec<&str> = messages
        .iter()
        .map(|m| m.key_payload().unwrap()["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["app", "nontx"], "{messages:?}");
    let app = messages[0].envelope().unwrap();
    assert_eq!(app["op"], "m");
    assert_eq!(app["message"]["content"], "aW4gYSB0cmFuc2FjdGlvbg==");
    assert!(app["source"]["txId"].is_i64());
    assert!(app["transaction"]["id"].is_string());
    let nontx = messages[1].envelope().unwrap();
    assert_eq!(nontx["message"]["content"], "AP8=");
    assert!(nontx["source"]["txId"].is_null());
    assert!(nontx["transaction"].is_null());

    // Transaction metadata: BEGIN/END pairs; each END's counts equal the events on the table
    // and message topics that carry that transaction's id.
    let tx_records = read("ev.transaction", 2);
    let mut data = read("ev.public.items", 1);
    data.extend(read("ev.public.other", 1));
    data.extend(messages.iter().cloned());
    let mut per_tx: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for m in &data {
        let Some(env) = m.envelope() else { continue };
        let Some(id) = env["transaction"]["id"].as_str() else {
            continue;
        };
        let tx = id.split(':').next().unwrap().to_owned();
        let collection = if m.topic == "ev.message" {
            "message".to_owned()
        } else {
            format!("public.{}", env["source"]["table"].as_str().unwrap())
        };
        *per_tx.entry(tx).or_default().entry(collection).or_default() += 1;
    }
    let mut begins = 0;
    let mut ends = 0;
    for record in &tx_records {
        let v = payload(record.value.as_ref().unwrap());
        let tx = v["id"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned();
        match v["status"].as_str().unwrap() {
            "BEGIN" => {
                begins += 1;
                assert!(v["event_count"].is_null());
            }
            "END" => {
                ends += 1;
                let mut listed = BTreeMap::new();
                for c in v["data_collections"].as_array().unwrap() {
                    let name = c["data_collection"].as_str().unwrap();
                    let name = if name.contains("LogicalDecodingMessageId@") {
                        "message"
                    } else {
                        name
                    };
                    *listed.entry(name.to_owned()).or_insert(0) +=
                        c["event_count"].as_u64().unwrap();
                }
                let expected = per_tx.get(&tx).cloned().unwrap_or_default();
                assert_eq!(listed, expected, "END of {tx}: {v}");
                assert_eq!(
                    v["event_count"].as_u64().unwrap(),
                    expected.values().sum::<u64>(),
                    "END of {tx}"
                );
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(begins, ends);
    // The data transactions after the stream started: insert, the mixed one, the truncate,
    // two inserts.
    assert!(ends >= 5, "{ends} END records");
    let mixed = per_tx
        .values()
        .find(|c| c.contains_key("message"))
        .expect("the transaction with the message");
    assert_eq!(
        mixed,
        &BTreeMap::from([
            ("message".to_owned(), 1),
            ("public.items".to_owned(), 2),
            ("public.other".to_owned(), 1)
        ])
    );
    pgseam.terminate(WAIT);
}
