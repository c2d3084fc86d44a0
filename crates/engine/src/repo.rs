//! A repository: a store plus its configuration, with typed access to every object kind.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::id::{ChunkId, Digest, NodeId, SnapshotId, TableId};
use crate::known::KnownObjects;
use crate::object::config::{CONFIG_KEY, FORMAT_NAME, FORMAT_VERSION, RepoConfig};
use crate::object::snapshot::SnapshotRecord;
use crate::object::table::TableObject;
use crate::object::tree::IndexNode;
use crate::object::{self, Kind};
use crate::store::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct Repository {
    store: Arc<dyn Store>,
    config: RepoConfig,
    /// Objects known to be stored, consulted by `put_object` instead of the store.
    known: Option<Arc<KnownObjects>>,
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
        Ok(Repository { store, config, known: None })
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
                Ok(Repository { store, config, known: None })
            }
        }
    }

    /// Keeps a cache of the objects known to be stored under `cache_root`, so that
    /// `put_object` sends no HEAD request per object. Meant for remote stores, where each
    /// request costs time and money.
    pub fn with_known_objects(mut self, cache_root: &Path) -> Repository {
        self.known = Some(Arc::new(KnownObjects::new(cache_root, &self.config.id, &self.store.location())));
        self
    }

    pub fn known_objects(&self) -> Option<&KnownObjects> {
        self.known.as_deref()
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

    /// Seals and stores a content-addressed object unless an object with that id exists.
    pub fn put_object(&self, kind: Kind, id: Digest, plain: &[u8]) -> Result<Stored> {
        let key = kind.key(&id);
        let present = match &self.known {
            Some(known) => known.check_and_claim(self.store.as_ref(), kind, &id)?,
            None => self.store.exists(&key)?,
        };
        if present {
            return Ok(Stored { id, new: false, stored_bytes: 0 });
        }
        let sealed = object::seal(kind, plain, Some(self.config.compression.level))?;
        self.store.put(&key, &sealed)?;
        Ok(Stored { id, new: true, stored_bytes: sealed.len() as u64 })
    }

    /// Reads an object and checks its hash; `referenced_by` names the referrer in errors.
    pub fn get_object(&self, kind: Kind, id: &Digest, referenced_by: &str) -> Result<Vec<u8>> {
        let stored = self.fetch_object(kind, id, referenced_by)?;
        object::open(kind, id, &stored)
    }

    /// Reads an object's stored bytes without opening them, so callers can time the read
    /// apart from decompression and hashing (`object::open`).
    pub fn fetch_object(&self, kind: Kind, id: &Digest, referenced_by: &str) -> Result<Vec<u8>> {
        match self.store.get(&kind.key(id)) {
            Ok(stored) => Ok(stored),
            Err(StoreError::NotFound { .. }) => {
                Err(Error::Missing { kind: kind.name(), id: id.to_hex(), referenced_by: referenced_by.into() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn has_object(&self, kind: Kind, id: &Digest) -> Result<bool> {
        Ok(self.store.exists(&kind.key(id))?)
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
    pub fn put_snapshot(&self, record: &SnapshotRecord) -> Result<(SnapshotId, u64)> {
        let plain = object::to_plain(Kind::Snapshot, record)?;
        let id = Digest::of(&plain);
        self.flush_confirming()?;
        if let Some(known) = &self.known {
            known.check_generation(self.store.as_ref())?;
        }
        let stored = self.put_object(Kind::Snapshot, id, &plain)?;
        self.flush_confirming()?;
        Ok((SnapshotId(id), stored.stored_bytes))
    }

    /// Flushes the store; then the objects uploaded since the last flush are confirmed in
    /// the known-object cache, or forgotten by it when the flush failed.
    fn flush_confirming(&self) -> Result<()> {
        let result = self.store.flush();
        if let Some(known) = &self.known {
            match &result {
                Ok(()) => known.confirm_pending(),
                Err(_) => known.discard_pending(),
            }
        }
        Ok(result?)
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
        let keys: Vec<String> = ids.iter().map(|id| Kind::Snapshot.key(&id.0)).collect();
        let mut read_ahead = ReadAhead::new(self.store.as_ref(), &keys);
        let mut out: Vec<(SnapshotId, Result<SnapshotRecord>)> = Vec::with_capacity(ids.len());
        for (index, id) in ids.into_iter().enumerate() {
            read_ahead.reading(index);
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
                let keys: Vec<String> = node.entries.iter().map(|e| Kind::Chunk.key(&e.id)).collect();
                let mut read_ahead = ReadAhead::new(self.store.as_ref(), &keys);
                for (index, entry) in node.entries.iter().enumerate() {
                    read_ahead.reading(index);
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
