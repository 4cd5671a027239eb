//! Kafka sink: rdkafka producer with delivery acknowledgements.
