//! Reclaiming space: delete every chunk, tree node and table object that no snapshot record
//! refers to. Prune holds an exclusive lock (see `lock`), so no snapshot runs meanwhile and
//! none can be left pointing at a deleted object.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{Digest, NodeId};
use crate::lock::{self, LockKind};
use crate::object::Kind;
use crate::repo::Repository;

#[derive(Clone, Debug, Default, Serialize)]
pub struct KindCount {
    pub referenced: u64,
    pub unreferenced: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub chunks: KindCount,
    pub nodes: KindCount,
    pub tables: KindCount,
    /// Objects deleted (0 in a dry run).
    pub deleted: u64,
    pub stale_locks_removed: usize,
    pub duration_ms: u64,
}

/// Objects reachable from the snapshot records.
#[derive(Default)]
struct Reachable {
    chunks: HashSet<Digest>,
    nodes: HashSet<Digest>,
    tables: HashSet<Digest>,
}

fn mark(repo: &Repository) -> Result<(Reachable, usize)> {
    let mut reachable = Reachable::default();
    let snapshots = repo.snapshots()?;
    for (id, record) in &snapshots {
        // An unreadable record may refer to anything, so nothing can be proven unreferenced.
        let record = record.as_ref().map_err(|e| {
            Error::Invalid(format!("snapshot record {id} cannot be read ({e}); prune stopped without deleting anything. Repair it or delete snapshots/{id} by hand first"))
        })?;
        for entry in &record.content.tables {
            if !reachable.tables.insert(entry.id.0) {
                continue;
            }
            let table = repo.get_table(&entry.id, &format!("snapshot {id}"))?;
            let Some(tree) = table.tree else { continue };
            let mut stack = vec![tree.root];
            while let Some(node_id) = stack.pop() {
                if !reachable.nodes.insert(node_id.0) {
                    continue;
                }
                let node = repo.get_node(&node_id, &format!("table {:?}", table.name))?;
                for child in &node.entries {
                    if node.level == 0 {
                        reachable.chunks.insert(child.id);
                    } else {
                        stack.push(NodeId(child.id));
                    }
                }
            }
        }
    }
    Ok((reachable, snapshots.len()))
}

/// Deletes unreferenced objects (or, with `dry_run`, counts them).
pub fn prune(repo: &Repository, dry_run: bool) -> Result<PruneReport> {
    let started = Instant::now();
    let _lock = lock::acquire(repo, LockKind::Exclusive, "prune")?;
    let stale_locks_removed = if dry_run { 0 } else { lock::remove_stale(repo)? };
    let (reachable, snapshots) = mark(repo)?;
    let mut report = PruneReport { dry_run, snapshots, stale_locks_removed, ..Default::default() };
    if !dry_run {
        crate::known::advance_generation(repo.store().as_ref())?;
    }

    for (kind, keep) in [(Kind::Table, &reachable.tables), (Kind::Node, &reachable.nodes), (Kind::Chunk, &reachable.chunks)] {
        let mut count = KindCount::default();
        for key in repo.store().list(&format!("{}/", kind.folder()))? {
            let Some(id) = key.rsplit('/').next().and_then(|name| name.parse::<Digest>().ok()) else {
                tracing::warn!(key, "ignoring a key that is not an object id");
                continue;
            };
            if keep.contains(&id) {
                count.referenced += 1;
                continue;
            }
            count.unreferenced += 1;
            if !dry_run {
                repo.store().delete(&key)?;
                report.deleted += 1;
            }
        }
        match kind {
            Kind::Table => report.tables = count,
            Kind::Node => report.nodes = count,
            _ => report.chunks = count,
        }
    }
    if !dry_run {
        repo.store().flush()?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
