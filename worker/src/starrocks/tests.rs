//! Tests of the generated SQL: the type mapping of every PostgreSQL type pgseam converts, key
//! ordering, and the consistency of jsonpaths with the COLUMNS list.

use std::sync::Arc;

use pgseam_model::{ColumnSchema, TableSchema};

use super::*;

fn column(name: &str, type_name: &str, type_modifier: i32, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_oid: 0,
        type_name: type_name.into(),
        base_type_oid: 0,
        type_modifier,
        nullable,
        default_expr: None,
        enum_values: None,
        dimensions: 0,
    }
}

/// `numeric(p,s)`'s atttypmod.
fn numeric_mod(p: i32, s: i32) -> i32 {
    ((p << 16) | s) + 4
}

/// A table with every type, its primary key declared last to check key-first ordering.
fn all_types() -> CapturedTable {
    let mut mood = column("c_enum", "mood", -1, true);
    mood.enum_values = Some(vec!["sad".into(), "ok".into(), "happy".into()]);
    let columns = vec![
        column("c_int2", "int2", -1, true),
        column("c_int4", "int4", -1, true),
        column("c_int8", "int8", -1, false),
        column("c_num", "numeric", numeric_mod(10, 2), true),
        column("c_num_big", "numeric", numeric_mod(50, 5), true),
        column("c_num_u", "numeric", -1, true),
        column("c_real", "float4", -1, true),
        column("c_double", "float8", -1, true),
        column("c_bool", "bool", -1, true),
        column("c_text", "text", -1, false),
        column("c_varchar", "varchar", 20 + 4, true),
        column("c_varchar_u", "varchar", -1, true),
        column("c_char", "bpchar", 3 + 4, true),
        column("c_bytea", "bytea", -1, true),
        column("c_date", "date", -1, true),
        column("c_time", "time", -1, true),
        column("c_time3", "time", 3, true),
        column("c_timetz", "timetz", -1, true),
        column("c_ts", "timestamp", -1, true),
        column("c_ts3", "timestamp", 3, true),
        column("c_tstz", "timestamptz", -1, true),
        column("c_interval", "interval", -1, true),
        column("c_uuid", "uuid", -1, true),
        column("c_json", "json", -1, true),
        column("c_jsonb", "jsonb", -1, true),
        column("c_int4_arr", "_int4", -1, true),
        column("c_text_arr", "_text", -1, true),
        column("c_uuid_arr", "_uuid", -1, true),
        mood,
        column("c_inet", "inet", -1, true),
        column("c_money", "money", -1, true),
        column("c_xml", "xml", -1, true),
        column("c_point", "point", -1, true),
        column("c_hstore", "hstore", -1, true),
        column("c_tsvector", "tsvector", -1, true),
        column("id", "int4", -1, false),
        column("region", "text", -1, false),
    ];
    CapturedTable {
        schema: Arc::new(TableSchema {
            relation_id: 1,
            schema: "public".into(),
            table: "all_types".into(),
            key_columns: vec![35, 36],
            columns,
        }),
        replica_identity: 'd',
    }
}

fn settings(format: Format) -> Settings {
    Settings {
        database: "shop".into(),
        topic_prefix: "shop".into(),
        bootstrap_servers: "kafka:9092".into(),
        decimal_mode: DecimalHandlingMode::String,
        time_mode: TimePrecisionMode::Adaptive,
        value_schemas_enable: false,
        tombstones_on_delete: false,
        nested_arrays: false,
        format,
        replication_num: Some(1),
    }
}

/// The column definitions of the CREATE TABLE, as (name, type-and-nullability).
fn table_columns(sql: &str) -> Vec<(String, String)> {
    let start = sql.find("CREATE TABLE").expect("CREATE TABLE");
    let body = &sql[start..];
    let end = body.find("\n)").expect("end of column list");
    body[..end]
        .lines()
        .skip(1)
        .map(|line| {
            let line = line.trim();
            let name_end = line[1..].find('`').unwrap() + 2;
            let rest = &line[name_end + 1..];
            let ty = rest.split(" COMMENT").next().unwrap();
            (line[1..name_end - 1].to_owned(), ty.to_owned())
        })
        .collect()
}

