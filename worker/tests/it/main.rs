//! pgseam's end-to-end tests, one module per subject, linked into one test binary.
//!
//! Each test starts its own PostgreSQL 15 cluster and Kafka-protocol broker (`common::Env`) and
//! runs the `pgseam` binary as a child process, so tests share no server and no process state.
//! One binary instead of one per file saves a link of the whole dependency tree per file: about
//! 200 MB of disk and tens of seconds of CI time each. Run one subject with
//! `cargo test -p pgseam --test it end_to_end::`.

mod array_options;
mod avro_end_to_end;
mod bad_input;
mod blocking_snapshot;
mod cli;
mod columns_golden;
mod common;
mod delivery_debezium_takeover;
mod delivery_offsets_java;
mod delivery_too_large;
mod end_to_end;
mod events;
mod exactly_once;
mod faults;
mod incremental_golden;
mod incremental_snapshot;
mod large_transaction;
mod logging;
mod native_config;
mod null_sink;
mod offsets_set;
mod offsets_topic;
mod offsets_topic_store;
mod partitions;
mod propagate_golden;
mod replication_heartbeat;
mod replication_reconnect;
mod replication_schema;
mod rest_api;
mod rest_legacy_keys;
mod slot_cli;
mod slot_lag;
mod smt_golden;
mod snapshot_chunking;
mod snapshot_concurrent;
mod snapshot_modes;
mod snapshot_ops;
mod snapshot_resume;
mod starrocks_compose;
mod starrocks_ddl;
mod types_golden;
mod validate_server;
mod verify_pipeline;
