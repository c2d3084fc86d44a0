use anyhow::Result;
use d1snap_engine::export::write_snapshot_sql;
use d1snap_engine::fsutil::write_atomically;
use d1snap_engine::point_restore::{PointRestoreOptions, restore_into};
use d1snap_engine::progress::{NoProgress, Progress};
use d1snap_engine::restore::{RestoreOptions, restore};

use super::Context;
use crate::cli::RestoreArgs;
use crate::exit;
use crate::progress::TerminalProgress;
use crate::render;

pub fn run(context: &Context, args: &RestoreArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let (id, record) = repo.resolve_snapshot(&args.snapshot)?;
    let bar = TerminalProgress::new("restore", context.json);
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let short = render::short(&id.to_hex()).to_string();

    if let Some(path) = &args.sql {
        let report = write_atomically(path, args.force, |out| write_snapshot_sql(&repo, id, &record, &args.tables, out));
        if let Some(bar) = &bar {
            bar.finish();
        }
        let report = report?;
        if context.json {
            render::json(&report);
            return Ok(exit::OK);
        }
        for omission in &report.omitted {
            eprintln!("note: {} left out: {}", omission.object, omission.reason);
        }
        let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
        println!(
            "wrote {} statements ({}) for {} table(s), {} rows of snapshot {short} to {}",
            report.statements,
            render::bytes(report.bytes),
            report.tables.len(),
            render::count(rows),
            path.display()
        );
        println!("load it into an empty D1 database with: wrangler d1 execute DATABASE --file {}", path.display());
        return Ok(exit::OK);
    }

    if let Some(target) = &args.into {
        let options = PointRestoreOptions { tables: args.tables.clone(), target: target.clone(), replace_schema: args.replace_schema, dry_run: args.dry_run };
        let report = restore_into(&repo, id, &record, &options, progress);
        if let Some(bar) = &bar {
            bar.finish();
        }
        let report = report?;
        if context.json {
            render::json(&report);
            return Ok(exit::OK);
        }
        let verb = if report.dry_run { "would restore" } else { "restored" };
        for table in &report.tables {
            println!(
                "{verb} table {:?} ({}): {} rows now → {} rows from snapshot {short}",
                table.name,
                table.action,
                render::count(table.rows_before),
                render::count(table.rows)
            );
        }
        if !report.dry_run {
            println!("{} table(s) replaced in {} in {}; every other table is untouched", report.tables.len(), report.target, render::duration_ms(report.duration_ms));
        }
        return Ok(exit::OK);
    }

    let target = args.to.clone().expect("clap requires one destination");
    let options = RestoreOptions { tables: args.tables.clone(), target, force: args.force };
    let report = restore(&repo, id, &record, &options, progress);
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = report?;
    super::record_history(&repo, "restore", true, report.duration_ms, Some(id.to_hex()), report.bytes, report.rows, &report);
    if context.json {
        render::json(&report);
        return Ok(exit::OK);
    }
    println!(
        "restored {} table(s), {} rows, {} schema objects from snapshot {short} to {} in {}",
        report.tables.len(),
        render::count(report.rows),
        report.schema_objects,
        report.target,
        render::duration_ms(report.duration_ms)
    );
    Ok(exit::OK)
}
