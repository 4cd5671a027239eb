//! Offsets in Kafka Connect's offsets topic (`offset.storage.topic`), as a distributed Connect
//! worker keeps them: one record per stored offset, key `["<connector>",{"server":"<prefix>"}]`
//! and value the Debezium offset JSON ([`super::debezium`], the same bytes the file store
//! writes), a null value when an offset is reset. The topic itself — creation, partitioning,
//! reading to the end without ListOffsets — is [`pgseam_sink_kafka::offsets_topic`].
//!
//! At open the whole topic is read; the last record of each key (compared as bytes, as
//! Connect's `HashMap<ByteBuffer, ByteBuffer>` does) wins. Keys of other connectors are kept
//! and never rewritten. A key spelled differently from pgseam's compact JSON but naming the same
//! connector and partition (written by some other tool) is found too, and pgseam's writes then
//! reuse that spelling so that one key keeps one partition and the last record stays the one
//! that counts.
//!
//! [`TopicOffsetStore::put`] returns once the broker acknowledged the record (`acks=all`): the
//! pipeline publishes the flush LSN to the slot only after that.

use pgseam_sink_kafka::offsets_topic::{LogRecord, OffsetsTopic, OffsetsTopicConfig};
use serde_json::Value;

use super::{debezium, decode_stored, ConnectorOffset, OffsetError, OffsetKey};

pub struct TopicOffsetStore {
    log: OffsetsTopic,
    /// The latest value of each key, in the order keys were first read.
    entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl TopicOffsetStore {
    /// Creates the topic if missing and reads it to its end.
    pub async fn open(config: &OffsetsTopicConfig) -> Result<Self, OffsetError> {
        let (log, records) = OffsetsTopic::open(config).await?;
        Ok(TopicOffsetStore {
            log,
            entries: latest_per_key(records),
        })
    }

    /// Reads the topic to its end again (`read_committed`) and replaces what was read before:
    /// exactly-once delivery's view after fencing older producers.
    pub async fn refresh(&mut self) -> Result<(), OffsetError> {
        let records = self.log.read_all().await?;
        self.entries = latest_per_key(records);
        Ok(())
    }

    /// The topic, key bytes and value bytes of the record [`TopicOffsetStore::put`] would
    /// write, for a caller that writes it itself (in a Kafka transaction); then
    /// [`TopicOffsetStore::note_written`].
    pub fn record(&self, key: &OffsetKey, offset: &ConnectorOffset) -> (String, Vec<u8>, Vec<u8>) {
        let key_bytes = match self.find(key) {
            Some(index) => self.entries[index].0.clone(),
            None => key.encode().into_bytes(),
        };
        (
            self.log.topic().to_owned(),
            key_bytes,
            debezium::encode_value(offset).into_bytes(),
        )
    }

    /// Records that `offset` was written (committed) by someone else, as `put` would.
    pub fn note_written(&mut self, key: &OffsetKey, offset: &ConnectorOffset) {
        let (_, key_bytes, value) = self.record(key, offset);
        match self.find(key) {
            Some(index) => self.entries[index].1 = Some(value),
            None => self.entries.push((key_bytes, Some(value))),
        }
    }

    /// Where the offsets are, for messages.
    pub fn location(&self) -> String {
        format!("offsets topic {}", self.log.topic())
    }

    /// Our entry: the exact key bytes pgseam writes, else another spelling of the same key.
    fn find(&self, key: &OffsetKey) -> Option<usize> {
        let encoded = key.encode().into_bytes();
        self.entries
            .iter()
            .position(|(k, _)| *k == encoded)
            .or_else(|| self.entries.iter().rposition(|(k, _)| key.matches(k)))
    }

    pub fn get(&self, key: &OffsetKey) -> Result<Option<ConnectorOffset>, OffsetError> {
        let Some(index) = self.find(key) else {
            return Ok(None);
        };
        let (stored_key, value) = &self.entries[index];
        decode_stored(key, stored_key, value.as_deref(), || self.location())
    }

    pub fn get_json(&self, key: &OffsetKey) -> Option<Value> {
        let (_, value) = &self.entries[self.find(key)?];
        serde_json::from_slice(value.as_deref()?).ok()
    }

    pub fn entries(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v.as_deref()?).into_owned(),
                ))
            })
            .collect()
    }

    /// Writes the offset and returns once the broker acknowledged it.
    pub async fn put(
        &mut self,
        key: &OffsetKey,
        offset: &ConnectorOffset,
    ) -> Result<(), OffsetError> {
        let value = debezium::encode_value(offset).into_bytes();
        let index = self.find(key);
        let key_bytes = match index {
            Some(index) => self.entries[index].0.clone(),
            None => key.encode().into_bytes(),
        };
        self.log.write(&key_bytes, Some(&value)).await?;
        match index {
            Some(index) => self.entries[index].1 = Some(value),
            None => self.entries.push((key_bytes, Some(value))),
        }
        Ok(())
    }

    /// Writes a tombstone for every spelling of the key that has a value (Connect's reset);
    /// false if there was none.
    pub async fn remove(&mut self, key: &OffsetKey) -> Result<bool, OffsetError> {
        let mut removed = false;
        for index in 0..self.entries.len() {
            let (stored_key, value) = &self.entries[index];
            if value.is_none() || !key.matches(stored_key) {
                continue;
            }
            self.log.write(stored_key, None).await?;
            self.entries[index].1 = None;
            removed = true;
        }
        Ok(removed)
    }
}

/// The last record of each key (keyless records are skipped: Connect never writes them and a
/// compacted topic rejects them).
fn latest_per_key(records: Vec<LogRecord>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for record in records {
        let Some(key) = record.key else {
            continue;
        };
        match index.get(&key) {
            Some(&i) => entries[i] = (key, record.value),
            None => {
                index.insert(key.clone(), entries.len());
                entries.push((key, record.value));
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &[u8], value: Option<&[u8]>) -> LogRecord {
        LogRecord {
            partition: 0,
            offset: 0,
            key: Some(key.to_vec()),
            value: value.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn the_last_record_of_a_key_wins_and_tombstones_count() {
        let entries = latest_per_key(vec![
            record(b"a", Some(b"1")),
            record(b"b", Some(b"1")),
            record(b"a", Some(b"2")),
            record(b"b", None),
            LogRecord {
                key: None,
                ..record(b"", Some(b"x"))
            },
        ]);
        assert_eq!(
            entries,
            vec![(b"a".to_vec(), Some(b"2".to_vec())), (b"b".to_vec(), None)]
        );
    }
}
