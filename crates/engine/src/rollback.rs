//! The SQL that turns database B into database A, for D1: run after a migration (B) it
//! rolls the database back to the snapshot taken before it (A). Rows are changed one by one
//! (DELETE, UPDATE, INSERT), never by dropping a table, because D1 runs with foreign keys on
//! and dropping or clearing a parent table fires ON DELETE CASCADE in its children.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use rusqlite::Connection;
use serde::Serialize;

use crate::diff::DatabaseView;
use crate::error::{Error, Result};
use crate::export::{check_row_fits_d1, insert_columns, is_d1_internal};
use crate::object::snapshot::{SchemaKind, SchemaObject};
use crate::object::table::TableObject;
use crate::rowdiff::{DiffCounts, ObjectReader, Row, RowEvent, Side, diff_rows, key_columns};
use crate::schema::quote_ident;
use crate::sql::{InsertBatcher, LiteralWriter, RowKey, StatementWriter, push_text, write_update};
use crate::value::{Value, ValueRef};

/// One side of a rollback: its view plus a reader and the table objects.
pub struct RollbackSide<'a> {
    pub view: &'a DatabaseView,
    pub reader: &'a dyn ObjectReader,
    pub tables: &'a BTreeMap<String, TableObject>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RollbackTable {
    pub name: String,
    /// "rows", "create", "drop" or "drop-columns".
    pub action: String,
    pub counts: DiffCounts,
}

#[derive(Clone, Debug, Serialize)]
pub struct RollbackReport {
    pub from: String,
    pub to: String,
    pub statements: u64,
    pub bytes: u64,
    pub tables: Vec<RollbackTable>,
    pub notes: Vec<String>,
}

