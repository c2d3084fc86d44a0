//! Snapshot record: everything about one snapshot that listing and restoring need, written
//! last. The snapshot root covers the database content only (schema, tables, sequences,
//! header values), so a restored database's own root equals it. Time, labels and
//! statistics are outside the root.

use serde::{Deserialize, Serialize};

use crate::id::{Digest, SnapshotId, TableId};
use crate::value::Value;

pub const SNAPSHOT_VERSION: u8 = 1;
pub const CONTENT_VERSION: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SchemaKind {
    VirtualTable,
    Index,
    View,
    Trigger,
}

impl SchemaKind {
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::VirtualTable => "virtual table",
            SchemaKind::Index => "index",
            SchemaKind::View => "view",
            SchemaKind::Trigger => "trigger",
        }
    }
}

/// A schema entry other than an ordinary table: its `sqlite_schema` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObject {
    pub kind: SchemaKind,
    pub name: String,
    /// The table (or view) the object belongs to: `tbl_name` in `sqlite_schema`.
    pub table: String,
    pub sql: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub id: TableId,
}

/// One `sqlite_sequence` row, kept with its exact values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceEntry {
    pub name: Value,
    pub seq: Value,
}

/// The logical content of a database; its hash is the snapshot root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseContent {
    pub version: u8,
    /// `PRAGMA encoding`: "UTF-8", "UTF-16le" or "UTF-16be".
    pub encoding: String,
    pub user_version: i64,
    pub application_id: i64,
    /// Ordinary and shadow tables, in `sqlite_schema` order.
    pub tables: Vec<TableEntry>,
    /// Virtual tables, indexes, views and triggers, in `sqlite_schema` order, which is an
    /// order that creates each one after what it depends on.
    pub schema: Vec<SchemaObject>,
    pub sequences: Vec<SequenceEntry>,
}

impl DatabaseContent {
    /// Computes the snapshot root: BLAKE3 of the postcard encoding of this content with tables
    /// sorted by name, schema objects by (kind, name) and sequences by name (storage class,
    /// then bytes), so creation order does not change the root.
    pub fn root(&self) -> Digest {
        let mut canonical = self.clone();
        canonical.tables.sort_by(|a, b| a.name.cmp(&b.name));
        canonical.schema.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        canonical.sequences.sort_by(|a, b| a.name.sort_key().cmp(&b.name.sort_key()));
        let bytes = postcard::to_stdvec(&canonical).expect("database content serializes");
        Digest::of(&bytes)
    }

    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Origin of a snapshot: the source it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// "sqlite", "wrangler" or "dump".
    pub kind: String,
    /// Path of the file or project, and for wrangler the database name.
    pub location: String,
    /// True when the source cannot hold every value exactly (a `wrangler d1 export` dump).
    pub lossy: bool,
}

/// Per-table figures kept in the record so `list` and `show` need no other object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub rows: u64,
    /// Plain encoded bytes of every row read.
    pub bytes_read: u64,
    pub chunks: u64,
    /// Chunks this snapshot added to the repository (the rest were already stored).
    pub new_chunks: u64,
    /// Stored (compressed) bytes of every object this snapshot added, of all kinds except
    /// this record itself (whose size is not known while it is being written).
    pub new_bytes: u64,
    pub duration_ms: u64,
    /// Estimated time to restore this snapshot in full, from the restore throughput of the
    /// latest drill in the repository; `None` before the first drill.
    pub projected_restore_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub version: u8,
    pub root: Digest,
    pub content: DatabaseContent,
    /// Milliseconds since the Unix epoch, UTC.
    pub time_ms: i64,
    pub labels: Vec<String>,
    pub source: SourceInfo,
    /// The previous snapshot of the same source, when there is one.
    pub parent: Option<SnapshotId>,
    pub tables: Vec<TableSummary>,
    pub stats: SnapshotStats,
    /// Version of d1snap that wrote the record.
    pub tool_version: String,
}
