//! The scheduled jobs. Each calls the engine operation behind the matching command
//! (snapshot, verify, drill, forget, prune) and records it in the repository history as the
//! command does. It returns one item per source, with a line for people and the engine's
//! report as data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use d1snap_engine::drill::{DrillReport, DrillThresholds, run_drill};
use d1snap_engine::forget::ForgetReport;
use d1snap_engine::prune::PruneReport;
use d1snap_engine::id::SnapshotId;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::repo::Repository;
use d1snap_engine::snapshot::{SnapshotOptions, SnapshotReport, take_snapshot};
use d1snap_engine::source::OpenedSource;
use d1snap_engine::store::Store;
use d1snap_engine::verify::{VerifyReport, new_sample_seed, verify_snapshots, verify_snapshots_sampled};
use serde::Serialize;

use crate::config::{Config, SourceConfig};
use crate::duration::format_ms;
use crate::format::{bytes, count, short};
use crate::history;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Snapshot,
    Verify,
    Drill,
    Forget,
    Prune,
}

impl JobKind {
    /// Every job, in the order a pass runs them: new snapshots first, so verify and drill
    /// see them, and prune last, after forget has removed records.
    pub const ALL: [JobKind; 5] = [JobKind::Snapshot, JobKind::Verify, JobKind::Drill, JobKind::Forget, JobKind::Prune];

    pub fn name(self) -> &'static str {
        match self {
            JobKind::Snapshot => "snapshot",
            JobKind::Verify => "verify",
            JobKind::Drill => "drill",
            JobKind::Forget => "forget",
            JobKind::Prune => "prune",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One unit of a job's work: one source, or the whole repository for forget and prune.
#[derive(Clone, Debug, Serialize)]
pub struct JobItem {
    /// The source's name; `None` for a job on the whole repository.
    pub source: Option<String>,
    pub ok: bool,
    /// True when the item found damaged or missing repository data.
    pub integrity: bool,
    /// One line for people: what was done, or the error.
    pub message: String,
    /// The engine's report, in the shape the matching command prints with `--json`; null
    /// when the item failed before it had one.
    pub report: JobReport,
}

/// The engine report of a job item; serialized as the report itself.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum JobReport {
    Snapshot(Box<SnapshotReport>),
    Verify(Box<VerifyReport>),
    Drill(Box<DrillReport>),
    Forget(ForgetReport),
    Prune(PruneReport),
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobOutcome {
    pub job: JobKind,
    /// When the job started, on the pass's clock (milliseconds since the Unix epoch).
    pub started_ms: i64,
    pub duration_ms: u64,
    /// Every item succeeded and the job was not interrupted.
    pub ok: bool,
    /// Some item found damaged or missing repository data.
    pub integrity: bool,
    /// The job stopped between items because a stop was requested.
    pub interrupted: bool,
    pub items: Vec<JobItem>,
}

/// Inputs of a job: the configuration, the repository's store and the pass's clock.
pub struct JobContext<'a> {
    pub config: &'a Config,
    pub store: Arc<dyn Store>,
    /// The pass's time: scheduled snapshots and every history event carry it.
    pub now_ms: i64,
    /// Set by a signal handler: the job stops at the next item boundary.
    pub stop: &'a AtomicBool,
}

impl JobContext<'_> {
    fn open_repo(&self) -> d1snap_engine::Result<Repository> {
        Repository::open(self.store.clone())
    }

    /// Records an operation on the whole repository, or on one source location.
    fn record(&self, repo: &Repository, kind: &str, ok: bool, duration_ms: u64, source: Option<&str>, details: &impl Serialize) {
        let mut event = history::event(kind, self.now_ms, ok, duration_ms, details);
        event.source = source.map(str::to_string);
        history::append(repo, &event);
    }
}

fn item_ok(source: Option<&str>, message: String, report: JobReport) -> JobItem {
    JobItem { source: source.map(str::to_string), ok: true, integrity: false, message, report }
}

fn item_failed(source: Option<&str>, error: &d1snap_engine::Error) -> JobItem {
    JobItem { source: source.map(str::to_string), ok: false, integrity: error.is_integrity(), message: error.to_string(), report: JobReport::None }
}

/// Runs one job and returns its outcome; failures are items, never errors.
pub fn run_job(job: JobKind, context: &JobContext<'_>) -> JobOutcome {
    let started = Instant::now();
    let mut interrupted = false;
    let items = match job {
        JobKind::Snapshot => snapshot_job(context, &mut interrupted),
        JobKind::Verify => verify_job(context, &mut interrupted),
        JobKind::Drill => drill_job(context, &mut interrupted),
        JobKind::Forget => vec![forget_job(context)],
        JobKind::Prune => vec![prune_job(context)],
    };
    JobOutcome {
        job,
        started_ms: context.now_ms,
        duration_ms: started.elapsed().as_millis() as u64,
        ok: !interrupted && items.iter().all(|i| i.ok),
        integrity: items.iter().any(|i| i.integrity),
        interrupted,
        items,
    }
}

