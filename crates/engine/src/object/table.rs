//! Table object: one table's definition and the root of its index tree. Its id (the hash of
//! its plain bytes) is the table's Merkle root, so an unchanged table costs nothing in a new
//! snapshot and two tables compare equal exactly when their ids do.

use serde::{Deserialize, Serialize};

use crate::object::tree::TreeRef;
use crate::value::Value;

pub const TABLE_VERSION: u8 = 1;

/// `hidden` values of `PRAGMA table_xinfo`: 2 and 3 are VIRTUAL and STORED generated columns,
/// which are recomputed by SQLite and never stored in chunks.
pub const HIDDEN_GENERATED_VIRTUAL: u8 = 2;
pub const HIDDEN_GENERATED_STORED: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// Declared type as written in the CREATE statement ("" when none).
    pub decl_type: String,
    /// `hidden` from `PRAGMA table_xinfo`.
    pub hidden: u8,
    pub not_null: bool,
    /// Default expression text as SQLite reports it.
    pub default_sql: Option<String>,
    /// Position in the primary key (1-based), 0 when not part of it.
    pub pk: u32,
    /// Value a row's left-out trailing value decodes to: the constant default after the
    /// column's affinity, or NULL when the default is absent or not constant.
    pub trailing_default: Value,
}

impl Column {
    pub fn is_generated(&self) -> bool {
        self.hidden == HIDDEN_GENERATED_VIRTUAL || self.hidden == HIDDEN_GENERATED_STORED
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableObject {
    pub version: u8,
    pub name: String,
    /// The CREATE TABLE statement from `sqlite_schema`, byte for byte.
    pub sql: String,
    pub without_rowid: bool,
    pub strict: bool,
    /// A shadow table that a virtual table (such as FTS5) created and owns.
    pub shadow: bool,
    pub columns: Vec<Column>,
    /// Index in `columns` of the INTEGER PRIMARY KEY column that aliases the rowid.
    pub rowid_alias: Option<u32>,
    pub rows: u64,
    /// Plain encoded bytes of all rows.
    pub bytes: u64,
    pub chunks: u64,
    pub tree: Option<TreeRef>,
}

impl TableObject {
    pub fn has_rowid(&self) -> bool {
        !self.without_rowid
    }

    /// Indexes into `columns` of the values a chunk row holds, in order: every column that is
    /// neither generated nor the rowid alias.
    pub fn stored_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(i, c)| !c.is_generated() && self.rowid_alias != Some(*i as u32))
            .map(|(i, _)| i)
            .collect()
    }

    /// The trailing defaults of the stored columns, in chunk order.
    pub fn trailing_defaults(&self) -> Vec<Value> {
        self.stored_columns().into_iter().map(|i| self.columns[i].trailing_default.clone()).collect()
    }

    /// Indexes into `columns` of the primary key, in key order.
    pub fn primary_key(&self) -> Vec<usize> {
        let mut key: Vec<(u32, usize)> =
            self.columns.iter().enumerate().filter(|(_, c)| c.pk > 0).map(|(i, c)| (c.pk, i)).collect();
        key.sort();
        key.into_iter().map(|(_, i)| i).collect()
    }
}