/// Writes SQL that turns `b` into `a`. With `only`, just those tables (and the indexes,
/// triggers and `sqlite_sequence` rows that belong to them) are rolled back.
pub fn write_rollback_sql<W: Write>(
    a: &RollbackSide<'_>,
    b: &RollbackSide<'_>,
    only: Option<&BTreeSet<String>>,
    out: W,
) -> Result<(RollbackReport, W)> {
    let literals = LiteralWriter::new()?;
    let mut writer = StatementWriter::new(out);
    let mut report = RollbackReport { from: b.view.label.clone(), to: a.view.label.clone(), statements: 0, bytes: 0, tables: Vec::new(), notes: Vec::new() };
    writer.comment(&format!(
        "d1snap rollback SQL: turns {} (root {}) into {} (root {})\nRun it with: wrangler d1 execute DATABASE --file FILE",
        b.view.label, b.view.root, a.view.label, a.view.root
    ))?;
    writer.statement("PRAGMA defer_foreign_keys = on")?;

    let wanted = |name: &str| only.is_none_or(|only| only.contains(name));
    let names: BTreeSet<&String> = a.tables.keys().chain(b.tables.keys()).filter(|n| wanted(n)).collect();
    let differs = |name: &String| a.view.tables.get(name).map(|t| t.id) != b.view.tables.get(name).map(|t| t.id);
    for name in names.iter().filter(|n| is_d1_internal(n) && differs(n)) {
        report.notes.push(format!("table {name} differs but is D1 internal and cannot be written; it was left out"));
    }
    let changed: Vec<&String> = names.into_iter().filter(|name| !is_d1_internal(name) && differs(name)).collect();
    let changed_set: BTreeSet<&str> = changed.iter().map(|s| s.as_str()).collect();

    // Schema objects of B that go away or change, and every trigger on a changed table, are
    // dropped first so that no trigger fires and no index rejects A's rows.
    let schema_a: BTreeMap<(SchemaKind, &str), &SchemaObject> = a.view.content.schema.iter().map(|o| ((o.kind, o.name.as_str()), o)).collect();
    let schema_b: BTreeMap<(SchemaKind, &str), &SchemaObject> = b.view.content.schema.iter().map(|o| ((o.kind, o.name.as_str()), o)).collect();
    let mut recreate: Vec<&SchemaObject> = Vec::new();
    for object in b.view.content.schema.iter().rev() {
        if object.kind == SchemaKind::VirtualTable || !wanted(&object.table) {
            continue;
        }
        let in_a = schema_a.get(&(object.kind, object.name.as_str()));
        let unchanged = in_a.is_some_and(|o| o.sql == object.sql);
        let on_changed_table = object.kind == SchemaKind::Trigger && changed_set.contains(object.table.as_str());
        if !unchanged || on_changed_table {
            let keyword = match object.kind {
                SchemaKind::Index => "INDEX",
                SchemaKind::View => "VIEW",
                SchemaKind::Trigger => "TRIGGER",
                SchemaKind::VirtualTable => unreachable!("skipped above"),
            };
            writer.statement(&format!("DROP {keyword} IF EXISTS {}", quote_ident(&object.name)))?;
        }
    }
    for object in a.view.content.schema.iter().filter(|o| wanted(&o.table)) {
        if object.kind == SchemaKind::VirtualTable {
            if schema_b.get(&(object.kind, object.name.as_str())).is_none_or(|o| o.sql != object.sql) {
                report.notes.push(format!("virtual table {} differs; recreate it by hand after the rollback", object.name));
            }
            continue;
        }
        let in_b = schema_b.get(&(object.kind, object.name.as_str()));
        let unchanged = in_b.is_some_and(|o| o.sql == object.sql);
        let on_changed_table = object.kind == SchemaKind::Trigger && changed_set.contains(object.table.as_str());
        if !unchanged || on_changed_table {
            recreate.push(object);
        }
    }

    for name in &changed {
        let table = match (a.tables.get(*name), b.tables.get(*name)) {
            (Some(ta), Some(tb)) => rollback_table(&literals, &mut writer, a.reader, ta, b.reader, tb)?,
            (Some(ta), None) => {
                writer.statement(&ta.sql)?;
                let empty = empty_like(ta);
                let mut table = rollback_table(&literals, &mut writer, a.reader, ta, b.reader, &empty)?;
                table.action = "create".into();
                table
            }
            (None, Some(tb)) => {
                writer.statement(&format!("DROP TABLE IF EXISTS {}", quote_ident(&tb.name)))?;
                RollbackTable { name: tb.name.clone(), action: "drop".into(), counts: DiffCounts { removed: tb.rows, ..Default::default() } }
            }
            (None, None) => unreachable!("name comes from one of the sides"),
        };
        report.tables.push(table);
    }

    write_sequences(&literals, &mut writer, a, b, &wanted)?;
    for object in recreate {
        writer.statement(&object.sql)?;
    }
    if only.is_none() && a.view.content.user_version != b.view.content.user_version {
        writer.statement(&format!("PRAGMA user_version = {}", a.view.content.user_version))?;
    }
    report.statements = writer.statements;
    report.bytes = writer.bytes;
    let out = writer.finish()?;
    Ok((report, out))
}

fn empty_like(table: &TableObject) -> TableObject {
    TableObject { rows: 0, bytes: 0, chunks: 0, tree: None, ..table.clone() }
}

/// Columns of `b` that `a` lacks, when dropping them with ALTER TABLE gives exactly `a`'s
/// CREATE statement (checked on an empty copy of the schema).
fn droppable_columns(a: &TableObject, b: &TableObject) -> Result<Option<Vec<String>>> {
    let extra: Vec<String> = b.columns.iter().filter(|c| !a.columns.iter().any(|x| x.name == c.name)).map(|c| c.name.clone()).collect();
    let missing = a.columns.iter().any(|c| !b.columns.iter().any(|x| x.name == c.name));
    if extra.is_empty() || missing {
        return Ok(None);
    }
    let conn = Connection::open_in_memory().map_err(|e| Error::sqlite("opening a scratch database", ":memory:", e))?;
    if conn.execute_batch(&b.sql).is_err() {
        return Ok(None);
    }
    for column in extra.iter().rev() {
        if conn.execute_batch(&format!("ALTER TABLE {} DROP COLUMN {}", quote_ident(&b.name), quote_ident(column))).is_err() {
            return Ok(None);
        }
    }
    let sql: String = conn
        .query_row("SELECT sql FROM sqlite_schema WHERE name = ?1", [&b.name], |r| r.get(0))
        .map_err(|e| Error::sqlite("reading a scratch schema", ":memory:", e))?;
    Ok((sql == a.sql).then_some(extra))
}

