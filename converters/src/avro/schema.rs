//! Connect schema → Avro schema, as Confluent's `AvroData.fromConnectSchema` maps it (with
//! `AvroDataConfig` defaults: `connect.meta.data=true`, `enhanced.avro.schema.support=false`,
//! `scrub.invalid.names=false`, `discard.type.doc.default=false`), written as Avro Java's
//! `Schema.toString()` writes it, because that string is what `AbstractKafkaAvroSerializer`
//! registers.
//!
//! The mapping, from `AvroData.java` (confluentinc/schema-registry, `avro-data`):
//! - `int8`/`int16` → `int` with `connect.type`; `int32` → `int`; `int64` → `long`;
//!   `float32` → `float`; `float64` → `double`; `boolean`, `string`, `bytes` as themselves.
//! - A Connect struct → a record named by the schema name, split at the last dot into
//!   namespace and name (`dbz.public.t.Value` → namespace `dbz.public.t`, name `Value`).
//! - `array` → Avro array; `map` with non-optional string keys → Avro map.
//! - Metadata as properties, in this order: `connect.doc`, `connect.version`,
//!   `connect.parameters`, `connect.default`, `connect.name`, `connect.type`. Decimal bytes
//!   first carry `scale` and `precision` (`connect.decimal.precision`, else 64), then
//!   `logicalType: decimal`. Only Kafka Connect's own `Date`/`Time`/`Timestamp` get the Avro
//!   logical types `date`/`time-millis`/`timestamp-millis`; Debezium's `io.debezium.time.*`
//!   stay plain `int`/`long` carrying `connect.name`.
//! - An optional schema becomes a union: `["null", T]`, or `[T, "null"]` when it has a
//!   default (an Avro union's default must match its first branch). Optional structs are
//!   always `["null", record]`.
//! - A field's `default` is the Connect default, or `null` for an optional field without
//!   one. Bytes defaults are the ISO-8859-1 string of the bytes, as Avro JSON requires.
//! - A named type written a second time is a reference to its name, qualified unless it is
//!   in the enclosing namespace (Avro's `writeNameRef`).
//!
//! Property order matters only for byte equality with what Confluent registers; the Schema
//! Registry compares schemas by their parsed canonical form, so the id is the same either way.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value as Json;

use super::connect::{ConnectSchema, ConnectType, DATE, DECIMAL, TIME, TIMESTAMP};
use crate::jackson;

/// `AvroData.CONNECT_AVRO_DECIMAL_PRECISION_DEFAULT`: the precision of a Connect `Decimal`
/// without `connect.decimal.precision`.
const DEFAULT_DECIMAL_PRECISION: u32 = 64;

/// An Avro schema as AvroData builds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AvroSchema {
    /// A primitive type (`int`, `long`, `bytes`, …) with its properties.
    Primitive {
        ty: &'static str,
        props: Vec<(String, String)>,
    },
    Record {
        namespace: Option<String>,
        name: String,
        fields: Vec<AvroField>,
        props: Vec<(String, String)>,
    },
    Array {
        items: Box<AvroSchema>,
        props: Vec<(String, String)>,
    },
    Map {
        values: Box<AvroSchema>,
        props: Vec<(String, String)>,
    },
    Union(Vec<AvroSchema>),
}

/// A record field; `default` is JSON text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AvroField {
    pub(crate) name: String,
    pub(crate) schema: AvroSchema,
    pub(crate) default: Option<String>,
}

const NULL: AvroSchema = AvroSchema::Primitive {
    ty: "null",
    props: Vec::new(),
};

