//! Integration tests against a real PostgreSQL and a real Kafka-protocol broker; the tests live in `tests/tests/`.
