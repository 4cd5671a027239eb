//! The Kafka Connect REST API, driven the way Debezium deployment scripts drive it: `curl`
//! with a Debezium JSON connector config, against a real PostgreSQL and a real broker.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{curl, Env, Pgseam};
use pgseam_integration_tests::read_topics;
use serde_json::{json, Value};

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The smallest Debezium PostgreSQL connector config for `env`'s database, as a Connect user
/// posts it (plain password), with its own topic prefix and slot.
fn postgres_connector_config(env: &Env, topic_prefix: &str, slot: &str) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": env.pg.port().to_string(),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": env.database,
        "topic.prefix": topic_prefix,
        "slot.name": slot,
    })
}

fn wait_for_state(base: &str, name: &str, connector: &str, task: Option<&str>) -> Value {
    let started = Instant::now();
    loop {
        let (code, body) = curl("GET", &format!("{base}/connectors/{name}/status"), None);
        if code == 200 {
            let status = json_of(&body);
            let task_state = status["tasks"][0]["state"].as_str().map(str::to_owned);
            if status["connector"]["state"] == connector && task_state.as_deref() == task {
                return status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                panic!("connector {name} did not reach {connector}/{task:?}: {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count_values(env: &Env, topic: &str, id_prefix: &str) -> usize {
    let records = read_topics(
        &env.broker.bootstrap_servers(),
        &[topic.to_owned()],
        0,
        Duration::from_millis(700),
        Duration::from_secs(20),
    )
    .expect("read topic");
    records
        .iter()
        .filter(|r| {
            r.value
                .as_ref()
                .is_some_and(|v| v.to_string().contains(id_prefix))
        })
        .count()
}

fn write_worker(env: &Env, extra: &str) -> std::path::PathBuf {
    let path = env.dir.path().join("worker.properties");
    fs::write(
        &path,
        format!(
            "bootstrap.servers={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.storage.file.filename={}\n\
             offset.flush.interval.ms=500\n\
             listeners=http://127.0.0.1:0\n{extra}",
            env.broker.bootstrap_servers(),
            env.offsets_path().display()
        ),
    )
    .unwrap();
    path
}

/// A Debezium connector config as deployment repositories keep it (`debezium.json`), with the
/// password taken from a file through Connect's FileConfigProvider.
fn debezium_json(env: &Env, secrets: &Path) -> String {
    serde_json::to_string_pretty(&json!({
        "name": "inventory-connector",
        "config": {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1",
            "database.hostname": "127.0.0.1",
            "database.port": env.pg.port().to_string(),
            "database.user": "postgres",
            "database.password": format!("${{file:{}:password}}", secrets.display()),
            "database.dbname": env.database,
            "topic.prefix": "dbserver1",
            "plugin.name": "pgoutput",
            "slot.name": "debezium_inventory",
            "publication.name": "dbz_publication",
            "publication.autocreate.mode": "filtered",
            "table.include.list": "public.customers",
            "snapshot.mode": "never",
            "tombstones.on.delete": "false",
            "decimal.handling.mode": "string",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "status.update.interval.ms": 1000
        }
    }))
    .unwrap()
}

#[test]
fn debezium_deployment_script_flow() {
    let env = Env::start("restflow");
    env.psql("CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL)");
    let secrets = env.dir.path().join("db-secrets.properties");
    fs::write(&secrets, "password=postgres\n").unwrap();
    let worker = write_worker(&env, "");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));

    // GET / and the plugin list, as health checks do.
    let (code, body) = curl("GET", &format!("{base}/"), None);
    assert_eq!(code, 200, "{body}");
    assert!(json_of(&body)["version"].is_string(), "{body}");
    let (code, body) = curl("GET", &format!("{base}/connector-plugins"), None);
    assert_eq!(code, 200);
    assert_eq!(
        json_of(&body)[0]["class"],
        "io.debezium.connector.postgresql.PostgresConnector"
    );

    // Invalid configuration: 400 with Connect's error body naming the key.
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors"),
        Some(
            r#"{"name":"bad","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","database.hostname":"h","database.user":"u","database.dbname":"d","topic.prefix":"p","databse.port":"1"}}"#,
        ),
    );
    assert_eq!(code, 400, "{body}");
    let error = json_of(&body);
    assert_eq!(error["error_code"], 400);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Connector configuration is invalid and contains the following 1 error(s):\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("did you mean `database.port`?"),
        "{message}"
    );

    // curl -X POST -H 'Content-Type: application/json' :PORT/connectors -d @debezium.json
    let file = env.dir.path().join("debezium.json");
    fs::write(&file, debezium_json(&env, &secrets)).unwrap();
    let data = format!("@{}", file.display());
    let (code, body) = curl("POST", &format!("{base}/connectors"), Some(&data));
    assert_eq!(code, 201, "{body}");
    let info = json_of(&body);
    assert_eq!(info["name"], "inventory-connector");
    assert_eq!(info["type"], "source");
    assert_eq!(
        info["tasks"],
        json!([{"connector": "inventory-connector", "task": 0}])
    );
    let (code, body) = curl("POST", &format!("{base}/connectors"), Some(&data));
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"error_code": 409, "message": "Connector inventory-connector already exists"})
    );

    let status = wait_for_state(&base, "inventory-connector", "RUNNING", Some("RUNNING"));
    assert_eq!(status["type"], "source");
    let (code, body) = curl("GET", &format!("{base}/connectors"), None);
    assert_eq!(
        (code, json_of(&body)),
        (200, json!(["inventory-connector"]))
    );
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors?expand=status&expand=info"),
        None,
    );
    assert_eq!(code, 200);
    let expanded = json_of(&body);
    assert_eq!(
        expanded["inventory-connector"]["status"]["connector"]["state"],
        "RUNNING"
    );
    assert_eq!(
        expanded["inventory-connector"]["info"]["name"],
        "inventory-connector"
    );
    // The config as written: the provider reference is shown, not the password.
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors/inventory-connector/config"),
        None,
    );
    assert_eq!(code, 200);
    let config = json_of(&body);
    assert!(config["database.password"]
        .as_str()
        .unwrap()
        .starts_with("${file:"));
    assert_eq!(config["snapshot.mode"], "never");
    assert_eq!(config["name"], "inventory-connector");
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors/inventory-connector/tasks/0/status"),
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(json_of(&body)["state"], "RUNNING");

    // snapshot.mode=never: nothing from before; changes stream once the slot exists.
    pgseam.wait_for_log("slot created", Duration::from_secs(30));
    env.psql("INSERT INTO customers VALUES (1, 'first@example.com')");
    let topic = "dbserver1.public.customers";
    let started = Instant::now();
    while count_values(&env, topic, "first@example.com") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no change event"
        );
    }

    // Pause: nothing new is read; resume: it continues.
    let (code, _) = curl(
        "PUT",
        &format!("{base}/connectors/inventory-connector/pause"),
        None,
    );
    assert_eq!(code, 202);
    wait_for_state(&base, "inventory-connector", "PAUSED", Some("PAUSED"));
    env.psql("INSERT INTO customers VALUES (2, 'paused@example.com')");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_values(&env, topic, "paused@example.com"), 0);
    let (code, _) = curl(
        "PUT",
        &format!("{base}/connectors/inventory-connector/resume"),
        None,
    );
    assert_eq!(code, 202);
    wait_for_state(&base, "inventory-connector", "RUNNING", Some("RUNNING"));
    let started = Instant::now();
    while count_values(&env, topic, "paused@example.com") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no event after resume"
        );
    }

    // Metrics: the change events were counted.
    let (code, metrics) = curl("GET", &format!("{base}/metrics"), None);
    assert_eq!(code, 200);
    let created = metrics
        .lines()
        .find(|l| {
            l.starts_with("debezium_metrics_TotalNumberOfCreateEventsSeen{")
                && l.contains("name=\"dbserver1\"")
        })
        .unwrap_or_else(|| panic!("no create counter:\n{metrics}"));
    assert!(created.ends_with(" 2"), "{created}");
    // Compliance: every metric docs/metrics.md lists is exported for this connector.
    let documented = documented_metrics();
    assert!(
        documented.len() >= 30,
        "docs/metrics.md lists only {documented:?}"
    );
    for (section, name) in &documented {
        let found = match section.as_str() {
            "streaming" | "snapshot" => {
                let labels =
                    format!("{{plugin=\"postgres\",name=\"dbserver1\",context=\"{section}\"");
                metrics.lines().any(|l| {
                    l.starts_with(&format!("debezium_metrics_{name}{labels}"))
                        && (l.contains("\"} ") || l.contains(",table=\""))
                }) || (pgseam::metrics::SNAPSHOT_TABLE_METRICS.contains(&name.as_str())
                    && metrics.contains(&format!("# TYPE debezium_metrics_{name} ")))
            }
            _ => {
                metrics.contains(&format!("{name}{{connector=\"inventory-connector\""))
                    || metrics.contains(&format!("{name}_count{{connector=\"inventory-connector\""))
            }
        };
        assert!(found, "{section} metric {name} missing:\n{metrics}");
    }
    // ... and the doc lists every metric pgseam exports.
    for (section, names) in [
        ("streaming", pgseam::metrics::STREAMING_METRICS),
        ("snapshot", pgseam::metrics::SNAPSHOT_METRICS),
        ("pgseam", pgseam::metrics::PGSEAM_METRICS),
    ] {
        for name in names {
            assert!(
                documented.contains(&(section.to_owned(), name.to_string())),
                "{section} metric {name} is not in docs/metrics.md"
            );
        }
    }
    let transactions = metrics
        .lines()
        .find(|l| l.starts_with("debezium_metrics_NumberOfCommittedTransactions{"))
        .unwrap();
    assert!(transactions.ends_with(" 2"), "{transactions}");

    // Tasks and the validate endpoint.
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors/inventory-connector/tasks"),
        None,
    );
    assert_eq!(code, 200);
    let tasks = json_of(&body);
    assert_eq!(
        tasks[0]["id"],
        json!({"connector": "inventory-connector", "task": 0})
    );
    assert_eq!(
        tasks[0]["config"]["task.class"],
        "io.debezium.connector.postgresql.PostgresConnectorTask"
    );
    let (code, body) = curl(
        "PUT",
        &format!("{base}/connector-plugins/PostgresConnector/config/validate"),
        Some(
            r#"{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","name":"v","database.hostname":"h","database.user":"u","database.dbname":"d","topic.prefix":"p","snapshot.mode":"sometimes"}"#,
        ),
    );
    assert_eq!(code, 200, "{body}");
    let validation = json_of(&body);
    assert_eq!(validation["error_count"], 1, "{validation}");
    let snapshot_mode = validation["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "snapshot.mode")
        .unwrap();
    assert!(
        snapshot_mode["value"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("sometimes"),
        "{snapshot_mode}"
    );

    // Offsets: readable any time; alterable only while STOPPED.
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors/inventory-connector/offsets"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let offsets = json_of(&body);
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"server": "dbserver1"})
    );
    let lsn = offsets["offsets"][0]["offset"]["lsn"]
        .as_i64()
        .expect("lsn");
    assert!(lsn > 0);
    let patch =
        json!({"offsets": [{"partition": {"server": "dbserver1"}, "offset": {"lsn": lsn}}]})
            .to_string();
    let (code, body) = curl(
        "PATCH",
        &format!("{base}/connectors/inventory-connector/offsets"),
        Some(&patch),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("must be in the STOPPED state"), "{body}");
    let (code, _) = curl(
        "PUT",
        &format!("{base}/connectors/inventory-connector/stop"),
        None,
    );
    assert_eq!(code, 204);
    let status = wait_for_state(&base, "inventory-connector", "STOPPED", None);
    assert_eq!(status["tasks"], json!([]));
    let (code, body) = curl(
        "PATCH",
        &format!("{base}/connectors/inventory-connector/offsets"),
        Some(&patch),
    );
    assert_eq!(code, 200, "{body}");
    assert!(json_of(&body)["message"]
        .as_str()
        .unwrap()
        .contains("altered successfully"));

    // Restart from STOPPED via resume; the restart endpoint with includeTasks answers 202.
    let (code, _) = curl(
        "PUT",
        &format!("{base}/connectors/inventory-connector/resume"),
        None,
    );
    assert_eq!(code, 202);
    wait_for_state(&base, "inventory-connector", "RUNNING", Some("RUNNING"));
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/inventory-connector/restart?includeTasks=true"),
        None,
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(json_of(&body)["tasks"][0]["state"], "RESTARTING");
    wait_for_state(&base, "inventory-connector", "RUNNING", Some("RUNNING"));

    // Delete: 204, then 404 with Connect's body.
    let (code, _) = curl(
        "DELETE",
        &format!("{base}/connectors/inventory-connector"),
        None,
    );
    assert_eq!(code, 204);
    let (code, body) = curl(
        "GET",
        &format!("{base}/connectors/inventory-connector/status"),
        None,
    );
    assert_eq!(code, 404);
    assert_eq!(
        json_of(&body),
        json!({"error_code": 404, "message": "Connector inventory-connector not found"})
    );
    let (code, body) = curl("GET", &format!("{base}/nowhere"), None);
    assert_eq!(
        (code, json_of(&body)["error_code"].clone()),
        (404, json!(404))
    );
    let status = pgseam.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", pgseam.log_text());
}

