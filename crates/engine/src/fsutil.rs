//! Writing output files atomically: a temporary file beside the target, synced, then renamed,
//! so a failed write never leaves a partial file under the target's name.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `path` from what `write` produces. Refuses to replace an existing file unless
/// `force` is set.
pub fn write_atomically<T>(path: &Path, force: bool, write: impl FnOnce(BufWriter<File>) -> Result<(T, BufWriter<File>)>) -> Result<T> {
    if path.is_dir() {
        return Err(Error::Invalid(format!("{} is a directory; give a file path", path.display())));
    }
    if path.exists() && !force {
        return Err(Error::Invalid(format!("{} already exists; choose another path or pass --force to replace it", path.display())));
    }
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".d1snap-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(format!("creating a temporary file in {}", dir.display()), e))?;
    let file = temp.reopen().map_err(|e| Error::io("opening the temporary file", e))?;
    let (value, writer) = write(BufWriter::with_capacity(1 << 20, file))?;
    let file = writer.into_inner().map_err(|e| Error::io(format!("writing {}", path.display()), e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
    temp.persist(path).map_err(|e| Error::io(format!("renaming the temporary file to {}", path.display()), e.error))?;
    if let Ok(dir_file) = File::open(&dir) {
        let _ = dir_file.sync_all();
    }
    Ok(value)
}
