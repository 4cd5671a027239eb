//! Schema changes mid-stream, every replica identity, and unchanged TOAST values, end to end:
//! PostgreSQL 15 → `pgseam standalone` → Kafka, read back as Kafka Connect JSON with schemas.

use crate::common;

use std::time::Duration;

use common::{Env, Pgseam};
use pgseam_integration_tests::{read_topics, TopicMessage};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);
const UNAVAILABLE: &str = "__debezium_unavailable_value";

fn read(env: &Env, topic: &str, at_least: usize) -> Vec<TopicMessage> {
    let messages = read_topics(
        &env.broker.bootstrap_servers(),
        &[topic.to_owned()],
        at_least,
        Duration::from_millis(700),
        WAIT,
    )
    .expect("read topic");
    assert!(
        messages.len() >= at_least,
        "{topic}: {} records, expected at least {at_least}",
        messages.len()
    );
    messages
}

/// The change events (no tombstones) of `topic`, in LSN order (topics have several partitions).
fn events(env: &Env, topic: &str, at_least: usize) -> Vec<TopicMessage> {
    let mut events: Vec<TopicMessage> = read(env, topic, at_least)
        .into_iter()
        .filter(|m| m.value.is_some())
        .collect();
    events.sort_by_key(|m| {
        let source = &m.envelope().unwrap()["source"];
        (source["lsn"].as_i64().unwrap_or(0), m.offset)
    });
    events
}

/// The schema of `after`'s field `name`, if the event's schema has it.
fn after_field(message: &TopicMessage, name: &str) -> Option<Value> {
    let fields = message.value.as_ref()?["schema"]["fields"].as_array()?;
    let after = fields.iter().find(|f| f["field"] == "after")?;
    after["fields"]
        .as_array()?
        .iter()
        .find(|f| f["field"] == name)
        .cloned()
}

/// The event whose `after.id` is `id`.
fn event_for(events: &[TopicMessage], id: i64) -> &TopicMessage {
    events
        .iter()
        .find(|m| m.envelope().unwrap()["after"]["id"] == json!(id))
        .unwrap_or_else(|| panic!("no event with after.id = {id}"))
}

