//! Canonical row encoding: the bytes a chunk is made of. The encoding depends only on the
//! logical values (never on page layout, VACUUM, page size or journal mode), so two databases
//! with the same content give the same chunk ids.
//!
//! Row layout (all integers are LEB128 varints, signed ones zigzag-mapped first):
//! `[rowid: zigzag varint, rowid tables only] [value count: varint] [value]*`, where a value
//! is a tag byte followed by its payload: 0 NULL; 1 INTEGER + zigzag varint; 2 REAL + 8 bytes
//! of the IEEE-754 bits, little-endian; 3 TEXT + varint length + bytes; 4 BLOB + varint
//! length + bytes. Trailing values equal to their column's constant default are left out,
//! as SQLite's record format does, so `ALTER TABLE ADD COLUMN` leaves existing rows' bytes
//! unchanged.

use crate::value::{Value, ValueRef};

const TAG_NULL: u8 = 0;
const TAG_INTEGER: u8 = 1;
const TAG_REAL: u8 = 2;
const TAG_TEXT: u8 = 3;
const TAG_BLOB: u8 = 4;

/// Error from decoding bytes that are not a valid row encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("row encoding ends early at byte {0}")]
    Truncated(usize),
    #[error("invalid value tag {tag} at byte {offset}")]
    InvalidTag { tag: u8, offset: usize },
    #[error("varint too long at byte {0}")]
    VarintOverflow(usize),
    #[error("row has {found} values but the table has {expected} stored columns")]
    TooManyValues { found: u64, expected: usize },
}

