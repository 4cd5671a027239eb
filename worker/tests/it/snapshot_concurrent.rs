//! The parallel snapshot under load: 150k rows read by 4 readers in 10k-row chunks while
//! writers insert, update and delete throughout; the topics, applied as primary-key tables,
//! equal the source. While the snapshot runs, INSERT/UPDATE/DELETE and plain VACUUM proceed,
//! and VACUUM FULL and ALTER COLUMN TYPE wait for the snapshot's ACCESS SHARE locks.
//!
//! A `snapshot.select.statement.overrides` statement that sleeps per row keeps the snapshot
//! open long enough to look at its locks deterministically (and tests overrides).

use crate::common;

use std::time::Duration;

use common::{psql_port, Env, Pgseam, SqlWriter};
use pgseam_integration_tests::read_topics;

const SCHEMA: &str = "
CREATE TABLE items (
    id      bigserial PRIMARY KEY,
    grp     int NOT NULL,
    name    text,
    amount  numeric(12,2),
    updated timestamptz DEFAULT now(),
    note    varchar(20),
    payload bytea
);
CREATE TABLE slow (id int PRIMARY KEY, v text);
CREATE TABLE tiny (id int PRIMARY KEY, v text);
CREATE TABLE skipped (id int PRIMARY KEY);
INSERT INTO items (grp, name, amount, note, payload)
SELECT g % 100, 'item ' || g, g * 0.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 't' || (g % 7) END, decode(lpad(to_hex(g), 8, '0'), 'hex')
FROM generate_series(1, 150000) g;
INSERT INTO slow SELECT g, 'slow ' || g FROM generate_series(1, 300) g;
INSERT INTO tiny VALUES (1, 'only row');
INSERT INTO skipped SELECT generate_series(1, 10);
";

/// One batch of small transactions; the writer thread repeats it until told to stop.
const WRITES: &str = "
DO $$
DECLARE i int; a bigint; b bigint; c bigint;
BEGIN
  FOR i IN 1..50 LOOP
    a := 1 + (random() * 149999)::int; b := 1 + (random() * 149999)::int; c := 1 + (random() * 149999)::int;
    INSERT INTO items (grp, name, amount) VALUES (i, 'new', i * 0.01);
    UPDATE items SET amount = amount + 1, name = name || '+', updated = now() WHERE id = a;
    DELETE FROM items WHERE id = b;
    UPDATE items SET id = id + 10000000 WHERE id = c;
    COMMIT;
  END LOOP;
