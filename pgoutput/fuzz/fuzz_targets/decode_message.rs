//! Feeds arbitrary bytes to both decoders, the pgoutput message decoder under every decode
//! context (protocol versions 1 to 4, inside and outside a streamed segment).
//!
//! Neither may panic, and a success must be explainable: a decoded XLogData body is a slice of
//! the input, and a message decoded once decodes the same way again.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pgoutput::frame::ReplicationFrame;
use pgoutput::message::{DecodeContext, LogicalReplicationMessage};

const PROTOCOL_VERSIONS: [u32; 4] = [1, 2, 3, 4];

fuzz_target!(|input: &[u8]| {
    let input = Bytes::copy_from_slice(input);

    if let Ok(ReplicationFrame::XLogData { data, .. }) = ReplicationFrame::decode(input.clone()) {
        assert_eq!(data.len() + 25, input.len());
        for protocol_version in PROTOCOL_VERSIONS {
            for in_streamed_transaction in [false, true] {
                let ctx = DecodeContext {
                    protocol_version,
                    in_streamed_transaction,
                };
                let _ = LogicalReplicationMessage::decode(data.clone(), &ctx);
            }
        }
    }

    for protocol_version in PROTOCOL_VERSIONS {
        for in_streamed_transaction in [false, true] {
            let ctx = DecodeContext {
                protocol_version,
                in_streamed_transaction,
            };
            let first = LogicalReplicationMessage::decode(input.clone(), &ctx);
            let again = LogicalReplicationMessage::decode(input.clone(), &ctx);
            assert_eq!(first, again);
        }
    }
});
