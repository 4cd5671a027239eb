//! Column shaping, as Debezium's relational connectors do it: which columns an event carries
//! (`column.include.list` / `column.exclude.list`), how their values are rewritten
//! (`column.truncate.to.<n>.chars`, `column.mask.with.<n>.chars`,
//! `column.mask.hash[.v2].<algorithm>.with.salt.<salt>`), which carry their source type as
//! schema parameters (`column.propagate.source.type`, `datatype.propagate.source.type`) and
//! which columns form the Kafka key (`message.key.columns`).
//!
//! Everything here is decided once per table version ([`ColumnShaping::plan`]) when the
//! converter builds its cache entry, never per row.
//!
//! # Debezium's rules (3.6.3, `TableSchemaBuilder`, `ColumnMappers`, `Key.CustomKeyMapper`)
//!
//! - A column is named `<schema>.<table>.<column>` (PostgreSQL table ids have no catalog).
//!   Patterns are Java regexes matched against the whole name, case-insensitively.
//! - The column filter applies to the value struct (`before`/`after`) only. Key columns are
//!   always in the key, filtered or not. (Debezium's snapshot leaves excluded columns out of its
//!   `SELECT`, so an excluded key column reads as null there and the key gets the type's
//!   fallback, `0` or `""`; streaming has the real value. pgseam writes the real value in both:
//!   a deliberate fix, listed in `COMPATIBILITY.md`.)
//! - Mappers apply to value fields only (the key struct is built without them). The first
//!   matching rule wins, in the order truncate, mask, propagate source type by column, by data
//!   type, hash, hash v2 (Debezium reads them from its configuration in that order; pgseam
//!   orders several keys of one kind by key name).
//!   - propagate (`column.propagate.source.type`, `datatype.propagate.source.type`): the field
//!     schema gets `__debezium.source.column.type` / `.length` / `.scale` / `.name`
//!     ([`source_type_parameters`]); a by-datatype rule matches `<schema>.<table>.<type name>`.
//!     The snapshot's values (JDBC metadata) differ from the stream's (relation messages) for
//!     `serial` columns and unconstrained `numeric`, so a table can have two value schemas.
//!   - truncate `n`: when the column's length is unknown or greater than `n`, the field schema
//!     gets the parameter `truncateLength` = `n`, and string values are cut to `n` UTF-16 code
//!     units (`String.substring`, which may split a surrogate pair: the dangling high surrogate
//!     is written as Jackson writes it, `\uD83C`), byte values to `n` bytes; other values are
//!     unchanged.
//!   - mask `n`: the field schema gets `masked` = `true`; for character columns (`text`,
//!     `varchar`, `char`, `name`, enums: JDBC CHAR/VARCHAR) every value, **null included**,
//!     becomes `n` asterisks; other columns keep their values.
//!   - hash: the field schema gets `masked` = `true`; for character columns a non-null value
//!     becomes the lower-case hex digest of `salt ‖ data`, where data is Java's serialisation of
//!     the string (v1: `ObjectOutputStream.writeObject`, modified UTF-8) or its UTF-8 bytes
//!     (v2); the digest is cut to the column's declared length (`varchar(n)`, `char(n)`). A null
//!     stays null.
//! - `message.key.columns` = `<table regex>:<column>,<column>;…`: each `<table regex>.<column>`
//!   is one pattern; the key is, pattern by pattern, the table's columns (in table order) that
//!   match it; when none match, the primary key. A table without a primary key gets a key this
//!   way. The key-change detection of the stream (delete + tombstone + create) compares these
//!   columns.

use regex::Regex;
use std::fmt::Write as _;

use pgseam_model::{ColumnSchema, TableSchema};

/// Which columns the value struct carries.
#[derive(Clone, Debug)]
pub enum ColumnFilter {
    /// `column.include.list`: only columns matching one of the patterns.
    Include(Vec<Regex>),
    /// `column.exclude.list`: every column but those matching one of the patterns.
    Exclude(Vec<Regex>),
}

/// A Java `MessageDigest` algorithm pgseam can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Md5,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
}

