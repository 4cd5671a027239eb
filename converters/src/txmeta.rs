//! Transaction metadata (`provide.transaction.metadata=true`), as Debezium's
//! `TransactionMonitor` writes it.
//!
//! Per PostgreSQL transaction, on `<topic.prefix>.<topic.transaction>` (Debezium 3.x's
//! `DefaultTopicNamingStrategy`: `topic.transaction` defaults to `transaction`):
//!
//! ```text
//! key   = {"id":"<txId>:<LSN>"}                         (io.debezium.connector.common.TransactionMetadataKey)
//! BEGIN = {"status":"BEGIN","id":..,"event_count":null,"data_collections":null,"ts_ms":<commit>}
//! END   = {"status":"END","id":..,"event_count":N,
//!          "data_collections":[{"data_collection":"public.t","event_count":n},..],"ts_ms":<commit>}
//! ```
//!
//! and every change event (and transactional logical message) of the transaction gets
//! `transaction = {"id":..,"total_order":..,"data_collection_order":..}`. The id is Debezium's
//! PostgreSQL form `"<txId>:<LSN>"`, where the LSN (decimal) is that of the record itself: the
//! BEGIN message's, each event's, the commit's end for END. Tombstones are not counted.
//!
//! With `AvroConverter` ([`crate::Converter::transaction_monitor`]) the key and/or value are
//! Avro datums in the Schema Registry wire format instead, under the schemas AvroData derives
//! from the same Connect schemas (registered under `<topic>-key` / `<topic>-value` when the
//! monitor is made), written directly from the counters (see `TransactionMonitor::record`).
//!
//! **Memory**: only counters are kept (one per data collection the transaction touched), never
//! events, so a transaction of any size needs constant memory per table.
//!
//! **`data_collections` order**: Debezium keeps the counts in a `java.util.HashMap` and lists
//! them in its iteration order. [`JavaHashOrder`] reproduces that order for table names
//! (`String.hashCode`, bucket order, resizes). Each transactional logical message is its own
//! data collection in Debezium (`LogicalDecodingMessageMonitor$LogicalDecodingMessageId@<hash>`,
//! the JVM identity hash, so its position in the list is random per run): pgseam derives the
//! hash from the message's LSN and lists message entries after the tables, in message order
//! (they still count towards the map's size, so the tables' order stays Java's). Known
//! approximation: a HashMap bin of more than 8 names in a
//! map of 64 or more buckets is a red-black tree in Java, whose iteration order pgseam does not
//! reproduce.

use std::fmt::Write as _;

use pgseam_model::{ChangeEvent, LogicalMessage, Lsn, Position, TransactionBlock};

use crate::avro::binary::{write_bytes, write_long};
use crate::{jackson, JsonConverterConfig, KafkaRecord};

/// Debezium's `topic.transaction` default.
pub const DEFAULT_TRANSACTION_TOPIC_SUFFIX: &str = "transaction";

/// The key's Connect schema.
pub(crate) const KEY_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey","version":1}"#;

/// The value's Connect schema.
pub(crate) const VALUE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":true,"name":"event.collection","version":1},"optional":true,"field":"data_collections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue","version":1}"#;

/// The name Debezium gives a transactional logical message's data collection.
const MESSAGE_COLLECTION_CLASS: &str =
    "io.debezium.connector.postgresql.LogicalDecodingMessageMonitor$LogicalDecodingMessageId";

/// The transaction being counted.
#[derive(Debug)]
struct OpenTransaction {
    tx_id: i64,
    ts_ms: i64,
    total: u64,
    /// Event count per data collection, in Java `HashMap` iteration order.
    collections: JavaHashOrder,
}

/// Builds BEGIN/END records and `transaction` blocks (see the module docs).
#[derive(Debug)]
pub struct TransactionMonitor {
    topic: std::sync::Arc<str>,
    key_schemas: bool,
    value_schemas: bool,
    /// Registered Avro schema ids of the key and value, when they are Avro.
    avro_key: Option<u32>,
    avro_value: Option<u32>,
    open: Option<OpenTransaction>,
}