#[test]
fn schema_changes_mid_stream_reach_the_next_event() {
    let env = Env::start("ddl");
    env.psql("CREATE TABLE evolve (id int PRIMARY KEY, a text)");
    let (worker, connector) = env.write_configs("ddl", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let topic = "ddl.public.evolve";

    // Each step: the DDL, one insert, and the insert's event must show the new schema. The
    // event is awaited before the next DDL, so the catalog read at the Relation message is the
    // one the step made.
    let steps: [(&str, i64); 6] = [
        ("SELECT 1", 1),
        ("ALTER TABLE evolve ADD COLUMN c int", 2),
        ("ALTER TABLE evolve ALTER COLUMN c SET DEFAULT 7", 3),
        ("UPDATE evolve SET c = 0 WHERE c IS NULL; ALTER TABLE evolve ALTER COLUMN c SET NOT NULL", 4),
        ("ALTER TABLE evolve ALTER COLUMN c TYPE bigint", 5),
        ("ALTER TABLE evolve DROP COLUMN c", 6),
    ];
    let mut seen = 0;
    for (ddl, id) in steps {
        env.psql(ddl);
        env.psql(&format!(
            "INSERT INTO evolve (id, a) VALUES ({id}, 'row {id}')"
        ));
        seen += 1 + usize::from(id == 4) * 2; // step 4's UPDATE of rows 2 and 3
        events(&env, topic, seen);
    }
    let all = events(&env, topic, seen);
    assert_eq!(after_field(event_for(&all, 1), "c"), None);
    assert_eq!(
        after_field(event_for(&all, 2), "c"),
        Some(json!({"type": "int32", "optional": true, "field": "c"}))
    );
    assert_eq!(
        event_for(&all, 2).envelope().unwrap()["after"]["c"],
        Value::Null
    );
    assert_eq!(
        after_field(event_for(&all, 3), "c"),
        Some(json!({"type": "int32", "optional": true, "default": 7, "field": "c"}))
    );
    assert_eq!(
        event_for(&all, 3).envelope().unwrap()["after"]["c"],
        json!(7)
    );
    assert_eq!(
        after_field(event_for(&all, 4), "c"),
        Some(json!({"type": "int32", "optional": false, "default": 7, "field": "c"}))
    );
    assert_eq!(
        after_field(event_for(&all, 5), "c"),
        Some(json!({"type": "int64", "optional": false, "default": 7, "field": "c"}))
    );
    assert_eq!(
        event_for(&all, 5).envelope().unwrap()["after"]["c"],
        json!(7)
    );
    assert_eq!(after_field(event_for(&all, 6), "c"), None);
    assert_eq!(
        event_for(&all, 6).envelope().unwrap()["after"],
        json!({"id": 6, "a": "row 6"})
    );
    // (No row-by-row comparison with the source here: a primary-key table built from the
    // topic keeps the dropped column in rows written before the DROP, as with Debezium.)

    // A primary-key change: the key gets the new column.
    env.psql(
        "ALTER TABLE evolve ADD COLUMN k int NOT NULL DEFAULT 1; \
         ALTER TABLE evolve DROP CONSTRAINT evolve_pkey, ADD PRIMARY KEY (id, k); \
         INSERT INTO evolve (id, a, k) VALUES (7, 'row 7', 2)",
    );
    let all = events(&env, topic, seen + 1);
    let last = event_for(&all, 7);
    assert_eq!(last.key_payload(), Some(&json!({"id": 7, "k": 2})));
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn replica_identities_and_unchanged_toast_as_debezium() {
    let env = Env::start("ident");
    env.psql(
        "CREATE TABLE ri_default (id int PRIMARY KEY, v text, n int);
         CREATE TABLE ri_full (id int PRIMARY KEY, v text, n int);
         ALTER TABLE ri_full REPLICA IDENTITY FULL;
         CREATE TABLE ri_index (id int PRIMARY KEY, code text NOT NULL, v text);
         CREATE UNIQUE INDEX ri_index_code ON ri_index (id, code);
         ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code;
         CREATE TABLE ri_nothing (id int PRIMARY KEY, v text);
         ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
         CREATE TABLE toast_default (id int PRIMARY KEY, small int, big text);
         CREATE TABLE toast_full (id int PRIMARY KEY, small int, big text);
         ALTER TABLE toast_full REPLICA IDENTITY FULL;
         ALTER TABLE toast_default ALTER big SET STORAGE EXTERNAL;
         ALTER TABLE toast_full ALTER big SET STORAGE EXTERNAL;",
    );
    let (worker, connector) = env.write_configs("ident", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let big = "0123456789abcdef".repeat(1000);
    env.psql(&format!(
        "INSERT INTO ri_default VALUES (1, 'one', 1), (2, 'two', 2);
         INSERT INTO ri_full VALUES (1, 'one', 1), (2, 'two', 2);
         INSERT INTO ri_index VALUES (1, 'a', 'one'), (2, 'b', 'two');
         INSERT INTO ri_nothing VALUES (1, 'one');
         INSERT INTO toast_default VALUES (1, 1, '{big}');
         INSERT INTO toast_full VALUES (1, 1, '{big}');
         UPDATE ri_default SET v = 'ONE', n = 11 WHERE id = 1;
         DELETE FROM ri_default WHERE id = 2;
         UPDATE ri_full SET v = 'ONE', n = 11 WHERE id = 1;
         DELETE FROM ri_full WHERE id = 2;
         UPDATE ri_index SET v = 'ONE' WHERE id = 1;
         UPDATE ri_index SET code = 'bb' WHERE id = 2;
         DELETE FROM ri_index WHERE id = 2;
         UPDATE toast_default SET small = 2 WHERE id = 1;
         UPDATE toast_full SET small = 2 WHERE id = 1;"
    ));
    // NOTHING: PostgreSQL itself refuses updates of a published table without identity.
    let refused = env
        .pg
        .psql("ident", "UPDATE ri_nothing SET v = 'ONE' WHERE id = 1");
    let message = refused
        .expect_err("update without replica identity")
        .to_string();
    assert!(
        message.contains("does not have a replica identity"),
        "{message}"
    );

    let envelope = |m: &TopicMessage| m.envelope().unwrap().clone();
    let ops = |events: &[TopicMessage]| -> Vec<String> {
        events.iter().map(|m| m.op().unwrap().to_owned()).collect()
    };

    // DEFAULT: update without before; delete with the key and nulls.
    let e = events(&env, "ident.public.ri_default", 4);
    assert_eq!(ops(&e), ["c", "c", "u", "d"]);
    assert_eq!(envelope(&e[2])["before"], Value::Null);
    assert_eq!(
        envelope(&e[2])["after"],
        json!({"id": 1, "v": "ONE", "n": 11})
    );
    assert_eq!(
        envelope(&e[3])["before"],
        json!({"id": 2, "v": null, "n": null})
    );

    // FULL: the whole old row.
    let e = events(&env, "ident.public.ri_full", 4);
    assert_eq!(ops(&e), ["c", "c", "u", "d"]);
    assert_eq!(
        envelope(&e[2])["before"],
        json!({"id": 1, "v": "one", "n": 1})
    );
    assert_eq!(
        envelope(&e[3])["before"],
        json!({"id": 2, "v": "two", "n": 2})
    );

    // INDEX: no before when the identity columns did not change; the old identity columns
    // (others null) when they did, and on delete.
    let e = events(&env, "ident.public.ri_index", 5);
    assert_eq!(ops(&e), ["c", "c", "u", "u", "d"]);
    assert_eq!(envelope(&e[2])["before"], Value::Null);
    assert_eq!(
        envelope(&e[3])["before"],
        json!({"id": 2, "code": "b", "v": null})
    );
    assert_eq!(
        envelope(&e[3])["after"],
        json!({"id": 2, "code": "bb", "v": "two"})
    );
    assert_eq!(
        envelope(&e[4])["before"],
        json!({"id": 2, "code": "bb", "v": null})
    );

    // NOTHING: inserts flow.
    let e = events(&env, "ident.public.ri_nothing", 1);
    assert_eq!(ops(&e), ["c"]);

    // Unchanged TOAST: Debezium's placeholder under DEFAULT, the real value under FULL.
    let e = events(&env, "ident.public.toast_default", 2);
    assert_eq!(envelope(&e[0])["after"]["big"], json!(big));
    assert_eq!(
        envelope(&e[1])["after"],
        json!({"id": 1, "small": 2, "big": UNAVAILABLE})
    );
    let e = events(&env, "ident.public.toast_full", 2);
    assert_eq!(
        envelope(&e[1])["after"],
        json!({"id": 1, "small": 2, "big": big})
    );
    assert_eq!(
        envelope(&e[1])["before"],
        json!({"id": 1, "small": 1, "big": big})
    );

    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
}