impl HashAlgorithm {
    /// The algorithm for a Java standard name (`MD5`, `SHA-256`, ...; Java's provider lookup
    /// ignores case), or `None`.
    pub fn from_java_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MD5" => HashAlgorithm::Md5,
            "SHA-224" => HashAlgorithm::Sha224,
            "SHA-256" => HashAlgorithm::Sha256,
            "SHA-384" => HashAlgorithm::Sha384,
            "SHA-512" => HashAlgorithm::Sha512,
            "SHA-512/224" => HashAlgorithm::Sha512_224,
            "SHA-512/256" => HashAlgorithm::Sha512_256,
            _ => return None,
        })
    }

    /// The names [`from_java_name`](Self::from_java_name) accepts, for error messages.
    pub const NAMES: &'static str =
        "MD5, SHA-224, SHA-256, SHA-384, SHA-512, SHA-512/224, SHA-512/256";

    fn digest(self, salt: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<D: sha2::Digest>(salt: &[u8], data: &[u8]) -> Vec<u8> {
            let mut d = D::new();
            d.update(salt);
            d.update(data);
            d.finalize().to_vec()
        }
        match self {
            HashAlgorithm::Md5 => run::<md5::Md5>(salt, data),
            HashAlgorithm::Sha224 => run::<sha2::Sha224>(salt, data),
            HashAlgorithm::Sha256 => run::<sha2::Sha256>(salt, data),
            HashAlgorithm::Sha384 => run::<sha2::Sha384>(salt, data),
            HashAlgorithm::Sha512 => run::<sha2::Sha512>(salt, data),
            HashAlgorithm::Sha512_224 => run::<sha2::Sha512_224>(salt, data),
            HashAlgorithm::Sha512_256 => run::<sha2::Sha512_256>(salt, data),
        }
    }
}

/// How a mapped column's values are rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnMapper {
    /// `column.truncate.to.<n>.chars`.
    Truncate(u32),
    /// `column.mask.with.<n>.chars`.
    Mask(u32),
    /// `column.mask.hash.<algorithm>.with.salt.<salt>` (`v2: false`) and
    /// `column.mask.hash.v2.<algorithm>.with.salt.<salt>` (`v2: true`).
    Hash {
        algorithm: HashAlgorithm,
        salt: String,
        v2: bool,
    },
    /// `column.propagate.source.type` (`by_datatype: false`, patterns on
    /// `<schema>.<table>.<column>`) and `datatype.propagate.source.type` (`by_datatype: true`,
    /// patterns on `<schema>.<table>.<type name>`): the field schema gets the source column's
    /// type, length, scale and name as parameters ([`source_type_parameters`]); values are
    /// unchanged.
    PropagateSourceType { by_datatype: bool },
}

/// One mapper and the columns it applies to.
#[derive(Clone, Debug)]
pub struct MapperRule {
    pub patterns: Vec<Regex>,
    pub mapper: ColumnMapper,
}

/// The connector's column-shaping settings. The default shapes nothing.
#[derive(Clone, Debug, Default)]
pub struct ColumnShaping {
    /// `column.include.list` / `column.exclude.list`.
    pub filter: Option<ColumnFilter>,
    /// Mapper rules in Debezium's priority order (the first match wins).
    pub mappers: Vec<MapperRule>,
    /// `message.key.columns`: one pattern set per `<table regex>.<column>`, in order.
    pub key_columns: Vec<Vec<Regex>>,
}

impl PartialEq for ColumnShaping {
    fn eq(&self, other: &Self) -> bool {
        fn pats(p: &[Regex]) -> Vec<&str> {
            p.iter().map(Regex::as_str).collect()
        }
        fn filter(f: &Option<ColumnFilter>) -> Option<(bool, Vec<&str>)> {
            match f {
                None => None,
                Some(ColumnFilter::Include(p)) => Some((true, pats(p))),
                Some(ColumnFilter::Exclude(p)) => Some((false, pats(p))),
            }
        }
        filter(&self.filter) == filter(&other.filter)
            && self.mappers.len() == other.mappers.len()
            && self
                .mappers
                .iter()
                .zip(&other.mappers)
                .all(|(a, b)| a.mapper == b.mapper && pats(&a.patterns) == pats(&b.patterns))
            && self.key_columns.len() == other.key_columns.len()
            && self
                .key_columns
                .iter()
                .zip(&other.key_columns)
                .all(|(a, b)| pats(a) == pats(b))
    }
}

impl Eq for ColumnShaping {}

