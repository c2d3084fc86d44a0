use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use d1snap_engine::Error as EngineError;
use d1snap_engine::diff::{Change, DatabaseView, DiffReport, TableRowReport, diff_views, table_row_report};
use d1snap_engine::fsutil::write_atomically;
use d1snap_engine::object::table::TableObject;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::repo::Repository;
use d1snap_engine::restore::{RestoreOptions, restore};
use d1snap_engine::rollback::{RollbackReport, RollbackSide, check_rollback, write_rollback_sql};
use d1snap_engine::rowdiff::{LiveObjects, ObjectReader, Side};
use d1snap_engine::scan::{HashOnly, ScanParams, scan_database};
use d1snap_engine::source::{OpenedSource, SourceSpec, find_database, local_database_path};
use serde::Serialize;

use super::{Context, print_warnings};
use crate::cli::DiffArgs;
use crate::exit;
use crate::render;

/// One side of the diff with what row-level work needs.
struct Loaded<'r> {
    view: DatabaseView,
    tables: BTreeMap<String, TableObject>,
    /// Objects of a live scan that the repository lacks.
    live: Option<LiveObjects<'r>>,
    /// The snapshot this side is, or the SQLite file it was read from.
    origin: Origin,
}

enum Origin {
    Snapshot(d1snap_engine::id::SnapshotId, Box<d1snap_engine::object::snapshot::SnapshotRecord>),
    File(Option<PathBuf>),
}

impl Loaded<'_> {
    fn reader<'s>(&'s self, repo: &'s Repository) -> &'s dyn ObjectReader {
        match &self.live {
            Some(live) => live,
            None => repo,
        }
    }
}

fn load_snapshot<'r>(repo: &'r Repository, name: &str, objects: bool) -> Result<Loaded<'r>> {
    let (id, record) = repo.resolve_snapshot(name)?;
    let view = DatabaseView::from_snapshot(format!("snapshot {}", render::short(&id.to_hex())), &record);
    let mut tables = BTreeMap::new();
    if objects {
        for entry in &record.content.tables {
            tables.insert(entry.name.clone(), repo.get_table(&entry.id, &format!("snapshot {id}"))?);
        }
    }
    Ok(Loaded { view, tables, live: None, origin: Origin::Snapshot(id, Box::new(record)) })
}

fn load_live<'r>(repo: &'r Repository, spec: &SourceSpec, objects: bool) -> Result<Loaded<'r>> {
    let source = OpenedSource::open(spec)?;
    print_warnings(&source.warnings);
    let catalog = source.catalog()?;
    let live = objects.then(|| LiveObjects::new(repo));
    let scan = {
        let sink: &dyn d1snap_engine::scan::ObjectSink = match &live {
            Some(live) => live,
            None => &HashOnly,
        };
        let params = ScanParams { chunker: repo.config().chunker, tree: repo.config().tree, sink, progress: &NoProgress, workers: ScanParams::default_workers(), previous: None };
        scan_database(&source.conn, &source.info.location, &catalog, &params)?
    };
    let view = DatabaseView::from_scan(source.info.location.clone(), &scan);
    let tables = scan.tables.into_iter().map(|(_, t)| (t.name.clone(), t)).collect();
    let file = match spec {
        SourceSpec::Path(path) if source.info.kind == "sqlite" => Some(path.clone()),
        SourceSpec::Wrangler { project, database } => {
            let found = find_database(project, database.as_deref())?;
            Some(local_database_path(project, &found)?)
        }
        SourceSpec::Path(_) => None,
    };
    Ok(Loaded { view, tables, live, origin: Origin::File(file) })
}

#[derive(Serialize)]
struct DiffOutput<'a> {
    #[serde(flatten)]
    diff: &'a DiffReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<Vec<TableRowReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql: Option<RollbackReport>,
}

pub fn run(context: &Context, args: &DiffArgs) -> Result<u8> {
    if let Some(path) = args.sql.as_ref().filter(|p| p.exists() && !args.force) {
        bail!("{} already exists; choose another path or pass --force to replace it", path.display());
    }
    let repo = context.open_repo()?;
    let objects = args.rows || args.sql.is_some();
    let a = load_snapshot(&repo, &args.a, objects)?;
    let b = match (&args.b, &args.wrangler.wrangler) {
        (_, Some(project)) => load_live(&repo, &SourceSpec::Wrangler { project: project.clone(), database: args.wrangler.database.clone() }, objects)?,
        // A snapshot name wins; a path is read as a live source only when no snapshot matches.
        (Some(b), None) => match load_snapshot(&repo, b, objects) {
            Ok(loaded) => loaded,
            Err(e) if Path::new(b).exists() && matches!(e.downcast_ref::<EngineError>(), Some(EngineError::SnapshotNotFound { .. })) => {
                load_live(&repo, &SourceSpec::Path(b.into()), objects)?
            }
            // Something that looks like a file name is most likely a mistyped path.
            Err(e) if (b.contains('/') || b.contains('.')) && matches!(e.downcast_ref::<EngineError>(), Some(EngineError::SnapshotNotFound { .. })) => {
                bail!("{b:?} is neither a snapshot nor an existing file: no file exists at that path, and no snapshot has that id prefix or label");
            }
            Err(e) => return Err(e),
        },
        (None, None) => anyhow::bail!("diff needs a second side: a snapshot, a database file, or --wrangler DIR"),
    };

    let mut report = diff_views(&a.view, &b.view);
    if !args.tables.is_empty() {
        for wanted in &args.tables {
            if !report.tables.iter().any(|t| &t.name == wanted) {
                anyhow::bail!("no table {wanted:?} on either side; `d1snap show` lists a snapshot's tables");
            }
        }
        report.tables.retain(|t| args.tables.contains(&t.name));
    }

    let rows = if args.rows {
        let mut reports = Vec::new();
        for table in report.tables.iter().filter(|t| t.change == Change::Changed) {
            let side_a = Side { reader: a.reader(&repo), table: &a.tables[&table.name] };
            let side_b = Side { reader: b.reader(&repo), table: &b.tables[&table.name] };
            reports.push(table_row_report(&side_a, &side_b, args.limit).with_context(|| format!("comparing the rows of table {:?}", table.name))?);
        }
        Some(reports)
    } else {
        None
    };

    let sql = match &args.sql {
        Some(path) => Some(write_sql(&repo, &a, &b, path, args)?),
        None => None,
    };

    if context.json {
        render::json(&DiffOutput { diff: &report, rows, sql });
    } else {
        print_text(&report, rows.as_deref(), sql.as_ref(), args.sql.as_deref());
    }
    Ok(exit::OK)
}

