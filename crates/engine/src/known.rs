//! A local cache of the content-addressed objects known to be in a remote repository, so a
//! snapshot skips what is stored already without one HEAD request per object.
//!
//! An id enters the cache only once the store has confirmed the object: a LIST returned
//! it, or its upload succeeded and the store was flushed. The cache belongs to one
//! repository (its config id and location) and one generation, the value of the
//! `index/generation` object. A prune changes that value before it deletes anything, so a
//! cache from before a prune is rebuilt from a listing instead of being trusted, and a
//! snapshot that finds the generation changed while it ran writes no record.
//! docs/FORMAT.md ("Known-object cache") gives the full rules.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::object::Kind;
use crate::store::{Store, StoreError};

/// Store key of the repository generation: random hex, replaced by every prune before it
/// deletes objects. A repository without it is at generation `0`.
pub const GENERATION_KEY: &str = "index/generation";

const FILE_NAME: &str = "known-objects";
const HEADER_PREFIX: &str = "d1snap known objects v1 generation=";
/// One record: the kind byte, then the 32-byte id.
const RECORD_LEN: usize = 33;

const KINDS: [Kind; 4] = [Kind::Chunk, Kind::Node, Kind::Table, Kind::Snapshot];

type Entry = [u8; RECORD_LEN];

#[derive(Debug)]
pub struct KnownObjects {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The generation the cache was loaded for; `None` until the first lookup.
    generation: Option<String>,
    /// Confirmed ids and the ids claimed by uploads of this run.
    ids: HashSet<Entry>,
    /// Ids claimed by uploads of this run, not yet confirmed by a flush.
    pending: Vec<Entry>,
}

fn entry(kind: Kind, id: &Digest) -> Entry {
    let mut entry = [0u8; RECORD_LEN];
    entry[0] = kind as u8;
    entry[1..].copy_from_slice(&id.0);
    entry
}

impl KnownObjects {
    /// Creates a cache in `cache_root`, in a folder named after the repository id and location so
    /// that a copy of a repository elsewhere never shares it.
    pub fn new(cache_root: &Path, repository_id: &str, location: &str) -> KnownObjects {
        let place = Digest::of(location.as_bytes()).to_hex();
        let dir = cache_root.join(format!("{repository_id}-{}", &place[..16]));
        KnownObjects { dir, state: Mutex::new(State::default()) }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Returns true when the object is known to be stored. Otherwise claims it for an upload
    /// by the caller, so that concurrent callers upload one copy, and returns false.
    pub fn check_and_claim(&self, store: &dyn Store, kind: Kind, id: &Digest) -> Result<bool> {
        let mut state = self.state.lock().expect("known objects lock");
        if state.generation.is_none() {
            self.load(store, &mut state)?;
        }
        let entry = entry(kind, id);
        if state.ids.contains(&entry) {
            return Ok(true);
        }
        state.ids.insert(entry);
        state.pending.push(entry);
        Ok(false)
    }

    /// Fails when the repository generation changed since the cache was loaded: a prune may
    /// have deleted objects this run took as stored. Called before a snapshot record is
    /// written; the cache file is removed so the next run rebuilds it.
    pub fn check_generation(&self, store: &dyn Store) -> Result<()> {
        let state = self.state.lock().expect("known objects lock");
        let Some(loaded) = &state.generation else { return Ok(()) };
        let current = read_generation(store)?;
        if &current == loaded {
            return Ok(());
        }
        let _ = fs::remove_file(self.path());
        Err(Error::Invalid(format!(
            "the repository generation changed from {loaded} to {current} during this snapshot, so a prune ran and objects it reused may be gone; no snapshot record was written; take the snapshot again"
        )))
    }

    /// Records the claimed ids as confirmed, after a flush returned success.
    pub fn confirm_pending(&self) {
        let mut state = self.state.lock().expect("known objects lock");
        let pending = std::mem::take(&mut state.pending);
        let Some(generation) = state.generation.clone() else { return };
        if let Err(error) = self.append(&generation, &pending, &state.ids) {
            tracing::warn!(path = %self.path().display(), %error, "could not update the known-object cache; the next snapshot may upload objects again");
        }
    }

    /// Forgets the claimed ids after a failed flush: their uploads may not have landed.
    pub fn discard_pending(&self) {
        let mut state = self.state.lock().expect("known objects lock");
        let pending = std::mem::take(&mut state.pending);
        for entry in &pending {
            state.ids.remove(entry);
        }
    }

    /// Loads the cache file when it matches the current generation, else rebuilds it from a
    /// listing of the repository: one LIST request per 1,000 objects.
    fn load(&self, store: &dyn Store, state: &mut State) -> Result<()> {
        let generation = read_generation(store)?;
        match self.read_file(&generation) {
            Ok(Some(ids)) => {
                tracing::debug!(path = %self.path().display(), objects = ids.len(), "loaded the known-object cache");
                state.ids = ids;
            }
            Ok(None) => {
                state.ids = list_repository(store)?;
                tracing::debug!(objects = state.ids.len(), generation, "rebuilt the known-object cache from a listing");
                if let Err(error) = self.rewrite(&generation, &state.ids) {
                    tracing::warn!(path = %self.path().display(), %error, "could not write the known-object cache");
                }
            }
            Err(error) => {
                tracing::warn!(path = %self.path().display(), %error, "could not read the known-object cache; rebuilding it");
                state.ids = list_repository(store)?;
            }
        }
        state.generation = Some(generation);
        Ok(())
    }

    /// Reads the ids in the cache file, or returns `None` when it is missing or of another generation.
    fn read_file(&self, generation: &str) -> std::io::Result<Option<HashSet<Entry>>> {
        let mut bytes = Vec::new();
        match File::open(self.path()) {
            Ok(mut file) => file.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let header = format!("{HEADER_PREFIX}{generation}\n");
        let Some(records) = bytes.strip_prefix(header.as_bytes()) else { return Ok(None) };
        // A torn last record (a crash in an append) is dropped; its object is uploaded again.
        Ok(Some(
            records
                .chunks_exact(RECORD_LEN)
                .map(|r| r.try_into().expect("exact record length"))
                .filter(|r: &Entry| KINDS.iter().any(|k| *k as u8 == r[0]))
                .collect(),
        ))
    }

    fn rewrite(&self, generation: &str, ids: &HashSet<Entry>) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(format!("{HEADER_PREFIX}{generation}\n").as_bytes())?;
        for entry in ids {
            temp.write_all(entry)?;
        }
        temp.persist(self.path()).map_err(|e| e.error)?;
        Ok(())
    }

    /// Appends `entries`, or writes all of `ids` when the file is missing or belongs to
    /// another generation.
    fn append(&self, generation: &str, entries: &[Entry], ids: &HashSet<Entry>) -> std::io::Result<()> {
        let header = format!("{HEADER_PREFIX}{generation}\n");
        let mut start = vec![0u8; header.len()];
        let matches = File::open(self.path()).and_then(|mut f| f.read_exact(&mut start)).is_ok() && start == header.as_bytes();
        if !matches {
            return self.rewrite(generation, ids);
        }
        let mut buffer = Vec::with_capacity(entries.len() * RECORD_LEN);
        for entry in entries {
            buffer.extend_from_slice(entry);
        }
        // One write per append, so that two processes appending at once interleave whole
        // batches of records.
        OpenOptions::new().append(true).open(self.path())?.write_all(&buffer)
    }
}

/// Writes a new repository generation. Every command that deletes objects calls this
/// before its first delete, so caches and running snapshots stop trusting older ids.
pub fn advance_generation(store: &dyn Store) -> Result<String> {
    let seed = format!("{:?} {} {:?}", std::time::SystemTime::now(), std::process::id(), std::thread::current().id());
    let generation = Digest::of(seed.as_bytes()).to_hex()[..32].to_string();
    store.put(GENERATION_KEY, generation.as_bytes())?;
    store.flush()?;
    Ok(generation)
}

fn read_generation(store: &dyn Store) -> Result<String> {
    match store.get(GENERATION_KEY) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).trim().to_string()),
        Err(StoreError::NotFound { .. }) => Ok("0".to_string()),
        Err(e) => Err(e.into()),
    }
}

