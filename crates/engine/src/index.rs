//! The repository index in memory: where each packed object is, loaded from the index files
//! on first use, plus the pack being filled by this process.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::object::index::{INDEX_VERSION, IndexFile, PackRecord};
use crate::object::pack::{FinishedPack, PackBuilder, pack_id_of_key};
use crate::object::{self, Kind};
use crate::store::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Packed { pack: Digest, offset: u64, length: u32 },
    /// In the pack this process is filling.
    Buffered { offset: u64, length: u32 },
    /// Claimed by a writer that is compressing it, or in a pack being stored.
    InFlight,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Location {
    pub kind: Kind,
    pub base: Option<Digest>,
    pub place: Place,
}

#[derive(Debug, Default)]
pub(crate) struct RepoIndex {
    pub objects: HashMap<Digest, Location>,
    /// Every pack the index files name and the store holds, with all its entries. An object
    /// may sit in more than one pack, and `objects` points at one of them.
    pub packs: HashMap<Digest, PackRecord>,
    /// Keys of the index files read or written.
    pub files: Vec<String>,
    /// Packs in the store that no readable index file names: left by a snapshot that
    /// stopped before its index file, or named only by a damaged one.
    pub unindexed_packs: Vec<Digest>,
    buffer: PackBuilder,
    /// The buffer of the last pack stored, kept for the next pack.
    spare: Vec<u8>,
    /// Packs stored by this process and not yet named by an index file.
    written: Vec<PackRecord>,
    /// Bytes written that are not object envelopes (pack framing, index files), not yet
    /// reported to a caller.
    pub overhead_bytes: u64,
}

impl RepoIndex {
    /// Marks `id` as being written. Returns false when the object is already stored or
    /// claimed, so that the caller deduplicates it.
    pub fn claim(&mut self, kind: Kind, id: Digest) -> bool {
        if self.objects.contains_key(&id) {
            return false;
        }
        self.objects.insert(id, Location { kind, base: None, place: Place::InFlight });
        true
    }

    pub fn unclaim(&mut self, id: &Digest) {
        if self.objects.get(id).is_some_and(|l| l.place == Place::InFlight) {
            self.objects.remove(id);
        }
    }

    /// Appends a sealed object to the open pack. Returns the pack once it reaches `target`
    /// bytes, with its objects marked in flight, for the caller to store.
    pub fn append(&mut self, kind: Kind, id: Digest, base: Option<Digest>, sealed: &[u8], target: usize) -> Option<PackBuilder> {
        if self.buffer.is_empty() {
            // A little over the target, as the object that crosses it stays in the pack.
            self.buffer.reserve(target + target / 8);
        }
        let offset = self.buffer.push(kind, id, base, sealed);
        self.objects.insert(id, Location { kind, base, place: Place::Buffered { offset, length: sealed.len() as u32 } });
        if self.buffer.len() >= target { self.take_buffer() } else { None }
    }

    /// Takes the open pack unless it is empty, marking its objects in flight.
    pub fn take_buffer(&mut self) -> Option<PackBuilder> {
        if self.buffer.is_empty() {
            return None;
        }
        let buffer = std::mem::replace(&mut self.buffer, PackBuilder::in_buffer(std::mem::take(&mut self.spare)));
        for location in self.objects.values_mut() {
            if matches!(location.place, Place::Buffered { .. }) {
                location.place = Place::InFlight;
            }
        }
        Some(buffer)
    }

    /// Records the outcome of storing a pack taken from the buffer, and keeps its buffer for
    /// a later pack.
    pub fn pack_stored(&mut self, pack: FinishedPack, stored: bool) {
        for entry in &pack.entries {
            if stored {
                if let Some(location) = self.objects.get_mut(&entry.id) {
                    location.place = Place::Packed { pack: pack.id, offset: entry.offset, length: entry.length };
                }
            } else {
                self.objects.remove(&entry.id);
            }
        }
        if stored {
            let record = PackRecord { id: pack.id, length: pack.bytes.len() as u64, entries: pack.entries };
            self.packs.insert(pack.id, record.clone());
            self.written.push(record);
            self.overhead_bytes += pack.framing_bytes;
        }
        if pack.bytes.capacity() > self.spare.capacity() {
            self.spare = pack.bytes;
        }
    }

    pub fn take_written(&mut self) -> Vec<PackRecord> {
        std::mem::take(&mut self.written)
    }

    pub fn restore_written(&mut self, mut records: Vec<PackRecord>) {
        records.append(&mut self.written);
        self.written = records;
    }

    /// Returns whether this process has written or claimed objects that no index file names yet.
    pub fn has_pending_writes(&self) -> bool {
        !self.buffer.is_empty() || !self.written.is_empty() || self.objects.values().any(|l| l.place == Place::InFlight)
    }

    /// Adds a pack and its entries: one named by an index file, or one read back from the
    /// store with the entries of its own directory.
    pub fn add_pack(&mut self, record: PackRecord) -> Result<()> {
        for entry in &record.entries {
            let kind = Kind::from_byte(entry.kind).ok_or_else(|| Error::Corrupt {
                kind: "pack",
                id: record.id.to_hex(),
                detail: format!("entry {} has the unknown kind {}", entry.id, entry.kind),
            })?;
            self.objects.entry(entry.id).or_insert(Location {
                kind,
                base: entry.base,
                place: Place::Packed { pack: record.id, offset: entry.offset, length: entry.length },
            });
        }
        self.unindexed_packs.retain(|id| *id != record.id);
        self.packs.insert(record.id, record);
        Ok(())
    }

