//! `pgseam-bench`: the Kafka-side tools of `bench/run.sh` (run by hand, never in CI).
//!
//! - `sink-limit`: the sink limit. A raw librdkafka producer with pgseam's fixed settings
//!   (`enable.idempotence=true`, `acks=all`, `partitioner=murmur2_random`) sends N
//!   pre-serialised records, keyed `{"id":<n>}` with a value of the given size, and reports
//!   the time from the first send to the last delivery report. Nothing is encoded: what is
//!   left is the producer and the broker.
//! - `latency`: reads topics from the beginning and compares each record's Kafka timestamp
//!   (CreateTime, set by librdkafka when the record is enqueued) with the envelope's
//!   `source.ts_ms` (the commit time in PostgreSQL). That is commit → produce, a lower bound
//!   of commit → acknowledgement; both clocks are this machine's.
//! - `latency-live`: started before the load on a fresh topic, reads it as records
//!   arrive (fetch wait 1 ms) and compares the wall-clock time each record is received with the
//!   envelope's `source.ts_us` (commit time, microseconds). That is commit → visible to a
//!   consumer, an upper bound of commit → acknowledgement: with `acks=all` a record becomes
//!   readable when the broker acknowledges it, and the consumer's fetch adds its own delay.
//!   It stops after `--expect` records or when no record arrived for `--idle-stop-s` seconds
//!   after the first.
//! - `sizes`: reads N records from a topic and prints their mean key and value size (the
//!   sink-limit run sends records of that size).
//! - `changes`: the change-level check of `bench/incremental-kill.sh` (see [`changes`]): reads a
//!   topic of the `bench` table whose writers keep a version column, and checks that no change
//!   event is missing, that each key's changes are in order, and that every key had an event.
//!
//! Both print one line of `key=value` pairs on stdout, for the script to parse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const USAGE: &str = "\
usage:
  pgseam-bench sink-limit --bootstrap HOST:PORT --topic T --count N --value-bytes B [--key-bytes K]
                          [--producer-config k=v]...
  pgseam-bench latency --bootstrap HOST:PORT --topic T [--topic T2]... --expect N [--timeout-s S]
  pgseam-bench latency-live --bootstrap HOST:PORT --topic T [--topic T2]... --expect N
                       [--idle-stop-s S] [--timeout-s S]
  pgseam-bench sizes   --bootstrap HOST:PORT --topic T [--topic T2]... --expect N [--timeout-s S]
  pgseam-bench changes --bootstrap HOST:PORT --topic T --expect INITIAL_KEYS [--idle-stop-s S]
                       [--timeout-s S]";

#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<Counts>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

struct Args {
    bootstrap: String,
    topics: Vec<String>,
    count: u64,
    value_bytes: usize,
    key_bytes: usize,
    producer_config: Vec<(String, String)>,
    timeout: Duration,
    idle_stop: Duration,
}

