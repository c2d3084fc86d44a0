//! The status of a repository against its thresholds: per source, the latest snapshot, the
//! latest verification and drill, the projected rollback time, and every breached
//! threshold or failed check. Computed from the snapshot records and the history, so it
//! reads no chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use d1snap_engine::history::HistoryEvent;
use d1snap_engine::id::SnapshotId;
use d1snap_engine::object::snapshot::SnapshotRecord;
use d1snap_engine::repo::Repository;
use serde::Serialize;

use crate::config::{Config, Thresholds};
use crate::duration::format_ms;
use crate::history;
use crate::jobs::JobKind;
use crate::schedule::format_time;

/// The check a breach concerns. Failed checks mean damaged data, and the others are time
/// limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The latest snapshot is older than `max_snapshot_age`, or there is none.
    SnapshotAge,
    /// The latest drill's restore took longer than `max_restore_time`.
    RestoreTime,
    /// Restoring the latest snapshot is projected to take longer than `max_projected_rollback`.
    ProjectedRollback,
    /// No verification passed within `max_verify_age`.
    VerifyAge,
    /// No drill passed within `max_drill_age`.
    DrillAge,
    /// The latest verification found damaged or missing data.
    VerifyFailed,
    /// The latest drill's checks failed.
    DrillFailed,
}

impl Check {
    pub const ALL: [Check; 7] = [Check::SnapshotAge, Check::RestoreTime, Check::ProjectedRollback, Check::VerifyAge, Check::DrillAge, Check::VerifyFailed, Check::DrillFailed];

