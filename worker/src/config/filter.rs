//! Which tables a connector captures: Debezium's `schema.include.list` / `schema.exclude.list`
//! / `table.include.list` / `table.exclude.list` and `table.ignore.builtin`.
//!
//! Matching follows Debezium exactly:
//! - each list is comma-separated regular expressions; `\,` is a literal comma inside one, and
//!   each item is trimmed;
//! - a regex must match the *whole* identifier (`^(?:re)$`), case-insensitively;
//! - table lists match `schema.table`; schema lists match the schema name;
//! - a table is captured if it passes the schema rule (if any) *and* the table rule (if any);
//! - with `table.ignore.builtin=true` (the default) system tables are never captured: schemas
//!   `pg_catalog`, `information_schema` and `pg_temp*`, and PostGIS's `spatial_ref_sys`.
//!
//! pgseam uses Rust's `regex` syntax, which matches Java's for everything but look-around and
//! back-references (rejected with an error naming the pattern).

use regex::Regex;

/// Schemas Debezium never captures while `table.ignore.builtin` is true.
const SYSTEM_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];
/// Tables Debezium treats as system tables in any schema (PostGIS installs this one).
const SYSTEM_TABLES: [&str; 1] = ["spatial_ref_sys"];
/// Schema prefix of PostgreSQL's per-session temporary schemas.
const TEMP_SCHEMA_PREFIX: &str = "pg_temp";

/// An include or exclude list.
#[derive(Debug, Clone)]
enum Rule {
    Include(Vec<Regex>),
    Exclude(Vec<Regex>),
}

impl Rule {
    fn allows(&self, name: &str) -> bool {
        match self {
            Rule::Include(res) => res.iter().any(|r| r.is_match(name)),
            Rule::Exclude(res) => !res.iter().any(|r| r.is_match(name)),
        }
    }
}

/// Decides whether a table is captured. Build it from a connector configuration
/// ([`super::ConnectorConfig::table_filter`]); `TableFilter::default()` captures every non-system
/// table.
#[derive(Debug, Clone)]
pub struct TableFilter {
    schema: Option<Rule>,
    table: Option<Rule>,
    ignore_builtin: bool,
}

impl Default for TableFilter {
    fn default() -> Self {
        Self {
            schema: None,
            table: None,
            ignore_builtin: true,
        }
    }
}

/// A regex list that failed to compile: the offending item and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadPattern {
    pub(crate) pattern: String,
    pub(crate) reason: String,
}

impl TableFilter {
    /// True if changes of `schema.table` are captured.
    pub fn includes(&self, schema: &str, table: &str) -> bool {
        if self.ignore_builtin && is_system_table(schema, table) {
            return false;
        }
        if let Some(rule) = &self.schema {
            if !rule.allows(schema) {
                return false;
            }
        }
        match &self.table {
            Some(rule) => rule.allows(&format!("{schema}.{table}")),
            None => true,
        }
    }

    /// True if some table of `schema` may be captured (for publication and snapshot planning).
    pub fn includes_schema(&self, schema: &str) -> bool {
        if self.ignore_builtin
            && (SYSTEM_SCHEMAS.contains(&schema.to_lowercase().as_str())
                || schema.starts_with(TEMP_SCHEMA_PREFIX))
        {
            return false;
        }
        self.schema.as_ref().is_none_or(|r| r.allows(schema))
    }

    /// True when no include/exclude list is set (every non-system table is captured).
    pub fn is_unfiltered(&self) -> bool {
        self.schema.is_none() && self.table.is_none()
    }

    pub(crate) fn new(ignore_builtin: bool) -> Self {
        Self {
            ignore_builtin,
            ..Self::default()
        }
    }

    pub(crate) fn set_schema_rule(&mut self, include: bool, patterns: Vec<Regex>) {
        self.schema = Some(rule(include, patterns));
    }

    pub(crate) fn set_table_rule(&mut self, include: bool, patterns: Vec<Regex>) {
        self.table = Some(rule(include, patterns));
    }
}

fn rule(include: bool, patterns: Vec<Regex>) -> Rule {
    if include {
        Rule::Include(patterns)
    } else {
        Rule::Exclude(patterns)
    }
}

