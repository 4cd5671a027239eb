//! Snapshot throttling (pgseam's `snapshot.throttle.*` properties), off by default: a source in
//! production can cap what the initial snapshot takes from it.
//!
//! - **Rows per second** and **bytes per second** (bytes of binary COPY data read from the
//!   server), each a token bucket shared by all readers, so the limit holds for the snapshot as
//!   a whole whatever `snapshot.max.threads` is.
//! - **A pause between chunks**: a reader sleeps this long after each chunk before it starts
//!   the next one.
//! - **The number of readers** is `snapshot.max.threads` (Debezium's key).
//!
//! # The bucket
//!
//! A bucket holds at most [`BURST`] worth of tokens (`rate × BURST`, at least one) and starts
//! full. A reader that has decoded a batch *reserves* its cost before sending it: the tokens
//! are taken at once, possibly driving the bucket into debt, and the reader sleeps until the
//! debt would be paid back at the configured rate. Because a reservation is taken before the
//! sleep, readers queue up in the order they asked: a second reader arriving during the first
//! one's sleep adds its own cost to the debt and sleeps longer. Over any interval `T` the
//! readers therefore send at most `rate × (T + BURST)` plus the one batch being reserved; a
//! batch larger than the bucket (e.g. one row bigger than a second of the byte budget) still
//! passes, after a proportionally longer wait, so a limit can never stall the snapshot.
//!
//! # Long pauses are safe
//!
//! While a reader sleeps, its COPY is not read: the server blocks writing to the socket
//! (TCP flow control), which no server timeout applies to, and pgseam's sessions run with
//! `statement_timeout`, `idle_in_transaction_session_timeout` and `idle_session_timeout` set
//! to 0 and with TCP keepalives (see `crate::connection`). A reader sleeping between chunks
//! is idle in its transaction under the same settings, and so is the replication connection
//! that holds the exported snapshot, which stays idle until streaming starts. The tests run a
//! throttled snapshot against a server whose defaults for those timeouts are one second.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How much a bucket may save up: this long at its rate.
pub const BURST: Duration = Duration::from_millis(100);

/// `snapshot.throttle.*`: `None` (or a zero pause) means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// `snapshot.throttle.rows.per.second`.
    pub rows_per_second: Option<u64>,
    /// `snapshot.throttle.bytes.per.second`: binary COPY bytes.
    pub bytes_per_second: Option<u64>,
    /// `snapshot.throttle.chunk.pause.ms`: each reader's pause after a chunk.
    pub chunk_pause: Duration,
}

impl ThrottleSettings {
    /// True when any limit is set.
    pub fn is_active(&self) -> bool {
        self.rows_per_second.is_some()
            || self.bytes_per_second.is_some()
            || !self.chunk_pause.is_zero()
    }
}

/// A token bucket shared by tasks; see the module docs.
#[derive(Debug)]
pub struct TokenBucket {
    /// Tokens per second (> 0).
    rate: f64,
    capacity: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// Negative while in debt.
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `per_second` tokens per second (at least 1).
    pub fn new(per_second: u64) -> Self {
        let rate = per_second.max(1) as f64;
        let capacity = (rate * BURST.as_secs_f64()).max(1.0);
        TokenBucket {
            rate,
            capacity,
            state: Mutex::new(BucketState {
                tokens: capacity,
                updated: Instant::now(),
            }),
        }
    }

