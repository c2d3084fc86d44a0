//! The migration guard: snapshot, apply, check, snapshot again, and on any failure put the
//! database back exactly as it was and prove it by its root.
//!
//! Migrations run on the SQLite file with foreign keys on, as D1 runs them, each in its own
//! transaction. A table the migration text does not name must keep its root: a change there
//! (through a trigger or an ON DELETE CASCADE) fails the migration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::diff::{Change, DatabaseView, TableRowReport, diff_views, table_row_report};
use crate::error::{Error, Result};
use crate::id::{Digest, SnapshotId};
use crate::object::table::TableObject;
use crate::progress::NoProgress;
use crate::repo::Repository;
use crate::restore::{RestoreOptions, restore};
use crate::rollback::{RollbackSide, write_rollback_sql};
use crate::rowdiff::{LiveObjects, Side};
use crate::scan::{ScanParams, scan_database, scan_hash_only};
use crate::snapshot::{SnapshotOptions, take_snapshot};
use crate::source::{OpenedSource, SourceSpec};

/// One migration file.
#[derive(Clone, Debug)]
pub struct Migration {
    pub name: String,
    pub sql: String,
    pub path: Option<PathBuf>,
}

impl Migration {
    pub fn read(path: &Path) -> Result<Migration> {
        let sql = std::fs::read_to_string(path)
            .map_err(|e| Error::Source { path: path.to_path_buf(), message: format!("cannot read the migration: {e}") })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        Ok(Migration { name, sql, path: Some(path.to_path_buf()) })
    }
}

/// A query that must return no rows, or, with `expect`, whose first value must equal it.
#[derive(Clone, Debug, Serialize)]
pub struct UserCheck {
    pub sql: String,
    pub expect: Option<String>,
}

/// Parses a checks file of SQL queries separated by semicolons. A line `-- expect: VALUE`
/// before a query gives the value its first column must have. Otherwise the query must
/// return no rows.
pub fn parse_checks(text: &str) -> Vec<UserCheck> {
    let mut checks = Vec::new();
    let mut expect = None;
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(value) = trimmed.strip_prefix("-- expect:") {
            expect = Some(value.trim().to_string());
            continue;
        }
        if trimmed.starts_with("--") || trimmed.is_empty() && current.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            checks.push(UserCheck { sql: current.trim().trim_end_matches(';').to_string(), expect: expect.take() });
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        checks.push(UserCheck { sql: current.trim().to_string(), expect: expect.take() });
    }
    checks
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    PreSnapshot,
    Apply,
    Check,
    PostSnapshot,
    Rollback,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::PreSnapshot => "pre-migration snapshot",
            Step::Apply => "apply",
            Step::Check => "check",
            Step::PostSnapshot => "post-migration snapshot",
            Step::Rollback => "rollback",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableChange {
    pub name: String,
    pub change: Change,
    pub rows_before: Option<u64>,
    pub rows_after: Option<u64>,
    /// Whether the migration text names the table.
    pub named: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct MigrateReport {
    pub database: String,
    pub dry_run: bool,
    pub migrations: Vec<String>,
    pub applied: Vec<String>,
    pub ok: bool,
    /// The step that failed, when one did.
    pub failed_step: Option<Step>,
    pub error: Option<String>,
    pub pre_snapshot: Option<SnapshotId>,
    pub pre_root: Option<Digest>,
    pub post_snapshot: Option<SnapshotId>,
    pub checks: Vec<CheckResult>,
    /// Tables whose roots changed, with row counts.
    pub changes: Vec<TableChange>,
    /// Row-level detail of changed tables.
    pub rows: Vec<TableRowReport>,
    pub rollback_sql: Option<String>,
    pub notes: Vec<String>,
    /// The database was put back to the pre-migration snapshot.
    pub rolled_back: bool,
    /// The database's root after the rollback, equal to `pre_root` when the rollback holds.
    pub root_after_rollback: Option<Digest>,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MigrateOptions {
    pub labels: Vec<String>,
    pub checks: Vec<UserCheck>,
    /// Record each applied migration in `d1_migrations`, as `wrangler d1 migrations apply` does.
    pub record_in_d1_migrations: bool,
    /// Path of the rollback SQL; `None` puts it beside the last migration file.
    /// Callers working on a wrangler project pass a path outside the migrations directory,
    /// because `wrangler d1 migrations apply` would run any `.sql` file found there.
    pub rollback_sql_path: Option<PathBuf>,
    pub dry_run: bool,
}

/// Names of migrations in `dir` (`*.sql`, in name order) that `d1_migrations` in `db` does
/// not list yet.
pub fn pending_migrations(dir: &Path, db: &Path) -> Result<Vec<Migration>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Source { path: dir.to_path_buf(), message: format!("cannot list the migrations directory: {e}") })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .filter(|p| !p.to_string_lossy().ends_with(".rollback.sql"))
        .collect();
    files.sort();
    let applied = applied_migrations(db)?;
    files.iter().filter(|p| !applied.contains(&p.file_name().unwrap_or_default().to_string_lossy().into_owned())).map(|p| Migration::read(p)).collect()
}

