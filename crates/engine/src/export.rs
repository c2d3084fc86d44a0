//! Writing a snapshot as SQL for `wrangler d1 execute --file`: tables, then rows, then
//! `sqlite_sequence`, then indexes, views and triggers in their creation order, so triggers
//! never fire during the load and a trigger on a view follows the view.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId};
use crate::object::chunk::ChunkReader;
use crate::object::snapshot::{SchemaKind, SnapshotRecord};
use crate::object::table::TableObject;
use crate::prefetch::for_each_chunk_read_ahead;
use crate::repo::Repository;
use crate::restore::select_tables;
use crate::scan::ScanParams;
use crate::sql::{D1_MAX_VALUE_BYTES, InsertBatcher, LiteralWriter, RowKey, StatementWriter, push_text};
use crate::value::{Value, ValueRef};

/// Something in the snapshot that the SQL does not carry, with the reason.
#[derive(Clone, Debug, Serialize)]
pub struct Omission {
    pub object: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SqlTable {
    pub name: String,
    pub rows: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SqlExportReport {
    pub snapshot: SnapshotId,
    pub statements: u64,
    pub bytes: u64,
    pub tables: Vec<SqlTable>,
    /// Objects left out on purpose (D1's internal tables, virtual tables).
    pub omitted: Vec<Omission>,
}

/// D1 keeps its own state in tables starting with `_cf_`; they are neither exported nor
/// writable on D1.
pub fn is_d1_internal(name: &str) -> bool {
    name.starts_with("_cf_")
}

/// Values D1 cannot store: a TEXT or BLOB over 2,000,000 bytes, or a row over that size.
pub(crate) fn check_row_fits_d1(table: &str, rowid: Option<i64>, values: &[ValueRef<'_>], problems: &mut Vec<String>) {
    let size: usize = values.iter().map(|v| match v {
        ValueRef::Text(t) => t.len(),
        ValueRef::Blob(b) => b.len(),
        _ => 8,
    }).sum();
    if size > D1_MAX_VALUE_BYTES {
        let row = rowid.map(|r| format!("rowid {r}")).unwrap_or_else(|| "a row".to_string());
        problems.push(format!("table {table:?}, {row}: {size} bytes, over D1's {D1_MAX_VALUE_BYTES}-byte limit for a row"));
    }
}

/// Writes the selected tables of a snapshot (all when `tables` is empty) as D1 SQL. Fails,
/// naming every offending row, when a value is too large for D1, so the problem shows before
/// anyone loads the file.
pub fn write_snapshot_sql<W: Write>(
    repo: &Repository,
    snapshot: SnapshotId,
    record: &SnapshotRecord,
    tables: &[String],
    out: W,
) -> Result<(SqlExportReport, W)> {
    let selected = select_tables(repo, snapshot, record, tables)?;
    let whole = tables.is_empty();
    let literals = LiteralWriter::new()?;
    let mut writer = StatementWriter::new(out);
    let mut omitted = Vec::new();
    let mut problems = Vec::new();

    writer.comment(&format!(
        "d1snap SQL of snapshot {snapshot}\nroot {}\nsource {}\nLoad into an empty D1 database with: wrangler d1 execute DATABASE --file FILE",
        record.root, record.source.location
    ))?;
    writer.statement("PRAGMA defer_foreign_keys = on")?;

    let mut objects: Vec<TableObject> = Vec::new();
    for (_, object) in selected {
        if is_d1_internal(&object.name) {
            omitted.push(Omission { object: format!("table {}", object.name), reason: "D1 internal table, not writable on D1".into() });
            continue;
        }
        if object.shadow {
            omitted.push(Omission {
                object: format!("table {}", object.name),
                reason: "shadow table of a virtual table; D1 imports cannot write it".into(),
            });
            continue;
        }
        objects.push(object);
    }
    for vtab in record.content.schema.iter().filter(|o| o.kind == SchemaKind::VirtualTable) {
        if whole || tables.iter().any(|t| t.eq_ignore_ascii_case(&vtab.name)) {
            omitted.push(Omission {
                object: format!("virtual table {}", vtab.name),
                reason: "virtual tables (such as FTS5) are not exported; create and rebuild them after the import".into(),
            });
        }
    }

    for object in &objects {
        writer.statement(&object.sql)?;
    }
    let mut report_tables = Vec::new();
    for object in &objects {
        let rows = write_table_rows(repo, object, &literals, &mut writer, &mut problems)?;
        report_tables.push(SqlTable { name: object.name.clone(), rows });
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "{} value(s) cannot be stored in D1, so the SQL was not written:\n  {}\nleave those tables out with --table, or shrink the values",
            problems.len(),
            problems.join("\n  ")
        )));
    }

