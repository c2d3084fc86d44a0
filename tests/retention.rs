//! forget and prune: policies remove records, prune reclaims exactly the unreferenced data,
//! and locks keep prune and snapshots from overlapping.

use std::path::Path;

use d1snap_engine::object::Kind;

use crate::util::{Workspace, open};

fn snapshot_with_change(ws: &Workspace, db: &Path, n: i64) -> String {
    open(db).execute("INSERT INTO t(v) VALUES (?1)", [format!("row {n} {}", "x".repeat(2000))]).unwrap();
    ws.snapshot(db)["id"].as_str().unwrap().to_string()
}

fn count_files(dir: &Path) -> usize {
    if !dir.exists() {
        return 0;
    }
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        total += if path.is_dir() { count_files(&path) } else { 1 };
    }
    total
}

#[test]
fn forget_then_prune_reclaims_only_unreferenced_data() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    open(&db).execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);").unwrap();
    let ids: Vec<String> = (0..4).map(|n| snapshot_with_change(&ws, &db, n)).collect();

    let dry = ws.json(&["forget", "--keep-last", "2", "--dry-run"]);
    assert_eq!(dry["forget"]["removed"], 2);
    assert_eq!(count_files(&ws.repo().join("snapshots")), 4, "a dry run removed records");
    let kept: Vec<&serde_json::Value> = dry["forget"]["decisions"].as_array().unwrap().iter().filter(|d| d["keep"] == true).collect();
    assert!(kept.iter().all(|d| d["reasons"][0].as_str().unwrap().starts_with("last")));

    ws.json(&["forget", "--keep-last", "2"]);
    assert_eq!(count_files(&ws.repo().join("snapshots")), 2);
    let objects = |ws: &Workspace| ws.stored_objects(Kind::Chunk).len() + ws.stored_objects(Kind::Table).len();
    let before = objects(&ws);
    let pruned = ws.json(&["prune"]);
    assert!(pruned["deleted"].as_u64().unwrap() > 0, "{pruned}");
    let after = objects(&ws);
    assert!(after < before);
    ws.ok(&["verify", "--all", "--read-data"]);
    let restored = ws.path("restored.sqlite");
    ws.ok(&["restore", &ids[3], "--to", restored.to_str().unwrap()]);
    crate::util::assert_same_database(&db, &restored);
    let again = ws.json(&["prune"]);
    assert_eq!(again["deleted"], 0);
}

#[test]
fn keep_label_protects_pre_migration_snapshot() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    open(&db).execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);").unwrap();
    snapshot_with_change(&ws, &db, 0);
    ws.ok(&["snapshot", db.to_str().unwrap(), "--label", "pre-migration: 0002_x.sql"]);
    for n in 1..4 {
        snapshot_with_change(&ws, &db, n);
    }
    let report = ws.json(&["forget", "--keep-last", "1", "--keep-label", "pre-migration"]);
    assert_eq!(report["forget"]["kept"], 2);
    let list = ws.json(&["list"]);
    let labels: Vec<&serde_json::Value> = list["snapshots"].as_array().unwrap().iter().map(|s| &s["labels"]).collect();
    assert!(labels.iter().any(|l| l[0] == "pre-migration: 0002_x.sql"), "{labels:?}");
}

#[test]
fn forget_without_policy_is_refused() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let output = ws.run(&["forget"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--keep-"));
}

fn write_lock(ws: &Workspace, name: &str, kind: &str, purpose: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let lock = serde_json::json!({ "version": 1, "kind": kind, "purpose": purpose, "host": "other-host", "pid": 4242, "created_ms": now, "refreshed_ms": now });
    std::fs::create_dir_all(ws.repo().join("locks")).unwrap();
    std::fs::write(ws.repo().join("locks").join(name), serde_json::to_vec(&lock).unwrap()).unwrap();
}

#[test]
fn prune_refuses_while_snapshot_holds_lock() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    write_lock(&ws, "running.json", "shared", "snapshot");
    let output = ws.run(&["prune"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("in use"), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn snapshot_refuses_while_prune_holds_lock() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    write_lock(&ws, "pruning.json", "exclusive", "prune");
    let output = ws.run(&["snapshot", db.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("prune"));
    assert_eq!(count_files(&ws.repo().join("snapshots")), 1, "a record was written during prune");
}

#[test]
fn snapshot_running_during_prune_stays_whole() {
    let ws = Workspace::new();
    let db = ws.path("big.sqlite");
    let conn = open(&db);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); BEGIN;").unwrap();
    for i in 0..60_000 {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("{i} {}", "payload ".repeat(8))]).unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    ws.snapshot(&db);
    ws.json(&["forget", "--keep-last", "1"]);
    // Each round races a snapshot of changed data against a prune of the previous one. Either
    // may be rejected by the other's lock, but no snapshot may end up incomplete.
    for round in 0..4 {
        open(&db).execute("UPDATE t SET v = ?1 WHERE id % 500 = 0", [format!("round {round}")]).unwrap();
        let mut snapshot = std::process::Command::new(crate::util::BIN)
            .args(["snapshot", db.to_str().unwrap()])
            .env("D1SNAP_REPO", ws.repo())
            .env("HOME", ws.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50 * round));
        let _ = ws.run(&["forget", "--keep-last", "1", "--prune"]);
        snapshot.wait().unwrap();
    }
    ws.ok(&["verify", "--all", "--read-data"]);
}

#[test]
fn prune_keeps_delta_base() {
    let ws = Workspace::new();
    let db = crate::util::random_notes(&ws, "app.sqlite", 3000);
    ws.snapshot(&db);
    open(&db).execute_batch("UPDATE notes SET body = 'edited' WHERE id = 10").unwrap();
    ws.snapshot(&db);
    ws.json(&["forget", "--keep-last", "1"]);
    let pruned = ws.json(&["prune"]);
    // The first snapshot's version of the edited chunk is referenced by no snapshot, but
    // the second snapshot's chunk is stored against it.
    assert_eq!(pruned["chunks"]["unreferenced"], 0, "{pruned}");
    ws.ok(&["verify", "--all", "--read-data"]);
    let restored = ws.path("restored.sqlite");
    ws.ok(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    crate::util::assert_same_database(&db, &restored);
}

#[test]
fn prune_rewrites_mixed_pack() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    open(&db)
        .execute_batch(
            "CREATE TABLE kept(id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE dropped(id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO kept VALUES (1, 'stays');
             INSERT INTO dropped VALUES (1, 'goes');",
        )
        .unwrap();
    ws.snapshot(&db);
    open(&db).execute_batch("DROP TABLE dropped").unwrap();
    ws.snapshot(&db);
    ws.json(&["forget", "--keep-last", "1"]);
    let dry = ws.json(&["prune", "--dry-run"]);
    assert_eq!(dry["packs_rewritten"], 1, "{dry}");
    let packs_before = count_files(&ws.repo().join("packs"));
    let pruned = ws.json(&["prune"]);
    assert_eq!(pruned["packs_rewritten"], 1, "{pruned}");
    assert!(pruned["deleted"].as_u64().unwrap() >= 3, "the dropped table's chunk, node and table object: {pruned}");
    assert_eq!(count_files(&ws.repo().join("packs")), packs_before, "the old pack is replaced by its rewrite");
    assert_eq!(count_files(&ws.repo().join("index")), 1, "one index file replaces the others");
    ws.ok(&["verify", "--all", "--read-data"]);
    let restored = ws.path("restored.sqlite");
    ws.ok(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    crate::util::assert_same_database(&db, &restored);
}
