//! Bad input gets a clear error naming the value, a non-zero exit, and no repository write.

use crate::util::Workspace;

fn assert_rejected(ws: &Workspace, args: &[&str], needle: &str) {
    let output = ws.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!ws.repo().exists(), "the repository was created for bad input");
}

#[test]
fn non_sqlite_file_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("image.png");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR binary").unwrap();
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "neither a SQLite database");
}

#[test]
fn sqlite_header_with_garbage_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("fake.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xa5u8, 4096));
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "fake.sqlite");
}

#[test]
fn truncated_database_is_rejected() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    assert_rejected(&ws, &["snapshot", db.to_str().unwrap()], "truncated");
}

#[test]
fn empty_file_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("empty.sqlite");
    std::fs::write(&path, b"").unwrap();
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "empty file");
}

#[test]
fn malformed_dump_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("broken.sql");
    std::fs::write(&path, "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1;\n").unwrap();
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "line 3");
}

#[test]
fn dump_cut_short_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("cut.sql");
    std::fs::write(&path, "CREATE TABLE t(a);\nINSERT INTO t VALUES('unterminated\n").unwrap();
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "cut short");
}

#[test]
fn missing_path_is_rejected() {
    let ws = Workspace::new();
    let path = ws.path("no-such.sqlite");
    assert_rejected(&ws, &["snapshot", path.to_str().unwrap()], "no-such.sqlite: not found");
}

#[test]
fn repository_path_that_is_a_file_is_rejected() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let repo_file = ws.path("repo-file");
    std::fs::write(&repo_file, b"not a directory").unwrap();
    let output = ws.run(&["snapshot", db.to_str().unwrap(), "--repo", repo_file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert_eq!(std::fs::read(&repo_file).unwrap(), b"not a directory");
}

#[test]
fn missing_wrangler_database_lists_declared_ones() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    assert_rejected(&ws, &["snapshot", "--wrangler", project.to_str().unwrap(), "--database", "nope"], "appdb (binding DB)");
}

#[test]
fn restore_refuses_to_overwrite_without_force() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let target = ws.path("existing.sqlite");
    std::fs::write(&target, b"keep me").unwrap();
    let output = ws.run(&["restore", "latest", "--to", target.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

#[test]
fn restore_with_force_removes_stale_wal() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let target = ws.path("target.sqlite");
    std::fs::write(&target, b"old").unwrap();
    let wal = ws.path("target.sqlite-wal");
    std::fs::write(&wal, b"stale wal of another database").unwrap();
    ws.ok(&["restore", "latest", "--to", target.to_str().unwrap(), "--force"]);
    assert!(!wal.exists());
    crate::util::assert_same_database(&db, &target);
}

#[test]
fn unknown_snapshot_name_is_an_error() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let output = ws.run(&["show", "no-such-label"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no snapshot matches \"no-such-label\""));
}

#[test]
fn unknown_table_lists_available_tables() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let output = ws.run(&["restore", "latest", "--table", "Nope", "--to", ws.path("x.sqlite").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Album"));
}
