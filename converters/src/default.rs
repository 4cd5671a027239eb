//! Column defaults as Debezium's `PostgresDefaultValueConverter` derives them from the
//! catalog's default expression (`pg_get_expr(adbin, adrelid)`).
//!
//! Debezium does not evaluate expressions. It:
//! 1. replaces any function call (`nextval('s'::regclass)`, `now()`, ...) and the SQL
//!    date/time keywords (`CURRENT_TIMESTAMP`, ...) by a per-type placeholder — zero, `false`,
//!    the empty string, `{}`, the nil UUID, 1970-01-01, 00:00, a zero interval — which is why a
//!    `serial` key has `"default":0`;
//! 2. otherwise takes the text between the first pair of single quotes (`'dflt'::text` →
//!    `dflt`; note `'it''s'` → `it`, a Debezium quirk kept here), or the raw expression when
//!    it has no quote (`42`); `NULL::type` means no default;
//! 3. parses that as the column's type; failure, an unmapped type (bytea, money, inet, arrays,
//!    point, hstore, ...), or a struct-valued result (unconstrained numeric, point) means no
//!    default.

use pgseam_model::{ColumnSchema, Numeric, Value};
use pgseam_pgvalue::decode_text;

/// Types whose expression Debezium trims before parsing.
const TRIM_TYPES: &[&str] = &[
    "bit",
    "varbit",
    "bool",
    "numeric",
    "float4",
    "float8",
    "int2",
    "int4",
    "serial",
    "int8",
    "bigserial",
    "smallserial",
    "uuid",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
];

const CURRENT_DATE_TIMES: &[&str] = &[
    "current_timestamp",
    "current_time",
    "current_date",
    "localtime",
    "localtimestamp",
];

/// Debezium's `^[(]?[A-Za-z0-9_.]+\((?:.+(?:, ?.+)*)?\)` found at the start of the text.
fn is_function_call(expr: &str) -> bool {
    let s = expr.strip_prefix('(').unwrap_or(expr);
    let name_len = s
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .count();
    name_len > 0 && s[name_len..].starts_with('(') && s[name_len + 1..].contains(')')
}

/// Debezium's `extractDefault(value)`: quoted literal or raw text; `None` for `NULL::type`.
fn literal(expr: &str) -> Option<&str> {
    if !expr.contains('\'') {
        return (!expr.starts_with("NULL::")).then_some(expr);
    }
    let start = expr.find('\'')? + 1;
    let len = expr[start..].find('\'')?;
    Some(&expr[start..start + len])
}

/// The default value of `column`, as Debezium would put it in the schema, before rendering.
pub(crate) fn default_value(column: &ColumnSchema) -> Option<Value> {
    let expr = column.default_expr.as_deref()?;
    let ty = column.type_name.as_str();
    let expr = if TRIM_TYPES.contains(&ty) {
        expr.trim()
    } else {
        expr
    };
    let generated =
        is_function_call(expr) || CURRENT_DATE_TIMES.contains(&expr.to_ascii_lowercase().as_str());
    let null_checked = matches!(
        ty,
        "bool" | "numeric" | "float4" | "float8" | "int2" | "int4" | "int8"
    );
    if null_checked && expr.starts_with("NULL::") {
        return None;
    }
    let placeholder = match ty {
        "bool" => "false",
        "bpchar" | "varchar" | "text" | "xml" => "",
        "numeric" | "float4" | "float8" => "0.0",
        "int2" | "int4" | "int8" => "0",
        "json" | "jsonb" => "{}",
        "uuid" => "00000000-0000-0000-0000-000000000000",
        "date" | "timestamp" | "timestamptz" => "1970-01-01",
        "time" => "00:00",
        "interval" => "epoch",
        // Debezium's generated placeholders for bit strings ("if default is generated, assume
        // length > 1").
        "bit" => "00",
        "varbit" => "0",
        _ if column.enum_values.is_some() => {
            // Enums: only `'label'::type`, never a placeholder.
            let label = expr.strip_suffix(&format!("::{ty}"))?;
            let label = label.strip_prefix('\'')?.strip_suffix('\'')?;
            return Some(Value::Text(label.to_owned()));
        }
        _ => return None,
    };
    let text = if generated {
        placeholder
    } else {
        literal(expr)?
    };
    parse_as_debezium(column, ty, text)
}

