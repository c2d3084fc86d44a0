//! Chunk payload: a block of consecutive rows of one table.
//!
//! Layout: `[format version: u8 = 1] [row count: varint] [row]*`, each row in the canonical
//! encoding of `crate::encode`. Decoding needs the table's shape (rowid or not, column
//! defaults) from its table object.

use crate::encode::{self, DecodeError, Reader};
use crate::value::{Value, ValueRef};

pub const CHUNK_VERSION: u8 = 1;

/// Accumulates encoded rows until the chunker cuts a boundary.
#[derive(Default)]
pub struct ChunkBuilder {
    rows: Vec<u8>,
    row_count: u64,
}

impl ChunkBuilder {
    /// Appends a row and returns its encoded length.
    pub fn push_row(&mut self, rowid: Option<i64>, values: &[ValueRef<'_>], defaults: &[Value]) -> usize {
        let before = self.rows.len();
        encode::put_row(&mut self.rows, rowid, values, defaults);
        self.row_count += 1;
        self.rows.len() - before
    }

    pub fn byte_len(&self) -> usize {
        self.rows.len()
    }

    pub fn row_count(&self) -> u64 {
        self.row_count
    }

    pub fn is_empty(&self) -> bool {
        self.row_count == 0
    }

    /// Returns the plain chunk payload and resets the builder.
    pub fn take(&mut self) -> (Vec<u8>, u64) {
        let mut plain = Vec::with_capacity(self.rows.len() + 11);
        plain.push(CHUNK_VERSION);
        encode::put_varint(&mut plain, self.row_count);
        plain.extend_from_slice(&self.rows);
        let rows = self.row_count;
        self.rows.clear();
        self.row_count = 0;
        (plain, rows)
    }
}

/// Iterates over the rows of a plain chunk payload.
pub struct ChunkReader<'a> {
    reader: Reader<'a>,
    remaining: u64,
    has_rowid: bool,
    defaults: &'a [Value],
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("unsupported chunk format version {0}")]
    Version(u8),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0} bytes follow the last row")]
    Trailing(usize),
}

impl<'a> ChunkReader<'a> {
    pub fn new(plain: &'a [u8], has_rowid: bool, defaults: &'a [Value]) -> Result<Self, ChunkError> {
        let mut reader = Reader::new(plain);
        let version = reader.byte()?;
        if version != CHUNK_VERSION {
            return Err(ChunkError::Version(version));
        }
        let remaining = reader.varint()?;
        Ok(ChunkReader { reader, remaining, has_rowid, defaults })
    }

    pub fn row_count(&self) -> u64 {
        self.remaining
    }

    /// Reads the next row into `out`; `Ok(None)` after the last row.
    pub fn next_row(&mut self, out: &mut Vec<ValueRef<'a>>) -> Result<Option<Option<i64>>, ChunkError> {
        if self.remaining == 0 {
            if !self.reader.is_empty() {
                return Err(ChunkError::Trailing(self.reader.position()));
            }
            return Ok(None);
        }
        self.remaining -= 1;
        Ok(Some(self.reader.row(self.has_rowid, self.defaults, out)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Digest;

    #[test]
    fn builder_and_reader_round_trip() {
        let defaults = vec![Value::Null, Value::Null];
        let mut builder = ChunkBuilder::default();
        builder.push_row(Some(5), &[ValueRef::Text(b"a\0b"), ValueRef::Real(1.0)], &defaults);
        builder.push_row(Some(9), &[ValueRef::Blob(b""), ValueRef::Null], &defaults);
        let (plain, rows) = builder.take();
        assert_eq!(rows, 2);

        let mut reader = ChunkReader::new(&plain, true, &defaults).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.next_row(&mut out).unwrap(), Some(Some(5)));
        assert_eq!(out[0], ValueRef::Text(b"a\0b"));
        assert_eq!(reader.next_row(&mut out).unwrap(), Some(Some(9)));
        assert_eq!(out[0], ValueRef::Blob(b""));
        assert_eq!(reader.next_row(&mut out).unwrap(), None);
    }

    #[test]
    fn chunk_id_known_answer() {
        // Pins the canonical encoding: any change to it changes this id and must come with a
        // new format version.
        let defaults = vec![Value::Null, Value::Null, Value::Null, Value::Null, Value::Null];
        let mut builder = ChunkBuilder::default();
        builder.push_row(
            Some(1),
            &[
                ValueRef::Integer(i64::MIN),
                ValueRef::Real(-0.0),
                ValueRef::Text("zoë 🦀".as_bytes()),
                ValueRef::Blob(&[0, 1, 2]),
                ValueRef::Null,
            ],
            &defaults,
        );
        builder.push_row(Some(-7), &[ValueRef::Integer(42)], &defaults);
        let (plain, _) = builder.take();
        assert_eq!(hex::encode(&plain), KNOWN_PLAIN_HEX);
        assert_eq!(Digest::of(&plain).to_hex(), KNOWN_ID_HEX);
    }

    const KNOWN_PLAIN_HEX: &str = "0102020401ffffffffffffffffff0102000000000000008003097a6fc3ab20f09fa68004030001020d010154";
    const KNOWN_ID_HEX: &str = "8617d6ac25ca7f512506f78eb43bef6c3e67f43b75ea9a0e7cada7f781a109f5";
}