#[test]
fn nested_arrays_nest_as_declared() {
    let mut table = all_types();
    let schema = Arc::make_mut(&mut table.schema);
    let arr = schema
        .columns
        .iter_mut()
        .find(|c| c.name == "c_int4_arr")
        .unwrap();
    arr.dimensions = 2;
    let sql = render(&settings(Format::Jsonpaths), &[table.clone()]).unwrap();
    assert_eq!(column_type(&sql, "c_int4_arr"), "ARRAY<INT> NULL");
    let nested = Settings {
        nested_arrays: true,
        ..settings(Format::Jsonpaths)
    };
    let sql = render(&nested, &[table]).unwrap();
    assert_eq!(column_type(&sql, "c_int4_arr"), "ARRAY<ARRAY<INT>> NULL");
    assert_eq!(column_type(&sql, "c_text_arr"), "ARRAY<STRING> NULL");
}

fn column_type(sql: &str, name: &str) -> String {
    table_columns(sql)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
}

#[test]
fn maps_every_type_with_precision() {
    let sql = render(&settings(Format::Jsonpaths), &[all_types()]).unwrap();
    let expected = [
        ("id", "INT NOT NULL"),
        ("region", "VARCHAR(128) NOT NULL"),
        ("c_int2", "SMALLINT NULL"),
        ("c_int4", "INT NULL"),
        ("c_int8", "BIGINT NULL"),
        ("c_num", "DECIMAL(10,2) NULL"),
        ("c_num_big", "STRING NULL"),
        ("c_num_u", "STRING NULL"),
        ("c_real", "FLOAT NULL"),
        ("c_double", "DOUBLE NULL"),
        ("c_bool", "BOOLEAN NULL"),
        ("c_text", "STRING NULL"),
        ("c_varchar", "VARCHAR(80) NULL"),
        ("c_varchar_u", "STRING NULL"),
        ("c_char", "VARCHAR(12) NULL"),
        ("c_bytea", "STRING NULL"),
        ("c_date", "DATE NULL"),
        ("c_time", "BIGINT NULL"),
        ("c_time3", "BIGINT NULL"),
        ("c_timetz", "STRING NULL"),
        ("c_ts", "DATETIME NULL"),
        ("c_ts3", "DATETIME NULL"),
        ("c_tstz", "DATETIME NULL"),
        ("c_interval", "BIGINT NULL"),
        ("c_uuid", "VARCHAR(36) NULL"),
        ("c_json", "JSON NULL"),
        ("c_jsonb", "JSON NULL"),
        ("c_int4_arr", "ARRAY<INT> NULL"),
        ("c_text_arr", "ARRAY<STRING> NULL"),
        ("c_uuid_arr", "JSON NULL"),
        ("c_enum", "VARCHAR(63) NULL"),
        ("c_inet", "STRING NULL"),
        ("c_money", "DECIMAL(19,2) NULL"),
        ("c_xml", "STRING NULL"),
        ("c_point", "JSON NULL"),
        ("c_hstore", "JSON NULL"),
        ("c_tsvector", "STRING NULL"),
        (LSN_COLUMN, "BIGINT NULL"),
    ];
    let actual = table_columns(&sql);
    let actual: Vec<(&str, &str)> = actual
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(actual, expected, "\n{sql}");
    assert!(sql.contains("PRIMARY KEY (`id`, `region`)\nDISTRIBUTED BY HASH(`id`, `region`)"));
    assert!(sql.contains("PROPERTIES (\"replication_num\" = \"1\");"));
    // Comments keep what StarRocks cannot say.
    assert!(sql.contains("PostgreSQL time; microseconds after midnight"));
    assert!(sql.contains("PostgreSQL time(3); milliseconds after midnight"));
    assert!(sql.contains("PostgreSQL timestamptz; UTC"));
    assert!(sql.contains("PostgreSQL int8 NOT NULL"));
}

#[test]
fn varchar_lengths_are_bytes_and_capped() {
    let s = settings(Format::Jsonpaths);
    let wide = column("w", "varchar", 10_485_760 + 4, true);
    assert_eq!(
        map_type(&wide, false, &s).unwrap().sr_type,
        "VARCHAR(1048576)"
    );
    let narrow = column("n", "varchar", 1 + 4, true);
    assert_eq!(map_type(&narrow, false, &s).unwrap().sr_type, "VARCHAR(4)");
}

#[test]
fn decimal_modes_and_time_modes_change_the_mapping() {
    let mut s = settings(Format::Jsonpaths);
    s.decimal_mode = DecimalHandlingMode::Double;
    let num = column("n", "numeric", numeric_mod(10, 2), true);
    assert_eq!(map_type(&num, false, &s).unwrap().sr_type, "DOUBLE");
    s.time_mode = TimePrecisionMode::Connect;
    let ts = column("t", "timestamp", -1, true);
    assert_eq!(map_type(&ts, false, &s).unwrap().load, Load::EpochMillis);
    let time = column("t", "time", -1, true);
    assert!(map_type(&time, false, &s)
        .unwrap()
        .comment
        .contains("milliseconds"));
    s.time_mode = TimePrecisionMode::AdaptiveTimeMicroseconds;
    let time3 = column("t", "time", 3, true);
    assert!(map_type(&time3, false, &s)
        .unwrap()
        .comment
        .contains("microseconds"));
    s.time_mode = TimePrecisionMode::Adaptive;
    assert_eq!(map_type(&ts, false, &s).unwrap().load, Load::EpochMicros);
    assert!(TimePrecisionMode::parse(Some("nanos")).is_err());
    assert_eq!(
        TimePrecisionMode::parse(Some(" Adaptive ")).unwrap(),
        TimePrecisionMode::Adaptive
    );
}

