//! What only an S3 or R2 repository has: faults on the network, the retry budget, the
//! cache of index files and records, R2 URLs, credentials. Every server and proxy listens on 127.0.0.1.

use d1snap_engine::object::Kind;
use d1snap_s3_test_server::{ACCESS_KEY_ID, FaultPlan, SECRET_ACCESS_KEY};

use crate::util::{Backend, Workspace, assert_same_database};

fn requests(report: &serde_json::Value, kind: &str) -> u64 {
    report["requests"][kind].as_u64().unwrap_or_else(|| panic!("no requests.{kind} in {report}"))
}

#[test]
fn snapshot_and_restore_survive_faults() {
    let clean = Workspace::with_backend(Backend::S3);
    let db = clean.copy_data("chinook/Chinook_Sqlite.sqlite");
    let expected = clean.snapshot(&db);

    let ws = Workspace::with_faults(FaultPlan::all(0.2, 11));
    let report = ws.snapshot(&db);
    assert_eq!(report["root"], expected["root"]);
    assert_eq!(report["chunks"], expected["chunks"]);
    assert!(requests(&report, "retries") > 0, "{report}");

    let restored = ws.path("restored.sqlite");
    let restore = ws.json(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    assert!(requests(&restore, "get") > 0);
    assert_same_database(&db, &restored);
    let verify = ws.json(&["verify", "latest", "--read-data"]);
    assert_eq!(verify["findings"], serde_json::json!([]));
    let against = ws.json(&["verify", "latest", "--against", restored.to_str().unwrap()]);
    assert_eq!(against["findings"], serde_json::json!([]));

    let stats = ws.proxy().unwrap().stats();
    assert!(stats.faults() > 5, "only {} faults injected", stats.faults());
    assert_eq!(stats.dialect_rejections(), 0, "{:?}", stats.dialect_errors.lock().unwrap());
}

#[test]
fn wrangler_sample_survives_faults() {
    let clean = Workspace::with_backend(Backend::S3);
    let project = clean.copy_data("d1-local");
    let expected = clean.json(&["snapshot", "--wrangler", project.to_str().unwrap()]);

    let ws = Workspace::with_faults(FaultPlan::all(0.2, 12));
    let report = ws.json(&["snapshot", "--wrangler", project.to_str().unwrap()]);
    assert_eq!(report["root"], expected["root"]);
    let restored = ws.path("appdb.sqlite");
    ws.ok(&["restore", "latest", "--to", restored.to_str().unwrap()]);
    let against = ws.json(&["verify", "latest", "--against", restored.to_str().unwrap()]);
    assert_eq!(against["findings"], serde_json::json!([]));
    assert_eq!(ws.proxy().unwrap().stats().dialect_rejections(), 0);
}

#[test]
fn exhausted_retries_write_no_record() {
    let mut plan = FaultPlan::all(1.0, 13);
    plan.max_stalls = 0;
    let mut ws = Workspace::with_faults(plan);
    ws.set_env("D1SNAP_S3_ATTEMPTS", "3");
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let output = ws.run(&["snapshot", db.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("after 3 attempts"), "{stderr}");
    assert!(!ws.repo().join("snapshots").exists(), "a snapshot record was written");
}

#[test]
fn failed_upload_leaves_no_record_then_retry_succeeds() {
    let clean = Workspace::with_backend(Backend::S3);
    let db = clean.copy_data("chinook/Chinook_Sqlite.sqlite");
    let expected = clean.snapshot(&db);

    // Half the requests fail and each gets two attempts, so the snapshot fails part-way.
    let mut plan = FaultPlan::all(0.5, 14);
    plan.max_stalls = 0;
    let mut ws = Workspace::with_faults(plan);
    ws.set_env("D1SNAP_S3_ATTEMPTS", "2");
    let output = ws.run(&["snapshot", db.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!ws.repo().join("snapshots").exists(), "a snapshot record was written");

    // The same repository, now without faults: the snapshot completes and is whole.
    let direct = ws.command(&["--json", "snapshot", db.to_str().unwrap()]).env("AWS_ENDPOINT_URL_S3", server_endpoint(&ws)).output().unwrap();
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let report: serde_json::Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(report["root"], expected["root"]);
    let verify = ws.command(&["--json", "verify", "latest", "--read-data"]).env("AWS_ENDPOINT_URL_S3", server_endpoint(&ws)).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// The S3 server behind a workspace's proxy.
fn server_endpoint(ws: &Workspace) -> String {
    let proxy = ws.proxy().expect("a fault workspace");
    format!("http://{}", proxy.upstream())
}

#[test]
fn second_snapshot_sends_no_head_per_object() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let first = ws.snapshot(&db);
    let second = ws.snapshot(&db);
    assert_eq!(second["new_chunks"], 0);
    assert_eq!(requests(&first, "put"), 6, "{first}");
    // No object is uploaded again: the PUTs are the record, the snapshot's lock and its
    // history event, and the HEADs check the config and, before the record, the lock.
    assert_eq!(requests(&second, "put"), 3, "{second}");
    assert_eq!(requests(&second, "head"), 2, "{second}");
}

#[test]
fn index_cache_is_rebuilt_from_the_bucket() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    // Restoring one table reads the record and the index; every run writes a new file.
    let restore = |n: u32| {
        let target = ws.path(&format!("genre-{n}.sqlite"));
        ws.json(&["restore", "latest", "--table", "Genre", "--to", target.to_str().unwrap()])
    };
    let cached = restore(1);
    std::fs::remove_dir_all(ws.path(".cache/d1snap")).unwrap();
    // The one index file and the one record are read from the bucket again, then from the
    // cache.
    let rebuilt = restore(2);
    assert_eq!(requests(&rebuilt, "get"), requests(&cached, "get") + 2, "{rebuilt}");
    assert!(ws.path(".cache/d1snap").is_dir());
    let again = restore(3);
    assert_eq!(requests(&again, "get"), requests(&cached, "get"), "{again}");
    let second = ws.snapshot(&db);
    assert_eq!(second["new_chunks"], 0);
    assert_eq!(requests(&second, "put"), 3, "{second}");
    assert_eq!(requests(&second, "head"), 2, "{second}");
}

#[test]
fn deleted_pack_is_uploaded_again() {
    let mut ws = Workspace::new();
    ws.one_object_per_pack();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let chunk = ws.stored_objects(Kind::Chunk).remove(0);
    std::fs::remove_file(&chunk.file).unwrap();
    assert_eq!(ws.run(&["verify", "latest"]).status.code(), Some(3));

    let repaired = ws.snapshot(&db);
    assert_eq!(repaired["new_chunks"], 1, "the chunk of the deleted pack is uploaded again: {repaired}");
    assert!(ws.stored_objects(Kind::Chunk).iter().any(|c| c.id == chunk.id));
    ws.ok(&["verify", "latest", "--read-data"]);
}

#[test]
fn no_cache_reads_index_and_records_from_bucket() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    let target = |name: &str| ws.path(name).to_str().unwrap().to_string();
    let cached = ws.json(&["restore", "latest", "--table", "Genre", "--to", &target("a.sqlite")]);
    let uncached = ws.json(&["--no-cache", "restore", "latest", "--table", "Genre", "--to", &target("b.sqlite")]);
    assert_eq!(requests(&uncached, "get"), requests(&cached, "get") + 2, "{uncached}");
}

#[test]
fn r2_url_with_endpoint_round_trips() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let url = "r2://0123456789abcdef0123456789abcdef/d1snap-test/r2";
    let report = ws.json(&["--repo", url, "snapshot", db.to_str().unwrap()]);
    assert!(ws.repo().with_file_name("r2").join("snapshots").is_dir());
    let restored = ws.path("restored.sqlite");
    ws.ok(&["--repo", url, "restore", report["id"].as_str().unwrap(), "--to", restored.to_str().unwrap()]);
    assert_same_database(&db, &restored);
    let list = ws.json(&["--repo", url, "list"]);
    assert!(list["repository"].as_str().unwrap().starts_with("r2://0123456789abcdef0123456789abcdef/d1snap-test/r2"), "{list}");
}

