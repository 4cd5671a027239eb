//! Tests of connector validation and standalone loading.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const BASE: &[(&str, &str)] = &[
    ("name", "inventory"),
    (
        "connector.class",
        "io.debezium.connector.postgresql.PostgresConnector",
    ),
    ("database.hostname", "db.example"),
    ("database.user", "cdc"),
    ("database.password", "hunter2"),
    ("database.dbname", "shop"),
    ("topic.prefix", "dbz"),
    ("plugin.name", "pgoutput"),
];

/// BASE with `extra` applied (an empty value removes the key).
fn config(extra: &[(&str, &str)]) -> Result<ConnectorConfig, ConfigErrors> {
    let mut pairs: Vec<(String, String)> = BASE
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    ConnectorConfig::from_map(pairs, "inventory.properties")
}

fn errors(extra: &[(&str, &str)]) -> Vec<String> {
    match config(extra) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn one_error(extra: &[(&str, &str)]) -> String {
    let errs = errors(extra);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn minimal_config_gets_debezium_defaults() {
    let c = config(&[("plugin.name", "")]).unwrap();
    assert_eq!(c.name, "inventory");
    assert_eq!(c.database_hostname, "db.example");
    assert_eq!(c.database_port, 5432);
    assert_eq!(c.database_user, "cdc");
    assert_eq!(
        c.database_password.as_ref().map(Secret::expose),
        Some("hunter2")
    );
    assert_eq!(c.database_dbname, "shop");
    assert_eq!(c.topic_prefix, "dbz");
    assert_eq!(c.slot_name, "debezium");
    assert_eq!(c.publication_name, "dbz_publication");
    assert_eq!(
        c.publication_autocreate_mode,
        PublicationAutocreateMode::AllTables
    );
    assert_eq!(c.snapshot_mode, SnapshotMode::Initial);
    assert_eq!(c.decimal_handling_mode, DecimalHandlingMode::Precise);
    assert!(c.tombstones_on_delete);
    assert_eq!(c.skipped_operations, DEFAULT_SKIPPED_OPERATIONS);
    assert!(c.skipped_operations.skips(Operation::Truncate));
    assert!(!c.skipped_operations.skips(Operation::Create));
    assert_eq!(c.status_update_interval, Duration::from_secs(10));
    assert!(!c.slot_drop_on_stop);
    assert_eq!(c.snapshot_max_threads, 1);
    assert_eq!(c.snapshot_fetch_size, 10_240);
    assert_eq!(c.heartbeat_interval, None);
    assert_eq!(c.max_batch_size, 2048);
    assert_eq!(c.max_queue_size, 8192);
    assert_eq!(c.poll_interval, Duration::from_millis(500));
    assert!(c.table_filter.is_unfiltered());
    assert!(!c.table_filter.includes("pg_catalog", "pg_class"));
    assert_eq!(c.key_converter, None);
    assert_eq!(c.value_converter, None);
    assert_eq!(c.header_converter, None);
    assert!(c.producer_overrides.is_empty());
    assert_eq!(c.original.get("database.hostname"), Some("db.example"));
}

#[test]
fn all_implemented_keys_parse() {
    let c = config(&[
        ("connector.class", "PostgresConnector"),
        ("database.port", " 6432 "),
        ("slot.name", "inventory_slot"),
        ("publication.name", "inv_pub"),
        ("publication.autocreate.mode", "FILTERED"),
        ("table.include.list", "public.orders, public.customers"),
        ("schema.include.list", "public"),
        ("table.ignore.builtin", "false"),
        ("snapshot.mode", "no_data"),
        ("decimal.handling.mode", "string"),
        ("tombstones.on.delete", "false"),
        ("skipped.operations", "none"),
        ("status.update.interval.ms", "1000"),
        ("slot.drop.on.stop", "true"),
        ("snapshot.max.threads", "4"),
        ("snapshot.fetch.size", "500"),
        ("heartbeat.interval.ms", "30000"),
        ("max.batch.size", "100"),
        ("max.queue.size", "400"),
        ("poll.interval.ms", "50"),
        ("tasks.max", "1"),
    ])
    .unwrap();
    assert_eq!(c.database_port, 6432);
    assert_eq!(c.slot_name, "inventory_slot");
    assert_eq!(c.publication_name, "inv_pub");
    assert_eq!(
        c.publication_autocreate_mode,
        PublicationAutocreateMode::Filtered
    );
    assert!(c.table_filter.includes("public", "orders"));
    assert!(!c.table_filter.includes("public", "payments"));
    assert_eq!(c.snapshot_mode, SnapshotMode::NoData);
    assert_eq!(c.decimal_handling_mode, DecimalHandlingMode::String);
    assert!(!c.tombstones_on_delete);
    assert_eq!(c.skipped_operations, SkippedOperations::NONE);
    assert_eq!(c.status_update_interval, Duration::from_secs(1));
    assert!(c.slot_drop_on_stop);
    assert_eq!(c.snapshot_max_threads, 4);
    assert_eq!(c.snapshot_fetch_size, 500);
    assert_eq!(c.heartbeat_interval, Some(Duration::from_secs(30)));
    assert_eq!((c.max_batch_size, c.max_queue_size), (100, 400));
    assert_eq!(c.poll_interval, Duration::from_millis(50));
}

#[test]
fn password_never_in_debug_output() {
    let c = config(&[
        ("database.password", "s3cr3t-pw"),
        ("producer.override.sasl.jaas.config", "jaas-secret"),
    ])
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr3t-pw"), "{dbg}");
    assert!(!dbg.contains("jaas-secret"), "{dbg}");
    assert!(dbg.contains("database_password: Some(****)"), "{dbg}");
    assert_eq!(c.database_password.unwrap().expose(), "s3cr3t-pw");
}

#[test]
fn password_is_not_trimmed() {
    let c = config(&[("database.password", " pw ")]).unwrap();
    assert_eq!(c.database_password.unwrap().expose(), " pw ");
}

#[test]
fn plugin_name() {
    assert!(config(&[("plugin.name", "PGOUTPUT")]).is_ok());
    assert_eq!(
        one_error(&[("plugin.name", "decoderbufs")]),
        "inventory.properties: `plugin.name=decoderbufs` is not supported: pgseam speaks only pgoutput; set plugin.name=pgoutput"
    );
    assert!(one_error(&[("plugin.name", "foo")]).contains("invalid value `foo` for `plugin.name`"));
}

#[test]
fn connector_class() {
    assert!(config(&[("connector.class", "Postgres")]).is_ok());
    let e = one_error(&[(
        "connector.class",
        "io.debezium.connector.mysql.MySqlConnector",
    )]);
    assert!(
        e.contains("is not supported: pgseam implements only Debezium's PostgreSQL connector"),
        "{e}"
    );
    let e = one_error(&[("connector.class", "")]);
    assert!(
        e.contains("missing required connector property `connector.class`"),
        "{e}"
    );
}

#[test]
fn missing_required_keys_are_all_reported() {
    let errs = errors(&[
        ("name", ""),
        ("database.hostname", ""),
        ("database.user", ""),
        ("database.dbname", ""),
        ("topic.prefix", ""),
    ]);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    for key in [
        "name",
        "database.hostname",
        "database.user",
        "database.dbname",
        "topic.prefix",
    ] {
        assert!(
            errs.iter().any(|e| e
                .starts_with("inventory.properties: missing required connector property")
                && e.contains(&format!("`{key}`"))),
            "{key}: {errs:#?}"
        );
    }
    // A password is optional (trust or certificate authentication).
    assert!(config(&[("database.password", "")])
        .unwrap()
        .database_password
        .is_none());
}

#[test]
fn invalid_values_name_key_value_and_accepted_values() {
    let e = one_error(&[("database.port", "54x")]);
    assert_eq!(
        e,
        "inventory.properties: invalid value `54x` for `database.port`: expected an integer from 1 to 65535"
    );
    assert!(one_error(&[("database.port", "70000")]).contains("from 1 to 65535"));
    let e = one_error(&[("decimal.handling.mode", "exact")]);
    assert!(
        e.contains("expected one of `precise`, `double`, `string`"),
        "{e}"
    );
    let e = one_error(&[("publication.autocreate.mode", "some")]);
    assert!(
        e.contains("`all_tables`, `filtered`, `no_tables`, `disabled`"),
        "{e}"
    );
    let e = one_error(&[("tombstones.on.delete", "yes")]);
    assert!(e.contains("expected `true` or `false`"), "{e}");
    let e = one_error(&[("slot.name", "My-Slot")]);
    assert!(e.contains("replication slot name"), "{e}");
    assert!(one_error(&[("slot.name", &"s".repeat(64))]).contains("1 to 63"));
    let e = one_error(&[("topic.prefix", "my topic")]);
    assert!(
        e.contains("invalid value `my topic` for `topic.prefix`"),
        "{e}"
    );
    let e = one_error(&[("heartbeat.interval.ms", "-1")]);
    assert!(e.contains("`heartbeat.interval.ms`"), "{e}");
    let e = one_error(&[("tasks.max", "0")]);
    assert!(e.contains("`tasks.max`"), "{e}");
}

#[test]
fn tasks_max_above_one_is_accepted() {
    assert!(config(&[("tasks.max", "3")]).is_ok());
}

#[test]
fn queue_must_exceed_batch() {
    let e = one_error(&[("max.batch.size", "8192")]);
    assert!(
        e.contains("`max.queue.size` (8192) must be larger than `max.batch.size` (8192)"),
        "{e}"
    );
}

#[test]
fn offset_mismatch_strategy() {
    assert_eq!(
        config(&[]).unwrap().offset_mismatch_strategy,
        OffsetMismatchStrategy::NoValidation
    );
    for (name, strategy) in [
        ("trust_offset", OffsetMismatchStrategy::TrustOffset),
        ("TRUST_SLOT", OffsetMismatchStrategy::TrustSlot),
        ("trust_greater_lsn", OffsetMismatchStrategy::TrustGreaterLsn),
        ("no_validation", OffsetMismatchStrategy::NoValidation),
    ] {
        assert_eq!(
            config(&[("offset.mismatch.strategy", name)])
                .unwrap()
                .offset_mismatch_strategy,
            strategy
        );
    }
    let e = one_error(&[("offset.mismatch.strategy", "fail")]);
    assert!(e.contains("`trust_slot`"), "{e}");
}

#[test]
fn snapshot_modes() {
    assert_eq!(
        config(&[("snapshot.mode", "INITIAL")])
            .unwrap()
            .snapshot_mode,
        SnapshotMode::Initial
    );
    assert_eq!(
        config(&[("snapshot.mode", "never")]).unwrap().snapshot_mode,
        SnapshotMode::NoData
    );
    for (name, mode) in [
        ("initial_only", SnapshotMode::InitialOnly),
        ("Always", SnapshotMode::Always),
        ("when_needed", SnapshotMode::WhenNeeded),
        ("no_data", SnapshotMode::NoData),
    ] {
        assert_eq!(
            config(&[("snapshot.mode", name)]).unwrap().snapshot_mode,
            mode
        );
    }
    for mode in ["configuration_based", "custom"] {
        let e = one_error(&[("snapshot.mode", mode)]);
        assert!(
            e.contains(&format!(
                "`snapshot.mode={mode}` is not supported: not implemented"
            )),
            "{e}"
        );
    }
    // Not a PostgreSQL connector mode in Debezium 3.6.3.
    let e = one_error(&[("snapshot.mode", "recovery")]);
    assert!(e.contains("`configuration_based` and `custom`"), "{e}");
    assert_eq!(
        one_error(&[("snapshot.mode", "exported")]),
        "inventory.properties: `snapshot.mode=exported` was removed in Debezium 3.3; use `initial`, which reads the snapshot exported by the slot's creation"
    );
}

#[test]
fn legacy_debezium_1_keys_are_rejected_with_their_replacement() {
    // A Debezium 1.x file: the server name instead of topic.prefix, whitelists, schema
    // history and a JDBC pass-through key.
    let errs = errors(&[
        ("topic.prefix", ""),
        ("database.server.name", "dbz"),
        ("table.whitelist", "public.orders"),
        ("schema.blacklist", "audit"),
        ("column.blacklist", "public.orders.secret"),
        ("database.history.kafka.topic", "schema-changes"),
        ("database.history.kafka.bootstrap.servers", "k:9092"),
        ("truncate.handling.mode", "include"),
        ("toasted.value.placeholder", "x"),
        ("sanitize.field.names", "true"),
        ("snapshot.custom.class", "com.example.Snap"),
        ("source.struct.version", "v2"),
        ("database.loggerLevel", "DEBUG"),
    ]);
    let has = |needle: &str| {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{needle}: {errs:#?}"
        );
    };
    has("inventory.properties: `database.server.name` was removed in Debezium 2.0; set `topic.prefix` to the same value");
    has("missing required connector property `topic.prefix`");
    has("`table.whitelist` was removed in Debezium 2.0; rename it to `table.include.list`");
    has("`schema.blacklist` was removed in Debezium 2.0; rename it to `schema.exclude.list`");
    has("`column.blacklist` was removed in Debezium 2.0; rename it to `column.exclude.list`");
    has("`database.history.kafka.topic` was removed in Debezium 2.0; remove it: the keys became `schema.history.internal.*`");
    has("`database.history.kafka.bootstrap.servers` was removed in Debezium 2.0");
    has("`truncate.handling.mode` was removed in Debezium 2.0; use `skipped.operations`");
    has("`toasted.value.placeholder` was removed in Debezium 2.0; rename it to `unavailable.value.placeholder`");
    has("`sanitize.field.names` was removed in Debezium 2.2; use `field.name.adjustment.mode`");
    has("`snapshot.custom.class` was removed in Debezium 2.6; use `snapshot.mode=custom` with `snapshot.mode.custom.name`");
    has("`source.struct.version` was removed in Debezium 2.0");
    has("`database.loggerLevel` was removed in Debezium 2.0; JDBC driver properties are passed with the `driver.` prefix since then (`driver.loggerLevel`)");
    assert_eq!(errs.len(), 13, "{errs:#?}");

    // A typo of a database.* key is still a typo, not a pass-through.
    let e = one_error(&[("database.hostnme", "x")]);
    assert!(e.contains("did you mean `database.hostname`?"), "{e}");
    // Removed plugins name pgoutput.
    for plugin in ["wal2json", "wal2json_rds_streaming"] {
        let e = one_error(&[("plugin.name", plugin)]);
        assert!(
            e.contains(&format!(
                "`plugin.name={plugin}` was removed in Debezium 2.0; set plugin.name=pgoutput"
            )),
            "{e}"
        );
    }
    // A deprecated key Debezium 3.6.3 still defines is accepted at its default.
    assert!(config(&[("flush.lsn.source", "true")]).is_ok());
}

#[test]
fn skipped_operations() {
    let c = config(&[("skipped.operations", "c, d")]).unwrap();
    assert!(c.skipped_operations.skips(Operation::Create));
    assert!(c.skipped_operations.skips(Operation::Delete));
    assert!(!c.skipped_operations.skips(Operation::Update));
    assert!(!c.skipped_operations.skips(Operation::Truncate));
    assert!(one_error(&[("skipped.operations", "x")]).contains("`skipped.operations`"));
    assert!(one_error(&[("skipped.operations", "none,t")]).contains("`none` alone"));
    assert!(one_error(&[("skipped.operations", "r")]).contains("not supported"));
}

#[test]
fn include_and_exclude_lists() {
    let e = one_error(&[
        ("table.include.list", "public.a"),
        ("table.exclude.list", "public.b"),
    ]);
    assert!(
        e.contains("`table.include.list` and `table.exclude.list` cannot both be set"),
        "{e}"
    );
    let e = one_error(&[("schema.include.list", "a"), ("schema.exclude.list", "b")]);
    assert!(
        e.contains("`schema.include.list` and `schema.exclude.list`"),
        "{e}"
    );
    // An empty list is no list.
    assert!(config(&[
        ("table.include.list", " "),
        ("table.exclude.list", "public.b")
    ])
    .is_ok());
    let e = one_error(&[("table.include.list", "public.(orders")]);
    assert!(e.contains("`public.(orders` is invalid"), "{e}");
    let c = config(&[
        ("table.exclude.list", "public\\.audit.*"),
        ("schema.exclude.list", "staging"),
    ])
    .unwrap();
    assert!(c.table_filter.includes("public", "orders"));
    assert!(!c.table_filter.includes("public", "audit_log"));
    assert!(!c.table_filter.includes("staging", "orders"));
}

#[test]
fn unsupported_debezium_property_accepted_only_at_default() {
    assert!(config(&[
        ("include.schema.comments", "false"),
        ("message.key.columns", ""),
        ("signal.enabled.channels", "source"),
        ("database.sslmode", "prefer"),
        ("errors.max.retries", "-1"),
    ])
    .is_ok());
    assert_eq!(
        one_error(&[("include.schema.comments", "true")]),
        "inventory.properties: `include.schema.comments` is a Debezium property pgseam does not support yet (value `true`); remove it or keep the default `false`"
    );
    assert_eq!(
        one_error(&[("custom.metric.tags", "k=v")]),
        "inventory.properties: `custom.metric.tags` is a Debezium property pgseam does not support yet (value `k=v`); remove it (it has no default)"
    );
    let e = one_error(&[("driver.ApplicationName", "cdc")]);
    assert!(
        e.contains("`driver.ApplicationName` is a Debezium property"),
        "{e}"
    );
    // Secret values are not echoed.
    let e = one_error(&[("driver.password", "pw-value")]);
    assert!(
        e.contains("(value `****`)") && !e.contains("pw-value"),
        "{e}"
    );
}

#[test]
fn connect_framework_keys() {
    let c = config(&[
        ("errors.tolerance", "NONE"),
        ("errors.log.enable", "false"),
        ("exactly.once.support", "requested"),
        ("offsets.storage.topic", "my-offsets"),
        ("config.action.reload", "restart"),
        ("consumer.override.max.poll.records", "10"),
        ("errors.deadletterqueue.topic.name", "dlq"),
        ("topic.creation.default.replication.factor", "3"),
        ("topic.creation.default.partitions", "1"),
        ("producer.override.linger.ms", "5"),
        ("predicates", "isTombstone"),
        (
            "predicates.isTombstone.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        ),
    ])
    .unwrap();
    assert_eq!(
        c.topic_creation.get("default.replication.factor"),
        Some("3")
    );
    assert_eq!(c.producer_overrides.get("linger.ms"), Some("5"));
    // Connect runtime keys at other values: accepted (with a warning saying what pgseam does).
    assert!(config(&[
        ("errors.tolerance", "all"),
        ("errors.log.enable", "true"),
        ("errors.log.include.messages", "TRUE"),
        ("errors.retry.timeout", "-1"),
        ("errors.retry.delay.max.ms", "1000"),
        ("transaction.boundary", "interval"),
        ("transaction.boundary.interval.ms", "500"),
    ])
    .is_ok());
    // errors.tolerance is typed: `all` skips records over message.max.bytes.
    assert_eq!(
        config(&[("errors.tolerance", "ALL")])
            .unwrap()
            .errors_tolerance,
        super::ErrorTolerance::All
    );
    assert_eq!(c.errors_tolerance, super::ErrorTolerance::None);
    // Their values are still checked.
    assert_eq!(
        one_error(&[("errors.tolerance", "some")]),
        "inventory.properties: invalid value `some` for `errors.tolerance`: expected `none`, `all`"
    );
    assert!(one_error(&[("errors.retry.timeout", "-2")]).contains("a whole number ≥ -1"));
    assert!(one_error(&[("errors.log.enable", "yes")]).contains("`true` or `false`"));
    // KIP-618's connector keys are typed (whether `required` can be met depends on the
    // worker: `standalone::pipeline_settings`).
    let c = config(&[
        ("exactly.once.support", "REQUIRED"),
        ("transaction.boundary", "Interval"),
        ("transaction.boundary.interval.ms", "250"),
    ])
    .unwrap();
    assert_eq!(c.exactly_once_support, super::ExactlyOnceSupport::Required);
    assert_eq!(c.transaction_boundary, super::TransactionBoundary::Interval);
    assert_eq!(
        c.transaction_boundary_interval,
        Some(std::time::Duration::from_millis(250))
    );
    let d = config(&[]).unwrap();
    assert_eq!(
        (
            d.exactly_once_support,
            d.transaction_boundary,
            d.transaction_boundary_interval
        ),
        (
            super::ExactlyOnceSupport::Requested,
            super::TransactionBoundary::Poll,
            None
        )
    );
    assert!(one_error(&[("exactly.once.support", "maybe")]).contains("`requested`, `required`"));
    let e = one_error(&[("transaction.boundary", "connector")]);
    assert!(
        e.starts_with("inventory.properties: `transaction.boundary=connector` is not supported: the connector does not support connector-defined transaction boundaries"),
        "{e}"
    );
    assert!(
        one_error(&[("transaction.boundary", "batch")]).contains("`poll`, `interval`, `connector`")
    );
    assert!(one_error(&[("transaction.boundary.interval.ms", "-1")]).contains("≥ 0"));
    // A typo still gets its suggestion.
    assert!(one_error(&[("errors.tolerence", "all")]).contains("did you mean `errors.tolerance`?"));
    assert!(one_error(&[("config.action.reload", "sometimes")]).contains("`none` or `restart`"));
}

#[test]
fn transforms_are_parsed_and_unknown_ones_rejected_by_name() {
    use pgseam_converters::transforms::{DeleteTombstoneHandling, Predicate, Transform};
    let c = config(&[
        ("transforms", "unwrap, route"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        (
            "transforms.unwrap.delete.tombstone.handling.mode",
            "REWRITE",
        ),
        ("transforms.unwrap.add.fields", "op,source.ts_ms,lsn:pos"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", "([^.]+)\\.public\\.(.*)"),
        ("transforms.route.replacement", "$1_$2"),
        ("transforms.route.predicate", "notTomb"),
        ("transforms.route.negate", "true"),
        ("predicates", "notTomb"),
        (
            "predicates.notTomb.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        ),
    ])
    .unwrap();
    let steps = &c.transforms.steps;
    assert_eq!(steps.len(), 2);
    let Transform::ExtractNewRecordState(u) = &steps[0].transform else {
        panic!("{steps:?}")
    };
    assert_eq!(u.delete_handling, DeleteTombstoneHandling::Rewrite);
    let names: Vec<&str> = u.add_fields.iter().map(|f| f.new_field.as_str()).collect();
    assert_eq!(names, ["__op", "__source_ts_ms", "__pos"]);
    assert_eq!(steps[1].predicate, Some(Predicate::RecordIsTombstone));
    assert!(steps[1].negate);

    let e = one_error(&[
        ("transforms", "flatten"),
        (
            "transforms.flatten.type",
            "org.apache.kafka.connect.transforms.Flatten$Value",
        ),
    ]);
    assert!(e.contains("transform `flatten`"), "{e}");
    assert!(
        e.contains("org.apache.kafka.connect.transforms.Flatten$Value"),
        "{e}"
    );
    let e = one_error(&[
        ("transforms", "unwrap"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        ("transforms.unwrap.delete.handling.mode", "rewrite"),
    ]);
    assert!(e.contains("delete.tombstone.handling.mode"), "{e}");
    let e = one_error(&[
        ("transforms", "route"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", "(a)"),
        ("transforms.route.replacement", "$2"),
    ]);
    assert!(e.contains("No group 2"), "{e}");
    let e = one_error(&[
        ("transforms", "unwrap"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        ("transforms.unwrap.delete.tombstone.handling.mode", "vanish"),
    ]);
    assert!(e.contains("rewrite-with-tombstone"), "{e}");
    // An empty list is fine.
    assert!(config(&[("transforms", " ")]).is_ok());
}

#[test]
fn connector_level_converters_override_the_worker() {
    let worker = WorkerConfig::from_map(
        [
            ("offset.storage.file.filename", "/tmp/o"),
            ("value.converter.schemas.enable", "true"),
        ],
        "worker.properties",
    )
    .unwrap();
    let c = config(&[
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ])
    .unwrap();
    let v = c.effective_value_converter(&worker);
    assert_eq!(v.kind, ConverterKind::Json);
    assert!(!v.schemas_enable);
    assert!(c.effective_key_converter(&worker).schemas_enable);
    assert_eq!(
        c.effective_header_converter(&worker),
        HeaderConverter::Simple
    );

    // Without the class, Connect ignores the connector's sub-keys and uses the worker's.
    let c = config(&[("value.converter.schemas.enable", "false")]).unwrap();
    assert_eq!(c.value_converter, None);
    assert!(c.effective_value_converter(&worker).schemas_enable);

    // The AvroConverter needs its registry.
    let e = one_error(&[("key.converter", "io.confluent.connect.avro.AvroConverter")]);
    assert!(e.contains("key.converter.schema.registry.url"), "{e}");
}

#[test]
fn avro_converter_keys() {
    let avro = "io.confluent.connect.avro.AvroConverter";
    let c = config(&[
        ("value.converter", avro),
        ("value.converter.schema.registry.url", "http://u:pw@r:8081/"),
        ("value.converter.ignore.default.for.nullables", "true"),
        (
            "value.converter.value.subject.name.strategy",
            "io.confluent.kafka.serializers.subject.TopicNameStrategy",
        ),
        ("value.converter.schemas.cache.config", "100"),
    ])
    .unwrap();
    let v = c.value_converter.clone().unwrap();
    assert_eq!(v.kind, ConverterKind::Avro);
    assert!(!v.replace_null_with_default);
    let r = v.registry.unwrap();
    assert_eq!(r.url, "http://r:8081/");
    let (user, password) = r.basic_auth.unwrap();
    assert_eq!((user.as_str(), password.expose()), ("u", "pw"));
    assert!(!format!("{:?}", c.value_converter).contains("pw"));

    let c = config(&[
        ("key.converter", "AvroConverter"),
        ("key.converter.schema.registry.url", "http://r:8081"),
        ("key.converter.basic.auth.credentials.source", "USER_INFO"),
        ("key.converter.basic.auth.user.info", "alice:s3cret"),
    ])
    .unwrap();
    let (user, _) = c
        .key_converter
        .unwrap()
        .registry
        .unwrap()
        .basic_auth
        .unwrap();
    assert_eq!(user, "alice");

    let base = [
        ("value.converter", avro),
        ("value.converter.schema.registry.url", "http://r:8081"),
    ];
    let with = |k: &'static str, v: &'static str| {
        let mut e = base.to_vec();
        e.push((k, v));
        one_error(&e)
    };
    let e = with("value.converter.auto.register.schemas", "false");
    assert!(
        e.contains("auto.register.schemas") && e.contains("true"),
        "{e}"
    );
    let e = with(
        "value.converter.value.subject.name.strategy",
        "RecordNameStrategy",
    );
    assert!(e.contains("TopicNameStrategy"), "{e}");
    let e = with("value.converter.schema.registry.ulr", "x");
    assert!(e.contains("schema.registry.ulr"), "{e}");
    let e = with(
        "value.converter.basic.auth.credentials.source",
        "SASL_INHERIT",
    );
    assert!(e.contains("USER_INFO"), "{e}");
    let e = one_error(&[(
        "value.converter",
        "io.confluent.connect.protobuf.ProtobufConverter",
    )]);
    assert!(e.contains("AvroConverter"), "{e}");
}

#[test]
fn typos_get_suggestions_and_all_are_reported() {
    let errs = errors(&[
        ("databse.hostname", "x"),
        ("slot.nmae", "s"),
        ("snapshot.mod", "initial"),
        ("totally.unknown.key", "1"),
        ("tombstones.on.delete", "maybe"),
    ]);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs.contains(
        &"inventory.properties: unknown connector property `databse.hostname` (did you mean `database.hostname`?)".to_owned()
    ));
    assert!(errs
        .iter()
        .any(|e| e.contains("`slot.nmae` (did you mean `slot.name`?)")));
    assert!(errs
        .iter()
        .any(|e| e.contains("`snapshot.mod` (did you mean `snapshot.mode`?)")));
    assert!(errs
        .iter()
        .any(|e| e.ends_with("unknown connector property `totally.unknown.key`")));
    assert!(errs.iter().any(|e| e.contains("`tombstones.on.delete`")));
    // A typo of a Debezium property pgseam does not implement still gets a suggestion.
    let e = one_error(&[("time.precision.mod", "adaptive")]);
    assert!(e.contains("did you mean `time.precision.mode`?"), "{e}");
    // Worker-level producer keys at connector level point at the override prefix.
    let e = one_error(&[("producer.acks", "all")]);
    assert!(e.contains("did you mean `producer.override.acks`?"), "{e}");
}

#[test]
fn worker_keys_in_connector_file() {
    let e = one_error(&[("bootstrap.servers", "k:9092")]);
    assert_eq!(
        e,
        "inventory.properties: `bootstrap.servers` is a worker property, not a connector property; move it to the worker configuration"
    );
    assert!(one_error(&[("offset.storage.file.filename", "/x")]).contains("worker property"));
}

// ---- files ----

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const WORKER: &str = "\
# Kafka Connect standalone worker
bootstrap.servers=localhost:9092
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=/tmp/connect.offsets
offset.flush.interval.ms=10000
plugin.path=/usr/share/java
";

const CONNECTOR_PROPERTIES: &str = "\
name=inventory-connector
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=postgres
database.port=5432
database.user=postgres
database.password=postgres
database.dbname=postgres
topic.prefix=dbserver1
plugin.name=pgoutput
table.include.list=inventory\\\\..*,\\
    public.orders
";

const CONNECTOR_JSON: &str = r#"{
  "name": "orders-connector",
  "config": {
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "tasks.max": 1,
    "database.hostname": "postgres",
    "database.port": 5432,
    "database.user": "postgres",
    "database.password": "postgres",
    "database.dbname": "orders",
    "topic.prefix": "orders",
    "plugin.name": "pgoutput",
    "slot.name": "orders",
    "tombstones.on.delete": false
  }
}"#;

#[test]
fn load_standalone_with_properties_and_json_connectors() {
    let dir = tempfile::tempdir().unwrap();
    let w = write(&dir, "worker.properties", WORKER);
    let c1 = write(&dir, "inventory.properties", CONNECTOR_PROPERTIES);
    let c2 = write(&dir, "orders.json", CONNECTOR_JSON);
    let (worker, connectors) = load_standalone(&w, &[c1, c2]).unwrap();
    assert_eq!(
        worker.offset_storage_file_filename,
        PathBuf::from("/tmp/connect.offsets")
    );
    assert_eq!(connectors.len(), 2);
    let inv = &connectors[0];
    assert_eq!(inv.name, "inventory-connector");
    assert!(inv.table_filter.includes("inventory", "customers"));
    assert!(inv.table_filter.includes("public", "orders"));
    assert!(!inv.table_filter.includes("public", "customers"));
    let orders = &connectors[1];
    assert_eq!(orders.name, "orders-connector");
    assert_eq!(orders.database_port, 5432);
    assert_eq!(orders.slot_name, "orders");
    assert!(!orders.tombstones_on_delete);
}

#[test]
fn bare_json_config_needs_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(
        &dir,
        "c.json",
        r#"{"name": "bare", "connector.class": "PostgresConnector", "database.hostname": "h",
            "database.user": "u", "database.dbname": "d", "topic.prefix": "t"}"#,
    );
    assert_eq!(load_connector_file(&c).unwrap().name, "bare");
    let c = write(
        &dir,
        "c2.json",
        r#"{"connector.class": "PostgresConnector"}"#,
    );
    let e = load_connector_file(&c).unwrap_err().to_string();
    assert!(
        e.contains("c2.json: missing required connector property `name`"),
        "{e}"
    );
}

#[test]
fn json_outer_and_inner_names_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(&dir, "c.json", r#"{"name": "a", "config": {"name": "b"}}"#);
    let e = load_connector_file(&c).unwrap_err().to_string();
    assert!(e.contains("`a` does not match `config.name` `b`"), "{e}");
}

#[test]
fn errors_across_files_are_collected_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let w = write(
        &dir,
        "worker.properties",
        "bootstrap.servers=k:9092\nkey.convertor=x\n",
    );
    let c1 = write(
        &dir,
        "a.properties",
        "name=a\nconnector.class=PostgresConnector\ndatabase.hostname=h\ndatabse.user=u\n\
         database.dbname=d\ntopic.prefix=t\nplugin.name=decoderbufs\n",
    );
    let c2 = write(&dir, "b.json", "{\"name\": ");
    let errs = load_standalone(&w, &[c1, c2]).unwrap_err();
    let text = errs.to_string();
    let wp = dir.path().join("worker.properties").display().to_string();
    let ap = dir.path().join("a.properties").display().to_string();
    let bp = dir.path().join("b.json").display().to_string();
    assert!(
        text.starts_with("invalid configuration (6 problems):\n  - "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{wp}: missing required worker property `offset.storage.file.filename`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{wp}:2: unknown worker property `key.convertor` (did you mean `key.converter`?)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{ap}:4: unknown connector property `databse.user` (did you mean `database.user`?)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{ap}: missing required connector property `database.user`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{ap}:7: `plugin.name=decoderbufs` is not supported"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{bp}:1: invalid JSON")), "{text}");
}

#[test]
fn duplicate_connector_names() {
    let dir = tempfile::tempdir().unwrap();
    let w = write(&dir, "worker.properties", WORKER);
    let c1 = write(&dir, "a.json", CONNECTOR_JSON);
    let c2 = write(&dir, "b.json", CONNECTOR_JSON);
    let e = load_standalone(&w, &[c1, c2]).unwrap_err();
    assert_eq!(e.len(), 1);
    let msg = e.to_string();
    assert!(
        msg.contains("connector name `orders-connector` is used by both"),
        "{msg}"
    );
    assert!(msg.contains("a.json") && msg.contains("b.json"), "{msg}");
}

#[test]
fn unreadable_file_and_json_worker() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.properties");
    let e = load_worker_file(&missing).unwrap_err().to_string();
    assert!(
        e.contains("cannot read") && e.contains("nope.properties"),
        "{e}"
    );
    let w = write(&dir, "w.json", "{}");
    let e = load_worker_file(&w).unwrap_err().to_string();
    assert!(e.contains("must be a Java properties file"), "{e}");
}

#[test]
fn latin1_properties_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.properties");
    let mut bytes = b"name=caf".to_vec();
    bytes.push(0xE9); // 'é' in ISO-8859-1
    bytes.extend_from_slice(b"\nconnector.class=PostgresConnector\ndatabase.hostname=h\ndatabase.user=u\ndatabase.dbname=d\ntopic.prefix=t\n");
    std::fs::write(&p, bytes).unwrap();
    assert_eq!(load_connector_file(&p).unwrap().name, "café");
}

#[test]
fn two_connectors_cannot_share_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let w = write(&dir, "worker.properties", WORKER);
    let c1 = write(&dir, "a.json", CONNECTOR_JSON);
    let c2 = write(
        &dir,
        "b.json",
        &CONNECTOR_JSON.replace("orders-connector", "other"),
    );
    let e = load_standalone(&w, &[c1, c2]).unwrap_err().to_string();
    assert!(
        e.contains("replication slot `orders` on postgres:5432/orders is already used"),
        "{e}"
    );
}

