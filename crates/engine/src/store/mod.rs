//! The storage trait every repository backend implements. Keys are `/`-separated relative
//! paths such as `chunks/ab/ab12…`; a backend stores opaque bytes under them.

mod local;

pub use local::LocalStore;

use std::fmt::Debug;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key} not found in {store}")]
    NotFound { key: String, store: String },

    #[error("no repository at {location}: {hint}")]
    NoRepository { location: String, hint: String },

    #[error("{operation} {key} in {store} failed: {source}")]
    Io {
        operation: &'static str,
        key: String,
        store: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

/// A place that holds repository objects. Every `put` is atomic: a reader sees either no
/// object or the whole object, never a prefix.
pub trait Store: Send + Sync + Debug {
    /// Human-readable location, safe to print (never contains credentials).
    fn location(&self) -> String;

    /// Whether the repository location exists at all (false for a fresh local path).
    fn is_initialized(&self) -> Result<bool, StoreError>;

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;

    /// Stores `bytes` under `key` atomically, replacing any previous object.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// Lists every key under `prefix` (a folder such as `snapshots/`), in no given order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Makes every completed `put` durable; called before a snapshot record is written so that
    /// a crash never leaves a record pointing at an object that was lost.
    fn flush(&self) -> Result<(), StoreError>;
}
