//! Starts and stops throwaway PostgreSQL 15 clusters and Kafka-protocol brokers for tests and the demo.
