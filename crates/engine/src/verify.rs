//! Verification: checks that snapshots are whole and, with `--read-data`, that every chunk
//! still hashes to its id. It also checks that a live source still matches a snapshot. Findings are
//! returned as data for the caller to render.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::diff::{DatabaseView, diff_views};
use crate::error::Error;
use crate::id::{ChunkId, Digest, NodeId, SnapshotId, TableId};
use crate::object::chunk::ChunkReader;
use crate::object::table::TableObject;
use crate::object::Kind;
use crate::object::tree::NodeEntry;
use crate::prefetch::for_each_chunk_read_ahead;
use crate::repo::Repository;
use crate::scan::ScanParams;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data is damaged or missing, or the source no longer matches.
    Error,
    Warning,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub snapshot: Option<SnapshotId>,
    pub table: Option<String>,
    /// Object kind and id, such as `chunk 3fa2…`.
    pub object: Option<String>,
    pub message: String,
}

/// The chunks that `--read-data` reads when it does not read them all: a percentage of the
/// distinct chunks, or a number of them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sample {
    /// Percent of the distinct chunks, above 0 and at most 100.
    Percent(f64),
    /// Number of distinct chunks, at least 1.
    Chunks(u64),
}

impl std::str::FromStr for Sample {
    type Err = Error;

