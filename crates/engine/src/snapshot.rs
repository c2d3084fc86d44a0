//! Taking a snapshot: scan the source into the repository, then write the record last.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{Digest, SnapshotId};
use crate::object::snapshot::{SNAPSHOT_VERSION, SnapshotRecord, SnapshotStats, TableSummary};
use crate::delta::PreviousVersions;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::scan::{ScanParams, scan_database};
use crate::source::OpenedSource;

#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    pub labels: Vec<String>,
    /// Worker threads for hashing and compression; 0 picks one per core.
    pub workers: usize,
    /// Snapshot time in milliseconds since the Unix epoch; `None` takes the system clock.
    /// A scheduler that runs on a test clock sets it.
    pub time_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotReport {
    pub id: SnapshotId,
    pub root: Digest,
    pub time_ms: i64,
    pub labels: Vec<String>,
    pub source: String,
    pub lossy_source: bool,
    pub parent: Option<SnapshotId>,
    pub tables: usize,
    pub rows: u64,
    /// Plain encoded bytes of every row read.
    pub bytes_read: u64,
    /// Size of the source files (database and WAL, or dump).
    pub source_file_bytes: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    /// Stored bytes added to the repository, including the snapshot record.
    pub new_bytes: u64,
    /// `bytes_read / new_bytes`: how many bytes of data each newly stored byte represents,
    /// from compression and deduplication together.
    pub dedup_ratio: f64,
    pub duration_ms: u64,
    /// Full-restore time projected from the latest drill's throughput.
    pub projected_restore_ms: Option<u64>,
    pub warnings: Vec<String>,
}

/// Checks a label: non-empty, at most 200 bytes, no control characters.
pub fn validate_label(label: &str) -> Result<()> {
    if label.trim().is_empty() || label.len() > 200 || label.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid label {label:?}: a label is 1 to 200 bytes of text without control characters"
        )));
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Scans `source` into `repo` and writes the snapshot record once every object it names is
/// stored and flushed.
pub fn take_snapshot(
    repo: &Repository,
    source: &OpenedSource,
    options: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    for label in &options.labels {
        validate_label(label)?;
    }
    let started = Instant::now();
    let time_ms = options.time_ms.unwrap_or_else(now_ms);
    let catalog = source.catalog()?;
    // Held for the whole scan so a prune cannot delete an object this snapshot reuses.
    let lock = crate::lock::acquire(repo, crate::lock::LockKind::Shared, "snapshot")?;
    repo.reload_index();
    let workers = if options.workers == 0 { ScanParams::default_workers() } else { options.workers };
    let (parent, latest) = latest_snapshots(repo, &source.info.location)?;
    // Deltas need only similar rows, not the same source: a copied or renamed database, or
    // a dump with a new name each day, still finds its tables in the latest snapshot.
    let previous = parent.as_ref().or(latest.as_ref()).map(|(_, record)| PreviousVersions::new(repo, record.content.clone()));
    let parent = parent.map(|(id, _)| id);
    let params = ScanParams {
        chunker: repo.config().chunker,
        tree: repo.config().tree,
        sink: repo,
        progress,
        workers,
        previous: previous.as_ref(),
    };
    let scan = scan_database(&source.conn, &source.info.location, &catalog, &params)?;

    let projected_restore_ms = crate::history::latest_drill(repo)
        .ok()
        .flatten()
        .and_then(|event| crate::history::latest_drill_throughput(std::slice::from_ref(&event)))
        .map(|rate| crate::history::project_ms(scan.stats.bytes_read, rate));
    let root = scan.content.root();
    let tables: Vec<TableSummary> = scan
        .tables
        .iter()
        .map(|(_, t)| TableSummary { name: t.name.clone(), rows: t.rows, bytes: t.bytes, chunks: t.chunks })
        .collect();
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut record = SnapshotRecord {
        version: SNAPSHOT_VERSION,
        root,
        content: scan.content,
        time_ms,
        labels: options.labels.clone(),
        source: source.info.clone(),
        parent,
        tables,
        stats: SnapshotStats {
            rows: scan.stats.rows,
            bytes_read: scan.stats.bytes_read,
            chunks: scan.stats.chunks,
            new_chunks: scan.stats.new_chunks,
            new_bytes: scan.stats.new_bytes,
            duration_ms,
            projected_restore_ms,
        },
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    lock.check_held()?;
    let (id, record_bytes) = repo.put_snapshot(&mut record)?;
    drop(lock);
    record.stats.new_bytes += record_bytes;
    let new_bytes = record.stats.new_bytes;
    Ok(SnapshotReport {
        id,
        root,
        time_ms,
        labels: record.labels,
        source: record.source.location,
        lossy_source: record.source.lossy,
        parent,
        tables: record.tables.len(),
        rows: record.stats.rows,
        bytes_read: record.stats.bytes_read,
        source_file_bytes: source.file_bytes,
        chunks: record.stats.chunks,
        new_chunks: record.stats.new_chunks,
        new_bytes,
        dedup_ratio: record.stats.bytes_read as f64 / new_bytes.max(1) as f64,
        duration_ms: started.elapsed().as_millis() as u64,
        projected_restore_ms,
        warnings: source.warnings.clone(),
    })
}

type Found = Option<(SnapshotId, SnapshotRecord)>;

/// Finds the most recent snapshot taken from the same source location (the parent), and
/// the most recent snapshot of any source.
fn latest_snapshots(repo: &Repository, location: &str) -> Result<(Found, Found)> {
    let newer = |found: &Found, record: &SnapshotRecord| found.as_ref().is_none_or(|(_, best)| record.time_ms >= best.time_ms);
    let (mut parent, mut latest): (Found, Found) = (None, None);
    for (id, record) in repo.snapshots()? {
        let Ok(record) = record else { continue };
        if record.source.location == location && newer(&parent, &record) {
            parent = Some((id, record.clone()));
        }
        if newer(&latest, &record) {
            latest = Some((id, record));
        }
    }
    Ok((parent, latest))
}