fn applied_migrations(db: &Path) -> Result<BTreeSet<String>> {
    let label = db.display().to_string();
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| Error::sqlite("opening the database", &label, e))?;
    let exists: Option<String> = conn
        .query_row("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'd1_migrations'", [], |r| r.get(0))
        .optional()
        .map_err(|e| Error::sqlite("reading sqlite_schema", &label, e))?;
    if exists.is_none() {
        return Ok(BTreeSet::new());
    }
    let mut stmt = conn.prepare("SELECT name FROM d1_migrations").map_err(|e| Error::sqlite("reading d1_migrations", &label, e))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect()).map_err(|e| Error::sqlite("reading d1_migrations", &label, e))?;
    Ok(names)
}

/// Lower-cased identifiers in SQL text: bare words and "double", `back` or [bracket] quoted
/// names. A table counts as named by a migration when its name is among them.
pub fn identifiers(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '"' => Some('"'),
            '`' => Some('`'),
            '[' => Some(']'),
            '\'' => {
                // Skip string literals, whose words are not identifiers.
                i += 1;
                while i < chars.len() && !(chars[i] == '\'' && chars.get(i + 1) != Some(&'\'')) {
                    i += if chars[i] == '\'' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            _ => None,
        };
        if let Some(close) = close {
            let mut name = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == close {
                    if chars.get(i + 1) == Some(&close) && close != ']' {
                        name.push(close);
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(chars[i]);
                i += 1;
            }
            out.insert(name.to_lowercase());
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.insert(chars[start..i].iter().collect::<String>().to_lowercase());
        } else {
            i += 1;
        }
    }
    out
}

/// Runs the whole guarded migration on the SQLite file `db`.
pub fn run_migration(repo: &Repository, db: &Path, migrations: &[Migration], options: &MigrateOptions) -> Result<MigrateReport> {
    let started = Instant::now();
    let mut report = MigrateReport {
        database: db.display().to_string(),
        dry_run: options.dry_run,
        migrations: migrations.iter().map(|m| m.name.clone()).collect(),
        applied: Vec::new(),
        ok: false,
        failed_step: None,
        error: None,
        pre_snapshot: None,
        pre_root: None,
        post_snapshot: None,
        checks: Vec::new(),
        changes: Vec::new(),
        rows: Vec::new(),
        rollback_sql: None,
        notes: Vec::new(),
        rolled_back: false,
        root_after_rollback: None,
        duration_ms: 0,
    };
    if migrations.is_empty() {
        report.ok = true;
        report.notes.push("no migration to apply".into());
        return Ok(report);
    }
    let names = migrations.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", ");

    // 1. Pre-migration snapshot. Its failure leaves the database untouched.
    let mut labels = vec![format!("pre-migration: {names}")];
    labels.extend(options.labels.iter().cloned());
    let pre = match snapshot_file(repo, db, labels) {
        Ok(pre) => pre,
        Err(e) => return Ok(fail(report, Step::PreSnapshot, e, started)),
    };
    report.pre_snapshot = Some(pre.0);
    report.pre_root = Some(pre.1);

    // 2. Apply each migration in its own transaction.
    if let Err(e) = apply(db, migrations, options.record_in_d1_migrations, &mut report.applied) {
        return Ok(roll_back(repo, db, report, Step::Apply, e, started));
    }

    // 3. Check the result.
    match check(repo, db, pre.0, migrations, options, &mut report) {
        Ok(true) => {}
        Ok(false) => {
            let error = Error::Invalid("the migration did not pass its checks".into());
            return Ok(roll_back(repo, db, report, Step::Check, error, started));
        }
        Err(e) => return Ok(roll_back(repo, db, report, Step::Check, e, started)),
    }

    // 4. Post-migration snapshot and rollback SQL.
    let post = match snapshot_file(repo, db, vec![format!("post-migration: {names}")]) {
        Ok(post) => post,
        Err(e) => return Ok(roll_back(repo, db, report, Step::PostSnapshot, e, started)),
    };
    report.post_snapshot = Some(post.0);
    if !options.dry_run {
        let target = options.rollback_sql_path.clone().or_else(|| {
            migrations.last().and_then(|m| m.path.as_ref()).map(|p| p.with_extension("rollback.sql"))
        });
        if let Some(target) = target {
            match write_rollback_file(repo, pre.0, post.0, &target) {
                Ok(()) => report.rollback_sql = Some(target.display().to_string()),
                Err(e) => report.notes.push(format!("no rollback SQL was written: {e}")),
            }
        }
    }
    report.ok = true;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn fail(mut report: MigrateReport, step: Step, error: Error, started: Instant) -> MigrateReport {
    report.failed_step = Some(step);
    report.error = Some(error.to_string());
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

fn snapshot_file(repo: &Repository, db: &Path, labels: Vec<String>) -> Result<(SnapshotId, Digest)> {
    let source = OpenedSource::open(&SourceSpec::Path(db.to_path_buf()))?;
    let report = take_snapshot(repo, &source, &SnapshotOptions { labels, workers: 0, time_ms: None }, &NoProgress)?;
    Ok((report.id, report.root))
}

fn apply(db: &Path, migrations: &[Migration], record: bool, applied: &mut Vec<String>) -> Result<()> {
    let label = db.display().to_string();
    let conn = Connection::open(db).map_err(|e| Error::sqlite("opening the database", &label, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| Error::sqlite("setting busy_timeout", &label, e))?;
    conn.execute_batch("PRAGMA foreign_keys = ON").map_err(|e| Error::sqlite("turning foreign keys on", &label, e))?;
    for migration in migrations {
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(&migration.sql)?;
            if record {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS d1_migrations(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n)",
                )?;
                conn.execute("INSERT INTO d1_migrations(name) VALUES (?1)", [&migration.name])?;
            }
            conn.execute_batch("COMMIT")
        };
        if let Err(e) = run() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(Error::Invalid(format!("migration {} failed: {e}", migration.name)));
        }
        applied.push(migration.name.clone());
    }
    Ok(())
}