    /// Parses `10%` (a percentage) or `250` (a number of chunks).
    fn from_str(text: &str) -> Result<Sample, Error> {
        let text = text.trim();
        let invalid = || Error::Invalid(format!("invalid sample {text:?}: give a percentage above 0 and at most 100 (such as 10%) or a number of chunks (such as 250)"));
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent.trim().parse().map_err(|_| invalid())?;
            return if value > 0.0 && value <= 100.0 { Ok(Sample::Percent(value)) } else { Err(invalid()) };
        }
        match text.parse::<u64>() {
            Ok(count) if count > 0 => Ok(Sample::Chunks(count)),
            _ => Err(invalid()),
        }
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sample::Percent(value) => write!(f, "{value}%"),
            Sample::Chunks(count) => write!(f, "{count} chunks"),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots: Vec<SnapshotId>,
    pub read_data: bool,
    /// The subset of chunks read with `read_data`; `None` reads every chunk.
    pub sample: Option<Sample>,
    /// Distinct chunks read, decompressed and re-hashed.
    pub chunks_read: u64,
    pub tables_checked: u64,
    pub nodes_checked: u64,
    pub chunks_checked: u64,
    /// Plain bytes of the chunks read (with `read_data`).
    pub bytes_read: u64,
    pub findings: Vec<Finding>,
    pub duration_ms: u64,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Checks every object each snapshot refers to. An object shared by several snapshots is
/// checked once; a damaged one is reported for every table that refers to it.
pub fn verify_snapshots(repo: &Repository, ids: &[SnapshotId], read_data: bool) -> VerifyReport {
    verify_with_selection(repo, ids, read_data, None, None)
}

/// Checks every object each snapshot refers to, like `verify_snapshots`, but reads and
/// re-hashes only a sample of the distinct chunks. The others get an existence check.
/// The sample is chosen uniformly by ranking chunk ids under a hash keyed with `seed`, so
/// runs with different seeds cover different chunks.
pub fn verify_snapshots_sampled(repo: &Repository, ids: &[SnapshotId], sample: Sample, seed: u64) -> VerifyReport {
    let selection = sample_chunks(repo, ids, sample, seed);
    verify_with_selection(repo, ids, true, Some(selection), Some(sample))
}

/// Returns a seed for `verify_snapshots_sampled` that differs between runs and processes,
/// so repeated sampled verifications cover different chunks.
pub fn new_sample_seed() -> u64 {
    let text = format!("{:?} {} {:?}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id());
    Digest::of(text.as_bytes()).low_u64()
}

/// Picks the sampled chunk ids: every distinct chunk the snapshots refer to, ranked by
/// BLAKE3 of the seed and the id. Objects that cannot be read are skipped here, because
/// the verification pass that follows reports them.
fn sample_chunks(repo: &Repository, ids: &[SnapshotId], sample: Sample, seed: u64) -> HashSet<Digest> {
    let mut tables = HashSet::new();
    let mut chunks = HashSet::new();
    for id in ids {
        let Ok(record) = repo.get_snapshot(id) else { continue };
        for entry in &record.content.tables {
            if !tables.insert(entry.id) {
                continue;
            }
            let Ok(table) = repo.get_table(&entry.id, &format!("snapshot {id}")) else { continue };
            let Some(tree) = table.tree else { continue };
            let _ = repo.for_each_chunk(&tree, &table.name, &mut |chunk| {
                chunks.insert(chunk.id);
                Ok(())
            });
        }
    }
    let sample_size = match sample {
        Sample::Percent(percent) => (chunks.len() as f64 * percent / 100.0).ceil() as usize,
        Sample::Chunks(count) => usize::try_from(count).unwrap_or(usize::MAX),
    };
    let mut ranked: Vec<(Digest, Digest)> = chunks
        .into_iter()
        .map(|id| {
            let mut keyed = seed.to_le_bytes().to_vec();
            keyed.extend_from_slice(&id.0);
            (Digest::of(&keyed), id)
        })
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().take(sample_size).map(|(_, id)| id).collect()
}

fn verify_with_selection(repo: &Repository, ids: &[SnapshotId], read_data: bool, selection: Option<HashSet<Digest>>, sample: Option<Sample>) -> VerifyReport {
    let started = Instant::now();
    let mut verifier = Verifier {
        repo,
        read_data,
        selection,
        report: VerifyReport { read_data, sample, ..Default::default() },
        tables: HashMap::new(),
        nodes: HashMap::new(),
        chunks: HashMap::new(),
    };
    for id in ids {
        verifier.snapshot(*id);
    }
    let mut report = verifier.report;
    report.snapshots = ids.to_vec();
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

struct Verifier<'a> {
    repo: &'a Repository,
    read_data: bool,
    /// With `read_data`, the chunks to read; `None` reads all of them.
    selection: Option<HashSet<Digest>>,
    report: VerifyReport,
    tables: HashMap<TableId, std::result::Result<TableObject, String>>,
    nodes: HashMap<NodeId, Option<String>>,
    /// Chunk checks by (chunk, table): decoding depends on the table's shape.
    chunks: HashMap<(Digest, TableId), Option<String>>,
}

fn describe(error: &Error) -> (Option<String>, String) {
    match error {
        Error::Corrupt { kind, id, detail } => (Some(format!("{kind} {id}")), format!("corrupt: {detail}")),
        Error::Missing { kind, id, .. } => (Some(format!("{kind} {id}")), "missing from the repository".to_string()),
        other => (None, other.to_string()),
    }
}

/// Describes what is wrong with a chunk from the error of reading it, naming the delta base
/// when the error is about the base and not the chunk itself.
fn chunk_problem(chunk: &Digest, error: &Error) -> String {
    let (_, message) = describe(error);
    match error {
        Error::Corrupt { id, .. } | Error::Missing { id, .. } if *id != chunk.to_hex() => format!("its delta base {id} is {message}"),
        _ => message,
    }
}

impl Verifier<'_> {
    fn finding(&mut self, snapshot: SnapshotId, table: Option<&str>, object: Option<String>, message: String) {
        self.report.findings.push(Finding {
            severity: Severity::Error,
            snapshot: Some(snapshot),
            table: table.map(str::to_string),
            object,
            message,
        });
    }

    fn snapshot(&mut self, id: SnapshotId) {
        let record = match self.repo.get_snapshot(&id) {
            Ok(record) => record,
            Err(e) => {
                let (object, message) = describe(&e);
                self.finding(id, None, object.or(Some(format!("snapshot record {id}"))), message);
                return;
            }
        };
        let root = record.content.root();
        if root != record.root {
            self.finding(id, None, Some(format!("snapshot record {id}")), format!("root recomputes to {root}, the record says {}", record.root));
        }
        for entry in &record.content.tables {
            self.table(id, &entry.name, entry.id);
        }
    }

    fn table(&mut self, snapshot: SnapshotId, name: &str, table_id: TableId) {
        self.report.tables_checked += 1;
        let object = match self.tables.get(&table_id) {
            Some(cached) => cached.clone(),
            None => {
                let loaded = self.repo.get_table(&table_id, &format!("snapshot {snapshot}")).map_err(|e| {
                    let (object, message) = describe(&e);
                    format!("{}: {message}", object.unwrap_or_default())
                });
                self.tables.insert(table_id, loaded.clone());
                loaded
            }
        };
        let object = match object {
            Ok(object) => object,
            Err(message) => {
                self.finding(snapshot, Some(name), Some(format!("table object {table_id}")), message);
                return;
            }
        };
        if object.name != name {
            self.finding(snapshot, Some(name), Some(format!("table object {table_id}")), format!("names table {:?}", object.name));
        }
        let Some(tree) = object.tree else {
            if object.rows != 0 {
                self.finding(snapshot, Some(name), Some(format!("table object {table_id}")), format!("has no tree but {} rows", object.rows));
            }
            return;
        };
        let (mut rows, mut chunks) = (0u64, 0u64);
        // Chunks are checked after the walk, so that with `read_data` they can be read ahead
        // on worker threads. The entries take 48 bytes per chunk.
        let mut leaves: Vec<NodeEntry> = Vec::new();
        let mut stack = vec![(tree.root, tree.height)];
        while let Some((node_id, level)) = stack.pop() {
            let node = match self.repo.get_node(&node_id, &format!("table {name:?}")) {
                Ok(node) => {
                    self.report.nodes_checked += u64::from(self.nodes.insert(node_id, None).is_none());
                    node
                }
                Err(e) => {
                    let (object, message) = describe(&e);
                    self.finding(snapshot, Some(name), object, message);
                    continue;
                }
            };
            if node.level != level {
                self.finding(snapshot, Some(name), Some(format!("tree node {node_id}")), format!("has level {}, expected {level}", node.level));
                continue;
            }
            if level > 0 {
                stack.extend(node.entries.iter().rev().map(|e| (NodeId(e.id), level - 1)));
                continue;
            }
            rows += node.entries.iter().map(|entry| entry.rows).sum::<u64>();
            chunks += node.entries.len() as u64;
            leaves.extend(node.entries);
        }
        if self.read_data {
            self.read_chunks(&object, table_id, &leaves);
        }
        for entry in &leaves {
            if let Some(message) = self.chunk(&object, table_id, entry) {
                self.finding(snapshot, Some(name), Some(format!("chunk {}", entry.id)), message);
            }
        }
        if rows != object.rows || chunks != object.chunks {
            self.finding(
                snapshot,
                Some(name),
                Some(format!("table object {table_id}")),
                format!("its tree holds {rows} rows in {chunks} chunks, the table object says {} rows in {} chunks", object.rows, object.chunks),
            );
        }
    }

    /// Reads and checks every selected chunk of `leaves` that no earlier table checked, with
    /// worker threads reading, decompressing and hashing ahead while this thread decodes the
    /// rows. The outcomes go to the chunk cache, where `chunk` finds them; chunks outside a
    /// sample are left to `chunk`, which only checks that they exist.
    fn read_chunks(&mut self, table: &TableObject, table_id: TableId, leaves: &[NodeEntry]) {
        let mut queued = HashSet::new();
        let selection = self.selection.as_ref();
        let unread: Vec<NodeEntry> = leaves
            .iter()
            .filter(|entry| selection.is_none_or(|selection| selection.contains(&entry.id)))
            .filter(|entry| !self.chunks.contains_key(&(entry.id, table_id)) && queued.insert(entry.id))
            .cloned()
            .collect();
        let referenced_by = format!("table {:?}", table.name);
        let repo = self.repo;
        let result = for_each_chunk_read_ahead(repo, &unread, &referenced_by, ScanParams::default_workers(), &mut |index, plain| {
            let entry = &unread[index];
            self.report.chunks_checked += 1;
            let problem = match plain {
                Ok(plain) => {
                    self.report.chunks_read += 1;
                    self.report.bytes_read += plain.len() as u64;
                    check_chunk_rows(table, &plain, entry.rows)
                }
                Err(e) => Some(chunk_problem(&entry.id, &e)),
            };
            self.chunks.insert((entry.id, table_id), problem);
            Ok(())
        });
        if let Err(e) = result {
            // The chunks not reached stay out of the cache, so `chunk` reads them one by one.
            tracing::warn!(table = %table.name, error = %e, "reading chunks ahead stopped; checking the rest one at a time");
        }
    }

    /// Checks one chunk, returning what is wrong with it.
    fn chunk(&mut self, table: &TableObject, table_id: TableId, entry: &NodeEntry) -> Option<String> {
        if let Some(cached) = self.chunks.get(&(entry.id, table_id)) {
            return cached.clone();
        }
        self.report.chunks_checked += 1;
        let selected = self.selection.as_ref().is_none_or(|selection| selection.contains(&entry.id));
        let problem = if self.read_data && selected {
            match self.repo.get_chunk(&ChunkId(entry.id), &format!("table {:?}", table.name)) {
                Ok(plain) => {
                    self.report.chunks_read += 1;
                    self.report.bytes_read += plain.len() as u64;
                    check_chunk_rows(table, &plain, entry.rows)
                }
                Err(e) => Some(chunk_problem(&entry.id, &e)),
            }
        } else {
            self.chunk_exists(&entry.id)
        };
        self.chunks.insert((entry.id, table_id), problem.clone());
        problem
    }
}

impl Verifier<'_> {
    /// Checks that a chunk, and its delta base if it has one, are in the repository.
    fn chunk_exists(&self, id: &Digest) -> Option<String> {
        let present = |id: &Digest| self.repo.has_object(Kind::Chunk, id);
        match (present(id), self.repo.delta_base_of(id)) {
            (Ok(false), _) => Some("missing from the repository".to_string()),
            (Ok(true), Ok(Some(base))) => match present(&base) {
                Ok(true) => None,
                Ok(false) => Some(format!("its delta base {base} is missing from the repository")),
                Err(e) => Some(e.to_string()),
            },
            (Ok(true), Ok(None)) => None,
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        }
    }
}

