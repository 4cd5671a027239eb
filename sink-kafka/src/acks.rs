//! Delivery tracking by sequence number: which records are acknowledged, as one watermark.
//!
//! Every record the sink enqueues gets the next sequence number (0, 1, 2, …), which travels
//! through librdkafka as the message's opaque and comes back in its delivery report. Reports
//! arrive in order within a partition but in any order across partitions. [`AckWindow`] turns
//! them into one number, the **watermark**: every record with a sequence number below it is
//! acknowledged by the broker. A caller that remembers "my checkpoint came after the records
//! numbered below `k`" knows the checkpoint is durable once the watermark reaches `k`.
//!
//! Representation: a ring of bits, one per sequence number in `[watermark, next)`, set when
//! that record is acknowledged. When the record at the watermark is acknowledged, the
//! watermark moves past every consecutive set bit (clearing them for reuse). A failed delivery
//! never sets its bit, so the watermark stops in front of it for good: no later checkpoint can
//! become durable. The lowest failed sequence number is kept for the caller to report.
//!
//! Bound: at most `capacity` records are outstanding (`next - watermark ≤ capacity`);
//! [`AckWindow::register`] refuses more, and the caller waits for the watermark to move. The
//! memory is `capacity / 8` bytes.

/// Acknowledgement state of a window of sequence numbers (see the module docs).
#[derive(Debug)]
pub struct AckWindow {
    /// Every sequence number below this is acknowledged.
    watermark: u64,
    /// The next sequence number to hand out.
    next: u64,
    /// One bit per sequence number modulo `bits.len() * 64`: acknowledged, not yet passed.
    bits: Box<[u64]>,
    /// `bits.len() * 64 - 1` (a power of two minus one).
    mask: u64,
    /// Records registered without a delivery report yet (acknowledged or failed).
    unresolved: usize,
    /// The lowest sequence number whose delivery failed.
    failed: Option<u64>,
}