#[test]
fn type_handling_modes() {
    let c = config(&[]).unwrap();
    assert_eq!(c.time_precision_mode, TimePrecisionMode::Adaptive);
    assert_eq!(c.binary_handling_mode, BinaryHandlingMode::Bytes);
    assert_eq!(c.hstore_handling_mode, HstoreHandlingMode::Json);
    assert_eq!(c.interval_handling_mode, IntervalHandlingMode::Numeric);
    assert_eq!(c.money_fraction_digits, DEFAULT_MONEY_FRACTION_DIGITS);
    assert!(!c.include_unknown_datatypes);
    let c = config(&[
        ("time.precision.mode", "ISOSTRING"),
        ("binary.handling.mode", "base64-url-safe"),
        ("hstore.handling.mode", "map"),
        ("interval.handling.mode", "string"),
        ("money.fraction.digits", "4"),
        ("include.unknown.datatypes", "true"),
    ])
    .unwrap();
    assert_eq!(c.time_precision_mode, TimePrecisionMode::IsoString);
    assert_eq!(c.binary_handling_mode, BinaryHandlingMode::Base64UrlSafe);
    assert_eq!(c.hstore_handling_mode, HstoreHandlingMode::Map);
    assert_eq!(c.interval_handling_mode, IntervalHandlingMode::String);
    assert_eq!(c.money_fraction_digits, 4);
    assert!(c.include_unknown_datatypes);
    let e = one_error(&[("time.precision.mode", "millis")]);
    assert!(
        e.contains("`time.precision.mode`") && e.contains("`nanoseconds`"),
        "{e}"
    );
    let e = one_error(&[("money.fraction.digits", "-1")]);
    assert!(e.contains("`money.fraction.digits`"), "{e}");
}

