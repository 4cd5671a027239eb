//! `pgseam starrocks` against a real PostgreSQL: the captured tables (filters and publication
//! rules as the connector applies them) and the statements printed for a schema with every
//! type, compared with a reviewed golden file.
//!
//! No StarRocks runs on these machines: the statements are checked for shape, not executed.
//! Regenerate the golden file after a deliberate change with `PGSEAM_UPDATE_GOLDEN=1`, then
//! review the diff.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pgseam_testkit::Postgres;

const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");

const SCHEMA: &str = r#"
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE all_types (
  c_int2      int2,
  c_int4      int4,
  c_int8      int8 NOT NULL DEFAULT 0,
  c_num       numeric(10,2),
  c_num_big   numeric(50,5),
  c_num_u     numeric,
  c_real      real,
  c_double    double precision,
  c_bool      bool,
  c_text      text,
  c_varchar   varchar(20),
  c_char      char(3),
  c_bytea     bytea,
  c_date      date,
  c_time      time,
  c_time3     time(3),
  c_timetz    timetz,
  c_ts        timestamp,
  c_ts3       timestamp(3),
  c_tstz      timestamptz,
  c_interval  interval,
  c_uuid      uuid,
  c_json      json,
  c_jsonb     jsonb,
  c_int4_arr  int4[],
  c_text_arr  text[],
  c_enum      mood,
  c_inet      inet,
  c_money     money,
  c_xml       xml,
  c_point     point,
  c_domain    posint,
  c_hstore    hstore,
  id          bigint NOT NULL,
  region      varchar(10) NOT NULL,
  PRIMARY KEY (id, region)
);
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email varchar(200));
ALTER TABLE customers REPLICA IDENTITY FULL;
CREATE TABLE audit_log (at timestamptz, note text);
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id uuid PRIMARY KEY, customer_id int NOT NULL, total numeric(12,2), placed_at timestamp(3));
CREATE TABLE sales.secret (id int PRIMARY KEY);
CREATE TABLE measurements (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE measurements_eu PARTITION OF measurements FOR VALUES IN ('eu');
"#;

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/starrocks")
        .join(name)
}

/// Compares with the golden file, or rewrites it under `PGSEAM_UPDATE_GOLDEN=1`.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("PGSEAM_UPDATE_GOLDEN").as_deref() == Ok("1") {
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (PGSEAM_UPDATE_GOLDEN=1 creates it)",
            path.display()
        )
    });
    if expected != actual {
        let actual_path = path.with_extension("actual.sql");
        fs::write(&actual_path, actual).unwrap();
        panic!(
            "output differs from {}; actual output written to {}",
            path.display(),
            actual_path.display()
        );
    }
}

fn write_configs(dir: &Path, pg: &Postgres, db: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let worker = dir.join("worker.properties");
    fs::write(
        &worker,
        format!(
            "bootstrap.servers=kafka:9092\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=false\n\
             offset.storage.file.filename={}\n",
            dir.join("offsets.dat").display()
        ),
    )
    .unwrap();
    let connector = dir.join("connector.properties");
    let mut text = format!(
        "name=shop\n\
         connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         database.hostname=127.0.0.1\n\
         database.port={}\n\
         database.user=postgres\n\
         database.password=postgres\n\
         database.dbname={db}\n\
         topic.prefix=shop\n\
         plugin.name=pgoutput\n\
         decimal.handling.mode=string\n\
         tombstones.on.delete=false\n\
         table.exclude.list=sales\\.secret\n",
        pg.port()
    );
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(&connector, text).unwrap();
    (worker, connector)
}

fn starrocks(worker: &Path, connector: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(PGSEAM)
        .arg("starrocks")
        .arg(worker)
        .arg(connector)
        .args(args)
        .output()
        .expect("run pgseam starrocks");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn prints_the_expected_statements_for_a_real_schema() {
    let pg = Postgres::start().expect("start PostgreSQL");
    pg.create_database("shop").unwrap();
    pg.psql("shop", SCHEMA).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (worker, connector) = write_configs(dir.path(), &pg, "shop", &[]);

    let (ok, sql, log) = starrocks(&worker, &connector, &["--replication-num", "1"]);
    assert!(ok, "pgseam starrocks failed:\n{log}");
    // The publication does not exist: all_tables mode would create it FOR ALL TABLES, which
    // publishes the leaf partition, not its parent; the exclude list drops sales.secret.
    for table in ["all_types", "customers", "measurements_eu", "sales_orders"] {
        assert!(
            sql.contains(&format!("`shop`.`{table}`")),
            "{table} missing:\n{sql}"
        );
    }
    assert!(!sql.contains("secret"), "excluded table printed:\n{sql}");
    assert!(
        !sql.contains("`measurements`"),
        "partitioned parent printed:\n{sql}"
    );
    assert!(sql.contains("-- ==== public.audit_log: SKIPPED: no primary key"));
    // Nothing was changed in the database.
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM pg_publication")
            .unwrap()
            .trim(),
        "0"
    );
    assert_golden("shop_both.sql", &sql);

    // An existing publication limits the tables, as it limits the connector.
    pg.psql(
        "shop",
        "CREATE PUBLICATION dbz_publication FOR TABLE customers, sales.secret",
    )
    .unwrap();
    let (ok, sql, log) = starrocks(&worker, &connector, &["--format", "jsonpaths"]);
    assert!(ok, "{log}");
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS `shop`.`customers`"));
    assert_eq!(sql.matches("CREATE TABLE").count(), 1, "{sql}");
    assert!(!sql.contains("\"envelope\""));
    assert!(!sql.contains("replication_num"));
    // REPLICA IDENTITY FULL: no TOAST warning for customers.
    assert!(!sql.contains("can be TOASTed"), "{sql}");

    // publication.autocreate.mode=disabled with a missing publication is the connector's error.
    let (worker, connector) = write_configs(
        dir.path(),
        &pg,
        "shop",
        &[
            "publication.name=missing",
            "publication.autocreate.mode=disabled",
        ],
    );
    let (ok, _, log) = starrocks(&worker, &connector, &[]);
    assert!(!ok);
    assert!(
        log.contains("publication `missing` does not exist"),
        "{log}"
    );
}

#[test]
fn unreachable_source_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start().expect("start PostgreSQL");
    let (worker, connector) = write_configs(dir.path(), &pg, "nosuchdb", &[]);
    let (ok, _, log) = starrocks(&worker, &connector, &[]);
    assert!(!ok);
    assert!(log.contains("nosuchdb"), "{log}");
}
