//! Taking over from a stopped Debezium: the real Debezium 3.6.3 (the reference harness's
//! embedded engine) streams a table for a while and is stopped; more changes are written while
//! nothing runs; pgseam then starts on the same slot, connector name, topic prefix and offsets
//! file (Debezium's `offsets.dat`, Kafka Connect's format) and continues.
//!
//! Checked: Debezium's events (its JSONL output) followed by pgseam's (the Kafka topic), applied
//! as a primary-key table, equal the source — so no change between Debezium's last offset and
//! pgseam's start is missing; and every change made while nothing ran is in pgseam's topic.
//!
//! Needs java and the harness in reference/debezium with jars in
//! `$DBZPEER_HOME/libs` (default .dbzpeer in the repo); `PGSEAM_SKIP_JAVA_TESTS=1` skips it.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Env, Pgseam};
use pgseam_integration_tests::{read_topics, TableState, TopicMessage};
use serde_json::Value;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference/debezium");
const WAIT: Duration = Duration::from_secs(120);

struct Debezium {
    home: PathBuf,
    classpath: String,
}

impl Debezium {
    fn find(work: &Path) -> Option<Debezium> {
        let jars = std::env::var("DBZPEER_HOME")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.dbzpeer").into());
        let jars = Path::new(&jars);
        let ready = jars.join("classes/DbzPeer.class").exists()
            && Path::new(HARNESS).join("bin/dbzpeer.sh").exists();
        if !ready {
            if std::env::var("PGSEAM_SKIP_JAVA_TESTS").as_deref() == Ok("1") {
                eprintln!("skipping: no Debezium harness");
                return None;
            }
            panic!("this test needs the Debezium harness (run {HARNESS}/bin/setup.sh) or PGSEAM_SKIP_JAVA_TESTS=1");
        }
        let home = work.join("dbzpeer");
        std::fs::create_dir_all(&home).unwrap();
        Some(Debezium {
            home,
            classpath: format!("{0}/libs/*:{0}/classes", jars.display()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(format!("{HARNESS}/bin/dbzpeer.sh"))
            .args(args)
            .env("DBZPEER_HOME", &self.home)
            .env("DBZ_CP", &self.classpath)
            .env("JAVA_OPTS", "-Xms256m -Xmx512m")
            .env_remove("PGPEER_PORT")
            .output()
            .expect("run dbzpeer.sh");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "dbzpeer.sh {args:?} failed:\n{text}\n{}",
            self.log("run")
        );
        text
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.home.join(format!("logs/{name}.stderr"))).unwrap_or_default()
    }
}

/// Debezium's JSONL lines as topic messages.
fn debezium_events(path: &Path) -> Vec<TopicMessage> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let record: Value = serde_json::from_str(line).unwrap();
            let json = |v: &Value| (!v.is_null()).then(|| v.clone());
            TopicMessage {
                topic: record["destination"].as_str().unwrap().to_owned(),
                partition: 0,
                offset: n as i64,
                key: json(&record["key"]),
                value: json(&record["value"]),
                headers: Vec::new(),
            }
        })
        .collect()
}

fn source_rows(env: &Env) -> BTreeMap<i64, (String, i64)> {
    env.psql("SELECT id, v, n FROM t ORDER BY id")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split('|').collect();
            (
                parts[0].parse().unwrap(),
                (parts[1].to_owned(), parts[2].parse().unwrap()),
            )
        })
        .collect()
}

