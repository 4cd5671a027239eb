//! Resuming an interrupted initial snapshot (DESIGN.md §2, issue 4 "Resume").
//!
//! 1. `kill -9` at random points of a snapshot of 150k + 20k rows in two keyed tables, read by
//!    four readers and resumed with up to four windows open at once (several key ranges of a
//!    table, and both tables where one's last ranges overlap the other's first), with writers
//!    inserting, updating (also primary keys) and deleting throughout, and, between each kill
//!    and the restart, updates that move rows and a VACUUM FULL: every restart resumes (same consistent point,
//!    the slot kept, the last run resumes after the stored key), the topic applied
//!    as a primary-key table equals the source, per key the versions never go back (after
//!    dropping the replayed suffixes the position headers identify), and the table without a
//!    primary key is re-read whole (every row present, repeats allowed).
//! 2. A table chunked by ctid ranges and partly delivered is read again whole after rows
//!    moved (UPDATE, DELETE, VACUUM FULL), and a connection lost during the resume resumes
//!    it again from the progress handed over.
//! 3. A table that is not first in line stores its key progress as soon as its windows are
//!    acknowledged: killed while an earlier table's slow window is open, it re-sends fewer
//!    than `snapshot.max.threads` windows.
//! 4. A stop during a heavy snapshot into a slow broker is bounded by
//!    `task.shutdown.graceful.timeout.ms`, and the restart loses nothing.
//! 5. The commit-visibility race: a transaction whose commit record precedes the first
//!    window's low watermark but which is still running (held by synchronous replication to
//!    a standby that does not exist) is waited for, so its change is not lost.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    check_per_key_order, progress_of, psql_port, stored, Env, HeldCommit, Pgseam, SqlWriter,
};
use pgseam::offsets::ConnectorOffset;
use pgseam_connector_pg::snapshot::SnapshotProgress;
use pgseam_integration_tests::{read_topics, TopicMessage};
use pgseam_model::Lsn;

const WAIT: Duration = Duration::from_secs(180);
const ROWS: i64 = 150_000;

