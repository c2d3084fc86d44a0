//! Repository in a local directory: one file per object, written to a temporary file in the
//! same directory, fsynced, then renamed into place.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{RequestCounters, RequestCounts, RequestKind, Store, StoreError};

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Directories that received a rename since the last flush; their entries become
    /// durable only once the directory itself is fsynced.
    dirty_dirs: Mutex<BTreeSet<PathBuf>>,
    counter: AtomicU64,
    /// File operations counted as the requests they stand for, so that summaries read the
    /// same on every backend: a read is a GET, a stat a HEAD, a directory walk one LIST.
    requests: RequestCounters,
}

impl LocalStore {
    /// Opens a store at `root`. The directory is created on the first write; a path that
    /// exists and is not a directory is rejected now.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore, StoreError> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            return Err(StoreError::Invalid(format!(
                "repository path {} exists and is not a directory; give a directory path with --repo or D1SNAP_REPO",
                root.display()
            )));
        }
        Ok(LocalStore {
            root,
            dirty_dirs: Mutex::new(BTreeSet::new()),
            counter: AtomicU64::new(0),
            requests: RequestCounters::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let valid = !key.is_empty()
            && key.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && !part.starts_with(".tmp-"));
        if !valid {
            return Err(StoreError::Invalid(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn io_error(&self, operation: &'static str, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Io { operation, key: key.to_string(), store: self.location(), source }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.root.is_dir())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        self.requests.request(RequestKind::Get, 0);
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            ErrorKind::NotFound => StoreError::NotFound { key: key.to_string(), store: self.location() },
            _ => self.io_error("read", key, source),
        })?;
        self.requests.received(bytes.len() as u64);
        Ok(bytes)
    }

    fn get_range(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path(key)?;
        self.requests.request(RequestKind::Get, 0);
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = File::open(&path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut bytes = Vec::with_capacity(length as usize);
            file.take(length).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        let bytes = read().map_err(|source| match source.kind() {
            ErrorKind::NotFound => StoreError::NotFound { key: key.to_string(), store: self.location() },
            _ => self.io_error("read", key, source),
        })?;
        self.requests.received(bytes.len() as u64);
        Ok(bytes)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.requests.request(RequestKind::Put, bytes.len() as u64);
        let dir = path.parent().expect("object path has a parent").to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| self.io_error("create directory for", key, e))?;

        let name = path.file_name().expect("object path has a file name").to_string_lossy();
        let serial = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".tmp-{name}-{}-{serial}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        if let Err(source) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(self.io_error("write", key, source));
        }
        self.dirty_dirs.lock().expect("dirty_dirs lock").insert(dir);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        self.requests.request(RequestKind::Head, 0);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                // A deduplicated object may come from a process that crashed before syncing
                // its directory; the next flush syncs it, so a record never relies on an
                // entry that an operating-system crash could still lose.
                if let Some(dir) = path.parent() {
                    self.dirty_dirs.lock().expect("dirty_dirs lock").insert(dir.to_path_buf());
                }
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("stat", key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.trim_end_matches('/');
        self.requests.request(RequestKind::List, 0);
        let start = self.root.join(prefix);
        let mut keys = Vec::new();
        let mut pending = vec![(start, prefix.to_string())];
        while let Some((dir, key_prefix)) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io_error("list", &key_prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io_error("list", &key_prefix, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    continue;
                }
                let key = if key_prefix.is_empty() { name } else { format!("{key_prefix}/{name}") };
                let file_type = entry.file_type().map_err(|e| self.io_error("list", &key, e))?;
                if file_type.is_dir() {
                    pending.push((entry.path(), key));
                } else {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.requests.request(RequestKind::Delete, 0);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("delete", key, e)),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        let dirs = std::mem::take(&mut *self.dirty_dirs.lock().expect("dirty_dirs lock"));
        // Newly created fan-out directories must also be durable in their parents, so every
        // ancestor up to the repository root is synced once.
        let mut to_sync = BTreeSet::new();
        for dir in dirs {
            let mut current = Some(dir.as_path());
            while let Some(path) = current.filter(|p| p.starts_with(&self.root)) {
                to_sync.insert(path.to_path_buf());
                current = path.parent();
            }
        }
        // The repository root's own entry lives in its parent.
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            to_sync.insert(parent.to_path_buf());
        }
        for dir in &to_sync {
            if let Err(e) = sync_dir(dir) {
                // Keep the directories dirty so that a later flush retries them.
                self.dirty_dirs.lock().expect("dirty_dirs lock").extend(to_sync.iter().filter(|d| d.starts_with(&self.root)).cloned());
                return Err(self.io_error("sync", &dir.display().to_string(), e));
            }
        }
        Ok(())
    }

    fn requests(&self) -> RequestCounts {
        self.requests.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("repo")).unwrap();
        store.put("chunks/ab/abcd", b"hello").unwrap();
        assert_eq!(store.get("chunks/ab/abcd").unwrap(), b"hello");
    }

    #[test]
    fn get_missing_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        assert!(matches!(store.get("snapshots/x"), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn list_skips_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        store.put("snapshots/a", b"1").unwrap();
        fs::write(dir.path().join("snapshots/.tmp-b-1-1"), b"partial").unwrap();
        assert_eq!(store.list("snapshots/").unwrap(), vec!["snapshots/a".to_string()]);
    }

    #[test]
    fn file_as_root_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(LocalStore::new(&file), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn key_with_parent_component_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        assert!(matches!(store.put("../escape", b"x"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn operations_are_counted_as_requests() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        store.put("tables/00/0011", b"table").unwrap();
        store.get("tables/00/0011").unwrap();
        store.exists("tables/00/0022").unwrap();
        store.list("tables/").unwrap();
        store.delete("tables/00/0011").unwrap();
        let counts = store.requests();
        assert_eq!((counts.put, counts.get, counts.head, counts.list, counts.delete), (1, 1, 1, 1, 1));
        assert_eq!(counts.bytes_sent, 5);
        assert_eq!(counts.bytes_received, 5);
    }

    #[test]
    fn flush_succeeds_after_puts() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("repo")).unwrap();
        store.put("tables/00/0011", b"t").unwrap();
        store.flush().unwrap();
        assert!(store.dirty_dirs.lock().unwrap().is_empty());
    }
}