/// Runs every check, filling the report; returns whether all passed.
fn check(repo: &Repository, db: &Path, pre: SnapshotId, migrations: &[Migration], options: &MigrateOptions, report: &mut MigrateReport) -> Result<bool> {
    let label = db.display().to_string();
    {
        let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| Error::sqlite("opening the database", &label, e))?;
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| Error::sqlite("running integrity_check", &label, e))?;
        report.checks.push(CheckResult { name: "integrity_check".into(), ok: integrity == "ok", detail: integrity });
        let violations: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).map_err(|e| Error::sqlite("running foreign_key_check", &label, e))?;
        report.checks.push(CheckResult { name: "foreign_key_check".into(), ok: violations == 0, detail: format!("{violations} violation(s)") });
        for check in &options.checks {
            report.checks.push(run_user_check(&conn, check));
        }
    }

    // Compare every table with the pre-migration snapshot, row by row where roots differ.
    let (_, record) = repo.resolve_snapshot(&pre.to_hex())?;
    let before = DatabaseView::from_snapshot(format!("snapshot {}", &pre.to_hex()[..12]), &record);
    let source = OpenedSource::open(&SourceSpec::Path(db.to_path_buf()))?;
    let live_objects = LiveObjects::new(repo);
    let catalog = source.catalog()?;
    let params = ScanParams { chunker: repo.config().chunker, tree: repo.config().tree, sink: &live_objects, progress: &NoProgress, workers: ScanParams::default_workers(), previous: None };
    let scan = scan_database(&source.conn, &source.info.location, &catalog, &params)?;
    let after = DatabaseView::from_scan(label.clone(), &scan);
    let diff = diff_views(&before, &after);

    let mut named: BTreeSet<String> = migrations.iter().flat_map(|m| identifiers(&m.sql)).collect();
    if options.record_in_d1_migrations {
        named.insert("d1_migrations".into());
    }
    let mut unexpected = Vec::new();
    for table in diff.tables.iter().filter(|t| t.change != Change::Unchanged) {
        let is_named = named.contains(&table.name.to_lowercase()) || table.name == "sqlite_sequence";
        report.changes.push(TableChange { name: table.name.clone(), change: table.change, rows_before: table.rows_a, rows_after: table.rows_b, named: is_named });
        if table.change == Change::Changed {
            let object_a: TableObject = repo.get_table(&before.tables[&table.name].id, "the pre-migration snapshot")?;
            let object_b = scan.tables.iter().find(|(_, t)| t.name == table.name).map(|(_, t)| t.clone()).expect("changed table is in the scan");
            let rows = table_row_report(&Side { reader: repo, table: &object_a }, &Side { reader: &live_objects, table: &object_b }, 20)?;
            report.rows.push(rows);
        }
        if !is_named && !table.name.starts_with("_cf_") {
            unexpected.push(table.name.clone());
        }
    }
    report.checks.push(CheckResult {
        name: "untouched tables".into(),
        ok: unexpected.is_empty(),
        detail: if unexpected.is_empty() {
            "every table the migration does not name kept its root".into()
        } else {
            format!("tables the migration does not name were changed (through a trigger or a cascade): {}", unexpected.join(", "))
        },
    });
    Ok(report.checks.iter().all(|c| c.ok))
}

