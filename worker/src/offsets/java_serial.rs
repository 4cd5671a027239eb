//! The bytes of Kafka Connect's `FileOffsetBackingStore`: a Java-serialised
//! `java.util.HashMap<byte[], byte[]>`.
//!
//! Connect's standalone worker saves its offsets with
//! `new ObjectOutputStream(file).writeObject(rawMap)`, where `rawMap` maps the converted key
//! bytes to the converted value bytes (either may be null). This module reads and writes exactly
//! that object stream and nothing more general: the Java Object Serialization Stream Protocol
//! (JDK docs, "Object Serialization Stream Protocol", §6.4 grammar) restricted to one HashMap of
//! byte arrays.
//!
//! ```text
//! AC ED 00 05                         STREAM_MAGIC, STREAM_VERSION
//! 73 72 <"java.util.HashMap"> <suid>  TC_OBJECT TC_CLASSDESC name serialVersionUID
//!    03 00 02                         SC_WRITE_METHOD|SC_SERIALIZABLE, 2 fields
//!    46 <"loadFactor"> 49 <"threshold">   'F' float, 'I' int (sorted by name)
//!    78 70                            TC_ENDBLOCKDATA (no annotation), TC_NULL (no superclass)
//! 3F 40 00 00  00 00 00 0C            loadFactor 0.75f, threshold (defaultWriteObject)
//! 77 08 <capacity:i32> <size:i32>     TC_BLOCKDATA: HashMap.writeObject's bucket count and size
//! then `size` times a key and a value, each one of:
//!    75 72 <"[B"> <suid> 02 00 00 78 70 <len:i32> <bytes>   TC_ARRAY with a new class descriptor
//!    75 71 <handle:i32> <len:i32> <bytes>                   TC_ARRAY, class by TC_REFERENCE
//!    71 <handle:i32>                                         the same array again
//!    70                                                      null
//! 78                                  TC_ENDBLOCKDATA: end of HashMap's custom data
//! ```
//!
//! Every class descriptor, object and array gets the next handle, counting from `0x7E0000`
//! (`baseWireHandle`) in the order they appear; a `TC_REFERENCE` names an earlier one. The reader
//! checks every byte it does not need as well: a class other than these two, a wrong
//! serialVersionUID, a length that runs past the end, or trailing bytes make the file corrupt,
//! never a partial map. Lengths are checked against the remaining input before anything is
//! allocated.

/// `java.io.ObjectStreamConstants`.
const STREAM_MAGIC: u16 = 0xACED;
const STREAM_VERSION: u16 = 5;
const TC_NULL: u8 = 0x70;
const TC_REFERENCE: u8 = 0x71;
const TC_CLASSDESC: u8 = 0x72;
const TC_OBJECT: u8 = 0x73;
const TC_ARRAY: u8 = 0x75;
const TC_BLOCKDATA: u8 = 0x77;
const TC_ENDBLOCKDATA: u8 = 0x78;
const BASE_WIRE_HANDLE: u32 = 0x7E_0000;
const SC_WRITE_METHOD: u8 = 0x01;
const SC_SERIALIZABLE: u8 = 0x02;

const HASHMAP_CLASS: &str = "java.util.HashMap";
/// `java.util.HashMap.serialVersionUID`.
const HASHMAP_SUID: i64 = 362_498_820_763_181_265;
const BYTE_ARRAY_CLASS: &str = "[B";
/// The serialVersionUID the JVM computes for `byte[]` (arrays have no declared one).
const BYTE_ARRAY_SUID: i64 = -5_984_413_125_824_719_648;
/// `HashMap`'s default load factor, the one `new HashMap<>()` in Connect uses.
const LOAD_FACTOR: f32 = 0.75;
/// `HashMap.DEFAULT_INITIAL_CAPACITY`.
const DEFAULT_CAPACITY: i32 = 16;

