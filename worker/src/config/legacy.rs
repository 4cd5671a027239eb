//! Connector keys and values of Debezium 1.x that Debezium 2.0 and later removed or renamed.
//!
//! Debezium 2.x/3.x ignore a key they no longer define, so a configuration carried over from
//! Debezium 1.x keeps "working" while silently losing its filter or topic prefix (a removed
//! `table.whitelist` captures every table). pgseam rejects each such key and names what
//! replaced it. The lists come from Debezium's 2.0 migration notes (`database.server.name` →
//! `topic.prefix`, the `*.whitelist`/`*.blacklist` removal, `database.history.*` →
//! `schema.history.internal.*`, JDBC pass-through `database.*` → `driver.*`), later release
//! notes (`sanitize.field.names` → the name adjustment modes in 2.2, the aligned snapshot
//! modes' `snapshot.mode.custom.name` in 2.6, DBZ-8171's removal of the deprecated snapshot
//! modes `exported` and `never` in 3.3), and Debezium 3.6.3's own `PostgresConnectorConfig`
//! (`SnapshotMode` has no `exported` or `never`; `LogicalDecoder` has only `decoderbufs` and
//! `pgoutput`). `snapshot.mode=never` is the one exception: real deployments still carry it,
//! so it is read as its replacement `no_data` with a warning.
//!
//! Keys Debezium 3.6.3 still accepts but marks deprecated are listed in [`DEPRECATED_KEYS`]:
//! pgseam accepts them as Debezium does (at their default, rule 2 of the module docs) with a
//! warning naming the replacement.

/// A removed Debezium 1.x connector key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LegacyKey {
    /// The key, or a prefix ending in `.` for a family of keys (`database.history.`).
    pub(crate) key: &'static str,
    /// The Debezium version that removed it.
    pub(crate) removed_in: &'static str,
    /// What to use instead (a sentence fragment after "use" / a full instruction).
    pub(crate) instead: &'static str,
}

/// Removed connector keys, each with its replacement.
pub(crate) const LEGACY_KEYS: &[LegacyKey] = &[
    LegacyKey {
        key: "database.server.name",
        removed_in: "2.0",
        instead: "set `topic.prefix` to the same value (topics stay `<topic.prefix>.<schema>.<table>`)",
    },
    LegacyKey {
        key: "table.whitelist",
        removed_in: "2.0",
        instead: "rename it to `table.include.list` (same regexes)",
    },
    LegacyKey {
        key: "table.blacklist",
        removed_in: "2.0",
        instead: "rename it to `table.exclude.list` (same regexes)",
    },
    LegacyKey {
        key: "schema.whitelist",
        removed_in: "2.0",
        instead: "rename it to `schema.include.list` (same regexes)",
    },
    LegacyKey {
        key: "schema.blacklist",
        removed_in: "2.0",
        instead: "rename it to `schema.exclude.list` (same regexes)",
    },
    LegacyKey {
        key: "column.whitelist",
        removed_in: "2.0",
        instead: "rename it to `column.include.list` (same regexes)",
    },
    LegacyKey {
        key: "column.blacklist",
        removed_in: "2.0",
        instead: "rename it to `column.exclude.list` (same regexes)",
    },
    LegacyKey {
        key: "database.whitelist",
        removed_in: "2.0",
        instead: "remove it: the PostgreSQL connector captures the one database in `database.dbname`",
    },
    LegacyKey {
        key: "database.blacklist",
        removed_in: "2.0",
        instead: "remove it: the PostgreSQL connector captures the one database in `database.dbname`",
    },
    LegacyKey {
        key: "database.history.",
        removed_in: "2.0",
        instead: "remove it: the keys became `schema.history.internal.*`, which the PostgreSQL connector does not use (it keeps no schema history)",
    },
    LegacyKey {
        key: "database.history",
        removed_in: "2.0",
        instead: "remove it: the key became `schema.history.internal`, which the PostgreSQL connector does not use (it keeps no schema history)",
    },
    LegacyKey {
        key: "truncate.handling.mode",
        removed_in: "2.0",
        instead: "use `skipped.operations`: `include` is a list without `t` (e.g. `skipped.operations=none`), `skip` is the default",
    },
    LegacyKey {
        key: "toasted.value.placeholder",
        removed_in: "2.0",
        instead: "rename it to `unavailable.value.placeholder`",
    },
    LegacyKey {
        key: "source.struct.version",
        removed_in: "2.0",
        instead: "remove it: only the v2 `source` block remains, which pgseam writes",
    },
    LegacyKey {
        key: "sanitize.field.names",
        removed_in: "2.2",
        instead: "use `field.name.adjustment.mode` and `schema.name.adjustment.mode` (`avro` for `true`, `none` for `false`)",
    },
    LegacyKey {
        key: "snapshot.custom.class",
        removed_in: "2.6",
        instead: "use `snapshot.mode=custom` with `snapshot.mode.custom.name` (the snapshotter's name, not its class)",
    },
];

/// The removed key `key` is, if any: exact names first, then families (`database.history.*`).
pub(crate) fn legacy_key(key: &str) -> Option<&'static LegacyKey> {
    LEGACY_KEYS.iter().find(|l| l.key == key).or_else(|| {
        LEGACY_KEYS
            .iter()
            .find(|l| l.key.ends_with('.') && key.starts_with(l.key))
    })
}

/// Prefix Debezium 1.x passed through to the JDBC driver (any `database.<property>` it did not
/// define itself). Debezium 2.0 moved the pass-through to `driver.`.
pub(crate) const JDBC_PASSTHROUGH_LEGACY_PREFIX: &str = "database.";

/// Debezium 1.x logical decoding plugins removed in 2.0 (only `decoderbufs` and `pgoutput`
/// remain).
pub(crate) const REMOVED_PLUGINS: [&str; 4] = [
    "wal2json",
    "wal2json_rds",
    "wal2json_streaming",
    "wal2json_rds_streaming",
];

/// Keys of Debezium 3.6.3's config definition (the embedded catalog) that its
/// `PostgresConnectorConfig` marks `@Deprecated`, with their replacement.
pub(crate) const DEPRECATED_KEYS: [(&str, &str); 1] = [("flush.lsn.source", "lsn.flush.mode")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keys_and_families() {
        assert_eq!(
            legacy_key("database.server.name").map(|l| l.key),
            Some("database.server.name")
        );
        assert_eq!(
            legacy_key("database.history.kafka.topic").map(|l| l.key),
            Some("database.history.")
        );
        assert_eq!(
            legacy_key("database.history").map(|l| l.key),
            Some("database.history")
        );
        assert!(legacy_key("table.include.list").is_none());
        assert!(legacy_key("database.hostname").is_none());
        assert!(legacy_key("database.historyx").is_none());
    }

    #[test]
    fn deprecated_keys_are_current_debezium_keys() {
        let catalog = super::super::catalog::catalog();
        for (key, instead) in DEPRECATED_KEYS {
            assert!(catalog.connector_key(key).is_some(), "{key}");
            assert!(catalog.connector_key(instead).is_some(), "{instead}");
        }
    }

    #[test]
    fn no_legacy_key_is_a_current_debezium_key() {
        let catalog = super::super::catalog::catalog();
        for l in LEGACY_KEYS {
            let name = l.key.trim_end_matches('.');
            assert!(
                catalog.connector_key(name).is_none(),
                "{name} is still a Debezium 3.6.3 key"
            );
        }
    }
}
