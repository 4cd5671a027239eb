//! Debezium's signals, as far as pgseam implements them: ad-hoc incremental snapshots.
//!
//! A signal is `(id, type, data)`, `data` a JSON object. It reaches the source through
//! - the **`source` channel**: an INSERT into the signaling table `signal.data.collection`
//!   (columns `id`, `type`, `data`, in the publication) read from the replication stream, as
//!   Debezium's `SourceSignalChannel` does (the table's UPDATEs and DELETEs are no signals).
//!   The signal is acted on inside the stream, so it is exactly as durable as the stream
//!   position: a crash before its transaction's offset is stored reads it again.
//!   The worker adds the table to the table filter, as Debezium's `RelationalTableFilters`
//!   does, so its own change events go to its topic;
//! - the **REST extension** `POST /connectors/{name}/signals` (pgseam's): the worker puts the
//!   signal into the source's [`SignalInbox`]; the source takes it at the next transaction
//!   boundary. Not durable before it is acted on (a crash in between loses it: send again);
//! - the **`kafka` and `file` channels** (the worker's `signal_channels`): through the inbox
//!   too; they acknowledge a signal at its origin once [`SignalInbox::applied`] says the
//!   source has applied it.
//!
//! Types (Debezium's `SignalProcessor` actions):
//! - `execute-snapshot`, `data.type = "incremental"` (the default), `data.data-collections`:
//!   regular expressions matched against `schema.table` of the captured tables (whole-string
//!   match, as Debezium's `expandDataCollectionIds`), `data.additional-conditions`:
//!   `[{"data-collection": "schema.table", "filter": "<SQL condition>"}]`. The tables are read
//!   by primary-key windows while streaming (see `resume`); `"type": "blocking"` pauses the
//!   stream and snapshots the tables (see `blocking`).
//! - `stop-snapshot`: `data.data-collections` (none or empty: every table) leave the running
//!   incremental snapshot.
//! - `pause-snapshot` / `resume-snapshot`: no new window opens while paused (not stored in the
//!   offset: a restart resumes).
//! - `log`: `data.message` is logged.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value as Json;

/// One additional condition: rows of the table matching `filter` (an SQL condition) only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdditionalCondition {
    /// `schema.table` (compared exactly).
    pub data_collection: String,
    pub filter: String,
}

/// A parsed signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    ExecuteSnapshot {
        id: String,
        data_collections: Vec<String>,
        conditions: Vec<AdditionalCondition>,
        /// `"type": "blocking"` (see `blocking`); incremental otherwise.
        blocking: bool,
    },
    StopSnapshot {
        id: String,
        data_collections: Vec<String>,
    },
    PauseSnapshot {
        id: String,
    },
    ResumeSnapshot {
        id: String,
    },
    Log {
        id: String,
        message: String,
    },
}

impl Signal {
    /// Parses a signal; the error names what is wrong (never the whole data).
    pub fn parse(id: &str, kind: &str, data: Option<&str>) -> Result<Signal, String> {
        let data: Json = match data.map(str::trim).filter(|d| !d.is_empty()) {
            None => Json::Object(Default::default()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| format!("signal {id}: `data` is not JSON: {e}"))?,
        };
        if !data.is_object() {
            return Err(format!("signal {id}: `data` is not a JSON object"));
        }
        let id = id.to_owned();
        let collections = |data: &Json| -> Result<Vec<String>, String> {
            match data.get("data-collections") {
                None | Some(Json::Null) => Ok(Vec::new()),
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(|s| s.trim().to_owned()).ok_or_else(|| {
                            format!("signal {id}: `data-collections` holds a non-string")
                        })
                    })
                    .collect(),
                Some(_) => Err(format!("signal {id}: `data-collections` is not an array")),
            }
        };
        match kind.trim() {
            "execute-snapshot" => {
                let snapshot_type = data
                    .get("type")
                    .and_then(Json::as_str)
                    .unwrap_or("incremental");
                let blocking = if snapshot_type.eq_ignore_ascii_case("incremental") {
                    false
                } else if snapshot_type.eq_ignore_ascii_case("blocking") {
                    true
                } else {
                    return Err(format!(
                        "signal {id}: execute-snapshot of type `{snapshot_type}`: expected `incremental` or `blocking`"
                    ));
                };
                if data.get("surrogate-key").is_some_and(|k| !k.is_null()) {
                    return Err(format!(
                        "signal {id}: `surrogate-key` is not supported yet (tables are read by their primary key)"
                    ));
                }
                let data_collections = collections(&data)?;
                if data_collections.is_empty() {
                    return Err(format!(
                        "signal {id}: execute-snapshot needs a non-empty `data-collections`"
                    ));
                }
                for pattern in &data_collections {
                    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                        format!("signal {id}: data collection `{pattern}` is not a valid regular expression: {e}")
                    })?;
                }
                let conditions = match data.get("additional-conditions") {
                    None | Some(Json::Null) => Vec::new(),
                    Some(Json::Array(items)) => items
                        .iter()
                        .map(|c| {
                            let field = |name: &str| {
                                c.get(name).and_then(Json::as_str).map(str::to_owned).ok_or_else(
                                    || format!("signal {id}: an additional condition has no string `{name}`"),
                                )
                            };
                            Ok(AdditionalCondition {
                                data_collection: field("data-collection")?,
                                filter: field("filter")?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                    Some(_) => {
                        return Err(format!(
                            "signal {id}: `additional-conditions` is not an array"
                        ))
                    }
                };
                Ok(Signal::ExecuteSnapshot {
                    id,
                    data_collections,
                    conditions,
                    blocking,
                })
            }
            "stop-snapshot" => Ok(Signal::StopSnapshot {
                data_collections: collections(&data)?,
                id,
            }),
            "pause-snapshot" => Ok(Signal::PauseSnapshot { id }),
            "resume-snapshot" => Ok(Signal::ResumeSnapshot { id }),
            "log" => Ok(Signal::Log {
                message: data
                    .get("message")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                id,
            }),
            other => Err(format!("signal {id}: unknown signal type `{other}`")),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Signal::ExecuteSnapshot { id, .. }
            | Signal::StopSnapshot { id, .. }
            | Signal::PauseSnapshot { id }
            | Signal::ResumeSnapshot { id }
            | Signal::Log { id, .. } => id,
        }
    }
}

