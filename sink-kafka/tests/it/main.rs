//! Kafka sink tests against a real broker and rdkafka's mock cluster (delivery failures,
//! partitioning against the Java client, offsets topic, oversized records, transactions), one
//! module per subject, linked into one test binary.

mod delivery_failure;
mod delivery_partitioning;
mod offsets_topic_log;
mod too_large;
mod transactions;