/// Parses the extracted text the way Debezium's per-type mapper does.
fn parse_as_debezium(column: &ColumnSchema, ty: &str, text: &str) -> Option<Value> {
    Some(match ty {
        "bool" => Value::Bool(text.eq_ignore_ascii_case("true")),
        "int2" => Value::Int16(text.parse().ok()?),
        "int4" => Value::Int32(text.parse().ok()?),
        "int8" => Value::Int64(text.parse().ok()?),
        "float4" => Value::Float32(text.parse().ok()?),
        "float8" => Value::Float64(text.parse().ok()?),
        "numeric" => {
            let d = crate::decimal::Decimal::parse(text)?;
            Value::Numeric(Numeric::Finite(d.to_plain_string()))
        }
        "bpchar" | "varchar" | "text" | "xml" => Value::Text(text.to_owned()),
        // The bit string's text (`'101'::"bit"` → `101`), written as the column's `Bits`
        // (or, for a one-bit column, boolean) value.
        "bit" | "varbit" if text.bytes().all(|b| b == b'0' || b == b'1') => {
            Value::Text(text.to_owned())
        }
        "json" | "jsonb" => Value::Json(text.to_owned()),
        "date" if text == "1970-01-01" => Value::Date(0),
        "timestamp" if text == "1970-01-01" => Value::Timestamp(0),
        "timestamptz" if text == "1970-01-01" => Value::TimestampTz(0),
        "time" if text == "00:00" => Value::Time(0),
        "interval" if text == "epoch" => Value::Interval {
            months: 0,
            days: 0,
            micros: 0,
        },
        "timestamp" | "timestamptz" | "date" | "time" | "interval" | "uuid" => {
            decode_text(column, text).ok()?
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: &str, default: &str) -> ColumnSchema {
        ColumnSchema {
            name: "c".into(),
            type_oid: 0,
            type_name: ty.into(),
            base_type_oid: 0,
            type_modifier: -1,
            nullable: true,
            default_expr: Some(default.into()),
            enum_values: None,
            dimensions: 0,
        }
    }

    #[test]
    fn expressions() {
        assert_eq!(
            default_value(&col("int4", "nextval('all_types_id_seq'::regclass)")),
            Some(Value::Int32(0))
        );
        assert_eq!(default_value(&col("int4", "42")), Some(Value::Int32(42)));
        assert_eq!(
            default_value(&col("int8", "'-1'::bigint")),
            Some(Value::Int64(-1))
        );
        assert_eq!(default_value(&col("int4", "NULL::integer")), None);
        assert_eq!(
            default_value(&col("text", "'dflt'::text")),
            Some(Value::Text("dflt".into()))
        );
        assert_eq!(
            default_value(&col("text", "'it''s'::text")),
            Some(Value::Text("it".into()))
        );
        assert_eq!(
            default_value(&col("varchar", "upper('x'::text)")),
            Some(Value::Text(String::new()))
        );
        assert_eq!(
            default_value(&col("timestamptz", "now()")),
            Some(Value::TimestampTz(0))
        );
        assert_eq!(
            default_value(&col("timestamptz", "CURRENT_TIMESTAMP")),
            Some(Value::TimestampTz(0))
        );
        assert_eq!(default_value(&col("bool", "true")), Some(Value::Bool(true)));
        assert_eq!(default_value(&col("bytea", "'\\x00'::bytea")), None);
        assert_eq!(default_value(&col("int4", "(1 + 2)")), None);
        assert_eq!(
            default_value(&col("numeric", "1.5")),
            Some(Value::Numeric(Numeric::Finite("1.5".into())))
        );
        let mut e = col("mood", "'ok'::mood");
        e.enum_values = Some(vec!["sad".into(), "ok".into()]);
        assert_eq!(default_value(&e), Some(Value::Text("ok".into())));
    }
}
