//! Checks that each copy of the suite runs on the backend its module names.

use crate::util::{Backend, Workspace};

#[test]
fn workspace_uses_module_backend() {
    let module = module_path!();
    let expected = if module.contains("::s3::") { Backend::S3 } else { Backend::Local };
    assert_eq!(Workspace::new().backend, expected, "module {module}");
}

#[test]
fn summary_counts_requests() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    let report = ws.snapshot(&db);
    let requests = &report["requests"];
    // The config, one pack holding every object, its index file, the record, the lock and
    // the history event.
    assert_eq!(requests["put"].as_u64().unwrap(), 6, "{requests}");
    assert!(requests["bytes_sent"].as_u64().unwrap() > 100_000, "{requests}");
    let text = ws.ok(&["list"]);
    assert!(text.contains("requests: "), "{text}");
}
