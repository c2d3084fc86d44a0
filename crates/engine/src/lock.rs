//! Repository locks, so that `prune` never deletes an object a running snapshot is about to
//! refer to. Writers and readers take shared locks; prune takes an exclusive one.
//!
//! A lock is an object `locks/<id>.json`. To acquire, a process first writes its own lock,
//! then lists the others, and withdraws if any conflicts: two processes racing can both
//! withdraw, but never both proceed, even on stores without atomic create (S3). A lock is
//! refreshed every few minutes and counts as stale after `STALE_AFTER` without a refresh,
//! so a crashed process cannot block the repository forever. A writer checks that its lock
//! still exists before writing a snapshot record, so a writer whose lock went stale (and
//! may have been ignored by a prune) never commits a record.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::repo::Repository;
use crate::snapshot::now_ms;
use crate::store::StoreError;

pub const LOCK_VERSION: u32 = 1;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// How often a held lock is refreshed; far below `STALE_AFTER`.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Shared,
    Exclusive,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub version: u32,
    pub kind: LockKind,
    /// The command holding the lock, such as "snapshot" or "prune".
    pub purpose: String,
    pub host: String,
    pub pid: u32,
    pub created_ms: i64,
    pub refreshed_ms: i64,
}

impl LockRecord {
    pub fn is_stale(&self, now: i64) -> bool {
        now - self.refreshed_ms > STALE_AFTER.as_millis() as i64
    }

    fn describe(&self) -> String {
        format!("{} lock of `{}` by pid {} on {}, refreshed {} s ago", match self.kind { LockKind::Shared => "a shared", LockKind::Exclusive => "an exclusive" }, self.purpose, self.pid, self.host, (now_ms() - self.refreshed_ms) / 1000)
    }
}

/// Returns the name of this host, for locks and alerts, or `unknown-host` when it cannot be
/// read.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unknown-host".into())
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    repo: Repository,
    key: String,
    record: Arc<Mutex<LockRecord>>,
    /// Dropping the sender stops the refresh thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

