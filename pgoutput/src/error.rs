//! The one error type of this crate.
//!
//! Every decoding failure is a property of the bytes handed in, never of I/O: the caller hands
//! in one complete CopyData payload or one complete pgoutput message, so input that ends early is
//! reported as [`DecodeError::Truncated`] and is a protocol violation (or a bug in the framing
//! layer above), not a request for more bytes.

/// Why a replication frame or a pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before `field` was complete.
    #[error("truncated {field}: needed {needed} more byte(s), {available} available")]
    Truncated {
        /// The field being read when the input ran out.
        field: &'static str,
        /// Bytes the field needs (for a string: at least one more than is left).
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },

    /// The first byte does not name a frame or message kind this crate knows.
    #[error("unknown message tag {0:#04x}")]
    UnknownTag(u8),

    /// A byte with a fixed set of legal values (tuple marker, column kind, replica identity)
    /// held something else.
    #[error("unexpected byte {byte:#04x} in {field}")]
    UnexpectedByte {
        /// The field that holds the byte.
        field: &'static str,
        /// The byte found on the wire.
        byte: u8,
    },

    /// A complete message was followed by more bytes.
    #[error("{count} trailing byte(s) after a complete {message} message")]
    TrailingBytes {
        /// The message that was complete.
        message: &'static str,
        /// How many bytes were left over.
        count: usize,
    },

    /// A NUL-terminated string was not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The string field.
        field: &'static str,
    },

    /// A length field was negative (other than where the protocol gives -1 a meaning).
    #[error("negative length {length} for {field}")]
    NegativeLength {
        /// The length-prefixed field.
        field: &'static str,
        /// The length read off the wire.
        length: i32,
    },
}