/// Splits `"jsonpaths" = "[...]"` back into the paths.
fn jsonpaths(sql: &str) -> Vec<String> {
    let line = sql
        .lines()
        .find(|l| l.trim_start().starts_with("\"jsonpaths\""))
        .expect("jsonpaths property");
    let literal = line.split(" = ").nth(1).unwrap().trim_end_matches(',');
    let inner = &literal[1..literal.len() - 1];
    serde_json::from_str(&inner.replace("\\\"", "\"").replace("\\\\", "\\")).unwrap()
}

/// The COLUMNS entries: temporary names (no `=`) and derived `name = expr`.
fn columns_clause(sql: &str) -> (Vec<String>, Vec<(String, String)>) {
    let start = sql.find("COLUMNS (\n").expect("COLUMNS") + "COLUMNS (\n".len();
    let end = start + sql[start..].find("\n)").unwrap();
    let mut raw = Vec::new();
    let mut derived = Vec::new();
    for line in sql[start..end].lines() {
        let entry = line.trim().trim_end_matches(',');
        match entry.split_once(" = ") {
            Some((name, expr)) => {
                derived.push((name.trim_matches('`').to_owned(), expr.to_owned()))
            }
            None => raw.push(entry.trim_matches('`').to_owned()),
        }
    }
    (raw, derived)
}

#[test]
fn jsonpaths_match_the_columns_list_and_derive_every_column() {
    let sql = render(&settings(Format::Jsonpaths), &[all_types()]).unwrap();
    let paths = jsonpaths(&sql);
    let (raw, derived) = columns_clause(&sql);
    assert_eq!(
        paths.len(),
        raw.len(),
        "one temporary column per jsonpath\n{sql}"
    );
    assert_eq!(paths[0], "$.op");
    assert_eq!(raw[0], "__pgseam_op");
    for (path, name) in paths.iter().zip(&raw) {
        if let Some(col) = name.strip_prefix("__pgseam_a_") {
            assert_eq!(path, &format!("$.after.{col}"));
        } else if let Some(col) = name.strip_prefix("__pgseam_b_") {
            assert_eq!(path, &format!("$.before.{col}"));
        }
    }
    // Every table column but none other is derived, plus __op.
    let mut targets: Vec<String> = derived.iter().map(|(n, _)| n.clone()).collect();
    let mut expected: Vec<String> = table_columns(&sql).into_iter().map(|(n, _)| n).collect();
    expected.push("__op".into());
    targets.sort();
    expected.sort();
    assert_eq!(targets, expected);
    let expr = |name: &str| derived.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(expr("id"), "coalesce(`__pgseam_a_id`, `__pgseam_b_id`)");
    assert_eq!(expr("__op"), "if(`__pgseam_op` = 'd', 1, 0)");
    assert_eq!(
        expr("c_date"),
        "days_add('1970-01-01', `__pgseam_a_c_date`)"
    );
    assert_eq!(
        expr("c_ts"),
        "microseconds_add(from_unixtime(`__pgseam_a_c_ts` DIV 1000000), `__pgseam_a_c_ts` % 1000000)"
    );
    assert_eq!(
        expr("c_ts3"),
        "microseconds_add(from_unixtime(`__pgseam_a_c_ts3` DIV 1000), (`__pgseam_a_c_ts3` % 1000) * 1000)"
    );
    assert_eq!(
        expr("c_tstz"),
        "CAST(replace(replace(`__pgseam_a_c_tstz`, 'T', ' '), 'Z', '') AS DATETIME)"
    );
    assert_eq!(expr("c_jsonb"), "parse_json(`__pgseam_a_c_jsonb`)");
    assert_eq!(expr(LSN_COLUMN), "`__pgseam_lsn`");
    assert!(sql.contains("\"kafka_topic\" = \"shop.public.all_types\""));
    assert!(sql.contains("\"property.kafka_default_offsets\" = \"OFFSET_BEGINNING\""));
    assert!(sql.contains("\"timezone\" = \"UTC\""));
    assert!(!sql.contains("\"envelope\""));
}

