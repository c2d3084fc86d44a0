//! Restoring single tables into a live database: only the named tables change.

use std::path::{Path, PathBuf};

use crate::util::{Workspace, open, table_rows};

/// A copy of the wrangler sample database as a plain file, with a snapshot of it taken.
fn sample_with_snapshot(ws: &Workspace) -> (PathBuf, String) {
    let project = ws.copy_data("d1-local");
    let db = project.join(crate::util::D1_DATABASE);
    let report = ws.snapshot(&db);
    (db, report["id"].as_str().unwrap().to_string())
}

fn changed_tables(ws: &Workspace, snapshot: &str, live: &Path) -> Vec<String> {
    let diff = ws.json(&["diff", snapshot, live.to_str().unwrap()]);
    diff["tables"].as_array().unwrap().iter().filter(|t| t["change"] != "unchanged").map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn one_table_restore_leaves_other_tables_untouched() {
    let ws = Workspace::new();
    let (db, before) = sample_with_snapshot(&ws);
    // A bad migration damages "User"; meanwhile users keep writing to "Session".
    open(&db)
        .execute_batch(
            r#"DELETE FROM "User" WHERE "id" = 'usr_01HZX3KB22';
               UPDATE "User" SET "email" = 'broken' WHERE "id" = 'usr_01HZX3K9Q8';
               INSERT INTO "Session"("id", "userId", "expiresAt") VALUES ('sess_new', NULL, '2100-01-01');"#,
        )
        .unwrap();
    let live = ws.snapshot(&db);
    let live_id = live["id"].as_str().unwrap().to_string();

    let report = ws.json(&["restore", &before, "--into", db.to_str().unwrap(), "--table", "User"]);
    assert_eq!(report["tables"][0]["action"], "replace rows");

    // "User" is back to the snapshot; every other table has the root it had just before.
    assert!(!changed_tables(&ws, &before, &db).contains(&"User".to_string()));
    assert_eq!(changed_tables(&ws, &live_id, &db), vec!["User".to_string()]);
    let sessions: i64 = open(&db).query_row(r#"SELECT count(*) FROM "Session" WHERE "id" = 'sess_new'"#, [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 1);
    crate::util::assert_healthy(&db);
}

#[test]
fn restored_table_triggers_do_not_fire() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    open(&db)
        .execute_batch(
            "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE log(id INTEGER PRIMARY KEY, what TEXT);
             CREATE TRIGGER item_log AFTER INSERT ON item BEGIN INSERT INTO log(what) VALUES ('insert ' || new.id); END;
             INSERT INTO item(name) VALUES ('a'), ('b');",
        )
        .unwrap();
    let snapshot = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    open(&db).execute_batch("DELETE FROM item; DELETE FROM log;").unwrap();
    ws.ok(&["restore", &snapshot, "--into", db.to_str().unwrap(), "--table", "item"]);
    let conn = open(&db);
    assert_eq!(table_rows(&conn, "item").len(), 2);
    assert_eq!(table_rows(&conn, "log").len(), 0, "the trigger fired during the restore");
    let triggers: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'", [], |r| r.get(0)).unwrap();
    assert_eq!(triggers, 1);
}

#[test]
fn changed_definition_needs_replace_schema() {
    let ws = Workspace::new();
    let (db, before) = sample_with_snapshot(&ws);
    open(&db).execute_batch(r#"ALTER TABLE "Session" ADD COLUMN "ip" TEXT;"#).unwrap();
    let original = std::fs::read(&db).unwrap();

    let output = ws.run(&["restore", &before, "--into", db.to_str().unwrap(), "--table", "Session"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--replace-schema"));
    assert_eq!(std::fs::read(&db).unwrap(), original, "the target changed although the restore was refused");

    let report = ws.json(&["restore", &before, "--into", db.to_str().unwrap(), "--table", "Session", "--replace-schema"]);
    assert_eq!(report["tables"][0]["action"], "recreate");
    assert!(!changed_tables(&ws, &before, &db).contains(&"Session".to_string()));
}

#[test]
fn dry_run_changes_nothing() {
    let ws = Workspace::new();
    let (db, before) = sample_with_snapshot(&ws);
    open(&db).execute_batch(r#"DELETE FROM "Product";"#).unwrap();
    let original = std::fs::read(&db).unwrap();
    let report = ws.json(&["restore", &before, "--into", db.to_str().unwrap(), "--table", "Product", "--dry-run"]);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["tables"][0]["rows_before"], 0);
    assert_eq!(report["tables"][0]["rows"], 3);
    assert_eq!(std::fs::read(&db).unwrap(), original);
}

#[test]
fn restore_that_breaks_foreign_keys_is_refused() {
    let ws = Workspace::new();
    let db = ws.path("fk.sqlite");
    open(&db)
        .execute_batch(
            "CREATE TABLE parent(id INTEGER PRIMARY KEY);
             CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
             INSERT INTO parent VALUES (1);",
        )
        .unwrap();
    let snapshot = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    open(&db).execute_batch("INSERT INTO parent VALUES (2); INSERT INTO child VALUES (10, 2);").unwrap();
    let output = ws.run(&["restore", &snapshot, "--into", db.to_str().unwrap(), "--table", "parent"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("foreign key"), "{}", String::from_utf8_lossy(&output.stderr));
    let parents: i64 = open(&db).query_row("SELECT count(*) FROM parent", [], |r| r.get(0)).unwrap();
    assert_eq!(parents, 2, "the refused restore changed the table");
}