    /// Takes `cost` tokens now and returns how long the caller must wait before using them.
    pub fn reserve(&self, cost: u64) -> Duration {
        let now = Instant::now();
        // A poisoned lock only means another reader panicked; the state is still a number.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let refill = now.saturating_duration_since(state.updated).as_secs_f64() * self.rate;
        state.tokens = (state.tokens + refill).min(self.capacity);
        state.updated = now;
        state.tokens -= cost as f64;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.rate)
        }
    }

    /// Reserves `cost` tokens and waits until they are paid for.
    pub async fn acquire(&self, cost: u64) {
        let wait = self.reserve(cost);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The limits of one snapshot, shared by its readers.
#[derive(Debug, Default)]
pub struct Throttle {
    rows: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    chunk_pause: Duration,
}

impl Throttle {
    pub fn new(settings: &ThrottleSettings) -> Self {
        Throttle {
            rows: settings.rows_per_second.map(TokenBucket::new),
            bytes: settings.bytes_per_second.map(TokenBucket::new),
            chunk_pause: settings.chunk_pause,
        }
    }

    /// Waits until a batch of `rows` rows and `bytes` COPY bytes may be sent. Both buckets are
    /// charged at once; the wait is the longer of the two.
    pub async fn before_batch(&self, rows: u64, bytes: u64) {
        let wait = self
            .rows
            .as_ref()
            .map_or(Duration::ZERO, |b| b.reserve(rows))
            .max(
                self.bytes
                    .as_ref()
                    .map_or(Duration::ZERO, |b| b.reserve(bytes)),
            );
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The pause a reader takes between two chunks.
    pub async fn between_chunks(&self) {
        if !self.chunk_pause.is_zero() {
            tokio::time::sleep(self.chunk_pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Equal within a millisecond (float rates, and the timer's millisecond granularity).
    #[track_caller]
    fn assert_close(actual: Duration, expected: Duration) {
        let diff = actual.abs_diff(expected);
        assert!(
            diff <= Duration::from_millis(1),
            "{actual:?} is not {expected:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_lets_its_burst_through_then_holds_the_rate() {
        let bucket = TokenBucket::new(1000);
        // Capacity: 100 tokens.
        assert_eq!(bucket.reserve(100), Duration::ZERO);
        assert_close(bucket.reserve(50), Duration::from_millis(50));
        tokio::time::advance(Duration::from_millis(50)).await;
        // Debt paid; nothing saved up.
        assert_close(bucket.reserve(10), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_larger_than_the_bucket_waits_in_proportion() {
        let bucket = TokenBucket::new(100);
        // Capacity 10 tokens: 510 tokens cost 5 s.
        assert_close(bucket.reserve(510), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_refills_only_up_to_the_burst() {
        let bucket = TokenBucket::new(1000);
        assert_eq!(bucket.reserve(100), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(bucket.reserve(100), Duration::ZERO);
        assert_close(bucket.reserve(1), Duration::from_millis(1));
    }

    /// Several tasks sharing one limit: 4 tasks × 25 batches × 100 rows at 1000 rows/s take
    /// (10000 − 100 burst) / 1000 = 9.9 s of virtual time, whatever the interleaving.
    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_share_one_rate() {
        let throttle = Arc::new(Throttle::new(&ThrottleSettings {
            rows_per_second: Some(1000),
            ..ThrottleSettings::default()
        }));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let throttle = Arc::clone(&throttle);
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    throttle.before_batch(100, 0).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(9_800) && elapsed <= Duration::from_millis(10_000),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_tighter_of_rows_and_bytes_wins() {
        let throttle = Throttle::new(&ThrottleSettings {
            rows_per_second: Some(1_000_000),
            bytes_per_second: Some(1000),
            chunk_pause: Duration::ZERO,
        });
        let started = Instant::now();
        // 10 batches of 10 rows, 300 bytes each: the byte budget (3000 − 100 burst) decides.
        for _ in 0..10 {
            throttle.before_batch(10, 300).await;
        }
        assert_close(started.elapsed(), Duration::from_millis(2_900));
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits_and_the_chunk_pause_sleeps() {
        let throttle = Throttle::new(&ThrottleSettings::default());
        let started = Instant::now();
        for _ in 0..1000 {
            throttle.before_batch(1 << 20, 1 << 30).await;
        }
        throttle.between_chunks().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        let paused = Throttle::new(&ThrottleSettings {
            chunk_pause: Duration::from_millis(1500),
            ..ThrottleSettings::default()
        });
        paused.between_chunks().await;
        assert_close(started.elapsed(), Duration::from_millis(1500));
    }
}