pub fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends one value in canonical form.
pub fn put_value(buf: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => buf.push(TAG_NULL),
        ValueRef::Integer(i) => {
            buf.push(TAG_INTEGER);
            put_varint(buf, zigzag(i));
        }
        ValueRef::Real(r) => {
            buf.push(TAG_REAL);
            buf.extend_from_slice(&r.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            buf.push(TAG_TEXT);
            put_varint(buf, t.len() as u64);
            buf.extend_from_slice(t);
        }
        ValueRef::Blob(b) => {
            buf.push(TAG_BLOB);
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
    }
}

/// Appends one row. `values` are the stored columns in table order (generated columns and a
/// rowid alias column left out); `defaults` holds, per column, the value a missing trailing
/// value decodes to.
pub fn put_row(buf: &mut Vec<u8>, rowid: Option<i64>, values: &[ValueRef<'_>], defaults: &[Value]) {
    if let Some(rowid) = rowid {
        put_varint(buf, zigzag(rowid));
    }
    let mut count = values.len();
    while count > 0 && defaults.get(count - 1).is_some_and(|d| d.as_ref() == values[count - 1]) {
        count -= 1;
    }
    put_varint(buf, count as u64);
    for value in &values[..count] {
        put_value(buf, *value);
    }
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(byte)
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated(self.bytes.len()))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow(start))
    }

    pub fn value(&mut self) -> Result<ValueRef<'a>, DecodeError> {
        let offset = self.pos;
        let tag = self.byte()?;
        Ok(match tag {
            TAG_NULL => ValueRef::Null,
            TAG_INTEGER => ValueRef::Integer(unzigzag(self.varint()?)),
            TAG_REAL => {
                let mut bits = [0u8; 8];
                bits.copy_from_slice(self.take(8)?);
                ValueRef::Real(f64::from_bits(u64::from_le_bytes(bits)))
            }
            TAG_TEXT => {
                let len = self.varint()? as usize;
                ValueRef::Text(self.take(len)?)
            }
            TAG_BLOB => {
                let len = self.varint()? as usize;
                ValueRef::Blob(self.take(len)?)
            }
            tag => return Err(DecodeError::InvalidTag { tag, offset }),
        })
    }

    /// Reads one row into `out`, filling left-out trailing values from `defaults`.
    pub fn row(
        &mut self,
        has_rowid: bool,
        defaults: &'a [Value],
        out: &mut Vec<ValueRef<'a>>,
    ) -> Result<Option<i64>, DecodeError> {
        let rowid = if has_rowid { Some(unzigzag(self.varint()?)) } else { None };
        let count = self.varint()?;
        if count > defaults.len() as u64 {
            return Err(DecodeError::TooManyValues { found: count, expected: defaults.len() });
        }
        out.clear();
        for _ in 0..count {
            out.push(self.value()?);
        }
        out.extend(defaults[count as usize..].iter().map(Value::as_ref));
        Ok(rowid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Integer),
            any::<u64>().prop_map(|bits| Value::Real(f64::from_bits(bits))),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
        ]
    }

    fn round_trip(rowid: Option<i64>, values: &[Value], defaults: &[Value]) -> (Option<i64>, Vec<Value>) {
        let refs: Vec<ValueRef<'_>> = values.iter().map(Value::as_ref).collect();
        let mut buf = Vec::new();
        put_row(&mut buf, rowid, &refs, defaults);
        let mut reader = Reader::new(&buf);
        let mut out = Vec::new();
        let decoded_rowid = reader.row(rowid.is_some(), defaults, &mut out).unwrap();
        assert!(reader.is_empty());
        (decoded_rowid, out.into_iter().map(ValueRef::to_value).collect())
    }

    proptest! {
        #[test]
        fn row_round_trips_exactly(
            rowid in proptest::option::of(any::<i64>()),
            pairs in proptest::collection::vec((arb_value(), arb_value()), 0..12),
        ) {
            let (values, defaults): (Vec<Value>, Vec<Value>) = pairs.into_iter().unzip();
            let (decoded_rowid, decoded) = round_trip(rowid, &values, &defaults);
            prop_assert_eq!(decoded_rowid, rowid);
            prop_assert_eq!(decoded, values);
        }

        #[test]
        fn varint_round_trips(value in any::<u64>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            prop_assert_eq!(Reader::new(&buf).varint().unwrap(), value);
        }

        #[test]
        fn zigzag_round_trips(value in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(value)), value);
        }
    }

    #[test]
    fn trailing_defaults_are_left_out() {
        let defaults = vec![Value::Null, Value::Null, Value::Integer(5)];
        let short = [ValueRef::Integer(1), ValueRef::Null];
        let long = [ValueRef::Integer(1), ValueRef::Null, ValueRef::Integer(5)];
        let mut a = Vec::new();
        let mut b = Vec::new();
        put_row(&mut a, Some(7), &short, &defaults[..2]);
        put_row(&mut b, Some(7), &long, &defaults);
        assert_eq!(a, b);
    }

    #[test]
    fn default_of_other_storage_class_is_kept() {
        let defaults = vec![Value::Integer(5)];
        let (_, decoded) = round_trip(None, &[Value::Real(5.0)], &defaults);
        assert_eq!(decoded, vec![Value::Real(5.0)]);
    }

    #[test]
    fn negative_zero_keeps_its_sign_bit() {
        let (_, decoded) = round_trip(None, &[Value::Real(-0.0)], &[Value::Null]);
        assert!(matches!(decoded[0], Value::Real(r) if r.to_bits() == (-0.0f64).to_bits()));
    }

    #[test]
    fn truncated_row_is_an_error() {
        let mut buf = Vec::new();
        put_row(&mut buf, Some(1), &[ValueRef::Text(b"hello")], &[Value::Null]);
        buf.truncate(buf.len() - 2);
        let mut out = Vec::new();
        let result = Reader::new(&buf).row(true, &[Value::Null], &mut out);
        assert!(matches!(result, Err(DecodeError::Truncated(_))));
    }

    #[test]
    fn invalid_tag_is_an_error() {
        let buf = [1u8, 9];
        let mut out = Vec::new();
        let result = Reader::new(&buf).row(false, &[Value::Null], &mut out);
        assert!(matches!(result, Err(DecodeError::InvalidTag { tag: 9, .. })));
    }
}
