//! The offset store: where each connector resumes after a restart.
//!
//! Kafka Connect keys a source offset by the connector name and the source partition;
//! Debezium's PostgreSQL partition is `{"server": <topic.prefix>}`. Keys and values are the JSON
//! texts Connect stores; [`debezium`] has their layout, [`java_serial`] the file's bytes.
//!
//! Two stores, behind [`OffsetStore`]: the file below (Connect standalone's
//! `offset.storage.file.filename`), and the offsets topic ([`topic`], `offset.storage.topic`,
//! Connect distributed's store, used by a standalone pgseam worker when that key is set — a
//! pgseam extension). Both hold the same key and value bytes.
//!
//! File format: exactly Connect's `FileOffsetBackingStore` (`offset.storage.file.filename`): a
//! Java-serialised `HashMap<byte[], byte[]>` from key bytes to value bytes. A Connect standalone
//! worker or a Debezium embedded engine can read what pgseam writes and the other way round, so
//! a stopped Debezium deployment's file can be handed to pgseam (and back). Entries of other
//! connectors are kept byte for byte.
//!
//! The walking skeleton wrote a JSON document (`{"format":"pgseam-offsets-json-v1",…}`); such a
//! file is still read, and the next write replaces it with Connect's format.
//!
//! Durability: every write replaces the file atomically — write a temporary file beside it,
//! fsync it, rename it over the old one, fsync the directory — so a crash leaves either the old
//! or the new offsets, never a mix. (Connect itself overwrites the file in place.) A file that
//! exists but cannot be parsed is fatal: silently starting a new snapshot would duplicate every
//! row and hide a real problem.

pub mod debezium;
pub mod java_serial;
pub mod topic;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use debezium::{ConnectorOffset, StreamOffset};
use java_serial::RawEntry;
use pgseam_sink_kafka::offsets_topic::OffsetsTopicConfig;
pub use topic::TopicOffsetStore;

use crate::config::WorkerConfig;

/// How long reading the offsets topic to its end may take at start.
const OFFSETS_TOPIC_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Marks files written by the walking skeleton's JSON store.
const LEGACY_JSON_MARKER: &str = "pgseam-offsets-json-v1";

