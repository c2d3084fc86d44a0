//! One pass of the scheduler (what `d1snap run` does) and the loop of passes that
//! `d1snap daemon` runs. A pass runs every due job, then computes the status and sends
//! alerts. When each job last ran is read from the repository history, so a pass needs no
//! state of its own and may run on any clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use d1snap_engine::repo::Repository;
use d1snap_engine::store::{LocalStore, Store, StoreError};
use serde::Serialize;

use crate::alert::{self, AlertReport, Webhook};
use crate::config::Config;
use crate::error::Result;
use crate::history;
use crate::jobs::{JobContext, JobKind, JobOutcome, run_job};
use crate::schedule::{Schedule, format_time};
use crate::status::{StatusInput, StatusReport, compute};

/// The daemon runs a pass at least this often, so staleness is noticed, alerts are sent
/// and metrics are refreshed even when no job is due.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// How often a sleeping daemon checks for a stop request.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Lists the jobs the configuration schedules, in the order a pass runs them.
pub fn scheduled_jobs(config: &Config) -> Vec<(JobKind, &Schedule)> {
    let jobs = &config.jobs;
    let schedules = [
        (JobKind::Snapshot, jobs.snapshot.as_ref().map(|j| &j.schedule)),
        (JobKind::Verify, jobs.verify.as_ref().map(|j| &j.schedule)),
        (JobKind::Drill, jobs.drill.as_ref().map(|j| &j.schedule)),
        (JobKind::Forget, jobs.forget.as_ref().map(|j| &j.schedule)),
        (JobKind::Prune, jobs.prune.as_ref().map(|j| &j.schedule)),
    ];
    schedules.into_iter().filter_map(|(job, schedule)| Some((job, schedule?))).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct PassReport {
    /// The pass's time, milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// Jobs run, in order.
    pub jobs: Vec<JobOutcome>,
    /// Due jobs left for the next pass because a stop was requested.
    pub skipped: Vec<JobKind>,
    pub status: StatusReport,
    pub alerts: AlertReport,
}

impl PassReport {
    /// When the next job is due, after this pass.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.status.jobs.iter().filter_map(|j| j.next_run_ms).filter(|next| *next > self.now_ms).min()
    }
}

/// Runs passes for one configuration and repository.
pub struct Runner<'a> {
    config: &'a Config,
    /// The repository as the user named it, for reports and alerts.
    repository: String,
    local_dir: Option<PathBuf>,
    store: Arc<dyn Store>,
    webhook: Option<Webhook>,
    host: String,
}

impl<'a> Runner<'a> {
    /// Prepares a runner. Fails when `[alerts]` names a webhook URL that cannot be had, so
    /// a misconfigured alert target is found at start and not at the first failure.
    pub fn new(config: &'a Config, repository_dir: PathBuf) -> Result<Runner<'a>> {
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(&repository_dir).map_err(d1snap_engine::Error::from)?);
        Runner::with_store(config, store, repository_dir.display().to_string(), Some(repository_dir))
    }

