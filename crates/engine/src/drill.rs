//! Restore drills: restore a snapshot to a scratch file, prove the copy is whole and exact,
//! time every phase, and compare with thresholds. A drill measures whether a rollback
//! would work and how long it would take.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;

use crate::error::Error;
use crate::id::{Digest, SnapshotId};
use crate::object::snapshot::SnapshotRecord;
use crate::progress::NoProgress;
use crate::repo::Repository;
use crate::restore::{RestoreOptions, RestorePhases, restore};
use crate::scan::scan_hash_only;
use crate::source::{OpenedSource, SourceSpec};

/// The largest database D1 allows, 10 GB, for the rollback projection.
pub const D1_MAX_DATABASE_BYTES: u64 = 10_000_000_000;

/// Below this many restored bytes fixed costs dominate, so a projection overstates the time.
const SMALL_DRILL_BYTES: u64 = 16 * 1024 * 1024;

/// Limits a drill compares with; in JSON as milliseconds (`max_restore_ms` and so on).
#[derive(Clone, Debug, Serialize)]
pub struct DrillThresholds {
    /// The measured restore must finish within this time.
    #[serde(rename = "max_restore_ms", serialize_with = "as_ms")]
    pub max_restore: Duration,
    /// Optional limit for the verification phase.
    #[serde(rename = "max_verify_ms", serialize_with = "as_optional_ms")]
    pub max_verify: Option<Duration>,
    /// Optional limit for the projected restore of a 10 GB database.
    #[serde(rename = "max_projected_ms", serialize_with = "as_optional_ms")]
    pub max_projected: Option<Duration>,
}

fn as_ms<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

fn as_optional_ms<S: serde::Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_some(&(duration.as_millis() as u64)),
        None => serializer.serialize_none(),
    }
}

