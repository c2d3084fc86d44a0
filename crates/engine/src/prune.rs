//! Reclaiming space: drop every chunk, tree node and table object that no snapshot record
//! refers to (directly, or as the base of a delta that one refers to). A pack whose objects
//! are all unreferenced is deleted, and a pack containing both kinds is rewritten with only
//! the referenced ones. Then one index file replaces all the others. Prune holds an exclusive
//! lock (see `lock`), so no snapshot runs meanwhile and none can be left pointing at a
//! deleted object.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{Digest, NodeId};
use crate::index::{Location, Place};
use crate::lock::{self, LockKind};
use crate::object::Kind;
use crate::object::index::PackRecord;
use crate::object::pack::{PackBuilder, PackEntry, pack_key};
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
    /// Objects removed from the repository (0 in a dry run).
    pub deleted: u64,
    /// Packs deleted because nothing in them is referenced, including packs no index file
    /// names (left by a snapshot that stopped before writing its index file).
    pub packs_deleted: u64,
    /// Packs rewritten without their unreferenced objects.
    pub packs_rewritten: u64,
    /// Packs that no index file named, indexed again from their own directories.
    pub packs_reindexed: u64,
    /// Packs that no index file names and whose directory cannot be read; left in place.
    pub packs_unreadable: Vec<String>,
    /// Stored bytes freed (counted in a dry run too).
    pub bytes_freed: u64,
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

/// The fate of each pack: kept, rewritten or deleted.
#[derive(Default)]
struct Plan {
    keep: Vec<PackRecord>,
    rewrite: Vec<PackRecord>,
    delete: Vec<Digest>,
}

