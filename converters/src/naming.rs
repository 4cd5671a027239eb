//! Topic and schema naming as Debezium 3.6.3's `DefaultTopicNamingStrategy` and
//! `SchemaNameAdjuster` do it: `topic.delimiter`, `schema.name.adjustment.mode` and
//! `field.name.adjustment.mode`.
//!
//! - **Topics** are `<topic.prefix><delimiter><schema><delimiter><table>` (and
//!   `<prefix><delimiter>message`), sanitised: every UTF-16 unit that is not `[A-Za-z0-9._-]`
//!   becomes `_`, the name is cut to 249 units, and `.` / `..` become `_` / `__`. The
//!   transaction topic `<prefix><delimiter><topic.transaction>` and the heartbeat topic
//!   `<heartbeat.topics.prefix><delimiter><prefix>` are joined only, as Debezium joins them.
//! - **Record schema names** are the sanitised topic plus `.Key`, `.Value`, `.Envelope`, passed
//!   through the schema name adjuster: `none` keeps them; `avro` replaces every UTF-16 unit that
//!   is not valid in an Avro full name (first `[A-Za-z_]`, then also `[0-9.]`) with `_`, and
//!   keeps a leading digit after its `_` (`1a` → `_1a`); `avro_unicode` replaces it with
//!   `_u` + its hex code (lower case, at least four digits for codes below 0x100: `-` →
//!   `_u002d`, `к` → `_u43a`), and there `_` itself is not valid (`_n_` → `_u005fn_u005f`).
//! - **Field names** (columns) go through the field name adjuster: as above, but `.` is not
//!   valid either (`v.w` → `v_w` / `v_u002ew`).

/// `schema.name.adjustment.mode` / `field.name.adjustment.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameAdjustment {
    /// Names are kept (Debezium's default).
    #[default]
    None,
    /// Invalid characters become `_`.
    Avro,
    /// Invalid characters become `_uXXXX`.
    AvroUnicode,
}

/// Debezium's topic and schema naming settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    /// `topic.delimiter` (default `.`).
    pub delimiter: String,
    /// `schema.name.adjustment.mode`.
    pub schema_names: NameAdjustment,
    /// `field.name.adjustment.mode`.
    pub field_names: NameAdjustment,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            delimiter: ".".into(),
            schema_names: NameAdjustment::None,
            field_names: NameAdjustment::None,
        }
    }
}

impl Naming {
    /// The sanitised topic of `parts` joined with the delimiter.
    pub fn topic(&self, parts: &[&str]) -> String {
        sanitize_topic(&parts.join(&self.delimiter))
    }

    /// `parts` joined with the delimiter, not sanitised: Debezium's transaction and heartbeat
    /// topics (`transactionTopic()`, `heartbeatTopic()`).
    pub fn join(&self, parts: &[&str]) -> String {
        parts.join(&self.delimiter)
    }

    /// A record schema name, adjusted.
    pub fn schema_name(&self, name: &str) -> String {
        adjust(name, self.schema_names, false)
    }

    /// A field (column) name, adjusted.
    pub fn field_name(&self, name: &str) -> String {
        adjust(name, self.field_names, true)
    }
}

/// `AbstractTopicNamingStrategy.sanitizedTopicName`.
pub fn sanitize_topic(name: &str) -> String {
    let valid = |u: u16| {
        u < 0x80 && {
            let c = u as u8;
            c == b'.' || c == b'_' || c == b'-' || c.is_ascii_alphanumeric()
        }
    };
    let mut units: Vec<u16> = name
        .encode_utf16()
        .map(|u| if valid(u) { u } else { u16::from(b'_') })
        .collect();
    units.truncate(249);
    let s = String::from_utf16_lossy(&units);
    match s.as_str() {
        "." => "_".into(),
        ".." => "__".into(),
        _ => s,
    }
}

