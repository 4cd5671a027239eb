//! A Debezium 1.x connector config posted to the REST API is refused with Connect's error
//! body, each removed key named with its replacement; the plugin validation endpoint puts each
//! error on its key.

use crate::common;

use std::time::Duration;

use common::{Env, Pgseam};
use serde_json::{json, Value};

/// [`common::curl`] with a JSON body, answered with JSON.
fn curl(method: &str, url: &str, data: &str) -> (u16, Value) {
    let (code, body) = common::curl(method, url, Some(data));
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
    )
}

#[test]
fn debezium_1_config_is_refused_naming_the_replacements() {
    let env = Env::start("legacydb");
    let (worker, _) = env.write_configs("unused", &[], &[]);
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[]);
    let base = pgseam.rest_base_url(Duration::from_secs(30));

    let config = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": env.pg.port().to_string(),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": "legacydb",
        "database.server.name": "shop",
        "table.whitelist": "public.orders",
        "plugin.name": "wal2json",
        "database.history.kafka.topic": "schema-changes.shop",
    });
    let (code, body) = curl(
        "POST",
        &format!("{base}/connectors"),
        &json!({"name": "legacy", "config": config}).to_string(),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error_code"], 400);
    let message = body["message"].as_str().unwrap();
    for needle in [
        "`database.server.name` was removed in Debezium 2.0; set `topic.prefix`",
        "`table.whitelist` was removed in Debezium 2.0; rename it to `table.include.list`",
        "`plugin.name=wal2json` was removed in Debezium 2.0; set plugin.name=pgoutput",
        "`database.history.kafka.topic` was removed in Debezium 2.0",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    let (code, body) = curl(
        "PUT",
        &format!("{base}/connector-plugins/PostgresConnector/config/validate"),
        &config.to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let errors_of = |key: &str| -> Vec<String> {
        body["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .unwrap_or_else(|| panic!("no {key} in {body}"))["value"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        errors_of("database.server.name")[0].contains("set `topic.prefix`"),
        "{body}"
    );
    assert!(
        errors_of("table.whitelist")[0].contains("`table.include.list`"),
        "{body}"
    );
    assert!(
        errors_of("plugin.name")[0].contains("set plugin.name=pgoutput"),
        "{body}"
    );
    assert!(
        errors_of("topic.prefix")[0].contains("missing required"),
        "{body}"
    );
    assert!(body["error_count"].as_u64().unwrap() >= 5, "{body}");
    assert!(pgseam.terminate(Duration::from_secs(30)).success());
}
