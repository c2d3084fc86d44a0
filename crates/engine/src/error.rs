//! Engine errors. Integrity failures have their own variants so callers can tell damage in
//! the repository from bad input or I/O trouble.

use std::path::PathBuf;

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An object's bytes do not hash to its id, do not decompress or do not decode.
    #[error("{kind} {id} is corrupt: {detail}; restore the object from another copy of the repository, since snapshots that use it cannot be restored in full")]
    Corrupt { kind: &'static str, id: String, detail: String },

    /// An object that another object refers to is not in the repository.
    #[error("{kind} {id} is missing from the repository; it is referenced by {referenced_by}")]
    Missing { kind: &'static str, id: String, referenced_by: String },

    #[error("{operation} failed on {path}: {source}")]
    Sqlite {
        operation: String,
        path: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{path}: {message}")]
    Source { path: PathBuf, message: String },

    #[error("{0}")]
    Invalid(String),

    #[error("no snapshot matches {name:?}: {hint}")]
    SnapshotNotFound { name: String, hint: String },

    /// An error while working on one table, with the table's name.
    #[error("table {table:?}: {error}")]
    InTable { table: String, error: Box<Error> },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the error means the repository holds damaged or missing data.
    pub fn is_integrity(&self) -> bool {
        match self {
            Error::Corrupt { .. } | Error::Missing { .. } => true,
            Error::InTable { error, .. } => error.is_integrity(),
            _ => false,
        }
    }

    pub fn sqlite(operation: impl Into<String>, path: impl Into<String>, source: rusqlite::Error) -> Error {
        Error::Sqlite { operation: operation.into(), path: path.into(), source }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }
}