fn run_user_check(conn: &Connection, check: &UserCheck) -> CheckResult {
    let name = format!("check: {}", check.sql.lines().next().unwrap_or_default());
    let first: rusqlite::Result<Option<rusqlite::types::Value>> = conn.query_row(&check.sql, [], |r| r.get(0)).optional();
    let (ok, detail) = match (first, &check.expect) {
        (Err(e), _) => (false, format!("query failed: {e}")),
        (Ok(None), None) => (true, "no rows".into()),
        (Ok(Some(value)), None) => (false, format!("returned rows (first value {value:?}); expected none")),
        (Ok(value), Some(expect)) => {
            let text = match value {
                None => "no rows".to_string(),
                Some(rusqlite::types::Value::Null) => "NULL".to_string(),
                Some(rusqlite::types::Value::Integer(i)) => i.to_string(),
                Some(rusqlite::types::Value::Real(r)) => r.to_string(),
                Some(rusqlite::types::Value::Text(t)) => t,
                Some(rusqlite::types::Value::Blob(b)) => format!("X'{}'", hex::encode(b)),
            };
            (&text == expect, format!("returned {text}, expected {expect}"))
        }
    };
    CheckResult { name, ok, detail }
}

fn write_rollback_file(repo: &Repository, pre: SnapshotId, post: SnapshotId, target: &Path) -> Result<()> {
    let load = |id: SnapshotId| -> Result<(DatabaseView, std::collections::BTreeMap<String, TableObject>)> {
        let (_, record) = repo.resolve_snapshot(&id.to_hex())?;
        let view = DatabaseView::from_snapshot(format!("snapshot {}", &id.to_hex()[..12]), &record);
        let mut tables = std::collections::BTreeMap::new();
        for entry in &record.content.tables {
            tables.insert(entry.name.clone(), repo.get_table(&entry.id, &format!("snapshot {id}"))?);
        }
        Ok((view, tables))
    };
    let (view_a, tables_a) = load(pre)?;
    let (view_b, tables_b) = load(post)?;
    let a = RollbackSide { view: &view_a, reader: repo, tables: &tables_a };
    let b = RollbackSide { view: &view_b, reader: repo, tables: &tables_b };
    crate::fsutil::write_atomically(target, true, |out| write_rollback_sql(&a, &b, None, out).map(|(_, out)| ((), out)))
}

