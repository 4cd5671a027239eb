//! One large PostgreSQL transaction streams through with memory bounded by the budget, not by
//! the transaction's size.
//!
//! pgseam asks for pgoutput protocol version 1, so the server decodes a transaction only once
//! it has committed, spilling a large one to disk on its side (`logical_decoding_work_mem`),
//! and then sends it in one piece. pgseam turns each change into a record as it arrives; the
//! records wait only for Kafka's acknowledgements, at most `pgseam.memory.budget.bytes` of them
//! (see `sink-kafka`'s `budget`), and the slot is confirmed at the commit once all are
//! acknowledged. Nothing holds the transaction, so peak RSS stays near the budget plus the
//! process's fixed cost while the transaction is several times larger.
//!
//! `PGSEAM_BIGTX_ROWS` scales the transaction (default [`DEFAULT_ROWS`]); `bench/bigtx.sh`
//! runs the 1 GB variant by hand.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Env, Pgseam};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Rows of the transaction: 1M rows of ~150 bytes, ~240 MB of WAL.
const DEFAULT_ROWS: u64 = 1_000_000;
/// The budget given to the producer.
const BUDGET: u64 = 32 << 20;
/// What the process may use besides the budget: the runtime, librdkafka's threads and
/// buffers outside its queue, the source's event channel and frame buffers, the allocator's
/// slack. Measured: 26 MiB at start, 55 MiB peak in all (debug build, 1M rows). The bound
/// keeps the test meaningful: the transaction (262 MiB of WAL) is twice budget + allowance.
const ALLOWANCE: u64 = 96 << 20;
const WAIT: Duration = Duration::from_secs(300);

fn rows() -> u64 {
    std::env::var("PGSEAM_BIGTX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROWS)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Counts the records of `topic` and their distinct keys (raw bytes: no JSON parsing).
fn count_records(bootstrap: &str, topic: &str, expected: u64) -> (u64, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pgseam-bigtx")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    assert!(partitions > 0, "topic {topic} does not exist");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p as i32, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = 0u64;
    let mut keys = HashSet::with_capacity(expected as usize);
    let mut idle_since = Instant::now();
    let started = Instant::now();
    while started.elapsed() < WAIT {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                records += 1;
                if let Some(key) = message.key() {
                    keys.insert(key.to_vec());
                }
                idle_since = Instant::now();
            }
            Some(Err(err)) => panic!("consume {topic}: {err}"),
            None => {
                if records >= expected && idle_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
    }
    (records, keys.len())
}

#[test]
fn a_large_transaction_streams_with_memory_bounded_by_the_budget() {
    let rows = rows();
    let env = Env::start("bigtx");
    env.psql("CREATE TABLE big (id bigint PRIMARY KEY, payload text)");
    let (worker, connector) = env.write_configs(
        "bigtx",
        &[
            &format!("pgseam.memory.budget.bytes={BUDGET}"),
            "key.converter.schemas.enable=false",
            "value.converter.schemas.enable=false",
        ],
        &[],
    );
    let mut pgseam = Pgseam::start(env.dir.path(), &worker, &[&connector]);
    pgseam.wait_for_log("streaming started", Duration::from_secs(60));
    let baseline = status_kb(pgseam.pid(), "VmRSS:") << 10;

    let start_lsn = env.psql("SELECT pg_current_wal_lsn()").trim().to_owned();
    let written = Instant::now();
    env.psql(&format!(
        "INSERT INTO big SELECT g, repeat(md5(g::text), 4) || lpad(g::text, 12, '0') \
         FROM generate_series(1, {rows}) g"
    ));
    let insert_s = written.elapsed().as_secs_f64();
    let end_lsn = env.psql("SELECT pg_current_wal_lsn()").trim().to_owned();
    let wal_bytes: u64 = env
        .psql(&format!(
            "SELECT pg_wal_lsn_diff('{end_lsn}', '{start_lsn}')::bigint"
        ))
        .trim()
        .parse()
        .expect("WAL size");
    let data_bytes: u64 = env
        .psql("SELECT sum(pg_column_size(b.*))::bigint FROM big b")
        .trim()
        .parse()
        .expect("data size");

    let streamed = Instant::now();
    loop {
        let reached = env.psql(&format!(
            "SELECT confirmed_flush_lsn >= '{end_lsn}' FROM pg_replication_slots WHERE slot_name = 'slot_bigtx'"
        ));
        if reached.trim() == "t" {
            break;
        }
        assert!(
            streamed.elapsed() < WAIT,
            "the slot was not confirmed past the transaction within {WAIT:?}:\n{}",
            pgseam.log_text()
        );
        assert!(
            pgseam.exited().is_none(),
            "pgseam exited:\n{}",
            pgseam.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stream_s = streamed.elapsed().as_secs_f64();
    let peak = status_kb(pgseam.pid(), "VmHWM:") << 10;
    let status = pgseam.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit {status}:\n{}", pgseam.log_text());

    let (records, keys) = count_records(&env.broker.bootstrap_servers(), "bigtx.public.big", rows);
    eprintln!(
        "bigtx: {rows} rows, {} MiB of row data, {} MiB of WAL in one transaction; insert {insert_s:.1} s, \
         streamed and acknowledged in {stream_s:.1} s ({:.0} rows/s); pgseam RSS {} MiB at start, peak \
         (VmHWM) {} MiB, bound {} MiB; {records} records, {keys} distinct keys",
        data_bytes >> 20,
        wal_bytes >> 20,
        rows as f64 / stream_s,
        baseline >> 20,
        peak >> 20,
        (BUDGET + ALLOWANCE) >> 20,
    );
    assert_eq!(keys as u64, rows, "every row arrives");
    assert!(records >= rows, "{records} records for {rows} rows");
    assert!(
        peak < BUDGET + ALLOWANCE,
        "peak RSS {} MiB exceeds the budget ({} MiB) + allowance ({} MiB)",
        peak >> 20,
        BUDGET >> 20,
        ALLOWANCE >> 20
    );
    assert!(
        wal_bytes > 2 * (BUDGET + ALLOWANCE) || rows < DEFAULT_ROWS,
        "the transaction ({} MiB of WAL) must be larger than the bound to show anything",
        wal_bytes >> 20
    );
}
