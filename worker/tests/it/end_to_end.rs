//! End to end: PostgreSQL → `pgseam standalone` → Kafka, read back and compared with the
//! source row for row, across a clean restart and a `kill -9`.

use crate::common;

use std::time::Duration;

use common::{Env, Pgseam};

const SCHEMA: &str = "
CREATE TABLE customers (
    id       bigserial PRIMARY KEY,
    name     text NOT NULL,
    email    varchar(100),
    active   boolean DEFAULT true,
    balance  numeric(12,2),
    born     date,
    created  timestamp DEFAULT now(),
    updated  timestamptz DEFAULT now(),
    uid      uuid DEFAULT gen_random_uuid(),
    doc      jsonb,
    meta     json,
    pic      bytea,
    small    smallint,
    qty      integer
);
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id bigint,
    amount      numeric(10,2),
    note        text,
    placed      date
);
CREATE TABLE audit_log (at timestamptz, message text);
";

const SEED: &str = "
INSERT INTO customers (name, email, balance, born, doc, meta, pic, small, qty)
SELECT 'customer ' || g, 'c' || g || '@example.com', (g * 1.25) - 5000, date '1970-01-01' + (g % 20000) - 5000,
       jsonb_build_object('g', g, 'tags', jsonb_build_array('a', 'b')), '{\"k\": [1, 2]}',
       decode(lpad(to_hex(g), 8, '0'), 'hex'), (g % 30000)::smallint, g
FROM generate_series(1, 20000) g;
INSERT INTO orders SELECT g, (g % 20000) + 1, g * 0.5, 'order ' || g, date '2024-01-01' + (g % 365) FROM generate_series(1, 5000) g;
";

/// Many small transactions of every kind, including primary-key changes, TOAST-sized values and
/// NULLs; runs while pgseam snapshots.
const WORKLOAD: &str = "
DO $$
DECLARE i int;
BEGIN
  FOR i IN 1..400 LOOP
    INSERT INTO customers (name, email, balance, born, doc, pic, qty)
      VALUES ('new ' || i, NULL, i * 0.01, NULL, NULL, NULL, i);
    UPDATE customers SET qty = qty + 1, name = name || '+', updated = now() WHERE id = 1 + (random() * 19999)::int;
    UPDATE customers SET doc = jsonb_build_object('big', repeat('x', 9000)) WHERE id = 1 + (random() * 19999)::int;
    DELETE FROM customers WHERE id = 1 + (random() * 19999)::int;
    UPDATE orders SET amount = amount + 1.01 WHERE id = 1 + (random() * 4999)::int;
    IF i % 10 = 0 THEN
      UPDATE orders SET id = id + 1000000 WHERE id = (SELECT min(id) FROM orders WHERE id < 1000000);
    END IF;
    COMMIT;
  END LOOP;
