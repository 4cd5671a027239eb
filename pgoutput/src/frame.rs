//! CopyData payloads of the streaming replication sub-protocol.
//!
//! After `START_REPLICATION SLOT … LOGICAL …` the connection is in COPY BOTH mode and every
//! message in either direction is a CopyData (`d`) message. Its payload starts with one tag byte:
//!
//! ```text
//! server -> client
//!   'w' XLogData           Int64 wal_start  Int64 wal_end  Int64 send_time  Byte* data
//!   'k' Primary keepalive  Int64 wal_end    Int64 send_time  Byte1 reply_requested
//! client -> server
//!   'r' Standby status     Int64 write  Int64 flush  Int64 apply  Int64 client_time  Byte1 reply_requested
//! ```
//!
//! Times are microseconds since the PostgreSQL epoch, 2000-01-01 00:00:00 UTC
//! ([`PG_EPOCH_OFFSET_US`] converts to and from the Unix epoch). For a logical slot the `data` of
//! one XLogData is exactly one pgoutput message, decoded by
//! [`LogicalReplicationMessage::decode`](crate::message::LogicalReplicationMessage::decode).
//!
//! A keepalive with `reply_requested` set must be answered promptly with a standby status
//! update, or the server ends the connection after `wal_sender_timeout`. The LSNs a client reports
//! there are positions *after* the last byte it has handled (PostgreSQL's "last WAL byte + 1");
//! `flush` is what lets the server recycle WAL and advance the slot, so it must only cover what is
//! durable downstream. This module only encodes and decodes; when and what to report is the
//! caller's business.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::WireReader;
use crate::{DecodeError, Lsn};

/// Tag of an XLogData payload (server to client).
pub const XLOG_DATA_TAG: u8 = b'w';
/// Tag of a primary keepalive payload (server to client).
pub const PRIMARY_KEEPALIVE_TAG: u8 = b'k';
/// Tag of a standby status update payload (client to server).
pub const STANDBY_STATUS_UPDATE_TAG: u8 = b'r';

/// Length of a standby status update payload: tag, four Int64 and the reply flag.
pub const STANDBY_STATUS_UPDATE_LEN: usize = 1 + 8 * 4 + 1;

/// Microseconds between the Unix epoch and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// One server-to-client CopyData payload of a replication connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationFrame {
    /// WAL data: for a logical slot, one output-plugin message.
    XLogData {
        /// WAL position this data starts at (0 for some logical messages; not a resume point).
        wal_start: Lsn,
        /// Current end of WAL on the server.
        wal_end: Lsn,
        /// Server clock at transmission, µs since 2000-01-01.
        server_time_us: i64,
        /// The payload, a zero-copy slice of the input.
        data: Bytes,
    },
    /// Keepalive; answer at once with a status update when `reply_requested` is set.
    PrimaryKeepalive {
        /// Current end of WAL on the server.
        wal_end: Lsn,
        /// Server clock at transmission, µs since 2000-01-01.
        server_time_us: i64,
        /// The server asks for a standby status update now, to avoid a timeout disconnect.
        reply_requested: bool,
    },
}

impl ReplicationFrame {
    /// Decodes one complete CopyData payload (the bytes after the CopyData header).
    pub fn decode(copy_data: Bytes) -> Result<ReplicationFrame, DecodeError> {
        let mut reader = WireReader::new(copy_data);
        match reader.u8("frame tag")? {
            XLOG_DATA_TAG => Ok(ReplicationFrame::XLogData {
                wal_start: reader.u64("XLogData wal_start")?,
                wal_end: reader.u64("XLogData wal_end")?,
                server_time_us: reader.i64("XLogData send time")?,
                data: reader.rest(),
            }),
            PRIMARY_KEEPALIVE_TAG => {
                let frame = ReplicationFrame::PrimaryKeepalive {
                    wal_end: reader.u64("keepalive wal_end")?,
                    server_time_us: reader.i64("keepalive send time")?,
                    reply_requested: reader.u8("keepalive reply flag")? != 0,
                };
                reader.finish("primary keepalive")?;
                Ok(frame)
            }
            tag => Err(DecodeError::UnknownTag(tag)),
        }
    }
}

/// Standby status update ('r'): write, flush, apply LSNs, client time (µs since 2000-01-01), reply flag.
///
/// Appends the CopyData payload (not the CopyData header) to `out`.
pub fn encode_standby_status_update(
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    client_time_us: i64,
    reply_requested: bool,
    out: &mut BytesMut,
) {
    out.reserve(STANDBY_STATUS_UPDATE_LEN);
    out.put_u8(STANDBY_STATUS_UPDATE_TAG);
    out.put_u64(write);
    out.put_u64(flush);
    out.put_u64(apply);
    out.put_i64(client_time_us);
    out.put_u8(u8::from(reply_requested));
}