/// Whether `schema.table` matches one of Debezium's data-collection patterns (whole match).
pub(crate) fn matches_any(patterns: &[String], schema: &str, table: &str) -> bool {
    let name = format!("{schema}.{table}");
    patterns.iter().any(|p| {
        regex::Regex::new(&format!("^(?:{p})$")).is_ok_and(|r| r.is_match(&name)) || p == &name
    })
}

/// Signals handed to a running source by the worker: the REST extension and the `kafka` and
/// `file` channels. Each signal sent gets a sequence number; the source counts the signals it
/// has applied (acted on, and their progress handed to the worker), so a channel can wait for
/// that before it acknowledges the signal at its origin ([`SignalInbox::applied`]).
#[derive(Debug, Default)]
pub struct SignalInbox {
    /// Signals not taken yet, and how many were ever sent.
    queue: Mutex<(VecDeque<Signal>, u64)>,
    notify: tokio::sync::Notify,
    applied: std::sync::atomic::AtomicU64,
    applied_notify: tokio::sync::Notify,
}

impl SignalInbox {
    /// Queues `signal`; returns its sequence number (1, 2, ...).
    pub fn send(&self, signal: Signal) -> u64 {
        let seq = match self.queue.lock() {
            Ok(mut queue) => {
                queue.0.push_back(signal);
                queue.1 += 1;
                queue.1
            }
            Err(_) => u64::MAX,
        };
        self.notify.notify_one();
        seq
    }

    pub(crate) fn take(&self) -> Option<Signal> {
        self.queue.lock().ok()?.0.pop_front()
    }

    pub(crate) async fn notified(&self) {
        self.notify.notified().await
    }

    /// The source applied the next signal it took.
    pub(crate) fn mark_applied(&self) {
        self.applied
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.applied_notify.notify_waiters();
    }

    /// Waits until the signal `seq` ([`SignalInbox::send`]) is applied.
    pub async fn applied(&self, seq: u64) {
        loop {
            let notified = self.applied_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.applied.load(std::sync::atomic::Ordering::SeqCst) >= seq {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debeziums_signals() {
        let s = Signal::parse(
            "1",
            "execute-snapshot",
            Some(r#"{"data-collections":["public\\.orders","public.x.*"],"type":"INCREMENTAL","additional-conditions":[{"data-collection":"public.orders","filter":"id > 10"}]}"#),
        )
        .unwrap();
        let Signal::ExecuteSnapshot {
            data_collections,
            conditions,
            ..
        } = s
        else {
            panic!()
        };
        assert!(matches_any(&data_collections, "public", "orders"));
        assert!(matches_any(&data_collections, "public", "xyz"));
        assert!(!matches_any(&data_collections, "public", "orders2"));
        assert_eq!(conditions[0].filter, "id > 10");
        assert!(matches!(
            Signal::parse(
                "2",
                "execute-snapshot",
                Some(r#"{"type":"BLOCKING","data-collections":["a.b"]}"#)
            ),
            Ok(Signal::ExecuteSnapshot { blocking: true, .. })
        ));
        assert!(Signal::parse(
            "2",
            "execute-snapshot",
            Some(r#"{"type":"eventual","data-collections":["a.b"]}"#)
        )
        .unwrap_err()
        .contains("`incremental` or `blocking`"));
        assert!(Signal::parse("3", "execute-snapshot", Some("{}")).is_err());
        assert!(Signal::parse("4", "execute-snapshot", Some("not json")).is_err());
        assert!(Signal::parse("5", "nope", None).is_err());
        assert_eq!(
            Signal::parse("6", "stop-snapshot", Some(r#"{"type":"incremental"}"#)).unwrap(),
            Signal::StopSnapshot {
                id: "6".into(),
                data_collections: vec![]
            }
        );
        assert_eq!(
            Signal::parse("7", "log", Some(r#"{"message":"hi"}"#)).unwrap(),
            Signal::Log {
                id: "7".into(),
                message: "hi".into()
            }
        );
    }
}