fn rollback_table<W: Write>(
    literals: &LiteralWriter,
    writer: &mut StatementWriter<W>,
    reader_a: &dyn ObjectReader,
    ta: &TableObject,
    reader_b: &dyn ObjectReader,
    tb: &TableObject,
) -> Result<RollbackTable> {
    let mut action = "rows".to_string();
    if ta.sql != tb.sql {
        let Some(columns) = droppable_columns(ta, tb)? else {
            return Err(Error::Invalid(format!(
                "table {:?} changed its definition in a way d1snap cannot undo row by row on D1 (dropping and recreating it would fire ON DELETE actions in other tables); restore it with `d1snap restore --into` on a local copy, or write the schema change by hand\n  before: {}\n  after:  {}",
                ta.name, ta.sql, tb.sql
            )));
        };
        for column in columns.iter().rev() {
            writer.statement(&format!("ALTER TABLE {} DROP COLUMN {}", quote_ident(&tb.name), quote_ident(column)))?;
        }
        action = "drop-columns".into();
    }

    let table = &ta.name;
    let quoted = quote_ident(table);
    // Rows are addressed by their declared primary key where the table has one, so the SQL
    // finds the right row even where the target's rowids differ from the snapshot's.
    let key_names = key_columns(ta, tb)?;
    let mut deletes: Vec<String> = Vec::new();
    let mut updates: Vec<(Row, Vec<String>, bool, String)> = Vec::new();
    let mut inserts: Vec<Row> = Vec::new();
    let counts = diff_rows(&Side { reader: reader_a, table: ta }, &Side { reader: reader_b, table: tb }, &mut |event| {
        match event {
            RowEvent::Added { b } => deletes.push(format!("DELETE FROM {quoted} WHERE {}", where_clause(literals, b, key_names.as_deref())?)),
            RowEvent::Removed { a } => inserts.push(a.clone()),
            RowEvent::Changed { a, b, columns } => {
                let moved = a.rowid.is_some() && a.rowid != b.rowid;
                updates.push((a.clone(), columns.to_vec(), moved, where_clause(literals, b, key_names.as_deref())?));
            }
        }
        Ok(())
    })?;

    let mut problems = Vec::new();
    for row in inserts.iter().chain(updates.iter().map(|(row, ..)| row)) {
        let values: Vec<ValueRef<'_>> = row.values.iter().map(|(_, v)| v.as_ref()).collect();
        check_row_fits_d1(table, row.rowid, &values, &mut problems);
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(format!("{} row(s) cannot be stored in D1:\n  {}", problems.len(), problems.join("\n  "))));
    }

    for statement in &deletes {
        writer.statement(statement)?;
    }
    for (row, columns, moved, where_b) in &updates {
        let mut sets: Vec<(&str, ValueRef<'_>)> = Vec::with_capacity(columns.len() + 1);
        if *moved {
            sets.push(("rowid", ValueRef::Integer(row.rowid.expect("a moved row has a rowid"))));
        }
        for column in columns {
            sets.push((column.as_str(), row.value(column).expect("changed column exists in A").as_ref()));
        }
        write_update(writer, literals, table, &sets, where_b)?;
    }
    let mut batcher = InsertBatcher::new(table, insert_columns(ta), writer.max_statement_bytes);
    for row in &inserts {
        let mut values: Vec<ValueRef<'_>> = Vec::with_capacity(row.values.len() + 1);
        if let Some(rowid) = row.rowid {
            values.push(ValueRef::Integer(rowid));
        }
        values.extend(row.values.iter().map(|(_, v)| v.as_ref()));
        batcher.push(writer, literals, &values, &row_key(row, key_names.as_deref()))?;
    }
    batcher.flush(writer)?;
    Ok(RollbackTable { name: table.clone(), action, counts })
}