/// Lists every content-addressed object in the repository.
fn list_repository(store: &dyn Store) -> Result<HashSet<Entry>> {
    let mut ids = HashSet::new();
    for key in store.list("")? {
        let Some((folder, rest)) = key.split_once('/') else { continue };
        let Some(kind) = KINDS.iter().find(|k| k.folder() == folder) else { continue };
        let name = rest.rsplit('/').next().unwrap_or_default();
        if let Ok(id) = name.parse::<Digest>() {
            ids.insert(entry(*kind, &id));
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn setup() -> (tempfile::TempDir, LocalStore, KnownObjects) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("repo")).unwrap();
        let known = KnownObjects::new(&dir.path().join("cache"), "repo-id", "location");
        (dir, store, known)
    }

    #[test]
    fn listing_fills_empty_cache() {
        let (_dir, store, known) = setup();
        let id = Digest::of(b"chunk");
        store.put(&Kind::Chunk.key(&id), b"x").unwrap();
        assert!(known.check_and_claim(&store, Kind::Chunk, &id).unwrap());
    }

    #[test]
    fn claimed_id_is_known_to_next_caller() {
        let (_dir, store, known) = setup();
        let id = Digest::of(b"new chunk");
        assert!(!known.check_and_claim(&store, Kind::Chunk, &id).unwrap());
        assert!(known.check_and_claim(&store, Kind::Chunk, &id).unwrap());
    }

    #[test]
    fn confirmed_ids_survive_reopening() {
        let (dir, store, known) = setup();
        let id = Digest::of(b"uploaded");
        known.check_and_claim(&store, Kind::Node, &id).unwrap();
        known.confirm_pending();
        let reopened = KnownObjects::new(&dir.path().join("cache"), "repo-id", "location");
        assert!(reopened.check_and_claim(&store, Kind::Node, &id).unwrap());
        assert_eq!(store.requests().list, 1, "the second cache must load from its file");
    }

    #[test]
    fn discarded_ids_are_forgotten() {
        let (_dir, store, known) = setup();
        let id = Digest::of(b"failed upload");
        known.check_and_claim(&store, Kind::Chunk, &id).unwrap();
        known.discard_pending();
        assert!(!known.check_and_claim(&store, Kind::Chunk, &id).unwrap());
    }

    #[test]
    fn new_generation_discards_cache() {
        let (dir, store, known) = setup();
        let id = Digest::of(b"pruned later");
        known.check_and_claim(&store, Kind::Chunk, &id).unwrap();
        known.confirm_pending();
        store.put(GENERATION_KEY, b"after-prune").unwrap();
        let reopened = KnownObjects::new(&dir.path().join("cache"), "repo-id", "location");
        assert!(!reopened.check_and_claim(&store, Kind::Chunk, &id).unwrap());
    }

    #[test]
    fn generation_change_during_run_is_an_error() {
        let (_dir, store, known) = setup();
        known.check_and_claim(&store, Kind::Chunk, &Digest::of(b"a")).unwrap();
        store.put(GENERATION_KEY, b"after-prune").unwrap();
        assert!(matches!(known.check_generation(&store), Err(Error::Invalid(_))));
        assert!(!known.path().exists());
    }
}
