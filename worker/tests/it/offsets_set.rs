//! `pgseam offsets set` against a real PostgreSQL and broker: the checks (invalid offset, a
//! position the slot cannot serve, an active slot, a missing slot, a worker that runs the
//! connector), `--reset`, and a moved offset that pgseam then resumes from: the skipped
//! transaction never reaches the topic, the next one does.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Env, Pgseam, PGSEAM};
use pgseam_connector_pg::connection::ReplicationConnection;
use pgseam_connector_pg::{ConnectParams, SslMode, TlsSettings};
use pgseam_integration_tests::read_topics;

fn pgseam(args: &[&str], worker: &Path, connector: &Path, extra: &[&str]) -> Output {
    Command::new(PGSEAM)
        .args(args)
        .arg(worker)
        .arg(connector)
        .args(extra)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pgseam")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn refused(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal, got:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lsn(env: &Env, sql: &str) -> String {
    env.psql(sql).trim().to_owned()
}

#[test]
fn offsets_set_checks_then_pgseam_resumes_from_the_new_position() {
    let env = Env::start("offdb");
    env.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let (worker, connector) = env.write_configs("off", &[], &[]);
    let set = |extra: &[&str]| pgseam(&["offsets", "set"], &worker, &connector, extra);

    // No slot yet: a position cannot be resumed from; --reset has nothing to remove.
    let err = refused(&set(&["--lsn", "0/1"]));
    assert!(
        err.contains("slot `slot_off` does not exist, so the connector cannot resume from 0/1"),
        "{err}"
    );
    let out = ok(&set(&["--reset"]));
    assert!(out.contains("no stored offset"), "{out}");
    // Exactly one of --lsn, --offset, --reset.
    let err = refused(&set(&[]));
    assert!(err.contains("--lsn") && err.contains("--reset"), "{err}");

    // Snapshot and stream, then a clean stop.
    let mut run = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    run.wait_for_log("streaming started", Duration::from_secs(60));
    env.psql("INSERT INTO t VALUES (3, 'c')");
    env.assert_topic_equals("off", "public.t", true, Duration::from_secs(60));
    assert!(run.terminate(Duration::from_secs(30)).success());

    // While pgseam is stopped: A, then B; the offset is moved past A.
    env.psql("INSERT INTO t VALUES (100, 'skipped')");
    let after_a = lsn(&env, "SELECT pg_current_wal_lsn()");
    env.psql("INSERT INTO t VALUES (101, 'kept')");
    let confirmed = lsn(
        &env,
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'slot_off'",
    );

    // Refusals: not an offset; before the slot's position; after the server's position.
    let err = refused(&set(&[
        "--offset",
        r#"{"snapshot":"INITIAL","snapshot_completed":true}"#,
    ]));
    assert!(
        err.contains("invalid offset: completed snapshot offset without `lsn`"),
        "{err}"
    );
    let err = refused(&set(&["--lsn", "0/10"]));
    assert!(
        err.contains(&format!(
            "0/10 is before slot `slot_off`'s confirmed position {confirmed}"
        )),
        "{err}"
    );
    let err = refused(&set(&["--lsn", "FF/0"]));
    assert!(
        err.contains("FF/0 is after the server's current WAL position"),
        "{err}"
    );

    // Refusal: a worker that has the connector answers on the listener.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 512];
        let n = stream.read(&mut request).unwrap();
        let request = String::from_utf8_lossy(&request[..n]).into_owned();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            .unwrap();
        request
    });
    let busy_worker = env.dir.path().join("busy-worker.properties");
    std::fs::write(
        &busy_worker,
        std::fs::read_to_string(&worker).unwrap().replace(
            "listeners=http://127.0.0.1:0",
            &format!("listeners=http://127.0.0.1:{port}"),
        ),
    )
    .unwrap();
    let err = refused(&pgseam(
        &["offsets", "set"],
        &busy_worker,
        &connector,
        &["--lsn", &after_a],
    ));
    assert!(
        err.contains(&format!(
            "a worker running connector off answers on http://127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(server
        .join()
        .unwrap()
        .starts_with("GET /connectors/off HTTP/1.1"));

    // Refusal: the slot is active.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let params = ConnectParams {
        host: "127.0.0.1".into(),
        port: env.pg.port(),
        user: "postgres".into(),
        password: Some("postgres".into()),
        dbname: "offdb".into(),
        application_name: "offsets-test-holder".into(),
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
        conn.start_replication(&format!(
            "START_REPLICATION SLOT slot_off LOGICAL {confirmed} (proto_version '1', publication_names '\"pub_off\"')"
        ))
        .await
        .unwrap();
        conn
    });
    let err = refused(&set(&["--lsn", &after_a]));
    assert!(err.contains("slot `slot_off` is active (PID "), "{err}");
    drop(holder);
    drop(runtime);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env
        .psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'slot_off'")
        .trim()
        != "f"
    {
        assert!(std::time::Instant::now() < deadline, "slot still active");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Move the offset past A.
    let out = ok(&set(&["--lsn", &after_a]));
    assert!(
        out.contains("connector off: offset set in offset file"),
        "{out}"
    );
    assert!(out.contains("will be skipped"), "{out}");
    assert!(out.contains("previous offset: {"), "{out}");
    let shown = ok(&Command::new(PGSEAM)
        .args(["offsets", "show"])
        .arg(&worker)
        .args(["--connector", "off"])
        .output()
        .unwrap());
    let expected_lsn: u64 = {
        let (hi, lo) = after_a.split_once('/').unwrap();
        (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
    };
    assert!(
        shown.contains(&format!("\"lsn_proc\":{expected_lsn}")),
        "{shown}"
    );

    // pgseam resumes there: B arrives, A never does.
    let mut run = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    run.wait_for_log(
        "resuming streaming from stored offset",
        Duration::from_secs(60),
    );
    env.psql("INSERT INTO t VALUES (102, 'after')");
    let messages = read_topics(
        &env.broker.bootstrap_servers(),
        &["off.public.t".to_owned()],
        5,
        Duration::from_millis(1500),
        Duration::from_secs(60),
    )
    .unwrap();
    let ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.key_payload()?.get("id")?.as_i64())
        .collect();
    assert!(ids.contains(&101) && ids.contains(&102), "{ids:?}");
    assert!(
        !ids.contains(&100),
        "the skipped transaction was sent: {ids:?}"
    );
    assert!(run.terminate(Duration::from_secs(30)).success());

    // --reset removes it, and says the slot must go too.
    let out = ok(&set(&["--reset"]));
    assert!(out.contains("offset removed from offset file"), "{out}");
    assert!(out.contains("slot `slot_off` still exists"), "{out}");
}
