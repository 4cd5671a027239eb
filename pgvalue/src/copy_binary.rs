//! `COPY … TO STDOUT (FORMAT binary)` framing, sans-IO.
//!
//! The stream (PostgreSQL docs, "COPY › Binary Format"; `copyto.c`):
//!
//! ```text
//! header:  "PGCOPY\n\xff\r\n\0"  int32 flags (bit 16: OIDs included; bits 0-15 must be 0)
//!          int32 extension length, then that many bytes (skipped)
//! tuple:   int16 field count, then per field int32 length (-1 = NULL) and the bytes
//! trailer: int16 -1
//! ```
//!
//! COPY data messages need not align with tuples, so the caller accumulates bytes and calls
//! [`BinaryCopyReader::next_row`] until it asks for more. Lengths are checked against the bytes
//! present; a field longer than PostgreSQL's 1 GB datum limit is an error rather than a reason
//! to keep buffering.

use std::ops::Range;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Header flag bit 16: each tuple starts with the row's OID (never for `COPY (SELECT …)`).
const FLAG_OIDS: i32 = 1 << 16;
/// PostgreSQL caps a datum at 1 GB.
const MAX_FIELD_BYTES: usize = 1 << 30;

/// The binary COPY stream is not what PostgreSQL writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryCopyError {
    #[error("binary COPY: bad signature")]
    BadSignature,
    #[error("binary COPY: unsupported header flags {0:#x}")]
    UnsupportedFlags(i32),
    #[error("binary COPY: tuple has {found} fields, expected {expected}")]
    FieldCount { found: i16, expected: usize },
    #[error("binary COPY: invalid field length {0}")]
    FieldLength(i32),
    #[error("binary COPY: data after the trailer")]
    AfterTrailer,
}

/// What [`BinaryCopyReader::next_row`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryCopyRow {
    /// The buffer does not hold a whole header or tuple yet.
    NeedMore,
    /// A tuple: its field ranges are in the caller's vector; drop `consumed` bytes afterwards.
    Row { consumed: usize },
    /// The trailer: the stream is complete; drop `consumed` bytes.
    End { consumed: usize },
}

/// Incremental reader of one binary COPY stream with a known number of fields per tuple.
#[derive(Debug)]
pub struct BinaryCopyReader {
    fields: usize,
    header_read: bool,
    ended: bool,
}

impl BinaryCopyReader {
    /// A reader for tuples of `fields` columns.
    pub fn new(fields: usize) -> Self {
        BinaryCopyReader {
            fields,
            header_read: false,
            ended: false,
        }
    }

    /// True once the trailer has been read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Parses the next tuple at the front of `buf` (skipping the header first). On `Row`,
    /// `out` holds one entry per field: the byte range within `buf`, or `None` for NULL.
    pub fn next_row(
        &mut self,
        buf: &[u8],
        out: &mut Vec<Option<Range<usize>>>,
    ) -> Result<BinaryCopyRow, BinaryCopyError> {
        if self.ended {
            return if buf.is_empty() {
                Ok(BinaryCopyRow::End { consumed: 0 })
            } else {
                Err(BinaryCopyError::AfterTrailer)
            };
        }
        if !self.header_read {
            if buf.len() < SIGNATURE.len() + 8 {
                if !SIGNATURE.starts_with(&buf[..buf.len().min(SIGNATURE.len())]) {
                    return Err(BinaryCopyError::BadSignature);
                }
                return Ok(BinaryCopyRow::NeedMore);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(BinaryCopyError::BadSignature);
            }
            let mut at = SIGNATURE.len();
            let flags = be_i32(buf, at);
            if flags & 0xFFFF != 0 || flags & FLAG_OIDS != 0 {
                return Err(BinaryCopyError::UnsupportedFlags(flags));
            }
            let extension = be_i32(buf, at + 4);
            let extension =
                usize::try_from(extension).map_err(|_| BinaryCopyError::FieldLength(extension))?;
            at += 8;
            if buf.len() - at < extension {
                return Ok(BinaryCopyRow::NeedMore);
            }
            at += extension;
            // The header is consumed only together with the first tuple, so a `NeedMore`
            // leaves the caller's buffer untouched and this state consistent.
            let step = self.tuple(&buf[at..], at, out)?;
            return Ok(match step {
                BinaryCopyRow::NeedMore => BinaryCopyRow::NeedMore,
                BinaryCopyRow::Row { consumed } => {
                    self.header_read = true;
                    BinaryCopyRow::Row { consumed }
                }
                BinaryCopyRow::End { consumed } => {
                    self.header_read = true;
                    BinaryCopyRow::End { consumed }
                }
            });
        }
        self.tuple(buf, 0, out)
    }