fn is_system_table(schema: &str, table: &str) -> bool {
    SYSTEM_SCHEMAS.contains(&schema.to_lowercase().as_str())
        || SYSTEM_TABLES.contains(&table.to_lowercase().as_str())
        || schema.starts_with(TEMP_SCHEMA_PREFIX)
}

/// Splits a Debezium regex list on unescaped commas (a backslash escapes the next character;
/// `\,` becomes `,`), trimming items and dropping empty ones.
pub(crate) fn split_regex_list(list: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| i.trim().replace("\\,", ","))
        .filter(|i| !i.is_empty())
        .collect()
}

/// Compiles a Debezium regex list into anchored, case-insensitive regexes.
pub(crate) fn compile_regex_list(list: &str) -> Result<Vec<Regex>, BadPattern> {
    split_regex_list(list)
        .into_iter()
        .map(|p| {
            Regex::new(&format!("(?i)^(?:{p})$")).map_err(|e| BadPattern {
                reason: match e {
                    regex::Error::Syntax(s) => s.lines().last().unwrap_or_default().to_owned(),
                    other => other.to_string(),
                },
                pattern: p,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        schema: Option<(bool, &str)>,
        table: Option<(bool, &str)>,
        ignore_builtin: bool,
    ) -> TableFilter {
        let mut f = TableFilter::new(ignore_builtin);
        if let Some((inc, list)) = schema {
            f.set_schema_rule(inc, compile_regex_list(list).unwrap());
        }
        if let Some((inc, list)) = table {
            f.set_table_rule(inc, compile_regex_list(list).unwrap());
        }
        f
    }

    #[test]
    fn split_handles_escaped_commas_and_whitespace() {
        assert_eq!(
            split_regex_list(" public.a , public\\.b,, x{1\\,3} "),
            vec!["public.a", "public\\.b", "x{1,3}"]
        );
        assert!(split_regex_list("  ").is_empty());
    }

    #[test]
    fn default_captures_all_but_system_tables() {
        let f = TableFilter::default();
        assert!(f.is_unfiltered());
        assert!(f.includes("public", "orders"));
        assert!(f.includes("inventory", "customers"));
        assert!(!f.includes("pg_catalog", "pg_class"));
        assert!(!f.includes("information_schema", "tables"));
        assert!(!f.includes("pg_temp_3", "t"));
        assert!(!f.includes("public", "spatial_ref_sys"));
        assert!(!f.includes_schema("pg_catalog"));
        assert!(f.includes_schema("public"));
        let all = filter(None, None, false);
        assert!(all.includes("pg_catalog", "pg_class"));
    }

    #[test]
    fn table_include_is_anchored_full_match_case_insensitive() {
        let f = filter(None, Some((true, "public.orders,inventory\\..*")), true);
        assert!(f.includes("public", "orders"));
        assert!(f.includes("PUBLIC", "Orders"));
        assert!(!f.includes("public", "orders_archive"));
        assert!(!f.includes("xpublic", "orders"));
        assert!(f.includes("inventory", "anything"));
        assert!(!f.includes("other", "orders"));
    }

    #[test]
    fn table_exclude() {
        let f = filter(None, Some((false, "public\\.audit_.*")), true);
        assert!(f.includes("public", "orders"));
        assert!(!f.includes("public", "audit_log"));
        assert!(f.includes("other", "audit_log"));
    }

    #[test]
    fn schema_and_table_rules_combine() {
        let f = filter(
            Some((true, "inventory")),
            Some((false, ".*\\.tmp_.*")),
            true,
        );
        assert!(f.includes("inventory", "orders"));
        assert!(!f.includes("inventory", "tmp_x"));
        assert!(!f.includes("public", "orders"));
        assert!(f.includes_schema("inventory"));
        assert!(!f.includes_schema("public"));
        let f = filter(Some((false, "staging|scratch")), None, true);
        assert!(f.includes("public", "a"));
        assert!(!f.includes("staging", "a"));
        assert!(!f.includes("scratch", "a"));
    }

    #[test]
    fn bad_pattern_is_reported() {
        let e = compile_regex_list("public.ok, public.(unclosed").unwrap_err();
        assert_eq!(e.pattern, "public.(unclosed");
        assert!(!e.reason.is_empty());
        assert!(compile_regex_list("(?=lookahead)").is_err());
    }
}
