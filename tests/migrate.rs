//! The migration guard and restore drills, on the wrangler sample database.

use std::path::{Path, PathBuf};

use crate::util::{Workspace, open};

fn sample(ws: &Workspace) -> (PathBuf, PathBuf) {
    let project = ws.copy_data("d1-local");
    let db = project.join(crate::util::D1_DATABASE);
    (project, db)
}

fn write(ws: &Workspace, name: &str, sql: &str) -> PathBuf {
    let path = ws.path(name);
    std::fs::write(&path, sql).unwrap();
    path
}

/// Returns the database's root, from a snapshot of it.
fn root_of(ws: &Workspace, db: &Path) -> String {
    ws.snapshot(db)["root"].as_str().unwrap().to_string()
}

fn migrate(ws: &Workspace, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["--json", "migrate"];
    all.extend_from_slice(args);
    let output = ws.run(&all);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("JSON from migrate; stderr: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

#[test]
fn add_column_and_backfill_passes() {
    let ws = Workspace::new();
    let (_, db) = sample(&ws);
    let migration = write(&ws, "0002_session_ip.sql", "ALTER TABLE \"Session\" ADD COLUMN \"ip\" TEXT;\nUPDATE \"Session\" SET \"ip\" = '0.0.0.0';\n");
    let (code, report) = migrate(&ws, &[db.to_str().unwrap(), migration.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report}");
    let changed: Vec<&str> = report["changes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(changed, vec!["Session"]);
    assert_eq!(report["rows"][0]["columns_added"], serde_json::json!(["ip"]));
    let rollback = ws.path("0002_session_ip.rollback.sql");
    assert_eq!(report["rollback_sql"], rollback.to_str().unwrap());
    assert!(std::fs::read_to_string(&rollback).unwrap().contains("DROP COLUMN \"ip\""));
}

#[test]
fn failing_migration_restores_database_with_equal_root() {
    let ws = Workspace::new();
    let (_, db) = sample(&ws);
    let before = root_of(&ws, &db);
    let first = write(&ws, "0002_ok.sql", "INSERT INTO \"RateLimit\" VALUES ('k', 1, 1);\n");
    let second = write(&ws, "0003_broken.sql", "UPDATE \"Product\" SET \"name\" = 'x';\nINSERT INTO no_such_table VALUES (1);\n");
    let (code, report) = migrate(&ws, &[db.to_str().unwrap(), first.to_str().unwrap(), second.to_str().unwrap()]);
    assert_eq!(code, Some(11), "{report}");
    assert_eq!(report["failed_step"], "apply");
    assert_eq!(report["rolled_back"], true, "the first migration had committed, so a restore was needed");
    assert_eq!(report["root_after_rollback"], report["pre_root"]);
    assert_eq!(root_of(&ws, &db), before);
    crate::util::assert_healthy(&db);
}

#[test]
fn cascade_into_unnamed_table_is_caught() {
    let ws = Workspace::new();
    let (_, db) = sample(&ws);
    let before = root_of(&ws, &db);
    let migration = write(&ws, "0002_remove_user.sql", "DELETE FROM \"User\" WHERE \"id\" = 'usr_01HZX3KA11';\n");
    let (code, report) = migrate(&ws, &[db.to_str().unwrap(), migration.to_str().unwrap()]);
    assert_eq!(code, Some(12), "{report}");
    let unnamed: Vec<&str> = report["changes"].as_array().unwrap().iter().filter(|c| c["named"] == false).map(|c| c["name"].as_str().unwrap()).collect();
    assert!(unnamed.contains(&"Session"), "{unnamed:?}");
    assert_eq!(report["root_after_rollback"], report["pre_root"]);
    assert_eq!(root_of(&ws, &db), before);
}

#[test]
fn trigger_into_unnamed_table_is_caught() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    open(&db)
        .execute_batch(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, total INTEGER);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, entry TEXT);
             CREATE TRIGGER orders_clear AFTER UPDATE ON orders BEGIN DELETE FROM ledger; END;
             INSERT INTO orders VALUES (1, 10); INSERT INTO ledger VALUES (1, 'opening');",
        )
        .unwrap();
    let migration = write(&ws, "0001_reprice.sql", "UPDATE orders SET total = total * 2;\n");
    let (code, report) = migrate(&ws, &[db.to_str().unwrap(), migration.to_str().unwrap()]);
    assert_eq!(code, Some(12), "{report}");
    let entries: i64 = open(&db).query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap();
    assert_eq!(entries, 1, "the rollback did not bring the ledger back");
}

#[test]
fn failed_user_check_rolls_back() {
    let ws = Workspace::new();
    let (_, db) = sample(&ws);
    let before = root_of(&ws, &db);
    let migration = write(&ws, "0002_prices.sql", "UPDATE \"Product\" SET \"priceCents\" = 0;\n");
    let checks = write(&ws, "checks.sql", "-- expect: 0\nSELECT count(*) FROM \"Product\" WHERE \"priceCents\" = 0 AND \"name\" <> 'Free Thing';\n");
    let (code, report) = migrate(&ws, &["--checks", checks.to_str().unwrap(), db.to_str().unwrap(), migration.to_str().unwrap()]);
    assert_eq!(code, Some(12), "{report}");
    assert_eq!(root_of(&ws, &db), before);
}

#[test]
fn dry_run_changes_nothing() {
    let ws = Workspace::new();
    let (_, db) = sample(&ws);
    let original = std::fs::read(&db).unwrap();
    let migration = write(&ws, "0002_drop.sql", "DELETE FROM \"Product\";\n");
    let (code, report) = migrate(&ws, &["--dry-run", db.to_str().unwrap(), migration.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(std::fs::read(&db).unwrap(), original);
    assert!(!ws.repo().exists(), "a dry run wrote to the repository");
}

#[test]
fn wrangler_mode_applies_pending_and_records_them() {
    let ws = Workspace::new();
    let (project, db) = sample(&ws);
    std::fs::write(project.join("migrations/0002_note_pinned.sql"), "ALTER TABLE \"Note\" ADD COLUMN \"pinned\" INTEGER NOT NULL DEFAULT 0;\n").unwrap();
    let (code, report) = migrate(&ws, &["--wrangler", project.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["applied"], serde_json::json!(["0002_note_pinned.sql"]));
    let recorded: Vec<String> = {
        let conn = open(&db);
        let mut stmt = conn.prepare("SELECT name FROM d1_migrations ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(recorded, vec!["0001_add_user_profile.sql", "0002_note_pinned.sql"]);
    let (code, report) = migrate(&ws, &["--wrangler", project.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(report["applied"], serde_json::json!([]));
}

#[test]
fn drill_passes_and_feeds_projection() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let drill = ws.json(&["drill"]);
    let report = &drill["drills"][0];
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["restore_bytes_per_second"].as_f64().unwrap() > 0.0);
    assert!(report["projected_10gb_ms"].as_u64().unwrap() > 0);
    let history: Vec<_> = std::fs::read_dir(ws.repo().join("history")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(history.iter().any(|name| name.contains("-drill-")), "{history:?}");
    let next = ws.snapshot(&db);
    assert!(next["projected_restore_ms"].as_u64().is_some(), "{next}");
}

#[test]
fn drill_on_corrupted_repository_names_the_table() {
    let ws = Workspace::new();
    let db = ws.path("two.sqlite");
    open(&db).execute_batch("CREATE TABLE alpha(v TEXT); INSERT INTO alpha VALUES ('a');").unwrap();
    ws.snapshot(&db);
    ws.stored_objects(d1snap_engine::object::Kind::Chunk)[0].flip_last_byte();
    let output = ws.run(&["drill"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("table \"alpha\""), "{stdout}");
}

#[test]
fn drill_threshold_breach_exits_four() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let output = ws.run(&["drill", "--max-restore-time", "0ms"]);
    assert_eq!(output.status.code(), Some(4), "{}", String::from_utf8_lossy(&output.stdout));
}
