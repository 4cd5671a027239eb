//! The native worker configuration through the binary: a TOML worker file, its errors named by
//! key, and `PGSEAM_WORKER_*` environment overrides winning over the file (TOML and
//! properties).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");

const CONNECTOR: &str =
    "name=inv\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\n\
database.hostname=db\ndatabase.user=u\ndatabase.dbname=d\ntopic.prefix=inv\nplugin.name=pgoutput\n";

fn validate(worker: &Path, connector: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PGSEAM);
    cmd.args(["validate", "--offline"])
        .arg(worker)
        .arg(connector);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn toml_worker_file_and_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let connector = dir.path().join("inv.properties");
    fs::write(&connector, CONNECTOR).unwrap();
    let worker = dir.path().join("worker.toml");
    fs::write(
        &worker,
        format!(
            r#"
"bootstrap.servers" = "kafka:9092"
"key.converter" = "org.apache.kafka.connect.json.JsonConverter"
"key.converter.schemas.enable" = false
listeners = ["http://:8083", "http://127.0.0.1:8084"]
log.format = "json"

[offset.storage.file]
filename = "{}"

[offset.flush]
"interval.ms" = "soon"
"#,
            dir.path().join("offsets.dat").display()
        ),
    )
    .unwrap();

    // The file's bad value is named by key; the log is JSON, as the file asks.
    let out = validate(&worker, &connector, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("worker.toml: invalid value `soon` for `offset.flush.interval.ms`"),
        "{err}"
    );

    // The environment wins over the file: the value, and the log format.
    let out = validate(
        &worker,
        &connector,
        &[
            ("PGSEAM_WORKER_OFFSET_FLUSH_INTERVAL_MS", "1000"),
            ("PGSEAM_WORKER_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("=> OK"));
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| {
            l.contains("worker property set from the environment")
                && l.contains("offset.flush.interval.ms")
        })
        .unwrap_or_else(|| panic!("{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["key"], "offset.flush.interval.ms");
    assert_eq!(
        v["fields"]["variable"],
        "PGSEAM_WORKER_OFFSET_FLUSH_INTERVAL_MS"
    );

    // An unknown key in TOML is named, with the closest known key.
    fs::write(
        &worker,
        "\"bootstrap.server\" = \"k:9092\"\n\"offset.storage.file.filename\" = \"/tmp/o\"\n",
    )
    .unwrap();
    let err = stderr(&validate(&worker, &connector, &[]));
    assert!(
        err.contains(
            "unknown worker property `bootstrap.server` (did you mean `bootstrap.servers`?)"
        ),
        "{err}"
    );
    // Invalid TOML.
    fs::write(&worker, "bootstrap.servers = \n").unwrap();
    let err = stderr(&validate(&worker, &connector, &[]));
    assert!(
        err.contains("not a valid TOML worker configuration"),
        "{err}"
    );

    // A properties worker file takes the same overrides; a missing required key can come from
    // the environment alone.
    let properties = dir.path().join("worker.properties");
    fs::write(&properties, "bootstrap.servers=kafka:9092\n").unwrap();
    let err = stderr(&validate(&properties, &connector, &[]));
    assert!(err.contains("offset.storage.file.filename"), "{err}");
    let out = validate(
        &properties,
        &connector,
        &[(
            "PGSEAM_WORKER_OFFSET_STORAGE_FILE_FILENAME",
            dir.path().join("o.dat").to_str().unwrap(),
        )],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
