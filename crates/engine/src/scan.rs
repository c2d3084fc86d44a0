//! Reads every table of an open database into chunks, index trees and table objects. The
//! same scan serves `snapshot` (objects go to a repository) and the live side of `verify
//! --against` and `diff` (objects are only hashed).
//!
//! SQLite is read on the calling thread while worker threads hash, compress and store
//! chunks. A bounded channel between them keeps memory flat whatever the table size.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::sync::mpsc::{self, Receiver, SyncSender};

use rusqlite::Connection;

use crate::chunker::{self, ChunkerParams, TreeParams};
use crate::delta::PreviousVersions;
use crate::encode;
use crate::error::{Error, Result};
use crate::id::{Digest, TableId};
use crate::object::chunk::ChunkBuilder;
use crate::object::snapshot::{DatabaseContent, TableEntry, CONTENT_VERSION};
use crate::object::table::{TableObject, TABLE_VERSION};
use crate::object::tree::{IndexNode, NodeEntry, TreeBuilder};
use crate::object::{to_plain, Kind};
use crate::progress::Progress;
use crate::repo::{Repository, Stored};
use crate::schema::{quote_ident, rowid_name, Catalog, TableShape};
use crate::value::ValueRef;

/// Destination of a scan's objects: a repository, or nothing when only ids are needed.
pub trait ObjectSink: Sync {
    /// Stores an object; `previous` finds its previous version when the object is new.
    fn put(&self, kind: Kind, id: Digest, plain: &[u8], previous: Option<&dyn Fn() -> Option<Digest>>) -> Result<Stored>;
}

impl ObjectSink for Repository {
    fn put(&self, kind: Kind, id: Digest, plain: &[u8], previous: Option<&dyn Fn() -> Option<Digest>>) -> Result<Stored> {
        self.put_object_against(kind, id, plain, previous)
    }
}

/// Computes ids without storing anything.
pub struct HashOnly;

impl ObjectSink for HashOnly {
    fn put(&self, _kind: Kind, id: Digest, _plain: &[u8], _previous: Option<&dyn Fn() -> Option<Digest>>) -> Result<Stored> {
        Ok(Stored { id, new: false, stored_bytes: 0 })
    }
}

#[derive(Clone, Debug, Default)]
pub struct ScanStats {
    pub rows: u64,
    pub bytes_read: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    pub new_bytes: u64,
}

impl ScanStats {
    fn count_stored(&mut self, stored: &Stored) {
        self.new_bytes += stored.stored_bytes;
    }
}

pub struct ScanOutput {
    pub content: DatabaseContent,
    pub tables: Vec<(TableId, TableObject)>,
    pub stats: ScanStats,
}

pub struct ScanParams<'a> {
    pub chunker: ChunkerParams,
    pub tree: TreeParams,
    pub sink: &'a dyn ObjectSink,
    pub progress: &'a dyn Progress,
    /// Worker threads for hashing, compressing and storing chunks.
    pub workers: usize,
    /// The parent snapshot's objects, to store new ones as deltas against.
    pub previous: Option<&'a PreviousVersions<'a>>,
}

impl ScanParams<'_> {
    pub fn default_workers() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8)
    }
}

type ChunkResult = (u64, Result<Stored>);

/// A chunk for the workers: its sequence number, plain bytes, table and first row number.
type ChunkJob = (u64, Vec<u8>, Arc<str>, u64);

