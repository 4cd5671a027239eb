//! Tests of the PostgreSQL connector against a real PostgreSQL 15 (authentication, TLS,
//! replication sessions, slots, binary and text snapshot decoding), one module per subject,
//! linked into one test binary.

mod auth;
mod common;
mod session;
mod slot;
mod snapshot_binary_text;
mod snapshot_encode;
mod tls;
