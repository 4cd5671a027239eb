//! Connect value → Avro datum, as `AvroData.fromConnectData` converts it.
//!
//! The value comes in as the payload `JsonConverter` writes for it (the envelope renders it,
//! golden-verified), walked together with its Connect schema; what comes out is an
//! `apache_avro` value for the matching Avro schema from [`super::schema`]. The JSON forms are
//! those of Kafka Connect's `JsonConverter`: bytes and decimals as base64, non-finite floats
//! as the strings `NaN`/`Infinity`/`-Infinity`, maps as objects.
//!
//! Union branches follow the schema mapping: an optional value is branch 1 of
//! `["null", T]`, or branch 0 of `[T, "null"]` when the schema has a default.

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value as Json;

use super::connect::{ConnectSchema, ConnectType, DATE, DECIMAL, TIME, TIMESTAMP};

/// Converts `json` (a value of `schema`) to its Avro datum.
pub(crate) fn to_avro(schema: &ConnectSchema, json: &Json) -> Result<Avro, String> {
    if !schema.optional {
        return required(schema, json);
    }
    let value_first = schema.default.is_some() && schema.ty != ConnectType::Struct;
    let (value_branch, null_branch) = if value_first { (0, 1) } else { (1, 0) };
    Ok(if json.is_null() {
        Avro::Union(null_branch, Box::new(Avro::Null))
    } else {
        Avro::Union(value_branch, Box::new(required(schema, json)?))
    })
}

fn required(schema: &ConnectSchema, json: &Json) -> Result<Avro, String> {
    let bad = || {
        let mut shown = json.to_string();
        shown.truncate(80);
        format!(
            "{shown} does not fit Connect {:?}{}",
            schema.ty,
            schema
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )
    };
    if json.is_null() {
        return Err(format!(
            "null in a required {:?} field{}",
            schema.ty,
            schema
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    Ok(match schema.ty {
        ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32 => {
            let v = json
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(bad)?;
            if schema.is(DATE) {
                Avro::Date(v)
            } else if schema.is(TIME) {
                Avro::TimeMillis(v)
            } else {
                Avro::Int(v)
            }
        }
        ConnectType::Int64 => {
            let v = json.as_i64().ok_or_else(bad)?;
            if schema.is(TIMESTAMP) {
                Avro::TimestampMillis(v)
            } else {
                Avro::Long(v)
            }
        }
        ConnectType::Float32 => Avro::Float(float(json).ok_or_else(bad)? as f32),
        ConnectType::Float64 => Avro::Double(float(json).ok_or_else(bad)?),
        ConnectType::Boolean => Avro::Boolean(json.as_bool().ok_or_else(bad)?),
        ConnectType::String => Avro::String(json.as_str().ok_or_else(bad)?.to_owned()),
        ConnectType::Bytes => {
            let bytes = B64
                .decode(json.as_str().ok_or_else(bad)?)
                .map_err(|_| bad())?;
            if schema.is(DECIMAL) {
                Avro::Decimal(apache_avro::Decimal::from(bytes))
            } else {
                Avro::Bytes(bytes)
            }
        }
        ConnectType::Array => {
            let element = schema.value_schema.as_ref().ok_or_else(bad)?;
            let items = json.as_array().ok_or_else(bad)?;
            Avro::Array(
                items
                    .iter()
                    .map(|i| to_avro(element, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        ConnectType::Map => {
            let values = schema.value_schema.as_ref().ok_or_else(bad)?;
            let entries = json.as_object().ok_or_else(bad)?;
            let mut map = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                map.insert(k.clone(), to_avro(values, v)?);
            }
            Avro::Map(map)
        }
        ConnectType::Struct => {
            let obj = json.as_object().ok_or_else(bad)?;
            let mut fields = Vec::with_capacity(schema.fields.len());
            for (name, fschema) in &schema.fields {
                let v = obj.get(name).unwrap_or(&Json::Null);
                let datum = to_avro(fschema, v).map_err(|e| format!("field {name}: {e}"))?;
                fields.push((name.clone(), datum));
            }
            Avro::Record(fields)
        }
    })
}

/// A Connect float from its JsonConverter form.
fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}