#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    #[error("cannot read offset file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "offset file {path} is corrupt ({reason}); refusing to start, since starting over would \
         take a new snapshot. Restore the file, or delete it (and drop the slot) to start over"
    )]
    Corrupt { path: PathBuf, reason: String },
    /// `location`: the file or topic; `key`: the stored key's text.
    #[error(
        "the stored offset of connector {connector} (key {key}) in {location} cannot be used \
         ({reason}); refusing to start. Fix or reset the offset (PATCH or DELETE \
         /connectors/{connector}/offsets while the connector is stopped)"
    )]
    BadValue {
        location: String,
        connector: String,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Topic(#[from] pgseam_sink_kafka::offsets_topic::OffsetsTopicError),
    #[error("cannot write offset file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which connector an offset belongs to: Connect's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetKey {
    pub connector_name: String,
    pub topic_prefix: String,
}

/// The key of a Debezium PostgreSQL connector.
pub fn offset_key(connector_name: &str, topic_prefix: &str) -> OffsetKey {
    OffsetKey {
        connector_name: connector_name.to_owned(),
        topic_prefix: topic_prefix.to_owned(),
    }
}

impl OffsetKey {
    /// The key bytes Connect writes.
    pub fn encode(&self) -> String {
        debezium::encode_key(&self.connector_name, &self.topic_prefix)
    }

    fn matches(&self, key: &[u8]) -> bool {
        debezium::key_matches(key, &self.connector_name, &self.topic_prefix)
    }
}

/// The worker's offset store, shared by its connectors, the pipeline and the REST API: the file
/// (`offset.storage.file.filename`, Connect standalone's store) or, with `offset.storage.topic`
/// set, the topic (Connect distributed's store; a pgseam extension in standalone). Every call
/// holds one async lock, so a `put` waiting for the broker's acknowledgement delays other
/// connectors' offset writes, as one fsync'd file write does.
pub struct OffsetStore {
    backend: tokio::sync::Mutex<Backend>,
    location: String,
}

enum Backend {
    File(FileOffsetStore),
    Topic(TopicOffsetStore),
}

impl OffsetStore {
    /// Opens the store the worker configuration names (for the topic: creates it if missing
    /// and reads it to its end).
    pub async fn open(worker: &WorkerConfig) -> Result<OffsetStore, OffsetError> {
        let Some(topic) = &worker.offset_storage_topic else {
            return Ok(OffsetStore::file(FileOffsetStore::open(
                &worker.offset_storage_file_filename,
            )?));
        };
        let config = OffsetsTopicConfig {
            bootstrap_servers: worker.bootstrap_servers.clone(),
            client_overrides: topic.client_overrides.as_map().clone(),
            topic: topic.topic.clone(),
            partitions: topic.partitions,
            replication_factor: i32::from(topic.replication_factor),
            read_timeout: OFFSETS_TOPIC_READ_TIMEOUT,
        };
        let store = TopicOffsetStore::open(&config).await?;
        let location = store.location();
        Ok(OffsetStore {
            backend: tokio::sync::Mutex::new(Backend::Topic(store)),
            location,
        })
    }

    /// A store over an open file.
    pub fn file(store: FileOffsetStore) -> OffsetStore {
        let location = format!("offset file {}", store.path.display());
        OffsetStore {
            backend: tokio::sync::Mutex::new(Backend::File(store)),
            location,
        }
    }

    /// `offset file <path>` or `offsets topic <name>`, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The stored offset of one connector; a value that cannot be parsed is an error.
    pub async fn get(&self, key: &OffsetKey) -> Result<Option<ConnectorOffset>, OffsetError> {
        match &*self.backend.lock().await {
            Backend::File(file) => file.get(key),
            Backend::Topic(topic) => topic.get(key),
        }
    }

    /// The stored offset value as JSON, for `GET …/offsets`.
    pub async fn get_json(&self, key: &OffsetKey) -> Option<Value> {
        match &*self.backend.lock().await {
            Backend::File(file) => file.get_json(key),
            Backend::Topic(topic) => topic.get_json(key),
        }
    }

    /// Every stored key and value as text.
    pub async fn entries(&self) -> Vec<(String, String)> {
        match &*self.backend.lock().await {
            Backend::File(file) => file.entries(),
            Backend::Topic(topic) => topic.entries(),
        }
    }

    /// Stores the offset; returns once it is durable (fsync'd, or acknowledged by the broker).
    pub async fn put(&self, key: &OffsetKey, offset: &ConnectorOffset) -> Result<(), OffsetError> {
        match &mut *self.backend.lock().await {
            Backend::File(file) => file.put(key, offset),
            Backend::Topic(topic) => topic.put(key, offset).await,
        }
    }

    /// Whether offsets are in the offsets topic (the store exactly-once delivery needs).
    pub async fn is_topic(&self) -> bool {
        matches!(&*self.backend.lock().await, Backend::Topic(_))
    }

    /// Reads the offsets topic to its end again (committed records only); a no-op for the
    /// file. Exactly-once delivery calls it after fencing older producers.
    pub async fn refresh(&self) -> Result<(), OffsetError> {
        match &mut *self.backend.lock().await {
            Backend::File(_) => Ok(()),
            Backend::Topic(topic) => topic.refresh().await,
        }
    }

    /// The offsets-topic record (topic, key bytes, value bytes) storing `offset`, for a Kafka
    /// transaction to carry; `None` with the file store.
    pub async fn topic_record(
        &self,
        key: &OffsetKey,
        offset: &ConnectorOffset,
    ) -> Option<(String, Vec<u8>, Vec<u8>)> {
        match &*self.backend.lock().await {
            Backend::File(_) => None,
            Backend::Topic(topic) => Some(topic.record(key, offset)),
        }
    }

    /// Records that the record of [`OffsetStore::topic_record`] was committed.
    pub async fn note_committed(&self, key: &OffsetKey, offset: &ConnectorOffset) {
        if let Backend::Topic(topic) = &mut *self.backend.lock().await {
            topic.note_written(key, offset);
        }
    }

    /// Removes the connector's offset (it starts over), durably; false if there was none.
    pub async fn remove(&self, key: &OffsetKey) -> Result<bool, OffsetError> {
        match &mut *self.backend.lock().await {
            Backend::File(file) => file.remove(key),
            Backend::Topic(topic) => topic.remove(key).await,
        }
    }

    /// Checks that `value` is an offset pgseam can resume from, without storing it.
    pub fn check_json(value: &Value) -> Result<ConnectorOffset, String> {
        FileOffsetStore::check_json(value)
    }
}

/// A file of offsets, shared by the connectors of one standalone worker.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    entries: Vec<RawEntry>,
}