/// Decodes every row of a chunk and checks the count against its tree entry.
fn check_chunk_rows(table: &TableObject, plain: &[u8], expected_rows: u64) -> Option<String> {
    let defaults = table.trailing_defaults();
    let mut reader = match ChunkReader::new(plain, table.has_rowid(), &defaults) {
        Ok(reader) => reader,
        Err(e) => return Some(format!("does not decode: {e}")),
    };
    let mut values = Vec::new();
    let mut rows = 0u64;
    loop {
        match reader.next_row(&mut values) {
            Ok(Some(_)) => rows += 1,
            Ok(None) => break,
            Err(e) => return Some(format!("does not decode after {rows} rows: {e}")),
        }
    }
    (rows != expected_rows).then(|| format!("holds {rows} rows, its tree entry says {expected_rows}"))
}

/// Compares a live source with a snapshot: one finding per table, schema object or header
/// value that differs.
pub fn verify_against(snapshot_id: SnapshotId, snapshot: &DatabaseView, live: &DatabaseView) -> VerifyReport {
    let started = Instant::now();
    let diff = diff_views(snapshot, live);
    let mut report = VerifyReport { snapshots: vec![snapshot_id], tables_checked: snapshot.tables.len() as u64, ..Default::default() };
    for table in diff.tables.iter().filter(|t| t.change != crate::diff::Change::Unchanged) {
        // D1 rewrites its own `_cf_` tables on every write, so they are expected to drift.
        let severity = if crate::export::is_d1_internal(&table.name) { Severity::Warning } else { Severity::Error };
        report.findings.push(Finding {
            severity,
            snapshot: Some(snapshot_id),
            table: Some(table.name.clone()),
            object: None,
            message: format!("{} in {} ({})", table.change.verb(), live.label, table.describe_rows()),
        });
    }
    for object in &diff.schema {
        report.findings.push(Finding {
            severity: Severity::Error,
            snapshot: Some(snapshot_id),
            table: None,
            object: Some(format!("{} {}", object.kind, object.name)),
            message: format!("{} in {}", object.change.verb(), live.label),
        });
    }
    for change in &diff.header {
        report.findings.push(Finding { severity: Severity::Error, snapshot: Some(snapshot_id), table: None, object: None, message: change.clone() });
    }
    if diff.root_a != diff.root_b && report.findings.iter().all(|f| f.severity == Severity::Warning) && !diff.tables.iter().any(|t| crate::export::is_d1_internal(&t.name) && t.change != crate::diff::Change::Unchanged) {
        report.findings.push(Finding {
            severity: Severity::Error,
            snapshot: Some(snapshot_id),
            table: None,
            object: None,
            message: format!("root differs: snapshot {}, {} {}", diff.root_a, live.label, diff.root_b),
        });
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_parses_percent_and_count() {
        assert_eq!("10%".parse::<Sample>().unwrap(), Sample::Percent(10.0));
        assert_eq!(" 2.5 % ".parse::<Sample>().unwrap(), Sample::Percent(2.5));
        assert_eq!("250".parse::<Sample>().unwrap(), Sample::Chunks(250));
    }

    #[test]
    fn sample_rejects_out_of_range() {
        for text in ["0%", "101%", "-5%", "0", "-3", "ten", "%", ""] {
            assert!(text.parse::<Sample>().is_err(), "{text:?} was accepted");
        }
    }
}
