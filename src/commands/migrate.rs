use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use d1snap_engine::history::{self, HistoryEvent};
use d1snap_engine::migrate::{MigrateOptions, MigrateReport, Migration, Step, parse_checks, pending_migrations, run_migration};
use d1snap_engine::repo::Repository;
use d1snap_engine::source::{find_database, local_database_path};
use d1snap_engine::store::LocalStore;

use super::Context;
use crate::cli::MigrateArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &MigrateArgs) -> Result<u8> {
    let (db, migrations, record, rollback_dir) = match &args.wrangler.wrangler {
        Some(project) => {
            let found = find_database(project, args.wrangler.database.as_deref())?;
            let db = local_database_path(project, &found)?;
            let migrations = if args.paths.is_empty() {
                pending_migrations(&project.join(&found.migrations_dir), &db)?
            } else {
                args.paths.iter().map(|p| Migration::read(p)).collect::<Result<_, _>>()?
            };
            // Outside the migrations directory, where wrangler would apply it as a migration.
            (db, migrations, true, Some(project.join("rollback")))
        }
        None => {
            let Some((db, files)) = args.paths.split_first() else {
                bail!("migrate needs a database and migration files, or --wrangler DIR");
            };
            if files.is_empty() {
                bail!("no migration file given after {}; pass one or more .sql files", db.display());
            }
            let migrations = files.iter().map(|p| Migration::read(p)).collect::<Result<_, _>>()?;
            (db.clone(), migrations, args.record, None)
        }
    };
    let rollback_sql_path = match (&args.rollback_sql, rollback_dir, migrations.last()) {
        (Some(path), _, _) => Some(path.clone()),
        (None, Some(dir), Some(last)) if !args.dry_run => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Some(dir.join(Path::new(&last.name).with_extension("rollback.sql")))
        }
        _ => None,
    };
    let checks = match &args.checks {
        Some(path) => parse_checks(&std::fs::read_to_string(path).with_context(|| format!("reading checks file {}", path.display()))?),
        None => Vec::new(),
    };
    let options = MigrateOptions {
        labels: args.labels.clone(),
        checks,
        record_in_d1_migrations: record,
        rollback_sql_path,
        dry_run: args.dry_run,
    };

    let report = if args.dry_run {
        dry_run(&db, &migrations, &options)?
    } else {
        let repo = context.open_or_create_repo()?;
        let report = run_migration(&repo, &db, &migrations, &options)?;
        let mut event = HistoryEvent::new("migrate", report.ok, report.duration_ms);
        event.snapshot = report.post_snapshot.or(report.pre_snapshot).map(|id| id.to_hex());
        event.source = Some(report.database.clone());
        event.details = serde_json::to_value(&report).unwrap_or_default();
        history::append(&repo, &event)?;
        report
    };

    if context.json {
        render::json(&report);
    } else {
        print_report(&report);
    }
    Ok(match report.failed_step {
        None => exit::OK,
        Some(Step::PreSnapshot) => exit::MIGRATE_PRE_SNAPSHOT,
        Some(Step::Apply) => exit::MIGRATE_APPLY,
        Some(Step::Check) => exit::MIGRATE_CHECK,
        Some(Step::PostSnapshot) => exit::MIGRATE_POST_SNAPSHOT,
        Some(Step::Rollback) => exit::MIGRATE_ROLLBACK,
    })
}

/// Runs the migration on a copy of the database with a throwaway repository.
fn dry_run(db: &Path, migrations: &[Migration], options: &MigrateOptions) -> Result<MigrateReport> {
    let scratch = tempfile::Builder::new().prefix("d1snap-migrate-dry-run-").tempdir().context("creating a scratch directory")?;
    let copy: PathBuf = scratch.path().join("copy.sqlite");
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(|| format!("opening {}", db.display()))?;
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]).with_context(|| format!("copying {} for the dry run", db.display()))?;
    drop(conn);
    let repo = Repository::open_or_create(Arc::new(LocalStore::new(scratch.path().join("repo"))?))?;
    let mut report = run_migration(&repo, &copy, migrations, options)?;
    report.database = db.display().to_string();
    Ok(report)
}

fn print_report(report: &MigrateReport) {
    let mode = if report.dry_run { " (dry run on a copy)" } else { "" };
    println!("migrate {}{mode}: {}", report.database, report.migrations.join(", "));
    if let Some(pre) = report.pre_snapshot {
        println!("  pre-migration snapshot   {}", render::short(&pre.to_hex()));
    }
    if !report.applied.is_empty() {
        println!("  applied                  {}", report.applied.join(", "));
    }
    for check in &report.checks {
        println!("  {} {:<22} {}", if check.ok { "ok  " } else { "FAIL" }, check.name, check.detail);
    }
    for change in &report.changes {
        let rows = |n: Option<u64>| n.map(|n| render::count(n)).unwrap_or_else(|| "-".into());
        let named = if change.named { "" } else { "  (not named by the migration)" };
        println!("  ~ table {:<28} {} → {} rows{named}", change.name, rows(change.rows_before), rows(change.rows_after));
        if let Some(detail) = report.rows.iter().find(|r| r.name == change.name) {
            println!("      {} added, {} removed, {} changed rows; columns added: {}", detail.added, detail.removed, detail.changed, if detail.columns_added.is_empty() { "none".into() } else { detail.columns_added.join(", ") });
        }
    }
    if let Some(post) = report.post_snapshot {
        println!("  post-migration snapshot  {}", render::short(&post.to_hex()));
    }
    if let Some(path) = &report.rollback_sql {
        println!("  rollback SQL             {path}");
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    match (&report.failed_step, &report.error) {
        (None, _) => println!("migration succeeded in {}", render::duration_ms(report.duration_ms)),
        (Some(step), error) => {
            println!("migration FAILED at step: {}", step.name());
            if let Some(error) = error {
                println!("  {error}");
            }
            if let (Some(root), Some(pre)) = (report.root_after_rollback, report.pre_root) {
                let verdict = if root == pre { "equals the pre-migration root: nothing was lost" } else { "DIFFERS from the pre-migration root" };
                let how = if report.rolled_back { "restored from the pre-migration snapshot" } else { "unchanged (the failed step changed nothing)" };
                println!("  database {how}; root {} {verdict}", render::short(&root.to_hex()));
            }
        }
    }
}
