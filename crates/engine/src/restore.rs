//! Restoring a snapshot, whole or some tables, into a new SQLite file. The file is built
//! under a temporary name beside the target and renamed into place only when complete, so a
//! failed restore leaves nothing behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId};
use crate::object::chunk::ChunkReader;
use crate::object::snapshot::{SchemaKind, SnapshotRecord, TableEntry};
use crate::object::table::TableObject;
use crate::prefetch::for_each_chunk_read_ahead;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::scan::ScanParams;
use crate::schema::{quote_ident, rowid_name};
use crate::value::ValueRef;

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Tables to restore; empty restores the whole database.
    pub tables: Vec<String>,
    pub target: PathBuf,
    /// Replace an existing target file.
    pub force: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoredTable {
    pub name: String,
    pub rows: u64,
    pub chunks: u64,
}

/// Durations of a restore's phases, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestorePhases {
    /// Reading stored chunks from the repository. Reader threads do this and decompression
    /// ahead of the load, so these two are summed over threads and overlap `load_ms`.
    pub read_ms: u64,
    /// Decompressing chunks and checking their hashes, summed over the reader threads.
    pub decompress_ms: u64,
    /// Creating tables and inserting rows.
    pub load_ms: u64,
    /// Creating indexes, triggers and views after the rows.
    pub index_ms: u64,
    /// Committing, syncing the file to disk and renaming it into place.
    pub sync_ms: u64,
}

/// Accumulates phase durations with sub-millisecond precision.
#[derive(Default)]
pub(crate) struct PhaseClock {
    pub read: Duration,
    pub decompress: Duration,
    pub load: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    pub snapshot: SnapshotId,
    pub target: String,
    pub tables: Vec<RestoredTable>,
    pub schema_objects: usize,
    pub rows: u64,
    pub chunks: u64,
    /// Plain bytes of the chunks read.
    pub bytes: u64,
    pub phases: RestorePhases,
    pub duration_ms: u64,
}

/// Picks the snapshot's tables named in `names` (all when empty) and reads their table
/// objects. Naming a virtual table includes its shadow tables. Names match exactly, or
/// case-insensitively when that is unambiguous, as SQLite identifiers do.
pub fn select_tables(
    repo: &Repository,
    snapshot: SnapshotId,
    record: &SnapshotRecord,
    names: &[String],
) -> Result<Vec<(TableEntry, TableObject)>> {
    let content = &record.content;
    let referenced_by = format!("snapshot {snapshot}");
    if names.is_empty() {
        return content.tables.iter().map(|t| Ok((t.clone(), repo.get_table(&t.id, &referenced_by)?))).collect();
    }
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    // Tables picked only because their name starts with a virtual table's name; they are
    // kept only if their table object marks them as shadow tables.
    let mut shadow_candidates: BTreeSet<String> = BTreeSet::new();
    for wanted in names {
        let exact = content.tables.iter().find(|t| &t.name == wanted).map(|t| t.name.clone());
        let virtual_table = content
            .schema
            .iter()
            .find(|o| o.kind == SchemaKind::VirtualTable && o.name.eq_ignore_ascii_case(wanted))
            .map(|o| o.name.clone());
        if let Some(name) = exact {
            chosen.insert(name);
        } else if let Some(vtab) = virtual_table {
            let prefix = format!("{}_", vtab.to_ascii_lowercase());
            shadow_candidates.extend(content.tables.iter().filter(|t| t.name.to_ascii_lowercase().starts_with(&prefix)).map(|t| t.name.clone()));
        } else {
            let folded: Vec<&TableEntry> = content.tables.iter().filter(|t| t.name.eq_ignore_ascii_case(wanted)).collect();
            match folded.as_slice() {
                [one] => {
                    chosen.insert(one.name.clone());
                }
                _ => {
                    let available = content.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(Error::Invalid(format!(
                        "the snapshot has no table {wanted:?}; its tables are: {available}"
                    )));
                }
            }
        }
    }
    // Virtual tables are schema objects, so only ordinary and shadow tables are returned.
    let mut selected = Vec::new();
    for entry in content.tables.iter().filter(|t| chosen.contains(&t.name) || shadow_candidates.contains(&t.name)) {
        let object = repo.get_table(&entry.id, &referenced_by)?;
        if chosen.contains(&entry.name) || object.shadow {
            selected.push((entry.clone(), object));
        }
    }
    Ok(selected)
}

