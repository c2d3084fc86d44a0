use anyhow::Result;
use d1snap_ops::duration::format_ms;
use d1snap_ops::schedule::format_time;
use d1snap_ops::status::StatusReport;

use super::Context;
use super::config::{observe, status_exit_code, write_metrics};
use crate::cli::StatusArgs;
use crate::render;

pub fn run(context: &Context, args: &StatusArgs) -> Result<u8> {
    let status = observe(context, &args.config, args.clock.now)?.status;
    write_metrics(args.metrics_file.as_deref(), &status)?;
    if context.json {
        render::json(&status);
    } else {
        print_status(&status);
    }
    Ok(status_exit_code(&status))
}

fn print_status(status: &StatusReport) {
    let size = match (status.repository_bytes, status.repository_files) {
        (Some(bytes), Some(files)) => format!(", {} in {} files", render::bytes(bytes), render::count(files)),
        _ => String::new(),
    };
    println!("repository {} ({} snapshots{size}) at {}", status.repository, status.snapshots, format_time(status.now_ms));
    for source in &status.sources {
        println!();
        println!("source {}{}", source.name, if source.location == source.name { String::new() } else { format!(" ({})", source.location) });
        if let Some(error) = &source.error {
            println!("  error            {error}");
        }
        match &source.last_snapshot {
            Some(last) => {
                println!("  last snapshot    {} ago ({}), {}", format_ms(last.age_ms), format_time(last.time_ms), render::short(&last.id));
                println!(
                    "  size             {} in {} rows and {} tables; {} new, dedup {:.1}x",
                    render::bytes(last.bytes),
                    render::count(last.rows),
                    last.tables,
                    render::bytes(last.new_bytes),
                    last.dedup_ratio
                );
            }
            None => println!("  last snapshot    none"),
        }
        match &source.last_verify {
            Some(v) => {
                let data = if v.read_data { format!(", {} of {} chunks read", v.chunks_read, v.chunks_checked) } else { format!(", {} chunks checked", v.chunks_checked) };
                let verdict = if v.ok { "passed".to_string() } else { format!("FAILED with {} problem(s)", v.errors) };
                println!("  last verify      {verdict} {} ago{data}", format_ms(v.age_ms));
            }
            None => println!("  last verify      never"),
        }
        match &source.last_drill {
            Some(d) => {
                let verdict = if d.ok { "passed" } else if d.failed { "FAILED" } else { "too slow" };
                println!("  last drill       {verdict} {} ago: restore {}, verify {}", format_ms(d.age_ms), format_ms(d.restore_ms), format_ms(d.verify_ms));
            }
            None => println!("  last drill       never"),
        }
        let limit = format_ms(status.thresholds.max_projected_rollback.as_ms());
        match source.projected_rollback_ms {
            Some(ms) => println!("  rollback         {} projected for the latest snapshot (limit {limit})", format_ms(ms)),
            None => println!("  rollback         not projected: no drill yet (limit {limit})"),
        }
    }
    if !status.jobs.is_empty() {
        println!();
        println!("{:<9} {:<16} {:<28} next", "job", "schedule", "last run");
        for job in &status.jobs {
            let last = match (job.last_run_ms, job.last_ok) {
                (Some(time), Some(ok)) => format!("{} {}", format_time(time), if ok { "ok" } else { "FAILED" }),
                _ => "never".to_string(),
            };
            println!("{:<9} {:<16} {:<28} {}", job.job.name(), job.schedule, last, job.next_run_ms.map(format_time).unwrap_or_default());
        }
    }
    println!();
    print_breaches(status);
}

/// Prints the status verdict and one line per breach.
pub fn print_breaches(status: &StatusReport) {
    if status.ok {
        println!("status: ok, every threshold met");
        return;
    }
    println!("status: {} breach(es)", status.breaches.len());
    for breach in &status.breaches {
        println!("  {}: {}", breach.source, breach.message);
    }
}