/// Deletes unreferenced objects (or, with `dry_run`, counts them).
pub fn prune(repo: &Repository, dry_run: bool) -> Result<PruneReport> {
    let started = Instant::now();
    let _lock = lock::acquire(repo, LockKind::Exclusive, "prune")?;
    repo.reload_index();
    let stale_locks_removed = if dry_run { 0 } else { lock::remove_stale(repo)? };
    // Packs that no index file names are indexed from their own directories first. They come
    // from a snapshot that stopped before its index file, or from a damaged index file, and
    // this way the new index file names their objects that are still referenced.
    let (reindexed, unreadable) = repo.index_unindexed_packs()?;
    let (reachable, snapshots) = mark(repo)?;
    let mut report = PruneReport { dry_run, snapshots, stale_locks_removed, packs_reindexed: reindexed as u64, ..Default::default() };

    let (objects, packs, files) = repo.with_index(|index| (index.objects.clone(), index.packs.clone(), index.files.clone()))?;
    let mut live: HashSet<Digest> = reachable.chunks.iter().chain(&reachable.nodes).chain(&reachable.tables).copied().collect();
    // A delta's base stays while the delta does. Bases are never deltas themselves, so one
    // pass finds them all.
    let bases: Vec<Digest> = live.iter().filter_map(|id| objects.get(id).and_then(|l| l.base)).collect();
    live.extend(bases);
    count_kinds(&objects, &live, &mut report);

    let plan = plan(&objects, packs, &live, &mut report);
    // Only a pack whose directory cannot be read is left unindexed. It is kept for a person
    // to look at, never deleted.
    report.packs_unreadable = unreadable.iter().map(Digest::to_hex).collect();
    report.packs_deleted = plan.delete.len() as u64;
    report.packs_rewritten = plan.rewrite.len() as u64;
    if dry_run || (plan.delete.is_empty() && plan.rewrite.is_empty() && reindexed == 0 && files.len() <= 1) {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let mut records = plan.keep;
    records.extend(rewrite(repo, &plan.rewrite, &objects, &live)?);
    repo.store().flush()?;
    // The new index file is durable before any old one goes, so a prune that stops at
    // any point leaves every referenced object indexed.
    let (new_file, _) = crate::index::write_index_file(repo.store().as_ref(), repo.index_cache(), records)?;
    repo.store().flush()?;
    for key in files.iter().filter(|key| **key != new_file) {
        repo.store().delete(key)?;
    }
    for pack in plan.delete.iter().chain(plan.rewrite.iter().map(|p| &p.id)) {
        repo.store().delete(&pack_key(pack))?;
    }
    repo.store().flush()?;
    repo.discard_index();
    report.deleted = report.chunks.unreferenced + report.nodes.unreferenced + report.tables.unreferenced;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn count_kinds(objects: &HashMap<Digest, Location>, live: &HashSet<Digest>, report: &mut PruneReport) {
    for (id, location) in objects {
        let count = match location.kind {
            Kind::Chunk => &mut report.chunks,
            Kind::Node => &mut report.nodes,
            Kind::Table => &mut report.tables,
            _ => continue,
        };
        if live.contains(id) {
            count.referenced += 1;
        } else {
            count.unreferenced += 1;
        }
    }
}

/// Sorts packs into kept, rewritten and deleted.
fn plan(objects: &HashMap<Digest, Location>, packs: HashMap<Digest, PackRecord>, live: &HashSet<Digest>, report: &mut PruneReport) -> Plan {
    let mut plan = Plan::default();
    for (id, pack) in packs {
        let is_live = |entry: &PackEntry| is_live_in(objects, live, entry, &id);
        let live_entries = pack.entries.iter().filter(|e| is_live(e)).count();
        if live_entries == pack.entries.len() {
            plan.keep.push(pack);
        } else if live_entries == 0 {
            report.bytes_freed += pack.length;
            plan.delete.push(id);
        } else {
            report.bytes_freed += pack.entries.iter().filter(|e| !is_live(e)).map(|e| u64::from(e.length)).sum::<u64>();
            plan.rewrite.push(pack);
        }
    }
    plan
}

/// Returns whether a pack's entry is referenced and is the copy the index reads, so that a
/// second copy of an object in another pack counts as unreferenced.
fn is_live_in(objects: &HashMap<Digest, Location>, live: &HashSet<Digest>, entry: &PackEntry, pack: &Digest) -> bool {
    live.contains(&entry.id) && objects.get(&entry.id).is_some_and(|l| matches!(l.place, Place::Packed { pack: p, .. } if p == *pack))
}

/// Copies the live objects of `packs` into new packs, without decompressing them.
fn rewrite(repo: &Repository, packs: &[PackRecord], objects: &HashMap<Digest, Location>, live: &HashSet<Digest>) -> Result<Vec<PackRecord>> {
    let mut records = Vec::new();
    let mut builder = PackBuilder::default();
    let store = |builder: PackBuilder, records: &mut Vec<PackRecord>| -> Result<()> {
        let pack = builder.finish()?;
        repo.store().put(&pack_key(&pack.id), &pack.bytes)?;
        records.push(PackRecord { id: pack.id, length: pack.bytes.len() as u64, entries: pack.entries });
        Ok(())
    };
    for pack in packs {
        let key = pack_key(&pack.id);
        for entry in &pack.entries {
            if !is_live_in(objects, live, entry, &pack.id) {
                continue;
            }
            let stored = repo.store().get_range(&key, entry.offset, u64::from(entry.length))?;
            if stored.len() != entry.length as usize {
                return Err(Error::Corrupt {
                    kind: "pack",
                    id: pack.id.to_hex(),
                    detail: format!("it ends before object {}; prune stopped without deleting anything", entry.id),
                });
            }
            let kind = Kind::from_byte(entry.kind).expect("the index checked the kind");
            builder.push(kind, entry.id, entry.base, &stored);
            if builder.len() >= repo.pack_target() {
                store(std::mem::take(&mut builder), &mut records)?;
            }
        }
    }
    if !builder.is_empty() {
        store(builder, &mut records)?;
    }
    Ok(records)
}
