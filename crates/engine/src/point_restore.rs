//! Point restore: replace some tables of an existing database with a snapshot's, in one
//! transaction, leaving every other table untouched.
//!
//! Foreign keys are off during the load, because ON DELETE actions would otherwise reach
//! into other tables, and are checked once before commit, like deferred constraints. The
//! restored tables' triggers are dropped before and recreated after, so none fires.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{SnapshotId, TableId};
use crate::object::snapshot::{SchemaKind, SnapshotRecord, TableEntry};
use crate::object::table::TableObject;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::restore::{PhaseClock, load_table, select_tables};
use crate::schema::quote_ident;
use crate::value::Value;

#[derive(Clone, Debug, Default)]
pub struct PointRestoreOptions {
    /// Tables to replace; at least one.
    pub tables: Vec<String>,
    pub target: PathBuf,
    /// Recreate a table whose definition in the target differs from the snapshot's.
    pub replace_schema: bool,
    /// Report what would change without writing.
    pub dry_run: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointRestoredTable {
    pub name: String,
    /// "replace rows", "recreate" (definition differed) or "create" (table was missing).
    pub action: String,
    /// Rows in the target before the restore.
    pub rows_before: u64,
    /// Rows written from the snapshot.
    pub rows: u64,
    /// The table's root in the snapshot, which the restored table now has.
    pub root: TableId,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointRestoreReport {
    pub snapshot: SnapshotId,
    pub target: String,
    pub dry_run: bool,
    pub tables: Vec<PointRestoredTable>,
    pub duration_ms: u64,
}

/// Relation of a snapshot table to the target: missing, same definition, or different.
enum Fit {
    Missing,
    SameDefinition,
    Different(String),
}

fn target_definition(conn: &Connection, label: &str, name: &str) -> Result<Fit> {
    let sql: Option<String> = conn
        .query_row("SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    Ok(match sql {
        None => Fit::Missing,
        Some(sql) => Fit::Different(sql),
    })
}

fn count_rows(conn: &Connection, label: &str, name: &str) -> Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM main.{}", quote_ident(name)), [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(|e| Error::sqlite(format!("counting the rows of {name:?}"), label, e))
}