/// Returns true, and marks the job interrupted, when a stop was requested.
fn stop_requested(context: &JobContext<'_>, interrupted: &mut bool) -> bool {
    *interrupted = context.stop.load(Ordering::Relaxed);
    *interrupted
}

fn snapshot_job(context: &JobContext<'_>, interrupted: &mut bool) -> Vec<JobItem> {
    let labels = context.config.jobs.snapshot.as_ref().map(|j| j.labels.clone()).unwrap_or_default();
    let mut items = Vec::new();
    for source in &context.config.sources {
        if stop_requested(context, interrupted) {
            break;
        }
        items.push(match snapshot_source(context, source, &labels) {
            Ok(item) => item,
            Err(e) => item_failed(Some(&source.name), &e),
        });
    }
    items
}

fn snapshot_source(context: &JobContext<'_>, source: &SourceConfig, labels: &[String]) -> d1snap_engine::Result<JobItem> {
    // The source opens before the repository, so a bad source never creates a repository.
    let opened = OpenedSource::open(&source.spec())?;
    for warning in &opened.warnings {
        tracing::warn!(source = source.name, warning, "source warning");
    }
    let repo = Repository::open_or_create(context.store.clone())?;
    let options = SnapshotOptions { labels: labels.to_vec(), workers: 0, time_ms: Some(context.now_ms) };
    let report = take_snapshot(&repo, &opened, &options, &NoProgress)?;
    let mut event = history::event("snapshot", context.now_ms, true, report.duration_ms, &report);
    event.source = Some(report.source.clone());
    event.snapshot = Some(report.id.to_hex());
    event.bytes = report.bytes_read;
    event.rows = report.rows;
    history::append(&repo, &event);
    let message = format!(
        "snapshot {}: {} rows, {} new of {} read ({:.1}x), {} of {} chunks new, in {}",
        short(&report.id.to_hex()),
        count(report.rows),
        bytes(report.new_bytes),
        bytes(report.bytes_read),
        report.dedup_ratio,
        count(report.new_chunks),
        count(report.chunks),
        format_ms(report.duration_ms)
    );
    Ok(item_ok(Some(&source.name), message, JobReport::Snapshot(Box::new(report))))
}

/// Returns the configured name of a source location, or the location itself.
fn source_name(config: &Config, location: &str) -> String {
    config
        .sources
        .iter()
        .find(|s| s.spec().location().is_ok_and(|l| l == location))
        .map_or_else(|| location.to_string(), |s| s.name.clone())
}

fn verify_job(context: &JobContext<'_>, interrupted: &mut bool) -> Vec<JobItem> {
    let repo = match context.open_repo() {
        Ok(repo) => repo,
        Err(e) => return vec![item_failed(None, &e)],
    };
    let records = match repo.snapshots() {
        Ok(records) => records,
        Err(e) => return vec![item_failed(None, &e)],
    };
    // One verification per source location, so each source gets its own result. Records
    // that cannot be read have no location and are verified together.
    let mut groups: BTreeMap<Option<String>, Vec<SnapshotId>> = BTreeMap::new();
    for (id, record) in &records {
        groups.entry(record.as_ref().ok().map(|r| r.source.location.clone())).or_default().push(*id);
    }
    let job = context.config.jobs.verify.clone();
    let (read_data, sample) = job.map_or((false, None), |j| (j.read_data, j.sample));
    let mut items = Vec::new();
    for (location, ids) in groups {
        if stop_requested(context, interrupted) {
            break;
        }
        let report = match sample {
            Some(sample) => verify_snapshots_sampled(&repo, &ids, sample, new_sample_seed()),
            None => verify_snapshots(&repo, &ids, read_data),
        };
        context.record(&repo, "verify", report.is_clean(), report.duration_ms, location.as_deref(), &report);
        let name = location.as_deref().map_or_else(|| "unreadable snapshot records".to_string(), |l| source_name(context.config, l));
        let clean = report.is_clean();
        items.push(JobItem {
            source: Some(name),
            ok: clean,
            integrity: !clean,
            message: describe_verify(&report),
            report: JobReport::Verify(Box::new(report)),
        });
    }
    items
}

