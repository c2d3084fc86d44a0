//! Integration tests: the real `d1snap` binary run on real SQLite files.

mod bad_input;
mod corruption;
mod dashboard;
mod dedup;
mod exactness;
mod listener;
mod migrate;
mod operations;
mod point_restore;
mod real_data;
mod retention;
mod rollback_sql;
mod util;
mod verify_sample;
mod wrangler;