impl TransactionMonitor {
    /// A monitor writing to `<topic.prefix>.<transaction_topic_suffix>`.
    pub fn new(cfg: &JsonConverterConfig, transaction_topic_suffix: &str) -> Self {
        TransactionMonitor {
            topic: cfg
                .naming
                .join(&[&cfg.topic_prefix, transaction_topic_suffix])
                .into(),
            key_schemas: cfg.key_schemas_enable,
            value_schemas: cfg.value_schemas_enable,
            avro_key: None,
            avro_value: None,
            open: None,
        }
    }

    /// Writes the key and/or value as Avro datums framed with these registered schema ids
    /// (`None`: that part stays JSON).
    pub(crate) fn set_avro(&mut self, key: Option<u32>, value: Option<u32>) {
        self.avro_key = key;
        self.avro_value = value;
    }

    /// The transaction topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A transaction begins (pgoutput `Begin`, at `lsn`); returns its BEGIN record.
    pub fn begin(&mut self, tx_id: i64, lsn: Lsn, commit_ts_us: i64) -> KafkaRecord {
        let ts_ms = commit_ts_us.div_euclid(1000);
        self.open = Some(OpenTransaction {
            tx_id,
            ts_ms,
            total: 0,
            collections: JavaHashOrder::default(),
        });
        self.record("BEGIN", tx_id, lsn, ts_ms, None)
    }

    /// Counts one streamed change event and returns its block; `None` for snapshot rows,
    /// which belong to no transaction (Debezium writes `transaction: null` on them). An event
    /// outside a begun transaction begins one (pushing its BEGIN record to `out`), as
    /// Debezium's `dataEvent` does.
    pub fn on_event(
        &mut self,
        event: &ChangeEvent,
        out: &mut Vec<KafkaRecord>,
    ) -> Option<TransactionBlock> {
        if matches!(event.position, Position::Snapshot { .. }) {
            return None;
        }
        let lsn = event.source.lsn.unwrap_or_default();
        let tx_id = event.source.tx_id.unwrap_or_default();
        let collection = format!("{}.{}", event.table.schema, event.table.table);
        let hash = java_string_hash(&collection);
        Some(self.count(tx_id, lsn, event.source.ts_us, collection, Some(hash), out))
    }

