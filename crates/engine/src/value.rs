//! SQLite values held exactly: TEXT as bytes (it may hold NUL or invalid UTF-8) and REAL
//! compared by its bits, so -0.0 and 0.0 stay distinct.

use serde::{Deserialize, Serialize};

/// An owned SQLite value of one of the five storage classes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// A borrowed SQLite value, as read from a row or a chunk without copying.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }

    /// Name of the storage class, as `typeof()` returns it.
    pub fn storage_class(&self) -> &'static str {
        self.as_ref().storage_class()
    }

    /// A total order for sorting: storage class first, then the canonical bytes.
    pub fn sort_key(&self) -> (u8, Vec<u8>) {
        match self {
            Value::Null => (0, Vec::new()),
            Value::Integer(i) => (1, i.to_be_bytes().to_vec()),
            Value::Real(r) => (2, r.to_bits().to_be_bytes().to_vec()),
            Value::Text(t) => (3, t.clone()),
            Value::Blob(b) => (4, b.clone()),
        }
    }

    /// Short human-readable form for messages: text as a quoted string, numbers as numbers.
    pub fn display(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => format!("{r:?}"),
            Value::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
            Value::Blob(b) => format!("X'{}'", hex::encode(b)),
        }
    }
}

impl ValueRef<'_> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(t.to_vec()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }

    pub fn storage_class(self) -> &'static str {
        match self {
            ValueRef::Null => "null",
            ValueRef::Integer(_) => "integer",
            ValueRef::Real(_) => "real",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "blob",
        }
    }
}

/// Exact equality: same storage class and same bits.
impl PartialEq<ValueRef<'_>> for ValueRef<'_> {
    fn eq(&self, other: &ValueRef<'_>) -> bool {
        match (*self, *other) {
            (ValueRef::Null, ValueRef::Null) => true,
            (ValueRef::Integer(a), ValueRef::Integer(b)) => a == b,
            (ValueRef::Real(a), ValueRef::Real(b)) => a.to_bits() == b.to_bits(),
            (ValueRef::Text(a), ValueRef::Text(b)) => a == b,
            (ValueRef::Blob(a), ValueRef::Blob(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for Value {}

impl<'a> From<rusqlite::types::ValueRef<'a>> for ValueRef<'a> {
    fn from(value: rusqlite::types::ValueRef<'a>) -> Self {
        match value {
            rusqlite::types::ValueRef::Null => ValueRef::Null,
            rusqlite::types::ValueRef::Integer(i) => ValueRef::Integer(i),
            rusqlite::types::ValueRef::Real(r) => ValueRef::Real(r),
            rusqlite::types::ValueRef::Text(t) => ValueRef::Text(t),
            rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl rusqlite::ToSql for ValueRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        // Text is bound from its bytes with an explicit length, so NUL and invalid UTF-8 survive.
        let value = match *self {
            ValueRef::Null => rusqlite::types::ValueRef::Null,
            ValueRef::Integer(i) => rusqlite::types::ValueRef::Integer(i),
            ValueRef::Real(r) => rusqlite::types::ValueRef::Real(r),
            ValueRef::Text(t) => rusqlite::types::ValueRef::Text(t),
            ValueRef::Blob(b) => rusqlite::types::ValueRef::Blob(b),
        };
        Ok(rusqlite::types::ToSqlOutput::Borrowed(value))
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        let value = match self {
            Value::Null => rusqlite::types::ValueRef::Null,
            Value::Integer(i) => rusqlite::types::ValueRef::Integer(*i),
            Value::Real(r) => rusqlite::types::ValueRef::Real(*r),
            Value::Text(t) => rusqlite::types::ValueRef::Text(t),
            Value::Blob(b) => rusqlite::types::ValueRef::Blob(b),
        };
        Ok(rusqlite::types::ToSqlOutput::Borrowed(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_equality_distinguishes_negative_zero() {
        assert_ne!(Value::Real(-0.0), Value::Real(0.0));
    }

    #[test]
    fn empty_text_and_empty_blob_differ() {
        assert_ne!(Value::Text(Vec::new()), Value::Blob(Vec::new()));
    }

    #[test]
    fn integer_and_real_of_same_number_differ() {
        assert_ne!(Value::Integer(1), Value::Real(1.0));
    }
}