/// Lists every lock in the repository with its key, skipping unreadable lock objects.
pub fn list_locks(repo: &Repository) -> Result<Vec<(String, LockRecord)>> {
    let mut out = Vec::new();
    for key in repo.store().list("locks/")? {
        match repo.store().get(&key) {
            Ok(bytes) => match serde_json::from_slice::<LockRecord>(&bytes) {
                Ok(record) => out.push((key, record)),
                Err(e) => tracing::warn!(key, error = %e, "ignoring a lock object that does not parse"),
            },
            // Released between the listing and the read.
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Acquires a lock of `kind` for `purpose`, or fails naming the conflicting holder.
pub fn acquire(repo: &Repository, kind: LockKind, purpose: &str) -> Result<LockGuard> {
    let now = now_ms();
    let record = LockRecord { version: LOCK_VERSION, kind, purpose: purpose.to_string(), host: host_name(), pid: std::process::id(), created_ms: now, refreshed_ms: now };
    let id = Digest::of(format!("{:?} {} {:?} {purpose}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id()).as_bytes());
    let key = format!("locks/{}.json", id.to_hex());
    write_record(repo, &key, &record)?;

    let conflicts: Vec<LockRecord> = list_locks(repo)?
        .into_iter()
        .filter(|(other_key, other)| other_key != &key && !other.is_stale(now_ms()))
        .filter(|(_, other)| kind == LockKind::Exclusive || other.kind == LockKind::Exclusive)
        .map(|(_, other)| other)
        .collect();
    if let Some(conflict) = conflicts.first() {
        let _ = repo.store().delete(&key);
        return Err(Error::Invalid(format!(
            "the repository {} is in use: {}; try again when it finishes (a lock without a refresh for {} minutes is ignored)",
            repo.location(),
            conflict.describe(),
            STALE_AFTER.as_secs() / 60
        )));
    }

    let record = Arc::new(Mutex::new(record));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let refresher = {
        let (repo, key, record) = (repo.clone(), key.clone(), record.clone());
        std::thread::spawn(move || {
            // Wakes every REFRESH_EVERY, or at once when the guard drops its sender.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH_EVERY) {
                let snapshot = {
                    let mut guard = record.lock().expect("lock record");
                    guard.refreshed_ms = now_ms();
                    guard.clone()
                };
                if let Err(e) = write_record(&repo, &key, &snapshot) {
                    tracing::warn!(key, error = %e, "could not refresh the repository lock");
                }
            }
        })
    };
    Ok(LockGuard { repo: repo.clone(), key, record, stop: Some(stop), refresher: Some(refresher) })
}

fn write_record(repo: &Repository, key: &str, record: &LockRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::Invalid(format!("cannot serialize a lock: {e}")))?;
    repo.store().put(key, &json)?;
    Ok(())
}

impl LockGuard {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Fails when the lock object is gone, which happens when another process removed it
    /// as stale; a writer then must not write its snapshot record.
    pub fn check_held(&self) -> Result<()> {
        match self.repo.store().exists(&self.key) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Invalid(format!(
                "the repository lock {} was removed while this command ran (it went stale); nothing was committed, run the command again",
                self.key
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn kind(&self) -> LockKind {
        self.record.lock().expect("lock record").kind
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.refresher.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
        if let Err(e) = self.repo.store().delete(&self.key) {
            tracing::warn!(key = self.key, error = %e, "could not release the repository lock; it goes stale after 30 minutes");
        }
    }
}

/// Removes stale locks, returning how many were removed. Only prune calls this, while
/// holding its exclusive lock.
pub fn remove_stale(repo: &Repository) -> Result<usize> {
    let now = now_ms();
    let mut removed = 0;
    for (key, record) in list_locks(repo)? {
        if record.is_stale(now) {
            tracing::warn!(key, holder = record.describe(), "removing a stale lock");
            repo.store().delete(&key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open_or_create(Arc::new(LocalStore::new(dir.path().join("repo")).unwrap())).unwrap();
        (dir, repo)
    }

    #[test]
    fn shared_locks_coexist() {
        let (_dir, repo) = repo();
        let _a = acquire(&repo, LockKind::Shared, "snapshot").unwrap();
        assert!(acquire(&repo, LockKind::Shared, "snapshot").is_ok());
    }

    #[test]
    fn exclusive_lock_waits_for_shared() {
        let (_dir, repo) = repo();
        let _a = acquire(&repo, LockKind::Shared, "snapshot").unwrap();
        let error = acquire(&repo, LockKind::Exclusive, "prune").unwrap_err().to_string();
        assert!(error.contains("in use"), "{error}");
        assert_eq!(list_locks(&repo).unwrap().len(), 1, "the refused lock was not withdrawn");
    }

    #[test]
    fn shared_lock_refused_during_exclusive() {
        let (_dir, repo) = repo();
        let _p = acquire(&repo, LockKind::Exclusive, "prune").unwrap();
        assert!(acquire(&repo, LockKind::Shared, "snapshot").is_err());
    }

    #[test]
    fn stale_lock_is_ignored_and_removed() {
        let (_dir, repo) = repo();
        let old = now_ms() - STALE_AFTER.as_millis() as i64 - 1000;
        let record = LockRecord { version: 1, kind: LockKind::Exclusive, purpose: "prune".into(), host: "h".into(), pid: 1, created_ms: old, refreshed_ms: old };
        write_record(&repo, "locks/old.json", &record).unwrap();
        let guard = acquire(&repo, LockKind::Shared, "snapshot").unwrap();
        assert_eq!(remove_stale(&repo).unwrap(), 1);
        guard.check_held().unwrap();
    }

    #[test]
    fn released_lock_is_deleted() {
        let (_dir, repo) = repo();
        drop(acquire(&repo, LockKind::Shared, "snapshot").unwrap());
        assert!(list_locks(&repo).unwrap().is_empty());
    }

    #[test]
    fn removed_lock_fails_check() {
        let (_dir, repo) = repo();
        let guard = acquire(&repo, LockKind::Shared, "snapshot").unwrap();
        repo.store().delete(guard.key()).unwrap();
        assert!(guard.check_held().is_err());
    }
}