/// Restores a snapshot to a new SQLite file.
pub fn restore(
    repo: &Repository,
    snapshot: SnapshotId,
    record: &SnapshotRecord,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let target = &options.target;
    check_target(target, options.force)?;
    let tables = select_tables(repo, snapshot, record, &options.tables)?;
    let whole = options.tables.is_empty();
    let selected_names: BTreeSet<String> = tables.iter().map(|(t, _)| t.name.clone()).collect();
    let selected_vtabs: BTreeSet<String> = record
        .content
        .schema
        .iter()
        .filter(|o| o.kind == SchemaKind::VirtualTable)
        .filter(|o| whole || options.tables.iter().any(|n| n.eq_ignore_ascii_case(&o.name)))
        .map(|o| o.name.clone())
        .collect();


    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".d1snap-restore-")
        .suffix(".sqlite")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(format!("creating a temporary file in {}", dir.display()), e))?
        .into_temp_path();
    let label = temp.display().to_string();
    let sql_error = |op: String| {
        let label = label.clone();
        move |e| Error::sqlite(op.clone(), label.clone(), e)
    };

    let conn = Connection::open(&temp).map_err(sql_error("opening the restore file".into()))?;
    let content = &record.content;
    conn.execute_batch(&format!(
        "PRAGMA encoding = '{}'; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF; PRAGMA user_version = {}; PRAGMA application_id = {};",
        content.encoding.replace('\'', "''"),
        content.user_version,
        content.application_id
    ))
    .map_err(sql_error("setting up the restore file".into()))?;
    conn.execute_batch("BEGIN").map_err(sql_error("starting the restore transaction".into()))?;

    // Ordinary tables first, then virtual tables (which create their shadow tables), then
    // any shadow table that no restored virtual table created.
    for (_, object) in tables.iter().filter(|(_, o)| !o.shadow) {
        conn.execute_batch(&object.sql).map_err(sql_error(format!("creating table {:?}", object.name)))?;
    }
    for vtab in content.schema.iter().filter(|o| o.kind == SchemaKind::VirtualTable && selected_vtabs.contains(&o.name)) {
        conn.execute_batch(&vtab.sql).map_err(sql_error(format!("creating virtual table {:?}", vtab.name)))?;
    }
    for (_, object) in tables.iter().filter(|(_, o)| o.shadow) {
        let existing: Option<String> = conn
            .query_row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1", [&object.name], |r| r.get(0))
            .ok();
        match existing {
            Some(_) => conn
                .execute_batch(&format!("DELETE FROM {}", quote_ident(&object.name)))
                .map_err(sql_error(format!("clearing shadow table {:?}", object.name)))?,
            None => conn.execute_batch(&object.sql).map_err(sql_error(format!("creating table {:?}", object.name)))?,
        }
    }

    let mut report_tables = Vec::with_capacity(tables.len());
    let (mut total_rows, mut total_chunks, mut total_bytes) = (0u64, 0u64, 0u64);
    let mut clock = PhaseClock::default();
    for (index, (entry, object)) in tables.iter().enumerate() {
        progress.table_started(&object.name, index, tables.len());
        let (rows, chunks, bytes) = load_table(repo, &conn, &label, object, progress, &mut clock)
            .map_err(|e| Error::InTable { table: entry.name.clone(), error: Box::new(e) })?;
        progress.table_finished(&object.name);
        report_tables.push(RestoredTable { name: entry.name.clone(), rows, chunks });
        total_rows += rows;
        total_chunks += chunks;
        total_bytes += bytes;
    }

    restore_sequences(&conn, &label, record, &selected_names)?;

    let index_started = Instant::now();
    let mut schema_objects = 0;
    for object in &content.schema {
        let wanted = match object.kind {
            SchemaKind::VirtualTable => false,
            SchemaKind::Index | SchemaKind::Trigger => whole || selected_names.contains(&object.table),
            SchemaKind::View => whole,
        };
        if wanted {
            conn.execute_batch(&object.sql)
                .map_err(sql_error(format!("creating {} {:?}", object.kind.name(), object.name)))?;
            schema_objects += 1;
        }
    }
    let index_elapsed = index_started.elapsed();
    let sync_started = Instant::now();
    conn.execute_batch("COMMIT").map_err(sql_error("committing the restore".into()))?;
    conn.close().map_err(|(_, e)| Error::sqlite("closing the restore file", &label, e))?;

    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(format!("syncing {label}"), e))?;
    remove_stale_companions(target)?;
    temp.persist(target)
        .map_err(|e| Error::io(format!("renaming the restored file to {}", target.display()), e.error))?;
    if let Ok(dir_file) = std::fs::File::open(&dir) {
        let _ = dir_file.sync_all();
    }

    Ok(RestoreReport {
        snapshot,
        target: target.display().to_string(),
        tables: report_tables,
        schema_objects,
        rows: total_rows,
        chunks: total_chunks,
        bytes: total_bytes,
        phases: RestorePhases {
            read_ms: clock.read.as_millis() as u64,
            decompress_ms: clock.decompress.as_millis() as u64,
            load_ms: clock.load.as_millis() as u64,
            index_ms: index_elapsed.as_millis() as u64,
            sync_ms: sync_started.elapsed().as_millis() as u64,
        },
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn check_target(target: &Path, force: bool) -> Result<()> {
    if target.is_dir() {
        return Err(Error::Invalid(format!("restore target {} is a directory; give a file path", target.display())));
    }
    if target.exists() && !force {
        return Err(Error::Invalid(format!(
            "restore target {} already exists; choose another path or pass --force to replace it",
            target.display()
        )));
    }
    Ok(())
}

/// Removes `-wal`, `-shm` and `-journal` files beside the target: left next to the new file
/// they would belong to the old database and SQLite would apply them to the new one.
fn remove_stale_companions(target: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut path = target.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed a stale file beside the restore target"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing stale {}", path.display()), e)),
        }
    }
    Ok(())
}

