//! `pgseam.sink=null` (the benchmarks' null sink): no Kafka at all — the broker address is
//! unreachable — yet the snapshot completes, offsets are stored and the slot is confirmed past
//! the streamed changes, because every encoded record counts as acknowledged at once.

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, Pgseam};

#[test]
fn null_sink_stores_offsets_and_advances_the_slot_without_kafka() {
    let env = Env::start("nullsink");
    env.psql(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2));
         INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 2000) g;",
    );
    // Nothing listens on port 1: a producer would fail its start-up broker check.
    let (worker, connector) = env.write_configs(
        "nulls",
        &["pgseam.sink=null", "bootstrap.servers=127.0.0.1:1"],
        &[],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("pgseam.sink=null", Duration::from_secs(30));
    pgseam.wait_for_log("streaming started", Duration::from_secs(60));

    env.psql(
        "DO $$ BEGIN FOR i IN 1..300 LOOP
           INSERT INTO items VALUES (10000 + i, 'new', i); COMMIT;
         END LOOP; END $$;",
    );
    let end = env.psql("SELECT pg_current_wal_lsn()");
    let end = end.trim();
    let started = Instant::now();
    loop {
        let reached = env.psql(&format!(
            "SELECT confirmed_flush_lsn >= '{end}' FROM pg_replication_slots WHERE slot_name = 'slot_nulls'"
        ));
        if reached.trim() == "t" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "slot not confirmed up to {end} within 60 s:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}:\n{}", pgseam.log_text());
    let store = pgseam::offsets::FileOffsetStore::open(&env.offsets_path()).expect("offset file");
    let offset = store
        .get(&pgseam::offsets::offset_key("nulls", "nulls"))
        .expect("readable offset");
    assert!(
        matches!(offset, Some(pgseam::offsets::ConnectorOffset::Streaming(_))),
        "the offset records streaming after the snapshot: {offset:?}"
    );
}