    /// Copies an object's envelope out of the open pack.
    pub fn buffered(&self, offset: u64, length: u32) -> Option<Vec<u8>> {
        self.buffer.envelope(offset, length).map(<[u8]>::to_vec)
    }
}

/// Reads every index file and drops the entries whose pack is gone, so that a snapshot
/// stores such objects again instead of referring to them.
pub(crate) fn load(store: &dyn Store, cache: Option<&Path>) -> Result<RepoIndex> {
    // An index file can vanish between the listing and its read when a prune replaces the
    // files; reading the listing again then finds the replacement.
    for _ in 0..3 {
        if let Some(index) = try_load(store, cache)? {
            return Ok(index);
        }
    }
    Err(Error::Invalid(
        "index files kept disappearing while they were read; another d1snap is probably pruning this repository. Run the command again when it has finished".into(),
    ))
}

fn try_load(store: &dyn Store, cache: Option<&Path>) -> Result<Option<RepoIndex>> {
    let mut index = RepoIndex::default();
    let mut files = Vec::new();
    for key in store.list("index/")? {
        let Some(id) = key.strip_prefix("index/").and_then(|name| name.parse::<Digest>().ok()) else {
            tracing::warn!(key, "ignoring a key in index/ that is not an index file id");
            continue;
        };
        match read_index_file(store, cache, &id) {
            Ok(Some(file)) => files.push(file),
            Ok(None) => return Ok(None),
            // One damaged index file must not make every snapshot unreadable: the objects it
            // names are missing until prune indexes their packs again.
            Err(error @ Error::Corrupt { .. }) => {
                tracing::warn!(key, %error, "skipping a damaged index file; run `d1snap prune` to index its packs again from their directories");
            }
            Err(error) => return Err(error),
        }
        index.files.push(key);
    }
    let present: HashSet<Digest> = store.list("packs/")?.iter().filter_map(|key| pack_id_of_key(key)).collect();
    let named: HashSet<Digest> = files.iter().flat_map(|file| file.packs.iter().map(|pack| pack.id)).collect();
    index.unindexed_packs = present.iter().filter(|id| !named.contains(id)).copied().collect();
    for file in files {
        // Entries of a pack that is gone are left out, so a snapshot stores those objects again.
        for pack in file.packs.into_iter().filter(|pack| present.contains(&pack.id)) {
            index.add_pack(pack)?;
        }
    }
    Ok(Some(index))
}

pub(crate) fn cache_path(cache: &Path, id: &Digest) -> PathBuf {
    cache.join(id.to_hex())
}

/// Reads one index file, from the local cache when it contains the file. Returns `None`
/// when the store no longer has it.
fn read_index_file(store: &dyn Store, cache: Option<&Path>, id: &Digest) -> Result<Option<IndexFile>> {
    let cached = cache.and_then(|dir| std::fs::read(cache_path(dir, id)).ok());
    let plain = match cached.map(|stored| object::open(Kind::Index, id, &stored)) {
        Some(Ok(plain)) => plain,
        // A damaged cache file is read from the store again.
        _ => {
            let stored = match store.get(&Kind::Index.key(id)) {
                Ok(stored) => stored,
                Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let plain = object::open(Kind::Index, id, &stored)?;
            if let Some(dir) = cache {
                write_cache(dir, id, &stored);
            }
            plain
        }
    };
    if plain.first() != Some(&INDEX_VERSION) {
        return Err(Error::Invalid(format!(
            "index file {id} has format version {}, this d1snap reads version {INDEX_VERSION}; use a d1snap release that matches the repository",
            plain.first().copied().unwrap_or_default()
        )));
    }
    Ok(Some(object::from_plain(Kind::Index, id, &plain)?))
}

/// Best effort: a cache that cannot be written only costs a read next time.
pub(crate) fn write_cache(dir: &Path, id: &Digest, stored: &[u8]) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let temp = tempfile::NamedTempFile::new_in(dir)?;
        std::fs::write(temp.path(), stored)?;
        temp.persist(cache_path(dir, id)).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(error) = write() {
        tracing::debug!(dir = %dir.display(), %error, "could not cache an index file");
    }
}

/// Stores an index file naming `packs` and returns its key and stored size.
pub(crate) fn write_index_file(store: &dyn Store, cache: Option<&Path>, packs: Vec<PackRecord>) -> Result<(String, u64)> {
    let plain = object::to_plain(Kind::Index, &IndexFile { version: INDEX_VERSION, packs })?;
    let id = Digest::of(&plain);
    let sealed = object::seal(Kind::Index, &plain, Some(3))?;
    let key = Kind::Index.key(&id);
    store.put(&key, &sealed)?;
    if let Some(dir) = cache {
        write_cache(dir, &id, &sealed);
    }
    Ok((key, sealed.len() as u64))
}