END $$;
";

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn snapshot_with_concurrent_changes_then_restart_and_crash_lose_nothing() {
    let env = Env::start("shop");
    env.psql(SCHEMA);
    env.psql(SEED);
    let (worker, connector) = env.write_configs("shop", &[], &[]);

    // Changes run while the snapshot is taken.
    let workload = {
        let sql = WORKLOAD.to_owned();
        let port = env.pg.port();
        std::thread::spawn(move || {
            let status = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
                .args([
                    "-XAtq",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "shop",
                    "-c",
                    &sql,
                ])
                .env("PGPASSWORD", "postgres")
                .status()
                .expect("run workload");
            assert!(status.success(), "workload failed");
        })
    };
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    workload.join().expect("workload thread");
    let log = pgseam.log_text();
    assert!(
        log.contains("public.audit_log") && log.contains("REPLICA IDENTITY FULL"),
        "no warning naming the table without replica identity:\n{log}"
    );

    let customers = env.assert_topic_equals("shop", "public.customers", true, WAIT);
    let orders = env.assert_topic_equals("shop", "public.orders", true, WAIT);
    let snapshot_reads = customers.state.reads;
    assert!(
        snapshot_reads >= 19_000,
        "snapshot read only {snapshot_reads} customers"
    );
    assert!(
        customers.state.creates > 0 && customers.state.updates > 0 && customers.state.deletes > 0
    );
    assert_eq!(
        customers.state.deletes, customers.state.tombstones,
        "one tombstone per delete"
    );
    assert!(
        orders.state.deletes > 0,
        "primary-key changes must appear as delete + create"
    );

    // A clean stop: delivered, stored, confirmed to the slot.
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "pgseam exited with {status}:\n{}",
        pgseam.log_text()
    );
    assert!(
        pgseam.log_text().contains("final status update sent"),
        "{}",
        pgseam.log_text()
    );
    let confirmed = env.psql("SELECT confirmed_flush_lsn > '0/0' AND NOT active FROM pg_replication_slots WHERE slot_name = 'slot_shop'");
    assert_eq!(confirmed, "t", "slot not confirmed or still active");

    // Changes while pgseam is down are streamed after the restart, with no second snapshot.
    env.psql("INSERT INTO customers (name, qty) SELECT 'offline ' || g, g FROM generate_series(1, 200) g");
    env.psql("UPDATE customers SET email = 'changed@example.com' WHERE id % 97 = 0");
    env.psql("DELETE FROM customers WHERE id % 89 = 0");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    let customers = env.assert_topic_equals("shop", "public.customers", true, WAIT);
    assert_eq!(
        customers.state.reads, snapshot_reads,
        "the restart took a second snapshot"
    );

    // A crash: kill -9 while changes flow. The replay may repeat an ordered suffix, never lose one.
    env.psql("UPDATE orders SET note = 'before crash' WHERE id % 7 = 0");
    pgseam.kill9();
    env.psql("UPDATE orders SET note = 'while down' WHERE id % 5 = 0");
    env.psql("DELETE FROM orders WHERE id % 11 = 0");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    env.psql("INSERT INTO orders VALUES (9000001, 1, 1.00, 'after restart', '2025-01-01')");
    env.assert_topic_equals("shop", "public.orders", true, WAIT);
    let customers = env.assert_topic_equals("shop", "public.customers", true, WAIT);
    assert_eq!(
        customers.state.reads, snapshot_reads,
        "the crash restart took a second snapshot"
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn schemaless_json_with_string_decimals() {
    let env = Env::start("plain");
    env.psql("CREATE TABLE items (id int PRIMARY KEY, price numeric(8,3), label varchar(20), at timestamptz)");
    env.psql("INSERT INTO items SELECT g, g / 7.0, 'item ' || g, '2024-02-29 12:00:00+02' FROM generate_series(1, 50) g");
    let (worker, connector) = env.write_configs(
        "plain",
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "decimal.handling.mode=string",
            "table.include.list=public.items",
            "publication.autocreate.mode=filtered",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("UPDATE items SET price = -1.5 WHERE id = 3; DELETE FROM items WHERE id = 4; INSERT INTO items VALUES (99, 0.001, NULL, NULL)");
    env.psql("UPDATE items SET id = 1005 WHERE id = 5");
    env.assert_topic_equals("plain", "public.items", false, WAIT);
    // Schemaless: the bare payload, no {"schema", "payload"} wrapper.
    let messages = pgseam_integration_tests::read_topics(
        &env.broker.bootstrap_servers(),
        &["plain.public.items".to_owned()],
        1,
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .unwrap();
    // The topic has several partitions: find the first row's record by its key.
    let first = messages
        .iter()
        .find(|m| m.key.as_ref() == Some(&serde_json::json!({"id": 1})))
        .expect("record of id 1");
    let value = first.value.as_ref().unwrap();
    assert!(
        value.get("schema").is_none(),
        "schema wrapper present: {value}"
    );
    assert_eq!(value["op"], "r");
    assert_eq!(value["source"]["snapshot"], "first");
    assert_eq!(value["after"]["price"], "0.143");
    // A primary-key change: delete (+ tombstone) of the old key naming the new one, then a
    // create of the new key naming the old one, as Debezium's headers do.
    let header = |m: &pgseam_integration_tests::TopicMessage, name: &str| {
        m.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let old_key = serde_json::json!({"id": 5});
    let new_key = serde_json::json!({"id": 1005});
    let delete = messages
        .iter()
        .find(|m| m.key.as_ref() == Some(&old_key) && m.op() == Some("d"))
        .expect("delete of the old key");
    assert_eq!(
        header(delete, "__debezium.newkey").as_deref(),
        Some(r#"{"id":1005}"#)
    );
    let create = messages
        .iter()
        .find(|m| m.key.as_ref() == Some(&new_key) && m.op() == Some("c"))
        .expect("create of the new key");
    assert_eq!(
        header(create, "__debezium.oldkey").as_deref(),
        Some(r#"{"id":5}"#)
    );
    let published = env.psql(
        "SELECT string_agg(tablename, ',') FROM pg_publication_tables WHERE pubname = 'pub_plain'",
    );
    assert_eq!(
        published, "items",
        "filtered publication must hold exactly the included table"
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

/// A backlog of many small transactions written while pgseam is stopped arrives as a burst of
/// buffered frames: every one of them reaches the topic (this test caught a draft that drained
/// buffered frames in batches and dropped one at each batch's edge).
#[test]
fn a_backlog_of_small_transactions_arrives_whole() {
    let env = Env::start("burst");
    env.psql("CREATE TABLE burst (id int PRIMARY KEY, v text, n int)");
    env.psql("INSERT INTO burst SELECT g, 'v' || g, 0 FROM generate_series(1, 100) g");
    let (worker, connector) = env.write_configs("burst", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
    // 20,000 one-row transactions: inserts, updates and deletes.
    env.psql(
        "DO $$ BEGIN FOR i IN 1..20000 LOOP
           IF i % 3 = 0 THEN UPDATE burst SET n = n + 1 WHERE id = 1 + i % 100;
           ELSIF i % 3 = 1 THEN INSERT INTO burst VALUES (1000 + i, 'b' || i, i);
           ELSE DELETE FROM burst WHERE id = 1000 + i - 1;
           END IF;
           COMMIT;
         END LOOP; END $$",
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.assert_topic_equals("burst", "public.burst", true, WAIT);
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn stop_during_the_snapshot_is_clean_and_the_restart_resumes_it() {
    let env = Env::start("slow");
    // The snapshot of 300 rows would last about 15 s.
    let (stop_took, first_log) = common::stop_during_a_slow_snapshot(&env, "slow", 300, WAIT);
    assert!(
        stop_took < Duration::from_secs(15),
        "stopping during the snapshot took {stop_took:?}:\n{first_log}"
    );
    // Changes while stopped, then a restart (without the slow override): the interrupted
    // snapshot is resumed, not taken again — the slot stays, streaming starts at the stored
    // position, and the table, not delivered yet, is read in key windows while streaming;
    // the changes made while stopped arrive through the stream.
    env.psql("UPDATE slow SET v = 'changed' WHERE id % 10 = 0; DELETE FROM slow WHERE id % 7 = 0");
    let (worker, connector) = env.write_configs("slow", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let log = pgseam.log_text();
    assert!(
        log.contains("did not complete; resuming it")
            && log.contains("resuming the interrupted initial snapshot while streaming"),
        "{log}"
    );
    env.psql("INSERT INTO slow VALUES (1000, 'after')");
    env.assert_topic_equals("slow", "public.slow", true, WAIT);
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn extract_new_record_state_and_regex_router_flatten_and_route() {
    let env = Env::start("smt");
    env.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    env.psql("INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    let (worker, connector) = env.write_configs(
        "smt",
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "transforms=unwrap,route",
            "transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState",
            "transforms.unwrap.delete.tombstone.handling.mode=rewrite",
            "transforms.unwrap.add.fields=op",
            "transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex=smt\\.public\\.(.*)",
            "transforms.route.replacement=flat.$1",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql("UPDATE t SET v = 'uno' WHERE id = 1; DELETE FROM t WHERE id = 2; INSERT INTO t VALUES (3, 'three')");
    let messages = pgseam_integration_tests::read_topics(
        &env.broker.bootstrap_servers(),
        &["flat.t".to_owned()],
        5,
        Duration::from_millis(700),
        Duration::from_secs(60),
    )
    .unwrap();
    let by_key = |id: i64| -> Vec<serde_json::Value> {
        messages
            .iter()
            .filter(|m| m.key.as_ref() == Some(&serde_json::json!({"id": id})))
            .filter_map(|m| m.value.clone())
            .collect()
    };
    // Flattened rows: the `after` image, `__deleted` (rewrite mode marks every record) and
    // `__op`, no envelope.
    let one = by_key(1);
    assert_eq!(
        one.last().unwrap(),
        &serde_json::json!({"id": 1, "v": "uno", "__deleted": "false", "__op": "u"}),
        "{one:?}"
    );
    assert_eq!(
        one.first().unwrap(),
        &serde_json::json!({"id": 1, "v": "one", "__deleted": "false", "__op": "r"}),
        "{one:?}"
    );
    // A delete is rewritten into the before image with `__deleted: "true"`.
    let two = by_key(2);
    let deleted = two.last().unwrap();
    assert_eq!(deleted["__deleted"], "true", "{two:?}");
    assert_eq!(deleted["__op"], "d", "{two:?}");
    assert_eq!(
        by_key(3),
        vec![serde_json::json!({"id": 3, "v": "three", "__deleted": "false", "__op": "c"})]
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}