/// Replaces the named tables of `options.target` with the snapshot's.
pub fn restore_into(
    repo: &Repository,
    snapshot: SnapshotId,
    record: &SnapshotRecord,
    options: &PointRestoreOptions,
    progress: &dyn Progress,
) -> Result<PointRestoreReport> {
    let started = Instant::now();
    if options.tables.is_empty() {
        return Err(Error::Invalid("restore --into needs at least one --table; to restore a whole database use --to".into()));
    }
    let target: &Path = &options.target;
    if !target.is_file() {
        return Err(Error::Source {
            path: target.to_path_buf(),
            message: "not found; --into takes an existing SQLite database (use --to to create a new one)".into(),
        });
    }
    let label = target.display().to_string();
    let (selected, objects): (Vec<TableEntry>, Vec<TableObject>) = select_tables(repo, snapshot, record, &options.tables)?.into_iter().unzip();

    let flags = if options.dry_run { OpenFlags::SQLITE_OPEN_READ_ONLY } else { OpenFlags::SQLITE_OPEN_READ_WRITE };
    let conn = Connection::open_with_flags(target, flags).map_err(|e| Error::sqlite("opening the target", &label, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| Error::sqlite("setting busy_timeout", &label, e))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF").map_err(|e| Error::sqlite("turning foreign keys off", &label, e))?;
    conn.execute_batch(if options.dry_run { "BEGIN" } else { "BEGIN IMMEDIATE" })
        .map_err(|e| Error::sqlite("starting the restore transaction", &label, e))?;

    // Every definition is checked before anything is written.
    let mut plan = Vec::with_capacity(objects.len());
    for (object, entry) in objects.iter().zip(&selected) {
        let fit = match target_definition(&conn, &label, &object.name)? {
            Fit::Different(sql) if sql == object.sql => Fit::SameDefinition,
            other => other,
        };
        if let Fit::Different(current) = &fit {
            if !options.replace_schema {
                return Err(Error::Invalid(format!(
                    "table {:?} in {label} has a different definition than in the snapshot; pass --replace-schema to recreate it with the snapshot's definition (its indexes and triggers are recreated too)\n  snapshot: {}\n  target:   {current}",
                    object.name, object.sql
                )));
            }
        }
        let rows_before = match fit {
            Fit::Missing => 0,
            _ => count_rows(&conn, &label, &object.name)?,
        };
        let action = match fit {
            Fit::Missing => "create",
            Fit::SameDefinition => "replace rows",
            Fit::Different(_) => "recreate",
        };
        plan.push(PointRestoredTable { name: object.name.clone(), action: action.into(), rows_before, rows: object.rows, root: entry.id });
    }
    if options.dry_run {
        return Ok(PointRestoreReport { snapshot, target: label, dry_run: true, tables: plan, duration_ms: started.elapsed().as_millis() as u64 });
    }

    let names: BTreeSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    let result = (|| -> Result<()> {
        drop_dependents(&conn, &label, &names)?;
        for (object, planned) in objects.iter().zip(&plan) {
            match planned.action.as_str() {
                "replace rows" => conn
                    .execute_batch(&format!("DELETE FROM main.{}", quote_ident(&object.name)))
                    .map_err(|e| Error::sqlite(format!("clearing {:?}", object.name), &label, e))?,
                "recreate" => conn
                    .execute_batch(&format!("DROP TABLE main.{}; {}", quote_ident(&object.name), object.sql))
                    .map_err(|e| Error::sqlite(format!("recreating {:?}", object.name), &label, e))?,
                _ => conn.execute_batch(&object.sql).map_err(|e| Error::sqlite(format!("creating {:?}", object.name), &label, e))?,
            }
        }
        for (index, object) in objects.iter().enumerate() {
            progress.table_started(&object.name, index, objects.len());
            load_table(repo, &conn, &label, object, progress, &mut PhaseClock::default()).map_err(|e| Error::InTable { table: object.name.clone(), error: Box::new(e) })?;
            progress.table_finished(&object.name);
        }
        raise_sequences(&conn, &label, record, &names)?;
        for object in &record.content.schema {
            if matches!(object.kind, SchemaKind::Index | SchemaKind::Trigger) && names.contains(object.table.as_str()) {
                conn.execute_batch(&object.sql).map_err(|e| Error::sqlite(format!("creating {} {:?}", object.kind.name(), object.name), &label, e))?;
            }
        }
        check_foreign_keys(&conn, &label, &names)
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(|e| Error::sqlite("committing the restore", &label, e))?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(PointRestoreReport { snapshot, target: label, dry_run: false, tables: plan, duration_ms: started.elapsed().as_millis() as u64 })
}

/// Drops the target's indexes and triggers on the restored tables; the snapshot's are
/// created after the load.
fn drop_dependents(conn: &Connection, label: &str, tables: &BTreeSet<&str>) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name FROM main.sqlite_schema WHERE type IN ('index', 'trigger') AND sql IS NOT NULL")
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    let dependents: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    for (kind, name, table) in dependents {
        if tables.contains(table.as_str()) {
            let keyword = if kind == "index" { "INDEX" } else { "TRIGGER" };
            conn.execute_batch(&format!("DROP {keyword} main.{}", quote_ident(&name)))
                .map_err(|e| Error::sqlite(format!("dropping {kind} {name:?}"), label, e))?;
        }
    }
    Ok(())
}

/// Sets each restored AUTOINCREMENT counter to the larger of the snapshot's and the
/// target's, so ids handed out since the snapshot are never reused.
fn raise_sequences(conn: &Connection, label: &str, record: &SnapshotRecord, tables: &BTreeSet<&str>) -> Result<()> {
    let exists: bool = conn
        .query_row("SELECT count(*) > 0 FROM main.sqlite_schema WHERE name = 'sqlite_sequence'", [], |r| r.get(0))
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    if !exists {
        return Ok(());
    }
    for entry in &record.content.sequences {
        let Value::Text(name) = &entry.name else { continue };
        let name = String::from_utf8_lossy(name).into_owned();
        if !tables.contains(name.as_str()) {
            continue;
        }
        conn.execute("DELETE FROM main.sqlite_sequence WHERE name = ?1 AND seq < ?2", rusqlite::params![name, entry.seq])
            .and_then(|_| conn.execute("INSERT INTO main.sqlite_sequence(name, seq) SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM main.sqlite_sequence WHERE name = ?1)", rusqlite::params![name, entry.seq]))
            .map_err(|e| Error::sqlite("updating sqlite_sequence", label, e))?;
    }
    Ok(())
}

/// Fails when the restored rows leave a foreign key pointing nowhere, naming the first few.
fn check_foreign_keys(conn: &Connection, label: &str, tables: &BTreeSet<&str>) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")
        .map_err(|e| Error::sqlite("checking foreign keys", label, e))?;
    let violations: Vec<(String, Option<i64>, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sqlite("checking foreign keys", label, e))?;
    let relevant: Vec<String> = violations
        .iter()
        .filter(|(table, _, parent)| tables.contains(table.as_str()) || tables.contains(parent.as_str()))
        .map(|(table, rowid, parent)| format!("{table} rowid {} → {parent}", rowid.map(|r| r.to_string()).unwrap_or_else(|| "?".into())))
        .collect();
    if relevant.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the restore would leave {} foreign key violation(s), so nothing was changed: {}{}; restore the referenced tables too (repeat --table)",
        relevant.len(),
        relevant.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if relevant.len() > 5 { ", …" } else { "" }
    )))
}
