//! Row diffs, rollback SQL and snapshot SQL: each applied to a real SQLite database with
//! foreign keys on (as D1 runs) must give back the expected roots.

use std::path::{Path, PathBuf};

use crate::util::{Workspace, open};

/// Runs SQL the way D1 does: foreign keys on, inside one transaction.
pub fn apply_like_d1(db: &Path, sql_file: &Path) {
    let sql = std::fs::read_to_string(sql_file).unwrap();
    let conn = open(db);
    conn.execute_batch("PRAGMA foreign_keys = ON; BEGIN;").unwrap();
    conn.execute_batch(&sql).unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

fn assert_matches_snapshot(ws: &Workspace, snapshot: &str, db: &Path) {
    let report = ws.json(&["verify", snapshot, "--against", db.to_str().unwrap()]);
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
}

#[test]
fn row_diff_reads_only_differing_chunks() {
    let ws = Workspace::new();
    let db = ws.path("big.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER); BEGIN;").unwrap();
    {
        let mut insert = conn.prepare("INSERT INTO t(v, n) VALUES (?1, ?2)").unwrap();
        for i in 0..100_000 {
            insert.execute(rusqlite::params![format!("value number {i} with some padding text"), i]).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    let a = ws.snapshot(&db);
    assert!(a["chunks"].as_u64().unwrap() > 20);
    open(&db).execute_batch("UPDATE t SET n = -1 WHERE id = 54321").unwrap();
    let b = ws.snapshot(&db);

    let diff = ws.json(&["diff", a["id"].as_str().unwrap(), b["id"].as_str().unwrap(), "--rows"]);
    let table = &diff["rows"][0];
    assert_eq!(table["changed"], 1);
    assert_eq!(table["added"], 0);
    assert_eq!(table["removed"], 0);
    assert_eq!(table["chunks_read"], 2, "{table}");
    assert_eq!(table["rows"][0]["key"], serde_json::json!({ "rowid": 54321 }));
    assert_eq!(table["rows"][0]["columns"], serde_json::json!(["n"]));
}

/// Snapshots the wrangler sample (A), applies a migration (B), and returns both ids and the file.
fn migrated_sample(ws: &Workspace) -> (String, String, PathBuf) {
    let project = ws.copy_data("d1-local");
    let db = project.join(crate::util::D1_DATABASE);
    let a = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    open(&db)
        .execute_batch(
            r#"ALTER TABLE "Session" ADD COLUMN "ip" TEXT;
               UPDATE "Session" SET "ip" = '192.0.2.1' WHERE "id" = 'sess_a';
               CREATE INDEX "Session_ip_idx" ON "Session"("ip");
               DELETE FROM "RateLimit" WHERE "key" = 'login:::1';
               UPDATE "TrickyValue" SET "r" = 2.5, "t" = 'changed' WHERE "id" = 1;
               INSERT INTO backup_verification(backup_path, checksum) VALUES ('backups/new.sql', 'sha256:dddd');
               UPDATE "Credential" SET "publicKey" = randomblob(300000) WHERE "id" = 'cred_1';
               DROP TRIGGER "User_set_updatedAt";"#,
        )
        .unwrap();
    let b = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    (a, b, db)
}

#[test]
fn rollback_sql_turns_later_snapshot_into_earlier() {
    let ws = Workspace::new();
    let (a, b, _) = migrated_sample(&ws);
    let sql = ws.path("rollback.sql");
    let report = ws.json(&["diff", &a, &b, "--sql", sql.to_str().unwrap()]);
    assert!(report["sql"]["statements"].as_u64().unwrap() > 0);
    assert!(std::fs::read_to_string(&sql).unwrap().lines().all(|line| line.len() <= 100_000));

    let copy = ws.path("later.sqlite");
    ws.ok(&["restore", &b, "--to", copy.to_str().unwrap()]);
    apply_like_d1(&copy, &sql);
    assert_matches_snapshot(&ws, &a, &copy);
}

#[test]
fn rollback_sql_against_live_database() {
    let ws = Workspace::new();
    let (a, _, db) = migrated_sample(&ws);
    let sql = ws.path("rollback-live.sql");
    ws.ok(&["diff", &a, db.to_str().unwrap(), "--sql", sql.to_str().unwrap()]);
    apply_like_d1(&db, &sql);
    assert_matches_snapshot(&ws, &a, &db);
}

#[test]
fn rollback_sql_refuses_a_rewritten_table() {
    let ws = Workspace::new();
    let db = ws.path("rewrite.sqlite");
    open(&db).execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT); INSERT INTO t VALUES (1, 'x', 'y');").unwrap();
    let a = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    open(&db).execute_batch("ALTER TABLE t DROP COLUMN b;").unwrap();
    let output = ws.run(&["diff", &a, db.to_str().unwrap(), "--sql", ws.path("x.sql").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot undo"), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!ws.path("x.sql").exists());
}

#[test]
fn snapshot_sql_loads_into_empty_database_exactly() {
    let ws = Workspace::new();
    let db = ws.path("exact.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE v(id INTEGER PRIMARY KEY, x);
         CREATE TABLE parent(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE);
         CREATE TABLE wr(k TEXT, n INTEGER, PRIMARY KEY (k, n)) WITHOUT ROWID;
         CREATE TABLE s(id INTEGER PRIMARY KEY, a ANY) STRICT;
         CREATE VIEW pv AS SELECT * FROM parent;
         CREATE VIEW pvv AS SELECT name FROM pv;
         CREATE TRIGGER pv_ins INSTEAD OF INSERT ON pv BEGIN INSERT INTO parent(name) VALUES (new.name); END;
         CREATE TRIGGER parent_ai AFTER INSERT ON parent BEGIN INSERT INTO v(x) VALUES ('fired'); END;",
    )
    .unwrap();
    let values: Vec<rusqlite::types::Value> = vec![
        rusqlite::types::Value::Real(1.0),
        rusqlite::types::Value::Real(-0.0),
        rusqlite::types::Value::Real(1e21),
        rusqlite::types::Value::Real(f64::INFINITY),
        rusqlite::types::Value::Real(f64::NEG_INFINITY),
        rusqlite::types::Value::Real(f64::from_bits(1)),
        rusqlite::types::Value::Real(1.1910593176322935e-240),
        rusqlite::types::Value::Integer(i64::MIN),
        rusqlite::types::Value::Integer(i64::MAX),
        rusqlite::types::Value::Integer((1 << 53) + 1),
        rusqlite::types::Value::Text("quote ' and\nnewline \\n".into()),
        rusqlite::types::Value::Blob(vec![0, 1, 2]),
        rusqlite::types::Value::Blob(Vec::new()),
        rusqlite::types::Value::Text(String::new()),
        rusqlite::types::Value::Null,
        rusqlite::types::Value::Blob(vec![7u8; 250_000]),
    ];
    for value in &values {
        conn.execute("INSERT INTO v(x) VALUES (?1)", [value]).unwrap();
        conn.execute("INSERT INTO s(a) VALUES (?1)", [value]).unwrap();
    }
    conn.execute("INSERT INTO v(x) VALUES (CAST(X'00FF61' AS TEXT))", []).unwrap();
    conn.execute_batch(
        "INSERT INTO parent(name) VALUES ('a'), ('b'), ('c'); DELETE FROM parent WHERE id = 3;
         INSERT INTO child VALUES (1, 1), (2, 2);
         INSERT INTO wr VALUES ('x', 1), ('x', 2), ('y', -5);",
    )
    .unwrap();
    drop(conn);
    let snapshot = ws.snapshot(&db)["id"].as_str().unwrap().to_string();

    let sql = ws.path("snapshot.sql");
    ws.ok(&["restore", &snapshot, "--sql", sql.to_str().unwrap()]);
    let text = std::fs::read_to_string(&sql).unwrap();
    assert!(!text.contains("BEGIN;") && !text.contains("COMMIT"), "D1 rejects explicit transactions");
    assert!(text.lines().all(|line| line.len() <= 100_000));
    let loaded = ws.path("loaded.sqlite");
    apply_like_d1(&loaded, &sql);
    assert_matches_snapshot(&ws, &snapshot, &loaded);
}

#[test]
fn snapshot_sql_rejects_values_too_large_for_d1() {
    let ws = Workspace::new();
    let db = ws.path("huge.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)").unwrap();
    conn.execute("INSERT INTO big(b) VALUES (?1)", [vec![1u8; 2_100_000]]).unwrap();
    drop(conn);
    let snapshot = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    let sql = ws.path("huge.sql");
    let output = ws.run(&["restore", &snapshot, "--sql", sql.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("rowid 1"));
    assert!(!sql.exists());
}

#[test]
fn rollback_sql_finds_rows_by_primary_key_when_rowids_differ() {
    let ws = Workspace::new();
    let (a, b, db) = migrated_sample(&ws);
    let sql = ws.path("rollback.sql");
    ws.ok(&["diff", &a, &b, "--sql", sql.to_str().unwrap()]);
    // The target got its rows another way (for example from a dump), so its rowids differ.
    open(&db).execute_batch(r#"UPDATE "Session" SET rowid = rowid + 100;"#).unwrap();
    apply_like_d1(&db, &sql);
    let restored = ws.path("a.sqlite");
    ws.ok(&["restore", &a, "--to", restored.to_str().unwrap()]);
    let values = |path: &Path| -> Vec<Vec<crate::util::Exact>> {
        let conn = open(path);
        let mut stmt = conn.prepare(r#"SELECT * FROM "Session" ORDER BY "id""#).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |row| (0..n).map(|i| row.get_ref(i).map(crate::util::Exact::from)).collect()).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(values(&db), values(&restored));
}

#[test]
fn rollback_sql_splits_large_updated_value() {
    let ws = Workspace::new();
    let db = ws.path("blobs.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE doc(id TEXT PRIMARY KEY, body TEXT, data BLOB)").unwrap();
    conn.execute("INSERT INTO doc VALUES ('d1', ?1, ?2)", rusqlite::params!["long text ".repeat(20_000), vec![9u8; 150_000]]).unwrap();
    drop(conn);
    let a = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    open(&db).execute_batch("UPDATE doc SET body = 'short', data = x'00'").unwrap();
    let b = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    let sql = ws.path("rollback.sql");
    ws.ok(&["diff", &a, &b, "--sql", sql.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&sql).unwrap().lines().all(|line| line.len() <= 100_000));
    apply_like_d1(&db, &sql);
    assert_matches_snapshot(&ws, &a, &db);
}

#[test]
fn rollback_sql_limited_to_named_tables() {
    let ws = Workspace::new();
    let (a, b, _) = migrated_sample(&ws);
    let sql = ws.path("rollback.sql");
    let report = ws.json(&["diff", &a, &b, "--table", "RateLimit", "--sql", sql.to_str().unwrap()]);
    let tables: Vec<&str> = report["sql"]["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tables, vec!["RateLimit"]);
    let text = std::fs::read_to_string(&sql).unwrap();
    assert!(!text.contains("\"Session\""), "{text}");
}