const SCHEMA: &str = "
CREATE TABLE items (
    id   bigserial PRIMARY KEY,
    ver  bigint NOT NULL DEFAULT 0,
    name text,
    pad  text
);
CREATE TABLE accounts (
    id   bigint PRIMARY KEY,
    ver  bigint NOT NULL DEFAULT 0,
    pad  text
);
CREATE TABLE nokey (n int, label text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
INSERT INTO items (name, pad) SELECT 'item ' || g, repeat('p', 40) FROM generate_series(1, 150000) g;
INSERT INTO accounts SELECT g, 0, repeat('a', 40) FROM generate_series(1, 20000) g;
INSERT INTO nokey SELECT g, 'row ' || g FROM generate_series(1, 300) g;
";

/// One batch of small transactions: every update bumps `ver`, so per key the versions a
/// consumer sees must never go back.
const WRITES: &str = "
DO $$
DECLARE i int; a bigint; b bigint; c bigint;
BEGIN
  FOR i IN 1..40 LOOP
    a := 1 + (random() * 149999)::int; b := 1 + (random() * 149999)::int; c := 1 + (random() * 149999)::int;
    INSERT INTO items (name, pad) VALUES ('new', 'n');
    UPDATE items SET ver = ver + 1, name = name || '+' WHERE id = a;
    DELETE FROM items WHERE id = b;
    UPDATE items SET id = id + 10000000, ver = ver + 1 WHERE id = c;
    UPDATE accounts SET ver = ver + 1 WHERE id = 1 + a % 20000;
    INSERT INTO accounts VALUES (100000 + a, 0, 'new') ON CONFLICT (id) DO UPDATE SET ver = accounts.ver + 1;
    DELETE FROM accounts WHERE id = 1 + b % 20000;
    COMMIT;
  END LOOP;
END $$;
";

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn kill_9_during_the_snapshot_resumes_it_and_loses_nothing() {
    let env = Env::start("resume");
    env.psql(SCHEMA);
    let name = "resume";
    // Schemaless JSON: the topic is read back twice, and with schemas it would be ten times
    // larger.
    let (worker, connector) = env.write_configs(
        name,
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "snapshot.max.threads=4",
            "snapshot.chunk.strategy=key",
            "snapshot.chunk.rows=1000",
        ],
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut random = Lcg(seed);

    // The updates between kills may deadlock with a batch: it is rolled back.
    let writer = SqlWriter::start_tolerating(&env, WRITES, Some("deadlock detected"));

    let mut consistent_point: Option<Lsn> = None;
    let mut previous: Option<SnapshotProgress> = None;
    let mut kills = 0;
    let mut resumed_with_progress = 0;
    // The run that completes the snapshot.
    let mut last_run: Option<Pgseam> = None;
    for round in 0..6 {
        let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
        if round > 0 {
            pgseam.wait_for_log("resuming the interrupted snapshot", WAIT);
        }
        if round == 5 {
            last_run = Some(pgseam);
            break;
        }
        // Wait until the stored progress moves past where the last run was killed, then
        // a random moment more.
        let started = Instant::now();
        let advanced = loop {
            let offset = stored(&env, name);
            match progress_of(&offset) {
                Some(p)
                    if Some(&p) != previous.as_ref()
                        && (p.partial.is_some() || !p.done.is_empty()) =>
                {
                    break Some(p)
                }
                Some(_) => {}
                None if matches!(
                    offset,
                    Some(ConnectorOffset::Streaming(_) | ConnectorOffset::SnapshotCompleted { .. })
                ) =>
                {
                    break None
                }
                None => {}
            }
            assert!(
                started.elapsed() < WAIT,
                "no snapshot progress:\n{}",
                pgseam.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let Some(progress) = advanced else {
            // This run completed the snapshot before the kill.
            last_run = Some(pgseam);
            break;
        };
        match consistent_point {
            None => consistent_point = Some(progress.consistent_point),
            Some(c) => assert_eq!(
                c, progress.consistent_point,
                "the consistent point changed: the snapshot started over"
            ),
        }
        std::thread::sleep(Duration::from_millis(random.below(40)));
        pgseam.kill9();
        let after_kill = stored(&env, name);
        println!("kill {}: offset {after_kill:?}", kills + 1);
        let Some(after_kill) = progress_of(&after_kill) else {
            // The snapshot completed just before the kill: the next run only streams.
            last_run = Some(Pgseam::start(env.dir.path(), &worker, &[&connector]));
            break;
        };
        kills += 1;
        if !after_kill.done.is_empty() || after_kill.partial.is_some() {
            resumed_with_progress += 1;
        }
        previous = Some(after_kill);
        // Between the crash and the restart: move rows (new tuple versions elsewhere) and
        // rewrite the table.
        // It may deadlock with a writers' batch (either is rolled back): then again.
        let mut attempts = 0;
        loop {
            let (ok, out) = psql_port(
                env.pg.port(),
                "resume",
                "",
                "UPDATE items SET pad = pad || 'm', ver = ver + 1 WHERE id % 7 = 0; \
                 UPDATE accounts SET pad = pad || 'm', ver = ver + 1 WHERE id % 5 = 0",
            );
            attempts += 1;
            if ok {
                break;
            }
            assert!(
                out.contains("deadlock detected") && attempts < 10,
                "the update between kills failed: {out}"
            );
        }
        env.psql("VACUUM FULL items");
        env.psql("VACUUM FULL accounts");
    }
    assert!(
        kills >= 4,
        "only {kills} kills happened during the snapshot"
    );
    assert!(resumed_with_progress >= 3);

    let mut pgseam = last_run.expect("a run after the kills");
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_some() {
        assert!(
            started.elapsed() < WAIT,
            "the snapshot did not complete:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let slots =
        env.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'slot_resume'");
    assert_eq!(slots, "1");
    let batches = writer.stop();
    assert!(batches >= 2, "the writers ran only {batches} batches");

    let items = env.assert_topic_equals(name, "public.items", true, WAIT);
    env.assert_topic_equals(name, "public.accounts", true, WAIT);
    // The run that completed the snapshot read only what was left, not the whole table again.
    let mut logs = String::new();
    let mut logs_by_file = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(path).unwrap();
            logs.push_str(&text);
            logs_by_file.push(text);
        }
    }
    let last_rows: u64 = logs
        .lines()
        .find(|l| l.contains("the resumed snapshot is complete"))
        .and_then(|l| l.split("rows=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no resumed run completed the snapshot:\n{logs}"));
    let source_rows: u64 = env.psql("SELECT count(*) FROM items").parse().unwrap();
    println!(
        "last run read {last_rows} of {source_rows} rows; reads in topic {}",
        items.state.reads
    );
    // It resumed after the key the last kill left stored: its plan says so. (A row count
    // proves little: windows hold `snapshot.chunk.rows` keys in key order, so each kill, which
    // waits for the stored progress to move, gets only a few windows further, and the
    // writers' deletes and key moves during the last run add reads the source no longer
    // counts. Before windows were cut in key order they were far larger, and "read 10k rows
    // fewer than the table" held.)
    let last = previous.as_ref().expect("the progress the last kill left");
    let last_after: i64 = last
        .partial
        .as_ref()
        .map(|k| k.after[0].parse().expect("an int key"))
        .unwrap_or(0);
    println!(
        "the last kill left {:?} done and the progress after key {last_after} of {:?}",
        last.done,
        last.partial.as_ref().map(|k| &k.table)
    );
    assert!(
        last_after >= 3000 || !last.done.is_empty(),
        "the kills got only to key {last_after}"
    );
    let last_log = logs_by_file
        .iter()
        .find(|l| l.contains("the resumed snapshot is complete"))
        .expect("the run that completed the snapshot");
    if let Some(partial) = &last.partial {
        let table = format!("{}.{}", partial.table.0, partial.table.1);
        assert!(
            last_log
                .lines()
                .any(|l| l.contains("snapshot resume: table to read")
                    && l.contains(&table)
                    && l.contains("resumes_after_key=true")),
            "the last run did not resume {table} after its stored key:\n{last_log}"
        );
    }
    for (schema, table) in &last.done {
        let name = format!("{schema}.{table}");
        assert!(
            !last_log
                .lines()
                .any(|l| l.contains("snapshot resume: table to read") && l.contains(&name)),
            "the last run read {name} again, though it was stored as done"
        );
    }

    // The resumes kept several windows open at once (`snapshot.max.threads=4`).
    let max_open: usize = last_log
        .lines()
        .find(|l| l.contains("the resumed snapshot is complete"))
        .and_then(|l| l.split("max_open_windows=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no max_open_windows in:\n{last_log}"));
    println!("the last run had up to {max_open} windows open at once");
    assert!(
        max_open >= 2,
        "the resume read one window at a time with snapshot.max.threads=4"
    );

    let messages = env.read_topic("resume.public.items", 1, Duration::from_secs(2), WAIT);
    let replayed = check_per_key_order(&messages);
    println!("{} records, {replayed} replayed", messages.len());
    let accounts = env.read_topic("resume.public.accounts", 1, Duration::from_secs(2), WAIT);
    let replayed = check_per_key_order(&accounts);
    println!("accounts: {} records, {replayed} replayed", accounts.len());
    // Resumed rows carry Debezium's incremental-snapshot marker, first-run rows the usual ones.
    let marker = |m: &TopicMessage| {
        m.envelope()
            .and_then(|e| e["source"]["snapshot"].as_str().map(str::to_owned))
    };
    assert!(messages
        .iter()
        .any(|m| marker(m).as_deref() == Some("incremental")));
    // (The first table read, by catalog order, is the one the first run got into.)
    assert!(messages
        .iter()
        .chain(&accounts)
        .any(|m| m.op() == Some("r") && marker(m).as_deref() != Some("incremental")));

    // The table without a primary key is re-read whole: every row is there, repeats allowed.
    let nokey = env.read_topic("resume.public.nokey", 300, Duration::from_secs(2), WAIT);
    let seen: BTreeSet<i64> = nokey
        .iter()
        .filter_map(|m| m.envelope()?.get("after")?.get("n")?.as_i64())
        .collect();
    assert_eq!(seen, (1..=300).collect::<BTreeSet<i64>>());
    let _ = ROWS;
    pgseam.stop_cleanly();
}

#[test]
fn a_commit_still_running_at_the_low_watermark_is_not_lost() {
    let env = Env::start("race");
    HeldCommit::allow(&env);
    env.psql(
        "CREATE TABLE held (id int PRIMARY KEY, v text);
         INSERT INTO held SELECT g, 'v' || g FROM generate_series(1, 100000) g;",
    );
    let name = "race";
    let (worker, connector) = env.write_configs(
        name,
        &[],
        &[
            // Several windows open at once: each waits for the held commit.
            "snapshot.max.threads=3",
            "snapshot.chunk.strategy=key",
            "snapshot.chunk.rows=2000",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let started = Instant::now();
    let progress = loop {
        if let Some(p) = progress_of(&stored(&env, name)) {
            if p.partial.is_some() || !p.done.is_empty() {
                break p;
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no progress:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    pgseam.kill9();
    let progress = progress_of(&stored(&env, name)).unwrap_or(progress);
    // The first key the resume reads: its first window holds it.
    let first: i64 = match &progress.partial {
        Some(p) => p.after[0].parse::<i64>().unwrap() + 1,
        None => panic!("the table was delivered before the kill: {progress:?}"),
    };
    println!("progress {progress:?}; held key {first}");

    let held = HeldCommit::hold(
        &env,
        &format!("UPDATE held SET v = 'held' WHERE id = {first}"),
    );

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    held.release_once_waited_for(&env, &mut pgseam, "the resumed snapshot is complete", WAIT);

    env.assert_topic_equals(name, "public.held", true, WAIT);
    pgseam.stop_cleanly();
}

#[test]
fn a_table_chunked_by_ctid_and_partly_delivered_is_read_again_whole() {
    let env = Env::start("ctid");
    env.psql(
        "CREATE TABLE blocks (id int PRIMARY KEY, v text, pad text);
         INSERT INTO blocks SELECT g, 'v' || g, repeat('x', 60) FROM generate_series(1, 100000) g;",
    );
    let name = "ctid";
    let (worker, connector) = env.write_configs(
        name,
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            "snapshot.max.threads=1",
            "snapshot.chunk.strategy=ctid",
            "snapshot.chunk.rows=2000",
            "retriable.restart.connector.wait.ms=500",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("snapshot started", WAIT);
    std::thread::sleep(Duration::from_millis(400));
    pgseam.kill9();
    // ctid chunks record no progress before the table's last one.
    let progress = progress_of(&stored(&env, name)).expect("an interrupted snapshot");
    assert!(
        progress.done.is_empty() && progress.partial.is_none(),
        "the snapshot got too far before the kill: {progress:?}"
    );
    // What the killed run delivered (the topic may not exist yet if it delivered nothing).
    let delivered = read_topics(
        &env.broker.bootstrap_servers(),
        &["ctid.public.blocks".to_owned()],
        1,
        Duration::from_secs(1),
        Duration::from_secs(15),
    )
    .map_or(0, |m| m.len());
    println!("delivered before the kill: {delivered}");
    // Rows move between ctid ranges: an update writes new versions elsewhere, VACUUM FULL
    // rewrites the table.
    env.psql("UPDATE blocks SET pad = pad || 'm', v = 'moved' WHERE id % 3 = 0");
    env.psql("DELETE FROM blocks WHERE id % 11 = 0");
    env.psql("VACUUM FULL blocks");

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    // Once a window is stored, the connection is lost: the reconnection resumes the snapshot
    // from the progress the source had handed over.
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_none_or(|p| p.partial.is_none()) {
        assert!(
            started.elapsed() < WAIT,
            "no window stored:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let terminated = env.psql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name = 'slot_ctid' AND active_pid IS NOT NULL",
    );
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    let log = pgseam.log_text();
    if terminated == "t" {
        assert!(log.contains("reconnecting to PostgreSQL"), "{log}");
        assert_eq!(
            log.matches("resuming the interrupted snapshot: streaming")
                .count(),
            2,
            "{log}"
        );
    }
    println!("walsender terminated mid-resume: {terminated:?}");
    assert!(
        log.lines().any(|l| l.contains("table to read")
            && l.contains("public.blocks")
            && l.contains("resumes_after_key=false")),
        "{log}"
    );
    let blocks = env.assert_topic_equals(name, "public.blocks", true, WAIT);
    // Read again from its start: the rows delivered before the kill come twice.
    assert!(
        delivered == 0 || blocks.state.reads >= blocks.source_rows + delivered / 2,
        "{} reads for {} rows",
        blocks.state.reads,
        blocks.source_rows
    );
    pgseam.stop_cleanly();
}

/// The first table of a resume (`alpha`) has one slow window left (500 keys of 40 kB rows,
/// read at `snapshot.throttle.bytes.per.second`, about ten seconds), while the second
/// (`beta`, small rows) goes on through the other windows. pgseam is killed once `beta` has
/// seven windows in its topic and `alpha` is still being read: the restart must resume
/// `beta` after the key its acknowledged windows reached, so it re-sends fewer than
/// `snapshot.max.threads` windows of it. (Before each table's key was stored whatever its
/// place in line, `beta`'s key was stored only once `alpha` was done: every `beta` window
/// came again.) Writers update both tables throughout; the topics equal the source and per
/// key the versions never go back. (Only alpha's narrow rows are updated: an UPDATE of a row
/// whose wide value is stored out of line would stream it as unavailable.)
#[test]
fn a_later_table_s_windows_are_stored_while_an_earlier_table_is_still_read() {
    const THREADS: usize = 3;
    const WINDOW: usize = 500;
    let env = Env::start("later");
    env.psql(
        "CREATE TABLE alpha (id int PRIMARY KEY, ver bigint NOT NULL DEFAULT 0, pad text);
         INSERT INTO alpha SELECT g, 0, CASE WHEN g > 1500 THEN repeat('w', 40000) ELSE 'n' END
           FROM generate_series(1, 2000) g;
         CREATE TABLE beta (id int PRIMARY KEY, ver bigint NOT NULL DEFAULT 0, pad text);
         INSERT INTO beta SELECT g, 0, 'b' FROM generate_series(1, 20000) g;",
    );
    let name = "later";
    let (worker, connector) = env.write_configs(
        name,
        &[
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[
            &format!("snapshot.max.threads={THREADS}"),
            "snapshot.chunk.strategy=key",
            &format!("snapshot.chunk.rows={WINDOW}"),
            // alpha's last 500 rows are 20 MB of COPY data: about ten seconds.
            "snapshot.throttle.bytes.per.second=2000000",
        ],
    );
    // A first run, killed as soon as the snapshot is resumable: alpha's wide rows are still
    // being read then.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    let started = Instant::now();
    while progress_of(&stored(&env, name)).is_none() {
        assert!(
            started.elapsed() < WAIT,
            "no snapshot progress:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    pgseam.kill9();
    let first = progress_of(&stored(&env, name)).expect("an interrupted snapshot");
    assert!(first.done.is_empty(), "{first:?}");

    let writer = SqlWriter::start(
        &env,
        "DO $$ DECLARE i int; BEGIN FOR i IN 1..20 LOOP
           UPDATE beta SET ver = ver + 1 WHERE id = 1 + (random() * 19999)::int;
           UPDATE alpha SET ver = ver + 1 WHERE id = 1 + (random() * 1499)::int;
           DELETE FROM beta WHERE id = 1 + (random() * 19999)::int;
           INSERT INTO beta VALUES (100000 + (random() * 100000)::int, 0, 'new')
             ON CONFLICT (id) DO UPDATE SET ver = beta.ver + 1;
           COMMIT;
         END LOOP; END $$",
    );

    // The resume: kill it once beta has 7 windows in its topic.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming the interrupted snapshot", WAIT);
    let topic = format!("{name}.public.beta");
    let started = Instant::now();
    let delivered = loop {
        let incremental = read_topics(
            &env.broker.bootstrap_servers(),
            std::slice::from_ref(&topic),
            0,
            Duration::from_millis(200),
            Duration::from_millis(500),
        )
        .map(|m| m.iter().filter(|m| is_incremental_read(m)).count())
        .unwrap_or(0);
        if incremental >= 7 * WINDOW {
            break incremental;
        }
        assert!(
            started.elapsed() < WAIT,
            "beta got only {incremental} resumed rows:\n{}",
            pgseam.log_text()
        );
    };
    pgseam.kill9();
    let killed = progress_of(&stored(&env, name)).expect("an interrupted snapshot");
    println!("killed with {delivered} resumed beta rows in the topic; stored {killed:?}");
    assert!(
        !killed.is_done("public", "alpha"),
        "alpha's slow window closed before the kill: the test did not kill while a later table was ahead: {killed:?}"
    );

    // The last run completes the snapshot.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    let batches = writer.stop();
    println!("writers: {batches} batches of 20 transactions");
    env.assert_topic_equals(name, "public.alpha", true, WAIT);
    env.assert_topic_equals(name, "public.beta", true, WAIT);
    let messages = read_topics(
        &env.broker.bootstrap_servers(),
        std::slice::from_ref(&topic),
        1,
        Duration::from_secs(2),
        WAIT,
    )
    .expect("read beta");
    check_per_key_order(&messages);
    // Re-sent rows of beta: resumed reads of a key beyond its first.
    let mut reads: std::collections::BTreeMap<String, usize> = Default::default();
    for m in messages.iter().filter(|m| is_incremental_read(m)) {
        *reads
            .entry(m.key_payload().map(|k| k.to_string()).unwrap_or_default())
            .or_default() += 1;
    }
    let resent: usize = reads.values().map(|n| n - 1).sum();
    println!(
        "beta: {} resumed reads of {} keys, {resent} re-sent (bound {} = snapshot.max.threads windows)",
        reads.values().sum::<usize>(),
        reads.len(),
        THREADS * WINDOW
    );
    assert!(
        resent <= THREADS * WINDOW,
        "beta re-sent {resent} rows after the kill, more than snapshot.max.threads={THREADS} windows of {WINDOW}"
    );
    let log = pgseam.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("snapshot resume: table to read")
                && l.contains("public.beta")
                && l.contains("resumes_after_key=true")),
        "the last run read beta from its start again:\n{log}"
    );
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}

/// A row a resumed snapshot read (`op = "r"`, `source.snapshot = "incremental"`).
fn is_incremental_read(m: &TopicMessage) -> bool {
    m.op() == Some("r")
        && m.envelope()
            .and_then(|e| e["source"]["snapshot"].as_str())
            .is_some_and(|s| s == "incremental")
}

/// A stop (SIGTERM) during a heavy snapshot into a slow broker is bounded by
/// `task.shutdown.graceful.timeout.ms` (2 s here): the snapshot stops at once, the deliveries
/// still outstanding are abandoned, the offset stays before them. The restart resumes the
/// snapshot and the topic equals the source: nothing lost. (Before, the stop waited up to
/// 30 s for librdkafka's queue to drain, then 5 s for the snapshot blocked on the channel
/// the worker no longer read: never less than 5 s during a snapshot.)
#[test]
fn a_stop_during_a_heavy_snapshot_is_bounded_and_loses_nothing() {
    let env = Env::start("stopping");
    env.psql(
        "CREATE TABLE big (id bigint PRIMARY KEY, a text, b text);
         INSERT INTO big SELECT g, md5(g::text), repeat('x', 150) FROM generate_series(1, 120000) g;",
    );
    let name = "stopping";
    let schemaless = [
        "key.converter.schemas.enable=false",
        "value.converter.schemas.enable=false",
    ];
    let slow = [
        // Records with schemas (ten times larger, about 150 MB, more than librdkafka's queue
        // of the default budget holds) in small produce requests: the broker takes them far
        // slower than the snapshot reads them, so the queue is full when the stop comes.
        "producer.batch.size=4000",
        "task.shutdown.graceful.timeout.ms=2000",
    ];
    let (worker, connector) = env.write_configs(
        name,
        &slow,
        &["snapshot.max.threads=2", "snapshot.chunk.strategy=key"],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("snapshot started", WAIT);
    // Records on their way to the broker.
    let started = Instant::now();
    while read_topics(
        &env.broker.bootstrap_servers(),
        &[format!("{name}.public.big")],
        1000,
        Duration::from_millis(100),
        Duration::from_millis(500),
    )
    .is_err()
    {
        assert!(
            started.elapsed() < WAIT,
            "no records:\n{}",
            pgseam.log_text()
        );
    }
    let stop_started = Instant::now();
    let status = pgseam.terminate(Duration::from_secs(60));
    let stop_took = stop_started.elapsed();
    let log = pgseam.log_text();
    println!(
        "stop took {stop_took:?}; deliveries abandoned: {}",
        log.lines()
            .find(|l| l.contains("deliveries still outstanding"))
            .and_then(|l| l.split(" outstanding=").nth(1))
            .and_then(|n| n.split_whitespace().next())
            .unwrap_or("none")
    );
    assert!(status.success(), "{log}");
    assert!(!log.contains("snapshot completed"), "{log}");
    assert!(
        stop_took < Duration::from_secs(5),
        "stopping during the snapshot took {stop_took:?} with task.shutdown.graceful.timeout.ms=2000:\n{log}"
    );

    // The restart (without the slow producer) resumes the snapshot: nothing is lost.
    let (worker, connector) = env.write_configs(
        name,
        &schemaless,
        &["snapshot.max.threads=2", "snapshot.chunk.strategy=key"],
    );
    let restarted = Instant::now();
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("the resumed snapshot is complete", WAIT);
    println!(
        "the restart completed the snapshot in {:?}",
        restarted.elapsed()
    );
    env.assert_topic_equals(name, "public.big", true, WAIT);
    println!("topic compared after {:?}", restarted.elapsed());
    let status = pgseam.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", pgseam.log_text());
}
