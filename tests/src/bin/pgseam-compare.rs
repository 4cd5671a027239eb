//! `pgseam-compare`: reads a table's topic back, applies it as a primary-key table, and
//! compares it with the source table, row for row. Used by the demo.
//!
//! ```text
//! pgseam-compare --bootstrap 127.0.0.1:9092 --conninfo "host=… port=… user=… dbname=…" \
//!                --prefix demo [--decimal string|precise] public.customers public.orders
//! ```
//! `PGPASSWORD` is passed to psql from the environment. Exits 1 when a table differs.

use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let mut bootstrap = None;
    let mut conninfo = None;
    let mut prefix = None;
    let mut precise = true;
    let mut tables = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bootstrap" => bootstrap = args.next(),
            "--conninfo" => conninfo = args.next(),
            "--prefix" => prefix = args.next(),
            "--decimal" => precise = args.next().as_deref() != Some("string"),
            other if other.starts_with("--") => bail!("unknown option {other}"),
            table => tables.push(table.to_owned()),
        }
    }
    let (Some(bootstrap), Some(conninfo), Some(prefix)) = (bootstrap, conninfo, prefix) else {
        bail!("usage: pgseam-compare --bootstrap B --conninfo C --prefix P [--decimal string|precise] schema.table…");
    };
    let psql = if std::path::Path::new("/usr/lib/postgresql/15/bin/psql").exists() {
        "/usr/lib/postgresql/15/bin/psql"
    } else {
        "psql"
    };
    let run_sql = |sql: &str| -> anyhow::Result<String> {
        let output = Command::new(psql)
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", &conninfo, "-c", sql])
            .output()
            .context("cannot run psql")?;
        if !output.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8(output.stdout)?)
    };
    let mut all_equal = true;
    for table in &tables {
        let topic = format!("{prefix}.{table}");
        let comparison = pgseam_integration_tests::compare_table(
            &run_sql,
            &bootstrap,
            table,
            &topic,
            precise,
            Duration::from_secs(2),
            Duration::from_secs(30),
        )?;
        let state = &comparison.state;
        println!(
            "{table}: source {} rows, topic {} rows (events: {} r, {} c, {} u, {} d, {} tombstones) — {}",
            comparison.source_rows,
            state.rows.len(),
            state.reads,
            state.creates,
            state.updates,
            state.deletes,
            state.tombstones,
            if comparison.differences.is_empty() { "identical" } else { "DIFFERENT" }
        );
        for difference in comparison.differences.iter().take(10) {
            println!("  {difference}");
        }
        all_equal &= comparison.differences.is_empty();
    }
    Ok(all_equal)
}
