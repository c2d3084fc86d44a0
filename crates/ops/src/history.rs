//! The history events this crate writes and reads, beside the engine's operation events:
//! `job` (one per scheduled job run, which is how the scheduler knows when each job last
//! ran) and `alert` (one per alert condition in each message sent).

use std::collections::BTreeMap;

use d1snap_engine::history::{self, HistoryEvent};
use d1snap_engine::repo::Repository;
use serde::Serialize;

pub const JOB: &str = "job";
pub const ALERT: &str = "alert";

/// A history event at a given time, filled in by the caller.
pub fn event(kind: &str, time_ms: i64, ok: bool, duration_ms: u64, details: &impl Serialize) -> HistoryEvent {
    let mut event = HistoryEvent::new(kind, ok, duration_ms);
    event.time_ms = time_ms;
    event.details = serde_json::to_value(details).unwrap_or_default();
    event
}

/// Appends an event. A failure is logged and not returned: the operation it records is
/// already done, and failing it now would only hide its result.
pub fn append(repo: &Repository, event: &HistoryEvent) {
    if let Err(e) = history::append(repo, event) {
        tracing::warn!(error = %e, kind = event.kind, "could not record an event in the repository history");
    }
}

/// The name of the job a `job` event records.
pub fn job_name(event: &HistoryEvent) -> Option<&str> {
    (event.kind == JOB).then(|| event.details.get("job").and_then(|j| j.as_str())).flatten()
}

/// The latest `job` event of each job, by job name.
pub fn last_job_runs(events: &[HistoryEvent]) -> BTreeMap<String, &HistoryEvent> {
    let mut last: BTreeMap<String, &HistoryEvent> = BTreeMap::new();
    for event in events {
        if let Some(name) = job_name(event)
            && last.get(name).is_none_or(|seen| seen.time_ms <= event.time_ms)
        {
            last.insert(name.to_string(), event);
        }
    }
    last
}

/// The latest delivered `alert` event of each alert key.
pub fn last_alerts(events: &[HistoryEvent]) -> BTreeMap<String, &HistoryEvent> {
    let mut last: BTreeMap<String, &HistoryEvent> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == ALERT && e.ok) {
        if let Some(key) = event.details.get("key").and_then(|k| k.as_str())
            && last.get(key).is_none_or(|seen| seen.time_ms <= event.time_ms)
        {
            last.insert(key.to_string(), event);
        }
    }
    last
}

/// Reads the history of a repository, or none when there is no repository yet.
pub fn read(repo: Option<&Repository>) -> d1snap_engine::Result<Vec<HistoryEvent>> {
    match repo {
        Some(repo) => history::read_all(repo),
        None => Ok(Vec::new()),
    }
}