fn state_rows(state: &TableState) -> BTreeMap<i64, (String, i64)> {
    state
        .rows
        .values()
        .map(|after| {
            (
                after["id"].as_i64().unwrap(),
                (
                    after["v"].as_str().unwrap().to_owned(),
                    after["n"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn pgseam_continues_from_a_stopped_debeziums_offsets_file_without_a_gap() {
    let env = Env::start("takeover");
    let Some(debezium) = Debezium::find(env.dir.path()) else {
        return;
    };
    env.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL);
         INSERT INTO t SELECT g, 'seed ' || g, g FROM generate_series(1, 500) g;",
    );
    let name = "takeover";
    let (worker, connector) = env.write_configs(name, &[], &[]);
    let offsets = env.offsets_path();
    let events = env.dir.path().join("debezium.jsonl");
    let port = format!("database.port={}", env.pg.port());
    let offsets_arg = format!("offset.storage.file.filename={}", offsets.display());
    let events_arg = events.display().to_string();
    debezium.run(&[
        "start",
        "run",
        "--out",
        &events_arg,
        &format!("name={name}"),
        &port,
        "database.dbname=takeover",
        &format!("topic.prefix={name}"),
        &format!("slot.name=slot_{name}"),
        &format!("publication.name=pub_{name}"),
        &offsets_arg,
    ]);
    debezium.run(&["wait-ready", "run", "180"]);
    // Streaming under Debezium: single-row and multi-row transactions.
    for i in 0..20 {
        env.psql(&format!(
            "INSERT INTO t VALUES ({0}, 'dbz {0}', {0});
             BEGIN; UPDATE t SET n = n + 1000 WHERE id = {1}; DELETE FROM t WHERE id = {2}; COMMIT;",
            1000 + i,
            1 + i,
            200 + i
        ));
    }
    debezium.run(&["wait-idle", "run", "2500", "120"]);
    debezium.run(&["stop", "run"]);
    let after_debezium = std::fs::read(&offsets).expect("Debezium wrote its offsets file");
    assert_eq!(
        &after_debezium[..2],
        &[0xAC, 0xED],
        "a Java-serialised offsets file"
    );

    // Changes while nothing runs: these must all come from pgseam.
    env.psql(
        "INSERT INTO t SELECT g, 'gap ' || g, g FROM generate_series(2000, 2099) g;
         UPDATE t SET v = v || ' updated', n = n + 1 WHERE id BETWEEN 40 AND 60;
         DELETE FROM t WHERE id BETWEEN 300 AND 310;
         BEGIN; UPDATE t SET id = id + 5000 WHERE id = 100; INSERT INTO t VALUES (3000, 'tx', 1); COMMIT;",
    );

    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("resuming from the stored offset", WAIT);
    // More changes while pgseam streams.
    env.psql("INSERT INTO t SELECT g, 'pgseam ' || g, g FROM generate_series(4000, 4049) g;");

    let topic = format!("{name}.public.t");
    let expected = source_rows(&env);
    let mut last = None;
    for _ in 0..60 {
        let from_pgseam = read_topics(
            &env.broker.bootstrap_servers(),
            std::slice::from_ref(&topic),
            1,
            Duration::from_millis(700),
            Duration::from_secs(30),
        )
        .expect("read pgseam's topic");
        let mut all = debezium_events(&events);
        let debezium_count = all.len();
        all.extend(from_pgseam.iter().cloned());
        let combined = TableState::apply(&all).expect("apply events");
        if state_rows(&combined) == expected {
            // Everything changed while nothing ran is in pgseam's own output.
            let pgseam_only = TableState::apply(&from_pgseam).unwrap();
            let pgseam_rows = state_rows(&pgseam_only);
            for id in (2000..2100).chain([3000, 5100]).chain(4000..4050) {
                assert_eq!(
                    pgseam_rows.get(&id),
                    expected.get(&id),
                    "row {id} from pgseam"
                );
            }
            for id in 40..=60 {
                assert_eq!(
                    pgseam_rows.get(&id),
                    expected.get(&id),
                    "updated row {id} from pgseam"
                );
            }
            assert!(
                pgseam_only.deletes >= 12,
                "deletes 300..310 and the key change of 100"
            );
            // Every record carries its position; (commit_lsn, seq) never repeats in one run.
            let mut positions = std::collections::BTreeSet::new();
            for message in &from_pgseam {
                let header = |name: &str| {
                    message
                        .headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                };
                let (Some(_), Some(commit_lsn), Some(seq)) = (
                    header("pgseam.lsn"),
                    header("pgseam.commit_lsn"),
                    header("pgseam.seq"),
                ) else {
                    panic!("record without position headers: {:?}", message.headers);
                };
                assert!(
                    positions.insert((commit_lsn, seq.parse::<u64>().unwrap())),
                    "a position repeats"
                );
            }
            assert!(
                debezium_count >= 500 + 20 * 3,
                "Debezium's snapshot and stream: {debezium_count}"
            );
            pgseam.terminate(Duration::from_secs(30));
            // pgseam's own offset is now in the same file, still in Connect's format.
            let bytes = std::fs::read(&offsets).unwrap();
            assert_eq!(&bytes[..2], &[0xAC, 0xED]);
            return;
        }
        last = Some((state_rows(&combined), from_pgseam.len()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rows, count) = last.unwrap();
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| rows.get(k) != Some(v))
        .map(|(k, _)| *k)
        .take(20)
        .collect();
    let extra: Vec<_> = rows
        .keys()
        .filter(|k| !expected.contains_key(k))
        .take(20)
        .collect();
    panic!(
        "Debezium + pgseam ({count} records) differ from the source: wrong or missing {missing:?}, extra {extra:?}\n{}",
        pgseam.log_text()
    );
}
