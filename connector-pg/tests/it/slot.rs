//! Slot trouble against a real PostgreSQL 15: a slot held by another connection, slot creation
//! blocked by an open transaction, and a slot whose WAL is lost.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::params;
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::slot::{self, start_replication_command};
use pgseam_connector_pg::{
    ErrorClass, Feedback, PublicationAutocreate, SnapshotMode, SnapshotSettings, SourceConfig,
    SourceError, StartPoint,
};
use pgseam_testkit::{Postgres, PostgresOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_in_use_is_retried_then_named() {
    let pg = Postgres::start().unwrap();
    pg.psql(
        "postgres",
        "CREATE PUBLICATION p FOR ALL TABLES; \
         SELECT pg_create_logical_replication_slot('busy', 'pgoutput')",
    )
    .unwrap();
    let p = params(&pg, "127.0.0.1", "postgres", Some("postgres"));
    let client = connect_query_session(&p).await.unwrap();
    let mut holder = ReplicationConnection::connect(&p).await.unwrap();
    let holder_pid = holder.backend_pid().unwrap();
    holder
        .start_replication(&start_replication_command(
            "busy",
            pgseam_model::Lsn::ZERO,
            "p",
            1,
        ))
        .await
        .unwrap();

    let err = slot::wait_until_inactive(&client, "busy", 2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::SlotInUse { pid, .. } if pid == holder_pid),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("PID {holder_pid}")), "{text}");
    assert!(
        text.contains("pgseam-test"),
        "names the holder's application: {text}"
    );
    assert!(text.contains("slot.max.retries"), "{text}");
    assert_eq!(err.class(), ErrorClass::Config);

    // Freed while we wait: the retry succeeds.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.close().await.unwrap();
    });
    let info = slot::wait_until_inactive(&client, "busy", 20, Duration::from_millis(100))
        .await
        .unwrap()
        .expect("slot exists");
    assert_eq!(info.active_pid, None);
    release.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_creation_names_the_transactions_it_waits_for() {
    let pg = Postgres::start().unwrap();
    pg.psql("postgres", "CREATE TABLE t (id int PRIMARY KEY)")
        .unwrap();
    let p = params(&pg, "127.0.0.1", "postgres", Some("postgres"));
    let client = connect_query_session(&p).await.unwrap();
    // A forgotten open transaction with an xid.
    let mut blocker_params = p.clone();
    blocker_params.application_name = "forgotten-psql".into();
    let blocker = connect_query_session(&blocker_params).await.unwrap();
    blocker
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let blocker_pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    let mut replication = ReplicationConnection::connect(&p).await.unwrap();
    let started = std::time::Instant::now();
    let err = slot::create_slot_exporting_snapshot(
        &mut replication,
        &client,
        "blocked",
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(text.contains(&format!("PID {blocker_pid}")), "{text}");
    assert!(text.contains("forgotten-psql"), "{text}");
    assert!(text.contains("idle in transaction"), "{text}");
    assert!(text.contains("database.query.timeout.ms"), "{text}");
    drop(replication);

    // Once the transaction ends, creation goes through.
    blocker.batch_execute("COMMIT").await.unwrap();
    let mut replication = ReplicationConnection::connect(&p).await.unwrap();
    let created = slot::create_slot_exporting_snapshot(
        &mut replication,
        &client,
        "blocked",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(created.consistent_point > pgseam_model::Lsn::ZERO);
}

fn source_config(pg: &Postgres, slot: &str) -> SourceConfig {
    SourceConfig {
        connect: params(pg, "127.0.0.1", "postgres", Some("postgres")),
        slot_name: slot.into(),
        publication_name: "p".into(),
        publication_autocreate: PublicationAutocreate::AllTables,
        publish_via_partition_root: false,
        table_filter: Arc::new(|schema: &str, _: &str| schema == "public"),
        snapshot_mode: SnapshotMode::NoData,
        offset_mismatch: pgseam_connector_pg::OffsetMismatchStrategy::NoValidation,
        status_update_interval: Duration::from_secs(1),
        slot_max_retries: 0,
        slot_retry_delay: Duration::from_millis(10),
        slot_creation_timeout: Duration::from_secs(30),
        drop_slot_on_stop: false,
        heartbeat: None,
        snapshot: SnapshotSettings::default(),
        events: pgseam_connector_pg::EventSettings::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_with_lost_wal_is_refused() {
    let pg = Postgres::start_with(
        PostgresOptions::default()
            .conf("max_slot_wal_keep_size = 1")
            .conf("min_wal_size = 32MB")
            .conf("max_wal_size = 64MB"),
    )
    .unwrap();
    pg.psql(
        "postgres",
        "CREATE TABLE t (id int PRIMARY KEY, pad text); CREATE PUBLICATION p FOR ALL TABLES; \
         SELECT pg_create_logical_replication_slot('doomed', 'pgoutput')",
    )
    .unwrap();
    let confirmed: pgseam_model::Lsn = pg
        .psql(
            "postgres",
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'doomed'",
        )
        .unwrap()
        .parse()
        .unwrap();
    // Write and switch WAL segments until a checkpoint removes what the slot needs.
    let mut status = String::new();
    for round in 0..40 {
        status = pg
            .psql(
                "postgres",
                &format!(
                    "INSERT INTO t SELECT g, repeat('x', 500) FROM generate_series({a}, {b}) g; \
                     SELECT pg_switch_wal(); SELECT pg_switch_wal(); CHECKPOINT; \
                     SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'doomed'",
                    a = round * 2000,
                    b = round * 2000 + 1999
                ),
            )
            .unwrap()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        if status == "lost" {
            break;
        }
    }
    assert_eq!(status, "lost", "the test could not invalidate the slot");

    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let (_feedback_tx, feedback_rx) = tokio::sync::watch::channel(Feedback {
        durable_lsn: confirmed,
        ..Feedback::default()
    });
    let err = pgseam_connector_pg::run(
        source_config(&pg, "doomed"),
        StartPoint::Resume { lsn: confirmed },
        tx,
        feedback_rx,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::SlotLost { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("wal_status = lost") && text.contains("doomed"),
        "{text}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
}
