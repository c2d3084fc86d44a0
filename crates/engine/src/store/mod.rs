//! The storage trait every repository backend implements. Keys are `/`-separated relative
//! paths such as `chunks/ab/ab12…`; a backend stores opaque bytes under them.

mod local;
mod location;
mod requests;
#[cfg(feature = "s3")]
pub mod s3;

pub use local::LocalStore;
pub use location::{RepoLocation, S3Location, S3Flavor};
pub use requests::{RequestCounters, RequestCounts, RequestKind};
#[cfg(feature = "s3")]
pub use s3::{S3Options, S3Store};

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

    /// A request to a remote store failed for good: a permanent error, or a transient one
    /// that outlasted the retry budget.
    #[error("{0}")]
    Request(RequestFailure),

    #[error("bucket {bucket:?} not found at {endpoint}; create it (for R2: `wrangler r2 bucket create {bucket}`) or fix the bucket in --repo")]
    BucketNotFound { bucket: String, endpoint: String },

    #[error("{0}")]
    Invalid(String),
}

/// Details of a failed remote request, kept as text so that one failure can be reported both
/// to the call that hit it and to a later `flush`.
#[derive(Clone, Debug)]
pub struct RequestFailure {
    pub operation: &'static str,
    pub key: String,
    pub store: String,
    pub attempts: u32,
    pub cause: String,
    /// Whether the last attempt failed with an error that a retry could have cleared, so the
    /// failure came from the retry budget running out.
    pub transient: bool,
}

impl std::fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} in {} failed", self.operation, self.key, self.store)?;
        if self.transient {
            write!(
                f,
                " after {} attempts, the retry limit: {}; check the network and the endpoint, then run the command again",
                self.attempts, self.cause
            )
        } else {
            write!(f, ": {}", self.cause)
        }
    }
}

/// A place that stores repository objects. Every `put` is atomic: a reader sees either no
/// object or the whole object, never a prefix.
pub trait Store: Send + Sync + Debug {
    /// Human-readable location, safe to print (never contains credentials).
    fn location(&self) -> String;

    /// Returns whether the repository location exists at all (false for a fresh local path).
    fn is_initialized(&self) -> Result<bool, StoreError>;

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;

    /// Reads `length` bytes from `offset` of the object under `key`. Returns fewer when the
    /// object ends sooner, so the caller can report a short object as damage.
    fn get_range(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, StoreError> {
        let bytes = self.get(key)?;
        let start = (offset as usize).min(bytes.len());
        let end = (offset.saturating_add(length) as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    /// Stores `bytes` under `key` atomically, replacing any previous object.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// Lists every key under `prefix` (a folder such as `snapshots/`), in no given order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Makes every completed `put` durable; called before a snapshot record is written so that
    /// a crash never leaves a record pointing at an object that was lost. A store that uploads
    /// in the background waits here for every upload and returns the first that failed.
    fn flush(&self) -> Result<(), StoreError>;

    /// Requests made and bytes moved since the store was opened.
    fn requests(&self) -> RequestCounts {
        RequestCounts::default()
    }

    /// How many objects a reader should announce through [`Store::prefetch`] ahead of the
    /// one it reads; 0 when prefetching gains nothing, as on a local disk.
    fn read_ahead(&self) -> usize {
        0
    }

    /// Hints that `key` will be read soon, so a remote store can start fetching it.
    fn prefetch(&self, _key: &str) {}

    /// Returns whether every request goes over a network, so that a local cache of index
    /// files saves requests.
    fn is_remote(&self) -> bool {
        false
    }
}
