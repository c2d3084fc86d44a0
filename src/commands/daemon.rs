use anyhow::Result;
use d1snap_ops::runner::Runner;

use super::Context;
use super::config::{open_repository, require, stop_on_signals, write_metrics};
use crate::cli::DaemonArgs;
use crate::exit;

pub fn run(context: &Context, args: &DaemonArgs) -> Result<u8> {
    let config = require(&args.config)?;
    let (store, repository, dir) = open_repository(context, Some(&config))?;
    let runner = Runner::with_store(&config, store, repository.clone(), dir)?;
    let stop = stop_on_signals()?;
    let jobs: Vec<String> = d1snap_ops::runner::scheduled_jobs(&config).iter().map(|(job, schedule)| format!("{job} \"{}\"", schedule.as_str())).collect();
    tracing::info!(config = %config.path.display(), repository = %repository, jobs = jobs.join(", "), "daemon started");
    runner.run_daemon(&stop, &d1snap_engine::snapshot::now_ms, &mut |pass| {
        if let Err(e) = write_metrics(args.metrics_file.as_deref(), &pass.status) {
            tracing::error!(error = format!("{e:#}"), "could not write the metrics file");
        }
    });
    Ok(exit::OK)
}
