//! The compose pipeline's committed files are consistent with pgseam:
//! - the pgseam configs in `compose/pgseam` pass `pgseam validate`;
//! - `compose/starrocks/init.sql` is exactly what `pgseam starrocks` prints for the sample
//!   schema of `compose/postgres`, loaded into a throwaway PostgreSQL 15 (the connector file is
//!   the committed one with only host and port pointed at it).
//!
//! After changing the sample schema, the connector config or the generator, regenerate with
//! `PGSEAM_UPDATE_GOLDEN=1` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pgseam_testkit::Postgres;

const PGSEAM: &str = env!("CARGO_BIN_EXE_pgseam");

/// The arguments the committed init.sql was generated with (also in docs/starrocks.md).
const GENERATE_ARGS: [&str; 4] = ["--format", "jsonpaths", "--replication-num", "1"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn compose_configs_validate() {
    let output = Command::new(PGSEAM)
        .args(["validate", "--offline"])
        .arg(repo().join("compose/pgseam/worker.properties"))
        .arg(repo().join("compose/pgseam/connector.properties"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK"));
}

#[test]
fn committed_init_sql_matches_the_generator() {
    let pg = Postgres::start().expect("start PostgreSQL");
    pg.create_database("shop").unwrap();
    let mut scripts: Vec<PathBuf> = fs::read_dir(repo().join("compose/postgres"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty());
    for script in &scripts {
        pg.psql("shop", &fs::read_to_string(script).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    }

    let dir = tempfile::tempdir().unwrap();
    let committed = fs::read_to_string(repo().join("compose/pgseam/connector.properties")).unwrap();
    let mut rewritten = 0;
    let connector_text: String = committed
        .lines()
        .map(|line| {
            if line.starts_with("database.hostname=") {
                rewritten += 1;
                format!("database.hostname={}", pg.host())
            } else if line.starts_with("database.port=") {
                rewritten += 1;
                format!("database.port={}", pg.port())
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect();
    assert_eq!(rewritten, 2, "connector.properties must set host and port");
    let connector = dir.path().join("connector.properties");
    fs::write(&connector, connector_text).unwrap();

    let output = Command::new(PGSEAM)
        .arg("starrocks")
        .arg(repo().join("compose/pgseam/worker.properties"))
        .arg(&connector)
        .args(GENERATE_ARGS)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).unwrap();
    for table in ["customers", "products", "orders", "order_items"] {
        assert!(
            generated.contains(&format!("CREATE ROUTINE LOAD `shop`.`{table}_jsonpaths`")),
            "{table} has no job:\n{generated}"
        );
    }
    let path = repo().join("compose/starrocks/init.sql");
    if std::env::var("PGSEAM_UPDATE_GOLDEN").as_deref() == Ok("1") {
        fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "compose/starrocks/init.sql is stale: regenerate with PGSEAM_UPDATE_GOLDEN=1 cargo test \
         -p pgseam --test starrocks_compose, and review the diff"
    );
}
