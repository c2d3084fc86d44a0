//! Round trips of the real sample data: both Chinook databases and a local D1 database that
//! wrangler 4.86 created, read through --wrangler, as a file, and from its export dump.

use crate::util::{Workspace, assert_healthy, assert_same_database, round_trip};

#[test]
fn chinook_round_trips() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    round_trip(&ws, &db);
}

#[test]
fn chinook_autoincrement_round_trips() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite_AutoIncrementPKs.sqlite");
    let restored = round_trip(&ws, &db);
    let conn = crate::util::open(&restored);
    let sequences: i64 = conn.query_row("SELECT count(*) FROM sqlite_sequence", [], |r| r.get(0)).unwrap();
    assert!(sequences > 0);
}

const D1_FILE: &str = "37202af4a48e51a6f9bf1676145f85cdbaaf76a4a51b95f5120b328bf5460e72.sqlite";

fn d1_state(project: &std::path::Path) -> std::path::PathBuf {
    project.join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject")
}

#[test]
fn wrangler_project_round_trips_and_is_not_modified() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    let state = d1_state(&project);
    let read_all = || -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = read_all();

    let report = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap(), "--database", "DB"]);
    assert_eq!(read_all(), before, "the snapshot changed wrangler's files");
    let rows = report["rows"].as_u64().unwrap();
    assert!(rows > 0);

    let id = report["id"].as_str().unwrap();
    let restored = ws.path("appdb.sqlite");
    ws.ok(&["restore", id, "--to", restored.to_str().unwrap()]);
    // Compare against a private copy so that reading it cannot touch the project's files.
    let copy = ws.path("appdb-copy");
    crate::util::copy_tree(&state, &copy);
    assert_same_database(&copy.join(D1_FILE), &restored);
    assert_healthy(&restored);
}

#[test]
fn wrangler_database_file_gives_same_root_as_project() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    let by_name = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap(), "--database", "appdb"]);
    let by_file = ws.snapshot(&d1_state(&project).join(D1_FILE));
    assert_eq!(by_name["root"], by_file["root"]);
    assert_eq!(by_file["new_chunks"], 0);
}

#[test]
fn wrangler_database_file_round_trips() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    round_trip(&ws, &d1_state(&project).join(D1_FILE));
}

#[test]
fn export_dump_snapshot_is_marked_lossy() {
    let ws = Workspace::new();
    let dump = ws.copy_data("d1-local/exports/appdb-full.sql");
    let output = ws.run(&["--json", "snapshot", dump.to_str().unwrap()]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("SQL dump"), "{stderr}");
    // The export wrote i64::MAX as a REAL that the STRICT AuditLog table rejects.
    assert!(stderr.contains("statement skipped"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["lossy_source"], true);
    let restored = ws.path("from-dump.sqlite");
    ws.ok(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    assert_healthy(&restored);
    let users: i64 = crate::util::open(&restored).query_row("SELECT count(*) FROM \"User\"", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 3);
}

#[test]
fn export_dump_differs_from_exact_file_in_lossy_tables() {
    let ws = Workspace::new();
    let project = ws.copy_data("d1-local");
    let exact = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap()]);
    let dump = project.join("exports/appdb-full.sql");
    let diff = ws.json(&["diff", exact["id"].as_str().unwrap(), dump.to_str().unwrap()]);
    let changed: Vec<&str> = diff["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["change"] == "changed")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&"TrickyValue"), "{changed:?}");
}