/// The shaping of one table version: per column whether the value struct carries it and its
/// mapper; and the key columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePlan {
    pub included: Vec<bool>,
    pub mappers: Vec<Option<ColumnMapper>>,
    /// Indices of the key columns, in key order (empty: no key).
    pub key_columns: Vec<usize>,
}

impl ColumnShaping {
    /// True when nothing is shaped.
    pub fn is_empty(&self) -> bool {
        self.filter.is_none() && self.mappers.is_empty() && self.key_columns.is_empty()
    }

    /// The plan of one table version.
    pub fn plan(&self, table: &TableSchema) -> TablePlan {
        let ids: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{}.{}.{}", table.schema, table.table, c.name))
            .collect();
        let any = |patterns: &[Regex], id: &str| patterns.iter().any(|p| p.is_match(id));
        let included = ids
            .iter()
            .map(|id| match &self.filter {
                None => true,
                Some(ColumnFilter::Include(p)) => any(p, id),
                Some(ColumnFilter::Exclude(p)) => !any(p, id),
            })
            .collect();
        let mappers = (0..table.columns.len())
            .map(|i| self.mapper_for(table, i, &ids[i], false).cloned())
            .collect();
        TablePlan {
            included,
            mappers,
            key_columns: self.key_columns_of(table, &ids),
        }
    }

    /// The first mapper rule matching column `i` of `table` (`id`: its
    /// `<schema>.<table>.<column>`). A by-datatype rule matches `<schema>.<table>.<type name>`,
    /// the type name as Debezium's schema of the phase has it ([`source_type_name`]): in
    /// the snapshot an `int4` column with a `nextval(` default is a `serial`.
    pub fn mapper_for(
        &self,
        table: &TableSchema,
        i: usize,
        id: &str,
        snapshot: bool,
    ) -> Option<&ColumnMapper> {
        let column = &table.columns[i];
        self.mappers
            .iter()
            .find(|r| match r.mapper {
                ColumnMapper::PropagateSourceType { by_datatype: true } => {
                    let typed = format!(
                        "{}.{}.{}",
                        table.schema,
                        table.table,
                        source_type_name(column, snapshot)
                    );
                    r.patterns.iter().any(|p| p.is_match(&typed))
                }
                _ => r.patterns.iter().any(|p| p.is_match(id)),
            })
            .map(|r| &r.mapper)
    }

    /// The key columns of `table` (Debezium's `Key.CustomKeyMapper`), given its column ids.
    fn key_columns_of(&self, table: &TableSchema, ids: &[String]) -> Vec<usize> {
        let mut keys: Vec<usize> = Vec::new();
        for patterns in &self.key_columns {
            for (i, id) in ids.iter().enumerate() {
                // A column matched twice would be a duplicate field (Debezium fails on it).
                if patterns.iter().any(|p| p.is_match(id)) && !keys.contains(&i) {
                    keys.push(i);
                }
            }
        }
        if keys.is_empty() {
            table.key_columns.clone()
        } else {
            keys
        }
    }

    /// The key columns of `table`: its primary key, or the `message.key.columns` match.
    pub fn key_columns(&self, table: &TableSchema) -> Vec<usize> {
        if self.key_columns.is_empty() {
            return table.key_columns.clone();
        }
        let ids: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{}.{}.{}", table.schema, table.table, c.name))
            .collect();
        self.key_columns_of(table, &ids)
    }
}

/// Parses `message.key.columns` into the pattern texts Debezium builds:
/// `<table regex>.<column>` per listed column, one group per `;`-separated item. `Err` names
/// the malformed item.
pub fn parse_message_key_columns(spec: &str) -> Result<Vec<String>, String> {
    let item_rx = Regex::new(r"^\s*([^:]+):([^:,]+(,[^:,]+)*)\s*$").expect("valid pattern");
    let mut out = Vec::new();
    // Java's `Pattern.split` drops trailing empty strings.
    let mut items: Vec<&str> = spec.split(';').collect();
    while items.last().is_some_and(|s| s.is_empty()) {
        items.pop();
    }
    for item in items {
        if !item_rx.is_match(item) {
            return Err(format!(
                "`{item}` is not `<fully-qualified table regex>:<column>[,<column>...]`"
            ));
        }
        let (table, columns) = item.split_once(':').unwrap_or((item, ""));
        let mut columns: Vec<&str> = columns.split(',').collect();
        while columns.last().is_some_and(|s| s.is_empty()) {
            columns.pop();
        }
        for c in columns {
            out.push(format!("{table}.{}", c.trim()));
        }
    }
    Ok(out)
}