#[test]
fn r2_url_without_account_is_rejected() {
    let ws = Workspace::new();
    let output = ws.command(&["--repo", "r2://backups/d1", "list"]).env_remove("AWS_ENDPOINT_URL_S3").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CLOUDFLARE_ACCOUNT_ID"), "{stderr}");
}

#[test]
fn malformed_repo_url_is_rejected() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let output = ws.run(&["--repo", "s3://Not_A_Bucket/x", "snapshot", db.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"Not_A_Bucket\""), "{stderr}");
}

#[test]
fn missing_bucket_is_named() {
    let ws = Workspace::with_faults(FaultPlan::none());
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let output = ws.run(&["--repo", "s3://no-such-bucket/x", "snapshot", db.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bucket \"no-such-bucket\" not found"), "{stderr}");
}

#[test]
fn missing_credentials_are_reported() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let output = ws.command(&["snapshot", db.to_str().unwrap()]).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no credentials for s3://d1snap-test/repo"), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(!ws.repo().exists());
}

#[test]
fn credentials_never_appear_in_output() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let outputs = [
        ws.command(&["-vv", "--json", "snapshot", db.to_str().unwrap()]).env("D1SNAP_LOG", "trace").output().unwrap(),
        ws.command(&["-vv", "list"]).env("D1SNAP_LOG", "trace").output().unwrap(),
        // A wrong secret makes the server reject every request.
        ws.command(&["-vv", "--json", "list"]).env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-0123456789").output().unwrap(),
    ];
    for output in &outputs {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(SECRET_ACCESS_KEY), "the secret key was printed:\n{text}");
            assert!(!text.contains("wrong-secret-value"), "the secret key was printed:\n{text}");
            assert!(!text.contains(ACCESS_KEY_ID), "the access key id was printed:\n{text}");
        }
    }
    assert!(outputs[0].status.success());
    let denied = String::from_utf8_lossy(&outputs[2].stderr);
    assert_eq!(outputs[2].status.code(), Some(1), "{denied}");
    assert!(denied.contains("403"), "{denied}");
}

