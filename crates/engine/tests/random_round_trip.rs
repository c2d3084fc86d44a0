//! Property test: random schemas filled with random values of every storage class survive a
//! snapshot and restore bit for bit, and the restored database has the snapshot's root, in
//! a local repository and in one on an in-process S3 server.

use std::path::Path;
use std::sync::Arc;

use d1snap_engine::progress::NoProgress;
use d1snap_engine::repo::Repository;
use d1snap_engine::restore::{RestoreOptions, restore};
use d1snap_engine::snapshot::{SnapshotOptions, take_snapshot};
use d1snap_engine::source::{OpenedSource, SourceSpec};
use d1snap_engine::store::LocalStore;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

#[derive(Clone, Debug)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Integer(i) => ValueRef::Integer(*i),
            Cell::Real(r) => ValueRef::Real(*r),
            Cell::Text(t) => ValueRef::Text(t),
            Cell::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

#[derive(Clone, Debug)]
struct TableSpec {
    without_rowid: bool,
    strict: bool,
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Vec<Cell>>,
}

const TYPES: [&str; 9] = ["", "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "INT", "VARCHAR(10)", "DOUBLE"];
const STRICT_TYPES: [&str; 5] = ["INTEGER", "REAL", "TEXT", "BLOB", "ANY"];
const DEFAULTS: [&str; 6] = ["", " DEFAULT 0", " DEFAULT 'x'", " DEFAULT 1.5", " DEFAULT NULL", " DEFAULT x'00'"];

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        Just(Cell::Null),
        any::<i64>().prop_map(Cell::Integer),
        prop_oneof![any::<f64>(), Just(-0.0), Just(1.0), Just(f64::INFINITY), Just(f64::from_bits(1))].prop_map(Cell::Real),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Cell::Text),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Cell::Blob),
    ]
}

fn table() -> impl Strategy<Value = TableSpec> {
    (any::<bool>(), any::<bool>(), 1usize..6).prop_flat_map(|(without_rowid, strict, width)| {
        let types = if strict { STRICT_TYPES.to_vec() } else { TYPES.to_vec() };
        (
            Just(without_rowid),
            Just(strict),
            proptest::collection::vec((proptest::sample::select(types), proptest::sample::select(DEFAULTS.to_vec())), width),
            proptest::collection::vec(proptest::collection::vec(cell(), width), 0..40),
        )
            .prop_map(|(without_rowid, strict, columns, rows)| TableSpec { without_rowid, strict, columns, rows })
    })
}

fn build(path: &Path, tables: &[TableSpec]) {
    let conn = Connection::open(path).unwrap();
    for (t, spec) in tables.iter().enumerate() {
        let columns: Vec<String> = spec.columns.iter().enumerate().map(|(i, (ty, default))| format!("c{i} {ty}{default}")).collect();
        let key = if spec.without_rowid { ", PRIMARY KEY (c0)" } else { "" };
        let mut options = Vec::new();
        if spec.without_rowid {
            options.push("WITHOUT ROWID");
        }
        if spec.strict {
            options.push("STRICT");
        }
        conn.execute_batch(&format!("CREATE TABLE t{t}({}{key}) {}", columns.join(", "), options.join(", "))).unwrap();
        let placeholders: Vec<String> = (1..=spec.columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO t{t} VALUES ({})", placeholders.join(", "));
        for row in &spec.rows {
            // Rows a STRICT type or a primary key rejects are simply not part of this database.
            let _ = conn.execute(&sql, rusqlite::params_from_iter(row.iter()));
        }
        if t == 0 && !spec.without_rowid {
            // Leave rowid gaps behind.
            conn.execute_batch("DELETE FROM t0 WHERE rowid % 3 = 0").unwrap();
        }
    }
}

type Exact = (u8, Vec<u8>);

fn exact(value: ValueRef<'_>) -> Exact {
    match value {
        ValueRef::Null => (0, Vec::new()),
        ValueRef::Integer(i) => (1, i.to_le_bytes().to_vec()),
        ValueRef::Real(r) => (2, r.to_bits().to_le_bytes().to_vec()),
        ValueRef::Text(t) => (3, t.to_vec()),
        ValueRef::Blob(b) => (4, b.to_vec()),
    }
}

fn contents(path: &Path, tables: usize) -> Vec<Vec<Vec<Exact>>> {
    let conn = Connection::open(path).unwrap();
    (0..tables)
        .map(|t| {
            let wr: bool = conn.query_row("SELECT wr FROM pragma_table_list WHERE name = ?1", [format!("t{t}")], |r| r.get(0)).unwrap();
            let sql = if wr { format!("SELECT * FROM t{t}") } else { format!("SELECT _rowid_, * FROM t{t} ORDER BY _rowid_") };
            let mut stmt = conn.prepare(&sql).unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<Vec<Exact>> = stmt
                .query_map([], |row| (0..n).map(|i| row.get_ref(i).map(exact)).collect())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.sort();
            rows
        })
        .collect()
}

fn snapshot(repo: &Repository, path: &Path) -> d1snap_engine::snapshot::SnapshotReport {
    let source = OpenedSource::open(&SourceSpec::Path(path.to_path_buf())).unwrap();
    take_snapshot(repo, &source, &SnapshotOptions::default(), &NoProgress).unwrap()
}

/// Snapshots a database of random tables into `repo`, restores it, and checks the copy.
fn check_round_trip(repo: &Repository, dir: &Path, tables: &[TableSpec]) -> Result<(), TestCaseError> {
    let db = dir.join("source.sqlite");
    build(&db, tables);

    let report = snapshot(repo, &db);
    let (_, record) = repo.resolve_snapshot(&report.id.to_hex()).unwrap();
    let target = dir.join("restored.sqlite");
    let options = RestoreOptions { target: target.clone(), ..Default::default() };
    restore(repo, report.id, &record, &options, &NoProgress).unwrap();

    prop_assert_eq!(contents(&db, tables.len()), contents(&target, tables.len()));
    let again = snapshot(repo, &target);
    prop_assert_eq!(again.root, report.root);
    prop_assert_eq!(again.new_chunks, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_databases_round_trip_exactly(tables in proptest::collection::vec(table(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open_or_create(Arc::new(LocalStore::new(dir.path().join("repo")).unwrap())).unwrap();
        check_round_trip(&repo, dir.path(), &tables)?;
    }
}

#[cfg(feature = "s3")]
proptest! {
    // Fewer cases than on a local directory: each one starts a server and a client.
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn random_databases_round_trip_over_s3(tables in proptest::collection::vec(table(), 1..4)) {
        use d1snap_engine::store::{RepoLocation, S3Options, S3Store};
        use d1snap_s3_test_server::{ACCESS_KEY_ID, BUCKET, S3TestServer, SECRET_ACCESS_KEY};

        let dir = tempfile::tempdir().unwrap();
        let server = S3TestServer::start();
        // SAFETY: set_var races with threads that read the environment at the same time;
        // every test of this binary writes the same values.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        }
        let RepoLocation::S3(location) = RepoLocation::parse(&format!("s3://{BUCKET}/repo"), Some(&server.endpoint()), None).unwrap() else {
            panic!("an s3:// URL parsed as a local path")
        };
        let store = Arc::new(S3Store::open(location, S3Options::default()).unwrap());
        let repo = Repository::open_or_create(store).unwrap().with_index_cache(&dir.path().join("cache"));
        check_round_trip(&repo, dir.path(), &tables)?;
    }
}