    pub fn name(self) -> &'static str {
        match self {
            Check::SnapshotAge => "snapshot_age",
            Check::RestoreTime => "restore_time",
            Check::ProjectedRollback => "projected_rollback",
            Check::VerifyAge => "verify_age",
            Check::DrillAge => "drill_age",
            Check::VerifyFailed => "verify_failed",
            Check::DrillFailed => "drill_failed",
        }
    }

    /// True for checks that found damaged or missing data rather than a late or slow one.
    pub fn is_integrity(self) -> bool {
        matches!(self, Check::VerifyFailed | Check::DrillFailed)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Breach {
    pub source: String,
    pub check: Check,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastSnapshot {
    pub id: String,
    pub time_ms: i64,
    pub age_ms: u64,
    pub labels: Vec<String>,
    pub tables: usize,
    pub rows: u64,
    /// Plain encoded bytes of every row: the snapshot's size.
    pub bytes: u64,
    /// Stored bytes the snapshot added to the repository.
    pub new_bytes: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    /// `bytes / new_bytes`.
    pub dedup_ratio: f64,
    pub duration_ms: u64,
    pub lossy: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastVerify {
    pub time_ms: i64,
    pub age_ms: u64,
    pub ok: bool,
    pub errors: u64,
    pub read_data: bool,
    pub chunks_checked: u64,
    pub chunks_read: u64,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastDrill {
    pub time_ms: i64,
    pub age_ms: u64,
    pub snapshot: Option<String>,
    /// Every check passed and no threshold was breached.
    pub ok: bool,
    /// A check failed.
    pub failed: bool,
    pub restore_ms: u64,
    pub verify_ms: u64,
    pub restore_bytes_per_second: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub name: String,
    pub location: String,
    /// Reason the source's location could not be found, such as a missing wrangler config.
    pub error: Option<String>,
    pub snapshots: usize,
    pub last_snapshot: Option<LastSnapshot>,
    pub last_verify: Option<LastVerify>,
    /// The latest passed verification, for `max_verify_age`.
    pub last_verify_passed_ms: Option<i64>,
    pub last_drill: Option<LastDrill>,
    /// The latest passed drill, for `max_drill_age`.
    pub last_drill_passed_ms: Option<i64>,
    /// Restore time of the latest snapshot, projected from the restore throughput of the
    /// source's latest passed drill (or the repository's, when the source has none).
    pub projected_rollback_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub job: JobKind,
    pub schedule: String,
    pub last_run_ms: Option<i64>,
    pub last_ok: Option<bool>,
    pub last_duration_ms: Option<u64>,
    pub last_success_ms: Option<i64>,
    /// When the job is next due; the time of the status when it is due now.
    pub next_run_ms: Option<i64>,
    /// The error of the latest run's first failed item.
    pub last_error: Option<String>,
}

/// Alert deliveries found in the history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertCounts {
    pub delivered: u64,
    pub failed: u64,
    /// Webhook requests made, retries included.
    pub requests: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub now_ms: i64,
    pub repository: String,
    /// Bytes of every file in the repository directory.
    pub repository_bytes: Option<u64>,
    pub repository_files: Option<u64>,
    pub snapshots: usize,
    pub unreadable_snapshots: usize,
    pub thresholds: Thresholds,
    pub sources: Vec<SourceStatus>,
    pub jobs: Vec<JobStatus>,
    pub alerts: AlertCounts,
    pub breaches: Vec<Breach>,
    /// No breach.
    pub ok: bool,
}

impl StatusReport {
    /// True when a check found damaged or missing data.
    pub fn has_integrity_breach(&self) -> bool {
        self.breaches.iter().any(|b| b.check.is_integrity())
    }
}

/// The inputs of a status: configuration (optional), records, history and the clock.
pub struct StatusInput<'a> {
    pub config: Option<&'a Config>,
    pub repo: Option<&'a Repository>,
    /// The repository as the user named it (a directory or a bucket URL).
    pub repository: &'a str,
    /// The repository directory, for its size; `None` for a bucket.
    pub local_dir: Option<&'a Path>,
    pub events: &'a [HistoryEvent],
    pub now_ms: i64,
}

/// Lists the sources to report on: the configured ones, or without a configuration every
/// source location found in the snapshot records (named by location).
fn sources_of(config: Option<&Config>, records: &[(SnapshotId, SnapshotRecord)]) -> Vec<(String, Result<String, String>)> {
    match config {
        Some(config) if !config.sources.is_empty() => {
            config.sources.iter().map(|s| (s.name.clone(), s.spec().location().map_err(|e| e.to_string()))).collect()
        }
        _ => {
            let locations: BTreeSet<&str> = records.iter().map(|(_, r)| r.source.location.as_str()).collect();
            locations.into_iter().map(|l| (l.to_string(), Ok(l.to_string()))).collect()
        }
    }
}

/// Computes the status.
pub fn compute(input: &StatusInput<'_>) -> d1snap_engine::Result<StatusReport> {
    let thresholds = input.config.map(|c| c.thresholds.clone()).unwrap_or_default();
    let (records, unreadable) = match input.repo {
        Some(repo) => {
            let mut good = Vec::new();
            let mut bad = 0;
            for (id, record) in repo.snapshots()? {
                match record {
                    Ok(record) => good.push((id, record)),
                    Err(_) => bad += 1,
                }
            }
            (good, bad)
        }
        None => (Vec::new(), 0),
    };
    let fallback_rate = d1snap_engine::history::latest_drill_throughput(input.events);
    let mut sources = Vec::new();
    for (name, location) in sources_of(input.config, &records) {
        sources.push(source_status(name, location, &records, input.events, input.now_ms, fallback_rate));
    }
    let mut breaches = Vec::new();
    for source in &sources {
        breaches.extend(source_breaches(source, &thresholds, input.now_ms));
    }
    // NOTE: a bucket's size would need a listing with object sizes, which the store
    // interface does not return, so it is reported only for a local directory.
    let (repository_bytes, repository_files) = input.local_dir.and_then(directory_size).map_or((None, None), |(b, f)| (Some(b), Some(f)));
    Ok(StatusReport {
        now_ms: input.now_ms,
        repository: input.repository.to_string(),
        repository_bytes,
        repository_files,
        snapshots: records.len(),
        unreadable_snapshots: unreadable,
        thresholds,
        jobs: input.config.map(|c| job_statuses(c, input.events, input.now_ms)).unwrap_or_default(),
        alerts: alert_counts(input.events),
        ok: breaches.is_empty(),
        breaches,
        sources,
    })
}

fn age(now_ms: i64, time_ms: i64) -> u64 {
    u64::try_from(now_ms - time_ms).unwrap_or(0)
}

fn number(value: &serde_json::Value, key: &str) -> u64 {
    value.get(key).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn source_status(name: String, location: Result<String, String>, records: &[(SnapshotId, SnapshotRecord)], events: &[HistoryEvent], now_ms: i64, fallback_rate: Option<f64>) -> SourceStatus {
    let (location, error) = match location {
        Ok(location) => (location, None),
        Err(error) => (String::new(), Some(error)),
    };
    let own: Vec<&(SnapshotId, SnapshotRecord)> = records.iter().filter(|(_, r)| r.source.location == location).collect();
    let ids: BTreeSet<String> = own.iter().map(|(id, _)| id.to_hex()).collect();
    let last = own.iter().max_by_key(|(id, r)| (r.time_ms, *id));
    let last_snapshot = last.map(|(id, r)| LastSnapshot {
        id: id.to_hex(),
        time_ms: r.time_ms,
        age_ms: age(now_ms, r.time_ms),
        labels: r.labels.clone(),
        tables: r.tables.len(),
        rows: r.stats.rows,
        bytes: r.stats.bytes_read,
        new_bytes: r.stats.new_bytes,
        chunks: r.stats.chunks,
        new_chunks: r.stats.new_chunks,
        dedup_ratio: r.stats.bytes_read as f64 / r.stats.new_bytes.max(1) as f64,
        duration_ms: r.stats.duration_ms,
        lossy: r.source.lossy,
    });

    // A verification belongs to the source when it names the source, or when it checked
    // one of the source's snapshots (as `d1snap verify` does without naming a source).
    let covers = |e: &HistoryEvent| {
        e.source.as_deref() == Some(location.as_str())
            || e.details.get("snapshots").and_then(|s| s.as_array()).is_some_and(|s| s.iter().any(|id| id.as_str().is_some_and(|id| ids.contains(id))))
    };
    let verifies: Vec<&HistoryEvent> = events.iter().filter(|e| e.kind == "verify" && covers(e)).collect();
    let last_verify = verifies.iter().max_by_key(|e| e.time_ms).map(|e| LastVerify {
        time_ms: e.time_ms,
        age_ms: age(now_ms, e.time_ms),
        ok: e.ok,
        errors: e.details.get("findings").and_then(|f| f.as_array()).map_or(0, |f| f.len() as u64),
        read_data: e.details.get("read_data").and_then(|v| v.as_bool()).unwrap_or(false),
        chunks_checked: number(&e.details, "chunks_checked"),
        chunks_read: number(&e.details, "chunks_read"),
        duration_ms: e.duration_ms,
    });
    let last_verify_passed_ms = verifies.iter().filter(|e| e.ok).map(|e| e.time_ms).max();

    let drills: Vec<&HistoryEvent> = events.iter().filter(|e| e.kind == "drill" && e.source.as_deref() == Some(location.as_str())).collect();
    let last_drill = drills.iter().max_by_key(|e| e.time_ms).map(|e| LastDrill {
        time_ms: e.time_ms,
        age_ms: age(now_ms, e.time_ms),
        snapshot: e.snapshot.clone(),
        ok: e.ok,
        failed: e.details.get("failed").and_then(|v| v.as_bool()).unwrap_or(!e.ok),
        restore_ms: number(&e.details, "restore_ms"),
        verify_ms: number(&e.details, "verify_ms"),
        restore_bytes_per_second: e.details.get("restore_bytes_per_second").and_then(|v| v.as_f64()).unwrap_or(0.0),
    });
    let last_drill_passed_ms = drills.iter().filter(|e| e.ok).map(|e| e.time_ms).max();
    let own_drills: Vec<HistoryEvent> = drills.iter().map(|e| (*e).clone()).collect();
    let rate = d1snap_engine::history::latest_drill_throughput(&own_drills).or(fallback_rate);
    let projected_rollback_ms = match (&last_snapshot, rate) {
        (Some(last), Some(rate)) => Some(d1snap_engine::history::project_ms(last.bytes, rate)),
        _ => None,
    };
    SourceStatus {
        name,
        location,
        error,
        snapshots: own.len(),
        last_snapshot,
        last_verify,
        last_verify_passed_ms,
        last_drill,
        last_drill_passed_ms,
        projected_rollback_ms,
    }
}

fn source_breaches(source: &SourceStatus, thresholds: &Thresholds, now_ms: i64) -> Vec<Breach> {
    if let Some(error) = &source.error {
        let message = format!("cannot be found, so its snapshots cannot be checked: {error}");
        return vec![Breach { source: source.name.clone(), check: Check::SnapshotAge, message }];
    }
    let mut breaches = Vec::new();
    let mut breach = |check: Check, message: String| breaches.push(Breach { source: source.name.clone(), check, message });
    let limit = |ms: u64| format_ms(ms);

    match &source.last_snapshot {
        None => breach(Check::SnapshotAge, "has no snapshot yet".into()),
        Some(last) if last.age_ms > thresholds.max_snapshot_age.as_ms() => breach(
            Check::SnapshotAge,
            format!("the latest snapshot is {} old, over the {} limit (max_snapshot_age)", format_ms(last.age_ms), limit(thresholds.max_snapshot_age.as_ms())),
        ),
        Some(_) => {}
    }

    if let Some(drill) = &source.last_drill {
        if drill.failed {
            breach(Check::DrillFailed, format!("the latest drill, at {}, failed its checks; run `d1snap drill` to see which", format_time(drill.time_ms)));
        }
        if drill.restore_ms > thresholds.max_restore_time.as_ms() {
            breach(
                Check::RestoreTime,
                format!("the latest drill restored in {}, over the {} limit (max_restore_time)", format_ms(drill.restore_ms), limit(thresholds.max_restore_time.as_ms())),
            );
        }
    }
    if let Some(projected) = source.projected_rollback_ms.filter(|p| *p > thresholds.max_projected_rollback.as_ms()) {
        breach(
            Check::ProjectedRollback,
            format!("restoring the latest snapshot is projected to take {}, over the {} limit (max_projected_rollback)", format_ms(projected), limit(thresholds.max_projected_rollback.as_ms())),
        );
    }

    if let Some(verify) = source.last_verify.as_ref().filter(|v| !v.ok) {
        breach(Check::VerifyFailed, format!("the latest verification, at {}, found {} problem(s); run `d1snap verify --all` to see them", format_time(verify.time_ms), verify.errors));
    }
    let stale = |passed: Option<i64>, max: Option<crate::config::Interval>| {
        max.filter(|max| passed.is_none_or(|time| age(now_ms, time) > max.as_ms()))
    };
    if let Some(max) = stale(source.last_verify_passed_ms, thresholds.max_verify_age) {
        breach(Check::VerifyAge, format!("no verification passed within {} (max_verify_age)", limit(max.as_ms())));
    }
    if let Some(max) = stale(source.last_drill_passed_ms, thresholds.max_drill_age) {
        breach(Check::DrillAge, format!("no drill passed within {} (max_drill_age)", limit(max.as_ms())));
    }
    breaches
}

fn job_statuses(config: &Config, events: &[HistoryEvent], now_ms: i64) -> Vec<JobStatus> {
    let last_runs = history::last_job_runs(events);
    let mut last_success: BTreeMap<&str, i64> = BTreeMap::new();
    for event in events.iter().filter(|e| e.ok) {
        if let Some(name) = history::job_name(event) {
            let entry = last_success.entry(name).or_insert(event.time_ms);
            *entry = (*entry).max(event.time_ms);
        }
    }
    let mut statuses = Vec::new();
    for (job, schedule) in crate::runner::scheduled_jobs(config) {
        let last = last_runs.get(job.name()).copied();
        let last_run_ms = last.map(|e| e.time_ms);
        let next_run_ms = match last_run_ms {
            None => Some(now_ms),
            Some(time) => schedule.next_after(time).map(|next| next.max(now_ms)),
        };
        let last_error = last.filter(|e| !e.ok).and_then(|e| {
            let items = e.details.get("items")?.as_array()?;
            items.iter().find(|i| i.get("ok").and_then(|o| o.as_bool()) == Some(false))?.get("message")?.as_str().map(str::to_string)
        });
        statuses.push(JobStatus {
            job,
            schedule: schedule.as_str().to_string(),
            last_run_ms,
            last_ok: last.map(|e| e.ok),
            last_duration_ms: last.map(|e| e.duration_ms),
            last_success_ms: last_success.get(job.name()).copied(),
            next_run_ms,
            last_error,
        });
    }
    statuses
}

fn alert_counts(events: &[HistoryEvent]) -> AlertCounts {
    let mut counts = AlertCounts::default();
    // Alert events of one message share its delivery, so requests are counted per message.
    let mut messages = BTreeSet::new();
    for event in events.iter().filter(|e| e.kind == history::ALERT) {
        if event.ok {
            counts.delivered += 1;
        } else {
            counts.failed += 1;
        }
        if let Some(message) = event.details.get("message_id").and_then(|m| m.as_str())
            && messages.insert(message.to_string())
        {
            counts.requests += number(&event.details, "attempts");
        }
    }
    counts
}

/// Returns the bytes and the number of files under a directory, or `None` when it cannot be
/// read.
// NOTE: only a local repository has a directory to measure; a store without one needs a
// listing with object sizes.
pub fn directory_size(dir: &Path) -> Option<(u64, u64)> {
    let mut total = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()? {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total.0 += meta.len();
                total.1 += 1;
            }
        }
    }
    Some(total)
}