#[test]
fn scheduled_run_and_status_use_bucket_repository() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let config = ws.path("d1snap.toml");
    std::fs::write(
        &config,
        format!(
            "repository = {:?}\n\n[[source]]\nname = \"chinook\"\npath = {:?}\n\n[jobs.snapshot]\nschedule = \"0 * * * *\"\n",
            ws.repo_arg(),
            db.to_str().unwrap()
        ),
    )
    .unwrap();
    // The configuration names the bucket; the environment's D1SNAP_REPO must not win.
    let output = ws.command(&["run", "--config", config.to_str().unwrap(), "--now", "2026-12-04T10:00:00Z"]).env_remove("D1SNAP_REPO").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let list = ws.json(&["list"]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 1, "{list}");
    let status = ws.command(&["--json", "status", "--config", config.to_str().unwrap()]).env_remove("D1SNAP_REPO").output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["repository"], ws.repo_arg(), "{report}");
    assert_eq!(report["snapshots"], 1);
}

#[test]
fn snapshot_reads_earlier_records_from_the_cache() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let gets: Vec<u64> = (0..6).map(|_| requests(&ws.snapshot(&db), "get")).collect();
    // Each snapshot reads every earlier record to find its parent, but cached records cost
    // no GET: what is left is the config and at times a lock, however many records exist.
    assert!(gets.iter().all(|get| *get <= 2), "GETs per snapshot: {gets:?}");
}