fn describe_verify(report: &VerifyReport) -> String {
    let data = match (report.read_data, report.sample) {
        (true, Some(sample)) => format!(", {} read (sample {sample})", count(report.chunks_read)),
        (true, None) => format!(", {} read", count(report.chunks_read)),
        (false, _) => String::new(),
    };
    let verdict = match report.findings.first() {
        None => "no problems".to_string(),
        Some(first) => format!("{} problem(s), first: {}", report.findings.len(), first.message),
    };
    format!("{} snapshot(s), {} chunks{data}: {verdict}", report.snapshots.len(), count(report.chunks_checked))
}

fn drill_job(context: &JobContext<'_>, interrupted: &mut bool) -> Vec<JobItem> {
    let repo = match context.open_repo() {
        Ok(repo) => repo,
        Err(e) => return vec![item_failed(None, &e)],
    };
    let thresholds = DrillThresholds { max_restore: context.config.thresholds.max_restore_time.0, max_verify: None, max_projected: None };
    let mut items = Vec::new();
    for source in &context.config.sources {
        if stop_requested(context, interrupted) {
            break;
        }
        items.push(match drill_source(context, &repo, source, &thresholds) {
            Ok(item) => item,
            Err(e) => item_failed(Some(&source.name), &e),
        });
    }
    items
}

fn drill_source(context: &JobContext<'_>, repo: &Repository, source: &SourceConfig, thresholds: &DrillThresholds) -> d1snap_engine::Result<JobItem> {
    let location = source.spec().location()?;
    let latest = repo
        .snapshots()?
        .into_iter()
        .filter_map(|(id, record)| record.ok().map(|r| (id, r)))
        .filter(|(_, r)| r.source.location == location)
        .max_by_key(|(id, r)| (r.time_ms, *id));
    let Some((id, record)) = latest else {
        return Err(d1snap_engine::Error::Invalid(format!("no snapshot of {location} to drill; the snapshot job takes one")));
    };

    let scratch = tempfile_dir()?;
    let report = run_drill(repo, id, &record, thresholds, scratch.path());
    let mut event = history::event("drill", context.now_ms, report.ok, report.restore_ms + report.verify_ms, &report);
    event.snapshot = Some(id.to_hex());
    event.source = Some(location);
    event.bytes = report.bytes;
    event.rows = report.rows;
    history::append(repo, &event);

    let verdict = if report.failed {
        let failed: Vec<String> = report.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
        format!("FAILED ({})", failed.join("; "))
    } else if report.breached {
        format!("passed its checks but {}", report.breaches.join("; "))
    } else {
        "passed".to_string()
    };
    let message = format!(
        "drill of snapshot {}: restore {} ({}), verify {}, {}/s: {verdict}",
        short(&id.to_hex()),
        format_ms(report.restore_ms),
        bytes(report.bytes),
        format_ms(report.verify_ms),
        bytes(report.restore_bytes_per_second as u64)
    );
    // A breached time limit is a threshold, reported by the status; the job itself
    // failed only when a check did.
    Ok(JobItem { source: Some(source.name.clone()), ok: !report.failed, integrity: report.failed, message, report: JobReport::Drill(Box::new(report)) })
}

fn tempfile_dir() -> d1snap_engine::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("d1snap-drill-").tempdir().map_err(|e| d1snap_engine::Error::io("creating a scratch directory for the drill", e))
}

fn forget_job(context: &JobContext<'_>) -> JobItem {
    let Some(job) = &context.config.jobs.forget else {
        return item_failed(None, &d1snap_engine::Error::Invalid("no [jobs.forget] in the configuration".into()));
    };
    let started = Instant::now();
    let result = context.open_repo().and_then(|repo| d1snap_engine::forget::forget(&repo, &job.policy(), false).map(|report| (repo, report)));
    match result {
        Ok((repo, report)) => {
            context.record(&repo, "forget", true, started.elapsed().as_millis() as u64, None, &report);
            item_ok(None, format!("removed {} snapshot(s), kept {}", report.removed, report.kept), JobReport::Forget(report))
        }
        Err(e) => item_failed(None, &e),
    }
}

fn prune_job(context: &JobContext<'_>) -> JobItem {
    let result = context.open_repo().and_then(|repo| d1snap_engine::prune::prune(&repo, false).map(|report| (repo, report)));
    match result {
        Ok((repo, report)) => {
            context.record(&repo, "prune", true, report.duration_ms, None, &report);
            let message = format!(
                "deleted {} unreferenced chunks, {} tree nodes and {} table objects in {}; {} snapshot(s) refer to {} chunks",
                count(report.chunks.unreferenced),
                count(report.nodes.unreferenced),
                count(report.tables.unreferenced),
                format_ms(report.duration_ms),
                report.snapshots,
                count(report.chunks.referenced)
            );
            item_ok(None, message, JobReport::Prune(report))
        }
        Err(e) => item_failed(None, &e),
    }
}
