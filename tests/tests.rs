//! Integration tests: the real `d1snap` binary run on real SQLite files. Most tests run
//! twice, under `local` with a repository directory and under `s3` with a bucket on an
//! in-process S3 server; `util::Workspace` picks the backend from the test's module path.
//! The migration, drill, retention and operations tests damage or inspect repository files
//! directly, or need a local repository, so they run on the local backend only.

mod listener;
mod util;

#[path = "."]
mod local {
    mod bad_input;
    mod backend;
    mod corruption;
    mod dedup;
    mod dashboard;
    mod exactness;
    mod migrate;
    mod operations;
    mod point_restore;
    mod real_data;
    mod retention;
    mod rollback_sql;
    mod verify_sample;
    mod wrangler;
}

#[path = "."]
#[expect(clippy::duplicate_mod, reason = "the s3 copy of the suite reuses the test files of the local copy")]
mod s3 {
    mod bad_input;
    mod backend;
    mod corruption;
    mod dedup;
    mod exactness;
    mod point_restore;
    mod real_data;
    mod rollback_sql;
    mod s3_remote;
    mod wrangler;
}
