//! The offset store: where the connector resumes after a restart.
//!
//! Kafka Connect keys a source offset by the connector name and the source partition; Debezium's
//! PostgreSQL partition is `{"server": <topic.prefix>}`, so the key is the JSON text
//! `["<connector name>",{"server":"<topic.prefix>"}]`. The value holds Debezium's field names:
//! `lsn` (where streaming resumes: the end of the last durable transaction), `lsn_proc`,
//! `lsn_commit`, `txId`, `ts_usec`, and while the initial snapshot has not completed,
//! `snapshot` / `snapshot_completed`.
//!
//! File format: this version writes a JSON object of key text → value text (the same strings
//! Connect's `FileOffsetBackingStore` keeps, in JSON instead of Java serialisation; byte
//! compatibility with Connect's file comes with the delivery work). Every write replaces the
//! file atomically: write a temporary file beside it, fsync it, rename it over the old one,
//! fsync the directory. A file that exists but cannot be read is fatal: silently starting a new
//! snapshot would duplicate every row and hide a real problem.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use pgseam_model::Lsn;
use serde_json::{json, Map, Value};

/// Marks files written by this store.
const FORMAT_MARKER: &str = "pgseam-offsets-json-v1";

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
    #[error("cannot write offset file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The position of one connector, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorOffset {
    /// The initial snapshot was started but did not complete: the slot (if any) is ours, the
    /// rows already sent will be sent again.
    SnapshotIncomplete,
    /// Streaming: every transaction ending at or before `lsn` is in Kafka.
    Streaming {
        lsn: Lsn,
        commit_lsn: Lsn,
        tx_id: i64,
        ts_usec: i64,
    },
}

impl ConnectorOffset {
    fn to_json(&self) -> Value {
        match self {
            ConnectorOffset::SnapshotIncomplete => json!({
                "snapshot": "INITIAL",
                "snapshot_completed": false,
            }),
            ConnectorOffset::Streaming {
                lsn,
                commit_lsn,
                tx_id,
                ts_usec,
            } => json!({
                "lsn_proc": lsn.0,
                "lsn_commit": commit_lsn.0,
                "lsn": lsn.0,
                "txId": tx_id,
                "ts_usec": ts_usec,
            }),
        }
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        let object = value.as_object().ok_or("offset value is not an object")?;
        if object.get("snapshot_completed") == Some(&Value::Bool(false)) {
            return Ok(ConnectorOffset::SnapshotIncomplete);
        }
        let number = |name: &str| -> Result<i64, String> {
            object
                .get(name)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("offset has no numeric `{name}`"))
        };
        let lsn = number("lsn")?;
        Ok(ConnectorOffset::Streaming {
            lsn: Lsn(lsn as u64),
            commit_lsn: Lsn(number("lsn_commit").unwrap_or(lsn) as u64),
            tx_id: number("txId").unwrap_or(0),
            ts_usec: number("ts_usec").unwrap_or(0),
        })
    }
}

/// Connect's key text for a Debezium PostgreSQL connector.
pub fn offset_key(connector_name: &str, topic_prefix: &str) -> String {
    serde_json::to_string(&json!([connector_name, {"server": topic_prefix}]))
        .expect("JSON of strings")
}

/// A file of offsets, shared by the connectors of one standalone worker.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    entries: BTreeMap<String, String>,
}

impl FileOffsetStore {
    /// Opens the store; a missing file is an empty store, an unreadable one an error.
    pub fn open(path: &Path) -> Result<Self, OffsetError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileOffsetStore {
                    path: path.to_owned(),
                    entries: BTreeMap::new(),
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
        let document: Value =
            serde_json::from_str(&text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        if document.get("format").and_then(Value::as_str) != Some(FORMAT_MARKER) {
            return Err(corrupt(format!("missing format marker {FORMAT_MARKER:?}")));
        }
        let offsets = document
            .get("offsets")
            .and_then(Value::as_object)
            .ok_or_else(|| corrupt("no `offsets` object".into()))?;
        let mut entries = BTreeMap::new();
        for (key, value) in offsets {
            let value = value
                .as_str()
                .ok_or_else(|| corrupt(format!("value of {key} is not a string")))?;
            let parsed: Value =
                serde_json::from_str(value).map_err(|e| corrupt(format!("value of {key}: {e}")))?;
            ConnectorOffset::from_json(&parsed)
                .map_err(|e| corrupt(format!("value of {key}: {e}")))?;
            entries.insert(key.clone(), value.to_owned());
        }
        Ok(FileOffsetStore {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn get(&self, key: &str) -> Option<ConnectorOffset> {
        let value: Value = serde_json::from_str(self.entries.get(key)?).ok()?;
        ConnectorOffset::from_json(&value).ok()
    }

    /// Stores the offset and makes it durable before returning.
    pub fn put(&mut self, key: &str, offset: &ConnectorOffset) -> Result<(), OffsetError> {
        self.entries
            .insert(key.to_owned(), offset.to_json().to_string());
        self.write()
    }

    /// Forgets the offset of `key` (the next start is a fresh one) and makes that durable.
    pub fn remove(&mut self, key: &str) -> Result<(), OffsetError> {
        if self.entries.remove(key).is_some() {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> Result<(), OffsetError> {
        let write_error = |source| OffsetError::Write {
            path: self.path.clone(),
            source,
        };
        let mut offsets = Map::new();
        for (key, value) in &self.entries {
            offsets.insert(key.clone(), Value::String(value.clone()));
        }
        let document = json!({ "format": FORMAT_MARKER, "offsets": offsets });
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
            file.write_all(document.to_string().as_bytes())
                .map_err(write_error)?;
            file.sync_all().map_err(write_error)?;
        }
        fs::rename(&temporary, &self.path).map_err(write_error)?;
        File::open(&directory)
            .and_then(|d| d.sync_all())
            .map_err(write_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_has_connects_layout() {
        assert_eq!(
            offset_key("inventory", "dbz"),
            r#"["inventory",{"server":"dbz"}]"#
        );
    }

    #[test]
    fn offsets_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        let mut store = FileOffsetStore::open(&path).unwrap();
        assert_eq!(store.get("k"), None);
        store
            .put("k", &ConnectorOffset::SnapshotIncomplete)
            .unwrap();
        let streaming = ConnectorOffset::Streaming {
            lsn: Lsn(0x1_0000_0010),
            commit_lsn: Lsn(0x1_0000_0008),
            tx_id: 7,
            ts_usec: 9,
        };
        store.put("j", &streaming).unwrap();
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(reopened.get("k"), Some(ConnectorOffset::SnapshotIncomplete));
        assert_eq!(reopened.get("j"), Some(streaming));
        assert!(!dir.path().join(".offsets.dat.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.dat");
        fs::write(
            &path,
            b"{\"format\": \"pgseam-offsets-json-v1\", \"offsets\": {\"k\": \"{\\\"lsn\\\":",
        )
        .unwrap();
        let err = FileOffsetStore::open(&path).unwrap_err();
        assert!(matches!(err, OffsetError::Corrupt { .. }), "{err}");
        fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            FileOffsetStore::open(&path).unwrap_err(),
            OffsetError::Corrupt { .. }
        ));
    }
}
