//! Kafka transactions for exactly-once delivery: the transactional producer's settings, its
//! errors, and how each is classified.
//!
//! # The protocol (KIP-98), as librdkafka runs it
//!
//! A producer with a `transactional.id` first calls `init_transactions`: the broker's
//! transaction coordinator for that id bumps the id's *producer epoch* and aborts any
//! transaction an earlier producer with the same id left open. From then on the broker refuses
//! writes and commits from any producer with an older epoch (`PRODUCER_FENCED` /
//! `INVALID_PRODUCER_EPOCH`), which librdkafka raises as a **fatal** error on that older
//! producer: a zombie instance (a pgseam still running on another host, or a Kafka Connect task
//! with the same id) is fenced the moment the new one starts, and nothing it sends afterwards
//! can be committed. `begin_transaction` opens a transaction locally; records produced in it
//! are written to their partitions but invisible to `read_committed` consumers until
//! `commit_transaction` (which first flushes every record and fails if any failed) writes the
//! commit markers; `abort_transaction` writes abort markers instead and the records are
//! skipped by `read_committed` consumers for good.
//!
//! # Errors
//!
//! librdkafka classifies every transactional error ([`TxnErrorKind`]):
//! - **fenced**: another producer with the same `transactional.id` initialised after this one.
//!   This instance must stop and write nothing more ([`SinkError::Fenced`]).
//! - **fatal**: the producer is unusable (also how fencing is reported on later calls).
//! - **abortable**: the current transaction cannot commit (a record failed, the coordinator
//!   aborted it after `transaction.timeout.ms`); `abort_transaction` makes the producer usable
//!   again, nothing of the transaction becomes visible.
//! - **retriable**: the call may be repeated (a timeout waiting for the coordinator).
//!
//! [`KafkaSink`](crate::KafkaSink) opens a transaction lazily, at the first record sent after
//! the previous one ended; the caller (the worker's commit coordinator) decides where a
//! transaction ends, appends its offset record, and commits.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// librdkafka's `transaction.timeout.ms` default; also what pgseam uses unless a
/// `producer.transaction.timeout.ms` override says otherwise.
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 60_000;

/// What a transactional error means for the producer (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnErrorKind {
    /// Another producer with the same `transactional.id` took over.
    Fenced,
    /// The producer cannot be used any more.
    Fatal,
    /// The transaction must be aborted; the producer stays usable.
    Abortable,
    /// The call may be repeated.
    Retriable,
    /// Anything else (a local state error, a programming error).
    Other,
}

/// Error codes that mean "a newer producer with this transactional.id exists".
fn is_fencing_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// Classifies an error from a transactional call (`init_transactions`, `begin_transaction`,
/// `commit_transaction`, `abort_transaction`), or from a delivery report.
///
/// `fatal`: the producer's fatal error, if it has one (`rd_kafka_fatal_error`): after fencing
/// librdkafka reports later calls with the generic `_FATAL` code, and the fatal error holds the
/// real cause.
pub fn classify(error: &KafkaError, fatal: Option<RDKafkaErrorCode>) -> TxnErrorKind {
    if fatal.is_some_and(is_fencing_code) {
        return TxnErrorKind::Fenced;
    }
    match error {
        KafkaError::Transaction(e) => {
            if is_fencing_code(e.code()) {
                TxnErrorKind::Fenced
            } else if e.is_fatal() {
                TxnErrorKind::Fatal
            } else if e.txn_requires_abort() {
                TxnErrorKind::Abortable
            } else if e.is_retriable() {
                TxnErrorKind::Retriable
            } else {
                TxnErrorKind::Other
            }
        }
        other => match other.rdkafka_error_code() {
            Some(code) if is_fencing_code(code) => TxnErrorKind::Fenced,
            Some(RDKafkaErrorCode::Fatal) => TxnErrorKind::Fatal,
            _ => TxnErrorKind::Other,
        },
    }
}

/// The message of a fenced producer.
pub(crate) fn fenced_message(transactional_id: &str) -> String {
    format!(
        "this producer was fenced: another instance started with the same transactional.id \
         `{transactional_id}` (a second pgseam running this connector, or a Kafka Connect task \
         with the same group.id and connector name). This instance stops and writes nothing \
         more; the records of its open transaction are aborted and never visible to \
         read_committed consumers. Run one instance per connector."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_codes_are_recognised_even_behind_a_generic_fatal_error() {
        let fenced = KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced);
        assert_eq!(classify(&fenced, None), TxnErrorKind::Fenced);
        let generic = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
        assert_eq!(classify(&generic, None), TxnErrorKind::Fatal);
        assert_eq!(
            classify(&generic, Some(RDKafkaErrorCode::InvalidProducerEpoch)),
            TxnErrorKind::Fenced
        );
        let other = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(classify(&other, None), TxnErrorKind::Other);
    }
}