/// One entry of the map: key bytes and value bytes, each possibly null.
pub type RawEntry = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Serialises the entries as `ObjectOutputStream.writeObject(hashMap)` does for a
/// `new HashMap<byte[], byte[]>()` that had them put in. Entries are written in the given order
/// (Java writes bucket order, which for `byte[]` keys depends on identity hash codes, so no order
/// is canonical).
pub fn write_hashmap(entries: &[RawEntry]) -> Vec<u8> {
    let size = entries.len();
    // HashMap grows its table by doubling while size > capacity * 0.75; an empty map has no
    // table and writes the default capacity with threshold 0.
    let (capacity, threshold) = if size == 0 {
        (DEFAULT_CAPACITY, 0)
    } else {
        let mut capacity: i64 = DEFAULT_CAPACITY as i64;
        while size as i64 > capacity * 3 / 4 {
            capacity *= 2;
        }
        (capacity as i32, (capacity * 3 / 4) as i32)
    };
    let mut out = Vec::with_capacity(
        128 + entries
            .iter()
            .map(|(k, v)| k.as_ref().map_or(0, Vec::len) + v.as_ref().map_or(0, Vec::len) + 16)
            .sum::<usize>(),
    );
    out.extend_from_slice(&STREAM_MAGIC.to_be_bytes());
    out.extend_from_slice(&STREAM_VERSION.to_be_bytes());
    out.push(TC_OBJECT);
    out.push(TC_CLASSDESC);
    write_utf(&mut out, HASHMAP_CLASS);
    out.extend_from_slice(&HASHMAP_SUID.to_be_bytes());
    out.push(SC_WRITE_METHOD | SC_SERIALIZABLE);
    out.extend_from_slice(&2u16.to_be_bytes());
    out.push(b'F');
    write_utf(&mut out, "loadFactor");
    out.push(b'I');
    write_utf(&mut out, "threshold");
    out.push(TC_ENDBLOCKDATA);
    out.push(TC_NULL);
    // Handles: 0 = HashMap class descriptor, 1 = the map itself.
    let mut next_handle = BASE_WIRE_HANDLE + 2;
    out.extend_from_slice(&LOAD_FACTOR.to_bits().to_be_bytes());
    out.extend_from_slice(&threshold.to_be_bytes());
    out.push(TC_BLOCKDATA);
    out.push(8);
    out.extend_from_slice(&capacity.to_be_bytes());
    out.extend_from_slice(&(size as i32).to_be_bytes());
    let mut byte_array_class: Option<u32> = None;
    for (key, value) in entries {
        for array in [key, value] {
            let Some(bytes) = array else {
                out.push(TC_NULL);
                continue;
            };
            out.push(TC_ARRAY);
            match byte_array_class {
                Some(handle) => {
                    out.push(TC_REFERENCE);
                    out.extend_from_slice(&handle.to_be_bytes());
                }
                None => {
                    out.push(TC_CLASSDESC);
                    write_utf(&mut out, BYTE_ARRAY_CLASS);
                    out.extend_from_slice(&BYTE_ARRAY_SUID.to_be_bytes());
                    out.push(SC_SERIALIZABLE);
                    out.extend_from_slice(&0u16.to_be_bytes());
                    out.push(TC_ENDBLOCKDATA);
                    out.push(TC_NULL);
                    byte_array_class = Some(next_handle);
                    next_handle += 1;
                }
            }
            // The array's own handle.
            next_handle += 1;
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out.push(TC_ENDBLOCKDATA);
    out
}

/// `DataOutput.writeUTF` for the ASCII class and field names used here.
fn write_utf(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.is_ascii());
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// What the handle table holds: only what a HashMap of byte arrays can refer back to.
#[derive(Clone, Debug)]
enum Handle {
    HashMapClass,
    HashMap,
    ByteArrayClass,
    ByteArray(Vec<u8>),
}

/// Reads a stream written by `writeObject` of a `HashMap<byte[], byte[]>`. The error says what
/// was wrong and at which byte.
pub fn read_hashmap(input: &[u8]) -> Result<Vec<RawEntry>, String> {
    let mut reader = Reader {
        input,
        position: 0,
        handles: Vec::new(),
    };
    reader.stream()
}

struct Reader<'a> {
    input: &'a [u8],
    position: usize,
    handles: Vec<Handle>,
}

impl Reader<'_> {
    fn stream(&mut self) -> Result<Vec<RawEntry>, String> {
        let magic = self.u16()?;
        let version = self.u16()?;
        if magic != STREAM_MAGIC || version != STREAM_VERSION {
            return Err(format!(
                "not a Java serialisation stream (header {magic:04x} {version:04x}, expected aced 0005)"
            ));
        }
        self.expect(TC_OBJECT, "a HashMap object (TC_OBJECT)")?;
        match self.u8()? {
            TC_CLASSDESC => {
                let name = self.utf()?;
                if name != HASHMAP_CLASS {
                    return Err(format!(
                        "the stored object is a {name}, expected {HASHMAP_CLASS}"
                    ));
                }
                let suid = self.i64()?;
                if suid != HASHMAP_SUID {
                    return Err(format!("{HASHMAP_CLASS} with serialVersionUID {suid}"));
                }
                let flags = self.u8()?;
                if flags != SC_WRITE_METHOD | SC_SERIALIZABLE {
                    return Err(format!("{HASHMAP_CLASS} class flags {flags:#04x}"));
                }
                let fields = self.u16()?;
                let mut names = Vec::new();
                for _ in 0..fields {
                    let type_code = self.u8()?;
                    let name = self.utf()?;
                    names.push((type_code, name));
                }
                if names != [(b'F', "loadFactor".into()), (b'I', "threshold".into())] {
                    return Err(format!("unexpected {HASHMAP_CLASS} fields {names:?}"));
                }
                self.expect(TC_ENDBLOCKDATA, "the end of the class annotation")?;
                self.expect(TC_NULL, "no superclass descriptor")?;
                self.handles.push(Handle::HashMapClass);
            }
            other => {
                return Err(format!(
                    "expected the {HASHMAP_CLASS} class descriptor, found tag {other:#04x}"
                ))
            }
        }
        self.handles.push(Handle::HashMap);
        let load_factor = f32::from_bits(self.u32()?);
        if !(load_factor > 0.0 && load_factor.is_finite()) {
            return Err(format!("HashMap load factor {load_factor}"));
        }
        let _threshold = self.i32()?;
        self.expect(TC_BLOCKDATA, "HashMap's block data (TC_BLOCKDATA)")?;
        let block_length = self.u8()?;
        if block_length != 8 {
            return Err(format!(
                "HashMap block data of {block_length} bytes, expected 8"
            ));
        }
        let _capacity = self.i32()?;
        let size = self.i32()?;
        if size < 0 {
            return Err(format!("HashMap size {size}"));
        }
        // Each entry takes at least two bytes (two TC_NULLs): bound the allocation by the input.
        if size as usize > self.remaining() / 2 {
            return Err(format!(
                "HashMap size {size} exceeds what the remaining {} bytes can hold",
                self.remaining()
            ));
        }
        let mut entries = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let key = self.byte_array_or_null()?;
            let value = self.byte_array_or_null()?;
            entries.push((key, value));
        }
        self.expect(
            TC_ENDBLOCKDATA,
            "the end of HashMap's data (TC_ENDBLOCKDATA)",
        )?;
        if self.remaining() != 0 {
            return Err(format!(
                "{} unexpected bytes after the HashMap",
                self.remaining()
            ));
        }
        Ok(entries)
    }

    fn byte_array_or_null(&mut self) -> Result<Option<Vec<u8>>, String> {
        let at = self.position;
        match self.u8()? {
            TC_NULL => Ok(None),
            TC_REFERENCE => match self.handle()? {
                Handle::ByteArray(bytes) => Ok(Some(bytes)),
                other => Err(format!(
                    "byte {at}: a map entry refers to a {other:?}, expected a byte[]"
                )),
            },
            TC_ARRAY => {
                let class_at = self.position;
                match self.u8()? {
                    TC_CLASSDESC => {
                        let name = self.utf()?;
                        if name != BYTE_ARRAY_CLASS {
                            return Err(format!(
                                "byte {class_at}: map entry of class {name}, expected byte[]"
                            ));
                        }
                        let suid = self.i64()?;
                        if suid != BYTE_ARRAY_SUID {
                            return Err(format!("byte[] with serialVersionUID {suid}"));
                        }
                        self.expect(SC_SERIALIZABLE, "byte[] class flags SC_SERIALIZABLE")?;
                        if self.u16()? != 0 {
                            return Err("byte[] class descriptor with fields".into());
                        }
                        self.expect(TC_ENDBLOCKDATA, "the end of the class annotation")?;
                        self.expect(TC_NULL, "no superclass descriptor")?;
                        self.handles.push(Handle::ByteArrayClass);
                    }
                    TC_REFERENCE => match self.handle()? {
                        Handle::ByteArrayClass => {}
                        other => {
                            return Err(format!(
                                "byte {class_at}: array class refers to a {other:?}, expected byte[]"
                            ))
                        }
                    },
                    other => {
                        return Err(format!(
                            "byte {class_at}: expected an array class descriptor, found tag {other:#04x}"
                        ))
                    }
                }
                let length = self.i32()?;
                if length < 0 || length as usize > self.remaining() {
                    return Err(format!(
                        "byte {at}: byte[] of length {length} with {} bytes left",
                        self.remaining()
                    ));
                }
                let bytes = self.take(length as usize)?.to_vec();
                self.handles.push(Handle::ByteArray(bytes.clone()));
                Ok(Some(bytes))
            }
            other => Err(format!(
                "byte {at}: expected a byte[] or null map entry, found tag {other:#04x}"
            )),
        }
    }

    fn handle(&mut self) -> Result<Handle, String> {
        let handle = self.u32()?;
        handle
            .checked_sub(BASE_WIRE_HANDLE)
            .and_then(|index| self.handles.get(index as usize))
            .cloned()
            .ok_or_else(|| format!("reference to unknown handle {handle:#x}"))
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.remaining() < n {
            return Err(format!(
                "truncated at byte {} (needed {n} more bytes, {} left)",
                self.position,
                self.remaining()
            ));
        }
        let slice = &self.input[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        let at = self.position;
        let found = self.u8()?;
        if found != byte {
            return Err(format!(
                "byte {at}: expected {what} ({byte:#04x}), found {found:#04x}"
            ));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(self.u32()? as i32)
    }

    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(b);
        Ok(i64::from_be_bytes(array))
    }

    /// `DataInput.readUTF`: a u16 length and modified UTF-8; class names here are ASCII.
    fn utf(&mut self) -> Result<String, String> {
        let length = self.u16()? as usize;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a class or field name is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Debezium 3.6.3's embedded engine (Kafka Connect 4.3.0), one connector.
    const DEBEZIUM_STREAMING: &[u8] =
        include_bytes!("../../tests/fixtures/offsets/debezium-streaming.dat");
    /// The same worker file after a second connector stored its offset.
    const DEBEZIUM_TWO: &[u8] =
        include_bytes!("../../tests/fixtures/offsets/debezium-two-connectors.dat");

    #[test]
    fn reads_a_file_written_by_connect() {
        let entries = read_hashmap(DEBEZIUM_STREAMING).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].0.as_deref(),
            Some(&br#"["dbzpeer",{"server":"dbz"}]"#[..])
        );
        let value = String::from_utf8(entries[0].1.clone().unwrap()).unwrap();
        assert!(value.starts_with(r#"{"lsn_proc":"#), "{value}");
        let two = read_hashmap(DEBEZIUM_TWO).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(
            two[1].0.as_deref(),
            Some(&br#"["second",{"server":"dbz2"}]"#[..])
        );
    }

    #[test]
    fn writes_byte_for_byte_what_connect_writes() {
        // Connect's order within the file is the HashMap's, which is what the fixture holds.
        assert_eq!(
            write_hashmap(&read_hashmap(DEBEZIUM_STREAMING).unwrap()),
            DEBEZIUM_STREAMING
        );
        assert_eq!(
            write_hashmap(&read_hashmap(DEBEZIUM_TWO).unwrap()),
            DEBEZIUM_TWO
        );
    }

    #[test]
    fn round_trips_nulls_empty_and_growth() {
        for n in [0usize, 1, 12, 13, 30] {
            let mut entries: Vec<RawEntry> = (0..n)
                .map(|i| (Some(format!("k{i}").into_bytes()), Some(vec![i as u8; i])))
                .collect();
            if n > 1 {
                entries[1].1 = None;
                entries[0].0 = None;
            }
            let bytes = write_hashmap(&entries);
            assert_eq!(read_hashmap(&bytes).unwrap(), entries, "n = {n}");
        }
    }

    #[test]
    fn every_truncation_and_a_trailing_byte_are_errors() {
        for cut in 0..DEBEZIUM_TWO.len() {
            assert!(read_hashmap(&DEBEZIUM_TWO[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = DEBEZIUM_TWO.to_vec();
        longer.push(0);
        assert!(read_hashmap(&longer).is_err());
    }

    #[test]
    fn references_to_an_earlier_array_are_followed() {
        // Java writes the same byte[] instance twice as a back-reference.
        let mut bytes = write_hashmap(&[(Some(b"k".to_vec()), Some(b"v".to_vec()))]);
        // Rewrite size to 2 and append (ref to the key array, ref to the value array).
        // The size follows the header, the fields and the capacity: byte 77.
        let size_at = 77;
        assert_eq!(bytes[size_at..size_at + 4], 1i32.to_be_bytes());
        bytes[size_at..size_at + 4].copy_from_slice(&2i32.to_be_bytes());
        bytes.pop();
        // Handles: 0 class, 1 map, 2 [B class, 3 key array, 4 value array.
        bytes.push(TC_REFERENCE);
        bytes.extend_from_slice(&(BASE_WIRE_HANDLE + 4).to_be_bytes());
        bytes.push(TC_REFERENCE);
        bytes.extend_from_slice(&(BASE_WIRE_HANDLE + 3).to_be_bytes());
        bytes.push(TC_ENDBLOCKDATA);
        let entries = read_hashmap(&bytes).unwrap();
        assert_eq!(
            entries,
            vec![
                (Some(b"k".to_vec()), Some(b"v".to_vec())),
                (Some(b"v".to_vec()), Some(b"k".to_vec())),
            ]
        );
    }
}
