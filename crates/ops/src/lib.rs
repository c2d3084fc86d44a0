//! Operations for d1snap: the configuration file (`d1snap.toml`), scheduled jobs run by
//! `d1snap run` and `d1snap daemon`, the status of every source against its thresholds,
//! Prometheus metrics, webhook alerts and the self-contained HTML report.
//!
//! Every job calls the engine (`d1snap-engine`) and records what it did in the repository's
//! history, which is also where the scheduler finds when each job last ran. So the
//! scheduler keeps no state of its own, and a pass can run on any clock: the time is a
//! parameter, which lets tests simulate a day of runs.
//!
//! ```no_run
//! use std::path::Path;
//! use d1snap_ops::{config::Config, runner::Runner};
//!
//! # fn main() -> d1snap_ops::Result<()> {
//! let config = Config::load(Path::new("d1snap.toml"))?;
//! let runner = Runner::new(&config, std::path::PathBuf::from(config.repository(None)?))?;
//! let pass = runner.run_pass(d1snap_engine::snapshot::now_ms(), &Default::default())?;
//! for job in &pass.jobs {
//!     println!("{} {}", job.job, if job.ok { "ok" } else { "failed" });
//! }
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]

pub mod alert;
pub mod config;
pub mod duration;
pub mod error;
pub mod format;
pub mod history;
pub mod jobs;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod status;

pub use error::{Error, Result};
