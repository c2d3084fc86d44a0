//! A repository: a store plus its configuration, with typed access to every object kind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest, NodeId, SnapshotId, TableId};
use crate::index::{self, Location, Place, RepoIndex};
use crate::object::config::{CONFIG_KEY, FORMAT_NAME, FORMAT_VERSION, RepoConfig};
use crate::object::pack::{PackBuilder, pack_key};
use crate::object::snapshot::SnapshotRecord;
use crate::object::table::TableObject;
use crate::object::tree::IndexNode;
use crate::object::{self, Kind};
use crate::store::{Store, StoreError};

/// Size at which a pack is closed and stored: large enough that a snapshot writes few files
/// and R2 objects, small enough to upload and retry in one piece.
pub const PACK_TARGET_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Repository {
    store: Arc<dyn Store>,
    config: RepoConfig,
    /// Location of each packed object, loaded on first use.
    index: Arc<Mutex<Option<RepoIndex>>>,
    /// Folder caching the index files of a remote repository, which never change once written.
    index_cache: Option<PathBuf>,
    /// Folder caching the snapshot records of a remote repository, which never change
    /// either: a snapshot reads every record to find its parent.
    record_cache: Option<PathBuf>,
    pack_target: usize,
    /// The full pack being stored on a thread of its own, so that compression goes on
    /// meanwhile. There is at most one, so at most two packs are in memory.
    pack_writer: Arc<Mutex<Option<std::thread::JoinHandle<Result<()>>>>>,
}

fn join_pack_writer(writer: std::thread::JoinHandle<Result<()>>) -> Result<()> {
    writer.join().map_err(|_| Error::Invalid("the thread storing a pack stopped unexpectedly".into()))?
}

/// A store key and, for a packed object, its offset and length in that key's object.
pub type ObjectRange = (String, Option<(u64, u64)>);

/// The place of an object, as `fetch_object` found it in the index.
enum Fetch {
    Bytes(Vec<u8>),
    Range(Digest, u64, u32),
    /// Claimed by a writer, or in a pack being stored.
    InFlight,
    Missing,
}

/// Result of storing a content-addressed object.
#[derive(Clone, Copy, Debug)]
pub struct Stored {
    pub id: Digest,
    /// False when the object was already in the repository (deduplicated).
    pub new: bool,
    /// Bytes written to the store; 0 when deduplicated.
    pub stored_bytes: u64,
}

/// Checks the version byte that every structured object's payload starts with (its first
/// field, a `u8`, which postcard writes as one byte), before decoding the rest, so a newer
/// layout is reported as a version mismatch rather than as corruption.
fn check_leading_version(kind: Kind, id: &Digest, plain: &[u8], supported: u8) -> Result<()> {
    match plain.first() {
        Some(&found) => check_version(kind, id, found, supported),
        None => Err(Error::Corrupt { kind: kind.name(), id: id.to_hex(), detail: "the payload is empty".into() }),
    }
}

/// Rejects an object whose format version this build does not know.
fn check_version(kind: Kind, id: &Digest, found: u8, supported: u8) -> Result<()> {
    if found == supported {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{} {id} has format version {found}, this d1snap reads version {supported}; use a d1snap release that matches the repository",
        kind.name()
    )))
}