/// True for the columns Debezium's JDBC type makes CHAR/VARCHAR: the ones masks and hashes
/// rewrite.
pub(crate) fn is_character_column(column: &ColumnSchema) -> bool {
    matches!(
        column.type_name.as_str(),
        "text" | "varchar" | "bpchar" | "name" | "char"
    ) || (column.enum_values.is_some() && !column.type_name.starts_with('_'))
}

/// The column length Debezium's `Column.length()` reports, as far as it decides anything here:
/// `Some(n)` for a declared or fixed length, `None` when unbounded or unknown (truncation then
/// always applies).
pub(crate) fn column_length(column: &ColumnSchema) -> Option<u32> {
    match column.type_name.as_str() {
        "varchar" | "bpchar" => column.length_or_precision(),
        "int2" => Some(5),
        "int4" => Some(10),
        "int8" => Some(19),
        "float4" => Some(8),
        "float8" => Some(17),
        "bool" => Some(1),
        "date" => Some(13),
        "numeric" => column.numeric_precision_scale().map(|(p, _)| p),
        _ => None,
    }
}

/// The type name Debezium's `Column.typeName()` has for `column`: PostgreSQL's `typname`
/// (`int4`, `varchar`, `_int4`, an enum's name); in the snapshot (pgjdbc's
/// `DatabaseMetaData.getColumns`), `serial` / `bigserial` / `smallserial` for an `int4` /
/// `int8` / `int2` column whose default contains `nextval(`. (For a domain column Debezium has
/// the domain's name; pgseam's schema only carries the base type, whose name is used.)
pub fn source_type_name(column: &ColumnSchema, snapshot: bool) -> &str {
    let ty = column.type_name.as_str();
    if snapshot
        && column
            .default_expr
            .as_deref()
            .is_some_and(|d| d.contains("nextval("))
    {
        match ty {
            "int4" => return "serial",
            "int8" => return "bigserial",
            "int2" => return "smallserial",
            _ => {}
        }
    }
    ty
}

/// pgjdbc's `TypeInfoCache.getDisplaySize` for the types whose `getPrecision` defers to it.
fn pg_display_size(ty: &str, typmod: i32) -> i32 {
    match ty {
        "time" | "timetz" | "timestamp" | "timestamptz" => {
            let second = match typmod {
                -1 => 7,
                0 => 0,
                1 => 3,
                n => n + 1,
            };
            match ty {
                "time" => 8 + second,
                "timetz" => 8 + second + 6,
                "timestamp" => 13 + 1 + 8 + second,
                _ => 13 + 1 + 8 + second + 6,
            }
        }
        "date" => 13,
        "interval" => 49,
        "numeric" if typmod == -1 => 131_089,
        "numeric" => {
            let p = ((typmod - 4) >> 16) & 0xFFFF;
            let s = (typmod - 4) & 0xFFFF;
            1 + p + i32::from(s != 0)
        }
        _ => i32::MAX,
    }
}

/// pgjdbc's `TypeInfoCache.getPrecision` (an array: its element type's).
fn pg_precision(ty: &str, typmod: i32) -> i32 {
    match ty {
        "int2" => 5,
        "oid" | "int4" => 10,
        "int8" => 19,
        "float4" => 8,
        "float8" => 17,
        "numeric" if typmod == -1 => 0,
        "numeric" => ((typmod - 4) & 0xFFFF_0000u32 as i32) >> 16,
        "char" | "bool" => 1,
        "bpchar" | "varchar" if typmod == -1 => i32::MAX,
        "bpchar" | "varchar" => typmod - 4,
        "date" | "time" | "timetz" | "interval" | "timestamp" | "timestamptz" => {
            pg_display_size(ty, typmod)
        }
        "bit" => typmod,
        "varbit" if typmod == -1 => i32::MAX,
        "varbit" => typmod,
        _ => i32::MAX,
    }
}

