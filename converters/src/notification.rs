//! Debezium's notifications (`notification.enabled.channels`), as its `SinkNotificationChannel`
//! writes them to `notification.sink.topic.name` and its `LogNotificationChannel` logs them.
//!
//! The record has no headers (the channel builds a bare `SourceRecord`) and, through Kafka
//! Connect's JsonConverter:
//!
//! ```text
//! key   = {"id":"<id>"}                                   (io.debezium.connector.common.NotificationKey)
//! value = {"id":..,"type":"IN_PROGRESS","aggregate_type":"Incremental Snapshot",
//!          "additional_data":{"<k>":"<v>",..},"timestamp":<ms>}  (io.debezium.connector.common.Notification)
//! ```
//!
//! `additional_data` is a `java.util.HashMap` in Debezium (`new HashMap<>(Map.of(..))`, then
//! `connector_name` put), serialised in its iteration order: [`java_hash_map_order`]
//! reproduces that order (the copy constructor's pre-sized table as Java 17 sizes it, then the
//! resizes of the puts; bins in index order, a bin's keys in insertion order). Two keys sharing
//! a bin keep the order pgseam inserts them in, where Debezium's depends on `Map.of`'s
//! per-JVM iteration order.

use std::fmt::Write as _;

use pgseam_model::Notification;

use crate::jackson;
use crate::txmeta::java_string_hash;

/// The key's Connect schema (`SchemaFactory.notificationKeySchema`).
pub const KEY_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.NotificationKey","version":1}"#;

