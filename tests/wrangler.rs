//! Loading d1snap's SQL into a fresh local D1 database with the real wrangler, then
//! snapshotting what D1 stored: every table must come back with the original root.
//!
//! These tests need the `wrangler` npm package, which `.ci/run` installs into
//! `.ci/tools/node_modules`; set D1SNAP_WRANGLER to use another copy. Wrangler runs with
//! `--local` only, metrics off, and HOME inside the test directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Workspace, open};

fn wrangler() -> PathBuf {
    if let Some(path) = std::env::var_os("D1SNAP_WRANGLER") {
        return PathBuf::from(path);
    }
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/tools/node_modules/.bin/wrangler");
    assert!(bundled.exists(), "wrangler is not installed: run `npm install --prefix .ci/tools` (or `bash .ci/run`), or set D1SNAP_WRANGLER");
    bundled
}

/// A fresh wrangler project with one D1 database, `loaddb`.
fn fresh_project(ws: &Workspace, name: &str) -> PathBuf {
    let dir = ws.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("wrangler.toml"),
        "name = \"d1snap-load-test\"\ncompatibility_date = \"2025-01-01\"\n\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"loaddb\"\ndatabase_id = \"00000000-0000-4000-8000-0000000000aa\"\n",
    )
    .unwrap();
    dir
}

fn execute_local(project: &Path, sql: &Path) {
    let output = Command::new(wrangler())
        .args(["d1", "execute", "loaddb", "--local", "--file"])
        .arg(sql)
        .current_dir(project)
        .env("HOME", project)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "1")
        .env("NO_UPDATE_NOTIFIER", "1")
        .output()
        .expect("run wrangler");
    assert!(
        output.status.success(),
        "wrangler d1 execute failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Exports `snapshot` as SQL, loads it into a fresh local D1, and returns the diff between
/// the snapshot and what D1 stored.
fn load_through_d1(ws: &Workspace, snapshot: &str, name: &str) -> serde_json::Value {
    let sql = ws.path(&format!("{name}.sql"));
    ws.ok(&["restore", snapshot, "--sql", sql.to_str().unwrap()]);
    let project = fresh_project(ws, name);
    execute_local(&project, &sql);
    ws.json(&["diff", snapshot, "--wrangler", project.to_str().unwrap()])
}

/// Tables whose roots differ, other than D1's own `_cf_` tables.
fn differing_tables(diff: &serde_json::Value) -> Vec<String> {
    diff["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["change"] != "unchanged")
        .map(|t| t["name"].as_str().unwrap().to_string())
        .filter(|name| !name.starts_with("_cf_"))
        .collect()
}

#[test]
#[ignore = "needs the real wrangler; `.ci/run` installs it and runs the ignored tests"]
fn wrangler_sample_round_trips_through_d1() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    let snapshot = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap()]);
    let diff = load_through_d1(&ws, snapshot["id"].as_str().unwrap(), "sample");
    assert_eq!(differing_tables(&diff), Vec::<String>::new(), "{diff}");
    assert_eq!(diff["schema"], serde_json::json!([]), "{diff}");
    assert_eq!(diff["header"], serde_json::json!([]), "{diff}");
}

