//! Snapshot rows converted in the readers (`snapshot::encode`): against a real PostgreSQL,
//! every row comes out once and in order, the rows whose marker can differ from `true` (a
//! chunk's first and last) are left to the pipeline with their markers, a row the encoder
//! refuses is left to the pipeline too, and the rest arrive with the records the reader's
//! encoder wrote — across batches of `BATCH_MAX_ROWS`, several readers and both chunk
//! strategies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pgseam_connector_pg::catalog::list_user_tables;
use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::snapshot::{
    self, ChunkStrategy, ReaderEncoding, RowEncoder, SnapshotSettings, BATCH_MAX_ROWS,
};
use pgseam_connector_pg::SourceMessage;
use pgseam_model::{ChangeEvent, KafkaRecord, SnapshotMarker, Value};
use pgseam_testkit::Postgres;

use crate::common;

/// Writes `<table>:<id>` as the record value; refuses ids divisible by 1000.
struct IdEncoder;

impl RowEncoder for IdEncoder {
    fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<KafkaRecord>) -> bool {
        let Some(Value::Int64(id)) = event.after.as_ref().and_then(|row| row.first()) else {
            return false;
        };
        if id % 1000 == 0 {
            return false;
        }
        out.push(KafkaRecord {
            topic: Arc::from(event.table.qualified_name()),
            key: None,
            value: Some(format!("{}:{id}", event.table.table).into_bytes()),
            headers: Arc::from(Vec::new()),
        });
        true
    }
}

const BIG: i64 = 3 * BATCH_MAX_ROWS as i64 + 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_converted_by_readers_come_out_once_in_order_with_their_markers() {
    let pg = Postgres::start().expect("postgres");
    let db = "encode";
    pg.create_database(db).expect("database");
    pg.psql(
        db,
        &format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, v text);
             INSERT INTO big SELECT g, repeat('x', 40) FROM generate_series(1, {BIG}) g;
             CREATE TABLE empty (id bigint PRIMARY KEY);
             CREATE TABLE one (id bigint PRIMARY KEY); INSERT INTO one VALUES (1);
             CREATE TABLE two (id bigint PRIMARY KEY); INSERT INTO two VALUES (1), (2);
             CREATE TABLE small (id bigint PRIMARY KEY);
             INSERT INTO small SELECT generate_series(1, 2500);
             VACUUM ANALYZE;"
        ),
    )
    .expect("tables");
    let mut params = common::params(&pg, pg.host(), pg.user(), Some(pg.password()));
    params.dbname = db.to_owned();

    for strategy in [ChunkStrategy::Key, ChunkStrategy::Ctid] {
        let mut replication = ReplicationConnection::connect(&params)
            .await
            .expect("replication");
        let client = connect_query_session(&params).await.expect("session");
        let slot = format!("encode_{strategy:?}").to_lowercase();
        let created = pgseam_connector_pg::slot::create_slot_exporting_snapshot(
            &mut replication,
            &client,
            &slot,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("slot");
        let tables = list_user_tables(&client).await.expect("tables");
        let made = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&made);
        let settings = SnapshotSettings {
            max_threads: 2,
            // Chunks of several batches, so rows are carried from one batch to the next.
            chunk_rows: 2 * BATCH_MAX_ROWS as u64 + 100,
            chunk_strategy: strategy,
            // A queue of fewer rows than a run: a run then takes the whole queue.
            reader_encoding: Some(ReaderEncoding::new(
                Arc::new(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                    Box::new(IdEncoder) as Box<dyn RowEncoder>
                }),
                1000,
            )),
            ..SnapshotSettings::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let run = {
            let params = params.clone();
            let created = created.clone();
            tokio::spawn(
                async move { snapshot::run(&params, &settings, &tables, &created, &tx).await },
            )
        };
        // Per table: ids in the order they came, and the markers of all rows in order.
        let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut markers = Vec::new();
        let (mut encoded, mut left, mut runs) = (0usize, 0usize, 0usize);
        while let Some(message) = rx.recv().await {
            match message {
                SourceMessage::Event(event) => {
                    let Some(Value::Int64(id)) = event.after.as_ref().and_then(|r| r.first())
                    else {
                        panic!("a row without its id: {event:?}");
                    };
                    if event.source.snapshot == SnapshotMarker::True {
                        left += 1;
                    }
                    markers.push((event.table.table.to_string(), event.source.snapshot));
                    ids.entry(event.table.table.to_string())
                        .or_default()
                        .push(*id);
                }
                SourceMessage::Encoded(run) => {
                    let table = run.table.table.to_string();
                    assert_eq!(run.records.len() as u64, run.rows);
                    for record in &run.records {
                        let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
                        let (name, id) = value.split_once(':').unwrap();
                        assert_eq!(name, table);
                        let id: i64 = id.parse().unwrap();
                        assert_ne!(id % 1000, 0, "a refused row came out converted");
                        encoded += 1;
                        markers.push((table.clone(), SnapshotMarker::True));
                        ids.entry(table.clone()).or_default().push(id);
                    }
                    runs += 1;
                }
                _ => {}
            }
        }
        let emitted = run.await.expect("task").expect("snapshot");
        assert_eq!(emitted as usize, markers.len(), "{strategy:?}");
        for (table, count) in [("big", BIG), ("one", 1), ("two", 2), ("small", 2500)] {
            let mut got = ids.remove(table).unwrap_or_default();
            if strategy == ChunkStrategy::Key {
                // Key ranges in key order: the ids arrive sorted.
                assert!(got.windows(2).all(|w| w[0] < w[1]), "{table} out of order");
            }
            got.sort_unstable();
            assert_eq!(
                got,
                (1..=count).collect::<Vec<_>>(),
                "{strategy:?}: {table}"
            );
        }
        assert!(ids.is_empty(), "unexpected tables {:?}", ids.keys());
        common::check_markers(&markers);
        // Most rows were converted by the readers; the refused ones (ids 1000, 2000, …) came
        // through unconverted with the marker `true`.
        assert!(
            encoded > (BIG as usize + 2500) * 9 / 10,
            "{strategy:?}: {encoded} converted"
        );
        assert!(
            left >= (BIG as usize) / 1000,
            "{strategy:?}: {left} left unconverted"
        );
        assert_eq!(made.load(Ordering::Relaxed), 2, "one encoder per reader");
        // Runs end at batches and at refused rows: far fewer messages than rows.
        assert!(
            runs * 100 < encoded,
            "{strategy:?}: {runs} runs of {encoded} rows"
        );
        drop(replication);
    }
}
