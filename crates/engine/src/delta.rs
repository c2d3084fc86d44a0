//! Finding the previous version of a chunk or tree node, so that a snapshot stores what
//! changed in it instead of all of it.
//!
//! The previous version is the object at the same position in the same table of the parent
//! snapshot (the last one taken from the same source): the chunk, or the node at the same
//! level, whose rows start at or before the new object's first row. Positions are counted
//! in rows, so an update, which keeps every row where it was, finds the exact old chunk. An
//! insert or delete shifts later positions by a few rows, and the old chunk still shares
//! most of its rows with the new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::id::{Digest, NodeId};
use crate::object::snapshot::DatabaseContent;
use crate::repo::Repository;

/// Start row and id of each object of one level of a table's tree, in row order.
type Level = Vec<(u64, Digest)>;

/// Objects of one table of the parent snapshot: `levels[0]` lists chunks, `levels[k]` the
/// nodes of level `k - 1`.
#[derive(Default)]
struct TableVersions {
    levels: Vec<Level>,
}

pub struct PreviousVersions<'a> {
    repo: &'a Repository,
    parent: DatabaseContent,
    /// Filled per table on first use, so an unchanged table costs no reads.
    tables: Mutex<HashMap<String, Arc<TableVersions>>>,
}

impl<'a> PreviousVersions<'a> {
    pub fn new(repo: &'a Repository, parent: DatabaseContent) -> Self {
        PreviousVersions { repo, parent, tables: Mutex::new(HashMap::new()) }
    }

    /// Finds the parent's chunk of `table` that contains row number `start_row`.
    pub fn chunk(&self, table: &str, start_row: u64) -> Option<Digest> {
        self.find(table, 0, start_row)
    }

    /// Finds the parent's node of `table` at `level` whose rows start at or before `start_row`.
    pub fn node(&self, table: &str, level: u8, start_row: u64) -> Option<Digest> {
        self.find(table, usize::from(level) + 1, start_row)
    }

    fn find(&self, table: &str, level: usize, start_row: u64) -> Option<Digest> {
        let versions = self.table(table)?;
        let level = versions.levels.get(level)?;
        let after = level.partition_point(|(start, _)| *start <= start_row);
        after.checked_sub(1).map(|i| level[i].1)
    }

    fn table(&self, name: &str) -> Option<Arc<TableVersions>> {
        let mut tables = self.tables.lock().expect("previous versions lock");
        if let Some(found) = tables.get(name) {
            return Some(found.clone());
        }
        let versions = Arc::new(self.load(name).unwrap_or_else(|error| {
            tracing::debug!(table = name, %error, "the parent snapshot's tree cannot be read; storing this table's objects whole");
            TableVersions::default()
        }));
        tables.insert(name.to_string(), versions.clone());
        Some(versions)
    }

    /// Walks the parent's tree of `name` in row order, recording where each object starts.
    fn load(&self, name: &str) -> crate::Result<TableVersions> {
        let mut versions = TableVersions::default();
        let Some(entry) = self.parent.tables.iter().find(|t| t.name == name) else { return Ok(versions) };
        let table = self.repo.get_table(&entry.id, "the parent snapshot")?;
        let Some(tree) = table.tree else { return Ok(versions) };
        versions.levels.resize(usize::from(tree.height) + 2, Vec::new());
        // Depth-first in row order: each stack item is a node with the row its subtree starts at.
        let mut stack = vec![(tree.root, 0u64)];
        while let Some((id, start)) = stack.pop() {
            let node = self.repo.get_node(&id, &format!("table {name:?}"))?;
            let level = usize::from(node.level);
            if level + 1 >= versions.levels.len() {
                versions.levels.resize(level + 2, Vec::new());
            }
            versions.levels[level + 1].push((start, id.0));
            let mut row = start;
            let mut children = Vec::with_capacity(node.entries.len());
            for child in &node.entries {
                if node.level == 0 {
                    versions.levels[0].push((row, child.id));
                } else {
                    children.push((NodeId(child.id), row));
                }
                row += child.rows;
            }
            stack.extend(children.into_iter().rev());
        }
        for level in &mut versions.levels {
            level.sort_by_key(|(start, _)| *start);
        }
        Ok(versions)
    }
}
