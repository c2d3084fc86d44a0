use anyhow::Result;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::snapshot::{SnapshotOptions, take_snapshot, validate_label};
use d1snap_engine::source::OpenedSource;

use super::{Context, print_warnings, source_spec};
use crate::cli::SnapshotArgs;
use crate::exit;
use crate::progress::TerminalProgress;
use crate::render;

pub fn run(context: &Context, args: &SnapshotArgs) -> Result<u8> {
    for label in &args.labels {
        validate_label(label)?;
    }
    let spec = source_spec(args.source.as_deref(), &args.wrangler)?;
    // The source is opened before the repository so that bad input never creates one.
    let source = OpenedSource::open(&spec)?;
    print_warnings(&source.warnings);
    let repo = context.open_or_create_repo()?;
    let options = SnapshotOptions { labels: args.labels.clone(), workers: 0, time_ms: None };
    let bar = TerminalProgress::new("snapshot", context.json);
    let report = match &bar {
        Some(bar) => take_snapshot(&repo, &source, &options, bar),
        None => take_snapshot(&repo, &source, &options, &NoProgress),
    };
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = report?;
    super::record_history(&repo, "snapshot", true, report.duration_ms, Some(report.id.to_hex()), report.bytes_read, report.rows, &report);
    if context.json {
        render::json(&report);
        return Ok(exit::OK);
    }
    println!("snapshot {} saved to {}", render::short(&report.id.to_hex()), repo.location());
    println!("  id           {}", report.id);
    println!("  root         {}", report.root);
    let kind = if report.lossy_source { " (lossy SQL dump)" } else { "" };
    println!("  source       {}{kind}", report.source);
    if !report.labels.is_empty() {
        println!("  labels       {}", report.labels.join(", "));
    }
    println!("  tables       {}", report.tables);
    println!("  rows         {}", render::count(report.rows));
    println!("  bytes read   {} (source files {})", render::bytes(report.bytes_read), render::bytes(report.source_file_bytes));
    println!("  chunks       {} new of {}", render::count(report.new_chunks), render::count(report.chunks));
    println!("  new bytes    {}", render::bytes(report.new_bytes));
    println!("  dedup ratio  {:.1}x", report.dedup_ratio);
    println!("  duration     {}", render::duration_ms(report.duration_ms));
    if let Some(projected) = report.projected_restore_ms {
        println!("  restore time {} projected from the latest drill", render::duration_ms(projected));
    }
    Ok(exit::OK)
}
