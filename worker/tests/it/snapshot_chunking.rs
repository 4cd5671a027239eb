//! `snapshot.chunk.strategy=auto` chooses per table, end to end (issue 4, "measure both and
//! choose per table"): a table whose physical order follows its key is read by key ranges
//! (resumable), one whose rows were inserted in random key order by ctid ranges (key ranges
//! would visit the whole heap per chunk), a small table as one chunk, a table without a
//! primary key by ctid; `pgseam.snapshot.chunk.strategy.overrides` forces a table's strategy.
//! Each choice is logged with its reason, and every table's topic, applied as a primary-key
//! table, equals the source — snapshot rows plus the changes streamed after it.

use crate::common;

use std::time::Duration;

use common::{Env, Pgseam};

const WAIT: Duration = Duration::from_secs(90);
const ROWS: u64 = 30_000;

/// The value of `name=value` in a log line, without the quotes tracing puts around strings.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next().map(str::to_owned);
    }
    rest.split_whitespace().next().map(str::to_owned)
}

/// (strategy, reason, chunks) from the `snapshot table planned` line of `table`.
fn planned(log: &str, table: &str) -> (String, String, u64) {
    let line = log
        .lines()
        .find(|l| {
            l.contains("snapshot table planned") && field(l, "table").as_deref() == Some(table)
        })
        .unwrap_or_else(|| panic!("no `snapshot table planned` line for {table}:\n{log}"));
    (
        field(line, "strategy").unwrap_or_default(),
        field(line, "reason").unwrap_or_default(),
        field(line, "chunks")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no chunks in {line}")),
    )
}

#[test]
fn auto_chooses_key_or_ctid_ranges_per_table_and_every_table_equals_the_source() {
    let env = Env::start("chunking");
    let columns = "a int, txt text, amount numeric(12,2)";
    let values = "g % 1000, md5(g::text), (g % 100000) / 100.0";
    env.psql(&format!(
        "CREATE TABLE ordered (id bigint PRIMARY KEY, {columns});
         INSERT INTO ordered SELECT g, {values} FROM generate_series(1, {ROWS}) g;
         CREATE TABLE shuffled (id bigint PRIMARY KEY, {columns});
         INSERT INTO shuffled SELECT g, {values} FROM generate_series(1, {ROWS}) g ORDER BY random();
         CREATE TABLE uuids (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), {columns});
         INSERT INTO uuids (a, txt, amount) SELECT {values} FROM generate_series(1, {ROWS}) g;
         CREATE TABLE forced (id bigint PRIMARY KEY, {columns});
         INSERT INTO forced SELECT g, {values} FROM generate_series(1, {ROWS}) g ORDER BY random();
         CREATE TABLE tiny (id int PRIMARY KEY, note text);
         INSERT INTO tiny SELECT g, 'n' || g FROM generate_series(1, 50) g;
         CREATE TABLE nokey (a int, note text);
         INSERT INTO nokey SELECT g, 'k' || g FROM generate_series(1, {ROWS}) g;
         ANALYZE;"
    ));
    let (worker, connector) = env.write_configs(
        "chunking",
        &[],
        &[
            "snapshot.max.threads=3",
            "snapshot.chunk.rows=4000",
            "pgseam.snapshot.chunk.strategy.overrides=public.forced:key",
            "decimal.handling.mode=precise",
        ],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", WAIT);
    // Changes after the snapshot, streamed: the topics must still apply to the source.
    env.psql(
        "UPDATE ordered SET a = -1 WHERE id % 97 = 0; DELETE FROM ordered WHERE id % 101 = 0;
         UPDATE shuffled SET txt = 'moved' WHERE id % 89 = 0; INSERT INTO tiny VALUES (51, 'late');
         DELETE FROM forced WHERE id <= 10; UPDATE uuids SET a = -2 WHERE a = 7;",
    );

    let log = pgseam.log_text();
    let expected = [
        ("public.ordered", "key", "key follows the physical order"),
        (
            "public.shuffled",
            "ctid",
            "key does not follow the physical order",
        ),
        (
            "public.uuids",
            "ctid",
            "key does not follow the physical order",
        ),
        (
            "public.forced",
            "key",
            "pgseam.snapshot.chunk.strategy.overrides",
        ),
        ("public.tiny", "ctid", "one chunk"),
        ("public.nokey", "ctid", "no primary key"),
    ];
    for (table, strategy, reason) in expected {
        let (got_strategy, got_reason, chunks) = planned(&log, table);
        assert_eq!(
            (got_strategy.as_str(), got_reason.as_str()),
            (strategy, reason),
            "{table}"
        );
        if table == "public.tiny" {
            assert_eq!(chunks, 1, "{table}");
        } else {
            // 30000 rows in chunks of about 4000: several chunks, so the ranges were real.
            assert!(chunks >= 5, "{table}: {chunks} chunks");
        }
    }

    for table in [
        "public.ordered",
        "public.shuffled",
        "public.uuids",
        "public.forced",
        "public.tiny",
    ] {
        let comparison = env.wait_until_equal("chunking", table, true, WAIT);
        assert!(
            comparison.differences.is_empty(),
            "{table}:\n{}",
            comparison
                .differences
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let expected_reads = if table == "public.tiny" { 50 } else { ROWS };
        assert_eq!(
            comparison.state.reads as u64, expected_reads,
            "{table}: snapshot rows"
        );
    }
    pgseam.terminate(Duration::from_secs(30));
}