/// Scans every table in `catalog`, inside the read transaction the caller keeps open.
pub fn scan_database(conn: &Connection, label: &str, catalog: &Catalog, params: &ScanParams<'_>) -> Result<ScanOutput> {
    let workers = params.workers.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<ChunkJob>(workers * 2);
    let job_rx = Mutex::new(job_rx);
    let (result_tx, result_rx) = mpsc::channel::<ChunkResult>();

    std::thread::scope(|scope| {
        for _ in 0..workers {
            let job_rx = &job_rx;
            let result_tx = result_tx.clone();
            let (sink, previous) = (params.sink, params.previous);
            scope.spawn(move || {
                crate::priority::lower_current_thread();
                loop {
                    let job = job_rx.lock().expect("job queue lock").recv();
                    let Ok((seq, plain, table, start_row)) = job else { break };
                    let id = Digest::of(&plain);
                    let find = || previous.and_then(|p| p.chunk(&table, start_row));
                    let stored = sink.put(Kind::Chunk, id, &plain, previous.map(|_| &find as &dyn Fn() -> Option<Digest>));
                    if result_tx.send((seq, stored)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        let mut pipeline = Pipeline { job_tx, result_rx, next_seq: 0, done: BTreeMap::new() };
        scan_tables(conn, label, catalog, params, &mut pipeline)
    })
}

/// Hands chunks to the workers and returns their results in submission order.
struct Pipeline {
    job_tx: SyncSender<ChunkJob>,
    result_rx: Receiver<ChunkResult>,
    next_seq: u64,
    done: BTreeMap<u64, Result<Stored>>,
}

impl Pipeline {
    fn submit(&mut self, plain: Vec<u8>, table: &Arc<str>, start_row: u64) -> Result<u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.job_tx
            .send((seq, plain, table.clone(), start_row))
            .map_err(|_| Error::Invalid("chunk workers stopped unexpectedly".into()))?;
        Ok(seq)
    }

    fn take_ready(&mut self, seq: u64) -> Option<Result<Stored>> {
        while let Ok((done_seq, result)) = self.result_rx.try_recv() {
            self.done.insert(done_seq, result);
        }
        self.done.remove(&seq)
    }

    fn wait_for(&mut self, seq: u64) -> Result<Stored> {
        loop {
            if let Some(result) = self.done.remove(&seq) {
                return result;
            }
            let (done_seq, result) = self
                .result_rx
                .recv()
                .map_err(|_| Error::Invalid("chunk workers stopped unexpectedly".into()))?;
            self.done.insert(done_seq, result);
        }
    }
}

struct PendingChunk {
    seq: u64,
    rows: u64,
    bytes: u64,
}

fn scan_tables(
    conn: &Connection,
    label: &str,
    catalog: &Catalog,
    params: &ScanParams<'_>,
    pipeline: &mut Pipeline,
) -> Result<ScanOutput> {
    let mut stats = ScanStats::default();
    let mut tables = Vec::with_capacity(catalog.tables.len());
    let mut entries = Vec::with_capacity(catalog.tables.len());
    for (index, shape) in catalog.tables.iter().enumerate() {
        params.progress.table_started(&shape.name, index, catalog.tables.len());
        let (id, object) = scan_table(conn, label, shape, params, pipeline, &mut stats)?;
        params.progress.table_finished(&shape.name);
        entries.push(TableEntry { name: shape.name.clone(), id });
        tables.push((id, object));
    }
    let content = DatabaseContent {
        version: CONTENT_VERSION,
        encoding: catalog.encoding.clone(),
        user_version: catalog.user_version,
        application_id: catalog.application_id,
        tables: entries,
        schema: catalog.schema.clone(),
        sequences: catalog.sequences.clone(),
    };
    Ok(ScanOutput { content, tables, stats })
}

fn scan_table(
    conn: &Connection,
    label: &str,
    shape: &TableShape,
    params: &ScanParams<'_>,
    pipeline: &mut Pipeline,
    stats: &mut ScanStats,
) -> Result<(TableId, TableObject)> {
    let mut object = TableObject {
        version: TABLE_VERSION,
        name: shape.name.clone(),
        sql: shape.sql.clone(),
        without_rowid: shape.without_rowid,
        strict: shape.strict,
        shadow: shape.shadow,
        columns: shape.columns.clone(),
        rowid_alias: shape.rowid_alias,
        rows: 0,
        bytes: 0,
        chunks: 0,
        tree: None,
    };
    let stored_columns = object.stored_columns();
    let defaults = object.trailing_defaults();
    let primary_key = object.primary_key();
    // Positions of a WITHOUT ROWID table's key columns among the selected stored columns.
    let key_positions: Vec<usize> = primary_key
        .iter()
        .filter(|_| object.without_rowid)
        .map(|pk| stored_columns.iter().position(|c| c == pk).expect("key column is stored"))
        .collect();

    let mut select: Vec<String> = Vec::new();
    if object.has_rowid() {
        select.push(rowid_name(&shape.name, &shape.columns)?.to_string());
    }
    select.extend(stored_columns.iter().map(|&i| quote_ident(&object.columns[i].name)));
    let order = if object.has_rowid() {
        rowid_name(&shape.name, &shape.columns)?.to_string()
    } else {
        primary_key.iter().map(|&i| quote_ident(&object.columns[i].name)).collect::<Vec<_>>().join(", ")
    };
    let select_list = if select.is_empty() { "NULL".to_string() } else { select.join(", ") };
    let sql = format!("SELECT {select_list} FROM main.{} ORDER BY {order}", quote_ident(&shape.name));
    let context = format!("reading table {:?}", shape.name);
    let mut stmt = conn.prepare(&sql).map_err(|e| Error::sqlite(&context, label, e))?;
    let mut rows = stmt.query([]).map_err(|e| Error::sqlite(&context, label, e))?;

    let mut tree_stats = ScanStats::default();
    let table_name: Arc<str> = Arc::from(shape.name.as_str());
    // First row of the next node at each level, to find a node's previous version.
    let mut level_rows: Vec<u64> = Vec::new();
    let mut tree = TreeBuilder::new(params.tree, |id, plain: &[u8]| {
        let (level, rows) = node_span(plain);
        if level_rows.len() <= usize::from(level) {
            level_rows.resize(usize::from(level) + 1, 0);
        }
        let start_row = level_rows[usize::from(level)];
        level_rows[usize::from(level)] += rows;
        let find = || params.previous.and_then(|p| p.node(&shape.name, level, start_row));
        let stored = params.sink.put(Kind::Node, id.0, plain, params.previous.map(|_| &find as &dyn Fn() -> Option<Digest>))?;
        tree_stats.count_stored(&stored);
        Ok(())
    });
    let mut builder = ChunkBuilder::default();
    let mut pending: VecDeque<PendingChunk> = VecDeque::new();
    let chunks_before = stats.chunks;
    let mut key_bytes = Vec::new();
    let offset = usize::from(object.has_rowid());
    let mut unreported = (0u64, 0u64);

    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => return Err(Error::sqlite(&context, label, e)),
        };
        let mut values: Vec<ValueRef<'_>> = Vec::with_capacity(stored_columns.len());
        for i in 0..stored_columns.len() {
            values.push(row.get_ref(i + offset).map_err(|e| Error::sqlite(&context, label, e))?.into());
        }
        let (rowid, key_hash) = if object.has_rowid() {
            let rowid: i64 = row.get(0).map_err(|e| Error::sqlite(&context, label, e))?;
            (Some(rowid), chunker::rowid_hash(rowid))
        } else {
            key_bytes.clear();
            for &position in &key_positions {
                encode::put_value(&mut key_bytes, values[position]);
            }
            (None, chunker::key_hash(&key_bytes))
        };
        let row_bytes = builder.push_row(rowid, &values, &defaults);
        object.rows += 1;
        object.bytes += row_bytes as u64;
        unreported.0 += 1;
        unreported.1 += row_bytes as u64;
        if unreported.0 >= 4096 {
            params.progress.advanced(unreported.0, unreported.1);
            unreported = (0, 0);
        }
        if params.chunker.is_boundary(builder.byte_len(), row_bytes, key_hash) {
            flush_chunk(&mut builder, pipeline, &mut pending, &table_name, object.rows)?;
            drain_ready(pipeline, &mut pending, &mut tree, stats, false)?;
        }
    }
    params.progress.advanced(unreported.0, unreported.1);
    if !builder.is_empty() {
        flush_chunk(&mut builder, pipeline, &mut pending, &table_name, object.rows)?;
    }
    drain_ready(pipeline, &mut pending, &mut tree, stats, true)?;
    object.tree = tree.finish()?;
    stats.new_bytes += tree_stats.new_bytes;

    object.chunks = stats.chunks - chunks_before;
    stats.rows += object.rows;
    stats.bytes_read += object.bytes;
    let plain = to_plain(Kind::Table, &object)?;
    let id = Digest::of(&plain);
    let stored = params.sink.put(Kind::Table, id, &plain, None)?;
    stats.count_stored(&stored);
    Ok((TableId(id), object))
}

/// Level and row count of a node from its plain payload, which the tree builder just made.
fn node_span(plain: &[u8]) -> (u8, u64) {
    match postcard::from_bytes::<IndexNode>(plain) {
        Ok(node) => (node.level, node.entries.iter().map(|e| e.rows).sum()),
        Err(_) => (0, 0),
    }
}

/// Hands the builder's rows to the workers; `rows_so_far` counts the table's rows up to and
/// including this chunk's.
fn flush_chunk(
    builder: &mut ChunkBuilder,
    pipeline: &mut Pipeline,
    pending: &mut VecDeque<PendingChunk>,
    table: &Arc<str>,
    rows_so_far: u64,
) -> Result<()> {
    let (plain, rows) = builder.take();
    let bytes = plain.len() as u64;
    let seq = pipeline.submit(plain, table, rows_so_far - rows)?;
    pending.push_back(PendingChunk { seq, rows, bytes });
    Ok(())
}

/// Moves finished chunks, in order, into the tree. With `all`, waits for every pending chunk.
fn drain_ready<F>(
    pipeline: &mut Pipeline,
    pending: &mut VecDeque<PendingChunk>,
    tree: &mut TreeBuilder<F>,
    stats: &mut ScanStats,
    all: bool,
) -> Result<()>
where
    F: FnMut(crate::id::NodeId, &[u8]) -> Result<()>,
{
    while let Some(front) = pending.front() {
        let result = if all {
            pipeline.wait_for(front.seq)
        } else {
            match pipeline.take_ready(front.seq) {
                Some(result) => result,
                None => break,
            }
        };
        let stored = result?;
        let chunk = pending.pop_front().expect("front exists");
        stats.chunks += 1;
        if stored.new {
            stats.new_chunks += 1;
        }
        stats.count_stored(&stored);
        tree.push_chunk(NodeEntry { id: stored.id, rows: chunk.rows, bytes: chunk.bytes })?;
    }
    Ok(())
}

/// Scans a source with the repository's chunking parameters without storing anything, to
/// compare a live database with snapshots.
pub fn scan_hash_only(
    source: &crate::source::OpenedSource,
    config: &crate::object::config::RepoConfig,
    progress: &dyn Progress,
) -> Result<ScanOutput> {
    let catalog = source.catalog()?;
    let params = ScanParams {
        chunker: config.chunker,
        tree: config.tree,
        sink: &HashOnly,
        progress,
        workers: ScanParams::default_workers(),
        previous: None,
    };
    scan_database(&source.conn, &source.info.location, &catalog, &params)
}
