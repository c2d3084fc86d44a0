//! Operation history kept in the repository: one small JSON object per snapshot, restore,
//! verify, drill and migration under `history/`, so status pages and reports can chart
//! durations and results over time without reading any snapshot data.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::repo::Repository;

pub const HISTORY_VERSION: u32 = 1;

/// One finished operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub version: u32,
    /// "snapshot", "restore", "verify", "drill" or "migrate".
    pub kind: String,
    /// Milliseconds since the Unix epoch, UTC, when the operation finished.
    pub time_ms: i64,
    pub ok: bool,
    pub snapshot: Option<String>,
    pub source: Option<String>,
    pub duration_ms: u64,
    /// Plain bytes the operation handled (read, restored or verified).
    pub bytes: u64,
    pub rows: u64,
    /// The operation's own report, as it printed it with --json.
    pub details: serde_json::Value,
}

impl HistoryEvent {
    pub fn new(kind: &str, ok: bool, duration_ms: u64) -> HistoryEvent {
        HistoryEvent {
            version: HISTORY_VERSION,
            kind: kind.to_string(),
            time_ms: crate::snapshot::now_ms(),
            ok,
            snapshot: None,
            source: None,
            duration_ms,
            bytes: 0,
            rows: 0,
            details: serde_json::Value::Null,
        }
    }
}

/// Stores an event under `history/<time_ms>-<kind>-<8 hex digits>.json`; the key sorts by
/// time and never collides between concurrent writers.
pub fn append(repo: &Repository, event: &HistoryEvent) -> Result<String> {
    let json = serde_json::to_vec_pretty(event).map_err(|e| Error::Invalid(format!("cannot serialize a history event: {e}")))?;
    let salt = Digest::of(format!("{:?} {} {:?}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id()).as_bytes());
    let key = format!("history/{:013}-{}-{}.json", event.time_ms.max(0), event.kind, &salt.to_hex()[..8]);
    repo.store().put(&key, &json)?;
    // A remote store uploads in the background; the flush confirms the event is stored.
    repo.store().flush()?;
    Ok(key)
}

/// Reads every event, oldest first. Events that do not parse are skipped with a warning, so
/// one damaged entry never hides the others.
pub fn read_all(repo: &Repository) -> Result<Vec<HistoryEvent>> {
    let mut keys = repo.store().list("history/")?;
    keys.sort();
    let mut events = Vec::with_capacity(keys.len());
    for key in keys {
        let bytes = repo.store().get(&key)?;
        match serde_json::from_slice::<HistoryEvent>(&bytes) {
            Ok(event) => events.push(event),
            Err(e) => tracing::warn!(key, error = %e, "skipping a history entry that does not parse"),
        }
    }
    events.sort_by_key(|e| e.time_ms);
    Ok(events)
}

/// Reads the most recent successful drill's event, listing `history/` once and reading only
/// the drill entries from the newest back, so a snapshot does not read the whole history.
pub fn latest_drill(repo: &Repository) -> Result<Option<HistoryEvent>> {
    let mut keys: Vec<String> = repo.store().list("history/")?.into_iter().filter(|k| k.contains("-drill-")).collect();
    keys.sort();
    for key in keys.iter().rev() {
        let bytes = repo.store().get(key)?;
        match serde_json::from_slice::<HistoryEvent>(&bytes) {
            Ok(event) if event.ok => return Ok(Some(event)),
            Ok(_) => {}
            Err(e) => tracing::warn!(key, error = %e, "skipping a history entry that does not parse"),
        }
    }
    Ok(None)
}

/// Restore throughput of the most recent successful drill, in plain bytes per second.
pub fn latest_drill_throughput(events: &[HistoryEvent]) -> Option<f64> {
    events
        .iter()
        .rev()
        .filter(|e| e.kind == "drill" && e.ok)
        .find_map(|e| e.details.get("restore_bytes_per_second").and_then(|v| v.as_f64()))
        .filter(|rate| *rate > 0.0)
}

/// Projects how long restoring `bytes` plain bytes takes at `bytes_per_second`.
pub fn project_ms(bytes: u64, bytes_per_second: f64) -> u64 {
    (bytes as f64 / bytes_per_second * 1000.0).ceil() as u64
}
