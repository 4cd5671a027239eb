//! The command line without a server: `--help`, `--version`, and the one-line warning for each
//! key pgseam accepts and ignores (`validate --offline` reads the files as `standalone` does).

use std::process::Command;

fn pgseam(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgseam"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgseam");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn help_lists_the_commands_and_version_prints_the_crate_version() {
    let (ok, stdout, _) = pgseam(&["--help"]);
    assert!(ok);
    assert!(
        stdout.starts_with("PostgreSQL → Kafka change data capture"),
        "{stdout}"
    );
    for command in [
        "standalone",
        "offsets",
        "slot",
        "validate",
        "starrocks",
        "verify",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing:\n{stdout}"
        );
    }
    let (ok, stdout, _) = pgseam(&["--version"]);
    assert!(ok);
    assert_eq!(stdout, format!("pgseam {}\n", env!("CARGO_PKG_VERSION")));
    let (ok, stdout, _) = pgseam(&["standalone", "--help"]);
    assert!(ok);
    assert!(stdout.contains("Usage: pgseam standalone"), "{stdout}");
}

#[test]
fn every_ignored_key_gets_a_one_line_warning() {
    let dir = tempfile::tempdir().unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "bootstrap.servers=127.0.0.1:9092\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.storage.file.filename={}\n\
             plugin.path=/usr/share/java\n\
             rest.port=8083\n",
            dir.path().join("offsets.dat").display()
        ),
    )
    .unwrap();
    let connector = dir.path().join("c.properties");
    std::fs::write(
        &connector,
        "name=c\n\
         connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         database.hostname=127.0.0.1\n\
         database.user=postgres\n\
         database.password=pw-4711\n\
         database.dbname=db\n\
         topic.prefix=dbz\n\
         plugin.name=pgoutput\n\
         config.action.reload=restart\n\
         consumer.override.max.poll.records=10\n\
         errors.deadletterqueue.topic.name=dlq\n\
         key.converter.schemas.enable=false\n\
         transforms.unused.type=org.apache.kafka.connect.transforms.RegexRouter\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = pgseam(&[
        "validate",
        "--offline",
        worker.to_str().unwrap(),
        connector.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    for key in [
        "plugin.path",
        "rest.port",
        "config.action.reload",
        "consumer.override.max.poll.records",
        "errors.deadletterqueue.topic.name",
        "key.converter.schemas.enable",
        "transforms.unused.type",
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && (l.ends_with(&format!("key={key}"))
                        || l.ends_with(&format!("key=\"{key}\"")))
            })
            .collect();
        assert_eq!(lines.len(), 1, "{key}: {lines:?}\n{stderr}");
        assert!(lines[0].contains("ignored"), "{}", lines[0]);
    }
    assert!(!stderr.contains("pw-4711"), "{stderr}");
}
