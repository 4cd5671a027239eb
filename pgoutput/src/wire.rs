//! A bounds-checked reader over one complete message.
//!
//! Every read checks the bytes are present first and reports [`DecodeError::Truncated`] with the
//! field name otherwise; nothing here panics or allocates from a length read off the wire.
//! Byte runs come back as [`Bytes::slice`]s of the input, so message bodies are zero-copy.
//! All integers are big-endian ("network byte order"), as everywhere in the PostgreSQL protocol.

use bytes::Bytes;

use crate::DecodeError;

pub(crate) struct WireReader {
    input: Bytes,
    position: usize,
}

impl WireReader {
    pub(crate) fn new(input: Bytes) -> Self {
        Self { input, position: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let available = self.remaining();
        let end = self.position + N;
        let bytes = self
            .input
            .get(self.position..end)
            .and_then(|slice| <[u8; N]>::try_from(slice).ok())
            .ok_or(DecodeError::Truncated {
                field,
                needed: N,
                available,
            })?;
        self.position = end;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.take::<1>(field).map(|[byte]| byte)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.take(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.take(field).map(u32::from_be_bytes)
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.take(field).map(i32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.take(field).map(u64::from_be_bytes)
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.take(field).map(i64::from_be_bytes)
    }

    /// `len` bytes as a zero-copy slice of the input.
    pub(crate) fn bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let available = self.remaining();
        if len > available {
            return Err(DecodeError::Truncated {
                field,
                needed: len,
                available,
            });
        }
        let slice = self.input.slice(self.position..self.position + len);
        self.position += len;
        Ok(slice)
    }

    /// Everything that is left, as a zero-copy slice.
    pub(crate) fn rest(&mut self) -> Bytes {
        let slice = self.input.slice(self.position..);
        self.position = self.input.len();
        slice
    }

    /// A length-prefixed byte run: Int32 length, then that many bytes.
    pub(crate) fn counted_bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let length = self.i32(field)?;
        let len =
            usize::try_from(length).map_err(|_| DecodeError::NegativeLength { field, length })?;
        self.bytes(len, field)
    }

    /// A NUL-terminated UTF-8 string (the terminator is consumed, not returned).
    pub(crate) fn cstr(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let unread = &self.input[self.position..];
        let nul = unread
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(DecodeError::Truncated {
                field,
                needed: unread.len() + 1,
                available: unread.len(),
            })?;
        let text = std::str::from_utf8(&unread[..nul])
            .map_err(|_| DecodeError::InvalidUtf8 { field })?
            .to_owned();
        self.position += nul + 1;
        Ok(text)
    }

    /// A safe `Vec` capacity for `count` items read off the wire, each at least `item_size`
    /// bytes long: never more items than the remaining input could hold, so a forged count
    /// cannot make us allocate. A count that does not fit is then caught as `Truncated` by the
    /// reads of the items themselves.
    pub(crate) fn capacity_for(&self, count: usize, item_size: usize) -> usize {
        count.min(self.remaining() / item_size.max(1))
    }

    /// Ends a message: any unread byte is an error.
    pub(crate) fn finish(self, message: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { message, count }),
        }
    }
}