impl Default for DrillThresholds {
    /// Rollback of any change must stay under 30 minutes.
    fn default() -> Self {
        DrillThresholds { max_restore: Duration::from_secs(30 * 60), max_verify: None, max_projected: None }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DrillCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DrillTable {
    pub name: String,
    pub rows_expected: u64,
    pub rows_restored: u64,
    pub root_matches: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub snapshot: SnapshotId,
    pub root: Digest,
    /// Every check passed and no threshold was breached.
    pub ok: bool,
    /// A check failed (damaged repository, wrong copy).
    pub failed: bool,
    /// A threshold was breached.
    pub breached: bool,
    pub restore_ms: u64,
    pub phases: RestorePhases,
    pub verify_ms: u64,
    pub rows: u64,
    pub bytes: u64,
    pub restore_bytes_per_second: f64,
    /// This snapshot's full-restore time projected from the measured throughput.
    pub projected_restore_ms: u64,
    /// Restore time of a 10 GB database projected from the measured throughput.
    pub projected_10gb_ms: u64,
    /// True when the drill restored too little data for the projection to be reliable.
    pub projection_from_small_sample: bool,
    pub checks: Vec<DrillCheck>,
    pub tables: Vec<DrillTable>,
    pub breaches: Vec<String>,
    pub thresholds: DrillThresholds,
}

fn check(checks: &mut Vec<DrillCheck>, name: &str, ok: bool, detail: String) {
    checks.push(DrillCheck { name: name.to_string(), ok, detail });
}

/// Runs one drill in `scratch` (a directory the caller removes).
pub fn run_drill(repo: &Repository, id: SnapshotId, record: &SnapshotRecord, thresholds: &DrillThresholds, scratch: &Path) -> DrillReport {
    let target = scratch.join(format!("drill-{}.sqlite", &id.to_hex()[..12]));
    let mut checks = Vec::new();
    let mut tables = Vec::new();
    let started = Instant::now();
    let restored = restore(repo, id, record, &RestoreOptions { tables: Vec::new(), target: target.clone(), force: true }, &NoProgress);
    let restore_ms = started.elapsed().as_millis() as u64;

    let (phases, rows, bytes) = match &restored {
        Ok(report) => {
            check(&mut checks, "restore", true, format!("{} tables, {} rows", report.tables.len(), report.rows));
            (report.phases.clone(), report.rows, report.bytes)
        }
        Err(e) => {
            check(&mut checks, "restore", false, e.to_string());
            (RestorePhases::default(), 0, 0)
        }
    };

    let verify_started = Instant::now();
    if restored.is_ok() {
        verify_copy(&target, record, repo, &mut checks, &mut tables);
    }
    let verify_ms = verify_started.elapsed().as_millis() as u64;

    let seconds = (restore_ms.max(1) as f64) / 1000.0;
    let rate = bytes as f64 / seconds;
    let project = |size: u64| if rate > 0.0 { crate::history::project_ms(size, rate) } else { 0 };
    let projected_restore_ms = project(record.stats.bytes_read);
    let projected_10gb_ms = project(D1_MAX_DATABASE_BYTES);

    let mut breaches = Vec::new();
    if restore_ms > thresholds.max_restore.as_millis() as u64 {
        breaches.push(format!("restore took {restore_ms} ms, over the {} ms limit", thresholds.max_restore.as_millis()));
    }
    if let Some(limit) = thresholds.max_verify.filter(|limit| verify_ms > limit.as_millis() as u64) {
        breaches.push(format!("verification took {verify_ms} ms, over the {} ms limit", limit.as_millis()));
    }
    if let Some(limit) = thresholds.max_projected.filter(|limit| projected_10gb_ms > limit.as_millis() as u64) {
        breaches.push(format!("a 10 GB restore is projected at {projected_10gb_ms} ms, over the {} ms limit", limit.as_millis()));
    }
    let failed = checks.iter().any(|c| !c.ok);
    DrillReport {
        snapshot: id,
        root: record.root,
        ok: !failed && breaches.is_empty(),
        failed,
        breached: !breaches.is_empty(),
        restore_ms,
        phases,
        verify_ms,
        rows,
        bytes,
        restore_bytes_per_second: rate,
        projected_restore_ms,
        projected_10gb_ms,
        projection_from_small_sample: bytes < SMALL_DRILL_BYTES,
        checks,
        tables,
        breaches,
        thresholds: thresholds.clone(),
    }
}

/// Checks the restored copy: SQLite's own integrity and foreign-key checks, per-table row
/// counts, and every table root recomputed from the copy.
fn verify_copy(target: &Path, record: &SnapshotRecord, repo: &Repository, checks: &mut Vec<DrillCheck>, tables: &mut Vec<DrillTable>) {
    let label = target.display().to_string();
    let conn = match Connection::open(target) {
        Ok(conn) => conn,
        Err(e) => return check(checks, "open", false, Error::sqlite("opening the restored copy", &label, e).to_string()),
    };
    let integrity: rusqlite::Result<String> = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0));
    match integrity {
        Ok(result) => check(checks, "integrity_check", result == "ok", result),
        Err(e) => check(checks, "integrity_check", false, e.to_string()),
    }
    let violations: rusqlite::Result<i64> = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0));
    match violations {
        Ok(0) => check(checks, "foreign_key_check", true, "no violations".into()),
        Ok(n) => check(checks, "foreign_key_check", false, format!("{n} violation(s)")),
        Err(e) => check(checks, "foreign_key_check", false, e.to_string()),
    }
    drop(conn);

    let scan = OpenedSource::open(&SourceSpec::Path(target.to_path_buf())).and_then(|source| scan_hash_only(&source, repo.config(), &NoProgress));
    let scan = match scan {
        Ok(scan) => scan,
        Err(e) => return check(checks, "roots", false, e.to_string()),
    };
    let mut wrong = Vec::new();
    for entry in &record.content.tables {
        let live = scan.tables.iter().find(|(_, t)| t.name == entry.name);
        let expected_rows = record.tables.iter().find(|t| t.name == entry.name).map_or(0, |t| t.rows);
        let (rows_restored, root_matches) = live.map_or((0, false), |(id, t)| (t.rows, *id == entry.id));
        if !root_matches || rows_restored != expected_rows {
            wrong.push(entry.name.clone());
        }
        tables.push(DrillTable { name: entry.name.clone(), rows_expected: expected_rows, rows_restored, root_matches });
    }
    let root = scan.content.root();
    if wrong.is_empty() && root == record.root {
        check(checks, "roots", true, format!("snapshot root {root} recomputed from the copy"));
    } else {
        check(checks, "roots", false, format!("tables differing from the snapshot: {}; root {root}", wrong.join(", ")));
    }
}
