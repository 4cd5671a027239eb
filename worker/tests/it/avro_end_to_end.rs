//! End to end with Confluent's AvroConverter: PostgreSQL → `pgseam standalone` → Kafka, with
//! the schemas registered in the Schema Registry stand-in (pgseam-testkit; no real registry
//! installs here) behind HTTP basic authentication. The topics are read back with the oracle's
//! Avro path (schema fetched by id over HTTP, apache-avro decoding, none of pgseam's converter
//! code) and compared with the source row for row; an `ALTER TABLE … ADD COLUMN` while
//! streaming must register a second version of the value schema. Transaction metadata
//! (`provide.transaction.metadata=true`) and a logical decoding message go through the same
//! converter: their topics are decoded the same way.

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, Pgseam};
use pgseam_integration_tests::{compare_table_decoded, Comparison, Decoding};
use pgseam_testkit::SchemaRegistry;

const SCHEMA: &str = "
CREATE TABLE items (
    id       bigint PRIMARY KEY,
    name     text NOT NULL,
    price    numeric(10,2),
    flag     boolean,
    born     date,
    created  timestamp DEFAULT now(),
    updated  timestamptz,
    uid      uuid DEFAULT gen_random_uuid(),
    pic      bytea,
    small    smallint DEFAULT 7
);
-- Deletes then carry every column in `before`. Under REPLICA IDENTITY DEFAULT, pgseam writes
-- null for the NOT NULL column `name` in a delete's `before`, which the Avro schema (like the
-- Connect schema) does not allow; Debezium substitutes a fallback there. Reported, not fixed
-- here.
ALTER TABLE items REPLICA IDENTITY FULL;
INSERT INTO items (id, name, price, flag, born, updated, pic, small)
SELECT g, 'item ' || g, g * 1.25, g % 2 = 0, date '2000-01-01' + g, now(),
       decode(lpad(to_hex(g), 4, '0'), 'hex'), NULL
FROM generate_series(1, 500) g;
";

const WAIT: Duration = Duration::from_secs(90);

