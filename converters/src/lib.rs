//! ChangeEvent to Debezium envelope encoders (Kafka Connect JSON with and without schemas).
