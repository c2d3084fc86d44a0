//! One module per command. Each returns the process exit code or an error.

pub mod config;
pub mod daemon;
pub mod diff;
pub mod drill;
pub mod forget;
pub mod list;
pub mod migrate;
pub mod prune;
pub mod report;
pub mod restore;
pub mod run;
pub mod show;
pub mod snapshot;
pub mod status;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result};
use d1snap_engine::repo::Repository;
use d1snap_engine::source::SourceSpec;
use d1snap_engine::store::{LocalStore, RepoLocation, RequestCounts, S3Location, Store};

use crate::cli::{RemoteArgs, WranglerArgs};

/// The store that the command opened. The process serves one command on one repository,
/// and the summaries of every command read its request counts from here.
static OPENED_STORE: OnceLock<Arc<dyn Store>> = OnceLock::new();

/// Requests made by the command so far, when it opened a repository.
pub fn requests() -> Option<RequestCounts> {
    OPENED_STORE.get().map(|store| store.requests())
}

pub struct Context {
    repo: Option<String>,
    remote: RemoteArgs,
    pack_size: usize,
    pub json: bool,
}

impl Context {
    pub fn new(repo: Option<String>, remote: RemoteArgs, pack_size: usize, json: bool) -> Context {
        Context { repo, remote, pack_size, json }
    }

    /// Returns the repository given with --repo or D1SNAP_REPO, if any.
    pub fn repo_override(&self) -> Option<&str> {
        self.repo.as_deref()
    }

    /// Opens the store of a repository named by `text` (a directory or a bucket URL), or of
    /// the default location when `text` is `None`, with this command's remote options.
    /// Returns the store and the repository directory when it is local.
    pub fn store_at(&self, text: Option<&str>) -> Result<(Arc<dyn Store>, Option<PathBuf>)> {
        let location = match text {
            Some(text) => {
                let account_id = std::env::var("CLOUDFLARE_ACCOUNT_ID").ok();
                RepoLocation::parse(text, self.remote.endpoint.as_deref(), account_id.as_deref())?
            }
            None => self.repo_location()?,
        };
        let (store, dir): (Arc<dyn Store>, Option<PathBuf>) = match location {
            RepoLocation::Local(path) => (Arc::new(LocalStore::new(&path)?), Some(path)),
            RepoLocation::S3(location) => (open_s3(location, &self.remote)?, None),
        };
        Ok((OPENED_STORE.get_or_init(|| store).clone(), dir))
    }

    /// Returns the repository location: --repo, then D1SNAP_REPO (both through clap), then the data
    /// directory default.
    pub fn repo_location(&self) -> Result<RepoLocation> {
        let Some(text) = &self.repo else {
            let path = default_repo_path().context("cannot find a default repository path; set --repo or D1SNAP_REPO")?;
            return Ok(RepoLocation::Local(path));
        };
        let account_id = std::env::var("CLOUDFLARE_ACCOUNT_ID").ok();
        Ok(RepoLocation::parse(text, self.remote.endpoint.as_deref(), account_id.as_deref())?)
    }

    fn store(&self) -> Result<Arc<dyn Store>> {
        if let Some(store) = OPENED_STORE.get() {
            return Ok(store.clone());
        }
        let store: Arc<dyn Store> = match self.repo_location()? {
            RepoLocation::Local(path) => Arc::new(LocalStore::new(&path)?),
            RepoLocation::S3(location) => open_s3(location, &self.remote)?,
        };
        Ok(OPENED_STORE.get_or_init(|| store).clone())
    }

    /// Sets the pack size, and adds the cache of index files and snapshot records to a
    /// repository in S3 or R2 unless --no-cache.
    fn with_cache(&self, repo: Repository) -> Repository {
        let repo = repo.with_pack_target(self.pack_size);
        if !repo.store().is_remote() || self.remote.no_cache {
            return repo;
        }
        match self.remote.cache_dir.clone().or_else(default_cache_dir) {
            Some(dir) => repo.with_index_cache(&dir),
            None => {
                tracing::warn!("no cache folder (set --cache-dir, XDG_CACHE_HOME or HOME), so every index file and snapshot record is read from the bucket");
                repo
            }
        }
    }

