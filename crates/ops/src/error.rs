//! Errors of the operations layer. Engine errors pass through unchanged, so callers can
//! still tell damaged repository data from other failures.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] d1snap_engine::Error),

    /// The configuration file is missing, does not parse or holds invalid values.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}

impl Error {
    pub fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Config { path: path.into(), message: message.into() }
    }

    /// True when the error means the repository holds damaged or missing data.
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Engine(e) if e.is_integrity())
    }
}
