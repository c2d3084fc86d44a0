//! Sources a snapshot reads from: a SQLite file, a wrangler project's local D1 database, or
//! a `wrangler d1 export` SQL dump. Each opens as a SQLite connection inside one read
//! transaction, so everything read belongs to one consistent state of the database.

mod dump;
mod sqlite;
mod wrangler;

pub use wrangler::{WranglerDatabase, durable_object_file_name, find_database, local_database_path};

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::object::snapshot::SourceInfo;
use crate::schema::Catalog;

/// A source as the user named it.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// A path that is either a SQLite file or a SQL dump, distinguished by its first bytes.
    Path(PathBuf),
    /// A wrangler project directory and a database binding or name (optional when the
    /// project has exactly one D1 database).
    Wrangler { project: PathBuf, database: Option<String> },
}

/// An open source, holding its read transaction until dropped.
pub struct OpenedSource {
    pub conn: Connection,
    pub info: SourceInfo,
    /// Warnings for the user, for example that a dump is lossy.
    pub warnings: Vec<String>,
    /// Size in bytes of the files read (database and WAL, or the dump).
    pub file_bytes: u64,
    /// Keeps the temporary database of a loaded dump alive.
    _temp: Option<tempfile::TempDir>,
}

pub(crate) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

impl SourceSpec {
    /// The location that snapshots of this source record, found without opening the
    /// database (a wrangler project's config is read to name the database).
    pub fn location(&self) -> Result<String> {
        match self {
            SourceSpec::Path(path) => Ok(display_path(path)),
            SourceSpec::Wrangler { project, database } => Ok(wrangler_location(project, &wrangler::find_database(project, database.as_deref())?)),
        }
    }
}

impl OpenedSource {
    pub fn open(spec: &SourceSpec) -> Result<OpenedSource> {
        match spec {
            SourceSpec::Path(path) => {
                if is_sqlite_file(path)? {
                    let conn = sqlite::open_read_only(path)?;
                    let info = SourceInfo { kind: "sqlite".into(), location: display_path(path), lossy: false };
                    Ok(OpenedSource { file_bytes: sqlite::files_size(path), conn, info, warnings: Vec::new(), _temp: None })
                } else {
                    let (conn, temp, skipped) = dump::load(path)?;
                    let info = SourceInfo { kind: "dump".into(), location: display_path(path), lossy: true };
                    let mut warnings = vec![dump::LOSSY_WARNING.to_string()];
                    warnings.extend(skipped);
                    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    Ok(OpenedSource { conn, info, warnings, file_bytes, _temp: Some(temp) })
                }
            }
            SourceSpec::Wrangler { project, database } => {
                let found = wrangler::find_database(project, database.as_deref())?;
                let path = wrangler::local_database_path(project, &found)?;
                let conn = sqlite::open_read_only(&path)?;
                let info = SourceInfo { kind: "wrangler".into(), location: wrangler_location(project, &found), lossy: false };
                Ok(OpenedSource { file_bytes: sqlite::files_size(&path), conn, info, warnings: Vec::new(), _temp: None })
            }
        }
    }

    /// Reads the catalog inside the source's read transaction.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::read(&self.conn, &self.info.location)
    }
}

fn wrangler_location(project: &Path, database: &WranglerDatabase) -> String {
    format!("{} (database {}, binding {})", display_path(project), database.name, database.binding)
}

/// Absolute form of a path for records and messages, falling back to the path as given.
fn display_path(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// Checks that a path is a readable non-empty file and detects whether it is a SQLite
/// database or a dump.
fn is_sqlite_file(path: &Path) -> Result<bool> {
    let source_error = |message: String| Error::Source { path: path.to_path_buf(), message };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(source_error("not found; give the path of a SQLite file or a SQL dump, or --wrangler DIR for a wrangler project".into()));
        }
        Err(e) => return Err(source_error(format!("cannot read: {e}"))),
    };
    if meta.is_dir() {
        return Err(source_error(
            "is a directory; for a wrangler project use --wrangler DIR [--database NAME], otherwise give a SQLite file or a SQL dump".into(),
        ));
    }
    if meta.len() == 0 {
        return Err(source_error("is an empty file, not a SQLite database or SQL dump; check the path".into()));
    }
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| source_error(format!("cannot open: {e}")))?;
    let read = file.read(&mut head).map_err(|e| source_error(format!("cannot read: {e}")))?;
    if read == 16 && &head == SQLITE_HEADER {
        return Ok(true);
    }
    if dump::looks_like_sql(&head[..read]) {
        return Ok(false);
    }
    Err(source_error(
        "is neither a SQLite database (no \"SQLite format 3\" header) nor a SQL dump; give a SQLite file, a `wrangler d1 export` .sql file, or --wrangler DIR".into(),
    ))
}