/// pgjdbc's `TypeInfoCache.getScale` (an array: its element type's).
fn pg_scale(ty: &str, typmod: i32) -> i32 {
    match ty {
        "float4" => 8,
        "float8" => 17,
        "numeric" if typmod == -1 => 0,
        "numeric" => (typmod - 4) & 0xFFFF,
        "time" | "timetz" | "timestamp" | "timestamptz" if typmod == -1 => 6,
        "time" | "timetz" | "timestamp" | "timestamptz" => typmod,
        "interval" if typmod == -1 => 6,
        "interval" => typmod & 0xFFFF,
        _ => 0,
    }
}

/// The schema parameters of Debezium's `PropagateSourceMetadataToSchemaParameter` for
/// `column`, in its order, as JSON object members (`"k":"v",...`):
/// `__debezium.source.column.type` (the type name upper-cased, [`source_type_name`]),
/// `__debezium.source.column.length`, `__debezium.source.column.scale` and
/// `__debezium.source.column.name`. (`__debezium.source.column.comment` needs
/// `include.schema.comments`, which pgseam does not support.)
///
/// Length and scale are pgjdbc's `TypeInfoCache.getPrecision` / `getScale` of the type
/// (an array's element type) and `atttypmod`, a precision of 0 replaced by
/// `getDisplaySize` (Debezium's `PostgresType.getDefaultLength`): `varchar(20)` is 20/0,
/// unbounded `varchar`/`text`/`bytea`/most types 2147483647/0, `numeric(10,2)` 10/2,
/// `timestamp` 29/6, `timestamptz(3)` 32/3. The exception is the snapshot of an unconstrained
/// `numeric` column (from `DatabaseMetaData.getColumns`): length 0 and no scale.
pub fn source_type_parameters(column: &ColumnSchema, snapshot: bool) -> String {
    let name = source_type_name(column, snapshot);
    let ty = column.type_name.as_str();
    let element = ty.strip_prefix('_').unwrap_or(ty);
    let typmod = column.type_modifier;
    let mut length = pg_precision(element, typmod);
    let mut scale = Some(pg_scale(element, typmod));
    if snapshot && ty == "numeric" && typmod == -1 {
        scale = None;
    } else if length == 0 {
        length = pg_display_size(element, typmod);
    }
    let mut out = String::new();
    out.push_str("\"__debezium.source.column.type\":");
    crate::jackson::write_str(&mut out, &name.to_uppercase());
    let _ = write!(out, ",\"__debezium.source.column.length\":\"{length}\"");
    if let Some(scale) = scale {
        let _ = write!(out, ",\"__debezium.source.column.scale\":\"{scale}\"");
    }
    out.push_str(",\"__debezium.source.column.name\":");
    crate::jackson::write_str(&mut out, &column.name);
    out
}

/// What a mapper does to one column, resolved once per table version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FieldMapping {
    /// Cut strings to this many UTF-16 units and bytes to this many bytes.
    Truncate(usize),
    /// Every value (null included) becomes this JSON string literal.
    Mask(String),
    /// Non-null values become the digest's hex, cut to `max` characters.
    Hash {
        algorithm: HashAlgorithm,
        salt: Vec<u8>,
        v2: bool,
        max: Option<usize>,
    },
}

