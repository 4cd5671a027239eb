//! Decoder throughput on real pgoutput messages: frames and messages decoded per second.
//!
//! ```text
//! cargo run --release -p pgoutput --example decode_throughput -- MESSAGES.hex [SECONDS]
//! ```
//!
//! `MESSAGES.hex` holds one pgoutput message per line, in hex, as PostgreSQL sent it: `bench/
//! decoder.sh` writes it with `pg_logical_slot_peek_binary_changes(…, 'proto_version', '1',
//! 'publication_names', …)` over a backlog of single-row transactions (Begin, Relation once,
//! Insert, Commit). Each message is wrapped once, up front, in the XLogData frame a
//! replication connection carries it in; the timed loop then decodes frame and message
//! (`ReplicationFrame::decode` + `LogicalReplicationMessage::decode`, as the source does for
//! every CopyData) over the whole capture, again and again for `SECONDS` (default 5). The
//! decoded message is consumed (its row-change tuple column count and byte length summed) so
//! the work cannot be optimised away.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use pgoutput::frame::{ReplicationFrame, XLOG_DATA_TAG};
use pgoutput::message::{DecodeContext, LogicalReplicationMessage, TupleData};

fn parse_hex(line: &str) -> Option<Vec<u8>> {
    let line = line.trim().strip_prefix("\\x").unwrap_or(line.trim());
    if line.is_empty() || !line.len().is_multiple_of(2) {
        return None;
    }
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).ok())
        .collect()
}

fn tuple_weight(tuple: &TupleData) -> u64 {
    tuple.0.len() as u64
}

fn weight(message: &LogicalReplicationMessage) -> u64 {
    match message {
        LogicalReplicationMessage::Insert { new, .. } => tuple_weight(new),
        LogicalReplicationMessage::Update { new, .. } => tuple_weight(new),
        LogicalReplicationMessage::Begin { xid, .. } => u64::from(*xid & 1),
        _ => 1,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: decode_throughput MESSAGES.hex [SECONDS]");
        std::process::exit(2);
    };
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    let mut lsn = 0x1_0000_0000u64;
    let frames: Vec<Bytes> = text
        .lines()
        .filter_map(parse_hex)
        .map(|message| {
            let mut frame = BytesMut::with_capacity(25 + message.len());
            frame.put_u8(XLOG_DATA_TAG);
            frame.put_u64(lsn);
            frame.put_u64(lsn + message.len() as u64);
            frame.put_i64(0);
            frame.put_slice(&message);
            lsn += message.len() as u64;
            frame.freeze()
        })
        .collect();
    if frames.is_empty() {
        eprintln!("{path}: no messages");
        std::process::exit(2);
    }
    let bytes_per_pass: usize = frames.iter().map(Bytes::len).sum();
    let context = DecodeContext::new(1);
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let (mut messages, mut passes, mut checksum) = (0u64, 0u64, 0u64);
    while started.elapsed() < budget {
        for frame in &frames {
            let ReplicationFrame::XLogData { data, .. } =
                ReplicationFrame::decode(frame.clone()).expect("captured frame")
            else {
                unreachable!("only XLogData frames are built")
            };
            let message =
                LogicalReplicationMessage::decode(data, &context).expect("captured message");
            checksum = checksum.wrapping_add(weight(&message));
            messages += 1;
        }
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "decode_throughput: {} messages per pass ({} bytes), {passes} passes in {elapsed:.2} s: \
         {:.0} messages/s, {:.1} MB/s (checksum {checksum})",
        frames.len(),
        bytes_per_pass,
        messages as f64 / elapsed,
        (bytes_per_pass as f64 * passes as f64) / elapsed / 1e6,
    );
}