    /// Counts a transactional logical message (its own data collection, as in Debezium) and
    /// returns its block; `None` for a non-transactional one, which belongs to no transaction.
    pub fn on_message(
        &mut self,
        message: &LogicalMessage,
        out: &mut Vec<KafkaRecord>,
    ) -> Option<TransactionBlock> {
        if !message.transactional {
            return None;
        }
        let lsn = message.source.lsn.unwrap_or_default();
        // A stand-in for the JVM identity hash: a 31-bit mix of the LSN.
        let hash = ((lsn.0 ^ (lsn.0 >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as u32;
        let collection = format!("{MESSAGE_COLLECTION_CLASS}@{hash:x}");
        let tx_id = message.source.tx_id.unwrap_or_default();
        Some(self.count(tx_id, lsn, message.source.ts_us, collection, None, out))
    }

    fn count(
        &mut self,
        tx_id: i64,
        lsn: Lsn,
        ts_us: i64,
        collection: String,
        hash: Option<u32>,
        out: &mut Vec<KafkaRecord>,
    ) -> TransactionBlock {
        if self.open.as_ref().map(|t| t.tx_id) != Some(tx_id) {
            out.push(self.begin(tx_id, lsn, ts_us));
        }
        let open = self.open.as_mut().expect("a transaction was just begun");
        open.total += 1;
        let data_collection_order = open.collections.increment(collection, hash);
        TransactionBlock {
            id: format!("{tx_id}:{}", lsn.0),
            total_order: open.total,
            data_collection_order,
        }
    }

    /// The transaction committed (its commit ends at `end_lsn`): its END record, or `None`
    /// when no transaction was begun.
    pub fn end(&mut self, end_lsn: Lsn) -> Option<KafkaRecord> {
        let open = self.open.take()?;
        let collections: Vec<(&str, u64)> = open.collections.iter().collect();
        Some(self.record(
            "END",
            open.tx_id,
            end_lsn,
            open.ts_ms,
            Some((open.total, &collections)),
        ))
    }

    /// A BEGIN (`end: None`) or END record (`end`: the event count and the per-collection
    /// counts). Avro parts follow AvroData's mapping of the Connect schemas: key
    /// `{id: string}`; value `status: string`, `id: string`, `event_count: ["null","long"]`,
    /// `data_collections: ["null", {array of ["null", event.collection record]}]`,
    /// `ts_ms: long`.
    fn record(
        &self,
        status: &str,
        tx_id: i64,
        lsn: Lsn,
        ts_ms: i64,
        end: Option<(u64, &[(&str, u64)])>,
    ) -> KafkaRecord {
        let id = format!("{tx_id}:{}", lsn.0);
        let key = match self.avro_key {
            Some(schema_id) => {
                let mut k = framed(schema_id, id.len() + 2);
                write_bytes(&mut k, id.as_bytes());
                k
            }
            None => {
                let mut k = String::new();
                if self.key_schemas {
                    k.push_str("{\"schema\":");
                    k.push_str(KEY_SCHEMA);
                    k.push_str(",\"payload\":");
                }
                k.push_str("{\"id\":");
                jackson::write_str(&mut k, &id);
                k.push('}');
                if self.key_schemas {
                    k.push('}');
                }
                k.into_bytes()
            }
        };
        let value = match self.avro_value {
            Some(schema_id) => {
                let mut v = framed(schema_id, 64);
                write_bytes(&mut v, status.as_bytes());
                write_bytes(&mut v, id.as_bytes());
                match end {
                    None => v.extend_from_slice(&[0, 0]),
                    Some((count, collections)) => {
                        v.push(2);
                        write_long(&mut v, count as i64);
                        v.push(2);
                        if !collections.is_empty() {
                            write_long(&mut v, collections.len() as i64);
                            for (name, count) in collections {
                                v.push(2);
                                write_bytes(&mut v, name.as_bytes());
                                write_long(&mut v, *count as i64);
                            }
                        }
                        v.push(0);
                    }
                }
                write_long(&mut v, ts_ms);
                v
            }
            None => {
                let mut v = String::new();
                if self.value_schemas {
                    v.push_str("{\"schema\":");
                    v.push_str(VALUE_SCHEMA);
                    v.push_str(",\"payload\":");
                }
                let _ = write!(v, "{{\"status\":\"{status}\",\"id\":");
                jackson::write_str(&mut v, &id);
                match end {
                    None => v.push_str(",\"event_count\":null,\"data_collections\":null"),
                    Some((count, collections)) => {
                        let _ = write!(v, ",\"event_count\":{count},\"data_collections\":[");
                        for (n, (name, count)) in collections.iter().enumerate() {
                            if n > 0 {
                                v.push(',');
                            }
                            v.push_str("{\"data_collection\":");
                            jackson::write_str(&mut v, name);
                            let _ = write!(v, ",\"event_count\":{count}}}");
                        }
                        v.push(']');
                    }
                }
                let _ = write!(v, ",\"ts_ms\":{ts_ms}}}");
                if self.value_schemas {
                    v.push('}');
                }
                v.into_bytes()
            }
        };
        KafkaRecord {
            topic: std::sync::Arc::clone(&self.topic),
            key: Some(key),
            value: Some(value),
            headers: std::sync::Arc::new([]),
        }
    }
}

/// A buffer holding the Schema Registry framing of `schema_id`, room for `datum` bytes more.
fn framed(schema_id: u32, datum: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum);
    out.push(crate::avro::registry::MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out
}

/// Java's `String.hashCode()` (UTF-16 code units).
pub fn java_string_hash(s: &str) -> u32 {
    s.encode_utf16()
        .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)))
}