/// `AvroData.fromConnectSchema`.
pub(crate) fn from_connect(schema: &ConnectSchema) -> Result<AvroSchema, String> {
    if schema.ty == ConnectType::Struct && schema.optional {
        return Ok(AvroSchema::Union(vec![
            NULL,
            from_connect(&schema.non_optional())?,
        ]));
    }
    let mut props: Vec<(String, String)> = Vec::new();
    let mut connect_type = None;
    let base_ty: &'static str = match schema.ty {
        ConnectType::Int8 => {
            connect_type = Some("int8");
            "int"
        }
        ConnectType::Int16 => {
            connect_type = Some("int16");
            "int"
        }
        ConnectType::Int32 => "int",
        ConnectType::Int64 => "long",
        ConnectType::Float32 => "float",
        ConnectType::Float64 => "double",
        ConnectType::Boolean => "boolean",
        ConnectType::String => "string",
        ConnectType::Bytes => "bytes",
        ConnectType::Array | ConnectType::Map | ConnectType::Struct => "",
    };
    let decimal = schema.is(DECIMAL);
    let mut decimal_ps = None;
    if decimal {
        let scale: u32 = schema
            .parameter("scale")
            .ok_or("a Decimal schema has no scale parameter")?
            .parse()
            .map_err(|_| "a Decimal scale is not a number")?;
        let precision: u32 = match schema.parameter("connect.decimal.precision") {
            Some(p) => p
                .parse()
                .map_err(|_| "connect.decimal.precision is not a number")?,
            None => DEFAULT_DECIMAL_PRECISION,
        };
        props.push(("scale".into(), scale.to_string()));
        props.push(("precision".into(), precision.to_string()));
        decimal_ps = Some((precision, scale));
    }
    // Metadata (AvroData adds it to every non-union base schema).
    if let Some(doc) = &schema.doc {
        props.push(("connect.doc".into(), json_str(doc)));
    }
    if let Some(v) = schema.version {
        props.push(("connect.version".into(), v.to_string()));
    }
    if !schema.parameters.is_empty() {
        let mut s = String::from("{");
        for (i, (k, v)) in schema.parameters.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            jackson::write_str(&mut s, k);
            s.push(':');
            jackson::write_str(&mut s, v);
        }
        s.push('}');
        props.push(("connect.parameters".into(), s));
    }
    let default = match &schema.default {
        Some(d) => Some(default_json(schema, d)?),
        None => None,
    };
    if let Some(d) = &default {
        props.push(("connect.default".into(), d.clone()));
    }
    if let Some(name) = &schema.name {
        props.push(("connect.name".into(), json_str(name)));
    }
    if let Some(t) = connect_type {
        props.push(("connect.type".into(), json_str(t)));
    }
    // Logical types: Connect's own only.
    if decimal_ps.is_some() {
        // With `scale > precision` AvroData falls back to its legacy property, which writes
        // the same `logicalType` entry in the same place.
        props.push(("logicalType".into(), json_str("decimal")));
    } else if schema.is(TIME) {
        props.push(("logicalType".into(), json_str("time-millis")));
    } else if schema.is(TIMESTAMP) {
        props.push(("logicalType".into(), json_str("timestamp-millis")));
    } else if schema.is(DATE) {
        props.push(("logicalType".into(), json_str("date")));
    }

    let base = match schema.ty {
        ConnectType::Array => {
            let items = schema
                .value_schema
                .as_ref()
                .ok_or("an array schema has no items")?;
            AvroSchema::Array {
                items: Box::new(from_connect(items)?),
                props,
            }
        }
        ConnectType::Map => {
            let keys = schema.key_schema.as_ref().ok_or("a map has no keys")?;
            let values = schema.value_schema.as_ref().ok_or("a map has no values")?;
            if keys.ty != ConnectType::String || keys.optional {
                return Err(
                    "maps with non-string keys (Avro arrays of MapEntry records) are not supported"
                        .into(),
                );
            }
            AvroSchema::Map {
                values: Box::new(from_connect(values)?),
                props,
            }
        }
        ConnectType::Struct => {
            let full = schema.name.as_deref().ok_or(
                "unnamed structs (io.confluent.connect.avro.ConnectDefault) are not supported",
            )?;
            let (namespace, name) = match full.rfind('.') {
                Some(i) => (Some(full[..i].to_owned()), full[i + 1..].to_owned()),
                None => (None, full.to_owned()),
            };
            let mut fields = Vec::with_capacity(schema.fields.len());
            for (fname, fschema) in &schema.fields {
                fields.push(record_field(fname, fschema)?);
            }
            AvroSchema::Record {
                namespace,
                name,
                fields,
                props,
            }
        }
        _ => AvroSchema::Primitive { ty: base_ty, props },
    };
    Ok(if !schema.optional {
        base
    } else if default.is_some() {
        AvroSchema::Union(vec![base, NULL])
    } else {
        AvroSchema::Union(vec![NULL, base])
    })
}

