//! PostgreSQL source: replication client, slots, publications, snapshot readers, streaming.