#[test]
fn rest_created_connector_survives_a_restart_and_failures_are_reported() {
    let env = Env::start("restpersist");
    env.psql("CREATE TABLE t (id int PRIMARY KEY)");
    let worker = write_worker(&env, "");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    let config = postgres_connector_config(&env, "persist", "slot_persist");
    let (code, body) = curl(
        "PUT",
        &format!("{base}/connectors/persist/config"),
        Some(&config.to_string()),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(json_of(&body)["config"]["database.password"], "****");
    wait_for_state(&base, "persist", "RUNNING", Some("RUNNING"));
    // PUT again (the masked password sent back keeps the stored one): 200.
    let mut again = config.clone();
    again["database.password"] = json!("****");
    let (code, body) = curl(
        "PUT",
        &format!("{base}/connectors/persist/config"),
        Some(&again.to_string()),
    );
    assert_eq!(code, 200, "{body}");
    wait_for_state(&base, "persist", "RUNNING", Some("RUNNING"));
    pgseam.wait_for_log("slot created", Duration::from_secs(30));
    let (code, _) = curl("PUT", &format!("{base}/connectors/persist/pause"), None);
    assert_eq!(code, 202);
    assert!(pgseam.terminate(Duration::from_secs(60)).success());

    // After a restart the connector is back, still paused.
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    wait_for_state(&base, "persist", "PAUSED", Some("PAUSED"));
    let (code, _) = curl("PUT", &format!("{base}/connectors/persist/resume"), None);
    assert_eq!(code, 202);
    wait_for_state(&base, "persist", "RUNNING", Some("RUNNING"));

    // A connector that cannot connect: the worker stays up, task 0 FAILED with the error.
    let mut broken = config.clone();
    broken["database.dbname"] = json!("no_such_db");
    broken["slot.name"] = json!("slot_broken");
    broken["topic.prefix"] = json!("broken");
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors"),
        Some(&json!({"name": "broken", "config": broken}).to_string()),
    );
    assert_eq!(code, 201, "{body}");
    let status = wait_for_state(&base, "broken", "RUNNING", Some("FAILED"));
    assert!(
        status["tasks"][0]["trace"]
            .as_str()
            .unwrap()
            .contains("no_such_db"),
        "{status}"
    );
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors/broken/restart?includeTasks=true&onlyFailed=true"),
        None,
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(json_of(&body)["tasks"][0]["state"], "RESTARTING");
    wait_for_state(&base, "broken", "RUNNING", Some("FAILED"));
    // The healthy connector is unaffected.
    wait_for_state(&base, "persist", "RUNNING", Some("RUNNING"));
    assert!(pgseam.terminate(Duration::from_secs(60)).success());

    let offsets = Command::new(common::PGSEAM)
        .args(["offsets", "show"])
        .arg(&worker)
        .args(["--connector", "persist"])
        .output()
        .unwrap();
    assert!(offsets.status.success());
    let line = String::from_utf8(offsets.stdout).unwrap();
    let shown = json_of(line.trim());
    assert_eq!(shown["partition"], json!({"server": "persist"}));
    assert!(shown["offset"]["lsn"].as_i64().unwrap() > 0, "{line}");
}