/// Returns the key that addresses a row: its primary key when the table has one and no key value is
/// NULL (SQLite allows several NULLs there), otherwise its rowid.
fn row_key<'r>(row: &'r Row, key_names: Option<&'r [String]>) -> RowKey<'r> {
    let by_key = key_names.map(|names| names.iter().map(|n| (n.as_str(), row.value(n).map(Value::as_ref).unwrap_or(ValueRef::Null))).collect::<Vec<_>>());
    match (by_key, row.rowid) {
        (Some(columns), Some(rowid)) if columns.iter().any(|(_, v)| matches!(v, ValueRef::Null)) => RowKey::Rowid(rowid),
        (Some(columns), _) => RowKey::PrimaryKey(columns),
        (None, Some(rowid)) => RowKey::Rowid(rowid),
        (None, None) => RowKey::PrimaryKey(Vec::new()),
    }
}

fn where_clause(literals: &LiteralWriter, row: &Row, key_names: Option<&[String]>) -> Result<String> {
    row_key(row, key_names).where_clause(literals)
}

fn write_sequences<W: Write>(
    literals: &LiteralWriter,
    writer: &mut StatementWriter<W>,
    a: &RollbackSide<'_>,
    b: &RollbackSide<'_>,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let by_name = |side: &RollbackSide<'_>| -> BTreeMap<Vec<u8>, Value> {
        side.view
            .content
            .sequences
            .iter()
            .filter_map(|s| match &s.name {
                Value::Text(name) => Some((name.clone(), s.seq.clone())),
                _ => None,
            })
            .collect()
    };
    let (sa, sb) = (by_name(a), by_name(b));
    for name in sa.keys().chain(sb.keys()).collect::<BTreeSet<_>>() {
        if sa.get(name) == sb.get(name) || !wanted(&String::from_utf8_lossy(name)) {
            continue;
        }
        let mut name_literal = String::new();
        push_text(&mut name_literal, name);
        writer.statement(&format!("DELETE FROM sqlite_sequence WHERE name = {name_literal}"))?;
        if let Some(seq) = sa.get(name) {
            let mut seq_literal = String::new();
            literals.push(&mut seq_literal, seq.as_ref())?;
            writer.statement(&format!("INSERT INTO sqlite_sequence(name, seq) VALUES ({name_literal}, {seq_literal})"))?;
        }
    }
    Ok(())
}

/// Applies rollback SQL to a scratch copy of B with foreign keys on, as D1 runs it, and
/// checks that every table, schema object and sequence then matches A. D1's internal `_cf_`
/// tables are left out of the comparison because the SQL cannot write them.
pub fn check_rollback(
    scratch: &std::path::Path,
    sql_path: &std::path::Path,
    expected: &DatabaseView,
    only: Option<&BTreeSet<String>>,
    config: &crate::object::config::RepoConfig,
) -> Result<()> {
    let label = scratch.display().to_string();
    let sql = std::fs::read_to_string(sql_path).map_err(|e| Error::io(format!("reading {}", sql_path.display()), e))?;
    {
        let conn = Connection::open(scratch).map_err(|e| Error::sqlite("opening the scratch copy", &label, e))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; BEGIN;").map_err(|e| Error::sqlite("preparing the scratch copy", &label, e))?;
        conn.execute_batch(&sql)
            .and_then(|_| conn.execute_batch("COMMIT"))
            .map_err(|e| Error::Invalid(format!("the rollback SQL fails on a copy of the later database: {e}; it was not written")))?;
    }
    let source = crate::source::OpenedSource::open(&crate::source::SourceSpec::Path(scratch.to_path_buf()))?;
    let scan = crate::scan::scan_hash_only(&source, config, &crate::progress::NoProgress)?;
    let result = DatabaseView::from_scan(label, &scan);
    let diff = crate::diff::diff_views(expected, &result);
    let wanted = |name: &str| only.is_none_or(|only| only.contains(name));
    let mut problems: Vec<String> = diff
        .tables
        .iter()
        .filter(|t| t.change != crate::diff::Change::Unchanged && !is_d1_internal(&t.name) && wanted(&t.name))
        .map(|t| format!("table {:?} {}", t.name, t.change.verb()))
        .collect();
    if only.is_none() {
        problems.extend(diff.schema.iter().map(|o| format!("{} {:?} {}", o.kind, o.name, o.change.verb())));
        problems.extend(diff.header.iter().cloned());
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "the rollback SQL, applied to a copy of the later database, does not give the earlier one ({}); it was not written",
            problems.join("; ")
        )));
    }
    Ok(())
}
