use anyhow::Result;
use d1snap_ops::jobs::JobReport;
use d1snap_ops::runner::{PassReport, Runner};
use d1snap_ops::schedule::format_time;

use super::Context;
use super::config::{now_ms, open_repository, require, status_exit_code, stop_on_signals, write_metrics};
use crate::cli::RunArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &RunArgs) -> Result<u8> {
    let config = require(&args.config)?;
    let (store, repository, dir) = open_repository(context, Some(&config))?;
    let runner = Runner::with_store(&config, store, repository, dir)?;
    let stop = stop_on_signals()?;
    let pass = runner.run_pass(now_ms(args.clock.now), &stop)?;
    write_metrics(args.metrics_file.as_deref(), &pass.status)?;
    if context.json {
        render::json(&pass);
    } else {
        print_pass(&pass);
    }
    Ok(exit_code(&pass))
}

/// 3 when a job or check found damaged data, 1 when a job failed, 4 when a threshold is
/// breached, else 0.
pub fn exit_code(pass: &PassReport) -> u8 {
    if pass.jobs.iter().any(|j| j.integrity) || pass.status.has_integrity_breach() {
        exit::INTEGRITY
    } else if pass.jobs.iter().any(|j| !j.ok) {
        exit::FAILURE
    } else {
        status_exit_code(&pass.status)
    }
}

fn print_pass(pass: &PassReport) {
    let at = format_time(pass.now_ms);
    if pass.jobs.is_empty() && pass.skipped.is_empty() {
        println!("run at {at}: no job due");
    } else {
        let due: Vec<&str> = pass.jobs.iter().map(|j| j.job.name()).chain(pass.skipped.iter().map(|j| j.name())).collect();
        println!("run at {at}: {} due", due.join(", "));
    }
    for job in &pass.jobs {
        let verdict = if job.ok { "ok" } else if job.interrupted { "STOPPED" } else { "FAILED" };
        println!("{} {verdict} in {}", job.job, d1snap_ops::duration::format_ms(job.duration_ms));
        for item in &job.items {
            match &item.report {
                // Forget and prune print what their commands print: every decision with
                // its reasons, and the objects counted and deleted.
                JobReport::Forget(report) => super::forget::print_report(report),
                JobReport::Prune(report) => super::prune::print_report(report),
                _ => {
                    let source = item.source.as_deref().map(|s| format!("{s}: ")).unwrap_or_default();
                    let mark = if item.ok { "" } else { "error: " };
                    println!("  {mark}{source}{}", item.message);
                }
            }
        }
    }
    for job in &pass.skipped {
        println!("{job} skipped: stopping on a signal");
    }
    for job in pass.status.jobs.iter().filter(|j| j.last_ok == Some(false) && !pass.jobs.iter().any(|run| run.job == j.job)) {
        let at = job.last_run_ms.map(format_time).unwrap_or_default();
        println!("{} job: its latest run, at {at}, failed: {}", job.job, job.last_error.as_deref().unwrap_or("see `d1snap status`"));
    }
    super::status::print_breaches(&pass.status);
    print_alerts(pass);
    let mut next: Vec<(i64, &str)> = pass.status.jobs.iter().filter_map(|j| Some((j.next_run_ms?, j.job.name()))).collect();
    next.sort();
    let next: Vec<String> = next.iter().map(|(time, job)| format!("{job} {}", format_time(*time))).collect();
    if !next.is_empty() {
        println!("next: {}", next.join(", "));
    }
}

fn print_alerts(pass: &PassReport) {
    let alerts = &pass.alerts;
    let conditions = alerts.plan.firing.len() + alerts.plan.resolved.len();
    let repeated_note = if alerts.plan.repeated_later > 0 { format!(" ({} already sent, repeated later)", alerts.plan.repeated_later) } else { String::new() };
    match &alerts.delivery {
        None if conditions == 0 => println!("alerts: none to send{repeated_note}"),
        None => println!("alerts: {conditions} to send, but the configuration has no [alerts] target{repeated_note}"),
        Some(delivery) if delivery.delivered => println!(
            "alerts: sent {} firing and {} resolved in one message ({} attempt(s)){repeated_note}",
            alerts.plan.firing.len(),
            alerts.plan.resolved.len(),
            delivery.attempts
        ),
        Some(delivery) => println!(
            "alerts: delivery FAILED after {} attempt(s): {}; the next pass tries again{repeated_note}",
            delivery.attempts,
            delivery.error.as_deref().unwrap_or("unknown error")
        ),
    }
}
