//! One memory budget for a connector's producer: librdkafka's queue limits and pgseam's own
//! in-flight bound, derived from one number (`pgseam.memory.budget.bytes`).
//!
//! What the budget covers: the records between the pipeline and the broker's acknowledgement.
//! Each costs its value bytes, which librdkafka counts against `queue.buffering.max.kbytes`
//! (payload only), plus a per-record cost librdkafka does not count there: its message struct
//! (about 200 bytes), the key (Debezium's JSON key with its schema is 100–300 bytes), the
//! position headers, and pgseam's tracking (a bit, a send time and an LSN), each with the
//! allocator's own overhead. [`RECORD_OVERHEAD`] puts that cost at 1 KiB, as measured: with the
//! broker stopped during a 1M-row snapshot (BENCHMARKS.md, "Memory budget"), the process grew
//! by 1.45–1.53 KiB per queued record of 606 value bytes. The budget is split in two halves:
//!
//! - `queue.buffering.max.kbytes` = budget / 2 (at least one `message.max.bytes`, or
//!   librdkafka would refuse a record that large for ever);
//! - `queue.buffering.max.messages` = budget / 2 / [`RECORD_OVERHEAD`], which is also the most
//!   records pgseam keeps unacknowledged (it waits for the watermark beyond that), and so the
//!   longest suffix a crash replays.
//!
//! Records of 1 KiB reach both halves at once; smaller ones reach the record count first, larger
//! ones the byte limit, so the queue stays within the budget either way. The default budget,
//! 128 MiB, gives 64 MiB (the value measured for the producer queue before the budget existed)
//! and 65,536 records (was 100,000). `producer.*` overrides of the two librdkafka keys still
//! win; when they make the total exceed the budget, a warning says so.
//!
//! Not covered: the source → pipeline channel (`max.queue.size` events), the snapshot readers'
//! buffers, librdkafka's in-flight requests and compression buffers, and the process itself.

/// The default `pgseam.memory.budget.bytes`: 128 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 128 * 1024 * 1024;

/// The smallest budget accepted: 8 MiB.
pub const MIN_MEMORY_BUDGET: u64 = 8 * 1024 * 1024;

/// Estimated memory per record besides its value (see the module docs).
pub const RECORD_OVERHEAD: u64 = 1024;

/// librdkafka's `queue.buffering.max.messages` range ends.
const MIN_MESSAGES: u64 = 1_000;
const MAX_MESSAGES: u64 = 2_147_483_647;

/// librdkafka's queue limits, and pgseam's in-flight bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// `queue.buffering.max.kbytes`.
    pub max_kbytes: u64,
    /// `queue.buffering.max.messages`; pgseam keeps at most this many records unacknowledged.
    pub max_messages: u64,
}

impl QueueLimits {
    /// The limits a budget gives, for records up to `message_max_bytes`.
    pub fn from_budget(budget: u64, message_max_bytes: u64) -> Self {
        let half = budget / 2;
        QueueLimits {
            max_kbytes: half.max(message_max_bytes).div_ceil(1024),
            max_messages: (half / RECORD_OVERHEAD).clamp(MIN_MESSAGES, MAX_MESSAGES),
        }
    }

    /// The memory these limits allow at most (by the module's estimate).
    pub fn bytes(&self) -> u64 {
        self.max_kbytes
            .saturating_mul(1024)
            .saturating_add(self.max_messages.saturating_mul(RECORD_OVERHEAD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_gives_the_measured_limits() {
        let limits = QueueLimits::from_budget(DEFAULT_MEMORY_BUDGET, 1_000_000);
        assert_eq!(limits.max_kbytes, 65_536);
        assert_eq!(limits.max_messages, 65_536);
        assert!(limits.bytes() <= DEFAULT_MEMORY_BUDGET);
    }

    #[test]
    fn limits_scale_with_the_budget_and_hold_one_record() {
        let small = QueueLimits::from_budget(MIN_MEMORY_BUDGET, 1_000_000);
        assert_eq!(small.max_kbytes, 4_096);
        assert_eq!(small.max_messages, 4_096);
        let big = QueueLimits::from_budget(1 << 30, 1_000_000);
        assert_eq!((big.max_kbytes, big.max_messages), (524_288, 524_288));
        // A record as large as message.max.bytes always fits in librdkafka's queue.
        let one = QueueLimits::from_budget(MIN_MEMORY_BUDGET, 10_000_000);
        assert_eq!(one.max_kbytes, 9_766);
    }
}
