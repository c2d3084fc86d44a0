use anyhow::Result;
use d1snap_engine::prune::{PruneReport, prune};

use super::Context;
use crate::cli::PruneArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &PruneArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let report = prune(&repo, args.dry_run)?;
    super::record_history(&repo, "prune", true, report.duration_ms, None, 0, 0, &report);
    if context.json {
        render::json(&report);
    } else {
        print_report(&report);
    }
    Ok(exit::OK)
}

pub fn print_report(report: &PruneReport) {
    let verb = if report.dry_run { "would delete" } else { "deleted" };
    println!(
        "{} snapshot(s) refer to {} chunks, {} tree nodes and {} table objects",
        report.snapshots, report.chunks.referenced, report.nodes.referenced, report.tables.referenced
    );
    println!(
        "{verb} {} unreferenced chunks, {} tree nodes and {} table objects in {}",
        report.chunks.unreferenced,
        report.nodes.unreferenced,
        report.tables.unreferenced,
        render::duration_ms(report.duration_ms)
    );
    let verb = if report.dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {} by deleting {} pack(s) and rewriting {}",
        render::bytes(report.bytes_freed),
        report.packs_deleted,
        report.packs_rewritten
    );
    if report.packs_reindexed > 0 {
        println!("indexed {} pack(s) that no readable index file named", report.packs_reindexed);
    }
    if !report.packs_unreadable.is_empty() {
        println!(
            "left {} pack(s) whose directory cannot be read: {}",
            report.packs_unreadable.len(),
            report.packs_unreadable.join(", ")
        );
    }
    if report.stale_locks_removed > 0 {
        println!("removed {} stale lock(s)", report.stale_locks_removed);
    }
}
