//! `pgseam verify` against a real PostgreSQL and broker: it passes on a clean pipeline (also
//! while the source keeps changing), and finds a record deleted from the topic's view, a
//! source row changed while pgseam is stopped, a duplicate (allowed) and an out-of-order record;
//! a small `--memory-budget` (the spill path) reports exactly what the in-memory path reports.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Env, Pgseam, PGSEAM};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const SCHEMA: &str = "
CREATE TABLE items (
    id       bigint PRIMARY KEY,
    name     text NOT NULL,
    price    numeric(12,2),
    ratio    double precision,
    born     date,
    at       timestamp(6),
    atz      timestamptz,
    during   interval,
    flags    boolean[],
    tags     text[],
    doc      jsonb,
    pic      bytea,
    uid      uuid,
    addr     inet,
    state    varchar(10)
);
CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b), note text);
CREATE TABLE loose (x int, y text);
ALTER TABLE loose REPLICA IDENTITY FULL;
";

const SEED: &str = "
INSERT INTO items
SELECT g, 'item ' || g, g * 1.25 - 300, g / 7.0, date '2000-01-01' + g, timestamp '2020-01-01 00:00:00.123456' + g * interval '1 minute',
       timestamptz '2021-06-01 12:00:00+02' + g * interval '1 second', g * interval '1 hour 3 seconds',
       ARRAY[g % 2 = 0, NULL], ARRAY['a' || g, 'b'], jsonb_build_object('g', g), decode(lpad(to_hex(g), 6, '0'), 'hex'),
       md5(g::text)::uuid, ('10.0.' || (g % 256) || '.1')::inet, 'st' || (g % 5)
FROM generate_series(1, 3000) g;
INSERT INTO pairs SELECT g % 50, g, 'note ' || g FROM generate_series(1, 500) g;
INSERT INTO loose SELECT g % 10, 'y' || g FROM generate_series(1, 200) g;
";

const CHANGES: &str = "
INSERT INTO items (id, name, price) SELECT g, 'late ' || g, g FROM generate_series(5001, 5200) g;
UPDATE items SET price = price + 1, tags = ARRAY['changed'] WHERE id % 13 = 0;
DELETE FROM items WHERE id % 17 = 0;
UPDATE items SET id = id + 100000 WHERE id BETWEEN 20 AND 25;
UPDATE pairs SET note = NULL WHERE a = 3;
DELETE FROM pairs WHERE b % 9 = 0;
UPDATE loose SET y = y || '!' WHERE x = 4;
DELETE FROM loose WHERE x = 5;
INSERT INTO loose VALUES (1, 'y1'), (1, 'y1');
";

const WAIT: Duration = Duration::from_secs(90);

fn verify(worker: &Path, connector: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(PGSEAM)
        .arg("verify")
        .arg(worker)
        .arg(connector)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run pgseam verify");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The report from the first table on (the comparison point and slot lines differ per run).
fn tables_part(report: &str) -> &str {
    report.find("\n\n").map_or(report, |i| &report[i..])
}

/// Produces a copy of `message` to its partition, with its headers; `seq` replaces the
/// `pgseam.seq` header.
fn produce_copy(
    producer: &BaseProducer,
    topic: &str,
    message: &pgseam_integration_tests::TopicMessage,
    seq: Option<&[u8]>,
) {
    let key = message.key.as_ref().map(|k| serde_json::to_vec(k).unwrap());
    let value = message
        .value
        .as_ref()
        .map(|v| serde_json::to_vec(v).unwrap());
    let mut headers = rdkafka::message::OwnedHeaders::new();
    for (k, v) in &message.headers {
        let v = match seq {
            Some(seq) if k == "pgseam.seq" => seq,
            _ => v.as_slice(),
        };
        headers = headers.insert(rdkafka::message::Header {
            key: k,
            value: Some(v),
        });
    }
    let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic)
        .partition(message.partition)
        .headers(headers);
    if let Some(key) = &key {
        record = record.key(key);
    }
    if let Some(value) = &value {
        record = record.payload(value);
    }
    producer
        .send(record)
        .map_err(|(e, _)| e)
        .expect("produce a copy");
    producer.flush(Duration::from_secs(10)).expect("flush");
}

