//! `pgseam validate` against a real PostgreSQL: a ready setup passes; a role without
//! REPLICATION, a missing publication with autocreate disabled, a table without a primary
//! key, an unreadable table, tables the role does not own under `filtered`, and an
//! unreachable server each fail with their fix and exit code 1; `--offline` checks the files
//! only.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use pgseam_testkit::Postgres;

const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");
const DB: &str = "valdb";

struct Setup {
    pg: Postgres,
    dir: tempfile::TempDir,
    worker: PathBuf,
}

impl Setup {
    fn start() -> Setup {
        let pg = Postgres::start().expect("start PostgreSQL");
        pg.create_database(DB).unwrap();
        pg.psql(
            DB,
            "CREATE TABLE orders (id int PRIMARY KEY, note text);
             CREATE TABLE lines (order_id int, n int, PRIMARY KEY (order_id, n));
             CREATE TABLE audit (at timestamptz, what text);
             CREATE ROLE plain LOGIN PASSWORD 'plain';
             GRANT SELECT ON orders, lines TO plain;
             CREATE ROLE repl LOGIN REPLICATION PASSWORD 'repl';
             GRANT SELECT ON orders TO repl;",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let worker = dir.path().join("worker.properties");
        fs::write(
            &worker,
            format!(
                "bootstrap.servers=127.0.0.1:1\noffset.storage.file.filename={}\n",
                dir.path().join("offsets.dat").display()
            ),
        )
        .unwrap();
        Setup { pg, dir, worker }
    }

    /// A connector file `name.properties` as `user`, with `extra` lines.
    fn connector(&self, name: &str, user: &str, extra: &[&str]) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.properties"));
        let mut text = format!(
            "name={name}\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             database.hostname=127.0.0.1\ndatabase.port={}\ndatabase.user={user}\n\
             database.password={user}\ndatabase.dbname={DB}\ntopic.prefix={name}\n\
             plugin.name=pgoutput\nslot.name=slot_{name}\npublication.name=pub_{name}\n",
            self.pg.port()
        );
        for line in extra {
            text.push_str(line);
            text.push('\n');
        }
        fs::write(&path, text).unwrap();
        path
    }

    fn validate(&self, args: &[&str], connector: &PathBuf) -> (Output, String) {
        let output = Command::new(PGSEAM)
            .arg("validate")
            .args(args)
            .arg(&self.worker)
            .arg(connector)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run pgseam validate");
        let text = format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output, text)
    }
}

/// The report line of `check` (and its fix lines).
fn check<'a>(report: &'a str, name: &str) -> &'a str {
    let start = report
        .find(&format!("] {name}: "))
        .unwrap_or_else(|| panic!("no `{name}` check in:\n{report}"));
    let start = report[..start].rfind('\n').map_or(0, |i| i + 1);
    let end = report[start + 1..]
        .find("\n  [")
        .or_else(|| report[start + 1..].find("\n  =>"))
        .map_or(report.len(), |i| start + 1 + i);
    &report[start..end]
}