/// `AvroData.addAvroRecordField`.
fn record_field(name: &str, schema: &ConnectSchema) -> Result<AvroField, String> {
    let default = match &schema.default {
        Some(d) => Some(default_json(schema, d)?),
        None if schema.optional => Some("null".to_owned()),
        None => None,
    };
    Ok(AvroField {
        name: name.to_owned(),
        schema: from_connect(schema)?,
        default,
    })
}

/// `AvroData.defaultValueFromConnect`, from the default as JsonConverter writes it, rendered
/// as Jackson writes the resulting node.
fn default_json(schema: &ConnectSchema, d: &Json) -> Result<String, String> {
    let bad = || format!("default {d} does not fit {:?}", schema.ty);
    Ok(match schema.ty {
        ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32 | ConnectType::Int64 => {
            d.as_i64().ok_or_else(bad)?.to_string()
        }
        ConnectType::Float32 | ConnectType::Float64 | ConnectType::Boolean => match d {
            Json::Number(_) | Json::Bool(_) => d.to_string(),
            // JsonConverter writes non-finite floats as strings; Jackson writes them bare.
            Json::String(s) => s.clone(),
            _ => return Err(bad()),
        },
        ConnectType::String => json_str(d.as_str().ok_or_else(bad)?),
        ConnectType::Bytes => {
            let bytes = B64.decode(d.as_str().ok_or_else(bad)?).map_err(|_| bad())?;
            let latin1: String = bytes.iter().map(|b| char::from(*b)).collect();
            json_str(&latin1)
        }
        ConnectType::Array => {
            let items = d.as_array().ok_or_else(bad)?;
            let element = schema.value_schema.as_ref().ok_or_else(bad)?;
            let mut s = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                if item.is_null() {
                    s.push_str("null");
                } else {
                    s.push_str(&default_json(element, item)?);
                }
            }
            s.push(']');
            s
        }
        ConnectType::Map => {
            let entries = d.as_object().ok_or_else(bad)?;
            let values = schema.value_schema.as_ref().ok_or_else(bad)?;
            let mut s = String::from("{");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                jackson::write_str(&mut s, k);
                s.push(':');
                if v.is_null() {
                    s.push_str("null");
                } else {
                    s.push_str(&default_json(values, v)?);
                }
            }
            s.push('}');
            s
        }
        ConnectType::Struct => return Err("struct defaults are not supported".into()),
    })
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    jackson::write_str(&mut out, s);
    out
}

/// Writes the schema as Avro Java's `Schema.toString()` does.
pub(crate) fn to_json(schema: &AvroSchema) -> Result<String, String> {
    let mut out = String::new();
    let mut names: HashMap<String, AvroSchema> = HashMap::new();
    write(&mut out, schema, None, &mut names)?;
    Ok(out)
}

fn write_props(out: &mut String, props: &[(String, String)]) {
    for (k, v) in props {
        out.push(',');
        jackson::write_str(out, k);
        out.push(':');
        out.push_str(v);
    }
}

