//! The d1snap engine: content-addressed, verifiable snapshots of SQLite and Cloudflare D1
//! databases.
//!
//! A snapshot splits every table into row-block chunks in a canonical encoding, names each by
//! its BLAKE3 hash, stores it once with zstd, and records a Merkle tree per table and a root
//! per snapshot. Restoring reads back exactly the values that were stored.
//!
//! ```no_run
//! use std::sync::Arc;
//! use d1snap_engine::{progress::NoProgress, repo::Repository, snapshot, source, store::LocalStore};
//!
//! # fn main() -> d1snap_engine::Result<()> {
//! let store = Arc::new(LocalStore::new("/var/backups/d1snap")?);
//! let repo = Repository::open_or_create(store)?;
//! let source = source::OpenedSource::open(&source::SourceSpec::Path("app.sqlite".into()))?;
//! let report = snapshot::take_snapshot(&repo, &source, &Default::default(), &NoProgress)?;
//! println!("snapshot {} root {}", report.id, report.root);
//! # Ok(())
//! # }
//! ```
//!
//! Cargo features:
//! - `s3` (default): repositories in S3, R2 and other S3-compatible buckets
//!   ([`store::S3Store`]), over aws-sdk-s3. Without it the crate builds much faster and only
//!   local repositories are available.
//!
//! The crate never draws on a terminal: long operations report through
//! [`progress::Progress`] and return reports as data.

#![deny(unsafe_code)]

pub mod chunker;
pub mod delta;
pub mod diff;
pub mod drill;
pub mod encode;
pub mod error;
pub mod export;
pub mod forget;
pub mod fsutil;
pub mod history;
pub mod id;
mod index;
pub mod lock;
pub mod migrate;
pub mod object;
pub mod point_restore;
pub mod prefetch;
mod priority;
pub mod progress;
pub mod prune;
pub mod repo;
pub mod restore;
pub mod rollback;
pub mod rowdiff;
pub mod scan;
pub mod schema;
pub mod snapshot;
pub mod sql;
pub mod source;
pub mod store;
pub mod time;
pub mod value;
pub mod verify;

pub use error::{Error, Result};