    /// Prepares a runner on an opened store (a directory or a bucket). `local_dir` is the
    /// repository directory when there is one, for the repository size.
    pub fn with_store(config: &'a Config, store: Arc<dyn Store>, repository: String, local_dir: Option<PathBuf>) -> Result<Runner<'a>> {
        let webhook = match &config.alerts {
            Some(alerts) => Some(Webhook::new(alerts.webhook_url(&config.path)?, alerts)),
            None => None,
        };
        Ok(Runner { config, repository, local_dir, store, webhook, host: d1snap_engine::lock::host_name() })
    }

    fn open_repo(&self) -> Result<Option<Repository>> {
        match Repository::open(self.store.clone()) {
            Ok(repo) => Ok(Some(repo)),
            Err(d1snap_engine::Error::Store(StoreError::NoRepository { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Returns the scheduled jobs due at `now_ms`.
    pub fn due_jobs(&self, events: &[d1snap_engine::history::HistoryEvent], now_ms: i64) -> Vec<JobKind> {
        let last_runs = history::last_job_runs(events);
        scheduled_jobs(self.config)
            .into_iter()
            .filter(|(job, schedule)| schedule.is_due(last_runs.get(job.name()).map(|e| e.time_ms), now_ms))
            .map(|(job, _)| job)
            .collect()
    }

    /// Runs every job due at `now_ms`, then computes the status and sends alerts. When
    /// `stop` is set, the running job stops at its next item boundary and the remaining
    /// jobs are left for the next pass.
    pub fn run_pass(&self, now_ms: i64, stop: &AtomicBool) -> Result<PassReport> {
        let events = history::read(self.open_repo()?.as_ref())?;
        let due = self.due_jobs(&events, now_ms);
        let context = JobContext { config: self.config, store: self.store.clone(), now_ms, stop };
        let mut jobs = Vec::new();
        let mut skipped = Vec::new();
        for job in due {
            if stop.load(Ordering::Relaxed) {
                skipped.push(job);
                continue;
            }
            tracing::info!(job = job.name(), scheduled_at = format_time(now_ms), "job started");
            let outcome = run_job(job, &context);
            log_outcome(&outcome);
            // The snapshot job may have just created the repository.
            if let Some(repo) = self.open_repo()? {
                history::append(&repo, &history::event(history::JOB, now_ms, outcome.ok, outcome.duration_ms, &job_details(&outcome)));
            }
            jobs.push(outcome);
        }

        let repo = self.open_repo()?;
        let events = history::read(repo.as_ref())?;
        let status = compute(&StatusInput { config: Some(self.config), repo: repo.as_ref(), repository: &self.repository, local_dir: self.local_dir.as_deref(), events: &events, now_ms })?;
        let active = alert::conditions(&status);
        let repeat_after = self.config.alerts.as_ref().map_or(Duration::from_secs(24 * 3600), |a| a.repeat_after.0);
        let plan = alert::plan(&active, &events, now_ms, repeat_after);
        for condition in &plan.firing {
            tracing::warn!(key = condition.key, message = condition.message, "alert condition");
        }
        let alerts = alert::send(repo.as_ref(), self.webhook.as_ref(), plan, &self.host, &self.repository, now_ms);
        // Re-read the alert counts, which this pass's delivery changed.
        let status = if alerts.delivery.is_some() {
            let events = history::read(repo.as_ref())?;
            StatusReport { alerts: compute(&StatusInput { config: Some(self.config), repo: repo.as_ref(), repository: &self.repository, local_dir: self.local_dir.as_deref(), events: &events, now_ms })?.alerts, ..status }
        } else {
            status
        };
        Ok(PassReport { now_ms, jobs, skipped, status, alerts })
    }

    /// Runs passes until `stop` is set: one at start, then whenever a job is due and at
    /// least every `CHECK_EVERY`. `clock` returns the time in milliseconds since the epoch;
    /// `after_pass` receives every pass (the caller writes metrics there). A pass that fails,
    /// such as when the repository directory cannot be read, is logged and retried on the
    /// next wake.
    pub fn run_daemon(&self, stop: &AtomicBool, clock: &dyn Fn() -> i64, after_pass: &mut dyn FnMut(&PassReport)) {
        let mut failures_in_a_row = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let now_ms = clock();
            let mut wake_ms = now_ms + CHECK_EVERY.as_millis() as i64;
            match self.run_pass(now_ms, stop) {
                Ok(pass) => {
                    failures_in_a_row = 0;
                    after_pass(&pass);
                    if let Some(next) = pass.next_due_ms() {
                        wake_ms = wake_ms.min(next);
                    }
                    for job in &pass.skipped {
                        tracing::info!(job = job.name(), "job skipped: stopping");
                    }
                }
                Err(e) => {
                    failures_in_a_row += 1;
                    tracing::error!(error = %e, failures_in_a_row, "scheduler pass failed; retrying at the next check");
                }
            }
            while !stop.load(Ordering::Relaxed) && clock() < wake_ms {
                std::thread::sleep(STOP_POLL);
            }
        }
        tracing::info!("daemon stopped");
    }
}

/// Builds the details of a `job` event: the outcome without the engine reports, which the
/// operation events contain already.
fn job_details(outcome: &JobOutcome) -> serde_json::Value {
    let items: Vec<serde_json::Value> = outcome
        .items
        .iter()
        .map(|item| serde_json::json!({ "source": item.source, "ok": item.ok, "integrity": item.integrity, "message": item.message }))
        .collect();
    serde_json::json!({ "job": outcome.job, "interrupted": outcome.interrupted, "integrity": outcome.integrity, "items": items })
}

fn log_outcome(outcome: &JobOutcome) {
    for item in &outcome.items {
        let source = item.source.as_deref().unwrap_or("repository");
        if item.ok {
            tracing::info!(job = outcome.job.name(), source, result = item.message, "job item done");
        } else {
            tracing::error!(job = outcome.job.name(), source, error = item.message, "job item failed");
        }
    }
    if outcome.interrupted {
        tracing::warn!(job = outcome.job.name(), "job stopped early: a stop was requested");
    }
    tracing::info!(job = outcome.job.name(), ok = outcome.ok, duration_ms = outcome.duration_ms, "job finished");
}