fn write(
    out: &mut String,
    schema: &AvroSchema,
    space: Option<&str>,
    names: &mut HashMap<String, AvroSchema>,
) -> Result<(), String> {
    match schema {
        AvroSchema::Primitive { ty, props } => {
            if props.is_empty() {
                let _ = write!(out, "\"{ty}\"");
            } else {
                let _ = write!(out, "{{\"type\":\"{ty}\"");
                write_props(out, props);
                out.push('}');
            }
        }
        AvroSchema::Array { items, props } => {
            out.push_str("{\"type\":\"array\",\"items\":");
            write(out, items, space, names)?;
            write_props(out, props);
            out.push('}');
        }
        AvroSchema::Map { values, props } => {
            out.push_str("{\"type\":\"map\",\"values\":");
            write(out, values, space, names)?;
            write_props(out, props);
            out.push('}');
        }
        AvroSchema::Union(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, b, space, names)?;
            }
            out.push(']');
        }
        AvroSchema::Record {
            namespace,
            name,
            fields,
            props,
        } => {
            let full = match namespace {
                Some(ns) => format!("{ns}.{name}"),
                None => name.clone(),
            };
            if let Some(seen) = names.get(&full) {
                if seen != schema {
                    return Err(format!(
                        "two different schemas are named {full} (Avro: Can't redefine)"
                    ));
                }
                let qualified = if namespace.is_none() || namespace.as_deref() == space {
                    name.as_str()
                } else {
                    full.as_str()
                };
                jackson::write_str(out, qualified);
                return Ok(());
            }
            names.insert(full.clone(), schema.clone());
            out.push_str("{\"type\":\"record\",\"name\":");
            jackson::write_str(out, name);
            match namespace {
                Some(ns) if Some(ns.as_str()) != space => {
                    out.push_str(",\"namespace\":");
                    jackson::write_str(out, ns);
                }
                None if space.is_some() => out.push_str(",\"namespace\":\"\""),
                _ => {}
            }
            out.push_str(",\"fields\":[");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                jackson::write_str(out, &f.name);
                out.push_str(",\"type\":");
                write(out, &f.schema, namespace.as_deref(), names)?;
                if let Some(d) = &f.default {
                    out.push_str(",\"default\":");
                    out.push_str(d);
                }
                out.push('}');
            }
            out.push(']');
            write_props(out, props);
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(connect: &str) -> String {
        let c = ConnectSchema::from_json(&serde_json::from_str(connect).unwrap()).unwrap();
        to_json(&from_connect(&c).unwrap()).unwrap()
    }

    #[test]
    fn primitives_logical_types_and_optionals() {
        assert_eq!(avro(r#"{"type":"int32","optional":false}"#), r#""int""#);
        assert_eq!(
            avro(r#"{"type":"int16","optional":true}"#),
            r#"["null",{"type":"int","connect.type":"int16"}]"#
        );
        assert_eq!(
            avro(r#"{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1}"#),
            r#"["null",{"type":"int","connect.version":1,"connect.name":"io.debezium.time.Date"}]"#
        );
        assert_eq!(
            avro(
                r#"{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1}"#
            ),
            r#"{"type":"int","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Date","logicalType":"date"}"#
        );
        assert_eq!(
            avro(
                r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}}"#
            ),
            r#"["null",{"type":"bytes","scale":2,"precision":64,"connect.version":1,"connect.parameters":{"scale":"2"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}]"#
        );
        // A default puts the type first, and is written as Avro JSON (bytes as ISO-8859-1).
        assert_eq!(
            avro(r#"{"type":"string","optional":true,"default":"x"}"#),
            r#"[{"type":"string","connect.default":"x"},"null"]"#
        );
        assert_eq!(
            avro(r#"{"type":"bytes","optional":false,"default":"/wA="}"#),
            r#"{"type":"bytes","connect.default":"ÿ\u0000"}"#
        );
    }

    #[test]
    fn records_reuse_names_relative_to_the_namespace() {
        let s = avro(
            r#"{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"p.s.t.Value","field":"before"},{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"p.s.t.Value","field":"after"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"v"}],"optional":false,"name":"other.Src","version":1,"field":"source"}],"optional":false,"name":"p.s.t.Envelope","version":2}"#,
        );
        assert_eq!(
            s,
            r#"{"type":"record","name":"Envelope","namespace":"p.s.t","fields":[{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"id","type":"int"}],"connect.name":"p.s.t.Value"}],"default":null},{"name":"after","type":["null","Value"],"default":null},{"name":"source","type":{"type":"record","name":"Src","namespace":"other","fields":[{"name":"v","type":"string"}],"connect.version":1,"connect.name":"other.Src"}}],"connect.version":2,"connect.name":"p.s.t.Envelope"}"#
        );
        apache_avro::Schema::parse_str(&s).unwrap();
    }
}
