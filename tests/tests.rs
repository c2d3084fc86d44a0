//! Integration tests: the real `d1snap` binary run on real SQLite files.

mod bad_input;
mod corruption;
mod dedup;
mod exactness;
mod real_data;
mod util;