#[test]
fn validate_reports_server_problems_with_fixes() {
    let s = Setup::start();

    // A superuser, PK tables only: everything passes.
    let good = s.connector(
        "good",
        "postgres",
        &["table.include.list=public.orders,public.lines"],
    );
    let (out, text) = s.validate(&[], &good);
    assert!(out.status.success(), "{text}");
    for name in [
        "configuration",
        "connection",
        "server version",
        "wal_level",
        "replication privilege",
        "replication connection",
        "replication slot",
        "WAL retention",
        "WAL senders",
        "publication",
        "captured tables",
        "SELECT privilege",
        "replica identity",
    ] {
        assert!(
            check(&text, name).starts_with("  [ok  ]"),
            "{name}:\n{text}"
        );
    }
    assert!(
        check(&text, "captured tables").contains("2 tables: public.lines, public.orders"),
        "{text}"
    );
    assert!(text.contains("  => OK\n"), "{text}");

    // A limited max_slot_wal_keep_size is a warning, not a failure.
    s.pg.psql(DB, "ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'")
        .unwrap();
    s.pg.reload().unwrap();
    let (out, text) = s.validate(&[], &good);
    assert!(out.status.success(), "{text}");
    let line = check(&text, "WAL retention");
    assert!(
        line.starts_with("  [WARN] WAL retention: max_slot_wal_keep_size = 1GB"),
        "{text}"
    );
    assert!(text.contains("  => OK, 1 warning\n"), "{text}");
    s.pg.psql(DB, "ALTER SYSTEM RESET max_slot_wal_keep_size")
        .unwrap();
    s.pg.reload().unwrap();

    // A table without a primary key (and default replica identity).
    let nopk = s.connector("nopk", "postgres", &[]);
    let (out, text) = s.validate(&[], &nopk);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = check(&text, "replica identity");
    assert!(line.starts_with("  [FAIL]"), "{text}");
    assert!(
        line.contains("public.audit has no primary key and no usable replica identity"),
        "{line}"
    );
    assert!(
        line.contains(r#"fix: ALTER TABLE "public"."audit" REPLICA IDENTITY FULL;"#),
        "{line}"
    );
    s.pg.psql(DB, "ALTER TABLE audit REPLICA IDENTITY FULL")
        .unwrap();
    let (out, text) = s.validate(&[], &nopk);
    assert!(out.status.success(), "{text}");
    assert!(
        check(&text, "replica identity").contains("(1 with REPLICA IDENTITY FULL)"),
        "{text}"
    );
    s.pg.psql(DB, "ALTER TABLE audit REPLICA IDENTITY DEFAULT")
        .unwrap();

    // A missing publication with autocreate disabled.
    let disabled = s.connector(
        "disabled",
        "postgres",
        &[
            "publication.autocreate.mode=disabled",
            "table.include.list=public.orders",
        ],
    );
    let (out, text) = s.validate(&[], &disabled);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = check(&text, "publication");
    assert!(line.starts_with("  [FAIL]"), "{text}");
    assert!(
        line.contains("`pub_disabled` does not exist and publication.autocreate.mode=disabled"),
        "{line}"
    );
    assert!(
        line.contains(r#"fix: CREATE PUBLICATION "pub_disabled" FOR TABLE "public"."orders";"#),
        "{line}"
    );
    // Created by hand, but without the table: a warning naming it.
    s.pg.psql(DB, "CREATE PUBLICATION pub_disabled FOR TABLE lines")
        .unwrap();
    let (out, text) = s.validate(&[], &disabled);
    assert!(out.status.success(), "{text}");
    let line = check(&text, "publication");
    assert!(
        line.starts_with("  [WARN]") && line.contains("does not publish public.orders"),
        "{text}"
    );
    assert!(
        line.contains(r#"ALTER PUBLICATION "pub_disabled" ADD TABLE "public"."orders";"#),
        "{line}"
    );
    assert!(
        check(&text, "captured tables").starts_with("  [WARN]"),
        "{text}"
    );

    // A role without REPLICATION (and not a superuser, so FOR ALL TABLES is out too).
    let plain = s.connector("plain", "plain", &["table.include.list=public.orders"]);
    let (out, text) = s.validate(&[], &plain);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = check(&text, "replication privilege");
    assert!(
        line.starts_with("  [FAIL]")
            && line.contains("role plain has neither REPLICATION nor superuser"),
        "{text}"
    );
    assert!(
        line.contains(r#"fix: ALTER ROLE "plain" WITH REPLICATION;"#),
        "{line}"
    );
    let line = check(&text, "replication connection");
    assert!(line.starts_with("  [FAIL]"), "{text}");
    assert!(
        line.contains("superuser or replication role") || line.contains("REPLICATION"),
        "{line}"
    );
    let line = check(&text, "publication");
    assert!(
        line.starts_with("  [FAIL]") && line.contains("needs a superuser"),
        "{text}"
    );
    assert!(
        check(&text, "SELECT privilege").starts_with("  [ok  ]"),
        "{text}"
    );

    // REPLICATION, but no SELECT on one table and no ownership for `filtered`.
    let repl = s.connector(
        "repl",
        "repl",
        &[
            "publication.autocreate.mode=filtered",
            "table.include.list=public.orders,public.lines",
        ],
    );
    s.pg.psql(DB, &format!("GRANT CREATE ON DATABASE {DB} TO repl"))
        .unwrap();
    let (out, text) = s.validate(&[], &repl);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        check(&text, "replication privilege").starts_with("  [ok  ]"),
        "{text}"
    );
    assert!(
        check(&text, "replication connection").starts_with("  [ok  ]"),
        "{text}"
    );
    let line = check(&text, "SELECT privilege");
    assert!(
        line.starts_with("  [FAIL]") && line.contains("repl cannot read public.lines"),
        "{text}"
    );
    assert!(
        line.contains(r#"fix: GRANT SELECT ON "public"."lines" TO "repl";"#),
        "{line}"
    );
    let line = check(&text, "publication");
    assert!(
        line.starts_with("  [FAIL]")
            && line.contains("repl does not own public.lines, public.orders"),
        "{text}"
    );
    assert!(
        line.contains(r#"ALTER TABLE "public"."orders" OWNER TO "repl";"#),
        "{line}"
    );
    // Once it owns them, filtered mode can create the publication.
    s.pg.psql(
        DB,
        "ALTER TABLE orders OWNER TO repl; ALTER TABLE lines OWNER TO repl",
    )
    .unwrap();
    let (out, text) = s.validate(&[], &repl);
    assert!(out.status.success(), "{text}");
    assert!(
        check(&text, "publication")
            .contains("will be created (publication.autocreate.mode=filtered)"),
        "{text}"
    );

    // The files only.
    let (out, text) = s.validate(&["--offline"], &plain);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("replication privilege"), "{text}");

    // An unreachable server: the connection fails, the rest is skipped.
    let Setup { pg, dir, worker } = s;
    pg.stop().unwrap();
    let output = Command::new(PGSEAM)
        .arg("validate")
        .arg(&worker)
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let line = check(&text, "connection");
    assert!(
        line.starts_with("  [FAIL]")
            && line.contains("fix: check database.hostname / database.port"),
        "{text}"
    );
    assert!(check(&text, "wal_level").starts_with("  [skip]"), "{text}");
    drop(dir);
}

#[test]
fn config_errors_exit_1_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let worker = dir.path().join("worker.properties");
    fs::write(&worker, "offset.storage.file.filename=/tmp/x\n").unwrap();
    let connector = dir.path().join("c.properties");
    fs::write(
        &connector,
        "name=c\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         database.hostname=h\ndatabase.user=u\ndatabase.dbname=d\n\
         database.server.name=old\ntable.whitelist=public.t\n",
    )
    .unwrap();
    let output = Command::new(PGSEAM)
        .args(["validate", "--offline"])
        .arg(&worker)
        .arg(&connector)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("`database.server.name` was removed in Debezium 2.0; set `topic.prefix`"),
        "{err}"
    );
    assert!(
        err.contains(
            "`table.whitelist` was removed in Debezium 2.0; rename it to `table.include.list`"
        ),
        "{err}"
    );
    assert!(
        err.contains("missing required connector property `topic.prefix`"),
        "{err}"
    );
}