impl AckWindow {
    /// A window of at least `capacity` outstanding records (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let bits = capacity.max(64).next_power_of_two() as u64;
        AckWindow {
            watermark: 0,
            next: 0,
            bits: vec![0; (bits / 64) as usize].into_boxed_slice(),
            mask: bits - 1,
            unresolved: 0,
            failed: None,
        }
    }

    /// How many records may be outstanding.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Hands out the next sequence number, or `None` while the window is full.
    pub fn register(&mut self) -> Option<u64> {
        if self.next - self.watermark >= self.capacity() {
            return None;
        }
        let seq = self.next;
        self.next += 1;
        self.unresolved += 1;
        Some(seq)
    }

    /// Records a successful delivery. Returns whether the watermark moved.
    pub fn ack(&mut self, seq: u64) -> bool {
        if seq < self.watermark || seq >= self.next || self.is_set(seq) {
            // Not outstanding: a report we cannot place (never expected from librdkafka).
            return false;
        }
        self.unresolved = self.unresolved.saturating_sub(1);
        self.set(seq);
        let before = self.watermark;
        while self.watermark < self.next && self.is_set(self.watermark) {
            self.clear(self.watermark);
            self.watermark += 1;
        }
        self.watermark != before
    }

    /// Records a failed delivery: the watermark can never pass it.
    pub fn fail(&mut self, seq: u64) {
        if seq < self.watermark || seq >= self.next || self.is_set(seq) {
            return;
        }
        self.unresolved = self.unresolved.saturating_sub(1);
        self.failed = Some(self.failed.map_or(seq, |f| f.min(seq)));
    }

    /// Every record numbered below this is acknowledged.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// The sequence number the next record will get.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Records without a delivery report.
    pub fn unresolved(&self) -> usize {
        self.unresolved
    }

    /// The lowest sequence number whose delivery failed, if any.
    pub fn failed(&self) -> Option<u64> {
        self.failed
    }

    fn is_set(&self, seq: u64) -> bool {
        let bit = seq & self.mask;
        self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    fn set(&mut self, seq: u64) {
        let bit = seq & self.mask;
        self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn clear(&mut self, seq: u64) {
        let bit = seq & self.mask;
        self.bits[(bit / 64) as usize] &= !(1 << (bit % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(window: &mut AckWindow, n: u64) -> Vec<u64> {
        (0..n).map(|_| window.register().unwrap()).collect()
    }

    #[test]
    fn in_order_acks_move_the_watermark_one_by_one() {
        let mut w = AckWindow::new(8);
        registered(&mut w, 3);
        assert_eq!(w.watermark(), 0);
        assert!(w.ack(0));
        assert_eq!(w.watermark(), 1);
        assert!(w.ack(1));
        assert!(w.ack(2));
        assert_eq!((w.watermark(), w.unresolved()), (3, 0));
    }

    #[test]
    fn out_of_order_acks_across_partitions_wait_for_the_gap() {
        // Records 0, 2, 4 went to partition A, 1, 3, 5 to partition B; B reports first.
        let mut w = AckWindow::new(64);
        registered(&mut w, 6);
        assert!(!w.ack(1));
        assert!(!w.ack(3));
        assert!(!w.ack(5));
        assert_eq!(w.watermark(), 0, "record 0 is not acknowledged yet");
        assert!(w.ack(0));
        assert_eq!(w.watermark(), 2, "0 and 1 done, 2 outstanding");
        assert!(w.ack(2));
        assert_eq!(w.watermark(), 4);
        assert!(w.ack(4));
        assert_eq!((w.watermark(), w.unresolved()), (6, 0));
    }

    #[test]
    fn a_failed_delivery_stops_the_watermark_for_good() {
        // A checkpoint after records 0..3 (needs watermark 3) and one after 0..5 (needs 5).
        let mut w = AckWindow::new(64);
        registered(&mut w, 5);
        assert!(w.ack(0));
        assert!(w.ack(1));
        w.fail(3);
        assert!(w.ack(2));
        assert_eq!(w.watermark(), 3, "the first checkpoint is durable");
        assert!(!w.ack(4));
        assert_eq!(w.watermark(), 3, "the second never is");
        assert_eq!((w.failed(), w.unresolved()), (Some(3), 0));
        w.fail(1); // already acknowledged: not a failure to report
        w.fail(2);
        assert_eq!(w.failed(), Some(3));
    }

    #[test]
    fn the_lowest_failure_is_reported_whatever_the_arrival_order() {
        let mut w = AckWindow::new(64);
        registered(&mut w, 4);
        w.fail(3);
        w.fail(1);
        assert_eq!(w.failed(), Some(1));
        assert!(w.ack(0));
        assert_eq!(w.watermark(), 1);
    }

    #[test]
    fn the_window_is_bounded_and_reused_around_the_ring() {
        let mut w = AckWindow::new(64);
        assert_eq!(w.capacity(), 64);
        for round in 0..10u64 {
            let seqs = registered(&mut w, 64);
            assert_eq!(w.register(), None, "full");
            // Acknowledge in reverse: nothing moves until the first one.
            for &s in seqs.iter().rev().take(63) {
                assert!(!w.ack(s));
            }
            assert!(w.ack(seqs[0]));
            assert_eq!(w.watermark(), (round + 1) * 64);
        }
    }

    #[test]
    fn duplicate_or_foreign_reports_are_ignored() {
        let mut w = AckWindow::new(64);
        registered(&mut w, 2);
        assert!(!w.ack(1));
        assert!(!w.ack(1));
        assert!(!w.ack(7));
        assert_eq!(w.unresolved(), 1);
        assert!(w.ack(0));
        assert!(!w.ack(0));
        assert_eq!((w.watermark(), w.unresolved()), (2, 0));
    }

    #[test]
    fn out_of_order_acks_across_the_ring_boundary() {
        // The outstanding range straddles the end of the ring: bits 60..64 and 0..8.
        let mut w = AckWindow::new(64);
        let first = registered(&mut w, 60);
        for s in first {
            w.ack(s);
        }
        assert_eq!(w.watermark(), 60);
        let seqs = registered(&mut w, 12); // 60..72, ring slots 60..63 then 0..7
        assert_eq!(seqs, (60..72).collect::<Vec<_>>());
        for s in [71, 65, 64, 70, 61, 62, 63, 66, 67, 68, 69] {
            assert!(!w.ack(s), "record 60 is outstanding ({s})");
        }
        assert_eq!(w.watermark(), 60);
        assert!(w.ack(60));
        assert_eq!((w.watermark(), w.unresolved()), (72, 0));
        // Every passed slot was cleared: the next lap starts clean.
        let lap = registered(&mut w, 64);
        assert_eq!(w.register(), None);
        assert!(!w.ack(lap[1]));
        assert_eq!(w.watermark(), 72);
        assert!(w.ack(lap[0]));
        assert_eq!(w.watermark(), 74);
    }
}