/// The value's Connect schema (`SchemaFactory.notificationValueSchema`).
pub const VALUE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"string","optional":false,"field":"type"},{"type":"string","optional":false,"field":"aggregate_type"},{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":false},"optional":true,"field":"additional_data"},{"type":"int64","optional":false,"field":"timestamp"}],"optional":false,"name":"io.debezium.connector.common.Notification","version":1}"#;

/// Java's `HashMap.tableSizeFor`: the least power of two at or above `n` (at least 1).
fn table_size_for(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The iteration order of `m = new HashMap<>(copied); m.put(extra)` in Java 17, where
/// `copied` iterates in the given order (see the module docs).
pub fn java_hash_map_order<'a>(
    copied: &'a [(String, String)],
    extra: (&'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    let s = copied.len();
    // putMapEntries pre-sizes: ft = s / 0.75f + 1.0f; threshold = tableSizeFor((int) ft);
    // the first put allocates that many bins (16 when nothing was copied).
    let mut capacity = if s == 0 {
        16
    } else {
        table_size_for(((s as f32) / 0.75f32 + 1.0f32) as usize)
    };
    let mut entries: Vec<(&str, &str)> = Vec::with_capacity(s + 1);
    for (k, v) in copied
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(std::iter::once(extra))
    {
        if let Some(e) = entries.iter_mut().find(|e| e.0 == k) {
            e.1 = v;
            continue;
        }
        entries.push((k, v));
        // ++size > threshold (capacity * 0.75) doubles the table.
        if entries.len() > capacity * 3 / 4 {
            capacity *= 2;
        }
    }
    let bin = |k: &str| {
        let h = java_string_hash(k);
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    // Stable: a bin's keys keep their insertion order (resizes split bins preserving it).
    entries.sort_by_key(|(k, _)| bin(k));
    entries
}

/// `additional_data` with `connector_name`, in Debezium's order.
pub fn additional_data<'a>(
    n: &'a Notification,
    connector_name: &'a str,
) -> Vec<(&'a str, &'a str)> {
    java_hash_map_order(&n.additional_data, ("connector_name", connector_name))
}

/// The sink channel's key and value, in Kafka Connect JSON with or without schemas.
pub fn notification_json(
    n: &Notification,
    connector_name: &str,
    key_schemas: bool,
    value_schemas: bool,
) -> (Vec<u8>, Vec<u8>) {
    let mut key = String::new();
    if key_schemas {
        key.push_str("{\"schema\":");
        key.push_str(KEY_SCHEMA);
        key.push_str(",\"payload\":");
    }
    key.push_str("{\"id\":");
    jackson::write_str(&mut key, &n.id);
    key.push('}');
    if key_schemas {
        key.push('}');
    }
    let mut value = String::new();
    if value_schemas {
        value.push_str("{\"schema\":");
        value.push_str(VALUE_SCHEMA);
        value.push_str(",\"payload\":");
    }
    value.push_str("{\"id\":");
    jackson::write_str(&mut value, &n.id);
    value.push_str(",\"type\":");
    jackson::write_str(&mut value, n.kind);
    value.push_str(",\"aggregate_type\":");
    jackson::write_str(&mut value, n.aggregate_type);
    value.push_str(",\"additional_data\":{");
    for (i, (k, v)) in additional_data(n, connector_name).into_iter().enumerate() {
        if i > 0 {
            value.push(',');
        }
        jackson::write_str(&mut value, k);
        value.push(':');
        jackson::write_str(&mut value, v);
    }
    value.push_str("},\"timestamp\":");
    jackson::write_i64(&mut value, n.timestamp_ms);
    value.push('}');
    if value_schemas {
        value.push('}');
    }
    (key.into_bytes(), value.into_bytes())
}

/// `Notification.toString()`, as the log channel prints it after `[Notification Service] `.
pub fn notification_text(n: &Notification, connector_name: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{id='{}', aggregateType='{}', type='{}', additionalData={{",
        n.id, n.aggregate_type, n.kind
    );
    for (i, (k, v)) in additional_data(n, connector_name).into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{k}={v}");
    }
    let _ = write!(out, "}}, timestamp={}}}", n.timestamp_ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(kind: &'static str, data: &[(&str, &str)]) -> Notification {
        Notification {
            id: "id-1".into(),
            aggregate_type: pgseam_model::INCREMENTAL_SNAPSHOT,
            kind,
            additional_data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timestamp_ms: 1_700_000_000_000,
        }
    }

    /// Captured from Debezium 3.6.3's `Notification`, `SchemaFactory` and Kafka Connect's
    /// JsonConverter (Java 17), with the additional data inserted in this order.
    #[test]
    fn matches_debezium_byte_for_byte() {
        let in_progress = n(
            "IN_PROGRESS",
            &[
                ("data_collections", "public.a,public.b"),
                ("current_collection_in_progress", "public.a"),
                ("maximum_key", "100"),
                ("last_processed_key", "50"),
            ],
        );
        let (key, value) = notification_json(&in_progress, "conn", true, true);
        assert_eq!(
            String::from_utf8(key).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.NotificationKey","version":1},"payload":{"id":"id-1"}}"#
        );
        assert_eq!(
            String::from_utf8(value).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"string","optional":false,"field":"type"},{"type":"string","optional":false,"field":"aggregate_type"},{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":false},"optional":true,"field":"additional_data"},{"type":"int64","optional":false,"field":"timestamp"}],"optional":false,"name":"io.debezium.connector.common.Notification","version":1},"payload":{"id":"id-1","type":"IN_PROGRESS","aggregate_type":"Incremental Snapshot","additional_data":{"current_collection_in_progress":"public.a","connector_name":"conn","maximum_key":"100","data_collections":"public.a,public.b","last_processed_key":"50"},"timestamp":1700000000000}}"#
        );
        let (key, value) = notification_json(&in_progress, "conn", false, false);
        assert_eq!(String::from_utf8(key).unwrap(), r#"{"id":"id-1"}"#);
        assert_eq!(
            String::from_utf8(value).unwrap(),
            r#"{"id":"id-1","type":"IN_PROGRESS","aggregate_type":"Incremental Snapshot","additional_data":{"current_collection_in_progress":"public.a","connector_name":"conn","maximum_key":"100","data_collections":"public.a,public.b","last_processed_key":"50"},"timestamp":1700000000000}"#
        );
        assert_eq!(
            notification_text(&in_progress, "conn"),
            "{id='id-1', aggregateType='Incremental Snapshot', type='IN_PROGRESS', additionalData={current_collection_in_progress=public.a, connector_name=conn, maximum_key=100, data_collections=public.a,public.b, last_processed_key=50}, timestamp=1700000000000}"
        );
    }

    /// More sizes (the table's size depends on how many entries were copied), from the same
    /// Java capture.
    #[test]
    fn additional_data_order_matches_java_for_each_size() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], r#"{"connector_name":"conn"}"#),
            (
                &[("data_collections", "public.orders,public.customers")],
                r#"{"connector_name":"conn","data_collections":"public.orders,public.customers"}"#,
            ),
            (
                &[("scanned_collection", "public.x"), ("status", "SUCCEEDED")],
                r#"{"connector_name":"conn","scanned_collection":"public.x","status":"SUCCEEDED"}"#,
            ),
            (
                &[
                    ("data_collections", "public.orders"),
                    ("scanned_collection", "public.orders"),
                    ("total_rows_scanned", "1000"),
                    ("status", "SUCCEEDED"),
                ],
                r#"{"scanned_collection":"public.orders","connector_name":"conn","total_rows_scanned":"1000","data_collections":"public.orders","status":"SUCCEEDED"}"#,
            ),
        ];
        for (data, expected) in cases {
            let (_, value) = notification_json(&n("X", data), "conn", false, false);
            let value = String::from_utf8(value).unwrap();
            let start = value.find("\"additional_data\":").unwrap() + "\"additional_data\":".len();
            let end = value.find(",\"timestamp\"").unwrap();
            assert_eq!(&value[start..end], *expected);
        }
    }
}