/// Counters keyed by name, iterated in the order a `java.util.HashMap<K, Long>` with default
/// capacity and load factor would iterate them, given each key's `hashCode()` and the order
/// of first insertion. Updating an existing key does not move it.
#[derive(Debug, Default)]
pub struct JavaHashOrder {
    /// (name, hashCode, count) in insertion order; `None`: listed last, in insertion order.
    entries: Vec<(String, Option<u32>, u64)>,
    /// The table size (a power of two, at least 16).
    capacity: usize,
}

impl JavaHashOrder {
    const INITIAL_CAPACITY: usize = 16;
    const TREEIFY_THRESHOLD: usize = 8;
    const MIN_TREEIFY_CAPACITY: usize = 64;

    /// The bin of `hash`; keys without a hash sort after every bin.
    fn bucket(hash: Option<u32>, capacity: usize) -> usize {
        match hash {
            Some(hash) => ((hash ^ (hash >> 16)) as usize) & (capacity - 1),
            None => usize::MAX,
        }
    }

    /// Adds one to `name`'s count (inserting it at 0 first) and returns the new count. A key
    /// without `hash` counts towards the size but is listed after the others.
    pub fn increment(&mut self, name: String, hash: Option<u32>) -> u64 {
        if let Some(e) = self.entries.iter_mut().find(|e| e.1 == hash && e.0 == name) {
            e.2 += 1;
            return e.2;
        }
        if self.capacity == 0 {
            self.capacity = Self::INITIAL_CAPACITY;
        }
        // HashMap.putVal: a bin that already held TREEIFY_THRESHOLD nodes is "treeified",
        // which in a table under MIN_TREEIFY_CAPACITY means a resize instead.
        let bin = Self::bucket(hash, self.capacity);
        let in_bin = self
            .entries
            .iter()
            .filter(|e| hash.is_some() && Self::bucket(e.1, self.capacity) == bin)
            .count();
        self.entries.push((name, hash, 1));
        if in_bin >= Self::TREEIFY_THRESHOLD && self.capacity < Self::MIN_TREEIFY_CAPACITY {
            self.capacity *= 2;
        }
        if self.entries.len() > self.capacity * 3 / 4 {
            self.capacity *= 2;
        }
        1
    }

    /// (name, count) in `HashMap` iteration order: by bucket, then by insertion within one
    /// (resizes keep the relative order of a bin's nodes).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let capacity = self.capacity.max(1);
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| (Self::bucket(self.entries[i].1, capacity), i));
        order
            .into_iter()
            .map(move |i| (self.entries[i].0.as_str(), self.entries[i].2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hash_matches_java() {
        // "hello".hashCode() == 99162322; "public.pkchg" as computed by the JVM.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
        // Non-BMP characters count as two UTF-16 units: "😀".hashCode() == 1772899 (0xD83D * 31 + 0xDE00).
        assert_eq!(java_string_hash("😀"), 1_772_899);
    }

    #[test]
    fn hash_order_follows_buckets_then_insertion() {
        let mut m = JavaHashOrder::default();
        for name in ["public.pkchg", "public.composite", "public.pkchg"] {
            m.increment(name.into(), Some(java_string_hash(name)));
        }
        // Debezium's 09_txmeta golden lists composite (bucket 10) before pkchg (bucket 11).
        let listed: Vec<_> = m.iter().collect();
        assert_eq!(listed, vec![("public.composite", 1), ("public.pkchg", 2)]);
    }

    #[test]
    fn hash_order_resizes_past_the_load_factor() {
        let mut m = JavaHashOrder::default();
        // Hashes 16 apart share a bucket at 16 and split at 32.
        for i in 0..13u32 {
            m.increment(format!("k{i}"), Some(i * 16 + 1));
        }
        assert_eq!(m.capacity, 32, "13 entries exceed 16 * 0.75");
        let listed: Vec<_> = m.iter().map(|(n, _)| n.to_owned()).collect();
        let (even, odd): (Vec<_>, Vec<_>) = (0..13).partition(|i| i % 2 == 0);
        let expected: Vec<String> = even
            .into_iter()
            .chain(odd)
            .map(|i| format!("k{i}"))
            .collect();
        assert_eq!(listed, expected);
    }
}