#[test]
fn tls_slot_and_retry_keys() {
    let c = config(&[]).unwrap();
    assert_eq!(c.database_sslmode, DatabaseSslMode::Prefer);
    assert_eq!(c.database_sslrootcert, None);
    assert_eq!(c.slot_max_retries, 6);
    assert_eq!(c.slot_retry_delay, Duration::from_secs(10));
    assert_eq!(c.retriable_restart_wait, Duration::from_secs(10));
    let c = config(&[
        ("database.sslmode", "VERIFY-FULL"),
        ("database.sslrootcert", " /etc/ca.pem "),
        ("database.sslcert", "/etc/client.pem"),
        ("database.sslkey", "/etc/client.pk8"),
        ("database.sslpassword", "key-secret"),
        ("slot.max.retries", "0"),
        ("slot.retry.delay.ms", "250"),
        ("retriable.restart.connector.wait.ms", "1000"),
    ])
    .unwrap();
    assert_eq!(c.database_sslmode, DatabaseSslMode::VerifyFull);
    assert_eq!(
        c.database_sslrootcert.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(
        c.database_sslkey.as_deref(),
        Some(std::path::Path::new("/etc/client.pk8"))
    );
    assert_eq!(
        c.database_sslpassword.as_ref().map(|s| s.expose()),
        Some("key-secret")
    );
    assert!(!format!("{c:?}").contains("key-secret"));
    assert_eq!(c.slot_max_retries, 0);
    assert_eq!(c.slot_retry_delay, Duration::from_millis(250));
    assert_eq!(c.retriable_restart_wait, Duration::from_secs(1));
    let e = one_error(&[("database.sslmode", "verify_full")]);
    assert!(
        e.contains("`database.sslmode`") && e.contains("`verify-full`"),
        "{e}"
    );
    let e = one_error(&[("slot.max.retries", "-1")]);
    assert!(e.contains("`slot.max.retries`"), "{e}");
}

#[test]
fn heartbeat_keys() {
    let c = config(&[]).unwrap();
    assert_eq!(c.heartbeat_interval, None);
    assert_eq!(c.heartbeat_action_query, None);
    assert_eq!(c.heartbeat_topics_prefix, "__debezium-heartbeat");
    let c = config(&[
        ("heartbeat.interval.ms", "5000"),
        ("heartbeat.action.query", " UPDATE hb SET ts = now() "),
        ("heartbeat.topics.prefix", "beats"),
    ])
    .unwrap();
    assert_eq!(c.heartbeat_interval, Some(Duration::from_secs(5)));
    assert_eq!(
        c.heartbeat_action_query.as_deref(),
        Some("UPDATE hb SET ts = now()")
    );
    assert_eq!(c.heartbeat_topics_prefix, "beats");
    let e = one_error(&[("heartbeat.topics.prefix", "bad prefix")]);
    assert!(e.contains("`heartbeat.topics.prefix`"), "{e}");
}

#[test]
fn snapshot_engine_keys() {
    let c = config(&[]).unwrap();
    assert_eq!(c.snapshot_chunk_rows, DEFAULT_SNAPSHOT_CHUNK_ROWS);
    assert_eq!(c.snapshot_chunk_strategy, SnapshotChunkStrategy::Auto);
    assert!(c.snapshot_select_overrides.is_empty() && c.snapshot_include.is_none());
    let c = config(&[
        ("snapshot.chunk.rows", "5000"),
        ("snapshot.chunk.strategy", "KEY"),
        ("snapshot.select.statement.overrides", "public.orders, s.t"),
        (
            "snapshot.select.statement.overrides.public.orders",
            "SELECT * FROM public.orders WHERE id > 10",
        ),
        (
            "snapshot.select.statement.overrides.s.t",
            "SELECT * FROM s.t",
        ),
        ("snapshot.include.collection.list", "public\\.ord.*"),
    ])
    .unwrap();
    assert_eq!(c.snapshot_chunk_rows, 5000);
    assert_eq!(c.snapshot_chunk_strategy, SnapshotChunkStrategy::Key);
    assert_eq!(
        c.snapshot_select_overrides
            .get("public.orders")
            .map(String::as_str),
        Some("SELECT * FROM public.orders WHERE id > 10")
    );
    assert_eq!(c.snapshot_select_overrides.len(), 2);
    let include = c.snapshot_include.unwrap();
    assert!(include.iter().any(|r| r.is_match("PUBLIC.orders")));
    assert!(!include.iter().any(|r| r.is_match("other.orders")));
    let e = one_error(&[("snapshot.select.statement.overrides", "public.orders")]);
    assert!(
        e.contains("snapshot.select.statement.overrides.public.orders"),
        "{e}"
    );
    let e = one_error(&[("snapshot.select.statement.overrides.public.x", "SELECT 1")]);
    assert!(e.contains("not listed"), "{e}");
    let e = one_error(&[("snapshot.chunk.strategy", "random")]);
    assert!(e.contains("snapshot.chunk.strategy"), "{e}");
}

#[test]
fn chunk_strategy_overrides() {
    assert!(config(&[])
        .unwrap()
        .snapshot_chunk_strategy_overrides
        .is_empty());
    let c = config(&[(
        "pgseam.snapshot.chunk.strategy.overrides",
        " public.orders:KEY, sales.events : ctid,public.t:whole ",
    )])
    .unwrap();
    let got: Vec<(&str, SnapshotChunkStrategy)> = c
        .snapshot_chunk_strategy_overrides
        .iter()
        .map(|(t, s)| (t.as_str(), *s))
        .collect();
    assert_eq!(
        got,
        vec![
            ("public.orders", SnapshotChunkStrategy::Key),
            ("public.t", SnapshotChunkStrategy::Whole),
            ("sales.events", SnapshotChunkStrategy::Ctid),
        ]
    );
    for bad in [
        "public.orders",
        "orders:key",
        "public.orders:random",
        ".x:key",
    ] {
        let e = one_error(&[("pgseam.snapshot.chunk.strategy.overrides", bad)]);
        assert!(
            e.contains("pgseam.snapshot.chunk.strategy.overrides") && e.contains(bad.trim()),
            "{bad}: {e}"
        );
    }
    let e = one_error(&[(
        "pgseam.snapshot.chunk.strategy.overrides",
        "public.a:key,public.a:ctid",
    )]);
    assert!(e.contains("named twice"), "{e}");
}

#[test]
fn notification_keys() {
    use crate::config::NotificationChannels;
    let c = config(&[]).unwrap();
    assert_eq!(c.notifications, NotificationChannels::default());
    assert!(!c.notifications.any());
    let c = config(&[
        ("notification.enabled.channels", " sink , log "),
        ("notification.sink.topic.name", "dbz.notifications"),
    ])
    .unwrap();
    assert_eq!(
        c.notifications,
        NotificationChannels {
            log: true,
            sink_topic: Some("dbz.notifications".to_owned())
        }
    );
    // The topic is ignored while `sink` is off, as Debezium ignores it.
    let c = config(&[
        ("notification.enabled.channels", "log"),
        ("notification.sink.topic.name", "t"),
    ])
    .unwrap();
    assert_eq!(c.notifications.sink_topic, None);
    let e = one_error(&[("notification.enabled.channels", "sink")]);
    assert!(
        e.contains("notification.sink.topic.name") && e.contains("must be provided"),
        "{e}"
    );
    let e = one_error(&[("notification.enabled.channels", "log,jmx")]);
    assert!(
        e.contains("`jmx` is not supported") && e.contains("/metrics"),
        "{e}"
    );
    let e = one_error(&[("notification.enabled.channels", "carrier-pigeon")]);
    assert!(e.contains("`carrier-pigeon`"), "{e}");
    let e = one_error(&[
        ("notification.enabled.channels", "sink"),
        ("notification.sink.topic.name", "bad topic"),
    ]);
    assert!(e.contains("notification.sink.topic.name"), "{e}");
}

#[test]
fn signal_keys() {
    let c = config(&[]).unwrap();
    assert_eq!(c.signal_data_collection, None);
    assert_eq!(c.incremental_snapshot_chunk_size, 1024);
    let c = config(&[
        ("signal.data.collection", "public.dbz_signal"),
        ("signal.enabled.channels", "source"),
        ("incremental.snapshot.chunk.size", "500"),
    ])
    .unwrap();
    assert_eq!(
        c.signal_data_collection,
        Some(("public".to_owned(), "dbz_signal".to_owned()))
    );
    assert_eq!(c.incremental_snapshot_chunk_size, 500);
    let e = one_error(&[("signal.enabled.channels", "source,jmx")]);
    assert!(
        e.contains("`signal.enabled.channels`") && e.contains("`jmx` is not supported"),
        "{e}"
    );
    // Watermarks: pgseam's logical messages unless Debezium's strategy is asked for.
    use pgseam_connector_pg::snapshot::WatermarkStrategy;
    assert_eq!(
        c.incremental_snapshot_watermarking,
        WatermarkStrategy::Message
    );
    let signalled = [
        ("signal.data.collection", "public.dbz_signal"),
        ("signal.enabled.channels", "source"),
    ];
    for (value, strategy) in [
        ("insert_insert", WatermarkStrategy::InsertInsert),
        (" INSERT_DELETE ", WatermarkStrategy::InsertDelete),
    ] {
        let mut keys = signalled.to_vec();
        keys.push(("incremental.snapshot.watermarking.strategy", value));
        assert_eq!(
            config(&keys).unwrap().incremental_snapshot_watermarking,
            strategy
        );
    }
    let mut keys = signalled.to_vec();
    keys.push((
        "incremental.snapshot.watermarking.strategy",
        "insert_update",
    ));
    let e = one_error(&keys);
    assert!(e.contains("`insert_insert` or `insert_delete`"), "{e}");
    let e = one_error(&[(
        "incremental.snapshot.watermarking.strategy",
        "insert_insert",
    )]);
    assert!(e.contains("without signal.data.collection"), "{e}");
    let e = one_error(&[("signal.enabled.channels", "source,jmx")]);
    assert!(
        e.contains("`signal.enabled.channels`") && e.contains("`jmx` is not supported"),
        "{e}"
    );
    let e = one_error(&[("signal.enabled.channels", "source,kafka")]);
    assert!(
        e.contains("signal.kafka.bootstrap.servers") && e.contains("missing"),
        "{e}"
    );
    let c = config(&[
        ("signal.enabled.channels", "source,kafka,file"),
        ("signal.kafka.bootstrap.servers", "k:9092"),
        ("signal.consumer.security.protocol", "SSL"),
        ("signal.poll.interval.ms", "250"),
    ])
    .unwrap();
    let kafka = c.signal_kafka.expect("kafka channel");
    assert_eq!(kafka.topic, format!("{}-signal", c.topic_prefix));
    assert_eq!(kafka.group_id, "kafka-signal");
    assert_eq!(kafka.bootstrap_servers, "k:9092");
    assert_eq!(
        kafka.consumer.get("security.protocol").map(String::as_str),
        Some("SSL")
    );
    assert_eq!(
        c.signal_file,
        Some(std::path::PathBuf::from("file-signals.txt"))
    );
    assert_eq!(
        c.signal_poll_interval,
        std::time::Duration::from_millis(250)
    );
    // Without `source`, the signaling table has no channel.
    let e = one_error(&[
        ("signal.enabled.channels", "kafka"),
        ("signal.kafka.bootstrap.servers", "k:9092"),
        ("signal.data.collection", "public.s"),
    ]);
    assert!(e.contains("signal.data.collection"), "{e}");
    // The channels' keys are ignored while they are off, as Debezium ignores them.
    let c = config(&[("signal.kafka.topic", "t"), ("signal.file", "f")]).unwrap();
    assert_eq!((c.signal_kafka, c.signal_file), (None, None));
    let e = one_error(&[("signal.data.collection", "dbz_signal")]);
    assert!(e.contains("`signal.data.collection`"), "{e}");
    let e = one_error(&[("incremental.snapshot.chunk.size", "0")]);
    assert!(e.contains("incremental.snapshot.chunk.size"), "{e}");
}

#[test]
fn transaction_metadata_and_message_prefix_keys() {
    let c = config(&[]).unwrap();
    assert!(!c.provide_transaction_metadata);
    assert_eq!(c.topic_transaction, "transaction");
    assert!(c.message_prefix_filter.is_none());
    let c = config(&[
        ("provide.transaction.metadata", "true"),
        ("topic.transaction", "tx"),
        ("message.prefix.include.list", "audit\\..*, Outbox"),
    ])
    .unwrap();
    assert!(c.provide_transaction_metadata);
    assert_eq!(c.topic_transaction, "tx");
    let f = c.message_prefix_filter.unwrap();
    assert!(f.allows("audit.x") && f.allows("outbox"));
    assert!(!f.allows("auditx") && !f.allows("outbox2"));
    let f = config(&[("message.prefix.exclude.list", "noise")])
        .unwrap()
        .message_prefix_filter
        .unwrap();
    assert!(!f.allows("NOISE") && f.allows("signal"));
    assert!(one_error(&[
        ("message.prefix.include.list", "a"),
        ("message.prefix.exclude.list", "b")
    ])
    .contains("cannot both be set"));
    assert!(
        one_error(&[("message.prefix.include.list", "(")]).contains("message.prefix.include.list")
    );
    assert!(one_error(&[("topic.transaction", "a b")]).contains("`topic.transaction`"));
}

#[test]
fn snapshot_throttle_and_progress_keys() {
    let c = config(&[]).unwrap();
    assert_eq!(c.snapshot_throttle_rows_per_second, None);
    assert_eq!(c.snapshot_throttle_bytes_per_second, None);
    assert_eq!(c.snapshot_throttle_chunk_pause, Duration::ZERO);
    assert_eq!(
        c.snapshot_progress_interval,
        DEFAULT_SNAPSHOT_PROGRESS_INTERVAL
    );
    let c = config(&[
        ("snapshot.throttle.rows.per.second", "5000"),
        ("snapshot.throttle.bytes.per.second", "10485760"),
        ("snapshot.throttle.chunk.pause.ms", "250"),
        ("snapshot.progress.interval.ms", "1000"),
    ])
    .unwrap();
    assert_eq!(c.snapshot_throttle_rows_per_second, Some(5000));
    assert_eq!(c.snapshot_throttle_bytes_per_second, Some(10 << 20));
    assert_eq!(c.snapshot_throttle_chunk_pause, Duration::from_millis(250));
    assert_eq!(c.snapshot_progress_interval, Duration::from_secs(1));
    // 0 is "no limit", as the default.
    let c = config(&[("snapshot.throttle.rows.per.second", "0")]).unwrap();
    assert_eq!(c.snapshot_throttle_rows_per_second, None);
    for (key, value) in [
        ("snapshot.throttle.rows.per.second", "-1"),
        ("snapshot.throttle.rows.per.second", "5k"),
        ("snapshot.throttle.bytes.per.second", "1.5"),
        ("snapshot.throttle.chunk.pause.ms", "86400001"),
        ("snapshot.progress.interval.ms", "50"),
    ] {
        let e = one_error(&[(key, value)]);
        assert!(
            e.contains(&format!("`{key}`")) && e.contains("an integer from"),
            "{e}"
        );
    }
    let e = one_error(&[("snapshot.throttle.row.per.second", "10")]);
    assert!(e.contains("snapshot.throttle.rows.per.second"), "{e}");
}

#[test]
fn position_headers_switch() {
    assert!(config(&[]).unwrap().position_headers);
    assert_eq!(
        config(&[]).unwrap().position_headers,
        DEFAULT_POSITION_HEADERS
    );
    assert!(
        !config(&[("pgseam.position.headers", "false")])
            .unwrap()
            .position_headers
    );
    assert!(
        config(&[("pgseam.position.headers", "TRUE")])
            .unwrap()
            .position_headers
    );
    let e = one_error(&[("pgseam.position.headers", "off")]);
    assert!(e.contains("`pgseam.position.headers`"), "{e}");
}

#[test]
fn array_fix_modes() {
    use pgseam_converters::{MultidimensionalArrayMode, UnavailableArrayMode};
    let c = config(&[]).unwrap();
    assert_eq!(
        c.multidimensional_array_mode,
        MultidimensionalArrayMode::Debezium
    );
    assert_eq!(c.unavailable_array_mode, UnavailableArrayMode::Debezium);
    let c = config(&[
        ("pgseam.array.multidimensional.mode", " Nested "),
        ("pgseam.unavailable.array.mode", "null"),
    ])
    .unwrap();
    assert_eq!(
        c.multidimensional_array_mode,
        MultidimensionalArrayMode::Nested
    );
    assert_eq!(c.unavailable_array_mode, UnavailableArrayMode::Null);
    let e = one_error(&[("pgseam.array.multidimensional.mode", "flat")]);
    assert!(
        e.contains("`pgseam.array.multidimensional.mode`")
            && e.contains("`debezium`")
            && e.contains("`nested`"),
        "{e}"
    );
    let e = one_error(&[("pgseam.unavailable.array.mode", "placeholder")]);
    assert!(
        e.contains("`pgseam.unavailable.array.mode`") && e.contains("`null`"),
        "{e}"
    );
}

#[test]
fn column_shaping_keys() {
    use pgseam_converters::columns::{ColumnFilter, ColumnMapper, HashAlgorithm};
    let c = config(&[
        ("column.exclude.list", "public.cust.extra,.*\\.secret"),
        ("column.truncate.to.3.chars", "public.cust.name"),
        ("column.mask.with.5.chars", "public.cust.ssn"),
        ("datatype.propagate.source.type", ".+\\.varchar"),
        ("column.propagate.source.type", "public.cust.id"),
        ("column.mask.hash.v2.MD5.with.salt.s2", "public.o.c"),
        (
            "column.mask.hash.SHA-256.with.salt.pepper",
            "public.cust.bio",
        ),
        (
            "message.key.columns",
            "public.orders:cust_id,region;public.nokey:a",
        ),
    ])
    .unwrap();
    let cols = &c.columns;
    match &cols.filter {
        Some(ColumnFilter::Exclude(p)) => assert_eq!(p.len(), 2),
        other => panic!("{other:?}"),
    }
    // Debezium's priority: truncate, mask, propagate by column, by data type, hash, hash v2.
    let mappers: Vec<&ColumnMapper> = cols.mappers.iter().map(|r| &r.mapper).collect();
    assert_eq!(
        mappers,
        vec![
            &ColumnMapper::Truncate(3),
            &ColumnMapper::Mask(5),
            &ColumnMapper::PropagateSourceType { by_datatype: false },
            &ColumnMapper::PropagateSourceType { by_datatype: true },
            &ColumnMapper::Hash {
                algorithm: HashAlgorithm::Sha256,
                salt: "pepper".into(),
                v2: false
            },
            &ColumnMapper::Hash {
                algorithm: HashAlgorithm::Md5,
                salt: "s2".into(),
                v2: true
            },
        ]
    );
    assert_eq!(cols.key_columns.len(), 3);
    assert!(cols.key_columns[0][0].is_match("PUBLIC.orders.CUST_ID"));
    assert!(!cols.key_columns[0][0].is_match("public.orders.cust_id2"));

    let e = one_error(&[
        ("column.include.list", "public.a.b"),
        ("column.exclude.list", "public.a.c"),
    ]);
    assert!(e.contains("cannot both be set"), "{e}");
    let e = one_error(&[("column.mask.hash.SHA-1.with.salt.x", "public.a.b")]);
    assert!(e.contains("`SHA-1` is not one"), "{e}");
    let e = one_error(&[("message.key.columns", "public.orders")]);
    assert!(e.contains("message.key.columns"), "{e}");
    let e = one_error(&[("column.truncate.to.x.chars", "public.a.b")]);
    assert!(e.contains("unknown connector property"), "{e}");
    assert!(cols.mappers[3].patterns[0].is_match("public.T.VARCHAR"));
    let e = one_error(&[("datatype.propagate.source.type", ".+\\.(?=x)")]);
    assert!(e.contains("datatype.propagate.source.type"), "{e}");
    let e = one_error(&[("column.exclude.list", "public.(a")]);
    assert!(e.contains("`public.(a` is invalid"), "{e}");
    // Empty values are unset.
    assert!(
        config(&[("column.include.list", " "), ("message.key.columns", "")])
            .unwrap()
            .columns
            .is_empty()
    );
}

#[test]
fn naming_keys() {
    use pgseam_converters::naming::NameAdjustment;
    let c = config(&[]).unwrap();
    assert_eq!(c.naming, pgseam_converters::naming::Naming::default());
    let c = config(&[
        ("topic.delimiter", "_"),
        ("schema.name.adjustment.mode", "AVRO"),
        ("field.name.adjustment.mode", "avro_unicode"),
    ])
    .unwrap();
    assert_eq!(c.naming.delimiter, "_");
    assert_eq!(c.naming.schema_names, NameAdjustment::Avro);
    assert_eq!(c.naming.field_names, NameAdjustment::AvroUnicode);
    let e = one_error(&[("field.name.adjustment.mode", "ascii")]);
    assert!(e.contains("`avro_unicode`"), "{e}");
}
