//! Damage to each kind of stored object is caught by verify and stops a restore.

use d1snap_engine::object::Kind;

use crate::util::Workspace;

struct Damaged {
    ws: Workspace,
    id: String,
}

/// A snapshot of a small database with two tables, so damage to one can be told from the other.
fn snapshot_two_tables() -> Damaged {
    let mut ws = Workspace::new();
    ws.one_object_per_pack();
    let db = ws.path("two.sqlite");
    let conn = crate::util::open(&db);
    conn.execute_batch(
        "CREATE TABLE alpha(id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE beta(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO alpha(v) VALUES ('one'), ('two');
         INSERT INTO beta(v) VALUES ('three'), ('four'), ('five');",
    )
    .unwrap();
    drop(conn);
    let report = ws.snapshot(&db);
    let id = report["id"].as_str().unwrap().to_string();
    Damaged { ws, id }
}

fn assert_verify_fails(ws: &Workspace, id: &str, needle: &str) -> String {
    let output = ws.run(&["verify", id, "--read-data"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(needle) || stderr.contains(needle), "expected {needle:?} in\n{stdout}\n{stderr}");
    stdout
}

fn assert_restore_fails(ws: &Workspace, id: &str, table: Option<&str>) {
    let target = ws.path("restored.sqlite");
    let mut args = vec!["restore", id, "--to", target.to_str().unwrap()];
    if let Some(table) = table {
        args.extend(["--table", table]);
    }
    let output = ws.run(&args);
    assert_eq!(output.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert!(!target.exists(), "a partial restore file was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(ws.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".d1snap-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn flipped_chunk_byte_is_reported_and_stops_restore() {
    let Damaged { ws, id } = snapshot_two_tables();
    let chunks = ws.stored_objects(Kind::Chunk);
    assert_eq!(chunks.len(), 2);
    for chunk in &chunks {
        chunk.flip_last_byte();
    }
    let out = assert_verify_fails(&ws, &id, "chunk");
    assert!(out.contains("table \"alpha\"") && out.contains("table \"beta\""), "{out}");
    assert_restore_fails(&ws, &id, Some("beta"));
}

#[test]
fn damaged_chunk_of_one_table_leaves_other_restorable() {
    let Damaged { ws, id } = snapshot_two_tables();
    // Restore beta alone to learn which chunk it reads: the other one belongs to alpha.
    let chunks = ws.stored_objects(Kind::Chunk);
    let moved = ws.path("moved-chunk");
    std::fs::rename(&chunks[0].file, &moved).unwrap();
    let probe = ws.run(&["restore", &id, "--table", "beta", "--to", ws.path("probe.sqlite").to_str().unwrap()]);
    std::fs::rename(&moved, &chunks[0].file).unwrap();
    let (beta_chunk, alpha_chunk) = if probe.status.success() { (&chunks[1], &chunks[0]) } else { (&chunks[0], &chunks[1]) };
    let _ = std::fs::remove_file(ws.path("probe.sqlite"));

    beta_chunk.flip_last_byte();
    let out = assert_verify_fails(&ws, &id, "table \"beta\"");
    assert!(!out.contains("table \"alpha\""), "{out}");
    assert_restore_fails(&ws, &id, Some("beta"));
    let alpha = ws.path("alpha.sqlite");
    ws.ok(&["restore", &id, "--table", "alpha", "--to", alpha.to_str().unwrap()]);
    assert!(alpha_chunk.file.exists());
}

#[test]
fn deleted_chunk_pack_is_reported_missing() {
    let Damaged { ws, id } = snapshot_two_tables();
    let chunk = ws.stored_objects(Kind::Chunk).remove(0);
    std::fs::remove_file(&chunk.file).unwrap();
    assert_verify_fails(&ws, &id, "missing");
    // Structure-only verify also notices a missing chunk.
    let output = ws.run(&["verify", &id]);
    assert_eq!(output.status.code(), Some(3));
    assert_restore_fails(&ws, &id, None);
}

#[test]
fn flipped_table_object_byte_is_reported() {
    let Damaged { ws, id } = snapshot_two_tables();
    for table in ws.stored_objects(Kind::Table) {
        table.flip_last_byte();
    }
    assert_verify_fails(&ws, &id, "table object");
    assert_restore_fails(&ws, &id, Some("alpha"));
}

#[test]
fn flipped_snapshot_record_byte_is_reported() {
    let Damaged { ws, id } = snapshot_two_tables();
    let record = ws.repo().join("snapshots").join(&id);
    let mut bytes = std::fs::read(&record).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&record, bytes).unwrap();
    // Verify checks the bucket's copy even where an intact copy is cached.
    assert_verify_fails(&ws, &id, "snapshot record");
    // Another machine, without that cache, cannot list or restore the snapshot.
    let _ = std::fs::remove_dir_all(ws.path(".cache/d1snap"));
    let list = ws.run(&["list"]);
    assert_eq!(list.status.code(), Some(3));
    assert_restore_fails(&ws, &id, None);
}

#[test]
fn flipped_tree_node_byte_is_reported() {
    let Damaged { ws, id } = snapshot_two_tables();
    for node in ws.stored_objects(Kind::Node) {
        node.flip_last_byte();
    }
    assert_verify_fails(&ws, &id, "tree node");
    assert_restore_fails(&ws, &id, None);
}

#[test]
fn missing_delta_base_is_reported_and_stops_restore() {
    let mut ws = Workspace::new();
    ws.one_object_per_pack();
    let db = crate::util::random_notes(&ws, "notes.sqlite", 3000);
    ws.snapshot(&db);
    crate::util::open(&db).execute_batch("UPDATE notes SET body = 'edited' WHERE id = 10").unwrap();
    let id = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    let chunks = ws.stored_objects(Kind::Chunk);
    let base = chunks.iter().find_map(|c| c.base).expect("the edited chunk is stored as a delta");
    let base_pack = &chunks.iter().find(|c| c.id == base).unwrap().file;
    std::fs::remove_file(base_pack).unwrap();

    let needle = format!("its delta base {base} is missing");
    assert_verify_fails(&ws, &id, &needle);
    let structure = ws.run(&["verify", &id]);
    assert_eq!(structure.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&structure.stdout).contains(&needle), "{}", String::from_utf8_lossy(&structure.stdout));
    assert_restore_fails(&ws, &id, None);
}

#[test]
fn damaged_index_file_until_prune() {
    let ws = Workspace::new();
    let db = ws.path("app.sqlite");
    crate::util::open(&db).execute_batch("CREATE TABLE a(v TEXT); INSERT INTO a VALUES ('one');").unwrap();
    let first = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    let index_files = |ws: &Workspace| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(ws.repo().join("index")).unwrap().map(|e| e.unwrap().path()).collect()
    };
    let before = index_files(&ws);
    crate::util::open(&db).execute_batch("CREATE TABLE b(v TEXT); INSERT INTO b VALUES ('two');").unwrap();
    let second = ws.snapshot(&db)["id"].as_str().unwrap().to_string();
    let damaged = index_files(&ws).into_iter().find(|path| !before.contains(path)).expect("the second snapshot wrote an index file");
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&damaged, bytes).unwrap();
    // A bucket's index files are cached intact on the machine that wrote them; another
    // machine reads the damaged copy.
    let _ = std::fs::remove_dir_all(ws.path(".cache/d1snap"));

    // The first snapshot needs nothing from the damaged file's pack.
    ws.ok(&["restore", &first, "--to", ws.path("first.sqlite").to_str().unwrap()]);
    assert_eq!(ws.run(&["verify", &second]).status.code(), Some(3));

    let pruned = ws.json(&["prune"]);
    assert_eq!(pruned["packs_reindexed"], 1, "{pruned}");
    ws.ok(&["verify", "--all", "--read-data"]);
    let restored = ws.path("second.sqlite");
    ws.ok(&["restore", &second, "--to", restored.to_str().unwrap()]);
    crate::util::assert_same_database(&db, &restored);
}
