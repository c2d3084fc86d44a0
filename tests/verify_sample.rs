//! verify --read-data --sample: reading part of the chunks, chosen anew on each run.

use d1snap_engine::object::Kind;

use crate::util::{Workspace, output_text as text};

#[test]
fn sample_reads_part_of_chunks() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let all = ws.json(&["verify", "--read-data"]);
    let chunks = all["chunks_checked"].as_u64().unwrap();
    assert_eq!(all["chunks_read"], chunks);

    let half = ws.json(&["verify", "--read-data", "--sample", "50%"]);
    assert_eq!(half["chunks_checked"], chunks, "unsampled chunks still get an existence check");
    assert_eq!(half["chunks_read"], chunks.div_ceil(2));
    assert_eq!(half["sample"]["percent"], 50.0);

    let three = ws.json(&["verify", "--read-data", "--sample", "3"]);
    assert_eq!(three["chunks_read"], 3);

    for bad in [["verify", "--read-data", "--sample", "0%"], ["verify", "--sample", "5", "--all"]] {
        assert_eq!(ws.run(&bad).status.code(), Some(2), "{bad:?} was accepted");
    }
}

#[test]
fn full_sample_finds_damaged_chunk() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    ws.stored_objects(Kind::Chunk)[0].flip_last_byte();
    let output = ws.run(&["verify", "--read-data", "--sample", "100%"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
}

#[test]
fn small_sample_still_finds_missing_chunk() {
    let mut ws = Workspace::new();
    ws.one_object_per_pack();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    std::fs::remove_file(&ws.stored_objects(Kind::Chunk)[0].file).unwrap();
    let output = ws.run(&["--json", "verify", "--read-data", "--sample", "1"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["findings"][0]["message"], "missing from the repository");
}