    /// Opens an existing repository.
    pub fn open_repo(&self) -> Result<Repository> {
        Ok(self.with_cache(Repository::open(self.store()?)?))
    }

    /// Opens an existing repository without the local cache, for commands that check the
    /// repository itself: a cached copy of a record or index file must not hide damage to
    /// the one in the bucket.
    pub fn open_repo_uncached(&self) -> Result<Repository> {
        Ok(Repository::open(self.store()?)?.with_pack_target(self.pack_size))
    }

    /// Opens the repository, creating it if the location has none.
    pub fn open_or_create_repo(&self) -> Result<Repository> {
        Ok(self.with_cache(Repository::open_or_create(self.store()?)?))
    }
}

#[cfg(feature = "s3")]
fn open_s3(location: S3Location, remote: &RemoteArgs) -> Result<Arc<dyn Store>> {
    use std::time::Duration;

    use d1snap_engine::store::{S3Options, S3Store};

    let defaults = S3Options::default();
    let options = S3Options {
        concurrency: usize::from(remote.connections),
        max_attempts: remote.attempts,
        multipart_threshold: remote.multipart_threshold.unwrap_or(defaults.multipart_threshold),
        part_size: remote.part_size.unwrap_or(defaults.part_size),
        part_concurrency: remote.part_connections.unwrap_or(defaults.part_concurrency),
        base_delay: remote.retry_base_ms.map_or(defaults.base_delay, Duration::from_millis),
        attempt_timeout: remote.attempt_timeout_ms.map_or(defaults.attempt_timeout, Duration::from_millis),
        ..defaults
    };
    Ok(Arc::new(S3Store::open(location, options)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3(location: S3Location, _remote: &RemoteArgs) -> Result<Arc<dyn Store>> {
    anyhow::bail!("repository {location} is in S3 or R2, but this d1snap was built without the `s3` feature; rebuild it with default features")
}

fn default_cache_dir() -> Option<PathBuf> {
    let cache_home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| Path::new(&home).join(".cache")))?;
    Some(cache_home.join("d1snap"))
}

fn default_repo_path() -> Option<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| Path::new(&home).join(".local/share")))?;
    Some(data_home.join("d1snap").join("repository"))
}

/// Builds a source from a path or from --wrangler/--database.
pub fn source_spec(path: Option<&Path>, wrangler: &WranglerArgs) -> Result<SourceSpec> {
    match (path, &wrangler.wrangler) {
        (_, Some(project)) => Ok(SourceSpec::Wrangler { project: project.clone(), database: wrangler.database.clone() }),
        (Some(path), None) => Ok(SourceSpec::Path(path.to_path_buf())),
        (None, None) => anyhow::bail!("no source given; pass a SQLite file, a SQL dump, or --wrangler DIR"),
    }
}

/// Appends an operation to the repository's history. A failure to record is reported as a
/// warning and does not fail the command, whose own work is already done.
pub fn record_history<T: serde::Serialize>(repo: &Repository, kind: &str, ok: bool, duration_ms: u64, snapshot: Option<String>, bytes: u64, rows: u64, details: &T) {
    let mut event = d1snap_engine::history::HistoryEvent::new(kind, ok, duration_ms);
    event.snapshot = snapshot;
    event.bytes = bytes;
    event.rows = rows;
    event.details = serde_json::to_value(details).unwrap_or_default();
    if let Err(e) = d1snap_engine::history::append(repo, &event) {
        tracing::warn!(error = %e, kind, "could not record the operation in the repository history");
    }
}

/// Prints the source's warnings on stderr.
pub fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}
