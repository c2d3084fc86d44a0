//! Row-level diff of one table between two trees. Subtrees and chunks whose ids are equal
//! on both sides hold the same rows and are never read, so a one-row change in a large table
//! reads one chunk per side.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::encode;
use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest, NodeId};
use crate::object::chunk::ChunkReader;
use crate::object::table::TableObject;
use crate::object::tree::{IndexNode, NodeEntry, TreeRef};
use crate::object::{self, Kind};
use crate::repo::{Repository, Stored};
use crate::scan::ObjectSink;
use crate::value::{Value, ValueRef};

/// Reads tree nodes and chunks, from a repository or from objects kept in memory.
pub trait ObjectReader: Sync {
    fn node(&self, id: &NodeId, table: &str) -> Result<IndexNode>;
    fn chunk(&self, id: &ChunkId, table: &str) -> Result<Vec<u8>>;
}

impl ObjectReader for Repository {
    fn node(&self, id: &NodeId, table: &str) -> Result<IndexNode> {
        self.get_node(id, &format!("table {table:?}"))
    }

    fn chunk(&self, id: &ChunkId, table: &str) -> Result<Vec<u8>> {
        self.get_chunk(id, &format!("table {table:?}"))
    }
}

/// Objects of a live scan that the repository does not hold, kept in memory so a live
/// database can be diffed row by row against a snapshot. Memory grows with the size of the
/// difference, not of the database: chunks already in the repository are not kept.
pub struct LiveObjects<'r> {
    repo: &'r Repository,
    kept: Mutex<HashMap<Digest, Vec<u8>>>,
}

impl<'r> LiveObjects<'r> {
    pub fn new(repo: &'r Repository) -> Self {
        LiveObjects { repo, kept: Mutex::new(HashMap::new()) }
    }

    fn kept(&self, id: &Digest) -> Option<Vec<u8>> {
        self.kept.lock().expect("kept objects lock").get(id).cloned()
    }
}

impl ObjectSink for LiveObjects<'_> {
    fn put(&self, kind: Kind, id: Digest, plain: &[u8], _previous: Option<&dyn Fn() -> Option<Digest>>) -> Result<Stored> {
        let keep = match kind {
            Kind::Node => true,
            Kind::Chunk => !self.repo.has_object(Kind::Chunk, &id)?,
            Kind::Table | Kind::Snapshot | Kind::Index => false,
        };
        if keep {
            self.kept.lock().expect("kept objects lock").insert(id, plain.to_vec());
        }
        Ok(Stored { id, new: false, stored_bytes: 0 })
    }
}

impl ObjectReader for LiveObjects<'_> {
    fn node(&self, id: &NodeId, table: &str) -> Result<IndexNode> {
        match self.kept(&id.0) {
            Some(plain) => object::from_plain(Kind::Node, &id.0, &plain),
            None => self.repo.node(id, table),
        }
    }

    fn chunk(&self, id: &ChunkId, table: &str) -> Result<Vec<u8>> {
        match self.kept(&id.0) {
            Some(plain) => Ok(plain),
            None => self.repo.chunk(id, table),
        }
    }
}

/// One side of a table diff.
pub struct Side<'a> {
    pub reader: &'a dyn ObjectReader,
    pub table: &'a TableObject,
}

/// A row's identity: its rowid, or its primary-key values for a WITHOUT ROWID table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Rowid(i64),
    PrimaryKey(Vec<u8>),
}

/// A row with its values by column name.
#[derive(Clone, Debug)]
pub struct Row {
    pub rowid: Option<i64>,
    /// Stored columns in table order.
    pub values: Vec<(String, Value)>,
}

impl Row {
    pub fn value(&self, column: &str) -> Option<&Value> {
        self.values.iter().find(|(name, _)| name == column).map(|(_, v)| v)
    }
}

