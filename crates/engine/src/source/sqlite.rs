//! Opening a SQLite file for reading without modifying it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Opens `path` read-only and starts a read transaction. A read-only connection never
/// checkpoints or deletes a WAL, so wrangler's local D1 files (whose rows often live only in
/// the `-wal`) are read through SQLite and left as they were.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let label = path.display().to_string();
    check_not_truncated(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| Error::sqlite("opening the database", &label, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| Error::sqlite("setting busy_timeout", &label, e))?;
    conn.execute_batch("BEGIN")
        .map_err(|e| Error::sqlite("starting a read transaction", &label, e))?;
    // The first read takes the snapshot of the database and fails on a file that is not a
    // database or is damaged.
    conn.query_row("SELECT count(*) FROM main.sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::Source {
            path: path.to_path_buf(),
            message: format!("cannot be read as a SQLite database ({e}); check that it is a complete, unencrypted SQLite file"),
        })?;
    Ok(conn)
}

/// Size of the database file plus its WAL, the bytes a snapshot reads.
pub fn files_size(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}

/// Rejects a file shorter than its header's page count says, before anything is read, so a
/// truncated copy fails at once instead of midway through a snapshot.
fn check_not_truncated(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).map_err(|e| Error::Source { path: path.to_path_buf(), message: format!("cannot open: {e}") })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file.read_exact(&mut header).is_err() {
        return Err(Error::Source {
            path: path.to_path_buf(),
            message: format!("is truncated: {file_len} bytes, shorter than the 100-byte SQLite header"),
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n => u64::from(n),
    };
    let page_count = u64::from(u32::from_be_bytes([header[28], header[29], header[30], header[31]]));
    // The in-header page count is valid only when the version-valid-for number matches the
    // change counter (SQLite file format, offsets 24 and 92).
    let valid = header[24..28] == header[92..96];
    let wal_len = {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(Path::new(&wal)).map(|m| m.len()).unwrap_or(0)
    };
    if valid && wal_len == 0 && page_count > 0 && file_len < page_count * page_size {
        return Err(Error::Source {
            path: path.to_path_buf(),
            message: format!(
                "is truncated: its header declares {page_count} pages of {page_size} bytes ({} bytes) but the file has {file_len} bytes; use a complete copy",
                page_count * page_size
            ),
        });
    }
    Ok(())
}