END $$;
";

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn parallel_snapshot_under_concurrent_writes_equals_source_and_holds_locks() {
    let env = Env::start("snap");
    env.psql(SCHEMA);
    let (worker, connector) = env.write_configs(
        "snap",
        &[],
        &[
            "snapshot.max.threads=4",
            "snapshot.chunk.rows=10000",
            "snapshot.include.collection.list=public\\.(items|slow|tiny)",
            "snapshot.select.statement.overrides=public.slow",
            "snapshot.select.statement.overrides.public.slow=SELECT s.* FROM public.slow s, LATERAL pg_sleep(0.03) z",
        ],
    );
    let writer = SqlWriter::start(&env, WRITES);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("snapshot started", WAIT);

    // The snapshot is running (the `slow` override takes ≥ 9 s).
    let port = env.pg.port();
    // Helper readers connect and lock a moment after the coordinator: wait for them (the slow
    // override keeps the snapshot open far longer than this).
    let lock_query =
        "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.relation = 'items'::regclass AND l.mode = 'AccessShareLock' AND l.granted \
           AND a.application_name = 'pgseam-snap'";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut locks = env.psql(lock_query);
    while locks.parse::<u32>().unwrap_or(0) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        locks = env.psql(lock_query);
    }
    assert!(
        locks.parse::<u32>().unwrap_or(0) >= 2,
        "expected the coordinator and helper readers to hold ACCESS SHARE on items, got {locks}"
    );
    let (ok, out) = psql_port(port, "snap", "-c lock_timeout=500ms", "VACUUM FULL items");
    assert!(
        !ok && out.contains("lock timeout"),
        "VACUUM FULL did not wait: {out}"
    );
    let (ok, out) = psql_port(
        port,
        "snap",
        "-c lock_timeout=500ms",
        "ALTER TABLE items ALTER COLUMN grp TYPE bigint",
    );
    assert!(
        !ok && out.contains("lock timeout"),
        "ALTER COLUMN TYPE did not wait: {out}"
    );
    let (ok, out) = psql_port(port, "snap", "-c lock_timeout=5s", "VACUUM items");
    assert!(ok, "plain VACUUM blocked: {out}");
    let (ok, out) = psql_port(
        port,
        "snap",
        "-c lock_timeout=5s",
        "INSERT INTO items (grp, name) VALUES (-1, 'during'); \
         UPDATE items SET name = 'upd during' WHERE id = 5; DELETE FROM items WHERE id = 6",
    );
    assert!(ok, "DML blocked: {out}");
    assert!(
        !pgseam.log_text().contains("snapshot completed"),
        "the snapshot ended before the lock checks; they proved nothing"
    );
    // A VACUUM FULL without timeout waits for the snapshot, then runs; nothing is lost.
    let vacuum_full = std::thread::spawn(move || psql_port(port, "snap", "", "VACUUM FULL items"));

    pgseam.wait_for_log("streaming started", WAIT);
    // Captured but not in snapshot.include.collection.list: streamed, never snapshotted.
    env.psql("INSERT INTO skipped VALUES (11)");
    let (ok, out) = vacuum_full.join().expect("vacuum thread");
    assert!(ok, "VACUUM FULL after the snapshot failed: {out}");
    let batches = writer.stop();
    assert!(batches >= 2, "the writers ran only {batches} batches");
    let log = pgseam.log_text();
    assert!(
        log.contains("snapshot progress") || log.contains("snapshot of table done"),
        "{log}"
    );

    let items = env.assert_topic_equals("snap", "public.items", true, WAIT);
    assert!(
        items.state.reads >= 140_000,
        "read {} rows",
        items.state.reads
    );
    assert!(items.state.creates > 0 && items.state.updates > 0 && items.state.deletes > 0);
    for table in ["public.slow", "public.tiny"] {
        env.assert_topic_equals("snap", table, true, WAIT);
    }

    // Markers: exactly one `first` and one `last` overall; per table one start and one end
    // marker; the one-row table's row is `last_in_data_collection` (or `last`/`first`).
    let topics: Vec<String> = ["items", "slow", "tiny", "skipped"]
        .iter()
        .map(|t| format!("snap.public.{t}"))
        .collect();
    let messages = read_topics(
        &env.broker.bootstrap_servers(),
        &topics,
        150_302,
        Duration::from_secs(2),
        WAIT,
    )
    .expect("read topics");
    let mut per_table: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for m in &messages {
        let Some(envelope) = m.envelope() else {
            continue;
        };
        if envelope.get("op").and_then(|o| o.as_str()) != Some("r") {
            continue;
        }
        let marker = envelope["source"]["snapshot"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        per_table.entry(m.topic.clone()).or_default().push(marker);
    }
    assert!(
        !per_table.contains_key("snap.public.skipped"),
        "skipped table was snapshotted"
    );
    let count = |t: &str, m: &str| per_table[t].iter().filter(|x| x.as_str() == m).count();
    let all: Vec<&String> = per_table.values().flatten().collect();
    assert_eq!(all.iter().filter(|m| m.as_str() == "first").count(), 1);
    assert_eq!(all.iter().filter(|m| m.as_str() == "last").count(), 1);
    // Tables are emitted in name order: items (first … last_in_data_collection), slow, tiny.
    assert_eq!(count("snap.public.items", "first"), 1);
    assert_eq!(count("snap.public.items", "last_in_data_collection"), 1);
    assert_eq!(count("snap.public.slow", "first_in_data_collection"), 1);
    assert_eq!(count("snap.public.slow", "last_in_data_collection"), 1);
    assert_eq!(per_table["snap.public.tiny"], vec!["last".to_owned()]);
    pgseam.stop_cleanly();
}
