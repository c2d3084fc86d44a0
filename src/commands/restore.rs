use anyhow::Result;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::restore::{RestoreOptions, restore};

use super::Context;
use crate::cli::RestoreArgs;
use crate::exit;
use crate::progress::TerminalProgress;
use crate::render;

pub fn run(context: &Context, args: &RestoreArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let (id, record) = repo.resolve_snapshot(&args.snapshot)?;
    let options = RestoreOptions { tables: args.tables.clone(), target: args.to.clone(), force: args.force };
    let bar = TerminalProgress::new("restore", context.json);
    let report = match &bar {
        Some(bar) => restore(&repo, id, &record, &options, bar),
        None => restore(&repo, id, &record, &options, &NoProgress),
    };
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = report?;
    if context.json {
        render::json(&report);
        return Ok(exit::OK);
    }
    println!(
        "restored {} table(s), {} rows, {} schema objects from snapshot {} to {} in {}",
        report.tables.len(),
        render::count(report.rows),
        report.schema_objects,
        render::short(&report.snapshot.to_hex()),
        report.target,
        render::duration_ms(report.duration_ms)
    );
    Ok(exit::OK)
}
