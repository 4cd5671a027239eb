//! Logs: `log.format=json` in the worker file gives one JSON object per line, `--log-format`
//! wins over it, and at `trace` level neither format contains the database password (given
//! through a config provider), a SASL JAAS password, or a row value.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, PGSEAM};

const DB_PASSWORD: &str = "Pw-secret-4711";
const JAAS_PASSWORD: &str = "Jaas-secret-0815";
const ROW_VALUE: &str = "row-value-secret-9";

fn assert_no_secret(log: &str) {
    for secret in [DB_PASSWORD, JAAS_PASSWORD, ROW_VALUE] {
        assert!(!log.contains(secret), "`{secret}` is in the log:\n{log}");
    }
}

fn assert_json_lines(log: &str) -> usize {
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
        n += 1;
    }
    n
}

#[test]
fn json_logs_and_no_secrets_at_trace_level() {
    let env = Env::start("logdb");
    env.psql(&format!(
        "CREATE ROLE cdcuser LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}';
         CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g;"
    ));
    let secrets = env.dir.path().join("secrets.properties");
    fs::write(&secrets, format!("pw={DB_PASSWORD}\n")).unwrap();
    let (worker, connector) = env.write_configs(
        "logs",
        &[
            "config.providers=file",
            "config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider",
            "log.format=json",
        ],
        &[
            "database.user=cdcuser",
            &format!("database.password=${{file:{}:pw}}", secrets.display()),
        ],
    );

    // validate, at trace level: the file's json format; then --log-format human wins. The
    // worker variant adds a SASL JAAS password for the producer.
    let sasl_worker = env.dir.path().join("worker-sasl.properties");
    fs::write(
        &sasl_worker,
        format!(
            "{}producer.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"{JAAS_PASSWORD}\";\n",
            fs::read_to_string(&worker).unwrap()
        ),
    )
    .unwrap();
    for (args, json) in [(vec![], true), (vec!["--log-format", "human"], false)] {
        let output = Command::new(PGSEAM)
            .arg("validate")
            .args(&args)
            .arg(&sasl_worker)
            .arg(&connector)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            output.status.success(),
            "{}\n{log}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(log.lines().count() > 5, "expected trace output:\n{log}");
        if json {
            assert_json_lines(&log);
        } else {
            assert!(!log.trim_start().starts_with('{'), "{log}");
        }
        assert_no_secret(&log);
    }

    // standalone, at trace level: snapshot, a streamed row, a clean stop.
    let log_path = env.dir.path().join("standalone.log");
    let mut child = Command::new(PGSEAM)
        .arg("standalone")
        .arg(&worker)
        .arg(&connector)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_for_log(&log_path, "streaming started");
    env.psql(&format!("INSERT INTO t VALUES (51, '{ROW_VALUE}')"));
    env.assert_topic_equals("logs", "public.t", true, Duration::from_secs(60));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let log = fs::read_to_string(&log_path).unwrap();
    let lines = assert_json_lines(&log);
    assert!(lines > 20, "{lines} lines");
    assert_no_secret(&log);
}

fn wait_for_log(path: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
