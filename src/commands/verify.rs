use anyhow::Result;
use d1snap_engine::diff::DatabaseView;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::scan::scan_hash_only;
use d1snap_engine::source::{OpenedSource, SourceSpec};
use d1snap_engine::verify::{Severity, VerifyReport, new_sample_seed, verify_against, verify_snapshots, verify_snapshots_sampled};

use super::{Context, print_warnings};
use crate::cli::VerifyArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &VerifyArgs) -> Result<u8> {
    let repo = context.open_repo_uncached()?;
    let against = match (&args.against, &args.against_wrangler) {
        (Some(path), _) => Some(SourceSpec::Path(path.clone())),
        (None, Some(project)) => Some(SourceSpec::Wrangler { project: project.clone(), database: args.database.clone() }),
        (None, None) => None,
    };
    let report = if let Some(spec) = against {
        let name = args.snapshot.as_deref().unwrap_or("latest");
        let (id, record) = repo.resolve_snapshot(name)?;
        let started = std::time::Instant::now();
        let source = OpenedSource::open(&spec)?;
        print_warnings(&source.warnings);
        let scan = scan_hash_only(&source, repo.config(), &NoProgress)?;
        let live = DatabaseView::from_scan(source.info.location.clone(), &scan);
        let snapshot = DatabaseView::from_snapshot(format!("snapshot {}", render::short(&id.to_hex())), &record);
        let mut report = verify_against(id, &snapshot, &live);
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    } else {
        let ids = if args.all {
            // Oldest first, the order `list` shows; unreadable records sort first.
            repo.snapshots()?.into_iter().map(|(id, _)| id).collect()
        } else {
            vec![repo.resolve_snapshot(args.snapshot.as_deref().unwrap_or("latest"))?.0]
        };
        match args.sample {
            Some(sample) => verify_snapshots_sampled(&repo, &ids, sample, new_sample_seed()),
            None => verify_snapshots(&repo, &ids, args.read_data),
        }
    };
    let snapshot = (report.snapshots.len() == 1).then(|| report.snapshots[0].to_hex());
    super::record_history(&repo, "verify", report.is_clean(), report.duration_ms, snapshot, report.bytes_read, 0, &report);
    print_report(context, &report);
    Ok(if report.is_clean() { exit::OK } else { exit::INTEGRITY })
}

fn print_report(context: &Context, report: &VerifyReport) {
    if context.json {
        render::json(report);
        return;
    }
    for finding in &report.findings {
        let level = match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut place = Vec::new();
        if let Some(snapshot) = &finding.snapshot {
            place.push(format!("snapshot {}", render::short(&snapshot.to_hex())));
        }
        if let Some(table) = &finding.table {
            place.push(format!("table {table:?}"));
        }
        if let Some(object) = &finding.object {
            place.push(object.clone());
        }
        println!("{level}: {}: {}", place.join(", "), finding.message);
    }
    let data = match (report.read_data, report.sample) {
        (true, Some(sample)) => format!(", {} of them read and re-hashed ({}, sample {sample})", report.chunks_read, render::bytes(report.bytes_read)),
        (true, None) => format!(", {} of chunk data read and re-hashed", render::bytes(report.bytes_read)),
        (false, _) => String::new(),
    };
    println!(
        "checked {} snapshot(s): {} tables, {} tree nodes, {} chunks{data} in {}",
        report.snapshots.len(),
        report.tables_checked,
        report.nodes_checked,
        report.chunks_checked,
        render::duration_ms(report.duration_ms)
    );
    let errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    if errors == 0 {
        println!("no problems found");
    } else {
        println!("{errors} problem(s) found");
    }
}

