//! Reads a database's catalog: its tables with their columns and keys, the other schema
//! objects, `sqlite_sequence` and the header values that are part of its content.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::object::snapshot::{SchemaKind, SchemaObject, SequenceEntry};
use crate::object::table::Column;
use crate::value::{Value, ValueRef};

/// One ordinary or shadow table as found in the catalog, before its rows are read.
#[derive(Clone, Debug)]
pub struct TableShape {
    pub name: String,
    pub sql: String,
    pub without_rowid: bool,
    pub strict: bool,
    pub shadow: bool,
    pub columns: Vec<Column>,
    pub rowid_alias: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Catalog {
    pub encoding: String,
    pub user_version: i64,
    pub application_id: i64,
    pub tables: Vec<TableShape>,
    pub schema: Vec<SchemaObject>,
    pub sequences: Vec<SequenceEntry>,
}

/// Quotes an identifier for SQL: double quotes, with inner double quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Picks a name that reaches a table's rowid: `rowid`, `_rowid_` or `oid`, whichever no
/// column shadows.
pub fn rowid_name(table: &str, columns: &[Column]) -> Result<&'static str> {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|candidate| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(candidate)))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "table {table:?} has columns named rowid, _rowid_ and oid, so its rowid cannot be read; rename one of them"
            ))
        })
}

/// Tables SQLite maintains itself and that are not restored as data: `sqlite_sequence` is
/// kept separately, and the `sqlite_stat*` tables are rebuilt by ANALYZE.
fn is_internal_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "sqlite_sequence" || lower.starts_with("sqlite_stat")
}

impl Catalog {
    /// Reads the catalog of the `main` schema. `label` names the database in errors.
    pub fn read(conn: &Connection, label: &str) -> Result<Catalog> {
        let sqlite = |op: &str| {
            let op = op.to_string();
            let label = label.to_string();
            move |e| Error::sqlite(op.clone(), label.clone(), e)
        };
        let encoding: String = conn.query_row("PRAGMA encoding", [], |r| r.get(0)).map_err(sqlite("reading PRAGMA encoding"))?;
        let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sqlite("reading PRAGMA user_version"))?;
        let application_id: i64 =
            conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sqlite("reading PRAGMA application_id"))?;

        let mut list = conn.prepare("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main'").map_err(sqlite("reading PRAGMA table_list"))?;
        let listed: Vec<(String, String, bool, bool)> = list
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(sqlite("reading PRAGMA table_list"))?;

        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid")
            .map_err(sqlite("reading sqlite_schema"))?;
        let entries: Vec<(String, String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(sqlite("reading sqlite_schema"))?;

        let mut tables = Vec::new();
        let mut schema = Vec::new();
        for (kind, name, table, sql) in entries {
            // Automatic indexes (UNIQUE and PRIMARY KEY constraints) have no SQL and are
            // rebuilt by their table's CREATE statement.
            let Some(sql) = sql else { continue };
            let object_kind = match kind.as_str() {
                "table" => {
                    if is_internal_table(&name) {
                        continue;
                    }
                    let info = listed.iter().find(|l| l.0 == name);
                    let list_type = info.map(|l| l.1.as_str()).unwrap_or("table");
                    if list_type == "virtual" {
                        SchemaKind::VirtualTable
                    } else {
                        let without_rowid = info.is_some_and(|l| l.2);
                        let strict = info.is_some_and(|l| l.3);
                        tables.push(read_table_shape(conn, label, name, sql, without_rowid, strict, list_type == "shadow")?);
                        continue;
                    }
                }
                "index" => SchemaKind::Index,
                "view" => SchemaKind::View,
                "trigger" => SchemaKind::Trigger,
                other => return Err(Error::Invalid(format!("{label}: unknown sqlite_schema type {other:?} for {name:?}"))),
            };
            schema.push(SchemaObject { kind: object_kind, name, table, sql });
        }

        let sequences = read_sequences(conn, label)?;
        Ok(Catalog { encoding, user_version, application_id, tables, schema, sequences })
    }
}

fn read_sequences(conn: &Connection, label: &str) -> Result<Vec<SequenceEntry>> {
    let exists: Option<String> = conn
        .query_row("SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence'", [], |r| r.get(0))
        .optional()
        .map_err(|e| Error::sqlite("reading sqlite_schema", label, e))?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT name, seq FROM main.sqlite_sequence ORDER BY rowid")
        .map_err(|e| Error::sqlite("reading sqlite_sequence", label, e))?;
    let mut rows = stmt.query([]).map_err(|e| Error::sqlite("reading sqlite_sequence", label, e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| Error::sqlite("reading sqlite_sequence", label, e))? {
        let name = ValueRef::from(row.get_ref(0).expect("column 0")).to_value();
        let seq = ValueRef::from(row.get_ref(1).expect("column 1")).to_value();
        out.push(SequenceEntry { name, seq });
    }
    Ok(out)
}

fn read_table_shape(
    conn: &Connection,
    label: &str,
    name: String,
    sql: String,
    without_rowid: bool,
    strict: bool,
    shadow: bool,
) -> Result<TableShape> {
    let context = format!("reading the columns of table {name:?}");
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid")
        .map_err(|e| Error::sqlite(&context, label, e))?;
    let raw: Vec<(String, String, bool, Option<String>, u32, u8)> = stmt
        .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sqlite(&context, label, e))?;

    let mut columns = Vec::with_capacity(raw.len());
    for (col_name, decl_type, not_null, default_sql, pk, hidden) in raw {
        let trailing_default = match &default_sql {
            Some(expr) if hidden == 0 => constant_default(&decl_type, expr),
            _ => Value::Null,
        };
        columns.push(Column { name: col_name, decl_type, hidden, not_null, default_sql, pk, trailing_default });
    }

    let rowid_alias = if without_rowid { None } else { find_rowid_alias(conn, label, &name, &columns)? };
    Ok(TableShape { name, sql, without_rowid, strict, shadow, columns, rowid_alias })
}