/// Column list of a table's INSERT: the rowid (rowid tables) and the stored columns.
pub fn insert_sql(object: &TableObject) -> Result<String> {
    let mut names: Vec<String> = Vec::new();
    if object.has_rowid() {
        names.push(rowid_name(&object.name, &object.columns)?.to_string());
    }
    names.extend(object.stored_columns().into_iter().map(|i| quote_ident(&object.columns[i].name)));
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    Ok(format!("INSERT INTO {}({}) VALUES ({})", quote_ident(&object.name), names.join(", "), placeholders.join(", ")))
}

pub(crate) fn load_table(
    repo: &Repository,
    conn: &Connection,
    label: &str,
    object: &TableObject,
    progress: &dyn Progress,
    clock: &mut PhaseClock,
) -> Result<(u64, u64, u64)> {
    let Some(tree) = object.tree else { return Ok((0, 0, 0)) };
    let sql = insert_sql(object)?;
    let mut insert = conn.prepare(&sql).map_err(|e| Error::sqlite("preparing the insert", label, e))?;
    let defaults = object.trailing_defaults();
    let has_rowid = object.has_rowid();
    let (mut rows, mut chunks, mut bytes) = (0u64, 0u64, 0u64);
    let referenced_by = format!("table {:?}", object.name);
    let mut entries = Vec::new();
    repo.for_each_chunk(&tree, &object.name, &mut |entry| {
        entries.push(entry.clone());
        Ok(())
    })?;
    // The tree is walked first so the chunks can be read ahead. Its entries take 48 bytes per
    // chunk, about 8 MB for a 10 GB table.
    let times = for_each_chunk_read_ahead(repo, &entries, &referenced_by, ScanParams::default_workers(), &mut |index, plain| {
        let entry = &entries[index];
        let id = ChunkId(entry.id);
        let plain = plain?;
        let load_started = Instant::now();
        let corrupt = |detail: String| Error::Corrupt { kind: "chunk", id: id.to_hex(), detail };
        let mut reader = ChunkReader::new(&plain, has_rowid, &defaults).map_err(|e| corrupt(e.to_string()))?;
        if reader.row_count() != entry.rows {
            return Err(corrupt(format!("holds {} rows, its tree entry says {}", reader.row_count(), entry.rows)));
        }
        let mut values: Vec<ValueRef<'_>> = Vec::with_capacity(defaults.len());
        let mut params: Vec<ValueRef<'_>> = Vec::with_capacity(defaults.len() + 1);
        while let Some(rowid) = reader.next_row(&mut values).map_err(|e| corrupt(e.to_string()))? {
            params.clear();
            if let Some(rowid) = rowid {
                params.push(ValueRef::Integer(rowid));
            }
            params.extend_from_slice(&values);
            insert
                .execute(rusqlite::params_from_iter(params.iter()))
                .map_err(|e| Error::sqlite(format!("inserting into {:?}", object.name), label, e))?;
        }
        clock.load += load_started.elapsed();
        rows += entry.rows;
        chunks += 1;
        bytes += entry.bytes;
        progress.advanced(entry.rows, entry.bytes);
        Ok(())
    })?;
    clock.read += times.read;
    clock.decompress += times.decompress;
    if rows != object.rows {
        return Err(Error::Corrupt {
            kind: "table object",
            id: object.name.clone(),
            detail: format!("its tree holds {rows} rows but the table object says {}", object.rows),
        });
    }
    Ok((rows, chunks, bytes))
}

fn restore_sequences(conn: &Connection, label: &str, record: &SnapshotRecord, selected: &BTreeSet<String>) -> Result<()> {
    let has_sequence_table: bool = conn
        .query_row("SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_sequence'", [], |r| r.get(0))
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    if !has_sequence_table {
        return Ok(());
    }
    // Inserting explicit rowids into AUTOINCREMENT tables already raised their counters; the
    // snapshot's values replace them, as the counter may have been above the largest rowid.
    conn.execute_batch("DELETE FROM sqlite_sequence").map_err(|e| Error::sqlite("clearing sqlite_sequence", label, e))?;
    let mut insert = conn
        .prepare("INSERT INTO sqlite_sequence(name, seq) VALUES (?1, ?2)")
        .map_err(|e| Error::sqlite("preparing the sqlite_sequence insert", label, e))?;
    for entry in &record.content.sequences {
        let belongs = match &entry.name {
            crate::value::Value::Text(name) => selected.contains(String::from_utf8_lossy(name).as_ref()),
            _ => selected.len() == record.content.tables.len(),
        };
        if belongs {
            insert
                .execute(rusqlite::params![entry.name, entry.seq])
                .map_err(|e| Error::sqlite("restoring sqlite_sequence", label, e))?;
        }
    }
    Ok(())
}
