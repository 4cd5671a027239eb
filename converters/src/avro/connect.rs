//! Kafka Connect schemas, read back from the Connect schema JSON the envelope renders.
//!
//! The JSON envelope (`envelope.rs`) renders each table version's Connect schema once, in
//! `JsonConverter`'s `asJsonSchema` form, and that form is verified byte for byte against
//! Debezium's output by the golden tests. Reading it back here gives the Avro path exactly the
//! Connect schema Debezium builds (types, names, versions, docs, parameters in order, defaults),
//! without a second copy of the per-type mapping. This runs once per table version, never per
//! event.

use serde_json::Value as Json;

/// A Kafka Connect schema type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

/// One Kafka Connect schema (`org.apache.kafka.connect.data.ConnectSchema`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConnectSchema {
    pub(crate) ty: ConnectType,
    pub(crate) optional: bool,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<i64>,
    pub(crate) doc: Option<String>,
    /// In declaration order.
    pub(crate) parameters: Vec<(String, String)>,
    /// The default as `JsonConverter` writes it (bytes and decimals as base64).
    pub(crate) default: Option<Json>,
    /// Struct fields, in order.
    pub(crate) fields: Vec<(String, ConnectSchema)>,
    /// Array items / map values.
    pub(crate) value_schema: Option<Box<ConnectSchema>>,
    /// Map keys.
    pub(crate) key_schema: Option<Box<ConnectSchema>>,
}

/// Kafka Connect's logical `Decimal`.
pub(crate) const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
/// Kafka Connect's logical `Date` (int32 days).
pub(crate) const DATE: &str = "org.apache.kafka.connect.data.Date";
/// Kafka Connect's logical `Time` (int32 milliseconds).
pub(crate) const TIME: &str = "org.apache.kafka.connect.data.Time";
/// Kafka Connect's logical `Timestamp` (int64 milliseconds).
pub(crate) const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

impl ConnectSchema {
    /// Parses `JsonConverter`'s schema JSON. `Err` names what is malformed (a bug in the
    /// envelope renderer, never user input).
    pub(crate) fn from_json(json: &Json) -> Result<ConnectSchema, String> {
        let obj = json
            .as_object()
            .ok_or_else(|| format!("a Connect schema must be an object: {json}"))?;
        let ty = match obj.get("type").and_then(Json::as_str) {
            Some("int8") => ConnectType::Int8,
            Some("int16") => ConnectType::Int16,
            Some("int32") => ConnectType::Int32,
            Some("int64") => ConnectType::Int64,
            Some("float") => ConnectType::Float32,
            Some("double") => ConnectType::Float64,
            Some("boolean") => ConnectType::Boolean,
            Some("string") => ConnectType::String,
            Some("bytes") => ConnectType::Bytes,
            Some("array") => ConnectType::Array,
            Some("map") => ConnectType::Map,
            Some("struct") => ConnectType::Struct,
            other => return Err(format!("unknown Connect schema type {other:?}")),
        };
        let string = |k: &str| obj.get(k).and_then(Json::as_str).map(str::to_owned);
        let sub = |k: &str| -> Result<Option<Box<ConnectSchema>>, String> {
            obj.get(k)
                .map(|j| ConnectSchema::from_json(j).map(Box::new))
                .transpose()
        };
        let mut fields = Vec::new();
        if let Some(list) = obj.get("fields") {
            for f in list.as_array().ok_or("`fields` must be an array")? {
                let name = f
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or("a struct field has no `field` name")?;
                fields.push((name.to_owned(), ConnectSchema::from_json(f)?));
            }
        }
        let parameters = match obj.get("parameters") {
            None => Vec::new(),
            Some(p) => p
                .as_object()
                .ok_or("`parameters` must be an object")?
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), v.to_owned()))
                        .ok_or_else(|| format!("parameter {k} is not a string"))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(ConnectSchema {
            ty,
            optional: obj.get("optional").and_then(Json::as_bool).unwrap_or(false),
            name: string("name"),
            version: obj.get("version").and_then(Json::as_i64),
            doc: string("doc"),
            parameters,
            default: obj.get("default").filter(|d| !d.is_null()).cloned(),
            fields,
            value_schema: match ty {
                ConnectType::Array => sub("items")?,
                _ => sub("values")?,
            },
            key_schema: sub("keys")?,
        })
    }

    /// A parameter's value.
    pub(crate) fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is the logical type `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }

    /// AvroData's `nonOptional(schema)`: the same schema, required.
    pub(crate) fn non_optional(&self) -> ConnectSchema {
        ConnectSchema {
            optional: false,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_converter_schemas() {
        let json: Json = serde_json::from_str(
            r#"{"type":"struct","fields":[{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"default":"AQ==","field":"d"},{"type":"array","items":{"type":"int32","optional":true},"optional":true,"field":"a"},{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true},"optional":true,"field":"h"}],"optional":false,"name":"p.s.t.Value"}"#,
        )
        .unwrap();
        let s = ConnectSchema::from_json(&json).unwrap();
        assert_eq!(s.ty, ConnectType::Struct);
        assert_eq!(s.name.as_deref(), Some("p.s.t.Value"));
        let d = &s.fields[0].1;
        assert!(d.is(DECIMAL) && d.optional);
        assert_eq!(
            d.parameters,
            vec![
                ("scale".to_owned(), "2".to_owned()),
                ("connect.decimal.precision".to_owned(), "10".to_owned())
            ]
        );
        assert_eq!(d.default, Some(Json::String("AQ==".into())));
        assert_eq!(
            s.fields[1].1.value_schema.as_ref().unwrap().ty,
            ConnectType::Int32
        );
        let h = &s.fields[2].1;
        assert_eq!(h.key_schema.as_ref().unwrap().ty, ConnectType::String);
        assert!(h.value_schema.as_ref().unwrap().optional);
        assert!(ConnectSchema::from_json(&serde_json::json!({"type":"nope"})).is_err());
    }
}