#[test]
fn verify_passes_on_a_clean_pipeline_and_finds_injected_differences() {
    let env = Env::start("verifydb");
    env.psql(SCHEMA);
    env.psql(SEED);
    let (worker, connector) = env.write_configs("vfy", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(CHANGES);
    let items = env.psql("SELECT count(*) FROM items");

    // Clean: verify waits for pgseam to pass its comparison point, while the source keeps
    // changing (those later changes are past the point and must not count).
    let busy = {
        let port = env.pg.port();
        std::thread::spawn(move || {
            for i in 0..40 {
                let sql = format!(
                    "UPDATE items SET ratio = {i} WHERE id = {}; INSERT INTO pairs VALUES (1000, {i}, 'busy')",
                    1 + i * 7
                );
                let status = Command::new("/usr/lib/postgresql/15/bin/psql")
                    .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
                    .arg(port.to_string())
                    .args(["-U", "postgres", "-d", "verifydb", "-c", &sql])
                    .env("PGPASSWORD", "postgres")
                    .status()
                    .expect("run psql");
                assert!(status.success());
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    busy.join().expect("busy thread");
    assert_eq!(
        code,
        Some(0),
        "verify failed on a clean pipeline:\n{out}\n{err}"
    );
    assert!(out.contains("all 3 tables match"), "{out}");
    assert!(out.contains("public.items (vfy.public.items)  OK"), "{out}");
    assert!(
        out.contains(&format!("rows: source {items}, topic {items}")),
        "{out}"
    );

    // The marker end works too, and --tables narrows the comparison.
    let (code, out, err) = verify(
        &worker,
        &connector,
        &["--end", "marker", "--tables", "public.items,public.loose"],
    );
    assert_eq!(code, Some(0), "verify --end marker failed:\n{out}\n{err}");
    assert!(out.contains("all 2 tables match"), "{out}");
    assert!(!out.contains("public.pairs"), "{out}");

    // A bogus tombstone for an existing key: the key is gone from the topic's view.
    let bootstrap = env.broker.bootstrap_servers();
    let messages = pgseam_integration_tests::read_topics(
        &bootstrap,
        &["vfy.public.pairs".to_owned()],
        1,
        Duration::from_millis(1500),
        WAIT,
    )
    .expect("read pairs topic");
    let victim = messages
        .iter()
        .find(|m| {
            m.op() == Some("r") && m.key_payload() == Some(&serde_json::json!({"a": 7, "b": 107}))
        })
        .expect("snapshot record of pairs (7, 107)");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let key = serde_json::to_vec(victim.key.as_ref().expect("key")).unwrap();
    producer
        .send(
            BaseRecord::<Vec<u8>, ()>::to("vfy.public.pairs")
                .partition(victim.partition)
                .key(&key),
        )
        .map_err(|(e, _)| e)
        .expect("produce tombstone");
    producer.flush(Duration::from_secs(10)).expect("flush");
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    assert_eq!(code, Some(1), "verify missed the tombstone:\n{out}\n{err}");
    assert!(
        out.contains("public.pairs (vfy.public.pairs)  DIFFERENT"),
        "{out}"
    );
    assert!(
        out.contains(r#"keys missing from the topic: 1, e.g. {"a":7,"b":107}"#),
        "{out}"
    );
    assert!(out.contains("1 of 3 tables differ"), "{out}");

    // A source row changed while pgseam is stopped: not in Kafka yet, so it differs.
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
    env.psql("UPDATE items SET name = 'while stopped' WHERE id = 42");
    env.psql("INSERT INTO loose VALUES (77, 'while stopped')");
    let (code, out, err) = verify(&worker, &connector, &["--no-wait", "--idle-ms", "3000"]);
    assert_eq!(
        code,
        Some(1),
        "verify missed the offline change:\n{out}\n{err}"
    );
    assert!(
        out.contains(r#"keys whose row differs: 1, e.g. {"id":42}"#),
        "{out}"
    );
    assert!(out.contains("rows missing from the topic: 1"), "{out}");
    assert!(out.contains("confirmed only up to"), "{out}");
    // Without --no-wait, verify refuses to compare while pgseam is behind.
    let (code, out, err) = verify(&worker, &connector, &["--wait-ms", "2000"]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(err.contains("confirmed only up to"), "{err}");

    // Restarted, pgseam streams the offline changes; rewriting the tombstoned row brings its
    // key back: clean again.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
    env.psql("UPDATE pairs SET note = 'back' WHERE a = 7 AND b = 107");
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    assert_eq!(code, Some(0), "verify after the restart:\n{out}\n{err}");
    assert!(out.contains("all 3 tables match"), "{out}");
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

/// Without schemas in the JSON and with the decimal/time modes changed, verify renders the
/// source the connector's way and still matches.
#[test]
fn verify_follows_the_converter_settings() {
    let env = Env::start("verifymodes");
    env.psql(SCHEMA);
    env.psql(SEED);
    let (worker, connector) = env.write_configs(
        "vfm",
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "decimal.handling.mode=string",
            "time.precision.mode=connect",
            "binary.handling.mode=hex",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(CHANGES);
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("all 3 tables match"), "{out}");
    assert!(out.contains("duplicate events: 0\n"), "{out}");
    assert!(
        out.contains("order violations: 0 out of order, 0 keys end behind\n"),
        "{out}"
    );
    // The spill path: a tiny budget forces the topic side to disk, split into key-hash ranges;
    // the report is the same. The progress line goes to stderr.
    let spill_dir = env.dir.path().join("spill");
    std::fs::create_dir(&spill_dir).expect("create the spill dir");
    let (code, spilled, err) = verify(
        &worker,
        &connector,
        &[
            "--idle-ms",
            "3000",
            "--memory-budget",
            "4K",
            "--spill-dir",
            spill_dir.to_str().expect("UTF-8 path"),
            "--progress",
            "always",
        ],
    );
    assert_eq!(code, Some(0), "{spilled}\n{err}");
    assert_eq!(tables_part(&spilled), tables_part(&out), "{err}");
    assert!(err.contains("verify spilled to disk"), "{err}");
    assert!(err.contains(&spill_dir.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read_dir(&spill_dir).expect("spill dir").count(),
        0,
        "verify removes its spill files"
    );
    assert!(err.contains("reading topics: "), "{err}");
    assert!(err.contains("comparing source rows: "), "{err}");

    // A duplicate of the last record of a partition (as an at-least-once replay writes it, with
    // its position headers): counted as a duplicate, and harmless for a Primary Key table.
    let bootstrap = env.broker.bootstrap_servers();
    let messages = pgseam_integration_tests::read_topics(
        &bootstrap,
        &["vfm.public.items".to_owned()],
        1,
        Duration::from_millis(1500),
        WAIT,
    )
    .expect("read items topic");
    let last = messages
        .iter()
        .filter(|m| m.partition == messages[0].partition)
        .max_by_key(|m| m.offset)
        .expect("a record");
    assert!(
        last.headers.iter().any(|(k, _)| k == "pgseam.commit_lsn"),
        "the last record is streamed"
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    produce_copy(&producer, "vfm.public.items", last, None);
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let duplicated = serde_json::to_string(last.key_payload().expect("key")).unwrap();
    assert!(
        out.contains(&format!("duplicate events: 1, e.g. {duplicated}\n")),
        "{out}"
    );
    assert!(out.contains("all 3 tables match"), "{out}");

    // An out-of-order record: the snapshot row of id 13 (updated since) again, at a position
    // pgseam never wrote (a new seq), after the update. Per-key order is violated, and the
    // key ends at the old row.
    let snapshot_row = messages
        .iter()
        .find(|m| m.op() == Some("r") && m.key_payload() == Some(&serde_json::json!({"id": 13})))
        .expect("snapshot record of items 13");
    produce_copy(&producer, "vfm.public.items", snapshot_row, Some(b"999999"));
    let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains(r#"order violations: 1 out of order, 1 keys end behind, e.g. {"id":13}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"keys whose row differs: 1, e.g. {"id":13}"#),
        "{out}"
    );
    assert!(out.contains("1 of 3 tables differ"), "{out}");
    // The spill path finds the same.
    let (code, spilled, err) = verify(
        &worker,
        &connector,
        &["--idle-ms", "3000", "--memory-budget", "4K"],
    );
    assert_eq!(code, Some(1), "{spilled}\n{err}");
    assert_eq!(tables_part(&spilled), tables_part(&out), "{err}");

    // A change pgseam has not seen yet is a difference.
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
    env.psql("DELETE FROM items WHERE id = 1000");
    let (code, out, err) = verify(&worker, &connector, &["--no-wait", "--idle-ms", "3000"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains(r#"keys only in the topic: 1, e.g. {"id":1000}"#),
        "{out}"
    );
}

/// The number after `duplicate events: ` in a report (its first table).
fn duplicates(report: &str) -> u64 {
    let at = report
        .find("duplicate events: ")
        .unwrap_or_else(|| panic!("no duplicate count in:\n{report}"));
    report[at + "duplicate events: ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("bad duplicate count in:\n{report}"))
}

/// A real crash replay: kill -9 while a large transaction is being delivered; the restarted
/// pgseam sends that transaction again from its stored offset. verify recognises the repeated
/// records as duplicates (not order violations), the table matches, and the spill path reports
/// the same.
#[test]
fn verify_recognises_a_crash_replay_as_duplicates() {
    let env = Env::start("verifycrash");
    env.psql("CREATE TABLE big (id bigint PRIMARY KEY, v int, pad text)");
    env.psql("INSERT INTO big SELECT g, 0, repeat('x', 40) FROM generate_series(1, 20000) g");
    let (worker, connector) = env.write_configs("vfc", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    let mut replayed = 0;
    for round in 1..=6u64 {
        // One transaction of 20 000 records, then a crash while it is (probably) in flight: a
        // later round waits longer, in case the crash came before anything was delivered.
        env.psql(&format!("UPDATE big SET v = {round}"));
        std::thread::sleep(Duration::from_millis(100 * round));
        pgseam.kill9();
        pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
        pgseam.wait_for_log("resuming streaming from stored offset", WAIT);
        let (code, out, err) = verify(&worker, &connector, &["--idle-ms", "3000"]);
        assert_eq!(code, Some(0), "round {round}:\n{out}\n{err}");
        assert!(out.contains("all 1 tables match"), "{out}");
        assert!(
            out.contains("order violations: 0 out of order, 0 keys end behind\n"),
            "round {round}: a crash replay counted as an order violation:\n{out}"
        );
        replayed = duplicates(&out);
        eprintln!("round {round}: {replayed} duplicate events");
        if replayed > 0 {
            let (code, spilled, err) = verify(
                &worker,
                &connector,
                &["--idle-ms", "3000", "--memory-budget", "64K"],
            );
            assert_eq!(code, Some(0), "{spilled}\n{err}");
            assert_eq!(tables_part(&spilled), tables_part(&out), "{err}");
            break;
        }
    }
    assert!(
        replayed > 0,
        "no crash in 6 rounds landed while a transaction was in flight:\n{}",
        pgseam.log_text()
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}