impl FileOffsetStore {
    /// Opens the store; a missing file is an empty store, an unreadable one an error.
    pub fn open(path: &Path) -> Result<Self, OffsetError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileOffsetStore {
                    path: path.to_owned(),
                    entries: Vec::new(),
                })
            }
            Err(source) => {
                return Err(OffsetError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let corrupt = |reason: String| OffsetError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let entries = if bytes.first() == Some(&b'{') {
            let entries = read_legacy_json(&bytes).map_err(corrupt)?;
            tracing::info!(path = %path.display(), "offset file is in pgseam's old JSON format; the next write converts it to Kafka Connect's format");
            entries
        } else {
            java_serial::read_hashmap(&bytes)
                .map_err(|e| corrupt(format!("not Kafka Connect's offset file format: {e}")))?
        };
        Ok(FileOffsetStore {
            path: path.to_owned(),
            entries,
        })
    }

    /// The stored offset of one connector; a value that cannot be parsed is an error.
    pub fn get(&self, key: &OffsetKey) -> Result<Option<ConnectorOffset>, OffsetError> {
        let Some((stored_key, value)) = self
            .entries
            .iter()
            .rev()
            .find(|(k, _)| k.as_deref().is_some_and(|k| key.matches(k)))
        else {
            return Ok(None);
        };
        decode_stored(
            key,
            stored_key.as_deref().unwrap_or_default(),
            value.as_deref(),
            || format!("offset file {}", self.path.display()),
        )
    }

    /// The stored offset value as JSON (Debezium's field names), for `GET …/offsets`.
    pub fn get_json(&self, key: &OffsetKey) -> Option<Value> {
        let (_, value) = self
            .entries
            .iter()
            .rev()
            .find(|(k, _)| k.as_deref().is_some_and(|k| key.matches(k)))?;
        serde_json::from_slice(value.as_deref()?).ok()
    }

    /// Every entry with a key and a value, as text (key text → value text), in file order.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    String::from_utf8_lossy(k.as_deref()?).into_owned(),
                    String::from_utf8_lossy(v.as_deref()?).into_owned(),
                ))
            })
            .collect()
    }

    /// Checks that `value` is an offset this store can resume from, without storing it.
    pub fn check_json(value: &Value) -> Result<ConnectorOffset, String> {
        debezium::decode_value(value.to_string().as_bytes())
    }

    /// Removes the connector's offset (it starts over), durably; false if there was none.
    pub fn remove(&mut self, key: &OffsetKey) -> Result<bool, OffsetError> {
        let before = self.entries.len();
        self.entries
            .retain(|(k, _)| !k.as_deref().is_some_and(|k| key.matches(k)));
        if self.entries.len() == before {
            return Ok(false);
        }
        self.write()?;
        Ok(true)
    }

    /// Stores the offset and makes it durable before returning.
    pub fn put(&mut self, key: &OffsetKey, offset: &ConnectorOffset) -> Result<(), OffsetError> {
        let value = debezium::encode_value(offset).into_bytes();
        // One entry per connector: drop any other spelling of the same key.
        let mut replaced = false;
        self.entries.retain_mut(|(k, v)| {
            if !k.as_deref().is_some_and(|k| key.matches(k)) {
                return true;
            }
            if replaced {
                return false;
            }
            replaced = true;
            *v = Some(value.clone());
            true
        });
        if !replaced {
            self.entries
                .push((Some(key.encode().into_bytes()), Some(value)));
        }
        self.write()
    }

    fn write(&self) -> Result<(), OffsetError> {
        let write_error = |source| OffsetError::Write {
            path: self.path.clone(),
            source,
        };
        let bytes = java_serial::write_hashmap(&self.entries);
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&directory).map_err(write_error)?;
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = directory.join(format!(".{file_name}.tmp"));
        {
            let mut file = File::create(&temporary).map_err(write_error)?;
            file.write_all(&bytes).map_err(write_error)?;
            file.sync_all().map_err(write_error)?;
        }
        fs::rename(&temporary, &self.path).map_err(write_error)?;
        File::open(&directory)
            .and_then(|d| d.sync_all())
            .map_err(write_error)?;
        Ok(())
    }
}

/// Decodes the stored value of `key` (spelled `stored_key`); `None` (a tombstone: Connect's
/// reset) is no offset.
fn decode_stored(
    key: &OffsetKey,
    stored_key: &[u8],
    value: Option<&[u8]>,
    location: impl FnOnce() -> String,
) -> Result<Option<ConnectorOffset>, OffsetError> {
    let Some(value) = value else {
        return Ok(None);
    };
    debezium::decode_value(value)
        .map(Some)
        .map_err(|reason| OffsetError::BadValue {
            location: location(),
            connector: key.connector_name.clone(),
            key: String::from_utf8_lossy(stored_key).into_owned(),
            reason,
        })
}

