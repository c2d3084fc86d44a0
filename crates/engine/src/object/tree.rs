//! The index tree of a table: content-addressed nodes listing its chunks in row order.
//!
//! A node ends after an entry chosen by the entry's id (see `TreeParams`), so inserting or
//! replacing one chunk rewrites one leaf and the nodes on its path to the root, never the
//! siblings. The root node's id is the Merkle root of the table's rows.

use serde::{Deserialize, Serialize};

use crate::chunker::TreeParams;
use crate::error::Result;
use crate::id::{Digest, NodeId};
use crate::object::{Kind, to_plain};

pub const NODE_VERSION: u8 = 1;

/// One child of a node: a chunk (at level 0) or a node (above), with the rows and plain
/// bytes beneath it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub id: Digest,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexNode {
    pub version: u8,
    /// 0 for a leaf whose entries are chunks.
    pub level: u8,
    pub entries: Vec<NodeEntry>,
}

/// Reference to a table's tree from its table object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRef {
    pub root: NodeId,
    /// Level of the root node; 0 when the root lists chunks directly.
    pub height: u8,
}

/// Builds a tree bottom-up from chunk entries given in row order, holding only one open node
/// per level in memory.
pub struct TreeBuilder<F> {
    params: TreeParams,
    levels: Vec<Vec<NodeEntry>>,
    emitted: Vec<u64>,
    store_node: F,
}

impl<F> TreeBuilder<F>
where
    F: FnMut(NodeId, &[u8]) -> Result<()>,
{
    /// `store_node` receives each finished node's id and plain payload.
    pub fn new(params: TreeParams, store_node: F) -> Self {
        TreeBuilder { params, levels: Vec::new(), emitted: Vec::new(), store_node }
    }

    pub fn push_chunk(&mut self, entry: NodeEntry) -> Result<()> {
        self.push(0, entry)
    }

    fn push(&mut self, level: usize, entry: NodeEntry) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
            self.emitted.push(0);
        }
        let low = entry.id.low_u64();
        self.levels[level].push(entry);
        if self.params.is_boundary(self.levels[level].len(), low) {
            let entry = self.emit(level)?;
            self.push(level + 1, entry)?;
        }
        Ok(())
    }

    fn emit(&mut self, level: usize) -> Result<NodeEntry> {
        let entries = std::mem::take(&mut self.levels[level]);
        let rows = entries.iter().map(|e| e.rows).sum();
        let bytes = entries.iter().map(|e| e.bytes).sum();
        let node = IndexNode { version: NODE_VERSION, level: level as u8, entries };
        let plain = to_plain(Kind::Node, &node)?;
        let id = Digest::of(&plain);
        (self.store_node)(NodeId(id), &plain)?;
        self.emitted[level] += 1;
        Ok(NodeEntry { id, rows, bytes })
    }

    /// Closes every open node and returns the root, or `None` for a table with no chunks.
    pub fn finish(mut self) -> Result<Option<TreeRef>> {
        let mut level = 0;
        while level < self.levels.len() {
            let is_top = level + 1 == self.levels.len();
            if is_top && self.emitted[level] == 0 {
                if self.levels[level].is_empty() {
                    return Ok(None);
                }
                let root = self.emit(level)?;
                return Ok(Some(TreeRef { root: NodeId(root.id), height: level as u8 }));
            }
            if !self.levels[level].is_empty() {
                let entry = self.emit(level)?;
                if self.levels.len() <= level + 1 {
                    self.levels.push(Vec::new());
                    self.emitted.push(0);
                }
                self.levels[level + 1].push(entry);
            }
            level += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(ids: &[u64]) -> (Option<TreeRef>, HashMap<NodeId, IndexNode>) {
        let mut nodes = HashMap::new();
        let mut builder = TreeBuilder::new(TreeParams::default(), |id, plain: &[u8]| {
            nodes.insert(id, postcard::from_bytes::<IndexNode>(plain).unwrap());
            Ok(())
        });
        for n in ids {
            builder.push_chunk(NodeEntry { id: Digest::of(&n.to_le_bytes()), rows: 10, bytes: 100 }).unwrap();
        }
        let root = builder.finish().unwrap();
        (root, nodes)
    }

    fn leaves(root: &TreeRef, nodes: &HashMap<NodeId, IndexNode>) -> Vec<Digest> {
        let mut out = Vec::new();
        let mut stack = vec![root.root];
        while let Some(id) = stack.pop() {
            let node = &nodes[&id];
            if node.level == 0 {
                out.extend(node.entries.iter().map(|e| e.id));
            } else {
                stack.extend(node.entries.iter().rev().map(|e| NodeId(e.id)));
            }
        }
        out
    }

    #[test]
    fn empty_tree_has_no_root() {
        assert_eq!(build(&[]).0, None);
    }

    #[test]
    fn tree_lists_every_chunk_in_order() {
        let ids: Vec<u64> = (0..20_000).collect();
        let (root, nodes) = build(&ids);
        let root = root.unwrap();
        assert!(root.height >= 1);
        let expected: Vec<Digest> = ids.iter().map(|n| Digest::of(&n.to_le_bytes())).collect();
        assert_eq!(leaves(&root, &nodes), expected);
    }

    #[test]
    fn one_inserted_chunk_rewrites_only_its_path() {
        let ids: Vec<u64> = (0..20_000).collect();
        let (_, before) = build(&ids);
        let mut changed = ids.clone();
        changed.insert(10_000, 1_000_000);
        let (root, after) = build(&changed);
        let new_nodes = after.keys().filter(|id| !before.contains_key(id)).count();
        assert!(new_nodes <= 2 * (root.unwrap().height as usize + 1), "{new_nodes} new nodes");
    }

    #[test]
    fn root_totals_rows() {
        let ids: Vec<u64> = (0..500).collect();
        let (root, nodes) = build(&ids);
        let root_node = &nodes[&root.unwrap().root];
        let rows: u64 = root_node.entries.iter().map(|e| e.rows).sum();
        assert_eq!(rows, 5_000);
    }
}
