//! Deduplication measured in chunk counts and stored bytes, never in time.

use std::path::{Path, PathBuf};

use d1snap_engine::object::Kind;

use crate::util::{Workspace, open};

const ROWS: i64 = 100_000;

/// Builds a 100,000-row table with JSON-like payloads. Rowids are even, so a row can be
/// inserted between two neighbours.
fn build_events(ws: &Workspace) -> PathBuf {
    let db = ws.path("events.sqlite");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE events(id INTEGER PRIMARY KEY, user TEXT NOT NULL, kind TEXT, payload TEXT, at INTEGER);
         CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT) WITHOUT ROWID;",
    )
    .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn.prepare("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
        for i in 0..ROWS {
            let payload = format!("{{\"seq\":{i},\"ip\":\"10.0.{}.{}\",\"ok\":{}}}", i % 251, i % 13, i % 3 == 0);
            insert
                .execute(rusqlite::params![i * 2, format!("usr_{:06}", i % 5000), ["login", "logout", "update"][(i % 3) as usize], payload, 1_700_000_000 + i])
                .unwrap();
        }
        let mut users = conn.prepare("INSERT INTO users VALUES (?1, ?2)").unwrap();
        for i in 0..5000 {
            users.execute(rusqlite::params![format!("usr_{i:06}"), format!("user{i}@example.com")]).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    db
}

fn change(db: &Path, sql: &str) {
    open(db).execute_batch(sql).unwrap();
}

fn new_chunks(report: &serde_json::Value) -> u64 {
    report["new_chunks"].as_u64().unwrap()
}

#[test]
fn unchanged_database_stores_no_new_chunk() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    let second = ws.snapshot(&db);
    assert_eq!(new_chunks(&second), 0);
}

#[test]
fn vacuum_changes_no_chunk() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    change(&db, "PRAGMA page_size = 8192; VACUUM;");
    let second = ws.snapshot(&db);
    assert_eq!(new_chunks(&second), 0);
}

#[test]
fn one_row_update_stores_at_most_two_chunks() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    let first = ws.snapshot(&db);
    assert!(first["chunks"].as_u64().unwrap() > 50, "the table should span many chunks");
    change(&db, "UPDATE events SET payload = '{\"changed\":true}' WHERE id = 100000");
    let second = ws.snapshot(&db);
    assert!(new_chunks(&second) <= 2, "{second}");
    assert!(new_chunks(&second) >= 1);
}

#[test]
fn one_row_insert_in_middle_stores_at_most_three_chunks() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    change(&db, "INSERT INTO events VALUES (100001, 'usr_new', 'login', '{}', 0)");
    let second = ws.snapshot(&db);
    assert!(new_chunks(&second) <= 3, "{second}");
}

#[test]
fn one_row_delete_in_middle_stores_at_most_three_chunks() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    change(&db, "DELETE FROM events WHERE id = 100002");
    let second = ws.snapshot(&db);
    assert!(new_chunks(&second) <= 3, "{second}");
}

#[test]
fn without_rowid_insert_stores_at_most_three_chunks() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    change(&db, "INSERT INTO users VALUES ('usr_002500x', 'new@example.com')");
    let second = ws.snapshot(&db);
    assert!(new_chunks(&second) <= 3, "{second}");
}

/// Stored size of the events table's chunks in the first snapshot, from the repository.
fn stored_chunk_bytes(ws: &Workspace) -> u64 {
    ws.stored_objects(d1snap_engine::object::Kind::Chunk).iter().map(|chunk| chunk.length).sum()
}

#[test]
fn add_column_without_default_rewrites_under_one_percent() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    let table_bytes = stored_chunk_bytes(&ws);
    change(&db, "ALTER TABLE events ADD COLUMN note TEXT");
    let second = ws.snapshot(&db);
    let added = stored_chunk_bytes(&ws) - table_bytes;
    assert!(added * 100 < table_bytes, "{added} new chunk bytes of {table_bytes}");
    assert!(second["new_bytes"].as_u64().unwrap() * 100 < table_bytes, "{second}");
}

#[test]
fn add_column_with_constant_default_rewrites_under_one_percent() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    let table_bytes = stored_chunk_bytes(&ws);
    change(&db, "ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'active'; ALTER TABLE events ADD COLUMN weight REAL DEFAULT 1");
    let second = ws.snapshot(&db);
    let added = stored_chunk_bytes(&ws) - table_bytes;
    assert!(added * 100 < table_bytes, "{added} new chunk bytes of {table_bytes}");
    assert!(second["new_bytes"].as_u64().unwrap() * 100 < table_bytes, "{second}");
}

#[test]
fn copied_table_stores_no_new_chunk() {
    let ws = Workspace::new();
    let db = build_events(&ws);
    ws.snapshot(&db);
    change(
        &db,
        "CREATE TABLE events_copy(id INTEGER PRIMARY KEY, user TEXT NOT NULL, kind TEXT, payload TEXT, at INTEGER);
         INSERT INTO events_copy SELECT * FROM events;",
    );
    let report = ws.snapshot(&db);
    // Every chunk of the copy is byte-identical to one of the original, so none is stored again.
    assert_eq!(new_chunks(&report), 0, "{report}");
}

fn build_random_text(ws: &Workspace) -> PathBuf {
    crate::util::random_notes(ws, "random.sqlite", 5000)
}

#[test]
fn updated_chunk_stored_as_delta() {
    let ws = Workspace::new();
    let db = build_random_text(&ws);
    ws.snapshot(&db);
    let before: std::collections::HashSet<_> = ws.stored_objects(Kind::Chunk).iter().map(|c| c.id).collect();
    let smallest_whole = ws.stored_objects(Kind::Chunk).iter().map(|c| c.length).min().unwrap();
    change(&db, "UPDATE notes SET body = 'edited' WHERE id = 2500");
    let second = ws.snapshot(&db);
    assert_eq!(second["new_chunks"], 1, "{second}");
    let added: Vec<_> = ws.stored_objects(Kind::Chunk).into_iter().filter(|c| !before.contains(&c.id)).collect();
    assert_eq!(added.len(), 1);
    assert!(added[0].length < 300, "the changed chunk took {} bytes; whole chunks take {smallest_whole} or more", added[0].length);
    assert!(second["new_bytes"].as_u64().unwrap() < 4096, "{second}");

    ws.ok(&["verify", "--all", "--read-data"]);
    let restored = ws.path("restored.sqlite");
    ws.ok(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    crate::util::assert_same_database(&db, &restored);
}

#[test]
fn unchanged_snapshot_reads_no_parent_objects() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let second = ws.snapshot(&db);
    // The record list and the config: no tree node or chunk of the parent is read.
    assert!(second["requests"]["get"].as_u64().unwrap() <= 4, "{second}");
}

#[test]
fn renamed_database_still_stores_deltas() {
    let ws = Workspace::new();
    let db = build_random_text(&ws);
    ws.snapshot(&db);
    let renamed = ws.path("renamed.sqlite");
    std::fs::copy(&db, &renamed).unwrap();
    change(&renamed, "UPDATE notes SET body = 'edited' WHERE id = 2500");
    let second = ws.snapshot(&renamed);
    assert_eq!(second["parent"], serde_json::Value::Null, "the parent is of the same source only");
    assert_eq!(second["new_chunks"], 1, "{second}");
    assert!(second["new_bytes"].as_u64().unwrap() < 4096, "{second}");
}