#[cfg(test)]
mod tests {
    //! Constructed frames; the captured ones are in `tests/captured.rs`.

    use super::*;

    fn constructed_xlog_data(data: &[u8]) -> Vec<u8> {
        let mut frame = vec![XLOG_DATA_TAG];
        frame.extend_from_slice(&0x0000_0001_0000_0010_u64.to_be_bytes());
        frame.extend_from_slice(&0x0000_0001_0000_0020_u64.to_be_bytes());
        frame.extend_from_slice(&(-5_i64).to_be_bytes());
        frame.extend_from_slice(data);
        frame
    }

    #[test]
    fn decodes_constructed_xlog_data_with_zero_copy_body() {
        let input = Bytes::from(constructed_xlog_data(b"Bpayload"));
        let frame = ReplicationFrame::decode(input.clone()).expect("valid frame");
        let ReplicationFrame::XLogData {
            wal_start,
            wal_end,
            server_time_us,
            data,
        } = frame
        else {
            panic!("expected XLogData, got {frame:?}");
        };
        assert_eq!(wal_start, 0x1_0000_0010);
        assert_eq!(wal_end, 0x1_0000_0020);
        assert_eq!(server_time_us, -5);
        assert_eq!(&data[..], b"Bpayload");
        assert_eq!(
            data.as_ptr(),
            input[25..].as_ptr(),
            "body must be a slice of the input"
        );
    }

    #[test]
    fn decodes_constructed_xlog_data_with_empty_body() {
        let frame =
            ReplicationFrame::decode(Bytes::from(constructed_xlog_data(b""))).expect("valid");
        assert!(matches!(frame, ReplicationFrame::XLogData { data, .. } if data.is_empty()));
    }

    #[test]
    fn decodes_constructed_keepalive_with_reply_requested() {
        let mut input = vec![PRIMARY_KEEPALIVE_TAG];
        input.extend_from_slice(&42_u64.to_be_bytes());
        input.extend_from_slice(&7_i64.to_be_bytes());
        input.push(1);
        assert_eq!(
            ReplicationFrame::decode(Bytes::from(input)),
            Ok(ReplicationFrame::PrimaryKeepalive {
                wal_end: 42,
                server_time_us: 7,
                reply_requested: true
            })
        );
    }

    #[test]
    fn rejects_keepalive_with_trailing_bytes() {
        let mut input = vec![PRIMARY_KEEPALIVE_TAG];
        input.extend_from_slice(&[0; 17]);
        input.push(0xAA);
        assert_eq!(
            ReplicationFrame::decode(Bytes::from(input)),
            Err(DecodeError::TrailingBytes {
                message: "primary keepalive",
                count: 1
            })
        );
    }

    #[test]
    fn rejects_truncated_and_unknown_frames() {
        assert!(matches!(
            ReplicationFrame::decode(Bytes::new()),
            Err(DecodeError::Truncated { .. })
        ));
        let full = constructed_xlog_data(b"");
        for len in 1..full.len() {
            assert!(
                matches!(
                    ReplicationFrame::decode(Bytes::copy_from_slice(&full[..len])),
                    Err(DecodeError::Truncated { .. })
                ),
                "prefix of {len} bytes"
            );
        }
        assert_eq!(
            ReplicationFrame::decode(Bytes::from_static(b"r")),
            Err(DecodeError::UnknownTag(b'r'))
        );
    }

    #[test]
    fn encodes_standby_status_update_byte_for_byte() {
        let mut out = BytesMut::new();
        encode_standby_status_update(0x10, 0x20, 0x30, 0x0102_0304_0506_0708, true, &mut out);
        let mut expected = vec![b'r'];
        expected.extend_from_slice(&0x10_u64.to_be_bytes());
        expected.extend_from_slice(&0x20_u64.to_be_bytes());
        expected.extend_from_slice(&0x30_u64.to_be_bytes());
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.push(1);
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(out.len(), STANDBY_STATUS_UPDATE_LEN);
    }

    #[test]
    fn standby_status_update_appends_to_existing_buffer() {
        let mut out = BytesMut::from(&b"d"[..]);
        encode_standby_status_update(1, 1, 1, 0, false, &mut out);
        assert_eq!(out.len(), 1 + STANDBY_STATUS_UPDATE_LEN);
        assert_eq!(out[0], b'd');
        assert_eq!(out[1], STANDBY_STATUS_UPDATE_TAG);
        assert_eq!(out[STANDBY_STATUS_UPDATE_LEN], 0);
    }
}
