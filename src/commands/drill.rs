use anyhow::{Context as _, Result};
use d1snap_engine::drill::{DrillReport, DrillThresholds, run_drill};
use d1snap_engine::history::{self, HistoryEvent};
use d1snap_engine::id::SnapshotId;

use super::Context;
use crate::cli::DrillArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &DrillArgs) -> Result<u8> {
    let repo = context.open_repo_uncached()?;
    let ids: Vec<SnapshotId> = match args.random {
        Some(n) => {
            let mut all = repo.snapshot_ids()?;
            // A time-seeded shuffle is enough to spread drills over the history.
            let mut state = d1snap_engine::snapshot::now_ms() as u64 | 1;
            for i in (1..all.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                all.swap(i, (state % (i as u64 + 1)) as usize);
            }
            all.truncate(n);
            all
        }
        None => vec![repo.resolve_snapshot(args.snapshot.as_deref().unwrap_or("latest"))?.0],
    };
    let thresholds = DrillThresholds { max_restore: args.max_restore_time, max_verify: args.max_verify_time, max_projected: args.max_projected_time };
    let mut reports = Vec::new();
    for id in ids {
        let record = repo.get_snapshot(&id)?;
        let scratch = tempfile::Builder::new().prefix("d1snap-drill-").tempdir().context("creating a scratch directory for the drill")?;
        let report = run_drill(&repo, id, &record, &thresholds, scratch.path());
        let mut event = HistoryEvent::new("drill", report.ok, report.restore_ms + report.verify_ms);
        event.snapshot = Some(id.to_hex());
        event.source = Some(record.source.location.clone());
        event.bytes = report.bytes;
        event.rows = report.rows;
        event.details = serde_json::to_value(&report).unwrap_or_default();
        history::append(&repo, &event)?;
        reports.push(report);
    }
    if context.json {
        render::json(&serde_json::json!({ "drills": reports }));
    } else {
        for report in &reports {
            print_report(report);
        }
    }
    let code = if reports.iter().any(|r| r.failed) {
        exit::INTEGRITY
    } else if reports.iter().any(|r| r.breached) {
        exit::THRESHOLD
    } else {
        exit::OK
    };
    Ok(code)
}

fn print_report(report: &DrillReport) {
    let verdict = if report.ok { "passed" } else if report.failed { "FAILED" } else { "BREACHED A THRESHOLD" };
    println!("drill of snapshot {}: {verdict}", render::short(&report.snapshot.to_hex()));
    let p = &report.phases;
    println!(
        "  restore      {} ({} rows, {}): read {} ms, decompress {} ms, load {} ms, index {} ms, sync {} ms",
        render::duration_ms(report.restore_ms),
        render::count(report.rows),
        render::bytes(report.bytes),
        p.read_ms,
        p.decompress_ms,
        p.load_ms,
        p.index_ms,
        p.sync_ms
    );
    println!("  verify       {}", render::duration_ms(report.verify_ms));
    println!("  throughput   {}/s", render::bytes(report.restore_bytes_per_second as u64));
    let small = if report.projection_from_small_sample { " (projected from a small database: fixed costs dominate, so this overstates)" } else { "" };
    let projected_limit = match report.thresholds.max_projected {
        Some(limit) => format!(" (limit {})", render::duration_ms(limit.as_millis() as u64)),
        None => String::new(),
    };
    println!(
        "  rollback     measured {} (limit {}), projected for 10 GB {}{projected_limit}{small}",
        render::duration_ms(report.restore_ms),
        render::duration_ms(report.thresholds.max_restore.as_millis() as u64),
        render::duration_ms(report.projected_10gb_ms)
    );
    for check in &report.checks {
        println!("  {} {:<18} {}", if check.ok { "ok  " } else { "FAIL" }, check.name, check.detail);
    }
    for table in report.tables.iter().filter(|t| !t.root_matches || t.rows_expected != t.rows_restored) {
        println!("  FAIL table {:?}: {} of {} rows, root {}", table.name, table.rows_restored, table.rows_expected, if table.root_matches { "matches" } else { "differs" });
    }
    for breach in &report.breaches {
        println!("  BREACH {breach}");
    }
}
