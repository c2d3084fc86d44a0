use std::path::Path;

use anyhow::Result;
use d1snap_engine::diff::{Change, DatabaseView, DiffReport, diff_views};
use d1snap_engine::progress::NoProgress;
use d1snap_engine::repo::Repository;
use d1snap_engine::scan::scan_hash_only;
use d1snap_engine::source::{OpenedSource, SourceSpec};

use super::{Context, print_warnings};
use crate::cli::DiffArgs;
use crate::exit;
use crate::render;

fn snapshot_view(repo: &Repository, name: &str) -> Result<DatabaseView> {
    let (id, record) = repo.resolve_snapshot(name)?;
    Ok(DatabaseView::from_snapshot(format!("snapshot {}", render::short(&id.to_hex())), &record))
}

fn live_view(repo: &Repository, spec: &SourceSpec) -> Result<DatabaseView> {
    let source = OpenedSource::open(spec)?;
    print_warnings(&source.warnings);
    let scan = scan_hash_only(&source, repo.config(), &NoProgress)?;
    Ok(DatabaseView::from_scan(source.info.location.clone(), &scan))
}

pub fn run(context: &Context, args: &DiffArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let a = snapshot_view(&repo, &args.a)?;
    let b = match (&args.b, &args.wrangler.wrangler) {
        (_, Some(project)) => {
            live_view(&repo, &SourceSpec::Wrangler { project: project.clone(), database: args.wrangler.database.clone() })?
        }
        // A path that exists is a live source; anything else names a snapshot.
        (Some(b), None) if Path::new(b).exists() => live_view(&repo, &SourceSpec::Path(b.into()))?,
        (Some(b), None) => snapshot_view(&repo, b)?,
        (None, None) => anyhow::bail!("diff needs a second side: a snapshot, a database file, or --wrangler DIR"),
    };
    let report = diff_views(&a, &b);
    if context.json {
        render::json(&report);
    } else {
        print_text(&report);
    }
    Ok(exit::OK)
}

fn print_text(report: &DiffReport) {
    println!("a: {} (root {})", report.a, render::short(&report.root_a.to_hex()));
    println!("b: {} (root {})", report.b, render::short(&report.root_b.to_hex()));
    if report.identical {
        println!("identical: the roots are equal");
        return;
    }
    for table in &report.tables {
        let mark = match table.change {
            Change::Added => "+",
            Change::Removed => "-",
            Change::Changed => "~",
            Change::Unchanged => continue,
        };
        println!("{mark} table {:<30} {}", table.name, table.describe_rows());
    }
    for object in &report.schema {
        let mark = match object.change {
            Change::Added => "+",
            Change::Removed => "-",
            _ => "~",
        };
        println!("{mark} {} {}", object.kind, object.name);
    }
    for line in &report.header {
        println!("~ {line}");
    }
    let unchanged = report.tables.iter().filter(|t| t.change == Change::Unchanged).count();
    println!("{unchanged} table(s) unchanged");
}