impl Repository {
    /// Opens an existing repository.
    pub fn open(store: Arc<dyn Store>) -> Result<Repository> {
        let bytes = match store.get(CONFIG_KEY) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::NoRepository {
                    location: store.location(),
                    hint: "it has no config object; take a snapshot first, or check --repo / D1SNAP_REPO".into(),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let config: RepoConfig = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            kind: "repository config",
            id: CONFIG_KEY.into(),
            detail: format!("invalid JSON: {e}"),
        })?;
        if config.compression.algorithm != "zstd" {
            return Err(Error::Invalid(format!(
                "repository {} uses compression {:?}, which this d1snap does not support (only \"zstd\")",
                store.location(),
                config.compression.algorithm
            )));
        }
        if config.format != FORMAT_NAME || config.version != FORMAT_VERSION {
            return Err(Error::Invalid(format!(
                "repository {} has format {:?} version {}, this d1snap reads {FORMAT_NAME:?} version {FORMAT_VERSION}; use a matching d1snap",
                store.location(),
                config.format,
                config.version
            )));
        }
        Ok(Repository::with_config(store, config))
    }

    fn with_config(store: Arc<dyn Store>, config: RepoConfig) -> Repository {
        Repository {
            store,
            config,
            index: Arc::new(Mutex::new(None)),
            index_cache: None,
            record_cache: None,
            pack_target: PACK_TARGET_BYTES,
            pack_writer: Arc::new(Mutex::new(None)),
        }
    }

    /// Opens the repository, creating it with a default configuration when the location has
    /// none. Called by `snapshot` only after its source has opened, so bad input never
    /// creates a repository.
    pub fn open_or_create(store: Arc<dyn Store>) -> Result<Repository> {
        match store.exists(CONFIG_KEY)? {
            true => Repository::open(store),
            false => {
                let seed = format!(
                    "{:?} {} {:?}",
                    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
                    std::process::id(),
                    std::thread::current().id()
                );
                let config = RepoConfig::new(Digest::of(seed.as_bytes()).to_hex());
                let json = serde_json::to_vec_pretty(&config).expect("config serializes");
                store.put(CONFIG_KEY, &json)?;
                store.flush()?;
                Ok(Repository::with_config(store, config))
            }
        }
    }

    /// Caches index files and snapshot records under `cache_root`, so that a command on a
    /// remote repository reads only those it has not seen. Both are content-addressed and
    /// never change, so a cached copy is never stale.
    pub fn with_index_cache(mut self, cache_root: &Path) -> Repository {
        self.index_cache = Some(cache_root.join(&self.config.id).join("index"));
        self.record_cache = Some(cache_root.join(&self.config.id).join("snapshots"));
        self
    }

    /// Sets the size at which a pack is closed and stored.
    pub fn with_pack_target(mut self, bytes: usize) -> Repository {
        self.pack_target = bytes.max(1);
        self
    }

    pub fn pack_target(&self) -> usize {
        self.pack_target
    }

    pub fn index_cache(&self) -> Option<&Path> {
        self.index_cache.as_deref()
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Runs `f` on the index, reading the index files first if this is the first use.
    pub(crate) fn with_index<T>(&self, f: impl FnOnce(&mut RepoIndex) -> T) -> Result<T> {
        let mut guard = self.index.lock().expect("index lock");
        if guard.is_none() {
            *guard = Some(index::load(self.store.as_ref(), self.index_cache.as_deref())?);
        }
        Ok(f(guard.as_mut().expect("index is loaded")))
    }

    /// Forgets the loaded index so the next use reads the index files again. Called once a
    /// lock is held, so that a prune that ran before it is seen. Keeps it while this
    /// process has writes that no index file names yet.
    pub fn reload_index(&self) {
        let mut guard = self.index.lock().expect("index lock");
        if guard.as_ref().is_some_and(|index| !index.has_pending_writes()) {
            *guard = None;
        }
    }

    /// Reads every pack that no readable index file names and adds the entries of its
    /// directory to the loaded index. Returns the packs indexed and those whose directory
    /// cannot be read, which are left alone. Meant for prune, under its exclusive lock:
    /// elsewhere such a pack may belong to a snapshot still being written.
    pub(crate) fn index_unindexed_packs(&self) -> Result<(usize, Vec<Digest>)> {
        let unindexed = self.with_index(|index| index.unindexed_packs.clone())?;
        let mut indexed = 0;
        let mut unreadable = Vec::new();
        for id in unindexed {
            let directory = self.store.get(&pack_key(&id)).map_err(Error::from).and_then(|bytes| {
                object::pack::read_directory(&id, &bytes).map(|entries| (bytes.len() as u64, entries))
            });
            match directory {
                Ok((length, entries)) => {
                    self.with_index(|index| index.add_pack(crate::object::index::PackRecord { id, length, entries }))??;
                    indexed += 1;
                }
                Err(error) => {
                    tracing::warn!(pack = %id, %error, "leaving a pack whose directory cannot be read");
                    unreadable.push(id);
                }
            }
        }
        Ok((indexed, unreadable))
    }

    /// Drops the loaded index unconditionally, after prune rewrote the index files.
    pub(crate) fn discard_index(&self) {
        *self.index.lock().expect("index lock") = None;
    }

    /// Seals and stores a content-addressed object unless an object with that id exists.
    pub fn put_object(&self, kind: Kind, id: Digest, plain: &[u8]) -> Result<Stored> {
        self.put_object_against(kind, id, plain, None)
    }

    /// Stores an object like `put_object`. When the object is new, `base` names an earlier
    /// version of it, and it is called only then because finding it may read the
    /// repository. The object is stored as a delta against that version's stored base when
    /// the delta is smaller.
    pub fn put_object_against(
        &self,
        kind: Kind,
        id: Digest,
        plain: &[u8],
        base: Option<&dyn Fn() -> Option<Digest>>,
    ) -> Result<Stored> {
        let level = self.config.compression.level;
        if !kind.is_packed() {
            let sealed = object::seal(kind, plain, Some(level))?;
            self.store.put(&kind.key(&id), &sealed)?;
            if let Some(dir) = self.record_cache.as_deref().filter(|_| kind == Kind::Snapshot) {
                index::write_cache(dir, &id, &sealed);
            }
            return Ok(Stored { id, new: true, stored_bytes: sealed.len() as u64 });
        }
        if !self.with_index(|index| index.claim(kind, id))? {
            return Ok(Stored { id, new: false, stored_bytes: 0 });
        }
        let stored = self.seal_packed(kind, id, plain, base).and_then(|(sealed, base)| {
            let full = self.with_index(|index| index.append(kind, id, base, &sealed, self.pack_target))?;
            if let Some(pack) = full {
                self.store_pack_in_background(pack)?;
            }
            Ok(sealed.len() as u64)
        });
        match stored {
            Ok(stored_bytes) => Ok(Stored { id, new: true, stored_bytes }),
            Err(error) => {
                let _ = self.with_index(|index| index.unclaim(&id));
                Err(error)
            }
        }
    }

    fn seal_packed(
        &self,
        kind: Kind,
        id: Digest,
        plain: &[u8],
        base: Option<&dyn Fn() -> Option<Digest>>,
    ) -> Result<(Vec<u8>, Option<Digest>)> {
        let level = self.config.compression.level;
        let found = base.and_then(|find| find()).filter(|hint| *hint != id).and_then(|hint| self.delta_base(kind, hint));
        let Some((base_id, base_plain)) = found else {
            return Ok((object::seal(kind, plain, Some(level))?, None));
        };
        let delta = object::seal_delta(kind, plain, level, &base_id, &base_plain)?;
        // Far below any whole-object compression ratio: no need to compress twice.
        if delta.len() <= plain.len() / 16 {
            return Ok((delta, Some(base_id)));
        }
        let whole = object::seal(kind, plain, Some(level))?;
        Ok(if delta.len() < whole.len() { (delta, Some(base_id)) } else { (whole, None) })
    }

    /// Returns the object a new version of `hint` is stored against, with its plain bytes:
    /// `hint` itself when it is stored whole, else its own base, so no delta ever needs
    /// more than one other object to open.
    fn delta_base(&self, kind: Kind, hint: Digest) -> Option<(Digest, Vec<u8>)> {
        let location = self.with_index(|index| index.objects.get(&hint).copied()).ok()??;
        if location.kind != kind || !matches!(location.place, Place::Packed { .. }) {
            return None;
        }
        let base_id = location.base.unwrap_or(hint);
        match self.get_object(kind, &base_id, "a delta base") {
            Ok(plain) => Some((base_id, plain)),
            Err(error) => {
                tracing::debug!(%error, "storing a new version whole, since its base cannot be read");
                None
            }
        }
    }

    /// Starts storing a full pack on its own thread, after the previous one has finished.
    fn store_pack_in_background(&self, pack: PackBuilder) -> Result<()> {
        let mut writer = self.pack_writer.lock().expect("pack writer lock");
        if let Some(previous) = writer.take() {
            join_pack_writer(previous)?;
        }
        let repo = self.clone();
        *writer = Some(std::thread::spawn(move || repo.store_pack(pack)));
        Ok(())
    }

    /// Waits for the pack writer. The lock is held while joining, so that every caller
    /// returns only once the pack is stored.
    fn wait_for_pack_writer(&self) -> Result<()> {
        let mut writer = self.pack_writer.lock().expect("pack writer lock");
        writer.take().map_or(Ok(()), join_pack_writer)
    }

    fn store_pack(&self, pack: PackBuilder) -> Result<()> {
        let pack = pack.finish()?;
        let result = self.store.put(&pack_key(&pack.id), &pack.bytes);
        self.with_index(|index| index.pack_stored(pack, result.is_ok()))?;
        Ok(result?)
    }

    /// Stores the open pack and an index file naming every pack stored since the last
    /// flush, each made durable before the next step. Returns the bytes written besides
    /// object envelopes since the last call (pack framing and index files).
    pub fn flush(&self) -> Result<u64> {
        self.wait_for_pack_writer()?;
        let mut guard = self.index.lock().expect("index lock");
        let Some(index) = guard.as_mut() else {
            drop(guard);
            self.store.flush()?;
            return Ok(0);
        };
        let open_pack = index.take_buffer();
        drop(guard);
        if let Some(pack) = open_pack {
            self.store_pack(pack)?;
        }
        self.store.flush()?;
        let written = self.with_index(RepoIndex::take_written)?;
        if !written.is_empty() {
            match index::write_index_file(self.store.as_ref(), self.index_cache.as_deref(), written.clone()) {
                Ok((key, bytes)) => self.with_index(|index| {
                    index.files.push(key);
                    index.overhead_bytes += bytes;
                })?,
                Err(error) => {
                    self.with_index(|index| index.restore_written(written))?;
                    return Err(error);
                }
            }
            self.store.flush()?;
        }
        self.with_index(|index| std::mem::take(&mut index.overhead_bytes))
    }

    /// Reads an object and checks its hash; `referenced_by` names the referrer in errors.
    pub fn get_object(&self, kind: Kind, id: &Digest, referenced_by: &str) -> Result<Vec<u8>> {
        let stored = self.fetch_object(kind, id, referenced_by)?;
        self.open_object(kind, id, &stored)
    }

    /// Opens stored bytes from `fetch_object`, reading the base of a delta.
    pub fn open_object(&self, kind: Kind, id: &Digest, stored: &[u8]) -> Result<Vec<u8>> {
        let Some(base_id) = object::delta_base(stored) else {
            return object::open(kind, id, stored);
        };
        let base_stored = self.fetch_object(kind, &base_id, &format!("{} {id}, as its delta base", kind.name()))?;
        if object::delta_base(&base_stored).is_some() {
            return Err(Error::Corrupt {
                kind: kind.name(),
                id: id.to_hex(),
                detail: format!("its delta base {base_id} is itself stored as a delta"),
            });
        }
        let base = object::open(kind, &base_id, &base_stored)?;
        object::open_with_base(kind, id, stored, Some(&base))
    }

    /// Reads an object's stored bytes without opening them, so callers can time the read
    /// apart from decompression and hashing (`open_object`).
    pub fn fetch_object(&self, kind: Kind, id: &Digest, referenced_by: &str) -> Result<Vec<u8>> {
        let missing = || Error::Missing { kind: kind.name(), id: id.to_hex(), referenced_by: referenced_by.into() };
        if !kind.is_packed() {
            let cache = self.record_cache.as_deref().filter(|_| kind == Kind::Snapshot);
            // A cached copy is used only when it still matches its id.
            if let Some(stored) = cache.and_then(|dir| std::fs::read(index::cache_path(dir, id)).ok())
                && object::open(kind, id, &stored).is_ok()
            {
                return Ok(stored);
            }
            return match self.store.get(&kind.key(id)) {
                Ok(stored) => {
                    if let Some(dir) = cache {
                        index::write_cache(dir, id, &stored);
                    }
                    Ok(stored)
                }
                Err(StoreError::NotFound { .. }) => Err(missing()),
                Err(e) => Err(e.into()),
            };
        }
        let lookup = |index: &mut RepoIndex| match index.objects.get(id) {
            Some(Location { place: Place::Buffered { offset, length }, .. }) => {
                index.buffered(*offset, *length).map(Fetch::Bytes).unwrap_or(Fetch::Missing)
            }
            Some(Location { place: Place::Packed { pack, offset, length }, .. }) => Fetch::Range(*pack, *offset, *length),
            Some(Location { place: Place::InFlight, .. }) => Fetch::InFlight,
            None => Fetch::Missing,
        };
        let mut place = self.with_index(lookup)?;
        if matches!(place, Fetch::InFlight) {
            // Its pack may be on the writer thread: once that is done, it can be read.
            self.wait_for_pack_writer()?;
            place = self.with_index(lookup)?;
        }
        match place {
            Fetch::Bytes(bytes) => Ok(bytes),
            Fetch::Missing | Fetch::InFlight => Err(missing()),
            Fetch::Range(pack, offset, length) => match self.store.get_range(&pack_key(&pack), offset, u64::from(length)) {
                Ok(stored) if stored.len() == length as usize => Ok(stored),
                Ok(stored) => Err(Error::Corrupt {
                    kind: kind.name(),
                    id: id.to_hex(),
                    detail: format!("pack {pack} ends {} bytes into it, {length} expected", stored.len()),
                }),
                Err(StoreError::NotFound { .. }) => Err(missing()),
                Err(e) => Err(e.into()),
            },
        }
    }

    pub fn has_object(&self, kind: Kind, id: &Digest) -> Result<bool> {
        if !kind.is_packed() {
            return Ok(self.store.exists(&kind.key(id))?);
        }
        self.with_index(|index| {
            index.objects.get(id).is_some_and(|l| matches!(l.place, Place::Packed { .. } | Place::Buffered { .. }))
        })
    }

    /// Splits `ids` into runs of consecutive ids whose objects sit in one pack within a span
    /// of at most `max_bytes` (an object larger than that forms a run alone), so that
    /// `fetch_run` reads each run with one request. Objects of a run need not be adjacent
    /// or in order: writers append them in the order their compression finished.
    pub fn plan_runs(&self, kind: Kind, ids: &[Digest], max_bytes: u64) -> Result<Vec<std::ops::Range<usize>>> {
        let places = self.packed_places(kind, ids)?;
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        // Pack and byte span of the open run.
        let mut span: Option<(Digest, u64, u64)> = None;
        for (i, place) in places.iter().enumerate() {
            let widened = match (span, place) {
                (Some((pack, start, end)), Some((next_pack, offset, length))) if pack == *next_pack => {
                    let (start, end) = (start.min(*offset), end.max(offset + length));
                    (end - start <= max_bytes).then_some((pack, start, end))
                }
                _ => None,
            };
            match widened {
                Some(wider) => {
                    runs.last_mut().expect("a run is open").end = i + 1;
                    span = Some(wider);
                }
                None => {
                    runs.push(i..i + 1);
                    span = place.map(|(pack, offset, length)| (pack, offset, offset + length));
                }
            }
        }
        Ok(runs)
    }

    /// Pack, offset and length of each id's object, or `None` where the index has none.
    fn packed_places(&self, kind: Kind, ids: &[Digest]) -> Result<Vec<Option<(Digest, u64, u64)>>> {
        self.with_index(|index| {
            ids.iter()
                .map(|id| match index.objects.get(id) {
                    Some(Location { kind: found, place: Place::Packed { pack, offset, length }, .. }) if *found == kind => {
                        Some((*pack, *offset, u64::from(*length)))
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// Reads the stored bytes of a run from `plan_runs` with one ranged read of the span it
    /// covers, or one read per object when the run is not in one pack.
    pub fn fetch_run(&self, kind: Kind, ids: &[Digest], referenced_by: &str) -> Vec<Result<Vec<u8>>> {
        let one_by_one = || ids.iter().map(|id| self.fetch_object(kind, id, referenced_by)).collect();
        let Ok(places) = self.packed_places(kind, ids) else { return one_by_one() };
        let Some(Some((pack, _, _))) = places.first() else { return one_by_one() };
        if ids.len() < 2 || places.iter().any(|p| p.is_none_or(|(other, _, _)| other != *pack)) {
            return one_by_one();
        }
        let placed: Vec<(u64, u64)> = places.iter().flatten().map(|(_, offset, length)| (*offset, *length)).collect();
        let start = placed.iter().map(|(offset, _)| *offset).min().expect("the run is not empty");
        let end = placed.iter().map(|(offset, length)| offset + length).max().expect("the run is not empty");
        let bytes = match self.store.get_range(&pack_key(pack), start, end - start) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound { .. }) => {
                let missing = |id: &Digest| Error::Missing { kind: kind.name(), id: id.to_hex(), referenced_by: referenced_by.into() };
                return ids.iter().map(|id| Err(missing(id))).collect();
            }
            Err(e) => {
                let message = Error::from(e).to_string();
                return ids.iter().map(|_| Err(Error::Invalid(message.clone()))).collect();
            }
        };
        ids.iter()
            .zip(placed)
            .map(|(id, (offset, length))| {
                let from = (offset - start) as usize;
                bytes.get(from..from + length as usize).map(<[u8]>::to_vec).ok_or_else(|| Error::Corrupt {
                    kind: kind.name(),
                    id: id.to_hex(),
                    detail: format!("pack {pack} ends before it, {length} bytes at offset {offset} expected"),
                })
            })
            .collect()
    }

    /// Returns the base a packed object is stored against, from the index, or `None` for
    /// an object stored whole or not in the index.
    pub fn delta_base_of(&self, id: &Digest) -> Result<Option<Digest>> {
        self.with_index(|index| index.objects.get(id).and_then(|location| location.base))
    }

    /// Lists every packed object in the index, with the location of its stored bytes.
    pub fn packed_objects(&self) -> Result<Vec<(Kind, Digest, ObjectRange)>> {
        self.with_index(|index| {
            let mut objects = Vec::with_capacity(index.objects.len());
            for (id, location) in &index.objects {
                if let Place::Packed { pack, offset, length } = location.place {
                    objects.push((location.kind, *id, (pack_key(&pack), Some((offset, u64::from(length))))));
                }
            }
            objects
        })
    }


    pub fn get_chunk(&self, id: &ChunkId, referenced_by: &str) -> Result<Vec<u8>> {
        self.get_object(Kind::Chunk, &id.0, referenced_by)
    }

    pub fn get_node(&self, id: &NodeId, referenced_by: &str) -> Result<IndexNode> {
        let plain = self.get_object(Kind::Node, &id.0, referenced_by)?;
        check_leading_version(Kind::Node, &id.0, &plain, crate::object::tree::NODE_VERSION)?;
        let node: IndexNode = object::from_plain(Kind::Node, &id.0, &plain)?;
        check_version(Kind::Node, &id.0, node.version, crate::object::tree::NODE_VERSION)?;
        Ok(node)
    }

    pub fn get_table(&self, id: &TableId, referenced_by: &str) -> Result<TableObject> {
        let plain = self.get_object(Kind::Table, &id.0, referenced_by)?;
        check_leading_version(Kind::Table, &id.0, &plain, crate::object::table::TABLE_VERSION)?;
        let table: TableObject = object::from_plain(Kind::Table, &id.0, &plain)?;
        check_version(Kind::Table, &id.0, table.version, crate::object::table::TABLE_VERSION)?;
        Ok(table)
    }

    pub fn get_snapshot(&self, id: &SnapshotId) -> Result<SnapshotRecord> {
        let plain = self.get_object(Kind::Snapshot, &id.0, "the snapshot list")?;
        check_leading_version(Kind::Snapshot, &id.0, &plain, crate::object::snapshot::SNAPSHOT_VERSION)?;
        let record: SnapshotRecord = object::from_plain(Kind::Snapshot, &id.0, &plain)?;
        check_version(Kind::Snapshot, &id.0, record.version, crate::object::snapshot::SNAPSHOT_VERSION)?;
        check_version(Kind::Snapshot, &id.0, record.content.version, crate::object::snapshot::CONTENT_VERSION)?;
        Ok(record)
    }

    /// Stores a snapshot record after making every earlier write durable, so the record
    /// never becomes visible before the objects it names.
    /// Adds the bytes of pack framing and index files written since the last flush to the
    /// record's `new_bytes` first, so the record counts everything but itself. Returns the
    /// record's id and stored size.
    pub fn put_snapshot(&self, record: &mut SnapshotRecord) -> Result<(SnapshotId, u64)> {
        record.stats.new_bytes += self.flush()?;
        let plain = object::to_plain(Kind::Snapshot, record)?;
        let id = Digest::of(&plain);
        let stored = self.put_object(Kind::Snapshot, id, &plain)?;
        self.store.flush()?;
        Ok((SnapshotId(id), stored.stored_bytes))
    }

    /// Ids of every snapshot record, from the store listing; records are not read.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        let mut ids = Vec::new();
        for key in self.store.list("snapshots/")? {
            let name = key.rsplit('/').next().unwrap_or_default();
            match name.parse::<Digest>() {
                Ok(id) => ids.push(SnapshotId(id)),
                Err(_) => tracing::warn!(key, "ignoring a key in snapshots/ that is not a snapshot id"),
            }
        }
        Ok(ids)
    }

    /// Reads every snapshot record, oldest first. Unreadable records are returned as errors beside
    /// the good ones so one damaged record does not hide the rest.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Result<SnapshotRecord>)>> {
        let ids = self.snapshot_ids()?;
        // Only records missing from the local cache are worth downloading ahead.
        let cached = |id: &SnapshotId| self.record_cache.as_deref().is_some_and(|dir| index::cache_path(dir, &id.0).exists());
        let uncached: Vec<bool> = ids.iter().map(|id| !cached(id)).collect();
        let keys: Vec<String> = ids.iter().zip(&uncached).filter(|(_, u)| **u).map(|(id, _)| Kind::Snapshot.key(&id.0)).collect();
        let mut read_ahead = ReadAhead::new(self.store.as_ref(), &keys);
        let mut out: Vec<(SnapshotId, Result<SnapshotRecord>)> = Vec::with_capacity(ids.len());
        let mut downloads = 0;
        for (id, uncached) in ids.into_iter().zip(uncached) {
            if uncached {
                read_ahead.reading(downloads);
                downloads += 1;
            }
            out.push((id, self.get_snapshot(&id)));
        }
        out.sort_by_key(|(id, record)| (record.as_ref().map(|r| r.time_ms).unwrap_or(i64::MIN), *id));
        Ok(out)
    }
}

impl Repository {
    /// Finds a snapshot by `latest`, a full id or a unique id prefix of at least 4 hex
    /// digits, or a label (the most recent snapshot carrying it).
    pub fn resolve_snapshot(&self, name: &str) -> Result<(SnapshotId, SnapshotRecord)> {
        let not_found = |hint: &str| Error::SnapshotNotFound { name: name.to_string(), hint: hint.to_string() };
        let ids = self.snapshot_ids()?;
        if ids.is_empty() {
            return Err(not_found("the repository has no snapshots yet; take one with `d1snap snapshot SOURCE`"));
        }
        if name == "latest" {
            let mut best: Option<(i64, SnapshotId, SnapshotRecord)> = None;
            // A damaged record is skipped here (verify reports it) so it cannot hide the rest.
            for (id, record) in self.snapshots()? {
                let Ok(record) = record else { continue };
                if best.as_ref().is_none_or(|(time, _, _)| record.time_ms >= *time) {
                    best = Some((record.time_ms, id, record));
                }
            }
            return best
                .map(|(_, id, record)| (id, record))
                .ok_or_else(|| not_found("no snapshot record can be read; run `d1snap verify --all`"));
        }
        let lower = name.to_ascii_lowercase();
        if lower.len() >= 4 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<SnapshotId> = ids.iter().copied().filter(|id| id.to_hex().starts_with(&lower)).collect();
            match matches.len() {
                1 => return Ok((matches[0], self.get_snapshot(&matches[0])?)),
                0 => {}
                n => {
                    return Err(Error::Invalid(format!(
                        "snapshot id prefix {name:?} matches {n} snapshots; give more digits"
                    )));
                }
            }
        }
        let mut best: Option<(i64, SnapshotId, SnapshotRecord)> = None;
        for (id, record) in self.snapshots()? {
            let Ok(record) = record else { continue };
            if record.labels.iter().any(|l| l == name) && best.as_ref().is_none_or(|(time, _, _)| record.time_ms >= *time) {
                best = Some((record.time_ms, id, record));
            }
        }
        best.map(|(_, id, record)| (id, record))
            .ok_or_else(|| not_found("it is not `latest`, an id prefix or a label; `d1snap list` shows the snapshots"))
    }

    /// Calls `visit` for every chunk of a table's tree, in row order, checking each node's
    /// hash and level on the way. `table` names the table in errors.
    pub fn for_each_chunk(
        &self,
        tree: &crate::object::tree::TreeRef,
        table: &str,
        visit: &mut dyn FnMut(&crate::object::tree::NodeEntry) -> Result<()>,
    ) -> Result<()> {
        let referenced_by = format!("table {table:?}");
        let mut stack: Vec<(NodeId, u8)> = vec![(tree.root, tree.height)];
        while let Some((id, expected_level)) = stack.pop() {
            let node = self.get_node(&id, &referenced_by)?;
            if node.level != expected_level {
                return Err(Error::Corrupt {
                    kind: Kind::Node.name(),
                    id: id.to_hex(),
                    detail: format!("level {} where {expected_level} was expected", node.level),
                });
            }
            if node.level == 0 {
                for entry in &node.entries {
                    visit(entry)?;
                }
            } else {
                stack.extend(node.entries.iter().rev().map(|e| (NodeId(e.id), node.level - 1)));
            }
        }
        Ok(())
    }
}

/// Announces upcoming reads to a remote store, a window of `Store::read_ahead` keys ahead of
/// the one being read, so that downloads overlap while the reader stays sequential.
struct ReadAhead<'a> {
    store: &'a dyn Store,
    keys: &'a [String],
    window: usize,
    announced: usize,
}

impl<'a> ReadAhead<'a> {
    fn new(store: &'a dyn Store, keys: &'a [String]) -> ReadAhead<'a> {
        ReadAhead { store, keys, window: store.read_ahead(), announced: 0 }
    }

    /// Called before key `index` is read.
    fn reading(&mut self, index: usize) {
        if self.window == 0 {
            return;
        }
        // The key being read is announced too: its download starts at once, like the rest.
        let end = (index + self.window).min(self.keys.len());
        while self.announced < end {
            self.store.prefetch(&self.keys[self.announced]);
            self.announced += 1;
        }
    }
}
