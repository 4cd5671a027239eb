//! Converter tests: byte-for-byte comparison with real Debezium 3.6.3 output (JSON, Avro,
//! transforms), one module per subject, linked into one test binary.

mod avro;
mod avro_propagate;
mod common;
mod golden;
mod golden_events;
mod transforms_golden;