/// (section, name) of every metric in docs/metrics.md's tables: `streaming`, `snapshot` or
/// `pgseam`, by the `##` heading above the table; the name is the first column, in backticks.
fn documented_metrics() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h
                .split_whitespace()
                .next()
                .unwrap()
                .to_lowercase()
                .trim_end_matches("'s")
                .to_owned();
        } else if let Some(rest) = line.strip_prefix("| `") {
            let name = &rest[..rest.find('`').unwrap()];
            out.push((section.clone(), name.to_owned()));
        }
    }
    out
}

/// `curl -s -i`: status, headers (lower-case names) and body.
fn curl_i(method: &str, url: &str, data: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-i", "-X", method]).arg(url);
    if let Some(data) = data {
        command.args(["-H", "Content-Type: application/json", "-d", data]);
    }
    let output = command.output().expect("run curl");
    let text = String::from_utf8(output.stdout).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers");
    let mut lines = head.lines();
    let status = lines.next().unwrap();
    let code = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    (code, headers, body.to_owned())
}

/// The rest of the surface: an unsupported transform over REST, `Location`, `GET
/// /connectors/{name}`, `DELETE …/offsets` (refused while running, a reset while stopped), and a
/// connector file on the command line replacing a stored REST config of the same name.
#[test]
fn location_info_offsets_reset_transforms_and_file_over_stored_config() {
    let env = Env::start("restmore");
    env.psql("CREATE TABLE t (id int PRIMARY KEY)");
    let worker = write_worker(&env, "");
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    let mut config = postgres_connector_config(&env, "more", "slot_more");
    config["publication.name"] = json!("pub_more");

    // An unsupported transform: 400 with Connect's error body naming alias and class.
    let mut flatten = config.clone();
    flatten["transforms"] = json!("flat");
    flatten["transforms.flat.type"] = json!("org.apache.kafka.connect.transforms.Flatten$Value");
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors"),
        Some(&json!({"name": "more", "config": flatten}).to_string()),
    );
    assert_eq!(code, 400, "{body}");
    let error = json_of(&body);
    assert_eq!(error["error_code"], 400, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Connector configuration is invalid and contains the following 1 error(s):\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("org.apache.kafka.connect.transforms.Flatten$Value")
            && message.contains("flat"),
        "{message}"
    );
    let (code, _) = curl("GET", &format!("{base}/connectors/more"), None);
    assert_eq!(code, 404, "the rejected connector was not created");

    // POST: 201 with Location naming the new connector.
    let (code, headers, body) = curl_i(
        "POST",
        &format!("{base}/connectors"),
        Some(&json!({"name": "more", "config": config}).to_string()),
    );
    assert_eq!(code, 201, "{body}");
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no Location: {headers:?}"));
    assert_eq!(location, format!("{base}/connectors/more"));

    // GET /connectors/{name}: ConnectorInfo with the (masked) config.
    let (code, body) = curl("GET", &location, None);
    assert_eq!(code, 200, "{body}");
    let info = json_of(&body);
    assert_eq!(info["name"], "more");
    assert_eq!(info["type"], "source");
    assert_eq!(info["tasks"], json!([{"connector": "more", "task": 0}]));
    assert_eq!(info["config"]["topic.prefix"], "more");
    assert_eq!(info["config"]["name"], "more");
    assert_eq!(info["config"]["database.password"], "****");
    wait_for_state(&base, "more", "RUNNING", Some("RUNNING"));
    pgseam.wait_for_log("streaming started", Duration::from_secs(60));
    env.psql("INSERT INTO t VALUES (1)");
    let offsets_url = format!("{base}/connectors/more/offsets");
    let started = Instant::now();
    loop {
        let (code, body) = curl("GET", &offsets_url, None);
        assert_eq!(code, 200, "{body}");
        if json_of(&body)["offsets"][0]["offset"]["lsn"]
            .as_i64()
            .is_some()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no offset: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // TRUNCATE is decoded and skipped (`skipped.operations` defaults to `t`): one event
    // filtered, as NumberOfEventsFiltered counts it.
    env.psql("TRUNCATE t");
    let started = Instant::now();
    loop {
        let (_, metrics) = curl("GET", &format!("{base}/metrics"), None);
        let filtered = metrics
            .lines()
            .find(|l| {
                l.starts_with("debezium_metrics_NumberOfEventsFiltered{")
                    && l.contains("name=\"more\"")
            })
            .unwrap_or_else(|| panic!("no NumberOfEventsFiltered:\n{metrics}"))
            .to_owned();
        if filtered.ends_with(" 1") {
            break;
        }
        assert!(filtered.ends_with(" 0"), "{filtered}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the TRUNCATE was not counted: {filtered}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // DELETE offsets: refused while running, a reset once stopped.
    let (code, body) = curl("DELETE", &offsets_url, None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("must be in the STOPPED state"), "{body}");
    let (code, _) = curl("PUT", &format!("{base}/connectors/more/stop"), None);
    assert_eq!(code, 204);
    wait_for_state(&base, "more", "STOPPED", None);
    let (code, body) = curl("DELETE", &offsets_url, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "The Connect framework-managed offsets for this connector have been reset successfully. However, if this connector manages offsets externally, they will need to be manually reset in the system that the connector uses."
    );
    let (code, body) = curl("GET", &offsets_url, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body), json!({"offsets": []}));
    assert!(pgseam.terminate(Duration::from_secs(60)).success());

    // A connector file of the same name on the command line wins over the stored config, and
    // the log says so.
    let file = env.dir.path().join("more.properties");
    fs::write(
        &file,
        format!(
            "name=more\n\
             connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             database.hostname=127.0.0.1\n\
             database.port={}\n\
             database.user=postgres\n\
             database.password=postgres\n\
             database.dbname={}\n\
             topic.prefix=fromfile\n\
             slot.name=slot_more\n\
             publication.name=pub_more\n",
            env.pg.port(),
            env.database
        ),
    )
    .unwrap();
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&file]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));
    pgseam.wait_for_log(
        "the connector file named on the command line replaces the stored configuration of the same name",
        Duration::from_secs(30),
    );
    let line = pgseam
        .log_text()
        .lines()
        .find(|l| l.contains("replaces the stored configuration"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("connector=more") && line.contains("more.properties"),
        "{line}"
    );
    let (code, body) = curl("GET", &format!("{base}/connectors/more/config"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["topic.prefix"], "fromfile", "{body}");
    // Secrets are masked in GET …/config (a pgseam extension, docs/configuration.md).
    assert_eq!(json_of(&body)["database.password"], "****", "{body}");
    assert!(pgseam.terminate(Duration::from_secs(60)).success());
}
