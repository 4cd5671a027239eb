//! `pgseam slot list|drop` against a real PostgreSQL: slots of the connector's database with
//! lag and the connector that reads them, another database's slot only with `--all`, an
//! active slot refused with its PID, the confirmation, a missing slot, and the note about a
//! stored offset.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgseam_connector_pg::connection::ReplicationConnection;
use pgseam_connector_pg::{ConnectParams, SslMode, TlsSettings};
use pgseam_testkit::Postgres;

const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");
const DB: &str = "slotdb";

struct Setup {
    pg: Postgres,
    dir: tempfile::TempDir,
    worker: PathBuf,
    connector: PathBuf,
}

fn setup() -> Setup {
    let pg = Postgres::start().expect("start PostgreSQL");
    pg.create_database(DB).unwrap();
    pg.create_database("otherdb").unwrap();
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
    let connector = dir.path().join("inv.properties");
    fs::write(
        &connector,
        format!(
            "name=inv\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             database.hostname=127.0.0.1\ndatabase.port={}\ndatabase.user=postgres\n\
             database.password=postgres\ndatabase.dbname={DB}\ntopic.prefix=inv\n\
             plugin.name=pgoutput\nslot.name=slot_inv\npublication.name=pub_inv\n",
            pg.port()
        ),
    )
    .unwrap();
    Setup {
        pg,
        dir,
        worker,
        connector,
    }
}

