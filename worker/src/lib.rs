//! The `pgseam` worker: configuration, the connector pipeline with its commit coordinator, the
//! offset store, and the command line.
//!
//! What it does: reads Kafka Connect worker properties and Debezium connector properties, runs
//! each connector as a pipeline PostgreSQL → converter → Kafka, and owns the rule that nothing is
//! acknowledged to PostgreSQL before it is durable in Kafka and in the offset store.
//!
//! What it does not do: speak PostgreSQL's protocols (`connector-pg`), encode envelopes
//! (`converters`) or drive librdkafka (`sink-kafka`).

pub mod config;
pub mod logging;
pub mod manager;
pub mod metrics;
pub mod offset_edit;
pub mod offsets;
pub mod pipeline;
pub mod rest;
pub mod signal_channels;
pub mod slots;
pub mod standalone;
pub mod starrocks;
pub mod validate;
pub mod verify;