fn write_sql(repo: &Repository, a: &Loaded<'_>, b: &Loaded<'_>, path: &Path, args: &DiffArgs) -> Result<RollbackReport> {
    let side_a = RollbackSide { view: &a.view, reader: a.reader(repo), tables: &a.tables };
    let side_b = RollbackSide { view: &b.view, reader: b.reader(repo), tables: &b.tables };
    let scratch = tempfile::Builder::new().prefix("d1snap-rollback-").tempdir().context("creating a scratch directory")?;
    let draft = scratch.path().join("rollback.sql");
    let file = std::fs::File::create(&draft).with_context(|| format!("creating {}", draft.display()))?;
    let only: Option<std::collections::BTreeSet<String>> = (!args.tables.is_empty()).then(|| args.tables.iter().cloned().collect());
    let (report, _) = write_rollback_sql(&side_a, &side_b, only.as_ref(), std::io::BufWriter::new(file))?;

    if !args.no_check {
        let copy = scratch.path().join("later.sqlite");
        match &b.origin {
            Origin::Snapshot(id, record) => {
                restore(repo, *id, record, &RestoreOptions { tables: Vec::new(), target: copy.clone(), force: false }, &NoProgress)?;
            }
            Origin::File(Some(file)) => copy_database(file, &copy)?,
            Origin::File(None) => anyhow::bail!("cannot check rollback SQL against a SQL dump; pass --no-check to write it unchecked"),
        }
        check_rollback(&copy, &draft, &a.view, only.as_ref(), repo.config())?;
    }
    write_atomically(path, args.force, |mut out| {
        let mut draft_file = std::fs::File::open(&draft).map_err(|e| d1snap_engine::Error::io("reading the rollback draft", e))?;
        std::io::copy(&mut draft_file, &mut out).map_err(|e| d1snap_engine::Error::io("copying the rollback SQL", e))?;
        out.flush().map_err(|e| d1snap_engine::Error::io("writing the rollback SQL", e))?;
        Ok(((), out))
    })?;
    Ok(report)
}

/// Copies a live database (WAL included) through SQLite, without changing it.
fn copy_database(from: &Path, to: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", from.display()))?;
    conn.execute("VACUUM INTO ?1", [to.to_string_lossy()]).with_context(|| format!("copying {} for the rollback check", from.display()))?;
    Ok(())
}

fn print_text(report: &DiffReport, rows: Option<&[TableRowReport]>, sql: Option<&RollbackReport>, sql_path: Option<&Path>) {
    println!("a: {} (root {})", report.a, render::short(&report.root_a.to_hex()));
    println!("b: {} (root {})", report.b, render::short(&report.root_b.to_hex()));
    if report.identical {
        println!("identical: the roots are equal");
    }
    for table in &report.tables {
        let mark = match table.change {
            Change::Added => "+",
            Change::Removed => "-",
            Change::Changed => "~",
            Change::Unchanged => continue,
        };
        println!("{mark} table {:<30} {}", table.name, table.describe_rows());
        if let Some(detail) = rows.and_then(|r| r.iter().find(|t| t.name == table.name)) {
            for column in &detail.columns_added {
                println!("    + column {column}");
            }
            for column in &detail.columns_removed {
                println!("    - column {column}");
            }
            if detail.definition_changed && detail.columns_added.is_empty() && detail.columns_removed.is_empty() {
                println!("    ~ definition (CREATE TABLE statement) changed");
            }
            println!(
                "    rows: {} added, {} removed, {} changed ({} chunk(s) read)",
                detail.added, detail.removed, detail.changed, detail.chunks_read
            );
            for row in &detail.rows {
                let mark = match row.change {
                    Change::Added => "+",
                    Change::Removed => "-",
                    _ => "~",
                };
                let columns = if row.columns.is_empty() { String::new() } else { format!(" [{}]", row.columns.join(", ")) };
                println!("    {mark} {}{columns}", row.key);
            }
            if detail.truncated {
                println!("    … more rows (raise --limit)");
            }
        }
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
    if let (Some(sql), Some(path)) = (sql, sql_path) {
        for note in &sql.notes {
            eprintln!("note: {note}");
        }
        println!("wrote rollback SQL ({} statements, {}) to {}: it turns b into a", sql.statements, render::bytes(sql.bytes), path.display());
    }
}
