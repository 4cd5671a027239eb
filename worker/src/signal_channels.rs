//! Debezium's external signal channels, `kafka` and `file` (`signal.enabled.channels`), which
//! feed the running source's [`SignalInbox`] as the REST extension does (the `source` channel,
//! the signaling table, is read from the replication stream by the source itself).
//!
//! **`kafka`** (Debezium's `KafkaSignalChannel`): partition 0 of `signal.kafka.topic`
//! (default `<topic.prefix>-signal`) is *assigned* (no consumer-group join) with
//! `group.id = signal.kafka.groupId` (default `kafka-signal`), starting at the group's committed
//! offset, or at the earliest record when there is none (`auto.offset.reset=earliest`).
//! A record counts when its key is `topic.prefix` (others are logged and skipped); its value
//! is `{"id": .., "type": .., "data": {..}}`. Debezium's consumer auto-commits what it polled,
//! whether or not the signal's effect was stored; pgseam commits a record's offset only once the
//! source has applied its signal (and handed its progress to the worker), so after a crash or a
//! restart every signal not yet applied is read again: at least once up to the source. A
//! signal the source applied whose progress was not yet stored when pgseam crashed is not read
//! again (Debezium has the same gap, wider). `signal.consumer.*` properties are passed to the
//! consumer (librdkafka names; the common security ones are the same as Java's).
//!
//! **`file`** (Debezium's `FileSignalChannel`): every `signal.poll.interval.ms` the file
//! `signal.file` (default `file-signals.txt`) is read; each non-blank line is a signal
//! `{"id": .., "type": .., "data": {..}}`. Debezium empties the file as soon as it has read it;
//! pgseam removes the lines it read once the source has applied them (lines appended meanwhile
//! stay), so a crash in between reads them again.
//!
//! Invalid signals are logged (without their data) and skipped, and acknowledged like applied
//! ones: reading them again would not make them valid.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgseam_connector_pg::snapshot::{Signal, SignalInbox};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::KafkaSignalChannel;

/// Debezium's signal document: `id`, `type`, `data` (an object, passed on as JSON text).
fn parse_document(channel: &str, text: &str) -> Option<Signal> {
    let document: serde_json::Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(error) => {
            tracing::warn!(channel, %error, "signal is not JSON; skipped");
            return None;
        }
    };
    let id = document
        .get("id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let Some(kind) = document.get("type").and_then(serde_json::Value::as_str) else {
        tracing::warn!(channel, signal_id = %id, "signal without a `type`; skipped");
        return None;
    };
    let data = document
        .get("data")
        .filter(|d| !d.is_null())
        .map(serde_json::Value::to_string);
    match Signal::parse(id, kind, data.as_deref()) {
        Ok(signal) => Some(signal),
        Err(reason) => {
            tracing::warn!(channel, signal_id = %id, %reason, "invalid signal; skipped");
            None
        }
    }
}

/// Hands `signal` to the source and waits until it is applied; `false` when the connector
/// stops first.
async fn deliver(
    inbox: &SignalInbox,
    signal: Signal,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let seq = inbox.send(signal);
    tokio::select! {
        () = inbox.applied(seq) => true,
        _ = stopped(shutdown) => false,
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The `kafka` channel's consumer, assigned to partition 0 of the signal topic at the group's
/// committed offset. Made before the pipeline starts, so a bad setting fails the start.
pub fn kafka_consumer(config: &KafkaSignalChannel) -> anyhow::Result<StreamConsumer> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", &config.group_id)
        .set("client.id", uuid::Uuid::new_v4().to_string())
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.min.bytes", "1")
        .set("session.timeout.ms", "10000");
    for (key, value) in &config.consumer {
        client.set(key, value);
    }
    let consumer: StreamConsumer = client
        .create()
        .context("cannot create the kafka signal channel's consumer (signal.consumer.*)")?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.topic, 0, Offset::Stored)
        .context("cannot assign the signal topic's partition 0")?;
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot read signal topic {}", config.topic))?;
    Ok(consumer)
}

/// Reads the `kafka` channel until the connector stops (see the module docs).
pub async fn run_kafka(
    consumer: StreamConsumer,
    topic: String,
    topic_prefix: String,
    inbox: Arc<SignalInbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(%topic, "signals: kafka channel enabled (partition 0)");
    loop {
        let message = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%topic, %error, "cannot read the signal topic; retrying");
                tokio::select! {
                    _ = stopped(&mut shutdown) => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let offset = message.offset();
        let key = message.key().map(String::from_utf8_lossy);
        let signal = if key.as_deref() != Some(topic_prefix.as_str()) {
            tracing::info!(%topic, offset, key = ?key, connector = %topic_prefix, "signal key does not match the connector's name (topic.prefix); skipped");
            None
        } else {
            match message.payload().map(String::from_utf8_lossy) {
                Some(text) if !text.trim().is_empty() => parse_document("kafka", &text),
                _ => None,
            }
        };
        if let Some(signal) = signal {
            tracing::info!(%topic, offset, signal_id = %signal.id(), "signal read from the kafka channel");
            if !deliver(&inbox, signal, &mut shutdown).await {
                // Not applied: not committed, read again on the next start.
                return;
            }
        }
        let mut done = TopicPartitionList::new();
        if let Err(error) = done
            .add_partition_offset(&topic, 0, Offset::Offset(offset + 1))
            .and_then(|()| consumer.commit(&done, CommitMode::Async))
        {
            tracing::warn!(%topic, offset, %error, "cannot commit the signal topic's offset; the signal may be read again");
        }
    }
}

/// Reads the `file` channel every `interval` until the connector stops (see the module docs).
pub async fn run_file(
    path: PathBuf,
    interval: Duration,
    inbox: Arc<SignalInbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(file = %path.display(), "signals: file channel enabled");
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Ok(text) = tokio::fs::read_to_string(&path).await else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        // Whole lines only: a line still being written waits for the next read.
        let Some(end) = text.rfind('\n').map(|i| i + 1) else {
            continue;
        };
        let consumed = &text[..end];
        for line in consumed.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(signal) = parse_document("file", line) {
                tracing::info!(file = %path.display(), signal_id = %signal.id(), "signal read from the file channel");
                if !deliver(&inbox, signal, &mut shutdown).await {
                    return;
                }
            }
        }
        // Remove what was read; keep what was appended since.
        let now = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        let rest = now.strip_prefix(consumed).unwrap_or_else(|| {
            tracing::warn!(file = %path.display(), "the signal file changed other than by appending while it was read; emptied");
            ""
        });
        if let Err(error) = tokio::fs::write(&path, rest).await {
            tracing::error!(file = %path.display(), %error, "cannot remove the signals read from the signal file; they will be read again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parse_as_debezium_signals() {
        let s = parse_document(
            "kafka",
            r#"{"id":"k1","type":"execute-snapshot","data":{"data-collections":["public.k"],"type":"incremental"}}"#,
        )
        .unwrap();
        assert_eq!(s.id(), "k1");
        assert!(matches!(s, Signal::ExecuteSnapshot { .. }));
        let s = parse_document("file", r#"{"type":"log","data":{"message":"hi"}}"#).unwrap();
        assert_eq!(
            s,
            Signal::Log {
                id: String::new(),
                message: "hi".into()
            }
        );
        assert!(parse_document("kafka", "not json").is_none());
        assert!(parse_document("kafka", r#"{"id":"x"}"#).is_none());
        assert!(parse_document("kafka", r#"{"id":"x","type":"nope","data":{}}"#).is_none());
    }
}