impl FieldMapping {
    /// The mapping for `column` under `mapper` and the schema parameter it adds (`None` when
    /// the mapper changes nothing for this column).
    pub(crate) fn resolve(
        column: &ColumnSchema,
        mapper: &ColumnMapper,
    ) -> (Option<FieldMapping>, Option<(&'static str, String)>) {
        match mapper {
            ColumnMapper::Truncate(n) => {
                let possible = column_length(column).is_none_or(|len| len > *n);
                if possible {
                    (
                        Some(FieldMapping::Truncate(*n as usize)),
                        Some(("truncateLength", n.to_string())),
                    )
                } else {
                    (None, None)
                }
            }
            ColumnMapper::Mask(n) => {
                let param = Some(("masked", "true".to_owned()));
                if is_character_column(column) {
                    let mut lit = String::with_capacity(*n as usize + 2);
                    lit.push('"');
                    lit.extend(std::iter::repeat_n('*', *n as usize));
                    lit.push('"');
                    (Some(FieldMapping::Mask(lit)), param)
                } else {
                    (None, param)
                }
            }
            ColumnMapper::Hash {
                algorithm,
                salt,
                v2,
            } => {
                let param = Some(("masked", "true".to_owned()));
                if is_character_column(column) {
                    let max = match column.type_name.as_str() {
                        "varchar" | "bpchar" => column
                            .length_or_precision()
                            .filter(|n| *n > 0)
                            .map(|n| n as usize),
                        _ => None,
                    };
                    (
                        Some(FieldMapping::Hash {
                            algorithm: *algorithm,
                            salt: salt.as_bytes().to_vec(),
                            v2: *v2,
                            max,
                        }),
                        param,
                    )
                } else {
                    (None, param)
                }
            }
            // Schema parameters only, which depend on the phase (see `source_type_parameters`).
            ColumnMapper::PropagateSourceType { .. } => (None, None),
        }
    }

    /// The hex digest Debezium's `HashValueConverter` writes for the string `s`.
    pub(crate) fn hash_hex(algorithm: HashAlgorithm, salt: &[u8], v2: bool, s: &str) -> String {
        let data = if v2 {
            s.as_bytes().to_vec()
        } else {
            java_serialized_string(s)
        };
        let digest = algorithm.digest(salt, &data);
        let mut hex = String::with_capacity(digest.len() * 2);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

/// `ObjectOutputStream.writeObject(s)` for a `String`: the stream header, then `TC_STRING`
/// with a 2-byte length (or `TC_LONGSTRING` with an 8-byte length past 65535 bytes) and the
/// string in Java's modified UTF-8 (NUL as `C0 80`, characters beyond the BMP as two 3-byte
/// surrogates).
pub(crate) fn java_serialized_string(s: &str) -> Vec<u8> {
    let mut utf = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => utf.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                utf.push(0xC0 | (unit >> 6) as u8);
                utf.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                utf.push(0xE0 | (unit >> 12) as u8);
                utf.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                utf.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    let mut out = vec![0xAC, 0xED, 0x00, 0x05];
    if utf.len() <= 0xFFFF {
        out.push(0x74);
        out.extend_from_slice(&(utf.len() as u16).to_be_bytes());
    } else {
        out.push(0x7C);
        out.extend_from_slice(&(utf.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(&utf);
    out
}

/// Appends the JSON string literal of `s` cut to `max` UTF-16 code units (Java's
/// `substring(0, max)`), escaped as Jackson escapes it; a surrogate pair cut in half leaves its
/// high surrogate, which Jackson writes as an escape (`\uD83C`).
pub(crate) fn write_truncated_str(out: &mut String, s: &str, max: usize) {
    let mut units = 0;
    let mut end = s.len();
    let mut dangling: Option<u16> = None;
    for (at, c) in s.char_indices() {
        let w = c.len_utf16();
        if units + w > max {
            end = at;
            if units < max {
                // Only a 2-unit character can straddle the cut: keep its high surrogate.
                let mut buf = [0u16; 2];
                dangling = Some(c.encode_utf16(&mut buf)[0]);
            }
            break;
        }
        units += w;
    }
    crate::jackson::write_str(out, &s[..end]);
    if let Some(high) = dangling {
        out.pop();
        let _ = write!(out, "\\u{high:04X}\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_serialisation_of_strings() {
        assert_eq!(
            java_serialized_string("ab"),
            vec![0xAC, 0xED, 0, 5, 0x74, 0, 2, b'a', b'b']
        );
        // NUL and a non-BMP character in modified UTF-8.
        assert_eq!(
            java_serialized_string("\0😀"),
            vec![0xAC, 0xED, 0, 5, 0x74, 0, 8, 0xC0, 0x80, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]
        );
        let long = "x".repeat(70_000);
        let s = java_serialized_string(&long);
        assert_eq!(&s[4..13], &[0x7C, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn truncation_counts_utf16_units() {
        let t = |s: &str, n| {
            let mut o = String::new();
            write_truncated_str(&mut o, s, n);
            o
        };
        assert_eq!(t("Alice", 3), "\"Ali\"");
        assert_eq!(t("ab", 3), "\"ab\"");
        assert_eq!(t("🍕🍕é", 3), "\"\\uD83C\\uDF55\\uD83C\"");
        assert_eq!(t("🍕🍕é", 4), "\"\\uD83C\\uDF55\\uD83C\\uDF55\"");
        assert_eq!(t("ü@x", 3), "\"ü@x\"");
        assert_eq!(t("x", 0), "\"\"");
    }

    #[test]
    fn message_key_columns_items() {
        assert_eq!(
            parse_message_key_columns("public.orders:cust_id, region;public.nokey:a;").unwrap(),
            vec![
                "public.orders.cust_id",
                "public.orders.region",
                "public.nokey.a"
            ]
        );
        assert!(parse_message_key_columns("public.orders").is_err());
        assert!(parse_message_key_columns("a:b:c").is_err());
        assert!(parse_message_key_columns("a:b,,c").is_err());
    }

    #[test]
    fn enum_columns_are_character_columns_but_not_their_arrays() {
        let column = |type_name: &str| ColumnSchema {
            name: "c".into(),
            type_oid: 0,
            type_name: type_name.into(),
            base_type_oid: 0,
            type_modifier: -1,
            nullable: true,
            default_expr: None,
            enum_values: Some(vec!["sad".into(), "ok".into()]),
            dimensions: 0,
        };
        assert!(is_character_column(&column("mood")));
        // The catalog gives an enum array its element's labels; its JDBC type is ARRAY.
        assert!(!is_character_column(&column("_mood")));
    }

    #[test]
    fn debezium_hashes() {
        // Values from the Debezium 3.6.3 golden (reference/debezium/golden/columns).
        assert_eq!(
            FieldMapping::hash_hex(HashAlgorithm::Md5, b"salt2", true, "first"),
            "e73c174ae785ad07551fbf01af32fe86"
        );
        assert_eq!(
            FieldMapping::hash_hex(HashAlgorithm::Sha256, b"pepper", false, "Loves 🍕 pizza")[..16],
            *"9b78d0d0d73dd6a8"
        );
    }

    fn typed(name: &str, type_name: &str, typmod: i32, default: Option<&str>) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            type_oid: 0,
            type_name: type_name.into(),
            base_type_oid: 0,
            type_modifier: typmod,
            nullable: true,
            default_expr: default.map(str::to_owned),
            enum_values: None,
            dimensions: 0,
        }
    }

    /// `(type, length, scale)` of the propagated parameters.
    fn propagated(c: &ColumnSchema, snapshot: bool) -> (String, String, Option<String>) {
        let json: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", source_type_parameters(c, snapshot))).unwrap();
        assert_eq!(json["__debezium.source.column.name"], c.name.as_str());
        let s = |k: &str| json.get(k).map(|v| v.as_str().unwrap().to_owned());
        (
            s("__debezium.source.column.type").unwrap(),
            s("__debezium.source.column.length").unwrap(),
            s("__debezium.source.column.scale"),
        )
    }

    #[test]
    fn propagated_source_types_follow_debezium() {
        // Values from the Debezium 3.6.3 goldens (golden/columns/propagate_*.jsonl); typmods
        // as PostgreSQL stores them.
        let cases: &[(&str, i32, &str, &str, &str)] = &[
            ("int2", -1, "INT2", "5", "0"),
            ("int4", -1, "INT4", "10", "0"),
            ("int8", -1, "INT8", "19", "0"),
            ("oid", -1, "OID", "10", "0"),
            ("numeric", (10 << 16 | 2) + 4, "NUMERIC", "10", "2"),
            ("numeric", (5 << 16) + 4, "NUMERIC", "5", "0"),
            ("numeric", -1, "NUMERIC", "131089", "0"),
            ("float4", -1, "FLOAT4", "8", "8"),
            ("float8", -1, "FLOAT8", "17", "17"),
            ("money", -1, "MONEY", "2147483647", "0"),
            ("bool", -1, "BOOL", "1", "0"),
            ("varchar", -1, "VARCHAR", "2147483647", "0"),
            ("varchar", 24, "VARCHAR", "20", "0"),
            ("bpchar", 5, "BPCHAR", "1", "0"),
            ("bpchar", 9, "BPCHAR", "5", "0"),
            ("text", -1, "TEXT", "2147483647", "0"),
            ("bytea", -1, "BYTEA", "2147483647", "0"),
            ("date", -1, "DATE", "13", "0"),
            ("time", -1, "TIME", "15", "6"),
            ("time", 3, "TIME", "12", "3"),
            ("timetz", -1, "TIMETZ", "21", "6"),
            ("timestamp", -1, "TIMESTAMP", "29", "6"),
            ("timestamp", 0, "TIMESTAMP", "22", "0"),
            ("timestamptz", -1, "TIMESTAMPTZ", "35", "6"),
            ("timestamptz", 3, "TIMESTAMPTZ", "32", "3"),
            ("interval", -1, "INTERVAL", "49", "6"),
            ("interval", 0x7FFF_0002, "INTERVAL", "49", "2"),
            ("bit", 3, "BIT", "3", "0"),
            ("varbit", -1, "VARBIT", "2147483647", "0"),
            ("varbit", 8, "VARBIT", "8", "0"),
            ("mood", -1, "MOOD", "2147483647", "0"),
            ("_int4", -1, "_INT4", "10", "0"),
            ("_varchar", 14, "_VARCHAR", "10", "0"),
            ("_numeric", (5 << 16 | 1) + 4, "_NUMERIC", "5", "1"),
            ("_numeric", -1, "_NUMERIC", "131089", "0"),
            ("_text", -1, "_TEXT", "2147483647", "0"),
        ];
        for (ty, typmod, name, length, scale) in cases {
            let c = typed("c", ty, *typmod, None);
            for snapshot in [false, true] {
                if snapshot && *ty == "numeric" && *typmod == -1 {
                    continue;
                }
                assert_eq!(
                    propagated(&c, snapshot),
                    ((*name).into(), (*length).into(), Some((*scale).into())),
                    "{ty}({typmod}) snapshot={snapshot}"
                );
            }
        }
        // The snapshot's unconstrained numeric: length 0, no scale.
        let n = typed("n", "numeric", -1, None);
        assert_eq!(propagated(&n, true), ("NUMERIC".into(), "0".into(), None));
        // The snapshot's serial types.
        let nextval = Some("nextval('t_id_seq'::regclass)");
        for (ty, serial) in [
            ("int4", "SERIAL"),
            ("int8", "BIGSERIAL"),
            ("int2", "SMALLSERIAL"),
        ] {
            let c = typed("id", ty, -1, nextval);
            assert_eq!(propagated(&c, true).0, serial);
            assert_eq!(propagated(&c, false).0, ty.to_uppercase());
        }
        assert_eq!(
            propagated(&typed("id", "int4", -1, Some("7")), true).0,
            "INT4"
        );
        assert_eq!(
            propagated(&typed("n", "numeric", -1, nextval), true).0,
            "NUMERIC"
        );
        // Names are written as Jackson writes strings.
        let odd = typed("a\"b", "text", -1, None);
        assert!(source_type_parameters(&odd, false)
            .ends_with(r#""__debezium.source.column.name":"a\"b""#));
    }

    #[test]
    fn propagation_rules_match_columns_or_data_types() {
        let rx = |p: &str| Regex::new(&format!("(?i)^(?:{p})$")).unwrap();
        let table = TableSchema {
            relation_id: 1,
            schema: "public".into(),
            table: "t".into(),
            columns: vec![
                typed("id", "int4", -1, Some("nextval('t_id_seq'::regclass)")),
                typed("v", "varchar", 24, None),
                typed("w", "text", -1, None),
            ],
            key_columns: vec![0],
        };
        let shaping = ColumnShaping {
            mappers: vec![
                MapperRule {
                    patterns: vec![rx("public.t.w")],
                    mapper: ColumnMapper::Truncate(2),
                },
                MapperRule {
                    patterns: vec![rx(r"public\.t\.w")],
                    mapper: ColumnMapper::PropagateSourceType { by_datatype: false },
                },
                MapperRule {
                    patterns: vec![rx(r".+\.VARCHAR"), rx(r".+\.int4")],
                    mapper: ColumnMapper::PropagateSourceType { by_datatype: true },
                },
            ],
            ..ColumnShaping::default()
        };
        let rule = |i: usize, snapshot: bool| {
            let id = format!("public.t.{}", table.columns[i].name);
            shaping.mapper_for(&table, i, &id, snapshot).cloned()
        };
        let by_type = Some(ColumnMapper::PropagateSourceType { by_datatype: true });
        // `int4` streamed, `serial` in the snapshot.
        assert_eq!(rule(0, false), by_type);
        assert_eq!(rule(0, true), None);
        assert_eq!(rule(1, true), by_type);
        // The truncation comes first.
        assert_eq!(rule(2, false), Some(ColumnMapper::Truncate(2)));
        let plan = shaping.plan(&table);
        assert_eq!(plan.mappers[1], by_type);
    }
}