#[test]
#[ignore = "needs the real wrangler; `.ci/run` installs it and runs the ignored tests"]
fn exactness_cases_round_trip_through_d1() {
    let ws = Workspace::new();
    let db = ws.path("cases.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        r#"CREATE TABLE reals(id INTEGER PRIMARY KEY, typed REAL, untyped);
           CREATE TABLE strict_any(id INTEGER PRIMARY KEY, a ANY) STRICT;
           CREATE TABLE ints(id INTEGER PRIMARY KEY, i INTEGER, u);
           CREATE TABLE texts(id INTEGER PRIMARY KEY, t TEXT, b BLOB);
           CREATE TABLE gaps(a TEXT);
           CREATE TABLE composite(k1 TEXT, k2 INTEGER, v BLOB, PRIMARY KEY (k2, k1)) WITHOUT ROWID;
           CREATE TABLE generated(id INTEGER PRIMARY KEY, price INTEGER, total INTEGER GENERATED ALWAYS AS (price * 2) VIRTUAL, label TEXT GENERATED ALWAYS AS ('p' || price) STORED);
           CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
           CREATE TABLE "select"("from" INTEGER, "order" TEXT, "group" BLOB);
           CREATE TABLE "odd ""name"" täble"("col ""q""" TEXT);
           CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
           CREATE TABLE parent(id INTEGER PRIMARY KEY, up INTEGER REFERENCES parent(id));
           CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
           CREATE TABLE empty_table(x, y);
           CREATE VIEW v1 AS SELECT id FROM parent;
           CREATE VIEW v2 AS SELECT id FROM v1;
           CREATE TRIGGER v1_insert INSTEAD OF INSERT ON v1 BEGIN INSERT INTO parent(id) VALUES (new.id); END;
           CREATE TRIGGER parent_log AFTER INSERT ON parent BEGIN INSERT INTO audit(what) VALUES ('parent ' || new.id); END;
           CREATE INDEX texts_t ON texts(t);"#,
    )
    .unwrap();
    for r in [1.0, 5.0, 1e21, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::from_bits(1), 1.1910593176322935e-240] {
        conn.execute("INSERT INTO reals(typed, untyped) VALUES (?1, ?1)", [r]).unwrap();
        conn.execute("INSERT INTO strict_any(a) VALUES (?1)", [r]).unwrap();
    }
    for i in [0i64, -1, i64::MIN, i64::MAX, (1 << 53) + 1] {
        conn.execute("INSERT INTO ints(i, u) VALUES (?1, ?1)", [i]).unwrap();
    }
    conn.execute_batch(
        r#"INSERT INTO texts(t, b) VALUES
             (CAST(X'6E756C00696E73696465' AS TEXT), X'00010F'),
             ('quotes '' " and CR' || char(13) || ' LF' || char(10) || ' TAB' || char(9) || ' emoji 🦀', X''),
             ('', NULL);
           INSERT INTO texts(t, b) VALUES (CAST(X'FFFE20C328' AS TEXT), zeroblob(300000));
           INSERT INTO gaps(rowid, a) VALUES (5, 'five'), (9, 'nine'), (100, 'hundred');
           INSERT INTO composite VALUES ('b', 2, X'01'), ('a', 2, X'02'), ('z', -1, NULL);
           INSERT INTO generated(id, price) VALUES (1, 100), (2, 250);
           INSERT INTO jobs(name) VALUES ('a'), ('b'), ('c'); DELETE FROM jobs WHERE id = 3;
           INSERT INTO "select" VALUES (1, 'o', X'AA');
           INSERT INTO "odd ""name"" täble" VALUES ('v');
           INSERT INTO parent VALUES (1, NULL), (2, 1);
           INSERT INTO child VALUES (10, 2);
           DELETE FROM audit;"#,
    )
    .unwrap();
    drop(conn);
    let snapshot = ws.snapshot(&db);
    let diff = load_through_d1(&ws, snapshot["id"].as_str().unwrap(), "cases");
    assert_eq!(differing_tables(&diff), Vec::<String>::new(), "{diff}");
    assert_eq!(diff["schema"], serde_json::json!([]), "{diff}");
    assert_eq!(diff["header"], serde_json::json!([]), "{diff}");
}

#[test]
#[ignore = "needs the real wrangler; `.ci/run` installs it and runs the ignored tests"]
fn rollback_sql_round_trips_through_d1() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    let before = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap()])["id"].as_str().unwrap().to_string();
    // Load the same data into a fresh local D1, migrate it there, and roll it back with d1snap's SQL.
    let sql = ws.path("full.sql");
    ws.ok(&["restore", &before, "--sql", sql.to_str().unwrap()]);
    let live = fresh_project(&ws, "live");
    execute_local(&live, &sql);
    let migration = ws.path("migration.sql");
    std::fs::write(
        &migration,
        r#"ALTER TABLE "Session" ADD COLUMN "ip" TEXT;
UPDATE "Session" SET "ip" = '192.0.2.1' WHERE "id" = 'sess_a';
DELETE FROM "RateLimit" WHERE "key" = 'login:::1';
INSERT INTO backup_verification(backup_path, checksum) VALUES ('backups/new.sql', 'sha256:dddd');
"#,
    )
    .unwrap();
    execute_local(&live, &migration);
    let rollback = ws.path("rollback.sql");
    ws.ok(&["diff", &before, "--wrangler", live.to_str().unwrap(), "--sql", rollback.to_str().unwrap()]);
    execute_local(&live, &rollback);
    let diff = ws.json(&["diff", &before, "--wrangler", live.to_str().unwrap()]);
    assert_eq!(differing_tables(&diff), Vec::<String>::new(), "{diff}");
    assert_eq!(diff["schema"], serde_json::json!([]), "{diff}");
    // D1's own _cf_ tables drift on every write; verify reports them as warnings only.
    let verify = ws.run(&["verify", &before, "--against-wrangler", live.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}
