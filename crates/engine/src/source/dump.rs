//! Loading a SQL dump (`wrangler d1 export`, or `sqlite3 .dump`) into a temporary database,
//! one statement at a time, so a dump of any size loads in constant memory.

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

pub const LOSSY_WARNING: &str = "this source is a SQL dump: `wrangler d1 export` writes numbers through JavaScript, so REAL 1.0 becomes 1, -0.0 becomes 0 and integers beyond 2^53 are rounded; the snapshot holds the dump's values. For an exact snapshot, use the SQLite file (wrangler's local D1 state, or --wrangler DIR).";

/// Whether the first bytes of a file look like SQL text: printable ASCII or UTF-8 that starts
/// with a keyword or a comment.
pub fn looks_like_sql(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let upper = trimmed.to_ascii_uppercase();
    ["PRAGMA", "CREATE", "INSERT", "BEGIN", "--", "/*", "DROP", "DELETE", "ANALYZE", "UPDATE", "COMMIT", "SAVEPOINT"]
        .iter()
        .any(|keyword| upper.starts_with(keyword) || keyword.starts_with(upper.as_str()) && !upper.is_empty())
}

/// Whether `sql` holds at least one complete statement, by SQLite's own tokenizer (which
/// knows about string literals, comments and CREATE TRIGGER bodies).
#[expect(unsafe_code, reason = "sqlite3_complete is not wrapped by rusqlite")]
fn is_complete(sql: &str) -> bool {
    let Ok(c_sql) = CString::new(sql) else { return false };
    // SAFETY: sqlite3_complete reads a NUL-terminated string and keeps no pointer to it.
    unsafe { rusqlite::ffi::sqlite3_complete(c_sql.as_ptr()) != 0 }
}

/// Transaction control in the dump is skipped because the whole load runs in one transaction.
fn is_transaction_control(statement: &str) -> bool {
    let upper = statement.trim().trim_end_matches(';').trim().to_ascii_uppercase();
    upper == "COMMIT" || upper == "END" || upper == "END TRANSACTION" || upper.starts_with("BEGIN") && !upper.contains(' ') || upper == "BEGIN TRANSACTION" || upper == "COMMIT TRANSACTION"
}

/// Loads the dump at `path` into a new database in a temporary directory and returns it
/// inside a read transaction, with a warning for each statement that was skipped.
///
/// A statement that violates a constraint is skipped with a warning rather than failing the
/// load: `wrangler d1 export` writes rounded numbers that a STRICT column can reject (i64::MAX
/// becomes a REAL), and such a dump cannot be imported back into D1 either, so the user
/// needs to see which rows it lost. Any other error (a syntax error, a cut-off statement)
/// fails the load.
pub fn load(path: &Path) -> Result<(Connection, tempfile::TempDir, Vec<String>)> {
    let source_error = |message: String| Error::Source { path: path.to_path_buf(), message };
    let temp = tempfile::Builder::new()
        .prefix("d1snap-dump-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory for the dump", e))?;
    let db_path = temp.path().join("dump.sqlite");
    let conn = Connection::open(&db_path).map_err(|e| Error::sqlite("creating the temporary database", db_path.display().to_string(), e))?;
    conn.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA foreign_keys=OFF; BEGIN;")
        .map_err(|e| Error::sqlite("preparing the temporary database", db_path.display().to_string(), e))?;

    let file = std::fs::File::open(path).map_err(|e| source_error(format!("cannot open: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut statement = Vec::new();
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut statement_line = 1u64;
    let mut statements = 0u64;
    let mut warnings = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| source_error(format!("read failed: {e}")))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        if statement.is_empty() {
            statement_line = line_number;
        }
        statement.extend_from_slice(&line);
        let tail = line.trim_ascii_end();
        if !tail.ends_with(b";") {
            continue;
        }
        let text = std::str::from_utf8(&statement)
            .map_err(|_| source_error(format!("line {statement_line}: the statement is not valid UTF-8")))?;
        if !is_complete(text) {
            continue;
        }
        if !is_transaction_control(text) {
            match conn.execute_batch(text) {
                Ok(()) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    warnings.push(format!("{}: line {statement_line}: statement skipped because SQLite rejected it: {e}", path.display()));
                }
                Err(e) => {
                    return Err(source_error(format!(
                        "line {statement_line}: the dump's SQL failed: {e}; check the statement that starts at that line"
                    )));
                }
            }
            statements += 1;
        }
        statement.clear();
    }
    if !statement.trim_ascii().is_empty() {
        return Err(source_error(format!(
            "ends inside a statement that starts at line {statement_line}; the dump was cut short"
        )));
    }
    if statements == 0 {
        return Err(source_error("holds no SQL statement; give a `wrangler d1 export` file".into()));
    }
    conn.execute_batch("COMMIT; BEGIN;")
        .map_err(|e| Error::sqlite("committing the loaded dump", db_path.display().to_string(), e))?;
    conn.query_row("SELECT count(*) FROM main.sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::sqlite("reading the loaded dump", db_path.display().to_string(), e))?;
    tracing::debug!(statements, path = %path.display(), "loaded SQL dump");
    Ok((conn, temp, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_body_is_incomplete_until_end() {
        assert!(!is_complete("CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES(1);"));
        assert!(is_complete("CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES(1); END;"));
    }

    #[test]
    fn semicolon_inside_string_is_not_an_end() {
        assert!(!is_complete("INSERT INTO a VALUES('x;\n"));
    }

    #[test]
    fn sql_text_is_recognised() {
        assert!(looks_like_sql(b"PRAGMA defer_foreign_keys=TRUE;"));
        assert!(looks_like_sql(b"-- comment\nCREATE"));
        assert!(!looks_like_sql(b"\x7fELF\x02\x01\x01"));
    }

    #[test]
    fn transaction_statements_are_skipped() {
        assert!(is_transaction_control("BEGIN TRANSACTION;\n"));
        assert!(is_transaction_control("COMMIT;"));
        assert!(!is_transaction_control("INSERT INTO t VALUES(1);"));
    }
}