/// `SchemaNameAdjuster.validFullname` with Debezium's replacement functions.
fn adjust(name: &str, mode: NameAdjustment, field: bool) -> String {
    if mode == NameAdjustment::None || name.is_empty() {
        return name.to_owned();
    }
    let unicode = mode == NameAdjustment::AvroUnicode;
    let letter = |u: u16| u < 0x80 && (u as u8).is_ascii_alphabetic();
    let digit = |u: u16| u < 0x80 && (u as u8).is_ascii_digit();
    // The unicode functions do not count `_` as valid (their first-character test, which the
    // other test reuses, has letters only).
    let valid_first = |u: u16| letter(u) || (!unicode && u == u16::from(b'_'));
    let valid_rest = |u: u16| valid_first(u) || digit(u) || (!field && u == u16::from(b'.'));
    let mut out = String::with_capacity(name.len() + 8);
    let mut changed = false;
    let units: Vec<u16> = name.encode_utf16().collect();
    let push_unit = |out: &mut String, u: u16| out.push(char::from(u as u8));
    let replace = |out: &mut String, u: u16| {
        if unicode {
            let hex = format!("{u:x}");
            out.push_str("_u");
            if hex.len() <= 2 {
                out.push_str("00");
            }
            out.push_str(&hex);
        } else {
            out.push('_');
        }
    };
    let first = units[0];
    if valid_first(first) {
        push_unit(&mut out, first);
    } else {
        replace(&mut out, first);
        if digit(first) && !unicode {
            push_unit(&mut out, first);
        }
        changed = true;
    }
    for &u in &units[1..] {
        if valid_rest(u) {
            push_unit(&mut out, u);
        } else {
            replace(&mut out, u);
            changed = true;
        }
    }
    if changed {
        out
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_sanitised() {
        let n = Naming::default();
        assert_eq!(
            n.topic(&["dbz", "public", "my-table"]),
            "dbz.public.my-table"
        );
        assert_eq!(n.topic(&["dbz", "public", "Ünï"]), "dbz.public._n_");
        assert_eq!(n.topic(&["dbz", "public", "a😀"]), "dbz.public.a__");
        let d = Naming {
            delimiter: "_".into(),
            ..Naming::default()
        };
        assert_eq!(d.topic(&["dbz", "transaction"]), "dbz_transaction");
        assert_eq!(sanitize_topic("."), "_");
        assert_eq!(sanitize_topic(".."), "__");
        assert_eq!(sanitize_topic(&"x".repeat(300)).len(), 249);
    }

    #[test]
    fn names_as_debezium_adjusts_them() {
        // Values from the Debezium 3.6.3 goldens (reference/debezium/golden/columns/names_*).
        let avro = Naming {
            schema_names: NameAdjustment::Avro,
            field_names: NameAdjustment::Avro,
            ..Naming::default()
        };
        assert_eq!(
            avro.schema_name("dbz.public.my-table.Value"),
            "dbz.public.my_table.Value"
        );
        assert_eq!(avro.schema_name("dbz.public._n_.Key"), "dbz.public._n_.Key");
        for (from, to) in [
            ("my-col", "my_col"),
            ("1st", "_1st"),
            ("naïve", "na_ve"),
            ("ключ", "____"),
            ("v.w", "v_w"),
            ("ok", "ok"),
        ] {
            assert_eq!(avro.field_name(from), to);
        }
        let uni = Naming {
            schema_names: NameAdjustment::AvroUnicode,
            field_names: NameAdjustment::AvroUnicode,
            ..Naming::default()
        };
        assert_eq!(
            uni.schema_name("dbz.public.my-table.Value"),
            "dbz.public.my_u002dtable.Value"
        );
        assert_eq!(
            uni.schema_name("dbz.public._n_.Key"),
            "dbz.public._u005fn_u005f.Key"
        );
        for (from, to) in [
            ("my-col", "my_u002dcol"),
            ("1st", "_u0031st"),
            ("naïve", "na_u00efve"),
            ("ключ", "_u43a_u43b_u44e_u447"),
            ("v.w", "v_u002ew"),
            ("note", "note"),
        ] {
            assert_eq!(uni.field_name(from), to);
        }
    }
}
