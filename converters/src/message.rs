//! Logical decoding messages (`pg_logical_emit_message`) as Debezium's
//! `LogicalDecodingMessageMonitor` writes them to `<topic.prefix>.message`:
//!
//! ```text
//! key   = {"schema":<io.debezium.connector.postgresql.MessageKey>,"payload":{"prefix":".."}}
//! value = {"schema":<io.debezium.connector.postgresql.MessageValue>,
//!          "payload":{"op":"m","ts_ms":..,"source":{..},"transaction":..,
//!                     "message":{"prefix":"..","content":<binary.handling.mode>}}}
//! ```
//!
//! No headers (Debezium adds none to these records), no `ts_us`/`ts_ns` at the top level, and
//! `source.schema`/`source.table` are empty strings. The content is bytes (base64 in JSON) or,
//! under `binary.handling.mode`, a base64 / URL-safe base64 / hex string.

use std::fmt::Write as _;

use pgseam_model::{LogicalMessage, TransactionBlock};

use crate::envelope::{write_source, write_transaction_block, SOURCE_SCHEMA, TRANSACTION_SCHEMA};
use crate::field::push_binary;
use crate::{jackson, BinaryHandlingMode, JsonConverter, KafkaRecord};

/// The key's Connect schema (`io.debezium.connector.postgresql.MessageKey`).
pub(crate) const KEY_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"}],"optional":false,"name":"io.debezium.connector.postgresql.MessageKey","version":1}"#;

/// The topic suffix of logical decoding messages.
pub const MESSAGE_TOPIC_SUFFIX: &str = ".message";

impl JsonConverter {
    /// Converts one logical decoding message into its record on `<topic.prefix>.message`.
    /// `transaction` is its `transaction` block (transactional messages with
    /// `provide.transaction.metadata=true`), else `null` is written.
    pub fn convert_message(
        &self,
        message: &LogicalMessage,
        transaction: Option<&TransactionBlock>,
        processing_time_ns: i64,
    ) -> KafkaRecord {
        let cfg = self.config();
        let mut k = String::with_capacity(KEY_SCHEMA.len() + message.prefix.len() + 32);
        if cfg.key_schemas_enable {
            k.push_str("{\"schema\":");
            k.push_str(KEY_SCHEMA);
            k.push_str(",\"payload\":");
        }
        k.push_str("{\"prefix\":");
        jackson::write_str(&mut k, &message.prefix);
        k.push('}');
        if cfg.key_schemas_enable {
            k.push('}');
        }

        let mut v = String::with_capacity(2048 + message.content.len() * 2);
        if cfg.value_schemas_enable {
            v.push_str("{\"schema\":");
            v.push_str(&value_schema(cfg.modes.binary));
            v.push_str(",\"payload\":");
        }
        let _ = write!(
            v,
            "{{\"op\":\"m\",\"ts_ms\":{},\"source\":",
            processing_time_ns.div_euclid(1_000_000)
        );
        write_source(
            &mut v,
            &cfg.topic_prefix,
            &message.source,
            cfg.replace_null_with_default,
        );
        v.push_str(",\"transaction\":");
        write_transaction_block(&mut v, transaction);
        v.push_str(",\"message\":{\"prefix\":");
        jackson::write_str(&mut v, &message.prefix);
        v.push_str(",\"content\":");
        push_binary(&mut v, cfg.modes.binary, &message.content);
        v.push_str("}}");
        if cfg.value_schemas_enable {
            v.push('}');
        }
        KafkaRecord {
            topic: cfg
                .naming
                .topic(&[&cfg.topic_prefix, &MESSAGE_TOPIC_SUFFIX[1..]])
                .into(),
            key: Some(k.into_bytes()),
            value: Some(v.into_bytes()),
            headers: std::sync::Arc::new([]),
        }
    }
}

/// The value's Connect schema (`io.debezium.connector.postgresql.MessageValue`): the content
/// is `bytes`, or a `string` under the other `binary.handling.mode`s.
pub(crate) fn value_schema(binary: BinaryHandlingMode) -> String {
    let mut v = String::with_capacity(2048);
    v.push_str("{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},");
    v.push_str(SOURCE_SCHEMA);
    v.push(',');
    v.push_str(TRANSACTION_SCHEMA);
    v.push_str(",{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":true,\"field\":\"prefix\"},{\"type\":\"");
    v.push_str(match binary {
        BinaryHandlingMode::Bytes => "bytes",
        _ => "string",
    });
    v.push_str("\",\"optional\":true,\"field\":\"content\"}],\"optional\":false,\"name\":\"io.debezium.connector.postgresql.Message\",\"version\":1,\"field\":\"message\"}],\"optional\":false,\"name\":\"io.debezium.connector.postgresql.MessageValue\",\"version\":1}");
    v
}