fn pgseam(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = Command::new(PGSEAM);
    cmd.args(args)
        .args(paths)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    cmd.output().expect("run pgseam")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn list_shows_lag_and_owner_and_drop_checks_before_dropping() {
    let s = setup();
    s.pg.psql(
        DB,
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE PUBLICATION pub_inv FOR TABLE t;
         SELECT pg_create_logical_replication_slot('slot_inv', 'pgoutput');
         SELECT pg_create_logical_replication_slot('orphan', 'pgoutput');
         INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g;",
    )
    .unwrap();
    s.pg.psql(
        "otherdb",
        "SELECT pg_create_logical_replication_slot('elsewhere', 'pgoutput');",
    )
    .unwrap();

    // --- list (table) ---
    let out = pgseam(&["slot", "list"], &[&s.worker, &s.connector]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let line = |slot: &str| -> String {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{slot} ")))
            .unwrap_or_else(|| panic!("no line for {slot}:\n{table}"))
            .to_owned()
    };
    let inv = line("slot_inv");
    assert!(
        inv.contains("logical") && inv.contains("pgoutput") && inv.contains(DB),
        "{inv}"
    );
    assert!(inv.trim_end().ends_with("inv"), "{inv}");
    assert!(inv.contains("reserved"), "{inv}");
    assert!(
        inv.contains("KiB") || inv.contains("MiB"),
        "lag in human units: {inv}"
    );
    assert!(line("orphan").trim_end().ends_with('-'), "{table}");
    assert!(!table.contains("elsewhere"), "{table}");

    // --- list (json, --all) ---
    let out = pgseam(
        &["slot", "list", "--all", "--format", "json"],
        &[&s.worker, &s.connector],
    );
    assert!(out.status.success(), "{}", text(&out));
    let slots = json_lines(&out);
    assert_eq!(slots.len(), 3, "{slots:#?}");
    let inv = slots.iter().find(|v| v["slot"] == "slot_inv").unwrap();
    assert_eq!(inv["connector"], "inv");
    assert_eq!(inv["active"], false);
    assert_eq!(inv["wal_status"], "reserved");
    assert!(inv["lag_bytes"].as_i64().unwrap() > 400_000, "{inv}");
    assert!(inv["retained_bytes"].as_i64().unwrap() >= inv["lag_bytes"].as_i64().unwrap());
    assert!(inv["confirmed_flush_lsn"].as_str().unwrap().contains('/'));
    let elsewhere = slots.iter().find(|v| v["slot"] == "elsewhere").unwrap();
    assert_eq!(elsewhere["database"], "otherdb");
    assert_eq!(elsewhere["connector"], serde_json::Value::Null);

    // --- a connector created over REST (kept beside the offsets) is named too ---
    let store = serde_json::json!({
        "format": "pgseam-connectors-v1",
        "connectors": [{
            "name": "rest1",
            "target_state": "STOPPED",
            "config": {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "database.hostname": "127.0.0.1",
                "database.port": s.pg.port().to_string(),
                "database.user": "postgres",
                "database.password": "postgres",
                "database.dbname": DB,
                "topic.prefix": "rest1",
                "plugin.name": "pgoutput",
                "slot.name": "orphan",
                "name": "rest1",
            },
        }],
    });
    fs::write(
        s.dir.path().join("offsets.dat.connectors.json"),
        store.to_string(),
    )
    .unwrap();
    let out = pgseam(&["slot", "list", "--format", "json"], &[&s.worker]);
    assert!(out.status.success(), "{}", text(&out));
    let slots = json_lines(&out);
    let orphan = slots.iter().find(|v| v["slot"] == "orphan").unwrap();
    assert_eq!(orphan["connector"], "rest1", "{slots:#?}");
    let inv = slots.iter().find(|v| v["slot"] == "slot_inv").unwrap();
    assert_eq!(inv["connector"], serde_json::Value::Null);
    fs::remove_file(s.dir.path().join("offsets.dat.connectors.json")).unwrap();
    let out = pgseam(&["slot", "list"], &[&s.worker]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no connector: name connector files"),
        "{}",
        text(&out)
    );

    // --- drop: an active slot is refused with the PID ---
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let params = ConnectParams {
        host: "127.0.0.1".into(),
        port: s.pg.port(),
        user: "postgres".into(),
        password: Some("postgres".into()),
        dbname: DB.into(),
        application_name: "slot-test-holder".into(),
        tls: TlsSettings {
            mode: SslMode::Disable,
            root_cert: None,
            cert: None,
            key: None,
            key_password: None,
        },
    };
    let holder = runtime.block_on(async {
        let mut conn = ReplicationConnection::connect(&params).await.unwrap();
        conn.start_replication(
            "START_REPLICATION SLOT slot_inv LOGICAL 0/0 (proto_version '1', publication_names '\"pub_inv\"')",
        )
        .await
        .unwrap();
        conn
    });
    let pid = wait_for(|| {
        s.pg.psql(
            DB,
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'slot_inv' AND active",
        )
        .ok()
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
    });
    let out = pgseam(
        &["slot", "drop", "--confirm", "slot_inv"],
        &[&s.worker, &s.connector],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "slot `slot_inv` on 127.0.0.1:{}/{DB} is active (PID {pid})",
            s.pg.port()
        )),
        "{err}"
    );
    assert!(slot_exists(&s, "slot_inv"));
    drop(holder);
    drop(runtime);
    wait_for(|| {
        s.pg.psql(
            DB,
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'slot_inv' AND NOT active",
        )
        .ok()
        .filter(|o| o.trim() == "1")
    });

    // --- drop: no confirmation (stdin is not a terminal), a wrong one, a missing slot ---
    let out = pgseam(&["slot", "drop"], &[&s.worker, &s.connector]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("confirm with `--confirm slot_inv`"),
        "{}",
        text(&out)
    );
    let out = pgseam(
        &["slot", "drop", "--confirm", "slot_in"],
        &[&s.worker, &s.connector],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the confirmation `slot_in` does not match"),
        "{}",
        text(&out)
    );
    assert!(slot_exists(&s, "slot_inv"));
    let out = pgseam(
        &["slot", "drop", "--slot", "nope", "--confirm", "nope"],
        &[&s.worker, &s.connector],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("there is no replication slot `nope`") && err.contains("orphan, slot_inv"),
        "{err}"
    );
    // Another database's slot is not dropped through this connector.
    let out = pgseam(
        &[
            "slot",
            "drop",
            "--slot",
            "elsewhere",
            "--confirm",
            "elsewhere",
        ],
        &[&s.worker, &s.connector],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("belongs to database otherdb"),
        "{}",
        text(&out)
    );

    // --- drop: another slot by name, then the connector's own (no stored offset) ---
    let out = pgseam(
        &["slot", "drop", "--slot", "orphan", "--confirm", "orphan"],
        &[&s.worker, &s.connector],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!slot_exists(&s, "orphan"));
    let out = pgseam(
        &["slot", "drop", "--confirm", "slot_inv"],
        &[&s.worker, &s.connector],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "dropped replication slot `slot_inv` on 127.0.0.1:{}/{DB}",
            s.pg.port()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("has no stored offset"), "{stdout}");
    assert!(!slot_exists(&s, "slot_inv"));

    // --- list: the connector's slot is gone, and says so ---
    let out = pgseam(&["slot", "list"], &[&s.worker, &s.connector]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("(no replication slots)"), "{table}");
    assert!(
        table.contains("connector \"inv\": slot `slot_inv` does not exist"),
        "{table}"
    );
    let _ = s.dir;
}

fn slot_exists(s: &Setup, slot: &str) -> bool {
    s.pg.psql(
        DB,
        &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )
    .unwrap()
    .trim()
        == "1"
}

/// Polls `probe` until it returns a value (10 s at most).
fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
