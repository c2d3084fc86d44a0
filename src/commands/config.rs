//! Helpers that `run`, `daemon`, `status` and `report` share: finding the configuration
//! file and the repository, the clock, signals, metrics and the exit code of a status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result};
use d1snap_engine::history::HistoryEvent;
use d1snap_engine::repo::Repository;
use d1snap_engine::store::Store;
use d1snap_ops::config::{Config, FILE_NAME};
use d1snap_ops::status::{StatusInput, StatusReport, compute};

use super::Context;
use crate::cli::ConfigArgs;
use crate::exit;

/// Loads the configuration file named by --config / D1SNAP_CONFIG, or `d1snap.toml` in the
/// working directory when there is one.
pub fn load(args: &ConfigArgs) -> Result<Option<Config>> {
    match Config::find(args.config.as_deref())? {
        Some(path) => Ok(Some(Config::load(&path)?)),
        None => Ok(None),
    }
}

/// Loads the configuration file, which the scheduling commands cannot do without.
pub fn require(args: &ConfigArgs) -> Result<Config> {
    load(args)?.with_context(|| {
        let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".into());
        format!("no configuration file: {FILE_NAME} is not in the working directory ({dir}); pass --config FILE or set D1SNAP_CONFIG (docs/operations.md describes the file)")
    })
}

/// Opens the repository: --repo or D1SNAP_REPO, else the file's `repository`, else the
/// default path. Returns the store, the repository as named, and its directory when local.
pub fn open_repository(context: &Context, config: Option<&Config>) -> Result<(Arc<dyn Store>, String, Option<PathBuf>)> {
    let text = match (context.repo_override(), config.and_then(|c| c.repository.as_ref())) {
        (Some(repo), _) => Some(repo.to_string()),
        (None, Some(repo)) => Some(repo.clone()),
        (None, None) => None,
    };
    let (store, dir) = context.store_at(text.as_deref())?;
    let name = text.unwrap_or_else(|| store.location());
    Ok((store, name, dir))
}

/// Returns the time to run at: the hidden --now option of the tests, else the system clock.
pub fn now_ms(test_clock: Option<i64>) -> i64 {
    test_clock.unwrap_or_else(d1snap_engine::snapshot::now_ms)
}

/// Returns a flag that SIGINT and SIGTERM set, so the running job can stop at a safe point.
/// A second signal ends the process at once, with 128 + the signal number.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // The conditional shutdown is registered first, so it checks the flag before this
        // signal sets it, and only a second signal ends the process.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, stop.clone()).context("installing a signal handler")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing a signal handler")?;
    }
    Ok(stop)
}

/// Writes the metrics of a status when a metrics file was requested.
pub fn write_metrics(path: Option<&Path>, status: &StatusReport) -> Result<()> {
    if let Some(path) = path {
        d1snap_ops::metrics::write(path, &d1snap_ops::metrics::render(status)).with_context(|| format!("writing metrics to {}", path.display()))?;
    }
    Ok(())
}

/// 3 when a check found damaged data, 4 when a threshold is breached, else 0.
pub fn status_exit_code(status: &StatusReport) -> u8 {
    if status.has_integrity_breach() {
        exit::INTEGRITY
    } else if !status.ok {
        exit::THRESHOLD
    } else {
        exit::OK
    }
}

/// An existing repository with its history and status, as `status` and `report` show it.
pub struct Observed {
    pub repo: Repository,
    pub events: Vec<HistoryEvent>,
    pub status: StatusReport,
}

/// Opens the repository (of the configuration file, when there is one) and computes its
/// status at the test clock's time or now.
pub fn observe(context: &Context, args: &ConfigArgs, test_clock: Option<i64>) -> Result<Observed> {
    let config = load(args)?;
    let (store, name, dir) = open_repository(context, config.as_ref())?;
    let repo = Repository::open(store)?;
    let events = d1snap_engine::history::read_all(&repo)?;
    let status = compute(&StatusInput {
        config: config.as_ref(),
        repo: Some(&repo),
        repository: &name,
        local_dir: dir.as_deref(),
        events: &events,
        now_ms: now_ms(test_clock),
    })?;
    Ok(Observed { repo, events, status })
}