fn parse(rest: &[String]) -> anyhow::Result<Args> {
    let mut args = Args {
        bootstrap: String::new(),
        topics: Vec::new(),
        count: 0,
        value_bytes: 0,
        key_bytes: 12,
        producer_config: Vec::new(),
        timeout: Duration::from_secs(120),
        idle_stop: Duration::from_secs(5),
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> anyhow::Result<u64> {
            v.parse()
                .with_context(|| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value.clone(),
            "--topic" => args.topics.push(value.clone()),
            "--count" | "--expect" => args.count = num(value)?,
            "--value-bytes" => args.value_bytes = num(value)? as usize,
            "--key-bytes" => args.key_bytes = num(value)? as usize,
            "--timeout-s" => args.timeout = Duration::from_secs(num(value)?),
            "--idle-stop-s" => args.idle_stop = Duration::from_secs(num(value)?),
            "--producer-config" => {
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("--producer-config wants k=v, got {value}"))?;
                args.producer_config.push((k.to_owned(), v.to_owned()));
            }
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    if args.bootstrap.is_empty() || args.topics.is_empty() || args.count == 0 {
        bail!("--bootstrap, --topic and --count/--expect are required\n{USAGE}");
    }
    Ok(args)
}

/// `{"id":<n>}` padded with spaces to `len` bytes (valid JSON either way).
fn key_for(n: u64, len: usize) -> Vec<u8> {
    let mut key = format!("{{\"id\":{n}}}").into_bytes();
    key.resize(len.max(key.len()), b' ');
    key
}

fn sink_limit(args: &Args) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random");
    for (k, v) in &args.producer_config {
        config.set(k, v);
    }
    let producer: BaseProducer<CountingContext> = config
        .create_with_context(CountingContext(Arc::clone(&counts)))
        .context("cannot create the producer")?;
    producer
        .client()
        .fetch_metadata(Some(&args.topics[0]), Duration::from_secs(10))
        .with_context(|| format!("cannot reach {}", args.bootstrap))?;
    // Pre-serialised: one value reused, keys built before the clock starts.
    let value = vec![b'x'; args.value_bytes];
    let keys: Vec<Vec<u8>> = (0..args.count)
        .map(|n| key_for(n, args.key_bytes))
        .collect();
    let topic = &args.topics[0];
    let start = Instant::now();
    for key in &keys {
        let mut record = BaseRecord::to(topic)
            .key(key.as_slice())
            .payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((err, _)) => bail!("send failed: {err}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(args.timeout)
        .context("deliveries still outstanding at the timeout")?;
    let secs = start.elapsed().as_secs_f64();
    let acked = counts.acked.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    if failed > 0 || acked != args.count {
        bail!(
            "{failed} deliveries failed, {acked} of {} acknowledged",
            args.count
        );
    }
    let bytes = (args.count as f64) * ((args.value_bytes + args.key_bytes) as f64);
    println!(
        "records={acked} secs={secs:.3} rows_per_s={:.0} mb_per_s={:.2}",
        acked as f64 / secs,
        bytes / secs / 1e6
    );
    Ok(())
}

/// What `read` found in the records it read.
struct ReadStats {
    records: u64,
    key_bytes: u64,
    value_bytes: u64,
    /// Record timestamp − `source.ts_ms` per record with a value (only when asked for).
    lags_ms: Vec<i64>,
}

fn latency(args: &Args) -> anyhow::Result<()> {
    let mut lags_ms = read(args, true)?.lags_ms;
    if lags_ms.is_empty() {
        bail!("no records read");
    }
    lags_ms.sort_unstable();
    let pct = |p: f64| lags_ms[((lags_ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "records={} p50_ms={} p99_ms={} max_ms={}",
        lags_ms.len(),
        pct(0.5),
        pct(0.99),
        lags_ms[lags_ms.len() - 1]
    );
    Ok(())
}

/// Commit → received by a consumer that tails the topics while the load runs.
fn latency_live(args: &Args) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", "pgseam-bench-latency-live")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "1")
        .set("fetch.min.bytes", "1")
        .create()
        .context("cannot create the consumer")?;
    // Ready: the caller starts the load now. The topics may not exist yet (pgseam creates them
    // with its first record); they are read from the beginning, so waiting loses nothing.
    println!("ready");
    let deadline = Instant::now() + args.timeout;
    let mut tpl = TopicPartitionList::new();
    for topic in &args.topics {
        loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("no metadata for {topic}"))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if !partitions.is_empty() {
                for p in partitions {
                    // The broker here resolves `Offset::End` from an unreliable high
                    // watermark; the topic is fresh, so the beginning is the load's start.
                    tpl.add_partition_offset(topic, p, Offset::Beginning)?;
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("topic {topic} did not appear");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    consumer.assign(&tpl)?;
    let mut lags_us: Vec<i64> = Vec::new();
    let mut last_record: Option<Instant> = None;
    while (lags_us.len() as u64) < args.count && Instant::now() < deadline {
        if last_record.is_some_and(|t| t.elapsed() > args.idle_stop) {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let received_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("clock before 1970")?
            .as_micros() as i64;
        let message = message.context("consumer error")?;
        last_record = Some(Instant::now());
        let Some(value) = message.payload() else {
            continue; // tombstone
        };
        let envelope: serde_json::Value =
            serde_json::from_slice(value).context("a value is not JSON")?;
        let envelope = envelope.get("payload").unwrap_or(&envelope);
        let source = envelope.get("source").context("a record without source")?;
        let commit_us = match source.get("ts_us").and_then(|t| t.as_i64()) {
            Some(us) => us,
            None => source
                .get("ts_ms")
                .and_then(|t| t.as_i64())
                .context("a record without source.ts_us or ts_ms")?
                .saturating_mul(1000),
        };
        lags_us.push(received_us - commit_us);
    }
    if lags_us.is_empty() {
        bail!("no records arrived");
    }
    lags_us.sort_unstable();
    let pct = |p: f64| lags_us[((lags_us.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    println!(
        "live_records={} live_p50_ms={:.1} live_p99_ms={:.1} live_max_ms={:.1}",
        lags_us.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

fn sizes(args: &Args) -> anyhow::Result<()> {
    let stats = read(args, false)?;
    if stats.records == 0 {
        bail!("no records read");
    }
    println!(
        "records={} mean_key_bytes={:.1} mean_value_bytes={:.1}",
        stats.records,
        stats.key_bytes as f64 / stats.records as f64,
        stats.value_bytes as f64 / stats.records as f64
    );
    Ok(())
}

/// A consumer in `group` assigned every partition of `--topics`, from the beginning.
fn consumer_from_the_beginning(args: &Args, group: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create the consumer")?;
    let mut tpl = TopicPartitionList::new();
    for topic in &args.topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("no metadata for {topic}"))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Reads up to `--expect` records of the topics from the beginning.
fn read(args: &Args, with_lags: bool) -> anyhow::Result<ReadStats> {
    let consumer = consumer_from_the_beginning(args, "pgseam-bench-latency")?;
    let deadline = Instant::now() + args.timeout;
    let mut stats = ReadStats {
        records: 0,
        key_bytes: 0,
        value_bytes: 0,
        lags_ms: Vec::new(),
    };
    while stats.records < args.count && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("consumer error")?;
        stats.records += 1;
        stats.key_bytes += message.key().map_or(0, |k| k.len() as u64);
        stats.value_bytes += message.payload().map_or(0, |v| v.len() as u64);
        let Some(value) = message.payload() else {
            continue; // tombstone
        };
        if !with_lags {
            continue;
        }
        let envelope: serde_json::Value =
            serde_json::from_slice(value).context("a value is not JSON")?;
        let envelope = envelope.get("payload").unwrap_or(&envelope);
        let Some(commit_ms) = envelope
            .get("source")
            .and_then(|s| s.get("ts_ms"))
            .and_then(|t| t.as_i64())
        else {
            bail!("a record without source.ts_ms");
        };
        let created_ms = match message.timestamp() {
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
            Timestamp::NotAvailable => bail!("a record without a timestamp"),
        };
        stats.lags_ms.push(created_ms - commit_ms);
    }
    if stats.records < args.count {
        bail!(
            "read {} of {} records before the timeout",
            stats.records,
            args.count
        );
    }
    Ok(stats)
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let Some(command) = argv.get(1) else {
        bail!("{USAGE}");
    };
    let args = parse(&argv[2..])?;
    if command == "changes" {
        return changes(&args);
    }
    match command.as_str() {
        "sink-limit" => sink_limit(&args),
        "latency" => latency(&args),
        "latency-live" => latency_live(&args),
        "sizes" => sizes(&args),
        _ => bail!("unknown command {command}\n{USAGE}"),
    }
}

/// One key's history in `changes`.
#[derive(Default)]
struct KeyHistory {
    /// The newest version applied (the `ver` column; 0 for a row of the initial table).
    ver: i64,
    deleted: bool,
    /// Whether any record of the key arrived (a read or a change).
    seen: bool,
    /// The newest position applied: (LSN, seq) of pgseam's headers.
    last: (u64, u64),
    /// The streamed changes applied: position → (op, version), to recognise a replay.
    changes: Vec<((u64, u64), u8, i64)>,
    reads: u32,
}

/// The change-level check of `bench/incremental-kill.sh`, on one topic of the `bench` table
/// whose writers only ever (a) insert rows with keys above `--expect` and `ver = 0`, (b) update
/// a row with `ver = ver + 1`, (c) delete a row; keys are never reused. Read from the beginning,
/// per key in partition order:
/// - a streamed change (`pgseam.commit_lsn`, `pgseam.seq`) at a position already applied must
///   repeat that change exactly (a replay after a crash: counted as a duplicate); a new one must
///   be after the key's newest position (per-key order);
/// - an insert is the key's first record with `ver = 0`; an update's `ver` is the previous
///   version + 1 (a lost update, or a lost insert before it, breaks the chain); nothing follows
///   a delete;
/// - an incremental-snapshot read (`op = "r"`, `source.snapshot = "incremental"`, at its window's
///   high watermark `pgseam.lsn`) carries exactly the key's version at that point: a window
///   emits a row only if no change of the key fell inside it, and after every change before it;
/// - at the end every key `1..=--expect` had a record: a read, or a change (a key the stream
///   never touched can only have arrived through the snapshot).
///
/// The final state is `pgseam verify`'s job; this finds a lost change that a later one hides.
fn changes(args: &Args) -> anyhow::Result<()> {
    let consumer = consumer_from_the_beginning(args, "pgseam-bench-changes")?;
    let initial = args.count as i64;
    let deadline = Instant::now() + args.timeout;
    let mut keys: std::collections::HashMap<i64, KeyHistory> = std::collections::HashMap::new();
    let (mut records, mut tombstones, mut reads, mut rereads, mut streamed, mut duplicates) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut errors: Vec<String> = Vec::new();
    let mut error_count = 0u64;
    let mut fail = |errors: &mut Vec<String>, text: String| {
        error_count += 1;
        if errors.len() < 20 {
            errors.push(text);
        }
    };
    let mut last_record: Option<Instant> = None;
    while Instant::now() < deadline {
        if last_record.is_some_and(|t| t.elapsed() > args.idle_stop) {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("consumer error")?;
        last_record = Some(Instant::now());
        records += 1;
        let at = format!(
            "{}/{}@{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let Some(value) = message.payload() else {
            tombstones += 1;
            continue;
        };
        let key: serde_json::Value = serde_json::from_slice(message.key().unwrap_or_default())
            .with_context(|| format!("{at}: the key is not JSON"))?;
        let key = key.get("payload").unwrap_or(&key);
        let id = key
            .get("id")
            .and_then(serde_json::Value::as_i64)
            .with_context(|| format!("{at}: no integer id in the key"))?;
        let envelope: serde_json::Value = serde_json::from_slice(value)
            .with_context(|| format!("{at}: the value is not JSON"))?;
        let envelope = envelope.get("payload").unwrap_or(&envelope);
        let op = envelope
            .get("op")
            .and_then(serde_json::Value::as_str)
            .with_context(|| format!("{at}: no op"))?;
        let ver = envelope
            .get("after")
            .and_then(|a| a.get("ver"))
            .and_then(serde_json::Value::as_i64);
        let header = |name: &str| -> Option<u64> {
            use rdkafka::message::Headers;
            let headers = message.headers()?;
            headers.iter().find(|h| h.key == name).and_then(|h| {
                let text = std::str::from_utf8(h.value?).ok()?;
                match text.split_once('/') {
                    Some((hi, lo)) => Some(
                        (u64::from_str_radix(hi, 16).ok()? << 32)
                            | u64::from_str_radix(lo, 16).ok()?,
                    ),
                    None => text.parse().ok(),
                }
            })
        };
        let seq = header("pgseam.seq").with_context(|| format!("{at}: no pgseam.seq header"))?;
        let history = keys.entry(id).or_default();
        if op == "r" {
            let snapshot = envelope
                .get("source")
                .and_then(|s| s.get("snapshot"))
                .and_then(serde_json::Value::as_str);
            if snapshot != Some("incremental") {
                fail(
                    &mut errors,
                    format!("{at}: key {id}: a read with source.snapshot {snapshot:?}"),
                );
            }
            let pos = (
                header("pgseam.lsn").with_context(|| format!("{at}: a read without pgseam.lsn"))?,
                seq,
            );
            reads += 1;
            if history.reads > 0 {
                rereads += 1;
            }
            history.reads += 1;
            if pos <= history.last {
                fail(
                    &mut errors,
                    format!(
                        "{at}: key {id}: read at {pos:?} after {:?}: out of order",
                        history.last
                    ),
                );
            }
            if history.deleted {
                fail(
                    &mut errors,
                    format!("{at}: key {id}: read after its delete"),
                );
            } else if id > initial && !history.seen {
                fail(
                    &mut errors,
                    format!("{at}: key {id}: read of an inserted key whose insert is missing"),
                );
            } else if ver != Some(history.ver) {
                fail(&mut errors, format!("{at}: key {id}: read version {ver:?}, the key was at {} (a change is missing or out of order)", history.ver));
            }
            history.last = history.last.max(pos);
            history.seen = true;
            continue;
        }
        let pos = (
            header("pgseam.commit_lsn")
                .with_context(|| format!("{at}: a change without pgseam.commit_lsn"))?,
            seq,
        );
        let code = op.as_bytes().first().copied().unwrap_or(b'?');
        if let Some(&(_, c, v)) = history.changes.iter().find(|(p, _, _)| *p == pos) {
            duplicates += 1;
            if c != code || (code != b'd' && Some(v) != ver) {
                fail(&mut errors, format!("{at}: key {id}: the replay of {pos:?} is {op} {ver:?}, not what was first sent"));
            }
            continue;
        }
        streamed += 1;
        if pos <= history.last {
            fail(
                &mut errors,
                format!(
                    "{at}: key {id}: new change at {pos:?} after {:?}: out of order",
                    history.last
                ),
            );
        }
        if history.deleted {
            fail(
                &mut errors,
                format!("{at}: key {id}: {op} after its delete"),
            );
        }
        match op {
            "c" => {
                if history.seen || id <= initial || ver != Some(0) {
                    fail(&mut errors, format!("{at}: key {id}: insert with version {ver:?} of a key already seen or initial"));
                }
                history.ver = 0;
            }
            "u" => {
                if id > initial && !history.seen {
                    fail(
                        &mut errors,
                        format!(
                            "{at}: key {id}: update of an inserted key whose insert is missing"
                        ),
                    );
                }
                if ver != Some(history.ver + 1) {
                    fail(&mut errors, format!("{at}: key {id}: update to version {ver:?} after {}: a change is missing", history.ver));
                }
                history.ver = ver.unwrap_or(history.ver);
            }
            "d" => history.deleted = true,
            _ => fail(&mut errors, format!("{at}: key {id}: unexpected op {op}")),
        }
        history.changes.push((pos, code, ver.unwrap_or(-1)));
        history.last = pos;
        history.seen = true;
    }
    let unseen: Vec<i64> = (1..=initial)
        .filter(|id| !keys.get(id).is_some_and(|h| h.seen))
        .collect();
    if !unseen.is_empty() {
        fail(
            &mut errors,
            format!(
                "{} initial keys had no record (neither read nor changed), e.g. {:?}",
                unseen.len(),
                &unseen[..unseen.len().min(10)]
            ),
        );
    }
    let deleted = keys.values().filter(|h| h.deleted).count();
    let inserted = keys.keys().filter(|&&id| id > initial).count();
    println!(
        "records={records} tombstones={tombstones} reads={reads} rereads={rereads} \
         changes={streamed} duplicate_changes={duplicates} keys={} inserted_keys={inserted} \
         deleted_keys={deleted} errors={error_count}",
        keys.len()
    );
    for e in &errors {
        eprintln!("{e}");
    }
    if records == 0 {
        bail!("no records read");
    }
    if error_count > 0 {
        bail!("{error_count} errors");
    }
    Ok(())
}