/// Puts the database back to the pre-migration snapshot and proves it by its root.
fn roll_back(repo: &Repository, db: &Path, mut report: MigrateReport, step: Step, error: Error, started: Instant) -> MigrateReport {
    report.failed_step = Some(step);
    report.error = Some(error.to_string());
    let (Some(pre), Some(pre_root)) = (report.pre_snapshot, report.pre_root) else {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return report;
    };
    let result = (|| -> Result<Digest> {
        let current = current_root(repo, db)?;
        if current == pre_root {
            return Ok(current);
        }
        let (_, record) = repo.resolve_snapshot(&pre.to_hex())?;
        // The restore writes beside the database and renames over it, removing its
        // -wal and -shm, so no reader ever sees a half-restored file.
        restore(repo, pre, &record, &RestoreOptions { tables: Vec::new(), target: db.to_path_buf(), force: true }, &NoProgress)?;
        report.rolled_back = true;
        current_root(repo, db)
    })();
    match result {
        Ok(root) => {
            report.root_after_rollback = Some(root);
            if root != pre_root {
                report.failed_step = Some(Step::Rollback);
                report.error = Some(format!("{}; then the rollback gave root {root}, not the pre-migration root {pre_root}", error));
            }
        }
        Err(e) => {
            report.failed_step = Some(Step::Rollback);
            report.error = Some(format!("{error}; then the rollback failed: {e}; restore snapshot {pre} by hand with `d1snap restore {pre} --to {}` --force", db.display()));
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

fn current_root(repo: &Repository, db: &Path) -> Result<Digest> {
    let source = OpenedSource::open(&SourceSpec::Path(db.to_path_buf()))?;
    Ok(scan_hash_only(&source, repo.config(), &NoProgress)?.content.root())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_cover_quoted_and_bare_names() {
        let ids = identifiers(r#"ALTER TABLE "User" ADD COLUMN x; UPDATE [Order Items] SET a = 'Session'; DELETE FROM `log`; INSERT INTO profile"#);
        for name in ["user", "order items", "log", "profile"] {
            assert!(ids.contains(name), "{name} in {ids:?}");
        }
    }

    #[test]
    fn identifiers_skip_string_literals() {
        let ids = identifiers("UPDATE a SET b = 'Session ''quoted'' text'");
        assert!(!ids.contains("session"));
    }

    #[test]
    fn checks_file_parses_expectations() {
        let checks = parse_checks("-- expect: 3\nSELECT count(*) FROM t;\nSELECT * FROM t WHERE x IS NULL;\n");
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].expect.as_deref(), Some("3"));
        assert_eq!(checks[1].expect, None);
    }
}