/// Difference of one row between side A and side B.
pub enum RowEvent<'e> {
    /// In B only.
    Added { b: &'e Row },
    /// In A only.
    Removed { a: &'e Row },
    /// In both, with these columns (present on both sides) holding different values.
    Changed { a: &'e Row, b: &'e Row, columns: &'e [String] },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub nodes_read: u64,
    pub chunks_read: u64,
}

enum Frontier {
    Node(NodeId, u8),
    Chunk(NodeEntry),
}

impl Frontier {
    fn id(&self) -> Digest {
        match self {
            Frontier::Node(id, _) => id.0,
            Frontier::Chunk(entry) => entry.id,
        }
    }

    fn level(&self) -> Option<u8> {
        match self {
            Frontier::Node(_, level) => Some(*level),
            Frontier::Chunk(_) => None,
        }
    }
}

/// Finds the chunks present on one side only, reading only nodes whose ids differ.
fn differing_chunks(a: &Side<'_>, b: &Side<'_>, counts: &mut DiffCounts) -> Result<(Vec<NodeEntry>, Vec<NodeEntry>)> {
    let start = |tree: Option<TreeRef>| -> Vec<Frontier> { tree.map(|t| vec![Frontier::Node(t.root, t.height)]).unwrap_or_default() };
    let mut front_a = start(a.table.tree);
    let mut front_b = start(b.table.tree);
    loop {
        drop_common(&mut front_a, &mut front_b);
        let top = front_a.iter().chain(front_b.iter()).filter_map(Frontier::level).max();
        let Some(level) = top else { break };
        front_a = expand(a, front_a, level, counts)?;
        front_b = expand(b, front_b, level, counts)?;
    }
    let chunks = |front: Vec<Frontier>| front.into_iter().filter_map(|f| match f { Frontier::Chunk(e) => Some(e), Frontier::Node(..) => None }).collect();
    Ok((chunks(front_a), chunks(front_b)))
}

/// Removes entries whose ids appear on both sides: equal ids mean equal contents.
fn drop_common(a: &mut Vec<Frontier>, b: &mut Vec<Frontier>) {
    let ids_a: HashSet<Digest> = a.iter().map(Frontier::id).collect();
    let common: HashSet<Digest> = b.iter().map(Frontier::id).filter(|id| ids_a.contains(id)).collect();
    a.retain(|f| !common.contains(&f.id()));
    b.retain(|f| !common.contains(&f.id()));
}

fn expand(side: &Side<'_>, front: Vec<Frontier>, level: u8, counts: &mut DiffCounts) -> Result<Vec<Frontier>> {
    let mut out = Vec::with_capacity(front.len());
    for item in front {
        match item {
            Frontier::Node(id, node_level) if node_level == level => {
                let node = side.reader.node(&id, &side.table.name)?;
                counts.nodes_read += 1;
                if node.level != level {
                    return Err(Error::Corrupt { kind: Kind::Node.name(), id: id.to_hex(), detail: format!("level {} where {level} was expected", node.level) });
                }
                for entry in node.entries {
                    out.push(if level == 0 { Frontier::Chunk(entry) } else { Frontier::Node(NodeId(entry.id), level - 1) });
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Names of a table's declared primary key when it identifies rows apart from the rowid
/// (a WITHOUT ROWID key, or a PRIMARY KEY that is not the INTEGER PRIMARY KEY alias).
pub(crate) fn declared_key(table: &TableObject) -> Option<Vec<String>> {
    let key: Vec<String> = table.primary_key().into_iter().map(|i| table.columns[i].name.clone()).collect();
    (!key.is_empty() && table.rowid_alias.is_none()).then_some(key)
}

/// Columns that identify a row on both sides: the declared primary key when both sides
/// declare the same one, so rows match even where their rowids differ (a database loaded
/// from a dump gets new rowids). `None` means rows are matched by rowid.
pub fn key_columns(a: &TableObject, b: &TableObject) -> Result<Option<Vec<String>>> {
    match (declared_key(a), declared_key(b)) {
        (Some(ka), Some(kb)) if ka == kb => Ok(Some(ka)),
        _ if a.without_rowid || b.without_rowid => Err(Error::Invalid(format!(
            "table {:?} changed its primary key, so its rows cannot be matched between the two sides",
            a.name
        ))),
        _ => Ok(None),
    }
}

/// Decodes the rows of the given chunks, calling `visit` with each row and its key.
fn for_each_row(
    side: &Side<'_>,
    chunks: &[NodeEntry],
    key_names: Option<&[String]>,
    counts: &mut DiffCounts,
    visit: &mut dyn FnMut(RowKey, Row) -> Result<()>,
) -> Result<()> {
    let table = side.table;
    let defaults = table.trailing_defaults();
    let stored = table.stored_columns();
    let names: Vec<String> = stored.iter().map(|&i| table.columns[i].name.clone()).collect();
    let key_positions: Vec<usize> = match key_names {
        Some(key_names) => key_names
            .iter()
            .map(|key| {
                names.iter().position(|n| n == key).ok_or_else(|| Error::Invalid(format!("table {:?}: key column {key:?} is not stored", table.name)))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    for entry in chunks {
        let id = ChunkId(entry.id);
        let plain = side.reader.chunk(&id, &table.name)?;
        counts.chunks_read += 1;
        let corrupt = |detail: String| Error::Corrupt { kind: "chunk", id: id.to_hex(), detail };
        let mut reader = ChunkReader::new(&plain, table.has_rowid(), &defaults).map_err(|e| corrupt(e.to_string()))?;
        let mut values: Vec<ValueRef<'_>> = Vec::new();
        while let Some(rowid) = reader.next_row(&mut values).map_err(|e| corrupt(e.to_string()))? {
            // SQLite lets a rowid table's PRIMARY KEY hold several NULLs, so such rows are
            // matched by rowid instead.
            let null_key = key_positions.iter().any(|&p| matches!(values[p], ValueRef::Null));
            let key = match (key_names, rowid) {
                (None, Some(rowid)) => RowKey::Rowid(rowid),
                (Some(_), Some(rowid)) if null_key => RowKey::Rowid(rowid),
                _ => {
                    let mut bytes = Vec::new();
                    for &position in &key_positions {
                        encode::put_value(&mut bytes, values[position]);
                    }
                    RowKey::PrimaryKey(bytes)
                }
            };
            let row = Row { rowid, values: names.iter().cloned().zip(values.iter().map(|v| v.to_value())).collect() };
            visit(key, row)?;
        }
    }
    Ok(())
}

/// Compares the rows of one table on two sides and calls `visit` for each difference.
/// Only the rows of side A's differing chunks are kept in memory.
pub fn diff_rows(a: &Side<'_>, b: &Side<'_>, visit: &mut dyn FnMut(RowEvent<'_>) -> Result<()>) -> Result<DiffCounts> {
    let mut counts = DiffCounts::default();
    let (chunks_a, chunks_b) = differing_chunks(a, b, &mut counts)?;
    let key_names = key_columns(a.table, b.table)?;
    let mut rows_a: HashMap<RowKey, Row> = HashMap::new();
    let mut order_a: Vec<RowKey> = Vec::new();
    for_each_row(a, &chunks_a, key_names.as_deref(), &mut counts, &mut |key, row| {
        order_a.push(key.clone());
        rows_a.insert(key, row);
        Ok(())
    })?;
    let mut tally = (0u64, 0u64);
    for_each_row(b, &chunks_b, key_names.as_deref(), &mut counts, &mut |key, row_b| {
        match rows_a.remove(&key) {
            Some(row_a) => {
                let columns: Vec<String> = row_a
                    .values
                    .iter()
                    .filter(|(name, value)| row_b.value(name).is_some_and(|other| other != value))
                    .map(|(name, _)| name.clone())
                    .collect();
                // Rows matched by primary key may sit at different rowids on the two sides.
                let rowid_moved = row_a.rowid != row_b.rowid;
                if !columns.is_empty() || rowid_moved {
                    tally.1 += 1;
                    visit(RowEvent::Changed { a: &row_a, b: &row_b, columns: &columns })?;
                }
            }
            None => {
                tally.0 += 1;
                visit(RowEvent::Added { b: &row_b })?;
            }
        }
        Ok(())
    })?;
    counts.added = tally.0;
    counts.changed = tally.1;
    for key in order_a {
        if let Some(row) = rows_a.remove(&key) {
            counts.removed += 1;
            visit(RowEvent::Removed { a: &row })?;
        }
    }
    Ok(counts)
}