/// Finds the INTEGER PRIMARY KEY column of a rowid table. A single-column primary key of
/// declared type INTEGER aliases the rowid unless SQLite built an index for it (the
/// `INTEGER PRIMARY KEY DESC` quirk), which `PRAGMA index_list` shows with origin 'pk'.
fn find_rowid_alias(conn: &Connection, label: &str, table: &str, columns: &[Column]) -> Result<Option<u32>> {
    let pk: Vec<usize> = columns.iter().enumerate().filter(|(_, c)| c.pk > 0).map(|(i, _)| i).collect();
    if pk.len() != 1 || !columns[pk[0]].decl_type.eq_ignore_ascii_case("INTEGER") {
        return Ok(None);
    }
    let has_pk_index: bool = conn
        .query_row("SELECT count(*) > 0 FROM pragma_index_list(?1, 'main') WHERE origin = 'pk'", [table], |r| r.get(0))
        .map_err(|e| Error::sqlite(format!("reading the indexes of table {table:?}"), label, e))?;
    Ok(if has_pk_index { None } else { Some(pk[0] as u32) })
}

/// Evaluates a column default when it is a literal (number, string, blob, NULL, TRUE or
/// FALSE), with the column's affinity applied the way SQLite applies it to rows that predate
/// an `ALTER TABLE ADD COLUMN`. Anything else (CURRENT_TIMESTAMP, expressions with functions)
/// gives NULL, which only means such trailing values are stored rather than left out.
pub fn constant_default(decl_type: &str, expr: &str) -> Value {
    if !is_literal(expr) {
        return Value::Null;
    }
    let evaluate = || -> rusqlite::Result<Value> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(&format!("CREATE TABLE t(c {decl_type} DEFAULT {expr}); INSERT INTO t DEFAULT VALUES;"))?;
        conn.query_row("SELECT c FROM t", [], |r| Ok(ValueRef::from(r.get_ref(0)?).to_value()))
    };
    evaluate().unwrap_or(Value::Null)
}

fn is_literal(expr: &str) -> bool {
    let mut text = expr.trim();
    while text.starts_with('(') && text.ends_with(')') {
        text = text[1..text.len() - 1].trim();
    }
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "null" | "true" | "false") {
        return true;
    }
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        // A single string literal: every inner quote must be doubled.
        return text[1..text.len() - 1].replace("''", "").find('\'').is_none();
    }
    if lower.len() >= 3 && lower.starts_with("x'") && lower.ends_with('\'') {
        return lower[2..lower.len() - 1].chars().all(|c| c.is_ascii_hexdigit());
    }
    let number = text.strip_prefix(['-', '+']).unwrap_or(text);
    !number.is_empty()
        && number.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
        && number.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_defaults_are_recognised() {
        for expr in ["0", "-1.5", "'pending'", "'it''s'", "NULL", "x'00ff'", "(5)", "1e21", "0x10"] {
            assert!(is_literal(expr), "{expr}");
        }
    }

    #[test]
    fn non_constant_defaults_are_not_literals() {
        for expr in ["CURRENT_TIMESTAMP", "random()", "'a' || 'b'", "lower('A')"] {
            assert!(!is_literal(expr), "{expr}");
        }
    }

    #[test]
    fn default_takes_column_affinity() {
        assert_eq!(constant_default("REAL", "5"), Value::Real(5.0));
        assert_eq!(constant_default("", "5"), Value::Integer(5));
        assert_eq!(constant_default("TEXT", "5"), Value::Text(b"5".to_vec()));
    }

    #[test]
    fn rowid_alias_found_for_integer_primary_key() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a(id INTEGER PRIMARY KEY, x); CREATE TABLE b(id INTEGER PRIMARY KEY DESC, x); CREATE TABLE c(id INT PRIMARY KEY, x);").unwrap();
        let catalog = Catalog::read(&conn, "test").unwrap();
        let alias: Vec<Option<u32>> = catalog.tables.iter().map(|t| t.rowid_alias).collect();
        assert_eq!(alias, vec![Some(0), None, None]);
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
