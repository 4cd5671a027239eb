//! Lost connections end to end: the PostgreSQL server restarts, and the walsender is
//! terminated, while pgseam streams and the workload goes on. pgseam reconnects on its own and
//! the topic equals the source afterwards (nothing lost). Also `slot.drop.on.stop`.

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, Pgseam};

const WAIT: Duration = Duration::from_secs(90);

const SCHEMA: &str = "
CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO items SELECT g, g, 'seed ' || g FROM generate_series(1, 2000) g;
";

/// One batch of small transactions: inserts, updates, deletes.
fn batch(round: u32) -> String {
    let base = 100_000 * (round + 1);
    format!(
        "DO $$ DECLARE i int; BEGIN
           FOR i IN 1..200 LOOP
             INSERT INTO items VALUES ({base} + i, i, 'round {round}');
             UPDATE items SET v = v + 1, note = 'updated in {round}' WHERE id = 1 + (i * 7 + {round}) % 2000;
             IF i % 5 = 0 THEN DELETE FROM items WHERE id = {base} + i - 1; END IF;
             COMMIT;
           END LOOP;
         END $$;"
    )
}

#[test]
fn server_restart_and_terminated_walsender_lose_nothing() {
    let mut env = Env::start("recon");
    env.psql(SCHEMA);
    let (worker, connector) = env.write_configs(
        "recon",
        &[],
        &[
            "retriable.restart.connector.wait.ms=300",
            "slot.retry.delay.ms=500",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(&batch(0));
    env.assert_topic_equals("recon", "public.items", true, WAIT);

    // 1. Server restart in the middle of a workload: what committed before the shutdown and
    //    what commits after the restart must both arrive.
    env.psql(&batch(1));
    env.pg.restart().expect("restart PostgreSQL");
    env.psql(&batch(2));
    pgseam.wait_for_log_count("streaming started", 2, WAIT);
    let log = pgseam.log_text();
    assert!(log.contains("lost the connection to PostgreSQL"), "{log}");
    env.psql(&batch(3));
    env.assert_topic_equals("recon", "public.items", true, WAIT);

    // 2. The walsender is terminated while a workload runs.
    let writer = {
        let port = env.pg.port();
        let base = env.pg.base_dir().to_owned();
        let sql = batch(4);
        std::thread::spawn(move || {
            let status = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
                .args(["-h", base.to_str().unwrap(), "-p", &port.to_string()])
                .args([
                    "-U",
                    "postgres",
                    "-d",
                    "recon",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    &sql,
                ])
                .status()
                .expect("run psql");
            assert!(status.success());
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let terminated = env.psql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name = 'slot_recon' AND active_pid IS NOT NULL",
    );
    assert_eq!(terminated, "t", "the walsender was running");
    writer.join().unwrap();
    pgseam.wait_for_log_count("streaming started", 3, WAIT);
    env.psql(&batch(5));
    env.assert_topic_equals("recon", "public.items", true, WAIT);
    assert!(
        pgseam
            .log_text()
            .matches("lost the connection to PostgreSQL")
            .count()
            >= 2,
        "{}",
        pgseam.log_text()
    );

    // The slot keeps being confirmed after the reconnections.
    let before = env.psql(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'slot_recon'",
    );
    env.psql(&batch(6));
    env.assert_topic_equals("recon", "public.items", true, WAIT);
    let started = Instant::now();
    loop {
        let after = env.psql(&format!(
            "SELECT confirmed_flush_lsn > '{before}' FROM pg_replication_slots WHERE slot_name = 'slot_recon'"
        ));
        if after == "t" {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the slot is not confirmed any more"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn startup_errors_are_not_retried() {
    let env = Env::start("nostart");
    let (worker, connector) = env.write_configs(
        "nostart",
        &[],
        &[
            "database.password=wrong",
            "retriable.restart.connector.wait.ms=100",
        ],
    );
    let (status, log) = common::run_to_exit(&worker, &[&connector], WAIT);
    assert!(!status.success());
    assert!(log.contains("password authentication failed"), "{log}");
    assert!(!log.contains("reconnecting"), "{log}");
}

#[test]
fn slot_drop_on_stop_drops_the_slot_and_starts_afresh() {
    let env = Env::start("dropper");
    env.psql(SCHEMA);
    let (worker, connector) = env.write_configs("dropper", &[], &["slot.drop.on.stop=true"]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    env.psql(&batch(0));
    env.assert_topic_equals("dropper", "public.items", true, WAIT);
    assert_eq!(
        env.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'slot_dropper'"),
        "1"
    );
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
    assert!(
        pgseam.log_text().contains("replication slot dropped"),
        "{}",
        pgseam.log_text()
    );
    assert_eq!(
        env.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'slot_dropper'"),
        "0"
    );
    // The next start is a fresh one (new slot, new snapshot), not a failed resume.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    assert!(
        pgseam.log_text().contains("replication slot created"),
        "{}",
        pgseam.log_text()
    );
    let status = pgseam.terminate(WAIT);
    assert!(status.success(), "{}", pgseam.log_text());
}