    let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    for entry in &record.content.sequences {
        let Value::Text(name) = &entry.name else { continue };
        let name = String::from_utf8_lossy(name);
        if !names.contains(&name.as_ref()) {
            continue;
        }
        let mut name_literal = String::new();
        push_text(&mut name_literal, name.as_bytes());
        let mut seq_literal = String::new();
        literals.push(&mut seq_literal, entry.seq.as_ref())?;
        writer.statement(&format!("DELETE FROM sqlite_sequence WHERE name = {name_literal}"))?;
        writer.statement(&format!("INSERT INTO sqlite_sequence(name, seq) VALUES ({name_literal}, {seq_literal})"))?;
    }

    for object in &record.content.schema {
        let wanted = match object.kind {
            SchemaKind::VirtualTable => false,
            // A trigger on a view belongs to the view, so it goes wherever views go.
            SchemaKind::Index | SchemaKind::Trigger => {
                names.contains(&object.table.as_str()) || whole && record.content.schema.iter().any(|o| o.kind == SchemaKind::View && o.name == object.table)
            }
            SchemaKind::View => whole,
        };
        if wanted {
            writer.statement(&object.sql)?;
        }
    }
    let (statements, bytes) = (writer.statements, writer.bytes);
    let out = writer.finish()?;
    Ok((SqlExportReport { snapshot, statements, bytes, tables: report_tables, omitted }, out))
}

/// Column names of a table's INSERT, with `rowid` first for rowid tables.
pub fn insert_columns(object: &TableObject) -> Vec<String> {
    let mut columns = Vec::new();
    if object.has_rowid() {
        columns.push("rowid".to_string());
    }
    columns.extend(object.stored_columns().into_iter().map(|i| object.columns[i].name.clone()));
    columns
}

fn write_table_rows<W: Write>(
    repo: &Repository,
    object: &TableObject,
    literals: &LiteralWriter,
    writer: &mut StatementWriter<W>,
    problems: &mut Vec<String>,
) -> Result<u64> {
    let Some(tree) = object.tree else { return Ok(0) };
    let defaults = object.trailing_defaults();
    let key_columns: Vec<(usize, String)> = if object.without_rowid {
        let stored = object.stored_columns();
        object.primary_key().into_iter().filter_map(|pk| stored.iter().position(|c| *c == pk).map(|p| (p, object.columns[pk].name.clone()))).collect()
    } else {
        Vec::new()
    };
    let mut batcher = InsertBatcher::new(&object.name, insert_columns(object), writer.max_statement_bytes);
    let mut rows = 0u64;
    let mut entries = Vec::new();
    repo.for_each_chunk(&tree, &object.name, &mut |entry| {
        entries.push(entry.clone());
        Ok(())
    })?;
    let referenced_by = format!("table {:?}", object.name);
    for_each_chunk_read_ahead(repo, &entries, &referenced_by, ScanParams::default_workers(), &mut |index, plain| {
        let id = ChunkId(entries[index].id);
        let plain = plain?;
        let corrupt = |detail: String| Error::Corrupt { kind: "chunk", id: id.to_hex(), detail };
        let mut reader = ChunkReader::new(&plain, object.has_rowid(), &defaults).map_err(|e| corrupt(e.to_string()))?;
        let mut values = Vec::new();
        let mut params: Vec<ValueRef<'_>> = Vec::new();
        while let Some(rowid) = reader.next_row(&mut values).map_err(|e| corrupt(e.to_string()))? {
            check_row_fits_d1(&object.name, rowid, &values, problems);
            params.clear();
            if let Some(rowid) = rowid {
                params.push(ValueRef::Integer(rowid));
            }
            params.extend_from_slice(&values);
            let key = match rowid {
                Some(rowid) => RowKey::Rowid(rowid),
                None => RowKey::PrimaryKey(key_columns.iter().map(|(p, name)| (name.as_str(), values[*p])).collect()),
            };
            batcher.push(writer, literals, &params, &key)?;
            rows += 1;
        }
        Ok(())
    })?;
    batcher.flush(writer)?;
    Ok(rows)
}
