//! Confluent Avro records → Kafka Connect JSON payloads, for the oracle. Independent of
//! pgseam's converters: the schema comes from the registry over HTTP, the datum is decoded by
//! apache-avro, and the mapping below is the plain reading of each Avro value.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context};
use apache_avro::types::Value as Avro;
use base64::Engine as _;
use serde_json::Value;

/// Decodes framed records, caching schemas by id.
#[derive(Default)]
pub(crate) struct Decoder {
    schemas: HashMap<u32, apache_avro::Schema>,
}

impl Decoder {
    pub(crate) fn decode(&mut self, registry_url: &str, bytes: &[u8]) -> anyhow::Result<Value> {
        let [0, a, b, c, d, rest @ ..] = bytes else {
            bail!("no Confluent magic byte and schema id");
        };
        let id = u32::from_be_bytes([*a, *b, *c, *d]);
        let schema = match self.schemas.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let text = fetch_schema(registry_url, id)?;
                e.insert(apache_avro::Schema::parse_str(&text).context("registered schema")?)
            }
        };
        let mut datum = rest;
        let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()?
            .read_value(&mut datum)?;
        if !datum.is_empty() {
            bail!("{} bytes after the Avro datum", datum.len());
        }
        to_json(&value)
    }
}

/// `GET /schemas/ids/{id}` with a minimal HTTP/1.1 client (loopback test registries only;
/// `http://user:password@host:port` sends basic authentication).
fn fetch_schema(registry_url: &str, id: u32) -> anyhow::Result<String> {
    let authority = registry_url
        .strip_prefix("http://")
        .context("only http:// registries are read by the oracle")?
        .trim_end_matches('/');
    // `user:password@host:port`: HTTP basic authentication.
    let (auth, host) = match authority.rsplit_once('@') {
        Some((info, host)) => (
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(info)
            ),
            host,
        ),
        None => (String::new(), authority),
    };
    let mut conn = TcpStream::connect(host).with_context(|| format!("connect {host}"))?;
    write!(
        conn,
        "GET /schemas/ids/{id} HTTP/1.1\r\nHost: {host}\r\n{auth}Accept: application/vnd.schemaregistry.v1+json\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("registry answered {head}");
    }
    let json: Value = serde_json::from_str(body).context("registry answer JSON")?;
    Ok(json["schema"]
        .as_str()
        .context("no schema in the registry answer")?
        .to_owned())
}

fn to_json(v: &Avro) -> anyhow::Result<Value> {
    let b64 = |b: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(b));
    let float = |f: f64| {
        if f.is_nan() {
            Value::String("NaN".into())
        } else if f.is_infinite() {
            Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
        } else {
            Value::from(f)
        }
    };
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(*b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => Value::from(*i),
        Avro::Long(i) | Avro::TimestampMillis(i) => Value::from(*i),
        Avro::Float(f) => float(f.to_string().parse()?),
        Avro::Double(f) => float(*f),
        Avro::Bytes(b) => b64(b),
        Avro::Decimal(d) => b64(&<Vec<u8>>::try_from(d)?),
        Avro::String(s) => Value::String(s.clone()),
        Avro::Union(_, inner) => to_json(inner)?,
        Avro::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Avro::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        Avro::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => bail!("unexpected Avro value {other:?}"),
    })
}
