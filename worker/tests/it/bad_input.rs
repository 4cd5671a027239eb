//! Bad input gets a clear error that names the problem, and changes nothing: no slot, no
//! publication, no offsets.

use crate::common;

use std::time::Duration;

use common::{run_to_exit, Env};
use pgseam_testkit::PostgresOptions;

const EXIT_WAIT: Duration = Duration::from_secs(40);

fn assert_fails_with(
    env: &Env,
    connector_extra: &[&str],
    worker_extra: &[&str],
    expected: &[&str],
) {
    let (worker, connector) = env.write_configs("bad", worker_extra, connector_extra);
    let (status, log) = run_to_exit(&worker, &[&connector], EXIT_WAIT);
    assert!(
        !status.success(),
        "pgseam succeeded with {connector_extra:?}:\n{log}"
    );
    for needle in expected {
        assert!(
            log.contains(needle),
            "error for {connector_extra:?} does not mention {needle:?}:\n{log}"
        );
    }
}

fn assert_nothing_changed(env: &Env) {
    assert_eq!(
        env.psql("SELECT count(*) FROM pg_replication_slots"),
        "0",
        "a slot was created"
    );
    assert_eq!(
        env.psql("SELECT count(*) FROM pg_publication"),
        "0",
        "a publication was created"
    );
    assert!(!env.offsets_path().exists(), "an offset file was written");
}

#[test]
fn configuration_mistakes_are_named() {
    let env = Env::start("shop");
    env.psql("CREATE TABLE t (id int PRIMARY KEY)");
    assert_fails_with(
        &env,
        &["databse.hostname=127.0.0.1"],
        &[],
        &["databse.hostname", "did you mean `database.hostname`"],
    );
    let (worker, connector) = env.write_configs("bad", &[], &[]);
    let text = std::fs::read_to_string(&connector)
        .unwrap()
        .replace("database.dbname=shop\n", "");
    std::fs::write(&connector, text).unwrap();
    let (status, log) = run_to_exit(&worker, &[&connector], EXIT_WAIT);
    assert!(
        !status.success() && log.contains("database.dbname"),
        "missing key not named:\n{log}"
    );
    assert_fails_with(
        &env,
        &["plugin.name=decoderbufs"],
        &[],
        &["decoderbufs", "pgoutput"],
    );
    assert_fails_with(
        &env,
        &["snapshot.mode=sometimes"],
        &[],
        &["snapshot.mode", "sometimes"],
    );
    assert_fails_with(
        &env,
        &[
            "tasks.max=1",
            "transforms=mask",
            "transforms.mask.type=org.apache.kafka.connect.transforms.MaskField$Value",
            "transforms.mask.fields=name",
        ],
        &[],
        &["mask", "MaskField"],
    );
    assert_nothing_changed(&env);
}

#[test]
fn server_problems_are_named() {
    let env = Env::start("shop");
    env.psql("CREATE TABLE t (id int PRIMARY KEY)");
    assert_fails_with(
        &env,
        &["database.password=wrong"],
        &[],
        &["password authentication failed", "postgres"],
    );
    assert_fails_with(&env, &["database.dbname=nosuchdb"], &[], &["nosuchdb"]);
    // A port nothing listens on.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_fails_with(
        &env,
        &[&format!("database.port={closed_port}")],
        &[],
        &["cannot connect to PostgreSQL", &closed_port.to_string()],
    );
    assert_fails_with(
        &env,
        &[],
        &["bootstrap.servers=127.0.0.1:1"],
        &["cannot reach the Kafka brokers", "127.0.0.1:1"],
    );
    assert_fails_with(
        &env,
        &["publication.autocreate.mode=disabled"],
        &[],
        &["pub_bad", "does not exist"],
    );
    assert_nothing_changed(&env);
}

#[test]
fn wal_level_must_be_logical() {
    let env = Env::start_with(
        "shop",
        PostgresOptions::default().conf("wal_level = replica"),
    );
    assert_fails_with(&env, &[], &[], &["wal_level", "logical"]);
    assert_nothing_changed(&env);
}
