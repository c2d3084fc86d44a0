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
use std::sync::Arc;

use anyhow::{Context as _, Result};
use d1snap_engine::repo::Repository;
use d1snap_engine::source::SourceSpec;
use d1snap_engine::store::LocalStore;

use crate::cli::WranglerArgs;

pub struct Context {
    repo: Option<PathBuf>,
    pub json: bool,
}

impl Context {
    pub fn new(repo: Option<PathBuf>, json: bool) -> Context {
        Context { repo, json }
    }

    /// Returns the repository given with --repo or D1SNAP_REPO, if any.
    pub fn repo_override(&self) -> Option<&Path> {
        self.repo.as_deref()
    }

    /// The repository path: --repo, then D1SNAP_REPO (both through clap), then the data
    /// directory default.
    pub fn repo_path(&self) -> Result<PathBuf> {
        if let Some(path) = &self.repo {
            return Ok(path.clone());
        }
        default_repo_path().context("cannot find a default repository path; set --repo or D1SNAP_REPO")
    }

    fn store(&self) -> Result<Arc<LocalStore>> {
        let path = self.repo_path()?;
        Ok(Arc::new(LocalStore::new(&path)?))
    }

    /// Opens an existing repository.
    pub fn open_repo(&self) -> Result<Repository> {
        Ok(Repository::open(self.store()?)?)
    }

    /// Opens the repository, creating it if the location holds none.
    pub fn open_or_create_repo(&self) -> Result<Repository> {
        Ok(Repository::open_or_create(self.store()?)?)
    }
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