    /// Parses one tuple or the trailer from `buf`, which starts at `base` in the caller's buffer.
    fn tuple(
        &mut self,
        buf: &[u8],
        base: usize,
        out: &mut Vec<Option<Range<usize>>>,
    ) -> Result<BinaryCopyRow, BinaryCopyError> {
        out.clear();
        if buf.len() < 2 {
            return Ok(BinaryCopyRow::NeedMore);
        }
        let count = i16::from_be_bytes([buf[0], buf[1]]);
        if count == -1 {
            self.ended = true;
            if buf.len() > 2 {
                return Err(BinaryCopyError::AfterTrailer);
            }
            return Ok(BinaryCopyRow::End { consumed: base + 2 });
        }
        if usize::try_from(count).ok() != Some(self.fields) {
            return Err(BinaryCopyError::FieldCount {
                found: count,
                expected: self.fields,
            });
        }
        let mut at = 2usize;
        for _ in 0..self.fields {
            if buf.len() - at < 4 {
                return Ok(BinaryCopyRow::NeedMore);
            }
            let length = be_i32(buf, at);
            at += 4;
            if length == -1 {
                out.push(None);
                continue;
            }
            let length = usize::try_from(length)
                .ok()
                .filter(|&l| l <= MAX_FIELD_BYTES)
                .ok_or(BinaryCopyError::FieldLength(length))?;
            if buf.len() - at < length {
                return Ok(BinaryCopyRow::NeedMore);
            }
            out.push(Some(base + at..base + at + length));
            at += length;
        }
        Ok(BinaryCopyRow::Row {
            consumed: base + at,
        })
    }
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes());
        for row in [[Some(&b"ab"[..]), None], [None, Some(&b""[..])]] {
            v.extend_from_slice(&2i16.to_be_bytes());
            for field in row {
                match field {
                    None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(f) => {
                        v.extend_from_slice(&(f.len() as i32).to_be_bytes());
                        v.extend_from_slice(f);
                    }
                }
            }
        }
        v.extend_from_slice(&(-1i16).to_be_bytes());
        v
    }

    /// Feeds `data` in pieces of `step` bytes, as COPY data messages might split it.
    fn read_all(data: &[u8], step: usize) -> Result<Vec<Vec<Option<Vec<u8>>>>, BinaryCopyError> {
        let mut reader = BinaryCopyReader::new(2);
        let mut buf = Vec::new();
        let mut rows = Vec::new();
        let mut fields = Vec::new();
        let mut fed = 0;
        loop {
            match reader.next_row(&buf, &mut fields)? {
                BinaryCopyRow::NeedMore => {
                    if fed == data.len() {
                        return Ok(rows); // incomplete: the caller reports it
                    }
                    let end = (fed + step).min(data.len());
                    buf.extend_from_slice(&data[fed..end]);
                    fed = end;
                }
                BinaryCopyRow::Row { consumed } => {
                    rows.push(
                        fields
                            .iter()
                            .map(|f| f.clone().map(|r| buf[r].to_vec()))
                            .collect(),
                    );
                    buf.drain(..consumed);
                }
                BinaryCopyRow::End { consumed } => {
                    buf.drain(..consumed);
                    assert!(reader.ended());
                    return Ok(rows);
                }
            }
        }
    }

    #[test]
    fn reads_rows_whatever_the_message_boundaries() {
        let data = stream();
        for step in [1, 2, 3, 7, 1000] {
            let rows = read_all(&data, step).unwrap();
            assert_eq!(
                rows,
                vec![vec![Some(b"ab".to_vec()), None], vec![None, Some(vec![])]],
                "step {step}"
            );
        }
    }

    #[test]
    fn rejects_malformed_streams_without_panicking() {
        let data = stream();
        let mut bad = data.clone();
        bad[0] = b'X';
        assert_eq!(read_all(&bad, 100), Err(BinaryCopyError::BadSignature));
        let mut oids = data.clone();
        oids[11..15].copy_from_slice(&FLAG_OIDS.to_be_bytes());
        assert!(matches!(
            read_all(&oids, 100),
            Err(BinaryCopyError::UnsupportedFlags(_))
        ));
        let mut count = data.clone();
        count[19..21].copy_from_slice(&3i16.to_be_bytes());
        assert!(matches!(
            read_all(&count, 100),
            Err(BinaryCopyError::FieldCount { .. })
        ));
        let mut length = data.clone();
        length[21..25].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(
            read_all(&length, 100),
            Err(BinaryCopyError::FieldLength(-5))
        );
        let mut trailing = data.clone();
        trailing.push(0);
        assert_eq!(read_all(&trailing, 100), Err(BinaryCopyError::AfterTrailer));
        // Every truncation is "need more", never a panic.
        for end in 0..data.len() {
            assert!(read_all(&data[..end], 5).is_ok());
        }
    }
}