fn wait_until_equal(env: &Env, decoding: &Decoding, deadline: Duration) -> Comparison {
    let started = Instant::now();
    let run_sql = |sql: &str| -> anyhow::Result<String> { Ok(env.pg.psql(&env.database, sql)?) };
    loop {
        let comparison = compare_table_decoded(
            &run_sql,
            &env.broker.bootstrap_servers(),
            "public.items",
            "avroshop.public.items",
            true,
            Duration::from_millis(700),
            Duration::from_secs(30),
            decoding,
        )
        .expect("compare topic with source");
        if comparison.differences.is_empty() || started.elapsed() > deadline {
            return comparison;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn avro_records_match_the_source_and_schema_changes_register_new_versions() {
    let env = Env::start("avroshop");
    env.psql(SCHEMA);
    let registry = SchemaRegistry::start_with_basic_auth("reg", "s3cret").expect("registry");
    let url = registry.url().to_owned();
    let lines: Vec<String> = ["key", "value"]
        .iter()
        .flat_map(|role| {
            [
                format!("{role}.converter=io.confluent.connect.avro.AvroConverter"),
                format!("{role}.converter.schema.registry.url={url}"),
                format!("{role}.converter.basic.auth.credentials.source=USER_INFO"),
                format!("{role}.converter.basic.auth.user.info=reg:s3cret"),
                // Nulls stay nulls (AvroConverter's default writes a column default instead,
                // as Kafka Connect's `Struct.get` does), so the topic compares with the source.
                format!("{role}.converter.ignore.default.for.nullables=true"),
            ]
        })
        .collect();
    let mut extra: Vec<&str> = lines.iter().map(String::as_str).collect();
    extra.push("provide.transaction.metadata=true");
    let (worker, connector) = env.write_configs("avroshop", &[], &extra);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(
        "UPDATE items SET price = price + 1, flag = NULL WHERE id % 7 = 0;
         DELETE FROM items WHERE id % 11 = 0;
         INSERT INTO items (id, name) VALUES (1001, 'new');
         UPDATE items SET id = id + 5000 WHERE id = 3;
         BEGIN;
         INSERT INTO items (id, name) VALUES (1002, 'in tx');
         SELECT pg_logical_emit_message(true, 'avro-e2e', 'hello');
         COMMIT;",
    );
    let decoding = Decoding::Avro {
        registry_url: url.replace("http://", "http://reg:s3cret@"),
    };
    let first = wait_until_equal(&env, &decoding, WAIT);
    assert!(
        first.differences.is_empty(),
        "items differ:\n{}\npgseam log:\n{}",
        first.differences.join("\n"),
        pgseam.log_text()
    );
    assert!(
        first.state.reads >= 500,
        "{} snapshot reads",
        first.state.reads
    );
    assert!(first.state.deletes > 0 && first.state.deletes == first.state.tombstones);

    // A schema change while streaming: a second version of the value schema.
    env.psql(
        "ALTER TABLE items ADD COLUMN note text DEFAULT 'n';
         UPDATE items SET note = 'note ' || id;",
    );
    let second = wait_until_equal(&env, &decoding, WAIT);
    assert!(
        second.differences.is_empty(),
        "items differ after ALTER TABLE:\n{}",
        second.differences.join("\n")
    );
    // The message and the transaction metadata, decoded by the oracle.
    let topics = [
        "avroshop.message".to_owned(),
        "avroshop.transaction".to_owned(),
    ];
    let records = pgseam_integration_tests::read_topics_decoded(
        &env.broker.bootstrap_servers(),
        &topics,
        3,
        Duration::from_millis(700),
        Duration::from_secs(30),
        &decoding,
    )
    .expect("read the message and transaction topics");
    let message = records
        .iter()
        .find(|r| r.topic == "avroshop.message")
        .expect("a record on avroshop.message");
    assert_eq!(
        message.key.as_ref().unwrap(),
        &serde_json::json!({"prefix": "avro-e2e"})
    );
    let value = message.value.as_ref().unwrap();
    assert_eq!(value["op"], "m");
    assert_eq!(
        value["message"],
        serde_json::json!({"prefix": "avro-e2e", "content": "aGVsbG8="})
    );
    let tx_id = value["transaction"]["id"]
        .as_str()
        .expect("a transaction block")
        .to_owned();
    let xid = tx_id.split(':').next().unwrap().to_owned();
    let end = records
        .iter()
        .filter(|r| r.topic == "avroshop.transaction")
        .filter_map(|r| r.value.as_ref())
        .find(|v| {
            v["status"] == "END"
                && v["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&format!("{xid}:")))
        })
        .expect("the END record of the message's transaction");
    assert_eq!(end["event_count"], 2, "{end}");
    let collections = end["data_collections"].as_array().unwrap();
    assert!(
        collections
            .iter()
            .any(|c| c["data_collection"] == "public.items" && c["event_count"] == 1),
        "{end}"
    );
    assert!(records.iter().any(|r| r.topic == "avroshop.transaction"
        && r.value
            .as_ref()
            .is_some_and(|v| v["status"] == "BEGIN" && v["event_count"].is_null())));

    let subjects = registry.subjects();
    assert_eq!(
        subjects.keys().cloned().collect::<Vec<_>>(),
        [
            "avroshop.message-key",
            "avroshop.message-value",
            "avroshop.public.items-key",
            "avroshop.public.items-value",
            "avroshop.transaction-key",
            "avroshop.transaction-value"
        ]
    );
    assert_eq!(subjects["avroshop.public.items-key"].len(), 1);
    assert_eq!(
        subjects["avroshop.public.items-value"].len(),
        2,
        "{subjects:?}"
    );
    let v2 = registry
        .schema(subjects["avroshop.public.items-value"][1])
        .unwrap();
    assert!(
        v2.contains(r#"{"name":"note","type":[{"type":"string","connect.default":"n"},"null"],"default":"n"}"#),
        "{v2}"
    );
    let log = pgseam.log_text();
    assert!(
        !log.contains("s3cret"),
        "the registry password reached the log"
    );
    pgseam.terminate(Duration::from_secs(30));
}