#[test]
fn schemas_enable_moves_paths_under_payload() {
    let mut s = settings(Format::Jsonpaths);
    s.value_schemas_enable = true;
    let sql = render(&s, &[all_types()]).unwrap();
    assert!(jsonpaths(&sql).iter().all(|p| p.starts_with("$.payload.")));
    assert!(sql.contains("WARNING: the value converter has schemas.enable=true"));
}

#[test]
fn envelope_form_is_alone_or_commented_out_beside_jsonpaths() {
    let sql = render(&settings(Format::Debezium), &[all_types()]).unwrap();
    assert!(sql.contains("CREATE ROUTINE LOAD `shop`.`all_types_debezium` ON `all_types`\n"));
    assert!(sql.contains("    \"envelope\" = \"debezium\",\n"));
    assert!(!sql.contains("jsonpaths\" ="));
    assert!(sql.contains("c_date (epoch days)"));

    let both = render(&settings(Format::Both), &[all_types()]).unwrap();
    assert!(both.contains("-- CREATE ROUTINE LOAD `shop`.`all_types_debezium`"));
    assert!(both.contains("\nCREATE ROUTINE LOAD `shop`.`all_types_jsonpaths` ON `all_types`\n"));
    // Only one job per table runs when the script is executed as is.
    assert_eq!(both.matches("\nCREATE ROUTINE LOAD").count(), 1);
}

#[test]
fn warnings_follow_the_connector_settings() {
    let mut s = settings(Format::Jsonpaths);
    s.decimal_mode = DecimalHandlingMode::Precise;
    s.tombstones_on_delete = true;
    let sql = render(&s, &[all_types()]).unwrap();
    assert!(sql.contains("WARNING: decimal.handling.mode=precise"));
    assert!(sql.contains("WARNING: tombstones.on.delete=true"));
    assert!(
        sql.contains("WARNING: columns c_num_u, c_text, c_varchar"),
        "{sql}"
    );
    assert!(sql.contains("REPLICA IDENTITY FULL"));
    let mut full = all_types();
    full.replica_identity = 'f';
    let sql = render(&settings(Format::Jsonpaths), &[full]).unwrap();
    assert!(!sql.contains("can be TOASTed"));
}

#[test]
fn tables_starrocks_cannot_key_are_skipped_with_the_reason() {
    let no_pk = CapturedTable {
        schema: Arc::new(TableSchema {
            relation_id: 2,
            schema: "sales".into(),
            table: "events".into(),
            columns: vec![column("a", "int4", -1, true)],
            key_columns: vec![],
        }),
        replica_identity: 'f',
    };
    let json_key = CapturedTable {
        schema: Arc::new(TableSchema {
            relation_id: 3,
            schema: "public".into(),
            table: "docs".into(),
            columns: vec![column("doc", "jsonb", -1, false)],
            key_columns: vec![0],
        }),
        replica_identity: 'd',
    };
    let sql = render(&settings(Format::Both), &[no_pk, json_key]).unwrap();
    assert!(sql.contains("-- ==== sales.events: SKIPPED: no primary key"));
    assert!(sql.contains("-- ==== public.docs: SKIPPED: key column `doc` has type jsonb"));
    assert!(!sql.contains("CREATE TABLE"));
}

#[test]
fn numeric_keys_become_text_and_names_collide_loudly() {
    let t = CapturedTable {
        schema: Arc::new(TableSchema {
            relation_id: 4,
            schema: "sales".into(),
            table: "orders".into(),
            columns: vec![column("n", "numeric", numeric_mod(12, 0), false)],
            key_columns: vec![0],
        }),
        replica_identity: 'd',
    };
    let sql = render(&settings(Format::Jsonpaths), std::slice::from_ref(&t)).unwrap();
    assert_eq!(column_type(&sql, "n"), "VARCHAR(64) NOT NULL");
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS `shop`.`sales_orders`"));
    let mut clash = (*t.schema).clone();
    clash.schema = "public".into();
    clash.table = "sales_orders".into();
    let clash = CapturedTable {
        schema: Arc::new(clash),
        replica_identity: 'd',
    };
    let err = render(&settings(Format::Jsonpaths), &[t, clash]).unwrap_err();
    assert!(err
        .to_string()
        .contains("both map to StarRocks table `sales_orders`"));
}

#[test]
fn database_names_are_identifiers() {
    assert_eq!(database_name("shop"), "shop");
    assert_eq!(database_name("my-app.v1"), "my_app_v1");
    assert_eq!(database_name("1st"), "db_1st");
}