/// The walking skeleton's file: `{"format": marker, "offsets": {key text: value text}}`.
fn read_legacy_json(bytes: &[u8]) -> Result<Vec<RawEntry>, String> {
    let document: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if document.get("format").and_then(Value::as_str) != Some(LEGACY_JSON_MARKER) {
        return Err(format!(
            "JSON without the format marker {LEGACY_JSON_MARKER:?}"
        ));
    }
    let offsets = document
        .get("offsets")
        .and_then(Value::as_object)
        .ok_or("no `offsets` object")?;
    offsets
        .iter()
        .map(|(key, value)| {
            let value = value
                .as_str()
                .ok_or_else(|| format!("value of {key} is not a string"))?;
            debezium::decode_value(value.as_bytes()).map_err(|e| format!("value of {key}: {e}"))?;
            Ok((
                Some(key.as_bytes().to_vec()),
                Some(value.as_bytes().to_vec()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use pgseam_model::Lsn;

    use super::*;

    const DEBEZIUM_TWO: &[u8] =
        include_bytes!("../../tests/fixtures/offsets/debezium-two-connectors.dat");

    fn streaming(lsn: u64) -> ConnectorOffset {
        ConnectorOffset::Streaming(StreamOffset::after_commit(Lsn(lsn), 7, 9))
    }

    #[test]
    fn offsets_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        let mut store = FileOffsetStore::open(&path).unwrap();
        let k = offset_key("k", "p");
        let j = offset_key("j", "p");
        assert_eq!(store.get(&k).unwrap(), None);
        let incomplete = ConnectorOffset::SnapshotIncomplete { ts_usec: 1 };
        store.put(&k, &incomplete).unwrap();
        store.put(&j, &streaming(0x1_0000_0010)).unwrap();
        store.put(&j, &streaming(0x1_0000_0020)).unwrap();
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(reopened.entries.len(), 2);
        assert_eq!(reopened.get(&k).unwrap(), Some(incomplete));
        assert_eq!(reopened.get(&j).unwrap(), Some(streaming(0x1_0000_0020)));
        assert!(!dir.path().join(".offsets.dat.tmp").exists());
        assert_eq!(&fs::read(&path).unwrap()[..4], &[0xAC, 0xED, 0x00, 0x05]);
    }

    #[test]
    fn a_debezium_file_is_read_and_other_connectors_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        fs::write(&path, DEBEZIUM_TWO).unwrap();
        let mut store = FileOffsetStore::open(&path).unwrap();
        let ours = offset_key("dbzpeer", "dbz");
        assert_eq!(
            store.get(&ours).unwrap().and_then(|o| o.resume_lsn()),
            Some(Lsn(70_323_232))
        );
        store.put(&ours, &streaming(70_400_000)).unwrap();
        let reread = java_serial::read_hashmap(&fs::read(&path).unwrap()).unwrap();
        let original = java_serial::read_hashmap(DEBEZIUM_TWO).unwrap();
        assert_eq!(reread.len(), 2);
        assert_eq!(reread[0].0, original[0].0, "our key keeps its bytes");
        assert_eq!(reread[1], original[1], "the other connector is untouched");
    }

    #[test]
    fn the_skeletons_json_file_is_migrated_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        let key = offset_key("inventory", "dbz");
        let legacy = serde_json::json!({
            "format": LEGACY_JSON_MARKER,
            "offsets": { key.encode(): r#"{"lsn_proc":16,"lsn_commit":8,"lsn":16,"txId":7,"ts_usec":9}"# },
        });
        fs::write(&path, legacy.to_string()).unwrap();
        let mut store = FileOffsetStore::open(&path).unwrap();
        let stored = store.get(&key).unwrap().unwrap();
        assert_eq!(stored.resume_lsn(), Some(Lsn(16)));
        store.put(&key, &streaming(32)).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[..2], &[0xAC, 0xED]);
        assert_eq!(
            FileOffsetStore::open(&path).unwrap().get(&key).unwrap(),
            Some(streaming(32))
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        for bad in [
            &b"{\"format\": \"pgseam-offsets-json-v1\", \"offsets\": {\"k\": \"{\\\"lsn\\\":"[..],
            b"garbage",
            &DEBEZIUM_TWO[..DEBEZIUM_TWO.len() - 1],
            b"",
        ] {
            fs::write(&path, bad).unwrap();
            let err = FileOffsetStore::open(&path).unwrap_err();
            assert!(matches!(err, OffsetError::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn an_unusable_value_for_our_connector_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        let key = offset_key("c", "p");
        fs::write(
            &path,
            java_serial::write_hashmap(&[(Some(key.encode().into_bytes()), Some(b"[1]".to_vec()))]),
        )
        .unwrap();
        let store = FileOffsetStore::open(&path).unwrap();
        assert!(matches!(
            store.get(&key).unwrap_err(),
            OffsetError::BadValue { .. }
        ));
        assert_eq!(store.get(&offset_key("other", "p")).unwrap(), None);
    }
}
